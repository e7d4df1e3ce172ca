"""test_class_cache.py — `agriclip classify` through the class-embedding cache
(core/models/class-cache.h), each test with its own XDG_CACHE_HOME.

The first run must agree with the open_clip recipe in PyTorch (the twin,
through test_zeroshot's reference) and leave one entry; a second run with
the same model and labels must print the same output without rewriting the
entry, and must take its classes from the entry (rows swapped in the file
swap the reported probabilities: the text tower's result was not used).  A
changed prompt or model gives the new reference; damaged entries are ignored
and rewritten; a cache that cannot be written, or AGRICLIP_NO_CLASS_CACHE=1,
changes nothing but the speed.  Every other reference test runs with the
cache off (tests/reference/meson.build) so that they keep testing the text
tower; the last test checks that this is so.
"""

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
import test_zeroshot as zs  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
NAMES = ["wheat rust", "healthy wheat", "aphids on a leaf"]
TEMPLATES = ["a photo of {}.", "a close-up photo of {} in a field."]
HEADER = 112  # magic 8, n_classes 4, E 4, key 64, SHA-256 of the rows 32


def entries(cache):
    """The cache's entry files, sorted."""
    found = []
    for root, _, files in os.walk(os.path.join(cache, "agriclip", "classes")):
        found += [os.path.join(root, f) for f in files if f.endswith(".f32")]
    return sorted(found)


def args_for(names, templates):
    args = ["--format", "jsonl", "--top", str(len(names))]
    for n in names:
        args += ["--label", n]
    for t in templates:
        args += ["--template", t]
    return args


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ClassCache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-class-cache-")
        cls.model = os.path.join(cls.tmp, "model")
        # a soft temperature, so that every probability is large enough to compare
        clip_twin.make_model(cls.model, seed=21, image_size=zs.IMAGE_SIZE,
                             logit_scale=math.log(4.0))
        cls.twin = clip_twin.load_twin(cls.model)
        image_dir = os.path.join(cls.tmp, "images")
        os.makedirs(image_dir)
        cls.images = zs.write_images(image_dir, [f"image-{i}.png" for i in range(3)], seed=8)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix="cache-", dir=self.tmp)

    def classify(self, args, cache=None, model=None, **env):
        environ = dict(os.environ, XDG_CACHE_HOME=cache or self.cache, **env)
        if "AGRICLIP_NO_CLASS_CACHE" not in env:
            environ.pop("AGRICLIP_NO_CLASS_CACHE", None)
        cmd = [AGRICLIP, "classify", "--model", model or self.model] + args + self.images
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=environ)
        self.assertEqual(proc.returncode, 0, f"{cmd}: {proc.stderr}")
        return proc.stdout

    def check_reference(self, out, twin, names=NAMES, templates=TEMPLATES):
        classes = zs.prompts_from_names(names, templates)
        want = zs.reference_probs(twin, classes, self.images)
        self.assertLess(float(want.max()), 0.9, "degenerate probabilities")
        for (image, labels), probs in zip(zs.parse_jsonl(out), want.tolist()):
            self.assertEqual(len(labels), len(names))
            for label, p in labels:
                self.assertAlmostEqual(p, probs[names.index(label)], delta=zs.TOLERANCE,
                                       msg=f"{image}: {label}")

    def test_second_run_from_cache(self):
        args = args_for(NAMES, TEMPLATES)
        first = self.classify(args)
        self.check_reference(first, self.twin)
        [entry] = entries(self.cache)
        before = os.stat(entry)
        with open(entry, "rb") as f:
            data = f.read()
        e = int.from_bytes(data[12:16], sys.byteorder)
        self.assertEqual(int.from_bytes(data[8:12], sys.byteorder), len(NAMES))
        self.assertEqual(len(data), HEADER + 4 * len(NAMES) * e)

        second = self.classify(args)
        self.assertEqual(second, first)
        after = os.stat(entry)
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns),
                         "a hit must not write the entry again")

        # the rows of the first two classes swapped, with the checksum they need:
        # a run that took its classes from the entry reports them swapped
        rows = data[HEADER:]
        n = 4 * e
        swapped = rows[n:2 * n] + rows[:n] + rows[2 * n:]
        tampered = data[:80] + hashlib.sha256(swapped).digest() + swapped
        with open(entry, "wb") as f:
            f.write(tampered)
        third = zs.parse_jsonl(self.classify(args))
        for (image, labels), (_, original) in zip(third, zs.parse_jsonl(first)):
            got, was = dict(labels), dict(original)
            for a, b in ((0, 1), (1, 0), (2, 2)):  # equal up to the sum's rounding
                self.assertAlmostEqual(got[NAMES[a]], was[NAMES[b]], delta=2e-6, msg=image)
        self.assertNotEqual(was[NAMES[0]], was[NAMES[1]])

    def test_changed_prompt_or_model_misses(self):
        self.classify(args_for(NAMES, TEMPLATES))
        changed = [TEMPLATES[0], "a close-up photo of {} in a greenhouse."]
        out = self.classify(args_for(NAMES, changed))
        self.check_reference(out, self.twin, templates=changed)
        self.assertEqual(len(entries(self.cache)), 2)

        # the same folder with other weights
        other = os.path.join(self.tmp, "other-model")
        shutil.copytree(self.model, other)
        self.assertEqual(self.classify(args_for(NAMES, TEMPLATES), model=other),
                         self.classify(args_for(NAMES, TEMPLATES)), "a copy must hit")
        self.assertEqual(len(entries(self.cache)), 2)
        clip_twin.make_model(other, seed=22, image_size=zs.IMAGE_SIZE, logit_scale=math.log(4.0))
        out = self.classify(args_for(NAMES, TEMPLATES), model=other)
        self.check_reference(out, clip_twin.load_twin(other))
        self.assertEqual(len(entries(self.cache)), 3)

    def test_damaged_entries_rewritten(self):
        args = args_for(NAMES, TEMPLATES)
        first = self.classify(args)
        [entry] = entries(self.cache)
        with open(entry, "rb") as f:
            good = f.read()
        for damaged in (good[:len(good) // 2], good[:HEADER], b"",
                        good[:-4] + bytes(4), b"\x00" * len(good)):
            with open(entry, "wb") as f:
                f.write(damaged)
            self.assertEqual(self.classify(args), first)
            with open(entry, "rb") as f:
                self.assertEqual(f.read(), good, "the damaged entry must be written again")
        self.check_reference(first, self.twin)

    def test_unusable_cache_never_fails(self):
        args = args_for(NAMES, TEMPLATES)
        not_a_folder = os.path.join(self.cache, "a-file")
        with open(not_a_folder, "w") as f:
            f.write("not a folder")
        self.check_reference(self.classify(args, cache=not_a_folder), self.twin)
        # the classes folder is a file: the rest of the cache works, this part is off
        os.makedirs(os.path.join(self.cache, "agriclip"))
        with open(os.path.join(self.cache, "agriclip", "classes"), "w") as f:
            f.write("")
        self.check_reference(self.classify(args), self.twin)

    def test_turned_off(self):
        args = args_for(NAMES, TEMPLATES)
        out = self.classify(args, AGRICLIP_NO_CLASS_CACHE="1")
        self.assertEqual(entries(self.cache), [])
        self.check_reference(out, self.twin)
        self.assertEqual(self.classify(args, AGRICLIP_NO_CLASS_CACHE="0"), out)
        self.assertEqual(len(entries(self.cache)), 1)

    @unittest.skipUnless(os.environ.get("AGC_BUILD_DIR"), "not run by meson")
    def test_suite_runs_the_text_tower(self):
        """The other reference tests would otherwise compare cached classes
        (their seeded models are the same from run to run) with PyTorch."""
        self.assertEqual(os.environ.get("AGRICLIP_NO_CLASS_CACHE"), "1")


if __name__ == "__main__":
    unittest.main()
