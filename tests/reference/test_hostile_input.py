"""Hostile and unlucky inputs given to the agriclip command (issue 17): each
case crafts its input here, and each must end with exit status 1 and one line
on stderr, "agriclip: ...", naming the file; never a signal, never a GLib
CRITICAL or a sanitizer report (this suite runs again under ASan/UBSan), in
bounded memory (an address-space limit, when not sanitized) and bounded time
(a timeout on every run).  Beside test_bad_input.py (malformed models, images,
label sets), which it does not repeat; the crafted pickles and ZIP archives
that already held are here too, so that they keep holding."""

import io
import json
import os
import pickle
import resource
import shutil
import struct
import subprocess
import tempfile
import time
import unittest
import zipfile
import zlib

from PIL import Image

import clip_twin

AGRICLIP = os.environ["AGRICLIP"]
SANITIZED = os.environ.get("AGC_SANITIZED") == "1"
MEMORY_LIMIT = 3 << 30   # bytes of address space for one run (not under ASan,
#                          which reserves terabytes of shadow memory)
TIMEOUT = 120            # seconds; a hang would otherwise be forever
DEEP = 100_000           # nesting levels: json-glib overflowed the stack at ~80,000


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args, env=None, cache=None):
    environment = dict(os.environ, **(env or {}))
    if cache is not None:
        environment["XDG_CACHE_HOME"] = cache
    return subprocess.run([AGRICLIP, *args], capture_output=True, timeout=TIMEOUT,
                          env=environment, preexec_fn=None if SANITIZED else limit_memory)


def deep_json(levels=DEEP):
    """Nested arrays inside an object, balanced: only the depth is wrong."""
    return '{"a": ' + "[" * levels + "]" * levels + "}"


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def safetensors_bytes(header_text, body=b""):
    header = header_text.encode()
    return struct.pack("<Q", len(header)) + header + body


def png_header_only(width, height):
    """A PNG signature and IHDR announcing width x height, then IEND: the
    header alone must be enough to refuse it."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class HostileInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-hostile-")
        cls.cache = os.path.join(cls.tmp, "cache")
        cls.good = os.path.join(cls.tmp, "good-model")
        clip_twin.make_model(cls.good, seed=5)
        cls.image = os.path.join(cls.tmp, "leaf.png")
        Image.new("RGB", (40, 30), (30, 140, 40)).save(cls.image)
        cls.data = os.path.join(cls.tmp, "tagged")
        for tag, colour in (("rust", (160, 90, 30)), ("healthy", (30, 150, 40))):
            os.makedirs(os.path.join(cls.data, tag))
            for i in range(3):
                Image.new("RGB", (36 + i, 34), colour).save(
                    os.path.join(cls.data, tag, f"{i}.png"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------------------------

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def model_copy(self, name):
        path = self.path(name)
        shutil.copytree(self.good, path, copy_function=shutil.copy)
        for entry in os.listdir(path):
            os.chmod(os.path.join(path, entry), 0o644)
        return path

    def folder(self, name):
        path = self.path(name)
        os.makedirs(path)
        return path

    def assertRefused(self, result, *fragments):
        """Exit status 1, one line "agriclip: ..." holding each fragment, and no
        report of GLib or a sanitizer."""
        stderr = result.stderr.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 1, f"exit {result.returncode}, stderr: {stderr}")
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, f"one line expected: {stderr}")
        self.assertTrue(lines[0].startswith("agriclip: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        for alarm in ("CRITICAL", "WARNING", "AddressSanitizer", "runtime error", "LeakSanitizer"):
            self.assertNotIn(alarm, stderr)
        return lines[0]

    def embed_text(self, model):
        return run("embed", "--model", model, "--text", "a leaf", cache=self.cache)

    def classify(self, *args):
        return run("classify", "--label", "rust", "--label", "healthy", *args, cache=self.cache)

    # ---- 1. nesting, through every JSON input ---------------------------------------------

    def test_deep_config_json(self):
        model = self.model_copy("deep-config")
        write(os.path.join(model, "config.json"), deep_json())
        self.assertRefused(self.embed_text(model), "config.json", "nested")

    def test_deep_preprocessor_config(self):
        model = self.model_copy("deep-preprocessor")
        write(os.path.join(model, "preprocessor_config.json"), deep_json())
        self.assertRefused(self.embed_text(model), "preprocessor_config.json", "nested")

    def test_deep_vocab_json(self):
        model = self.model_copy("deep-vocab")
        write(os.path.join(model, "vocab.json"), deep_json())
        self.assertRefused(self.embed_text(model), "vocab.json", "nested")

    def test_deep_safetensors_header(self):
        model = self.model_copy("deep-header")
        write(os.path.join(model, "model.safetensors"), safetensors_bytes(deep_json()))
        self.assertRefused(self.embed_text(model), "model.safetensors", "nested")

    def test_deep_shard_index(self):
        model = self.model_copy("deep-index")
        os.rename(os.path.join(model, "model.safetensors"), os.path.join(model, "shard.safetensors"))
        write(os.path.join(model, "model.safetensors.index.json"), deep_json())
        self.assertRefused(self.embed_text(model), "model.safetensors.index.json", "nested")

    # open_clip_config.json is read only beside open_clip weights (not made here):
    # tests/fuzz/fuzz-json.c covers its reader

    def test_deep_agriclip_manifest(self):
        model = self.folder("deep-agriclip")
        write(os.path.join(model, "agriclip.json"), deep_json())
        self.assertRefused(self.embed_text(model), "agriclip.json", "nested")

    def test_deep_label_set(self):
        labels = write(self.path("deep-labels.json"), deep_json())
        self.assertRefused(run("classify", "--model", self.good, "--labels", labels, self.image,
                               cache=self.cache), "deep-labels.json", "nested")

    def test_deep_labels_of_training_folder(self):
        data = self.path("deep-tagged")
        shutil.copytree(self.data, data)
        write(os.path.join(data, "labels.json"), deep_json())
        result = run("train", "--model", self.good, "--data", data, "--out",
                     self.path("deep-tagged.adapter"), cache=self.cache)
        self.assertRefused(result, "labels.json", "nested")

    def test_deep_adapter_metadata(self):
        classes = deep_json()
        header = {"head.weight": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]},
                  "head.bias": {"dtype": "F32", "shape": [2], "data_offsets": [256, 264]},
                  "__metadata__": {"agriclip.kind": "adapter", "agriclip.method": "probe",
                                   "agriclip.version": "0.1", "agriclip.base_model": "0" * 64,
                                   "agriclip.base_model_name": "good-model",
                                   "agriclip.classes": classes, "agriclip.metrics": "{}",
                                   "agriclip.training": "{}"}}
        adapter = write(self.path("deep.adapter"),
                        safetensors_bytes(json.dumps(header), bytes(264)))
        result = run("classify", "--model", self.good, "--adapter", adapter, self.image,
                     cache=self.cache)
        self.assertRefused(result, "deep.adapter")

    def test_deep_catalogue(self):
        catalogue = write(self.path("deep-catalogue.json"), deep_json())
        result = run("models", "list", env={"AGRICLIP_CATALOGUE": catalogue})
        self.assertRefused(result, "deep-catalogue.json", "nested")

    def test_deep_captions(self):
        data = self.folder("deep-captions")
        write(os.path.join(data, "captions.jsonl"), deep_json() + "\n")
        result = run("pretrain", "--data", data, "--tokenizer", self.good, "--out",
                     self.path("deep-captions.out"), cache=self.cache)
        self.assertRefused(result, "captions.jsonl", "line 1", "nested")

    # ---- 10. JSON that json-glib accepted: trailing content, comments ---------------------

    def test_config_with_trailing_content_or_comments(self):
        with open(os.path.join(self.good, "config.json")) as f:
            config = f.read()
        for name, text in (("trailing", config + "\n{}"), ("comment", "// hi\n" + config),
                           ("block-comment", config.replace("{", "{ /* x */", 1)),
                           ("single-quotes", config.replace('"', "'", 2))):
            with self.subTest(name):
                model = self.model_copy("config-" + name)
                write(os.path.join(model, "config.json"), text)
                self.assertRefused(self.embed_text(model), "config.json", "not valid JSON")

    # ---- 2. no file is overwritten by a training output -----------------------------------

    def test_train_out_refuses_other_files(self):
        model = self.model_copy("train-out-model")
        weights = os.path.join(model, "model.safetensors")
        thesis = write(self.path("thesis.txt"), "four years of work\n")
        for target in (weights, thesis, self.image):
            with self.subTest(os.path.basename(target)):
                with open(target, "rb") as f:
                    before = f.read()
                result = run("train", "--model", model, "--data", self.data, "--out", target,
                             cache=self.cache)
                self.assertRefused(result, os.path.basename(target), "not an agriclip adapter")
                with open(target, "rb") as f:
                    self.assertEqual(f.read(), before)

    # ---- 5. hangs: FIFOs wherever a file is read; link loops with --recursive -------------

    def fifo(self, path):
        if os.path.lexists(path):
            os.remove(path)
        os.mkfifo(path)
        return path

    def test_fifo_in_model_folder_hashed_for_identity(self):
        model = self.model_copy("fifo-identity")
        self.fifo(os.path.join(model, "extra.bin"))
        result = run("train", "--model", model, "--data", self.data, "--out",
                     self.path("fifo-identity.adapter"), cache=self.cache)
        self.assertRefused(result, "extra.bin", "not a regular file")

    def test_fifo_as_model_files(self):
        # the folder's layout is found from regular files: a FIFO counts as missing
        for name in ("config.json", "vocab.json", "merges.txt", "model.safetensors",
                     "preprocessor_config.json"):
            with self.subTest(name):
                model = self.model_copy("fifo-" + name)
                self.fifo(os.path.join(model, name))
                self.assertRefused(self.embed_text(model), "fifo-" + name)

    def test_fifo_shard(self):
        model = self.model_copy("fifo-shard")
        weights = clip_twin.read_safetensors(os.path.join(model, "model.safetensors"))
        os.remove(os.path.join(model, "model.safetensors"))
        write(os.path.join(model, "model.safetensors.index.json"),
              json.dumps({"weight_map": {name: "shard.safetensors" for name in weights}}))
        self.fifo(os.path.join(model, "shard.safetensors"))
        self.assertRefused(self.embed_text(model), "shard.safetensors", "not a regular file")

    def test_fifo_image_and_label_set(self):
        image = self.fifo(self.path("fifo.png"))
        self.assertRefused(self.classify("--model", self.good, image), "fifo.png")
        labels = self.fifo(self.path("fifo-labels.json"))
        self.assertRefused(run("classify", "--model", self.good, "--labels", labels, self.image,
                               cache=self.cache), "fifo-labels.json", "not a regular file")

    def test_recursive_link_loops_end(self):
        root = self.folder("loops")
        os.makedirs(os.path.join(root, "sub"))
        shutil.copy(self.image, os.path.join(root, "a.png"))
        shutil.copy(self.image, os.path.join(root, "sub", "b.png"))
        os.symlink("..", os.path.join(root, "sub", "up"))
        os.symlink(".", os.path.join(root, "self"))
        result = self.classify("--model", self.good, "--recursive", "--top", "1", root)
        self.assertEqual(result.returncode, 0, result.stderr)
        images = [line.split(b",")[0] for line in result.stdout.splitlines()[1:]]
        self.assertEqual(sorted(images), sorted({os.path.join(root, "a.png").encode(),
                                                 os.path.join(root, "sub", "b.png").encode()}))

    # ---- 6. shards stay inside the model folder -------------------------------------------

    def test_shard_outside_model_folder(self):
        secret = write(self.path("secret.safetensors"), "root:x:0:0:SECRET-BYTES\n")
        model = self.model_copy("traversal")
        weights = clip_twin.read_safetensors(os.path.join(model, "model.safetensors"))
        os.remove(os.path.join(model, "model.safetensors"))
        for target in ("../secret.safetensors", "../../../../../../etc/passwd"):
            with self.subTest(target):
                write(os.path.join(model, "model.safetensors.index.json"),
                      json.dumps({"weight_map": {name: target for name in weights}}))
                line = self.assertRefused(self.embed_text(model), "model.safetensors.index.json",
                                          "outside the model folder")
                self.assertNotIn("SECRET", line)
                self.assertNotIn("root:", line)
        # a link inside the folder that leads out is refused as well
        os.symlink(secret, os.path.join(model, "link.safetensors"))
        write(os.path.join(model, "model.safetensors.index.json"),
              json.dumps({"weight_map": {name: "link.safetensors" for name in weights}}))
        line = self.assertRefused(self.embed_text(model), "outside the model folder")
        self.assertNotIn("SECRET", line)

    # ---- 9. sizes: overflow, elongated images, a huge PNG ---------------------------------

    def test_tall_thin_tiff(self):
        tiff = self.path("thin.tif")
        # resized to the model's 32 px: 32 x 2,240,000,000, more than an int holds
        Image.new("1", (1, 70_000_000)).save(tiff, compression="group4")
        line = self.assertRefused(self.classify("--model", self.good, tiff), "thin.tif")
        self.assertNotIn("-2147483648", line)

    def test_elongated_png(self):
        png = self.path("elongated.png")
        Image.new("RGB", (3_000_000, 1), (10, 200, 30)).save(png)
        self.assertRefused(self.classify("--model", self.good, png), "elongated.png",
                           "elongated")

    def test_huge_png_refused_from_its_header(self):
        png = write(self.path("huge.png"), png_header_only(16384, 16384))
        start = time.monotonic()
        self.assertRefused(self.classify("--model", self.good, png), "huge.png", "pixels")
        self.assertLess(time.monotonic() - start, 60)

    # ---- 10. tokenizer files, weights, labels, names, one-file models, catalogue ----------

    def test_empty_or_truncated_merges(self):
        with open(os.path.join(self.good, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        for name, text in (("empty", ""), ("header-only", lines[0]),
                           ("truncated", "".join(lines[:len(lines) // 2]))):
            with self.subTest(name):
                model = self.model_copy("merges-" + name)
                write(os.path.join(model, "merges.txt"), text)
                self.assertRefused(self.embed_text(model), "merges.txt", "truncated")

    def rewrite_tensor(self, model, name, value):
        path = os.path.join(model, "model.safetensors")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        start = 8 + n + header[name]["data_offsets"][0]
        self.assertEqual(header[name]["dtype"], "F32")
        data[start:start + 4] = struct.pack("<f", value)
        write(path, bytes(data))

    def test_non_finite_weights(self):
        weights = clip_twin.read_safetensors(os.path.join(self.good, "model.safetensors"))
        vision = next(n for n in sorted(weights) if n.startswith("vision_model.")
                      and n.endswith("fc1.weight"))
        for label, name, value, command in (
                ("nan-weight", vision, float("nan"), "image"),
                ("inf-weight", "text_model.final_layer_norm.weight", float("inf"), "text"),
                ("inf-logit-scale", "logit_scale", float("inf"), "classify"),
                ("huge-logit-scale", "logit_scale", 100.0, "classify")):
            with self.subTest(label):
                model = self.model_copy(label)
                self.rewrite_tensor(model, name, value)
                if command == "classify":
                    result = self.classify("--model", model, self.image)
                else:
                    result = run("embed", "--model", model,
                                 "--image" if command == "image" else "--text",
                                 self.image if command == "image" else "a leaf",
                                 cache=self.cache)
                self.assertRefused(result, "model.safetensors", name)

    def test_label_set_with_nul_or_lone_surrogate(self):
        for name, escape in (("nul", "\\u0000"), ("surrogate", "\\ud800")):
            with self.subTest(name):
                labels = write(self.path(f"labels-{name}.json"),
                               '{"classes": [{"name": "rust' + escape + 'x"}, '
                               '{"name": "healthy"}]}')
                result = run("classify", "--model", self.good, "--labels", labels, self.image,
                             cache=self.cache)
                self.assertRefused(result, f"labels-{name}.json")

    def test_file_name_bytes_kept(self):
        folder = self.folder("names")
        name = os.path.join(os.fsencode(folder), b"leaf\xff.png")
        shutil.copy(self.image, name)
        result = self.classify("--model", self.good, "--top", "1", "--format", "jsonl",
                               os.fsdecode(name))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"leaf\\udcff.png", result.stdout)
        record = json.loads(result.stdout)
        self.assertEqual(os.fsencode(record["image"]), name)
        result = self.classify("--model", self.good, "--top", "1", os.fsdecode(name))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.splitlines()[1].startswith(name + b","), result.stdout)

    def test_train_with_one_file_model(self):
        import torch
        weights = clip_twin.read_model_weights(self.good)
        folder = self.folder("one-file")
        for name in ("vocab.json", "merges.txt", "config.json", "preprocessor_config.json"):
            shutil.copy(os.path.join(self.good, name), os.path.join(folder, name))
        pt = os.path.join(folder, "model.pt")
        torch.save({k: (v if isinstance(v, torch.Tensor) else torch.tensor(v))
                    for k, v in weights.items()}, pt)
        probe = run("embed", "--model", pt, "--text", "a leaf", cache=self.cache)
        if probe.returncode != 0:
            self.skipTest("this checkpoint layout does not load as one file: "
                          + probe.stderr.decode(errors="replace"))
        out = self.path("one-file.adapter")
        result = run("train", "--model", pt, "--data", self.data, "--out", out,
                     "--epochs", "1", cache=self.cache)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.exists(out))

    def test_large_catalogue_is_quick(self):
        source = os.path.join(os.environ["AGC_SOURCE_DIR"], "models", "catalogue.json")
        with open(source) as f:
            catalogue = json.load(f)
        model = catalogue["models"][0]
        template = model["files"][0]
        model["files"] = [dict(template, path=f"part-{i:06d}.bin") for i in range(100_000)]
        path = write(self.path("big-catalogue.json"), json.dumps(catalogue))
        # CPU seconds, not wall time: the machine may be shared (quadratic: > 60 s)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run("models", "list", env={"AGRICLIP_CATALOGUE": path})
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertLess(after.ru_utime - before.ru_utime, 30 if SANITIZED else 5)
        model["files"].append(dict(template, path="part-000007.bin"))
        write(path, json.dumps(catalogue))
        self.assertRefused(run("models", "list", env={"AGRICLIP_CATALOGUE": path}),
                           "big-catalogue.json", "appears twice")

    # ---- crafted files that already held: pickles and ZIP archives ------------------------

    def torch_zip(self, path, pickle_bytes, extra=()):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle_bytes)
            z.writestr("archive/version", "3\n")
            for name, data in extra:
                z.writestr(name, data)
        return path

    def test_pickle_that_calls_a_function(self):
        sentinel = self.path("pwned")

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {sentinel}",))
        folder = self.folder("evil-pickle")
        self.torch_zip(os.path.join(folder, "model.pt"), pickle.dumps({"w": Evil()}, protocol=2))
        result = run("embed", "--model", os.path.join(folder, "model.pt"), "--text", "x",
                     cache=self.cache)
        self.assertRefused(result, "model.pt")
        self.assertFalse(os.path.exists(sentinel))

    def test_zip_with_entries_outside_the_file(self):
        folder = self.folder("bad-zip")
        good = io.BytesIO()
        self.torch_zip(good, pickle.dumps({}, protocol=2))
        data = bytearray(good.getvalue())
        central = data.rfind(b"PK\x01\x02")
        data[central + 42:central + 46] = struct.pack("<I", 0x7FFFFFF0)  # local header offset
        path = write(os.path.join(folder, "model.pt"), bytes(data))
        self.assertRefused(run("embed", "--model", path, "--text", "x", cache=self.cache),
                           "model.pt")


if __name__ == "__main__":
    unittest.main()
