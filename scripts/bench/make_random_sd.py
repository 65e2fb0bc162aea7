"""Writes a Stable Diffusion 1.5-sized pipeline with random weights (diffusers
layout, safetensors) for benchmarks: the timings do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_sd.py OUT_DIR [--fp16] [--device cuda]

--fp16 saves the weights in float16 (what scripts/bench_gpu.sh times; half the
bytes to write and read); --device makes the random weights there (a GPU draws
a billion of them in a moment, 16 CPU cores take many seconds). The tokenizer
folder gets the fixture's vocab.json and merges.txt besides whatever
transformers saves (transformers 5 writes only tokenizer.json).
"""
import argparse
import contextlib
import os
import shutil

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VOCAB = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "clip-vit-large-patch14")


def main(out, fp16=False, device="cpu"):
    if os.path.exists(os.path.join(out, "model_index.json")):
        print(f"{out}: already there")
        return
    torch.manual_seed(0)
    # torch.device as a context (made there) is torch 2's; bench_cpu.sh's torch 1.13 stays on the CPU.
    with torch.device(device) if device != "cpu" else contextlib.nullcontext():
        pipe = make()
    if fp16:
        pipe.to(torch.float16)
    diffusers_logging.set_verbosity_error()  # not "float16 cannot run on cpu": it is only saved
    pipe.to("cpu")
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    for name in os.listdir(VOCAB):  # what engine/clip_tokenizer.c reads
        shutil.copyfile(os.path.join(VOCAB, name), os.path.join(tmp, "tokenizer", name))
    hub_text_names(os.path.join(tmp, "text_encoder", "model.safetensors"))
    os.replace(tmp, out)
    print(f"{out}: written")


def hub_text_names(path):
    """transformers 5 saves CLIPTextModel without the "text_model." prefix that every SD
    checkpoint on the hub has (and transformers 4 wrote); put it back, so the folder has the
    hub's layout. transformers 5 loads either."""
    from safetensors.torch import load_file, save_file
    tensors = load_file(path)
    if all(k.startswith("text_model.") for k in tensors):
        return
    save_file({k if k.startswith("text_model.") else "text_model." + k: v
               for k, v in tensors.items()}, path, metadata={"format": "pt"})


def make():
    # The SD 1.5 configuration (runwayml/stable-diffusion-v1-5's config.json files).
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=512,
        block_out_channels=(128, 256, 512, 512), layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
        num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu",
        projection_dim=768))
    tok = CLIPTokenizer.from_pretrained(VOCAB)
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          num_train_timesteps=1000, skip_prk_steps=True, steps_offset=1,
                          set_alpha_to_one=False)
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--fp16", action="store_true", help="save the weights in float16")
    ap.add_argument("--device", default="cpu", help="where the random weights are drawn")
    a = ap.parse_args()
    main(a.out, a.fp16, a.device)
