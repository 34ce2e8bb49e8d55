#!/usr/bin/env python3
"""The straightforward reference for the end-to-end benchmark: the same classification as a
numcheck active_check task, written plainly with Python `phonenumbers` and `sqlite3`.

Reads an upload file, normalises each line the way numcheck documents, parses and validates it
with libphonenumber's Python port, looks up the number's evidence profile in numcheck's SQLite
database (read-only) and applies the documented default policy. Writes `Number,ActiveStatus,
Reason,Line` rows. Used by bench/run.py for the speed ratio and as a cross-check of the verdicts.

Usage: reference.py UPLOAD DB OUT.csv [--region XX]
"""
import csv, math, re, sqlite3, struct, sys, time

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

DAY_MS = 86_400_000
# Default policy (README "Verdicts and reasons"), classes in storage order:
# strong_active, weak_active, neutral, weak_inactive, strong_inactive.
WEIGHTS = [3.0, 1.0, 0.0, 1.0, 3.0]
HALF_LIVES = [180.0, 90.0, 30.0, 60.0, 365.0]
SEPARATORS = re.compile(r"[ \t\u00a0\u2007\u202f\-.()/\u2010-\u2015\u2212\u30fc]")


def normalise(line):
    t = line.strip()
    for q in ('"', "'"):
        if len(t) >= 2 and t[0] == q and t[-1] == q:
            t = t[1:-1].strip()
    if t.startswith("'"):
        t = t[1:].lstrip()
    t = SEPARATORS.sub("", t)
    plus = t.startswith("+")
    body = t[1:] if plus else t
    if not body.isdigit() or not body.isascii():
        return None
    if len(body) > 20:
        return None
    if plus:
        return ("intl", body)
    if body.startswith("00"):
        return ("intl", body[2:]) if len(body) > 2 else None
    return ("nat", body)


def parse(kind, digits, region):
    try:
        if kind == "intl":
            return phonenumbers.parse("+" + digits, None)
        if region:
            return phonenumbers.parse(digits, region)
        n = phonenumbers.parse("+" + digits, None)
        return n if phonenumbers.is_valid_number(n) else None
    except NumberParseException:
        return None


def decide(valid, blob, as_of_ms):
    if not valid:
        return "inactive", "invalid_number"
    if blob is None:
        return "unknown", "no_evidence"
    w = struct.unpack("<q" + "dqqq" * 5 + "q", blob)
    ref = w[0]
    cls = [(w[1 + 4 * k], w[2 + 4 * k], w[3 + 4 * k], w[4 + 4 * k]) for k in range(5)]
    none = -(2 ** 63)
    last_disconnect = w[21]
    last_strong = cls[0][3]
    if last_disconnect != none and (last_strong == none or last_strong <= last_disconnect):
        return "inactive", "disconnected"

    def mass(k):
        return WEIGHTS[k] * cls[k][0] * math.exp(-((as_of_ms - ref) / DAY_MS) / HALF_LIVES[k] * math.log(2))

    pos, neg = mass(0) + mass(1), mass(3)
    score = (pos + 1.0) / (pos + neg + 2.0)
    count, first, last = cls[3][1], cls[3][2], cls[3][3]
    spread = first != none and count >= 3 and (last - first) >= 7 * DAY_MS
    if pos == 0 and neg > 0 and not spread:
        return "unknown", "temporary_failures"
    if pos + neg < 1.0:
        return "unknown", "insufficient_evidence"
    if score >= 0.75:
        return "active", "recent_activity"
    if score <= 0.25:
        return ("inactive", "repeated_failures") if spread else ("unknown", "temporary_failures")
    return "unknown", "inconclusive"


def main():
    upload, db, out = sys.argv[1:4]
    region = sys.argv[sys.argv.index("--region") + 1] if "--region" in sys.argv else None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cur = con.cursor()
    as_of = int(time.time() * 1000)
    t0 = time.perf_counter()
    rows = failures = 0
    with open(upload, encoding="utf-8-sig", errors="replace") as f, open(out, "w", newline="") as o:
        w = csv.writer(o, lineterminator="\n")
        w.writerow(["Number", "ActiveStatus", "Reason", "Line"])
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            d = normalise(line)
            n = parse(*d, region) if d else None
            if n is None:
                failures += 1
                continue
            e164 = phonenumbers.format_number(n, PhoneNumberFormat.E164)
            if len(e164) > 16:
                failures += 1
                continue
            valid = phonenumbers.is_valid_number(n)
            phonenumbers.number_type(n)
            phonenumbers.region_code_for_number(n)
            hit = cur.execute("SELECT data FROM profiles WHERE number = ?", (int(e164[1:]),)).fetchone()
            status, reason = decide(valid, hit[0] if hit else None, as_of)
            w.writerow([e164, status, reason, line_no])
            rows += 1
    dt = time.perf_counter() - t0
    print(f'{{"rows": {rows}, "failures": {failures}, "seconds": {dt:.3f}, "per_second": {(rows + failures) / dt:.0f}}}')


if __name__ == "__main__":
    main()
