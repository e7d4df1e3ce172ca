"""test_adapt.py — the pieces of "Adapting AgriCLIP to your photos" (README):
`agriclip captions`, `agriclip evaluate` over several folders, and adapters
trained on a base adapter (`agriclip train --adapter BASE`), on generated
photos and a small random twin model (clip_twin).

- captions: every caption is one of the templates of its class's domain as
  docs/captions.md lists them (read from the page, so page and code agree),
  filled with the class text or an attribute, or one of the class's own
  prompts; every family shows up; per-image lines per photo, each naming a
  photo through PAIRS/photos; the same seed gives the same bytes, another
  seed other captions; `agriclip pretrain` trains on the file.  Bad input:
  a broken labels.json (exit 1, the file named), PAIRS inside the folder
  (refused, nothing made), a captions.jsonl naming ../ (pretrain refuses).
- evaluate --data A --data B [--adapter X]: each row's numbers equal a
  single-folder `evaluate --format json` run, the average their mean; text
  and JSON agree.
- stacking: a probe trained on a finetune base: `classify --adapter` gives
  softmax(W x + b) with x the embedding of the float64 PyTorch twin carrying
  the base's tensors (<= 1e-4); the file holds the base's tensors unchanged
  and names the base in agriclip.stack; a finetune on that base with 0
  epochs starts from the base's weights; a probe base is refused.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_train import IMAGE_SIZE, write_class_folders  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
SOURCE = os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
VOCAB = os.path.join(os.environ.get("AGC_SHARED_DIR", os.path.join(SOURCE, "..", "shared")),
                     "clip-vocab")


def run(args, cache, check=True):
    env = dict(os.environ, XDG_CACHE_HOME=cache, LC_ALL="C", LANGUAGE="")
    proc = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def families():
    """{domain: [templates]} as docs/captions.md lists them ("" is general)."""
    with open(os.path.join(SOURCE, "docs", "captions.md"), encoding="utf-8") as f:
        text = f.read()
    found = {}
    for name, block in re.findall(r"^(general|crop|livestock|fish):\n```\n(.*?)```", text,
                                  re.M | re.S):
        found["" if name == "general" else name] = block.strip().splitlines()
    return found


def read_metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


LABELS = {
    "id": "farm", "title": "A farm", "templates": ["a photo of {}."], "domain": "crop",
    "classes": [
        {"name": "rust", "display": "Maize rust", "text": "a maize leaf with common rust",
         "attributes": ["orange pustules", "rusty streaks"]},
        {"name": "blight", "display": "Blight", "domain": "livestock",
         "prompts": ["a sick cow, oddly enough"]},
        {"name": "healthy", "display": "A tilapia", "domain": "fish"},
    ],
}


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class Adapting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-adapt-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=21, image_size=IMAGE_SIZE)
        cls.data_a = os.path.join(cls.tmp, "farm a")
        cls.paths = write_class_folders(cls.data_a, {"rust": 6, "blight": 6, "healthy": 6}, 1)
        with open(os.path.join(cls.data_a, "labels.json"), "w") as f:
            json.dump(LABELS, f)
        cls.data_b = os.path.join(cls.tmp, "farm b")
        write_class_folders(cls.data_b, {"rust": 4, "blight": 5, "healthy": 3}, 2)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, name)

    # ---- captions ----------------------------------------------------------------

    def captions(self, out, *extra):
        run(["captions", "--data", self.data_a, "--out", out, *extra], self.cache)
        with open(os.path.join(out, "captions.jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def test_captions_follow_the_domain_templates(self):
        out = self.out("pairs")
        rows = self.captions(out, "--per-image", "4", "--seed", "7")
        fam = families()
        self.assertEqual(set(fam), {"", "crop", "livestock", "fish"})
        allowed = {}
        for c in LABELS["classes"]:
            domain = c.get("domain", LABELS["domain"])
            text = c.get("text", c["display"])
            plain = [t.replace("{}", text) for t in fam[domain] if "%s" not in t]
            with_attr = [t.replace("{}", text).replace("%s", a)
                         for t in fam[domain] if "%s" in t for a in c.get("attributes", [])]
            allowed[c["name"]] = set(plain + with_attr + c.get("prompts", []))
        per_photo = {}
        for row in rows:
            tag = row["image"].split("/")[1]
            self.assertIn(row["caption"], allowed[tag], row)
            per_photo.setdefault(row["image"], []).append(row["caption"])
            # the name resolves through PAIRS/photos to the tagged photo itself
            self.assertTrue(row["image"].startswith("photos/"), row)
            self.assertTrue(os.path.samefile(os.path.join(out, row["image"]),
                                             os.path.join(self.data_a, row["image"][7:])))
        self.assertEqual(len(per_photo), 18)
        self.assertTrue(all(len(v) == 4 for v in per_photo.values()))
        # 4 of at least 6 candidates, drawn without repetition
        self.assertTrue(all(len(set(v)) == 4 for v in per_photo.values()))
        used = {r["caption"] for r in rows}
        for tag in ("rust", "blight", "healthy"):
            self.assertGreater(len(used & allowed[tag]), 4, tag)  # varied, not one sentence
        self.assertIn("a sick cow, oddly enough", used)  # own prompts count
        self.assertTrue(any("orange pustules" in u for u in used))  # attributes too
        # the default seed and --per-image 3 on a folder without labels.json: the general family
        bare = self.out("pairs-bare")
        run(["captions", "--data", self.data_b, "--out", bare], self.cache)
        with open(os.path.join(bare, "captions.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        self.assertEqual(len(rows), 3 * 12)
        general = {t.replace("{}", tag) for t in fam[""] if "%s" not in t
                   for tag in ("rust", "blight", "healthy")}
        self.assertTrue({r["caption"] for r in rows} <= general)

    def test_captions_are_seeded_and_pretrain_reads_them(self):
        one, two, other = self.out("seed-1"), self.out("seed-1-again"), self.out("seed-2")
        self.captions(one, "--seed", "1")
        self.captions(two, "--seed", "1")
        self.captions(other, "--seed", "2")
        def read(folder):
            with open(os.path.join(folder, "captions.jsonl"), "rb") as f:
                return f.read()
        self.assertEqual(read(one), read(two))
        self.assertNotEqual(read(one), read(other))
        # again into the same folder: the link is kept, the file replaced by the same bytes
        self.captions(one, "--seed", "1")
        self.assertEqual(read(one), read(two))
        model = self.out("pretrained")
        proc = run(["pretrain", "--data", one, "--tokenizer", VOCAB, "--out", model,
                    "--epochs", "1", "--batch", "18", "--image-size", "32", "--width", "32",
                    "--layers", "1", "--text-width", "32", "--text-layers", "1",
                    "--embed-dim", "32"], self.cache)
        self.assertIn("54 image-caption pairs", proc.stdout)

    def test_captions_bad_input(self):
        bad = self.out("bad labels")
        write_class_folders(bad, {"rust": 1, "blight": 1}, 3)
        labels = dict(LABELS, classes=[{"name": "rust", "display": "R", "domain": "poultry"},
                                       {"name": "blight", "display": "B"}])
        with open(os.path.join(bad, "labels.json"), "w") as f:
            json.dump(labels, f)
        proc = run(["captions", "--data", bad, "--out", self.out("never")], self.cache,
                   check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(os.path.join(bad, "labels.json"), proc.stderr)
        self.assertIn("poultry", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1)
        self.assertFalse(os.path.exists(self.out("never")))
        inside = os.path.join(self.data_a, "pairs", "deeper")
        proc = run(["captions", "--data", self.data_a, "--out", inside], self.cache, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("inside the tagged folder", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.data_a, "pairs")))
        proc = run(["captions", "--data", self.data_a, "--out", self.out("p"), "--per-image",
                    "0"], self.cache, check=False)
        self.assertEqual(proc.returncode, 2)
        # a captions.jsonl naming a file outside its folder
        escape = self.out("escape")
        os.makedirs(escape)
        with open(os.path.join(escape, "captions.jsonl"), "w") as f:
            f.write(json.dumps({"image": "../farm a/rust/000.png", "caption": "x"}) + "\n")
        proc = run(["pretrain", "--data", escape, "--tokenizer", VOCAB, "--out",
                    self.out("escape-model")], self.cache, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("inside the folder", proc.stderr)

    # ---- evaluate over several folders ---------------------------------------------

    def single(self, data, *adapter):
        proc = run(["evaluate", "--model", self.model, "--data", data, "--format", "json",
                    *adapter], self.cache)
        return json.loads(proc.stdout)

    def test_evaluate_table_equals_single_folder_runs(self):
        adapter = self.out("probe.safetensors")
        run(["train", "--model", self.model, "--data", self.data_a, "--out", adapter,
             "--epochs", "20"], self.cache)
        proc = run(["evaluate", "--model", self.model, "--data", self.data_a, "--data",
                    self.data_b, "--adapter", adapter, "--format", "json"], self.cache)
        table = json.loads(proc.stdout)
        rows = table["datasets"]
        self.assertEqual([r["data"] for r in rows], [self.data_a, self.data_b])
        for row, data in zip(rows, (self.data_a, self.data_b)):
            plain, adapted = self.single(data), self.single(data, "--adapter", adapter)
            self.assertEqual(row["n_images"], plain["n_images"])
            self.assertAlmostEqual(row["zero_shot"], plain["accuracy"], places=9)
            self.assertAlmostEqual(row["adapted"], adapted["accuracy"], places=9)
        for column in ("zero_shot", "adapted"):
            self.assertAlmostEqual(table["average"][column],
                                   sum(r[column] for r in rows) / 2, places=9)
        self.assertNotEqual([r["zero_shot"] for r in rows], [r["adapted"] for r in rows])
        text = run(["evaluate", "--model", self.model, "--data", self.data_a, "--data",
                    self.data_b, "--adapter", adapter], self.cache).stdout.splitlines()
        self.assertEqual(text[0].split(), ["data", "images", "zero-shot", "adapted"])
        for line, row in zip(text[1:3], rows):
            numbers = re.findall(r"(\d+\.\d) %", line)
            self.assertEqual(numbers, ["%.1f" % (100 * row["zero_shot"]),
                                       "%.1f" % (100 * row["adapted"])])
        self.assertEqual(re.findall(r"(\d+\.\d) %", text[3]),
                         ["%.1f" % (100 * table["average"][c]) for c in ("zero_shot", "adapted")])
        # without --adapter: the zero-shot column alone; one --data: the old report
        proc = run(["evaluate", "--model", self.model, "--data", self.data_a, "--data",
                    self.data_b, "--format", "json"], self.cache)
        self.assertNotIn("adapted", json.loads(proc.stdout)["average"])
        proc = run(["evaluate", "--model", self.model, "--data", self.data_b], self.cache)
        self.assertTrue(proc.stdout.startswith("accuracy: "), proc.stdout)

    # ---- stacking ------------------------------------------------------------------

    def test_probe_on_a_finetune_base(self):
        base = self.out("base.safetensors")
        run(["train", "--model", self.model, "--data", self.data_a, "--out", base, "--method",
             "finetune", "--blocks", "1", "--epochs", "2", "--lr", "0.001"], self.cache)
        top = self.out("stacked.safetensors")
        run(["train", "--model", self.model, "--data", self.data_a, "--out", top, "--adapter",
             base, "--epochs", "5"], self.cache)
        base_t = clip_twin.read_safetensors(base)
        top_t = clip_twin.read_safetensors(top)
        self.assertEqual(set(top_t), set(base_t) | {"head.weight", "head.bias"})
        for name, value in base_t.items():
            self.assertTrue(torch.equal(top_t[name], value), name)
        meta = read_metadata(top)
        self.assertEqual(meta["agriclip.method"], "probe")
        stack = json.loads(meta["agriclip.stack"])
        self.assertEqual([(s["method"], s["file"]) for s in stack],
                         [("finetune", "base.safetensors")])
        self.assertRegex(stack[0]["digest"], "^[0-9a-f]{64}$")

        # the reference: the float64 twin with the base's tensors, then the probe's head
        weights = clip_twin.read_model_weights(self.model)
        weights.update({k: v.to(torch.float64) for k, v in base_t.items()})
        with open(os.path.join(self.model, "config.json")) as f:
            config = json.load(f)
        twin = clip_twin.TwinCLIP(config, weights).eval()
        images = [sorted(self.paths[t])[i] for t in ("rust", "blight", "healthy") for i in (0, 3)]
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in images])
            x = F.normalize(twin.encode_image(pixels), dim=-1)
        w, b = top_t["head.weight"].double(), top_t["head.bias"].double()
        want = torch.softmax(x @ w.T + b, dim=-1)
        proc = run(["classify", "--model", self.model, "--adapter", top, "--format", "jsonl",
                    "--top", "3"] + images, self.cache)
        classes = [c["name"] for c in json.loads(meta["agriclip.classes"])]
        for line, row in zip(proc.stdout.splitlines(), want):
            got = {entry["label"]: entry["p"] for entry in json.loads(line)["labels"]}
            for c, name in enumerate(classes):
                self.assertAlmostEqual(got[name], float(row[c]), delta=1e-4)
        # the plain probe differs: the base really was under it
        plain_twin = clip_twin.TwinCLIP(config, clip_twin.read_model_weights(self.model)).eval()
        with torch.no_grad():
            plain = torch.softmax(F.normalize(plain_twin.encode_image(pixels), dim=-1) @ w.T + b,
                                  dim=-1)
        self.assertGreater(float((plain - want).abs().max()), 1e-3)

        # a finetune on the base starts from the base's weights
        zero = self.out("zero.safetensors")
        run(["train", "--model", self.model, "--data", self.data_a, "--out", zero, "--adapter",
             base, "--method", "finetune", "--blocks", "1", "--epochs", "0"], self.cache)
        zero_t = clip_twin.read_safetensors(zero)
        self.assertEqual(set(zero_t), set(base_t))
        for name, value in base_t.items():
            self.assertTrue(torch.equal(zero_t[name], value), name)
        # a probe changes no tensors: nothing to stack on
        proc = run(["train", "--model", self.model, "--data", self.data_a, "--out",
                    self.out("on-probe.safetensors"), "--adapter", top.replace("stacked", "x"),
                    "--epochs", "1"], self.cache, check=False)
        self.assertEqual(proc.returncode, 1)
        probe = self.out("plain-probe.safetensors")
        run(["train", "--model", self.model, "--data", self.data_a, "--out", probe, "--epochs",
             "1"], self.cache)
        proc = run(["train", "--model", self.model, "--data", self.data_a, "--out",
                    self.out("on-probe.safetensors"), "--adapter", probe], self.cache,
                   check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("nothing to train on top of", proc.stderr)


if __name__ == "__main__":
    unittest.main()
