"""Seed corpora for the fuzz harnesses, written by torch.save / torch.jit.save
(torch 1.13 from Debian): small checkpoints for fuzz-checkpoint, their
data.pkl pickles plus plain pickles for fuzz-pickle.
Usage: /usr/bin/python3 tests/fuzz/make-seeds.py OUT_DIR"""
import collections
import io
import os
import pickle
import sys
import warnings
import zipfile

import torch

out = sys.argv[1]
os.makedirs(os.path.join(out, "checkpoint"), exist_ok=True)
os.makedirs(os.path.join(out, "pickle"), exist_ok=True)
torch.manual_seed(0)
warnings.filterwarnings("ignore")

base = torch.arange(12, dtype=torch.float32)
linear = torch.nn.Linear(3, 2)
checkpoints = {
    "state_dict": linear.state_dict(),
    "aligner": {"W": torch.randn(4, 3), "b": torch.randn(4)},
    "dtypes": {"f16": base.half(), "bf16": base.bfloat16(), "i64": base.long(),
               "u8": base.byte(), "bool": base > 5, "f64": base.double()},
    "views": {"base": base, "t": base.view(3, 4).t(), "slice": base[2:5],
              "expand": base[:2].expand(3, 2), "scalar": torch.tensor(2.0),
              "empty": torch.zeros(0, 3)},
    "nested": {"epoch": 3, "state_dict": {"module.w": torch.ones(2)}, "best": 0.5,
               "optimizer": {"state": {0: {"step": 1}}, "param_groups": [{"lr": 0.1,
                             "betas": (0.9, 0.99), "params": [0]}]}},
    "parameter": {"p": torch.nn.Parameter(torch.ones(2, 2))},
}
for name, value in checkpoints.items():
    torch.save(value, os.path.join(out, "checkpoint", f"{name}.pt"))
torch.save(checkpoints["aligner"], os.path.join(out, "checkpoint", "proto4.pt"),
           pickle_protocol=4)

# a deflated copy, and a TorchScript archive without its (large) code entries
src = os.path.join(out, "checkpoint", "state_dict.pt")
with zipfile.ZipFile(src) as zin, \
        zipfile.ZipFile(os.path.join(out, "checkpoint", "deflated.pt"), "w",
                        zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        zout.writestr(info.filename, zin.read(info.filename))
buffer = io.BytesIO()
torch.jit.save(torch.jit.trace(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2)),
                               torch.ones(1, 2)), buffer)
with zipfile.ZipFile(buffer) as zin, \
        zipfile.ZipFile(os.path.join(out, "checkpoint", "torchscript.pt"), "w") as zout:
    for info in zin.infolist():
        if "/code/" not in info.filename or info.filename.endswith("__torch__.py"):
            zout.writestr(info.filename, zin.read(info.filename))

# copies whose central directory records CRC 0 ("not computed", as torch 2.4
# writes with set_crc32_options(False)): mutations of data.pkl then reach
# the unpickler instead of stopping at the CRC check
for name in sorted(os.listdir(os.path.join(out, "checkpoint"))):
    with open(os.path.join(out, "checkpoint", name), "rb") as f:
        data = bytearray(f.read())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        data[pos + 16:pos + 20] = bytes(4)
        pos = data.find(b"PK\x01\x02", pos + 4)
    with open(os.path.join(out, "checkpoint", "nocrc-" + name), "wb") as f:
        f.write(data)

for name in os.listdir(os.path.join(out, "checkpoint")):
    if name.startswith("nocrc-"):
        continue
    with zipfile.ZipFile(os.path.join(out, "checkpoint", name)) as z:
        for entry in z.namelist():
            if entry.endswith(".pkl") and "code/" not in entry:
                kind = os.path.basename(entry)[:-4]
                with open(os.path.join(out, "pickle", f"{name}.{kind}"), "wb") as f:
                    f.write(z.read(entry))
plain = {"a": [1, 2.5, None, True, "\u00e9", (1, 2)], "n": -2**40, "big": 2**63 - 1}
for protocol in (2, 4, 5):
    with open(os.path.join(out, "pickle", f"plain{protocol}.pkl"), "wb") as f:
        pickle.dump(plain, f, protocol=protocol)
cycle = []
cycle.append(cycle)
with open(os.path.join(out, "pickle", "cycle.pkl"), "wb") as f:
    pickle.dump(collections.OrderedDict(x=cycle), f, protocol=2)

# ---- JSON readers, tokenizer files, safetensors, images -------------------
import json
import struct

from PIL import Image


def write(kind, name, data):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


json_seeds = {
    "clip-config": {"model_type": "clip", "projection_dim": 8, "logit_scale_init_value": 2.6592,
                    "text_config": {"hidden_size": 16, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "intermediate_size": 32,
                                    "vocab_size": 49408, "max_position_embeddings": 77,
                                    "hidden_act": "quick_gelu"},
                    "vision_config": {"hidden_size": 16, "num_hidden_layers": 1,
                                      "num_attention_heads": 2, "intermediate_size": 32,
                                      "image_size": 32, "patch_size": 16}},
    "preprocessor": {"crop_size": 224, "do_center_crop": True, "do_normalize": True,
                     "do_resize": True, "image_mean": [0.48, 0.45, 0.40],
                     "image_std": [0.26, 0.26, 0.27], "resample": 3, "size": 224},
    "open-clip": {"model_cfg": {"embed_dim": 8, "vision_cfg": {"image_size": 32, "layers": 1,
                                                               "width": 16, "patch_size": 16},
                                "text_cfg": {"context_length": 77, "vocab_size": 49408,
                                             "width": 16, "heads": 2, "layers": 1}},
                  "preprocess_cfg": {"mean": [0.48, 0.45, 0.40], "std": [0.26, 0.26, 0.27]}},
    "agriclip": {"family": "agriclip", "image_encoder": {"type": "resnet50",
                                                          "weights": "Weights/dino.pth"},
                 "aligner": "aligner.pth", "text_model": ".", "temperature": 100.0},
    "labels": {"name": "leaves", "version": 1, "templates": ["a photo of {}."],
               "classes": [{"name": "rust", "display": "Rust \u00e9", "prompts": ["rust"]},
                           {"name": "healthy", "synonyms": ["green"]}]},
    "catalogue": {"format": 1, "models": [{"name": "m", "family": "clip",
                                           "repo": "openai/clip-vit-base-patch32",
                                           "files": [{"path": "config.json", "size": 10,
                                                      "sha256": "0" * 64}]}]},
    "index": {"metadata": {"total_size": 16}, "weight_map": {"a.weight": "model.safetensors",
                                                             "b": "shard-2.safetensors"}},
    "nested": [[[{"a": [1, -2.5e-3, True, False, None, "\\u00e9\\ud83c\\udf31"]}]]],
}
for name, value in json_seeds.items():
    write("json", name + ".json", json.dumps(value, indent=1))
write("json", "deep.json", "[" * 100 + "]" * 100)

# tokenizer: a whole small vocabulary (the 512 byte symbols, the specials,
# a few merges) and its merges.txt, joined by a NUL byte
def byte_symbols():
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    shifted, symbols = 0, []
    for b in range(256):
        if b in printable:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


symbols = byte_symbols()
vocab = symbols + [s + "</w>" for s in symbols]
merges = [("l", "e"), ("le", "a"), ("lea", "f</w>"), ("r", "u"), ("ru", "s"), ("rus", "t</w>"),
          ("a</w>", "p")]
for first, second in merges:
    vocab.append(first + second)
vocab += ["<|startoftext|>", "<|endoftext|>"]
vocab_json = json.dumps({s: i for i, s in enumerate(vocab)}, ensure_ascii=False)
merges_txt = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
write("tokenizer", "small", vocab_json.encode() + b"\0" + merges_txt.encode())
write("tokenizer", "truncated", vocab_json.encode() + b"\0" + merges_txt[:30].encode())


def safetensors(tensors, metadata=None):
    header, body = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


f32 = struct.pack("<6f", 1, -2, 0.5, 3, 4, 5)
write("safetensors", "plain", safetensors({"w": ("F32", [2, 3], f32),
                                           "h": ("F16", [2], struct.pack("<2e", 1, 2)),
                                           "i": ("I64", [1], struct.pack("<q", 7))}))
classes = json.dumps([{"name": "rust", "display": "Rust", "prompts": ["rust"]},
                      {"name": "ok", "display": "OK", "prompts": ["ok"]}])
write("safetensors", "adapter", safetensors(
    {"head.weight": ("F32", [2, 3], f32), "head.bias": ("F32", [2], f32[:8])},
    {"agriclip.kind": "adapter", "agriclip.version": "0.1", "agriclip.method": "probe",
     "agriclip.base_model": "0" * 64, "agriclip.base_model_name": "m",
     "agriclip.classes": classes, "agriclip.metrics": "{}", "agriclip.training": "{}"}))

# images: small files of each format gdk-pixbuf decodes, odd shapes included
os.makedirs(os.path.join(out, "image"), exist_ok=True)
for i, (mode, size, fmt, extra) in enumerate([
        ("RGB", (5, 3), "PNG", {}), ("RGBA", (2, 9), "PNG", {}), ("L", (4, 4), "PNG", {}),
        ("P", (3, 3), "GIF", {}), ("RGB", (8, 8), "JPEG", {"quality": 50}),
        ("RGB", (16, 8), "JPEG", {"progressive": True}), ("RGB", (3, 5), "TIFF", {}),
        ("RGB", (1, 40), "TIFF", {"compression": "tiff_deflate"}), ("RGB", (4, 4), "BMP", {}),
        ("RGB", (6, 2), "WEBP", {}), ("I;16", (3, 3), "PNG", {})]):
    image = Image.new(mode, size)
    image.putdata([(x * 37 + 11) % 251 if mode in ("L", "P", "I;16") else
                   tuple((x * k) % 256 for k in (3, 5, 7, 11)[:len(mode)])
                   for x in range(size[0] * size[1])])
    image.save(os.path.join(out, "image", f"{i}.{fmt.lower()}"), fmt, **extra)
