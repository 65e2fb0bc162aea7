"""diffusers.utils.load_image (diffusers 0.27.2, Pillow 13) on pictures with an EXIF
orientation, for tests/lua/test_load_image.lua: ImageOps.exif_transpose turns them upright,
then convert("RGB").

  - o1.png ... o8.png: a 5x3 RGB picture of distinct pixels with each EXIF orientation in a
    PNG eXIf chunk (o1: the tag set to 1; plain.png: no EXIF at all), and an L one (o6_l.png);
  - o6.jpg: a 40x24 JPEG (quality 95) with orientation 6, as phones write them;
  - <name>.npy: np.array(load_image(path)) of each.

    .venv-torch/bin/python scripts/reference/make_load_image_cases.py

Writes tests/fixtures/exif/. Deterministic.
"""
import os

import numpy as np
from PIL import Image

from diffusers.utils import load_image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "exif")


def exif(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


def main():
    os.makedirs(OUT, exist_ok=True)
    v = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(3, 5, 3) * 5
    small = Image.fromarray(v, "RGB")
    small.save(os.path.join(OUT, "plain.png"))
    for o in range(1, 9):
        small.save(os.path.join(OUT, "o%d.png" % o), exif=exif(o))
    small.convert("L").save(os.path.join(OUT, "o6_l.png"), exif=exif(6))
    y, x = np.mgrid[0:24, 0:40]
    grad = np.stack([x * 6, y * 10, 255 - x * 3], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(grad, "RGB").save(os.path.join(OUT, "o6.jpg"), quality=95, exif=exif(6))
    names = ["plain.png", "o6_l.png", "o6.jpg"] + ["o%d.png" % o for o in range(1, 9)]
    for name in names:
        arr = np.array(load_image(os.path.join(OUT, name)))
        np.save(os.path.join(OUT, name.replace(".", "_") + ".npy"), arr)
        print(name, arr.shape)


if __name__ == "__main__":
    main()
