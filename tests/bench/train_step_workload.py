#!/usr/bin/python3
"""finetune_bench.py — throughput of `finetune` steps beside PyTorch autograd.

  /usr/bin/python3 tests/bench/finetune_bench.py [--build build] [--rounds 5]
                                                 [--batch 32] [--steps 4]

The configuration of the issue: the last 2 blocks of a random ViT-B/32
(bench.py's model maker), ln_post and the projection, one training step =
forward keeping activations, class-weighted contrastive loss against fixed
class embeddings, backward, global-norm clipping, AdamW.  The frozen part
(patch embedding and the first 10 blocks) runs once per image before
training in both engines and is left out; it is reported on its own line,
from an `agriclip train --epochs 0` run.

- ours: tests/tools/finetune-step (agc_finetune_step) on one batch of hidden
  states; a run of 1 + N steps minus a run of 1 step, divided by N, so that
  process start, reading and writing the weights drop out.
- PyTorch: the same float32 weights and hidden states, the same step with
  autograd, torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW, timed in
  process after one warm-up step, at its best OMP_NUM_THREADS (1 .. cores).

Rounds alternate the engines; medians over rounds, images/s = batch / step
time.  The machine is shared: read the spread.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "reference"))
sys.path.insert(0, HERE)

K_BLOCKS, N_CLASSES = 2, 8
HP = dict(lr=1e-5, weight_decay=0.1, warmup=0, total_steps=1000, clip_norm=1.0,
          logit_scale=100.0, alpha=1.0, eps=1e-5)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_inputs(model_dir, path, batch):
    """finetune-step's IN file: the last K blocks fused, head, hidden, text."""
    import torch
    import torch.nn.functional as F
    import clip_twin

    with open(os.path.join(model_dir, "config.json")) as f:
        vision = json.load(f)["vision_config"]
    layers, heads = vision["num_hidden_layers"], vision["num_attention_heads"]
    w = clip_twin.read_model_weights(model_dir)
    g = torch.Generator().manual_seed(5)
    tensors = {}
    names = {"ln1_weight": "layer_norm1.weight", "ln1_bias": "layer_norm1.bias",
             "out_weight": "self_attn.out_proj.weight", "out_bias": "self_attn.out_proj.bias",
             "ln2_weight": "layer_norm2.weight", "ln2_bias": "layer_norm2.bias",
             "fc1_weight": "mlp.fc1.weight", "fc1_bias": "mlp.fc1.bias",
             "fc2_weight": "mlp.fc2.weight", "fc2_bias": "mlp.fc2.bias"}
    for k in range(K_BLOCKS):
        p = "vision_model.encoder.layers.%d." % (layers - K_BLOCKS + k)
        for ours, hf in names.items():
            tensors["blocks.%d.%s" % (k, ours)] = w[p + hf].float()
        tensors["blocks.%d.qkv_weight" % k] = torch.cat(
            [w[p + "self_attn.%s_proj.weight" % n] for n in "qkv"]).float()
        tensors["blocks.%d.qkv_bias" % k] = torch.cat(
            [w[p + "self_attn.%s_proj.bias" % n] for n in "qkv"]).float()
    tensors["post_ln_weight"] = w["vision_model.post_layernorm.weight"].float()
    tensors["post_ln_bias"] = w["vision_model.post_layernorm.bias"].float()
    tensors["projection"] = w["visual_projection.weight"].float()
    d = tensors["post_ln_weight"].shape[0]
    e = tensors["projection"].shape[0]
    t = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
    tensors["hidden"] = torch.randn(batch * t, d, generator=g)
    tensors["text"] = F.normalize(torch.randn(N_CLASSES, e, generator=g), dim=-1)
    tensors["labels"] = torch.arange(batch) % N_CLASSES
    tensors["class_weights"] = torch.ones(N_CLASSES)
    meta = {k: repr(v) for k, v in HP.items()}
    meta.update(batch=str(batch), heads=str(heads), act=vision.get("hidden_act", "quick_gelu"),
                n_blocks=str(K_BLOCKS))
    clip_twin.write_safetensors(path, tensors, metadata=meta)


def set_steps(src, dst, steps):
    """A copy of IN with another step count."""
    import clip_twin
    tensors = clip_twin.read_safetensors(src)
    with open(src, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    meta["steps"] = str(steps)
    clip_twin.write_safetensors(dst, tensors, metadata=meta)


def time_ours(tool, inputs, n_steps, work):
    """Seconds per step: (1 + N steps) - (1 step), over N."""
    times = {}
    for name, path in inputs.items():
        started = time.perf_counter()
        subprocess.run([tool, path, os.path.join(work, "out.safetensors")], check=True)
        times[name] = time.perf_counter() - started
    return (times["long"] - times["short"]) / n_steps


def torch_worker(path, steps, threads):
    """In a fresh process: seconds per step of the PyTorch twin of finetune-step."""
    import torch
    import torch.nn.functional as F
    import clip_twin
    from test_backward import BLOCK_NAMES, block

    torch.set_num_threads(threads)
    src = clip_twin.read_safetensors(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    batch, heads, act = int(meta["batch"]), int(meta["heads"]), meta["act"]
    params = {k: v.clone().requires_grad_() for k, v in src.items()
              if k.startswith("blocks.") or k in ("post_ln_weight", "post_ln_bias", "projection")}
    decay = [p for k, p in params.items() if k.endswith("_weight") and "ln" not in k
             or k == "projection"]
    no_decay = [p for p in params.values() if not any(p is q for q in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=HP["lr"])
    hidden, text, labels = src["hidden"], src["text"], src["labels"]
    d = hidden.shape[1]
    t = hidden.shape[0] // batch

    def step():
        opt.zero_grad()
        x = hidden
        for k in range(K_BLOCKS):
            x = block(x, {n: params["blocks.%d.%s" % (k, n)] for n in BLOCK_NAMES}, batch, heads,
                      act, False, HP["eps"])
        pooled = F.layer_norm(x.view(batch, t, d)[:, 0], (d,), params["post_ln_weight"],
                              params["post_ln_bias"], HP["eps"])
        emb = F.normalize(pooled @ params["projection"].T, dim=-1)
        loss = F.cross_entropy(HP["logit_scale"] * emb @ text.T, labels,
                               weight=src["class_weights"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), HP["clip_norm"])
        opt.step()

    step()  # warm-up: allocations, AdamW state
    started = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"seconds_per_step": (time.perf_counter() - started) / steps}))


def time_torch(path, steps, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([HERE, os.path.join(SOURCE, "tests", "reference")]))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", path,
                          "--steps", str(steps), "--threads", str(threads)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.splitlines()[-1])["seconds_per_step"]


def frozen_forward(agriclip, model, work, n_images):
    """Images/s of the frozen part alone: `agriclip train --epochs 0` on n images
    (decode, preprocess, patch embedding, the first L - 2 blocks, the class
    embeddings of the prompts), minus nothing: an upper bound of its cost."""
    import numpy as np
    from PIL import Image
    data = os.path.join(work, "frozen-data")
    if not os.path.isdir(data):
        rng = np.random.default_rng(1)
        for c in range(2):
            os.makedirs(os.path.join(data, "tag%d" % c))
            for i in range(n_images // 2):
                Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(
                    os.path.join(data, "tag%d" % c, "%03d.png" % i))
    out = os.path.join(work, "frozen.safetensors")
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "cache"))
    started = time.perf_counter()
    subprocess.run([agriclip, "train", "--model", model, "--data", data, "--out", out,
                    "--method", "finetune", "--epochs", "0", "--restart"], check=True,
                   capture_output=True, env=env)
    return n_images / (time.perf_counter() - started)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--work", default=None, help="model folder cache (default BUILD/bench-work)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.steps, args.threads)
        return

    import bench
    work = args.work or os.path.join(args.build, "bench-work")
    os.makedirs(work, exist_ok=True)
    bench.make_models(work, ["b32"])
    model = os.path.join(work, "b32")
    tool = os.path.join(args.build, "tests", "tools", "finetune-step")
    agriclip = os.path.join(args.build, "cli", "agriclip")
    tmp = tempfile.mkdtemp(prefix="agc-ft-bench-", dir=work)
    base = os.path.join(tmp, "in.safetensors")
    make_inputs(model, base, args.batch)
    inputs = {"short": os.path.join(tmp, "short.safetensors"),
              "long": os.path.join(tmp, "long.safetensors")}
    set_steps(base, inputs["short"], 1)
    set_steps(base, inputs["long"], 1 + args.steps)

    cores = os.cpu_count() or 1
    log("calibrating PyTorch threads (1 .. %d)" % cores)
    calib = {n: time_torch(base, 2, n) for n in range(1, cores + 1)}
    best = min(calib, key=calib.get)
    log("PyTorch best OMP_NUM_THREADS = %d (%s)" % (
        best, ", ".join("%d: %.3f s" % kv for kv in calib.items())))

    ours, theirs = [], []
    for r in range(args.rounds):
        pair = [("ours", lambda: time_ours(tool, inputs, args.steps, tmp)),
                ("torch", lambda: time_torch(base, args.steps, best))]
        if r % 2:
            pair.reverse()
        for name, fn in pair:
            (ours if name == "ours" else theirs).append(fn())
        log("round %d: ours %.3f s/step, PyTorch %.3f s/step" % (r + 1, ours[-1], theirs[-1]))

    def summary(xs):
        m = statistics.median(xs)
        return m, (max(xs) - min(xs)) / m

    (m_ours, s_ours), (m_torch, s_torch) = summary(ours), summary(theirs)
    frozen = frozen_forward(agriclip, model, tmp, 32)
    print("finetune step, last %d blocks of ViT-B/32 + ln_post + projection, batch %d, %d cores"
          % (K_BLOCKS, args.batch, cores))
    print("  %-28s %8.1f images/s  (%.3f s/step, spread %.0f %%)" % (
        "agriclip (agc_finetune_step)", args.batch / m_ours, m_ours, 100 * s_ours))
    print("  %-28s %8.1f images/s  (%.3f s/step, spread %.0f %%, OMP_NUM_THREADS=%d)" % (
        "PyTorch autograd + AdamW", args.batch / m_torch, m_torch, 100 * s_torch, best))
    print("  ratio agriclip / PyTorch: %.2f" % (m_torch / m_ours))
    print("frozen part (train --epochs 0: decode, preprocess, 10 blocks, prompts): %.1f images/s"
          % frozen)


if __name__ == "__main__":
    main()
