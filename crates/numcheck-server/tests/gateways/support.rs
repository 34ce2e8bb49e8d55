//! What both gateway tests share: the gateway processes (killed on drop, their logs shown
//! when they fail), free ports, numcheck with the page's sources, and reading back what
//! numcheck stored.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use figment::Figment;
use figment::providers::{Format, Toml};
use numcheck_core::{E164, Profile};
use numcheck_engine::config::SourceConfig;
use numcheck_store::EvidenceStats;

use crate::docs;
use crate::helpers::TestServer;

/// A free TCP port on 127.0.0.1 (free when asked; the gateway binds it a moment later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A gateway process: its output goes to a log file, shown when something fails; killed
/// when dropped.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdout and stderr to `dir/<name>.out`.
    pub fn spawn(name: &str, mut command: Command, dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.out"));
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// The end of its output.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            &text[start..]
        )
    }

    /// Panics with its output when it has exited.
    pub fn check(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}\n{}", self.name, self.tail());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[[sources]]` of the page's `numcheck.toml`.
pub fn doc_sources() -> Vec<SourceConfig> {
    #[derive(serde::Deserialize)]
    struct Page {
        sources: Vec<SourceConfig>,
    }
    let text = docs::snippet("numcheck.toml");
    let page: Page = Figment::from(Toml::string(&text)).extract().unwrap();
    page.sources
}

/// The token the page gives `source`.
pub fn token(source: &str) -> String {
    doc_sources()
        .into_iter()
        .find(|s| s.name == source)
        .unwrap_or_else(|| panic!("numcheck.toml on the page has no source {source}"))
        .token
}

/// numcheck with the page's sources.
pub async fn numcheck() -> TestServer {
    TestServer::start_with(|c| c.sources = doc_sources()).await
}

/// What numcheck's evidence log holds.
pub async fn stored(s: &TestServer) -> EvidenceStats {
    s.state.engine.store.evidence_stats().await.unwrap()
}

/// The evidence profile of a number, if it has one.
pub async fn profile(s: &TestServer, number: &str) -> Option<Profile> {
    let n: E164 = number.parse().unwrap();
    s.state
        .engine
        .store
        .profiles(&[n])
        .await
        .unwrap()
        .remove(&n)
}

/// The query fields of a request target, decoded.
pub fn query(target: &str) -> Vec<(String, String)> {
    let q = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// One field of a request target's query.
pub fn field(target: &str, name: &str) -> Option<String> {
    query(target)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}
