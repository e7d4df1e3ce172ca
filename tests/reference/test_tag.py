"""test_tag.py — `agriclip tag` and `agriclip merge` (issue 14).

- The labels of every image against the open_clip zero-shot recipe computed
  in PyTorch with the twin (test_zeroshot.reference_probs), within 1e-4;
  image sizes against PIL; "review" against the threshold.
- Killed with SIGKILL at random points, then started again with the same
  command, until it finishes: results.jsonl has the bytes of an
  uninterrupted run.  AGC_TAG_KILL_TRIALS (default 5) sets how many killed
  runs are made; 50 for a thorough check outside CI.
- Shards 0..3 merged equal one run, byte for byte; merge refuses a shard
  given twice, a missing one, an unfinished one and other settings.
- Unreadable and non-image files are reported on stderr and skipped, exit 1.
- Paths with spaces, commas, quotes and newlines come back exactly.
- A changed model, label set or option is refused.
- --regions: boxes inside the image, on the tile grid, p from the twin on
  the tile, at least the threshold, no two boxes of a class overlapping
  above the NMS limit.
"""

import json
import os
import random
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
from test_zeroshot import IMAGE_SIZE, prompts_from_file, reference_probs  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
KILL_TRIALS = int(os.environ.get("AGC_TAG_KILL_TRIALS", "5"))
TOLERANCE = 1e-4
LABELS = {"id": "tag-test", "title": "tag test", "templates": ["a photo of {}.", "{} on a leaf"],
          "classes": [{"name": "rust", "display": "Rust"},
                      {"name": "leaf_blight", "display": "Leaf blight, \"early\""},
                      {"name": "healthy", "display": "Healthy"}]}
HOSTILE = ["with space.png", "comma,and,more.png", "quote\"d 'one'.png", "new\nline.png"]


def tag(*args, check=True):
    proc = subprocess.run([AGRICLIP, "tag", *args], capture_output=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"tag {args} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc


def read_run(run_dir):
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
        run = json.load(f)
    with open(os.path.join(run_dir, "results.jsonl"), "rb") as f:
        data = f.read()
    return run, data, [json.loads(line) for line in data.decode("utf-8").splitlines()]


def fnv1a_64(data):
    """The FNV-1a 64-bit hash (the published algorithm; vectors checked below)."""
    h = 0xcbf29ce484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001b3) % (1 << 64)
    return h


assert fnv1a_64(b"") == 0xcbf29ce484222325 and fnv1a_64(b"a") == 0xaf63dc4c8601ec8c
assert fnv1a_64(b"foobar") == 0x85944171f73967e8


def write_images(folder, names, seed, sizes=((40, 30), (64, 48), (33, 57), (32, 32))):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i, name in enumerate(names):
        w, h = sizes[i % len(sizes)]
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pixels[: h // 2, : w // 3] = (220, 30, 30) if i % 2 else (30, 200, 40)
        os.makedirs(os.path.dirname(os.path.join(folder, name)) or folder, exist_ok=True)
        Image.fromarray(pixels).save(os.path.join(folder, name))


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class Tag(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-tag-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=41, image_size=IMAGE_SIZE,
                             logit_scale=np.log(4.0))  # soft: every p is worth comparing
        cls.labels = os.path.join(cls.tmp, "labels.json")
        with open(cls.labels, "w", encoding="utf-8") as f:
            json.dump(LABELS, f)
        cls.src = os.path.join(cls.tmp, "photos")
        names = [f"{i:03d}.png" for i in range(40)] + [f"sub/{i:02d}.jpg" for i in range(20)]
        write_images(cls.src, names, seed=5)
        cls.names = names
        cls.base = ["--model", cls.model, "--labels", cls.labels, "--recursive", "--top", "3"]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, name)

    def test_labels_against_twin(self):
        run_dir = self.out("twin")
        tag(*self.base, "--review-below", "0.5", "--out", run_dir, self.src)
        run, _, results = read_run(run_dir)
        self.assertEqual(run["format"], "agriclip-tag-run")
        self.assertEqual(run["sources"], [os.path.realpath(self.src)])
        self.assertEqual([c["label"] for c in run["labels"]], [c["name"] for c in LABELS["classes"]])
        self.assertEqual([c["display"] for c in run["labels"]],
                         [c["display"] for c in LABELS["classes"]])
        self.assertEqual(run["settings"], {"top": 3, "review_below": 0.5, "decode": "exact",
                                           "precision": "float32",
                                           "regions": None})
        self.assertEqual(sorted(r["image"] for r in results), sorted(self.names))
        twin = clip_twin.load_twin(self.model)
        classes = prompts_from_file(self.labels)
        paths = [os.path.join(self.src, r["image"]) for r in results]
        want = reference_probs(twin, classes, paths).numpy()
        for r, path, probs in zip(results, paths, want):
            with Image.open(path) as im:
                self.assertEqual((r["width"], r["height"]), im.size)
            self.assertEqual(r["source"], 0)
            order = np.argsort(-probs)
            self.assertEqual([x["label"] for x in r["labels"]], [classes[c][0] for c in order])
            for x, c in zip(r["labels"], order):
                self.assertAlmostEqual(x["p"], probs[c], delta=TOLERANCE)
            self.assertEqual(r["review"], r["labels"][0]["p"] < 0.5)
            self.assertNotIn("boxes", r)
        self.assertTrue(any(r["review"] for r in results) and not all(r["review"] for r in results))

    def test_kill_anywhere_then_resume(self):
        reference = self.out("uninterrupted")
        started = time.monotonic()
        tag(*self.base, "--out", reference, self.src)
        duration = time.monotonic() - started
        _, want, _ = read_run(reference)
        rng = random.Random(14)
        kills = cut_short = 0
        for trial in range(KILL_TRIALS):
            run_dir = self.out(f"killed-{trial}")
            for attempt in range(100):
                proc = subprocess.Popen([AGRICLIP, "tag", *self.base, "--workers", "1",
                                         "--out", run_dir, self.src],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                results = os.path.join(run_dir, "results.jsonl")
                if attempt < 3:
                    if attempt % 2 == 0:  # anywhere: start-up, tagging, the end
                        time.sleep(rng.uniform(0, duration))
                    else:  # surely while tagging: after the next batch is written
                        size = os.path.getsize(results) if os.path.exists(results) else 0
                        deadline = time.monotonic() + 10 * duration
                        while proc.poll() is None and time.monotonic() < deadline:
                            if os.path.exists(results) and os.path.getsize(results) > size:
                                break
                            time.sleep(0.0005)
                        time.sleep(rng.uniform(0, 0.01))
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        kills += 1
                        proc.wait()
                        cut_short += (os.path.exists(results)
                                      and 0 < os.path.getsize(results) < len(want))
                _, stderr = proc.communicate(timeout=600)
                if proc.returncode == 0:
                    break
                self.assertEqual(proc.returncode, -signal.SIGKILL, stderr.decode())
            _, got, _ = read_run(run_dir)
            self.assertEqual(got, want, f"trial {trial}")
        print(f"test_tag: {KILL_TRIALS} killed runs, {kills} kills ({cut_short} with part of "
              "the results written), all resumed to identical results", file=sys.stderr)
        self.assertGreaterEqual(kills, KILL_TRIALS)
        self.assertGreater(cut_short, 0)

    def test_shards_merged_equal_one_run(self):
        one = self.out("one")
        tag(*self.base, "--out", one, self.src)
        shards = [self.out(f"shard-{i}") for i in range(4)]
        for i, shard in enumerate(shards):
            tag(*self.base, "--shard", f"{i}/4", "--out", shard, self.src)
            run, _, results = read_run(shard)
            self.assertEqual(run["shard"], {"index": i, "count": 4})
            self.assertGreater(len(results), 0)
            self.assertEqual(sorted(r["image"] for r in results),
                             sorted(n for n in self.names if fnv1a_64(n.encode()) % 4 == i))
        merged = self.out("merged")
        proc = subprocess.run([AGRICLIP, "merge", "--out", merged, *shards[::-1]],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run_one, data_one, _ = read_run(one)
        run_merged, data_merged, _ = read_run(merged)
        self.assertEqual(data_merged, data_one)
        self.assertEqual(run_merged, run_one)

        def refused(out, runs, message):
            proc = subprocess.run([AGRICLIP, "merge", "--out", self.out(out), *runs],
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(message, proc.stderr)
            self.assertFalse(os.path.exists(self.out(out)))

        refused("twice", shards[:3] + shards[:1], "given twice")
        refused("missing", shards[:3], "every shard once")
        other = self.out("shard-3-top2")
        tag("--model", self.model, "--labels", self.labels, "--recursive", "--top", "2",
            "--shard", "3/4", "--out", other, self.src)
        refused("mismatch", shards[:3] + [other], "other settings")
        with open(os.path.join(shards[3], "journal"), "a") as f:
            f.write("committed 0 0\n")  # as a run killed after starting again
        refused("unfinished", shards, "not finished")

    def test_unreadable_and_non_image_files(self):
        src = self.out("bad-src")
        write_images(src, ["a.png", "c.png"], seed=3)
        with open(os.path.join(src, "b.jpg"), "wb") as f:
            f.write(b"not a JPEG at all")
        with open(os.path.join(src, "notes.txt"), "w") as f:
            f.write("a text file given by name\n")
        os.symlink("missing.png", os.path.join(src, "dangling.png"))
        run_dir = self.out("bad")
        proc = tag(*self.base, "--out", run_dir, src, os.path.join(src, "notes.txt"), check=False)
        stderr = proc.stderr.decode()
        self.assertEqual(proc.returncode, 1, stderr)
        for name in ("b.jpg", "dangling.png", "notes.txt"):
            self.assertIn(name, stderr)
        self.assertIn("3 files were skipped", stderr)
        _, _, results = read_run(run_dir)
        self.assertEqual([r["image"] for r in results], ["a.png", "c.png"])
        with open(os.path.join(run_dir, "journal")) as f:
            self.assertEqual(f.read().splitlines()[-1], "complete 3")

    def test_hostile_paths(self):
        src = self.out("hostile, \"src\"\nfolder")
        names = HOSTILE + ["sub dir, \"x\"/" + HOSTILE[3]]
        write_images(src, names, seed=9)
        run_dir = self.out("hostile run")
        tag(*self.base, "--out", run_dir, src)
        run, _, results = read_run(run_dir)
        self.assertEqual(run["sources"], [os.path.realpath(src)])
        self.assertEqual(sorted(r["image"] for r in results), sorted(names))
        for r in results:
            self.assertTrue(os.path.isfile(os.path.join(run["sources"][r["source"]], r["image"])))
        # a file given as SRC counts as its folder's
        one = self.out("hostile one")
        tag(*self.base, "--out", one, os.path.join(src, HOSTILE[2]))
        run, _, results = read_run(one)
        self.assertEqual((run["sources"], [r["image"] for r in results]),
                         ([os.path.realpath(src)], [HOSTILE[2]]))

    def test_changed_settings_refused(self):
        run_dir = self.out("settings")
        tag(*self.base, "--out", run_dir, self.src)
        _, before, _ = read_run(run_dir)
        other_model = self.out("other-model")
        clip_twin.make_model(other_model, seed=42, image_size=IMAGE_SIZE)
        other_labels = self.out("other-labels.json")
        changed = dict(LABELS, templates=["an image of {}."])
        with open(other_labels, "w", encoding="utf-8") as f:
            json.dump(changed, f)
        cases = [
            (["--model", other_model, "--labels", self.labels, "--recursive", "--top", "3"],
             "another model"),
            (["--model", self.model, "--labels", other_labels, "--recursive", "--top", "3"],
             "another label set"),
            (self.base[:-1] + ["2"], "another --top"),
            (self.base + ["--review-below", "0.4"], "another --review-below"),
            (self.base + ["--regions", "16/8"], "other --regions"),
            (self.base + ["--shard", "0/2"], "another --shard"),
        ]
        for args, message in cases:
            proc = tag(*args, "--out", run_dir, self.src, check=False)
            self.assertEqual(proc.returncode, 1, args)
            self.assertIn(message, proc.stderr.decode())
        _, after, _ = read_run(run_dir)
        self.assertEqual(after, before)
        # the same command again: nothing to do, nothing changed
        tag(*self.base, "--out", run_dir, self.src)
        self.assertEqual(read_run(run_dir)[1], before)
        # a folder that is not a run is not written into
        stranger = self.out("stranger")
        os.makedirs(stranger)
        open(os.path.join(stranger, "mine.txt"), "w").close()
        proc = tag(*self.base, "--out", stranger, self.src, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(os.listdir(stranger), ["mine.txt"])

    def test_regions(self):
        src = self.out("regions-src")
        write_images(src, ["big.png", "tall.png"], seed=12, sizes=((80, 56), (40, 90)))
        sharp = self.out("sharp-model")  # CLIP's temperature: tiles reach the threshold
        clip_twin.make_model(sharp, seed=41, image_size=IMAGE_SIZE)
        run_dir = self.out("regions")
        tag("--model", sharp, *self.base[2:], "--regions", "32/16", "--out", run_dir, src)
        run, _, results = read_run(run_dir)
        self.assertEqual(run["settings"]["regions"], {"tile": 32, "stride": 16})
        twin = clip_twin.load_twin(sharp)
        classes = prompts_from_file(self.labels)
        n_boxes = 0
        for r in results:
            path = os.path.join(src, r["image"])
            with Image.open(path) as im:
                image = im.convert("RGB")
            w, h = image.size
            xs = sorted(set(list(range(0, max(0, w - 32), 16)) + [max(0, w - 32)]))
            ys = sorted(set(list(range(0, max(0, h - 32), 16)) + [max(0, h - 32)]))
            crops = []
            for b in r["boxes"]:
                self.assertIn(b["x"], xs)
                self.assertIn(b["y"], ys)
                self.assertEqual((b["width"], b["height"]), (min(32, w), min(32, h)))
                self.assertGreaterEqual(b["p"], 0.5 - TOLERANCE)
                crop = os.path.join(self.tmp, f"crop-{len(crops)}.png")
                image.crop((b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"])).save(crop)
                crops.append(crop)
            if crops:
                want = reference_probs(twin, classes, crops).numpy()
                for b, probs in zip(r["boxes"], want):
                    self.assertEqual(b["label"], classes[int(np.argmax(probs))][0])
                    self.assertAlmostEqual(b["p"], float(probs.max()), delta=TOLERANCE)
            for i, a in enumerate(r["boxes"]):
                for b in r["boxes"][i + 1:]:
                    self.assertGreaterEqual(a["p"], b["p"])  # most probable first
                    if a["label"] == b["label"]:
                        self.assertLessEqual(iou(a, b), 0.5)
            n_boxes += len(r["boxes"])
        self.assertGreater(n_boxes, 0)


def iou(a, b):
    w = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


if __name__ == "__main__":
    unittest.main()
