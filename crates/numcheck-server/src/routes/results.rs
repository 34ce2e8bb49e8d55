//! `GET /v1/results/<task_id>.zip?expires=…&signature=…`: the result download. No API key:
//! the signed link is the credential.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use numcheck_core::{TaskId, TaskStatus};

use crate::error::ApiError;
use crate::state::AppState;
use numcheck_engine::clock::now_ms;
use numcheck_engine::signing::LinkError;

/// A `.zip` download.
#[derive(Debug, utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Schema only: the zip is streamed from the blob store.
pub(crate) struct ZipFile(Vec<u8>);

#[utoipa::path(
    get,
    path = "/v1/results/{file}",
    operation_id = "download_result",
    tag = "results",
    summary = "Download a result",
    description = "The link `result_url` gives: no API key, the signature is the credential. \
        The zip holds `<task_id>.csv`, `rejected.csv`, `summary.json` and, when asked for, \
        `<task_id>.xlsx`.",
    params(
        ("file" = String, Path, description = "`<task_id>.zip`.", example = "d4g24nep2jvh04o9uoh0.zip"),
        ("expires" = i64, Query, description = "Unix seconds the link is valid until."),
        ("signature" = String, Query, description = "The server's signature of the task and `expires`."),
    ),
    responses(
        (status = 200, description = "The zip.", body = ZipFile, content_type = "application/zip",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"<task_id>.zip\"`"))),
        (status = 403, description = "`invalid_signature`: a forged, altered or incomplete link; \
            `link_expired`: poll `/v1/gettasks` for a fresh one."),
        (status = 404, description = "`task_not_found`: the task is gone or has no result."),
        (status = 500, description = super::responses::E500),
    ),
    security(()),
)]
pub async fn download(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // Parsed here rather than by an extractor so that any malformed query gets our JSON error.
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    // One canonical form: each parameter once.
    let param = |name: &str| {
        let mut given = query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        match (given.next(), given.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    };
    let forbidden = |code: &'static str, message: &str| ApiError::Forbidden {
        code,
        message: message.to_owned(),
    };
    let id: TaskId = file
        .strip_suffix(".zip")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| forbidden("invalid_signature", "this result link is not valid"))?;
    let expires: i64 = param("expires")
        .and_then(numcheck_engine::signing::parse_expires)
        .ok_or_else(|| forbidden("invalid_signature", "this result link is not valid"))?;
    let signature = param("signature")
        .ok_or_else(|| forbidden("invalid_signature", "this result link is not valid"))?;
    match state
        .signer
        .verify(&id, expires, signature, now_ms() / 1000)
    {
        Ok(()) => {}
        Err(LinkError::BadSignature) => {
            return Err(forbidden(
                "invalid_signature",
                "this result link is not valid",
            ));
        }
        Err(LinkError::Expired) => {
            return Err(forbidden(
                "link_expired",
                "this result link has expired; poll /v1/gettasks for a fresh one",
            ));
        }
    }
    let task = state
        .engine
        .store
        .task(&id)
        .await?
        .ok_or_else(ApiError::task_not_found)?;
    let key = match (&task.status, &task.result_key) {
        (TaskStatus::Exported, Some(key)) => key.clone(),
        _ => return Err(ApiError::task_not_found()),
    };
    let (size, stream) = state.engine.blobs.stream(&key).await?;
    let mut response = Body::from_stream(stream.map_err(std::io::Error::other)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.zip\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}
