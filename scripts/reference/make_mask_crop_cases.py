"""Inpainting's padding_mask_crop as diffusers 0.27.2 does it (image_processor.py's
get_crop_region, _resize_and_fill, _resize_and_crop, apply_overlay, and the inpainting
pipelines' use of them), for tests/lua/test_mask_crop.lua.

    .venv-torch/bin/python scripts/reference/make_mask_crop_cases.py

Writes tests/reference/mask_crop/: the pictures and masks (PNG), manifest.json with each
mask's crop boxes, the pictures the helpers make (PNG, byte-exact references), preprocess's tensors with
crops_coords and resize_mode (npy), and the
pictures of whole runs with padding_mask_crop (PIL, as the option requires):
StableDiffusionInpaintPipeline on tiny-sd-inpaint (9 channels) and tiny-sd-a (the legacy
blend), StableDiffusionXLInpaintPipeline on tiny-sdxl-inpaint, and
StableDiffusionControlNetInpaintPipeline (its control picture cropped too, its size the
picture's). Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image, ImageDraw

from diffusers import (ControlNetModel, StableDiffusionControlNetInpaintPipeline,
                       StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline)
from diffusers.image_processor import VaeImageProcessor

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
OUT = os.path.join(ROOT, "tests", "reference", "mask_crop")

# (mask, width, height, pad): get_crop_region's cases
REGIONS = [(m, w, h, pad) for m in ("spot", "tall", "edge", "grey")
           for w, h, pad in ((64, 64, 0), (64, 64, 8), (48, 32, 4), (32, 48, 16))]
# (name, picture, box, width, height): _resize_and_fill of a crop
FILLS = [("fill_wide", "sketch", (10, 20, 90, 40), 64, 64),     # bands above and below
         ("fill_tall", "sketch", (30, 0, 50, 64), 48, 32),      # bands left and right
         ("fill_same", "sketch", (16, 0, 80, 64), 32, 32),      # the ratio kept: no bands
         ("fill_rgba", "rgba", (5, 10, 85, 30), 48, 48),        # premultiplied resizes
         ("fill_mask", "spot", (40, 8, 96, 48), 64, 64)]        # an L mask: an RGB result
# (name, picture, width, height): _resize_and_crop
COVERS = [("cover_wide", "sketch", 32, 32), ("cover_tall", "sketch", 24, 56)]
# (name, mask, init picture, generated picture, box)
OVERLAYS = [("overlay_spot", "spot", "sketch", "rings", (36, 4, 96, 64)),
            ("overlay_grey", "grey", "rgba", "rings", (0, 0, 64, 64))]
# whole runs: (name, pipeline, model, controlnet, mask, arguments)
RUNS = [
    ("run_in9", "sd", "tiny-sd-inpaint", None, "spot",
     dict(prompt="a cat on a bench", padding_mask_crop=8, height=64, width=64,
          num_inference_steps=4, seed=3)),
    ("run_legacy", "sd", "tiny-sd-a", None, "tall",
     dict(prompt="a red door", padding_mask_crop=4, height=48, width=32, strength=0.8,
          num_inference_steps=5, num_images_per_prompt=2, seed=4)),
    ("run_xl", "xl", "tiny-sdxl-inpaint", None, "edge",
     dict(prompt="a lighthouse", padding_mask_crop=6, height=64, width=64,
          num_inference_steps=3, seed=5)),
    ("run_controlnet", "cn", "tiny-sd-inpaint", "tiny-controlnet-b", "spot",
     dict(prompt="a castle", padding_mask_crop=10, num_inference_steps=4, seed=6)),
]


def pictures():
    pics = {"sketch": common.sketch(96, 64), "rings": common.sketch(64, 64, phase=1.3)}
    rgba = common.sketch(96, 64, phase=0.7).convert("RGBA")
    alpha = Image.linear_gradient("L").resize((96, 64))
    rgba.putalpha(alpha)
    pics["rgba"] = rgba
    for name, box, ellipse in (("spot", (60, 20, 76, 34), True), ("tall", (10, 5, 20, 60), False),
                               ("edge", (85, 50, 95, 63), False)):
        m = Image.new("L", (96, 64))
        d = ImageDraw.Draw(m)
        (d.ellipse if ellipse else d.rectangle)(box, fill=255)
        pics[name] = m
    grey = Image.new("RGB", (96, 64))
    d = ImageDraw.Draw(grey)
    d.rectangle((30, 12, 58, 40), fill=(200, 120, 40))
    d.rectangle((40, 44, 47, 50), fill=(40, 40, 40))
    pics["grey"] = grey
    for name, p in pics.items():
        p.save(os.path.join(OUT, name + ".png"))
    return pics


def helper_cases(manifest, pics):
    proc = VaeImageProcessor()
    manifest["regions"] = [
        dict(mask=m, width=w, height=h, pad=pad,
             box=list(VaeImageProcessor.get_crop_region(pics[m], w, h, pad=pad)))
        for m, w, h, pad in REGIONS]
    manifest["fills"] = []
    for name, pic, box, w, h in FILLS:
        proc._resize_and_fill(pics[pic].crop(box), w, h).save(os.path.join(OUT, name + ".png"))
        manifest["fills"].append(dict(name=name, picture=pic, box=list(box), width=w, height=h))
    manifest["covers"] = []
    for name, pic, w, h in COVERS:
        proc._resize_and_crop(pics[pic], w, h).save(os.path.join(OUT, name + ".png"))
        manifest["covers"].append(dict(name=name, picture=pic, width=w, height=h))
    # preprocess with crops_coords and resize_mode, as the pipelines call it
    masks = VaeImageProcessor(do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    box = VaeImageProcessor.get_crop_region(pics["spot"], 64, 64, pad=8)
    pre = dict(pre_image_fill=proc.preprocess(pics["sketch"], 64, 64, crops_coords=box,
                                              resize_mode="fill"),
               pre_mask_fill=masks.preprocess(pics["spot"], 64, 64, crops_coords=box,
                                              resize_mode="fill"),
               pre_image_crop=proc.preprocess(pics["sketch"], 48, 32, resize_mode="crop"))
    for name, t in pre.items():
        np.save(os.path.join(OUT, name + ".npy"), t.numpy().astype(np.float32))
    manifest["preprocess_box"] = list(box)
    manifest["overlays"] = []
    for name, mask, init, image, box in OVERLAYS:
        proc.apply_overlay(pics[mask], pics[init], pics[image], box).save(
            os.path.join(OUT, name + ".png"))
        manifest["overlays"].append(dict(name=name, mask=mask, init=init, image=image,
                                         box=list(box)))


def run_cases(manifest, pics):
    manifest["runs"] = []
    for name, kind, model, net, mask, args in RUNS:
        path = os.path.join(MODELS, model)
        if kind == "sd":
            pipe = StableDiffusionInpaintPipeline.from_pretrained(
                path, safety_checker=None, requires_safety_checker=False)
        elif kind == "xl":
            pipe = StableDiffusionXLInpaintPipeline.from_pretrained(path, add_watermarker=False)
        else:
            cn = ControlNetModel.from_pretrained(os.path.join(MODELS, net))
            pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
                path, controlnet=cn, safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args)
        gen = torch.Generator().manual_seed(call.pop("seed"))
        extra = {"control_image": pics["rings"]} if kind == "cn" else {}
        images = pipe(image=pics["sketch"], mask_image=pics[mask], generator=gen, **extra,
                      **call).images
        for i, im in enumerate(images):
            im.save(os.path.join(OUT, f"{name}_{i}.png"))
        entry = dict(name=name, pipeline=kind, model=model, controlnet=net, mask=mask,
                     images=len(images), size=list(images[0].size))
        entry.update(args)
        manifest["runs"].append(entry)
        print(name, len(images), images[0].size)


def main():
    torch.set_num_threads(2)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    pics = pictures()
    manifest = {"diffusers": __import__("diffusers").__version__,
                "pillow": __import__("PIL").__version__}
    helper_cases(manifest, pics)
    run_cases(manifest, pics)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
