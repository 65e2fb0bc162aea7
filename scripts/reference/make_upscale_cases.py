"""StableDiffusionUpscalePipeline (stabilityai/stable-diffusion-x4-upscaler's) as diffusers 0.27.2
runs it, for tests/lua/test_upscale.lua:

  - tests/models/tiny-upscaler: the upscaler's layout at a tiny size, saved by save_pretrained:
    a UNet of 7 input channels (the latents and the noised picture) with the noise level as its
    class label (num_class_embeds 1000) and only_cross_attention blocks, tiny-sd-a's text
    encoder, tokenizer and VAE (scaling_factor 0.08333 as the upscaler's), the upscaler's DDIM
    (v_prediction) and its DDPM low_res_scheduler, max_noise_level 350;
  - runs: one picture with a negative prompt; two prompts with a picture each and two images
    per prompt (diffusers repeats the pictures whole, not per prompt); a picture whose size is
    no multiple of 4 (resized bicubic) with noise_level 100 and no guidance; output "np".

    .venv-torch/bin/python scripts/reference/make_upscale_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from transformers import CLIPTextModel, CLIPTokenizer

from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler,
                       StableDiffusionUpscalePipeline, UNet2DConditionModel)

import common
import make_tiny_models

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
MODEL = os.path.join(ROOT, "tests", "models", "tiny-upscaler")
OUT = os.path.join(ROOT, "tests", "reference", "upscale")

BETAS = dict(beta_start=0.0001, beta_end=0.02, beta_schedule="scaled_linear",
             num_train_timesteps=1000, clip_sample=False)

CASES = [
    ("up_one", dict(prompt="a white cat", negative_prompt="blurry", image=["sketch16"],
                    num_inference_steps=4, seed=1)),
    ("up_batch", dict(prompt=["a white cat", "a red door"], image=["sketch16", "rings16"],
                      num_images_per_prompt=2, num_inference_steps=3, seed=2)),
    ("up_odd_unguided", dict(prompt="a lighthouse", image=["sketch18x14"], noise_level=100,
                             guidance_scale=1.0, num_inference_steps=4, seed=3)),
]


def make_model():
    shutil.rmtree(MODEL, ignore_errors=True)
    torch.manual_seed(61)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=7, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=4,
        cross_attention_dim=32, use_linear_projection=True, num_class_embeds=1000,
        only_cross_attention=[True, False], norm_num_groups=8)
    make_tiny_models.perturb(unet, 62)
    vae = AutoencoderKL.from_pretrained(os.path.join(SRC, "vae"), scaling_factor=0.08333)
    pipe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=CLIPTextModel.from_pretrained(os.path.join(SRC, "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(SRC, "tokenizer")), unet=unet,
        low_res_scheduler=DDPMScheduler(variance_type="fixed_small", **BETAS),
        scheduler=DDIMScheduler(prediction_type="v_prediction", set_alpha_to_one=False,
                                steps_offset=1, **BETAS),
        max_noise_level=350)
    pipe.save_pretrained(MODEL, safe_serialization=True)


def pictures():
    from PIL import Image
    out = {"sketch16": common.sketch(16, 16), "sketch18x14": common.sketch(18, 14, 0.2)}
    y, x = np.mgrid[0:16, 0:16]
    rings = (np.sin(np.hypot(x - 7, y - 9) / 1.5) > 0).astype(np.uint8) * 255
    out["rings16"] = Image.fromarray(np.stack([rings, rings // 2, 255 - rings], -1), "RGB")
    for name, img in out.items():
        img.save(os.path.join(OUT, name + ".png"))
    return out


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    make_model()
    pics = pictures()
    pipe = StableDiffusionUpscalePipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    manifest = {"cases": []}
    for name, args in CASES:
        call = dict(args)
        images = [pics[n] for n in call.pop("image")]
        g = torch.Generator().manual_seed(call.pop("seed"))
        out = pipe(image=images if len(images) > 1 else images[0], generator=g, output_type="np",
                   **call).images
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        manifest["cases"].append({"name": name, "shape": list(out.shape)})
        print(name, out.shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
