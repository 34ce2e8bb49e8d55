#!/usr/bin/env python3
"""Small-task latency: create → `exported` over HTTP, p50 of N runs, on an idle machine or
beside CPU-bound processes of normal priority (`--busy 2`: what a shared host looks like).

Polls every 5 ms over one keep-alive connection; per-key limits are off. Figures, not pass/fail.

    cargo build --release -p numcheck -p numcheck-bench
    python3 bench/latency.py [--busy 2] [--runs 15] [--sizes 1,5000] [--small-task-lines 0]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, uuid, http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchserver  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--binary", default="target/release/numcheck")
ap.add_argument("--bench", default="target/release/numcheck-bench")
ap.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside it")
ap.add_argument("--runs", type=int, default=15)
ap.add_argument("--sizes", default="1,5000")
ap.add_argument("--small-task-lines", type=int, help="worker.small_task_lines (0: every task queues)")
ap.add_argument("--postgres", metavar="URL",
                help="a PostgreSQL server (postgres://postgres@127.0.0.1:5432): a fresh database "
                     "on it is made (createdb) and dropped")
args = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="numcheck-latency-")
sizes = [int(s) for s in args.sizes.split(",")]
upload = os.path.join(tmp, "numbers.txt")
subprocess.run([args.bench, "gen-upload", "--lines", str(max(sizes)), "--profiles", "1000", "--out", upload],
               check=True, stdout=subprocess.DEVNULL)
lines = open(upload, "rb").read().split(b"\n")
env = {}
if args.small_task_lines is not None:
    env["NUMCHECK_WORKER__SMALL_TASK_LINES"] = str(args.small_task_lines)
db = None
if args.postgres:
    db = "numcheck_latency_" + uuid.uuid4().hex[:8]
    subprocess.run(["psql", args.postgres.rstrip("/") + "/postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
    env["NUMCHECK_DATABASE_URL"] = args.postgres.rstrip("/") + "/" + db
srv, base, key = benchserver.start(args.binary, os.path.join(tmp, "data"), env)
host, port = base.removeprefix("http://").split(":")
conn = http.client.HTTPConnection(host, int(port))


def post(path, body, content_type):
    conn.request("POST", path, body=body, headers={"X-API-Key": key, "Content-Type": content_type})
    return json.loads(conn.getresponse().read())


def form(content):
    b = "----numcheck" + uuid.uuid4().hex
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"task_type\"\r\n\r\nactive_check\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    return head + content + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(args.busy)]
try:
    time.sleep(0.5)
    for n in sizes:
        content = b"\n".join(lines[:n]) + b"\n"
        times = []
        for _ in range(args.runs):
            body, content_type = form(content)
            t0 = time.perf_counter()
            task = post("/v1/tasks", body, content_type)["task_id"]
            while post("/v1/gettasks", json.dumps({"task_id": task}), "application/json")["status"] not in ("exported", "failed"):
                time.sleep(0.005)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{n:>6} numbers, {'PostgreSQL' if db else 'SQLite'}, {args.busy} busy processes: p50 {statistics.median(times):.0f} ms, "
              f"max {max(times):.0f} ms ({args.runs} runs)")
finally:
    for h in hogs:
        h.kill()
    benchserver.stop(srv, 30)
    if db:
        subprocess.run(["psql", args.postgres.rstrip("/") + "/postgres", "-qc", f"DROP DATABASE {db}"], check=False)
