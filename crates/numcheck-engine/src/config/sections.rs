//! The sections of the configuration that have more to them than a value or two: live
//! lookups (`[lookup]`), completion notices (`[callbacks]`), request limits (`[limits]`) and
//! evidence sources (`[[sources]]`). Each carries its defaults and the checks the types cannot
//! make; the code that uses a section imports it from here.

use numcheck_core::RegionCode;
use numcheck_core::connectors::ConnectorFormat;
use numcheck_lookup::guard::Limits;
use serde::{Deserialize, Serialize};

/// `[lookup]` in config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookupConfig {
    /// Whether a task looks numbers up when its form does not say (`live_lookup`).
    pub enabled_by_default: bool,
    /// A task's lookup budget when its form does not say (`max_lookups`).
    pub max_lookups_per_task: u64,
    /// A number asked within this many days is not asked again (`max_age_days`).
    pub max_age_days: u32,
    /// Providers, asked in this order; a number one answers is not asked of the next.
    pub providers: Vec<ProviderConfig>,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig {
            enabled_by_default: false,
            max_lookups_per_task: 10_000,
            max_age_days: 30,
            providers: Vec::new(),
        }
    }
}

/// One provider: exactly one of `http` and `osmo_hlr`, and its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    #[serde(default)]
    pub http: Option<numcheck_lookup::http::HttpProviderConfig>,
    #[serde(default)]
    pub osmo_hlr: Option<numcheck_lookup::osmo::OsmoHlrConfig>,
    #[serde(default)]
    pub limits: Limits,
}

impl LookupConfig {
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let name = match (&p.http, &p.osmo_hlr) {
                (Some(h), None) => {
                    h.validate()
                        .map_err(|e| format!("lookup.providers[{i}].http: {e}"))?;
                    h.name.clone()
                }
                // Checked when the provider is built (it may open the HLR's database).
                (None, Some(o)) => o.name.clone(),
                _ => {
                    return Err(format!(
                        "lookup.providers[{i}]: give exactly one of [lookup.providers.http] and [lookup.providers.osmo_hlr]"
                    ));
                }
            };
            p.limits
                .validate()
                .map_err(|e| format!("lookup.providers[{i}].limits: {e}"))?;
            if !names.insert(name.clone()) {
                return Err(format!("lookup.providers: {name:?} is listed twice"));
            }
        }
        if self.max_age_days == 0 {
            return Err("lookup.max_age_days must be above 0".into());
        }
        Ok(())
    }
}

/// How completion notices are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Allow callbacks to loopback and private addresses (a receiver on the same host or LAN).
    pub allow_private: bool,
    /// Per attempt: connect plus answer, in seconds.
    pub timeout_secs: u64,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; each later wait is 4 times longer.
    pub first_retry_ms: u64,
    /// The longest wait between attempts, in milliseconds.
    pub max_retry_ms: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            allow_private: false,
            timeout_secs: 10,
            // 10 s, 40 s, 2.7 min, 11 min, 43 min, 1 h, 1 h: about three hours in all.
            max_attempts: 8,
            first_retry_ms: 10_000,
            max_retry_ms: 3_600_000,
        }
    }
}

impl CallbackConfig {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let factor = 4u64.saturating_pow(attempt.saturating_sub(1));
        self.first_retry_ms
            .saturating_mul(factor)
            .min(self.max_retry_ms)
    }
}

/// The limits, from the config's `[limits]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second per API key (0: no limit).
    pub requests_per_second: u32,
    /// Requests a key may make at once above the sustained rate.
    pub burst: u32,
    /// Tasks a user may have pending or processing at once (0: no limit).
    pub max_open_tasks: u32,
    /// Seconds an upload may stall (no bytes arriving) before it is refused.
    pub upload_idle_secs: u64,
    /// Seconds a connection may take to send a request's headers (and an idle keep-alive
    /// connection may wait for the next request) before it is closed.
    pub header_timeout_secs: u64,
    /// Non-blank lines (rows) an upload may hold (0: no limit).
    pub max_upload_lines: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            requests_per_second: 100,
            burst: 200,
            max_open_tasks: 20,
            upload_idle_secs: 30,
            header_timeout_secs: 10,
            max_upload_lines: 50_000_000,
        }
    }
}

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
pub fn validate_sources(sources: &[SourceConfig]) -> Result<(), String> {
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

#[cfg(test)]
impl SourceConfig {
    /// A source with a valid token and nothing optional set.
    pub(crate) fn for_tests(name: &str, format: &str) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            format: format.into(),
            token: "0123456789abcdef".into(),
            err_table: None,
            default_region: None,
            twilio_auth_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_mistakes_are_named() {
        let cases: Vec<(SourceConfig, &str)> = vec![
            (SourceConfig::for_tests("a b", "kannel"), "must be 1 to 64"),
            (SourceConfig::for_tests("s", "fax"), "unknown format"),
            (SourceConfig::for_tests("s", "freeswitch"), "has no webhook"),
            (
                SourceConfig {
                    token: "short".into(),
                    ..SourceConfig::for_tests("s", "kannel")
                },
                "at least 16",
            ),
            (
                SourceConfig {
                    default_region: Some("Narnia".into()),
                    ..SourceConfig::for_tests("s", "kannel")
                },
                "region code",
            ),
            (
                SourceConfig {
                    twilio_auth_token: Some("x".into()),
                    ..SourceConfig::for_tests("s", "kannel")
                },
                "twilio sources only",
            ),
        ];
        for (c, wanted) in cases {
            let e = validate_sources(&[c]).unwrap_err();
            assert!(e.contains(wanted), "{e}");
        }
        let e = validate_sources(&[
            SourceConfig::for_tests("s", "kannel"),
            SourceConfig::for_tests("s", "jasmin"),
        ])
        .unwrap_err();
        assert!(e.contains("twice"), "{e}");
        assert!(
            validate_sources(&[
                SourceConfig::for_tests("s", "kannel"),
                SourceConfig::for_tests("t", "twilio")
            ])
            .is_ok()
        );
    }
}
