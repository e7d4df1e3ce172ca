"""Writes the demonstration inputs of tools/demo.sh into WORK_DIR:
random-clip/ (a small CLIP with random weights, Hugging Face layout) and
photos/ (a few drawn leaf pictures).  Usage: make-demo-model.py WORK_DIR SHARED_DIR"""
import os
import sys

from PIL import Image, ImageDraw

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import clip_twin  # noqa: E402


def draw_leaf(path, leaf, spots, background):
    image = Image.new("RGB", (320, 240), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 50, 260, 190), fill=leaf)
    for x, y in ((110, 90), (170, 120), (200, 80), (140, 150)):
        draw.ellipse((x, y, x + 18, y + 14), fill=spots)
    image.save(path)


def main():
    work, shared = sys.argv[1], sys.argv[2]
    model_dir = os.path.join(work, "random-clip")
    if not os.path.exists(os.path.join(model_dir, "model.safetensors")):
        clip_twin.make_model(model_dir, vocab_dir=os.path.join(shared, "clip-vocab"),
                             image_size=64, patch_size=16, seed=1)
    photos = os.path.join(work, "photos")
    os.makedirs(photos, exist_ok=True)
    draw_leaf(os.path.join(photos, "healthy-leaf.png"), (40, 150, 50), (40, 150, 50), (200, 190, 160))
    draw_leaf(os.path.join(photos, "rusty-leaf.png"), (60, 140, 40), (170, 90, 30), (210, 200, 170))
    draw_leaf(os.path.join(photos, "blighted-leaf.jpg"), (90, 120, 40), (50, 40, 30), (180, 170, 150))


if __name__ == "__main__":
    main()
