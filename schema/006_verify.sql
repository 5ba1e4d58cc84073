-- chaintape:idempotent
-- chaintape_verify(): one row per market-data table and currency with its row count, newest
-- "timestamp" and (full edition) the table's compressed size. `python -m scripts.verify` and
-- schema/verify.sql read it and decide staleness.
--
-- Counts are exact (count(*)), which reads every row: seconds on tables of tens of millions of
-- rows, minutes on billions (compressed chunks are cheaper). Newest rows come from the
-- "timestamp" index. Shared tables are grouped by their `currency` column; a registered currency
-- with no rows is listed with row_count 0.
CREATE OR REPLACE FUNCTION chaintape_verify()
RETURNS TABLE (table_name text, currency text, row_count bigint, newest timestamptz,
               before_bytes bigint, after_bytes bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    full_edition boolean := chaintape_full_edition();
    cur   text;
    kind  text;
    tbl   text;
    b     bigint;
    a     bigint;
BEGIN
    FOR cur IN SELECT c.currency FROM chaintape_currencies c ORDER BY c.currency LOOP
        FOREACH kind IN ARRAY ARRAY['option_quotes', 'option_trades', 'option_orderbook_depth'] LOOP
            tbl := cur || '_' || kind;
            CONTINUE WHEN to_regclass(quote_ident(tbl)) IS NULL;
            b := NULL;
            a := NULL;
            IF full_edition THEN
                SELECT s.before_compression_total_bytes, s.after_compression_total_bytes
                  INTO b, a FROM hypertable_compression_stats(tbl::regclass) s;
            END IF;
            RETURN QUERY EXECUTE format(
                'SELECT %L::text, %L::text, count(*), max("timestamp"), $1, $2 FROM %I',
                tbl, upper(cur), tbl) USING b, a;
        END LOOP;
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['options_ohlcv', 'perpetuals_ohlcv', 'futures_ohlcv',
                               'options_greeks', 'funding_rates', 'index_prices'] LOOP
        CONTINUE WHEN to_regclass(quote_ident(tbl)) IS NULL;
        b := NULL;
        a := NULL;
        IF full_edition THEN
            SELECT s.before_compression_total_bytes, s.after_compression_total_bytes
              INTO b, a FROM hypertable_compression_stats(tbl::regclass) s;
        END IF;
        RETURN QUERY EXECUTE format($q$
            SELECT %L::text, k.currency, coalesce(d.n, 0), d.newest, $1, $2
              FROM (SELECT t.currency, count(*) AS n, max(t."timestamp") AS newest
                      FROM %I t GROUP BY t.currency) d
              FULL JOIN (SELECT upper(c.currency) AS currency FROM chaintape_currencies c) r
                   USING (currency)
              CROSS JOIN LATERAL (SELECT coalesce(d.currency, r.currency) AS currency) k
             ORDER BY 2$q$, tbl, tbl) USING b, a;
    END LOOP;
END
$$;
