//! Infobip SMS delivery reports: the JSON POST Infobip sends to a report webhook, a
//! `results` array with one report per message.
//!
//! Facts relied on (sources named, text not copied):
//! - Infobip API reference "Receive outbound SMS message report" (infobip.com/docs/api/
//!   channels/sms/…/receive-outbound-sms-message-report): body `{"results": [...]}`, each
//!   result with `bulkId`, `messageId`, `to`, `from`, `sentAt`, `doneAt` (format
//!   `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, e.g. `2024-05-01T10:00:00.000+0000`), `smsCount`,
//!   `mccMnc`, `callbackData`, `price {pricePerMessage, currency}`, `status {groupId,
//!   groupName, id, name, description}`, `error {groupId, groupName, id, name, description,
//!   permanent}`; up to 100 reports per request by default.
//! - Infobip "Message status codes" (infobip.com/docs/developer-resources/api-fundamentals/
//!   message-status-codes): groups PENDING (1), UNDELIVERABLE (2), DELIVERED (3), EXPIRED (4),
//!   REJECTED (5); `PENDING_*` statuses are intermediate, and so is `DELIVERED_TO_OPERATOR`
//!   (id 2) although its group is DELIVERED (a further report may follow);
//!   `DELIVERED_TO_HANDSET` (id 5) and the UNDELIVERABLE / EXPIRED / REJECTED statuses are final.
//! - Infobip "Error code reference" (infobip.com/docs/developer-resources/api-fundamentals/
//!   error-code-reference): error objects with a `permanent` flag (whether resending the same
//!   message fails the same way); `NO_ERROR` (id 0) for success; names and flags per error in
//!   `codes/infobip_error.csv`.
//!
//! ## How errors are classified
//!
//! `permanent` says a retry will fail again, not that the number is dead (an IMEI blacklist
//! is permanent too), so the class comes from the error's name — but read together with the
//! flag, so that a report Infobip marks as temporary can never count as a hard disconnect:
//!
//! 1. `infobip_error` looked up as `NAME:PERMANENT` or `NAME:TEMPORARY` (the flag as
//!    reported; absent means temporary). The shipped table lists both forms for every
//!    documented error and keeps strong_inactive for `EC_UNKNOWN_SUBSCRIBER:PERMANENT` only;
//!    every `…:TEMPORARY` row is at most weak_inactive (a test checks this).
//! 2. `infobip_status` looked up as `GROUP:PERMANENT` / `GROUP:TEMPORARY`, for error names the
//!    table does not know (never worse than weak_inactive either),
//! 3. then the bare `GROUP`.
//!
//! A DELIVERED report is classified by its group alone, whatever error object it carries.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::{Code, Event, LineFormat, ParseError, bounded, international, json_object, json_text};

/// Code table for status groups (`codes/infobip_status.csv`).
pub const STATUS_TABLE: &str = "infobip_status";
/// Code table for error names (`codes/infobip_error.csv`).
pub const ERROR_TABLE: &str = "infobip_error";

/// Most results read from one body; a larger one is refused whole (Infobip sends 100 by
/// default and the bucket size is configurable).
pub const MAX_RESULTS: usize = 10_000;

/// Reads a report body.
///
/// The outer error is for a body that is not JSON (`invalid_json`), has no `results`
/// (`missing_field`), whose `results` is not an array (`invalid_field`) or is longer than
/// [`MAX_RESULTS`] (`too_many_results`). Each result is then read on its own: one bad report
/// does not hide the others.
///
/// Per result: number = `to`, message id = `messageId`, time = `doneAt`, else `sentAt`;
/// raw code = `GROUP:STATUS_NAME`, plus `:ERROR_NAME` when there is an error other than
/// `NO_ERROR`; codes and finality as described in the module documentation.
pub fn callback_events(body: &[u8]) -> Result<Vec<Result<Event, ParseError>>, ParseError> {
    let obj = json_object(body, "a delivery report body is a JSON object")?;
    let results = results_of(&obj)?;
    Ok(results.iter().map(result_event).collect())
}

fn results_of(obj: &Map<String, Value>) -> Result<&Vec<Value>, ParseError> {
    match obj.get("results") {
        None | Some(Value::Null) => Err(ParseError::new(
            "missing_field",
            "no results array in the report",
        )),
        Some(Value::Array(a)) if a.len() > MAX_RESULTS => Err(ParseError::new(
            "too_many_results",
            format!("{} results; at most {MAX_RESULTS} are read", a.len()),
        )),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ParseError::new("invalid_field", "results is not an array")),
    }
}

/// Reads one element of `results`.
pub fn result_event(result: &Value) -> Result<Event, ParseError> {
    let Value::Object(r) = result else {
        return Err(ParseError::new(
            "invalid_field",
            "a result is not an object",
        ));
    };
    // Infobip writes `to` in international format without `+` (the API reference's
    // examples, e.g. `41793026727`).
    let number = international(bounded(
        "to",
        &json_text(r, "to")?
            .ok_or_else(|| ParseError::new("missing_field", "no to in the result"))?,
    )?);
    let message_id = json_text(r, "messageId")?
        .map(|v| bounded("messageId", &v))
        .transpose()?;

    let status = match r.get("status") {
        Some(Value::Object(s)) => s,
        None | Some(Value::Null) => {
            return Err(ParseError::new("missing_field", "no status in the result"));
        }
        Some(_) => return Err(ParseError::new("invalid_field", "status is not an object")),
    };
    let group = word(
        "status.groupName",
        json_text(status, "groupName")?
            .ok_or_else(|| ParseError::new("missing_field", "no status.groupName"))?,
    )?;
    let status_name = json_text(status, "name")?
        .map(|n| word("status.name", n))
        .transpose()?;

    let (error_name, permanent) = match r.get("error") {
        None | Some(Value::Null) => (None, false),
        Some(Value::Object(e)) => {
            let name = json_text(e, "name")?
                .map(|n| word("error.name", n))
                .transpose()?;
            let permanent = match e.get("permanent") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ParseError::new(
                        "invalid_field",
                        "error.permanent is not a boolean",
                    ));
                }
            };
            (name.filter(|n| n != "NO_ERROR"), permanent)
        }
        Some(_) => return Err(ParseError::new("invalid_field", "error is not an object")),
    };

    let observed_at_ms = match (json_text(r, "doneAt")?, json_text(r, "sentAt")?) {
        (Some(t), _) => Some(parse_time("doneAt", &t)?),
        (None, Some(t)) => Some(parse_time("sentAt", &t)?),
        (None, None) => None,
    };

    let final_state = match group.as_str() {
        "PENDING" => false,
        "DELIVERED" => status_name.as_deref() != Some("DELIVERED_TO_OPERATOR"),
        _ => true,
    };

    let mut raw_code = group.clone();
    if let Some(n) = &status_name {
        raw_code.push(':');
        raw_code.push_str(n);
    }
    let mut codes = Vec::with_capacity(3);
    let flag = if permanent { "PERMANENT" } else { "TEMPORARY" };
    if let Some(e) = error_name
        .as_ref()
        .filter(|_| group != "DELIVERED" && group != "PENDING")
    {
        raw_code.push(':');
        raw_code.push_str(e);
        codes.push(Code::Table(ERROR_TABLE, format!("{e}:{flag}")));
        codes.push(Code::Table(STATUS_TABLE, format!("{group}:{flag}")));
    }
    codes.push(Code::Table(STATUS_TABLE, group));

    Ok(Event::sms_dlr(
        number,
        observed_at_ms,
        message_id,
        (raw_code, codes),
        final_state,
    ))
}

/// An Infobip code word (`DELIVERED`, `EC_ABSENT_SUBSCRIBER`), upper-cased.
fn word(name: &str, value: String) -> Result<String, ParseError> {
    let v = bounded(name, &value)?.to_ascii_uppercase();
    if v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(v)
    } else {
        Err(ParseError::new(
            "invalid_field",
            format!("{name} {v:?} is not a code word"),
        ))
    }
}

/// Infobip's `2024-05-01T10:00:00.000+0000`, or RFC 3339.
fn parse_time(name: &str, text: &str) -> Result<i64, ParseError> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ParseError::new(
                "invalid_date",
                format!(
                    "{name} {:?} is not yyyy-MM-ddTHH:mm:ss.SSS+hhmm",
                    text.chars().take(40).collect::<String>()
                ),
            )
        })
}

/// Import files of recorded Infobip reports: one report a line, as a single result object
/// (`{"messageId":…,"to":…,"status":{…},…}`). A whole webhook body with exactly one result is
/// accepted too; a body with several results is refused (`multiple_results`): split it into
/// one result a line first.
#[derive(Debug, Default, Clone)]
pub struct InfobipLines;

impl InfobipLines {
    /// A reader for such a file.
    pub fn new() -> Self {
        InfobipLines
    }
}

impl LineFormat for InfobipLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let obj = json_object(line.trim_ascii(), "a line is a JSON object")?;
        if obj.contains_key("results") {
            return match results_of(&obj)?.as_slice() {
                [one] => result_event(one).map(Some),
                [] => Ok(None),
                _ => Err(ParseError::new(
                    "multiple_results",
                    "a line holds one report; split bodies with several results",
                )),
            };
        }
        result_event(&Value::Object(obj)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::codebook::{CodeBook, shipped_class, shipped_row};
    use crate::connectors::event::{assert_codes, read_one};
    use crate::evidence::EvidenceClass;
    use crate::evidence_rows::Row;

    /// One result shaped like the "Receive outbound SMS message report" reference (values
    /// made up here).
    fn result(group: &str, status: &str, error: Option<(&str, bool)>) -> String {
        let error = match error {
            Some((name, permanent)) => format!(
                r#","error":{{"groupId":1,"groupName":"HANDSET_ERRORS","id":27,"name":"{name}","description":"made up","permanent":{permanent}}}"#
            ),
            None => r#","error":{"groupId":0,"groupName":"OK","id":0,"name":"NO_ERROR","description":"No Error","permanent":false}"#.to_owned(),
        };
        format!(
            r#"{{"bulkId":"BULK-1","messageId":"MSG-42","to":"385981234567","from":"InfoSMS",
               "sentAt":"2024-05-01T09:59:58.123+0000","doneAt":"2024-05-01T10:00:00.000+0000",
               "smsCount":1,"mccMnc":"21910","callbackData":"ref-9",
               "price":{{"pricePerMessage":0.01,"currency":"EUR"}},
               "status":{{"groupId":3,"groupName":"{group}","id":5,"name":"{status}","description":"made up"}}{error}}}"#
        )
    }

    fn body(results: &[String]) -> String {
        format!(r#"{{"results":[{}]}}"#, results.join(","))
    }

    fn one(group: &str, status: &str, error: Option<(&str, bool)>) -> Event {
        let mut v = callback_events(body(&[result(group, status, error)]).as_bytes()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0).unwrap()
    }

    fn row(ev: Event) -> Row {
        shipped_row("infobip", ev)
    }

    fn class(group: &str, status: &str, error: Option<(&str, bool)>) -> EvidenceClass {
        shipped_class("infobip", one(group, status, error))
    }

    #[test]
    fn a_delivered_report() {
        let ev = one("DELIVERED", "DELIVERED_TO_HANDSET", None);
        assert_eq!(ev.number, "+385981234567");
        assert_eq!(ev.message_id.as_deref(), Some("MSG-42"));
        assert_eq!(ev.raw_code, "DELIVERED:DELIVERED_TO_HANDSET");
        assert_eq!(
            ev.codes,
            vec![Code::Table(STATUS_TABLE, "DELIVERED".into())]
        );
        assert!(ev.final_state);
        // doneAt 2024-05-01T10:00:00Z
        assert_eq!(ev.observed_at_ms, Some(1_714_557_600_000));
        let Row::Observation(o) = row(ev) else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::StrongActive);
        assert_eq!(o.number.as_u64(), 385981234567);
    }

    #[test]
    fn errors_are_read_with_their_permanent_flag() {
        let ev = one(
            "UNDELIVERABLE",
            "UNDELIVERABLE_NOT_DELIVERED",
            Some(("EC_UNKNOWN_SUBSCRIBER", true)),
        );
        assert_codes(
            &ev,
            "UNDELIVERABLE:UNDELIVERABLE_NOT_DELIVERED:EC_UNKNOWN_SUBSCRIBER",
            &[
                (ERROR_TABLE, "EC_UNKNOWN_SUBSCRIBER:PERMANENT"),
                (STATUS_TABLE, "UNDELIVERABLE:PERMANENT"),
                (STATUS_TABLE, "UNDELIVERABLE"),
            ],
        );
        use EvidenceClass::{Neutral as N, StrongInactive as SI, WeakInactive as WI};
        let (ud, u) = ("UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED");
        let x = "EXPIRED_EXPIRED";
        for (group, status, name, permanent, want) in [
            (ud, u, "EC_UNKNOWN_SUBSCRIBER", true, SI),
            // The same name reported as temporary never counts as a hard disconnect.
            (ud, u, "EC_UNKNOWN_SUBSCRIBER", false, WI),
            (ud, u, "EC_ABSENT_SUBSCRIBER", false, WI),
            (ud, u, "EC_TELESERVICE_NOT_PROVISIONED", true, WI),
            (ud, u, "EC_CALL_BARRED", false, N),
            (ud, u, "EC_ILLEGAL_EQUIPMENT", true, N),
            ("EXPIRED", x, "EC_ABSENT_SUBSCRIBER_SM", false, WI),
            // Unknown error names fall back on the group and the flag: never strong.
            (ud, u, "EC_SOMETHING_NEW", true, WI),
            ("REJECTED", "REJECTED_NETWORK", "EC_SOMETHING_NEW", true, N),
        ] {
            let got = class(group, status, Some((name, permanent)));
            assert_eq!(got, want, "{group} {name} {permanent}");
        }
        assert_eq!(class("EXPIRED", x, None), N);
    }

    #[test]
    fn a_delivered_report_ignores_its_error_object() {
        let plain = one("DELIVERED", "DELIVERED_TO_HANDSET", None);
        let error = Some(("EC_ABSENT_SUBSCRIBER", false));
        let with_error = one("DELIVERED", "DELIVERED_TO_HANDSET", error);
        assert_eq!(with_error.codes, plain.codes);
        assert_eq!(row(with_error), row(plain));
    }

    #[test]
    fn pending_and_delivered_to_operator_are_not_final() {
        let ev = one("PENDING", "PENDING_ENROUTE", None);
        assert!(!ev.final_state);
        assert_eq!(row(ev), Row::NotFinal);
        let ev = one("DELIVERED", "DELIVERED_TO_OPERATOR", None);
        assert!(!ev.final_state);
        assert_eq!(row(ev), Row::NotFinal);
        for g in ["UNDELIVERABLE", "EXPIRED", "REJECTED"] {
            assert!(one(g, "X", None).final_state, "{g}");
        }
    }

    #[test]
    fn several_results_are_read_one_by_one() {
        let bad = r#"{"messageId":"M2","status":{"groupName":"DELIVERED"}}"#.to_owned();
        let v = callback_events(
            body(&[result("DELIVERED", "DELIVERED_TO_HANDSET", None), bad]).as_bytes(),
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_ok());
        assert_eq!(v[1].as_ref().unwrap_err().code, "missing_field");
    }

    #[test]
    fn times_fall_back_to_sent_at_and_accept_rfc3339() {
        let r = r#"{"to":"385981234567","sentAt":"2024-05-01T12:00:00+02:00","status":{"groupName":"DELIVERED"}}"#;
        let ev = result_event(&serde_json::from_str(r).unwrap()).unwrap();
        assert_eq!(ev.observed_at_ms, Some(1_714_557_600_000));
        let r = r#"{"to":"385981234567","doneAt":"2024-05-01T10:00:00Z","status":{"groupName":"DELIVERED"}}"#;
        let ev = result_event(&serde_json::from_str(r).unwrap()).unwrap();
        assert_eq!(ev.observed_at_ms, Some(1_714_557_600_000));
        let r = r#"{"to":"385981234567","status":{"groupName":"DELIVERED"}}"#;
        let ev = result_event(&serde_json::from_str(r).unwrap()).unwrap();
        assert_eq!(ev.observed_at_ms, None);
        assert_eq!(ev.raw_code, "DELIVERED");
    }

    #[test]
    fn malformed_bodies_and_results_have_stable_codes() {
        let outer = |b: &[u8]| callback_events(b).unwrap_err().code;
        assert_eq!(outer(b"<xml/>"), "invalid_json");
        assert_eq!(outer(b"[]"), "invalid_json");
        assert_eq!(outer(b"{}"), "missing_field");
        assert_eq!(outer(br#"{"results":{}}"#), "invalid_field");
        assert_eq!(callback_events(br#"{"results":[]}"#).unwrap().len(), 0);

        let inner = |r: &str| {
            result_event(&serde_json::from_str(r).unwrap())
                .unwrap_err()
                .code
        };
        assert_eq!(inner("3"), "invalid_field");
        assert_eq!(inner(r#"{"to":"385981234567"}"#), "missing_field");
        assert_eq!(
            inner(r#"{"to":"385981234567","status":"DELIVERED"}"#),
            "invalid_field"
        );
        assert_eq!(
            inner(r#"{"to":"385981234567","status":{}}"#),
            "missing_field"
        );
        assert_eq!(
            inner(r#"{"to":"385981234567","status":{"groupName":"DELI VERED"}}"#),
            "invalid_field"
        );
        assert_eq!(
            inner(r#"{"to":[1],"status":{"groupName":"DELIVERED"}}"#),
            "invalid_field"
        );
        assert_eq!(
            inner(
                r#"{"to":"385981234567","doneAt":"01/05/2024","status":{"groupName":"DELIVERED"}}"#
            ),
            "invalid_date"
        );
        assert_eq!(
            inner(
                r#"{"to":"385981234567","status":{"groupName":"UNDELIVERABLE"},"error":{"name":"EC_X","permanent":"yes"}}"#
            ),
            "invalid_field"
        );
    }

    #[test]
    fn import_lines_hold_one_result() {
        let mut f = InfobipLines::new();
        let r = result(
            "UNDELIVERABLE",
            "UNDELIVERABLE_NOT_DELIVERED",
            Some(("EC_ABSENT_SUBSCRIBER", false)),
        );
        let a = read_one(&mut f, r.replace('\n', " ").as_bytes());
        let b = read_one(
            &mut f,
            body(std::slice::from_ref(&r)).replace('\n', " ").as_bytes(),
        );
        assert_eq!(a, b);
        assert_eq!(
            a.raw_code,
            "UNDELIVERABLE:UNDELIVERABLE_NOT_DELIVERED:EC_ABSENT_SUBSCRIBER"
        );
        assert_eq!(f.line(br#"{"results":[]}"#).unwrap(), None);
        assert_eq!(
            f.line(body(&[r.clone(), r]).replace('\n', " ").as_bytes())
                .unwrap_err()
                .code,
            "multiple_results"
        );
        assert_eq!(f.line(b"nope").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn temporary_errors_never_count_as_hard_disconnects() {
        let book = CodeBook::shipped();
        let errors = book.table(ERROR_TABLE).unwrap();
        for (code, class) in errors {
            let (name, flag) = code.rsplit_once(':').unwrap();
            assert!(flag == "PERMANENT" || flag == "TEMPORARY", "{code}");
            let other = if flag == "PERMANENT" {
                "TEMPORARY"
            } else {
                "PERMANENT"
            };
            assert!(
                errors.contains_key(&format!("{name}:{other}")),
                "{code} lacks {other}"
            );
            if *class == EvidenceClass::StrongInactive {
                assert_eq!(code, "EC_UNKNOWN_SUBSCRIBER:PERMANENT");
            }
        }
        for (code, class) in book.table(STATUS_TABLE).unwrap() {
            assert_ne!(*class, EvidenceClass::StrongInactive, "{code}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_results_never_panic(
            to in proptest::option::of(".{0,20}"),
            group in proptest::option::of("[A-Za-z_ ]{0,14}"),
            name in proptest::option::of("[A-Z_]{0,24}"),
            err in proptest::option::of("[A-Z_]{0,24}"),
            permanent in proptest::option::of(proptest::bool::ANY),
            done in proptest::option::of(".{0,30}"),
        ) {
            let mut status = Map::new();
            if let Some(g) = group { status.insert("groupName".into(), g.into()); }
            if let Some(n) = name { status.insert("name".into(), n.into()); }
            let mut r = Map::new();
            if let Some(t) = to { r.insert("to".into(), t.into()); }
            r.insert("status".into(), Value::Object(status));
            let mut e = Map::new();
            if let Some(n) = err { e.insert("name".into(), n.into()); }
            if let Some(p) = permanent { e.insert("permanent".into(), p.into()); }
            r.insert("error".into(), Value::Object(e));
            if let Some(d) = done { r.insert("doneAt".into(), d.into()); }
            let body = serde_json::json!({ "results": [Value::Object(r)] });
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let v = callback_events(&bytes);
            proptest::prop_assert!(v.is_ok());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = callback_events(&bytes);
            let _ = InfobipLines::new().line(&bytes);
        }
    }
}
