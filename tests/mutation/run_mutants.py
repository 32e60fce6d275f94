#!/usr/bin/python3
"""The mutation check (issue 17): plants each bug of tests/mutation/mutants/ in a scratch copy
of the tree, rebuilds it incrementally, runs the tests the mutant names, and fails unless every
mutant is caught by at least two of them (so that a refactor cannot quietly weaken an oracle).

A mutant file (NN-name.mut) holds comment lines (#), `file:` (where the code was when the
mutant was written; the mutated text is searched for in src/, daemon/ and client/, so a moved
file does not break it), `tests:` (`;`-separated meson test names, each optionally followed by
arguments for that test), and one or more `--- find` / `--- replace` blocks closed by
`--- end`. Whitespace in a find block matches any whitespace, and each block must match exactly
once. See tests/mutation/README.md.

The scratch copy lives in SCRATCH (default build-mutation/ in the source tree, ignored by git):
SCRATCH/tree holds the tracked and untracked-but-not-ignored files of the tree (only changed
files are copied, so the build stays incremental), SCRATCH/shared links to the fixtures of
../shared, and SCRATCH/tree/build is its meson build. The first run builds everything once.

Usage: run_mutants.py [--scratch DIR] [--needs N] [MUTANT...]   (names or file stems)
Exit status: 0 every mutant caught by N (default 2) tests; 1 otherwise or on an error.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SEARCHED = ("src", "daemon", "client")
# Not needed by any targeted test and slow to rebuild (clang with sanitizers).
SKIPPED_TARGETS = ("fuzz_request_libfuzzer",)


class MutantError(Exception):
    pass


def parse_mutant(path):
    name = os.path.splitext(os.path.basename(path))[0]
    tests, blocks, mode, find, replace = [], [], None, [], []
    with open(path) as fh:
        for line in fh.read().splitlines():
            if mode is None:
                if line.startswith("#") or not line.strip() or line.startswith("file:"):
                    continue
                if line.startswith("tests:"):
                    for part in line[len("tests:"):].split(";"):
                        words = part.split()
                        if words:
                            tests.append((words[0], words[1:]))
                    continue
            if line == "--- find":
                if mode == "replace":
                    blocks.append(("\n".join(find), "\n".join(replace)))
                mode, find, replace = "find", [], []
            elif line == "--- replace":
                mode = "replace"
            elif line == "--- end":
                blocks.append(("\n".join(find), "\n".join(replace)))
                mode = "end"
            elif mode == "find":
                find.append(line)
            elif mode == "replace":
                replace.append(line)
            elif mode != "end":
                raise MutantError("%s: unexpected line %r" % (path, line))
    if not tests or not blocks or mode != "end":
        raise MutantError("%s: needs a tests: line and find/replace blocks closed by --- end"
                          % path)
    return {"name": name, "tests": tests, "blocks": blocks}


def pattern(text):
    """The find text as a regex in which any run of whitespace matches any whitespace."""
    parts = [re.escape(p) for p in text.strip().split()]
    return re.compile(r"[ \t]*" + r"\s+".join(parts))


def source_files(tree):
    for top in SEARCHED:
        for dirpath, _, files in os.walk(os.path.join(tree, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.join(dirpath, f)


def locate(tree, find):
    """(path, match) of the one place the find text occurs in the searched sources."""
    regex = pattern(find)
    hits = []
    for path in source_files(tree):
        with open(path) as fh:
            text = fh.read()
        hits += [(path, m) for m in regex.finditer(text)]
    if len(hits) != 1:
        raise MutantError("the text %r occurs %d times in %s (exactly once is needed: update "
                          "the mutant)" % (find.strip()[:60], len(hits), "/".join(SEARCHED)))
    return hits[0]


def sync(scratch):
    """Copies the tree's files into scratch/tree (changed ones only) and removes stale ones."""
    tree = os.path.join(scratch, "tree")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    wanted = set()
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue  # deleted but still in the index
        wanted.add(rel)
        dst = os.path.join(tree, rel)
        with open(src, "rb") as fh:
            data = fh.read()
        if os.path.exists(dst):
            with open(dst, "rb") as fh:
                if fh.read() == data and os.stat(dst).st_mode == os.stat(src).st_mode:
                    continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as fh:
            fh.write(data)
        shutil.copymode(src, dst)
    for dirpath, dirs, files in os.walk(tree):
        if dirpath == tree and "build" in dirs:
            dirs.remove("build")
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), tree)
            if rel not in wanted:
                os.unlink(os.path.join(dirpath, f))
    shared = os.path.join(scratch, "shared")
    if not os.path.exists(shared):
        os.symlink(os.path.realpath(os.path.join(ROOT, "..", "shared")), shared)
    return tree


def build(tree):
    """Configures once, then builds every target the tests can need (incrementally)."""
    build_dir = os.path.join(tree, "build")
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        subprocess.run(["meson", "setup", build_dir, tree], check=True, stdout=subprocess.DEVNULL)
    targets = json.loads(subprocess.run(["meson", "introspect", "--targets", build_dir],
                                        capture_output=True, check=True).stdout)
    # Run targets (protocol-doc writes into the source tree) are not built.
    outputs = [os.path.relpath(f, build_dir) for t in targets
               if t["type"] != "run" and t["name"] not in SKIPPED_TARGETS for f in t["filename"]]
    r = subprocess.run(["nice", "ninja", "-C", build_dir] + outputs, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise MutantError("the build failed:\n" + r.stdout[-3000:])
    return build_dir


def run_test(build_dir, name, args):
    cmd = ["meson", "test", "-C", build_dir, "--no-rebuild", "--print-errorlogs", name]
    if args:
        cmd.append("--test-args=" + " ".join(args))  # "=": the args may start with --
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if "No suitable tests defined" in r.stdout + r.stderr:
        raise MutantError("no test named %s" % name)
    return r.returncode != 0, time.monotonic() - start


def run_tests(build_dir, tests):
    """{(name, args): (failed, seconds)} for the tests, three at a time (many wait on
    subprocesses and sockets more than they compute)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {(name, tuple(args)): pool.submit(run_test, build_dir, name, args)
                   for name, args in tests}
        return {key: f.result() for key, f in futures.items()}


def check(mutant, tree):
    """Applies the mutant, builds, runs its tests; returns the names of the tests that failed."""
    originals = {}
    try:
        for find, replace in mutant["blocks"]:
            path, match = locate(tree, find)
            if path not in originals:
                with open(path) as fh:
                    originals[path] = fh.read()
            with open(path) as fh:
                text = fh.read()
            with open(path, "w") as fh:
                fh.write(text[:match.start()] + replace + text[match.end():])
        build_dir = build(tree)
        results = {key[0]: value for key, value in run_tests(build_dir, mutant["tests"]).items()}
    finally:
        for path, text in originals.items():
            with open(path, "w") as fh:
                fh.write(text)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scratch", default=os.path.join(ROOT, "build-mutation"))
    parser.add_argument("--needs", type=int, default=2,
                        help="tests that must catch each mutant (default 2)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip running the targeted tests on the unmutated tree first")
    parser.add_argument("mutants", nargs="*")
    args = parser.parse_args()
    paths = sorted(os.path.join(HERE, "mutants", f) for f in os.listdir(os.path.join(HERE,
                                                                                      "mutants"))
                   if f.endswith(".mut"))
    if args.mutants:
        paths = [p for p in paths if any(m in os.path.basename(p) for m in args.mutants)]
    start = time.monotonic()
    survivors = 0
    try:
        mutants = [parse_mutant(p) for p in paths]
        os.makedirs(args.scratch, exist_ok=True)
        tree = sync(os.path.abspath(args.scratch))
        # The unmutated tree first: every targeted test must pass on it, or a "catch" would
        # mean nothing.
        build_dir = build(tree)
        if not args.no_baseline:
            tests = sorted({(n, tuple(a)) for m in mutants for n, a in m["tests"]})
            broken = [" ".join((n,) + a) for (n, a), (failed, _) in
                      run_tests(build_dir, [(n, list(a)) for n, a in tests]).items() if failed]
            if broken:
                raise MutantError("these tests fail without a mutant (see %s/meson-logs): %s"
                                  % (build_dir, "; ".join(broken)))
            print("baseline: the %d targeted tests pass unmutated (%.0f s)"
                  % (len(tests), time.monotonic() - start), flush=True)
        for mutant in mutants:
            t0 = time.monotonic()
            results = check(mutant, tree)
            caught = [n for n, (failed, _) in results.items() if failed]
            ok = len(caught) >= min(args.needs, len(results))
            survivors += not ok
            print("%s %-40s caught by %d of %d: %s  (%.0f s)" % (
                "ok  " if ok else "FAIL", mutant["name"], len(caught), len(results),
                ", ".join("%s%s (%.0f s)" % (n, "" if results[n][0] else " PASSED", results[n][1])
                          for n in results), time.monotonic() - t0), flush=True)
    except (MutantError, subprocess.CalledProcessError) as e:
        print("mutation check: error: %s" % e, file=sys.stderr)
        return 1
    print("%d mutants, %d not caught by %d tests, %.0f s" % (
        len(paths), survivors, args.needs, time.monotonic() - start))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
