//! The work on one chunk, in two synchronous steps around one batched profile lookup:
//! [`parse`] reads the chunk's lines against the numbering plan; [`render`] decides each
//! number (policy over its profile) and writes result rows, rejected rows, the chunk's sorted
//! unique numbers and its summary. Both are free of I/O, so they run on blocking threads and
//! are tested directly.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat};
use numcheck_core::{
    Checked, E164, LineError, LineSplitter, NumberingPlan, Policy, Profile, RegionCode, TaskType,
};
use serde::{Deserialize, Serialize};

use crate::options::{Columns, TaskOptions};

/// The header of `rejected.csv`.
pub const REJECTED_HEADER: &str = "Line,Input,Reason\n";

/// One non-blank line of a chunk, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Number {
        line: u64,
        checked: Checked,
    },
    Failure {
        line: u64,
        text: String,
        error: LineError,
    },
}

/// Reads a chunk's lines. `data` starts at byte `byte_start`, line `first_line`.
pub fn parse(
    plan: &NumberingPlan,
    data: &[u8],
    byte_start: u64,
    first_line: u64,
    region: Option<RegionCode>,
) -> Vec<Item> {
    let mut items = Vec::new();
    let mut splitter = LineSplitter::starting_at(byte_start, first_line);
    let mut handle = |line: numcheck_core::Line<'_>| {
        if line.is_blank() {
            return;
        }
        let checked = if line.truncated {
            Err(LineError::LineTooLong)
        } else {
            plan.check_line(line.text, region)
        };
        items.push(match checked {
            Ok(checked) => Item::Number {
                line: line.number,
                checked,
            },
            Err(error) => Item::Failure {
                line: line.number,
                text: String::from_utf8_lossy(line.text).trim().to_owned(),
                error,
            },
        });
    };
    splitter.push(data, &mut handle);
    splitter.finish(&mut handle);
    items
}

/// The distinct numbers of a chunk, for the profile lookup.
pub fn numbers(items: &[Item]) -> Vec<E164> {
    let mut v: Vec<E164> = items
        .iter()
        .filter_map(|i| match i {
            Item::Number { checked, .. } => Some(checked.e164),
            Item::Failure { .. } => None,
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The valid numbers of a chunk whose evidence leaves them `unknown` (each once), with the
/// line type and region a lookup provider's coverage depends on.
pub fn undecided(
    items: &[Item],
    profiles: &HashMap<E164, Profile>,
    policy: &numcheck_core::Policy,
    as_of_ms: i64,
) -> Vec<crate::lookup::Candidate> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let Item::Number { checked, .. } = item else {
            continue;
        };
        if !checked.valid || !seen.insert(checked.e164) {
            continue;
        }
        let letters = checked.region.map(|r| r.letters());
        let region = letters.as_ref().and_then(|l| std::str::from_utf8(l).ok());
        let v = policy.decide(true, region, profiles.get(&checked.e164), as_of_ms);
        if v.status == numcheck_core::ActiveStatus::Unknown {
            out.push(crate::lookup::Candidate {
                number: checked.e164,
                line_type: checked.line_type,
                region: checked.region,
            });
        }
    }
    out
}

/// Counts of a chunk or a whole task, for `summary.json`. Maps are ordered so the same task
/// always gives the same file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub success: u64,
    pub failure: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_reason: BTreeMap<String, u64>,
    pub by_region: BTreeMap<String, u64>,
    pub by_line_type: BTreeMap<String, u64>,
    pub possibly_reassigned: u64,
    pub valid: u64,
    pub invalid: u64,
    pub failures_by_reason: BTreeMap<String, u64>,
    /// Live lookups (absent when the task made none).
    #[serde(default, skip_serializing_if = "crate::lookup::LookupCounts::is_zero")]
    pub lookups: crate::lookup::LookupCounts,
}

impl Summary {
    pub fn add(&mut self, other: &Summary) {
        fn add_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        }
        self.success += other.success;
        self.failure += other.failure;
        add_map(&mut self.by_status, &other.by_status);
        add_map(&mut self.by_reason, &other.by_reason);
        add_map(&mut self.by_region, &other.by_region);
        add_map(&mut self.by_line_type, &other.by_line_type);
        self.possibly_reassigned += other.possibly_reassigned;
        self.valid += other.valid;
        self.invalid += other.invalid;
        add_map(&mut self.failures_by_reason, &other.failures_by_reason);
        self.lookups.add(&other.lookups);
    }
}

/// What one chunk produced.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkOutput {
    /// Result CSV rows (no header), in input order.
    pub rows: Vec<u8>,
    /// Rejected CSV rows (no header), in input order.
    pub rejected: Vec<u8>,
    /// The chunk's distinct numbers, ascending, as little-endian `u64`s.
    pub numbers: Vec<u8>,
    pub summary: Summary,
}

/// How to decide and write rows.
#[derive(Debug, Clone, Copy)]
pub struct RenderSpec<'a> {
    pub task_type: TaskType,
    pub options: TaskOptions,
    pub policy: &'a Policy,
    pub plan: &'a NumberingPlan,
    /// Verdicts are as of this time (the task's creation), so re-processing a chunk gives the
    /// same rows.
    pub as_of_ms: i64,
}

/// `0.000`–`1.000` without going through float formatting, which showed in profiles.
fn confidence(c: f64) -> String {
    let milli = (c.clamp(0.0, 1.0) * 1000.0).round() as u32;
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

fn time_secs(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Per-chunk counts kept in plain maps keyed by static strings while rows are written, and
/// turned into the ordered [`Summary`] once: one `String` per row and counter showed in
/// profiles.
#[derive(Default)]
struct Counts {
    by_status: HashMap<&'static str, u64>,
    by_reason: HashMap<&'static str, u64>,
    by_line_type: HashMap<&'static str, u64>,
    by_region: HashMap<Option<RegionCode>, u64>,
    failures: HashMap<&'static str, u64>,
}

impl Counts {
    fn into_summary(self, s: &mut Summary) {
        let own = |m: HashMap<&'static str, u64>| -> BTreeMap<String, u64> {
            m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
        };
        s.by_status = own(self.by_status);
        s.by_reason = own(self.by_reason);
        s.by_line_type = own(self.by_line_type);
        s.failures_by_reason = own(self.failures);
        s.by_region = self
            .by_region
            .into_iter()
            .map(|(r, v)| {
                (
                    r.map(|r| r.as_str()).unwrap_or_else(|| "none".to_owned()),
                    v,
                )
            })
            .collect();
    }
}

/// Appends `+digits` of a number.
fn push_e164(out: &mut Vec<u8>, n: E164) {
    out.push(b'+');
    out.extend_from_slice(itoa::Buffer::new().format(n.as_u64()).as_bytes());
}

/// Rows decided between two calls of [`render_with_progress`]'s callback.
const RENDER_STEP: u64 = 2_048;

/// Decides and writes a parsed chunk.
pub fn render(
    items: &[Item],
    profiles: &HashMap<E164, Profile>,
    spec: RenderSpec<'_>,
) -> ChunkOutput {
    render_with_progress(items, profiles, spec, &mut |_| {})
}

/// [`render`], telling `progress` every [`RENDER_STEP`] rows how many it has decided.
pub fn render_with_progress(
    items: &[Item],
    profiles: &HashMap<E164, Profile>,
    spec: RenderSpec<'_>,
    progress: &mut dyn FnMut(u64),
) -> ChunkOutput {
    let mut out = ChunkOutput::default();
    // Result fields are digits, fixed vocabulary and region codes: nothing needs quoting, so
    // rows are written directly. Rejected lines are user text and go through the CSV writer.
    let mut rows: Vec<u8> = Vec::with_capacity(items.len() * 80);
    let mut rejected = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut counts = Counts::default();
    let s = &mut out.summary;
    let mut line_buf = itoa::Buffer::new();
    for item in items {
        match item {
            Item::Number { line, checked } => {
                s.success += 1;
                if s.success % RENDER_STEP == 0 {
                    progress(s.success);
                }
                if checked.valid {
                    s.valid += 1;
                } else {
                    s.invalid += 1;
                }
                let line_type = checked.line_type.as_str();
                *counts.by_line_type.entry(line_type).or_default() += 1;
                *counts.by_region.entry(checked.region).or_default() += 1;
                push_e164(&mut rows, checked.e164);
                match spec.task_type {
                    TaskType::ActiveCheck => {
                        let letters = checked.region.map(|r| r.letters());
                        let v = spec.policy.decide_with_floor(
                            checked.valid,
                            letters.as_ref().and_then(|l| std::str::from_utf8(l).ok()),
                            profiles.get(&checked.e164),
                            spec.as_of_ms,
                            spec.options
                                .min_confidence
                                .unwrap_or(spec.policy.min_confidence),
                        );
                        *counts.by_status.entry(v.status.as_str()).or_default() += 1;
                        *counts.by_reason.entry(v.reason.as_str()).or_default() += 1;
                        if v.possibly_reassigned {
                            s.possibly_reassigned += 1;
                        }
                        rows.push(b',');
                        rows.extend_from_slice(v.status.as_str().as_bytes());
                        if spec.options.columns == Columns::Full {
                            rows.push(b',');
                            rows.extend_from_slice(v.reason.as_str().as_bytes());
                            rows.push(b',');
                            rows.extend_from_slice(confidence(v.confidence).as_bytes());
                            rows.push(b',');
                            if let Some(ms) = v.last_activity_ms {
                                rows.extend_from_slice(time_secs(ms).as_bytes());
                            }
                            rows.push(b',');
                            rows.extend_from_slice(line_type.as_bytes());
                            rows.push(b',');
                            if let Some(r) = checked.region {
                                rows.extend_from_slice(r.as_str().as_bytes());
                            }
                            rows.extend_from_slice(if v.possibly_reassigned {
                                b",true,"
                            } else {
                                b",false,"
                            });
                            rows.extend_from_slice(line_buf.format(*line).as_bytes());
                        }
                    }
                    TaskType::NumberInfo => {
                        let valid = if checked.valid { "true" } else { "false" };
                        *counts
                            .by_status
                            .entry(if checked.valid { "valid" } else { "invalid" })
                            .or_default() += 1;
                        rows.push(b',');
                        rows.extend_from_slice(valid.as_bytes());
                        if spec.options.columns == Columns::Full {
                            let f = spec.plan.formats(checked.e164);
                            let cc = f
                                .as_ref()
                                .map(|f| f.country_code.to_string())
                                .unwrap_or_default();
                            let region = checked.region.map(|r| r.as_str()).unwrap_or_default();
                            for field in [
                                line_type,
                                region.as_str(),
                                cc.as_str(),
                                f.as_ref().map(|f| f.national.as_str()).unwrap_or_default(),
                                f.as_ref()
                                    .map(|f| f.international.as_str())
                                    .unwrap_or_default(),
                            ] {
                                rows.push(b',');
                                rows.extend_from_slice(field.as_bytes());
                            }
                            rows.push(b',');
                            rows.extend_from_slice(line_buf.format(*line).as_bytes());
                        }
                    }
                }
                rows.push(b'\n');
            }
            Item::Failure { line, text, error } => {
                s.failure += 1;
                *counts.failures.entry(error.code()).or_default() += 1;
                // Keep spreadsheets from running a rejected line as a formula.
                let shown = spreadsheet_safe(text);
                // Writing into a Vec cannot fail.
                let _ = rejected.write_record([line.to_string().as_str(), &shown, error.code()]);
            }
        }
    }
    counts.into_summary(s);
    out.rows = rows;
    out.rejected = rejected.into_inner().unwrap_or_default();
    out.numbers = numbers(items)
        .iter()
        .flat_map(|n| n.as_u64().to_le_bytes())
        .collect();
    out
}

/// A cell of text that numcheck did not produce (a user's line, as echoed in `rejected.csv`),
/// made safe to open in a spreadsheet: one that starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return, which spreadsheets may run as a formula (OWASP "CSV Injection"), gets a
/// leading `'`, which they show as text. Every output that echoes such text goes through here.
pub fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numcheck_core::{EvidenceClass, EvidenceKind, Observation};

    #[test]
    fn echoed_text_cannot_start_a_formula() {
        for (text, shown) in [
            ("=1+2", "'=1+2"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("hello", "hello"),
            ("0049 30 1", "0049 30 1"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(text), shown, "{text:?}");
        }
    }

    fn spec(policy: &Policy, task_type: TaskType, columns: Columns) -> RenderSpec<'_> {
        RenderSpec {
            task_type,
            options: TaskOptions {
                columns,
                xlsx: false,
                lookup: None,
                min_confidence: None,
            },
            policy,
            plan: &NumberingPlan,
            as_of_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn rendering_tells_how_far_it_has_got_and_writes_the_same() {
        let data: String = (0..5_000)
            .map(|i| format!("+1415555{:04}\n", i % 10_000))
            .collect();
        let items = parse(&NumberingPlan, data.as_bytes(), 0, 1, None);
        let policy = Policy::default();
        let s = spec(&policy, TaskType::ActiveCheck, Columns::Full);
        let mut told = Vec::new();
        let out = render_with_progress(&items, &HashMap::new(), s, &mut |n| told.push(n));
        assert_eq!(told, [2_048, 4_096]);
        assert_eq!(out, render(&items, &HashMap::new(), s));
    }

    #[test]
    fn rows_keep_input_order_and_failures_go_to_rejected() {
        let data = b"+14155552671\n\nnot a number\n+4400000000\r\n=cmd|x\n+14155552671";
        let items = parse(&NumberingPlan, data, 0, 1, None);
        let policy = Policy::default();
        let out = render(
            &items,
            &HashMap::new(),
            spec(&policy, TaskType::ActiveCheck, Columns::Full),
        );
        let rows = String::from_utf8(out.rows).unwrap();
        assert_eq!(
            rows,
            "+14155552671,unknown,no_evidence,0.500,,fixed_line_or_mobile,US,false,1\n\
             +440000000,inactive,invalid_number,1.000,,unknown,,false,4\n\
             +14155552671,unknown,no_evidence,0.500,,fixed_line_or_mobile,US,false,6\n"
        );
        let rejected = String::from_utf8(out.rejected).unwrap();
        assert_eq!(
            rejected,
            "3,not a number,not_a_number\n5,'=cmd|x,not_a_number\n"
        );
        assert_eq!((out.summary.success, out.summary.failure), (3, 2));
        assert_eq!(out.summary.by_status["unknown"], 2);
        assert_eq!(out.summary.by_reason["invalid_number"], 1);
        assert_eq!(out.summary.failures_by_reason["not_a_number"], 2);
        let nums: Vec<u64> = out
            .numbers
            .chunks(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(nums, vec![440_000_000, 14_155_552_671]);
    }

    #[test]
    fn evidence_turns_into_verdict_columns() {
        let policy = Policy::default();
        let n: E164 = "+14155552671".parse().unwrap();
        let delivered = Observation {
            number: n,
            observed_at_ms: 1_800_000_000_000 - 86_400_000,
            source: "smsc".into(),
            kind: EvidenceKind::SmsDlr,
            raw_code: "DELIVRD".into(),
            class: EvidenceClass::StrongActive,
            weight: 1.0,
            message_id: None,
        };
        let profiles = HashMap::from([(n, Profile::of(&delivered))]);
        let items = parse(&NumberingPlan, b"+1 415 555 2671\n", 0, 1, None);
        let full = format!(
            "+14155552671,active,recent_activity,{},2027-01-14T08:00:00Z,fixed_line_or_mobile,US,false,1\n",
            confidence(
                policy
                    .decide(true, Some("US"), profiles.get(&n), 1_800_000_000_000)
                    .confidence
            )
        );
        for (columns, want) in [
            (Columns::Full, full.as_str()),
            (Columns::Basic, "+14155552671,active\n"),
        ] {
            let out = render(
                &items,
                &profiles,
                spec(&policy, TaskType::ActiveCheck, columns),
            );
            assert_eq!(String::from_utf8(out.rows).unwrap(), want);
        }
    }

    #[test]
    fn number_info_writes_formats() {
        let policy = Policy::default();
        let items = parse(
            &NumberingPlan,
            b"030 901820\n",
            0,
            1,
            Some("DE".parse().unwrap()),
        );
        let out = render(
            &items,
            &HashMap::new(),
            spec(&policy, TaskType::NumberInfo, Columns::Full),
        );
        assert_eq!(
            String::from_utf8(out.rows).unwrap(),
            "+4930901820,true,fixed_line,DE,49,030 901820,+49 30 901820,1\n"
        );
        assert_eq!(out.summary.by_status["valid"], 1);
    }

    #[test]
    fn summaries_add_up() {
        let mut a = Summary {
            success: 2,
            ..Summary::default()
        };
        a.by_status.insert("active".into(), 2);
        let mut b = Summary {
            success: 1,
            ..Summary::default()
        };
        b.by_status.insert("active".into(), 1);
        b.by_status.insert("unknown".into(), 1);
        a.add(&b);
        assert_eq!(a.success, 3);
        assert_eq!(a.by_status["active"], 3);
        assert_eq!(a.by_status["unknown"], 1);
    }
}
