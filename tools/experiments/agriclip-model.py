#!/usr/bin/python3
"""An AgriCLIP-form model folder for experiments (the layout of
core/models/agriclip-model.c): a CLIP folder's files at the top (its text
tower and tokenizer: the text space), Weights/dino_pretrain.pth (a
torchvision ResNet-50 state dict without fc) and
Weights/Agri_Dino_aligner_DPT_CPT.pth ({'W': [E, 2048], 'b': [E]}).

  agriclip-model.py CLIP_DIR PHOTOS OUT [--seed N] [--image-size S]

The ResNet-50 has torchvision's random initialisation (seed N); its
BatchNorm statistics are measured on the photos of PHOTOS (every image
under it, preprocessed as AgriCLIP does: resize S bilinear, centre crop S,
ImageNet normalisation), as a network trained on such photos would have
them.  S is --image-size (224, AgriCLIP's); another size is written to
agriclip.json ("image_size"), so that agriclip runs the ResNet at S too.  The aligner is random and small: `agriclip train --method aligner`
fits the real one.  The CLIP's image tower is left out (--keep-image-tower
keeps it): the aligner is then fitted to the class prompts' text
embeddings rather than to the CLIP image embeddings (aligner-train.c), so
a weak CLIP image tower does not cap the result.  Needs PyTorch and
torchvision (/usr/bin/python3) and tests/reference/clip_twin.py.
"""
import argparse
import json
import os
import shutil

import torch
import torchvision
from PIL import Image
from torchvision import transforms

from leaf_photos import photos  # and tests/reference on the path
import clip_twin  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clip_dir")
    parser.add_argument("photos")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-image-tower", action="store_true")
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    if os.path.exists(args.out):
        parser.error(f"{args.out} exists")
    with open(os.path.join(args.clip_dir, "config.json")) as f:
        embed_dim = json.load(f)["projection_dim"]

    torch.manual_seed(args.seed)
    net = torchvision.models.resnet50(weights=None)
    net.fc = torch.nn.Identity()
    preprocess = transforms.Compose([
        transforms.Resize(args.image_size, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(args.image_size), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    # BatchNorm statistics of the photos: a cumulative average over batches
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    net.train()
    paths = list(photos(args.photos))
    with torch.no_grad():
        for i in range(0, len(paths), 32):
            batch = [preprocess(Image.open(p).convert("RGB")) for p in paths[i:i + 32]]
            net(torch.stack(batch))
    state = {k: v for k, v in net.state_dict().items()}

    shutil.copytree(args.clip_dir, args.out)
    if not args.keep_image_tower:
        weights = os.path.join(args.out, "model.safetensors")
        tensors = clip_twin.read_safetensors(weights)
        clip_twin.write_safetensors(weights, {k: v for k, v in tensors.items()
                                              if not k.startswith(("vision_model.",
                                                                   "visual_projection."))})
    if args.image_size != 224:
        with open(os.path.join(args.out, "agriclip.json"), "w") as f:
            json.dump({"family": "agriclip", "image_size": args.image_size}, f)
    os.makedirs(os.path.join(args.out, "Weights"), exist_ok=True)
    torch.save(state, os.path.join(args.out, "Weights", "dino_pretrain.pth"))
    gen = torch.Generator().manual_seed(args.seed + 1)
    torch.save({"W": 0.01 * torch.randn(embed_dim, 2048, generator=gen),
                "b": torch.zeros(embed_dim)},
               os.path.join(args.out, "Weights", "Agri_Dino_aligner_DPT_CPT.pth"))
    print(f"{args.out}: ResNet-50 (seed {args.seed}, BatchNorm of {len(paths)} photos at "
          f"{args.image_size} px), "
          f"aligner to {embed_dim}")


if __name__ == "__main__":
    main()
