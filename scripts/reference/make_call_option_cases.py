"""Reference runs for the pipelines' call options beyond the plain ones:
prompt_embeds, negative_prompt_embeds, guidance_rescale and DDIM's eta, as diffusers
0.27.2 computes them (encode_prompt, rescale_noise_cfg and prepare_extra_step_kwargs
in pipelines/stable_diffusion/pipeline_stable_diffusion*.py).

    .venv-torch/bin/python scripts/reference/make_call_option_cases.py

Uses the committed tiny models (tests/models/tiny-sd-a and tiny-sd-b, made by
make_tiny_models.py, not changed here) and writes tests/reference/call_options/:
for each model and case, the embeddings given to the pipeline (<model>_<case>_*.npy,
float32 as the text encoder made them, then mixed or scaled as a notebook would) and
the run's output_type="np" images (<model>_<case>_images.npy), with manifest.json
saying what each file is and the arguments. Everything is seeded, so a rerun writes
the same files.

Each case shows what it checks: embeddings that no prompt makes (a mix of two, a
scaled one) so a pipeline that re-encodes text fails; a short sequence (16 tokens),
for which the empty or given negative prompt is tokenized to that length; negative
embeddings with text prompts; guidance_rescale, checked to change the picture; eta,
whose noise each step draws from the generator (or from each of a list).
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import diffusers
from diffusers import (DDIMScheduler, DDPMScheduler, DEISMultistepScheduler,
                       DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       HeunDiscreteScheduler, KDPM2AncestralDiscreteScheduler,
                       KDPM2DiscreteScheduler, LCMScheduler, PNDMScheduler,
                       StableDiffusionImg2ImgPipeline, StableDiffusionPipeline,
                       UniPCMultistepScheduler)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = ["tiny-sd-a", "tiny-sd-b"]
SCHEDULERS = {c.__name__: c for c in (PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler,
                                      EulerAncestralDiscreteScheduler,
                                      DPMSolverMultistepScheduler, UniPCMultistepScheduler,
                                      HeunDiscreteScheduler, DDPMScheduler, KDPM2DiscreteScheduler,
                                      KDPM2AncestralDiscreteScheduler, DEISMultistepScheduler,
                                      DPMSolverSinglestepScheduler, LCMScheduler)}

# Embeddings are written as recipes, so tests/lua/test_call_options.lua can say what
# each is: ("mix", text_a, text_b, weight_a) = w * E(a) + (1 - w) * E(b);
# ("scaled", texts, factor); ("short", text, tokens) = E(text)[:, :tokens].
# (name, kind, arguments, embeddings, scheduler, seed); arguments other than the
# embeddings pass through unchanged.
CASES = [
    ("t2i_mix_n2", "txt2img", dict(num_images_per_prompt=2, num_inference_steps=6),
     dict(prompt_embeds=("mix", "a cat", "a dog", 0.6)), "DDIMScheduler", 1),
    ("t2i_both_list", "txt2img", dict(num_inference_steps=5),
     dict(prompt_embeds=("scaled", ["a red cube", "a lake"], 1.0),
          negative_prompt_embeds=("scaled", ["blurry", "dark"], 0.9)), "PNDMScheduler", 2),
    ("t2i_short_neg_text", "txt2img", dict(negative_prompt="ugly", num_inference_steps=5),
     dict(prompt_embeds=("short", "an astronaut riding a horse", 16)), "EulerDiscreteScheduler", 3),
    ("t2i_short_empty_neg", "txt2img", dict(num_inference_steps=4),
     dict(prompt_embeds=("short", "a castle", 12)), "DDIMScheduler", 4),
    ("t2i_text_neg_embeds", "txt2img", dict(prompt="a cat", num_inference_steps=6),
     dict(negative_prompt_embeds=("scaled", ["a dog"], 1.2)), "DPMSolverMultistepScheduler", 5),
    ("t2i_noguidance", "txt2img", dict(guidance_scale=1.0, num_inference_steps=5),
     dict(prompt_embeds=("scaled", ["a lake at dawn"], 1.1),
          negative_prompt_embeds=("scaled", ["a desert"], 1.0)), "PNDMScheduler", 6),
    ("t2i_rescale_n2", "txt2img", dict(prompt="a photograph", guidance_rescale=0.7, guidance_scale=9.0,
                                       num_images_per_prompt=2, num_inference_steps=6),
     dict(), "EulerAncestralDiscreteScheduler", 7),
    ("t2i_rescale_full", "txt2img", dict(prompt=["a cat", "a dog"], negative_prompt=["ugly", "dark"],
                                         guidance_rescale=1.0, num_inference_steps=5),
     dict(), "DDIMScheduler", 8),
    ("i2i_embeds", "img2img", dict(negative_prompt="blurry", strength=0.7, num_inference_steps=8),
     dict(prompt_embeds=("scaled", ["a sketch"], 1.05)), "PNDMScheduler", 9),
    ("t2i_eta1_n2", "txt2img", dict(prompt="a cat", eta=1.0, num_images_per_prompt=2,
                                    num_inference_steps=6), dict(), "DDIMScheduler", 10),
    ("t2i_eta05_gens", "txt2img", dict(prompt=["a cat", "a dog"], eta=0.5, num_inference_steps=5),
     dict(), "DDIMScheduler", [11, 12]),
    ("i2i_eta1", "img2img", dict(prompt="a sketch", eta=1.0, strength=0.8, num_inference_steps=6),
     dict(), "DDIMScheduler", 13),
    ("t2i_unipc", "txt2img", dict(prompt="a cat", num_inference_steps=6), dict(),
     "UniPCMultistepScheduler", 14),
    ("t2i_heun", "txt2img", dict(prompt="a cat", num_inference_steps=5), dict(),
     "HeunDiscreteScheduler", 15),
    ("i2i_heun", "img2img", dict(prompt="a sketch", strength=0.7, num_inference_steps=6), dict(),
     "HeunDiscreteScheduler", 16),
    ("t2i_ddpm", "txt2img", dict(prompt="a cat", num_inference_steps=6), dict(),
     "DDPMScheduler", 17),
    # tiny-sd-b's text encoder has 2 layers: clip_skip=2 takes the embeddings' output
    ("t2i_clip_skip_2", "txt2img", dict(prompt="a cat", clip_skip=2, num_inference_steps=4),
     dict(), "EulerDiscreteScheduler", 18),
    # custom timesteps (retrieve_timesteps), which DDPM alone takes among these
    ("t2i_ddpm_timesteps", "txt2img", dict(prompt="a cat", timesteps=[999, 800, 601, 400, 250, 90, 3]),
     dict(), "DDPMScheduler", 19),
    ("i2i_ddpm_timesteps", "img2img", dict(prompt="a sketch", strength=0.6,
                                           timesteps=[950, 700, 420, 200, 50]),
     dict(), "DDPMScheduler", 20),
    ("t2i_kdpm2", "txt2img", dict(prompt="a cat", num_inference_steps=5), dict(),
     "KDPM2DiscreteScheduler", 21),
    ("i2i_kdpm2", "img2img", dict(prompt="a sketch", strength=0.7, num_inference_steps=6), dict(),
     "KDPM2DiscreteScheduler", 22),
    ("t2i_kdpm2_a_n2", "txt2img", dict(prompt="a cat", num_inference_steps=5, num_images_per_prompt=2),
     dict(), "KDPM2AncestralDiscreteScheduler", 23),
    ("t2i_kdpm2_a_gens", "txt2img", dict(prompt=["a cat", "a dog"], num_inference_steps=4), dict(),
     "KDPM2AncestralDiscreteScheduler", [24, 25]),
    ("i2i_kdpm2_a", "img2img", dict(prompt="a sketch", strength=0.7, num_inference_steps=6), dict(),
     "KDPM2AncestralDiscreteScheduler", 26),
    ("t2i_deis", "txt2img", dict(prompt="a cat", num_inference_steps=6), dict(),
     "DEISMultistepScheduler", 27),
    ("i2i_deis", "img2img", dict(prompt="a sketch", strength=0.75, num_inference_steps=8), dict(),
     "DEISMultistepScheduler", 28),
    ("t2i_dpm_single", "txt2img", dict(prompt="a cat", num_inference_steps=7), dict(),
     "DPMSolverSinglestepScheduler", 29),
    ("i2i_dpm_single", "img2img", dict(prompt="a sketch", strength=0.7, num_inference_steps=9), dict(),
     "DPMSolverSinglestepScheduler", 30),
    # LCM (as LCM-LoRA notebooks run it: few steps, guidance 1 to 2), noise each step but the last
    ("t2i_lcm", "txt2img", dict(prompt="a cat", num_inference_steps=4, guidance_scale=1.0), dict(),
     "LCMScheduler", 31),
    ("t2i_lcm_gens", "txt2img", dict(prompt=["a cat", "a dog"], num_inference_steps=3,
                                     guidance_scale=1.5), dict(), "LCMScheduler", [32, 33]),
    ("i2i_lcm", "img2img", dict(prompt="a sketch", strength=0.6, num_inference_steps=5,
                                guidance_scale=1.0), dict(), "LCMScheduler", 34),
    ("t2i_lcm_timesteps", "txt2img", dict(prompt="a cat", timesteps=[999, 759, 499, 259],
                                          guidance_scale=1.0), dict(), "LCMScheduler", 35),
    # int(10 * 0.9) is 9 in Python's floats (8 in float32's)
    ("i2i_strength09", "img2img", dict(prompt="a sketch", strength=0.9, num_inference_steps=10),
     dict(), "DDIMScheduler", 36),
]


def init_image(side):
    """make_tiny_models.py's sketch-like picture."""
    return common.sketch(side, side)


def encode(pipe, texts):
    """What a notebook gets from pipe.text_encoder(tokenizer(...).input_ids)[0]."""
    ids = pipe.tokenizer(texts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def make_embeds(pipe, recipe):
    kind = recipe[0]
    if kind == "mix":
        _, a, b, w = recipe
        return w * encode(pipe, [a]) + (1 - w) * encode(pipe, [b])
    if kind == "scaled":
        _, texts, factor = recipe
        return encode(pipe, texts) * factor
    if kind == "short":
        _, text, tokens = recipe
        return encode(pipe, [text])[:, :tokens].contiguous()
    sys.exit(f"unknown recipe {recipe}")


def generator(seed):
    """One seeded generator, or a list of them for a list of seeds."""
    if isinstance(seed, list):
        return [torch.Generator().manual_seed(s) for s in seed]
    return torch.Generator().manual_seed(seed)


def main():
    torch.set_num_threads(2)
    out_dir = os.path.join(ROOT, "tests", "reference", "call_options")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                              "numpy": np.__version__},
                "models": MODELS, "files": {}, "cases": []}

    def save(key, tensor, what):
        a = tensor.detach().cpu().numpy() if torch.is_tensor(tensor) else np.asarray(tensor)
        if not np.isfinite(a).all():
            sys.exit(f"{key}: the reference holds NaN or infinity")
        np.save(os.path.join(out_dir, key + ".npy"), a.astype(np.float32))
        manifest["files"][key] = dict(what=what, shape=list(a.shape))

    for model in MODELS:
        path = os.path.join(ROOT, "tests", "models", model)
        for name, kind, args, embeds, sched, seed in CASES:
            cls = StableDiffusionPipeline if kind == "txt2img" else StableDiffusionImg2ImgPipeline
            pipe = cls.from_pretrained(path, torch_dtype=torch.float32, safety_checker=None,
                                       requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
            call = dict(args, output_type="np")
            for key, recipe in embeds.items():
                call[key] = make_embeds(pipe, recipe)
                save(f"{model}_{name}_{key}", call[key], f"{key} given to the pipeline: {recipe}")
            if kind == "img2img":
                side = pipe.unet.config.sample_size * pipe.vae_scale_factor
                call["image"] = init_image(side)
            with torch.no_grad():
                images = pipe(**call, generator=generator(seed)).images
                if call.get("guidance_rescale"):
                    plain = dict(call, guidance_rescale=0.0)
                    other = pipe(**plain, generator=generator(seed)).images
                    if np.abs(images - other).max() < 1e-3:
                        sys.exit(f"{model} {name}: guidance_rescale changed nothing")
            save(f"{model}_{name}_images", images, f"{kind} output_type='np' (B, H, W, 3)")
            if model == MODELS[0]:
                manifest["cases"].append(dict(name=name, kind=kind, args=args, scheduler=sched,
                                              seed=seed, embeds={k: list(v) for k, v in embeds.items()}))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(out_dir)


if __name__ == "__main__":
    main()
