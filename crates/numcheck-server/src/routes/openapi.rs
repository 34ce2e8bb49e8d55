//! `GET /openapi.json`: the OpenAPI 3 document of the whole API, derived from the handlers'
//! `#[utoipa::path]` attributes and the `ToSchema` types they read and answer, so it cannot
//! drift far from the code: a unit test here checks that it holds every route of
//! [`super::router`] and nothing else, the API tests validate real answers against it, and CI
//! runs schemathesis against a live server with it.
//!
//! What every operation shares is written once, here: the API key is the document's default
//! security, and [`tidy`] gives each keyed operation that security and its 401, 429 and 500
//! answers, and every error answer the `ErrorBody` schema. An operation open to anyone says
//! `security(())`; one with its own scheme (the webhooks' source token) names it.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::responses::{E401, E403, E429, E500};

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
        super::task_controls::rows,
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
    security(("ApiKey" = []), ("Bearer" = [])),
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

/// What the annotations leave to one place: a keyed operation (one that names no security of
/// its own) gets the API key schemes and the 401, 403, 429 and 500 answers it does not list itself;
/// an open one (`security(())`) loses the marker; every error answer without a body gets
/// `ErrorBody`. Then two touches utoipa 5 leaves to us: each operation's answers in status
/// order (the annotations list them as they read best), and the fields of a Link Object in
/// OpenAPI's spelling (`operationId`, `operationRef`, `requestBody`; utoipa 5 writes snake case).
fn tidy(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let keyed = doc.get("security").cloned().unwrap_or(Value::Null);
    if let Some(root) = doc.as_object_mut() {
        root.remove("security");
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.as_object_mut());
    let error_body =
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let retry_after = json!({"Retry-After": {
        "schema": {"type": "integer", "format": "int32", "minimum": 0},
        "description": "Seconds to wait."
    }});
    for op in operations {
        let responses = op
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut responses = responses;
        match op.get("security") {
            None => {
                op.insert("security".into(), keyed.clone());
                for (status, text) in [("401", E401), ("403", E403), ("429", E429), ("500", E500)] {
                    responses.entry(status).or_insert_with(|| {
                        let mut r = json!({"description": text});
                        if status == "429" {
                            r["headers"] = retry_after.clone();
                        }
                        r
                    });
                }
            }
            Some(s) if *s == json!([{}]) => {
                op.remove("security");
            }
            Some(_) => {}
        }
        for (status, response) in &mut responses {
            if status.as_str() >= "400" && response.get("content").is_none() {
                response["content"] = error_body.clone();
            }
        }
        op.insert("responses".into(), Value::Object(responses));
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
    security(()),
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn document() -> serde_json::Value {
        serde_json::from_str(&DOCUMENT).unwrap_or(serde_json::Value::Null)
    }

    #[test]
    fn the_document_renders_as_openapi_3() {
        let doc = document();
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{doc}"
        );
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_document_holds_every_route_of_the_router_and_nothing_else() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = super::super::table()
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn keyed_operations_get_the_shared_answers_and_open_ones_no_key() {
        let doc = document();
        let op = &doc["paths"]["/v1/balance"]["get"];
        assert_eq!(
            op["security"],
            serde_json::json!([{"ApiKey": []}, {"Bearer": []}])
        );
        for status in ["401", "403", "429", "500"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{status}"
            );
        }
        assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
        let open = &doc["paths"]["/healthz"]["get"];
        assert!(open.get("security").is_none(), "{open}");
        assert!(open["responses"].get("401").is_none(), "{open}");
        assert!(
            doc.get("security").is_none(),
            "no document-wide requirement is left"
        );
        // An operation's own 429 is kept (the create's names `too_many_tasks` too).
        let create = &doc["paths"]["/v1/tasks"]["post"]["responses"]["429"]["description"];
        assert!(
            create
                .as_str()
                .is_some_and(|d| d.contains("too_many_tasks")),
            "{create}"
        );
    }
}
