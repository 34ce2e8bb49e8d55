//! `POST /v1/gettasks`: poll a task. `task_id` comes as multipart (what `curl --form` sends),
//! urlencoded, JSON, or in the query string.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, header};
use numcheck_core::{TaskId, TaskStatus};
use numcheck_store::Task;
use serde::Serialize;

use crate::auth::AuthUser;
use crate::clock::{now_ms, rfc3339_ms};
use crate::error::ApiError;
use crate::state::AppState;

/// The poll answer, keys in the contract's order. `result_url` is absent until exported;
/// `message` (ours) appears only on failed tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TaskView {
    /// RFC 3339, UTC, millisecond precision.
    #[schema(format = DateTime, example = "2025-11-21T08:27:09.933Z")]
    created_at: String,
    #[schema(format = DateTime, example = "2025-11-21T08:27:10.241Z")]
    updated_at: String,
    #[schema(pattern = "^[0-9a-v]{20}$", example = "d4g24nep2jvh04o9uoh0")]
    task_id: String,
    #[schema(example = "wfi7wGPS4B4PdtTMox5Y")]
    user_id: String,
    #[schema(value_type = crate::routes::openapi::TaskState)]
    status: &'static str,
    /// Non-blank lines of the upload.
    #[schema(minimum = 0)]
    total: i64,
    /// Rows checked so far.
    #[schema(minimum = 0)]
    success: i64,
    /// Rows that could not be read as a phone number.
    #[schema(minimum = 0)]
    failure: i64,
    /// Present once `exported`: an absolute, expiring link to the zip, fresh on every poll.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri", nullable = false)]
    result_url: Option<String>,
    /// Present on `failed` tasks: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    message: Option<String>,
    /// Ours, only on tasks that asked for live lookups: lookups made so far and the budget
    /// (`summary.json` in the result has the full account).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    lookups: Option<LookupsView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LookupsView {
    /// Live lookups made so far.
    #[schema(minimum = 0)]
    made: i64,
    /// The task's budget.
    max: u64,
}

#[utoipa::path(
    post,
    path = "/v1/gettasks",
    operation_id = "poll_task",
    tag = "tasks",
    summary = "Poll a task",
    description = "`task_id` as a multipart form field (what `curl --form` sends), urlencoded \
        or as JSON. (It may also come in the query string, `?task_id=…`, which then wins and \
        the body is not read.) Keys come in the order of the original service; `result_url` \
        is absent until the task is exported.",
    request_body(content(
        (crate::routes::openapi::PollRequest = "multipart/form-data"),
        (crate::routes::openapi::PollRequest = "application/x-www-form-urlencoded"),
        (crate::routes::openapi::PollRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The task.", body = TaskView),
        (status = 400, description = "`missing_task_id`: no `task_id`; `invalid_json`: an unreadable JSON body; \
            `invalid_multipart`: a broken multipart body; `invalid_request`: an unreadable body.",
            body = crate::error::ErrorBody),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 429, description = crate::routes::openapi::E429, body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 404, description = crate::routes::openapi::E404_TASK, body = crate::error::ErrorBody),
        (status = 413, description = "`file_too_large`: a multipart body over the 64 KiB limit.", body = crate::error::ErrorBody),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]

pub async fn get_task(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    request: Request,
) -> Result<Json<TaskView>, ApiError> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let raw = task_id_from(request, &state).await?;
    let id: TaskId = raw.parse().map_err(|_| ApiError::task_not_found())?;
    let task = state
        .store
        .task(&id)
        .await?
        .filter(|t| t.user_id == who.user.id)
        .ok_or_else(ApiError::task_not_found)?;
    Ok(Json(task_view(&state, &task, host.as_deref()).await?))
}

/// A task as clients see it, with a fresh result link once exported.
pub(crate) async fn task_view(
    state: &AppState,
    task: &Task,
    host: Option<&str>,
) -> Result<TaskView, ApiError> {
    // A shared bucket signs its own links (presigned URLs); the folder's blobs are served
    // here behind links this server signs.
    let presigned = match (&task.result_key, task.status) {
        (Some(key), TaskStatus::Exported) if state.blobs.is_remote() => state
            .blobs
            .presigned_get(
                key,
                std::time::Duration::from_secs(state.config.result_link_ttl_secs),
            )
            .await
            .map_err(|e| ApiError::Internal(e.into()))?,
        _ => None,
    };
    let mut v = view(state, task, host);
    if presigned.is_some() {
        v.result_url = presigned;
    }
    Ok(v)
}

fn view(state: &AppState, task: &Task, host: Option<&str>) -> TaskView {
    let result_url =
        (task.status == TaskStatus::Exported && task.result_key.is_some()).then(|| {
            let expires = now_ms() / 1000 + state.config.result_link_ttl_secs as i64;
            let base = state.base_url(host);
            format!(
                "{base}/v1/results/{}.zip?{}",
                task.id,
                state.signer.query(&task.id, expires)
            )
        });
    TaskView {
        created_at: rfc3339_ms(task.created_at_ns / 1_000_000),
        updated_at: rfc3339_ms(task.updated_at_ms),
        task_id: task.id.to_string(),
        user_id: task.user_id.to_string(),
        status: task.status.as_str(),
        total: task.total,
        success: task.success,
        failure: task.failure,
        result_url,
        message: (task.status == TaskStatus::Failed)
            .then(|| task.message.clone().unwrap_or_default()),
        lookups: crate::options::TaskOptions::from_json(&task.options)
            .lookup
            .map(|l| LookupsView {
                made: task.lookups_made,
                max: l.max_lookups,
            }),
    }
}

fn missing() -> ApiError {
    ApiError::bad_request(
        "missing_task_id",
        "send task_id as a form field (--form 'task_id=...'), urlencoded or as JSON",
    )
}

async fn task_id_from(request: Request, state: &AppState) -> Result<String, ApiError> {
    if let Some(q) = request.uri().query()
        && let Some(id) = form_value(q.as_bytes())
    {
        return Ok(id);
    }
    let content_type = content_type(request.headers());
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(crate::routes::multipart_error)?
        {
            if field.name() == Some("task_id") {
                let mut value = Vec::new();
                while let Some(b) = field
                    .chunk()
                    .await
                    .map_err(crate::routes::multipart_error)?
                {
                    value.extend_from_slice(&b);
                    if value.len() > 256 {
                        return Err(ApiError::task_not_found());
                    }
                }
                let text = String::from_utf8_lossy(&value).trim().to_owned();
                return if text.is_empty() {
                    Err(missing())
                } else {
                    Ok(text)
                };
            }
        }
        return Err(missing());
    }
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    if content_type.starts_with("application/json") || body.first() == Some(&b'{') {
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("the JSON body could not be read: {e}"),
            )
        })?;
        return match value.get("task_id") {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err(missing()),
        };
    }
    form_value(&body).ok_or_else(missing)
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn form_value(body: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "task_id")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
