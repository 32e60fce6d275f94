#!/usr/bin/python3
"""The reference core's recorded CMVM and SCM solutions (tests/data/cmvm/, README.md there)
against `alkaidc cmvm` / `alkaidc scm` in compat mode, op for op, through the command line: a
second path to the solvers besides the Criterion tests (test_cmvm.c, test_scm.c), so that a
tie-break change in either solver fails two independent tests.

* CMVM: every case whose inputs use the default interval and latency (the CLI's `--qint` sets
  one interval for all inputs): `--stage0`/`--stage1` write the stages as the solver returns
  them; each is printed in the golden text form (floats rounded to float32, %.9g, as the
  reference's driver printed them) and compared line for line.
* SCM: every case; `-o` writes a runnable program whose intervals and costs are recomputed, so
  the comparison covers the structure: every op's opcode, operands and shift, and the output's
  index, shift and sign.

Usage: /usr/bin/python3 test_solver_goldens.py ALKAIDC DATA_DIR [--max-per-file N]
(--max-per-file: only the first N cases of each file, for a quick run.)
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

CASE = re.compile(r"case\n(.*?)\nexpect\n(.*?)end\n", re.S)


def read(path):
    with open(path, "rb") as fh:
        raw = fh.read()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()


def f32(v):
    return "%.9g" % float(np.float32(v))


def stage_text(doc):
    """A stage (ALIR JSON) in the golden file's text form."""
    m = doc["model"]
    lines = ["stage %d %d %d" % (m[0][0], m[0][1], len(m[5]))]
    for name, values in (("inp_shifts", m[1]), ("out_idxs", m[2]), ("out_shifts", m[3]),
                         ("out_negs", [int(v) for v in m[4]])):
        lines.append(" ".join([name] + [str(v) for v in values]))
    for addr, opcode, data, qint, latency, cost in m[5]:
        if opcode == -1:
            ids, d = (data[0], -1), 0
        else:
            ids, d = (addr[0], addr[1]), data[0]
        lines.append("op %d %d %d %d %s" % (opcode, ids[0], ids[1], d,
                                            " ".join(f32(v) for v in list(qint) + [latency, cost])))
    return "\n".join(lines) + "\n"


def structure(text):
    """The op and output fields of a golden SCM stage (no intervals, latencies, costs)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[0] == "op":
            out.append(" ".join(words[:5]))
        elif words[0] in ("out_idxs", "out_shifts", "out_negs", "stage"):
            out.append(line)
    return out


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), proc.returncode, proc.stderr))


def check_cmvm(alkaidc, tmp, name, head, want):
    words = head.split("\n")[0].split()
    n, m = int(words[1]), int(words[2])
    m0, m1, hdc, ddc, search, hasq = words[3:9]
    if hasq != "0":
        return None  # per-input intervals and latencies: only the Criterion test can set them
    kernel = os.path.join(tmp, "kernel.txt")
    with open(kernel, "w") as fh:
        fh.write("\n".join(head.split("\n")[1:1 + n]) + "\n")
    s0, s1 = os.path.join(tmp, "s0.json"), os.path.join(tmp, "s1.json")
    cmd = [alkaidc, "cmvm", kernel, "--mode", "compat", "--method0", m0, "--method1", m1,
           "--hard-dc", hdc, "--decompose-dc", ddc, "--threads", "2", "--stage0", s0,
           "--stage1", s1]
    if search == "0":
        cmd.append("--no-search")
    run(cmd)
    got = "result 2\n"
    for path in (s0, s1):
        with open(path) as fh:
            got += stage_text(json.load(fh))
    if got != want:
        g, w = got.splitlines(), want.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
        return "%s %dx%d %s/%s: line %d differs:\n  got:  %s\n  want: %s" % (
            name, n, m, m0, m1, line + 1, g[line] if line < len(g) else "(end)",
            w[line] if line < len(w) else "(end)")
    return "ok"


def check_scm(alkaidc, tmp, name, head, want):
    _, c, k, lo, hi, step = head.split()
    out = os.path.join(tmp, "scm.json")
    run([alkaidc, "scm", c, "--mode", "compat", "--k", k, "--qint", "%s,%s,%s" % (lo, hi, step),
         "-o", out])
    with open(out) as fh:
        got = structure(stage_text(json.load(fh)))
    expected = structure(want.split("\n", 1)[1])
    if got != expected:
        return "%s: constant %s k=%s:\n  got:  %s\n  want: %s" % (
            name, c, k, " | ".join(got), " | ".join(expected))
    return "ok"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("alkaidc")
    parser.add_argument("data")
    parser.add_argument("--max-per-file", type=int, default=None)
    args = parser.parse_args()
    alkaidc, data, first = args.alkaidc, args.data, args.max_per_file
    failures, counts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("golden_cmvm.txt", "golden_cmvm_more.txt.gz"):
            for head, want in CASE.findall(read(os.path.join(data, name)))[:first]:
                result = check_cmvm(alkaidc, tmp, name, head, want)
                if result is not None:
                    counts["cmvm"] = counts.get("cmvm", 0) + 1
                    if result != "ok":
                        failures.append(result)
        for name in ("golden_scm.txt", "golden_scm_reference_tests.txt.gz"):
            for head, want in CASE.findall(read(os.path.join(data, name)))[:first]:
                counts["scm"] = counts.get("scm", 0) + 1
                result = check_scm(alkaidc, tmp, name, head, want)
                if result != "ok":
                    failures.append(result)
    for f in failures[:10]:
        print("FAIL " + f)
    print("%d CMVM and %d SCM cases compared, %d differ from the reference" % (
        counts.get("cmvm", 0), counts.get("scm", 0), len(failures)))
    if first is None and (counts.get("cmvm", 0) < 40 or counts.get("scm", 0) < 1000):
        print("FAIL: fewer golden cases than expected (files missing or unparsed?)")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
