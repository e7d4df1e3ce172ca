# gimp_batch.py — runs inside gimp-console-3.0 (python-fu-eval): calls the
# plug-in's procedures on test images and records what they did, for
# test_gimp.py to check against `agriclip classify` and the colour model.
#
# Input: env AGC_GIMP_WORK (folder with cases.json, written by test_gimp.py).
# Output: AGC_GIMP_WORK/results.json and, per label case, the pixels GIMP
# shows the plug-in (R'G'B'A u8 composite and drawables, Y u8 selection).
# Every case records its own exception instead of stopping the others.

import json
import os
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("GExiv2", "0.10")
from gi.repository import Gegl, GExiv2, Gimp, Gio  # noqa: E402

WORK = os.environ["AGC_GIMP_WORK"]
with open(os.path.join(WORK, "cases.json")) as f:
    SPEC = json.load(f)


def gfile(path):
    return Gio.File.new_for_path(path)


def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, gfile(path))


def prepare(image, how):
    """Turns a loaded image into the variant a case asks for."""
    if how.get("precision") == "u16":
        image.convert_precision(Gimp.Precision.U16_NON_LINEAR)
    elif how.get("precision") == "float-linear":
        image.convert_precision(Gimp.Precision.FLOAT_LINEAR)
    if how.get("mode") == "gray":
        image.convert_grayscale()
    elif how.get("mode") == "indexed":
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE,
                              24, False, False, "")
    if "overlay" in how:  # a second, half-transparent layer over part of the image
        o = how["overlay"]
        base = image.get_layers()[0]
        layer = Gimp.Layer.new(image, "overlay", o["width"], o["height"],
                               base.type_with_alpha(), o["opacity"], Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, None, 0)
        layer.set_offsets(o["x"], o["y"])
        Gimp.context_set_foreground(rgb_color(o["rgb"]))
        layer.fill(Gimp.FillType.FOREGROUND)
    if "select" in how:
        s = how["select"]
        Gimp.context_set_antialias(s.get("antialias", False))
        op = Gimp.ChannelOps.REPLACE
        if s["shape"] == "rectangle":
            image.select_rectangle(op, s["x"], s["y"], s["width"], s["height"])
        else:
            image.select_ellipse(op, s["x"], s["y"], s["width"], s["height"])
    return image


def rgb_color(rgb):
    c = Gegl.Color.new("black")
    c.set_rgba(rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, 1.0)
    return c


def drawables_of(image, which):
    layers = image.get_layers()
    return layers if which == "all" else layers[:1]


FILE_ARGS = ("model", "data", "adapter")  # GFile arguments, given as paths


def plain(value):
    if isinstance(value, Gio.File):
        return value.get_path()
    return value if isinstance(value, (str, int, float)) else str(value)


def run(proc_name, image, drawables, args):
    """Runs a procedure non-interactively; image None: one that takes none."""
    proc = Gimp.get_pdb().lookup_procedure(proc_name)
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        config.set_property("image", image)
        config.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        if key in FILE_ARGS:
            value = gfile(value)
        config.set_property(key, value)
    result = proc.run(config)
    values = [result.index(i) for i in range(1, result.length())]
    return int(result.index(0)), [plain(v) for v in values]


def parasite_json(holder, name):
    p = holder.get_parasite(name)
    if p is None:
        return None
    return json.loads(bytes(p.get_data()).rstrip(b"\0").decode())


def read_rect(drawable, rect, fmt):
    ok, ox, oy = drawable.get_offsets()
    buf = drawable.get_buffer()
    r = Gegl.Rectangle.new(rect["x"] - ox, rect["y"] - oy, rect["width"], rect["height"])
    return bytes(buf.get(r, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def composite(image, rect):
    """The visible image as R'G'B'A u8, read the way GIMP documents it."""
    copy = image.duplicate()
    merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    data = read_rect(merged, rect, "R'G'B'A u8")
    copy.delete()
    return data


def all_layers(image):
    out = []

    def walk(layers, depth):
        for layer in layers:
            out.append({"name": layer.get_name(), "depth": depth,
                        "text": layer.is_text_layer(), "group": layer.is_group_layer(),
                        "offsets": list(layer.get_offsets()[1:]),
                        "size": [layer.get_width(), layer.get_height()],
                        "content": Gimp.TextLayer.get_by_id(layer.get_id()).get_text()
                        if layer.is_text_layer() else None})
            if layer.is_group_layer():
                walk(layer.get_children(), depth + 1)
    walk(image.get_layers(), 0)
    return out


def source_pixels(image):
    """Every layer's own pixels by layer id, to prove they are never modified."""
    out = {}
    for layer in image.get_layers():
        ok, x, y = layer.get_offsets()
        rect = {"x": x, "y": y, "width": layer.get_width(), "height": layer.get_height()}
        out[layer.get_id()] = read_rect(layer, rect, "RGBA float").hex()
    return out


def unchanged(image, before):
    after = source_pixels(image)
    return all(after.get(layer_id) == pixels for layer_id, pixels in before.items())


def export_png(image, path):
    """PNG with the XMP packet (Gimp.file_save leaves it out by default)."""
    proc = Gimp.get_pdb().lookup_procedure("file-png-export")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_property("file", gfile(path))
    config.set_property("include-xmp", True)
    proc.run(config)


def keywords(image):
    # Gimp.Metadata's GIR hides its GExiv2 parent: call GExiv2 unbound.
    md = image.get_metadata()
    return list(GExiv2.Metadata.try_get_tag_multiple(md, "Xmp.dc.subject") or []) if md else []


def dump_inputs(image, drawables, name):
    """What the plug-in will see, read before it runs (its text layer would
    show in the composite afterwards): the visible image, each drawable and
    the selection, all over the whole image, for test_gimp.py to crop."""
    whole = {"x": 0, "y": 0, "width": image.get_width(), "height": image.get_height()}
    dumps = [("image", composite(image, whole))]
    dumps += [("d%d" % i, read_rect(d, whole, "R'G'B'A u8")) for i, d in enumerate(drawables)]
    if not Gimp.Selection.is_empty(image):
        dumps.append(("mask", read_rect(image.get_selection(), whole, "Y u8")))
    for suffix, data in dumps:
        with open(os.path.join(WORK, "%s-%s.raw" % (name, suffix)), "wb") as f:
            f.write(data)


def label_case(case):
    image = prepare(load(case["image"]), case)
    before_pixels = source_pixels(image)
    before_layers = len(image.get_layers())
    drawables = drawables_of(image, case.get("drawables", "first"))
    dump_inputs(image, drawables, case["name"])
    status, values = run("plug-in-agriclip-label", image, drawables, case["args"])
    out = {"status": status, "values": values, "layers_before": before_layers,
           "size": [image.get_width(), image.get_height()],
           "precision": str(image.get_precision()), "base": str(image.get_base_type())}
    out["sources_unchanged"] = unchanged(image, before_pixels)
    out["layers"] = all_layers(image)
    out["parasite"] = parasite_json(image, "agriclip-labels")
    out["item_parasites"] = [parasite_json(d, "agriclip-labels") for d in drawables]
    out["keywords"] = keywords(image)
    if case.get("export"):
        export_png(image, case["export"])
    image.delete()
    return out


def regions_case(case):
    image = prepare(load(case["image"]), case)
    before_pixels = source_pixels(image)
    status, values = run("plug-in-agriclip-regions", image, image.get_layers()[-1:],
                         case["args"])
    out = {"status": status, "values": values, "layers": all_layers(image),
           "parasite": parasite_json(image, "agriclip-regions")}
    out["sources_unchanged"] = unchanged(image, before_pixels)
    heatmaps = {}
    for layer in image.get_layers():
        if layer.is_group_layer():
            for child in layer.get_children():
                if child.get_name().startswith("heatmap: "):
                    ok, ox, oy = child.get_offsets()
                    w, h = child.get_width(), child.get_height()
                    alpha = read_rect(child, {"x": ox, "y": oy, "width": w, "height": h},
                                      "A u8")
                    heatmaps[child.get_name()[len("heatmap: "):]] = {
                        "x": ox, "y": oy, "width": w, "height": h, "alpha": alpha.hex()}
    out["heatmaps"] = heatmaps
    image.delete()
    return out


def train_case(case):
    """plug-in-agriclip-train, with no image open."""
    status, values = run("plug-in-agriclip-train", None, None, case["args"])
    return {"status": status, "values": values, "n_images": len(Gimp.get_images())}


CASE_KINDS = {"label": label_case, "regions": regions_case, "train": train_case}

results = {}
for case in SPEC["cases"]:
    try:
        fn = CASE_KINDS[case.get("kind", "label")]
        results[case["name"]] = fn(case)
    except Exception:  # noqa: BLE001 - reported per case
        results[case["name"]] = {"exception": traceback.format_exc()}
with open(os.path.join(WORK, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
