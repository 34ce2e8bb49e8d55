//! libphonenumber's metadata compiled for speed: one automaton per country calling code.
//!
//! The metadata is the `PhoneMetadataCollection` that `rlibphonenumber` carries, copied into
//! `OUT_DIR` by the build script, so the compiled plan and the crate's own code read the same
//! bytes. Region order per calling code comes from `rlibphonenumber`'s public API, which keeps
//! libphonenumber's order (main region first, then the metadata's order).
//!
//! For each calling code, every pattern its regions use is compiled into ONE dense DFA that
//! runs anchored at the start of a national significant number (at most 17 digits):
//!
//! - the general description and the ten number types, as full matches (`(?:p)$`);
//! - `leading_digits`, `national_prefix_for_parsing` and `international_prefix`, as prefix
//!   matches (libphonenumber's `lookingAt`).
//!
//! One pass over the digits says which of them match ([`CcPlan::scan`]). Where a rule needs
//! more than yes or no — where a national prefix or an international prefix ends, and what
//! its capture groups hold — a per-region `meta::Regex` answers, and only when the DFA said
//! the prefix is there. Possible lengths are bit masks.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use prost::Message;
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::{NonMaxUsize, StateID};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, meta};
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneMetadata, PhoneNumberDesc, Region};

use super::LineType;

/// libphonenumber's metadata, as shipped in the pinned `rlibphonenumber` package.
static METADATA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/metadata.bin"));

/// The longest national significant number libphonenumber parses.
pub(crate) const MAX_NSN: usize = 17;
/// The most regions that share one calling code (25 share +1).
pub(crate) const MAX_REGIONS: usize = 32;
/// Capture groups a national prefix pattern may have (the metadata uses at most two).
const MAX_GROUPS: usize = 3;
/// A calling code whose DFA would be larger than this is left to the reference path.
const DFA_SIZE_LIMIT: usize = 64 << 20;

/// What one bit of a region's scan result means. The first eleven are number descriptions,
/// matched in full; the last three are prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    General = 0,
    PremiumRate,
    TollFree,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    FixedLine,
    Mobile,
    LeadingDigits,
    NationalPrefix,
    InternationalPrefix,
}

impl Kind {
    pub(crate) const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// The types checked after the general description and before fixed line / mobile, in
/// libphonenumber's order (`getNumberTypeHelper`).
pub(crate) const TYPE_ORDER: [(Kind, LineType); 8] = [
    (Kind::PremiumRate, LineType::PremiumRate),
    (Kind::TollFree, LineType::TollFree),
    (Kind::SharedCost, LineType::SharedCost),
    (Kind::Voip, LineType::Voip),
    (Kind::PersonalNumber, LineType::PersonalNumber),
    (Kind::Pager, LineType::Pager),
    (Kind::Uan, LineType::Uan),
    (Kind::Voicemail, LineType::Voicemail),
];

/// libphonenumber's `ValidationResult` for a length against a region's general description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LengthCheck {
    IsPossible,
    IsPossibleLocalOnly,
    TooShort,
    TooLong,
    InvalidLength,
}

/// A national prefix rule: `national_prefix_for_parsing`, anchored, with its transform.
#[derive(Debug)]
pub(crate) struct NationalPrefix {
    regex: meta::Regex,
    /// Explicit capture groups in the pattern.
    groups: usize,
    /// `national_prefix_transform_rule`, when non-empty.
    transform: Option<Vec<Piece>>,
}

/// One piece of a transform rule such as `9$1`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
}

/// The outcome of applying a national prefix pattern at the start of a number.
#[derive(Debug)]
pub(crate) struct PrefixMatch {
    /// Where the match ends.
    pub end: usize,
    /// The transformed prefix to put in front of `number[end..]`, when the transform rule
    /// applies (libphonenumber: a rule is set and the last group took part in the match).
    pub replacement: Option<([u8; MAX_NSN + 8], usize)>,
}

impl NationalPrefix {
    /// `lookingAt` with captures, then the transform rule applied the way `re.sub` /
    /// `Matcher.replaceFirst` do. `None` when the pattern does not match, or when the
    /// replacement would not fit (never with the shipped metadata; the caller falls back).
    pub(crate) fn apply(&self, number: &[u8]) -> Result<Option<PrefixMatch>, ()> {
        let mut slots = [None::<NonMaxUsize>; 2 * (MAX_GROUPS + 1)];
        let input = Input::new(number).anchored(Anchored::Yes);
        if self.regex.search_slots(&input, &mut slots).is_none() {
            return Ok(None);
        }
        let end = slots[1].ok_or(())?.get();
        let group = |g: usize| -> Option<&[u8]> {
            let (s, e) = (slots[2 * g]?, slots[2 * g + 1]?);
            Some(&number[s.get()..e.get()])
        };
        let Some(rule) = &self.transform else {
            return Ok(Some(PrefixMatch {
                end,
                replacement: None,
            }));
        };
        if self.groups == 0 || group(self.groups).is_none() {
            return Ok(Some(PrefixMatch {
                end,
                replacement: None,
            }));
        }
        let mut out = [0u8; MAX_NSN + 8];
        let mut len = 0;
        for piece in rule {
            let bytes = match piece {
                Piece::Literal(l) => l.as_slice(),
                Piece::Group(g) => group(*g).unwrap_or_default(),
            };
            let dst = out.get_mut(len..len + bytes.len()).ok_or(())?;
            dst.copy_from_slice(bytes);
            len += bytes.len();
        }
        Ok(Some(PrefixMatch {
            end,
            replacement: Some((out, len)),
        }))
    }
}

/// One region's (or non-geographic entity's) rules, in compiled form.
#[derive(Debug)]
pub(crate) struct RegionPlan {
    pub region: Region,
    /// Possible-length mask per description kind (bit n: length n allowed). An empty list in
    /// the metadata means "no length filter": all bits set.
    pub lengths: [u32; 11],
    /// `possible_length` of the general description, for `testNumberLength`.
    pub general_lengths: u32,
    /// `possible_length_local_only` of the general description.
    pub general_local_only: u32,
    pub same_mobile_and_fixed_line: bool,
    pub has_leading_digits: bool,
    pub national_prefix: Option<NationalPrefix>,
    pub international_prefix: Option<meta::Regex>,
    /// Something in this region's metadata is outside what the fast path handles: any
    /// number that needs its rules goes to the reference path.
    pub unsure: bool,
}

impl RegionPlan {
    /// Does description `kind` match a number of `len` digits whose scan bits are `bits`?
    /// (libphonenumber's `isNumberMatchingDesc`: possible lengths first, then the pattern.)
    #[inline]
    pub(crate) fn matches(&self, bits: u16, kind: Kind, len: usize) -> bool {
        bits & kind.bit() != 0 && self.lengths[kind as usize] & (1 << len) != 0
    }

    /// libphonenumber's `getNumberTypeHelper`.
    #[inline]
    pub(crate) fn number_type(&self, bits: u16, len: usize) -> LineType {
        if !self.matches(bits, Kind::General, len) {
            return LineType::Unknown;
        }
        for (kind, line_type) in TYPE_ORDER {
            if self.matches(bits, kind, len) {
                return line_type;
            }
        }
        if self.matches(bits, Kind::FixedLine, len) {
            if self.same_mobile_and_fixed_line || self.matches(bits, Kind::Mobile, len) {
                return LineType::FixedLineOrMobile;
            }
            return LineType::FixedLine;
        }
        if !self.same_mobile_and_fixed_line && self.matches(bits, Kind::Mobile, len) {
            return LineType::Mobile;
        }
        LineType::Unknown
    }

    /// libphonenumber's `testNumberLength` for the unknown type (the general description).
    #[inline]
    pub(crate) fn test_length(&self, len: usize) -> LengthCheck {
        if len >= 32 {
            return LengthCheck::TooLong; // past every possible length (all are below 32)
        }
        let bit = 1u32 << len;
        if self.general_local_only & bit != 0 {
            return LengthCheck::IsPossibleLocalOnly;
        }
        let min = self.general_lengths.trailing_zeros() as usize;
        let max = 31 - self.general_lengths.leading_zeros() as usize;
        if len == min {
            LengthCheck::IsPossible
        } else if len < min {
            LengthCheck::TooShort
        } else if len > max {
            LengthCheck::TooLong
        } else if self.general_lengths & bit != 0 {
            LengthCheck::IsPossible
        } else {
            LengthCheck::InvalidLength
        }
    }
}

/// What a scan found: per region, one bit per [`Kind`].
pub(crate) type Scan = [u16; MAX_REGIONS];

/// Everything about one country calling code.
pub(crate) struct CcPlan {
    pub cc: u16,
    /// The calling code's digits, and how many there are.
    pub cc_digits: ([u8; 3], usize),
    /// In libphonenumber's order; the first is the main region (or the non-geographic entity).
    pub regions: Vec<RegionPlan>,
    /// Something about this calling code is outside what the fast path handles (no automaton,
    /// or a region's rules it cannot represent): its numbers use the reference path.
    pub unsure: bool,
    table: Option<Table>,
}

/// A calling code's automaton, flattened for the digits-only alphabet: per state, 11 entries
/// (the digits 0–9, then end of input), each the next state's index with [`MATCH`] set when
/// that state reports matches. Index 0 is the dead state. Built from regex-automata's dense
/// DFA by walking every state reachable on digits: a fraction of its size (more of the tables
/// stay in cache), and per match state the patterns are already merged per region.
struct Table {
    next: Vec<u16>,
    start: u16,
    /// Per state index: where its (region, kind bits) list starts and ends in `matches`.
    match_at: Vec<(u32, u32)>,
    matches: Vec<(u8, u16)>,
}

/// Flag on a state index: the state reports matches (of patterns that ended just before it).
const MATCH: u16 = 0x8000;
/// Entries per state: ten digits and the end of input.
const STRIDE: usize = 11;
const EOI: usize = 10;

impl Table {
    fn from_dfa(dfa: &dense::DFA<Vec<u32>>, slots: &[(u8, u16)]) -> Option<Table> {
        let start_id = dfa.universal_start_state(Anchored::Yes)?;
        let mut index: HashMap<StateID, u16> = HashMap::new();
        let mut order: Vec<Option<StateID>> = vec![None]; // 0: dead
        let mut queue = VecDeque::new();
        let mut id_of =
            |sid: StateID, order: &mut Vec<Option<StateID>>, queue: &mut VecDeque<StateID>| {
                if dfa.is_dead_state(sid) {
                    return Some(0);
                }
                if dfa.is_quit_state(sid) {
                    return None;
                }
                let i = match index.get(&sid) {
                    Some(&i) => i,
                    None => {
                        let i = u16::try_from(order.len()).ok().filter(|&i| i < MATCH)?;
                        index.insert(sid, i);
                        order.push(Some(sid));
                        queue.push_back(sid);
                        i
                    }
                };
                Some(if dfa.is_match_state(sid) {
                    i | MATCH
                } else {
                    i
                })
            };
        let start = id_of(start_id, &mut order, &mut queue)? & !MATCH;
        let mut next = vec![0u16; STRIDE]; // the dead state stays dead
        while let Some(sid) = queue.pop_front() {
            for b in b'0'..=b'9' {
                next.push(id_of(dfa.next_state(sid, b), &mut order, &mut queue)?);
            }
            next.push(id_of(dfa.next_eoi_state(sid), &mut order, &mut queue)?);
        }
        let mut match_at = Vec::with_capacity(order.len());
        let mut matches = Vec::new();
        for sid in &order {
            let from = u32::try_from(matches.len()).ok()?;
            if let Some(sid) = sid.filter(|&s| dfa.is_match_state(s)) {
                let mut merged: Vec<(u8, u16)> = Vec::new();
                for i in 0..dfa.match_len(sid) {
                    let (region, bit) = *slots.get(dfa.match_pattern(sid, i).as_usize())?;
                    match merged.iter_mut().find(|(r, _)| *r == region) {
                        Some((_, bits)) => *bits |= bit,
                        None => merged.push((region, bit)),
                    }
                }
                matches.extend(merged);
            }
            match_at.push((from, u32::try_from(matches.len()).ok()?));
        }
        Some(Table {
            next,
            start,
            match_at,
            matches,
        })
    }

    fn memory_usage(&self) -> usize {
        self.next.len() * 2 + self.match_at.len() * 8 + self.matches.len() * 4
    }
}

impl fmt::Debug for CcPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CcPlan")
            .field("cc", &self.cc)
            .field("regions", &self.regions.len())
            .field("table_bytes", &self.table.as_ref().map(Table::memory_usage))
            .finish()
    }
}

impl CcPlan {
    /// Runs the calling code's automaton once over `digits` (ASCII digits only), filling
    /// `scan`. `false` when this calling code has no automaton (the caller falls back).
    #[inline]
    pub(crate) fn scan(&self, digits: &[u8], scan: &mut Scan) -> bool {
        let Some(t) = &self.table else { return false };
        *scan = [0; MAX_REGIONS];
        let mut record = |v: u16| {
            if let Some(&(from, to)) = t.match_at.get(usize::from(v & !MATCH)) {
                for &(region, bits) in &t.matches[from as usize..to as usize] {
                    scan[usize::from(region)] |= bits;
                }
            }
        };
        let mut s = usize::from(t.start);
        for &b in digits {
            let v = t.next[s * STRIDE + usize::from(b.wrapping_sub(b'0')).min(9)];
            if v & MATCH != 0 {
                record(v);
            }
            s = usize::from(v & !MATCH);
            if s == 0 {
                return true;
            }
        }
        let v = t.next[s * STRIDE + EOI];
        if v & MATCH != 0 {
            record(v);
        }
        true
    }
}

/// The whole compiled plan.
#[derive(Debug)]
pub(crate) struct CompiledPlan {
    /// Calling code (0–999) → index into `ccs`, or `u16::MAX`.
    by_cc: Vec<u16>,
    pub ccs: Vec<CcPlan>,
    /// Region → (index into `ccs`, index into that plan's `regions`).
    by_region: HashMap<Region, (u16, u8)>,
}

impl CompiledPlan {
    #[inline]
    pub(crate) fn cc(&self, cc: usize) -> Option<&CcPlan> {
        let i = *self.by_cc.get(cc)?;
        self.ccs.get(usize::from(i))
    }

    #[inline]
    pub(crate) fn region(&self, region: Region) -> Option<(&CcPlan, usize)> {
        let &(c, r) = self.by_region.get(&region)?;
        Some((self.ccs.get(usize::from(c))?, usize::from(r)))
    }

    /// Calling codes the fast path leaves to the reference path.
    #[cfg(test)]
    pub(crate) fn unsure(&self) -> impl Iterator<Item = u16> + '_ {
        self.ccs.iter().filter(|c| c.unsure).map(|c| c.cc)
    }

    /// Decodes the metadata and compiles it. Runs once per process.
    pub(crate) fn build() -> CompiledPlan {
        #[allow(clippy::expect_used)] // a start-up invariant: the bytes are part of the build
        let collection = rlibphonenumber::PhoneMetadataCollection::decode(METADATA).expect(
            "libphonenumber metadata copied from rlibphonenumber by build.rs does not decode: \
             the build is broken (rebuild numcheck-core)",
        );
        let mut geo: HashMap<Region, PhoneMetadata> = HashMap::new();
        let mut non_geo: HashMap<i32, PhoneMetadata> = HashMap::new();
        for m in collection.metadata {
            match (m.id.as_str(), m.country_code) {
                ("001", Some(cc)) => {
                    non_geo.insert(cc, m);
                }
                (id, Some(_)) => {
                    if let Ok(r) = Region::from_code(id) {
                        geo.insert(r, m);
                    }
                }
                _ => {}
            }
        }
        let mut plan = CompiledPlan {
            by_cc: vec![u16::MAX; 1000],
            ccs: Vec::new(),
            by_region: HashMap::new(),
        };
        let util = &*PHONE_NUMBER_UTIL;
        let mut codes: Vec<i32> = util.get_supported_calling_codes().collect();
        codes.sort_unstable();
        for cc in codes {
            let Ok(cc16) = u16::try_from(cc) else {
                continue;
            };
            if cc16 >= 1000 {
                continue;
            }
            let Some(regions) = util.get_regions_for_country_calling_code(cc) else {
                continue;
            };
            let metas: Vec<(Region, &PhoneMetadata)> = regions
                .filter_map(|r| {
                    let m = if r == Region::World {
                        non_geo.get(&cc)
                    } else {
                        geo.get(&r)
                    };
                    m.map(|m| (r, m))
                })
                .collect();
            let index = plan.ccs.len() as u16;
            for (i, (r, _)) in metas.iter().enumerate() {
                if *r != Region::World {
                    plan.by_region.insert(*r, (index, i as u8));
                }
            }
            plan.by_cc[usize::from(cc16)] = index;
            plan.ccs.push(compile_cc(cc16, &metas));
        }
        plan
    }
}

/// The raw pattern inside rlibphonenumber's stored `^(?:…)$` wrapping; `None` when absent.
fn raw(pattern: Option<&str>) -> Option<&str> {
    let p = pattern?;
    let inner = p.strip_prefix("^(?:")?.strip_suffix(")$")?;
    (!inner.is_empty()).then_some(inner)
}

/// [`raw`], noting in `unsure` a pattern that is present but not in the expected wrapping.
fn unwrap_pattern<'a>(pattern: Option<&'a str>, unsure: &mut bool) -> Option<&'a str> {
    let inner = raw(pattern);
    if inner.is_none() && pattern.is_some_and(|p| p != "^(?:)$") {
        *unsure = true;
    }
    inner
}

fn length_mask(lengths: &[i32]) -> u32 {
    lengths
        .iter()
        .filter_map(|&l| u32::try_from(l).ok())
        .filter(|&l| l < 32)
        .fold(0, |m, l| m | 1 << l)
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

fn prefix_regex(pattern: &str) -> Option<meta::Regex> {
    meta::Regex::builder()
        .configure(meta::Config::new().utf8_empty(false))
        .syntax(syntax_config())
        .build(pattern)
        .ok()
}

fn parse_transform(rule: &str) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut bytes = rule.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b == b'$' {
            let d = bytes.next().filter(u8::is_ascii_digit)?;
            if bytes.peek().is_some_and(u8::is_ascii_digit) {
                return None; // `$12`: ambiguous between engines; never in the metadata
            }
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Group(usize::from(d - b'0')));
        } else if b.is_ascii_digit() {
            literal.push(b);
        } else {
            return None;
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Some(pieces)
}

// rlibphonenumber marks the raw proto fields deprecated because its own wrapper moves them
// out; we decode the proto ourselves, so here they hold the data.
#[allow(deprecated)]
fn compile_region(
    region: Region,
    m: &PhoneMetadata,
    patterns: &mut Vec<(String, Kind)>,
) -> RegionPlan {
    let empty = PhoneNumberDesc::default();
    let descs: [(Kind, &PhoneNumberDesc); 11] = [
        (Kind::General, m.general_desc.as_ref().unwrap_or(&empty)),
        (Kind::PremiumRate, m.premium_rate.as_ref().unwrap_or(&empty)),
        (Kind::TollFree, m.toll_free.as_ref().unwrap_or(&empty)),
        (Kind::SharedCost, m.shared_cost.as_ref().unwrap_or(&empty)),
        (Kind::Voip, m.voip.as_ref().unwrap_or(&empty)),
        (
            Kind::PersonalNumber,
            m.personal_number.as_ref().unwrap_or(&empty),
        ),
        (Kind::Pager, m.pager.as_ref().unwrap_or(&empty)),
        (Kind::Uan, m.uan.as_ref().unwrap_or(&empty)),
        (Kind::Voicemail, m.voicemail.as_ref().unwrap_or(&empty)),
        (Kind::FixedLine, m.fixed_line.as_ref().unwrap_or(&empty)),
        (Kind::Mobile, m.mobile.as_ref().unwrap_or(&empty)),
    ];
    let mut unsure = false;
    let mut lengths = [0u32; 11];
    for (kind, desc) in descs {
        lengths[kind as usize] = if desc.possible_length.is_empty() {
            u32::MAX
        } else {
            length_mask(&desc.possible_length)
        };
        if let Some(p) = unwrap_pattern(desc.national_number_pattern.as_deref(), &mut unsure) {
            patterns.push((format!("(?:{p})$"), kind));
        }
    }
    let general = m.general_desc.as_ref().unwrap_or(&empty);
    let general_lengths = length_mask(&general.possible_length);
    if general_lengths == 0
        || general
            .possible_length
            .iter()
            .any(|&l| !(1..32).contains(&l))
    {
        unsure = true; // testNumberLength would read a list we cannot represent
    }
    let has_leading_digits = match unwrap_pattern(m.leading_digits.as_deref(), &mut unsure) {
        Some(p) => {
            patterns.push((format!("(?:{p})"), Kind::LeadingDigits));
            true
        }
        None => false,
    };
    let npp = unwrap_pattern(m.national_prefix_for_parsing.as_deref(), &mut unsure);
    let idd = unwrap_pattern(m.international_prefix.as_deref(), &mut unsure);
    let national_prefix = npp.and_then(|p| {
        patterns.push((format!("(?:{p})"), Kind::NationalPrefix));
        let regex = prefix_regex(p);
        let transform = match m.national_prefix_transform_rule.as_deref() {
            None | Some("") => Some(None),
            Some(rule) => parse_transform(rule).map(Some),
        };
        match (regex, transform) {
            (Some(regex), Some(transform)) => {
                let groups = regex
                    .group_info()
                    .group_len(regex_automata::PatternID::ZERO)
                    - 1;
                if groups > MAX_GROUPS
                    || transform
                        .iter()
                        .flatten()
                        .any(|p| matches!(p, Piece::Group(g) if *g > groups))
                {
                    unsure = true;
                }
                Some(NationalPrefix {
                    regex,
                    groups,
                    transform,
                })
            }
            _ => {
                unsure = true;
                None
            }
        }
    });
    let international_prefix = idd.and_then(|p| {
        patterns.push((format!("(?:{p})"), Kind::InternationalPrefix));
        let regex = prefix_regex(p);
        if regex.is_none() {
            unsure = true;
        }
        regex
    });
    RegionPlan {
        region,
        lengths,
        general_lengths,
        general_local_only: length_mask(&general.possible_length_local_only),
        same_mobile_and_fixed_line: m.same_mobile_and_fixed_line_pattern(),
        has_leading_digits,
        national_prefix,
        international_prefix,
        unsure,
    }
}

fn compile_cc(cc: u16, metas: &[(Region, &PhoneMetadata)]) -> CcPlan {
    let mut digits = [0u8; 3];
    let text = cc.to_string();
    let n = text.len().min(3);
    digits[..n].copy_from_slice(&text.as_bytes()[..n]);
    if metas.is_empty() || metas.len() > MAX_REGIONS {
        return CcPlan {
            cc,
            cc_digits: (digits, n),
            regions: Vec::new(),
            unsure: true,
            table: None,
        };
    }
    let mut regions = Vec::with_capacity(metas.len());
    let mut all_patterns = Vec::new();
    let mut slots = Vec::new();
    for (i, (region, m)) in metas.iter().enumerate() {
        let mut patterns = Vec::new();
        regions.push(compile_region(*region, m, &mut patterns));
        for (p, kind) in patterns {
            all_patterns.push(p);
            slots.push((i as u8, kind.bit()));
        }
    }
    let table = dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .accelerate(false)
                .minimize(false)
                .byte_classes(true)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
        )
        .syntax(syntax_config())
        .thompson(thompson::Config::new().utf8(false))
        .build_many(&all_patterns)
        .ok()
        .and_then(|dfa| Table::from_dfa(&dfa, &slots));
    CcPlan {
        cc,
        cc_digits: (digits, n),
        unsure: table.is_none() || regions.iter().any(|r| r.unsure),
        regions,
        table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_rules_parse_into_literals_and_groups() {
        assert_eq!(
            parse_transform("9$1"),
            Some(vec![Piece::Literal(b"9".to_vec()), Piece::Group(1)])
        );
        assert_eq!(parse_transform("$2"), Some(vec![Piece::Group(2)]));
        assert_eq!(parse_transform("$12"), None);
        assert_eq!(parse_transform("\\1"), None);
    }

    #[test]
    fn stored_patterns_lose_their_anchoring_wrapper() {
        assert_eq!(raw(Some("^(?:0|8)$")), Some("0|8"));
        assert_eq!(raw(Some("^(?:)$")), None);
        assert_eq!(raw(Some("0")), None);
        assert_eq!(raw(None), None);
    }

    #[test]
    fn every_calling_code_compiles_to_an_automaton() {
        let plan = CompiledPlan::build();
        assert!(plan.ccs.len() > 200);
        assert_eq!(plan.unsure().collect::<Vec<_>>(), Vec::<u16>::new());
    }
}
