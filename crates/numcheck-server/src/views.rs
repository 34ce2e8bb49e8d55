//! What the API answers about tasks: the poll view in the original service's key order, and
//! the list, detail, create and delete answers built on it. Every route and the completion
//! notice use these, so a task reads the same wherever it is shown.

use axum::http::{HeaderMap, header};
use numcheck_core::TaskStatus;
use numcheck_engine::clock::{now_ms, rfc3339_ms, rfc3339_ns};
use numcheck_store::{CallbackState, Task};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// A task's state.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Schema only: the handlers answer `TaskStatus::as_str()`.
pub(crate) enum TaskState {
    Pending,
    Processing,
    Exported,
    Failed,
    Cancelled,
}

/// The create answer, keys in the contract's order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBody {
    #[schema(pattern = "^[0-9a-v]{20}$", example = "d4g8o46p2jvh04o9uolg")]
    task_id: String,
    #[schema(value_type = TaskState)]
    status: &'static str,
    /// Non-blank lines of the upload.
    #[schema(minimum = 0)]
    total: i64,
    #[schema(example = "Task created successfully")]
    message: &'static str,
    /// RFC 3339, UTC, nanosecond precision.
    #[schema(format = DateTime, example = "2025-11-21T15:58:08.916446594Z")]
    created_at: String,
}

impl CreatedBody {
    pub(crate) fn from_task(task: &Task) -> Self {
        CreatedBody {
            task_id: task.id.to_string(),
            status: task.status.as_str(),
            total: task.total,
            message: "Task created successfully",
            created_at: rfc3339_ns(task.created_at_ns),
        }
    }
}

/// The poll answer, keys in the contract's order. `result_url` is absent until exported;
/// `message` (ours) appears only on failed tasks.
#[derive(Debug, Serialize, ToSchema)]
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
    #[schema(value_type = TaskState)]
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

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LookupsView {
    /// Live lookups made so far.
    #[schema(minimum = 0)]
    made: i64,
    /// The task's budget.
    max: u64,
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
        (Some(key), TaskStatus::Exported) if state.engine.blobs.is_remote() => state
            .engine
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
        lookups: numcheck_engine::options::TaskOptions::from_json(&task.options)
            .lookup
            .map(|l| LookupsView {
                made: task.lookups_made,
                max: l.max_lookups,
            }),
    }
}

/// A task in a list: the poll view plus what people need to tell tasks apart.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskItem {
    #[serde(flatten)]
    view: TaskView,
    #[schema(value_type = numcheck_engine::intake::TaskTypeName)]
    task_type: &'static str,
    /// The upload's file name, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    file_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    /// Newest first.
    pub(crate) tasks: Vec<TaskItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

/// One task in full.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskDetail {
    #[serde(flatten)]
    pub(crate) item: TaskItem,
    /// Chunks processed of all chunks.
    #[schema(minimum = 0)]
    pub(crate) chunks_done: i64,
    #[schema(minimum = 0)]
    pub(crate) chunk_count: i64,
    /// `summary.json` of the result once exported, else `null`: `task_id`, `task_type`,
    /// `as_of`, `numbering_plan`, `total`, `unique_numbers`, `duplicates`, `success`,
    /// `failure`, counts `by_status`, `by_reason`, `by_region`, `by_line_type`,
    /// `failures_by_reason`, `possibly_reassigned`, `valid`, `invalid` and, when the task made
    /// live lookups, `lookups`, and `warnings`.
    #[schema(value_type = Option<Object>, required = true)]
    pub(crate) summary: Option<serde_json::Value>,
    /// What most likely went wrong, once exported: most lines refused for one fixable reason
    /// (`national_numbers_without_region`, `most_lines_rejected`, `file_name_sent_as_text`) or
    /// no number with any evidence (`no_evidence`). Empty when nothing did, and before the
    /// export.
    pub(crate) warnings: Vec<numcheck_engine::warnings::Warning>,
    /// The completion notice, when the task asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) callback: Option<CallbackView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallbackView {
    #[schema(format = "uri")]
    pub(crate) url: String,
    /// `waiting` (task still open), `pending`, `delivered` or `failed`.
    #[schema(pattern = "^(waiting|pending|delivered|failed)$")]
    pub(crate) state: String,
    #[schema(minimum = 0)]
    pub(crate) attempts: i64,
    /// The receiver's HTTP status on the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) last_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub(crate) delivered_at: Option<String>,
}

/// The request's `Host`, for result links.
pub(crate) fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

pub(crate) async fn item(
    state: &AppState,
    task: &Task,
    host: Option<&str>,
) -> Result<TaskItem, ApiError> {
    Ok(TaskItem {
        view: task_view(state, task, host).await?,
        task_type: task.task_type.as_str(),
        file_name: task.file_name.clone(),
    })
}

impl CallbackView {
    /// The notice of a task that asked for one: its stored state, or `waiting` while the task
    /// is open.
    pub(crate) fn new(url: &str, stored: Option<CallbackState>) -> Self {
        match stored {
            Some(s) => CallbackView {
                url: url.to_owned(),
                state: s.state,
                attempts: s.attempts,
                last_status: s.last_status,
                last_error: s.last_error,
                delivered_at: s.delivered_at_ms.map(rfc3339_ms),
            },
            None => CallbackView {
                url: url.to_owned(),
                state: "waiting".into(),
                attempts: 0,
                last_status: None,
                last_error: None,
                delivered_at: None,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deleted {
    #[schema(pattern = "^[0-9a-v]{20}$")]
    pub(crate) task_id: String,
    /// Always `true`.
    pub(crate) deleted: bool,
}
