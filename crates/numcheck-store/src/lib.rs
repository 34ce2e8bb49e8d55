//! numcheck's durable state: users, API keys, the credit ledger, tasks and their chunks.
//!
//! Everything goes through the [`Store`] trait so that the embedded SQLite backend (the
//! default) and a server database backend share one contract and one test story. This crate
//! knows the domain types of `numcheck-core`, but nothing of HTTP or of how chunks are
//! processed; blobs (uploads, results) live elsewhere and are referenced here by key.

mod postgres;
mod presence;
mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use numcheck_core::{E164, HalfLives, Observation, Profile, TaskId, TaskStatus, TaskType, UserId};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("not enough credits: the task needs {needed}, the balance allows {available}")]
    InsufficientCredits { needed: i64, available: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database read error: {0}")]
    Read(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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

/// Who a request's key belongs to, and what the key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
    /// May post evidence.
    pub can_ingest: bool,
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    pub user_name: String,
    pub prefix: String,
    pub can_ingest: bool,
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

/// The durable state behind numcheck.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    // --- users and keys ---

    /// Creates a user; `credits: None` makes it unlimited. A limited user's opening balance
    /// is written to the ledger as a grant.
    async fn create_user(
        &self,
        id: UserId,
        name: &str,
        credits: Option<i64>,
        is_admin: bool,
        now_ms: i64,
    ) -> Result<User>;
    async fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    async fn user(&self, id: &UserId) -> Result<Option<User>>;
    /// Adds credits to a limited user (a ledger grant). Fails with `Conflict` on an unlimited
    /// user, who has nothing to add to.
    async fn grant_credits(
        &self,
        user: &UserId,
        amount: i64,
        note: &str,
        now_ms: i64,
    ) -> Result<()>;
    async fn add_key(
        &self,
        user: &UserId,
        prefix: &str,
        hash: &[u8],
        can_ingest: bool,
        now_ms: i64,
    ) -> Result<KeyInfo>;
    async fn list_keys(&self) -> Result<Vec<KeyInfo>>;
    /// Revokes the key with this id or prefix; the number of keys revoked.
    async fn revoke_key(&self, id_or_prefix: &str, now_ms: i64) -> Result<u64>;
    /// The user owning a live (unrevoked) key with this hash, and the key's rights.
    async fn principal_for_key_hash(&self, hash: &[u8]) -> Result<Option<Principal>>;
    async fn count_keys(&self) -> Result<i64>;
    /// Credits a limited user can still commit: balance less what running tasks hold.
    async fn available_credits(&self, user: &UserId) -> Result<Option<i64>>;
    async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerRow>>;

    // --- tasks ---

    /// Inserts a task and its chunks in one transaction, after checking the balance and the
    /// idempotency key.
    async fn create_task(&self, task: NewTask) -> Result<Created>;
    async fn task(&self, id: &TaskId) -> Result<Option<Task>>;
    async fn task_by_idempotency_key(&self, user: &UserId, key: &str) -> Result<Option<Task>>;
    /// A user's tasks, newest first, after `after` (the last task of the previous page).
    async fn list_tasks(
        &self,
        user: &UserId,
        status: Option<TaskStatus>,
        after: Option<&TaskCursor>,
        limit: i64,
    ) -> Result<Vec<Task>>;
    /// Cancels a user's open task: no more chunks are handed out, its held credits are
    /// released and nothing is charged. `NotFound` for another user's task, `Conflict` when the
    /// task has already ended.
    async fn cancel_task(&self, user: &UserId, task: &TaskId, now_ms: i64) -> Result<Task>;
    /// Deletes a user's task (cancelling it first when open) and returns it as it was, so the
    /// caller can remove its blobs. The ledger keeps its charge.
    async fn delete_task(&self, user: &UserId, task: &TaskId, now_ms: i64) -> Result<Task>;
    async fn usage(&self, user: &UserId) -> Result<Usage>;
    /// The user's pending and processing tasks.
    async fn open_tasks(&self, user: &UserId) -> Result<i64>;
    /// How many tasks are in each status, over all users (for metrics).
    async fn tasks_by_status(&self) -> Result<Vec<(String, i64)>>;
    /// The user's latest ledger rows, newest first.
    async fn ledger_recent(&self, user: &UserId, limit: i64) -> Result<Vec<LedgerRow>>;

    // --- completion callbacks ---

    /// Leases the next due completion notice.
    async fn claim_callback(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Callback>>;
    /// Records an attempt's outcome; `false` when the lease was lost.
    async fn finish_callback(
        &self,
        task: &TaskId,
        owner: &str,
        outcome: &CallbackOutcome,
        now_ms: i64,
    ) -> Result<bool>;
    async fn callback_state(&self, task: &TaskId) -> Result<Option<CallbackState>>;
    /// The user's secret for signing completion notices; `candidate` becomes it when the user
    /// has none yet (or always, with `replace`: a rotation).
    async fn callback_secret(
        &self,
        user: &UserId,
        candidate: &str,
        replace: bool,
    ) -> Result<String>;

    // --- work ---

    /// Leases the next piece of work: an export of a fully processed task, else the next
    /// unprocessed chunk. Work whose lease expired is handed out again.
    async fn claim_work(&self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Work>>;
    /// Records a processed chunk and adds its counters to the task, atomically. Returns
    /// `false` (and changes nothing) when the lease was lost or the chunk is already done.
    async fn commit_chunk(
        &self,
        task: &TaskId,
        seq: i64,
        owner: &str,
        success: i64,
        failure: i64,
        now_ms: i64,
    ) -> Result<bool>;
    /// Extends a lease this owner holds: a chunk's (`seq`) or a task's export lease (`None`),
    /// so long work is not taken over while it is still being done (a heartbeat). Returns
    /// `false` when the lease is no longer this owner's.
    async fn renew_lease(
        &self,
        task: &TaskId,
        seq: Option<i64>,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool>;
    /// Publishes the result and charges the task, once. Returns `false` when the lease was
    /// lost or the task was already exported.
    async fn finish_export(
        &self,
        task: &TaskId,
        owner: &str,
        result_key: &str,
        charge: i64,
        now_ms: i64,
    ) -> Result<bool>;
    /// Ends a task as failed; nothing is charged and held credits are released.
    async fn fail_task(&self, task: &TaskId, message: &str, now_ms: i64) -> Result<()>;
    /// Gives up every lease held by `owner` (on shutdown, or by a restarted single node).
    async fn release_leases(&self, owner: Option<&str>) -> Result<u64>;

    // --- evidence ---

    /// Appends observations to the log, skipping ones already there, and merges the new ones
    /// into their numbers' profiles, in one transaction.
    async fn ingest(
        &self,
        batch: Vec<Observation>,
        half_lives: &HalfLives,
        now_ms: i64,
    ) -> Result<IngestOutcome>;
    /// The stored profiles of these numbers (numbers without evidence are absent).
    async fn profiles(&self, numbers: &[E164]) -> Result<HashMap<E164, Profile>>;
    async fn evidence_stats(&self) -> Result<EvidenceStats>;
    /// Recomputes every profile from the log (in one transaction, so ingest waits).
    async fn rebuild_profiles(&self, half_lives: &HalfLives) -> Result<RebuildReport>;
    // --- live lookups ---

    /// Takes up to `want` lookups from the task's budget of `max`, atomically; returns how
    /// many were granted.
    async fn reserve_lookups(&self, task: &TaskId, want: i64, max: i64) -> Result<i64>;
    /// Which of `numbers` `provider` was asked at or after `since_ms`.
    async fn looked_up_since(
        &self,
        provider: &str,
        numbers: &[E164],
        since_ms: i64,
    ) -> Result<std::collections::HashSet<E164>>;
    /// Records lookups: (number, raw status or empty) asked of `provider` at `at_ms`.
    async fn record_lookups(
        &self,
        provider: &str,
        at_ms: i64,
        rows: &[(E164, String)],
    ) -> Result<()>;

    /// Closes connections (a no-op where there is nothing to close).
    async fn close(&self) {}

    /// Called by the serving process: keep an in-memory filter of which numbers have a
    /// profile, so lookups skip numbers without evidence. Backends without one ignore it.
    fn keep_presence_filter(&self) {}
    /// How many presence filters this store has built so far (0 when it keeps none).
    fn presence_filter_builds(&self) -> u64 {
        0
    }
}

/// The identity of an observation: the first 16 bytes of SHA-256 of (source, message id)
/// when there is a message id, else of its content. The same fact ingested twice is stored
/// once. 128 bits keep accidental collisions out of reach (about 2^64 facts before one is
/// likely) while keeping the unique index small.
pub fn dedupe_key(obs: &Observation) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match &obs.message_id {
        Some(id) => {
            h.update(b"m\0");
            h.update(obs.source.as_bytes());
            h.update(b"\0");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"c\0");
            h.update(obs.number.as_u64().to_le_bytes());
            h.update(obs.observed_at_ms.to_le_bytes());
            h.update(obs.source.as_bytes());
            h.update(b"\0");
            h.update(obs.kind.as_str().as_bytes());
            h.update(b"\0");
            h.update(obs.raw_code.as_bytes());
            h.update(b"\0");
            h.update(obs.class.as_str().as_bytes());
            h.update(obs.weight.to_le_bytes());
        }
    }
    let digest: [u8; 32] = h.finalize().into();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}
