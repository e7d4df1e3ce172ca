"""test_i18n.py — the translation chain: sources → po/POTFILES → po/de.po →
the built and the installed catalog → German output of `agriclip`.

Expected German text is read from the catalog with Python's own gettext
module (an independent .mo reader), never written into this file.  The CLI
runs under a real German locale (de_DE.UTF-8; generated with localedef into
a temporary LOCPATH when the system has none, which needs Debian's
`locales` package) and finds the catalog through AGRICLIP_LOCALEDIR.  A
German locale must not change data output: CSV and JSON numbers keep '.'.
"""

import csv
import gettext
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
SOURCE_DIR = os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
DOMAIN = "agriclip"
# Folders whose sources may mark strings; core/ messages are not marked yet.
MARKED_DIRS = ("cli", "plugin", "core", "synth")
# xgettext keywords of meson's 'glib' preset
KEYWORDS = ["_", "N_", "C_:1c,2", "NC_:1c,2", "g_dcgettext:2", "g_dngettext:2,3",
            "g_dpgettext2:2c,3"]


def run(args, env, expect=None):
    p = subprocess.run([AGRICLIP] + args, env=env, capture_output=True, text=True,
                       timeout=300)
    if expect is not None and p.returncode != expect:
        raise AssertionError(f"agriclip {' '.join(args)}: exit {p.returncode}, "
                             f"expected {expect}\n{p.stderr}")
    return p


def german_locale(tmp):
    """(LC_ALL value, LOCPATH or None) of a UTF-8 German locale."""
    names = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    for name in names:
        if name.startswith("de_") and name.lower().endswith((".utf8", ".utf-8")):
            return name, None
    locpath = os.path.join(tmp, "locales")
    os.makedirs(locpath)
    p = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8",
                        os.path.join(locpath, "de_DE.UTF-8")],
                       capture_output=True, text=True)
    if not os.path.isdir(os.path.join(locpath, "de_DE.UTF-8")):
        raise AssertionError("no German locale and localedef failed (install Debian's "
                             "'locales' package, see tools/install-deps.sh):\n" + p.stderr)
    return "de_DE.UTF-8", locpath


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE", "LOCPATH")}
    env.pop("AGRICLIP_LOCALEDIR", None)
    return env


class I18nTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert AGRICLIP and BUILD_DIR, "run through meson test (AGRICLIP, AGC_BUILD_DIR)"
        cls.tmp = tempfile.mkdtemp(prefix="agc-i18n-")
        cls.build_catalog = os.path.join(BUILD_DIR, "po", "de", "LC_MESSAGES", DOMAIN + ".mo")
        with open(cls.build_catalog, "rb") as f:
            cls.de = gettext.GNUTranslations(f)
        lc_all, locpath = german_locale(cls.tmp)
        cls.env_de = base_env()
        cls.env_de.update(LC_ALL=lc_all, LANGUAGE="de",
                          AGRICLIP_LOCALEDIR=os.path.join(BUILD_DIR, "po"))
        if locpath:
            cls.env_de["LOCPATH"] = locpath
        cls.env_c = base_env()
        cls.env_c["LC_ALL"] = "C"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def german(self, msgid):
        text = self.de.gettext(msgid)
        self.assertNotEqual(text, msgid, f"de.po does not translate {msgid!r}")
        return text

    # ---- the catalog sources ------------------------------------------------

    def test_potfiles_lists_every_marked_source(self):
        with open(os.path.join(SOURCE_DIR, "po", "POTFILES"), encoding="utf-8") as f:
            listed = {line.strip() for line in f if line.strip() and not line.startswith("#")}
        for path in sorted(listed):
            self.assertTrue(os.path.isfile(os.path.join(SOURCE_DIR, path)),
                            f"po/POTFILES lists missing {path}")
        mark = re.compile(r"(?<![A-Za-z0-9_])N?C?_\s*\(")
        for d in MARKED_DIRS:
            for path in glob.glob(os.path.join(SOURCE_DIR, d, "**", "*.[ch]"), recursive=True):
                rel = os.path.relpath(path, SOURCE_DIR)
                with open(path, encoding="utf-8") as f:
                    if mark.search(f.read()):
                        self.assertIn(rel, listed, f"{rel} marks strings but is not in "
                                                   "po/POTFILES")

    def test_de_po_is_valid_and_complete(self):
        po = os.path.join(SOURCE_DIR, "po", "de.po")
        p = subprocess.run(["msgfmt", "-c", "--statistics", "-o", "/dev/null", po],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"\d+ translated messages?\.\n?$")
        self.assertNotIn("fuzzy", p.stderr)
        self.assertNotIn("untranslated", p.stderr)
        with open(os.path.join(SOURCE_DIR, "po", "LINGUAS"), encoding="utf-8") as f:
            self.assertIn("de", f.read().split())

    def test_every_marked_message_is_translated(self):
        """What xgettext finds in the sources today, not a stale .pot."""
        pot = os.path.join(self.tmp, "now.pot")
        args = ["xgettext", "--from-code=UTF-8", "--language=C", "-o", pot,
                "--directory", SOURCE_DIR, "--files-from",
                os.path.join(SOURCE_DIR, "po", "POTFILES")]
        args += ["--keyword=" + k for k in KEYWORDS]
        p = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        merged = os.path.join(self.tmp, "now.po")
        p = subprocess.run(["msgmerge", "--quiet", "--no-fuzzy-matching", "-o", merged,
                            os.path.join(SOURCE_DIR, "po", "de.po"), pot],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run(["msgattrib", "--untranslated", "--no-obsolete", merged],
                           capture_output=True, text=True, check=True)
        missing = p.stdout.split("\n\n", 1)[1] if "\n\n" in p.stdout else ""
        self.assertEqual(missing.strip(), "", "po/de.po lacks these messages (run 'ninja "
                         "agriclip-update-po' and translate them):\n" + missing)

    # ---- the CLI in German --------------------------------------------------

    def test_help_is_german(self):
        out = run(["classify", "--help"], self.env_de, expect=0).stdout
        for msgid in ("Label images with the most probable classes of a label set",
                      "Model folder",
                      "How many labels per image (default 5)",
                      "Output format: csv (default) or jsonl"):
            self.assertIn(self.german(msgid), out)
            self.assertNotIn(msgid, out)
        out = run(["--help"], self.env_de, expect=0).stdout
        self.assertIn(self.german("Label images with the most probable classes of a label "
                                  "set"), out)

    def test_usage_errors_are_german(self):
        err = run(["classify", "--model", "m", "--labels", "x", "--top", "0", "a.png"],
                  self.env_de, expect=2).stderr
        self.assertIn("agriclip: " + self.german("--top must be at least 1") + "\n", err)
        self.assertIn(self.german("Try 'agriclip %s --help'.\n") % "classify", err)
        err = run(["frobnicate"], self.env_de, expect=2).stderr
        self.assertIn(self.german("agriclip: unknown command '%s'\n") % "frobnicate", err)

    def test_english_without_a_german_locale(self):
        env = dict(self.env_c, AGRICLIP_LOCALEDIR=self.env_de["AGRICLIP_LOCALEDIR"])
        err = run(["classify", "--model", "m", "--labels", "x", "--top", "0", "a.png"],
                  env, expect=2).stderr
        self.assertIn("agriclip: --top must be at least 1\n", err)

    def test_german_locale_keeps_numbers_in_c_format(self):
        model = os.path.join(self.tmp, "model")
        clip_twin.make_model(model, seed=3, image_size=32)
        image = os.path.join(self.tmp, "red.png")
        Image.new("RGB", (32, 32), (200, 30, 20)).save(image)
        for fmt in ("csv", "jsonl"):
            args = ["classify", "--model", model, "--label", "tomato", "--label", "wheat",
                    "--format", fmt, image]
            out_de = run(args, self.env_de, expect=0).stdout
            out_c = run(args, self.env_c, expect=0).stdout
            self.assertEqual(out_de, out_c)
            if fmt == "csv":
                rows = list(csv.DictReader(io.StringIO(out_de)))
                probs = [float(r["p"]) for r in rows]
            else:
                probs = [label["p"] for line in out_de.splitlines()
                         for label in json.loads(line)["labels"]]
            self.assertEqual(len(probs), 2, out_de)
            self.assertAlmostEqual(sum(probs), 1.0, places=5)

    # ---- the installed catalog ----------------------------------------------

    def test_meson_install_puts_the_catalog_in_place(self):
        dest = os.path.join(self.tmp, "dest")
        p = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--no-rebuild", "--quiet",
                            "--destdir", dest, "--tags", "i18n"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        found = glob.glob(os.path.join(dest, "**", "de", "LC_MESSAGES", DOMAIN + ".mo"),
                          recursive=True)
        self.assertEqual(len(found), 1, found)
        self.assertTrue(found[0].endswith(os.path.join("share", "locale", "de", "LC_MESSAGES",
                                                       DOMAIN + ".mo")), found[0])
        localedir = os.path.dirname(os.path.dirname(os.path.dirname(found[0])))
        env = dict(self.env_de, AGRICLIP_LOCALEDIR=localedir)
        err = run(["frobnicate"], env, expect=2).stderr
        self.assertIn(self.german("agriclip: unknown command '%s'\n") % "frobnicate", err)


if __name__ == "__main__":
    unittest.main()
