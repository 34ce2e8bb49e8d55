//! The embedded backend: one SQLite file in the data folder, in WAL mode.
//!
//! Write transactions start with `BEGIN IMMEDIATE` so that two writers never deadlock on a
//! lock upgrade; other processes on the same file (`numcheck keys create` beside a running
//! server) wait on the busy timeout instead of failing.

use crate::presence::PresenceFilter;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use numcheck_core::{
    E164, EvidenceClass, HalfLives, Observation, Profile, TaskId, TaskStatus, UserId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::{
    Callback, CallbackOutcome, CallbackState, ChunkSpec, Created, EvidenceStats, IngestOutcome,
    KeyInfo, LedgerRow, NewTask, Principal, RebuildReport, Result, Store, StoreError, Task,
    TaskCursor, Usage, User, Work, dedupe_key,
};

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
) -> Result<IngestOutcome> {
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
            // Sorted input: a number's new observations are neighbours.
            let p = Profile::of(obs);
            match deltas.last_mut() {
                Some((n, d)) if *n == obs.number => *d = d.merge(&p, half_lives),
                _ => deltas.push((obs.number, p)),
            }
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
                Some(bytes) => Profile::from_bytes(&bytes)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad profile for {n}")))?
                    .merge(delta, half_lives),
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
    Ok(IngestOutcome {
        inserted,
        duplicates: sorted.len() as u64 - inserted,
    })
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

const TASK_COLUMNS: &str = "id, user_id, task_type, status, total, success, failure, \
    default_region, created_at_ns, updated_at_ms, input_key, input_bytes, result_key, reserved, \
    charged, message, chunk_count, chunks_done, options, lookups_made, callback_url, file_name";

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
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
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
            .max_connections(3)
            .connect_with(
                options
                    .read_only(true)
                    .create_if_missing(false)
                    .pragma("cache_size", "-2048"),
            )
            .await?;
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

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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

fn parse<T: FromStr>(value: String, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what} {value:?}")))
}

fn user_from_row(row: &SqliteRow) -> Result<User> {
    Ok(User {
        id: parse(row.try_get("id")?, "user id")?,
        name: row.try_get("name")?,
        credits: row.try_get("credits")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn task_from_row(row: &SqliteRow) -> Result<Task> {
    Ok(Task {
        id: parse(row.try_get("id")?, "task id")?,
        user_id: parse(row.try_get("user_id")?, "user id")?,
        task_type: parse(row.try_get("task_type")?, "task type")?,
        status: parse(row.try_get("status")?, "task status")?,
        total: row.try_get("total")?,
        success: row.try_get("success")?,
        failure: row.try_get("failure")?,
        default_region: row.try_get("default_region")?,
        created_at_ns: row.try_get("created_at_ns")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        input_key: row.try_get("input_key")?,
        input_bytes: row.try_get("input_bytes")?,
        result_key: row.try_get("result_key")?,
        reserved: row.try_get("reserved")?,
        charged: row.try_get("charged")?,
        message: row.try_get("message")?,
        chunk_count: row.try_get("chunk_count")?,
        chunks_done: row.try_get("chunks_done")?,
        options: row.try_get("options")?,
        lookups_made: row.try_get("lookups_made")?,
        callback_url: row.try_get("callback_url")?,
        file_name: row.try_get("file_name")?,
    })
}

fn key_from_row(row: &SqliteRow) -> Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.try_get("id")?,
        user_name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        can_ingest: row.try_get::<i64, _>("can_ingest")? != 0,
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}

async fn task_in(tx: &mut Transaction<'static, Sqlite>, id: &str) -> Result<Task> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    task_from_row(&row)
}

async fn available_in(tx: &mut Transaction<'static, Sqlite>, user: &UserId) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT u.credits AS credits, \
           (SELECT COALESCE(SUM(t.reserved), 0) FROM tasks t \
             WHERE t.user_id = u.id AND t.status IN ('pending', 'processing')) AS held \
         FROM users u WHERE u.id = ?",
    )
    .bind(user.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let credits: Option<i64> = row.try_get("credits")?;
    let held: i64 = row.try_get("held")?;
    Ok(credits.map(|c| c - held))
}

/// Queues the task's completion notice, when it asked for one (once: a notice already queued
/// stays as it is).
async fn queue_callback_in(
    tx: &mut Transaction<'static, Sqlite>,
    task: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO callbacks (task_id, next_at_ms) \
         SELECT id, ? FROM tasks WHERE id = ? AND callback_url IS NOT NULL \
         ON CONFLICT (task_id) DO NOTHING",
    )
    .bind(now_ms)
    .bind(task)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Cancels an open task inside `tx`; the task as it is after.
async fn cancel_in(
    tx: &mut Transaction<'static, Sqlite>,
    user: &UserId,
    task: &TaskId,
    now_ms: i64,
) -> Result<Task> {
    let current = sqlx::query("SELECT status FROM tasks WHERE id = ? AND user_id = ?")
        .bind(task.as_str())
        .bind(user.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    let status: TaskStatus = parse(current.try_get("status")?, "task status")?;
    if status.is_terminal() {
        return Err(StoreError::Conflict(format!(
            "the task has already ended ({status})"
        )));
    }
    sqlx::query(
        "UPDATE tasks SET status = 'cancelled', message = 'cancelled by the user', reserved = 0, \
           updated_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL WHERE id = ?",
    )
    .bind(now_ms)
    .bind(task.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE chunks SET lease_owner = NULL, lease_until_ms = NULL WHERE task_id = ? AND done = 0",
    )
    .bind(task.as_str())
    .execute(&mut **tx)
    .await?;
    queue_callback_in(tx, task.as_str(), now_ms).await?;
    task_in(tx, task.as_str()).await
}

fn ledger_from_row(r: &SqliteRow) -> Result<LedgerRow> {
    Ok(LedgerRow {
        id: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        amount: r.try_get("amount")?,
        kind: r.try_get("kind")?,
        task_id: r.try_get("task_id")?,
        note: r.try_get("note")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        id: UserId,
        name: &str,
        credits: Option<i64>,
        is_admin: bool,
        now_ms: i64,
    ) -> Result<User> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!(
                "user {name:?} already exists"
            )));
        }
        sqlx::query(
            "INSERT INTO users (id, name, credits, is_admin, created_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(credits)
        .bind(i64::from(is_admin))
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if let Some(c) = credits {
            sqlx::query(
                "INSERT INTO ledger (user_id, at_ms, amount, kind, note) VALUES (?, ?, ?, 'grant', 'opening balance')",
            )
            .bind(id.as_str())
            .bind(now_ms)
            .bind(c)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(User {
            id,
            name: name.to_owned(),
            credits,
            is_admin,
            created_at_ms: now_ms,
        })
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn grant_credits(
        &self,
        user: &UserId,
        amount: i64,
        note: &str,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE users SET credits = credits + ? WHERE id = ? AND credits IS NOT NULL",
        )
        .bind(amount)
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "the user is unlimited; there is no balance to add to".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO ledger (user_id, at_ms, amount, kind, note) VALUES (?, ?, ?, 'grant', ?)",
        )
        .bind(user.as_str())
        .bind(now_ms)
        .bind(amount)
        .bind(note)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_key(
        &self,
        user: &UserId,
        prefix: &str,
        hash: &[u8],
        can_ingest: bool,
        now_ms: i64,
    ) -> Result<KeyInfo> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO api_keys (user_id, prefix, hash, can_ingest, created_at_ms) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(user.as_str())
        .bind(prefix)
        .bind(hash)
        .bind(i64::from(can_ingest))
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let row = sqlx::query(
            "SELECT k.id, u.name, k.prefix, k.can_ingest, k.created_at_ms, k.revoked_at_ms \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let info = key_from_row(&row)?;
        tx.commit().await?;
        Ok(info)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "SELECT k.id, u.name, k.prefix, k.can_ingest, k.created_at_ms, k.revoked_at_ms \
             FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY k.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id_or_prefix: &str, now_ms: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let id: Option<i64> = id_or_prefix.parse().ok();
        let matching: Vec<i64> = sqlx::query(
            "SELECT id FROM api_keys WHERE revoked_at_ms IS NULL AND (id = ? OR prefix = ?)",
        )
        .bind(id)
        .bind(id_or_prefix)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        if matching.len() > 1 {
            return Err(StoreError::Conflict(format!(
                "{id_or_prefix:?} matches {} keys; revoke by id",
                matching.len()
            )));
        }
        let Some(id) = matching.first() else {
            return Ok(0);
        };
        let done = sqlx::query("UPDATE api_keys SET revoked_at_ms = ? WHERE id = ?")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn principal_for_key_hash(&self, hash: &[u8]) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT u.*, k.can_ingest AS can_ingest FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.hash = ? AND k.revoked_at_ms IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.reads)
        .await?;
        row.as_ref()
            .map(|r| {
                Ok(Principal {
                    user: user_from_row(r)?,
                    can_ingest: r.try_get::<i64, _>("can_ingest")? != 0,
                })
            })
            .transpose()
    }

    async fn count_keys(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    async fn available_credits(&self, user: &UserId) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let available = available_in(&mut tx, user).await?;
        tx.commit().await?;
        Ok(available)
    }

    async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT id, at_ms, amount, kind, task_id, note FROM ledger WHERE user_id = ? ORDER BY id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn ledger_recent(&self, user: &UserId, limit: i64) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT id, at_ms, amount, kind, task_id, note FROM ledger WHERE user_id = ? \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(user.as_str())
        .bind(limit)
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        status: Option<TaskStatus>,
        after: Option<&TaskCursor>,
        limit: i64,
    ) -> Result<Vec<Task>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = ? \
               AND (? IS NULL OR status = ?) \
               AND (? IS NULL OR created_at_ns < ? OR (created_at_ns = ? AND id < ?)) \
             ORDER BY created_at_ns DESC, id DESC LIMIT ?"
        );
        let status = status.map(|s| s.as_str());
        let (at, id) = match after {
            Some(c) => (Some(c.created_at_ns), Some(c.id.as_str())),
            None => (None, None),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(status)
            .bind(status)
            .bind(at)
            .bind(at)
            .bind(at)
            .bind(id)
            .bind(limit)
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn cancel_task(&self, user: &UserId, task: &TaskId, now_ms: i64) -> Result<Task> {
        let mut tx = self.write().await?;
        let task = cancel_in(&mut tx, user, task, now_ms).await?;
        tx.commit().await?;
        Ok(task)
    }

    async fn delete_task(&self, user: &UserId, task: &TaskId, _now_ms: i64) -> Result<Task> {
        let mut tx = self.write().await?;
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ? AND user_id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(task.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let before = task_from_row(&row)?;
        // Chunks and the callback row go with the task (ON DELETE CASCADE); its held credits
        // go with it too, as they are a column of the row.
        sqlx::query("DELETE FROM tasks WHERE id = ?")
            .bind(task.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before)
    }

    async fn tasks_by_status(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status ORDER BY status")
                .fetch_all(&self.reads)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    async fn open_tasks(&self, user: &UserId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM tasks WHERE user_id = ? AND status IN ('pending', 'processing')",
        )
        .bind(user.as_str())
        .fetch_one(&self.reads)
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn usage(&self, user: &UserId) -> Result<Usage> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM tasks WHERE user_id = ?1) AS tasks, \
               (SELECT COALESCE(SUM(success), 0) FROM tasks WHERE user_id = ?1 AND status = 'exported') AS numbers, \
               (SELECT COALESCE(SUM(reserved), 0) FROM tasks WHERE user_id = ?1 \
                  AND status IN ('pending', 'processing')) AS held, \
               (SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE user_id = ?1 AND kind = 'charge') AS charged",
        )
        .bind(user.as_str())
        .fetch_one(&self.reads)
        .await?;
        Ok(Usage {
            tasks: row.try_get("tasks")?,
            numbers_checked: row.try_get("numbers")?,
            credits_charged: row.try_get("charged")?,
            held: row.try_get("held")?,
        })
    }

    async fn claim_callback(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Callback>> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "UPDATE callbacks SET lease_owner = ?, lease_until_ms = ? WHERE task_id = ( \
               SELECT task_id FROM callbacks WHERE state = 'pending' AND next_at_ms <= ? \
                 AND (lease_until_ms IS NULL OR lease_until_ms < ?) \
               ORDER BY next_at_ms LIMIT 1) \
             RETURNING task_id, attempts",
        )
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("task_id")?;
        let attempts: i64 = row.try_get("attempts")?;
        let task = task_in(&mut tx, &id).await?;
        tx.commit().await?;
        let Some(url) = task.callback_url.clone() else {
            return Err(StoreError::Corrupt(format!(
                "callback queued for task {id} without a URL"
            )));
        };
        Ok(Some(Callback {
            task,
            url,
            attempts,
        }))
    }

    async fn finish_callback(
        &self,
        task: &TaskId,
        owner: &str,
        outcome: &CallbackOutcome,
        now_ms: i64,
    ) -> Result<bool> {
        let (state, next_at, status, error, delivered) = match outcome {
            CallbackOutcome::Delivered { status } => {
                ("delivered", now_ms, Some(*status), None, Some(now_ms))
            }
            CallbackOutcome::Retry {
                next_at_ms,
                status,
                error,
            } => ("pending", *next_at_ms, *status, Some(error.as_str()), None),
            CallbackOutcome::GaveUp { status, error } => {
                ("failed", now_ms, *status, Some(error.as_str()), None)
            }
        };
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE callbacks SET state = ?, attempts = attempts + 1, next_at_ms = ?, last_status = ?, \
               last_error = ?, delivered_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL \
             WHERE task_id = ? AND lease_owner = ? AND state = 'pending'",
        )
        .bind(state)
        .bind(next_at)
        .bind(status)
        .bind(error)
        .bind(delivered)
        .bind(task.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn callback_secret(
        &self,
        user: &UserId,
        candidate: &str,
        replace: bool,
    ) -> Result<String> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "UPDATE users SET callback_secret = CASE WHEN ? OR callback_secret IS NULL \
               THEN ? ELSE callback_secret END WHERE id = ? RETURNING callback_secret",
        )
        .bind(replace)
        .bind(candidate)
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(row.try_get("callback_secret")?)
    }

    async fn callback_state(&self, task: &TaskId) -> Result<Option<CallbackState>> {
        let row = sqlx::query(
            "SELECT state, attempts, next_at_ms, last_status, last_error, delivered_at_ms \
             FROM callbacks WHERE task_id = ?",
        )
        .bind(task.as_str())
        .fetch_optional(&self.reads)
        .await?;
        row.map(|r| {
            Ok(CallbackState {
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                next_at_ms: r.try_get("next_at_ms")?,
                last_status: r.try_get("last_status")?,
                last_error: r.try_get("last_error")?,
                delivered_at_ms: r.try_get("delivered_at_ms")?,
            })
        })
        .transpose()
    }

    async fn create_task(&self, new: NewTask) -> Result<Created> {
        let mut tx = self.write().await?;
        if let Some(key) = &new.idempotency_key {
            let existing =
                sqlx::query("SELECT id FROM tasks WHERE user_id = ? AND idempotency_key = ?")
                    .bind(new.user_id.as_str())
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(row) = existing {
                let id: String = row.try_get("id")?;
                return Ok(Created::Existing(task_in(&mut tx, &id).await?));
            }
        }
        let available = available_in(&mut tx, &new.user_id).await?;
        let reserved = match available {
            Some(available) if new.needs_credits > available => {
                return Err(StoreError::InsufficientCredits {
                    needed: new.needs_credits,
                    available: available.max(0),
                });
            }
            Some(_) => new.needs_credits,
            None => 0,
        };
        let now_ms = new.created_at_ns / 1_000_000;
        sqlx::query(
            "INSERT INTO tasks (id, user_id, task_type, status, total, default_region, created_at_ns, \
               updated_at_ms, input_key, input_bytes, reserved, idempotency_key, chunk_count, options, \
               callback_url, file_name) \
             VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.id.as_str())
        .bind(new.user_id.as_str())
        .bind(new.task_type.as_str())
        .bind(new.total)
        .bind(&new.default_region)
        .bind(new.created_at_ns)
        .bind(now_ms)
        .bind(&new.input_key)
        .bind(new.input_bytes)
        .bind(reserved)
        .bind(&new.idempotency_key)
        .bind(new.chunks.len() as i64)
        .bind(&new.options)
        .bind(&new.callback_url)
        .bind(&new.file_name)
        .execute(&mut *tx)
        .await?;
        for (seq, c) in new.chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO chunks (task_id, seq, byte_start, byte_end, first_line, lines) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(new.id.as_str())
            .bind(seq as i64)
            .bind(c.byte_start)
            .bind(c.byte_end)
            .bind(c.first_line)
            .bind(c.lines)
            .execute(&mut *tx)
            .await?;
        }
        let task = task_in(&mut tx, new.id.as_str()).await?;
        tx.commit().await?;
        Ok(Created::New(task))
    }

    async fn task(&self, id: &TaskId) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.reads)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_by_idempotency_key(&self, user: &UserId, key: &str) -> Result<Option<Task>> {
        let sql =
            format!("SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = ? AND idempotency_key = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn claim_work(&self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Work>> {
        let mut tx = self.write().await?;
        let until = now_ms + lease_ms;
        // Exports first: they finish tasks.
        let export = sqlx::query(
            "UPDATE tasks SET lease_owner = ?, lease_until_ms = ? WHERE id = ( \
               SELECT id FROM tasks WHERE status = 'processing' AND chunks_done = chunk_count \
                 AND (lease_until_ms IS NULL OR lease_until_ms < ?) \
               ORDER BY created_at_ns, id LIMIT 1) RETURNING id",
        )
        .bind(owner)
        .bind(until)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = export {
            let id: String = row.try_get("id")?;
            let task = task_in(&mut tx, &id).await?;
            tx.commit().await?;
            return Ok(Some(Work::Export { task }));
        }
        // Then the oldest open task's next chunk. A task with no chunks at all (every line
        // blank is refused at upload, so this is only a safety net) goes straight to export.
        // Fair share, as in the PostgreSQL backend: the task of the user holding the fewest
        // live chunk leases (beyond one) goes first, then the oldest task.
        let chunk = sqlx::query(
            "WITH live AS ( \
               SELECT t.user_id, COUNT(*) AS n FROM chunks c JOIN tasks t ON t.id = c.task_id \
               WHERE c.done = 0 AND c.lease_until_ms >= ? GROUP BY t.user_id) \
             UPDATE chunks SET lease_owner = ?, lease_until_ms = ? WHERE rowid = ( \
               SELECT c.rowid FROM chunks c JOIN tasks t ON t.id = c.task_id \
               LEFT JOIN live l ON l.user_id = t.user_id \
               WHERE c.done = 0 AND t.status IN ('pending', 'processing') \
                 AND (c.lease_until_ms IS NULL OR c.lease_until_ms < ?) \
               ORDER BY MAX(COALESCE(l.n, 0) - 1, 0), t.created_at_ns, t.id, c.seq LIMIT 1) \
             RETURNING task_id, seq, byte_start, byte_end, first_line, lines",
        )
        .bind(now_ms)
        .bind(owner)
        .bind(until)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = chunk else {
            sqlx::query(
                "UPDATE tasks SET status = 'processing', updated_at_ms = ? \
                 WHERE status = 'pending' AND chunk_count = 0",
            )
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(None);
        };
        let task_id: String = row.try_get("task_id")?;
        let seq: i64 = row.try_get("seq")?;
        let spec = ChunkSpec {
            byte_start: row.try_get("byte_start")?,
            byte_end: row.try_get("byte_end")?,
            first_line: row.try_get("first_line")?,
            lines: row.try_get("lines")?,
        };
        sqlx::query(
            "UPDATE tasks SET status = 'processing', updated_at_ms = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now_ms)
        .bind(&task_id)
        .execute(&mut *tx)
        .await?;
        let task = task_in(&mut tx, &task_id).await?;
        tx.commit().await?;
        Ok(Some(Work::Chunk { task, seq, spec }))
    }

    async fn commit_chunk(
        &self,
        task: &TaskId,
        seq: i64,
        owner: &str,
        success: i64,
        failure: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE chunks SET done = 1, success = ?, failure = ?, lease_owner = NULL, lease_until_ms = NULL \
             WHERE task_id = ? AND seq = ? AND done = 0 AND lease_owner = ? \
               AND EXISTS (SELECT 1 FROM tasks WHERE id = ? AND status IN ('pending', 'processing'))",
        )
        .bind(success)
        .bind(failure)
        .bind(task.as_str())
        .bind(seq)
        .bind(owner)
        .bind(task.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE tasks SET success = success + ?, failure = failure + ?, \
               chunks_done = chunks_done + 1, updated_at_ms = ? WHERE id = ?",
        )
        .bind(success)
        .bind(failure)
        .bind(now_ms)
        .bind(task.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn finish_export(
        &self,
        task: &TaskId,
        owner: &str,
        result_key: &str,
        charge: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "UPDATE tasks SET status = 'exported', result_key = ?, charged = ?, reserved = 0, \
               updated_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = ? AND status = 'processing' AND lease_owner = ? RETURNING user_id",
        )
        .bind(result_key)
        .bind(charge)
        .bind(now_ms)
        .bind(task.as_str())
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let user_id: String = row.try_get("user_id")?;
        sqlx::query("UPDATE users SET credits = credits - ? WHERE id = ? AND credits IS NOT NULL")
            .bind(charge)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ledger (user_id, at_ms, amount, kind, task_id, note) \
             VALUES (?, ?, ?, 'charge', ?, 'unique numbers checked')",
        )
        .bind(&user_id)
        .bind(now_ms)
        .bind(-charge)
        .bind(task.as_str())
        .execute(&mut *tx)
        .await?;
        queue_callback_in(&mut tx, task.as_str(), now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn fail_task(&self, task: &TaskId, message: &str, now_ms: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE tasks SET status = 'failed', message = ?, reserved = 0, updated_at_ms = ?, \
               lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = ? AND status IN ('pending', 'processing')",
        )
        .bind(message)
        .bind(now_ms)
        .bind(task.as_str())
        .execute(&mut *tx)
        .await?;
        queue_callback_in(&mut tx, task.as_str(), now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_leases(&self, owner: Option<&str>) -> Result<u64> {
        let mut tx = self.write().await?;
        let a = sqlx::query(
            "UPDATE chunks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE lease_owner IS NOT NULL AND (? IS NULL OR lease_owner = ?)",
        )
        .bind(owner)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        let b = sqlx::query(
            "UPDATE tasks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE lease_owner IS NOT NULL AND (? IS NULL OR lease_owner = ?)",
        )
        .bind(owner)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(a.rows_affected() + b.rows_affected())
    }

    async fn ingest(
        &self,
        batch: Vec<Observation>,
        half_lives: &HalfLives,
        now_ms: i64,
    ) -> Result<IngestOutcome> {
        if batch.is_empty() {
            return Ok(IngestOutcome::default());
        }
        // Sorted by number, a batch touches neighbouring index and profile pages, and the
        // new observations of one number sit together for the merge.
        let mut sorted = batch;
        sorted.sort_by_key(|o| o.number);
        let writer = self.writer.clone();
        let half_lives = *half_lives;
        let presence = self.presence.get().cloned();
        tokio::task::spawn_blocking(move || {
            writer
                .with(|conn| ingest_batch(conn, &sorted, &half_lives, now_ms, presence.as_deref()))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("ingest panicked: {e}")))?
    }

    async fn profiles(&self, numbers: &[E164]) -> Result<HashMap<E164, Profile>> {
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut keys: Vec<i64> = numbers.iter().map(|n| n.as_u64() as i64).collect();
        keys.sort_unstable();
        keys.dedup();
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
                for raw in keys {
                    if filter.as_ref().is_some_and(|f| !f.may_contain(raw)) {
                        continue;
                    }
                    let data: Vec<u8> = match stmt.query_row([raw], |r| r.get(0)) {
                        Ok(d) => d,
                        Err(rusqlite::Error::QueryReturnedNoRows) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let n = E164::from_u64(raw as u64)
                        .ok_or_else(|| StoreError::Corrupt(format!("bad number {raw}")))?;
                    let p = Profile::from_bytes(&data)
                        .ok_or_else(|| StoreError::Corrupt(format!("bad profile for {n}")))?;
                    out.insert(n, p);
                }
                Ok(out)
            })
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("profile lookup panicked: {e}")))?
    }

    async fn evidence_stats(&self) -> Result<EvidenceStats> {
        let head = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(observed_at_ms) AS first, MAX(observed_at_ms) AS last FROM observations",
        )
        .fetch_one(&self.pool)
        .await?;
        let numbers: i64 = sqlx::query("SELECT COUNT(*) AS n FROM profiles")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let group = |sql: &'static str| {
            let pool = self.pool.clone();
            async move {
                sqlx::query(sql)
                    .fetch_all(&pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get::<String, _>("k")?, r.try_get::<i64, _>("n")?)))
                    .collect::<Result<Vec<_>>>()
            }
        };
        Ok(EvidenceStats {
            observations: head.try_get("n")?,
            numbers,
            by_class: group("SELECT class AS k, COUNT(*) AS n FROM observations GROUP BY class ORDER BY n DESC").await?,
            by_kind: group("SELECT kind AS k, COUNT(*) AS n FROM observations GROUP BY kind ORDER BY n DESC").await?,
            by_source: group("SELECT source AS k, COUNT(*) AS n FROM observations GROUP BY source ORDER BY n DESC LIMIT 20").await?,
            first_ms: head.try_get("first")?,
            last_ms: head.try_get("last")?,
        })
    }

    async fn rebuild_profiles(&self, half_lives: &HalfLives) -> Result<RebuildReport> {
        let mut tx = self.write().await?;
        let mut report = RebuildReport::default();
        let mut after: i64 = -1;
        loop {
            let numbers: Vec<i64> = sqlx::query(
                "SELECT DISTINCT number FROM observations WHERE number > ? ORDER BY number LIMIT 2000",
            )
            .bind(after)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("number"))
            .collect::<Result<_, _>>()?;
            let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
                break;
            };
            let rows = sqlx::query(
                "SELECT number, observed_at_ms, class, weight FROM observations \
                 WHERE number BETWEEN ? AND ? ORDER BY number, id",
            )
            .bind(first)
            .bind(last)
            .fetch_all(&mut *tx)
            .await?;
            let mut rebuilt: HashMap<E164, Profile> = HashMap::new();
            for r in &rows {
                let raw: i64 = r.try_get("number")?;
                let number = E164::from_u64(raw as u64)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad number {raw}")))?;
                let class: EvidenceClass = r
                    .try_get::<String, _>("class")?
                    .parse()
                    .map_err(StoreError::Corrupt)?;
                let at: i64 = r.try_get("observed_at_ms")?;
                let weight: f64 = r.try_get("weight")?;
                let single = Profile::of(&Observation {
                    number,
                    observed_at_ms: at,
                    source: String::new(),
                    kind: numcheck_core::EvidenceKind::SmsDlr,
                    raw_code: String::new(),
                    class,
                    weight,
                    message_id: None,
                });
                rebuilt
                    .entry(number)
                    .and_modify(|p| *p = p.merge(&single, half_lives))
                    .or_insert(single);
            }
            report.observations += rows.len() as i64;
            let keys: Vec<E164> = rebuilt.keys().copied().collect();
            let stored = profiles_in(&mut tx, &keys).await?;
            for (n, p) in &rebuilt {
                match stored.get(n) {
                    Some(old) => {
                        let d = max_relative_difference(old, p);
                        report.max_relative_difference = report.max_relative_difference.max(d);
                        if !old.approx_eq(p, 1e-9) {
                            report.changed += 1;
                        }
                    }
                    None => report.changed += 1,
                }
            }
            report.profiles += rebuilt.len() as i64;
            let all: Vec<(E164, Profile)> = rebuilt.into_iter().collect();
            upsert_profiles(&mut tx, &all).await?;
            after = last;
        }
        report.removed = sqlx::query(
            "DELETE FROM profiles WHERE number NOT IN (SELECT number FROM observations)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        sqlx::query(
            "UPDATE evidence_meta SET epoch = epoch + 1, \
             profiles = (SELECT COUNT(*) FROM profiles) WHERE id = 1",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(p) = self.presence.get() {
            p.rebuild();
        }
        Ok(report)
    }

    async fn renew_lease(
        &self,
        task: &TaskId,
        seq: Option<i64>,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let renewed = match seq {
            Some(seq) => sqlx::query(
                "UPDATE chunks SET lease_until_ms = ? \
                 WHERE task_id = ? AND seq = ? AND lease_owner = ? AND done = 0",
            )
            .bind(until_ms)
            .bind(task.as_str())
            .bind(seq)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "UPDATE tasks SET lease_until_ms = ? \
                 WHERE id = ? AND lease_owner = ? AND status = 'processing'",
            )
            .bind(until_ms)
            .bind(task.as_str())
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        tx.commit().await?;
        Ok(renewed == 1)
    }

    async fn reserve_lookups(&self, task: &TaskId, want: i64, max: i64) -> Result<i64> {
        if want <= 0 {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let made: Option<i64> = sqlx::query("SELECT lookups_made FROM tasks WHERE id = ?")
            .bind(task.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("lookups_made"))
            .transpose()?;
        let Some(made) = made else {
            return Err(StoreError::NotFound);
        };
        let granted = want.min((max - made).max(0));
        if granted > 0 {
            sqlx::query("UPDATE tasks SET lookups_made = lookups_made + ? WHERE id = ?")
                .bind(granted)
                .bind(task.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(granted)
    }

    async fn looked_up_since(
        &self,
        provider: &str,
        numbers: &[E164],
        since_ms: i64,
    ) -> Result<std::collections::HashSet<E164>> {
        let mut found = std::collections::HashSet::new();
        for part in numbers.chunks(NUMBERS_PER_QUERY) {
            let mut sql = String::from(
                "SELECT number FROM lookup_cache WHERE provider = ? AND looked_up_at_ms >= ? AND number IN (",
            );
            for i in 0..part.len() {
                sql.push_str(if i == 0 { "?" } else { ",?" });
            }
            sql.push(')');
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(provider)
                .bind(since_ms);
            for n in part {
                q = q.bind(n.as_u64() as i64);
            }
            for row in q.fetch_all(&self.reads).await? {
                let raw: i64 = row.try_get("number")?;
                if let Some(n) = E164::from_u64(raw as u64) {
                    found.insert(n);
                }
            }
        }
        Ok(found)
    }

    async fn record_lookups(
        &self,
        provider: &str,
        at_ms: i64,
        rows: &[(E164, String)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
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
                    .bind(at_ms)
                    .bind(status.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    fn keep_presence_filter(&self) {
        let path = self.readers.path.clone();
        let filter = self.presence.get_or_init(|| PresenceFilter::new(&path));
        filter.rebuild();
    }

    fn presence_filter_builds(&self) -> u64 {
        self.presence.get().map_or(0, |p| p.builds())
    }
}

/// Numbers per `IN (…)` lookup.
const NUMBERS_PER_QUERY: usize = 500;

fn max_relative_difference(a: &Profile, b: &Profile) -> f64 {
    a.classes
        .iter()
        .zip(&b.classes)
        .map(|(x, y)| {
            let scale = x.mass.abs().max(y.mass.abs());
            if scale == 0.0 {
                0.0
            } else {
                (x.mass - y.mass).abs() / scale
            }
        })
        .fold(0.0, f64::max)
}

async fn profiles_query(
    conn: &mut sqlx::SqliteConnection,
    numbers: &[E164],
) -> Result<Vec<(E164, Profile)>> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::from("SELECT number, data FROM profiles WHERE number IN (");
    for i in 0..numbers.len() {
        sql.push_str(if i == 0 { "?" } else { ",?" });
    }
    sql.push(')');
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for n in numbers {
        q = q.bind(n.as_u64() as i64);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let raw: i64 = r.try_get("number")?;
            let data: Vec<u8> = r.try_get("data")?;
            let n = E164::from_u64(raw as u64)
                .ok_or_else(|| StoreError::Corrupt(format!("bad number {raw}")))?;
            let p = Profile::from_bytes(&data)
                .ok_or_else(|| StoreError::Corrupt(format!("bad profile for {n}")))?;
            Ok((n, p))
        })
        .collect()
}

async fn profiles_in(
    tx: &mut Transaction<'static, Sqlite>,
    numbers: &[E164],
) -> Result<HashMap<E164, Profile>> {
    let mut out = HashMap::with_capacity(numbers.len());
    for part in numbers.chunks(NUMBERS_PER_QUERY) {
        out.extend(profiles_query(&mut *tx, part).await?);
    }
    Ok(out)
}

async fn upsert_profiles(
    tx: &mut Transaction<'static, Sqlite>,
    profiles: &[(E164, Profile)],
) -> Result<()> {
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
