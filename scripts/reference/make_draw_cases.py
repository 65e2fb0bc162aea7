#!/usr/bin/env python3
"""Writes Pillow's ImageDraw.rectangle, ellipse, polygon and line for sdrepl's tests into
tests/fixtures/pil_draw/ (tests/lua/test_image_draw.lua draws the same CASES, in order).

Each case draws on a fresh 40x30 canvas of grey 100 (L), (100, 110, 120) (RGB) or
(100, 110, 120, 130) (RGBA): filled and outlined shapes, widths 1 to 4, fill and outline
together, the default ink (no fill, no outline), shapes partly or wholly off the canvas,
degenerate ones (a line, a point), float coordinates (truncated), colours as numbers, lists
and names; polygons convex, concave, self-crossing, with runs of horizontal edges and of two
points; lines 1 to 12 pixels wide, of several segments, steep, flat and of one point. Each
result is a uint8 .npy.

    .venv-ref/bin/python scripts/reference/make_draw_cases.py   (Pillow 13.0.0)
"""
import os

import numpy as np
from PIL import Image, ImageDraw

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "pil_draw")
BASE = {"L": 100, "RGB": (100, 110, 120), "RGBA": (100, 110, 120, 130)}
INK = {"L": 255, "RGB": (255, 0, 0), "RGBA": (255, 0, 0, 200)}
INK2 = {"L": 30, "RGB": (0, 0, 255), "RGBA": (0, 0, 255, 255)}

# (shape, xy, keyword arguments); "ink" and "ink2" stand for the mode's INK and INK2
CASES = [
    ("rectangle", (5, 4, 20, 15), {"fill": "ink"}),
    ("rectangle", (5, 4, 20, 15), {"outline": "ink"}),
    ("rectangle", (5, 4, 20, 15), {"outline": "ink", "width": 3}),
    ("rectangle", (5, 4, 20, 15), {"fill": "ink2", "outline": "ink", "width": 2}),
    ("rectangle", (5, 4, 20, 15), {}),
    ("rectangle", (-5, -3, 12, 40), {"fill": "ink"}),
    ("rectangle", (30, 20, 60, 50), {"outline": "ink", "width": 4}),
    ("rectangle", (7, 7, 7, 20), {"fill": "ink"}),
    ("rectangle", (2.7, 3.2, 9.9, 8.5), {"fill": "ink"}),
    ("rectangle", (10, 10, 14, 12), {"outline": "ink", "width": 5}),
    ("rectangle", (1, 1, 38, 28), {"fill": "white"}),
    ("ellipse", (5, 4, 30, 25), {"fill": "ink"}),
    ("ellipse", (5, 4, 30, 25), {"outline": "ink"}),
    ("ellipse", (5, 4, 30, 25), {"outline": "ink", "width": 3}),
    ("ellipse", (5, 4, 30, 25), {"fill": "ink2", "outline": "ink", "width": 2}),
    ("ellipse", (2, 2, 6, 5), {"fill": "ink"}),
    ("ellipse", (10, 10, 11, 11), {"fill": "ink"}),
    ("ellipse", (10, 10, 10, 20), {"fill": "ink"}),
    ("ellipse", (-10, -8, 20, 12), {"fill": "ink"}),
    ("ellipse", (0, 0, 39, 29), {"outline": "ink", "width": 4}),
    ("ellipse", (3.9, 4.1, 17.5, 22.8), {"fill": "ink"}),
    ("ellipse", (8, 5, 33, 27), {}),
    ("ellipse", (4, 4, 35, 25), {"fill": "#00ff80"}),
    ("polygon", [(5, 25), (20, 3), (35, 25)], {"fill": "ink"}),
    ("polygon", [(20, 1), (25, 12), (38, 12), (27, 19), (31, 29), (20, 22), (9, 29), (13, 19),
                 (2, 12), (15, 12)], {"fill": "ink"}),
    ("polygon", [(5, 5), (30, 5), (30, 20), (5, 20)], {"fill": "ink"}),
    ("polygon", [(5, 5), (15, 5), (25, 5), (25, 20), (5, 20)], {"fill": "ink"}),
    ("polygon", [(-10, -5), (50, 10), (10, 40)], {"fill": "ink"}),
    ("polygon", [(5, 25), (20, 3), (35, 25)], {"outline": "ink"}),
    ("polygon", [(5, 25), (20, 3), (35, 25), (20, 15)], {"fill": "ink2", "outline": "ink"}),
    ("polygon", [(3.7, 2.2), (36.9, 8.8), (18.5, 27.9)], {"fill": "ink"}),
    ("polygon", [(5, 5), (30, 20)], {"fill": "ink"}),
    ("polygon", [(2, 2), (37, 27), (37, 2), (2, 27)], {"fill": "ink"}),
    ("polygon", [(8, 3), (33, 9), (21, 26)], {}),
    ("line", [(2, 3), (37, 26)], {"fill": "ink"}),
    ("line", [(2, 3), (37, 26), (30, 2), (5, 20)], {"fill": "ink"}),
    ("line", [(2, 3), (37, 26)], {"fill": "ink", "width": 2}),
    ("line", [(2, 3), (37, 26)], {"fill": "ink", "width": 5}),
    ("line", [(5, 15), (35, 15)], {"fill": "ink", "width": 8}),
    ("line", [(20, 2), (20, 28)], {"fill": "ink", "width": 7}),
    ("line", [(3, 25), (12, 2), (27, 27), (36, 4)], {"fill": "ink", "width": 12}),
    ("line", [(-5, 10), (50, 20)], {"fill": "ink", "width": 3}),
    ("line", [(10, 10), (10, 10)], {"fill": "ink", "width": 6}),
    ("line", [(2.6, 3.9), (36.2, 20.7)], {"fill": "ink", "width": 4}),
    ("line", [(4, 27), (36, 3)], {}),
    ("line", [(4, 4), (36, 26)], {"fill": "ink", "width": 0}),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    for mode in ("L", "RGB", "RGBA"):
        for i, (shape, xy, kw) in enumerate(CASES):
            im = Image.new(mode, (40, 30), BASE[mode])
            draw = ImageDraw.Draw(im)
            kw = {k: INK[mode] if v == "ink" else INK2[mode] if v == "ink2" else v
                  for k, v in kw.items()}
            getattr(draw, shape)(xy, **kw)
            np.save(os.path.join(OUT, f"{shape}_{mode.lower()}_{i}.npy"), np.asarray(im))
    print(len(CASES) * 3, "cases")


if __name__ == "__main__":
    main()
