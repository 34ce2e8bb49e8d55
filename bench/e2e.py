#!/usr/bin/env python3
"""End-to-end throughput of numcheck: upload a generated file over HTTP, wait for the export,
download the zip. Prints the figures; asserts nothing about speed.

Usage: bench/e2e.py [--binary target/release/numcheck] [--lines 1000000] [--workers N]
Build first: cargo build --release
"""
import argparse, io, json, os, random, subprocess, sys, tempfile, time, urllib.request, zipfile

import benchserver

ap = argparse.ArgumentParser()
ap.add_argument("--binary", default="target/release/numcheck")
ap.add_argument("--lines", type=int, default=1_000_000)
ap.add_argument("--workers", type=int, default=0, help="worker tasks (0: server default)")
ap.add_argument("--chunk-lines", type=int, default=0)
args = ap.parse_args()

def mixed(n, seed=7):
    """Mixed countries and formats, 10% duplicates, 3% blank, 2% garbage."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        k = r.random()
        if k < 0.03: out.append("")
        elif k < 0.05: out.append(r.choice(["not a number", "+999 123", "n/a", "---"]))
        elif k < 0.15 and out: out.append(out[r.randrange(len(out))] or "+14155552671")
        elif k < 0.40: out.append("+1 %03d %03d %04d" % (r.choice([212, 415, 646, 305, 702]), r.randrange(200, 999), r.randrange(10000)))
        elif k < 0.55: out.append("+44 7%03d %06d" % (r.randrange(400, 999), r.randrange(10**6)))
        elif k < 0.70: out.append("0049 1%02d %07d" % (r.choice([51, 52, 60, 70, 76]), r.randrange(10**7)))
        elif k < 0.80: out.append("+33 6 %02d %02d %02d %02d" % tuple(r.randrange(100) for _ in range(4)))
        elif k < 0.90: out.append("+86 13%d %04d %04d" % (r.randrange(10), r.randrange(10**4), r.randrange(10**4)))
        else: out.append("+91 9%04d %05d" % (r.randrange(10**4), r.randrange(10**5)))
    return ("\n".join(out) + "\n").encode()

tmp = tempfile.mkdtemp(prefix="numcheck-bench-")
t0 = time.perf_counter(); data = mixed(args.lines); gen = time.perf_counter() - t0
path = os.path.join(tmp, "numbers.txt"); open(path, "wb").write(data)
env = {}
if args.workers: env["NUMCHECK_WORKER__CONCURRENCY"] = str(args.workers)
if args.chunk_lines: env["NUMCHECK_WORKER__CHUNK_LINES"] = str(args.chunk_lines)
srv, base, key = benchserver.start(args.binary, os.path.join(tmp, "data"), env)
base_rss = benchserver.peak_rss_kib(srv.pid)

t0 = time.perf_counter()
up = subprocess.run(["curl", "-sS", base + "/v1/tasks", "-H", f"X-API-Key: {key}", "-F", f"file=@{path}", "-F", "task_type=active_check"],
                    capture_output=True, text=True, check=True)
t_up = time.perf_counter() - t0
created = json.loads(up.stdout)
tid = created["task_id"]
while True:
    g = subprocess.run(["curl", "-sS", base + "/v1/gettasks", "-H", f"X-API-Key: {key}", "-F", f"task_id={tid}"], capture_output=True, text=True)
    v = json.loads(g.stdout)
    if v["status"] in ("exported", "failed"): break
    time.sleep(0.02)
t_done = time.perf_counter() - t0
zbytes = urllib.request.urlopen(v["result_url"]).read()
t_all = time.perf_counter() - t0
rows = sum(1 for _ in io.TextIOWrapper(zipfile.ZipFile(io.BytesIO(zbytes)).open(f"{tid}.csv"))) - 1
peak = benchserver.finish(srv, 30)

print(f"lines in file          {args.lines:>12,}   ({len(data)/1e6:.1f} MB, generated in {gen:.1f}s)")
print(f"total / success / fail {v['total']:>12,} / {v['success']:,} / {v['failure']:,}   (csv rows {rows:,})")
print(f"upload (HTTP create)   {t_up:>12.2f} s   {v['total']/t_up:>12,.0f} numbers/s")
print(f"create -> exported     {t_done:>12.2f} s   {v['total']/t_done:>12,.0f} numbers/s")
print(f"end to end incl. zip   {t_all:>12.2f} s   {v['total']/t_all:>12,.0f} numbers/s   (zip {len(zbytes)/1e6:.1f} MB)")
print(f"server peak RSS        {peak/1024:>12.1f} MiB (idle {base_rss/1024:.1f} MiB)")
