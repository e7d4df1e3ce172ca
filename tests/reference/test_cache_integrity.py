"""Damaged cache entries are misses, never results: an embedding-cache entry
with two values swapped, negated, with another image's values (under its
own key) or copied whole from another image's entry, and a content-hash memo
with another digest, are computed again and rewritten, and the adapter
trained is byte for byte the one trained from a clean cache.

The entries are edited here with struct and json from the safetensors
specification; what the values should be is the first run's own entry."""

import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_train import IMAGE_SIZE, write_class_folders  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")


def read_entry(path):
    """(header bytes with their length, header dict, float values)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    begin, end = header["embedding"]["data_offsets"]
    data = raw[8 + n + begin:8 + n + end]
    return raw[:8 + n + begin], header, list(struct.unpack(f"<{len(data) // 4}f", data))


def write_values(path, values):
    head, _, _ = read_entry(path)
    with open(path, "wb") as f:
        f.write(head + struct.pack(f"<{len(values)}f", *values))


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class CacheIntegrity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-cache-integrity-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=41, image_size=IMAGE_SIZE)
        cls.data = os.path.join(cls.tmp, "data")
        write_class_folders(cls.data, {"rust": 6, "healthy": 6}, seed=3)
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.reference = os.path.join(cls.tmp, "reference.safetensors")
        out = cls.train(cls.reference)
        assert "(0 from the cache" in out, out
        cls.entries = sorted(glob.glob(os.path.join(cls.cache, "agriclip", "embeddings", "*",
                                                    "*", "*.safetensors")))
        assert len(cls.entries) == 12, cls.entries
        cls.originals = {}
        for path in cls.entries:
            with open(path, "rb") as f:
                cls.originals[path] = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def train(cls, out):
        proc = subprocess.run([AGRICLIP, "train", "--model", cls.model, "--data", cls.data,
                               "--out", out, "--epochs", "5", "--seed", "3"],
                              capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, XDG_CACHE_HOME=cls.cache))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    def assertRecomputed(self, damaged, hits):
        out = os.path.join(self.tmp, "again.safetensors")
        if os.path.exists(out):
            os.unlink(out)
        log = self.train(out)
        self.assertIn(f"({hits} from the cache", log)
        with open(out, "rb") as a, open(self.reference, "rb") as b:
            self.assertEqual(a.read(), b.read(), "the adapter of a clean cache")
        for path in damaged:  # rewritten as it was
            with open(path, "rb") as f:
                self.assertEqual(f.read(), self.originals[path], path)

    def test_swapped_values(self):
        path = self.entries[0]
        _, _, values = read_entry(path)
        values[0], values[1] = values[1], values[0]
        write_values(path, values)
        self.assertRecomputed([path], 11)

    def test_negated(self):
        path = self.entries[1]
        _, _, values = read_entry(path)
        write_values(path, [-v for v in values])
        self.assertRecomputed([path], 11)

    def test_another_images_values(self):
        path, other = self.entries[2], self.entries[3]
        write_values(path, read_entry(other)[2])
        self.assertRecomputed([path], 11)

    def test_another_images_entry(self):
        path, other = self.entries[4], self.entries[5]
        shutil.copyfile(other, path)
        self.assertRecomputed([path], 11)

    def test_partial_batch(self):
        """What a run killed while storing a batch leaves: some of its
        entries.  The rest are computed in the same batch as before, so
        with the same bits (an image's values change in the last bits with
        the images encoded beside it)."""
        removed = self.entries[6:9]
        for path in removed:
            os.unlink(path)
        self.assertRecomputed(removed, 9)

    def test_damaged_hash_memo(self):
        memos = sorted(glob.glob(os.path.join(self.cache, "agriclip", "hashes", "*", "*")))
        self.assertGreaterEqual(len(memos), 12)
        saved = {}
        for memo in memos:
            with open(memo) as f:
                text = f.read()
            saved[memo] = text
            # another valid-looking digest: the first digit changed
            with open(memo, "w") as f:
                f.write("%x" % ((int(text[0], 16) + 1) % 16) + text[1:])
        self.assertRecomputed([], 12)
        for memo, text in saved.items():
            with open(memo) as f:
                self.assertEqual(f.read(), text, "rewritten")


if __name__ == "__main__":
    unittest.main()
