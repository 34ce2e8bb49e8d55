//! An SMSC stand-in for the gateway tests: a small SMPP 3.4 server that real gateways
//! (Kannel's bearerbox, Jasmin) bind to as ESMEs. It answers binds, `enquire_link`,
//! `submit_sm` and `unbind`, records every message it was given, and for each message that
//! asked for a receipt (`registered_delivery`) sends the `deliver_sm` receipt the test chose
//! for its destination: `stat`/`err` in the SMPP 3.4 Appendix B text, with the
//! `receipted_message_id` and `message_state` TLVs (§5.3.2.12, §5.3.2.35) that gateways match
//! reports by.
//!
//! PDU layouts: SMPP 3.4 §4 (bind §4.1, submit_sm §4.4, deliver_sm §4.6, enquire_link §4.11).
//! This is a test peer: it accepts any credentials and keeps everything in memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const BIND_RECEIVER: u32 = 0x0000_0001;
const BIND_TRANSMITTER: u32 = 0x0000_0002;
const SUBMIT_SM: u32 = 0x0000_0004;
const DELIVER_SM: u32 = 0x0000_0005;
const UNBIND: u32 = 0x0000_0006;
const BIND_TRANSCEIVER: u32 = 0x0000_0009;
const ENQUIRE_LINK: u32 = 0x0000_0015;
const GENERIC_NACK: u32 = 0x8000_0000;
const RESP: u32 = 0x8000_0000;
const ESME_RINVCMDID: u32 = 0x0000_0003;
const TLV_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
const TLV_MESSAGE_STATE: u16 = 0x0427;

/// The receipt the SMSC sends for a message: `stat` and `err` as they appear in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `DELIVRD`, `UNDELIV`, `EXPIRED`, …
    pub stat: String,
    /// Three digits, as SMSCs write the network error (`001` unknown subscriber on MAP).
    pub err: String,
}

impl Receipt {
    pub fn new(stat: &str, err: &str) -> Receipt {
        Receipt {
            stat: stat.to_owned(),
            err: err.to_owned(),
        }
    }

    /// The `message_state` value of the stat (SMPP 3.4 §5.2.28).
    fn message_state(&self) -> u8 {
        match self.stat.as_str() {
            "ENROUTE" => 1,
            "DELIVRD" => 2,
            "EXPIRED" => 3,
            "DELETED" => 4,
            "UNDELIV" => 5,
            "ACCEPTD" => 6,
            "REJECTD" => 8,
            _ => 7,
        }
    }
}

/// Which receipt each destination gets (`None`: the message is accepted and never reported).
pub type Rule = Arc<dyn Fn(&str) -> Option<Receipt> + Send + Sync>;

/// One `submit_sm` the SMSC accepted.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The `system_id` of the bind it came over.
    pub system_id: String,
    pub source: String,
    pub destination: String,
    pub text: Vec<u8>,
    pub registered_delivery: u8,
    /// The id the SMSC answered with.
    pub message_id: String,
    /// The receipt sent for it, if any.
    pub receipt: Option<Receipt>,
}

/// One bind the SMSC answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// `transceiver`, `transmitter` or `receiver`.
    pub kind: &'static str,
    pub system_id: String,
    pub password: String,
}

#[derive(Default)]
struct State {
    binds: Vec<Bind>,
    submitted: Vec<Submitted>,
    /// Writers of the sessions that take `deliver_sm` (receivers and transceivers).
    receivers: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
}

/// A running SMSC stand-in; stops when dropped.
pub struct Smsc {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for Smsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smsc").field("addr", &self.addr).finish()
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Smsc {
    /// Listens on 127.0.0.1 (a free port) and answers every destination with `rule`.
    pub async fn start(rule: Rule) -> Smsc {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        // Ids differ from run to run: a gateway may remember a previous run's ids (Jasmin
        // keeps `queue-msgid:<id>` in Redis for a day).
        let first = chrono::Utc::now().timestamp_millis().unsigned_abs() % 1_000_000_000 * 10;
        let ids = Arc::new(AtomicU64::new(first));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            let mut session = 0u64;
            while let Ok((stream, _)) = listener.accept().await {
                session += 1;
                tokio::spawn(serve(
                    stream,
                    session,
                    shared.clone(),
                    rule.clone(),
                    ids.clone(),
                ));
            }
        });
        Smsc {
            addr,
            state,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The binds answered so far.
    pub fn binds(&self) -> Vec<Bind> {
        self.state.lock().unwrap().binds.clone()
    }

    /// The messages accepted so far.
    pub fn submitted(&self) -> Vec<Submitted> {
        self.state.lock().unwrap().submitted.clone()
    }

    /// Whether a session that takes receipts is bound now.
    pub fn has_receiver(&self) -> bool {
        !self.state.lock().unwrap().receivers.is_empty()
    }
}

/// One PDU: command id, sequence number and body (the status of a request is always 0).
struct Pdu {
    id: u32,
    seq: u32,
    body: Vec<u8>,
}

fn encode(id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(body);
    out
}

async fn read_pdu(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Pdu> {
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).await.ok()?;
    let word = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().unwrap());
    let len = word(0) as usize;
    if !(16..=64 * 1024).contains(&len) {
        return None;
    }
    let mut body = vec![0u8; len - 16];
    stream.read_exact(&mut body).await.ok()?;
    Some(Pdu {
        id: word(4),
        seq: word(12),
        body,
    })
}

/// Reads the fields of a PDU body in order.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn cstr(&mut self) -> String {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        self.at += end + 1;
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let start = self.at.min(self.bytes.len());
        let end = (start + n).min(self.bytes.len());
        self.at = start + n;
        self.bytes[start..end].to_vec()
    }
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

async fn serve(
    stream: TcpStream,
    session: u64,
    state: Arc<Mutex<State>>,
    rule: Rule,
    ids: Arc<AtomicU64>,
) {
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let seq = Arc::new(AtomicU64::new(1));
    let mut system_id = String::new();
    while let Some(pdu) = read_pdu(&mut read).await {
        let mut f = Fields {
            bytes: &pdu.body,
            at: 0,
        };
        match pdu.id {
            BIND_RECEIVER | BIND_TRANSMITTER | BIND_TRANSCEIVER => {
                system_id = f.cstr();
                let password = f.cstr();
                let kind = match pdu.id {
                    BIND_RECEIVER => "receiver",
                    BIND_TRANSMITTER => "transmitter",
                    _ => "transceiver",
                };
                {
                    let mut s = state.lock().unwrap();
                    s.binds.push(Bind {
                        kind,
                        system_id: system_id.clone(),
                        password,
                    });
                    if pdu.id != BIND_TRANSMITTER {
                        s.receivers.insert(session, tx.clone());
                    }
                }
                let mut body = Vec::new();
                cstr(&mut body, "numcheck-smsc");
                let _ = tx.send(encode(pdu.id | RESP, 0, pdu.seq, &body));
            }
            ENQUIRE_LINK => {
                let _ = tx.send(encode(ENQUIRE_LINK | RESP, 0, pdu.seq, &[]));
            }
            UNBIND => {
                let _ = tx.send(encode(UNBIND | RESP, 0, pdu.seq, &[]));
                break;
            }
            SUBMIT_SM => {
                let _service_type = f.cstr();
                let (src_ton, src_npi) = (f.byte(), f.byte());
                let source = f.cstr();
                let (dst_ton, dst_npi) = (f.byte(), f.byte());
                let destination = f.cstr();
                let _esm_class = f.byte();
                let _protocol_id = f.byte();
                let _priority = f.byte();
                let _schedule = f.cstr();
                let _validity = f.cstr();
                let registered_delivery = f.byte();
                let _replace = f.byte();
                let _data_coding = f.byte();
                let _default_msg = f.byte();
                let sm_length = f.byte() as usize;
                let text = f.take(sm_length);
                let message_id = ids.fetch_add(1, Ordering::Relaxed).to_string();
                let mut body = Vec::new();
                cstr(&mut body, &message_id);
                let _ = tx.send(encode(SUBMIT_SM | RESP, 0, pdu.seq, &body));
                let receipt = (registered_delivery & 0x03 != 0)
                    .then(|| rule(&destination))
                    .flatten();
                state.lock().unwrap().submitted.push(Submitted {
                    system_id: system_id.clone(),
                    source: source.clone(),
                    destination: destination.clone(),
                    text: text.clone(),
                    registered_delivery,
                    message_id: message_id.clone(),
                    receipt: receipt.clone(),
                });
                if let Some(receipt) = receipt {
                    let report = Report {
                        message_id,
                        handset: (dst_ton, dst_npi, destination),
                        sender: (src_ton, src_npi, source),
                        text,
                        receipt,
                    };
                    let state = state.clone();
                    let seq = seq.clone();
                    let own = (session, tx.clone());
                    tokio::spawn(async move {
                        // After the submit_sm_resp, as a real SMSC's report comes later.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let sender = {
                            let s = state.lock().unwrap();
                            s.receivers
                                .get(&own.0)
                                .or_else(|| s.receivers.values().next())
                                .cloned()
                        };
                        if let Some(sender) = sender {
                            let n = seq.fetch_add(1, Ordering::Relaxed) as u32;
                            let _ = sender.send(report.pdu(n));
                        }
                    });
                }
            }
            id if id & RESP != 0 => {} // deliver_sm_resp, enquire_link_resp, …
            _ => {
                let _ = tx.send(encode(GENERIC_NACK, ESME_RINVCMDID, pdu.seq, &[]));
            }
        }
    }
    state.lock().unwrap().receivers.remove(&session);
    drop(tx);
    let _ = writer.await;
}

/// A delivery receipt for one message.
struct Report {
    message_id: String,
    handset: (u8, u8, String),
    sender: (u8, u8, String),
    text: Vec<u8>,
    receipt: Receipt,
}

impl Report {
    /// The `deliver_sm`: from the handset to the original sender, `esm_class` 0x04 (SMSC
    /// delivery receipt), the Appendix B text and the two TLVs.
    fn pdu(&self, seq: u32) -> Vec<u8> {
        let now = chrono::Utc::now().format("%y%m%d%H%M");
        let excerpt: String = String::from_utf8_lossy(&self.text)
            .chars()
            .take(20)
            .collect();
        let delivered = if self.receipt.stat == "DELIVRD" {
            "001"
        } else {
            "000"
        };
        let short_message = format!(
            "id:{} sub:001 dlvrd:{delivered} submit date:{now} done date:{now} stat:{} err:{} text:{excerpt}",
            self.message_id, self.receipt.stat, self.receipt.err
        );
        let mut body = Vec::new();
        cstr(&mut body, ""); // service_type
        body.extend_from_slice(&[self.handset.0, self.handset.1]);
        cstr(&mut body, &self.handset.2);
        body.extend_from_slice(&[self.sender.0, self.sender.1]);
        cstr(&mut body, &self.sender.2);
        body.extend_from_slice(&[0x04, 0, 0]); // esm_class, protocol_id, priority_flag
        cstr(&mut body, ""); // schedule_delivery_time
        cstr(&mut body, ""); // validity_period
        body.extend_from_slice(&[0, 0, 0, 0]); // registered_delivery, replace, data_coding, default id
        body.push(short_message.len() as u8);
        body.extend_from_slice(short_message.as_bytes());
        let mut id = self.message_id.as_bytes().to_vec();
        id.push(0);
        body.extend_from_slice(&TLV_RECEIPTED_MESSAGE_ID.to_be_bytes());
        body.extend_from_slice(&(id.len() as u16).to_be_bytes());
        body.extend_from_slice(&id);
        body.extend_from_slice(&TLV_MESSAGE_STATE.to_be_bytes());
        body.extend_from_slice(&1u16.to_be_bytes());
        body.push(self.receipt.message_state());
        encode(DELIVER_SM, 0, seq, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_submits_and_receipts_round_trip() {
        let smsc = Smsc::start(Arc::new(|to: &str| {
            (to == "14155550101").then(|| Receipt::new("UNDELIV", "001"))
        }))
        .await;
        let mut c = TcpStream::connect(smsc.addr()).await.unwrap();
        let mut bind = Vec::new();
        cstr(&mut bind, "esme");
        cstr(&mut bind, "pw");
        cstr(&mut bind, "");
        bind.extend_from_slice(&[0x34, 1, 1]);
        cstr(&mut bind, "");
        c.write_all(&encode(BIND_TRANSCEIVER, 0, 7, &bind))
            .await
            .unwrap();
        let resp = read_pdu(&mut c).await.unwrap();
        assert_eq!((resp.id, resp.seq), (BIND_TRANSCEIVER | RESP, 7));

        let mut submit = Vec::new();
        cstr(&mut submit, "");
        submit.extend_from_slice(&[1, 1]);
        cstr(&mut submit, "Brand");
        submit.extend_from_slice(&[1, 1]);
        cstr(&mut submit, "14155550101");
        submit.extend_from_slice(&[0, 0, 0]);
        cstr(&mut submit, "");
        cstr(&mut submit, "");
        submit.extend_from_slice(&[1, 0, 0, 0, 2]);
        submit.extend_from_slice(b"Hi");
        c.write_all(&encode(SUBMIT_SM, 0, 8, &submit))
            .await
            .unwrap();
        let resp = read_pdu(&mut c).await.unwrap();
        assert_eq!(resp.id, SUBMIT_SM | RESP);
        let id = Fields {
            bytes: &resp.body,
            at: 0,
        }
        .cstr();
        let report = read_pdu(&mut c).await.unwrap();
        assert_eq!(report.id, DELIVER_SM);
        let text = String::from_utf8_lossy(&report.body).into_owned();
        assert!(
            text.contains(&format!("id:{id} "))
                && text.contains("stat:UNDELIV err:001")
                && text.contains("14155550101"),
            "{text:?}"
        );
        let sent = smsc.submitted();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].source.as_str(), sent[0].destination.as_str()),
            ("Brand", "14155550101")
        );
        assert_eq!(smsc.binds()[0].system_id, "esme");
    }
}
