//! Any bytes as a CSV upload and as an XLSX upload: reading never panics; a CSV reads the
//! same records however its bytes arrive; the conversion writes one bounded line per record
//! and picks the column the preview shows.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use numcheck_core::{NumberingPlan, RegionCode};
use numcheck_engine::intake::tabular::{
    self, CsvRecords, MAX_CELL_BYTES, MAX_COLUMNS, Options, Record, Records,
};

/// Hands out its bytes at most `step` at a time.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn records(input: impl Read, delimiter: u8) -> Vec<Record> {
    let mut reader = CsvRecords::new(input, delimiter);
    let mut out = Vec::new();
    let mut rec = Record::default();
    while reader
        .next_record(&mut rec, None)
        .expect("reading bytes cannot fail")
    {
        assert!(rec.cells.len() <= MAX_COLUMNS);
        assert!(rec.cells.iter().all(|c| c.len() <= MAX_CELL_BYTES));
        out.push(rec.clone());
    }
    out
}

fuzz_target!(|input: (u8, &[u8])| {
    let (knobs, data) = input;
    let plan = NumberingPlan;
    let delimiter = [b',', b';', b'\t', b'|'][usize::from(knobs & 3)];
    let phone_column = match (knobs >> 2) & 3 {
        0 | 1 => None,
        2 => Some("2"),
        _ => Some("phone"),
    };
    let region: Option<RegionCode> = (knobs & 16 != 0).then(|| "GB".parse().expect("GB"));
    let options = Options {
        phone_column,
        sheet: (knobs & 32 != 0).then_some("Sheet2"),
        region,
        max_output: 1 << 24,
        max_expanded: 1 << 24,
    };

    // Record numbers only grow, and do not depend on how the bytes arrive.
    let whole = records(data, delimiter);
    assert!(whole.windows(2).all(|w| w[0].number < w[1].number));
    let step = usize::from(knobs >> 6) + 1;
    assert_eq!(whole, records(Trickle { data, step }, delimiter));

    let prefer_tab = knobs & 64 != 0;
    let mut out = Vec::new();
    let converted = tabular::convert_csv(data, prefer_tab, plan, &options, &mut out);
    let preview = tabular::preview_csv(data, false, prefer_tab, plan, &options);
    if let Ok(converted) = &converted {
        assert!(!out.contains(&b'\r'));
        let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(lines, converted.lines);
        assert!(
            out.split(|&b| b == b'\n')
                .all(|l| l.len() <= MAX_CELL_BYTES)
        );
        let preview = preview.as_ref().expect("a converted file previews");
        if converted.phone_column.is_some() {
            assert_eq!(preview.phone_column, converted.phone_column);
            assert_eq!(preview.has_header, converted.has_header);
        }
    }
    if let Ok(preview) = &preview {
        assert!(preview.columns.len() <= MAX_COLUMNS);
        assert!(
            preview
                .phone_column
                .is_none_or(|c| c >= 1 && c <= preview.columns.len())
        );
        for column in &preview.columns {
            assert!((0.0..=1.0).contains(&column.phone_share));
            assert!(column.samples.len() <= 5);
        }
    }
    let _ = tabular::preview_text(data, knobs & 1 != 0, plan, region);

    let mut out = Vec::new();
    if let Ok(converted) = tabular::convert_xlsx(Cursor::new(data), plan, &options, &mut out) {
        assert!(!out.contains(&b'\r'));
        assert_eq!(
            out.iter().filter(|&&b| b == b'\n').count() as u64,
            converted.lines
        );
    }
    let _ = tabular::preview_xlsx(Cursor::new(data), plan, &options);
    let _ = tabular::kind_of(None, None, data);
});
