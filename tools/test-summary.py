"""Prints the closing line of a meson test run ('N passed, N failed, N skipped')
from its testlog.json, lists failures, and exits 1 if any test failed or none ran."""
import json
import sys

passed, failed, skipped = 0, [], 0
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        result = json.loads(line)
        if result["result"] in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result["result"] == "SKIP":
            skipped += 1
        else:
            failed.append(result["name"])
for name in failed:
    print(f"FAILED: {name}")
print(f"{passed} passed, {len(failed)} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
