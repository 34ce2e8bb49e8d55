//! The verdict policy: from a number's validity, region and evidence profile to `active` /
//! `inactive` / `unknown`, with a reason, a confidence and the last activity.
//!
//! The rules, in order (`docs/accuracy.md` says why):
//! 1. Not a valid number of its numbering plan → `inactive` (`invalid_number`).
//! 2. A hard disconnect (unknown subscriber, number changed, deactivation, …) with no activity
//!    after it → `inactive` (`disconnected`). It says less the older it is: while younger than
//!    the region's minimum reuse period ([`ReuseTable`]) nobody else can hold the number; past
//!    it, its score halves every `disconnect_half_life_days`.
//!    Activity after a disconnect belongs to a new subscriber when it comes after the reuse
//!    period: the number is flagged `possibly_reassigned` and judged by rule 3.
//! 3. A Beta-reputation score `s = (P + α) / (P + N + α + β)` over decayed, weighted positive
//!    mass `P` (strong and weak activity) and negative mass `N` (weak failures):
//!    `P + N` below `min_mass` → `unknown` (`insufficient_evidence`); `s ≥ active_threshold` →
//!    `active` (`recent_activity`); `s ≤ inactive_threshold` → `inactive`
//!    (`repeated_failures`), subject to rule 4; otherwise `unknown` (`inconclusive`).
//! 4. Temporary failures (absent subscriber, handset off: the weak-inactive class) never make
//!    a number inactive on their own: it takes at least `min_failures` of them spread over at
//!    least `min_failure_span_days`; otherwise → `unknown` (`temporary_failures`).
//!
//! Each rule gives a raw score for the side it takes; the [`Calibration`] turns it into the
//! probability that the verdict is right, which is the verdict's confidence. A verdict less
//! sure than the floor (`min_confidence`, or a task's own) becomes `unknown`
//! (`low_confidence`, or `disconnected_long_ago` for a disconnect past its reuse period).

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::evidence::{EvidenceClass, EvidenceKind, HalfLives, Profile, RECENT, Sign};
use crate::reuse::ReuseTable;
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
    /// No longer used: a disconnect's confidence is calibrated. Kept so older configuration
    /// files still load.
    pub disconnect_confidence: f64,
    /// Past the region's minimum reuse period, the chance that a disconnected number is still
    /// nobody's halves every this many days.
    pub disconnect_half_life_days: f64,
    /// Subscriptions that end a month (what makes old activity say less).
    pub churn_per_month: f64,
    /// Chance that one hard failure is a misleading code (a live subscriber reported unknown).
    pub glitch_rate: f64,
    /// Verdicts less sure than this become `unknown`; a task may ask for its own floor.
    pub min_confidence: f64,
    /// A calibration file (`numcheck calibrate`) to use instead of the shipped one.
    pub calibration_file: Option<String>,
    /// A reuse-period table (`region,min_days,max_days,source`) layered over the shipped one.
    pub reuse_periods_file: Option<String>,
    /// The calibration in force (the shipped one, or `calibration_file` once loaded).
    #[serde(skip)]
    pub calibration: Calibration,
    /// The reuse periods in force (the shipped table, with `reuse_periods_file` once loaded).
    #[serde(skip)]
    pub reuse: ReuseTable,
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
            disconnect_half_life_days: 30.0,
            churn_per_month: 0.015,
            glitch_rate: 0.002,
            min_confidence: 0.97,
            calibration_file: None,
            reuse_periods_file: None,
            calibration: Calibration::shipped(),
            reuse: ReuseTable::shipped(),
        }
    }
}

/// The dead spell a number is in: from its newest hard failure back to the last sign of a
/// subscriber before it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spell {
    /// The spell began after this (the last activity before it; its first hard failure when
    /// none is known).
    start_earliest: i64,
    /// …and no later than this (its first hard failure).
    start_latest: i64,
    /// The last sign of a subscriber before the spell (activity, or a temporary failure),
    /// when known.
    service_before: Option<i64>,
    /// Hard failures in the spell (as far as the timeline reaches).
    hard_events: u32,
    /// One of them comes from an authority on the number (a carrier's deactivation list, a
    /// reassigned-number database, an HLR, the operator's own core), not from a message or
    /// call that may have been misreported.
    authoritative: bool,
    /// The first activity after the newest hard failure, when the timeline shows it.
    first_service_after: Option<i64>,
    /// The newest hard failure.
    last_hard: i64,
}

impl Spell {
    /// The dead spell that ends with the newest hard failure, as far as the profile's
    /// history ([`Profile::history`]: the timeline, then the week marks) reaches.
    fn of(p: &Profile, newest_hard: i64) -> Spell {
        let mut spell = Spell {
            start_earliest: newest_hard,
            start_latest: newest_hard,
            service_before: None,
            hard_events: 0,
            authoritative: p.last_disconnect_authoritative,
            first_service_after: None,
            last_hard: newest_hard,
        };
        let mut in_spell = true;
        let mut seen = 0;
        for e in p.history() {
            seen += 1;
            if e.at_ms > newest_hard {
                if e.sign == Sign::Service {
                    spell.first_service_after = Some(e.at_ms);
                }
            } else if e.sign == Sign::Hard {
                spell.hard_events += 1;
                spell.start_latest = e.at_ms;
                spell.authoritative |= e.kind.is_some_and(EvidenceKind::is_authoritative);
            } else {
                // Activity, or a temporary failure: an absent subscriber is a subscriber.
                spell.service_before = Some(e.at_ms.min(spell.start_latest));
                in_spell = false;
                break;
            }
        }
        if seen == 0 {
            // A profile stored before timelines: what the class counts tell.
            let hard = p.class(EvidenceClass::StrongInactive);
            spell.hard_events = u32::try_from(hard.count).unwrap_or(u32::MAX);
            spell.start_latest = hard.first_ms.unwrap_or(newest_hard);
            spell.service_before = p.last_activity_ms().filter(|s| *s < newest_hard);
        } else if in_spell && p.recent[RECENT - 1].is_some() {
            // The history ran out inside the spell: the last activity the class counts know
            // of bounds it.
            spell.service_before = p.last_activity_ms().filter(|s| *s < spell.start_latest);
        }
        // Without a sign of a subscriber before it, the spell is taken to begin at its first
        // hard failure: such numbers are often ones nobody ever had.
        spell.start_earliest = spell.service_before.unwrap_or(spell.start_latest);
        spell
    }
}

/// What a rule proposes, before calibration and the floor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Proposal {
    status: ActiveStatus,
    reason: Reason,
    /// Raw score of the side taken (for `unknown`, of the side leaned to).
    score: f64,
    reassigned: bool,
    /// A disconnect past its reuse period.
    aged: bool,
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
        if !in_unit(self.min_confidence) {
            return Err("policy.min_confidence must be between 0 and 1".into());
        }
        if !(self.disconnect_half_life_days.is_finite() && self.disconnect_half_life_days > 0.0) {
            return Err("policy.disconnect_half_life_days must be above 0".into());
        }
        if !(in_unit(self.churn_per_month) && in_unit(self.glitch_rate)) {
            return Err(
                "policy.churn_per_month and policy.glitch_rate must be between 0 and 1".into(),
            );
        }
        Ok(())
    }

    pub fn half_lives(&self) -> HalfLives {
        HalfLives(self.half_life_days.as_array())
    }

    fn weight(&self, class: EvidenceClass) -> f64 {
        self.weights.as_array()[class as usize]
    }

    fn churn_per_day(&self) -> f64 {
        self.churn_per_month / 30.0
    }

    /// How likely a number in a dead spell is still nobody's at `as_of_ms`. Its newest hard
    /// failure says it was free then. The spell began somewhere between the last sign of a
    /// subscriber and its first hard failure; nobody else can have it for the reuse period
    /// after that, and once it may be given out, the chance that it is still free halves every
    /// `disconnect_half_life_days` (averaged over where the spell may have begun). A spell of
    /// one hard failure right after activity may be a misleading code rather than a
    /// disconnect (`glitch_rate` a message, against `churn_per_month`).
    fn still_dead(&self, spell: &Spell, as_of_ms: i64, reuse_days: f64) -> f64 {
        let free_after = |start: i64| {
            let open_from = |t: i64| ((t - start) as f64 / DAY_MS - reuse_days).max(0.0);
            let exposed = open_from(as_of_ms) - open_from(spell.last_hard);
            0.5f64.powf(exposed.max(0.0) / self.disconnect_half_life_days)
        };
        let (early, late) = (spell.start_earliest, spell.start_latest);
        let dead =
            (free_after(early) + 2.0 * free_after((early + late) / 2) + free_after(late)) / 4.0;
        dead * self.real_disconnect(spell)
    }

    /// Whether a disconnect has gone unconfirmed for longer than the number may stay
    /// unassigned: since the reuse period after the spell's start, no hard failure has said
    /// it is still free.
    fn aged(spell: &Spell, as_of_ms: i64, reuse_days: f64) -> bool {
        let open = spell.start_latest + (reuse_days * DAY_MS) as i64;
        as_of_ms > open.max(spell.last_hard)
    }

    /// How likely a spell's hard failures mean the subscriber really left, rather than one
    /// misleading code between signs of them: a single hard failure after activity is a
    /// churn in that gap (`churn_per_month`) or a misleading code (`glitch_rate`).
    fn real_disconnect(&self, spell: &Spell) -> f64 {
        match (spell.hard_events, spell.service_before) {
            (1, Some(before)) if !spell.authoritative => {
                let days = ((spell.start_latest - before) as f64 / DAY_MS).max(0.0);
                let churned = 1.0 - (-self.churn_per_day() * days).exp();
                churned / (churned + self.glitch_rate)
            }
            _ => 1.0,
        }
    }

    /// The verdict for one number as of `as_of_ms`, with the policy's own confidence floor.
    pub fn decide(
        &self,
        valid: bool,
        region: Option<&str>,
        profile: Option<&Profile>,
        as_of_ms: i64,
    ) -> Verdict {
        self.decide_with_floor(valid, region, profile, as_of_ms, self.min_confidence)
    }

    /// The verdict with a confidence floor of the caller's (a task's `min_confidence`; 0 keeps
    /// every verdict the rules reach, as `numcheck calibrate` needs).
    pub fn decide_with_floor(
        &self,
        valid: bool,
        region: Option<&str>,
        profile: Option<&Profile>,
        as_of_ms: i64,
        floor: f64,
    ) -> Verdict {
        let last_activity_ms = profile.and_then(Profile::last_activity_ms);
        let p = self.propose(valid, region, profile, as_of_ms);
        let confidence = match (p.status, p.reason) {
            (_, Reason::InvalidNumber) => 1.0,
            (ActiveStatus::Active, _) => self.calibration.active.apply(p.score),
            (ActiveStatus::Inactive, _) => self.calibration.inactive.apply(p.score),
            (ActiveStatus::Unknown, _) => p.score,
        }
        .clamp(0.0, 1.0);
        let (status, reason) = if p.status != ActiveStatus::Unknown && confidence < floor {
            let reason = if p.aged {
                Reason::DisconnectedLongAgo
            } else {
                Reason::LowConfidence
            };
            (ActiveStatus::Unknown, reason)
        } else {
            (p.status, p.reason)
        };
        Verdict {
            status,
            reason,
            confidence,
            score: p.score.clamp(0.0, 1.0),
            last_activity_ms,
            possibly_reassigned: p.reassigned,
        }
    }

    /// What the rules say, with the raw score of the side they take.
    fn propose(
        &self,
        valid: bool,
        region: Option<&str>,
        profile: Option<&Profile>,
        as_of_ms: i64,
    ) -> Proposal {
        let propose = |status, reason, score, reassigned| Proposal {
            status,
            reason,
            score,
            reassigned,
            aged: false,
        };
        // Rule 1.
        if !valid {
            return propose(ActiveStatus::Inactive, Reason::InvalidNumber, 1.0, false);
        }
        let Some(p) = profile.filter(|p| !p.is_empty()) else {
            return propose(ActiveStatus::Unknown, Reason::NoEvidence, 0.5, false);
        };
        // Rule 2.
        let reuse_days = self.reuse.period(region).min_days;
        let service = p.last_activity_ms();
        let mut reassigned = false;
        let mut assigned_as_of = service;
        if let Some(cut) = p.last_disconnect_ms {
            let spell = Spell::of(p, cut);
            if service.is_none_or(|active| active <= cut) {
                let dead = self.still_dead(&spell, as_of_ms, reuse_days);
                let aged = Self::aged(&spell, as_of_ms, reuse_days);
                return Proposal {
                    aged,
                    ..propose(ActiveStatus::Inactive, Reason::Disconnected, dead, false)
                };
            }
            // Activity after the disconnect. Nobody else can hold the number within the reuse
            // period from the start of the dead spell: activity sooner means the disconnect
            // was a misleading code, not a new subscriber. (When the history does not reach
            // back to the disconnect, the gap is not known and it takes hard failures on more
            // than one day: one is as likely a misleading code.)
            reassigned = if spell.hard_events > 0 {
                spell
                    .first_service_after
                    .is_some_and(|first| (first - spell.start_latest) as f64 >= reuse_days * DAY_MS)
                    && self.real_disconnect(&spell) >= 0.9
            } else {
                let hard = p.class(EvidenceClass::StrongInactive);
                hard.count >= 2
                    && hard
                        .first_ms
                        .is_some_and(|first| (cut - first) as f64 >= DAY_MS)
            };
        }
        // The newest sign that someone held the number: activity, or a later temporary
        // failure (an absent subscriber is a subscriber).
        if let (Some(t), Some(w)) = (assigned_as_of, p.class(EvidenceClass::WeakInactive).last_ms)
            && w > t
            && p.last_disconnect_ms.is_none_or(|cut| w > cut)
        {
            assigned_as_of = Some(w);
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
        let unknown = |reason| propose(ActiveStatus::Unknown, reason, lean, false);
        if positive == 0.0 && negative > 0.0 && !spread {
            return unknown(Reason::TemporaryFailures);
        }
        if positive + negative < self.min_mass {
            return unknown(Reason::InsufficientEvidence);
        }
        if score >= self.active_threshold {
            // How likely the subscriber last seen is still there, or someone after them.
            let held = assigned_as_of.map_or(0.0, |t| {
                let days = ((as_of_ms - t) as f64 / DAY_MS).max(0.0);
                (-self.churn_per_day() * days).exp()
            });
            return propose(
                ActiveStatus::Active,
                Reason::RecentActivity,
                held * score,
                reassigned,
            );
        }
        if score <= self.inactive_threshold {
            return if spread {
                propose(
                    ActiveStatus::Inactive,
                    Reason::RepeatedFailures,
                    1.0 - score,
                    false,
                )
            } else {
                unknown(Reason::TemporaryFailures)
            };
        }
        unknown(Reason::Inconclusive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::E164;
    use crate::evidence::Observation;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_000 * DAY;

    /// The rules alone: raw scores as confidences, no floor.
    fn rules() -> Policy {
        Policy {
            calibration: Calibration::identity(),
            min_confidence: 0.0,
            ..Policy::default()
        }
    }

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
                "a line that rings after a disconnect is in service again, too soon to be new",
                true,
                &[(20, SI), (1, WA)],
                ActiveStatus::Unknown,
                Reason::InsufficientEvidence,
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
        let policy = rules();
        for (name, valid, events, status, reason, reassigned) in cases {
            let p = profile(events);
            let v = policy.decide(*valid, None, p.as_ref(), NOW);
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
        let v = rules().decide(true, None, p.as_ref(), NOW);
        assert_eq!(v.status, ActiveStatus::Active);
        assert!((v.score - 0.75).abs() < 1e-12, "{v:?}");
        let stricter = Policy {
            active_threshold: 0.76,
            ..rules()
        };
        assert_eq!(
            stricter.decide(true, None, p.as_ref(), NOW).status,
            ActiveStatus::Unknown
        );
    }

    #[test]
    fn the_minimum_mass_is_inclusive() {
        // One weak activity 0 days ago: P = 1.0 = min_mass; a hair older falls below.
        let policy = Policy {
            active_threshold: 0.6,
            ..rules()
        };
        let fresh = profile(&[(0, WA)]);
        assert_eq!(
            policy.decide(true, None, fresh.as_ref(), NOW).reason,
            Reason::RecentActivity
        );
        assert_eq!(
            policy.decide(true, None, fresh.as_ref(), NOW + 1).reason,
            Reason::InsufficientEvidence
        );
    }

    #[test]
    fn a_disconnect_is_sure_within_the_reuse_period_and_ages_after_it() {
        let policy = rules();
        let score = |days_ago: i64, region: &str| {
            let p = profile(&[(days_ago, SI)]);
            let v = policy.decide(true, Some(region), p.as_ref(), NOW);
            assert_eq!(
                (v.status, v.reason),
                (ActiveStatus::Inactive, Reason::Disconnected)
            );
            v.score
        };
        // Nobody else can hold a US number within 45 days of its disconnect (FCC 18-177).
        assert!(score(10, "US") > 0.9, "{}", score(10, "US"));
        // Older disconnects say less, and less the older they are.
        assert!(score(200, "US") < score(60, "US"));
        assert!(score(400, "US") < score(200, "US"));
        // Australia quarantines numbers for 180 days: the same age says more there.
        assert!(score(120, "AU") > score(120, "US"));
        // Under the floor an old disconnect is `disconnected_long_ago`, its confidence how
        // likely the number is still dead.
        let floored = Policy {
            min_confidence: 0.96,
            ..rules()
        };
        let old = floored.decide(true, Some("US"), profile(&[(400, SI)]).as_ref(), NOW);
        assert_eq!(
            (old.status, old.reason),
            (ActiveStatus::Unknown, Reason::DisconnectedLongAgo)
        );
        assert!((old.confidence - score(400, "US")).abs() < 1e-12);
    }

    #[test]
    fn one_hard_failure_right_after_deliveries_may_be_a_misleading_code() {
        let policy = rules();
        let v = |events: &[(i64, EvidenceClass)]| {
            policy.decide(true, Some("US"), profile(events).as_ref(), NOW)
        };
        let single = v(&[(40, SA), (30, SA), (20, SA), (19, SI)]);
        let twice = v(&[(40, SA), (30, SA), (20, SA), (19, SI), (5, SI)]);
        assert_eq!(single.status, ActiveStatus::Inactive);
        assert!(single.score < twice.score, "{single:?} {twice:?}");
        // A long silence before the failure leaves room for a real churn.
        let after_silence = v(&[(400, SA), (19, SI)]);
        assert!(after_silence.score > single.score);
    }

    #[test]
    fn activity_counts_as_a_new_subscriber_only_after_the_reuse_period() {
        let policy = rules();
        let v = |events: &[(i64, EvidenceClass)]| {
            policy.decide(true, Some("US"), profile(events).as_ref(), NOW)
        };
        // Delivered 10 days after "unknown subscriber": too soon for anyone else.
        let soon = v(&[(100, SA), (70, SI), (70, SI), (60, SA), (1, SA)]);
        assert!(!soon.possibly_reassigned, "{soon:?}");
        // Delivered 70 days after: past the 45 days, a new subscriber.
        let later = v(&[(100, SA), (80, SI), (79, SI), (10, SA), (1, SA)]);
        assert!(later.possibly_reassigned, "{later:?}");
        assert_eq!(later.status, ActiveStatus::Active);
    }

    #[test]
    fn verdicts_under_the_floor_are_unknown_and_keep_their_confidence() {
        let fresh = profile(&[(2, SA)]);
        let v = rules().decide(true, None, fresh.as_ref(), NOW);
        assert_eq!(v.status, ActiveStatus::Active);
        let floored =
            rules().decide_with_floor(true, None, fresh.as_ref(), NOW, v.confidence + 0.01);
        assert_eq!(
            (floored.status, floored.reason),
            (ActiveStatus::Unknown, Reason::LowConfidence)
        );
        assert_eq!(floored.confidence, v.confidence);
        assert_eq!(v.last_activity_ms, Some(NOW - 2 * DAY));
        let none = rules().decide(true, None, None, NOW);
        assert_eq!((none.confidence, none.last_activity_ms), (0.5, None));
        assert_eq!(rules().decide(false, None, None, NOW).confidence, 1.0);
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(Policy::default().validate().is_ok());
        let changed: [fn(&mut Policy); 5] = [
            |p| p.inactive_threshold = 0.8,
            |p| p.prior_active = 0.0,
            |p| p.half_life_days.weak_active = 0.0,
            |p| p.min_confidence = 1.5,
            |p| p.disconnect_half_life_days = 0.0,
        ];
        for (i, change) in changed.into_iter().enumerate() {
            let mut p = Policy::default();
            change(&mut p);
            assert!(p.validate().is_err(), "change {i}");
        }
    }
}
