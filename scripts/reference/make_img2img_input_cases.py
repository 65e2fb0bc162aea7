"""Reference runs for what StableDiffusionImg2ImgPipeline takes as `image`, as
diffusers 0.27.2 handles it (VaeImageProcessor.preprocess in image_processor.py,
prepare_latents in pipeline_stable_diffusion_img2img.py): a list of pictures (one
per prompt, or repeated), pictures of another size (resized to the first's), a size
that is not a multiple of 8, torch tensors in [0, 1] or [-1, 1], numpy arrays
(B, H, W, 3), latents (B, 4, h, w) given as the image, and an RGBA picture (which
diffusers takes as latents too).

    .venv-torch/bin/python scripts/reference/make_img2img_input_cases.py

Uses the committed tiny models (tests/models/tiny-sd-a and tiny-sd-b, not changed
here) and writes tests/reference/img2img_inputs/: the pictures (*.png), the tensors
given (<case>_image.npy, the same for both models), each run's output_type="np"
images (<model>_<case>_images.npy) and manifest.json. Everything is seeded, so a
rerun writes the same files.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import diffusers
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, PNDMScheduler, StableDiffusionImg2ImgPipeline)

from PIL import Image

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "img2img_inputs")
MODELS = ["tiny-sd-a", "tiny-sd-b"]
SCHEDULERS = {c.__name__: c for c in (PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler,
                                      EulerAncestralDiscreteScheduler,
                                      DPMSolverMultistepScheduler)}


# Pictures, by name; the models' own size is 64 (tiny-sd-a) or 32 (tiny-sd-b), and
# every picture here is resized or floored by the pipeline anyway.
PICTURES = {"first": common.sketch(64, 64), "second": common.sketch(64, 64, 0.2),
            "small": common.sketch(40, 56, 0.1), "odd": common.sketch(70, 61, 0.3),
            "third": common.sketch(64, 64, 0.35), "rgba": None}


def rgba_picture():
    """An RGBA picture (a PNG with alpha, not converted to RGB) whose alpha varies, at a
    size each model floors, so that PIL's premultiplied resize shows."""
    rgb = common.sketch(37, 29, 0.25)
    y, x = np.mgrid[0:29, 0:37]
    alpha = Image.fromarray((40 + 215 * (x / 36.0) * (1 - 0.5 * y / 28.0)).astype(np.uint8), "L")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


PICTURES["rgba"] = rgba_picture()


def to_01(name):
    """A picture as a (1, 3, H, W) float tensor in [0, 1], as transforms.ToTensor makes it."""
    return torch.from_numpy(np.asarray(PICTURES[name], np.float32) / 255).permute(2, 0, 1)[None]


def tensors():
    g = torch.Generator().manual_seed(77)
    return {
        "pt01": to_01("first"),
        "pt_neg": to_01("second") * 2 - 1,
        "pt_resize": to_01("odd"),
        "np_nhwc": np.concatenate([np.asarray(PICTURES[n], np.float32)[None] / 255
                                   for n in ("first", "second")]),
        "latents": torch.randn((1, 4, 8, 8), generator=g) * 0.8,
    }


# (name, arguments, image: picture names or a tensor's name, scheduler, generator seed or
# a list of seeds)
CASES = [
    ("list2", dict(prompt=["a cat", "a dog"], strength=0.8, num_inference_steps=6),
     ["first", "second"], "PNDMScheduler", 1),
    ("list2_n2", dict(prompt=["a cat", "a dog"], strength=0.7, num_images_per_prompt=2,
                      num_inference_steps=5), ["first", "second"], "DDIMScheduler", 2),
    ("list2_gens", dict(prompt=["a cat", "a dog"], strength=0.8, num_inference_steps=6),
     ["first", "second"], "EulerAncestralDiscreteScheduler", [3, 4]),
    ("one_for_two_n2", dict(prompt=["a cat", "a dog"], strength=0.75, num_images_per_prompt=2,
                            num_inference_steps=4), ["second"], "DDIMScheduler", 4),
    ("sizes", dict(prompt=["a cat", "a dog"], strength=0.8, num_inference_steps=5),
     ["first", "small"], "EulerDiscreteScheduler", 5),
    ("odd_size", dict(prompt="a sketch", strength=0.6, num_inference_steps=5), ["odd"],
     "PNDMScheduler", 6),
    ("three_gens2", dict(prompt="a sketch", strength=0.8, num_images_per_prompt=2,
                         num_inference_steps=5), ["first", "second", "third"],
     "EulerAncestralDiscreteScheduler", [7, 8]),
    ("pt01", dict(prompt="a sketch", strength=0.8, num_inference_steps=5), "pt01",
     "EulerDiscreteScheduler", 9),
    ("pt_neg", dict(prompt="a sketch", strength=0.8, num_inference_steps=6), "pt_neg",
     "DPMSolverMultistepScheduler", 10),
    ("pt_resize", dict(prompt="a sketch", strength=0.7, num_inference_steps=5), "pt_resize",
     "DDIMScheduler", 11),
    ("np_nhwc", dict(prompt=["a cat", "a dog"], strength=0.8, num_inference_steps=5), "np_nhwc",
     "PNDMScheduler", 12),
    ("latents", dict(prompt="a sketch", strength=0.6, num_inference_steps=6), "latents",
     "DDIMScheduler", 13),
    # an RGBA picture keeps 4 channels in preprocess, and prepare_latents takes them as
    # latents: the output is the VAE's factor times the (floored) picture's size
    ("rgba", dict(prompt="a sketch", strength=0.7, num_inference_steps=5), ["rgba"],
     "EulerDiscreteScheduler", 14),
]


def main():
    torch.set_num_threads(2)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                              "numpy": np.__version__},
                "models": MODELS, "files": {}, "cases": []}

    def save(key, value, what):
        a = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
        if not np.isfinite(a).all():
            sys.exit(f"{key}: the reference holds NaN or infinity")
        np.save(os.path.join(OUT, key + ".npy"), a.astype(np.float32))
        manifest["files"][key] = dict(what=what, shape=list(a.shape))

    for name, picture in PICTURES.items():
        picture.save(os.path.join(OUT, name + ".png"))
    given = tensors()
    for name, value in given.items():
        save(name + "_image", value, "the tensor given as image")
    for model in MODELS:
        path = os.path.join(ROOT, "tests", "models", model)
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(path, torch_dtype=torch.float32,
                                                              safety_checker=None,
                                                              requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        for name, args, image, sched, seed in CASES:
            pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
            call = dict(args, output_type="np")
            call["image"] = given[image] if isinstance(image, str) else [PICTURES[n] for n in image]
            if isinstance(seed, list):
                call["generator"] = [torch.Generator().manual_seed(s) for s in seed]
            else:
                call["generator"] = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                images = pipe(**call).images
            save(f"{model}_{name}_images", images, "img2img output_type='np' (B, H, W, 3)")
            if model == MODELS[0]:
                manifest["cases"].append(dict(name=name, args=args, image=image, scheduler=sched,
                                              seed=seed))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(OUT)


if __name__ == "__main__":
    main()
