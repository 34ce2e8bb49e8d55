#!/usr/bin/env python3
"""Very large uploads (issue 9): a 10,000,000-line file and a 1 GiB file are handled or refused
per config, and the server's memory does not grow with the upload.

    cargo build --release -p numcheck && python3 bench/bigupload.py

Each case starts `numcheck serve` on a fresh data folder (bench/benchserver.py: no per-key
limits), streams one generated file with curl (`-F file=@…`, chunked from disk), samples the
server's VmRSS every 100 ms from the request's start until the task has ended (or the refusal
came back), and prints the answer, the timings and the peak RSS (VmHWM) against the idle RSS.

Cases (file contents: unique `+1 415 …` numbers, one per line, 13 bytes a line):
  ten_million        defaults; 10,000,000 lines (130 MB)    → 200, exported, exact counters
  lines_capped       limits.max_upload_lines = 5,000,000     → 413 too_many_lines
  gib_default        defaults (max_upload_bytes 256 MiB); 1 GiB → 413 file_too_large
  gib_accepted       max_upload_bytes 2 GiB, max_upload_lines 0 → 200, exported, exact counters

Exits 1 when an answer or a counter is not the expected one. Figures go to --out as JSON.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchserver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--numcheck", default=os.path.join(ROOT, "target/release/numcheck"))
ap.add_argument("--cases", default="ten_million,lines_capped,gib_default,gib_accepted")
ap.add_argument("--gib", type=float, default=1.0, help="size of the large file in GiB")
ap.add_argument("--work", default=None, help="folder for the files (default: a temp folder)")
ap.add_argument("--out", default=os.path.join(ROOT, "bench/bigupload-results.json"))
ap.add_argument("--task-timeout", type=int, default=1800)
args = ap.parse_args()

if not os.path.exists(args.numcheck):
    sys.exit(f"missing {args.numcheck}: run cargo build --release -p numcheck")
if shutil.which("curl") is None:
    sys.exit("curl not found")

LINE = 13  # "+1415" + 7 digits + "\n"


def make_file(path, lines):
    """`lines` distinct numbers +1 415 2xx xxxx … (NANP: the exchange must not start with 0/1)."""
    if os.path.exists(path) and os.path.getsize(path) == lines * LINE:
        return
    t = time.time()
    with open(path, "wb", buffering=1 << 22) as f:
        block = 100_000
        for start in range(0, lines, block):
            n = min(block, lines - start)
            # 8 digits after +1415 would be too many: 7 digits, exchange 200–999 → 8M per
            # area code, so the area code walks 415, 416, … (all valid-format NANP).
            out = []
            for i in range(start, start + n):
                area = 415 + i // 8_000_000
                rest = 2_000_000 + i % 8_000_000
                out.append(f"+1{area}{rest:07d}\n")
            f.write("".join(out).encode())
    print(f"  wrote {path}: {lines:,} lines, {os.path.getsize(path) / 2**20:,.0f} MiB in {time.time() - t:.0f} s", flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)


def post_json(base, key, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def run_case(name, file, lines, env, expect_status, expect_code=None):
    data = tempfile.mkdtemp(prefix=f"bigupload-{name}-")
    srv, base, key = benchserver.start(args.numcheck, data, env)
    try:
        time.sleep(0.5)
        idle = rss_kib(srv.pid)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(rss_kib(srv.pid))
                except OSError:
                    return
                time.sleep(0.1)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.time()
        p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", f"X-API-Key: {key}",
                            "-F", "task_type=active_check", "-F", f"file=@{file};type=text/plain",
                            base + "/v1/tasks"], capture_output=True, text=True)
        answered = time.time() - t0
        body, _, status = p.stdout.rpartition("\n")
        status = int(status or 0)
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"raw": body[:200], "curl": p.stderr.strip()[:200]}
        ok = status == expect_status
        result = {"case": name, "file_bytes": os.path.getsize(file), "lines": lines, "status": status,
                  "answer_s": round(answered, 2), "idle_rss_mib": round(idle / 1024, 1)}
        if expect_code:
            result["code"] = answer.get("error")
            ok = ok and answer.get("error") == expect_code
        if status == 200:
            tid = answer["task_id"]
            deadline = time.time() + args.task_timeout
            while True:
                v = post_json(base, key, "/v1/gettasks", {"task_id": tid})
                if v["status"] in ("exported", "failed", "cancelled") or time.time() > deadline:
                    break
                time.sleep(0.5)
            done = time.time() - t0
            result.update(task_status=v["status"], total=v.get("total"), success=v.get("success"),
                          failure=v.get("failure"), exported_s=round(done, 1),
                          numbers_per_s=round(lines / max(done - answered, 1e-9)))
            ok = ok and v["status"] == "exported" and v.get("total") == lines and v.get("success") == lines
        stop.set()
        th.join()
        result["peak_rss_mib"] = round(benchserver.peak_rss_kib(srv.pid) / 1024, 1)
        result["max_sampled_rss_mib"] = round(max(samples or [0]) / 1024, 1)
        result["ok"] = ok
        print(f"{'PASS' if ok else 'FAIL'}  {name}: " + ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("case", "ok")), flush=True)
        return result
    finally:
        benchserver.stop(srv, 30)
        shutil.rmtree(data, ignore_errors=True)


def main():
    work = args.work or tempfile.mkdtemp(prefix="bigupload-files-")
    os.makedirs(work, exist_ok=True)
    cases = set(args.cases.split(","))
    ten = os.path.join(work, "ten_million.txt")
    gib_lines = int(args.gib * 2**30) // LINE
    gib = os.path.join(work, "gib.txt")
    if cases & {"ten_million", "lines_capped"}:
        make_file(ten, 10_000_000)
    if cases & {"gib_default", "gib_accepted"}:
        make_file(gib, gib_lines)
    results = []
    if "ten_million" in cases:
        results.append(run_case("ten_million", ten, 10_000_000, {}, 200))
    if "lines_capped" in cases:
        results.append(run_case("lines_capped", ten, 10_000_000,
                                {"NUMCHECK_LIMITS__MAX_UPLOAD_LINES": "5000000"}, 413, "too_many_lines"))
    if "gib_default" in cases:
        results.append(run_case("gib_default", gib, gib_lines, {}, 413, "file_too_large"))
    if "gib_accepted" in cases:
        results.append(run_case("gib_accepted", gib, gib_lines,
                                {"NUMCHECK_MAX_UPLOAD_BYTES": str(2 * 2**30),
                                 "NUMCHECK_LIMITS__MAX_UPLOAD_LINES": "0"}, 200))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


main()
