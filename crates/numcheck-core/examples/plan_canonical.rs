//! Prints what the numbering plan sees of each corpus line after our normaliser, so that
//! `bench/plan_reference.py` asks libphonenumber about exactly the same input.
//!
//! Reads `REGION<TAB>TEXT` lines (`bench/plan_corpus.py`) from the file named by the first
//! argument, or stdin; writes one line per input line:
//!
//! - `I<TAB>digits`: international (`+` or `00`), the digits after the prefix;
//! - `N<TAB>digits`: national digits;
//! - `E<TAB>code`: the normaliser refuses the line (a `LineError` code).
//!
//!     cargo run --release -p numcheck-core --example plan_canonical -- corpus.tsv > canonical.tsv

use std::io::{self, BufWriter, Read, Write};

use numcheck_core::normalise::{Dialled, dialled};

fn main() -> io::Result<()> {
    let mut input = Vec::new();
    match std::env::args_os().nth(1) {
        Some(path) => input = std::fs::read(path)?,
        None => {
            io::stdin().read_to_end(&mut input)?;
        }
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let body = input.strip_suffix(b"\n").unwrap_or(&input);
    if body.is_empty() {
        return Ok(());
    }
    for record in body.split(|&b| b == b'\n') {
        let text = match record.iter().position(|&b| b == b'\t') {
            Some(i) => &record[i + 1..],
            None => record,
        };
        match dialled(text) {
            Ok(Dialled::International(d)) => writeln!(out, "I\t{d}")?,
            Ok(Dialled::National(d)) => writeln!(out, "N\t{d}")?,
            Err(e) => writeln!(out, "E\t{}", e.code())?,
        }
    }
    out.flush()
}
