#!/usr/bin/env python3
"""Deterministic corpus of upload lines for the numbering plan's agreement and speed checks.

Writes N lines of `REGION<TAB>TEXT` (REGION empty for most lines: no default region) to stdout
or --out. TEXT is what a user's upload line holds: E.164 numbers of many countries (valid and
invalid ranges), formatted numbers, national numbers for a default region, `00` and IDD
prefixes, numbers a spreadsheet mangled, random digit strings of 1-20 digits with and without
`+`, and garbage (letters, symbols, non-ASCII, invalid UTF-8). TEXT never holds a newline or a
carriage return; it may hold tabs (split on the first tab only).

Same --seed and --lines, same bytes: the generator uses its own seeded RNG and the metadata of
the pinned `phonenumbers` release (pip install phonenumbers==9.0.42) for realistic ranges.

    python3 bench/plan_corpus.py --lines 1000000 --seed 1 --out /tmp/plan_corpus.tsv
"""

import argparse
import random
import sys

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

EXPECTED_VERSION = "9.0.42"

TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]

# Countries that dominate real uploads get more weight; every region appears.
HEAVY = ["US", "GB", "DE", "FR", "IN", "BR", "MX", "IT", "ES", "RU", "CN", "JP", "AU", "CA",
         "NG", "ID", "PH", "AR", "KZ", "TR", "ZA", "NL", "PL", "UA", "SA", "AE", "EG", "PK"]


def examples():
    """(cc, nsn, region) for every example number of every type of every region/entity."""
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for t in TYPES:
            n = phonenumbers.example_number_for_type(region, t)
            if n is not None:
                out.append((n.country_code, phonenumbers.national_significant_number(n), region))
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        for t in TYPES:
            md = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(cc)
            desc = phonenumbers.phonenumberutil._number_desc_by_type(md, t)
            if desc is not None and desc.example_number:
                out.append((cc, desc.example_number, "001"))
    return out


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.examples = examples()
        self.by_region = {}
        for ex in self.examples:
            self.by_region.setdefault(ex[2], []).append(ex)
        self.regions = sorted(phonenumbers.SUPPORTED_REGIONS)
        self.codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)

    # --- numbers -------------------------------------------------------------------------

    def example(self):
        r = self.r
        if r.random() < 0.5:
            region = r.choice(HEAVY)
            pool = self.by_region.get(region) or self.examples
            return r.choice(pool)
        return r.choice(self.examples)

    def mutate(self, nsn):
        """Vary an example: mostly the last digits (stays in range), sometimes worse."""
        r = self.r
        d = list(nsn)
        roll = r.random()
        if roll < 0.70:
            k = r.randint(1, min(4, len(d)))
            for i in range(len(d) - k, len(d)):
                d[i] = r.choice("0123456789")
        elif roll < 0.80:
            i = r.randrange(len(d))
            d[i] = r.choice("0123456789")
        elif roll < 0.88:
            d.append(r.choice("0123456789"))  # one too long
        elif roll < 0.94 and len(d) > 2:
            d.pop()  # one too short
        else:
            d = [r.choice("0123456789") for _ in range(len(d))]
        return "".join(d)

    def number(self):
        cc, nsn, region = self.example()
        nsn = self.mutate(nsn) if self.r.random() < 0.9 else nsn
        return cc, nsn, region

    def parsed(self, cc, nsn):
        n = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
        zeros = len(nsn) - len(nsn.lstrip("0"))
        if zeros and len(nsn) > 1:
            n.italian_leading_zero = True
            if zeros > 1:
                n.number_of_leading_zeros = min(zeros, len(nsn) - 1)
        return n

    # --- decorations ---------------------------------------------------------------------

    def separators(self, digits):
        r = self.r
        sep = r.choice([" ", "-", ".", " ", "/", "\u00a0", "\u2013"])
        out = []
        i = 0
        while i < len(digits):
            k = r.randint(2, 4)
            out.append(digits[i:i + k])
            i += k
        text = sep.join(out)
        if r.random() < 0.2 and len(out) > 1:
            text = "(" + out[0] + ") " + sep.join(out[1:])
        return text

    def wrap(self, text):
        r = self.r
        roll = r.random()
        if roll < 0.04:
            return '"' + text + '"'
        if roll < 0.07:
            return "'" + text
        if roll < 0.12:
            return "  " + text + " "
        if roll < 0.14:
            return "\t" + text
        return text

    # --- line kinds ----------------------------------------------------------------------

    def e164(self):
        cc, nsn, _ = self.number()
        return "", "+%d%s" % (cc, nsn)

    def formatted(self):
        r = self.r
        cc, nsn, region = self.number()
        n = self.parsed(cc, nsn)
        roll = r.random()
        if roll < 0.45:
            text = phonenumbers.format_number(n, PhoneNumberFormat.INTERNATIONAL)
        elif roll < 0.65:
            text = "+%d %s" % (cc, self.separators(nsn))
        elif roll < 0.85:
            text = "00%d %s" % (cc, self.separators(nsn))
        else:
            text = "00 %d %s" % (cc, nsn)
        return "", self.wrap(text)

    def national(self):
        """A national number with (mostly) its own region as the default region."""
        r = self.r
        cc, nsn, region = self.number()
        if region == "001":
            region = r.choice(HEAVY)
        n = self.parsed(cc, nsn)
        roll = r.random()
        if roll < 0.45:
            text = phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL)
        elif roll < 0.60:
            text = nsn
        elif roll < 0.70:
            # Prefixed with the region's national prefix (or a stray 0 / 8 / 1).
            md = phonenumbers.PhoneMetadata.metadata_for_region(region)
            prefix = (md.national_prefix if md is not None and md.national_prefix else
                      r.choice(["0", "8", "1"]))
            text = prefix + nsn
        elif roll < 0.78:
            # Starts with the region's own calling code, without `+`.
            text = "%d%s" % (cc, nsn)
        elif roll < 0.86:
            # The region's IDD and another country's number (011 44 ... from the US).
            md = phonenumbers.PhoneMetadata.metadata_for_region(region)
            idd = (md.preferred_international_prefix or md.international_prefix or "00"
                   if md is not None else "00")
            if not idd.isdigit():
                idd = r.choice(["00", "011", "010", "810", "001", "0011", "000", "009"])
            cc2, nsn2, _ = self.number()
            text = "%s%d%s" % (idd, cc2, nsn2)
        elif roll < 0.93:
            # Wrong region for the number.
            region = r.choice(self.regions)
            text = phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL)
        else:
            text = self.separators(nsn)
        return region, self.wrap(text)

    def lost_plus(self):
        """E.164 digits a spreadsheet stripped of `+`, no region."""
        r = self.r
        cc, nsn, _ = self.number()
        digits = "%d%s" % (cc, nsn)
        roll = r.random()
        if roll < 0.7:
            return "", digits
        if roll < 0.85 and len(digits) >= 7:
            return "", digits + ".0"
        if len(digits) >= 2:
            mant = digits[0] + "." + digits[1:].rstrip("0")
            if mant.endswith("."):
                mant = mant[:-1] + ".0"
            return "", "%sE%s%d" % (mant, r.choice(["", "+"]), len(digits) - 1)
        return "", digits

    def random_digits(self):
        r = self.r
        n = r.randint(1, 20)
        digits = "".join(r.choice("0123456789") for _ in range(n))
        roll = r.random()
        region = r.choice(self.regions) if r.random() < 0.3 else ""
        if roll < 0.4:
            return region, "+" + digits
        if roll < 0.55:
            return region, "00" + digits
        if roll < 0.65:
            cc = r.choice(self.codes)
            return region, "+%d%s" % (cc, digits[: max(1, n - 3)])
        return region, digits

    def short_and_odd(self):
        """Corner cases of the parser: calling codes alone, one-digit NSNs, national prefixes."""
        r = self.r
        cc = r.choice(self.codes)
        tail = "".join(r.choice("0123456789") for _ in range(r.randint(0, 4)))
        roll = r.random()
        if roll < 0.1:
            # Italian leading zeros, up to and past ten of them.
            zeros = "0" * r.randint(1, 13)
            return (r.choice(["", "IT", "SM"]),
                    "+%d%s%d" % (r.choice([39, 379, 882, 800, 225, 242]), zeros, r.randint(1, 99)))
        roll = (roll - 0.1) / 0.9
        if roll < 0.4:
            return "", "+%d%s" % (cc, tail)
        region = r.choice(self.regions)
        if roll < 0.7:
            return region, "%d%s" % (cc, tail)
        return region, "0" + tail + "".join(r.choice("0123456789") for _ in range(r.randint(0, 12)))

    def garbage(self):
        r = self.r
        choices = [
            "not a number", "N/A", "-", "---", "+", "++1 415 555 2671", "+1+2", "tel",
            "+1 800 FLOWERS", "1-800-GOT-JUNK", "call me", "0", "00", "000", "+0",
            "\u00c9mile", "\u260e 415 555 2671", "12ab34", "#123", "*21#", "1e5",
            "1.5E3", "+44 (0) 20 7946 0018", "\uff0b\uff14\uff14\u3000\uff12\uff10",
            "+1 (415) 555-2671 ext. 22", "+1 415 555 2671 x22", "$100", "1,000,000",
            "=+14155552671", "14155552671;", "+1\u2212415\u2212555\u22122671",
        ]
        roll = r.random()
        if roll < 0.6:
            text = r.choice(choices)
        elif roll < 0.8:
            alphabet = "0123456789+-() ./abcxyzABC#*,;:!?\u00e9\u4e2d\uff11"
            text = "".join(r.choice(alphabet) for _ in range(r.randint(1, 25)))
        elif roll < 0.9:
            text = "+" + "".join(r.choice("0123456789") for _ in range(r.randint(21, 40)))
        else:
            raw = bytes(r.randrange(256) for _ in range(r.randint(1, 12)))
            raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
            return "", raw
        region = r.choice(self.regions) if r.random() < 0.2 else ""
        return region, text

    KINDS = [
        ("e164", 0.30),
        ("formatted", 0.14),
        ("national", 0.18),
        ("lost_plus", 0.10),
        ("random_digits", 0.16),
        ("short_and_odd", 0.06),
        ("garbage", 0.06),
    ]

    def line(self):
        roll = self.r.random()
        for kind, weight in self.KINDS:
            roll -= weight
            if roll < 0:
                break
        region, text = getattr(self, kind)()
        if isinstance(text, str):
            text = text.encode("utf-8")
        text = text.replace(b"\n", b" ").replace(b"\r", b" ")
        return region.encode("ascii") + b"\t" + text + b"\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="output file (default: stdout)")
    args = ap.parse_args()
    if phonenumbers.__version__ != EXPECTED_VERSION:
        sys.exit("plan_corpus.py: need phonenumbers==%s (found %s)"
                 % (EXPECTED_VERSION, phonenumbers.__version__))
    gen = Gen(args.seed)
    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    buf = []
    for _ in range(args.lines):
        buf.append(gen.line())
        if len(buf) >= 10000:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    out.flush()


if __name__ == "__main__":
    main()
