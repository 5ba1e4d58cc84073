-- The quote tables keep one index, (instrument_name, "timestamp" DESC).
--
-- Quotes are the busiest table (every best bid/ask change of every option), and each index is
-- paid on every insert. TimescaleDB's default index on "timestamp" alone cost about 1 µs of
-- the server's ~6 µs per quote row (binary COPY, benchmark of issue 7); time ranges are already
-- served by chunk exclusion (6-hour chunks), and one option over time by the composite index.
-- Tables created from now on do not get it (004_currency_tables.sql); this drops it from the
-- quote tables that exist. Newest-row lookups read the newest chunk only (see
-- scripts/collectors/trade_repair.newest_timestamp).
DO $$
DECLARE
    idx regclass;
BEGIN
    FOR idx IN
        SELECT i.indexrelid::regclass
          FROM chaintape_currencies c
          JOIN pg_class t ON t.relname = c.currency || '_option_quotes'
                         AND t.relnamespace = current_schema()::regnamespace
          JOIN pg_index i ON i.indrelid = t.oid
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = 'timestamp'
         WHERE i.indnatts = 1 AND i.indkey[0] = a.attnum AND NOT i.indisunique
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %s', idx);
    END LOOP;
END
$$;
