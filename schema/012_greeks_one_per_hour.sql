-- options_greeks: one row per option per hour (GREEKS_POLL_INTERVAL_S, an hour by default).
--
-- "timestamp" becomes the start of the hour the ticker was read for, so the key
-- (instrument_name, "timestamp") makes a second read in the same hour (a restart) a duplicate
-- the writer's ON CONFLICT DO NOTHING drops; the ticker's own time moves to ticker_timestamp.
-- Existing rows: the earliest of each option-hour is kept, the rest deleted, then stamped with
-- its hour (same 7-day chunk, so no row changes chunk).
ALTER TABLE options_greeks ADD COLUMN IF NOT EXISTS ticker_timestamp timestamptz;
UPDATE options_greeks SET ticker_timestamp = "timestamp" WHERE ticker_timestamp IS NULL;
DELETE FROM options_greeks g
 USING options_greeks e
 WHERE e.instrument_name = g.instrument_name
   AND time_bucket('1 hour', e."timestamp") = time_bucket('1 hour', g."timestamp")
   AND e."timestamp" < g."timestamp";
UPDATE options_greeks SET "timestamp" = time_bucket('1 hour', "timestamp")
 WHERE "timestamp" <> time_bucket('1 hour', "timestamp");
