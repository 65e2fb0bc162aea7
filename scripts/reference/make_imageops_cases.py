#!/usr/bin/env python3
"""Writes Pillow's ImageOps.fit, contain, cover, pad and expand for sdrepl's tests into
tests/fixtures/pil_imageops/ (tests/lua/test_image_ops.lua runs the same CASES, in order).

The sources are tests/fixtures/pil_reduce/src_{l,rgb,rgba}.npy (157x101, from
make_reduce_cases.py). Sizes wider and taller than the picture's aspect, its own aspect, bleed
and centering at the corners and between, colors per mode. Each output is a uint8 .npy.

    .venv-ref/bin/python scripts/reference/make_imageops_cases.py   (Pillow 13.0.0)
"""
import os

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
OUT = os.path.join(ROOT, "pil_imageops")
COLOR = {"l": 200, "rgb": (255, 0, 0), "rgba": (255, 0, 0, 128)}
LANCZOS = Image.Resampling.LANCZOS

# (function, size or border, keyword arguments); "color" stands for the mode's COLOR
CASES = [
    ("fit", (64, 64), {}),
    ("fit", (50, 80), {"method": LANCZOS}),
    ("fit", (64, 64), {"bleed": 0.1, "centering": (0.0, 1.0)}),
    ("fit", (200, 50), {"centering": (0.3, 0.7)}),
    ("fit", (157, 101), {}),
    ("fit", (30, 19), {"bleed": 0.25}),
    ("contain", (64, 64), {}),
    ("contain", (80, 30), {"method": LANCZOS}),
    ("contain", (1000, 50), {}),
    ("cover", (64, 64), {}),
    ("cover", (80, 30), {}),
    ("pad", (64, 64), {}),
    ("pad", (64, 64), {"color": "color", "centering": (0.0, 0.0)}),
    ("pad", (40, 90), {"color": "color", "centering": (1.0, 1.0)}),
    ("pad", (90, 40), {"centering": (0.3, 0.5)}),
    ("expand", 5, {}),
    ("expand", (3, 7), {"fill": "color"}),
    ("expand", (1, 2, 3, 4), {"fill": "color"}),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    for k in ("l", "rgb", "rgba"):
        im = Image.fromarray(np.load(os.path.join(ROOT, "pil_reduce", f"src_{k}.npy")))
        for i, (fn, arg, kw) in enumerate(CASES):
            kw = {n: (COLOR[k] if v == "color" else v) for n, v in kw.items()}
            out = getattr(ImageOps, fn)(im, arg, **kw)
            np.save(os.path.join(OUT, f"{fn}_{k}_{i}.npy"), np.asarray(out))
    print(len(CASES) * 3, "cases")


if __name__ == "__main__":
    main()
