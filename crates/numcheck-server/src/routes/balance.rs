//! `GET /v1/balance`: the caller's credits, what running tasks hold, usage, and the latest
//! ledger rows. `GET /v1/callback-secret` and `POST /v1/callback-secret/rotate`: the secret
//! completion notices are signed with.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use numcheck_engine::clock::rfc3339_ms;

/// Ledger rows shown with the balance.
const RECENT_LEDGER: i64 = 20;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Balance {
    user_id: String,
    name: String,
    unlimited: bool,
    /// Credits on the account (`null` when unlimited).
    #[schema(required = true)]
    balance: Option<i64>,
    /// Credits held by running tasks until they end.
    held: i64,
    /// What a new task may use: balance less held (`null` when unlimited).
    #[schema(required = true)]
    available: Option<i64>,
    usage: UsageView,
    /// The latest ledger rows, newest first.
    ledger: Vec<LedgerView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UsageView {
    #[schema(minimum = 0)]
    tasks: i64,
    #[schema(minimum = 0)]
    numbers_checked: i64,
    credits_charged: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LedgerView {
    /// RFC 3339, UTC, millisecond precision.
    #[schema(format = DateTime)]
    at: String,
    /// Credits added (positive) or charged (negative).
    amount: i64,
    /// What the row records (a grant, a task's charge, …).
    kind: String,
    #[schema(required = true)]
    task_id: Option<String>,
    #[schema(required = true)]
    note: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/balance",
    operation_id = "get_balance",
    tag = "account",
    summary = "Credits, usage and the latest ledger rows",
    responses(
        (status = 200, description = "The caller's account.", body = Balance),
    ),
)]

pub async fn balance(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Balance>, ApiError> {
    let user = state
        .engine
        .store
        .user(&who.user.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a key's user is gone")))?;
    let usage = state.engine.store.usage(&user.id).await?;
    let ledger = state
        .engine
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Secret {
    /// `whsec_` and 32 random bytes, base64url.
    #[schema(pattern = "^whsec_[A-Za-z0-9_-]+$")]
    secret: String,
    /// How receivers check a notice: the header that carries the signature,
    #[schema(example = "X-Numcheck-Signature")]
    header: &'static str,
    /// and what it holds.
    scheme: &'static str,
}

/// The user's secret, made on first use; `rotate` replaces it.
async fn user_secret(
    state: &AppState,
    who: &AuthUser,
    rotate: bool,
) -> Result<Json<Secret>, ApiError> {
    let candidate = crate::callback::new_secret()?;
    let secret = state
        .engine
        .store
        .callback_secret(&who.0.user.id, &candidate, rotate)
        .await?;
    Ok(Json(Secret {
        secret,
        header: "X-Numcheck-Signature",
        scheme: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>",
    }))
}

/// `GET /v1/callback-secret`: made on first use.
#[utoipa::path(
    get,
    path = "/v1/callback-secret",
    operation_id = "get_callback_secret",
    tag = "account",
    summary = "The secret completion notices are signed with",
    description = "Made on first use; the same until rotated.",
    responses(
        (status = 200, description = "The secret.", body = Secret),
    ),
)]
pub async fn callback_secret(
    State(state): State<AppState>,
    who: AuthUser,
) -> Result<Json<Secret>, ApiError> {
    user_secret(&state, &who, false).await
}

/// `POST /v1/callback-secret/rotate`: a new secret; notices sent from now on use it.
#[utoipa::path(
    post,
    path = "/v1/callback-secret/rotate",
    operation_id = "rotate_callback_secret",
    tag = "account",
    summary = "Rotate the completion-notice secret",
    description = "A new secret; notices sent from now on are signed with it.",
    responses(
        (status = 200, description = "The new secret.", body = Secret),
    ),
)]
pub async fn rotate_callback_secret(
    State(state): State<AppState>,
    who: AuthUser,
) -> Result<Json<Secret>, ApiError> {
    let secret = user_secret(&state, &who, true).await?;
    tracing::info!(user = %who.0.user.name, "callback secret rotated");
    Ok(secret)
}
