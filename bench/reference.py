#!/usr/bin/env python3
"""The straightforward reference for the end-to-end benchmark: the same classification as a
numcheck active_check task, written plainly with Python `phonenumbers` and `sqlite3`.

Reads an upload file, normalises each line the way numcheck documents, parses and validates it
with libphonenumber's Python port, looks up the number's evidence profile in numcheck's SQLite
database (read-only) and applies the documented default policy (the rules, the shipped
calibration and reuse periods, the 0.97 floor). Writes `Number,ActiveStatus,
Reason,Line` rows. Used by bench/run.py for the speed ratio and as a cross-check of the verdicts.

Usage: reference.py UPLOAD DB OUT.csv [--region XX]
"""
import bisect, csv, json, math, os, re, sqlite3, struct, sys, time

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
WEEKS, RECENT = 128, 8
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Default policy (docs/evidence.md "Verdicts and reasons"), classes in storage order:
# strong_active, weak_active, neutral, weak_inactive, strong_inactive.
WEIGHTS = [3.0, 1.0, 0.0, 1.0, 3.0]
HALF_LIVES = [180.0, 90.0, 30.0, 60.0, 365.0]
DISCONNECT_HALF_LIFE, CHURN_PER_DAY, GLITCH, FLOOR = 30.0, 0.015 / 30.0, 0.002, 0.97
# Evidence kinds by index; sms_dlr, call and app_event are not authorities on a number.
NOT_AUTHORITATIVE = {0, 1, 2}
SEPARATORS = re.compile(r"[ \t\u00a0\u2007\u202f\-.()/\u2010-\u2015\u2212\u30fc]")
CALIBRATION = json.load(open(os.path.join(ROOT, "crates/numcheck-core/data/calibration.json")))


def reuse_table():
    rows = [l for l in open(os.path.join(ROOT, "crates/numcheck-core/data/reuse_periods.csv"))
            if l.strip() and not l.startswith("#")]
    return {r[0]: float(r[1]) for r in csv.reader(rows[1:])}


REUSE = reuse_table()

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


def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, i


def unzig(v):
    return (v >> 1) ^ -(v & 1)


def profile(blob):
    """The stored profile: (ref, classes [(mass, count, first, last)], last disconnect,
    authoritative, timeline [(at, class, kind)], week marks (service, absent, hard))."""
    empty = (0.0, 0, None, None)
    if len(blob) == 176:  # the fixed form of earlier releases
        w = struct.unpack("<q" + "dqqq" * 5 + "q", blob)
        opt = lambda v: None if v == -(2 ** 63) else v  # noqa: E731
        classes = [(w[1 + 4 * k], w[2 + 4 * k], opt(w[3 + 4 * k]), opt(w[4 + 4 * k])) for k in range(5)]
        return w[0], classes, opt(w[21]), False, [], (0, 0, 0)
    flags = blob[0]
    v, i = varint(blob, 1)
    ref = unzig(v)
    at = lambda d: ref - unzig(d)  # noqa: E731
    classes = [empty] * 5
    for k in range(5):
        if flags & (1 << k):
            mass = struct.unpack_from("<d", blob, i)[0]
            count, i = varint(blob, i + 8)
            first, i = varint(blob, i)
            last, i = varint(blob, i)
            classes[k] = (mass, count, at(first - 1) if first else None, at(last - 1) if last else None)
    last_disconnect = None
    if flags & (1 << 5):
        v, i = varint(blob, i)
        last_disconnect = at(v)
    n = blob[i]
    i += 1
    timeline = []
    for _ in range(n):
        v, i = varint(blob, i)
        tag = blob[i]
        i += 1
        timeline.append((at(v), tag & 7, tag >> 3))
    mask = blob[i]
    i += 1
    marks = [0, 0, 0]
    for k in range(3):
        if mask & (1 << k):
            length = blob[i]
            marks[k] = int.from_bytes(blob[i + 1:i + 1 + length], "little")
            i += 1 + length
    return ref, classes, last_disconnect, bool(flags & (1 << 6)), timeline, tuple(marks)


SIGN = {0: "service", 1: "service", 3: "absent", 4: "hard"}


def last_activity(classes):
    times = [t for t in (classes[0][3], classes[1][3]) if t is not None]
    return max(times) if times else None


def history(ref, last_disconnect, timeline, marks):
    """Newest first: the timeline exactly, then (when it is full) the week marks before it."""
    for at, cls, kind in timeline:
        if cls in SIGN:
            yield at, SIGN[cls], kind
    if len(timeline) < RECENT:
        return
    top = ref // WEEK_MS
    for i in range(top - timeline[-1][0] // WEEK_MS + 1, WEEKS):
        week, bit = top - i, 1 << i
        mid = week * WEEK_MS + WEEK_MS // 2
        if marks[2] & bit:
            hit = last_disconnect is not None and last_disconnect // WEEK_MS == week
            yield (last_disconnect if hit else mid), "hard", None
        if marks[0] & bit:
            yield mid, "service", None
        if marks[1] & bit:
            yield mid, "absent", None


def spell_of(p, newest_hard):
    ref, classes, last_disconnect, authoritative, timeline, marks = p
    latest, before, hard, first_after = newest_hard, None, 0, None
    in_spell, seen = True, 0
    for at, sign, kind in history(ref, last_disconnect, timeline, marks):
        seen += 1
        if at > newest_hard:
            if sign == "service":
                first_after = at
        elif sign == "hard":
            hard += 1
            latest = at
            authoritative |= kind is not None and kind not in NOT_AUTHORITATIVE
        else:
            before = min(at, latest)
            in_spell = False
            break
    service = last_activity(classes)
    if seen == 0:
        hard = classes[4][1]
        latest = classes[4][2] if classes[4][2] is not None else newest_hard
        before = service if service is not None and service < newest_hard else None
    elif in_spell and len(timeline) == RECENT:
        before = service if service is not None and service < latest else None
    earliest = before if before is not None else latest
    return dict(earliest=earliest, latest=latest, before=before, hard=hard,
                authoritative=authoritative, first_after=first_after, last_hard=newest_hard)


def real_disconnect(sp):
    if sp["hard"] == 1 and sp["before"] is not None and not sp["authoritative"]:
        days = max((sp["latest"] - sp["before"]) / DAY_MS, 0.0)
        churned = 1.0 - math.exp(-CHURN_PER_DAY * days)
        return churned / (churned + GLITCH)
    return 1.0


def still_dead(sp, as_of, reuse):
    def free_after(start):
        def open_from(t):
            return max((t - start) / DAY_MS - reuse, 0.0)
        exposed = open_from(as_of) - open_from(sp["last_hard"])
        return 0.5 ** (max(exposed, 0.0) / DISCONNECT_HALF_LIFE)
    early, late = sp["earliest"], sp["latest"]
    dead = (free_after(early) + 2.0 * free_after(int((early + late) / 2)) + free_after(late)) / 4.0
    return dead * real_disconnect(sp)


def propose(valid, blob, region, as_of):
    """(status, reason, raw score, aged) as the policy's rules give them."""
    if not valid:
        return "inactive", "invalid_number", 1.0, False
    p = profile(blob) if blob is not None else None
    if p is None or all(c[1] == 0 for c in p[1]):
        return "unknown", "no_evidence", 0.5, False
    ref, classes, cut = p[0], p[1], p[2]
    reuse = REUSE.get(region, REUSE["*"])
    service = last_activity(classes)
    assigned = service
    if cut is not None:
        sp = spell_of(p, cut)
        if service is None or service <= cut:
            aged = as_of > max(sp["latest"] + int(reuse * DAY_MS), sp["last_hard"])
            return "inactive", "disconnected", still_dead(sp, as_of, reuse), aged
    weak = classes[3][3]
    if assigned is not None and weak is not None and weak > assigned and (cut is None or weak > cut):
        assigned = weak

    def mass(k):
        return WEIGHTS[k] * classes[k][0] * math.exp(-((as_of - ref) / DAY_MS) / HALF_LIVES[k] * math.log(2))

    pos, neg = mass(0) + mass(1), mass(3)
    score = (pos + 1.0) / (pos + neg + 2.0)
    lean = max(score, 1.0 - score)
    count, first, last = classes[3][1], classes[3][2], classes[3][3]
    spread = first is not None and last is not None and count >= 3 and (last - first) >= 7 * DAY_MS
    if pos == 0 and neg > 0 and not spread:
        return "unknown", "temporary_failures", lean, False
    if pos + neg < 1.0:
        return "unknown", "insufficient_evidence", lean, False
    if score >= 0.75:
        held = 0.0 if assigned is None else math.exp(-CHURN_PER_DAY * max((as_of - assigned) / DAY_MS, 0.0))
        return "active", "recent_activity", held * score, False
    if score <= 0.25:
        return ("inactive", "repeated_failures", 1.0 - score, False) if spread \
            else ("unknown", "temporary_failures", lean, False)
    return "unknown", "inconclusive", lean, False


def calibrated(curve, score):
    xs, ys = curve["score"], curve["probability"]
    if not xs:
        return min(max(score, 0.0), 1.0)
    if score <= xs[0]:
        return ys[0]
    if score >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, score)
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (score - xs[i - 1]) / (xs[i] - xs[i - 1])


def decide(valid, blob, region, as_of_ms):
    status, reason, score, aged = propose(valid, blob, region, as_of_ms)
    if reason == "invalid_number":
        confidence = 1.0
    elif status in ("active", "inactive"):
        confidence = calibrated(CALIBRATION[status], score)
    else:
        confidence = score
    if status != "unknown" and confidence < FLOOR:
        return "unknown", "disconnected_long_ago" if aged else "low_confidence"
    return status, reason


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
            region_of = phonenumbers.region_code_for_number(n)
            hit = cur.execute("SELECT data FROM profiles WHERE number = ?", (int(e164[1:]),)).fetchone()
            status, reason = decide(valid, hit[0] if hit else None, region_of, as_of)
            w.writerow([e164, status, reason, line_no])
            rows += 1
    dt = time.perf_counter() - t0
    print(f'{{"rows": {rows}, "failures": {failures}, "seconds": {dt:.3f}, "per_second": {(rows + failures) / dt:.0f}}}')


if __name__ == "__main__":
    main()
