"""Inpainting given masked_image_latents, as diffusers 0.27.2 runs it (SD's and SDXL's
inpainting pipelines take the masked picture's latents as they are: nothing encoded, nothing
drawn from the generator for them), for tests/lua/test_inpaint.lua.

    .venv-torch/bin/python scripts/reference/make_masked_latents_cases.py

Writes tests/reference/masked_latents/: the latents given (seeded random, one row repeated
over the batch), the picture and mask (PNG), and output_type "np" pictures of
StableDiffusionInpaintPipeline on tiny-sd-inpaint (9 channels: the latents reach the UNet)
and tiny-sd-a (the legacy blend: they only change the draws), and of
StableDiffusionXLInpaintPipeline on tiny-sdxl-inpaint. Seeded: a rerun writes the same files.
"""
import os
import shutil

import numpy as np
import torch
from PIL import Image, ImageDraw

from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
OUT = os.path.join(ROOT, "tests", "reference", "masked_latents")

# (name, pipeline, model, arguments)
RUNS = [("ml_in9", "sd", "tiny-sd-inpaint",
         dict(prompt="a cat on a bench", strength=0.75, num_inference_steps=4,
              num_images_per_prompt=2, seed=7)),
        ("ml_legacy", "sd", "tiny-sd-a",
         dict(prompt="a red door", num_inference_steps=4, seed=8)),
        ("ml_xl", "xl", "tiny-sdxl-inpaint",
         dict(prompt="a lighthouse", num_inference_steps=3, seed=9))]


def main():
    torch.set_num_threads(2)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    picture = common.sketch(64, 48)
    mask = Image.new("L", (64, 48))
    ImageDraw.Draw(mask).rectangle((20, 10, 44, 36), fill=255)
    picture.save(os.path.join(OUT, "picture.png"))
    mask.save(os.path.join(OUT, "mask.png"))
    g = torch.Generator().manual_seed(31)
    for name, kind, model, args in RUNS:
        cls = StableDiffusionInpaintPipeline if kind == "sd" else StableDiffusionXLInpaintPipeline
        extra = {} if kind == "sd" else {"add_watermarker": False}
        if kind == "sd":
            extra.update(safety_checker=None, requires_safety_checker=False)
        pipe = cls.from_pretrained(os.path.join(MODELS, model), **extra)
        pipe.set_progress_bar_config(disable=True)
        f = pipe.vae_scale_factor
        latents = torch.randn((1, 4, 48 // f, 64 // f), generator=g)
        np.save(os.path.join(OUT, name + "_given.npy"), latents.numpy())
        call = dict(args)
        gen = torch.Generator().manual_seed(call.pop("seed"))
        out = pipe(image=picture, mask_image=mask, masked_image_latents=latents, height=48,
                   width=64, generator=gen, output_type="np", **call).images
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        print(name, out.shape)


if __name__ == "__main__":
    main()
