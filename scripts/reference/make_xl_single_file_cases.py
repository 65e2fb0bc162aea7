"""A single-file SDXL checkpoint (Stability AI's original layout) as diffusers 0.27.2 converts
and runs it (StableDiffusionXLPipeline.from_single_file's converters), for
tests/lua/test_xl_single_file.lua:

  - tests/models/tiny-sdxl-single.safetensors: a tiny SDXL in the original layout, float16:
    model.diffusion_model.* (the UNet with SDXL's added embedding as label_emb, 64-channel
    heads, addition_time_embed_dim 256 as the SDXL configs have), first_stage_model.* (a VAE
    of 32 groups), conditioner.embedders.0.transformer.* (a CLIP text tower) and
    conditioner.embedders.1.model.* (an OpenCLIP tower with its text_projection and
    logit_scale). It is written here from a diffusers model by the inverse of diffusers'
    names, then read back with diffusers' own converters (convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint, create_text_encoder_from_ldm_clip_checkpoint and
    create_text_encoder_from_open_clip_checkpoint), which must give the model's weights back
    exactly: so the file is what those converters read.
  - The configs are those diffusers makes from sd_xl_base.yaml with this model's sizes (its
    text configs come from the hub by name: here CLIPTextConfig.from_pretrained is given the
    tiny configs instead), the scheduler create_scheduler_from_ldm's Euler, the tokenizer
    tiny-sd-a's (the second padded with "!").
  - Runs of the converted pipeline: text to image with a negative prompt, two prompts
    unguided, and StableDiffusionXLImg2ImgPipeline on the same components; output_type "np".
  - tests/models/tiny-sdxl-refiner-single.safetensors: the refiner's layout (the OpenCLIP
    tower alone, as conditioner.embedders.0.model.*; 5 time ids with the aesthetic score), run
    as from_single_file sets a refiner up (requires_aesthetics_score, no zeros for an empty
    negative).

    .venv-torch/bin/python scripts/reference/make_xl_single_file_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
                          CLIPTokenizer)

from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.loaders import single_file_utils as sfu

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
TOKENIZER = os.path.join(MODELS, "tiny-sd-a", "tokenizer")
FILE = os.path.join(MODELS, "tiny-sdxl-single.safetensors")
REFINER_FILE = os.path.join(MODELS, "tiny-sdxl-refiner-single.safetensors")
OUT = os.path.join(ROOT, "tests", "reference", "xl_single_file")

TEXT = dict(vocab_size=1514, hidden_size=64, intermediate_size=96, num_attention_heads=1,
            num_hidden_layers=2, max_position_embeddings=77, layer_norm_eps=1e-5,
            bos_token_id=0, eos_token_id=2, pad_token_id=1)
PROJECTION = 32


def models(refiner=False):
    """The base (two text towers), or the refiner (the OpenCLIP one alone, its time ids with
    the aesthetic score: 5 of them; here a UNet of one level)."""
    torch.manual_seed(52 if refiner else 51)
    te1 = None if refiner else CLIPTextModel(CLIPTextConfig(hidden_act="quick_gelu", **TEXT))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(hidden_act="gelu", projection_dim=PROJECTION,
                                                     **TEXT))
    if refiner:
        unet = UNet2DConditionModel(
            sample_size=1024 // 2, in_channels=4, out_channels=4, layers_per_block=1,
            block_out_channels=(64,), down_block_types=("CrossAttnDownBlock2D",),
            up_block_types=("CrossAttnUpBlock2D",), attention_head_dim=[1],
            cross_attention_dim=TEXT["hidden_size"], use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=PROJECTION + 5 * 256, norm_num_groups=32)
    else:
        unet = UNet2DConditionModel(
            sample_size=1024 // 2, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(64, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=[1, 1],
            transformer_layers_per_block=[1, 2], cross_attention_dim=2 * TEXT["hidden_size"],
            use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=PROJECTION + 6 * 256,
            norm_num_groups=32)
    original = {"model": {"params": {"scale_factor": 0.13025, "first_stage_config": {"params": {
        "ddconfig": {"ch": 32, "ch_mult": [1, 1], "in_channels": 3, "out_ch": 3, "z_channels": 4,
                     "num_res_blocks": 1}}}}}}
    vae = AutoencoderKL(**sfu.create_vae_diffusers_config(original, image_size=1024))
    with torch.no_grad():  # what a float16 file holds, and some spread in every weight
        for m in (te1, te2, unet, vae):
            for p in m.parameters() if m else []:
                p.add_(torch.randn_like(p) * 0.02)
                p.copy_(p.half().float())
    return te1, te2, unet, vae


# ---- diffusers' names -> the original layout ----------------------------------------

def vae_key(k, v, n):
    p = k.split(".")
    if p[1] in ("conv_in", "conv_out") or p[0] in ("quant_conv", "post_quant_conv"):
        return k, v
    if p[1] == "conv_norm_out":
        return "%s.norm_out.%s" % (p[0], p[2]), v
    if p[1] == "mid_block":
        if p[2] == "resnets":
            rest = ".".join(p[4:]).replace("conv_shortcut.", "nin_shortcut.")
            return "%s.mid.block_%d.%s" % (p[0], int(p[3]) + 1, rest), v
        attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
        rest = p[-1]
        if p[4] != "group_norm" and rest == "weight":
            v = v[:, :, None, None]  # a 1x1 convolution there
        return "%s.mid.attn_1.%s.%s" % (p[0], attn[p[4]], rest), v
    i = int(p[2])
    if p[0] == "decoder":
        i = n - 1 - i
    part = "down" if p[0] == "encoder" else "up"
    if p[3] in ("downsamplers", "upsamplers"):
        return "%s.%s.%d.%s.conv.%s" % (p[0], part, i, p[3][:-2], p[-1]), v
    rest = ".".join(p[5:]).replace("conv_shortcut.", "nin_shortcut.")
    return "%s.%s.%d.block.%s.%s" % (p[0], part, i, p[4], rest), v


def openclip(te2):
    out = {}
    sd = te2.state_dict()
    for k, v in sd.items():
        if k == "text_model.embeddings.position_ids":
            continue
        if k == "text_model.embeddings.token_embedding.weight":
            out["token_embedding.weight"] = v
        elif k == "text_model.embeddings.position_embedding.weight":
            out["positional_embedding"] = v
        elif k.startswith("text_model.final_layer_norm."):
            out["ln_final." + k.split(".")[-1]] = v
        elif k == "text_projection.weight":
            out["text_projection"] = v.T.contiguous()
        elif k.startswith("text_model.encoder.layers."):
            p = k.split(".")
            i, rest = int(p[3]), ".".join(p[4:])
            head = "transformer.resblocks.%d." % i
            if rest.startswith("self_attn.q_proj."):
                kind = p[-1]
                q, kk, vv = (sd["text_model.encoder.layers.%d.self_attn.%s_proj.%s" % (i, x, kind)]
                             for x in "qkv")
                out[head + "attn.in_proj_" + kind] = torch.cat([q, kk, vv])
            elif rest.startswith(("self_attn.k_proj.", "self_attn.v_proj.")):
                continue
            else:
                for a, b in (("self_attn.out_proj.", "attn.out_proj."), ("layer_norm1.", "ln_1."),
                             ("layer_norm2.", "ln_2."), ("mlp.fc1.", "mlp.c_fc."),
                             ("mlp.fc2.", "mlp.c_proj.")):
                    if rest.startswith(a):
                        out[head + b + rest[len(a):]] = v
        else:
            raise KeyError(k)
    out["logit_scale"] = torch.tensor(4.6052)
    return out


def to_original(te1, te2, unet, vae, bigg):
    ckpt = {}
    for k, v in unet.state_dict().items():
        ckpt["model.diffusion_model." + common.sgm_unet_name(k, unet.config)] = v
    n = len(vae.config.block_out_channels)
    for k, v in vae.state_dict().items():
        name, v = vae_key(k, v, n)
        ckpt["first_stage_model." + name] = v
    for k, v in te1.state_dict().items() if te1 else []:
        if k != "text_model.embeddings.position_ids":
            ckpt["conditioner.embedders.0.transformer." + k] = v
    for k, v in openclip(te2).items():
        ckpt[bigg + k] = v
    return {k: v.half().contiguous() for k, v in ckpt.items()}


# ---- read back with diffusers' converters -------------------------------------------

class TinyConfigs:
    """CLIPTextConfig for the converters, which name the hub's configs: the tiny ones."""
    configs = {}

    @classmethod
    def from_pretrained(cls, name, **kwargs):
        return cls.configs[name]


def read_back(ckpt, te1, te2, unet, vae, bigg):
    ckpt = {k: v.float() for k, v in ckpt.items()}
    TinyConfigs.configs = {"openai/clip-vit-large-patch14": te1.config if te1 else None,
                           "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k": te2.config}
    sfu.CLIPTextConfig = TinyConfigs
    c_te1 = te1 and sfu.create_text_encoder_from_ldm_clip_checkpoint(
        "openai/clip-vit-large-patch14", ckpt)
    c_te2 = sfu.create_text_encoder_from_open_clip_checkpoint(
        "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", ckpt, prefix=bigg, has_projection=True,
        projection_dim=1280)
    c_unet = UNet2DConditionModel(**unet.config)
    c_unet.load_state_dict(sfu.convert_ldm_unet_checkpoint(ckpt, unet.config))
    c_vae = AutoencoderKL(**vae.config)
    c_vae.load_state_dict(sfu.convert_ldm_vae_checkpoint(ckpt, vae.config))
    for a, b in ((te1, c_te1), (te2, c_te2), (unet, c_unet), (vae, c_vae)):
        if a is None:
            continue
        want, got = a.state_dict(), b.state_dict()
        assert set(want) == set(got), set(want) ^ set(got)
        for k in want:
            assert torch.equal(want[k].float(), got[k].float()), k
    return c_te1, c_te2, c_unet, c_vae


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    te1, te2, unet, vae = models()
    bigg = "conditioner.embedders.1.model."
    ckpt = to_original(te1, te2, unet, vae, bigg)
    save_file(ckpt, FILE)
    c_te1, c_te2, c_unet, c_vae = read_back(ckpt, te1, te2, unet, vae, bigg)
    scheduler = EulerDiscreteScheduler.from_config(sfu.get_default_scheduler_config())
    parts = dict(vae=c_vae, text_encoder=c_te1, text_encoder_2=c_te2,
                 tokenizer=CLIPTokenizer.from_pretrained(TOKENIZER),
                 tokenizer_2=CLIPTokenizer.from_pretrained(TOKENIZER, pad_token="!"),
                 unet=c_unet, scheduler=scheduler)
    def config(model):  # without diffusers' set of defaulted keys, whose order varies
        return {k: v for k, v in model.config.items() if k != "_use_default_values"}
    manifest = {"cases": [], "unet_config": config(unet), "vae_config": config(vae)}
    cases = [
        ("xlsf_guided", StableDiffusionXLPipeline,
         dict(prompt="a photo of an astronaut", negative_prompt="blurry", height=64, width=64,
              num_inference_steps=3, seed=1)),
        ("xlsf_unguided_batch", StableDiffusionXLPipeline,
         dict(prompt=["a red car", "a tree"], guidance_scale=1.0, height=48, width=64,
              num_inference_steps=3, seed=2)),
        ("xlsf_img2img", StableDiffusionXLImg2ImgPipeline,
         dict(prompt="a lighthouse", image="sketch64", strength=0.6, num_inference_steps=4,
              seed=3)),
    ]
    sketch = common.sketch(64, 64)
    sketch.save(os.path.join(OUT, "sketch64.png"))
    for name, cls, args in cases:
        pipe = cls(**parts, add_watermarker=False)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args)
        g = torch.Generator().manual_seed(call.pop("seed"))
        if "image" in call:
            call["image"] = sketch
        out = pipe(generator=g, output_type="np", **call).images
        np.save(os.path.join(OUT, name + ".npy"), out.astype(np.float32))
        manifest["cases"].append({"name": name, "shape": list(out.shape)})
        print(name, out.shape)
    refiner_case(manifest, sketch)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, default=str)
    print("wrote", FILE, os.path.getsize(FILE))


def refiner_case(manifest, sketch):
    """The refiner's layout (conditioner.embedders.0.model.*, bigG alone) as
    StableDiffusionXLImg2ImgPipeline.from_single_file sets it up: requires_aesthetics_score,
    no zeros for an empty negative."""
    _, te2, unet, vae = models(refiner=True)
    bigg = "conditioner.embedders.0.model."
    ckpt = to_original(None, te2, unet, vae, bigg)
    save_file(ckpt, REFINER_FILE)
    _, c_te2, c_unet, c_vae = read_back(ckpt, None, te2, unet, vae, bigg)
    scheduler = EulerDiscreteScheduler.from_config(sfu.get_default_scheduler_config())
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=c_vae, text_encoder=None, text_encoder_2=c_te2, tokenizer=None,
        tokenizer_2=CLIPTokenizer.from_pretrained(TOKENIZER, pad_token="!"), unet=c_unet,
        scheduler=scheduler, requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
        add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="a lighthouse", image=sketch, strength=0.5, aesthetic_score=7.0,
               num_inference_steps=4, generator=torch.Generator().manual_seed(4),
               output_type="np").images
    np.save(os.path.join(OUT, "xlsf_refiner.npy"), out.astype(np.float32))
    manifest["cases"].append({"name": "xlsf_refiner", "shape": list(out.shape)})
    print("xlsf_refiner", out.shape, "wrote", REFINER_FILE, os.path.getsize(REFINER_FILE))


if __name__ == "__main__":
    main()
