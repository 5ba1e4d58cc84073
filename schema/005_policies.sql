-- chaintape:idempotent
-- Compression, retention and continuous aggregates: full edition only. On the Apache edition each
-- skipped feature is reported by chaintape_skipped() and everything else carries on.
--
-- Compression (segmentby / orderby per table): a segment should hold hundreds to thousands of rows
-- per chunk, or batches are tiny and compress badly.
--   quotes, depth, greeks, funding: segmentby instrument_name (many rows per instrument per
--     chunk), orderby "timestamp" DESC; *_ohlcv: segmentby instrument_name, resolution.
--   trades: sparse per instrument (a few per chunk for most options), so no segmentby; orderby
--     instrument_name, "timestamp" DESC keeps an instrument's trades together and trade_id last
--     lets the (trade_id, "timestamp") key be checked against compressed batches.
--   index_prices: segmentby index_name, kind.
-- Chunks are compressed 2 days after their end: longer than the trade repair window
-- (TRADE_REPAIR_MAX_AGE_S, 1 day by default) and the continuous aggregates' refresh window, so
-- late writes land in uncompressed chunks (inserts into compressed chunks still work, slower).
--
-- Retention (chaintape_settings.retention_days, from RETENTION_DAYS; 0 = keep everything) drops
-- raw chunks older than N days from every market-data hypertable; the hourly trade bars are kept.

CREATE OR REPLACE FUNCTION chaintape_compression(tbl text, segmentby text, orderby text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    job integer;
BEGIN
    IF NOT chaintape_full_edition() THEN
        PERFORM chaintape_skipped('compression', tbl);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                    WHERE h.hypertable_schema = current_schema()
                      AND h.hypertable_name = tbl AND h.compression_enabled) THEN
        EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, '
                       'timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                       tbl, segmentby, orderby);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs j
                    WHERE j.hypertable_schema = current_schema()
                      AND j.hypertable_name = tbl AND j.proc_name = 'policy_compression') THEN
        job := add_compression_policy(tbl::regclass, interval '2 days');
        PERFORM chaintape_schedule(job);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION chaintape_retention(tbl text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    days    integer := coalesce(chaintape_setting('retention_days'), '0')::integer;
    wanted  interval := CASE WHEN days > 0 THEN make_interval(days => days) END;
    present interval;
    job     integer;
BEGIN
    IF NOT chaintape_full_edition() THEN
        IF days > 0 THEN
            PERFORM chaintape_skipped('retention policy', tbl);
        END IF;
        RETURN;
    END IF;
    SELECT (j.config ->> 'drop_after')::interval INTO present
      FROM timescaledb_information.jobs j
     WHERE j.hypertable_schema = current_schema()
       AND j.hypertable_name = tbl AND j.proc_name = 'policy_retention';
    IF present IS NOT DISTINCT FROM wanted THEN
        RETURN;
    END IF;
    PERFORM remove_retention_policy(tbl::regclass, if_exists => true);
    IF days > 0 THEN
        job := add_retention_policy(tbl::regclass, make_interval(days => days));
        PERFORM chaintape_schedule(job);
    END IF;
END
$$;

-- Hourly OHLC bars per option from trades: {cur}_option_trade_bars_1h, refreshed every 30 minutes
-- over the last 3 days (so repaired trades are folded in), and unioned in option_trade_bars_1h.
CREATE OR REPLACE FUNCTION chaintape_trade_bars(cur text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    bars   text := cur || '_option_trade_bars_1h';
    trades text := cur || '_option_trades';
    job    integer;
BEGIN
    IF NOT chaintape_full_edition() THEN
        PERFORM chaintape_skipped('continuous aggregate', bars);
        RETURN;
    END IF;
    IF to_regclass(quote_ident(bars)) IS NULL THEN
        EXECUTE format($ddl$
            CREATE MATERIALIZED VIEW IF NOT EXISTS %I WITH (timescaledb.continuous) AS
            SELECT time_bucket(interval '1 hour', "timestamp") AS bucket,
                   instrument_name,
                   first(price, "timestamp") AS open,
                   max(price) AS high,
                   min(price) AS low,
                   last(price, "timestamp") AS close,
                   sum(amount) AS volume,
                   count(*) AS trade_count,
                   sum(price * amount) / nullif(sum(amount), 0) AS vwap,
                   sum(iv * amount) / nullif(sum(amount) FILTER (WHERE iv IS NOT NULL), 0) AS iv_vwap
              FROM %I
             GROUP BY bucket, instrument_name
            WITH NO DATA$ddl$, bars, trades);
    END IF;
    -- The jobs view names a cagg's policy by its view (2.2x) or its materialization table (older).
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs j
                     JOIN timescaledb_information.continuous_aggregates ca
                       ON j.hypertable_name IN (ca.view_name, ca.materialization_hypertable_name)
                    WHERE ca.view_schema = current_schema() AND ca.view_name = bars
                      AND j.proc_name = 'policy_refresh_continuous_aggregate') THEN
        job := add_continuous_aggregate_policy(bars::regclass,
                                               start_offset => interval '3 days',
                                               end_offset => interval '1 hour',
                                               schedule_interval => interval '30 minutes');
        PERFORM chaintape_schedule(job);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION chaintape_currency_policies(cur text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chaintape_compression(cur || '_option_quotes', 'instrument_name', '"timestamp" DESC');
    PERFORM chaintape_compression(cur || '_option_trades', '',
                                  'instrument_name, "timestamp" DESC, trade_id');
    PERFORM chaintape_compression(cur || '_option_orderbook_depth', 'instrument_name',
                                  '"timestamp" DESC');
    PERFORM chaintape_retention(cur || '_option_quotes');
    PERFORM chaintape_retention(cur || '_option_trades');
    PERFORM chaintape_retention(cur || '_option_orderbook_depth');
    PERFORM chaintape_trade_bars(cur);
END
$$;

-- Applies every policy to every table; run again after changing chaintape_settings.
CREATE OR REPLACE FUNCTION chaintape_apply_policies() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cur text;
    tbl text;
BEGIN
    PERFORM chaintape_compression('options_ohlcv', 'instrument_name, resolution',
                                  '"timestamp" DESC');
    PERFORM chaintape_compression('perpetuals_ohlcv', 'instrument_name, resolution',
                                  '"timestamp" DESC');
    PERFORM chaintape_compression('futures_ohlcv', 'instrument_name, resolution',
                                  '"timestamp" DESC');
    PERFORM chaintape_compression('options_greeks', 'instrument_name', '"timestamp" DESC');
    PERFORM chaintape_compression('funding_rates', 'instrument_name', '"timestamp" DESC');
    PERFORM chaintape_compression('index_prices', 'index_name, kind', '"timestamp" DESC');
    FOREACH tbl IN ARRAY ARRAY['options_ohlcv', 'perpetuals_ohlcv', 'futures_ohlcv',
                               'options_greeks', 'funding_rates', 'index_prices'] LOOP
        PERFORM chaintape_retention(tbl);
    END LOOP;
    FOR cur IN SELECT currency FROM chaintape_currencies ORDER BY currency LOOP
        PERFORM chaintape_currency_policies(cur);
    END LOOP;
    PERFORM chaintape_rebuild_views();
END
$$;
