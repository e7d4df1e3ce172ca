# gimp_procedures.py — runs in gimp-console-3.0 (python-fu-eval) in the clean
# root of tests/packaging/run.sh: lists the plug-in's procedures and runs
# plug-in-agriclip-label on /fixture/leaf.png with the installed label set.
# Writes $AGC_OUT/gimp.json for check.py.
import json
import os
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

out = {}
try:
    pdb = Gimp.get_pdb()
    out["procedures"] = sorted(pdb.query_procedures("plug-in-agriclip.*", "", "", "", "", "",
                                                    "", ""))
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("/fixture/leaf.png"))
    proc = pdb.lookup_procedure("plug-in-agriclip-label")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", image.get_layers())
    config.set_property("model", Gio.File.new_for_path("/fixture/model"))
    config.set_property("labels", "plantvillage")
    config.set_property("top-k", 3)
    result = proc.run(config)
    out["status"] = int(result.index(0))
    out["values"] = [result.index(i) for i in range(1, result.length())]
    parasite = image.get_parasite("agriclip-labels")
    if parasite is not None:
        out["parasite"] = json.loads(bytes(parasite.get_data()).rstrip(b"\0").decode())
except Exception:
    out["error"] = traceback.format_exc()
with open(os.path.join(os.environ["AGC_OUT"], "gimp.json"), "w") as f:
    json.dump(out, f, default=str)
