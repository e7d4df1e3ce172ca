"""What the experiment scripts share: the photos of a folder (sub-folders
included, in a fixed order) and tests/reference on the import path for
clip_twin (safetensors without the safetensors package)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "reference"))


def photos(folder):
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                yield os.path.join(root, name)
