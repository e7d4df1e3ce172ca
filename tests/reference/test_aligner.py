"""test_aligner.py — `agriclip train --method aligner` (core/train/aligner-train.c):
AgriCLIP's DINO -> CLIP aligner fitted again by closed-form ridge
regression, against the same regression computed here in float64.

The AgriCLIP folders are built as in test_agriclip.py: a tiny random CLIP
twin (clip_twin.py) as the text model, a random torchvision ResNet-50
(test_resnet.random_resnet50) as Weights/dino_pretrain.pth, and a random
aligner {'W', 'b'} that is poor at telling the classes apart.  The
reference for an image set is

  f = ResNet-50(ImageNet preprocessing) in float64            [N, 2048]
  y = s * unit target, s = mean |W0 f + b0| (the old aligner)  [N, E]
      target: the tag's class embedding (mean of the raw prompt
      embeddings, normalised: the AgriCLIP recipe), or the CLIP image
      embedding when the text model has an image tower
  lambda = ridge * trace(Fc^T Fc) / 2048
  W = (Fc^T Fc + lambda I)^-1 Fc^T Yc,  b = mean(y) - W mean(f)

solved with numpy in float64; the adapter's W and b must match within
1e-4 of their largest entry.  Also: validation accuracy rises on
separable classes, the adapter's aligner classifies new photos right
(by the reference scorer), a plain CLIP model is refused, broken files
are reported by name once and skipped, and a second run reads the
features from the cache.
"""

import json
import math
import os
import shutil
import struct
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
from test_resnet import imagenet_transform, random_resnet50  # noqa: E402
from test_train import draw, read_adapter  # noqa: E402
from test_zeroshot import parse_jsonl  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
EMBED_DIM = 32
FEATURES = 2048
CLIP_IMAGE_SIZE = 32
TOLERANCE = 1e-4

# colour and texture per class (test_train.draw), so that even random
# ResNet features separate them
LOOKS = {
    "rust": ((200, 90, 30), "vertical"),
    "blight": ((90, 60, 40), "horizontal"),
    "healthy": ((40, 170, 50), "diagonal"),
}
PROMPTS = {
    "rust": ["a maize leaf with rust", "orange pustules on a leaf"],
    "blight": ["a maize leaf with blight"],
    "healthy": ["a healthy green maize leaf", "a leaf without spots", "a green leaf"],
}


def run(args, cache, check=True):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    proc = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=900, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def train(model, data, out, cache, *extra, check=True):
    return run(["train", "--method", "aligner", "--model", model, "--data", data, "--out", out,
                *extra], cache, check)


def write_data(root, counts, seed):
    """root/TAG/NNN.(png|jpg) and root/labels.json; returns [(path, tag)]."""
    rng = np.random.default_rng(seed)
    images = []
    for tag, count in counts.items():
        os.makedirs(os.path.join(root, tag), exist_ok=True)
        for i in range(count):
            jpeg = i % 3 == 2
            path = os.path.join(root, tag, "%03d.%s" % (i, "jpg" if jpeg else "png"))
            draw(LOOKS[tag], rng).save(path, **({"quality": 95} if jpeg else {}))
            images.append((path, tag))
    labels = {"id": "aligner-test", "title": "aligner test", "templates": [],
              "classes": [{"name": tag, "display": tag.title(), "use_templates": False,
                           "prompts": PROMPTS[tag]} for tag in counts]}
    with open(os.path.join(root, "labels.json"), "w") as f:
        json.dump(labels, f)
    return images


class Reference:
    """The fit in float64 from the stored tensors."""

    def __init__(self, resnet, weight, bias, twin):
        self.resnet = resnet.double().eval()
        self.weight = weight.double().numpy()  # [E, 2048]
        self.bias = bias.double().numpy()
        self.twin = twin
        self.memo = {}

    def features(self, paths):
        todo = [p for p in paths if p not in self.memo]
        for start in range(0, len(todo), 8):
            batch = todo[start:start + 8]
            pixels = []
            for path in batch:
                with Image.open(path) as image:
                    pixels.append(imagenet_transform()(image.convert("RGB")))
            with torch.no_grad():
                f = self.resnet(torch.stack(pixels).double()).numpy()
            self.memo.update(zip(batch, f))
        return np.stack([self.memo[p] for p in paths])

    def class_embeddings(self, tags):
        """{tag: unit vector}: the mean of the raw prompt embeddings, normalised."""
        out = {}
        with torch.no_grad():
            for tag in tags:
                mean = self.twin.encode_text(clip_twin.tokenize(PROMPTS[tag])).mean(dim=0)
                out[tag] = (mean / mean.norm()).numpy()
        return out

    def clip_images(self, paths):
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, CLIP_IMAGE_SIZE) for p in paths])
            e = self.twin.encode_image(pixels).numpy()
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def fit(self, images, ridge, clip_targets):
        """(W [E, 2048], b [E], lambda, scale) fitted on every image."""
        paths = [p for p, _ in images]
        f = self.features(paths)
        if clip_targets:
            unit = self.clip_images(paths)
        else:
            classes = self.class_embeddings(sorted({t for _, t in images}))
            unit = np.stack([classes[t] for _, t in images])
        scale = float(np.linalg.norm(f @ self.weight.T + self.bias, axis=1).mean())
        y = scale * unit
        fc, yc = f - f.mean(axis=0), y - y.mean(axis=0)
        gram = fc.T @ fc
        lam = ridge * np.trace(gram) / FEATURES
        w = np.linalg.solve(gram + lam * np.eye(FEATURES), fc.T @ yc).T
        b = y.mean(axis=0) - w @ f.mean(axis=0)
        return w, b, lam, scale

    def accuracy(self, w, b, images, tags):
        classes = self.class_embeddings(tags)
        t = np.stack([classes[tag] for tag in tags])
        a = self.features([p for p, _ in images]) @ w.T + b
        predicted = np.argmax(a @ t.T / np.linalg.norm(a, axis=1, keepdims=True), axis=1)
        return float(np.mean([tags[k] == tag for k, (_, tag) in zip(predicted, images)]))


def has_ridge_option():
    proc = subprocess.run([AGRICLIP, "train", "--help"], capture_output=True, text=True)
    return "--ridge" in proc.stdout


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class AlignerTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-aligner-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.clip_dir = os.path.join(cls.tmp, "clip")
        clip_twin.make_model(cls.clip_dir, seed=21, image_size=CLIP_IMAGE_SIZE,
                             projection_dim=EMBED_DIM)
        cls.twin = clip_twin.load_twin(cls.clip_dir)

        # the text model without its image tower (CLIPTextModelWithProjection)
        cls.text_only = os.path.join(cls.tmp, "clip-text")
        os.makedirs(cls.text_only)
        weights = clip_twin.read_safetensors(os.path.join(cls.clip_dir, "model.safetensors"))
        clip_twin.write_safetensors(
            os.path.join(cls.text_only, "model.safetensors"),
            {k: v for k, v in weights.items()
             if not k.startswith(("vision_model.", "visual_projection."))},
            metadata={"format": "pt"})
        for name in ("config.json", "vocab.json", "merges.txt"):
            shutil.copy(os.path.join(cls.clip_dir, name), cls.text_only)

        resnet = random_resnet50(seed=3)
        gen = torch.Generator().manual_seed(5)
        weight = torch.randn(EMBED_DIM, FEATURES, generator=gen) / math.sqrt(FEATURES)
        bias = torch.randn(EMBED_DIM, generator=gen)
        weights_dir = os.path.join(cls.tmp, "Weights")
        os.makedirs(weights_dir)
        cls.resnet_file = os.path.join(weights_dir, "dino_pretrain.pth")
        torch.save(resnet.state_dict(), cls.resnet_file)
        cls.aligner_file = os.path.join(weights_dir, "Agri_Dino_aligner_DPT_CPT.pth")
        torch.save({"W": weight, "b": bias}, cls.aligner_file)
        cls.ref = Reference(resnet, weight, bias, cls.twin)

        # the released layout: CLIP files at the top, so CLIP image targets
        cls.with_tower = cls.agriclip_folder("agriclip-tower", cls.clip_dir)
        # the text model elsewhere, without an image tower: class text targets
        cls.without_tower = cls.agriclip_folder("agriclip-text", None,
                                                {"family": "agriclip",
                                                 "text_model": cls.text_only})

        cls.data = os.path.join(cls.tmp, "data")
        cls.images = write_data(cls.data, {"rust": 7, "blight": 6, "healthy": 7}, seed=1)

    @classmethod
    def agriclip_folder(cls, name, clip_files, manifest=None):
        path = os.path.join(cls.tmp, name)
        os.makedirs(os.path.join(path, "Weights"))
        if clip_files:
            for f in os.listdir(clip_files):
                os.symlink(os.path.join(clip_files, f), os.path.join(path, f))
        for f in (cls.resnet_file, cls.aligner_file):
            os.symlink(f, os.path.join(path, "Weights", os.path.basename(f)))
        if manifest:
            with open(os.path.join(path, "agriclip.json"), "w") as f:
                json.dump(manifest, f)
        return path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, name + ".safetensors")

    def assert_fit(self, adapter, images, clip_targets, ridge):
        tensors, meta = read_adapter(adapter)
        self.assertEqual(meta["agriclip.method"], "aligner")
        self.assertEqual(sorted(tensors), ["W", "b"])
        self.assertEqual(tuple(tensors["W"].shape), (EMBED_DIM, FEATURES))
        training = meta["agriclip.training"]
        self.assertEqual(training["targets"], "CLIP image embeddings" if clip_targets
                         else "class text embeddings")
        self.assertEqual(training["aligner"], "fitted")
        self.assertAlmostEqual(training["ridge_used"], ridge, delta=1e-12 * ridge)
        w, b, lam, scale = self.ref.fit(images, ridge, clip_targets)
        self.assertAlmostEqual(training["lambda"], lam, delta=1e-5 * lam)
        self.assertAlmostEqual(training["target_scale"], scale, delta=1e-5 * scale)
        got_w, got_b = tensors["W"].numpy(), tensors["b"].numpy()
        w_error = np.abs(got_w - w).max() / np.abs(w).max()
        b_error = np.abs(got_b - b).max() / np.abs(b).max()
        self.assertLess(w_error, TOLERANCE, f"W: {w_error}")
        self.assertLess(b_error, TOLERANCE, f"b: {b_error}")
        # the regression is not trivially near the old aligner
        self.assertGreater(np.abs(got_w - self.ref.weight).max(), 100 * TOLERANCE * np.abs(w).max())
        return tensors, meta, (w_error, b_error)

    # ---- numerics ------------------------------------------------------------

    def test_text_targets_match_numpy(self):
        """No validation images: ridge 1 (the middle of the range), every
        image fitted, toward the tags' class embeddings."""
        out = self.out("text")
        proc = train(self.without_tower, self.data, out, self.cache, "--val-fraction", "0")
        _, meta, errors = self.assert_fit(out, self.images, False, 1.0)
        print(f"\ntext targets: W, b relative errors {errors[0]:.2e}, {errors[1]:.2e}",
              file=sys.stderr)
        self.assertEqual(meta["agriclip.metrics"]["n_train"], len(self.images))
        self.assertIn("20 images", proc.stdout)

        # a second run reads the ResNet features from the cache: same fit
        again = self.out("text-again")
        proc = train(self.without_tower, self.data, again, self.cache, "--val-fraction", "0")
        self.assertIn("(20 from the cache", proc.stdout)
        first, _ = read_adapter(out)
        second, _ = read_adapter(again)
        for name in ("W", "b"):
            self.assertTrue(torch.equal(first[name], second[name]), name)

    def test_clip_image_targets_match_numpy(self):
        """The text model holds an image tower: the CLIP image embeddings of
        the same images are the targets, as in the paper."""
        out = self.out("clip")
        train(self.with_tower, self.data, out, self.cache, "--val-fraction", "0")
        _, _, errors = self.assert_fit(out, self.images, True, 1.0)
        print(f"\nCLIP image targets: W, b relative errors {errors[0]:.2e}, {errors[1]:.2e}",
              file=sys.stderr)

    def test_given_ridge(self):
        if not has_ridge_option():
            self.skipTest("agriclip train has no --ridge option yet")
        for ridge in (0.01, 30.0):
            out = self.out(f"ridge-{ridge}")
            train(self.without_tower, self.data, out, self.cache, "--val-fraction", "0",
                  "--ridge", str(ridge))
            self.assert_fit(out, self.images, False, ridge)

    # ---- learning ------------------------------------------------------------

    def test_lifts_validation_accuracy(self):
        """The random aligner is near chance; the fit toward the class
        embeddings separates the colour/texture classes, on the validation
        images and on new photos."""
        out = self.out("lift")
        proc = train(self.without_tower, self.data, out, self.cache, "--val-fraction", "0.3")
        tensors, meta = read_adapter(out)
        metrics = meta["agriclip.metrics"]
        print(f"\nvalidation accuracy {metrics['zero_shot_val_accuracy']:.3f} -> "
              f"{metrics['val_accuracy']:.3f} "
              f"(ridge {meta['agriclip.training'].get('ridge_used')})",
              file=sys.stderr)
        self.assertGreater(metrics["n_val"], 0)
        self.assertLessEqual(metrics["zero_shot_val_accuracy"], 0.67)
        self.assertGreaterEqual(metrics["val_accuracy"], 0.9)
        self.assertEqual(meta["agriclip.training"]["aligner"], "fitted")
        self.assertGreaterEqual(metrics["best_epoch"], 1)
        self.assertEqual(metrics["epochs"], 7)  # 10^-3 .. 10^3
        self.assertIn("validation accuracy", proc.stdout)

        tags = sorted(LOOKS)
        new = write_data(os.path.join(self.tmp, "new"), {t: 4 for t in tags}, seed=9)
        before = self.ref.accuracy(self.ref.weight, self.ref.bias, new, tags)
        after = self.ref.accuracy(tensors["W"].numpy(), tensors["b"].numpy(), new, tags)
        self.assertGreaterEqual(after, 0.9)
        self.assertGreater(after, before)

    def test_adapter_applied_changes_classify(self):
        """classify --adapter puts the adapter's W and b in place of the
        aligner: probabilities softmax(100 cos(W f + b, class)) over the
        adapter's classes, unlike those of the original aligner."""
        out = self.out("applied")
        train(self.without_tower, self.data, out, self.cache, "--val-fraction", "0")
        tensors, _ = read_adapter(out)
        tags = sorted(LOOKS)
        new = write_data(os.path.join(self.tmp, "applied-new"), {t: 2 for t in tags}, seed=11)
        paths = [p for p, _ in new]
        proc = run(["classify", "--model", self.without_tower, "--adapter", out, "--format",
                    "jsonl", "--top", str(len(tags))] + paths, self.cache)
        got = [dict(labels) for _, labels in parse_jsonl(proc.stdout)]
        classes = self.ref.class_embeddings(tags)
        t = np.stack([classes[tag] for tag in tags])

        def probs(w, b):
            a = self.ref.features(paths) @ w.T + b
            z = 100.0 * (a / np.linalg.norm(a, axis=1, keepdims=True)) @ t.T
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        want = probs(tensors["W"].numpy(), tensors["b"].numpy())
        before = probs(self.ref.weight, self.ref.bias)
        self.assertGreater(np.abs(want - before).max(), 0.1)
        for i, path in enumerate(paths):
            for k, tag in enumerate(tags):
                self.assertAlmostEqual(got[i][tag], want[i, k], delta=1e-4, msg=f"{path} {tag}")

    def test_stacked_on_an_aligner_and_unknown_tensors_refused(self):
        """train --adapter BASE: the new aligner replaces the base's W and b (the file
        names the base in agriclip.stack); an aligner adapter carrying a tensor the
        AgriCLIP model cannot apply is refused by name, never dropped silently."""
        base, top = self.out("stack-base"), self.out("stack-top")
        train(self.without_tower, self.data, base, self.cache, "--val-fraction", "0",
              "--ridge", "1")
        train(self.without_tower, self.data, top, self.cache, "--val-fraction", "0",
              "--ridge", "0.1", "--adapter", base)
        base_t, _ = read_adapter(base)
        top_t, _ = read_adapter(top)
        self.assertEqual(set(top_t), {"W", "b"})
        self.assertGreater(float((top_t["W"] - base_t["W"]).abs().max()), 0)
        with open(top, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n))["__metadata__"]
        stack = json.loads(meta["agriclip.stack"])
        self.assertEqual([(e["method"], e["file"]) for e in stack],
                         [("aligner", os.path.basename(base))])
        bogus = self.out("bogus.safetensors")
        clip_twin.write_safetensors(bogus, {"W": top_t["W"].float(), "b": top_t["b"].float(),
                                            "nonsense.weight": torch.zeros(3)}, metadata=meta)
        path = write_data(os.path.join(self.tmp, "bogus-photos"), {sorted(LOOKS)[0]: 1},
                          seed=12)[0][0]
        proc = run(["classify", "--model", self.without_tower, "--adapter", bogus, path],
                   self.cache, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("nonsense.weight", proc.stderr)

    # ---- bad input -----------------------------------------------------------

    def test_plain_clip_is_refused(self):
        proc = train(self.clip_dir, self.data, self.out("plain"), self.cache, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("not an AgriCLIP model", proc.stderr)
        self.assertIn(self.clip_dir, proc.stderr)
        self.assertFalse(os.path.exists(self.out("plain")))

    def test_broken_files_are_reported_once(self):
        """With CLIP image targets the images are read twice (features and
        targets); each broken file is still reported once, by name."""
        data = os.path.join(self.tmp, "broken")
        images = write_data(data, {"rust": 4, "healthy": 4}, seed=3)
        with open(images[0][0], "rb") as f:
            png = f.read()
        broken = {os.path.join(data, "rust", "truncated.png"): png[:len(png) // 2],
                  os.path.join(data, "healthy", "notes.jpg"): b"not a photo"}
        for path, content in broken.items():
            with open(path, "wb") as f:
                f.write(content)
        out = self.out("broken")
        proc = train(self.with_tower, data, out, self.cache, "--val-fraction", "0")
        for name in ("truncated.png", "notes.jpg"):
            named = [line for line in proc.stderr.splitlines() if name in line]
            self.assertEqual(len(named), 1, proc.stderr)
            self.assertIn("skipped", named[0])
        _, meta = read_adapter(out)
        self.assertEqual(meta["agriclip.metrics"]["n_skipped"], 2)
        self.assert_fit(out, images, True, 1.0)


if __name__ == "__main__":
    unittest.main()
