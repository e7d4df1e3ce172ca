"""test_dino_train.py — `agriclip train --method dino` (core/train/dino-train.c)
end to end, on a tiny AgriCLIP folder (test_aligner's: a random torchvision
ResNet-50, a random aligner, a tiny CLIP twin's text side) and six
unlabelled photos (some in a sub-folder, no labels.json), one epoch of
small crops:

  - the adapter holds the teacher's ResNet-50 under torchvision's names,
    and `embed --adapter` equals torchvision's ResNet-50 (eval mode) with
    those tensors loaded, then the model's aligner (cosine >= 0.99999);
  - a run killed after its first epoch's checkpoint and started again
    writes the same tensors, bit for bit, as one run through;
  - the aligner trained on top of it (`train --method aligner --adapter`)
    loads, carries the DINO ResNet, and classifies.
DinoVitTraining does the same on a tiny CLIP twin's ViT (32 px): the last
block alone (--blocks 1) and the whole tower; its adapters hold the trained
tensors under their Hugging Face names, and `embed --adapter` equals the
twin with those tensors.
The DINO step itself is checked against PyTorch in test_dino.py."""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_aligner import LOOKS, write_data  # noqa: E402
from test_resnet import imagenet_transform, random_resnet50  # noqa: E402
from test_train import draw, read_adapter  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
EMBED_DIM = 32
FEATURES = 2048
DINO_ARGS = ["--epochs", "1", "--batch-size", "2", "--local-crops", "1", "--crop-size", "32",
             "--out-dim", "64", "--lr", "1e-3"]


def make_agriclip(tmp):
    """A tiny AgriCLIP model in tmp/agriclip: a random ResNet-50 and aligner beside a tiny
    CLIP (tmp/clip); returns (folder, aligner weight, aligner bias)."""
    clip_dir = os.path.join(tmp, "clip")
    clip_twin.make_model(clip_dir, seed=21, image_size=32, projection_dim=EMBED_DIM)
    model = os.path.join(tmp, "agriclip")
    weights_dir = os.path.join(model, "Weights")
    os.makedirs(weights_dir)
    for f in os.listdir(clip_dir):
        os.symlink(os.path.join(clip_dir, f), os.path.join(model, f))
    torch.save(random_resnet50(seed=3).state_dict(),
               os.path.join(weights_dir, "dino_pretrain.pth"))
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(EMBED_DIM, FEATURES, generator=gen) / math.sqrt(FEATURES)
    bias = torch.randn(EMBED_DIM, generator=gen)
    torch.save({"W": weight, "b": bias}, os.path.join(weights_dir, "Agri_Dino_aligner_DPT_CPT.pth"))
    return model, weight, bias


def run(args, cache, check=True):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    proc = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=900, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


class DinoTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-dino-train-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.model, cls.weight, cls.bias = make_agriclip(cls.tmp)

        # unlabelled: four photos at the top, two in a sub-folder
        cls.photos = os.path.join(cls.tmp, "photos")
        os.makedirs(os.path.join(cls.photos, "field-2"))
        rng = np.random.default_rng(7)
        looks = sorted(LOOKS)
        cls.images = []
        for i in range(6):
            folder = cls.photos if i < 4 else os.path.join(cls.photos, "field-2")
            path = os.path.join(folder, "%02d.png" % i)
            draw(LOOKS[looks[i % 3]], rng).save(path)
            cls.images.append(path)
        cls.adapter = os.path.join(cls.tmp, "dino.safetensors")
        run(["train", "--method", "dino", "--model", cls.model, "--data", cls.photos,
             "--out", cls.adapter, *DINO_ARGS], cls.cache)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def torch_embeddings(self, tensors, weight, bias, paths):
        resnet = random_resnet50(seed=0)
        state = resnet.state_dict()
        missing = set(k for k in state if not k.endswith("num_batches_tracked")) - set(tensors)
        self.assertEqual(missing, set())
        resnet.load_state_dict({k: tensors.get(k, v) for k, v in state.items()})
        resnet.double().eval()
        with torch.no_grad():
            pixels = torch.stack([imagenet_transform()(Image.open(p).convert("RGB"))
                                  for p in paths]).double()
            return (resnet(pixels) @ weight.double().T + bias.double()).numpy()

    def embed(self, paths, *extra):
        images = [a for p in paths for a in ("--image", p)]
        proc = run(["embed", "--model", self.model, "--raw", *extra, *images], self.cache)
        return np.array([json.loads(line)["embedding"] for line in proc.stdout.splitlines()])

    def assert_close(self, got, want):
        for g, w in zip(got, want):
            cosine = float(np.dot(g, w) / (np.linalg.norm(g) * np.linalg.norm(w)))
            self.assertGreaterEqual(cosine, 0.99999)

    def test_adapter_is_the_teacher_resnet(self):
        tensors, meta = read_adapter(self.adapter)
        self.assertEqual(meta["agriclip.method"], "dino")
        self.assertIn("layer4.2.bn3.running_var", tensors)
        original = random_resnet50(seed=3).state_dict()
        self.assertGreater(float((tensors["conv1.weight"] - original["conv1.weight"])
                                 .abs().max()), 0)  # trained
        got = self.embed(self.images[:3], "--adapter", self.adapter)
        self.assert_close(got, self.torch_embeddings(tensors, self.weight, self.bias,
                                                     self.images[:3]))
        plain = self.embed(self.images[:1])
        self.assertGreater(float(np.abs(plain[0] - got[0]).max()), 1e-4)

    def test_killed_run_resumes_to_the_same_adapter(self):
        args = ["train", "--method", "dino", "--model", self.model, "--data", self.photos,
                *DINO_ARGS, "--epochs", "2", "--checkpoint-every", "1"]
        whole = os.path.join(self.tmp, "whole.safetensors")
        run(args + ["--out", whole], self.cache)
        resumed = os.path.join(self.tmp, "resumed.safetensors")
        env = dict(os.environ, XDG_CACHE_HOME=self.cache)
        proc = subprocess.Popen([AGRICLIP] + args + ["--out", resumed], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = resumed + ".checkpoint"
        deadline = time.time() + 600
        while not os.path.exists(checkpoint) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        self.assertTrue(os.path.exists(checkpoint), "no checkpoint before the end")
        self.assertFalse(os.path.exists(resumed))
        again = run(args + ["--out", resumed], self.cache)
        self.assertIn("resuming", again.stderr)
        self.assertFalse(os.path.exists(checkpoint))
        got, _ = read_adapter(resumed)
        want, _ = read_adapter(whole)
        self.assertEqual(set(got), set(want))
        for name in want:
            self.assertTrue(torch.equal(got[name], want[name]), name)

    def test_crop_size_follows_the_model(self):
        """A folder whose agriclip.json says "image_size": 32: without --crop-size DINO
        crops at 32 and writes the adapter of --crop-size 32; --teacher-momentum and
        --teacher-temp are recorded and change it."""
        model = os.path.join(self.tmp, "agriclip-32")
        os.makedirs(model)
        for f in os.listdir(self.model):
            os.symlink(os.path.join(self.model, f), os.path.join(model, f))
        with open(os.path.join(model, "agriclip.json"), "w") as f:
            json.dump({"family": "agriclip", "image_size": 32}, f)
        args = [a for a in DINO_ARGS if a not in ("--crop-size", "32")]
        self.assertEqual(len(args), len(DINO_ARGS) - 2)
        default = os.path.join(self.tmp, "crop-default.safetensors")
        run(["train", "--method", "dino", "--model", model, "--data", self.photos,
             "--out", default, *args], self.cache)
        got, meta = read_adapter(default)
        want, _ = read_adapter(self.adapter)
        self.assertEqual(meta["agriclip.training"]["crop_size"], 32)
        self.assertEqual(meta["agriclip.training"]["teacher_momentum"], 0.996)
        for name in want:
            self.assertTrue(torch.equal(got[name], want[name]), name)

        teacher = os.path.join(self.tmp, "teacher.safetensors")
        run(["train", "--method", "dino", "--model", model, "--data", self.photos,
             "--out", teacher, *args, "--teacher-momentum", "0.9", "--teacher-temp", "0.07"],
            self.cache)
        got, meta = read_adapter(teacher)
        self.assertEqual(meta["agriclip.training"]["teacher_momentum"], 0.9)
        self.assertEqual(meta["agriclip.training"]["teacher_temp"], 0.07)
        self.assertGreater(float((got["conv1.weight"] - want["conv1.weight"]).abs().max()), 0)

    def test_dino_stacked_on_dino(self):
        """`train --method dino --adapter DINO` continues from the base's ResNet: the
        same adapter as DINO on a folder whose manifest names that ResNet as its own."""
        stacked = os.path.join(self.tmp, "dino-on-dino.safetensors")
        run(["train", "--method", "dino", "--model", self.model, "--data", self.photos,
             "--out", stacked, "--adapter", self.adapter, *DINO_ARGS], self.cache)
        model = os.path.join(self.tmp, "agriclip-dino-start")
        os.makedirs(model)
        for f in os.listdir(self.model):
            os.symlink(os.path.join(self.model, f), os.path.join(model, f))
        if os.path.lexists(os.path.join(model, "agriclip.json")):
            os.remove(os.path.join(model, "agriclip.json"))
        os.symlink(self.adapter, os.path.join(model, "dino-start.safetensors"))
        with open(os.path.join(model, "agriclip.json"), "w") as f:
            json.dump({"family": "agriclip",
                       "image_encoder": {"weights": "dino-start.safetensors"}}, f)
        direct = os.path.join(self.tmp, "dino-from-folder.safetensors")
        run(["train", "--method", "dino", "--model", model, "--data", self.photos,
             "--out", direct, *DINO_ARGS], self.cache)
        got, meta = read_adapter(stacked)
        want, _ = read_adapter(direct)
        base, _ = read_adapter(self.adapter)
        self.assertEqual([b["method"] for b in json.loads(meta["agriclip.stack"])], ["dino"])
        self.assertEqual(set(want) - set(got), set())
        for name in want:
            self.assertTrue(torch.equal(got[name], want[name]), name)
        self.assertGreater(float((got["conv1.weight"] - base["conv1.weight"]).abs().max()), 0)

    def test_aligner_stacked_on_dino(self):
        data = os.path.join(self.tmp, "tagged")
        tagged = write_data(data, {"rust": 3, "blight": 3, "healthy": 3}, seed=4)
        top = os.path.join(self.tmp, "aligner-on-dino.safetensors")
        run(["train", "--method", "aligner", "--model", self.model, "--data", data, "--out", top,
             "--val-fraction", "0", "--ridge", "1", "--adapter", self.adapter], self.cache)
        tensors, meta = read_adapter(top)
        self.assertEqual(meta["agriclip.method"], "aligner")
        dino, _ = read_adapter(self.adapter)
        self.assertTrue(torch.equal(tensors["layer1.0.conv1.weight"],
                                    dino["layer1.0.conv1.weight"]))
        paths = [p for p, _ in tagged[:2]]
        got = self.embed(paths, "--adapter", top)
        self.assert_close(got, self.torch_embeddings(tensors, tensors["W"], tensors["b"], paths))
        proc = run(["classify", "--model", self.model, "--adapter", top, "--format", "jsonl",
                    paths[0]], self.cache)
        self.assertEqual(len(proc.stdout.splitlines()), 1, proc.stdout)
        # the same training where the cache holds the model's own ResNet features of
        # these photos (a plain aligner run first): the DINO-adapted features are
        # others, so the adapter must not change
        warm = os.path.join(self.tmp, "cache-with-plain-features")
        common = ["train", "--method", "aligner", "--model", self.model, "--data", data,
                  "--val-fraction", "0", "--ridge", "1"]
        run(common + ["--out", os.path.join(self.tmp, "plain-aligner.safetensors")], warm)
        again = os.path.join(self.tmp, "aligner-on-dino-again.safetensors")
        run(common + ["--out", again, "--adapter", self.adapter], warm)
        with open(top, "rb") as a, open(again, "rb") as b:
            self.assertEqual(a.read(), b.read())


class DinoVitTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-dino-vit-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.model = os.path.join(cls.tmp, "clip")
        clip_twin.make_model(cls.model, seed=31, image_size=32, projection_dim=EMBED_DIM)
        cls.photos = os.path.join(cls.tmp, "photos")
        os.makedirs(cls.photos)
        rng = np.random.default_rng(8)
        looks = sorted(LOOKS)
        cls.images = []
        for i in range(4):
            path = os.path.join(cls.photos, "%02d.png" % i)
            draw(LOOKS[looks[i % 3]], rng).save(path)
            cls.images.append(path)
        cls.args = ["train", "--method", "dino", "--model", cls.model, "--data", cls.photos,
                    "--epochs", "1", "--batch-size", "2", "--local-crops", "1",
                    "--out-dim", "64", "--lr", "0.1"]  # the EMA teacher moves visibly
        cls.top = os.path.join(cls.tmp, "top.safetensors")
        run(cls.args + ["--blocks", "1", "--out", cls.top], cls.cache)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_through_twin(self, adapter, want_names):
        tensors, meta = read_adapter(adapter)
        self.assertEqual(meta["agriclip.method"], "dino")
        self.assertEqual(set(tensors), want_names)
        weights = clip_twin.read_model_weights(self.model)
        with open(os.path.join(self.model, "config.json")) as f:
            config = json.load(f)
        replaced = dict(weights)
        for name, value in tensors.items():
            self.assertEqual(tuple(value.shape), tuple(weights[name].shape), name)
            replaced[name] = value
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, 32) for p in self.images])
            want = F.normalize(clip_twin.TwinCLIP(config, replaced).encode_image(pixels), dim=-1)
            plain = F.normalize(clip_twin.TwinCLIP(config, weights).encode_image(pixels), dim=-1)
        images = [a for p in self.images for a in ("--image", p)]
        proc = run(["embed", "--model", self.model, "--raw", "--adapter", adapter, *images],
                   self.cache)
        got = torch.tensor([json.loads(line)["embedding"] for line in proc.stdout.splitlines()],
                           dtype=torch.float64)
        want = want * got.norm(dim=-1, keepdim=True)  # raw embeddings, compared as directions
        plain = plain * got.norm(dim=-1, keepdim=True)
        scale = float(got.abs().max())
        err = float((got - want).abs().max())
        moved = float((plain - want).abs().max())
        self.assertLessEqual(err, 1e-5 * scale, "embed --adapter vs the twin")
        self.assertGreater(moved, 100 * err, "the adapter changed the embeddings")

    def vit_names(self, first_layer, layers=2):
        block = ["layer_norm1.weight", "layer_norm1.bias", "layer_norm2.weight",
                 "layer_norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                 "mlp.fc2.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias"]
        block += ["self_attn.%s_proj.%s" % (p, k) for p in "qkv" for k in ("weight", "bias")]
        names = {"vision_model.encoder.layers.%d.%s" % (i, b)
                 for i in range(first_layer, layers) for b in block}
        names |= {"vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
                  "visual_projection.weight"}
        if first_layer == 0:
            names |= {"vision_model.embeddings.patch_embedding.weight",
                      "vision_model.embeddings.class_embedding",
                      "vision_model.embeddings.position_embedding.weight",
                      "vision_model.pre_layrnorm.weight", "vision_model.pre_layrnorm.bias"}
        return names

    def test_last_block_adapter_is_the_teacher(self):
        self.check_through_twin(self.top, self.vit_names(1))

    def test_whole_tower_killed_run_resumes_to_the_same_adapter(self):
        # two epochs after the first checkpoint: time to kill the run before its end
        args = self.args + ["--epochs", "3", "--checkpoint-every", "1"]
        whole = os.path.join(self.tmp, "whole.safetensors")
        run(args + ["--out", whole], self.cache)
        self.check_through_twin(whole, self.vit_names(0))
        resumed = os.path.join(self.tmp, "resumed.safetensors")
        env = dict(os.environ, XDG_CACHE_HOME=self.cache)
        proc = subprocess.Popen([AGRICLIP] + args + ["--out", resumed], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = resumed + ".checkpoint"
        deadline = time.time() + 600
        while not os.path.exists(checkpoint) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        self.assertTrue(os.path.exists(checkpoint), "no checkpoint before the end")
        self.assertFalse(os.path.exists(resumed))
        again = run(args + ["--out", resumed], self.cache)
        self.assertIn("resuming", again.stderr)
        got, _ = read_adapter(resumed)
        want, _ = read_adapter(whole)
        self.assertEqual(set(got), set(want))
        for name in want:
            self.assertTrue(torch.equal(got[name], want[name]), name)


if __name__ == "__main__":
    unittest.main()
