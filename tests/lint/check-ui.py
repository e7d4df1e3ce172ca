#!/usr/bin/env python3
"""check-ui.py — ui/ stays free of GIMP: no GIMP header or name in its
sources, and no GIMP, GEGL or babl symbol among what the built library
(argument 2) needs from elsewhere (nm --undefined-only).  ui/ is for any GTK
program; plugin/ is where GIMP comes in.  Prints each problem, exits 1 if
there is one."""
import os
import re
import subprocess
import sys

FORBIDDEN_SOURCE = re.compile(r"libgimp|<gimp|\bgimp_\w+|\bGimp[A-Z]\w*|\bGIMP_\w+|\bgegl_|\bbabl_")
FORBIDDEN_SYMBOL = re.compile(r"^(gimp|gegl|babl|_gimp)", re.I)


def main():
    root, library = sys.argv[1], sys.argv[2]
    problems = []
    ui = os.path.join(root, "ui")
    for name in sorted(os.listdir(ui)):
        if not name.endswith((".c", ".h")):
            continue
        for number, line in enumerate(open(os.path.join(ui, name), encoding="utf-8"), 1):
            if FORBIDDEN_SOURCE.search(line):
                problems.append(f"ui/{name}:{number}: GIMP in ui/: {line.strip()}")
    out = subprocess.run(["nm", "--undefined-only", "--format=just-symbols", library],
                         capture_output=True, text=True, check=True).stdout
    symbols = {s for s in out.split() if not s.endswith(":")}
    for symbol in sorted(symbols):
        if FORBIDDEN_SYMBOL.match(symbol):
            problems.append(f"{os.path.basename(library)}: needs the GIMP symbol {symbol}")
    if not any(s.startswith("gtk_") for s in symbols):
        problems.append(f"{library}: no GTK symbol at all: is this the ui library?")
    for p in problems:
        print(p)
    print(f"{len(problems)} GIMP uses in ui/ ({len(symbols)} undefined symbols checked)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
