#!/usr/bin/env python3
"""Scale-out figures: one PostgreSQL, one S3-compatible bucket (s3s-fs), an API node without
workers, and 1, 2, 3 `numcheck worker` processes of one worker each; the same upload to
`exported` each time. Also the evidence ingest rate into PostgreSQL (COPY).

    cargo build --release -p numcheck -p numcheck-bench && python3 bench/nodes.py [--lines N]

Needs: PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`), `psql`, and s3s-fs
(cargo install s3s-fs --version 0.14.1 --features binary --locked). Prints a table; figures,
not pass/fail.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchserver  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--lines", type=int, default=1_000_000)
ap.add_argument("--profiles", type=int, default=1_000_000)
ap.add_argument("--max-workers", type=int, default=3)
args = ap.parse_args()

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
numcheck = os.path.join(root, "target/release/numcheck")
bench = os.path.join(root, "target/release/numcheck-bench")
work = tempfile.mkdtemp(prefix="numcheck-nodes-")
admin = "postgres://postgres@127.0.0.1:5432/test"
db = f"numcheck_bench_{os.getpid()}"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def psql(url, sql):
    return subprocess.run(["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


s3s = shutil.which("s3s-fs") or os.path.expanduser("~/.cargo/bin/s3s-fs")
s3_port = free_port()
os.makedirs(os.path.join(work, "s3", "numcheck"))
s3 = subprocess.Popen([s3s, "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", "bench",
                       "--secret-key", "bench-secret", os.path.join(work, "s3")],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
psql(admin, f"CREATE DATABASE {db}")
url = f"postgres://postgres@127.0.0.1:5432/{db}"
env = dict(os.environ, NUMCHECK_LOG="warn", NUMCHECK_DATABASE_URL=url,
           NUMCHECK_BLOB_URL=f"s3://numcheck?endpoint=http://127.0.0.1:{s3_port}&region=us-east-1"
                             f"&allow_http=true&access_key_id=bench&secret_access_key=bench-secret")
procs = []
rows = []
try:
    upload = os.path.join(work, "upload.txt")
    evidence = os.path.join(work, "evidence.csv")
    subprocess.run([bench, "gen-upload", "--lines", str(args.lines), "--profiles", str(args.profiles),
                    "--out", upload], check=True)
    subprocess.run([bench, "gen-evidence", "--profiles", str(args.profiles), "--out", evidence], check=True)
    t0 = time.perf_counter()
    subprocess.run([numcheck, "evidence", "import", evidence, "--data-dir", os.path.join(work, "cli")],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    rows.append((f"evidence ingest into PostgreSQL, {args.profiles:,} rows (COPY)", f"{args.profiles / dt:,.0f} rows/s", f"{dt:.1f} s"))

    port = free_port()
    api = subprocess.Popen([numcheck, "serve", "--data-dir", os.path.join(work, "api"), "--listen",
                            f"127.0.0.1:{port}", "--workers", "0"], env=env, stdout=subprocess.PIPE, text=True)
    procs.append(api)
    key = benchserver.admin_key(api, "the API node")
    base = f"http://127.0.0.1:{port}"

    def run_task():
        out = subprocess.run(["curl", "-sS", base + "/v1/tasks", "-H", f"X-API-Key: {key}", "-F",
                              f"file=@{upload}", "-F", "task_type=active_check"],
                             capture_output=True, text=True, check=True).stdout
        tid = json.loads(out)["task_id"]
        while True:
            req = urllib.request.Request(base + "/v1/gettasks", data=f"task_id={tid}".encode(),
                                         headers={"X-API-Key": key})
            v = json.loads(urllib.request.urlopen(req).read())
            if v["status"] in ("exported", "failed"):
                return v
            time.sleep(0.05)

    for n in range(1, args.max_workers + 1):
        w = subprocess.Popen([numcheck, "worker", "--data-dir", os.path.join(work, f"w{n}"), "--workers", "1"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(w)
        time.sleep(1.0)
        t0 = time.perf_counter()
        v = run_task()
        dt = time.perf_counter() - t0
        rows.append((f"{args.lines:,} lines → exported, {n} worker process(es) × 1 worker",
                     f"{v['total'] / dt:,.0f} numbers/s", f"{dt:.2f} s, {v['status']}"))
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        benchserver.wait_or_kill(p, 30)
    s3.terminate()
    psql(admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    shutil.rmtree(work, ignore_errors=True)

for what, value, note in rows:
    print(f"  {what:<70} {value:>20}   {note}")
