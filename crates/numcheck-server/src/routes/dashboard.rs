//! `GET /` and `GET /assets/{file}`: the web dashboard. Its few files are compiled into the
//! binary, so `numcheck serve` needs nothing beside it and the page always matches the API.
//!
//! The page talks only to this origin: the content security policy allows no inline script or
//! style and no other host, so a server string that slipped into the markup still could not
//! run. Asset names are not content-hashed (no build step), so every response says `no-cache`
//! and carries an ETag: browsers revalidate on each load and get a bodyless 304 when nothing
//! changed.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// One embedded file.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: HeaderValue,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
        let digest = Sha256::digest(body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Asset {
            name,
            content_type,
            body,
            // Hex digits and quotes: always a valid header value.
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        }
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../assets/dashboard/index.html"),
    )
});

/// What `/assets/{file}` serves; anything else is a 404.
static ASSETS: LazyLock<[Asset; 6]> = LazyLock::new(|| {
    const JS: &str = "text/javascript; charset=utf-8";
    [
        Asset::new(
            "app.js",
            JS,
            include_bytes!("../../assets/dashboard/app.js"),
        ),
        Asset::new(
            "api.js",
            JS,
            include_bytes!("../../assets/dashboard/api.js"),
        ),
        Asset::new(
            "dom.js",
            JS,
            include_bytes!("../../assets/dashboard/dom.js"),
        ),
        Asset::new(
            "charts.js",
            JS,
            include_bytes!("../../assets/dashboard/charts.js"),
        ),
        Asset::new(
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/dashboard/app.css"),
        ),
        Asset::new(
            "icon.svg",
            "image/svg+xml",
            include_bytes!("../../assets/dashboard/icon.svg"),
        ),
    ]
});

/// `GET /`: the single page.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "dashboard",
    tag = "dashboard",
    summary = "The web dashboard",
    responses(
        (status = 200, description = "The page (`ETag`, `Cache-Control: no-cache`).", body = String, content_type = "text/html"),
        (status = 304, description = "Not modified: `If-None-Match` named the current `ETag`."),
    ),
    security(()),
)]
pub async fn index(request: HeaderMap) -> Response {
    serve(&INDEX, &request)
}

/// `GET /assets/{file}`: the page's script, style and icon.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    operation_id = "dashboard_asset",
    tag = "dashboard",
    summary = "A dashboard file",
    params(("file" = String, Path, description = "`app.js`, `api.js`, `dom.js`, `charts.js`, `app.css` or `icon.svg`.", example = "app.js")),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"))),
        (status = 304, description = "Not modified: `If-None-Match` named the current `ETag`."),
        (status = 404, description = "`not_found`: no such dashboard file."),
    ),
    security(()),
)]
pub async fn asset(Path(file): Path<String>, request: HeaderMap) -> Result<Response, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or_else(|| ApiError::NotFound {
            code: "not_found",
            message: format!("no such dashboard asset: {file}"),
        })?;
    Ok(serve(asset, &request))
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let mut response = if not_modified(request, &asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether `If-None-Match` names this version (weak comparison, as RFC 9110 asks for GET).
fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_name_and_a_quoted_etag() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        for a in ASSETS.iter().chain(std::iter::once(&*INDEX)) {
            let tag = a.etag.to_str().unwrap_or_default();
            assert!(tag.len() == 26 && tag.starts_with('"') && tag.ends_with('"'));
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = HeaderValue::from_static("\"abc\"");
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(v));
            not_modified(&h, &etag)
        };
        assert!(with("\"abc\""));
        assert!(with("\"x\", W/\"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }
}
