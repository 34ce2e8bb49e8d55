//! Time as the API shows it: RFC 3339, UTC, `Z`; nanoseconds on create, milliseconds on poll.

use chrono::{DateTime, SecondsFormat, Utc};

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2025-11-21T15:58:08.916446594Z`
pub fn rfc3339_ns(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `2025-11-21T08:27:09.933Z`
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_have_the_contracts_precision() {
        assert_eq!(
            rfc3339_ns(1_763_740_688_916_446_594),
            "2025-11-21T15:58:08.916446594Z"
        );
        assert_eq!(
            rfc3339_ns(1_763_740_688_000_000_000),
            "2025-11-21T15:58:08.000000000Z"
        );
        assert_eq!(rfc3339_ms(1_763_713_629_933), "2025-11-21T08:27:09.933Z");
        assert_eq!(rfc3339_ms(1_763_713_629_000), "2025-11-21T08:27:09.000Z");
    }
}
