//! The osmo-hlr provider against a real osmo-hlr (Debian: `apt-get install osmo-hlr`, which
//! `.ci/run` does; without it the tests fail and say so).
//!
//! osmo-hlr 1.5.0 binds its CTRL (4259), VTY (4258) and GSUP (4222) ports at fixed numbers
//! (libosmoctrl's `bind A.B.C.D` takes no port), so each test runs its own osmo-hlr on its own
//! loopback address (127.x.y.z) with those ports free there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numcheck_core::connectors::Code;
use numcheck_core::{E164, EvidenceKind, LineType};
use numcheck_lookup::osmo::{MsisdnRule, OsmoHlrConfig, OsmoHlrProvider, code};
use numcheck_lookup::{LookupError, Provider};
use numcheck_testkit::peer::OSMO_HLR;
use numcheck_testkit::wait_for;

const CTRL_PORT: u16 = 4259;
const FIXED_PORTS: [u16; 3] = [4222, 4258, 4259];

/// One osmo-hlr process with its own config, database and loopback address; killed on drop.
struct Hlr {
    dir: tempfile::TempDir,
    child: Option<Child>,
    ip: Ipv4Addr,
    next_id: u32,
}

static NEXT_ADDR: AtomicU32 = AtomicU32::new(0);

/// A loopback address where osmo-hlr's fixed ports are free.
fn free_loopback() -> Ipv4Addr {
    for _ in 0..200 {
        let k = NEXT_ADDR.fetch_add(1, Ordering::Relaxed) + std::process::id() * 37;
        let ip = Ipv4Addr::new(127, 10 + (k / 250 % 200) as u8, (k % 250) as u8 + 1, 9);
        if FIXED_PORTS
            .iter()
            .all(|p| TcpListener::bind((ip, *p)).is_ok())
        {
            return ip;
        }
    }
    panic!("no loopback address with ports 4222, 4258 and 4259 free");
}

impl Hlr {
    fn start() -> Hlr {
        let dir = tempfile::tempdir().unwrap();
        let ip = free_loopback();
        // Config syntax: osmo-hlr's doc/examples/osmo-hlr.cfg (ctrl / line vty / hlr gsup bind).
        let cfg = format!(
            "log stderr\n logging filter all 1\n logging color 0\n logging level main notice\n\
             line vty\n bind {ip}\nctrl\n bind {ip}\nhlr\n gsup\n  bind ip {ip}\n"
        );
        std::fs::write(dir.path().join("hlr.cfg"), cfg).unwrap();
        let mut hlr = Hlr {
            dir,
            child: None,
            ip,
            next_id: 0,
        };
        hlr.spawn();
        hlr
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("hlr.db")
    }

    fn ctrl_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, CTRL_PORT))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hlr.log")).unwrap_or_default()
    }

    /// Starts osmo-hlr (a new database is bootstrapped on first start) and waits for its CTRL
    /// port.
    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("hlr.log")).unwrap();
        let child = Command::new(OSMO_HLR.locate())
            .arg("-c")
            .arg(self.dir.path().join("hlr.cfg"))
            .arg("-l")
            .arg(self.db_path())
            .arg("--db-upgrade")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for(format!("osmo-hlr's CTRL port {}", self.ctrl_addr()))
            .within(Duration::from_secs(30))
            .every(Duration::from_millis(50))
            .until_blocking(|| {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("osmo-hlr exited with {status}:\n{}", self.log());
                }
                TcpStream::connect_timeout(&self.ctrl_addr(), Duration::from_millis(200))
                    .is_ok()
                    .then_some(())
            });
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A CTRL SET for the test setup (the provider itself never sends SET), with its own IPA
    /// framing so the provider's is not checked against itself. Returns the reply text.
    fn set(&mut self, var: &str, value: &str) -> String {
        self.next_id += 1;
        let text = format!("SET {} {var} {value}", self.next_id);
        let mut s = TcpStream::connect(self.ctrl_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let len = (text.len() + 1) as u16;
        let mut msg = len.to_be_bytes().to_vec();
        msg.extend([0xEE, 0x00]);
        msg.extend(text.as_bytes());
        s.write_all(&msg).unwrap();
        let mut head = [0u8; 3];
        s.read_exact(&mut head).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes([head[0], head[1]]))];
        s.read_exact(&mut body).unwrap();
        assert_eq!((head[2], body[0]), (0xEE, 0x00));
        let reply = String::from_utf8(body[1..].to_vec()).unwrap();
        assert!(
            reply.starts_with(&format!("SET_REPLY {} ", self.next_id)),
            "{text} → {reply}"
        );
        reply
    }

    /// Creates a subscriber with an MSISDN (CTRL `subscriber.create`, `…msisdn`; osmo-hlr
    /// src/ctrl.c). New subscribers have CS and PS access enabled.
    fn subscriber(&mut self, imsi: &str, msisdn: &str) {
        self.set("subscriber.create", imsi);
        self.set(&format!("subscriber.by-imsi-{imsi}.msisdn"), msisdn);
    }

    /// Starts an HLR holding these subscribers (IMSI, MSISDN).
    fn with(subscribers: &[(&str, &str)]) -> Hlr {
        let mut hlr = Hlr::start();
        for (imsi, msisdn) in subscribers {
            hlr.subscriber(imsi, msisdn);
        }
        hlr
    }

    /// Turns a subscriber's CS and PS access off, as an operator barring the line does.
    fn disable(&mut self, imsi: &str) {
        for domain in ["cs", "ps"] {
            self.set(&format!("subscriber.by-imsi-{imsi}.{domain}-enabled"), "0");
        }
    }

    /// Writes to the HLR's database directly (what a VLR's location update would do).
    fn sql(&self, sql: &str, msisdn: &str) {
        let db = rusqlite::Connection::open(self.db_path()).unwrap();
        db.busy_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(db.execute(sql, [msisdn]).unwrap(), 1, "{sql}");
    }

    /// A provider on this HLR: [`config`] changed by `tweak`.
    fn provider(&self, tweak: impl FnOnce(&mut OsmoHlrConfig)) -> OsmoHlrProvider {
        let mut cfg = config(self.ctrl_addr());
        tweak(&mut cfg);
        OsmoHlrProvider::new(cfg).unwrap()
    }
}

impl Drop for Hlr {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(addr: SocketAddr) -> OsmoHlrConfig {
    OsmoHlrConfig {
        name: "own-hlr".into(),
        address: addr.to_string(),
        timeout_ms: 3000,
        msisdn_rule: MsisdnRule::default(),
        ranges: vec!["4915".into(), "4916".into()],
        database: None,
        recent_lu_days: 7,
    }
}

fn n(s: &str) -> E164 {
    s.parse().unwrap()
}

/// The one code a single-number lookup of an `+E.164` number stored as those digits gave.
async fn code_of(p: &OsmoHlrProvider, number: &str) -> String {
    code_of_stored(p, number, number.trim_start_matches('+')).await
}

/// The one code a single-number lookup gave for `number` stored as `msisdn`, after checking
/// the event's shape.
async fn code_of_stored(p: &OsmoHlrProvider, number: &str, msisdn: &str) -> String {
    let answers = p.lookup(&[n(number)]).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].number, n(number));
    let e = answers[0].event.clone().expect("an event");
    assert_eq!(e.kind, EvidenceKind::CoreNetwork);
    assert_eq!(e.number, number);
    assert!(e.final_state);
    assert_eq!(e.codes, vec![Code::Table("osmo_hlr", e.raw_code.clone())]);
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(e.message_id, Some(format!("osmo:{msisdn}:{day}")));
    e.raw_code
}

#[tokio::test]
async fn known_subscriber_is_idle_then_attached_then_disabled() {
    let mut hlr = Hlr::with(&[("262420000000001", "4915100000001")]);
    let p = hlr.provider(|_| {});
    assert_eq!(code_of(&p, "+4915100000001").await, code::KNOWN_IDLE);

    // A VLR registration (the column a location update fills) → attached.
    hlr.sql(
        "UPDATE subscriber SET vlr_number = 'MSC-262-42' WHERE msisdn = ?1",
        "4915100000001",
    );
    assert_eq!(code_of(&p, "+4915100000001").await, code::ATTACHED);

    // Only CS disabled: still enabled.
    hlr.set("subscriber.by-imsi-262420000000001.cs-enabled", "0");
    assert_eq!(code_of(&p, "+4915100000001").await, code::ATTACHED);
    hlr.set("subscriber.by-imsi-262420000000001.ps-enabled", "0");
    assert_eq!(code_of(&p, "+4915100000001").await, code::ACCESS_DISABLED);
}

#[tokio::test]
async fn unknown_msisdn_in_range_is_no_such_subscriber_and_outside_is_not_covered() {
    let hlr = Hlr::with(&[("262420000000002", "4915100000002")]);
    let p = hlr.provider(|_| {});
    assert_eq!(
        code_of(&p, "+4915199999999").await,
        code::NO_SUCH_SUBSCRIBER
    );
    assert!(p.covers(n("+4916012345678"), LineType::Mobile, None));
    assert!(!p.covers(n("+4917012345678"), LineType::Mobile, None));
    assert!(!p.covers(n("+4930123456"), LineType::FixedLine, None));
    let answers = p.lookup(&[n("+4917012345678")]).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].event, None);
}

#[tokio::test]
async fn recent_location_update_from_the_database() {
    let hlr = Hlr::with(&[
        ("262420000000003", "4915100000003"),
        ("262420000000004", "4915100000004"),
        ("262420000000005", "4915100000005"),
    ]);
    // The format osmo-hlr writes (src/db_hlr.c: datetime($val, 'unixepoch')).
    hlr.sql(
        "UPDATE subscriber SET last_lu_seen = datetime('now', '-1 day'), \
         vlr_number = 'MSC-1' WHERE msisdn = ?1",
        "4915100000003",
    );
    hlr.sql(
        "UPDATE subscriber SET last_lu_seen = datetime('now', '-30 days'), \
         vlr_number = 'MSC-1' WHERE msisdn = ?1",
        "4915100000004",
    );
    // Purged by the VLR, and not attached to an SGSN.
    hlr.sql(
        "UPDATE subscriber SET ms_purged_cs = 1, vlr_number = 'MSC-1', \
         last_lu_seen = datetime('now', '-20 days') WHERE msisdn = ?1",
        "4915100000005",
    );
    let p = hlr.provider(|c| c.database = Some(hlr.db_path()));
    assert_eq!(code_of(&p, "+4915100000003").await, code::LOCATION_UPDATE);
    assert_eq!(code_of(&p, "+4915100000004").await, code::KNOWN_IDLE);
    assert_eq!(code_of(&p, "+4915100000005").await, code::PURGED);
    // A PS location update counts too.
    hlr.sql(
        "UPDATE subscriber SET last_lu_seen_ps = datetime('now', '-2 hours') WHERE msisdn = ?1",
        "4915100000004",
    );
    assert_eq!(code_of(&p, "+4915100000004").await, code::LOCATION_UPDATE);
}

#[tokio::test]
async fn national_msisdns_through_the_rule() {
    let hlr = Hlr::with(&[("262420000000006", "015100000006")]);
    let p = hlr.provider(|c| {
        c.msisdn_rule = MsisdnRule {
            strip_prefix: "49".into(),
            add_prefix: "0".into(),
        }
    });
    assert_eq!(
        code_of_stored(&p, "+4915100000006", "015100000006").await,
        code::KNOWN_IDLE
    );
}

#[tokio::test]
async fn a_pipelined_batch_is_matched_number_by_number() {
    let mut hlr = Hlr::with(&[
        ("262420000000007", "4915100000007"),
        ("262420000000008", "4915100000008"),
    ]);
    hlr.disable("262420000000008");
    let p = hlr.provider(|_| {});
    assert!(p.batch_size() > 1);
    let numbers = [
        n("+4915100000007"),
        n("+4915100000008"),
        n("+4915100000099"),
        n("+4930123456"),
    ];
    let answers = p.lookup(&numbers).await.unwrap();
    let code = |num: E164| {
        answers
            .iter()
            .find(|a| a.number == num)
            .unwrap()
            .event
            .as_ref()
            .map(|e| e.raw_code.clone())
    };
    assert_eq!(code(numbers[0]).as_deref(), Some(code::KNOWN_IDLE));
    assert_eq!(code(numbers[1]).as_deref(), Some(code::ACCESS_DISABLED));
    assert_eq!(code(numbers[2]).as_deref(), Some(code::NO_SUCH_SUBSCRIBER));
    assert_eq!(code(numbers[3]), None);
    assert_eq!(answers.len(), 4);
    // The connection is kept: a second call on it works.
    assert_eq!(code_of(&p, "+4915100000007").await, code::KNOWN_IDLE);
}

#[tokio::test]
async fn a_stopped_hlr_is_unavailable_and_a_restarted_one_answers_again() {
    let mut hlr = Hlr::with(&[("262420000000010", "4915100000010")]);
    let p = hlr.provider(|_| {});
    assert_eq!(code_of(&p, "+4915100000010").await, code::KNOWN_IDLE);
    hlr.stop();
    let r = p.lookup(&[n("+4915100000010")]).await;
    assert!(matches!(r, Err(LookupError::Unavailable(_))), "{r:?}");
    let r = p.lookup(&[n("+4915100000010")]).await;
    assert!(matches!(r, Err(LookupError::Unavailable(_))), "{r:?}");
    hlr.spawn();
    assert_eq!(code_of(&p, "+4915100000010").await, code::KNOWN_IDLE);
}

/// Forwards one TCP connection at a time to `to`, recording what the client sent.
async fn recording_proxy(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&sent);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(to).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(k) = cr.read(&mut buf).await {
                    if k == 0 || sw.write_all(&buf[..k]).await.is_err() {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..k]);
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
        }
    });
    (addr, sent)
}

#[tokio::test]
async fn the_provider_sends_only_info_gets() {
    let mut hlr = Hlr::with(&[("262420000000011", "4915100000011")]);
    hlr.set(
        "subscriber.by-imsi-262420000000011.aud2g",
        "comp128v1,00112233445566778899aabbccddeeff",
    );
    let (proxy, sent) = recording_proxy(hlr.ctrl_addr()).await;
    let p = OsmoHlrProvider::new(config(proxy)).unwrap();
    let answers = p
        .lookup(&[n("+4915100000011"), n("+4915100000012")])
        .await
        .unwrap();
    assert_eq!(answers.len(), 2);
    code_of(&p, "+4915100000011").await;

    let bytes = sent.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(".info"), "{text:?}");
    assert!(
        !text.contains("info-all") && !text.contains("info-aud"),
        "{text:?}"
    );
    // Every frame the provider sent is `GET <id> subscriber.by-msisdn-<digits>.info`.
    let mut rest = &bytes[..];
    let mut frames = 0;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        assert_eq!((rest[2], rest[3]), (0xEE, 0x00));
        let cmd = std::str::from_utf8(&rest[4..3 + len]).unwrap();
        let parts: Vec<&str> = cmd.split(' ').collect();
        assert_eq!(parts.len(), 3, "{cmd}");
        assert_eq!(parts[0], "GET");
        assert!(parts[1].bytes().all(|b| b.is_ascii_digit()), "{cmd}");
        let digits = parts[2]
            .strip_prefix("subscriber.by-msisdn-")
            .and_then(|v| v.strip_suffix(".info"))
            .unwrap_or_else(|| panic!("unexpected command {cmd:?}"));
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{cmd}");
        rest = &rest[3 + len..];
        frames += 1;
    }
    assert_eq!(frames, 3);
    // Nothing the answers carry holds the key just stored.
    assert!(!format!("{answers:?}").contains("00112233"));
}

/// The verdict an osmo-hlr answer alone gives, through the shipped code book and the default
/// policy — the mapping the README documents.
async fn verdict_of(p: &OsmoHlrProvider, number: &str) -> (String, String) {
    use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
    let answers = p.lookup(&[n(number)]).await.unwrap();
    let event = answers[0].event.clone().expect("an event");
    let now = chrono::Utc::now().timestamp_millis();
    let numcheck_core::Row::Observation(o) = observe(
        &CodeBook::shipped(),
        &SourceSpec::new("own-hlr"),
        event,
        now,
    )
    .unwrap() else {
        panic!("not an observation")
    };
    let profile = numcheck_core::Profile::of(&o);
    let v = numcheck_core::Policy::default().decide(true, Some("DE"), Some(&profile), now);
    (v.status.as_str().to_owned(), v.reason.as_str().to_owned())
}

#[tokio::test]
async fn osmo_hlr_answers_give_the_documented_verdicts() {
    let mut hlr = Hlr::with(&[
        ("262420000000011", "4915100000011"),
        ("262420000000012", "4915100000012"),
        ("262420000000013", "4915100000013"),
    ]);
    hlr.disable("262420000000012");
    hlr.sql(
        "UPDATE subscriber SET last_lu_seen = datetime('now', '-1 day'), vlr_number = 'MSC-1' WHERE msisdn = ?1",
        "4915100000013",
    );
    let p = hlr.provider(|c| c.database = Some(hlr.db_path()));
    let inactive = ("inactive".to_owned(), "disconnected".to_owned());
    assert_eq!(
        verdict_of(&p, "+4915199999998").await,
        inactive,
        "no such subscriber"
    );
    assert_eq!(
        verdict_of(&p, "+4915100000012").await,
        inactive,
        "access disabled"
    );
    assert_eq!(
        verdict_of(&p, "+4915100000013").await.0,
        "active",
        "recent location update"
    );
    assert_eq!(
        verdict_of(&p, "+4915100000011").await.0,
        "unknown",
        "known but idle says nothing"
    );
}
