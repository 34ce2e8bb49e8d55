//! The values the store takes and gives: users and keys, tasks and their chunks, the work a
//! worker leases, completion notices, the ledger, and what evidence ingest and rebuilds did.

use numcheck_core::{TaskId, TaskStatus, TaskType, UserId};

/// A user: owns keys, tasks and a balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// `None`: unlimited.
    pub credits: Option<i64>,
    pub is_admin: bool,
    pub created_at_ms: i64,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyRights {
    /// May create, read and manage tasks (every call but posting evidence).
    pub check: bool,
    /// May post evidence.
    pub ingest: bool,
}

impl KeyRights {
    /// Tasks only: what `keys create` gives by default.
    pub const CHECK: KeyRights = KeyRights {
        check: true,
        ingest: false,
    };
    /// Evidence only: `keys create --ingest`.
    pub const INGEST: KeyRights = KeyRights {
        check: false,
        ingest: true,
    };
    /// Both: the first admin key, or `keys create --ingest --check`.
    pub const ALL: KeyRights = KeyRights {
        check: true,
        ingest: true,
    };

    /// As `keys list` shows them: `check`, `ingest`, `check+ingest` (or `none`).
    pub fn label(&self) -> &'static str {
        match (self.check, self.ingest) {
            (true, true) => "check+ingest",
            (true, false) => "check",
            (false, true) => "ingest",
            (false, false) => "none",
        }
    }
}

/// Who a request's key belongs to, and what the key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
    pub rights: KeyRights,
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    pub user_name: String,
    pub prefix: String,
    pub rights: KeyRights,
    /// The user's balance (`None`: unlimited).
    pub credits: Option<i64>,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub user_id: UserId,
    pub task_type: TaskType,
    pub status: TaskStatus,
    pub total: i64,
    pub success: i64,
    pub failure: i64,
    pub default_region: Option<String>,
    pub created_at_ns: i64,
    pub updated_at_ms: i64,
    pub input_key: String,
    pub input_bytes: i64,
    pub result_key: Option<String>,
    pub reserved: i64,
    pub charged: Option<i64>,
    pub message: Option<String>,
    pub chunk_count: i64,
    pub chunks_done: i64,
    /// Task options as JSON (result columns, formats), as given at create.
    pub options: String,
    /// Live lookups the task's budget has paid for so far.
    pub lookups_made: i64,
    /// Where to POST a notice when the task ends.
    pub callback_url: Option<String>,
    /// The uploaded file's name, as the client gave it.
    pub file_name: Option<String>,
}

/// One chunk of a task's input: a byte range of the upload and the line it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpec {
    pub byte_start: i64,
    pub byte_end: i64,
    pub first_line: i64,
    /// Non-blank lines in the range.
    pub lines: i64,
}

/// A task to insert.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    pub user_id: UserId,
    pub task_type: TaskType,
    pub total: i64,
    pub default_region: Option<String>,
    pub created_at_ns: i64,
    pub input_key: String,
    pub input_bytes: i64,
    /// Credits the task needs (its unique parseable numbers); checked against the balance
    /// of a limited user and held until the task ends.
    pub needs_credits: i64,
    pub idempotency_key: Option<String>,
    pub chunks: Vec<ChunkSpec>,
    /// Task options as JSON.
    pub options: String,
    /// Where to POST a notice when the task ends (already checked by the caller).
    pub callback_url: Option<String>,
    pub file_name: Option<String>,
    /// Chunks leased from the start to this owner until this time (ms): a node that runs a
    /// small task at once holds its chunks before any worker can claim them. (The task turns
    /// `processing` when its first chunk commits.)
    pub leased_to: Option<(String, i64)>,
    /// The most tasks the user may have pending or processing, this one included (`None`:
    /// no cap), checked as the task is stored, so concurrent creates cannot pass it together.
    pub max_open: Option<i64>,
}

/// What creating a task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(Task),
    /// A task with the same idempotency key already existed; nothing new was stored.
    Existing(Task),
}

/// Where a page of a user's task list starts: after this task, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCursor {
    pub created_at_ns: i64,
    pub id: TaskId,
}

/// What a user has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tasks the user has now (deleted ones are gone).
    pub tasks: i64,
    /// Numbers checked in exported tasks (rows with an answer).
    pub numbers_checked: i64,
    /// Credits charged over the user's life, from the ledger (deleting a task keeps its charge).
    pub credits_charged: i64,
    /// Credits held by running tasks.
    pub held: i64,
}

/// A completion notice due to be sent, leased to one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub task: Task,
    pub url: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// How one delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Delivered {
        status: i32,
    },
    /// Try again at `next_at_ms`.
    Retry {
        next_at_ms: i64,
        status: Option<i32>,
        error: String,
    },
    /// No more attempts.
    GaveUp {
        status: Option<i32>,
        error: String,
    },
}

/// A task's completion notice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackState {
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_at_ms: i64,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at_ms: Option<i64>,
}

/// A unit of work handed to one worker under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Process one chunk of a task.
    Chunk {
        task: Task,
        seq: i64,
        spec: ChunkSpec,
    },
    /// Every chunk is done: assemble and publish the result.
    Export { task: Task },
}

/// A movement of credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: i64,
    pub at_ms: i64,
    pub amount: i64,
    pub kind: String,
    pub task_id: Option<String>,
    pub note: Option<String>,
}

/// What an evidence batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// New observations stored (and merged into profiles).
    pub inserted: u64,
    /// Observations already in the log (same source and message id, or same content).
    pub duplicates: u64,
}

/// A summary of the evidence log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvidenceStats {
    pub observations: i64,
    pub numbers: i64,
    pub by_class: Vec<(String, i64)>,
    pub by_kind: Vec<(String, i64)>,
    /// The sources with the most observations (at most 20).
    pub by_source: Vec<(String, i64)>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// What a profile rebuild found and did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RebuildReport {
    pub observations: i64,
    pub profiles: i64,
    /// Profiles that differed from the stored ones beyond float tolerance (or were missing).
    pub changed: i64,
    /// Stored profiles with no observations left, removed.
    pub removed: i64,
    /// The largest relative difference of a class mass between stored and rebuilt profiles.
    pub max_relative_difference: f64,
}
