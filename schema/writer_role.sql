-- Optional, not a migration: a role for collectors that writes data but cannot change the schema.
-- Run as the owner after `python -m scripts.migrate`:
--   psql "$OWNER_DATABASE_URL" -v ON_ERROR_STOP=1 -v writer=chaintape_writer \
--        -v password='a long random password' -f schema/writer_role.sql
-- then give the collectors DATABASE_URL=postgresql://chaintape_writer:...@host:5432/chaintape.
-- Their start-up migrate finds everything in place and changes nothing. Adding a currency or
-- changing RETENTION_DAYS still needs the owner (`python -m scripts.migrate`): it creates tables
-- and policies. Staging tables for COPY are temporary tables (TEMPORARY on the database).
\if :{?writer}
\else
  \set writer chaintape_writer
\endif

SELECT format('CREATE ROLE %I LOGIN', :'writer')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'writer') \gexec
ALTER ROLE :"writer" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :'writer') \gexec
GRANT USAGE ON SCHEMA public TO :"writer";
-- Least privilege: read everything (cursors, coverage, the start-up schema check), append rows,
-- and update only the tables the writer upserts. Raw quotes, trades, books, greeks, funding and
-- index prices are append-only for it: it can add a row, never change or delete one.
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO :"writer";
GRANT UPDATE ON options_ohlcv, perpetuals_ohlcv, futures_ohlcv, instruments, data_gaps,
                collector_status, spool_offsets, backfill_progress TO :"writer";
-- spool offsets of replayed segments, resolved batch ids, rejected_messages past retention
GRANT DELETE ON collector_status, spool_offsets, writer_batches, rejected_messages TO :"writer";
-- the schema's own bookkeeping is the owner's
REVOKE INSERT ON schema_migrations, chaintape_settings FROM :"writer";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"writer";
-- tables of currencies added later by the owner (quotes, trades, books: append-only)
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO :"writer";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO :"writer";
