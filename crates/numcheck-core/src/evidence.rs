//! Evidence: observations about numbers and the per-number profiles built from them.
//!
//! An [`Observation`] is one fact about one number at one time from one source. The log of
//! observations is the truth; a [`Profile`] is a rebuildable summary of a number's log: per
//! [`EvidenceClass`] a mass decayed to a reference time (each class with its own half-life),
//! an event count, and the first and last event times, plus the time of the last hard
//! disconnect and the [`RECENT`] newest events themselves (time and class), which tell the
//! policy in what order things happened lately, and which of the last [`WEEKS`] weeks saw
//! service, absence or a hard failure ([`WeekMarks`]), which tell it further back at a week's
//! grain. [`Profile::merge`] is associative and commutative, so profiles can be built in
//! batches, in parallel, in any order, and sharded by number.

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

impl EvidenceKind {
    /// An authority on the number (a carrier's deactivation list, a reassigned-number
    /// database, an HLR, the operator's own core), not a message or call outcome that a route
    /// may have misreported.
    pub fn is_authoritative(self) -> bool {
        !matches!(
            self,
            EvidenceKind::SmsDlr | EvidenceKind::Call | EvidenceKind::AppEvent
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

/// How many of a number's newest events a profile keeps one by one.
pub const RECENT: usize = 8;

/// One event of a profile's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecentEvent {
    pub at_ms: i64,
    pub class: EvidenceClass,
    pub kind: EvidenceKind,
}

/// How many weeks back [`WeekMarks`] reach (about two and a half years).
pub const WEEKS: i64 = 128;

/// A week in milliseconds; weeks are counted from the Unix epoch.
pub const WEEK_MS: i64 = 7 * 86_400_000;

/// The week (since the Unix epoch) an instant falls in.
pub fn week_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(WEEK_MS)
}

/// Which of the [`WEEKS`] weeks up to a profile's reference week saw each sign: bit `i` is
/// the week `i` weeks before it. Merging shifts to the later week and ORs, so the marks of a
/// merge are those of all events, whatever the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeekMarks {
    /// Activity (strong or weak).
    pub service: u128,
    /// Temporary failures: the subscriber was absent, but there was one.
    pub absent: u128,
    /// Hard disconnects.
    pub hard: u128,
}

impl WeekMarks {
    fn shifted(self, weeks: i64) -> WeekMarks {
        let shift = |bits: u128| {
            u32::try_from(weeks)
                .ok()
                .and_then(|w| bits.checked_shl(w))
                .unwrap_or(0)
        };
        WeekMarks {
            service: shift(self.service),
            absent: shift(self.absent),
            hard: shift(self.hard),
        }
    }

    fn or(self, other: WeekMarks) -> WeekMarks {
        WeekMarks {
            service: self.service | other.service,
            absent: self.absent | other.absent,
            hard: self.hard | other.hard,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.service | self.absent | self.hard == 0
    }
}

/// What a [`Profile::history`] event says of the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// Activity: someone uses the number.
    Service,
    /// A temporary failure: someone has it, but was out of reach.
    Absent,
    /// A hard disconnect.
    Hard,
}

impl Sign {
    fn of(class: EvidenceClass) -> Option<Sign> {
        match class {
            EvidenceClass::StrongActive | EvidenceClass::WeakActive => Some(Sign::Service),
            EvidenceClass::WeakInactive => Some(Sign::Absent),
            EvidenceClass::StrongInactive => Some(Sign::Hard),
            EvidenceClass::Neutral => None,
        }
    }
}

/// One event of a number's history as a profile remembers it: exact from the timeline, or
/// placed in the middle of its week from the week marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    pub at_ms: i64,
    pub sign: Sign,
    /// The source kind, when the event is from the timeline.
    pub kind: Option<EvidenceKind>,
    /// From the timeline (exact time) rather than the week marks.
    pub exact: bool,
}

/// A number's evidence, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Profile {
    /// The time masses are decayed to: the newest event merged in.
    pub ref_ms: i64,
    pub classes: [ClassStats; 5],
    /// The newest hard disconnect.
    pub last_disconnect_ms: Option<i64>,
    /// The newest events, newest first (neutral ones left out: they say nothing); `None` past
    /// the number of events kept. Profiles stored before the timeline existed read back with
    /// none until `numcheck evidence rebuild`.
    pub recent: [Option<RecentEvent>; RECENT],
    /// Which recent weeks saw which signs, counted back from the week of `ref_ms`.
    pub weeks: WeekMarks,
    /// The newest hard disconnect came from an authority on the number
    /// ([`EvidenceKind::is_authoritative`]).
    pub last_disconnect_authoritative: bool,
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
            p.last_disconnect_authoritative = obs.kind.is_authoritative();
        }
        match Sign::of(obs.class) {
            Some(Sign::Service) => p.weeks.service = 1,
            Some(Sign::Absent) => p.weeks.absent = 1,
            Some(Sign::Hard) => p.weeks.hard = 1,
            None => {}
        }
        if obs.class != EvidenceClass::Neutral {
            p.recent[0] = Some(RecentEvent {
                at_ms: obs.observed_at_ms,
                class: obs.class,
                kind: obs.kind,
            });
        }
        p
    }

    /// The timeline's events, newest first.
    pub fn timeline(&self) -> impl Iterator<Item = RecentEvent> + '_ {
        self.recent.iter().map_while(|e| *e)
    }

    /// What the profile remembers of the number's history, newest first: the timeline's
    /// events exactly, then, when the timeline is full, the week marks of the weeks before
    /// its oldest event, each placed mid-week (a hard failure, then service, then absence
    /// within a week; the newest disconnect at its own time). Empty for a profile stored
    /// before timelines.
    pub fn history(&self) -> impl Iterator<Item = Sighting> + '_ {
        let exact = self.timeline().filter_map(|e| {
            Sign::of(e.class).map(|sign| Sighting {
                at_ms: e.at_ms,
                sign,
                kind: Some(e.kind),
                exact: true,
            })
        });
        let top = week_of(self.ref_ms);
        // Weeks strictly before the week of the full timeline's oldest event.
        let from = self.recent[RECENT - 1].map_or(WEEKS, |oldest| top - week_of(oldest.at_ms) + 1);
        let marks = self.weeks;
        let last_hard = self.last_disconnect_ms;
        let weekly = (from..WEEKS).flat_map(move |i| {
            let week = top - i;
            let mid = week * WEEK_MS + WEEK_MS / 2;
            let bit = 1u128 << i;
            // Within a week the order is not known: the hard failure comes first (newest), so
            // a week that holds both a disconnect and signs of a subscriber reads as "in
            // service, then disconnected" — the way numbers die — and the signs bound the
            // dead spell instead of hiding it.
            [
                (marks.hard & bit != 0).then(|| {
                    let at = last_hard.filter(|t| week_of(*t) == week).unwrap_or(mid);
                    (at, Sign::Hard)
                }),
                (marks.service & bit != 0).then_some((mid, Sign::Service)),
                (marks.absent & bit != 0).then_some((mid, Sign::Absent)),
            ]
            .into_iter()
            .flatten()
            .map(|(at_ms, sign)| Sighting {
                at_ms,
                sign,
                kind: None,
                exact: false,
            })
        });
        exact.chain(weekly)
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
        out.last_disconnect_authoritative =
            match self.last_disconnect_ms.cmp(&other.last_disconnect_ms) {
                std::cmp::Ordering::Greater => self.last_disconnect_authoritative,
                std::cmp::Ordering::Less => other.last_disconnect_authoritative,
                std::cmp::Ordering::Equal => {
                    self.last_disconnect_authoritative || other.last_disconnect_authoritative
                }
            };
        let top = week_of(ref_ms);
        out.weeks = self
            .weeks
            .shifted(top - week_of(self.ref_ms))
            .or(other.weeks.shifted(top - week_of(other.ref_ms)));
        // The newest of both timelines, newest first; ties ordered by class so the result
        // does not depend on the order of the merge.
        let (mut a, mut b) = (self.timeline().peekable(), other.timeline().peekable());
        for slot in out.recent.iter_mut() {
            *slot = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x >= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
        }
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

    /// The binary form for storage: compact, with times as varint distances from the
    /// reference time, and only what is there (most profiles hold one or two classes, a short
    /// timeline and a few week marks: 20–60 bytes). Never [`LEGACY_BYTES`] long, so the
    /// fixed form earlier releases stored is told apart by its length.
    ///
    /// Layout: a flags byte (bits 0–4: the classes present; 5: a last disconnect; 6: it was
    /// authoritative; 7: one padding byte at the end), `ref_ms` (zigzag varint); per class
    /// present its mass (f64, little-endian), count (varint) and first and last times
    /// (varint, 0 for none, else zigzag distance below `ref_ms` plus one); the last
    /// disconnect (zigzag distance); the timeline (a count byte, then per event its zigzag
    /// distance and a class-and-kind byte); the week marks (a byte saying which of service,
    /// absent, hard are non-zero, then each as a length byte and that many little-endian
    /// bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        let present: Vec<usize> = (0..self.classes.len())
            .filter(|&k| self.classes[k] != ClassStats::default())
            .collect();
        let mut flags = present.iter().fold(0u8, |f, &k| f | 1 << k);
        if self.last_disconnect_ms.is_some() {
            flags |= 1 << 5;
        }
        if self.last_disconnect_authoritative {
            flags |= 1 << 6;
        }
        out.push(flags);
        put_varint(&mut out, zigzag(self.ref_ms));
        let distance = |t: i64| zigzag(self.ref_ms.wrapping_sub(t));
        for &k in &present {
            let c = &self.classes[k];
            out.extend_from_slice(&c.mass.to_le_bytes());
            put_varint(&mut out, c.count);
            for t in [c.first_ms, c.last_ms] {
                put_varint(&mut out, t.map_or(0, |t| distance(t).wrapping_add(1)));
            }
        }
        if let Some(t) = self.last_disconnect_ms {
            put_varint(&mut out, distance(t));
        }
        let events: Vec<RecentEvent> = self.timeline().collect();
        out.push(events.len() as u8);
        for e in events {
            put_varint(&mut out, distance(e.at_ms));
            out.push(e.class as u8 | (e.kind as u8) << 3);
        }
        let marks = [self.weeks.service, self.weeks.absent, self.weeks.hard];
        out.push(
            marks
                .iter()
                .enumerate()
                .fold(0u8, |m, (i, b)| if *b != 0 { m | 1 << i } else { m }),
        );
        for bits in marks.into_iter().filter(|b| *b != 0) {
            let len = 16 - (bits.leading_zeros() / 8) as usize;
            out.push(len as u8);
            out.extend_from_slice(&bits.to_le_bytes()[..len]);
        }
        if out.len() == LEGACY_BYTES {
            out[0] |= 1 << 7;
            out.push(0);
        }
        out
    }

    /// Reads [`Profile::to_bytes`], or the fixed form of earlier releases (with no timeline
    /// or week marks: `numcheck evidence rebuild` fills them in); `None` when the bytes are
    /// not a profile.
    pub fn from_bytes(bytes: &[u8]) -> Option<Profile> {
        if bytes.len() == LEGACY_BYTES {
            return Self::from_legacy_bytes(bytes);
        }
        let mut r = Reader(bytes);
        let flags = r.byte()?;
        let mut p = Profile {
            ref_ms: unzigzag(r.varint()?),
            ..Profile::default()
        };
        let ref_ms = p.ref_ms;
        let at = |d: u64| ref_ms.wrapping_sub(unzigzag(d));
        for (k, c) in p.classes.iter_mut().enumerate() {
            if flags & 1 << k == 0 {
                continue;
            }
            c.mass = f64::from_le_bytes(r.take::<8>()?);
            c.count = r.varint()?;
            let mut time = || r.varint().map(|v| (v != 0).then(|| at(v.wrapping_sub(1))));
            c.first_ms = time()?;
            c.last_ms = time()?;
        }
        if flags & 1 << 5 != 0 {
            p.last_disconnect_ms = Some(at(r.varint()?));
        }
        p.last_disconnect_authoritative = flags & 1 << 6 != 0;
        let events = usize::from(r.byte()?);
        if events > RECENT {
            return None;
        }
        for slot in p.recent.iter_mut().take(events) {
            let at_ms = at(r.varint()?);
            let tag = r.byte()?;
            *slot = Some(RecentEvent {
                at_ms,
                class: *EvidenceClass::ALL.get(usize::from(tag & 0b111))?,
                kind: *EvidenceKind::ALL.get(usize::from(tag >> 3))?,
            });
        }
        let mask = r.byte()?;
        let mut marks = [0u128; 3];
        for (i, bits) in marks.iter_mut().enumerate() {
            if mask & 1 << i != 0 {
                let len = usize::from(r.byte()?);
                let mut w = [0u8; 16];
                w.get_mut(..len)?.copy_from_slice(r.bytes(len)?);
                *bits = u128::from_le_bytes(w);
            }
        }
        p.weeks = WeekMarks {
            service: marks[0],
            absent: marks[1],
            hard: marks[2],
        };
        if flags & 1 << 7 != 0 && r.byte()? != 0 {
            return None;
        }
        (mask < 8 && r.0.is_empty()).then_some(p)
    }

    /// The fixed 176-byte form earlier releases stored: 8 + 5 × 32 + 8 bytes, little-endian.
    fn from_legacy_bytes(bytes: &[u8]) -> Option<Profile> {
        let word = |i: usize| -> Option<[u8; 8]> { bytes.get(i * 8..i * 8 + 8)?.try_into().ok() };
        let opt = |v: i64| (v != i64::MIN).then_some(v);
        let mut p = Profile {
            ref_ms: i64::from_le_bytes(word(0)?),
            ..Profile::default()
        };
        for (k, c) in p.classes.iter_mut().enumerate() {
            let base = 1 + k * 4;
            c.mass = f64::from_le_bytes(word(base)?);
            c.count = u64::from_le_bytes(word(base + 1)?);
            c.first_ms = opt(i64::from_le_bytes(word(base + 2)?));
            c.last_ms = opt(i64::from_le_bytes(word(base + 3)?));
        }
        p.last_disconnect_ms = opt(i64::from_le_bytes(word(21)?));
        Some(p)
    }

    /// The fixed form of earlier releases, for tests of reading it.
    #[cfg(test)]
    fn legacy_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEGACY_BYTES);
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

    /// Whether two profiles agree within a relative float tolerance.
    pub fn approx_eq(&self, other: &Profile, tolerance: f64) -> bool {
        self.ref_ms == other.ref_ms
            && self.last_disconnect_ms == other.last_disconnect_ms
            && self.recent == other.recent
            && self.weeks == other.weeks
            && self.last_disconnect_authoritative == other.last_disconnect_authoritative
            && self.classes.iter().zip(&other.classes).all(|(a, b)| {
                a.count == b.count
                    && a.first_ms == b.first_ms
                    && a.last_ms == b.last_ms
                    && (a.mass - b.mass).abs()
                        <= tolerance * a.mass.abs().max(b.mass.abs()).max(1e-12)
            })
    }
}

/// Size of the fixed profile form earlier releases stored (and [`Profile::to_bytes`] never
/// writes).
pub const LEGACY_BYTES: usize = 8 * 22;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// LEB128: seven bits a byte, low first, the top bit saying more follow.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over stored bytes; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

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
    fn history_reaches_past_a_full_timeline_by_the_week() {
        // A hard failure 300 days ago, then twelve receipts from day 250 on.
        let mut p = Profile::of(&Observation {
            kind: EvidenceKind::Deactivation,
            ..obs(100 * DAY, EvidenceClass::StrongInactive, 1.0)
        });
        for d in 0..12 {
            p = p.merge(
                &Profile::of(&obs((150 + 20 * d) * DAY, EvidenceClass::StrongActive, 1.0)),
                &H,
            );
        }
        assert!(p.last_disconnect_authoritative);
        let history: Vec<Sighting> = p.history().collect();
        assert_eq!(history.iter().filter(|e| e.exact).count(), RECENT);
        let weekly: Vec<&Sighting> = history.iter().filter(|e| !e.exact).collect();
        assert_eq!(weekly.last().unwrap().sign, Sign::Hard);
        assert_eq!(
            weekly.last().unwrap().at_ms,
            100 * DAY,
            "the disconnect at its own time"
        );
        let first_service = weekly
            .iter()
            .rev()
            .find(|e| e.sign == Sign::Service)
            .unwrap();
        assert_eq!(week_of(first_service.at_ms), week_of(150 * DAY));
        assert!(
            history.windows(2).all(|w| w[0].at_ms >= w[1].at_ms),
            "{history:?}"
        );
        assert_eq!(Profile::from_bytes(&p.to_bytes()), Some(p));
    }

    #[test]
    fn week_marks_older_than_the_window_drop_out() {
        let old = Profile::of(&obs(0, EvidenceClass::StrongInactive, 1.0));
        let new = Profile::of(&obs(WEEKS * WEEK_MS, EvidenceClass::StrongActive, 1.0));
        let m = old.merge(&new, &H);
        assert_eq!(m.weeks.hard, 0);
        assert_eq!(m.weeks.service, 1);
        assert_eq!(m.last_disconnect_ms, Some(0), "the exact time stays");
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
            events in prop::collection::vec((0i64..(1200 * DAY), class_strategy(), 0.1f64..5.0), 1..40),
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

        /// Any profile reads back exactly from its stored form, which is never the legacy
        /// length and far shorter than it for small profiles.
        #[test]
        fn stored_profiles_read_back_exactly(
            events in prop::collection::vec((-(400 * DAY)..(1200 * DAY), class_strategy(), 0.1f64..5.0), 0..30),
        ) {
            let p = events.iter().fold(Profile::default(), |acc, (t, c, w)| acc.merge(&Profile::of(&obs(*t, *c, *w)), &H));
            let bytes = p.to_bytes();
            prop_assert_ne!(bytes.len(), LEGACY_BYTES);
            prop_assert_eq!(Profile::from_bytes(&bytes), Some(p));
            if events.len() <= 1 {
                prop_assert!(bytes.len() <= 40, "{} bytes", bytes.len());
            }
            // Every shorter prefix is refused, not misread.
            for cut in 0..bytes.len() {
                if cut != LEGACY_BYTES {
                    prop_assert_eq!(Profile::from_bytes(&bytes[..cut]), None);
                }
            }
        }

        /// Arbitrary bytes never panic the reader.
        #[test]
        fn any_bytes_read_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Profile::from_bytes(&bytes);
        }
    }

    #[test]
    fn the_fixed_form_of_earlier_releases_still_reads() {
        let p = Profile::of(&obs(3 * DAY, EvidenceClass::StrongActive, 1.0)).merge(
            &Profile::of(&obs(9 * DAY, EvidenceClass::StrongInactive, 1.0)),
            &H,
        );
        let legacy = p.legacy_bytes();
        assert_eq!(legacy.len(), LEGACY_BYTES);
        let read = Profile::from_bytes(&legacy).unwrap();
        // Everything the fixed form held; no timeline or week marks.
        assert_eq!(
            (read.ref_ms, read.classes, read.last_disconnect_ms),
            (p.ref_ms, p.classes, p.last_disconnect_ms)
        );
        assert_eq!(
            (read.timeline().count(), read.weeks),
            (0, WeekMarks::default())
        );
        assert!(p.to_bytes().len() < 60, "{}", p.to_bytes().len());
    }
}
