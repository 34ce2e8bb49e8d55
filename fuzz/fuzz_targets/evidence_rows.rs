//! Any bytes as a line of an evidence upload, CSV or NDJSON: reading never panics, and an
//! accepted row is a well-formed observation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::{CodeTable, Row, RowFormat, RowReader};

fuzz_target!(|data: &[u8]| {
    let now = 1_800_000_000_000;
    let mut csv = RowReader::new(RowFormat::Csv, CodeTable::generic(), now);
    let _ = csv.line(b"number,observed_at,source,kind,raw_code,message_id,class,weight");
    let mut ndjson = RowReader::new(RowFormat::Ndjson, CodeTable::generic(), now);
    for reader in [&mut csv, &mut ndjson] {
        if let Ok(Row::Observation(o)) = reader.line(data) {
            assert!(o.weight > 0.0 && o.weight <= 100.0);
            assert!(o.observed_at_ms <= now + 86_400_000);
            assert!(!o.source.is_empty() && o.source.len() <= 128);
        }
    }
});
