//! An HTTP HLR-lookup service as a [`Provider`]: one request per call (GET with the number in
//! a query parameter, or POST with a JSON body carrying one number or a batch), the answer read
//! through a configurable field mapping and turned into the same events as imported HLR files
//! ([`connectivity_event`] / [`live_event`]), so a live answer and a file line are classified
//! alike by the code book.
//!
//! The provider makes exactly one attempt per call and says precisely what went wrong
//! ([`LookupError`]); retries, rate limits and the circuit breaker belong to
//! [`crate::guard`]. The auth value is never logged and never shown by `Debug`.
//!
//! Two presets fill the whole mapping for the common public shapes; see [`Preset`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use numcheck_core::connectors::lists::{connectivity_event, live_event, result_time, unix_ms};
use numcheck_core::{E164, LineType, RegionCode};
use reqwest::StatusCode;
use reqwest::header::{HeaderName, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Answer, LookupError, Provider};

/// The timeout when `timeout_ms` is not set: live HLR queries can take seconds.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The longest timeout accepted (10 minutes).
const MAX_TIMEOUT_MS: u64 = 600_000;
/// The largest answer body read; a bigger one is [`LookupError::Malformed`].
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The HTTP method of a lookup request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum HttpMethod {
    /// `GET`, the number in the query parameter `number_param`.
    #[serde(rename = "GET", alias = "get")]
    Get,
    /// `POST` with a JSON body (`body_number_field` or `numbers_field`).
    #[serde(rename = "POST", alias = "post")]
    Post,
}

/// How numbers are written in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberFormat {
    /// E.164 with the plus: `+447790606023`.
    E164,
    /// International digits without the plus: `447790606023`.
    Digits,
}

/// Which family of statuses the answers carry, and so which code-book table they go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFamily {
    /// hlr-lookups.com-style `connectivity_status` (`CONNECTED`, `ABSENT`, `INVALID_MSISDN`,
    /// `UNDETERMINED`) with a data source: table `hlr_connectivity` via [`connectivity_event`].
    Connectivity,
    /// hlrlookup.com-style `live_status` (`LIVE`, `DEAD`, `ABSENT_SUBSCRIBER`, …): table
    /// `hlr_live` via [`live_event`].
    Live,
}

/// A ready-made request and response shape; explicit fields override what it fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// hlr-lookups.com's synchronous HLR API.
    ///
    /// Confirmed from hlr-lookups.com/en/api-docs and the README of its official SDKs
    /// (github.com/vmgltd/hlr-lookup-api-nodejs-sdk, …-php-sdk): `POST
    /// https://www.hlr-lookups.com/api/v2/hlr-lookup` with a JSON body holding one `msisdn`
    /// in `+E.164`; the answer is a single JSON object with `id`, `msisdn`,
    /// `connectivity_status`, `timestamp` (like `2020-08-07 19:16:17.676+0300`), `error_code`
    /// (null when fine) and `data_source` (`LIVE_HLR` in the example). The batch endpoint
    /// (`POST /hlr-lookups`) is asynchronous, its results are delivered by webhook, so the
    /// preset uses the synchronous single-number endpoint (`batch_size` 1).
    ///
    /// Not covered by the preset: the documented authentication is a per-request digest
    /// (`X-Digest-Key`, `X-Digest-Signature`, `X-Digest-Timestamp`), which one static header
    /// cannot produce; set `auth_header`/`auth_value` to whatever static credential the
    /// account accepts (or front the service with a signing proxy). Unconfirmed: the other
    /// `data_source` values (the code book treats anything without `LIVE`, or with `CACHE`,
    /// as not live).
    Connectivity,
    /// hlrlookup.com's API v2.
    ///
    /// Confirmed from the hlrlookup.com knowledge base (pages `url-structure`,
    /// `http-post-format-json`, `example-request-and-responses`, `http-response-codes`):
    /// `POST https://api.hlrlookup.com/apiv2/hlr` with a JSON body `{"api_key", "api_secret",
    /// "requests": [{"telephone_number": …}, …]}` (credentials in the body: put them in
    /// `body_fields`); the answer is `{"body": {"results": [...]}}`, each result with `error`
    /// (`NONE` when fine), `uuid`, `request_parameters.telephone_number` (the number as sent),
    /// `detected_telephone_number` (international digits), `live_status` and `timestamp`
    /// (RFC 3339); 429 means try again later, 401 bad credentials, 400 a malformed request.
    /// The limit of 80 numbers a request is from hlrlookup.com's official PHP SDK README
    /// (packagist.org/packages/hlrlookup/php-sdk). Numbers are sent as digits (the examples
    /// do; the docs say `+` is also accepted).
    Live,
}

/// One HTTP lookup provider, as configured under `[[lookup.providers]]`.
///
/// Every field but `name` is optional when a `preset` fills it; an explicit field overrides
/// the preset. For the optional mapping fields (`data_source_field`, `time_field`,
/// `id_field`, `error_field`, `numbers_item_field`) an empty string switches a preset value
/// off. Call [`HttpProviderConfig::validate`] (or [`HttpProvider::new`], which does) before
/// use.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderConfig {
    /// The provider's name: the `source` of the observations it yields.
    pub name: String,
    /// A ready-made shape (`connectivity` or `live`) that fills the fields below.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The endpoint, `http://` or `https://`.
    #[serde(default)]
    pub url: Option<String>,
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// The name of the header carrying the credential (e.g. `Authorization`, `X-Api-Key`).
    #[serde(default)]
    pub auth_header: Option<String>,
    /// The credential sent in `auth_header`. Secret: never logged, redacted by `Debug`.
    #[serde(default)]
    pub auth_value: Option<String>,
    /// Fixed string fields added to every POST JSON body (e.g. hlrlookup.com's `api_key` and
    /// `api_secret`). Secret: their values are redacted by `Debug` and never logged.
    #[serde(default)]
    pub body_fields: BTreeMap<String, String>,
    /// How long one call may take, in milliseconds, connection and body included (default
    /// 10000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Most numbers one request may carry (at least 1; 1 when the API has no batch form).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// GET: the query parameter holding the number (several numbers are joined with commas).
    #[serde(default)]
    pub number_param: Option<String>,
    /// POST, one number a request: the body is `{"<body_number_field>": "<number>"}`.
    #[serde(default)]
    pub body_number_field: Option<String>,
    /// POST, a batch: the body is `{"<numbers_field>": [<number>, …]}`.
    #[serde(default)]
    pub numbers_field: Option<String>,
    /// POST batch items as objects: `{"<numbers_field>": [{"<numbers_item_field>":
    /// "<number>"}, …]}` instead of bare strings.
    #[serde(default)]
    pub numbers_item_field: Option<String>,
    /// How numbers are written in requests: `e164` (`+…`) or `digits` (no `+`).
    #[serde(default)]
    pub number_format: Option<NumberFormat>,
    /// Where the results are in the answer: a dotted path to an array (or one object) like
    /// `results` or `body.results`; empty: the answer is itself one result (or an array).
    #[serde(default)]
    pub results_path: Option<String>,
    /// The dotted path of a result's number. Compared by its digits to the numbers asked;
    /// a result without one is only used when the call carried a single number.
    #[serde(default)]
    pub number_field: Option<String>,
    /// The dotted path of a result's status (required).
    #[serde(default)]
    pub status_field: Option<String>,
    /// The dotted path of a result's data source (connectivity family: `CONNECTED` is only
    /// strong when it names a live HLR query).
    #[serde(default)]
    pub data_source_field: Option<String>,
    /// The dotted path of a result's time: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f][±hh[mm]]` (UTC
    /// when no offset), or Unix seconds / milliseconds. Without it the lookup time is used.
    #[serde(default)]
    pub time_field: Option<String>,
    /// The dotted path of a result's id (becomes the observation's message id).
    #[serde(default)]
    pub id_field: Option<String>,
    /// The dotted path of a per-result error: a result whose error is set (anything but
    /// null, false, 0, an empty string, `NONE` or `OK`) answers `None` for its number.
    #[serde(default)]
    pub error_field: Option<String>,
    /// Which status family the answers carry: `connectivity` or `live` (required).
    #[serde(default)]
    pub status_family: Option<StatusFamily>,
    /// Only look up mobile numbers (`mobile` and `fixed_line_or_mobile`): HLRs know nothing
    /// else. Default true.
    #[serde(default)]
    pub mobile_only: Option<bool>,
    /// Only look up numbers of these regions (ISO 3166-1 alpha-2 codes); empty: all.
    #[serde(default)]
    pub regions: Vec<String>,
}

impl fmt::Debug for HttpProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted_body: Vec<&str> = self.body_fields.keys().map(String::as_str).collect();
        f.debug_struct("HttpProviderConfig")
            .field("name", &self.name)
            .field("preset", &self.preset)
            .field("url", &self.url)
            .field("method", &self.method)
            .field("auth_header", &self.auth_header)
            .field(
                "auth_value",
                &self.auth_value.as_ref().map(|_| "<redacted>"),
            )
            .field("body_fields (values redacted)", &redacted_body)
            .field("timeout_ms", &self.timeout_ms)
            .field("batch_size", &self.batch_size)
            .field("number_param", &self.number_param)
            .field("body_number_field", &self.body_number_field)
            .field("numbers_field", &self.numbers_field)
            .field("numbers_item_field", &self.numbers_item_field)
            .field("number_format", &self.number_format)
            .field("results_path", &self.results_path)
            .field("number_field", &self.number_field)
            .field("status_field", &self.status_field)
            .field("data_source_field", &self.data_source_field)
            .field("time_field", &self.time_field)
            .field("id_field", &self.id_field)
            .field("error_field", &self.error_field)
            .field("status_family", &self.status_family)
            .field("mobile_only", &self.mobile_only)
            .field("regions", &self.regions)
            .finish()
    }
}

/// The values a preset fills.
struct PresetValues {
    url: &'static str,
    method: HttpMethod,
    batch_size: usize,
    body_number_field: Option<&'static str>,
    numbers_field: Option<&'static str>,
    numbers_item_field: Option<&'static str>,
    number_format: NumberFormat,
    results_path: &'static str,
    number_field: &'static str,
    status_field: &'static str,
    data_source_field: Option<&'static str>,
    time_field: Option<&'static str>,
    id_field: Option<&'static str>,
    error_field: Option<&'static str>,
    status_family: StatusFamily,
}

impl Preset {
    fn values(self) -> PresetValues {
        match self {
            // Sources: see `Preset::Connectivity`.
            Preset::Connectivity => PresetValues {
                url: "https://www.hlr-lookups.com/api/v2/hlr-lookup",
                method: HttpMethod::Post,
                batch_size: 1,
                body_number_field: Some("msisdn"),
                numbers_field: None,
                numbers_item_field: None,
                number_format: NumberFormat::E164,
                results_path: "",
                number_field: "msisdn",
                status_field: "connectivity_status",
                data_source_field: Some("data_source"),
                time_field: Some("timestamp"),
                id_field: Some("id"),
                error_field: Some("error_code"),
                status_family: StatusFamily::Connectivity,
            },
            // Sources: see `Preset::Live`.
            Preset::Live => PresetValues {
                url: "https://api.hlrlookup.com/apiv2/hlr",
                method: HttpMethod::Post,
                batch_size: 80,
                body_number_field: None,
                numbers_field: Some("requests"),
                numbers_item_field: Some("telephone_number"),
                number_format: NumberFormat::Digits,
                results_path: "body.results",
                number_field: "request_parameters.telephone_number",
                status_field: "live_status",
                data_source_field: None,
                time_field: Some("timestamp"),
                id_field: Some("uuid"),
                error_field: Some("error"),
                status_family: StatusFamily::Live,
            },
        }
    }
}

/// A dotted path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path(Vec<String>);

impl Path {
    fn parse(what: &str, text: &str) -> Result<Path, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(Path(Vec::new()));
        }
        let parts: Vec<String> = t.split('.').map(|p| p.trim().to_owned()).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!(
                "{what} {text:?} has an empty segment: write a dotted path like `body.results`"
            ));
        }
        Ok(Path(parts))
    }

    fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(v, |cur, key| cur.get(key.as_str()))
    }
}

/// The request shape, resolved.
#[derive(Debug, Clone)]
enum RequestShape {
    Query {
        param: String,
    },
    Single {
        field: String,
    },
    Batch {
        field: String,
        item_field: Option<String>,
    },
}

/// A configuration with the preset applied and every value checked.
#[derive(Clone)]
struct Resolved {
    name: String,
    url: reqwest::Url,
    auth: Option<(HeaderName, HeaderValue)>,
    body_fields: BTreeMap<String, String>,
    timeout: Duration,
    batch_size: usize,
    shape: RequestShape,
    number_format: NumberFormat,
    results_path: Path,
    number_field: Option<Path>,
    status_field: Path,
    data_source_field: Option<Path>,
    time_field: Option<Path>,
    id_field: Option<Path>,
    error_field: Option<Path>,
    family: StatusFamily,
    mobile_only: bool,
    regions: Vec<RegionCode>,
}

/// An explicit value if given (an empty string meaning "none"), else the preset's.
fn optional(explicit: &Option<String>, preset: Option<&'static str>) -> Option<String> {
    match explicit {
        Some(s) if s.trim().is_empty() => None,
        Some(s) => Some(s.trim().to_owned()),
        None => preset.map(str::to_owned),
    }
}

fn optional_path(
    what: &str,
    explicit: &Option<String>,
    preset: Option<&'static str>,
) -> Result<Option<Path>, String> {
    optional(explicit, preset)
        .map(|p| Path::parse(what, &p))
        .transpose()
}

impl HttpProviderConfig {
    /// Checks the configuration (with its preset applied); the message says which field is
    /// wrong and how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        self.resolve().map(|_| ())
    }

    fn resolve(&self) -> Result<Resolved, String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("name is empty: give the provider a name".into());
        }
        let err = |m: String| format!("lookup provider {name:?}: {m}");
        self.resolve_named(name).map_err(err)
    }

    fn resolve_named(&self, name: &str) -> Result<Resolved, String> {
        let p = self.preset.map(Preset::values);

        let url_text = self
            .url
            .clone()
            .or_else(|| p.as_ref().map(|p| p.url.to_owned()))
            .ok_or("url is missing: set `url` to the lookup endpoint (or use a `preset`)")?;
        let url = reqwest::Url::parse(url_text.trim())
            .map_err(|e| format!("url {url_text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url {url_text:?} must be http:// or https://"));
        }

        let method = self
            .method
            .or(p.as_ref().map(|p| p.method))
            .ok_or("method is missing: set `method` to GET or POST")?;

        let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!(
                "timeout_ms {timeout_ms} is out of range: use 1 to {MAX_TIMEOUT_MS}"
            ));
        }

        let batch_size = self
            .batch_size
            .or(p.as_ref().map(|p| p.batch_size))
            .unwrap_or(1);
        if batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }

        let auth = match (&self.auth_header, &self.auth_value) {
            (None, None) => None,
            (Some(h), Some(v)) => {
                let name = HeaderName::from_bytes(h.trim().as_bytes())
                    .map_err(|_| format!("auth_header {h:?} is not a valid header name"))?;
                // The value is never echoed: it is a secret.
                let mut value = HeaderValue::from_str(v).map_err(|_| {
                    "auth_value is not a valid header value (control characters?)".to_owned()
                })?;
                value.set_sensitive(true);
                Some((name, value))
            }
            (Some(_), None) => return Err("auth_header is set but auth_value is missing".into()),
            (None, Some(_)) => return Err("auth_value is set but auth_header is missing".into()),
        };

        let pv = |f: fn(&PresetValues) -> Option<&'static str>| p.as_ref().and_then(f);
        let shape = match method {
            HttpMethod::Get => {
                if self.body_number_field.is_some()
                    || self.numbers_field.is_some()
                    || self.numbers_item_field.is_some()
                    || !self.body_fields.is_empty()
                {
                    return Err(
                        "a GET request has no body: body_number_field, numbers_field, \
                         numbers_item_field and body_fields are for POST"
                            .into(),
                    );
                }
                let param = optional(&self.number_param, None)
                    .ok_or("number_param is missing: a GET request needs the query parameter that carries the number")?;
                RequestShape::Query { param }
            }
            HttpMethod::Post => {
                if self.number_param.is_some() {
                    return Err(
                        "number_param is for GET; a POST uses body_number_field or numbers_field"
                            .into(),
                    );
                }
                // An explicit choice of one form switches the preset's other form off.
                let (single, batch) = match (&self.body_number_field, &self.numbers_field) {
                    (None, None) => (
                        pv(|p| p.body_number_field).map(str::to_owned),
                        pv(|p| p.numbers_field).map(str::to_owned),
                    ),
                    (s, b) => (optional(s, None), optional(b, None)),
                };
                match (single, batch) {
                    (Some(field), None) => {
                        if batch_size > 1 {
                            return Err(format!(
                                "body_number_field carries one number a request but batch_size is {batch_size}: \
                                 set batch_size = 1 or use numbers_field"
                            ));
                        }
                        if self
                            .numbers_item_field
                            .as_deref()
                            .is_some_and(|s| !s.trim().is_empty())
                        {
                            return Err(
                                "numbers_item_field goes with numbers_field, not body_number_field"
                                    .into(),
                            );
                        }
                        RequestShape::Single { field }
                    }
                    (None, Some(field)) => RequestShape::Batch {
                        field,
                        item_field: optional(
                            &self.numbers_item_field,
                            pv(|p| p.numbers_item_field),
                        ),
                    },
                    (Some(_), Some(_)) => {
                        return Err("set either body_number_field (one number a request) or numbers_field (a batch), not both".into());
                    }
                    (None, None) => {
                        return Err("a POST needs body_number_field (one number a request) or numbers_field (a batch)".into());
                    }
                }
            }
        };
        for key in self.body_fields.keys() {
            let clash = match &shape {
                RequestShape::Single { field } | RequestShape::Batch { field, .. } => field == key,
                RequestShape::Query { .. } => false,
            };
            if clash || key.trim().is_empty() {
                return Err(format!(
                    "body_fields has the key {key:?}, which is empty or the numbers' own field"
                ));
            }
        }

        let number_format = self
            .number_format
            .or(p.as_ref().map(|p| p.number_format))
            .unwrap_or(NumberFormat::E164);
        let results_path = Path::parse(
            "results_path",
            self.results_path
                .as_deref()
                .or(p.as_ref().map(|p| p.results_path))
                .unwrap_or(""),
        )?;
        let number_field = optional_path(
            "number_field",
            &self.number_field,
            p.as_ref().map(|p| p.number_field),
        )?;
        if number_field.as_ref().is_none_or(|n| n.0.is_empty()) && batch_size > 1 {
            return Err(
                "number_field is missing: with batch_size > 1 results are matched to numbers by it"
                    .into(),
            );
        }
        let status_field = optional_path(
            "status_field",
            &self.status_field,
            p.as_ref().map(|p| p.status_field),
        )?
        .filter(|s| !s.0.is_empty())
        .ok_or("status_field is missing: name the field holding the status")?;
        let family = self
            .status_family
            .or(p.as_ref().map(|p| p.status_family))
            .ok_or("status_family is missing: set it to connectivity or live")?;

        let mut regions = Vec::with_capacity(self.regions.len());
        for r in &self.regions {
            regions.push(
                r.parse::<RegionCode>()
                    .map_err(|e| format!("regions: {e}"))?,
            );
        }

        Ok(Resolved {
            name: name.to_owned(),
            url,
            auth,
            body_fields: self.body_fields.clone(),
            timeout: Duration::from_millis(timeout_ms),
            batch_size,
            shape,
            number_format,
            results_path,
            number_field,
            status_field,
            data_source_field: optional_path(
                "data_source_field",
                &self.data_source_field,
                pv(|p| p.data_source_field),
            )?,
            time_field: optional_path("time_field", &self.time_field, pv(|p| p.time_field))?,
            id_field: optional_path("id_field", &self.id_field, pv(|p| p.id_field))?,
            error_field: optional_path("error_field", &self.error_field, pv(|p| p.error_field))?,
            family,
            mobile_only: self.mobile_only.unwrap_or(true),
            regions,
        })
    }
}

/// Why an [`HttpProvider`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpProviderError {
    /// The configuration is invalid; the message names the field.
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// An HTTP HLR-lookup service. Build it with [`HttpProvider::new`].
#[derive(Clone)]
pub struct HttpProvider {
    cfg: Resolved,
    client: reqwest::Client,
}

impl fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cfg;
        f.debug_struct("HttpProvider")
            .field("name", &c.name)
            .field("url", &c.url.as_str())
            .field(
                "auth",
                &c.auth.as_ref().map(|(h, _)| format!("{h}: <redacted>")),
            )
            .field(
                "body_fields (values redacted)",
                &c.body_fields.keys().collect::<Vec<_>>(),
            )
            .field("timeout", &c.timeout)
            .field("batch_size", &c.batch_size)
            .field("shape", &c.shape)
            .field("number_format", &c.number_format)
            .field("status_family", &c.family)
            .field("mobile_only", &c.mobile_only)
            .field("regions", &c.regions)
            .finish_non_exhaustive()
    }
}

impl HttpProvider {
    /// Checks the configuration and sets up one HTTP client with its timeout.
    pub fn new(config: &HttpProviderConfig) -> Result<Self, HttpProviderError> {
        let cfg = config.resolve().map_err(HttpProviderError::Config)?;
        // No redirects: a custom auth header would follow them to any host, and a moved
        // endpoint is a configuration matter (answered as Refused).
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpProviderError::Client(e.without_url().to_string()))?;
        Ok(HttpProvider { cfg, client })
    }

    /// The timeout of one call.
    pub fn timeout(&self) -> Duration {
        self.cfg.timeout
    }

    fn format(&self, n: E164) -> String {
        match self.cfg.number_format {
            NumberFormat::E164 => n.to_string(),
            NumberFormat::Digits => n.as_u64().to_string(),
        }
    }

    fn request(&self, numbers: &[E164]) -> reqwest::RequestBuilder {
        let c = &self.cfg;
        let mut req = match &c.shape {
            RequestShape::Query { param } => {
                let joined: Vec<String> = numbers.iter().map(|n| self.format(*n)).collect();
                self.client
                    .get(c.url.clone())
                    .query(&[(param.as_str(), joined.join(","))])
            }
            RequestShape::Single { field } => {
                let mut body = self.fixed_body();
                if let Some(n) = numbers.first() {
                    body.insert(field.clone(), Value::String(self.format(*n)));
                }
                self.client.post(c.url.clone()).json(&Value::Object(body))
            }
            RequestShape::Batch { field, item_field } => {
                let mut body = self.fixed_body();
                let items = numbers
                    .iter()
                    .map(|n| {
                        let text = Value::String(self.format(*n));
                        match item_field {
                            Some(k) => {
                                let mut o = Map::new();
                                o.insert(k.clone(), text);
                                Value::Object(o)
                            }
                            None => text,
                        }
                    })
                    .collect();
                body.insert(field.clone(), Value::Array(items));
                self.client.post(c.url.clone()).json(&Value::Object(body))
            }
        };
        req = req.header(reqwest::header::ACCEPT, "application/json");
        if let Some((h, v)) = &c.auth {
            req = req.header(h.clone(), v.clone());
        }
        req
    }

    fn fixed_body(&self) -> Map<String, Value> {
        self.cfg
            .body_fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    }

    /// A transport error as a lookup error (the URL left out: it may carry a key).
    fn transport(&self, e: reqwest::Error) -> LookupError {
        if e.is_timeout() {
            LookupError::Timeout(self.cfg.timeout)
        } else {
            LookupError::Unavailable(e.without_url().to_string())
        }
    }

    /// Reads the body, refusing one larger than [`MAX_BODY_BYTES`].
    async fn body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, LookupError> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(LookupError::Malformed(format!(
                    "the answer is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The answers in a parsed body: one per number asked, `None` where the body has nothing
    /// usable for it.
    fn answers(&self, numbers: &[E164], body: &Value) -> Result<Vec<Answer>, LookupError> {
        let c = &self.cfg;
        let results = c.results_path.get(body).ok_or_else(|| {
            LookupError::Malformed(format!(
                "the answer has no results at {:?}",
                c.results_path.0.join(".")
            ))
        })?;
        let results: Vec<&Value> = match results {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![results],
            Value::Null => Vec::new(),
            _ => {
                return Err(LookupError::Malformed(
                    "the results are neither an array nor an object".into(),
                ));
            }
        };
        let by_digits: HashMap<String, E164> = numbers
            .iter()
            .map(|n| (n.as_u64().to_string(), *n))
            .collect();
        let mut events: HashMap<E164, numcheck_core::connectors::Event> = HashMap::new();
        for (i, r) in results.into_iter().enumerate() {
            let Some(number) = self.result_number(r, numbers, &by_digits) else {
                tracing::debug!(provider = %c.name, result = i, "a result matches no number asked");
                continue;
            };
            if events.contains_key(&number) {
                continue;
            }
            if let Some(reason) = self.result_error(r) {
                tracing::debug!(provider = %c.name, %number, %reason, "a result carries an error");
                continue;
            }
            match self.event(number, r) {
                Ok(Some(e)) => {
                    events.insert(number, e);
                }
                Ok(None) => {
                    tracing::debug!(provider = %c.name, %number, "a result has no status");
                }
                Err(reason) => {
                    tracing::warn!(provider = %c.name, %number, %reason, "a result cannot be read");
                }
            }
        }
        Ok(numbers
            .iter()
            .map(|n| Answer {
                number: *n,
                event: events.remove(n),
            })
            .collect())
    }

    fn result_number(
        &self,
        r: &Value,
        numbers: &[E164],
        by_digits: &HashMap<String, E164>,
    ) -> Option<E164> {
        let text = self
            .cfg
            .number_field
            .as_ref()
            .and_then(|p| text_of(p.get(r)));
        match text {
            Some(t) => {
                let digits: String = t.chars().filter(char::is_ascii_digit).collect();
                by_digits.get(&digits).copied()
            }
            // A result that does not say its number can only be the one number asked.
            None if numbers.len() == 1 => numbers.first().copied(),
            None => None,
        }
    }

    /// The per-result error, if the result has one set.
    fn result_error(&self, r: &Value) -> Option<String> {
        let v = self.cfg.error_field.as_ref()?.get(r)?;
        let set = match v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => {
                let s = s.trim();
                !(s.is_empty() || s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("ok"))
            }
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        };
        set.then(|| {
            let s = v.to_string();
            s.chars().take(120).collect()
        })
    }

    fn event(
        &self,
        number: E164,
        r: &Value,
    ) -> Result<Option<numcheck_core::connectors::Event>, String> {
        let c = &self.cfg;
        let Some(status) = text_of(c.status_field.get(r)) else {
            return Ok(None);
        };
        let field = |p: &Option<Path>| p.as_ref().and_then(|p| text_of(p.get(r)));
        let at = c
            .time_field
            .as_ref()
            .and_then(|p| p.get(r))
            .and_then(parse_time);
        let id = field(&c.id_field);
        let number = number.to_string();
        let event = match c.family {
            StatusFamily::Connectivity => {
                let source = field(&c.data_source_field);
                connectivity_event(&number, &status, source.as_deref(), at, id.as_deref())
            }
            StatusFamily::Live => live_event(&number, &status, at, id.as_deref()),
        };
        event.map(Some).map_err(|e| e.message)
    }
}

/// A scalar as trimmed text; `None` for anything else or an empty string.
fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A result's time in Unix milliseconds, read as HLR files are ([`result_time`]) but also
/// with an offset of hours alone (`+00`). An unreadable time is left out (the lookup time is
/// used).
fn parse_time(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().and_then(unix_ms),
        Value::String(s) => result_time(s, true),
        _ => None,
    }
}

/// `Retry-After`: delay seconds or an HTTP date (RFC 9110 §10.2.3).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let text = resp.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?;
    let ms = at.timestamp_millis() - Utc::now().timestamp_millis();
    Some(Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0)))
}

/// A short excerpt of an error body for messages (never request data).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t: String = text.trim().chars().take(160).collect();
    if t.is_empty() { "no body".into() } else { t }
}

#[async_trait::async_trait]
impl Provider for HttpProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn batch_size(&self) -> usize {
        self.cfg.batch_size
    }

    fn covers(&self, _number: E164, line_type: LineType, region: Option<RegionCode>) -> bool {
        if self.cfg.mobile_only
            && !matches!(line_type, LineType::Mobile | LineType::FixedLineOrMobile)
        {
            return false;
        }
        self.cfg.regions.is_empty() || region.is_some_and(|r| self.cfg.regions.contains(&r))
    }

    async fn lookup(&self, numbers: &[E164]) -> Result<Vec<Answer>, LookupError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        if numbers.len() > self.cfg.batch_size {
            return Err(LookupError::Refused(format!(
                "{} numbers in one call; the provider takes at most {}",
                numbers.len(),
                self.cfg.batch_size
            )));
        }
        let resp = self
            .request(numbers)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(&resp);
            tracing::debug!(provider = %self.cfg.name, ?retry_after, "throttled");
            return Err(LookupError::RateLimited { retry_after });
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            return Err(LookupError::Timeout(self.cfg.timeout));
        }
        if !status.is_success() {
            // The body of an error is read best-effort, for the message only.
            let body = self.body(resp).await.unwrap_or_default();
            let what = format!("HTTP {status}: {}", excerpt(&body));
            tracing::debug!(provider = %self.cfg.name, %status, "the provider answered an error");
            return Err(if status.is_client_error() || status.is_redirection() {
                LookupError::Refused(what)
            } else {
                LookupError::Unavailable(what)
            });
        }
        let body = self.body(resp).await?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| LookupError::Malformed(format!("not JSON ({e}): {}", excerpt(&body))))?;
        self.answers(numbers, &value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_documented_shape() {
        let at = |s: &str| parse_time(&Value::String(s.into()));
        // hlr-lookups.com's SDK README examples: `+0300` and `+00` offsets.
        assert!(at("2020-08-07T16:16:17.676Z").is_some());
        assert_eq!(
            at("2020-08-07 19:16:17.676+0300"),
            at("2020-08-07T16:16:17.676Z")
        );
        assert_eq!(
            at("2015-12-04 10:36:41.866283+00"),
            at("2015-12-04T10:36:41.866283Z")
        );
        assert!(at("2015-12-04T10:36:41.866283Z").is_some());
        assert_eq!(at("2022-09-08T10:56:03Z"), Some(1_662_634_563_000));
        assert_eq!(at("2022-09-08 10:56:03"), Some(1_662_634_563_000));
        assert_eq!(
            parse_time(&Value::from(1_662_634_563)),
            Some(1_662_634_563_000)
        );
        assert_eq!(at("1662634563000"), Some(1_662_634_563_000));
        assert_eq!(at("yesterday"), None);
    }
}
