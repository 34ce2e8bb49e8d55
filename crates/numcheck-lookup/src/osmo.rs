//! The operator's own Osmocom HLR (osmo-hlr) as a live provider, over its CTRL interface.
//!
//! The CTRL interface is a TCP service (osmo-hlr's default port 4259,
//! `OSMO_CTRL_PORT_HLR` in libosmocore's `ctrl/ports.h`) that carries text commands inside IPA
//! frames: a 3-byte header (a 2-byte big-endian length of everything after the header, then
//! the protocol byte `0xEE`, the Osmocom extension) and the extension byte `0x00` (CTRL),
//! then the text (libosmocore `gsm/protocol/ipaccess.h`; the framing `osmopy/osmo_ipa.py`
//! writes). A command is `GET <id> <variable>`; the answer is `GET_REPLY <id> <variable>
//! <value>` or `ERROR <id> <reason>`.
//!
//! The provider only ever sends `GET <id> subscriber.by-msisdn-<digits>.info` (built by one
//! private function from a digits-only [`Msisdn`]): `info-aud` and `info-all` print the SIM's
//! secret keys and are never asked for. The `info` value is lines of `name<TAB>value`
//! (osmo-hlr `src/ctrl.c`, `print_subscr_info`): `id`, `imsi`, `msisdn`, `nam_cs`, `nam_ps`,
//! `vlr_number`, `sgsn_number`, `sgsn_address`, `ms_purged_cs`, `ms_purged_ps`,
//! `periodic_lu_timer`, `periodic_rau_tau_timer`, `lmsi`; empty strings are left out, the
//! flags are always there as `0`/`1`.
//!
//! `info` does not say when the subscriber was last seen; osmo-hlr keeps that in its SQLite
//! file (`subscriber.last_lu_seen`, `last_lu_seen_ps`, written as
//! `datetime(<unix seconds>, 'unixepoch')` on each location update, `src/db_hlr.c`). When
//! configured, the provider reads those two columns from the file, opened read-only.
//!
//! One TCP connection is kept and reused across calls (a call holds it alone); any failure
//! drops it and the next call connects again. A batch of up to [`BATCH_SIZE`] numbers is
//! pipelined: every GET is written, then the replies are matched by id. One call is one
//! attempt; the only exception is a kept connection found dead before it answered anything
//! (the HLR restarted since the last call), which is replaced once within the same call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use numcheck_core::connectors::{Code, Event};
use numcheck_core::{E164, EvidenceKind, LineType, RegionCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Answer, LookupError, Provider};

/// The code table the provider's events are classified by (`codes/osmo_hlr.csv`).
pub const TABLE: &str = "osmo_hlr";
/// Numbers one call carries: their GETs are pipelined on the one connection.
pub const BATCH_SIZE: usize = 16;
/// osmo-hlr's CTRL port (`OSMO_CTRL_PORT_HLR`, libosmocore `include/osmocom/ctrl/ports.h`).
pub const DEFAULT_PORT: u16 = 4259;

/// The codes the provider emits, rows of [`TABLE`].
pub mod code {
    /// The HLR answered `No such subscriber.` for a number in the operator's ranges.
    pub const NO_SUCH_SUBSCRIBER: &str = "NO_SUCH_SUBSCRIBER";
    /// The subscriber exists with both CS and PS network access disabled.
    pub const ACCESS_DISABLED: &str = "ACCESS_DISABLED";
    /// The VLR purged the subscriber (CS purged, and PS purged or not attached).
    pub const PURGED: &str = "PURGED";
    /// The HLR database shows a location update within `recent_lu_days`.
    pub const LOCATION_UPDATE: &str = "LOCATION_UPDATE";
    /// Enabled and registered at a VLR or SGSN (no database to date it).
    pub const ATTACHED: &str = "ATTACHED";
    /// Enabled, but not attached and no recent location update.
    pub const KNOWN_IDLE: &str = "KNOWN_IDLE";
}

// IPA constants: libosmocore include/osmocom/gsm/protocol/ipaccess.h.
const IPA_HEADER_LEN: usize = 3;
const IPAC_PROTO_OSMO: u8 = 0xEE;
const IPAC_PROTO_EXT_CTRL: u8 = 0x00;
const IPAC_PROTO_IPACCESS: u8 = 0xFE;
const IPAC_MSGT_PING: u8 = 0x00;
const IPAC_MSGT_PONG: u8 = 0x01;
/// Longest frame body (after the 3-byte header) accepted from the HLR. An `info` reply is a
/// few hundred bytes; a longer length field means a confused or hostile peer.
pub(crate) const MAX_FRAME_LEN: usize = 4096;
/// Longest MSISDN osmo-hlr stores (`msisdn VARCHAR(15)`, `osmo_msisdn_str_valid`).
const MAX_MSISDN_DIGITS: usize = 15;
/// The reason osmo-hlr's `get_subscriber()` gives for an unknown selector value
/// (`src/ctrl.c`, `-ENOENT`), compared without its final full stop.
const NO_SUCH_SUBSCRIBER_REASON: &str = "No such subscriber";
/// The reason osmo-hlr gives when its database failed (`src/ctrl.c`, the `default:` case).
const DB_ERROR_REASON: &str = "An unknown error has occurred during get_subscriber()";
const DAY_MS: i64 = 86_400_000;

fn default_address() -> String {
    format!("127.0.0.1:{DEFAULT_PORT}")
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_recent_lu_days() -> u32 {
    7
}

/// Settings of one osmo-hlr provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OsmoHlrConfig {
    /// The provider's name: the `source` of its observations.
    pub name: String,
    /// The HLR's CTRL interface, `host:port` (default `127.0.0.1:4259`).
    #[serde(default = "default_address")]
    pub address: String,
    /// How long one call (connect, every GET of the batch, the database read) may take, in
    /// milliseconds (default 2000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How an E.164 number becomes the MSISDN the HLR stores (default: all digits, no `+`).
    #[serde(default)]
    pub msisdn_rule: MsisdnRule,
    /// The operator's own E.164 prefixes, digits without `+` (`["4915", "4916"]`): the
    /// provider covers only numbers in them, and only there does "no such subscriber" mean
    /// the number is not in service.
    pub ranges: Vec<String>,
    /// The HLR's SQLite file, read (read-only) for the time of the last location update.
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// A location update at most this many days old counts as recent (default 7).
    #[serde(default = "default_recent_lu_days")]
    pub recent_lu_days: u32,
}

/// How an E.164 number becomes the MSISDN the HLR stores. Both fields empty (the default,
/// `e164_digits`): every digit of the number, without `+` (`+4915112345678` →
/// `4915112345678`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsisdnRule {
    /// A prefix removed from the digits, usually the country code (`"49"`: national
    /// significant number). Every range must start with it.
    #[serde(default)]
    pub strip_prefix: String,
    /// Digits put in front after stripping (`"0"`: the national trunk prefix).
    #[serde(default)]
    pub add_prefix: String,
}

/// What is wrong with an [`OsmoHlrConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsmoConfigError {
    #[error("osmo-hlr provider: name is empty")]
    EmptyName,
    #[error("osmo-hlr provider {name}: address {address:?} is not host:port")]
    BadAddress { name: String, address: String },
    #[error("osmo-hlr provider {name}: timeout_ms must be between 1 and 600000")]
    BadTimeout { name: String },
    #[error("osmo-hlr provider {name}: ranges is empty (list the operator's own prefixes)")]
    NoRanges { name: String },
    #[error(
        "osmo-hlr provider {name}: range {range:?} is not 1 to 15 digits without '+' and a leading 0"
    )]
    BadRange { name: String, range: String },
    #[error("osmo-hlr provider {name}: msisdn_rule.{field} {value:?} is not digits only")]
    BadRule {
        name: String,
        field: &'static str,
        value: String,
    },
    #[error(
        "osmo-hlr provider {name}: range {range:?} does not start with msisdn_rule.strip_prefix {prefix:?}"
    )]
    RangeOutsideRule {
        name: String,
        range: String,
        prefix: String,
    },
    #[error("osmo-hlr provider {name}: recent_lu_days must be at least 1")]
    BadRecentDays { name: String },
    #[error("osmo-hlr provider {name}: database {path:?} does not exist")]
    MissingDatabase { name: String, path: PathBuf },
}

/// An MSISDN as the HLR stores it: 1 to 15 ASCII digits. The only way to a CTRL command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msisdn(String);

impl Msisdn {
    /// `None` unless `digits` is 1 to 15 ASCII digits.
    pub fn new(digits: &str) -> Option<Msisdn> {
        (!digits.is_empty()
            && digits.len() <= MAX_MSISDN_DIGITS
            && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Msisdn(digits.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CTRL variable read for this MSISDN (osmo-hlr `src/ctrl.c`: node `subscriber`,
    /// selector `by-msisdn-<digits>`, command `info`).
    fn info_variable(&self) -> String {
        format!("subscriber.by-msisdn-{}.info", self.0)
    }
}

/// The one CTRL command the provider sends: `GET <id> subscriber.by-msisdn-<digits>.info`,
/// IPA-framed. Nothing else in this module formats command text.
fn info_command(id: u32, msisdn: &Msisdn) -> Result<Vec<u8>, FrameError> {
    encode_ctrl(format!("GET {id} {}", msisdn.info_variable()).as_bytes())
}

// ---------------------------------------------------------------------------------------
// IPA framing

/// Why bytes from the HLR are not an IPA frame stream we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("IPA frame of {0} bytes is longer than the {MAX_FRAME_LEN} accepted")]
    TooLong(usize),
    #[error("IPA frame of protocol 0x{0:02x} has no extension byte")]
    MissingExtension(u8),
}

/// One IPA frame: the protocol byte and the body after the 3-byte header (for `0xEE`, the
/// extension byte comes first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) proto: u8,
    pub(crate) body: Vec<u8>,
}

/// Frames `body` with protocol `proto`.
pub(crate) fn encode_frame(proto: u8, body: &[u8]) -> Result<Vec<u8>, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(body.len()));
    }
    let len = u16::try_from(body.len()).map_err(|_| FrameError::TooLong(body.len()))?;
    let mut out = Vec::with_capacity(IPA_HEADER_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(proto);
    out.extend_from_slice(body);
    Ok(out)
}

/// Frames CTRL text: protocol `0xEE`, extension `0x00`, the text.
pub(crate) fn encode_ctrl(text: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::with_capacity(text.len() + 1);
    body.push(IPAC_PROTO_EXT_CTRL);
    body.extend_from_slice(text);
    encode_frame(IPAC_PROTO_OSMO, &body)
}

/// Splits a byte stream into IPA frames, however the reads cut it. It holds at most one
/// partial frame plus one read.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Adds bytes read from the stream.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` until one is complete. A length over
    /// [`MAX_FRAME_LEN`] is refused as soon as the header is in, before its body.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < IPA_HEADER_LEN {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        let proto = self.buf[2];
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong(len));
        }
        if proto == IPAC_PROTO_OSMO && len == 0 {
            return Err(FrameError::MissingExtension(proto));
        }
        if self.buf.len() < IPA_HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.buf[IPA_HEADER_LEN..IPA_HEADER_LEN + len].to_vec();
        self.buf.drain(..IPA_HEADER_LEN + len);
        Ok(Some(Frame { proto, body }))
    }
}

// ---------------------------------------------------------------------------------------
// CTRL messages

/// A CTRL message from the HLR, as far as the provider cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CtrlMessage {
    /// `GET_REPLY <id> <variable> <value>`.
    GetReply {
        id: u32,
        variable: String,
        value: String,
    },
    /// `ERROR <id> <reason>`; `id` is `None` when the HLR could not read ours (`ERROR err …`).
    Error { id: Option<u32>, reason: String },
    /// Anything else (`TRAP`, `SET_REPLY`): not an answer to a GET of ours.
    Other,
}

/// Reads CTRL text (libosmocore `ctrl/control_cmd.c`: fields separated by single spaces;
/// the value is the rest of the message and may hold newlines).
pub(crate) fn parse_ctrl(text: &[u8]) -> Result<CtrlMessage, String> {
    let text = std::str::from_utf8(text).map_err(|_| "CTRL message is not UTF-8".to_owned())?;
    let (kind, rest) = text.split_once(' ').unwrap_or((text, ""));
    match kind {
        "GET_REPLY" => {
            let (id, rest) = rest
                .split_once(' ')
                .ok_or_else(|| "GET_REPLY without a variable".to_owned())?;
            let id = id
                .parse::<u32>()
                .map_err(|_| format!("GET_REPLY with id {id:?}"))?;
            let (variable, value) = rest.split_once(' ').unwrap_or((rest, ""));
            Ok(CtrlMessage::GetReply {
                id,
                variable: variable.to_owned(),
                value: value.to_owned(),
            })
        }
        "ERROR" => {
            let (id, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            Ok(CtrlMessage::Error {
                id: id.parse::<u32>().ok(),
                reason: reason.trim().to_owned(),
            })
        }
        "" => Err("empty CTRL message".to_owned()),
        _ => Ok(CtrlMessage::Other),
    }
}

/// What `subscriber.by-msisdn-<digits>.info` says about a subscriber (the IMSI is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriberInfo {
    pub(crate) id: u64,
    pub(crate) msisdn: Option<String>,
    pub(crate) nam_cs: bool,
    pub(crate) nam_ps: bool,
    pub(crate) vlr_number: Option<String>,
    pub(crate) sgsn_number: Option<String>,
    pub(crate) ms_purged_cs: bool,
    pub(crate) ms_purged_ps: bool,
}

/// Reads the value of an `info` reply: `name<TAB>value` lines (osmo-hlr `src/ctrl.c`,
/// `print_subscr_info`). `id` and the four flags are required; unknown names are skipped.
pub(crate) fn parse_info(value: &str) -> Result<SubscriberInfo, String> {
    fn flag(name: &str, v: &str) -> Result<bool, String> {
        match v {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(format!("{name} is {v:?}, not 0 or 1")),
        }
    }
    let mut id = None;
    let mut msisdn = None;
    let (mut nam_cs, mut nam_ps, mut purged_cs, mut purged_ps) = (None, None, None, None);
    let (mut vlr_number, mut sgsn_number) = (None, None);
    for line in value.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (name, v) = line
            .split_once('\t')
            .ok_or_else(|| format!("info line {line:?} has no tab"))?;
        let non_empty = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        match name {
            "id" => id = Some(v.parse::<u64>().map_err(|_| format!("id is {v:?}"))?),
            "msisdn" => msisdn = non_empty(v),
            "nam_cs" => nam_cs = Some(flag(name, v)?),
            "nam_ps" => nam_ps = Some(flag(name, v)?),
            "ms_purged_cs" => purged_cs = Some(flag(name, v)?),
            "ms_purged_ps" => purged_ps = Some(flag(name, v)?),
            "vlr_number" => vlr_number = non_empty(v),
            "sgsn_number" => sgsn_number = non_empty(v),
            _ => {}
        }
    }
    let missing = |what: &str| format!("info has no {what} line");
    Ok(SubscriberInfo {
        id: id.ok_or_else(|| missing("id"))?,
        msisdn,
        nam_cs: nam_cs.ok_or_else(|| missing("nam_cs"))?,
        nam_ps: nam_ps.ok_or_else(|| missing("nam_ps"))?,
        vlr_number,
        sgsn_number,
        ms_purged_cs: purged_cs.ok_or_else(|| missing("ms_purged_cs"))?,
        ms_purged_ps: purged_ps.ok_or_else(|| missing("ms_purged_ps"))?,
    })
}

/// What the database says about a subscriber's last location update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastSeen {
    /// No database configured: the `info` reply is all there is.
    NoDatabase,
    /// The latest of `last_lu_seen` and `last_lu_seen_ps`, ms since the epoch (`None`: never).
    At(Option<i64>),
}

/// The code for an existing subscriber. Order: access disabled; a recent location update
/// (osmo-hlr never clears the purge flags on a later update — `src/lu_fsm.c`, "TODO: Reset
/// Flag MS Purged" — so a dated update outranks them); purged; then attached or idle.
pub(crate) fn classify(
    info: &SubscriberInfo,
    last_seen: LastSeen,
    now_ms: i64,
    recent_days: u32,
) -> &'static str {
    if !info.nam_cs && !info.nam_ps {
        return code::ACCESS_DISABLED;
    }
    let recent = match last_seen {
        LastSeen::At(Some(at)) => {
            at >= now_ms - i64::from(recent_days) * DAY_MS && at <= now_ms + DAY_MS
        }
        _ => false,
    };
    if recent {
        return code::LOCATION_UPDATE;
    }
    if info.ms_purged_cs && (info.ms_purged_ps || info.sgsn_number.is_none()) {
        return code::PURGED;
    }
    match last_seen {
        // The VLR / SGSN number stays after the subscriber leaves: without a date it is only
        // a hint, with an old date it is not one.
        LastSeen::NoDatabase if info.vlr_number.is_some() || info.sgsn_number.is_some() => {
            code::ATTACHED
        }
        _ => code::KNOWN_IDLE,
    }
}

// ---------------------------------------------------------------------------------------
// The provider

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
}

#[derive(Debug, Default)]
struct ConnState {
    conn: Option<Conn>,
    next_id: u32,
}

/// A failed exchange; `stale` when the connection died before the HLR answered anything.
#[derive(Debug)]
struct Failure {
    error: LookupError,
    stale: bool,
}

/// The HLR's answer to one GET.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CtrlAnswer {
    Value(String),
    Error(String),
}

/// osmo-hlr as a [`Provider`]; see the module documentation.
#[derive(Debug)]
pub struct OsmoHlrProvider {
    name: String,
    address: String,
    timeout: Duration,
    rule: MsisdnRule,
    ranges: Vec<String>,
    database: Option<PathBuf>,
    recent_lu_days: u32,
    state: tokio::sync::Mutex<ConnState>,
}

fn digits_only(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

impl OsmoHlrProvider {
    /// Checks the settings and builds the provider (it connects on the first lookup).
    pub fn new(config: OsmoHlrConfig) -> Result<Self, OsmoConfigError> {
        let name = config.name.trim().to_owned();
        if name.is_empty() {
            return Err(OsmoConfigError::EmptyName);
        }
        let port_ok = config
            .address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(OsmoConfigError::BadAddress {
                name,
                address: config.address,
            });
        }
        if config.timeout_ms == 0 || config.timeout_ms > 600_000 {
            return Err(OsmoConfigError::BadTimeout { name });
        }
        for (field, value) in [
            ("strip_prefix", &config.msisdn_rule.strip_prefix),
            ("add_prefix", &config.msisdn_rule.add_prefix),
        ] {
            if !digits_only(value) {
                return Err(OsmoConfigError::BadRule {
                    name,
                    field,
                    value: value.clone(),
                });
            }
        }
        if config.ranges.is_empty() {
            return Err(OsmoConfigError::NoRanges { name });
        }
        for range in &config.ranges {
            if range.is_empty() || range.len() > 15 || !digits_only(range) || range.starts_with('0')
            {
                return Err(OsmoConfigError::BadRange {
                    name,
                    range: range.clone(),
                });
            }
            if !range.starts_with(&config.msisdn_rule.strip_prefix) {
                return Err(OsmoConfigError::RangeOutsideRule {
                    name,
                    range: range.clone(),
                    prefix: config.msisdn_rule.strip_prefix.clone(),
                });
            }
        }
        if config.recent_lu_days == 0 {
            return Err(OsmoConfigError::BadRecentDays { name });
        }
        if let Some(path) = &config.database
            && !path.exists()
        {
            return Err(OsmoConfigError::MissingDatabase {
                name,
                path: path.clone(),
            });
        }
        Ok(OsmoHlrProvider {
            name,
            address: config.address,
            timeout: Duration::from_millis(config.timeout_ms),
            rule: config.msisdn_rule,
            ranges: config.ranges,
            database: config.database,
            recent_lu_days: config.recent_lu_days,
            state: tokio::sync::Mutex::new(ConnState::default()),
        })
    }

    fn in_ranges(&self, digits: &str) -> bool {
        self.ranges.iter().any(|r| digits.starts_with(r.as_str()))
    }

    /// The MSISDN the HLR stores for `number`; `None` outside the ranges or when the rule
    /// leaves no valid MSISDN.
    pub fn msisdn_for(&self, number: E164) -> Option<Msisdn> {
        let digits = number.as_u64().to_string();
        if !self.in_ranges(&digits) {
            return None;
        }
        let rest = digits.strip_prefix(self.rule.strip_prefix.as_str())?;
        Msisdn::new(&format!("{}{rest}", self.rule.add_prefix))
    }

    async fn connect(&self) -> Result<Conn, LookupError> {
        let stream = TcpStream::connect(self.address.as_str())
            .await
            .map_err(|e| {
                LookupError::Unavailable(format!(
                    "cannot connect to the HLR at {}: {e}",
                    self.address
                ))
            })?;
        // Small request/response frames: do not wait to coalesce them.
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            decoder: FrameDecoder::default(),
        })
    }

    /// Sends one GET per MSISDN on the kept connection (or a new one) and returns the answers
    /// in the same order.
    async fn ask(&self, msisdns: &[&Msisdn]) -> Result<Vec<CtrlAnswer>, LookupError> {
        let mut state = self.state.lock().await;
        let mut expected = Vec::with_capacity(msisdns.len());
        let mut request = Vec::new();
        for m in msisdns {
            state.next_id = state.next_id.checked_add(1).unwrap_or(1);
            let id = state.next_id;
            request.extend(
                info_command(id, m)
                    .map_err(|e| LookupError::Refused(format!("cannot frame the command: {e}")))?,
            );
            expected.push((id, m.info_variable()));
        }
        let (mut conn, reused) = match state.conn.take() {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let answers = match exchange(&mut conn, &request, &expected).await {
            Ok(a) => a,
            Err(Failure { stale: true, .. }) if reused => {
                drop(conn);
                conn = self.connect().await?;
                exchange(&mut conn, &request, &expected)
                    .await
                    .map_err(|f| f.error)?
            }
            Err(f) => return Err(f.error),
        };
        state.conn = Some(conn);
        Ok(answers)
    }

    async fn lookup_inner(&self, queries: &[(E164, Msisdn)]) -> Result<Vec<Answer>, LookupError> {
        let msisdns: Vec<&Msisdn> = queries.iter().map(|(_, m)| m).collect();
        let answers = self.ask(&msisdns).await?;
        let now = chrono::Utc::now();
        let now_ms = now.timestamp_millis();
        let day = now.format("%Y-%m-%d").to_string();

        // First what the CTRL answers say; `None` info: no such subscriber.
        let mut found: Vec<(E164, &Msisdn, Option<SubscriberInfo>)> = Vec::new();
        for ((number, msisdn), answer) in queries.iter().zip(answers) {
            match answer {
                CtrlAnswer::Error(reason) => {
                    let bare = reason.trim_end_matches('.');
                    if bare == NO_SUCH_SUBSCRIBER_REASON {
                        found.push((*number, msisdn, None));
                    } else if bare == DB_ERROR_REASON.trim_end_matches('.') {
                        return Err(LookupError::Unavailable(format!(
                            "the HLR failed to read its database: {reason}"
                        )));
                    } else {
                        return Err(LookupError::Refused(format!(
                            "the HLR refused {}: {reason}",
                            msisdn.info_variable()
                        )));
                    }
                }
                CtrlAnswer::Value(value) => {
                    let info = parse_info(&value).map_err(LookupError::Malformed)?;
                    if let Some(stored) = &info.msisdn
                        && stored != msisdn.as_str()
                    {
                        return Err(LookupError::Malformed(format!(
                            "asked for MSISDN {}, the HLR answered for {stored}",
                            msisdn.as_str()
                        )));
                    }
                    found.push((*number, msisdn, Some(info)));
                }
            }
        }

        // Then the database, for the subscribers whose answer depends on it.
        let wanted: Vec<String> = found
            .iter()
            .filter_map(|(_, m, info)| {
                info.as_ref()
                    .filter(|i| i.nam_cs || i.nam_ps)
                    .map(|_| m.as_str().to_owned())
            })
            .collect();
        let seen = match (&self.database, wanted.is_empty()) {
            (Some(path), false) => {
                let path = path.clone();
                let timeout = self.timeout;
                tokio::task::spawn_blocking(move || read_last_seen(&path, &wanted, timeout))
                    .await
                    .map_err(|e| {
                        LookupError::Unavailable(format!("the HLR database read failed: {e}"))
                    })??
            }
            _ => Vec::new(),
        };

        let mut out = Vec::with_capacity(found.len());
        for (number, msisdn, info) in found {
            let code = match &info {
                None => code::NO_SUCH_SUBSCRIBER,
                Some(info) => {
                    let last_seen = if self.database.is_some() {
                        LastSeen::At(
                            seen.iter()
                                .find(|(m, _)| m == msisdn.as_str())
                                .and_then(|(_, at)| *at),
                        )
                    } else {
                        LastSeen::NoDatabase
                    };
                    classify(info, last_seen, now_ms, self.recent_lu_days)
                }
            };
            out.push(Answer {
                number,
                event: Some(Event {
                    number: number.to_string(),
                    observed_at_ms: Some(now_ms),
                    kind: EvidenceKind::CoreNetwork,
                    raw_code: code.to_owned(),
                    codes: vec![Code::Table(TABLE, code.to_owned())],
                    message_id: Some(format!("osmo:{}:{day}", msisdn.as_str())),
                    final_state: true,
                }),
            });
        }
        Ok(out)
    }
}

/// Writes the request and reads until every expected id is answered.
async fn exchange(
    conn: &mut Conn,
    request: &[u8],
    expected: &[(u32, String)],
) -> Result<Vec<CtrlAnswer>, Failure> {
    let io_failure = |e: std::io::Error, stale: bool| Failure {
        error: LookupError::Unavailable(format!("the HLR connection failed: {e}")),
        stale,
    };
    let malformed = |m: String| Failure {
        error: LookupError::Malformed(m),
        stale: false,
    };
    conn.stream
        .write_all(request)
        .await
        .map_err(|e| io_failure(e, true))?;
    let mut answers: Vec<Option<CtrlAnswer>> = vec![None; expected.len()];
    let mut pending = expected.len();
    let mut received_any = false;
    let mut chunk = [0u8; 4096];
    while pending > 0 {
        let n = conn
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| io_failure(e, !received_any))?;
        if n == 0 {
            return Err(Failure {
                error: LookupError::Unavailable("the HLR closed the connection".into()),
                stale: !received_any,
            });
        }
        received_any = true;
        conn.decoder.push(&chunk[..n]);
        while let Some(frame) = conn
            .decoder
            .next_frame()
            .map_err(|e| malformed(e.to_string()))?
        {
            match frame.proto {
                IPAC_PROTO_OSMO => {}
                IPAC_PROTO_IPACCESS => {
                    // CCM keep-alive: answer a PING, skip the rest.
                    if frame.body.first() == Some(&IPAC_MSGT_PING) {
                        let pong = encode_frame(IPAC_PROTO_IPACCESS, &[IPAC_MSGT_PONG])
                            .map_err(|e| malformed(e.to_string()))?;
                        conn.stream
                            .write_all(&pong)
                            .await
                            .map_err(|e| io_failure(e, false))?;
                    }
                    continue;
                }
                other => {
                    tracing::debug!(proto = other, "osmo-hlr: skipping a non-CTRL IPA frame");
                    continue;
                }
            }
            let Some((&ext, text)) = frame.body.split_first() else {
                return Err(malformed("IPA frame without extension byte".into()));
            };
            if ext != IPAC_PROTO_EXT_CTRL {
                tracing::debug!(ext, "osmo-hlr: skipping a non-CTRL Osmocom frame");
                continue;
            }
            let (id, answer, variable) = match parse_ctrl(text).map_err(malformed)? {
                CtrlMessage::GetReply {
                    id,
                    variable,
                    value,
                } => (id, CtrlAnswer::Value(value), Some(variable)),
                CtrlMessage::Error {
                    id: Some(id),
                    reason,
                } => (id, CtrlAnswer::Error(reason), None),
                CtrlMessage::Error { id: None, reason } => {
                    return Err(Failure {
                        error: LookupError::Refused(format!(
                            "the HLR could not read the command: {reason}"
                        )),
                        stale: false,
                    });
                }
                CtrlMessage::Other => continue,
            };
            let Some(i) = expected.iter().position(|(e, _)| *e == id) else {
                tracing::debug!(id, "osmo-hlr: skipping an answer to no pending GET");
                continue;
            };
            if let Some(variable) = variable
                && variable != expected[i].1
            {
                return Err(malformed(format!(
                    "GET_REPLY {id} is for {variable:?}, not {:?}",
                    expected[i].1
                )));
            }
            if answers[i].replace(answer).is_none() {
                pending -= 1;
            }
        }
    }
    answers
        .into_iter()
        .map(|a| a.ok_or_else(|| malformed("an answer went missing".into())))
        .collect()
}

/// Reads a timestamp osmo-hlr wrote (`YYYY-MM-DD HH:MM:SS`, UTC; or unix seconds).
fn lu_time(value: rusqlite::types::ValueRef<'_>) -> Result<Option<i64>, String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(secs) => Ok(Some(secs.saturating_mul(1000))),
        ValueRef::Text(t) => {
            let t = std::str::from_utf8(t).map_err(|_| "last_lu_seen is not UTF-8".to_owned())?;
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
                .map(|dt| Some(dt.and_utc().timestamp_millis()))
                .ok_or_else(|| format!("last_lu_seen {t:?} is not a date and time"))
        }
        _ => Err("last_lu_seen is neither text nor a number".to_owned()),
    }
}

/// The last location update (CS or PS, the later) of each MSISDN, from the HLR's file opened
/// read-only.
fn read_last_seen(
    path: &Path,
    msisdns: &[String],
    timeout: Duration,
) -> Result<Vec<(String, Option<i64>)>, LookupError> {
    use rusqlite::{Connection, OpenFlags};
    let unavailable =
        |e: rusqlite::Error| LookupError::Unavailable(format!("the HLR database: {e}"));
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    db.busy_timeout(timeout).map_err(unavailable)?;
    // `last_lu_seen_ps` came with a later schema (db.c upgrade steps); fall back without it.
    let mut stmt = match db
        .prepare("SELECT last_lu_seen, last_lu_seen_ps FROM subscriber WHERE msisdn = ?1")
    {
        Ok(s) => s,
        Err(_) => db
            .prepare("SELECT last_lu_seen, NULL FROM subscriber WHERE msisdn = ?1")
            .map_err(unavailable)?,
    };
    let mut out = Vec::with_capacity(msisdns.len());
    for m in msisdns {
        let mut rows = stmt.query([m]).map_err(unavailable)?;
        let at = match rows.next().map_err(unavailable)? {
            None => None,
            Some(row) => {
                let cs = lu_time(row.get_ref(0).map_err(unavailable)?)
                    .map_err(LookupError::Malformed)?;
                let ps = lu_time(row.get_ref(1).map_err(unavailable)?)
                    .map_err(LookupError::Malformed)?;
                cs.max(ps)
            }
        };
        out.push((m.clone(), at));
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Provider for OsmoHlrProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }

    fn covers(&self, number: E164, _line_type: LineType, _region: Option<RegionCode>) -> bool {
        self.in_ranges(&number.as_u64().to_string())
    }

    async fn lookup(&self, numbers: &[E164]) -> Result<Vec<Answer>, LookupError> {
        let mut answers = Vec::with_capacity(numbers.len());
        let mut queries = Vec::with_capacity(numbers.len());
        for &number in numbers {
            match self.msisdn_for(number) {
                Some(m) => queries.push((number, m)),
                // Not ours (or no MSISDN under the rule): nothing to ask, nothing to say.
                None => answers.push(Answer {
                    number,
                    event: None,
                }),
            }
        }
        for chunk in queries.chunks(BATCH_SIZE) {
            let got = tokio::time::timeout(self.timeout, self.lookup_inner(chunk))
                .await
                .map_err(|_| LookupError::Timeout(self.timeout))??;
            answers.extend(got);
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(ranges: &[&str]) -> OsmoHlrConfig {
        OsmoHlrConfig {
            name: "hlr".into(),
            address: "127.0.0.1:1".into(),
            timeout_ms: 500,
            msisdn_rule: MsisdnRule::default(),
            ranges: ranges.iter().map(|s| (*s).to_owned()).collect(),
            database: None,
            recent_lu_days: 7,
        }
    }

    fn n(s: &str) -> E164 {
        s.parse().unwrap()
    }

    const INFO: &str = "\nid\t1\nimsi\t262420000000001\nmsisdn\t4915100000001\nnam_cs\t1\n\
        nam_ps\t1\nms_purged_cs\t0\nms_purged_ps\t0\nperiodic_lu_timer\t0\n\
        periodic_rau_tau_timer\t0\nlmsi\t00000000";

    #[test]
    fn osmo_ctrl_frame_has_ipa_header_and_ctrl_extension() {
        let m = Msisdn::new("4915100000001").unwrap();
        let bytes = info_command(7, &m).unwrap();
        let text = b"GET 7 subscriber.by-msisdn-4915100000001.info";
        assert_eq!(&bytes[..4], &[0, (text.len() + 1) as u8, 0xEE, 0x00]);
        assert_eq!(&bytes[4..], text);
    }

    #[test]
    fn osmo_msisdn_refuses_anything_but_digits() {
        assert!(Msisdn::new("").is_none());
        assert!(Msisdn::new("+49").is_none());
        assert!(Msisdn::new("49 1").is_none());
        assert!(Msisdn::new("49.info-all").is_none());
        assert!(Msisdn::new("1234567890123456").is_none());
        assert!(Msisdn::new("015100000001").is_some());
    }

    proptest! {
        #[test]
        fn osmo_command_is_only_ever_info(id in 1u32.., digits in "[0-9]{1,15}") {
            let m = Msisdn::new(&digits).unwrap();
            let bytes = info_command(id, &m).unwrap();
            let mut d = FrameDecoder::default();
            d.push(&bytes);
            let frame = d.next_frame().unwrap().unwrap();
            prop_assert_eq!(frame.proto, 0xEE);
            prop_assert_eq!(frame.body[0], 0x00);
            let text = std::str::from_utf8(&frame.body[1..]).unwrap();
            prop_assert_eq!(text, format!("GET {id} subscriber.by-msisdn-{digits}.info"));
            prop_assert!(!text.contains("info-"));
        }

        #[test]
        fn osmo_frames_round_trip_however_the_reads_cut(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..6),
            protos in proptest::collection::vec(prop_oneof![Just(0xEEu8), Just(0xFE), any::<u8>()], 6),
            cut in 1usize..64,
        ) {
            let mut stream = Vec::new();
            for (b, p) in bodies.iter().zip(&protos) {
                stream.extend(encode_frame(*p, b).unwrap());
            }
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got.len(), bodies.len());
            for ((f, b), p) in got.iter().zip(&bodies).zip(&protos) {
                prop_assert_eq!(&f.body, b);
                prop_assert_eq!(f.proto, *p);
            }
        }
    }

    #[test]
    fn osmo_decoder_waits_for_partial_frames() {
        let bytes = encode_ctrl(b"GET_REPLY 1 x y").unwrap();
        let mut d = FrameDecoder::default();
        d.push(&bytes[..2]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&bytes[2..5]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&bytes[5..]);
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!(f.body[1..], b"GET_REPLY 1 x y"[..]);
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn osmo_decoder_rejects_oversize_lengths_from_the_header_alone() {
        let mut d = FrameDecoder::default();
        d.push(&[0xFF, 0xFF, 0xEE]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(0xFFFF)));
        let mut d = FrameDecoder::default();
        d.push(&[0x10, 0x01, 0xEE]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(MAX_FRAME_LEN + 1)));
        assert!(encode_frame(0xEE, &vec![0; MAX_FRAME_LEN + 1]).is_err());
        let mut d = FrameDecoder::default();
        d.push(&[0, 0, 0xEE]);
        assert_eq!(d.next_frame(), Err(FrameError::MissingExtension(0xEE)));
    }

    #[test]
    fn osmo_ctrl_messages_parse() {
        assert_eq!(
            parse_ctrl(format!("GET_REPLY 3 subscriber.by-msisdn-1.info {INFO}").as_bytes()),
            Ok(CtrlMessage::GetReply {
                id: 3,
                variable: "subscriber.by-msisdn-1.info".into(),
                value: INFO.into()
            })
        );
        assert_eq!(
            parse_ctrl(b"ERROR 4 No such subscriber."),
            Ok(CtrlMessage::Error {
                id: Some(4),
                reason: "No such subscriber.".into()
            })
        );
        assert_eq!(
            parse_ctrl(b"ERROR err Invalid message ID number"),
            Ok(CtrlMessage::Error {
                id: None,
                reason: "Invalid message ID number".into()
            })
        );
        assert_eq!(parse_ctrl(b"TRAP 0 a b"), Ok(CtrlMessage::Other));
        assert!(parse_ctrl(b"GET_REPLY x v 1").is_err());
        assert!(parse_ctrl(b"").is_err());
        assert!(parse_ctrl(&[0xFF, 0xFE]).is_err());
    }

    #[test]
    fn osmo_info_parser_reads_the_fields() {
        let i = parse_info(INFO).unwrap();
        assert_eq!(i.id, 1);
        assert_eq!(i.msisdn.as_deref(), Some("4915100000001"));
        assert!(i.nam_cs && i.nam_ps && !i.ms_purged_cs && !i.ms_purged_ps);
        assert_eq!(i.vlr_number, None);
        let with_vlr = INFO.replace("nam_ps\t1\n", "nam_ps\t1\nvlr_number\t262-42-msc\n");
        assert_eq!(
            parse_info(&with_vlr).unwrap().vlr_number.as_deref(),
            Some("262-42-msc")
        );
        assert!(parse_info(&INFO.replace("nam_cs\t1", "nam_cs\tyes")).is_err());
        assert!(parse_info(&INFO.replace("\nid\t1", "")).is_err());
        assert!(parse_info(&INFO.replace("\nms_purged_ps\t0", "")).is_err());
        assert!(parse_info("\nid 1").is_err());
        assert!(parse_info("").is_err());
    }

    fn info(nam_cs: bool, nam_ps: bool, purged_cs: bool, vlr: bool) -> SubscriberInfo {
        SubscriberInfo {
            id: 1,
            msisdn: None,
            nam_cs,
            nam_ps,
            vlr_number: vlr.then(|| "msc".into()),
            sgsn_number: None,
            ms_purged_cs: purged_cs,
            ms_purged_ps: false,
        }
    }

    #[test]
    fn osmo_classification_follows_the_table() {
        let now = 100 * DAY_MS;
        let recent = LastSeen::At(Some(now - 2 * DAY_MS));
        let old = LastSeen::At(Some(now - 30 * DAY_MS));
        let c = |i, s| classify(&i, s, now, 7);
        assert_eq!(
            c(info(false, false, false, true), recent),
            code::ACCESS_DISABLED
        );
        assert_eq!(
            c(info(true, false, false, true), recent),
            code::LOCATION_UPDATE
        );
        assert_eq!(
            c(info(true, true, true, true), recent),
            code::LOCATION_UPDATE
        );
        assert_eq!(c(info(true, true, true, true), old), code::PURGED);
        assert_eq!(
            c(info(true, true, true, true), LastSeen::NoDatabase),
            code::PURGED
        );
        assert_eq!(
            c(info(true, true, false, true), LastSeen::NoDatabase),
            code::ATTACHED
        );
        assert_eq!(
            c(info(true, true, false, false), LastSeen::NoDatabase),
            code::KNOWN_IDLE
        );
        assert_eq!(c(info(true, true, false, true), old), code::KNOWN_IDLE);
        assert_eq!(
            c(info(true, true, false, true), LastSeen::At(None)),
            code::KNOWN_IDLE
        );
        let future = LastSeen::At(Some(now + 5 * DAY_MS));
        assert_eq!(c(info(true, true, false, false), future), code::KNOWN_IDLE);
    }

    #[test]
    fn osmo_every_code_is_in_the_shipped_table_with_its_class() {
        use numcheck_core::EvidenceClass::*;
        let table = numcheck_core::connectors::codebook::parse_table(include_str!(
            "../../numcheck-core/codes/osmo_hlr.csv"
        ))
        .unwrap();
        for (c, class) in [
            (code::NO_SUCH_SUBSCRIBER, StrongInactive),
            (code::ACCESS_DISABLED, StrongInactive),
            (code::PURGED, WeakInactive),
            (code::LOCATION_UPDATE, StrongActive),
            (code::ATTACHED, WeakActive),
            (code::KNOWN_IDLE, Neutral),
        ] {
            assert_eq!(table.get(c), Some(&class), "{c}");
        }
        assert_eq!(table.len(), 6);
    }

    #[test]
    fn osmo_msisdn_rule_and_ranges() {
        let p = OsmoHlrProvider::new(config(&["4915", "4916"])).unwrap();
        assert_eq!(
            p.msisdn_for(n("+4915112345678")).unwrap().as_str(),
            "4915112345678"
        );
        assert!(p.msisdn_for(n("+4917012345678")).is_none());
        assert!(p.covers(n("+4916012345678"), LineType::Mobile, None));
        assert!(!p.covers(n("+4930123456"), LineType::Mobile, None));
        let mut c = config(&["4915"]);
        c.msisdn_rule = MsisdnRule {
            strip_prefix: "49".into(),
            add_prefix: "0".into(),
        };
        let p = OsmoHlrProvider::new(c).unwrap();
        assert_eq!(
            p.msisdn_for(n("+4915112345678")).unwrap().as_str(),
            "015112345678"
        );
    }

    #[test]
    fn osmo_config_mistakes_are_named() {
        let bad = |f: fn(&mut OsmoHlrConfig)| {
            let mut c = config(&["4915"]);
            f(&mut c);
            OsmoHlrProvider::new(c).unwrap_err()
        };
        assert!(matches!(
            bad(|c| c.ranges.clear()),
            OsmoConfigError::NoRanges { .. }
        ));
        assert!(matches!(
            bad(|c| c.ranges = vec!["+4915".into()]),
            OsmoConfigError::BadRange { .. }
        ));
        assert!(matches!(
            bad(|c| c.msisdn_rule.strip_prefix = "44".into()),
            OsmoConfigError::RangeOutsideRule { .. }
        ));
        assert!(matches!(
            bad(|c| c.msisdn_rule.add_prefix = "+".into()),
            OsmoConfigError::BadRule { .. }
        ));
        assert!(matches!(
            bad(|c| c.address = "localhost".into()),
            OsmoConfigError::BadAddress { .. }
        ));
        assert!(matches!(
            bad(|c| c.timeout_ms = 0),
            OsmoConfigError::BadTimeout { .. }
        ));
        assert!(matches!(
            bad(|c| c.recent_lu_days = 0),
            OsmoConfigError::BadRecentDays { .. }
        ));
        assert!(matches!(
            bad(|c| c.database = Some("/nonexistent/hlr.db".into())),
            OsmoConfigError::MissingDatabase { .. }
        ));
        assert!(matches!(
            bad(|c| c.name = " ".into()),
            OsmoConfigError::EmptyName
        ));
    }

    #[test]
    fn osmo_config_reads_with_defaults_and_refuses_unknown_fields() {
        let c: OsmoHlrConfig = serde_json::from_str(r#"{"name":"own","ranges":["4915"]}"#).unwrap();
        assert_eq!(c.address, "127.0.0.1:4259");
        assert_eq!(c.timeout_ms, 2000);
        assert_eq!(c.recent_lu_days, 7);
        assert_eq!(c.msisdn_rule, MsisdnRule::default());
        assert!(
            serde_json::from_str::<OsmoHlrConfig>(r#"{"name":"o","ranges":[],"port":1}"#).is_err()
        );
        assert!(
            serde_json::from_str::<OsmoHlrConfig>(
                r#"{"name":"o","ranges":[],"msisdn_rule":{"strip":"49"}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn osmo_lu_times_read_as_osmo_hlr_writes_them() {
        use rusqlite::types::ValueRef;
        assert_eq!(
            lu_time(ValueRef::Text(b"1970-01-02 00:00:00")),
            Ok(Some(DAY_MS))
        );
        assert_eq!(lu_time(ValueRef::Integer(86_400)), Ok(Some(DAY_MS)));
        assert_eq!(lu_time(ValueRef::Null), Ok(None));
        assert!(lu_time(ValueRef::Text(b"yesterday")).is_err());
    }

    async fn fake_hlr(reply: Option<Vec<u8>>) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            if let Some(r) = reply {
                s.write_all(&r).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        addr
    }

    fn provider_at(addr: std::net::SocketAddr) -> OsmoHlrProvider {
        let mut c = config(&["4915"]);
        c.address = addr.to_string();
        c.timeout_ms = 300;
        OsmoHlrProvider::new(c).unwrap()
    }

    #[tokio::test]
    async fn osmo_silence_is_a_timeout() {
        let p = provider_at(fake_hlr(None).await);
        let r = p.lookup(&[n("+4915100000001")]).await;
        assert_eq!(r, Err(LookupError::Timeout(Duration::from_millis(300))));
    }

    #[tokio::test]
    async fn osmo_garbage_is_malformed() {
        let p = provider_at(fake_hlr(Some(vec![0xFF, 0xFF, 0xEE, 0])).await);
        let r = p.lookup(&[n("+4915100000001")]).await;
        assert!(matches!(r, Err(LookupError::Malformed(_))), "{r:?}");
        let reply =
            encode_ctrl(b"GET_REPLY 1 subscriber.by-msisdn-4915100000001.info \nid\t1").unwrap();
        let p = provider_at(fake_hlr(Some(reply)).await);
        let r = p.lookup(&[n("+4915100000001")]).await;
        assert!(matches!(r, Err(LookupError::Malformed(_))), "{r:?}");
    }

    #[tokio::test]
    async fn osmo_a_reply_for_another_variable_is_malformed() {
        let reply = encode_ctrl(
            format!("GET_REPLY 1 subscriber.by-msisdn-4915100000009.info {INFO}").as_bytes(),
        )
        .unwrap();
        let p = provider_at(fake_hlr(Some(reply)).await);
        let r = p.lookup(&[n("+4915100000001")]).await;
        assert!(matches!(r, Err(LookupError::Malformed(_))), "{r:?}");
    }

    #[tokio::test]
    async fn osmo_refused_connection_is_unavailable() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let p = provider_at(addr);
        let r = p.lookup(&[n("+4915100000001")]).await;
        assert!(matches!(r, Err(LookupError::Unavailable(_))), "{r:?}");
        // Numbers outside the ranges never touch the network.
        let r = p.lookup(&[n("+4930123456")]).await.unwrap();
        assert_eq!(
            r,
            vec![Answer {
                number: n("+4930123456"),
                event: None
            }]
        );
    }
}
