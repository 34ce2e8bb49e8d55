//! Evidence whose verdicts the policy documents: the same story told to the API (posted
//! evidence, then a task) and to the command line (`evidence import`, then `check`).

/// The header of an evidence CSV.
pub const HEADER: &str = "number,observed_at,source,kind,raw_code,message_id\n";

/// The facts: (number, days ago, source, kind, raw code, message id).
pub const FACTS: [(&str, i64, &str, &str, &str, &str); 10] = [
    // Fresh delivery.
    ("+12125550101", 2, "smsc-1", "sms_dlr", "DELIVRD", "a1"),
    // Unknown subscriber after the last delivery (a SIP 404 on a call).
    ("+12125550102", 40, "smsc-1", "sms_dlr", "DELIVRD", "b1"),
    ("+12125550102", 3, "sbc-1", "call", "404", "b2"),
    // Only absent-subscriber failures, close together.
    ("+12125550103", 3, "hlr-x", "hlr", "ABSENT", ""),
    ("+12125550103", 2, "hlr-x", "hlr", "ABSENT_SUBSCRIBER", ""),
    // Activity after a carrier deactivation.
    ("+12125550104", 90, "carrier", "deactivation", "D", ""),
    ("+12125550104", 1, "app", "app_event", "login", ""),
    // Failures spread over weeks.
    ("+12125550105", 30, "smsc-1", "sms_dlr", "EXPIRED", "e1"),
    ("+12125550105", 16, "smsc-1", "sms_dlr", "EXPIRED", "e2"),
    ("+12125550105", 2, "smsc-1", "sms_dlr", "UNDELIV", "e3"),
];

/// What the policy makes of each number: (number, status, reason, possibly reassigned). The
/// last has no evidence at all.
pub const VERDICTS: [(&str, &str, &str, &str); 6] = [
    ("+12125550101", "active", "recent_activity", "false"),
    ("+12125550102", "inactive", "disconnected", "false"),
    ("+12125550103", "unknown", "temporary_failures", "false"),
    ("+12125550104", "active", "recent_activity", "true"),
    ("+12125550105", "inactive", "repeated_failures", "false"),
    ("+12125550106", "unknown", "no_evidence", "false"),
];

/// [`FACTS`] as an evidence CSV, observed `days` before `now_s` (Unix seconds).
pub fn csv(now_s: i64) -> String {
    let mut csv = String::from(HEADER);
    for (number, days, source, kind, code, msg) in FACTS {
        let at = now_s - days * 86_400;
        csv.push_str(&format!("{number},{at},{source},{kind},{code},{msg}\n"));
    }
    csv
}
