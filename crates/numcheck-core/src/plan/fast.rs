//! The fast path: libphonenumber's parse, validity, number type and region, computed over the
//! [compiled plan](super::compiled) on byte slices, without allocating.
//!
//! It follows libphonenumber's algorithms step for step (`PhoneNumberUtil.parseHelper`,
//! `maybeExtractCountryCode`, `maybeStripNationalPrefixAndCarrierCode`, `testNumberLength`,
//! `getRegionCodeForNumberFromRegionList`, `getNumberTypeHelper`), specialised to what our
//! normaliser hands over: `+` and digits, or digits and a default region. Whatever it is not
//! sure about it reports as [`Unsure`], and the caller asks `rlibphonenumber` instead.

use std::sync::LazyLock;

use rlibphonenumber::Region;

use super::compiled::{CcPlan, CompiledPlan, Kind, LengthCheck, MAX_NSN, MAX_REGIONS, Scan};
use super::line::Digits;
use super::{Checked, LineType, RegionCode};
use crate::e164::{E164, MAX_DIGITS};
use crate::normalise::LineError;

/// The compiled plan, built on first use.
pub(crate) static PLAN: LazyLock<CompiledPlan> = LazyLock::new(CompiledPlan::build);

/// libphonenumber's shortest national significant number.
const MIN_NSN: usize = 2;

/// The fast path cannot answer this one with certainty; use the reference path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsure;

/// Room for a number a national prefix rule rewrote: a few digits longer than the longest
/// input at most, since a transform may add some.
type Buf = [u8; 32];

/// Two of them: the national-number path may strip twice (once in `maybeExtractCountryCode`,
/// once in `parseHelper`), and the second works on the first's result.
#[derive(Default)]
struct Scratch {
    first: Buf,
    second: Buf,
}

/// A parsed number: its calling code's plan, national significant number, and the scan of it.
struct Parsed<'a> {
    cp: &'static CcPlan,
    nsn: &'a [u8],
    scan: &'a Scan,
}

/// Room for the scans of one line: one per string the automaton runs over (the national
/// path runs it over up to four). Kept by the caller so results move as references.
type Scans = [Scan; 4];

/// What the numbering plan says about a parsed number.
struct Verdict {
    valid: bool,
    line_type: LineType,
    region: Option<Region>,
}

impl Parsed<'_> {
    /// `getRegionCodeForNumber`, then `isValidNumberForRegion` / `getNumberType` with it.
    #[inline]
    fn verdict(&self) -> Verdict {
        let len = self.nsn.len();
        let regions = &self.cp.regions;
        let found = if regions.len() == 1 {
            Some(0)
        } else {
            regions.iter().enumerate().position(|(i, r)| {
                if r.has_leading_digits {
                    self.scan[i] & Kind::LeadingDigits.bit() != 0
                } else {
                    r.number_type(self.scan[i], len) != LineType::Unknown
                }
            })
        };
        let invalid = Verdict {
            valid: false,
            line_type: LineType::Unknown,
            region: None,
        };
        let Some(i) = found else { return invalid };
        match regions[i].number_type(self.scan[i], len) {
            LineType::Unknown => invalid,
            line_type => Verdict {
                valid: true,
                line_type,
                region: Some(regions[i].region),
            },
        }
    }

    /// The E.164 form: calling code then the national significant number (Italian leading
    /// zeros included), refused past 15 digits.
    #[inline]
    fn e164(&self) -> Result<E164, LineError> {
        let (_, cc_len) = self.cp.cc_digits;
        if cc_len + self.nsn.len() > MAX_DIGITS {
            return Err(LineError::TooLong);
        }
        let value = self.nsn.iter().fold(u64::from(self.cp.cc), |acc, d| {
            acc * 10 + u64::from(d - b'0')
        });
        E164::from_u64(value).ok_or(LineError::NotANumber)
    }
}

type Step<T> = Result<Result<T, LineError>, Unsure>;

/// Answers for one line's digits, as `NumberingPlan::check_line` does.
#[inline]
pub(crate) fn check(
    digits: &Digits,
    region: Option<RegionCode>,
) -> Result<Result<Checked, LineError>, Unsure> {
    let d = digits.digits();
    let mut scratch = Scratch::default();
    let mut scans: Scans = [[0; MAX_REGIONS]; 4];
    let parsed = match (digits.international, region) {
        (true, _) => parse_international(d, &mut scratch.first, &mut scans)?,
        (false, Some(RegionCode(r))) => parse_national(d, r, &mut scratch, &mut scans)?,
        (false, None) => {
            // No region to read it in: accept it only as an international number whose `+`
            // was lost and that is valid as such.
            match parse_international(d, &mut scratch.first, &mut scans)? {
                Ok(p) if p.verdict().valid => Ok(p),
                _ => Err(LineError::NationalWithoutRegion),
            }
        }
    };
    let p = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let e164 = match p.e164() {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    let v = p.verdict();
    Ok(Ok(Checked {
        e164,
        valid: v.valid,
        line_type: v.line_type,
        region: v.region.map(RegionCode),
    }))
}

/// The calling code at the start of `digits` (1–3 digits, never starting with 0), and the
/// number of digits it takes.
#[inline]
fn extract_country_code(digits: &[u8]) -> Option<(&'static CcPlan, usize)> {
    if digits.first() == Some(&b'0') {
        return None;
    }
    let mut cc = 0usize;
    for (i, &d) in digits.iter().take(3).enumerate() {
        cc = cc * 10 + usize::from(d - b'0');
        if let Some(cp) = PLAN.cc(cc) {
            return Some((cp, i + 1));
        }
    }
    None
}

#[inline]
fn scan(cp: &CcPlan, digits: &[u8], into: &mut Scan) -> Result<(), Unsure> {
    if cp.scan(digits, into) {
        Ok(())
    } else {
        Err(Unsure)
    }
}

/// `parse("+" + digits, None)`.
#[inline]
fn parse_international<'a>(
    d: &'a [u8],
    buf: &'a mut Buf,
    scans: &'a mut Scans,
) -> Step<Parsed<'a>> {
    // `isViablePhoneNumber`: a `+` needs at least three digits after it.
    if d.len() < 3 {
        return Ok(Err(LineError::NotANumber));
    }
    let Some((cp, k)) = extract_country_code(d) else {
        return Ok(Err(LineError::UnknownCountryCode));
    };
    if cp.unsure {
        return Err(Unsure);
    }
    let nsn = &d[k..];
    let [s0, s1, ..] = scans;
    scan(cp, nsn, s0)?;
    finish(cp, 0, nsn, s0, buf, s1)
}

/// `parse(digits, Some(region))`.
fn parse_national<'a>(
    d: &'a [u8],
    region: Region,
    scratch: &'a mut Scratch,
    scans: &'a mut Scans,
) -> Step<Parsed<'a>> {
    // `isViablePhoneNumber`: two digits at least.
    if d.len() < MIN_NSN {
        return Ok(Err(LineError::NotANumber));
    }
    let (cp, ri) = PLAN.region(region).ok_or(Unsure)?;
    if cp.unsure {
        return Err(Unsure);
    }
    let r = &cp.regions[ri];
    let [s0, s1, s2, s3] = scans;
    scan(cp, d, s0)?;
    let s0: &Scan = s0;

    // maybeExtractCountryCode, 1: the region's international prefix, unless a 0 follows it.
    if let Some(idd) = &r.international_prefix
        && s0[ri] & Kind::InternationalPrefix.bit() != 0
    {
        let input = regex_automata::Input::new(d).anchored(regex_automata::Anchored::Yes);
        let end = idd.find(input).ok_or(Unsure)?.end();
        let rest = &d[end..];
        if rest.first() != Some(&b'0') {
            if rest.len() <= MIN_NSN {
                return Ok(Err(LineError::TooShort)); // TOO_SHORT_AFTER_IDD
            }
            let Some((cp2, k)) = extract_country_code(rest) else {
                return Ok(Err(LineError::UnknownCountryCode));
            };
            if cp2.unsure {
                return Err(Unsure);
            }
            // The metadata is the calling code's main region's: the default region's own only
            // when it is that main region, which is index 0 all the same.
            let nsn = &rest[k..];
            scan(cp2, nsn, s1)?;
            return finish(cp2, 0, nsn, s1, &mut scratch.first, s2);
        }
    }

    // maybeExtractCountryCode, 2: the number starts with the region's own calling code.
    let (cc_digits, cc_len) = cp.cc_digits;
    if let Some(after) = d.strip_prefix(&cc_digits[..cc_len]) {
        let Scratch { first, second } = scratch;
        scan(cp, after, s1)?;
        let (potential, pscan): (&[u8], &Scan) =
            match strip_national_prefix(cp, ri, after, s1, first, s2)? {
                Some(stripped) => (stripped, s2),
                None => (after, s1),
            };
        let was_general = s0[ri] & Kind::General.bit() != 0;
        let is_general = pscan[ri] & Kind::General.bit() != 0;
        if (!was_general && is_general) || r.test_length(d.len()) == LengthCheck::TooLong {
            return finish(cp, 0, potential, pscan, second, s3);
        }
        // No calling code: the default region's.
        return finish(cp, ri, d, s0, second, s3);
    }

    // No calling code: the default region's.
    finish(cp, ri, d, s0, &mut scratch.first, s1)
}

/// The end of `parseHelper`: national prefix stripping with the metadata of region `md`,
/// kept only when the result has a possible length, then the NSN length bounds.
#[inline]
fn finish<'a>(
    cp: &'static CcPlan,
    md: usize,
    nsn: &'a [u8],
    scan: &'a Scan,
    buf: &'a mut Buf,
    spare: &'a mut Scan,
) -> Step<Parsed<'a>> {
    if nsn.len() < MIN_NSN {
        return Ok(Err(LineError::TooShort)); // TOO_SHORT_NSN
    }
    let (mut nsn, mut scan) = (nsn, scan);
    if let Some(stripped) = strip_national_prefix(cp, md, nsn, scan, buf, spare)? {
        match cp.regions[md].test_length(stripped.len()) {
            LengthCheck::TooShort
            | LengthCheck::IsPossibleLocalOnly
            | LengthCheck::InvalidLength => {}
            LengthCheck::IsPossible | LengthCheck::TooLong => {
                nsn = stripped;
                scan = spare;
            }
        }
    }
    if nsn.len() < MIN_NSN {
        return Ok(Err(LineError::TooShort)); // TOO_SHORT_NSN
    }
    if nsn.len() > MAX_NSN {
        return Ok(Err(LineError::TooLong));
    }
    Ok(Ok(Parsed { cp, nsn, scan }))
}

/// `maybeStripNationalPrefixAndCarrierCode` with region `ri`'s metadata: the number with its
/// national prefix removed (or transformed), its scan written to `into`; or `None` to keep
/// the number as it is.
#[inline]
fn strip_national_prefix<'a>(
    cp: &CcPlan,
    ri: usize,
    num: &'a [u8],
    scan: &Scan,
    buf: &'a mut Buf,
    into: &mut Scan,
) -> Result<Option<&'a [u8]>, Unsure> {
    let r = &cp.regions[ri];
    let Some(prefix) = &r.national_prefix else {
        return Ok(None);
    };
    // The automaton already knows whether the prefix pattern matches at the start.
    if num.is_empty() || scan[ri] & Kind::NationalPrefix.bit() == 0 {
        return Ok(None);
    }
    let Some(m) = prefix.apply(num).map_err(|()| Unsure)? else {
        return Err(Unsure); // the automaton and the regex disagree: never expected
    };
    let viable_before = scan[ri] & Kind::General.bit() != 0;
    let candidate: &[u8] = match &m.replacement {
        Some((head, len)) => {
            let head = &head[..*len];
            let tail = &num[m.end..];
            let total = head.len() + tail.len();
            let out = buf.get_mut(..total).ok_or(Unsure)?;
            out[..head.len()].copy_from_slice(head);
            out[head.len()..].copy_from_slice(tail);
            &buf[..total]
        }
        None if m.end == 0 => return Ok(None), // an empty prefix: nothing changes
        None => &num[m.end..],
    };
    self::scan(cp, candidate, into)?;
    if viable_before && into[ri] & Kind::General.bit() == 0 {
        return Ok(None);
    }
    Ok(Some(candidate))
}
