"""test_agriclip.py — AgriCLIP model folders (core/models/agriclip-model.c) against
the released AgriCLIP recipe computed in PyTorch, float64.

The folder is built as users have it: a Hugging Face CLIP folder (the tiny
random twin of clip_twin.py stands in for CLIP ViT-B/16) plus
Weights/dino_pretrain.pth, a torchvision ResNet-50 state dict without fc
and with BatchNorm statistics that matter (test_resnet.random_resnet50),
and Weights/Agri_Dino_aligner_DPT_CPT.pth, a dict {'W': [E, 2048], 'b': [E]},
both written by torch.save.  The reference follows the authors' code:

  image -> Resize(224, bilinear) -> CenterCrop(224) -> ImageNet Normalize
        -> ResNet-50 -> f[2048];  a = f @ W.T + b;  a /= |a|
  class -> mean of the raw text projections of its prompts, normalised
  p = softmax(temperature * cos(a, class)), temperature 100 unless the
      manifest (agriclip.json) says otherwise.

`agriclip classify --format jsonl` must give these probabilities within
1e-5, and `agriclip embed` the aligned image embedding (cosine >= 0.99999).
Variants: ResNet weights under the prefixes DINO checkpoints use, an
aligner stored transposed or without bias.  Broken folders must fail with
a message that names the problem.
"""

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
from test_resnet import imagenet_transform, picture, random_resnet50  # noqa: E402
from test_zeroshot import parse_jsonl, prompts_from_file  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
# Probabilities at a soft temperature follow the cosines closely: within
# 1e-5.  At 100 a float32 cosine error of a few 1e-6 moves them by up to
# 100 p (1 - p) times as much: within 1e-4 there (as test_zeroshot.py).  The
# error is that large because pooled features of different images share
# most of their direction, which the aligner cancels (see make_aligner).
TOLERANCE = 1e-5
TOLERANCE_SHARP = 1e-4
EMBED_DIM = 32  # the twin's projection_dim: the aligner must map to it
FEATURES = 2048
DEFAULT_TEMPERATURE = 100.0  # documented in models/README.md

LABELS = {
    "id": "agri-test", "title": "AgriCLIP test",
    "templates": ["a photo of {}.", "a close-up photo of {}, a type of crop.", "{} in a field"],
    "classes": [
        {"name": "maize_rust", "display": "Maize: rust", "text": "a maize leaf with rust"},
        {"name": "maize_healthy", "display": "Maize: healthy", "text": "a healthy maize leaf",
         "prompts": ["a green maize leaf without spots"]},
        {"name": "holstein", "display": "Holstein cow"},
        {"name": "tilapia", "display": "Tilapia", "use_templates": False,
         "prompts": ["a photo of a tilapia.", "a tilapia fish on ice"]},
    ],
}


def run_cli(*args):
    return subprocess.run([AGRICLIP, *args], capture_output=True, text=True, timeout=600)


class Reference:
    """The released recipe in float64 from the tensors as stored."""

    def __init__(self, resnet, weight, bias, twin, size=224):
        self.size = size  # the manifest's image_size
        self.resnet = copy.deepcopy(resnet).double().eval()
        self.weight = weight.double()  # [E, 2048]
        self.bias = bias.double() if bias is not None else torch.zeros(weight.shape[0],
                                                                       dtype=torch.float64)
        self.twin = twin

    def features(self, paths):
        """f[N, 2048] of image files."""
        pixels = []
        for path in paths:
            with Image.open(path) as image:
                pixels.append(imagenet_transform(self.size)(image.convert("RGB")))
        with torch.no_grad():
            return self.resnet(torch.stack(pixels).double())

    def aligned(self, paths):
        """a[N, E] before normalisation."""
        return self.features(paths) @ self.weight.T + self.bias

    def classes(self, classes, normalise_prompts=False):
        """[C, E]; the released recipe averages the raw prompt embeddings."""
        prompts = [p for _, class_prompts in classes for p in class_prompts]
        with torch.no_grad():
            text = self.twin.encode_text(clip_twin.tokenize(prompts))
        if normalise_prompts:  # the open_clip recipe, for contrast
            text = text / text.norm(dim=-1, keepdim=True)
        rows, start = [], 0
        for _, class_prompts in classes:
            mean = text[start:start + len(class_prompts)].mean(dim=0)
            rows.append(mean / mean.norm())
            start += len(class_prompts)
        return torch.stack(rows)

    def probs(self, paths, classes, temperature, normalise_prompts=False):
        image = self.aligned(paths)
        image = image / image.norm(dim=-1, keepdim=True)
        cos = image @ self.classes(classes, normalise_prompts).T
        return torch.softmax(temperature * cos, dim=-1)


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class AgriclipAgainstReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-agriclip-")
        cls.clip_dir = os.path.join(cls.tmp, "clip")
        clip_twin.make_model(cls.clip_dir, seed=21, image_size=32, projection_dim=EMBED_DIM)
        cls.twin = clip_twin.load_twin(cls.clip_dir)

        image_dir = os.path.join(cls.tmp, "images")
        os.makedirs(image_dir)
        cls.images = []
        for i, (w, h) in enumerate([(300, 240), (200, 330), (224, 224)]):
            path = os.path.join(image_dir, f"image-{i}.png")
            Image.fromarray(picture(w, h, seed=i)).save(path)
            cls.images.append(path)

        cls.resnet = random_resnet50(seed=3)
        cls.state = cls.resnet.state_dict()  # no fc; num_batches_tracked included
        cls.weight, cls.bias = cls.make_aligner()
        cls.ref = Reference(cls.resnet, cls.weight, cls.bias, cls.twin)

        # the catalogue's layout: the CLIP files at the top, the two Weights/ files
        cls.released = os.path.join(cls.tmp, "released")
        shutil.copytree(cls.clip_dir, cls.released)
        os.makedirs(os.path.join(cls.released, "Weights"))
        cls.resnet_file = os.path.join(cls.released, "Weights", "dino_pretrain.pth")
        torch.save(cls.state, cls.resnet_file)
        cls.aligner_file = os.path.join(cls.released, "Weights",
                                        "Agri_Dino_aligner_DPT_CPT.pth")
        torch.save({"W": cls.weight, "b": cls.bias}, cls.aligner_file)

        cls.labels = os.path.join(cls.tmp, "labels.json")
        with open(cls.labels, "w", encoding="utf-8") as f:
            json.dump(LABELS, f)
        cls.classes = prompts_from_file(cls.labels)
        cls.n_folders = 0

    @classmethod
    def make_aligner(cls):
        """W [E, 2048], b [E] float32.  Pooled ReLU features of different
        pictures share most of their direction; a trained aligner maps that
        common part to little, as W does here (it is orthogonal to the mean
        feature of the test images), so that the aligned embeddings of the
        images differ clearly and b matters: |W f| and |b| are both about 1."""
        probe = Reference(cls.resnet, torch.zeros(EMBED_DIM, FEATURES), None, None)
        features = probe.features(cls.images).float()
        mean = features.mean(dim=0)
        mean = mean / mean.norm()
        gen = torch.Generator().manual_seed(4)
        weight = torch.randn(EMBED_DIM, FEATURES, generator=gen)
        weight = weight - (weight @ mean)[:, None] * mean[None, :]
        weight = weight / float((features @ weight.T).norm(dim=1).mean())
        bias = torch.randn(EMBED_DIM, generator=gen) / math.sqrt(EMBED_DIM)
        return weight.contiguous(), bias

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------

    def folder(self, manifest=None, files=None, text_files=True):
        """A new model folder: the CLIP files (unless text_files is false),
        files {relative path: source path or a callable writing the path},
        and agriclip.json (a dict, or a string written as is)."""
        type(self).n_folders += 1
        path = os.path.join(self.tmp, f"model-{self.n_folders}")
        os.makedirs(os.path.join(path, "Weights"))
        if text_files:
            for name in os.listdir(self.clip_dir):
                os.symlink(os.path.join(self.clip_dir, name), os.path.join(path, name))
        for relative, source in (files or {}).items():
            target = os.path.join(path, relative)
            if callable(source):
                source(target)
            else:
                os.symlink(source, target)
        if manifest is not None:
            with open(os.path.join(path, "agriclip.json"), "w") as f:
                f.write(manifest if isinstance(manifest, str) else json.dumps(manifest))
        return path

    def released_files(self, **changes):
        files = {"Weights/dino_pretrain.pth": self.resnet_file,
                 "Weights/Agri_Dino_aligner_DPT_CPT.pth": self.aligner_file}
        files.update(changes)
        return {k: v for k, v in files.items() if v is not None}

    def embed(self, model_dir, *args):
        proc = run_cli("embed", "--model", model_dir, *args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return np.array([json.loads(line)["embedding"] for line in proc.stdout.splitlines()])

    def classify(self, model_dir):
        proc = run_cli("classify", "--model", model_dir, "--labels", self.labels, "--top",
                       str(len(self.classes)), "--format", "jsonl", *self.images)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return parse_jsonl(proc.stdout)

    def assert_embeddings(self, got, want, what, raw=False):
        """got[N, E] from the CLI, want[N, E] reference aligner outputs."""
        want = want.numpy()
        if not raw:
            want = want / np.linalg.norm(want, axis=1, keepdims=True)
        self.assertEqual(got.shape, want.shape, what)
        for i, (g, w) in enumerate(zip(got, want)):
            cos = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w)))
            self.assertGreaterEqual(cos, 0.99999, f"{what}: image {i}: cosine {cos}")
            if raw:
                scale = float(np.abs(w).max())
                self.assertLessEqual(float(np.abs(g - w).max()), 1e-4 * scale, f"{what}: {i}")
            else:
                self.assertAlmostEqual(float(np.linalg.norm(g)), 1.0, delta=1e-5)

    def assert_probs(self, results, want, tolerance):
        names = [name for name, _ in self.classes]
        self.assertEqual([image for image, _ in results], self.images)
        for (image, labels), probs in zip(results, want.tolist()):
            self.assertEqual(sorted(label for label, _ in labels), sorted(names), image)
            for label, p in labels:
                self.assertAlmostEqual(p, probs[names.index(label)], delta=tolerance,
                                       msg=f"{image}: {label}")

    def assert_fails(self, model_dir, *fragments):
        proc = run_cli("embed", "--model", model_dir, "--text", "a leaf")
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(proc.stdout, "")
        for fragment in fragments:
            self.assertIn(fragment, proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        return proc.stderr

    # ---- the recipe --------------------------------------------------------

    def test_classify_released_layout_default_temperature(self):
        """No agriclip.json: the catalogue's layout, temperature 100."""
        want = self.ref.probs(self.images, self.classes, DEFAULT_TEMPERATURE)
        self.assertLess(float(want.max(dim=1).values.min()), 0.99, want)  # not all one-hot
        self.assertGreater(float(  # and the temperature shows
            (want - self.ref.probs(self.images, self.classes, 50.0)).abs().max()), 1e-2)
        self.assert_probs(self.classify(self.released), want, TOLERANCE_SHARP)

    def test_classify_manifest_temperature(self):
        """A soft temperature from the manifest, where every probability
        shows the cosines to about 1e-5, and the recipe is told apart from
        open_clip's and from the default temperature."""
        temperature = 3.0
        model = self.folder({"family": "agriclip", "temperature": temperature},
                            self.released_files())
        want = self.ref.probs(self.images, self.classes, temperature)
        self.assertLess(float(want.max()), 0.9, want)  # not an argmax
        other_recipe = self.ref.probs(self.images, self.classes, temperature,
                                      normalise_prompts=True)
        self.assertGreater(float((want - other_recipe).abs().max()), 1e-3)
        self.assertGreater(
            float((want - self.ref.probs(self.images, self.classes, 100.0)).abs().max()), 1e-2)
        self.assert_probs(self.classify(model), want, TOLERANCE)

    def test_embed_images_are_aligned_features(self):
        want = self.ref.aligned(self.images)
        args = [a for path in self.images for a in ("--image", path)]
        self.assert_embeddings(self.embed(self.released, *args), want, "normalised")
        self.assert_embeddings(self.embed(self.released, "--raw", *args), want, "raw", raw=True)

    def test_embed_text_is_the_clip_text_tower(self):
        texts = ["a photo of a maize leaf with rust.", "tilapia"]
        with torch.no_grad():
            want = self.twin.encode_text(clip_twin.tokenize(texts))
        args = [a for t in texts for a in ("--text", t)]
        self.assert_embeddings(self.embed(self.released, "--raw", *args), want, "text", raw=True)

    def test_text_model_elsewhere(self):
        """Only the Weights/ files and a manifest pointing at a CLIP folder."""
        model = self.folder({"family": "agriclip", "text_model": self.clip_dir},
                            self.released_files(), text_files=False)
        got = self.embed(model, "--raw", "--image", self.images[0])
        self.assert_embeddings(got, self.ref.aligned(self.images[:1]), "text elsewhere",
                               raw=True)

    def test_manifest_image_size(self):
        """"image_size": 64 runs the preprocessing and the ResNet at 64 px,
        as torchvision's at 64; classify follows (the recipe at 64)."""
        model = self.folder({"family": "agriclip", "image_size": 64}, self.released_files())
        at_64 = Reference(self.resnet, self.weight, self.bias, self.twin, size=64)
        want = at_64.aligned(self.images)
        other = self.ref.aligned(self.images)  # at 224: the test can tell them apart
        cos = torch.nn.functional.cosine_similarity(want, other, dim=1)
        self.assertLess(float(cos.min()), 0.999, cos)
        args = [a for path in self.images for a in ("--image", path)]
        self.assert_embeddings(self.embed(model, "--raw", *args), want, "image_size 64", raw=True)
        self.assert_probs(self.classify(model), at_64.probs(self.images, self.classes,
                                                            DEFAULT_TEMPERATURE),
                          TOLERANCE_SHARP)
        for bad in (16, 2000, 64.5, "64"):
            broken = self.folder({"family": "agriclip", "image_size": bad},
                                 self.released_files())
            self.assert_fails(broken, "agriclip.json", "image_size")

    # ---- checkpoint variants ------------------------------------------------

    def check_variant(self, model, reference, what):
        got = self.embed(model, "--raw", "--image", self.images[1])
        self.assert_embeddings(got, reference.aligned(self.images[1:2]), what, raw=True)

    def test_dino_prefixes(self):
        # DINO's training checkpoint: MultiCropWrapper (backbone + head) in
        # DistributedDataParallel, "module." on every name
        head = {"head.mlp.0.weight": torch.randn(16, 2048), "head.last_layer.weight_g":
                torch.ones(8, 1)}
        dino = {"module.backbone." + k: v for k, v in self.state.items()}
        dino.update({"module." + k: v for k, v in head.items()})
        model = self.folder(None, self.released_files(**{
            "Weights/dino_pretrain.pth": lambda p: torch.save(dino, p)}))
        self.check_variant(model, self.ref, "module.backbone.")

        # one level down, under "state_dict", without "module."
        nested = {"state_dict": {"backbone." + k: v for k, v in self.state.items()}}
        model = self.folder(None, self.released_files(**{
            "Weights/dino_pretrain.pth": lambda p: torch.save(nested, p)}))
        self.check_variant(model, self.ref, "state_dict / backbone.")

    def test_teacher_and_student(self):
        student_net = random_resnet50(seed=8)
        both = {"teacher.backbone." + k: v for k, v in self.state.items()}
        both.update({"student.backbone." + k: v for k, v in student_net.state_dict().items()})
        path = os.path.join(self.tmp, "teacher-student.pth")
        torch.save(both, path)
        # detected: DINO evaluates the teacher
        model = self.folder(None, self.released_files(**{"Weights/dino_pretrain.pth": path}))
        self.check_variant(model, self.ref, "teacher detected")
        # chosen in the manifest
        student = Reference(student_net, self.weight, self.bias, self.twin)
        model = self.folder({"family": "agriclip",
                             "image_encoder": {"type": "resnet50",
                                               "weights": "Weights/dino_pretrain.pth",
                                               "prefix": "student.backbone."}},
                            self.released_files(**{"Weights/dino_pretrain.pth": path}))
        self.check_variant(model, student, "student by prefix")
        self.assertLess(float(np.corrcoef(student.aligned(self.images[1:2])[0],
                                          self.ref.aligned(self.images[1:2])[0])[0, 1]), 0.99)

    def test_aligner_transposed_and_without_bias(self):
        transposed = lambda p: torch.save({"W": self.weight.T.contiguous(), "b": self.bias}, p)
        model = self.folder({"family": "agriclip",
                             "aligner": "Weights/Agri_Dino_aligner_transposed.pth"},
                            self.released_files(**{
                                "Weights/Agri_Dino_aligner_DPT_CPT.pth": None,
                                "Weights/Agri_Dino_aligner_transposed.pth": transposed}))
        self.check_variant(model, self.ref, "W [2048, E]")

        no_bias = lambda p: torch.save({"W": self.weight, "b": None}, p)
        model = self.folder(None, self.released_files(**{
            "Weights/Agri_Dino_aligner_DPT_CPT.pth": no_bias}))
        self.check_variant(model, Reference(self.resnet, self.weight, None, self.twin), "b None")

    # ---- broken folders -----------------------------------------------------

    def test_missing_aligner(self):
        model = self.folder(None, self.released_files(
            **{"Weights/Agri_Dino_aligner_DPT_CPT.pth": None}))
        self.assert_fails(model, model, "no aligner", "Agri_Dino_aligner_")
        model = self.folder({"family": "agriclip"}, self.released_files(
            **{"Weights/Agri_Dino_aligner_DPT_CPT.pth": None}))
        self.assert_fails(model, "agriclip.json", "aligner")

    def test_several_aligners(self):
        model = self.folder(None, self.released_files(
            **{"Weights/Agri_Dino_aligner_DFT_CFT.pth": self.aligner_file}))
        self.assert_fails(model, "several aligners", "Agri_Dino_aligner_DFT_CFT.pth",
                          "agriclip.json")

    def test_aligner_does_not_fit_the_text_model(self):
        wide = lambda p: torch.save({"W": torch.randn(EMBED_DIM + 8, FEATURES),
                                     "b": torch.randn(EMBED_DIM + 8)}, p)
        model = self.folder(None, self.released_files(
            **{"Weights/Agri_Dino_aligner_DPT_CPT.pth": wide}))
        self.assert_fails(model, "Agri_Dino_aligner_DPT_CPT.pth", str(EMBED_DIM + 8),
                          str(EMBED_DIM), "do not belong together")

        no_features = lambda p: torch.save({"W": torch.randn(EMBED_DIM, 1024),
                                            "b": torch.randn(EMBED_DIM)}, p)
        model = self.folder(None, self.released_files(
            **{"Weights/Agri_Dino_aligner_DPT_CPT.pth": no_features}))
        self.assert_fails(model, "tensor 'W'", "2048")

        model = self.folder(None, self.released_files(
            **{"Weights/Agri_Dino_aligner_DPT_CPT.pth": self.resnet_file}))
        self.assert_fails(model, "no tensor 'W'")

        short_bias = lambda p: torch.save({"W": self.weight, "b": self.bias[:-1]}, p)
        model = self.folder(None, self.released_files(
            **{"Weights/Agri_Dino_aligner_DPT_CPT.pth": short_bias}))
        self.assert_fails(model, "'b'", f"[{EMBED_DIM}]")

    def test_broken_manifest(self):
        model = self.folder('{"family": "agriclip", "temperature": 100', self.released_files())
        self.assert_fails(model, "agriclip.json")
        model = self.folder("[1, 2]", self.released_files())
        self.assert_fails(model, "agriclip.json", "JSON object")
        model = self.folder({"family": "agriclip", "temprature": 10}, self.released_files())
        self.assert_fails(model, "agriclip.json", "temprature")
        model = self.folder({"family": "clip"}, self.released_files())
        self.assert_fails(model, "agriclip.json", "family", "clip")
        model = self.folder({"aligner": "Weights/Agri_Dino_aligner_DPT_CPT.pth"},
                            self.released_files())
        self.assert_fails(model, "agriclip.json", "family")
        model = self.folder({"family": "agriclip", "temperature": -1}, self.released_files())
        self.assert_fails(model, "agriclip.json", "temperature")
        model = self.folder({"family": "agriclip", "image_encoder": {"type": "vit_small"}},
                            self.released_files())
        self.assert_fails(model, "agriclip.json", "vit_small")

    def test_manifest_names_missing_files(self):
        for key, value in (("aligner", "Weights/Agri_Dino_aligner_nope.pth"),
                           ("text_model", "clip-vit-base-patch16"),
                           ("image_encoder", {"weights": "Weights/dino_nope.pth"})):
            model = self.folder({"family": "agriclip", key: value}, self.released_files())
            missing = value if isinstance(value, str) else value["weights"]
            self.assert_fails(model, "agriclip.json", missing, "does not exist")
        # the default image encoder file missing, without a manifest
        model = self.folder(None, self.released_files(**{"Weights/dino_pretrain.pth": None}))
        self.assert_fails(model, "Weights/dino_pretrain.pth", "does not exist")


if __name__ == "__main__":
    unittest.main()
