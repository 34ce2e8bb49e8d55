//! The task list and per-task controls: `GET /v1/tasks` (paged, newest first),
//! `GET /v1/tasks/{id}` (with the result's summary once exported), `POST /v1/tasks/{id}/cancel`
//! and `DELETE /v1/tasks/{id}` (the task, its upload and its result are removed).
//!
//! Another user's task answers exactly like a task that does not exist (404 `task_not_found`),
//! so ids cannot be probed.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use numcheck_core::TaskStatus;
use numcheck_engine::tasks;
use numcheck_store::{Task, TaskCursor};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{CallbackView, Deleted, TaskDetail, TaskItem, TaskPage, host, item};

/// Tasks per page unless `limit` says otherwise; and the most a page may hold.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

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
            `invalid_query` (an unreadable query string or an unknown parameter)."),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<TaskPage>, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    let mut status = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "limit" => limit = parse_limit(v, MAX_LIMIT)?,
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
        .engine
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

/// The query string's parameters, else 400 `invalid_query`.
fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| ApiError::bad_request("invalid_query", "the query string could not be read"))
}

/// A `limit` query parameter: a whole number from 1 to `max`, else 400 `invalid_limit`.
fn parse_limit(value: &str, max: i64) -> Result<i64, ApiError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_limit",
                format!("limit must be a whole number from 1 to {max}"),
            )
        })
}

/// Rows `GET /v1/tasks/{id}/rows` gives by default, and at most.
const DEFAULT_ROWS: i64 = 50;
const MAX_ROWS: i64 = 500;

/// `GET /v1/tasks/{id}/rows`
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/rows",
    operation_id = "get_task_rows",
    tag = "tasks",
    summary = "The first rows of a task's result",
    description = "The result CSV's header and its first rows (50 unless `limit` says, at most \
        500), read from the start of the result zip, for a look without downloading it. \
        `more` says the result goes on. Before the task is exported: 409 `not_exported`.",
    params(
        ("id" = String, Path, description = "The task's `task_id`."),
        ("limit" = Option<i64>, Query, description = "Rows, 1 to 500 (default 50).", minimum = 1, maximum = 500),
    ),
    responses(
        (status = 200, description = "The first rows.", body = tasks::FirstRows),
        (status = 400, description = "`invalid_limit`; `invalid_query`: an unknown parameter."),
        (status = 404, description = super::responses::E404_TASK),
        (status = 409, description = "`not_exported`: the task has no result (yet)."),
    ),
)]
pub async fn rows(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<tasks::FirstRows>, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let mut limit = DEFAULT_ROWS;
    for (k, v) in &pairs {
        match k.as_str() {
            "limit" => limit = parse_limit(v, MAX_ROWS)?,
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}; use limit"),
                ));
            }
        }
    }
    let task = tasks::own_task(&state.engine, &who.user, &id).await?;
    match tasks::first_rows(&state.engine, &task, limit as usize).await? {
        Some(rows) => Ok(Json(rows)),
        None => Err(ApiError::Conflict {
            code: "not_exported",
            message: format!(
                "the task is {}: its rows can be read once it is exported",
                task.status.as_str()
            ),
        }),
    }
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
        (status = 404, description = super::responses::E404_TASK),
    ),
)]
pub async fn detail(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TaskDetail>, ApiError> {
    let task = tasks::own_task(&state.engine, &who.user, &id).await?;
    let summary = tasks::summary(&state.engine, &task).await?;
    let callback = match &task.callback_url {
        None => None,
        Some(url) => Some(CallbackView::new(
            url,
            state.engine.store.callback_state(&task.id).await?,
        )),
    };
    let warnings = summary
        .as_ref()
        .and_then(|s| s.get("warnings").cloned())
        .and_then(|w| serde_json::from_value(w).ok())
        .unwrap_or_default();
    Ok(Json(TaskDetail {
        chunks_done: task.chunks_done,
        chunk_count: task.chunk_count,
        item: item(&state, &task, host(&headers)).await?,
        summary,
        warnings,
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
        (status = 404, description = super::responses::E404_TASK),
        (status = 409, description = "`task_finished`: the task has already ended."),
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TaskItem>, ApiError> {
    let task = tasks::cancel(&state.engine, &who.user, &id).await?;
    Ok(Json(item(&state, &task, host(&headers)).await?))
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
        (status = 404, description = super::responses::E404_TASK),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let task = tasks::delete(&state.engine, &who.user, &id).await?;
    Ok(Json(Deleted {
        task_id: task.id.to_string(),
        deleted: true,
    }))
}
