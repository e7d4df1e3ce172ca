"""Image decoding, Pillow-exact resizing and CLIP preprocessing, compared with
PIL and torchvision 0.14 through tests/tools/resize-dump.

Test pictures are asymmetric (a red L and a green square on a blue ground,
plus noise), so flips, transposes and channel swaps cannot go unnoticed.
"""
import os
import struct
import subprocess
import tempfile
import unittest
import zlib

import numpy as np
from PIL import Image, ImageOps
from torchvision import transforms

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "resize-dump") if BUILD_DIR else None


def picture(width, height, seed=0):
    """RGB uint8 [height, width, 3]: blue ground, red L top left, green square
    bottom right, a horizontal gradient and noise."""
    rng = np.random.default_rng(seed)
    u = (np.arange(width) + 0.5) / width     # [W]
    v = (np.arange(height) + 0.5) / height   # [H]
    img = np.zeros((height, width, 3), np.int16)
    img[..., 2] = (180 + 60 * u).astype(np.int16)
    def box(u0, u1, v0, v1):
        return ((v > v0) & (v < v1))[:, None] & ((u > u0) & (u < u1))[None, :]
    img[box(0.1, 0.25, 0.1, 0.8) | box(0.1, 0.6, 0.65, 0.8)] = (230, 20, 30)
    img[box(0.7, 0.9, 0.1, 0.35)] = (20, 220, 40)
    img += rng.integers(-20, 21, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def load_rgb(path):
    with Image.open(path) as image:
        return image.convert("RGB")


def noise(width, height, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


def write_png16(path, samples):
    """A 16-bit PNG (PIL cannot write 16-bit RGB): samples uint16 [H, W, C], C = 1, 3."""
    height, width, channels = samples.shape
    color_type = {1: 0, 3: 2}[channels]
    rows = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
                + chunk(b"IEND", b""))


def write_png_header_only(path, width, height):
    """A PNG whose header claims width x height, with almost no pixel data."""
    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# Orientation tag -> the transform that displays the stored pixels upright
# (the EXIF definitions, independent of PIL).
ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class ToolTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_tool(self, *args, ok=True):
        proc = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
        if ok:
            self.assertEqual(proc.returncode, 0, f"resize-dump {args}: {proc.stderr}")
        return proc

    def decode(self, path):
        proc = self.run_tool("--decode", path, self.path("decoded.raw"))
        width, height = map(int, proc.stdout.split())
        data = np.fromfile(self.path("decoded.raw"), np.uint8)
        return data.reshape(height, width, 3)

    def assert_pixels_equal(self, ours, ref, what):
        ref = np.asarray(ref)
        self.assertEqual(ours.shape, ref.shape, what)
        diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
        self.assertEqual(int(diff.max()), 0,
                         f"{what}: {int((diff > 0).sum())} values differ, max {int(diff.max())}")


class ResizeTest(ToolTestCase):
    """agc_resize_rgb8 against PIL Image.resize."""

    CASES = [
        # (source w, h), (target w, h)
        ((640, 427), (335, 224)),    # landscape, downscale
        ((301, 457), (224, 340)),    # portrait, odd sizes
        ((1, 1), (224, 224)),        # single pixel
        ((2, 3), (224, 336)),        # tiny, upscale
        ((7, 5), (313, 224)),
        ((7, 5), (1, 1)),            # down to one pixel
        ((1, 50), (3, 150)),         # one column
        ((50, 1), (150, 3)),         # one row
        ((50, 37), (311, 230)),      # upscale
        ((640, 427), (100, 300)),    # aspect change: down in x, up in y
        ((300, 224), (224, 224)),    # only the horizontal pass
        ((224, 300), (224, 224)),    # only the vertical pass
        ((224, 224), (224, 224)),    # identity
        ((4123, 2777), (332, 224)),  # large photo
    ]

    def check(self, src, dst, filt, make):
        pixels = make(*src, seed=src[0] * 7 + src[1])
        in_path = self.path("in.ppm")  # lossless, and quick to write when large
        Image.fromarray(pixels).save(in_path)
        args = ["--bilinear"] if filt == Image.BILINEAR else []
        self.run_tool(*args, in_path, dst[0], dst[1], self.path("out.raw"))
        ours = np.fromfile(self.path("out.raw"), np.uint8).reshape(dst[1], dst[0], 3)
        ref = np.asarray(Image.fromarray(pixels).resize(dst, filt))
        diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
        what = f"{src} -> {dst} {'bilinear' if filt == Image.BILINEAR else 'bicubic'}"
        self.assertLessEqual(int(diff.max()), 1, what)
        self.assertLess((diff > 0).mean(), 1e-3, what)
        # Pillow's arithmetic is reproduced exactly, so in practice nothing differs.
        self.assertEqual(int((diff > 0).sum()), 0, what)

    def test_bicubic_noise(self):
        # Noise drives the negative lobes hard: clipping and rounding are exercised.
        for src, dst in self.CASES:
            with self.subTest(src=src, dst=dst):
                self.check(src, dst, Image.BICUBIC, noise)

    def test_bilinear_noise(self):
        for src, dst in self.CASES:
            with self.subTest(src=src, dst=dst):
                self.check(src, dst, Image.BILINEAR, noise)

    def test_bicubic_picture(self):
        for src, dst in self.CASES:
            if 8 <= min(src) and max(src) <= 1000:  # the large case is in the noise tests
                with self.subTest(src=src, dst=dst):
                    self.check(src, dst, Image.BICUBIC, picture)


class PreprocessTest(ToolTestCase):
    """agc_preprocess_image against torchvision
    Compose(Resize, CenterCrop, ToTensor, Normalize) on the PIL image."""

    def check(self, size, edge, crop=None, bilinear=False):
        width, height = size
        pixels = picture(width, height, seed=width + 3 * height)
        in_path = self.path("in.ppm")  # lossless, and quick to write when large
        Image.fromarray(pixels).save(in_path)
        crop_w, crop_h = crop if crop else (edge, edge)
        args = ["--bilinear"] if bilinear else []
        if crop:
            args += ["--crop", crop_w, crop_h]
        proc = self.run_tool(*args, "--preprocess", edge, in_path, self.path("out.f32"))
        resized = tuple(map(int, proc.stdout.split()))
        ours = np.fromfile(self.path("out.f32"), np.float32).reshape(3, crop_h, crop_w)

        mode = transforms.InterpolationMode.BILINEAR if bilinear else \
            transforms.InterpolationMode.BICUBIC
        resize = transforms.Resize(edge, interpolation=mode)
        ref_resized = resize(Image.fromarray(pixels))
        ref = transforms.Compose([
            resize,
            transforms.CenterCrop((crop_h, crop_w)),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ])(Image.fromarray(pixels)).numpy()

        what = f"{size} edge {edge} crop {crop_w}x{crop_h}"
        self.assertEqual(resized, ref_resized.size, what)
        self.assertEqual(ours.shape, ref.shape, what)
        diff = np.abs(ours - ref)
        # A pixel off by one after resizing moves a value by 1 / (255 std).
        one_pixel = (1.0 / 255.0) / np.array(CLIP_STD, np.float32)[:, None, None]
        self.assertTrue(np.all(diff <= one_pixel + 1e-5), f"{what}: max diff {diff.max()}")
        self.assertLess((diff > 1e-5).mean(), 1e-3, what)
        self.assertEqual(int((diff > 1e-5).sum()), 0, what)

    def test_clip_224(self):
        cases = [
            (640, 427),    # landscape
            (427, 640),    # portrait
            (224, 224),    # already the right size
            (227, 224),    # crop offset round(1.5) = 2
            (229, 224),    # crop offset round(2.5) = 2 (half to even)
            (224, 231),    # round(3.5) = 4, vertically
            (100, 60),     # upscaling
            (5, 7),        # tiny
            (1, 1),
            (3000, 200),   # panorama
            (4123, 2777),  # large photo
        ]
        for size in cases:
            with self.subTest(size=size):
                self.check(size, 224)

    def test_other_sizes(self):
        self.check((640, 427), 336)
        self.check((500, 333), 288)

    def test_bilinear(self):
        # AgriCLIP's DINO branch resizes bilinearly.
        self.check((640, 427), 224, bilinear=True)
        self.check((301, 457), 224, bilinear=True)

    def test_crop_larger_than_image_pads(self):
        # torchvision pads with zeros, (crop - size) // 2 before, the rest after.
        self.check((640, 427), 200, crop=(224, 240))
        self.check((427, 640), 200, crop=(231, 205))
        self.check((300, 300), 100, crop=(131, 117))


class DecodeTest(ToolTestCase):
    """agc_image_load against PIL's Image.open(...).convert("RGB")."""

    def setUp(self):
        super().setUp()
        self.pixels = picture(61, 43, seed=5)

    def check_pil(self, name, image, **save_args):
        path = self.path(name)
        image.save(path, **save_args)
        self.assert_pixels_equal(self.decode(path), load_rgb(path), name)

    def test_png(self):
        rgb = Image.fromarray(self.pixels)
        alpha = np.random.default_rng(1).integers(0, 256, self.pixels.shape[:2]).astype(np.uint8)
        alpha[:5] = 0  # fully transparent pixels keep their colour in PIL
        rgba = Image.fromarray(np.dstack([self.pixels, alpha]))
        self.check_pil("rgb.png", rgb)
        self.check_pil("rgba.png", rgba)
        self.check_pil("gray.png", rgb.convert("L"))
        self.check_pil("gray-alpha.png", rgba.convert("LA"))
        self.check_pil("palette.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=50))
        self.check_pil("palette-trns.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE),
                       transparency=3)
        self.check_pil("bilevel.png", rgb.convert("1"))

    def test_png_16bit_rgb(self):
        rng = np.random.default_rng(2)
        samples = rng.integers(0, 65536, (23, 37, 3)).astype(np.uint16)
        path = self.path("rgb16.png")
        write_png16(path, samples)
        ours = self.decode(path)
        # PIL ("RGB;16B") and gdk-pixbuf both keep the high byte.
        self.assert_pixels_equal(ours, load_rgb(path), "rgb16.png vs PIL")
        self.assert_pixels_equal(ours, (samples >> 8).astype(np.uint8), "rgb16.png high byte")

    def test_png_16bit_gray(self):
        samples = (np.arange(23 * 37).reshape(23, 37, 1) * 71 % 65536).astype(np.uint16)
        path = self.path("gray16.png")
        write_png16(path, samples)
        ours = self.decode(path)
        # Documented difference: PIL's convert("RGB") of a 16-bit grey image
        # clips values above 255 (a nearly white picture); we keep the high byte.
        expected = np.repeat((samples >> 8).astype(np.uint8), 3, axis=2)
        self.assert_pixels_equal(ours, expected, "gray16.png high byte")

    def test_jpeg(self):
        rgb = Image.fromarray(self.pixels)
        self.check_pil("default.jpg", rgb, quality=90)
        self.check_pil("444.jpg", rgb, quality=90, subsampling=0)
        self.check_pil("progressive.jpg", rgb, quality=85, progressive=True)
        self.check_pil("gray.jpg", rgb.convert("L"))
        self.check_pil("cmyk.jpg", rgb.convert("CMYK"))

    def test_jpeg_exif_orientation(self):
        rgb = Image.fromarray(self.pixels)
        for tag in range(1, 9):
            with self.subTest(orientation=tag):
                exif = Image.Exif()
                exif[0x0112] = tag
                path = self.path(f"orient{tag}.jpg")
                rgb.save(path, quality=92, exif=exif.tobytes())
                ours = self.decode(path)
                with Image.open(path) as image:
                    ref = ImageOps.exif_transpose(image).convert("RGB")
                self.assert_pixels_equal(ours, ref, f"orientation {tag} vs exif_transpose")
                # The stored pixels, transformed by the EXIF definition.
                upright = ORIENT[tag](np.asarray(load_rgb(path)))
                self.assert_pixels_equal(ours, upright, f"orientation {tag} vs definition")

    def test_tiff(self):
        rgb = Image.fromarray(self.pixels)
        self.check_pil("plain.tif", rgb)
        self.check_pil("lzw.tif", rgb, compression="tiff_lzw")
        self.check_pil("deflate.tif", rgb, compression="tiff_adobe_deflate")
        self.check_pil("gray.tif", rgb.convert("L"))
        opaque = np.dstack([self.pixels, np.full(self.pixels.shape[:2], 255, np.uint8)])
        self.check_pil("opaque-rgba.tif", Image.fromarray(opaque))

    def test_tiff_orientation(self):
        # PIL applies a TIFF's orientation tag while loading, so plain
        # Image.open is the reference here.
        rgb = Image.fromarray(self.pixels)
        for tag in range(1, 9):
            with self.subTest(orientation=tag):
                path = self.path(f"orient{tag}.tif")
                rgb.save(path, tiffinfo={0x0112: tag})
                ours = self.decode(path)
                self.assert_pixels_equal(ours, load_rgb(path), f"tiff {tag}")
                self.assert_pixels_equal(ours, ORIENT[tag](self.pixels), f"tiff {tag} definition")

    def test_tiff_translucent_is_premultiplied(self):
        # Documented difference: libtiff's RGBA reader (used by gdk-pixbuf)
        # returns colours multiplied by alpha; PIL keeps them.
        alpha = np.random.default_rng(3).integers(0, 256, self.pixels.shape[:2]).astype(np.uint8)
        path = self.path("rgba.tif")
        Image.fromarray(np.dstack([self.pixels, alpha])).save(path)
        a = alpha[..., None].astype(np.int32)
        expected = (self.pixels.astype(np.int32) * a + 127) // 255
        self.assert_pixels_equal(self.decode(path), expected, "rgba.tif premultiplied")

    def test_tiff_16bit_gray(self):
        samples = (np.arange(23 * 37).reshape(23, 37) * 71 % 65536).astype(np.uint16)
        path = self.path("gray16.tif")
        Image.fromarray(samples).save(path)
        expected = np.repeat((samples >> 8).astype(np.uint8)[..., None], 3, axis=2)
        self.assert_pixels_equal(self.decode(path), expected, "gray16.tif high byte")

    def test_webp(self):
        rgb = Image.fromarray(self.pixels)
        alpha = np.random.default_rng(4).integers(0, 256, self.pixels.shape[:2]).astype(np.uint8)
        self.check_pil("lossless.webp", rgb, lossless=True)
        self.check_pil("lossy.webp", rgb, quality=80)
        self.check_pil("alpha.webp", Image.fromarray(np.dstack([self.pixels, alpha])),
                       lossless=True)

    def test_other_formats(self):
        rgb = Image.fromarray(self.pixels)
        self.check_pil("picture.bmp", rgb)
        self.check_pil("picture.gif", rgb)


class DecodeErrorTest(ToolTestCase):
    def assert_fails(self, path, *words):
        proc = self.run_tool("--decode", path, self.path("out.raw"), ok=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(os.path.basename(path), proc.stderr)
        for word in words:
            self.assertIn(word, proc.stderr)
        self.assertFalse(os.path.exists(self.path("out.raw")))

    def test_errors(self):
        self.assert_fails(self.path("missing.png"), "cannot open")
        self.assert_fails(self.dir, "folder")

        empty = self.path("empty.png")
        open(empty, "wb").close()
        self.assert_fails(empty, "empty")

        text = self.path("notes.jpg")
        with open(text, "w") as f:
            f.write("this is a text file, not a picture\n" * 20)
        self.assert_fails(text, "not a supported image")

        Image.fromarray(picture(200, 150)).save(self.path("full.png"))
        Image.fromarray(picture(200, 150)).save(self.path("full.jpg"))
        for name in ("full.png", "full.jpg"):
            with open(self.path(name), "rb") as f:
                data = f.read()
            cut = self.path("cut-" + name)
            with open(cut, "wb") as f:
                f.write(data[:len(data) * 2 // 3])
            self.assert_fails(cut)

        huge = self.path("huge.png")
        write_png_header_only(huge, 40000, 30000)
        self.assert_fails(huge, "40000 x 30000")


if __name__ == "__main__":
    unittest.main()
