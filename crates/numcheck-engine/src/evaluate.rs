//! Measuring verdicts against the truth (`numcheck evaluate`): a truth file
//! (`number,truth[,holder_changed]`) and a result's rows give precision and recall per verdict,
//! the share of numbers decided, how well `Confidence` holds up as a probability (the expected
//! calibration error, with a reliability table), and how well `PossiblyReassigned` finds the
//! numbers whose holder changed. `docs/accuracy.md` says what each figure means.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use numcheck_core::calibration::{Calibration, Curve};
use numcheck_core::{E164, NumberingPlan};
use serde::Serialize;

/// Bins of the reliability table (equal width over 0–1).
pub const BINS: usize = 10;

/// The truth about one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub active: bool,
    /// `None` when the truth file does not say.
    pub holder_changed: Option<bool>,
}

/// Reads a truth file: an optional header `number,truth[,holder_changed]`, then one number a
/// line with `active` or `inactive` and, optionally, `true`/`false`. Every mistake is reported
/// with its line number; a number given twice is a mistake.
pub fn read_truth(text: &str) -> anyhow::Result<HashMap<E164, Label>> {
    let mut out = HashMap::new();
    let mut first_line = HashMap::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if line_no == 1
            && fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case("number"))
        {
            continue;
        }
        match read_label(&fields) {
            Ok((number, label)) => match first_line.get(&number) {
                Some(first) => problems.push(format!(
                    "line {line_no}: {number} is already on line {first}"
                )),
                None => {
                    first_line.insert(number, line_no);
                    out.insert(number, label);
                }
            },
            Err(e) => problems.push(format!("line {line_no}: {e}")),
        }
        if problems.len() >= 20 {
            problems.push("… (stopped after 20 problems)".into());
            break;
        }
    }
    if !problems.is_empty() {
        bail!("the truth file has mistakes:\n{}", problems.join("\n"));
    }
    if out.is_empty() {
        bail!("the truth file holds no numbers");
    }
    Ok(out)
}

fn read_label(fields: &[&str]) -> Result<(E164, Label), String> {
    let number_text = fields.first().copied().unwrap_or_default();
    if number_text.is_empty() {
        return Err("the number is missing".into());
    }
    let number = NumberingPlan
        .parse_line(number_text.as_bytes(), None)
        .map_err(|e| format!("{number_text:?} is not a number in international form ({e})"))?;
    let active = match fields.get(1).map(|t| t.to_ascii_lowercase()).as_deref() {
        Some("active") => true,
        Some("inactive") => false,
        Some("") | None => return Err("the truth is missing: active or inactive".into()),
        Some(other) => return Err(format!("{other:?} is not a truth: active or inactive")),
    };
    let holder_changed = match fields.get(2).map(|t| t.to_ascii_lowercase()).as_deref() {
        None | Some("") => None,
        Some("true" | "1" | "yes") => Some(true),
        Some("false" | "0" | "no") => Some(false),
        Some(other) => return Err(format!("holder_changed {other:?} is not true or false")),
    };
    Ok((
        number,
        Label {
            active,
            holder_changed,
        },
    ))
}

/// One row of a result, as far as evaluation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// `active`, `inactive` or `unknown`.
    pub status: String,
    pub reason: Option<String>,
    pub confidence: Option<f64>,
    pub reassigned: Option<bool>,
}

/// Reads the result rows of a result zip (its `<task>.csv`).
pub fn read_result_zip(path: &Path) -> anyhow::Result<HashMap<E164, Scored>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a result zip", path.display()))?;
    let mut name = None;
    for i in 0..zip.len() {
        let entry = zip.by_index(i)?;
        let n = entry.name()?.into_owned();
        if n.ends_with(".csv") && n != "rejected.csv" {
            name = Some(n);
            break;
        }
    }
    let name = name.with_context(|| format!("{} holds no result CSV", path.display()))?;
    let mut text = String::new();
    zip.by_name(&name)?.read_to_string(&mut text)?;
    read_result_csv(&text).with_context(|| format!("{name} in {}", path.display()))
}

/// Reads result rows from a result CSV (the `Number` and `ActiveStatus` columns, and
/// `Reason`, `Confidence`, `PossiblyReassigned` when present).
pub fn read_result_csv(text: &str) -> anyhow::Result<HashMap<E164, Scored>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(number), Some(status)) = (col("Number"), col("ActiveStatus")) else {
        bail!("the result has no Number and ActiveStatus columns: is it an active_check result?");
    };
    let (reason, confidence, reassigned) =
        (col("Reason"), col("Confidence"), col("PossiblyReassigned"));
    let mut out = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("row {}", i + 2))?;
        let get = |c: Option<usize>| c.and_then(|c| row.get(c)).filter(|v| !v.is_empty());
        let Some(n) =
            get(Some(number)).and_then(|t| NumberingPlan.parse_line(t.as_bytes(), None).ok())
        else {
            continue;
        };
        out.insert(
            n,
            Scored {
                status: get(Some(status)).unwrap_or("unknown").to_ascii_lowercase(),
                reason: get(reason).map(str::to_owned),
                confidence: get(confidence).and_then(|v| v.parse().ok()),
                reassigned: get(reassigned).map(|v| v.eq_ignore_ascii_case("true")),
            },
        );
    }
    Ok(out)
}

/// Reads a truth file ([`read_truth`]), naming the file in any error.
pub fn read_truth_file(path: &Path) -> anyhow::Result<HashMap<E164, Label>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_truth(&text).with_context(|| path.display().to_string())
}

/// Fits the calibration from a result checked with raw scores (no calibration, no floor):
/// per side, each `active` or `inactive` row's confidence against whether the truth agrees.
/// `source` names the labels in the file's `fitted_on`.
pub fn fit_calibration(
    truth: &HashMap<E164, Label>,
    result: &HashMap<E164, Scored>,
    source: &str,
) -> anyhow::Result<Calibration> {
    let (mut active, mut inactive) = (Vec::new(), Vec::new());
    for (number, row) in result {
        let (Some(label), Some(score)) = (truth.get(number), row.confidence) else {
            continue;
        };
        if row.reason.as_deref() == Some("invalid_number") {
            continue;
        }
        match row.status.as_str() {
            "active" => active.push((score, label.active)),
            "inactive" => inactive.push((score, !label.active)),
            _ => {}
        }
    }
    let fit = |points: &[(f64, bool)], side: &str| {
        Curve::fit(points).with_context(|| {
            format!(
                "no {side} verdicts among the labelled numbers: nothing to fit the {side} curve on"
            )
        })
    };
    Ok(Calibration {
        fitted_on: format!(
            "{} active and {} inactive verdicts of {} labelled numbers ({source})",
            active.len(),
            inactive.len(),
            truth.len(),
        ),
        active: fit(&active, "active")?,
        inactive: fit(&inactive, "inactive")?,
    })
}

/// Precision and recall of one verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerdictScore {
    /// Rows with this verdict.
    pub predicted: usize,
    /// Of them, right.
    pub right: usize,
    /// Numbers whose truth is this verdict.
    pub actual: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// One bin of the reliability table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub rows: usize,
    pub mean_confidence: Option<f64>,
    pub share_right: Option<f64>,
}

/// How well `PossiblyReassigned` finds changed holders.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlagScore {
    /// Numbers whose holder changed (per the truth file).
    pub changed: usize,
    /// Numbers flagged.
    pub flagged: usize,
    /// Flagged and changed.
    pub found: usize,
    pub recall: Option<f64>,
    /// Flags on numbers whose holder did not change, as a share of the flags.
    pub false_flag_share: Option<f64>,
    /// The same, as a share of the numbers whose holder did not change.
    pub false_flag_rate: Option<f64>,
}

/// Everything `evaluate` measures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// Numbers in the truth file.
    pub truth_numbers: usize,
    /// Of them, with a row in the result.
    pub scored: usize,
    /// Truth numbers the result has no row for (not scored).
    pub missing_from_result: usize,
    pub active: VerdictScore,
    pub inactive: VerdictScore,
    /// Rows left `unknown`.
    pub unknown: usize,
    /// Rows with any evidence (reason other than `no_evidence`).
    pub with_evidence: usize,
    /// Share of the rows with evidence that are `active` or `inactive`.
    pub decided_with_evidence: Option<f64>,
    /// Share of all scored rows that are `active` or `inactive`.
    pub decided: Option<f64>,
    /// Expected calibration error of `Confidence` over the decided rows ([`BINS`] equal bins).
    pub calibration_error: Option<f64>,
    pub reliability: Vec<Bin>,
    pub reassigned: FlagScore,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Scores a result against the truth.
pub fn evaluate(truth: &HashMap<E164, Label>, result: &HashMap<E164, Scored>) -> Evaluation {
    let mut e = Evaluation {
        truth_numbers: truth.len(),
        ..Evaluation::default()
    };
    let mut bins: Vec<(usize, f64, usize)> = vec![(0, 0.0, 0); BINS];
    let mut not_changed = 0;
    let mut decided_with_evidence = 0;
    for (number, label) in truth {
        let Some(row) = result.get(number) else {
            e.missing_from_result += 1;
            continue;
        };
        e.scored += 1;
        if label.active {
            e.active.actual += 1;
        } else {
            e.inactive.actual += 1;
        }
        let evidence = row.reason.as_deref() != Some("no_evidence");
        e.with_evidence += usize::from(evidence);
        decided_with_evidence += usize::from(evidence && row.status != "unknown");
        let decided = match row.status.as_str() {
            "active" => Some((&mut e.active, label.active)),
            "inactive" => Some((&mut e.inactive, !label.active)),
            _ => None,
        };
        match decided {
            Some((score, right)) => {
                score.predicted += 1;
                score.right += usize::from(right);
                if let Some(c) = row.confidence.filter(|c| c.is_finite()) {
                    let c = c.clamp(0.0, 1.0);
                    let bin = ((c * BINS as f64) as usize).min(BINS - 1);
                    bins[bin].0 += 1;
                    bins[bin].1 += c;
                    bins[bin].2 += usize::from(right);
                }
            }
            None => e.unknown += 1,
        }
        if let Some(changed) = label.holder_changed {
            let flagged = row.reassigned == Some(true);
            e.reassigned.flagged += usize::from(flagged);
            if changed {
                e.reassigned.changed += 1;
                e.reassigned.found += usize::from(flagged);
            } else {
                not_changed += 1;
            }
        }
    }
    for s in [&mut e.active, &mut e.inactive] {
        s.precision = ratio(s.right, s.predicted);
        s.recall = ratio(s.right, s.actual);
    }
    let decided = e.active.predicted + e.inactive.predicted;
    e.decided_with_evidence = ratio(decided_with_evidence, e.with_evidence);
    e.decided = ratio(decided, e.scored);
    let rows: usize = bins.iter().map(|b| b.0).sum();
    if rows > 0 {
        let mut ece = 0.0;
        for (i, (n, sum_c, right)) in bins.iter().enumerate() {
            let (mean, share) = if *n > 0 {
                let (mean, share) = (sum_c / *n as f64, *right as f64 / *n as f64);
                ece += *n as f64 / rows as f64 * (mean - share).abs();
                (Some(mean), Some(share))
            } else {
                (None, None)
            };
            e.reliability.push(Bin {
                low: i as f64 / BINS as f64,
                high: (i + 1) as f64 / BINS as f64,
                rows: *n,
                mean_confidence: mean,
                share_right: share,
            });
        }
        e.calibration_error = Some(ece);
    }
    let r = &mut e.reassigned;
    r.recall = ratio(r.found, r.changed);
    r.false_flag_share = ratio(r.flagged - r.found, r.flagged);
    r.false_flag_rate = ratio(r.flagged - r.found, not_changed);
    e
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
}

impl Evaluation {
    /// The evaluation as text for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "numbers: {} in the truth file, {} scored, {} not in the result",
            self.truth_numbers, self.scored, self.missing_from_result
        ));
        line(String::new());
        line("verdict    rows  right  precision  recall".into());
        for (name, s) in [("active", &self.active), ("inactive", &self.inactive)] {
            line(format!(
                "{name:<9} {:>5}  {:>5}  {:>9}  {:>6}",
                s.predicted,
                s.right,
                pct(s.precision),
                pct(s.recall)
            ));
        }
        line(format!("unknown   {:>5}", self.unknown));
        line(String::new());
        line(format!(
            "decided: {} of the numbers with evidence ({}), {} of all",
            pct(self.decided_with_evidence),
            self.with_evidence,
            pct(self.decided)
        ));
        line(format!(
            "calibration error of Confidence (decided rows, {BINS} bins): {}",
            pct(self.calibration_error)
        ));
        if !self.reliability.is_empty() {
            line("  confidence    rows  mean conf  share right".into());
            for b in self.reliability.iter().filter(|b| b.rows > 0) {
                line(format!(
                    "  {:.1}–{:.1}   {:>6}  {:>9}  {:>11}",
                    b.low,
                    b.high,
                    b.rows,
                    pct(b.mean_confidence),
                    pct(b.share_right)
                ));
            }
        }
        let r = &self.reassigned;
        if r.changed > 0 || r.flagged > 0 {
            line(format!(
                "PossiblyReassigned: recall {} ({} of {} changed holders), false flags {} of the flags ({} of the unchanged)",
                pct(r.recall),
                r.found,
                r.changed,
                pct(r.false_flag_share),
                pct(r.false_flag_rate)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> E164 {
        NumberingPlan
            .parse_line(s.as_bytes(), None)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn truth_file_mistakes_are_named_by_line() {
        let text = "number,truth,holder_changed\n+14155552671,active,false\n+14155552672,alive\n\
                    ,active\n+14155552671,inactive\n+14155552673,inactive,maybe\n";
        let e = read_truth(text).unwrap_err().to_string();
        for wanted in [
            "line 3: \"alive\" is not a truth",
            "line 4: the number is missing",
            "line 5: +14155552671 is already on line 2",
            "line 6: holder_changed \"maybe\"",
        ] {
            assert!(e.contains(wanted), "{wanted} in {e}");
        }
        assert!(read_truth("number,truth\n").is_err());
    }

    #[test]
    fn precision_recall_calibration_and_flags_are_counted() {
        let truth = read_truth(
            "+14155552671,active,false\n+14155552672,active,true\n+14155552673,inactive\n\
             +14155552674,inactive,false\n+14155552675,active,false\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let result = read_result_csv(
            "Number,ActiveStatus,Reason,Confidence,LastActivity,LineType,Region,PossiblyReassigned,Line\n\
             +14155552671,active,recent_activity,0.95,,,,false,1\n\
             +14155552672,active,recent_activity,0.85,,,,true,2\n\
             +14155552673,inactive,disconnected,0.95,,,,false,3\n\
             +14155552674,active,recent_activity,0.85,,,,true,4\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = evaluate(&truth, &result);
        assert_eq!(
            (e.truth_numbers, e.scored, e.missing_from_result),
            (5, 4, 1)
        );
        assert_eq!(
            (e.active.predicted, e.active.right, e.active.actual),
            (3, 2, 2)
        );
        assert_eq!(e.inactive.precision, Some(1.0));
        assert_eq!(e.inactive.recall, Some(0.5));
        // Bin 0.9: two rows at 0.95, both right; bin 0.8: two at 0.85, one right.
        let ece = e.calibration_error.unwrap_or_default();
        assert!((ece - (0.5 * 0.05 + 0.5 * 0.35)).abs() < 1e-9, "{ece}");
        assert_eq!(
            (
                e.reassigned.changed,
                e.reassigned.flagged,
                e.reassigned.found
            ),
            (1, 2, 1)
        );
        assert_eq!(e.reassigned.recall, Some(1.0));
        assert_eq!(e.reassigned.false_flag_share, Some(0.5));
        assert!(e.to_text().contains("PossiblyReassigned: recall 1.000"));
        assert_eq!(n("+14155552671"), n("+1 415 555 2671"));
    }
}
