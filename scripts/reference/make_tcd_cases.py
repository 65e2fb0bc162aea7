"""TCDScheduler in diffusers 0.27.2's pipelines, for tests/lua/test_tcd.lua: tiny-sd-a with
its scheduler swapped for TCDScheduler.from_config(pipe.scheduler.config), as TCD-LoRA's
model cards do.

  - tcd_eta03: text to image, 4 steps, guidance 0, eta 0.3 (TCD's usual gamma): noise
    from the generator between steps;
  - tcd_cfg: 4 steps, guidance 7.5, the pipeline's default eta (0: no noise drawn);
  - tcd_i2i: image to image, strength 0.6 of 8 steps, eta 0.5, two images with their own
    generators.

    .venv-torch/bin/python scripts/reference/make_tcd_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch

from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline, TCDScheduler

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
OUT = os.path.join(ROOT, "tests", "reference", "tcd")


def main():
    os.makedirs(OUT, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    i2i = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
    i2i.set_progress_bar_config(disable=True)
    sketch = common.sketch(64, 64)
    sketch.save(os.path.join(OUT, "sketch64.png"))
    runs = {
        "tcd_eta03": lambda: pipe(prompt="a cat on a bench", num_inference_steps=4,
                                  guidance_scale=0.0, eta=0.3, output_type="np",
                                  generator=torch.Generator().manual_seed(21)),
        "tcd_cfg": lambda: pipe(prompt="a lighthouse", num_inference_steps=4,
                                guidance_scale=7.5, output_type="np",
                                generator=torch.Generator().manual_seed(22)),
        "tcd_i2i": lambda: i2i(prompt="a red door", image=sketch, strength=0.6,
                               num_inference_steps=8, eta=0.5, num_images_per_prompt=2,
                               output_type="np",
                               generator=[torch.Generator().manual_seed(s) for s in (23, 24)]),
    }
    manifest = {"cases": []}
    for name, run in runs.items():
        images = run().images
        np.save(os.path.join(OUT, name + ".npy"), np.asarray(images, dtype=np.float32))
        manifest["cases"].append({"name": name, "shape": list(np.asarray(images).shape)})
        print(name, np.asarray(images).shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
