#!/usr/bin/python3
"""tag_torch.py — the PyTorch way of tagging a folder of photos, for
bench.py's tag workload: Pillow decodes, torchvision transforms (Resize
bicubic to the shorter side, CenterCrop, ToTensor, Normalize), a DataLoader
with worker processes, the same model (clip_torch.py) at the same batch,
zero-shot probabilities and the top labels.  Prints one JSON line:
{"what": "tag", "n": images, "seconds": the pass over the folder}.

  tag_torch.py --model DIR --photos DIR --prompts FILE --batch 8 --workers 2 --threads 2
"""

import argparse
import json
import os
import sys
import time

import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_torch  # noqa: E402
import clip_twin  # noqa: E402


class Photos(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--photos", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--classes", type=int, default=38,
                        help="the first N prompts, one per class (as the tag side's label set)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    vision, text, config = clip_torch.load(args.model)
    size = config["vision_config"].get("image_size", 224)
    with open(args.prompts) as f:
        prompts = [line.strip() for line in f if line.strip()][:args.classes]
    with torch.inference_mode():
        classes = text(clip_twin.tokenize(prompts))
        classes = classes / classes.norm(dim=-1, keepdim=True)
    transform = transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize(clip_twin.CLIP_MEAN, clip_twin.CLIP_STD)])
    paths = sorted(os.path.join(args.photos, n) for n in os.listdir(args.photos)
                   if n.endswith(".jpg"))
    loader = torch.utils.data.DataLoader(Photos(paths, transform), batch_size=args.batch,
                                         num_workers=args.workers)
    started = time.perf_counter()
    n = 0
    with torch.inference_mode():
        for batch in loader:
            image = vision(batch)
            image = image / image.norm(dim=-1, keepdim=True)
            probs = torch.softmax(100 * image @ classes.T, dim=-1)
            probs.topk(min(5, probs.shape[1]), dim=-1)
            n += batch.shape[0]
    print(json.dumps({"what": "tag", "n": n, "seconds": time.perf_counter() - started,
                      "threads": torch.get_num_threads(), "workers": args.workers}), flush=True)


if __name__ == "__main__":
    main()
