//! `GET /openapi.json` against the running server: an OpenAPI 3 document that lists every
//! route the router answers (and no other), answers every error with the one error schema,
//! and describes real answers exactly. (That the document holds the router's own route table,
//! and that the forms are read by their documented fields, is checked inside the crate.)

use std::collections::BTreeSet;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every operation of the router. A route added to `routes/mod.rs` must be added here and to
/// the document; the tests below fail until both agree with the router.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/assets/{file}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/readyz"),
    ("POST", "/v1/evidence"),
    ("GET", "/v1/balance"),
    ("GET", "/v1/callback-secret"),
    ("POST", "/v1/callback-secret/rotate"),
    ("POST", "/v1/gettasks"),
    ("GET", "/v1/results/{file}"),
    ("GET", "/v1/tasks"),
    ("POST", "/v1/tasks"),
    ("POST", "/v1/tasks/preview"),
    ("GET", "/v1/tasks/{id}"),
    ("GET", "/v1/tasks/{id}/rows"),
    ("DELETE", "/v1/tasks/{id}"),
    ("POST", "/v1/tasks/{id}/cancel"),
    ("GET", "/v1/webhooks/{format}/{source}"),
    ("POST", "/v1/webhooks/{format}/{source}"),
];

/// Operations that take no API key: probes, the document, the dashboard's files, signed
/// result links and webhooks (which carry their source's token).
const PUBLIC: &[&str] = &[
    "/",
    "/assets/{file}",
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/readyz",
    "/v1/results/{file}",
    "/v1/webhooks/{format}/{source}",
];

async fn document(s: &TestServer) -> Value {
    let resp = s.request(Method::GET, "/openapi.json", None).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
            ) {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete URL for a documented path: real values where a route needs one to answer.
fn concrete(path: &str) -> String {
    path.replace(
        "{file}",
        if path.starts_with("/assets") {
            "app.js"
        } else {
            "dc65llqjueqqln83s25g.zip"
        },
    )
    .replace("{id}", "dc65llqjueqqln83s25g")
    .replace("{format}", "kannel")
    .replace("{source}", "smsc-1")
}

#[tokio::test]
async fn openapi_json_is_an_openapi_3_document_named_for_this_build() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "numcheck");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(!doc["info"]["description"].as_str().unwrap().is_empty());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKey"]["in"], "header");
    assert_eq!(schemes["ApiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["SourceToken"]["name"], "X-Numcheck-Token");
    s.stop().await;
}

#[tokio::test]
async fn every_route_of_the_router_is_documented_and_nothing_else() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let listed: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented(&doc), listed, "the document against OPERATIONS");
    let paths: BTreeSet<String> = listed.iter().map(|(_, p)| p.clone()).collect();

    // Each listed operation answers (not the router's fallbacks), and on every path each
    // method that is not listed is refused with 405: a route that answers is documented.
    for path in &paths {
        let concrete = concrete(path);
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let resp = s
                .request(method.clone(), &concrete, Some(&s.admin_key))
                .send();
            let resp = resp.await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or_else(|_| json!({"error": null}));
            let fallback = matches!(
                body["error"].as_str(),
                Some("not_found" | "method_not_allowed")
            );
            if listed.contains(&(method.to_string(), path.clone())) {
                assert!(
                    !fallback,
                    "{method} {path} is documented but the router does not answer it: {status} {body}"
                );
            } else {
                assert_eq!(
                    (status, body["error"].as_str()),
                    (405, Some("method_not_allowed")),
                    "{method} {path} answers but is not documented: {body}"
                );
            }
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn every_error_answer_is_the_error_schema_and_keys_are_asked_for_where_needed() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error", "message"]), "{error}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                let code: u16 = status.parse().unwrap();
                // `/readyz` answers its own body with 503: probes read `status`.
                if code >= 400 && path != "/readyz" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| d.contains('`')),
                        "{method} {path} {status}: the description names the error codes"
                    );
                }
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success answer"
            );
            let public = PUBLIC.contains(&path.as_str());
            let security = op["security"].as_array().cloned().unwrap_or_default();
            if public {
                assert!(
                    !security.iter().any(|r| r.get("ApiKey").is_some()),
                    "{method} {path} needs no API key"
                );
            } else {
                assert!(
                    security.iter().any(|r| r.get("ApiKey").is_some())
                        && security.iter().any(|r| r.get("Bearer").is_some()),
                    "{method} {path} takes the API key"
                );
                for status in ["401", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} documents {status}"
                    );
                }
            }
        }
    }
    assert_eq!(
        doc["paths"]["/v1/webhooks/{format}/{source}"]["post"]["security"],
        json!([{"SourceToken": []}])
    );
    s.stop().await;
}

/// Validates answers against the document's schema for one operation and status.
struct Schemas {
    doc: Value,
}

impl Schemas {
    fn check(&self, method: &str, path: &str, got: &(u16, Value)) {
        let (status, body) = got;
        let response =
            &self.doc["paths"][path][method.to_ascii_lowercase()]["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which is not documented: {body}"
        );
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {path} {status}: no JSON schema"
        );
        // The operation's schema with the document's components beside it, so that
        // `#/components/schemas/…` resolves.
        let mut root = schema.clone();
        let root_obj = root.as_object_mut().unwrap();
        root_obj.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root_obj.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{method} {path} {status}: a bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match its schema: {errors:?}\n{body}"
        );
    }
}

/// Sends `method path` (with the key and multipart form when given) and checks the answer
/// against the schema documented for `method documented` and its status; returns it.
async fn checked(
    s: &TestServer,
    schemas: &Schemas,
    (method, documented, path): (Method, &str, &str),
    key: Option<&str>,
    form: Option<Form>,
) -> (u16, Value) {
    let mut req = s.request(method.clone(), path, key);
    if let Some(f) = form {
        req = req.multipart(f);
    }
    let got = json(req.send().await.unwrap()).await;
    schemas.check(method.as_str(), documented, &got);
    got
}

#[tokio::test]
async fn real_answers_match_the_documented_schemas() {
    let s = TestServer::start().await;
    let schemas = Schemas {
        doc: document(&s).await,
    };
    let sc = &schemas;
    let key = s.key("schema", Some(1000)).await;
    let k = Some(key.as_str());

    // Create, poll until exported, list, detail: the task in each of its views.
    let created = s
        .create(&key, b"+14155552671\n+44 7911 123456\nnot a number\n")
        .await;
    schemas.check("POST", "/v1/tasks", &created);
    let id = created.1["task_id"].as_str().unwrap().to_owned();
    let exported = s.wait(&key, &id).await;
    assert_eq!(exported["status"], "exported");
    schemas.check("POST", "/v1/gettasks", &(200, exported));
    let list = (Method::GET, "/v1/tasks", "/v1/tasks?limit=5");
    checked(&s, sc, list, k, None).await;
    let task = format!("/v1/tasks/{id}");
    let detail = checked(&s, sc, (Method::GET, "/v1/tasks/{id}", &task), k, None).await;
    assert!(detail.1["summary"].is_object(), "{}", detail.1);

    // A task that is still open, cancelled, then deleted.
    let number_info = file_form(b"+14155552671\n").text("task_type", "number_info");
    let open = s.create_form(&key, number_info, None).await;
    schemas.check("POST", "/v1/tasks", &open);
    let open_id = open.1["task_id"].as_str().unwrap().to_owned();
    let cancel = format!("/v1/tasks/{open_id}/cancel");
    let cancel = (Method::POST, "/v1/tasks/{id}/cancel", cancel.as_str());
    let cancelled = checked(&s, sc, cancel, k, None).await;
    // It may have finished first: both answers are documented.
    assert!(matches!(cancelled.0, 200 | 409), "{}", cancelled.1);
    let delete = format!("/v1/tasks/{open_id}");
    checked(&s, sc, (Method::DELETE, "/v1/tasks/{id}", &delete), k, None).await;

    // The account.
    let balance = (Method::GET, "/v1/balance", "/v1/balance");
    let balance = checked(&s, sc, balance, k, None).await;
    assert!(!balance.1["ledger"].as_array().unwrap().is_empty());
    for (method, path) in [
        (Method::GET, "/v1/callback-secret"),
        (Method::POST, "/v1/callback-secret/rotate"),
    ] {
        checked(&s, sc, (method, path, path), k, None).await;
    }

    // A preview of a text file and of a CSV.
    for (name, body) in [
        ("numbers.txt", &b"+14155552671\n+447911123456\n"[..]),
        ("leads.csv", &b"Name,Phone\nAnn,+44 7700 900123\n"[..]),
    ] {
        let form = Form::new().part("file", Part::bytes(body.to_vec()).file_name(name));
        let preview = (Method::POST, "/v1/tasks/preview", "/v1/tasks/preview");
        checked(&s, sc, preview, k, Some(form)).await;
    }

    // Evidence, with the admin key (it may ingest).
    let evidence = "{\"number\":\"+14155552671\"}\n".to_owned();
    let evidence = s
        .post_evidence(&s.admin_key, "application/x-ndjson", evidence)
        .await;
    schemas.check("POST", "/v1/evidence", &evidence);

    // Probes.
    for path in ["/healthz", "/readyz"] {
        checked(&s, sc, (Method::GET, path, path), None, None).await;
    }

    // Error bodies, each under its documented status.
    let no_file = Form::new().text("task_type", "active_check");
    let unknown_id = Form::new().text("task_id", "dc65llqjueqqln83s25g");
    for (method, documented, path, key, form, status) in [
        (Method::POST, "/v1/tasks", "/v1/tasks", None, None, 401),
        (
            Method::POST,
            "/v1/tasks",
            "/v1/tasks",
            k,
            Some(no_file),
            400,
        ),
        (
            Method::POST,
            "/v1/gettasks",
            "/v1/gettasks",
            k,
            Some(unknown_id),
            404,
        ),
        (Method::GET, "/v1/tasks", "/v1/tasks?limit=0", k, None, 400),
        (Method::POST, "/v1/evidence", "/v1/evidence", k, None, 403),
        (
            Method::GET,
            "/v1/results/{file}",
            "/v1/results/x.zip",
            None,
            None,
            403,
        ),
    ] {
        let got = checked(&s, sc, (method.clone(), documented, path), key, form).await;
        assert_eq!(got.0, status, "{method} {documented}: {}", got.1);
    }
    s.stop().await;
}
