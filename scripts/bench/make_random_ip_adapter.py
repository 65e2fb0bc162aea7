"""Writes an IP-Adapter of h94/IP-Adapter's SD 1.5 size beside SD_DIR, laid out as that repo:
models/image_encoder (CLIPVisionModelWithProjection, ViT-H/14: 32 layers of 1280, projection
1024) and models/ip-adapter_sd15.safetensors (ImageProjection to 4 tokens, to_k_ip/to_v_ip for
SD_DIR's UNet's 16 cross-attentions), for scripts/bench_cpu.sh's ip_adapter part: the timings
do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_ip_adapter.py SD_DIR OUT_DIR
"""
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
from diffusers import UNet2DConditionModel

VIT_H = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=16,
             num_hidden_layers=32, image_size=224, patch_size=14, projection_dim=1024,
             hidden_act="gelu", layer_norm_eps=1e-5)


def main(sd, out):
    if os.path.exists(os.path.join(out, "models", "ip-adapter_sd15.safetensors")):
        print(f"{out}: already there")
        return
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    models = os.path.join(tmp, "models")
    torch.manual_seed(0)
    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_H))
    enc.save_pretrained(os.path.join(models, "image_encoder"), safe_serialization=True)
    del enc
    unet = UNet2DConditionModel.from_pretrained(sd, subfolder="unet")
    cross = unet.config.cross_attention_dim
    state = {"image_proj.proj.weight": torch.randn(4 * cross, 1024) * 0.02,
             "image_proj.proj.bias": torch.zeros(4 * cross),
             "image_proj.norm.weight": torch.ones(cross),
             "image_proj.norm.bias": torch.zeros(cross)}
    key = 1
    for name, proc in unet.attn_processors.items():
        if name.endswith("attn1.processor"):
            continue
        block = name.split(".")[0]
        if block == "mid_block":
            hidden = unet.config.block_out_channels[-1]
        elif block == "up_blocks":
            hidden = list(reversed(unet.config.block_out_channels))[int(name.split(".")[1])]
        else:
            hidden = unet.config.block_out_channels[int(name.split(".")[1])]
        for kv in "kv":
            state[f"ip_adapter.{key}.to_{kv}_ip.weight"] = torch.randn(hidden, cross) * 0.02
        key += 2
    save_file(state, os.path.join(models, "ip-adapter_sd15.safetensors"))
    os.rename(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
