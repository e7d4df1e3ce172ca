#!/usr/bin/env python3
"""check-layers.py — the include rules of the source tree, checked.

core/ is layered: a file may include headers of its own folder and of
folders of a lower rank (RANKS), never of a peer or a higher one; every
folder may include the public header (core/include/agriclip.h).  Front ends
(cli/, plugin/, synth/, ui/) may include only the public header and their
own folder's headers; cli/ also the synth library's one header, plugin/
the headers of ui/ (SHARED).
Prints each broken rule and exits 1 if there is one."""
import fnmatch
import os
import re
import sys

RANKS = {"support": 0, "formats": 1, "text": 2, "images": 2, "kernels": 3, "nn": 4,
         "models": 5, "zeroshot": 6, "train": 7, "tagging": 7, "hub": 8}
FRONT_ENDS = ("cli", "plugin", "synth", "ui")
# Headers of another front end that a front end may include: the synth
# library's public header, for `agriclip synth`; the plug-in uses the GTK
# widgets of ui/ (all its headers).
SHARED = {"cli": ("synth.h",), "plugin": ("ui/*.h",)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def core_rules(root):
    problems = []
    core = os.path.join(root, "core")
    for folder in sorted(os.listdir(core)):
        path = os.path.join(core, folder)
        if not os.path.isdir(path) or folder == "include":
            continue
        if folder not in RANKS:
            problems.append(f"core/{folder}: a folder without a rank in {__file__}")
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            text = open(os.path.join(path, name), encoding="utf-8").read()
            for target in INCLUDE.findall(text):
                if target in ("agriclip.h", "config.h"):
                    continue
                other = target.split("/")[0] if "/" in target else None
                if other is None:
                    problems.append(f"core/{folder}/{name}: includes \"{target}\" without its folder")
                elif other not in RANKS:
                    problems.append(f"core/{folder}/{name}: includes \"{target}\", not a core folder")
                elif other != folder and RANKS[other] >= RANKS[folder]:
                    problems.append(f"core/{folder}/{name}: {folder} (rank {RANKS[folder]}) "
                                    f"includes {target} ({other}, rank {RANKS[other]})")
    return problems


def front_end_rules(root):
    problems = []
    for front in FRONT_ENDS:
        top = os.path.join(root, front)
        if not os.path.isdir(top):
            continue
        own = {n for n in os.listdir(top) if n.endswith(".h")}
        for shared in SHARED.get(front, ()):
            folder, _, pattern = shared.rpartition("/")
            if folder and os.path.isdir(os.path.join(root, folder)):
                own |= {n for n in os.listdir(os.path.join(root, folder))
                        if fnmatch.fnmatch(n, pattern)}
            elif not folder:
                own.add(shared)
        for name in sorted(os.listdir(top)):
            if not name.endswith((".c", ".h")):
                continue
            text = open(os.path.join(top, name), encoding="utf-8").read()
            for target in INCLUDE.findall(text):
                if target not in own and target not in ("agriclip.h", "config.h"):
                    problems.append(f"{front}/{name}: includes \"{target}\" (a front end uses "
                                    "only the public header agriclip.h and its own headers)")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    problems = core_rules(root) + front_end_rules(root)
    for p in problems:
        print(p)
    print(f"{len(problems)} broken include rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
