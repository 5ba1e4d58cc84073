-- chaintape:idempotent
-- One row per backup and per restore test (python -m scripts.backup), newest read by
-- `python -m scripts.check` and the Fleet health dashboard. The same result is kept in
-- BACKUP_DIR/chaintape-backup.status.json, which answers while the database is down.
CREATE TABLE IF NOT EXISTS backups (
    id                  bigserial PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('backup', 'restore_test')),
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    duration_s          float8,
    success             bool NOT NULL,
    file_name           text,                -- the dump written (backup) or restored (restore test)
    size_bytes          int8,                -- the dump's size
    database_bytes      int8,                -- pg_database_size at dump time
    timescaledb_version text,
    error               text,                -- one line when success is false
    details             jsonb                -- tables compared, pruned files, ...
);
CREATE INDEX IF NOT EXISTS backups_kind_finished_idx ON backups (kind, finished_at DESC);

-- Its columns' units and meaning (020_column_comments.sql lists them; this file runs later).
SELECT chaintape_comment_columns();
