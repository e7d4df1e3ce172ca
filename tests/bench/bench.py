#!/usr/bin/python3
"""bench.py — libagriclip beside PyTorch and ONNX Runtime, on one machine, in one run.

  /usr/bin/python3 tests/bench/bench.py [--build build-perf] [--rounds 5]

1. Makes (once, in --work) random Hugging Face CLIP folders with the real
   shapes: ViT-B/32 and ViT-B/16 in float32, ViT-B/16 in float16.
2. Writes the inputs: 8 preprocessed images (raw float32) and the zero-shot
   prompts of 38 PlantVillage classes x 7 templates.
3. Finds PyTorch's best thread setting per workload (OMP_NUM_THREADS x
   OPENBLAS_NUM_THREADS; oversubscribing both is not a fair comparison) and
   ONNX Runtime's best intra-op thread count.
4. Runs rounds in which the engines alternate (the order rotates), each a
   fresh process timing image batches 1 and 8 and the prompts in-process;
   the project also times its GEMMs alone (`agriclip bench`'s floor).
5. Prints medians over rounds, their spread, and the ratios; checks that the
   project's embeddings match PyTorch's; measures opening time and peak
   memory.  --json writes everything.

ONNX Runtime runs where the Debian 13 root of tools/debian13-root.sh is
installed with python3-onnxruntime and python3-onnx: the model is exported
there with its PyTorch 2.6.  The work folder must then lie inside the source
tree (the root sees only that).  Other engineers' jobs on the same machine
show as spread between rounds: read the medians, and rerun when the spread
is large.
"""

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "reference"))

MODELS = {
    # name: make_model arguments (OpenAI ViT-B shapes; the text tower is the same for both)
    "b32": dict(patch_size=32, dtype="F32"),
    "b16": dict(patch_size=16, dtype="F32"),
    "b16-f16": dict(patch_size=16, dtype="F16"),
}
COMMON = dict(seed=1, text_width=512, text_layers=12, text_heads=8, vision_width=768,
              vision_layers=12, vision_heads=12, image_size=224, projection_dim=512)
N_TEMPLATES = 7


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_models(work, names):
    import clip_twin
    for name in names:
        folder = os.path.join(work, name)
        stamp = os.path.join(folder, ".complete")
        if not os.path.exists(stamp):
            log(f"making the random {name} model in {folder} …")
            clip_twin.make_model(folder, **COMMON, **MODELS[name])
            open(stamp, "w").close()


def make_inputs(work):
    pixels = os.path.join(work, "pixels.f32")
    rng = np.random.default_rng(0)
    rng.standard_normal((8, 3, 224, 224), dtype=np.float32).clip(-2, 2).tofile(pixels)
    with open(os.path.join(SOURCE, "models", "labels", "plantvillage.json")) as f:
        labels = json.load(f)
    prompts = [t.replace("{}", c.get("text", c["display"]))
               for c in labels["classes"] for t in labels["templates"][:N_TEMPLATES]]
    path = os.path.join(work, "prompts.txt")
    with open(path, "w") as f:
        f.write("\n".join(prompts) + "\n")
    return pixels, path, len(prompts)


def run_json(cmd, env=None, timeout=3600):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}… failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


class Engines:
    def __init__(self, args, pixels, prompts):
        self.args, self.pixels, self.prompts = args, pixels, prompts
        self.env = dict(os.environ)
        if args.openblas_core == "auto":
            self.env.pop("OPENBLAS_CORETYPE", None)
        elif args.openblas_core:
            self.env["OPENBLAS_CORETYPE"] = args.openblas_core
        self.root = os.path.join(SOURCE, "tools", "debian13-root.sh")

    def project(self, model, texts, extra=()):
        cmd = [self.args.agriclip, "bench", "--model", model, "--pixels", self.pixels,
               "--iterations", str(self.args.iterations), "--threads", str(self.args.threads)]
        cmd += ["--prompts", self.prompts] if texts else ["--no-text"]
        return run_json(cmd + list(extra), env=self.env)

    def torch(self, model, omp, blas, what, iterations=None, extra=()):
        env = dict(self.env, OMP_NUM_THREADS=str(omp), OPENBLAS_NUM_THREADS=str(blas))
        cmd = ["/usr/bin/python3", os.path.join(HERE, "engine.py"), "torch", "--model", model,
               "--pixels", self.pixels, "--prompts", self.prompts, "--threads", str(omp),
               "--iterations", str(iterations or self.args.iterations)]
        cmd += ["--no-text"] if "texts" not in what else []
        cmd += ["--no-image"] if "image" not in what else []
        return run_json(cmd + list(extra), env=env)

    def ort_available(self):
        if self.args.no_ort or not os.path.exists(self.root):
            return False
        if not os.path.abspath(self.args.work).startswith(SOURCE + os.sep):
            log("ONNX Runtime skipped: --work must be inside the source tree for the Debian 13 root")
            return False
        try:
            subprocess.run([self.root, "run", "python3", "-c", "import onnxruntime, onnx"],
                           check=True, capture_output=True, timeout=600)
            return True
        except (subprocess.SubprocessError, OSError) as e:
            log(f"ONNX Runtime skipped: the Debian 13 root has no python3-onnxruntime ({e})")
            return False

    def export(self, model):
        onnx = model + "-onnx"
        if not os.path.exists(os.path.join(onnx, "meta.json")):
            log(f"exporting {model} to ONNX with the root's PyTorch …")
            subprocess.run([self.root, "run", "python3", os.path.join(HERE, "engine.py"), "export",
                            "--model", model, "--onnx", onnx], check=True, timeout=3600)
        return onnx

    def ort(self, onnx, model, threads, what, iterations=None, extra=()):
        cmd = [self.root, "run", "python3", os.path.join(HERE, "engine.py"), "ort",
               "--onnx", onnx, "--vocab", model, "--pixels", self.pixels, "--prompts", self.prompts,
               "--threads", str(threads), "--iterations", str(iterations or self.args.iterations)]
        cmd += ["--no-text"] if "texts" not in what else []
        cmd += ["--no-image"] if "image" not in what else []
        return run_json(cmd + list(extra))


def keyed(results):
    """{(what, n): median_s} and the info / memory lines of one run."""
    out = {}
    for r in results:
        if "median_s" in r:
            out[(r["what"], r["n"])] = r["median_s"]
        else:
            out[r["what"]] = r
    return out


def best_config(candidates, run):
    """{workload key: (config, median)} over candidate configs, each run once."""
    best = {}
    for config in candidates:
        for key, median in keyed(run(config)).items():
            if isinstance(key, tuple) and (key not in best or median < best[key][1]):
                best[key] = (config, median)
    return best


def cosine_check(a_path, b_path, dim):
    a = np.fromfile(a_path, dtype=np.float32).reshape(-1, dim).astype(np.float64)
    b = np.fromfile(b_path, dtype=np.float32).reshape(-1, dim).astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    rel = np.abs(a - b).max() / np.abs(b).max()
    return float(cos.min()), float(rel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(SOURCE, "build-perf"))
    parser.add_argument("--agriclip", help="default: BUILD/cli/agriclip")
    parser.add_argument("--work", help="models and inputs (default: BUILD/bench-work)")
    parser.add_argument("--models", default="b32,b16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=5, help="timed calls per run")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--openblas-core", default="",
                        help="'auto': let OpenBLAS detect the CPU (drops OPENBLAS_CORETYPE); "
                             "NAME: force it for every engine; default: the environment's")
    parser.add_argument("--no-ort", action="store_true")
    parser.add_argument("--no-texts", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    args.agriclip = args.agriclip or os.path.join(args.build, "cli", "agriclip")
    args.work = os.path.abspath(args.work or os.path.join(args.build, "bench-work"))
    os.makedirs(args.work, exist_ok=True)

    names = args.models.split(",")
    make_models(args.work, sorted(set(names) | {"b16-f16"}))
    pixels, prompts, n_prompts = make_inputs(args.work)
    eng = Engines(args, pixels, prompts)
    use_ort = eng.ort_available()
    threads = range(1, args.threads + 1)
    summary = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.processor() or
               platform.machine(), "cpus": os.cpu_count(), "prompts": n_prompts, "models": {}}
    with open("/proc/cpuinfo") as f:
        summary["machine"] = next((l.split(":", 1)[1].strip() for l in f
                                   if l.startswith("model name")), summary["machine"])
    print(f"{summary['machine']}, {summary['cpus']} CPUs, {summary['date']}; medians over "
          f"{args.rounds} rounds, ms per item (± spread between rounds)", flush=True)

    for name in names:
        model = os.path.join(args.work, name)
        texts = not args.no_texts and name == names[0]  # one text tower for both models
        what = ("image", "texts") if texts else ("image",)
        onnx = eng.export(model) if use_ort else None

        log(f"[{name}] calibrating thread settings …")
        # texts: the best setting for a seventh of the prompts (the full set
        # takes PyTorch a minute or more per call on two cores)
        sub = ["--text-limit", str(n_prompts // N_TEMPLATES)]
        torch_best = best_config(
            list(itertools.product(threads, threads)),
            lambda c: eng.torch(model, c[0], c[1], what, iterations=2, extra=sub))
        ort_best = best_config(
            threads, lambda t: eng.ort(onnx, model, t, what, iterations=2, extra=sub)) \
            if use_ort else {}
        for best in (torch_best, ort_best):
            for key in [k for k in best if k[0] == "texts"]:
                best[("texts", n_prompts)] = best.pop(key)

        runs = {"project": [], "torch": [], "ort": []}
        for r in range(args.rounds):
            order = ["project", "torch"] + (["ort"] if use_ort else [])
            order = order[r % len(order):] + order[:r % len(order)]
            log(f"[{name}] round {r + 1}/{args.rounds}: {' → '.join(order)}")
            for engine in order:
                if engine == "project":
                    runs["project"].append(keyed(eng.project(model, texts)))
                    continue
                best = torch_best if engine == "torch" else ort_best
                merged = {}
                # one process per distinct best setting, timing its workloads
                for config in sorted({c for c, _ in best.values()}, key=str):
                    wl = {k[0] for k, (c, _) in best.items() if c == config}
                    res = (eng.torch(model, config[0], config[1], wl) if engine == "torch"
                           else eng.ort(onnx, model, config, wl))
                    merged.update({k: v for k, v in keyed(res).items()
                                   if isinstance(k, tuple) and best[k][0] == config})
                runs[engine].append(merged)

        def med(engine, key):
            vals = [r[key] for r in runs[engine] if key in r]
            return (statistics.median(vals), (max(vals) - min(vals)) / statistics.median(vals)) \
                if vals else (None, None)

        result = {"torch_threads": {f"{k[0]}{k[1]}": f"OMP={c[0]} OPENBLAS={c[1]}"
                                    for k, (c, _) in torch_best.items()},
                  "ort_threads": {f"{k[0]}{k[1]}": c for k, (c, _) in ort_best.items()},
                  "rows": []}
        keys = [("image", 1), ("image", 8)] + ([("texts", n_prompts)] if texts else [])
        for key in keys:
            p, p_spread = med("project", key)
            t, t_spread = med("torch", key)
            o, o_spread = med("ort", key)
            f = med("project", ("image_floor", key[1]))[0] if key[0] == "image" else None
            row = {"what": key[0], "n": key[1], "project_ms": p * 1e3 / key[1],
                   "project_spread": p_spread,
                   "torch_ms": t and t * 1e3 / key[1], "torch_spread": t_spread,
                   "ort_ms": o and o * 1e3 / key[1], "ort_spread": o_spread,
                   "floor_ms": f and f * 1e3 / key[1]}
            row["torch_over_project"] = t and t / p
            row["ort_over_project"] = o and o / p
            row["project_over_floor"] = f and p / f
            result["rows"].append(row)
        result["open_s"] = statistics.median(r["info"]["load_s"] for r in runs["project"])
        result["openblas_core"] = runs["project"][0]["info"]["openblas_core"]

        # same embeddings as PyTorch on the same inputs
        dump_p, dump_t = os.path.join(args.work, name + "-project"), \
            os.path.join(args.work, name + "-torch")
        eng.project(model, texts, ["--dump", dump_p, "--no-floor", "--iterations", "1"])
        eng.torch(model, 1, args.threads, what, iterations=1, extra=["--dump", dump_t])
        result["image_min_cosine"], result["image_max_rel_error"] = cosine_check(
            dump_p + "-images.f32", dump_t + "-images.f32", 512)
        if texts:
            result["text_min_cosine"], result["text_max_rel_error"] = cosine_check(
                dump_p + "-texts.f32", dump_t + "-texts.f32", 512)
        summary["models"][name] = result
        print_model(name, result)  # as soon as known: a long run shows progress

    # memory and opening of the half-precision folder
    f16 = os.path.join(args.work, "b16-f16")
    mem = keyed(eng.project(f16, False, ["--batch", "8", "--no-floor", "--iterations", "1"]))
    file_mb = os.path.getsize(os.path.join(f16, "model.safetensors")) / 2**20
    summary["f16"] = {"peak_rss_mb": mem["memory"]["peak_rss_mb"], "file_mb": file_mb,
                      "limit_mb": 1.3 * file_mb + 300, "open_s": mem["info"]["load_s"],
                      "image_ms_b8": mem[("image", 8)] * 1e3 / 8}
    print_f16(summary)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


def fmt(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def print_model(name, m):
    print(f"\n{name}: OpenBLAS core {m['openblas_core']}, opened in {m['open_s']:.3f} s; "
          f"PyTorch threads {m['torch_threads']}; ONNX Runtime threads {m['ort_threads']}")
    print(f"  {'workload':<14}{'project':>16}{'GEMM floor':>11}{'PyTorch':>16}{'ONNX RT':>16}"
          f"{'PT/proj':>9}{'ORT/proj':>9}{'proj/floor':>11}")

    def cell(v, spread):
        return f"{fmt(v)} ±{fmt(spread and spread * 100, '.0f')}%" if v else "—"

    for r in m["rows"]:
        print(f"  {r['what'] + ' ' + str(r['n']):<14}"
              f"{cell(r['project_ms'], r['project_spread']):>16}{fmt(r['floor_ms']):>11}"
              f"{cell(r['torch_ms'], r['torch_spread']):>16}"
              f"{cell(r['ort_ms'], r['ort_spread']):>16}{fmt(r['torch_over_project'], '.2f'):>9}"
              f"{fmt(r['ort_over_project'], '.2f'):>9}{fmt(r['project_over_floor'], '.2f'):>11}")
    print(f"  embeddings vs PyTorch: image min cosine {m['image_min_cosine']:.7f}, "
          f"max rel error {m['image_max_rel_error']:.1e}" +
          (f"; text min cosine {m['text_min_cosine']:.7f}, max rel error "
           f"{m['text_max_rel_error']:.1e}" if "text_min_cosine" in m else ""), flush=True)


def print_f16(s):
    f = s["f16"]
    print(f"\nb16-f16: peak memory {f['peak_rss_mb']:.0f} MB for a {f['file_mb']:.0f} MB file "
          f"(limit {f['limit_mb']:.0f} MB), opened in {f['open_s']:.3f} s, "
          f"{f['image_ms_b8']:.1f} ms per image at batch 8")


if __name__ == "__main__":
    main()
