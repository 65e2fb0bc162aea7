"""IP-Adapters on Stable Diffusion XL as diffusers 0.27.2 runs them, for
tests/lua/test_xl_ip_adapter.lua:

  - tests/models/tiny-ip-adapter-xl, laid out as h94/IP-Adapter's sdxl_models: an
    image_encoder (tiny-ip-adapter's tiny CLIPVisionModelWithProjection, copied) and two
    adapters for tiny-sdxl's UNet (cross-attention 64 wide, two transformer layers in its
    attention blocks, so 12 cross-attentions): ip-adapter_sdxl_tiny.safetensors
    (ImageProjection) and ip-adapter-plus_sdxl_tiny.bin (the Resampler, torch.save's nested
    dict);
  - runs on tiny-sdxl: each kind, a scale with two pictures per prompt and a negative
    prompt, no guidance, and StableDiffusionXLImg2ImgPipeline.

    .venv-torch/bin/python scripts/reference/make_xl_ip_adapter_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file

from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

import common
import make_ip_adapter_cases as ip

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
REPO = os.path.join(MODELS, "tiny-ip-adapter-xl")
BASE = os.path.join(MODELS, "tiny-sdxl")
OUT = os.path.join(ROOT, "tests", "reference", "xl_ip_adapter")
WEIGHTS = {"plain": "ip-adapter_sdxl_tiny.safetensors", "plus": "ip-adapter-plus_sdxl_tiny.bin"}

CASES = [
    ("xl_ip_plain", StableDiffusionXLPipeline, "plain", None, "face",
     dict(prompt="a cat on a bench", num_inference_steps=3, seed=1)),
    ("xl_ip_plus_batch", StableDiffusionXLPipeline, "plus", 0.6, "style",
     dict(prompt="a red door", negative_prompt="blurry", num_images_per_prompt=2,
          num_inference_steps=3, seed=2)),
    ("xl_ip_unguided", StableDiffusionXLPipeline, "plain", 0.8, "stripes",
     dict(prompt="a lighthouse", guidance_scale=1.0, num_inference_steps=3, seed=3)),
    ("xl_ip_img2img", StableDiffusionXLImg2ImgPipeline, "plus", None, "face",
     dict(prompt="a red door", image="sketch64", strength=0.6, num_inference_steps=4, seed=4)),
]


def make_repo():
    """tiny-sdxl's cross-attention widths, in unet.attn_processors' order, set the adapters'
    to_k_ip/to_v_ip sizes (ip.layers reads ip.INNER and ip.CROSS)."""
    pipe = StableDiffusionXLPipeline.from_pretrained(BASE)
    inner = []
    for name in pipe.unet.attn_processors:
        if name.endswith("attn2.processor"):
            attn = pipe.unet.get_submodule(name[:-len(".processor")])
            inner.append(attn.to_k.out_features)
    ip.INNER = inner
    ip.CROSS = pipe.unet.config.cross_attention_dim
    shutil.rmtree(REPO, ignore_errors=True)
    models = os.path.join(REPO, "sdxl_models")
    shutil.copytree(os.path.join(ip.REPO, "models", "image_encoder"),
                    os.path.join(models, "image_encoder"))
    gen = torch.Generator().manual_seed(41)
    save_file(ip.flat(ip.plain_adapter(gen)), os.path.join(models, WEIGHTS["plain"]))
    torch.save(ip.plus_adapter(gen), os.path.join(models, WEIGHTS["plus"]))
    return len(inner)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    ncross = make_repo()
    ip.OUT = OUT
    pics = ip.pictures()
    manifest = {"cross_attentions": ncross, "cases": []}
    for name, cls, kind, scale, picture, args in CASES:
        pipe = cls.from_pretrained(BASE, torch_dtype=torch.float32, add_watermarker=False)
        pipe.load_ip_adapter(REPO, subfolder="sdxl_models", weight_name=WEIGHTS[kind])
        if scale is not None:
            pipe.set_ip_adapter_scale(scale)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args)
        seed = call.pop("seed")
        if "image" in call:
            call["image"] = pics[call["image"]]
        else:
            call.update(height=64, width=64)
        out = pipe(ip_adapter_image=pics[picture], generator=torch.Generator().manual_seed(seed),
                   output_type="np", **call).images
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        manifest["cases"].append({"name": name, "kind": kind, "shape": list(out.shape)})
        print(name, out.shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
