"""test_int8.py — int8 mode of the image tower (agc_model_set_int8, the
--int8 option of embed, classify, evaluate and bench) against an independent
float64 reference.

The reference is the float64 twin (clip_twin.py) with the four weight
products of every image block (q, k, v, out_proj, fc1, fc2) replaced by the
quantisation that core/kernels/gemm-int8.h defines, written here from that text:
weights per output row, symmetric, sw = max|w| / 127, wq = rint(w / sw);
activations per row, asymmetric to 0 .. L (L = 255 with VNNI, 127 on plain
AVX2), sa = (hi - lo) / L, za = rint(-lo / sa), aq = rint(a / sa) + za;
out = (aq . wq - za sum wq) sa sw + bias.  The scales and rounding follow
the definition in float32; the sums and everything else are float64.

Quantisation is a staircase: an input that differs in its 7th digit (float32
against float64 arithmetic) now and then lands on the other side of a
rounding step, and the difference of one step grows through the following
layers to about a third of int8's own error.  So the whole tower is not
compared with the reference; each block is, from the library's own input:
tests/tools/int8-embed prints the residual stream after every block
(agc_vision_tower_forward_hidden, int8 mode), the reference runs block k on
the library's stream k, and the library's stream k + 1 must match it within
1e-4 of the largest |value| of each token (float32 rounding).  Activations
that fall within 1e-5 of a rounding tie (a few per product) may still round
the other way, and the token of such a step then differs by up to 1e-3:
up to 10 % of the tokens may (1 - 3 % do here), within 1e-2.  A different
definition (L = 254 instead of 255, say) moves every token.  End to end, the int8 embeddings
stay within a cosine of 0.999 of the float32 ones at realistic widths (256,
8 heads, MLP 1024, 4 layers).

Every kernel this CPU can run (AVX2 with 7-bit activations, AVX-VNNI,
AVX-512 VNNI; forced through the tool) passes the same block checks.

Adapters: after a finetune adapter, the blocks match the reference fed the
adapted weights, whether int8 mode was turned on (and had already quantised
every layer) before the adapter was applied or after; turning int8 off again
gives the float32 adapter embeddings.  `embed --int8 --adapter`, `bench
--int8 --dump` and `classify --int8` agree with these runs.
Cache: evaluate --int8 and plain evaluate keep their embeddings apart.
AgriCLIP's ResNet-50 (its convolutions on the same int8 products): `bench
--resnet --int8 --dump` and `embed --int8` on an AgriCLIP model stay within
a cosine of 0.999 of float32 (end to end only: no per-layer reference yet).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_embed import write_images  # noqa: E402
from test_train import read_adapter, write_class_folders  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
BUILD_DIR = os.environ.get("AGC_BUILD_DIR", "")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "int8-embed")
MAX_REL_ERROR = 1e-4  # max abs error / max |value| of the token, against the reference
MAX_STEP_ERROR = 1e-2  # the same, in tokens where an activation rounded the other way
MAX_STEPPED = 0.1  # fraction of tokens allowed such a step
MIN_COSINE_TO_F32 = 0.999
FLT_MIN = np.float32(np.finfo(np.float32).tiny)
BLOCK_LINEARS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
WIDE = dict(seed=31, vision_width=256, vision_layers=4, vision_heads=8, image_size=32,
            patch_size=8, projection_dim=64)


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def activation_levels():
    """L of the kernel the library picks (gemm-int8.h): VNNI keeps 8 bits."""
    flags = cpu_flags()
    vnni512 = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
    return 255 if vnni512 or "avx_vnni" in flags else 127


def int8_supported():
    return {"avx2", "fma"} <= cpu_flags()


def quantise_weights(w):
    """w float32 [N, K] -> (wq int [N, K], sw float32 [N]) per the definition."""
    w = np.asarray(w, dtype=np.float32)
    amax = np.abs(w).max(axis=1)
    s = (amax / np.float32(127)).astype(np.float32)
    good = s >= FLT_MIN
    inv = np.where(good, np.float32(1) / np.where(good, s, np.float32(1)), np.float32(0))
    wq = np.clip(np.rint(w * inv.astype(np.float32)[:, None]), -127, 127)
    return wq.astype(np.float64), np.where(good, s, np.float32(0)).astype(np.float32)


def quantise_activations(a, levels):
    """a [R, K] (taken as float32) -> (aq [R, K], sa float32 [R], za [R])."""
    a = np.asarray(a, dtype=np.float32)
    lo = np.minimum(np.float32(0), a.min(axis=1))
    hi = np.maximum(np.float32(0), a.max(axis=1))
    sa = ((hi.astype(np.float64) - lo.astype(np.float64)) / levels).astype(np.float32)
    good = sa >= FLT_MIN
    inv = np.where(good, np.float32(1) / np.where(good, sa, np.float32(1)), np.float32(0))
    inv = inv.astype(np.float32)
    za = np.where(good, np.clip(np.rint(-lo * inv), 0, levels), 0)
    aq = np.clip(np.rint(a * inv[:, None]) + za[:, None], 0, levels)
    aq = np.where(good[:, None], aq, 0)
    return aq.astype(np.float64), np.where(good, sa, np.float32(0)), za.astype(np.float64)


class Int8Twin(clip_twin.TwinCLIP):
    """The twin with the image blocks' linears on the int8 definition."""

    def __init__(self, config, weights, levels):
        super().__init__(config, weights)
        self.levels = levels
        self.quantised = {}
        for name, value in weights.items():
            parts = name.split(".")
            if (name.startswith("vision_model.encoder.layers.") and name.endswith(".weight")
                    and parts[-2] in BLOCK_LINEARS):
                # stored values as float32 (F16 converts exactly), as the library does
                self.quantised[name[:-len(".weight")]] = quantise_weights(
                    value.to(torch.float32).numpy())

    def _linear(self, x, prefix, bias=True):
        if prefix not in self.quantised:
            return super()._linear(x, prefix, bias)
        wq, sw = self.quantised[prefix]
        rows = x.reshape(-1, x.shape[-1]).numpy()
        aq, sa, za = quantise_activations(rows, self.levels)
        acc = aq @ wq.T - za[:, None] * wq.sum(axis=1)[None, :]  # exact in float64
        scale = (sa[:, None] * sw[None, :]).astype(np.float32)  # the library's float product
        out = torch.from_numpy(acc * scale.astype(np.float64))
        out = out.reshape(*x.shape[:-1], wq.shape[0])
        return out + self.w[prefix + ".bias"] if bias else out

    def block(self, x, layer):
        """The residual stream x [B, T, D] through image block `layer`."""
        cfg = self.vision_cfg
        act = {"quick_gelu": lambda y: y * torch.sigmoid(1.702 * y),
               "gelu": lambda y: F.gelu(y)}[cfg["hidden_act"]]
        eps, p = cfg["layer_norm_eps"], f"vision_model.encoder.layers.{layer}."
        x = x + self._attention(self._ln(x, p + "layer_norm1", eps), p + "self_attn.",
                                cfg["num_attention_heads"], None)
        h = act(self._linear(self._ln(x, p + "layer_norm2", eps), p + "mlp.fc1"))
        return x + self._linear(h, p + "mlp.fc2")


def run(args, cache=None, check=True):
    env = dict(os.environ)
    if cache is not None:
        env["XDG_CACHE_HOME"] = cache
    proc = subprocess.run([AGRICLIP] + args, capture_output=True, text=True, timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def embed(model, images, *extra, cache=None):
    args = ["embed", "--model", model, "--raw", *extra]
    for path in images:
        args += ["--image", path]
    rows = [json.loads(line) for line in run(args, cache).stdout.splitlines() if line.strip()]
    return torch.tensor([r["embedding"] for r in rows], dtype=torch.float64)


def tool_sequence(model, pixels_path, *steps):
    proc = subprocess.run([TOOL, model, pixels_path, *steps], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"int8-embed {steps} failed ({proc.returncode}): {proc.stderr}")
    return [torch.tensor([[float(v) for v in image.split()] for image in line.split(" | ")],
                         dtype=torch.float64)
            for line in proc.stdout.splitlines()]


def model_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
@unittest.skipUnless(int8_supported(), "this CPU has no int8 kernel (AVX2)")
class Int8AgainstReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-int8-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.levels = activation_levels()
        cls.model = os.path.join(cls.tmp, "wide")
        clip_twin.make_model(cls.model, **WIDE)
        image_dir = os.path.join(cls.tmp, "images")
        os.makedirs(image_dir)
        cls.images = write_images(image_dir, WIDE["image_size"], 6, seed=5)
        with torch.no_grad():
            cls.pixels = torch.stack([clip_twin.preprocess_image(p, WIDE["image_size"])
                                      for p in cls.images])
        cls.pixels_path = os.path.join(cls.tmp, "pixels.f32")
        cls.pixels.numpy().astype(np.float32).tofile(cls.pixels_path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_blocks(self, model_dir, steps, weights=None, levels=None):
        """Runs steps, then prints every block's stream; checks each block
        against the reference (weights: the model's own by default; levels:
        L of the activations, by default that of the kernel picked here)."""
        config = model_config(model_dir)
        vision = config["vision_config"]
        n_layers, width = vision["num_hidden_layers"], vision["hidden_size"]
        n_tokens = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
        twin = Int8Twin(config, weights or clip_twin.read_model_weights(model_dir),
                        levels or self.levels)
        streams = tool_sequence(model_dir, self.pixels_path, *steps,
                                *[f"hidden={k}" for k in range(n_layers + 1)])
        streams = [h.reshape(-1, n_tokens, width) for h in streams[-(n_layers + 1):]]
        for k in range(n_layers):
            with torch.no_grad():
                want = twin.block(streams[k], k)
            got = streams[k + 1]
            rel = ((got - want).abs() / want.abs().amax(dim=-1, keepdim=True)).amax(dim=-1)
            stepped = float((rel > MAX_REL_ERROR).double().mean())
            what = f"{model_dir} {steps} block {k}: tokens {stepped:.3f} stepped, {rel}"
            self.assertLessEqual(stepped, MAX_STEPPED, what)
            self.assertLessEqual(float(rel.max()), MAX_STEP_ERROR, what)
        # the blocks changed the stream, or nothing was tested
        self.assertGreater(float((streams[-1] - streams[0]).abs().max()), 0.1)
        return streams

    def assert_same(self, got, want, what, tolerance=1e-5):
        self.assertEqual(got.shape, want.shape, what)
        err = float((got - want).abs().max())
        self.assertLessEqual(err, tolerance * float(want.abs().max()), what)

    def cosines(self, a, b):
        return F.cosine_similarity(a, b, dim=1)

    def test_blocks_match_quantised_reference(self):
        self.check_blocks(self.model, ["int8"])

    def test_every_kernel_of_this_cpu(self):
        flags = cpu_flags()
        kernels = [("avx2", 127, {"avx2", "fma"}), ("avxvnni", 255, {"avx_vnni"}),
                   ("avx512vnni", 255, {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"})]
        (plain,) = tool_sequence(self.model, self.pixels_path, "embed")
        for kernel, levels, needs in kernels:
            if not needs <= flags:
                continue
            with self.subTest(kernel=kernel):
                self.check_blocks(self.model, [f"kernel={kernel}", "int8"], levels=levels)
                (got,) = tool_sequence(self.model, self.pixels_path, f"kernel={kernel}", "int8",
                                       "embed")
                cos = self.cosines(got, plain)
                self.assertGreaterEqual(float(cos.min()), MIN_COSINE_TO_F32, (kernel, cos))
                print(f"\n{kernel}: min cosine to float32 {float(cos.min()):.6f}",
                      file=sys.stderr)

    def test_close_to_float32(self):
        config = model_config(self.model)
        weights = clip_twin.read_model_weights(self.model)
        with torch.no_grad():
            exact = clip_twin.TwinCLIP(config, weights).eval().encode_image(self.pixels)
            wrong = Int8Twin(config, weights, 382 - self.levels).eval().encode_image(self.pixels)
        got_q = embed(self.model, self.images, "--int8")
        got_f = embed(self.model, self.images)
        cos = self.cosines(got_q, got_f)
        self.assertGreaterEqual(float(cos.min()), MIN_COSINE_TO_F32, cos)
        # int8 really ran: its error to float64 is far above float32's
        err_q = float((got_q - exact).abs().max() / exact.abs().max())
        err_f = float((got_f - exact).abs().max() / exact.abs().max())
        self.assertGreater(err_q, 20 * err_f, (err_q, err_f))
        print(f"\nint8 (L={self.levels}) vs float32: min cosine {float(cos.min()):.6f}; "
              f"int8 with the other L vs float64: "
              f"{float(self.cosines(wrong, exact).min()):.6f}", file=sys.stderr)

    def test_half_precision_model(self):
        model = os.path.join(self.tmp, "half")
        clip_twin.make_model(model, **dict(WIDE, seed=32, dtype="F16", vision_width=128,
                                           vision_heads=4, vision_layers=2))
        self.check_blocks(model, ["int8"])
        cos = self.cosines(embed(model, self.images, "--int8"), embed(model, self.images))
        self.assertGreaterEqual(float(cos.min()), MIN_COSINE_TO_F32, cos)

    def test_bench_int8_runs_and_dumps_int8_embeddings(self):
        prefix = os.path.join(self.tmp, "bench")
        proc = run(["bench", "--model", self.model, "--int8", "--no-text", "--iterations", "1",
                    "--batch", "1,6", "--pixels", self.pixels_path, "--dump", prefix])
        results = [json.loads(line) for line in proc.stdout.splitlines()]
        names = {(r["what"], r.get("n")) for r in results}
        for n in (1, 6):
            self.assertIn(("image_int8", n), names)
            self.assertIn(("image_int8_floor", n), names)
        self.assertFalse(any(r["what"] in ("image", "image_floor_blas") for r in results))
        dumped = np.fromfile(prefix + "-images.f32", dtype=np.float32).reshape(6, -1)
        (want,) = tool_sequence(self.model, self.pixels_path, "int8", "embed")
        self.assert_same(torch.from_numpy(dumped.astype(np.float64)), want, "bench --dump")

    def test_adapter_before_and_after_int8(self):
        data = os.path.join(self.tmp, "data")
        write_class_folders(data, {"rust": 6, "blight": 6, "healthy": 6}, seed=3)
        adapter = os.path.join(self.tmp, "finetune.safetensors")
        run(["train", "--model", self.model, "--data", data, "--out", adapter, "--method",
             "finetune", "--lr", "3e-3", "--epochs", "3", "--blocks", "2", "--val-fraction",
             "0"], self.cache)
        tensors, _ = read_adapter(adapter)
        adapted = clip_twin.read_model_weights(self.model)
        for name, value in tensors.items():
            adapted[name] = value.to(torch.float32)  # stored float32: the library's values
        self.assertIn("vision_model.encoder.layers.3.mlp.fc1.weight", tensors)

        # int8 on, every layer quantised and run, then the adapter
        self.check_blocks(self.model, ["int8", "embed", f"adapter={adapter}"], adapted)
        # the adapter first, then int8
        self.check_blocks(self.model, [f"adapter={adapter}", "int8"], adapted)
        before, after, back = tool_sequence(self.model, self.pixels_path, "int8", "embed",
                                            f"adapter={adapter}", "embed", "f32", "embed")
        (late,) = tool_sequence(self.model, self.pixels_path, f"adapter={adapter}", "int8",
                                "embed")
        self.assert_same(after, late, "int8 before or after the adapter")
        self.assert_same(embed(self.model, self.images, "--int8", "--adapter", adapter), late,
                         "embed --int8 --adapter")
        float_adapted = embed(self.model, self.images, "--adapter", adapter)
        self.assert_same(back, float_adapted, "int8 off again")
        # the adapter moved the int8 embeddings well beyond int8's own error
        self.assertLess(float(self.cosines(after, before).min()), 0.999)
        cos = self.cosines(after, float_adapted)
        self.assertGreaterEqual(float(cos.min()), MIN_COSINE_TO_F32, cos)

    def test_classify_int8_labels_follow_int8_embeddings(self):
        classes = ["rust", "blight", "healthy", "mildew"]
        args = ["classify", "--model", self.model, "--format", "jsonl", "--top", "1", "--int8"]
        for c in classes:
            args += ["--label", c]
        proc = run(args + self.images)
        got = [json.loads(line)["labels"][0]["label"] for line in proc.stdout.splitlines()]
        texts = embed(self.model, [], *sum((["--text", f"a photo of a {c}."] for c in classes),
                                           []))
        images = embed(self.model, self.images, "--int8")
        scores = F.normalize(images, dim=1) @ F.normalize(texts, dim=1).T
        want = [classes[i] for i in scores.argmax(dim=1).tolist()]
        self.assertEqual(got, want)

    def test_evaluate_keeps_int8_embeddings_apart_in_the_cache(self):
        data = os.path.join(self.tmp, "eval-data")
        write_class_folders(data, {"rust": 4, "blight": 4, "healthy": 4}, seed=9)
        cache = os.path.join(self.tmp, "eval-cache")
        root = os.path.join(cache, "agriclip", "embeddings")

        def entries():
            found = {}
            for key in os.listdir(root):
                n = sum(len(files) for _, _, files in os.walk(os.path.join(root, key)))
                found[key] = n
            return found

        first = json.loads(run(["evaluate", "--model", self.model, "--data", data, "--format",
                                "json"], cache).stdout)
        plain = entries()
        self.assertEqual(list(plain.values()), [12], plain)
        quant = json.loads(run(["evaluate", "--model", self.model, "--data", data, "--format",
                                "json", "--int8"], cache).stdout)
        both = entries()
        self.assertEqual(len(both), 2, both)
        (key,) = set(both) - set(plain)
        (plain_key,) = plain
        self.assertTrue(key.startswith(plain_key + "-int8"), (key, plain_key))
        self.assertEqual(both[key], 12)
        # the second run of each reads its own entries back: same answers
        for extra, want in (([], first), (["--int8"], quant)):
            again = json.loads(run(["evaluate", "--model", self.model, "--data", data,
                                    "--format", "json", *extra], cache).stdout)
            self.assertEqual(again["classes"], want["classes"])
        self.assertEqual(entries(), both)


def min_cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class Int8ResNet(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="agc-int8-agri-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_bench_resnet(self):
        from clip_twin import write_safetensors
        from test_resnet import random_resnet50

        weights = os.path.join(self.tmp, "resnet50.safetensors")
        write_safetensors(weights, random_resnet50(seed=1).state_dict())
        pixels = os.path.join(self.tmp, "pixels.f32")
        np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32).tofile(pixels)
        dumps = {}
        for name, extra in (("f32", []), ("int8", ["--int8"])):
            dumps[name] = os.path.join(self.tmp, name)
            run(["bench", "--resnet", weights, "--pixels", pixels, "--batch", "1",
                 "--iterations", "1", "--no-floor", "--dump", dumps[name], *extra])
        f32, q = (np.fromfile(dumps[n] + "-images.f32", np.float32).reshape(-1, 2048)
                  for n in ("f32", "int8"))
        self.assertFalse(np.array_equal(f32, q))  # int8 did run
        self.assertGreaterEqual(min_cosine(q, f32), 0.999)

    def test_agriclip_model(self):
        from test_resnet import random_resnet50

        folder = os.path.join(self.tmp, "agri")
        clip_twin.make_model(folder, seed=4, image_size=32, projection_dim=32)
        os.makedirs(os.path.join(folder, "Weights"))
        torch.save(random_resnet50(seed=1).state_dict(),
                   os.path.join(folder, "Weights", "dino_pretrain.pth"))
        gen = torch.Generator().manual_seed(2)
        torch.save({"W": torch.randn(32, 2048, generator=gen), "b": torch.zeros(32)},
                   os.path.join(folder, "Weights", "Agri_Dino_aligner_DPT_CPT.pth"))
        images = write_images(self.tmp, 32, 2, seed=1)
        f32 = embed(folder, images)
        q = embed(folder, images, "--int8")
        self.assertFalse(torch.equal(f32, q))
        self.assertGreaterEqual(min_cosine(q, f32), 0.999)


if __name__ == "__main__":
    unittest.main()
