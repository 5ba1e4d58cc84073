-- chaintape:idempotent
-- Settings the schema functions read, the registry of recorded currencies, and small helpers.
-- `python -m scripts.migrate` writes the settings on every run; a psql user can change them and
-- then run `SELECT chaintape_apply_policies();`.

CREATE TABLE IF NOT EXISTS chaintape_settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- retention_days: 0 keeps everything; N drops raw chunks older than N days (full edition).
-- schedule_policies: 'false' creates policies paused (tests; a restore in progress).
INSERT INTO chaintape_settings (name, value) VALUES
    ('retention_days', '0'),
    ('schedule_policies', 'true')
ON CONFLICT (name) DO NOTHING;

-- One row per currency whose {cur}_option_* tables exist; chaintape_rebuild_views() reads it.
CREATE TABLE IF NOT EXISTS chaintape_currencies (
    currency text PRIMARY KEY CHECK (currency ~ '^[a-z][a-z0-9]{1,15}$'),  -- table prefix: btc
    added_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION chaintape_setting(setting_name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT value FROM chaintape_settings WHERE name = setting_name
$$;

-- 'timescale' is the full edition (compression, continuous aggregates, policies); 'apache' has
-- hypertables only.
CREATE OR REPLACE FUNCTION chaintape_full_edition() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('timescaledb.license', true), '') = 'timescale'
$$;

-- The one place a skipped feature is reported. migrate.py groups these warnings by feature
-- (the text before " skipped for ") and logs each feature once, so keep the wording.
CREATE OR REPLACE FUNCTION chaintape_skipped(feature text, relation text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'chaintape: % skipped for %: the "%" edition of TimescaleDB does not support it',
        feature, relation, coalesce(current_setting('timescaledb.license', true), 'unknown')
        USING HINT = 'run the timescale/timescaledb image (full edition, license "timescale") to get it';
END
$$;

-- Policies start running within seconds of being added; with schedule_policies = 'false' they
-- are created paused and run only by `CALL run_job(id)`.
CREATE OR REPLACE FUNCTION chaintape_schedule(job_id integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(chaintape_setting('schedule_policies'), 'true') = 'false' THEN
        PERFORM alter_job(job_id, scheduled => false);
    END IF;
END
$$;
