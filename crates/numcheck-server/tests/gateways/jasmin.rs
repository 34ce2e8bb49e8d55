//! Jasmin 0.11.0 (PyPI `jasmin`, in a virtualenv; RabbitMQ and Redis on their usual local
//! ports): jasmind with its HTTP API, jCli, DLR lookup and DLR thrower, an SMPP connector to
//! the SMSC stand-in set up over jCli, messages sent with the page's `/send` request, and
//! Jasmin's DLR thrower calling the page's `dlr-url` through the recorder, by POST and GET.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use numcheck_testkit::Peer;
use numcheck_testkit::smsc::Smsc;
use numcheck_testkit::wait_for;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::docs::{change, curl, value, with};
use crate::recorder::Recorder;
use crate::support::{
    Daemon, Story, field, free_port, lookup, numcheck, profile, query, stored, token, wait_for_bind,
};

/// Jasmin's daemon, from a virtualenv (`.ci/run` links it into `/usr/local/bin`). 0.11.1
/// sends no reports (jookies/jasmin#1236).
const JASMIND: Peer = Peer {
    program: "jasmind.py",
    env: Some("JASMIND"),
    install: "python3 -m venv /opt/jasmin && /opt/jasmin/bin/pip install jasmin==0.11.0 && ln -sf /opt/jasmin/bin/jasmind.py /usr/local/bin/",
};

/// RabbitMQ's control tool: each run gets a virtual host of its own.
const RABBITMQCTL: Peer = Peer {
    program: "rabbitmqctl",
    env: None,
    install: "apt-get install rabbitmq-server",
};

const VHOST: &str = "numcheck-gateway-test";

/// The AMQP 0-9-1 spec jasmind loads: the wheel lacks its own `resource/amqp0-9-1.xml`, so
/// the one txAMQP ships, found in the virtualenv beside jasmind.
fn amqp_spec(jasmind: &Path) -> PathBuf {
    let venv = jasmind.canonicalize().unwrap();
    let lib = venv.parent().unwrap().parent().unwrap().join("lib");
    std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}: jasmind is not in a virtualenv", lib.display()))
        .filter_map(Result::ok)
        .map(|d| {
            d.path()
                .join("site-packages/txamqp/specs/standard/amqp0-9-1.stripped.xml")
        })
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no txamqp AMQP spec under {}", lib.display()))
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new(RABBITMQCTL.locate())
        .arg("-q")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success() || args[0] == "delete_vhost",
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// jasmind holds `/tmp/jasmind.lock` while it runs, one per machine; a killed one leaves it
/// behind and the next exits at once ("Lock not acquired"). Removed when no jasmind runs.
fn clear_stale_lock() {
    let running = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .any(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("jasmind.py"))
        });
    if !running {
        let _ = std::fs::remove_file("/tmp/jasmind.lock");
    }
}

/// A running jasmind and the ports of its HTTP API and jCli.
struct Jasmin {
    http: u16,
    jcli: u16,
    daemon: Daemon,
}

impl Drop for Jasmin {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_vhost", VHOST]);
    }
}

impl Jasmin {
    /// Starts jasmind on a configuration of free ports, RabbitMQ's virtual host of its own,
    /// quick DLR retries, and its store and logs in `dir`.
    fn start(dir: &Path) -> Jasmin {
        let jasmind = JASMIND.locate();
        rabbitmqctl(&["delete_vhost", VHOST]);
        rabbitmqctl(&["add_vhost", VHOST]);
        rabbitmqctl(&["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]);
        clear_stale_lock();
        let (http, jcli) = (free_port(), free_port());
        let mut cfg = format!(
            "[amqp-broker]\nhost = 127.0.0.1\nport = 5672\nusername = guest\npassword = guest\n\
             vhost = {VHOST}\nspec = {}\n\n[redis-client]\nhost = 127.0.0.1\nport = 6379\n\n\
             [http-api]\nbind = 127.0.0.1\nport = {http}\n\n[jcli]\nbind = 127.0.0.1\nport = {jcli}\n\n",
            amqp_spec(&jasmind).display()
        );
        for section in [
            "smpp-server",
            "smpp-server-pb",
            "router",
            "client-management",
        ] {
            cfg += &format!("[{section}]\nbind = 127.0.0.1\nport = {}\n\n", free_port());
        }
        // A retried report comes after 2 s instead of the default 30 s.
        cfg += "[dlr-thrower]\nhttp_timeout = 10\nretry_delay = 2\nmax_retries = 3\n";
        let etc = dir.join("etc");
        for sub in ["etc", "store", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(etc.join("jasmin.cfg"), cfg).unwrap();
        let mut command = Command::new(&jasmind);
        command
            .arg("-c")
            .arg(etc.join("jasmin.cfg"))
            .args(["--enable-dlr-lookup", "--enable-dlr-thrower"])
            .env("CONFIG_PATH", &etc)
            .env("STORE_PATH", dir.join("store"))
            .env("LOG_PATH", dir.join("log"))
            .env("PYTHONUNBUFFERED", "1");
        // jCli is the last part jasmind starts.
        let daemon = Daemon::spawn_listening("jasmind", command, dir, jcli);
        Jasmin { http, jcli, daemon }
    }

    /// Runs jCli `lines` after logging in as the default admin, each line once the
    /// previous one was answered by its prompt (`> ` inside an add, `jcli : ` otherwise);
    /// returns the transcript.
    async fn jcli(&mut self, lines: &[&str]) -> String {
        let stream = TcpStream::connect(("127.0.0.1", self.jcli)).await.unwrap();
        let mut console = Console {
            stream,
            seen: Vec::new(),
            at: 0,
        };
        // The banner asks for the user name without a prompt of its own.
        console.until("Authentication required.").await;
        console.say("jcliadmin", "Password: ").await;
        console.say("jclipwd", "jcli : ").await;
        let mut adding = false;
        for line in lines {
            let done = *line == "ok" || *line == "ko";
            adding = (adding && !done) || line.ends_with(" -a");
            console
                .say(line, if adding { "> " } else { "jcli : " })
                .await;
        }
        console.stream.write_all(b"quit\r\n").await.unwrap();
        String::from_utf8_lossy(&console.seen).into_owned()
    }
}

/// A jCli (telnet) session: what it printed, and how far the dialogue has read.
struct Console {
    stream: TcpStream,
    seen: Vec<u8>,
    at: usize,
}

impl Console {
    /// Reads until `what` appears after what was already read.
    async fn until(&mut self, what: &str) {
        let mut buf = [0u8; 4096];
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let text = String::from_utf8_lossy(&self.seen[self.at..]).into_owned();
                if let Some(i) = text.find(what) {
                    // Lossy text and bytes agree up to the match: jCli speaks ASCII here.
                    return self.at + i + what.len();
                }
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "jCli closed: {}",
                    String::from_utf8_lossy(&self.seen)
                );
                // Telnet negotiation (0xff …) dropped: the rest is ASCII.
                self.seen.extend(buf[..n].iter().filter(|b| b.is_ascii()));
            }
        })
        .await;
        self.at = found.unwrap_or_else(|_| {
            panic!(
                "jCli never said {what:?}:\n{}",
                String::from_utf8_lossy(&self.seen)
            )
        });
    }

    /// Sends `line` and waits for `prompt`.
    async fn say(&mut self, line: &str, prompt: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.until(prompt).await;
    }
}

/// Sends one message to `to` with the page's `/send` request: its `dlr-url` pointed at
/// `numcheck` for `to`, with `dlr-method` and `dlr-level` as given. Returns Jasmin's message id.
async fn send(
    http: &reqwest::Client,
    port: u16,
    to: &str,
    numcheck: &str,
    method: &str,
    level: &str,
) -> String {
    let name = "jasmin send";
    let (url, fields) = curl(name);
    assert_eq!(url, "http://127.0.0.1:1401/send");
    let dlr_url = change(
        name,
        value(&fields, "dlr-url"),
        "https://numcheck.example",
        numcheck,
    );
    let encoded: String = form_urlencoded::byte_serialize(to.as_bytes()).collect();
    let dlr_url = change(
        name,
        &dlr_url,
        "to=%2B14155552671",
        &format!("to={encoded}"),
    );
    let mut fields = with(&fields, "to", to);
    for (key, v) in [
        ("dlr-url", dlr_url.as_str()),
        ("dlr-method", method),
        ("dlr-level", level),
    ] {
        fields = with(&fields, key, v);
    }
    let resp = http
        .get(format!("http://127.0.0.1:{port}/send"))
        .query(&fields)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "send to {to}: {body}");
    // `Success "<uuid>"`
    body.trim()
        .strip_prefix("Success \"")
        .and_then(|b| b.strip_suffix('"'))
        .unwrap_or_else(|| panic!("send to {to}: {body}"))
        .to_owned()
}

/// The fields of a Jasmin callback: the form body of a POST, the query of a GET.
fn callback_fields(c: &crate::recorder::Call) -> Vec<(String, String)> {
    let mut all = query(&c.target);
    all.extend(form_urlencoded::parse(c.body.as_bytes()).into_owned());
    all
}

/// The last one is sent with `dlr-level=3`.
const STORY: Story = Story {
    delivered: "+14155550201",
    unknown_subscriber: "+14155550202",
    absent: "+14155550203",
    never_reported: "+14155550204",
    delivered_too: &["+14155550205"],
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jasmin_reports_by_post_and_get_move_verdicts_and_each_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let Story {
        delivered,
        unknown_subscriber,
        absent,
        never_reported,
        ..
    } = STORY;
    let both_levels = STORY.delivered_too[0];
    let smsc = Smsc::start(STORY.rule(&[])).await;
    let s = numcheck().await;
    let front = Recorder::start(&s.base).await;
    let mut jasmin = Jasmin::start(dir.path());

    // The gateway's own setup: a connector to the SMSC, the page's sender as an HTTP user,
    // the default route through the connector.
    let (_, page) = curl("jasmin send");
    let smsc_port = format!("port {}", smsc.addr().port());
    let username = format!("username {}", value(&page, "username"));
    let password = format!("password {}", value(&page, "password"));
    let transcript = jasmin
        .jcli(&[
            "smppccm -a",
            "cid smsc1",
            "host 127.0.0.1",
            &smsc_port,
            "username numcheck",
            "password smpp",
            "bind transceiver",
            "ok",
            "smppccm -1 smsc1",
            "group -a",
            "gid senders",
            "ok",
            "user -a",
            "uid sender",
            "gid senders",
            &username,
            &password,
            "ok",
            "mtrouter -a",
            "type DefaultRoute",
            "connector smppc(smsc1)",
            "rate 0.00",
            "ok",
        ])
        .await;
    for said in [
        "Successfully added connector [smsc1]",
        "Successfully started connector id:smsc1",
        "Successfully added User [sender]",
        "Successfully added MTRoute [DefaultRoute]",
    ] {
        assert!(
            transcript.contains(said),
            "jCli did not say {said:?}:\n{transcript}"
        );
    }
    wait_for_bind(&smsc, "Jasmin", || jasmin.daemon.check()).await;
    STORY.assert_unknown_before(&s).await;

    // The first callback reaches numcheck but its answer is lost: Jasmin sends it again.
    front.drop_next(1);
    let mut ids = std::collections::HashMap::new();
    for (to, method, level) in [
        (delivered, "POST", "2"),
        (unknown_subscriber, "GET", "2"),
        (absent, "POST", "2"),
        (never_reported, "GET", "2"),
        (both_levels, "POST", "3"),
    ] {
        let id = send(&s.http, jasmin.http, to, &front.base, method, level).await;
        ids.insert(id, (to, method));
    }

    let calls = wait_for("Jasmin's callbacks, the retried one included")
        .until(|| {
            jasmin.daemon.check();
            let calls = front.calls();
            let answered: Vec<_> = calls.iter().filter(|c| !c.dropped).collect();
            let levels = |to: &str, level: &str| {
                answered.iter().any(|c| {
                    let f = callback_fields(c);
                    lookup(&f, "to").as_deref() == Some(to)
                        && lookup(&f, "level").as_deref() == Some(level)
                })
            };
            let retried = calls.iter().any(|c| {
                c.dropped
                    && answered
                        .iter()
                        .any(|a| a.target == c.target && a.body == c.body)
            });
            let all = [delivered, unknown_subscriber, absent, both_levels]
                .iter()
                .all(|n| levels(n, "2"))
                && levels(both_levels, "1");
            let seen = format!("{} callbacks", calls.len());
            async move { if all && retried { Ok(calls) } else { Err(seen) } }
        })
        .await;

    for c in &calls {
        eprintln!(
            "{} {} [{}] {:?} -> {:?}",
            c.method, c.target, c.body, c.user_agent, c.answer
        );
        let f = callback_fields(c);
        let id = lookup(&f, "id").unwrap();
        let (to, method) = ids[&id];
        assert_eq!(lookup(&f, "to").as_deref(), Some(to), "{c:?}");
        assert_eq!(c.method, method, "{c:?}");
        assert!(
            c.user_agent
                .as_deref()
                .unwrap_or_default()
                .starts_with("Jasmin"),
            "Jasmin's DLR thrower makes the call: {c:?}"
        );
        assert_eq!(field(&c.target, "token"), Some(token("jasmin-1")));
        // GET: the fields follow the dlr-url's own query after `&`, not a second `?`.
        assert_eq!(c.target.matches('?').count(), 1, "{c:?}");
        if method == "POST" {
            assert_eq!(
                query(&c.target).len(),
                2,
                "the fields are in the body: {c:?}"
            );
            assert_eq!(
                c.content_type.as_deref(),
                Some("application/x-www-form-urlencoded"),
                "{c:?}"
            );
        }
        let (status, answer) = c.answer.clone().unwrap();
        assert_eq!((status, answer.trim()), (200, "ACK/Jasmin"), "{c:?}");
    }
    let stats = stored(&s).await;
    assert_eq!(
        (stats.observations, stats.numbers),
        (4, 4),
        "one observation per reported message, level 1 and the retry adding none: {stats:?}"
    );
    assert!(profile(&s, never_reported).await.is_none());

    STORY.assert_moved(&s).await;
    s.stop().await;
}
