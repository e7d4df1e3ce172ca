"""check.py OUT FIXTURE SOURCE VERSION — judges what the installed packages
printed in the clean root of tests/packaging/run.sh (OUT, written by
in-clean-root.sh) against the source tree's own label sets and catalogue."""
import json
import os
import sys

out, fixture, source, version = sys.argv[1:5]
ours = ["libagriclip0", "libagriclip-dev", "agriclip", "gimp-plugin-agriclip"]
problems = []


def read(name):
    with open(os.path.join(out, name), encoding="utf-8") as f:
        return f.read()


def check(ok, what):
    print(("ok      " if ok else "FAILED  ") + what)
    if not ok:
        problems.append(what)


with open(os.path.join(source, "models", "labels", "plantvillage.json"), encoding="utf-8") as f:
    plantvillage = [c["name"] for c in json.load(f)["classes"]]
with open(os.path.join(source, "models", "catalogue.json"), encoding="utf-8") as f:
    catalogue = [m["name"] for m in json.load(f)["models"]]

installed = {line.split()[0]: line.split(None, 2)[1:] for line in read("installed.txt").splitlines()}
check(all(installed.get(p) == [version, "install ok installed"] for p in ours),
      f"apt installed {', '.join(ours)} {version}: {installed}")
check(read("version.txt").strip() == f"agriclip {version}",
      f"agriclip --version prints 'agriclip {version}': {read('version.txt').strip()!r}")

lines = read("classify.jsonl").splitlines()
cli = json.loads(lines[0])["labels"] if len(lines) == 1 else []
check(sorted(entry["label"] for entry in cli) == sorted(plantvillage),
      f"classify --labels plantvillage scores the installed set's {len(plantvillage)} classes")
listed = [line.split()[0] for line in read("models.txt").splitlines()[1:] if line.strip()]
check(listed == catalogue, f"models list shows the installed catalogue: {listed}")
docs = read("docs.txt").split()
check("/usr/share/bash-completion/completions/agriclip" in docs
      and "/usr/share/man/man1/agriclip.1.gz" in docs
      and "/usr/share/man/man1/agriclip-classify.1.gz" in docs,
      "bash completion and manual pages installed")

gimp = json.loads(read("gimp.json")) if os.path.exists(os.path.join(out, "gimp.json")) else {}
check("error" not in gimp, "the GIMP script ran: " + gimp.get("error", ""))
check(gimp.get("procedures") == ["plug-in-agriclip-label", "plug-in-agriclip-regions",
                                 "plug-in-agriclip-train"],
      f"GIMP lists the three AgriCLIP procedures: {gimp.get('procedures')}")
values = gimp.get("values", [])
check(gimp.get("status") == 3 and len(values) == 2,  # GIMP_PDB_SUCCESS
      f"plug-in-agriclip-label succeeded: status {gimp.get('status')}, {values}")
if len(values) == 2 and cli:
    top = max(cli, key=lambda entry: entry["p"])
    check(values[0] == top["label"] and abs(values[1] - top["p"]) <= 1e-4,
          f"GIMP's top label {values[:2]} is agriclip classify's ({top['label']}, {top['p']})")
parasite = gimp.get("parasite") or {}
labelled = [entry.get("label") for entry in parasite.get("labels", [])]
check(len(labelled) == 3 and set(labelled) <= set(plantvillage),
      f"the image's agriclip-labels parasite holds 3 PlantVillage labels: {labelled}")

# Every library our programs load must come from a package they depend on,
# directly or through other packages: GIMP, installed before ours, must not
# stand in for a Depends our packages lack.
installed_names, providers, depends = set(), {}, {}
for line in read("depends.txt").splitlines():
    name, deps, provides = (line.split("\t") + ["", ""])[:3]
    installed_names.add(name)
    depends[name] = [alt.split()[0].split(":")[0] for group in deps.split(",")
                     for alt in group.split("|") if alt.strip()]
    for virtual in provides.split(","):
        if virtual.strip():
            providers.setdefault(virtual.split()[0], []).append(name)


def closure(package):
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        for real in [name] + providers.get(name, []):
            if real in installed_names and real not in seen:
                seen.add(real)
                todo.extend(depends.get(real, []))
    return seen


owners = {}  # path: package, from dpkg -S lines "pkg[:arch][, pkg2]: /path"
for line in read("owners.txt").splitlines():
    packages, _, path = line.partition(": ")
    if path.startswith("/") and not packages.startswith("diversion"):
        owners.setdefault(path, packages.split(",")[0].split(":")[0].strip())


def owner(path, real):
    for p in (real, path, real.removeprefix("/usr"), path.removeprefix("/usr")):
        if p in owners:
            return owners[p]
    return "?"


needed = [line.split() for line in read("needed.txt").splitlines()]
strays = [f"{package}: {os.path.basename(file)} loads {soname} from {owner(path, real)}"
          for package, file, soname, path, real in needed
          if owner(path, real) not in closure(package)]
check(needed and all(p in {n[0] for n in needed} for p in ours if p != "libagriclip-dev")
      and not strays,
      f"the {len(needed)} libraries our programs load come from packages they depend on: {strays}")

before, after = read("before.txt").splitlines(), read("after.txt").splitlines()
left = sorted(set(after) - set(before))
gone = sorted(set(before) - set(after))
check(not left and not gone, f"apt-get remove restored the file tree: left {left[:10]}, gone {gone[:10]}")
files = [f for f in read("files.txt").splitlines() if f.startswith("/usr/")]
ours_only = [f for f in files if "agriclip" in f]
check(ours_only and not set(ours_only) & set(after),
      f"none of the packages' {len(ours_only)} agriclip files is left")
check(all("install ok installed" not in line for line in read("removed.txt").splitlines()),
      "the packages are no longer installed: " + read("removed.txt").strip())

print(f"{len(problems)} problems")
sys.exit(1 if problems else 0)
