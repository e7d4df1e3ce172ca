"""Broken inputs given to the agriclip command: each must end with exit status 1
and one line on stderr, "agriclip: ...", that names the file and the problem.
Never a crash (a signal), never a usage error (2), never success."""

import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from PIL import Image

import clip_twin

AGRICLIP = os.environ["AGRICLIP"]


def run(*args):
    return subprocess.run([AGRICLIP, *args], capture_output=True, timeout=120)


def read_header(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_with_header(path, header, body):
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-bad-")
        cls.good = os.path.join(cls.tmp, "good-model")
        clip_twin.make_model(cls.good, seed=3)
        cls.image = os.path.join(cls.tmp, "leaf.png")
        Image.new("RGB", (40, 30), (30, 140, 40)).save(cls.image)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def model_copy(self, name):
        path = os.path.join(self.tmp, name)
        shutil.copytree(self.good, path)
        return path

    def assertFails(self, result, *fragments):
        stderr = result.stderr.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 1, f"exit {result.returncode}, stderr: {stderr}")
        lines = stderr.splitlines()
        self.assertTrue(lines, "no message on stderr")
        for line in lines:
            self.assertTrue(line.startswith("agriclip: "), line)
        for fragment in fragments:
            self.assertIn(fragment, stderr)
        return stderr

    def embed_text(self, model):
        return run("embed", "--model", model, "--text", "a leaf")

    def test_good_model_works(self):
        result = self.embed_text(self.good)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_missing_model_folder(self):
        missing = os.path.join(self.tmp, "no-such-model")
        self.assertFails(self.embed_text(missing), "no-such-model")

    def test_truncated_safetensors(self):
        model = self.model_copy("truncated")
        path = os.path.join(model, "model.safetensors")
        size = os.path.getsize(path)
        for keep in (4, 100, size // 2, size - 1):
            with open(os.path.join(self.good, "model.safetensors"), "rb") as f:
                data = f.read(keep)
            with open(path, "wb") as f:
                f.write(data)
            self.assertFails(self.embed_text(model), "model.safetensors")

    def test_empty_safetensors(self):
        model = self.model_copy("empty")
        open(os.path.join(model, "model.safetensors"), "wb").close()
        self.assertFails(self.embed_text(model), "model.safetensors")

    def test_header_not_json(self):
        model = self.model_copy("notjson")
        path = os.path.join(model, "model.safetensors")
        with open(path, "r+b") as f:
            f.seek(8)
            f.write(b"}{garbage")
        self.assertFails(self.embed_text(model), "model.safetensors")

    def test_huge_header_length(self):
        model = self.model_copy("huge")
        path = os.path.join(model, "model.safetensors")
        for length in (2 ** 63, 2 ** 64 - 1, 2 ** 40):
            with open(path, "r+b") as f:
                f.write(struct.pack("<Q", length))
            self.assertFails(self.embed_text(model), "model.safetensors")

    def test_overlapping_offsets(self):
        model = self.model_copy("overlap")
        path = os.path.join(model, "model.safetensors")
        header, body = read_header(path)
        names = sorted((k for k in header if k != "__metadata__"),
                       key=lambda k: header[k]["data_offsets"][0])
        # a tensor of more than 8 bytes, and the one stored after it
        i = next(i for i, k in enumerate(names)
                 if header[k]["data_offsets"][1] - header[k]["data_offsets"][0] > 8)
        first, second = header[names[i]], header[names[i + 1]]
        # second starts inside first, same length: offsets overlap, sizes still agree
        length = second["data_offsets"][1] - second["data_offsets"][0]
        start = first["data_offsets"][0] + 4
        second["data_offsets"] = [start, start + length]
        write_with_header(path, header, body)
        self.assertFails(self.embed_text(model), "model.safetensors")

    def test_offsets_outside_file(self):
        model = self.model_copy("outside")
        path = os.path.join(model, "model.safetensors")
        header, body = read_header(path)
        last = max((k for k in header if k != "__metadata__"),
                   key=lambda k: header[k]["data_offsets"][1])
        begin, end = header[last]["data_offsets"]
        header[last]["data_offsets"] = [begin + 1024, end + 1024]
        write_with_header(path, header, body)
        self.assertFails(self.embed_text(model), "model.safetensors")

    def test_unknown_dtype(self):
        model = self.model_copy("dtype")
        path = os.path.join(model, "model.safetensors")
        header, body = read_header(path)
        header["text_projection.weight"]["dtype"] = "Q4_K"
        write_with_header(path, header, body)
        self.assertFails(self.embed_text(model), "model.safetensors", "Q4_K")

    def test_shape_disagrees_with_config(self):
        model = self.model_copy("shape")
        config_path = os.path.join(model, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        config["projection_dim"] = config["projection_dim"] * 2
        with open(config_path, "w") as f:
            json.dump(config, f)
        self.assertFails(self.embed_text(model), "model.safetensors", "shape")

    def test_missing_tensor(self):
        model = self.model_copy("missing-tensor")
        path = os.path.join(model, "model.safetensors")
        tensors = clip_twin.read_safetensors(path)
        del tensors["text_model.final_layer_norm.weight"]
        clip_twin.write_safetensors(path, tensors)
        self.assertFails(self.embed_text(model), "text_model.final_layer_norm.weight")

    def test_missing_vocab(self):
        model = self.model_copy("no-vocab")
        os.remove(os.path.join(model, "vocab.json"))
        self.assertFails(self.embed_text(model), "vocab.json")

    def test_malformed_config(self):
        model = self.model_copy("bad-config")
        with open(os.path.join(model, "config.json"), "w") as f:
            f.write('{"text_config": {"hidden_size": "wide"}')
        self.assertFails(self.embed_text(model), "config.json")

    def test_invalid_utf8_text(self):
        result = subprocess.run([AGRICLIP.encode(), b"embed", b"--model", self.good.encode(),
                                 b"--text", b"bad \xff\xfe text"], capture_output=True, timeout=60)
        self.assertFails(result, "UTF-8")

    def test_missing_and_empty_images(self):
        empty = os.path.join(self.tmp, "empty.png")
        open(empty, "wb").close()
        for image in (empty, os.path.join(self.tmp, "missing.jpg"), self.tmp):
            result = run("embed", "--model", self.good, "--image", image)
            self.assertFails(result, os.path.basename(image))

    def test_folder_of_mixed_junk(self):
        folder = os.path.join(self.tmp, "junk")
        os.makedirs(os.path.join(folder, "subfolder"))
        shutil.copy(self.image, os.path.join(folder, "a-good.png"))
        open(os.path.join(folder, "b-empty.png"), "wb").close()
        with open(os.path.join(folder, "c-text.jpg"), "w") as f:
            f.write("this is not a photo\n")
        with open(self.image, "rb") as src, open(os.path.join(folder, "d-cut.png"), "wb") as dst:
            dst.write(src.read()[:60])
        with open(os.path.join(folder, "e-random.webp"), "wb") as f:
            f.write(os.urandom(3000))
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write("field notes\n")
        os.symlink(os.path.join(folder, "nowhere.png"), os.path.join(folder, "f-dangling.png"))

        result = run("classify", "--model", self.good, "--label", "rust", "--label", "blight",
                     "--format", "jsonl", folder)
        stderr = self.assertFails(result, "b-empty.png", "c-text.jpg", "d-cut.png",
                                  "e-random.webp", "f-dangling.png")
        self.assertNotIn("notes.txt", stderr)
        labelled = [json.loads(line)["image"] for line in result.stdout.decode().splitlines()]
        self.assertEqual(labelled, [os.path.join(folder, "a-good.png")])

    def test_unreadable_folder(self):
        result = run("classify", "--model", self.good, "--label", "rust", "--label", "blight",
                     os.path.join(self.tmp, "no-such-folder"))
        self.assertFails(result, "no-such-folder")

    def test_malformed_label_sets(self):
        cases = {"syntax.json": b'{"id": "x", "classes": [',
                 "utf8.json": b'{"id": "x", "templates": ["a {}"], "classes": '
                              b'[{"name": "bad \xff", "display": "x"}]}',
                 "types.json": b'{"id": 3, "templates": "a {}", "classes": {}}'}
        for name, content in cases.items():
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(content)
            result = run("classify", "--model", self.good, "--labels", path, self.image)
            self.assertFails(result, name)


if __name__ == "__main__":
    unittest.main()
