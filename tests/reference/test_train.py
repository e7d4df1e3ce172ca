"""test_train.py — `agriclip train` (method probe) and `classify --adapter`
against PyTorch, on folders of generated photos and small random twin models
(clip_twin.make_model: zero-shot is near chance, so the probe must learn).

- The probe's loss, gradient and AdamW steps (tests/tools/probe-step) equal
  PyTorch autograd + torch.optim.AdamW on the same batch within 1e-4.
- --epochs 0 writes the zero-shot head: logit_scale x the open_clip class
  embeddings of the label file's prompts, computed by the float64 twin; and
  classify --adapter then gives the zero-shot probabilities.
- A few full-batch epochs on imbalanced classes equal PyTorch's
  class-weighted cross-entropy + AdamW from the same start.
- On separable colour/texture classes, validation accuracy goes from the
  zero-shot level to >= 95 %, and classify --adapter labels new photos right.
- Broken files in the data folder are reported by name and skipped.
- Embeddings come from the cache the second time (same adapter, byte for
  byte); an edited photo or another model misses it.
- An adapter is refused for another model (identity = content of the
  config and weight files, not the folder's name or path).
"""

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
import test_zeroshot as zeroshot  # noqa: E402  (its open_clip reference recipe)

AGRICLIP = os.environ.get("AGRICLIP")
BUILD_DIR = os.environ.get("AGC_BUILD_DIR", "")
PROBE_STEP = os.path.join(BUILD_DIR, "tests", "tools", "probe-step")
IMAGE_SIZE = 32

# ---- generated photos ----------------------------------------------------------

# Colour and texture per class, so that classes differ in ways a random
# ViT still sees; brightness, size, noise and JPEG/PNG vary within a class.
CLASS_LOOKS = {
    "rust": ((200, 90, 30), "vertical"),
    "blight": ((90, 60, 40), "horizontal"),
    "healthy": ((40, 170, 50), "diagonal"),
    "mildew": ((215, 215, 205), "dots"),
}


def draw(look, rng):
    (r, g, b), texture = look
    w, h = int(rng.integers(34, 56)), int(rng.integers(34, 56))
    yy, xx = np.mgrid[0:h, 0:w]
    period = int(rng.integers(3, 6))
    stripes = {"vertical": (xx // period) % 2, "horizontal": (yy // period) % 2,
               "diagonal": ((xx + yy) // period) % 2,
               "dots": ((xx % (2 * period) < period) & (yy % (2 * period) < period))}[texture]
    pixels = np.array([r, g, b], float) * rng.uniform(0.75, 1.1)
    pixels = pixels * (0.65 + 0.35 * stripes[..., None])
    pixels = pixels + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_class_folders(root, counts, seed):
    """root/TAG/NNN.(png|jpg) for {tag: count}; returns {tag: [paths]}."""
    rng = np.random.default_rng(seed)
    paths = {}
    for tag, count in counts.items():
        folder = os.path.join(root, tag)
        os.makedirs(folder, exist_ok=True)
        paths[tag] = []
        for i in range(count):
            jpeg = i % 3 == 2
            path = os.path.join(folder, "%03d.%s" % (i, "jpg" if jpeg else "png"))
            draw(CLASS_LOOKS[tag], rng).save(path, **({"quality": 95} if jpeg else {}))
            paths[tag].append(path)
    return paths


# ---- running the CLI and reading adapters ---------------------------------------

def run(args, cache, check=True):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    proc = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def train(model, data, out, cache, *extra, check=True):
    return run(["train", "--model", model, "--data", data, "--out", out, *extra], cache, check)


def read_adapter(path):
    """(tensors as float64 torch tensors, metadata with JSON values decoded)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8:8 + n]).get("__metadata__", {})
    for key in ("agriclip.classes", "agriclip.metrics", "agriclip.training"):
        meta[key] = json.loads(meta[key])
    tensors = {k: v.to(torch.float64) for k, v in clip_twin.read_safetensors(path).items()}
    return tensors, meta


def classify_adapter(model, adapter, images, cache):
    proc = run(["classify", "--model", model, "--adapter", adapter, "--format", "jsonl",
                "--top", "10"] + list(images), cache)
    return zeroshot.parse_jsonl(proc.stdout)


def twin_embeddings(twin, paths):
    """L2-normalised image embeddings [N, E] in float64."""
    with torch.no_grad():
        pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in paths])
        e = twin.encode_image(pixels)
    return e / e.norm(dim=-1, keepdim=True)


def twin_class_embeddings(twin, classes):
    """[C, E]: per class, the normalised mean of the normalised prompt embeddings."""
    rows = []
    with torch.no_grad():
        for _, prompts in classes:
            t = twin.encode_text(clip_twin.tokenize(prompts))
            mean = (t / t.norm(dim=-1, keepdim=True)).mean(dim=0)
            rows.append(mean / mean.norm())
    return torch.stack(rows)


# ---- the tests --------------------------------------------------------------------

@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ProbeTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-train-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=21, image_size=IMAGE_SIZE)
        cls.twin = clip_twin.load_twin(cls.model)
        cls.cache = os.path.join(cls.tmp, "cache")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def folder(self, name):
        path = os.path.join(self.tmp, name)
        os.makedirs(path)
        return path

    @unittest.skipUnless(os.path.exists(PROBE_STEP), "tests/tools/probe-step not built")
    def test_step_matches_pytorch(self):
        """Loss, gradient and three AdamW steps on one batch, against autograd."""
        g = torch.Generator().manual_seed(3)
        n, e, c = 12, 16, 4
        x = F.normalize(torch.randn(n, e, generator=g), dim=-1).float()
        labels = torch.tensor([0, 1, 2, 3, 0, 0, 1, 2, 0, 0, 3, 1])
        class_weights = torch.tensor([0.5, 1.0, 1.5, 2.0])
        weight = (100 * F.normalize(torch.randn(c, e, generator=g), dim=-1)).float()
        bias = (0.5 * torch.randn(c, generator=g)).float()
        lr, wd, steps = 0.05, 0.01, 3
        work = self.folder("step")
        fin, fout = os.path.join(work, "in.safetensors"), os.path.join(work, "out.safetensors")
        clip_twin.write_safetensors(fin, {"x": x, "labels": labels, "class_weights": class_weights,
                                          "weight": weight, "bias": bias},
                                    metadata={"lr": repr(lr), "weight_decay": repr(wd),
                                              "steps": str(steps)})
        proc = subprocess.run([PROBE_STEP, fin, fout], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = clip_twin.read_safetensors(fout)

        w = weight.double().clone().requires_grad_()
        b = bias.double().clone().requires_grad_()
        opt = torch.optim.AdamW([{"params": [w], "weight_decay": wd},
                                 {"params": [b], "weight_decay": 0.0}], lr=lr,
                                betas=(0.9, 0.999), eps=1e-8)
        for step in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(x.double() @ w.T + b, labels, weight=class_weights.double())
            loss.backward()
            self.assertAlmostEqual(float(got["loss"][step]), float(loss), delta=1e-4)
            if step == 0:
                self.assertGreater(float(w.grad.abs().max()), 1e-2)
                torch.testing.assert_close(got["grad.weight"].double(), w.grad, atol=1e-4, rtol=0)
                torch.testing.assert_close(got["grad.bias"].double(), b.grad, atol=1e-4, rtol=0)
            opt.step()
        torch.testing.assert_close(got["weight"].double(), w.detach(), atol=1e-4, rtol=0)
        torch.testing.assert_close(got["bias"].double(), b.detach(), atol=1e-4, rtol=0)

    def test_zero_epochs_is_the_zero_shot_head(self):
        """labels.json display names and prompts; the head before any training."""
        soft = os.path.join(self.tmp, "soft-model")
        clip_twin.make_model(soft, seed=22, image_size=IMAGE_SIZE, logit_scale=math.log(4.0))
        twin = clip_twin.load_twin(soft)
        data = self.folder("labelled")
        write_class_folders(data, {"rust": 2, "blight": 2, "healthy": 2}, seed=1)
        doc = {"id": "farm", "title": "My farm", "templates": ["a photo of {}.", "{} in a field"],
               "classes": [
                   {"name": "healthy", "display": "Healthy wheat", "text": "a healthy wheat leaf"},
                   {"name": "rust", "display": "Leaf rust",
                    "prompts": ["orange pustules on a wheat leaf."]},
                   {"name": "blight", "display": "Blight", "use_templates": False,
                    "prompts": ["a brown blighted leaf.", "dead leaf tissue"]}]}
        labels_path = os.path.join(data, "labels.json")
        with open(labels_path, "w") as f:
            json.dump(doc, f)
        out = os.path.join(self.tmp, "zero.safetensors")
        train(soft, data, out, self.cache, "--epochs", "0", "--seed", "18446744073709551615")

        tensors, meta = read_adapter(out)
        classes = zeroshot.prompts_from_file(labels_path)
        want = twin.logit_scale * twin_class_embeddings(twin, classes)
        self.assertEqual(tuple(tensors["head.weight"].shape), (3, 32))
        torch.testing.assert_close(tensors["head.weight"] / twin.logit_scale,
                                   want / twin.logit_scale, atol=1e-4, rtol=0)
        self.assertEqual(tensors["head.bias"].tolist(), [0.0, 0.0, 0.0])
        self.assertEqual(meta["agriclip.kind"], "adapter")
        self.assertEqual(meta["agriclip.method"], "probe")
        self.assertEqual(meta["agriclip.base_model_name"], "soft-model")
        self.assertRegex(meta["agriclip.base_model"], "^[0-9a-f]{64}$")
        self.assertEqual([(k["name"], k["display"], k["prompts"]) for k in meta["agriclip.classes"]],
                         [(name, d["display"], prompts) for (name, prompts), d
                          in zip(classes, doc["classes"])])
        self.assertEqual(meta["agriclip.training"]["seed"], "18446744073709551615")
        self.assertEqual(meta["agriclip.metrics"]["epochs"], 0)

        # classify with it: the zero-shot probabilities of the same classes
        images = zeroshot.write_images(self.folder("zero-images"), ["a.png", "b.png", "c.png"],
                                       seed=4)
        results = classify_adapter(soft, out, images, self.cache)
        probs = zeroshot.reference_probs(twin, classes, images)
        self.assertLess(float(probs.max()), 0.99)  # several classes matter
        for (image, labels), row in zip(results, probs.tolist()):
            got = dict(labels)
            self.assertEqual(set(got), {"healthy", "rust", "blight"})
            for i, (name, _) in enumerate(classes):
                self.assertAlmostEqual(got[name], row[i], delta=1e-4, msg=f"{image} {name}")

    def test_epochs_match_pytorch(self):
        """Full-batch epochs on imbalanced classes: class-weighted CE + AdamW."""
        data = self.folder("imbalanced")
        paths = write_class_folders(data, {"blight": 6, "healthy": 3, "rust": 14}, seed=2)
        out = os.path.join(self.tmp, "epochs.safetensors")
        epochs, lr, wd = 4, 0.05, 0.01
        train(self.model, data, out, self.cache, "--val-fraction", "0", "--batch-size", "1000",
              "--epochs", str(epochs), "--lr", str(lr), "--weight-decay", str(wd))
        got, meta = read_adapter(out)
        self.assertEqual(meta["agriclip.metrics"]["n_train"], 23)
        self.assertIsNone(meta["agriclip.metrics"]["val_accuracy"])

        tags = ["blight", "healthy", "rust"]  # folder names, sorted
        x = twin_embeddings(self.twin, [p for t in tags for p in sorted(paths[t])])
        y = torch.tensor([i for i, t in enumerate(tags) for _ in paths[t]])
        counts = torch.tensor([len(paths[t]) for t in tags], dtype=torch.float64)
        class_weights = len(y) / (len(tags) * counts)
        start = self.twin.logit_scale * twin_class_embeddings(
            self.twin, [(t, [f"a photo of a {t}."]) for t in tags])

        def reference(weights):
            w = start.clone().requires_grad_()
            b = torch.zeros(len(tags), dtype=torch.float64, requires_grad=True)
            opt = torch.optim.AdamW([{"params": [w], "weight_decay": wd},
                                     {"params": [b], "weight_decay": 0.0}], lr=lr)
            for _ in range(epochs):
                opt.zero_grad()
                F.cross_entropy(x @ w.T + b, y, weight=weights).backward()
                opt.step()
            return w.detach(), b.detach()

        w, b = reference(class_weights)
        tolerance = 1e-4  # float32 against float64: about 1e-5 in practice
        self.assertGreater(float((w - start).abs().max()), 0.1)  # training moved the head
        torch.testing.assert_close(got["head.weight"], w, atol=tolerance, rtol=0)
        torch.testing.assert_close(got["head.bias"], b, atol=tolerance, rtol=0)
        # the comparison can tell the class weights from none
        w_plain, b_plain = reference(None)
        self.assertGreater(float(torch.cat([(w_plain - w).flatten(), b_plain - b]).abs().max()),
                           10 * tolerance)

    def test_learns_separable_classes(self):
        data = self.folder("separable")
        write_class_folders(data, {"rust": 20, "blight": 20, "healthy": 20, "mildew": 20},
                            seed=3)
        out = os.path.join(self.tmp, "separable.safetensors")
        proc = train(self.model, data, out, self.cache, "--seed", "5")
        _, meta = read_adapter(out)
        metrics = meta["agriclip.metrics"]
        self.assertEqual((metrics["n_train"], metrics["n_val"]), (64, 16))
        self.assertGreaterEqual(metrics["val_accuracy"], 0.95, metrics)
        # a random model: zero-shot is chance or a lucky guess, well below the probe
        self.assertLess(metrics["zero_shot_val_accuracy"], 0.8, metrics)
        self.assertGreaterEqual(metrics["val_accuracy"] - metrics["zero_shot_val_accuracy"], 0.2)
        self.assertIn("validation accuracy: zero-shot %.1f %%, trained %.1f %%" % (
            100 * metrics["zero_shot_val_accuracy"], 100 * metrics["val_accuracy"]), proc.stdout)

        # new photos of the same classes: the adapter labels them; zero-shot does not
        tags = ["rust", "blight", "healthy", "mildew"]
        fresh = write_class_folders(self.folder("fresh"), {t: 6 for t in tags}, seed=99)
        images = [p for t in tags for p in fresh[t]]
        truth = [t for t in tags for _ in fresh[t]]
        results = classify_adapter(self.model, out, images, self.cache)
        right = sum(labels[0][0] == t for (_, labels), t in zip(results, truth))
        self.assertGreaterEqual(right / len(truth), 0.95, results)
        args = ["classify", "--model", self.model, "--format", "jsonl"]
        for t in tags:
            args += ["--label", t]
        zero = zeroshot.parse_jsonl(run(args + images, self.cache).stdout)
        zero_right = sum(labels[0][0] == t for (_, labels), t in zip(zero, truth))
        self.assertLess(zero_right / len(truth), 0.8)

    def test_broken_files_are_reported_and_skipped(self):
        data = self.folder("broken")
        paths = write_class_folders(data, {"rust": 6, "healthy": 6}, seed=4)
        with open(paths["rust"][0], "rb") as f:
            png = f.read()
        broken = {os.path.join(data, "rust", "truncated.png"): png[:len(png) // 2],
                  os.path.join(data, "rust", "notes.jpg"): b"these are notes, not a photo",
                  os.path.join(data, "healthy", "empty.png"): b""}
        for path, content in broken.items():
            with open(path, "wb") as f:
                f.write(content)
        with open(os.path.join(data, "README.txt"), "w") as f:
            f.write("photos from the north field")
        out = os.path.join(self.tmp, "broken.safetensors")
        proc = train(self.model, data, out, self.cache)
        lines = proc.stderr.splitlines()
        for name in ["truncated.png", "notes.jpg", "empty.png", "README.txt"]:
            named = [line for line in lines if name in line]
            self.assertEqual(len(named), 1, proc.stderr)
            self.assertTrue(named[0].startswith("agriclip: ") and "skipped" in named[0], named)
        self.assertIn("12 images", proc.stdout)
        self.assertIn("3 skipped", proc.stdout)
        _, meta = read_adapter(out)
        self.assertEqual(meta["agriclip.metrics"]["n_skipped"], 3)

        # a class left with no readable image is an error that names its folder
        for path in paths["healthy"]:
            os.remove(path)
        proc = train(self.model, data, out, self.cache, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(os.path.join(data, "healthy"), proc.stderr)
        self.assertIn("none of the files", proc.stderr)

    def test_embedding_cache(self):
        cache = os.path.join(self.tmp, "own-cache")
        data = self.folder("cached")
        paths = write_class_folders(data, {"rust": 5, "blight": 5}, seed=6)
        first, second = (os.path.join(self.tmp, f"cache-{i}.safetensors") for i in (1, 2))
        self.assertIn("(0 from the cache", train(self.model, data, first, cache).stdout)
        self.assertIn("(10 from the cache", train(self.model, data, second, cache).stdout)
        with open(first, "rb") as a, open(second, "rb") as b:
            self.assertEqual(a.read(), b.read())  # cached embeddings are the computed ones
        entries = os.listdir(os.path.join(cache, "agriclip", "embeddings"))
        self.assertEqual(len(entries), 1)
        self.assertRegex(entries[0], "^[0-9a-f]{64}$")

        # an edited photo misses; a renamed one hits (content, not name)
        Image.open(paths["rust"][0]).transpose(Image.FLIP_LEFT_RIGHT).save(paths["rust"][0])
        os.rename(paths["blight"][0], os.path.join(data, "blight", "renamed.png"))
        self.assertIn("(9 from the cache", train(self.model, data, second, cache).stdout)
        # another model misses everything
        other = os.path.join(self.tmp, "cache-model")
        clip_twin.make_model(other, seed=23, image_size=IMAGE_SIZE)
        self.assertIn("(0 from the cache", train(other, data, second, cache).stdout)

    def test_unwritable_cache_is_reported_once(self):
        data = self.folder("no-cache")
        write_class_folders(data, {"rust": 4, "healthy": 4}, seed=9)
        blocked = os.path.join(self.tmp, "cache-is-a-file")
        with open(blocked, "w") as f:
            f.write("not a folder")
        out = os.path.join(self.tmp, "no-cache.safetensors")
        proc = train(self.model, data, out, blocked, "--epochs", "3")
        cache_lines = [line for line in proc.stderr.splitlines() if "embedding cache" in line]
        self.assertEqual(len(cache_lines), 1, proc.stderr)
        self.assertIn("cache-is-a-file", cache_lines[0])
        self.assertIn("(0 from the cache", proc.stdout)
        self.assertTrue(os.path.exists(out))

    def test_adapter_belongs_to_its_model(self):
        data = self.folder("identity")
        write_class_folders(data, {"rust": 4, "healthy": 4}, seed=7)
        out = os.path.join(self.tmp, "identity.safetensors")
        train(self.model, data, out, self.cache, "--epochs", "2")
        image = zeroshot.write_images(self.folder("identity-images"), ["x.png"], seed=1)

        # a copy elsewhere, with a tokenizer.json added: the same model
        copy = os.path.join(self.tmp, "model-copy")
        shutil.copytree(self.model, copy)
        with open(os.path.join(copy, "tokenizer.json"), "w") as f:
            f.write("{}")
        self.assertEqual(len(classify_adapter(copy, out, image, self.cache)), 1)

        # the same architecture with other weights: refused
        other = os.path.join(self.tmp, "model-other")
        clip_twin.make_model(other, seed=24, image_size=IMAGE_SIZE)
        proc = run(["classify", "--model", other, "--adapter", out] + image, self.cache,
                   check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("identity.safetensors: trained on another model (\"model\"", proc.stderr)
        # one changed weight is another model too
        weights = os.path.join(copy, "model.safetensors")
        with open(weights, "r+b") as f:
            f.seek(-4, os.SEEK_END)
            f.write(struct.pack("<f", 0.125))
        proc = run(["classify", "--model", copy, "--adapter", out] + image, self.cache,
                   check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("trained on another model", proc.stderr)

        # --adapter replaces the label options
        proc = run(["classify", "--model", self.model, "--adapter", out, "--label", "x"] + image,
                   self.cache, check=False)
        self.assertEqual(proc.returncode, 2)

    def test_bad_data_folder(self):
        proc = train(self.model, self.tmp, os.path.join(self.tmp, "nowhere", "x.safetensors"),
                     self.cache, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("x.safetensors: its folder does not exist", proc.stderr)
        one = self.folder("one-class")
        write_class_folders(one, {"rust": 3}, seed=8)
        proc = train(self.model, one, os.path.join(self.tmp, "x.safetensors"), self.cache,
                     check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertRegex(proc.stderr, r"^agriclip: .*one-class: 1 tag folder; training needs "
                                      r"at least two classes")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.safetensors")))
        proc = train(self.model, one, os.path.join(self.tmp, "x.safetensors"), self.cache,
                     "--method", "nonsense", check=False)
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main()
