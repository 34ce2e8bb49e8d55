//! Any bytes as a text upload, through the pieces `numcheck-server`'s `upload.rs` composes
//! (it needs server state, so the pure parts are driven here the way it drives them): the
//! kind decision on the first bytes (`tabular::kind_of`), the text sniffing on the first
//! 8 KiB as they stream in (`check_text`), the line splitter and the chunker fed piece by
//! piece, and the credit count's parse of every line.
//!
//! Checked: a sample that is text stays text however it is cut; lines are numbered from 1,
//! contiguous, and hold exactly their bytes; the chunks tile the upload, their line counts
//! add up to the splitter's non-blank lines, and each chunk re-read alone (as a worker reads
//! it) gives exactly the lines the whole upload gave in that range.
//!
//! Input: byte 0 sets the chunk size and the file name / content type; byte 1 the piece
//! size and where the sniffing sample is cut; the rest is the upload.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use numcheck_core::lines::MAX_LINE_BYTES;
use numcheck_core::{Chunker, LineSplitter, NumberingPlan, TextCheck, check_text};
use numcheck_engine::intake::tabular::{self, MAGIC_BYTES, XLSX_MIME};

/// `upload::SNIFF_BYTES`.
const SNIFF_BYTES: usize = 8192;

const NAMES: [Option<&str>; 8] = [
    None,
    Some("numbers.txt"),
    Some("list.csv"),
    Some("export.TSV"),
    Some("book.xlsx"),
    Some("old.xls"),
    Some("no-extension"),
    Some("C:\\Users\\a\\Desktop\\numbers .csv "),
];
const TYPES: [Option<&str>; 4] = [
    None,
    Some("text/plain; charset=utf-8"),
    Some("text/csv"),
    Some(XLSX_MIME),
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    number: u64,
    start: u64,
    end: u64,
    text: Vec<u8>,
    truncated: bool,
}

fn read(data: &[u8], start: u64, first_line: u64, step: usize) -> Vec<Owned> {
    let mut out = Vec::new();
    let mut s = LineSplitter::starting_at(start, first_line);
    let mut keep = |l: numcheck_core::Line<'_>| {
        out.push(Owned {
            number: l.number,
            start: l.start,
            end: l.end,
            text: l.text.to_vec(),
            truncated: l.truncated,
        })
    };
    for piece in data.chunks(step) {
        s.push(piece, &mut keep);
    }
    s.finish(&mut keep);
    out
}

fn blank(l: &Owned) -> bool {
    !l.truncated && l.text.iter().all(u8::is_ascii_whitespace)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, upload @ ..] = data else {
        return;
    };
    let per_chunk = usize::from(a & 7) + 1;
    let name = NAMES[usize::from(a >> 3 & 7)];
    let content_type = TYPES[usize::from(a >> 6)];
    let step = usize::from(b & 0x3f) + 1;

    // `upload::peek`: the kind from the name, the type and the first bytes.
    let head = &upload[..upload.len().min(MAGIC_BYTES)];
    let _ = tabular::kind_of(name, content_type, head);

    // `upload::receive_text`: the sample grows piece by piece and is sniffed once full or at
    // the end; lines go through the splitter into the chunker as the pieces arrive.
    let mut sample: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut sniffed = None;
    let mut splitter = LineSplitter::new();
    let mut chunker = Chunker::new(per_chunk);
    for piece in upload.chunks(step) {
        if sniffed.is_none() {
            let take = (SNIFF_BYTES - sample.len()).min(piece.len());
            sample.extend_from_slice(&piece[..take]);
            if sample.len() >= SNIFF_BYTES {
                sniffed = Some(check_text(&sample));
            }
        }
        splitter.push(piece, |line| chunker.line(&line));
    }
    let sniffed = sniffed.unwrap_or_else(|| check_text(&sample));
    splitter.finish(|line| chunker.line(&line));
    assert_eq!(sample, upload[..upload.len().min(SNIFF_BYTES)]);
    if sniffed == TextCheck::Text {
        let cut = usize::from(b >> 6) * sample.len() / 3;
        assert_eq!(check_text(&sample[..cut]), TextCheck::Text, "cut at {cut}");
    }

    // The lines: numbered from 1, contiguous, holding their own bytes.
    let lines = read(upload, 0, 1, upload.len().max(1));
    assert_eq!(lines, read(upload, 0, 1, step), "pieces change the lines");
    let mut at = if upload.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l.number, i as u64 + 1);
        assert_eq!(l.start, at);
        assert!(l.end > l.start && l.end as usize <= upload.len());
        assert!(l.text.len() <= MAX_LINE_BYTES);
        let raw = &upload[l.start as usize..l.end as usize];
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        if l.truncated {
            assert!(raw.starts_with(&l.text) && raw.len() > MAX_LINE_BYTES);
        } else {
            assert_eq!(raw.strip_suffix(b"\r").unwrap_or(raw), &l.text[..]);
        }
        at = l.end;
    }
    let non_blank: Vec<&Owned> = lines.iter().filter(|l| !blank(l)).collect();

    // The chunks tile the upload and re-read to the same lines.
    let total = chunker.total();
    assert_eq!(total, non_blank.len() as u64);
    let chunks = chunker.finish();
    let mut next_start = 0;
    let mut seen = 0;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.byte_start, next_start);
        assert!(c.byte_end > c.byte_start && c.byte_end as usize <= upload.len());
        assert!(c.lines >= 1 && c.lines <= per_chunk as u64);
        if i + 1 < chunks.len() {
            assert_eq!(c.lines, per_chunk as u64);
        }
        let part = &upload[c.byte_start as usize..c.byte_end as usize];
        let again: Vec<Owned> = read(part, c.byte_start, c.first_line, step)
            .into_iter()
            .filter(|l| !blank(l))
            .collect();
        let whole: Vec<Owned> = non_blank
            .iter()
            .filter(|l| l.start >= c.byte_start && l.start < c.byte_end)
            .map(|l| (*l).clone())
            .collect();
        assert_eq!(again, whole, "chunk {i} re-reads differently");
        seen += c.lines;
        next_start = c.byte_end;
    }
    assert_eq!(seen, total);

    // `upload::count_unique`: every whole non-blank line through the numbering plan.
    let plan = NumberingPlan;
    let region = (a & 0x80 != 0).then(|| "GB".parse().expect("GB"));
    let unique: HashSet<u64> = non_blank
        .iter()
        .filter(|l| !l.truncated)
        .filter_map(|l| plan.parse_line(&l.text, region).ok())
        .map(|n| n.as_u64())
        .collect();
    assert!(unique.len() as u64 <= total);
});
