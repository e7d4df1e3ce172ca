"""test_synth.py — `agriclip synth` (the synthetic leaf set) and `agriclip
evaluate`, checked from the outside.

- The same seed writes the same bytes; another seed other images.
- Layout: pretrain/NNNNNN.png with captions.jsonl, eval/ and finetune/ with
  one folder per class, balanced, and a labels.json naming every folder.
- Captions tell the truth, judged from the PIXELS with PIL and numpy and the
  caption grammar documented in synth/synth-caption.h (not with our code): the
  hue of the leaf matches its colour word; the leaf's elongation its shape
  word; images whose caption names marks of a colour have more pixels of
  that colour than healthy ones; "holes" leaves show background inside
  their outline, healthy ones do not.
- `evaluate` gives the accuracy and confusion matrix that `classify --format
  csv` on the same folder gives (zero-shot and with an adapter).
- Bad input: a tag folder missing from labels.json, an unreadable image
  (reported by name and skipped), a non-empty folder not made by synth
  (refused, left alone), Ctrl-C (exit 130, no stray files, a re-run works).
"""

import collections
import csv
import filecmp
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
N_PRETRAIN = 600
EVAL_PER_CLASS = 6
FINETUNE_PER_CLASS = 5

# ---- the caption grammar (synth/synth-caption.h), word -> attribute ------------

LEAF_COLOURS = {"green": "green", "bright green": "green", "yellow": "yellow",
                "yellowed": "yellow", "brown": "brown", "dry brown": "brown",
                "red": "red", "reddish": "red"}
MARK_COLOURS = {"black": "black", "white": "white", "whitish": "white", "orange": "orange",
                "brown": "brown", "dark brown": "brown"}
SHAPES = {"oval": "oval", "elliptical": "oval", "long narrow": "narrow", "grass-like": "narrow",
          "blade-shaped": "narrow", "heart-shaped": "heart", "cordate": "heart",
          "lobed": "lobed", "maple-like": "lobed", "palmate": "lobed", "round": "round",
          "circular": "round"}
MARK_NOUNS = "spots|dots|stripes|streaks|ring|target-like|rings|powdery|powder"


def alternatives(words):
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


def parse_caption(caption):
    """(leaf colour, condition, mark colour or None, shape or None)."""
    c = caption
    if "healthy" in c or "no marks" in c:
        condition = "healthy"
    elif "holes" in c:
        condition = "holes"
    elif "powder" in c:
        condition = "powdery"
    elif "ring" in c:
        condition = "rings"
    elif "stripes" in c or "streaks" in c:
        condition = "stripes"
    elif "spots" in c or "dots" in c:
        condition = "spots"
    else:
        raise AssertionError(f"no condition in {caption!r}")
    mark, rest = None, c
    if condition not in ("healthy", "holes"):
        m = re.search(r"\b(%s) (%s)\b" % (alternatives(MARK_COLOURS), MARK_NOUNS), c)
        if not m:
            raise AssertionError(f"no mark colour in {caption!r}")
        mark = MARK_COLOURS[m.group(1)]
        rest = c[:m.start()] + c[m.end():]
    leaf = re.findall(r"\b(%s)\b" % alternatives(LEAF_COLOURS), rest)
    if len(leaf) != 1:
        raise AssertionError(f"expected one leaf colour in {caption!r}, found {leaf}")
    shapes = re.findall(r"\b(%s)\b" % alternatives(SHAPES), rest)
    return LEAF_COLOURS[leaf[0]], condition, mark, SHAPES[shapes[0]] if shapes else None


# ---- pixels --------------------------------------------------------------------

def hsv(path):
    """Hue in degrees, saturation and value in 0..1, each [H, W]."""
    a = np.asarray(Image.open(path).convert("HSV")).astype(float)
    return a[..., 0] * 360 / 255, a[..., 1] / 255, a[..., 2] / 255


def leaf_mask(h, s, v):
    # leaves are saturated; soil, grass, gravel and straw are dull
    return (s > 0.45) & (v > 0.25)


def colour_word(h, s, v):
    """The colour name of the median hue of the leaf pixels."""
    m = leaf_mask(h, s, v)
    hue = h[m]
    hue = np.where(hue > 300, hue - 360, hue)  # reds on both sides of 0
    median = float(np.median(hue))
    if median < 14:
        return "red"
    if median < 40:
        return "brown"
    if median < 72:
        return "yellow"
    if median < 170:
        return "green"
    return f"hue {median:.0f}"


def elongation(mask):
    """sqrt of the ratio of the principal variances of the pixel positions."""
    ys, xs = np.nonzero(mask)
    ev = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(float)))
    return float(np.sqrt(ev[1] / max(ev[0], 1e-9)))


def inner_gaps(mask):
    """Non-leaf pixels that lie between leaf pixels both along their row and
    along their column: background seen through the leaf."""
    rows = np.zeros_like(mask)
    cols = np.zeros_like(mask)
    for y in range(mask.shape[0]):
        xs = np.nonzero(mask[y])[0]
        if len(xs):
            rows[y, xs[0]:xs[-1] + 1] = True
    for x in range(mask.shape[1]):
        ys = np.nonzero(mask[:, x])[0]
        if len(ys):
            cols[ys[0]:ys[-1] + 1, x] = True
    return int((rows & cols & ~mask).sum())


MARK_PIXELS = {
    "black": lambda h, s, v: v < 0.2,
    "white": lambda h, s, v: (s < 0.15) & (v > 0.85),
    "orange": lambda h, s, v: (h > 15) & (h < 40) & (s > 0.8) & (v > 0.8),
    "brown": lambda h, s, v: (h > 10) & (h < 40) & (s > 0.5) & (v > 0.2) & (v < 0.45),
}


# ---- running ---------------------------------------------------------------------

def run(args, cache=None, check=True, timeout=600):
    env = dict(os.environ)
    if cache:
        env["XDG_CACHE_HOME"] = cache
    p = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=timeout,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"agriclip {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p


def synth(out, seed, pretrain=N_PRETRAIN, check=True):
    return run(["synth", "--out", out, "--seed", str(seed), "--pretrain", str(pretrain),
                "--eval-per-class", str(EVAL_PER_CLASS),
                "--finetune-per-class", str(FINETUNE_PER_CLASS)], check=check)


def tree(root):
    """Relative paths of all files under root, sorted."""
    out = []
    for folder, _, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(folder, f), root))
    return sorted(out)


def classify_csv_top1(model, data, cache, extra):
    """{image path: top-1 label} from `classify --format csv --top 1`."""
    p = run(["classify", "--model", model, *extra, "--top", "1", "--recursive", data], cache)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    return {os.path.normpath(r["image"]): r["label"] for r in rows}


def confusion_from(top1, data, classes, columns):
    m = np.zeros((len(classes), len(columns)), int)
    for path, label in top1.items():
        tag = os.path.basename(os.path.dirname(path))
        m[classes.index(tag), columns.index(label)] += 1
    return m


class SynthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not AGRICLIP:
            raise unittest.SkipTest("AGRICLIP not set")
        cls.tmp = tempfile.mkdtemp(prefix="agc-synth-")
        cls.a = os.path.join(cls.tmp, "a")
        cls.b = os.path.join(cls.tmp, "b")
        cls.c = os.path.join(cls.tmp, "c")
        synth(cls.a, 7)
        synth(cls.b, 7)
        synth(cls.c, 8)
        with open(os.path.join(cls.a, "pretrain", "captions.jsonl")) as f:
            cls.captions = [json.loads(line) for line in f]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- determinism and layout ----------------------------------------------

    def test_same_seed_same_bytes(self):
        files = tree(self.a)
        self.assertEqual(files, tree(self.b))
        _, mismatch, errors = filecmp.cmpfiles(self.a, self.b, files, shallow=False)
        self.assertEqual((mismatch, errors), ([], []))

    def test_other_seed_other_images(self):
        files = [f for f in tree(self.a) if f.endswith(".png")]
        self.assertEqual(files, [f for f in tree(self.c) if f.endswith(".png")])
        _, mismatch, _ = filecmp.cmpfiles(self.a, self.c, files, shallow=False)
        self.assertEqual(len(mismatch), len(files))

    def test_pretrain_layout(self):
        folder = os.path.join(self.a, "pretrain")
        names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
        self.assertEqual(names, ["%06d.png" % i for i in range(N_PRETRAIN)])
        self.assertEqual([c["image"] for c in self.captions], names)
        for c in self.captions:
            self.assertEqual(set(c), {"image", "caption"})
            self.assertTrue(c["caption"].strip())
        for name in names[:20]:
            with Image.open(os.path.join(folder, name)) as im:
                self.assertEqual((im.format, im.mode, im.size), ("PNG", "RGB", (64, 64)))
        # several phrasings: the first three words of captions vary a lot
        starts = collections.Counter(" ".join(c["caption"].split()[:2]) for c in self.captions)
        self.assertGreater(len(starts), 40)
        # no temporary files left behind by the atomic writes
        self.assertEqual([f for f in tree(self.a) if not f.endswith((".png", ".json", ".jsonl"))],
                         [".agriclip-synth"])

    def test_tagged_sets_balanced_with_labels(self):
        for part, per_class in (("eval", EVAL_PER_CLASS), ("finetune", FINETUNE_PER_CLASS)):
            folder = os.path.join(self.a, part)
            with open(os.path.join(folder, "labels.json")) as f:
                labels = json.load(f)
            names = [c["name"] for c in labels["classes"]]
            tags = sorted(d for d in os.listdir(folder)
                          if os.path.isdir(os.path.join(folder, d)))
            self.assertEqual(sorted(names), tags)
            self.assertTrue(10 <= len(tags) <= 12, tags)
            for c in labels["classes"]:
                self.assertTrue(2 <= len(c["prompts"]) <= 4, c)
                self.assertTrue(c["display"])
                self.assertEqual(len(os.listdir(os.path.join(folder, c["name"]))), per_class)
                # prompts speak the captions' language: parseable, one meaning per class
                meanings = {parse_caption(p)[:3] for p in c["prompts"]}
                self.assertEqual(len(meanings), 1, c["prompts"])
            meanings = [parse_caption(c["prompts"][0])[:3] for c in labels["classes"]]
            self.assertEqual(len(set(meanings)), len(meanings))

    def test_eval_classes_look_like_their_prompts(self):
        folder = os.path.join(self.a, "eval")
        with open(os.path.join(folder, "labels.json")) as f:
            labels = json.load(f)
        for c in labels["classes"]:
            leaf, condition, _, _ = parse_caption(c["prompts"][0])
            for name in sorted(os.listdir(os.path.join(folder, c["name"]))):
                h, s, v = hsv(os.path.join(folder, c["name"], name))
                if condition in ("healthy", "holes"):
                    self.assertEqual(colour_word(h, s, v), leaf, (c["name"], name))

    # ---- captions against pixels ----------------------------------------------

    def pretrain_items(self):
        folder = os.path.join(self.a, "pretrain")
        for c in self.captions:
            yield c["caption"], parse_caption(c["caption"]), hsv(os.path.join(folder, c["image"]))

    def test_leaf_colour_and_shape_words_match_pixels(self):
        checked = collections.Counter()
        for caption, (leaf, condition, _, shape), (h, s, v) in self.pretrain_items():
            if condition not in ("healthy", "holes"):
                continue  # marks can be as large as the leaf's colour
            self.assertEqual(colour_word(h, s, v), leaf, caption)
            checked[leaf] += 1
            if shape and condition == "healthy":
                e = elongation(leaf_mask(h, s, v))
                if shape == "narrow":
                    self.assertGreater(e, 2.8, caption)
                else:
                    self.assertLess(e, 2.6, caption)
                if shape == "round":
                    self.assertLess(e, 1.33, caption)
                if shape == "oval":
                    self.assertGreater(e, 1.33, caption)
        self.assertEqual(set(checked), set(LEAF_COLOURS.values()))

    def test_mark_colour_words_match_pixels(self):
        """Share of pixels of each mark colour: images whose caption names
        marks of that colour against healthy leaves (brown marks: leaves
        that are not brown themselves)."""
        share = collections.defaultdict(list)
        for _, (leaf, condition, mark, _), (h, s, v) in self.pretrain_items():
            for colour, pick in MARK_PIXELS.items():
                if colour == "brown" and leaf == "brown":
                    continue
                f = float(pick(h, s, v).mean())
                if condition == "healthy":
                    share[("healthy", colour)].append(f)
                elif mark is not None:
                    share[("marked", mark, colour)].append(f)
        for colour in MARK_PIXELS:
            named = np.mean(share[("marked", colour, colour)])
            healthy = np.mean(share[("healthy", colour)])
            self.assertGreater(named, 2 * healthy + 0.004, colour)
            for other in MARK_PIXELS:
                if other != colour and share[("marked", other, colour)]:
                    # pixels of this colour are commoner where the caption names it
                    self.assertGreater(named, np.mean(share[("marked", other, colour)]),
                                       (colour, other))

    def test_holes_show_background(self):
        gaps = collections.defaultdict(list)
        for _, (_, condition, _, _), (h, s, v) in self.pretrain_items():
            if condition in ("healthy", "holes"):
                gaps[condition].append(inner_gaps(leaf_mask(h, s, v)))
        holes, healthy = np.array(gaps["holes"]), np.array(gaps["healthy"])
        self.assertGreater(holes.mean(), healthy.mean() + 20)
        self.assertGreater((holes >= 4).mean(), (healthy >= 4).mean() + 0.5)

    def test_every_condition_and_colour_occurs(self):
        seen = collections.Counter()
        for c in self.captions:
            leaf, condition, mark, shape = parse_caption(c["caption"])
            seen[condition] += 1
            seen[leaf] += 1
            if mark:
                seen["mark " + mark] += 1
        for key in ["healthy", "spots", "stripes", "rings", "holes", "powdery", "green",
                    "yellow", "brown", "red", "mark black", "mark white", "mark orange",
                    "mark brown"]:
            self.assertGreater(seen[key], N_PRETRAIN // 40, key)

    # ---- evaluate ---------------------------------------------------------------

    def evaluate_json(self, model, data, cache, *extra):
        p = run(["evaluate", "--model", model, "--data", data, "--format", "json", *extra], cache)
        return json.loads(p.stdout), p

    def check_against_classify(self, model, data, cache, classify_extra, *evaluate_extra):
        result, _ = self.evaluate_json(model, data, cache, *evaluate_extra)
        classes = [c["name"] for c in result["classes"]]
        top1 = classify_csv_top1(model, data, cache, classify_extra)
        expected = confusion_from(top1, data, classes, result["predicted_classes"])
        np.testing.assert_array_equal(np.array(result["confusion"]), expected)
        n = expected.sum()
        self.assertEqual(result["n_images"], n)
        self.assertAlmostEqual(result["accuracy"], np.trace(expected) / n, places=7)
        for i, c in enumerate(result["classes"]):
            self.assertEqual(c["n_images"], expected[i].sum())
            self.assertAlmostEqual(c["accuracy"], expected[i, i] / expected[i].sum(), places=7)
        p = run(["evaluate", "--model", model, "--data", data, *evaluate_extra], cache)
        self.assertIn("%.1f %% (%d of %d images)" % (100 * np.trace(expected) / n,
                                                     np.trace(expected), n), p.stdout)
        return result

    def test_evaluate_agrees_with_classify(self):
        with tempfile.TemporaryDirectory() as tmp:
            model, cache = os.path.join(tmp, "model"), os.path.join(tmp, "cache")
            clip_twin.make_model(model, seed=31, image_size=32)
            data = os.path.join(self.a, "eval")
            labels = os.path.join(data, "labels.json")
            self.check_against_classify(model, data, cache, ["--labels", labels])
            adapter = os.path.join(tmp, "adapter.safetensors")
            run(["train", "--model", model, "--data", os.path.join(self.a, "finetune"),
                 "--out", adapter, "--epochs", "5"], cache)
            result = self.check_against_classify(model, data, cache, ["--adapter", adapter],
                                                 "--adapter", adapter)
            self.assertEqual(result["adapter"], adapter)

    def test_evaluate_bad_input(self):
        with tempfile.TemporaryDirectory() as tmp:
            model, cache = os.path.join(tmp, "model"), os.path.join(tmp, "cache")
            clip_twin.make_model(model, seed=32, image_size=32)
            data = os.path.join(tmp, "data")
            shutil.copytree(os.path.join(self.a, "eval"), data)
            broken = os.path.join(data, "rust", "broken.png")
            with open(broken, "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n not really")
            result, p = self.evaluate_json(model, data, cache)
            self.assertIn("broken.png", p.stderr)
            self.assertEqual(result["n_skipped"], 1)
            self.assertEqual(result["n_images"], 12 * EVAL_PER_CLASS)
            # a tag folder that labels.json does not name
            with open(os.path.join(data, "labels.json")) as f:
                labels = json.load(f)
            labels["classes"] = [c for c in labels["classes"] if c["name"] != "blight"]
            with open(os.path.join(data, "labels.json"), "w") as f:
                json.dump(labels, f)
            p = run(["evaluate", "--model", model, "--data", data], cache, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("blight", p.stderr)
            self.assertEqual(p.stdout, "")
            p = run(["evaluate", "--model", model, "--data", data, "--format", "xml"], cache,
                    check=False)
            self.assertEqual(p.returncode, 2)

    # ---- the output folder ---------------------------------------------------------

    def test_refuses_foreign_folder_and_replaces_own(self):
        with tempfile.TemporaryDirectory() as tmp:
            foreign = os.path.join(tmp, "foreign")
            os.makedirs(foreign)
            with open(os.path.join(foreign, "notes.txt"), "w") as f:
                f.write("mine")
            p = synth(foreign, 1, pretrain=3, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("not empty", p.stderr)
            self.assertEqual(os.listdir(foreign), ["notes.txt"])
            own = os.path.join(tmp, "own")
            synth(own, 1, pretrain=20)
            synth(own, 1, pretrain=5)  # a smaller run leaves none of the larger one
            pngs = [f for f in os.listdir(os.path.join(own, "pretrain")) if f.endswith(".png")]
            self.assertEqual(len(pngs), 5)
            with open(os.path.join(own, ".agriclip-synth")) as f:
                self.assertTrue(json.load(f)["complete"])

    def test_ctrl_c_stops_cleanly(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            proc = subprocess.Popen([AGRICLIP, "synth", "--out", out, "--pretrain", "2000000"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            folder = os.path.join(out, "pretrain")
            deadline = time.time() + 120
            while time.time() < deadline and not (
                    os.path.isdir(folder) and len(os.listdir(folder)) > 50):
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 130, stderr)
            self.assertIn("interrupted", stderr)
            files = tree(out)
            self.assertNotIn("pretrain/captions.jsonl", files)
            stray = [f for f in files if not f.endswith(".png") and f != ".agriclip-synth"]
            self.assertEqual(stray, [])
            for f in files:
                if f.endswith(".png"):
                    with Image.open(os.path.join(out, f)) as im:
                        im.load()  # complete files only
            with open(os.path.join(out, ".agriclip-synth")) as f:
                self.assertFalse(json.load(f)["complete"])
            synth(out, 0, pretrain=4)  # an interrupted output may be overwritten
            self.assertEqual(len(tree(os.path.join(out, "pretrain"))), 5)


if __name__ == "__main__":
    unittest.main()
