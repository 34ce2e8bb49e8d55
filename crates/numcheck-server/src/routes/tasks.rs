//! `POST /v1/tasks`: upload a file of numbers and create a task.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::HeaderMap;
use numcheck_engine::intake::Ticket;
use numcheck_engine::tasks;
use numcheck_store::{Created, User};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upload;
use crate::views::CreatedBody;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[utoipa::path(
    post,
    path = "/v1/tasks",
    operation_id = "create_task",
    tag = "tasks",
    summary = "Create a task",
    description = "Streams the upload to storage and answers at once; the task is processed in \
        the background. Charged one credit per unique number checked, when it is exported.",
    params((
        "Idempotency-Key" = Option<String>, Header, max_length = 255,
        description = "A retry with the same key returns the first task and charges nothing again."
    )),
    request_body(content = numcheck_engine::intake::TaskForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The task is created (or, with a repeated `Idempotency-Key`, the first one).",
            body = CreatedBody, links(
                ("detail" = (operation_id = "get_task_detail", parameters(("id" = "$response.body#/task_id")))),
                ("cancel" = (operation_id = "cancel_task", parameters(("id" = "$response.body#/task_id")))),
                ("delete" = (operation_id = "delete_task", parameters(("id" = "$response.body#/task_id")))),
                ("poll" = (operation_id = "poll_task", request_body = json!({"task_id": "$response.body#/task_id"}))),
            )),
        (status = 400, description = "A bad form: `missing_file`, `duplicate_file`, `missing_task_type`, \
            `unknown_task_type`, `empty_file`, `file_not_text`, `invalid_default_region`, \
            `invalid_multipart`, `invalid_field`, `invalid_idempotency_key`, `invalid_columns`, \
            `invalid_formats`, `invalid_live_lookup`, `invalid_max_lookups`, `invalid_max_age_days`, \
            `invalid_min_confidence`, \
            `live_lookup_unavailable`, `invalid_callback_url`, `callback_url_refused`; a spreadsheet \
            that cannot be read: `unsupported_file_type`, `unknown_phone_column`, `no_phone_column`, \
            `unknown_sheet`, `invalid_xlsx`."),
        (status = 408, description = super::responses::E408),
        (status = 402, description = "`insufficient_credits`: the balance cannot cover the task's unique numbers."),
        (status = 413, description = "`file_too_large`: the upload is over `max_upload_bytes` (an `.xlsx` \
            over `max_xlsx_bytes`); `too_many_lines`: it holds more than `limits.max_upload_lines` lines."),
        (status = 429, description = "`rate_limited`: too many requests for this API key; `too_many_tasks`: \
            the user already has `limits.max_open_tasks` tasks pending or processing (checked before \
            the upload is read). Retry after `Retry-After` seconds.",
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 503, description = "`shutting_down`: the server is stopping; retry after `Retry-After` seconds.", headers(("Retry-After" = u32, description = "Seconds to wait."))),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<CreatedBody>, ApiError> {
    if state.engine.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let ticket = Ticket::new()?;
    let idempotency_key = idempotency_key(&headers)?;
    if let Some(key) = &idempotency_key
        && let Some(task) = state
            .engine
            .store
            .task_by_idempotency_key(&who.user.id, key)
            .await?
    {
        return Ok(Json(CreatedBody::from_task(&task)));
    }
    // Before the body is read: a refused client should not have to send its whole file.
    open_task_cap(&state, &who.user).await?;
    let intake = upload::intake(&state, &ticket, multipart).await?;
    // Credits are counted and held as the task is stored.
    let task = match tasks::create(&state.engine, &who.user, intake, idempotency_key).await? {
        // A retry that raced the first request gets the first task.
        Created::New(task) | Created::Existing(task) => task,
    };
    Ok(Json(CreatedBody::from_task(&task)))
}

/// The `Idempotency-Key` header, when sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().ok().map(str::trim).filter(|k| {
        !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(k) => Ok(Some(k.to_owned())),
        None => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// Refuses a user who already has `limits.max_open_tasks` tasks pending or processing, before
/// the body is read. The store checks again as it stores the task, for creates that race.
async fn open_task_cap(state: &AppState, user: &User) -> Result<(), ApiError> {
    let cap = i64::from(state.config.limits.max_open_tasks);
    if cap > 0 && state.engine.store.open_tasks(&user.id).await? >= cap {
        return Err(crate::error::too_many_tasks(cap));
    }
    Ok(())
}
