//! `POST /v1/gettasks`: poll a task. `task_id` comes as multipart (what `curl --form` sends),
//! urlencoded, JSON, or in the query string.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, header};
use numcheck_engine::tasks;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upload::multipart_error;
use crate::views::{TaskView, task_view};

/// The `POST /v1/gettasks` body, as a multipart form, urlencoded or JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Schema only: `gettasks::task_id_from` reads the field by hand.
pub(crate) struct PollRequest {
    /// The `task_id` `POST /v1/tasks` answered.
    #[schema(example = "d4g24nep2jvh04o9uoh0", pattern = "\\S")]
    task_id: String,
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
        (PollRequest = "multipart/form-data"),
        (PollRequest = "application/x-www-form-urlencoded"),
        (PollRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The task.", body = TaskView),
        (status = 400, description = "`missing_task_id`: no `task_id`; `invalid_json`: an unreadable JSON body; \
            `invalid_multipart`: a broken multipart body; `invalid_request`: an unreadable body."),
        (status = 404, description = super::responses::E404_TASK),
        (status = 413, description = "`file_too_large`: a body over the 64 KiB limit (multipart, urlencoded or JSON)."),
    ),
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
    let task = tasks::own_task(&state.engine, &who.user, &raw).await?;
    Ok(Json(task_view(&state, &task, host.as_deref()).await?))
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
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            if field.name() == Some("task_id") {
                let mut value = Vec::new();
                while let Some(b) = field.chunk().await.map_err(multipart_error)? {
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
    let body = Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                limit: Some(super::SMALL_BODY as u64),
            }
        } else {
            ApiError::bad_request("invalid_request", e.body_text())
        }
    })?;
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
