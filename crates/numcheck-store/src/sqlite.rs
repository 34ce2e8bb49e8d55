//! The embedded backend: one SQLite file in the data folder, in WAL mode.
//!
//! Write transactions start with `BEGIN IMMEDIATE` so that two writers never deadlock on a
//! lock upgrade; other processes on the same file (`numcheck keys create` beside a running
//! server) wait on the busy timeout instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use numcheck_core::{TaskId, UserId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::{
    ChunkSpec, Created, KeyInfo, LedgerRow, NewTask, Result, Store, StoreError, Task, User, Work,
};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const TASK_COLUMNS: &str = "id, user_id, task_type, status, total, success, failure, \
    default_region, created_at_ns, updated_at_ms, input_key, input_bytes, result_key, reserved, \
    charged, message, chunk_count, chunks_done";

impl SqliteStore {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
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
    })
}

fn key_from_row(row: &SqliteRow) -> Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.try_get("id")?,
        user_name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
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
        now_ms: i64,
    ) -> Result<KeyInfo> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO api_keys (user_id, prefix, hash, created_at_ms) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(user.as_str())
        .bind(prefix)
        .bind(hash)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let row = sqlx::query(
            "SELECT k.id, u.name, k.prefix, k.created_at_ms, k.revoked_at_ms \
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
            "SELECT k.id, u.name, k.prefix, k.created_at_ms, k.revoked_at_ms \
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

    async fn user_for_key_hash(&self, hash: &[u8]) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.* FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.hash = ? AND k.revoked_at_ms IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
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
        rows.iter()
            .map(|r| {
                Ok(LedgerRow {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    amount: r.try_get("amount")?,
                    kind: r.try_get("kind")?,
                    task_id: r.try_get("task_id")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
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
               updated_at_ms, input_key, input_bytes, reserved, idempotency_key, chunk_count) \
             VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .fetch_optional(&self.pool)
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
        let chunk = sqlx::query(
            "UPDATE chunks SET lease_owner = ?, lease_until_ms = ? WHERE rowid = ( \
               SELECT c.rowid FROM chunks c JOIN tasks t ON t.id = c.task_id \
               WHERE c.done = 0 AND t.status IN ('pending', 'processing') \
                 AND (c.lease_until_ms IS NULL OR c.lease_until_ms < ?) \
               ORDER BY t.created_at_ns, t.id, c.seq LIMIT 1) \
             RETURNING task_id, seq, byte_start, byte_end, first_line, lines",
        )
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
             WHERE task_id = ? AND seq = ? AND done = 0 AND lease_owner = ?",
        )
        .bind(success)
        .bind(failure)
        .bind(task.as_str())
        .bind(seq)
        .bind(owner)
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
}
