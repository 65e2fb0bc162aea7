"""Writes a LoRA at the SD 1.5 shapes with random values for benchmarks, in Kohya's format
(what Civitai's SD 1.5 LoRAs are: float16, lora_down/lora_up/alpha), rank 32 on every
attention projection, feed-forward and proj_in/proj_out of the UNet and on the text
encoder's attention and MLP; the timings do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_lora.py MODEL_DIR OUT_FILE
"""
import os
import sys

import torch
from safetensors.torch import save_file
from safetensors import safe_open


def main(model, out):
    if os.path.exists(out):
        print(f"{out}: already there")
        return
    g = torch.Generator().manual_seed(0)
    sd = {}
    parts = (("unet", "diffusion_pytorch_model.safetensors", "lora_unet_",
              ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")),
             ("text_encoder", "model.safetensors", "lora_te_",
              ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")))
    for sub, name, prefix, leaves in parts:
        with safe_open(os.path.join(model, sub, name), framework="pt") as f:
            for key in f.keys():
                module = key[:-len(".weight")] if key.endswith(".weight") else None
                if not module or not module.endswith(leaves):
                    continue
                shape = f.get_slice(key).get_shape()
                if len(shape) < 2:
                    continue
                flat = prefix + module.replace(".", "_")
                rest = tuple(shape[2:])
                sd[flat + ".lora_down.weight"] = (torch.randn((32, shape[1]) + rest, generator=g) * 0.01).half()
                sd[flat + ".lora_up.weight"] = (torch.randn((shape[0], 32) + (1,) * len(rest), generator=g) * 0.01).half()
                sd[flat + ".alpha"] = torch.tensor(16.0).half()
    save_file(sd, out)
    print(f"{out}: {len(sd) // 3} layers")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
