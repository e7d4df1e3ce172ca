#!/usr/bin/python3
"""An AgriCLIP-form model folder for experiments (the layout of
core/models/agriclip-model.c): a CLIP folder's files at the top (its text
tower and tokenizer: the text space), Weights/dino_pretrain.pth (a
torchvision ResNet-50 state dict without fc) and
Weights/Agri_Dino_aligner_DPT_CPT.pth ({'W': [E, 2048], 'b': [E]}).

  agriclip-model.py CLIP_DIR PHOTOS OUT [--seed N] [--image-size S]
                    [--backbone-data TAGGED [--backbone-epochs E]]

The ResNet-50 has torchvision's random initialisation (seed N), or, with
--backbone-data, is trained from it with the tags of TAGGED (one
sub-folder per class; cross-entropy through a linear head that is then
dropped; random resized crops and flips; AdamW with a cosine schedule, E
epochs): a stand-in for a backbone pretrained on the domain, which cannot
be downloaded here.  Its BatchNorm statistics are then measured on the
photos of PHOTOS (every image under it, preprocessed as AgriCLIP does:
resize S bilinear, centre crop S, ImageNet normalisation), as a network
trained on such photos would have them.  S is --image-size (224, AgriCLIP's); another size is written to
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

from leaf_photos import IMAGENET_MEAN_STD, measure_batchnorm, photos  # and tests/reference on the path
import clip_twin  # noqa: E402


def train_backbone(net, folder, size, epochs):
    """Supervised training of NET on the tagged FOLDER (sub-folder = class)."""
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    samples = [(Image.open(p).convert("RGB"), c) for c, name in enumerate(classes)
               for p in photos(os.path.join(folder, name))]
    augment = transforms.Compose([
        transforms.RandomResizedCrop(size, scale=(0.5, 1.0)), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(*IMAGENET_MEAN_STD)])
    net.fc = torch.nn.Linear(2048, len(classes))
    steps_per_epoch = (len(samples) + 63) // 64
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs * steps_per_epoch)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(samples)).tolist()
        total = right = 0
        for i in range(0, len(order), 64):
            batch = [samples[j] for j in order[i:i + 64]]
            x = torch.stack([augment(image) for image, _ in batch])
            y = torch.tensor([c for _, c in batch])
            logits = net(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += len(batch)
            right += int((logits.argmax(1) == y).sum())
        print(f"backbone epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, "
              f"training accuracy {right / total:.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clip_dir")
    parser.add_argument("photos")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-image-tower", action="store_true")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--backbone-data")
    parser.add_argument("--backbone-epochs", type=int, default=10)
    args = parser.parse_args()
    if os.path.exists(args.out):
        parser.error(f"{args.out} exists")
    with open(os.path.join(args.clip_dir, "config.json")) as f:
        embed_dim = json.load(f)["projection_dim"]

    torch.manual_seed(args.seed)
    net = torchvision.models.resnet50(weights=None)
    if args.backbone_data:
        train_backbone(net, args.backbone_data, args.image_size, args.backbone_epochs)
    net.fc = torch.nn.Identity()
    n_photos = measure_batchnorm(net, args.photos, args.image_size)
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
    trained = f"trained on {args.backbone_data}, " if args.backbone_data else ""
    print(f"{args.out}: ResNet-50 (seed {args.seed}, {trained}BatchNorm of {n_photos} photos at "
          f"{args.image_size} px), "
          f"aligner to {embed_dim}")


if __name__ == "__main__":
    main()
