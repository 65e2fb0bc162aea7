#!/usr/bin/env python3
"""Writes PIL's answers for sdrepl's image tests into tests/fixtures/pil/.

sdrepl's Image mirrors PIL's arithmetic (convert's luma, resize's filters,
paste's blend), so the tests compare our pixels with what Pillow itself
computes on the same inputs. This script makes a few small deterministic
source images (gradients, hard edges and noise from a fixed numpy seed),
runs Pillow on them, and saves every input and output as .npy (uint8,
shape (H, W) for L or (H, W, C)), plus files written by Pillow in the formats
our decoder reads. manifest.json lists every case.

Run from the repository root, in the reference venv:
    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r scripts/reference/requirements.txt
    .venv-ref/bin/python scripts/reference/make_pil_fixtures.py
The output is committed; tests never need Python.
"""
import io
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image, PngImagePlugin

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "pil")
W, H = 37, 23  # odd, non-square, not a power of two: every rounding path shows

FILTERS = {
    "NEAREST": Image.Resampling.NEAREST,
    "BOX": Image.Resampling.BOX,
    "BILINEAR": Image.Resampling.BILINEAR,
    "HAMMING": Image.Resampling.HAMMING,
    "BICUBIC": Image.Resampling.BICUBIC,
    "LANCZOS": Image.Resampling.LANCZOS,
}
# Up, down (by about 2 and by about 5), mixed, one axis only, 1x1, thin; then
# both sides of the rule by which Pillow picks the order of its two passes
# (vertical first when 2 * (37 - w) < 23 - h): (36, 3) and (30, 8) go vertical
# first, (30, 9) sits on the boundary and goes horizontal first.
SIZES = [(64, 47), (18, 11), (7, 5), (50, 13), (37, 40), (1, 1), (111, 4), (36, 3), (30, 8),
         (30, 9)]


def sources():
    rng = np.random.default_rng(37)
    x = np.linspace(0, 255, W)[None, :]
    y = np.linspace(0, 255, H)[:, None]
    noise = rng.normal(0, 40, (H, W, 4))
    base = np.zeros((H, W, 4))
    base[..., 0] = x + 0 * y
    base[..., 1] = y + 0 * x
    base[..., 2] = 255 - (x + y) / 2
    base[..., 3] = (x * 0.7 + y * 0.6) % 300 - 20  # runs through 0 and 255: both clip
    rgba = np.clip(base + noise, 0, 255)
    # Hard edges make the filters' negative lobes overshoot, exercising clipping.
    rgba[4:9, 5:12, :3] = 255
    rgba[12:18, 20:30, :3] = 0
    rgba[2:6, 25:33, 3] = 0
    rgba[15:21, 2:9, 3] = 255
    rgba = rgba.round().astype(np.uint8)
    grey = np.clip(y * 0.5 + x * 0.5 + rng.normal(0, 50, (H, W)), 0, 255)
    grey[3:10, 3:10] = 255
    grey[10:20, 25:35] = 0
    return {
        "rgb": Image.fromarray(rgba[..., :3].copy(), "RGB"),
        "rgba": Image.fromarray(rgba, "RGBA"),
        "l": Image.fromarray(grey.round().astype(np.uint8), "L"),
    }


def save_npy(name, im_or_array):
    arr = np.asarray(im_or_array, dtype=np.uint8)
    np.save(os.path.join(OUT, name), np.ascontiguousarray(arr), allow_pickle=False)
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    src = sources()
    manifest = {
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "sources": {k: {"file": save_npy(f"src_{k}.npy", im), "mode": im.mode}
                    for k, im in src.items()},
        "convert": [],
        "resize": [],
        "crop": [],
        "paste": [],
        "decode": [],
    }

    for k, im in src.items():
        for mode in ("L", "RGB", "RGBA"):
            if mode != im.mode:
                name = save_npy(f"convert_{k}_{mode}.npy", im.convert(mode))
                manifest["convert"].append({"src": k, "mode": mode, "file": name})

    for k, im in src.items():
        for fname, f in FILTERS.items():
            for w, h in SIZES:
                name = save_npy(f"resize_{k}_{fname.lower()}_{w}x{h}.npy", im.resize((w, h), f))
                manifest["resize"].append(
                    {"src": k, "filter": int(f), "filter_name": fname, "size": [w, h], "file": name})

    for k, box in (("rgba", (-3, -2, 10, 30)), ("rgb", (30, 20, 40, 25)), ("l", (5, 5, 5, 9))):
        name = save_npy(f"crop_{k}_{len(manifest['crop'])}.npy", src[k].crop(box))
        manifest["crop"].append({"src": k, "box": list(box), "file": name})

    # paste(dst, src.crop(box), position, mask.crop(box)): mode conversion, clipping, both masks.
    pastes = [
        ("rgb", "l", None, (3, 2, 20, 15), (30, -4)),
        ("rgb", "rgba", "l", (0, 0, 17, 13), (-5, 10)),
        ("rgba", "rgb", "rgba", (10, 4, 30, 20), (5, 5)),
        ("l", "rgba", "rgba", (2, 2, 12, 22), (10, 3)),
        ("rgb", "rgba", None, (1, 1, 9, 9), (0, 0)),
        ("rgba", "rgba", "rgba", (0, 0, 37, 23), (4, -3)),
        ("rgba", "l", "l", (20, 0, 37, 10), (-2, 15)),
    ]
    for dst, s, m, box, pos in pastes:
        out = src[dst].copy()
        out.paste(src[s].crop(box), pos, src[m].crop(box) if m else None)
        name = save_npy(f"paste_{len(manifest['paste'])}.npy", out)
        manifest["paste"].append({"dst": dst, "src": s, "mask": m, "box": list(box),
                                  "at": list(pos), "file": name})

    # paste(color, box, mask): fills, including PIL's special case for an L mask
    # over transparent RGBA pixels (fill_mask_L).
    manifest["paste_color"] = []
    fills = [
        ("rgba", (255, 0, 0, 255), (3, 2, 35, 15), "l"),
        ("rgba", (0, 0, 255, 128), (20, 5, 37, 23), "rgba"),
        ("rgb", (10, 200, 30), (-5, 10, 12, 30), "rgba"),
        ("rgb", (10, 200, 30), (-5, 10, 12, 30), "l"),
        ("l", (77,), (30, -3, 45, 8), None),
        ("rgba", (1, 2, 3, 4), (30, 20, 50, 40), None),
    ]
    for dst, color, box, m in fills:
        out = src[dst].copy()
        w, h = box[2] - box[0], box[3] - box[1]
        out.paste(color if len(color) > 1 else color[0], box,
                  src[m].crop((0, 0, w, h)) if m else None)
        name = save_npy(f"paste_color_{len(manifest['paste_color'])}.npy", out)
        manifest["paste_color"].append({"dst": dst, "color": list(color), "box": list(box),
                                        "mask": m, "file": name})

    # Files Pillow writes, and the pixels Pillow reads back from them.
    def decode_case(fname, im, fmt, expect_mode, parameters=None, tolerance=0, **kw):
        im.save(os.path.join(OUT, fname), fmt, **kw)
        back = Image.open(os.path.join(OUT, fname))
        back = back.convert(expect_mode) if back.mode != expect_mode else back
        name = save_npy(fname.replace(".", "_") + ".npy", back)
        case = {"file": fname, "mode": expect_mode, "expect": name, "tolerance": tolerance}
        if parameters is not None:
            case["parameters"] = parameters
        manifest["decode"].append(case)

    info = PngImagePlugin.PngInfo()
    text = "a photo of a cat\nSteps: 20, Sampler: PNDM, Seed: 1"
    info.add_text("Software", "make_pil_fixtures")
    info.add_text("parameters", text)
    decode_case("rgb_text.png", src["rgb"], "PNG", "RGB", parameters=text, pnginfo=info)
    info = PngImagePlugin.PngInfo()
    latin = "caf\u00e9 au lait, 30 steps"  # Latin-1 only: PIL writes tEXt
    info.add_text("parameters", latin)
    decode_case("l_latin1.png", src["l"], "PNG", "L", parameters=latin, pnginfo=info)
    info = PngImagePlugin.PngInfo()
    wide = "un chat \u2014 \u732b, 50 steps"  # not Latin-1: PIL writes iTXt
    info.add_text("parameters", wide)
    decode_case("rgba_itxt.png", src["rgba"], "PNG", "RGBA", parameters=wide, pnginfo=info)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text * 20, zip=True)  # zTXt
    decode_case("rgb_ztxt.png", src["rgb"], "PNG", "RGB", parameters=text * 20, pnginfo=info)
    decode_case("la.png", src["rgba"].convert("LA"), "PNG", "RGBA")
    decode_case("p.png", src["rgb"].quantize(16), "PNG", "RGB")
    decode_case("rgb.bmp", src["rgb"], "BMP", "RGB")
    decode_case("rgb.tga", src["rgb"], "TGA", "RGB")
    decode_case("rgb_rle.tga", src["rgb"], "TGA", "RGB", compression="tga_rle")
    decode_case("l.pgm", src["l"], "PPM", "L")
    decode_case("rgb.ppm", src["rgb"], "PPM", "RGB")
    decode_case("p.gif", src["rgb"].quantize(32), "GIF", "RGB")
    # sdrepl decodes JPEG with libjpeg-turbo, as Pillow does: the same bytes.
    decode_case("rgb.jpg", src["rgb"], "JPEG", "RGB")
    decode_case("l.jpg", src["l"], "JPEG", "L")

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
