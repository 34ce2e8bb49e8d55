//! Spreadsheet uploads: CSV, TSV and XLSX files turned into the one-number-per-line text that
//! tasks are made of.
//!
//! Three questions are answered here: what kind a file is ([`kind_of`]), which column holds
//! the phone numbers ([`layout`]), and the conversion itself ([`convert_csv`],
//! [`convert_xlsx`]). The conversion writes one line per record, the header record as a
//! blank line, so a line number in a task's `rejected.csv` is the record's number in the
//! user's file: for CSV the row a spreadsheet shows (blank lines count, a quoted value that
//! spans lines does not add rows), for XLSX the sheet's row number.
//!
//! Everything here is synchronous and free of server state: the upload code runs it on a
//! blocking thread, the fuzz target calls it directly. Memory stays bounded whatever the
//! file: CSV is read through `csv-core` with capped cells, XLSX through calamine's streaming
//! cell reader, and only the first records are kept whole, for the column detection.

use std::io::{self, Read, Seek, SeekFrom, Write};

use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx};
use csv_core::ReadFieldResult;
use numcheck_core::lines::{LineSplitter, MAX_LINE_BYTES};
use numcheck_core::{NumberingPlan, RegionCode, TextCheck, check_text};
use serde::Serialize;

use crate::EngineError;

/// Records (besides a header) the column detection looks at.
pub const SAMPLE_RECORDS: usize = 200;
/// Columns read per record; cells further right are ignored.
pub const MAX_COLUMNS: usize = 1024;
/// Bytes kept of one cell: one more than a line of a text upload keeps, so an overlong cell
/// is still refused as `line_too_long` rather than read cut short.
pub const MAX_CELL_BYTES: usize = MAX_LINE_BYTES + 1;
/// What a preview reads of a CSV or text file.
pub const PREVIEW_BYTES: usize = 1 << 20;
/// Bytes enough to tell a file's kind by its start.
pub const MAGIC_BYTES: usize = 8;
/// The media type of `.xlsx` files.
pub const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Most bytes one run of an `.xlsx` part's XML may hold: a cell's or a shared string's text,
/// or one tag with its attributes. calamine's XML reader buffers a whole run, and a cell's
/// value is copied before it is cut to [`MAX_CELL_BYTES`]: this bounds both.
pub const MAX_XML_RUN: usize = 1 << 20;
/// Most bytes a workbook's shared strings may unpack to: calamine holds them all while the
/// sheet is read (about 2.5 times their XML size in memory for short strings).
pub const MAX_SHARED_STRINGS: u64 = 64 << 20;

/// Bytes of cells the detection sample may hold (a few very wide records end it early).
const SAMPLE_BUDGET: usize = 4 << 20;
/// What a record costs the sample budget besides its cells' bytes.
const RECORD_OVERHEAD: usize = 64;
const MAX_SAMPLES: usize = 5;
/// Share of parseable values that makes a column, without a telling header, the phone column.
const MIN_SHARE: f64 = 0.5;
/// Excel's last row; a workbook that claims more rows is damaged.
const MAX_XLSX_ROWS: u32 = 1_048_576;
/// Longest column name shown or matched.
const MAX_NAME_CHARS: usize = 255;
/// What the delimiter sniffing and the text check look at.
const SNIFF_BYTES: usize = 64 * 1024;
const SNIFF_LINES: usize = 20;
const READ_BUFFER: usize = 64 * 1024;
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE2_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0";
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What an uploaded file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One number per line.
    Text,
    /// Delimited text; the delimiter is sniffed.
    Csv,
    /// Delimited text named as tab-separated: a tie in the sniffing goes to the tab.
    Tsv,
    /// An Excel workbook (Office Open XML).
    Xlsx,
}

impl Kind {
    /// The name the preview answers with (TSV is a kind of CSV there).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Csv | Kind::Tsv => "csv",
            Kind::Xlsx => "xlsx",
        }
    }
}

/// Why a spreadsheet upload cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TabularError {
    #[error("{0}")]
    UnsupportedType(&'static str),
    #[error("the file is UTF-16 text; save it as UTF-8 (\"CSV UTF-8\" in Excel)")]
    Utf16,
    #[error("the file is not a text file; send plain text or CSV, or a spreadsheet as .xlsx")]
    NotText,
    #[error(
        "phone_column {given:?} names no column; the columns are: {}",
        name_list(available)
    )]
    UnknownPhoneColumn {
        given: String,
        available: Vec<String>,
    },
    #[error(
        "no column looks like phone numbers (columns: {}); name it with the phone_column form field, a header name or a column number",
        name_list(available)
    )]
    NoPhoneColumn { available: Vec<String> },
    #[error(
        "the workbook has no sheet {given:?}; its sheets are: {}",
        name_list(available)
    )]
    UnknownSheet {
        given: String,
        available: Vec<String>,
    },
    #[error("the workbook could not be read: {0}; save it again as .xlsx or .csv")]
    InvalidXlsx(String),
    #[error("the numbers read from the file come to more than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// A workbook past a bound on what reading it holds in memory.
    #[error("{0}; save the sheet as .csv (or split it) and upload that")]
    WorkbookTooLarge(String),
    #[error("reading the upload failed: {0}")]
    Io(#[from] io::Error),
}

const XLS_HINT: &str = "old Excel .xls workbooks (and password-protected ones) are not supported: \
                        save the sheet as .xlsx or .csv";
const OTHER_SHEET_HINT: &str =
    "this spreadsheet format is not supported: save the sheet as .xlsx or .csv";

/// The stable codes of spreadsheet refusals.
impl From<TabularError> for EngineError {
    fn from(e: TabularError) -> Self {
        let code = match &e {
            TabularError::UnsupportedType(_) => "unsupported_file_type",
            TabularError::Utf16 | TabularError::NotText => "file_not_text",
            TabularError::UnknownPhoneColumn { .. } => "unknown_phone_column",
            TabularError::NoPhoneColumn { .. } => "no_phone_column",
            TabularError::UnknownSheet { .. } => "unknown_sheet",
            TabularError::InvalidXlsx(_) => "invalid_xlsx",
            TabularError::TooLarge { limit } => return EngineError::TooLarge { limit: *limit },
            TabularError::WorkbookTooLarge(_) => {
                return EngineError::TooLargeWith {
                    code: "workbook_too_large",
                    message: e.to_string(),
                };
            }
            TabularError::Io(_) => return EngineError::Internal(e.into()),
        };
        EngineError::invalid(code, e.to_string())
    }
}

fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 30;
    if names.is_empty() {
        return "none".into();
    }
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// The kind of an upload from, in order, its file name's extension, its declared media type
/// and its first bytes (at least [`MAGIC_BYTES`] of them when the file is that long). An OLE2
/// container (an `.xls` workbook, or an encrypted `.xlsx`) is refused whatever its name.
pub fn kind_of(
    file_name: Option<&str>,
    content_type: Option<&str>,
    head: &[u8],
) -> Result<Kind, TabularError> {
    if head.starts_with(OLE2_MAGIC) {
        return Err(TabularError::UnsupportedType(XLS_HINT));
    }
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.trim().to_ascii_lowercase());
    match ext.as_deref() {
        Some("csv") => return Ok(Kind::Csv),
        Some("tsv" | "tab") => return Ok(Kind::Tsv),
        Some("xlsx" | "xlsm") => return Ok(Kind::Xlsx),
        Some("txt") => return Ok(Kind::Text),
        Some("xls") => return Err(TabularError::UnsupportedType(XLS_HINT)),
        Some("xlsb" | "ods" | "numbers") => {
            return Err(TabularError::UnsupportedType(OTHER_SHEET_HINT));
        }
        _ => {}
    }
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("text/csv" | "application/csv" | "text/comma-separated-values") => {
            return Ok(Kind::Csv);
        }
        Some("text/tab-separated-values") => return Ok(Kind::Tsv),
        Some(XLSX_MIME) => return Ok(Kind::Xlsx),
        _ => {}
    }
    Ok(if head.starts_with(ZIP_MAGIC) {
        Kind::Xlsx
    } else {
        Kind::Text
    })
}

/// What the caller chose, and the limits of the conversion.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// A header name (case-insensitive) or a 1-based column number; `None`: detect.
    pub phone_column: Option<&'a str>,
    /// The worksheet to read; `None`: the first (visible) one.
    pub sheet: Option<&'a str>,
    /// The region national numbers are read in, for the detection.
    pub region: Option<RegionCode>,
    /// Most bytes of text the conversion may write.
    pub max_output: u64,
    /// Most bytes an XLSX file may unpack to (its parts' declared sizes, added up).
    pub max_expanded: u64,
}

/// One record of a file: its number (the row a spreadsheet shows it on) and its cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub number: u64,
    pub cells: Vec<String>,
}

impl Record {
    /// No cell holds anything but whitespace.
    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }

    /// The cell of a 0-based column; empty past the record's end.
    pub fn cell(&self, column: usize) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }
}

/// A file read record by record.
pub trait Records {
    /// Reads the next record into `rec` (numbers only grow). With `only`, cells of other
    /// columns are left empty. `false` at the end.
    fn next_record(&mut self, rec: &mut Record, only: Option<usize>) -> Result<bool, TabularError>;
}

/// The records of delimited text, streamed through `csv-core` with bounded memory: flexible
/// (records may differ in length), RFC 4180 quoting, `\n`, `\r\n` or `\r` line ends, a UTF-8
/// byte-order mark skipped. Cells are read as UTF-8, other bytes replaced.
#[derive(Debug)]
pub struct CsvRecords<R> {
    input: R,
    parser: csv_core::Reader,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    started: bool,
    out: Vec<u8>,
    field: Vec<u8>,
    number: u64,
    /// The last byte the parser consumed.
    last: u8,
    /// A `\r` ended the last record or blank line: a `\n` right after it belongs to it.
    after_cr: bool,
    /// The last record ended without the parser consuming its line end.
    term_pending: bool,
}

impl<R: Read> CsvRecords<R> {
    pub fn new(input: R, delimiter: u8) -> Self {
        CsvRecords {
            input,
            parser: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            buf: vec![0; READ_BUFFER],
            pos: 0,
            len: 0,
            eof: false,
            started: false,
            out: vec![0; 4096],
            field: Vec::new(),
            number: 0,
            last: 0,
            after_cr: false,
            term_pending: false,
        }
    }

    fn read_more(&mut self, at: usize) -> io::Result<usize> {
        loop {
            match self.input.read(&mut self.buf[at..]) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.pos < self.len || self.eof {
            return Ok(());
        }
        self.pos = 0;
        self.len = self.read_more(0)?;
        self.eof = self.len == 0;
        Ok(())
    }

    fn start(&mut self) -> io::Result<()> {
        self.started = true;
        while self.len < BOM.len() && !self.eof {
            let n = self.read_more(self.len)?;
            self.len += n;
            self.eof = n == 0;
        }
        if self.buf[..self.len].starts_with(BOM) {
            self.pos = BOM.len();
        }
        Ok(())
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        self.fill()?;
        Ok((self.pos < self.len).then(|| self.buf[self.pos]))
    }
}

impl<R: Read> Records for CsvRecords<R> {
    fn next_record(&mut self, rec: &mut Record, only: Option<usize>) -> Result<bool, TabularError> {
        if !self.started {
            self.start()?;
        }
        rec.cells.clear();
        // csv-core skips blank lines; a spreadsheet shows them as rows, so they are counted
        // (as blank records) here, before the parser sees the next record.
        loop {
            let Some(b) = self.peek()? else {
                return Ok(false);
            };
            match b {
                b'\n' if self.after_cr || self.term_pending => {
                    self.pos += 1;
                    self.after_cr = false;
                    self.term_pending = false;
                }
                b'\r' if self.term_pending => {
                    self.pos += 1;
                    self.after_cr = true;
                    self.term_pending = false;
                }
                b'\n' | b'\r' => {
                    self.pos += 1;
                    self.after_cr = b == b'\r';
                    self.number += 1;
                    rec.number = self.number;
                    return Ok(true);
                }
                _ => {
                    self.after_cr = false;
                    self.term_pending = false;
                    break;
                }
            }
        }
        self.number += 1;
        rec.number = self.number;
        self.parser.reset();
        // A reset parser strips a byte-order mark at the start of its input; past the file's
        // start one is data, so the first call sees a single byte (too short to strip).
        let mut fresh = true;
        self.field.clear();
        let mut column = 0usize;
        loop {
            self.fill()?;
            let end = if fresh {
                self.len.min(self.pos + 1)
            } else {
                self.len
            };
            fresh = false;
            let input = &self.buf[self.pos..end];
            let (result, nin, nout) = self.parser.read_field(input, &mut self.out);
            if nin > 0 {
                self.last = input[nin - 1];
            }
            let exhausted = input.is_empty();
            self.pos += nin;
            let room = MAX_CELL_BYTES.saturating_sub(self.field.len());
            self.field.extend_from_slice(&self.out[..nout.min(room)]);
            let record_end = match result {
                ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull if !exhausted => {
                    continue;
                }
                ReadFieldResult::Field { record_end } => record_end,
                // The input ended inside the record: it ends here.
                _ => true,
            };
            if column < MAX_COLUMNS && only.is_none_or(|o| o == column) {
                if rec.cells.len() < column {
                    rec.cells.resize(column, String::new());
                }
                let text = String::from_utf8_lossy(&self.field).into_owned();
                // Replaced bytes take three bytes each: cap again.
                rec.cells.push(cap(text, MAX_CELL_BYTES));
            }
            column += 1;
            self.field.clear();
            if record_end {
                self.after_cr = self.last == b'\r';
                self.term_pending = self.last != b'\r' && self.last != b'\n';
                return Ok(true);
            }
        }
    }
}

/// The rows of a worksheet, from calamine's streaming cell reader. A row's number is its
/// number in the sheet; rows without any value are left out.
struct XlsxRecords<'a, RS: Read + Seek> {
    cells: calamine::XlsxCellReader<'a, RS>,
    pending: Option<(u32, u32, String)>,
    /// The reader reached the sheet's end (asking it again would read past it).
    done: bool,
}

impl<RS: Read + Seek> XlsxRecords<'_, RS> {
    fn next_cell(&mut self) -> Result<Option<(u32, u32, String)>, TabularError> {
        while !self.done {
            let Some(cell) = self.cells.next_cell().map_err(xlsx_error)? else {
                self.done = true;
                break;
            };
            let (row, column) = cell.get_position();
            if row >= MAX_XLSX_ROWS {
                return Err(TabularError::InvalidXlsx(format!(
                    "a cell lies on row {}, past Excel's last row",
                    u64::from(row) + 1
                )));
            }
            if column as usize >= MAX_COLUMNS {
                continue;
            }
            let text = cell_text(cell.get_value());
            if !text.is_empty() {
                return Ok(Some((row, column, text)));
            }
        }
        Ok(None)
    }
}

fn put_cell(rec: &mut Record, column: u32, text: String, only: Option<usize>) {
    let column = column as usize;
    if only.is_some_and(|o| o != column) {
        return;
    }
    if rec.cells.len() <= column {
        rec.cells.resize(column + 1, String::new());
    }
    rec.cells[column] = cap(text, MAX_CELL_BYTES);
}

impl<RS: Read + Seek> Records for XlsxRecords<'_, RS> {
    fn next_record(&mut self, rec: &mut Record, only: Option<usize>) -> Result<bool, TabularError> {
        rec.cells.clear();
        let first = match self.pending.take() {
            Some(cell) => cell,
            None => match self.next_cell()? {
                Some(cell) => cell,
                None => return Ok(false),
            },
        };
        let row = first.0;
        rec.number = u64::from(row) + 1;
        put_cell(rec, first.1, first.2, only);
        while let Some(cell) = self.next_cell()? {
            if cell.0 != row {
                self.pending = Some(cell);
                break;
            }
            put_cell(rec, cell.1, cell.2, only);
        }
        Ok(true)
    }
}

fn xlsx_error(e: calamine::XlsxError) -> TabularError {
    TabularError::InvalidXlsx(e.to_string())
}

/// A cell's value as text. Numbers are written the way a person reads them: an integer
/// stored as a float (`447700900123.0`) comes out as its digits, never with `.0` or an
/// exponent.
pub fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(d) => number_text(d.as_f64()),
        DataRef::Error(e) => e.to_string(),
        DataRef::Empty => String::new(),
    }
}

/// A spreadsheet number as text: integers as plain digits, other values in Rust's shortest
/// round-trip form (which never uses an exponent).
pub fn number_text(f: f64) -> String {
    if f == 0.0 {
        // Also -0.0.
        return "0".into();
    }
    f.to_string()
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cap(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

fn cap_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The delimiter of delimited text, from its first lines: among `,` `;` tab and `|`, the one
/// that splits the most lines into the same number of fields (quoted text not counted). A
/// tie goes to the tab when `prefer_tab`, else to the earlier in that list; none at all
/// means a single column.
pub fn sniff_delimiter(head: &[u8], prefer_tab: bool) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let head = head.strip_prefix(BOM).unwrap_or(head);
    let lines: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(SNIFF_LINES)
        .collect();
    let mut best: Option<(u8, usize, usize)> = None;
    for &d in &CANDIDATES {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, d)).collect();
        // The most common non-zero count, and how many lines have it.
        let mut tally: Vec<(usize, usize)> = Vec::new();
        for &c in counts.iter().filter(|&&c| c > 0) {
            match tally.iter_mut().find(|(n, _)| *n == c) {
                Some((_, k)) => *k += 1,
                None => tally.push((c, 1)),
            }
        }
        let Some(&(fields, lines_with)) = tally
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            continue;
        };
        let better = match best {
            None => true,
            Some((bd, bl, bf)) => {
                lines_with > bl
                    || (lines_with == bl && fields > bf && !(prefer_tab && bd == b'\t'))
                    || (lines_with == bl && fields == bf && prefer_tab && d == b'\t')
            }
        };
        if better {
            best = Some((d, lines_with, fields));
        }
    }
    match best {
        Some((d, _, _)) => d,
        None if prefer_tab => b'\t',
        None => b',',
    }
}

fn count_outside_quotes(line: &[u8], delimiter: u8) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delimiter && !quoted {
            n += 1;
        }
    }
    n
}

/// Refuses what cannot be delimited text: UTF-16 and files with NUL bytes. Other bytes that
/// are not UTF-8 (a legacy code page) are let through; the cells read them replaced.
fn check_delimited_text(head: &[u8]) -> Result<(), TabularError> {
    match check_text(head) {
        TextCheck::Utf16 => Err(TabularError::Utf16),
        TextCheck::Binary if head.contains(&0) => Err(TabularError::NotText),
        _ => Ok(()),
    }
}

/// How columns without a header name are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `column 1`, `column 2`, …
    Numbered,
    /// `A`, `B`, … `AA`, as a spreadsheet labels them.
    Letters,
}

/// One column of a previewed file, as the detection saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = PreviewColumn))]
pub struct Column {
    /// 1-based.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, format = Int64))]
    pub index: usize,
    /// The header cell, or a made-up name (`column 2`, `B`) without a header.
    pub name: String,
    /// Share of the sampled records whose cell here reads as a phone number, 0 to 1.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub phone_share: f64,
    /// The first few non-empty cells below the header.
    pub samples: Vec<String>,
}

/// How the phone column was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PickedBy {
    /// The caller named it (`phone_column`).
    Request,
    /// Its header names phone numbers (`Phone`, `MSISDN`, …).
    Header,
    /// Its cells read as phone numbers more than any other column's.
    Values,
}

/// What the detection found in a file's first records.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub has_header: bool,
    pub columns: Vec<Column>,
    /// 1-based; `None` when no column looks like phone numbers and none was named.
    pub phone_column: Option<usize>,
    /// How `phone_column` was chosen (`None` with it).
    pub picked_by: Option<PickedBy>,
    /// The header's record number.
    pub header: Option<u64>,
}

/// A header cell that names a column of phone numbers: `Phone`, `Mobile number`,
/// `phone_number`, `MSISDN`, `Tel.`, `WhatsApp`, `Contact No`, `Number`, …
pub fn is_phoneish(name: &str) -> bool {
    const PHONE: &[&str] = &[
        "phone",
        "phones",
        "phonenumber",
        "phoneno",
        "mobile",
        "mobiles",
        "mobilephone",
        "mobilenumber",
        "mobileno",
        "mob",
        "msisdn",
        "tel",
        "telno",
        "telephone",
        "telephonenumber",
        "cell",
        "cellphone",
        "cellnumber",
        "cellular",
        "whatsapp",
        "whatsappnumber",
        "gsm",
        "contactnumber",
        "contactno",
        "handy",
        "telefon",
        "telefono",
        "teléfono",
        "telefone",
        "téléphone",
        "portable",
        "celular",
        "movil",
        "móvil",
        "mobil",
        "smartphone",
    ];
    const NUMBER: &[&str] = &["number", "numbers", "nummer", "numero", "número", "numéro"];
    const SHORT_NUMBER: &[&str] = &["no", "nr", "num"];
    const QUALIFIER: &[&str] = &[
        "contact",
        "primary",
        "main",
        "home",
        "work",
        "personal",
        "business",
        "private",
        "other",
        "alt",
        "alternate",
        "alternative",
        "your",
    ];
    let lower = name.trim().to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || words.len() > 4 {
        return false;
    }
    if words.iter().any(|w| PHONE.contains(w)) {
        return true;
    }
    let is = |set: &[&str]| words.iter().any(|w| set.contains(w));
    let known = words
        .iter()
        .all(|w| NUMBER.contains(w) || SHORT_NUMBER.contains(w) || QUALIFIER.contains(w));
    known && (is(NUMBER) || (is(SHORT_NUMBER) && is(QUALIFIER)))
}

/// The spreadsheet label of a 0-based column: `A` … `Z`, `AA`, ….
pub fn column_letters(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds the header and the phone column in a file's first records.
///
/// A header is the first non-blank record when one of its cells names a phone column
/// ([`is_phoneish`]), or when it holds a cell that is not a number above a column whose
/// later cells mostly are. The phone column is the one `phone_column` names (a header or
/// made-up name, case-insensitive, or a 1-based number); else the phone-ish header with the
/// most numbers below it; else the column whose cells most often read as phone numbers (valid
/// ones weigh more, so an ID column read in a default region does not win), if at least half
/// of them do.
pub fn layout(
    sample: &[Record],
    plan: NumberingPlan,
    region: Option<RegionCode>,
    phone_column: Option<&str>,
    naming: Naming,
) -> Result<Layout, TabularError> {
    let wanted = phone_column.map(str::trim).filter(|w| !w.is_empty());
    let rows: Vec<&Record> = sample.iter().filter(|r| !r.is_blank()).collect();
    let Some(&first) = rows.first() else {
        return Ok(Layout {
            has_header: false,
            columns: Vec::new(),
            phone_column: None,
            picked_by: None,
            header: None,
        });
    };
    let width = rows
        .iter()
        .map(|r| r.cells.len())
        .max()
        .unwrap_or(0)
        .min(MAX_COLUMNS);
    // Some(valid) when the cell reads as a phone number.
    let read = |text: &str| -> Option<bool> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        plan.check_line(t.as_bytes(), region).ok().map(|c| c.valid)
    };
    let count = |rows: &[&Record], column: usize| -> (usize, usize) {
        rows.iter()
            .filter_map(|r| read(r.cell(column)))
            .fold((0, 0), |(p, v), valid| (p + 1, v + usize::from(valid)))
    };
    let ratio = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let rest = &rows[1..];
    let names_a_first_cell = wanted.is_some_and(|w| {
        w.parse::<usize>().is_err() && first.cells.iter().any(|c| same_name(c, w))
    });
    let phoneish: Vec<usize> = (0..width).filter(|&c| is_phoneish(first.cell(c))).collect();
    let has_header = names_a_first_cell
        || !phoneish.is_empty()
        || (0..width).any(|c| {
            let cell = first.cell(c).trim();
            !cell.is_empty()
                && read(cell).is_none()
                && ratio(count(rest, c).0, rest.len()) >= MIN_SHARE
        });
    let data: &[&Record] = if has_header { rest } else { &rows };
    let mut shares = Vec::with_capacity(width);
    let mut scores = Vec::with_capacity(width);
    let columns: Vec<Column> = (0..width)
        .map(|c| {
            let (parsed, valid) = count(data, c);
            let share = ratio(parsed, data.len());
            shares.push(share);
            scores.push(share + ratio(valid, data.len()));
            let header = first.cell(c).trim();
            let name = if has_header && !header.is_empty() {
                cap_chars(header, MAX_NAME_CHARS)
            } else {
                match naming {
                    Naming::Numbered => format!("column {}", c + 1),
                    Naming::Letters => column_letters(c),
                }
            };
            Column {
                index: c + 1,
                name,
                phone_share: (share * 1000.0).round() / 1000.0,
                samples: data
                    .iter()
                    .map(|r| r.cell(c).trim())
                    .filter(|t| !t.is_empty())
                    .take(MAX_SAMPLES)
                    .map(|t| cap_chars(t, MAX_NAME_CHARS))
                    .collect(),
            }
        })
        .collect();
    // Highest score; a tie goes to the leftmost column.
    let best = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates.max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
    };
    let (phone_column, picked_by) = match wanted {
        Some(w) => (Some(resolve(w, &columns)?), Some(PickedBy::Request)),
        None => {
            let by_header = best(&mut phoneish.iter().copied());
            let by_data = best(&mut (0..width).filter(|&c| shares[c] >= MIN_SHARE));
            match (by_header, by_data) {
                // A phone-ish header wins unless nothing below it reads as a number while
                // another column's cells do.
                (Some(h), Some(d)) if scores[h] == 0.0 => (Some(d + 1), Some(PickedBy::Values)),
                (Some(h), _) => (Some(h + 1), Some(PickedBy::Header)),
                (None, d) => (d.map(|d| d + 1), d.map(|_| PickedBy::Values)),
            }
        }
    };
    Ok(Layout {
        has_header,
        columns,
        phone_column,
        picked_by,
        header: has_header.then_some(first.number),
    })
}

fn same_name(cell: &str, wanted: &str) -> bool {
    let cell = cell.trim();
    cell.len() <= MAX_NAME_CHARS * 4
        && cap_chars(cell, MAX_NAME_CHARS).to_lowercase() == wanted.to_lowercase()
}

fn resolve(wanted: &str, columns: &[Column]) -> Result<usize, TabularError> {
    if let Some(c) = columns.iter().find(|c| same_name(&c.name, wanted)) {
        return Ok(c.index);
    }
    match wanted.parse::<usize>() {
        Ok(n) if (1..=columns.len()).contains(&n) => Ok(n),
        _ => Err(TabularError::UnknownPhoneColumn {
            given: cap_chars(wanted, MAX_NAME_CHARS),
            available: columns.iter().map(|c| c.name.clone()).collect(),
        }),
    }
}

/// Reads the records the detection looks at: a header and [`SAMPLE_RECORDS`] more non-blank
/// ones, fewer when their cells pass [`SAMPLE_BUDGET`].
fn read_sample(records: &mut dyn Records) -> Result<Vec<Record>, TabularError> {
    let mut sample = Vec::new();
    let mut filled = 0;
    let mut spent = 0;
    while filled <= SAMPLE_RECORDS && spent < SAMPLE_BUDGET {
        let mut rec = Record::default();
        if !records.next_record(&mut rec, None)? {
            break;
        }
        spent += RECORD_OVERHEAD + rec.cells.iter().map(|c| c.len() + 24).sum::<usize>();
        if !rec.is_blank() {
            filled += 1;
        }
        sample.push(rec);
    }
    Ok(sample)
}

/// Writes the text lines, keeping line numbers equal to record numbers.
struct Lines<W> {
    out: W,
    line: u64,
    written: u64,
    limit: u64,
}

impl<W: Write> Lines<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), TabularError> {
        self.written += bytes.len() as u64;
        if self.written > self.limit {
            return Err(TabularError::TooLarge { limit: self.limit });
        }
        self.out.write_all(bytes)?;
        Ok(())
    }

    fn record(&mut self, number: u64, value: &str) -> Result<(), TabularError> {
        const BLANKS: [u8; 512] = [b'\n'; 512];
        // Rows a sheet leaves out stay as blank lines, so numbers keep matching.
        while self.line + 1 < number {
            let gap = (number - self.line - 1).min(BLANKS.len() as u64);
            self.put(&BLANKS[..gap as usize])?;
            self.line += gap;
        }
        if value.contains(['\r', '\n']) {
            self.put(value.replace(['\r', '\n'], " ").as_bytes())?;
        } else {
            self.put(value.as_bytes())?;
        }
        self.put(b"\n")?;
        self.line += 1;
        Ok(())
    }
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub has_header: bool,
    /// 1-based; `None` only for a file without any value.
    pub phone_column: Option<usize>,
    /// Lines written: the last record's number.
    pub lines: u64,
}

fn convert_records(
    records: &mut dyn Records,
    plan: NumberingPlan,
    options: &Options<'_>,
    naming: Naming,
    out: impl Write,
) -> Result<Converted, TabularError> {
    let (sample, layout) = sample_layout(records, plan, options, naming)?;
    let mut lines = Lines {
        out,
        line: 0,
        written: 0,
        limit: options.max_output,
    };
    let Some(phone) = layout.phone_column else {
        if layout.columns.is_empty() {
            // Nothing but blank records: the empty text tells the caller.
            return Ok(Converted {
                has_header: false,
                phone_column: None,
                lines: 0,
            });
        }
        return Err(TabularError::NoPhoneColumn {
            available: layout.columns.iter().map(|c| c.name.clone()).collect(),
        });
    };
    let column = phone - 1;
    for rec in &sample {
        if Some(rec.number) == layout.header {
            lines.record(rec.number, "")?;
        } else {
            lines.record(rec.number, rec.cell(column))?;
        }
    }
    let mut rec = Record::default();
    while records.next_record(&mut rec, Some(column))? {
        lines.record(rec.number, rec.cell(column))?;
    }
    lines.out.flush()?;
    Ok(Converted {
        has_header: layout.has_header,
        phone_column: Some(phone),
        lines: lines.line,
    })
}

/// Converts delimited text into one line per record holding the phone column's cell (the
/// header as a blank line). The delimiter is sniffed from the first lines.
pub fn convert_csv(
    mut input: impl Read,
    prefer_tab: bool,
    plan: NumberingPlan,
    options: &Options<'_>,
    out: impl Write,
) -> Result<Converted, TabularError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut input)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    check_delimited_text(&head)?;
    let delimiter = sniff_delimiter(&head, prefer_tab);
    let mut records = CsvRecords::new(io::Cursor::new(head).chain(input), delimiter);
    convert_records(&mut records, plan, options, Naming::Numbered, out)
}

/// Converts a worksheet (`options.sheet`, else the first visible one) into one line per
/// sheet row holding the phone column's cell (the header row and empty rows as blank lines).
pub fn convert_xlsx<RS: Read + Seek>(
    input: RS,
    plan: NumberingPlan,
    options: &Options<'_>,
    out: impl Write,
) -> Result<Converted, TabularError> {
    with_sheet(input, options, |records, _| {
        convert_records(records, plan, options, Naming::Letters, out)
    })
}

/// Opens the workbook and hands `f` the records of the chosen sheet (`options.sheet`, else
/// the first visible one) with the names of all its worksheets.
fn with_sheet<RS: Read + Seek, T>(
    input: RS,
    options: &Options<'_>,
    f: impl FnOnce(&mut XlsxRecords<'_, RS>, Vec<String>) -> Result<T, TabularError>,
) -> Result<T, TabularError> {
    let mut workbook = open_xlsx(input, options.max_expanded)?;
    let (sheet, names) = pick_sheet(&workbook, options.sheet)?;
    let cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(xlsx_error)?;
    let mut records = XlsxRecords {
        cells,
        pending: None,
        done: false,
    };
    f(&mut records, names)
}

fn open_xlsx<RS: Read + Seek>(mut input: RS, max_expanded: u64) -> Result<Xlsx<RS>, TabularError> {
    {
        // calamine holds the shared strings whole and reads each part through a buffer that
        // grows with a single XML value; bounding what the parts unpack to bounds both.
        let mut zip = zip::ZipArchive::new(&mut input).map_err(|e| {
            TabularError::InvalidXlsx(format!("it is not an .xlsx (zip) file: {e}"))
        })?;
        let expanded = match zip.decompressed_size() {
            Some(total) => total,
            None => {
                let mut total = 0u128;
                for i in 0..zip.len() {
                    let part = zip
                        .by_index_raw(i)
                        .map_err(|e| TabularError::InvalidXlsx(e.to_string()))?;
                    total += u128::from(part.size());
                }
                total
            }
        };
        if expanded > u128::from(max_expanded) {
            return Err(TabularError::InvalidXlsx(format!(
                "it unpacks to more than {max_expanded} bytes"
            )));
        }
        check_xml_parts(&mut zip)?;
    }
    input.seek(SeekFrom::Start(0))?;
    Xlsx::new(input).map_err(xlsx_error)
}

/// Reads every XML part of a workbook once, streaming, before calamine does: refuses a run
/// of XML (a value, a shared string, a tag) over [`MAX_XML_RUN`] and shared strings over
/// [`MAX_SHARED_STRINGS`], whatever the parts declare.
fn check_xml_parts<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> Result<(), TabularError> {
    let mut buf = vec![0u8; READ_BUFFER];
    for i in 0..zip.len() {
        let mut part = zip
            .by_index(i)
            .map_err(|e| TabularError::InvalidXlsx(e.to_string()))?;
        let shown = part
            .name()
            .map(|n| n.into_owned())
            .map_err(|e| TabularError::InvalidXlsx(e.to_string()))?;
        let name = shown.to_ascii_lowercase();
        if !(name.ends_with(".xml") || name.ends_with(".rels")) {
            continue;
        }
        let shared = name.ends_with("sharedstrings.xml");
        let mut runs = XmlRuns::default();
        let mut total = 0u64;
        loop {
            let n = match part.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(TabularError::InvalidXlsx(e.to_string())),
            };
            total += n as u64;
            if shared && total > MAX_SHARED_STRINGS {
                return Err(TabularError::WorkbookTooLarge(format!(
                    "the workbook's shared strings unpack to more than {} MiB",
                    MAX_SHARED_STRINGS >> 20
                )));
            }
            if runs.feed(&buf[..n]) > MAX_XML_RUN {
                return Err(TabularError::WorkbookTooLarge(format!(
                    "a cell or value of the workbook ({}) holds more than {} MiB",
                    shown,
                    MAX_XML_RUN >> 20
                )));
            }
        }
    }
    Ok(())
}

/// The longest run of XML bytes from one `<` to the next: a tag with the text after it, which
/// is what an XML reader holds at once. (A `>` may stand in text and in quoted attributes, so
/// only `<` ends a run.) A `<!` construct (CDATA, a comment, a doctype) may hold `<` inside:
/// it is one run up to its `]]>` or `-->`. Fed in pieces.
#[derive(Debug, Default)]
struct XmlRuns {
    run: usize,
    longest: usize,
    /// The last byte was a `<` outside a `<!` construct.
    after_lt: bool,
    /// Inside a `<!` construct.
    special: bool,
    last2: [u8; 2],
}

impl XmlRuns {
    /// Reads the next piece; returns the longest run so far.
    fn feed(&mut self, bytes: &[u8]) -> usize {
        for &b in bytes {
            if self.special {
                self.run += 1;
                if b == b'>' && (self.last2 == *b"]]" || self.last2 == *b"--") {
                    self.special = false;
                }
            } else {
                if self.after_lt && b == b'!' {
                    self.special = true;
                }
                self.after_lt = b == b'<';
                if b == b'<' {
                    self.longest = self.longest.max(self.run);
                    self.run = 0;
                } else {
                    self.run += 1;
                }
            }
            self.last2 = [self.last2[1], b];
        }
        self.longest.max(self.run)
    }
}

/// The sheet to read and the names of all worksheets.
fn pick_sheet<RS: Read + Seek>(
    workbook: &Xlsx<RS>,
    wanted: Option<&str>,
) -> Result<(String, Vec<String>), TabularError> {
    let sheets: Vec<&calamine::Sheet> = workbook
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .collect();
    let names: Vec<String> = sheets.iter().map(|s| s.name.clone()).collect();
    let chosen = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => names
            .iter()
            .find(|n| n.as_str() == w)
            .or_else(|| {
                names
                    .iter()
                    .find(|n| n.trim().to_lowercase() == w.to_lowercase())
            })
            .cloned()
            .ok_or_else(|| TabularError::UnknownSheet {
                given: cap_chars(w, MAX_NAME_CHARS),
                available: names.clone(),
            })?,
        None => sheets
            .iter()
            .find(|s| s.visible == SheetVisible::Visible)
            .or(sheets.first())
            .map(|s| s.name.clone())
            .ok_or_else(|| TabularError::InvalidXlsx("it has no worksheet".into()))?,
    };
    Ok((chosen, names))
}

/// What `POST /v1/tasks/preview` answers: the file's columns and the one an upload would read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    /// `text`, `csv` or `xlsx`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(text|csv|xlsx)$"))]
    pub kind: &'static str,
    /// The part's file name, when it had one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub file_name: Option<String>,
    pub has_header: bool,
    /// The file's columns; a text file has one, `number`.
    pub columns: Vec<Column>,
    /// The 1-based column an upload would read; `null` when none looks like phone numbers.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, minimum = 1, format = Int64)
    )]
    pub phone_column: Option<usize>,
    /// The workbook's worksheets (`.xlsx` only, else empty).
    pub sheets: Vec<String>,
    /// How `phone_column` was chosen: `request`, `header` or `values`; `null` with it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub picked_by: Option<PickedBy>,
}

impl Preview {
    fn from_layout(kind: Kind, layout: Layout, sheets: Vec<String>) -> Self {
        Preview {
            kind: kind.as_str(),
            file_name: None,
            has_header: layout.has_header,
            columns: layout.columns,
            phone_column: layout.phone_column,
            sheets,
            picked_by: layout.picked_by,
        }
    }
}

/// The preview of a text upload (its first bytes; `cut` when the file goes on): one column.
pub fn preview_text(
    head: &[u8],
    cut: bool,
    plan: NumberingPlan,
    region: Option<RegionCode>,
) -> Result<Preview, TabularError> {
    match check_text(&head[..head.len().min(SNIFF_BYTES)]) {
        TextCheck::Text => {}
        TextCheck::Utf16 => return Err(TabularError::Utf16),
        TextCheck::Binary => return Err(TabularError::NotText),
    }
    let mut lines: Vec<(String, bool)> = Vec::new();
    let mut take = |line: numcheck_core::Line<'_>| {
        if !line.is_blank() && lines.len() < SAMPLE_RECORDS {
            let parsed = !line.truncated && plan.parse_line(line.text, region).is_ok();
            let text = String::from_utf8_lossy(line.text);
            lines.push((cap_chars(text.trim(), MAX_NAME_CHARS), parsed));
        }
    };
    let mut splitter = LineSplitter::new();
    splitter.push(head, &mut take);
    if !cut {
        splitter.finish(&mut take);
    }
    let parsed = lines.iter().filter(|(_, p)| *p).count();
    let share = if lines.is_empty() {
        0.0
    } else {
        parsed as f64 / lines.len() as f64
    };
    Ok(Preview {
        kind: Kind::Text.as_str(),
        file_name: None,
        has_header: false,
        columns: vec![Column {
            index: 1,
            name: "number".into(),
            phone_share: (share * 1000.0).round() / 1000.0,
            samples: lines
                .iter()
                .take(MAX_SAMPLES)
                .map(|(t, _)| t.clone())
                .collect(),
        }],
        phone_column: (!lines.is_empty()).then_some(1),
        sheets: Vec::new(),
        // A text file has one column.
        picked_by: (!lines.is_empty()).then_some(PickedBy::Values),
    })
}

/// The preview of delimited text from its first bytes (`cut` when the file goes on: the
/// last, partial line is left out).
pub fn preview_csv(
    head: &[u8],
    cut: bool,
    prefer_tab: bool,
    plan: NumberingPlan,
    options: &Options<'_>,
) -> Result<Preview, TabularError> {
    check_delimited_text(&head[..head.len().min(SNIFF_BYTES)])?;
    let delimiter = sniff_delimiter(&head[..head.len().min(SNIFF_BYTES)], prefer_tab);
    let head = match head.iter().rposition(|&b| b == b'\n') {
        Some(end) if cut => &head[..=end],
        _ => head,
    };
    let (_, layout) = sample_layout(
        &mut CsvRecords::new(head, delimiter),
        plan,
        options,
        Naming::Numbered,
    )?;
    let kind = if prefer_tab { Kind::Tsv } else { Kind::Csv };
    Ok(Preview::from_layout(kind, layout, Vec::new()))
}

/// The first records, and the layout they show.
fn sample_layout(
    records: &mut dyn Records,
    plan: NumberingPlan,
    options: &Options<'_>,
    naming: Naming,
) -> Result<(Vec<Record>, Layout), TabularError> {
    let sample = read_sample(records)?;
    let layout = layout(&sample, plan, options.region, options.phone_column, naming)?;
    Ok((sample, layout))
}

/// The preview of a workbook's chosen sheet, with the names of all its worksheets.
pub fn preview_xlsx<RS: Read + Seek>(
    input: RS,
    plan: NumberingPlan,
    options: &Options<'_>,
) -> Result<Preview, TabularError> {
    with_sheet(input, options, |records, names| {
        let (_, layout) = sample_layout(records, plan, options, Naming::Letters)?;
        Ok(Preview::from_layout(Kind::Xlsx, layout, names))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_longest_xml_run_is_measured_across_pieces() {
        let xml: &[u8] =
            b"<a><b x=\"1>2\">hello > world</b><![CDATA[x<y<z]]><c>012</c><!-- a<b --></a>";
        let whole = XmlRuns::default().feed(xml);
        // From one `<` to the next; `>` ends nothing.
        assert_eq!(whole, "b x=\"1>2\">hello > world".len());
        for cut in 1..xml.len() {
            let mut runs = XmlRuns::default();
            runs.feed(&xml[..cut]);
            assert_eq!(runs.feed(&xml[cut..]), whole, "cut at {cut}");
        }
        assert_eq!(
            XmlRuns::default().feed(b"<t>a>b>c>d</t>"),
            "t>a>b>c>d".len()
        );
        // A `<!` construct is one run, whatever it holds.
        let cdata = XmlRuns::default().feed(b"<a/><![CDATA[x<y<z]]><b/><!-- p<q --><c/>");
        assert_eq!(cdata, "![CDATA[x<y<z]]>".len());
        // An unfinished run at the end counts.
        assert_eq!(XmlRuns::default().feed(b"<t>unfinished text"), 17);
        assert_eq!(XmlRuns::default().feed(b"<![CDATA[never closed <<<"), 24);
    }

    const PLAN: NumberingPlan = NumberingPlan;

    fn options() -> Options<'static> {
        Options {
            phone_column: None,
            sheet: None,
            region: None,
            max_output: u64::MAX,
            max_expanded: u64::MAX,
        }
    }

    fn records(data: &[u8], delimiter: u8) -> Vec<(u64, Vec<String>)> {
        let mut reader = CsvRecords::new(data, delimiter);
        let mut out = Vec::new();
        let mut rec = Record::default();
        while reader.next_record(&mut rec, None).unwrap() {
            out.push((rec.number, rec.cells.clone()));
        }
        out
    }

    /// Checks the records of `data`: `want` holds each record's cells, numbered from 1.
    fn assert_records(data: &[u8], delimiter: u8, want: &[&[&str]]) {
        let want: Vec<(u64, Vec<String>)> = sample(want)
            .into_iter()
            .map(|r| (r.number, r.cells))
            .collect();
        assert_eq!(records(data, delimiter), want);
    }

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    fn sample(rows: &[&[&str]]) -> Vec<Record> {
        rows.iter()
            .enumerate()
            .map(|(i, cells)| Record {
                number: i as u64 + 1,
                cells: row(cells),
            })
            .collect()
    }

    /// The layout detected in these records (columns numbered, no region, no column named).
    fn detected(rows: &[&[&str]]) -> Layout {
        layout(&sample(rows), PLAN, None, None, Naming::Numbered).unwrap()
    }

    fn csv_text(data: &str, options: &Options<'_>) -> Result<String, TabularError> {
        let mut out = Vec::new();
        convert_csv(data.as_bytes(), false, PLAN, options, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn blank_lines_count_as_records_and_quoted_line_ends_do_not() {
        assert_records(
            b"a,b\r\n\r\nc,\"d\r\ne\"\n\n\nf\rg",
            b',',
            &[&["a", "b"], &[], &["c", "d\r\ne"], &[], &[], &["f"], &["g"]],
        );
    }

    #[test]
    fn a_byte_order_mark_past_the_start_is_data() {
        assert_records(
            b"a\r\xEF\xBB\xBF\nb\n\xEF\xBB\xBFc",
            b',',
            &[&["a"], &["\u{FEFF}"], &["b"], &["\u{FEFF}c"]],
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_records_may_differ_in_length() {
        assert_records(
            b"\xEF\xBB\xBFphone;name\n+1;x;extra\n+2\n",
            b';',
            &[&["phone", "name"], &["+1", "x", "extra"], &["+2"]],
        );
    }

    #[test]
    fn an_overlong_cell_is_kept_cut_and_an_unclosed_quote_ends_at_the_end() {
        let long = "9".repeat(100_000);
        let data = format!("{long},x\n\"open,{long}\n");
        let got = records(data.as_bytes(), b',');
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1[0].len(), MAX_CELL_BYTES);
        assert_eq!(got[1].1.len(), 1);
        assert_eq!(got[1].1[0].len(), MAX_CELL_BYTES);
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_first_lines() {
        assert_eq!(sniff_delimiter(b"name;phone\nSmith, J;+44\n", false), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n1\t2\t3\n", false), b'\t');
        assert_eq!(sniff_delimiter(b"a|b\n1|2\n", false), b'|');
        assert_eq!(sniff_delimiter(b"\"a;b\",c\n\"1;2\",3\n", false), b',');
        assert_eq!(sniff_delimiter(b"+14155552671\n", false), b',');
        assert_eq!(sniff_delimiter(b"+14155552671\n", true), b'\t');
        assert_eq!(sniff_delimiter(b"a,b\tc\n", true), b'\t');
    }

    #[test]
    fn phoneish_headers_are_recognised() {
        for name in [
            "Phone",
            "phone number",
            "Phone_Number",
            "PHONE-NUMBER",
            "PhoneNumber",
            "Mobile",
            "mobile_phone",
            "MSISDN",
            "Tel.",
            "Telephone",
            "cell",
            "Cellphone",
            "WhatsApp",
            "whatsapp number",
            "Contact Number",
            "contact no",
            "Number",
            "Phone 2",
            "phone1",
            "Home phone",
            "Teléfono",
        ] {
            assert!(is_phoneish(name), "{name}");
        }
        for name in [
            "",
            "Name",
            "No",
            "No.",
            "Account number",
            "Order No",
            "Email",
            "Contact",
            "Hotel",
            "id",
        ] {
            assert!(!is_phoneish(name), "{name}");
        }
    }

    #[test]
    fn column_letters_follow_the_spreadsheet() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn numbers_stored_as_floats_come_out_as_digits() {
        assert_eq!(number_text(447_700_900_123.0), "447700900123");
        assert_eq!(number_text(14_155_552_671.0), "14155552671");
        assert_eq!(number_text(1e15), "1000000000000000");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(0.5), "0.5");
        assert_eq!(
            cell_text(&DataRef::Float(447_700_900_123.0)),
            "447700900123"
        );
        assert_eq!(cell_text(&DataRef::Int(33_612_345_678)), "33612345678");
        assert_eq!(
            cell_text(&DataRef::SharedString("+44 7700 900123")),
            "+44 7700 900123"
        );
    }

    #[test]
    fn a_phoneish_header_names_the_column() {
        let l = detected(&[
            &["Name", "Mobile", "City"],
            &["Ann", "+447911123456", "Leeds"],
            &["Bob", "+33612345678", "Lyon"],
        ]);
        assert!(l.has_header);
        assert_eq!(l.header, Some(1));
        assert_eq!(l.phone_column, Some(2));
        let names: Vec<&str> = l.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Name", "Mobile", "City"]);
        assert_eq!(l.columns[1].phone_share, 1.0);
        assert_eq!(l.columns[1].samples, ["+447911123456", "+33612345678"]);
    }

    #[test]
    fn without_a_telling_header_the_column_of_numbers_wins() {
        let l = detected(&[
            &["Who", "Reach", "Note"],
            &["Ann", "+447911123456", "x"],
            &["Bob", "+33612345678", "y"],
        ]);
        assert!(l.has_header, "a text cell above a column of numbers");
        assert_eq!(l.phone_column, Some(2));

        let s = sample(&[&["Ann", "+447911123456"], &["Bob", "+33612345678"]]);
        let l = layout(&s, PLAN, None, None, Naming::Letters).unwrap();
        assert!(!l.has_header);
        assert_eq!(l.phone_column, Some(2));
        assert_eq!(l.columns[1].name, "B");
        assert_eq!(l.columns[1].samples.len(), 2);
    }

    #[test]
    fn an_id_column_read_in_a_region_loses_to_the_valid_numbers() {
        let region: RegionCode = "GB".parse().unwrap();
        let s = sample(&[
            &["12345", "07911 123456"],
            &["12346", "07911 123457"],
            &["12347", "07911 123458"],
        ]);
        let l = layout(&s, PLAN, Some(region), None, Naming::Numbered).unwrap();
        assert_eq!(l.phone_column, Some(2));
    }

    #[test]
    fn phone_column_by_name_or_number_and_unknown_names_list_the_columns() {
        let s = sample(&[
            &["Name", "Home", "Work"],
            &["Ann", "+447911123456", "+33612345678"],
        ]);
        let pick = |w: &str| layout(&s, PLAN, None, Some(w), Naming::Numbered);
        assert_eq!(pick("work").unwrap().phone_column, Some(3));
        assert_eq!(pick(" 2 ").unwrap().phone_column, Some(2));
        let err = pick("Fax").unwrap_err();
        assert!(matches!(err, TabularError::UnknownPhoneColumn { .. }));
        assert!(err.to_string().contains("\"Work\""), "{err}");
        assert!(pick("4").is_err());
        assert!(pick("0").is_err());
    }

    #[test]
    fn naming_a_first_row_cell_makes_it_the_header() {
        let s = sample(&[&["Name", "Reach"], &["Ann", "call me"]]);
        let l = layout(&s, PLAN, None, Some("reach"), Naming::Numbered).unwrap();
        assert!(l.has_header);
        assert_eq!(l.phone_column, Some(2));
    }

    #[test]
    fn a_file_without_numbers_has_no_phone_column() {
        let l = detected(&[&["Name", "City"], &["Ann", "Leeds"], &["Bob", "Lyon"]]);
        assert_eq!(l.phone_column, None);
        let err = csv_text("Name,City\nAnn,Leeds\n", &options()).unwrap_err();
        assert!(matches!(err, TabularError::NoPhoneColumn { .. }), "{err}");
        assert!(err.to_string().contains("phone_column"));
    }

    #[test]
    fn csv_lines_are_numbered_as_records_with_the_header_blank() {
        let data = "id,name,phone\r\n1,Ann,+44 7911 123456\r\n\r\n2,\"Bob\nBobson\",not a number\r\n3,Cy,+33612345678";
        assert_eq!(
            csv_text(data, &options()).unwrap(),
            "\n+44 7911 123456\n\nnot a number\n+33612345678\n"
        );
        let only_blank = csv_text("\n\n", &options()).unwrap();
        assert_eq!(only_blank, "");
    }

    #[test]
    fn a_cell_line_end_becomes_a_space_and_the_output_limit_holds() {
        let data = "phone\n\"+1 415\n555 2671\"\n";
        assert_eq!(csv_text(data, &options()).unwrap(), "\n+1 415 555 2671\n");
        let small = Options {
            max_output: 10,
            ..options()
        };
        assert!(matches!(
            csv_text(data, &small),
            Err(TabularError::TooLarge { limit: 10 })
        ));
    }

    #[test]
    fn utf16_and_binary_csv_are_refused_but_latin1_is_read() {
        assert!(matches!(
            csv_text("\u{FEFF}", &options()).map(|_| ()),
            Ok(())
        ));
        let mut out = Vec::new();
        let utf16 = b"\xFF\xFEp\x00h\x00";
        assert!(matches!(
            convert_csv(&utf16[..], false, PLAN, &options(), &mut out),
            Err(TabularError::Utf16)
        ));
        assert!(matches!(
            convert_csv(&b"a\x00b,c"[..], false, PLAN, &options(), &mut out),
            Err(TabularError::NotText)
        ));
        let latin1 = b"Nom,T\xE9l\xE9phone\nZo\xE9,+33612345678\n";
        convert_csv(&latin1[..], false, PLAN, &options(), &mut out).unwrap();
        assert_eq!(out, b"\n+33612345678\n");
    }

    #[test]
    fn kinds_come_from_the_name_then_the_type_then_the_bytes() {
        let k = |name: Option<&str>, ct: Option<&str>, head: &[u8]| kind_of(name, ct, head);
        assert_eq!(k(Some("a.CSV"), None, b"").unwrap(), Kind::Csv);
        assert_eq!(k(Some("dir/a.tsv"), None, b"").unwrap(), Kind::Tsv);
        assert_eq!(
            k(Some("a.xlsx"), Some("text/plain"), b"").unwrap(),
            Kind::Xlsx
        );
        assert_eq!(
            k(Some("a.txt"), Some("text/csv"), b"PK\x03\x04").unwrap(),
            Kind::Text
        );
        assert_eq!(
            k(None, Some("text/csv; charset=utf-8"), b"").unwrap(),
            Kind::Csv
        );
        assert_eq!(k(Some("upload"), Some(XLSX_MIME), b"").unwrap(), Kind::Xlsx);
        assert_eq!(k(None, None, b"PK\x03\x04\x14\x00").unwrap(), Kind::Xlsx);
        assert_eq!(
            k(None, Some("application/vnd.ms-excel"), b"+1").unwrap(),
            Kind::Text
        );
        for refused in [
            k(Some("old.xls"), None, b""),
            k(Some("x.csv"), None, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"),
            k(Some("book.ods"), None, b""),
        ] {
            let err = EngineError::from(refused.unwrap_err());
            assert_eq!(err.code(), Some("unsupported_file_type"));
            assert!(err.to_string().contains(".xlsx or .csv"));
        }
    }

    fn workbook(build: impl FnOnce(&mut rust_xlsxwriter::Workbook)) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        build(&mut book);
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn a_worksheet_is_read_row_by_row_with_numbers_as_digits() {
        let bytes = workbook(|book| {
            let sheet = book.add_worksheet();
            sheet.write_string(0, 0, "Name").unwrap();
            sheet.write_string(0, 1, "Phone").unwrap();
            sheet.write_string(1, 0, "Ann").unwrap();
            sheet.write_number(1, 1, 447_911_123_456.0).unwrap();
            // Row 3 is left empty; row 4 holds a string number.
            sheet.write_string(3, 0, "Bob").unwrap();
            sheet.write_string(3, 1, "+33 6 12 34 56 78").unwrap();
            sheet.write_number(4, 1, 14_155_552_671.0).unwrap();
        });
        let mut out = Vec::new();
        let done = convert_xlsx(io::Cursor::new(&bytes), PLAN, &options(), &mut out).unwrap();
        assert_eq!(done.phone_column, Some(2));
        assert!(done.has_header);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n447911123456\n\n+33 6 12 34 56 78\n14155552671\n"
        );
    }

    #[test]
    fn another_sheet_is_chosen_by_name_and_an_unknown_one_lists_the_sheets() {
        let bytes = workbook(|book| {
            book.add_worksheet()
                .set_name("Notes")
                .unwrap()
                .write_string(0, 0, "nothing")
                .unwrap();
            let sheet = book.add_worksheet().set_name("Leads").unwrap();
            sheet.write_number(0, 0, 33_612_345_678.0).unwrap();
        });
        let leads = Options {
            sheet: Some("leads"),
            ..options()
        };
        let mut out = Vec::new();
        convert_xlsx(io::Cursor::new(&bytes), PLAN, &leads, &mut out).unwrap();
        assert_eq!(out, b"33612345678\n");
        let preview = preview_xlsx(io::Cursor::new(&bytes), PLAN, &leads).unwrap();
        assert_eq!(preview.sheets, ["Notes", "Leads"]);
        assert_eq!(preview.phone_column, Some(1));
        let missing = Options {
            sheet: Some("Customers"),
            ..options()
        };
        let err = preview_xlsx(io::Cursor::new(&bytes), PLAN, &missing).unwrap_err();
        assert!(err.to_string().contains("\"Leads\""), "{err}");
        // The first sheet has no numbers.
        let err = convert_xlsx(io::Cursor::new(&bytes), PLAN, &options(), &mut out).unwrap_err();
        assert!(matches!(err, TabularError::NoPhoneColumn { .. }));
    }

    #[test]
    fn a_workbook_that_unpacks_too_far_or_is_no_zip_is_refused() {
        let bytes = workbook(|book| {
            book.add_worksheet().write_number(0, 0, 1.0).unwrap();
        });
        let tight = Options {
            max_expanded: 1000,
            ..options()
        };
        let err = convert_xlsx(io::Cursor::new(&bytes), PLAN, &tight, io::sink()).unwrap_err();
        assert!(matches!(err, TabularError::InvalidXlsx(_)), "{err}");
        let err = convert_xlsx(
            io::Cursor::new(b"PK\x03\x04junk"),
            PLAN,
            &options(),
            io::sink(),
        )
        .unwrap_err();
        assert_eq!(EngineError::from(err).code(), Some("invalid_xlsx"));
    }

    #[test]
    fn a_text_preview_has_one_column() {
        let p = preview_text(b"+14155552671\n\nhello\n+336", true, PLAN, None).unwrap();
        assert_eq!(p.kind, "text");
        assert_eq!(p.columns.len(), 1);
        assert_eq!(p.columns[0].name, "number");
        assert_eq!(p.columns[0].samples, ["+14155552671", "hello"]);
        assert_eq!(p.columns[0].phone_share, 0.5);
        assert_eq!(p.phone_column, Some(1));
        assert!(preview_text(b"\x00\x01", false, PLAN, None).is_err());
    }

    proptest! {
        #[test]
        fn integers_stored_as_floats_print_as_their_digits(n in 1u64..1_000_000_000_000_000) {
            prop_assert_eq!(number_text(n as f64), n.to_string());
        }

        #[test]
        fn phone_words_are_found_in_any_case_and_with_any_separator(
            base in prop::sample::select(vec![
                "phone", "phone number", "mobile", "mobile number", "msisdn", "tel",
                "telephone", "cell", "cellphone", "whatsapp", "contact number", "number",
            ]),
            upper in prop::collection::vec(any::<bool>(), 20),
            sep in prop::sample::select(vec![" ", "_", "-", "  ", "."]),
        ) {
            let name: String = base
                .replace(' ', sep)
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            prop_assert!(is_phoneish(&name), "{}", name);
        }

        #[test]
        fn csv_written_by_the_csv_crate_reads_back_with_row_numbers(
            table in prop::collection::vec(
                prop::collection::vec("[a-z0-9 ,;|\t\"\r\n+]{0,8}", 1..5),
                1..20,
            ),
            blanks in prop::collection::vec(0usize..3, 20),
            delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
            crlf in any::<bool>(),
        ) {
            let mut data = Vec::new();
            let mut expected = Vec::new();
            let mut number = 0;
            for (cells, blank) in table.iter().zip(blanks.iter().cycle()) {
                for _ in 0..*blank {
                    data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                    number += 1;
                    expected.push((number, Vec::new()));
                }
                let mut w = csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .flexible(true)
                    .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                    .from_writer(Vec::new());
                w.write_record(cells).unwrap();
                data.extend_from_slice(&w.into_inner().unwrap());
                number += 1;
                expected.push((number, cells.clone()));
            }
            prop_assert_eq!(records(&data, delimiter), expected);
        }

        #[test]
        fn the_column_of_numbers_is_found_with_or_without_a_header(
            width in 1usize..5,
            phone in 0usize..5,
            rows in 1usize..40,
            header in any::<bool>(),
            seed in any::<u32>(),
        ) {
            let phone = phone % width;
            let mut s: Vec<Record> = Vec::new();
            if header {
                let cells = (0..width)
                    .map(|c| if c == phone { "Phone".to_owned() } else { format!("field{c}") })
                    .collect();
                s.push(Record { number: 1, cells });
            }
            for r in 0..rows {
                let cells = (0..width)
                    .map(|c| {
                        if c == phone {
                            format!("+44 7911 {:06}", (seed as usize + r * 7919) % 1_000_000)
                        } else {
                            format!("name{}", (seed as usize + r + c) % 97)
                        }
                    })
                    .collect();
                s.push(Record { number: s.len() as u64 + 1, cells });
            }
            let l = layout(&s, PLAN, None, None, Naming::Numbered).unwrap();
            prop_assert_eq!(l.phone_column, Some(phone + 1));
            prop_assert_eq!(l.has_header, header);
        }
    }
}
