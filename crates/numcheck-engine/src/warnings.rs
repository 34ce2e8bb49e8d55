//! Warnings: what most likely went wrong with a task, when most of its lines failed for one
//! fixable reason or no number had any evidence, as a stable code and a sentence that says
//! what to do. They go into `summary.json` (so into `GET /v1/tasks/{id}`), and the CLI prints
//! them; `gettasks` keeps the original service's fields and does not carry them.

use serde::{Deserialize, Serialize};

use crate::pipeline::Summary;

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Warning {
    /// `national_numbers_without_region`, `most_lines_rejected`, `file_name_sent_as_text` or
    /// `no_evidence`.
    pub code: String,
    pub message: String,
}

/// The warnings a task's counts call for. `total` is its non-blank lines.
pub fn of_summary(summary: &Summary, total: u64) -> Vec<Warning> {
    of_task(summary, total, None)
}

/// The same, knowing the text of a task of one refused line: a file's name sent as the
/// text of the form field (`curl -F file=numbers.txt`, without the `@`) says so.
pub fn of_task(summary: &Summary, total: u64, only_line: Option<&str>) -> Vec<Warning> {
    if let Some(name) = only_line.filter(|l| total == 1 && looks_like_a_file_name(l)) {
        return vec![Warning {
            code: "file_name_sent_as_text".into(),
            message: format!(
                "the upload is the text {name:?}, not a file: to send the file, put an @ \
                 before its path (curl -F file=@{name})"
            ),
        }];
    }
    let mut out = Vec::new();
    let most = |n: u64| n > 0 && n * 2 > total;
    let national = summary
        .failures_by_reason
        .get("national_without_region")
        .copied()
        .unwrap_or(0);
    if most(national) {
        out.push(Warning {
            code: "national_numbers_without_region".into(),
            message: format!(
                "{national} of {total} lines are national numbers (without a + and country \
                 code) and no region was given: give the country they are written in (form \
                 field `default_region`, CLI `--region`, e.g. DE) or write them with their country code"
            ),
        });
    } else if let Some((reason, &n)) = summary
        .failures_by_reason
        .iter()
        .max_by_key(|(_, n)| **n)
        .filter(|(_, n)| most(**n))
    {
        out.push(Warning {
            code: "most_lines_rejected".into(),
            message: format!(
                "{n} of {total} lines were refused as `{reason}`: rejected.csv in the result \
                 lists each with its line number"
            ),
        });
    }
    let no_evidence = summary.by_reason.get("no_evidence").copied().unwrap_or(0);
    if summary.success > 0 && no_evidence == summary.success {
        out.push(Warning {
            code: "no_evidence".into(),
            message: format!(
                "none of the {no_evidence} numbers has any evidence in this installation, so \
                 every verdict is `unknown`: feed it delivery receipts, call records or \
                 deactivation lists (docs/evidence.md), or load sample data with `numcheck demo`"
            ),
        });
    }
    out
}

/// A path or name ending in an extension of the files numcheck reads.
fn looks_like_a_file_name(line: &str) -> bool {
    let line = line.trim().trim_matches('"');
    let Some((stem, ext)) = line.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && line.len() <= 255
        && !line.contains(char::is_control)
        && ["txt", "csv", "tsv", "tab", "xlsx", "xlsm", "xls"]
            .contains(&ext.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(success: u64, failures: &[(&str, u64)], reasons: &[(&str, u64)]) -> Summary {
        Summary {
            success,
            failure: failures.iter().map(|(_, n)| n).sum(),
            failures_by_reason: failures.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            by_reason: reasons.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            ..Summary::default()
        }
    }

    fn codes(w: &[Warning]) -> Vec<&str> {
        w.iter().map(|w| w.code.as_str()).collect()
    }

    #[test]
    fn national_numbers_without_a_region_are_named_when_they_are_most_lines() {
        let s = summary(1, &[("national_without_region", 3)], &[("active", 1)]);
        let w = of_summary(&s, 4);
        assert_eq!(codes(&w), ["national_numbers_without_region"]);
        assert!(w[0].message.starts_with("3 of 4 lines"), "{}", w[0].message);
        // Half or fewer: no warning.
        let s = summary(2, &[("national_without_region", 2)], &[("active", 2)]);
        assert!(of_summary(&s, 4).is_empty());
    }

    #[test]
    fn a_file_name_sent_as_text_is_named() {
        let s = summary(0, &[("not_a_number", 1)], &[]);
        for name in ["numbers.txt", "./leads.CSV", "\"data/book.xlsx\""] {
            let w = of_task(&s, 1, Some(name));
            assert_eq!(codes(&w), ["file_name_sent_as_text"], "{name}");
            assert!(w[0].message.contains("curl -F file=@"), "{}", w[0].message);
        }
        for text in ["hello", "+1 415 555", ".csv", "numbers.txt.bak"] {
            assert_eq!(
                codes(&of_task(&s, 1, Some(text))),
                ["most_lines_rejected"],
                "{text}"
            );
        }
    }

    #[test]
    fn another_reason_for_most_lines_is_named_too() {
        let s = summary(0, &[("not_a_number", 1)], &[]);
        let w = of_summary(&s, 1);
        assert_eq!(codes(&w), ["most_lines_rejected"]);
        assert!(w[0].message.contains("`not_a_number`"), "{}", w[0].message);
    }

    #[test]
    fn verdicts_that_all_lack_evidence_point_to_the_demo_and_the_feeds() {
        let s = summary(5, &[], &[("no_evidence", 5)]);
        let w = of_summary(&s, 5);
        assert_eq!(codes(&w), ["no_evidence"]);
        assert!(w[0].message.contains("numcheck demo"));
        // One number with evidence: no warning.
        let s = summary(5, &[], &[("no_evidence", 4), ("delivered_recently", 1)]);
        assert!(of_summary(&s, 5).is_empty());
        // Nothing decided at all: the rejection warning says it.
        let s = summary(0, &[("national_without_region", 3)], &[]);
        assert_eq!(
            codes(&of_summary(&s, 3)),
            ["national_numbers_without_region"]
        );
    }
}
