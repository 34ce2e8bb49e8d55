//! The web dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against the real server, the way a user clicks through it. Needs Debian's `chromium` and
//! `chromium-driver` (`.ci/run` installs them); without them the test fails and says so.
//!
//! Screenshots land in `target/browser/` for a person to look at.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unused_imports)]
#[path = "api/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::TestServer;
use numcheck_testkit::peer::CHROMEDRIVER;
use numcheck_testkit::{ResultZip, wait_for};
use serde_json::{Value, json};

/// How long any one awaited page state may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ chromedriver

/// A chromedriver child process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let chromedriver = CHROMEDRIVER.locate();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // chromedriver cannot be handed a bound socket, so wait for it to answer.
        let http = reqwest::Client::new();
        let status = format!("{}/status", driver.url);
        until("chromedriver to be ready", || async {
            let v: Value = http.get(&status).send().await.ok()?.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        driver
    }

    /// A new headless Chromium session that saves downloads in `downloads`.
    async fn browser(&self, downloads: &Path) -> Client {
        let mut chrome = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--window-size=1280,900",
                "--lang=en-GB",
            ],
            "prefs": {
                "download.default_directory": downloads.to_str().unwrap(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        });
        if Path::new("/usr/bin/chromium").exists() {
            chrome["binary"] = json!("/usr/bin/chromium");
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), chrome);
        ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ waiting and reading

/// Polls `probe` until it yields a value; fails after `PATIENCE`, naming what it waited for.
async fn until<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for(what)
        .within(PATIENCE)
        .every(Duration::from_millis(100))
        .until(probe)
        .await
}

/// Runs a script in the page and returns what it returns.
async fn js(c: &Client, script: &str, args: Vec<Value>) -> Value {
    c.execute(script, args).await.expect("script runs")
}

/// Waits until the script returns something other than null / false.
async fn until_js(c: &Client, what: &str, script: &str, args: Vec<Value>) -> Value {
    until(what, || async {
        let v = c.execute(script, args.clone()).await.ok()?;
        (!v.is_null() && v != json!(false)).then_some(v)
    })
    .await
}

/// Waits until the script, which takes no arguments, returns something other than null /
/// false.
async fn until_page(c: &Client, what: &str, script: &str) -> Value {
    until_js(c, what, script, vec![]).await
}

/// Puts a file in the upload form's file field.
async fn choose_file(c: &Client, path: &str) {
    let field = c.find(Locator::Css("#file")).await.unwrap();
    field.send_keys(path).await.unwrap();
}

async fn text_of(c: &Client, css: &str) -> String {
    js(
        c,
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
        vec![json!(css)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// A task row's state as the page shows it: id, status label, progress value and max.
const ROW_STATE: &str = r#"
    const rows = [...document.querySelectorAll('#tasks-body tr')];
    const row = rows.find((r) => r.querySelector('.task-link').textContent === arguments[0]);
    if (!row) return null;
    const bar = row.querySelector('progress');
    const download = row.querySelector('.cell-actions a');
    return {
        id: row.dataset.taskId,
        status: row.querySelector('.badge').textContent,
        value: bar.value,
        max: bar.max,
        download: download && !download.hidden ? download.href : null,
    };
"#;

async fn row_when(c: &Client, file: &str, status: &str) -> Value {
    until_js(
        c,
        &format!("the row of {file} to say {status}"),
        &format!(
            "const s = (() => {{ {ROW_STATE} }})(); \
             return s && s.status === arguments[1] ? s : null;"
        ),
        vec![json!(file), json!(status)],
    )
    .await
}

/// Saves a screenshot of the whole page (the window grows to the page's height first).
async fn screenshot(c: &Client, width: u32, name: &str) -> PathBuf {
    c.set_window_size(width, 900).await.unwrap();
    // The window's height includes the browser's own frame: add what it takes.
    let sizes = js(
        c,
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
        vec![],
    )
    .await;
    let page = sizes[0].as_u64().unwrap_or(900) as u32;
    let frame = sizes[1].as_u64().unwrap_or(0) as u32;
    c.set_window_size(width, page.clamp(600, 8000) + frame)
        .await
        .unwrap();
    let png = c.screenshot().await.unwrap();
    let dir = target_dir().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    c.set_window_size(1280, 900).await.unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

// ------------------------------------------------------------------ the story

/// Evidence that makes the upload's numbers land on every verdict.
async fn post_evidence(server: &TestServer) {
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let body = format!(
        "number,observed_at,source,kind,raw_code,message_id\n\
         +14155552671,{yesterday},smsc-1,sms_dlr,DELIVRD,m-1\n\
         +447911123456,{yesterday},sbc-1,call,404,c-1\n"
    );
    let (code, report) = server
        .post_evidence(&server.admin_key, "text/csv", body)
        .await;
    assert_eq!(code, 200, "{report}");
}

/// The numbers of the upload, as the result writes them.
const NUMBERS: [&str; 4] = [
    "+14155552671",
    "+447911123456",
    "+4930901820",
    "+12005550100",
];

const PEOPLE_CSV: &str = "Name,Phone,City\n\
    Alice,+1 415 555 2671,San Francisco\n\
    Bob,+44 7911 123456,London\n\
    Carol,+49 30 901820,Berlin\n\
    Dave,+1 200 555 0100,Nowhere\n\
    Eve,not a number,Unknown\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_signs_in_uploads_follows_and_downloads_in_a_real_browser() {
    let driver = Driver::start().await;
    let downloads = tempfile::tempdir().unwrap();
    let c = driver.browser(downloads.path()).await;
    // The story runs as its own task so that the browser is closed even when it fails.
    let story = tokio::spawn(story(c.clone(), downloads.path().to_owned())).await;
    let _ = c.close().await;
    drop(driver);
    if let Err(e) = story {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn story(c: Client, downloads: PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();

    // First an API-only server: no workers, so a task stays pending until it is cancelled.
    let mut config = helpers::config(data.path());
    config.worker.concurrency = 0;
    let server = TestServer::boot(config.clone()).await;
    let key = server.key("browser-user", Some(1000)).await;
    post_evidence(&server).await;

    // --- sign in: a wrong key shows the server's own message, the right one opens the page.
    c.goto(&format!("{}/", server.base)).await.unwrap();
    c.wait()
        .for_element(Locator::Css("#signin-form"))
        .await
        .unwrap();
    let (code, wrong) = server.get("nck_not-a-key", "/v1/balance").await;
    assert_eq!(code, 401);
    let expected_message = wrong["message"].as_str().unwrap().to_owned();
    let key_field = c.find(Locator::Css("#api-key")).await.unwrap();
    assert_eq!(
        key_field.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    screenshot(&c, 1280, "signin.png").await;
    key_field.send_keys("nck_not-a-key").await.unwrap();
    click(&c, "#signin-submit").await;
    let shown = until_page(
        &c,
        "the sign-in error",
        "const t = document.querySelector('#signin-error').textContent; return t || null;",
    )
    .await;
    assert_eq!(shown, json!(expected_message));

    key_field.clear().await.unwrap();
    key_field.send_keys(&key).await.unwrap();
    click(&c, "#remember").await;
    click(&c, "#signin-submit").await;
    until_page(
        &c,
        "the dashboard",
        "return !document.querySelector('#app-view').hidden \
         && document.querySelector('#balance-chip').textContent.length > 0;",
    )
    .await;
    assert_eq!(
        text_of(&c, "#balance-chip").await,
        "1,000 credits available"
    );
    let stored = js(
        &c,
        "return localStorage.getItem('numcheck.apiKey');",
        vec![],
    )
    .await;
    assert_eq!(stored, json!(key), "remember on this device keeps the key");

    // --- a task to cancel: a plain text file, no preview, stays pending.
    let pending_file = files.path().join("to-cancel.txt");
    std::fs::write(&pending_file, "+14155552671\n+447911123456\n").unwrap();
    choose_file(&c, pending_file.to_str().unwrap()).await;
    until_page(
        &c,
        "the chosen file",
        "return document.querySelector('#file-name').textContent === 'to-cancel.txt';",
    )
    .await;
    click(&c, "#upload-submit").await;
    let pending = row_when(&c, "to-cancel.txt", "Pending").await;
    let said = until_page(
        &c,
        "the announcement",
        "return document.querySelector('#status').textContent || null;",
    )
    .await;
    assert_eq!(said, json!("Check started for to-cancel.txt: 2 lines."));
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    click(
        &c,
        &format!("tr[data-task-id='{pending_id}'] .cell-actions button"),
    )
    .await;
    let cancelled = row_when(&c, "to-cancel.txt", "Cancelled").await;
    assert!(cancelled["download"].is_null());
    let (_, view) = server.get(&key, &format!("/v1/tasks/{pending_id}")).await;
    assert_eq!(view["status"], "cancelled");

    // --- the same folder and port again, now with workers (the page keeps its session).
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    server.stop().await;
    config.worker.concurrency = 2;
    config.listen = addr;
    let server = TestServer::boot(config).await;

    // --- a two-column CSV: the preview offers its columns; pick the phone column.
    let csv = files.path().join("people.csv");
    std::fs::write(&csv, PEOPLE_CSV).unwrap();
    choose_file(&c, csv.to_str().unwrap()).await;
    let options = until_page(
        &c,
        "the column choice",
        "const f = document.querySelector('#column-field'); \
         if (f.hidden) return null; \
         return [...document.querySelectorAll('#phone-column option')] \
           .map((o) => [o.value, o.textContent]);",
    )
    .await;
    let options = options.as_array().unwrap();
    assert_eq!(options.len(), 3, "{options:?}");
    assert!(
        options[1][1]
            .as_str()
            .unwrap()
            .starts_with("Phone — +1 415 555 2671"),
        "{options:?}"
    );
    // The server picked the column by its header, and the hint says so.
    assert!(
        text_of(&c, "#column-hint")
            .await
            .starts_with("Picked by its header"),
        "the column hint"
    );
    c.find(Locator::Css("#phone-column"))
        .await
        .unwrap()
        .select_by_value("2")
        .await
        .unwrap();
    click(&c, "#opt-xlsx").await;
    screenshot(&c, 1280, "upload-preview.png").await;
    click(&c, "#upload-submit").await;

    // --- the progress bar fills and the row says Done.
    let done = row_when(&c, "people.csv", "Done").await;
    assert_eq!(done["value"], done["max"], "{done}");
    assert_eq!(done["max"].as_f64(), Some(5.0), "{done}");
    let task_id = done["id"].as_str().unwrap().to_owned();
    let (code, detail) = server.get(&key, &format!("/v1/tasks/{task_id}")).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["status"], "exported");
    let summary = &detail["summary"];
    assert!(summary.is_object(), "{detail}");

    // --- the detail view: verdict counts as the summary has them, in the chart's table.
    click(&c, &format!("tr[data-task-id='{task_id}'] .task-link")).await;
    let verdicts = until_page(
        &c,
        "the verdict chart",
        "const rows = document.querySelectorAll('#chart-verdicts-table tbody tr'); \
         if (!rows.length) return null; \
         return Object.fromEntries([...rows].map((r) => \
           [r.dataset.key, r.querySelector('.count').textContent]));",
    )
    .await;
    let expected: BTreeMap<String, String> = ["active", "inactive", "unknown"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                summary["by_status"][*k].as_u64().unwrap_or(0).to_string(),
            )
        })
        .collect();
    let shown: BTreeMap<String, String> = serde_json::from_value(verdicts).unwrap();
    assert_eq!(shown, expected);
    // Every verdict is there: the evidence made one active, one disconnected, and the
    // invalid and unheard-of numbers are inactive and unknown.
    assert_eq!(expected["active"], "1");
    assert_eq!(expected["inactive"], "2");
    assert_eq!(expected["unknown"], "1");
    let chart_label = js(
        &c,
        "return document.querySelector('#chart-verdicts svg title').textContent;",
        vec![],
    )
    .await;
    assert!(
        chart_label
            .as_str()
            .unwrap()
            .starts_with("Verdicts: Active 1 (25%)"),
        "{chart_label}"
    );
    for chart in ["reasons", "regions", "line-types", "rejected"] {
        let bars = js(
            &c,
            "return document.querySelectorAll(`#chart-${arguments[0]} rect.bar`).length;",
            vec![json!(chart)],
        )
        .await;
        assert!(bars.as_u64().unwrap() >= 1, "{chart}: {bars}");
    }
    assert_eq!(
        text_of(&c, "#detail-status").await,
        "Done",
        "the detail view's status"
    );
    // Numbers with evidence, a region for each: nothing to warn of.
    assert_eq!(detail["warnings"], json!([]));
    let warned = js(
        &c,
        "return document.querySelector('#detail-warnings').hidden;",
        vec![],
    )
    .await;
    assert_eq!(warned, json!(true));
    // The result's rows are on the page: one per number, the header as the API gives it.
    let (code, api_rows) = server.get(&key, &format!("/v1/tasks/{task_id}/rows")).await;
    assert_eq!(code, 200, "{api_rows}");
    let shown_rows = until_page(
        &c,
        "the result rows",
        "const rows = document.querySelectorAll('#result-rows tbody tr'); \
         if (!rows.length) return null; \
         return [...rows].map((r) => [...r.cells].map((c) => c.textContent));",
    )
    .await;
    assert_eq!(shown_rows, api_rows["rows"]);
    assert_eq!(api_rows["rows"].as_array().unwrap().len(), 4, "{api_rows}");
    screenshot(&c, 1280, "detail.png").await;
    screenshot(&c, 375, "detail-mobile.png").await;

    // --- download the result through the page's link and read it.
    click(&c, "#detail-actions a").await;
    let zip_path = downloads.join(format!("{task_id}.zip"));
    until("the downloaded zip", || async {
        // Chromium writes `<name>.crdownload` and renames it when complete.
        zip_path.exists().then_some(())
    })
    .await;
    let mut zip = ResultZip::new(std::fs::read(&zip_path).unwrap());
    let result = zip.csv(&task_id);
    let numbers: Vec<&str> = result
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(numbers, NUMBERS, "{result}");
    assert!(
        zip.names().contains(&format!("{task_id}.xlsx")),
        "Excel copy asked for"
    );

    // --- back to the list; delete the cancelled task (after the confirmation).
    click(&c, "#detail-view .back").await;
    until_page(
        &c,
        "the task list",
        "return !document.querySelector('#app-view').hidden;",
    )
    .await;
    click(
        &c,
        &format!("tr[data-task-id='{pending_id}'] .danger-ghost"),
    )
    .await;
    until_page(
        &c,
        "the confirmation",
        "return document.querySelector('#confirm-dialog').open;",
    )
    .await;
    click(&c, "#confirm-ok").await;
    until_js(
        &c,
        "the row to go",
        "return !document.querySelector(`tr[data-task-id='${arguments[0]}']`);",
        vec![json!(pending_id)],
    )
    .await;
    let (code, _) = server.get(&key, &format!("/v1/tasks/{pending_id}")).await;
    assert_eq!(code, 404, "the deleted task is gone");

    // --- balance and usage follow the finished task.
    until_page(
        &c,
        "the usage to count the task",
        "return [...document.querySelectorAll('#usage-stats .stat')].some((s) => \
           s.querySelector('dt').textContent === 'Numbers checked' \
           && s.querySelector('dd').textContent !== '0');",
    )
    .await;
    let dashboard = screenshot(&c, 1280, "dashboard.png").await;
    assert!(std::fs::metadata(dashboard).unwrap().len() > 10_000);
    screenshot(&c, 375, "dashboard-mobile.png").await;

    // --- sign out forgets the key.
    click(&c, "#sign-out").await;
    until_page(
        &c,
        "the sign-in form",
        "return !document.querySelector('#signin-view').hidden;",
    )
    .await;
    let stored = js(
        &c,
        "return localStorage.getItem('numcheck.apiKey') \
         || sessionStorage.getItem('numcheck.apiKey');",
        vec![],
    )
    .await;
    assert!(stored.is_null());
    server.stop().await;
}
