"""Contrastive adapters (issue 16, part 3): an adapter may replace tensors of
both CLIP towers and the logit scale, under their Hugging Face names.

- `classify --adapter` with an adapter holding image-tower blocks, text-tower
  blocks, the text head and logit_scale equals a PyTorch twin with those
  tensors loaded in place of the model's (probabilities within 1e-4), after
  the plain model classified with the same prompts.
- A text tensor of the wrong shape, or a name the text tower does not have,
  is refused with the tensor's name.

The adapter's image half and metadata come from a real one-epoch finetune
run; its text half is the model's own tensors moved by seeded noise, so
that loading is tested apart from training (test_contrastive_train.py
trains real contrastive adapters and checks them the same way).
"""

import json
import math
import os
import shutil
import struct
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_train import (IMAGE_SIZE, read_adapter, run, train,  # noqa: E402
                        twin_class_embeddings, write_class_folders)
import test_zeroshot as zeroshot  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")


def raw_metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ContrastiveAdapter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-contrastive-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=21, image_size=IMAGE_SIZE, vision_layers=3)
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.data = os.path.join(cls.tmp, "data")
        cls.paths = write_class_folders(cls.data, {"rust": 4, "blight": 4, "healthy": 4}, seed=5)
        cls.finetune = os.path.join(cls.tmp, "finetune.safetensors")
        train(cls.model, cls.data, cls.finetune, cls.cache, "--method", "finetune", "--lr",
              "3e-3", "--epochs", "1", "--blocks", "1", "--val-fraction", "0")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write_contrastive(self, name, text_tensors):
        """The finetune adapter's image tensors and metadata, method contrastive,
        with text_tensors added."""
        tensors = {k: v.float() for k, v in clip_twin.read_safetensors(self.finetune).items()}
        tensors.update(text_tensors)
        meta = raw_metadata(self.finetune)
        meta["agriclip.method"] = "contrastive"
        path = os.path.join(self.tmp, name + ".safetensors")
        clip_twin.write_safetensors(path, tensors, meta)
        return path

    def moved_text_tensors(self):
        weights = clip_twin.read_model_weights(self.model)
        gen = torch.Generator().manual_seed(3)
        last = max(int(n.split(".")[3]) for n in weights if n.startswith("text_model.encoder."))
        names = [n for n in weights
                 if n.startswith(f"text_model.encoder.layers.{last}.")
                 or n.startswith("text_model.final_layer_norm.") or n == "text_projection.weight"]
        self.assertGreater(len(names), 10)
        moved = {n: (weights[n].float() + 0.2 * torch.randn(weights[n].shape, generator=gen))
                 for n in names}
        moved["logit_scale"] = torch.tensor([math.log(30.0)])
        return moved

    def test_classify_equals_twin_with_both_towers_replaced(self):
        text = self.moved_text_tensors()
        adapter = self.write_contrastive("both", text)
        images = sorted(p for tag in self.paths for p in self.paths[tag])[:6]
        labels = sum((["--label", t] for t in ("blight", "healthy", "rust")), [])
        # the plain model's class embeddings of the same prompts come first
        run(["classify", "--model", self.model, *labels, "--format", "jsonl"] + images,
            self.cache)
        proc = run(["classify", "--model", self.model, "--adapter", adapter, "--format",
                    "jsonl", "--top", "10"] + images, self.cache)
        got = zeroshot.parse_jsonl(proc.stdout)

        tensors, meta = read_adapter(adapter)
        weights = clip_twin.read_model_weights(self.model)
        with open(os.path.join(self.model, "config.json")) as f:
            config = json.load(f)
        replaced = dict(weights)
        for name, value in tensors.items():
            self.assertIn(name, weights)
            replaced[name] = value.reshape(weights[name].shape)
        twin = clip_twin.TwinCLIP(config, replaced).eval()
        plain = clip_twin.TwinCLIP(config, weights).eval()
        classes = [(c["name"], c["prompts"]) for c in meta["agriclip.classes"]]
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in images])
            img = twin.encode_image(pixels)
            img = img / img.norm(dim=-1, keepdim=True)
            cls = twin_class_embeddings(twin, classes)
            probs = torch.softmax(30.0 * img @ cls.T, dim=-1)
            # the text half matters: the plain text tower gives other numbers
            plain_probs = torch.softmax(30.0 * img @ twin_class_embeddings(plain, classes).T,
                                        dim=-1)
        self.assertGreater(float((probs - plain_probs).abs().max()), 1e-2)
        names = [c[0] for c in classes]
        self.assertEqual(len(got), len(images))
        for row, (image, labelled) in enumerate(got):
            self.assertEqual(image, images[row])
            self.assertEqual(len(labelled), len(names))
            for label, p in labelled:
                self.assertAlmostEqual(p, float(probs[row, names.index(label)]), delta=1e-4,
                                       msg=(image, label))

    def test_bad_text_tensors_are_refused(self):
        image = sorted(self.paths["rust"])[0]
        weights = clip_twin.read_model_weights(self.model)
        projection = weights["text_projection.weight"]
        for bad, what in (({"text_projection.weight": torch.zeros(projection.shape[0] + 1,
                                                                   projection.shape[1])},
                           "text_projection.weight"),
                          ({"text_model.encoder.layers.99.mlp.fc1.bias": torch.zeros(4)},
                           "text_model.encoder.layers.99.mlp.fc1.bias")):
            adapter = self.write_contrastive("bad", bad)
            proc = run(["classify", "--model", self.model, "--adapter", adapter, image],
                       self.cache, check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(what, proc.stderr)
            self.assertEqual(proc.stderr.count("\n"), 1, proc.stderr)


if __name__ == "__main__":
    unittest.main()
