-- numcheck's server schema (PostgreSQL 13+). Times are BIGINT: *_ms milliseconds and *_ns
-- nanoseconds since the Unix epoch, UTC. Ids are TEXT, hashes and profiles BYTEA. The same
-- tables as the SQLite schema (migrations/sqlite), in one file, plus what a shared server
-- database needs: leases claimed with FOR UPDATE SKIP LOCKED, and an observation log
-- partitioned by time.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- NULL: unlimited. Otherwise the balance in credits (one credit = one unique number).
    credits       BIGINT,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    -- The first characters of the key, shown in listings so a key can be recognised.
    prefix        TEXT NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    hash          BYTEA NOT NULL UNIQUE,
    can_ingest    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX api_keys_prefix ON api_keys(prefix);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    task_type       TEXT NOT NULL,
    status          TEXT NOT NULL,
    total           BIGINT NOT NULL,
    success         BIGINT NOT NULL DEFAULT 0,
    failure         BIGINT NOT NULL DEFAULT 0,
    default_region  TEXT,
    created_at_ns   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    input_key       TEXT NOT NULL,
    input_bytes     BIGINT NOT NULL,
    result_key      TEXT,
    -- Credits held for this task while it runs (limited users only).
    reserved        BIGINT NOT NULL DEFAULT 0,
    charged         BIGINT,
    message         TEXT,
    idempotency_key TEXT,
    chunk_count     BIGINT NOT NULL,
    chunks_done     BIGINT NOT NULL DEFAULT 0,
    -- Task options (result columns, formats), as JSON.
    options         TEXT NOT NULL DEFAULT '{}',
    -- Live lookups the task's budget has paid for so far.
    lookups_made    BIGINT NOT NULL DEFAULT 0,
    -- Export lease: who assembles the result.
    lease_owner     TEXT,
    lease_until_ms  BIGINT
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks(user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_user ON tasks(user_id, created_at_ns);
-- Open tasks in age order: the claim's candidates.
CREATE INDEX tasks_open ON tasks(created_at_ns, id) WHERE status IN ('pending', 'processing');

CREATE TABLE chunks (
    task_id        TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    byte_start     BIGINT NOT NULL,
    byte_end       BIGINT NOT NULL,
    first_line     BIGINT NOT NULL,
    -- Non-blank lines in the chunk.
    lines          BIGINT NOT NULL,
    done           BOOLEAN NOT NULL DEFAULT FALSE,
    success        BIGINT NOT NULL DEFAULT 0,
    failure        BIGINT NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_until_ms BIGINT,
    PRIMARY KEY (task_id, seq)
);
-- The chunks still to do, by task and order: what a claim scans.
CREATE INDEX chunks_todo ON chunks(task_id, seq) WHERE NOT done;
-- Live leases, for the fair-share count of leases per user.
CREATE INDEX chunks_leased ON chunks(lease_until_ms, task_id)
    WHERE NOT done AND lease_until_ms IS NOT NULL;
CREATE INDEX chunks_owner ON chunks(lease_owner) WHERE lease_owner IS NOT NULL;

-- Every movement of credits. A task is charged at most once (the unique index).
CREATE TABLE ledger (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  TEXT NOT NULL REFERENCES users(id),
    at_ms    BIGINT NOT NULL,
    amount   BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    task_id  TEXT,
    note     TEXT
);
CREATE UNIQUE INDEX ledger_one_charge ON ledger(task_id, kind) WHERE task_id IS NOT NULL;
CREATE INDEX ledger_user ON ledger(user_id, id);

-- Evidence. The observation log (the truth) is partitioned by month of observed_at_ms:
-- old months can be detached, archived or dropped whole, and a month's rows sit together.
-- Ingest creates a month's partition the first time it sees the month (named
-- observations_yYYYYmMM, bounds [first ms of the month, first ms of the next)); the DEFAULT
-- partition catches times outside the years ingest makes partitions for.
CREATE TABLE observations (
    -- Ingest order, for a deterministic rebuild. A sequence, not an identity column: PostgreSQL
    -- before 17 has no identity columns on partitioned tables.
    id             BIGSERIAL NOT NULL,
    -- E.164 digits as an integer.
    number         BIGINT NOT NULL,
    observed_at_ms BIGINT NOT NULL,
    source         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    raw_code       TEXT NOT NULL,
    class          TEXT NOT NULL,
    weight         DOUBLE PRECISION NOT NULL,
    message_id     TEXT,
    -- 128 bits of SHA-256 of (source, message id), else of the row's content.
    dedupe_key     BYTEA NOT NULL,
    ingested_at_ms BIGINT NOT NULL
) PARTITION BY RANGE (observed_at_ms);
CREATE TABLE observations_default PARTITION OF observations DEFAULT;
-- By number (then ingest order) in every partition, for the rebuild.
CREATE INDEX observations_number ON observations(number, id);

-- The identity of observations. A unique index on the partitioned log would have to include
-- the partition key (observed_at_ms), and then a fact re-sent with another time would not be
-- caught; so identity lives here, unpartitioned. A row here and its row in the log are written
-- in the same statement.
CREATE TABLE observation_keys (
    number     BIGINT NOT NULL,
    dedupe_key BYTEA NOT NULL,
    PRIMARY KEY (number, dedupe_key)
);

CREATE TABLE profiles (
    number BIGINT PRIMARY KEY,
    -- numcheck_core::Profile::to_bytes
    data   BYTEA NOT NULL
);

-- Live lookups: what each provider was asked and when (a re-check within the freshness window
-- asks again for nothing).
CREATE TABLE lookup_cache (
    number           BIGINT NOT NULL,
    provider         TEXT NOT NULL,
    looked_up_at_ms  BIGINT NOT NULL,
    -- The provider's raw status, or empty when it had no answer for the number.
    raw_status       TEXT NOT NULL,
    PRIMARY KEY (number, provider)
);

-- The fair-share order of claimable chunks, for operators (the store runs the same logic in
-- its claim statement, with the current time as a parameter): open tasks' undone chunks whose
-- lease is free or expired, each with the number of live chunk leases its user holds.
-- `SELECT * FROM chunk_queue(<now_ms>) LIMIT 20` shows who is next.
CREATE FUNCTION chunk_queue(now_ms BIGINT)
RETURNS TABLE (task_id TEXT, seq BIGINT, user_id TEXT, user_leases BIGINT, created_at_ns BIGINT)
LANGUAGE sql STABLE AS $$
    WITH load AS (
        SELECT t.user_id, COUNT(*) AS leases
        FROM chunks c JOIN tasks t ON t.id = c.task_id
        WHERE NOT c.done AND c.lease_until_ms >= now_ms
        GROUP BY t.user_id
    )
    SELECT c.task_id, c.seq, t.user_id, COALESCE(l.leases, 0), t.created_at_ns
    FROM chunks c
    JOIN tasks t ON t.id = c.task_id
    LEFT JOIN load l ON l.user_id = t.user_id
    WHERE NOT c.done AND t.status IN ('pending', 'processing')
      AND (c.lease_until_ms IS NULL OR c.lease_until_ms < now_ms)
    ORDER BY GREATEST(COALESCE(l.leases, 0) - 1, 0), t.created_at_ns, t.id, c.seq
$$;
