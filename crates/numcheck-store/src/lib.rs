//! numcheck's durable state: users, API keys, the credit ledger, tasks and their chunks,
//! completion callbacks, the evidence log with its profiles, and the live-lookup log.
//!
//! The contract is split by role, one trait each: [`Accounts`] (users, keys, credits, the
//! ledger), [`TaskQueue`] (tasks and the work queue: chunks leased to workers, exports),
//! [`Callbacks`] (completion notices), [`EvidenceStore`] (observations and profiles) and
//! [`LookupLog`] (live-lookup budgets and freshness). [`Store`] is all of them at once, which
//! is what the server and the CLI hold (`Arc<dyn Store>`); `use numcheck_store::prelude::*;`
//! brings every role into scope so its methods can be called.
//!
//! The roles are written once, as SQL generic over the sqlx database, and serve both
//! backends; each backend keeps only what really differs:
//!
//! - [`SqliteStore`], the embedded default: one file in WAL mode, write transactions that
//!   start with `BEGIN IMMEDIATE`, a read-only pool for polls, direct (rusqlite) connections
//!   for evidence ingest and profile lookups, and the in-memory presence filter that the
//!   serving process keeps ([`SqliteStore::keep_presence_filter`]).
//! - [`PgStore`], for several nodes sharing one database: row locks and `FOR UPDATE SKIP
//!   LOCKED` to keep claimers apart, evidence copied in with `COPY` into a month-partitioned
//!   log, advisory locks between ingests and profile rebuilds.
//!
//! Each has its own migrations; the on-disk schemas differ in types (SQLite's integer flags,
//! PostgreSQL's booleans), not in meaning. This crate knows the domain types of
//! `numcheck-core`, but nothing of HTTP or of how chunks are processed; blobs (uploads,
//! results) live elsewhere and are referenced here by key.

mod accounts;
mod backend;
mod callbacks;
mod dialect;
mod evidence;
mod lookups;
mod postgres;
mod presence;
mod rows;
mod sqlite;
mod tasks;

use async_trait::async_trait;
use numcheck_core::{Observation, TaskId, TaskStatus, TaskType, UserId};

use backend::Backend;

pub use accounts::Accounts;
pub use callbacks::Callbacks;
pub use evidence::EvidenceStore;
pub use lookups::LookupLog;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use tasks::TaskQueue;

/// Every role trait and [`Store`]: `use numcheck_store::prelude::*;` lets a caller holding a
/// store (concrete or `dyn Store`) call any of its methods.
pub mod prelude {
    pub use crate::{Accounts, Callbacks, EvidenceStore, LookupLog, Store, TaskQueue};
}

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
    /// From the database the roles run on (sqlx: SQLite's pools or PostgreSQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From SQLite's direct connections for evidence: the ingest writer and the profile
    /// readers.
    #[error("evidence database error: {0}")]
    EvidenceDatabase(#[from] rusqlite::Error),
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

/// The durable state behind numcheck: every role at once, as the server and the CLI hold it
/// (`Arc<dyn Store>`). Call its methods with [`prelude`] in scope.
#[async_trait]
pub trait Store:
    Accounts + TaskQueue + Callbacks + EvidenceStore + LookupLog + std::fmt::Debug + Send + Sync
{
    /// Closes connections (a no-op where there is nothing to close).
    async fn close(&self) {}
}

#[async_trait]
impl<B: Backend> Store for B {
    async fn close(&self) {
        Backend::close(self).await;
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
