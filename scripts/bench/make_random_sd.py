"""Writes a Stable Diffusion 1.5-sized pipeline with random weights (diffusers
layout, safetensors) for benchmarks: the timings do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_sd.py OUT_DIR
"""
import os
import shutil
import sys

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VOCAB = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "clip-vit-large-patch14")


def main(out):
    if os.path.exists(os.path.join(out, "model_index.json")):
        print(f"{out}: already there")
        return
    torch.manual_seed(0)
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
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    os.replace(tmp, out)
    print(f"{out}: written")


if __name__ == "__main__":
    main(sys.argv[1])
