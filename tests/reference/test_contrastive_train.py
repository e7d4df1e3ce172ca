"""test_contrastive_train.py — `agriclip train --method contrastive` (issue 16,
part 3) against PyTorch, on pairs written by `agriclip captions` from
generated photos and a small random twin model (clip_twin).

- Two epochs of two batches equal PyTorch (<= 1e-4), for the last 2 blocks
  and for every block (--blocks 0): the twin's hidden states below the
  trained blocks of both towers, the batch order of the seeded shuffle,
  autograd through both tops (the text tower's causal blocks pooled at the
  end-of-text token), CLIP's symmetric loss with the learned logit scale,
  clip_grad_norm_ over everything, torch.optim.AdamW (decay on matrices
  only) with the warm-up + cosine learning rates, the scale clamped to
  [0, ln 100].
- `classify --adapter` with the trained adapter equals the float64 twin with
  the adapter's tensors loaded (probabilities within 1e-4); the adapter's
  classes are those of the tagged folder the captions came from.
- SIGKILL at random points, then the same command again, ends with the
  adapter of an uninterrupted run.
- Bad input: --blocks beyond the towers, a folder without captions.jsonl,
  an unreadable photo (skipped and named, its pairs left out).
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
from test_finetune_train import epoch_stream, shuffle  # noqa: E402
from test_train import (IMAGE_SIZE, read_adapter, run, train,  # noqa: E402
                        twin_class_embeddings, write_class_folders)
import test_zeroshot as zeroshot  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
LAYERS = 3  # of each tower
BLOCK_PARTS = ("ln1_weight", "ln1_bias", "qkv_weight", "qkv_bias", "out_weight", "out_bias",
               "ln2_weight", "ln2_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")
DECAYS = ("qkv_weight", "out_weight", "fc1_weight", "fc2_weight")


def fused_block(weights, tower, layer):
    """A layer's HF tensors as test_backward.block's fused names."""
    p = f"{tower}.encoder.layers.{layer}."
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


def vision_hidden(twin, pixels, n_layers):
    """The image tower's residual stream after n_layers blocks [B, T, D]."""
    cfg, w = twin.vision_cfg, twin.w
    x = F.conv2d(pixels.double(), w["vision_model.embeddings.patch_embedding.weight"],
                 stride=cfg["patch_size"]).flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + w["vision_model.embeddings.position_embedding.weight"]
    x = twin._ln(x, "vision_model.pre_layrnorm", cfg["layer_norm_eps"])
    lower = dict(cfg, num_hidden_layers=n_layers)
    return twin._encoder(x, "vision_model", lower, None)


def text_hidden(twin, ids, n_layers):
    """The text tower's residual stream after n_layers causal blocks [B, ctx, W]."""
    cfg, w = twin.text_cfg, twin.w
    t = ids.shape[1]
    x = (w["text_model.embeddings.token_embedding.weight"][ids]
         + w["text_model.embeddings.position_embedding.weight"][:t])
    mask = torch.full((t, t), float("-inf"), dtype=torch.float64).triu(1)
    lower = dict(cfg, num_hidden_layers=n_layers)
    return twin._encoder(x, "text_model", lower, mask)


def read_pairs(folder):
    import json
    with open(os.path.join(folder, "captions.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [os.path.join(folder, r["image"]) for r in rows], [r["caption"] for r in rows]


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ContrastiveTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-contrastive-train-")
        cls.model = os.path.join(cls.tmp, "model")
        # a scale below CLIP's clamp, so that the step moves it
        clip_twin.make_model(cls.model, seed=21, image_size=IMAGE_SIZE, vision_layers=LAYERS,
                             text_layers=LAYERS, logit_scale=math.log(20.0))
        cls.twin = clip_twin.load_twin(cls.model)
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.tagged = os.path.join(cls.tmp, "tagged")
        cls.paths = write_class_folders(cls.tagged, {"rust": 4, "blight": 4, "healthy": 4}, seed=5)
        cls.pairs = os.path.join(cls.tmp, "pairs")
        run(["captions", "--data", cls.tagged, "--out", cls.pairs, "--seed", "3"], cls.cache)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, name + ".safetensors")

    def check_epochs_match_pytorch(self, k_arg, k_blocks):
        lr, wd, batch, epochs, seed = 1e-4, 0.1, 18, 2, 7
        out = self.out("epochs-%d" % k_blocks)
        train(self.model, self.pairs, out, self.cache, "--method", "contrastive", "--lr", str(lr),
              "--weight-decay", str(wd), "--epochs", str(epochs), "--batch-size", str(batch),
              "--val-fraction", "0", "--warmup", "1", "--seed", str(seed), "--blocks", k_arg)
        got, meta = read_adapter(out)
        self.assertEqual(meta["agriclip.method"], "contrastive")

        images, captions = read_pairs(self.pairs)
        n, first = len(images), LAYERS - k_blocks
        self.assertEqual(n, 36)  # three captions per photo
        ids = clip_twin.tokenize(captions)
        lengths = ids.argmax(dim=-1)
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in images])
            vh = vision_hidden(self.twin, pixels, first)
            th = text_hidden(self.twin, ids, first)
        original = clip_twin.read_model_weights(self.model)
        params, decay = {}, []
        for tower in ("vision_model", "text_model"):
            for k in range(k_blocks):
                for name, value in fused_block(original, tower, first + k).items():
                    key = "%s.%d.%s" % (tower, first + k, name)
                    params[key] = value.double().clone().requires_grad_()
                    if name in DECAYS:
                        decay.append(params[key])
        heads = ("vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
                 "visual_projection.weight", "text_model.final_layer_norm.weight",
                 "text_model.final_layer_norm.bias", "text_projection.weight")
        for name in heads:
            params[name] = original[name].double().clone().requires_grad_()
        decay += [params["visual_projection.weight"], params["text_projection.weight"]]
        params["logit_scale"] = original["logit_scale"].double().reshape(1).clone().requires_grad_()
        no_decay = [p for p in params.values() if not any(p is q for q in decay)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=lr, betas=(0.9, 0.999), eps=1e-8)

        def top(tower, x, cfg, causal):
            b, t, d = x.shape
            x = x.reshape(b * t, d)
            for k in range(k_blocks):
                w = {name: params["%s.%d.%s" % (tower, first + k, name)] for name in BLOCK_PARTS}
                x = block(x, w, b, cfg["num_attention_heads"], cfg["hidden_act"], causal,
                          cfg["layer_norm_eps"])
            return x.view(b, t, d)

        vcfg, tcfg = self.twin.vision_cfg, self.twin.text_cfg
        total, step = epochs * 2, 0
        for epoch in range(1, epochs + 1):
            order = shuffle(range(n), seed, epoch_stream(epoch))
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                step += 1
                opt.zero_grad()
                xv = top("vision_model", vh[idx], vcfg, False)
                pooled = F.layer_norm(xv[:, 0], (xv.shape[-1],),
                                      params["vision_model.post_layernorm.weight"],
                                      params["vision_model.post_layernorm.bias"],
                                      vcfg["layer_norm_eps"])
                img = F.normalize(pooled @ params["visual_projection.weight"].T, dim=-1)
                xt = top("text_model", th[idx], tcfg, True)
                eot = xt[torch.arange(len(idx)), lengths[idx]]
                pooled = F.layer_norm(eot, (eot.shape[-1],),
                                      params["text_model.final_layer_norm.weight"],
                                      params["text_model.final_layer_norm.bias"],
                                      tcfg["layer_norm_eps"])
                txt = F.normalize(pooled @ params["text_projection.weight"].T, dim=-1)
                logits = params["logit_scale"].exp() * img @ txt.T
                target = torch.arange(len(idx))
                loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
                # warm-up over 1 step, then a half cosine reaching 0 at the last step
                rate = lr if step == 1 else lr * 0.5 * (1 + math.cos(math.pi * (step - 1)
                                                                      / (total - 1)))
                for group in opt.param_groups:
                    group["lr"] = rate
                opt.step()
                with torch.no_grad():
                    params["logit_scale"].clamp_(0.0, math.log(100.0))

        moved = {}
        for tower in ("vision_model", "text_model"):
            for k in range(k_blocks):
                have = fused_block(got, tower, first + k)
                start = fused_block(original, tower, first + k)
                for name, value in have.items():
                    want = params["%s.%d.%s" % (tower, first + k, name)].detach()
                    err = float((value - want).abs().max())
                    self.assertLessEqual(err, 1e-4, "%s %d %s: max |C - torch| %.3g"
                                         % (tower, first + k, name, err))
                    moved[tower] = max(moved.get(tower, 0.0),
                                       float((want - start[name].double()).abs().max()))
        for name in heads + ("logit_scale",):
            want = params[name].detach()
            err = float((got[name].reshape(want.shape) - want).abs().max())
            self.assertLessEqual(err, 1e-4, "%s: max |C - torch| %.3g" % (name, err))
        # no other tensor, and every trained one did move
        self.assertEqual(len(got), 2 * 16 * k_blocks + len(heads) + 1)
        self.assertGreater(moved["vision_model"], 1e-4)
        self.assertGreater(moved["text_model"], 1e-4)
        self.assertGreater(abs(float(got["logit_scale"]) - math.log(20.0)), 1e-4)
        return out

    def test_epochs_match_pytorch(self):
        out = self.check_epochs_match_pytorch("2", 2)
        self.check_classify_equals_twin(out)
        self.check_epochs_match_pytorch("0", LAYERS)  # every block

    def check_classify_equals_twin(self, adapter):
        """classify --adapter equals the twin with the adapter's tensors loaded."""
        tensors, meta = read_adapter(adapter)
        classes = [(c["name"], c["prompts"]) for c in meta["agriclip.classes"]]
        self.assertEqual([c[0] for c in classes], ["blight", "healthy", "rust"])
        images = sorted(p for tag in self.paths for p in self.paths[tag])[:6]
        proc = run(["classify", "--model", self.model, "--adapter", adapter, "--format",
                    "jsonl", "--top", "10"] + images, self.cache)
        got = zeroshot.parse_jsonl(proc.stdout)
        weights = clip_twin.read_model_weights(self.model)
        replaced = dict(weights)
        for name, value in tensors.items():
            self.assertIn(name, weights)
            replaced[name] = value.reshape(weights[name].shape)
        import json
        with open(os.path.join(self.model, "config.json")) as f:
            config = json.load(f)
        twin = clip_twin.TwinCLIP(config, replaced).eval()
        with torch.no_grad():
            pixels = torch.stack([clip_twin.preprocess_image(p, IMAGE_SIZE) for p in images])
            img = F.normalize(twin.encode_image(pixels), dim=-1)
            probs = torch.softmax(twin.logit_scale * img @ twin_class_embeddings(twin, classes).T,
                                  dim=-1)
        names = [c[0] for c in classes]
        self.assertEqual(len(got), len(images))
        for row, (image, labelled) in enumerate(got):
            self.assertEqual(image, images[row])
            for label, p in labelled:
                self.assertAlmostEqual(p, float(probs[row, names.index(label)]), delta=1e-4,
                                       msg=(image, label))

    def test_kill_anywhere_then_resume(self):
        settings = ["--method", "contrastive", "--lr", "1e-3", "--epochs", "12", "--patience",
                    "12", "--batch-size", "4", "--checkpoint-every", "1", "--seed", "5",
                    "--val-fraction", "0.25"]
        env = dict(os.environ, XDG_CACHE_HOME=self.cache)

        def command(out):
            return [AGRICLIP, "train", "--model", self.model, "--data", self.pairs, "--out", out,
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
        checkpoint = out + ".checkpoint"
        rng = random.Random(77)
        kills = resumes = 0

        def stamp():
            return os.stat(checkpoint).st_mtime_ns if os.path.exists(checkpoint) else None

        for attempt in range(16):
            before = stamp()
            proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
            if attempt < 10:
                # once this run has saved a checkpoint, at a random point of the next
                # epochs; every fourth: anywhere early, loading included
                if attempt % 4 != 3:
                    while proc.poll() is None and stamp() == before:
                        time.sleep(0.002)
                    time.sleep(rng.uniform(0, duration / 12 * 1.5))
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
        got, got_meta = read_adapter(out)
        want, want_meta = read_adapter(reference)
        self.assertEqual(set(got), set(want))
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=0, rtol=0, msg=name)
        self.assertEqual(got_meta["agriclip.metrics"], want_meta["agriclip.metrics"])
        self.assertGreaterEqual(kills, 3)
        self.assertGreaterEqual(resumes, 2)

    def test_bad_input(self):
        out = self.out("bad")
        proc = train(self.model, self.pairs, out, self.cache, "--method", "contrastive",
                     "--blocks", "4", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("blocks 4, the image tower has 3, the text tower 3", proc.stderr)
        proc = train(self.model, self.tagged, out, self.cache, "--method", "contrastive",
                     check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("captions.jsonl", proc.stderr)
        self.assertEqual(proc.stderr.count("\n"), 1, proc.stderr)
        self.assertFalse(os.path.exists(out))

        # an unreadable photo is skipped, named, and its pairs left out
        folder = os.path.join(self.tmp, "with-broken")
        os.makedirs(folder)
        os.symlink(os.path.join(self.pairs, "photos"), os.path.join(folder, "photos"))
        with open(os.path.join(folder, "broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nnot really")
        with open(os.path.join(self.pairs, "captions.jsonl")) as f:
            lines = f.read()
        with open(os.path.join(folder, "captions.jsonl"), "w") as f:
            f.write(lines + '{"image": "broken.png", "caption": "a broken photo."}\n')
        proc = train(self.model, folder, self.out("broken"), self.cache, "--method",
                     "contrastive", "--epochs", "1")
        self.assertIn("broken.png", proc.stderr)
        _, meta = read_adapter(self.out("broken"))
        self.assertEqual(meta["agriclip.metrics"]["n_skipped"], 1)
        self.assertEqual(meta["agriclip.metrics"]["n_train"] + meta["agriclip.metrics"]["n_val"],
                         36)


if __name__ == "__main__":
    unittest.main()
