# gimp_gui.py — runs inside a real GIMP (gimp-3.0 on Xvfb, python-fu-eval)
# while test_gimp.py plays the user with xdotool:
#   1. label an image shown in a window, write "labelled", wait for the
#      user's single Ctrl+Z, record the image again;
#   2. write the remembered settings GIMP keeps for the procedure, open its
#      dialog (interactive run), the user presses OK, record the result.
# The PDB has no "undo" procedure, hence the real keystroke.

import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("GExiv2", "0.10")
from gi.repository import Gegl, GExiv2, Gimp, Gio  # noqa: E402

WORK = os.environ["AGC_GIMP_WORK"]
with open(os.path.join(WORK, "cases.json")) as f:
    SPEC = json.load(f)
PROC = "plug-in-agriclip-label"


def mark(name):
    open(os.path.join(WORK, name), "w").close()


def parasite(image):
    p = image.get_parasite("agriclip-labels")
    return json.loads(bytes(p.get_data()).rstrip(b"\0").decode()) if p else None


def keywords(image):
    md = image.get_metadata()
    return list(GExiv2.Metadata.try_get_tag_multiple(md, "Xmp.dc.subject") or []) if md else []


def state(image):
    layer = image.get_layers()[-1]
    buf = layer.get_buffer()
    pixels = bytes(buf.get(Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height()),
                           1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE))
    return {"n_layers": len(image.get_layers()), "parasite": parasite(image) is not None,
            "keywords": keywords(image), "pixels": pixels.hex()}


def config_for(image, run_mode):
    proc = Gimp.get_pdb().lookup_procedure(PROC)
    config = proc.create_config()
    config.set_property("run-mode", run_mode)
    config.set_property("image", image)
    config.set_core_object_array("drawables", image.get_layers()[:1])
    for key, value in SPEC["args"].items():
        config.set_property(key, Gio.File.new_for_path(value) if key == "model" else value)
    return proc, config


results = {}
try:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(SPEC["image"]))
    Gimp.Display.new(image)
    Gimp.displays_flush()
    results["before"] = state(image)

    proc, config = config_for(image, Gimp.RunMode.NONINTERACTIVE)
    values = proc.run(config)
    Gimp.displays_flush()
    results["labelled"] = dict(state(image), status=int(values.index(0)))
    mark("labelled")
    end = time.time() + 120
    labelled = results["labelled"]
    while time.time() < end:
        now = state(image)
        if now["n_layers"] != labelled["n_layers"] or now["parasite"] != labelled["parasite"]:
            time.sleep(2)  # let a partial undo show if there were one
            break
        time.sleep(0.5)
    results["undone"] = state(image)

    # What GIMP remembers after an interactive run, so that the dialog opens
    # with our model and label set filled in.
    proc, config = config_for(image, Gimp.RunMode.INTERACTIVE)
    settings = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-in-settings")
    os.makedirs(settings, exist_ok=True)
    last = os.path.join(settings, type(config).__gtype__.name + ".last")
    with open(last, "w") as f:  # GimpConfig's format; Python cannot call its serializer here
        f.write("# settings\n\n")
        for key, value in SPEC["args"].items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, str):
                value = json.dumps(value)
            f.write("(%s %s)\n" % (key, value))
        f.write("\n# end of settings\n")
    mark("dialog-opening")
    values = proc.run(config)
    results["interactive"] = {"status": int(values.index(0)), "parasite": parasite(image)}
except Exception:  # noqa: BLE001 - reported to the test
    results["exception"] = traceback.format_exc()
with open(os.path.join(WORK, "gui-results.json"), "w") as f:
    json.dump(results, f)
