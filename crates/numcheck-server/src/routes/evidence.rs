//! `POST /v1/evidence`: stream observations in, as CSV (with a header) or NDJSON, or in a
//! connector's file format (`?format=kannel&source=smsc-1`, …). Only keys with the ingest
//! right may post (`numcheck keys create --ingest`).

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use numcheck_core::connectors::ConnectorFormat;
use numcheck_core::{RowFormat, RowReader};

use crate::auth::IngestUser;
use crate::error::ApiError;
use crate::state::AppState;
use numcheck_engine::clock::now_ms;
use numcheck_engine::evidence::ingest::{IngestError, IngestReport, Ingestor, LineReader};

#[utoipa::path(
    post,
    path = "/v1/evidence",
    operation_id = "post_evidence",
    tag = "evidence",
    summary = "Ingest evidence",
    description = "Streams observations in: CSV with a header, NDJSON, or a connector's file \
        format (`?format=kannel&source=smsc-1`, …). Only keys with the ingest right may post \
        (`numcheck keys create --ingest`).",
    params(
        ("format" = Option<String>, Query, description = "`csv`, `ndjson` (default: told by the \
            Content-Type) or a connector format: `smpp`, `kannel`, `jasmin`, `twilio`, `vonage`, `infobip`, `freeswitch`, `asterisk`, `deactivation`, `reassigned`, `hlr`."),
        ("source" = Option<String>, Query, description = "The source's name; required with a connector format."),
        ("err_table" = Option<String>, Query, description = "The code table for SMPP `err:` values (connector formats)."),
        ("region" = Option<String>, Query, description = "Region for national numbers (connector formats)."),
        ("utc_offset" = Option<String>, Query, description = "The offset of the file's local times, e.g. `+02:00` (connector formats)."),
        ("assume_time" = Option<String>, Query, description = "The time of records that carry no date of their own (`now` or RFC 3339); without it such records (Twilio lines without `DateUpdated`/`DateSent`/`DateCreated`) are refused as `missing_time`."),
    ),
    request_body(content(
        (String = "text/csv"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 200, description = "What the ingest did; unreadable rows are counted and listed.",
            body = IngestReport),
        (status = 400, description = "`unknown_format`, `missing_source`, `invalid_source`, \
            `invalid_parameter`, `invalid_header` (an unusable CSV header), `invalid_body`."),
        (status = 403, description = "`ingest_not_allowed`: the key may not post evidence."),
        (status = 408, description = super::responses::E408),
        (status = 413, description = "`file_too_large`: a body over `max_evidence_bytes`."),
    ),
)]
pub async fn post(
    State(state): State<AppState>,
    IngestUser(who): IngestUser,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestReport>, ApiError> {
    let now = now_ms();
    let reader = reader(&state, query.as_deref(), &headers, now)?;
    let mut ingestor = Ingestor::with_reader(
        state.engine.store.as_ref(),
        reader,
        state.config.policy.half_lives(),
        now,
    );
    let limit = state.config.max_evidence_bytes;
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        size += bytes.len() as u64;
        if size > limit {
            return Err(ApiError::TooLarge { limit: Some(limit) });
        }
        ingestor.push(&bytes).await.map_err(ingest_error)?;
    }
    let report = ingestor.finish().await.map_err(ingest_error)?;
    tracing::info!(user = %who.user.name, inserted = report.inserted, duplicates = report.duplicates, rejected = report.rejected, "evidence ingested");
    Ok(Json(report))
}

fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::Header { line, error } => {
            ApiError::bad_request("invalid_header", format!("line {line}: {}", error.message))
        }
        IngestError::Store(e) => e.into(),
    }
}

fn reader(
    state: &AppState,
    query: Option<&str>,
    headers: &HeaderMap,
    now: i64,
) -> Result<LineReader, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let format = param("format");
    if let Some(f) = format
        && !matches!(f, "csv" | "ndjson" | "jsonl" | "json")
    {
        let connector: ConnectorFormat = f.parse().map_err(|e: String| {
            ApiError::bad_request("unknown_format", format!("{e}, or csv / ndjson"))
        })?;
        let source = param("source").ok_or_else(|| {
            ApiError::bad_request(
                "missing_source",
                format!("name the source of this {connector} data: ?source=<name>"),
            )
        })?;
        if source.len() > 128 || source.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_source",
                "source must be 1 to 128 printable characters",
            ));
        }
        let spec = numcheck_engine::evidence::sources::import_spec(
            source,
            param("err_table"),
            param("region"),
            &state.engine.code_book,
        )
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.to_string()))?;
        let options = numcheck_engine::evidence::sources::file_options(
            param("utc_offset"),
            param("assume_time"),
            now,
        )
        .map_err(|e| ApiError::bad_request("invalid_parameter", e))?;
        return Ok(LineReader::connector_with(
            connector,
            state.engine.code_book.clone(),
            spec,
            options,
        ));
    }
    Ok(LineReader::Rows(
        RowReader::new(
            row_format(format, headers)?,
            (*state.engine.codes).clone(),
            now,
        )
        .with_named_tables(state.engine.code_book.clone()),
    ))
}

fn row_format(format: Option<&str>, headers: &HeaderMap) -> Result<RowFormat, ApiError> {
    if let Some(f) = format {
        return f
            .parse()
            .map_err(|e: String| ApiError::bad_request("unknown_format", e));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "text/csv" | "application/csv" => Ok(RowFormat::Csv),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/json" => Ok(RowFormat::Ndjson),
        _ => Err(ApiError::bad_request(
            "unknown_format",
            "say what the body is: Content-Type text/csv or application/x-ndjson, or ?format=csv|ndjson",
        )),
    }
}
