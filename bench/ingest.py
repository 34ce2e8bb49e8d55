#!/usr/bin/env python3
"""Evidence ingest throughput over HTTP: POST a generated CSV of N observations to
/v1/evidence on a fresh release server, then the same body again (all duplicates).
Prints figures; asserts nothing about speed.

Usage: bench/ingest.py [--binary target/release/numcheck] [--rows 1000000]
"""
import argparse, json, os, random, subprocess, sys, tempfile, time, urllib.request

import benchserver

ap = argparse.ArgumentParser()
ap.add_argument("--binary", default="target/release/numcheck")
ap.add_argument("--rows", type=int, default=1_000_000)
args = ap.parse_args()

r = random.Random(3)
now = int(time.time())
codes = [("sms_dlr", "DELIVRD"), ("sms_dlr", "EXPIRED"), ("sms_dlr", "UNDELIV"), ("call", "ANSWER"),
         ("call", "404"), ("hlr", "CONNECTED"), ("hlr", "ABSENT"), ("app_event", "login")]
lines = ["number,observed_at,source,kind,raw_code,message_id"]
for i in range(args.rows):
    kind, code = r.choice(codes)
    number = "+1%03d555%04d" % (r.choice([212, 415, 646, 305, 702, 312, 617, 206]), r.randrange(100, 200))
    if r.random() < 0.7:
        number = "+4915%d%07d" % (r.randrange(1, 8), r.randrange(10**7))
    lines.append(f"{number},{now - r.randrange(365 * 86400)},src-{r.randrange(8)},{kind},{code},m{i}")
body = ("\n".join(lines) + "\n").encode()

tmp = tempfile.mkdtemp(prefix="numcheck-ingest-")
srv, base, key = benchserver.start(args.binary, os.path.join(tmp, "data"))

def post():
    req = urllib.request.Request(base + "/v1/evidence", data=body, method="POST",
                                 headers={"X-API-Key": key, "Content-Type": "text/csv"})
    t0 = time.perf_counter(); out = json.loads(urllib.request.urlopen(req, timeout=600).read()); return time.perf_counter() - t0, out

t1, first = post()
t2, second = post()
peak = benchserver.finish(srv, 60)
print(f"rows                 {args.rows:>10,}  ({len(body)/1e6:.1f} MB CSV)")
print(f"first post           {t1:>10.2f} s  {args.rows/t1:>10,.0f} rows/s  inserted {first['inserted']:,} rejected {first['rejected']:,}")
print(f"same body again      {t2:>10.2f} s  {args.rows/t2:>10,.0f} rows/s  inserted {second['inserted']:,} duplicates {second['duplicates']:,}")
print(f"server peak RSS      {peak/1024:>10.1f} MiB")
