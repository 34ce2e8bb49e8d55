#!/usr/bin/env python3
"""libphonenumber's answer for every line of a plan corpus: the reference numcheck must match.

Reads a corpus of `REGION<TAB>TEXT` lines (bench/plan_corpus.py) and writes, per line,
`REGION<TAB>ANSWER<TAB>TEXT` (the format of crates/numcheck-core/tests/fixtures/
plan_agreement.tsv). ANSWER is computed by Python `phonenumbers` (the same metadata release as
rlibphonenumber 2.2.15: 9.0.42) on the SAME canonical input numcheck's plan sees after its
normaliser, which the Rust example `plan_canonical` prints (run through cargo unless
--canonical names its output):

- `norm:<code>`: numcheck's normaliser refuses the line; libphonenumber is not asked (the
  agreement test still checks numcheck gives that error);
- `err:<code>`: libphonenumber refuses it; its error mapped onto numcheck's `LineError` codes
  (INVALID_COUNTRY_CODE -> unknown_country_code, NOT_A_NUMBER -> not_a_number,
  TOO_SHORT_AFTER_IDD / TOO_SHORT_NSN -> too_short, TOO_LONG -> too_long);
- `ok:<E.164>:<valid|invalid>:<line type>:<region>`: parsed; line type and region only when
  valid (`unknown` and empty otherwise), as numcheck's `Checked` reports them.

The rules around libphonenumber are numcheck's (src/plan.rs): `+`/`00` digits are parsed as
"+" + digits with no region; national digits with the line's region; national digits without
a region are accepted only when "+" + digits is a valid number (else national_without_region);
an E.164 form longer than 15 digits is too_long.

    pip install phonenumbers==9.0.42
    python3 bench/plan_reference.py /tmp/plan_corpus.tsv --out /tmp/plan_answers.tsv
"""

import argparse
import multiprocessing
import os
import subprocess
import sys

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

EXPECTED_VERSION = "9.0.42"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}

TYPES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

MAX_E164_DIGITS = 15


def checked(n):
    e164 = phonenumbers.format_number(n, PhoneNumberFormat.E164)
    if len(e164) - 1 > MAX_E164_DIGITS:
        return "err:too_long"
    valid = phonenumbers.is_valid_number(n)
    if valid:
        line_type = TYPES.get(phonenumbers.number_type(n), "unknown")
        region = phonenumbers.region_code_for_number(n) or ""
        return "ok:%s:valid:%s:%s" % (e164, line_type, region)
    return "ok:%s:invalid:unknown:" % e164


def answer(region, kind, value):
    if kind == "E":
        return "norm:" + value
    try:
        if kind == "I":
            return checked(phonenumbers.parse("+" + value, None))
        if region:
            return checked(phonenumbers.parse(value, region))
        # No region: accepted only as a valid number whose `+` was lost.
        try:
            n = phonenumbers.parse("+" + value, None)
        except NumberParseException:
            return "err:national_without_region"
        if not phonenumbers.is_valid_number(n):
            return "err:national_without_region"
        return checked(n)
    except NumberParseException as e:
        return "err:" + ERRORS[e.error_type]


def answer_chunk(rows):
    return [answer(region, kind, value) for region, kind, value in rows]


def canonical_lines(corpus, canonical):
    if canonical:
        with open(canonical, "rb") as f:
            return f.read().decode("ascii").splitlines()
    cmd = ["cargo", "run", "--quiet", "--release", "-p", "numcheck-core",
           "--example", "plan_canonical", "--", os.path.abspath(corpus)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout
    return out.decode("ascii").splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--canonical", help="plan_canonical's output for the corpus (default: run it)")
    ap.add_argument("--out", help="output file (default: stdout)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    if phonenumbers.__version__ != EXPECTED_VERSION:
        sys.exit("plan_reference.py: need phonenumbers==%s (found %s)"
                 % (EXPECTED_VERSION, phonenumbers.__version__))

    with open(args.corpus, "rb") as f:
        data = f.read()
    records = data[:-1].split(b"\n") if data.endswith(b"\n") else data.split(b"\n")
    if records == [b""]:
        records = []
    canon = canonical_lines(args.corpus, args.canonical)
    if len(canon) != len(records):
        sys.exit("plan_reference.py: %d corpus lines but %d canonical lines"
                 % (len(records), len(canon)))

    rows = []
    for record, c in zip(records, canon):
        region = record.split(b"\t", 1)[0].decode("ascii") if b"\t" in record else ""
        kind, value = c.split("\t", 1)
        rows.append((region, kind, value))

    size = 5000
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
    if args.jobs > 1 and len(chunks) > 1:
        with multiprocessing.Pool(args.jobs) as pool:
            answers = [a for part in pool.map(answer_chunk, chunks) for a in part]
    else:
        answers = [a for part in map(answer_chunk, chunks) for a in part]

    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    buf = []
    for record, (region, _, _), a in zip(records, rows, answers):
        text = record.split(b"\t", 1)[1] if b"\t" in record else record
        buf.append(region.encode("ascii") + b"\t" + a.encode("ascii") + b"\t" + text + b"\n")
    out.write(b"".join(buf))
    out.flush()


if __name__ == "__main__":
    main()
