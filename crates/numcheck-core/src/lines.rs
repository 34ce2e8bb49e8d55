//! Splitting an upload into lines, incrementally, with bounded memory.
//!
//! Uploads arrive in pieces of any size; [`LineSplitter`] turns them into numbered lines with
//! their byte offsets, so that a task can later be cut into chunks that start at a known byte
//! and line. It strips a UTF-8 byte-order mark, accepts `\n`, `\r\n` and a lone `\r` at the end
//! of a line, and never keeps more than [`MAX_LINE_BYTES`] of one line in memory.

/// The longest line kept whole. Longer lines are cut here and flagged, so that a file of one
/// gigantic line cannot make the splitter grow without bound.
pub const MAX_LINE_BYTES: usize = 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based physical line number (blank lines count here, as an editor shows them).
    pub number: u64,
    /// Byte offset of the line's first byte in the upload.
    pub start: u64,
    /// Byte offset just past the line's terminator.
    pub end: u64,
    /// The line without its terminator, a trailing `\r` or the byte-order mark. At most
    /// [`MAX_LINE_BYTES`] long.
    pub text: &'a [u8],
    /// Whether the line was longer than [`MAX_LINE_BYTES`] and `text` holds only its start.
    pub truncated: bool,
}

impl Line<'_> {
    /// A blank line holds nothing but ASCII whitespace; blank lines are not counted in a
    /// task's total and produce no row.
    pub fn is_blank(&self) -> bool {
        !self.truncated && self.text.iter().all(u8::is_ascii_whitespace)
    }
}

/// Incremental line splitter. Feed it with [`push`](Self::push) and close it with
/// [`finish`](Self::finish).
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    truncated: bool,
    line_start: u64,
    consumed: u64,
    next_number: u64,
    bom_checked: bool,
    max_line: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSplitter {
    /// Splits an upload held in memory, in `pieces` cut anywhere, into its lines, the last
    /// one included.
    pub fn split_pieces(pieces: &[&[u8]], mut emit: impl FnMut(Line<'_>)) {
        let mut s = LineSplitter::new();
        for p in pieces {
            s.push(p, &mut emit);
        }
        s.finish(emit);
    }

    /// A splitter for a whole upload.
    pub fn new() -> Self {
        Self::starting_at(0, 1)
    }

    /// A splitter for a part of an upload that begins at byte `offset` with line `number`.
    /// A byte-order mark is only stripped at offset 0.
    pub fn starting_at(offset: u64, number: u64) -> Self {
        LineSplitter {
            partial: Vec::new(),
            truncated: false,
            line_start: offset,
            consumed: offset,
            next_number: number,
            bom_checked: offset != 0,
            max_line: MAX_LINE_BYTES,
        }
    }

    /// The same splitter with another longest line (evidence files: logs and recorded
    /// callbacks have longer lines than number lists). Memory stays bounded by it.
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// The longest line kept whole.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Bytes seen so far, counting from the start of the upload.
    pub fn position(&self) -> u64 {
        self.consumed
    }

    /// Feeds the next piece; `emit` is called for every line completed by it.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Line<'_>)) {
        if !self.bom_checked {
            // The mark may itself arrive split across pieces.
            let have = self.partial.len();
            let want = BOM.len() - have;
            let take = want.min(data.len());
            if BOM[have..have + take] != data[..take] {
                self.bom_checked = true;
            } else if take < want {
                self.partial.extend_from_slice(&data[..take]);
                self.consumed += take as u64;
                return;
            } else {
                self.partial.clear();
                self.consumed += take as u64;
                self.line_start = self.consumed;
                data = &data[take..];
                self.bom_checked = true;
            }
        }
        while let Some(pos) = memchr_newline(data) {
            let (head, rest) = data.split_at(pos);
            self.append(head);
            self.consumed += 1; // the '\n'
            self.emit_line(&mut emit);
            data = &rest[1..];
        }
        self.append(data);
    }

    /// Ends the upload; emits the last line when it has no terminator.
    pub fn finish(&mut self, mut emit: impl FnMut(Line<'_>)) {
        if !self.partial.is_empty() || self.truncated {
            self.emit_line(&mut emit);
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        self.consumed += bytes.len() as u64;
        let max = self.max_line;
        let room = max + 1 - self.partial.len().min(max + 1);
        if bytes.len() > room {
            self.partial.extend_from_slice(&bytes[..room]);
            self.truncated = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
        // One spare byte is kept so that a '\r' ending a maximal line can still be dropped.
        if self.partial.len() > max + 1 {
            self.partial.truncate(max + 1);
        }
    }

    fn emit_line(&mut self, emit: &mut impl FnMut(Line<'_>)) {
        let mut text: &[u8] = &self.partial;
        if let Some(stripped) = text.strip_suffix(b"\r") {
            text = stripped;
        }
        let mut truncated = self.truncated;
        if text.len() > self.max_line {
            text = &text[..self.max_line];
            truncated = true;
        }
        emit(Line {
            number: self.next_number,
            start: self.line_start,
            end: self.consumed,
            text,
            truncated,
        });
        self.next_number += 1;
        self.line_start = self.consumed;
        self.partial.clear();
        self.truncated = false;
    }
}

/// A chunk of an upload: a byte range that starts at a line boundary, with the number of its
/// first line and how many non-blank lines it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBounds {
    pub byte_start: u64,
    pub byte_end: u64,
    pub first_line: u64,
    pub lines: u64,
}

/// Cuts an upload into chunks of at most `per_chunk` non-blank lines while it streams past.
/// Blank lines after the last non-blank line belong to no chunk.
#[derive(Debug)]
pub struct Chunker {
    per_chunk: u64,
    current: ChunkBounds,
    done: Vec<ChunkBounds>,
    total: u64,
}

impl Chunker {
    pub fn new(per_chunk: usize) -> Self {
        Chunker {
            per_chunk: per_chunk.max(1) as u64,
            current: ChunkBounds {
                byte_start: 0,
                byte_end: 0,
                first_line: 1,
                lines: 0,
            },
            done: Vec::new(),
            total: 0,
        }
    }

    /// Takes the next line of the upload.
    pub fn line(&mut self, line: &Line<'_>) {
        if line.is_blank() {
            return;
        }
        self.total += 1;
        self.current.lines += 1;
        self.current.byte_end = line.end;
        if self.current.lines == self.per_chunk {
            self.done.push(self.current);
            self.current = ChunkBounds {
                byte_start: line.end,
                byte_end: line.end,
                first_line: line.number + 1,
                lines: 0,
            };
        }
    }

    /// Non-blank lines seen so far: a task's `total`.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The chunks, in order.
    pub fn finish(mut self) -> Vec<ChunkBounds> {
        if self.current.lines > 0 {
            self.done.push(self.current);
        }
        self.done
    }
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

/// What the start of an upload says about whether it is a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCheck {
    /// UTF-8 (or ASCII) text.
    Text,
    /// Holds NUL bytes or bytes that are not UTF-8: an image, a zip, a spreadsheet, ….
    Binary,
    /// Starts with a UTF-16 byte-order mark (what "Unicode text" exports write).
    Utf16,
}

/// Sniffs the first bytes of an upload. `sample` may end in the middle of a UTF-8 sequence.
pub fn check_text(sample: &[u8]) -> TextCheck {
    if sample.starts_with(b"\xFF\xFE") || sample.starts_with(b"\xFE\xFF") {
        return TextCheck::Utf16;
    }
    if sample.contains(&0) {
        return TextCheck::Binary;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => TextCheck::Text,
        // An incomplete sequence at the very end is just where the sample was cut.
        Err(e) if e.error_len().is_none() => TextCheck::Text,
        Err(_) => TextCheck::Binary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(pieces: &[&[u8]]) -> Vec<(u64, u64, u64, Vec<u8>, bool)> {
        let mut out = Vec::new();
        LineSplitter::split_pieces(pieces, |l| {
            out.push((l.number, l.start, l.end, l.text.to_vec(), l.truncated))
        });
        out
    }

    #[test]
    fn splits_lf_crlf_and_a_last_line_without_terminator() {
        let lines = split_all(&[b"a\r\nbb\n\nccc"]);
        assert_eq!(
            lines,
            vec![
                (1, 0, 3, b"a".to_vec(), false),
                (2, 3, 6, b"bb".to_vec(), false),
                (3, 6, 7, b"".to_vec(), false),
                (4, 7, 10, b"ccc".to_vec(), false),
            ]
        );
    }

    #[test]
    fn strips_a_bom_even_when_split_across_pieces() {
        let lines = split_all(&[b"\xEF", b"\xBB", b"\xBF+1\n+2\n"]);
        assert_eq!(lines[0].3, b"+1".to_vec());
        assert_eq!(lines[0].1, 3, "the first line starts after the mark");
        assert_eq!(lines[1].3, b"+2".to_vec());
    }

    #[test]
    fn a_partial_bom_lookalike_is_kept_as_text() {
        let lines = split_all(&[b"\xEFx\n"]);
        assert_eq!(lines[0].3, b"\xEFx".to_vec());
    }

    #[test]
    fn very_long_lines_are_cut_and_flagged_without_growing() {
        let long = vec![b'9'; MAX_LINE_BYTES * 10];
        let lines = split_all(&[&long, b"\n+1\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].4);
        assert_eq!(lines[0].3.len(), MAX_LINE_BYTES);
        assert_eq!(lines[0].2, (MAX_LINE_BYTES * 10 + 1) as u64);
        assert_eq!(lines[1].3, b"+1".to_vec());
        assert!(!lines[1].4);
    }

    #[test]
    fn a_line_of_exactly_the_limit_with_crlf_is_not_truncated() {
        let mut data = vec![b'1'; MAX_LINE_BYTES];
        data.extend_from_slice(b"\r\n");
        let lines = split_all(&[&data]);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].4);
        assert_eq!(lines[0].3.len(), MAX_LINE_BYTES);
    }

    #[test]
    fn a_splitter_started_mid_file_numbers_lines_from_there() {
        let mut s = LineSplitter::starting_at(100, 7);
        let mut got = Vec::new();
        s.push(b"\xEF\xBB\xBFx\ny", |l| {
            got.push((l.number, l.start, l.text.to_vec()))
        });
        s.finish(|l| got.push((l.number, l.start, l.text.to_vec())));
        assert_eq!(got[0], (7, 100, b"\xEF\xBB\xBFx".to_vec()));
        assert_eq!(got[1], (8, 105, b"y".to_vec()));
    }

    #[test]
    fn blank_means_only_whitespace() {
        let lines = split_all(&[b" \t\r\n\n x\n"]);
        let blank: Vec<bool> = lines
            .iter()
            .map(|(n, s, e, t, tr)| {
                Line {
                    number: *n,
                    start: *s,
                    end: *e,
                    text: t,
                    truncated: *tr,
                }
                .is_blank()
            })
            .collect();
        assert_eq!(blank, vec![true, true, false]);
    }

    #[test]
    fn text_check_tells_text_from_binary_and_utf16() {
        assert_eq!(check_text(b"+14155552671\n"), TextCheck::Text);
        assert_eq!(check_text("Zürich +41\n".as_bytes()), TextCheck::Text);
        assert_eq!(check_text(b"+1 \xC3"), TextCheck::Text, "cut mid-character");
        assert_eq!(check_text(b"PK\x03\x04\x14\x00"), TextCheck::Binary);
        assert_eq!(check_text(b"\x89PNG\r\n\x1a\n"), TextCheck::Binary);
        assert_eq!(check_text(b"\xFF\xFE+\x001\x00"), TextCheck::Utf16);
    }

    #[test]
    fn chunker_cuts_at_line_boundaries_and_skips_trailing_blanks() {
        let data = b"\xEF\xBB\xBF+1\n\n+2\n+3\n+4\n\n\n";
        let mut s = LineSplitter::new();
        let mut c = Chunker::new(2);
        s.push(data, |l| c.line(&l));
        s.finish(|l| c.line(&l));
        assert_eq!(c.total(), 4);
        let chunks = c.finish();
        assert_eq!(
            chunks,
            vec![
                ChunkBounds {
                    byte_start: 0,
                    byte_end: 10,
                    first_line: 1,
                    lines: 2
                },
                ChunkBounds {
                    byte_start: 10,
                    byte_end: 16,
                    first_line: 4,
                    lines: 2
                },
            ]
        );
        // Re-reading each chunk from its bounds gives back exactly its lines.
        let mut seen = Vec::new();
        for ch in &chunks {
            let mut s = LineSplitter::starting_at(ch.byte_start, ch.first_line);
            let part = &data[ch.byte_start as usize..ch.byte_end as usize];
            s.push(part, |l| {
                if !l.is_blank() {
                    seen.push((l.number, l.text.to_vec()))
                }
            });
            s.finish(|l| {
                if !l.is_blank() {
                    seen.push((l.number, l.text.to_vec()))
                }
            });
        }
        assert_eq!(
            seen,
            vec![
                (1, b"+1".to_vec()),
                (3, b"+2".to_vec()),
                (4, b"+3".to_vec()),
                (5, b"+4".to_vec())
            ]
        );
    }

    proptest! {
        /// However an upload is cut into pieces, the same lines come out, and every line's
        /// offsets point at its bytes in the upload.
        #[test]
        fn splitting_is_independent_of_piece_boundaries(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'1'), Just(b' '), Just(0xEFu8), Just(0xBB), Just(0xBF)], 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..10),
        ) {
            let whole = split_all(&[&data]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts { pieces.push(&data[last..c]); last = c; }
            pieces.push(&data[last..]);
            let pieced = split_all(&pieces);
            prop_assert_eq!(&whole, &pieced);
            let mut expected_start = if data.starts_with(BOM) { 3 } else { 0 };
            for (_, start, end, text, _) in &whole {
                prop_assert_eq!(*start, expected_start);
                let raw = &data[*start as usize..*end as usize];
                prop_assert!(raw.windows(text.len().max(1)).any(|w| w == &text[..]) || text.is_empty());
                expected_start = *end;
            }
            prop_assert_eq!(expected_start, data.len() as u64);
        }
    }
}
