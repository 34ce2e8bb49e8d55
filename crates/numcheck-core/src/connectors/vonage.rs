//! Vonage (formerly Nexmo) SMS API delivery receipts: the webhook Vonage calls for each
//! receipt, as a GET query, a form-encoded POST, or a JSON POST (the account's webhook
//! setting decides which).
//!
//! Facts relied on (sources named, text not copied):
//! - Vonage "SMS API — Delivery receipts" guide (developer.vonage.com/messaging/sms/guides/
//!   delivery-receipts) and the SMS API reference's `DeliveryReceipt` model (as generated in
//!   Vonage's Go SDK, `internal/sms/model_delivery_receipt.go`): fields `msisdn` (the number
//!   the message was sent to), `to` (the sender id used as `from`), `network-code` (MCCMNC),
//!   `messageId`, `price`, `status`, `scts` (when the carrier's receipt arrived, `YYMMDDHHMM`),
//!   `err-code`, `api-key`, `client-ref`, `message-timestamp` (`YYYY-MM-DD HH:MM:SS`). In the
//!   guide's sample receipt every value is a JSON string.
//! - Status values: delivered, expired, failed, rejected, accepted, buffered, unknown. Vonage
//!   support article "What kind of Delivery Receipts does the Vonage API platform return?":
//!   accepted and buffered are intermediate; delivered, expired, failed, rejected are final,
//!   and Vonage itself emits `expired` when no final receipt came within 72 hours. Vonage's
//!   SMS Reports field reference lists UNKNOWN among final states, so `unknown` is final here.
//! - The same reference says `err-code` is to be ignored while the status is `accepted`.
//! - DLR error codes 0–15 and 99 (delivered, unknown, absent subscriber temporary/permanent,
//!   call barred by user, portability error, anti-spam rejection, handset busy, network error,
//!   illegal number, invalid message, unroutable, destination unreachable, subscriber age
//!   restriction, number blocked by carrier, pre-paid insufficient funds, general error):
//!   the guide's error-code table (see `codes/vonage_error.csv`).
//!
//! Time: `message-timestamp`, read as UTC; else `scts`, read as UTC too. In the guide's own
//! sample the two differ by exactly one hour (`12:10` and `…1310` for a UK number in October),
//! which suggests `scts` is the carrier's local time: it is only a fallback.

use chrono::NaiveDateTime;

use super::{
    Event, LineFormat, ParseError, bounded, error_code, field, form_pairs, international,
    json_object, json_text, status_codes,
};

/// Code table for `status` values (`codes/vonage_status.csv`).
pub const STATUS_TABLE: &str = "vonage_status";
/// Code table for `err-code` values (`codes/vonage_error.csv`).
pub const ERROR_TABLE: &str = "vonage_error";

/// Statuses after which a further receipt follows.
const NOT_FINAL: &[&str] = &["accepted", "buffered"];

/// The receipt's fields, wherever they came from.
#[derive(Debug, Default)]
struct Receipt {
    msisdn: Option<String>,
    message_id: Option<String>,
    status: Option<String>,
    err_code: Option<String>,
    message_timestamp: Option<String>,
    scts: Option<String>,
}

/// Reads a receipt sent as a GET query or a form-encoded POST (decoded pairs).
///
/// number = `msisdn`, message id = `messageId`, raw code = `status` or `status:err-code`
/// (when the error code is not `0`), codes = `[vonage_error(err-code)]` when non-zero, then
/// `[vonage_status(status)]`; `accepted` and `buffered` are not final.
pub fn callback_event_form(pairs: &[(String, String)]) -> Result<Event, ParseError> {
    let get = |name: &str| field(pairs, name).map(str::to_owned);
    build(Receipt {
        msisdn: get("msisdn"),
        message_id: get("messageId"),
        status: get("status"),
        err_code: get("err-code"),
        message_timestamp: get("message-timestamp"),
        scts: get("scts"),
    })
}

/// Reads a receipt sent as a JSON POST: one object with the same field names as the form.
/// Values may be strings or numbers; `null` counts as absent.
pub fn callback_event_json(body: &[u8]) -> Result<Event, ParseError> {
    let obj = json_object(body, "a delivery receipt is a JSON object")?;
    let get = |name: &str| json_text(&obj, name);
    build(Receipt {
        msisdn: get("msisdn")?,
        message_id: get("messageId")?,
        status: get("status")?,
        err_code: get("err-code")?,
        message_timestamp: get("message-timestamp")?,
        scts: get("scts")?,
    })
}

fn build(r: Receipt) -> Result<Event, ParseError> {
    let missing =
        |name: &str| ParseError::new("missing_field", format!("no {name} in the receipt"));
    let number = international(bounded(
        "msisdn",
        r.msisdn.as_deref().ok_or_else(|| missing("msisdn"))?,
    )?);
    let status = bounded(
        "status",
        r.status.as_deref().ok_or_else(|| missing("status"))?,
    )?
    .to_ascii_lowercase();
    if !status.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(ParseError::new(
            "invalid_field",
            format!("status {status:?} is not a status word"),
        ));
    }
    let message_id = r
        .message_id
        .as_deref()
        .map(|v| bounded("messageId", v))
        .transpose()?;
    let final_state = !NOT_FINAL.contains(&status.as_str());
    // While a message is only accepted the code is meaningless.
    let err = error_code("err-code", r.err_code.as_deref())?.filter(|_| final_state);
    let observed_at_ms = match (r.message_timestamp.as_deref(), r.scts.as_deref()) {
        (Some(ts), _) => Some(parse_message_timestamp(ts)?),
        (None, Some(scts)) => Some(parse_scts(scts)?),
        (None, None) => None,
    };
    let codes = status_codes(status, err, STATUS_TABLE, ERROR_TABLE);
    Ok(Event::sms_dlr(
        number,
        observed_at_ms,
        message_id,
        codes,
        final_state,
    ))
}

/// `YYYY-MM-DD HH:MM:SS`, UTC.
fn parse_message_timestamp(text: &str) -> Result<i64, ParseError> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp_millis())
        .map_err(|_| {
            ParseError::new(
                "invalid_date",
                format!(
                    "message-timestamp {:?} is not YYYY-MM-DD HH:MM:SS",
                    text.chars().take(40).collect::<String>()
                ),
            )
        })
}

/// `YYMMDDHHMM` (also `YYMMDDHHMMSS`), years 2000–2099, read as UTC.
fn parse_scts(text: &str) -> Result<i64, ParseError> {
    let t = text.trim();
    let bad = || {
        ParseError::new(
            "invalid_date",
            format!(
                "scts {:?} is not YYMMDDHHMM",
                t.chars().take(40).collect::<String>()
            ),
        )
    };
    if !(t.len() == 10 || t.len() == 12) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let full = if t.len() == 10 {
        format!("20{t}00")
    } else {
        format!("20{t}")
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .map(|d| d.and_utc().timestamp_millis())
        .map_err(|_| bad())
}

/// Import files of recorded Vonage receipts: one receipt a line, either a JSON object (a line
/// starting with `{`) or a form-encoded query string (an optional leading `?` is ignored).
#[derive(Debug, Default, Clone)]
pub struct VonageLines;

impl VonageLines {
    /// A reader for such a file.
    pub fn new() -> Self {
        VonageLines
    }
}

impl LineFormat for VonageLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let line = line.trim_ascii();
        if line.first() == Some(&b'{') {
            return callback_event_json(line).map(Some);
        }
        let query = line.strip_prefix(b"?").unwrap_or(line);
        callback_event_form(&form_pairs(query)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::connectors::Code;
    use crate::connectors::codebook::{shipped_class, shipped_row};
    use crate::connectors::event::{arbitrary_form_pairs, arbitrary_line, assert_codes, read_one};
    use crate::evidence::{EvidenceClass, EvidenceKind};
    use crate::evidence_rows::Row;

    /// A JSON receipt with the fields the Vonage delivery-receipt guide lists (values made up).
    fn json_receipt(status: &str, err: &str) -> String {
        format!(
            r#"{{"msisdn":"447700900123","to":"AcmeInc","network-code":"23410",
               "messageId":"0A0000001234ABCD","price":"0.03330000","status":"{status}",
               "scts":"2403151431","err-code":"{err}","api-key":"abcd1234",
               "message-timestamp":"2024-03-15 14:31:07"}}"#
        )
    }

    fn row(ev: Event) -> Row {
        shipped_row("vonage", ev)
    }

    fn class(status: &str, err: &str) -> EvidenceClass {
        shipped_class(
            "vonage",
            callback_event_json(json_receipt(status, err).as_bytes()).unwrap(),
        )
    }

    #[test]
    fn a_delivered_json_receipt() {
        let ev = callback_event_json(json_receipt("delivered", "0").as_bytes()).unwrap();
        let expected = Event {
            number: "+447700900123".into(),
            // 2024-03-15T14:31:07Z
            observed_at_ms: Some(1_710_513_067_000),
            kind: EvidenceKind::SmsDlr,
            raw_code: "delivered".into(),
            codes: vec![Code::Table(STATUS_TABLE, "delivered".into())],
            message_id: Some("0A0000001234ABCD".into()),
            final_state: true,
        };
        assert_eq!(ev, expected);
        let Row::Observation(o) = row(ev) else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::StrongActive);
        assert_eq!(o.number.as_u64(), 447700900123);
        assert_eq!(o.observed_at_ms, 1_710_513_067_000);
    }

    #[test]
    fn error_codes_decide_before_the_status() {
        let ev = callback_event_json(json_receipt("failed", "3").as_bytes()).unwrap();
        assert_codes(
            &ev,
            "failed:3",
            &[(ERROR_TABLE, "3"), (STATUS_TABLE, "failed")],
        );
        assert_eq!(class("failed", "3"), EvidenceClass::StrongInactive);
        assert_eq!(class("failed", "2"), EvidenceClass::WeakInactive);
        assert_eq!(class("expired", "2"), EvidenceClass::WeakInactive);
        assert_eq!(class("rejected", "6"), EvidenceClass::Neutral);
        assert_eq!(class("failed", "12"), EvidenceClass::WeakInactive);
        assert_eq!(class("rejected", "99"), EvidenceClass::Neutral);
        assert_eq!(class("failed", "4"), EvidenceClass::Neutral);
        // An error code no table lists falls through to the status.
        assert_eq!(class("failed", "42"), EvidenceClass::WeakInactive);
        assert_eq!(class("rejected", "42"), EvidenceClass::Neutral);
        assert_eq!(class("expired", "0"), EvidenceClass::Neutral);
        assert_eq!(class("unknown", "1"), EvidenceClass::Neutral);
    }

    #[test]
    fn accepted_and_buffered_are_not_final_and_ignore_err_code() {
        for s in ["accepted", "buffered"] {
            let ev = callback_event_json(json_receipt(s, "7").as_bytes()).unwrap();
            assert!(!ev.final_state, "{s}");
            assert_eq!(ev.raw_code, s);
            assert_eq!(row(ev), Row::NotFinal, "{s}");
        }
        let ev = callback_event_json(json_receipt("unknown", "0").as_bytes()).unwrap();
        assert!(ev.final_state);
    }

    #[test]
    fn a_get_query_receipt_reads_the_same() {
        let query = b"msisdn=447700900123&to=AcmeInc&network-code=23410&messageId=0A0000001234ABCD\
&price=0.03330000&status=failed&scts=2403151431&err-code=2&api-key=abcd1234\
&message-timestamp=2024-03-15+14%3A31%3A07";
        let ev = callback_event_form(&form_pairs(query)).unwrap();
        assert_eq!(ev.number, "+447700900123");
        assert_eq!(ev.raw_code, "failed:2");
        assert_eq!(ev.observed_at_ms, Some(1_710_513_067_000));
        assert_eq!(
            ev,
            callback_event_json(json_receipt("failed", "2").as_bytes()).unwrap()
        );
    }

    #[test]
    fn scts_is_the_fallback_time() {
        let q = b"msisdn=447700900123&messageId=X1&status=delivered&err-code=0&scts=2403151431";
        let ev = callback_event_form(&form_pairs(q)).unwrap();
        // 2024-03-15T14:31:00Z
        assert_eq!(ev.observed_at_ms, Some(1_710_513_060_000));
        let q = b"msisdn=447700900123&status=delivered";
        assert_eq!(
            callback_event_form(&form_pairs(q)).unwrap().observed_at_ms,
            None
        );
    }

    #[test]
    fn numbers_in_json_are_accepted() {
        let body = br#"{"msisdn":447700900123,"messageId":"X","status":"failed","err-code":3}"#;
        let ev = callback_event_json(body).unwrap();
        assert_eq!(ev.number, "+447700900123");
        assert_eq!(ev.raw_code, "failed:3");
        // Only bare international digits get a `+`; other forms are passed on as written.
        let body = br#"{"msisdn":"+447700900123","status":"delivered"}"#;
        assert_eq!(callback_event_json(body).unwrap().number, "+447700900123");
        let body = br#"{"msisdn":"07700900123","status":"delivered"}"#;
        assert_eq!(callback_event_json(body).unwrap().number, "07700900123");
    }

    #[test]
    fn malformed_receipts_have_stable_codes() {
        let code = |b: &[u8]| callback_event_json(b).unwrap_err().code;
        assert_eq!(code(b"not json"), "invalid_json");
        assert_eq!(code(b"[1,2]"), "invalid_json");
        assert_eq!(code(br#"{"status":"delivered"}"#), "missing_field");
        assert_eq!(code(br#"{"msisdn":"447700900123"}"#), "missing_field");
        assert_eq!(
            code(br#"{"msisdn":{"a":1},"status":"delivered"}"#),
            "invalid_field"
        );
        assert_eq!(
            code(br#"{"msisdn":"447700900123","status":"delivered","err-code":"x1"}"#),
            "invalid_field"
        );
        assert_eq!(
            code(br#"{"msisdn":"447700900123","status":"delivered","message-timestamp":"15/03/2024"}"#),
            "invalid_date"
        );
        assert_eq!(
            code(br#"{"msisdn":"447700900123","status":"delivered","scts":"2413991431"}"#),
            "invalid_date"
        );
        assert_eq!(
            code(br#"{"msisdn":"447700900123","status":"delivered","scts":"24031514"}"#),
            "invalid_date"
        );
        let form = form_pairs(b"msisdn=447700900123&status=de+livered");
        assert_eq!(
            callback_event_form(&form).unwrap_err().code,
            "invalid_field"
        );
    }

    #[test]
    fn import_lines_take_json_or_query_strings() {
        let mut f = VonageLines::new();
        let a = read_one(&mut f, json_receipt("delivered", "0").as_bytes());
        let b = read_one(&mut f, b"?msisdn=447700900123&messageId=0A0000001234ABCD&status=delivered&err-code=0&message-timestamp=2024-03-15%2014:31:07");
        assert_eq!(a, b);
        assert_eq!(f.line(b"{oops").unwrap_err().code, "invalid_json");
        assert_eq!(
            f.line(b"status=delivered").unwrap_err().code,
            "missing_field"
        );
    }

    proptest::proptest! {
        #[test]
        fn random_form_pairs_never_panic(
            p in arbitrary_form_pairs(
                &["msisdn", "status", "messageId", "err-code", "scts", "message-timestamp", "to"],
                ".{0,64}",
            )
        ) {
            let _ = callback_event_form(&p);
        }

        #[test]
        fn random_json_never_panics(
            msisdn in proptest::option::of(".{0,20}"),
            status in proptest::option::of("[a-z]{0,10}"),
            err in proptest::option::of(0u64..200),
            ts in proptest::option::of(".{0,25}"),
            scts in proptest::option::of("[0-9]{0,13}"),
        ) {
            let mut obj = serde_json::Map::new();
            if let Some(v) = msisdn { obj.insert("msisdn".into(), v.into()); }
            if let Some(v) = status { obj.insert("status".into(), v.into()); }
            if let Some(v) = err { obj.insert("err-code".into(), v.into()); }
            if let Some(v) = ts { obj.insert("message-timestamp".into(), v.into()); }
            if let Some(v) = scts { obj.insert("scts".into(), v.into()); }
            let body = serde_json::to_vec(&Value::Object(obj)).unwrap_or_default();
            let _ = callback_event_json(&body);
        }

        #[test]
        fn random_lines_never_panic(line in arbitrary_line(400)) {
            let _ = VonageLines::new().line(&line);
        }
    }
}
