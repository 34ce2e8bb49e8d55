#!/usr/bin/env python3
"""Spreadsheet bombs against a release build: peak server memory while reading them.

Builds small .xlsx files that unpack to a lot (one 1.5 GiB shared string, one 1.5 GiB inline
cell, one 1.5 GiB attribute, shared strings just under and just over numcheck's bound), starts
`numcheck serve` on a fresh data folder, sends each one twice at once to the preview and twice
at once to the task create, and prints per file the answers, the time and the server's peak
RSS (VmHWM) after it. The figures go into bench/LOG.md; the bounds are in
crates/numcheck-engine/src/intake/tabular.rs (MAX_XML_RUN, MAX_SHARED_STRINGS) and
numcheck_engine::WORKBOOKS_AT_ONCE.

    python3 bench/xlsx_bombs.py [--binary target/release/numcheck] [--gib 1.5]
"""
import argparse, concurrent.futures, json, os, subprocess, sys, tempfile, time, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchserver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
</Types>"""
RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""
SHEET_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
SHEET_TAIL = "</sheetData></worksheet>"
MIB = 1 << 20


def rows(n, extra=""):
    """Sheet rows: a header, then n phone numbers (inline strings), plus `extra` in row 2."""
    out = ['<row r="1"><c r="A1" t="inlineStr"><is><t>Phone</t></is></c></row>']
    for i in range(n):
        r = i + 2
        out.append(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>+1415555{i % 10000:04d}</t></is></c>'
                   + (extra if i == 0 else "") + "</row>")
    return "".join(out)


def write_repeated(zf, name, head, unit, total, tail):
    """A part of `head`, `unit` repeated to about `total` bytes, `tail`, streamed."""
    with zf.open(name, "w", force_zip64=True) as f:
        f.write(head.encode())
        per_block = max(1, (4 * MIB) // len(unit))
        block = unit * per_block
        units = total // len(unit)
        while units > 0:
            n = min(per_block, units)
            f.write(block if n == per_block else unit * n)
            units -= n
        f.write(tail.encode())


def workbook(path, sheet=None, strings=None):
    """An .xlsx; `sheet` and `strings` are callables writing those parts (or None: small ones)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        if sheet:
            sheet(zf)
        else:
            zf.writestr("xl/worksheets/sheet1.xml", SHEET_HEAD + rows(10, '<c r="B2" t="s"><v>0</v></c>') + SHEET_TAIL)
        if strings:
            strings(zf)
        else:
            zf.writestr("xl/sharedStrings.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>note</t></si></sst>')


def build(work, gib):
    big = int(gib * 1024 * MIB)
    sst_head = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
    files = {}
    path = os.path.join(work, "shared-string.xlsx")
    workbook(path, strings=lambda zf: write_repeated(zf, "xl/sharedStrings.xml", sst_head + "<si><t>", b"x", big, "</t></si></sst>"))
    files["one shared string of %.1f GiB" % gib] = path
    path = os.path.join(work, "shared-string-arrows.xlsx")
    workbook(path, strings=lambda zf: write_repeated(zf, "xl/sharedStrings.xml", sst_head + "<si><t>", b"x>", big, "</t></si></sst>"))
    files["one shared string of %.1f GiB with `>`s" % gib] = path
    path = os.path.join(work, "inline-cell.xlsx")
    workbook(path, sheet=lambda zf: write_repeated(
        zf, "xl/worksheets/sheet1.xml", SHEET_HEAD + rows(3) + '<row r="9"><c r="B9" t="inlineStr"><is><t>',
        b"x", big, "</t></is></c></row>" + SHEET_TAIL))
    files["one inline cell of %.1f GiB" % gib] = path
    path = os.path.join(work, "attribute.xlsx")
    workbook(path, sheet=lambda zf: write_repeated(
        zf, "xl/worksheets/sheet1.xml", SHEET_HEAD + rows(3) + '<row r="9" spans="', b"1", big, '"></row>' + SHEET_TAIL))
    files["one attribute of %.1f GiB" % gib] = path
    for label, mib in [("under", 60), ("over", 70)]:
        path = os.path.join(work, f"strings-{label}.xlsx")
        # Short distinct-looking strings, as a list of names would give.
        workbook(path, strings=lambda zf, mib=mib: write_repeated(
            zf, "xl/sharedStrings.xml", sst_head, b"<si><t>Ann Example</t></si>", mib * MIB, "</sst>"))
        files[f"shared strings of {mib} MiB ({label} the bound)"] = path
    return files


def post(base, key, path, route, fields):
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", base + route, "-H", f"X-API-Key: {key}",
            "-F", f"file=@{path}"]
    for k, v in fields:
        args += ["-F", f"{k}={v}"]
    return subprocess.run(args, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/numcheck"))
    ap.add_argument("--gib", type=float, default=1.5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="numcheck-bombs-")
    print(f"work folder {work}; building the files…", flush=True)
    files = build(work, args.gib)
    srv, base, key = benchserver.start(args.binary, os.path.join(work, "data"))
    results = []
    try:
        print(f"{'file':<44} {'compressed':>11} {'preview x2':>11} {'create x2':>10} {'seconds':>8} {'peak RSS':>9}")
        print(f"{'(server at start)':<44} {'':>11} {'':>11} {'':>10} {'':>8} {benchserver.peak_rss_kib(srv.pid) / 1024:>6.0f} MiB")
        for label, path in files.items():
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                previews = [pool.submit(post, base, key, path, "/v1/tasks/preview", []) for _ in range(2)]
                creates = [pool.submit(post, base, key, path, "/v1/tasks", [("task_type", "active_check")]) for _ in range(2)]
                p = [f.result() for f in previews]
                c = [f.result() for f in creates]
            dt = time.perf_counter() - t0
            rss = benchserver.peak_rss_kib(srv.pid) / 1024
            size = os.path.getsize(path)
            results.append({"file": label, "compressed_bytes": size, "preview": p, "create": c, "seconds": dt, "peak_rss_mib": rss})
            print(f"{label:<44} {size / MIB:>8.2f} MiB {','.join(p):>11} {','.join(c):>10} {dt:>8.2f} {rss:>6.0f} MiB", flush=True)
    finally:
        benchserver.stop(srv, 30)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
