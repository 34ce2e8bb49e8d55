use axum::Json;
use serde_json::{Value, json};

/// Liveness: the process answers HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
