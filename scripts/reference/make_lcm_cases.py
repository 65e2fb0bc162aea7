"""Latent consistency models as diffusers 0.27.2 runs them (LatentConsistencyModelPipeline,
LCMScheduler, a UNet with time_cond_proj_dim), for tests/lua/test_lcm.lua:

  - tests/models/tiny-lcm: tiny-sd-a with its UNet given time_embedding.cond_proj (the
    guidance embedding's projection, 8 wide, random), LCMScheduler, model_index.json naming
    LatentConsistencyModelPipeline;
  - tests/models/tiny-lcm-lora: a LoRA for tiny-sd-a in the Kohya naming LCM-LoRA's file
    uses, on the modules its training targets (attention projections, proj_in/out, the
    feed-forward, the resnets' conv1/conv2/conv_shortcut/time_emb_proj, the down- and
    upsamplers), float16; and LCM-LoRA's run: tiny-sd-a, LCMScheduler, the LoRA, 4 steps,
    guidance 1;
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


LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                "ff.net.2", "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv",
                "upsamplers.0.conv", "time_emb_proj"]


def make_lora():
    """A LoRA shaped as latent-consistency/lcm-lora-sdv1-5's: Kohya keys with alphas."""
    from safetensors.torch import save_file
    out = os.path.join(MODELS, "tiny-lcm-lora")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, "tiny-sd-a", "unet"))
    g = torch.Generator().manual_seed(61)
    state = {}
    for name, mod in unet.named_modules():
        if not any(name.endswith(t) for t in LORA_TARGETS):
            continue
        if not isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        key = "lora_unet_" + name.replace(".", "_")
        if isinstance(mod, torch.nn.Linear):
            down = torch.randn(4, mod.in_features, generator=g) * 0.1
            up = torch.randn(mod.out_features, 4, generator=g) * 0.1
        else:
            down = torch.randn((4, mod.in_channels) + tuple(mod.kernel_size), generator=g) * 0.1
            up = torch.randn(mod.out_channels, 4, 1, 1, generator=g) * 0.1
        state[key + ".lora_down.weight"] = down.half()
        state[key + ".lora_up.weight"] = up.half()
        state[key + ".alpha"] = torch.tensor(8.0).half()
    save_file(state, os.path.join(out, "pytorch_lora_weights.safetensors"))
    print("wrote", out, len(state) // 3, "layers")
    return out


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
    # LCM-LoRA's way: a plain model, LCMScheduler, the LoRA, guidance 1
    lora_dir = make_lora()
    plain = StableDiffusionPipeline.from_pretrained(os.path.join(MODELS, "tiny-sd-a"),
                                                    safety_checker=None,
                                                    requires_safety_checker=False)
    plain.scheduler = LCMScheduler.from_config(plain.scheduler.config)
    plain.load_lora_weights(lora_dir)
    plain.set_progress_bar_config(disable=True)
    out = plain(prompt="a cat on a bench", num_inference_steps=4, guidance_scale=1.0,
                output_type="np", generator=torch.Generator().manual_seed(15))
    np.save(os.path.join(OUT, "lcm_lora.npy"), out.images.astype(np.float32))
    manifest["cases"].append({"name": "lcm_lora", "pipeline": "sd+lora", "seed": 15})
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
