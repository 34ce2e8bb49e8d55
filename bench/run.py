#!/usr/bin/env python3
"""numcheck's benchmark: one command, deterministic data, figures not pass/fail.

    cargo build --release -p numcheck -p numcheck-bench && \
      cargo build --release -p numcheck-core --example plan_bench && python3 bench/run.py [--quick]

Needs Python `phonenumbers` (pip install phonenumbers==9.0.42) for the reference run.
Measures, on this machine:
  1. numbering plan throughput on one core and agreement with libphonenumber (bench/plan_*.py)
  2. evidence ingest of N profiles into a fresh embedded store (rows/s, peak RSS)
  3. end to end: HTTP upload of the upload file → exported, against that store, and the same
     classification by a plain Python reference (bench/reference.py) → ratio, verdict agreement
  4. gettasks latency with 200 concurrent pollers on loopback while a large task runs
  5. peak server RSS during a big upload
Writes the table to stdout and the raw figures to bench/results.json.
"""
import argparse, io, json, os, shutil, subprocess, sys, tempfile, time, urllib.request, zipfile

import benchserver

ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true", help="small data sets (about a minute)")
ap.add_argument("--lines", type=int, help="upload lines (default 1,000,000; quick 200,000)")
ap.add_argument("--profiles", type=int, help="evidence profiles (default 10,000,000; quick 1,000,000)")
ap.add_argument("--big-lines", type=int, help="big upload for memory (default 10,000,000; quick 2,000,000)")
ap.add_argument("--skip-reference", action="store_true")
ap.add_argument("--skip-plan", action="store_true")
ap.add_argument("--keep", action="store_true", help="keep the work folder")
args = ap.parse_args()
lines = args.lines or (200_000 if args.quick else 1_000_000)
profiles = args.profiles or (1_000_000 if args.quick else 10_000_000)
big_lines = args.big_lines or (2_000_000 if args.quick else 10_000_000)

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
numcheck = os.path.join(root, "target/release/numcheck")
bench = os.path.join(root, "target/release/numcheck-bench")
for b in (numcheck, bench):
    if not os.path.exists(b):
        sys.exit(f"missing {b}: run cargo build --release -p numcheck -p numcheck-bench")
work = tempfile.mkdtemp(prefix="numcheck-bench-")
data = os.path.join(work, "data")
results = {"lines": lines, "profiles": profiles, "big_lines": big_lines, "machine": os.uname().nodename, "cores": os.cpu_count()}
table = []


def run(cmd, **kw):
    """Runs a command; returns (seconds, peak RSS MiB of that child, stdout)."""
    t0 = time.perf_counter()
    out_f, err_f = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True, **kw)
    # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would mix all children).
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t0
    rss = usage.ru_maxrss / 1024
    out_f.seek(0); err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {err[-2000:]}")
    return dt, rss, out


def row(what, value, unit, note=""):
    table.append((what, value, unit, note))
    print(f"  {what:<52} {value:>14} {unit:<12} {note}", flush=True)


def fmt(n):
    return f"{n:,.0f}"


print(f"work folder {work}")
# --- data sets ---------------------------------------------------------------------------
upload = os.path.join(work, "upload.txt")
big = os.path.join(work, "big.txt")
evidence = os.path.join(work, "evidence.csv")
run([bench, "gen-upload", "--lines", str(lines), "--profiles", str(profiles), "--out", upload])
run([bench, "gen-upload", "--lines", str(big_lines), "--profiles", str(profiles), "--out", big])
run([bench, "gen-evidence", "--profiles", str(profiles), "--out", evidence])

# --- 1. numbering plan ---------------------------------------------------------------------
plan_bin = os.path.join(root, "target/release/examples/plan_bench")
if not args.skip_plan and os.path.exists(plan_bin):
    import re
    corpus = os.path.join(work, "plan_corpus.tsv")
    answers = os.path.join(work, "plan_answers.tsv")
    plan_lines = 200_000 if args.quick else 1_000_000
    run([sys.executable, os.path.join(root, "bench", "plan_corpus.py"), "--lines", str(plan_lines), "--seed", "1", "--out", corpus])
    run([sys.executable, os.path.join(root, "bench", "plan_reference.py"), corpus, "--out", answers])
    _, _, out = run([plan_bin, corpus, answers])
    num = lambda pat: float(re.search(pat, out).group(1).replace(",", ""))
    plan = {
        "lines": plan_lines,
        "numbers_per_second": num(r"check_line \(fast path\):\s+([\d.]+)"),
        "baseline_per_second": num(r"check_line_reference \(rlibphonenumber\):\s+([\d.]+)"),
        "compared": int(num(r"agreement with libphonenumber on (\d+) lines")),
        "agreement_percent": num(r"fast path \(check_line\):\s+\d+ \(([\d.]+)%\)"),
        "fallback_percent": num(r"fallbacks to rlibphonenumber \(([\d.]+)%\)"),
        "output": out,
    }
    results["plan"] = plan
    row(f"numbering plan, one core, {fmt(plan_lines)}-line corpus", fmt(plan["numbers_per_second"]), "numbers/s",
        f"rlibphonenumber path {fmt(plan['baseline_per_second'])}/s; fallback {plan['fallback_percent']:.4f}%")
    row("agreement with libphonenumber 9.0.42 (phonenumbers)", f"{plan['agreement_percent']:.4f}", "%", f"{fmt(plan['compared'])} lines compared")
elif not args.skip_plan:
    row("numbering plan", "n/a", "", "build it: cargo build --release -p numcheck-core --example plan_bench")

# --- 2. ingest -------------------------------------------------------------------------------
dt, rss, out = run([numcheck, "evidence", "import", evidence, "--data-dir", data], env=dict(os.environ, NUMCHECK_LOG="warn"))
results["ingest"] = {"rows": profiles, "seconds": dt, "peak_rss_mib": rss, "output": out.strip()}
row(f"evidence ingest, {fmt(profiles)} rows (CLI, sorted)", fmt(profiles / dt), "rows/s", f"{dt:.1f} s, peak RSS {rss:.0f} MiB")

# --- server ----------------------------------------------------------------------------------
srv, base, key = benchserver.start(numcheck, data)


# The server builds its evidence presence filter in the background after start; measure once it
# is ready (until then every number is looked up; the figure without it is in BENCHMARKS.md).
t_filter = time.perf_counter()
while json.loads(urllib.request.urlopen(base + "/readyz").read()).get("evidence_filter") != "ready":
    time.sleep(0.1)
results["filter_build_seconds"] = time.perf_counter() - t_filter
row(f"evidence presence filter built at start, {fmt(profiles)} profiles", f"{results['filter_build_seconds']:.1f}", "s")


def vm_hwm():
    return benchserver.peak_rss_kib(srv.pid) / 1024


def create(path):
    out = subprocess.run(["curl", "-sS", base + "/v1/tasks", "-H", f"X-API-Key: {key}", "-F", f"file=@{path}",
                          "-F", "task_type=active_check"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def poll(tid):
    req = urllib.request.Request(base + "/v1/gettasks", data=f"task_id={tid}".encode(), headers={"X-API-Key": key})
    return json.loads(urllib.request.urlopen(req).read())


def wait(tid):
    while True:
        v = poll(tid)
        if v["status"] in ("exported", "failed"):
            return v
        time.sleep(0.02)


# --- 3. end to end -------------------------------------------------------------------------------
t0 = time.perf_counter()
task = create(upload)
v = wait(task["task_id"])
e2e = time.perf_counter() - t0
zbytes = urllib.request.urlopen(v["result_url"]).read()
e2e_all = time.perf_counter() - t0
per_s = v["total"] / e2e
results["e2e"] = {"total": v["total"], "success": v["success"], "failure": v["failure"], "seconds": e2e, "seconds_with_download": e2e_all}
row(f"end to end, {fmt(lines)} lines, {fmt(profiles)} profiles", fmt(per_s), "numbers/s", f"upload→exported {e2e:.2f} s ({e2e_all:.2f} s with download)")

if not args.skip_reference:
    ref_out = os.path.join(work, "reference.csv")
    dt, _, out = run([sys.executable, os.path.join(root, "bench", "reference.py"), upload, os.path.join(data, "numcheck.db"), ref_out])
    ref = json.loads(out.strip().splitlines()[-1])
    results["reference"] = ref
    ratio = per_s / ref["per_second"]
    row("Python reference (phonenumbers + sqlite3)", fmt(ref["per_second"]), "numbers/s", f"{ref['seconds']:.1f} s")
    row("ratio numcheck / reference", f"{ratio:.1f}", "x")
    # Verdict agreement, row by row.
    ours = {}
    for r in zipfile.ZipFile(io.BytesIO(zbytes)).read(f"{task['task_id']}.csv").decode().splitlines()[1:]:
        f = r.split(",")
        ours[f[-1]] = f[:3]
    theirs = {}
    with open(ref_out) as fh:
        for r in fh.read().splitlines()[1:]:
            f = r.split(",")
            theirs[f[-1]] = f[:3]
    same = sum(1 for line, v in ours.items() if theirs.get(line) == v)
    results["verdict_agreement"] = {"rows_ours": len(ours), "rows_reference": len(theirs), "same": same}
    row("verdicts equal to the reference", f"{100.0 * same / max(len(ours), 1):.3f}", "%", f"{fmt(same)} of {fmt(len(ours))} rows ({fmt(len(theirs))} in reference)")

# --- 4. polling under load ---------------------------------------------------------------------------
for name, interval_ms, what in [("poll", "100", "every 100 ms, task running"),
                                 ("poll_saturated", "0", "back to back (saturation)")]:
    task2 = create(upload)
    _, _, out = run([bench, "poll", "--url", base, "--key", key, "--task", task2["task_id"], "--concurrency", "200", "--seconds", "8", "--interval-ms", interval_ms])
    p = json.loads(out.strip().splitlines()[-1])
    results[name] = p
    row(f"gettasks p99, 200 pollers {what}", f"{p['p99_ms']:.2f}", "ms", f"p50 {p['p50_ms']:.2f} ms, {fmt(p['per_second'])} req/s, {p['errors']} errors")
    wait(task2["task_id"])

# --- 5. memory on a big upload -----------------------------------------------------------------------
before = vm_hwm()
t0 = time.perf_counter()
task3 = create(big)
v3 = wait(task3["task_id"])
dt = time.perf_counter() - t0
after = vm_hwm()
results["big"] = {"lines": big_lines, "seconds": dt, "rss_before_mib": before, "rss_after_mib": after, "status": v3["status"]}
row(f"big upload, {fmt(big_lines)} lines → exported", fmt(v3["total"] / dt), "numbers/s", f"{dt:.1f} s")
row("server peak RSS over the whole run", f"{after:.0f}", "MiB", f"{before:.0f} MiB before the big upload")

srv.terminate(); srv.wait(timeout=60)
with open(os.path.join(root, "bench", "results.json"), "w") as f:
    json.dump(results, f, indent=2)
if not args.keep:
    shutil.rmtree(work, ignore_errors=True)
print("raw figures: bench/results.json")
