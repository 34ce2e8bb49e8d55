//! A synthetic evidence data set for `numcheck demo`: subscribers across many countries, a
//! year of observations about them, and a numbers file to check, so that a new user's first
//! check shows every verdict (`active`, `inactive`, `unknown`) with every reason.
//!
//! Everything here is pure and deterministic: [`DemoData::generate`] draws the subscribers from
//! a seed, each subscriber's history is drawn from its own number and [`Scenario`] (so a
//! subset of [`DemoData::numbers`] keeps its histories), and [`DemoData::numbers_file`] is
//! shuffled from the numbers themselves. Nothing is dialled, messaged or looked up.
//!
//! # Scenarios
//!
//! Each number has a [`Scenario`] whose histories are built so that the *default*
//! [`Policy`](numcheck_core::Policy) decides [`Scenario::expected`] at the `now_ms` given to
//! [`DemoData::observations`], whatever the draw (the bounds are worked out next to each
//! story below, and the unit tests check them):
//!
//! | scenario | story | status | reason | reassigned |
//! |---|---|---|---|---|
//! | `fresh_deliveries` | SMS delivered all year, the last ones within two weeks | active | recent_activity | no |
//! | `regular_caller` | calls answered all year, the last ones within three weeks | active | recent_activity | no |
//! | `app_user` | app logins and core-network attaches, the last within a week | active | recent_activity | no |
//! | `reassigned_after_deactivation` | deactivated 4–10 months ago, a new subscriber active since | active | recent_activity | yes |
//! | `unknown_subscriber_after_delivery` | delivered for months, then unknown subscriber / number changed | inactive | disconnected | no |
//! | `carrier_deactivated` | went quiet, then the carrier's deactivation list named it | inactive | disconnected | no |
//! | `disconnected_long_ago` | deactivated most of a year ago, nothing since | unknown | disconnected_long_ago | no |
//! | `repeated_failures_spread` | only expiries and absent-subscriber answers for weeks | unknown | low_confidence | no |
//! | `invalid_number` | a number its numbering plan does not allow | inactive | invalid_number | no |
//! | `absent_only` | a burst of absent-subscriber answers within a week, nothing else | unknown | temporary_failures | no |
//! | `stale_activity` | one delivery nearly a year ago, since then nothing that counts | unknown | insufficient_evidence | no |
//! | `mixed` | one delivery last month, several expiries since | unknown | inconclusive | no |
//! | `no_evidence` | never seen | unknown | no_evidence | no |
//!
//! # Observations
//!
//! Kinds, sources and raw codes are realistic and every raw code is one the generic code table
//! ([`CodeTable::generic`]) maps to the intended class; `class` is set from that table:
//!
//! - `sms_dlr` from regional SMSCs (`smsc-eu-1`, `smsc-us-1`, `smsc-apac-1`, …): SMPP `stat`
//!   values (`DELIVRD`, `EXPIRED`, `UNDELIV`, `REJECTD`, …), each with a unique message id.
//! - `call` from SIP border controllers (`sbc-fra`, `sbc-nyc`, …: SIP final responses), an
//!   Asterisk PBX (`pbx-asterisk-1`: `DIALSTATUS`) and a FreeSWITCH core (`fs-core-1`: Q.850
//!   cause names), each with a unique call id.
//! - `hlr` from two HLR lookup providers (`hlr-provider`, `hlr-provider-2`), `deactivation`
//!   from `carrier-deactivations`, `reassigned` from `reassigned-db`, `app_event` from `app`,
//!   `core_network` from `core-hss`.
//!
//! All observations fall within the year before `now_ms`; every weight is 1.0. With the
//! default scenario mix a number has about [`OBSERVATIONS_PER_NUMBER`] observations on average
//! (about a million for 50,000 subscribers); [`DemoData::observations`] produces them lazily,
//! one subscriber at a time.
//!
//! # Numbers
//!
//! Where a regulator reserves numbers for fiction *and* libphonenumber (the metadata numcheck
//! checks against) accepts them as valid, the demo uses those:
//!
//! - US and Canada: `NXX 555-0100`–`555-0199` in 310 US and 53 Canadian area codes (NANPA
//!   reserves 555-0100 through 555-0199 for fictional use in every area code).
//! - United Kingdom: Ofcom's drama numbers `0113/0114/0116/0117/0118/0121/0131/0141/0151/0161
//!   496 0xxx`, `0191 498 0xxx`, `020 7946 0xxx`, `028 9649 6xxx`, `029 2018 0xxx`
//!   (Nottingham's `0115 496 0xxx` is left out: libphonenumber calls it invalid).
//! - Australia: ACMA's fictitious numbers: landlines `(02|03|07|08) 5550 xxxx` and `… 7010
//!   xxxx`, and the 30 listed mobiles `0491 57x xxx` (ACMA lists single numbers, not the whole
//!   block).
//! - France: ARCEP's numbers for works of fiction `01 99 00`, `02 61 91`, `03 53 01`,
//!   `04 65 71`, `05 36 49 xx xx` (plan national de numérotation, §2.5.12).
//! - Sweden: PTS's fictional mobiles `070-174 06 05`–`070-174 06 99`.
//!
//! The `invalid_number` scenario uses fictional ranges that libphonenumber rejects: Ofcom's
//! drama mobiles `07700 900xxx` and no-area `01632 960xxx`, and ARCEP's fictional mobiles
//! `06 39 98 xx xx`.
//!
//! Germany (`+49 151/176` and `160/170` mobiles, `+49 30` Berlin), Japan (`+81 90`), Brazil
//! (`+55 11 9xxxx-xxxx`), India (`+91 98`), South Africa (`+27 82`), Spain (`+34 6`), Italy
//! (`+39 3xx`), Poland (`+48 50/51/53/57/60/66`) and New Zealand (`+64 21`) have no fiction
//! range known to us: their numbers are drawn at random from ordinary ranges and **may belong
//! to real subscribers**. The demo data must never be fed to live lookups or outbound
//! messaging ([`DemoNumber::is_fictional`] tells them apart). With the default weights about
//! 63% of the numbers come from fictional ranges. Every generated number is checked against
//! the numbering plan when it is drawn.

use std::collections::HashSet;

use EvidenceClass::{
    Neutral as N, StrongActive as SA, StrongInactive as SI, WeakActive as WA, WeakInactive as WI,
};
use EvidenceKind::{AppEvent, Call, CoreNetwork, Deactivation, Hlr, Reassigned, SmsDlr};
use numcheck_core::{
    ActiveStatus, CodeTable, E164, EvidenceClass, EvidenceKind, NumberingPlan, Observation, Reason,
};

const DAY_MS: i64 = 86_400_000;
/// The oldest observation, in days before `now_ms`.
const HORIZON_DAYS: f64 = 365.0;

/// The average number of observations per subscriber with the default scenario mix
/// (approximate: the measured average is within 15% of it).
pub const OBSERVATIONS_PER_NUMBER: usize = 20;

/// One synthetic subscriber and what the policy should conclude about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoNumber {
    pub number: E164,
    pub scenario: Scenario,
}

impl DemoNumber {
    /// Whether the number comes from a range its regulator reserves for fiction (see the
    /// module documentation); the others may belong to real subscribers.
    pub fn is_fictional(&self) -> bool {
        range_of(self.number).is_some_and(|(r, _)| r.fictional())
    }
}

/// The story behind a demo number; [`Scenario::expected`] gives the
/// `(ActiveStatus, Reason, possibly_reassigned)` the default policy must decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// SMS delivered all year round, the newest within two weeks.
    FreshDeliveries,
    /// Calls answered (and sometimes busy or unanswered) all year, the newest within three weeks.
    RegularCaller,
    /// App logins and core-network attaches, the newest within a week.
    AppUser,
    /// Delivered for months, then an HLR "unknown subscriber", a SIP 404/410, a Q.850
    /// "unallocated / number changed" or the core's "no such subscriber"; failures since.
    UnknownSubscriberAfterDelivery,
    /// In use until a few days before one call answered "unallocated number", nothing since.
    SingleUnknownAfterDelivery,
    /// Activity fading out, then the carrier's deactivation list.
    CarrierDeactivated,
    /// Deactivated most of a year ago, nothing since: someone else may have it by now.
    DisconnectedLongAgo,
    /// Deactivated (sometimes confirmed by the reassigned-number database) months ago, and a
    /// new subscriber active since: active, flagged `possibly_reassigned`.
    ReassignedAfterDeactivation,
    /// A burst of absent-subscriber answers and expiries within one week, nothing else.
    AbsentOnly,
    /// Expiries and absent-subscriber answers for weeks, nothing that counts for a year.
    RepeatedFailuresSpread,
    /// One delivery nearly a year ago; since then only answers that say nothing.
    StaleActivity,
    /// One delivery last month, several expiries since.
    Mixed,
    /// Never seen by any source.
    NoEvidence,
    /// Not a valid number of its numbering plan.
    InvalidNumber,
}

impl Scenario {
    pub const ALL: &'static [Scenario] = &[
        Scenario::FreshDeliveries,
        Scenario::RegularCaller,
        Scenario::AppUser,
        Scenario::UnknownSubscriberAfterDelivery,
        Scenario::SingleUnknownAfterDelivery,
        Scenario::CarrierDeactivated,
        Scenario::DisconnectedLongAgo,
        Scenario::ReassignedAfterDeactivation,
        Scenario::AbsentOnly,
        Scenario::RepeatedFailuresSpread,
        Scenario::StaleActivity,
        Scenario::Mixed,
        Scenario::NoEvidence,
        Scenario::InvalidNumber,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::FreshDeliveries => "fresh_deliveries",
            Scenario::RegularCaller => "regular_caller",
            Scenario::AppUser => "app_user",
            Scenario::UnknownSubscriberAfterDelivery => "unknown_subscriber_after_delivery",
            Scenario::SingleUnknownAfterDelivery => "single_unknown_after_delivery",
            Scenario::CarrierDeactivated => "carrier_deactivated",
            Scenario::DisconnectedLongAgo => "disconnected_long_ago",
            Scenario::ReassignedAfterDeactivation => "reassigned_after_deactivation",
            Scenario::AbsentOnly => "absent_only",
            Scenario::RepeatedFailuresSpread => "repeated_failures_spread",
            Scenario::StaleActivity => "stale_activity",
            Scenario::Mixed => "mixed",
            Scenario::NoEvidence => "no_evidence",
            Scenario::InvalidNumber => "invalid_number",
        }
    }

    /// One line for people: what happened to the number.
    pub fn story(self) -> &'static str {
        match self {
            Scenario::FreshDeliveries => "SMS delivered all year, the last ones this fortnight",
            Scenario::RegularCaller => "calls answered all year, the last ones within three weeks",
            Scenario::AppUser => "app logins and network attaches, the last this week",
            Scenario::UnknownSubscriberAfterDelivery => {
                "delivered for months, then 'unknown subscriber' or 'number changed'"
            }
            Scenario::SingleUnknownAfterDelivery => {
                "in use until days before one call answered 'unallocated number', nothing since"
            }
            Scenario::CarrierDeactivated => "went quiet, then the carrier listed it as deactivated",
            Scenario::DisconnectedLongAgo => "deactivated most of a year ago, nothing since",
            Scenario::ReassignedAfterDeactivation => {
                "deactivated months ago, a new subscriber active since"
            }
            Scenario::AbsentOnly => "a few absent-subscriber answers within one week, nothing else",
            Scenario::RepeatedFailuresSpread => "expiries and absent answers for weeks on end",
            Scenario::StaleActivity => "one delivery nearly a year ago, nothing that counts since",
            Scenario::Mixed => "one delivery last month, several expiries since",
            Scenario::NoEvidence => "never seen by any source",
            Scenario::InvalidNumber => "not a valid number of its numbering plan",
        }
    }

    /// What the default policy decides for this story: `(status, reason, possibly_reassigned)`.
    pub fn expected(self) -> (ActiveStatus, Reason, bool) {
        use ActiveStatus::{Active, Inactive, Unknown};
        match self {
            Scenario::FreshDeliveries | Scenario::RegularCaller | Scenario::AppUser => {
                (Active, Reason::RecentActivity, false)
            }
            Scenario::ReassignedAfterDeactivation => (Active, Reason::RecentActivity, true),
            Scenario::UnknownSubscriberAfterDelivery | Scenario::CarrierDeactivated => {
                (Inactive, Reason::Disconnected, false)
            }
            Scenario::DisconnectedLongAgo => (Unknown, Reason::DisconnectedLongAgo, false),
            // One hard failure days after deliveries is a churn in those days or a misleading
            // code on a live number: the rules lean inactive, under the confidence floor.
            Scenario::SingleUnknownAfterDelivery => (Unknown, Reason::LowConfidence, false),
            Scenario::RepeatedFailuresSpread => (Inactive, Reason::RepeatedFailures, false),
            Scenario::InvalidNumber => (Inactive, Reason::InvalidNumber, false),
            Scenario::AbsentOnly => (Unknown, Reason::TemporaryFailures, false),
            Scenario::StaleActivity => (Unknown, Reason::InsufficientEvidence, false),
            Scenario::Mixed => (Unknown, Reason::Inconclusive, false),
            Scenario::NoEvidence => (Unknown, Reason::NoEvidence, false),
        }
    }

    /// Share of the data set, per mille.
    fn share(self) -> u64 {
        match self {
            Scenario::FreshDeliveries => 170,
            Scenario::RegularCaller => 110,
            Scenario::AppUser => 90,
            Scenario::UnknownSubscriberAfterDelivery => 80,
            Scenario::SingleUnknownAfterDelivery => 20,
            Scenario::CarrierDeactivated => 40,
            Scenario::DisconnectedLongAgo => 30,
            Scenario::ReassignedAfterDeactivation => 40,
            Scenario::AbsentOnly => 80,
            Scenario::RepeatedFailuresSpread => 70,
            Scenario::StaleActivity => 80,
            Scenario::Mixed => 80,
            Scenario::NoEvidence => 80,
            Scenario::InvalidNumber => 30,
        }
    }
}

/// A synthetic data set: subscribers with their stories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoData {
    pub numbers: Vec<DemoNumber>,
}

impl DemoData {
    /// `subscribers` distinct numbers, deterministic for `seed`. The first numbers cover every
    /// scenario and every country (15 of them), so any data set of 16 or more numbers shows
    /// all verdicts and at least 10 countries. `now_ms` does not change the draw: histories
    /// are relative to the `now_ms` given to [`DemoData::observations`].
    ///
    /// When the fictional ranges for `invalid_number` run out (over about 12,000 such numbers)
    /// the remaining ones become `no_evidence`; fictional ranges for valid numbers that fill up
    /// give way to the other ranges.
    pub fn generate(seed: u64, subscribers: usize, now_ms: i64) -> DemoData {
        let _ = now_ms;
        let mut rng = Rng::new(seed ^ 0x6465_6d6f_6461_7461);
        let plan = NumberingPlan;
        let mut used: HashSet<u64> = HashSet::with_capacity(subscribers);
        let mut state: Vec<RangeState> = RANGES.iter().map(|_| RangeState::default()).collect();
        let countries = valid_countries();
        let mut numbers = Vec::with_capacity(subscribers);
        let mut valid_drawn = 0usize;
        for i in 0..subscribers {
            let mut scenario = match Scenario::ALL.get(i) {
                Some(s) => *s,
                None => pick_scenario(&mut rng),
            };
            let mut number = None;
            if scenario == Scenario::InvalidNumber {
                number = draw_number(&mut rng, &plan, &mut used, &mut state, false, None);
                if number.is_none() {
                    scenario = Scenario::NoEvidence;
                }
            }
            if number.is_none() {
                let country = countries.get(valid_drawn).copied();
                valid_drawn += 1;
                number = draw_number(&mut rng, &plan, &mut used, &mut state, true, country)
                    .or_else(|| draw_number(&mut rng, &plan, &mut used, &mut state, true, None));
            }
            match number {
                Some(number) => numbers.push(DemoNumber { number, scenario }),
                // Every range is full: cannot happen below billions of numbers.
                None => break,
            }
        }
        DemoData { numbers }
    }

    /// All observations for the data set, one subscriber after another (each subscriber's in
    /// time order), produced lazily. About [`OBSERVATIONS_PER_NUMBER`] per number on average,
    /// all within the year before `now_ms`.
    pub fn observations(&self, now_ms: i64) -> impl Iterator<Item = Observation> + '_ {
        let table = CodeTable::generic();
        self.numbers
            .iter()
            .flat_map(move |n| observations_of(n, now_ms, &table))
    }

    /// The numbers file to check: every number once in one of the ways people write numbers
    /// (E.164, spaced, `00` prefixes, dashes, brackets, a lost `+`, spreadsheet floats, quotes),
    /// plus a few duplicate lines and a few lines that are not numbers at all, shuffled. Every
    /// number line parses without a `default_region`.
    pub fn numbers_file(&self) -> String {
        if self.numbers.is_empty() {
            return String::new();
        }
        let seed = self
            .numbers
            .iter()
            .fold(0x6e75_6d62_6572_7321u64, |h, n| mix(h ^ n.number.as_u64()));
        let mut rng = Rng::new(seed);
        let mut lines: Vec<String> = self
            .numbers
            .iter()
            .map(|n| number_line(n, &mut rng))
            .collect();
        let len = self.numbers.len();
        for _ in 0..(2 + len / 500) {
            let n = &self.numbers[rng.below(len as u64) as usize];
            lines.push(number_line(n, &mut rng));
        }
        for _ in 0..(3 + len / 5000) {
            lines.push(GARBAGE_LINES[rng.below(GARBAGE_LINES.len() as u64) as usize].to_owned());
        }
        for i in (1..lines.len()).rev() {
            lines.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }
}

/// Lines of the numbers file that are not phone numbers (each is refused by the line parser).
const GARBAGE_LINES: &[&str] = &[
    "n/a",
    "unknown",
    "call back later",
    "#VALUE!",
    "tel: pending",
    "--",
    "+999 555 0100",
    "+49 1",
    "555-0100",
];

// ---------------------------------------------------------------------------------------------
// Deterministic randomness.

/// The splitmix64 finaliser: a bijection on `u64`, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponential with the given mean (0 for a mean of 0).
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn pick_scenario(rng: &mut Rng) -> Scenario {
    let total: u64 = Scenario::ALL.iter().map(|s| s.share()).sum();
    let mut x = rng.below(total);
    for s in Scenario::ALL {
        if x < s.share() {
            return *s;
        }
        x -= s.share();
    }
    Scenario::NoEvidence
}

// ---------------------------------------------------------------------------------------------
// Number ranges.

/// A block of numbers: `cc` + one of `prefixes` + `infix` + a number in `lo..=hi` written
/// with `width` digits.
#[derive(Debug, Clone, Copy)]
struct Range {
    region: &'static str,
    cc: &'static str,
    /// Written with a national trunk `0` that international forms may show as `(0)`.
    trunk_zero: bool,
    prefixes: &'static [&'static str],
    infix: &'static str,
    lo: u64,
    hi: u64,
    width: usize,
    /// How the national significant number is grouped when written with spaces.
    groups: &'static [usize],
    /// Relative share among the ranges of the same validity.
    weight: u64,
    reserve: Reserve,
}

/// Whether a range is reserved for fiction, and whether libphonenumber accepts its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reserve {
    /// Reserved for fiction by the regulator, valid for libphonenumber.
    Fiction,
    /// Reserved for fiction, invalid for libphonenumber: only for `invalid_number`.
    FictionInvalid,
    /// An ordinary range: numbers may belong to real subscribers.
    Ordinary,
}

use Reserve::{Fiction, FictionInvalid, Ordinary};

impl Range {
    const fn new(
        (region, cc, trunk_zero): (&'static str, &'static str, bool),
        prefixes: &'static [&'static str],
        infix: &'static str,
        (lo, hi, width): (u64, u64, usize),
        groups: &'static [usize],
        weight: u64,
        reserve: Reserve,
    ) -> Range {
        Range {
            region,
            cc,
            trunk_zero,
            prefixes,
            infix,
            lo,
            hi,
            width,
            groups,
            weight,
            reserve,
        }
    }

    fn valid(&self) -> bool {
        self.reserve != FictionInvalid
    }

    fn fictional(&self) -> bool {
        self.reserve != Ordinary
    }
}

/// US area codes in service (all accept `555-01xx` as valid numbers of region US).
const US_AREA_CODES: &[&str] = &[
    "201", "202", "203", "205", "206", "207", "208", "209", "210", "212", "213", "214", "215",
    "216", "217", "218", "219", "220", "223", "224", "225", "228", "229", "231", "234", "239",
    "240", "248", "251", "252", "253", "254", "256", "260", "262", "267", "269", "270", "272",
    "276", "281", "301", "302", "303", "304", "305", "307", "308", "309", "310", "312", "313",
    "314", "315", "316", "317", "318", "319", "320", "321", "323", "325", "330", "331", "334",
    "336", "337", "339", "346", "347", "351", "352", "360", "361", "364", "380", "385", "386",
    "401", "402", "404", "405", "406", "407", "408", "409", "410", "412", "413", "414", "415",
    "417", "419", "423", "424", "425", "430", "432", "434", "435", "440", "442", "443", "458",
    "463", "469", "470", "475", "478", "479", "480", "484", "501", "502", "503", "504", "505",
    "507", "508", "509", "510", "512", "513", "515", "516", "517", "518", "520", "530", "531",
    "534", "539", "540", "541", "551", "559", "561", "562", "563", "564", "567", "570", "571",
    "573", "574", "575", "580", "585", "586", "601", "602", "603", "605", "606", "607", "608",
    "609", "610", "612", "614", "615", "616", "617", "618", "619", "620", "623", "626", "628",
    "629", "630", "631", "636", "641", "646", "650", "651", "657", "660", "661", "662", "667",
    "669", "678", "681", "682", "701", "702", "703", "704", "706", "707", "708", "712", "713",
    "714", "715", "716", "717", "718", "719", "720", "724", "725", "727", "731", "732", "734",
    "737", "740", "743", "747", "754", "757", "760", "762", "763", "765", "769", "770", "772",
    "773", "774", "775", "779", "781", "785", "786", "801", "802", "803", "804", "805", "806",
    "808", "810", "812", "813", "814", "815", "816", "817", "818", "828", "830", "831", "832",
    "843", "845", "847", "848", "850", "854", "856", "857", "858", "859", "860", "862", "863",
    "864", "865", "870", "872", "878", "901", "903", "904", "906", "907", "908", "909", "910",
    "912", "913", "914", "915", "916", "917", "918", "919", "920", "925", "928", "929", "930",
    "931", "934", "936", "937", "938", "940", "941", "947", "949", "951", "952", "954", "956",
    "959", "970", "971", "972", "973", "978", "979", "980", "984", "985", "989",
];

/// Canadian area codes in service (all accept `555-01xx` as valid numbers of region CA).
const CA_AREA_CODES: &[&str] = &[
    "204", "226", "236", "249", "250", "263", "289", "306", "343", "354", "365", "367", "368",
    "382", "403", "416", "418", "428", "431", "437", "438", "450", "468", "474", "506", "514",
    "519", "548", "579", "581", "584", "587", "604", "613", "639", "647", "672", "683", "705",
    "709", "742", "753", "778", "780", "782", "807", "819", "825", "867", "873", "879", "902",
    "905",
];

/// ACMA's 30 fictitious mobile numbers (national significant numbers).
#[rustfmt::skip]
const AU_FICTIONAL_MOBILES: &[&str] = &[
    "491570006", "491570156", "491570157", "491570158", "491570159", "491570110",
    "491570313", "491570737", "491571266", "491571491", "491571804", "491572549",
    "491572665", "491572983", "491573770", "491573087", "491574118", "491574632",
    "491575254", "491575789", "491576398", "491576801", "491577426", "491577644",
    "491578957", "491578148", "491578888", "491579212", "491579760", "491579455",
];

/// Ofcom's drama blocks with three-digit area codes (national significant number prefixes).
#[rustfmt::skip]
const GB_DRAMA_3: &[&str] = &[
    "1134960", "1144960", "1164960", "1174960", "1184960", "1214960",
    "1314960", "1414960", "1514960", "1614960", "1914980",
];

#[rustfmt::skip]
const IT_MOBILE: &[&str] = &[
    "320", "324", "327", "328", "329", "330", "333", "334", "335", "338", "339", "340",
    "342", "345", "346", "347", "348", "349", "366", "388", "389", "391", "392", "393",
];

/// The ranges numbers are drawn from (see the module documentation for their sources).
#[rustfmt::skip]
const RANGES: &[Range] = &[
    //         (region, cc, trunk 0)   prefixes                                 infix    (lo, hi, width)                groups            weight  reserve
    Range::new(("US", "1", false),   US_AREA_CODES,                            "55501", (0, 99, 2),                     &[3, 3, 4],       3000,   Fiction),
    Range::new(("CA", "1", false),   CA_AREA_CODES,                            "55501", (0, 99, 2),                     &[3, 3, 4],        500,   Fiction),
    Range::new(("GB", "44", true),   GB_DRAMA_3,                               "",      (0, 999, 3),                    &[3, 3, 4],        800,   Fiction),
    Range::new(("GB", "44", true),   &["2079460", "2896496", "2920180"],       "",      (0, 999, 3),                    &[2, 4, 4],        400,   Fiction),
    Range::new(("AU", "61", true),   &["25550", "27010", "35550", "37010",
                                       "75550", "77010", "85550", "87010"],    "",      (0, 9999, 4),                   &[1, 4, 4],       1000,   Fiction),
    Range::new(("AU", "61", true),   AU_FICTIONAL_MOBILES,                     "",      (0, 0, 0),                      &[3, 3, 3],        100,   Fiction),
    Range::new(("FR", "33", true),   &["19900", "26191", "35301", "46571",
                                       "53649"],                               "",      (0, 9999, 4),                   &[1, 2, 2, 2, 2], 1200,   Fiction),
    Range::new(("SE", "46", true),   &["7017406"],                             "",      (5, 99, 2),                     &[2, 3, 2, 2],      30,   Fiction),
    Range::new(("DE", "49", true),   &["151", "176"],                          "",      (10_000_000, 99_999_999, 8),    &[3, 8],           250,   Ordinary),
    Range::new(("DE", "49", true),   &["160", "170"],                          "",      (1_000_000, 9_999_999, 7),      &[3, 7],           150,   Ordinary),
    Range::new(("DE", "49", true),   &["30"],                                  "",      (20_000_000, 99_999_999, 8),    &[2, 8],           200,   Ordinary),
    Range::new(("JP", "81", false),  &["90"],                                  "",      (10_000_000, 99_999_999, 8),    &[2, 4, 4],        400,   Ordinary),
    Range::new(("BR", "55", false),  &["119"],                                 "",      (50_000_000, 99_999_999, 8),    &[2, 5, 4],        500,   Ordinary),
    Range::new(("IN", "91", false),  &["98"],                                  "",      (10_000_000, 99_999_999, 8),    &[5, 5],           500,   Ordinary),
    Range::new(("ZA", "27", true),   &["82"],                                  "",      (1_000_000, 9_999_999, 7),      &[2, 3, 4],        300,   Ordinary),
    Range::new(("ES", "34", false),  &["6"],                                   "",      (10_000_000, 99_999_999, 8),    &[3, 2, 2, 2],     400,   Ordinary),
    Range::new(("IT", "39", false),  IT_MOBILE,                                "",      (1_000_000, 9_999_999, 7),      &[3, 3, 4],        400,   Ordinary),
    Range::new(("PL", "48", false),  &["50", "51", "53", "57", "60", "66"],    "",      (1_000_000, 9_999_999, 7),      &[3, 3, 3],        300,   Ordinary),
    Range::new(("NZ", "64", true),   &["21"],                                  "",      (1_000_000, 9_999_999, 7),      &[2, 3, 4],        200,   Ordinary),
    // For `invalid_number`.
    Range::new(("GB", "44", true),   &["7700900"],                             "",      (0, 999, 3),                    &[4, 6],           400,   FictionInvalid),
    Range::new(("GB", "44", true),   &["1632960"],                             "",      (0, 999, 3),                    &[4, 6],           200,   FictionInvalid),
    Range::new(("FR", "33", true),   &["63998"],                               "",      (0, 9999, 4),                   &[1, 2, 2, 2, 2],  400,   FictionInvalid),
];

impl Range {
    fn capacity(&self) -> u64 {
        self.prefixes.len() as u64 * (self.hi - self.lo + 1)
    }

    fn nsn_len(&self, prefix: &str) -> usize {
        prefix.len() + self.infix.len() + self.width
    }

    fn draw_nsn(&self, rng: &mut Rng) -> String {
        let prefix = rng.pick(self.prefixes);
        let value = self.lo + rng.below(self.hi - self.lo + 1);
        let mut nsn = String::with_capacity(self.nsn_len(prefix));
        nsn.push_str(prefix);
        nsn.push_str(self.infix);
        if self.width > 0 {
            nsn.push_str(&format!("{value:0width$}", width = self.width));
        }
        nsn
    }

    /// Whether `digits` (E.164 without `+`) is one of this range's numbers; its national
    /// significant number when it is.
    fn nsn_of<'d>(&self, digits: &'d str) -> Option<&'d str> {
        let nsn = digits.strip_prefix(self.cc)?;
        self.prefixes
            .iter()
            .any(|p| {
                nsn.len() == self.nsn_len(p)
                    && nsn.starts_with(p)
                    && nsn[p.len()..].starts_with(self.infix)
            })
            .then_some(nsn)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RangeState {
    used: u64,
    /// Draws in a row that gave nothing new.
    misses: u32,
    full: bool,
}

/// The countries of the valid ranges, each once, in table order.
fn valid_countries() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RANGES.iter().filter(|r| r.valid()) {
        if !out.contains(&r.region) {
            out.push(r.region);
        }
    }
    out
}

fn range_of(number: E164) -> Option<(&'static Range, String)> {
    let digits = number.as_u64().to_string();
    RANGES.iter().find_map(|r| {
        let nsn = r.nsn_of(&digits)?.to_owned();
        Some((r, nsn))
    })
}

/// Whether the demo has valid number ranges in `region`.
pub(crate) fn can_draw(region: &str) -> bool {
    RANGES.iter().any(|r| r.valid() && r.region == region)
}

/// Draws `count` distinct numbers: `invalid` of them not valid for their plan, the rest valid,
/// spread over the regions by weight. Each with its region and whether it is valid.
pub(crate) fn draw_population(
    rng: &mut Rng,
    count: usize,
    invalid: usize,
    regions: &[(&str, f64)],
) -> Vec<(E164, &'static str, bool)> {
    let plan = NumberingPlan;
    let mut used = HashSet::with_capacity(count);
    let mut state: Vec<RangeState> = RANGES.iter().map(|_| RangeState::default()).collect();
    let total: f64 = regions.iter().map(|r| r.1).sum();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let valid = i >= invalid;
        let mut x = rng.unit() * total;
        let region = regions
            .iter()
            .find(|r| {
                x -= r.1;
                x < 0.0
            })
            .or(regions.last())
            .map(|r| r.0);
        let drawn = if valid {
            draw_number(rng, &plan, &mut used, &mut state, true, region)
        } else {
            draw_number(rng, &plan, &mut used, &mut state, false, None)
        };
        if let Some(number) = drawn
            && let Some((range, _)) = range_of(number)
        {
            out.push((number, range.region, valid));
        }
    }
    out
}

/// Draws a new number of the wanted validity (from `country`'s ranges when given), checked
/// against the numbering plan. `None` when every eligible range is full.
fn draw_number(
    rng: &mut Rng,
    plan: &NumberingPlan,
    used: &mut HashSet<u64>,
    state: &mut [RangeState],
    valid: bool,
    country: Option<&str>,
) -> Option<E164> {
    loop {
        let eligible: Vec<usize> = (0..RANGES.len())
            .filter(|&i| {
                let r = &RANGES[i];
                r.valid() == valid && !state[i].full && country.is_none_or(|c| r.region == c)
            })
            .collect();
        let total: u64 = eligible.iter().map(|&i| RANGES[i].weight).sum();
        if total == 0 {
            return None;
        }
        let mut x = rng.below(total);
        let mut chosen = eligible[0];
        for &i in &eligible {
            if x < RANGES[i].weight {
                chosen = i;
                break;
            }
            x -= RANGES[i].weight;
        }
        let r = &RANGES[chosen];
        let nsn = r.draw_nsn(rng);
        let text = format!("+{}{}", r.cc, nsn);
        let fresh = match text[1..].parse::<u64>().ok().and_then(E164::from_u64) {
            Some(e164) if !used.contains(&e164.as_u64()) => {
                let fits = match plan.check_line(text.as_bytes(), None) {
                    Ok(c) => {
                        c.e164 == e164
                            && c.valid == valid
                            && (!valid || c.region.is_some_and(|g| g.as_str() == r.region))
                    }
                    Err(_) => false,
                };
                fits.then_some(e164)
            }
            _ => None,
        };
        let s = &mut state[chosen];
        match fresh {
            Some(e164) => {
                used.insert(e164.as_u64());
                s.used += 1;
                s.misses = 0;
                // Keep fictional blocks from filling up completely: stop at 90%.
                if s.used * 10 >= r.capacity() * 9 {
                    s.full = true;
                }
                return Some(e164);
            }
            None => {
                s.misses += 1;
                if s.misses >= 64 {
                    s.full = true;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The numbers file.

fn grouped(nsn: &str, groups: &[usize], sep: &str) -> String {
    let mut out = String::with_capacity(nsn.len() + groups.len() * sep.len());
    let mut at = 0;
    for (k, g) in groups.iter().enumerate() {
        let end = (at + g).min(nsn.len());
        if k > 0 {
            out.push_str(sep);
        }
        out.push_str(&nsn[at..end]);
        at = end;
    }
    if at < nsn.len() {
        out.push_str(&nsn[at..]);
    }
    out
}

/// `12125550100` → `1.21255501E10`, as a spreadsheet shows a number it took for a float.
fn spreadsheet_float(digits: &str) -> String {
    let (first, rest) = digits.split_at(1);
    let rest = rest.trim_end_matches('0');
    let exponent = digits.len() - 1;
    if rest.is_empty() {
        format!("{first}E{exponent}")
    } else {
        format!("{first}.{rest}E{exponent}")
    }
}

fn number_line(n: &DemoNumber, rng: &mut Rng) -> String {
    let Some((r, nsn)) = range_of(n.number) else {
        return n.number.to_string();
    };
    let cc = r.cc;
    let digits = format!("{cc}{nsn}");
    // Forms without `+`/`00` are read as international only when valid: keep them for valid
    // numbers.
    let x = rng.below(100);
    let nanp = cc == "1";
    match x {
        0..40 => format!("+{digits}"),
        40..60 => format!("+{cc} {}", grouped(&nsn, r.groups, " ")),
        60..72 => format!("00{cc} {}", grouped(&nsn, r.groups, " ")),
        72..76 => format!("00{digits}"),
        76..81 if nanp => format!("+1 ({}) {}-{}", &nsn[..3], &nsn[3..6], &nsn[6..]),
        76..81 if r.trunk_zero => format!("+{cc} (0){}", grouped(&nsn, r.groups, " ")),
        76..81 => format!("+{cc}-{}", grouped(&nsn, r.groups, "-")),
        81..86 => format!("+{cc}-{}", grouped(&nsn, r.groups, "-")),
        86..90 if r.valid() && nanp => format!("1-{}", grouped(&nsn, r.groups, "-")),
        86..90 if r.valid() => digits,
        90..93 => format!("'+{digits}"),
        93..96 => format!("\"+{cc} {}\"", grouped(&nsn, r.groups, " ")),
        96..100 if r.valid() => spreadsheet_float(&digits),
        _ => format!("+{cc} {}", grouped(&nsn, r.groups, " ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Histories.

/// One event of a story, before it becomes an [`Observation`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    age_ms: i64,
    kind: EvidenceKind,
    /// The class the story means; the generic code table must agree.
    class: EvidenceClass,
    source: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Europe,
    NorthAmerica,
    AsiaPacific,
    LatinAmerica,
    Africa,
}

fn zone_of(number: E164) -> Zone {
    match range_of(number).map(|(r, _)| r.region) {
        Some("US" | "CA") => Zone::NorthAmerica,
        Some("AU" | "NZ" | "JP" | "IN") => Zone::AsiaPacific,
        Some("BR") => Zone::LatinAmerica,
        Some("ZA") => Zone::Africa,
        _ => Zone::Europe,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallFamily {
    /// SIP final responses from a session border controller.
    Sip,
    /// Asterisk `DIALSTATUS`.
    Asterisk,
    /// FreeSWITCH / Q.850 cause names.
    Q850,
}

/// A call family's codes for a class (empty where it has none); the first is the common one.
fn call_codes(family: CallFamily, class: EvidenceClass) -> &'static [&'static str] {
    use CallFamily::{Asterisk, Q850, Sip};
    match (family, class) {
        (Sip, SA) => &["200"],
        (Sip, WA) => &["486", "603"],
        (Sip, N) => &["484", "503"],
        (Sip, WI) => &["480"],
        (Sip, SI) => &["404", "410"],
        (Asterisk, SA) => &["ANSWER", "ANSWERED"],
        (Asterisk, WA) => &["BUSY", "NOANSWER"],
        (Asterisk, N) => &["CONGESTION", "CANCEL"],
        (Asterisk, WI) => &["CHANUNAVAIL"],
        (Asterisk, SI) => &[],
        (Q850, SA) => &["NORMAL_CLEARING"],
        (Q850, WA) => &["USER_BUSY", "NO_ANSWER", "CALL_REJECTED"],
        (Q850, N) => &[],
        (Q850, WI) => &["NO_USER_RESPONSE", "SUBSCRIBER_ABSENT"],
        (Q850, SI) => &["UNALLOCATED_NUMBER", "NUMBER_CHANGED"],
    }
}

/// The raw codes a kind's source reports for a class (empty where it has none); the first is
/// the common one. `alt` picks the second HLR provider's vocabulary.
fn codes(kind: EvidenceKind, class: EvidenceClass, alt: bool) -> &'static [&'static str] {
    match (kind, class) {
        (SmsDlr, SA) => &["DELIVRD", "DELIVERED"],
        (SmsDlr, WI) => &["EXPIRED", "UNDELIV", "FAILED", "UNDELIVERABLE"],
        (SmsDlr, N) => &["REJECTD", "DELETED", "UNKNOWN", "REJECTED"],
        (Hlr, SA) if alt => &["LIVE"],
        (Hlr, SA) => &["CONNECTED"],
        (Hlr, WI) if alt => &["ABSENT"],
        (Hlr, WI) => &["ABSENT_SUBSCRIBER", "NO_TELESERVICE_PROVISIONED"],
        (Hlr, N) if alt => &["INCONCLUSIVE"],
        (Hlr, N) => &["UNDETERMINED", "NO_COVERAGE"],
        (Hlr, SI) if alt => &["DEAD"],
        (Hlr, SI) => &["INVALID_MSISDN"],
        (Deactivation, SI) => &["DEACTIVATED"],
        (Reassigned, SI) => &["YES"],
        (Reassigned, N) => &["NO", "NO_DATA"],
        (AppEvent, SA) => &[
            "LOGIN",
            "OTP_VERIFIED",
            "SESSION_START",
            "PUSH_OPENED",
            "PAYMENT",
        ],
        (CoreNetwork, SA) => &["LOCATION_UPDATE", "ATTACH"],
        (CoreNetwork, N) => &["DETACH"],
        (CoreNetwork, WI) => &["PURGED"],
        (CoreNetwork, SI) => &["NO_SUCH_SUBSCRIBER", "ACCESS_DISABLED"],
        // Calls have their own families (`call_codes`); no other source reports these.
        _ => &[],
    }
}

/// Builds one number's events.
#[derive(Debug)]
struct Story {
    rng: Rng,
    zone: Zone,
    events: Vec<Event>,
}

impl Story {
    fn count(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.between(lo, hi)
    }

    fn days(&mut self, lo: f64, hi: f64) -> f64 {
        self.rng.uniform(lo, hi)
    }

    /// One event `age_days` before now, with a source and code of `kind` meaning `class`.
    fn add(&mut self, kind: EvidenceKind, class: EvidenceClass, age_days: f64) {
        let (source, codes) = match kind {
            Call => {
                let families: Vec<CallFamily> =
                    [CallFamily::Sip, CallFamily::Asterisk, CallFamily::Q850]
                        .into_iter()
                        .filter(|f| !call_codes(*f, class).is_empty())
                        .collect();
                // Every class has SIP codes, so `families` is never empty.
                let family = families
                    .get(self.rng.below(families.len().max(1) as u64) as usize)
                    .copied()
                    .unwrap_or(CallFamily::Sip);
                let source = match family {
                    CallFamily::Sip => self.rng.pick(sbc_sources(self.zone)),
                    CallFamily::Asterisk => "pbx-asterisk-1",
                    CallFamily::Q850 => "fs-core-1",
                };
                (source, call_codes(family, class))
            }
            SmsDlr => (
                self.rng.pick(smsc_sources(self.zone)),
                codes(kind, class, false),
            ),
            Hlr => {
                let alt = self.rng.chance(0.35);
                let source = if alt {
                    "hlr-provider-2"
                } else {
                    "hlr-provider"
                };
                (source, codes(kind, class, alt))
            }
            AppEvent => ("app", codes(kind, class, false)),
            CoreNetwork => ("core-hss", codes(kind, class, false)),
            Deactivation => ("carrier-deactivations", codes(kind, class, false)),
            Reassigned => ("reassigned-db", codes(kind, class, false)),
        };
        debug_assert!(!codes.is_empty(), "no {kind} code for {class}");
        if codes.is_empty() {
            return;
        }
        // The first code is the common one.
        let code = if self.rng.chance(0.6) {
            codes[0]
        } else {
            self.rng.pick(codes)
        };
        let age_ms = ((age_days * DAY_MS as f64).round() as i64)
            .clamp(60_000, (HORIZON_DAYS * DAY_MS as f64) as i64);
        self.events.push(Event {
            age_ms,
            kind,
            class,
            source,
            code,
        });
    }

    /// Between `count.0` and `count.1` times (drawn first), `act` at an age drawn from
    /// `[ages.0, ages.1)` days ago.
    fn times(
        &mut self,
        (lo, hi): (usize, usize),
        ages: (f64, f64),
        mut act: impl FnMut(&mut Story, f64),
    ) {
        let count = self.count(lo, hi);
        for _ in 0..count {
            let age = self.days(ages.0, ages.1);
            act(self, age);
        }
    }

    /// Between `count.0` and `count.1` events of one kind and class spread over `[lo, hi)`
    /// days ago.
    fn spread(
        &mut self,
        count: (usize, usize),
        kind: EvidenceKind,
        class: EvidenceClass,
        lo: f64,
        hi: f64,
    ) {
        self.times(count, (lo, hi), |s, age| s.add(kind, class, age));
    }

    /// A temporary failure from any source.
    fn failure(&mut self, age_days: f64) {
        let kind = self
            .rng
            .pick(&[SmsDlr, SmsDlr, SmsDlr, Hlr, Call, CoreNetwork]);
        self.add(kind, WI, age_days);
    }

    /// An answer that says nothing either way.
    fn noise(&mut self, age_days: f64) {
        let kind = self
            .rng
            .pick(&[SmsDlr, SmsDlr, Hlr, Call, CoreNetwork, Reassigned]);
        self.add(kind, N, age_days);
    }

    /// A hard disconnect from a network source.
    fn disconnect(&mut self, age_days: f64) {
        let kind = self.rng.pick(&[Hlr, Hlr, Call, Call, CoreNetwork]);
        self.add(kind, SI, age_days);
    }

    /// Strong activity of any kind.
    fn activity(&mut self, age_days: f64) {
        let kind = self
            .rng
            .pick(&[SmsDlr, SmsDlr, SmsDlr, Call, Call, AppEvent, Hlr]);
        self.add(kind, SA, age_days);
    }
}

fn smsc_sources(zone: Zone) -> &'static [&'static str] {
    match zone {
        Zone::Europe => &["smsc-eu-1", "smsc-eu-2"],
        Zone::NorthAmerica => &["smsc-us-1", "smsc-us-2"],
        Zone::AsiaPacific => &["smsc-apac-1"],
        Zone::LatinAmerica => &["smsc-latam-1"],
        Zone::Africa => &["smsc-af-1"],
    }
}

fn sbc_sources(zone: Zone) -> &'static [&'static str] {
    match zone {
        Zone::Europe => &["sbc-fra", "sbc-lon"],
        Zone::NorthAmerica => &["sbc-nyc", "sbc-dal"],
        Zone::AsiaPacific => &["sbc-syd", "sbc-sin"],
        Zone::LatinAmerica => &["sbc-gru"],
        Zone::Africa => &["sbc-jnb"],
    }
}

/// A number's story as events (any order). Drawn from the number and scenario alone.
///
/// The bounds in the comments use the default policy: weights 3 (strong) and 1 (weak), half-
/// lives 180 days (strong activity), 90 (weak activity), 60 (weak failures); a score
/// `s = (P + 1) / (P + N + 2)` is active at ≥ 0.75, i.e. when `P ≥ 3N + 2`, and inactive at
/// ≤ 0.25, i.e. when `N ≥ 3P + 2`.
fn story(n: &DemoNumber) -> Vec<Event> {
    let seed = mix(n.number.as_u64() ^ mix(n.scenario as u64 + 1));
    let mut s = Story {
        rng: Rng::new(seed),
        zone: zone_of(n.number),
        events: Vec::new(),
    };
    match n.scenario {
        Scenario::FreshDeliveries => {
            // P ≥ 3·(3·2^(-14/180) + 10·2^(-365/180)) ≈ 15.9 > 3·2 + 2 ≥ 3N + 2.
            s.spread((3, 6), SmsDlr, SA, 0.02, 14.0);
            s.spread((10, 48), SmsDlr, SA, 14.0, HORIZON_DAYS);
            s.spread((0, 2), SmsDlr, WI, 0.02, HORIZON_DAYS);
            s.spread((0, 4), SmsDlr, N, 0.02, HORIZON_DAYS);
            s.spread((0, 1), Hlr, SA, 0.02, HORIZON_DAYS);
        }
        Scenario::RegularCaller => {
            // P ≥ 3·3·2^(-21/180) ≈ 8.3 > 3·1 + 2 ≥ 3N + 2.
            s.spread((3, 6), Call, SA, 0.02, 21.0);
            s.times((8, 35), (21.0, HORIZON_DAYS), |s, age| {
                let class = s.rng.pick(&[SA, SA, SA, SA, SA, SA, WA, WA, WA, N]);
                s.add(Call, class, age);
            });
            s.spread((0, 1), Call, WI, 0.02, HORIZON_DAYS);
            s.spread((0, 1), Hlr, SA, 0.02, HORIZON_DAYS);
        }
        Scenario::AppUser => {
            // No failures: N = 0, P ≥ 3·2·2^(-7/180) ≈ 5.8 > 2.
            s.spread((2, 5), AppEvent, SA, 0.02, 7.0);
            s.spread((6, 30), AppEvent, SA, 7.0, HORIZON_DAYS);
            s.spread((2, 10), CoreNetwork, SA, 0.02, HORIZON_DAYS);
            s.spread((0, 4), CoreNetwork, N, 0.02, HORIZON_DAYS);
            s.spread((0, 4), SmsDlr, SA, 0.02, HORIZON_DAYS);
        }
        Scenario::UnknownSubscriberAfterDelivery => {
            // Every strong activity is at least a day older than the first disconnect, which is
            // younger than any country's reuse period: nobody else can have the number yet.
            let d = s.days(1.0, 40.0);
            s.times((4, 25), (d + 1.0, HORIZON_DAYS), |s, age| s.activity(age));
            // The subscriber was seen shortly before: the number died in that gap.
            let last_seen = d + s.days(1.0, 20.0);
            s.activity(last_seen);
            s.times((0, 3), (d + 0.5, d + 30.0), |s, age| s.failure(age));
            s.disconnect(d);
            // A dead number keeps answering "unknown subscriber" to whoever tries it.
            let again = s.days(0.02, d - 0.1);
            s.disconnect(again);
            // Afterwards: refusals and repeated disconnects, never a sign of a subscriber (an
            // "absent subscriber" would be one: the network still knows them).
            s.times((0, 4), (0.02, d - 0.1), |s, age| match s.rng.below(2) {
                0 => s.add(SmsDlr, N, age),
                _ => s.disconnect(age),
            });
        }
        Scenario::SingleUnknownAfterDelivery => {
            let d = s.days(3.0, 25.0);
            s.times((6, 20), (d + 1.0, d + 120.0), |s, age| s.activity(age));
            let last_seen = d + s.days(1.0, 4.0);
            s.activity(last_seen);
            s.add(Call, SI, d);
        }
        Scenario::CarrierDeactivated => {
            let d = s.days(3.0, 40.0);
            s.times((3, 20), (d + 20.0, HORIZON_DAYS), |s, age| s.activity(age));
            s.times((1, 4), (d + 0.5, d + 20.0), |s, age| s.failure(age));
            s.add(Deactivation, SI, d);
            s.times((0, 3), (0.02, d - 0.5), |s, age| match s.rng.below(3) {
                0 => s.add(SmsDlr, WI, age),
                1 => s.add(Hlr, SI, age),
                _ => s.add(Reassigned, N, age),
            });
        }
        Scenario::ReassignedAfterDeactivation => {
            // Old subscriber's failures are ≥ 121 days old: N ≤ 3·2^(-121/60) ≈ 0.7; the new
            // subscriber's P ≥ 4·3·2^(-45/180) ≈ 10.1 > 3N + 2 ≈ 4.1. The new subscriber comes
            // at least 60 days after the deactivation, past the reuse period of most countries.
            let d = s.days(120.0, 300.0);
            s.times((3, 15), (d + 30.0, HORIZON_DAYS), |s, age| s.activity(age));
            s.times((1, 3), (d + 1.0, d + 30.0), |s, age| s.add(SmsDlr, WI, age));
            s.add(Deactivation, SI, d);
            if s.rng.chance(0.3) {
                s.add(Reassigned, SI, d - 5.0);
            }
            // The new subscriber, strictly after every disconnect.
            s.times((4, 10), (0.02, 45.0), |s, age| {
                let kind = s.rng.pick(&[SmsDlr, SmsDlr, AppEvent, Call]);
                s.add(kind, SA, age);
            });
            s.times((2, 15), (45.0, d - 60.0), |s, age| {
                let kind = s.rng.pick(&[SmsDlr, SmsDlr, AppEvent, Call]);
                s.add(kind, SA, age);
            });
        }
        Scenario::DisconnectedLongAgo => {
            // Deactivated 250–360 days ago, past every country's reuse period; nothing since.
            let d = s.days(250.0, 360.0);
            s.times((2, 10), (d + 5.0, HORIZON_DAYS), |s, age| s.activity(age));
            s.add(Deactivation, SI, d);
            s.times((0, 3), (d - 30.0, d - 0.5), |s, age| s.disconnect(age));
        }
        Scenario::AbsentOnly => {
            // No activity, failures within 6.5 days of each other: never "spread".
            let w = s.days(0.5, 300.0);
            s.times((1, 6), (w, w + 6.5), |s, age| s.failure(age));
            s.times((2, 12), (0.02, HORIZON_DAYS), |s, age| s.noise(age));
        }
        Scenario::RepeatedFailuresSpread => {
            // 8–14 failures within 30 days, the first ≥ 10 days before the last:
            // N ≥ 8·2^(-30/60) ≈ 5.7 ≥ 3P + 2 with P ≤ 3·2^(-355/180) ≈ 0.76.
            let first = s.days(10.0, 30.0);
            let last = s.days(0.02, 2.0);
            s.failure(first);
            s.failure(last);
            s.times((6, 12), (last, first), |s, age| s.failure(age));
            if s.rng.chance(0.5) {
                let age = s.days(355.0, HORIZON_DAYS);
                s.add(SmsDlr, SA, age);
            }
            s.times((0, 5), (0.02, HORIZON_DAYS), |s, age| s.noise(age));
        }
        Scenario::StaleActivity => {
            // P ≤ 3·2^(-320/180) + 2^(-300/90) ≈ 0.97 < min_mass, N = 0.
            let age = s.days(320.0, HORIZON_DAYS - 1.0);
            s.add(SmsDlr, SA, age);
            if s.rng.chance(0.5) {
                let age = s.days(300.0, HORIZON_DAYS - 1.0);
                s.add(Call, WA, age);
            }
            s.times((2, 8), (0.02, HORIZON_DAYS), |s, age| s.noise(age));
        }
        Scenario::Mixed => {
            // P ∈ [2.57, 4.79], N ∈ [2.12, 5]: s ∈ [0.37, 0.65].
            let age = s.days(20.0, 40.0);
            s.add(SmsDlr, SA, age);
            s.times((3, 5), (0.02, 30.0), |s, age| s.failure(age));
            s.spread((0, 2), Call, WA, 0.02, 60.0);
            s.times((1, 6), (0.02, HORIZON_DAYS), |s, age| s.noise(age));
        }
        Scenario::NoEvidence => {}
        Scenario::InvalidNumber => {
            // SMSCs refuse the destination; a lookup says there is no such subscriber.
            s.spread((0, 3), SmsDlr, N, 0.02, HORIZON_DAYS);
            if s.rng.chance(0.3) {
                let age = s.days(0.02, HORIZON_DAYS);
                s.add(Hlr, SI, age);
            }
        }
    }
    s.events
}

/// Unique across a data set: the number and the event's index go through a bijection.
fn message_id(number: E164, index: usize, kind: EvidenceKind, source: &str) -> String {
    let key = mix((number.as_u64() << 12) | (index as u64 & 0xfff));
    match kind {
        Call => format!("{key:016x}@{source}"),
        _ => format!("{key:016X}"),
    }
}

fn observations_of(n: &DemoNumber, now_ms: i64, table: &CodeTable) -> Vec<Observation> {
    let mut events = story(n);
    // Oldest first; at most 4096 events per number keeps message ids unique.
    events.sort_by_key(|e| std::cmp::Reverse(e.age_ms));
    events.truncate(4096);
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Observation {
            number: n.number,
            observed_at_ms: now_ms - e.age_ms,
            source: e.source.to_owned(),
            kind: e.kind,
            raw_code: e.code.to_owned(),
            class: table.classify(e.kind, e.code).unwrap_or(e.class),
            weight: 1.0,
            message_id: matches!(e.kind, SmsDlr | Call)
                .then(|| message_id(n.number, i, e.kind, e.source)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use numcheck_core::{Policy, Profile};

    use super::*;

    /// 2026-06-01T00:00:00Z.
    const NOW: i64 = 1_780_272_000_000;

    fn small() -> DemoData {
        DemoData::generate(7, 3_000, NOW)
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let a = DemoData::generate(42, 500, NOW);
        let b = DemoData::generate(42, 500, NOW);
        assert_eq!(a, b);
        assert_eq!(a.numbers.len(), 500);
        let oa: Vec<Observation> = a.observations(NOW).collect();
        let ob: Vec<Observation> = b.observations(NOW).collect();
        assert_eq!(oa, ob);
        assert_eq!(a.numbers_file(), b.numbers_file());
        let c = DemoData::generate(43, 500, NOW);
        assert_ne!(a.numbers, c.numbers);
    }

    #[test]
    fn numbers_are_distinct_and_the_first_cover_every_scenario_and_country() {
        let d = small();
        let distinct: HashSet<E164> = d.numbers.iter().map(|n| n.number).collect();
        assert_eq!(distinct.len(), d.numbers.len());
        let tiny = DemoData::generate(1, 16, NOW);
        let scenarios: BTreeSet<Scenario> = tiny.numbers.iter().map(|n| n.scenario).collect();
        assert_eq!(scenarios.len(), Scenario::ALL.len());
        let regions: BTreeSet<String> = tiny
            .numbers
            .iter()
            .filter_map(|n| {
                NumberingPlan
                    .check_line(n.number.to_string().as_bytes(), None)
                    .ok()
            })
            .filter_map(|c| c.region.map(|r| r.as_str()))
            .collect();
        assert_eq!(regions.len(), 15, "{regions:?}");
    }

    #[test]
    fn every_number_is_valid_except_the_invalid_ones_and_in_its_range_region() {
        let d = small();
        let mut regions: BTreeMap<String, usize> = BTreeMap::new();
        let mut fictional = 0;
        for n in &d.numbers {
            let text = n.number.to_string();
            let c = NumberingPlan.check_line(text.as_bytes(), None).unwrap();
            assert_eq!(c.e164, n.number);
            let (r, _) = range_of(n.number).unwrap();
            assert_eq!(n.is_fictional(), r.fictional());
            let invalid = n.scenario == Scenario::InvalidNumber;
            assert_eq!(c.valid, !invalid, "{text} {:?}", n.scenario);
            assert_eq!(r.valid(), !invalid, "{text}");
            if !invalid {
                let region = c.region.unwrap().as_str();
                assert_eq!(region, r.region, "{text}");
                *regions.entry(region).or_default() += 1;
            }
            fictional += usize::from(r.fictional());
        }
        assert!(regions.len() >= 10, "{regions:?}");
        // Most numbers come from ranges reserved for fiction.
        assert!(
            fictional * 100 >= d.numbers.len() * 55,
            "{fictional} of {}",
            d.numbers.len()
        );
    }

    #[test]
    fn every_fictional_block_is_as_valid_as_declared() {
        for r in RANGES.iter().filter(|r| r.fictional()) {
            for p in r.prefixes {
                for v in [r.lo, r.hi] {
                    let free = if r.width > 0 {
                        format!("{v:0w$}", w = r.width)
                    } else {
                        String::new()
                    };
                    let text = format!("+{}{}{}{}", r.cc, p, r.infix, free);
                    let c = NumberingPlan.check_line(text.as_bytes(), None).unwrap();
                    assert_eq!(c.valid, r.valid(), "{text}");
                    if r.valid() {
                        assert_eq!(c.region.unwrap().as_str(), r.region, "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_status_and_reason_appears() {
        let expected: Vec<(ActiveStatus, Reason, bool)> =
            Scenario::ALL.iter().map(|s| s.expected()).collect();
        for status in ActiveStatus::ALL {
            assert!(expected.iter().any(|e| e.0 == *status), "{status:?}");
        }
        for reason in Reason::ALL {
            assert!(expected.iter().any(|e| e.1 == *reason), "{reason:?}");
        }
        assert!(expected.iter().any(|e| e.2), "possibly_reassigned");
    }

    fn profiles(d: &DemoData, now: i64) -> HashMap<E164, Profile> {
        let h = Policy::default().half_lives();
        let mut out: HashMap<E164, Profile> = HashMap::new();
        for o in d.observations(now) {
            let p = out.entry(o.number).or_default();
            *p = p.merge(&Profile::of(&o), &h);
        }
        out
    }

    #[test]
    fn the_default_policy_decides_what_each_scenario_expects() {
        let policy = Policy::default();
        for seed in [1, 2, 3] {
            let d = DemoData::generate(seed, 3_000, NOW);
            let profiles = profiles(&d, NOW);
            let mut seen: BTreeMap<Scenario, usize> = BTreeMap::new();
            for n in &d.numbers {
                let valid = NumberingPlan
                    .check_line(n.number.to_string().as_bytes(), None)
                    .unwrap()
                    .valid;
                let empty = Profile::default();
                let p = profiles.get(&n.number).unwrap_or(&empty);
                let v = policy.decide(valid, None, Some(p), NOW);
                assert_eq!(
                    (v.status, v.reason, v.possibly_reassigned),
                    n.scenario.expected(),
                    "{} {:?}: {v:?}\n{p:?}",
                    n.number,
                    n.scenario
                );
                *seen.entry(n.scenario).or_default() += 1;
            }
            assert_eq!(seen.len(), Scenario::ALL.len());
        }
    }

    #[test]
    fn raw_codes_and_classes_agree_with_the_generic_table() {
        let table = CodeTable::generic();
        let d = small();
        for n in &d.numbers {
            for e in story(n) {
                assert_eq!(
                    table.classify(e.kind, e.code),
                    Some(e.class),
                    "{} {}",
                    e.kind,
                    e.code
                );
            }
        }
        for o in d.observations(NOW) {
            assert_eq!(table.classify(o.kind, &o.raw_code), Some(o.class));
        }
    }

    #[test]
    fn observations_are_realistic() {
        let d = small();
        let mut ids = HashSet::new();
        let mut kinds = BTreeSet::new();
        let mut sources = BTreeSet::new();
        let mut count = 0usize;
        for o in d.observations(NOW) {
            count += 1;
            assert!(
                o.observed_at_ms < NOW && o.observed_at_ms >= NOW - 365 * DAY_MS,
                "{o:?}"
            );
            assert_eq!(o.weight, 1.0);
            kinds.insert(o.kind);
            sources.insert(o.source.clone());
            match o.kind {
                SmsDlr | Call => {
                    let id = o.message_id.clone().unwrap();
                    assert!(ids.insert((o.source.clone(), id)), "duplicate id {o:?}");
                }
                _ => assert_eq!(o.message_id, None),
            }
        }
        assert_eq!(kinds.len(), EvidenceKind::ALL.len(), "{kinds:?}");
        assert!(sources.len() >= 15, "{sources:?}");
        // Message ids are unique without the source too.
        let bare: HashSet<&String> = ids.iter().map(|(_, id)| id).collect();
        assert_eq!(bare.len(), ids.len());
        let mean = count as f64 / d.numbers.len() as f64;
        let target = OBSERVATIONS_PER_NUMBER as f64;
        assert!((mean - target).abs() <= 0.15 * target, "mean {mean}");
    }

    #[test]
    fn fifty_thousand_subscribers_give_about_a_million_observations() {
        let d = DemoData::generate(2026, 50_000, NOW);
        assert_eq!(d.numbers.len(), 50_000);
        let count = d.observations(NOW).count();
        assert!((800_000..=1_300_000).contains(&count), "{count}");
    }

    #[test]
    fn the_numbers_file_has_every_number_some_duplicates_and_some_garbage() {
        let d = small();
        let file = d.numbers_file();
        let wanted: HashSet<E164> = d.numbers.iter().map(|n| n.number).collect();
        let mut seen: HashMap<E164, usize> = HashMap::new();
        let mut garbage = 0;
        let mut lines = 0;
        for line in file.lines() {
            lines += 1;
            match NumberingPlan.parse_line(line.as_bytes(), None) {
                Ok(e) => {
                    assert!(wanted.contains(&e), "{line:?} → {e} is not a demo number");
                    *seen.entry(e).or_default() += 1;
                }
                Err(_) => {
                    assert!(GARBAGE_LINES.contains(&line), "{line:?} does not parse");
                    garbage += 1;
                }
            }
        }
        assert_eq!(seen.len(), wanted.len());
        let duplicates: usize = seen.values().map(|c| c - 1).sum();
        assert!(duplicates >= 2, "{duplicates}");
        assert!(garbage >= 3, "{garbage}");
        assert_eq!(lines, d.numbers.len() + duplicates + garbage);
        // Mixed formats, and not in generation order.
        assert!(file.lines().any(|l| l.starts_with("00")));
        assert!(file.lines().any(|l| l.starts_with('+') && l.contains(' ')));
        assert!(file.lines().any(|l| l.starts_with('+') && !l.contains(' ')));
        let first: Vec<String> = d
            .numbers
            .iter()
            .take(20)
            .map(|n| n.number.to_string())
            .collect();
        let head: Vec<&str> = file.lines().take(20).collect();
        assert_ne!(first, head);
        assert!(
            DemoData {
                numbers: Vec::new()
            }
            .numbers_file()
            .is_empty()
        );
    }

    #[test]
    fn each_garbage_line_is_refused() {
        for g in GARBAGE_LINES {
            assert!(NumberingPlan.parse_line(g.as_bytes(), None).is_err(), "{g}");
        }
    }
}
