# gimp_gui.py — runs inside a real GIMP (gimp-3.0 on Xvfb, python-fu-eval)
# while test_gimp.py plays the user with xdotool:
#   1. label an image shown in a window, write "labelled", wait for the
#      user's single Ctrl+Z, record the image again;
#   2. write the remembered settings GIMP keeps for the procedure, open its
#      dialog (interactive run), the user presses OK, record the result;
#   3. Label… on two selected layers: the user adds a text layer for each
#      from the results window and labels both again with another set;
#   4. Regions… (GIMP's dialog, then the regions window) and Train on
#      Tagged Folders (the training window, trained by the user), then the
#      training window again, where the user trains DINO: opened for the
#      screenshots, their status recorded.
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


FILE_ARGS = ("model", "data", "adapter")


def config_for(image, run_mode, name=PROC, args=None, drawables=None):
    proc = Gimp.get_pdb().lookup_procedure(name)
    config = proc.create_config()
    config.set_property("run-mode", run_mode)
    if image is not None:
        config.set_property("image", image)
        config.set_core_object_array("drawables", drawables or image.get_layers()[:1])
    for key, value in (SPEC["args"] if args is None else args).items():
        config.set_property(key, Gio.File.new_for_path(value) if key in FILE_ARGS else value)
    return proc, config


def remember(config, args):
    """What GIMP remembers after an interactive run, so that the dialog or
    window opens with these values filled in."""
    settings = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-in-settings")
    os.makedirs(settings, exist_ok=True)
    last = os.path.join(settings, type(config).__gtype__.name + ".last")
    with open(last, "w") as f:  # GimpConfig's format; Python cannot call its serializer here
        f.write("# settings\n\n")
        for key, value in args.items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, str):
                value = json.dumps(value)
            f.write("(%s %s)\n" % (key, value))
        f.write("\n# end of settings\n")


def text_layers(image):
    out = []
    for layer in image.get_layers():
        if layer.is_text_layer():
            text = Gimp.TextLayer.get_by_id(layer.get_id()).get_text()
            out.append({"name": layer.get_name(), "text": text,
                        "offsets": list(layer.get_offsets()[1:])})
    return out


def several_layers():
    """Label… on two selected layers, the second one offset."""
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(SPEC["image"]))
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                 Gio.File.new_for_path(SPEC["second_layer"]))
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*SPEC["second_offsets"])
    layers = image.get_layers()
    image.set_selected_layers(layers)
    Gimp.Display.new(image)
    Gimp.displays_flush()
    args = dict(SPEC["args"], source="drawables")
    proc, config = config_for(image, Gimp.RunMode.INTERACTIVE, args=args, drawables=layers)
    remember(config, args)
    mark("layers-opening")
    values = proc.run(config)
    return {"status": int(values.index(0)), "layers": [x.get_name() for x in layers],
            "parasites": [parasite(x) for x in layers], "image_parasite": parasite(image),
            "text_layers": text_layers(image)}


def window_of(name, image, args, opening=None):
    """An interactive run of procedure name, for its window; marks `opening` (default
    NAME-opening) as it opens."""
    proc, config = config_for(image, Gimp.RunMode.INTERACTIVE, name, args)
    remember(config, args)
    mark(opening or name + "-opening")
    values = proc.run(config)
    return {"status": int(values.index(0))}


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

    proc, config = config_for(image, Gimp.RunMode.INTERACTIVE)
    remember(config, SPEC["args"])
    mark("dialog-opening")
    values = proc.run(config)
    results["interactive"] = {"status": int(values.index(0)), "parasite": parasite(image)}

    results["layers"] = several_layers()
    quadrants = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                               Gio.File.new_for_path(SPEC["regions_image"]))
    Gimp.Display.new(quadrants)
    Gimp.displays_flush()
    results["regions"] = window_of("plug-in-agriclip-regions", quadrants, SPEC["regions_args"])
    results["train"] = window_of("plug-in-agriclip-train", None, SPEC["train_args"])
    # again: the window opens with the first run's values (GIMP's last values, which
    # the settings file no longer overrides); the user picks DINO in it
    results["train_dino"] = window_of("plug-in-agriclip-train", None, SPEC["train_args"],
                                      "dino-training-opening")
except Exception:  # noqa: BLE001 - reported to the test
    results["exception"] = traceback.format_exc()
with open(os.path.join(WORK, "gui-results.json"), "w") as f:
    json.dump(results, f)
