//! The verdict policy (DESIGN §4): from a number's validity and evidence profile to
//! `active` / `inactive` / `unknown`, with a reason, a confidence and the last activity.
//!
//! The rules, in order:
//! 1. Not a valid number of its numbering plan → `inactive` (`invalid_number`).
//! 2. A hard disconnect newer than the last strong activity → `inactive` (`disconnected`).
//!    Strong activity after a disconnect belongs to a new subscriber: the number is flagged
//!    `possibly_reassigned` and the old disconnect no longer counts.
//! 3. A Beta-reputation score `s = (P + α) / (P + N + α + β)` over decayed, weighted positive
//!    mass `P` (strong and weak activity) and negative mass `N` (weak failures):
//!    no evidence → `unknown` (`no_evidence`); `P + N` below `min_mass` → `unknown`
//!    (`insufficient_evidence`); `s ≥ active_threshold` → `active` (`recent_activity`);
//!    `s ≤ inactive_threshold` → `inactive` (`repeated_failures`), subject to rule 4;
//!    otherwise `unknown` (`inconclusive`).
//! 4. Temporary failures (absent subscriber, handset off, congestion: the weak-inactive class)
//!    never make a number inactive on their own: it takes at least `min_failures` of them
//!    spread over at least `min_failure_span_days`. Otherwise → `unknown`
//!    (`temporary_failures`).
//!
//! Confidence is the Beta posterior probability of the side the verdict takes (for `unknown`,
//! of the likelier side: 0.5 with no evidence); the hard rules use fixed confidences.

use serde::{Deserialize, Serialize};

use crate::evidence::{EvidenceClass, HalfLives, Profile};
use crate::task::ActiveStatus;
use crate::verdict::{Reason, Verdict};

const DAY_MS: f64 = 86_400_000.0;

/// Per-class numbers (neutral evidence has no weight: it says nothing either way).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassNumbers {
    pub strong_active: f64,
    pub weak_active: f64,
    pub neutral: f64,
    pub weak_inactive: f64,
    pub strong_inactive: f64,
}

impl ClassNumbers {
    fn as_array(&self) -> [f64; 5] {
        [
            self.strong_active,
            self.weak_active,
            self.neutral,
            self.weak_inactive,
            self.strong_inactive,
        ]
    }
}

impl Default for ClassNumbers {
    fn default() -> Self {
        Policy::default().weights
    }
}

/// The verdict policy. Every number is configurable in `[policy]`; the defaults are
/// documented in the README.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Weight of one observation of each class.
    pub weights: ClassNumbers,
    /// Half-life of each class's mass, in days.
    pub half_life_days: ClassNumbers,
    /// Beta prior: pseudo-counts of activity (α) and inactivity (β).
    pub prior_active: f64,
    pub prior_inactive: f64,
    /// Score at or above which a number is `active`.
    pub active_threshold: f64,
    /// Score at or below which a number is `inactive` (when rule 4 allows).
    pub inactive_threshold: f64,
    /// Decayed, weighted mass below which the score is not trusted.
    pub min_mass: f64,
    /// Temporary failures needed before they can make a number inactive…
    pub min_failures: u64,
    /// …spread over at least this many days.
    pub min_failure_span_days: f64,
    /// Confidence of a verdict from a hard disconnect.
    pub disconnect_confidence: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            weights: ClassNumbers {
                strong_active: 3.0,
                weak_active: 1.0,
                neutral: 0.0,
                weak_inactive: 1.0,
                strong_inactive: 3.0,
            },
            half_life_days: ClassNumbers {
                strong_active: 180.0,
                weak_active: 90.0,
                neutral: 30.0,
                weak_inactive: 60.0,
                strong_inactive: 365.0,
            },
            prior_active: 1.0,
            prior_inactive: 1.0,
            active_threshold: 0.75,
            inactive_threshold: 0.25,
            min_mass: 1.0,
            min_failures: 3,
            min_failure_span_days: 7.0,
            disconnect_confidence: 0.95,
        }
    }
}

impl Policy {
    /// Checks the numbers make sense together.
    pub fn validate(&self) -> Result<(), String> {
        let in_unit = |v: f64| (0.0..=1.0).contains(&v);
        if !(in_unit(self.active_threshold) && in_unit(self.inactive_threshold)) {
            return Err("policy thresholds must be between 0 and 1".into());
        }
        if self.inactive_threshold >= self.active_threshold {
            return Err("policy.inactive_threshold must be below policy.active_threshold".into());
        }
        if self
            .weights
            .as_array()
            .iter()
            .any(|w| !w.is_finite() || *w < 0.0)
        {
            return Err("policy weights must be finite and not negative".into());
        }
        if self
            .half_life_days
            .as_array()
            .iter()
            .any(|h| !h.is_finite() || *h <= 0.0)
        {
            return Err("policy half-lives must be above 0 days".into());
        }
        if !(self.prior_active > 0.0 && self.prior_inactive > 0.0) {
            return Err("policy priors must be above 0".into());
        }
        if !(self.min_mass >= 0.0 && self.min_failure_span_days >= 0.0) {
            return Err(
                "policy.min_mass and policy.min_failure_span_days cannot be negative".into(),
            );
        }
        if !in_unit(self.disconnect_confidence) {
            return Err("policy.disconnect_confidence must be between 0 and 1".into());
        }
        Ok(())
    }

    pub fn half_lives(&self) -> HalfLives {
        HalfLives(self.half_life_days.as_array())
    }

    fn weight(&self, class: EvidenceClass) -> f64 {
        self.weights.as_array()[class as usize]
    }

    /// The verdict for one number as of `as_of_ms`.
    pub fn decide(&self, valid: bool, profile: Option<&Profile>, as_of_ms: i64) -> Verdict {
        let empty = Profile::default();
        let p = profile.unwrap_or(&empty);
        let last_activity_ms = p.last_activity_ms();
        let verdict = |status, reason, confidence: f64, reassigned| Verdict {
            status,
            reason,
            confidence: confidence.clamp(0.0, 1.0),
            last_activity_ms,
            possibly_reassigned: reassigned,
        };
        // Rule 1.
        if !valid {
            return verdict(ActiveStatus::Inactive, Reason::InvalidNumber, 1.0, false);
        }
        if p.is_empty() {
            return verdict(ActiveStatus::Unknown, Reason::NoEvidence, 0.5, false);
        }
        // Rule 2.
        let last_strong = p.class(EvidenceClass::StrongActive).last_ms;
        let mut reassigned = false;
        if let Some(cut) = p.last_disconnect_ms {
            match last_strong {
                Some(active) if active > cut => reassigned = true,
                _ => {
                    return verdict(
                        ActiveStatus::Inactive,
                        Reason::Disconnected,
                        self.disconnect_confidence,
                        false,
                    );
                }
            }
        }
        // Rule 3.
        let h = self.half_lives();
        let mass = |c: EvidenceClass| self.weight(c) * p.mass_at(c, as_of_ms, &h);
        let positive = mass(EvidenceClass::StrongActive) + mass(EvidenceClass::WeakActive);
        let negative = mass(EvidenceClass::WeakInactive);
        let score = (positive + self.prior_active)
            / (positive + negative + self.prior_active + self.prior_inactive);
        let lean = score.max(1.0 - score);
        // Rule 4.
        let failures = p.class(EvidenceClass::WeakInactive);
        let spread = match (failures.first_ms, failures.last_ms) {
            (Some(first), Some(last)) => {
                failures.count >= self.min_failures
                    && (last - first) as f64 >= self.min_failure_span_days * DAY_MS
            }
            _ => false,
        };
        if positive == 0.0 && negative > 0.0 && !spread {
            return verdict(
                ActiveStatus::Unknown,
                Reason::TemporaryFailures,
                lean,
                reassigned,
            );
        }
        if positive + negative < self.min_mass {
            return verdict(
                ActiveStatus::Unknown,
                Reason::InsufficientEvidence,
                lean,
                reassigned,
            );
        }
        if score >= self.active_threshold {
            return verdict(
                ActiveStatus::Active,
                Reason::RecentActivity,
                score,
                reassigned,
            );
        }
        if score <= self.inactive_threshold {
            return if spread {
                verdict(
                    ActiveStatus::Inactive,
                    Reason::RepeatedFailures,
                    1.0 - score,
                    reassigned,
                )
            } else {
                verdict(
                    ActiveStatus::Unknown,
                    Reason::TemporaryFailures,
                    lean,
                    reassigned,
                )
            };
        }
        verdict(
            ActiveStatus::Unknown,
            Reason::Inconclusive,
            lean,
            reassigned,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::E164;
    use crate::evidence::{EvidenceKind, Observation};

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_000 * DAY;

    fn profile(events: &[(i64, EvidenceClass)]) -> Option<Profile> {
        let h = Policy::default().half_lives();
        let mut p = Profile::default();
        for (days_ago, class) in events {
            let obs = Observation {
                number: E164::from_u64(4_930_901_820).unwrap(),
                observed_at_ms: NOW - days_ago * DAY,
                source: "t".into(),
                kind: EvidenceKind::SmsDlr,
                raw_code: "X".into(),
                class: *class,
                weight: 1.0,
                message_id: None,
            };
            p = p.merge(&Profile::of(&obs), &h);
        }
        (!events.is_empty()).then_some(p)
    }

    use EvidenceClass::{
        Neutral as N, StrongActive as SA, StrongInactive as SI, WeakActive as WA,
        WeakInactive as WI,
    };

    /// (name, valid, events as (days ago, class), status, reason, possibly_reassigned)
    type Case = (
        &'static str,
        bool,
        &'static [(i64, EvidenceClass)],
        ActiveStatus,
        Reason,
        bool,
    );

    #[test]
    fn every_rule_and_boundary() {
        let cases: &[Case] = &[
            (
                "invalid beats everything",
                false,
                &[(1, SA)],
                ActiveStatus::Inactive,
                Reason::InvalidNumber,
                false,
            ),
            (
                "nothing known",
                true,
                &[],
                ActiveStatus::Unknown,
                Reason::NoEvidence,
                false,
            ),
            (
                "fresh delivery",
                true,
                &[(1, SA)],
                ActiveStatus::Active,
                Reason::RecentActivity,
                false,
            ),
            (
                "delivery a year ago has decayed below the minimum mass",
                true,
                &[(400, SA)],
                ActiveStatus::Unknown,
                Reason::InsufficientEvidence,
                false,
            ),
            (
                "unknown subscriber after the last delivery",
                true,
                &[(30, SA), (2, SI)],
                ActiveStatus::Inactive,
                Reason::Disconnected,
                false,
            ),
            (
                "a disconnect with no activity at all",
                true,
                &[(200, SI)],
                ActiveStatus::Inactive,
                Reason::Disconnected,
                false,
            ),
            (
                "a disconnect on the same ms as activity is not superseded",
                true,
                &[(5, SA), (5, SI)],
                ActiveStatus::Inactive,
                Reason::Disconnected,
                false,
            ),
            (
                "weak activity after a disconnect does not undo it",
                true,
                &[(20, SI), (1, WA)],
                ActiveStatus::Inactive,
                Reason::Disconnected,
                false,
            ),
            (
                "strong activity after a deactivation",
                true,
                &[(90, SI), (3, SA)],
                ActiveStatus::Active,
                Reason::RecentActivity,
                true,
            ),
            (
                "only absent-subscriber failures, close together",
                true,
                &[(3, WI), (2, WI), (1, WI), (1, WI)],
                ActiveStatus::Unknown,
                Reason::TemporaryFailures,
                false,
            ),
            (
                "two failures spread over weeks are still temporary",
                true,
                &[(20, WI), (1, WI)],
                ActiveStatus::Unknown,
                Reason::TemporaryFailures,
                false,
            ),
            (
                "three failures spread over a week and more",
                true,
                &[(10, WI), (5, WI), (1, WI)],
                ActiveStatus::Inactive,
                Reason::RepeatedFailures,
                false,
            ),
            (
                "failures spread exactly the minimum span",
                true,
                &[(7, WI), (4, WI), (0, WI)],
                ActiveStatus::Inactive,
                Reason::RepeatedFailures,
                false,
            ),
            (
                "failures spread just short of the span",
                true,
                &[(6, WI), (4, WI), (0, WI)],
                ActiveStatus::Unknown,
                Reason::TemporaryFailures,
                false,
            ),
            (
                "a delivery among failures outweighs them",
                true,
                &[(10, WI), (5, WI), (1, SA)],
                ActiveStatus::Unknown,
                Reason::Inconclusive,
                false,
            ),
            (
                "weak activity alone is inconclusive",
                true,
                &[(0, WA)],
                ActiveStatus::Unknown,
                Reason::Inconclusive,
                false,
            ),
            (
                "two weak activities reach the active threshold",
                true,
                &[(0, WA), (0, WA)],
                ActiveStatus::Active,
                Reason::RecentActivity,
                false,
            ),
            (
                "neutral evidence alone says nothing",
                true,
                &[(1, N), (2, N)],
                ActiveStatus::Unknown,
                Reason::InsufficientEvidence,
                false,
            ),
            (
                "old failures decayed away",
                true,
                &[(400, WI), (390, WI), (380, WI)],
                ActiveStatus::Unknown,
                Reason::InsufficientEvidence,
                false,
            ),
        ];
        let policy = Policy::default();
        for (name, valid, events, status, reason, reassigned) in cases {
            let p = profile(events);
            let v = policy.decide(*valid, p.as_ref(), NOW);
            assert_eq!(
                (v.status, v.reason, v.possibly_reassigned),
                (*status, *reason, *reassigned),
                "{name}: {v:?}"
            );
            assert!(
                (0.0..=1.0).contains(&v.confidence),
                "{name}: confidence {}",
                v.confidence
            );
        }
    }

    #[test]
    fn the_active_threshold_is_inclusive() {
        // Two fresh weak activities: s = (2 + 1) / (2 + 2) = 0.75 exactly.
        let p = profile(&[(0, WA), (0, WA)]);
        let v = Policy::default().decide(true, p.as_ref(), NOW);
        assert_eq!(v.status, ActiveStatus::Active);
        assert!((v.confidence - 0.75).abs() < 1e-12);
        let stricter = Policy {
            active_threshold: 0.76,
            ..Policy::default()
        };
        assert_eq!(
            stricter.decide(true, p.as_ref(), NOW).status,
            ActiveStatus::Unknown
        );
    }

    #[test]
    fn the_minimum_mass_is_inclusive() {
        // One weak activity 0 days ago: P = 1.0 = min_mass; a hair older falls below.
        let policy = Policy {
            active_threshold: 0.6,
            ..Policy::default()
        };
        let fresh = profile(&[(0, WA)]);
        assert_eq!(
            policy.decide(true, fresh.as_ref(), NOW).reason,
            Reason::RecentActivity
        );
        assert_eq!(
            policy.decide(true, fresh.as_ref(), NOW + 1).reason,
            Reason::InsufficientEvidence
        );
    }

    #[test]
    fn confidences_follow_the_score_and_last_activity_is_reported() {
        let policy = Policy::default();
        let fresh = profile(&[(2, SA)]);
        let v = policy.decide(true, fresh.as_ref(), NOW);
        assert!((v.confidence - 0.8).abs() < 0.01, "{}", v.confidence);
        assert_eq!(v.last_activity_ms, Some(NOW - 2 * DAY));
        let none = policy.decide(true, None, NOW);
        assert_eq!((none.confidence, none.last_activity_ms), (0.5, None));
        let cut = policy.decide(true, profile(&[(9, SA), (1, SI)]).as_ref(), NOW);
        assert_eq!(cut.confidence, 0.95);
        assert_eq!(cut.last_activity_ms, Some(NOW - 9 * DAY));
        assert_eq!(policy.decide(false, None, NOW).confidence, 1.0);
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(Policy::default().validate().is_ok());
        let changed: [fn(&mut Policy); 3] = [
            |p| p.inactive_threshold = 0.8,
            |p| p.prior_active = 0.0,
            |p| p.half_life_days.weak_active = 0.0,
        ];
        for (i, change) in changed.into_iter().enumerate() {
            let mut p = Policy::default();
            change(&mut p);
            assert!(p.validate().is_err(), "change {i}");
        }
    }
}
