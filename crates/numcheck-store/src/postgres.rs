//! The server backend: a PostgreSQL database shared by any number of nodes.
//!
//! Same contract as the SQLite backend (see `sqlite.rs` for the semantics of every method);
//! what differs is how concurrent writers are kept apart:
//!
//! - **Work** is claimed with `FOR UPDATE SKIP LOCKED`: a claimer never waits on a chunk
//!   another node is claiming at the same moment, it takes the next one. The choice is **fair
//!   share**: the next chunk comes from the task whose user holds the fewest live chunk leases
//!   (ties: the oldest task, then the chunk's order), so one user's huge task does not starve
//!   another user's small one. See [`CLAIM_CHUNK`] and the `chunk_queue` SQL function in the
//!   migration, which shows the same order to an operator.
//! - **Credits**: creating a task locks its user's row, so two tasks of one user never both
//!   pass the balance check, and one idempotency key never makes two tasks.
//! - **Evidence** is copied (`COPY … FROM STDIN`) into a session-temporary staging table, then
//!   one `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` keeps the new observations: their
//!   identity goes into `observation_keys` (unpartitioned, keyed by number and dedupe key), their
//!   rows into the month-partitioned `observations` log. Profiles of the touched numbers are
//!   locked `FOR UPDATE` in number order (so concurrent ingests cannot deadlock on them),
//!   merged in Rust with [`Profile::merge`] and written back. Ingests share an advisory lock
//!   that a profile rebuild takes exclusively, so a rebuild sees a still log.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use async_trait::async_trait;
use numcheck_core::{
    E164, EvidenceClass, HalfLives, Observation, Profile, TaskId, TaskStatus, UserId,
};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::{
    Callback, CallbackOutcome, CallbackState, ChunkSpec, Created, EvidenceStats, IngestOutcome,
    KeyInfo, LedgerRow, NewTask, Principal, RebuildReport, Result, Store, StoreError, Task,
    TaskCursor, Usage, User, Work, dedupe_key,
};

/// The PostgreSQL store. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// Connections per store (per node).
const MAX_CONNECTIONS: u32 = 16;

/// Advisory lock (transaction scope) on the evidence: ingests take it shared, a profile
/// rebuild exclusively.
const EVIDENCE_LOCK: i64 = 0x6e63_6b5f_6576_6964;
/// Advisory lock (transaction scope) serialising the creation of log partitions.
const PARTITION_LOCK: i64 = 0x6e63_6b5f_7061_7274;

/// Live chunk leases a user may hold before fair share ranks their tasks behind other
/// users'. With 1, a user's first lease is free: a lone task keeps its chunks in order while
/// another user's task waits its turn only from the second concurrent lease on.
const FAIR_SHARE_GRACE: i64 = 1;

/// Leases the next chunk, fair share first.
///
/// `load` counts each user's live (unexpired, undone) chunk leases. The candidates are the
/// undone chunks of open tasks whose lease is free or expired, ordered by
/// 1. the user's live leases beyond [`FAIR_SHARE_GRACE`] (fewest first),
/// 2. the task's age (`created_at_ns`, then id),
/// 3. the chunk's `seq`.
///
/// The first candidate nobody else is locking is locked (`FOR UPDATE OF c SKIP LOCKED`: rows
/// being claimed by another transaction are skipped, not waited for; one whose lease was
/// taken meanwhile fails the re-check of the `WHERE` clause and is skipped too) and leased.
/// Parameters: $1 owner, $2 lease until, $3 now, $4 grace.
const CLAIM_CHUNK: &str = "\
WITH load AS ( \
    SELECT t.user_id, COUNT(*) AS leases \
    FROM chunks c JOIN tasks t ON t.id = c.task_id \
    WHERE NOT c.done AND c.lease_until_ms >= $3 \
    GROUP BY t.user_id \
), next AS ( \
    SELECT c.task_id, c.seq \
    FROM chunks c \
    JOIN tasks t ON t.id = c.task_id \
    LEFT JOIN load l ON l.user_id = t.user_id \
    WHERE NOT c.done AND t.status IN ('pending', 'processing') \
      AND (c.lease_until_ms IS NULL OR c.lease_until_ms < $3) \
    ORDER BY GREATEST(COALESCE(l.leases, 0) - $4, 0), t.created_at_ns, t.id, c.seq \
    LIMIT 1 \
    FOR UPDATE OF c SKIP LOCKED \
) \
UPDATE chunks c SET lease_owner = $1, lease_until_ms = $2 \
FROM next WHERE c.task_id = next.task_id AND c.seq = next.seq \
RETURNING c.task_id, c.seq, c.byte_start, c.byte_end, c.first_line, c.lines";

const TASK_COLUMNS: &str = "id, user_id, task_type, status, total, success, failure, \
    default_region, created_at_ns, updated_at_ms, input_key, input_bytes, result_key, reserved, \
    charged, message, chunk_count, chunks_done, options, lookups_made, callback_url, file_name";

/// The staging table an ingest copies its batch into: temporary (one per connection, never
/// logged), emptied at every commit.
const STAGE_DDL: &str = "DO $$ BEGIN \
    IF to_regclass('pg_temp.numcheck_obs_stage') IS NULL THEN \
        CREATE TEMPORARY TABLE numcheck_obs_stage ( \
            ord BIGINT NOT NULL, number BIGINT NOT NULL, observed_at_ms BIGINT NOT NULL, \
            source TEXT NOT NULL, kind TEXT NOT NULL, raw_code TEXT NOT NULL, \
            class TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL, message_id TEXT, \
            dedupe_key BYTEA NOT NULL \
        ) ON COMMIT DELETE ROWS; \
    END IF; \
END $$";

const STAGE_COPY: &str = "COPY numcheck_obs_stage (ord, number, observed_at_ms, source, kind, \
    raw_code, class, weight, message_id, dedupe_key) FROM STDIN (FORMAT text)";

/// Keeps the staged observations not already known: the first of each identity in the batch
/// (`uniq`), whose identity is new to `observation_keys` (`new_keys`), goes into the log.
/// Returns the batch positions of the observations stored. Parameter: $1 ingested at.
const STAGE_INSERT: &str = "\
WITH uniq AS MATERIALIZED ( \
    SELECT DISTINCT ON (number, dedupe_key) * FROM numcheck_obs_stage \
    ORDER BY number, dedupe_key, ord \
), new_keys AS ( \
    INSERT INTO observation_keys (number, dedupe_key) \
    SELECT number, dedupe_key FROM uniq ORDER BY number, dedupe_key \
    ON CONFLICT DO NOTHING \
    RETURNING number, dedupe_key \
), fresh AS ( \
    SELECT u.* FROM uniq u JOIN new_keys k USING (number, dedupe_key) \
), logged AS ( \
    INSERT INTO observations (number, observed_at_ms, source, kind, raw_code, class, weight, \
        message_id, dedupe_key, ingested_at_ms) \
    SELECT number, observed_at_ms, source, kind, raw_code, class, weight, message_id, \
        dedupe_key, $1 FROM fresh ORDER BY ord \
) \
SELECT ord FROM fresh ORDER BY ord";

/// Bytes of COPY data sent per message.
const COPY_BUFFER: usize = 1 << 20;

/// Years the log gets monthly partitions for; other times land in the DEFAULT partition.
const PARTITION_YEARS: std::ops::RangeInclusive<i64> = 1900..=9999;

const DAY_MS: i64 = 86_400_000;

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and brings its
    /// schema up to date. Several nodes may connect at once: migrations take a lock.
    pub async fn connect(url: &str) -> Result<PgStore> {
        // Bulk ingest statements take over a second by design (200k rows each): report slow
        // statements only at debug level, past 10 s.
        let options = PgConnectOptions::from_str(url)?
            .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(10));
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse<T: FromStr>(value: String, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what} {value:?}")))
}

fn number(raw: i64) -> Result<E164> {
    E164::from_u64(raw as u64).ok_or_else(|| StoreError::Corrupt(format!("bad number {raw}")))
}

fn profile(n: impl std::fmt::Display, bytes: &[u8]) -> Result<Profile> {
    Profile::from_bytes(bytes).ok_or_else(|| StoreError::Corrupt(format!("bad profile for {n}")))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn user_from_row(row: &PgRow) -> Result<User> {
    Ok(User {
        id: parse(row.try_get("id")?, "user id")?,
        name: row.try_get("name")?,
        credits: row.try_get("credits")?,
        is_admin: row.try_get("is_admin")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn task_from_row(row: &PgRow) -> Result<Task> {
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

fn key_from_row(row: &PgRow) -> Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.try_get("id")?,
        user_name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        can_ingest: row.try_get("can_ingest")?,
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}

async fn task_in(tx: &mut Transaction<'static, Postgres>, id: &str) -> Result<Task> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    task_from_row(&row)
}

async fn available_in(
    tx: &mut Transaction<'static, Postgres>,
    user: &UserId,
) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT u.credits AS credits, \
           (SELECT COALESCE(SUM(t.reserved), 0)::BIGINT FROM tasks t \
             WHERE t.user_id = u.id AND t.status IN ('pending', 'processing')) AS held \
         FROM users u WHERE u.id = $1",
    )
    .bind(user.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let credits: Option<i64> = row.try_get("credits")?;
    let held: i64 = row.try_get("held")?;
    Ok(credits.map(|c| c - held))
}

/// Queues the task's completion notice when it asked for one (once).
async fn queue_callback_in(
    tx: &mut Transaction<'static, Postgres>,
    task: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO callbacks (task_id, next_at_ms) \
         SELECT id, $1 FROM tasks WHERE id = $2 AND callback_url IS NOT NULL \
         ON CONFLICT (task_id) DO NOTHING",
    )
    .bind(now_ms)
    .bind(task)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn ledger_from_row(r: &PgRow) -> Result<LedgerRow> {
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
impl Store for PgStore {
    async fn create_user(
        &self,
        id: UserId,
        name: &str,
        credits: Option<i64>,
        is_admin: bool,
        now_ms: i64,
    ) -> Result<User> {
        let conflict = || StoreError::Conflict(format!("user {name:?} already exists"));
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(conflict());
        }
        // A concurrent create of the same name loses on the unique index.
        let inserted = sqlx::query(
            "INSERT INTO users (id, name, credits, is_admin, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(credits)
        .bind(is_admin)
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(conflict()),
            other => other?,
        };
        if let Some(c) = credits {
            sqlx::query(
                "INSERT INTO ledger (user_id, at_ms, amount, kind, note) \
                 VALUES ($1, $2, $3, 'grant', 'opening balance')",
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
        let row = sqlx::query("SELECT * FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
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
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE users SET credits = credits + $1 WHERE id = $2 AND credits IS NOT NULL",
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
            "INSERT INTO ledger (user_id, at_ms, amount, kind, note) VALUES ($1, $2, $3, 'grant', $4)",
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
        let row = sqlx::query(
            "WITH k AS ( \
               INSERT INTO api_keys (user_id, prefix, hash, can_ingest, created_at_ms) \
               VALUES ($1, $2, $3, $4, $5) \
               RETURNING id, user_id, prefix, can_ingest, created_at_ms, revoked_at_ms) \
             SELECT k.id, u.name, k.prefix, k.can_ingest, k.created_at_ms, k.revoked_at_ms \
             FROM k JOIN users u ON u.id = k.user_id",
        )
        .bind(user.as_str())
        .bind(prefix)
        .bind(hash)
        .bind(can_ingest)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        key_from_row(&row)
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
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = id_or_prefix.parse().ok();
        let matching: Vec<i64> = sqlx::query(
            "SELECT id FROM api_keys WHERE revoked_at_ms IS NULL AND (id = $1 OR prefix = $2) \
             FOR UPDATE",
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
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
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
             WHERE k.hash = $1 AND k.revoked_at_ms IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| {
                Ok(Principal {
                    user: user_from_row(r)?,
                    can_ingest: r.try_get("can_ingest")?,
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
            "SELECT id, at_ms, amount, kind, task_id, note FROM ledger WHERE user_id = $1 ORDER BY id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn ledger_recent(&self, user: &UserId, limit: i64) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT id, at_ms, amount, kind, task_id, note FROM ledger WHERE user_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(user.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
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
            "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 \
               AND ($2::TEXT IS NULL OR status = $2) \
               AND ($3::BIGINT IS NULL OR (created_at_ns, id) < ($3, $4::TEXT)) \
             ORDER BY created_at_ns DESC, id DESC LIMIT $5"
        );
        let (at, id) = match after {
            Some(c) => (Some(c.created_at_ns), Some(c.id.as_str())),
            None => (None, None),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(status.map(|s| s.as_str()))
            .bind(at)
            .bind(id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn cancel_task(&self, user: &UserId, task: &TaskId, now_ms: i64) -> Result<Task> {
        let mut tx = self.pool.begin().await?;
        let current =
            sqlx::query("SELECT status FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE")
                .bind(task.as_str())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
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
               updated_at_ms = $1, lease_owner = NULL, lease_until_ms = NULL WHERE id = $2",
        )
        .bind(now_ms)
        .bind(task.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE chunks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE task_id = $1 AND NOT done",
        )
        .bind(task.as_str())
        .execute(&mut *tx)
        .await?;
        queue_callback_in(&mut tx, task.as_str(), now_ms).await?;
        let task = task_in(&mut tx, task.as_str()).await?;
        tx.commit().await?;
        Ok(task)
    }

    async fn delete_task(&self, user: &UserId, task: &TaskId, _now_ms: i64) -> Result<Task> {
        let mut tx = self.pool.begin().await?;
        let sql =
            format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(task.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let before = task_from_row(&row)?;
        sqlx::query("DELETE FROM tasks WHERE id = $1")
            .bind(task.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before)
    }

    async fn tasks_by_status(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    async fn open_tasks(&self, user: &UserId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM tasks WHERE user_id = $1 AND status IN ('pending', 'processing')",
        )
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn usage(&self, user: &UserId) -> Result<Usage> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM tasks WHERE user_id = $1) AS tasks, \
               (SELECT COALESCE(SUM(success), 0)::BIGINT FROM tasks \
                  WHERE user_id = $1 AND status = 'exported') AS numbers, \
               (SELECT COALESCE(SUM(reserved), 0)::BIGINT FROM tasks WHERE user_id = $1 \
                  AND status IN ('pending', 'processing')) AS held, \
               (SELECT COALESCE(-SUM(amount), 0)::BIGINT FROM ledger \
                  WHERE user_id = $1 AND kind = 'charge') AS charged",
        )
        .bind(user.as_str())
        .fetch_one(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE callbacks SET lease_owner = $1, lease_until_ms = $2 WHERE task_id = ( \
               SELECT task_id FROM callbacks WHERE state = 'pending' AND next_at_ms <= $3 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
               ORDER BY next_at_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING task_id, attempts",
        )
        .bind(owner)
        .bind(now_ms + lease_ms)
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
        let done = sqlx::query(
            "UPDATE callbacks SET state = $1, attempts = attempts + 1, next_at_ms = $2, \
               last_status = $3, last_error = $4, delivered_at_ms = $5, lease_owner = NULL, \
               lease_until_ms = NULL \
             WHERE task_id = $6 AND lease_owner = $7 AND state = 'pending'",
        )
        .bind(state)
        .bind(next_at)
        .bind(status)
        .bind(error)
        .bind(delivered)
        .bind(task.as_str())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn callback_secret(
        &self,
        user: &UserId,
        candidate: &str,
        replace: bool,
    ) -> Result<String> {
        let row = sqlx::query(
            "UPDATE users SET callback_secret = CASE WHEN $1 OR callback_secret IS NULL \
               THEN $2 ELSE callback_secret END WHERE id = $3 RETURNING callback_secret",
        )
        .bind(replace)
        .bind(candidate)
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("callback_secret")?)
    }

    async fn callback_state(&self, task: &TaskId) -> Result<Option<CallbackState>> {
        let row = sqlx::query(
            "SELECT state, attempts, next_at_ms, last_status, last_error, delivered_at_ms \
             FROM callbacks WHERE task_id = $1",
        )
        .bind(task.as_str())
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // One task creation per user at a time: the balance check and the idempotency check
        // below then see every task of the user.
        let user = sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
            .bind(new.user_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(StoreError::NotFound);
        }
        if let Some(key) = &new.idempotency_key {
            let existing =
                sqlx::query("SELECT id FROM tasks WHERE user_id = $1 AND idempotency_key = $2")
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
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
        if !new.chunks.is_empty() {
            let seqs: Vec<i64> = (0..new.chunks.len() as i64).collect();
            let col = |f: fn(&ChunkSpec) -> i64| new.chunks.iter().map(f).collect::<Vec<i64>>();
            sqlx::query(
                "INSERT INTO chunks (task_id, seq, byte_start, byte_end, first_line, lines) \
                 SELECT $1, u.* FROM unnest($2::BIGINT[], $3::BIGINT[], $4::BIGINT[], \
                   $5::BIGINT[], $6::BIGINT[]) AS u",
            )
            .bind(new.id.as_str())
            .bind(seqs)
            .bind(col(|c| c.byte_start))
            .bind(col(|c| c.byte_end))
            .bind(col(|c| c.first_line))
            .bind(col(|c| c.lines))
            .execute(&mut *tx)
            .await?;
        }
        let task = task_in(&mut tx, new.id.as_str()).await?;
        tx.commit().await?;
        Ok(Created::New(task))
    }

    async fn task(&self, id: &TaskId) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_by_idempotency_key(&self, user: &UserId, key: &str) -> Result<Option<Task>> {
        let sql =
            format!("SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 AND idempotency_key = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn claim_work(&self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Work>> {
        let mut tx = self.pool.begin().await?;
        let until = now_ms + lease_ms;
        // Exports first: they finish tasks.
        let sql = format!(
            "UPDATE tasks SET lease_owner = $1, lease_until_ms = $2 WHERE id = ( \
               SELECT id FROM tasks WHERE status = 'processing' AND chunks_done = chunk_count \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
               ORDER BY created_at_ns, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {TASK_COLUMNS}"
        );
        let export = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(until)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = export {
            let task = task_from_row(&row)?;
            tx.commit().await?;
            return Ok(Some(Work::Export { task }));
        }
        let chunk = sqlx::query(CLAIM_CHUNK)
            .bind(owner)
            .bind(until)
            .bind(now_ms)
            .bind(FAIR_SHARE_GRACE)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = chunk else {
            // A task with no chunks at all goes straight to export.
            sqlx::query(
                "UPDATE tasks SET status = 'processing', updated_at_ms = $1 \
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
            "UPDATE tasks SET status = 'processing', updated_at_ms = $1 \
             WHERE id = $2 AND status = 'pending'",
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE chunks SET done = TRUE, success = $1, failure = $2, lease_owner = NULL, \
               lease_until_ms = NULL \
             WHERE task_id = $3 AND seq = $4 AND NOT done AND lease_owner = $5 \
               AND EXISTS (SELECT 1 FROM tasks WHERE id = $3 AND status IN ('pending', 'processing'))",
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
            "UPDATE tasks SET success = success + $1, failure = failure + $2, \
               chunks_done = chunks_done + 1, updated_at_ms = $3 WHERE id = $4",
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

    async fn renew_lease(
        &self,
        task: &TaskId,
        seq: Option<i64>,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool> {
        let renewed = match seq {
            Some(seq) => sqlx::query(
                "UPDATE chunks SET lease_until_ms = $1 \
                 WHERE task_id = $2 AND seq = $3 AND lease_owner = $4 AND NOT done",
            )
            .bind(until_ms)
            .bind(task.as_str())
            .bind(seq)
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "UPDATE tasks SET lease_until_ms = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND status = 'processing'",
            )
            .bind(until_ms)
            .bind(task.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected(),
        };
        Ok(renewed == 1)
    }

    async fn finish_export(
        &self,
        task: &TaskId,
        owner: &str,
        result_key: &str,
        charge: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET status = 'exported', result_key = $1, charged = $2, reserved = 0, \
               updated_at_ms = $3, lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = $4 AND status = 'processing' AND lease_owner = $5 RETURNING user_id",
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
        sqlx::query(
            "UPDATE users SET credits = credits - $1 WHERE id = $2 AND credits IS NOT NULL",
        )
        .bind(charge)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ledger (user_id, at_ms, amount, kind, task_id, note) \
             VALUES ($1, $2, $3, 'charge', $4, 'unique numbers checked')",
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE tasks SET status = 'failed', message = $1, reserved = 0, updated_at_ms = $2, \
               lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = $3 AND status IN ('pending', 'processing')",
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
        let mut tx = self.pool.begin().await?;
        let a = sqlx::query(
            "UPDATE chunks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE lease_owner IS NOT NULL AND ($1::TEXT IS NULL OR lease_owner = $1)",
        )
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        let b = sqlx::query(
            "UPDATE tasks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE lease_owner IS NOT NULL AND ($1::TEXT IS NULL OR lease_owner = $1)",
        )
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
        // Sorted by number (stably: within a number, the batch's order decides which of two
        // copies of a fact is kept), so a number's new observations are neighbours for the
        // merge and profiles are locked in number order.
        let mut sorted = batch;
        sorted.sort_by_key(|o| o.number);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(EVIDENCE_LOCK)
            .execute(&mut *tx)
            .await?;
        ensure_partitions(&mut tx, &sorted).await?;
        sqlx::query(STAGE_DDL).execute(&mut *tx).await?;
        copy_to_stage(&mut tx, &sorted).await?;
        let stored: Vec<i64> = sqlx::query(STAGE_INSERT)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("ord"))
            .collect::<Result<_, _>>()?;
        let mut deltas: Vec<(E164, Profile)> = Vec::new();
        for ord in &stored {
            let obs = usize::try_from(*ord)
                .ok()
                .and_then(|i| sorted.get(i))
                .ok_or_else(|| StoreError::Corrupt(format!("staged row {ord} out of range")))?;
            let p = Profile::of(obs);
            match deltas.last_mut() {
                Some((n, d)) if *n == obs.number => *d = d.merge(&p, half_lives),
                _ => deltas.push((obs.number, p)),
            }
        }
        merge_profiles(&mut tx, &deltas, half_lives).await?;
        tx.commit().await?;
        let inserted = stored.len() as u64;
        Ok(IngestOutcome {
            inserted,
            duplicates: sorted.len() as u64 - inserted,
        })
    }

    async fn profiles(&self, numbers: &[E164]) -> Result<HashMap<E164, Profile>> {
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut keys: Vec<i64> = numbers.iter().map(|n| n.as_u64() as i64).collect();
        keys.sort_unstable();
        keys.dedup();
        let rows = sqlx::query("SELECT number, data FROM profiles WHERE number = ANY($1)")
            .bind(keys)
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let n = number(r.try_get("number")?)?;
            let data: Vec<u8> = r.try_get("data")?;
            out.insert(n, profile(n, &data)?);
        }
        Ok(out)
    }

    async fn evidence_stats(&self) -> Result<EvidenceStats> {
        let head = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(observed_at_ms) AS first, MAX(observed_at_ms) AS last \
             FROM observations",
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
            by_class: group(
                "SELECT class AS k, COUNT(*) AS n FROM observations GROUP BY class ORDER BY n DESC",
            )
            .await?,
            by_kind: group(
                "SELECT kind AS k, COUNT(*) AS n FROM observations GROUP BY kind ORDER BY n DESC",
            )
            .await?,
            by_source: group(
                "SELECT source AS k, COUNT(*) AS n FROM observations GROUP BY source \
                 ORDER BY n DESC LIMIT 20",
            )
            .await?,
            first_ms: head.try_get("first")?,
            last_ms: head.try_get("last")?,
        })
    }

    async fn rebuild_profiles(&self, half_lives: &HalfLives) -> Result<RebuildReport> {
        let mut tx = self.pool.begin().await?;
        // Ingests wait until the rebuild commits.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVIDENCE_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut report = RebuildReport::default();
        let mut after: i64 = -1;
        loop {
            let numbers: Vec<i64> = sqlx::query(
                "SELECT DISTINCT number FROM observation_keys WHERE number > $1 \
                 ORDER BY number LIMIT 2000",
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
                 WHERE number BETWEEN $1 AND $2 ORDER BY number, id",
            )
            .bind(first)
            .bind(last)
            .fetch_all(&mut *tx)
            .await?;
            let mut rebuilt: BTreeMap<i64, Profile> = BTreeMap::new();
            for r in &rows {
                let raw: i64 = r.try_get("number")?;
                let class: EvidenceClass = r
                    .try_get::<String, _>("class")?
                    .parse()
                    .map_err(StoreError::Corrupt)?;
                let single = Profile::of(&Observation {
                    number: number(raw)?,
                    observed_at_ms: r.try_get("observed_at_ms")?,
                    source: String::new(),
                    kind: numcheck_core::EvidenceKind::SmsDlr,
                    raw_code: String::new(),
                    class,
                    weight: r.try_get("weight")?,
                    message_id: None,
                });
                rebuilt
                    .entry(raw)
                    .and_modify(|p| *p = p.merge(&single, half_lives))
                    .or_insert(single);
            }
            report.observations += rows.len() as i64;
            let keys: Vec<i64> = rebuilt.keys().copied().collect();
            let stored: HashMap<i64, Vec<u8>> =
                sqlx::query("SELECT number, data FROM profiles WHERE number = ANY($1)")
                    .bind(&keys)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("number")?, r.try_get("data")?)))
                    .collect::<Result<_>>()?;
            for (n, p) in &rebuilt {
                match stored.get(n) {
                    Some(bytes) => {
                        let old = profile(n, bytes)?;
                        let d = max_relative_difference(&old, p);
                        report.max_relative_difference = report.max_relative_difference.max(d);
                        if !old.approx_eq(p, 1e-9) {
                            report.changed += 1;
                        }
                    }
                    None => report.changed += 1,
                }
            }
            report.profiles += rebuilt.len() as i64;
            let data: Vec<Vec<u8>> = rebuilt.values().map(Profile::to_bytes).collect();
            sqlx::query(
                "INSERT INTO profiles (number, data) \
                 SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[]) \
                 ON CONFLICT (number) DO UPDATE SET data = excluded.data",
            )
            .bind(&keys)
            .bind(data)
            .execute(&mut *tx)
            .await?;
            after = last;
        }
        report.removed = sqlx::query(
            "DELETE FROM profiles p WHERE NOT EXISTS \
               (SELECT 1 FROM observation_keys k WHERE k.number = p.number)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        tx.commit().await?;
        Ok(report)
    }

    async fn reserve_lookups(&self, task: &TaskId, want: i64, max: i64) -> Result<i64> {
        if want <= 0 {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let made: i64 = sqlx::query("SELECT lookups_made FROM tasks WHERE id = $1 FOR UPDATE")
            .bind(task.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("lookups_made")?;
        let granted = want.min((max - made).max(0));
        if granted > 0 {
            sqlx::query("UPDATE tasks SET lookups_made = lookups_made + $1 WHERE id = $2")
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
    ) -> Result<HashSet<E164>> {
        if numbers.is_empty() {
            return Ok(HashSet::new());
        }
        let keys: Vec<i64> = numbers.iter().map(|n| n.as_u64() as i64).collect();
        let rows = sqlx::query(
            "SELECT number FROM lookup_cache \
             WHERE provider = $1 AND looked_up_at_ms >= $2 AND number = ANY($3)",
        )
        .bind(provider)
        .bind(since_ms)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        let mut found = HashSet::with_capacity(rows.len());
        for row in &rows {
            let raw: i64 = row.try_get("number")?;
            if let Some(n) = E164::from_u64(raw as u64) {
                found.insert(n);
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
        // One row per number (the last given wins, as with row-by-row upserts; one statement
        // may not update a row twice), in number order so concurrent upserts do not deadlock.
        let latest: BTreeMap<i64, &str> = rows
            .iter()
            .map(|(n, s)| (n.as_u64() as i64, s.as_str()))
            .collect();
        let numbers: Vec<i64> = latest.keys().copied().collect();
        let statuses: Vec<&str> = latest.values().copied().collect();
        sqlx::query(
            "INSERT INTO lookup_cache (number, provider, looked_up_at_ms, raw_status) \
             SELECT u.n, $1, $2, u.s FROM unnest($3::BIGINT[], $4::TEXT[]) AS u(n, s) \
             ON CONFLICT (number, provider) DO UPDATE \
               SET looked_up_at_ms = excluded.looked_up_at_ms, raw_status = excluded.raw_status",
        )
        .bind(provider)
        .bind(at_ms)
        .bind(numbers)
        .bind(statuses)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Creates the monthly log partitions the batch needs and does not have yet. Partition
/// creation is serialised by an advisory lock, so two ingests needing the same new month do
/// not race on the catalog; batches whose months all exist (nearly all) skip it.
async fn ensure_partitions(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[Observation],
) -> Result<()> {
    let months: BTreeSet<(i64, i64)> = batch
        .iter()
        .filter_map(|o| month_of(o.observed_at_ms))
        .collect();
    if months.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = months.iter().map(|&(y, m)| partition_name(y, m)).collect();
    let missing: HashSet<String> =
        sqlx::query("SELECT n FROM unnest($1::TEXT[]) AS n WHERE to_regclass(n) IS NULL")
            .bind(&names)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get("n"))
            .collect::<Result<_, _>>()?;
    if missing.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut **tx)
        .await?;
    for &(y, m) in &months {
        let name = partition_name(y, m);
        if !missing.contains(&name) {
            continue;
        }
        let (next_y, next_m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let from = days_from_civil(y, m, 1) * DAY_MS;
        let to = days_from_civil(next_y, next_m, 1) * DAY_MS;
        // Only integers computed here go into the statement.
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF observations \
             FOR VALUES FROM ({from}) TO ({to})"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
        tracing::info!(partition = %name, "created an observation log partition");
    }
    Ok(())
}

fn partition_name(year: i64, month: i64) -> String {
    format!("observations_y{year:04}m{month:02}")
}

/// The (year, month) of a time, UTC; `None` outside [`PARTITION_YEARS`].
fn month_of(ms: i64) -> Option<(i64, i64)> {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    PARTITION_YEARS.contains(&y).then_some((y, m))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Streams the batch into the staging table in COPY text format; `ord` is the position in
/// the sorted batch.
async fn copy_to_stage(
    tx: &mut Transaction<'static, Postgres>,
    sorted: &[Observation],
) -> Result<()> {
    let mut copy = tx.copy_in_raw(STAGE_COPY).await?;
    let mut buf = String::with_capacity(COPY_BUFFER + 4096);
    let mut sent: std::result::Result<(), sqlx::Error> = Ok(());
    for (ord, obs) in sorted.iter().enumerate() {
        copy_row(&mut buf, ord, obs);
        if buf.len() >= COPY_BUFFER {
            let chunk = std::mem::replace(&mut buf, String::with_capacity(COPY_BUFFER + 4096));
            if let Err(e) = copy.send(chunk.into_bytes()).await {
                sent = Err(e);
                break;
            }
        }
    }
    if sent.is_ok() && !buf.is_empty() {
        sent = copy.send(buf.into_bytes()).await.map(|_| ());
    }
    match sent {
        Ok(()) => {
            copy.finish().await?;
            Ok(())
        }
        Err(e) => {
            // Leave the connection usable; the transaction is rolled back by the caller.
            if let Err(abort) = copy.abort("numcheck: evidence copy failed").await {
                tracing::debug!(error = %abort, "aborting COPY");
            }
            Err(e.into())
        }
    }
}

/// One observation as a line of COPY text format.
fn copy_row(buf: &mut String, ord: usize, obs: &Observation) {
    buf.push_str(&ord.to_string());
    buf.push('\t');
    buf.push_str(&(obs.number.as_u64() as i64).to_string());
    buf.push('\t');
    buf.push_str(&obs.observed_at_ms.to_string());
    buf.push('\t');
    copy_text(buf, &obs.source);
    buf.push('\t');
    copy_text(buf, obs.kind.as_str());
    buf.push('\t');
    copy_text(buf, &obs.raw_code);
    buf.push('\t');
    copy_text(buf, obs.class.as_str());
    buf.push('\t');
    // Rust prints the shortest form that reads back to the same f64 (NaN and inf included,
    // both of which PostgreSQL reads).
    buf.push_str(&obs.weight.to_string());
    buf.push('\t');
    match &obs.message_id {
        Some(id) => copy_text(buf, id),
        None => buf.push_str("\\N"),
    }
    buf.push('\t');
    // bytea hex input, its backslash escaped for the COPY text format.
    buf.push_str("\\\\x");
    for b in dedupe_key(obs) {
        buf.push(HEX[usize::from(b >> 4)]);
        buf.push(HEX[usize::from(b & 0xf)]);
    }
    buf.push('\n');
}

const HEX: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

/// A text value escaped for the COPY text format.
fn copy_text(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

/// Merges the batch's new evidence (`deltas`, ascending by number) into the stored profiles.
///
/// The touched profiles are locked `FOR UPDATE` in number order, so concurrent ingests take
/// their row locks in one global order and cannot deadlock. A number without a profile is
/// inserted with `ON CONFLICT DO NOTHING`; if another ingest inserted it meanwhile, that row
/// is locked and merged into like the others.
async fn merge_profiles(
    tx: &mut Transaction<'static, Postgres>,
    deltas: &[(E164, Profile)],
    half_lives: &HalfLives,
) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = deltas.iter().map(|(n, _)| n.as_u64() as i64).collect();
    let stored = lock_profiles(tx, &numbers).await?;
    let mut updates: Vec<(i64, Profile)> = Vec::new();
    let mut fresh: Vec<(i64, Profile)> = Vec::new();
    for (n, delta) in deltas {
        let key = n.as_u64() as i64;
        match stored.get(&key) {
            Some(old) => updates.push((key, old.merge(delta, half_lives))),
            None => fresh.push((key, *delta)),
        }
    }
    if !fresh.is_empty() {
        let keys: Vec<i64> = fresh.iter().map(|(n, _)| *n).collect();
        let data: Vec<Vec<u8>> = fresh.iter().map(|(_, p)| p.to_bytes()).collect();
        let inserted: HashSet<i64> = sqlx::query(
            "INSERT INTO profiles (number, data) \
             SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[]) \
             ON CONFLICT (number) DO NOTHING RETURNING number",
        )
        .bind(&keys)
        .bind(data)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("number"))
        .collect::<Result<_, _>>()?;
        let raced: Vec<(i64, Profile)> = fresh
            .into_iter()
            .filter(|(n, _)| !inserted.contains(n))
            .collect();
        if !raced.is_empty() {
            let keys: Vec<i64> = raced.iter().map(|(n, _)| *n).collect();
            let now = lock_profiles(tx, &keys).await?;
            for (n, delta) in raced {
                let old = now.get(&n).ok_or_else(|| {
                    StoreError::Corrupt(format!("profile of {n} vanished during ingest"))
                })?;
                updates.push((n, old.merge(&delta, half_lives)));
            }
        }
    }
    if !updates.is_empty() {
        let keys: Vec<i64> = updates.iter().map(|(n, _)| *n).collect();
        let data: Vec<Vec<u8>> = updates.iter().map(|(_, p)| p.to_bytes()).collect();
        sqlx::query(
            "UPDATE profiles p SET data = u.data \
             FROM unnest($1::BIGINT[], $2::BYTEA[]) AS u(number, data) \
             WHERE p.number = u.number",
        )
        .bind(keys)
        .bind(data)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Locks and reads the stored profiles of `numbers`, in number order.
async fn lock_profiles(
    tx: &mut Transaction<'static, Postgres>,
    numbers: &[i64],
) -> Result<HashMap<i64, Profile>> {
    let rows = sqlx::query(
        "SELECT number, data FROM profiles WHERE number = ANY($1) ORDER BY number FOR UPDATE",
    )
    .bind(numbers)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let n: i64 = r.try_get("number")?;
        let data: Vec<u8> = r.try_get("data")?;
        out.insert(n, profile(n, &data)?);
    }
    Ok(out)
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn calendar_round_trips_and_months_have_the_right_bounds() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for day in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        // 2024-02-29 23:59:59.999 is in February, the next millisecond in March.
        let march = days_from_civil(2024, 3, 1) * DAY_MS;
        assert_eq!(month_of(march - 1), Some((2024, 2)));
        assert_eq!(month_of(march), Some((2024, 3)));
        assert_eq!(month_of(-1), Some((1969, 12)));
        assert_eq!(month_of(i64::MAX), None);
    }

    #[test]
    fn copy_text_escapes_what_the_format_needs() {
        let mut s = String::new();
        copy_text(&mut s, "a\\b\tc\nd\re");
        assert_eq!(s, "a\\\\b\\tc\\nd\\re");
    }
}
