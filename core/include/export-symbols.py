#!/usr/bin/env python3
"""export-symbols.py — the linker version script of libagriclip.so, made from
the public header: the functions agriclip.h declares are exported, every
other symbol stays inside the library.  The header is the one list of what
is public.  Usage: export-symbols.py agriclip.h OUTPUT.map"""
import re
import sys

header, output = sys.argv[1], sys.argv[2]
text = open(header, encoding="utf-8").read()
text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments (examples call functions)
text = re.sub(r"#define[^\n]*(\\\n[^\n]*)*", "", text)
# a declaration: a return type, the name, "(", ending in ");" — not a call
names = sorted(set(re.findall(r"\b(agc_[a-z0-9_]+)\s*\([^;{]*\)\s*;", text)))
if not names:
    sys.exit(f"{header}: no agc_ function declarations found")
with open(output, "w", encoding="utf-8") as f:
    f.write("AGRICLIP_0 {\n  global:\n")
    f.writelines(f"    {n};\n" for n in names)
    f.write("  local:\n    *;\n};\n")
