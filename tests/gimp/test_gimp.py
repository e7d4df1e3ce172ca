"""End-to-end tests of the GIMP 3 plug-in, with gimp-console-3.0 and a real
GIMP under Xvfb.  Run by tests/gimp/run.sh (normally inside the Debian 13
root of tools/debian13-root.sh), with /usr/bin/python3.

Environment: AGC_PLUGIN (the built plug-in), AGRICLIP (the built CLI),
AGC_SOURCE_DIR, AGC_BUILD_DIR (the screenshot is kept there), AGC_SHARED_DIR.

What is independent of the code under test:
- the label reference is `agriclip classify` on a PNG of the crop, masked by
  the documented formula re-implemented here with numpy from the pixels
  GIMP reports (8-bit sources are also compared with PIL's own pixels);
- the regions reference is a model whose answers are known by construction
  (colour_model.py) and checked through the PyTorch twin.
"""

import gettext
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import clip_twin  # noqa: E402
import colour_model  # noqa: E402

SOURCE_DIR = os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("AGC_BUILD_DIR", os.getcwd())
PLANTVILLAGE = os.path.join(SOURCE_DIR, "models", "labels", "plantvillage.json")
GREY = 128
SUCCESS, EXECUTION_ERROR, CANCEL = 3, 0, 4  # GimpPDBStatusType
TOP_K = 3
PULLED = "pulled-clip"  # a model NAME, as `agriclip models pull NAME` leaves it
QUADRANTS = {"red": (0, 0), "green": (32, 0), "blue": (0, 32), "yellow": (32, 32)}


def test_image(path, alpha=False):
    """64x48, asymmetric (a flip or channel swap changes it), with texture."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, 255 - x * 2], axis=-1).astype(np.int32)
    rgb[4:20, 6:26] = (220, 30, 40)  # red block, top left
    rgb[30:44, 40:60] = (30, 40, 200)  # blue block, bottom right
    rgb = np.clip(rgb + rng.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)
    if alpha:
        a = np.clip((x - 12) * 12, 0, 255).astype(np.uint8)  # transparent on the left
        Image.fromarray(np.dstack([rgb, a]), "RGBA").save(path)
    else:
        Image.fromarray(rgb, "RGB").save(path)
    return rgb


def quadrant_image(path):
    rgb = np.zeros((64, 64, 3), np.uint8)
    for name, (qx, qy) in QUADRANTS.items():
        rgb[qy:qy + 32, qx:qx + 32] = colour_model.COLOURS[name]
    Image.fromarray(rgb, "RGB").save(path)


def masked_crop(rgba, mask):
    """The plug-in's documented masking: w = coverage * alpha, blend to grey."""
    w = rgba[..., 3].astype(np.int64) * (255 if mask is None else mask.astype(np.int64))
    full = 255 * 255
    out = (rgba[..., :3].astype(np.int64) * w[..., None] + GREY * (full - w[..., None])
           + full // 2) // full
    return out.astype(np.uint8)


def run_gimp(work, script, log_name, extra=(), env=None, timeout=600):
    """gimp-console-3.0 (or gimp-3.0 with a display) running a Python-Fu
    script, in its own process group so that a hung run is ended with its
    plug-ins.  timeout None: started and returned (a Popen) instead."""
    program = "gimp-3.0" if env and env.get("DISPLAY") else "gimp-console-3.0"
    cmd = [program, "-i" if program == "gimp-console-3.0" else "--no-splash", "-d", *extra,
           "--batch-interpreter", "python-fu-eval", "-b", "-", "--quit"]
    full_env = dict(os.environ, GIMP3_DIRECTORY=os.path.join(work, "profile"),
                    AGC_GIMP_WORK=work, **(env or {}))
    with open(script) as stdin, open(os.path.join(work, log_name), "w") as log:
        gimp = subprocess.Popen(cmd, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                                env=full_env, start_new_session=True)
    if timeout is None:
        return gimp
    try:
        return gimp.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(gimp)
        raise AssertionError("%s did not finish in %d s:\n%s"
                             % (program, timeout, log_tail(work, log_name)))


def stop(process):
    """Ends a GIMP started by run_gimp and every plug-in it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def log_tail(work, name, n=40):
    with open(os.path.join(work, name), errors="replace") as f:
        return "".join(f.readlines()[-n:])


def classify(paths, model, labels):
    """`agriclip classify` on each path: {path: [(label, p), ...]}."""
    out = subprocess.run([os.environ["AGRICLIP"], "classify", "--model", model, "--labels",
                          labels, "--top", str(TOP_K), "--format", "jsonl", *paths],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise AssertionError("agriclip classify failed: " + out.stderr)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return {r["image"]: [(x["label"], x["p"]) for x in r["labels"]] for r in rows}


class Fixture:
    """Everything the GIMP sessions share, made once."""
    work = None

    @classmethod
    def get(cls):
        if cls.work is None:
            cls.work = tempfile.mkdtemp(prefix="agc-gimp-")
            cls.make()
        return cls

    @classmethod
    def make(cls):
        w = cls.work
        plugin_dir = os.path.join(w, "profile", "plug-ins", "agriclip")
        os.makedirs(plugin_dir)
        shutil.copy(os.environ["AGC_PLUGIN"], os.path.join(plugin_dir, "agriclip"))
        # its translations, where GIMP looks for them (set_i18n: <plug-in folder>/locale)
        os.symlink(os.path.join(BUILD_DIR, "po"), os.path.join(plugin_dir, "locale"))
        cls.model = os.path.join(w, "model")
        clip_twin.make_model(cls.model, seed=3)
        cls.colour_model = os.path.join(w, "colour-model")
        cls.colour_tokens = colour_model.make_colour_model(cls.colour_model)
        cls.colour_labels = os.path.join(w, "colours.json")
        colour_model.write_colour_labels(cls.colour_labels)
        cls.rgb = test_image(os.path.join(w, "rgb.png"))
        test_image(os.path.join(w, "rgba.png"), alpha=True)
        quadrant_image(os.path.join(w, "quadrants.png"))
        # the plug-in finds models and label sets by name as the CLI does:
        # a model "pulled" into the data folder, label sets by id
        cls.data_home = os.path.join(w, "data-home")
        os.makedirs(os.path.join(cls.data_home, "agriclip", "models"))
        cls.pulled = os.path.join(cls.data_home, "agriclip", "models", PULLED)
        os.symlink(cls.model, cls.pulled)
        cls.env = {"XDG_DATA_HOME": cls.data_home,
                   "AGRICLIP_LABELS_PATH": os.path.dirname(PLANTVILLAGE)}
        broken = os.path.join(w, "broken-model")
        os.makedirs(broken)
        with open(os.path.join(broken, "config.json"), "w") as f:
            f.write("{ not json")


def display_names():
    """The plantvillage set's display names by export name, from its file."""
    with open(PLANTVILLAGE) as f:
        return {c["name"]: c.get("display", c["name"]) for c in json.load(f)["classes"]}


def label_args(model, **extra):
    args = {"model": model, "labels": PLANTVILLAGE, "top-k": TOP_K, "write-layer": True,
            "write-metadata": False}
    args.update(extra)
    return args


RECT = {"shape": "rectangle", "x": 10, "y": 5, "width": 30, "height": 20}
ELLIPSE = {"shape": "ellipse", "x": 8, "y": 4, "width": 40, "height": 36, "antialias": True}


def label_cases(fx):
    w, m = fx.work, fx.model
    rgb, rgba = os.path.join(w, "rgb.png"), os.path.join(w, "rgba.png")
    return [
        dict(name="rgb-whole", image=rgb, args=label_args(m, **{"write-metadata": True}),
             export=os.path.join(w, "rgb-export.png")),
        dict(name="rgb-rect", image=rgb, select=RECT, args=label_args(m)),
        dict(name="rgba-ellipse", image=rgba, select=ELLIPSE, args=label_args(m)),
        dict(name="gray-rect", image=rgb, mode="gray", select=RECT, args=label_args(m)),
        dict(name="indexed-whole", image=rgb, mode="indexed", args=label_args(m)),
        dict(name="u16-ellipse", image=rgb, precision="u16", select=ELLIPSE,
             args=label_args(m)),
        dict(name="float-rect", image=rgb, precision="float-linear", select=RECT,
             args=label_args(m)),
        dict(name="composite", image=rgb,
             overlay={"x": 30, "y": 20, "width": 20, "height": 20, "opacity": 50.0,
                      "rgb": [250, 240, 10]},
             select={"shape": "rectangle", "x": 20, "y": 10, "width": 40, "height": 30},
             args=label_args(m, **{"write-layer": False})),
        dict(name="drawables", image=rgb, drawables="all",
             overlay={"x": 30, "y": 20, "width": 20, "height": 20, "opacity": 100.0,
                      "rgb": [250, 240, 10]},
             select={"shape": "rectangle", "x": 20, "y": 10, "width": 40, "height": 30},
             args=label_args(m, source="drawables")),
        dict(name="missing-model", image=rgb,
             args=label_args(os.path.join(w, "no-such-model"))),
        dict(name="broken-model", image=rgb, args=label_args(os.path.join(w, "broken-model"))),
        dict(name="missing-labels", image=rgb, args=label_args(m, labels="no-such-set")),
        # names, not paths: the Model field holds NAME (GIMP makes it a file of
        # its own folder), Labels an installed set's id
        dict(name="by-name", image=rgb, args=label_args(PULLED, labels="plantvillage")),
    ]


def regions_cases(fx):
    q = os.path.join(fx.work, "quadrants.png")
    args = {"model": fx.colour_model, "labels": fx.colour_labels, "top-k": 2}
    return [
        dict(name="quadrants", kind="regions", image=q,
             args=dict(args, **{"tile-size": 16, "stride": 8, "classes": 4, "threshold": 0.9})),
        dict(name="quadrants-selection", kind="regions", image=q,
             select={"shape": "rectangle", "x": 0, "y": 0, "width": 64, "height": 24},
             args=dict(args, **{"tile-size": 16, "stride": 16, "classes": 2,
                                "threshold": 0.5})),
        dict(name="quadrants-gray", kind="regions", image=q, mode="gray",
             args=dict(args, **{"tile-size": 32, "stride": 32, "classes": 1,
                                "threshold": 0.0})),
    ]


class BatchTest(unittest.TestCase):
    """One gimp-console session running every non-interactive case."""

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture.get()
        w = cls.fx.work
        cls.cases = {c["name"]: c for c in label_cases(cls.fx) + regions_cases(cls.fx)}
        for c in cls.cases.values():
            c.setdefault("kind", "label")
        with open(os.path.join(w, "cases.json"), "w") as f:
            json.dump({"cases": list(cls.cases.values())}, f)
        start = time.time()
        run_gimp(w, os.path.join(HERE, "gimp_batch.py"), "batch.log", env=cls.fx.env)
        cls.seconds = time.time() - start
        path = os.path.join(w, "results.json")
        if not os.path.exists(path):
            raise AssertionError("the GIMP batch wrote no results:\n" + log_tail(w, "batch.log"))
        with open(path) as f:
            cls.results = json.load(f)
        cls.reference = cls.reference_labels()

    @classmethod
    def seen(cls, name, parasite, index):
        """R'G'B'A pixels [H, W, 4] and selection [H, W] (or None) of the
        region the plug-in reports, from the dumps made before it ran."""
        width, height = cls.results[name]["size"]
        base = os.path.join(cls.fx.work, name)
        source = "image" if parasite["source"] == "image" else "d%d" % index
        rgba = np.fromfile("%s-%s.raw" % (base, source), np.uint8).reshape(height, width, 4)
        mask = np.fromfile(base + "-mask.raw", np.uint8).reshape(height, width) \
            if os.path.exists(base + "-mask.raw") else None
        r = parasite["region"]
        rows, cols = slice(r["y"], r["y"] + r["height"]), slice(r["x"], r["x"] + r["width"])
        return rgba[rows, cols], None if mask is None else mask[rows, cols]

    @classmethod
    def reference_labels(cls):
        """agriclip classify on every crop the plug-in saw (one run)."""
        crops = {}
        for name, r in cls.results.items():
            if cls.cases[name]["kind"] != "label" or "exception" in r:
                continue
            found = [(0, r["parasite"])] if r.get("parasite") else []
            found += [(i, p) for i, p in enumerate(r.get("item_parasites", [])) if p]
            for i, p in found:
                rgba, mask = cls.seen(name, p, i)
                path = os.path.join(cls.fx.work, "%s-%d-crop.png" % (name, i))
                Image.fromarray(masked_crop(rgba, mask), "RGB").save(path)
                crops[(name, i)] = path
        if not crops:
            return {}
        out = classify(list(crops.values()), cls.fx.model, PLANTVILLAGE)
        return {key: out[path] for key, path in crops.items()}

    def result(self, name):
        r = self.results[name]
        self.assertNotIn("exception", r, r.get("exception"))
        return r

    def assert_matches_reference(self, name, index, parasite):
        ref = self.reference[(name, index)]
        got = [(x["label"], x["p"]) for x in parasite["labels"]]
        self.assertEqual([g[0] for g in got], [r[0] for r in ref], name)
        for (_, p), (_, q) in zip(got, ref):
            self.assertAlmostEqual(p, q, delta=1e-4, msg=name)

    # ---- label -------------------------------------------------------------

    def check_label_case(self, name, region):
        r = self.result(name)
        self.assertEqual(r["status"], SUCCESS, r["values"])
        p = r["parasite"]
        self.assertIsNotNone(p, "no agriclip-labels parasite")
        self.assertEqual(p["region"], region)
        self.assertEqual(p["model"], self.fx.model)
        self.assertEqual(p["label_set"], PLANTVILLAGE)
        self.assertEqual(p["label_set_id"], "plantvillage")
        self.assertEqual(len(p["labels"]), TOP_K)
        self.assertEqual(r["values"][0], p["labels"][0]["label"])
        self.assertAlmostEqual(r["values"][1], p["labels"][0]["p"], places=6)
        self.assertTrue(r["sources_unchanged"], "source pixels changed")
        self.assert_matches_reference(name, 0, p)
        return r

    def check_text_layer(self, r):
        top = r["layers"][0]
        self.assertEqual(len([x for x in r["layers"] if x["depth"] == 0]), r["layers_before"] + 1)
        self.assertTrue(top["text"], top)
        self.assertEqual(top["name"], "AgriCLIP: " + r["values"][0])

    def crop_pixels(self, name):
        p = self.results[name]["parasite"]
        rgba, mask = self.seen(name, p, 0)
        return p["region"], rgba, mask

    def test_rgb_whole_image(self):
        r = self.check_label_case("rgb-whole", {"x": 0, "y": 0, "width": 64, "height": 48})
        self.check_text_layer(r)
        self.assertFalse(r["parasite"]["selection"])
        # GIMP hands over exactly the PNG's pixels
        region, rgba, mask = self.crop_pixels("rgb-whole")
        np.testing.assert_array_equal(rgba[..., :3], self.fx.rgb)
        self.assertTrue((rgba[..., 3] == 255).all())

    def test_keywords(self):
        r = self.result("rgb-whole")
        labels = [x["label"] for x in r["parasite"]["labels"]]
        self.assertEqual(r["keywords"], labels)
        # … and they survive export: the PNG carries them in its XMP packet
        with open(os.path.join(self.fx.work, "rgb-export.png"), "rb") as f:
            data = f.read()
        for label in labels:
            self.assertTrue(("<rdf:li>%s</rdf:li>" % label).encode() in data, label)

    def test_rectangle_selection(self):
        r = self.check_label_case("rgb-rect", {"x": 10, "y": 5, "width": 30, "height": 20})
        self.check_text_layer(r)
        self.assertTrue(r["parasite"]["selection"])
        region, rgba, mask = self.crop_pixels("rgb-rect")
        np.testing.assert_array_equal(rgba[..., :3], self.fx.rgb[5:25, 10:40])

    def test_alpha_and_feathered_selection(self):
        self.check_label_case("rgba-ellipse", {"x": 8, "y": 4, "width": 40, "height": 36})
        region, rgba, mask = self.crop_pixels("rgba-ellipse")
        self.assertTrue(((mask > 0) & (mask < 255)).any(), "expected an antialiased edge")
        self.assertTrue((rgba[..., 3] == 0).any() and (rgba[..., 3] == 255).any())

    def test_grayscale(self):
        r = self.check_label_case("gray-rect", {"x": 10, "y": 5, "width": 30, "height": 20})
        self.assertIn("GRAY", r["base"])
        region, rgba, mask = self.crop_pixels("gray-rect")
        self.assertTrue((rgba[..., 0] == rgba[..., 1]).all())
        self.assertTrue((rgba[..., 1] == rgba[..., 2]).all())

    def test_indexed(self):
        r = self.check_label_case("indexed-whole", {"x": 0, "y": 0, "width": 64, "height": 48})
        self.assertIn("INDEXED", r["base"])
        region, rgba, mask = self.crop_pixels("indexed-whole")
        self.assertLessEqual(len(np.unique(rgba.reshape(-1, 4), axis=0)), 24)

    def test_16_bit(self):
        r = self.check_label_case("u16-ellipse", {"x": 8, "y": 4, "width": 40, "height": 36})
        self.assertIn("U16", r["precision"])
        region, rgba, mask = self.crop_pixels("u16-ellipse")
        np.testing.assert_array_equal(rgba[..., :3], self.fx.rgb[4:40, 8:48])

    def test_float_linear(self):
        r = self.check_label_case("float-rect", {"x": 10, "y": 5, "width": 30, "height": 20})
        self.assertIn("FLOAT", r["precision"])
        region, rgba, mask = self.crop_pixels("float-rect")
        diff = np.abs(rgba[..., :3].astype(int) - self.fx.rgb[5:25, 10:40])
        self.assertLessEqual(diff.max(), 1)

    def test_composite_of_layers(self):
        r = self.check_label_case("composite", {"x": 20, "y": 10, "width": 40, "height": 30})
        self.assertEqual(len(r["layers"]), 2, "write-layer false must add no layer")
        region, rgba, mask = self.crop_pixels("composite")
        # inside the half-opaque yellow overlay the composite lies strictly
        # between the overlay and what is below it (GIMP may blend in linear light)
        inside = rgba[15, 15, :3].astype(int)
        below = self.fx.rgb[25, 35].astype(int)
        overlay = np.array([250, 240, 10])
        low, high = np.minimum(below, overlay), np.maximum(below, overlay)
        self.assertTrue(((low < inside) & (inside < high) | (low == high)).all(),
                        (inside, below, overlay))

    def test_each_drawable(self):
        r = self.result("drawables")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        self.assertIsNone(r["parasite"])
        parasites = r["item_parasites"]
        self.assertTrue(all(p and p["source"] == "drawable" for p in parasites), parasites)
        regions = sorted([p["region"] for p in parasites], key=lambda g: g["width"])
        # the overlay (30,20 20x20) within the selection (20,10 40x30)
        self.assertEqual(regions[0], {"x": 30, "y": 20, "width": 20, "height": 20})
        self.assertEqual(regions[1], {"x": 20, "y": 10, "width": 40, "height": 30})
        for i, p in enumerate(parasites):
            self.assert_matches_reference("drawables", i, p)
        self.assertEqual(sum(1 for x in r["layers"] if x["text"]), 2)

    def check_error(self, name, path):
        r = self.result(name)
        self.assertEqual(r["status"], EXECUTION_ERROR, r)
        self.assertTrue(any(isinstance(v, str) and path in v for v in r["values"]), r["values"])
        self.assertIsNone(r["parasite"])
        self.assertEqual(len(r["layers"]), r["layers_before"])

    def test_missing_model(self):
        self.check_error("missing-model", os.path.join(self.fx.work, "no-such-model"))

    def test_broken_model(self):
        self.check_error("broken-model", os.path.join(self.fx.work, "broken-model"))

    def test_missing_label_set(self):
        # the CLI's message for --labels no-such-set
        self.check_error("missing-labels", "no-such-set: no such label-set file")

    def test_names_resolve_as_in_the_cli(self):
        r = self.result("by-name")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        p = r["parasite"]
        # the pulled model's folder and the installed set's file …
        self.assertEqual(p["model"], self.fx.pulled)
        self.assertEqual(p["label_set"], PLANTVILLAGE)
        self.assertEqual(p["label_set_id"], "plantvillage")
        # … the ones `agriclip classify --model NAME --labels plantvillage` uses
        region, rgba, mask = self.crop_pixels("by-name")
        crop = os.path.join(self.fx.work, "by-name-cli.png")
        Image.fromarray(masked_crop(rgba, mask), "RGB").save(crop)
        out = subprocess.run([os.environ["AGRICLIP"], "classify", "--model", PULLED, "--labels",
                              "plantvillage", "--top", str(TOP_K), "--format", "jsonl", crop],
                             capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, **self.fx.env))
        self.assertEqual(out.returncode, 0, out.stderr)
        cli = [(x["label"], x["p"]) for x in json.loads(out.stdout)["labels"]]
        got = [(x["label"], x["p"]) for x in p["labels"]]
        self.assertEqual([g[0] for g in got], [c[0] for c in cli])
        for (_, a), (_, b) in zip(got, cli):
            self.assertAlmostEqual(a, b, delta=1e-4)

    # ---- regions -----------------------------------------------------------

    def tile_class(self, box):
        """The quadrant colour a tile lies in, or None when it straddles two."""
        for name, (qx, qy) in QUADRANTS.items():
            if (qx <= box["x"] and box["x"] + box["width"] <= qx + 32
                    and qy <= box["y"] and box["y"] + box["height"] <= qy + 32):
                return name
        return None

    def expected_probs(self, name):
        return colour_model.expected_probabilities(self.fx.colour_model, self.fx.colour_tokens,
                                                   colour_model.COLOURS[name])

    def test_regions_quadrants(self):
        r = self.result("quadrants")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        self.assertEqual(r["values"][0], 49)  # 7 x 7 tiles of 16 every 8 on 64
        p = r["parasite"]
        self.assertEqual(p["region"], {"x": 0, "y": 0, "width": 64, "height": 64})
        self.assertEqual(len(p["tiles"]), 49)
        self.assertEqual(sorted(p["classes"]), sorted(QUADRANTS))
        words = list(colour_model.COLOURS)
        checked = 0
        for tile in p["tiles"]:
            name = self.tile_class(tile["box"])
            if name is None:
                continue
            checked += 1
            self.assertEqual(tile["labels"][0]["label"], name, tile)
            expected = self.expected_probs(name)
            for x in tile["labels"]:
                self.assertAlmostEqual(x["p"], expected[words.index(x["label"])], delta=1e-4)
        self.assertEqual(checked, 36)  # 3 x 3 plain tiles per quadrant
        self.assertTrue(r["sources_unchanged"])
        # one group: 4 heatmaps + a text layer per tile whose top p >= 0.9
        group = [x for x in r["layers"] if x["group"]]
        self.assertEqual(len(group), 1)
        children = [x for x in r["layers"] if x["depth"] == 1]
        n_confident = sum(1 for t in p["tiles"] if t["labels"][0]["p"] >= 0.9)
        self.assertEqual(sum(1 for x in children if x["text"]), n_confident)
        self.assertGreaterEqual(n_confident, 36)
        for name, (qx, qy) in QUADRANTS.items():
            heat = r["heatmaps"][name]
            alpha = np.frombuffer(bytes.fromhex(heat["alpha"]), np.uint8).reshape(
                heat["height"], heat["width"])
            for other, (ox, oy) in QUADRANTS.items():
                value = alpha[oy + 12, ox + 12]  # well inside a quadrant
                if other == name:
                    self.assertGreaterEqual(value, 250, (name, other))
                else:
                    self.assertLessEqual(value, 5, (name, other))

    def test_regions_selection(self):
        r = self.result("quadrants-selection")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        p = r["parasite"]
        self.assertEqual(p["region"], {"x": 0, "y": 0, "width": 64, "height": 24})
        boxes = [(t["box"]["x"], t["box"]["y"]) for t in p["tiles"]]
        self.assertEqual(sorted(boxes), sorted((x, y) for x in (0, 16, 32, 48) for y in (0, 8)))
        for t in p["tiles"]:
            self.assertEqual(t["labels"][0]["label"], "red" if t["box"]["x"] < 32 else "green")
        self.assertEqual(sorted(p["classes"]), ["green", "red"])

    def test_regions_grayscale(self):
        r = self.result("quadrants-gray")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        self.assertEqual(len(r["parasite"]["tiles"]), 4)
        self.assertEqual(len(r["heatmaps"]), 1)


TRAIN_COLOURS = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 60, 200)}


def write_tagged_folders(root, per_class=10, seed=11):
    """root/TAG/NN.png: plain noisy colours, separable by construction."""
    rng = np.random.default_rng(seed)
    for tag, rgb in TRAIN_COLOURS.items():
        os.makedirs(os.path.join(root, tag))
        for i in range(per_class):
            size = int(rng.integers(24, 40))
            pixels = np.array(rgb, float) * rng.uniform(0.8, 1.1) \
                + rng.normal(0, 10, (size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(
                os.path.join(root, tag, "%02d.png" % i))


def adapter_metadata(path):
    """The safetensors header's __metadata__ strings, JSON ones decoded."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        meta = json.loads(f.read(n)).get("__metadata__", {})
    return {k: json.loads(v) if k in ("agriclip.metrics", "agriclip.training") else v
            for k, v in meta.items()}


class TrainTest(unittest.TestCase):
    """plug-in-agriclip-train against `agriclip train` (deterministic for the
    same data and seed), and plug-in-agriclip-label with the adapter it
    wrote against `agriclip classify --adapter`."""

    EPOCHS, SEED = 30, 5
    FT_EPOCHS = 3

    @classmethod
    def setUpClass(cls):
        cls.fx = fx = Fixture.get()
        w = cls.work = os.path.join(fx.work, "train")
        os.makedirs(w)
        shutil.copytree(os.path.join(fx.work, "profile"), os.path.join(w, "profile"))
        cls.data = os.path.join(w, "tagged")
        write_tagged_folders(cls.data)
        cls.adapter = os.path.join(w, "gimp.safetensors")
        cls.ft_adapter = os.path.join(w, "gimp-finetune.safetensors")
        cls.missing_data = os.path.join(w, "no-such-folder")
        cls.failed_adapter = os.path.join(w, "failed.safetensors")
        train = {"model": fx.model, "epochs": cls.EPOCHS, "seed": cls.SEED}
        rgb = os.path.join(fx.work, "rgb.png")
        cases = [
            dict(name="train", kind="train", args=dict(train, data=cls.data,
                                                       adapter=cls.adapter)),
            dict(name="train-finetune", kind="train",
                 args=dict(model=fx.model, data=cls.data, adapter=cls.ft_adapter,
                           method="finetune", blocks=1, epochs=cls.FT_EPOCHS, seed=cls.SEED)),
            dict(name="label-finetune-adapter", image=rgb,
                 args=label_args(fx.model, adapter=cls.ft_adapter)),
            dict(name="train-missing-data", kind="train",
                 args=dict(train, data=cls.missing_data, adapter=cls.failed_adapter)),
            dict(name="label-adapter", image=rgb,
                 args=label_args(fx.model, adapter=cls.adapter)),
            dict(name="label-other-model", image=rgb,
                 args=label_args(fx.colour_model, adapter=cls.adapter)),
        ]
        with open(os.path.join(w, "cases.json"), "w") as f:
            json.dump({"cases": cases}, f)
        # own embedding caches: nothing the CLI run leaves helps the plug-in
        run_gimp(w, os.path.join(HERE, "gimp_batch.py"), "batch.log",
                 env={"XDG_CACHE_HOME": os.path.join(w, "gimp-cache")})
        path = os.path.join(w, "results.json")
        if not os.path.exists(path):
            raise AssertionError("the GIMP batch wrote no results:\n" + log_tail(w, "batch.log"))
        with open(path) as f:
            cls.results = json.load(f)

        cls.cli_adapter = os.path.join(w, "cli.safetensors")
        out = subprocess.run([os.environ["AGRICLIP"], "train", "--model", fx.model, "--data",
                              cls.data, "--out", cls.cli_adapter, "--epochs", str(cls.EPOCHS),
                              "--seed", str(cls.SEED)], capture_output=True, text=True,
                             timeout=600, env=dict(os.environ,
                                                   XDG_CACHE_HOME=os.path.join(w, "cli-cache")))
        if out.returncode != 0:
            raise AssertionError("agriclip train failed: " + out.stderr)
        cls.cli_stdout = out.stdout
        cls.cli_ft_adapter = os.path.join(w, "cli-finetune.safetensors")
        out = subprocess.run([os.environ["AGRICLIP"], "train", "--model", fx.model, "--data",
                              cls.data, "--out", cls.cli_ft_adapter, "--method", "finetune",
                              "--blocks", "1", "--epochs", str(cls.FT_EPOCHS),
                              "--seed", str(cls.SEED)], capture_output=True, text=True,
                             timeout=600, env=dict(os.environ,
                                                   XDG_CACHE_HOME=os.path.join(w, "cli-cache")))
        if out.returncode != 0:
            raise AssertionError("agriclip train --method finetune failed: " + out.stderr)

    def result(self, name):
        r = self.results[name]
        self.assertNotIn("exception", r, r.get("exception"))
        return r

    def test_train_matches_cli(self):
        r = self.result("train")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        self.assertEqual(r["n_images"], 0, "ran with no image open")
        accuracy, adapter = r["values"]
        self.assertEqual(adapter, self.adapter)
        self.assertTrue(os.path.isfile(self.adapter))
        cli = adapter_metadata(self.cli_adapter)["agriclip.metrics"]
        self.assertAlmostEqual(accuracy, cli["val_accuracy"], delta=1e-6)
        # … which is also what `agriclip train` printed (one decimal)
        self.assertIn("trained %.1f %%" % (100 * cli["val_accuracy"]), self.cli_stdout)
        gimp = adapter_metadata(self.adapter)["agriclip.metrics"]
        self.assertEqual((gimp["n_train"], gimp["n_val"]), (cli["n_train"], cli["n_val"]))
        self.assertEqual(gimp["n_val"], 6)  # 20 % of 10 per class
        mine, theirs = clip_twin.read_safetensors(self.adapter), \
            clip_twin.read_safetensors(self.cli_adapter)
        for name in ("head.weight", "head.bias"):
            np.testing.assert_allclose(np.asarray(mine[name]), np.asarray(theirs[name]),
                                       atol=1e-6, err_msg=name)

    def test_finetune_matches_cli(self):
        """method=finetune in GIMP writes the tensors `agriclip train --method
        finetune` writes, and labelling with them applies them as classify does."""
        r = self.result("train-finetune")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        meta = adapter_metadata(self.ft_adapter)
        self.assertEqual(meta["agriclip.method"], "finetune")
        mine, theirs = clip_twin.read_safetensors(self.ft_adapter), \
            clip_twin.read_safetensors(self.cli_ft_adapter)
        self.assertEqual(sorted(mine), sorted(theirs))
        self.assertTrue(any(".layers." in name for name in mine))
        for name in mine:
            np.testing.assert_allclose(np.asarray(mine[name]), np.asarray(theirs[name]),
                                       atol=1e-5, err_msg=name)
        r = self.result("label-finetune-adapter")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        rgb = os.path.join(self.fx.work, "rgb.png")
        out = subprocess.run([os.environ["AGRICLIP"], "classify", "--model", self.fx.model,
                              "--adapter", self.ft_adapter, "--top", str(TOP_K), "--format",
                              "jsonl", rgb], capture_output=True, text=True, timeout=600)
        self.assertEqual(out.returncode, 0, out.stderr)
        ref = [(x["label"], x["p"]) for x in json.loads(out.stdout)["labels"]]
        got = [(x["label"], x["p"]) for x in r["parasite"]["labels"]]
        self.assertEqual([g[0] for g in got], [x[0] for x in ref])
        for (_, a), (_, b) in zip(got, ref):
            self.assertAlmostEqual(a, b, delta=1e-4)

    def test_missing_data_folder(self):
        r = self.result("train-missing-data")
        self.assertEqual(r["status"], EXECUTION_ERROR, r)
        self.assertTrue(any(isinstance(v, str) and self.missing_data in v for v in r["values"]),
                        r["values"])
        self.assertFalse(os.path.exists(self.failed_adapter))

    def test_label_with_adapter(self):
        r = self.result("label-adapter")
        self.assertEqual(r["status"], SUCCESS, r["values"])
        p = r["parasite"]
        self.assertEqual(p["adapter"], self.adapter)
        self.assertEqual(sorted(x["label"] for x in p["labels"]), sorted(TRAIN_COLOURS))
        self.assertEqual(r["values"][0], p["labels"][0]["label"])
        # the whole opaque PNG is what the plug-in classifies (see test_rgb_whole_image)
        rgb = os.path.join(self.fx.work, "rgb.png")
        out = subprocess.run([os.environ["AGRICLIP"], "classify", "--model", self.fx.model,
                              "--adapter", self.adapter, "--top", str(TOP_K), "--format",
                              "jsonl", rgb], capture_output=True, text=True, timeout=600)
        self.assertEqual(out.returncode, 0, out.stderr)
        ref = [(x["label"], x["p"]) for x in json.loads(out.stdout)["labels"]]
        got = [(x["label"], x["p"]) for x in p["labels"]]
        self.assertEqual([g[0] for g in got], [x[0] for x in ref])
        for (_, a), (_, b) in zip(got, ref):
            self.assertAlmostEqual(a, b, delta=1e-4)

    def test_adapter_of_another_model(self):
        r = self.result("label-other-model")
        self.assertEqual(r["status"], EXECUTION_ERROR, r)
        message = " ".join(v for v in r["values"] if isinstance(v, str))
        self.assertIn(self.adapter, message)
        self.assertIn("another model", message)
        self.assertIsNone(r["parasite"])
        self.assertEqual(len(r["layers"]), r["layers_before"])


class NoFontTest(unittest.TestCase):
    """GIMP without fonts: no text layer, but the labels are still attached."""

    def test_label_without_fonts(self):
        fx = Fixture.get()
        work = os.path.join(fx.work, "no-fonts")
        os.makedirs(work, exist_ok=True)
        shutil.copytree(os.path.join(fx.work, "profile"), os.path.join(work, "profile"),
                        dirs_exist_ok=True)
        case = dict(name="no-fonts", kind="label", image=os.path.join(fx.work, "rgb.png"),
                    args=label_args(fx.model))
        with open(os.path.join(work, "cases.json"), "w") as f:
            json.dump({"cases": [case]}, f)
        run_gimp(work, os.path.join(HERE, "gimp_batch.py"), "batch.log", extra=["-f"])
        with open(os.path.join(work, "results.json")) as f:
            r = json.load(f)["no-fonts"]
        self.assertNotIn("exception", r, r.get("exception"))
        self.assertEqual(r["status"], SUCCESS, r["values"])
        self.assertIsNotNone(r["parasite"])
        self.assertFalse(any(x["text"] for x in r["layers"]), r["layers"])


class TranslatedTextTest(unittest.TestCase):
    """Under a German locale the text layer reads the installed set's display names in
    German (as the catalogue has them, read here with Python's gettext), while the parasite
    keeps the set's export and display names."""

    def test_text_layer_in_the_users_language(self):
        import test_i18n
        fx = Fixture.get()
        work = os.path.join(fx.work, "german")
        os.makedirs(work, exist_ok=True)
        shutil.copytree(os.path.join(fx.work, "profile"), os.path.join(work, "profile"),
                        dirs_exist_ok=True)
        lc_all, locpath = test_i18n.language_locale("de", os.path.join(work, "locales"))
        env = dict(fx.env, LC_ALL=lc_all, LANGUAGE="de")
        if locpath:
            env["LOCPATH"] = locpath
        case = dict(name="german", kind="label", image=os.path.join(fx.work, "rgb.png"),
                    args=label_args(fx.model))
        with open(os.path.join(work, "cases.json"), "w") as f:
            json.dump({"cases": [case]}, f)
        run_gimp(work, os.path.join(HERE, "gimp_batch.py"), "batch.log", env=env)
        with open(os.path.join(work, "results.json")) as f:
            r = json.load(f)["german"]
        self.assertNotIn("exception", r, r.get("exception"))
        self.assertEqual(r["status"], SUCCESS, r["values"])
        german = gettext.translation("agriclip", localedir=os.path.join(BUILD_DIR, "po"),
                                     languages=["de"])
        names = display_names()
        labels = r["parasite"]["labels"]
        for x in labels:  # the parasite is data: the set's own names
            self.assertEqual(x["display"], names[x["label"]])
        shown = [german.pgettext("label-set class", x["display"]) for x in labels]
        self.assertNotEqual(shown, [x["display"] for x in labels], "nothing to translate")
        text = [x["content"] for x in r["layers"] if x["text"]]
        self.assertEqual(text, ["\n".join("%s %.0f%%" % (name, 100 * x["p"])
                                          for name, x in zip(shown, labels))])


@unittest.skipUnless(shutil.which("Xvfb") and shutil.which("xdotool") and shutil.which("import"),
                     "needs Xvfb, xdotool and ImageMagick's import")
class InteractiveTest(unittest.TestCase):
    """A real GIMP on Xvfb: one Ctrl+Z undoes a label run; each window of the plug-in opened
    as from the menu (an interactive run): the Label dialog (model and label-set choosers,
    filled from the last values), the label-set editor and its prompt preview, the results
    window (one image; two layers, each acted on and labelled again), GIMP's Regions dialog
    and the regions window, the training window before and after training, then again with
    DINO chosen in it (the window opens with the first run's values).  Screenshots of
    each window (SHOTS) are kept in the build folder; InteractiveTest2x takes them at
    GDK_SCALE=2."""

    scale = 1
    screen = "1280x900x24"
    suffix = ""
    SHOTS = ("dialog", "label-set-editor", "prompt-preview", "results", "results-layers",
             "results-relabelled", "regions-dialog", "regions", "training", "training-done",
             "training-dino", "training-dino-done")
    SECOND_OFFSETS = (16, 8)

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture.get()
        cls.work = os.path.join(cls.fx.work, "gui" + cls.suffix)
        os.makedirs(cls.work, exist_ok=True)
        shutil.copytree(os.path.join(cls.fx.work, "profile"), os.path.join(cls.work, "profile"),
                        dirs_exist_ok=True)
        cls.tagged = os.path.join(cls.work, "tagged")
        if not os.path.isdir(cls.tagged):
            write_tagged_folders(cls.tagged, per_class=5)
        cls.adapter = os.path.join(cls.work, "gui.safetensors")
        cls.dino_adapter = os.path.join(cls.work, "gui-dino.safetensors")
        with open(os.path.join(cls.work, "cases.json"), "w") as f:
            json.dump({"image": os.path.join(cls.fx.work, "rgb.png"),
                       "args": label_args(cls.fx.model, **{"write-metadata": True}),
                       "second_layer": os.path.join(cls.fx.work, "rgba.png"),
                       "second_offsets": cls.SECOND_OFFSETS,
                       "regions_image": os.path.join(cls.fx.work, "quadrants.png"),
                       "regions_args": {"model": cls.fx.colour_model,
                                        "labels": cls.fx.colour_labels, "top-k": 2,
                                        "tile-size": 16, "stride": 8, "classes": 4,
                                        "threshold": 0.5},
                       "train_args": {"model": cls.fx.model, "data": cls.tagged,
                                      "adapter": cls.adapter, "epochs": 10, "seed": 5}}, f)
        display = ":%d" % (90 + 10 * (cls.scale - 1) + os.getpid() % 9)
        cls.xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", cls.screen, "-nolisten",
                                     "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # the installed label sets, for the choosers and "Label again"
        cls.env = dict(cls.fx.env, DISPLAY=display, GDK_SCALE=str(cls.scale))
        time.sleep(2)
        cls.gimp = run_gimp(cls.work, os.path.join(HERE, "gimp_gui.py"), "gui.log",
                            env=cls.env, timeout=None)
        try:
            cls.drive()
        finally:
            try:
                cls.gimp.wait(timeout=120)
            except subprocess.TimeoutExpired:
                stop(cls.gimp)
            cls.xvfb.terminate()
            cls.xvfb.wait()
        with open(os.path.join(cls.work, "gui-results.json")) as f:
            cls.results = json.load(f)

    @classmethod
    def wait_for(cls, name, seconds=300):
        path = os.path.join(cls.work, name)
        end = time.time() + seconds
        while time.time() < end and cls.gimp.poll() is None:
            if os.path.exists(path):
                return True
            time.sleep(0.5)
        return os.path.exists(path)

    @classmethod
    def xdotool(cls, *args):
        return subprocess.run(["xdotool", *args], env=dict(os.environ, **cls.env),
                              capture_output=True, text=True, timeout=30)

    @classmethod
    def find_window(cls, title, seconds=120):
        end = time.time() + seconds
        while time.time() < end:
            found = cls.xdotool("search", "--onlyvisible", "--name", title).stdout.split()
            if found:
                return found[-1]
            time.sleep(0.5)
        return None

    @classmethod
    def shot_path(cls, name):
        return os.path.join(BUILD_DIR, "gimp-plugin-%s%s.png" % (name, cls.suffix))

    @classmethod
    def screenshot(cls, name, window):
        """One window, kept in the build folder as a test artefact.  The pointer goes to
        the screen's far corner first: left where Xvfb starts it, in the middle, it hovers
        a control whose tooltip then covers part of the shot."""
        width, height = (int(v) for v in cls.screen.split("x")[:2])
        cls.xdotool("mousemove", str(width - 1), str(height - 1))
        time.sleep(2)  # let it draw
        subprocess.run(["import", "-window", window, cls.shot_path(name)],
                       env=dict(os.environ, **cls.env), timeout=60)

    @classmethod
    def keys(cls, window, *keys):
        cls.xdotool("windowfocus", "--sync", window)
        for key in keys:
            cls.xdotool("key", "--clearmodifiers", key)
            time.sleep(0.5)

    @classmethod
    def set_field(cls, window, mnemonic, text):
        """A person's edit of a text or number field: its mnemonic, select all, type,
        Tab (a spin button takes typed text when it loses the focus)."""
        cls.keys(window, mnemonic, "ctrl+a")
        cls.xdotool("type", "--delay", "20", text)
        cls.keys(window, "Tab")

    @classmethod
    def drive(cls):
        """The user's part: Ctrl+Z in the image window; in the Label dialog the label-set
        editor (Alt+E) and its preview (Alt+V), then Label (Alt+L); Escape in each results
        window after its actions; Return in GIMP's Regions dialog, Escape in the regions
        window; Train (Alt+T) in the training window, Escape once the adapter is written; in
        the second training window DINO (Alt+H, Home, Down x3) and its fields, then Train.
        The second Label… picks "Each selected layer" (Alt+I, End) as a person would."""
        if not cls.wait_for("labelled"):
            return
        window = cls.find_window("GIMP$")
        if window:
            cls.xdotool("windowfocus", "--sync", window)
            time.sleep(1)
            cls.xdotool("key", "--clearmodifiers", "ctrl+z")
        if not cls.wait_for("dialog-opening"):
            return
        dialog = cls.find_window("AgriCLIP: Label$")
        if dialog:
            cls.screenshot("dialog", dialog)
            cls.keys(dialog, "alt+e")
            editor = cls.find_window("AgriCLIP: Edit Label Set", 30)
            if editor:
                cls.screenshot("label-set-editor", editor)
                cls.keys(editor, "alt+v")
                preview = cls.find_window("AgriCLIP: Sentences per Class", 30)
                if preview:
                    cls.screenshot("prompt-preview", preview)
                    cls.keys(preview, "Escape")
                cls.keys(editor, "alt+c")
            cls.keys(dialog, "alt+l")
        results = cls.find_window("AgriCLIP: Results")
        if results:
            cls.screenshot("results", results)
            cls.keys(results, "Escape")

        # two layers: a text layer for each (Alt+L, Alt+U Down, Alt+L), then label
        # both again with the first installed set (Alt+W Home, Alt+G)
        if not cls.wait_for("layers-opening"):
            return
        dialog = cls.find_window("AgriCLIP: Label$")
        if dialog:
            time.sleep(2)  # "Image or layers": the last item, "Each selected layer"
            cls.keys(dialog, "alt+i", "End", "alt+l")
        results = cls.find_window("AgriCLIP: Results")
        if results:
            cls.screenshot("results-layers", results)
            cls.keys(results, "alt+l", "alt+u", "Down", "alt+l", "alt+w", "Home", "alt+g")
            time.sleep(8)  # the set's prompts are encoded
            cls.screenshot("results-relabelled", results)
            cls.keys(results, "Escape")

        if not cls.wait_for("plug-in-agriclip-regions-opening"):
            return
        dialog = cls.find_window("AgriCLIP: Regions")
        if dialog:
            cls.screenshot("regions-dialog", dialog)
            cls.keys(dialog, "Return")
            time.sleep(1)
        regions = cls.find_window("AgriCLIP: Regions")
        if regions:
            time.sleep(6)  # the tiles are classified
            cls.screenshot("regions", regions)
            cls.keys(regions, "Escape")

        if not cls.wait_for("plug-in-agriclip-train-opening"):
            return
        training = cls.find_window("AgriCLIP: Train on Tagged Folders")
        if training:
            cls.screenshot("training", training)
            cls.keys(training, "alt+t")
            end = time.time() + 180
            while time.time() < end and not os.path.exists(cls.adapter):
                time.sleep(1)
            cls.screenshot("training-done", training)
            cls.keys(training, "Escape")

        # the window again, with the first run's values: DINO chosen in it (Alt+H, the
        # fourth method), its own adapter file, one epoch of small crops, then Train
        if not cls.wait_for("dino-training-opening"):
            return
        training = cls.find_window("AgriCLIP: Train on Tagged Folders")
        if training:
            time.sleep(2)  # the folder is looked at
            cls.keys(training, "alt+h", "Home", "Down", "Down", "Down")
            cls.set_field(training, "alt+p", cls.dino_adapter)
            cls.set_field(training, "alt+e", "1")
            cls.set_field(training, "alt+a", "0")    # local crops
            cls.set_field(training, "alt+u", "256")  # outputs
            cls.set_field(training, "alt+z", "64")   # crop size
            cls.screenshot("training-dino", training)
            cls.keys(training, "alt+t")
            end = time.time() + 300
            while time.time() < end and not os.path.exists(cls.dino_adapter):
                time.sleep(1)
            time.sleep(2)  # the window shows the end of the run
            cls.screenshot("training-dino-done", training)
            cls.keys(training, "Escape")

    def test_one_undo_restores_the_image(self):
        r = self.results
        self.assertEqual(r["labelled"]["status"], SUCCESS, r["labelled"])
        self.assertEqual(r["labelled"]["n_layers"], r["before"]["n_layers"] + 1)
        self.assertTrue(r["labelled"]["parasite"])
        self.assertTrue(r["labelled"]["keywords"])
        self.assertEqual(r["undone"], r["before"])

    def test_dialog(self):
        r = self.results
        self.assertEqual(r["interactive"]["status"], SUCCESS, r["interactive"])
        self.assertEqual(r["interactive"]["parasite"]["model"], self.fx.model)

    def test_screenshots(self):
        """Every window was found and shot (looking at them is for people)."""
        for name in self.SHOTS:
            shot = self.shot_path(name)
            self.assertTrue(os.path.exists(shot), shot)
            with Image.open(shot) as im:
                self.assertGreaterEqual(min(im.size), 100 * self.scale, shot)

    def layer_crops(self):
        """Each labelled layer's crop as the plug-in saw it (the second layer is offset,
        hence clipped by the image), saved as PNGs for `agriclip classify`."""
        crops = []
        for i, p in enumerate(self.results["layers"]["parasites"]):
            source = "rgb.png" if i == 1 else "rgba.png"  # GIMP lists the top layer first
            ox, oy = (0, 0) if i == 1 else self.SECOND_OFFSETS
            rgba = np.asarray(Image.open(os.path.join(self.fx.work, source)).convert("RGBA"))
            g = p["region"]
            crop = rgba[g["y"] - oy:g["y"] - oy + g["height"], g["x"] - ox:g["x"] - ox + g["width"]]
            path = os.path.join(self.work, "layer-%d.png" % i)
            Image.fromarray(masked_crop(crop, None), "RGB").save(path)
            crops.append(path)
        return crops

    def classify_display(self, paths, labels):
        """`agriclip classify` of each path: [(label, display, p)…] per path."""
        out = subprocess.run([os.environ["AGRICLIP"], "classify", "--model", self.fx.model,
                              "--labels", labels, "--top", str(TOP_K), "--format", "jsonl",
                              *paths], capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, **self.fx.env))
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = {}
        for line in out.stdout.splitlines():
            row = json.loads(line)
            rows[row["image"]] = [(x["label"], display_names().get(x["label"]), x["p"])
                                  for x in row["labels"]]
        return [rows[p] for p in paths]

    def test_each_layer_has_its_result(self):
        """Label… on two layers: one result per layer; the text layer added from the
        results window for each is that layer's labels, at that layer's region."""
        r = self.results["layers"]
        self.assertEqual(r["status"], SUCCESS, r)
        self.assertIsNone(r["image_parasite"])
        parasites = r["parasites"]
        self.assertTrue(all(p and p["source"] == "drawable" for p in parasites), parasites)
        self.assertEqual(parasites[0]["region"]["x"], self.SECOND_OFFSETS[0])
        expected = self.classify_display(self.layer_crops(), PLANTVILLAGE)
        texts = {(t["offsets"][0], t["offsets"][1]): t for t in r["text_layers"]}
        self.assertEqual(len(texts), 2, r["text_layers"])
        for p, want in zip(parasites, expected):
            layer = texts[(p["region"]["x"], p["region"]["y"])]
            self.assertEqual(layer["name"], "AgriCLIP: " + want[0][0])
            lines = layer["text"].split("\n")
            self.assertEqual(len(lines), TOP_K)
            for line, (label, display, prob) in zip(lines, want):
                name, percent = line.rsplit(" ", 1)
                self.assertEqual(name, display)
                self.assertAlmostEqual(float(percent.rstrip("%")), 100 * prob, delta=0.51)

    def test_label_again_rewrites_the_parasites(self):
        """"Label again" with another set: every layer's parasite names that set and holds
        its labels, as `agriclip classify --labels SET` gives them for the same crop."""
        parasites = self.results["layers"]["parasites"]
        set_id = parasites[0]["label_set_id"]
        self.assertNotEqual(set_id, "plantvillage")
        expected = self.classify_display(self.layer_crops(), set_id)
        for p, want in zip(parasites, expected):
            self.assertEqual(p["label_set_id"], set_id)
            self.assertTrue(os.path.isfile(p["label_set"]), p["label_set"])
            self.assertEqual(p["source"], "drawable")
            self.assertEqual([x["label"] for x in p["labels"]], [w[0] for w in want])
            for x, w in zip(p["labels"], want):
                self.assertAlmostEqual(x["p"], w[2], delta=1e-4)

    def test_regions_and_training_windows(self):
        self.assertEqual(self.results["regions"]["status"], SUCCESS, self.results["regions"])
        self.assertEqual(self.results["train"]["status"], SUCCESS, self.results["train"])
        self.assertTrue(os.path.isfile(self.adapter))

    def test_dino_from_the_training_window(self):
        """The second training window, DINO chosen in it by the user: the run succeeds and
        writes a DINO adapter to the file typed in, for the model the window opened with."""
        r = self.results["train_dino"]
        self.assertEqual(r["status"], SUCCESS, r)
        self.assertTrue(os.path.isfile(self.dino_adapter), self.dino_adapter)
        meta = adapter_metadata(self.dino_adapter)
        self.assertEqual(meta["agriclip.kind"], "adapter")
        self.assertEqual(meta["agriclip.method"], "dino")
        self.assertEqual(adapter_metadata(self.adapter)["agriclip.method"], "probe")


class InteractiveTest2x(InteractiveTest):
    """The same at GDK_SCALE=2 on a screen twice as large (HiDPI)."""

    scale = 2
    screen = "2560x1800x24"
    suffix = "-2x"


if __name__ == "__main__":
    program = unittest.main(exit=False)
    result = program.result
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    if Fixture.work and failed == 0:
        shutil.rmtree(Fixture.work)
    elif Fixture.work:
        print("gimp tests: files kept in", Fixture.work)
    # a failed setUpClass counts as failed without running its tests
    print("gimp: %d passed, %d failed, %d skipped"
          % (max(0, result.testsRun - failed - skipped), failed, skipped))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
