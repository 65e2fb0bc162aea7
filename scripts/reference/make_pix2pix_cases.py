"""InstructPix2Pix as diffusers 0.27.2 runs it (StableDiffusionInstructPix2PixPipeline), for
tests/lua/test_pix2pix.lua:

  - tests/models/tiny-pix2pix: tiny-sd-a with an 8-channel UNet (conv_in widened, the new
    input channels random, as the InstructPix2Pix training starts), model_index.json naming
    StableDiffusionInstructPix2PixPipeline;
  - runs: the defaults' guidance (7.5 and 1.5) with few steps, another image guidance and
    Euler ancestral with generators, two prompts and images per prompt, no guidance (image
    guidance below 1), a picture of another size, latents out.

    .venv-torch/bin/python scripts/reference/make_pix2pix_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch

from diffusers import (EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline,
                       StableDiffusionPipeline, UNet2DConditionModel)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
MODEL = os.path.join(MODELS, "tiny-pix2pix")
OUT = os.path.join(ROOT, "tests", "reference", "pix2pix")

CASES = [
    ("p2p_defaults", None, dict(prompt="turn it into a cat", image="sketch64",
                                num_inference_steps=5, seed=1)),
    ("p2p_euler_a_gens", "euler_a", dict(prompt="make it snow", image="sketch64",
                                         num_inference_steps=4, image_guidance_scale=2.0,
                                         guidance_scale=5.0, num_images_per_prompt=2,
                                         seeds=[2, 3])),
    ("p2p_prompts", None, dict(prompt=["turn it into a cat", "make it snow"], image="sketch80x72",
                               negative_prompt=["blurry", "dark"], num_images_per_prompt=2,
                               num_inference_steps=3, seed=4)),
    ("p2p_unguided", None, dict(prompt="make it snow", image="sketch64", image_guidance_scale=0.8,
                                num_inference_steps=4, seed=5)),
    ("p2p_latent", None, dict(prompt="turn it into a cat", image="sketch64", output_type="latent",
                              num_inference_steps=3, seed=6)),
]


def make_model():
    if os.path.exists(MODEL):
        shutil.rmtree(MODEL)
    src = StableDiffusionPipeline.from_pretrained(os.path.join(MODELS, "tiny-sd-a"),
                                                  safety_checker=None,
                                                  requires_safety_checker=False)
    config = dict(src.unet.config)
    config.pop("_use_default_values", None)
    config["in_channels"] = 8
    unet = UNet2DConditionModel.from_config(config)
    state = src.unet.state_dict()
    w = state["conv_in.weight"]
    torch.manual_seed(51)
    state["conv_in.weight"] = torch.cat([w, torch.randn_like(w) * 0.1], dim=1)
    unet.load_state_dict(state)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=src.vae, text_encoder=src.text_encoder, tokenizer=src.tokenizer, unet=unet,
        scheduler=src.scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(MODEL, safe_serialization=True)
    print("wrote", MODEL)


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_model()
    pics = {"sketch64": common.sketch(64, 64), "sketch80x72": common.sketch(80, 72, 0.2)}
    for name, img in pics.items():
        img.save(os.path.join(OUT, name + ".png"))
    manifest = {"cases": []}
    for name, sched, args in CASES:
        pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
            MODEL, safety_checker=None, requires_safety_checker=False)
        if sched:
            pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args)
        gen = ([torch.Generator().manual_seed(s) for s in call.pop("seeds")] if "seeds" in call
               else torch.Generator().manual_seed(call.pop("seed")))
        call["image"] = pics[call["image"]]
        out_type = call.pop("output_type", "np")
        out = pipe(generator=gen, output_type=out_type, **call)
        images = out.images.numpy() if out_type == "latent" else out.images
        np.save(os.path.join(OUT, name + ".npy"), np.asarray(images, dtype=np.float32))
        entry = {"name": name, "scheduler": sched}
        entry.update(args)
        manifest["cases"].append(entry)
        print(name, np.asarray(images).shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
