"""engine.py — one benchmark run of a reference engine, printing JSON lines
shaped like `agriclip bench`'s: {"what": "image", "n": 8, "median_s": …}.

  engine.py torch  --model DIR …           PyTorch (Debian's), float32 eager
  engine.py torch  --resnet FILE …         torchvision's ResNet-50 (no fc) on those weights
  engine.py export --model DIR --onnx DIR  writes vision.onnx and text.onnx
  engine.py export --resnet FILE --onnx DIR  writes vision.onnx (the ResNet-50, no text)
  engine.py ort    --onnx DIR …            ONNX Runtime on those files

Inputs are the files bench.py writes: --pixels (raw float32 [n, 3, S, S])
and --prompts (one text per line).  Texts are tokenized before timing, and
both engines run them over all 77 positions, as CLIP code usually does.
Thread settings come from the environment (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, set by bench.py before this process starts) and from
--threads (torch.set_num_threads, or ONNX Runtime's intra-op threads).
For the ResNet, --mkldnn and --channels-last pick PyTorch's convolution
path (oneDNN or its own im2col + BLAS; NCHW or NHWC tensors).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))


def read_inputs(args, image_size):
    pixels = np.fromfile(args.pixels, dtype=np.float32).reshape(-1, 3, image_size, image_size)
    texts = []
    if args.prompts:
        with open(args.prompts, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f if line.strip()]
        if args.text_limit:
            texts = texts[:args.text_limit]
    ids = None
    if texts:
        from clip_tokenizer_ref import ClipTokenizerRef
        vocab = args.vocab or os.path.join(args.model or args.onnx, "")
        tok = ClipTokenizerRef(vocab)
        ids = np.array([tok.encode(t) for t in texts], dtype=np.int64)
    return pixels, ids


def time_calls(fn, iterations, warm_up=None):
    (warm_up or fn)()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def report(what, n, median, times):
    print(json.dumps({"what": what, "n": n, "median_s": median, "times_s": times}), flush=True)


def run_all(args, encode_images, encode_texts, pixels, ids):
    for n in [int(b) for b in args.batch.split(",")]:
        if n <= len(pixels) and not args.no_image:
            batch = pixels[:n]
            report("image", n, *time_calls(lambda: encode_images(batch), args.iterations))
    if ids is not None and not args.no_text:
        # a long call: warm up on a few texts, time --text-iterations calls
        report("texts", len(ids), *time_calls(lambda: encode_texts(ids), args.text_iterations,
                                              lambda: encode_texts(ids[:8])))
    if args.dump:
        np.asarray(encode_images(pixels), dtype=np.float32).tofile(args.dump + "-images.f32")
        if ids is not None:
            np.asarray(encode_texts(ids), dtype=np.float32).tofile(args.dump + "-texts.f32")


def image_size_of(model_dir):
    import clip_twin
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    return clip_twin._tower_config(config, "vision_config", clip_twin.VISION_DEFAULTS)["image_size"]


RESNET_IMAGE_SIZE = 224


def load_resnet(path):
    """torchvision's ResNet-50 without fc, eval mode, on the weights in path."""
    import torch
    import torchvision
    from clip_twin import read_safetensors
    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    state = read_safetensors(path)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
    return model.eval()


def cmd_torch_resnet(args):
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = bool(args.mkldnn)
    model = load_resnet(args.resnet)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    pixels, _ = read_inputs(args, RESNET_IMAGE_SIZE)

    def encode_images(batch):
        x = torch.from_numpy(np.ascontiguousarray(batch)).contiguous(memory_format=layout)
        with torch.no_grad():
            return model(x).numpy()

    print(json.dumps({"what": "info", "engine": "torch " + torch.__version__,
                      "threads": torch.get_num_threads(),
                      "omp": os.environ.get("OMP_NUM_THREADS"),
                      "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
                      "mkldnn": bool(args.mkldnn), "channels_last": bool(args.channels_last)}),
          flush=True)
    run_all(args, encode_images, None, pixels, None)


def cmd_torch(args):
    if args.resnet:
        return cmd_torch_resnet(args)
    import torch
    import clip_torch
    if args.threads:
        torch.set_num_threads(args.threads)
    vision, text, _ = clip_torch.load(args.model)
    pixels, ids = read_inputs(args, image_size_of(args.model))

    def encode_images(batch):
        with torch.inference_mode():
            return vision(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    def encode_texts(batch_ids):
        with torch.inference_mode():
            return text(torch.from_numpy(batch_ids)).numpy()

    print(json.dumps({"what": "info", "engine": "torch " + torch.__version__,
                      "threads": torch.get_num_threads(),
                      "omp": os.environ.get("OMP_NUM_THREADS"),
                      "openblas": os.environ.get("OPENBLAS_NUM_THREADS")}), flush=True)
    run_all(args, encode_images, encode_texts, pixels, ids)


def cmd_export(args):
    import torch
    if args.resnet:
        return export_resnet(args)
    import clip_torch
    vision, text, config = clip_torch.load(args.model)
    size = image_size_of(args.model)
    os.makedirs(args.onnx, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(vision, (torch.zeros(1, 3, size, size),),
                          os.path.join(args.onnx, "vision.onnx"), input_names=["pixels"],
                          output_names=["embedding"], opset_version=17,
                          dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
        ids = torch.zeros(2, text.pos.shape[0], dtype=torch.long)
        ids[:, 1] = 49407
        torch.onnx.export(text, (ids,), os.path.join(args.onnx, "text.onnx"),
                          input_names=["ids"], output_names=["embedding"], opset_version=17,
                          dynamic_axes={"ids": {0: "batch"}, "embedding": {0: "batch"}})
    with open(os.path.join(args.onnx, "meta.json"), "w") as f:
        json.dump({"image_size": size, "torch": torch.__version__}, f)


def export_resnet(args):
    import torch
    model = load_resnet(args.resnet)
    os.makedirs(args.onnx, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 3, RESNET_IMAGE_SIZE, RESNET_IMAGE_SIZE),),
                          os.path.join(args.onnx, "vision.onnx"), input_names=["pixels"],
                          output_names=["embedding"], opset_version=17,
                          dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
    with open(os.path.join(args.onnx, "meta.json"), "w") as f:
        json.dump({"image_size": RESNET_IMAGE_SIZE, "torch": torch.__version__}, f)


def cmd_ort(args):
    import onnxruntime as ort
    with open(os.path.join(args.onnx, "meta.json")) as f:
        size = json.load(f)["image_size"]

    def session(name):
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads or 0
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(os.path.join(args.onnx, name), so,
                                    providers=["CPUExecutionProvider"])

    vision = session("vision.onnx")
    text = session("text.onnx") if args.prompts and not args.no_text else None
    pixels, ids = read_inputs(args, size)
    print(json.dumps({"what": "info", "engine": "onnxruntime " + ort.__version__,
                      "threads": args.threads or 0}), flush=True)
    run_all(args,
            lambda batch: vision.run(None, {"pixels": np.ascontiguousarray(batch)})[0],
            lambda batch_ids: text.run(None, {"ids": batch_ids})[0],
            pixels, ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("engine", choices=["torch", "export", "ort"])
    parser.add_argument("--model", help="Hugging Face CLIP folder")
    parser.add_argument("--resnet", help="torchvision ResNet-50 weights (.safetensors)")
    parser.add_argument("--mkldnn", type=int, default=1, choices=[0, 1],
                        help="ResNet: torch.backends.mkldnn.enabled")
    parser.add_argument("--channels-last", type=int, default=0, choices=[0, 1],
                        help="ResNet: NHWC (channels_last) model and inputs")
    parser.add_argument("--onnx", help="folder of vision.onnx / text.onnx")
    parser.add_argument("--pixels")
    parser.add_argument("--prompts")
    parser.add_argument("--vocab", help="folder with vocab.json + merges.txt (default: --model)")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--text-iterations", type=int, default=1)
    parser.add_argument("--text-limit", type=int, default=0,
                        help="only the first N prompts (thread calibration)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-image", action="store_true")
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--dump", help="write embeddings to PREFIX-images.f32 / -texts.f32")
    args = parser.parse_args()
    {"torch": cmd_torch, "export": cmd_export, "ort": cmd_ort}[args.engine](args)


if __name__ == "__main__":
    main()
