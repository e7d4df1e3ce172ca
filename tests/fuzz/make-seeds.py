"""Seed corpora for the fuzz harnesses, written by torch.save / torch.jit.save
(torch 1.13 from Debian): small checkpoints for fuzz-checkpoint, their
data.pkl pickles plus plain pickles for fuzz-pickle.
Usage: /usr/bin/python3 tests/fuzz/make-seeds.py OUT_DIR"""
import collections
import io
import os
import pickle
import sys
import warnings
import zipfile

import torch

out = sys.argv[1]
os.makedirs(os.path.join(out, "checkpoint"), exist_ok=True)
os.makedirs(os.path.join(out, "pickle"), exist_ok=True)
torch.manual_seed(0)
warnings.filterwarnings("ignore")

base = torch.arange(12, dtype=torch.float32)
linear = torch.nn.Linear(3, 2)
checkpoints = {
    "state_dict": linear.state_dict(),
    "aligner": {"W": torch.randn(4, 3), "b": torch.randn(4)},
    "dtypes": {"f16": base.half(), "bf16": base.bfloat16(), "i64": base.long(),
               "u8": base.byte(), "bool": base > 5, "f64": base.double()},
    "views": {"base": base, "t": base.view(3, 4).t(), "slice": base[2:5],
              "expand": base[:2].expand(3, 2), "scalar": torch.tensor(2.0),
              "empty": torch.zeros(0, 3)},
    "nested": {"epoch": 3, "state_dict": {"module.w": torch.ones(2)}, "best": 0.5,
               "optimizer": {"state": {0: {"step": 1}}, "param_groups": [{"lr": 0.1,
                             "betas": (0.9, 0.99), "params": [0]}]}},
    "parameter": {"p": torch.nn.Parameter(torch.ones(2, 2))},
}
for name, value in checkpoints.items():
    torch.save(value, os.path.join(out, "checkpoint", f"{name}.pt"))
torch.save(checkpoints["aligner"], os.path.join(out, "checkpoint", "proto4.pt"),
           pickle_protocol=4)

# a deflated copy, and a TorchScript archive without its (large) code entries
src = os.path.join(out, "checkpoint", "state_dict.pt")
with zipfile.ZipFile(src) as zin, \
        zipfile.ZipFile(os.path.join(out, "checkpoint", "deflated.pt"), "w",
                        zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        zout.writestr(info.filename, zin.read(info.filename))
buffer = io.BytesIO()
torch.jit.save(torch.jit.trace(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2)),
                               torch.ones(1, 2)), buffer)
with zipfile.ZipFile(buffer) as zin, \
        zipfile.ZipFile(os.path.join(out, "checkpoint", "torchscript.pt"), "w") as zout:
    for info in zin.infolist():
        if "/code/" not in info.filename or info.filename.endswith("__torch__.py"):
            zout.writestr(info.filename, zin.read(info.filename))

# copies whose central directory records CRC 0 ("not computed", as torch 2.4
# writes with set_crc32_options(False)): mutations of data.pkl then reach
# the unpickler instead of stopping at the CRC check
for name in sorted(os.listdir(os.path.join(out, "checkpoint"))):
    with open(os.path.join(out, "checkpoint", name), "rb") as f:
        data = bytearray(f.read())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        data[pos + 16:pos + 20] = bytes(4)
        pos = data.find(b"PK\x01\x02", pos + 4)
    with open(os.path.join(out, "checkpoint", "nocrc-" + name), "wb") as f:
        f.write(data)

for name in os.listdir(os.path.join(out, "checkpoint")):
    if name.startswith("nocrc-"):
        continue
    with zipfile.ZipFile(os.path.join(out, "checkpoint", name)) as z:
        for entry in z.namelist():
            if entry.endswith(".pkl") and "code/" not in entry:
                kind = os.path.basename(entry)[:-4]
                with open(os.path.join(out, "pickle", f"{name}.{kind}"), "wb") as f:
                    f.write(z.read(entry))
plain = {"a": [1, 2.5, None, True, "\u00e9", (1, 2)], "n": -2**40, "big": 2**63 - 1}
for protocol in (2, 4, 5):
    with open(os.path.join(out, "pickle", f"plain{protocol}.pkl"), "wb") as f:
        pickle.dump(plain, f, protocol=protocol)
cycle = []
cycle.append(cycle)
with open(os.path.join(out, "pickle", "cycle.pkl"), "wb") as f:
    pickle.dump(collections.OrderedDict(x=cycle), f, protocol=2)
