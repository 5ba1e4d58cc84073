-- chaintape:idempotent
-- Exactly-once writes when a COMMIT's outcome is unknown, and replay offsets inside a frame.
--
-- writer_batches: every writer transaction inserts its batch id first. When the connection
-- dies during COMMIT (or the wait for it times out), the rows are spooled with that id; before
-- replaying them the writer claims the id (INSERT ... ON CONFLICT DO NOTHING, which waits for
-- a transaction still holding it) and skips the rows when the original transaction committed
-- (replayed = false). Rows older than a day are pruned by the writer once its spool is empty.
--
-- spool_offsets.rows_done: a spooled frame the database refuses a row of is written in parts;
-- (last_batch_seq, rows_done) says "frames up to last_batch_seq, and the first rows_done rows
-- of the next one, are in", so every part commits its own offset.
CREATE TABLE IF NOT EXISTS writer_batches (
    collector_name text NOT NULL,
    batch_id       int8 NOT NULL,
    replayed       bool NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collector_name, batch_id)
);
ALTER TABLE spool_offsets ADD COLUMN IF NOT EXISTS rows_done int4 NOT NULL DEFAULT 0;
