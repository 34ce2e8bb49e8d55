-- Task controls and completion callbacks.
--
-- A task may name a URL to be told when it ends. The notice is queued in `callbacks` in the
-- same transaction that ends the task (exported, failed or cancelled), so a crash between the
-- two cannot lose it; a delivery loop leases due rows, POSTs, and records the outcome.
ALTER TABLE tasks ADD COLUMN callback_url TEXT;
-- Each user's secret for signing completion notices (made on first use; the receiver needs
-- it to check signatures, so it is stored as is, unlike API keys).
ALTER TABLE users ADD COLUMN callback_secret TEXT;
-- The uploaded file's name, for people (task lists, the dashboard).
ALTER TABLE tasks ADD COLUMN file_name TEXT;

CREATE TABLE callbacks (
    task_id         TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    -- pending (to send, at next_at_ms), delivered, or failed (gave up).
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_ms      INTEGER NOT NULL,
    last_error      TEXT,
    last_status     INTEGER,
    delivered_at_ms INTEGER,
    lease_owner     TEXT,
    lease_until_ms  INTEGER
);
CREATE INDEX callbacks_due ON callbacks(next_at_ms) WHERE state = 'pending';
