#!/usr/bin/env python3
"""Crash safety of numcheck (issue 9): kill -9 the server at random moments while tasks are
created and processed and while evidence is posted, restart it on the same folder and port, and
check that nothing is lost, doubled or changed. Then the same folder on a full disk.

1. Reference run: a fresh data folder, an evidence import, a limited user, N task files
   (generated from --seed: valid numbers in several formats, duplicates, garbage, blank lines;
   sizes varied, many above the 2,000-line chunk) submitted and left alone until exported.
2. Crash run: the same, while a killer thread SIGKILLs the server --kills times at seeded random
   moments and restarts it; failed creates are retried with the same Idempotency-Key; evidence
   batches (NDJSON, unique message ids, numbers no task uses) are posted throughout, and some
   cut-off batches are posted again.
3. Checks (PASS/FAIL, non-zero exit on any FAIL): every task exported, counters, result files
   and charges equal to the reference, exactly N tasks, one charge per task, balance and held,
   no acknowledged evidence row lost or stored twice, PRAGMA integrity_check.
4. Full disk (root only): the data folder on a 40 MiB tmpfs; tasks are submitted until writes
   fail; the errors, the server's survival, and recovery after growing the tmpfs are checked.

Verdicts are computed as of each task's creation and evidence decays continuously, so the two
runs happen at different times. The evidence is therefore screened (with a copy of the default
policy in Python) to numbers whose verdict, reason and 3-decimal confidence cannot change within
12 hours of the script's start.

Usage: bench/crash.py [--numcheck target/debug/numcheck] [--tasks 50] [--lines 20000]
                      [--seed 9] [--kills 30] [--no-full-disk] [--keep]
"""
import argparse, collections, json, math, os, random, shutil, signal, socket, sqlite3, subprocess
import sys, tempfile, threading, time, urllib.error, urllib.request, zipfile, io

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--numcheck", default="target/debug/numcheck")
ap.add_argument("--tasks", type=int, default=50)
ap.add_argument("--lines", type=int, default=20000, help="largest task file, in lines")
ap.add_argument("--seed", type=int, default=9)
ap.add_argument("--kills", type=int, default=30)
ap.add_argument("--chunk-lines", type=int, default=2000)
ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed for each run")
ap.add_argument("--workdir", default=None, help="default: a fresh folder under /tmp")
ap.add_argument("--keep", action="store_true", help="keep the data folders")
ap.add_argument("--no-crash", action="store_true", help="skip the reference and crash runs")
ap.add_argument("--no-full-disk", action="store_true", help="skip the full-disk part")
ap.add_argument("--disk-mib", type=int, default=40)
ap.add_argument("--disk-lines", type=int, default=100000, help="lines per task file on the full disk")
args = ap.parse_args()

BINARY = os.path.abspath(args.numcheck)
T0 = int(time.time())
WINDOW_S = 12 * 3600
OPENING = 10_000_000
EVIDENCE_SOURCE = "crash-feed"
results = []  # (name, ok, detail)


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  — {detail}" if detail else ""), flush=True)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data: numbers, evidence, task files
# ---------------------------------------------------------------------------------------------

DAY = 86400
# The default policy (crates/numcheck-core/src/policy.rs), to screen evidence for stability.
W = {"strong_active": 3, "weak_active": 1, "weak_inactive": 1, "strong_inactive": 3, "neutral": 0}
HL = {"strong_active": 180, "weak_active": 90, "neutral": 30, "weak_inactive": 60, "strong_inactive": 365}


def decide(events, as_of):
    """(status, reason, confidence milli as float, reassigned) for [(observed_at s, class, weight)]."""
    if not events:
        return ("unknown", "no_evidence", 500.0, False)
    mass = collections.defaultdict(float)
    for t, c, w in events:
        mass[c] += w * math.exp(-((as_of - t) / DAY) / HL[c] * math.log(2))
    sa = [t for t, c, _ in events if c == "strong_active"]
    si = [t for t, c, _ in events if c == "strong_inactive"]
    reassigned = False
    if si:
        if sa and max(sa) > max(si):
            reassigned = True
        else:
            return ("inactive", "disconnected", 950.0, False)
    pos = W["strong_active"] * mass["strong_active"] + W["weak_active"] * mass["weak_active"]
    neg = W["weak_inactive"] * mass["weak_inactive"]
    score = (pos + 1) / (pos + neg + 2)
    lean = max(score, 1 - score)
    wi = [t for t, c, _ in events if c == "weak_inactive"]
    spread = len(wi) >= 3 and (max(wi) - min(wi)) >= 7 * DAY
    if pos == 0 and neg > 0 and not spread:
        return ("unknown", "temporary_failures", lean * 1000, reassigned)
    if pos + neg < 1.0:
        return ("unknown", "insufficient_evidence", lean * 1000, reassigned)
    if score >= 0.75:
        return ("active", "recent_activity", score * 1000, reassigned)
    if score <= 0.25:
        return (("inactive", "repeated_failures", (1 - score) * 1000, reassigned) if spread
                else ("unknown", "temporary_failures", lean * 1000, reassigned))
    return ("unknown", "inconclusive", lean * 1000, reassigned)


def stable(events):
    """True when the verdict cannot change between T0 and T0 + WINDOW_S (nor at the rounding
    edge), so two runs at different times must give the same row."""
    outs = [decide(events, T0 + f * WINDOW_S) for f in (0, 0.25, 0.5, 0.75, 1)]
    first = outs[0]
    for o in outs:
        if o[0] != first[0] or o[1] != first[1] or o[3] != first[3]:
            return False
        if round(o[2] + 1e-9) != round(first[2] + 1e-9):
            return False
        if abs((o[2] % 1.0) - 0.5) < 1e-3:  # too close to a rounding edge
            return False
    # 0.75 / 0.25 thresholds and min_mass must not be near either
    return True


def gen_number(r):
    """A valid E.164 number of a country some task uses (never +61, kept for posted evidence)."""
    k = r.random()
    if k < 0.3:
        return "+1%d%d%02d%04d" % (r.choice([212, 415, 646, 305, 702, 312, 617, 206]), r.randrange(2, 10), r.randrange(100), r.randrange(10000))
    if k < 0.55:
        return "+447%d%08d" % (r.randrange(4, 10), r.randrange(10**8))
    if k < 0.75:
        return "+4915%d%08d" % (r.choice([1, 2, 7]), r.randrange(10**8)) if r.random() < 0.5 else "+491%d%07d" % (r.choice([51, 52, 60, 70, 76]), r.randrange(10**7))
    if k < 0.9:
        return "+336%08d" % r.randrange(10**8)
    return "+919%09d" % r.randrange(10**9)


def fmt(r, e164):
    """The number as a person or a spreadsheet might write it."""
    d = e164[1:]
    k = r.random()
    if k < 0.45:
        return e164
    if k < 0.6:
        return "00" + d
    if k < 0.75:
        return f"+{d[:2]} {d[2:5]} {d[5:]}"
    if k < 0.82:
        return f"\"{e164}\""
    if k < 0.88:
        return f"+{d[:2]}-{d[2:6]}-{d[6:]}"
    if k < 0.93:
        return f"'{e164}"
    return f" {e164} "


GARBAGE = ["not a number", "n/a", "---", "+999 123", "12", "abc123", "+1 (000) 000-0000",
           "+44 1234", "1" * 30, "0301234567", "hello@example.com", "+", "'", "#REF!"]


def make_evidence(r, pool):
    """CSV evidence for part of the pool, each number's events screened for stability."""
    lines = ["number,observed_at,source,kind,raw_code,message_id,class,weight"]
    kinds = {"strong_active": ("sms_dlr", "DELIVRD"), "weak_active": ("call", "BUSY"),
             "weak_inactive": ("sms_dlr", "EXPIRED"), "strong_inactive": ("call", "404"),
             "neutral": ("sms_dlr", "REJECTD")}
    kept = dropped = mid = 0
    for number in pool:
        if r.random() > 0.45:
            continue
        p = r.random()
        ev = []
        if p < 0.25:
            ev = [(T0 - r.randrange(DAY, 60 * DAY), "strong_active", 1.0) for _ in range(r.randrange(1, 4))]
        elif p < 0.35:
            ev = [(T0 - r.randrange(DAY, 400 * DAY), "strong_inactive", 1.0)]
            if r.random() < 0.5:
                ev.append((ev[0][0] - r.randrange(DAY, 90 * DAY), "strong_active", 1.0))
        elif p < 0.45:
            cut = T0 - r.randrange(100 * DAY, 300 * DAY)
            ev = [(cut, "strong_inactive", 1.0), (cut + r.randrange(DAY, 90 * DAY), "strong_active", 1.0)]
        elif p < 0.6:
            ev = [(T0 - r.randrange(DAY, 30 * DAY), "weak_inactive", 1.0) for _ in range(r.randrange(1, 3))]
        elif p < 0.72:
            start = T0 - r.randrange(35 * DAY, 90 * DAY)  # at most 5 × 6 days later: still in the past
            ev = [(start + i * r.randrange(3 * DAY, 6 * DAY), "weak_inactive", 1.0) for i in range(r.randrange(3, 6))]
        elif p < 0.82:
            ev = [(T0 - r.randrange(600 * DAY, 1500 * DAY), "strong_active", 1.0)]
        elif p < 0.92:
            ev = [(T0 - r.randrange(DAY, 90 * DAY), "weak_active", 1.0), (T0 - r.randrange(DAY, 60 * DAY), "weak_inactive", 1.0),
                  (T0 - r.randrange(DAY, 60 * DAY), "weak_inactive", float(r.randrange(1, 4)))]
        else:
            ev = [(T0 - r.randrange(DAY, 90 * DAY), "neutral", 1.0)]
        if not stable(ev):
            dropped += 1
            continue
        kept += 1
        for j, (t, c, w) in enumerate(ev):
            kind, code = kinds[c]
            src = r.choice(["smsc-a", "smsc-b", "sbc-1", "hlr-x"])
            lines.append(f"{number},{t},{src},{kind},{code},{number[1:]}-{j},{c},{w:g}")
    return ("\n".join(lines) + "\n").encode(), kept, dropped


def make_task(r, pool, n_lines):
    out = []
    for _ in range(n_lines):
        k = r.random()
        if k < 0.03:
            out.append("")
        elif k < 0.08:
            out.append(r.choice(GARBAGE))
        elif k < 0.18 and out:
            out.append(r.choice(out))
        elif k < 0.85:
            out.append(fmt(r, r.choice(pool)))
        else:
            out.append(fmt(r, gen_number(r)))
    eol = "\r\n" if r.random() < 0.2 else "\n"
    return (eol.join(out) + eol).encode()


def task_sizes(r, n, largest):
    sizes = []
    for i in range(n):
        k = r.random()
        if k < 0.3:
            sizes.append(r.randrange(5, 500))
        elif k < 0.6:
            sizes.append(r.randrange(500, 2000))
        else:
            sizes.append(r.randrange(2001, max(2002, largest + 1)))
    if n:
        sizes[r.randrange(n)] = largest  # at least one of the largest size
    return sizes


# ---------------------------------------------------------------------------------------------
# Server and HTTP
# ---------------------------------------------------------------------------------------------

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


SERVER_ENV = {
    "NUMCHECK_LOG": "warn",
    "NUMCHECK_WORKER__CHUNK_LINES": str(args.chunk_lines),
    # One client polls and posts hard with two keys; the per-key limits are not under test.
    "NUMCHECK_LIMITS__REQUESTS_PER_SECOND": "0",
    "NUMCHECK_LIMITS__MAX_OPEN_TASKS": "0",
}


class Server:
    def __init__(self, data_dir, port, log_path):
        self.data_dir, self.port, self.log_path = data_dir, port, log_path
        self.base = f"http://127.0.0.1:{port}"
        self.proc = None
        self.admin_key = None
        self.starts = 0

    def start(self, timeout=120):
        logf = open(self.log_path, "ab")
        logf.write(f"\n=== start {self.starts} at {time.strftime('%H:%M:%S')}\n".encode()); logf.flush()
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE, stderr=logf, env=dict(os.environ, **SERVER_ENV), text=True)
        logf.close()
        self.starts += 1
        proc = self.proc
        ready = threading.Event()

        def drain():
            for line in proc.stdout:
                if line.startswith("nck_") and self.admin_key is None:
                    self.admin_key = line.strip()
                if "listening on" in line:
                    ready.set()
            ready.set()
        threading.Thread(target=drain, daemon=True).start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                return False
            if ready.is_set():
                try:
                    urllib.request.urlopen(self.base + "/healthz", timeout=2).read()
                    return True
                except Exception:
                    pass
            time.sleep(0.05)
        return False

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def http(method, url, key=None, data=None, headers=None, timeout=60):
    """(status or None, parsed JSON or raw bytes, error text). Never raises."""
    h = dict(headers or {})
    if key:
        h["X-API-Key"] = key
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            code = resp.status
    except urllib.error.HTTPError as e:
        body, code = e.read(), e.code
    except Exception as e:  # refused, reset, timeout, cut off
        return None, None, f"{type(e).__name__}: {e}"
    try:
        return code, json.loads(body), ""
    except Exception:
        return code, body, ""


def curl_create(base, key, path, idem=None, timeout=180):
    """Creates a task with curl (which reads an early error answer even while uploading).
    Returns (http code or None, JSON or text, curl exit code)."""
    out = path + ".resp"
    cmd = ["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", str(timeout),
           base + "/v1/tasks", "-H", f"X-API-Key: {key}", "-F", f"file=@{path}", "-F", "task_type=active_check"]
    if idem:
        cmd += ["-H", f"Idempotency-Key: {idem}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    code = int(p.stdout) if p.stdout.strip().isdigit() and int(p.stdout) > 0 else None
    body = open(out, "rb").read() if os.path.exists(out) else b""
    try:
        body = json.loads(body)
    except Exception:
        body = body.decode(errors="replace")[:300] + (p.stderr.strip()[:200] if p.returncode else "")
    return code, body, p.returncode


def list_tasks(srv, key):
    code, body, err = http("GET", srv.base + "/v1/tasks?limit=200", key, timeout=30)
    if code != 200:
        return None
    return body["tasks"]


def fetch_result(srv, key, tid):
    """({status,total,success,failure}, {csv, rejected, summary}) of an exported task."""
    code, g, err = http("POST", srv.base + "/v1/gettasks", key, data=f"task_id={tid}".encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    if code != 200:
        return None, f"gettasks {code} {err}"
    counters = {k: g.get(k) for k in ("status", "total", "success", "failure")}
    if g.get("status") != "exported":
        return counters, None
    code, z, err = http("GET", g["result_url"], timeout=120)
    if code != 200:
        return counters, f"result {code} {err}"
    zf = zipfile.ZipFile(io.BytesIO(z))
    summary = json.loads(zf.read("summary.json"))
    summary.pop("task_id", None); summary.pop("as_of", None)
    return counters, {"csv": zf.read(f"{tid}.csv"), "rejected": zf.read("rejected.csv"), "summary": summary,
                      "names": sorted(zf.namelist())}


def wait_all_ended(srv, key, n, deadline, quiet_limit=180):
    """Polls the task list until n tasks exist and every one has ended. Returns (tasks, why)."""
    last_progress, last_sig, seen = time.time(), None, None
    while time.time() < deadline:
        tasks = list_tasks(srv, key)
        seen = tasks if tasks is not None else seen
        if tasks is not None:
            sig = tuple(sorted((t["task_id"], t["status"], t["success"], t["failure"]) for t in tasks))
            if sig != last_sig:
                last_sig, last_progress = sig, time.time()
            if len(tasks) >= n and all(t["status"] in ("exported", "failed", "cancelled") for t in tasks):
                return tasks, ""
        if time.time() - last_progress > quiet_limit:
            return tasks, f"no progress for {quiet_limit} s (hang?)"
        time.sleep(0.5)
    return seen, "deadline"


def sqlite_ro(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def integrity(db_path):
    try:
        c = sqlite_ro(db_path)
        r = [row[0] for row in c.execute("PRAGMA integrity_check")]
        fk = list(c.execute("PRAGMA foreign_key_check"))
        c.close()
        return r, fk
    except Exception as e:
        return [f"error: {e}"], []


def ledger_of(db_path, user_id):
    c = sqlite_ro(db_path)
    rows = list(c.execute("SELECT kind, amount, task_id FROM ledger WHERE user_id = ? ORDER BY id", (user_id,)))
    c.close()
    return rows


def leftovers(data_dir, db_path):
    """Files no task needs any more: tmp/ files, uploads without a task (cut-off creates),
    chunk parts of ended tasks, results without a task. {kind: (files, bytes)}."""
    c = sqlite_ro(db_path)
    tasks = dict(c.execute("SELECT id, status FROM tasks"))
    c.close()
    out = {}

    def add(kind, path):
        n, b = out.get(kind, (0, 0))
        out[kind] = (n + 1, b + os.path.getsize(path))
    for root, _, names in os.walk(os.path.join(data_dir, "tmp")):
        for f in names:
            add("tmp/ files", os.path.join(root, f))
    for sub, kind in (("uploads", "uploads without a task"), ("results", "results without a task")):
        d = os.path.join(data_dir, "blobs", sub)
        for f in os.listdir(d) if os.path.isdir(d) else []:
            if f.split(".")[0] not in tasks:
                add(kind, os.path.join(d, f))
    d = os.path.join(data_dir, "blobs", "work")
    for t in os.listdir(d) if os.path.isdir(d) else []:
        if tasks.get(t) not in ("pending", "processing"):
            for root, _, names in os.walk(os.path.join(d, t)):
                for f in names:
                    add("chunk parts of ended tasks", os.path.join(root, f))
    return out


def show_leftovers(label, lo):
    if not lo:
        print(f"NOTE  {label}: no leftover files")
    for kind, (n, b) in lo.items():
        print(f"NOTE  {label}: {n} {kind} ({b / 2**20:.2f} MiB) are left in the data folder")


def keys_create(data_dir, user, credits=None):
    cmd = [BINARY, "keys", "create", "--data-dir", data_dir, "--user", user]
    if credits is not None:
        cmd += ["--credits", str(credits)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, NUMCHECK_LOG="warn"))
    if p.returncode != 0:
        sys.exit(f"keys create failed: {p.stderr}")
    return p.stdout.strip().splitlines()[-1]


def evidence_import(data_dir, path):
    p = subprocess.run([BINARY, "evidence", "import", path, "--data-dir", data_dir], capture_output=True, text=True,
                       env=dict(os.environ, NUMCHECK_LOG="warn"))
    if p.returncode != 0:
        sys.exit(f"evidence import failed: {p.stderr}")
    return p.stdout.strip()


def evidence_total(data_dir):
    p = subprocess.run([BINARY, "evidence", "stats", "--data-dir", data_dir], capture_output=True, text=True,
                       env=dict(os.environ, NUMCHECK_LOG="warn"))
    for line in p.stdout.splitlines():
        if line.startswith("observations"):
            return int(line.split()[1])
    return None


# ---------------------------------------------------------------------------------------------
# One run (reference or crash)
# ---------------------------------------------------------------------------------------------

def run(name, work, files, evidence_path, kills):
    """Returns a dict with the tasks' counters and results, the ledger and the kill log."""
    data = os.path.join(work, name, "data")
    os.makedirs(os.path.dirname(data), exist_ok=True)
    imp = evidence_import(data, evidence_path)
    initial_obs = evidence_total(data)
    srv = Server(data, free_port(), os.path.join(work, name, "server.log"))
    if not srv.start():
        sys.exit(f"{name}: the server did not start; see {srv.log_path}")
    admin = srv.admin_key
    ukey = keys_create(data, "crashuser", OPENING)
    rnd = random.Random(args.seed * 1000 + 17)       # pacing of creates: same in both runs
    krnd = random.Random(args.seed * 1000 + 31)      # kill moments
    ernd = random.Random(args.seed * 1000 + 47)      # evidence batches
    st = {"creating": False, "ingesting": False, "created": 0, "open": 0, "exported": 0,
          "submit_done": False, "stop_evidence": False, "progress": 0.0, "processing": 0, "exporting": 0}
    created = {}          # file index -> task id
    create_log = collections.Counter()
    lock = threading.Lock()
    up = threading.Event(); up.set()
    t_start = time.time()
    deadline = t_start + args.timeout

    def submitter():
        for i, path in enumerate(files):
            time.sleep(rnd.uniform(0, 0.3))
            attempt = 0
            while time.time() < deadline:
                up.wait(60)
                attempt += 1
                st["creating"] = True
                code, body, rc = curl_create(srv.base, ukey, path, idem=f"crash-{args.seed}-{i}")
                st["creating"] = False
                if code == 200:
                    with lock:
                        created[i] = body["task_id"]
                        st["created"] = len(created)
                    create_log["ok" if attempt == 1 else "ok_after_retry"] += 1
                    break
                create_log[f"failed:{code or 'curl' + str(rc)}"] += 1
                if code is not None and code < 500 and code != 408:
                    create_log[f"fatal:{code}:{body}"] += 1
                    break
                time.sleep(0.2)
        st["submit_done"] = True

    ev_posts = []   # (batch id, message ids, answer or None, retry answer or None)

    def poster():
        b = 0
        while not st["stop_evidence"] and time.time() < deadline:
            n = ernd.randrange(200, 3000)
            ids, rows = [], []
            for j in range(n):
                mid = f"b{b}-r{j}"
                ids.append(mid)
                rows.append(json.dumps({"number": "+614%02d%06d" % (ernd.randrange(100), ernd.randrange(10**6)),
                                        "observed_at": T0 - ernd.randrange(DAY, 300 * DAY), "source": EVIDENCE_SOURCE,
                                        "kind": "sms_dlr", "raw_code": "DELIVRD", "message_id": mid}))
            body = ("\n".join(rows) + "\n").encode()
            up.wait(60)
            st["ingesting"] = True
            code, ans, err = http("POST", srv.base + "/v1/evidence", admin, data=body,
                                  headers={"Content-Type": "application/x-ndjson"}, timeout=300)
            st["ingesting"] = False
            rec = {"batch": b, "ids": ids, "code": code, "answer": ans if code == 200 else (ans or err), "retry": None}
            if code != 200 and ernd.random() < 0.5:
                # Post the cut-off batch again once the server is back: nothing may be stored twice.
                time.sleep(0.3); up.wait(60)
                for _ in range(50):
                    st["ingesting"] = True
                    c2, a2, e2 = http("POST", srv.base + "/v1/evidence", admin, data=body,
                                      headers={"Content-Type": "application/x-ndjson"}, timeout=300)
                    st["ingesting"] = False
                    if c2 == 200:
                        rec["retry"] = a2
                        break
                    time.sleep(0.3); up.wait(60)
            ev_posts.append(rec)
            b += 1
            time.sleep(ernd.uniform(0, 0.6))

    kill_log = []

    def killer():
        # Kill moments are spread over the work, not over wall time: kill k waits for a seeded
        # share of all lines to be processed (uniform in 0..0.95), then a seeded 0-0.25 s more.
        # A seeded 0.05-0.5 s of uptime follows each restart, so some kills hit a server still
        # recovering its chunks. A restart takes about 0.7 s, so kills that fall behind the
        # work land on the last exports or, after them, on evidence ingest alone.
        targets = sorted(krnd.uniform(0, 0.95) for _ in range(kills))
        for k, target in enumerate(targets):
            t_min = time.time() + krnd.uniform(0.05, 0.5)
            extra = krnd.uniform(0, 0.25)
            while time.time() < deadline and (time.time() < t_min or st["progress"] < target):
                time.sleep(0.02)
            t_end = time.time() + extra
            while time.time() < t_end:
                time.sleep(0.02)
            if time.time() > deadline:
                break
            phases = []
            if st["creating"]: phases.append("create")
            if st["processing"]: phases.append("processing")
            if st["exporting"]: phases.append("export")
            if st["open"] and not st["processing"] and not st["exporting"]: phases.append("pending")
            if st["ingesting"]: phases.append("evidence-ingest")
            if not phases: phases.append("idle")
            snap = (f"{st['created']}/{len(files)} created, {st['open']} open, {st['exported']} exported, "
                    f"{100 * st['progress']:.0f}% of lines")
            up.clear()
            srv.kill9()
            t_kill = time.time()
            ok = False
            for attempt in range(5):
                if srv.start():
                    ok = True
                    break
                time.sleep(1)
            kill_log.append({"at": round(t_kill - t_start, 2), "phases": phases, "state": snap,
                             "restart_s": round(time.time() - t_kill, 2), "restarted": ok})
            up.set()
            if not ok:
                log(f"{name}: restart failed after kill {k + 1}; see {srv.log_path}")
                break

    threads = [threading.Thread(target=submitter, daemon=True)]
    if kills:
        threads.append(threading.Thread(target=poster, daemon=True))
        kthread = threading.Thread(target=killer, daemon=True)
        threads.append(kthread)
    for t in threads:
        t.start()
    # Watch progress for the kill schedule and the phase labels; stop the evidence poster when
    # the killer is done.
    last_sig, last_change, stalled = None, time.time(), ""
    while time.time() < deadline:
        tasks = list_tasks(srv, ukey) if up.is_set() else None
        if tasks is not None:
            st["open"] = sum(1 for t in tasks if t["status"] in ("pending", "processing"))
            st["exported"] = sum(1 for t in tasks if t["status"] == "exported")
            done_lines = [t["success"] + t["failure"] for t in tasks]
            st["progress"] = sum(done_lines) / TOTAL_LINES if TOTAL_LINES else 0
            st["processing"] = sum(1 for t in tasks if t["status"] == "processing" and t["success"] + t["failure"] < t["total"])
            st["exporting"] = sum(1 for t in tasks if t["status"] == "processing" and t["success"] + t["failure"] == t["total"])
            sig = (len(tasks), st["exported"], sum(done_lines), len(kill_log))
            if sig != last_sig:
                last_sig, last_change = sig, time.time()
        if time.time() - last_change > 180 and st["submit_done"]:
            stalled = "no progress for 180 s (hang?)"
            break
        killer_done = not kills or not kthread.is_alive()
        if killer_done:
            st["stop_evidence"] = True
        if st["submit_done"] and killer_done and all(not t.is_alive() for t in threads) and tasks is not None \
                and st["open"] == 0 and len(tasks) >= len(created):
            break
        time.sleep(0.3)
    st["stop_evidence"] = True
    tasks, why = wait_all_ended(srv, ukey, len(created), deadline)
    why = stalled or why
    elapsed = time.time() - t_start
    out = {"name": name, "data": data, "srv": srv, "ukey": ukey, "admin": admin, "created": created,
           "create_log": create_log, "kills": kill_log, "elapsed": elapsed, "tasks": tasks or [], "wait_problem": why,
           "ev_posts": ev_posts, "initial_obs": initial_obs, "import": imp}
    # Results.
    by_id = {}
    for i, tid in created.items():
        counters, res = fetch_result(srv, ukey, tid)
        by_id[i] = (counters, res)
    out["results"] = by_id
    code, bal, err = http("GET", srv.base + "/v1/balance", ukey)
    out["balance"] = bal if code == 200 else None
    detail = {}
    for i, tid in created.items():
        c, d, e = http("GET", f"{srv.base}/v1/tasks/{tid}", ukey)
        detail[i] = (d.get("chunks_done"), d.get("chunk_count")) if c == 200 else None
    out["chunks"] = detail
    srv.stop()
    db = os.path.join(data, "numcheck.db")
    out["ledger"] = ledger_of(db, bal["user_id"]) if out["balance"] else []
    out["integrity"] = integrity(db)
    out["leftovers"] = leftovers(data, db)
    out["evidence_total"] = evidence_total(data)
    c = sqlite_ro(db)
    out["ev_ids"] = collections.Counter(r[0] for r in c.execute("SELECT message_id FROM observations WHERE source = ?", (EVIDENCE_SOURCE,)))
    out["task_rows"] = c.execute("SELECT count(*) FROM tasks WHERE user_id = ?", (bal["user_id"],)).fetchone()[0] if bal else None
    c.close()
    return out


REF_SECONDS = 0.0
TOTAL_LINES = 0


def crash_part(work):
    global REF_SECONDS, TOTAL_LINES
    r = random.Random(args.seed)
    pool = sorted({gen_number(r) for _ in range(30000)})
    ev, kept, dropped = make_evidence(r, pool)
    evidence_path = os.path.join(work, "evidence.csv")
    open(evidence_path, "wb").write(ev)
    sizes = task_sizes(r, args.tasks, args.lines)
    files = []
    os.makedirs(os.path.join(work, "files"), exist_ok=True)
    for i, n in enumerate(sizes):
        p = os.path.join(work, "files", f"task-{i:03d}.txt")
        open(p, "wb").write(make_task(r, pool, n))
        files.append(p)
    ev_rows = ev.count(b"\n") - 1
    log(f"data: {len(pool)} numbers, evidence for {kept} of them ({ev_rows} rows; {dropped} unstable "
        f"patterns left out), {len(files)} task files, {sum(sizes):,} lines (sizes {min(sizes)}–{max(sizes)}, "
        f"{sum(1 for s in sizes if s > args.chunk_lines)} above one chunk of {args.chunk_lines})")

    log("reference run (no kills)")
    ref = run("reference", work, files, evidence_path, 0)
    REF_SECONDS = ref["elapsed"]
    TOTAL_LINES = sum(c["total"] for c, _ in ref["results"].values() if c)
    log(f"reference: {ref['elapsed']:.1f} s, {len(ref['created'])} tasks, problem: {ref['wait_problem'] or 'none'}")
    if len(ref["created"]) != len(files) or any(v[1] is None or isinstance(v[1], str) for v in ref["results"].values()):
        check("reference run completed", False, f"{len(ref['created'])} created; {ref['wait_problem']}")
        return
    log(f"crash run ({args.kills} kills)")
    cr = run("crash", work, files, evidence_path, args.kills)
    log(f"crash run: {cr['elapsed']:.1f} s; creates {dict(cr['create_log'])}")

    # --- kills
    print(f"\nkills done: {len(cr['kills'])} of {args.kills}")
    phase_count = collections.Counter("+".join(k["phases"]) for k in cr["kills"])
    for p, n in phase_count.most_common():
        print(f"  {n:3d} × {p}")
    for k in cr["kills"]:
        print(f"    t={k['at']:7.2f}s  {'+'.join(k['phases']):40s} {k['state']:45s} restart {k['restart_s']} s")
    restart_s = [k["restart_s"] for k in cr["kills"]]
    if restart_s:
        print(f"  restart time (kill → healthz): median {sorted(restart_s)[len(restart_s)//2]} s, max {max(restart_s)} s")
    print()
    check("every kill was followed by a successful restart", all(k["restarted"] for k in cr["kills"]) and len(cr["kills"]) == args.kills,
          f"{sum(k['restarted'] for k in cr['kills'])}/{len(cr['kills'])} restarted, {len(cr['kills'])} of {args.kills} kills done")
    check("no run stalled", not cr["wait_problem"] and not ref["wait_problem"], cr["wait_problem"] or ref["wait_problem"])

    # --- tasks
    n = len(files)
    check(f"all {n} creates answered 200 in the end", len(cr["created"]) == n and not any(k.startswith("fatal") for k in cr["create_log"]),
          f"{len(cr['created'])} created; {dict(cr['create_log'])}")
    ids = [t["task_id"] for t in cr["tasks"]]
    check(f"exactly {n} tasks exist (GET /v1/tasks?limit=200 and the tasks table)",
          len(ids) == n and len(set(ids)) == n and cr["task_rows"] == n and set(ids) == set(cr["created"].values()),
          f"list {len(ids)}, table {cr['task_rows']}, distinct ids from creates {len(set(cr['created'].values()))}")
    names = collections.Counter(t.get("file_name") for t in cr["tasks"])
    check("no file became two tasks (file names in the task list)", all(v == 1 for v in names.values()) and len(names) == n,
          ", ".join(f"{k}×{v}" for k, v in names.items() if v != 1))
    not_exp = [t["task_id"] for t in cr["tasks"] if t["status"] != "exported"]
    check(f"all {n} tasks exported", not not_exp and len(cr["tasks"]) == n, f"not exported: {not_exp}")
    bad_counters, bad_csv, bad_order, bad_rej, bad_sum, bad_chunks = [], [], [], [], [], []
    for i in range(n):
        rc, rres = ref["results"].get(i, (None, None))
        cc, cres = cr["results"].get(i, (None, None))
        if rc != cc:
            bad_counters.append(f"task-{i:03d}: {rc} vs {cc}")
        if not isinstance(cres, dict) or not isinstance(rres, dict):
            bad_csv.append(f"task-{i:03d}: no result ({cres})")
            continue
        if cres["csv"] != rres["csv"]:
            if sorted(cres["csv"].splitlines()) == sorted(rres["csv"].splitlines()):
                bad_order.append(f"task-{i:03d}")
            else:
                a, b = set(rres["csv"].splitlines()), set(cres["csv"].splitlines())
                bad_csv.append(f"task-{i:03d}: {len(a - b)} rows only in the reference, {len(b - a)} only in the crash run, e.g. {sorted(a - b)[:2]} / {sorted(b - a)[:2]}")
        if cres["rejected"] != rres["rejected"]:
            bad_rej.append(f"task-{i:03d}")
        if cres["summary"] != rres["summary"]:
            diff = {k for k in set(cres["summary"]) | set(rres["summary"]) if cres["summary"].get(k) != rres["summary"].get(k)}
            bad_sum.append(f"task-{i:03d}: {sorted(diff)}")
        if cr["chunks"].get(i) != ref["chunks"].get(i) or (cr["chunks"].get(i) and cr["chunks"][i][0] != cr["chunks"][i][1]):
            bad_chunks.append(f"task-{i:03d}: {ref['chunks'].get(i)} vs {cr['chunks'].get(i)}")
    check("per task status/total/success/failure equal to the reference", not bad_counters, "; ".join(bad_counters[:5]))
    check("chunks_done == chunk_count, equal to the reference", not bad_chunks, "; ".join(bad_chunks[:5]))
    check("result CSV byte-identical to the reference (rows in input order)", not bad_csv and not bad_order,
          "; ".join(bad_csv[:5] + [f"{t}: same rows, other order" for t in bad_order[:5]]))
    check("rejected.csv identical to the reference", not bad_rej, ", ".join(bad_rej[:10]))
    check("summary.json identical to the reference (less task_id, as_of)", not bad_sum, "; ".join(bad_sum[:5]))
    inner = []
    for i, (cc, cres) in cr["results"].items():
        if isinstance(cres, dict) and cc:
            rows = cres["csv"].count(b"\n") - 1
            rej = cres["rejected"].count(b"\n") - 1
            s = cres["summary"]
            if not (cc["success"] + cc["failure"] == cc["total"] and rows == cc["success"] and rej == cc["failure"]
                    and s["total"] == cc["total"] and s["success"] == cc["success"] and s["failure"] == cc["failure"]):
                inner.append(f"task-{i:03d}")
    check("each result agrees with its counters (csv rows = success, rejected rows = failure, summary)", not inner, ", ".join(inner))

    # --- ledger
    def charges(result):
        per = collections.defaultdict(list)
        other = []
        for kind, amount, tid in result["ledger"]:
            if kind == "charge":
                per[tid].append(amount)
            elif not (kind == "grant" and amount == OPENING):
                other.append((kind, amount, tid))
        return per, other
    rper, rother = charges(ref)
    cper, cother = charges(cr)
    inv_ref = {tid: i for i, tid in ref["created"].items()}
    inv_cr = {tid: i for i, tid in cr["created"].items()}
    ref_by_file = {inv_ref.get(t): v for t, v in rper.items()}
    cr_by_file = {inv_cr.get(t): v for t, v in cper.items()}
    one = [f"task-{i:03d}: {v}" for i, v in cr_by_file.items() if len(v) != 1]
    missing = [f"task-{i:03d}" for i in range(n) if i not in cr_by_file]
    check("ledger: exactly one charge per task, no other movement", not one and not missing and not cother and None not in cr_by_file,
          "; ".join(one[:5] + [f"no charge: {', '.join(missing[:5])}"] * bool(missing) + [f"other rows: {cother[:5]}"] * bool(cother)))
    diff = [f"task-{i:03d}: ref {ref_by_file.get(i)} crash {cr_by_file.get(i)}" for i in range(n) if ref_by_file.get(i) != cr_by_file.get(i)]
    check("ledger: each charge equal to the reference's", not diff, "; ".join(diff[:5]))
    total_charged = -sum(sum(v) for v in cper.values())
    bal = cr["balance"] or {}
    check("balance = opening − sum(charges), held = 0, usage.credits_charged = sum(charges)",
          bal.get("balance") == OPENING - total_charged and bal.get("held") == 0 and bal.get("available") == bal.get("balance")
          and bal.get("usage", {}).get("credits_charged") == total_charged and total_charged == -sum(sum(v) for v in rper.values()),
          f"balance {bal.get('balance')}, held {bal.get('held')}, charged {total_charged:,} (reference {-sum(sum(v) for v in rper.values()):,})")

    # --- evidence
    posts = cr["ev_posts"]
    acked = [p for p in posts if p["code"] == 200]
    retried = [p for p in posts if p["code"] != 200 and p["retry"] is not None]
    cut = [p for p in posts if p["code"] != 200 and p["retry"] is None]
    must = set()
    for p in acked + retried:
        must.update(p["ids"])
    maybe = set()
    for p in cut:
        maybe.update(p["ids"])
    stored = cr["ev_ids"]
    lost = must - set(stored)
    dup = [k for k, v in stored.items() if v > 1]
    stray = set(stored) - must - maybe
    answered_ok = all(p["answer"].get("inserted", 0) + p["answer"].get("duplicates", 0) == len(p["ids"]) for p in acked) and \
        all(p["retry"].get("inserted", 0) + p["retry"].get("duplicates", 0) == len(p["ids"]) for p in retried)
    print(f"\nevidence POSTs during the crash run: {len(posts)} batches, {sum(len(p['ids']) for p in posts):,} rows; "
          f"{len(acked)} answered 200 ({sum(len(p['ids']) for p in acked):,} rows), {len(retried)} cut off and posted again "
          f"(retries found {sum(p['retry'].get('duplicates', 0) for p in retried):,} rows already stored), "
          f"{len(cut)} cut off and left ({len(maybe):,} rows, of which {len(maybe & set(stored)):,} are stored)")
    check("evidence: every row of every 200-answered POST is stored (by message id, in the observations table)",
          not lost and len(acked) > 0 and answered_ok, f"{len(lost)} lost of {len(must):,}; answers consistent: {answered_ok}")
    check("evidence: no row stored twice, none that was not posted", not dup and not stray, f"{len(dup)} twice, {len(stray)} stray")
    exp_total = cr["initial_obs"] + sum(stored.values())
    check("evidence: `numcheck evidence stats` total = initial import + posted rows stored",
          cr["evidence_total"] == exp_total and cr["initial_obs"] == ref["initial_obs"],
          f"{cr['evidence_total']:,} = {cr['initial_obs']:,} + {sum(stored.values()):,} (acknowledged {len(must):,})")

    # --- database
    for res in (ref, cr):
        ic, fk = res["integrity"]
        check(f"PRAGMA integrity_check ({res['name']}): ok", ic == ["ok"] and not fk, f"{ic[:3]} foreign keys: {fk[:3]}")
    print()
    for res in (ref, cr):
        show_leftovers(f"{res['name']} run", res["leftovers"])
    print(f"\ntimings: reference {ref['elapsed']:.1f} s, crash run {cr['elapsed']:.1f} s "
          f"({len(cr['kills'])} kills, {cr['srv'].starts} server starts)")


# ---------------------------------------------------------------------------------------------
# Full disk
# ---------------------------------------------------------------------------------------------

def full_disk_part(work):
    print("\n== full disk ==")
    if os.geteuid() != 0:
        print("SKIP  full disk: not root (needs mount -t tmpfs)")
        return
    mnt = os.path.join(work, "fulldisk")
    os.makedirs(mnt, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mib}m", "tmpfs", mnt], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"SKIP  full disk: mount not allowed here ({p.stderr.strip()})")
        return
    holder = {}
    try:
        _full_disk(work, mnt, holder)
    finally:
        if holder.get("srv") is not None:
            holder["srv"].stop()
        r = subprocess.run(["umount", mnt], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"umount failed ({r.stderr.strip()}); lazy unmount")
            subprocess.run(["umount", "-l", mnt])


def df(path):
    s = os.statvfs(path)
    return (s.f_blocks - s.f_bfree) * s.f_frsize / 2**20, s.f_blocks * s.f_frsize / 2**20


def _full_disk(work, mnt, holder):
    r = random.Random(args.seed + 5)
    pool = sorted({gen_number(r) for _ in range(30000)})
    data = os.path.join(mnt, "data")
    ev, _, _ = make_evidence(r, pool)
    evp = os.path.join(work, "fd-evidence.csv"); open(evp, "wb").write(ev)
    evidence_import(data, evp)
    srv = Server(data, free_port(), os.path.join(work, "fulldisk-server.log"))
    holder["srv"] = srv
    if not srv.start():
        check("full disk: server starts on the tmpfs", False)
        return
    ukey = keys_create(data, "fulluser", OPENING)
    admin = srv.admin_key
    files = []
    os.makedirs(os.path.join(work, "fd-files"), exist_ok=True)
    for i in range(4):
        pth = os.path.join(work, "fd-files", f"big-{i}.txt")
        open(pth, "wb").write(make_task(r, pool, args.disk_lines)); files.append(pth)
    small = os.path.join(work, "fd-files", "small.txt")
    open(small, "wb").write(make_task(r, pool, 3000))
    used, size = df(mnt)
    log(f"tmpfs {size:.0f} MiB, {used:.1f} MiB used after the import; uploads of {os.path.getsize(files[0]) / 2**20:.1f} MiB")
    accepted, errors, hangs, started = [], [], [], time.time()
    first_fail = None
    i = 0
    while time.time() - started < 600 and i < 400:
        path = files[i % len(files)]
        t = time.time()
        code, body, rc = curl_create(srv.base, ukey, path, timeout=120)
        dt = time.time() - t
        if rc == 28:
            hangs.append(f"create {i} timed out after {dt:.0f} s")
        if code == 200:
            accepted.append(body["task_id"])
        else:
            errors.append(("create", code, body if isinstance(body, dict) else str(body)[:200], rc, round(dt, 2)))
            if first_fail is None:
                first_fail = i
                log(f"first failed create after {len(accepted)} accepted ({df(mnt)[0]:.1f} MiB used): {code} {body}")
        if not srv.alive():
            break
        if first_fail is not None and i - first_fail >= 3:
            break
        i += 1
    # While full: a small create, an evidence post, reads.
    code, body, rc = curl_create(srv.base, ukey, small, timeout=120)
    (accepted.append(body["task_id"]) if code == 200 else errors.append(("small create", code, body, rc, 0)))
    rows = "\n".join(json.dumps({"number": "+614%08d" % k, "observed_at": T0 - DAY, "source": "fd-feed", "kind": "sms_dlr",
                                 "raw_code": "DELIVRD", "message_id": f"fd-{k}"}) for k in range(20000)) + "\n"
    t = time.time()
    c_ev, a_ev, e_ev = http("POST", srv.base + "/v1/evidence", admin, data=rows.encode(),
                            headers={"Content-Type": "application/x-ndjson"}, timeout=120)
    ev_full = (c_ev, a_ev if c_ev else e_ev, round(time.time() - t, 2))
    if c_ev != 200:
        errors.append(("evidence", c_ev, a_ev if c_ev else e_ev, None, ev_full[2]))
    time.sleep(5)
    reads = {}
    for what, (m, u, d, h) in {"healthz": ("GET", "/healthz", None, None), "readyz": ("GET", "/readyz", None, None),
                               "balance": ("GET", "/v1/balance", None, None), "list": ("GET", "/v1/tasks?limit=200", None, None)}.items():
        c, b, e = http(m, srv.base + u, None if what in ("healthz", "readyz") else ukey, timeout=30)
        reads[what] = c or e
        if c is None and "timed out" in e:
            hangs.append(f"{what} timed out while full")
    tasks = list_tasks(srv, ukey) or []
    full_state = collections.Counter(t["status"] for t in tasks)
    used_full = df(mnt)[0]
    print(f"accepted before/while full: {len(accepted)} tasks; errors seen:")
    kinds = collections.Counter()
    for what, code, body, rc, dt in errors:
        key = f"{what}: HTTP {code} {body.get('error') if isinstance(body, dict) else body}" if code else f"{what}: no HTTP answer (curl exit {rc}) {body}"
        kinds[key] += 1
    for k, v in kinds.items():
        print(f"  {v} × {k}")
    print(f"  evidence POST of 20,000 rows while full: {ev_full}")
    print(f"  reads while full: {reads}; task states while full: {dict(full_state)}; {used_full:.1f} of {args.disk_mib} MiB used")
    alive_full = srv.alive()
    clean = all(code is not None and (code in (413, 507) or (code >= 500 and isinstance(body, dict) and body.get("error")))
                for _, code, body, _, _ in errors)
    check("full disk: writes failed once the disk was full", first_fail is not None or c_ev != 200,
          f"{len(errors)} failed requests after {len(accepted)} accepted creates")
    check("full disk: every failure is a clean HTTP error with a JSON error code", clean and errors, "; ".join(kinds))
    check("full disk: no request hung, the server process did not die", not hangs and alive_full,
          f"hangs: {hangs}; alive: {alive_full}")
    check("full disk: reads (healthz, balance, task list) still answer while full",
          all(v == 200 for k, v in reads.items() if k != "readyz"), str(reads))
    # Space returns.
    subprocess.run(["mount", "-o", f"remount,size=400m", mnt], check=True)
    log(f"tmpfs grown to 400 MiB; waiting for the {len(accepted)} accepted tasks")
    t = time.time()
    tasks, why = wait_all_ended(srv, ukey, len(accepted), time.time() + 300, quiet_limit=120)
    t_recover = time.time() - t
    states = collections.Counter(x["status"] for x in (tasks or []))
    ok_old = tasks is not None and not why and srv.alive()
    check("full disk: tasks accepted while full all end once space returns (without a restart)",
          ok_old, f"{dict(states)} after {t_recover:.1f} s {why}")
    # New work, still without a restart.
    new, new_answers = [], []

    def new_work(label):
        for pth in (small, files[0]):
            code, body, rc = curl_create(srv.base, ukey, pth, timeout=120)
            new_answers.append((label, code, body.get("error") if isinstance(body, dict) and code != 200 else "", rc))
            if code == 200:
                new.append(body["task_id"])
        c, a, e = http("POST", srv.base + "/v1/evidence", admin, data=rows.encode(),
                       headers={"Content-Type": "application/x-ndjson"}, timeout=300)
        return c, (a if c else e)
    n_before = len(new)
    c_ev2, a_ev2 = new_work("no restart")
    tasks, why = wait_all_ended(srv, ukey, len(accepted) + len(new), time.time() + 300, quiet_limit=120)
    new_ok = tasks is not None and not why and len(new) - n_before == 2 and \
        all(x["status"] == "exported" for x in tasks if x["task_id"] in new)
    check("full disk: after space returns, new tasks complete and evidence posts are taken (without a restart)",
          new_ok and c_ev2 == 200, f"creates {[a[1:] for a in new_answers]} {why}; evidence {c_ev2} {a_ev2}")
    if not (ok_old and new_ok):
        # Tell a stuck process from damaged data: restart once, as an operator would.
        t = time.time()
        srv.stop()
        stop_s = time.time() - t
        ok_start = srv.start()
        log(f"restarted the server (stop took {stop_s:.1f} s) to see whether the data recovers")
        c_ev3, a_ev3 = new_work("after restart")
        tasks, why = wait_all_ended(srv, ukey, len(accepted) + len(new), time.time() + 900, quiet_limit=120)
        states = collections.Counter(x["status"] for x in (tasks or []))
        check("full disk: after one restart every task ends and new work completes (workaround)",
              ok_start and tasks is not None and not why and all(x["status"] == "exported" for x in tasks if x["task_id"] in new)
              and c_ev3 == 200, f"{dict(states)}; creates {[a[1:] for a in new_answers if a[0] == 'after restart']} {why}")
    # Results and ledger.
    bad, charges_expected = [], {}
    for x in tasks or []:
        if x["status"] != "exported":
            continue
        cc, res = fetch_result(srv, ukey, x["task_id"])
        if not isinstance(res, dict):
            bad.append(f"{x['task_id']}: {res}")
            continue
        rows_n = res["csv"].count(b"\n") - 1
        rej = res["rejected"].count(b"\n") - 1
        if not (cc["success"] + cc["failure"] == cc["total"] and rows_n == cc["success"] and rej == cc["failure"]
                and res["summary"]["success"] == cc["success"]):
            bad.append(f"{x['task_id']}: counters {cc} csv {rows_n} rejected {rej}")
        charges_expected[x["task_id"]] = res["summary"]["unique_numbers"]
    check("full disk: every exported result is whole (csv rows = success, rejected = failure, summary agrees)", not bad and charges_expected,
          "; ".join(bad[:5]))
    n_listed = len(tasks or [])
    check("full disk: no task exists for a create that was refused", n_listed == len(accepted) + len(new),
          f"{n_listed} tasks listed, {len(accepted) + len(new)} creates answered 200")
    code, bal, err = http("GET", srv.base + "/v1/balance", ukey)
    db = os.path.join(data, "numcheck.db")
    show_leftovers("full disk, at the end (server running)", leftovers(data, db))
    ic_live = integrity(db)
    srv.stop()
    ic, fk = integrity(db)
    ledger = ledger_of(db, bal["user_id"]) if code == 200 else []
    per = collections.defaultdict(list)
    for kind, amount, tid in ledger:
        if kind == "charge":
            per[tid].append(-amount)
    failed = {x["task_id"] for x in tasks or [] if x["status"] != "exported"}
    open_tasks = [x for x in tasks or [] if x["status"] in ("pending", "processing")]
    ok_ledger = all(per.get(t) == [n] for t, n in charges_expected.items()) and not (set(per) - set(charges_expected)) \
        and bal["balance"] == OPENING - sum(sum(v) for v in per.values()) and (bal["held"] == 0 or open_tasks)
    check("full disk: ledger consistent (one charge per exported task = its unique numbers, none for others, "
          "balance = opening − charges, held 0 once no task is open)", ok_ledger,
          f"{len(per)} charges for {len(charges_expected)} exported, {len(failed)} not exported ({len(open_tasks)} still open); "
          f"balance {bal.get('balance')}, held {bal.get('held')}")
    check("full disk: PRAGMA integrity_check ok (live and after stop)", ic_live[0] == ["ok"] and ic == ["ok"] and not fk, f"{ic_live[0][:2]} / {ic[:2]}")
    import re
    log_lines = re.sub(r"\x1b\[[0-9;]*m", "", open(srv.log_path, errors="replace").read()).splitlines()
    kinds = collections.Counter()
    for line in log_lines:
        if "database or disk is full" in line:
            kinds["SQLite: database or disk is full"] += 1
        elif "ZipWriter" in line and "No space" in line:
            kinds["result zip: no space left"] += 1
        elif "No space left" in line:
            kinds["blob store: no space left"] += 1
        if "request failed" in line:
            kinds["  of which in HTTP requests (answered 500)"] += 1
        elif "work failed; it will be retried" in line:
            kinds["  of which in workers (retried)"] += 1
        if "panicked" in line:
            kinds["panics"] += 1
        if "non-zero transaction depth" in line:
            kinds["'attempted to call begin_with at non-zero transaction depth'"] += 1
    print(f"server log: {dict(kinds)}; first wait for recovery {t_recover:.1f} s")


def main():
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} is missing: cargo build -p numcheck")
    work = args.workdir or tempfile.mkdtemp(prefix="numcheck-crash-")
    os.makedirs(work, exist_ok=True)
    log(f"numcheck crash test: binary {BINARY}, seed {args.seed}, work folder {work}")
    t = time.time()
    try:
        if not args.no_crash:
            crash_part(work)
        if not args.no_full_disk:
            full_disk_part(work)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    fails = [n for n, ok, _ in results if not ok]
    print(f"\n{len(results) - len(fails)} PASS, {len(fails)} FAIL in {time.time() - t:.0f} s")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
