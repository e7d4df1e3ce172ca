"""test_embed.py — `agriclip embed` against the PyTorch twin (clip_twin.py).

Tiny random CLIP folders in every storage flavour (F32, F16, BF16, QuickGELU
and exact GELU, minimal config.json, sharded weights) are encoded by the C
engine and by the float64 twin; the embeddings must agree to float32
precision.  Images are PNGs at the model's input size, so both sides'
preprocessing is the identity resize plus normalisation; texts go through
the Python tokenizer reference on the twin's side.
"""

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_twin  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
MIN_COSINE = 0.99999
MAX_REL_ERROR = 1e-4  # max abs error / max |component|

TEXTS = [
    "a photo of a fox",
    "hello world",
    "You should've done this",
    "",
    "Ünïcödé café &amp; “quoted” <b>tomato</b> leaf, 42 spots!!",
    # 100+ tokens: truncated to 77 with the end token forced at the end
    " ".join(["a very long description of a diseased maize leaf with lesions"] * 12),
    # exactly around the boundary: 75 words of one token each, then more
    " ".join(["leaf"] * 75) + " tail",
]

VARIANTS = {
    # name: make_model keyword arguments
    "f32_quick_gelu": dict(dtype="F32", act="quick_gelu", seed=1),
    "f16_gelu_uneven_widths": dict(dtype="F16", act="gelu", seed=2, text_width=48,
                                   text_heads=3, vision_width=96, vision_heads=4,
                                   vision_layers=3, image_size=40, patch_size=8,
                                   projection_dim=24),
    "bf16_quick_gelu_minimal_config": dict(dtype="BF16", act="quick_gelu", seed=3,
                                           minimal_config=True),
    "f32_gelu_sharded": dict(dtype="F32", act="gelu", seed=4, sharded=True,
                             logit_scale=math.log(50)),
}


def run_embed(model_dir, images, texts, raw):
    """Runs the CLI; returns (image embeddings, text embeddings) in input order."""
    args = [AGRICLIP, "embed", "--model", model_dir]
    if raw:
        args.append("--raw")
    for path in images:
        args += ["--image", path]
    for text in texts:
        args += ["--text", text]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"agriclip embed failed ({proc.returncode}): {proc.stderr}")
    out = {"image": [], "text": []}
    for line in proc.stdout.splitlines():
        if line.strip():
            obj = json.loads(line)
            out[obj["kind"]].append((obj["input"], obj["embedding"]))
    assert [i for i, _ in out["image"]] == list(images), out["image"]
    assert [t for t, _ in out["text"]] == list(texts), [t for t, _ in out["text"]]
    return (torch.tensor([e for _, e in out["image"]], dtype=torch.float64),
            torch.tensor([e for _, e in out["text"]], dtype=torch.float64))


def write_images(folder, size, count, seed):
    """PNGs of size x size: smooth gradients plus noise, RGB and grayscale."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    paths = []
    for i in range(count):
        base = np.stack([xx, yy, (xx + yy) / 2], axis=-1) * 255 * rng.uniform(0.3, 1.0, 3)
        pixels = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        if i % 4 == 3:
            image = image.convert("L")  # gray input: expanded to RGB on both sides
        path = os.path.join(folder, f"image-{i}.png")
        image.save(path)
        paths.append(path)
    return paths


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class EmbedAgainstTwin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-embed-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_close(self, got, want, what):
        self.assertEqual(got.shape, want.shape, what)
        for i in range(want.shape[0]):
            cos = float(torch.nn.functional.cosine_similarity(got[i], want[i], dim=0))
            err = float((got[i] - want[i]).abs().max())
            scale = float(want[i].abs().max())
            self.assertGreaterEqual(cos, MIN_COSINE, f"{what} {i}: cosine {cos}")
            self.assertLessEqual(err, MAX_REL_ERROR * scale,
                                 f"{what} {i}: max error {err} vs max |component| {scale}")

    def check_variant(self, name, n_images=4, texts=TEXTS):
        kwargs = VARIANTS[name]
        model_dir = os.path.join(self.tmp, name)
        clip_twin.make_model(model_dir, **kwargs)
        twin = clip_twin.load_twin(model_dir)
        size = kwargs.get("image_size", 32)
        image_dir = os.path.join(self.tmp, name + "-images")
        os.makedirs(image_dir)
        images = write_images(image_dir, size, n_images, seed=kwargs["seed"])

        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, size) for p in images])
            want_images = twin.encode_image(pixels)
            want_texts = twin.encode_text(clip_twin.tokenize(texts))

        raw_images, raw_texts = run_embed(model_dir, images, texts, raw=True)
        self.assert_close(raw_images, want_images, f"{name}: raw image")
        self.assert_close(raw_texts, want_texts, f"{name}: raw text")

        norm_images, norm_texts = run_embed(model_dir, images, texts, raw=False)
        for got, want, what in ((norm_images, want_images, "image"),
                                (norm_texts, want_texts, "text")):
            norms = got.norm(dim=1)
            self.assertTrue(torch.allclose(norms, torch.ones_like(norms), atol=1e-5),
                            f"{name}: {what} norms {norms}")
            self.assert_close(got, want / want.norm(dim=1, keepdim=True),
                              f"{name}: normalised {what}")
        # the random weights must give distinct embeddings, or nothing was tested
        self.assertLess(float(torch.nn.functional.cosine_similarity(
            want_texts[0], want_texts[1], dim=0)), 0.99)
        self.assertLess(float(torch.nn.functional.cosine_similarity(
            want_images[0], want_images[1], dim=0)), 0.99)

    def test_f32_quick_gelu(self):
        self.check_variant("f32_quick_gelu")

    def test_f16_gelu_uneven_widths(self):
        self.check_variant("f16_gelu_uneven_widths")

    def test_bf16_quick_gelu_minimal_config(self):
        self.check_variant("bf16_quick_gelu_minimal_config")

    def test_f32_gelu_sharded_many_inputs(self):
        # more inputs than one forward batch of images (8) and of texts (32)
        texts = TEXTS + [f"photo number {i} of a {w} plant" for i, w in
                         enumerate(["wheat", "rice", "maize", "soy"] * 7)]
        self.assertGreater(len(texts), 32)
        self.check_variant("f32_gelu_sharded", n_images=10, texts=texts)


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ModelFolderErrors(unittest.TestCase):
    """Folders the engine must refuse, with a message that names the problem."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-embed-errors-")
        cls.good = os.path.join(cls.tmp, "good")
        clip_twin.make_model(cls.good, seed=5)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy_model(self, name):
        path = os.path.join(self.tmp, name)
        shutil.copytree(self.good, path)
        return path

    def assert_fails(self, model_dir, *fragments):
        proc = subprocess.run([AGRICLIP, "embed", "--model", model_dir, "--text", "a leaf"],
                              capture_output=True, text=True, timeout=300)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(proc.stdout.strip(), "")
        for fragment in fragments:
            self.assertIn(fragment, proc.stderr)

    def test_good_folder_works(self):
        proc = subprocess.run([AGRICLIP, "embed", "--model", self.good, "--text", "a leaf"],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_missing_folder(self):
        missing = os.path.join(self.tmp, "no-such-model")
        self.assert_fails(missing, missing)

    def test_pytorch_weights_only(self):
        # pytorch_model.bin holding the same tensors gives the same embeddings
        path = self.copy_model("pytorch-only")
        file = os.path.join(path, "model.safetensors")
        torch.save(clip_twin.read_safetensors(file), os.path.join(path, "pytorch_model.bin"))
        os.remove(file)
        _, got = run_embed(path, [], ["a leaf"], raw=True)
        _, want = run_embed(self.good, [], ["a leaf"], raw=True)
        self.assertEqual(got.tolist(), want.tolist())

    def test_missing_config(self):
        path = self.copy_model("no-config")
        os.remove(os.path.join(path, "config.json"))
        self.assert_fails(path, path, "config.json")

    def test_missing_logit_scale(self):
        path = self.copy_model("no-logit-scale")
        file = os.path.join(path, "model.safetensors")
        weights = clip_twin.read_safetensors(file)
        del weights["logit_scale"]
        clip_twin.write_safetensors(file, weights)
        self.assert_fails(path, path, "logit_scale")

    def test_wrong_shape_names_tensor(self):
        path = self.copy_model("wrong-shape")
        file = os.path.join(path, "model.safetensors")
        weights = clip_twin.read_safetensors(file)
        name = "vision_model.encoder.layers.1.mlp.fc1.bias"
        weights[name] = weights[name][:-1].clone()
        clip_twin.write_safetensors(file, weights)
        self.assert_fails(path, path, name)


if __name__ == "__main__":
    unittest.main()
