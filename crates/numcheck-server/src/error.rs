//! The one error shape of the API.
//!
//! Every non-200 answer is `{"error":"<code>","message":"<text>"}`. Codes are stable: clients
//! match on them. Client errors say what is wrong and how to fix it; server errors are logged
//! with their cause and shown only as a generic message, never a stack trace or a path.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("not enough credits: the task needs {needed}, the balance allows {available}")]
    InsufficientCredits { needed: i64, available: i64 },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the upload is larger than the limit{}", limit.map(|l| format!(" of {l} bytes")).unwrap_or_default())]
    TooLarge { limit: Option<u64> },
    #[error("{message}")]
    RateLimited {
        code: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    Stalled(String),
    #[error("the upload holds more than {limit} lines (rows); split it into several tasks")]
    TooManyLines { limit: u64 },
    /// 413 with its own code (`workbook_too_large`).
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: String },
    #[error("the server is shutting down; retry shortly")]
    ShuttingDown,
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// The body of every non-200 answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "task_not_found", "message": "no task with this task_id for this API key"}))]
pub(crate) struct ErrorBody<'a> {
    /// The stable machine code: clients match on it (`task_not_found`, `invalid_api_key`, …).
    #[schema(pattern = "^[a-z][a-z0-9_]*$")]
    error: &'a str,
    /// What is wrong and how to fix it, for people; never a stack trace.
    message: &'a str,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn task_not_found() -> Self {
        ApiError::NotFound {
            code: "task_not_found",
            message: "no task with this task_id for this API key".into(),
        }
    }

    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::InsufficientCredits { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient_credits")
            }
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
            ApiError::RateLimited { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Stalled(_) => (StatusCode::REQUEST_TIMEOUT, "upload_stalled"),
            ApiError::TooManyLines { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_lines"),
            ApiError::PayloadTooLarge { code, .. } => (StatusCode::PAYLOAD_TOO_LARGE, code),
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                "the server failed to handle this request; retry later".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                message: &message,
            }),
        )
            .into_response();
        if matches!(self, ApiError::ShuttingDown) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let ApiError::RateLimited { retry_after, .. } = &self {
            // Whole seconds, rounded up: a client waiting this long will be let through.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Outer layer: an answer the framework made itself (an extractor's rejection, such as a path
/// segment that is not UTF-8 or a body over a route's limit) is plain text; it gets the one
/// JSON error body too, with a code for its status and the framework's text as the message.
pub async fn json_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "file_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    };
    let message = if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error = %text, "request failed");
        "the server failed to handle this request; retry later".to_owned()
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody {
        error: code,
        message: &message,
    })
    .unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// 429 `too_many_tasks`: the user has `cap` tasks pending or processing.
pub(crate) fn too_many_tasks(cap: i64) -> ApiError {
    ApiError::RateLimited {
        code: "too_many_tasks",
        message: format!(
            "this user already has {cap} tasks pending or processing; wait for one to end"
        ),
        retry_after: std::time::Duration::from_secs(10),
    }
}

impl From<numcheck_store::StoreError> for ApiError {
    fn from(e: numcheck_store::StoreError) -> Self {
        match e {
            numcheck_store::StoreError::InsufficientCredits { needed, available } => {
                ApiError::InsufficientCredits { needed, available }
            }
            numcheck_store::StoreError::TooManyOpenTasks { cap } => too_many_tasks(cap),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<numcheck_engine::EngineError> for ApiError {
    fn from(e: numcheck_engine::EngineError) -> Self {
        use numcheck_engine::EngineError;
        match e {
            EngineError::Invalid { code, message } => ApiError::BadRequest { code, message },
            EngineError::TooLarge { limit } => ApiError::TooLarge { limit: Some(limit) },
            EngineError::TooManyLines { limit } => ApiError::TooManyLines { limit },
            EngineError::TooLargeWith { code, message } => {
                ApiError::PayloadTooLarge { code, message }
            }
            EngineError::TaskNotFound => ApiError::task_not_found(),
            EngineError::TaskEnded(message) => ApiError::Conflict {
                code: "task_finished",
                message,
            },
            EngineError::Store(e) => e.into(),
            EngineError::Blob(e) => e.into(),
            EngineError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<numcheck_blob::BlobError> for ApiError {
    fn from(e: numcheck_blob::BlobError) -> Self {
        ApiError::Internal(e.into())
    }
}
