//! Code tables: which [`EvidenceClass`] a raw code means, per [`EvidenceKind`].
//!
//! Tables are data (`kind,raw_code,class,meaning` CSV). The generic table ships in the binary;
//! connectors and operators layer their own over it. Codes compare case-insensitively; a
//! `*` row is the kind's default for codes it does not list.

use std::collections::HashMap;

use crate::evidence::{EvidenceClass, EvidenceKind};

/// The generic table shipped with numcheck.
pub const GENERIC_CSV: &str = include_str!("../codes/generic.csv");

/// A code table.
#[derive(Debug, Clone, Default)]
pub struct CodeTable {
    entries: HashMap<(EvidenceKind, String), EvidenceClass>,
}

/// A table row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code table line {line}: {reason}")]
pub struct TableError {
    pub line: usize,
    pub reason: String,
}

impl CodeTable {
    /// The generic table.
    pub fn generic() -> CodeTable {
        // The shipped table is checked by a unit test; an error here is a build defect.
        CodeTable::parse(GENERIC_CSV).unwrap_or_default()
    }

    /// Reads a table: a header line, then `kind,raw_code,class[,meaning]`; `#` lines and
    /// blank lines are skipped.
    pub fn parse(text: &str) -> Result<CodeTable, TableError> {
        let mut table = CodeTable::default();
        for (line_no, trimmed) in table_rows(text, |first| first.starts_with("kind,")) {
            let mut fields = trimmed.splitn(4, ',');
            let (Some(kind), Some(code), Some(class)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(TableError {
                    line: line_no,
                    reason: "expected kind,raw_code,class".into(),
                });
            };
            let err = |reason: String| TableError {
                line: line_no,
                reason,
            };
            let kind: EvidenceKind = kind.parse().map_err(err)?;
            let class: EvidenceClass = class.parse().map_err(err)?;
            let code = code.trim();
            if code.is_empty() {
                return Err(err("empty raw_code".into()));
            }
            table
                .entries
                .insert((kind, code.to_ascii_uppercase()), class);
        }
        Ok(table)
    }

    /// Layers `other` over this table: its rows win.
    pub fn overlay(&mut self, other: &CodeTable) {
        for (k, v) in &other.entries {
            self.entries.insert(k.clone(), *v);
        }
    }

    /// The class of a raw code, if the table knows it.
    pub fn classify(&self, kind: EvidenceKind, raw_code: &str) -> Option<EvidenceClass> {
        let code = raw_code.trim().to_ascii_uppercase();
        self.entries
            .get(&(kind, code))
            .or_else(|| self.entries.get(&(kind, "*".to_owned())))
            .copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The rows of a table's CSV text, trimmed, with their 1-based line numbers: blank lines and
/// `#` lines are skipped, and so is the first other line when `is_header` says it is one.
pub(crate) fn table_rows<'a>(
    text: &'a str,
    is_header: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    let mut first = true;
    text.lines().enumerate().filter_map(move |(i, line)| {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        if std::mem::take(&mut first) && is_header(trimmed) {
            return None;
        }
        Some((i + 1, trimmed))
    })
}

/// Whether a code is a final state. Non-final delivery states (`ACCEPTD`, `ENROUTE`, …)
/// are not evidence: only the final receipt of a message counts.
pub fn is_final(kind: EvidenceKind, raw_code: &str) -> bool {
    let code = raw_code.trim().to_ascii_uppercase();
    !(kind == EvidenceKind::SmsDlr
        && matches!(
            code.as_str(),
            "ACCEPTD" | "ACCEPTED" | "ENROUTE" | "SENT" | "BUFFERED" | "QUEUED" | "SCHEDULED"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_generic_table_parses() {
        let t = CodeTable::parse(GENERIC_CSV).unwrap();
        assert!(t.len() > 40);
    }

    #[test]
    fn codes_are_case_insensitive_and_star_is_the_kinds_default() {
        use EvidenceClass::{StrongActive, StrongInactive, WeakInactive};
        use EvidenceKind::{Call, Deactivation, Hlr, SmsDlr};
        let t = CodeTable::generic();
        for (kind, code, class) in [
            (SmsDlr, "delivrd", Some(StrongActive)),
            (SmsDlr, " EXPIRED ", Some(WeakInactive)),
            (Call, "404", Some(StrongInactive)),
            (Deactivation, "anything", Some(StrongInactive)),
            (SmsDlr, "NOPE", None),
            // Codes are per kind.
            (Hlr, "DELIVRD", None),
        ] {
            assert_eq!(t.classify(kind, code), class, "{kind} {code:?}");
        }
    }

    #[test]
    fn an_overlay_wins_and_bad_rows_name_their_line() {
        let mut t = CodeTable::generic();
        let own = CodeTable::parse("kind,raw_code,class\nsms_dlr,EXPIRED,neutral\n").unwrap();
        t.overlay(&own);
        assert_eq!(
            t.classify(EvidenceKind::SmsDlr, "EXPIRED"),
            Some(EvidenceClass::Neutral)
        );
        let err = CodeTable::parse("kind,raw_code,class\nsms_dlr,X,loud\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = CodeTable::parse("kind,raw_code,class\nfax,X,neutral\n").unwrap_err();
        assert!(err.reason.contains("sms_dlr"));
    }
}
