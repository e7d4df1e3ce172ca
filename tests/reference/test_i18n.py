"""test_i18n.py — the translation chain: sources → po/POTFILES → po/LANG.po
for every language of po/LINGUAS → the built and the installed catalogs →
`agriclip` output in each language, and installed label sets' display names
(models/labels/display-names.pot) through agc_label_set_class_translated_name.

Expected text is read from the catalogs with Python's own gettext module (an
independent .mo reader), never written into this file.  The CLI runs under a
real locale of each language (generated with localedef into a temporary
LOCPATH when the system has none, which needs Debian's `locales` package) and
finds the catalogs through AGRICLIP_LOCALEDIR.  A German locale must not
change data output: CSV and JSON numbers keep '.'.
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
import ctypes  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
SOURCE_DIR = os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
DOMAIN = "agriclip"
# Folders whose sources may mark strings; core/ messages are not marked yet.
MARKED_DIRS = ("cli", "plugin", "core", "synth", "ui")
LABEL_CONTEXT = "label-set class"  # of the display names, see tools/label-names-pot.py
# The locale each language runs under when the system has none of it
# (a language of po/LINGUAS without a territory needs one here).
DEFAULT_TERRITORY = {"de": "de_DE", "es": "es_ES", "fr": "fr_FR", "hi": "hi_IN"}
# printf directives and label-set template slots, which translations keep
PLACEHOLDER = re.compile(r"%(?:\d+\$)?[-#0 +']*\d*(?:\.\d+)?(?:<PRI[a-z0-9]+>|h{0,2}l{0,2}z?[diouxXfFeEgGcsp%])|\{\}")


# a short label with one underscore before a letter, e.g. "Add _keywords"
MNEMONIC = re.compile(r"[^_%'\\-]{0,30}_[^\W_][^_%'\\-]{0,30}")


def linguas():
    with open(os.path.join(SOURCE_DIR, "po", "LINGUAS"), encoding="utf-8") as f:
        return [w for line in f if not line.startswith("#") for w in line.split()]
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


def language_locale(lang, locpath):
    """(LC_ALL value, LOCPATH or None) of a UTF-8 locale of LANG ("de", "pt_BR")."""
    prefix = lang if "_" in lang else lang + "_"
    names = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    for name in names:
        if name.startswith(prefix) and name.lower().endswith((".utf8", ".utf-8")):
            return name, None
    source = lang if "_" in lang else DEFAULT_TERRITORY.get(lang)
    if source is None:
        raise AssertionError(f"no locale for {lang}: add it to DEFAULT_TERRITORY")
    name = source + ".UTF-8"
    os.makedirs(locpath, exist_ok=True)
    p = subprocess.run(["localedef", "-i", source, "-f", "UTF-8", os.path.join(locpath, name)],
                       capture_output=True, text=True)
    if not os.path.isdir(os.path.join(locpath, name)):
        raise AssertionError(f"no {lang} locale and localedef failed (install Debian's "
                             "'locales' package, see tools/install-deps.sh):\n" + p.stderr)
    return name, locpath


def language_env(lang, locpath):
    lc_all, locpath = language_locale(lang, locpath)
    env = base_env()
    env.update(LC_ALL=lc_all, LANGUAGE=lang, AGRICLIP_LOCALEDIR=os.path.join(BUILD_DIR, "po"))
    if locpath:
        env["LOCPATH"] = locpath
    return env


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
        cls.langs = linguas()
        cls.catalogs = {}
        for lang in cls.langs:
            with open(os.path.join(BUILD_DIR, "po", lang, "LC_MESSAGES", DOMAIN + ".mo"),
                      "rb") as f:
                cls.catalogs[lang] = gettext.GNUTranslations(f)
        cls.de = cls.catalogs["de"]
        locpath = os.path.join(cls.tmp, "locales")
        cls.envs = {lang: language_env(lang, locpath) for lang in cls.langs}
        cls.env_de = cls.envs["de"]
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

    def test_every_po_is_valid_and_complete(self):
        self.assertIn("de", self.langs)
        for lang in self.langs:
            po = os.path.join(SOURCE_DIR, "po", lang + ".po")
            p = subprocess.run(["msgfmt", "-c", "--statistics", "-o", "/dev/null", po],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stderr, r"^\d+ translated messages?\.\n?$", lang)

    def test_translations_keep_placeholders_and_mnemonics(self):
        """Also where xgettext saw no c-format: {} of templates, %% of percentages."""
        for lang, catalog in self.catalogs.items():
            for key, text in catalog._catalog.items():
                msgid = key[0] if isinstance(key, tuple) else key
                if not msgid:
                    continue  # the header
                msgid = msgid.split("\x04", 1)[-1]  # without the context
                self.assertEqual(sorted(PLACEHOLDER.findall(msgid)),
                                 sorted(PLACEHOLDER.findall(text)),
                                 f"{lang}: {msgid!r} -> {text!r}")
                if MNEMONIC.fullmatch(msgid):
                    self.assertRegex(text, r"_[^\W_]", f"{lang}: {msgid!r} -> {text!r} "
                                     "lost its mnemonic")

    def test_every_marked_message_is_translated(self):
        """What xgettext finds in the sources today, not a stale .pot."""
        pot = os.path.join(self.tmp, "now.pot")
        args = ["xgettext", "--from-code=UTF-8", "-o", pot,
                "--directory", SOURCE_DIR, "--files-from",
                os.path.join(SOURCE_DIR, "po", "POTFILES")]
        args += ["--keyword=" + k for k in KEYWORDS]
        p = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        for lang in self.langs:
            merged = os.path.join(self.tmp, lang + "-now.po")
            p = subprocess.run(["msgmerge", "--quiet", "--no-fuzzy-matching", "-o", merged,
                                os.path.join(SOURCE_DIR, "po", lang + ".po"), pot],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = subprocess.run(["msgattrib", "--untranslated", "--no-obsolete", merged],
                               capture_output=True, text=True, check=True)
            missing = p.stdout.split("\n\n", 1)[1] if "\n\n" in p.stdout else ""
            self.assertEqual(missing.strip(), "", f"po/{lang}.po lacks these messages (run "
                             "'ninja agriclip-update-po' and translate them):\n" + missing)

    def test_label_names_template_is_current(self):
        p = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools",
                                                         "label-names-pot.py"), "--check"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

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

    def test_usage_error_in_every_language(self):
        for lang in self.langs:
            expected = self.catalogs[lang].gettext("--top must be at least 1")
            self.assertNotEqual(expected, "--top must be at least 1", lang)
            err = run(["classify", "--model", "m", "--labels", "x", "--top", "0", "a.png"],
                      self.envs[lang], expect=2).stderr
            self.assertIn("agriclip: " + expected + "\n", err, lang)

    def test_installed_label_set_names_in_every_language(self):
        """agc_label_set_class_translated_name, called through ctypes under each
        locale; the export and display names stay as the file has them."""
        with open(os.path.join(SOURCE_DIR, "models", "labels", "plantvillage.json"),
                  encoding="utf-8") as f:
            classes = json.load(f)["classes"]
        library = os.path.join(BUILD_DIR, "core", "libagriclip.so")
        script = (
            "import ctypes, sys\n"
            "libc = ctypes.CDLL(None)\n"
            "libc.setlocale.restype = ctypes.c_char_p\n"
            "assert libc.setlocale(6, b'')\n"  # LC_ALL from the environment
            "libc.bindtextdomain(b'agriclip', sys.argv[2].encode())\n"
            "libc.bind_textdomain_codeset(b'agriclip', b'UTF-8')\n"
            "agc = ctypes.CDLL(sys.argv[1])\n"
            "agc.agc_label_set_open.restype = ctypes.c_void_p\n"
            "agc.agc_label_set_new_from_names.restype = ctypes.c_void_p\n"
            "for f in ('agc_label_set_class_translated_name', "
            "'agc_label_set_class_display_name', 'agc_label_set_class_name'):\n"
            "    getattr(agc, f).restype = ctypes.c_char_p\n"
            "    getattr(agc, f).argtypes = [ctypes.c_void_p, ctypes.c_int]\n"
            "s = agc.agc_label_set_open(b'plantvillage', None)\n"
            "for c in range(int(sys.argv[3])):\n"
            "    for f in ('name', 'display_name', 'translated_name'):\n"
            "        print(getattr(agc, 'agc_label_set_class_' + f)(s, c).decode())\n"
            "names = (ctypes.c_char_p * 1)(sys.argv[4].encode())\n"
            "own = agc.agc_label_set_new_from_names(names, 1, None, 0, None)\n"
            "print(agc.agc_label_set_class_translated_name(own, 0).decode())\n")
        own_name = classes[0]["display"]  # a set of the user's own words
        # a sanitized library needs its runtimes loaded first, before Python's own
        # libraries (the sanitizer suite runs this test too)
        linked = subprocess.run(["ldd", library], capture_output=True, text=True).stdout
        runtimes = [line.split("=>")[1].split()[0] for line in linked.splitlines()
                    if re.search(r"lib(asan|ubsan)\.so", line) and "=>" in line]
        for lang in self.langs:
            env = dict(self.envs[lang],
                       AGRICLIP_LABELS_PATH=os.path.join(SOURCE_DIR, "models", "labels"))
            if runtimes:
                env["LD_PRELOAD"] = " ".join(runtimes)
            p = subprocess.run([sys.executable, "-c", script, library,
                                os.path.join(BUILD_DIR, "po"), str(len(classes)), own_name],
                               env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.split("\n")
            for c, cls in enumerate(classes):
                name, display, shown = lines[3 * c:3 * c + 3]
                self.assertEqual((name, display), (cls["name"], cls["display"]))
                expected = self.catalogs[lang].pgettext(LABEL_CONTEXT, cls["display"])
                self.assertEqual(shown, expected, lang)
            self.assertNotEqual(lines[2], classes[0]["display"], f"{lang}: not translated")
            self.assertEqual(lines[3 * len(classes)], own_name, lang)

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
