"""photos_workload.py — bench.py's photos workload (issue 18): images per
second of `agriclip classify` on a folder of 12-megapixel JPEGs (what phones
and field cameras make), exact and with --fast-decode, beside the PyTorch
pipeline of tag_torch.py (Pillow + torchvision transforms in a DataLoader
with workers + the same model), as ratios; the peak RSS of ours on two
folder sizes (it must not grow with the folder); the cosine of the
--fast-decode embeddings to the full decode's.

Our rate excludes start-up (model loading, the class embeddings): it is
(N - 8) images over the difference between a run on N photos and a run on
the first 8.  Rounds alternate the engines; medians and spread (min-max)."""

import json
import os
import shutil
import statistics
import subprocess
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO_SIZE = (4000, 3000)  # 12 MP, 4:3
ORIENTED = 4  # every 4th photo is stored sideways with EXIF orientation 6, as phones do


def photo(rng, w, h):
    """A field-like picture: smooth colour fields, leaf-like blobs, fine texture, sensor noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(w, h)
    phase = rng.uniform(0, 6.28, 3)
    freq = rng.uniform(3, 9, 2)
    base = np.stack([np.sin(freq[0] * xx + phase[c]) * np.cos(freq[1] * yy + phase[c])
                     for c in range(3)], axis=-1) * 50 + rng.uniform(70, 150, 3)
    for _ in range(12):  # blobs with edges
        cx, cy, r = rng.uniform(0, w / max(w, h)), rng.uniform(0, h / max(w, h)), rng.uniform(.03, .12)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        base[mask] = base[mask] * 0.5 + rng.uniform(20, 200, 3) * 0.5
    texture = np.sin(250 * xx * (1 + 0.2 * np.sin(40 * yy))) * 10  # fine stripes (veins, rows)
    base += texture[..., None]
    return np.clip(base + rng.normal(0, 6, base.shape).astype(np.float32), 0, 255).astype(np.uint8)


def make_photos(folder, n):
    """The scene is drawn at a quarter of the size and enlarged (cheap), then
    full-resolution sensor noise (one field, shifted per photo) is added."""
    from PIL import Image
    stamp = os.path.join(folder, f".complete-{n}")
    if os.path.exists(stamp):
        return
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(18)
    w, h = PHOTO_SIZE
    grain = rng.integers(-7, 8, (h, w, 3), dtype=np.int16)
    for i in range(n):
        path = os.path.join(folder, f"{i:04d}.jpg")
        scene = Image.fromarray(photo(rng, w // 4, h // 4)).resize((w, h), Image.BICUBIC)
        pixels = np.asarray(scene, dtype=np.int16) + np.roll(grain, 37 * i, axis=1)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        if i % ORIENTED == 1:  # stored 3000 x 4000, shown upright by orientation 6
            exif = Image.Exif()
            exif[0x0112] = 6
            image.transpose(Image.ROTATE_90).save(path, quality=90, exif=exif.tobytes())
        else:
            image.save(path, quality=90)
    open(stamp, "w").close()


def subset(photos, folder, n):
    if not os.path.exists(os.path.join(folder, f".complete-{n}")):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name in sorted(f for f in os.listdir(photos) if f.endswith(".jpg"))[:n]:
            os.symlink(os.path.join(photos, name), os.path.join(folder, name))
        open(os.path.join(folder, f".complete-{n}"), "w").close()


def timed(cmd, env):
    """(seconds, stdout) of one process."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return seconds, proc.stdout


def peak_rss(cmd, env):
    """Peak RSS (MiB) of cmd, from GNU time."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True,
                          env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def embeddings(agriclip, model, files, extra, env):
    cmd = [agriclip, "embed", "--model", model, *extra]
    for f in files:
        cmd += ["-i", f]
    _, stdout = timed(cmd, env)
    return np.array([json.loads(l)["embedding"] for l in stdout.splitlines()], dtype=np.float64)


def spread(v):
    return f"{min(v):.2f}-{max(v):.2f}"


def run(args, model, work, prompts_path, log):
    n = args.photos
    photos = os.path.join(work, "photos-12mp")
    small, first = os.path.join(work, "photos-12mp-half"), os.path.join(work, "photos-12mp-8")
    log(f"making {n} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} in {photos} (once) …")
    make_photos(photos, n)
    subset(photos, first, 8)
    subset(photos, small, n // 2)
    with open(prompts_path) as f:
        names = [line.strip() for line in f if line.strip()][:38]
    labels = os.path.join(work, "photos-labels.json")
    with open(labels, "w") as f:
        json.dump({"id": "bench", "title": "bench", "templates": ["{}"],
                   "classes": [{"name": f"c{i}", "display": t} for i, t in enumerate(names)]}, f)
    env = dict(os.environ, AGRICLIP_NO_CLASS_CACHE="1")
    threads = str(args.threads)
    modes = {"exact": [], "fast": ["--fast-decode"]}
    rates = {"exact": [], "fast": [], "torch": []}
    for r in range(args.rounds):
        order = ["exact", "fast", "torch"]
        order = order[r % 3:] + order[:r % 3]
        for engine in order:
            if engine == "torch":
                torch_env = dict(env, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS="1")
                _, stdout = timed(["/usr/bin/python3", os.path.join(HERE, "tag_torch.py"),
                                   "--model", model, "--photos", photos, "--prompts",
                                   prompts_path, "--batch", "8", "--workers",
                                   str(args.tag_workers), "--threads", threads], torch_env)
                result = json.loads(stdout.strip().splitlines()[-1])
                rates["torch"].append(result["n"] / result["seconds"])
                continue
            cmd = [args.agriclip, "classify", "--model", model, "--labels", labels,
                   *modes[engine]]
            t_all, _ = timed(cmd + [photos], env)
            t_8, _ = timed(cmd + [first], env)
            rates[engine].append((n - 8) / (t_all - t_8))
        log(f"  photos round {r + 1}: exact {rates['exact'][-1]:.2f} images/s, --fast-decode "
            f"{rates['fast'][-1]:.2f}, PyTorch pipeline {rates['torch'][-1]:.2f}")
    rss = {}
    for engine in modes:
        cmd = [args.agriclip, "classify", "--model", model, "--labels", labels, *modes[engine]]
        rss[engine] = {"half": peak_rss(cmd + [small], env), "all": peak_rss(cmd + [photos], env)}
    files = sorted(os.path.join(small, f) for f in os.listdir(small) if f.endswith(".jpg"))
    exact = embeddings(args.agriclip, model, files, [], env)
    fast = embeddings(args.agriclip, model, files, ["--fast-decode"], env)
    cos = (exact * fast).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nphotos workload: {n} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} (quality 90, every "
          f"{ORIENTED}th EXIF-rotated), `agriclip classify` batch 8, {threads} threads; medians "
          f"of {args.rounds} rounds (images/s, spread min-max)")
    print(f"  PyTorch pipeline ({args.tag_workers} workers) {med['torch']:8.2f}  "
          f"({spread(rates['torch'])})")
    for k, goal in (("exact", 3), ("fast", 10)):
        name = "agriclip exact" if k == "exact" else "agriclip --fast-decode"
        print(f"  {name:<28}{med[k]:8.2f}  ({spread(rates[k])})  x{med[k] / med['torch']:.2f} "
              f"PyTorch (goal >= {goal}x)")
    for k in modes:
        print(f"  peak RSS {k:<6}: {rss[k]['half']:.0f} MiB on {n // 2} photos, "
              f"{rss[k]['all']:.0f} MiB on {n}")
    print(f"  --fast-decode vs full decode, embedding cosine over {len(files)} photos: "
          f"min {cos.min():.6f}, median {np.median(cos):.6f}")
    return {"images": n, "rates": rates, "medians": med, "peak_rss_mib": rss,
            "fast_cosine": cos.tolist()}
