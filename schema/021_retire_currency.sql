-- Retiring a currency (e.g. one added by mistake: CURRENCY=DOGE left empty doge_* tables):
--   SELECT chaintape_retire_currency('doge');
-- drops its per-currency tables with their rows ({cur}_option_quotes, _option_trades,
-- _option_orderbook_depth and, on the full edition, the {cur}_option_trade_bars_1h aggregate),
-- takes it out of chaintape_currencies and of the union views, and returns what it dropped.
-- Rows of shared tables (instruments, options_ohlcv, funding_rates, ...) are kept. Stop the
-- currency's collector first and remove it from CURRENCY/CURRENCIES, or its next start (or
-- `python -m scripts.migrate`) creates the tables again.
CREATE OR REPLACE FUNCTION chaintape_retire_currency(cur text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    c       text := lower(cur);
    kind    text;
    rel     text;
    dropped text[] := '{}';
BEGIN
    IF c !~ '^[a-z][a-z0-9]{1,15}$' THEN
        RAISE EXCEPTION 'not a currency code: %', cur;
    END IF;
    DELETE FROM chaintape_currencies WHERE currency = c;
    -- The views now span the other currencies only; with none left they are dropped.
    PERFORM chaintape_rebuild_views();
    -- The dashboards' aggregates (030) read its tables: the hourly ones first (they read the
    -- minute ones). Their union views are dropped and rebuilt over the other currencies.
    FOREACH kind IN ARRAY ARRAY['option_quotes_1h', 'option_trades_1h', 'option_quotes_1m',
                                'option_trades_1m'] LOOP
        rel := c || '_' || kind;
        EXECUTE format('DROP VIEW IF EXISTS %I', kind);
        CONTINUE WHEN to_regclass(quote_ident(rel)) IS NULL;
        IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates a
                    WHERE a.view_schema = 'public' AND a.view_name = rel) THEN
            EXECUTE format('DROP MATERIALIZED VIEW %I', rel);
        ELSE
            EXECUTE format('DROP VIEW %I', rel);
        END IF;
        dropped := dropped || rel;
    END LOOP;
    IF to_regprocedure('chaintape_dashboard_objects()') IS NOT NULL THEN
        PERFORM chaintape_dashboard_objects();
    END IF;
    FOREACH kind IN ARRAY ARRAY['option_trade_bars_1h', 'option_quotes', 'option_trades',
                                'option_orderbook_depth'] LOOP
        rel := c || '_' || kind;
        CONTINUE WHEN to_regclass(quote_ident(rel)) IS NULL;
        IF NOT EXISTS (SELECT 1 FROM chaintape_currencies c2
                        WHERE to_regclass(quote_ident(c2.currency || '_' || kind)) IS NOT NULL) THEN
            EXECUTE format('DROP VIEW IF EXISTS %I', kind);
        END IF;
        IF kind = 'option_trade_bars_1h' THEN
            EXECUTE format('DROP MATERIALIZED VIEW %I', rel);
        ELSE
            EXECUTE format('DROP TABLE %I', rel);
        END IF;
        dropped := dropped || rel;
    END LOOP;
    RETURN dropped;
END
$$;
