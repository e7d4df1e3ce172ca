"""test_knn.py — `agriclip evaluate --knn-bank` (agc_evaluate_knn,
core/train/knn.c) against a k-NN computed independently, as DINO's
eval_knn.py does it (facebookresearch/dino): features L2-normalised,
cosine similarity to every bank image, the k most similar vote for their
class with weight exp(cos / 0.07), the top class is the label.

  - An AgriCLIP folder (a random torchvision ResNet-50, a random aligner,
    a tiny CLIP twin's text side): the features are the ResNet-50's pooled
    features before the aligner, computed here by torchvision; with an
    aligner adapter ("k-NN adapted") still the same ResNet features.
  - A CLIP folder: the features are its image embeddings (`agriclip embed`).
Tags are drawn at random, independently of the pictures, so that the k-NN
labels are a mix of right and wrong that any slip (similarity, selection,
weights, clamping k to the bank) changes.  Accuracies must match exactly
(they are counts of labels), for k 1, 5 and 40 (more than the bank: all
vote)."""

import copy
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
from test_aligner import LOOKS  # noqa: E402
from test_resnet import imagenet_transform, random_resnet50  # noqa: E402
from test_train import draw  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
EMBED_DIM = 32
FEATURES = 2048
TEMPERATURE = 0.07  # DINO's eval_knn.py
TAGS = ["rust", "blight", "healthy"]


def run(args, cache, check=True):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    proc = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=900, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def write_folder(root, n, seed):
    """n pictures of random looks under random tags (each tag at least
    once); returns [(path, tag index)]."""
    rng = np.random.default_rng(seed)
    looks = sorted(LOOKS)
    tags = list(range(len(TAGS))) + [int(t) for t in rng.integers(0, len(TAGS), n - len(TAGS))]
    images = []
    for i, tag in enumerate(tags):
        os.makedirs(os.path.join(root, TAGS[tag]), exist_ok=True)
        path = os.path.join(root, TAGS[tag], "%03d.png" % i)
        draw(LOOKS[looks[int(rng.integers(0, len(looks)))]], rng).save(path)
        images.append((path, tag))
    return images


def knn_accuracy(bank, bank_tags, queries, query_tags, k):
    """DINO's eval_knn.knn_classifier in numpy, float64."""
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(k, len(bank))
    right = 0
    for q, tag in zip(queries, query_tags):
        similarity = bank @ q
        top = np.argsort(-similarity, kind="stable")[:k]
        votes = np.zeros(len(TAGS))
        for b in top:
            votes[bank_tags[b]] += math.exp(similarity[b] / TEMPERATURE)
        right += int(np.argmax(votes) == tag)
    return right / len(queries)


class KnnEvaluation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-knn-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.clip = os.path.join(cls.tmp, "clip")
        clip_twin.make_model(cls.clip, seed=21, image_size=32, projection_dim=EMBED_DIM)
        cls.model = os.path.join(cls.tmp, "agriclip")
        weights_dir = os.path.join(cls.model, "Weights")
        os.makedirs(weights_dir)
        for f in os.listdir(cls.clip):
            os.symlink(os.path.join(cls.clip, f), os.path.join(cls.model, f))
        cls.resnet = random_resnet50(seed=3)
        torch.save(cls.resnet.state_dict(), os.path.join(weights_dir, "dino_pretrain.pth"))
        gen = torch.Generator().manual_seed(5)
        torch.save({"W": torch.randn(EMBED_DIM, FEATURES, generator=gen) / math.sqrt(FEATURES),
                    "b": torch.randn(EMBED_DIM, generator=gen)},
                   os.path.join(weights_dir, "Agri_Dino_aligner_DPT_CPT.pth"))
        cls.bank = os.path.join(cls.tmp, "bank")
        cls.data = [os.path.join(cls.tmp, "a"), os.path.join(cls.tmp, "b")]
        cls.images = {cls.bank: write_folder(cls.bank, 12, seed=1),
                      cls.data[0]: write_folder(cls.data[0], 8, seed=2),
                      cls.data[1]: write_folder(cls.data[1], 6, seed=3)}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def resnet_features(self, folder):
        """float64, of an eval-mode copy (the class's network stays float32)."""
        with torch.no_grad():
            pixels = torch.stack([imagenet_transform()(Image.open(p).convert("RGB"))
                                  for p, _ in self.images[folder]])
            return copy.deepcopy(self.resnet).double().eval()(pixels.double()).numpy()

    def clip_embeddings(self, folder):
        images = [a for p, _ in self.images[folder] for a in ("--image", p)]
        proc = run(["embed", "--model", self.clip, *images], self.cache)
        return np.array([json.loads(line)["embedding"] for line in proc.stdout.splitlines()])

    def evaluate(self, model, k, *extra):
        proc = run(["evaluate", "--model", model, "--data", self.data[0], "--data", self.data[1],
                    "--knn-bank", self.bank, "--knn-k", str(k), "--format", "json", *extra],
                   self.cache)
        return json.loads(proc.stdout)

    def check(self, model, features, *extra):
        computed = {folder: features(folder) for folder in [self.bank] + self.data}
        bank_tags = [t for _, t in self.images[self.bank]]
        for k in (1, 5, 40):
            table = self.evaluate(model, k, *extra)
            self.assertEqual(table["knn_bank"], self.bank)
            for data, row in zip(self.data, table["datasets"]):
                want = knn_accuracy(computed[self.bank], bank_tags, computed[data],
                                    [t for _, t in self.images[data]], k)
                self.assertAlmostEqual(row["knn"], want, places=6, msg=f"k {k}, {data}")
                if extra:
                    self.assertAlmostEqual(row["knn_adapted"], want, places=6, msg=f"k {k}")
            self.assertAlmostEqual(table["average"]["knn"],
                                   np.mean([r["knn"] for r in table["datasets"]]), places=6)

    SLOW_SANITIZED = unittest.skipIf(os.environ.get("AGC_SANITIZED") == "1",
                                     "ResNet-50 features at 224 px: too slow under the sanitizers "
                                     "(the CLIP tests run the same k-NN code there)")

    @SLOW_SANITIZED
    def test_agriclip_resnet_features(self):
        self.check(self.model, self.resnet_features)

    @SLOW_SANITIZED
    def test_agriclip_with_an_aligner_adapter_keeps_the_resnet_features(self):
        adapter = os.path.join(self.tmp, "aligner.safetensors")
        run(["train", "--method", "aligner", "--model", self.model, "--data", self.bank,
             "--out", adapter], self.cache)
        self.check(self.model, self.resnet_features, "--adapter", adapter)

    def test_clip_embeddings(self):
        self.check(self.clip, self.clip_embeddings)

    def test_text_table_and_bad_k(self):
        proc = run(["evaluate", "--model", self.clip, "--data", self.data[0],
                    "--knn-bank", self.bank], self.cache)
        self.assertIn("k-NN", proc.stdout.splitlines()[0])
        proc = run(["evaluate", "--model", self.clip, "--data", self.data[0],
                    "--knn-bank", self.bank, "--knn-k", "0"], self.cache, check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--knn-k", proc.stderr)


if __name__ == "__main__":
    unittest.main()
