-- Evidence: the append-only observation log (the truth) and per-number profiles (a view that
-- `numcheck evidence rebuild` recomputes from the log).

CREATE TABLE observations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- E.164 digits as an integer.
    number         INTEGER NOT NULL,
    observed_at_ms INTEGER NOT NULL,
    source         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    raw_code       TEXT NOT NULL,
    class          TEXT NOT NULL,
    weight         REAL NOT NULL,
    message_id     TEXT,
    -- 128 bits of SHA-256 of (source, message id), else of the row's content: the same fact
    -- twice is stored once.
    dedupe_key     BLOB NOT NULL,
    ingested_at_ms INTEGER NOT NULL
);
-- Identity and the by-number order in one index: keyed by number first, so a batch sorted by
-- number writes neighbouring pages instead of one random page per row.
CREATE UNIQUE INDEX observations_identity ON observations(number, dedupe_key);

CREATE TABLE profiles (
    number INTEGER PRIMARY KEY,
    -- numcheck_core::Profile::to_bytes
    data   BLOB NOT NULL
) WITHOUT ROWID;

-- Keys may carry the right to post evidence.
ALTER TABLE api_keys ADD COLUMN can_ingest INTEGER NOT NULL DEFAULT 0;
-- Task options (result columns, formats), as JSON.
ALTER TABLE tasks ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
