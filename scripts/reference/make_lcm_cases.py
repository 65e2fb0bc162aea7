"""Latent consistency models as diffusers 0.27.2 runs them (LatentConsistencyModelPipeline,
LCMScheduler, a UNet with time_cond_proj_dim), for tests/lua/test_lcm.lua:

  - tests/models/tiny-lcm: tiny-sd-a with its UNet given time_embedding.cond_proj (the
    guidance embedding's projection, 8 wide, random), LCMScheduler, model_index.json naming
    LatentConsistencyModelPipeline;
  - the UNet called with a timestep_cond;
  - pipeline runs: the defaults (4 steps, guidance 8.5), a batch of prompts with images per
    prompt and generators, original_inference_steps, custom timesteps, output_type "latent";
    StableDiffusionPipeline on the same model (the embedding given, guidance off); and
    LatentConsistencyModelImg2ImgPipeline (strength cutting the LCM schedule, a batch,
    custom timesteps cut by strength).

    .venv-torch/bin/python scripts/reference/make_lcm_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch

from diffusers import (LatentConsistencyModelImg2ImgPipeline, LatentConsistencyModelPipeline,
                       LCMScheduler, StableDiffusionPipeline, UNet2DConditionModel)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
MODEL = os.path.join(MODELS, "tiny-lcm")
OUT = os.path.join(ROOT, "tests", "reference", "lcm")

CASES = [
    ("lcm_defaults", "lcm", dict(prompt="a cat on a bench", seed=1)),
    ("lcm_batch_original", "lcm", dict(prompt=["a lighthouse", "a red door"],
                                       num_images_per_prompt=2, num_inference_steps=3,
                                       original_inference_steps=20, guidance_scale=5.0,
                                       seeds=[2, 3, 4, 5])),
    ("lcm_timesteps", "lcm", dict(prompt="a lighthouse", timesteps=[999, 599, 199],
                                  guidance_scale=3.0, seed=6)),
    ("lcm_latent", "lcm", dict(prompt="a red door", num_inference_steps=2, output_type="latent",
                               seed=7)),
    ("lcm_sd_pipeline", "sd", dict(prompt="a cat on a bench", num_inference_steps=4,
                                   guidance_scale=7.5, seed=8)),
    # img2img: strength cuts the LCM schedule itself (int(original * strength) steps)
    ("lcm_i2i_defaults", "i2i", dict(prompt="a red door", image="sketch64", seed=9)),
    ("lcm_i2i_batch", "i2i", dict(prompt=["a lighthouse", "a cat on a bench"], image="sketch80x72",
                                  num_images_per_prompt=2, strength=0.5, num_inference_steps=3,
                                  original_inference_steps=30, guidance_scale=4.0,
                                  seeds=[10, 11, 12, 13])),
    ("lcm_i2i_timesteps", "i2i", dict(prompt="a red door", image="sketch64",
                                      timesteps=[999, 759, 499, 259], strength=0.5, seed=14)),
]


def make_model():
    if os.path.exists(MODEL):
        shutil.rmtree(MODEL)
    base = os.path.join(MODELS, "tiny-sd-a")
    src = StableDiffusionPipeline.from_pretrained(base, safety_checker=None,
                                                  requires_safety_checker=False)
    config = dict(src.unet.config)
    config.pop("_use_default_values", None)
    config["time_cond_proj_dim"] = 8
    torch.manual_seed(41)  # cond_proj's initial weights
    unet = UNet2DConditionModel.from_config(config)
    missing, unexpected = unet.load_state_dict(src.unet.state_dict(), strict=False)
    assert missing == ["time_embedding.cond_proj.weight"] and not unexpected, (missing, unexpected)
    with torch.no_grad():
        unet.time_embedding.cond_proj.weight.mul_(3.0)  # so that the guidance shows
    pipe = LatentConsistencyModelPipeline(
        vae=src.vae, text_encoder=src.text_encoder, tokenizer=src.tokenizer, unet=unet,
        scheduler=LCMScheduler.from_config(src.scheduler.config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(MODEL, safe_serialization=True)
    print("wrote", MODEL)


def generators(call):
    if "seeds" in call:
        return [torch.Generator().manual_seed(s) for s in call.pop("seeds")]
    return torch.Generator().manual_seed(call.pop("seed"))


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_model()
    lcm = LatentConsistencyModelPipeline.from_pretrained(MODEL, safety_checker=None,
                                                         requires_safety_checker=False)
    lcm.set_progress_bar_config(disable=True)
    sd = StableDiffusionPipeline(**lcm.components, requires_safety_checker=False)
    sd.set_progress_bar_config(disable=True)
    i2i = LatentConsistencyModelImg2ImgPipeline(**lcm.components, requires_safety_checker=False)
    i2i.set_progress_bar_config(disable=True)
    pics = {"sketch64": common.sketch(64, 64), "sketch80x72": common.sketch(80, 72, 0.2)}
    for name, img in pics.items():
        img.save(os.path.join(OUT, name + ".png"))
    manifest = {"cases": []}
    for name, kind, args in CASES:
        call = dict(args)
        gen = generators(call)
        out_type = call.pop("output_type", "np")
        if "image" in call:
            call["image"] = pics[call["image"]]
        pipe = {"lcm": lcm, "sd": sd, "i2i": i2i}[kind]
        out = pipe(generator=gen, output_type=out_type, **call)
        images = out.images if out_type != "latent" else out.images.numpy()
        np.save(os.path.join(OUT, name + ".npy"), np.asarray(images, dtype=np.float32))
        entry = {"name": name, "pipeline": kind}
        entry.update(args)
        manifest["cases"].append(entry)
        print(name, np.asarray(images).shape)
    # the UNet with a timestep_cond (the guidance embedding of w = 2.5)
    gen = torch.Generator().manual_seed(40)
    sample = torch.randn(2, 4, 16, 16, generator=gen)
    ehs = torch.randn(2, 7, 32, generator=gen)
    w = torch.tensor([2.5, 2.5])
    cond = lcm.get_guidance_scale_embedding(w, embedding_dim=8)
    with torch.no_grad():
        pred = lcm.unet(sample, 501, encoder_hidden_states=ehs, timestep_cond=cond).sample
    for key, t in (("sample", sample), ("ehs", ehs), ("cond", cond), ("unet", pred)):
        np.save(os.path.join(OUT, "call_%s.npy" % key), t.numpy())
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
