//! Evidence sources: the systems that call numcheck's webhooks (an SMS gateway, a messaging
//! provider) or whose files are imported, each with the token that authenticates it and the
//! tables that read its codes.

use std::collections::HashMap;

use anyhow::Context;
use numcheck_core::connectors::codebook::{CodeBook, DEFAULT_ERR_TABLE, SourceSpec};
use numcheck_core::connectors::{ConnectorFormat, FileOptions};
use sha2::{Digest, Sha256};

use crate::config::{SourceConfig, parse_region, validate_sources};

/// The shipped tables with the configured overrides layered on.
pub fn code_book(
    overrides: &std::collections::BTreeMap<String, std::path::PathBuf>,
) -> anyhow::Result<CodeBook> {
    let mut book = CodeBook::shipped();
    for (name, path) in overrides {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("codes.{name}: cannot read {}", path.display()))?;
        book.overlay(name, &text)
            .map_err(|e| anyhow::anyhow!("codes.{name} ({}): {e}", path.display()))?;
    }
    Ok(book)
}

/// A configured source, ready to use.
#[derive(Debug, Clone)]
pub struct Source {
    pub spec: SourceSpec,
    pub format: ConnectorFormat,
    token_digest: [u8; 32],
    pub twilio_auth_token: Option<String>,
}

impl Source {
    /// Whether `token` is this source's, compared in constant time (over digests, so the
    /// length of the secret does not show either).
    pub fn token_matches(&self, token: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        d.iter()
            .zip(&self.token_digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// All configured sources, by name.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    by_name: HashMap<String, Source>,
}

impl Sources {
    pub fn build(config: &[SourceConfig], book: &CodeBook) -> anyhow::Result<Sources> {
        validate_sources(config).map_err(anyhow::Error::msg)?;
        let mut by_name = HashMap::new();
        for c in config {
            let err_table = c
                .err_table
                .clone()
                .unwrap_or_else(|| DEFAULT_ERR_TABLE.to_owned());
            if !book.has_table(&err_table) {
                anyhow::bail!(
                    "sources.{}: err_table {err_table:?} is not a code table (shipped: {}; add one under [codes])",
                    c.name,
                    book.names().join(", ")
                );
            }
            let default_region = c
                .default_region
                .as_deref()
                .map(parse_region)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let format: ConnectorFormat = c.format.parse().map_err(anyhow::Error::msg)?;
            by_name.insert(
                c.name.trim().to_owned(),
                Source {
                    spec: SourceSpec {
                        name: c.name.trim().to_owned(),
                        err_table,
                        default_region,
                    },
                    format,
                    token_digest: Sha256::digest(c.token.as_bytes()).into(),
                    twilio_auth_token: c.twilio_auth_token.clone(),
                },
            );
        }
        Ok(Sources { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Source> {
        self.by_name.get(name)
    }

    /// Every source, by name.
    pub fn all(&self) -> Vec<&Source> {
        let mut all: Vec<&Source> = self.by_name.values().collect();
        all.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        all
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Reads a source spec for `numcheck evidence import` from flags.
pub fn import_spec(
    name: &str,
    err_table: Option<&str>,
    region: Option<&str>,
    book: &CodeBook,
) -> anyhow::Result<SourceSpec> {
    let err_table = err_table.unwrap_or(DEFAULT_ERR_TABLE).to_owned();
    if !book.has_table(&err_table) {
        anyhow::bail!(
            "--err-table {err_table:?} is not a code table (have: {})",
            book.names().join(", ")
        );
    }
    Ok(SourceSpec {
        name: name.to_owned(),
        err_table,
        default_region: region
            .map(parse_region)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    })
}

/// How an import reads its file's times, from the import's parameters (the same for
/// `POST /v1/evidence` and `numcheck evidence import`): `utc_offset` (`+02:00`) for CDR
/// dates, and `assume_time` (`now` or an RFC 3339 time) for records that carry no date of
/// their own. An assumed time more than a day after `now_ms` is refused.
pub fn file_options(
    utc_offset: Option<&str>,
    assume_time: Option<&str>,
    now_ms: i64,
) -> Result<FileOptions, String> {
    let mut options = FileOptions::default();
    if let Some(o) = utc_offset {
        options.utc_offset = numcheck_core::connectors::cdr::parse_utc_offset(o)
            .map_err(|e| format!("utc_offset: {}", e.message))?;
    }
    if let Some(t) = assume_time.map(str::trim) {
        let ms = if t.eq_ignore_ascii_case("now") {
            now_ms
        } else {
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    format!("assume_time {t:?} is neither `now` nor an RFC 3339 time like 2026-11-01T10:00:00Z")
                })?
                .timestamp_millis()
        };
        if ms > now_ms + 86_400_000 {
            return Err(format!(
                "assume_time {t:?} is more than a day in the future"
            ));
        }
        options.assume_time_ms = Some(ms);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_options_read_offsets_and_assumed_times() {
        let now = 1_800_000_000_000;
        let o = file_options(Some("+02:00"), Some("now"), now).unwrap();
        assert_eq!(
            (o.utc_offset.local_minus_utc(), o.assume_time_ms),
            (7200, Some(now))
        );
        let o = file_options(None, Some("2023-08-24T05:01:45Z"), now).unwrap();
        assert_eq!(o.assume_time_ms, Some(1_692_853_305_000));
        assert_eq!(file_options(None, None, now).unwrap().assume_time_ms, None);
        for (offset, time, says) in [
            (None, Some("yesterday"), "assume_time"),
            (None, Some("2099-01-01T00:00:00Z"), "future"),
            (Some("two"), None, "utc_offset"),
        ] {
            let e = file_options(offset, time, now).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn err_tables_must_exist_and_tokens_match_exactly() {
        let book = CodeBook::shipped();
        let bad = SourceConfig {
            err_table: Some("nope".into()),
            ..SourceConfig::for_tests("s", "kannel")
        };
        let e = Sources::build(&[bad], &book).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("map"), "{e}");
        let sources = Sources::build(&[SourceConfig::for_tests("s", "kannel")], &book).unwrap();
        let s = sources.get("s").unwrap();
        assert_eq!(s.spec.err_table, "map");
        assert!(s.token_matches("0123456789abcdef"));
        assert!(!s.token_matches("0123456789abcdeF"));
        assert!(!s.token_matches("0123456789abcdef "));
        assert!(!s.token_matches(""));
        let debug = format!("{:?}", SourceConfig::for_tests("s", "kannel"));
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }

    #[test]
    fn code_overrides_layer_over_shipped_tables_and_name_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("map.csv");
        std::fs::write(&good, "code,class,meaning\n1,neutral,our route says so\n").unwrap();
        let mut overrides = std::collections::BTreeMap::new();
        overrides.insert("map".to_owned(), good);
        let book = code_book(&overrides).unwrap();
        assert_eq!(
            book.lookup("map", "1"),
            Some(numcheck_core::EvidenceClass::Neutral)
        );
        assert!(book.lookup("map", "27").is_some(), "other rows stay");
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "code,class\n1,loud\n").unwrap();
        overrides.insert("mine".to_owned(), bad);
        let e = code_book(&overrides).unwrap_err().to_string();
        assert!(e.contains("codes.mine") && e.contains("line 2"), "{e}");
    }
}
