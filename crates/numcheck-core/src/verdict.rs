//! Verdicts: what numcheck says about one number, and why.
//!
//! Until the evidence engine lands the verdict comes from the numbering plan alone: a number
//! that is not valid in its plan is `inactive`, every other number is `unknown` because there
//! is no evidence either way.

use crate::plan::Checked;
use crate::task::ActiveStatus;

/// Why a verdict was given. The spellings are stable: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The number parses but is not a valid number of its numbering plan.
    InvalidNumber,
    /// The number is valid, and nothing is known about its activity.
    NoEvidence,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidNumber => "invalid_number",
            Reason::NoEvidence => "no_evidence",
        }
    }
}

/// The answer for one number with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: ActiveStatus,
    pub reason: Reason,
}

impl Verdict {
    /// The verdict the numbering plan alone supports.
    pub fn from_plan(checked: &Checked) -> Verdict {
        if checked.valid {
            Verdict {
                status: ActiveStatus::Unknown,
                reason: Reason::NoEvidence,
            }
        } else {
            Verdict {
                status: ActiveStatus::Inactive,
                reason: Reason::InvalidNumber,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::E164;
    use crate::plan::LineType;

    fn checked(valid: bool) -> Checked {
        Checked {
            e164: E164::from_u64(14_155_552_671).unwrap(),
            valid,
            line_type: LineType::Unknown,
            region: None,
        }
    }

    #[test]
    fn invalid_number_is_inactive_with_reason_invalid_number() {
        let v = Verdict::from_plan(&checked(false));
        assert_eq!(v.status, ActiveStatus::Inactive);
        assert_eq!(v.reason.as_str(), "invalid_number");
    }

    #[test]
    fn valid_number_without_evidence_is_unknown() {
        let v = Verdict::from_plan(&checked(true));
        assert_eq!(v.status, ActiveStatus::Unknown);
        assert_eq!(v.reason.as_str(), "no_evidence");
    }
}
