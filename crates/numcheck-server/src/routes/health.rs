//! `GET /healthz` (liveness) and `GET /readyz` (readiness), for probes; no API key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(value_type = String, pattern = "^ok$", example = "ok")]
    status: &'static str,
}

/// The readiness answer, the same shape with 200 and 503.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready` (200) or `unavailable` (503).
    #[schema(value_type = String, pattern = "^(ready|unavailable)$", example = "ready")]
    status: &'static str,
    /// `ok` or `error`.
    #[schema(value_type = String, pattern = "^(ok|error)$", example = "ok")]
    database: &'static str,
    /// `ready` once the in-memory filter of numbers with evidence is built, `building` until
    /// then (lookups are slower meanwhile, never wrong).
    #[schema(value_type = String, pattern = "^(ready|building)$", example = "ready")]
    evidence_filter: &'static str,
}

/// Liveness: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers HTTP.", body = Health)),
    security(()),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers: send traffic here.", body = Readiness),
        (status = 503, description = "The database does not answer: `status` is `unavailable`.", body = Readiness),
    ),
    security(()),
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let evidence_filter = if state.presence_filter_builds() > 0 {
        "ready"
    } else {
        "building"
    };
    match state.engine.store.count_keys().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                database: "ok",
                evidence_filter,
            }),
        ),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "unavailable",
                    database: "error",
                    evidence_filter,
                }),
            )
        }
    }
}
