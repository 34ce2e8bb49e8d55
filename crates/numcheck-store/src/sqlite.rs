//! The embedded backend: one SQLite file in the data folder, in WAL mode.
//!
//! The roles' SQL is shared with PostgreSQL (see the crate doc); what is SQLite's own is
//! here: the pools and their pragmas, write transactions that start with `BEGIN IMMEDIATE`
//! (so that two writers never deadlock on a lock upgrade; other processes on the same file,
//! such as `numcheck keys create` beside a running server, wait on the busy timeout instead
//! of failing), the dialect (no row locks: a write transaction already excludes every other
//! writer; `IN (…)` lists instead of arrays), evidence ingest and profile lookups on direct
//! connections, and the presence filter of the serving process.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use numcheck_core::{E164, HalfLives, Observation, Profile};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Executor, Pool, Sqlite};

use crate::backend::{Backend, Tx};
use crate::dialect::{Dialect, Q, RowsAffected};
use crate::evidence::add_delta;
use crate::presence::PresenceFilter;
use crate::rows::profile;
use crate::{ChunkSpec, Result, StoreError, dedupe_key};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    reads: SqlitePool,
    readers: std::sync::Arc<ProfileReaders>,
    writer: std::sync::Arc<EvidenceWriter>,
    presence: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<PresenceFilter>>>,
}

/// One connection for evidence ingest, called directly on a blocking thread with prepared
/// statements: bulk ingest through the async pool spent most of its time passing messages.
#[derive(Debug)]
struct EvidenceWriter {
    path: std::path::PathBuf,
    conn: std::sync::Mutex<Option<rusqlite::Connection>>,
}

impl EvidenceWriter {
    fn with<T>(&self, f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| StoreError::Corrupt("evidence writer lock poisoned".into()))?;
        if guard.is_none() {
            let conn = rusqlite::Connection::open(&self.path)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "cache_size", -16384)?;
            conn.pragma_update(None, "temp_store", "memory")?;
            *guard = Some(conn);
        }
        match guard.as_mut() {
            Some(conn) => f(conn),
            None => Err(StoreError::Corrupt("evidence writer missing".into())),
        }
    }
}

fn ingest_batch(
    conn: &mut rusqlite::Connection,
    sorted: &[Observation],
    half_lives: &HalfLives,
    now_ms: i64,
    presence: Option<&PresenceFilter>,
) -> Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = 0u64;
    let mut deltas: Vec<(E164, Profile)> = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO observations (number, observed_at_ms, source, kind, raw_code, \
             class, weight, message_id, dedupe_key, ingested_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for obs in sorted {
            let key = dedupe_key(obs);
            let changed = insert.execute(rusqlite::params![
                obs.number.as_u64() as i64,
                obs.observed_at_ms,
                obs.source,
                obs.kind.as_str(),
                obs.raw_code,
                obs.class.as_str(),
                obs.weight,
                obs.message_id,
                key.as_slice(),
                now_ms,
            ])?;
            if changed == 0 {
                continue;
            }
            inserted += 1;
            add_delta(&mut deltas, obs, half_lives);
        }
    }
    let mut new_profiles = 0i64;
    {
        let mut get = tx.prepare_cached("SELECT data FROM profiles WHERE number = ?1")?;
        let mut put = tx.prepare_cached(
            "INSERT INTO profiles (number, data) VALUES (?1, ?2) \
             ON CONFLICT(number) DO UPDATE SET data = excluded.data",
        )?;
        for (n, delta) in &deltas {
            let key = n.as_u64() as i64;
            let stored: Option<Vec<u8>> = match get.query_row([key], |r| r.get(0)) {
                Ok(d) => Some(d),
                Err(rusqlite::Error::QueryReturnedNoRows) => None,
                Err(e) => return Err(e.into()),
            };
            let merged = match stored {
                Some(bytes) => profile(n, &bytes)?.merge(delta, half_lives),
                None => {
                    new_profiles += 1;
                    *delta
                }
            };
            put.execute(rusqlite::params![key, merged.to_bytes()])?;
        }
    }
    // A process without the presence filter tells the one with it that profiles changed.
    let bump = i64::from(presence.is_none());
    tx.prepare_cached(
        "UPDATE evidence_meta SET profiles = profiles + ?1, epoch = epoch + ?2 WHERE id = 1",
    )?
    .execute([new_profiles, bump])?;
    let _filter_guard = presence.and_then(|p| p.add(deltas.iter().map(|(n, _)| n.as_u64() as i64)));
    tx.commit()?;
    Ok(inserted)
}

/// Read-only connections for the hottest read, profile lookups by number. They call SQLite
/// directly on a blocking thread: through the async pool every returned row is a message
/// between threads, which cost more than the lookups themselves. Lookups are one prepared
/// point query per number: as fast here as an `IN rarray(...)` list, and unlike it they do
/// not make the process's memory grow with the number of lookups (measured on ten million
/// profiles: flat at 130-190 MiB instead of climbing past 450 MiB).
#[derive(Debug)]
struct ProfileReaders {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

impl ProfileReaders {
    fn open(&self) -> Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // Enough for the interior pages of a ten-million-profile table.
        conn.pragma_update(None, "cache_size", -8192)?;
        Ok(conn)
    }

    fn with<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 4
        {
            idle.push(conn);
        }
        out
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 8 MiB of page cache per pooled connection (bounded memory: 4 connections).
            .pragma("cache_size", "-8192")
            .pragma("temp_store", "memory");
        // Every connection is opened at start, one after another, and kept (see `open_all`).
        let pool = SqlitePoolOptions::new()
            .max_connections(WRITE_CONNECTIONS)
            .idle_timeout(None)
            .max_lifetime(None)
            // A COMMIT that fails with SQLITE_FULL or SQLITE_IOERR is rolled back by SQLite
            // itself; sqlx's later ROLLBACK then fails ("no transaction is active") and its
            // own transaction depth stays at one, so every later `BEGIN IMMEDIATE` on that
            // connection is refused. Such a connection is closed here instead of handed out,
            // and the pool opens a fresh one: writes recover as soon as the disk has room.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // Polls (key check, task read) get connections of their own: in the shared pool they
        // queued behind workers' write transactions.
        let reads = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                options
                    .read_only(true)
                    .create_if_missing(false)
                    .pragma("cache_size", "-2048"),
            )
            .await?;
        open_all(&pool, WRITE_CONNECTIONS).await?;
        open_all(&reads, READ_CONNECTIONS).await?;
        let readers = std::sync::Arc::new(ProfileReaders {
            path: path.to_owned(),
            idle: std::sync::Mutex::new(Vec::new()),
        });
        let writer = std::sync::Arc::new(EvidenceWriter {
            path: path.to_owned(),
            conn: std::sync::Mutex::new(None),
        });
        Ok(SqliteStore {
            pool,
            reads,
            readers,
            writer,
            presence: Default::default(),
        })
    }

    /// Called by the serving process: keep an in-memory filter of which numbers have a
    /// profile, so lookups skip numbers without evidence.
    pub fn keep_presence_filter(&self) {
        let path = self.readers.path.clone();
        let filter = self.presence.get_or_init(|| PresenceFilter::new(&path));
        filter.rebuild();
    }

    /// How many presence filters this store has built so far (0 when it keeps none).
    pub fn presence_filter_builds(&self) -> u64 {
        self.presence.get().map_or(0, |p| p.builds())
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        if let Ok(mut w) = self.writer.conn.lock() {
            w.take();
        }
        if let Ok(mut r) = self.readers.idle.lock() {
            r.clear();
        }
        self.reads.close().await;
        self.pool.close().await;
    }
}

/// Numbers per `IN (…)` list.
const NUMBERS_PER_QUERY: usize = 500;

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

impl Dialect for Sqlite {
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const UNDONE: &'static str = "done = 0";
    const LIST_TASKS: &'static str = "WHERE user_id = $1 AND ($2 IS NULL OR status = $2) \
        AND ($3 IS NULL OR created_at_ns < $3 OR (created_at_ns = $3 AND id < $4))";
    /// Fair share, as in the PostgreSQL backend: the task of the user holding the fewest live
    /// chunk leases (beyond the grace) goes first, then the oldest task.
    const CLAIM_CHUNK: &'static str = "\
        WITH live AS ( \
          SELECT t.user_id, COUNT(*) AS n FROM chunks c JOIN tasks t ON t.id = c.task_id \
          WHERE c.done = 0 AND c.lease_until_ms >= $3 GROUP BY t.user_id) \
        UPDATE chunks SET lease_owner = $1, lease_until_ms = $2 WHERE rowid = ( \
          SELECT c.rowid FROM chunks c JOIN tasks t ON t.id = c.task_id \
          LEFT JOIN live l ON l.user_id = t.user_id \
          WHERE c.done = 0 AND t.status IN ('pending', 'processing') \
            AND (c.lease_until_ms IS NULL OR c.lease_until_ms < $3) \
          ORDER BY MAX(COALESCE(l.n, 0) - $4, 0), t.created_at_ns, t.id, c.seq LIMIT 1) \
        RETURNING task_id, seq, byte_start, byte_end, first_line, lines";
    const EVIDENCE_NUMBERS: &'static str =
        "SELECT DISTINCT number FROM observations WHERE number > $1 ORDER BY number LIMIT $2";
    const DROP_ORPHAN_PROFILES: &'static str =
        "DELETE FROM profiles WHERE number NOT IN (SELECT number FROM observations)";
    const NUMBERS_PER_QUERY: usize = NUMBERS_PER_QUERY;

    fn numbers_in(first: usize, count: usize) -> String {
        let list: Vec<String> = (first..first + count).map(|i| format!("${i}")).collect();
        format!("IN ({})", list.join(","))
    }

    fn bind_numbers<'q>(mut query: Q<'q, Self>, numbers: &[i64]) -> Q<'q, Self> {
        for &n in numbers {
            query = query.bind(n);
        }
        query
    }

    fn conn(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self> {
        conn
    }

    fn pool(pool: &Pool<Self>) -> impl Executor<'_, Database = Self> {
        pool
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn reads(&self) -> &SqlitePool {
        &self.reads
    }

    async fn write(&self) -> Result<Tx<Self>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn write_one(&self, statement: Q<'_, Sqlite>) -> Result<SqliteQueryResult> {
        let mut tx = self.write().await?;
        let done = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn write_one_returning(&self, statement: Q<'_, Sqlite>) -> Result<Option<SqliteRow>> {
        let mut tx = self.write().await?;
        let row = statement.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn insert_chunks(
        &self,
        tx: &mut Tx<Self>,
        task: &str,
        chunks: &[ChunkSpec],
    ) -> Result<()> {
        for (seq, c) in chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO chunks (task_id, seq, byte_start, byte_end, first_line, lines) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(task)
            .bind(seq as i64)
            .bind(c.byte_start)
            .bind(c.byte_end)
            .bind(c.first_line)
            .bind(c.lines)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn upsert_lookups(&self, provider: &str, at: i64, rows: &[(E164, String)]) -> Result<()> {
        let mut tx = self.write().await?;
        for part in rows.chunks(NUMBERS_PER_QUERY) {
            let mut sql = String::from(
                "INSERT INTO lookup_cache (number, provider, looked_up_at_ms, raw_status) VALUES ",
            );
            for i in 0..part.len() {
                sql.push_str(if i == 0 { "(?,?,?,?)" } else { ",(?,?,?,?)" });
            }
            sql.push_str(
                " ON CONFLICT(number, provider) DO UPDATE SET looked_up_at_ms = excluded.looked_up_at_ms, raw_status = excluded.raw_status",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (n, status) in part {
                q = q
                    .bind(n.as_u64() as i64)
                    .bind(provider)
                    .bind(at)
                    .bind(status.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ingest_sorted(
        &self,
        sorted: Vec<Observation>,
        half_lives: HalfLives,
        now_ms: i64,
    ) -> Result<u64> {
        let writer = self.writer.clone();
        let presence = self.presence.get().cloned();
        tokio::task::spawn_blocking(move || {
            writer
                .with(|conn| ingest_batch(conn, &sorted, &half_lives, now_ms, presence.as_deref()))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("ingest panicked: {e}")))?
    }

    async fn profiles_of(&self, numbers: Vec<i64>) -> Result<HashMap<E164, Profile>> {
        let readers = self.readers.clone();
        let presence = self.presence.get().cloned();
        tokio::task::spawn_blocking(move || {
            readers.with(|conn| {
                let filter = match &presence {
                    Some(p) => {
                        let epoch: i64 = conn
                            .prepare_cached("SELECT epoch FROM evidence_meta WHERE id = 1")?
                            .query_row([], |r| r.get(0))?;
                        p.usable(epoch)
                    }
                    None => None,
                };
                let mut stmt =
                    conn.prepare_cached("SELECT data FROM profiles WHERE number = ?1")?;
                let mut out = HashMap::new();
                for raw in numbers {
                    if filter.as_ref().is_some_and(|f| !f.may_contain(raw)) {
                        continue;
                    }
                    let data: Vec<u8> = match stmt.query_row([raw], |r| r.get(0)) {
                        Ok(d) => d,
                        Err(rusqlite::Error::QueryReturnedNoRows) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let n = crate::rows::number(raw)?;
                    out.insert(n, profile(n, &data)?);
                }
                Ok(out)
            })
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("profile lookup panicked: {e}")))?
    }

    async fn upsert_profiles(&self, tx: &mut Tx<Self>, profiles: &[(E164, Profile)]) -> Result<()> {
        for part in profiles.chunks(NUMBERS_PER_QUERY) {
            let mut sql = String::from("INSERT INTO profiles (number, data) VALUES ");
            for i in 0..part.len() {
                sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
            }
            sql.push_str(" ON CONFLICT(number) DO UPDATE SET data = excluded.data");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (n, p) in part {
                q = q.bind(n.as_u64() as i64).bind(p.to_bytes());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn rebuild_finishing(&self, tx: &mut Tx<Self>) -> Result<()> {
        // Tells a process keeping the presence filter that profiles changed.
        sqlx::query(
            "UPDATE evidence_meta SET epoch = epoch + 1, \
             profiles = (SELECT COUNT(*) FROM profiles) WHERE id = 1",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    fn rebuilt(&self) {
        if let Some(p) = self.presence.get() {
            p.rebuild();
        }
    }
}

/// Connections of the pool for writes, and of the pool for polls.
const WRITE_CONNECTIONS: u32 = 4;
const READ_CONNECTIONS: u32 = 3;

/// Opens all `n` connections of `pool` now, one after another, from the caller's thread. sqlx
/// runs each SQLite connection on a thread of its own, which inherits the CPU priority of the
/// thread that opened it: opened lazily from a worker (whose threads run at the lowest
/// priority), a connection would make every request it serves wait behind any busy process
/// on the host. The pools keep their connections (no idle timeout, no maximum lifetime).
async fn open_all(pool: &SqlitePool, n: u32) -> Result<()> {
    let mut held = Vec::with_capacity(n as usize);
    for _ in 0..n {
        held.push(pool.acquire().await?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sqlx::Row;

    use super::*;

    /// The shared SQL is written with PostgreSQL's `$N` placeholders; sqlx-sqlite must bind
    /// `$N` to the N-th argument, whatever the order of first use, and bind a placeholder
    /// used twice once.
    #[tokio::test]
    async fn numbered_placeholders_bind_by_number_on_sqlite() {
        let pool = SqlitePoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let row = sqlx::query("SELECT $2 AS b, $1 AS a, $2 + $1 AS sum, $3 IS NULL AS none")
            .bind(40_i64)
            .bind(2_i64)
            .bind(None::<i64>)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<i64, _>("a"), 40);
        assert_eq!(row.get::<i64, _>("b"), 2);
        assert_eq!(row.get::<i64, _>("sum"), 42);
        assert!(row.get::<bool, _>("none"));
        let list = format!("SELECT 7 {} AS hit", Sqlite::numbers_in(2, 3));
        let query = sqlx::query(sqlx::AssertSqlSafe(list)).bind(0_i64);
        let row = Sqlite::bind_numbers(query, &[5, 6, 7])
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(row.get::<bool, _>("hit"));
    }
}
