"""tag_workload.py — bench.py's tag workload (issue 14): images per second
of `agriclip tag` on a folder of ~1 MP JPEGs, beside the encoder alone at
the same batch (`agriclip bench --batch 8`: the goal is within 15 %) and
beside the PyTorch pipeline of tag_torch.py (Pillow + torchvision in a
DataLoader with workers + the same model), as ratios.

`agriclip tag`'s rate excludes its start-up (model loading, the class
embeddings): it is (N - 8) images over the difference between a run on N
photos and a run on the first 8.  Rounds alternate the three; medians."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO_SIZE = (1152, 864)  # ~1 MP, 4:3


def make_photos(folder, n):
    """n JPEGs of field-like texture: smooth colour fields plus noise."""
    from PIL import Image
    stamp = os.path.join(folder, f".complete-{n}")
    if os.path.exists(stamp):
        return
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(14)
    w, h = PHOTO_SIZE
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    for i in range(n):
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack([np.sin(7 * xx + phase[c]) * np.cos(5 * yy + phase[c]) for c in range(3)],
                        axis=-1) * 60 + rng.uniform(60, 160, 3)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i:04d}.jpg"), quality=90)
    open(stamp, "w").close()


def timed(cmd, env):
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - started, proc.stdout


def run(args, model, work, prompts_path, log):
    n = args.tag_images
    photos = os.path.join(work, "tag-photos")
    first = os.path.join(work, "tag-photos-8")
    make_photos(photos, n)
    if not os.path.exists(first):
        os.makedirs(first)
        for name in sorted(os.listdir(photos))[:8]:
            if name.endswith(".jpg"):
                os.symlink(os.path.join(photos, name), os.path.join(first, name))
    with open(prompts_path) as f:
        names = [line.strip() for line in f if line.strip()][:38]
    labels = os.path.join(work, "tag-labels.json")
    with open(labels, "w") as f:
        json.dump({"id": "bench", "title": "bench", "templates": ["{}"],
                   "classes": [{"name": f"c{i}", "display": t} for i, t in enumerate(names)]}, f)
    env = dict(os.environ, AGRICLIP_NO_CLASS_CACHE="1")
    threads = str(args.threads)
    rates = {"tag": [], "encoder": [], "torch": []}
    for r in range(args.rounds):
        out = os.path.join(work, "tag-run")
        tag = [args.agriclip, "tag", "--threads", threads, "--model", model, "--labels", labels]
        shutil.rmtree(out, ignore_errors=True)
        t_all, _ = timed(tag + ["--out", out, photos], env)
        shutil.rmtree(out, ignore_errors=True)
        t_8, _ = timed(tag + ["--out", out, first], env)
        shutil.rmtree(out, ignore_errors=True)
        rates["tag"].append((n - 8) / (t_all - t_8))
        _, stdout = timed([args.agriclip, "bench", "--model", model, "--threads", threads,
                           "--batch", "8", "--no-text", "--no-floor", "--iterations",
                           str(args.iterations)], env)
        image = [json.loads(l) for l in stdout.splitlines() if '"image"' in l][0]
        rates["encoder"].append(8 / image["median_s"])
        torch_env = dict(env, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS="1")
        _, stdout = timed(["/usr/bin/python3", os.path.join(HERE, "tag_torch.py"), "--model",
                           model, "--photos", photos, "--prompts", prompts_path, "--batch", "8",
                           "--workers", str(args.tag_workers), "--threads", threads], torch_env)
        result = json.loads(stdout.strip().splitlines()[-1])
        rates["torch"].append(result["n"] / result["seconds"])
        log(f"  tag round {r + 1}: agriclip tag {rates['tag'][-1]:.2f} images/s, encoder "
            f"{rates['encoder'][-1]:.2f}, PyTorch pipeline {rates['torch'][-1]:.2f}")
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\ntag workload: {n} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, batch 8, "
          f"{threads} threads, medians of {args.rounds} rounds (images/s)")
    print(f"  agriclip tag        {med['tag']:8.2f}")
    print(f"  encoder alone       {med['encoder']:8.2f}   tag / encoder = "
          f"{med['tag'] / med['encoder']:.3f} (goal >= 0.85)")
    print(f"  PyTorch pipeline    {med['torch']:8.2f}   tag / PyTorch = "
          f"{med['tag'] / med['torch']:.3f}")
    return {"images": n, "rates": rates, "medians": med}
