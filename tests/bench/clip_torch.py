"""clip_torch.py — a plain float32 PyTorch CLIP for the benchmark.

The same Hugging Face folder the project reads, run the way PyTorch code
usually runs CLIP: fused qkv projection (as nn.MultiheadAttention's
in_proj), batched attention over all heads with torch.matmul, the text
tower over all 77 positions with a causal mask.  Written for both PyTorch
1.13 (Debian 12) and 2.6 (Debian 13, which exports it to ONNX).  The float64
twin in tests/reference/clip_twin.py stays the correctness reference; this
module is about speed.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import clip_twin  # noqa: E402


class Tower(torch.nn.Module):
    """Pre-norm transformer blocks of one tower, weights as buffers."""

    def __init__(self, w, prefix, cfg):
        super().__init__()
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.quick = cfg["hidden_act"] == "quick_gelu"
        self.n_layers = cfg["num_hidden_layers"]
        self.width = cfg["hidden_size"]  # a constant, not x.shape[-1]: ONNX export wants it so
        for i in range(self.n_layers):
            p = f"{prefix}.encoder.layers.{i}."
            a = p + "self_attn."
            tensors = {
                "ln1_w": w[p + "layer_norm1.weight"], "ln1_b": w[p + "layer_norm1.bias"],
                "qkv_w": torch.cat([w[a + n + "_proj.weight"] for n in "qkv"]),
                "qkv_b": torch.cat([w[a + n + "_proj.bias"] for n in "qkv"]),
                "out_w": w[a + "out_proj.weight"], "out_b": w[a + "out_proj.bias"],
                "ln2_w": w[p + "layer_norm2.weight"], "ln2_b": w[p + "layer_norm2.bias"],
                "fc1_w": w[p + "mlp.fc1.weight"], "fc1_b": w[p + "mlp.fc1.bias"],
                "fc2_w": w[p + "mlp.fc2.weight"], "fc2_b": w[p + "mlp.fc2.bias"],
            }
            for name, t in tensors.items():
                self.register_buffer(f"l{i}_{name}", t.float().contiguous())

    def _t(self, i, name):
        return getattr(self, f"l{i}_{name}")

    def forward(self, x, mask=None):
        b, t = x.shape[0], x.shape[1]
        d = self.width
        hd = d // self.heads
        for i in range(self.n_layers):
            h = F.layer_norm(x, (d,), self._t(i, "ln1_w"), self._t(i, "ln1_b"), self.eps)
            qkv = F.linear(h, self._t(i, "qkv_w"), self._t(i, "qkv_b"))
            qkv = qkv.reshape(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]                       # [B, H, T, hd]
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            if mask is not None:
                scores = scores + mask
            o = torch.matmul(scores.softmax(dim=-1), v)            # [B, H, T, hd]
            o = o.transpose(1, 2).reshape(b, t, d)
            x = x + F.linear(o, self._t(i, "out_w"), self._t(i, "out_b"))
            h = F.layer_norm(x, (d,), self._t(i, "ln2_w"), self._t(i, "ln2_b"), self.eps)
            h = F.linear(h, self._t(i, "fc1_w"), self._t(i, "fc1_b"))
            h = h * torch.sigmoid(1.702 * h) if self.quick else F.gelu(h)
            x = x + F.linear(h, self._t(i, "fc2_w"), self._t(i, "fc2_b"))
        return x


class VisionEncoder(torch.nn.Module):
    """pixels[B, 3, S, S] -> raw image embeddings [B, E]."""

    def __init__(self, w, cfg):
        super().__init__()
        self.patch = cfg["patch_size"]
        self.eps = cfg["layer_norm_eps"]
        self.width = cfg["hidden_size"]
        f = {k: v.float() for k, v in w.items() if v.is_floating_point()}
        self.register_buffer("conv_w", f["vision_model.embeddings.patch_embedding.weight"])
        self.register_buffer("cls", f["vision_model.embeddings.class_embedding"])
        self.register_buffer("pos", f["vision_model.embeddings.position_embedding.weight"])
        self.register_buffer("pre_w", f["vision_model.pre_layrnorm.weight"])
        self.register_buffer("pre_b", f["vision_model.pre_layrnorm.bias"])
        self.register_buffer("post_w", f["vision_model.post_layernorm.weight"])
        self.register_buffer("post_b", f["vision_model.post_layernorm.bias"])
        self.register_buffer("proj", f["visual_projection.weight"])
        self.tower = Tower(f, "vision_model", cfg)

    def forward(self, pixels):
        x = F.conv2d(pixels, self.conv_w, stride=self.patch)      # [B, D, g, g]
        x = x.flatten(2).transpose(1, 2)                          # [B, g*g, D]
        cls = self.cls.reshape(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos
        d = self.width
        x = F.layer_norm(x, (d,), self.pre_w, self.pre_b, self.eps)
        x = self.tower(x)
        pooled = F.layer_norm(x[:, 0], (d,), self.post_w, self.post_b, self.eps)
        return F.linear(pooled, self.proj)


class TextEncoder(torch.nn.Module):
    """ids[B, 77] -> raw text embeddings [B, E], all 77 positions computed."""

    def __init__(self, w, cfg):
        super().__init__()
        self.eps = cfg["layer_norm_eps"]
        self.width = cfg["hidden_size"]
        f = {k: v.float() for k, v in w.items() if v.is_floating_point()}
        self.register_buffer("tok", f["text_model.embeddings.token_embedding.weight"])
        self.register_buffer("pos", f["text_model.embeddings.position_embedding.weight"])
        self.register_buffer("final_w", f["text_model.final_layer_norm.weight"])
        self.register_buffer("final_b", f["text_model.final_layer_norm.bias"])
        self.register_buffer("proj", f["text_projection.weight"])
        t = self.pos.shape[0]
        self.register_buffer("mask", torch.full((t, t), float("-inf")).triu(1))
        self.tower = Tower(f, "text_model", cfg)

    def forward(self, ids):
        x = F.embedding(ids, self.tok) + self.pos
        x = self.tower(x, self.mask)
        d = self.width
        x = F.layer_norm(x, (d,), self.final_w, self.final_b, self.eps)
        pooled = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return F.linear(pooled, self.proj)


def load(model_dir):
    """(VisionEncoder, TextEncoder, config) of a Hugging Face CLIP folder."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    w = clip_twin.read_model_weights(model_dir)
    vision_cfg = clip_twin._tower_config(config, "vision_config", clip_twin.VISION_DEFAULTS)
    text_cfg = clip_twin._tower_config(config, "text_config", clip_twin.TEXT_DEFAULTS)
    return VisionEncoder(w, vision_cfg).eval(), TextEncoder(w, text_cfg).eval(), config
