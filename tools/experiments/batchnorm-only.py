#!/usr/bin/python3
"""The control of second-camera.sh: an AgriCLIP-form model (agriclip-model.py's
layout) whose ResNet-50 keeps its weights and takes the BatchNorm statistics
of other photos, with no training (what DINO's training-mode BatchNorm alone
would give: "AdaBN").

  batchnorm-only.py MODEL PHOTOS OUT

The ResNet is the one MODEL's agriclip.json names ("image_encoder"
"weights", a safetensors file) or Weights/dino_pretrain.pth; OUT is a copy
of MODEL with that ResNet, its statistics measured on PHOTOS at the
model's input size, as Weights/dino_pretrain.pth.
"""
import argparse
import json
import os
import shutil

import torch

from leaf_photos import measure_batchnorm, resnet50  # and tests/reference on the path
import clip_twin  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("photos")
    parser.add_argument("out")
    args = parser.parse_args()
    if os.path.exists(args.out):
        parser.error(f"{args.out} exists")
    manifest_path = os.path.join(args.model, "agriclip.json")
    manifest = {"family": "agriclip"}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    named = manifest.pop("image_encoder", {}).get("weights")
    if named:
        state = clip_twin.read_safetensors(os.path.join(args.model, named))
    else:
        state = torch.load(os.path.join(args.model, "Weights", "dino_pretrain.pth"))
    net, missing, unexpected = resnet50(state)
    if missing or unexpected:
        parser.error(f"{args.model}: not a ResNet-50 state dict ({unexpected or missing})")
    size = manifest.get("image_size", 224)
    n_photos = measure_batchnorm(net, args.photos, size)

    shutil.copytree(args.model, args.out)  # links followed: OUT stands alone
    if named:
        os.remove(os.path.join(args.out, named))
    with open(os.path.join(args.out, "agriclip.json"), "w") as f:
        json.dump(manifest, f)
    torch.save(net.state_dict(), os.path.join(args.out, "Weights", "dino_pretrain.pth"))
    print(f"{args.out}: {args.model}'s ResNet-50, BatchNorm of {n_photos} photos of "
          f"{args.photos} at {size} px")


if __name__ == "__main__":
    main()
