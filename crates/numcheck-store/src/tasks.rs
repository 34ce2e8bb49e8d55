//! Tasks and the work queue: creating, listing, cancelling and deleting tasks, and leasing
//! their chunks and exports to workers.

use async_trait::async_trait;
use numcheck_core::{TaskId, TaskStatus, UserId};
use sqlx::Transaction;

use crate::accounts::available_in;
use crate::backend::{Backend, WorkSignals};
use crate::dialect::{Dialect, QueryExt, RowExt, RowsAffected};
use crate::rows::{TASK_COLUMNS, task_from_row};
use crate::{ChunkSpec, Created, NewTask, Result, StoreError, Task, TaskCursor, Usage, Work};

/// Live chunk leases a user may hold before fair share ranks their tasks behind other
/// users'. With 1, a user's first lease is free: a lone task keeps its chunks in order while
/// another user's task waits its turn only from the second concurrent lease on.
pub(crate) const FAIR_SHARE_GRACE: i64 = 1;

/// Tasks, and the queue of work (chunks to process, results to export) they make.
#[async_trait]
pub trait TaskQueue: Send + Sync {
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

    /// Leases the next piece of work: an export of a fully processed task, else the next
    /// unprocessed chunk. Work whose lease expired is handed out again.
    async fn claim_work(&self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Work>>;
    /// Leases the next piece of one task's work, as [`TaskQueue::claim_work`] does for any
    /// task: its export once its chunks are done, else its next free chunk in order. For a
    /// small task run at once where it was created (whose chunks that node holds from the
    /// start, [`NewTask::leased_to`]); workers still take over what it leaves.
    async fn claim_task_work(
        &self,
        task: &TaskId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Work>>;
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
    /// Records how far a chunk this owner holds has got: lines checked (`success`) and
    /// refused (`failure`) so far. The task's counters show it until the chunk commits. A
    /// chunk's progress only grows: a lower report (another worker redoing a chunk whose lease
    /// ran out) changes nothing, so a task's counters never go back. Returns `false` when the
    /// chunk is not this owner's (or is done).
    async fn report_progress(
        &self,
        task: &TaskId,
        seq: i64,
        owner: &str,
        success: i64,
        failure: i64,
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
    /// Every node's announcements that work may be waiting: a task created, a chunk
    /// committed, leases given back — on any node. Each such commit announces itself (on
    /// PostgreSQL with `NOTIFY`, delivered when it commits), so a worker that waits on these
    /// learns of new work at once instead of at its next poll. `None` where there is no other
    /// node to hear from (the embedded store: its one process wakes its own workers).
    async fn work_signals(&self) -> Result<Option<WorkSignals>>;
}

#[async_trait]
impl<B: Backend> TaskQueue for B {
    async fn create_task(&self, new: NewTask) -> Result<Created> {
        let mut tx = self.write().await?;
        if !B::Db::FOR_UPDATE.is_empty() {
            // One task creation per user at a time: the balance check and the idempotency
            // check below then see every task of the user. (A SQLite write transaction keeps
            // every other writer out already.)
            let sql = format!("SELECT 1 FROM users WHERE id = $1{}", B::Db::FOR_UPDATE);
            let user = sqlx::query(sqlx::AssertSqlSafe(sql))
                .arg(new.user_id.as_str())
                .fetch_optional(B::Db::conn(&mut tx))
                .await?;
            if user.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        if let Some(key) = &new.idempotency_key {
            let existing =
                sqlx::query("SELECT id FROM tasks WHERE user_id = $1 AND idempotency_key = $2")
                    .arg(new.user_id.as_str())
                    .arg(key.as_str())
                    .fetch_optional(B::Db::conn(&mut tx))
                    .await?;
            if let Some(row) = existing {
                let id: String = row.col("id")?;
                return Ok(Created::Existing(task_in(&mut tx, &id).await?));
            }
        }
        if let Some(cap) = new.max_open {
            let open: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM tasks WHERE user_id = $1 \
                 AND status IN ('pending', 'processing')",
            )
            .arg(new.user_id.as_str())
            .fetch_one(B::Db::conn(&mut tx))
            .await?
            .col("n")?;
            if open >= cap {
                return Err(StoreError::TooManyOpenTasks { cap });
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
            "INSERT INTO tasks (id, user_id, task_type, status, total, default_region, \
               created_at_ns, updated_at_ms, input_key, input_bytes, reserved, idempotency_key, \
               chunk_count, options, callback_url, file_name) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .arg(new.id.as_str())
        .arg(new.user_id.as_str())
        .arg(new.task_type.as_str())
        .arg(new.total)
        .arg(new.default_region.as_deref())
        .arg(new.created_at_ns)
        .arg(now_ms)
        .arg(new.input_key.as_str())
        .arg(new.input_bytes)
        .arg(reserved)
        .arg(new.idempotency_key.as_deref())
        .arg(new.chunks.len() as i64)
        .arg(new.options.as_str())
        .arg(new.callback_url.as_deref())
        .arg(new.file_name.as_deref())
        .execute(B::Db::conn(&mut tx))
        .await?;
        self.insert_chunks(&mut tx, new.id.as_str(), &new.chunks)
            .await?;
        if let Some((owner, until_ms)) = &new.leased_to {
            // Its node is working on it from the start.
            sqlx::query(
                "UPDATE chunks SET lease_owner = $1, lease_until_ms = $2 WHERE task_id = $3",
            )
            .arg(owner.as_str())
            .arg(*until_ms)
            .arg(new.id.as_str())
            .execute(B::Db::conn(&mut tx))
            .await?;
        }
        let task = task_in(&mut tx, new.id.as_str()).await?;
        self.announce_work(&mut tx).await?;
        tx.commit().await?;
        Ok(Created::New(task))
    }

    async fn task(&self, id: &TaskId) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(id.as_str())
            .fetch_optional(B::Db::pool(self.reads()))
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_by_idempotency_key(&self, user: &UserId, key: &str) -> Result<Option<Task>> {
        let sql =
            format!("SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 AND idempotency_key = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(user.as_str())
            .arg(key)
            .fetch_optional(B::Db::pool(self.pool()))
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        status: Option<TaskStatus>,
        after: Option<&TaskCursor>,
        limit: i64,
    ) -> Result<Vec<Task>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks {} ORDER BY created_at_ns DESC, id DESC LIMIT $5",
            B::Db::LIST_TASKS
        );
        let (at, id) = match after {
            Some(c) => (Some(c.created_at_ns), Some(c.id.as_str())),
            None => (None, None),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(user.as_str())
            .arg(status.map(|s| s.as_str()))
            .arg(at)
            .arg(id)
            .arg(limit)
            .fetch_all(B::Db::pool(self.reads()))
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn cancel_task(&self, user: &UserId, task: &TaskId, now_ms: i64) -> Result<Task> {
        let mut tx = self.write().await?;
        let status = users_task_in(&mut tx, user, task).await?.status;
        if status.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "the task has already ended ({status})"
            )));
        }
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', message = 'cancelled by the user', \
               reserved = 0, updated_at_ms = $1, lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = $2",
        )
        .arg(now_ms)
        .arg(task.as_str())
        .execute(B::Db::conn(&mut tx))
        .await?;
        let sql = format!(
            "UPDATE chunks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE task_id = $1 AND {}",
            B::Db::UNDONE
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(task.as_str())
            .execute(B::Db::conn(&mut tx))
            .await?;
        queue_callback_in(&mut tx, task.as_str(), now_ms).await?;
        let task = task_in(&mut tx, task.as_str()).await?;
        tx.commit().await?;
        Ok(task)
    }

    async fn delete_task(&self, user: &UserId, task: &TaskId, _now_ms: i64) -> Result<Task> {
        let mut tx = self.write().await?;
        let before = users_task_in(&mut tx, user, task).await?;
        // Chunks and the callback row go with the task (ON DELETE CASCADE); its held credits
        // go with it too, as they are a column of the row.
        sqlx::query("DELETE FROM tasks WHERE id = $1")
            .arg(task.as_str())
            .execute(B::Db::conn(&mut tx))
            .await?;
        tx.commit().await?;
        Ok(before)
    }

    async fn usage(&self, user: &UserId) -> Result<Usage> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM tasks WHERE user_id = $1) AS tasks, \
               (SELECT CAST(COALESCE(SUM(success), 0) AS BIGINT) FROM tasks \
                  WHERE user_id = $1 AND status = 'exported') AS numbers, \
               (SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM tasks WHERE user_id = $1 \
                  AND status IN ('pending', 'processing')) AS held, \
               (SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM ledger \
                  WHERE user_id = $1 AND kind = 'charge') AS charged",
        )
        .arg(user.as_str())
        .fetch_one(B::Db::pool(self.reads()))
        .await?;
        Ok(Usage {
            tasks: row.col("tasks")?,
            numbers_checked: row.col("numbers")?,
            credits_charged: row.col("charged")?,
            held: row.col("held")?,
        })
    }

    async fn open_tasks(&self, user: &UserId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM tasks \
             WHERE user_id = $1 AND status IN ('pending', 'processing')",
        )
        .arg(user.as_str())
        .fetch_one(B::Db::pool(self.reads()))
        .await?;
        Ok(row.col("n")?)
    }

    async fn tasks_by_status(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status ORDER BY status")
                .fetch_all(B::Db::pool(self.reads()))
                .await?;
        rows.iter()
            .map(|r| Ok((r.col("status")?, r.col("n")?)))
            .collect()
    }

    async fn claim_work(&self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Work>> {
        let mut tx = self.write().await?;
        let until = now_ms + lease_ms;
        // Exports first: they finish tasks.
        let sql = format!(
            "UPDATE tasks SET lease_owner = $1, lease_until_ms = $2 WHERE id = ( \
               SELECT id FROM tasks WHERE {EXPORTABLE} \
               ORDER BY created_at_ns, id LIMIT 1{}) \
             RETURNING {TASK_COLUMNS}",
            B::Db::SKIP_LOCKED
        );
        let export = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(owner)
            .arg(until)
            .arg(now_ms)
            .fetch_optional(B::Db::conn(&mut tx))
            .await?;
        if let Some(row) = export {
            return leased_export(tx, &row).await.map(Some);
        }
        // Then the next chunk, fair share first.
        let chunk = sqlx::query(B::Db::CLAIM_CHUNK)
            .arg(owner)
            .arg(until)
            .arg(now_ms)
            .arg(FAIR_SHARE_GRACE)
            .fetch_optional(B::Db::conn(&mut tx))
            .await?;
        let Some(row) = chunk else {
            // A task with no chunks at all (every line blank is refused at upload, so this is
            // only a safety net) goes straight to export.
            sqlx::query(
                "UPDATE tasks SET status = 'processing', updated_at_ms = $1 \
                 WHERE status = 'pending' AND chunk_count = 0",
            )
            .arg(now_ms)
            .execute(B::Db::conn(&mut tx))
            .await?;
            tx.commit().await?;
            return Ok(None);
        };
        let task_id: String = row.col("task_id")?;
        leased_chunk(tx, &task_id, &row, now_ms).await.map(Some)
    }

    async fn claim_task_work(
        &self,
        task: &TaskId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Work>> {
        let mut tx = self.write().await?;
        let until = now_ms + lease_ms;
        let sql = format!(
            "UPDATE tasks SET lease_owner = $1, lease_until_ms = $2 \
             WHERE id = $4 AND {EXPORTABLE} RETURNING {TASK_COLUMNS}"
        );
        let export = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(owner)
            .arg(until)
            .arg(now_ms)
            .arg(task.as_str())
            .fetch_optional(B::Db::conn(&mut tx))
            .await?;
        if let Some(row) = export {
            return leased_export(tx, &row).await.map(Some);
        }
        let free = "(lease_until_ms IS NULL OR lease_until_ms < $3)";
        let sql = format!(
            "UPDATE chunks SET lease_owner = $1, lease_until_ms = $2 \
             WHERE task_id = $4 AND {undone} AND {free} AND seq = ( \
               SELECT seq FROM chunks WHERE task_id = $4 AND {undone} AND {free} \
               ORDER BY seq LIMIT 1{skip}) \
               AND EXISTS (SELECT 1 FROM tasks WHERE id = $4 \
                 AND status IN ('pending', 'processing')) \
             RETURNING task_id, seq, byte_start, byte_end, first_line, lines",
            undone = B::Db::UNDONE,
            skip = B::Db::SKIP_LOCKED,
        );
        let chunk = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(owner)
            .arg(until)
            .arg(now_ms)
            .arg(task.as_str())
            .fetch_optional(B::Db::conn(&mut tx))
            .await?;
        match chunk {
            Some(row) => leased_chunk(tx, task.as_str(), &row, now_ms)
                .await
                .map(Some),
            None => Ok(None),
        }
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
        let sql = format!(
            "UPDATE chunks SET done = TRUE, success = $1, failure = $2, lease_owner = NULL, \
               lease_until_ms = NULL \
             WHERE task_id = $3 AND seq = $4 AND {} AND lease_owner = $5 \
               AND EXISTS (SELECT 1 FROM tasks WHERE id = $3 \
                 AND status IN ('pending', 'processing')) \
             RETURNING progress_success, progress_failure",
            B::Db::UNDONE
        );
        let Some(done) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(success)
            .arg(failure)
            .arg(task.as_str())
            .arg(seq)
            .arg(owner)
            .fetch_optional(B::Db::conn(&mut tx))
            .await?
        else {
            return Ok(false);
        };
        // The chunk's final counts replace the progress it showed (never less: progress
        // counts a prefix of the same lines).
        let (shown_success, shown_failure): (i64, i64) =
            (done.col("progress_success")?, done.col("progress_failure")?);
        // (A task whose chunks were leased at creation is still `pending` at its first.)
        sqlx::query(
            "UPDATE tasks SET success = success + $1, failure = failure + $2, \
               progress_success = progress_success - $3, progress_failure = progress_failure - $4, \
               chunks_done = chunks_done + 1, updated_at_ms = $5, \
               status = CASE WHEN status = 'pending' THEN 'processing' ELSE status END \
             WHERE id = $6",
        )
        .arg(success)
        .arg(failure)
        .arg(shown_success)
        .arg(shown_failure)
        .arg(now_ms)
        .arg(task.as_str())
        .execute(B::Db::conn(&mut tx))
        .await?;
        // The last chunk makes the export claimable; any chunk frees a worker.
        self.announce_work(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn report_progress(
        &self,
        task: &TaskId,
        seq: i64,
        owner: &str,
        success: i64,
        failure: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT progress_success, progress_failure FROM chunks \
             WHERE task_id = $1 AND seq = $2 AND lease_owner = $3 AND {}{}",
            B::Db::UNDONE,
            B::Db::FOR_UPDATE
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(task.as_str())
            .arg(seq)
            .arg(owner)
            .fetch_optional(B::Db::conn(&mut tx))
            .await?
        else {
            return Ok(false);
        };
        let (was_success, was_failure): (i64, i64) =
            (row.col("progress_success")?, row.col("progress_failure")?);
        let (grew_success, grew_failure) = (
            (success - was_success).max(0),
            (failure - was_failure).max(0),
        );
        if grew_success == 0 && grew_failure == 0 {
            return Ok(true);
        }
        sqlx::query(
            "UPDATE chunks SET progress_success = progress_success + $1, \
               progress_failure = progress_failure + $2 WHERE task_id = $3 AND seq = $4",
        )
        .arg(grew_success)
        .arg(grew_failure)
        .arg(task.as_str())
        .arg(seq)
        .execute(B::Db::conn(&mut tx))
        .await?;
        sqlx::query(
            "UPDATE tasks SET progress_success = progress_success + $1, \
               progress_failure = progress_failure + $2 WHERE id = $3",
        )
        .arg(grew_success)
        .arg(grew_failure)
        .arg(task.as_str())
        .execute(B::Db::conn(&mut tx))
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
        let statement = match seq {
            Some(seq) => {
                let sql = format!(
                    "UPDATE chunks SET lease_until_ms = $1 \
                     WHERE task_id = $2 AND seq = $3 AND lease_owner = $4 AND {}",
                    B::Db::UNDONE
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .arg(until_ms)
                    .arg(task.as_str())
                    .arg(seq)
                    .arg(owner)
            }
            None => sqlx::query(
                "UPDATE tasks SET lease_until_ms = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND status = 'processing'",
            )
            .arg(until_ms)
            .arg(task.as_str())
            .arg(owner),
        };
        Ok(self.write_one(statement).await?.rows_affected() == 1)
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
            "UPDATE tasks SET status = 'exported', result_key = $1, charged = $2, reserved = 0, \
               updated_at_ms = $3, lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = $4 AND status = 'processing' AND lease_owner = $5 RETURNING user_id",
        )
        .arg(result_key)
        .arg(charge)
        .arg(now_ms)
        .arg(task.as_str())
        .arg(owner)
        .fetch_optional(B::Db::conn(&mut tx))
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let user_id: String = row.col("user_id")?;
        // A task without a single number costs nothing and leaves no ledger row.
        if charge > 0 {
            sqlx::query(
                "UPDATE users SET credits = credits - $1 WHERE id = $2 AND credits IS NOT NULL",
            )
            .arg(charge)
            .arg(user_id.as_str())
            .execute(B::Db::conn(&mut tx))
            .await?;
            sqlx::query(
                "INSERT INTO ledger (user_id, at_ms, amount, kind, task_id, note) \
                 VALUES ($1, $2, $3, 'charge', $4, 'unique numbers checked')",
            )
            .arg(user_id.as_str())
            .arg(now_ms)
            .arg(-charge)
            .arg(task.as_str())
            .execute(B::Db::conn(&mut tx))
            .await?;
        }
        queue_callback_in(&mut tx, task.as_str(), now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn fail_task(&self, task: &TaskId, message: &str, now_ms: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE tasks SET status = 'failed', message = $1, reserved = 0, updated_at_ms = $2, \
               lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = $3 AND status IN ('pending', 'processing')",
        )
        .arg(message)
        .arg(now_ms)
        .arg(task.as_str())
        .execute(B::Db::conn(&mut tx))
        .await?;
        queue_callback_in(&mut tx, task.as_str(), now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_leases(&self, owner: Option<&str>) -> Result<u64> {
        let mut tx = self.write().await?;
        let mut released = 0;
        for table in ["chunks", "tasks"] {
            let sql = format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until_ms = NULL \
                 WHERE lease_owner IS NOT NULL AND ($1 IS NULL OR lease_owner = $1)"
            );
            released += sqlx::query(sqlx::AssertSqlSafe(sql))
                .arg(owner)
                .execute(B::Db::conn(&mut tx))
                .await?
                .rows_affected();
        }
        if released > 0 {
            self.announce_work(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    async fn work_signals(&self) -> Result<Option<WorkSignals>> {
        Backend::work_signals(self).await
    }
}

/// A task whose export may be leased now (`$3`: the time): every chunk done, no live lease.
const EXPORTABLE: &str = "status = 'processing' AND chunks_done = chunk_count \
    AND (lease_until_ms IS NULL OR lease_until_ms < $3)";

/// A task row just leased for its export, as work; `tx` commits.
async fn leased_export<D: Dialect>(tx: Transaction<'static, D>, row: &D::Row) -> Result<Work> {
    let task = task_from_row(row)?;
    tx.commit().await?;
    Ok(Work::Export { task })
}

/// A chunk row just leased (`seq`, `byte_start`, `byte_end`, `first_line`, `lines`) as work:
/// its task becomes `processing`, and `tx` commits.
async fn leased_chunk<D: Dialect>(
    mut tx: Transaction<'static, D>,
    task_id: &str,
    row: &D::Row,
    now_ms: i64,
) -> Result<Work> {
    let seq: i64 = row.col("seq")?;
    let spec = ChunkSpec {
        byte_start: row.col("byte_start")?,
        byte_end: row.col("byte_end")?,
        first_line: row.col("first_line")?,
        lines: row.col("lines")?,
    };
    sqlx::query(
        "UPDATE tasks SET status = 'processing', updated_at_ms = $1 \
         WHERE id = $2 AND status = 'pending'",
    )
    .arg(now_ms)
    .arg(task_id)
    .execute(D::conn(&mut tx))
    .await?;
    let task = task_in(&mut tx, task_id).await?;
    tx.commit().await?;
    Ok(Work::Chunk { task, seq, spec })
}

/// The task `id`, read inside `tx`.
pub(crate) async fn task_in<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    id: &str,
) -> Result<Task> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .arg(id)
        .fetch_one(D::conn(tx))
        .await?;
    task_from_row(&row)
}

/// The user's task, read inside `tx` and locked until it ends (where the dialect locks
/// rows); `NotFound` for another user's task.
async fn users_task_in<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    user: &UserId,
    task: &TaskId,
) -> Result<Task> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2{}",
        D::FOR_UPDATE
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .arg(task.as_str())
        .arg(user.as_str())
        .fetch_optional(D::conn(tx))
        .await?
        .ok_or(StoreError::NotFound)?;
    task_from_row(&row)
}

/// Queues the task's completion notice, when it asked for one (once: a notice already queued
/// stays as it is).
async fn queue_callback_in<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    task: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO callbacks (task_id, next_at_ms) \
         SELECT id, $1 FROM tasks WHERE id = $2 AND callback_url IS NOT NULL \
         ON CONFLICT (task_id) DO NOTHING",
    )
    .arg(now_ms)
    .arg(task)
    .execute(D::conn(tx))
    .await?;
    Ok(())
}
