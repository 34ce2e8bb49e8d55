//! The work on one chunk: lines in, result rows, rejected rows and the chunk's sorted unique
//! numbers out. Synchronous and free of I/O so it runs on a blocking thread and is tested
//! directly.

use numcheck_core::{LineError, LineSplitter, NumberingPlan, RegionCode, Verdict};

/// The header of the result CSV. The first two columns are the contract's.
pub const RESULT_HEADER: &str = "Number,ActiveStatus,Reason,LineType,Region,Line\n";
/// The header of `rejected.csv`.
pub const REJECTED_HEADER: &str = "Line,Input,Reason\n";

/// What one chunk produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkOutput {
    /// Result CSV rows (no header), in input order.
    pub rows: Vec<u8>,
    /// Rejected CSV rows (no header), in input order.
    pub rejected: Vec<u8>,
    /// The chunk's distinct numbers, ascending, as little-endian `u64`s.
    pub numbers: Vec<u8>,
    pub success: i64,
    pub failure: i64,
}

/// Processes the bytes of one chunk, which start at line `first_line`, byte `byte_start`.
pub fn process(
    plan: &NumberingPlan,
    data: &[u8],
    byte_start: u64,
    first_line: u64,
    region: Option<RegionCode>,
) -> ChunkOutput {
    let mut out = ChunkOutput::default();
    let mut numbers: Vec<u64> = Vec::new();
    let mut rejected = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
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
        match checked {
            Ok(c) => {
                let verdict = Verdict::from_plan(&c);
                numbers.push(c.e164.as_u64());
                let region = c.region.map(|r| r.as_str()).unwrap_or_default();
                out.rows.extend_from_slice(
                    format!(
                        "{},{},{},{},{},{}\n",
                        c.e164,
                        verdict.status,
                        verdict.reason.as_str(),
                        c.line_type.as_str(),
                        region,
                        line.number
                    )
                    .as_bytes(),
                );
                out.success += 1;
            }
            Err(e) => {
                let text = String::from_utf8_lossy(line.text);
                let text = text.trim();
                // Keep spreadsheets from running a rejected line as a formula.
                let shown = if text.starts_with(['=', '@', '\t', '\r']) {
                    format!("'{text}")
                } else {
                    text.to_owned()
                };
                // Writing into a Vec cannot fail.
                let _ = rejected.write_record([line.number.to_string().as_str(), &shown, e.code()]);
                out.failure += 1;
            }
        }
    };
    splitter.push(data, &mut handle);
    splitter.finish(&mut handle);
    out.rejected = rejected.into_inner().unwrap_or_default();
    numbers.sort_unstable();
    numbers.dedup();
    out.numbers = numbers.iter().flat_map(|n| n.to_le_bytes()).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_input_order_and_failures_go_to_rejected() {
        let data = b"+14155552671\n\nnot a number\n+4400000000\r\n=cmd|x\n+14155552671";
        let out = process(&NumberingPlan, data, 0, 1, None);
        let rows = String::from_utf8(out.rows).unwrap();
        assert_eq!(
            rows,
            "+14155552671,unknown,no_evidence,fixed_line_or_mobile,US,1\n\
             +440000000,inactive,invalid_number,unknown,,4\n\
             +14155552671,unknown,no_evidence,fixed_line_or_mobile,US,6\n"
        );
        let rejected = String::from_utf8(out.rejected).unwrap();
        assert_eq!(
            rejected,
            "3,not a number,not_a_number\n5,'=cmd|x,not_a_number\n"
        );
        assert_eq!((out.success, out.failure), (3, 2));
        let nums: Vec<u64> = out
            .numbers
            .chunks(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(nums, vec![440_000_000, 14_155_552_671]);
    }

    #[test]
    fn a_chunk_started_mid_file_numbers_its_lines_from_its_first_line() {
        let out = process(&NumberingPlan, b"+33612345678\n", 500, 42, None);
        assert!(String::from_utf8(out.rows).unwrap().ends_with(",42\n"));
    }
}
