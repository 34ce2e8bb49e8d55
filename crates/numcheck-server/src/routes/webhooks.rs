//! `/v1/webhooks/{format}/{source}`: delivery receipts pushed by the systems that send the
//! operator's traffic — Kannel's `dlr-url`, Jasmin's DLR callback, Twilio status callbacks,
//! Vonage and Infobip delivery reports. Each source is configured (`[[sources]]`) with a
//! token it sends as `?token=` or the `X-Numcheck-Token` header. A receipt is stored once per
//! (source, message id), so a retried callback adds nothing; non-final states are read and
//! dropped; a malformed callback gets a 400 JSON error and leaves everything else as it was.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use numcheck_core::connectors::{
    ConnectorFormat, Event, ParseError, form_pairs, infobip, jasmin, kannel, twilio, vonage,
};
use numcheck_engine::evidence::sources::Source;
use numcheck_engine::evidence::{CallbackReport, store_receipts};

use crate::error::ApiError;
use crate::state::AppState;

/// Largest callback body.
pub const MAX_CALLBACK_BYTES: usize = 256 * 1024;

#[utoipa::path(
    method(get, post),
    path = "/v1/webhooks/{format}/{source}",
    operation_id = "receive_webhook",
    tag = "evidence",
    summary = "Receive delivery receipts",
    description = "Kannel's `dlr-url`, Jasmin's DLR callback, Twilio status callbacks, Vonage and \
        Infobip delivery reports, for a source configured in `[[sources]]`. A retried receipt \
        adds nothing; non-final states are read and dropped.",
    params(
        ("format" = String, Path, description = "`kannel`, `jasmin`, `twilio`, `vonage` or `infobip`.", example = "kannel"),
        ("source" = String, Path, description = "The source's `name` in `[[sources]]`.", example = "kannel"),
        ("token" = Option<String>, Query, description = "The source's token, when not sent as `X-Numcheck-Token`."),
    ),
    request_body(content(
        (inline(std::collections::HashMap<String, String>) = "application/x-www-form-urlencoded"),
        (inline(serde_json::Value) = "application/json"),
    )),
    responses(
        (status = 200, description = "The receipts were read (Jasmin gets the text `ACK/Jasmin` it waits for).",
            content((CallbackReport = "application/json"), (String = "text/plain"))),
        (status = 400, description = "A receipt that cannot be read: its parser's code (`missing_field`, \
            `invalid_number`, `invalid_json`, …). Nothing was stored."),
        (status = 401, description = "`invalid_source_token`: an unknown source or a wrong token (answered \
            alike); `invalid_signature`: a Twilio signature that does not match."),
        (status = 404, description = "`unknown_webhook`: no webhook for this format, or the source is \
            configured for another one."),
        (status = 413, description = "`file_too_large`: a body over 256 KiB."),
        (status = 500, description = super::responses::E500),
    ),
    security(("SourceToken" = [])),
)]
pub async fn receive(
    State(state): State<AppState>,
    Path((format, source)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let format: ConnectorFormat = format
        .parse()
        .ok()
        .filter(|f: &ConnectorFormat| f.is_webhook())
        .ok_or_else(|| ApiError::NotFound {
            code: "unknown_webhook",
            message: format!(
                "no webhook for {format:?}; there are kannel, jasmin, twilio, vonage and infobip"
            ),
        })?;
    let query = query.unwrap_or_default();
    let query_pairs = form_pairs(query.as_bytes());
    let token = headers
        .get("x-numcheck-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query_pairs
                .iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.clone())
        });
    // An unknown source and a wrong token answer alike, so names cannot be probed.
    let src = state
        .engine
        .sources
        .get(&source)
        .filter(|s| token.as_deref().is_some_and(|t| s.token_matches(t)))
        .ok_or_else(|| ApiError::Unauthorized {
            code: "invalid_source_token",
            message: "unknown source or wrong token: send the source's token as ?token= or the X-Numcheck-Token header".into(),
        })?;
    if src.format != format {
        return Err(ApiError::NotFound {
            code: "unknown_webhook",
            message: format!(
                "source {source:?} is configured for the {} webhook, not {format}",
                src.format
            ),
        });
    }
    let is_form = content_essence(&headers) == "application/x-www-form-urlencoded";
    // Query parameters (GET callbacks, and our own `token`) and form fields together.
    let mut pairs: Vec<(String, String)> = query_pairs
        .into_iter()
        .filter(|(k, _)| k != "token")
        .collect();
    if method == Method::POST && (is_form || format == ConnectorFormat::Kannel) {
        pairs.extend(form_pairs(&body));
    }
    let events: Vec<Result<Event, ParseError>> = match format {
        ConnectorFormat::Kannel => vec![kannel::callback_event(&pairs)],
        // The number comes in `to`, which the sender puts into each message's dlr-url.
        ConnectorFormat::Jasmin => vec![jasmin::callback_event(&pairs, None)],
        ConnectorFormat::Twilio => {
            check_twilio_signature(&state, src, &headers, &query, &body, is_form)?;
            let form = form_pairs(&body);
            vec![twilio::callback_event(&form)]
        }
        ConnectorFormat::Vonage => {
            if method == Method::POST && !is_form && !body.is_empty() {
                vec![vonage::callback_event_json(&body)]
            } else {
                vec![vonage::callback_event_form(&pairs)]
            }
        }
        ConnectorFormat::Infobip => infobip::callback_events(&body).map_err(parse_error)?,
        _ => Vec::new(),
    };
    let report = store_receipts(&state.engine, src, events).await?;
    tracing::info!(
        source = %src.spec.name,
        inserted = report.inserted,
        duplicates = report.duplicates,
        not_final = report.not_final,
        rejected = report.rejected,
        "webhook"
    );
    Ok(match format {
        // Jasmin resends a receipt until the body is exactly this.
        ConnectorFormat::Jasmin => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            "ACK/Jasmin",
        )
            .into_response(),
        _ => (StatusCode::OK, Json(report)).into_response(),
    })
}

fn parse_error(e: ParseError) -> ApiError {
    ApiError::bad_request(e.code, e.message)
}

fn content_essence(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Twilio signs the URL it called plus the POST fields with the account's auth token. The
/// URL is rebuilt from `public_url` (set it to what Twilio calls when behind a proxy), else
/// from the Host header.
fn check_twilio_signature(
    state: &AppState,
    src: &Source,
    headers: &HeaderMap,
    query: &str,
    body: &[u8],
    is_form: bool,
) -> Result<(), ApiError> {
    let Some(auth_token) = &src.twilio_auth_token else {
        return Ok(());
    };
    let refused = |message: &str| ApiError::Unauthorized {
        code: "invalid_signature",
        message: message.into(),
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("X-Twilio-Signature is missing"))?;
    let base = state.base_url(headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    let mut url = format!("{base}/v1/webhooks/twilio/{}", src.spec.name);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let fields = if is_form {
        form_pairs(body)
    } else {
        Vec::new()
    };
    if twilio::verify(auth_token, &url, &fields, signature) {
        Ok(())
    } else {
        Err(refused(
            "X-Twilio-Signature does not match: check the source's twilio_auth_token and that public_url is the address Twilio calls",
        ))
    }
}
