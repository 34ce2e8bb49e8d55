//! The API's answers as tests read them: a status and a JSON body, and the one error shape.

use serde_json::Value;

/// The answer's status and its body parsed as JSON (panics, showing the body, when it is not).
pub async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("the answer's body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("HTTP {status}: the body is not JSON ({e}): {text:?}"));
    (status, value)
}

/// Asserts an error answer: the status, the stable `error` code, a non-empty `message`, and
/// nothing else in the body.
pub fn assert_error(got: (u16, Value), status: u16, code: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body.as_object().map(serde_json::Map::len),
        Some(2),
        "only error and message: {body}"
    );
}
