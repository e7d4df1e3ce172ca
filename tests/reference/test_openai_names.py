"""test_openai_names.py — OpenAI and open_clip checkpoints read as Hugging Face
CLIP models (core/models/model-files.h, weight-names.h, clip-config-infer.h).

Tiny random HF CLIP folders from clip_twin are rewritten with the same
weights in the layouts users hold:
- an OpenAI-named state dict saved with torch.save (.pt, also wrapped in
  {"state_dict": {"module." …}} as .pth), with the buffers OpenAI archives
  carry;
- open_clip folders: open_clip_model.safetensors or open_clip_pytorch_model.bin
  with open_clip_config.json, QuickGELU and exact GELU, and open_clip's
  CustomTextCLIP layout ("text." prefix);
- a TorchScript archive traced from an OpenAI-layout nn.Module (float16, as
  OpenAI's .pt files), whose forward is first checked against the HF twin, so
  that the renaming written here is known to be right.
tests/tools/model-files-dump must return, for each, exactly the HF tensors and
the config of the original folder.  `agriclip embed` must give identical
embeddings for all forms once core/models/model.c loads through agc_model_files_open
(skipped with a reason until then).  Malformed files must be refused with a
message that names the file and the problem.
"""
import collections
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_twin  # noqa: E402

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "model-files-dump") if BUILD_DIR else None
AGRICLIP = os.environ.get("AGRICLIP")
VOCAB_DIR = clip_twin.default_vocab_dir()

# the HF models the other forms are made from (make_model keyword arguments)
MODELS = {
    # OpenAI conventions: widths multiple of 64, heads = width / 64
    "openai": dict(seed=11, act="quick_gelu", vision_width=128, vision_heads=2, text_width=64,
                   text_heads=1, image_size=32, patch_size=8, projection_dim=32),
    "openai_f16": dict(seed=12, dtype="F16", act="quick_gelu", vision_width=128, vision_heads=2,
                       text_width=64, text_heads=1, image_size=40, patch_size=8,
                       projection_dim=24, text_layers=3),
    # open_clip: heads and the activation come from open_clip_config.json
    "quick": dict(seed=13, act="quick_gelu", vision_width=96, vision_heads=3, text_width=48,
                  text_heads=2, vision_layers=3, image_size=32, patch_size=16,
                  projection_dim=16),
    "gelu": dict(seed=14, act="gelu", vision_width=64, vision_heads=4, text_width=64,
                 text_heads=2, image_size=24, patch_size=8, projection_dim=32,
                 logit_scale=math.log(50)),
}

TEXTS = ["a photo of a fox", "hello world", "", "wheat leaf rust, 3 spots"]


# ---- HF names -> OpenAI names (REFERENCE.md §2) ---------------------------------

def hf_to_openai(hf, config, text_prefix=""):
    """The OpenAI / open_clip state dict holding the weights of an HF dict."""
    out = collections.OrderedDict()

    def blocks(hf_tower, oa_prefix, n_layers):
        for i in range(n_layers):
            h, o = f"{hf_tower}.encoder.layers.{i}.", f"{oa_prefix}{i}."
            for part in ("weight", "bias"):
                out[o + "ln_1." + part] = hf[h + "layer_norm1." + part]
                out[o + "attn.in_proj_" + part] = torch.cat(
                    [hf[h + f"self_attn.{x}_proj." + part] for x in "qkv"])
                out[o + "attn.out_proj." + part] = hf[h + "self_attn.out_proj." + part]
                out[o + "ln_2." + part] = hf[h + "layer_norm2." + part]
                out[o + "mlp.c_fc." + part] = hf[h + "mlp.fc1." + part]
                out[o + "mlp.c_proj." + part] = hf[h + "mlp.fc2." + part]

    v = "vision_model."
    out["visual.class_embedding"] = hf[v + "embeddings.class_embedding"]
    out["visual.positional_embedding"] = hf[v + "embeddings.position_embedding.weight"]
    out["visual.proj"] = hf["visual_projection.weight"].t().contiguous()
    out["visual.conv1.weight"] = hf[v + "embeddings.patch_embedding.weight"]
    for part in ("weight", "bias"):
        out["visual.ln_pre." + part] = hf[v + "pre_layrnorm." + part]
        out["visual.ln_post." + part] = hf[v + "post_layernorm." + part]
    blocks("vision_model", "visual.transformer.resblocks.",
           config["vision_config"]["num_hidden_layers"])
    t = text_prefix
    out[t + "positional_embedding"] = hf["text_model.embeddings.position_embedding.weight"]
    out[t + "text_projection"] = hf["text_projection.weight"].t().contiguous()
    out[t + "token_embedding.weight"] = hf["text_model.embeddings.token_embedding.weight"]
    blocks("text_model", t + "transformer.resblocks.", config["text_config"]["num_hidden_layers"])
    for part in ("weight", "bias"):
        out[t + "ln_final." + part] = hf["text_model.final_layer_norm." + part]
    out["logit_scale"] = hf["logit_scale"]
    return out


def open_clip_config(config, quick_gelu, preprocess=None):
    """open_clip_config.json for an HF config (as open_clip's push_to_hf_hub writes it)."""
    text, vision = config["text_config"], config["vision_config"]
    model_cfg = {
        "embed_dim": config["projection_dim"],
        "vision_cfg": {"image_size": vision["image_size"], "layers": vision["num_hidden_layers"],
                       "width": vision["hidden_size"], "patch_size": vision["patch_size"],
                       "head_width": vision["hidden_size"] // vision["num_attention_heads"],
                       "mlp_ratio": vision["intermediate_size"] / vision["hidden_size"]},
        "text_cfg": {"context_length": text["max_position_embeddings"],
                     "vocab_size": text["vocab_size"], "width": text["hidden_size"],
                     "heads": text["num_attention_heads"], "layers": text["num_hidden_layers"]},
    }
    if quick_gelu:
        model_cfg["quick_gelu"] = True
    return {"model_cfg": model_cfg,
            "preprocess_cfg": preprocess or {"mean": list(clip_twin.CLIP_MEAN),
                                             "std": list(clip_twin.CLIP_STD)}}


def expected_config(config):
    """The AgcClipConfig fields model-files-dump prints, from an HF config.json."""
    out = {"projection_dim": config["projection_dim"]}
    for tower, key in (("text", "text_config"), ("vision", "vision_config")):
        c = config[key]
        out.update({f"{tower}.width": c["hidden_size"], f"{tower}.layers": c["num_hidden_layers"],
                    f"{tower}.heads": c["num_attention_heads"],
                    f"{tower}.mlp_width": c["intermediate_size"], f"{tower}.act": c["hidden_act"],
                    f"{tower}.layer_norm_eps": np.float32(c["layer_norm_eps"])})
    t, v = config["text_config"], config["vision_config"]
    out.update({"text.vocab_size": t["vocab_size"],
                "text.context_length": t["max_position_embeddings"],
                "vision.image_size": v["image_size"], "vision.patch_size": v["patch_size"]})
    return out


# ---- an OpenAI-layout CLIP in PyTorch modules ---------------------------------------

class QuickGELU(torch.nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualBlock(torch.nn.Module):
    def __init__(self, width, heads, act, mask=None):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(width)
        self.attn = torch.nn.MultiheadAttention(width, heads)
        self.ln_2 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential(collections.OrderedDict([
            ("c_fc", torch.nn.Linear(width, 4 * width)), ("gelu", act()),
            ("c_proj", torch.nn.Linear(4 * width, width))]))
        if mask is not None:  # as OpenAI's text blocks, which keep the causal mask
            self.register_buffer("attn_mask", mask)
        else:
            self.attn_mask = None

    def forward(self, x):  # [T, B, D]
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=self.attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(torch.nn.Module):
    def __init__(self, width, layers, heads, act, mask=None):
        super().__init__()
        self.resblocks = torch.nn.Sequential(
            *[ResidualBlock(width, heads, act, mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(torch.nn.Module):
    def __init__(self, c, embed_dim, act):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        grid = c["image_size"] // p
        self.conv1 = torch.nn.Conv2d(3, d, p, stride=p, bias=False)
        self.class_embedding = torch.nn.Parameter(torch.zeros(d))
        self.positional_embedding = torch.nn.Parameter(torch.zeros(grid * grid + 1, d))
        self.ln_pre = torch.nn.LayerNorm(d)
        self.transformer = Transformer(d, c["num_hidden_layers"], c["num_attention_heads"], act)
        self.ln_post = torch.nn.LayerNorm(d)
        self.proj = torch.nn.Parameter(torch.zeros(d, embed_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)  # [B, grid^2, D]
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class OpenAICLIP(torch.nn.Module):
    """The module tree of OpenAI's CLIP ViT (so its names are OpenAI's)."""

    def __init__(self, config):
        super().__init__()
        act = QuickGELU if config["text_config"]["hidden_act"] == "quick_gelu" else torch.nn.GELU
        t, e = config["text_config"], config["projection_dim"]
        ctx, w = t["max_position_embeddings"], t["hidden_size"]
        self.visual = VisionTransformer(config["vision_config"], e, act)
        mask = torch.full((ctx, ctx), float("-inf")).triu(1)
        self.transformer = Transformer(w, t["num_hidden_layers"], t["num_attention_heads"], act,
                                       mask)
        self.token_embedding = torch.nn.Embedding(t["vocab_size"], w)
        self.positional_embedding = torch.nn.Parameter(torch.zeros(ctx, w))
        self.ln_final = torch.nn.LayerNorm(w)
        self.text_projection = torch.nn.Parameter(torch.zeros(w, e))
        self.logit_scale = torch.nn.Parameter(torch.zeros([]))
        # sizes OpenAI's TorchScript archives keep as tensors
        self.register_buffer("input_resolution",
                             torch.tensor(config["vision_config"]["image_size"]))
        self.register_buffer("context_length", torch.tensor(ctx))
        self.register_buffer("vocab_size", torch.tensor(t["vocab_size"]))

    def encode_text(self, ids):
        x = self.token_embedding(ids) + self.positional_embedding
        x = self.ln_final(self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.text_projection

    def forward(self, pixels, ids):
        return self.visual(pixels), self.encode_text(ids)


def openai_buffers(config):
    """The non-weight tensors an OpenAI archive carries (to be ignored)."""
    t = config["text_config"]
    ctx = t["max_position_embeddings"]
    out = {f"transformer.resblocks.{i}.attn_mask": torch.full((ctx, ctx), float("-inf")).triu(1)
           for i in range(t["num_hidden_layers"])}
    out.update(input_resolution=torch.tensor(config["vision_config"]["image_size"]),
               context_length=torch.tensor(ctx), vocab_size=torch.tensor(t["vocab_size"]))
    return out


# ---- the forms, written once for all tests ----------------------------------------

TMP = None
HF = {}     # model name -> (folder, config dict, HF tensors without position_ids)
FORMS = {}  # form name -> (path given to the engine, model name)


def copy_vocab(folder, layout="hf"):
    names = ["vocab.json", "merges.txt"] if layout == "hf" else ["bpe_simple_vocab_16e6.txt.gz"]
    for name in names:
        shutil.copy(os.path.join(VOCAB_DIR, name), os.path.join(folder, name))


def new_folder(name):
    folder = os.path.join(TMP, name)
    os.makedirs(folder)
    return folder


def write_forms():
    for name, kwargs in MODELS.items():
        folder = os.path.join(TMP, "hf-" + name)
        config = clip_twin.make_model(folder, **kwargs)
        weights = {k: v for k, v in clip_twin.read_model_weights(folder).items()
                   if not k.endswith("position_ids")}
        HF[name] = (folder, config, weights)
        FORMS["hf-" + name] = (folder, name)

    # OpenAI state dicts saved with torch.save, with OpenAI's extra buffers
    folder, config, hf = HF["openai"]
    sd = hf_to_openai(hf, config)
    sd.update(openai_buffers(config))
    pt_folder = new_folder("openai-pt")
    torch.save(sd, os.path.join(pt_folder, "ViT-tiny.pt"))
    copy_vocab(pt_folder)
    FORMS["openai-pt-folder"] = (pt_folder, "openai")
    FORMS["openai-pt-file"] = (os.path.join(pt_folder, "ViT-tiny.pt"), "openai")
    wrapped_folder = new_folder("openai-wrapped")
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}},
               os.path.join(wrapped_folder, "epoch_3.pth"))
    copy_vocab(wrapped_folder, "openai")
    FORMS["openai-wrapped-pth"] = (wrapped_folder, "openai")

    # open_clip folders
    for name, quick_gelu, weights_name in (("quick", True, "open_clip_model.safetensors"),
                                           ("gelu", False, "open_clip_model.safetensors"),
                                           ("gelu", False, "open_clip_pytorch_model.bin")):
        folder, config, hf = HF[name]
        sd = hf_to_openai(hf, config)
        form = f"open_clip-{name}-{weights_name.split('.')[-1]}"
        oc_folder = new_folder(form)
        if weights_name.endswith(".bin"):
            torch.save(sd, os.path.join(oc_folder, weights_name))
        else:
            clip_twin.write_safetensors(os.path.join(oc_folder, weights_name), sd)
        with open(os.path.join(oc_folder, "open_clip_config.json"), "w") as f:
            json.dump(open_clip_config(config, quick_gelu), f, indent=2)
        copy_vocab(oc_folder)
        FORMS[form] = (oc_folder, name)
    # CustomTextCLIP: the text tower under "text."
    folder, config, hf = HF["quick"]
    oc_folder = new_folder("open_clip-custom-text")
    clip_twin.write_safetensors(os.path.join(oc_folder, "open_clip_model.safetensors"),
                                hf_to_openai(hf, config, text_prefix="text."))
    oc = open_clip_config(config, True)
    oc["model_cfg"]["custom_text"] = True
    with open(os.path.join(oc_folder, "open_clip_config.json"), "w") as f:
        json.dump(oc, f)
    copy_vocab(oc_folder)
    FORMS["open_clip-custom-text"] = (oc_folder, "quick")

    # TorchScript, float16, from an OpenAI-layout module checked against the twin
    folder, config, hf = HF["openai_f16"]
    module = OpenAICLIP(config)
    sd = hf_to_openai({k: v.float() for k, v in hf.items()}, config)
    missing, unexpected = module.load_state_dict(sd, strict=False)
    buffers = ("attn_mask", "input_resolution", "context_length", "vocab_size")
    assert not unexpected and all(k.endswith(buffers) for k in missing), (missing, unexpected)
    check_openai_module(module, folder, config)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    size = config["vision_config"]["image_size"]
    pixels = torch.randn(2, 3, size, size)
    ids = clip_twin.tokenize(TEXTS[:2])
    traced = torch.jit.trace(module.eval(), (pixels, ids)).half()
    ts_folder = new_folder("openai-torchscript")
    traced.save(os.path.join(ts_folder, "ViT-tiny-16.pt"))
    copy_vocab(ts_folder, "openai")
    FORMS["openai-torchscript"] = (ts_folder, "openai_f16")


def check_openai_module(module, hf_folder, config):
    """The OpenAI-layout module with the renamed weights computes what the HF
    twin computes: the renaming (q, k, v order, transposes) is right."""
    twin = clip_twin.load_twin(hf_folder)
    gen = torch.Generator().manual_seed(5)
    size = config["vision_config"]["image_size"]
    pixels = torch.randn(3, 3, size, size, generator=gen, dtype=torch.float64)
    ids = clip_twin.tokenize(TEXTS)
    double = OpenAICLIP(config).double()
    double.load_state_dict(module.state_dict())
    with torch.no_grad():
        image, text = double(pixels, ids)
        want_image, want_text = twin.encode_image(pixels), twin.encode_text(ids)
    assert torch.allclose(image, want_image, rtol=1e-9, atol=1e-9), (image - want_image).abs().max()
    assert torch.allclose(text, want_text, rtol=1e-9, atol=1e-9), (text - want_text).abs().max()


def setUpModule():
    global TMP
    if TOOL is None:
        return
    TMP = tempfile.mkdtemp(prefix="agc-openai-names-")
    torch.manual_seed(0)
    write_forms()


def tearDownModule():
    if TMP is not None:
        shutil.rmtree(TMP, ignore_errors=True)


# ---- model-files-dump --------------------------------------------------------------

def run_dump(path):
    """(config, preprocess, folder, tensors) or raises with the tool's stderr."""
    out = os.path.join(TMP, "dump.bin")
    proc = subprocess.run([TOOL, path, out], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise DumpError(proc)
    with open(out, "rb") as f:
        data = f.read()
    config, preprocess, folder = {}, {}, None
    tensors = collections.OrderedDict()
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "config":
            config[fields[1]] = fields[2]
        elif fields[0] == "preprocess":
            preprocess[fields[1]] = fields[2]
        elif fields[0] == "folder":
            folder = fields[1]
        else:
            _, name, dtype, shape, offset, n_bytes = fields
            shape = tuple(int(s) for s in shape.split(",")) if shape else ()
            values = np.frombuffer(data[int(offset):int(offset) + int(n_bytes)], dtype="<f4")
            tensors[name] = (dtype, shape, values)
    return config, preprocess, folder, tensors


class DumpError(Exception):
    def __init__(self, proc):
        super().__init__(proc.stderr)
        self.proc = proc


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class ModelFiles(unittest.TestCase):
    def check_form(self, form):
        path, model = FORMS[form]
        _, config, hf = HF[model]
        got_config, preprocess, folder, tensors = run_dump(path)
        for name in [n for n in tensors if n.endswith("position_ids")]:  # HF buffers
            del tensors[name]

        want = expected_config(config)
        got = {k: got_config[k] for k in want}
        got = {k: (np.float32(float(v)) if k.endswith("eps") else
                   v if k.endswith("act") else int(v)) for k, v in got.items()}
        self.assertEqual(got, want, form)

        self.assertEqual(sorted(tensors), sorted(hf), form)
        for name, tensor in hf.items():
            dtype, shape, values = tensors[name]
            self.assertEqual(shape, tuple(tensor.shape), f"{form}: {name}")
            want_values = tensor.float().contiguous().numpy().reshape(-1)
            self.assertTrue(np.array_equal(values, want_values), f"{form}: values of {name}")
            # translated: only the two projections are materialised (float32);
            # the rest keeps its stored dtype
            stored = clip_twin._NAME_OF[tensor.dtype]
            projection = (name in ("visual_projection.weight", "text_projection.weight")
                          and not form.startswith("hf-"))
            self.assertEqual(dtype, "F32" if projection else stored, f"{form}: dtype of {name}")

        self.assertEqual(preprocess["filter"], "bicubic")
        size = config["vision_config"]["image_size"]
        self.assertEqual([int(preprocess[k]) for k in ("shortest_edge", "crop_width",
                                                       "crop_height")], [size] * 3)
        for key, values in (("mean", clip_twin.CLIP_MEAN), ("std", clip_twin.CLIP_STD)):
            got = [np.float32(float(x)) for x in preprocess[key].split(",")]
            self.assertEqual(got, [np.float32(x) for x in values], f"{form}: {key}")
        want_folder = path if os.path.isdir(path) else os.path.dirname(path)
        self.assertEqual(folder, want_folder)

    def test_hf_folders_unchanged(self):
        for name in MODELS:
            with self.subTest(name):
                self.check_form("hf-" + name)

    def test_openai_state_dicts(self):
        for form in ("openai-pt-folder", "openai-pt-file", "openai-wrapped-pth"):
            with self.subTest(form):
                self.check_form(form)

    def test_open_clip_folders(self):
        for form in ("open_clip-quick-safetensors", "open_clip-gelu-safetensors",
                     "open_clip-gelu-bin", "open_clip-custom-text"):
            with self.subTest(form):
                self.check_form(form)

    def test_torchscript_f16(self):
        self.check_form("openai-torchscript")

    def test_hf_pytorch_model_bin(self):
        folder, config, hf = HF["quick"]
        bin_folder = os.path.join(TMP, "hf-bin")
        shutil.copytree(folder, bin_folder)
        os.remove(os.path.join(bin_folder, "model.safetensors"))
        torch.save(hf, os.path.join(bin_folder, "pytorch_model.bin"))
        FORMS["hf-bin"] = (bin_folder, "quick")
        self.check_form("hf-bin")

    def test_open_clip_preprocess_cfg(self):
        folder, config, hf = HF["gelu"]
        oc_folder = os.path.join(TMP, "open_clip-preprocess")
        shutil.copytree(FORMS["open_clip-gelu-safetensors"][0], oc_folder)
        size = config["vision_config"]["image_size"]
        cases = [
            ({"size": [size, size], "mean": [0.5, 0.25, 0.125], "std": 0.5,
              "interpolation": "bilinear", "resize_mode": "shortest", "mode": "RGB",
              "fill_color": 0}, "bilinear", [0.5, 0.25, 0.125], [0.5] * 3),
            ({"interpolation": "random"}, "bicubic", clip_twin.CLIP_MEAN, clip_twin.CLIP_STD),
            (None, "bicubic", clip_twin.CLIP_MEAN, clip_twin.CLIP_STD),
        ]
        for preprocess_cfg, filter_name, mean, std in cases:
            with self.subTest(preprocess_cfg=preprocess_cfg):
                oc = open_clip_config(config, False, preprocess_cfg)
                if preprocess_cfg is None:
                    del oc["preprocess_cfg"]
                with open(os.path.join(oc_folder, "open_clip_config.json"), "w") as f:
                    json.dump(oc, f)
                _, preprocess, _, _ = run_dump(oc_folder)
                self.assertEqual(preprocess["filter"], filter_name)
                self.assertEqual(int(preprocess["shortest_edge"]), size)
                for key, values in (("mean", mean), ("std", std)):
                    got = [np.float32(float(x)) for x in preprocess[key].split(",")]
                    self.assertEqual(got, [np.float32(x) for x in values], key)

    def test_bare_model_cfg_file(self):
        # open_clip's model_configs/ViT-*.json hold the model_cfg alone
        folder, config, hf = HF["gelu"]
        oc_folder = os.path.join(TMP, "open_clip-bare-cfg")
        shutil.copytree(FORMS["open_clip-gelu-safetensors"][0], oc_folder)
        with open(os.path.join(oc_folder, "open_clip_config.json"), "w") as f:
            json.dump(open_clip_config(config, False)["model_cfg"], f)
        FORMS["open_clip-bare-cfg"] = (oc_folder, "gelu")
        self.check_form("open_clip-bare-cfg")


# ---- refused files ------------------------------------------------------------------

@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class Refused(unittest.TestCase):
    def assertRefused(self, path, code, *fragments):
        with self.assertRaises(DumpError) as cm:
            run_dump(path)
        proc = cm.exception.proc
        self.assertEqual(proc.returncode, 1, proc.stderr)
        message = proc.stderr.strip()
        self.assertEqual(len(message.splitlines()), 1, message)
        self.assertTrue(message.startswith(f"error: {code}: "), message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def openai_folder(self, name, edit, model="openai", vocab=True):
        """A folder with one .pt: the OpenAI state dict after edit(sd)."""
        _, config, hf = HF[model]
        sd = hf_to_openai(hf, config)
        edit(sd)
        folder = os.path.join(TMP, "bad-" + name)
        os.makedirs(folder)
        torch.save(sd, os.path.join(folder, name + ".pt"))
        if vocab:
            copy_vocab(folder)
        return folder

    def open_clip_folder(self, name, edit_config, model="gelu"):
        folder = os.path.join(TMP, "bad-" + name)
        shutil.copytree(FORMS[f"open_clip-{model}-safetensors"][0], folder)
        path = os.path.join(folder, "open_clip_config.json")
        with open(path) as f:
            oc = json.load(f)
        text = edit_config(oc)
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(oc))
        return folder

    def test_missing_in_proj(self):
        name = "visual.transformer.resblocks.1.attn.in_proj_weight"
        folder = self.openai_folder("no-in-proj", lambda sd: sd.pop(name))
        self.assertRefused(folder, "MODEL", "no-in-proj.pt", f"missing tensor '{name}'")
        name = "transformer.resblocks.0.attn.in_proj_bias"
        folder = self.openai_folder("no-in-proj-bias", lambda sd: sd.pop(name))
        self.assertRefused(folder, "MODEL", f"missing tensor '{name}'")

    def test_in_proj_not_three_stacked(self):
        name = "transformer.resblocks.0.attn.in_proj_weight"
        folder = self.openai_folder("in-proj-2d",
                                    lambda sd: sd.update({name: sd[name][:128].clone()}))
        self.assertRefused(folder, "MODEL", name, "[128, 64]", "expected [192, 64]")

    def test_inconsistent_widths(self):
        cases = {
            "ln-pre": ("visual.ln_pre.weight", lambda t: t[:96].clone(), "[96]", "[128]"),
            "fc": ("transformer.resblocks.1.mlp.c_fc.weight", lambda t: t[:200].clone(),
                   "[200, 64]", "[256, 64]"),
            "proj": ("visual.proj", lambda t: t[:, :30].clone(), "[128, 30]", "[128, 32]"),
            "text-positions": ("positional_embedding", lambda t: t[:, :32].clone(), "[77, 32]",
                               "[77, 64]"),
        }
        for case, (name, cut, have, want) in cases.items():
            with self.subTest(case):
                folder = self.openai_folder("width-" + case,
                                            lambda sd: sd.update({name: cut(sd[name])}))
                self.assertRefused(folder, "MODEL", f"'{name}'", have, want)

    def test_positions_not_a_grid(self):
        name = "visual.positional_embedding"
        folder = self.openai_folder("positions", lambda sd: sd.update({name: sd[name][:-2]}))
        self.assertRefused(folder, "MODEL", name, "15 rows", "square")

    def test_missing_logit_scale(self):
        folder = self.openai_folder("no-scale", lambda sd: sd.pop("logit_scale"))
        self.assertRefused(folder, "MODEL", "logit_scale")

    def test_width_not_multiple_of_64(self):
        # a bare checkpoint of the "quick" model (vision width 96): heads unknown
        folder = self.openai_folder("width-96", lambda sd: None, model="quick")
        self.assertRefused(folder, "UNSUPPORTED", "96", "heads", "open_clip_config.json")

    def test_resnet_and_unknown_tensors(self):
        def resnet(sd):
            sd["visual.layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
            sd["visual.attnpool.c_proj.weight"] = torch.zeros(32, 128)
        self.assertRefused(self.openai_folder("resnet", resnet), "UNSUPPORTED", "ResNet")
        name = "visual.transformer.resblocks.0.ls_1.gamma"
        folder = self.openai_folder("layer-scale",
                                    lambda sd: sd.update({name: torch.ones(128)}))
        self.assertRefused(folder, "UNSUPPORTED", f"'{name}'", "not supported")
        folder = self.openai_folder(
            "attn-pool", lambda sd: sd.update({"visual.attn_pool.query": torch.ones(4, 128)}))
        self.assertRefused(folder, "UNSUPPORTED", "attentional pooling")

    def test_no_tokenizer_files(self):
        folder = self.openai_folder("no-vocab", lambda sd: None, vocab=False)
        path = os.path.join(folder, "no-vocab.pt")
        for model in (folder, path):
            with self.subTest(model):
                self.assertRefused(model, "IO", model, "vocab.json", "merges.txt",
                                   "bpe_simple_vocab_16e6.txt.gz", folder)

    def test_folder_choices(self):
        folder = self.openai_folder("two", lambda sd: None)
        shutil.copy(os.path.join(folder, "two.pt"), os.path.join(folder, "one.pth"))
        self.assertRefused(folder, "INPUT", "several checkpoints", "one.pth, two.pt")
        empty = os.path.join(TMP, "bad-empty")
        os.makedirs(empty)
        copy_vocab(empty)
        self.assertRefused(empty, "IO", empty, "no model weights", "open_clip_config.json")
        self.assertRefused(os.path.join(TMP, "no-such-model"), "IO", "no-such-model")
        lone = os.path.join(TMP, "bad-open-clip-alone")
        shutil.copytree(FORMS["open_clip-gelu-safetensors"][0], lone)
        os.remove(os.path.join(lone, "open_clip_config.json"))
        self.assertRefused(lone, "IO", "open_clip_model.safetensors",
                           "open_clip_config.json is missing")
        hf = os.path.join(TMP, "bad-hf-no-config")
        shutil.copytree(HF["quick"][0], hf)
        os.remove(os.path.join(hf, "config.json"))
        self.assertRefused(hf, "IO", hf, "config.json is missing")

    def test_bad_open_clip_config(self):
        def vision(**changes):
            return lambda oc: oc["model_cfg"]["vision_cfg"].update(changes)

        def text(**changes):
            return lambda oc: oc["model_cfg"]["text_cfg"].update(changes)

        cases = {
            "syntax": (lambda oc: '{"model_cfg": {"embed_dim": 32,', "FORMAT",
                       ["open_clip_config.json"]),
            "no-model-cfg": (lambda oc: oc.pop("model_cfg"), "FORMAT", ["\"model_cfg\""]),
            "no-embed-dim": (lambda oc: oc["model_cfg"].pop("embed_dim"), "FORMAT",
                             ["model_cfg.embed_dim is missing"]),
            "width-string": (vision(width="wide"), "FORMAT",
                             ["model_cfg.vision_cfg.width is \"wide\""]),
            "width-mismatch": (vision(width=768, head_width=64), "MODEL",
                               ["model_cfg.vision_cfg.width is 768", "have 64",
                                "visual.conv1.weight"]),
            "layers-mismatch": (text(layers=5), "MODEL",
                                ["model_cfg.text_cfg.layers is 5", "have 2"]),
            "mlp-mismatch": (vision(mlp_ratio=3.0), "MODEL", ["mlp_ratio", "192", "256"]),
            "heads-indivisible": (text(heads=5), "FORMAT", ["not divisible by heads 5"]),
            "resnet": (vision(layers=[3, 4, 6, 3]), "UNSUPPORTED", ["ResNet"]),
            "timm": (vision(timm_model_name="vit_base_patch16_224"), "UNSUPPORTED",
                     ["vision_cfg.timm_model_name", "timm"]),
            "hf-text": (text(hf_model_name="roberta-base"), "UNSUPPORTED",
                        ["text_cfg.hf_model_name"]),
            "attn-pool": (vision(attentional_pool=True), "UNSUPPORTED",
                          ["attentional_pool is true"]),
            "pool-type": (text(pool_type="last"), "UNSUPPORTED", ["text_cfg.pool_type"]),
            "non-square": (vision(image_size=[24, 32]), "UNSUPPORTED", ["image_size", "square"]),
            "squash": (lambda oc: oc["preprocess_cfg"].update(resize_mode="squash"),
                       "UNSUPPORTED", ["preprocess_cfg.resize_mode is \"squash\""]),
            "size": (lambda oc: oc["preprocess_cfg"].update(size=32), "MODEL",
                     ["preprocess_cfg.size 32", "image_size 24"]),
            "coca": (lambda oc: oc["model_cfg"].update(multimodal_cfg={"width": 8}),
                     "UNSUPPORTED", ["multimodal_cfg"]),
            "quick-gelu-string": (lambda oc: oc["model_cfg"].update(quick_gelu="yes"), "FORMAT",
                                  ["quick_gelu"]),
        }
        for case, (edit, code, fragments) in cases.items():
            with self.subTest(case):
                folder = self.open_clip_folder("oc-" + case, edit)
                self.assertRefused(folder, code, "open_clip_config.json", *fragments)


# ---- agriclip embed, once core/models/model.c uses agc_model_files_open ---------------------

def run_embed(model, images, texts):
    args = [AGRICLIP, "embed", "--raw", "--model", model]
    for path in images:
        args += ["--image", path]
    for text in texts:
        args += ["--text", text]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"agriclip embed --model {model} failed: {proc.stderr}")
    return [json.loads(line)["embedding"] for line in proc.stdout.splitlines() if line.strip()]


@unittest.skipIf(TOOL is None or AGRICLIP is None, "run through meson test")
class Embeddings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # before the switch, agc_model_load only reads Hugging Face folders
        probe = FORMS["open_clip-gelu-safetensors"][0]
        proc = subprocess.run([AGRICLIP, "embed", "--model", probe, "--text", "x"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 and "config.json is missing" in proc.stderr:
            raise unittest.SkipTest("core/models/model.c does not load models through "
                                    "agc_model_files_open yet (agriclip says: "
                                    f"{proc.stderr.strip()})")
        cls.images = {}
        for name, (folder, config, _) in HF.items():
            size = config["vision_config"]["image_size"]
            rng = np.random.default_rng(size)
            paths = []
            for i in range(3):
                path = os.path.join(TMP, f"image-{name}-{i}.png")
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
                paths.append(path)
            cls.images[name] = paths

    def test_identical_embeddings(self):
        for model in MODELS:
            images = self.images[model]
            want = run_embed(HF[model][0], images, TEXTS)
            self.assertEqual(len(want), len(images) + len(TEXTS))
            for form, (path, form_model) in FORMS.items():
                if form_model != model or form.startswith("hf-"):
                    continue
                with self.subTest(form):
                    self.assertEqual(run_embed(path, images, TEXTS), want, form)

    def test_activation_flag_matters(self):
        # the gelu model declared QuickGELU: same weights, other embeddings
        folder = os.path.join(TMP, "open_clip-gelu-as-quick")
        shutil.copytree(FORMS["open_clip-gelu-safetensors"][0], folder)
        _, config, _ = HF["gelu"]
        with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
            json.dump(open_clip_config(config, True), f)
        images = self.images["gelu"]
        want = np.array(run_embed(HF["gelu"][0], images, TEXTS))
        got = np.array(run_embed(folder, images, TEXTS))
        self.assertGreater(np.abs(got - want).max(), 1e-3)


if __name__ == "__main__":
    unittest.main()
