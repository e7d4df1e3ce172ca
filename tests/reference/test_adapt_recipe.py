"""tools/adapt-recipe.sh, AgriCLIP's recipe in one command, end to end on
a tiny AgriCLIP model (test_dino_train.py's: a random ResNet-50 and aligner
beside a tiny CLIP) and drawn leaves: captions, contrastive when
`agriclip train --help` lists it, DINO on the tagged folder's photos, the
aligner stacked on the DINO adapter, evaluate before and after.

Checks: every stage ran (contrastive exactly when the CLI has it); the
pairs name every photo; the final adapter is the aligner stacked on the
DINO adapter (agriclip.stack, the DINO adapter's tensors in it) and embeds
as a PyTorch ResNet-50 with its tensors loaded and its aligner applied;
the printed table has both folders and their mean, the adapted accuracy
equal to `agriclip evaluate --format json` of that adapter.  Small DINO crops
(32 px), one epoch, 9 + 6 photos; the ResNet-50 at 224 px for the aligner and
evaluate dominates the time.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_aligner import write_data  # noqa: E402
import test_dino_train as dino_train  # noqa: E402 (not its TestCase: unittest would run it)
from test_train import read_adapter  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
SCRIPT = os.path.join(os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", "..")),
                      "tools", "adapt-recipe.sh")
DINO = "--epochs 1 --batch-size 2 --local-crops 1 --crop-size 32 --out-dim 64 --lr 1e-3"


@unittest.skipUnless(AGRICLIP, "AGRICLIP is not set")
@unittest.skipIf(os.environ.get("AGC_SANITIZED") == "1",
                 "ResNet-50 training and evaluation at 224 px of commands whose code the other "
                 "tests run under the sanitizers: too slow there")
class AdaptRecipe(unittest.TestCase):
    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-adapt-recipe-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.model, _, _ = dino_train.make_agriclip(cls.tmp)
        cls.data = os.path.join(cls.tmp, "farm")
        cls.tagged = write_data(cls.data, {"rust": 3, "blight": 3, "healthy": 3}, seed=4)
        cls.other = os.path.join(cls.tmp, "farm-2025")
        write_data(cls.other, {"rust": 2, "blight": 2, "healthy": 2}, seed=9)
        cls.work = os.path.join(cls.tmp, "work")
        env = dict(os.environ, XDG_CACHE_HOME=cls.cache)
        cls.proc = subprocess.run(
            ["sh", SCRIPT, "--agriclip", AGRICLIP, "--model", cls.model, "--data", cls.data,
             "--eval", cls.other, "--out", cls.work, "--dino", DINO,
             "--aligner", "--val-fraction 0 --ridge 1"],
            capture_output=True, text=True, timeout=900, env=env)

    def test_every_stage_ran(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        out = self.proc.stdout
        for stage in ("1 captions", "3 DINO", "4 the aligner", "5 zero-shot"):
            self.assertIn("== " + stage, out)
        help_text = dino_train.run(["train", "--help"], self.cache).stdout
        has_contrastive = "contrastive" in help_text
        self.assertEqual("== 2 contrastive training" in out, has_contrastive)
        with open(os.path.join(self.work, "pairs", "captions.jsonl")) as f:
            named = {json.loads(line)["image"] for line in f}
        self.assertEqual(len(named), len(self.tagged))

    def test_final_adapter_is_the_aligner_on_dino(self):
        final = os.path.join(self.work, "adapted.safetensors")
        tensors, meta = read_adapter(final)
        self.assertEqual(meta["agriclip.method"], "aligner")
        stack = json.loads(meta["agriclip.stack"])
        self.assertEqual([s["method"] for s in stack][-1], "dino")
        dino, _ = read_adapter(os.path.join(self.work, "dino.safetensors"))
        for name in ("conv1.weight", "layer4.2.bn3.running_var"):
            self.assertTrue((tensors[name] == dino[name]).all(), name)
        paths = [p for p, _ in self.tagged[:2]]
        got = dino_train.DinoTraining.embed(self, paths, "--adapter", final)
        want = dino_train.DinoTraining.torch_embeddings(self, tensors, tensors["W"],
                                                        tensors["b"], paths)
        dino_train.DinoTraining.assert_close(self, got, want)

    def test_table_before_and_after(self):
        lines = self.proc.stdout.split("== 5")[1].splitlines()
        self.assertTrue(any(self.data in line for line in lines), lines)
        self.assertTrue(any(self.other in line for line in lines), lines)
        report = json.loads(dino_train.run(["evaluate", "--model", self.model, "--data", self.data,
                                 "--data", self.other, "--adapter",
                                 os.path.join(self.work, "adapted.safetensors"),
                                 "--format", "json"], self.cache).stdout)
        text = "\n".join(lines)
        for row in report["datasets"] + [report["average"]]:
            self.assertIn("%.1f %%" % (100 * row["adapted"]), text)


if __name__ == "__main__":
    unittest.main()
