-- The checks of `python -m scripts.verify`, for psql:
--   psql "$DATABASE_URL" -v max_age_s=900 -f schema/verify.sql
-- One row per table and currency: rows, newest "timestamp", its age, compressed size and ratio
-- (full edition). A row is stale when its newest "timestamp" is older than max_age_s, plus one
-- hour for options_greeks and funding_rates (polled/published hourly). Empty tables show 'empty'.
-- The last query returns the number of stale rows; with ON_ERROR_STOP a scheduler can test it:
--   psql ... -At -f schema/verify.sql | tail -1   (0 = fresh)
\if :{?max_age_s}
\else
  \set max_age_s 900
\endif

WITH v AS (
    SELECT v.*,
           now() - v.newest AS age,
           make_interval(secs => :max_age_s
                         + CASE WHEN v.table_name IN ('options_greeks', 'funding_rates')
                                THEN 3600 ELSE 0 END) AS allowed
      FROM chaintape_verify() v
)
SELECT table_name,
       currency,
       row_count,
       newest,
       date_trunc('second', age) AS age,
       CASE WHEN row_count = 0 THEN 'empty'
            WHEN age > allowed THEN 'STALE'
            ELSE 'ok' END AS status,
       pg_size_pretty(before_bytes) AS before_compression,
       pg_size_pretty(after_bytes) AS after_compression,
       round(before_bytes::numeric / nullif(after_bytes, 0), 1) AS ratio
  FROM v
 ORDER BY table_name, currency;

SELECT count(*) AS stale
  FROM chaintape_verify() v
 WHERE v.row_count > 0
   AND now() - v.newest > make_interval(secs => :max_age_s
                         + CASE WHEN v.table_name IN ('options_greeks', 'funding_rates')
                                THEN 3600 ELSE 0 END);
