//! Live lookups: each task's budget of lookups, and which numbers each provider was asked
//! when (so a number is not asked again while its answer is fresh).

use std::collections::HashSet;

use async_trait::async_trait;
use numcheck_core::{E164, TaskId};

use crate::backend::Backend;
use crate::dialect::{Dialect, QueryExt, RowExt};
use crate::{Result, StoreError};

/// Lookup budgets and the log of lookups made.
#[async_trait]
pub trait LookupLog: Send + Sync {
    /// Takes up to `want` lookups from the task's budget of `max`, atomically; returns how
    /// many were granted.
    async fn reserve_lookups(&self, task: &TaskId, want: i64, max: i64) -> Result<i64>;
    /// Which of `numbers` `provider` was asked at or after `since_ms`.
    async fn looked_up_since(
        &self,
        provider: &str,
        numbers: &[E164],
        since_ms: i64,
    ) -> Result<HashSet<E164>>;
    /// Records lookups: (number, raw status or empty) asked of `provider` at `at_ms`.
    async fn record_lookups(
        &self,
        provider: &str,
        at_ms: i64,
        rows: &[(E164, String)],
    ) -> Result<()>;
}

#[async_trait]
impl<B: Backend> LookupLog for B {
    async fn reserve_lookups(&self, task: &TaskId, want: i64, max: i64) -> Result<i64> {
        if want <= 0 {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT lookups_made FROM tasks WHERE id = $1{}",
            B::Db::FOR_UPDATE
        );
        let made: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(task.as_str())
            .fetch_optional(B::Db::conn(&mut tx))
            .await?
            .ok_or(StoreError::NotFound)?
            .col("lookups_made")?;
        let granted = want.min((max - made).max(0));
        if granted > 0 {
            sqlx::query("UPDATE tasks SET lookups_made = lookups_made + $1 WHERE id = $2")
                .arg(granted)
                .arg(task.as_str())
                .execute(B::Db::conn(&mut tx))
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
        let mut found = HashSet::new();
        for part in numbers.chunks(B::Db::NUMBERS_PER_QUERY) {
            let keys: Vec<i64> = part.iter().map(|n| n.as_u64() as i64).collect();
            let sql = format!(
                "SELECT number FROM lookup_cache \
                 WHERE provider = $1 AND looked_up_at_ms >= $2 AND number {}",
                B::Db::numbers_in(3, keys.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .arg(provider)
                .arg(since_ms);
            for row in B::Db::bind_numbers(query, &keys)
                .fetch_all(B::Db::pool(self.reads()))
                .await?
            {
                let raw: i64 = row.col("number")?;
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
        self.upsert_lookups(provider, at_ms, rows).await
    }
}
