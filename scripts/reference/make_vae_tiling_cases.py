"""Reference cases for VAE tiling: AutoencoderKL.enable_tiling() as diffusers 0.27.2
computes it (tiled_encode, tiled_decode, blend_v, blend_h in
diffusers/models/autoencoders/autoencoder_kl.py).

    .venv-torch/bin/python scripts/reference/make_vae_tiling_cases.py

Writes tests/models/tiny-vae-tiling/ (an AutoencoderKL as save_pretrained writes
it) and tests/reference/vae_tiling/ (*.npy and manifest.json saying what each
file is). Everything is seeded, so a rerun writes the same files.

The VAE has sample_size 32 and two blocks, so diffusers' tiles are 32 pixels
(tile_sample_min_size) and 16 latents (tile_latent_min_size), overlapping by a
quarter: a 64x64 image is 3x3 tiles, and sizes that are not multiples of the
tile stride leave small last tiles whose blend is shortened (blend_extent is
capped by the tiles' sides). Cases at or below the tile size check that tiling
does not engage. Every tiled case is also computed untiled, and the script
stops if the two agree: a case must show that tiling happened.

Two whole runs of tests/models/tiny-sd-b (made by make_tiny_models.py, not
changed here) with pipe.enable_vae_tiling() check the pipeline's decode and
img2img's encode: its VAE has sample_size 16, so a 32x48 picture is tiled.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import diffusers
from diffusers import AutoencoderKL, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = "tiny-vae-tiling"
SEED = 21

VAE = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=32,
           block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
           down_block_types=("DownEncoderBlock2D",) * 2,
           up_block_types=("UpDecoderBlock2D",) * 2)

# (name, batch, image height, image width). Latents are a factor 2 smaller.
DECODE = [
    ("dec_64x64", 1, 64, 64),      # 3x3 tiles
    ("dec_48x80_b2", 2, 48, 80),   # 2x4 tiles, a batch of two
    ("dec_52x76", 1, 52, 76),      # last tiles 2 latents wide: blend capped at 4 pixels
    ("dec_32x40", 1, 32, 40),      # only the width exceeds the tile: 2x2 tiles
    ("dec_32x32", 1, 32, 32),      # the tile's size: untiled
    ("dec_24x32", 1, 24, 32),      # smaller: untiled
]
ENCODE = [
    ("enc_64x64", 1, 64, 64),
    ("enc_48x80_b2", 2, 48, 80),
    ("enc_52x76", 1, 52, 76),
    ("enc_32x40", 1, 32, 40),
    ("enc_32x32", 1, 32, 32),
    ("enc_24x32", 1, 24, 32),
]

# Whole runs of tiny-sd-b with enable_vae_tiling(): (name, kind, arguments, seed).
RUNS = [
    ("t2i_tiled", "txt2img", dict(prompt="a red cube", height=32, width=48,
                                  num_images_per_prompt=2, num_inference_steps=4), 5),
    ("i2i_tiled", "img2img", dict(prompt="a sketch", strength=0.8, num_inference_steps=5), 6),
]


def perturb(model, seed):
    """Every parameter moved off its initial value; norm weights around 1 (as
    make_tiny_models.py does)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif p.dim() <= 1:
                p.copy_(0.1 * noise)
            else:
                fan_in = p[0].numel()
                p.copy_(noise / np.sqrt(fan_in))


def init_image(width, height):
    """make_tiny_models.py's sketch-like picture, at any size."""
    return common.sketch(width, height)


class Recorder:
    def __init__(self):
        self.dir = os.path.join(ROOT, "tests", "reference", "vae_tiling")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                       "numpy": np.__version__},
                         "model": MODEL, "files": {}}

    def save(self, key, array, what, **meta):
        a = array.detach().cpu().numpy() if torch.is_tensor(array) else np.asarray(array)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            sys.exit(f"{key}: the reference holds NaN or infinity")
        np.save(os.path.join(self.dir, key + ".npy"), a.astype(np.float32))
        self.manifest["files"][key] = dict(what=what, shape=list(a.shape), **meta)

    def close(self):
        with open(os.path.join(self.dir, "manifest.json"), "w") as f:
            json.dump(self.manifest, f, indent=1)


def check_tiled(name, tiled, plain, engaged):
    """A tiled case must differ from the untiled result; an untiled one must not."""
    diff = (tiled - plain).abs().max().item()
    if engaged and diff < 1e-3:
        sys.exit(f"{name}: tiling changed nothing (max diff {diff})")
    if not engaged and diff != 0:
        sys.exit(f"{name}: the untiled path differs from decode without tiling ({diff})")
    return diff


def vae_cases(rec):
    out = os.path.join(ROOT, "tests", "models", MODEL)
    torch.manual_seed(SEED)
    vae = AutoencoderKL(**VAE)
    perturb(vae, SEED)
    shutil.rmtree(out, ignore_errors=True)
    vae.save_pretrained(out, safe_serialization=True)
    vae = AutoencoderKL.from_pretrained(out).eval()
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    rec.manifest["tile_sample_min_size"] = vae.tile_sample_min_size
    rec.manifest["tile_latent_min_size"] = vae.tile_latent_min_size
    rec.manifest["tile_overlap_factor"] = vae.tile_overlap_factor
    g = torch.Generator().manual_seed(SEED + 1)
    cases = []
    for name, b, h, w in DECODE:
        z = torch.randn((b, vae.config.latent_channels, h // f, w // f), generator=g)
        engaged = z.shape[-1] > vae.tile_latent_min_size or z.shape[-2] > vae.tile_latent_min_size
        with torch.no_grad():
            vae.disable_tiling()
            plain = vae.decode(z).sample
            vae.enable_tiling()
            tiled = vae.decode(z).sample
        diff = check_tiled(name, tiled, plain, engaged)
        rec.save(name + "_in", z, "latents given to vae.decode (B, L, h, w)")
        rec.save(name + "_out", tiled, "vae.enable_tiling(); vae.decode(z).sample",
                 tiled=engaged, untiled_max_diff=diff)
        cases.append(dict(name=name, kind="decode", tiled=engaged))
    for name, b, h, w in ENCODE:
        x = torch.rand((b, vae.config.in_channels, h, w), generator=g) * 2 - 1
        engaged = x.shape[-1] > vae.tile_sample_min_size or x.shape[-2] > vae.tile_sample_min_size
        with torch.no_grad():
            vae.disable_tiling()
            plain = vae.encode(x).latent_dist.parameters
            vae.enable_tiling()
            tiled = vae.encode(x).latent_dist.parameters
        diff = check_tiled(name, tiled, plain, engaged)
        rec.save(name + "_in", x, "an image in [-1, 1] given to vae.encode (B, 3, H, W)")
        rec.save(name + "_out", tiled,
                 "vae.enable_tiling(); vae.encode(x).latent_dist.parameters: mean then logvar",
                 tiled=engaged, untiled_max_diff=diff)
        cases.append(dict(name=name, kind="encode", tiled=engaged))
    rec.manifest["cases"] = cases


def pipeline_runs(rec):
    path = os.path.join(ROOT, "tests", "models", "tiny-sd-b")
    runs = []
    for name, kind, args, seed in RUNS:
        cls = StableDiffusionPipeline if kind == "txt2img" else StableDiffusionImg2ImgPipeline
        pipe = cls.from_pretrained(path, torch_dtype=torch.float32, safety_checker=None,
                                   requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        pipe.enable_vae_tiling()
        call = dict(args, output_type="np", generator=torch.Generator().manual_seed(seed))
        if kind == "img2img":
            image = init_image(48, 32)
            image.save(os.path.join(rec.dir, "init_image.png"))
            call["image"] = image
        with torch.no_grad():
            images = pipe(**call).images
        rec.save("run_" + name, images, f"tiny-sd-b {kind}, enable_vae_tiling(), output_type='np' "
                 "(B, H, W, 3)")
        runs.append(dict(name=name, kind=kind, args=args, seed=seed, seed_via="generator"))
    rec.manifest["runs"] = runs


def main():
    torch.set_num_threads(2)
    rec = Recorder()
    vae_cases(rec)
    pipeline_runs(rec)
    rec.close()
    print(f"{MODEL}: {rec.dir}")


if __name__ == "__main__":
    main()
