"""Playground v2.5's layout (playgroundai/playground-v2.5-1024px-aesthetic) as diffusers 0.27.2
runs it, for tests/lua/test_playground.lua: an SDXL model whose scheduler is
EDMDPMSolverMultistepScheduler and whose VAE config carries latents_mean and latents_std, which
SDXL's pipelines use to denormalize the latents before decoding.

tests/models/tiny-playground is tiny-sdxl's weights (symbolic links, nothing copied) with
Playground v2.5's own model_index.json, scheduler config and VAE config (scaling_factor 0.5 and
its per-channel statistics, as published). Recorded (64x64, float32, seeded, np output):

  - txt2img with the model's own scheduler (DiffusionPipeline.from_pretrained, guidance 3 as
    its model card), and its latents (output_type "latent");
  - EDMEulerScheduler from that config; the SDE variant of the DPM-Solver (noise drawn at each
    step from the call's generator);
  - StableDiffusionXLImg2ImgPipeline from the same folder at strength 0.6.

    .venv-torch/bin/python scripts/reference/make_playground_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch

import diffusers
from diffusers import (DiffusionPipeline, EDMDPMSolverMultistepScheduler, EDMEulerScheduler,
                       StableDiffusionXLImg2ImgPipeline)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BASE = os.path.join(ROOT, "tests", "models", "tiny-sdxl")
MODEL = os.path.join(ROOT, "tests", "models", "tiny-playground")
OUT = os.path.join(ROOT, "tests", "reference", "playground")
PROMPT = "a cat in a field of flowers, playground"

# playgroundai/playground-v2.5-1024px-aesthetic's scheduler/scheduler_config.json
SCHEDULER = {
    "_class_name": "EDMDPMSolverMultistepScheduler",
    "_diffusers_version": "0.27.0.dev0",
    "algorithm_type": "dpmsolver++",
    "dynamic_thresholding_ratio": 0.995,
    "euler_at_final": False,
    "final_sigmas_type": "zero",
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "rho": 7.0,
    "sample_max_value": 1.0,
    "sigma_data": 0.5,
    "sigma_max": 80.0,
    "sigma_min": 0.002,
    "solver_order": 2,
    "solver_type": "midpoint",
    "thresholding": False,
}
# and its vae/config.json's statistics
LATENTS_MEAN = [-1.6574, 1.886, -1.383, 2.5155]
LATENTS_STD = [8.4927, 5.9022, 6.5498, 5.2299]


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def link(rel):
    """MODEL/rel -> the same path in BASE, as a relative link."""
    dst = os.path.join(MODEL, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.relpath(os.path.join(BASE, rel), os.path.dirname(dst)), dst)


def make_model():
    for part in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet"):
        link(part)
    link("vae/diffusion_pytorch_model.safetensors")
    with open(os.path.join(BASE, "model_index.json")) as f:
        index = json.load(f)
    index["scheduler"] = ["diffusers", "EDMDPMSolverMultistepScheduler"]
    write_json(os.path.join(MODEL, "model_index.json"), index)
    write_json(os.path.join(MODEL, "scheduler", "scheduler_config.json"), SCHEDULER)
    with open(os.path.join(BASE, "vae", "config.json")) as f:
        vae = json.load(f)
    vae.pop("_name_or_path", None)
    vae.update(latents_mean=LATENTS_MEAN, latents_std=LATENTS_STD, scaling_factor=0.5)
    write_json(os.path.join(MODEL, "vae", "config.json"), vae)


def main():
    torch.set_num_threads(1)
    make_model()
    os.makedirs(OUT, exist_ok=True)
    manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__},
                "prompt": PROMPT, "runs": []}

    def run(pipe, name, **kw):
        o = dict(prompt=PROMPT, num_inference_steps=5, guidance_scale=3.0, output_type="np",
                 generator=torch.Generator().manual_seed(7))
        if "image" not in kw:
            o.update(height=64, width=64)
        o.update(kw)
        out = pipe(**o).images
        arr = (out.numpy() if torch.is_tensor(out) else out).astype(np.float32)
        np.save(os.path.join(OUT, name + ".npy"), arr)
        manifest["runs"].append({"name": name, "scheduler": type(pipe.scheduler).__name__,
                                 "steps": o["num_inference_steps"],
                                 "timesteps": [float(t) for t in pipe.scheduler.timesteps],
                                 "shape": list(arr.shape)})

    pipe = DiffusionPipeline.from_pretrained(MODEL, torch_dtype=torch.float32,
                                             add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.scheduler, EDMDPMSolverMultistepScheduler)
    run(pipe, "txt2img")
    run(pipe, "txt2img_latents", output_type="latent")
    edm_config = dict(pipe.scheduler.config)
    pipe.scheduler = EDMEulerScheduler.from_config(edm_config)
    run(pipe, "euler", num_inference_steps=4)
    pipe.scheduler = EDMDPMSolverMultistepScheduler.from_config(
        edm_config, algorithm_type="sde-dpmsolver++")
    run(pipe, "sde", num_inference_steps=4)

    i2i = StableDiffusionXLImg2ImgPipeline.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                           add_watermarker=False)
    i2i.set_progress_bar_config(disable=True)
    init = common.sketch(64, 64)
    init.save(os.path.join(OUT, "init_image.png"))
    run(i2i, "img2img", image=init, strength=0.6, num_inference_steps=8)

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote %d runs to %s" % (len(manifest["runs"]), OUT))


if __name__ == "__main__":
    main()
