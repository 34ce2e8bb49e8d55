//! The numbering plan agrees with libphonenumber on every line of the fixture.
//!
//! `tests/fixtures/plan_agreement.tsv` holds `REGION<TAB>ANSWER<TAB>TEXT` lines: a corpus from
//! `bench/plan_corpus.py` with the answers of Python `phonenumbers` 9.0.42 (the metadata
//! release rlibphonenumber 2.2.15 carries) computed by `bench/plan_reference.py`. To
//! regenerate it, see `bench/README-plan.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use numcheck_core::LineError;
use numcheck_core::plan::{Checked, NumberingPlan, RegionCode};

const FIXTURE: &[u8] = include_bytes!("fixtures/plan_agreement.tsv");

/// Our answer in the fixture's notation.
fn notation(result: &Result<Checked, LineError>) -> String {
    match result {
        Err(e) => format!("err:{}", e.code()),
        Ok(c) => format!(
            "ok:{}:{}:{}:{}",
            c.e164,
            if c.valid { "valid" } else { "invalid" },
            c.line_type.as_str(),
            c.region.map(|r| r.as_str()).unwrap_or_default()
        ),
    }
}

struct Case<'a> {
    line_no: usize,
    region: Option<RegionCode>,
    expected: &'a str,
    text: &'a [u8],
}

fn cases() -> Vec<Case<'static>> {
    let body = FIXTURE.strip_suffix(b"\n").unwrap_or(FIXTURE);
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, record)| {
            let mut parts = record.splitn(3, |&b| b == b'\t');
            let region = std::str::from_utf8(parts.next().unwrap()).unwrap();
            let expected = std::str::from_utf8(parts.next().unwrap()).unwrap();
            let text = parts.next().unwrap();
            Case {
                line_no: i + 1,
                region: (!region.is_empty()).then(|| region.parse().unwrap()),
                expected,
                text,
            }
        })
        .collect()
}

/// `norm:<code>` lines are refused by our normaliser before libphonenumber is asked.
fn expected_answer(expected: &str) -> String {
    match expected.strip_prefix("norm:") {
        Some(code) => format!("err:{code}"),
        None => expected.to_owned(),
    }
}

#[test]
fn check_line_agrees_with_libphonenumber_on_every_fixture_line() {
    let cases = cases();
    assert!(cases.len() >= 10_000, "fixture too small: {}", cases.len());
    let plan = NumberingPlan;
    let mut disagreements = 0;
    for case in &cases {
        let got = notation(&plan.check_line(case.text, case.region));
        let want = expected_answer(case.expected);
        if got != want {
            disagreements += 1;
            eprintln!(
                "line {}: region {:?} text {:?}\n  libphonenumber: {want}\n  numcheck:       {got}",
                case.line_no,
                case.region.map(|r| r.as_str()),
                String::from_utf8_lossy(case.text),
            );
        }
    }
    assert_eq!(
        disagreements,
        0,
        "{disagreements} of {} lines disagree",
        cases.len()
    );
}

#[test]
fn parse_line_gives_the_e164_form_check_line_gives() {
    let plan = NumberingPlan;
    for case in cases() {
        assert_eq!(
            plan.parse_line(case.text, case.region),
            plan.check_line(case.text, case.region).map(|c| c.e164),
            "line {}",
            case.line_no
        );
    }
}
