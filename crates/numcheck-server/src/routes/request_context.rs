//! Per-request context: a request id (the client's `X-Request-Id` when it is a sane one, else
//! a fresh one) carried by every log line of the request and echoed in the response; and the
//! request's route, status and latency for `/metrics`; and the security headers every answer
//! carries (routes that need others, like the dashboard's CSP, set their own first).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// A client-given id is kept when it is 1 to 128 visible ASCII characters.
fn client_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_owned())
}

/// Outermost layer: the id and the span.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = client_id(&req).unwrap_or_else(|| xid::new().to_string());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, v);
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Inside routing (so the matched route pattern is known): route, status, latency.
pub async fn measure(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    state
        .telemetry
        .request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// For upload routes: a body that sends nothing for `limits.upload_idle_secs` is cut off, so a
/// slow or stuck client cannot hold a connection and a half-written upload forever. The whole
/// upload may take as long as it needs while bytes keep coming. The handler sees a broken body
/// (and cleans up as for any); the answer is then replaced by 408 `upload_stalled`.
pub async fn body_idle_timeout(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use futures::StreamExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let idle = std::time::Duration::from_secs(state.config.limits.upload_idle_secs.max(1));
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    let (parts, body) = req.into_parts();
    let guarded = futures::stream::unfold(Some(body.into_data_stream()), move |state| {
        let flag = flag.clone();
        async move {
            let mut stream = state?;
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
                Ok(Some(Err(e))) => Some((Err(e), None)),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, Ordering::SeqCst);
                    Some((
                        Err(axum::Error::new(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "upload stalled",
                        ))),
                        None,
                    ))
                }
            }
        }
    });
    let response = next
        .run(Request::from_parts(
            parts,
            axum::body::Body::from_stream(guarded),
        ))
        .await;
    if stalled.load(Ordering::SeqCst) {
        return crate::error::ApiError::Stalled(format!(
            "the upload stalled: no data for {} s; send the file again",
            idle.as_secs()
        ))
        .into_response();
    }
    response
}
