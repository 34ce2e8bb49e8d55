-- Task controls and completion callbacks (see the SQLite migration 0005 for the design).
ALTER TABLE tasks ADD COLUMN callback_url TEXT;
-- Each user's secret for signing completion notices (made on first use; the receiver needs
-- it to check signatures, so it is stored as is, unlike API keys).
ALTER TABLE users ADD COLUMN callback_secret TEXT;
-- The uploaded file's name, for people (task lists, the dashboard).
ALTER TABLE tasks ADD COLUMN file_name TEXT;

CREATE TABLE callbacks (
    task_id         TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_at_ms      BIGINT NOT NULL,
    last_error      TEXT,
    last_status     INTEGER,
    delivered_at_ms BIGINT,
    lease_owner     TEXT,
    lease_until_ms  BIGINT
);
CREATE INDEX callbacks_due ON callbacks(next_at_ms) WHERE state = 'pending';
