"""fixture.py DIR — what tests/packaging/run.sh checks the installed packages
with: DIR/model, a small random CLIP model (tests/reference/clip_twin.py,
PyTorch), and DIR/leaf.png, a photo-sized RGB picture."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import clip_twin  # noqa: E402
from PIL import Image  # noqa: E402

out = sys.argv[1]
clip_twin.make_model(os.path.join(out, "model"), seed=11)
image = Image.new("RGB", (96, 72))
image.putdata([(40 + x, 90 + (x * y) % 120, 30 + 2 * y) for y in range(72) for x in range(96)])
image.save(os.path.join(out, "leaf.png"))
