#!/bin/sh
# Checks the systemd files: `systemd-analyze verify` on the unit (its ExecStart points at the
# build tree's alkaidd) must pass without a single diagnostic about it, and systemd-sysusers must
# accept the sysusers entry (dry run in a scratch root). Usage: check_systemd.sh UNIT SYSUSERS
# Without systemd's tools the check is skipped (exit 77, meson's SKIP) and says why.
set -eu
unit=$1
sysusers=$2
for tool in systemd-analyze systemd-sysusers; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (Debian package systemd); the unit is not verified"
        exit 77
    fi
done
out=$(systemd-analyze verify "$unit" 2>&1) || { echo "$out"; echo "verify failed"; exit 1; }
name=$(basename "$unit")
if printf '%s\n' "$out" | grep -q "$name"; then
    printf '%s\n' "$out"
    echo "systemd-analyze verify reports problems in $name"
    exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
systemd-sysusers --dry-run --root="$root" "$sysusers" >/dev/null 2>"$root/err" || {
    cat "$root/err"; exit 1; }
if grep -q . "$root/err" && ! grep -q "^Creating\|^Would" "$root/err"; then
    cat "$root/err"
    exit 1
fi
echo "unit and sysusers entry verified"
