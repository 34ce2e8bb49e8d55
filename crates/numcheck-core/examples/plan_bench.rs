//! Numbers per second of `NumberingPlan::check_line` on one core, against the
//! `rlibphonenumber` reference path, and agreement with libphonenumber's answers.
//!
//!     python3 bench/plan_corpus.py --lines 1000000 --out /tmp/plan_corpus.tsv
//!     python3 bench/plan_reference.py /tmp/plan_corpus.tsv --out /tmp/plan_answers.tsv
//!     cargo run --release -p numcheck-core --example plan_bench -- \
//!         /tmp/plan_corpus.tsv /tmp/plan_answers.tsv
//!
//! The answers file is optional; `--fast-only` (first argument) times the fast path alone, for
//! profiling. Lines are `REGION<TAB>TEXT` (answers:
//! `REGION<TAB>ANSWER<TAB>TEXT`, see `bench/plan_reference.py`). Prints figures; asserts
//! nothing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use numcheck_core::LineError;
use numcheck_core::plan::{Checked, NumberingPlan, RegionCode, fast_path_stats};

/// Which lines a timing keeps.
type Keep = fn(&Line<'_>) -> bool;

struct Line<'a> {
    region: Option<RegionCode>,
    text: &'a [u8],
}

fn records(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|&b| b == b'\n').filter(|_| !body.is_empty())
}

fn notation(result: &Result<Checked, LineError>) -> String {
    match result {
        Err(e) => format!("err:{}", e.code()),
        Ok(c) => format!(
            "ok:{}:{}:{}:{}",
            c.e164,
            if c.valid { "valid" } else { "invalid" },
            c.line_type.as_str(),
            c.region.map(|r| r.as_str()).unwrap_or_default()
        ),
    }
}

/// Best of `rounds` passes over `lines`, in numbers per second.
fn rate(
    lines: &[Line<'_>],
    rounds: usize,
    f: impl Fn(&[u8], Option<RegionCode>) -> Result<Checked, LineError>,
) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut sum = 0u64;
        for line in lines {
            if let Ok(c) = f(black_box(line.text), line.region) {
                sum = sum.wrapping_add(c.e164.as_u64() ^ u64::from(c.valid));
            }
        }
        black_box(sum);
        best = best.min(started.elapsed());
    }
    lines.len() as f64 / best.as_secs_f64()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let fast_only = args.first().is_some_and(|a| a == "--fast-only");
    if fast_only {
        args.remove(0);
    }
    let Some(corpus_path) = args.first() else {
        eprintln!("usage: plan_bench CORPUS [ANSWERS]");
        std::process::exit(2);
    };
    let data = std::fs::read(corpus_path).unwrap_or_else(|e| {
        eprintln!("cannot read {corpus_path}: {e}");
        std::process::exit(1)
    });
    let lines: Vec<Line<'_>> = records(&data)
        .map(|r| {
            let (region, text) = match r.iter().position(|&b| b == b'\t') {
                Some(i) => (&r[..i], &r[i + 1..]),
                None => (&r[..0], r),
            };
            let region = std::str::from_utf8(region)
                .ok()
                .and_then(|s| s.parse().ok());
            Line { region, text }
        })
        .collect();
    let plan = NumberingPlan;

    let started = Instant::now();
    plan.warm_up();
    println!(
        "compiled plan built in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    println!("{} lines in {corpus_path}", lines.len());

    // One pass to count fallbacks, then timed passes.
    let before = fast_path_stats();
    for line in &lines {
        black_box(plan.check_line(line.text, line.region).ok());
    }
    let after = fast_path_stats();
    let n = lines.len().max(1) as f64;
    println!(
        "fast path: {} lines through the general normaliser ({:.3}%), {} fallbacks to rlibphonenumber ({:.4}%)",
        after.slow_normaliser - before.slow_normaliser,
        100.0 * (after.slow_normaliser - before.slow_normaliser) as f64 / n,
        after.fallbacks - before.fallbacks,
        100.0 * (after.fallbacks - before.fallbacks) as f64 / n,
    );

    if fast_only {
        let fast = rate(&lines, 20, |t, r| plan.check_line(t, r));
        println!("check_line (fast path):        {:>12.0} numbers/s", fast);
        return;
    }
    // The reference path compiles its regexes lazily: warm it up too.
    for line in &lines {
        black_box(plan.check_line_reference(line.text, line.region).ok());
    }
    let fast = rate(&lines, 5, |t, r| plan.check_line(t, r));
    println!("check_line (fast path):        {:>12.0} numbers/s", fast);
    let reference = rate(&lines, 1, |t, r| plan.check_line_reference(t, r));
    println!(
        "check_line_reference (rlibphonenumber): {:>12.0} numbers/s",
        reference
    );
    println!("speed-up: {:.1}x", fast / reference);

    // By kind of line, for where the time goes.
    let kinds: [(&str, Keep); 4] = [
        ("`+`/00 international", |l| {
            let t = l.text.trim_ascii_start();
            t.starts_with(b"+") || t.starts_with(b"00")
        }),
        ("national, with region", |l| {
            let t = l.text.trim_ascii_start();
            l.region.is_some() && !t.starts_with(b"+") && !t.starts_with(b"00")
        }),
        ("national, no region", |l| {
            let t = l.text.trim_ascii_start();
            l.region.is_none() && !t.starts_with(b"+") && !t.starts_with(b"00")
        }),
        ("all", |_| true),
    ];
    for (name, keep) in kinds {
        let subset: Vec<Line<'_>> = lines
            .iter()
            .filter(|l| keep(l))
            .map(|l| Line {
                region: l.region,
                text: l.text,
            })
            .collect();
        if subset.is_empty() {
            continue;
        }
        println!(
            "  {name:<24} {:>8} lines  {:>12.0} numbers/s",
            subset.len(),
            rate(&subset, 3, |t, r| plan.check_line(t, r))
        );
    }

    let Some(answers_path) = args.get(1) else {
        return;
    };
    let answers = std::fs::read(answers_path).unwrap_or_else(|e| {
        eprintln!("cannot read {answers_path}: {e}");
        std::process::exit(1)
    });
    let expected: Vec<&str> = records(&answers)
        .map(|r| {
            let mut parts = r.splitn(3, |&b| b == b'\t');
            parts.next();
            std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("?")
        })
        .collect();
    if expected.len() != lines.len() {
        eprintln!(
            "{answers_path} has {} lines, the corpus {}",
            expected.len(),
            lines.len()
        );
        std::process::exit(1);
    }
    let mut compared = 0usize;
    let (mut fast_ok, mut reference_ok) = (0usize, 0usize);
    let mut shown = 0;
    for (line, want) in lines.iter().zip(&expected) {
        let (want, normaliser) = match want.strip_prefix("norm:") {
            Some(code) => (format!("err:{code}"), true),
            None => ((*want).to_owned(), false),
        };
        let got = notation(&plan.check_line(line.text, line.region));
        let reference = notation(&plan.check_line_reference(line.text, line.region));
        if !normaliser {
            compared += 1;
            fast_ok += usize::from(got == want);
            reference_ok += usize::from(reference == want);
        }
        if got != want && shown < 20 {
            shown += 1;
            println!(
                "DISAGREE region {:?} text {:?}: libphonenumber {want}, numcheck {got}",
                line.region.map(|r| r.as_str()),
                String::from_utf8_lossy(line.text)
            );
        }
    }
    let pct = |k: usize| 100.0 * k as f64 / compared.max(1) as f64;
    println!(
        "agreement with libphonenumber on {compared} lines it was asked about \
         ({} refused by our normaliser first):",
        lines.len() - compared
    );
    println!(
        "  fast path (check_line):           {fast_ok} ({:.4}%)",
        pct(fast_ok)
    );
    println!(
        "  rlibphonenumber (reference path): {reference_ok} ({:.4}%)",
        pct(reference_ok)
    );
}
