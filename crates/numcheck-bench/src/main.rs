//! Load generators for the benchmark: `numcheck-bench poll` keeps N clients polling
//! `POST /v1/gettasks` on loopback for a fixed time and prints latency percentiles. Figures
//! only; it asserts nothing.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "numcheck-bench", about = "numcheck benchmark load generators")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes an upload of `lines` lines: five countries, mixed formats, 5% garbage, 10%
    /// duplicates; numbers drawn from a pool twice the evidence set, so about half have
    /// evidence. Deterministic.
    GenUpload {
        #[arg(long)]
        lines: u64,
        #[arg(long)]
        profiles: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Writes `profiles` observations, one per pool number, sorted by number, as evidence CSV.
    GenEvidence {
        #[arg(long)]
        profiles: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Concurrent pollers of one task for a fixed time (bounded: stops by itself).
    Poll {
        /// Base URL of the server, e.g. http://127.0.0.1:8080 (loopback only).
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        task: String,
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Pause of each poller between its requests (0: back to back).
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::GenUpload {
            lines,
            profiles,
            out,
        } => gen_upload(lines, profiles, &out),
        Command::GenEvidence { profiles, out } => gen_evidence(profiles, &out),
        Command::Poll {
            url,
            key,
            task,
            concurrency,
            seconds,
            interval_ms,
        } => poll(&url, &key, &task, concurrency, seconds, interval_ms).await,
    }
}

/// splitmix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The i-th pool number (E.164 digits): five countries in turn, valid mobile/geographic
/// ranges. Evidence covers the first `profiles` pool numbers.
fn pool(i: u64) -> u64 {
    let k = i / 5;
    match i % 5 {
        0 => 4_915_100_000_000 + k, // DE mobile +49 151
        1 => 12_122_000_000 + k,    // US +1 212 2xx xxxx
        2 => 447_400_000_000 + k,   // GB mobile +44 74
        3 => 33_600_000_000 + k,    // FR mobile +33 6
        _ => 919_800_000_000 + k,   // IN mobile +91 98
    }
}

/// One line in one of the formats people send.
fn format_line(n: u64, style: u64) -> String {
    let d = n.to_string();
    match style % 6 {
        0 | 1 => format!("+{d}"),
        2 => {
            let (cc, rest) = d.split_at(if d.starts_with('1') { 1 } else { 2 });
            format!("+{cc} {} {}", &rest[..3], &rest[3..])
        }
        3 => format!("00{d}"),
        4 => {
            let (cc, rest) = d.split_at(if d.starts_with('1') { 1 } else { 2 });
            format!("(+{cc}) {}-{}", &rest[..3], &rest[3..])
        }
        _ => format!("\"+{d}\""),
    }
}

fn gen_upload(lines: u64, profiles: u64, out: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    const GARBAGE: &[&str] = &["not a number", "n/a", "---", "+999 123", "call me", "#REF!"];
    let mut rng = Rng(42);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut recent: Vec<u64> = Vec::with_capacity(4096);
    for _ in 0..lines {
        let roll = rng.below(100);
        if roll < 5 {
            writeln!(w, "{}", GARBAGE[rng.below(GARBAGE.len() as u64) as usize])?;
            continue;
        }
        let n = if roll < 15 && !recent.is_empty() {
            recent[rng.below(recent.len() as u64) as usize]
        } else {
            pool(rng.below(profiles.max(1) * 2))
        };
        if recent.len() < 4096 {
            recent.push(n);
        } else {
            let slot = rng.below(4096) as usize;
            recent[slot] = n;
        }
        writeln!(w, "{}", format_line(n, rng.next()))?;
    }
    w.flush()?;
    Ok(())
}

fn gen_evidence(profiles: u64, out: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    const DAY: u64 = 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut numbers: Vec<u64> = (0..profiles).map(pool).collect();
    numbers.sort_unstable();
    let mut rng = Rng(7);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    writeln!(w, "number,observed_at,source,kind,raw_code,message_id")?;
    const EVENTS: &[(&str, &str)] = &[
        ("sms_dlr", "DELIVRD"),
        ("sms_dlr", "DELIVRD"),
        ("call", "ANSWER"),
        ("sms_dlr", "EXPIRED"),
        ("hlr", "ABSENT"),
        ("call", "404"),
        ("app_event", "login"),
    ];
    for (i, n) in numbers.iter().enumerate() {
        let (kind, code) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
        let at = now - rng.below(300 * DAY) - DAY;
        writeln!(w, "+{n},{at},bench-src,{kind},{code},b{i}")?;
    }
    w.flush()?;
    Ok(())
}

async fn poll(
    url: &str,
    key: &str,
    task: &str,
    concurrency: usize,
    seconds: u64,
    interval_ms: u64,
) -> anyhow::Result<()> {
    let host = reqwest::Url::parse(url)?
        .host_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        host == "127.0.0.1" || host == "localhost" || host == "[::1]",
        "load tests only target loopback"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let endpoint = format!("{url}/v1/gettasks");
    let mut handles = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        // Pollers start spread over one interval, as independent clients would.
        let offset = Duration::from_millis(interval_ms * i as u64 / concurrency.max(1) as u64);
        let (client, endpoint, key, task) = (
            client.clone(),
            endpoint.clone(),
            key.to_owned(),
            task.to_owned(),
        );
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut last_status = String::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let resp = client
                    .post(&endpoint)
                    .header("X-API-Key", &key)
                    .form(&[("task_id", &task)])
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        latencies.push(t0.elapsed());
                        if let Some(s) = body["status"].as_str() {
                            last_status = s.to_owned();
                        }
                    }
                    _ => errors += 1,
                }
                if interval_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
                }
            }
            (latencies, errors, last_status)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for h in handles {
        let (l, e, s) = h.await.context("poller panicked")?;
        all.extend(l);
        errors += e;
        *statuses.entry(s).or_default() += 1;
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i].as_secs_f64() * 1000.0
    };
    println!(
        "{{\"requests\": {}, \"errors\": {errors}, \"per_second\": {:.0}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}, \"concurrency\": {concurrency}, \"seconds\": {seconds}, \"last_status\": {:?}}}",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        statuses,
    );
    Ok(())
}
