-- numcheck's embedded schema. Times are integers: *_ms milliseconds and *_ns nanoseconds
-- since the Unix epoch, UTC.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- NULL: unlimited. Otherwise the balance in credits (one credit = one unique number).
    credits       INTEGER,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       TEXT NOT NULL REFERENCES users(id),
    -- The first characters of the key, shown in listings so a key can be recognised.
    prefix        TEXT NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    hash          BLOB NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    task_type       TEXT NOT NULL,
    status          TEXT NOT NULL,
    total           INTEGER NOT NULL,
    success         INTEGER NOT NULL DEFAULT 0,
    failure         INTEGER NOT NULL DEFAULT 0,
    default_region  TEXT,
    created_at_ns   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    input_key       TEXT NOT NULL,
    input_bytes     INTEGER NOT NULL,
    result_key      TEXT,
    -- Credits held for this task while it runs (limited users only).
    reserved        INTEGER NOT NULL DEFAULT 0,
    charged         INTEGER,
    message         TEXT,
    idempotency_key TEXT,
    chunk_count     INTEGER NOT NULL,
    chunks_done     INTEGER NOT NULL DEFAULT 0,
    -- Export lease: who assembles the result.
    lease_owner     TEXT,
    lease_until_ms  INTEGER
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks(user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_user ON tasks(user_id, created_at_ns);
CREATE INDEX tasks_open ON tasks(status) WHERE status IN ('pending', 'processing');

CREATE TABLE chunks (
    task_id        TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    byte_start     INTEGER NOT NULL,
    byte_end       INTEGER NOT NULL,
    first_line     INTEGER NOT NULL,
    -- Non-blank lines in the chunk.
    lines          INTEGER NOT NULL,
    done           INTEGER NOT NULL DEFAULT 0,
    success        INTEGER NOT NULL DEFAULT 0,
    failure        INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    PRIMARY KEY (task_id, seq)
);
CREATE INDEX chunks_todo ON chunks(done, task_id, seq) WHERE done = 0;

-- Every movement of credits. A task is charged at most once (the unique index).
CREATE TABLE ledger (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  TEXT NOT NULL REFERENCES users(id),
    at_ms    INTEGER NOT NULL,
    amount   INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    task_id  TEXT,
    note     TEXT
);
CREATE UNIQUE INDEX ledger_one_charge ON ledger(task_id, kind) WHERE task_id IS NOT NULL;
CREATE INDEX ledger_user ON ledger(user_id, id);
