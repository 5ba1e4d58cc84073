-- chaintape:idempotent
-- What the Grafana dashboards read besides the raw tables (grafana/dashboards/*.json):
--   option_quotes_1m   per option and minute: quote count, last bid/ask/IVs/mark, mean spread
--   option_quotes_1h   the same per hour (built from the 1-minute one)
--   option_trades_1m   per option and minute: trades, volume, block volume, premium, IV VWAP
--   option_trades_1h   the same per hour (built from the 1-minute one)
-- each a union view over the currencies (a `currency` column, 'BTC'), like option_quotes.
--
-- Full edition: {cur}_option_quotes_1m, _1h and {cur}_option_trades_1m are continuous aggregates
-- with real-time aggregation (materialized_only = false: the newest bucket comes from the raw
-- table) and refresh policies. Apache edition: the same names are plain views computing the same
-- columns from the raw tables at query time, so one dashboard query works on both; over long
-- ranges that reads every raw quote in the range (slow; see schema/README.md).
--
-- chaintape_dashboard_objects() creates what is missing for every registered currency and
-- rebuilds the union views; `python -m scripts.migrate` calls it on every run. It switches a
-- currency's plain views to continuous aggregates when the database moved to the full edition.

CREATE OR REPLACE FUNCTION chaintape_quotes_1m_sql(cur text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format($q$
        SELECT time_bucket(interval '1 minute', "timestamp") AS bucket,
               instrument_name,
               count(*) AS quotes,
               last(best_bid_price, "timestamp") AS best_bid_price,
               last(best_ask_price, "timestamp") AS best_ask_price,
               avg(best_ask_price - best_bid_price) AS avg_spread,
               last(mark_price, "timestamp") AS mark_price,
               last(mark_iv, "timestamp") AS mark_iv,
               last(bid_iv, "timestamp") AS bid_iv,
               last(ask_iv, "timestamp") AS ask_iv,
               last(underlying_price, "timestamp") AS underlying_price
          FROM %I
         GROUP BY 1, 2$q$, cur || '_option_quotes')
$$;

-- The hourly summary reads the 1-minute one (a hierarchical aggregate on the full edition).
CREATE OR REPLACE FUNCTION chaintape_quotes_1h_sql(cur text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format($q$
        SELECT time_bucket(interval '1 hour', bucket) AS bucket,
               instrument_name,
               sum(quotes)::int8 AS quotes,
               last(best_bid_price, bucket) AS best_bid_price,
               last(best_ask_price, bucket) AS best_ask_price,
               avg(avg_spread) AS avg_spread,
               last(mark_price, bucket) AS mark_price,
               last(mark_iv, bucket) AS mark_iv,
               last(bid_iv, bucket) AS bid_iv,
               last(ask_iv, bucket) AS ask_iv,
               last(underlying_price, bucket) AS underlying_price
          FROM %I
         GROUP BY 1, 2$q$, cur || '_option_quotes_1m')
$$;

CREATE OR REPLACE FUNCTION chaintape_trades_1m_sql(cur text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format($q$
        SELECT time_bucket(interval '1 minute', "timestamp") AS bucket,
               instrument_name,
               count(*) AS trades,
               sum(amount) AS volume,
               sum(amount) FILTER (WHERE block_trade_id IS NOT NULL) AS block_volume,
               sum(price * amount) AS premium,
               sum(iv * amount) FILTER (WHERE iv IS NOT NULL)
                   / nullif(sum(amount) FILTER (WHERE iv IS NOT NULL), 0) AS iv_vwap
          FROM %I
         GROUP BY 1, 2$q$, cur || '_option_trades')
$$;

CREATE OR REPLACE FUNCTION chaintape_trades_1h_sql(cur text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format($q$
        SELECT time_bucket(interval '1 hour', bucket) AS bucket,
               instrument_name,
               sum(trades)::int8 AS trades,
               sum(volume) AS volume,
               sum(block_volume) AS block_volume,
               sum(premium) AS premium,
               sum(iv_vwap * volume) FILTER (WHERE iv_vwap IS NOT NULL)
                   / nullif(sum(volume) FILTER (WHERE iv_vwap IS NOT NULL), 0) AS iv_vwap
          FROM %I
         GROUP BY 1, 2$q$, cur || '_option_trades_1m')
$$;

-- One aggregate: a continuous aggregate with its refresh (and compression) policy on the full
-- edition, a plain view on Apache. An existing plain view on the full edition is replaced.
CREATE OR REPLACE FUNCTION chaintape_dashboard_aggregate(
    name text, body text, start_offset interval, end_offset interval, every interval,
    compress_after interval)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    rel  regclass := to_regclass(quote_ident(name));
    is_cagg boolean;
    job  integer;
BEGIN
    is_cagg := EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates ca
                        WHERE ca.view_schema = current_schema() AND ca.view_name = name);
    IF NOT chaintape_full_edition() THEN
        PERFORM chaintape_skipped('continuous aggregate', name);
        -- Unchanged views are left alone: collectors running as the writer role get here too.
        IF rel IS NULL OR obj_description(rel, 'pg_class') IS DISTINCT FROM
                          'chaintape:' || md5(body) THEN
            EXECUTE format('CREATE OR REPLACE VIEW %I AS %s', name, body);
            EXECUTE format('COMMENT ON VIEW %I IS %L', name, 'chaintape:' || md5(body));
        END IF;
        RETURN;
    END IF;
    IF rel IS NOT NULL AND NOT is_cagg THEN
        -- Left from the Apache edition: the union view (and an hourly view over it) go too and
        -- are rebuilt by the caller.
        EXECUTE format('DROP VIEW %I CASCADE', name);
        rel := NULL;
    END IF;
    IF rel IS NULL THEN
        EXECUTE format('CREATE MATERIALIZED VIEW %I WITH (timescaledb.continuous, '
                       'timescaledb.materialized_only = false) AS %s WITH NO DATA', name, body);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs j
                     JOIN timescaledb_information.continuous_aggregates ca
                       ON j.hypertable_name IN (ca.view_name, ca.materialization_hypertable_name)
                    WHERE ca.view_schema = current_schema() AND ca.view_name = name
                      AND j.proc_name = 'policy_refresh_continuous_aggregate') THEN
        job := add_continuous_aggregate_policy(name::regclass, start_offset => start_offset,
                                               end_offset => end_offset,
                                               schedule_interval => every);
        PERFORM chaintape_schedule(job);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs j
                     JOIN timescaledb_information.continuous_aggregates ca
                       ON j.hypertable_name IN (ca.view_name, ca.materialization_hypertable_name)
                    WHERE ca.view_schema = current_schema() AND ca.view_name = name
                      AND j.proc_name = 'policy_compression') THEN
        EXECUTE format('ALTER MATERIALIZED VIEW %I SET (timescaledb.compress = true)', name);
        job := add_compression_policy(name::regclass, compress_after => compress_after);
        PERFORM chaintape_schedule(job);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION chaintape_dashboard_objects() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cur   text;
    kind  text;
    parts text[];
    body  text;
BEGIN
    FOR cur IN SELECT c.currency FROM chaintape_currencies c ORDER BY c.currency LOOP
        CONTINUE WHEN to_regclass(quote_ident(cur || '_option_quotes')) IS NULL;
        -- Refresh windows: quotes have no repair path, so 6 hours of late spool replay is
        -- plenty; trades are repaired up to a day late (TRADE_REPAIR_MAX_AGE_S).
        PERFORM chaintape_dashboard_aggregate(cur || '_option_quotes_1m',
            chaintape_quotes_1m_sql(cur), interval '6 hours', interval '1 minute',
            interval '5 minutes', interval '7 days');
        PERFORM chaintape_dashboard_aggregate(cur || '_option_quotes_1h',
            chaintape_quotes_1h_sql(cur), interval '3 days', interval '1 hour',
            interval '30 minutes', interval '30 days');
        PERFORM chaintape_dashboard_aggregate(cur || '_option_trades_1m',
            chaintape_trades_1m_sql(cur), interval '2 days', interval '1 minute',
            interval '5 minutes', interval '7 days');
        PERFORM chaintape_dashboard_aggregate(cur || '_option_trades_1h',
            chaintape_trades_1h_sql(cur), interval '3 days', interval '1 hour',
            interval '30 minutes', interval '30 days');
    END LOOP;
    FOREACH kind IN ARRAY ARRAY['option_quotes_1m', 'option_quotes_1h', 'option_trades_1m',
                                'option_trades_1h'] LOOP
        SELECT array_agg(format('SELECT %L::text AS currency, t.* FROM %I t',
                                upper(c.currency), c.currency || '_' || kind)
                         ORDER BY c.currency)
          INTO parts
          FROM chaintape_currencies c
         WHERE to_regclass(quote_ident(c.currency || '_' || kind)) IS NOT NULL;
        CONTINUE WHEN parts IS NULL;
        body := array_to_string(parts, E'\nUNION ALL ');
        CONTINUE WHEN obj_description(to_regclass(quote_ident(kind)), 'pg_class')
                      = 'chaintape:' || md5(body);
        -- CREATE OR REPLACE keeps the Grafana role's grant when a currency is added.
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

-- Fleet health: the newest row per table and currency, cheaply. Quotes have no "timestamp"
-- index (see 007), so their newest row is found per live option through the
-- (instrument_name, "timestamp") index instead of reading the newest chunk. SECURITY DEFINER:
-- the read-only Grafana role may call it without reading the per-currency tables themselves.
CREATE OR REPLACE FUNCTION chaintape_newest_rows()
RETURNS TABLE (table_name text, currency text, newest timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    cur text;
    kind text;
    tbl text;
BEGIN
    FOR cur IN SELECT c.currency FROM chaintape_currencies c ORDER BY c.currency LOOP
        tbl := cur || '_option_quotes';
        IF to_regclass(quote_ident(tbl)) IS NOT NULL THEN
            RETURN QUERY EXECUTE format($q$
                SELECT 'option_quotes'::text, %L::text, max(q.ts)
                  FROM instruments i
                  CROSS JOIN LATERAL (SELECT t."timestamp" AS ts FROM %I t
                                       WHERE t.instrument_name = i.instrument_name
                                       ORDER BY t."timestamp" DESC LIMIT 1) q
                 WHERE i.currency = %L AND i.kind = 'option'
                   AND (i.is_active OR i.expiration_timestamp > now() - interval '2 days')$q$,
                upper(cur), tbl, upper(cur));
        END IF;
        FOREACH kind IN ARRAY ARRAY['option_trades', 'option_orderbook_depth'] LOOP
            tbl := cur || '_' || kind;
            CONTINUE WHEN to_regclass(quote_ident(tbl)) IS NULL;
            RETURN QUERY EXECUTE format('SELECT %L::text, %L::text, max("timestamp") FROM %I',
                                        kind, upper(cur), tbl);
        END LOOP;
        FOREACH tbl IN ARRAY ARRAY['options_ohlcv', 'perpetuals_ohlcv', 'futures_ohlcv',
                                   'options_greeks', 'funding_rates', 'index_prices'] LOOP
            RETURN QUERY EXECUTE format(
                'SELECT %L::text, %L::text, (SELECT t."timestamp" FROM %I t WHERE t.currency = %L'
                ' ORDER BY t."timestamp" DESC LIMIT 1)', tbl, upper(cur), tbl, upper(cur));
        END LOOP;
    END LOOP;
END
$$;

-- Fleet health: size of every hypertable and continuous aggregate, and (full edition) its size
-- before and after compression. SECURITY DEFINER for the same reason as above.
CREATE OR REPLACE FUNCTION chaintape_table_sizes()
RETURNS TABLE (table_name text, total_bytes bigint, before_compression_bytes bigint,
               after_compression_bytes bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    full_edition boolean := chaintape_full_edition();
    r record;
    b bigint;
    a bigint;
BEGIN
    FOR r IN
        SELECT h.hypertable_name AS shown, format('%I.%I', h.hypertable_schema,
                                                  h.hypertable_name) AS rel
          FROM timescaledb_information.hypertables h
         WHERE h.hypertable_schema = current_schema()
        UNION ALL
        SELECT ca.view_name, format('%I.%I', ca.materialization_hypertable_schema,
                                    ca.materialization_hypertable_name)
          FROM timescaledb_information.continuous_aggregates ca
         WHERE ca.view_schema = current_schema()
    LOOP
        b := NULL;
        a := NULL;
        IF full_edition THEN
            SELECT s.before_compression_total_bytes, s.after_compression_total_bytes
              INTO b, a FROM hypertable_compression_stats(r.rel::regclass) s;
        END IF;
        table_name := r.shown;
        -- hypertable_size() costs ~0.3 s per table in 2.28 whatever the size; the chunks' own
        -- sizes are instant. A compressed chunk's rows live in its compressed table: added.
        SELECT pg_total_relation_size(r.rel::regclass)
               + coalesce(sum(pg_total_relation_size(c)), 0) + coalesce(a, 0)
          INTO total_bytes
          FROM show_chunks(r.rel::regclass) c;
        before_compression_bytes := b;
        after_compression_bytes := a;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION chaintape_newest_rows() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION chaintape_table_sizes() FROM PUBLIC;
