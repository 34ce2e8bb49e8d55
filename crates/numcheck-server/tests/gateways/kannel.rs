//! Kannel 1.4.5 (Debian's `kannel`): bearerbox and smsbox run the page's `kannel.conf`,
//! bind to the SMSC stand-in over SMPP, and smsbox fetches the page's `dlr-url` for every
//! report. The `dlr-url` goes through the recorder, so the test sees each callback as Kannel
//! made it and numcheck's answer to it.

use std::path::Path;
use std::process::Command;

use numcheck_testkit::Peer;
use numcheck_testkit::smsc::Smsc;
use numcheck_testkit::wait_for;

use crate::docs::{change, curl, snippet, value, with};
use crate::recorder::Recorder;
use crate::support::{
    Daemon, Story, field, free_port, numcheck, profile, stored, token, wait_for_bind,
};

/// Kannel's bearer box (Debian's `kannel`, 1.4.5 in bookworm).
const BEARERBOX: Peer = Peer {
    program: "bearerbox",
    env: None,
    install: "apt-get install kannel",
};

/// Kannel's SMS box, from the same package.
const SMSBOX: Peer = Peer {
    program: "smsbox",
    env: None,
    install: "apt-get install kannel",
};

/// A running Kannel: the two boxes on the page's configuration.
struct Kannel {
    sendsms: String,
    boxes: Vec<Daemon>,
}

impl Kannel {
    /// Writes the page's `kannel.conf` with the SMSC's address, free ports and `dir` for the
    /// logs, and starts bearerbox and smsbox on it.
    fn start(smsc: &Smsc, dir: &Path) -> Kannel {
        let (bearerbox, smsbox) = (BEARERBOX.locate(), SMSBOX.locate());
        let name = "kannel.conf";
        let mut conf = snippet(name);
        let (sendsms_port, box_port) = (free_port(), free_port());
        for (from, to) in [
            ("host = smsc.example.net", "host = 127.0.0.1".to_owned()),
            ("port = 2775", format!("port = {}", smsc.addr().port())),
            (
                "admin-port = 13000",
                format!("admin-port = {}", free_port()),
            ),
            ("smsbox-port = 13001", format!("smsbox-port = {box_port}")),
            (
                "sendsms-port = 13013",
                format!("sendsms-port = {sendsms_port}"),
            ),
        ] {
            conf = change(name, &conf, from, &to);
        }
        let logs = format!("\"{}/", dir.display());
        assert_eq!(conf.matches("\"/var/log/kannel/").count(), 3, "{conf}");
        conf = conf.replace("\"/var/log/kannel/", &logs);
        let path = dir.join(name);
        std::fs::write(&path, &conf).unwrap();

        // smsbox gives up at once when bearerbox does not take its connection yet.
        let boxes = [
            ("bearerbox", bearerbox, box_port),
            ("smsbox", smsbox, sendsms_port),
        ]
        .into_iter()
        .map(|(name, program, port)| {
            let mut command = Command::new(program);
            command.arg(&path);
            Daemon::spawn_listening(name, command, dir, port)
        })
        .collect();
        Kannel {
            sendsms: format!("http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms"),
            boxes,
        }
    }

    /// Everything the boxes printed.
    fn logs(&self) -> String {
        self.boxes
            .iter()
            .map(Daemon::tail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check(&mut self) {
        for b in &mut self.boxes {
            b.check();
        }
    }

    /// Sends one message to `to` with the page's `sendsms` request, its `dlr-url` pointed at
    /// `numcheck` (or replaced by `dlr_url`, for the probe), and `dlr-mask` changed when
    /// `mask` is given.
    async fn sendsms(
        &self,
        http: &reqwest::Client,
        to: &str,
        numcheck: &str,
        dlr_url: Option<&str>,
        mask: Option<&str>,
    ) {
        let name = "kannel sendsms";
        let (url, fields) = curl(name);
        assert_eq!(url, "http://127.0.0.1:13013/cgi-bin/sendsms");
        let page_url = value(&fields, "dlr-url");
        let own = change(name, page_url, "https://numcheck.example", numcheck);
        let fields = with(&fields, "to", to);
        let mut fields = with(&fields, "dlr-url", dlr_url.unwrap_or(&own));
        if let Some(mask) = mask {
            fields = with(&fields, "dlr-mask", mask);
        }
        let resp = http.get(&self.sendsms).query(&fields).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 202, "sendsms to {to}: {body}\n{}", self.logs());
    }
}

/// The last one is sent with `dlr-mask=31`.
const STORY: Story = Story {
    delivered: "+14155550101",
    unknown_subscriber: "+14155550102",
    absent: "+14155550103",
    never_reported: "+14155550104",
    delivered_too: &["+14155550106"],
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reports_move_verdicts_and_each_message_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let Story {
        delivered,
        unknown_subscriber,
        absent,
        never_reported,
        ..
    } = STORY;
    let intermediate = STORY.delivered_too[0];
    let probe = "+14155550105";
    // Kannel writes the numbers without their `+`, with TON international.
    let smsc = Smsc::start(STORY.rule(&[probe])).await;
    let s = numcheck().await;
    let front = Recorder::start(&s.base).await;
    let mut kannel = Kannel::start(&smsc, dir.path());
    wait_for_bind(&smsc, "bearerbox", || kannel.check()).await;
    STORY.assert_unknown_before(&s).await;

    // The first callback reaches numcheck but its answer is lost: smsbox sends it again.
    front.drop_next(1);
    for to in [delivered, unknown_subscriber, absent, never_reported] {
        kannel.sendsms(&s.http, to, &front.base, None, None).await;
    }
    // One more message whose report only shows what Kannel puts in %p and %P.
    let probe_url = format!("{}/probe?p=%p&P=%P&type=%d", front.base);
    kannel
        .sendsms(&s.http, probe, &front.base, Some(&probe_url), None)
        .await;

    let calls = wait_for("Kannel's callbacks, the retried one included")
        .until(|| {
            let calls = front.calls();
            let retried = calls.iter().filter(|c| !c.dropped).count() >= 4;
            let done = calls.iter().any(|c| c.dropped) && retried;
            let probed = calls.iter().any(|c| c.target.starts_with("/probe"));
            kannel.check();
            async move { (done && probed).then_some(calls) }
        })
        .await;

    for c in &calls {
        eprintln!(
            "{} {} {:?} -> {:?}",
            c.method, c.target, c.user_agent, c.answer
        );
    }
    // What Kannel put in the escapes: %p is the handset, %P the sender id.
    let p = calls
        .iter()
        .find(|c| c.target.starts_with("/probe"))
        .unwrap();
    assert_eq!(field(&p.target, "p").as_deref(), Some(probe), "{p:?}");
    let from = value(&curl("kannel sendsms").1, "from").to_owned();
    assert_eq!(field(&p.target, "P"), Some(from), "{p:?}");
    assert_eq!(field(&p.target, "type").as_deref(), Some("1"), "{p:?}");

    let hooks: Vec<_> = calls
        .iter()
        .filter(|c| c.target.starts_with("/v1/webhooks/kannel/smsc-eu-1?"))
        .collect();
    for c in &hooks {
        assert_eq!(c.method, "GET", "{c:?}");
        assert!(
            c.user_agent
                .as_deref()
                .unwrap_or_default()
                .starts_with("Kannel"),
            "smsbox makes the call: {c:?}"
        );
        assert_eq!(field(&c.target, "token"), Some(token("smsc-eu-1")));
        let (status, body) = c.answer.clone().unwrap();
        assert_eq!(status, 200, "{c:?}");
        let to = field(&c.target, "to").unwrap();
        assert!(
            [delivered, unknown_subscriber, absent].contains(&to.as_str()),
            "{c:?}"
        );
        let sent = smsc
            .submitted()
            .into_iter()
            .find(|m| format!("+{}", m.destination) == to)
            .unwrap();
        assert_eq!(field(&c.target, "id"), Some(sent.message_id.clone()));
        assert!(body.contains("\"rejected\":0"), "{body}");
    }
    // The dropped callback came again, and numcheck counted it once.
    let dropped = hooks.iter().find(|c| c.dropped).unwrap();
    let again: Vec<_> = hooks
        .iter()
        .filter(|c| c.target == dropped.target && !c.dropped)
        .collect();
    assert!(!again.is_empty(), "smsbox retried: {hooks:#?}");
    for c in again {
        let (_, body) = c.answer.clone().unwrap();
        assert!(
            body.contains("\"inserted\":0") && body.contains("\"duplicates\":1"),
            "{body}"
        );
    }
    // dlr-mask=31 (the page's "works too"): the intermediate report (8, delivered to the
    // SMSC) comes first and is not final; the final one counts.
    kannel
        .sendsms(&s.http, intermediate, &front.base, None, Some("31"))
        .await;
    let late = wait_for("the reports of the dlr-mask=31 message")
        .until(|| {
            kannel.check();
            let mine: Vec<_> = front
                .calls()
                .into_iter()
                .filter(|c| field(&c.target, "to").as_deref() == Some(intermediate))
                .collect();
            let done = mine
                .iter()
                .any(|c| field(&c.target, "type").as_deref() == Some("1"));
            async move { done.then_some(mine) }
        })
        .await;
    let answer = |dlr_type: &str| {
        let c = late
            .iter()
            .find(|c| field(&c.target, "type").as_deref() == Some(dlr_type))
            .unwrap_or_else(|| panic!("no type {dlr_type} report: {late:#?}"));
        c.answer.clone().unwrap().1
    };
    assert!(answer("8").contains("\"not_final\":1"), "{late:#?}");
    assert!(answer("1").contains("\"inserted\":1"), "{late:#?}");

    let stats = stored(&s).await;
    assert_eq!(
        (stats.observations, stats.numbers),
        (4, 4),
        "one observation per reported message: {stats:?}"
    );
    assert!(profile(&s, never_reported).await.is_none());

    // bearerbox's access log holds the same reports: imported, the three numcheck was
    // called for are already there (the intermediate one not final), and the probe's (its
    // callback went elsewhere) is new.
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let resp = s
        .http
        .post(format!(
            "{}/v1/evidence?format=kannel&source=smsc-eu-1",
            s.base
        ))
        .header("X-API-Key", &s.admin_key)
        .header("Content-Type", "text/plain")
        .body(log.clone())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let report: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{report}\n{log}");
    assert_eq!(
        (
            report["inserted"].as_i64(),
            report["duplicates"].as_i64(),
            report["not_final"].as_i64()
        ),
        (Some(1), Some(4), Some(1)),
        "{report}\n{log}"
    );
    assert_eq!(stored(&s).await.observations, 5);

    STORY.assert_moved(&s).await;
    s.stop().await;
}
