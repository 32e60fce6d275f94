#!/bin/sh
# Runs a libFuzzer binary for a bounded time on a copy of its corpus (new inputs go to a
# temporary directory, never into the source tree).
# Usage: run_libfuzzer.sh FUZZER CORPUS [SECONDS [LIBFUZZER OPTION...]]
set -eu
fuzzer=$(realpath "$1")
corpus=$(realpath "$2")
seconds=${3:-20}
shift $(( $# < 3 ? $# : 3 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 "$@" "$work" "$corpus" || status=$?
exit "$status"
