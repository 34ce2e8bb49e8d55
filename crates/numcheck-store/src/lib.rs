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
mod error;
mod evidence;
mod lookups;
mod model;
mod postgres;
mod presence;
mod rows;
mod sqlite;
mod store;
mod tasks;

pub use accounts::Accounts;
pub use backend::WorkSignals;
pub use callbacks::Callbacks;
pub use error::{Result, StoreError};
pub use evidence::{EvidenceStore, dedupe_key};
pub use lookups::LookupLog;
pub use model::{
    Callback, CallbackOutcome, CallbackState, ChunkSpec, Created, EvidenceStats, IngestOutcome,
    KeyInfo, KeyRights, LedgerRow, NewTask, Principal, RebuildReport, Task, TaskCursor, Usage,
    User, Work,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::Store;
pub use tasks::TaskQueue;

/// Every role trait and [`Store`]: `use numcheck_store::prelude::*;` lets a caller holding a
/// store (concrete or `dyn Store`) call any of its methods.
pub mod prelude {
    pub use crate::{Accounts, Callbacks, EvidenceStore, LookupLog, Store, TaskQueue};
}
