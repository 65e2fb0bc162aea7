"""UNets whose configs diffusers 0.27.2 builds but SD's own never use, one call each:
no mid block (mid_block_type None), a centred input sample, several transformer
layers per block given as a
list, one attention head as wide as its block, upcast attention, cos-first sinusoids
with freq_shift 1, latents that the down path halves unevenly (the up path then
takes each skip's size, diffusers' upsample_size, also at ratios other than 2 when
downsample_padding is 0), the x4 upscaler's (class labels,
only_cross_attention), and an asymmetric one (SSD-1B's and Vega's per-layer transformer
depths, reverse_transformer_layers_per_block).

    .venv-torch/bin/python scripts/reference/make_unet_variant_cases.py

Writes tests/models/unet-variants/<name>/ (config.json and weights, as save_pretrained
writes them) and tests/reference/unet_variants/: <name>_{sample,timesteps,context,out}.npy
and manifest.json. Everything is seeded, so a rerun writes the same files.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import diffusers
from diffusers import UNet2DConditionModel

import common
import make_tiny_models

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models", "unet-variants")
OUT = os.path.join(ROOT, "tests", "reference", "unet_variants")

BASE = dict(sample_size=8, in_channels=4, out_channels=4, norm_num_groups=8,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(8, 16), cross_attention_dim=24)

# (name, config changes, latent height and width)
VARIANTS = [
    ("nomid", dict(mid_block_type=None, layers_per_block=1, attention_head_dim=2,
                   center_input_sample=True), (9, 7)),
    ("deep", dict(layers_per_block=2, transformer_layers_per_block=[2, 1], attention_head_dim=1,
                  upcast_attention=True, use_linear_projection=True, flip_sin_to_cos=False,
                  freq_shift=1, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D")), (6, 10)),
    # the x4 upscaler's: the picture's 3 channels beside the latents, the noise level as a
    # class label, and attention blocks whose attn1 attends to the text (only_cross_attention)
    ("upscaler", dict(in_channels=7, num_class_embeds=1000, only_cross_attention=[True, False],
                      layers_per_block=1, attention_head_dim=2, use_linear_projection=True),
     (8, 8)),
    # SSD-1B's and Vega's asymmetric UNets: a transformer depth per layer, the up blocks' own
    # (reverse_transformer_layers_per_block), the mid block taking the last block's first
    ("asymmetric", dict(layers_per_block=2, transformer_layers_per_block=[[1, 2], [3, 1]],
                        reverse_transformer_layers_per_block=[[2, 1, 3], 2],
                        attention_head_dim=2, use_linear_projection=True,
                        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D")), (8, 6)),
    # downsampling without padding drops the odd row and column (9x11 -> 4x5), so the up path's
    # nearest upsample goes to the skip's 9x11 at a ratio other than 2
    ("pad0", dict(downsample_padding=0, layers_per_block=1, attention_head_dim=2), (9, 11)),
]


def main():
    torch.set_num_threads(2)
    shutil.rmtree(MODELS, ignore_errors=True)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__},
                "cases": []}
    for i, (name, changes, (h, w)) in enumerate(VARIANTS):
        torch.manual_seed(100 + i)
        cfg = dict(BASE, **changes)
        unet = UNet2DConditionModel(**cfg)
        make_tiny_models.perturb(unet, 1000 + i)
        unet.save_pretrained(os.path.join(MODELS, name), safe_serialization=True)
        unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, name))
        g = torch.Generator().manual_seed(200 + i)
        sample = torch.randn((2, cfg["in_channels"], h, w), generator=g)
        timesteps = torch.tensor([901.0, 37.0])
        context = torch.randn((2, 77, cfg["cross_attention_dim"]), generator=g)
        extra = {}
        if cfg.get("num_class_embeds"):
            extra["class_labels"] = torch.tensor([20, 350])
        with torch.no_grad():
            out = unet(sample, timesteps, encoder_hidden_states=context, **extra).sample
        for key, value in (("sample", sample), ("timesteps", timesteps), ("context", context),
                           ("out", out)):
            a = value.numpy().astype(np.float32)
            if not np.isfinite(a).all():
                sys.exit(f"{name}_{key}: the reference holds NaN or infinity")
            np.save(os.path.join(OUT, f"{name}_{key}.npy"), a)
        manifest["cases"].append(dict(name=name, changes={k: list(v) if isinstance(v, tuple) else v
                                                          for k, v in changes.items()},
                                      latent=[h, w]))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(OUT)


if __name__ == "__main__":
    main()
