"""What diffusers 0.27.2's StableDiffusionPipeline and StableDiffusionInpaintPipeline do with an
outdated scheduler config, for tests/lua/test_outdated_configs.lua: their __init__ sets
steps_offset to 1 and clip_sample to False (inpainting: skip_prk_steps to True), so a model
whose scheduler_config.json predates those keys' meaning still samples as intended.

  - t2i: tiny-sd-a with scheduler=DDIMScheduler.from_config(..., steps_offset=0,
    clip_sample=True), 3 steps;
  - inpaint: tiny-sd-inpaint with scheduler=PNDMScheduler.from_config(..., steps_offset=0,
    skip_prk_steps=False), 4 steps.

    .venv-torch/bin/python scripts/reference/make_outdated_config_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from diffusers import (DDIMScheduler, PNDMScheduler, StableDiffusionInpaintPipeline,
                       StableDiffusionPipeline)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
OUT = os.path.join(ROOT, "tests", "reference", "outdated_configs")


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    base = DDIMScheduler.from_pretrained(os.path.join(MODELS, "tiny-sd-a"), subfolder="scheduler")
    sched = DDIMScheduler.from_config(base.config, steps_offset=0, clip_sample=True)
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(MODELS, "tiny-sd-a"), scheduler=sched,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    manifest["t2i"] = {"steps_offset": pipe.scheduler.config.steps_offset,
                       "clip_sample": pipe.scheduler.config.clip_sample}
    images = pipe("a red door", num_inference_steps=3, output_type="np",
                  generator=torch.Generator().manual_seed(4)).images
    np.save(os.path.join(OUT, "t2i.npy"), images.astype(np.float32))

    base = PNDMScheduler.from_pretrained(os.path.join(MODELS, "tiny-sd-inpaint"), subfolder="scheduler")
    sched = PNDMScheduler.from_config(base.config, steps_offset=0, skip_prk_steps=False)
    inpaint = StableDiffusionInpaintPipeline.from_pretrained(
        os.path.join(MODELS, "tiny-sd-inpaint"), scheduler=sched, safety_checker=None,
        requires_safety_checker=False)
    inpaint.set_progress_bar_config(disable=True)
    manifest["inpaint"] = {"steps_offset": inpaint.scheduler.config.steps_offset,
                           "skip_prk_steps": inpaint.scheduler.config.skip_prk_steps}
    sketch = common.sketch(64, 64)
    sketch.save(os.path.join(OUT, "sketch64.png"))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((16, 16, 47, 47), fill=255)
    mask.save(os.path.join(OUT, "mask64.png"))
    images = inpaint("a cat", image=sketch, mask_image=mask, num_inference_steps=4,
                     output_type="np", generator=torch.Generator().manual_seed(5)).images
    np.save(os.path.join(OUT, "inpaint.npy"), images.astype(np.float32))
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    print(manifest)


if __name__ == "__main__":
    main()
