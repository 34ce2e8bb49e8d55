//! A task's result zip, read back: `<task_id>.csv`, `rejected.csv`, `summary.json` and any
//! other member.

use std::io::{Cursor, Read};

use serde_json::Value;
use zip::ZipArchive;

/// An opened result zip.
#[derive(Debug)]
pub struct ResultZip {
    archive: ZipArchive<Cursor<Vec<u8>>>,
}

impl ResultZip {
    /// Opens the zip in `bytes` (panics when they are not one).
    pub fn new(bytes: impl Into<Vec<u8>>) -> ResultZip {
        let archive = ZipArchive::new(Cursor::new(bytes.into())).expect("the result is a zip");
        ResultZip { archive }
    }

    /// Downloads `url` (a result link: no key needed) and opens it; the download must be a 200.
    pub async fn download(http: &reqwest::Client, url: &str) -> ResultZip {
        let resp = http.get(url).send().await.expect("GET the result link");
        assert_eq!(resp.status(), 200, "downloading {url}");
        ResultZip::new(resp.bytes().await.expect("the result's bytes").to_vec())
    }

    /// The members' names, in the zip's order.
    pub fn names(&mut self) -> Vec<String> {
        (0..self.archive.len())
            .map(|i| {
                let member = self.archive.by_index(i).expect("a zip member");
                member.name().expect("a member name").to_string()
            })
            .collect()
    }

    /// A member's bytes (panics, naming it, when there is none).
    pub fn bytes(&mut self, name: &str) -> Vec<u8> {
        let mut member = self
            .archive
            .by_name(name)
            .unwrap_or_else(|e| panic!("the zip has no {name}: {e}"));
        let mut out = Vec::new();
        member.read_to_end(&mut out).expect("read a zip member");
        out
    }

    /// A member as text.
    pub fn text(&mut self, name: &str) -> String {
        String::from_utf8(self.bytes(name)).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"))
    }

    /// The results, `<task_id>.csv`.
    pub fn csv(&mut self, task_id: &str) -> String {
        self.text(&format!("{task_id}.csv"))
    }

    /// The rejected lines, `rejected.csv`.
    pub fn rejected(&mut self) -> String {
        self.text("rejected.csv")
    }

    /// The summary, `summary.json`.
    pub fn summary(&mut self) -> Value {
        let text = self.text("summary.json");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary.json: {e}: {text}"))
    }
}
