"""ControlNet on Stable Diffusion XL as diffusers 0.27.2 runs it
(StableDiffusionXLControlNetPipeline, StableDiffusionXLControlNetImg2ImgPipeline,
StableDiffusionXLControlNetInpaintPipeline), for tests/lua/test_xl_controlnet.lua:

  - tests/models/tiny-sdxl-controlnet: ControlNetModel.from_unet of tiny-sdxl's UNet (so its
    "text_time" added embedding too: the net sees the pooled text and the micro-conditioning
    ids), every weight then moved by random noise, stored in float16;
  - one direct call with added_cond_kwargs (the residuals);
  - runs: the size taken from the control image; guess mode with two prompts, two images
    each and negative micro-conditioning sizes (the net sees the second half of the
    time-id rows as diffusers lays them out); control_guidance_start/end with a resized
    control image; the same net twice (MultiControlNetModel) with its own scales and
    pictures; no guidance with denoising_end; output_type "np";
  - StableDiffusionXLControlNetImg2ImgPipeline runs: its defaults (strength 0.8, scale 0.8),
    both pictures resized to height x width with guess mode, a batch and negative sizes (its
    time ids as SDXL img2img's, the scheduler told its begin index), two nets;
  - StableDiffusionXLControlNetInpaintPipeline runs with tiny-sdxl (the legacy blend of a
    4-channel UNet): its defaults (strength 0.9999, guidance 5.0), and the pictures resized
    with guess mode and guidance_rescale (tiny-sdxl-inpaint's 9-channel UNet has another
    layout, so the net does not fit it).

    .venv-torch/bin/python scripts/reference/make_xl_controlnet_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch

from diffusers import (ControlNetModel, EulerAncestralDiscreteScheduler,
                       StableDiffusionXLControlNetImg2ImgPipeline,
                       StableDiffusionXLControlNetInpaintPipeline,
                       StableDiffusionXLControlNetPipeline, UNet2DConditionModel)

import common
import make_controlnet_cases as cn

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
BASE = os.path.join(MODELS, "tiny-sdxl")
NET = os.path.join(MODELS, "tiny-sdxl-controlnet")
OUT = os.path.join(ROOT, "tests", "reference", "xl_controlnet")

# name, nets (how many times the one net), scheduler, control pictures, call arguments
CASES = [
    ("xlcn_size_from_image", 1, None, ["sketch96x64"],
     dict(prompt="a cat on a bench", num_inference_steps=3, seed=1)),
    ("xlcn_guess_batch", 1, None, ["sketch64"],
     dict(prompt=["a cat on a bench", "a red door"], negative_prompt=["blurry", "dark"],
          num_images_per_prompt=2, guess_mode=True, controlnet_conditioning_scale=0.8,
          negative_original_size=(32, 32), negative_target_size=(48, 48),
          num_inference_steps=3, seeds=[2, 3, 4, 5])),
    ("xlcn_start_end_ancestral", 1, "ancestral", ["sketch80x72"],
     dict(prompt="a lighthouse", control_guidance_start=0.2, control_guidance_end=0.7,
          height=64, width=64, original_size=(128, 96), num_inference_steps=5, seed=6)),
    ("xlcn_multi", 2, None, ["sketch64", "rings64"],
     dict(prompt="a cat on a bench", controlnet_conditioning_scale=[1.0, 0.6],
          control_guidance_start=[0.0, 0.3], control_guidance_end=[1.0, 0.8],
          num_inference_steps=4, seed=7)),
    ("xlcn_unguided_end", 1, None, ["rings64"],
     dict(prompt="a lighthouse", guidance_scale=1.0, denoising_end=0.7,
          num_inference_steps=4, output_type="latent", seed=8)),
]


# img2img: name, nets, picture, control pictures, call arguments
I2I_CASES = [
    ("xlcni_defaults", 1, "sketch64", ["rings64"],
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=11)),
    ("xlcni_resized_guess", 1, "sketch80x72", ["sketch96x64"],
     dict(prompt=["a cat on a bench", "a red door"], num_images_per_prompt=2, guess_mode=True,
          height=64, width=64, strength=0.6, negative_original_size=(32, 32),
          num_inference_steps=5, seed=12)),
    ("xlcni_multi", 2, "sketch64", ["sketch64", "rings64"],
     dict(prompt="a lighthouse", controlnet_conditioning_scale=[1.0, 0.5],
          control_guidance_start=[0.0, 0.25], control_guidance_end=[0.75, 1.0], strength=0.75,
          num_inference_steps=6, seed=16)),
]


# inpainting: name, model, picture, mask, control picture, call arguments
INPAINT_CASES = [
    ("xlcnin4_defaults", "tiny-sdxl", "sketch64", "box64", "rings64",
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=21)),
    ("xlcnin4_resized_guess", "tiny-sdxl", "sketch80x72", "grey80x72", "sketch96x64",
     dict(prompt=["a cat on a bench", "a red door"], guess_mode=True, height=64, width=64,
          strength=0.75, guidance_rescale=0.5, num_inference_steps=5, seed=22)),
    ("xlcnin4_start", "tiny-sdxl", "sketch64", "box64", "rings64",
     dict(prompt="a lighthouse", denoising_start=0.6, num_inference_steps=5, seed=23)),
]


def make_net():
    shutil.rmtree(NET, ignore_errors=True)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(BASE, "unet"))
    torch.manual_seed(21)  # the conditioning embedding's initial weights
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16))
    torch.manual_seed(22)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    net.to(torch.float16).save_pretrained(NET, safe_serialization=True)


def direct_call(net, manifest):
    g = torch.Generator().manual_seed(30)
    x = torch.randn(2, 4, 16, 16, generator=g)
    ctx = torch.randn(2, 77, 64, generator=g)
    cond = torch.rand(2, 3, 64, 64, generator=g)
    text_embeds = torch.randn(2, 24, generator=g)
    time_ids = torch.tensor([[64.0, 64, 0, 0, 64, 64], [128.0, 96, 8, 4, 64, 80]])
    inputs = dict(x=x, ctx=ctx, cond=cond, text_embeds=text_embeds, time_ids=time_ids)
    for k, v in inputs.items():
        np.save(os.path.join(OUT, "direct_%s.npy" % k), v.numpy())
    with torch.no_grad():
        down, mid = net(x, 500, encoder_hidden_states=ctx, controlnet_cond=cond,
                        conditioning_scale=0.7,
                        added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids},
                        return_dict=False)
    for i, d in enumerate(down):
        np.save(os.path.join(OUT, "direct_down_%d.npy" % i), d.numpy())
    np.save(os.path.join(OUT, "direct_mid.npy"), mid.numpy())
    manifest["direct_down"] = len(down)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    make_net()
    cn.OUT = OUT
    pics = cn.pictures()
    net = ControlNetModel.from_pretrained(NET, torch_dtype=torch.float32)
    manifest = {"cases": []}
    direct_call(net, manifest)
    for name, nnets, sched, images, args in CASES:
        pipe = StableDiffusionXLControlNetPipeline.from_pretrained(
            BASE, controlnet=net if nnets == 1 else [net] * nnets, torch_dtype=torch.float32,
            add_watermarker=False)
        if sched == "ancestral":
            pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call, gen = cn.with_generators(args)
        image = [pics[i] for i in images] if nnets > 1 else pics[images[0]]
        call.setdefault("output_type", "np")
        out = pipe(image=image, generator=gen, **call).images
        out = out.numpy() if torch.is_tensor(out) else out
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        manifest["cases"].append({"name": name, "shape": list(out.shape)})
        print(name, out.shape)
    for name, nnets, picture, images, args in I2I_CASES:
        pipe = StableDiffusionXLControlNetImg2ImgPipeline.from_pretrained(
            BASE, controlnet=net if nnets == 1 else [net] * nnets, torch_dtype=torch.float32,
            add_watermarker=False)
        pipe.set_progress_bar_config(disable=True)
        call, gen = cn.with_generators(args)
        control = [pics[i] for i in images] if nnets > 1 else pics[images[0]]
        out = pipe(image=pics[picture], control_image=control, generator=gen, output_type="np",
                   **call).images
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        manifest["cases"].append({"name": name, "shape": list(out.shape)})
        print(name, out.shape)
    for name, model, picture, mask, control, args in INPAINT_CASES:
        pipe = StableDiffusionXLControlNetInpaintPipeline.from_pretrained(
            os.path.join(MODELS, model), controlnet=net, torch_dtype=torch.float32,
            add_watermarker=False)
        pipe.set_progress_bar_config(disable=True)
        call, gen = cn.with_generators(args)
        out = pipe(image=pics[picture], mask_image=pics[mask], control_image=pics[control],
                   generator=gen, output_type="np", **call).images
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        manifest["cases"].append({"name": name, "shape": list(out.shape)})
        print(name, out.shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
