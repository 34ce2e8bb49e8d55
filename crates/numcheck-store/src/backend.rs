//! What a backend supplies to the roles written once: its pools, how it begins a write, and
//! the few operations whose shape (not only whose SQL text) differs between SQLite and
//! PostgreSQL. Every type implementing [`Backend`] implements every role and [`crate::Store`].

use std::collections::HashMap;

use async_trait::async_trait;
use numcheck_core::{E164, HalfLives, Observation, Profile};
use sqlx::{Database, Pool, Transaction};

use crate::dialect::{Dialect, Q};
use crate::{ChunkSpec, Result};

/// A write transaction of backend `B`.
pub(crate) type Tx<B> = Transaction<'static, <B as Backend>::Db>;

/// A storage backend: an sqlx database with its [`Dialect`], and what is its own.
#[async_trait]
pub(crate) trait Backend: std::fmt::Debug + Send + Sync + 'static {
    type Db: Dialect;

    /// The pool for writes, and for reads that must see the latest commit.
    fn pool(&self) -> &Pool<Self::Db>;
    /// The pool for polls (key checks, task reads), which should not queue behind writes.
    fn reads(&self) -> &Pool<Self::Db>;
    /// Begins a write transaction.
    async fn write(&self) -> Result<Tx<Self>>;
    /// Runs one writing statement as a transaction of its own: on PostgreSQL the statement
    /// alone (autocommit), on SQLite inside a write transaction.
    async fn write_one(
        &self,
        statement: Q<'_, Self::Db>,
    ) -> Result<<Self::Db as Database>::QueryResult>;
    /// [`Backend::write_one`] for a statement that returns at most one row.
    async fn write_one_returning(
        &self,
        statement: Q<'_, Self::Db>,
    ) -> Result<Option<<Self::Db as Database>::Row>>;
    /// Closes every connection.
    async fn close(&self);

    /// Inserts a new task's chunks, numbered from 0.
    async fn insert_chunks(
        &self,
        tx: &mut Tx<Self>,
        task: &str,
        chunks: &[ChunkSpec],
    ) -> Result<()>;
    /// Records lookups (a non-empty list): see [`crate::LookupLog::record_lookups`].
    async fn upsert_lookups(&self, provider: &str, at: i64, rows: &[(E164, String)]) -> Result<()>;

    /// Appends a non-empty batch of observations, sorted by number, to the log, skipping
    /// ones already there, and merges the new ones into their numbers' profiles, in one
    /// transaction. Returns how many were new.
    async fn ingest_sorted(
        &self,
        sorted: Vec<Observation>,
        half_lives: HalfLives,
        now_ms: i64,
    ) -> Result<u64>;
    /// The stored profiles of these numbers (ascending, distinct, at least one).
    async fn profiles_of(&self, numbers: Vec<i64>) -> Result<HashMap<E164, Profile>>;
    /// Inserts or replaces profiles, inside a profile rebuild.
    async fn upsert_profiles(&self, tx: &mut Tx<Self>, profiles: &[(E164, Profile)]) -> Result<()>;
    /// Called first inside a profile rebuild's transaction.
    async fn rebuild_starting(&self, _tx: &mut Tx<Self>) -> Result<()> {
        Ok(())
    }
    /// Called last inside a profile rebuild's transaction, before it commits.
    async fn rebuild_finishing(&self, _tx: &mut Tx<Self>) -> Result<()> {
        Ok(())
    }
    /// Called once a profile rebuild has committed.
    fn rebuilt(&self) {}

    /// Tells every node, when `tx` commits, that work may be waiting (PostgreSQL's
    /// `NOTIFY`). A no-op where there is one node.
    async fn announce_work(&self, _tx: &mut Tx<Self>) -> Result<()> {
        Ok(())
    }
    /// The other nodes' announcements, where the backend has them.
    async fn work_signals(&self) -> Result<Option<WorkSignals>> {
        Ok(None)
    }
}

/// Announcements that work may be waiting, from any node (see
/// [`crate::TaskQueue::work_signals`]). Close together they coalesce into one.
pub type WorkSignals = tokio::sync::mpsc::Receiver<()>;
