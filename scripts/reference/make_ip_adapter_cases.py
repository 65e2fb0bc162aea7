"""IP-Adapters as diffusers 0.27.2 loads and runs them (IPAdapterMixin.load_ip_adapter,
set_ip_adapter_scale, the pipelines' ip_adapter_image and ip_adapter_image_embeds), for
tests/lua/test_ip_adapter.lua:

  - tests/models/tiny-ip-adapter, laid out as h94/IP-Adapter: models/image_encoder (a tiny
    CLIPVisionModelWithProjection taking CLIPImageProcessor()'s 224 x 224 pictures in
    patches of 14, so 257 tokens) and three adapters for tiny-sd-a's UNet under their
    original names: ip-adapter_tiny.safetensors (ImageProjection), ip-adapter-plus_tiny.bin
    (the Resampler; a torch.save of the nested {"image_proj", "ip_adapter"} dict) and
    ip-adapter-full-face_tiny.safetensors (IPAdapterFullImageProjection);
  - prepare_ip_adapter_image_embeds of each (the image encoder's output: image_embeds, or
    hidden_states[-2], with the negatives);
  - runs: each kind, a scale, a batch with generators, no guidance, two adapters with
    their own scales, two pictures for one adapter, two prompts (the picture's embeddings
    stacked for the whole batch), given embeddings (one row a half, repeated for the
    batch), img2img, and a ControlNet with an adapter; the UNet called with added_cond_kwargs' image_embeds.

    .venv-torch/bin/python scripts/reference/make_ip_adapter_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from diffusers import (ControlNetModel, DDIMScheduler, StableDiffusionControlNetPipeline,
                       StableDiffusionImg2ImgPipeline, StableDiffusionPipeline)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
REPO = os.path.join(MODELS, "tiny-ip-adapter")
OUT = os.path.join(ROOT, "tests", "reference", "ip_adapter")
BASE = os.path.join(MODELS, "tiny-sd-a")

ENCODER = dict(hidden_size=40, intermediate_size=64, num_attention_heads=4,
               num_hidden_layers=3, image_size=224, patch_size=14, projection_dim=24,
               hidden_act="gelu")
CROSS = 32                           # tiny-sd-a's cross_attention_dim
INNER = [32, 32, 32, 32, 32, 64]     # its cross-attentions: down, up, mid
WEIGHTS = {"plain": "ip-adapter_tiny.safetensors", "plus": "ip-adapter-plus_tiny.bin",
           "full": "ip-adapter-full-face_tiny.safetensors"}


def randn(gen, *shape, scale=0.1):
    return (torch.randn(*shape, generator=gen) * scale).contiguous()


def norm(gen, n):
    return 1 + randn(gen, n), randn(gen, n)


def layers(gen):
    return {"%d.to_%s_ip.weight" % (2 * i + 1, kv): randn(gen, inner, CROSS, scale=0.3)
            for i, inner in enumerate(INNER) for kv in "kv"}


def plain_adapter(gen):
    E = ENCODER["projection_dim"]
    w, b = norm(gen, CROSS)
    proj = {"proj.weight": randn(gen, 4 * CROSS, E, scale=0.3), "proj.bias": randn(gen, 4 * CROSS),
            "norm.weight": w, "norm.bias": b}
    return {"image_proj": proj, "ip_adapter": layers(gen)}


def plus_adapter(gen, queries=6, hidden=48):
    E = ENCODER["hidden_size"]
    proj = {"latents": randn(gen, 1, queries, hidden, scale=1 / hidden ** 0.5),
            "proj_in.weight": randn(gen, hidden, E, scale=0.2), "proj_in.bias": randn(gen, hidden),
            "proj_out.weight": randn(gen, CROSS, hidden, scale=0.2),
            "proj_out.bias": randn(gen, CROSS)}
    proj["norm_out.weight"], proj["norm_out.bias"] = norm(gen, CROSS)
    for i in range(4):
        p = "layers.%d." % i
        proj[p + "0.norm1.weight"], proj[p + "0.norm1.bias"] = norm(gen, hidden)
        proj[p + "0.norm2.weight"], proj[p + "0.norm2.bias"] = norm(gen, hidden)
        proj[p + "0.to_q.weight"] = randn(gen, 64, hidden, scale=0.2)
        proj[p + "0.to_kv.weight"] = randn(gen, 128, hidden, scale=0.2)
        proj[p + "0.to_out.weight"] = randn(gen, hidden, 64, scale=0.2)
        proj[p + "1.0.weight"], proj[p + "1.0.bias"] = norm(gen, hidden)
        proj[p + "1.1.weight"] = randn(gen, 4 * hidden, hidden, scale=0.2)
        proj[p + "1.3.weight"] = randn(gen, hidden, 4 * hidden, scale=0.2)
    return {"image_proj": proj, "ip_adapter": layers(gen)}


def full_adapter(gen):
    E = ENCODER["hidden_size"]
    proj = {"proj.0.weight": randn(gen, E, E, scale=0.2), "proj.0.bias": randn(gen, E),
            "proj.2.weight": randn(gen, CROSS, E, scale=0.2), "proj.2.bias": randn(gen, CROSS)}
    proj["proj.3.weight"], proj["proj.3.bias"] = norm(gen, CROSS)
    return {"image_proj": proj, "ip_adapter": layers(gen)}


def flat(state):
    return {"%s.%s" % (part, k): v for part, d in state.items() for k, v in d.items()}


def make_repo():
    if os.path.exists(REPO):
        shutil.rmtree(REPO)
    models = os.path.join(REPO, "models")
    torch.manual_seed(31)
    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(**ENCODER))
    enc.save_pretrained(os.path.join(models, "image_encoder"), safe_serialization=True)
    gen = torch.Generator().manual_seed(32)
    save_file(flat(plain_adapter(gen)), os.path.join(models, WEIGHTS["plain"]))
    torch.save(plus_adapter(gen), os.path.join(models, WEIGHTS["plus"]))
    save_file(flat(full_adapter(gen)), os.path.join(models, WEIGHTS["full"]))
    print("wrote", REPO)


def pictures():
    from PIL import Image
    out = {"face": common.sketch(96, 80, 0.15), "style": common.sketch(64, 64, 0.35),
           "sketch64": common.sketch(64, 64)}
    y, x = np.mgrid[0:120, 0:100]
    out["stripes"] = Image.fromarray(((np.sin(x / 5.0 + y / 9.0) > 0) * 200 + 30)
                                     .astype(np.uint8), "L")
    for name, img in out.items():
        img.save(os.path.join(OUT, name + ".png"))
    return out


def load(pipe, kinds):
    names = [WEIGHTS[k] for k in kinds]
    pipe.load_ip_adapter(REPO, subfolder="models",
                         weight_name=names[0] if len(names) == 1 else names)


# name, pipeline, adapters, scale (None: untouched), ip pictures, scheduler, call arguments
CASES = [
    ("ip_plain", "txt2img", ["plain"], None, ["face"], None,
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=1)),
    ("ip_plain_scale_batch", "txt2img", ["plain"], 0.6, ["style"], "ddim",
     dict(prompt="a red door", negative_prompt="blurry", num_images_per_prompt=2,
          num_inference_steps=5, seeds=[2, 3])),
    ("ip_plus", "txt2img", ["plus"], None, ["face"], None,
     dict(prompt="a lighthouse", num_inference_steps=4, seed=4)),
    ("ip_full_unguided", "txt2img", ["full"], 0.8, ["stripes"], None,
     dict(prompt="a lighthouse", guidance_scale=1.0, num_inference_steps=4, seed=5)),
    ("ip_two_adapters", "txt2img", ["plain", "plus"], [0.7, 0.4], ["face", "style"], None,
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=6)),
    ("ip_two_pictures", "txt2img", ["plus"], 0.5, [["face", "stripes"]], None,
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=7)),
    ("ip_img2img", "img2img", ["plain"], 0.8, ["style"], None,
     dict(prompt="a red door", image="sketch64", strength=0.75, num_inference_steps=6, seed=8)),
    ("ip_controlnet", "controlnet", ["plus"], None, ["face"], None,
     dict(prompt="a lighthouse", image="sketch64", num_inference_steps=4, seed=9)),
    ("ip_prompts_batch", "txt2img", ["plus"], 0.7, ["face"], None,
     dict(prompt=["a lighthouse", "a cat on a bench"], num_images_per_prompt=2,
          num_inference_steps=3, seeds=[12, 13, 14, 15])),
]


def make_pipe(kind):
    common_args = dict(torch_dtype=torch.float32, safety_checker=None,
                       requires_safety_checker=False)
    if kind == "txt2img":
        return StableDiffusionPipeline.from_pretrained(BASE, **common_args)
    if kind == "img2img":
        return StableDiffusionImg2ImgPipeline.from_pretrained(BASE, **common_args)
    cn = ControlNetModel.from_pretrained(os.path.join(MODELS, "tiny-controlnet-a"),
                                         torch_dtype=torch.float32)
    return StableDiffusionControlNetPipeline.from_pretrained(BASE, controlnet=cn, **common_args)


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_repo()
    pics = pictures()
    manifest = {"cases": [], "embeds": []}
    # prepare_ip_adapter_image_embeds: each kind, guided, 2 images per prompt
    for kind in ("plain", "plus", "full"):
        pipe = make_pipe("txt2img")
        load(pipe, [kind])
        with torch.no_grad():
            embeds = pipe.prepare_ip_adapter_image_embeds([pics["face"]], None, "cpu", 2, True)
        np.save(os.path.join(OUT, "embeds_%s.npy" % kind), embeds[0].numpy())
        manifest["embeds"].append({"kind": kind, "weight_name": WEIGHTS[kind],
                                   "shape": list(embeds[0].shape)})
        print("embeds", kind, tuple(embeds[0].shape))
    for name, kind, adapters, scale, ip_pics, sched, args in CASES:
        pipe = make_pipe(kind)
        load(pipe, adapters)
        if scale is not None:
            pipe.set_ip_adapter_scale(scale)
        if sched:
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args)
        gen = ([torch.Generator().manual_seed(s) for s in call.pop("seeds")] if "seeds" in call
               else torch.Generator().manual_seed(call.pop("seed")))
        if "image" in call:
            call["image"] = pics[call["image"]]
        ip = [[pics[p] for p in e] if isinstance(e, list) else pics[e] for e in ip_pics]
        out = pipe(ip_adapter_image=ip, generator=gen,
                   output_type="np", **call)
        np.save(os.path.join(OUT, name + ".npy"), out.images.astype(np.float32))
        entry = {"name": name, "pipeline": kind, "adapters": [WEIGHTS[a] for a in adapters],
                 "scale": scale, "ip_images": ip_pics, "scheduler": sched}
        entry.update(args)
        manifest["cases"].append(entry)
        print(name, out.images.shape)
    # given embeddings: the plus adapter's, made above for 2 images per prompt, used with 2
    pipe = make_pipe("txt2img")
    load(pipe, ["plus"])
    pipe.set_progress_bar_config(disable=True)
    embeds = torch.from_numpy(np.load(os.path.join(OUT, "embeds_plus.npy")))
    # one row a half: diffusers repeats each half once per image of the batch
    half = embeds.chunk(2)
    one = torch.cat([half[0][:1], half[1][:1]])
    np.save(os.path.join(OUT, "embeds_plus_one.npy"), one.numpy())
    out = pipe(prompt="a red door", ip_adapter_image_embeds=[one], num_images_per_prompt=2,
               num_inference_steps=4, output_type="np",
               generator=torch.Generator().manual_seed(10))
    np.save(os.path.join(OUT, "ip_given_embeds.npy"), out.images.astype(np.float32))
    manifest["cases"].append({"name": "ip_given_embeds", "pipeline": "txt2img",
                              "adapters": [WEIGHTS["plus"]], "embeds": "embeds_plus_one.npy",
                              "prompt": "a red door", "num_images_per_prompt": 2,
                              "num_inference_steps": 4, "seed": 10})
    # two prompts: every row of the batch gets the one row of each half
    out = pipe(prompt=["a lighthouse", "a cat on a bench"], ip_adapter_image_embeds=[one],
               num_inference_steps=4, output_type="np",
               generator=torch.Generator().manual_seed(11))
    np.save(os.path.join(OUT, "ip_two_prompts.npy"), out.images.astype(np.float32))
    manifest["cases"].append({"name": "ip_two_prompts", "pipeline": "txt2img",
                              "adapters": [WEIGHTS["plus"]], "embeds": "embeds_plus_one.npy",
                              "prompt": ["a lighthouse", "a cat on a bench"],
                              "num_inference_steps": 4, "seed": 11})
    # the UNet called directly with added_cond_kwargs' image_embeds (the projection inside)
    gen = torch.Generator().manual_seed(40)
    sample = torch.randn(2, 4, 16, 16, generator=gen)
    ehs = torch.randn(2, 7, CROSS, generator=gen)
    emb = torch.from_numpy(np.load(os.path.join(OUT, "embeds_plus.npy")))[1:3].contiguous()
    with torch.no_grad():
        pred = pipe.unet(sample, 501, encoder_hidden_states=ehs,
                         added_cond_kwargs={"image_embeds": [emb]}).sample
    for name, t in (("sample", sample), ("ehs", ehs), ("unet_embeds", emb), ("unet", pred)):
        np.save(os.path.join(OUT, "call_%s.npy" % name), t.numpy())
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
