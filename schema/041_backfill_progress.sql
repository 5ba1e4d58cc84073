-- chaintape:idempotent
-- Where each range of `python -m scripts.backfill` has got to: one row per job, currency and
-- part (trades, ohlcv, funding, index), its cursor saved once the rows before it are stored,
-- so an interrupted backfill goes on from there (scripts/storage/queries.py reads and writes it).
CREATE TABLE IF NOT EXISTS backfill_progress (
    job        text        NOT NULL,
    currency   text        NOT NULL,
    what       text        NOT NULL,
    cursor     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, currency, what)
);

-- Its columns' meaning (020_column_comments.sql lists them; this file runs later).
SELECT chaintape_comment_columns();
