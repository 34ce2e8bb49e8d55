//! Users, API keys, credits and the ledger.

use async_trait::async_trait;
use numcheck_core::UserId;
use sqlx::Transaction;

use crate::backend::Backend;
use crate::dialect::{Dialect, QueryExt, RowExt, RowsAffected};
use crate::rows::{KEY_COLUMNS, LEDGER_COLUMNS, key_from_row, ledger_from_row, user_from_row};
use crate::{KeyInfo, KeyRights, LedgerRow, Principal, Result, StoreError, User};

/// Users, their API keys, their credits and the ledger of credit movements.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates a user; `credits: None` makes it unlimited. A limited user's opening balance
    /// is written to the ledger as a grant.
    async fn create_user(
        &self,
        id: UserId,
        name: &str,
        credits: Option<i64>,
        is_admin: bool,
        now_ms: i64,
    ) -> Result<User>;
    async fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    async fn user(&self, id: &UserId) -> Result<Option<User>>;
    /// Adds credits to a limited user (a ledger grant). Fails with `Conflict` on an unlimited
    /// user, who has nothing to add to.
    async fn grant_credits(
        &self,
        user: &UserId,
        amount: i64,
        note: &str,
        now_ms: i64,
    ) -> Result<()>;
    async fn add_key(
        &self,
        user: &UserId,
        prefix: &str,
        hash: &[u8],
        rights: KeyRights,
        now_ms: i64,
    ) -> Result<KeyInfo>;
    async fn list_keys(&self) -> Result<Vec<KeyInfo>>;
    /// Revokes the key with this id or prefix; the number of keys revoked.
    async fn revoke_key(&self, id_or_prefix: &str, now_ms: i64) -> Result<u64>;
    /// The user owning a live (unrevoked) key with this hash, and the key's rights.
    async fn principal_for_key_hash(&self, hash: &[u8]) -> Result<Option<Principal>>;
    async fn count_keys(&self) -> Result<i64>;
    /// Credits a limited user can still commit: balance less what running tasks hold.
    async fn available_credits(&self, user: &UserId) -> Result<Option<i64>>;
    async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerRow>>;
    /// The user's latest ledger rows, newest first.
    async fn ledger_recent(&self, user: &UserId, limit: i64) -> Result<Vec<LedgerRow>>;
}

#[async_trait]
impl<B: Backend> Accounts for B {
    async fn create_user(
        &self,
        id: UserId,
        name: &str,
        credits: Option<i64>,
        is_admin: bool,
        now_ms: i64,
    ) -> Result<User> {
        let conflict = || StoreError::Conflict(format!("user {name:?} already exists"));
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1")
            .arg(name)
            .fetch_optional(B::Db::conn(&mut tx))
            .await?;
        if exists.is_some() {
            return Err(conflict());
        }
        // A concurrent create of the same name (on PostgreSQL) loses on the unique index.
        let inserted = sqlx::query(
            "INSERT INTO users (id, name, credits, is_admin, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(id.as_str())
        .arg(name)
        .arg(credits)
        .arg(is_admin)
        .arg(now_ms)
        .execute(B::Db::conn(&mut tx))
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(conflict()),
            other => other?,
        };
        if let Some(c) = credits {
            sqlx::query(
                "INSERT INTO ledger (user_id, at_ms, amount, kind, note) \
                 VALUES ($1, $2, $3, 'grant', 'opening balance')",
            )
            .arg(id.as_str())
            .arg(now_ms)
            .arg(c)
            .execute(B::Db::conn(&mut tx))
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
            .arg(name)
            .fetch_optional(B::Db::pool(self.pool()))
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .arg(id.as_str())
            .fetch_optional(B::Db::pool(self.pool()))
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
            "UPDATE users SET credits = credits + $1 WHERE id = $2 AND credits IS NOT NULL",
        )
        .arg(amount)
        .arg(user.as_str())
        .execute(B::Db::conn(&mut tx))
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "the user is unlimited; there is no balance to add to".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO ledger (user_id, at_ms, amount, kind, note) \
             VALUES ($1, $2, $3, 'grant', $4)",
        )
        .arg(user.as_str())
        .arg(now_ms)
        .arg(amount)
        .arg(note)
        .execute(B::Db::conn(&mut tx))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_key(
        &self,
        user: &UserId,
        prefix: &str,
        hash: &[u8],
        rights: KeyRights,
        now_ms: i64,
    ) -> Result<KeyInfo> {
        let row = self
            .write_one_returning(
                sqlx::query(
                    "INSERT INTO api_keys (user_id, prefix, hash, can_check, can_ingest, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     RETURNING id, (SELECT u.name FROM users u WHERE u.id = api_keys.user_id) AS name, \
                       (SELECT u.credits FROM users u WHERE u.id = api_keys.user_id) AS credits, \
                       prefix, can_check, can_ingest, created_at_ms, revoked_at_ms",
                )
                .arg(user.as_str())
                .arg(prefix)
                .arg(hash)
                .arg(rights.check)
                .arg(rights.ingest)
                .arg(now_ms),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("a new key returned no row".into()))?;
        key_from_row(&row)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY k.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(B::Db::pool(self.pool()))
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id_or_prefix: &str, now_ms: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let id: Option<i64> = id_or_prefix.parse().ok();
        let sql = format!(
            "SELECT id FROM api_keys WHERE revoked_at_ms IS NULL AND (id = $1 OR prefix = $2){}",
            B::Db::FOR_UPDATE
        );
        let matching: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(id)
            .arg(id_or_prefix)
            .fetch_all(B::Db::conn(&mut tx))
            .await?
            .iter()
            .map(|r| r.col("id"))
            .collect::<Result<_, _>>()?;
        if matching.len() > 1 {
            return Err(StoreError::Conflict(format!(
                "{id_or_prefix:?} matches {} keys; revoke by id",
                matching.len()
            )));
        }
        let Some(&id) = matching.first() else {
            return Ok(0);
        };
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
        .arg(now_ms)
        .arg(id)
        .execute(B::Db::conn(&mut tx))
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn principal_for_key_hash(&self, hash: &[u8]) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT u.*, k.can_check AS can_check, k.can_ingest AS can_ingest FROM api_keys k \
             JOIN users u ON u.id = k.user_id WHERE k.hash = $1 AND k.revoked_at_ms IS NULL",
        )
        .arg(hash)
        .fetch_optional(B::Db::pool(self.reads()))
        .await?;
        row.as_ref()
            .map(|r| {
                Ok(Principal {
                    user: user_from_row(r)?,
                    rights: KeyRights {
                        check: r.col("can_check")?,
                        ingest: r.col("can_ingest")?,
                    },
                })
            })
            .transpose()
    }

    async fn count_keys(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(B::Db::pool(self.pool()))
            .await?
            .col("n")?)
    }

    async fn available_credits(&self, user: &UserId) -> Result<Option<i64>> {
        let mut tx = self.pool().begin().await?;
        let available = available_in(&mut tx, user).await?;
        tx.commit().await?;
        Ok(available)
    }

    async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerRow>> {
        let sql = format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE user_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(user.as_str())
            .fetch_all(B::Db::pool(self.pool()))
            .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn ledger_recent(&self, user: &UserId, limit: i64) -> Result<Vec<LedgerRow>> {
        let sql = format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .arg(user.as_str())
            .arg(limit)
            .fetch_all(B::Db::pool(self.reads()))
            .await?;
        rows.iter().map(ledger_from_row).collect()
    }
}

/// What a limited user can still commit, inside `tx`; `None` for an unlimited user.
pub(crate) async fn available_in<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    user: &UserId,
) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT u.credits AS credits, \
           (SELECT CAST(COALESCE(SUM(t.reserved), 0) AS BIGINT) FROM tasks t \
             WHERE t.user_id = u.id AND t.status IN ('pending', 'processing')) AS held \
         FROM users u WHERE u.id = $1",
    )
    .arg(user.as_str())
    .fetch_optional(D::conn(tx))
    .await?
    .ok_or(StoreError::NotFound)?;
    let credits: Option<i64> = row.col("credits")?;
    let held: i64 = row.col("held")?;
    Ok(credits.map(|c| c - held))
}
