"""FreeU as diffusers 0.27.2 runs it (UNet2DConditionModel.enable_freeu, apply_freeu,
fourier_filter), for tests/lua/test_freeu.lua, on the committed tiny models (not changed):

  - tiny-sd-a (two up blocks, 8x8 and 16x16 there at 128x128) with SD 1.5's suggested
    factors: a txt2img run, and one UNet call;
  - tiny-sd-b (three up blocks) at 96x80, whose up blocks see planes of 3x2.5 -> 3x3 and
    6x5 (not powers of two: fourier_filter's float32 branch), and 8x8 at 64x64;
  - a factor of 0 (diffusers then leaves FreeU off altogether), and disable_freeu.

    .venv-torch/bin/python scripts/reference/make_freeu_cases.py

Writes tests/reference/freeu/ (.npy and manifest.json). Seeded: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch

from diffusers import StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "freeu")
PROMPT = "a watercolor of a lighthouse"
CASES = [
    # name, model, freeu (s1, s2, b1, b2) or None, height, width
    ("a_sd15", "tiny-sd-a", (0.9, 0.2, 1.2, 1.4), None, None),
    ("a_strong", "tiny-sd-a", (0.5, 0.3, 1.6, 1.8), None, None),
    ("a_zero", "tiny-sd-a", (0.9, 0.0, 1.2, 1.4), None, None),
    ("b_odd", "tiny-sd-b", (0.9, 0.2, 1.2, 1.4), 96, 80),
    ("b_64", "tiny-sd-b", (0.7, 0.4, 1.1, 1.3), 64, 64),
]


def load(name):
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(ROOT, "tests", "models", name),
                                                   torch_dtype=torch.float32,
                                                   safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"prompt": PROMPT, "cases": []}
    for name, model, f, h, w in CASES:
        pipe = load(model)
        if f:
            pipe.enable_freeu(s1=f[0], s2=f[1], b1=f[2], b2=f[3])
        img = pipe(prompt=PROMPT, num_inference_steps=3, height=h, width=w, output_type="np",
                   generator=torch.Generator().manual_seed(7)).images
        np.save(os.path.join(OUT, name + ".npy"), img.astype(np.float32))
        manifest["cases"].append({"name": name, "model": model, "freeu": f, "height": h,
                                  "width": w})
    # one UNet call with FreeU, and the same pipeline after disable_freeu
    pipe = load("tiny-sd-a")
    pipe.enable_freeu(s1=0.9, s2=0.2, b1=1.2, b2=1.4)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 16, 16, generator=g)
    ctx = torch.randn(2, 77, pipe.unet.config.cross_attention_dim, generator=g)
    np.save(os.path.join(OUT, "unet_x.npy"), x.numpy())
    np.save(os.path.join(OUT, "unet_ctx.npy"), ctx.numpy())
    with torch.no_grad():
        np.save(os.path.join(OUT, "unet_out.npy"),
                pipe.unet(x, 500, encoder_hidden_states=ctx).sample.numpy())
    pipe.disable_freeu()
    img = pipe(prompt=PROMPT, num_inference_steps=3, output_type="np",
               generator=torch.Generator().manual_seed(7)).images
    np.save(os.path.join(OUT, "a_disabled.npy"), img.astype(np.float32))
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
