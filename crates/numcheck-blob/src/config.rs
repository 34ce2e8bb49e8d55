//! Parsing of blob store URLs (`file://`, plain paths, `s3://`).
//!
//! Error messages name the offending parameter but never echo a value, since values may be
//! credentials.

use std::path::PathBuf;

use object_store::aws::AmazonS3Builder;
use object_store::signer::Url;

use crate::{BlobError, Result};

/// What a blob store URL asks for.
pub(crate) enum Parsed {
    /// A local folder.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// The settings of an `s3://` URL. Deliberately not `Debug`: it holds secrets.
pub(crate) struct S3Config {
    pub(crate) bucket: String,
    pub(crate) prefix: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<String>,
    pub(crate) session_token: Option<String>,
    pub(crate) allow_http: Option<bool>,
}

impl S3Config {
    /// A description without credentials, for `Debug` output.
    pub(crate) fn label(&self) -> String {
        let mut label = format!("s3://{}", self.bucket);
        if let Some(prefix) = &self.prefix {
            label.push('/');
            label.push_str(prefix);
        }
        if let Some(endpoint) = &self.endpoint {
            label.push_str(" at ");
            label.push_str(endpoint);
        }
        label
    }

    /// The `object_store` builder: the standard AWS environment first, then the URL's
    /// settings on top.
    pub(crate) fn builder(&self) -> AmazonS3Builder {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&self.bucket);
        if let Some(endpoint) = &self.endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(region) = &self.region {
            b = b.with_region(region);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            b = b.with_token(token);
        }
        if let Some(allow) = self.allow_http {
            b = b.with_allow_http(allow);
        }
        b
    }
}

fn invalid(msg: impl Into<String>) -> BlobError {
    BlobError::InvalidUrl(msg.into())
}

/// Parses a blob store URL; see [`crate::BlobStore::from_url`] for the syntax.
pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let input = input.trim();
    if input.is_empty() {
        return Err(invalid("empty"));
    }
    if !input.contains("://") {
        return Ok(Parsed::Local(PathBuf::from(input)));
    }
    // The URL text itself may hold a secret, so parse errors do not repeat it.
    let url = Url::parse(input).map_err(|e| invalid(format!("not a URL ({e})")))?;
    match url.scheme() {
        "file" => parse_file(&url),
        "s3" => parse_s3(&url),
        other => Err(invalid(format!(
            "unsupported scheme {other:?} (expected file:// or s3://)"
        ))),
    }
}

fn parse_file(url: &Url) -> Result<Parsed> {
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a file:// URL takes no query or fragment"));
    }
    match url.host_str() {
        None | Some("") | Some("localhost") => {}
        Some(_) => {
            return Err(invalid(
                "a file:// URL must name a local path (file:///path)",
            ));
        }
    }
    let path = url
        .to_file_path()
        .map_err(|()| invalid("a file:// URL must name an absolute path"))?;
    Ok(Parsed::Local(path))
}

fn parse_s3(url: &Url) -> Result<Parsed> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "put S3 credentials in access_key_id/secret_access_key parameters, not user:password@",
        ));
    }
    if url.port().is_some() {
        return Err(invalid(
            "the s3:// host is the bucket name; give the server in endpoint=",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("an s3:// URL takes no fragment"));
    }
    let bucket = match url.host_str() {
        Some(b) if !b.is_empty() => b.to_owned(),
        _ => return Err(invalid("an s3:// URL must name a bucket (s3://bucket)")),
    };
    let prefix = {
        let trimmed = url.path().trim_matches('/');
        if trimmed.is_empty() {
            None
        } else {
            let decoded = percent_decode(trimmed)?;
            Some(decoded)
        }
    };
    let mut cfg = S3Config {
        bucket,
        prefix,
        endpoint: None,
        region: None,
        access_key_id: None,
        secret_access_key: None,
        session_token: None,
        allow_http: None,
    };
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "endpoint" => &mut cfg.endpoint,
            "region" => &mut cfg.region,
            "access_key_id" => &mut cfg.access_key_id,
            "secret_access_key" => &mut cfg.secret_access_key,
            "session_token" => &mut cfg.session_token,
            "allow_http" => {
                if cfg.allow_http.is_some() {
                    return Err(invalid("parameter allow_http given twice"));
                }
                cfg.allow_http = Some(match value.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(invalid("allow_http must be true or false")),
                });
                continue;
            }
            other => {
                return Err(invalid(format!(
                    "unknown parameter {other:?} (known: endpoint, region, access_key_id, \
                     secret_access_key, session_token, allow_http)"
                )));
            }
        };
        if slot.is_some() {
            return Err(invalid(format!("parameter {key} given twice")));
        }
        if value.is_empty() {
            return Err(invalid(format!("parameter {key} is empty")));
        }
        *slot = Some(value.into_owned());
    }
    if cfg.access_key_id.is_some() != cfg.secret_access_key.is_some() {
        return Err(invalid(
            "access_key_id and secret_access_key must be given together",
        ));
    }
    if let Some(endpoint) = &cfg.endpoint {
        let parsed =
            Url::parse(endpoint).map_err(|e| invalid(format!("endpoint is not a URL ({e})")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if cfg.allow_http == Some(true) => {}
            "http" => {
                return Err(invalid(
                    "endpoint uses plain http://; add allow_http=true to permit it",
                ));
            }
            other => {
                return Err(invalid(format!(
                    "endpoint scheme {other:?} is not http or https"
                )));
            }
        }
    }
    Ok(Parsed::S3(cfg))
}

/// Decodes `%XX` escapes in a path prefix.
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("bad %-escape in the bucket prefix"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("the bucket prefix is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn s3(input: &str) -> S3Config {
        match parse(input) {
            Ok(Parsed::S3(cfg)) => cfg,
            Ok(Parsed::Local(p)) => panic!("expected s3, got local {}", p.display()),
            Err(e) => panic!("expected s3, got error {e}"),
        }
    }

    fn err(input: &str) -> String {
        match parse(input) {
            Err(BlobError::InvalidUrl(msg)) => msg,
            Err(e) => panic!("expected InvalidUrl for {input}, got {e}"),
            Ok(_) => panic!("expected an error for {input}"),
        }
    }

    #[test]
    fn local_paths_and_file_urls() {
        assert!(
            matches!(parse("/srv/blobs"), Ok(Parsed::Local(p)) if p == Path::new("/srv/blobs"))
        );
        assert!(
            matches!(parse("data/blobs"), Ok(Parsed::Local(p)) if p == Path::new("data/blobs"))
        );
        assert!(
            matches!(parse("file:///srv/my%20blobs"), Ok(Parsed::Local(p)) if p == Path::new("/srv/my blobs"))
        );
        assert!(
            matches!(parse("file://localhost/srv/b"), Ok(Parsed::Local(p)) if p == Path::new("/srv/b"))
        );
        assert!(err("file://otherhost/srv/b").contains("local path"));
        assert!(err("file:///srv/b?x=1").contains("no query"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn s3_urls() {
        let cfg = s3(
            "s3://results?endpoint=http://127.0.0.1:9000&region=eu-west-1&allow_http=true\
             &access_key_id=AK&secret_access_key=S%2Bcret",
        );
        assert_eq!(cfg.bucket, "results");
        assert_eq!(cfg.prefix, None);
        assert_eq!(cfg.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(cfg.region.as_deref(), Some("eu-west-1"));
        assert_eq!(cfg.access_key_id.as_deref(), Some("AK"));
        assert_eq!(cfg.secret_access_key.as_deref(), Some("S+cret"));
        assert_eq!(cfg.allow_http, Some(true));
        assert!(!cfg.label().contains("S+cret"));

        let cfg = s3("s3://results/numcheck/prod/");
        assert_eq!(cfg.prefix.as_deref(), Some("numcheck/prod"));
        assert_eq!(cfg.endpoint, None);
        assert_eq!(cfg.label(), "s3://results/numcheck/prod");
    }

    #[test]
    fn bad_s3_urls_are_refused_without_echoing_secrets() {
        assert!(err("s3://").contains("bucket"));
        assert!(err("s3://b?endpoint=http://127.0.0.1:9000").contains("allow_http"));
        assert!(err("s3://b?endpoint=ftp://x").contains("not http"));
        assert!(err("s3://b?regoin=us-east-1").contains("regoin"));
        assert!(err("s3://b?region=a&region=b").contains("twice"));
        assert!(err("s3://b?allow_http=maybe").contains("true or false"));
        let msg = err("s3://b?access_key_id=AK");
        assert!(msg.contains("together"));
        let msg = err("s3://b?secret_access_key=hunter2");
        assert!(!msg.contains("hunter2"));
        let msg = err("s3://AK:hunter2@b");
        assert!(!msg.contains("hunter2"));
        assert!(err("s3://b:9000").contains("endpoint="));
        assert!(err("gs://b").contains("unsupported scheme"));
    }
}
