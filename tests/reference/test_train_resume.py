"""test_train_resume.py — `agriclip train` killed with SIGKILL at random
points (while loading, embedding, training, writing a checkpoint or the
adapter) and started again until it finishes must write the same adapter as
an uninterrupted run; a killed run leaves nothing at the adapter's path
unless it was killed after writing the finished adapter (then that adapter
must be the right one), and the checkpoint it leaves is refused by
`classify --adapter`.

The comparison tolerance is 1e-6, but resuming is exact by design: the
checkpoint holds every number the next epoch reads, and the batch order of
an epoch depends only on the seed and the epoch number.
"""

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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_train import IMAGE_SIZE, read_adapter, run, write_class_folders  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
# Many short epochs with a checkpoint after each, so that kills land in every phase.
SETTINGS = ["--epochs", "150", "--patience", "30", "--batch-size", "2", "--checkpoint-every", "1",
            "--seed", "11"]


def inode(path):
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class KillAndResume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-resume-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=31, image_size=IMAGE_SIZE)
        cls.data = os.path.join(cls.tmp, "data")
        write_class_folders(cls.data, {"rust": 12, "blight": 12, "healthy": 12}, seed=12)
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.env = dict(os.environ, XDG_CACHE_HOME=cls.cache)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def command(self, out, *extra):
        return [AGRICLIP, "train", "--model", self.model, "--data", self.data, "--out", out,
                *SETTINGS, *extra]

    def uninterrupted(self, name, *extra):
        folder = os.path.join(self.tmp, name)
        os.makedirs(folder)
        out = os.path.join(folder, "adapter.safetensors")
        started = time.monotonic()
        proc = subprocess.run(self.command(out, *extra), capture_output=True, text=True,
                              env=self.env, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("resuming from", proc.stderr)
        return out, time.monotonic() - started

    def assert_nothing_finished(self, folder):
        """After a kill: no adapter, at most a checkpoint and hidden temporaries."""
        for name in os.listdir(folder):
            self.assertTrue(name == "adapter.safetensors.checkpoint" or
                            (name.startswith(".adapter.safetensors") and ".tmp-" in name), name)

    def test_kill_anywhere_then_resume(self):
        self.uninterrupted("warm-up")  # fills the embedding cache, as a first run would
        reference, duration = self.uninterrupted("reference")
        _, startup = self.uninterrupted("startup", "--epochs", "0")
        training = max(duration - startup, 0.05)
        folder = os.path.join(self.tmp, "killed")
        os.makedirs(folder)
        out = os.path.join(folder, "adapter.safetensors")
        checkpoint = out + ".checkpoint"
        rng = random.Random(20240517)
        kills = kills_in_training = resumes = 0
        checked_refusal = False
        for attempt in range(60):
            proc = subprocess.Popen(self.command(out), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=self.env)
            if attempt < 50:  # then let it finish
                if attempt % 2 == 0:  # anywhere: start-up, embedding, training
                    time.sleep(rng.uniform(0, startup + 0.05 * training))
                else:  # surely in training: a little after the next checkpoint
                    before = inode(checkpoint)  # each checkpoint is a new file
                    deadline = time.monotonic() + 10 * duration + 5
                    while proc.poll() is None and time.monotonic() < deadline:
                        if inode(checkpoint) not in (None, before):
                            break
                        time.sleep(0.0005)
                    time.sleep(rng.uniform(0, 0.05 * training))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=600)
            resumes += "resuming from" in stderr
            if proc.returncode == 0:
                break
            self.assertEqual(proc.returncode, -signal.SIGKILL, stderr)
            kills += 1
            kills_in_training += os.path.exists(checkpoint)
            if os.path.exists(out):
                break  # killed after the adapter was written: it is the finished one
            self.assert_nothing_finished(folder)
            if os.path.exists(checkpoint) and not checked_refusal:
                refused = run(["classify", "--model", self.model, "--adapter", checkpoint,
                               os.path.join(self.data, "rust", "000.png")], self.cache,
                              check=False)
                self.assertEqual(refused.returncode, 1)
                self.assertIn("checkpoint, not a finished adapter", refused.stderr)
                checked_refusal = True
        self.assertTrue(os.path.exists(out))
        got, got_meta = read_adapter(out)
        want, want_meta = read_adapter(reference)
        self.assertEqual(set(got), set(want))
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0, msg=name)
        self.assertEqual(got_meta["agriclip.metrics"], want_meta["agriclip.metrics"])
        # and the run was really cut, several times while training
        self.assertGreaterEqual(kills, 8)
        self.assertGreaterEqual(kills_in_training, 4)
        self.assertGreaterEqual(resumes, 4)
        if proc.returncode == 0:  # done: the checkpoint and killed writes' temporaries are gone
            self.assertEqual(os.listdir(folder), ["adapter.safetensors"])

    def kill_after_first_checkpoint(self, out):
        proc = subprocess.Popen(self.command(out), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=self.env)
        while proc.poll() is None and not os.path.exists(out + ".checkpoint"):
            time.sleep(0.0005)
        proc.kill()
        proc.wait()
        self.assertTrue(os.path.exists(out + ".checkpoint"), "finished before a checkpoint")

    def test_checkpoint_of_other_settings_is_not_used(self):
        folder = os.path.join(self.tmp, "other-settings")
        os.makedirs(folder)
        out = os.path.join(folder, "adapter.safetensors")
        self.kill_after_first_checkpoint(out)
        proc = subprocess.run(self.command(out, "--lr", "0.02"), capture_output=True,
                              text=True, env=self.env, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("resuming from", proc.stderr)
        self.assertIn("adapter.safetensors.checkpoint: made with another model, other data or "
                      "other settings", proc.stderr)
        reference, _ = self.uninterrupted("other-reference", "--lr", "0.02")
        got, _ = read_adapter(out)
        want, _ = read_adapter(reference)
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0, msg=name)

    def test_restart_ignores_the_checkpoint(self):
        folder = os.path.join(self.tmp, "restart")
        os.makedirs(folder)
        out = os.path.join(folder, "adapter.safetensors")
        self.kill_after_first_checkpoint(out)
        proc = subprocess.run(self.command(out, "--restart"), capture_output=True, text=True,
                              env=self.env, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("resuming from", proc.stderr)
        self.assertFalse(os.path.exists(out + ".checkpoint"))


if __name__ == "__main__":
    unittest.main()
