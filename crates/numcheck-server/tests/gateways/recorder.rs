//! A recording front for numcheck's webhook: the gateway's `dlr-url` points here, every
//! request is kept as the gateway sent it (method, target, body) and passed on to numcheck,
//! and numcheck's answer is kept beside it. It can also drop a request's connection after
//! numcheck answered, without replying, the way a network fault would, so that the gateway
//! retries a callback numcheck already stored. Requests to `/probe` are kept and answered
//! `200` without reaching numcheck.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request the gateway made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub body: String,
    /// numcheck's status and body (none for `/probe`).
    pub answer: Option<(u16, String)>,
    /// The connection was dropped instead of answered.
    pub dropped: bool,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// How many of the next forwarded requests lose their answer.
    drop_next: usize,
}

pub struct Recorder {
    pub base: String,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Recorder {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let upstream = upstream.to_owned();
        let accept = tokio::spawn(async move {
            let http = reqwest::Client::new();
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(
                    stream,
                    shared.clone(),
                    http.clone(),
                    upstream.clone(),
                ));
            }
        });
        Recorder {
            base,
            state,
            accept,
        }
    }

    /// The next `n` forwarded requests reach numcheck but their connection is then closed
    /// without an answer.
    pub fn drop_next(&self, n: usize) {
        self.state.lock().unwrap().drop_next = n;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

async fn handle(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
    upstream: String,
) {
    let Some((method, target, headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let content_type = header("content-type");
    let mut call = Call {
        method: method.clone(),
        target: target.clone(),
        content_type: content_type.clone(),
        user_agent: header("user-agent"),
        body: String::from_utf8_lossy(&body).into_owned(),
        answer: None,
        dropped: false,
    };
    let (status, answer) = if target.starts_with("/probe") {
        (200, "ok".to_owned())
    } else {
        let mut req = http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{upstream}{target}"),
        );
        if let Some(ct) = &content_type {
            req = req.header("Content-Type", ct);
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        call.answer = Some((status, text.clone()));
        let mut s = state.lock().unwrap();
        if s.drop_next > 0 {
            s.drop_next -= 1;
            call.dropped = true;
        }
        (status, text)
    };
    let dropped = call.dropped;
    state.lock().unwrap().calls.push(call);
    if dropped {
        // Closed without an answer: the gateway sees a failed request.
        return;
    }
    let reply = format!(
        "HTTP/1.1 {status} OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.x request: its line, headers and `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, target, headers, body))
}
