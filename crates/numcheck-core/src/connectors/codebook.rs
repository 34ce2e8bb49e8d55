//! Named code tables (`code,class,meaning` CSV files under `crates/numcheck-core/codes/`),
//! shipped in the binary and overridable per table from config, and the step that turns a
//! connector's [`Event`] into an [`Observation`].

use std::collections::HashMap;

use super::{Code, Event};
use crate::codes::{TableError, table_rows};
use crate::evidence::{EvidenceClass, EvidenceKind, Observation};
use crate::evidence_rows::{Row, RowError};
use crate::plan::{NumberingPlan, RegionCode};

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        /// Every shipped table: its name and its CSV text.
        pub const SHIPPED: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../codes/", $name, ".csv"))),)*
        ];
    };
}

shipped!(
    "smpp_stat",
    "map",
    "twilio_smpp",
    "kannel_dlr",
    "twilio_status",
    "twilio_error",
    "vonage_status",
    "vonage_error",
    "infobip_status",
    "infobip_error",
    "sip",
    "q850",
    "asterisk_dialstatus",
    "asterisk_disposition",
    "hlr_connectivity",
    "hlr_live",
    "reassigned",
    "deactivation",
    "osmo_hlr",
);

/// The `err:` table a connector uses when config names none.
pub const DEFAULT_ERR_TABLE: &str = "map";

/// One table: upper-cased code → class. A `*` row is the table's default.
pub type Table = HashMap<String, EvidenceClass>;

/// All tables by name.
#[derive(Debug, Clone, Default)]
pub struct CodeBook {
    tables: HashMap<String, Table>,
}

/// Reads a table: an optional `code,class[,meaning]` header, then rows. `#` lines and blank
/// lines are skipped; a meaning may contain commas.
pub fn parse_table(text: &str) -> Result<Table, TableError> {
    let mut table = Table::new();
    let is_header = |first: &str| first.to_ascii_lowercase().starts_with("code,");
    for (line_no, trimmed) in table_rows(text, is_header) {
        let err = |reason: String| TableError {
            line: line_no,
            reason,
        };
        let mut fields = trimmed.splitn(3, ',');
        let (Some(code), Some(class)) = (fields.next(), fields.next()) else {
            return Err(err("expected code,class[,meaning]".into()));
        };
        let code = code.trim();
        if code.is_empty() {
            return Err(err("empty code".into()));
        }
        let class: EvidenceClass = class.trim().parse().map_err(err)?;
        if table.insert(code.to_ascii_uppercase(), class).is_some() {
            return Err(err(format!("code {code:?} is listed twice")));
        }
    }
    Ok(table)
}

impl CodeBook {
    /// The shipped tables. They are checked by tests; a table that does not parse here is a
    /// build defect and is left out rather than taking the process down.
    pub fn shipped() -> CodeBook {
        let mut book = CodeBook::default();
        for (name, text) in SHIPPED {
            if let Ok(t) = parse_table(text) {
                book.tables.insert((*name).to_owned(), t);
            }
        }
        book
    }

    /// Layers an operator's table over a table of the same name (its rows win), or adds a
    /// new table (say, a route's own `err:` table).
    pub fn overlay(&mut self, name: &str, text: &str) -> Result<(), TableError> {
        let rows = parse_table(text)?;
        self.tables.entry(name.to_owned()).or_default().extend(rows);
        Ok(())
    }

    pub fn has_table(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Table names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tables.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The class of `code` in table `name`: the exact code, else the table's `*` default.
    pub fn lookup(&self, name: &str, code: &str) -> Option<EvidenceClass> {
        let t = self.tables.get(name)?;
        t.get(&code.trim().to_ascii_uppercase())
            .or_else(|| t.get("*"))
            .copied()
    }

    /// The class table `name` gives a raw code written the way the generic evidence rows
    /// write it (`UNDELIV:001`, `undelivered:30003`, `486`, `DELIVRD`), for rows that name
    /// their table. In order: the part after the `:` (normalised like an SMPP `err:`, so
    /// `001` is `1`; skipped on a delivered SMS, whose err says nothing against the number),
    /// the whole code, the part before the `:`; for an SMS receipt, the SMPP state table on
    /// that part; last, the table's `*` default. `None` when the table does not exist or
    /// nothing answers.
    pub fn classify_raw(&self, name: &str, kind: EvidenceKind, raw: &str) -> Option<EvidenceClass> {
        let t = self.tables.get(name)?;
        let exact =
            |table: &Table, code: &str| table.get(&code.trim().to_ascii_uppercase()).copied();
        let raw = raw.trim();
        let (head, tail) = match raw.split_once(':') {
            Some((h, t)) => (h.trim(), Some(t)),
            None => (raw, None),
        };
        let sms = kind == EvidenceKind::SmsDlr;
        let delivered =
            sms && matches!(head.to_ascii_uppercase().as_str(), "DELIVRD" | "DELIVERED");
        let err = tail
            .filter(|_| !delivered)
            .and_then(super::smpp::normalise_err);
        err.as_deref()
            .and_then(|e| exact(t, e))
            .or_else(|| exact(t, raw))
            .or_else(|| tail.and_then(|_| exact(t, head)))
            .or_else(|| {
                sms.then(|| self.tables.get(super::smpp::STAT_TABLE))
                    .flatten()
                    .and_then(|stat| exact(stat, head))
            })
            .or_else(|| t.get("*").copied())
    }

    /// The first class any of `codes` has; `err_table` answers [`Code::SmppErr`].
    pub fn classify(&self, codes: &[Code], err_table: &str) -> Option<EvidenceClass> {
        codes.iter().find_map(|c| match c {
            Code::Table(name, code) => self.lookup(name, code),
            Code::SmppErr(code) => self.lookup(err_table, code),
        })
    }
}

impl crate::evidence_rows::NamedTables for CodeBook {
    fn has_table(&self, name: &str) -> bool {
        CodeBook::has_table(self, name)
    }

    fn table_names(&self) -> Vec<String> {
        self.names().into_iter().map(str::to_owned).collect()
    }

    fn classify_named(
        &self,
        name: &str,
        kind: EvidenceKind,
        raw_code: &str,
    ) -> Option<EvidenceClass> {
        self.classify_raw(name, kind, raw_code)
    }
}

/// The settings of one source of events: its name (with a message id, the identity of an
/// observation), the table that reads its SMPP `err:` values, and the region its national
/// numbers belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub name: String,
    pub err_table: String,
    pub default_region: Option<RegionCode>,
}

impl SourceSpec {
    pub fn new(name: impl Into<String>) -> Self {
        SourceSpec {
            name: name.into(),
            err_table: DEFAULT_ERR_TABLE.to_owned(),
            default_region: None,
        }
    }
}

/// Turns an event into an observation of `source`: the number through the numbering plan,
/// the class through the code book. A non-final state is [`Row::NotFinal`]; an event whose
/// codes no table knows is refused (`unknown_code`), so an operator sees the gap instead of
/// a silent guess.
pub fn observe(
    book: &CodeBook,
    source: &SourceSpec,
    event: Event,
    now_ms: i64,
) -> Result<Row, RowError> {
    let number = NumberingPlan
        .parse_line(event.number.as_bytes(), source.default_region)
        .map_err(|e| RowError {
            code: "invalid_number",
            message: format!("{:?}: {e}", event.number),
        })?;
    if !event.final_state {
        return Ok(Row::NotFinal);
    }
    let class: EvidenceClass = book
        .classify(&event.codes, &source.err_table)
        .ok_or_else(|| RowError {
            code: "unknown_code",
            message: format!(
                "no class for {} code {:?} in the tables {}: add it to a table in config",
                event.kind,
                event.raw_code,
                table_list(&event.codes, &source.err_table)
            ),
        })?;
    let observed_at_ms = event.observed_at_ms.unwrap_or(now_ms);
    if observed_at_ms > now_ms + 86_400_000 {
        return Err(RowError {
            code: "observed_in_future",
            message: "the event is dated more than a day in the future".into(),
        });
    }
    Ok(Row::Observation(Observation {
        number,
        observed_at_ms,
        source: source.name.clone(),
        kind: event.kind,
        raw_code: event.raw_code,
        class,
        weight: 1.0,
        message_id: event.message_id,
    }))
}

fn table_list(codes: &[Code], err_table: &str) -> String {
    let names: Vec<&str> = codes
        .iter()
        .map(|c| match c {
            Code::Table(name, _) => *name,
            Code::SmppErr(_) => err_table,
        })
        .collect();
    names.join(", ")
}

/// Test support for the connectors' table tests: the shipped table `name` names its source in
/// a `Built from` comment, has rows, gives every row a meaning, and has no `*` default (so an
/// unlisted code falls through to the next table).
/// The clock the connectors' tests classify at.
#[cfg(test)]
pub(crate) const TEST_NOW: i64 = 1_800_000_000_000;

/// For tests: what the shipped code book makes of `event` from a source named `source`.
#[cfg(test)]
pub(crate) fn observe_shipped(source: &str, event: Event) -> Result<Row, RowError> {
    observe(
        &CodeBook::shipped(),
        &SourceSpec::new(source),
        event,
        TEST_NOW,
    )
}

/// For tests: the row the shipped code book makes of `event`, which must be readable.
#[cfg(test)]
pub(crate) fn shipped_row(source: &str, event: Event) -> Row {
    observe_shipped(source, event).unwrap()
}

/// For tests: the class of the observation the shipped code book makes of `event`.
#[cfg(test)]
pub(crate) fn shipped_class(source: &str, event: Event) -> EvidenceClass {
    match observe_shipped(source, event) {
        Ok(Row::Observation(o)) => o.class,
        other => panic!("expected an observation, got {other:?}"),
    }
}

#[cfg(test)]
fn assert_documented_table(name: &str) {
    let (_, text) = SHIPPED.iter().find(|(n, _)| *n == name).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with('#') && l.contains("Built from")),
        "{name}"
    );
    let rows: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("code,"))
        .collect();
    assert!(!rows.is_empty(), "{name}");
    for row in rows {
        let meaning = row.splitn(3, ',').nth(2).unwrap_or("").trim();
        assert!(!meaning.is_empty(), "{name}: {row}");
    }
    assert!(
        CodeBook::shipped()
            .table(name)
            .is_some_and(|t| !t.contains_key("*")),
        "{name}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_table_reads_raw_codes_the_way_the_routes_write_them() {
        let book = CodeBook::shipped();
        let sms = EvidenceKind::SmsDlr;
        let class = |table: &str, raw: &str| book.classify_raw(table, sms, raw);
        // A MAP-coded route: the err decides, zero-padded or not.
        assert_eq!(
            class("map", "UNDELIV:001"),
            Some(EvidenceClass::StrongInactive)
        );
        assert_eq!(
            class("map", "undeliv:1"),
            Some(EvidenceClass::StrongInactive)
        );
        assert_eq!(
            class("map", "UNDELIV:027"),
            Some(EvidenceClass::WeakInactive)
        );
        // A delivered receipt is active whatever its err says; a state alone uses the SMPP
        // state table.
        assert_eq!(
            class("map", "DELIVRD:001"),
            Some(EvidenceClass::StrongActive)
        );
        assert_eq!(class("map", "DELIVRD"), Some(EvidenceClass::StrongActive));
        assert_eq!(class("map", "UNDELIV"), Some(EvidenceClass::WeakInactive));
        // Twilio's `status:ErrorCode`, and a bare status in its status table.
        assert_eq!(
            class("twilio_error", "undelivered:30005"),
            Some(EvidenceClass::StrongInactive)
        );
        assert_eq!(
            class("twilio_status", "delivered"),
            Some(EvidenceClass::StrongActive)
        );
        // An unknown table or a code nobody knows: no class.
        assert_eq!(class("no_such_table", "UNDELIV:001"), None);
        assert_eq!(
            book.classify_raw("twilio_error", EvidenceKind::Call, "99999999"),
            None
        );
    }

    #[test]
    fn callback_tables_have_a_meaning_on_every_row_and_name_their_source() {
        // The tables the Twilio, Vonage and Infobip readers name (by name: the readers use
        // this module, not the other way round).
        for name in [
            "twilio_status",
            "twilio_error",
            "vonage_status",
            "vonage_error",
            "infobip_status",
            "infobip_error",
        ] {
            assert_documented_table(name);
        }
    }

    #[test]
    fn every_shipped_table_parses_and_is_not_empty() {
        for (name, text) in SHIPPED {
            let t = parse_table(text).unwrap_or_else(|e| panic!("codes/{name}.csv: {e}"));
            assert!(!t.is_empty(), "codes/{name}.csv has no rows");
        }
        assert_eq!(CodeBook::shipped().names().len(), SHIPPED.len());
    }

    #[test]
    fn tables_refuse_bad_rows_with_their_line() {
        let e = parse_table("code,class\nA,loud\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_table("A,neutral\nA,neutral\n").unwrap_err();
        assert!(e.reason.contains("twice"));
        let e = parse_table(",neutral\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn lookups_are_case_insensitive_with_a_star_default_and_overlays_win() {
        let mut book = CodeBook::default();
        book.overlay("t", "code,class\nabc,strong_active\n*,neutral\n")
            .unwrap();
        assert_eq!(book.lookup("t", " ABC "), Some(EvidenceClass::StrongActive));
        assert_eq!(book.lookup("t", "zzz"), Some(EvidenceClass::Neutral));
        assert_eq!(book.lookup("missing", "abc"), None);
        book.overlay("t", "ABC,weak_inactive\n").unwrap();
        assert_eq!(book.lookup("t", "abc"), Some(EvidenceClass::WeakInactive));
    }

    fn event(codes: Vec<Code>, final_state: bool) -> Event {
        Event {
            number: "+14155552671".into(),
            observed_at_ms: Some(1_000),
            kind: EvidenceKind::SmsDlr,
            raw_code: "UNDELIV:001".into(),
            codes,
            message_id: Some("m1".into()),
            final_state,
        }
    }

    #[test]
    fn the_err_table_is_the_sources_and_the_first_known_code_decides() {
        let mut book = CodeBook::default();
        book.overlay("map", "001,strong_inactive\n").unwrap();
        book.overlay("other", "001,weak_inactive\n").unwrap();
        book.overlay("stat", "UNDELIV,neutral\n").unwrap();
        let codes = vec![
            Code::SmppErr("001".into()),
            Code::Table("stat", "UNDELIV".into()),
        ];
        let mut src = SourceSpec::new("smsc-a");
        let Row::Observation(o) = observe(&book, &src, event(codes.clone(), true), 5_000).unwrap()
        else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::StrongInactive);
        assert_eq!(o.source, "smsc-a");
        assert_eq!(o.raw_code, "UNDELIV:001");
        assert_eq!(o.number.as_u64(), 14155552671);
        src.err_table = "other".into();
        let Row::Observation(o) = observe(&book, &src, event(codes.clone(), true), 5_000).unwrap()
        else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::WeakInactive);
        // An err table that lacks the code falls through to the stat table.
        src.err_table = "none".into();
        let Row::Observation(o) = observe(&book, &src, event(codes.clone(), true), 5_000).unwrap()
        else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::Neutral);
        assert_eq!(
            observe(&book, &src, event(codes, false), 5_000).unwrap(),
            Row::NotFinal
        );
        let unknown = observe(
            &book,
            &src,
            event(vec![Code::SmppErr("9".into())], true),
            5_000,
        )
        .unwrap_err();
        assert_eq!(unknown.code, "unknown_code");
    }
}
