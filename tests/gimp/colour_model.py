"""colour_model.py — a CLIP folder whose classes are known by construction.

The regions test needs a model that gives each quadrant of a test image a
class we know before running anything of ours.  Starting from a random
clip_twin model, the weights are rewritten so that both towers compute the
same function of a colour:

- vision: the patch embedding maps each patch to A·(mean normalised colour),
  class and position embeddings are zero, attention has q = k = 0 (uniform
  weights) and v = out = identity, the MLP is zero.  The class token thus
  becomes the mean over patches of LN(A·c), and the image embedding
  P·LN(mean_j LN(A·c_j)); for a plain-coloured tile, P·LN(A·c).
- text: the start/end tokens and positions embed to zero and the layers are
  built the same way, so at the end token the state is LN(e_word)/3 and the
  text embedding is P·LN(e_word) for a one-word prompt.  Setting
  e_word = A·c_word makes the prompt "red" point exactly where a red tile
  points.

Layer norms are identity-affine (gain 1, bias 0) and LN is scale invariant,
so image and text embeddings of the same colour are equal (cos = 1) and the
other colours are far below: with logit scale 100 the right class wins by a
wide margin.  Nothing here uses libagriclip; the expected class of every
plain tile follows from the construction alone.
"""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import clip_twin  # noqa: E402

# name -> sRGB colour; the words are single CLIP tokens
COLOURS = {
    "red": (230, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "white": (245, 245, 245),
}
WIDTH = 64       # both towers
PROJECTION = 32  # embedding size
SOT, EOT = 49406, 49407


def normalised(rgb):
    return torch.tensor([(v / 255 - m) / s for v, m, s in zip(rgb, clip_twin.CLIP_MEAN,
                                                              clip_twin.CLIP_STD)],
                        dtype=torch.float32)


def _identity_layers(w, tower, n_layers):
    for i in range(n_layers):
        p = f"{tower}.encoder.layers.{i}."
        for norm in ("layer_norm1", "layer_norm2"):
            w[p + norm + ".weight"] = torch.ones(WIDTH)
            w[p + norm + ".bias"] = torch.zeros(WIDTH)
        for proj in ("q_proj", "k_proj"):
            w[p + "self_attn." + proj + ".weight"] = torch.zeros(WIDTH, WIDTH)
            w[p + "self_attn." + proj + ".bias"] = torch.zeros(WIDTH)
        for proj in ("v_proj", "out_proj"):
            w[p + "self_attn." + proj + ".weight"] = torch.eye(WIDTH)
            w[p + "self_attn." + proj + ".bias"] = torch.zeros(WIDTH)
        for fc in ("fc1", "fc2"):
            w[p + "mlp." + fc + ".weight"] = torch.zeros_like(w[p + "mlp." + fc + ".weight"])
            w[p + "mlp." + fc + ".bias"] = torch.zeros_like(w[p + "mlp." + fc + ".bias"])


def make_colour_model(out_dir, patch_size=8, image_size=32, seed=1):
    """Writes the model folder; returns {word: token id}."""
    clip_twin.make_model(out_dir, seed=seed, text_width=WIDTH, vision_width=WIDTH,
                         text_layers=1, vision_layers=1, image_size=image_size,
                         patch_size=patch_size, projection_dim=PROJECTION)
    path = os.path.join(out_dir, "model.safetensors")
    w = clip_twin.read_safetensors(path)
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(WIDTH, 3, generator=gen)  # colour -> feature

    w["vision_model.embeddings.patch_embedding.weight"] = (
        a[:, :, None, None].expand(WIDTH, 3, patch_size, patch_size) / patch_size ** 2).contiguous()
    w["vision_model.embeddings.class_embedding"] = torch.zeros(WIDTH)
    w["vision_model.embeddings.position_embedding.weight"].zero_()
    w["text_model.embeddings.position_embedding.weight"].zero_()
    for norm in ("vision_model.pre_layrnorm", "vision_model.post_layernorm",
                 "text_model.final_layer_norm"):
        w[norm + ".weight"] = torch.ones(WIDTH)
        w[norm + ".bias"] = torch.zeros(WIDTH)
    _identity_layers(w, "vision_model", 1)
    _identity_layers(w, "text_model", 1)
    projection = torch.zeros(PROJECTION, WIDTH)
    projection[:, :PROJECTION] = torch.eye(PROJECTION)
    w["visual_projection.weight"] = projection
    w["text_projection.weight"] = projection.clone()

    with open(os.path.join(out_dir, "vocab.json")) as f:
        vocab = json.load(f)
    tokens = {}
    emb = w["text_model.embeddings.token_embedding.weight"]
    emb[SOT].zero_()
    emb[EOT].zero_()
    for word, rgb in COLOURS.items():
        tokens[word] = vocab[word + "</w>"]
        emb[tokens[word]] = a @ normalised(rgb)
    clip_twin.write_safetensors(path, w, metadata={"format": "pt"})
    return tokens


def write_colour_labels(path):
    """A label set with one prompt per class: the bare colour word."""
    labels = {
        "id": "colours",
        "title": "Colours (test)",
        "templates": [],
        "classes": [{"name": word, "display": word.capitalize(), "prompts": [word],
                     "use_templates": False} for word in COLOURS],
    }
    with open(path, "w") as f:
        json.dump(labels, f, indent=1)


def expected_probabilities(model_dir, tokens, rgb):
    """Class probabilities of a plain tile of colour rgb, through the twin
    (a check that the construction does what the docstring says)."""
    twin = clip_twin.load_twin(model_dir)
    size = twin.vision_cfg["image_size"]
    pixels = normalised(rgb)[:, None, None].expand(3, size, size)[None]
    image = twin.encode_image(pixels)[0]
    ids = torch.zeros(len(COLOURS), clip_twin.CONTEXT_LENGTH, dtype=torch.long)
    for i, word in enumerate(COLOURS):
        ids[i, :3] = torch.tensor([SOT, tokens[word], EOT])
    texts = twin.encode_text(ids)
    image = image / image.norm()
    texts = texts / texts.norm(dim=-1, keepdim=True)
    return torch.softmax(twin.logit_scale * texts @ image, dim=0).tolist()
