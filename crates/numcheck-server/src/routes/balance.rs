//! `GET /v1/balance`: the caller's credits, what running tasks hold, usage, and the latest
//! ledger rows. `GET /v1/callback-secret` and `POST /v1/callback-secret/rotate`: the secret
//! completion notices are signed with.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::auth::AuthUser;
use crate::clock::rfc3339_ms;
use crate::error::ApiError;
use crate::state::AppState;

/// Ledger rows shown with the balance.
const RECENT_LEDGER: i64 = 20;

#[derive(Debug, Serialize)]
pub(crate) struct Balance {
    user_id: String,
    name: String,
    unlimited: bool,
    /// Credits on the account (`null` when unlimited).
    balance: Option<i64>,
    /// Credits held by running tasks until they end.
    held: i64,
    /// What a new task may use: balance less held (`null` when unlimited).
    available: Option<i64>,
    usage: UsageView,
    /// The latest ledger rows, newest first.
    ledger: Vec<LedgerView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct UsageView {
    tasks: i64,
    numbers_checked: i64,
    credits_charged: i64,
}

#[derive(Debug, Serialize)]
pub(crate) struct LedgerView {
    at: String,
    amount: i64,
    kind: String,
    task_id: Option<String>,
    note: Option<String>,
}

pub async fn balance(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Balance>, ApiError> {
    let user = state
        .store
        .user(&who.user.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a key's user is gone")))?;
    let usage = state.store.usage(&user.id).await?;
    let ledger = state
        .store
        .ledger_recent(&user.id, RECENT_LEDGER)
        .await?
        .into_iter()
        .map(|r| LedgerView {
            at: rfc3339_ms(r.at_ms),
            amount: r.amount,
            kind: r.kind,
            task_id: r.task_id,
            note: r.note,
        })
        .collect();
    Ok(Json(Balance {
        user_id: user.id.to_string(),
        name: user.name,
        unlimited: user.credits.is_none(),
        balance: user.credits,
        held: usage.held,
        available: user.credits.map(|c| c - usage.held),
        usage: UsageView {
            tasks: usage.tasks,
            numbers_checked: usage.numbers_checked,
            credits_charged: usage.credits_charged,
        },
        ledger,
    }))
}

#[derive(Debug, Serialize)]
pub(crate) struct Secret {
    secret: String,
    /// How receivers check a notice.
    header: &'static str,
    scheme: &'static str,
}

fn secret_body(secret: String) -> Json<Secret> {
    Json(Secret {
        secret,
        header: "X-Numcheck-Signature",
        scheme: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>",
    })
}

/// `GET /v1/callback-secret`: made on first use.
pub async fn callback_secret(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Secret>, ApiError> {
    let candidate = crate::callback::new_secret()?;
    let secret = state
        .store
        .callback_secret(&who.user.id, &candidate, false)
        .await?;
    Ok(secret_body(secret))
}

/// `POST /v1/callback-secret/rotate`: a new secret; notices sent from now on use it.
pub async fn rotate_callback_secret(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Secret>, ApiError> {
    let candidate = crate::callback::new_secret()?;
    let secret = state
        .store
        .callback_secret(&who.user.id, &candidate, true)
        .await?;
    tracing::info!(user = %who.user.name, "callback secret rotated");
    Ok(secret_body(secret))
}
