"""flatpak_steps.py MANIFEST OUT_SCRIPT — checks the GIMP Flatpak extension's
manifest (packaging/flatpak) and writes, as a shell script, the steps
flatpak-builder would run for its modules that can be built without the
Flatpak runtime: every "simple" module whose sources are archives (their
sha256 checked) and the agriclip meson module (flatpak-builder's meson
options, the manifest's config-opts and post-install).  tests/packaging/
flatpak.sh runs the script in the Debian 13 root with FLATPAK_DEST, DESTDIR,
SOURCES (downloaded archives) and WORK set; OpenBLAS comes from Debian there."""
import json
import os
import re
import shlex
import sys

manifest_path, out = sys.argv[1], sys.argv[2]
with open(manifest_path, encoding="utf-8") as f:
    m = json.load(f)
problems = []


def need(ok, what):
    if not ok:
        problems.append(what)


ID = "org.gimp.GIMP.Plugin.AgriCLIP"
PREFIX = "/app/extensions/AgriCLIP"
need(m.get("id") == ID, f"id is {ID}")
need(os.path.basename(manifest_path) == ID + ".json", "the file is named after the id")
need(m.get("runtime") == "org.gimp.GIMP" and m.get("build-extension") is True,
     "an extension of org.gimp.GIMP (build-extension)")
need(str(m.get("sdk", "")).startswith("org.gnome.Sdk//"), "the GNOME SDK, with a version")
need(m.get("build-options", {}).get("prefix") == PREFIX, f"prefix {PREFIX}")
known = {"id", "branch", "runtime", "runtime-version", "sdk", "build-extension",
         "separate-locales", "appstream-compose", "build-options", "cleanup", "modules"}
need(set(m) <= known, f"only known top-level keys: {sorted(set(m) - known)}")
modules = {mod.get("name"): mod for mod in m.get("modules", [])}
need(list(modules)[-1:] == ["agriclip"], "agriclip is the last module")
need("openblas" in modules, "OpenBLAS is built as a module (the runtime has none)")
for name, mod in modules.items():
    need(mod.get("buildsystem") in ("simple", "meson", "cmake-ninja", "autotools"),
         f"{name}: a known buildsystem")
    need(bool(mod.get("sources")), f"{name}: has sources")
    for s in mod.get("sources", []):
        if s.get("type") == "archive":
            need(len(s.get("sha256", "")) == 64 and s.get("url", "").startswith("https://"),
                 f"{name}: archive over https with sha256")
        elif s.get("type") == "git":
            # a tag can be moved: the commit pins it (flatpak-builder checks they agree)
            need(s.get("url", "").startswith("https://")
                 and re.fullmatch("[0-9a-f]{40}", s.get("commit", "")) is not None,
                 f"{name}: git source pinned by commit")
        elif s.get("type") == "dir":
            path = os.path.normpath(os.path.join(os.path.dirname(manifest_path), s["path"]))
            need(os.path.isfile(os.path.join(path, "meson.build")), f"{name}: dir source is the tree")
        else:  # every other source must be pinned too
            need(False, f"{name}: a {s.get('type')} source, whose pin this check does not know")

agriclip = modules.get("agriclip", {})
opts = agriclip.get("config-opts", [])
need(agriclip.get("buildsystem") == "meson" and "-Dgimp=enabled" in opts,
     "agriclip: meson, with the GIMP plug-in required")
tree = os.path.normpath(os.path.join(os.path.dirname(manifest_path), "../.."))
for command in agriclip.get("post-install", []):
    for word in shlex.split(command):
        if word.startswith("packaging/") or word == "LICENSE":
            need(os.path.exists(os.path.join(tree, word)), f"post-install file {word} exists")

lines = ["set -eux"]
for name, mod in modules.items():
    if mod.get("buildsystem") == "simple" and all(s.get("type") == "archive"
                                                 for s in mod["sources"]):
        for s in mod["sources"]:
            file = os.path.basename(s["url"])
            lines += [f"# module {name}",
                      f"echo '{s['sha256']}  '\"$SOURCES/{file}\" | sha256sum -c -",
                      f"rm -rf \"$WORK/{name}\" && mkdir -p \"$WORK/{name}\"",
                      f"tar -C \"$WORK/{name}\" --strip-components=1 -xf \"$SOURCES/{file}\""]
        lines += [f"(cd \"$WORK/{name}\" && {c})" for c in mod["build-commands"]]
# flatpak-builder's meson: prefix, libdir lib, release build, no downloads
lines += ["# module agriclip",
          "export PKG_CONFIG_PATH=\"$FLATPAK_DEST/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}\"",
          f"meson setup \"$WORK/agriclip-build\" --prefix={PREFIX} --libdir=lib "
          f"--buildtype=release --wrap-mode=nodownload {' '.join(map(shlex.quote, opts))}",
          "ninja -C \"$WORK/agriclip-build\" -j 2",
          "DESTDIR=\"$DESTDIR\" meson install -C \"$WORK/agriclip-build\" --no-rebuild --quiet"]
lines += agriclip.get("post-install", [])
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
for p in problems:
    print("manifest: " + p)
print(f"manifest: {len(problems)} problems; steps written to {out}")
sys.exit(1 if problems else 0)
