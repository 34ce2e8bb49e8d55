//! `GET /openapi.json`: the OpenAPI 3 document of the whole API, derived from the handlers'
//! `#[utoipa::path]` attributes and the `ToSchema` body types, so it cannot drift far from the
//! code: the API tests validate real answers against it and check that every route of
//! [`super::router`] is in it, and CI runs schemathesis against a live server with it.
//!
//! The few types here describe what the handlers read by hand (multipart forms, a polled
//! `task_id` in three encodings) or answer from another module's type; they are never built.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

// Error descriptions shared by the operations. Every error answer is an `ErrorBody`.
pub(crate) const E401: &str = "`missing_api_key`: no key in `X-API-Key` (or \
    `Authorization: Bearer`); `invalid_api_key`: the key is unknown or revoked. Free.";
pub(crate) const E404_TASK: &str = "`task_not_found`: no such task, a malformed id, or \
    another user's task (answered alike, so ids cannot be probed).";
pub(crate) const E413: &str = "`file_too_large`: the upload is over `max_upload_bytes` \
    (an `.xlsx` over `max_xlsx_bytes`).";
pub(crate) const E408: &str = "`upload_stalled`: no bytes of the body arrived for \
    `limits.upload_idle_secs`; nothing was stored. Send it again.";
pub(crate) const E429: &str = "`rate_limited`: too many requests for this API key; retry after \
    `Retry-After` seconds. Free.";
pub(crate) const E500: &str = "`internal_error`: a server fault; the details are only in the \
    server log. Retry later. Free.";

/// The OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "numcheck",
        version = env!("CARGO_PKG_VERSION"),
        description = "A self-hosted bulk phone-number activity checker with a \
checknumber.ai-compatible API.

Upload a file of numbers with `POST /v1/tasks`, poll it with `POST /v1/gettasks` until it is \
`exported`, then download the zip at its signed `result_url` (no key needed).

**Authentication.** Every `/v1` call but result downloads and delivery-receipt webhooks \
carries an API key in `X-API-Key` (or `Authorization: Bearer <key>`).

**Errors.** Every non-200 answer is `{\"error\":\"<stable code>\",\"message\":\"<what to fix>\"}` \
(`ErrorBody`); none is charged. Besides the answers listed per operation: 404 `not_found` for \
an unknown path, 405 `method_not_allowed` for a known path with the wrong method, and 400 \
`invalid_request` for a request that cannot be read at all (a path segment that is not UTF-8)."
    ),
    paths(
        super::tasks::create,
        super::task_controls::list,
        super::task_controls::detail,
        super::task_controls::delete,
        super::task_controls::cancel,
        super::preview::preview,
        super::gettasks::get_task,
        super::results::download,
        super::balance::balance,
        super::balance::callback_secret,
        super::balance::rotate_callback_secret,
        super::evidence::post,
        super::webhooks::receive,
        super::dashboard::index,
        super::dashboard::asset,
        super::health::healthz,
        super::health::readyz,
        super::metrics::metrics,
        openapi_json,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "tasks", description = "Create, poll, list, cancel and delete tasks."),
        (name = "results", description = "Result downloads behind signed links."),
        (name = "account", description = "Credits, usage and the completion-notice secret."),
        (name = "evidence", description = "Evidence ingestion: bulk files and delivery-receipt webhooks."),
        (name = "operations", description = "Probes, metrics and this document."),
        (name = "dashboard", description = "The web dashboard."),
    ),
)]
pub(crate) struct ApiDoc;

/// The security schemes: the API key (two ways to send it) and the webhook sources' token.
#[derive(Debug)]
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "ApiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key from the first start or `numcheck keys create`.",
            ))),
        );
        components.add_security_scheme(
            "Bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The same API key as `Authorization: Bearer <key>`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "SourceToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Numcheck-Token",
                "The configured token of the webhook's source (`[[sources]]`); may also be \
                 sent as the `token` query parameter.",
            ))),
        );
    }
}

/// The document, rendered once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    tidy(&mut doc);
    doc.to_string()
});

/// Two touches utoipa 5 leaves to us: each operation's answers in status order (the
/// annotations list them as they read best), and the fields of a Link Object in OpenAPI's
/// spelling (`operationId`, `operationRef`, `requestBody`; utoipa 5 writes snake case).
fn tidy(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for op in operations {
        let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
            continue;
        };
        let mut sorted: Vec<(String, serde_json::Value)> =
            std::mem::take(responses).into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (status, mut response) in sorted {
            if let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) {
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(snake) {
                            link.insert(camel.to_owned(), v);
                        }
                    }
                }
            }
            responses.insert(status, response);
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document.", body = inline(Object), content_type = "application/json")),
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

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

/// A checker (`task_type`).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Schema only: the handler parses `TaskType`.
pub(crate) enum TaskTypeName {
    /// `Number,ActiveStatus,Reason,Confidence,LastActivity,LineType,Region,PossiblyReassigned,Line`.
    ActiveCheck,
    /// `Number,Valid,LineType,Region,CountryCode,NationalFormat,InternationalFormat,Line`.
    NumberInfo,
}

/// The `POST /v1/tasks` form (`multipart/form-data`); fields may come in any order.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Schema only: `tasks::read_form` reads the fields one by one.
pub(crate) struct CreateTaskForm {
    /// The upload: plain text with one number per line, or a `.csv`, `.tsv` or `.xlsx`
    /// spreadsheet (told by the file name, the part's type, else the bytes).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    task_type: TaskTypeName,
    /// ISO 3166 alpha-2 region for numbers written in national format (`DE`, `GB`, …).
    #[schema(example = "DE")]
    default_region: Option<String>,
    /// `full` (default) or `basic` (only `Number,ActiveStatus`, as the original service).
    #[schema(example = "basic")]
    columns: Option<String>,
    /// `csv` (default), `xlsx` or `csv,xlsx`: an `.xlsx` copy in the zip.
    #[schema(example = "csv,xlsx")]
    formats: Option<String>,
    /// `true` / `false` (also `1`/`0`, `yes`/`no`, `on`/`off`): ask the configured live lookup
    /// providers about numbers the evidence cannot decide.
    #[schema(example = "false")]
    live_lookup: Option<String>,
    /// The task's lookup budget, 0 to 1,000,000,000.
    #[schema(minimum = 0, maximum = 1_000_000_000, example = 1000)]
    max_lookups: Option<u64>,
    /// Reuse a cached lookup younger than this many days, 0 to 3650.
    #[schema(minimum = 0, maximum = 3650, example = 30)]
    max_age_days: Option<u32>,
    /// An absolute public `http(s)` URL POSTed a signed JSON notice when the task ends.
    #[schema(example = "https://example.com/numcheck-done")]
    callback_url: Option<String>,
    /// The column holding the numbers in a spreadsheet: a header (case-insensitive) or a
    /// 1-based column number. Default: detected.
    #[schema(example = "Phone")]
    phone_column: Option<String>,
    /// The worksheet of an `.xlsx` (default: the first visible one).
    #[schema(example = "Sheet1")]
    sheet: Option<String>,
}

/// The `POST /v1/tasks/preview` form (`multipart/form-data`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Schema only: `preview::preview` reads the fields one by one.
pub(crate) struct PreviewForm {
    /// The file, as for `POST /v1/tasks` (the first MiB of a text or CSV file is read).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// As for `POST /v1/tasks`.
    phone_column: Option<String>,
    /// As for `POST /v1/tasks`.
    sheet: Option<String>,
    /// As for `POST /v1/tasks`.
    default_region: Option<String>,
}

/// The `POST /v1/gettasks` body, as a multipart form, urlencoded or JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Schema only: `gettasks::task_id_from` reads the field by hand.
pub(crate) struct PollRequest {
    /// The `task_id` `POST /v1/tasks` answered.
    #[schema(example = "d4g24nep2jvh04o9uoh0", pattern = "\\S")]
    task_id: String,
}

/// What `POST /v1/tasks/preview` answers (the serialised `tabular::Preview`).
#[derive(Debug, ToSchema)]
#[schema(as = Preview)]
#[allow(dead_code)] // Schema only: the API tests validate real answers against it.
pub(crate) struct PreviewDoc {
    /// `text`, `csv` or `xlsx`.
    #[schema(pattern = "^(text|csv|xlsx)$")]
    kind: String,
    /// The part's file name, when it had one.
    #[schema(required = true)]
    file_name: Option<String>,
    has_header: bool,
    /// The file's columns; a text file has one, `number`.
    columns: Vec<PreviewColumn>,
    /// The 1-based column an upload would read; `null` when none looks like phone numbers.
    #[schema(required = true, minimum = 1)]
    phone_column: Option<u64>,
    /// The workbook's worksheets (`.xlsx` only, else empty).
    sheets: Vec<String>,
}

/// One column of a previewed file.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Schema only, see `PreviewDoc`.
pub(crate) struct PreviewColumn {
    /// 1-based.
    #[schema(minimum = 1)]
    index: u64,
    /// The header cell, or a made-up name (`column 2`, `B`) without a header.
    name: String,
    /// Share of the sampled records whose cell here reads as a phone number, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    phone_share: f64,
    /// The first few non-empty cells below the header.
    samples: Vec<String>,
}

/// A `.zip` download.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Schema only: the zip is streamed from the blob store.
pub(crate) struct ZipFile(Vec<u8>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_renders_as_openapi_3() {
        let doc: serde_json::Value =
            serde_json::from_str(&DOCUMENT).unwrap_or(serde_json::Value::Null);
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{doc}"
        );
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }
}
