//! The `X-API-Key` check: every `/v1` call (but result downloads, which carry a signed link)
//! names a live key; a missing, unknown or revoked key is refused with 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use numcheck_store::Principal;

use crate::error::ApiError;
use crate::state::AppState;
use numcheck_engine::keys;

/// The user behind the request's API key, for every call about tasks, credits and results.
/// A key that may only post evidence is refused with 403 `check_not_allowed`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

/// The user behind a key that may post evidence (`POST /v1/evidence`); any other key is
/// refused with 403 `ingest_not_allowed`.
#[derive(Debug, Clone)]
pub struct IngestUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if !principal.rights.check {
            return Err(ApiError::Forbidden {
                code: "check_not_allowed",
                message: "this API key may only post evidence; an operator can issue one for \
                          checks with `numcheck keys create`"
                    .into(),
            });
        }
        Ok(AuthUser(principal))
    }
}

impl FromRequestParts<AppState> for IngestUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if !principal.rights.ingest {
            return Err(ApiError::Forbidden {
                code: "ingest_not_allowed",
                message: "this API key may not post evidence; an operator can issue one with \
                          `numcheck keys create --ingest`"
                    .into(),
            });
        }
        Ok(IngestUser(principal))
    }
}

/// The live key the request names, and its user.
async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let value = parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or_else(|| {
            parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
        })
        .ok_or_else(|| ApiError::Unauthorized {
            code: "missing_api_key",
            message: "send your API key in the X-API-Key header".into(),
        })?;
    let hash = keys::hash(value);
    state.rate_limits.precheck(&hash)?;
    match state.engine.store.principal_for_key_hash(&hash).await? {
        Some(principal) => {
            state.rate_limits.check(&hash)?;
            Ok(principal)
        }
        None => Err(ApiError::Unauthorized {
            code: "invalid_api_key",
            message: "the API key is unknown or revoked".into(),
        }),
    }
}
