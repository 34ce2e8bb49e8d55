//! Evidence sources: the systems that call numcheck's webhooks (an SMS gateway, a messaging
//! provider) or whose files are imported, each with the token that authenticates it and the
//! tables that read its codes.

use std::collections::HashMap;

use anyhow::Context;
use numcheck_core::RegionCode;
use numcheck_core::connectors::ConnectorFormat;
use numcheck_core::connectors::codebook::{CodeBook, DEFAULT_ERR_TABLE, SourceSpec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One source in config (`[[sources]]`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source's name. With the system's message id it is the identity of an
    /// observation, so keep it stable (renaming a source re-counts re-sent receipts).
    pub name: String,
    /// The webhook it calls: `kannel`, `jasmin`, `twilio`, `vonage` or `infobip`.
    pub format: String,
    /// The shared secret the system sends, as `?token=` or the `X-Numcheck-Token` header.
    pub token: String,
    /// The table that reads SMPP `err:` values on this route (default `map`).
    #[serde(default)]
    pub err_table: Option<String>,
    /// Region of national-format numbers from this source (ISO 3166 code, e.g. `GB`).
    #[serde(default)]
    pub default_region: Option<String>,
    /// Twilio only: the account's auth token. When set, `X-Twilio-Signature` is checked and
    /// callbacks without a valid one are refused.
    #[serde(default)]
    pub twilio_auth_token: Option<String>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("token", &"<redacted>")
            .field("err_table", &self.err_table)
            .field("default_region", &self.default_region)
            .field(
                "twilio_auth_token",
                &self.twilio_auth_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Checks sources as far as config alone can (tables are checked once loaded).
pub fn validate(sources: &[SourceConfig]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for s in sources {
        let name = s.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "sources: name {:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
                s.name
            ));
        }
        if !names.insert(name.to_owned()) {
            return Err(format!("sources: {name:?} is listed twice"));
        }
        let format: ConnectorFormat = s
            .format
            .parse()
            .map_err(|e: String| format!("sources.{name}: {e}"))?;
        if !format.is_webhook() {
            return Err(format!(
                "sources.{name}: {format} has no webhook (import its files with `numcheck evidence import --format {format}`)"
            ));
        }
        if s.token.len() < 16 {
            return Err(format!(
                "sources.{name}: token must be at least 16 characters"
            ));
        }
        if let Some(r) = &s.default_region {
            parse_region(r).map_err(|e| format!("sources.{name}: {e}"))?;
        }
        if s.twilio_auth_token.is_some() && format != ConnectorFormat::Twilio {
            return Err(format!(
                "sources.{name}: twilio_auth_token is for twilio sources only"
            ));
        }
    }
    Ok(())
}

/// A region code from config or a flag.
pub fn parse_region(text: &str) -> Result<RegionCode, String> {
    text.trim()
        .parse::<RegionCode>()
        .map_err(|_| format!("default_region {text:?} is not a region code such as GB or US"))
}

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
        validate(config).map_err(anyhow::Error::msg)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, format: &str) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            format: format.into(),
            token: "0123456789abcdef".into(),
            err_table: None,
            default_region: None,
            twilio_auth_token: None,
        }
    }

    #[test]
    fn config_mistakes_are_named() {
        let cases: Vec<(SourceConfig, &str)> = vec![
            (source("a b", "kannel"), "must be 1 to 64"),
            (source("s", "fax"), "unknown format"),
            (source("s", "freeswitch"), "has no webhook"),
            (
                SourceConfig {
                    token: "short".into(),
                    ..source("s", "kannel")
                },
                "at least 16",
            ),
            (
                SourceConfig {
                    default_region: Some("Narnia".into()),
                    ..source("s", "kannel")
                },
                "region code",
            ),
            (
                SourceConfig {
                    twilio_auth_token: Some("x".into()),
                    ..source("s", "kannel")
                },
                "twilio sources only",
            ),
        ];
        for (c, wanted) in cases {
            let e = validate(&[c]).unwrap_err();
            assert!(e.contains(wanted), "{e}");
        }
        let e = validate(&[source("s", "kannel"), source("s", "jasmin")]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        assert!(validate(&[source("s", "kannel"), source("t", "twilio")]).is_ok());
    }

    #[test]
    fn err_tables_must_exist_and_tokens_match_exactly() {
        let book = CodeBook::shipped();
        let bad = SourceConfig {
            err_table: Some("nope".into()),
            ..source("s", "kannel")
        };
        let e = Sources::build(&[bad], &book).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("map"), "{e}");
        let sources = Sources::build(&[source("s", "kannel")], &book).unwrap();
        let s = sources.get("s").unwrap();
        assert_eq!(s.spec.err_table, "map");
        assert!(s.token_matches("0123456789abcdef"));
        assert!(!s.token_matches("0123456789abcdeF"));
        assert!(!s.token_matches("0123456789abcdef "));
        assert!(!s.token_matches(""));
        let debug = format!("{:?}", source("s", "kannel"));
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
