//! One typed configuration, layered: defaults → `numcheck.toml` → `NUMCHECK_*` environment →
//! command-line flags. Validated before any port is bound. Unknown keys in the file are an
//! error; unknown `NUMCHECK_*` variables are reported as warnings (a typo should not be
//! silently ignored). Secrets never appear in `Debug` output or logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod sections;

pub use sections::{
    CallbackConfig, LimitsConfig, LookupConfig, ProviderConfig, SourceConfig, parse_region,
    validate_sources,
};

/// Environment variables that name the configuration rather than configure.
const META_VARS: &[&str] = &["NUMCHECK_CONFIG", "NUMCHECK_API_KEY", "NUMCHECK_LOG"];

/// The service configuration. `Debug` hides credentials in `database_url` and `blob_url`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Folder for the SQLite database, blobs and the link-signing secret.
    pub data_dir: PathBuf,
    /// A shared database instead of the folder's SQLite file: `postgres://user@host/db`.
    /// Several nodes (`serve` and `worker`) may then share it.
    pub database_url: Option<String>,
    /// A shared blob store instead of the folder's `blobs/`:
    /// `s3://bucket?endpoint=http://host:port&region=…`. Result links become presigned URLs.
    pub blob_url: Option<String>,
    /// Base of `result_url` (scheme, host, optional port and path prefix). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Largest accepted upload, in bytes. Bigger uploads get 413.
    pub max_upload_bytes: u64,
    /// Largest accepted `.xlsx` upload, in bytes (the workbook is read with its shared
    /// strings in memory, and may unpack to 16 times this). Bigger workbooks get 413.
    pub max_xlsx_bytes: u64,
    /// Largest accepted evidence body on `POST /v1/evidence`, in bytes.
    pub max_evidence_bytes: u64,
    /// How long a minted result link stays valid, in seconds.
    pub result_link_ttl_secs: u64,
    /// Log output: `text` or `json`.
    pub log_format: LogFormat,
    pub worker: WorkerConfig,
    /// The verdict policy (weights, half-lives, thresholds).
    pub policy: numcheck_core::Policy,
    /// Code-table overrides: table name → CSV file (`code,class,meaning`) layered over the
    /// shipped table of that name, or a new table (a route's own `err:` table).
    pub codes: std::collections::BTreeMap<String, PathBuf>,
    /// Evidence sources: who may call `/v1/webhooks/…`, and how their codes are read.
    pub sources: Vec<SourceConfig>,
    /// Live lookups: providers, limits, budgets.
    pub lookup: LookupConfig,
    /// Completion notices (`callback_url`): address policy, timeouts, retries.
    pub callbacks: CallbackConfig,
    /// Per-key request rates, open tasks per user, upload stalls.
    pub limits: LimitsConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("blob_url", &self.blob_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_evidence_bytes", &self.max_evidence_bytes)
            .field("result_link_ttl_secs", &self.result_link_ttl_secs)
            .field("log_format", &self.log_format)
            .field("worker", &self.worker)
            .field("codes", &self.codes)
            .field("sources", &self.sources)
            .field("lookup", &self.lookup)
            .field("callbacks", &self.callbacks)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A URL with its password and its query (where S3 credentials go) replaced.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, _)) => (b, "?<redacted>"),
        None => (url, ""),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:<redacted>{}", &base[..scheme + 3], &base[at..])
        }
        _ => base.to_owned(),
    };
    format!("{base}{query}")
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The in-process workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Worker tasks in this process (0: API only). Default: one per CPU core.
    pub concurrency: usize,
    /// Non-blank lines per chunk: the unit of progress and of work lost in a crash.
    pub chunk_lines: usize,
    /// How long a claimed chunk stays leased to a worker, in seconds.
    pub lease_secs: u64,
    /// Tasks of at most this many lines are processed at once by the node that took them (when
    /// it runs workers), at the API's priority, instead of queueing for the workers (0: never).
    pub small_task_lines: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./numcheck-data"),
            database_url: None,
            blob_url: None,
            public_url: None,
            max_upload_bytes: 256 * 1024 * 1024,
            max_xlsx_bytes: 100 * 1024 * 1024,
            max_evidence_bytes: 4 * 1024 * 1024 * 1024,
            result_link_ttl_secs: 24 * 3600,
            log_format: LogFormat::Text,
            worker: WorkerConfig::default(),
            policy: numcheck_core::Policy::default(),
            codes: Default::default(),
            sources: Vec::new(),
            lookup: Default::default(),
            callbacks: Default::default(),
            limits: Default::default(),
        }
    }
}

impl WorkerConfig {
    /// [`WorkerConfig::lease_secs`] in milliseconds.
    pub fn lease_ms(&self) -> i64 {
        (self.lease_secs * 1000) as i64
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            // One more than the cores: each chunk waits on the blob store and a database commit,
            // and a spare worker keeps the cores busy meanwhile (measured: 1.5 s instead of
            // 2.4 s for 1M lines on 2 cores).
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get() + 1)
                .unwrap_or(3),
            chunk_lines: 50_000,
            lease_secs: 60,
            small_task_lines: 10_000,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The result of loading: the configuration and warnings to show once logging is set up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads the layers. `file` is the config file to read: when `None`, `numcheck.toml` in
    /// the working directory is read if it exists. `flags` holds only the flags that were set.
    pub fn load(file: Option<&Path>, flags: impl Serialize) -> Result<Loaded, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new("numcheck.toml").exists() => {
                figment = figment.merge(Toml::file_exact("numcheck.toml"));
            }
            None => {}
        }
        let env = Env::prefixed("NUMCHECK_").split("__").filter(|k| {
            !META_VARS
                .iter()
                .any(|m| k.as_str().eq_ignore_ascii_case(&m[9..]))
        });
        figment = figment.merge(env).merge(Serialized::defaults(flags));
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        config.load_policy_files()?;
        Ok(Loaded {
            config,
            warnings: unknown_env_vars(),
        })
    }

    /// Reads the files the policy names: a calibration (`policy.calibration_file`, replacing
    /// the shipped one) and reuse periods (`policy.reuse_periods_file`, layered over the
    /// shipped table). A file that cannot be read, is malformed, or holds a curve that goes
    /// down is refused here, at start, with its name.
    pub fn load_policy_files(&mut self) -> Result<(), ConfigError> {
        let read = |path: &str, what: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Invalid(format!("policy.{what} {path:?}: {e}")))
        };
        if let Some(path) = self.policy.calibration_file.clone() {
            let text = read(&path, "calibration_file")?;
            self.policy.calibration = numcheck_core::calibration::Calibration::parse(&text)
                .map_err(|e| {
                    ConfigError::Invalid(format!("policy.calibration_file {path:?}: {e}"))
                })?;
        }
        if let Some(path) = self.policy.reuse_periods_file.clone() {
            let text = read(&path, "reuse_periods_file")?;
            let mut table = numcheck_core::reuse::ReuseTable::shipped();
            table.overlay(&text).map_err(|e| {
                ConfigError::Invalid(format!(
                    "policy.reuse_periods_file {path:?}: line {}: {}",
                    e.line, e.reason
                ))
            })?;
            self.policy.reuse = table;
        }
        Ok(())
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "public_url {url:?} must start with http:// or https://"
            )));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database_url must be a postgres:// URL (leave it out for the folder's SQLite)"
                    .into(),
            ));
        }
        if let Some(url) = &self.blob_url
            && !url.starts_with("s3://")
        {
            return Err(ConfigError::Invalid(
                "blob_url must be an s3://bucket?endpoint=… URL (leave it out for the folder's blobs/)".into(),
            ));
        }
        if self.max_upload_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_upload_bytes must be above 0".into(),
            ));
        }
        if self.max_xlsx_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_xlsx_bytes must be above 0".into(),
            ));
        }
        if self.worker.chunk_lines == 0 {
            return Err(ConfigError::Invalid(
                "worker.chunk_lines must be above 0".into(),
            ));
        }
        if self.worker.lease_secs == 0 {
            return Err(ConfigError::Invalid(
                "worker.lease_secs must be above 0".into(),
            ));
        }
        self.policy.validate().map_err(ConfigError::Invalid)?;
        validate_sources(&self.sources).map_err(ConfigError::Invalid)?;
        self.lookup.validate().map_err(ConfigError::Invalid)?;
        if self.result_link_ttl_secs == 0 {
            return Err(ConfigError::Invalid(
                "result_link_ttl_secs must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// Every `NUMCHECK_*` name the configuration reads, taken from the serialised defaults so a
/// new setting can never be missing here: nested tables join with `__`
/// (`NUMCHECK_LIMITS__BURST`). A setting whose default is a list, an empty table or absent
/// also owns the names below it (`NUMCHECK_CODES__<TABLE>`).
fn known_env_keys() -> Vec<(String, bool)> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, bool)>) {
        match value {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    walk(&format!("{prefix}__{}", k.to_ascii_uppercase()), v, out);
                }
            }
            serde_json::Value::Object(_)
            | serde_json::Value::Array(_)
            | serde_json::Value::Null => out.push((prefix.to_owned(), true)),
            _ => out.push((prefix.to_owned(), false)),
        }
    }
    let mut keys = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(Config::default()) {
        for (k, v) in &map {
            walk(
                &format!("NUMCHECK_{}", k.to_ascii_uppercase()),
                v,
                &mut keys,
            );
        }
    }
    keys.extend(META_VARS.iter().map(|s| (s.to_string(), false)));
    keys
}

fn is_known_env_key(known: &[(String, bool)], key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    known.iter().any(|(name, owns_below)| {
        key == *name
            || (*owns_below
                && key
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with("__")))
    })
}

fn unknown_env_vars() -> Vec<String> {
    let known = known_env_keys();
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.to_ascii_uppercase().starts_with("NUMCHECK_"))
        .filter(|k| !is_known_env_key(&known, k))
        .map(|k| format!("ignoring unknown environment variable {k}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_hides_database_and_bucket_credentials() {
        let c = Config {
            database_url: Some("postgres://numcheck:hunter2@db:5432/numcheck".into()),
            blob_url: Some("s3://b?endpoint=http://s3&secret_access_key=topsecret".into()),
            ..Config::default()
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("topsecret"),
            "{text}"
        );
        assert!(
            text.contains("postgres://numcheck:<redacted>@db:5432/numcheck"),
            "{text}"
        );
        assert!(text.contains("s3://b?<redacted>"), "{text}");
    }

    use super::*;

    #[derive(Serialize)]
    struct NoFlags {}

    #[test]
    fn every_setting_is_a_known_environment_name_and_typos_are_not() {
        let known = known_env_keys();
        for name in [
            "NUMCHECK_LISTEN",
            "numcheck_data_dir",
            "NUMCHECK_WORKER__CHUNK_LINES",
            "NUMCHECK_LIMITS__REQUESTS_PER_SECOND",
            "NUMCHECK_LIMITS__MAX_UPLOAD_LINES",
            "NUMCHECK_CALLBACKS__ALLOW_PRIVATE",
            "NUMCHECK_CALLBACKS__TIMEOUT_SECS",
            "NUMCHECK_CODES__SMPP",
            "NUMCHECK_API_KEY",
        ] {
            assert!(is_known_env_key(&known, name), "{name}");
        }
        for name in [
            "NUMCHECK_LISTN",
            "NUMCHECK_LIMITS__BURSTS",
            "NUMCHECK_LIMITS",
            "NUMCHECK_CALLBACKS__TIMEOUT_SECS__X",
            "NUMCHECK_LISTENER",
            "NUMCHECK_API_KEY__X",
        ] {
            assert!(!is_known_env_key(&known, name), "{name}");
        }
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./numcheck-data"));
        assert_eq!(c.max_upload_bytes, 268_435_456);
        assert_eq!(c.max_xlsx_bytes, 104_857_600);
        assert_eq!(c.result_link_ttl_secs, 86_400);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_example_config_file_parses_and_flags_win_over_the_file() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../numcheck.example.toml");
        #[derive(Serialize)]
        struct Flags {
            listen: &'static str,
        }
        let loaded = Config::load(
            Some(Path::new(example)),
            Flags {
                listen: "127.0.0.1:9999",
            },
        )
        .expect("the shipped example must load");
        assert_eq!(loaded.config.listen.to_string(), "127.0.0.1:9999");
    }

    #[test]
    fn unknown_keys_in_a_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(Some(&path), NoFlags {}).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn invalid_values_are_refused_before_start() {
        let c = Config {
            public_url: Some("ftp://x".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.worker.chunk_lines = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/numcheck.toml")), NoFlags {}).is_err());
    }
}
