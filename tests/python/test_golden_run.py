#!/usr/bin/python3
"""`alkaidc run` reproduces the reference's published predictions (spec trace-alir.md 4.9).

The reference's legacy test models (v2 and v3 files) and their v4 upgrades, fed
numpy.random.default_rng(0).normal(size=(32, 16, 4)) as float32, give this first sample; every
file must give it, and all files must agree on all 32 samples.

Usage: /usr/bin/python3 test_golden_run.py ALKAIDC FIXTURES_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

EXPECTED_FIRST = [361.375, 361.6875, 361, 362.5, 295.875, 295.0625, 295, 295,
                  224.375, 224.6875, 224, 225.5, 347.875, 347.0625, 347, 347]
FILES = ["v2.json.gz", "v3.json.gz", "v2_upgraded.json", "v3_upgraded.json",
         "v2_upgraded.json.gz", "v3_upgraded.json.gz"]


def main():
    alkaidc, fixtures = sys.argv[1], sys.argv[2]
    x = np.random.default_rng(0).normal(size=(32, 16, 4)).astype(np.float32)
    x = x.reshape(32, 64).astype(np.float64)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.txt")
        with open(inp, "w") as fh:
            for row in x:
                fh.write(" ".join(repr(float(v)) for v in row) + "\n")
        for name in FILES:
            out = subprocess.run([alkaidc, "run", os.path.join(fixtures, "alir", name),
                                  "--input", inp], capture_output=True, text=True, check=True)
            results[name] = [[float(v) for v in line.split()] for line in out.stdout.splitlines()]
    failures = 0
    for name, rows in results.items():
        if len(rows) != 32 or rows[0] != EXPECTED_FIRST:
            print("FAIL %s: first sample %s" % (name, rows[0] if rows else None))
            failures += 1
        elif rows != results[FILES[0]]:
            print("FAIL %s: differs from %s" % (name, FILES[0]))
            failures += 1
        else:
            print("ok %s" % name)
    print("%d passed, %d failed" % (len(FILES) - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
