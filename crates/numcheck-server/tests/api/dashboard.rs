//! The web dashboard's files: served from the binary with the right types, caching and
//! security headers; anything else under `/assets/` is the API's JSON 404.

use reqwest::Method;

use crate::helpers::{TestServer, assert_error, json};

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

fn assert_security_headers(resp: &reqwest::Response) {
    let h = resp.headers();
    assert_eq!(h["content-security-policy"], CSP, "{}", resp.url());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn dashboard_page_and_assets_are_served_with_types_and_security_headers() {
    let s = TestServer::start().await;
    let page = s.request(Method::GET, "/", None).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert_security_headers(&page);
    let html = page.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<html lang=\"en\">"));

    // Every file the page names is served, none from another host.
    let names = regex_lite::Regex::new(r#"(?:src|href)="/assets/([a-z]+\.[a-z]+)""#).unwrap();
    let mut linked: Vec<&str> = names
        .captures_iter(&html)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    linked.sort_unstable();
    linked.dedup();
    assert_eq!(linked, ["app.css", "app.js", "icon.svg"]);
    for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(outside), "{outside}");
    }

    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("dom.js", "text/javascript; charset=utf-8"),
        ("charts.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let path = format!("/assets/{file}");
        let resp = s.request(Method::GET, &path, None).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert_eq!(resp.headers()["content-type"], content_type, "{file}");
        assert_eq!(resp.headers()["cache-control"], "no-cache", "{file}");
        assert_security_headers(&resp);
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(!resp.bytes().await.unwrap().is_empty(), "{file}");

        // A browser revalidating with the ETag gets a bodyless 304.
        let again = s
            .request(Method::GET, &path, None)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert_security_headers(&again);
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // The scripts import only each other, by relative path.
    let app = s.text("/assets/app.js").await;
    for module in ["./api.js", "./charts.js", "./dom.js"] {
        assert!(app.contains(&format!("from '{module}'")), "{module}");
    }
    s.stop().await;
}

#[tokio::test]
async fn dashboard_unknown_asset_is_a_json_404() {
    let s = TestServer::start().await;
    for path in [
        "/assets/nope.js",
        "/assets/index.html",
        "/assets/..%2Fapp.js",
    ] {
        let resp = s.request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        assert_error(json(resp).await, 404, "not_found");
    }
    // The page is read-only: other methods are the API's 405.
    let post = s.call(Method::POST, "/", None).await;
    assert_error(post, 405, "method_not_allowed");
    s.stop().await;
}
