"""test_zeroshot.py — `agriclip classify` against the open_clip zero-shot
recipe computed in PyTorch with the twin (clip_twin.py).

The reference side builds each class's prompts from the label file by the
rules of models/labels/README.md, encodes them with the float64 twin,
normalises each prompt embedding, averages per class, normalises again, and
takes softmax(exp(logit_scale) * cos(image, class)).  The CLI's reported
probabilities must agree within 1e-4, in JSON lines and CSV, for label
files, for --label/--template classes, for folders, and for --top larger
than the class count.  Images are PNGs at the model's input size, so
preprocessing is the identity resize plus normalisation on both sides.
"""

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
SOURCE_DIR = os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
TOLERANCE = 1e-4
IMAGE_SIZE = 32
DEFAULT_TEMPLATE = "a photo of a {}."


# ---- the reference ----------------------------------------------------------

def prompts_from_file(path):
    """[(export name, [prompt, ...])] by the rules of models/labels/README.md."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    classes = []
    for c in doc["classes"]:
        text = c.get("text", c["display"])
        prompts = []
        if c.get("use_templates", True):
            prompts = [t.replace("{}", text) for t in doc["templates"]]
        classes.append((c["name"], prompts + c.get("prompts", [])))
    return classes


def prompts_from_names(names, templates=(DEFAULT_TEMPLATE,)):
    return [(n, [t.replace("{}", n) for t in templates]) for n in names]


def reference_probs(twin, classes, images):
    """probs[n_images, n_classes] with the open_clip recipe, in float64."""
    prompts = [p for _, class_prompts in classes for p in class_prompts]
    with torch.no_grad():
        text = twin.encode_text(clip_twin.tokenize(prompts))
        text = text / text.norm(dim=-1, keepdim=True)
        weights, start = [], 0
        for _, class_prompts in classes:
            mean = text[start:start + len(class_prompts)].mean(dim=0)
            weights.append(mean / mean.norm())
            start += len(class_prompts)
        weights = torch.stack(weights)                                   # [C, E]
        pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in images])
        image = twin.encode_image(pixels)
        image = image / image.norm(dim=-1, keepdim=True)                 # [N, E]
        return torch.softmax(twin.logit_scale * image @ weights.T, dim=-1)


# ---- the CLI ------------------------------------------------------------------

def classify(model_dir, args, inputs):
    cmd = [AGRICLIP, "classify", "--model", model_dir] + args + list(inputs)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def parse_jsonl(stdout):
    """[(image, [(label, p), ...])] in output order."""
    results = []
    for line in stdout.splitlines():
        if line.strip():
            obj = json.loads(line)
            results.append((obj["image"], [(x["label"], x["p"]) for x in obj["labels"]]))
    return results


def parse_csv(stdout):
    """The same from `image,rank,label,p` rows (one row per reported label)."""
    rows = list(csv.reader(io.StringIO(stdout)))
    assert rows[0] == ["image", "rank", "label", "p"], rows[0]
    results = []
    for image, rank, label, p in rows[1:]:
        if not results or results[-1][0] != image or int(rank) == 1:
            assert int(rank) == 1, f"{image}: ranks must start at 1, got {rank}"
            results.append((image, []))
        assert int(rank) == len(results[-1][1]) + 1, f"{image}: rank {rank} out of order"
        results[-1][1].append((label, float(p)))
    return results


def write_images(folder, names, seed):
    """PNGs at the model's size: coloured gradients, a shape, noise, one gray."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE
    paths = []
    for i, name in enumerate(names):
        base = np.stack([xx, yy, 1 - xx * yy], axis=-1) * 255 * rng.uniform(0.2, 1.0, 3)
        if i % 3 == 1:  # a red block on the left, off centre
            base[4:20, 2:12] = (230, 20, 20)
        pixels = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        if i % 4 == 3:
            image = image.convert("L")
        path = os.path.join(folder, name)
        image.save(path)
        paths.append(path)
    return paths


# ---- the tests ------------------------------------------------------------------

@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ZeroShotAgainstTwin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-zeroshot-")
        # CLIP's trained temperature (100) and a soft one, under which every
        # probability, not just the winner's, is large enough to compare.
        cls.sharp_dir = os.path.join(cls.tmp, "sharp")
        clip_twin.make_model(cls.sharp_dir, seed=11, image_size=IMAGE_SIZE)
        cls.soft_dir = os.path.join(cls.tmp, "soft")
        clip_twin.make_model(cls.soft_dir, seed=12, image_size=IMAGE_SIZE, act="gelu",
                             logit_scale=math.log(4.0))
        cls.twins = {d: clip_twin.load_twin(d) for d in (cls.sharp_dir, cls.soft_dir)}
        image_dir = os.path.join(cls.tmp, "images")
        os.makedirs(image_dir)
        cls.images = write_images(image_dir, [f"image-{i}.png" for i in range(4)], seed=5)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, results, images, classes, want, k):
        """results as parsed; want[n_images, n_classes] from reference_probs."""
        names = [name for name, _ in classes]
        self.assertEqual([image for image, _ in results], list(images))
        n_top = min(k, len(names))
        for (image, labels), probs in zip(results, want.tolist()):
            got_names = [label for label, _ in labels]
            got_p = [p for _, p in labels]
            self.assertEqual(len(labels), n_top, f"{image}: {labels}")
            self.assertEqual(len(set(got_names)), n_top, f"{image}: repeated label")
            self.assertEqual(got_p, sorted(got_p, reverse=True), f"{image}: not sorted")
            for label, p in labels:
                self.assertIn(label, names)
                self.assertAlmostEqual(p, probs[names.index(label)], delta=TOLERANCE,
                                       msg=f"{image}: {label}")
            # no class left out is more probable than the last one reported
            left_out = [probs[i] for i, n in enumerate(names) if n not in got_names]
            if left_out:
                self.assertLessEqual(max(left_out), got_p[-1] + TOLERANCE, image)
            else:
                self.assertAlmostEqual(sum(got_p), 1.0, delta=TOLERANCE)

    def assert_not_degenerate(self, want, max_p=0.99):
        """The comparison means something only if several classes get weight."""
        self.assertLess(float(want.max(dim=1).values.min()), max_p, want)

    def test_plantvillage_jsonl(self):
        labels = os.path.join(SOURCE_DIR, "models", "labels", "plantvillage.json")
        classes = prompts_from_file(labels)
        self.assertEqual(len(classes), 38)
        for model_dir in (self.sharp_dir, self.soft_dir):
            want = reference_probs(self.twins[model_dir], classes, self.images)
            out = classify(model_dir, ["--labels", labels, "--top", "5", "--format", "jsonl"],
                           self.images)
            self.check(parse_jsonl(out), self.images, classes, want, 5)
        self.assert_not_degenerate(want)

    def test_label_file_csv(self):
        """Default text, own prompts, use_templates false, names that CSV must quote."""
        doc = {
            "id": "test", "title": "Test",
            "templates": ["a photo of {}.", "a close-up photo of {} in a field."],
            "classes": [
                {"name": "Pepper,_bell___Bacterial_spot", "display": "Bell pepper: spot",
                 "text": "a bell pepper leaf with bacterial spot"},
                {"name": "say \"cheese\"", "display": "a wheel of cheese"},
                {"name": "rust", "display": "Rust", "text": "a rusty leaf",
                 "prompts": ["orange pustules on a wheat leaf"]},
                {"name": "cow", "display": "Cow", "use_templates": False,
                 "prompts": ["a photo of a cow.", "a dairy cow grazing"]},
            ],
        }
        path = os.path.join(self.tmp, "custom.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        classes = prompts_from_file(path)
        self.assertEqual(classes[1][1], ["a photo of a wheel of cheese.",
                                         "a close-up photo of a wheel of cheese in a field."])
        want = reference_probs(self.twins[self.soft_dir], classes, self.images)
        self.assert_not_degenerate(want)
        out = classify(self.soft_dir, ["--labels", path, "--top", "3", "--format", "csv"],
                       self.images)
        self.check(parse_csv(out), self.images, classes, want, 3)
        # CSV is the default format
        out = classify(self.soft_dir, ["--labels", path, "--top", "4"], self.images)
        self.check(parse_csv(out), self.images, classes, want, 4)

    def test_labels_from_names(self):
        names = ["healthy maize leaf", "maize leaf with rust", "Holstein cow", "tilapia"]
        args = ["--format", "jsonl", "--top", "2"]
        for name in names:
            args += ["--label", name]
        classes = prompts_from_names(names)
        for model_dir in (self.sharp_dir, self.soft_dir):
            want = reference_probs(self.twins[model_dir], classes, self.images)
            self.check(parse_jsonl(classify(model_dir, args, self.images)),
                       self.images, classes, want, 2)
        self.assert_not_degenerate(want)

    def test_labels_with_templates(self):
        names = ["rust", "blight", "healthy"]
        templates = ["a close-up of {} on a leaf", "{}", "a field of crops with {}."]
        args = ["--format", "csv", "--top", "3"]
        for name in names:
            args += ["--label", name]
        for template in templates:
            args += ["--template", template]
        classes = prompts_from_names(names, templates)
        want = reference_probs(self.twins[self.soft_dir], classes, self.images)
        self.assert_not_degenerate(want)
        self.check(parse_csv(classify(self.soft_dir, args, self.images)),
                   self.images, classes, want, 3)

    def test_folder_sorted(self):
        folder = os.path.join(self.tmp, "folder")
        os.makedirs(folder)
        # written out of order: the CLI must list them sorted by name
        written = write_images(folder, ["c.png", "a.png", "b.png"], seed=9)
        images = sorted(written)
        names = ["leaf", "cow", "fish"]
        args = ["--format", "jsonl", "--top", "3"]
        for name in names:
            args += ["--label", name]
        classes = prompts_from_names(names)
        want = reference_probs(self.twins[self.soft_dir], classes, images)
        results = parse_jsonl(classify(self.soft_dir, args, [folder]))
        self.assertEqual([os.path.basename(r[0]) for r in results], ["a.png", "b.png", "c.png"])
        for (shown, _), path in zip(results, images):
            self.assertTrue(os.path.samefile(shown, path), (shown, path))
        self.check([(path, labels) for path, (_, labels) in zip(images, results)],
                   images, classes, want, 3)

    def test_top_larger_than_class_count(self):
        names = ["wheat", "rice", "maize"]
        args = ["--top", "10"]
        for name in names:
            args += ["--label", name]
        classes = prompts_from_names(names)
        for model_dir in (self.sharp_dir, self.soft_dir):
            want = reference_probs(self.twins[model_dir], classes, self.images)
            jsonl = classify(model_dir, args + ["--format", "jsonl"], self.images)
            self.check(parse_jsonl(jsonl), self.images, classes, want, 10)  # all 3, sum 1
            self.check(parse_csv(classify(model_dir, args, self.images)),
                       self.images, classes, want, 10)


if __name__ == "__main__":
    unittest.main()
