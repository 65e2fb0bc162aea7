#!/usr/bin/env python3
"""Writes JPEG files with Pillow's reading of each into tests/fixtures/jpeg/.

sdrepl decodes JPEG with libjpeg-turbo, as Pillow does, so the pixels must be Pillow's to
the byte: baseline files at three chroma subsamplings, progressive, grey, an odd size, and
CMYK (which Pillow opens as CMYK; its convert("RGB") is what is kept), and the bytes of
Image.save at Pillow's defaults, which sdrepl's save must write too. Then files that leave
out or misname their tables, each one Pillow wrote and then edited: libjpeg-turbo fills
Huffman slots 0 and 1 a sequential file never defines with the JPEG standard's tables (as
motion-JPEG frames expect) and refuses any other table a scan names but the file does not
define. manifest.json gives, per file, "ok" with the mode and the .npy of Pillow's pixels,
or "error" with Pillow's message.

    .venv-ref/bin/python scripts/reference/make_jpeg_cases.py   (Pillow 13.0.0)
"""
import io
import json
import os

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "jpeg")


def segments(b):
    """(marker, start, end) of each segment up to and including the first SOS header."""
    out, p = [], 2
    while p + 4 <= len(b):
        m, n = b[p + 1], (b[p + 2] << 8) | b[p + 3]
        out.append((m, p, p + 2 + n))
        if m == 0xDA:
            break
        p += 2 + n
    return out


def without(b, marker):
    """b with every `marker` segment before the first scan removed."""
    segs = segments(b)
    sos = segs[-1][1]
    kept = b"".join(b[s:e] for m, s, e in segs if m != marker and m != 0xDA)
    return b[:2] + kept + b[sos:]


def with_scan_tables(b, dc, ac):
    """b with the first scan's first component naming DC table dc and AC table ac."""
    sos = segments(b)[-1][1]
    out = bytearray(b)
    out[sos + 6] = (dc << 4) | ac  # FF DA, length (2), Ns, then Cs, TdTa
    return bytes(out)


def with_huge_huffman_table(b):
    """b with its first Huffman table claiming 16 x 200 codes (at most 256 exist)."""
    dht = [s for m, s, e in segments(b) if m == 0xC4][0]
    out = bytearray(b)
    out[dht + 5:dht + 21] = bytes([200] * 16)  # FF C4, length (2), class and slot, counts
    return bytes(out)


def picture():
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:24, 0:40]
    a = np.stack([x * 6, y * 10, (x + y) * 4], -1) + rng.integers(0, 30, (24, 40, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def saved(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **{"quality": 90, **kw})
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    im = picture()
    base = saved(im)
    grey = saved(im.convert("L"))
    odd = im.resize((37, 23))
    cases = {
        "base.jpg": base,
        "subsampling_444.jpg": saved(im, subsampling=0),
        "subsampling_422.jpg": saved(im, subsampling=1),
        "progressive.jpg": saved(im, progressive=True),
        "grey.jpg": grey,
        "odd_size.jpg": saved(odd, quality=75),
        "odd_size_progressive.jpg": saved(odd, progressive=True),
        "cmyk.jpg": saved(im.convert("CMYK")),
        "base_no_dht.jpg": without(base, 0xC4),
        "grey_no_dht.jpg": without(grey, 0xC4),
        "optimized_no_dht.jpg": without(saved(im, optimize=True), 0xC4),
        "progressive_no_dht.jpg": without(saved(im, progressive=True), 0xC4),
        "scan_dc_table_2.jpg": with_scan_tables(base, 2, 0),
        "scan_ac_table_3.jpg": with_scan_tables(base, 0, 3),
        "no_dqt.jpg": without(base, 0xDB),
        "fill_before_soi.jpg": b"\xff" + base,
        "huffman_too_many_codes.jpg": with_huge_huffman_table(base),
    }
    manifest = {"pillow": PIL.__version__, "cases": []}
    for name, data in cases.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        try:
            got = Image.open(io.BytesIO(data))
            got.load()
            entry = {"file": name, "verdict": "ok", "mode": got.mode}
            if got.mode == "CMYK":
                got = got.convert("RGB")
            entry["expect"] = name.replace(".", "_") + ".npy"
            np.save(os.path.join(OUT, entry["expect"]), np.asarray(got))
        except Exception as e:  # Pillow's refusal is the expected answer here
            # (without the repr of the BytesIO Pillow names in "cannot identify image file")
            entry = {"file": name, "verdict": "error", "message": str(e).split(" <")[0]}
        manifest["cases"].append(entry)
        print(entry)
    # Image.save's bytes with Pillow's defaults (quality 75), from pixels kept as .npy.
    manifest["saves"] = []
    for name, src in (("rgb", im), ("l", im.convert("L")), ("odd", odd)):
        np.save(os.path.join(OUT, f"save_{name}.npy"), np.asarray(src))
        src.save(os.path.join(OUT, f"save_{name}.jpg"))
        manifest["saves"].append({"source": f"save_{name}.npy", "file": f"save_{name}.jpg"})
    # Image.thumbnail on a JPEG just opened: Pillow's draft decodes it at 1/2, 1/4 or 1/8 first
    # (libjpeg's scaled IDCT) when the picture is reducing_gap times the size asked for; once
    # anything has read the pixels (convert here), no draft.
    photo = Image.fromarray(np.clip(np.asarray(picture().resize((400, 300), Image.BICUBIC),
                                               dtype=np.int16) + np.random.default_rng(3)
                                    .integers(-20, 20, (300, 400, 3)), 0, 255).astype(np.uint8))
    photo.save(os.path.join(OUT, "photo.jpg"), quality=90)
    manifest["thumbnails"] = []
    for i, (size, gap, loaded) in enumerate([((64, 64), 2.0, False), ((40, 30), 2.0, False),
                                             ((10, 10), 2.0, False), ((200, 150), 1.0, False),
                                             ((64, 64), None, False), ((64, 64), 2.0, True),
                                             ((33.5, 90), 3.0, False)]):
        im = Image.open(os.path.join(OUT, "photo.jpg"))
        if loaded:
            im = im.convert("RGB")
        im.thumbnail(size, reducing_gap=gap)
        name = f"thumbnail_{i}.npy"
        np.save(os.path.join(OUT, name), np.asarray(im))
        manifest["thumbnails"].append({"size": list(size), "reducing_gap": gap,
                                       "loaded_first": loaded, "file": name,
                                       "result": list(im.size)})
    with open(os.path.join(OUT, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)


if __name__ == "__main__":
    main()
