"""--fast-decode (agc_image_load_draft) against Pillow: a JPEG decoded at a
reduced DCT scale equals Image.draft("RGB", (S, S)) + exif_transpose +
convert("RGB") bit for bit, and the model input equals torchvision's
Resize + CenterCrop + ToTensor + Normalize of that image (through
tests/tools/resize-dump).  PIL here links the same libjpeg-turbo."""
import os
import unittest

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms

from test_preprocess import CLIP_MEAN, CLIP_STD, ToolTestCase, picture

S = 224


def pil_draft(path, size=S):
    with Image.open(path) as image:
        image.draft("RGB", (size, size))
        return ImageOps.exif_transpose(image).convert("RGB")


class FastDecodeTest(ToolTestCase):
    # (width, height, save arguments, expected scale denominator)
    CASES = [
        (1801, 1351, dict(quality=90), 4),                  # 8 x 6 model sides: 1/4, odd sizes
        (2000, 1800, dict(quality=90), 8),                  # 8 x 8: 1/8
        (1000, 700, dict(quality=85, progressive=True), 2),  # progressive, 1/2
        (640, 900, dict(quality=90, subsampling=0), 2),     # 4:4:4, portrait
        (400, 300, dict(quality=90), 1),                    # too small to scale: full decode
    ]

    def save(self, name, pixels, exif_orientation=None, **save_args):
        path = self.path(name)
        image = Image.fromarray(pixels)
        if exif_orientation:
            exif = Image.Exif()
            exif[0x0112] = exif_orientation
            save_args["exif"] = exif.tobytes()
        image.save(path, **save_args)
        return path

    def check(self, path, scale, what):
        with Image.open(path) as image:
            full = image.size
        ref = pil_draft(path)
        stored = (-(-full[0] // scale), -(-full[1] // scale))
        self.assertIn(ref.size, (stored, stored[::-1]), f"{what}: Pillow's draft scale")
        proc = self.run_tool("--draft", S, "--decode", path, self.path("decoded.raw"))
        width, height = map(int, proc.stdout.split())
        ours = np.fromfile(self.path("decoded.raw"), np.uint8).reshape(height, width, 3)
        self.assert_pixels_equal(ours, ref, f"{what}: decoded pixels")

        self.run_tool("--draft", S, "--preprocess", S, path, self.path("pixels.f32"))
        ours = np.fromfile(self.path("pixels.f32"), np.float32).reshape(3, S, S)
        tf = transforms.Compose([
            transforms.Resize(S, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(S), transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD)])
        expected = tf(ref).numpy()
        self.assertTrue(np.array_equal(ours, expected),
                        f"{what}: model input differs, max {np.abs(ours - expected).max()}")

    def test_scales(self):
        for i, (w, h, save_args, scale) in enumerate(self.CASES):
            with self.subTest(size=(w, h), **{k: str(v) for k, v in save_args.items()}):
                path = self.save(f"photo{i}.jpg", picture(w, h, seed=i), **save_args)
                self.check(path, scale, f"{w}x{h} {save_args}")

    def test_exif_orientation(self):
        # stored sideways; the draft scale is chosen on the stored size, as Pillow
        for tag in (3, 6, 8):
            with self.subTest(orientation=tag):
                path = self.save(f"orient{tag}.jpg", picture(1200, 900, seed=tag),
                                 exif_orientation=tag, quality=90)
                self.check(path, 4, f"orientation {tag}")

    def test_gray(self):
        pixels = np.asarray(Image.fromarray(picture(1100, 950, seed=5)).convert("L"))
        path = self.path("gray.jpg")
        Image.fromarray(pixels).save(path, quality=90)
        self.check(path, 4, "grey JPEG")

    def test_full_decode_unchanged_without_draft(self):
        path = self.save("full.jpg", picture(1000, 700, seed=9), quality=90)
        proc = self.run_tool("--decode", path, self.path("decoded.raw"))
        width, height = map(int, proc.stdout.split())
        ours = np.fromfile(self.path("decoded.raw"), np.uint8).reshape(height, width, 3)
        with Image.open(path) as image:
            self.assert_pixels_equal(ours, image.convert("RGB"), "full decode")

    def test_corrupt_names_file(self):
        path = self.path("corrupt.jpg")
        good = self.save("good.jpg", picture(300, 200), quality=90)
        data = bytearray(open(good, "rb").read())
        data[2:40] = b"\xff\xc0\x00\x03" + b"\x00" * 34  # a broken frame header
        open(path, "wb").write(bytes(data))
        proc = self.run_tool("--draft", S, "--decode", path, self.path("x.raw"), ok=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("corrupt.jpg", proc.stderr)
        self.assertIn("jpeg", proc.stderr)


AGRICLIP = os.environ.get("AGRICLIP")


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class EvaluateFastDecodeTest(unittest.TestCase):
    """`agriclip evaluate --fast-decode` on JPEGs embeds what plain evaluate
    embeds for Pillow's draft decode of the same files saved losslessly
    (PNG): the same cached embeddings bit for bit, kept apart from the full
    decode's, which differ."""

    def test_evaluate(self):
        import shutil
        import subprocess
        import tempfile
        import clip_twin
        from test_zeroshot import IMAGE_SIZE

        tmp = tempfile.mkdtemp(prefix="agc-fast-eval-")
        self.addCleanup(shutil.rmtree, tmp, True)
        model = os.path.join(tmp, "model")
        clip_twin.make_model(model, seed=3, image_size=IMAGE_SIZE)
        jpegs, pngs = os.path.join(tmp, "jpegs"), os.path.join(tmp, "pngs")
        pairs = {}
        for c, cls in enumerate(("rust", "blight", "healthy")):
            for folder in (jpegs, pngs):
                os.makedirs(os.path.join(folder, cls))
            for i in range(3):
                # 300 x 220 for a 32-pixel model: 1/4 (Pillow's choice), one stored sideways
                jpeg = os.path.join(jpegs, cls, "%d.jpg" % i)
                image = Image.fromarray(picture(300, 220, seed=10 * c + i))
                args = dict(quality=90)
                if i == 2:
                    exif = Image.Exif()
                    exif[0x0112] = 6
                    args["exif"] = exif.tobytes()
                image.save(jpeg, **args)
                png = os.path.join(pngs, cls, "%d.png" % i)
                draft = pil_draft(jpeg, IMAGE_SIZE)
                self.assertLess(draft.size[0], 300)  # the test is about a reduced decode
                draft.save(png)
                pairs[jpeg] = png
        cache = os.path.join(tmp, "cache")
        env = dict(os.environ, XDG_CACHE_HOME=cache)

        def evaluate(data, *more):
            proc = subprocess.run([AGRICLIP, "evaluate", "--model", model, "--data", data,
                                   "--format", "json", *more], capture_output=True, text=True,
                                  env=env, timeout=600)
            self.assertEqual(proc.returncode, 0, proc.stderr)

        root = os.path.join(cache, "agriclip", "embeddings")

        def entries(key):
            found = {}
            for folder, _, files in os.walk(os.path.join(root, key)):
                for name in files:
                    tensors = clip_twin.read_safetensors(os.path.join(folder, name))
                    (value,) = [v for v in tensors.values() if v.is_floating_point()]
                    found[name.split(".")[0]] = value.numpy()
            return found

        import hashlib

        def digest(path):
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()

        evaluate(pngs)
        (plain,) = os.listdir(root)
        evaluate(jpegs, "--fast-decode")
        (fast,) = set(os.listdir(root)) - {plain}
        self.assertEqual(fast, plain + "-fast-decode")
        evaluate(jpegs)
        by_png, by_fast = entries(plain), entries(fast)
        self.assertEqual(len(by_fast), len(pairs))
        for jpeg, png in pairs.items():
            got, want = by_fast[digest(jpeg)], by_png[digest(png)]
            self.assertTrue(np.array_equal(got, want), "%s: max %g" % (
                jpeg, np.abs(got - want).max()))
            full = by_png[digest(jpeg)]  # the full decode's, under the plain key
            self.assertFalse(np.array_equal(got, full), jpeg)


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main()
