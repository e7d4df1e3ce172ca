"""PyTorch checkpoints (torch.save ZIP files, TorchScript archives) read by
libagriclip, compared with PyTorch 1.13 through tests/tools/tensor-dump.

Every tensor's name, dtype, shape and bytes must equal what torch holds, and
its float32 conversion must equal tensor.float().  Broken and hostile files
must be refused with a message that names the file and the problem, without
running anything.  Hostile pickles are written with a small opcode assembler
(below) that is first checked against torch.load on a well-formed file.
"""
import collections
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import warnings
import zipfile

import torch

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "tensor-dump") if BUILD_DIR else None

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def raw_bytes(tensor):
    t = tensor.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


# ---- a pickle opcode assembler, for files torch would not write -------------

def op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(n):
    return b"J" + struct.pack("<i", n)


def op_tuple(*items):
    return b"(" + b"".join(items) + b"t"


HOOKS = op_global("collections", "OrderedDict") + b")R"  # an empty OrderedDict


def op_tensor_args(key, numel, offset, size, stride, storage="FloatStorage", dtype=None):
    """The argument tuple of _rebuild_tensor_v2 (v3 when dtype is given)."""
    persistent_id = op_tuple(op_str("storage"), op_global("torch", storage), op_str(key),
                             op_str("cpu"), op_int(numel)) + b"Q"
    tail = [op_global("torch", dtype)] if dtype else []
    return op_tuple(persistent_id, op_int(offset), op_tuple(*map(op_int, size)),
                    op_tuple(*map(op_int, stride)), b"\x89", HOOKS, *tail)


def op_tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    return (op_global("torch._utils", "_rebuild_tensor_v2")
            + op_tensor_args(key, numel, offset, size, stride, storage) + b"R")


def op_dict(items):
    """items: (name, opcode bytes of the value)."""
    return b"}(" + b"".join(op_str(k) + v for k, v in items) + b"u"


def pickle_of(body):
    return b"\x80\x02" + body + b"."


def write_archive(path, pkl, storages, prefix="archive", extra=(), method=zipfile.ZIP_STORED):
    """A torch-layout ZIP: prefix/data.pkl, prefix/data/KEY, extra (name, bytes)."""
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr(f"{prefix}/data.pkl", pkl)
        for name, data in extra:
            z.writestr(f"{prefix}/{name}", data)
        for key, data in storages.items():
            z.writestr(f"{prefix}/data/{key}", data)
        z.writestr(f"{prefix}/version", b"3\n")


def floats(*values):
    return struct.pack(f"<{len(values)}f", *values)


class Small(torch.nn.Module):
    """Conv, BatchNorm (with an int64 buffer), LayerNorm, Embedding, Linear."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.embed = torch.nn.Embedding(10, 6)
        self.ln = torch.nn.LayerNorm(6)
        self.proj = torch.nn.Linear(6, 5)

    def forward(self, tokens):
        return self.proj(self.ln(self.embed(tokens)))


@unittest.skipIf(TOOL is None, "AGC_BUILD_DIR not set: run through meson test")
class TorchCheckpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-torch-")
        torch.manual_seed(0)
        cls.model = Small()
        with torch.no_grad():  # running statistics that are not 0 and 1
            cls.model.bn.running_mean.uniform_(-1, 1)
            cls.model.bn.running_var.uniform_(0.5, 2)
            cls.model.bn.num_batches_tracked += 17
        cls.sd = cls.model.state_dict()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run_tool(self, path, f32=False):
        out = self.path("dump.bin")
        args = [TOOL] + (["--f32"] if f32 else []) + [path, out]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            return None, proc
        with open(out, "rb") as f:
            data = f.read()
        tensors = collections.OrderedDict()
        for line in proc.stdout.splitlines():
            name, dtype, shape, offset, n_bytes = line.split("\t")
            shape = tuple(int(s) for s in shape.split(",")) if shape else ()
            tensors[name] = (dtype, shape, data[int(offset):int(offset) + int(n_bytes)])
        return tensors, proc

    def dump(self, path, f32=False):
        tensors, proc = self.run_tool(path, f32)
        self.assertIsNotNone(tensors, f"tensor-dump {path} failed: {proc.stderr}")
        return tensors

    def assertReads(self, path, expected, exact_names=True, same_order=False):
        """expected: name -> tensor.  Compares dtype, shape, bytes and the
        float32 conversion of every tensor."""
        got = self.dump(path)
        got_f32 = self.dump(path, f32=True)
        if exact_names:
            self.assertEqual(sorted(got), sorted(expected))
        if same_order:
            self.assertEqual(list(got), list(expected))
        for name, tensor in expected.items():
            self.assertIn(name, got)
            dtype, shape, data = got[name]
            self.assertEqual(dtype, DTYPE_NAMES[tensor.dtype], name)
            self.assertEqual(shape, tuple(tensor.shape), name)
            self.assertEqual(data, raw_bytes(tensor), f"bytes of {name}")
            self.assertEqual(got_f32[name][2], raw_bytes(tensor.float()), f"float32 of {name}")
        return got

    def assertRefused(self, path, *fragments):
        tensors, proc = self.run_tool(path)
        self.assertIsNone(tensors, f"{path} was accepted")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        message = proc.stderr.strip()
        self.assertTrue(message.startswith("error: "), message)
        self.assertEqual(len(message.splitlines()), 1, message)
        self.assertIn(os.path.basename(path), message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    # ---- what torch.save writes ---------------------------------------------

    def test_state_dict(self):
        path = self.path("small.pt")
        torch.save(self.sd, path)
        self.assertReads(path, self.sd, same_order=True)

    def test_every_dtype(self):
        g = torch.Generator().manual_seed(1)
        values = torch.randn(3, 5, generator=g) * 100
        tensors = {
            "f32": values, "f16": values.half(), "bf16": values.bfloat16(),
            "f64": values.double() / 3, "i64": (values * 1e6).long(), "i32": values.int(),
            "i16": values.short(), "i8": values.clamp(-128, 127).char(),
            "u8": values.abs().clamp(0, 255).byte(), "bool": values > 0,
            "specials": torch.tensor([float("inf"), -0.0, 6e-8, 65504, float("nan")]).half(),
            "big_i64": torch.tensor([2**62 + 1, -2**40 - 3]),
        }
        path = self.path("dtypes.pth")
        torch.save(tensors, path)
        self.assertReads(path, tensors)

    def test_training_checkpoint(self):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, betas=(0.9, 0.98))
        self.model(torch.tensor([[1, 2, 3]])).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        sd = self.model.state_dict()
        checkpoint = {"epoch": 7, "name": "run-1", "best": 0.91, "flags": [True, None],
                      "state_dict": sd, "optimizer": optimizer.state_dict(),
                      "scaler": {"scale": 65536.0, "_growth_tracker": 3}}
        path = self.path("epoch_7.pt")
        torch.save(checkpoint, path)
        self.assertReads(path, sd)

    def test_nested_keys(self):
        cases = {
            "model.pt": {"model": self.sd, "epoch": 1},
            "model_sd.pt": {"model": {"state_dict": self.sd}},
            "model_state_dict.pt": {"model_state_dict": self.sd, "loss": 0.5},
            "ema_only.pt": {"state_dict_ema": self.sd},
            "first_wins.pt": {"state_dict": self.sd, "state_dict_ema": {"other": torch.ones(1)}},
        }
        for name, checkpoint in cases.items():
            with self.subTest(name):
                torch.save(checkpoint, self.path(name))
                self.assertReads(self.path(name), self.sd)

    def test_prefixes_stripped_only_when_common(self):
        cases = [
            ("dp.pt", "module."),
            ("compiled.pt", "_orig_mod."),
            ("both.pt", "module._orig_mod."),
        ]
        for name, prefix in cases:
            with self.subTest(name):
                torch.save({"state_dict": {prefix + k: v for k, v in self.sd.items()}},
                           self.path(name))
                self.assertReads(self.path(name), self.sd)
        mixed = {"module.a": torch.ones(2), "b": torch.zeros(3)}
        torch.save(mixed, self.path("mixed.pt"))
        self.assertReads(self.path("mixed.pt"), mixed)

    def test_shared_storage_views(self):
        base = torch.arange(120, dtype=torch.float32) * 0.5
        small = torch.arange(3, dtype=torch.float16)
        views = {
            "base": base,
            "slice": base[10:22],
            "matrix": base[24:48].view(4, 6),
            "transposed": base[:48].view(6, 8).t(),
            "column": base.view(10, 12)[:, 5],
            "block": base.view(10, 12)[2:5, 1:4],
            "every_7th": base[::7],
            "expanded": small.expand(4, 3),
            "size_one_dims": base[3:9].view(1, 6, 1),
        }
        path = self.path("views.pt")
        torch.save(views, path)
        with zipfile.ZipFile(path) as z:  # the views really share two storages
            self.assertEqual(len([n for n in z.namelist() if "/data/" in n]), 2)
        self.assertReads(path, views)

    def test_scalars_and_empty_tensors(self):
        base = torch.arange(10.0)
        tensors = {
            "scalar": torch.tensor(3.5),
            "int_scalar": torch.tensor(-7),
            "empty": torch.zeros(0),
            "empty_3d": torch.zeros(3, 0, 2, dtype=torch.float16),
            "empty_view": base[5:5],
            "base": base,
        }
        path = self.path("scalars.pt")
        torch.save(tensors, path)
        self.assertReads(path, tensors)

    def test_aligner(self):
        # AgriCLIP's Agri_Dino_aligner_*.pth: {'W': [512, 2048], 'b': [512]}
        g = torch.Generator().manual_seed(2)
        aligner = {"W": torch.randn(512, 2048, generator=g), "b": torch.randn(512, generator=g)}
        torch.save(aligner, self.path("aligner.pth"))
        self.assertReads(self.path("aligner.pth"), aligner, same_order=True)
        # as parameters that require grad, W stored transposed
        params = {"W": torch.nn.Parameter(aligner["W"].t().contiguous().t()),
                  "b": aligner["b"].clone().requires_grad_()}
        torch.save(params, self.path("aligner_params.pth"))
        self.assertReads(self.path("aligner_params.pth"), aligner)

    def test_pickle_protocols(self):
        for protocol in (2, 3, 4, 5):
            with self.subTest(protocol=protocol):
                path = self.path(f"proto{protocol}.pt")
                torch.save(self.sd, path, pickle_protocol=protocol)
                self.assertReads(path, self.sd, same_order=True)

    def test_format_from_bytes_not_name(self):
        path = self.path("small.safetensors")  # a torch file under another name
        torch.save(self.sd, path)
        self.assertReads(path, self.sd)

    def test_sharded_bin_index(self):
        keys = list(self.sd)
        half = len(keys) // 2
        shards = {"pytorch_model-00001-of-00002.bin": keys[:half],
                  "pytorch_model-00002-of-00002.bin": keys[half:]}
        folder = self.path("sharded")
        os.makedirs(folder, exist_ok=True)
        weight_map = {}
        for shard, names in shards.items():
            torch.save({k: self.sd[k] for k in names}, os.path.join(folder, shard))
            weight_map.update({k: shard for k in names})
        index = os.path.join(folder, "pytorch_model.bin.index.json")
        with open(index, "w") as f:
            f.write('{"metadata": {}, "weight_map": %s}' % str(weight_map).replace("'", '"'))
        self.assertReads(index, self.sd)

    def test_deflated_and_crc_free_archives(self):
        src = self.path("small_src.pt")
        torch.save(self.sd, src)
        deflated = self.path("deflated.pt")
        with zipfile.ZipFile(src) as zin, \
                zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info.filename))
        self.assertEqual(torch.load(deflated)["proj.weight"].tolist(),
                         self.sd["proj.weight"].tolist())
        self.assertReads(deflated, self.sd)
        # torch.serialization.set_crc32_options(False) (torch 2.4) records CRC 0
        no_crc = self.path("no_crc.pt")
        with open(src, "rb") as f:
            data = bytearray(f.read())
        pos = data.find(b"PK\x01\x02")  # every central header: CRC-32 at +16
        while pos >= 0:
            struct.pack_into("<I", data, pos + 16, 0)
            pos = data.find(b"PK\x01\x02", pos + 4)
        with open(no_crc, "wb") as f:
            f.write(data)
        self.assertReads(no_crc, self.sd)

    # ---- TorchScript ----------------------------------------------------------

    def test_torchscript(self):
        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.ln_1 = torch.nn.LayerNorm(8)
                self.attn = torch.nn.MultiheadAttention(8, 2)
                self.mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                                               torch.nn.Linear(16, 8))

            def forward(self, x):
                y = self.ln_1(x)
                x = x + self.attn(y, y, y, need_weights=False)[0]
                return x + self.mlp(x)

        class Tower(torch.nn.Module):  # the shape of OpenAI's text tower
            def __init__(self):
                super().__init__()
                self.token_embedding = torch.nn.Embedding(20, 8)
                self.positional_embedding = torch.nn.Parameter(torch.randn(5, 8))
                self.resblocks = torch.nn.Sequential(Block(), Block())
                self.text_projection = torch.nn.Parameter(torch.randn(8, 4))
                self.register_buffer("attn_mask", torch.full((5, 5), float("-inf")).triu(1))

            def forward(self, tokens):
                x = self.token_embedding(tokens) + self.positional_embedding
                return self.resblocks(x.permute(1, 0, 2))[-1] @ self.text_projection

        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.manual_seed(3)
        tokens = torch.randint(0, 20, (2, 5))
        for kind in ("trace", "trace_half"):
            with self.subTest(kind):
                model = Tower().eval()
                scripted = torch.jit.trace(model, (tokens,))
                if kind == "trace_half":  # OpenAI's .pt files hold float16 weights
                    scripted = scripted.half()
                path = self.path(f"{kind}.pt")
                scripted.save(path)
                self.assertReads(path, scripted.state_dict(), exact_names=False)

    # ---- refused files --------------------------------------------------------

    def test_legacy_and_plain_pickles(self):
        path = self.path("legacy.pt")
        torch.save(self.sd, path, _use_new_zipfile_serialization=False)
        self.assertRefused(path, "legacy PyTorch format", "torch >= 1.6")
        path = self.path("plain.pkl")
        with open(path, "wb") as f:
            pickle.dump({"a": 1}, f, protocol=2)
        self.assertRefused(path, "plain Python pickle")

    def test_whole_model(self):
        path = self.path("whole.pt")
        torch.save(self.model, path)
        self.assertRefused(path, "global", "Small", "not allowed", "state dict")

    def test_assembler_matches_torch(self):
        # a well-formed file from the assembler: torch reads it as we do
        pkl = pickle_of(op_dict([("w", op_tensor("0", 6, 1, (2, 2), (2, 1))),
                                 ("t", op_tensor("0", 6, 0, (2, 3), (1, 2)))]))
        path = self.path("assembled.pt")
        write_archive(path, pkl, {"0": floats(1, 2, 3, 4, 5, 6)})
        self.assertReads(path, torch.load(path))

    def test_torch2_forms(self):
        # what torch 2.x writes for tensors with attributes, parameters with
        # attributes, and dtypes without a legacy storage class (v3)
        six = floats(1, 2, 3, 4, 5, 6)
        state = op_dict([("note", op_str("x"))])
        from_type = (op_global("torch._tensor", "_rebuild_from_type_v2")
                     + op_tuple(op_global("torch._utils", "_rebuild_tensor_v2"),
                                op_global("torch", "Tensor"),
                                op_tensor_args("0", 6, 2, (2, 2), (1, 2)), state) + b"R")
        param = (op_global("torch._utils", "_rebuild_parameter_with_state")
                 + op_tuple(op_tensor("0", 6, 0, (3,), (2,)), b"\x88", HOOKS, state) + b"R")
        path = self.path("from_type.pt")
        write_archive(path, pickle_of(op_dict([("from_type", from_type)])), {"0": six})
        self.assertReads(path, torch.load(path))  # torch 1.13 knows this one
        path = self.path("torch2.pt")
        write_archive(path, pickle_of(op_dict([("from_type", from_type), ("param", param)])),
                      {"0": six})
        self.assertReads(path, {"from_type": torch.tensor([[3.0, 5.0], [4.0, 6.0]]),
                                "param": torch.tensor([1.0, 3.0, 5.0])})

        halves = struct.pack("<4e", 1.5, -2.0, 65504.0, 6e-8)
        v3 = (op_global("torch._utils", "_rebuild_tensor_v3")
              + op_tensor_args("0", 8, 1, (3,), (1,), "UntypedStorage", "float16") + b"R")
        write_archive(self.path("v3.pt"), pickle_of(op_dict([("h", v3)])), {"0": halves})
        got = self.dump(self.path("v3.pt"))
        self.assertEqual(got, {"h": ("F16", (3,), halves[2:])})

        fp8 = (op_global("torch._utils", "_rebuild_tensor_v3")
               + op_tensor_args("0", 8, 0, (8,), (1,), "UntypedStorage", "float8_e4m3fn")
               + b"R")
        write_archive(self.path("fp8.pt"), pickle_of(op_dict([("q", fp8)])), {"0": halves})
        self.assertRefused(self.path("fp8.pt"), "tensor 'q' has dtype torch.float8_e4m3fn, "
                           "which is not supported")
        subclass = (op_global("torch._tensor", "_rebuild_from_type_v2")
                    + op_tuple(op_global("torch._utils", "_rebuild_tensor_v2"),
                               op_global("torch", "FloatStorage"),
                               op_tensor_args("0", 6, 0, (6,), (1,)), state) + b"R")
        write_archive(self.path("subclass.pt"), pickle_of(op_dict([("s", subclass)])),
                      {"0": six})
        self.assertRefused(self.path("subclass.pt"), "tensor 's' is a tensor subclass")

    def test_hostile_pickles(self):
        marker = self.path("pwned")
        cases = {
            "os_system": (op_global("os", "system") + op_tuple(op_str(f"touch {marker}")) + b"R",
                          ["global 'os.system' is not allowed"]),
            "posix_system": (op_global("posix", "system") + op_tuple(op_str(f"touch {marker}"))
                             + b"R", ["'posix.system'"]),
            "eval": (op_global("builtins", "eval") + op_tuple(op_str("1")) + b"R",
                     ["'builtins.eval'"]),
            "stack_global": (b"\x8c\x02os\x8c\x06system\x93", ["'os.system'"]),
            "inst": (b"(ios\nsystem\n", ["opcode INST (0x69)", "not supported"]),
            "not_an_opcode": (b"\xff", ["0xff is not a pickle opcode"]),
            "storage_as_callable": (op_global("torch", "FloatStorage") + b")R",
                                    ["holds a call, expected a dict of tensors"]),
            "unbalanced": (b"}(" + op_str("a") + b"u", ["SETITEMS has an odd number"]),
            "no_stop": (b"}", ["ends without STOP"]),
            "missing_memo": (b"h\x05", ["memo entry 5 is missing"]),
            "ordered_dict_args": (op_global("collections", "OrderedDict")
                                  + op_tuple(b"]") + b"R", ["called with arguments"]),
        }
        for name, (body, fragments) in cases.items():
            with self.subTest(name):
                pkl = b"\x80\x02" + body + (b"." if name != "no_stop" else b"")
                path = self.path(f"{name}.pt")
                write_archive(path, pkl, {})
                message = self.assertRefused(path, *fragments)
                if name != "storage_as_callable":
                    self.assertIn("data.pkl: byte ", message)
        self.assertFalse(os.path.exists(marker))

    def test_bad_tensors(self):
        six = floats(1, 2, 3, 4, 5, 6)
        cases = {
            "offset_past_end": (op_tensor("0", 6, 4, (3,), (1,)), {"0": six},
                                ["reaches byte 28 of a storage of 24 bytes"]),
            "stride_past_end": (op_tensor("0", 6, 0, (2, 3), (4, 1)), {"0": six},
                                ["reaches byte"]),
            "numel_vs_entry": (op_tensor("0", 100, 0, (3,), (1,)), {"0": six},
                               ["holds 100", "has 24 bytes"]),
            "missing_storage": (op_tensor("7", 6, 0, (3,), (1,)), {"0": six},
                                ["storage '7' is missing", "archive/data/7"]),
            "negative_stride": (op_tensor("0", 6, 5, (3,), (-1,)), {"0": six},
                                ["stride[0] is not a non-negative integer"]),
            "stride_count": (op_tensor("0", 6, 0, (2, 3), (1,)), {"0": six},
                             ["2 sizes but 1 strides"]),
            "nine_dims": (op_tensor("0", 6, 0, (1,) * 9, (1,) * 9), {"0": six},
                          ["9 dimensions, at most 8"]),
            "complex": (op_tensor("0", 3, 0, (3,), (1,), "ComplexFloatStorage"), {"0": six},
                        ["storage type torch.ComplexFloatStorage is not supported"]),
            "overflow": (op_tensor("0", 6, 0, (2**31 - 1,) * 3, (1, 1, 1)), {"0": six},
                         ["size or strides overflow"]),
            "expanded_too_far": (op_tensor("0", 6, 0, (100000, 100000), (0, 0)), {"0": six},
                                 ["strided view", "contiguous()"]),
        }
        for name, (tensor, storages, fragments) in cases.items():
            with self.subTest(name):
                path = self.path(f"{name}.pt")
                write_archive(path, pickle_of(op_dict([("w", tensor)])), storages)
                message = self.assertRefused(path, *fragments)
                self.assertIn("tensor 'w'", message)
        # one storage seen as two dtypes
        pkl = pickle_of(op_dict([("a", op_tensor("0", 6, 0, (6,), (1,))),
                                 ("b", op_tensor("0", 3, 0, (3,), (1,), "LongStorage"))]))
        write_archive(self.path("two_types.pt"), pkl, {"0": six})
        self.assertRefused(self.path("two_types.pt"), "used both as torch.FloatStorage and as "
                           "torch.LongStorage")

    def test_decompression_bomb(self):
        """Deflated zero storages, each within deflate's ratio, that together
        inflate to 256 MB from a file of about 260 kB: refused before any is
        inflated (a child never grows past 100 MB), and so is one whose last
        tensor is malformed, before the others are read."""
        n, numel = 8, 8 << 20
        zeros = bytes(numel * 4)

        def bomb(name, last_size):
            items = [(f"w{i}", op_tensor(str(i), numel, 0, (numel,), (1,))) for i in range(n)]
            items[-1] = (f"w{n - 1}", op_tensor(str(n - 1), numel, 0, (last_size,), (1,)))
            path = self.path(name)
            write_archive(path, pickle_of(op_dict(items)), {str(i): zeros for i in range(n)},
                          extra=[("byteorder", b"little")], method=zipfile.ZIP_DEFLATED)
            return path

        path = bomb("bomb-zeros.pt", numel)
        self.assertLess(os.path.getsize(path), 1 << 20)
        self.assertRefused(path, "would inflate to 268435456 bytes", "ZIP bomb")
        self.assertRefused(bomb("bomb-bad.pt", numel + 1), "tensor 'w7'", "reaches byte")
        # the reader's peak memory, measured from a process of its own
        probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
                 "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
                 ".ru_maxrss)")
        peak_kb = subprocess.run([sys.executable, "-c", probe, TOOL, path, self.path("x.out")],
                                 capture_output=True, text=True, check=True).stdout
        self.assertLess(int(peak_kb), 100 << 10, "the reader grew past 100 MB")

    def test_bad_layouts(self):
        six = floats(1, 2, 3, 4, 5, 6)
        good = pickle_of(op_dict([("w", op_tensor("0", 6, 0, (6,), (1,)))]))
        write_archive(self.path("big_endian.pt"), good, {"0": six}, extra=[("byteorder", b"big")])
        self.assertRefused(self.path("big_endian.pt"), "'big' byte order")
        with zipfile.ZipFile(self.path("no_pkl.pt"), "w") as z:
            z.writestr("archive/data/0", six)
        self.assertRefused(self.path("no_pkl.pt"), "not a PyTorch checkpoint",
                           "archive/data.pkl")
        with zipfile.ZipFile(self.path("flat.pt"), "w") as z:
            z.writestr("data.pkl", good)
        self.assertRefused(self.path("flat.pt"), "not a PyTorch checkpoint", "not in a folder")
        write_archive(self.path("one_tensor.pt"), pickle_of(op_tensor("0", 6, 0, (6,), (1,))),
                      {"0": six})
        self.assertRefused(self.path("one_tensor.pt"), "single tensor")
        torch.save({"epoch": 3, "args": {"lr": 0.1}}, self.path("no_tensors.pt"))
        self.assertRefused(self.path("no_tensors.pt"), "no tensors found", "'epoch', 'args'")
        torch.save({"model": {"epoch": 3}}, self.path("nested_empty.pt"))
        self.assertRefused(self.path("nested_empty.pt"), "no tensors found", "['model']")

    def test_damaged_zips(self):
        src = self.path("damage_src.pt")
        torch.save(self.sd, src)
        with open(src, "rb") as f:
            data = f.read()

        def write(name, content):
            with open(self.path(name), "wb") as f:
                f.write(content)
            return self.path(name)

        self.assertRefused(write("half.pt", data[:len(data) // 2]),
                           "no ZIP end of central directory record")
        self.assertRefused(write("tiny.pt", data[:10]), "too short for a ZIP archive")
        # the end records intact, a piece of the middle gone
        cut = data[:300] + data[400:]
        self.assertRefused(write("holed.pt", cut), "central directory")
        # one flipped bit in the first storage: the CRC catches it
        with zipfile.ZipFile(src) as z:
            info = z.getinfo("damage_src/data/0")
        local_extra = struct.unpack_from("<H", data, info.header_offset + 28)[0]
        start = info.header_offset + 30 + len(info.filename) + local_extra
        flipped = bytearray(data)
        flipped[start + 5] ^= 0x10
        self.assertRefused(write("flipped.pt", bytes(flipped)),
                           "entry 'damage_src/data/0' is corrupt", "CRC-32")

        def patched(fields, entry="damage_src/data/0"):
            """fields: (offset in the central header, struct format, value)."""
            out = bytearray(data)
            pos = out.find(b"PK\x01\x02")
            while struct.unpack_from("<H", out, pos + 28)[0] != len(entry) \
                    or out[pos + 46:pos + 46 + len(entry)] != entry.encode():
                pos = out.find(b"PK\x01\x02", pos + 4)
            for field_offset, fmt, value in fields:
                struct.pack_into(fmt, out, pos + field_offset, value)
            return bytes(out)

        # absurd sizes and offsets in the central directory
        self.assertRefused(write("absurd_size.pt", patched([(20, "<I", 0x7FFFFFF0)])),
                           "stored entry 'damage_src/data/0' records", "occupies 2147483632")
        self.assertRefused(write("absurd_both.pt", patched([(20, "<I", 0x7FFFFFF0),
                                                            (24, "<I", 0x7FFFFFF0)])),
                           "run past the end of the data")
        self.assertRefused(write("bad_offset.pt", patched([(42, "<I", 0x7FFFFFF0)])),
                           "local header offset")
        self.assertRefused(write("method.pt", patched([(10, "<H", 12)])), "method 12")
        # a ZIP64 end record claiming 10^12 entries
        eocd64 = data.rfind(b"PK\x06\x06")
        many = bytearray(data)
        struct.pack_into("<QQ", many, eocd64 + 24, 10**12, 10**12)
        self.assertRefused(write("many.pt", bytes(many)), "1000000000000 entries cannot fit")
        # a deflated storage claiming a size deflate cannot reach
        deflated = self.path("deflated_src.pt")
        with zipfile.ZipFile(src) as zin, \
                zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info.filename))
        with open(deflated, "rb") as f:
            data = f.read()
        pkl = "damage_src/data.pkl"
        pkl_size = zipfile.ZipFile(deflated).getinfo(pkl).file_size
        self.assertRefused(write("bomb.pt", patched([(24, "<I", 0x7FFFFFF0)], pkl)),
                           f"entry '{pkl}' records 2147483632 bytes",
                           "more than deflate can produce")
        self.assertRefused(write("short.pt", patched([(24, "<I", pkl_size - 100)], pkl)),
                           f"entry '{pkl}' inflates to more than its recorded {pkl_size - 100}")
        self.assertRefused(write("short1.pt", patched([(24, "<I", pkl_size - 1)], pkl)),
                           f"entry '{pkl}' inflates to {pkl_size} bytes, the archive records "
                           f"{pkl_size - 1}")
        self.assertRefused(write("long.pt", patched([(24, "<I", pkl_size + 1)], pkl)),
                           f"entry '{pkl}' inflates to {pkl_size} bytes, the archive records "
                           f"{pkl_size + 1}")


if __name__ == "__main__":
    unittest.main()
