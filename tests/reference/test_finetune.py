"""Fine-tuning steps (core/train/finetune.h) against PyTorch.

tests/tools/finetune-step takes three steps on one batch: the last K = 2
blocks, ln_post and the projection, contrastive loss against fixed class
embeddings, global-norm clipping, AdamW with warm-up then cosine decay.  The
reference repeats them with autograd (float64 from the same float32
weights), torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW, the learning
rate set per step from the schedule's formula.
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_twin  # noqa: E402
from test_backward import BLOCK_NAMES, block  # noqa: E402  (the torch block)

BUILD_DIR = os.environ.get("AGC_BUILD_DIR", "build")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "finetune-step")


def schedule(lr, warmup, total, step):
    """Linear warm-up to lr over `warmup` steps, then a half cosine to 0 at `total`."""
    if step <= warmup:
        return lr * step / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))


class FinetuneTest(unittest.TestCase):
    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/finetune-step not built")
    def test_steps_match_pytorch(self):
        g = torch.Generator().manual_seed(11)
        batch, t, d, heads, m, e, c, k_blocks = 6, 10, 64, 4, 256, 32, 4, 2
        hp = dict(lr=1e-3, weight_decay=0.1, warmup=2, total_steps=5, clip_norm=1.0,
                  logit_scale=100.0, steps=3, alpha=0.5, eps=1e-5)

        def randn(*shape, scale=1.0, offset=0.0):
            return (offset + scale * torch.randn(*shape, generator=g)).float()

        weights = {}
        for k in range(k_blocks):
            for name in BLOCK_NAMES:
                rows = {"qkv": 3 * d, "fc1": m}.get(name.split("_")[0], d)
                cols = m if name == "fc2_weight" else d
                if name.endswith("_weight") and not name.startswith("ln"):
                    value = randn(rows, cols, scale=cols ** -0.5)
                elif name.startswith("ln") and name.endswith("weight"):
                    value = randn(d, scale=0.3, offset=1.0)
                else:
                    value = randn(rows, scale=0.2)
                weights["blocks.%d.%s" % (k, name)] = value
        weights["post_ln_weight"] = randn(d, scale=0.3, offset=1.0)
        weights["post_ln_bias"] = randn(d, scale=0.2)
        weights["projection"] = randn(e, d, scale=d ** -0.5)
        hidden = randn(batch * t, d)
        text = F.normalize(randn(c, e), dim=-1)
        labels = torch.tensor([0, 1, 2, 3, 1, 0])
        class_weights = randn(c, scale=0.3, offset=1.0)

        tmp = tempfile.mkdtemp(prefix="agc-finetune-")
        self.addCleanup(shutil.rmtree, tmp, True)
        fin, fout = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
        meta = {k: repr(v) for k, v in hp.items()}
        meta.update(batch=str(batch), heads=str(heads), act="quick_gelu", n_blocks=str(k_blocks))
        clip_twin.write_safetensors(fin, dict(weights, hidden=hidden, text=text, labels=labels,
                                              class_weights=class_weights), metadata=meta)
        proc = subprocess.run([TOOL, fin, fout], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = clip_twin.read_safetensors(fout)

        params = {k: v.double().clone().requires_grad_() for k, v in weights.items()}
        decay = [p for k, p in params.items() if k.endswith("_weight") and "ln" not in k
                 or k == "projection"]
        no_decay = [p for p in params.values() if not any(p is q for q in decay)]
        self.assertEqual(len(decay), 4 * k_blocks + 1)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=hp["lr"], betas=(0.9, 0.999), eps=1e-8)
        for step in range(1, hp["steps"] + 1):
            opt.zero_grad()
            x = hidden.double()
            for k in range(k_blocks):
                w = {n: params["blocks.%d.%s" % (k, n)] for n in BLOCK_NAMES}
                x = block(x, w, batch, heads, "quick_gelu", False, hp["eps"])
            pooled = x.view(batch, t, d)[:, 0]
            pooled = F.layer_norm(pooled, (d,), params["post_ln_weight"], params["post_ln_bias"],
                                  hp["eps"])
            emb = F.normalize(pooled @ params["projection"].T, dim=-1)
            loss = F.cross_entropy(hp["logit_scale"] * emb @ text.double().T, labels,
                                   weight=class_weights.double())
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(list(params.values()), hp["clip_norm"])
            self.assertAlmostEqual(float(got["loss"][step - 1]), float(loss), delta=1e-5)
            self.assertLessEqual(abs(float(got["grad_norm"][step - 1]) / float(norm) - 1), 1e-4)
            for group in opt.param_groups:
                group["lr"] = schedule(hp["lr"], hp["warmup"], hp["total_steps"], step)
            opt.step()
        self.assertGreater(float(norm), hp["clip_norm"])  # clipping was exercised

        moved = 0.0
        for name, p in params.items():
            want = p.detach()
            have = got[name].double().reshape(want.shape)
            err = float((have - want).abs().max())
            self.assertLessEqual(err, 1e-4, "%s: max |C - torch| %.3g" % (name, err))
            moved = max(moved, float((want - weights[name].double()).abs().max()))
            wise = (1 - hp["alpha"]) * weights[name].double() + hp["alpha"] * have
            torch.testing.assert_close(got["wise." + name].double().reshape(want.shape), wise,
                                       atol=1e-6, rtol=0)
        self.assertGreater(moved, 1e-3)  # the steps changed the weights


if __name__ == "__main__":
    unittest.main()
