"""AgriCLIP's image backbone (core/nn/resnet.c, a torchvision ResNet-50 without
fc) and its ImageNet preprocessing, compared with torchvision 0.14 through
tests/tools/resnet-embed.

The reference network is torchvision.models.resnet50 itself, with random
weights and BatchNorm statistics that matter: they are first measured on
random inputs (so activations stay in range through 16 blocks), then
scrambled.  It runs in float64 from the float32 weights written to the file,
so the comparison measures our float32 error alone.
"""
import copy
import os
import subprocess
import tempfile
import unittest

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from clip_twin import write_safetensors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "resnet-embed") if BUILD_DIR else None


def random_resnet50(seed=0):
    """An eval-mode torchvision ResNet-50, fc = Identity, float32."""
    torch.manual_seed(seed)
    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # measure real statistics: momentum None keeps a cumulative average
    model.train()
    for m in norms:
        m.momentum = None
    with torch.no_grad():
        model(torch.randn(4, 3, 96, 96))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in norms:
            c = m.num_features

            def uniform(lo, hi):
                return lo + (hi - lo) * torch.rand(c, generator=gen)

            std = m.running_var.sqrt()
            m.running_mean += 0.3 * std * torch.randn(c, generator=gen)
            m.running_var *= uniform(0.5, 2.0)
            m.weight.copy_(uniform(0.5, 1.5))
            m.bias.copy_(0.3 * torch.randn(c, generator=gen))
            m.momentum = 0.1
    return model.eval()


def picture(width, height, seed=0):
    """RGB uint8 [height, width, 3]: an asymmetric scene (red L, green square,
    blue gradient) with noise, so flips and channel swaps show."""
    rng = np.random.default_rng(seed)
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    img = np.zeros((height, width, 3), np.int16)
    img[..., 2] = (180 + 60 * u).astype(np.int16)

    def box(u0, u1, v0, v1):
        return ((v > v0) & (v < v1))[:, None] & ((u > u0) & (u < u1))[None, :]

    img[box(0.1, 0.25, 0.1, 0.8) | box(0.1, 0.6, 0.65, 0.8)] = (230, 20, 30)
    img[box(0.7, 0.9, 0.1, 0.35)] = (20, 220, 40)
    img += rng.integers(-20, 21, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def imagenet_transform(size=224):
    return transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def reference(model, pixels):
    """float64 features [B, 2048] of float32 pixels [B, 3, H, W]."""
    with torch.no_grad():
        return model(torch.from_numpy(pixels).double()).numpy()


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class ResNetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = random_resnet50()
        state = cls.model.state_dict()  # includes num_batches_tracked (int64)
        cls.weights = os.path.join(cls.tmp.name, "resnet50.safetensors")
        write_safetensors(cls.weights, state)
        cls.model64 = copy.deepcopy(cls.model).double().eval()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def embed(self, *args, weights=None, prefix=None, threads=None):
        cmd = [TOOL]
        if prefix is not None:
            cmd += ["--prefix", prefix]
        cmd += [weights or self.weights, *map(str, args)]
        env = dict(os.environ)
        if threads is not None:  # the pool follows OpenBLAS's count
            env["OPENBLAS_NUM_THREADS"] = str(threads)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        self.assertEqual(proc.returncode, 0, f"resnet-embed {args}: {proc.stderr}")
        return np.array([[float(v) for v in line.split()] for line in proc.stdout.splitlines()])

    def embed_raw(self, pixels, **kwargs):
        path = self.path("pixels.f32")
        pixels.astype(np.float32).tofile(path)
        return self.embed("--raw", path, *pixels.shape[:1], *pixels.shape[2:], **kwargs)

    def assert_close(self, ours, ref, what):
        self.assertEqual(ours.shape, ref.shape, what)
        for i, (a, r) in enumerate(zip(ours, ref)):
            cos = float(a @ r / (np.linalg.norm(a) * np.linalg.norm(r)))
            err = float(np.abs(a - r).max())
            scale = float(np.abs(r).max())
            self.assertGreaterEqual(cos, 0.99999, f"{what} image {i}: cosine {cos}")
            self.assertLessEqual(err, 1e-4 * scale, f"{what} image {i}: max err {err} of {scale}")

    def check_raw(self, batch, height, width, seed):
        pixels = np.random.default_rng(seed).standard_normal(
            (batch, 3, height, width)).astype(np.float32)
        self.assert_close(self.embed_raw(pixels), reference(self.model64, pixels),
                          f"{batch} x {height}x{width}")

    def test_reference_is_sensitive(self):
        # The test could not see BatchNorm mistakes if the statistics did not
        # change the output: with neutral statistics it must differ clearly.
        pixels = np.random.default_rng(9).standard_normal((1, 3, 64, 64)).astype(np.float32)
        neutral = copy.deepcopy(self.model64)
        for m in neutral.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
        a, b = reference(self.model64, pixels)[0], reference(neutral, pixels)[0]
        self.assertGreater(float(np.abs(a).max()), 1e-2)
        self.assertLess(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), 0.99)

    def test_224(self):
        self.check_raw(1, 224, 224, seed=1)
        self.check_raw(3, 224, 224, seed=2)

    def test_small(self):
        self.check_raw(1, 64, 64, seed=3)
        self.check_raw(3, 64, 64, seed=4)

    def test_odd_non_square(self):
        # odd sizes put the padding of every stride-2 step on one side only
        self.check_raw(2, 75, 97, seed=5)
        self.check_raw(1, 33, 17, seed=6)

    def test_thread_counts(self):
        # one thread runs every conv as row tiles; two split the convs with
        # few output pixels (layer4 here: 2 x 2 pixels) by output channels
        pixels = np.random.default_rng(10).standard_normal((2, 3, 64, 64)).astype(np.float32)
        ref = reference(self.model64, pixels)
        for threads in (1, 2, 3):
            with self.subTest(threads=threads):
                self.assert_close(self.embed_raw(pixels, threads=threads), ref,
                                  f"{threads} threads")

    def test_batch_is_independent(self):
        pixels = np.random.default_rng(7).standard_normal((3, 3, 64, 64)).astype(np.float32)
        together = self.embed_raw(pixels)
        alone = self.embed_raw(pixels[1:2])
        np.testing.assert_allclose(together[1:2], alone, rtol=0, atol=1e-5 * np.abs(alone).max())

    def test_prefix_and_fc_ignored(self):
        state = {"backbone." + k: v for k, v in self.model.state_dict().items()}
        gen = torch.Generator().manual_seed(3)
        state["backbone.fc.weight"] = torch.randn(10, 2048, generator=gen)
        state["backbone.fc.bias"] = torch.randn(10, generator=gen)
        path = self.path("prefixed.safetensors")
        write_safetensors(path, state)
        pixels = np.random.default_rng(8).standard_normal((1, 3, 64, 64)).astype(np.float32)
        self.assert_close(self.embed_raw(pixels, weights=path, prefix="backbone."),
                          reference(self.model64, pixels), "prefix backbone.")

    def test_image_end_to_end(self):
        path = self.path("leaf.png")
        Image.fromarray(picture(320, 240, seed=1)).save(path)
        with Image.open(path) as image:
            pixels = imagenet_transform()(image.convert("RGB")).numpy()[None]
        self.assert_close(self.embed("--image", path), reference(self.model64, pixels),
                          "image 320x240")


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class ImageNetPreprocessTest(unittest.TestCase):
    """agc_preprocess_imagenet_defaults + agc_preprocess_image against
    Resize(224, bilinear), CenterCrop(224), ToTensor, Normalize(ImageNet)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, name, size, save_args):
        path = os.path.join(self.tmp.name, name)
        out = os.path.join(self.tmp.name, "out.f32")
        Image.fromarray(picture(*size, seed=size[0])).save(path, **save_args)
        proc = subprocess.run([TOOL, "--preprocess", "224", path, out], capture_output=True,
                              text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ours = np.fromfile(out, np.float32).reshape(3, 224, 224)
        with Image.open(path) as image:
            ref = imagenet_transform()(image.convert("RGB")).numpy()
        diff = np.abs(ours - ref)
        # decoding and resizing are Pillow-exact, so only float rounding is left
        self.assertLessEqual(float(diff.max()), 1e-5, f"{name} {size}: max diff {diff.max()}")

    def test_files(self):
        cases = [
            ("landscape.jpg", (640, 427), dict(quality=90)),
            ("portrait.jpg", (301, 457), dict(quality=75)),
            ("small.png", (100, 60), {}),      # upscaling
            ("square.png", (224, 224), {}),
            ("odd-crop.png", (229, 224), {}),  # crop offset round(2.5) = 2
        ]
        for name, size, save_args in cases:
            with self.subTest(name=name):
                self.check(name, size, save_args)

    def test_not_clip_normalisation(self):
        # a mid-grey image gives (128/255 - mean) / std per channel: ImageNet's values
        path = os.path.join(self.tmp.name, "grey.png")
        out = os.path.join(self.tmp.name, "out.f32")
        Image.new("RGB", (300, 250), (128, 128, 128)).save(path)
        subprocess.run([TOOL, "--preprocess", "224", path, out], check=True)
        ours = np.fromfile(out, np.float32).reshape(3, -1)
        want = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        np.testing.assert_allclose(ours, np.repeat(want[:, None], ours.shape[1], 1), atol=1e-6)


if __name__ == "__main__":
    unittest.main()
