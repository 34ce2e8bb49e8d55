//! The HTTP routes. [`router`] is what both `main` and the tests serve; [`table`] is every
//! route with its method and body policy, so the OpenAPI document can be checked against it.

mod balance;
mod dashboard;
mod evidence;
mod gettasks;
mod health;
mod metrics;
mod openapi;
mod preview;
pub(crate) mod request_context;
mod responses;
mod results;
mod task_controls;
mod tasks;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Method, Uri};
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::error::ApiError;
use crate::state::AppState;

/// Small bodies: everything but uploads.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// What a route's request body may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// The default: at most [`SMALL_BODY`].
    Small,
    /// An upload: up to `max_upload_bytes`, cut off when it stalls.
    Upload,
    /// Evidence: streamed with its own limit (`max_evidence_bytes`), cut off when it stalls.
    Evidence,
    /// A delivery receipt: at most [`webhooks::MAX_CALLBACK_BYTES`].
    Receipt,
}

/// One route: a method on a path, its handler and its body policy.
struct Route {
    #[cfg_attr(not(test), allow(dead_code))] // The OpenAPI test reads it.
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
    body: Body,
}

fn route<H, T>(method: Method, path: &'static str, handler: H, body: Body) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|_| unreachable!("every method of the table has a filter"));
    Route {
        method,
        path,
        handler: on(filter, handler),
        body,
    }
}

/// Every route of the API.
fn table() -> Vec<Route> {
    use Body::*;
    vec![
        route(Method::POST, "/v1/tasks", tasks::create, Upload),
        route(Method::GET, "/v1/tasks", task_controls::list, Small),
        route(Method::GET, "/v1/tasks/{id}", task_controls::detail, Small),
        route(
            Method::GET,
            "/v1/tasks/{id}/rows",
            task_controls::rows,
            Small,
        ),
        route(
            Method::DELETE,
            "/v1/tasks/{id}",
            task_controls::delete,
            Small,
        ),
        route(
            Method::POST,
            "/v1/tasks/{id}/cancel",
            task_controls::cancel,
            Small,
        ),
        route(Method::POST, "/v1/tasks/preview", preview::preview, Upload),
        route(Method::POST, "/v1/gettasks", gettasks::get_task, Small),
        route(Method::GET, "/v1/results/{file}", results::download, Small),
        route(Method::GET, "/v1/balance", balance::balance, Small),
        route(
            Method::GET,
            "/v1/callback-secret",
            balance::callback_secret,
            Small,
        ),
        route(
            Method::POST,
            "/v1/callback-secret/rotate",
            balance::rotate_callback_secret,
            Small,
        ),
        route(Method::POST, "/v1/evidence", evidence::post, Evidence),
        // GET and POST are what senders use; any other method is a 405, not a receipt.
        route(
            Method::GET,
            "/v1/webhooks/{format}/{source}",
            webhooks::receive,
            Receipt,
        ),
        route(
            Method::POST,
            "/v1/webhooks/{format}/{source}",
            webhooks::receive,
            Receipt,
        ),
        route(Method::GET, "/", dashboard::index, Small),
        route(Method::GET, "/assets/{file}", dashboard::asset, Small),
        route(Method::GET, "/healthz", health::healthz, Small),
        route(Method::GET, "/readyz", health::readyz, Small),
        route(Method::GET, "/metrics", metrics::metrics, Small),
        route(Method::GET, "/openapi.json", openapi::openapi_json, Small),
    ]
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    // Multipart framing around the file costs a few hundred bytes; allow a little slack so
    // the upload's own size check is what answers 413 with a precise message.
    let upload_limit = usize::try_from(state.config.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let idle =
        || axum::middleware::from_fn_with_state(state.clone(), request_context::body_idle_timeout);
    let mut router = Router::new();
    for r in table() {
        let handler = match r.body {
            Body::Small => r.handler,
            Body::Upload => r
                .handler
                .layer(DefaultBodyLimit::max(upload_limit))
                .layer(idle()),
            Body::Evidence => r.handler.layer(DefaultBodyLimit::disable()).layer(idle()),
            Body::Receipt => r
                .handler
                .layer(DefaultBodyLimit::max(webhooks::MAX_CALLBACK_BYTES)),
        };
        router = router.route(r.path, handler);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context::measure,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .layer(axum::middleware::from_fn(crate::error::json_rejections))
        .layer(axum::middleware::from_fn(request_context::request_id))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: format!("no such endpoint: {}", uri.path()),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
