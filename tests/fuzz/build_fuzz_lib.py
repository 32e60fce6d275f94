#!/usr/bin/env python3
"""Compiles libalkaid's sources with clang for libFuzzer (coverage and sanitizer instrumentation,
no fuzzer main) into one static archive that every harness links, so that the library is compiled
once for all harnesses. Usage: build_fuzz_lib.py CLANG OUTPUT.a CFLAG... -- SOURCE.c...

The CMVM and SCM solvers (src/cmvm/) are not decoders: their inputs are constants a tracer has
already checked, and their searches compare and branch on the solver's own numbers millions of
times per conversion. So libFuzzer's comparison tracing (which steers no input there) is left
out of all of src/cmvm (it took half of fuzz_torch's time), and the search files (SEARCH_FILES)
carry no coverage at all: their edges made libFuzzer keep and favour every input that took a
new path through a search, filling fuzz_torch's corpus with its most expensive inputs. The
solvers' entry points, emission and caches keep their edge coverage; every file keeps ASan and
UBSan."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

SOLVER_DIR = os.sep + os.path.join("src", "cmvm") + os.sep
SEARCH_FILES = {"cse.c", "cse_conflict.c", "decompose.c", "numeric.c", "scm.c", "scm_repeat.c"}


def main():
    clang, output = sys.argv[1], sys.argv[2]
    split = sys.argv.index("--")
    cflags = sys.argv[3:split]
    sources = [s for s in sys.argv[split + 1:] if s.endswith(".c")]  # not the generated header
    objdir = output + ".objs"
    os.makedirs(objdir, exist_ok=True)
    base = [clang, "-c", "-g", "-O1", "-std=gnu11", "-fno-sanitize-recover=undefined", *cflags]

    def compile_one(item):
        index, source = item
        obj = os.path.join(objdir, f"{index}.o")
        path = os.path.abspath(source)
        if SOLVER_DIR in path and os.path.basename(path) in SEARCH_FILES:
            flags = ["-fsanitize=address,undefined"]
        elif SOLVER_DIR in path:
            flags = ["-fsanitize=fuzzer-no-link,address,undefined",
                     "-fno-sanitize-coverage=trace-cmp"]
        else:
            flags = ["-fsanitize=fuzzer-no-link,address,undefined"]
        subprocess.run(base + flags + [source, "-o", obj], check=True)
        return obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        objects = list(pool.map(compile_one, enumerate(sources)))
    if os.path.exists(output):
        os.remove(output)
    subprocess.run(["ar", "rcs", output, *objects], check=True)


if __name__ == "__main__":
    main()
