//! Jasmin SMS gateway: the HTTP DLR callback and the `messages.log` lines.
//!
//! # The DLR callback
//!
//! When a message is sent through Jasmin's HTTP API with `dlr=yes`, `dlr-url`,
//! `dlr-level` and `dlr-method`, Jasmin's DLRThrower calls `dlr-url` with form fields
//! (Jasmin docs, "HTTP API" → "Receiving DLR"; `jasmin/routing/throwers.py`,
//! `DLRThrower.http_dlr_callback`):
//!
//! * always `id` (Jasmin's message UUID, the one the send call returned), `message_status`
//!   and `level`;
//! * for a terminal receipt also `id_smsc`, `sub`, `dlvrd`, `subdate`, `donedate`
//!   (`YYMMDDhhmm`), `err` and `text` (first 20 characters of the message).
//!
//! `level` 1 is the SMSC-level report: `message_status` is the `submit_sm_resp` command status
//! (`ESME_ROK`, `ESME_RINVDSTADR`, …), sent for a requested level of 1 or 3. Level 2 (also
//! sent as 2 when level 3 was requested; `jasmin/managers/listeners.py`) carries the
//! receipt: `message_status` is one of `DELIVRD`, `EXPIRED`, `DELETED`, `UNDELIV`, `ACCEPTD`,
//! `UNKNOWN`, `REJECTD` (`jasmin/managers/content.py`, `DLRContentForHttpapi`). Jasmin 0.11 also
//! sends `connector` (the connector's name at level 1, the SMSC's message id at level 2); it
//! is not used.
//!
//! The endpoint must answer `200 OK` with the body `ACK/Jasmin` exactly, or Jasmin retries
//! the DLR (up to `dlr-thrower.max_retries`) — the HTTP layer's job, not this parser's.
//!
//! **The callback does not carry the destination number.** Jasmin has no escape codes or
//! custom parameters for the callback; `dlr-url` is given per message, so the sender must put
//! the number into it, e.g. `dlr-url=https://numcheck.example/v1/webhooks/jasmin/<source>?token=…&to=%2B14155552671`.
//! For `dlr-method=GET`, Jasmin 0.11.0 appends its fields to the `dlr-url`'s query with `&`
//! (seen by the gateway test, `numcheck-server/tests/gateways`). Older releases' code
//! appended `?` without checking for an existing query (`baseurl += '?%s' % encodedArgs`),
//! which gives `…&to=%2B14155552671?id=…&level=2&…`: the first Jasmin field glued to the
//! value of the last field of `dlr-url`. [`callback_event`] repairs that too (a value holding
//! a `?` followed by `name=value` is split). With `dlr-method=POST` the fields come in the
//! body. The HTTP layer may also pass the number it took from the path as `number`.
//!
//! # `messages.log`
//!
//! Jasmin's SMPP client logs (`jasmin/managers/listeners.py`) write, after the usual
//! `date time LEVEL pid` prefix:
//!
//! ```text
//! SMS-MT [cid:smsc1] [queue-msgid:b1e5…] [smpp-msgid:0A1B2C] [status:ESME_ROK] [prio:0] [dlr:SMSC_DELIVERY_RECEIPT_REQUESTED] [validity:none] [from:MyBrand] [to:14155552671] [content:'Hello']
//! DLR [cid:smsc1] [smpp-msgid:A1B2C] [status:DELIVRD] [submit date:2405010959] [done date:2405011000] [sub/dlvrd messages:001/001] [err:000] [content:'Hello']
//! ```
//!
//! **The DLR line has no destination number**; only the `SMS-MT` line of the same message
//! has it. [`JasminLogLines`] therefore remembers, from `SMS-MT` lines, which number and
//! queue id each SMSC message id belongs to (up to [`JasminLogLines::MEMORY`] messages,
//! oldest forgotten first), and gives a DLR line the number of its `SMS-MT` line. A DLR line
//! whose `SMS-MT` line was not seen earlier in the same import is refused
//! (`unknown_message`). Ids are matched upper-cased without leading zeros, as Jasmin itself
//! maps them; Python 3 releases write some values as `b'…'`, which is unwrapped. A Jasmin
//! configured to convert DLR ids between bases (`dlr_msg_id_bases`) logs ids that will not
//! match. `SMS-MT` lines yield no event.

use std::collections::{HashMap, VecDeque};

use super::smpp::{Receipt, parse_date, receipt_event};
use super::{Event, LineFormat, MAX_FIELD, ParseError, bounded, field, form_pairs};
use crate::evidence::EvidenceKind;

/// Repairs pairs from a GET callback whose `dlr-url` already had a query: a value holding
/// `?name=…` is cut there and the rest read as further pairs.
fn repair_glued(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(pairs.len() + 1);
    for (k, v) in pairs {
        match v.split_once('?') {
            Some((head, tail)) if tail.contains('=') => {
                out.push((k.clone(), head.to_owned()));
                out.extend(form_pairs(tail.as_bytes()));
            }
            _ => out.push((k.clone(), v.clone())),
        }
    }
    out
}

fn required<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, ParseError> {
    field(pairs, name).ok_or_else(|| ParseError::new("missing_field", format!("no {name}")))
}

/// Reads a Jasmin DLR callback (see the module documentation). `number` is the destination
/// when the HTTP layer knows it (say, from the URL path); otherwise the `to` field is used.
/// The event's message id is Jasmin's `id`, the same for the level-1 and level-2 reports.
pub fn callback_event(
    pairs: &[(String, String)],
    number: Option<&str>,
) -> Result<Event, ParseError> {
    let pairs = repair_glued(pairs);
    let number = match number.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => field(&pairs, "to").ok_or_else(|| {
            ParseError::new(
                "missing_field",
                "no destination number: Jasmin does not send one, put to=<number> in the dlr-url",
            )
        })?,
    };
    let number = bounded("to", number)?;
    let id = bounded("id", required(&pairs, "id")?)?;
    let status = bounded("message_status", required(&pairs, "message_status")?)?;
    let level = required(&pairs, "level")?;
    match level {
        "1" => Ok(Event {
            number,
            observed_at_ms: None,
            kind: EvidenceKind::SmsDlr,
            raw_code: status,
            codes: Vec::new(),
            message_id: Some(id),
            final_state: false,
        }),
        "2" | "3" => {
            let opt = |name: &str| -> Result<Option<String>, ParseError> {
                field(&pairs, name).map(|v| bounded(name, v)).transpose()
            };
            let receipt = Receipt {
                id: opt("id_smsc")?,
                sub: field(&pairs, "sub").and_then(|v| v.parse().ok()),
                dlvrd: field(&pairs, "dlvrd").and_then(|v| v.parse().ok()),
                submit_date_ms: field(&pairs, "subdate").map(parse_date).transpose()?,
                done_date_ms: field(&pairs, "donedate").map(parse_date).transpose()?,
                stat: status.to_ascii_uppercase(),
                err: opt("err")?,
                text: field(&pairs, "text").map(|t| t.chars().take(MAX_FIELD / 4).collect()),
            };
            let mut event = receipt_event(&number, &receipt, None);
            event.message_id = Some(id);
            Ok(event)
        }
        other => Err(ParseError::new(
            "invalid_field",
            format!("level {other:?} is not 1, 2 or 3"),
        )),
    }
}

/// Unwraps Python's `b'…'` / `'…'` rendering of a logged value.
fn unpy(v: &str) -> &str {
    let v = v.trim();
    let v = v
        .strip_prefix('b')
        .filter(|r| r.starts_with('\''))
        .unwrap_or(v);
    v.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .unwrap_or(v)
}

/// The value of `[key:…]` in a log line, to the next `]`.
fn bracket<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let marker = format!("[{key}:");
    let start = line.find(&marker)? + marker.len();
    let rest = &line[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    Some(unpy(&rest[..end]))
}

/// How ids are matched between `SMS-MT` and `DLR` lines: upper case, no leading zeros.
fn id_key(id: &str) -> String {
    let up = id.trim().to_ascii_uppercase();
    let stripped = up.trim_start_matches('0');
    if stripped.is_empty() {
        "0".to_owned()
    } else {
        stripped.to_owned()
    }
}

/// Jasmin `messages.log` lines; see the module documentation. Keeps state across lines of
/// one import (the numbers of messages seen in `SMS-MT` lines).
#[derive(Debug, Default, Clone)]
pub struct JasminLogLines {
    sent: HashMap<String, (String, Option<String>)>,
    order: VecDeque<String>,
}

impl JasminLogLines {
    /// How many sent messages are remembered for matching their DLR lines.
    pub const MEMORY: usize = 200_000;

    pub fn new() -> Self {
        JasminLogLines::default()
    }

    fn remember(&mut self, smpp_id: String, number: String, queue_id: Option<String>) {
        if self
            .sent
            .insert(smpp_id.clone(), (number, queue_id))
            .is_none()
        {
            self.order.push_back(smpp_id);
            while self.order.len() > Self::MEMORY {
                if let Some(old) = self.order.pop_front() {
                    self.sent.remove(&old);
                }
            }
        }
    }
}

impl LineFormat for JasminLogLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let line = String::from_utf8_lossy(line);
        if let Some(at) = line.find("SMS-MT [") {
            let rec = &line[at..];
            // Only accepted submissions have an smpp-msgid; error lines carry none.
            if let (Some(smpp_id), Some(to)) = (bracket(rec, "smpp-msgid"), bracket(rec, "to"))
                && !smpp_id.is_empty()
                && !to.is_empty()
                && smpp_id.len() <= MAX_FIELD
                && to.len() <= MAX_FIELD
            {
                let queue_id = bracket(rec, "queue-msgid")
                    .filter(|q| !q.is_empty() && q.len() <= MAX_FIELD)
                    .map(str::to_owned);
                self.remember(id_key(smpp_id), to.to_owned(), queue_id);
            }
            return Ok(None);
        }
        let Some(at) = line.find("DLR [cid:") else {
            return Ok(None);
        };
        let rec = &line[at..];
        let smpp_id = bracket(rec, "smpp-msgid")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ParseError::new("missing_field", "the DLR line has no smpp-msgid"))?;
        let smpp_id = bounded("smpp-msgid", smpp_id)?;
        let status = bracket(rec, "status")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ParseError::new("missing_field", "the DLR line has no status"))?;
        let status = bounded("status", status)?;
        let (number, queue_id) = self.sent.get(&id_key(&smpp_id)).cloned().ok_or_else(|| {
            ParseError::new(
                "unknown_message",
                format!(
                    "no SMS-MT line for smpp-msgid {smpp_id:?} earlier in this import: \
                     Jasmin's DLR lines do not carry the destination number"
                ),
            )
        })?;
        let date = |key: &str| -> Result<Option<i64>, ParseError> {
            bracket(rec, key)
                .filter(|v| !v.is_empty() && *v != "None")
                .map(parse_date)
                .transpose()
        };
        let (sub, dlvrd) = bracket(rec, "sub/dlvrd messages")
            .and_then(|v| v.split_once('/'))
            .map_or((None, None), |(s, d)| {
                (unpy(s).parse().ok(), unpy(d).parse().ok())
            });
        let receipt = Receipt {
            id: Some(smpp_id),
            sub,
            dlvrd,
            submit_date_ms: date("submit date")?,
            done_date_ms: date("done date")?,
            stat: status.to_ascii_uppercase(),
            err: bracket(rec, "err")
                .filter(|v| !v.is_empty() && *v != "None")
                .map(|v| bounded("err", v))
                .transpose()?,
            text: None,
        };
        let mut event = receipt_event(&number, &receipt, None);
        if queue_id.is_some() {
            // Jasmin's queue id is the `id` of its HTTP callbacks: one identity for both.
            event.message_id = queue_id;
        }
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::codebook::{CodeBook, SourceSpec, observe};
    use crate::connectors::event::read_one;
    use crate::evidence::EvidenceClass;
    use crate::evidence_rows::Row;
    use chrono::NaiveDate;

    const UUID: &str = "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn level2_body() -> String {
        format!(
            "id={UUID}&id_smsc=0A1B2C&message_status=UNDELIV&level=2&subdate=2405010959\
             &donedate=2405011000&sub=001&dlvrd=000&err=001&text=Your+code+is+4821"
        )
    }

    #[test]
    fn level2_post_with_to_in_the_query() {
        // POST: Jasmin's fields in the body, numcheck's `to` in the dlr-url query.
        let mut p = form_pairs(b"token=t&to=%2B14155552671");
        p.extend(form_pairs(level2_body().as_bytes()));
        let e = callback_event(&p, None).unwrap();
        assert_eq!(e.number, "+14155552671");
        crate::connectors::smpp::assert_undeliv_001(&e);
        assert_eq!(e.observed_at_ms, Some(ms(2024, 5, 1, 10, 0)));
        assert_eq!(e.message_id.as_deref(), Some(UUID));
        assert!(e.final_state);
    }

    #[test]
    fn level2_get_with_the_glued_query_is_repaired() {
        let q = format!("token=t&to=%2B14155552671?{}", level2_body());
        let e = callback_event(&form_pairs(q.as_bytes()), None).unwrap();
        assert_eq!(e.number, "+14155552671");
        assert_eq!(e.message_id.as_deref(), Some(UUID));
        assert_eq!(e.raw_code, "UNDELIV:001");
    }

    #[test]
    fn level1_is_not_final_and_a_path_number_wins() {
        let q = format!("id={UUID}&message_status=ESME_ROK&level=1&to=999");
        let e = callback_event(&form_pairs(q.as_bytes()), Some("+447700900123")).unwrap();
        assert_eq!(e.number, "+447700900123");
        assert_eq!(e.raw_code, "ESME_ROK");
        assert!(!e.final_state);
        assert_eq!(e.message_id.as_deref(), Some(UUID));
        let book = CodeBook::shipped();
        assert_eq!(
            observe(&book, &SourceSpec::new("j"), e, 0).unwrap(),
            Row::NotFinal
        );
    }

    #[test]
    fn callback_errors() {
        let p = form_pairs(level2_body().as_bytes());
        assert_eq!(callback_event(&p, None).unwrap_err().code, "missing_field");
        for (query, code) in [
            (
                format!("to=1&id={UUID}&message_status=DELIVRD&level=7"),
                "invalid_field",
            ),
            (
                format!("to=1&id={UUID}&message_status=DELIVRD&level=2&donedate=24"),
                "invalid_date",
            ),
            (
                "to=1&message_status=DELIVRD&level=2".to_owned(),
                "missing_field",
            ),
        ] {
            let e = callback_event(&form_pairs(query.as_bytes()), None).unwrap_err();
            assert_eq!(e.code, code, "{query}");
        }
    }

    #[test]
    fn delivered_callback_observes_strong_active() {
        let q = format!(
            "to=%2B14155552671&id={UUID}&id_smsc=99&message_status=DELIVRD&level=3\
             &subdate=2405010959&donedate=2405011000&sub=001&dlvrd=001&err=000&text=hi"
        );
        let e = callback_event(&form_pairs(q.as_bytes()), None).unwrap();
        assert_eq!(e.raw_code, "DELIVRD");
        let book = CodeBook::shipped();
        let Row::Observation(o) =
            observe(&book, &SourceSpec::new("j"), e, ms(2024, 5, 2, 0, 0)).unwrap()
        else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::StrongActive);
    }

    const MT: &str = "2024-05-01 09:59:58 INFO     4242 SMS-MT [cid:smsc1] \
        [queue-msgid:6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b] [smpp-msgid:b'000A1B2C'] \
        [status:CommandStatus.ESME_ROK] [prio:0] [dlr:RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED] \
        [validity:none] [from:b'MyBrand'] [to:b'14155552671'] [content:b'Your code is 4821']";
    const DLR: &str = "2024-05-01 10:00:01 INFO     4242 DLR [cid:smsc1] [smpp-msgid:A1B2C] \
        [status:EXPIRED] [submit date:2405010959] [done date:2405011000] \
        [sub/dlvrd messages:001/000] [err:027] [content:'Your code is 4821']";

    #[test]
    fn log_dlr_lines_take_the_number_of_their_sms_mt_line() {
        let mut f = JasminLogLines::new();
        assert_eq!(f.line(DLR.as_bytes()).unwrap_err().code, "unknown_message");
        assert_eq!(f.line(MT.as_bytes()).unwrap(), None);
        let e = read_one(&mut f, DLR.as_bytes());
        assert_eq!(e.number, "14155552671");
        assert_eq!(e.raw_code, "EXPIRED:027");
        assert_eq!(e.message_id.as_deref(), Some(UUID));
        assert_eq!(e.observed_at_ms, Some(ms(2024, 5, 1, 10, 0)));
        assert!(e.final_state);
        let book = CodeBook::shipped();
        let mut src = SourceSpec::new("jasmin");
        src.default_region = None;
        let Row::Observation(o) = observe(&book, &src, e.clone(), ms(2024, 5, 2, 0, 0)).unwrap()
        else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::WeakInactive);
        // Other lines carry nothing.
        assert_eq!(
            f.line(b"2024-05-01 10:00:00 INFO     4242 Connected to smsc1")
                .unwrap(),
            None
        );
        let err_mt = "2024-05-01 10:00:00 ERROR    4242 SMS-MT [cid:smsc1] [queue-msgid:q2] \
                      [status:ERROR/ESME_RINVDSTADR] [retry:False] [prio:0] [dlr:x] \
                      [validity:none] [from:a] [to:b'1'] [content:'x']";
        assert_eq!(f.line(err_mt.as_bytes()).unwrap(), None);
        assert_eq!(f.sent.len(), 1);
    }

    #[test]
    fn log_memory_is_bounded() {
        let mut f = JasminLogLines::new();
        for i in 0..(JasminLogLines::MEMORY + 10) {
            f.remember(format!("{i}"), "1".into(), None);
        }
        assert_eq!(f.sent.len(), JasminLogLines::MEMORY);
        assert!(!f.sent.contains_key("0") && f.sent.contains_key("10"));
    }

    #[test]
    fn unpy_and_id_keys() {
        assert_eq!(unpy("b'0A1'"), "0A1");
        assert_eq!(unpy("'x'"), "x");
        assert_eq!(unpy("plain"), "plain");
        assert_eq!(unpy("b"), "b");
        assert_eq!(id_key("000a1b"), "A1B");
        assert_eq!(id_key("000"), "0");
    }
}
