"""clip_twin.py — a small PyTorch twin of a Hugging Face CLIPModel.

It is the specification the reference tests compare libagriclip with:

- make_model(out_dir, ...) writes a complete, tiny, random HF CLIP folder
  (config.json, model.safetensors or a sharded index, vocab.json, merges.txt,
  preprocessor_config.json);
- load_twin(dir) reads such a folder (its own safetensors reader) into a
  float64 TwinCLIP whose encode_image / encode_text return the raw
  projections;
- tokenize(texts, vocab_dir) and preprocess_image(path, size) produce its
  inputs with the Python tokenizer reference and PIL + torchvision.

The architecture is written from the published facts (pre-norm ViT and
causal text transformer, HF weight names), not from transformers, so that
the C code and this file are two independent readings of the same model.
"""

import json
import math
import os
import shutil
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# transformers' CLIPTextConfig / CLIPVisionConfig / CLIPConfig defaults
TEXT_DEFAULTS = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, vocab_size=49408,
                     hidden_act="quick_gelu", layer_norm_eps=1e-5)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, image_size=224, patch_size=32,
                       hidden_act="quick_gelu", layer_norm_eps=1e-5)
PROJECTION_DIM_DEFAULT = 512

VOCAB_SIZE = 49408
CONTEXT_LENGTH = 77

# safetensors dtype name -> (torch dtype, numpy dtype of the raw bytes)
_DTYPES = {
    "F64": (torch.float64, np.float64),
    "F32": (torch.float32, np.float32),
    "F16": (torch.float16, np.float16),
    "BF16": (torch.bfloat16, np.int16),  # numpy has no bfloat16: move the bits as int16
    "I64": (torch.int64, np.int64),
    "I32": (torch.int32, np.int32),
}
_NAME_OF = {torch_dtype: name for name, (torch_dtype, _) in _DTYPES.items()}


def default_vocab_dir():
    shared = os.environ.get("AGC_SHARED_DIR", os.path.join(HERE, "..", "..", "..", "shared"))
    return os.path.join(shared, "clip-vocab")


# ---- safetensors ----------------------------------------------------------

def _tensor_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # the host is little-endian, as the format


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> torch tensor, written in name order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        blob = _tensor_bytes(t)
        header[name] = {"dtype": _NAME_OF[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad the header as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """dict name -> torch tensor in its stored dtype."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        torch_dtype, np_dtype = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype=np.dtype(np_dtype).newbyteorder("<")).copy()
        t = torch.from_numpy(arr.astype(np_dtype))
        if torch_dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(info["shape"])
    return out


def read_model_weights(model_dir):
    """All tensors of a folder: model.safetensors or the shards of its index."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        out.update(read_safetensors(os.path.join(model_dir, shard)))
    return out


# ---- writing a model folder -----------------------------------------------

def _random_weights(gen, *, act, text_width, text_layers, vision_width, vision_layers,
                    image_size, patch_size, projection_dim, logit_scale):
    """float32 tensors with unit-scale activations: linear weights ~ N(0, 1/in),
    layer-norm gains around 1 and biases around 0, so every part matters."""

    def normal(*shape, std):
        return torch.randn(*shape, generator=gen) * std

    def linear(prefix, n_out, n_in, gain=1.0):
        w[prefix + ".weight"] = normal(n_out, n_in, std=gain / math.sqrt(n_in))
        w[prefix + ".bias"] = normal(n_out, std=0.1)

    def norm(prefix, width):
        w[prefix + ".weight"] = 1.0 + normal(width, std=0.2)
        w[prefix + ".bias"] = normal(width, std=0.1)

    def layers(prefix, width, n_layers):
        for i in range(n_layers):
            p = f"{prefix}.encoder.layers.{i}."
            norm(p + "layer_norm1", width)
            linear(p + "self_attn.q_proj", width, width, gain=1.5)  # non-uniform attention
            linear(p + "self_attn.k_proj", width, width, gain=1.5)
            linear(p + "self_attn.v_proj", width, width)
            linear(p + "self_attn.out_proj", width, width)
            norm(p + "layer_norm2", width)
            linear(p + "mlp.fc1", 4 * width, width)
            linear(p + "mlp.fc2", width, 4 * width)

    w = {}
    n_pos = (image_size // patch_size) ** 2 + 1
    w["text_model.embeddings.token_embedding.weight"] = normal(VOCAB_SIZE, text_width, std=0.5)
    w["text_model.embeddings.position_embedding.weight"] = normal(CONTEXT_LENGTH, text_width,
                                                                  std=0.5)
    layers("text_model", text_width, text_layers)
    norm("text_model.final_layer_norm", text_width)
    w["text_projection.weight"] = normal(projection_dim, text_width, std=1 / math.sqrt(text_width))

    w["vision_model.embeddings.class_embedding"] = normal(vision_width, std=0.5)
    w["vision_model.embeddings.patch_embedding.weight"] = normal(
        vision_width, 3, patch_size, patch_size, std=1 / math.sqrt(3 * patch_size ** 2))
    w["vision_model.embeddings.position_embedding.weight"] = normal(n_pos, vision_width, std=0.5)
    norm("vision_model.pre_layrnorm", vision_width)
    layers("vision_model", vision_width, vision_layers)
    norm("vision_model.post_layernorm", vision_width)
    w["visual_projection.weight"] = normal(projection_dim, vision_width,
                                           std=1 / math.sqrt(vision_width))
    w["logit_scale"] = torch.tensor(float(logit_scale))
    return w


def _config(*, act, text_width, text_layers, text_heads, vision_width, vision_layers,
            vision_heads, image_size, patch_size, projection_dim, minimal):
    text = dict(TEXT_DEFAULTS, hidden_size=text_width, intermediate_size=4 * text_width,
                num_hidden_layers=text_layers, num_attention_heads=text_heads, hidden_act=act)
    vision = dict(VISION_DEFAULTS, hidden_size=vision_width, intermediate_size=4 * vision_width,
                  num_hidden_layers=vision_layers, num_attention_heads=vision_heads,
                  image_size=image_size, patch_size=patch_size, hidden_act=act)
    if minimal:
        # only what differs from the transformers defaults, as many real files do
        text = {k: v for k, v in text.items() if TEXT_DEFAULTS[k] != v}
        vision = {k: v for k, v in vision.items() if VISION_DEFAULTS[k] != v}
        config = {"model_type": "clip", "text_config": text, "vision_config": vision}
        if projection_dim != PROJECTION_DIM_DEFAULT:
            config["projection_dim"] = projection_dim
        return config
    text.update(model_type="clip_text_model", projection_dim=projection_dim,
                bos_token_id=0, eos_token_id=2, pad_token_id=1)
    vision.update(model_type="clip_vision_model", projection_dim=projection_dim, num_channels=3)
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": projection_dim,
            "logit_scale_init_value": 2.6592, "torch_dtype": "float32",
            "text_config": text, "vision_config": vision}


def _preprocessor_config(image_size, minimal):
    if minimal:  # the older plain-integer form
        return {"crop_size": image_size, "size": image_size, "do_center_crop": True,
                "do_normalize": True, "do_resize": True, "resample": 3,
                "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}
    return {"crop_size": {"height": image_size, "width": image_size},
            "size": {"shortest_edge": image_size},
            "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
            "do_rescale": True, "do_resize": True, "rescale_factor": 1 / 255, "resample": 3,
            "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD),
            "image_processor_type": "CLIPImageProcessor"}


def make_model(out_dir, *, dtype="F32", act="quick_gelu", seed=0, text_width=64,
               text_layers=2, text_heads=2, vision_width=64, vision_layers=2, vision_heads=2,
               image_size=32, patch_size=8, projection_dim=32, vocab_dir=None, sharded=False,
               logit_scale=math.log(100), minimal_config=False):
    """Writes a complete HF CLIP folder with random weights; returns its config dict."""
    torch_dtype = _DTYPES[dtype][0]
    vocab_dir = vocab_dir or default_vocab_dir()
    os.makedirs(out_dir, exist_ok=True)

    gen = torch.Generator().manual_seed(seed)
    weights = _random_weights(gen, act=act, text_width=text_width, text_layers=text_layers,
                              vision_width=vision_width, vision_layers=vision_layers,
                              image_size=image_size, patch_size=patch_size,
                              projection_dim=projection_dim, logit_scale=logit_scale)
    weights = {k: v.to(torch_dtype) for k, v in weights.items()}
    # buffers real checkpoints carry and the engine must ignore
    n_pos = (image_size // patch_size) ** 2 + 1
    weights["text_model.embeddings.position_ids"] = torch.arange(CONTEXT_LENGTH).unsqueeze(0)
    weights["vision_model.embeddings.position_ids"] = torch.arange(n_pos).unsqueeze(0)

    if sharded:
        names = sorted(weights)
        shards = {"model-00001-of-00002.safetensors": names[0::2],
                  "model-00002-of-00002.safetensors": names[1::2]}
        weight_map, total = {}, 0
        for shard, shard_names in shards.items():
            write_safetensors(os.path.join(out_dir, shard), {n: weights[n] for n in shard_names},
                              metadata={"format": "pt"})
            for n in shard_names:
                weight_map[n] = shard
                total += weights[n].numel() * weights[n].element_size()
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    else:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), weights,
                          metadata={"format": "pt"})

    config = _config(act=act, text_width=text_width, text_layers=text_layers,
                     text_heads=text_heads, vision_width=vision_width,
                     vision_layers=vision_layers, vision_heads=vision_heads,
                     image_size=image_size, patch_size=patch_size,
                     projection_dim=projection_dim, minimal=minimal_config)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(_preprocessor_config(image_size, minimal_config), f, indent=2)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(vocab_dir, name), os.path.join(out_dir, name))
    return config


# ---- the twin -------------------------------------------------------------

def _tower_config(config, key, defaults):
    c = dict(defaults)
    c.update({k: v for k, v in config.get(key, {}).items() if k in defaults})
    return c


class TwinCLIP(torch.nn.Module):
    """A HF CLIPModel's two encoders in float64, from a weight dict."""

    def __init__(self, config, weights):
        super().__init__()
        self.text_cfg = _tower_config(config, "text_config", TEXT_DEFAULTS)
        self.vision_cfg = _tower_config(config, "vision_config", VISION_DEFAULTS)
        self.projection_dim = config.get("projection_dim", PROJECTION_DIM_DEFAULT)
        # F16/BF16 values convert exactly to float64: the twin sees the stored weights
        self.w = {k: v.to(torch.float64) for k, v in weights.items() if v.is_floating_point()}
        self.logit_scale = math.exp(float(self.w["logit_scale"]))

    def _ln(self, x, prefix, eps):
        return F.layer_norm(x, (x.shape[-1],), self.w[prefix + ".weight"],
                            self.w[prefix + ".bias"], eps)

    def _linear(self, x, prefix, bias=True):
        return F.linear(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"] if bias else None)

    def _attention(self, x, prefix, heads, mask):
        b, t, d = x.shape
        hd = d // heads

        def split(y):  # [B, T, D] -> [B, heads, T, hd]
            return y.reshape(b, t, heads, hd).transpose(1, 2)

        q = split(self._linear(x, prefix + "q_proj"))
        k = split(self._linear(x, prefix + "k_proj"))
        v = split(self._linear(x, prefix + "v_proj"))
        scores = q @ k.transpose(-1, -2) * hd ** -0.5
        if mask is not None:
            scores = scores + mask
        out = torch.softmax(scores, dim=-1) @ v
        return self._linear(out.transpose(1, 2).reshape(b, t, d), prefix + "out_proj")

    def _encoder(self, x, tower, cfg, mask):
        act = {"quick_gelu": lambda y: y * torch.sigmoid(1.702 * y),
               "gelu": lambda y: F.gelu(y)}[cfg["hidden_act"]]
        eps = cfg["layer_norm_eps"]
        for i in range(cfg["num_hidden_layers"]):
            p = f"{tower}.encoder.layers.{i}."
            x = x + self._attention(self._ln(x, p + "layer_norm1", eps), p + "self_attn.",
                                    cfg["num_attention_heads"], mask)
            h = act(self._linear(self._ln(x, p + "layer_norm2", eps), p + "mlp.fc1"))
            x = x + self._linear(h, p + "mlp.fc2")
        return x

    def encode_image(self, pixels):
        """pixels[B, 3, S, S] (normalised) -> raw projections [B, E]."""
        cfg, w = self.vision_cfg, self.w
        x = pixels.to(torch.float64)
        x = F.conv2d(x, w["vision_model.embeddings.patch_embedding.weight"],
                     stride=cfg["patch_size"])                      # [B, D, g, g]
        x = x.flatten(2).transpose(1, 2)                            # [B, g*g, D]
        cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + w["vision_model.embeddings.position_embedding.weight"]
        x = self._ln(x, "vision_model.pre_layrnorm", cfg["layer_norm_eps"])
        x = self._encoder(x, "vision_model", cfg, None)
        pooled = self._ln(x[:, 0], "vision_model.post_layernorm", cfg["layer_norm_eps"])
        return pooled @ w["visual_projection.weight"].T

    def encode_text(self, ids):
        """ids[B, 77] -> raw projections [B, E], pooled at the argmax id (EOT)."""
        cfg, w = self.text_cfg, self.w
        ids = ids.long()
        t = ids.shape[1]
        x = (w["text_model.embeddings.token_embedding.weight"][ids]
             + w["text_model.embeddings.position_embedding.weight"][:t])
        mask = torch.full((t, t), float("-inf"), dtype=torch.float64).triu(1)
        x = self._encoder(x, "text_model", cfg, mask)
        x = self._ln(x, "text_model.final_layer_norm", cfg["layer_norm_eps"])
        pooled = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return pooled @ w["text_projection.weight"].T

    def forward(self, pixels, ids):
        return self.encode_image(pixels), self.encode_text(ids)


def load_twin(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    return TwinCLIP(config, read_model_weights(model_dir)).eval()


# ---- inputs ---------------------------------------------------------------

def tokenize(texts, vocab_dir=None):
    """LongTensor[len(texts), 77] from the Python tokenizer reference."""
    from clip_tokenizer_ref import ClipTokenizerRef

    tok = ClipTokenizerRef(vocab_dir or default_vocab_dir())
    return torch.tensor([tok.encode(t) for t in texts], dtype=torch.long)


def preprocess_image(path, image_size, mean=CLIP_MEAN, std=CLIP_STD):
    """Tensor[3, S, S]: CLIP's preprocessing with PIL and torchvision."""
    from PIL import Image
    from torchvision import transforms

    pipeline = transforms.Compose([
        transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    with Image.open(path) as im:
        return pipeline(im.convert("RGB"))
