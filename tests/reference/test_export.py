"""test_export.py — `agriclip export` read back by independent readers.

RUN folders are made from real images: PNG and JPEG files written with PIL
under names with spaces, commas, quotes and newlines, in two source folders
(two images share a name, two a stem), labelled by `agriclip classify
--format jsonl` with a small generated model (clip_twin.make_model), plus
the fields of results.jsonl that `agriclip tag` adds (source, width,
height, review) and, for the regions run, boxes on a grid of tiles.  With
`agriclip tag` built, one test also exports a run it made.

Each format is checked by a reader that does not share the writer's code:
Python's csv module; a COCO consistency check (ids, references, boxes
inside images; pycocotools as well when it is installed); YOLO lines parsed
and denormalised back to the boxes; the Label Studio task schema against the
labelling config (parsed with ElementTree); XMP sidecars read back by
exiftool, including one exiftool wrote first whose other tags must stay.
"""

import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
import yaml
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
EXIFTOOL = shutil.which("exiftool")
LABELS = ["healthy", "late blight, leaf", 'say "rust"', "mildew/powdery"]
DISPLAYS = ["Healthy leaf", "Late blight", "Rust <quoted>", "Powdery mildew"]
TILE = 16
# source folder -> (relative path, size, format)
IMAGES = {
    "src one": [("leaf 1.png", (40, 30), "PNG"),
                ("comma,name.png", (33, 47), "PNG"),
                ('quote"d.jpg', (64, 48), "JPEG"),
                ("new\nline.png", (32, 32), "PNG"),
                ("sub dir/leaf 1.png", (50, 20), "PNG")],
    "src two": [("leaf 1.jpg", (48, 40), "JPEG"),
                ("plain.png", (17, 70), "PNG")],
}


def run_cli(*args, check=True):
    proc = subprocess.run([AGRICLIP] + list(args), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"agriclip {args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_images(root, seed):
    rng = np.random.default_rng(seed)
    for source, files in IMAGES.items():
        for rel, (w, h), kind in files:
            path = os.path.join(root, source, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(path, kind)


def grid_boxes(width, height, labels):
    """Tiles of TILE pixels (clipped at the edges) labelled in turn with the
    image's labels: boxes as `tag --regions` writes them."""
    boxes = []
    tiles = [(y, x) for y in range(0, height, TILE) for x in range(0, width, TILE)]
    for i, (y, x) in enumerate(tiles):
        label = labels[i % len(labels)]
        boxes.append({"x": x, "y": y, "width": min(TILE, width - x),
                      "height": min(TILE, height - y), "label": label["label"],
                      "p": round(label["p"] * 0.9, 6)})
    return boxes[:5]


def make_run(run_dir, root, model_dir, regions):
    """A RUN folder for the images under root, labelled by classify."""
    sources = [os.path.join(root, s) for s in IMAGES]
    lines = []
    for index, source in enumerate(sources):
        args = ["classify", "--model", model_dir, "--format", "jsonl", "--top", "3",
                "--recursive"]
        for label in LABELS:
            args += ["--label", label]
        out = run_cli(*args, source).stdout
        for line in out.splitlines():
            obj = json.loads(line)
            rel = os.path.relpath(obj["image"], source)
            with Image.open(obj["image"]) as im:
                width, height = im.size
            record = {"image": rel, "source": index, "width": width, "height": height,
                      "labels": obj["labels"]}
            lines.append(record)
    # about half the images below the review threshold
    tops = sorted(r["labels"][0]["p"] for r in lines)
    threshold = tops[len(tops) // 2]
    for r in lines:
        r["review"] = r["labels"][0]["p"] < threshold
        if regions:
            r["boxes"] = grid_boxes(r["width"], r["height"], r["labels"])
    os.makedirs(run_dir)
    run = {"format": "agriclip-tag-run", "version": 1, "model": model_dir,
           "model_identity": "twin-test-model",
           "labels": [{"label": l, "display": d} for l, d in zip(LABELS, DISPLAYS)],
           "label_set": "--label", "settings": {
               "top": 3, "review_below": threshold,
               "regions": {"tile": TILE, "stride": TILE} if regions else None},
           "sources": sources, "shard": None}
    with open(os.path.join(run_dir, "run.json"), "w", encoding="utf-8") as f:
        json.dump(run, f, indent=2)
    with open(os.path.join(run_dir, "results.jsonl"), "w", encoding="utf-8") as f:
        for r in lines:
            f.write(json.dumps(r) + "\n")
    return run, lines


def as_list(value):
    """exiftool -json gives a list of one item as the item."""
    return value if isinstance(value, list) else [value]


def original(run, record):
    return os.path.join(run["sources"][record["source"]], record["image"])


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class ExportFormats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-export-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=21, image_size=32, logit_scale=math.log(4.0))
        cls.images = os.path.join(cls.tmp, "images")
        write_images(cls.images, seed=3)
        cls.hashes = {os.path.join(d, f): sha256(os.path.join(d, f))
                      for d, _, files in os.walk(cls.images) for f in files}
        cls.plain, cls.plain_lines = make_run(os.path.join(cls.tmp, "run plain"), cls.images,
                                              cls.model, regions=False)
        cls.regions, cls.region_lines = make_run(os.path.join(cls.tmp, "run regions"),
                                                 cls.images, cls.model, regions=True)
        cls.n_images = sum(len(files) for files in IMAGES.values())
        assert len(cls.plain_lines) == cls.n_images, cls.plain_lines
        assert any(r["review"] for r in cls.plain_lines)
        assert not all(r["review"] for r in cls.plain_lines)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def export(self, run_name, fmt, *extra, dest=None):
        dest = dest or tempfile.mkdtemp(prefix=f"{fmt}, out ", dir=self.tmp)
        if os.path.isdir(dest) and not os.listdir(dest):
            os.rmdir(dest)
        run_cli("export", os.path.join(self.tmp, run_name), "--format", fmt, "--out", dest,
                *extra)
        return dest

    def tearDown(self):
        # originals are never moved or changed (sidecars beside them are new files)
        for path, digest in self.hashes.items():
            self.assertEqual(sha256(path), digest, path)

    # ---- folders and yolo classification: links or copies by label ----

    def check_tree(self, dest, run, lines, with_review, copies):
        """Every image exactly once, at <label>/ (or _review/<label>/)."""
        found = {}
        for folder, dirs, files in os.walk(dest):
            for name in files:
                path = os.path.join(folder, name)
                if name == ".agriclip-export":
                    continue
                rel = os.path.relpath(folder, dest)
                if copies:
                    self.assertFalse(os.path.islink(path))
                    target = next(p for p, h in self.hashes.items() if h == sha256(path))
                else:
                    self.assertTrue(os.path.islink(path), path)
                    target = os.readlink(path)
                    self.assertTrue(os.path.isabs(target))
                self.assertNotIn(target, found)
                found[target] = (rel, name)
        self.assertEqual(len(found), len(lines))
        names = set()
        for r in lines:
            rel, name = found[original(run, r)]
            folder = r["labels"][0]["label"].replace("/", "_")
            want = os.path.join("_review", folder) if with_review and r["review"] else folder
            self.assertEqual(rel, want)
            self.assertEqual(os.path.splitext(name)[1], os.path.splitext(r["image"])[1])
            names.add(os.path.splitext(name)[0])
        self.assertEqual(len(names), len(lines), "names unique without extensions")

    def test_folders_links(self):
        dest = self.export("run plain", "folders")
        self.check_tree(dest, self.plain, self.plain_lines, with_review=True, copies=False)

    def test_folders_copies(self):
        dest = self.export("run plain", "folders", "--copy")
        self.check_tree(dest, self.plain, self.plain_lines, with_review=True, copies=True)

    def test_copies_of_linked_originals(self):
        """An original that is a symbolic link is copied as the photo it names."""
        linked = os.path.join(self.tmp, "linked src")
        real = os.path.join(self.images, "src two")
        for rel, _, _ in IMAGES["src two"]:
            os.makedirs(os.path.dirname(os.path.join(linked, rel)), exist_ok=True)
            os.symlink(os.path.join(real, rel), os.path.join(linked, rel))
        run_dir = os.path.join(self.tmp, "linked run")
        shutil.copytree(os.path.join(self.tmp, "run plain"), run_dir)
        with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
            run = json.load(f)
        run["sources"][1] = linked
        with open(os.path.join(run_dir, "run.json"), "w", encoding="utf-8") as f:
            json.dump(run, f)
        dest = os.path.join(self.tmp, "linked copies")
        run_cli("export", run_dir, "--format", "folders", "--copy", "--out", dest)
        copies = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files
                  if f != ".agriclip-export"]
        self.assertEqual(len(copies), self.n_images)
        for path in copies:
            self.assertFalse(os.path.islink(path), path)
            self.assertIn(sha256(path), self.hashes.values())

    def test_yolo_classification(self):
        dest = self.export("run plain", "yolo")
        self.check_tree(dest, self.plain, self.plain_lines, with_review=False, copies=False)

    # ---- csv ----

    def test_csv(self):
        self.check_csv(self.export("run regions", "csv"), self.regions, self.region_lines)

    def check_csv(self, dest, run, lines):
        labels = [c["label"] for c in run["labels"]]
        displays = [c["display"] for c in run["labels"]]
        with open(os.path.join(dest, "labels.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        want = [(original(run, r), r["image"], str(r["source"]), str(k + 1), l["label"],
                 displays[labels.index(l["label"])], l["p"], str(r["review"]).lower())
                for r in lines for k, l in enumerate(r["labels"])]
        got = [(row["path"], row["image"], row["source"], row["rank"], row["label"],
                row["display"], float(row["p"]), row["review"]) for row in rows]
        self.assertEqual(sorted(got), sorted(want))
        with open(os.path.join(dest, "boxes.csv"), newline="", encoding="utf-8") as f:
            boxes = [(b["path"], b["label"], float(b["p"]), int(b["x"]), int(b["y"]),
                      int(b["width"]), int(b["height"])) for b in csv.DictReader(f)]
        want = [(original(run, r), b["label"], b["p"], b["x"], b["y"], b["width"],
                 b["height"]) for r in lines for b in r["boxes"]]
        self.assertEqual(sorted(boxes), sorted(want))
        for path, *_ in boxes:
            self.assertTrue(os.path.isfile(path), path)

    # ---- coco ----

    def check_coco(self, doc, run, lines, regions):
        images = {im["id"]: im for im in doc["images"]}
        categories = {c["id"]: c["name"] for c in doc["categories"]}
        self.assertEqual(len(images), len(doc["images"]), "image ids unique")
        self.assertEqual([categories[i + 1] for i in range(len(categories))],
                         [c["label"] for c in run["labels"]])
        self.assertEqual(len(categories), len(doc["categories"]), "category ids unique")
        ids = [a["id"] for a in doc["annotations"]]
        self.assertEqual(len(ids), len(set(ids)), "annotation ids unique")
        by_path = {original(run, r): r for r in lines}
        self.assertEqual(sorted(im["file_name"] for im in images.values()), sorted(by_path))
        got = []
        for a in doc["annotations"]:
            im = images[a["image_id"]]
            x, y, w, h = a["bbox"]
            self.assertTrue(0 <= x and 0 <= y and w > 0 and h > 0, a)
            self.assertLessEqual(x + w, im["width"])
            self.assertLessEqual(y + h, im["height"])
            self.assertEqual(a["area"], w * h)
            self.assertEqual(a["iscrowd"], 0)
            got.append((im["file_name"], categories[a["category_id"]], a["score"], x, y, w, h))
        for im in images.values():
            r = by_path[im["file_name"]]
            self.assertEqual((im["width"], im["height"]), (r["width"], r["height"]))
            self.assertEqual(im["agriclip_review"], r["review"])
            self.assertEqual([(categories[l["category_id"]], l["score"])
                              for l in im["agriclip_labels"]],
                             [(l["label"], l["p"]) for l in r["labels"]])
        if regions:
            want = [(original(run, r), b["label"], b["p"], b["x"], b["y"], b["width"],
                     b["height"]) for r in lines for b in r["boxes"]]
        else:
            want = [(original(run, r), r["labels"][0]["label"], r["labels"][0]["p"], 0, 0,
                     r["width"], r["height"]) for r in lines]
        self.assertEqual(sorted(got), sorted(want))

    def load_with_pycocotools(self, path):
        try:
            from pycocotools.coco import COCO
        except ImportError:
            return
        coco = COCO(path)
        self.assertEqual(len(coco.getImgIds()), self.n_images)

    def test_coco_regions(self):
        dest = self.export("run regions", "coco")
        path = os.path.join(dest, "annotations.json")
        with open(path, encoding="utf-8") as f:
            self.check_coco(json.load(f), self.regions, self.region_lines, regions=True)
        self.load_with_pycocotools(path)

    def test_coco_whole_images(self):
        dest = self.export("run plain", "coco")
        with open(os.path.join(dest, "annotations.json"), encoding="utf-8") as f:
            self.check_coco(json.load(f), self.plain, self.plain_lines, regions=False)

    # ---- yolo detection ----

    def test_yolo_detection(self):
        self.check_yolo_detection(self.export("run regions", "yolo"), self.regions,
                                  self.region_lines)

    def check_yolo_detection(self, dest, run, lines):
        labels = [c["label"] for c in run["labels"]]
        with open(os.path.join(dest, "data.yaml"), encoding="utf-8") as f:
            data = yaml.safe_load(f)
        self.assertEqual(data["names"], dict(enumerate(labels)))
        self.assertEqual(data["nc"], len(labels))
        self.assertEqual(os.path.realpath(data["path"]), os.path.realpath(dest))
        images = os.path.join(dest, data["train"])
        names = sorted(os.listdir(images))
        self.assertEqual(len(names), len(lines))
        by_path = {original(run, r): r for r in lines}
        for name in names:
            target = os.readlink(os.path.join(images, name))
            r = by_path.pop(target)
            label_file = os.path.join(dest, "labels", os.path.splitext(name)[0] + ".txt")
            with open(label_file, encoding="utf-8") as f:
                label_lines = f.read().splitlines()
            got = []
            for line in label_lines:
                fields = line.split(" ")
                self.assertEqual(len(fields), 5, line)
                c = int(fields[0])
                cx, cy, w, h = map(float, fields[1:])
                for v in (cx, cy, w, h):
                    self.assertTrue(0.0 <= v <= 1.0, line)
                x = (cx - w / 2) * r["width"]
                y = (cy - h / 2) * r["height"]
                got.append((labels[c], round(x), round(y), round(w * r["width"]),
                            round(h * r["height"])))
            want = [(b["label"], b["x"], b["y"], b["width"], b["height"]) for b in r["boxes"]]
            self.assertEqual(got, want)
        self.assertEqual(by_path, {})
        self.assertEqual(len(os.listdir(os.path.join(dest, "labels"))), len(lines))

    # ---- label studio ----

    def test_label_studio(self):
        self.check_label_studio(self.export("run regions", "label-studio"), self.regions,
                                self.region_lines)

    def check_label_studio(self, dest, run, lines):
        config = ET.parse(os.path.join(dest, "labeling-config.xml")).getroot()
        self.assertEqual(config.tag, "View")
        controls = {el.get("name"): el for el in config if el.tag != "Image"}
        image_names = {el.get("name") for el in config if el.tag == "Image"}
        self.assertEqual(len(image_names), 1)
        value_var = next(el.get("value") for el in config if el.tag == "Image")
        self.assertTrue(value_var.startswith("$"))
        kinds = {"Choices": ("choices", "Choice"), "RectangleLabels": ("rectanglelabels", "Label")}
        allowed = {name: (kinds[el.tag][0], [c.get("value") for c in el.findall(kinds[el.tag][1])])
                   for name, el in controls.items()}
        for name, (_, values) in allowed.items():
            self.assertEqual(values, [c["label"] for c in run["labels"]])
            self.assertIn(controls[name].get("toName"), image_names)
        with open(os.path.join(dest, "tasks.json"), encoding="utf-8") as f:
            tasks = json.load(f)
        self.assertIsInstance(tasks, list)
        by_path = {original(run, r): r for r in lines}
        for task in tasks:
            self.assertEqual(set(task), {"data", "predictions"})
            url = task["data"][value_var[1:]]
            prefix = "/data/local-files/?d="
            self.assertTrue(url.startswith(prefix), url)
            path = "/" + urllib.parse.unquote(url[len(prefix):])
            self.assertEqual(path, task["data"]["path"])
            r = by_path.pop(path)
            self.assertEqual(len(task["predictions"]), 1)
            prediction = task["predictions"][0]
            self.assertIsInstance(prediction["result"], list)
            self.assertIsInstance(prediction["score"], float)
            self.assertIsInstance(prediction["model_version"], str)
            ids = [res["id"] for res in prediction["result"]]
            self.assertEqual(len(ids), len(set(ids)))
            choices, boxes = [], []
            for res in prediction["result"]:
                kind, values = allowed[res["from_name"]]
                self.assertEqual(res["type"], kind)
                self.assertIn(res["to_name"], image_names)
                value = res["value"]
                self.assertTrue(set(value[kind]) <= set(values))
                if kind == "choices":
                    choices += value["choices"]
                    continue
                self.assertEqual((res["original_width"], res["original_height"]),
                                 (r["width"], r["height"]))
                for key in ("x", "y", "width", "height"):
                    self.assertTrue(0 <= value[key] <= 100, value)
                self.assertLessEqual(value["x"] + value["width"], 100 + 1e-3)
                self.assertLessEqual(value["y"] + value["height"], 100 + 1e-3)
                boxes.append((value["rectanglelabels"][0],
                               round(value["x"] * r["width"] / 100),
                               round(value["y"] * r["height"] / 100),
                               round(value["width"] * r["width"] / 100),
                               round(value["height"] * r["height"] / 100), res["score"]))
            self.assertEqual(choices, [r["labels"][0]["label"]])
            self.assertEqual(boxes, [(b["label"], b["x"], b["y"], b["width"], b["height"], b["p"])
                                     for b in r["boxes"]])
        self.assertEqual(by_path, {})

    # ---- xmp ----

    def read_xmp(self, sidecar):
        proc = subprocess.run([EXIFTOOL, "-json", "-G1", "-struct", "-XMP:all", sidecar],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)[0]

    @unittest.skipUnless(EXIFTOOL, "exiftool (libimage-exiftool-perl) is not installed")
    def test_xmp(self):
        images = os.path.join(self.tmp, "xmp images")
        shutil.copytree(self.images, images)
        run_dir = os.path.join(self.tmp, "run xmp")
        run, lines = make_run(run_dir, images, self.model, regions=False)
        # a sidecar written first by exiftool: its tags must stay
        kept = original(run, lines[0]) + ".xmp"
        subprocess.run([EXIFTOOL, "-q", "-o", kept, "-XMP-dc:Subject=kept one",
                        "-XMP-dc:Subject=kept, two", "-XMP-dc:Title=A title",
                        "-XMP-xmp:Rating=4"], check=True, timeout=60)
        sidecars = [original(run, r) + ".xmp" for r in lines]
        for attempt in range(3):  # later exports merge into the first's sidecars
            dest = os.path.join(self.tmp, "xmp out")
            run_cli("export", run_dir, "--format", "xmp", "--out", dest)
            if attempt == 2:  # and do not pile up: the same files as the second
                self.assertEqual([sha256(p) for p in sidecars], second)
            second = [sha256(p) for p in sidecars]
            with open(os.path.join(dest, "sidecars.json"), encoding="utf-8") as f:
                listed = json.load(f)
            self.assertEqual(sorted(listed), sorted(original(run, r) + ".xmp" for r in lines))
            for r in lines:
                tags = self.read_xmp(original(run, r) + ".xmp")
                subject = as_list(tags["XMP-dc:Subject"])
                top = r["labels"][0]["label"]
                labels = as_list(tags["XMP-agriclip:Labels"])
                self.assertEqual(labels, [l["label"] for l in r["labels"]])
                probs = as_list(tags["XMP-agriclip:Probabilities"])
                self.assertEqual([float(p) for p in probs], [l["p"] for l in r["labels"]])
                self.assertEqual(str(tags["XMP-agriclip:Review"]).lower(), str(r["review"]).lower())
                self.assertEqual(tags["XMP-agriclip:Model"], "twin-test-model")
                if r is lines[0]:
                    self.assertEqual(subject, ["kept one", "kept, two", top])
                    self.assertEqual(tags["XMP-dc:Title"], "A title")
                    self.assertEqual(tags["XMP-xmp:Rating"], 4)
                else:
                    self.assertEqual(subject, [top])

    @unittest.skipUnless(EXIFTOOL, "exiftool (libimage-exiftool-perl) is not installed")
    def test_problems_reported_and_skipped(self):
        """A missing original (--copy) and a sidecar that is not XMP: each
        reported by name and left out, the rest exported, exit status 1."""
        images = os.path.join(self.tmp, "problem images")
        shutil.copytree(self.images, images)
        run_dir = os.path.join(self.tmp, "run problems")
        run, lines = make_run(run_dir, images, self.model, regions=False)
        gone = original(run, lines[1])
        os.remove(gone)
        broken = original(run, lines[2]) + ".xmp"
        with open(broken, "w", encoding="utf-8") as f:
            f.write("<not xmp")
        dest = os.path.join(self.tmp, "problem copies")
        proc = run_cli("export", run_dir, "--format", "folders", "--copy", "--out", dest,
                       check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(gone.replace("\n", " "), proc.stderr)  # one line per message
        copied = [f for _, _, files in os.walk(dest) for f in files if f != ".agriclip-export"]
        self.assertEqual(len(copied), len(lines) - 1)
        proc = run_cli("export", run_dir, "--format", "xmp", "--out",
                       os.path.join(self.tmp, "problem xmp"), check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(broken.replace("\n", " "), proc.stderr)
        self.assertIn(gone.replace("\n", " "), proc.stderr)
        with open(broken, encoding="utf-8") as f:
            self.assertEqual(f.read(), "<not xmp")
        self.assertFalse(os.path.exists(gone + ".xmp"), "no sidecar for a missing image")
        for r in lines[3:]:
            self.assertIn("XMP-agriclip:Labels", self.read_xmp(original(run, r) + ".xmp"))

    # ---- end to end: a run made by `agriclip tag` ----

    def test_tag_then_export(self):
        images = os.path.join(self.tmp, "tagged images")
        shutil.copytree(self.images, images)
        labels = os.path.join(self.tmp, "labels, tagged.json")
        with open(labels, "w", encoding="utf-8") as f:
            json.dump({"id": "export-test", "title": "export test",
                       "templates": ["a photo of {}."],
                       "classes": [{"name": l, "display": d} for l, d in zip(LABELS, DISPLAYS)]},
                      f)
        sharp = os.path.join(self.tmp, "sharp model")  # CLIP's temperature: tiles make boxes
        clip_twin.make_model(sharp, seed=22, image_size=32)
        run_dir = os.path.join(self.tmp, "tagged run")
        sources = [os.path.join(images, s) for s in IMAGES]
        run_cli("tag", "--model", sharp, "--labels", labels, "--recursive", "--top", "3",
                "--review-below", "0.9", "--regions", "16/8", "--out", run_dir, *sources)
        with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
            run = json.load(f)
        with open(os.path.join(run_dir, "results.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), self.n_images)
        self.assertGreater(sum(len(r["boxes"]) for r in lines), 0, "no boxes to export")

        def export(fmt):
            dest = os.path.join(self.tmp, f"tagged {fmt}")
            run_cli("export", run_dir, "--format", fmt, "--out", dest)
            return dest

        self.check_tree(export("folders"), run, lines, with_review=True, copies=False)
        self.check_csv(export("csv"), run, lines)
        with open(os.path.join(export("coco"), "annotations.json"), encoding="utf-8") as f:
            self.check_coco(json.load(f), run, lines, regions=True)
        self.check_yolo_detection(export("yolo"), run, lines)
        self.check_label_studio(export("label-studio"), run, lines)
        if EXIFTOOL:
            export("xmp")
            for r in lines:
                tags = self.read_xmp(original(run, r) + ".xmp")
                self.assertEqual(as_list(tags["XMP-dc:Subject"]), [r["labels"][0]["label"]])
                self.assertEqual(as_list(tags["XMP-agriclip:Labels"]),
                                 [l["label"] for l in r["labels"]])

    # ---- what is refused ----

    def test_refuses_other_destinations(self):
        other = os.path.join(self.tmp, "not an export")
        os.makedirs(other)
        with open(os.path.join(other, "precious.txt"), "w") as f:
            f.write("mine")
        proc = run_cli("export", os.path.join(self.tmp, "run plain"), "--format", "csv",
                       "--out", other, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(other, proc.stderr)
        self.assertEqual(os.listdir(other), ["precious.txt"])
        # an export of another format is not replaced either; one of the same is
        coco = self.export("run plain", "coco")
        proc = run_cli("export", os.path.join(self.tmp, "run plain"), "--format", "csv",
                       "--out", coco, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertTrue(os.path.isfile(os.path.join(coco, "annotations.json")))
        self.export("run regions", "coco", dest=coco)
        with open(os.path.join(coco, "annotations.json"), encoding="utf-8") as f:
            self.check_coco(json.load(f), self.regions, self.region_lines, regions=True)
        self.assertEqual([n for n in os.listdir(self.tmp) if ".export-" in n], [])
        # an empty folder (made beforehand) is as good as none
        empty = os.path.join(self.tmp, "empty beforehand")
        os.makedirs(empty)
        run_cli("export", os.path.join(self.tmp, "run plain"), "--format", "csv", "--out", empty)
        self.assertTrue(os.path.isfile(os.path.join(empty, "labels.csv")))

    def test_label_folders_clash_refused(self):
        clash = os.path.join(self.tmp, "clash run")
        shutil.copytree(os.path.join(self.tmp, "run plain"), clash)
        with open(os.path.join(clash, "run.json"), encoding="utf-8") as f:
            run = json.load(f)
        run["labels"] += [{"label": "x/y", "display": "X"}, {"label": "x_y", "display": "Y"}]
        with open(os.path.join(clash, "run.json"), "w", encoding="utf-8") as f:
            json.dump(run, f)
        for fmt in ("folders", "yolo"):
            dest = os.path.join(self.tmp, f"clash {fmt}")
            proc = run_cli("export", clash, "--format", fmt, "--out", dest, check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn('"x_y"', proc.stderr)
            self.assertFalse(os.path.exists(dest))
        run_cli("export", clash, "--format", "csv", "--out", os.path.join(self.tmp, "clash csv"))

    def test_bad_run_files_named(self):
        bad = os.path.join(self.tmp, "bad run")
        shutil.copytree(os.path.join(self.tmp, "run plain"), bad)
        dest = os.path.join(self.tmp, "bad out")
        results = os.path.join(bad, "results.jsonl")
        with open(results, "a", encoding="utf-8") as f:
            f.write('{"image": "x.png", "source": 7}\n')
        proc = run_cli("export", bad, "--format", "csv", "--out", dest, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("results.jsonl", proc.stderr)
        os.remove(results)
        proc = run_cli("export", bad, "--format", "csv", "--out", dest, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("results.jsonl", proc.stderr)
        with open(os.path.join(bad, "run.json"), "w") as f:
            f.write("{not json")
        proc = run_cli("export", bad, "--format", "csv", "--out", dest, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("run.json", proc.stderr)
        self.assertFalse(os.path.exists(dest))
        proc = run_cli("export", bad, "--format", "pdf", "--out", dest, check=False)
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main()
