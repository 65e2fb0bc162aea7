#!/usr/bin/env python3
"""Writes WebP files with Pillow's reading of each into tests/fixtures/webp/.

Pillow opens WebP through libwebp's animation decoder (the first frame on a transparent
canvas), as RGB when the file has no alpha and RGBA when it has; sdrepl must give the same
bytes. Lossy and lossless, with and without alpha, an odd size, and an animation (its first
frame), and one with an EXIF orientation. manifest.json lists each file with its mode, its
orientation and the .npy of Pillow's pixels.

    .venv-ref/bin/python scripts/reference/make_webp_cases.py   (Pillow 13.0.0, libwebp 1.6)
"""
import io
import json
import os

import numpy as np
import PIL
from PIL import Image, features

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "webp")


def picture(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rgb = np.stack([x * 255 / w, y * 255 / h, 255 - x * y * 255 / (w * h)], -1)
    rgb = rgb + rng.integers(0, 25, (h, w, 3))
    alpha = np.clip(300 * np.sin(x / 7.0) * np.cos(y / 5.0) + 128, 0, 255)
    return np.concatenate([np.clip(rgb, 0, 255), alpha[..., None]], -1).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rgba = Image.fromarray(picture(48, 32, 1), "RGBA")
    rgb = rgba.convert("RGB")
    odd = Image.fromarray(picture(37, 23, 2), "RGBA").convert("RGB")
    cases = {}
    for name, im, kw in [("lossy_rgb", rgb, {"quality": 80}),
                         ("lossless_rgb", rgb, {"lossless": True}),
                         ("lossy_rgba", rgba, {"quality": 75}),
                         ("lossless_rgba", rgba, {"lossless": True}),
                         ("lossy_odd", odd, {"quality": 90})]:
        buf = io.BytesIO()
        im.save(buf, "WEBP", **kw)
        cases[name + ".webp"] = buf.getvalue()
    buf = io.BytesIO()
    frames = [rgb, rgb.transpose(Image.Transpose.ROTATE_180)]
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100,
                   quality=80)
    cases["animated.webp"] = buf.getvalue()
    # a phone's photo: EXIF orientation 6 (load_image turns it upright)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    rgb.save(buf, "WEBP", lossless=True, exif=exif.tobytes())
    cases["exif_o6.webp"] = buf.getvalue()
    manifest = {"pillow": PIL.__version__, "libwebp": features.version("webp"), "cases": []}
    for name, data in cases.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        im.load()
        expect = name.replace(".", "_") + ".npy"
        np.save(os.path.join(OUT, expect), np.asarray(im))
        manifest["cases"].append({"file": name, "mode": im.mode, "expect": expect,
                                  "frames": getattr(im, "n_frames", 1),
                                  "orientation": im.getexif().get(0x0112, 0)})
        print(name, im.mode, im.size, len(data))
    with open(os.path.join(OUT, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)


if __name__ == "__main__":
    main()
