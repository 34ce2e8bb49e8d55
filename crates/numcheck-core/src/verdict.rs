//! Verdicts: what numcheck says about one number, and why.

use crate::task::ActiveStatus;

/// Why a verdict was given. The spellings are stable and documented: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not a valid number of its numbering plan.
    InvalidNumber,
    /// A hard disconnect (unknown subscriber, number changed, deactivation, …) is newer than
    /// the last strong activity.
    Disconnected,
    /// Failures spread over time outweigh activity.
    RepeatedFailures,
    /// Recent activity outweighs failures.
    RecentActivity,
    /// Nothing is known about the number.
    NoEvidence,
    /// What is known is too little or too old to decide.
    InsufficientEvidence,
    /// Only temporary failures (absent subscriber, handset off, congestion), not enough or
    /// not spread enough over time to call the number inactive.
    TemporaryFailures,
    /// Evidence both ways, or too weak a lean.
    Inconclusive,
    /// A hard disconnect with nothing after it, but older than the number's reuse period:
    /// someone else may have the number now. The confidence is how likely it is still dead.
    DisconnectedLongAgo,
    /// The evidence leans one way, but less surely than the confidence floor asks
    /// (`min_confidence`); the confidence is that of the side it leans to.
    LowConfidence,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::InvalidNumber,
        Reason::Disconnected,
        Reason::RepeatedFailures,
        Reason::RecentActivity,
        Reason::NoEvidence,
        Reason::InsufficientEvidence,
        Reason::TemporaryFailures,
        Reason::Inconclusive,
        Reason::DisconnectedLongAgo,
        Reason::LowConfidence,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidNumber => "invalid_number",
            Reason::Disconnected => "disconnected",
            Reason::RepeatedFailures => "repeated_failures",
            Reason::RecentActivity => "recent_activity",
            Reason::NoEvidence => "no_evidence",
            Reason::InsufficientEvidence => "insufficient_evidence",
            Reason::TemporaryFailures => "temporary_failures",
            Reason::Inconclusive => "inconclusive",
            Reason::DisconnectedLongAgo => "disconnected_long_ago",
            Reason::LowConfidence => "low_confidence",
        }
    }
}

/// The answer for one number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub status: ActiveStatus,
    pub reason: Reason,
    /// For `active` and `inactive`: the probability that the verdict is right (the policy's
    /// raw score through the calibration). For `unknown`: that of the side the evidence
    /// leans to (0.5 when it says nothing).
    pub confidence: f64,
    /// The policy's raw score for the side it leans to, before calibration (what
    /// `numcheck calibrate` fits on).
    pub score: f64,
    /// The newest activity seen (ms since the epoch).
    pub last_activity_ms: Option<i64>,
    /// Activity after a hard disconnect: probably a new subscriber on a recycled number.
    pub possibly_reassigned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_spellings_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()));
            assert!(
                r.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }
}
