"""Fails when a checked-in generated file differs from what the build generates from schemas/
(docs/protocol.md, the Python client's _schema.py). Usage: check_generated.py GENERATED CHECKED..."""
import sys

args = sys.argv[1:]
stale = []
for generated, checked in zip(args[::2], args[1::2]):
    with open(generated, "rb") as a, open(checked, "rb") as b:
        if a.read() != b.read():
            stale.append(checked)
if stale:
    print("out of date with schemas/: " + ", ".join(stale))
    print("regenerate with: ninja -C build protocol-doc")
    sys.exit(1)
print("generated files are current")
