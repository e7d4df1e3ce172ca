"""test_finetune_train.py — `agriclip train --method finetune` and weight
adapters against PyTorch, on folders of generated photos and small random
twin models (clip_twin).

- Validation accuracy rises above zero-shot, and `classify --adapter` then
  labels new photos better than the plain model's zero-shot classes.
- The adapter's tensors, put into the float64 twin in place of the
  originals (q, k, v apart, Hugging Face names), give the embeddings that
  `agriclip embed --adapter` prints (cos >= 0.99999), also on a float16
  model; --mix 0.5 writes the mean of the original and the --mix 1 weights.
- One epoch of three batches equals PyTorch: the twin's hidden states at
  block L - K, the batch order of the seeded shuffle (splitmix64 and
  Fisher-Yates, written out here), autograd through the top blocks,
  class-weighted contrastive loss, clip_grad_norm_, torch.optim.AdamW with
  the warm-up + cosine learning rates.
- SIGKILL at random points, then the same command again, ends with the
  adapter of an uninterrupted run; a killed run leaves no adapter.
- Bad input: --blocks 0 or more than the tower has, an AgriCLIP (ResNet)
  model, an adapter of another model, an unreadable photo (reported by name).
"""

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_backward import block  # noqa: E402  (the torch block, fused qkv)
from test_train import (IMAGE_SIZE, read_adapter, run, train,  # noqa: E402
                        twin_class_embeddings, write_class_folders)

AGRICLIP = os.environ.get("AGRICLIP")
TAGS = ("blight", "healthy", "rust")  # the dataset's class order: tag folders sorted

MASK64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def shuffle(items, seed, stream):
    """The library's seeded shuffle (agc_shuffle): Fisher-Yates over splitmix64."""
    items = list(items)
    _, first = splitmix64(seed)
    state = first ^ stream
    for i in range(len(items) - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def epoch_stream(epoch):
    return (1 << 32) | epoch


def sorted_paths(paths):
    """Image paths in the dataset's order: class by class, sorted by path."""
    return [p for tag in TAGS for p in sorted(paths[tag])]


def twin_hidden(twin, pixels, n_layers):
    """The residual stream of the image tower after n_layers blocks [B, T, D]."""
    cfg, w = twin.vision_cfg, twin.w
    x = F.conv2d(pixels.double(), w["vision_model.embeddings.patch_embedding.weight"],
                 stride=cfg["patch_size"]).flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + w["vision_model.embeddings.position_embedding.weight"]
    x = twin._ln(x, "vision_model.pre_layrnorm", cfg["layer_norm_eps"])
    act = {"quick_gelu": lambda y: y * torch.sigmoid(1.702 * y), "gelu": F.gelu}[cfg["hidden_act"]]
    for i in range(n_layers):
        p = f"vision_model.encoder.layers.{i}."
        x = x + twin._attention(twin._ln(x, p + "layer_norm1", cfg["layer_norm_eps"]),
                                p + "self_attn.", cfg["num_attention_heads"], None)
        h = act(twin._linear(twin._ln(x, p + "layer_norm2", cfg["layer_norm_eps"]), p + "mlp.fc1"))
        x = x + twin._linear(h, p + "mlp.fc2")
    return x


def fused_block(weights, layer):
    """A layer's HF tensors as test_backward.block's fused names."""
    p = f"vision_model.encoder.layers.{layer}."
    a = p + "self_attn."
    return {
        "ln1_weight": weights[p + "layer_norm1.weight"], "ln1_bias": weights[p + "layer_norm1.bias"],
        "qkv_weight": torch.cat([weights[a + n + "_proj.weight"] for n in "qkv"]),
        "qkv_bias": torch.cat([weights[a + n + "_proj.bias"] for n in "qkv"]),
        "out_weight": weights[a + "out_proj.weight"], "out_bias": weights[a + "out_proj.bias"],
        "ln2_weight": weights[p + "layer_norm2.weight"], "ln2_bias": weights[p + "layer_norm2.bias"],
        "fc1_weight": weights[p + "mlp.fc1.weight"], "fc1_bias": weights[p + "mlp.fc1.bias"],
        "fc2_weight": weights[p + "mlp.fc2.weight"], "fc2_bias": weights[p + "mlp.fc2.bias"],
    }


def embed(model, adapter, images, cache):
    args = ["embed", "--model", model] + (["--adapter", adapter] if adapter else [])
    for path in images:
        args += ["--image", path]
    import json
    rows = [json.loads(line) for line in run(args, cache).stdout.splitlines()]
    return torch.tensor([r["embedding"] for r in rows], dtype=torch.float64)


def classify_top1(model, images, cache, *how):
    proc = run(["classify", "--model", model, *how, "--format", "jsonl", "--top", "1"] + images,
               cache)
    import json
    return [json.loads(line)["labels"][0]["label"] for line in proc.stdout.splitlines()]


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class FinetuneTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-ft-train-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=21, image_size=IMAGE_SIZE, vision_layers=3)
        cls.twin = clip_twin.load_twin(cls.model)
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.data = os.path.join(cls.tmp, "data")
        cls.paths = write_class_folders(cls.data, {"rust": 10, "blight": 6, "healthy": 8}, seed=5)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, name + ".safetensors")

    def test_accuracy_rises_and_classify_follows(self):
        data = os.path.join(self.tmp, "separable")
        write_class_folders(data, {"rust": 16, "blight": 16, "healthy": 16, "mildew": 16}, seed=8)
        out = self.out("lift")
        train(self.model, data, out, self.cache, "--method", "finetune", "--lr", "1e-3",
              "--epochs", "12", "--batch-size", "8", "--val-fraction", "0.25", "--seed", "4")
        _, meta = read_adapter(out)
        metrics = meta["agriclip.metrics"]
        self.assertEqual(meta["agriclip.method"], "finetune")
        self.assertLess(metrics["zero_shot_val_accuracy"], 0.8)
        self.assertGreaterEqual(metrics["val_accuracy"], 0.9)
        self.assertGreater(metrics["val_accuracy"], metrics["zero_shot_val_accuracy"] + 0.15)
        self.assertEqual([c["prompts"] for c in meta["agriclip.classes"]],
                         [["a photo of a %s." % t] for t in ("blight", "healthy", "mildew", "rust")])
        self.assertEqual(meta["agriclip.training"]["blocks"], 2)

        # new photos: the adapter's classes beat the plain model's zero-shot ones
        fresh = os.path.join(self.tmp, "fresh")
        new = write_class_folders(fresh, {"rust": 6, "blight": 6, "healthy": 6, "mildew": 6},
                                  seed=99)
        images = [p for tag in new for p in new[tag]]
        truth = [tag for tag in new for _ in new[tag]]
        tuned = classify_top1(self.model, images, self.cache, "--adapter", out)
        plain = classify_top1(self.model, images, self.cache,
                              *sum((["--label", t] for t in sorted(new)), []))
        right_tuned = sum(a == b for a, b in zip(tuned, truth))
        right_plain = sum(a == b for a, b in zip(plain, truth))
        self.assertGreaterEqual(right_tuned, 0.85 * len(images))
        self.assertGreater(right_tuned, right_plain + 3)

        # evaluate, zero-shot first and then with the adapter through the same
        # embedding cache: the adapted embeddings must not come from the cache
        # entries of the plain model
        # (no labels.json: each tag in the default template, as --label above)
        import json
        scores = [json.loads(run(["evaluate", "--model", self.model, *how, "--data", fresh,
                                  "--format", "json"], self.cache).stdout)["accuracy"]
                  for how in ([], ["--adapter", out])]
        self.assertAlmostEqual(scores[0], right_plain / len(images), places=6)
        self.assertAlmostEqual(scores[1], right_tuned / len(images), places=6)

    def check_embeddings_through_twin(self, model, adapter, n_layers):
        tensors, _ = read_adapter(adapter)
        weights = clip_twin.read_model_weights(model)
        import json
        with open(os.path.join(model, "config.json")) as f:
            config = json.load(f)
        replaced = dict(weights)
        for name, value in tensors.items():
            self.assertIn(name, weights)
            self.assertEqual(tuple(value.shape), tuple(weights[name].shape), name)
            replaced[name] = value
        twin = clip_twin.TwinCLIP(config, replaced).eval()
        images = sorted(self.paths["rust"])[:3] + sorted(self.paths["blight"])[:3]
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in images])
            want = F.normalize(twin.encode_image(pixels), dim=-1)
            plain = F.normalize(clip_twin.TwinCLIP(config, weights).encode_image(pixels), dim=-1)
        got = embed(model, adapter, images, self.cache)
        cos = (F.normalize(got, dim=-1) * want).sum(dim=-1)
        self.assertGreaterEqual(float(cos.min()), 0.99999, cos)
        # and the adapter really changed them
        self.assertLess(float((plain * want).sum(dim=-1).min()), 0.999)
        return tensors

    def test_adapter_tensors_in_pytorch_give_embed_output(self):
        out = self.out("apply")
        train(self.model, self.data, out, self.cache, "--method", "finetune", "--lr", "3e-3",
              "--epochs", "3", "--blocks", "2", "--val-fraction", "0")
        tensors = self.check_embeddings_through_twin(self.model, out, 3)
        layers = sorted({n.split(".")[3] for n in tensors if ".layers." in n})
        self.assertEqual(layers, ["1", "2"])  # the last two of three
        self.assertIn("vision_model.encoder.layers.2.self_attn.v_proj.bias", tensors)
        self.assertIn("visual_projection.weight", tensors)
        self.assertEqual(len(tensors), 2 * 16 + 3)

        # WiSE-FT: --mix 0.5 is the mean of the original and the trained weights
        half = self.out("apply-half")
        train(self.model, self.data, half, self.cache, "--method", "finetune", "--lr", "3e-3",
              "--epochs", "3", "--blocks", "2", "--val-fraction", "0", "--mix", "0.5")
        mixed, _ = read_adapter(half)
        original = clip_twin.read_model_weights(self.model)
        for name, value in tensors.items():
            want = 0.5 * original[name].double() + 0.5 * value
            torch.testing.assert_close(mixed[name], want, atol=1e-6, rtol=0, msg=name)

    def test_float16_model(self):
        model = os.path.join(self.tmp, "model-f16")
        clip_twin.make_model(model, seed=23, image_size=IMAGE_SIZE, vision_layers=2, dtype="F16")
        out = self.out("f16")
        train(model, self.data, out, self.cache, "--method", "finetune", "--lr", "3e-3",
              "--epochs", "2", "--blocks", "1", "--val-fraction", "0")
        tensors = self.check_embeddings_through_twin(model, out, 2)
        self.assertEqual(sorted({n.split(".")[3] for n in tensors if ".layers." in n}), ["1"])

    def test_one_epoch_matches_pytorch(self):
        lr, wd, batch, k_blocks, layers = 1e-4, 0.01, 10, 2, 3
        out = self.out("epoch")
        train(self.model, self.data, out, self.cache, "--method", "finetune", "--lr", str(lr),
              "--weight-decay", str(wd), "--epochs", "1", "--batch-size", str(batch),
              "--val-fraction", "0", "--warmup", "1", "--seed", "7")
        got, _ = read_adapter(out)

        paths = sorted_paths(self.paths)
        labels = torch.tensor([TAGS.index(os.path.basename(os.path.dirname(p))) for p in paths])
        n, c = len(paths), len(TAGS)
        counts = torch.bincount(labels, minlength=c).double()
        class_weights = n / (c * counts)
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in paths])
            hidden = twin_hidden(self.twin, pixels, layers - k_blocks)
            text = twin_class_embeddings(self.twin, [(t, ["a photo of a %s." % t]) for t in TAGS])
        original = clip_twin.read_model_weights(self.model)
        params = {}
        for k in range(k_blocks):
            for name, value in fused_block(original, layers - k_blocks + k).items():
                params["%d.%s" % (k, name)] = value.double().clone().requires_grad_()
        for name in ("vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
                     "visual_projection.weight"):
            params[name] = original[name].double().clone().requires_grad_()
        decay = [p for name, p in params.items()
                 if name.endswith("_weight") and "ln" not in name or name.endswith("projection.weight")]
        no_decay = [p for p in params.values() if not any(p is q for q in decay)]
        self.assertEqual(len(decay), 4 * k_blocks + 1)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=lr, betas=(0.9, 0.999), eps=1e-8)
        cfg = self.twin.vision_cfg
        eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]
        order = shuffle(range(n), 7, epoch_stream(1))
        batches = [order[i:i + batch] for i in range(0, n, batch)]
        total = len(batches)
        self.assertEqual(total, 3)
        for step, idx in enumerate(batches, start=1):
            opt.zero_grad()
            b, t, d = len(idx), hidden.shape[1], hidden.shape[2]
            x = hidden[idx].reshape(b * t, d)
            for k in range(k_blocks):
                w = {name: params["%d.%s" % (k, name)] for name in fused_block(original, 0)}
                x = block(x, w, b, heads, cfg["hidden_act"], False, eps)
            pooled = F.layer_norm(x.view(b, t, d)[:, 0], (d,),
                                  params["vision_model.post_layernorm.weight"],
                                  params["vision_model.post_layernorm.bias"], eps)
            emb = F.normalize(pooled @ params["visual_projection.weight"].T, dim=-1)
            loss = F.cross_entropy(self.twin.logit_scale * emb @ text.T, labels[idx],
                                   weight=class_weights)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
            # warm-up over 1 step, then a half cosine reaching 0 at step 3
            rate = lr * step if step <= 1 else lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / 2))
            for group in opt.param_groups:
                group["lr"] = rate
            opt.step()

        moved = 0.0
        for k in range(k_blocks):
            have = fused_block(got, layers - k_blocks + k)
            start = fused_block(original, layers - k_blocks + k)
            for name, value in have.items():
                want = params["%d.%s" % (k, name)].detach()
                err = float((value - want).abs().max())
                self.assertLessEqual(err, 1e-4, "block %d %s: max |C - torch| %.3g" % (k, name, err))
                moved = max(moved, float((want - start[name].double()).abs().max()))
        for name in ("vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
                     "visual_projection.weight"):
            err = float((got[name] - params[name].detach()).abs().max())
            self.assertLessEqual(err, 1e-4, "%s: max |C - torch| %.3g" % (name, err))
        self.assertGreater(moved, 1e-4)  # the steps did move the weights

    def test_kill_anywhere_then_resume(self):
        settings = ["--method", "finetune", "--lr", "1e-3", "--epochs", "40", "--patience", "40",
                    "--batch-size", "4", "--checkpoint-every", "1", "--seed", "5"]
        env = dict(os.environ, XDG_CACHE_HOME=self.cache)

        def command(out):
            return [AGRICLIP, "train", "--model", self.model, "--data", self.data, "--out", out,
                    *settings]

        ref_dir, folder = os.path.join(self.tmp, "ref"), os.path.join(self.tmp, "killed")
        os.makedirs(ref_dir)
        os.makedirs(folder)
        reference = os.path.join(ref_dir, "adapter.safetensors")
        started = time.monotonic()
        proc = subprocess.run(command(reference), capture_output=True, text=True, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        duration = time.monotonic() - started
        out = os.path.join(folder, "adapter.safetensors")
        rng = random.Random(77)
        kills = resumes = 0
        checkpoint = out + ".checkpoint"

        def stamp():
            return os.stat(checkpoint).st_mtime_ns if os.path.exists(checkpoint) else None

        for attempt in range(40):
            before = stamp()
            proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
            if attempt < 30:
                # mostly: once this run has saved a checkpoint, at a random point of
                # the next epoch (so every kill leaves progress to resume from, on a
                # fast or a loaded machine alike); every fourth: anywhere early,
                # loading and the first epoch included
                if attempt % 4 != 3:
                    while proc.poll() is None and stamp() == before:
                        time.sleep(0.002)
                    time.sleep(rng.uniform(0, duration / 40 * 1.5))
                else:
                    time.sleep(rng.uniform(0, duration * 0.2))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            _, stderr = proc.communicate(timeout=600)
            resumes += "resuming from" in stderr
            if proc.returncode == 0:
                break
            self.assertEqual(proc.returncode, -signal.SIGKILL, stderr)
            kills += 1
            if os.path.exists(out):
                break  # killed after the adapter was written: it is the finished one
            for name in os.listdir(folder):  # never a file that looks finished
                self.assertTrue(name == "adapter.safetensors.checkpoint"
                                or (name.startswith(".adapter.safetensors") and ".tmp-" in name),
                                name)
        got, got_meta = read_adapter(out)
        want, want_meta = read_adapter(reference)
        self.assertEqual(set(got), set(want))
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0, msg=name)
        self.assertEqual(got_meta["agriclip.metrics"], want_meta["agriclip.metrics"])
        self.assertGreaterEqual(kills, 5)
        self.assertGreaterEqual(resumes, 2)

    def test_bad_input(self):
        out = self.out("bad")
        for blocks in ("0", "4"):
            proc = train(self.model, self.data, out, self.cache, "--method", "finetune",
                         "--blocks", blocks, check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("blocks %s, the model has 3" % blocks, proc.stderr)
        self.assertFalse(os.path.exists(out))

        # an adapter trained on another model is refused by classify and embed
        other = os.path.join(self.tmp, "other-model")
        clip_twin.make_model(other, seed=22, image_size=IMAGE_SIZE, vision_layers=3)
        adapter = self.out("for-other")
        train(other, self.data, adapter, self.cache, "--method", "finetune", "--epochs", "1")
        image = sorted(self.paths["rust"])[0]
        for args in (["classify", "--adapter", adapter, image],
                     ["embed", "--adapter", adapter, "--image", image]):
            proc = run([args[0], "--model", self.model] + args[1:], self.cache, check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("trained on another model", proc.stderr)

        # a probe adapter does not change embeddings: embed says so
        probe = self.out("probe")
        train(self.model, self.data, probe, self.cache, "--epochs", "1")
        proc = run(["embed", "--model", self.model, "--adapter", probe, "--image", image],
                   self.cache, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("probe adapter does not change embeddings", proc.stderr)

        # an unreadable photo is skipped and named
        data = os.path.join(self.tmp, "with-broken")
        shutil.copytree(self.data, data)
        broken = os.path.join(data, "rust", "broken.png")
        with open(broken, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nnot really")
        proc = train(self.model, data, self.out("broken"), self.cache, "--method", "finetune",
                     "--epochs", "1")
        self.assertIn("broken.png", proc.stderr)
        _, meta = read_adapter(self.out("broken"))
        self.assertEqual(meta["agriclip.metrics"]["n_skipped"], 1)

    def test_agriclip_model_is_refused(self):
        from test_resnet import random_resnet50
        folder = os.path.join(self.tmp, "agriclip")
        shutil.copytree(self.model, folder)
        os.makedirs(os.path.join(folder, "Weights"))
        torch.save(random_resnet50(seed=3).state_dict(),
                   os.path.join(folder, "Weights", "dino_pretrain.pth"))
        torch.save({"W": torch.zeros(32, 2048), "b": torch.zeros(32)},
                   os.path.join(folder, "Weights", "Agri_Dino_aligner_DPT_CPT.pth"))
        proc = train(folder, self.data, self.out("agri"), self.cache, "--method", "finetune",
                     check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("has none (an AgriCLIP ResNet-50 model)", proc.stderr)


if __name__ == "__main__":
    unittest.main()
