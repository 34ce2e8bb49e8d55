#!/usr/bin/env python3
"""Accuracy benchmark: how right numcheck's verdicts are on a simulated world with ground truth.

1. `numcheck demo --world DIR` writes a population, the evidence a sender sees in the shipped
   formats, and the truth (or `--world DIR` reuses one; `--world-params FILE` changes it).
2. A fresh server gets the evidence the way an operator feeds it, over HTTP:
   `POST /v1/evidence?format=smpp&err_table=map`, `?format=freeswitch`,
   `?format=deactivation`, and NDJSON rows.
3. One `active_check` task per confidence floor (the default, then each `--floors` value as the
   form field `min_confidence`) checks the world's numbers; each result zip is scored with
   `numcheck evaluate --json` against the truth.
4. Two simple rules are scored the same way from the same files, as baselines:
   - *newest receipt decides*: the newest SMS receipt of a number says `active` when delivered
     and `inactive` when not; numbers without receipts are `unknown`;
   - *any delivery in 180 days*: a delivered SMS, an answered call or an app event in the last
     180 days says `active`, anything else with evidence says `inactive`.

Prints one table (the one in docs/accuracy.md) and, with `--json FILE`, writes every figure.

    cargo build --release
    python3 bench/accuracy.py                        # the built-in world, seed 1
    python3 bench/accuracy.py --seed 7 --world-params held-back.json
"""
import argparse, csv, io, json, os, shutil, subprocess, sys, tempfile, time, urllib.request, zipfile
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchserver  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--binary", default="target/release/numcheck")
p.add_argument("--world", help="an existing world folder (default: write one)")
p.add_argument("--world-params", help="the world's parameters (JSON, as world.json)")
p.add_argument("--seed", type=int, help="the world's seed (default: the parameters', else 1)")
p.add_argument("--floors", default="0.9,0.95,0.98,0.99",
               help="min_confidence values to run beside the default (comma-separated)")
p.add_argument("--json", help="write every figure to this file")
p.add_argument("--keep", action="store_true", help="keep the temporary folder")
args = p.parse_args()

tmp = tempfile.mkdtemp(prefix="numcheck-accuracy-")
world = args.world
if not world:
    world = os.path.join(tmp, "world")
    cmd = [args.binary, "demo", "--world", world]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    if args.world_params:
        cmd += ["--world-params", args.world_params]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
f = lambda name: os.path.join(world, name)  # noqa: E731

srv, base, key = benchserver.start(args.binary, os.path.join(tmp, "data"))


def post_evidence(path, query, content_type):
    with open(path, "rb") as body:
        req = urllib.request.Request(f"{base}/v1/evidence?{query}", data=body, method="POST",
                                     headers={"X-API-Key": key, "Content-Type": content_type,
                                              "Content-Length": str(os.path.getsize(path))})
        report = json.load(urllib.request.urlopen(req, timeout=3600))
    if report.get("rejected"):
        print(f"  {os.path.basename(path)}: {report['rejected']} rows rejected, first: "
              f"{report.get('errors', [])[:1]}", file=sys.stderr)
    return report


def run_task(floor):
    cmd = ["curl", "-sS", "--fail-with-body", base + "/v1/tasks", "-H", f"X-API-Key: {key}",
           "-F", f"file=@{f('numbers.txt')}", "-F", "task_type=active_check"]
    if floor is not None:
        cmd += ["-F", f"min_confidence={floor}"]
    tid = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["task_id"]
    while True:
        req = urllib.request.Request(base + "/v1/gettasks", data=json.dumps({"task_id": tid}).encode(),
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
        v = json.load(urllib.request.urlopen(req))
        if v["status"] in ("exported", "failed"):
            break
        time.sleep(0.1)
    if v["status"] != "exported":
        sys.exit(f"task {tid} {v['status']}")
    path = os.path.join(tmp, f"result-{floor}.zip")
    with open(path, "wb") as out:
        out.write(urllib.request.urlopen(v["result_url"]).read())
    return path


def evaluate(zip_path):
    out = subprocess.run([args.binary, "evaluate", "--truth", f("truth.csv"), "--result", zip_path,
                          "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


t0 = time.perf_counter()
ingest = {
    "receipts": post_evidence(f("receipts.smpp"), "format=smpp&source=smsc&err_table=map", "text/plain"),
    "calls": post_evidence(f("calls.csv"), "format=freeswitch&source=pbx", "text/csv"),
    "deactivations": post_evidence(f("deactivations.csv"), "format=deactivation&source=carrier", "text/csv"),
    "app": post_evidence(f("app.ndjson"), "format=ndjson", "application/x-ndjson"),
}
t_ingest = time.perf_counter() - t0
floors = [None] + [float(x) for x in args.floors.split(",") if x.strip()]
results = {}
for floor in floors:
    results["numcheck" if floor is None else f"numcheck, min_confidence {floor}"] = evaluate(run_task(floor))
benchserver.stop(srv, 30)

# ---- baselines, from the same files ----
now_ms = int(time.time() * 1000)
newest_receipt = {}   # number -> (time, delivered)
recent_positive = set()
has_evidence = set()
cut = now_ms - 180 * 86_400_000


def smpp_time(text):
    return int(datetime.strptime(text, "%y%m%d%H%M").replace(tzinfo=timezone.utc).timestamp() * 1000)


with open(f("receipts.smpp")) as fh:
    for line in fh:
        number, receipt = line.rstrip("\n").split("\t", 1)
        fields = receipt.split(" text:")[0]
        stat = fields.split("stat:")[1].split()[0]
        done = smpp_time(fields.split("done date:")[1].split()[0])
        if stat in ("ENROUTE", "ACCEPTD"):
            continue
        has_evidence.add(number)
        delivered = stat == "DELIVRD"
        if number not in newest_receipt or done >= newest_receipt[number][0]:
            newest_receipt[number] = (done, delivered)
        if delivered and done >= cut:
            recent_positive.add(number)
with open(f("calls.csv"), newline="") as fh:
    for row in csv.reader(fh):
        number, end, cause, billsec = row[2], row[6], row[9], row[8]
        has_evidence.add(number)
        t = int(datetime.strptime(end, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp() * 1000)
        if cause == "NORMAL_CLEARING" and billsec not in ("", "0") and t >= cut:
            recent_positive.add(number)
with open(f("deactivations.csv"), newline="") as fh:
    for row in csv.DictReader(fh):
        has_evidence.add(row["number"])
with open(f("app.ndjson")) as fh:
    for line in fh:
        r = json.loads(line)
        has_evidence.add(r["number"])
        t = int(datetime.fromisoformat(r["observed_at"].replace("Z", "+00:00")).timestamp() * 1000)
        if t >= cut:
            recent_positive.add(r["number"])


def baseline_zip(name, verdict):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Number", "ActiveStatus", "Reason"])
    with open(f("numbers.txt")) as fh:
        for line in fh:
            n = line.strip()
            if not n:
                continue
            status = verdict(n)
            w.writerow([n, status, "no_evidence" if n not in has_evidence else "rule"])
    path = os.path.join(tmp, f"{name}.zip")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}.csv", buf.getvalue())
    return path


def newest_rule(n):
    r = newest_receipt.get(n)
    return "unknown" if r is None else ("active" if r[1] else "inactive")


def recent_rule(n):
    if n not in has_evidence:
        return "unknown"
    return "active" if n in recent_positive else "inactive"


results["newest receipt decides"] = evaluate(baseline_zip("newest-receipt", newest_rule))
results["any delivery in 180 days"] = evaluate(baseline_zip("recent-delivery", recent_rule))

# ---- report ----
def fmt(v):
    return "–" if v is None else f"{v:.3f}"


cols = list(results)
rows = [
    ("precision of `inactive`", lambda e: e["inactive"]["precision"]),
    ("precision of `active`", lambda e: e["active"]["precision"]),
    ("recall of `inactive`", lambda e: e["inactive"]["recall"]),
    ("recall of `active`", lambda e: e["active"]["recall"]),
    ("decided, among numbers with evidence", lambda e: e["decided_with_evidence"]),
    ("calibration error (decided rows, 10 bins)", lambda e: e["calibration_error"]),
    # The simple rules flag nothing: their flag figures are left blank.
    ("`PossiblyReassigned` recall",
     lambda e: e["reassigned"]["recall"] if e["reassigned"]["flagged"] else None),
    ("`PossiblyReassigned` false flags", lambda e: e["reassigned"]["false_flag_share"]),
]
print(f"world: {world} ({sum(1 for _ in open(f('numbers.txt')))} numbers); "
      f"evidence ingested over HTTP in {t_ingest:.1f}s")
print("| | " + " | ".join(cols) + " |")
print("|---|" + "---|" * len(cols))
for label, get in rows:
    print(f"| {label} | " + " | ".join(fmt(get(results[c])) for c in cols) + " |")
if args.json:
    with open(args.json, "w") as out:
        json.dump({"world": world, "ingest": ingest, "results": results}, out, indent=2)
if args.keep:
    print(f"kept {tmp}")
else:
    shutil.rmtree(tmp, ignore_errors=True)
