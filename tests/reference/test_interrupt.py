"""Ctrl-C (SIGINT) and SIGTERM cancel long commands cleanly (cli/interrupt.c).

The first signal cancels the work through the library's GCancellable: the
command stops at the library's next check, says so on stderr, exits with
status 130 and keeps what lets the same command resume.  Resumed, the output
equals, byte for byte, that of a run never interrupted:
- `train`: a checkpoint is written for the steps since the last one; the
  adapter is not written by the interrupted run;
- `tag`: the run folder's journal; results.jsonl of the resumed run;
- `synth`: stops and says the folder is incomplete.
A process killed by the signal's default action would end with -SIGINT and
print nothing, so each check can fail.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_tag import LABELS, read_run, write_images  # noqa: E402
from test_train import IMAGE_SIZE, write_class_folders  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wait_for(proc, condition, timeout=120):
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class Interrupt(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-interrupt-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def interrupted(self, proc, signum):
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
        stderr = stderr.decode()
        self.assertEqual(proc.returncode, 130, stderr)
        self.assertIn("agriclip: interrupted", stderr)
        return stderr

    def test_train_keeps_a_checkpoint_and_resumes(self):
        root = os.path.join(self.tmp, "train")
        model, data = os.path.join(root, "model"), os.path.join(root, "data")
        clip_twin.make_model(model, seed=51, image_size=IMAGE_SIZE)
        write_class_folders(data, {"rust": 40, "blight": 40, "healthy": 40}, seed=52)
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(root, "cache"))

        def command(out, epochs=40):
            # fine-tuning (seconds, where a probe takes milliseconds); checkpoints
            # every 100 of 40 epochs: one found after the interrupt can only
            # come from the cancellation
            return [AGRICLIP, "train", "--method", "finetune", "--model", model, "--data", data,
                    "--out", out, "--epochs", str(epochs), "--patience", str(epochs), "--batch-size", "8",
                    "--checkpoint-every", "100", "--seed", "7", "--threads", "2"]

        reference = os.path.join(root, "reference.safetensors")
        warm = os.path.join(root, "warm.safetensors")  # embeds the images into the cache
        subprocess.run(command(warm, epochs=1), check=True, capture_output=True, env=env)
        started = time.monotonic()
        subprocess.run(command(reference), check=True, capture_output=True, env=env)
        duration = time.monotonic() - started
        out = os.path.join(root, "adapter.safetensors")
        for signum in (signal.SIGINT, signal.SIGTERM):
            proc = subprocess.Popen(command(out), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
            time.sleep(0.25 * duration)  # a quarter of a whole run: into the epochs
            self.assertIsNone(proc.poll(), "the run ended before the signal")
            stderr = self.interrupted(proc, signum)
            self.assertIn("resumes", stderr)
            self.assertTrue(os.path.exists(out + ".checkpoint"), stderr)
            self.assertFalse(os.path.exists(out))
        proc = subprocess.run(command(out), capture_output=True, text=True, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(digest(out), digest(reference))
        self.assertFalse(os.path.exists(out + ".checkpoint"))

    def test_tag_resumes_to_the_same_results(self):
        root = os.path.join(self.tmp, "tag")
        model, src = os.path.join(root, "model"), os.path.join(root, "photos")
        clip_twin.make_model(model, seed=41, image_size=IMAGE_SIZE)
        labels = os.path.join(root, "labels.json")
        with open(labels, "w", encoding="utf-8") as f:
            json.dump(LABELS, f)
        write_images(src, [f"{i:04d}.png" for i in range(600)], seed=5)
        base = [AGRICLIP, "tag", "--model", model, "--labels", labels, "--workers", "1"]
        reference = os.path.join(root, "uninterrupted")
        subprocess.run(base + ["--out", reference, src], check=True, capture_output=True)
        _, want, _ = read_run(reference)
        run_dir = os.path.join(root, "interrupted")
        results = os.path.join(run_dir, "results.jsonl")
        proc = subprocess.Popen(base + ["--out", run_dir, src], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.assertTrue(wait_for(proc, lambda: os.path.exists(results)
                                 and os.path.getsize(results) > 0), "no result before the end")
        stderr = self.interrupted(proc, signal.SIGINT)
        self.assertIn("resumes", stderr)
        self.assertLess(os.path.getsize(results), len(want))
        subprocess.run(base + ["--out", run_dir, src], check=True, capture_output=True)
        _, got, _ = read_run(run_dir)
        self.assertEqual(got, want)

    def test_synth_says_the_folder_is_incomplete(self):
        out = os.path.join(self.tmp, "synth")
        proc = subprocess.Popen([AGRICLIP, "synth", "--out", out, "--seed", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertTrue(wait_for(proc, lambda: os.path.isdir(out)), "synth wrote nothing")
        time.sleep(0.2)
        stderr = self.interrupted(proc, signal.SIGINT)
        self.assertIn("incomplete", stderr)


if __name__ == "__main__":
    unittest.main()
