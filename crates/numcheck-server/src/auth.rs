//! The `X-API-Key` check: every `/v1` call (but result downloads, which carry a signed link)
//! names a live key; a missing, unknown or revoked key is refused with 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use numcheck_store::Principal;

use crate::error::ApiError;
use crate::state::AppState;
use numcheck_engine::keys;

/// The user behind the request's API key, with the key's rights.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
                Ok(AuthUser(principal))
            }
            None => Err(ApiError::Unauthorized {
                code: "invalid_api_key",
                message: "the API key is unknown or revoked".into(),
            }),
        }
    }
}
