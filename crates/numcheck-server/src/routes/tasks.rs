//! `POST /v1/tasks`: upload a file of numbers and create a task.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Field, Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, StatusCode};
use numcheck_core::{RegionCode, TaskId, TaskType};
use numcheck_store::{Created, NewTask, Task};
use serde::Serialize;

use crate::auth::AuthUser;
use crate::clock::{now_ns, rfc3339_ns};
use crate::error::ApiError;
use crate::options::TaskOptions;
use crate::state::AppState;
use crate::upload::{self, Received};

/// The create answer, keys in the contract's order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedBody {
    #[schema(pattern = "^[0-9a-v]{20}$", example = "d4g8o46p2jvh04o9uolg")]
    task_id: String,
    #[schema(value_type = crate::routes::openapi::TaskState)]
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
    fn from_task(task: &Task) -> Self {
        CreatedBody {
            task_id: task.id.to_string(),
            status: task.status.as_str(),
            total: task.total,
            message: "Task created successfully",
            created_at: rfc3339_ns(task.created_at_ns),
        }
    }
}

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Longest accepted value of a text form field.
const MAX_TEXT_FIELD: usize = 4096;

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
    request_body(content = crate::routes::openapi::CreateTaskForm, content_type = "multipart/form-data"),
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
            `live_lookup_unavailable`, `invalid_callback_url`, `callback_url_refused`; a spreadsheet \
            that cannot be read: `unsupported_file_type`, `unknown_phone_column`, `no_phone_column`, \
            `unknown_sheet`, `invalid_xlsx`.", body = crate::error::ErrorBody),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 408, description = crate::routes::openapi::E408, body = crate::error::ErrorBody),
        (status = 402, description = "`insufficient_credits`: the balance cannot cover the task's unique numbers.",
            body = crate::error::ErrorBody),
        (status = 413, description = "`file_too_large`: the upload is over `max_upload_bytes` (an `.xlsx` \
            over `max_xlsx_bytes`); `too_many_lines`: it holds more than `limits.max_upload_lines` lines.",
            body = crate::error::ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests for this API key; `too_many_tasks`: \
            the user already has `limits.max_open_tasks` tasks pending or processing (checked before \
            the upload is read). Retry after `Retry-After` seconds.", body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
        (status = 503, description = "`shutting_down`: the server is stopping; retry after `Retry-After` seconds.",
            body = crate::error::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait."))),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<CreatedBody>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let user = who.user;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().map(str::trim).filter(|k| {
                !k.is_empty()
                    && k.len() <= MAX_IDEMPOTENCY_KEY
                    && k.bytes().all(|b| b.is_ascii_graphic())
            });
            match key {
                Some(k) => Some(k.to_owned()),
                None => {
                    return Err(ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    ));
                }
            }
        }
    };
    if let Some(key) = &idempotency_key
        && let Some(task) = state.store.task_by_idempotency_key(&user.id, key).await?
    {
        return Ok(Json(CreatedBody::from_task(&task)));
    }
    // Before the body is read: a refused client should not have to send its whole file.
    let cap = state.config.limits.max_open_tasks;
    if cap > 0 && state.store.open_tasks(&user.id).await? >= i64::from(cap) {
        return Err(ApiError::RateLimited {
            code: "too_many_tasks",
            message: format!(
                "this user already has {cap} tasks pending or processing; wait for one to end"
            ),
            retry_after: std::time::Duration::from_secs(10),
        });
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(
            "invalid_multipart",
            format!("send the upload as multipart/form-data with fields file and task_type ({e})"),
        )
    })?;

    let task_id: TaskId = xid::new()
        .to_string()
        .parse()
        .map_err(|_| anyhow::anyhow!("xid produced a malformed id"))?;
    let created_at_ns = now_ns();
    let mut form = Form::default();
    let mut result = read_form(&state, &task_id, &mut multipart, &mut form).await;
    if result.is_ok() {
        result = convert_spreadsheet(&state, &task_id, &mut form).await;
    }
    let outcome = match result {
        Ok(()) => {
            finish(
                &state,
                &user,
                &task_id,
                created_at_ns,
                idempotency_key,
                &form,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(body) => Ok(Json(body)),
        Err(e) => {
            if let Some(received) = &form.file
                && let Err(del) = state.blobs.delete(&received.key).await
            {
                tracing::warn!(error = %del, "could not delete a refused upload");
            }
            Err(e)
        }
    }
}

#[derive(Debug, Default)]
struct Form {
    file: Option<Received>,
    task_type: Option<String>,
    default_region: Option<String>,
    columns: Option<String>,
    formats: Option<String>,
    live_lookup: Option<String>,
    max_lookups: Option<String>,
    max_age_days: Option<String>,
    callback_url: Option<String>,
    /// A CSV/XLSX upload waiting for the whole form (it may name the phone column after it).
    spreadsheet: Option<upload::Spooled>,
    phone_column: Option<String>,
    sheet: Option<String>,
}

async fn read_form(
    state: &AppState,
    task_id: &TaskId,
    multipart: &mut Multipart,
    form: &mut Form,
) -> Result<(), ApiError> {
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if form.file.is_some() || form.spreadsheet.is_some() {
                    return Err(ApiError::bad_request(
                        "duplicate_file",
                        "send exactly one file field per task",
                    ));
                }
                match upload::receive(state, task_id, field).await? {
                    upload::Upload::Text(received) => form.file = Some(received),
                    upload::Upload::Table(spooled) => form.spreadsheet = Some(spooled),
                }
            }
            "task_type" => {
                let value = text_field(field).await?;
                // Refuse early when the type comes before the file: no need to read it.
                parse_task_type(Some(&value))?;
                form.task_type = Some(value);
            }
            "default_region" => form.default_region = Some(text_field(field).await?),
            "columns" => form.columns = Some(text_field(field).await?),
            "formats" => form.formats = Some(text_field(field).await?),
            "live_lookup" => form.live_lookup = Some(text_field(field).await?),
            "max_lookups" => form.max_lookups = Some(text_field(field).await?),
            "max_age_days" => form.max_age_days = Some(text_field(field).await?),
            "callback_url" => form.callback_url = Some(text_field(field).await?),
            "phone_column" => form.phone_column = Some(text_field(field).await?),
            "sheet" => form.sheet = Some(text_field(field).await?),
            _ => drain(field).await?,
        }
    }
    Ok(())
}

/// Converts a spooled spreadsheet into the task's text upload, now that the form is read.
async fn convert_spreadsheet(
    state: &AppState,
    task_id: &TaskId,
    form: &mut Form,
) -> Result<(), ApiError> {
    let Some(spooled) = form.spreadsheet.take() else {
        return Ok(());
    };
    // A bad region is reported by `finish`; the detection just reads without one.
    let region = form
        .default_region
        .as_deref()
        .and_then(|r| r.trim().parse::<RegionCode>().ok());
    let choice = upload::TableChoice {
        phone_column: form.phone_column.as_deref(),
        sheet: form.sheet.as_deref(),
        region,
    };
    form.file = Some(upload::convert(state, task_id, spooled, choice).await?);
    Ok(())
}

async fn finish(
    state: &AppState,
    user: &numcheck_store::User,
    task_id: &TaskId,
    created_at_ns: i64,
    idempotency_key: Option<String>,
    form: &Form,
) -> Result<CreatedBody, ApiError> {
    let task_type = parse_task_type(form.task_type.as_deref())?;
    let Some(file) = &form.file else {
        return Err(ApiError::bad_request(
            "missing_file",
            "the form field file is missing: send the numbers as file=@numbers.txt",
        ));
    };
    let region = match form.default_region.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(
            r.parse::<RegionCode>()
                .map_err(|e| ApiError::bad_request("invalid_default_region", e.to_string()))?,
        ),
    };
    let mut options = TaskOptions::from_form(form.columns.as_deref(), form.formats.as_deref())?;
    options.lookup = TaskOptions::lookup_from_form(
        form.live_lookup.as_deref(),
        form.max_lookups.as_deref(),
        form.max_age_days.as_deref(),
        &state.config.lookup,
        !state.lookups.is_empty(),
    )?;
    let callback_url = match form.callback_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            Some(crate::callback::check_url(raw, state.config.callbacks.allow_private)?.to_string())
        }
    };
    if file.total == 0 {
        return Err(ApiError::bad_request(
            "empty_file",
            "the file holds no phone numbers: it is empty or only blank lines",
        ));
    }
    let needs_credits = match state.store.available_credits(&user.id).await? {
        None => 0,
        Some(available) => upload::count_unique(state, &file.key, region, available).await?,
    };
    let new = NewTask {
        id: task_id.clone(),
        user_id: user.id.clone(),
        task_type,
        total: file.total as i64,
        default_region: region.map(|r| r.as_str()),
        created_at_ns,
        input_key: file.key.clone(),
        input_bytes: file.bytes as i64,
        needs_credits,
        idempotency_key,
        chunks: file.chunks.clone(),
        options: options.to_json(),
        callback_url,
        file_name: file.file_name.clone(),
    };
    match state.store.create_task(new).await? {
        Created::New(task) => {
            tracing::info!(task = %task.id, user = %user.name, total = task.total, "task created");
            let t = &state.telemetry;
            t.uploads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            t.upload_bytes
                .fetch_add(file.bytes, std::sync::atomic::Ordering::Relaxed);
            state.work.notify_waiters();
            Ok(CreatedBody::from_task(&task))
        }
        Created::Existing(task) => {
            // A retry raced the first request; keep the first task, drop this upload.
            state.blobs.delete(&file.key).await?;
            Ok(CreatedBody::from_task(&task))
        }
    }
}

fn parse_task_type(value: Option<&str>) -> Result<TaskType, ApiError> {
    let supported = TaskType::supported_list();
    match value.map(str::trim) {
        None | Some("") => Err(ApiError::bad_request(
            "missing_task_type",
            format!("the form field task_type is missing; supported: {supported}"),
        )),
        Some(v) => v.parse().map_err(|_| {
            ApiError::bad_request(
                "unknown_task_type",
                format!("task_type {v:?} is not supported; supported: {supported}"),
            )
        }),
    }
}

pub(super) async fn text_field(mut field: Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut value = Vec::new();
    while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
        value.extend_from_slice(&bytes);
        if value.len() > MAX_TEXT_FIELD {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("the form field {name} is too long"),
            ));
        }
    }
    String::from_utf8(value)
        .map(|s| s.trim().to_owned())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_field",
                format!("the form field {name} is not UTF-8"),
            )
        })
}

pub(super) async fn drain(mut field: Field<'_>) -> Result<(), ApiError> {
    while field.chunk().await.map_err(multipart_error)?.is_some() {}
    Ok(())
}

/// A broken or oversized multipart body.
pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The body limit sits just above the upload limit; the message names the latter.
        ApiError::TooLarge { limit: None }
    } else {
        ApiError::bad_request(
            "invalid_multipart",
            format!("the multipart body could not be read: {}", e.body_text()),
        )
    }
}
