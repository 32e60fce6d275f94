#!/bin/sh
# Runs a libFuzzer binary for a bounded time on a copy of its corpus (new inputs go to a
# temporary directory, never into the source tree). A crash's reproducer is kept in
# $FUZZ_ARTIFACTS (default: fuzz-artifacts/ in the directory the script was started from, the
# build directory under meson) and its path printed.
# Usage: run_libfuzzer.sh FUZZER CORPUS [SECONDS [LIBFUZZER OPTION...]]
# (-jobs=N -workers=N runs N fuzzing processes on the corpus; their logs are printed at the end.)
set -eu
fuzzer=$(realpath "$1")
corpus=$(realpath "$2")
seconds=${3:-20}
shift $(( $# < 3 ? $# : 3 ))
artifacts=${FUZZ_ARTIFACTS:-$(pwd)/fuzz-artifacts}
mkdir -p "$artifacts"
artifacts=$(realpath "$artifacts")
# A 16 MB quarantine (ASan's default is 256 MB) and 5-frame allocation stacks: with the
# default, every allocation of the JSON readers (one per number) lands on a fresh page and the
# ALIR harness runs at a third of the speed; use-after-free is still caught within 16 MB.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=5}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts/$(basename "$fuzzer")-" -print_final_stats=1 "$@" \
    "$work" "$corpus" || status=$?
# With -jobs=N each fuzzing process writes its log to fuzz-JOB.log here: show them.
for log in "$work"/fuzz-*.log; do
    if [ -e "$log" ]; then
        echo "==> $(basename "$log")"
        cat "$log"
    fi
done
if [ "$status" -ne 0 ]; then
    echo "run_libfuzzer.sh: $(basename "$fuzzer") failed; reproducers in $artifacts:" >&2
    ls -l "$artifacts" >&2 || true
fi
exit "$status"
