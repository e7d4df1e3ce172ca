#!/usr/bin/python3
"""Label-free health check of a DINO-trained ResNet-50: how spread out its
features are on a folder of photos.  A collapsed network (every photo to
the same output) has a mean pairwise cosine near 1 and an effective rank
near 1; a random one sits in between.

  feature-spread.py PHOTOS SIZE WEIGHTS...

WEIGHTS: a torchvision ResNet-50 state dict (.pth, as agriclip-model.py
writes) or an adapter (.safetensors: a dino adapter, or an aligner stacked on
one).  Photos are preprocessed as AgriCLIP does at SIZE (resize, centre crop,
ImageNet normalisation); BatchNorm in eval mode.  Prints, per file, the mean
cosine between the pooled features of different photos and the effective rank
of the centred features (exp of the entropy of the normalised singular
values).  Needs PyTorch and torchvision (/usr/bin/python3).
"""
import sys

import torch
from PIL import Image

from leaf_photos import agriclip_preprocess, photos, resnet50  # and tests/reference on the path
import clip_twin  # noqa: E402


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.split("\n\n")[1])
    folder, size = sys.argv[1], int(sys.argv[2])
    preprocess = agriclip_preprocess(size)
    pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in photos(folder)])
    for path in sys.argv[3:]:
        state = torch.load(path) if path.endswith(".pth") else clip_twin.read_safetensors(path)
        state = {k: torch.as_tensor(v) for k, v in state.items() if k not in ("W", "b")}
        net, missing, _ = resnet50(state)
        if missing:
            sys.exit(f"{path}: not a ResNet-50: {missing[:3]} missing")
        net.eval()
        with torch.no_grad():
            features = net(pixels)
        unit = torch.nn.functional.normalize(features, dim=1)
        n = len(unit)
        cosine = ((unit @ unit.T).sum() - n) / (n * (n - 1))
        singular = torch.linalg.svdvals(features - features.mean(dim=0))
        p = singular / singular.sum()
        rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
        print(f"{path}: {n} photos, mean cosine {cosine:.4f}, effective rank {rank:.1f}")


if __name__ == "__main__":
    main()
