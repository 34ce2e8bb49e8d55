//! Any bytes as a whole evidence file, read the way `numcheck evidence import` and
//! `POST /v1/evidence` read it (`ingest::Ingestor`): split into lines with the evidence line
//! limit, in pieces of any size, every non-blank line through one reader of the format, so
//! readers with state (CSV headers, Jasmin's memory of sent messages) see whole files. Every
//! format is reached: numcheck's CSV and NDJSON rows and every `ConnectorFormat` (SMPP
//! receipts, Kannel and Jasmin logs, recorded Twilio / Vonage / Infobip callbacks,
//! FreeSWITCH and Asterisk CDRs, deactivation lists, reassigned answers, HLR results), the
//! connector events through `observe` and the shipped code book.
//!
//! Input: byte 0 picks the format (mod 13), byte 1 the piece size and the CDR time zone;
//! the rest is the file.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::cdr::parse_utc_offset;
use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
use numcheck_core::connectors::{ConnectorFormat, LineFormat, MAX_FIELD};
use numcheck_core::{CodeTable, LineSplitter, Row, RowError, RowFormat, RowReader};

const NOW: i64 = 1_800_000_000_000;
/// `ingest::MAX_EVIDENCE_LINE_BYTES`.
const MAX_LINE: usize = 16 * 1024;

static BOOK: LazyLock<CodeBook> = LazyLock::new(CodeBook::shipped);
static TABLE: LazyLock<CodeTable> = LazyLock::new(CodeTable::generic);

enum Reader {
    Rows(RowReader),
    Connector(Box<dyn LineFormat>, SourceSpec),
}

impl Reader {
    fn line(&mut self, line: &[u8]) -> Result<Row, RowError> {
        match self {
            Reader::Rows(r) => r.line(line),
            Reader::Connector(format, source) => match format.line(line) {
                Ok(None) => Ok(Row::Header),
                Ok(Some(event)) => {
                    assert!(!event.number.is_empty() && event.number.len() <= MAX_FIELD);
                    assert!(
                        event
                            .message_id
                            .as_ref()
                            .is_none_or(|m| m.len() <= MAX_FIELD + 64)
                    );
                    assert!(!event.final_state || !event.codes.is_empty());
                    let final_state = event.final_state;
                    let row = observe(&BOOK, source, event, NOW);
                    if let Ok(Row::Observation(_)) = row {
                        assert!(final_state, "a non-final state became evidence");
                    }
                    row
                }
                Err(e) => Err(RowError {
                    code: e.code,
                    message: e.message,
                }),
            },
        }
    }
}

fn take(reader: &mut Reader, line: numcheck_core::Line<'_>, rows: &mut u64) {
    if line.is_blank() || line.truncated {
        return;
    }
    assert!(line.text.len() <= MAX_LINE);
    match reader.line(line.text) {
        Ok(Row::Observation(o)) => {
            *rows += 1;
            assert!(o.observed_at_ms <= NOW + 86_400_000);
            assert!(o.weight > 0.0 && o.weight <= 100.0);
            assert!(!o.source.is_empty());
            assert_eq!(o.number.to_string().parse(), Ok(o.number));
        }
        Ok(_) => {}
        Err(e) => assert!(!e.code.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, knobs, file @ ..] = data else {
        return;
    };
    let offset = match knobs >> 6 {
        0 => parse_utc_offset("+0000"),
        1 => parse_utc_offset("+0530"),
        2 => parse_utc_offset("-0800"),
        _ => parse_utc_offset("+1245"),
    }
    .expect("a valid offset");
    let mut source = SourceSpec::new("fuzz");
    if knobs & 0x20 != 0 {
        source.default_region = "US".parse().ok();
    }
    let mut reader = match pick % 13 {
        11 => Reader::Rows(RowReader::new(RowFormat::Csv, TABLE.clone(), NOW)),
        12 => Reader::Rows(RowReader::new(RowFormat::Ndjson, TABLE.clone(), NOW)),
        i => Reader::Connector(
            ConnectorFormat::ALL[usize::from(i)].reader_with_offset(offset),
            source,
        ),
    };
    let step = usize::from(knobs & 0x1f) + 1;
    let mut splitter = LineSplitter::new().with_max_line(MAX_LINE);
    let mut rows = 0u64;
    for piece in file.chunks(step) {
        splitter.push(piece, |line| take(&mut reader, line, &mut rows));
    }
    splitter.finish(|line| take(&mut reader, line, &mut rows));
    assert!(rows <= file.len() as u64);
});
