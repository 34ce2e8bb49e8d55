//! Twilio Programmable Messaging status callbacks: the form-encoded POST Twilio sends to a
//! message's `StatusCallback` URL each time the message changes status, and the
//! `X-Twilio-Signature` header that authenticates it.
//!
//! Facts relied on (sources named, text not copied):
//! - Twilio, "Track the Message Status of Outbound Messages" and "Outbound Message Status in
//!   Status Callbacks" (twilio.com/docs/messaging/guides/…): callbacks are HTTP POSTs of
//!   `application/x-www-form-urlencoded` parameters; they carry a subset of the Message's
//!   request properties (`MessageSid`, `SmsSid`, `AccountSid`, `From`, `To`, `ApiVersion`, …)
//!   plus `MessageStatus` and `ErrorCode`; Twilio may add parameters without notice; no
//!   callback is sent for a message's initial status (`queued`, or `accepted` / `scheduled`
//!   with a Messaging Service).
//! - Twilio Message resource status values (the REST API's `MessageEnumStatus`): queued,
//!   sending, sent, failed, delivered, undelivered, receiving, received, accepted, scheduled,
//!   read, partially_delivered, canceled.
//! - Twilio error 30409 page: `canceled` applies only to a scheduled message canceled before
//!   it was sent.
//! - Twilio "Webhooks security" (twilio.com/docs/usage/webhooks/webhooks-security): the
//!   signature is HMAC-SHA1 keyed with the account's Auth Token, base64-encoded, over the full
//!   request URL followed by the POST parameters sorted by name, each name immediately
//!   followed by its value. Twilio's helper libraries (twilio-php `RequestValidator`, its
//!   unit tests) sort repeated names by value and drop exact duplicate pairs; the tests
//!   below pin both behaviours with the SDK's published vectors.
//!
//! Callbacks carry no event time, so a live callback's [`Event::observed_at_ms`] is `None`
//! (receipt time). A file of recorded records is different: its lines were written long
//! before the import, so [`TwilioLines`] takes each line's time from its own date fields
//! (`DateUpdated`, `DateSent`, `DateCreated` — the Message resource's fields, RFC 2822 as
//! Twilio's REST API writes them, or RFC 3339 — or a `Timestamp` a recorder added) and
//! refuses a line without one unless the import names the time to assume.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{
    Event, LineFormat, ParseError, bounded, error_code, field, form_pairs, lists, status_codes,
};

/// Code table for `MessageStatus` values (`codes/twilio_status.csv`).
pub const STATUS_TABLE: &str = "twilio_status";
/// Code table for `ErrorCode` values (`codes/twilio_error.csv`).
pub const ERROR_TABLE: &str = "twilio_error";

/// Statuses that are not evidence about the number.
///
/// `queued`, `sending`, `sent`, `accepted`, `scheduled` are steps before a final outcome;
/// `receiving` / `received` belong to inbound messages. `canceled` is terminal for the
/// message, but it only happens to a scheduled message canceled before Twilio sent it
/// (Twilio error 30409): the number was never contacted, so it says nothing about it and is
/// treated as not final (read and counted, never stored).
const NOT_FINAL: &[&str] = &[
    "queued",
    "sending",
    "sent",
    "accepted",
    "scheduled",
    "canceled",
    "receiving",
    "received",
];

type HmacSha1 = Hmac<Sha1>;

/// Reads one status callback from its form pairs.
///
/// - number: `To` (required);
/// - message id: `MessageSid`, else `SmsSid`;
/// - status: `MessageStatus`, else `SmsStatus` (required), lower-cased;
/// - raw code: the status, or `status:ErrorCode` when an error code other than `0` is
///   present (`undelivered:30003`);
/// - codes: `[twilio_error(ErrorCode)]` when present and non-zero, then
///   `[twilio_status(status)]`;
/// - final: everything except the states in the module's non-final list (`read` is final and
///   implies delivery). Unknown statuses are final, so an unlisted status reaches the code
///   book and is refused there (`unknown_code`) instead of being silently dropped.
pub fn callback_event(pairs: &[(String, String)]) -> Result<Event, ParseError> {
    let number = bounded("To", required(pairs, &["To"])?)?;
    let status = bounded(
        "MessageStatus",
        required(pairs, &["MessageStatus", "SmsStatus"])?,
    )?
    .to_ascii_lowercase();
    if !status
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-')
    {
        return Err(ParseError::new(
            "invalid_field",
            format!("MessageStatus {status:?} is not a status word"),
        ));
    }
    let message_id = match field(pairs, "MessageSid").or_else(|| field(pairs, "SmsSid")) {
        Some(v) => Some(bounded("MessageSid", v)?),
        None => None,
    };
    let error = error_code("ErrorCode", field(pairs, "ErrorCode"))?;

    let final_state = !NOT_FINAL.contains(&status.as_str());
    let codes = status_codes(status, error, STATUS_TABLE, ERROR_TABLE);
    Ok(Event::sms_dlr(number, None, message_id, codes, final_state))
}

fn required<'a>(pairs: &'a [(String, String)], names: &[&str]) -> Result<&'a str, ParseError> {
    names
        .iter()
        .find_map(|n| field(pairs, n))
        .ok_or_else(|| ParseError::new("missing_field", format!("no {} in the callback", names[0])))
}

/// The MAC over Twilio's signed string: `url`, then every pair sorted by name (then value),
/// exact duplicate pairs once, each name immediately followed by its value.
fn signed_mac(auth_token: &str, url: &str, pairs: &[(String, String)]) -> Option<HmacSha1> {
    // HMAC takes keys of any length, so this never fails; the `Option` keeps the code free
    // of `unwrap`.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).ok()?;
    mac.update(url.as_bytes());
    let mut sorted: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    Some(mac)
}

/// The `X-Twilio-Signature` Twilio would send for a form-encoded POST of `pairs` (decoded
/// names and values) to `url` (the full URL exactly as configured at Twilio, with its query
/// string), signed with the account's `auth_token`.
pub fn signature(auth_token: &str, url: &str, pairs: &[(String, String)]) -> String {
    match signed_mac(auth_token, url, pairs) {
        Some(mac) => STANDARD.encode(mac.finalize().into_bytes()),
        None => String::new(),
    }
}

/// Whether `header_value` (the request's `X-Twilio-Signature`) is Twilio's signature of this
/// request. The comparison is constant-time ([`Mac::verify_slice`]); a header that is not
/// base64 or is empty is refused. The URL must be the one Twilio requested, byte for byte
/// (scheme, host, port as configured, query string) — behind a proxy, rebuild it from the
/// configured callback URL rather than from the proxied request.
pub fn verify(auth_token: &str, url: &str, pairs: &[(String, String)], header_value: &str) -> bool {
    let Ok(given) = STANDARD.decode(header_value.trim().as_bytes()) else {
        return false;
    };
    if given.is_empty() {
        return false;
    }
    match signed_mac(auth_token, url, pairs) {
        Some(mac) => mac.verify_slice(&given).is_ok(),
        None => false,
    }
}

/// The date fields a recorded line may carry, in the order they are preferred: the time of
/// the status change first (`DateUpdated`), then when the message went out, then a
/// recorder's own stamp, then when it was created. Both the callback spelling and the REST
/// API's JSON spelling are read.
const TIME_FIELDS: &[(&str, &str)] = &[
    ("DateUpdated", "date_updated"),
    ("DateSent", "date_sent"),
    ("Timestamp", "timestamp"),
    ("DateCreated", "date_created"),
];

/// The REST API's Message resource names (JSON lines) and the callback names they stand for.
const JSON_NAMES: &[(&str, &str)] = &[
    ("to", "To"),
    ("status", "MessageStatus"),
    ("error_code", "ErrorCode"),
    ("sid", "MessageSid"),
    ("date_updated", "DateUpdated"),
    ("date_sent", "DateSent"),
    ("date_created", "DateCreated"),
    ("timestamp", "Timestamp"),
];

/// A date as Twilio writes it (RFC 2822, `Thu, 24 Aug 2023 05:01:45 +0000`), or any time an
/// HLR result may carry ([`lists::result_time`]: RFC 3339, Unix seconds or milliseconds, …).
fn parse_date(name: &str, text: &str) -> Result<i64, ParseError> {
    let t = text.trim();
    chrono::DateTime::parse_from_rfc2822(t)
        .map(|dt| dt.timestamp_millis())
        .ok()
        .or_else(|| lists::result_time(t, false))
        .ok_or_else(|| {
            ParseError::new(
                "invalid_date",
                format!(
                    "{name} {:?} is not a date like \"Thu, 24 Aug 2023 05:01:45 +0000\", RFC 3339 or Unix time",
                    super::record::excerpt(t)
                ),
            )
        })
}

/// When a recorded line happened, from its own date fields; `None` when it has none.
fn recorded_time(pairs: &[(String, String)]) -> Result<Option<i64>, ParseError> {
    for (name, json_name) in TIME_FIELDS {
        if let Some(v) = field(pairs, name).or_else(|| field(pairs, json_name)) {
            return parse_date(name, v).map(Some);
        }
    }
    Ok(None)
}

/// A JSON line (a Message resource as the REST API returns it) as callback pairs.
fn json_pairs(line: &[u8]) -> Result<Vec<(String, String)>, ParseError> {
    let obj = super::event::json_object(line, "a JSON line must be one Message object")?;
    let mut pairs = Vec::new();
    for (json, callback) in JSON_NAMES {
        if let Some(v) = super::event::json_text(&obj, json)? {
            pairs.push(((*callback).to_owned(), v));
        }
    }
    Ok(pairs)
}

/// Import files of recorded Twilio status records, one a line: a callback's form-encoded
/// body (`MessageSid=SM…&MessageStatus=delivered&To=%2B1…&DateUpdated=…`), or a Message
/// resource as JSON (`{"sid":"SM…","to":"+1…","status":"delivered","date_updated":…}`).
/// Each line's time comes from its date fields; a line without one is refused
/// (`missing_time`) unless the reader was given a time to assume. A line that is not a
/// record is an error.
#[derive(Debug, Default, Clone)]
pub struct TwilioLines {
    assume_ms: Option<i64>,
}

impl TwilioLines {
    /// A reader for such a file; lines without a date are refused.
    pub fn new() -> Self {
        TwilioLines { assume_ms: None }
    }

    /// A reader that dates lines without a date field at `assume_ms`.
    pub fn assuming(assume_ms: Option<i64>) -> Self {
        TwilioLines { assume_ms }
    }
}

impl LineFormat for TwilioLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let line = line.trim_ascii();
        let pairs = if line.first() == Some(&b'{') {
            json_pairs(line)?
        } else {
            form_pairs(line)
        };
        let mut event = callback_event(&pairs)?;
        event.observed_at_ms = match recorded_time(&pairs)? {
            Some(t) => Some(t),
            None => Some(self.assume_ms.ok_or_else(|| {
                ParseError::new(
                    "missing_time",
                    "the record has no DateUpdated, DateSent, Timestamp or DateCreated; \
                     add one, or import with assume_time=<RFC 3339 time> (or now) to date \
                     every undated line",
                )
            })?),
        };
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Code;
    use crate::connectors::codebook::{TEST_NOW, observe_shipped, shipped_class, shipped_row};
    use crate::connectors::event::{arbitrary_form_pairs, arbitrary_line, assert_codes, read_one};
    use crate::evidence::{EvidenceClass, EvidenceKind};
    use crate::evidence_rows::Row;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A callback shaped like the ones the Twilio status-callback guide describes (values
    /// made up here).
    fn callback(status: &str, error: Option<&str>) -> Vec<(String, String)> {
        let mut p = pairs(&[
            ("ApiVersion", "2010-04-01"),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("MessageSid", "SM11112222333344445555666677778888"),
            ("SmsSid", "SM11112222333344445555666677778888"),
            ("From", "+14155550000"),
            ("To", "+14155552671"),
            ("MessageStatus", status),
            ("SmsStatus", status),
        ]);
        if let Some(e) = error {
            p.push(("ErrorCode".into(), e.into()));
        }
        p
    }

    fn class_of(p: &[(String, String)]) -> Row {
        shipped_row("twilio", callback_event(p).unwrap())
    }

    fn obs_class(p: &[(String, String)]) -> EvidenceClass {
        shipped_class("twilio", callback_event(p).unwrap())
    }

    #[test]
    fn a_delivered_callback_is_a_strong_active_observation() {
        let p = callback("delivered", None);
        let ev = callback_event(&p).unwrap();
        assert_eq!(ev.number, "+14155552671");
        assert_eq!(
            ev.message_id.as_deref(),
            Some("SM11112222333344445555666677778888")
        );
        assert_eq!(ev.raw_code, "delivered");
        assert_eq!(ev.observed_at_ms, None);
        assert_eq!(ev.kind, EvidenceKind::SmsDlr);
        assert!(ev.final_state);
        assert_eq!(
            ev.codes,
            vec![Code::Table(STATUS_TABLE, "delivered".into())]
        );
        let Row::Observation(o) = class_of(&p) else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::StrongActive);
        assert_eq!(o.source, "twilio");
        assert_eq!(o.observed_at_ms, TEST_NOW);
        assert_eq!(o.number.as_u64(), 14155552671);
    }

    #[test]
    fn error_codes_come_first_and_decide() {
        let p = callback("undelivered", Some("30003"));
        let ev = callback_event(&p).unwrap();
        assert_codes(
            &ev,
            "undelivered:30003",
            &[(ERROR_TABLE, "30003"), (STATUS_TABLE, "undelivered")],
        );
        assert_eq!(obs_class(&p), EvidenceClass::WeakInactive);
        for (status, error, class) in [
            ("undelivered", "30005", EvidenceClass::StrongInactive),
            // A landline or unreachable carrier: the number cannot take SMS, it is not dead.
            ("undelivered", "30006", EvidenceClass::Neutral),
            ("undelivered", "30007", EvidenceClass::Neutral),
            ("failed", "30002", EvidenceClass::Neutral),
            // An error code no table lists falls through to the status.
            ("undelivered", "39999", EvidenceClass::WeakInactive),
            ("failed", "39999", EvidenceClass::Neutral),
        ] {
            let got = obs_class(&callback(status, Some(error)));
            assert_eq!(got, class, "{status} {error}");
        }
    }

    #[test]
    fn a_zero_error_code_is_no_error() {
        let ev = callback_event(&callback("delivered", Some("0"))).unwrap();
        assert_eq!(ev.raw_code, "delivered");
        assert_eq!(ev.codes.len(), 1);
    }

    #[test]
    fn read_is_final_and_active() {
        let p = callback("read", None);
        assert!(callback_event(&p).unwrap().final_state);
        assert_eq!(obs_class(&p), EvidenceClass::StrongActive);
    }

    #[test]
    fn intermediate_and_canceled_states_are_not_final() {
        for s in NOT_FINAL {
            let p = callback(s, None);
            assert!(!callback_event(&p).unwrap().final_state, "{s}");
            assert_eq!(class_of(&p), Row::NotFinal, "{s}");
        }
        // Upper case from a hand-made import still reads.
        assert!(!callback_event(&callback("SENT", None)).unwrap().final_state);
    }

    #[test]
    fn an_unknown_final_status_is_refused_by_the_code_book() {
        let ev = callback_event(&callback("vanished", None)).unwrap();
        assert!(ev.final_state);
        let err = observe_shipped("twilio", ev).unwrap_err();
        assert_eq!(err.code, "unknown_code");
    }

    #[test]
    fn sms_prefixed_names_are_accepted_when_the_message_ones_are_missing() {
        let p = pairs(&[
            ("SmsSid", "SM1"),
            ("SmsStatus", "delivered"),
            ("To", "+447700900123"),
        ]);
        let ev = callback_event(&p).unwrap();
        assert_eq!(ev.message_id.as_deref(), Some("SM1"));
        assert_eq!(ev.raw_code, "delivered");
    }

    #[test]
    fn malformed_callbacks_have_stable_codes() {
        let no_to = pairs(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")]);
        assert_eq!(callback_event(&no_to).unwrap_err().code, "missing_field");
        let no_status = pairs(&[("MessageSid", "SM1"), ("To", "+14155552671")]);
        assert_eq!(
            callback_event(&no_status).unwrap_err().code,
            "missing_field"
        );
        let blank = pairs(&[("To", "  "), ("MessageStatus", "delivered")]);
        assert_eq!(callback_event(&blank).unwrap_err().code, "missing_field");
        let bad_err = pairs(&[
            ("To", "+14155552671"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "3000x"),
        ]);
        assert_eq!(callback_event(&bad_err).unwrap_err().code, "invalid_field");
        let bad_status = pairs(&[("To", "+14155552671"), ("MessageStatus", "deli vered")]);
        assert_eq!(
            callback_event(&bad_status).unwrap_err().code,
            "invalid_field"
        );
        let long = "9".repeat(300);
        let too_long = pairs(&[("To", long.as_str()), ("MessageStatus", "delivered")]);
        assert_eq!(
            callback_event(&too_long).unwrap_err().code,
            "field_too_long"
        );
    }

    // Vectors published with Twilio's helper libraries (twilio-php
    // tests/unit/Security/RequestValidatorTest.php, also used in Twilio's docs example):
    // token 12345, this URL and these parameters.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn documented_params() -> Vec<(String, String)> {
        // Deliberately not in name order.
        pairs(&[
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn signature_matches_twilios_published_vector() {
        assert_eq!(
            signature(TOKEN, URL, &documented_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(verify(
            TOKEN,
            URL,
            &documented_params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn repeated_names_sort_by_value_and_exact_duplicates_count_once() {
        // twilio-php's array-with-duplicates vector.
        let p = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(signature(TOKEN, URL, &p), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn a_status_callback_signature_matches_an_independent_computation() {
        // Produced independently with Python's standard library:
        // python3 -c 'import hmac,hashlib,base64;
        //   s="https://example.com/twilio/status"+"AccountSidAC1"+"ErrorCode30003"
        //     +"MessageSidSM1"+"MessageStatusundelivered"+"To+14155552671";
        //   print(base64.b64encode(hmac.new(b"secret-token",s.encode(),hashlib.sha1).digest()).decode())'
        let p = pairs(&[
            ("To", "+14155552671"),
            ("MessageStatus", "undelivered"),
            ("MessageSid", "SM1"),
            ("ErrorCode", "30003"),
            ("AccountSid", "AC1"),
        ]);
        let url = "https://example.com/twilio/status";
        assert_eq!(
            signature("secret-token", url, &p),
            "On2swBaknPpmUjqqW4s7jEwIlQE="
        );
    }

    #[test]
    fn verify_refuses_anything_tampered() {
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let p = documented_params();
        assert!(!verify("54321", URL, &p, sig));
        assert!(!verify(TOKEN, &format!("{URL}&x=1"), &p, sig));
        let mut changed = p.clone();
        changed[1].1 = "9999".into();
        assert!(!verify(TOKEN, URL, &changed, sig));
        let mut extra = p.clone();
        extra.push(("Extra".into(), "1".into()));
        assert!(!verify(TOKEN, URL, &extra, sig));
        assert!(!verify(TOKEN, URL, &p, ""));
        assert!(!verify(TOKEN, URL, &p, "not base64!"));
        assert!(!verify(TOKEN, URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
        assert!(!verify(TOKEN, URL, &p, "AAAA"));
        // Surrounding whitespace from a header is tolerated.
        assert!(verify(TOKEN, URL, &p, " RSOYDt4T1cUTdK1PDd93/VVr8B8= "));
    }

    #[test]
    fn import_lines_are_form_encoded_callbacks() {
        let mut f = TwilioLines::assuming(Some(TEST_NOW));
        let ev = read_one(&mut f, b"MessageSid=SM9&MessageStatus=undelivered&ErrorCode=30005&To=%2B14155552671&From=%2B14155550000");
        assert_eq!(ev.number, "+14155552671");
        assert_eq!(ev.raw_code, "undelivered:30005");
        assert_eq!(ev.message_id.as_deref(), Some("SM9"));
        assert_eq!(ev.observed_at_ms, Some(TEST_NOW));
        assert_eq!(
            f.line(b"MessageSid=SM9&To=%2B14155552671")
                .unwrap_err()
                .code,
            "missing_field"
        );
        assert_eq!(
            f.line(b"\xff\xfe garbage").unwrap_err().code,
            "missing_field"
        );
    }

    #[test]
    fn recorded_lines_take_their_own_time_or_are_refused() {
        let mut f = TwilioLines::new();
        // RFC 2822 as the REST API writes it; DateUpdated wins over DateSent and DateCreated.
        let ev = read_one(
            &mut f,
            b"MessageSid=SM1&MessageStatus=delivered&To=%2B14155552671\
              &DateCreated=Thu%2C+24+Aug+2023+05%3A00%3A00+%2B0000\
              &DateUpdated=Thu%2C+24+Aug+2023+05%3A01%3A45+%2B0000",
        );
        assert_eq!(ev.observed_at_ms, Some(1_692_853_305_000));
        // RFC 3339 and Unix seconds.
        let ev = read_one(
            &mut f,
            b"MessageSid=SM2&MessageStatus=delivered&To=%2B14155552671&DateSent=2023-08-24T05%3A01%3A45Z",
        );
        assert_eq!(ev.observed_at_ms, Some(1_692_853_305_000));
        let ev = read_one(
            &mut f,
            b"MessageSid=SM3&MessageStatus=delivered&To=%2B14155552671&Timestamp=1692853305",
        );
        assert_eq!(ev.observed_at_ms, Some(1_692_853_305_000));
        // The REST API's JSON Message resource.
        let ev = read_one(
            &mut f,
            br#"{"sid":"SM4","to":"+14155552671","status":"undelivered","error_code":30005,"date_updated":"Thu, 24 Aug 2023 05:01:45 +0000"}"#,
        );
        assert_eq!(
            (
                ev.raw_code.as_str(),
                ev.message_id.as_deref(),
                ev.observed_at_ms
            ),
            ("undelivered:30005", Some("SM4"), Some(1_692_853_305_000))
        );
        // No date: refused, with the way out in the message; a bad date is refused too.
        let e = f
            .line(b"MessageSid=SM5&MessageStatus=delivered&To=%2B14155552671")
            .unwrap_err();
        assert_eq!(e.code, "missing_time");
        assert!(e.message.contains("assume_time"), "{}", e.message);
        let e = f
            .line(b"MessageSid=SM6&MessageStatus=delivered&To=%2B14155552671&DateSent=yesterday")
            .unwrap_err();
        assert_eq!(e.code, "invalid_date");
        // A live callback (the webhook path) still has no time of its own.
        assert_eq!(
            callback_event(&pairs(&[
                ("To", "+14155552671"),
                ("MessageStatus", "delivered")
            ]))
            .unwrap()
            .observed_at_ms,
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn random_form_pairs_never_panic(
            p in arbitrary_form_pairs(
                &["To", "MessageStatus", "SmsStatus", "MessageSid", "ErrorCode", "From", "X"],
                ".{0,300}",
            )
        ) {
            if let Ok(ev) = callback_event(&p) {
                proptest::prop_assert!(!ev.number.is_empty());
                proptest::prop_assert!(!ev.codes.is_empty());
            }
            let sig = signature("t", "https://x/y", &p);
            proptest::prop_assert!(verify("t", "https://x/y", &p, &sig));
        }

        #[test]
        fn random_lines_never_panic(line in arbitrary_line(400)) {
            let _ = TwilioLines::new().line(&line);
        }
    }
}
