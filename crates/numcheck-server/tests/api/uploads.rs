//! Spreadsheet uploads (CSV, TSV, XLSX) and the column preview.

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::*;

const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn part(body: &[u8], name: &str, mime: Option<&str>) -> Part {
    let p = Part::bytes(body.to_vec()).file_name(name.to_owned());
    match mime {
        Some(m) => p.mime_str(m).unwrap(),
        None => p,
    }
}

/// A form with only the file, its type left to the server to find.
fn file(body: &[u8], name: &str) -> Form {
    Form::new().part("file", part(body, name, None))
}

fn sheet_form(body: &[u8], name: &str) -> Form {
    file(body, name).text("task_type", "active_check")
}

/// Creates a task and waits for it: (result rows as (Number, ActiveStatus, Line), rejected csv).
async fn run(s: &TestServer, form: Form) -> (Value, Vec<(String, String, String)>, String) {
    let (code, created) = create(s, form).await;
    assert_eq!(code, 200, "{created}");
    let v = s
        .wait(&s.admin_key, created["task_id"].as_str().unwrap())
        .await;
    assert_eq!(v["status"], "exported", "{v}");
    let (csv, rejected, _) = s.result(&v).await;
    let rows = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_owned(),
                f[1].to_owned(),
                f.last().unwrap().to_string(),
            )
        })
        .collect();
    (created, rows, rejected)
}

/// Creates a task from `form` with the admin key.
async fn create(s: &TestServer, form: Form) -> (u16, Value) {
    s.create_form(&s.admin_key, form, None).await
}

async fn preview(s: &TestServer, form: Form) -> (u16, Value) {
    let req = s.request(Method::POST, "/v1/tasks/preview", Some(&s.admin_key));
    json(req.multipart(form).send().await.unwrap()).await
}

fn stored_uploads(s: &TestServer) -> usize {
    let uploads = s.data_dir.join("blobs").join("uploads");
    std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0)
}

fn spooled_files(s: &TestServer) -> usize {
    std::fs::read_dir(&s.state.engine.tmp_dir)
        .map(|d| d.count())
        .unwrap_or(0)
}

const LEADS_CSV: &str = "id,name,phone,city\r\n\
    1,Ann,+1 415 555 2671,Leeds\r\n\
    2,\"Bob\nBobson\",not a number,Lyon\r\n\
    \r\n\
    3,Cy,+33612345678,Paris\r\n\
    4,Di,+999 12345,Rome\r\n";

#[tokio::test]
async fn a_csv_with_a_header_reads_the_phone_column_like_the_same_numbers_as_text() {
    let s = TestServer::start().await;
    let (created, rows, rejected) = run(&s, sheet_form(LEADS_CSV.as_bytes(), "leads.csv")).await;
    assert_eq!(created["total"], 4);
    // The same numbers as a text file, at the same line numbers.
    let text = "\n+1 415 555 2671\nnot a number\n\n+33612345678\n+999 12345\n";
    let (text_created, text_rows, text_rejected) =
        run(&s, sheet_form(text.as_bytes(), "numbers.txt")).await;
    assert_eq!(text_created["total"], 4);
    assert_eq!(rows, text_rows);
    assert_eq!(rejected, text_rejected);
    // Line numbers are record numbers: the header is 1, the quoted two-line name one record,
    // the blank line one more.
    assert_eq!(
        rows,
        [
            ("+14155552671".into(), "unknown".into(), "2".into()),
            ("+33612345678".into(), "unknown".into(), "5".into()),
        ]
    );
    assert_eq!(
        rejected,
        "Line,Input,Reason\n3,not a number,not_a_number\n6,'+999 12345,unknown_country_code\n"
    );
    assert_eq!(spooled_files(&s), 0, "the spool file is removed");
    s.stop().await;
}

#[tokio::test]
async fn phone_column_picks_a_column_by_name_or_number() {
    let s = TestServer::start().await;
    let csv = "name,home,work\nAnn,+14155552671,+33612345678\nBob,+14155552672,+33612345679\n";
    for (choice, first) in [
        ("WORK", "+33612345678"),
        ("3", "+33612345678"),
        ("2", "+14155552671"),
    ] {
        let form = sheet_form(csv.as_bytes(), "two.csv").text("phone_column", choice);
        let (created, rows, _) = run(&s, form).await;
        assert_eq!(created["total"], 2);
        assert_eq!(rows[0].0, first, "phone_column={choice}");
        assert_eq!(rows[0].2, "2");
    }
    // The field may come before the file too.
    let form = Form::new()
        .text("phone_column", "work")
        .text("task_type", "active_check")
        .part("file", part(csv.as_bytes(), "two.csv", None));
    let (_, rows, _) = run(&s, form).await;
    assert_eq!(rows[1].0, "+33612345679");
    s.stop().await;
}

#[tokio::test]
async fn semicolon_and_tab_separated_files_and_csv_by_content_type_are_read() {
    let s = TestServer::start().await;
    let semicolon = "Nom;Téléphone;Ville\nZoé;+33612345678;Lyon\nLuc;+33612345679;Nice\n";
    let (_, rows, _) = run(&s, sheet_form(semicolon.as_bytes(), "clients.csv")).await;
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["+33612345678", "+33612345679"]
    );
    let tsv = "Name\tMobile\nAnn\t+44 7911 123456\n";
    let (_, rows, _) = run(&s, sheet_form(tsv.as_bytes(), "export.tsv")).await;
    assert_eq!(
        rows,
        [("+447911123456".into(), "unknown".into(), "2".into())]
    );
    // No extension: the part's type says CSV (here without a header: the numbers decide).
    let pipes = "Ann|+14155552671\nBob|+14155552672\n";
    let form = Form::new()
        .part("file", part(pipes.as_bytes(), "upload", Some("text/csv")))
        .text("task_type", "active_check");
    let (_, rows, _) = run(&s, form).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2, "1");
    s.stop().await;
}

#[tokio::test]
async fn unknown_or_missing_phone_columns_get_400_and_leave_nothing() {
    let s = TestServer::start().await;
    let form = sheet_form(LEADS_CSV.as_bytes(), "leads.csv").text("phone_column", "fax");
    let got = create(&s, form).await;
    assert!(
        got.1["message"].as_str().unwrap().contains("\"phone\""),
        "lists the columns: {}",
        got.1
    );
    assert_error(got, 400, "unknown_phone_column");
    let form = sheet_form(LEADS_CSV.as_bytes(), "leads.csv").text("phone_column", "9");
    assert_error(create(&s, form).await, 400, "unknown_phone_column");
    let names = "name,city\nAnn,Leeds\nBob,Lyon\n";
    let got = create(&s, sheet_form(names.as_bytes(), "names.csv")).await;
    assert!(got.1["message"].as_str().unwrap().contains("phone_column"));
    assert_error(got, 400, "no_phone_column");
    // A header alone holds no numbers.
    assert_error(
        create(&s, sheet_form(b"phone\n", "empty.csv")).await,
        400,
        "empty_file",
    );
    assert_eq!(stored_uploads(&s), 0, "refused uploads leave no blobs");
    assert_eq!(spooled_files(&s), 0, "refused uploads leave no spool files");
    s.stop().await;
}

fn workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let notes = book.add_worksheet().set_name("Notes").unwrap();
    notes.write_string(0, 0, "nothing to see").unwrap();
    let sheet = book.add_worksheet().set_name("Leads").unwrap();
    sheet.write_string(0, 0, "Name").unwrap();
    sheet.write_string(0, 1, "Mobile Number").unwrap();
    sheet.write_string(1, 0, "Ann").unwrap();
    // A number as Excel stores it: a float, the `+` lost.
    sheet.write_number(1, 1, 447_911_123_456.0).unwrap();
    sheet.write_string(2, 0, "Bob").unwrap();
    sheet.write_string(2, 1, "+33 6 12 34 56 78").unwrap();
    // Row 4 left empty.
    sheet.write_string(4, 0, "Cy").unwrap();
    sheet.write_string(4, 1, "call me").unwrap();
    sheet.write_number(5, 1, 14_155_552_671.0).unwrap();
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn an_xlsx_sheet_is_read_with_numeric_cells_as_digits_and_rows_as_lines() {
    let s = TestServer::start().await;
    let book = workbook();
    let form = sheet_form(&book, "leads.xlsx").text("sheet", "Leads");
    let (created, rows, rejected) = run(&s, form).await;
    assert_eq!(created["total"], 4);
    assert_eq!(
        rows,
        [
            ("+447911123456".into(), "unknown".into(), "2".into()),
            ("+33612345678".into(), "unknown".into(), "3".into()),
            ("+14155552671".into(), "unknown".into(), "6".into()),
        ]
    );
    assert_eq!(rejected, "Line,Input,Reason\n5,call me,not_a_number\n");
    // Found by its type or its bytes as well, without the extension.
    let form = Form::new()
        .part("file", part(&book, "export", Some(XLSX_MIME)))
        .text("task_type", "active_check")
        .text("sheet", "leads");
    assert_eq!(run(&s, form).await.0["total"], 4);
    let form = file(&book, "export.bin")
        .text("task_type", "active_check")
        .text("sheet", "Leads");
    assert_eq!(run(&s, form).await.0["total"], 4);
    // The first sheet holds no numbers; an unknown sheet lists the sheets.
    assert_error(
        create(&s, sheet_form(&book, "leads.xlsx")).await,
        400,
        "no_phone_column",
    );
    let got = create(
        &s,
        sheet_form(&book, "leads.xlsx").text("sheet", "Customers"),
    )
    .await;
    assert!(got.1["message"].as_str().unwrap().contains("\"Leads\""));
    assert_error(got, 400, "unknown_sheet");
    assert_eq!(spooled_files(&s), 0);
    s.stop().await;
}

/// A workbook holding one shared string of `bytes` letters beside a phone number: small
/// compressed, large unpacked. (Excel's own limit is 32,767 characters a cell, which a
/// crafted file need not keep, so the string is put into the saved file's XML.)
fn bomb(bytes: usize) -> Vec<u8> {
    bomb_of("x", bytes)
}

/// The same, the string made of `unit` repeated.
fn bomb_of(unit: &str, bytes: usize) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "Phone").unwrap();
    sheet.write_string(1, 0, "+14155552671").unwrap();
    sheet.write_string(1, 1, "PLACEHOLDER").unwrap();
    let saved = book.save_to_buffer().unwrap();
    let mut from = zip::ZipArchive::new(std::io::Cursor::new(saved)).unwrap();
    let mut to = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..from.len() {
        let mut part = from.by_index(i).unwrap();
        let name = part.name().unwrap().into_owned();
        let mut text = Vec::new();
        part.read_to_end(&mut text).unwrap();
        if name == "xl/sharedStrings.xml" {
            let xml = String::from_utf8(text).unwrap();
            let long = unit.repeat(bytes / unit.len());
            text = xml.replace("PLACEHOLDER", &long).into_bytes();
        }
        to.start_file(name, options).unwrap();
        to.write_all(&text).unwrap();
    }
    to.finish().unwrap().into_inner()
}

#[tokio::test]
async fn a_workbook_with_a_huge_cell_is_refused_with_413_before_it_is_read() {
    let s = TestServer::start().await;
    // Under the bound: read as ever (the long cell is not the phone column).
    let (code, v) = preview(&s, sheet_form(&bomb(500_000), "ok.xlsx")).await;
    assert_eq!(code, 200, "{v}");
    // Past it: 413 workbook_too_large, on the preview and on the create; nothing stored.
    let big = bomb(3 << 20);
    assert!(big.len() < 64 * 1024, "{} bytes compressed", big.len());
    let got = preview(&s, sheet_form(&big, "bomb.xlsx")).await;
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .contains("save the sheet as .csv"),
        "{}",
        got.1
    );
    assert_error(got, 413, "workbook_too_large");
    assert_error(
        create(&s, sheet_form(&big, "bomb.xlsx")).await,
        413,
        "workbook_too_large",
    );
    // Text may hold `>` (only `<` must be escaped): a long value full of them is as long.
    let arrows = bomb_of("x&gt;>", 3 << 20);
    let got = preview(&s, sheet_form(&arrows, "arrows.xlsx")).await;
    assert_error(got, 413, "workbook_too_large");
    assert_eq!(stored_uploads(&s), 0);
    assert_eq!(spooled_files(&s), 0);
    let (_, page) = s.get(&s.admin_key, "/v1/tasks").await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 0);
    s.stop().await;
}

#[tokio::test]
async fn old_xls_files_and_oversized_workbooks_are_refused() {
    let s = TestServer::start_with(|c| c.max_xlsx_bytes = 2000).await;
    let mut ole2 = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    ole2.extend(std::iter::repeat_n(0u8, 600));
    let got = create(&s, sheet_form(&ole2, "old.xls")).await;
    assert!(got.1["message"].as_str().unwrap().contains(".xlsx or .csv"));
    assert_error(got, 400, "unsupported_file_type");
    // Renamed, it is still refused for what it is.
    assert_error(
        create(&s, sheet_form(&ole2, "numbers.csv")).await,
        400,
        "unsupported_file_type",
    );
    let got = create(&s, sheet_form(&workbook(), "big.xlsx")).await;
    assert!(
        got.1["message"].as_str().unwrap().contains("2000"),
        "{}",
        got.1
    );
    assert_error(got, 413, "file_too_large");
    assert_error(
        create(&s, sheet_form(b"PK\x03\x04not a zip", "broken.xlsx")).await,
        400,
        "invalid_xlsx",
    );
    assert_eq!(stored_uploads(&s), 0);
    assert_eq!(spooled_files(&s), 0);
    s.stop().await;
}

#[tokio::test]
async fn a_csv_preview_lists_the_columns_and_the_detected_one() {
    let s = TestServer::start().await;
    let (code, v) = preview(&s, file(LEADS_CSV.as_bytes(), "dir\\leads.csv")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        keys_in_order(&v.to_string()),
        [
            "kind",
            "file_name",
            "has_header",
            "columns",
            "phone_column",
            "sheets",
            "picked_by"
        ]
    );
    assert_eq!(v["kind"], "csv");
    assert_eq!(v["file_name"], "leads.csv");
    assert_eq!(v["has_header"], true);
    assert_eq!(v["phone_column"], 3);
    assert_eq!(v["picked_by"], "header");
    assert_eq!(v["sheets"], serde_json::json!([]));
    let columns = v["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 4);
    assert_eq!(
        keys_in_order(&columns[2].to_string()),
        ["index", "name", "phone_share", "samples"]
    );
    assert_eq!(columns[2]["index"], 3);
    assert_eq!(columns[2]["name"], "phone");
    assert_eq!(columns[2]["phone_share"], 0.5);
    assert_eq!(
        columns[2]["samples"],
        serde_json::json!([
            "+1 415 555 2671",
            "not a number",
            "+33612345678",
            "+999 12345"
        ])
    );
    // A chosen column, and one that does not exist.
    let (_, v) = preview(
        &s,
        Form::new()
            .text("phone_column", "city")
            .part("file", part(LEADS_CSV.as_bytes(), "leads.csv", None)),
    )
    .await;
    assert_eq!(v["phone_column"], 4);
    let got = preview(
        &s,
        file(LEADS_CSV.as_bytes(), "leads.csv").text("phone_column", "fax"),
    )
    .await;
    assert_error(got, 400, "unknown_phone_column");
    // No column of numbers: null, for the user to pick.
    let (code, v) = preview(&s, file(b"name,city\nAnn,Leeds\n", "n.csv")).await;
    assert_eq!(code, 200);
    assert_eq!(v["phone_column"], Value::Null);
    // A text file is one column.
    let (_, v) = preview(&s, file(b"+14155552671\nhello\n", "n.txt")).await;
    assert_eq!(v["kind"], "text");
    assert_eq!(v["columns"][0]["name"], "number");
    assert_eq!(v["phone_column"], 1);
    assert_error(
        preview(&s, Form::new().text("phone_column", "1")).await,
        400,
        "missing_file",
    );
    assert_eq!(stored_uploads(&s), 0, "a preview stores nothing");
    s.stop().await;
}

#[tokio::test]
async fn an_xlsx_preview_lists_the_sheets_and_needs_a_key() {
    let s = TestServer::start().await;
    let book = workbook();
    let (code, v) = preview(&s, file(&book, "leads.xlsx").text("sheet", "Leads")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "xlsx");
    assert_eq!(v["sheets"], serde_json::json!(["Notes", "Leads"]));
    assert_eq!(v["has_header"], true);
    assert_eq!(v["phone_column"], 2);
    assert_eq!(v["columns"][1]["name"], "Mobile Number");
    assert_eq!(
        v["columns"][1]["samples"],
        serde_json::json!([
            "447911123456",
            "+33 6 12 34 56 78",
            "call me",
            "14155552671"
        ])
    );
    assert_eq!(v["columns"][1]["phone_share"], 0.75);
    assert_error(
        preview(&s, file(&[0xD0, 0xCF, 0x11, 0xE0], "a.xls")).await,
        400,
        "unsupported_file_type",
    );
    let resp = s
        .request(Method::POST, "/v1/tasks/preview", None)
        .multipart(file(&book, "leads.xlsx"))
        .send()
        .await
        .unwrap();
    assert_error(json(resp).await, 401, "missing_api_key");
    assert_eq!(spooled_files(&s), 0, "the spooled workbook is removed");
    s.stop().await;
}
