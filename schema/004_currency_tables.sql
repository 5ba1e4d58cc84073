-- chaintape:idempotent
-- Per-currency tables and the views that union them.
--
-- A currency is added with `SELECT chaintape_add_currency('sol');` (collectors and
-- `python -m scripts.migrate` do it for CURRENCY/CURRENCIES). It creates
--   {cur}_option_quotes            every change of an option's best bid/ask
--   {cur}_option_trades            every trade, unique by (trade_id, "timestamp")
--   {cur}_option_orderbook_depth   periodic book snapshots, unique by (instrument_name, "timestamp")
-- as hypertables, applies the currency's policies (005_policies.sql) and rebuilds the views
-- option_quotes, option_trades and option_orderbook_depth, which add a `currency` column ('BTC').
--
-- Chunk intervals (see 003_shared_tables.sql for the memory budget):
--   quotes 6 hours: the busiest table, ~100-300 rows/s per currency for a whole chain; 6 hours is
--                   2-6M rows, 0.3-1 GB with its indexes, so one hot chunk per currency fits.
--   trades 1 day:   thousands to tens of thousands of rows a day; a day keeps chunks few.
--   depth 1 day:    one snapshot per option every ORDERBOOK_SNAPSHOT_INTERVAL_S (300 s): ~250k
--                   rows a day of ~0.5 kB each.
-- Columns follow scripts/storage/tables.py in order.

CREATE OR REPLACE FUNCTION chaintape_add_currency(cur text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c      text := lower(btrim(cur));
    quotes text := c || '_option_quotes';
    trades text := c || '_option_trades';
    depth  text := c || '_option_orderbook_depth';
BEGIN
    IF c IS NULL OR c !~ '^[a-z][a-z0-9]{1,15}$' THEN
        RAISE EXCEPTION 'chaintape: % is not a currency code (2-16 letters or digits, e.g. btc, sol)', cur;
    END IF;

    -- Existing tables are not touched: even CREATE INDEX IF NOT EXISTS locks the table against
    -- the collectors' writes, and every collector runs this on start.
    IF to_regclass(quote_ident(quotes)) IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE IF NOT EXISTS %I (
                "timestamp"      timestamptz NOT NULL,
                instrument_name  text NOT NULL,
                best_bid_price   float8,
                best_bid_amount  float8,
                best_ask_price   float8,
                best_ask_amount  float8,
                bid_iv           float8,
                ask_iv           float8,
                mark_iv          float8,
                mark_price       float8,
                underlying_price float8,
                received_at      timestamptz
            )$ddl$, quotes);
        -- One index: (instrument_name, "timestamp") serves one option over time; time ranges
        -- are served by chunk exclusion. TimescaleDB's default "timestamp" index would cost
        -- about a fifth of every quote's insert (see 007_quotes_indexes.sql).
        PERFORM create_hypertable(quotes::regclass, by_range('timestamp', interval '6 hours'),
                                  if_not_exists => true, create_default_indexes => false);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (instrument_name, "timestamp" DESC)',
                       quotes || '_instrument_idx', quotes);
    END IF;

    IF to_regclass(quote_ident(trades)) IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE IF NOT EXISTS %I (
                "timestamp"           timestamptz NOT NULL,
                instrument_name       text NOT NULL,
                trade_id              text NOT NULL,
                trade_seq             int8,
                price                 float8,
                amount                float8,
                contracts             float8,
                direction             text,
                tick_direction        int2,
                iv                    float8,
                index_price           float8,
                mark_price            float8,
                liquidation           text,
                block_trade_id        text,
                block_trade_leg_count int4,
                block_rfq_id          int8,
                combo_id              text,
                combo_trade_id        text,
                received_at           timestamptz,
                CONSTRAINT %I UNIQUE (trade_id, "timestamp")
            )$ddl$, trades, trades || '_key');
        PERFORM create_hypertable(trades::regclass, by_range('timestamp', interval '1 day'),
                                  if_not_exists => true);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (instrument_name, "timestamp" DESC)',
                       trades || '_instrument_idx', trades);
    END IF;

    IF to_regclass(quote_ident(depth)) IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE IF NOT EXISTS %I (
                "timestamp"      timestamptz NOT NULL,
                instrument_name  text NOT NULL,
                change_id        int8,
                bid_prices       float8[],
                bid_amounts      float8[],
                ask_prices       float8[],
                ask_amounts      float8[],
                mark_price       float8,
                mark_iv          float8,
                bid_iv           float8,
                ask_iv           float8,
                underlying_price float8,
                open_interest    float8,
                received_at      timestamptz,
                CONSTRAINT %I UNIQUE (instrument_name, "timestamp")
            )$ddl$, depth, depth || '_key');
        PERFORM create_hypertable(depth::regclass, by_range('timestamp', interval '1 day'),
                                  if_not_exists => true);
    END IF;

    INSERT INTO chaintape_currencies (currency) VALUES (c) ON CONFLICT (currency) DO NOTHING;
    -- Column units (020_column_comments.sql; absent while an older schema is being upgraded).
    IF to_regprocedure('chaintape_comment_columns(text)') IS NOT NULL THEN
        PERFORM chaintape_comment_columns(c);
    END IF;
    PERFORM chaintape_currency_policies(c);
    PERFORM chaintape_rebuild_views();
END
$$;

-- (Re)creates one union view per per-currency table kind over every registered currency, e.g.
--   option_trades = SELECT 'BTC' AS currency, * FROM btc_option_trades UNION ALL SELECT 'ETH', ...
-- Grafana can then span currencies in one query and filter on `currency`, which the planner
-- pushes down to the one table. A view whose columns changed is dropped and created again.
CREATE OR REPLACE FUNCTION chaintape_rebuild_views() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    kind  text;
    parts text[];
    body  text;
BEGIN
    FOREACH kind IN ARRAY ARRAY['option_quotes', 'option_trades', 'option_orderbook_depth',
                                'option_trade_bars_1h'] LOOP
        SELECT array_agg(format('SELECT %L::text AS currency, t.* FROM %I t',
                                upper(c.currency), c.currency || '_' || kind)
                         ORDER BY c.currency)
          INTO parts
          FROM chaintape_currencies c
         WHERE to_regclass(quote_ident(c.currency || '_' || kind)) IS NOT NULL;
        CONTINUE WHEN parts IS NULL;
        body := array_to_string(parts, E'\nUNION ALL ');
        -- Unchanged views are left alone: no lock on a view Grafana may be reading.
        CONTINUE WHEN obj_description(to_regclass(quote_ident(kind)), 'pg_class')
                      = 'chaintape:' || md5(body);
        BEGIN
            EXECUTE format('CREATE OR REPLACE VIEW %I AS %s', kind, body);
        EXCEPTION WHEN invalid_table_definition OR feature_not_supported THEN
            EXECUTE format('DROP VIEW %I', kind);
            EXECUTE format('CREATE VIEW %I AS %s', kind, body);
        END;
        EXECUTE format('COMMENT ON VIEW %I IS %L', kind, 'chaintape:' || md5(body));
    END LOOP;
END
$$;
