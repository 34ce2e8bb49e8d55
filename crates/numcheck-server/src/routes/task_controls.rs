//! The task list and per-task controls: `GET /v1/tasks` (paged, newest first),
//! `GET /v1/tasks/{id}` (with the result's summary once exported), `POST /v1/tasks/{id}/cancel`
//! and `DELETE /v1/tasks/{id}` (the task, its upload and its result are removed).
//!
//! Another user's task answers exactly like a task that does not exist (404 `task_not_found`),
//! so ids cannot be probed.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use numcheck_core::{TaskId, TaskStatus};
use numcheck_store::{StoreError, Task, TaskCursor};
use serde::Serialize;

use crate::auth::AuthUser;
use crate::clock::{now_ms, rfc3339_ms};
use crate::error::ApiError;
use crate::routes::gettasks::{TaskView, task_view};
use crate::state::AppState;

/// Tasks per page unless `limit` says otherwise; and the most a page may hold.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The blob key of a task's result summary (`summary.json`, kept beside the zip).
pub fn summary_key(task: &TaskId) -> String {
    format!("results/{task}.summary.json")
}

/// A task in a list: the poll view plus what people need to tell tasks apart.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TaskItem {
    #[serde(flatten)]
    view: TaskView,
    #[schema(value_type = crate::routes::openapi::TaskTypeName)]
    task_type: &'static str,
    /// The upload's file name, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    file_name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TaskPage {
    /// Newest first.
    tasks: Vec<TaskItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// One task in full.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TaskDetail {
    #[serde(flatten)]
    item: TaskItem,
    /// Chunks processed of all chunks.
    #[schema(minimum = 0)]
    chunks_done: i64,
    #[schema(minimum = 0)]
    chunk_count: i64,
    /// `summary.json` of the result once exported, else `null`: `task_id`, `task_type`,
    /// `as_of`, `numbering_plan`, `total`, `unique_numbers`, `duplicates`, `success`,
    /// `failure`, counts `by_status`, `by_reason`, `by_region`, `by_line_type`,
    /// `failures_by_reason`, `possibly_reassigned`, `valid`, `invalid` and, when the task made
    /// live lookups, `lookups`.
    #[schema(value_type = Option<Object>, required = true)]
    summary: Option<serde_json::Value>,
    /// The completion notice, when the task asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    callback: Option<CallbackView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CallbackView {
    #[schema(format = "uri")]
    url: String,
    /// `waiting` (task still open), `pending`, `delivered` or `failed`.
    #[schema(pattern = "^(waiting|pending|delivered|failed)$")]
    state: String,
    #[schema(minimum = 0)]
    attempts: i64,
    /// The receiver's HTTP status on the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    last_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    delivered_at: Option<String>,
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

async fn item(state: &AppState, task: &Task, host: Option<&str>) -> Result<TaskItem, ApiError> {
    Ok(TaskItem {
        view: task_view(state, task, host).await?,
        task_type: task.task_type.as_str(),
        file_name: task.file_name.clone(),
    })
}

fn cursor_of(task: &Task) -> String {
    format!("{}.{}", task.created_at_ns, task.id)
}

fn parse_cursor(raw: &str) -> Result<TaskCursor, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "cursor is not one this server gave out; pass next_cursor from the previous page",
        )
    };
    let (at, id) = raw.split_once('.').ok_or_else(bad)?;
    Ok(TaskCursor {
        created_at_ns: at.parse().map_err(|_| bad())?,
        id: id.parse().map_err(|_| bad())?,
    })
}

/// `GET /v1/tasks?limit=&cursor=&status=`
#[utoipa::path(
    get,
    path = "/v1/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    summary = "List tasks",
    description = "The caller's tasks, newest first, a page at a time.",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Tasks per page (default 50)."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
        ("status" = Option<String>, Query, pattern = r"^\s*(pending|processing|exported|failed|cancelled)?\s*$",
            description = "Only tasks in this state (`pending`, `processing`, `exported`, `failed`, \
            `cancelled`); empty for all."),
    ),
    responses(
        (status = 200, description = "A page of tasks.", body = TaskPage),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_status`, or \
            `invalid_query` (an unreadable query string or an unknown parameter).", body = crate::error::ErrorBody),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 429, description = crate::routes::openapi::E429, body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<TaskPage>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).map_err(|_| {
            ApiError::bad_request("invalid_query", "the query string could not be read")
        })?;
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    let mut status = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "limit" => {
                limit = v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_limit",
                            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            "cursor" if !v.trim().is_empty() => after = Some(parse_cursor(v.trim())?),
            "cursor" => {}
            "status" if !v.trim().is_empty() => {
                status = Some(v.trim().parse::<TaskStatus>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_status",
                        format!(
                            "status {v:?} is not one of pending, processing, exported, failed, cancelled"
                        ),
                    )
                })?);
            }
            "status" => {}
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}; use limit, cursor or status"),
                ));
            }
        }
    }
    // One more than asked tells whether there is a next page.
    let mut tasks = state
        .store
        .list_tasks(&who.user.id, status, after.as_ref(), limit + 1)
        .await?;
    let more = tasks.len() as i64 > limit;
    tasks.truncate(limit as usize);
    let next_cursor = if more {
        tasks.last().map(cursor_of)
    } else {
        None
    };
    let mut items = Vec::with_capacity(tasks.len());
    for t in &tasks {
        items.push(item(&state, t, host(&headers)).await?);
    }
    Ok(Json(TaskPage {
        tasks: items,
        next_cursor,
    }))
}

/// The caller's task, or 404 for a malformed id, a missing task or another user's.
async fn own_task(
    state: &AppState,
    user: &numcheck_store::User,
    raw: &str,
) -> Result<Task, ApiError> {
    let id: TaskId = raw.parse().map_err(|_| ApiError::task_not_found())?;
    state
        .store
        .task(&id)
        .await?
        .filter(|t| t.user_id == user.id)
        .ok_or_else(ApiError::task_not_found)
}

/// `GET /v1/tasks/{id}`
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    operation_id = "get_task_detail",
    tag = "tasks",
    summary = "One task in full",
    description = "The task as in the list, with its progress in chunks, the result's summary \
        once exported and the state of its completion notice.",
    params(("id" = String, Path, description = "The task's `task_id`.")),
    responses(
        (status = 200, description = "The task.", body = TaskDetail),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 429, description = crate::routes::openapi::E429, body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 404, description = crate::routes::openapi::E404_TASK, body = crate::error::ErrorBody),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]
pub async fn detail(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TaskDetail>, ApiError> {
    let task = own_task(&state, &who.user, &id).await?;
    let summary = if task.status == TaskStatus::Exported {
        match state.blobs.get(&summary_key(&task.id)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            // Tasks exported before summaries were kept beside the zip have none.
            Err(numcheck_blob::BlobError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let callback = match &task.callback_url {
        None => None,
        Some(url) => Some(match state.store.callback_state(&task.id).await? {
            Some(s) => CallbackView {
                url: url.clone(),
                state: s.state,
                attempts: s.attempts,
                last_status: s.last_status,
                last_error: s.last_error,
                delivered_at: s.delivered_at_ms.map(rfc3339_ms),
            },
            None => CallbackView {
                url: url.clone(),
                state: "waiting".into(),
                attempts: 0,
                last_status: None,
                last_error: None,
                delivered_at: None,
            },
        }),
    };
    Ok(Json(TaskDetail {
        chunks_done: task.chunks_done,
        chunk_count: task.chunk_count,
        item: item(&state, &task, host(&headers)).await?,
        summary,
        callback,
    }))
}

/// `POST /v1/tasks/{id}/cancel`
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/cancel",
    operation_id = "cancel_task",
    tag = "tasks",
    summary = "Cancel a task",
    description = "Stops a pending or processing task; what it held is released, nothing is charged.",
    params(("id" = String, Path, description = "The task's `task_id`.")),
    responses(
        (status = 200, description = "The task, now `cancelled`.", body = TaskItem),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 429, description = crate::routes::openapi::E429, body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 404, description = crate::routes::openapi::E404_TASK, body = crate::error::ErrorBody),
        (status = 409, description = "`task_finished`: the task has already ended.", body = crate::error::ErrorBody),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TaskItem>, ApiError> {
    let id: TaskId = id.parse().map_err(|_| ApiError::task_not_found())?;
    let task = match state.store.cancel_task(&who.user.id, &id, now_ms()).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(ApiError::task_not_found()),
        Err(StoreError::Conflict(_)) => {
            let status = state
                .store
                .task(&id)
                .await?
                .map(|t| t.status.as_str())
                .unwrap_or("ended");
            return Err(ApiError::Conflict {
                code: "task_finished",
                message: format!("the task has already ended ({status}); nothing to cancel"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(task = %task.id, user = %who.user.name, "task cancelled");
    // The parts written so far are of no use any more.
    if let Err(e) = state
        .blobs
        .delete_prefix(&crate::worker::parts_prefix(&task))
        .await
    {
        tracing::warn!(task = %task.id, error = %e, "could not remove a cancelled task's parts");
    }
    Ok(Json(item(&state, &task, host(&headers)).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Deleted {
    #[schema(pattern = "^[0-9a-v]{20}$")]
    task_id: String,
    /// Always `true`.
    deleted: bool,
}

/// `DELETE /v1/tasks/{id}`
#[utoipa::path(
    delete,
    path = "/v1/tasks/{id}",
    operation_id = "delete_task",
    tag = "tasks",
    summary = "Delete a task",
    description = "Removes the task, its upload and its result; a running task is cancelled first.",
    params(("id" = String, Path, description = "The task's `task_id`.")),
    responses(
        (status = 200, description = "The task is gone.", body = Deleted),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 429, description = crate::routes::openapi::E429, body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 404, description = crate::routes::openapi::E404_TASK, body = crate::error::ErrorBody),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let id: TaskId = id.parse().map_err(|_| ApiError::task_not_found())?;
    let task = match state.store.delete_task(&who.user.id, &id, now_ms()).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(ApiError::task_not_found()),
        Err(e) => return Err(e.into()),
    };
    // The row is gone, so no link or poll reaches these blobs any more; a failure to remove
    // one is logged (the bytes are unreachable, not exposed).
    let mut keys = vec![task.input_key.clone(), summary_key(&task.id)];
    keys.extend(task.result_key.clone());
    for key in keys {
        match state.blobs.delete(&key).await {
            Ok(()) | Err(numcheck_blob::BlobError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(task = %task.id, %key, error = %e, "could not remove a deleted task's file")
            }
        }
    }
    if let Err(e) = state
        .blobs
        .delete_prefix(&crate::worker::parts_prefix(&task))
        .await
    {
        tracing::warn!(task = %task.id, error = %e, "could not remove a deleted task's parts");
    }
    tracing::info!(task = %task.id, user = %who.user.name, "task deleted");
    Ok(Json(Deleted {
        task_id: task.id.to_string(),
        deleted: true,
    }))
}
