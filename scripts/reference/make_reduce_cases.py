#!/usr/bin/env python3
"""Writes Pillow's answers for sdrepl's Image.reduce, resize(reducing_gap=...) and
Image.thumbnail into tests/fixtures/pil_reduce/.

The source is a seeded 157x101 picture (smooth gradients with noise, and an alpha band that
goes to 0 in places, for the premultiplied path), in L, RGB and RGBA, saved as .npy.
Image.reduce runs every factor Pillow has its own code for (1x2 ... 5x5, Nx1, 1xN) and
general ones, whole and with a box, so the edge blocks hold partial counts. resize with a
reducing_gap runs each filter at sizes that reduce along one axis, both or neither, with and
without a box (the box moves into the reduced picture, float32 in Pillow's C call). thumbnail
runs sizes wider and taller than the aspect, fractional ones, one the picture already fits,
and without a reducing_gap. Each output is a uint8 .npy; manifest.json lists the cases.

    .venv-ref/bin/python scripts/reference/make_reduce_cases.py   (Pillow 13.0.0)
"""
import json
import os

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "pil_reduce")

REDUCE = [((2, 1), None), ((1, 2), None), ((2, 2), None), ((3, 1), None), ((1, 3), None),
          ((3, 3), None), ((4, 4), None), ((5, 5), None), ((6, 6), None), ((4, 1), None),
          ((1, 5), None), ((2, 3), None), ((7, 4), None), ((1, 1), (3, 2, 30, 20)),
          ((3, 2), (3, 2, 30, 20)), ((4, 4), (10, 7, 157, 101)), ((9, 9), None)]
FILTERS = {"nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX,
           "bilinear": Image.Resampling.BILINEAR, "hamming": Image.Resampling.HAMMING,
           "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
GAPS = [((40, 25), "bicubic", 2.0, None), ((20, 13), "lanczos", 2.0, None),
        ((7, 5), "bilinear", 3.0, None), ((150, 30), "bicubic", 2.0, None),
        ((30, 90), "hamming", 1.0, None), ((64, 64), "box", 2.0, None),
        ((19, 11), "bicubic", 1.5, (5.5, 3.25, 140.0, 99.5)),
        ((12, 40), "lanczos", 2.0, (0.0, 0.0, 100.0, 101.0)),
        ((25, 25), "nearest", 2.0, None)]
THUMBS = [((64, 64), "bicubic", 2.0), ((50, 200), "bicubic", 2.0), ((200, 50), "lanczos", 2.0),
          ((33.7, 80.2), "bicubic", 2.0), ((300, 300), "bicubic", 2.0),
          ((90, 90), "bicubic", None), ((16, 16), "nearest", 2.0), ((100, 65), "bilinear", 3.0)]


def source():
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:101, 0:157].astype(np.float64)
    rgb = np.stack([x * 1.6, y * 2.5, (x + y) * 0.99], -1) + rng.integers(0, 40, (101, 157, 3))
    alpha = np.clip(255 * np.sin(x / 17.0) * np.cos(y / 13.0) + 60, 0, 255)
    rgba = np.concatenate([np.clip(rgb, 0, 255), alpha[..., None]], -1).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rgba = source()
    srcs = {"l": rgba.convert("L"), "rgb": rgba.convert("RGB"), "rgba": rgba}
    manifest = {"pillow": PIL.__version__, "reduce": [], "resize": [], "thumbnail": []}
    for k, im in srcs.items():
        np.save(os.path.join(OUT, f"src_{k}.npy"), np.asarray(im))
        for i, (factor, box) in enumerate(REDUCE):
            name = f"reduce_{k}_{i}.npy"
            np.save(os.path.join(OUT, name), np.asarray(im.reduce(factor, box)))
            manifest["reduce"].append({"src": k, "factor": list(factor),
                                       "box": list(box) if box else None, "file": name})
        for i, (size, flt, gap, box) in enumerate(GAPS):
            name = f"resize_{k}_{i}.npy"
            np.save(os.path.join(OUT, name),
                    np.asarray(im.resize(size, FILTERS[flt], box=box, reducing_gap=gap)))
            manifest["resize"].append({"src": k, "size": list(size), "filter": flt,
                                       "resample": int(FILTERS[flt]), "reducing_gap": gap,
                                       "box": list(box) if box else None, "file": name})
        for i, (size, flt, gap) in enumerate(THUMBS):
            name = f"thumbnail_{k}_{i}.npy"
            t = im.copy()
            t.thumbnail(size, FILTERS[flt], reducing_gap=gap)
            np.save(os.path.join(OUT, name), np.asarray(t))
            manifest["thumbnail"].append({"src": k, "size": list(size), "filter": flt,
                                          "resample": int(FILTERS[flt]), "reducing_gap": gap,
                                          "file": name, "result": list(t.size)})
    with open(os.path.join(OUT, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)
    print(len(manifest["reduce"]), len(manifest["resize"]), len(manifest["thumbnail"]))


if __name__ == "__main__":
    main()
