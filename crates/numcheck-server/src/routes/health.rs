use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// Liveness: the process answers HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers. `evidence_filter` tells whether the in-memory filter of
/// numbers with evidence is built yet (until it is, lookups are slower, never wrong).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let filter = if state.store.presence_filter_builds() > 0 {
        "ready"
    } else {
        "building"
    };
    match state.store.count_keys().await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok", "evidence_filter": filter})),
        ),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "unavailable", "database": "error", "evidence_filter": filter}),
                ),
            )
        }
    }
}
