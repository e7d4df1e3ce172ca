"""ResNet-50 in training mode (core/nn/resnet-train.h) against torchvision's
ResNet-50 in train mode under autograd.

tests/tools/resnet-train-check runs one training forward (BatchNorm on the
batch's statistics, running statistics moved) and the backward of a given
gradient of the features, in float32; the reference is the same network in
float64 from the same float32 weights.  Features, every parameter's
gradient and the moved running statistics must agree to 1e-4 relative
(max |C - torch| / max |torch| per tensor).  Small images (64 px, batch 2)
keep it cheap; every layer still runs (layer4 at 2 x 2).

The network is random but conditioned like a trained one: the last
BatchNorm of each residual branch scaled small (as zero_init_residual
does, less so) and BatchNorm biases mostly positive.  With torchvision's
plain random init, BatchNorm over the few rows of layer4 and ReLUs near
their kink make float32 itself wrong: PyTorch in float32 misses its own
float64 gradients by up to 50 %; here by about 1e-5.
"""
import copy
import os
import subprocess
import tempfile
import unittest

import torch
import torchvision

from clip_twin import read_safetensors, write_safetensors

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "resnet-train-check") if BUILD_DIR else None
REL_TOL = 1e-4


def conditioned_resnet50(seed):
    torch.manual_seed(seed)
    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                lo, hi = (0.05, 0.2) if name.endswith("bn3") else (0.5, 1.5)
                m.weight.uniform_(lo, hi, generator=gen)
                m.bias.copy_(0.3 + 0.3 * torch.randn(m.num_features, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return model


def train_step_reference(model, pixels, dfeatures):
    """features, {name: grad}, state after: float64 train-mode torchvision."""
    m = copy.deepcopy(model).double().train()
    x = pixels.double()
    features = m(x)
    features.backward(dfeatures.double())
    grads = {n: p.grad for n, p in m.named_parameters()}
    return features.detach(), grads, m.state_dict()


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class ResNetTrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = conditioned_resnet50(seed=3)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_tool(self, pixels, dfeatures):
        tensors = {k: v for k, v in self.model.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        tensors["pixels"] = pixels
        tensors["dfeatures"] = dfeatures
        fin = os.path.join(self.tmp.name, "in.safetensors")
        fout = os.path.join(self.tmp.name, "out.safetensors")
        write_safetensors(fin, tensors)
        proc = subprocess.run([TOOL, fin, fout], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return read_safetensors(fout)

    def assert_close(self, ours, ref, what):
        self.assertEqual(tuple(ours.shape), tuple(ref.shape), what)
        scale = ref.abs().max().item()
        err = (ours.double() - ref).abs().max().item()
        self.assertLessEqual(err, REL_TOL * max(scale, 1e-30), f"{what}: {err} of {scale}")

    def check(self, batch, size, seed):
        gen = torch.Generator().manual_seed(seed)
        pixels = torch.randn(batch, 3, size, size, generator=gen)
        dfeatures = torch.randn(batch, 2048, generator=gen)
        out = self.run_tool(pixels, dfeatures)
        features, grads, state = train_step_reference(self.model, pixels, dfeatures)
        self.assert_close(out["features"], features, "features")
        self.assertEqual(len(grads), 159)  # 53 convs, 53 BatchNorms
        for name, g in grads.items():
            self.assert_close(out["grad." + name], g, "gradient of " + name)
        for name, v in state.items():
            if name.endswith("running_mean") or name.endswith("running_var"):
                self.assert_close(out[name], v, name)

    def test_train_step(self):
        self.check(batch=2, size=64, seed=1)

    def test_odd_size(self):
        # odd sizes: padding on one side only, windows cut by the border
        self.check(batch=3, size=37, seed=2)

    def test_reference_is_sensitive(self):
        # eval-mode BatchNorm gives other features: the comparison sees the mode
        gen = torch.Generator().manual_seed(5)
        pixels = torch.randn(2, 3, 64, 64, generator=gen)
        train, _, _ = train_step_reference(self.model, pixels, torch.zeros(2, 2048))
        with torch.no_grad():
            evaluated = copy.deepcopy(self.model).double().eval()(pixels.double())
        self.assertGreater((train - evaluated).abs().max().item(), 1e-2)


if __name__ == "__main__":
    unittest.main()
