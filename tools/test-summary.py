"""Closing line of tools/test.sh: reads meson's testlog.json files (and NAME=ok|fail
results of other steps), lists failures, prints 'N passed, N failed, N skipped'
and exits 1 if anything failed or nothing ran."""
import json
import sys

passed, failed, skipped = 0, [], 0
for arg in sys.argv[1:]:
    if "=" in arg:
        name, result = arg.split("=", 1)
        if result == "ok":
            passed += 1
        else:
            failed.append(name)
        continue
    with open(arg, encoding="utf-8") as log:
        for line in log:
            result = json.loads(line)
            if result["result"] in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result["result"] == "SKIP":
                skipped += 1
            else:
                failed.append(f'{arg.split("/")[0]}: {result["name"]}')
for name in failed:
    print(f"FAILED: {name}")
print(f"{passed} passed, {len(failed)} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
