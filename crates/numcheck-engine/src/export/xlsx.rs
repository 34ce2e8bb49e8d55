//! A streaming `.xlsx` writer for task results, for users who open results in a spreadsheet.
//!
//! Every cell is a text cell, so Excel never turns `+14155552671` into `1.42E+10` or drops
//! the `+`. Rows go to the worksheet's temporary file as they come (`rust_xlsxwriter`'s
//! constant-memory mode), so memory stays bounded whatever the number of rows; column widths
//! are therefore set once from the header, never fitted to the data. A sheet holds at most
//! `max_rows` rows (Excel's limit by default); further rows go on to "Results 2", "Results 3",
//! …, each starting with the header. The creation date is fixed and the zip carries no
//! timestamps, so the same rows always give the same bytes.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet};

/// Excel's row limit per sheet.
#[allow(dead_code)]
pub const XLSX_MAX_ROWS: u32 = 1_048_576;

/// Excel's column limit per sheet.
const MAX_COLUMNS: usize = 16_384;

/// Excel's limit on the length of a cell's text, in UTF-16 code units.
const MAX_CELL_LEN: usize = 32_767;

/// The width of the first column: an E.164 number is at most 16 characters with its `+`.
const FIRST_COLUMN_WIDTH: f64 = 16.0;

/// Streams rows into an .xlsx file at `path`; every cell is written as a text cell.
#[allow(dead_code)]
pub struct XlsxWriter {
    workbook: Workbook,
    path: PathBuf,
    header: Vec<String>,
    header_format: Format,
    max_rows: u32,
    /// How many sheets exist; the current one is the last.
    sheets: u32,
    /// The next row to write in the current sheet.
    row: u32,
    data_rows: u64,
}

#[allow(dead_code)]
impl XlsxWriter {
    /// `header` is repeated as the first row of every sheet. Sheets are named "Results",
    /// "Results 2", "Results 3", … ; a new sheet starts when a sheet holds `max_rows` rows
    /// including its header (callers pass [`XLSX_MAX_ROWS`], Excel's limit; tests pass a small
    /// number). A `max_rows` above Excel's limit is lowered to it; one below 2 (no room for a
    /// data row) is an error.
    ///
    /// Nothing appears at `path` until [`XlsxWriter::finish`]; the rows wait in temporary files
    /// in `path`'s folder, which the system removes when the writer is dropped.
    pub fn new(path: &Path, header: &[&str], max_rows: u32) -> anyhow::Result<Self> {
        if max_rows < 2 {
            bail!("an xlsx sheet needs room for its header and a row, not {max_rows} rows");
        }
        if header.len() > MAX_COLUMNS {
            bail!(
                "an xlsx sheet holds at most {MAX_COLUMNS} columns, the header has {}",
                header.len()
            );
        }
        let mut workbook = Workbook::new();
        // Rows are spilled next to the result rather than in the system's temporary folder,
        // which may be a small in-memory file system.
        workbook.set_tempdir(folder_of(path)).with_context(|| {
            format!("cannot keep temporary xlsx rows beside {}", path.display())
        })?;
        // Excel stamps a document with the time it was created; a fixed date keeps the bytes
        // a function of the rows alone.
        let created = ExcelDateTime::from_ymd(1980, 1, 1).context("invalid fixed xlsx date")?;
        workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
        let mut writer = XlsxWriter {
            workbook,
            path: path.to_owned(),
            header: header.iter().map(|h| excel_text(h).to_owned()).collect(),
            header_format: Format::new().set_bold(),
            max_rows: max_rows.min(XLSX_MAX_ROWS),
            sheets: 0,
            row: 0,
            data_rows: 0,
        };
        writer.start_sheet()?;
        Ok(writer)
    }

    /// Appends one data row. Cells longer than Excel's limit of 32,767 characters are
    /// truncated; empty cells stay empty.
    pub fn push_row(&mut self, cells: &[&str]) -> anyhow::Result<()> {
        if cells.len() > MAX_COLUMNS {
            bail!(
                "an xlsx sheet holds at most {MAX_COLUMNS} columns, row {} has {}",
                self.data_rows + 1,
                cells.len()
            );
        }
        if self.row >= self.max_rows {
            self.start_sheet()?;
        }
        let row = self.row;
        let sheet = self.current_sheet()?;
        for (col, cell) in (0u16..).zip(cells) {
            sheet
                .write_string(row, col, excel_text(cell))
                .with_context(|| format!("cannot write xlsx cell ({row}, {col})"))?;
        }
        self.row += 1;
        self.data_rows += 1;
        Ok(())
    }

    /// Writes the file; returns the number of data rows written (headers excluded).
    ///
    /// The file is assembled beside `path` and renamed into place, so `path` never holds a
    /// half-written workbook.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        let path = self.path.clone();
        let tmp = tempfile::Builder::new()
            .prefix(".xlsx-")
            .suffix(".part")
            .tempfile_in(folder_of(&path))
            .with_context(|| format!("cannot create a temporary file beside {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
        self.workbook
            .save_to_writer(&mut out)
            .with_context(|| format!("cannot write the xlsx file {}", path.display()))?;
        out.flush()
            .with_context(|| format!("cannot write the xlsx file {}", path.display()))?;
        drop(out);
        tmp.persist(&path)
            .with_context(|| format!("cannot move the xlsx file into {}", path.display()))?;
        Ok(self.data_rows)
    }

    /// Adds the next sheet, with its name, column widths and frozen bold header.
    fn start_sheet(&mut self) -> anyhow::Result<()> {
        let number = self.sheets + 1;
        let name = if number == 1 {
            "Results".to_owned()
        } else {
            format!("Results {number}")
        };
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .context("cannot create a temporary file for xlsx rows")?;
        self.sheets = number;
        self.row = 0;
        sheet
            .set_name(&name)
            .with_context(|| format!("cannot name the xlsx sheet {name:?}"))?;
        for (col, title) in (0u16..).zip(&self.header) {
            sheet
                .set_column_width(col, column_width(col, title))
                .context("cannot set an xlsx column width")?;
            sheet
                .write_string_with_format(0, col, title, &self.header_format)
                .with_context(|| format!("cannot write the xlsx header of {name:?}"))?;
        }
        sheet
            .set_freeze_panes(1, 0)
            .context("cannot freeze the xlsx header")?;
        self.row = 1;
        Ok(())
    }

    fn current_sheet(&mut self) -> anyhow::Result<&mut Worksheet> {
        let index = self.sheets.saturating_sub(1) as usize;
        self.workbook
            .worksheet_from_index(index)
            .context("the current xlsx sheet is missing")
    }
}

impl fmt::Debug for XlsxWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XlsxWriter")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("max_rows", &self.max_rows)
            .field("sheets", &self.sheets)
            .field("row", &self.row)
            .field("data_rows", &self.data_rows)
            .finish_non_exhaustive()
    }
}

/// The folder a file is written in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `text` cut to Excel's cell limit, which counts UTF-16 code units, at a character boundary.
fn excel_text(text: &str) -> &str {
    // A UTF-16 string is never longer in code units than its UTF-8 form is in bytes.
    if text.len() <= MAX_CELL_LEN {
        return text;
    }
    let mut units = 0;
    for (at, ch) in text.char_indices() {
        units += ch.len_utf16();
        if units > MAX_CELL_LEN {
            return &text[..at];
        }
    }
    text
}

/// A width that shows the header; the first column fits a whole E.164 number.
fn column_width(col: u16, title: &str) -> f64 {
    if col == 0 {
        return FIRST_COLUMN_WIDTH;
    }
    let len = title.chars().count().clamp(8, 36);
    // Lossless: `len` is at most 36.
    (len + 4) as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Read;

    use regex_lite::Regex;

    use super::*;

    const HEADER: &[&str] = &["Number", "ActiveStatus", "Reason"];

    fn write(path: &Path, rows: &[&[&str]], max_rows: u32) -> u64 {
        let mut writer = XlsxWriter::new(path, HEADER, max_rows).unwrap();
        for row in rows {
            writer.push_row(row).unwrap();
        }
        writer.finish().unwrap()
    }

    fn part(path: &Path, name: &str) -> Option<String> {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut file = zip.by_name(name).ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        Some(text)
    }

    fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    }

    /// The rows of a sheet as text, asserting on the way that every cell is an inline string.
    fn sheet_rows(path: &Path, sheet: u32) -> Vec<Vec<String>> {
        let xml = part(path, &format!("xl/worksheets/sheet{sheet}.xml")).unwrap();
        let row_re = Regex::new(r"(?s)<row [^>]*>(.*?)</row>").unwrap();
        let cell_re = Regex::new(r"(?s)<c ([^>]*?)(?:/>|>(.*?)</c>)").unwrap();
        let text_re = Regex::new(r"(?s)<t[^>]*>(.*?)</t>").unwrap();
        row_re
            .captures_iter(&xml)
            .map(|row| {
                cell_re
                    .captures_iter(&row[1])
                    .map(|cell| {
                        assert!(
                            cell[1].contains(r#"t="inlineStr""#) || cell[1].contains(r#"t="s""#),
                            "a cell that is not text: {}",
                            &cell[0]
                        );
                        let body = cell.get(2).map_or("", |m| m.as_str());
                        assert!(!body.contains("<v>"), "a cell with a value: {}", &cell[0]);
                        text_re
                            .captures(body)
                            .map(|t| unescape(&t[1]))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect()
    }

    fn sheet_names(path: &Path) -> Vec<String> {
        let xml = part(path, "xl/workbook.xml").unwrap();
        Regex::new(r#"<sheet name="([^"]*)""#)
            .unwrap()
            .captures_iter(&xml)
            .map(|c| unescape(&c[1]))
            .collect()
    }

    /// A fresh folder, kept while the test holds it, and the workbook's path in it.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.xlsx");
        (dir, path)
    }

    fn strings(row: &[&str]) -> Vec<String> {
        row.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn phone_numbers_are_stored_as_text_cells_never_as_numbers() {
        let (_dir, path) = scratch();
        let rows: &[&[&str]] = &[
            &["+14155552671", "active", "ok"],
            &["14155552671", "unknown", "no_evidence"],
            &["0049 30 901820", "inactive", "invalid_number"],
            &["1e5", "0", "00123"],
        ];
        assert_eq!(write(&path, rows, XLSX_MAX_ROWS), 4);

        let xml = part(&path, "xl/worksheets/sheet1.xml").unwrap();
        assert!(xml.contains(r#"t="inlineStr"><is><t>+14155552671</t></is>"#));
        assert!(!xml.contains("<v>"), "numeric cell in {xml}");
        let got = sheet_rows(&path, 1);
        assert_eq!(got[0], strings(HEADER));
        for (row, want) in got[1..].iter().zip(rows) {
            assert_eq!(row, &strings(want));
        }
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn rows_beyond_max_rows_continue_on_a_new_sheet_that_repeats_the_header() {
        let (_dir, path) = scratch();
        let numbers = ["+1", "+2", "+3", "+4", "+5"];
        let rows: Vec<[&str; 3]> = numbers.iter().map(|n| [*n, "active", "ok"]).collect();
        let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
        // Four rows a sheet: the header and three numbers.
        assert_eq!(write(&path, &rows, 4), 5);

        assert_eq!(sheet_names(&path), ["Results", "Results 2"]);
        let first = sheet_rows(&path, 1);
        let second = sheet_rows(&path, 2);
        assert_eq!(first[0], strings(HEADER));
        assert_eq!(second[0], strings(HEADER));
        let column = |rows: &[Vec<String>]| -> Vec<String> {
            rows[1..].iter().map(|r| r[0].clone()).collect()
        };
        assert_eq!(column(&first), strings(&["+1", "+2", "+3"]));
        assert_eq!(column(&second), strings(&["+4", "+5"]));
    }

    #[test]
    fn a_sheet_filled_exactly_to_max_rows_leaves_no_empty_sheet_behind() {
        let (_dir, path) = scratch();
        let rows: &[&[&str]] = &[&["+1"], &["+2"], &["+3"], &["+4"]];
        assert_eq!(write(&path, rows, 3), 4);

        assert_eq!(sheet_names(&path), ["Results", "Results 2"]);
        assert_eq!(sheet_rows(&path, 1).len(), 3);
        assert_eq!(sheet_rows(&path, 2).len(), 3);
        assert!(part(&path, "xl/worksheets/sheet3.xml").is_none());
    }

    #[test]
    fn many_small_sheets_are_numbered_in_order() {
        let (_dir, path) = scratch();
        let rows: &[&[&str]] = &[&["+1"], &["+2"], &["+3"], &["+4"], &["+5"]];
        assert_eq!(write(&path, rows, 2), 5);

        assert_eq!(
            sheet_names(&path),
            [
                "Results",
                "Results 2",
                "Results 3",
                "Results 4",
                "Results 5"
            ]
        );
        assert_eq!(sheet_rows(&path, 5)[1], strings(&["+5"]));
    }

    #[test]
    fn an_empty_result_still_has_a_sheet_with_the_header() {
        let (_dir, path) = scratch();
        assert_eq!(write(&path, &[], XLSX_MAX_ROWS), 0);

        assert_eq!(sheet_names(&path), ["Results"]);
        assert_eq!(sheet_rows(&path, 1), [strings(HEADER)]);
    }

    #[test]
    fn the_header_is_bold_and_frozen_on_every_sheet() {
        let (_dir, path) = scratch();
        let rows: &[&[&str]] = &[&["+1"], &["+2"], &["+3"]];
        write(&path, rows, 2);

        let styles = part(&path, "xl/styles.xml").unwrap();
        // Style 1 is the only added format: the bold one.
        assert!(styles.contains("<b/>"), "{styles}");
        for sheet in 1..=3 {
            let xml = part(&path, &format!("xl/worksheets/sheet{sheet}.xml")).unwrap();
            assert!(
                xml.contains(
                    r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#
                ),
                "{xml}"
            );
            assert!(xml.contains(r#"<c r="A1" s="1" t="inlineStr">"#), "{xml}");
            assert!(xml.contains(r#"<c r="A2" t="inlineStr">"#), "{xml}");
            // Excel stores a width of 16 characters as 16.7109375, padding included.
            assert!(
                xml.contains(r#"<col min="1" max="1" width="16.7109375""#)
                    || xml.contains(r#"<col min="1" max="2" width="16.7109375""#),
                "{xml}"
            );
        }
    }

    #[test]
    fn the_same_rows_give_byte_identical_files() {
        let dir = tempfile::tempdir().unwrap();
        let rows: &[&[&str]] = &[
            &["+14155552671", "active", "ok"],
            &["+447911123456", "unknown", "no_evidence"],
        ];
        let a = dir.path().join("a.xlsx");
        let b = dir.path().join("b.xlsx");
        write(&a, rows, XLSX_MAX_ROWS);
        // A different second keeps a clock-based timestamp from passing by luck.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write(&b, rows, XLSX_MAX_ROWS);

        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let core = part(&a, "docProps/core.xml").unwrap();
        assert!(core.contains("1980-01-01T00:00:00Z"), "{core}");
    }

    #[test]
    fn cells_longer_than_excels_limit_are_truncated_rather_than_rejected() {
        let (_dir, path) = scratch();
        let ascii = "7".repeat(40_000);
        // Two UTF-16 units each: the cut falls between characters, never inside one.
        let emoji = "📞".repeat(20_000);
        let rows: &[&[&str]] = &[&[&ascii, &emoji]];
        assert_eq!(write(&path, rows, XLSX_MAX_ROWS), 1);

        let got = sheet_rows(&path, 1);
        assert_eq!(got[1][0], "7".repeat(MAX_CELL_LEN));
        assert_eq!(got[1][1], "📞".repeat(MAX_CELL_LEN / 2));
    }

    #[test]
    fn markup_control_characters_and_empty_cells_are_written_safely() {
        let (_dir, path) = scratch();
        let rows: &[&[&str]] = &[
            &["<b>&amp;</b>", "", "tab\there"],
            &["nul\0bell\u{7}", " padded ", "_x0041_"],
            &[],
        ];
        assert_eq!(write(&path, rows, XLSX_MAX_ROWS), 3);

        let xml = part(&path, "xl/worksheets/sheet1.xml").unwrap();
        assert!(xml.contains("&lt;b&gt;&amp;amp;&lt;/b&gt;"), "{xml}");
        assert!(xml.contains("nul_x0000_bell_x0007_"), "{xml}");
        assert!(
            xml.contains(r#"<t xml:space="preserve"> padded </t>"#),
            "{xml}"
        );
        // The empty cell is simply absent; the cell after it keeps its column.
        assert!(
            xml.contains(r#"<c r="C2" t="inlineStr"><is><t>tab	here</t>"#),
            "{xml}"
        );
        let got = sheet_rows(&path, 1);
        assert_eq!(got[1], strings(&["<b>&amp;</b>", "tab\there"]));
    }

    #[test]
    fn nothing_appears_at_the_path_before_finish_and_no_temporary_files_remain() {
        let (dir, path) = scratch();
        let mut writer = XlsxWriter::new(&path, HEADER, XLSX_MAX_ROWS).unwrap();
        writer.push_row(&["+14155552671"]).unwrap();
        assert!(!path.exists());
        writer.finish().unwrap();

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["result.xlsx"]);

        let abandoned = dir.path().join("abandoned.xlsx");
        let mut writer = XlsxWriter::new(&abandoned, HEADER, XLSX_MAX_ROWS).unwrap();
        writer.push_row(&["+14155552671"]).unwrap();
        drop(writer);
        assert!(!abandoned.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn impossible_shapes_are_errors_not_panics() {
        let (dir, path) = scratch();
        assert!(XlsxWriter::new(&path, HEADER, 0).is_err());
        assert!(XlsxWriter::new(&path, HEADER, 1).is_err());
        let wide = vec!["x"; MAX_COLUMNS + 1];
        assert!(XlsxWriter::new(&path, &wide, XLSX_MAX_ROWS).is_err());
        let mut writer = XlsxWriter::new(&path, HEADER, XLSX_MAX_ROWS).unwrap();
        assert!(writer.push_row(&wide).is_err());
        // A row at the column limit is fine, and the error left the writer usable.
        writer.push_row(&wide[1..]).unwrap();
        assert_eq!(writer.finish().unwrap(), 1);
        let missing = dir.path().join("no/such/folder/result.xlsx");
        assert!(XlsxWriter::new(&missing, HEADER, XLSX_MAX_ROWS).is_err());
    }

    #[test]
    fn max_rows_above_excels_limit_is_lowered_to_it() {
        let (_dir, path) = scratch();
        let writer = XlsxWriter::new(&path, HEADER, u32::MAX).unwrap();
        assert_eq!(writer.max_rows, XLSX_MAX_ROWS);
    }
}
