#!/bin/sh
# A test that cannot run here: prints its reason and exits 77, which meson reports as SKIP (the
# reason is in the test log), so that a missing tool never makes a test vanish silently.
# Usage: skip.sh REASON...
echo "SKIP: $*"
exit 77
