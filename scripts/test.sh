#!/usr/bin/env bash
# The whole test suite: a plain build with every test (unit, Python oracles), the mutation
# check (tests/mutation: each planted bug must fail two tests), then an address+undefined-
# sanitizer build with the unit tests, a thread-sanitizer build with the daemon tests, then the
# clang-format check.
# Run scripts/setup.sh first (the README's test command does both).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== plain build: all tests"
ninja -C build >/dev/null
meson test -C build --print-errorlogs --num-processes 2

echo "== mutation check: every planted bug of tests/mutation/mutants caught by two tests"
# A scratch copy in build-mutation/, built incrementally (the first run builds it once).
nice /usr/bin/python3 tests/mutation/run_mutants.py

echo "== address + undefined sanitizers: unit tests"
if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite unit --print-errorlogs --num-processes 2

echo "== thread sanitizer: the daemon under concurrent requests"
# The RSS-based checks (rpc_malformed, rpc_control) only mean something without a sanitizer's
# shadow memory, and the end-to-end suite is too slow under TSAN; these cover the daemon's
# threads: queue, deadlines, cancellation, resends, farm and broker, the CLI.
if [ ! -f build-tsan/build.ninja ]; then
    meson setup build-tsan -Db_sanitize=thread -Db_lundef=false >/dev/null
fi
ninja -C build-tsan >/dev/null
TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
    meson test -C build-tsan --print-errorlogs --num-processes 2 \
    rpc_protocol rpc_jobs rpc_farm rpc_cli

echo "== clang-format"
unformatted=$(git ls-files '*.c' '*.h' | xargs clang-format --style=file --dry-run 2>&1 | \
    grep -c 'warning:' || true)
if [ "$unformatted" -ne 0 ]; then
    git ls-files '*.c' '*.h' | xargs clang-format --style=file --dry-run 2>&1 | head -20
    echo "clang-format: $unformatted lines need formatting (run clang-format -i)"
    exit 1
fi
echo "all test stages passed"
