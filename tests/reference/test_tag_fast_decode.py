"""test_tag_fast_decode.py — `agriclip tag --fast-decode` (issue 18).

JPEGs several times the model's input (a DCT scale of 1/2 to 1/8 applies):
- tag --fast-decode labels every image as classify --fast-decode does, and
  its probabilities are those of embed --fast-decode's embeddings and of
  the PyTorch twin on Pillow's Image.draft + exif_transpose (the decode
  users can reproduce), within 1e-4;
- they differ from the exact run's on the scaled JPEGs and not on a PNG;
- run.json records the decode; resuming a run, or merging shards, made
  with the other decode is refused naming it, the same decode resumes, and
  a run.json written before the setting existed counts as exact.

`agriclip tag --int8` (the same rules for the precision, TagInt8):
- run.json records "precision": "int8" (float32 otherwise), and the int8
  run's labels are classify --int8's, not all equal to the float32 run's;
- resuming, or merging shards, with the other precision is refused naming
  it; a run.json without the setting counts as float32.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_int8 import int8_supported  # noqa: E402
from test_tag import AGRICLIP, LABELS, TOLERANCE, read_run, tag  # noqa: E402
from test_zeroshot import IMAGE_SIZE, prompts_from_file, reference_probs  # noqa: E402

S = IMAGE_SIZE
# (name, width, height, save arguments, EXIF orientation)
PHOTOS = [
    ("a.jpg", 8 * S + 3, 6 * S + 1, dict(quality=90), None),          # 1/4
    ("b.jpg", 9 * S, 8 * S + 5, dict(quality=85), None),              # 1/8
    ("c.jpg", 5 * S, 3 * S + 7, dict(quality=90, progressive=True), None),  # 1/2
    ("d.jpg", 7 * S + 2, 4 * S + 9, dict(quality=90), 6),             # stored sideways, 1/2
    ("e.png", 5 * S, 4 * S, {}, None),                                # not a JPEG: no scale
]
C = len(LABELS["classes"])


def pil_draft(path):
    with Image.open(path) as image:
        image.draft("RGB", (S, S))
        return ImageOps.exif_transpose(image).convert("RGB")


def photo(width, height, seed):
    """Smooth shapes and noise: JPEG-like content whose scaled decode differs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([np.sin(7 * x + seed) * 90 + 120, np.cos(5 * y - seed) * 80 + 110,
                     (x * y * 255) % 255], axis=-1)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def probs_of(results):
    """{image: [p of each class in LABELS order]}"""
    names = [c["name"] for c in LABELS["classes"]]
    out = {}
    for r in results:
        p = {entry["label"]: entry["p"] for entry in r["labels"]}
        out[r["image"]] = [p[n] for n in names]
    return out


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class TagFastDecode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-tag-fast-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=43, image_size=S, logit_scale=np.log(4.0))
        cls.labels = os.path.join(cls.tmp, "labels.json")
        with open(cls.labels, "w", encoding="utf-8") as f:
            json.dump(LABELS, f)
        cls.src = os.path.join(cls.tmp, "photos")
        os.makedirs(cls.src)
        for i, (name, w, h, save, orientation) in enumerate(PHOTOS):
            if orientation:
                exif = Image.Exif()
                exif[0x0112] = orientation
                save = dict(save, exif=exif.tobytes())
            Image.fromarray(photo(w, h, seed=i)).save(os.path.join(cls.src, name), **save)
        cls.paths = [os.path.join(cls.src, p[0]) for p in PHOTOS]
        cls.base = ["--model", cls.model, "--labels", cls.labels, "--top", str(C)]
        cls.fast_run = os.path.join(cls.tmp, "fast")
        tag(*cls.base, "--fast-decode", "--out", cls.fast_run, cls.src)
        cls.exact_run = os.path.join(cls.tmp, "exact")
        tag(*cls.base, "--out", cls.exact_run, cls.src)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def agriclip(self, *args):
        proc = subprocess.run([AGRICLIP, *args], capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, f"{args}: {proc.stderr}")
        return proc.stdout

    def test_fast_run_equals_embed_classify_and_pillow_draft(self):
        run, _, results = read_run(self.fast_run)
        self.assertEqual(run["settings"]["decode"], "fast")
        ours = probs_of(results)
        self.assertEqual(sorted(ours), sorted(p[0] for p in PHOTOS))
        # classify --fast-decode: the same labels, in the same order
        lines = self.agriclip("classify", *self.base, "--format", "jsonl", "--fast-decode",
                              *self.paths).splitlines()
        by_name = {os.path.basename(json.loads(line)["image"]): json.loads(line)
                   for line in lines}
        for r in results:
            theirs = by_name[r["image"]]
            self.assertEqual([x["label"] for x in r["labels"]],
                             [x["label"] for x in theirs["labels"]], r["image"])
            np.testing.assert_allclose([x["p"] for x in r["labels"]],
                                       [x["p"] for x in theirs["labels"]], atol=TOLERANCE)
        # embed --fast-decode's embeddings, scored against the twin's classes
        args = ["embed", "--model", self.model, "--fast-decode"]
        for path in self.paths:
            args += ["--image", path]
        embeddings = np.array([json.loads(line)["embedding"]
                               for line in self.agriclip(*args).splitlines()])
        twin = clip_twin.load_twin(self.model)
        classes = prompts_from_file(self.labels)
        # the reference decode: Pillow's draft, kept losslessly for the twin
        drafts = []
        for path in self.paths:
            draft = os.path.join(self.tmp, "draft-" + os.path.basename(path) + ".png")
            pil_draft(path).save(draft)
            drafts.append(draft)
        expected = reference_probs(twin, classes, drafts).numpy()
        with torch.no_grad():
            prompts = [p for _, ps in classes for p in ps]
            text = twin.encode_text(clip_twin.tokenize(prompts))
            text = (text / text.norm(dim=-1, keepdim=True)).numpy().astype(np.float64)
        weights, start = [], 0
        for _, ps in classes:
            mean = text[start:start + len(ps)].mean(axis=0)
            weights.append(mean / np.linalg.norm(mean))
            start += len(ps)
        logits = float(twin.logit_scale) * embeddings @ np.array(weights).T
        from_embed = np.exp(logits - logits.max(axis=1, keepdims=True))
        from_embed /= from_embed.sum(axis=1, keepdims=True)
        for i, (name, *_rest) in enumerate(PHOTOS):
            np.testing.assert_allclose(ours[name], from_embed[i], atol=TOLERANCE, err_msg=name)
            np.testing.assert_allclose(ours[name], expected[i], atol=TOLERANCE, err_msg=name)

    def test_differs_from_exact_run(self):
        exact_run, _, exact = read_run(self.exact_run)
        self.assertEqual(exact_run["settings"]["decode"], "exact")
        fast, exact = probs_of(read_run(self.fast_run)[2]), probs_of(exact)
        for name, *_rest in PHOTOS:
            difference = np.abs(np.array(fast[name]) - np.array(exact[name])).max()
            if name.endswith(".png"):
                self.assertEqual(difference, 0.0, name)
            else:
                self.assertGreater(difference, 1e-6, name)

    def test_other_decode_refused_same_resumes(self):
        for run_dir, args, message in (
                (self.fast_run, [], "made with --fast-decode"),
                (self.exact_run, ["--fast-decode"], "made with the exact decode")):
            _, before, _ = read_run(run_dir)
            proc = tag(*self.base, *args, "--out", run_dir, self.src, check=False)
            self.assertEqual(proc.returncode, 1, args)
            self.assertIn(message, proc.stderr.decode())
            self.assertEqual(read_run(run_dir)[1], before)
        # the run's own command: resumed (nothing left to do), unchanged
        _, before, _ = read_run(self.fast_run)
        tag(*self.base, "--fast-decode", "--out", self.fast_run, self.src)
        self.assertEqual(read_run(self.fast_run)[1], before)

    def test_run_json_without_decode_is_exact(self):
        old = os.path.join(self.tmp, "old")
        shutil.copytree(self.exact_run, old)
        with open(os.path.join(old, "run.json"), encoding="utf-8") as f:
            run = json.load(f)
        del run["settings"]["decode"]
        with open(os.path.join(old, "run.json"), "w", encoding="utf-8") as f:
            json.dump(run, f)
        tag(*self.base, "--out", old, self.src)
        proc = tag(*self.base, "--fast-decode", "--out", old, self.src, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("made with the exact decode", proc.stderr.decode())

    def test_merge_refuses_mixed_decodes(self):
        shards = []
        for index, args in ((0, ["--fast-decode"]), (1, ["--fast-decode"]), (1, [])):
            run_dir = os.path.join(self.tmp, f"shard{index}{''.join(args)}")
            tag(*self.base, *args, "--shard", f"{index}/2", "--out", run_dir, self.src)
            shards.append(run_dir)
        merged = os.path.join(self.tmp, "merged")
        proc = subprocess.run([AGRICLIP, "merge", "--out", merged, shards[0], shards[2]],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("was made without --fast-decode", proc.stderr)
        self.assertFalse(os.path.exists(merged))
        # the same decode: the single fast run, byte for byte
        self.agriclip("merge", "--out", merged, shards[0], shards[1])
        self.assertEqual(read_run(merged)[1], read_run(self.fast_run)[1])
        self.assertEqual(read_run(merged)[0]["settings"]["decode"], "fast")


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
@unittest.skipUnless(int8_supported(), "this CPU has no int8 kernel (AVX2): --int8 is refused")
class TagInt8(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-tag-int8-")
        cls.model = os.path.join(cls.tmp, "model")
        # a ViT (the image tower --int8 quantises), wide enough that int8 moves probabilities
        clip_twin.make_model(cls.model, seed=47, vision_width=128, vision_heads=4, image_size=S,
                             logit_scale=np.log(50.0))
        cls.labels = os.path.join(cls.tmp, "labels.json")
        with open(cls.labels, "w", encoding="utf-8") as f:
            json.dump(LABELS, f)
        cls.src = os.path.join(cls.tmp, "photos")
        os.makedirs(cls.src)
        cls.names = [f"{i}.png" for i in range(6)]
        for i, name in enumerate(cls.names):
            Image.fromarray(photo(S + 3 * i, S + 5, seed=10 + i)).save(os.path.join(cls.src, name))
        cls.base = ["--model", cls.model, "--labels", cls.labels, "--top", str(C)]
        cls.int8_run = os.path.join(cls.tmp, "int8")
        tag(*cls.base, "--int8", "--out", cls.int8_run, cls.src)
        cls.float_run = os.path.join(cls.tmp, "float32")
        tag(*cls.base, "--out", cls.float_run, cls.src)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_int8_recorded_labels_are_classify_int8s(self):
        run, _, results = read_run(self.int8_run)
        self.assertEqual(run["settings"]["precision"], "int8")
        self.assertEqual(read_run(self.float_run)[0]["settings"]["precision"], "float32")
        proc = subprocess.run([AGRICLIP, "classify", *self.base, "--format", "jsonl", "--int8",
                               *(os.path.join(self.src, n) for n in self.names)],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        theirs = {os.path.basename(json.loads(line)["image"]): json.loads(line)
                  for line in proc.stdout.splitlines()}
        for r in results:
            self.assertEqual([x["label"] for x in r["labels"]],
                             [x["label"] for x in theirs[r["image"]]["labels"]], r["image"])
            np.testing.assert_allclose([x["p"] for x in r["labels"]],
                                       [x["p"] for x in theirs[r["image"]]["labels"]],
                                       atol=TOLERANCE)
        ours, floats = probs_of(results), probs_of(read_run(self.float_run)[2])
        self.assertEqual(sorted(ours), sorted(self.names))
        largest = max(np.abs(np.array(ours[n]) - np.array(floats[n])).max() for n in self.names)
        self.assertGreater(largest, 1e-6)

    def test_other_precision_refused_same_resumes(self):
        for run_dir, args, message in (
                (self.int8_run, [], "made with --int8"),
                (self.float_run, ["--int8"], "made with float32 weights")):
            _, before, _ = read_run(run_dir)
            proc = tag(*self.base, *args, "--out", run_dir, self.src, check=False)
            self.assertEqual(proc.returncode, 1, args)
            stderr = proc.stderr.decode()
            self.assertIn(message, stderr)
            self.assertIn(run_dir, stderr)
            self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
            self.assertEqual(read_run(run_dir)[1], before)
        _, before, _ = read_run(self.int8_run)
        tag(*self.base, "--int8", "--out", self.int8_run, self.src)
        self.assertEqual(read_run(self.int8_run)[1], before)

    def test_run_json_without_precision_is_float32(self):
        old = os.path.join(self.tmp, "old")
        shutil.copytree(self.float_run, old)
        with open(os.path.join(old, "run.json"), encoding="utf-8") as f:
            run = json.load(f)
        del run["settings"]["precision"]
        with open(os.path.join(old, "run.json"), "w", encoding="utf-8") as f:
            json.dump(run, f)
        tag(*self.base, "--out", old, self.src)
        proc = tag(*self.base, "--int8", "--out", old, self.src, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("made with float32 weights", proc.stderr.decode())

    def test_merge_refuses_mixed_precisions(self):
        shards = []
        for index, args in ((0, ["--int8"]), (1, ["--int8"]), (1, [])):
            run_dir = os.path.join(self.tmp, f"shard{index}{''.join(args)}")
            tag(*self.base, *args, "--shard", f"{index}/2", "--out", run_dir, self.src)
            shards.append(run_dir)
        merged = os.path.join(self.tmp, "merged")
        for pair, message in (((shards[0], shards[2]), "was made without --int8"),
                              ((shards[2], shards[0]), "was made with --int8")):
            proc = subprocess.run([AGRICLIP, "merge", "--out", merged, *pair],
                                  capture_output=True, text=True, timeout=600)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(message, proc.stderr)
            self.assertIn(pair[1], proc.stderr)
            self.assertFalse(os.path.exists(merged))
        # the same precision: the single int8 run, byte for byte
        proc = subprocess.run([AGRICLIP, "merge", "--out", merged, shards[0], shards[1]],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(read_run(merged)[1], read_run(self.int8_run)[1])
        self.assertEqual(read_run(merged)[0]["settings"]["precision"], "int8")


if __name__ == "__main__":
    unittest.main()
