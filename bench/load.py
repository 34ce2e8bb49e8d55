#!/usr/bin/env python3
"""Loopback load test (issue 9): many concurrent pollers and concurrent uploads for a bounded time.

    cargo build --release -p numcheck && apt-get install wrk && python3 bench/load.py

Starts `numcheck serve` on a fresh data folder and a free loopback port, creates API keys and a
few finished tasks, then for --seconds runs at the same time:
  - wrk with --pollers connections polling POST /v1/gettasks back to back (urlencoded task_id,
    round-robin over (key, finished task) pairs of --poll-keys users; bench/load/gettasks.lua);
  - --uploaders Python threads, each with its own key and keep-alive connection, uploading its
    own generated file of --lines-per-upload lines (unique +1 415 numbers, one line in 1,000
    not a number) in a loop: POST /v1/tasks, multipart, task_type=active_check.
Afterwards it polls every created task until it is exported (bounded by --drain-timeout) and
checks its counters against the same file's calibration task, checks /healthz, prints the
figures and writes them as JSON to --out. Exits non-zero on any error: a socket error or
timeout, a non-2xx answer, a task not exported or with other counters, an unhealthy server.

--limits off (default) starts the server with NUMCHECK_LIMITS__REQUESTS_PER_SECOND=0 and
NUMCHECK_LIMITS__MAX_OPEN_TASKS=0: the per-key rate limit and the open-task cap would otherwise
answer most of this traffic with 429. --limits default keeps the shipped limits (100 requests/s
per key, burst 200, 20 open tasks per user) and instead shows how they behave: all pollers use
ONE key (so nearly all their polls are over the limit and must get 429 quickly), while one
polite poller with another key polls 10 times a second and must see only 200s at low latency.
Uploads then wait for each task to be exported before the next, staying under the cap.
"""
import argparse, json, os, re, resource, shutil, socket, statistics, subprocess, sys, tempfile
import threading, time, http.client, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchserver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--numcheck", default=os.path.join(ROOT, "target/release/numcheck"))
ap.add_argument("--wrk", default="wrk")
ap.add_argument("--seconds", type=int, default=60)
ap.add_argument("--pollers", type=int, default=1000)
ap.add_argument("--uploaders", type=int, default=20)
ap.add_argument("--lines-per-upload", type=int, default=10000)
ap.add_argument("--poll-keys", type=int, default=10, help="users whose finished tasks are polled")
ap.add_argument("--tasks-per-poll-key", type=int, default=2)
ap.add_argument("--wrk-threads", type=int, default=2)
ap.add_argument("--timeout", type=int, default=10, help="wrk and upload request timeout, seconds")
ap.add_argument("--drain-timeout", type=int, default=900, help="seconds to wait for all tasks")
ap.add_argument("--limits", choices=["off", "default"], default="off")
ap.add_argument("--out", default=os.path.join(ROOT, "bench/load-results.json"))
ap.add_argument("--keep", action="store_true", help="keep the work folder")
args = ap.parse_args()

if not os.path.exists(args.numcheck):
    sys.exit(f"missing {args.numcheck}: run cargo build --release -p numcheck")
if shutil.which(args.wrk) is None:
    sys.exit("wrk not found: apt-get install wrk")
LUA = os.path.join(ROOT, "bench/load/gettasks.lua")

# wrk needs a descriptor per connection; children inherit the raised soft limit.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
need = args.pollers + args.uploaders + 4096
if soft != resource.RLIM_INFINITY and soft < need:
    new = need if hard == resource.RLIM_INFINITY else min(need, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < args.pollers + 64:
        sys.exit(f"open-file limit {new} is too low for {args.pollers} connections (hard limit {hard})")

errors = []          # every failed check, printed at the end
work = tempfile.mkdtemp(prefix="numcheck-load-")
data = os.path.join(work, "data")


def fail(msg):
    errors.append(msg)
    print("ERROR:", msg, file=sys.stderr, flush=True)


def create_key(user):
    out = subprocess.run([args.numcheck, "keys", "create", "--data-dir", data, "--user", user],
                         cwd=work, capture_output=True, text=True, check=True).stdout
    key = out.strip().splitlines()[-1]
    assert key.startswith("nck_"), out
    return key


# ---- data -------------------------------------------------------------------------------
def make_file(idx):
    """Uploader idx's file: unique +1 415 numbers in a few spellings; every 1,000th line is
    not a number (counted as a failure). Returns (bytes, expected numbers, expected failures)."""
    lines, bad = [], 0
    base = idx * args.lines_per_upload
    for j in range(args.lines_per_upload):
        if j % 1000 == 999:
            lines.append(f"not a number {idx}-{j}")
            bad += 1
            continue
        g = base + j
        exch, sub = 200 + g // 10000, g % 10000      # 415 200-0000 … 415 999-9999: 8M numbers
        if exch > 999:
            sys.exit("too many numbers for the generator: lower --uploaders or --lines-per-upload")
        form = j % 4
        lines.append(f"+1 415 {exch:03d} {sub:04d}" if form == 0 else
                     f"+1-415-{exch:03d}-{sub:04d}" if form == 1 else
                     f"+1 (415) {exch:03d}.{sub:04d}" if form == 2 else
                     f"+1415{exch:03d}{sub:04d}")
    return ("\n".join(lines) + "\n").encode(), args.lines_per_upload - bad, bad


def multipart(name, content):
    boundary = "----numcheckload7d1f0c"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"task_type\"\r\n\r\n"
            f"active_check\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# ---- server -----------------------------------------------------------------------------
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects after an error."""

    def __init__(self, port, key):
        self.port, self.key, self.conn = port, key, None

    def request(self, method, path, body=None, ctype=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=args.timeout)
        headers = {"X-API-Key": self.key}
        if ctype:
            headers["Content-Type"] = ctype
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            return r.status, r.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise

    def upload(self, name, body_ctype):
        body, ctype = body_ctype
        return self.request("POST", "/v1/tasks", body, ctype)

    def poll(self, task_id):
        status, raw = self.request("POST", "/v1/gettasks", f"task_id={task_id}".encode(),
                                   "application/x-www-form-urlencoded")
        return status, (json.loads(raw) if status == 200 else raw)


def read_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith(("VmHWM:", "VmRSS:", "Threads:")):
                k, v = l.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU seconds spent not idle on the whole machine so far (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")   # minus idle and iowait


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def main():
    print(f"work folder {work}; load average {os.getloadavg()}", flush=True)
    poll_keys = [create_key(f"load-poll-{i}") for i in range(args.poll_keys)]
    up_keys = [create_key(f"load-up-{i}") for i in range(args.uploaders)]
    polite_key = create_key("load-polite") if args.limits == "default" else None

    port = free_port()
    env = dict(os.environ, NUMCHECK_LOG="warn")
    if args.limits == "off":
        env.update(NUMCHECK_LIMITS__REQUESTS_PER_SECOND="0", NUMCHECK_LIMITS__MAX_OPEN_TASKS="0")
    log = open(os.path.join(work, "server.log"), "w")
    srv = subprocess.Popen([args.numcheck, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
                           cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        return run(srv, port, poll_keys, up_keys, polite_key)
    finally:
        benchserver.stop(srv, 10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status == 200
    except Exception:
        return False


def wait_exported(port, jobs, deadline, label):
    """jobs: list of dict(key, task_id, expect=(total, success, failure)). Polls until each is
    exported (or failed), bounded by deadline; checks the counters. Returns seconds taken."""
    t0 = time.monotonic()
    clients = {}
    pending = list(jobs)
    while pending and time.monotonic() < deadline:
        still = []
        for job in pending:
            c = clients.setdefault(job["key"], Client(port, job["key"]))
            try:
                status, view = c.poll(job["task_id"])
            except Exception as e:
                fail(f"{label}: polling {job['task_id']}: {e!r}")
                continue
            if status != 200:
                fail(f"{label}: polling {job['task_id']}: HTTP {status} {view[:200]!r}")
                continue
            if view["status"] == "exported":
                got = (view["total"], view["success"], view["failure"])
                if got != job["expect"] or "result_url" not in view:
                    fail(f"{label}: task {job['task_id']} exported with (total, success, failure) "
                         f"{got}, expected {job['expect']}; result_url {'result_url' in view}")
                job["view"] = view
            elif view["status"] == "failed":
                fail(f"{label}: task {job['task_id']} failed: {view.get('message')}")
            else:
                still.append(job)
        pending = still
        if pending:
            time.sleep(0.5)
    if pending:
        fail(f"{label}: {len(pending)} of {len(jobs)} tasks not exported in time")
    return time.monotonic() - t0


def run(srv, port, poll_keys, up_keys, polite_key):
    for _ in range(600):
        if healthy(port):
            break
        if srv.poll() is not None:
            sys.exit("server exited; see its log")
        time.sleep(0.05)
    else:
        sys.exit("server did not become healthy")

    nfiles = max(1, args.uploaders)     # --uploaders 0: pollers only
    files = [make_file(i) for i in range(nfiles)]
    bodies = [multipart(f"load-{i}.txt", f[0]) for i, f in enumerate(files)]
    expect = [(args.lines_per_upload, f[1], f[2]) for f in files]

    # Calibration: the finished tasks the pollers poll, one upload per poll key and slot,
    # cycling through the generated files.
    calib = []
    for k, key in enumerate(poll_keys):
        c = Client(port, key)
        for s in range(args.tasks_per_poll_key):
            i = (k * args.tasks_per_poll_key + s) % nfiles
            status, raw = c.upload(f"load-{i}.txt", bodies[i])
            if status // 100 != 2:
                sys.exit(f"calibration upload: HTTP {status} {raw[:300]!r}")
            calib.append(dict(key=key, task_id=json.loads(raw)["task_id"], expect=expect[i]))
    if polite_key:
        c = Client(port, polite_key)
        status, raw = c.upload("load-0.txt", bodies[0])
        if status // 100 != 2:
            sys.exit(f"calibration upload: HTTP {status} {raw[:300]!r}")
        calib.append(dict(key=polite_key, task_id=json.loads(raw)["task_id"], expect=expect[0]))
    wait_exported(port, calib, time.monotonic() + 120, "calibration")
    if errors:
        sys.exit("calibration failed")
    pairs = os.path.join(work, "pairs.tsv")
    with open(pairs, "w") as f:
        for j in calib:
            # The default-limits run hammers one key (and the polite poller has its own).
            if j["key"] != polite_key and (args.limits == "off" or j["key"] == poll_keys[0]):
                f.write(f"{j['key']}\t{j['task_id']}\n")

    # ---- the load ---------------------------------------------------------------------
    load0 = os.getloadavg()
    cpu0 = cpu_seconds(srv.pid)
    mach0 = machine_busy_seconds()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop = threading.Event()
    samples = []

    def sampler():
        while not stop.is_set():
            try:
                st = read_status(srv.pid)
                samples.append((time.monotonic(), st.get("VmRSS", 0), st.get("Threads", 0), cpu_seconds(srv.pid)))
            except OSError:
                pass
            stop.wait(1)

    uploads = []        # (start offset, seconds, http status or None, error or None, uploader)
    created = []        # jobs to check afterwards
    lock = threading.Lock()
    t_start = time.monotonic()
    t_end = t_start + args.seconds

    def uploader(i):
        c = Client(port, up_keys[i])
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                status, raw = c.upload(f"load-{i}.txt", bodies[i])
                err = None
            except Exception as e:
                status, raw, err = None, b"", repr(e)
            dt = time.monotonic() - t0
            with lock:
                uploads.append((t0 - t_start, dt, status, err, i))
            if status is not None and status // 100 == 2:
                job = dict(key=up_keys[i], task_id=json.loads(raw)["task_id"], expect=expect[i])
                with lock:
                    created.append(job)
                if args.limits == "default":
                    # Stay under the open-task cap: wait for this task before the next upload.
                    while time.monotonic() < t_end + args.drain_timeout:
                        try:
                            st, view = c.poll(job["task_id"])
                        except Exception:
                            break
                        if st != 200 or view["status"] in ("exported", "failed"):
                            break
                        time.sleep(0.1)
            elif status is not None:
                with lock:
                    uploads[-1] = (t0 - t_start, dt, status, raw[:200].decode("utf-8", "replace"), i)
                time.sleep(0.1)

    polite = []         # (seconds, status or None)

    def polite_poller():
        c = Client(port, polite_key)
        tid = calib[-1]["task_id"]
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                st, _ = c.poll(tid)
            except Exception:
                st = None
            polite.append((time.monotonic() - t0, st))
            time.sleep(max(0, 0.1 - (time.monotonic() - t0)))

    wrk_env = dict(os.environ)
    if args.limits == "default":
        wrk_env["WRK_COUNT_STATUS"] = "1"
    wrk = subprocess.Popen([args.wrk, "-t", str(args.wrk_threads), "-c", str(args.pollers),
                            "-d", f"{args.seconds}s", "--timeout", f"{args.timeout}s", "--latency",
                            "-s", LUA, f"http://127.0.0.1:{port}", "--", pairs],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=wrk_env)
    threads = [threading.Thread(target=sampler, daemon=True)]
    threads += [threading.Thread(target=uploader, args=(i,), daemon=True) for i in range(args.uploaders)]
    if polite_key:
        threads.append(threading.Thread(target=polite_poller, daemon=True))
    for t in threads:
        t.start()
    wrk_out, wrk_err = wrk.communicate()
    for t in threads[1:]:
        t.join()
    upload_end = time.monotonic()
    load1 = os.getloadavg()
    cpu_load = cpu_seconds(srv.pid) - cpu0
    mach_load = machine_busy_seconds() - mach0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)   # only wrk was reaped meanwhile
    cpu_python = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
    cpu_wrk = kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime

    m = re.search(r"^WRKJSON (\{.*\})$", wrk_out, re.M)
    if wrk.returncode != 0 or not m:
        fail(f"wrk exited {wrk.returncode}: {wrk_err[-1000:]} {wrk_out[-2000:]}")
        w = None
    else:
        w = json.loads(m.group(1))
        e = w["errors"]
        if args.limits == "off":
            for k in ("connect", "read", "write", "status", "timeout"):
                if e[k]:
                    fail(f"pollers: {e[k]} {k} errors")
        else:
            for k in ("connect", "read", "write", "timeout"):
                if e[k]:
                    fail(f"pollers: {e[k]} {k} errors")
            other = {c: n for c, n in w["statuses"].items() if c not in ("200", "429")}
            if other:
                fail(f"pollers: answers other than 200/429: {other}")

    up_err = [u for u in uploads if u[2] is None or u[2] // 100 != 2]
    for u in up_err[:10]:
        fail(f"upload by uploader {u[4]} at +{u[0]:.1f}s: HTTP {u[2]} {u[3]}")
    if len(up_err) > 10:
        fail(f"... {len(up_err)} upload errors in all")
    if polite_key:
        bad = [p for p in polite if p[1] != 200]
        if bad:
            fail(f"polite poller: {len(bad)} of {len(polite)} polls not 200: {sorted({p[1] for p in bad}, key=str)}")

    # ---- afterwards -------------------------------------------------------------------
    drain = wait_exported(port, created, time.monotonic() + args.drain_timeout, "uploads")
    stop.set()
    threads[0].join()
    if not healthy(port):
        fail("server not healthy after the load")
    if srv.poll() is not None:
        fail(f"server exited with {srv.returncode}")
    # Still answering polls correctly: every finished calibration task once more.
    for j in calib:
        j.pop("view", None)
    wait_exported(port, calib, time.monotonic() + 30, "after the load")
    st = read_status(srv.pid)

    # ---- figures ----------------------------------------------------------------------
    ok = [u for u in uploads if u[2] is not None and u[2] // 100 == 2]
    up_lat = [u[1] for u in ok]
    elapsed = upload_end - t_start
    body_bytes = sum(len(bodies[u[4]][0]) for u in ok)
    numbers = len(ok) * args.lines_per_upload
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {"host": os.uname().nodename, "cores": os.cpu_count(),
                    "kernel": os.uname().release},
        "args": vars(args),
        "limits": ("default (100 requests/s per key, burst 200, 20 open tasks)" if args.limits == "default"
                   else "off: NUMCHECK_LIMITS__REQUESTS_PER_SECOND=0, NUMCHECK_LIMITS__MAX_OPEN_TASKS=0"),
        "load_average_before": load0, "load_average_after": load1,
        "pollers": None if w is None else {
            "connections": args.pollers, "requests": w["requests"],
            "requests_per_s": w["requests"] / (w["duration_us"] / 1e6),
            "latency_ms": {"p50": w["latency_us"]["percentiles"]["50"] / 1000,
                           "p90": w["latency_us"]["percentiles"]["90"] / 1000,
                           "p99": w["latency_us"]["percentiles"]["99"] / 1000,
                           "p99.9": w["latency_us"]["percentiles"]["99.9"] / 1000,
                           "max": w["latency_us"]["max"] / 1000,
                           "mean": w["latency_us"]["mean"] / 1000},
            "errors": w["errors"], "statuses": w["statuses"]},
        "uploads": {
            "uploaders": args.uploaders, "count": len(ok), "errors": len(up_err),
            "upload_bytes": body_bytes, "seconds": elapsed,
            "mb_per_s": body_bytes / elapsed / 1e6,
            "uploads_per_s": len(ok) / elapsed,
            "numbers_accepted_per_s": numbers / elapsed,
            "latency_ms": {"p50": pct(up_lat, 50) and pct(up_lat, 50) * 1000,
                           "p99": pct(up_lat, 99) and pct(up_lat, 99) * 1000,
                           "max": max(up_lat) * 1000 if up_lat else None}},
        "tasks": {"created": len(created), "checked_exported": sum(1 for j in created if "view" in j),
                  "drain_seconds_after_load": drain,
                  "numbers_processed_per_s_load_plus_drain": numbers / (elapsed + drain)},
        "server": {"peak_rss_mib": st["VmHWM"] / 1024, "rss_end_mib": st["VmRSS"] / 1024,
                   "max_rss_during_load_mib": max((s[1] for s in samples), default=0) / 1024,
                   "threads_max": max((s[2] for s in samples), default=0),
                   "cpu_seconds_during_load": cpu_load,
                   "cpu_cores_busy_during_load": cpu_load / elapsed},
        "cpu_cores_busy_during_load": {
            "server": cpu_load / elapsed, "wrk": cpu_wrk / elapsed, "python_uploaders": cpu_python / elapsed,
            "machine": mach_load / elapsed,
            "other_processes": (mach_load - cpu_load - cpu_wrk - cpu_python) / elapsed,
            "cores": os.cpu_count()},
        "errors": errors,
    }
    if polite_key:
        lat = [p[0] for p in polite if p[1] == 200]
        res["polite_poller"] = {"polls": len(polite), "ok": len(lat),
                                "p50_ms": pct(lat, 50) and pct(lat, 50) * 1000,
                                "p99_ms": pct(lat, 99) and pct(lat, 99) * 1000,
                                "max_ms": max(lat) * 1000 if lat else None}

    p, u = res["pollers"], res["uploads"]
    print()
    print(f"load test: {args.pollers} pollers + {args.uploaders} uploaders for {args.seconds} s, "
          f"limits {args.limits}; load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    if p:
        l = p["latency_ms"]
        print(f"  pollers   {p['requests_per_s']:10,.0f} requests/s  ({p['requests']:,} requests)  "
              f"p50 {l['p50']:.1f} ms  p90 {l['p90']:.1f} ms  p99 {l['p99']:.1f} ms  max {l['max']:.1f} ms")
        print(f"            errors {p['errors']}  statuses {p['statuses'] or '(not counted)'}")
    ul = u["latency_ms"]
    print(f"  uploads   {u['count']:,} uploads ({u['uploads_per_s']:.1f}/s)  {u['mb_per_s']:.2f} MB/s  "
          f"{u['numbers_accepted_per_s']:,.0f} numbers/s accepted  "
          + (f"p50 {ul['p50']:.1f} ms  p99 {ul['p99']:.1f} ms  max {ul['max']:.1f} ms" if ok else "")
          + f"  errors {u['errors']}")
    t = res["tasks"]
    print(f"  tasks     {t['created']:,} created, {t['checked_exported']:,} exported with exact counters; "
          f"drained {t['drain_seconds_after_load']:.1f} s after the load "
          f"({t['numbers_processed_per_s_load_plus_drain']:,.0f} numbers/s processed overall)")
    if polite_key:
        q = res["polite_poller"]
        print(f"  polite    {q['ok']}/{q['polls']} polls 200, p50 {q['p50_ms'] or 0:.1f} ms, "
              f"p99 {q['p99_ms'] or 0:.1f} ms, max {q['max_ms'] or 0:.1f} ms")
    s = res["server"]
    c = res["cpu_cores_busy_during_load"]
    print(f"  server    peak RSS {s['peak_rss_mib']:.0f} MiB (VmHWM), up to {s['threads_max']} threads")
    print(f"  cpu       cores busy during the load: server {c['server']:.2f}, wrk {c['wrk']:.2f}, "
          f"uploaders (Python) {c['python_uploaders']:.2f}, other processes {c['other_processes']:.2f}, "
          f"machine {c['machine']:.2f} of {c['cores']}")
    print(f"  errors    {len(errors)}" + "".join(f"\n    {e}" for e in errors))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"figures written to {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
