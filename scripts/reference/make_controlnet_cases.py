"""ControlNet as diffusers 0.27.2 runs it (ControlNetModel, StableDiffusionControlNetPipeline,
MultiControlNetModel), for tests/lua/test_controlnet.lua:

  - tests/models/tiny-controlnet-a, -a2: ControlNetModel.from_unet of tiny-sd-a's UNet
    (a conditioning embedding of three convolutions, two of stride 2: the VAE's factor 4),
    every weight then moved by random noise, the zero convolutions too, so that the
    residuals change the picture;
  - tests/models/tiny-controlnet-b: the same for tiny-sd-b (factor 2), with
    global_pool_conditions (the residuals averaged over the plane, guess mode forced) and
    the "bgr" channel order;
  - one direct call of each (the residuals, conditioning_scale and guess_mode);
  - pipeline runs: the size taken from the control image, guidance with guess mode (the
    ControlNet on the conditional half only), control_guidance_start/end, a resized
    control image, two ControlNets with their own scales and step ranges, a batch of
    control images for a batch of prompts, a control image as a tensor, the pooled "bgr"
    model without guidance; output_type "np";
  - StableDiffusionControlNetImg2ImgPipeline runs: its defaults (strength 0.8, scale 0.8), both
    pictures resized to height x width with guess mode and a list of generators, two nets with
    their own step ranges after strength's slicing, an RGBA picture (made RGB by its
    image_processor, where plain img2img takes it as latents);
  - StableDiffusionControlNetInpaintPipeline runs: its defaults (strength 1, scale 0.5, the
    picture's size) with tiny-sd-a's 4-channel UNet (the legacy blend), pictures, masks and
    control pictures resized to height x width with guess mode and Euler at strength 0.75,
    tests/models/tiny-sd-inpaint's 9-channel UNet with tiny-controlnet-b (4 channels: the
    nets see the latents, not the UNet's whole input).

    .venv-torch/bin/python scripts/reference/make_controlnet_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch

from diffusers import (ControlNetModel, DDIMScheduler, EulerDiscreteScheduler,
                       StableDiffusionControlNetImg2ImgPipeline,
                       StableDiffusionControlNetInpaintPipeline,
                       StableDiffusionControlNetPipeline, UNet2DConditionModel)

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
OUT = os.path.join(ROOT, "tests", "reference", "controlnet")
SCHEDULERS = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler}

# name: (base model, conditioning_embedding_out_channels, seed, extra config)
NETS = {
    "tiny-controlnet-a": ("tiny-sd-a", (8, 16, 16), 1, {}),
    "tiny-controlnet-a2": ("tiny-sd-a", (4, 8, 16), 2, {}),
    "tiny-controlnet-b": ("tiny-sd-b", (8, 16), 3,
                          {"global_pool_conditions": True,
                           "controlnet_conditioning_channel_order": "bgr"}),
}

# name, model, controlnets, scheduler (None: the model's), control images, call arguments
CASES = [
    ("cn_size_from_image", "tiny-sd-a", ["tiny-controlnet-a"], None, ["sketch96x64"],
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=3)),
    ("cn_guess_ddim", "tiny-sd-a", ["tiny-controlnet-a"], "ddim", ["sketch64"],
     dict(prompt=["a cat on a bench", "a red door"], negative_prompt=["blurry", "dark"],
          num_images_per_prompt=2, guess_mode=True, controlnet_conditioning_scale=0.8,
          num_inference_steps=5, seeds=[1, 2, 3, 4])),
    ("cn_start_end_euler", "tiny-sd-a", ["tiny-controlnet-a"], "euler", ["sketch80x72"],
     dict(prompt="a lighthouse", control_guidance_start=0.2, control_guidance_end=0.7,
          height=64, width=64, num_inference_steps=6, seed=5)),
    ("cn_multi", "tiny-sd-a", ["tiny-controlnet-a", "tiny-controlnet-a2"], None,
     ["sketch64", "rings64"],
     dict(prompt="a cat on a bench", controlnet_conditioning_scale=[1.0, 0.6],
          control_guidance_start=[0.0, 0.3], control_guidance_end=[1.0, 0.8],
          num_inference_steps=5, seed=7)),
    ("cn_batch_images", "tiny-sd-a", ["tiny-controlnet-a"], None, [["sketch64", "rings64"]],
     dict(prompt=["a cat on a bench", "a red door"], num_images_per_prompt=2,
          guidance_scale=5.0, num_inference_steps=3, seed=9)),
    ("cn_b_pooled_bgr", "tiny-sd-b", ["tiny-controlnet-b"], None, ["sketch32"],
     dict(prompt="a lighthouse", guidance_scale=1.0, controlnet_conditioning_scale=1.5,
          num_inference_steps=4, seed=11)),
    ("cn_b_pooled_cfg", "tiny-sd-b", ["tiny-controlnet-b"], "ddim", ["sketch32"],
     dict(prompt="a lighthouse", num_inference_steps=4, seed=12)),
]


# img2img: name, controlnets, scheduler, picture, control pictures, call arguments
I2I_CASES = [
    ("cni_defaults", ["tiny-controlnet-a"], None, "sketch64", ["rings64"],
     dict(prompt="a cat on a bench", num_inference_steps=5, seed=13)),
    ("cni_resized_guess_euler", ["tiny-controlnet-a"], "euler", "sketch80x72", ["sketch96x64"],
     dict(prompt=["a cat on a bench", "a red door"], num_images_per_prompt=2, guess_mode=True,
          height=64, width=64, strength=0.6, num_inference_steps=6, seeds=[1, 2, 3, 4])),
    ("cni_multi", ["tiny-controlnet-a", "tiny-controlnet-a2"], None, "sketch64",
     ["sketch64", "rings64"],
     dict(prompt="a lighthouse", controlnet_conditioning_scale=[1.0, 0.5],
          control_guidance_start=[0.0, 0.25], control_guidance_end=[0.75, 1.0], strength=0.75,
          num_inference_steps=8, seed=14)),
    ("cni_rgba", ["tiny-controlnet-a"], None, "rgba64", ["sketch64"],
     dict(prompt="a red door", num_inference_steps=4, seed=15)),
]


# inpainting: name, model, controlnet, scheduler, picture, mask, control picture, arguments
INPAINT_CASES = [
    ("cnin4_defaults", "tiny-sd-a", "tiny-controlnet-a", None, "sketch64", "box64", "rings64",
     dict(prompt="a cat on a bench", num_inference_steps=4, seed=16)),
    ("cnin4_resized_guess_euler", "tiny-sd-a", "tiny-controlnet-a", "euler", "sketch80x72",
     "grey80x72", "sketch96x64",
     dict(prompt=["a cat on a bench", "a red door"], guess_mode=True, height=64, width=64,
          strength=0.75, num_inference_steps=5, seeds=[5, 6])),
    ("cnin9_pooled", "tiny-sd-inpaint", "tiny-controlnet-b", None, "sketch64", "box64",
     "sketch64", dict(prompt="a lighthouse", num_inference_steps=4, seed=17)),
]


def with_generators(args):
    """A case's call arguments, its seed (or seeds) made generators."""
    call = dict(args)
    if "seeds" in call:
        return call, [torch.Generator().manual_seed(s) for s in call.pop("seeds")]
    return call, torch.Generator().manual_seed(call.pop("seed"))


def make_nets():
    for name, (base, cond, seed, extra) in NETS.items():
        path = os.path.join(MODELS, name)
        if os.path.exists(path):
            shutil.rmtree(path)
        unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, base, "unet"),
                                                    torch_dtype=torch.float32)
        torch.manual_seed(seed)  # the conditioning embedding's initial weights
        net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=cond)
        if extra:
            config = dict(net.config)
            config.pop("_use_default_values", None)  # else from_config keeps those defaults
            config.update(extra)
            other = ControlNetModel.from_config(config)
            other.load_state_dict(net.state_dict())
            net = other
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        net.to(torch.float16).save_pretrained(path, safe_serialization=True)
        print("wrote", path)


def pictures():
    out = {"sketch64": common.sketch(64, 64), "sketch96x64": common.sketch(96, 64, 0.1),
           "sketch80x72": common.sketch(80, 72, 0.2), "sketch32": common.sketch(32, 32, 0.3)}
    y, x = np.mgrid[0:64, 0:64]
    rings = (np.sin(np.hypot(x - 30, y - 36) / 3.0) > 0).astype(np.uint8) * 255
    from PIL import Image
    out["rings64"] = Image.fromarray(np.stack([rings, rings // 2, 255 - rings], -1), "RGB")
    box = Image.new("RGB", (64, 64))
    box.paste((255, 255, 255), (16, 20, 48, 56))
    out["box64"] = box
    yy, xx = np.mgrid[0:72, 0:80]
    out["grey80x72"] = Image.fromarray((xx / 79 * 160 + 40 * np.sin(yy / 7.0) + 30)
                                       .clip(0, 255).astype(np.uint8), "L")
    rgba = out["sketch64"].convert("RGBA")
    rgba.putalpha(Image.fromarray((x * 4).clip(0, 255).astype(np.uint8), "L"))
    out["rgba64"] = rgba
    for name, img in out.items():
        img.save(os.path.join(OUT, name + ".png"))
    return out


def direct_calls(manifest):
    """Each net called on its own: the residuals as the pipeline would add them."""
    for name, (base, _, seed, _) in NETS.items():
        net = ControlNetModel.from_pretrained(os.path.join(MODELS, name), torch_dtype=torch.float32)
        unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, base, "unet"))
        gen = torch.Generator().manual_seed(100 + seed)
        size = 16 if base == "tiny-sd-a" else 8
        factor = 4 if base == "tiny-sd-a" else 2
        sample = torch.randn(2, 4, size, size, generator=gen)
        ehs = torch.randn(2, 7, unet.config.cross_attention_dim, generator=gen)
        cond = torch.rand(2, 3, size * factor, size * factor, generator=gen)
        prefix = os.path.join(OUT, "call_" + name)
        np.save(prefix + "_sample.npy", sample.numpy())
        np.save(prefix + "_ehs.npy", ehs.numpy())
        np.save(prefix + "_cond.npy", cond.numpy())
        for guess in (False, True):
            with torch.no_grad():
                down, mid = net(sample, 501, encoder_hidden_states=ehs, controlnet_cond=cond,
                                conditioning_scale=0.7, guess_mode=guess, return_dict=False)
            tag = "_guess" if guess else ""
            for i, d in enumerate(down):
                np.save("%s%s_down%d.npy" % (prefix, tag, i), d.numpy())
            np.save("%s%s_mid.npy" % (prefix, tag), mid.numpy())
            # the UNet given them
            with torch.no_grad():
                pred = unet(sample, 501, encoder_hidden_states=ehs,
                            down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample
            np.save("%s%s_unet.npy" % (prefix, tag), pred.numpy())
        manifest["calls"].append({"net": name, "base": base, "ndown": len(down)})


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_nets()
    pics = pictures()
    manifest = {"cases": [], "calls": []}
    direct_calls(manifest)
    for name, model, nets, sched, images, args in CASES:
        cns = [ControlNetModel.from_pretrained(os.path.join(MODELS, n), torch_dtype=torch.float32)
               for n in nets]
        pipe = StableDiffusionControlNetPipeline.from_pretrained(
            os.path.join(MODELS, model), controlnet=cns[0] if len(cns) == 1 else cns,
            torch_dtype=torch.float32, safety_checker=None, requires_safety_checker=False)
        if sched:
            pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call, gen = with_generators(args)
        image = [[pics[i] for i in im] if isinstance(im, list) else pics[im] for im in images]
        image = image[0] if len(image) == 1 else image
        out = pipe(image=image, generator=gen, output_type="np", **call)
        np.save(os.path.join(OUT, name + ".npy"), out.images.astype(np.float32))
        entry = {"name": name, "model": model, "controlnets": nets, "scheduler": sched,
                 "images": images}
        entry.update(args)
        manifest["cases"].append(entry)
        print(name, out.images.shape)
    # the control image as a tensor (1, 3, H, W) in [0, 1], of another size than the run's
    # (F.interpolate's nearest resize), and the run without a ControlNet's effect for contrast
    cn = ControlNetModel.from_pretrained(os.path.join(MODELS, "tiny-controlnet-a"),
                                         torch_dtype=torch.float32)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(
        os.path.join(MODELS, "tiny-sd-a"), controlnet=cn, torch_dtype=torch.float32,
        safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    image_t = torch.from_numpy(np.array(pics["sketch80x72"])).permute(2, 0, 1)[None].float() / 255
    np.save(os.path.join(OUT, "tensor_image.npy"), image_t.numpy())
    out = pipe(prompt="a cat on a bench", image=image_t, height=64, width=64,
               num_inference_steps=4, output_type="np",
               generator=torch.Generator().manual_seed(21))
    np.save(os.path.join(OUT, "cn_tensor.npy"), out.images.astype(np.float32))
    manifest["cases"].append({"name": "cn_tensor", "model": "tiny-sd-a", "seed": 21,
                              "height": 64, "width": 64})
    manifest["i2i_cases"] = []
    for name, nets, sched, image, controls, args in I2I_CASES:
        cns = [ControlNetModel.from_pretrained(os.path.join(MODELS, n), torch_dtype=torch.float32)
               for n in nets]
        pipe = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
            os.path.join(MODELS, "tiny-sd-a"), controlnet=cns[0] if len(cns) == 1 else cns,
            torch_dtype=torch.float32, safety_checker=None, requires_safety_checker=False)
        if sched:
            pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call, gen = with_generators(args)
        control = [pics[c] for c in controls]
        out = pipe(image=pics[image], control_image=control[0] if len(control) == 1 else control,
                   generator=gen, output_type="np", **call)
        np.save(os.path.join(OUT, name + ".npy"), out.images.astype(np.float32))
        entry = {"name": name, "controlnets": nets, "scheduler": sched, "image": image,
                 "control_images": controls}
        entry.update(args)
        manifest["i2i_cases"].append(entry)
        print(name, out.images.shape)
    manifest["inpaint_cases"] = []
    for name, model, net, sched, image, mask, control, args in INPAINT_CASES:
        cn = ControlNetModel.from_pretrained(os.path.join(MODELS, net), torch_dtype=torch.float32)
        pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
            os.path.join(MODELS, model), controlnet=cn, torch_dtype=torch.float32,
            safety_checker=None, requires_safety_checker=False)
        if sched:
            pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        call, gen = with_generators(args)
        out = pipe(image=pics[image], mask_image=pics[mask], control_image=pics[control],
                   generator=gen, output_type="np", **call)
        np.save(os.path.join(OUT, name + ".npy"), out.images.astype(np.float32))
        entry = {"name": name, "model": model, "controlnet": net, "scheduler": sched,
                 "image": image, "mask": mask, "control_image": control}
        entry.update(args)
        manifest["inpaint_cases"].append(entry)
        print(name, out.images.shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
