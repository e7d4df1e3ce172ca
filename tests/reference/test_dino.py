"""One whole DINO iteration (core/train/dino-step.h) against the same
iteration written in PyTorch after facebookresearch/dino's main_dino.py:
DINOHead (3 layers, GELU, L2-normalised bottleneck, weight-normalised last
layer with weight_g frozen at 1), MultiCropWrapper (one backbone call per
resolution), DINOLoss (centring, sharpening, every teacher/student pair of
different crops), utils.clip_gradients (per tensor),
cancel_gradients_last_layer, AdamW with the reference's parameter groups
(no decay on biases and 1-D tensors), the teacher's EMA; both networks in
train mode (the reference never puts the teacher in eval mode).

tests/tools/dino-step runs it in float32 on crops written here; PyTorch in
float64 from the same float32 values.  Loss, gradients (before the update),
centre and teacher must agree to 1e-4 relative (max |C - torch| / max
|torch| per tensor).  The student after AdamW is compared on the update of
each element whose gradient is not at float32's noise level: AdamW's first
step is lr * g / (|g| + eps), whose sign a gradient near 0 decides by
rounding.  The ResNet is test_resnet_train.py's well-conditioned one; small
crops (global 64 px, local 32 px, batch 2) and a small head keep it cheap.

The same iteration on a ViT backbone (core/train/dino-vit.c): a tiny CLIP
twin's image tower (clip_twin.TwinCLIP, Hugging Face's CLIPVisionModel with
q, k and v apart), features its projected class token, every crop at its
input size; once whole (embeddings trained too), once its last block alone
above a frozen one.
"""
import copy
import os
import subprocess
import tempfile
import unittest

import torch
import torch.nn.functional as F
from torch import nn

import clip_twin
from clip_twin import read_safetensors, write_safetensors
from test_resnet_train import conditioned_resnet50

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "dino-step") if BUILD_DIR else None
REL_TOL = 1e-4


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, hidden, bottleneck):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


class Net(nn.Module):
    """MultiCropWrapper: one backbone call per resolution, one head call."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops):
        return self.head(torch.cat([self.backbone(c) for c in crops]))


def dino_loss(student_output, teacher_output, center, n_crops, teacher_temp):
    student_out = (student_output / 0.1).chunk(n_crops)
    teacher_out = F.softmax((teacher_output - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, n_terms = 0, 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
            n_terms += 1
    batch_center = teacher_output.detach().sum(0, keepdim=True) / len(teacher_output)
    return total / n_terms, center * 0.9 + batch_center * 0.1


def clone_net(backbone, head):
    """A float64 copy (weight_norm's computed weight defeats deepcopy)."""
    new_head = DINOHead(head.mlp[0].in_features, head.last_layer.out_features,
                        head.mlp[0].out_features, head.mlp[4].out_features)
    new_head.load_state_dict(head.state_dict())
    return Net(copy.deepcopy(backbone), new_head).double().train()


def reference_step(backbone, head, center, global_crops, local_crops, batch, lr, wd,
                   teacher_temp, momentum, clip, freeze):
    student = clone_net(backbone, head)
    teacher = clone_net(backbone, head)
    for p in teacher.parameters():
        p.requires_grad = False
    g = global_crops.double()
    t_out = teacher([g])
    s_out = student([g, local_crops.double()])
    n_crops = 2 + len(local_crops) // batch
    loss, new_center = dino_loss(s_out, t_out, center.double(), n_crops, teacher_temp)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}
    for p in student.parameters():  # utils.clip_gradients
        if p.grad is not None:
            coef = clip / (p.grad.norm(2) + 1e-6)
            if coef < 1:
                p.grad.mul_(coef)
    if freeze:  # cancel_gradients_last_layer
        for n, p in student.named_parameters():
            if "last_layer" in n:
                p.grad = None
    regularized = [p for n, p in student.named_parameters()
                   if p.requires_grad and not n.endswith(".bias") and p.ndim > 1]
    others = [p for n, p in student.named_parameters()
              if p.requires_grad and (n.endswith(".bias") or p.ndim == 1)]
    opt = torch.optim.AdamW([{"params": regularized, "weight_decay": wd},
                             {"params": others, "weight_decay": 0.0}], lr=lr)
    opt.step()
    with torch.no_grad():
        for ps, pt in zip(student.parameters(), teacher.parameters()):
            pt.mul_(momentum).add_((1 - momentum) * ps.detach())
    return loss.item(), grads, student, teacher, new_center.squeeze(0)


def name_of(net_name):
    """Net parameter name -> the tool's names."""
    if net_name.startswith("backbone.p."):  # TwinVision: the Hugging Face name
        return net_name[len("backbone.p."):].replace(":", ".")
    if net_name.startswith("backbone."):
        return net_name[len("backbone."):]
    return "head." + net_name[len("head."):]


class TwinVision(nn.Module):
    """A CLIP twin's image tower with its last `blocks` blocks, post_layernorm
    and projection as parameters (the embeddings and pre_layrnorm too when
    blocks is every layer), the rest fixed; parameters named as the Hugging
    Face tensors with ':' for '.' (a parameter name cannot hold a dot)."""

    def __init__(self, model_dir, blocks):
        super().__init__()
        self.twin = clip_twin.load_twin(model_dir)
        first = self.twin.vision_cfg["num_hidden_layers"] - blocks

        def trained(name):
            if name.startswith("vision_model.encoder.layers."):
                return int(name.split(".")[3]) >= first
            if name.startswith(("vision_model.embeddings.", "vision_model.pre_layrnorm.")):
                return first == 0
            return name.startswith("vision_model.post_layernorm.") or \
                name == "visual_projection.weight"

        self.p = nn.ParameterDict({n.replace(".", ":"): nn.Parameter(v.clone())
                                   for n, v in self.twin.w.items() if trained(n)})

    def forward(self, pixels):
        self.twin.w.update({n.replace(":", "."): p for n, p in self.p.items()})
        return self.twin.encode_image(pixels)


def compare_step(test, tmp, backbone, head, tensors, center, global_crops, local_crops, batch,
                 freeze, extra_meta=None, extra_args=()):
    """Runs the tool (IN: tensors, the head, the crops; extra_args after
    OUT) and the reference on the same iteration; test's assertions."""
    lr, wd, temp, momentum, clip = 1e-3, 0.04, 0.04, 0.996, 3.0
    tensors = dict(tensors)
    for k, v in head.state_dict().items():
        tensors["head." + k] = v
    tensors.update({"global": global_crops, "local": local_crops, "center": center})
    meta = {"batch": batch, "lr": lr, "weight_decay": wd, "teacher_temp": temp,
            "momentum": momentum, "clip": clip, "freeze": int(freeze), **(extra_meta or {})}
    fin = os.path.join(tmp, "in.safetensors")
    fout = os.path.join(tmp, "out.safetensors")
    write_safetensors(fin, tensors, metadata={k: repr(v) for k, v in meta.items()})
    proc = subprocess.run([TOOL, fin, fout, *extra_args], capture_output=True, text=True)
    test.assertEqual(proc.returncode, 0, proc.stderr)
    out = read_safetensors(fout)
    loss, grads, student, teacher, new_center = reference_step(
        backbone, head, center, global_crops, local_crops, batch, lr, wd, temp, momentum, clip,
        freeze)

    test.assertLessEqual(abs(out["loss"].item() - loss), REL_TOL * abs(loss))
    test.assert_close(out["center"], new_center, "centre")
    # a gradient that is 0 but for rounding (a ViT's key bias: it adds the
    # same number to every score of a query) is compared on the largest one's scale
    floor = 1e-9 * max(g.abs().max().item() for g in grads.values())
    for n, g in grads.items():
        test.assert_close(out["grad." + name_of(n)], g, "gradient of " + n, floor=floor)
    before = dict(Net(backbone, head).named_parameters())
    for n, p in student.named_parameters():
        if n.endswith("weight_g"):
            continue
        ours = out["student." + name_of(n)].double().reshape(p.shape)
        delta_ours = ours - before[n].detach().double()
        delta_ref = p.detach() - before[n].detach().double()
        g = grads[n].abs()
        clear = g > 1e-3 * g.max()
        err = (delta_ours - delta_ref)[clear].abs().max().item() if clear.any() else 0.0
        test.assertLessEqual(err, REL_TOL * lr * 10, f"update of {n}: {err}")
    for n, p in teacher.named_parameters():
        if n.endswith("weight_g"):
            continue
        test.assert_close(out["teacher." + name_of(n)], p.detach(), "teacher " + n)
    if freeze:
        test.assert_close(out["student.head.last_layer.weight_v"],
                          head.last_layer.weight_v.detach().double(), "frozen last layer", tol=0)
    for k, v in teacher.state_dict().items():  # the teacher's own running statistics
        if k.endswith("running_mean") or k.endswith("running_var"):
            test.assert_close(out["teacher." + name_of(k)], v, "teacher " + k)
    return loss, out


class Close:
    def assert_close(self, ours, ref, what, tol=REL_TOL, floor=1e-30):
        ours = ours.double().reshape(ref.shape)
        scale = max(ref.abs().max().item(), floor)
        err = (ours - ref).abs().max().item()
        self.assertLessEqual(err, tol * scale, f"{what}: {err} of {scale}")


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class DinoStepTest(Close, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.backbone = conditioned_resnet50(seed=5)
        torch.manual_seed(6)
        cls.head = DINOHead(2048, 128, 64, 32)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_step(self, freeze, seed):
        batch = 2
        gen = torch.Generator().manual_seed(seed)
        global_crops = torch.randn(2 * batch, 3, 64, 64, generator=gen)
        local_crops = torch.randn(2 * batch, 3, 32, 32, generator=gen)
        center = 0.05 * torch.randn(128, generator=gen)
        tensors = {k: v for k, v in self.backbone.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        return compare_step(self, self.tmp.name, self.backbone, self.head, tensors, center,
                            global_crops, local_crops, batch, freeze)

    def test_step(self):
        # (freeze=True, the first epoch's steps, passes too: the test takes
        # a minute of CPU per step, so CI runs the general one)
        self.run_step(freeze=False, seed=1)


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class DinoVitStepTest(Close, unittest.TestCase):
    """The iteration on a tiny CLIP twin's ViT (width 64, 2 layers, 32 px,
    patch 8, E 32): GELU blocks, two local crops at the input size."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "clip")
        clip_twin.make_model(cls.model, seed=11, act="gelu", image_size=32, patch_size=8,
                             projection_dim=32)
        torch.manual_seed(12)
        cls.head = DINOHead(32, 64, 48, 16)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_vit(self, blocks, freeze, seed):
        batch = 2
        gen = torch.Generator().manual_seed(seed)
        global_crops = torch.randn(2 * batch, 3, 32, 32, generator=gen)
        local_crops = torch.randn(2 * batch, 3, 32, 32, generator=gen)
        center = 0.05 * torch.randn(64, generator=gen)
        backbone = TwinVision(self.model, blocks)
        _, out = compare_step(self, self.tmp.name, backbone, self.head, {}, center,
                              global_crops, local_crops, batch, freeze, {"blocks": blocks},
                              [self.model])
        trained = {"student." + name_of("backbone.p." + n) for n in backbone.p}
        held = {k for k in out if k.startswith("student.") and not k.startswith("student.head.")}
        self.assertEqual(held, trained)  # the adapter's tensors: exactly the trained ones

    def test_whole_tower(self):
        self.run_vit(blocks=2, freeze=False, seed=1)

    def test_last_block_above_a_frozen_one(self):
        self.run_vit(blocks=1, freeze=True, seed=2)


if __name__ == "__main__":
    unittest.main()
