"""DDIM inversion written out as a notebook writes it, in diffusers 0.27.2, for
tests/lua/test_ddim_inversion.lua: tiny-sd-a's VAE encodes a sketch (the latent
distribution's mean, times scaling_factor), DDIMInverseScheduler walks the latents up
through 8 rising timesteps with the UNet (a prompt's embeddings, no guidance), and
DDIMScheduler walks them back down; the latents after each walk are saved.

    .venv-torch/bin/python scripts/reference/make_ddim_inversion_cases.py

Deterministic: a rerun writes the same files.
"""
import os

import numpy as np
import torch

from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
OUT = os.path.join(ROOT, "tests", "reference", "ddim_inversion")


def main():
    os.makedirs(OUT, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None,
                                                   requires_safety_checker=False)
    sketch = common.sketch(64, 64)
    sketch.save(os.path.join(OUT, "sketch64.png"))
    image = pipe.image_processor.preprocess(sketch)
    with torch.no_grad():
        latents = pipe.vae.encode(image).latent_dist.mean * pipe.vae.config.scaling_factor
        embeds = pipe.encode_prompt("a red door", "cpu", 1, False)[0]
        inverse = DDIMInverseScheduler.from_config(pipe.scheduler.config)
        inverse.set_timesteps(8)
        x = latents
        for t in inverse.timesteps:
            eps = pipe.unet(inverse.scale_model_input(x, t), t, encoder_hidden_states=embeds).sample
            x = inverse.step(eps, t, x).prev_sample
        inverted = x
        ddim = DDIMScheduler.from_config(pipe.scheduler.config)
        ddim.set_timesteps(8)
        for t in ddim.timesteps:
            eps = pipe.unet(ddim.scale_model_input(x, t), t, encoder_hidden_states=embeds).sample
            x = ddim.step(eps, t, x).prev_sample
    np.save(os.path.join(OUT, "latents.npy"), latents.numpy())
    np.save(os.path.join(OUT, "inverted.npy"), inverted.numpy())
    np.save(os.path.join(OUT, "restored.npy"), x.numpy())
    np.save(os.path.join(OUT, "timesteps.npy"), inverse.timesteps.numpy().astype(np.float32))
    print("timesteps", inverse.timesteps.tolist(), "restored vs latents",
          float((x - latents).abs().max()))


if __name__ == "__main__":
    main()
