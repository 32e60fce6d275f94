#!/usr/bin/env python3
"""Compiles libalkaid's sources with clang for libFuzzer (coverage and sanitizer instrumentation,
no fuzzer main) into one static archive that every harness links, so that the library is compiled
once for all harnesses. Usage: build_fuzz_lib.py CLANG OUTPUT.a CFLAG... -- SOURCE.c...

The CMVM and SCM solvers (src/cmvm/) keep their edge coverage but not libFuzzer's comparison
tracing: their loops compare numbers of a search millions of times per conversion, and the
tracing of those comparisons (which steers no input: the operands are the solver's own) took
half of fuzz_torch's time."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def main():
    clang, output = sys.argv[1], sys.argv[2]
    split = sys.argv.index("--")
    cflags = sys.argv[3:split]
    sources = [s for s in sys.argv[split + 1:] if s.endswith(".c")]  # not the generated header
    objdir = output + ".objs"
    os.makedirs(objdir, exist_ok=True)
    base = [clang, "-c", "-g", "-O1", "-std=gnu11", "-fsanitize=fuzzer-no-link,address,undefined",
            "-fno-sanitize-recover=undefined", *cflags]

    def compile_one(item):
        index, source = item
        obj = os.path.join(objdir, f"{index}.o")
        solver = os.sep + os.path.join("src", "cmvm") + os.sep in os.path.abspath(source)
        extra = ["-fno-sanitize-coverage=trace-cmp"] if solver else []
        subprocess.run(base + extra + [source, "-o", obj], check=True)
        return obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        objects = list(pool.map(compile_one, enumerate(sources)))
    if os.path.exists(output):
        os.remove(output)
    subprocess.run(["ar", "rcs", output, *objects], check=True)


if __name__ == "__main__":
    main()
