"""Inpainting as diffusers 0.27.2 runs it (StableDiffusionInpaintPipeline), for
tests/lua/test_inpaint.lua:

  - tests/models/tiny-sd-inpaint: tiny-sd-b's components with a random UNet of 9 input
    channels (latents, the mask, the masked picture's latents), as
    runwayml/stable-diffusion-inpainting is laid out (model_index.json names
    StableDiffusionInpaintPipeline);
  - runs of it: strength 1 (noise, then the masked picture's encoding drawn from the
    generator), strength 0.75 (the picture's encoding, the noise, the masked picture's),
    a list of generators, two prompts, no guidance, a mask with grey levels (binarized at
    0.5 after the Lanczos resize and the conversion to L), pictures of another size than
    the run's (resized to it), DDIM and Euler;
  - runs of tiny-sd-a (a UNet of 4 channels, diffusers' legacy inpainting): after each
    step the kept region is the picture's latents noised to the next timestep; strength 1
    and 0.6, PNDM, Euler ancestral and DPM-Solver++;
  - output_type "np" images of each, and the pictures and masks given (PNG); one mask as
    the pipeline's mask_processor preprocesses it; a run given the picture and the mask as
    torch tensors;
  - tests/models/tiny-sd-inpaint-ldm.safetensors: tiny-sd-inpaint in the single-file LDM
    layout (make_checkpoint_cases.py's conversion, checked by converting it back with
    diffusers' own), for StableDiffusionInpaintPipeline.from_single_file.

    .venv-torch/bin/python scripts/reference/make_inpaint_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, StableDiffusionInpaintPipeline,
                       UNet2DConditionModel)

import common
import make_checkpoint_cases as ldm

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
MODEL9 = os.path.join(MODELS, "tiny-sd-inpaint")
OUT = os.path.join(ROOT, "tests", "reference", "inpaint")
SCHEDULERS = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler,
              "euler_a": EulerAncestralDiscreteScheduler, "dpm": DPMSolverMultistepScheduler}

# name, model, scheduler (None: the model's), picture, mask, call arguments
CASES = [
    ("in9_s1", "tiny-sd-inpaint", None, "sketch64", "box64",
     dict(prompt="a cat on a bench", num_images_per_prompt=2, num_inference_steps=4, height=32,
          width=48, seed=3)),
    ("in9_s075_gens", "tiny-sd-inpaint", "ddim", "sketch80x72", "grey80x72",
     dict(prompt=["a cat on a bench", "a red door"], negative_prompt=["blurry", "dark"],
          strength=0.75, num_inference_steps=6, height=64, width=64, seeds=[1, 2])),
    ("in9_noguide_euler", "tiny-sd-inpaint", "euler", "sketch64", "box64",
     dict(prompt="a lighthouse", guidance_scale=1.0, num_inference_steps=5, strength=0.9,
          seed=9)),
    ("in4_s1", "tiny-sd-a", None, "sketch128", "box128",
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=5)),
    ("in4_s06_euler_a", "tiny-sd-a", "euler_a", "sketch128", "grey128",
     dict(prompt="a red door", strength=0.6, num_images_per_prompt=2, num_inference_steps=6,
          seed=7)),
    ("in4_s08_dpm", "tiny-sd-a", "dpm", "sketch96", "box96",
     dict(prompt="a lighthouse", strength=0.8, num_inference_steps=5, height=128, width=128,
          seed=11)),
]


def make_model9():
    if os.path.exists(MODEL9):
        shutil.rmtree(MODEL9)
    base = os.path.join(MODELS, "tiny-sd-b")
    shutil.copytree(base, MODEL9)
    config = dict(UNet2DConditionModel.load_config(os.path.join(base, "unet")))
    config["in_channels"] = 9
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(config)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    shutil.rmtree(os.path.join(MODEL9, "unet"))
    unet.to(torch.float16).save_pretrained(os.path.join(MODEL9, "unet"), safe_serialization=True)
    path = os.path.join(MODEL9, "model_index.json")
    with open(path) as fh:
        index = json.load(fh)
    index["_class_name"] = "StableDiffusionInpaintPipeline"
    with open(path, "w") as fh:
        json.dump(index, fh, indent=2, sort_keys=True)


def make_single_file():
    """tiny-sd-inpaint as make_checkpoint_cases.py writes tiny-sd-b (its OpenCLIP text
    encoder included)."""
    pipe = StableDiffusionInpaintPipeline.from_pretrained(MODEL9, torch_dtype=torch.float16,
                                                          safety_checker=None,
                                                          requires_safety_checker=False)
    gen = torch.Generator().manual_seed(5)
    nlayers = pipe.text_encoder.config.num_hidden_layers
    sd = ldm.unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config)
    sd.update(ldm.vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    sd.update(ldm.clip_to_openclip(pipe.text_encoder.state_dict(), nlayers, gen))
    ldm.check_unet_vae(sd, pipe)
    ldm.check_openclip(sd, MODEL9, pipe, nlayers)
    path = os.path.join(MODELS, "tiny-sd-inpaint-ldm.safetensors")
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    print("wrote", path, len(sd), "tensors")


def pictures():
    """The pictures and masks the cases use, saved beside the references."""
    out = {}
    for side in (64, 96, 128):
        out["sketch%d" % side] = common.sketch(side, side)
        box = Image.new("RGB", (side, side))
        ImageDraw.Draw(box).rectangle([side // 4, side // 3, side * 3 // 4 - 1, side - 9],
                                      fill=(255, 255, 255))
        out["box%d" % side] = box
    out["sketch80x72"] = common.sketch(80, 72, 0.2)
    for name, (w, h) in {"grey80x72": (80, 72), "grey128": (128, 128)}.items():
        y, x = np.mgrid[0:h, 0:w]
        # a ramp across the 0.5 threshold with a soft-edged disc: L values of every level
        v = (x / (w - 1) * 160 + 60 * np.exp(-((x - w / 2) ** 2 + (y - h / 2) ** 2) / (w * 3)))
        out[name] = Image.fromarray(v.clip(0, 255).astype(np.uint8), "L")
    for name, img in out.items():
        img.save(os.path.join(OUT, name + ".png"))
    return out


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_model9()
    make_single_file()
    pics = pictures()
    manifest = {"cases": []}
    for name, model, sched, image, mask, args in CASES:
        pipe = StableDiffusionInpaintPipeline.from_pretrained(os.path.join(MODELS, model),
                                                              torch_dtype=torch.float32,
                                                              safety_checker=None,
                                                              requires_safety_checker=False)
        if sched:
            pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args)
        if "seeds" in call:
            gen = [torch.Generator().manual_seed(s) for s in call.pop("seeds")]
        else:
            gen = torch.Generator().manual_seed(call.pop("seed"))
        out = pipe(image=pics[image], mask_image=pics[mask], generator=gen, output_type="np",
                   **call)
        np.save(os.path.join(OUT, name + ".npy"), out.images.astype(np.float32))
        entry = {"name": name, "model": model, "scheduler": sched, "image": image, "mask": mask}
        entry.update(args)
        manifest["cases"].append(entry)
        print(name, out.images.shape)
    # the picture and the mask as torch tensors: (1, 3, H, W) in [0, 1] and (H, W), both of
    # another size than the run's (F.interpolate's nearest resize)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(MODEL9, torch_dtype=torch.float32,
                                                          safety_checker=None,
                                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    image_t = torch.from_numpy(np.array(pics["sketch80x72"])).permute(2, 0, 1)[None].float() / 255
    mask_t = torch.zeros(72, 80)
    mask_t[20:50, 10:44] = 1.0
    mask_t[0:5, :] = 0.7
    np.save(os.path.join(OUT, "tensor_image.npy"), image_t.numpy())
    np.save(os.path.join(OUT, "tensor_mask.npy"), mask_t.numpy())
    out = pipe(prompt="a cat on a bench", image=image_t, mask_image=mask_t, height=64, width=64,
               strength=0.8, num_inference_steps=4, output_type="np",
               generator=torch.Generator().manual_seed(21))
    np.save(os.path.join(OUT, "in9_tensors.npy"), out.images.astype(np.float32))
    manifest["cases"].append({"name": "in9_tensors", "model": "tiny-sd-inpaint", "seed": 21,
                              "strength": 0.8, "height": 64, "width": 64})
    # the mask as the pipeline's mask_processor makes it (before the latents' resize)
    mask = pipe.mask_processor.preprocess(pics["grey80x72"], height=64, width=64)
    np.save(os.path.join(OUT, "mask_grey80x72_64.npy"), mask.numpy().astype(np.float32))
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
