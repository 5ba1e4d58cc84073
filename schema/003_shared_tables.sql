-- chaintape:idempotent
-- Tables shared by every currency. Columns follow scripts/storage/tables.py (the writer's COPY
-- column list) in order; tests/integration/test_schema.py checks they agree.
--
-- Chunk intervals: a NAS has 2-8 GB of RAM and shared_buffers of 0.5-2 GB. The chunks being
-- written ("hot") of all tables together should stay well inside that, so each interval below is
-- sized from the table's row rate (estimates for BTC+ETH, whole option chains):
--   options_ohlcv     1 day    one 1-minute bar per polled option per minute: ~1M rows/day, ~150 MB
--   perpetuals/futures_ohlcv 7 days  a few dozen instruments x 1440 bars/day: ~50k rows/day
--   options_greeks    7 days   one row per option per poll (hourly by default): ~40k rows/day
--   funding_rates     30 days  one row per perpetual per hour
--   index_prices      30 days  a handful of indices, one row a minute
-- Every hypertable keeps TimescaleDB's default ("timestamp" DESC) index for time-range scans.
-- Natural keys include "timestamp", as unique constraints on hypertables must.

CREATE TABLE IF NOT EXISTS options_ohlcv (
    "timestamp"      timestamptz NOT NULL,   -- bar start
    instrument_name  text NOT NULL,
    currency         text NOT NULL,
    resolution       text NOT NULL,          -- Deribit's resolution: '1' = 1 minute
    open             float8,
    high             float8,
    low              float8,
    close            float8,
    volume           float8,
    trade_count      int4,
    mark_iv_close    float8,                 -- percent
    mark_price_close float8,
    trade_iv_vwap    float8,                 -- amount-weighted IV of the bar's trades, percent
    received_at      timestamptz,
    CONSTRAINT options_ohlcv_key UNIQUE (instrument_name, resolution, "timestamp")
);
SELECT create_hypertable('options_ohlcv', by_range('timestamp', interval '1 day'), if_not_exists => true);

CREATE TABLE IF NOT EXISTS perpetuals_ohlcv (
    "timestamp"     timestamptz NOT NULL,
    instrument_name text NOT NULL,
    currency        text NOT NULL,
    resolution      text NOT NULL,
    open            float8,
    high            float8,
    low             float8,
    close           float8,
    volume          float8,
    cost            float8,
    received_at     timestamptz,
    CONSTRAINT perpetuals_ohlcv_key UNIQUE (instrument_name, resolution, "timestamp")
);
SELECT create_hypertable('perpetuals_ohlcv', by_range('timestamp', interval '7 days'), if_not_exists => true);

CREATE TABLE IF NOT EXISTS futures_ohlcv (
    "timestamp"     timestamptz NOT NULL,
    instrument_name text NOT NULL,
    currency        text NOT NULL,
    resolution      text NOT NULL,
    open            float8,
    high            float8,
    low             float8,
    close           float8,
    volume          float8,
    cost            float8,
    received_at     timestamptz,
    CONSTRAINT futures_ohlcv_key UNIQUE (instrument_name, resolution, "timestamp")
);
SELECT create_hypertable('futures_ohlcv', by_range('timestamp', interval '7 days'), if_not_exists => true);

CREATE TABLE IF NOT EXISTS options_greeks (
    "timestamp"      timestamptz NOT NULL,
    instrument_name  text NOT NULL,
    currency         text NOT NULL,
    delta            float8,
    gamma            float8,
    vega             float8,
    theta            float8,
    rho              float8,
    mark_iv          float8,                 -- IVs in percent
    bid_iv           float8,
    ask_iv           float8,
    mark_price       float8,
    underlying_price float8,
    underlying_index text,
    index_price      float8,
    open_interest    float8,
    interest_rate    float8,
    best_bid_price   float8,
    best_ask_price   float8,
    received_at      timestamptz,
    CONSTRAINT options_greeks_key UNIQUE (instrument_name, "timestamp")
);
SELECT create_hypertable('options_greeks', by_range('timestamp', interval '7 days'), if_not_exists => true);

CREATE TABLE IF NOT EXISTS funding_rates (
    "timestamp"      timestamptz NOT NULL,
    instrument_name  text NOT NULL,
    currency         text NOT NULL,
    interest_8h      float8,
    interest_1h      float8,
    index_price      float8,
    prev_index_price float8,
    received_at      timestamptz,
    CONSTRAINT funding_rates_key UNIQUE (instrument_name, "timestamp")
);
SELECT create_hypertable('funding_rates', by_range('timestamp', interval '30 days'), if_not_exists => true);

-- Price indices (kind 'price') and DVOL (kind 'dvol').
CREATE TABLE IF NOT EXISTS index_prices (
    "timestamp" timestamptz NOT NULL,
    index_name  text NOT NULL,
    currency    text NOT NULL,
    kind        text NOT NULL,
    value       float8,
    received_at timestamptz,
    CONSTRAINT index_prices_key UNIQUE (index_name, kind, "timestamp")
);
SELECT create_hypertable('index_prices', by_range('timestamp', interval '30 days'), if_not_exists => true);

-- Plain tables: small, updated in place.

-- Every instrument ever seen; upserted by instrument_name.
CREATE TABLE IF NOT EXISTS instruments (
    instrument_name      text PRIMARY KEY,
    currency             text NOT NULL,      -- chaintape's code: BTC, ETH, SOL
    kind                 text,
    option_type          text,
    strike               float8,
    expiration_timestamp timestamptz,
    creation_timestamp   timestamptz,
    contract_size        float8,
    tick_size            float8,
    min_trade_amount     float8,
    settlement_currency  text,
    base_currency        text,
    quote_currency       text,
    counter_currency     text,
    settlement_period    text,
    instrument_type      text,
    price_index          text,
    instrument_id        int8,
    is_active            bool,
    last_seen            timestamptz
);
CREATE INDEX IF NOT EXISTS instruments_currency_kind_idx ON instruments (currency, kind, is_active);

-- What was not recorded, or was repaired. The writer's columns come first (its COPY list);
-- id is extra and filled by its default.
CREATE TABLE IF NOT EXISTS data_gaps (
    table_name  text NOT NULL,
    currency    text,
    scope       text NOT NULL,                -- instrument name or channel
    gap_start   timestamptz NOT NULL,
    gap_end     timestamptz,
    reason      text NOT NULL,
    repaired    bool,
    detected_at timestamptz,
    id          bigserial,
    CONSTRAINT data_gaps_key UNIQUE (table_name, scope, gap_start, reason)
);
CREATE INDEX IF NOT EXISTS data_gaps_gap_start_idx ON data_gaps (gap_start DESC);

-- Bad input kept for inspection; id is extra, filled by its default.
CREATE TABLE IF NOT EXISTS rejected_messages (
    received_at timestamptz NOT NULL,
    collector   text,
    channel     text,
    reason      text,
    raw         text,                         -- truncated to 8 kB by the writer
    id          bigserial
);
CREATE INDEX IF NOT EXISTS rejected_messages_received_at_idx ON rejected_messages (received_at DESC);

-- One row per running collector, upserted by its status task.
CREATE TABLE IF NOT EXISTS collector_status (
    collector_name  text PRIMARY KEY,
    currency        text,
    version         text,
    hostname        text,
    pid             int,
    state           text,
    started_at      timestamptz,
    last_flush_at   timestamptz,
    last_message_at timestamptz,
    connected       bool,
    messages_total  int8,
    rows_by_table   jsonb,
    rejected_total  int8,
    reconnects      int8,
    gaps_total      int8,
    spool_bytes     int8,
    details         jsonb,
    updated_at      timestamptz
);

-- How far each collector's disk spool has been replayed into the database.
CREATE TABLE IF NOT EXISTS spool_offsets (
    collector_name text NOT NULL,
    segment        text NOT NULL,
    last_batch_seq int8,
    updated_at     timestamptz,
    PRIMARY KEY (collector_name, segment)
);
