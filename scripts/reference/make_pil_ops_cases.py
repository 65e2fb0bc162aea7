#!/usr/bin/env python3
"""Writes Pillow's answers for sdrepl's ImageFilter and Image.blend/composite tests into
tests/fixtures/pil_ops/.

The inputs are the committed PIL sources (tests/fixtures/pil/src_{l,rgb,rgba}.npy, 37x23,
made by make_pil_fixtures.py). ImageFilter.GaussianBlur and BoxBlur (diffusers'
mask_processor.blur is a GaussianBlur) run with radii that reach every branch of Pillow's box
blur: under one pixel, fractional, a different radius per axis, zero on one axis, wider than
the picture. Image.blend runs with weights inside and outside [0, 1]; Image.composite with
an L and an RGBA mask; Image.alpha_composite on two RGBA pictures. Each output is saved as
.npy (uint8); manifest.json lists the cases.

    .venv-torch/bin/python scripts/reference/make_pil_ops_cases.py   (Pillow 13.0.0)
"""
import json
import os

import numpy as np
import PIL
from PIL import Image, ImageFilter

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
SRC = os.path.join(ROOT, "pil")
OUT = os.path.join(ROOT, "pil_ops")

CASES = [("gaussian", 0.5), ("gaussian", 1), ("gaussian", 2.7), ("gaussian", 4), ("gaussian", 33),
         ("gaussian", [1, 3]), ("gaussian", [0, 2]), ("box", 0.5), ("box", 1), ("box", 3.3),
         ("box", [2, 0.4]), ("box", 40)]
# Image.blend's weights: the ends (copies), between, and outside [0, 1] (clipped)
BLENDS = [0.0, 0.3, 0.5, 0.77, 1.0, -0.4, 1.6]


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    manifest = {"pillow": PIL.__version__, "cases": []}
    for src in ("l", "rgb", "rgba"):
        im = Image.fromarray(np.load(os.path.join(SRC, f"src_{src}.npy")))
        for i, (kind, radius) in enumerate(CASES):
            r = tuple(radius) if isinstance(radius, list) else radius
            f = ImageFilter.GaussianBlur(r) if kind == "gaussian" else ImageFilter.BoxBlur(r)
            name = f"{kind}_{src}_{i}.npy"
            np.save(os.path.join(OUT, name), np.asarray(im.filter(f)))
            manifest["cases"].append({"src": src, "kind": kind, "radius": radius, "file": name})
    src = {k: Image.fromarray(np.load(os.path.join(SRC, f"src_{k}.npy"))) for k in ("l", "rgb", "rgba")}
    flipped = {k: im.transpose(Image.Transpose.ROTATE_180) for k, im in src.items()}
    for k in ("l", "rgb", "rgba"):
        for i, alpha in enumerate(BLENDS):
            name = f"blend_{k}_{i}.npy"
            np.save(os.path.join(OUT, name), np.asarray(Image.blend(src[k], flipped[k], alpha)))
            manifest["cases"].append({"src": k, "kind": "blend", "alpha": alpha, "file": name})
        for m in ("l", "rgba"):
            name = f"composite_{k}_{m}.npy"
            np.save(os.path.join(OUT, name), np.asarray(Image.composite(src[k], flipped[k], src[m])))
            manifest["cases"].append({"src": k, "kind": "composite", "mask": m, "file": name})
    name = "alpha_composite_rgba.npy"
    np.save(os.path.join(OUT, name), np.asarray(Image.alpha_composite(src["rgba"], flipped["rgba"])))
    manifest["cases"].append({"src": "rgba", "kind": "alpha_composite", "file": name})
    with open(os.path.join(OUT, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)


if __name__ == "__main__":
    main()
