#!/usr/bin/env python3
"""check-exports.py — libagriclip.so exports exactly what agriclip.h declares:
every declared function is defined (no call in the manual that does not
link), and nothing private leaks (front ends cannot come to rely on it).
Usage: check-exports.py LIBAGRICLIP.so LIBAGRICLIP.map"""
import re
import subprocess
import sys

library, version_script = sys.argv[1], sys.argv[2]
declared = set(re.findall(r"^\s+(agc_\w+);$", open(version_script).read(), re.M))
out = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True, text=True,
                     check=True).stdout
exported = {line.split()[-1].split("@")[0] for line in out.splitlines()
            if line.split() and line.split()[-1] != "AGRICLIP_0"}
problems = [f"declared in agriclip.h, not defined in the library: {n}"
            for n in sorted(declared - exported)]
problems += [f"exported but not in agriclip.h: {n}" for n in sorted(exported - declared)]
print("\n".join(problems))
print(f"{len(exported)} symbols exported, {len(declared)} declared, {len(problems)} problems")
sys.exit(1 if problems else 0)
