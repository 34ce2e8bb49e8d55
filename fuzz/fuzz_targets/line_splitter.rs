//! An upload cut into pieces anywhere gives the same lines as the whole, and chunk bounds
//! always re-read to the same lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::{Chunker, LineSplitter};

fn lines(pieces: &[&[u8]]) -> Vec<(u64, u64, u64, Vec<u8>, bool)> {
    let mut out = Vec::new();
    LineSplitter::split_pieces(pieces, |l| {
        out.push((l.number, l.start, l.end, l.text.to_vec(), l.truncated))
    });
    out
}

fuzz_target!(|input: (u8, Vec<u8>)| {
    let (cut, data) = input;
    let at = usize::from(cut).min(data.len());
    assert_eq!(lines(&[&data]), lines(&[&data[..at], &data[at..]]));

    let mut chunker = Chunker::new(usize::from(cut % 7) + 1);
    LineSplitter::split_pieces(&[&data], |l| chunker.line(&l));
    let total = chunker.total();
    let mut seen = 0;
    for c in chunker.finish() {
        let mut s = LineSplitter::starting_at(c.byte_start, c.first_line);
        let mut n = 0;
        let part = &data[c.byte_start as usize..c.byte_end as usize];
        s.push(part, |l| n += u64::from(!l.is_blank()));
        s.finish(|l| n += u64::from(!l.is_blank()));
        assert_eq!(n, c.lines);
        seen += n;
    }
    assert_eq!(seen, total);
});
