//! What both gateway tests share: the gateway processes (killed on drop, their logs shown
//! when they fail), free ports, numcheck with the page's sources, and reading back what
//! numcheck stored.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use figment::Figment;
use figment::providers::{Format, Toml};
use numcheck_core::{E164, Profile};
use numcheck_engine::config::SourceConfig;
use numcheck_store::EvidenceStats;
use numcheck_testkit::smsc::{Receipt, Rule, Smsc};
use numcheck_testkit::wait_for;

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

    /// [`Daemon::spawn`], then waits until it accepts connections on `port`.
    pub fn spawn_listening(name: &str, command: Command, dir: &Path, port: u16) -> Daemon {
        let mut daemon = Daemon::spawn(name, command, dir);
        wait_for(format!("{name} to listen on port {port}")).until_blocking(|| {
            daemon.check();
            std::net::TcpStream::connect(("127.0.0.1", port))
        });
        daemon
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
    lookup(&query(target), name)
}

/// The value of `name` among decoded pairs.
pub fn lookup(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The four numbers each gateway test sends to, and the receipts the SMSC gives them.
pub struct Story {
    /// `DELIVRD`: becomes active.
    pub delivered: &'static str,
    /// `UNDELIV err:001` (unknown subscriber on a MAP route): becomes inactive.
    pub unknown_subscriber: &'static str,
    /// `UNDELIV err:027` (absent subscriber): not inactive on its own.
    pub absent: &'static str,
    /// No receipt: stays `unknown / no_evidence`.
    pub never_reported: &'static str,
    /// More numbers that are delivered and become active.
    pub delivered_too: &'static [&'static str],
}

impl Story {
    /// Every number the verdicts are checked on.
    pub fn numbers(&self) -> Vec<&'static str> {
        let mut all = vec![
            self.delivered,
            self.unknown_subscriber,
            self.absent,
            self.never_reported,
        ];
        all.extend(self.delivered_too);
        all
    }

    /// The SMSC's receipts, for the numbers with or without their `+` (gateways differ),
    /// `also_delivered` answered `DELIVRD` too.
    pub fn rule(&self, also_delivered: &[&'static str]) -> Rule {
        let bare = |n: &str| n.trim_start_matches('+').to_owned();
        let mut delivered: Vec<String> = self.delivered_too.iter().map(|n| bare(n)).collect();
        delivered.extend(also_delivered.iter().map(|n| bare(n)));
        delivered.push(bare(self.delivered));
        let (unknown, absent) = (bare(self.unknown_subscriber), bare(self.absent));
        Arc::new(move |to: &str| {
            let to = bare(to);
            if delivered.contains(&to) {
                Some(Receipt::new("DELIVRD", "000"))
            } else if to == unknown {
                Some(Receipt::new("UNDELIV", "001"))
            } else if to == absent {
                Some(Receipt::new("UNDELIV", "027"))
            } else {
                None
            }
        })
    }

    /// Before any message: every number is `unknown`.
    pub async fn assert_unknown_before(&self, s: &TestServer) {
        let before = s.verdicts(&self.numbers()).await;
        for n in self.numbers() {
            assert_eq!(before[n].0, "unknown", "{n} before any message: {before:?}");
        }
    }

    /// After the reports: the verdicts moved as each receipt says.
    pub async fn assert_moved(&self, s: &TestServer) {
        let after = s.verdicts(&self.numbers()).await;
        for n in [self.delivered].iter().chain(self.delivered_too) {
            assert_eq!(after[*n].0, "active", "{n}: {after:?}");
        }
        assert_eq!(after[self.unknown_subscriber].0, "inactive", "{after:?}");
        assert_ne!(
            after[self.absent].0, "inactive",
            "an absent subscriber alone does not make a number inactive: {after:?}"
        );
        assert_eq!(
            after[self.never_reported],
            ("unknown".to_owned(), "no_evidence".to_owned()),
            "{after:?}"
        );
    }
}

/// Waits until the gateway has bound to the SMSC, `check` failing the wait when the
/// gateway died.
pub async fn wait_for_bind(smsc: &Smsc, gateway: &str, mut check: impl FnMut()) {
    wait_for(format!("{gateway} to bind to the SMSC"))
        .until(|| {
            check();
            let bound = smsc.has_receiver();
            async move { bound.then_some(()) }
        })
        .await;
}
