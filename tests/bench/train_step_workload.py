#!/usr/bin/python3
"""train_step_workload.py — training steps beside PyTorch autograd (`bench.py --workload train-step`).

Two steps on the same shapes, float32 in both engines:

- finetune: the configuration of `agriclip train --method finetune`: the
  last 2 blocks of a random ViT-B/32 (bench.py's model maker), ln_post and
  the projection, batch --batch (32): forward keeping activations,
  class-weighted contrastive loss against fixed class embeddings, backward,
  global-norm clipping, AdamW (core/train/finetune.c, tests/tools/
  finetune-step).  The frozen part (patch embedding and the first 10
  blocks) runs once per image before training in both engines and is left
  out.
- pretrain: a whole small CLIP from scratch (core/train/clip-train.c,
  tests/tools/clip-train-step; `agriclip pretrain`'s step): both towers
  (PRETRAIN_MODEL), batch --pretrain-batch (32), captions filling the whole
  context (so that neither engine can skip positions), CLIP's symmetric
  loss with the learned scale, clipping, AdamW.

Ours: a run of 1 + N steps minus a run of 1 step, divided by N, so that
process start, reading and writing the weights drop out.  PyTorch: the same
weights and inputs, the same step with autograd, clip_grad_norm_ and
torch.optim.AdamW, timed in process after one warm-up step, at its best
OMP_NUM_THREADS (1 .. cores; calibrated once per step).  PyTorch 2.6 (the
Debian 13 root of tools/debian13-root.sh) joins with --torch26 when the
work folder lies inside the source tree.

--baseline AGRICLIP adds that build's tools (say, main before a change) as
one more engine: before/after ratios.

Rounds alternate the engines (the order rotating); medians over rounds, the
spread (max - min) / median, and the ratios PyTorch / ours.  The machine's
load average is printed before and after: the machine is shared.
"""

import json
import os
import platform
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
FINETUNE_HP = dict(lr=1e-5, weight_decay=0.1, warmup=0, total_steps=1000, clip_norm=1.0,
                   logit_scale=100.0, alpha=1.0, eps=1e-5)
# a small CLIP: 65 image tokens, 32 text positions, 4 + 4 blocks of width 256
PRETRAIN_MODEL = dict(image_size=64, patch=8, width=256, layers=4, heads=4, text_width=256,
                      text_layers=4, text_heads=4, context=32, vocab=49408, embed_dim=256,
                      act="quick_gelu")
PRETRAIN_HP = dict(lr=5e-4, weight_decay=0.1, warmup=0, total_steps=1000, clip_norm=1.0)
EOT = 49407
ROOT = os.path.join(SOURCE, "tools", "debian13-root.sh")


def read_meta(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))["__metadata__"]


def write_with_steps(src, dst, steps):
    """A copy of IN with another step count."""
    import clip_twin
    meta = read_meta(src)
    meta["steps"] = str(steps)
    clip_twin.write_safetensors(dst, clip_twin.read_safetensors(src), metadata=meta)


# ---- inputs ------------------------------------------------------------------------


def make_finetune_inputs(model_dir, path, batch):
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
    meta = {k: repr(v) for k, v in FINETUNE_HP.items()}
    meta.update(batch=str(batch), heads=str(heads), act=vision.get("hidden_act", "quick_gelu"),
                n_blocks=str(K_BLOCKS))
    clip_twin.write_safetensors(path, tensors, metadata=meta)


def make_pretrain_inputs(tool, path, batch):
    """clip-train-step's IN file: the library's own initialisation, random
    pixels, token ids filling the context and ending in EOT."""
    import torch
    import clip_twin
    import test_pretrain

    m = PRETRAIN_MODEL
    init_in, init_out = path + ".init-in", path + ".init-out"
    meta = {k: str(v) for k, v in m.items()}
    clip_twin.write_safetensors(init_in, {"unused": torch.zeros(1)},
                                metadata=dict(meta, op="init", seed="1"))
    subprocess.run([tool, init_in, init_out], check=True, capture_output=True)
    shapes = test_pretrain.tensor_shapes(m)
    weights = {k: v.reshape(shapes[k]) for k, v in clip_twin.read_safetensors(init_out).items()}
    os.remove(init_in)
    os.remove(init_out)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, EOT - 1, (batch, m["context"]), generator=g)
    ids[:, -1] = EOT
    weights["pixels"] = torch.randn(batch, 3, m["image_size"], m["image_size"], generator=g)
    weights["ids"] = ids
    meta.update({k: repr(v) for k, v in PRETRAIN_HP.items()})
    meta.update(op="step", shards="0", batch=str(batch))
    clip_twin.write_safetensors(path, weights, metadata=meta)


# ---- PyTorch ------------------------------------------------------------------------


def adamw(torch, named, decays, lr, weight_decay):
    decay = [p for k, p in named.items() if decays(k)]
    no_decay = [p for k, p in named.items() if not decays(k)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def torch_finetune_step(path):
    """The PyTorch twin of finetune-step: a function running one step."""
    import torch
    import torch.nn.functional as F
    import clip_twin
    from test_backward import BLOCK_NAMES, block

    src = clip_twin.read_safetensors(path)
    meta = read_meta(path)
    hp = FINETUNE_HP
    batch, heads, act = int(meta["batch"]), int(meta["heads"]), meta["act"]
    params = {k: v.clone().requires_grad_() for k, v in src.items()
              if k.startswith("blocks.") or k in ("post_ln_weight", "post_ln_bias", "projection")}
    opt = adamw(torch, params, lambda k: k.endswith("_weight") and "ln" not in k
                or k == "projection", hp["lr"], hp["weight_decay"])
    hidden, text, labels = src["hidden"], src["text"], src["labels"]
    d = hidden.shape[1]
    t = hidden.shape[0] // batch

    def step():
        opt.zero_grad()
        x = hidden
        for k in range(K_BLOCKS):
            x = block(x, {n: params["blocks.%d.%s" % (k, n)] for n in BLOCK_NAMES}, batch, heads,
                      act, False, hp["eps"])
        pooled = F.layer_norm(x.view(batch, t, d)[:, 0], (d,), params["post_ln_weight"],
                              params["post_ln_bias"], hp["eps"])
        emb = F.normalize(pooled @ params["projection"].T, dim=-1)
        loss = F.cross_entropy(hp["logit_scale"] * emb @ text.T, labels,
                               weight=src["class_weights"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), hp["clip_norm"])
        opt.step()
    return step


def torch_pretrain_step(path):
    """The PyTorch twin of clip-train-step's step: clip_torch's float32 CLIP
    (fused qkv, batched attention) with its weights made trainable."""
    import math
    import torch
    import torch.nn.functional as F
    import clip_twin
    import clip_torch
    import test_pretrain

    src = clip_twin.read_safetensors(path)
    m = PRETRAIN_MODEL
    config = test_pretrain.twin_config(m)
    vision_cfg = clip_twin._tower_config(config, "vision_config", clip_twin.VISION_DEFAULTS)
    text_cfg = clip_twin._tower_config(config, "text_config", clip_twin.TEXT_DEFAULTS)
    vision = clip_torch.VisionEncoder(src, vision_cfg)
    text = clip_torch.TextEncoder(src, text_cfg)
    params = {}
    for prefix, module in (("v.", vision), ("t.", text)):
        for name, buf in module.named_buffers():
            if name != "mask":
                params[prefix + name] = buf.requires_grad_()
    log_scale = src["logit_scale"].reshape(()).clone().requires_grad_()
    params["logit_scale"] = log_scale
    opt = adamw(torch, params, lambda k: k.endswith(("qkv_w", "out_w", "fc1_w", "fc2_w", "proj", "conv_w")), PRETRAIN_HP["lr"], PRETRAIN_HP["weight_decay"])
    pixels, ids = src["pixels"], src["ids"]
    labels = torch.arange(pixels.shape[0])

    def step():
        opt.zero_grad()
        image = F.normalize(vision(pixels), dim=-1)
        txt = F.normalize(text(ids), dim=-1)
        logits = log_scale.exp() * image @ txt.T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), PRETRAIN_HP["clip_norm"])
        opt.step()
        with torch.no_grad():
            log_scale.clamp_(0, math.log(100))
    return step


def torch_worker(which, path, steps, threads):
    """In a fresh process: seconds per step of the PyTorch twin."""
    import torch
    torch.set_num_threads(threads)
    step = (torch_finetune_step if which == "finetune" else torch_pretrain_step)(path)
    step()  # warm-up: allocations, AdamW state
    started = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"seconds_per_step": (time.perf_counter() - started) / steps,
                      "torch": torch.__version__}))


# ---- timing -------------------------------------------------------------------------


def time_ours(tool, short, long, n_steps, work):
    """Seconds per step: (1 + N steps) - (1 step), over N."""
    times = []
    for path in (short, long):
        started = time.perf_counter()
        subprocess.run([tool, path, os.path.join(work, "out.safetensors")], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - started)
    return (times[1] - times[0]) / n_steps


def time_torch(which, path, steps, threads, root=False):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([HERE, os.path.join(SOURCE, "tests", "reference")]))
    cmd = [os.path.abspath(__file__), "--torch-worker", which, path, "--steps", str(steps),
           "--threads", str(threads)]
    if root:
        cmd = [ROOT, "run", "env", "OMP_NUM_THREADS=%d" % threads,
               "PYTHONPATH=" + env["PYTHONPATH"], "python3"] + cmd
    else:
        cmd = ["/usr/bin/python3"] + cmd
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.splitlines()[-1])


def summary(xs):
    m = statistics.median(xs)
    return {"median_s": m, "spread": (max(xs) - min(xs)) / m, "runs_s": xs}


def run(args, model_b32, work, log):
    """bench.py --workload train-step: both steps, rounds alternating; returns the results."""
    build = os.path.dirname(os.path.dirname(args.agriclip))
    def tools_of(build):
        return {"finetune": os.path.join(build, "tests", "tools", "finetune-step"),
                "pretrain": os.path.join(build, "tests", "tools", "clip-train-step")}
    tools = tools_of(build)
    # --baseline AGRICLIP: that build's tools, one more engine (before/after)
    before = args.baseline and tools_of(os.path.dirname(os.path.dirname(args.baseline)))
    tmp = tempfile.mkdtemp(prefix="agc-train-step-", dir=work)
    inputs = {}
    for which in ("pretrain", "finetune"):
        base = os.path.join(tmp, which + ".safetensors")
        if which == "finetune":
            make_finetune_inputs(model_b32, base, args.batch)
        else:
            make_pretrain_inputs(tools["pretrain"], base, args.pretrain_batch)
        short, long = base + ".1", base + ".%d" % (1 + args.steps)
        write_with_steps(base, short, 1)
        write_with_steps(base, long, 1 + args.steps)
        inputs[which] = (base, short, long)
    torch26 = args.torch26 and os.path.exists(ROOT) and tmp.startswith(SOURCE + os.sep)
    if args.torch26 and not torch26:
        log("PyTorch 2.6 skipped: needs tools/debian13-root.sh's root and --work inside the "
            "source tree")

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    result = {"machine": platform.processor() or platform.machine(), "cpus": cores,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_before": load_before, "steps": {}}
    engines = ["ours"] + (["baseline"] if before else []) + ["torch"] + \
        (["torch26"] if torch26 else [])
    torches = [e for e in engines if e.startswith("torch")]
    for which, (base, short, long) in inputs.items():
        best = {}
        for engine in torches:
            if args.torch_threads:
                best[engine] = args.torch_threads
                continue
            calib = {n: time_torch(which, base, 1, n, engine == "torch26")["seconds_per_step"]
                     for n in range(1, cores + 1)}
            best[engine] = min(calib, key=calib.get)
            log("[%s] %s best OMP_NUM_THREADS = %d (%s)" % (
                which, engine, best[engine], ", ".join("%d: %.3f s" % kv for kv in calib.items())))
        times = {e: [] for e in engines}
        versions = {}
        for r in range(args.rounds):
            order = engines[r % len(engines):] + engines[:r % len(engines)]
            for e in order:
                if e in ("ours", "baseline"):
                    times[e].append(time_ours((tools if e == "ours" else before)[which], short,
                                              long, args.steps, tmp))
                else:
                    out = time_torch(which, base, args.steps, best[e], e == "torch26")
                    times[e].append(out["seconds_per_step"])
                    versions[e] = out["torch"]
            log("[%s] round %d/%d: %s" % (which, r + 1, args.rounds, ", ".join(
                "%s %.3f s/step" % (e, times[e][-1]) for e in engines)))
        res = {e: summary(times[e]) for e in engines}
        for e in engines[1:]:
            if e in best:
                res[e].update(threads=best[e], version=versions.get(e))
            res[e]["ratio"] = res[e]["median_s"] / res["ours"]["median_s"]
        res["batch"] = args.batch if which == "finetune" else args.pretrain_batch
        result["steps"][which] = res
    result["load_after"] = os.getloadavg()
    print_table(result)
    return result


def print_table(result):
    print("%s, %d CPUs, %s; load average %.1f before, %.1f after; medians over rounds "
          "(± spread)" % (result["machine"], result["cpus"], result["date"],
                          result["load_before"][0], result["load_after"][0]))
    names = {"finetune": "finetune, ViT-B/32 top %d blocks + head" % K_BLOCKS,
             "pretrain": "pretrain, small CLIP (%d+%d blocks of %d)" % (
                 PRETRAIN_MODEL["layers"], PRETRAIN_MODEL["text_layers"],
                 PRETRAIN_MODEL["width"])}
    for which, res in result["steps"].items():
        line = "  %-44s batch %2d: ours %.3f s/step ±%.0f%%" % (
            names[which], res["batch"], res["ours"]["median_s"], 100 * res["ours"]["spread"])
        if "baseline" in res:
            line += "; baseline build %.3f s/step ±%.0f%%: %.2fx" % (
                res["baseline"]["median_s"], 100 * res["baseline"]["spread"],
                res["baseline"]["ratio"])
        for e in ("torch", "torch26"):
            if e in res:
                line += "; PyTorch %s %.3f s/step ±%.0f%% (OMP %d): %.2fx" % (
                    res[e]["version"], res[e]["median_s"], 100 * res[e]["spread"],
                    res[e]["threads"], res[e]["ratio"])
        print(line, flush=True)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-worker", nargs=2, metavar=("STEP", "IN"), required=True)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch_worker(a.torch_worker[0], a.torch_worker[1], a.steps, a.threads)
