"""Training a whole CLIP from scratch (core/train/clip-train.h, core/include/agriclip.h)
against PyTorch.

tests/tools/clip-train-step exposes the training step and the new layers.
The reference is clip_twin.TwinCLIP run on float64 leaves with autograd,
the symmetric contrastive loss written here from its definition,
torch.nn.utils.clip_grad_norm_, torch.optim.AdamW and CLIP's clamp of the
log scale; the new layers are checked against F.embedding, indexing,
F.conv2d and that loss.  The end-to-end test trains `agriclip pretrain` on
a few PIL-drawn shapes and loads the folder it writes with `agriclip embed`
and with the twin.
"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_twin  # noqa: E402

BUILD_DIR = os.environ.get("AGC_BUILD_DIR", "build")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "clip-train-step")
AGRICLIP = os.environ.get("AGRICLIP", os.path.join(BUILD_DIR, "cli", "agriclip"))
EOT = 49407

MODEL = dict(image_size=16, patch=4, width=32, layers=2, heads=2, text_width=32, text_layers=2,
             text_heads=2, context=12, vocab=49408, embed_dim=24, act="quick_gelu")


def twin_config(m):
    """The HF config.json dict TwinCLIP reads, for the model metadata m."""
    text = dict(hidden_size=m["text_width"], intermediate_size=4 * m["text_width"],
                num_hidden_layers=m["text_layers"], num_attention_heads=m["text_heads"],
                max_position_embeddings=m["context"], vocab_size=m["vocab"],
                hidden_act=m["act"], layer_norm_eps=1e-5)
    vision = dict(hidden_size=m["width"], intermediate_size=4 * m["width"],
                  num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
                  image_size=m["image_size"], patch_size=m["patch"], hidden_act=m["act"],
                  layer_norm_eps=1e-5)
    return {"projection_dim": m["embed_dim"], "text_config": text, "vision_config": vision}


def tensor_shapes(m):
    """name -> shape of every trained tensor, Hugging Face naming."""
    d, w, e = m["width"], m["text_width"], m["embed_dim"]
    n_pos = (m["image_size"] // m["patch"]) ** 2 + 1
    shapes = {
        "vision_model.embeddings.patch_embedding.weight": (d, 3, m["patch"], m["patch"]),
        "vision_model.embeddings.class_embedding": (d,),
        "vision_model.embeddings.position_embedding.weight": (n_pos, d),
        "vision_model.pre_layrnorm.weight": (d,), "vision_model.pre_layrnorm.bias": (d,),
        "vision_model.post_layernorm.weight": (d,), "vision_model.post_layernorm.bias": (d,),
        "visual_projection.weight": (e, d),
        "text_model.embeddings.token_embedding.weight": (m["vocab"], w),
        "text_model.embeddings.position_embedding.weight": (m["context"], w),
        "text_model.final_layer_norm.weight": (w,), "text_model.final_layer_norm.bias": (w,),
        "text_projection.weight": (e, w),
        "logit_scale": (),
    }
    for tower, width, layers in (("vision_model", d, m["layers"]),
                                 ("text_model", w, m["text_layers"])):
        for i in range(layers):
            p = "%s.encoder.layers.%d." % (tower, i)
            for n in ("layer_norm1", "layer_norm2"):
                shapes[p + n + ".weight"] = (width,)
                shapes[p + n + ".bias"] = (width,)
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[p + "self_attn." + n + ".weight"] = (width, width)
                shapes[p + "self_attn." + n + ".bias"] = (width,)
            shapes[p + "mlp.fc1.weight"] = (4 * width, width)
            shapes[p + "mlp.fc1.bias"] = (4 * width,)
            shapes[p + "mlp.fc2.weight"] = (width, 4 * width)
            shapes[p + "mlp.fc2.bias"] = (width,)
    return shapes


def decays(name):
    """Weight decay on the linear and convolution matrices and the projections only."""
    return name.endswith("proj.weight") or name.endswith("projection.weight") or \
        ".mlp.fc" in name and name.endswith(".weight") or name.endswith("patch_embedding.weight")


def schedule(lr, warmup, total, step):
    if step <= warmup:
        return lr * step / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))


def clip_loss(image, text, log_scale):
    """CLIP's symmetric InfoNCE on L2-normalised embeddings."""
    logits = log_scale.exp() * image @ text.T
    labels = torch.arange(image.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def token_ids(captions, context):
    """[B, context] ids from the Python tokenizer reference: truncated texts end in EOT."""
    rows = []
    for row in clip_twin.tokenize(captions).tolist():
        row = row[:context]
        if EOT not in row:
            row[-1] = EOT
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


class PretrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TOOL):
            raise unittest.SkipTest("tests/tools/clip-train-step not built")
        cls.tmp = tempfile.mkdtemp(prefix="agc-pretrain-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def run_tool(self, tensors, **meta):
        fin = os.path.join(self.tmp, "in.safetensors")
        fout = os.path.join(self.tmp, "out.safetensors")
        clip_twin.write_safetensors(fin, tensors, metadata={k: str(v) for k, v in meta.items()})
        proc = subprocess.run([TOOL, fin, fout], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return clip_twin.read_safetensors(fout)

    def assertClose(self, name, got, want, rel=1e-4):
        want = want.detach().double()
        got = got.double().reshape(want.shape)
        scale = max(float(want.abs().max()), 1e-12)
        err = float((got - want).abs().max())
        self.assertLessEqual(err, rel * scale, "%s: max |C - torch| %.3g, scale %.3g"
                             % (name, err, scale))

    def init_weights(self, seed, **model):
        return self.run_tool({"unused": torch.zeros(1)}, op="init", seed=seed, **model)

    # ---- initialisation ---------------------------------------------------

    def test_init(self):
        m = dict(MODEL, layers=3)
        got = self.init_weights(5, **m)
        shapes = tensor_shapes(m)
        self.assertEqual(set(got), set(shapes))
        for name, shape in shapes.items():
            self.assertEqual(got[name].numel(), math.prod(shape), name)
        again, other = self.init_weights(5, **m), self.init_weights(6, **m)
        for name in shapes:
            self.assertTrue(torch.equal(got[name], again[name]), name)  # seeded
        self.assertFalse(torch.equal(got["visual_projection.weight"],
                                     other["visual_projection.weight"]))
        d, w = m["width"], m["text_width"]

        def std(name):
            return float(got[name].double().std())

        # open_clip's scales; 1000s of samples each: within 10 %
        expect = {
            "text_model.embeddings.token_embedding.weight": 0.02,
            "text_model.embeddings.position_embedding.weight": 0.01,
            "vision_model.embeddings.position_embedding.weight": d ** -0.5,
            "visual_projection.weight": d ** -0.5,
            "text_projection.weight": w ** -0.5,
            "vision_model.embeddings.patch_embedding.weight": (3 * 3 * m["patch"] ** 2) ** -0.5,
            "vision_model.encoder.layers.1.self_attn.q_proj.weight": d ** -0.5,
            "vision_model.encoder.layers.1.self_attn.out_proj.weight":
                d ** -0.5 * (2 * m["layers"]) ** -0.5,
            "vision_model.encoder.layers.2.mlp.fc1.weight": (2 * d) ** -0.5,
            "text_model.encoder.layers.1.mlp.fc2.weight": w ** -0.5 * (2 * m["text_layers"]) ** -0.5,
        }
        for name, s in expect.items():
            self.assertLess(abs(std(name) / s - 1), 0.1, name)
            self.assertLess(abs(float(got[name].double().mean())), 0.1 * s, name)
        for name in shapes:
            if "norm" in name and name.endswith(".weight"):
                self.assertTrue(torch.all(got[name] == 1), name)
            elif name.endswith(".bias"):
                self.assertTrue(torch.all(got[name] == 0), name)
        self.assertAlmostEqual(float(got["logit_scale"]), math.log(1 / 0.07), places=6)

    # ---- the new layers --------------------------------------------------

    def test_clip_loss(self):
        g = torch.Generator().manual_seed(1)
        n, e = 6, 10
        image = F.normalize(torch.randn(n, e, generator=g), dim=-1).float()
        text = F.normalize(torch.randn(n, e, generator=g) + 0.5 * image, dim=-1).float()
        log_scale = torch.tensor([2.3])
        got = self.run_tool({"image": image, "text": text, "log_scale": log_scale},
                            op="clip_loss")
        leaves = [t.double().requires_grad_() for t in (image, text, log_scale)]
        loss = clip_loss(leaves[0], leaves[1], leaves[2][0])
        loss.backward()
        self.assertAlmostEqual(float(got["loss"][0]), float(loss), delta=1e-6)
        for name, leaf in zip(("dimage", "dtext", "dlog_scale"), leaves):
            self.assertClose(name, got[name], leaf.grad)

    def test_embedding(self):
        g = torch.Generator().manual_seed(2)
        table = torch.randn(20, 8, generator=g)
        ids = torch.tensor([3, 7, 3, 0, 19, 3, 7])  # repeats collect every occurrence
        dout = torch.randn(len(ids), 8, generator=g)
        got = self.run_tool({"table": table, "ids": ids, "dout": dout}, op="embedding")
        leaf = table.double().requires_grad_()
        out = F.embedding(ids, leaf)
        out.backward(dout.double())
        self.assertClose("out", got["out"], out)
        self.assertClose("dtable", got["dtable"], leaf.grad)

    def test_gather(self):  # the class-token and end-of-text pooling
        g = torch.Generator().manual_seed(3)
        x = torch.randn(15, 6, generator=g)
        rows = torch.tensor([4, 0, 14, 9])
        dout = torch.randn(len(rows), 6, generator=g)
        got = self.run_tool({"x": x, "rows": rows, "dout": dout}, op="gather")
        leaf = x.double().requires_grad_()
        out = leaf[rows]
        out.backward(dout.double())
        self.assertClose("out", got["out"], out)
        self.assertClose("dx", got["dx"], leaf.grad)

    def test_patch_embed(self):
        g = torch.Generator().manual_seed(4)
        b, s, p, d = 2, 12, 4, 5
        pixels = torch.randn(b, 3, s, s, generator=g)
        weight = torch.randn(d, 3, p, p, generator=g)
        n_tok = (s // p) ** 2 + 1
        dout = torch.randn(b, n_tok, d, generator=g)
        got = self.run_tool({"pixels": pixels, "weight": weight, "dout": dout},
                            op="patch_embed")
        leaf = weight.double().requires_grad_()
        patches = F.conv2d(pixels.double(), leaf, stride=p).flatten(2).transpose(1, 2)
        out = torch.cat([torch.zeros(b, 1, d, dtype=torch.float64), patches], dim=1)
        out.backward(dout.double())
        self.assertClose("out", got["out"], out)
        self.assertClose("dweight", got["dweight"], leaf.grad)

    # ---- whole steps -------------------------------------------------------

    def check_steps(self, shards):
        m = MODEL
        hp = dict(lr=1e-3, weight_decay=0.1, warmup=2, total_steps=4, clip_norm=1.0, steps=2)
        g = torch.Generator().manual_seed(7)
        weights = self.init_weights(1, **m)
        shapes = tensor_shapes(m)
        for name in list(weights):  # every part non-trivial
            weights[name] = weights[name].reshape(shapes[name])
            if name.endswith(".bias"):
                weights[name] = weights[name] + 0.1 * torch.randn(shapes[name], generator=g)
            elif "norm" in name:
                weights[name] = weights[name] + 0.2 * torch.randn(shapes[name], generator=g)
        # above ln 100: the clamp after the step brings it back
        weights["logit_scale"] = torch.tensor(4.8)
        captions = ["a red circle", "a blue square on a green field", "a red square",
                    "three yellow triangles, two of them small, on a big red circle",
                    "a photo of a blue circle", "a blue square", "red"]
        ids = token_ids(captions, m["context"])
        self.assertEqual(int(ids[3].argmax()), m["context"] - 1)  # truncated, EOT forced
        pixels = torch.randn(len(captions), 3, m["image_size"], m["image_size"], generator=g)
        got = self.run_tool(dict(weights, pixels=pixels, ids=ids), op="step", shards=shards,
                            **m, **hp)

        params = {k: v.double().clone().requires_grad_() for k, v in weights.items()}
        twin = clip_twin.TwinCLIP(twin_config(m), params)
        decay = [p for k, p in params.items() if decays(k)]
        no_decay = [p for k, p in params.items() if not decays(k)]
        self.assertEqual(len(decay), 3 + 6 * (m["layers"] + m["text_layers"]))
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=hp["lr"], betas=(0.9, 0.999), eps=1e-8)
        for step in range(1, hp["steps"] + 1):
            opt.zero_grad()
            image = F.normalize(twin.encode_image(pixels.double()), dim=-1)
            text = F.normalize(twin.encode_text(ids), dim=-1)
            loss = clip_loss(image, text, params["logit_scale"])
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(list(params.values()), hp["clip_norm"])
            self.assertAlmostEqual(float(got["loss"][step - 1]), float(loss), delta=1e-5)
            self.assertLessEqual(abs(float(got["grad_norm"][step - 1]) / float(norm) - 1), 1e-4)
            for group in opt.param_groups:
                group["lr"] = schedule(hp["lr"], hp["warmup"], hp["total_steps"], step)
            opt.step()
            with torch.no_grad():
                params["logit_scale"].clamp_(0, math.log(100))
        self.assertGreater(float(norm), hp["clip_norm"])  # clipping was exercised

        for name, p in params.items():
            self.assertClose("grad." + name, got["grad." + name], p.grad, rel=1e-3)
            self.assertClose(name, got[name], p)
        # AdamW moves it by about lr a step: only the clamp brings 4.8 below ln 100
        self.assertLessEqual(float(got["logit_scale"]), math.log(100) + 1e-6)
        moved = float((got["visual_projection.weight"].reshape(shapes["visual_projection.weight"])
                       - weights["visual_projection.weight"]).abs().max())
        self.assertGreater(moved, 1e-3)

    def test_step_matches_pytorch(self):
        self.check_steps(shards=1)

    def test_sharded_step_matches_pytorch(self):
        self.check_steps(shards=3)  # 7 pairs in shards of 2, 2 and 3

    # ---- end to end --------------------------------------------------------

    def shapes_data(self, name):
        """A folder of 96 PIL-drawn red/blue circles/squares with captions."""
        from PIL import Image, ImageDraw

        data = os.path.join(self.tmp, name)
        os.makedirs(data)
        rng = random.Random(0)
        colours = {"red": (220, 30, 30), "blue": (30, 60, 220)}
        with open(os.path.join(data, "captions.jsonl"), "w") as f:
            for i in range(96):
                colour, shape = rng.choice(sorted(colours)), rng.choice(["circle", "square"])
                im = Image.new("RGB", (40, 32), (rng.randint(90, 160),) * 3)
                r, cx, cy = rng.randint(6, 10), rng.randint(10, 30), rng.randint(10, 22)
                box = [cx - r, cy - r, cx + r, cy + r]
                draw = ImageDraw.Draw(im)
                (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colours[colour])
                im.save(os.path.join(data, "%d.png" % i))
                f.write(json.dumps({"image": "%d.png" % i,
                                    "caption": "a %s %s" % (colour, shape)}) + "\n")
        return data

    @staticmethod
    def small_args(data, out, epochs=8):
        return [AGRICLIP, "pretrain", "--data", data, "--tokenizer", clip_twin.default_vocab_dir(),
                "--out", out, "--epochs", str(epochs), "--batch", "16", "--lr", "2e-3",
                "--image-size", "16", "--patch", "4", "--width", "32", "--layers", "1",
                "--heads", "2", "--text-width", "32", "--text-layers", "1", "--text-heads", "2",
                "--context", "8", "--embed-dim", "16"]

    def test_pretrain_cli(self):
        data = self.shapes_data("data")
        out = os.path.join(self.tmp, "model")
        args = self.small_args(data, out)
        proc = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        losses = [float(line.split("loss ")[1].split(",")[0])
                  for line in proc.stderr.splitlines() if "loss " in line]
        self.assertEqual(len(losses), 8, proc.stderr)
        self.assertLess(losses[-1], 0.8 * losses[0], proc.stderr)  # it learns
        self.assertEqual(sorted(os.listdir(out)),
                         ["config.json", "merges.txt", "model.safetensors",
                          "preprocessor_config.json", "vocab.json"])
        self.assertEqual(os.listdir(self.tmp).count("model"), 1)
        self.assertFalse([n for n in os.listdir(self.tmp) if n.startswith("model.tmp")])
        self.assertFalse(os.path.exists(out + ".checkpoint.safetensors"))

        # the folder loads like any model, and the twin agrees with the engine on it
        image = os.path.join(data, "0.png")
        proc = subprocess.run([AGRICLIP, "embed", "-m", out, "-i", image, "-t", "a red circle",
                               "--raw"], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
        self.assertEqual(len(rows), 2)
        twin = clip_twin.load_twin(out)
        with torch.no_grad():
            want_image = twin.encode_image(clip_twin.preprocess_image(image, 16).unsqueeze(0))[0]
            ids = clip_twin.tokenize(["a red circle"])[:, :8]
            want_text = twin.encode_text(ids)[0]
        for row, want in zip(rows, (want_image, want_text)):
            vector = next(v for v in row.values() if isinstance(v, list))
            self.assertEqual(len(vector), 16)
            self.assertClose("embedding", torch.tensor(vector), want)

        # an existing folder is never overwritten
        before = os.path.getmtime(os.path.join(out, "model.safetensors"))
        proc = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("exists", proc.stderr)
        self.assertEqual(before, os.path.getmtime(os.path.join(out, "model.safetensors")))

    def test_checkpoint_resume(self):
        """Stopped after epochs 1 and 2 and resumed each time, a run ends with
        the same file, byte for byte, as one never stopped; the checkpoint of
        another run is ignored; a damaged one is reported by name."""
        data = self.shapes_data("resume-data")
        tmp = os.path.join(self.tmp, "resume")
        os.makedirs(tmp)

        def run(out, *more):
            proc = subprocess.run(self.small_args(data, out, epochs=3) + list(more),
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            return proc.stderr

        def weights(out):
            with open(os.path.join(out, "model.safetensors"), "rb") as f:
                return f.read()

        def header(path):
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                return json.loads(f.read(n))

        whole = os.path.join(tmp, "whole")
        run(whole)
        self.assertFalse(os.path.exists(whole + ".checkpoint.safetensors"))

        out = os.path.join(tmp, "resumed")
        checkpoint = out + ".checkpoint.safetensors"
        log = run(out, "--stop-after", "1")
        self.assertIn("stopped after epoch 1 of 3", log)
        self.assertFalse(os.path.exists(out))
        meta = header(checkpoint)["__metadata__"]
        self.assertEqual(meta["epochs_done"], "1")
        self.assertEqual(meta["steps"], "6")  # 96 pairs in batches of 16
        head = header(checkpoint)
        for prefix in ("weights/", "m/", "v/"):
            self.assertEqual(head[prefix + "visual_projection.weight"]["shape"], [16, 32])
        with open(checkpoint, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            body = f.read()[n:]
        begin, end = head["seen_token_rows"]["data_offsets"]
        self.assertEqual(head["seen_token_rows"]["dtype"], "U8")
        # the rows of the captions' tokens, start and end included (all the
        # same length: no padding runs)
        words = set()
        for ids in clip_twin.tokenize(["a red circle", "a blue square"]).tolist():
            words |= set(ids[:ids.index(max(ids)) + 1])
        seen = body[begin:end]
        self.assertEqual(len(seen), 49408)
        self.assertEqual({i for i, flag in enumerate(seen) if flag}, words)
        # the model's weights are the checkpoint's
        self.assertEqual(sorted(n[len("weights/"):] for n in head if n.startswith("weights/")),
                         sorted(tensor_shapes(dict(MODEL, image_size=16, patch=4, width=32,
                                                   layers=1, heads=2, text_width=32,
                                                   text_layers=1, text_heads=2, context=8,
                                                   embed_dim=16))))
        with open(checkpoint, "rb") as f:
            saved = f.read()

        log = run(out, "--stop-after", "2")
        self.assertIn("resuming from the checkpoint after epoch 1 of 3", log)
        self.assertEqual(header(checkpoint)["__metadata__"]["epochs_done"], "2")
        log = run(out)
        self.assertIn("after epoch 2 of 3", log)
        self.assertEqual(weights(out), weights(whole))
        self.assertFalse(os.path.exists(checkpoint))

        # a checkpoint of another run (another seed) is not used
        other = os.path.join(tmp, "other")
        with open(other + ".checkpoint.safetensors", "wb") as f:
            f.write(saved)
        log = run(other, "--seed", "5")
        self.assertNotIn("resuming", log)
        self.assertNotEqual(weights(other), weights(whole))
        self.assertFalse(os.path.exists(other + ".checkpoint.safetensors"))
        # ... and with the seed of this one it is
        again = os.path.join(tmp, "again")
        with open(again + ".checkpoint.safetensors", "wb") as f:
            f.write(saved)
        self.assertIn("after epoch 1 of 3", run(again))
        self.assertEqual(weights(again), weights(whole))

        # a damaged checkpoint: named, nothing written, left for the user to delete
        broken = os.path.join(tmp, "broken")
        with open(broken + ".checkpoint.safetensors", "wb") as f:
            f.write(saved[:len(saved) // 2])
        proc = subprocess.run(self.small_args(data, broken, epochs=3), capture_output=True,
                              text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("broken.checkpoint.safetensors", proc.stderr)
        self.assertIn("delete it", proc.stderr)
        self.assertFalse(os.path.exists(broken))


if __name__ == "__main__":
    unittest.main()
