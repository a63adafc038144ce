#!/usr/bin/python3
"""Closing line of `make test`: counts every test of every build folder given.

Reads meson's meson-logs/testlog.json of each folder, prints one line per
failing test, then `N passed, N failed` (`, N skipped` when any) as the last
line. Exit status 1 when anything failed or nothing ran.
"""
import json
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    try:
        with open(f"{build}/meson-logs/testlog.json") as f:
            lines = [json.loads(l) for l in f if l.strip()]
    except OSError as e:
        print(f"{build}: no test log ({e})")
        failed += 1
        continue
    for t in lines:
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"FAILED [{build}] {t.get('name')}: {r}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
