"""The training forwards and backward passes (core/nn/backward.h,
core/nn/block-train.h) against PyTorch autograd, on random inputs.

tests/tools/backward-check runs one op in float32 on inputs written here; the
reference is the same op written with torch.nn.functional, differentiated by
autograd in float64 from the same float32 inputs.  Every output and gradient
must agree to a relative error of 1e-4: max |C - torch| / max |torch|.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_twin  # noqa: E402  (its safetensors reader and writer)

BUILD_DIR = os.environ.get("AGC_BUILD_DIR", "build")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "backward-check")
REL_TOL = 1e-4

BLOCK_NAMES = ["ln1_weight", "ln1_bias", "qkv_weight", "qkv_bias", "out_weight", "out_bias",
               "ln2_weight", "ln2_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def activation(name):
    return F.gelu if name == "gelu" else quick_gelu


def attention(qkv, batch, heads, causal):
    """qkv [B*T, 3D] -> out [B*T, D], as nn.MultiheadAttention computes it."""
    rows, d3 = qkv.shape
    d, t = d3 // 3, rows // batch
    hd = d // heads
    q, k, v = qkv.view(batch, t, 3, heads, hd).permute(2, 0, 3, 1, 4)  # [B, H, T, hd] each
    scores = q @ k.transpose(-1, -2) / hd ** 0.5
    if causal:
        future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    return (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(rows, d)


def block(x, w, batch, heads, act, causal, eps):
    d = x.shape[1]
    h = F.layer_norm(x, (d,), w["ln1_weight"], w["ln1_bias"], eps)
    qkv = F.linear(h, w["qkv_weight"], w["qkv_bias"])
    x = x + F.linear(attention(qkv, batch, heads, causal), w["out_weight"], w["out_bias"])
    h = F.layer_norm(x, (d,), w["ln2_weight"], w["ln2_bias"], eps)
    h = activation(act)(F.linear(h, w["fc1_weight"], w["fc1_bias"]))
    return x + F.linear(h, w["fc2_weight"], w["fc2_bias"])


class BackwardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-backward-")
        cls.gen = torch.Generator().manual_seed(7)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def randn(self, *shape, scale=1.0, offset=0.0):
        return (offset + scale * torch.randn(*shape, generator=self.gen)).float()

    def run_tool(self, op, tensors, **meta):
        fin = os.path.join(self.tmp, op + ".in.safetensors")
        fout = os.path.join(self.tmp, op + ".out.safetensors")
        meta = {k: str(v) for k, v in meta.items()}
        meta["op"] = op
        clip_twin.write_safetensors(fin, tensors, metadata=meta)
        proc = subprocess.run([TOOL, fin, fout], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return clip_twin.read_safetensors(fout)

    def assertClose(self, name, got, want):
        want = want.detach().double()
        got = got.double().reshape(want.shape)
        scale = float(want.abs().max())
        self.assertGreater(scale, 1e-6, name + ": the reference is all zero, nothing is checked")
        err = float((got - want).abs().max()) / scale
        self.assertLessEqual(err, REL_TOL, "%s: relative error %.3g" % (name, err))

    def autograd(self, inputs, forward, dout):
        """Float64 leaves from the float32 inputs, forward, backward with dout."""
        leaves = {k: v.double().requires_grad_() for k, v in inputs.items()}
        out = forward(leaves)
        out.backward(dout.double())
        return out, {k: v.grad for k, v in leaves.items()}

    def check(self, op, inputs, forward, out_shape, **meta):
        dout = self.randn(*out_shape)
        got = self.run_tool(op, dict(inputs, dout=dout), **meta)
        out, grads = self.autograd(inputs, forward, dout)
        self.assertClose(op + " out", got["out"], out)
        for name, grad in grads.items():
            self.assertClose(op + " d" + name, got["d" + name], grad)

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_layernorm(self):
        n, c = 13, 96
        inputs = {"x": self.randn(n, c, scale=3.0, offset=1.0),
                  "weight": self.randn(c, scale=0.5, offset=1.0), "bias": self.randn(c, scale=0.5)}
        self.check("layernorm", inputs,
                   lambda t: F.layer_norm(t["x"], (c,), t["weight"], t["bias"], 1e-5),
                   (n, c), eps=1e-5)

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_linear(self):
        n, i, o = 17, 48, 40
        inputs = {"x": self.randn(n, i), "weight": self.randn(o, i, scale=i ** -0.5),
                  "bias": self.randn(o, scale=0.2)}
        self.check("linear", inputs, lambda t: F.linear(t["x"], t["weight"], t["bias"]), (n, o))

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_activations(self):
        for act in ("gelu", "quick_gelu"):
            with self.subTest(act=act):
                inputs = {"x": self.randn(500, scale=3.0)}
                self.check("act", inputs, lambda t: activation(act)(t["x"]), (500,), act=act)

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_attention(self):
        batch, t, d, heads = 3, 11, 48, 4
        for causal in (0, 1):
            with self.subTest(causal=causal):
                inputs = {"qkv": self.randn(batch * t, 3 * d, scale=1.5)}
                self.check("attention", inputs,
                           lambda v: attention(v["qkv"], batch, heads, causal), (batch * t, d),
                           batch=batch, heads=heads, causal=causal)

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_l2norm(self):
        inputs = {"x": self.randn(9, 64, offset=0.1)}
        self.check("l2norm", inputs, lambda t: F.normalize(t["x"], dim=-1), (9, 64))

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_contrastive(self):
        n, e, c = 10, 32, 5
        inputs = {"image": F.normalize(self.randn(n, e), dim=-1),
                  "text": F.normalize(self.randn(c, e), dim=-1)}
        labels = torch.randint(0, c, (n,), generator=self.gen)
        cw = self.randn(c, scale=0.5, offset=1.0)
        scale = 100.0
        got = self.run_tool("contrastive", dict(inputs, labels=labels, class_weights=cw),
                            logit_scale=scale)

        def forward(t):
            return F.cross_entropy(scale * t["image"] @ t["text"].T, labels, weight=cw.double())
        loss, grads = self.autograd(inputs, forward, torch.tensor(1.0))
        self.assertClose("contrastive loss", got["loss"], loss)
        self.assertClose("contrastive dimage", got["dimage"], grads["image"])
        self.assertClose("contrastive dtext", got["dtext"], grads["text"])

    @unittest.skipUnless(os.path.exists(TOOL), "tests/tools/backward-check not built")
    def test_block(self):
        batch, t, d, heads, m = 2, 9, 64, 4, 256
        for act, causal in (("quick_gelu", 0), ("gelu", 1)):
            with self.subTest(act=act, causal=causal):
                w = {}
                for name in BLOCK_NAMES:
                    rows = {"qkv": 3 * d, "fc1": m}.get(name.split("_")[0], d)
                    cols = m if name == "fc2_weight" else d
                    if name.endswith("_weight") and not name.startswith("ln"):
                        w[name] = self.randn(rows, cols, scale=cols ** -0.5)
                    elif name.startswith("ln") and name.endswith("weight"):
                        w[name] = self.randn(d, scale=0.3, offset=1.0)
                    else:
                        w[name] = self.randn(rows, scale=0.2)
                inputs = dict(w, x=self.randn(batch * t, d))
                self.check("block", inputs,
                           lambda v: block(v["x"], v, batch, heads, act, causal, 1e-5),
                           (batch * t, d), batch=batch, heads=heads, act=act, causal=causal,
                           eps=1e-5)


if __name__ == "__main__":
    unittest.main()
