//! `POST /v1/tasks/preview`: the columns of a file and the one an upload would read, so a user
//! can pick the phone column before creating a task. Nothing is stored: a spooled workbook is
//! removed when the answer is built.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use numcheck_engine::intake::{self, tabular::Preview};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upload;

#[utoipa::path(
    post,
    path = "/v1/tasks/preview",
    operation_id = "preview_upload",
    tag = "tasks",
    summary = "Preview a file's columns",
    description = "Stores nothing: answers which columns the file has and which one an upload \
        would read, so the phone column can be picked before creating the task.",
    request_body(content = numcheck_engine::intake::PreviewForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The file's columns.", body = Preview),
        (status = 400, description = "`missing_file`, `duplicate_file`, `invalid_multipart`, `invalid_field`, \
            `invalid_default_region`, `file_not_text`, `unsupported_file_type`, `unknown_phone_column`, \
            `unknown_sheet`, `invalid_xlsx`."),
        (status = 408, description = super::responses::E408),
        (status = 413, description = super::responses::E413),
    ),
)]
pub async fn preview(
    State(state): State<AppState>,
    AuthUser(_who): AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Preview>, ApiError> {
    let form = upload::preview_form(&state, multipart).await?;
    Ok(Json(intake::preview(&state.engine, form).await?))
}
