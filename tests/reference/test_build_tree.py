"""An uninstalled build works as an installed one: build/cli/agriclip finds
the source tree's label sets and catalogue (models/) with no environment
variables, after the user's own data and before the system's; an installed
copy of the same build never looks at the source tree."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from PIL import Image

import clip_twin

AGRICLIP = os.environ.get("AGRICLIP")
BUILD = os.environ.get("AGC_BUILD_DIR")
SOURCE = os.environ.get("AGC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTVILLAGE = os.path.join(SOURCE, "models", "labels", "plantvillage.json")
CATALOGUE = os.path.join(SOURCE, "models", "catalogue.json")


def clean_env(tmp, **extra):
    """A user with nothing installed: empty data folders, no agriclip variables.
    The system data folder holds only the MIME database (image decoding)."""
    system = os.path.join(tmp, "system-data")
    if not os.path.exists(system):
        os.makedirs(system)
        os.symlink("/usr/share/mime", os.path.join(system, "mime"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGRICLIP_") and not k.startswith("XDG_")}
    env.update(HOME=os.path.join(tmp, "home"), XDG_DATA_HOME=os.path.join(tmp, "home", "data"),
               XDG_CACHE_HOME=os.path.join(tmp, "home", "cache"),
               XDG_DATA_DIRS=system, LC_ALL="C")
    env.update(extra)
    return env


def run(cmd, env):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def class_names(path):
    with open(path, encoding="utf-8") as f:
        return [c["name"] for c in json.load(f)["classes"]]


@unittest.skipUnless(AGRICLIP and BUILD, "AGRICLIP and AGC_BUILD_DIR are not set")
class BuildTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-build-tree-")
        cls.model = os.path.join(cls.tmp, "model")
        clip_twin.make_model(cls.model, seed=5)
        cls.image = os.path.join(cls.tmp, "leaf.png")
        Image.new("RGB", (40, 30), (60, 140, 40)).save(cls.image)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def classify(self, agriclip, env, labels="plantvillage"):
        n = len(class_names(PLANTVILLAGE))
        p = run([agriclip, "classify", "--model", self.model, "--labels", labels,
                 "--top", str(n), "--format", "jsonl", self.image], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [entry["label"] for entry in json.loads(p.stdout)["labels"]]

    def test_label_set_by_id(self):
        labels = self.classify(AGRICLIP, clean_env(self.tmp))
        self.assertEqual(sorted(labels), sorted(class_names(PLANTVILLAGE)))

    def test_models_list(self):
        p = run([AGRICLIP, "models", "list"], clean_env(self.tmp))
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = [line.split()[0] for line in p.stdout.splitlines()[1:] if line.strip()]
        with open(CATALOGUE, encoding="utf-8") as f:
            self.assertEqual(listed, [m["name"] for m in json.load(f)["models"]])

    def test_user_data_first(self):
        env = clean_env(self.tmp, XDG_DATA_HOME=os.path.join(self.tmp, "user-data"))
        folder = os.path.join(env["XDG_DATA_HOME"], "agriclip", "labels")
        os.makedirs(folder, exist_ok=True)
        mine = {"id": "plantvillage", "title": "mine", "templates": ["a photo of {}."],
                "classes": [{"name": "mine_a", "display": "A", "text": "a red leaf"},
                            {"name": "mine_b", "display": "B", "text": "a blue leaf"}]}
        with open(os.path.join(folder, "plantvillage.json"), "w") as f:
            json.dump(mine, f)
        self.assertEqual(sorted(self.classify(AGRICLIP, env)), ["mine_a", "mine_b"])

    def test_installed_copy_ignores_source_tree(self):
        stage = os.path.join(self.tmp, "stage")
        p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", stage, "--no-rebuild",
                            "--quiet"], capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        programs = [os.path.join(d, f) for d, _, files in os.walk(stage) for f in files
                    if f == "agriclip" and os.path.basename(d) == "bin"]
        self.assertEqual(len(programs), 1, programs)
        libs = {d for d, _, files in os.walk(stage) for f in files if f == "libagriclip.so.0"}
        self.assertEqual(len(libs), 1, libs)
        shares = [d for d, dirs, _ in os.walk(stage) if "agriclip" in dirs
                  and os.path.basename(d) == "share"]
        self.assertEqual(len(shares), 1, shares)
        env = clean_env(self.tmp, LD_LIBRARY_PATH=libs.pop())
        p = run([programs[0], "models", "list"], env)
        prefix_data = os.path.join(os.path.relpath(shares[0], stage), "agriclip")
        if os.path.exists(os.path.join("/", prefix_data, "catalogue.json")):
            self.skipTest(f"agriclip is installed in /{prefix_data}")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("no model catalogue found", p.stderr)
        self.assertNotIn(os.path.realpath(SOURCE), p.stderr)
        # the staged data, as system data, is found
        env["XDG_DATA_DIRS"] += os.pathsep + shares[0]
        labels = self.classify(programs[0], env)
        self.assertEqual(sorted(labels), sorted(class_names(PLANTVILLAGE)))


if __name__ == "__main__":
    unittest.main()
