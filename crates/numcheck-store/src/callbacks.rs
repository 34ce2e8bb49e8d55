//! Completion callbacks: the notices POSTed to a task's callback URL when it ends, leased to
//! one sender at a time, and the per-user secret that signs them.

use async_trait::async_trait;
use numcheck_core::{TaskId, UserId};

use crate::backend::Backend;
use crate::dialect::{Dialect, QueryExt, RowExt, RowsAffected};
use crate::rows::callback_state_from_row;
use crate::tasks::task_in;
use crate::{Callback, CallbackOutcome, CallbackState, Result, StoreError};

/// The queue of completion notices and the secrets that sign them.
#[async_trait]
pub trait Callbacks: Send + Sync {
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
}

#[async_trait]
impl<B: Backend> Callbacks for B {
    async fn claim_callback(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Callback>> {
        let mut tx = self.write().await?;
        let sql = format!(
            "UPDATE callbacks SET lease_owner = $1, lease_until_ms = $2 WHERE task_id = ( \
               SELECT task_id FROM callbacks WHERE state = 'pending' AND next_at_ms <= $3 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
               ORDER BY next_at_ms LIMIT 1{}) \
             RETURNING task_id, attempts",
            B::Db::SKIP_LOCKED
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(owner)
            .arg(now_ms + lease_ms)
            .arg(now_ms)
            .fetch_optional(B::Db::conn(&mut tx))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.col("task_id")?;
        let attempts: i64 = row.col("attempts")?;
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
        let statement = sqlx::query(
            "UPDATE callbacks SET state = $1, attempts = attempts + 1, next_at_ms = $2, \
               last_status = $3, last_error = $4, delivered_at_ms = $5, lease_owner = NULL, \
               lease_until_ms = NULL \
             WHERE task_id = $6 AND lease_owner = $7 AND state = 'pending'",
        )
        .arg(state)
        .arg(next_at)
        .arg(status)
        .arg(error)
        .arg(delivered)
        .arg(task.as_str())
        .arg(owner);
        Ok(self.write_one(statement).await?.rows_affected() == 1)
    }

    async fn callback_state(&self, task: &TaskId) -> Result<Option<CallbackState>> {
        let row = sqlx::query(
            "SELECT state, attempts, next_at_ms, last_status, last_error, delivered_at_ms \
             FROM callbacks WHERE task_id = $1",
        )
        .arg(task.as_str())
        .fetch_optional(B::Db::pool(self.reads()))
        .await?;
        row.as_ref().map(callback_state_from_row).transpose()
    }

    async fn callback_secret(
        &self,
        user: &UserId,
        candidate: &str,
        replace: bool,
    ) -> Result<String> {
        let statement = sqlx::query(
            "UPDATE users SET callback_secret = CASE WHEN $1 OR callback_secret IS NULL \
               THEN $2 ELSE callback_secret END WHERE id = $3 RETURNING callback_secret",
        )
        .arg(replace)
        .arg(candidate)
        .arg(user.as_str());
        let row = self
            .write_one_returning(statement)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.col("callback_secret")?)
    }
}
