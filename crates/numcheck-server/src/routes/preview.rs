//! `POST /v1/tasks/preview`: the columns of a file and the one an upload would read, so a user
//! can pick the phone column before creating a task. Nothing is stored: a spooled workbook is
//! removed when the answer is built.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use numcheck_core::RegionCode;

use super::tasks::{drain, text_field};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::multipart_error;
use crate::state::AppState;
use crate::tabular::Preview;
use crate::upload::{self, PreviewFile, TableChoice};

#[utoipa::path(
    post,
    path = "/v1/tasks/preview",
    operation_id = "preview_upload",
    tag = "tasks",
    summary = "Preview a file's columns",
    description = "Stores nothing: answers which columns the file has and which one an upload \
        would read, so the phone column can be picked before creating the task.",
    request_body(content = crate::routes::openapi::PreviewForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The file's columns.", body = crate::routes::openapi::PreviewDoc),
        (status = 400, description = "`missing_file`, `duplicate_file`, `invalid_multipart`, `invalid_field`, \
            `invalid_default_region`, `file_not_text`, `unsupported_file_type`, `unknown_phone_column`, \
            `unknown_sheet`, `invalid_xlsx`.", body = crate::error::ErrorBody),
        (status = 401, description = crate::routes::openapi::E401, body = crate::error::ErrorBody),
        (status = 429, description = crate::routes::openapi::E429, body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 408, description = crate::routes::openapi::E408, body = crate::error::ErrorBody),
        (status = 413, description = crate::routes::openapi::E413, body = crate::error::ErrorBody),
        (status = 500, description = crate::routes::openapi::E500, body = crate::error::ErrorBody),
    ),
    security(("ApiKey" = []), ("Bearer" = [])),
)]
pub async fn preview(
    State(state): State<AppState>,
    AuthUser(_who): AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Preview>, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(
            "invalid_multipart",
            format!("send the file as multipart/form-data with a field named file ({e})"),
        )
    })?;
    let mut file: Option<PreviewFile> = None;
    let mut phone_column = None;
    let mut sheet = None;
    let mut default_region = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::bad_request(
                        "duplicate_file",
                        "send exactly one file field",
                    ));
                }
                file = Some(upload::receive_preview(&state, field).await?);
            }
            "phone_column" => phone_column = Some(text_field(field).await?),
            "sheet" => sheet = Some(text_field(field).await?),
            "default_region" => default_region = Some(text_field(field).await?),
            _ => drain(field).await?,
        }
    }
    let Some(file) = file else {
        return Err(ApiError::bad_request(
            "missing_file",
            "the form field file is missing: send the file as file=@leads.csv",
        ));
    };
    let region = match default_region.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(
            r.parse::<RegionCode>()
                .map_err(|e| ApiError::bad_request("invalid_default_region", e.to_string()))?,
        ),
    };
    let choice = TableChoice {
        phone_column: phone_column.as_deref(),
        sheet: sheet.as_deref(),
        region,
    };
    Ok(Json(upload::preview(&state, file, choice).await?))
}
