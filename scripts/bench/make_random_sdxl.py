"""Writes a Stable Diffusion XL base-sized pipeline with random weights (diffusers layout,
safetensors) for scripts/bench_cpu.sh's sdxl part: the timings do not depend on the values.
The configuration is stabilityai/stable-diffusion-xl-base-1.0's config.json files: CLIP ViT-L
and OpenCLIP bigG (with its projection), the UNet of 320-640-1280 channels with 1, 2 and 10
transformer layers and the text_time embedding, SDXL's VAE scaling, Euler.

    .venv-torch/bin/python scripts/bench/make_random_sdxl.py OUT_DIR
"""
import os
import shutil
import sys

import torch
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline,
                       UNet2DConditionModel)
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
                          CLIPTokenizer)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VOCAB = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "clip-vit-large-patch14")


def make():
    unet = UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
        cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=1024,
        block_out_channels=(128, 256, 512, 512), layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.13025, force_upcast=True)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
        num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu",
        projection_dim=768, eos_token_id=2))
    text_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
        num_hidden_layers=32, max_position_embeddings=77, hidden_act="gelu",
        projection_dim=1280, eos_token_id=2))
    tok = CLIPTokenizer.from_pretrained(VOCAB)
    tok_2 = CLIPTokenizer.from_pretrained(VOCAB, pad_token="!")
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                   beta_schedule="scaled_linear", steps_offset=1,
                                   timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text, text_encoder_2=text_2,
                                     tokenizer=tok, tokenizer_2=tok_2, unet=unet,
                                     scheduler=sched, add_watermarker=False)


def main(out):
    if os.path.exists(os.path.join(out, "model_index.json")):
        print(f"{out}: already there")
        return
    torch.manual_seed(0)
    pipe = make()
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    for sub in ("tokenizer", "tokenizer_2"):  # what engine/clip_tokenizer.c reads
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(os.path.join(VOCAB, name), os.path.join(tmp, sub, name))
    os.replace(tmp, out)
    print(f"{out}: written")


if __name__ == "__main__":
    main(sys.argv[1])
