//! The HTTP routes. `router` is what both `main` and the tests serve.

mod balance;
mod dashboard;
mod evidence;
mod gettasks;
mod health;
mod metrics;
mod openapi;
mod preview;
pub(crate) mod request_context;
mod results;
mod task_controls;
mod tasks;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) use gettasks::{TaskView, task_view};
pub use task_controls::summary_key;
pub(crate) use tasks::multipart_error;

/// Small bodies: everything but uploads.
const SMALL_BODY: usize = 64 * 1024;

/// The whole API.
pub fn router(state: AppState) -> Router {
    // Multipart framing around the file costs a few hundred bytes; allow a little slack so
    // the upload's own size check is what answers 413 with a precise message.
    let upload_limit = usize::try_from(state.config.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let idle =
        || axum::middleware::from_fn_with_state(state.clone(), request_context::body_idle_timeout);
    Router::new()
        .route(
            "/v1/tasks",
            post(tasks::create)
                .layer(DefaultBodyLimit::max(upload_limit))
                .layer(idle())
                .get(task_controls::list),
        )
        .route(
            "/v1/tasks/{id}",
            get(task_controls::detail).delete(task_controls::delete),
        )
        .route("/v1/tasks/{id}/cancel", post(task_controls::cancel))
        .route("/v1/balance", get(balance::balance))
        .route("/v1/callback-secret", get(balance::callback_secret))
        .route(
            "/v1/callback-secret/rotate",
            post(balance::rotate_callback_secret),
        )
        .route(
            "/v1/tasks/preview",
            post(preview::preview)
                .layer(DefaultBodyLimit::max(upload_limit))
                .layer(idle()),
        )
        .route("/v1/gettasks", post(gettasks::get_task))
        .route(
            "/v1/evidence",
            post(evidence::post)
                .layer(DefaultBodyLimit::disable())
                .layer(idle()),
        )
        .route("/v1/results/{file}", get(results::download))
        .route(
            "/v1/webhooks/{format}/{source}",
            // GET and POST are what senders use; any other method is a 405, not a receipt.
            get(webhooks::receive)
                .post(webhooks::receive)
                .layer(DefaultBodyLimit::max(webhooks::MAX_CALLBACK_BYTES)),
        )
        .route("/", get(dashboard::index))
        .route("/assets/{file}", get(dashboard::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
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
