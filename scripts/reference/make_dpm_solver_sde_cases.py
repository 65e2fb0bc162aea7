"""DPMSolverSDEScheduler ("DPM++ SDE") in diffusers 0.27.2's pipelines, for
tests/lua/test_dpm_solver_sde.lua: tiny-sd-a with its scheduler swapped for
DPMSolverSDEScheduler.from_config(pipe.scheduler.config, ...).

  - sde_global: the notebook's way, torch.manual_seed(31) and no generator: the latents
    and then the noise sampler's seed (torch.randint) both from torch's default generator;
  - sde_karras: use_karras_sigmas, latents from generator 32, the sampler's seed from the
    default generator seeded 33;
  - sde_i2i: image to image, noise_sampler_seed=7 in the config, strength 0.75 of 8 steps,
    two images with their own generators.
Each case also keeps torch.randn(2) from the default generator after it (_rng_after.npy).

    .venv-torch/bin/python scripts/reference/make_dpm_solver_sde_cases.py

Needs torchsde==0.2.6 (pip). Seeded: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch

from diffusers import (DPMSolverSDEScheduler, StableDiffusionImg2ImgPipeline,
                       StableDiffusionPipeline)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
OUT = os.path.join(ROOT, "tests", "reference", "dpm_solver_sde")


def main():
    os.makedirs(OUT, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None,
                                                   requires_safety_checker=False)
    config = pipe.scheduler.config
    pipe.set_progress_bar_config(disable=True)
    sketch = common.sketch(64, 64)
    sketch.save(os.path.join(OUT, "sketch64.png"))

    def txt2img_global():
        pipe.scheduler = DPMSolverSDEScheduler.from_config(config)
        torch.manual_seed(31)
        return pipe(prompt="a cat on a bench", num_inference_steps=6, output_type="np")

    def txt2img_karras():
        pipe.scheduler = DPMSolverSDEScheduler.from_config(config, use_karras_sigmas=True)
        torch.manual_seed(33)
        return pipe(prompt="a lighthouse", num_inference_steps=5, output_type="np",
                    generator=torch.Generator().manual_seed(32))

    def img2img_seeded():
        pipe.scheduler = DPMSolverSDEScheduler.from_config(config, noise_sampler_seed=7)
        i2i = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
        i2i.set_progress_bar_config(disable=True)
        return i2i(prompt="a red door", image=sketch, strength=0.75, num_inference_steps=8,
                   num_images_per_prompt=2, output_type="np",
                   generator=[torch.Generator().manual_seed(s) for s in (34, 35)])

    runs = {"sde_global": txt2img_global, "sde_karras": txt2img_karras,
            "sde_i2i": img2img_seeded}
    manifest = {"cases": []}
    for name, run in runs.items():
        images = run().images
        np.save(os.path.join(OUT, name + ".npy"), np.asarray(images, dtype=np.float32))
        # the default generator's next draws: what the run left of it
        np.save(os.path.join(OUT, name + "_rng_after.npy"), torch.randn(2).numpy())
        manifest["cases"].append({"name": name, "shape": list(np.asarray(images).shape)})
        print(name, np.asarray(images).shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
