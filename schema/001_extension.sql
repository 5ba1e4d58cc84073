-- chaintape:idempotent
-- TimescaleDB must be installed in the server and listed in shared_preload_libraries
-- (the timescale/timescaledb image does both). `python -m scripts.migrate` checks this first and
-- says what to install when it is missing.
CREATE EXTENSION IF NOT EXISTS timescaledb;
