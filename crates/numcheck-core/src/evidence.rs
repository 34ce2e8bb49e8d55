//! Evidence: observations about numbers and the per-number profiles built from them.
//!
//! An [`Observation`] is one fact about one number at one time from one source. The log of
//! observations is the truth; a [`Profile`] is a rebuildable summary of a number's log: per
//! [`EvidenceClass`] a mass decayed to a reference time (each class with its own half-life),
//! an event count, and the first and last event times, plus the time of the last hard
//! disconnect. [`Profile::merge`] is associative and commutative, so profiles can be built
//! in batches, in parallel, in any order, and sharded by number.

use std::str::FromStr;

use crate::e164::E164;
use crate::vocabulary::vocabulary;

/// A [`vocabulary!`] read back leniently: surrounding white space is ignored, and an
/// unknown word's error lists the known ones.
macro_rules! evidence_vocabulary {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        vocabulary!(
            $(#[$meta])*
            #[derive(PartialOrd, Ord)]
            $name { $($variant => $text),+ }
        );

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?}; one of: {}",
                        $what,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

evidence_vocabulary!(
    /// How much an observation says about whether a number is in use.
    EvidenceClass, "class" {
        StrongActive => "strong_active",
        WeakActive => "weak_active",
        Neutral => "neutral",
        WeakInactive => "weak_inactive",
        StrongInactive => "strong_inactive",
    }
);

evidence_vocabulary!(
    /// Where an observation comes from.
    EvidenceKind, "kind" {
        SmsDlr => "sms_dlr",
        Call => "call",
        AppEvent => "app_event",
        Hlr => "hlr",
        Deactivation => "deactivation",
        Reassigned => "reassigned",
        CoreNetwork => "core_network",
    }
);

impl EvidenceClass {
    fn index(self) -> usize {
        self as usize
    }

    /// A hard disconnect: the number was given up or never existed (unknown subscriber,
    /// number changed, carrier deactivation, reassigned "yes", no such subscriber in the core).
    pub fn is_hard_disconnect(self) -> bool {
        self == EvidenceClass::StrongInactive
    }

    pub fn is_activity(self) -> bool {
        matches!(
            self,
            EvidenceClass::StrongActive | EvidenceClass::WeakActive
        )
    }
}

/// One fact about one number.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub number: E164,
    /// Milliseconds since the Unix epoch, UTC.
    pub observed_at_ms: i64,
    /// The system that saw it (an SMSC, a switch, an HLR provider, an app), free text.
    pub source: String,
    pub kind: EvidenceKind,
    /// The code as the source gave it (`DELIVRD`, `UNDELIV:001`, `486`, …).
    pub raw_code: String,
    pub class: EvidenceClass,
    /// Multiplies the class weight; 1.0 for an ordinary observation.
    pub weight: f64,
    /// The source's id of the message or call, when it has one (dedupe key).
    pub message_id: Option<String>,
}

/// Half-lives per class, in days, used to decay masses. Part of the policy; profiles are
/// built with the half-lives in force, and `evidence rebuild` recomputes them after a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfLives(pub [f64; 5]);

impl HalfLives {
    pub fn days(&self, class: EvidenceClass) -> f64 {
        self.0[class.index()]
    }

    fn decay(&self, class: EvidenceClass, from_ms: i64, to_ms: i64) -> f64 {
        let days = (to_ms - from_ms) as f64 / 86_400_000.0;
        let h = self.days(class);
        if h <= 0.0 || !h.is_finite() {
            return 1.0;
        }
        (-days / h * std::f64::consts::LN_2).exp()
    }
}

/// One class's summary in a profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClassStats {
    /// Sum of weights, each decayed to the profile's reference time.
    pub mass: f64,
    pub count: u64,
    /// First and last event times (ms), `None` when `count == 0`.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// A number's evidence, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Profile {
    /// The time masses are decayed to: the newest event merged in.
    pub ref_ms: i64,
    pub classes: [ClassStats; 5],
    /// The newest hard disconnect.
    pub last_disconnect_ms: Option<i64>,
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Profile {
    /// The profile of a single observation.
    pub fn of(obs: &Observation) -> Profile {
        let mut p = Profile {
            ref_ms: obs.observed_at_ms,
            ..Profile::default()
        };
        let c = &mut p.classes[obs.class.index()];
        c.mass = obs.weight;
        c.count = 1;
        c.first_ms = Some(obs.observed_at_ms);
        c.last_ms = Some(obs.observed_at_ms);
        if obs.class.is_hard_disconnect() {
            p.last_disconnect_ms = Some(obs.observed_at_ms);
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        self.classes.iter().all(|c| c.count == 0)
    }

    pub fn class(&self, class: EvidenceClass) -> &ClassStats {
        &self.classes[class.index()]
    }

    /// Combines two profiles of the same number. Associative and commutative (up to float
    /// rounding): masses are decayed to the later reference time and added.
    pub fn merge(&self, other: &Profile, half_lives: &HalfLives) -> Profile {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let ref_ms = self.ref_ms.max(other.ref_ms);
        let mut out = Profile {
            ref_ms,
            ..Profile::default()
        };
        for class in EvidenceClass::ALL {
            let i = class.index();
            let (a, b) = (&self.classes[i], &other.classes[i]);
            out.classes[i] = ClassStats {
                mass: a.mass * half_lives.decay(*class, self.ref_ms, ref_ms)
                    + b.mass * half_lives.decay(*class, other.ref_ms, ref_ms),
                count: a.count + b.count,
                first_ms: min_opt(a.first_ms, b.first_ms),
                last_ms: max_opt(a.last_ms, b.last_ms),
            };
        }
        out.last_disconnect_ms = max_opt(self.last_disconnect_ms, other.last_disconnect_ms);
        out
    }

    /// A class's mass decayed to `at_ms`.
    pub fn mass_at(&self, class: EvidenceClass, at_ms: i64, half_lives: &HalfLives) -> f64 {
        self.classes[class.index()].mass * half_lives.decay(class, self.ref_ms, at_ms)
    }

    /// The newest activity of any strength.
    pub fn last_activity_ms(&self) -> Option<i64> {
        max_opt(
            self.class(EvidenceClass::StrongActive).last_ms,
            self.class(EvidenceClass::WeakActive).last_ms,
        )
    }

    /// Fixed-size binary form for storage: 8 + 5 × 32 + 8 bytes, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROFILE_BYTES);
        out.extend_from_slice(&self.ref_ms.to_le_bytes());
        for c in &self.classes {
            out.extend_from_slice(&c.mass.to_le_bytes());
            out.extend_from_slice(&c.count.to_le_bytes());
            out.extend_from_slice(&c.first_ms.unwrap_or(i64::MIN).to_le_bytes());
            out.extend_from_slice(&c.last_ms.unwrap_or(i64::MIN).to_le_bytes());
        }
        out.extend_from_slice(&self.last_disconnect_ms.unwrap_or(i64::MIN).to_le_bytes());
        out
    }

    /// Reads [`Profile::to_bytes`]; `None` when the bytes are not a profile.
    pub fn from_bytes(bytes: &[u8]) -> Option<Profile> {
        if bytes.len() != PROFILE_BYTES {
            return None;
        }
        let word = |i: usize| -> [u8; 8] {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            w
        };
        let opt = |v: i64| (v != i64::MIN).then_some(v);
        let mut p = Profile {
            ref_ms: i64::from_le_bytes(word(0)),
            ..Profile::default()
        };
        for (k, c) in p.classes.iter_mut().enumerate() {
            let base = 1 + k * 4;
            c.mass = f64::from_le_bytes(word(base));
            c.count = u64::from_le_bytes(word(base + 1));
            c.first_ms = opt(i64::from_le_bytes(word(base + 2)));
            c.last_ms = opt(i64::from_le_bytes(word(base + 3)));
        }
        p.last_disconnect_ms = opt(i64::from_le_bytes(word(21)));
        Some(p)
    }

    /// Whether two profiles agree within a relative float tolerance.
    pub fn approx_eq(&self, other: &Profile, tolerance: f64) -> bool {
        self.ref_ms == other.ref_ms
            && self.last_disconnect_ms == other.last_disconnect_ms
            && self.classes.iter().zip(&other.classes).all(|(a, b)| {
                a.count == b.count
                    && a.first_ms == b.first_ms
                    && a.last_ms == b.last_ms
                    && (a.mass - b.mass).abs()
                        <= tolerance * a.mass.abs().max(b.mass.abs()).max(1e-12)
            })
    }
}

/// Size of [`Profile::to_bytes`].
pub const PROFILE_BYTES: usize = 8 * 22;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: HalfLives = HalfLives([180.0, 90.0, 30.0, 60.0, 365.0]);
    const DAY: i64 = 86_400_000;

    fn obs(t: i64, class: EvidenceClass, weight: f64) -> Observation {
        Observation {
            number: E164::from_u64(14_155_552_671).unwrap(),
            observed_at_ms: t,
            source: "test".into(),
            kind: EvidenceKind::SmsDlr,
            raw_code: "X".into(),
            class,
            weight,
            message_id: None,
        }
    }

    #[test]
    fn mass_halves_after_one_half_life() {
        let p = Profile::of(&obs(0, EvidenceClass::StrongActive, 2.0));
        let m = p.mass_at(EvidenceClass::StrongActive, 180 * DAY, &H);
        assert!((m - 1.0).abs() < 1e-9, "{m}");
        let q = Profile::of(&obs(0, EvidenceClass::WeakInactive, 1.0));
        assert!((q.mass_at(EvidenceClass::WeakInactive, 120 * DAY, &H) - 0.25).abs() < 1e-9);
    }

    #[test]
    fn merge_keeps_counts_times_and_the_last_disconnect() {
        let a = Profile::of(&obs(10 * DAY, EvidenceClass::StrongActive, 1.0));
        let b = Profile::of(&obs(20 * DAY, EvidenceClass::StrongInactive, 1.0));
        let c = Profile::of(&obs(5 * DAY, EvidenceClass::StrongActive, 1.0));
        let m = a.merge(&b, &H).merge(&c, &H);
        assert_eq!(m.ref_ms, 20 * DAY);
        let sa = m.class(EvidenceClass::StrongActive);
        assert_eq!(
            (sa.count, sa.first_ms, sa.last_ms),
            (2, Some(5 * DAY), Some(10 * DAY))
        );
        assert_eq!(m.last_disconnect_ms, Some(20 * DAY));
        assert_eq!(m.last_activity_ms(), Some(10 * DAY));
    }

    #[test]
    fn bytes_round_trip() {
        let p = Profile::of(&obs(3, EvidenceClass::WeakActive, 0.5)).merge(
            &Profile::of(&obs(9, EvidenceClass::StrongInactive, 1.0)),
            &H,
        );
        assert_eq!(Profile::from_bytes(&p.to_bytes()), Some(p));
        assert_eq!(
            Profile::from_bytes(&Profile::default().to_bytes()),
            Some(Profile::default())
        );
        assert_eq!(Profile::from_bytes(&[0; 3]), None);
    }

    #[test]
    fn vocabulary_parses_and_names_the_choices_on_error() {
        assert_eq!(
            "weak_inactive".parse::<EvidenceClass>(),
            Ok(EvidenceClass::WeakInactive)
        );
        assert_eq!("sms_dlr".parse::<EvidenceKind>(), Ok(EvidenceKind::SmsDlr));
        let err = "loud".parse::<EvidenceClass>().unwrap_err();
        assert!(err.contains("strong_active"), "{err}");
    }

    fn class_strategy() -> impl Strategy<Value = EvidenceClass> {
        prop::sample::select(EvidenceClass::ALL.to_vec())
    }

    proptest! {
        /// Any split of the same observations into batches, merged in any order, gives the
        /// same profile.
        #[test]
        fn merge_is_associative_and_commutative(
            events in prop::collection::vec((0i64..(400 * DAY), class_strategy(), 0.1f64..5.0), 1..40),
            cuts in prop::collection::vec(0usize..40, 0..6),
            seed in any::<u64>(),
        ) {
            let all: Vec<Profile> = events.iter().map(|(t, c, w)| Profile::of(&obs(*t, *c, *w))).collect();
            let sequential = all.iter().fold(Profile::default(), |acc, p| acc.merge(p, &H));

            // Split into batches at the cuts, fold each batch, then merge batches in a
            // shuffled order.
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(all.len())).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut batches = Vec::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([all.len()]) {
                batches.push(all[start..c].iter().rev().fold(Profile::default(), |acc, p| p.merge(&acc, &H)));
                start = c;
            }
            let mut order: Vec<usize> = (0..batches.len()).collect();
            let mut s = seed;
            for i in (1..order.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let shuffled = order.iter().fold(Profile::default(), |acc, &i| acc.merge(&batches[i], &H));
            prop_assert!(sequential.approx_eq(&shuffled, 1e-9), "{sequential:?}\n{shuffled:?}");
        }
    }
}
