"""Builds the checkpoint fixtures with torch and diffusers themselves: a tiny
pipeline whose weights are PyTorch .bin files, tiny pipelines in the original
CompVis/LDM single-file layout, and small torch.save files for the reader's
unit tests.

    .venv-torch/bin/python scripts/reference/make_checkpoint_cases.py

Writes (from the committed tests/models/tiny-sd-a and tiny-sd-b; run
make_tiny_models.py first if those change):

  tests/models/tiny-sd-a-bin/            tiny-sd-a saved by save_pretrained(safe_serialization=False):
                                         unet/ and vae/diffusion_pytorch_model.bin,
                                         text_encoder/pytorch_model.bin (torch.save's zip format)
  tests/models/tiny-sd-a-ldm.ckpt        tiny-sd-a in the LDM layout (model.diffusion_model.*,
                                         first_stage_model.*, cond_stage_model.transformer.*),
                                         as torch.save({"state_dict": ..., "global_step": ...})
                                         with the buffers a real SD 1.x checkpoint carries
  tests/models/tiny-sd-b-ldm.safetensors tiny-sd-b (float16, linear projections) in the LDM layout
                                         with its text encoder as OpenCLIP stores it for SD 2.x
                                         (cond_stage_model.model.*: fused in_proj q/k/v, and one
                                         more block than the pipeline uses, as SD 2.x's 24 of
                                         which diffusers keeps 23)
  tests/models/tiny-sd-c-ldm.safetensors a tiny model defined as the LDM repository defines one (an
                                         original config: model_channels, channel_mult, ...), whose
                                         sizes our inference must find alone (norm groups of 32, 8
                                         heads, 64-channel CLIP heads), float16
  tests/models/tiny-sd-c-config/         the diffusers configs (no weights) that diffusers'
                                         create_unet_diffusers_config, create_vae_diffusers_config
                                         and create_scheduler_from_ldm make from that original
                                         config, its text encoder's config and tokenizer
  tests/fixtures/single_file/sd15-keys.json, sd21-keys.json
                                         the names, dtypes and shapes of SD 1.5's and SD 2.1
                                         (768, v)'s single files (models built at full size from
                                         v1-inference.yaml and v2-inference-v.yaml with diffusers'
                                         create_*_diffusers_config), and in sd15/, sd21/ the
                                         configs diffusers makes for them: the test builds sparse
                                         files of those shapes and checks what we infer
  tests/fixtures/torch/*.pt, *.ckpt      small torch.save files (zip and legacy formats, every
                                         dtype, views with offsets, nesting, a non-contiguous
                                         tensor), each valid one with a .safetensors twin
                                         holding the same tensors for comparison

The name mapping is the inverse of diffusers' own conversion: it generalizes
diffusers 0.27's scripts/convert_diffusers_to_original_stable_diffusion.py
(which hard-codes SD 1.x's 4 blocks of 2 layers) to any block count, and every
file is checked by converting it back with diffusers'
loaders/single_file_utils.py (convert_ldm_unet_checkpoint,
convert_ldm_vae_checkpoint, create_text_encoder_from_open_clip_checkpoint),
which must give back the pipeline's tensors exactly.
"""
import collections
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
TORCH_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "torch")


# ---- diffusers -> LDM names ------------------------------------------------------

UNET_TOP = [  # (LDM, diffusers)
    ("time_embed.0.", "time_embedding.linear_1."),
    ("time_embed.2.", "time_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."),
    ("out.0.", "conv_norm_out."),
    ("out.2.", "conv_out."),
]
UNET_RESNET = [
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("emb_layers.1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
]


def unet_prefixes(cfg):
    """(LDM prefix, diffusers prefix) pairs for any number of blocks and layers."""
    n, L = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    down_attn = [t == "CrossAttnDownBlock2D" for t in cfg["down_block_types"]]
    up_attn = [t == "CrossAttnUpBlock2D" for t in cfg["up_block_types"]]
    out = []
    for i in range(n):
        for j in range(L):
            out.append((f"input_blocks.{(L + 1) * i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down_attn[i]:
                out.append((f"input_blocks.{(L + 1) * i + j + 1}.1.",
                            f"down_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            out.append((f"input_blocks.{(L + 1) * (i + 1)}.0.op.",
                        f"down_blocks.{i}.downsamplers.0.conv."))
        for j in range(L + 1):
            out.append((f"output_blocks.{(L + 1) * i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up_attn[i]:
                out.append((f"output_blocks.{(L + 1) * i + j}.1.",
                            f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            out.append((f"output_blocks.{(L + 1) * i + L}.{2 if up_attn[i] else 1}.",
                        f"up_blocks.{i}.upsamplers.0."))
    out.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        out.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    return out


def replace_prefix(key, pairs):
    for ldm, hf in pairs:
        if key.startswith(hf):
            return ldm + key[len(hf):]
    raise KeyError(key)


def unet_to_ldm(sd, cfg):
    prefixes = unet_prefixes(cfg)
    out = {}
    for k, v in sd.items():
        if any(k.startswith(hf) for _, hf in UNET_TOP):
            new = replace_prefix(k, UNET_TOP)
        else:
            new = replace_prefix(k, prefixes)
            if ".resnets." in k:
                for ldm, hf in UNET_RESNET:
                    new = new.replace(hf, ldm)
        out["model.diffusion_model." + new] = v
    return out


def vae_to_ldm(sd, cfg):
    n, L = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    pairs = [("encoder.norm_out.", "encoder.conv_norm_out."),
             ("decoder.norm_out.", "decoder.conv_norm_out.")]
    for coder in ("encoder", "decoder"):
        for j in range(2):
            pairs.append((f"{coder}.mid.block_{j + 1}.", f"{coder}.mid_block.resnets.{j}."))
        pairs.append((f"{coder}.mid.attn_1.", f"{coder}.mid_block.attentions.0."))
    for i in range(n):
        for j in range(L):
            pairs.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        for j in range(L + 1):
            pairs.append((f"decoder.up.{n - 1 - i}.block.{j}.",
                          f"decoder.up_blocks.{i}.resnets.{j}."))
        if i < n - 1:
            pairs.append((f"encoder.down.{i}.downsample.", f"encoder.down_blocks.{i}.downsamplers.0."))
            pairs.append((f"decoder.up.{n - 1 - i}.upsample.", f"decoder.up_blocks.{i}.upsamplers.0."))
    attn = [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."),
            ("proj_out.", "to_out.0.")]
    out = {}
    for k, v in sd.items():
        if k.split(".")[0] in ("quant_conv", "post_quant_conv") or \
                k.split(".")[1] in ("conv_in", "conv_out"):
            new = k
        else:
            new = replace_prefix(k, pairs)
        if ".mid.attn_1." in new:
            head, tail = new.split(".mid.attn_1.")
            tail = replace_prefix(tail, attn)
            new = head + ".mid.attn_1." + tail
            if tail in ("q.weight", "k.weight", "v.weight", "proj_out.weight"):
                v = v.reshape(*v.shape, 1, 1)  # reshape_weight_for_sd: linear -> 1x1 conv
        new = new.replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + new] = v
    return out


def clip_to_ldm(sd):
    return {"cond_stage_model.transformer." + k: v for k, v in sd.items()}


OPENCLIP = [  # (OpenCLIP, transformers) inside a layer
    ("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."), ("attn.out_proj.", "self_attn.out_proj."),
]


def clip_to_openclip(sd, nlayers, gen):
    """transformers' CLIPTextModel -> OpenCLIP's text tower as SD 2.x stores it,
    with one extra block (random) after the last, which the converter drops."""
    p = "cond_stage_model.model."
    out = {p + "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
           p + "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
           p + "ln_final.weight": sd["text_model.final_layer_norm.weight"],
           p + "ln_final.bias": sd["text_model.final_layer_norm.bias"]}
    D = out[p + "ln_final.weight"].shape[0]
    out[p + "text_projection"] = torch.randn(D, D, generator=gen).to(out[p + "ln_final.weight"].dtype)
    out[p + "logit_scale"] = torch.tensor(4.6052, dtype=out[p + "ln_final.weight"].dtype)
    for i in range(nlayers + 1):
        src = f"text_model.encoder.layers.{min(i, nlayers - 1)}."
        dst = f"{p}transformer.resblocks.{i}."
        extra = i == nlayers

        def t(name):
            x = sd[src + name]
            return (x + 0.5 * torch.randn(x.shape, generator=gen).to(x.dtype)) if extra else x

        for oc, hf in OPENCLIP:
            for kind in ("weight", "bias"):
                out[dst + oc + kind] = t(hf + kind)
        for kind in ("weight", "bias"):
            out[dst + "attn.in_proj_" + kind] = torch.cat(
                [t(f"self_attn.{q}_proj.{kind}") for q in ("q", "k", "v")], 0)
    return out


# ---- checks with diffusers' own conversion ---------------------------------------------

def same(a, b, what):
    if set(a) != set(b):
        sys.exit(f"{what}: keys differ: {sorted(set(a) ^ set(b))[:10]}")
    for k in a:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k]):
            sys.exit(f"{what}: {k} differs")


def check_unet_vae(ldm, pipe):
    unet_cfg, vae_cfg = dict(pipe.unet.config), dict(pipe.vae.config)
    back = sfu.convert_ldm_unet_checkpoint(dict(ldm), unet_cfg)
    same(back, pipe.unet.state_dict(), "unet round trip")
    back = sfu.convert_ldm_vae_checkpoint(dict(ldm), vae_cfg)
    same(back, pipe.vae.state_dict(), "vae round trip")


def check_openclip(ldm, model_dir, pipe, nlayers):
    # diffusers ignores SD 2.x's block 23 by name; here the extra block is nlayers.
    drop = f"cond_stage_model.model.transformer.resblocks.{nlayers}."
    kept = {k: v for k, v in ldm.items() if not k.startswith(drop)}
    te = sfu.create_text_encoder_from_open_clip_checkpoint(model_dir, kept, subfolder="text_encoder",
                                                           torch_dtype=pipe.text_encoder.dtype)
    same(te.state_dict(), pipe.text_encoder.state_dict(), "OpenCLIP round trip")


# ---- the fixtures ------------------------------------------------------------------------

def load(name, dtype=torch.float32):
    """The pipeline with its tensors in the dtype they are stored in."""
    return StableDiffusionPipeline.from_pretrained(os.path.join(MODELS, name), torch_dtype=dtype,
                                                   safety_checker=None, requires_safety_checker=False)


def sd1_buffers(dtype):
    """What a real SD 1.x checkpoint keeps beside the weights (LatentDiffusion's buffers)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    return {"betas": betas.float(), "alphas_cumprod": alphas_cumprod.float(),
            "model_ema.decay": torch.tensor(0.9999), "model_ema.num_updates": torch.tensor(1, dtype=torch.int32),
            "cond_stage_model.transformer.text_model.embeddings.position_ids":
                torch.arange(77, dtype=torch.int64)[None]}


def make_bin_folder():
    src, dst = os.path.join(MODELS, "tiny-sd-a"), os.path.join(MODELS, "tiny-sd-a-bin")
    shutil.rmtree(dst, ignore_errors=True)
    pipe = load("tiny-sd-a")
    pipe.save_pretrained(dst, safe_serialization=False)
    for comp in ("unet", "vae", "text_encoder"):
        names = sorted(os.listdir(os.path.join(dst, comp)))
        assert not any(n.endswith(".safetensors") for n in names), names
    # The .bin files must hold the very tensors of the safetensors ones.
    again = StableDiffusionPipeline.from_pretrained(dst, safety_checker=None, use_safetensors=False,
                                                    requires_safety_checker=False)
    for comp in ("unet", "vae", "text_encoder"):
        same(getattr(again, comp).state_dict(), getattr(pipe, comp).state_dict(), comp + " .bin")
    print("wrote", dst)


def make_ldm_a():
    pipe = load("tiny-sd-a")
    ldm = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config)
    ldm.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    ldm.update(clip_to_ldm(pipe.text_encoder.state_dict()))
    check_unet_vae(ldm, pipe)
    ldm.update(sd1_buffers(torch.float32))
    path = os.path.join(MODELS, "tiny-sd-a-ldm.ckpt")
    torch.save({"state_dict": collections.OrderedDict(sorted(ldm.items())), "global_step": 470000,
                "epoch": 6}, path)
    print("wrote", path, len(ldm), "tensors")


def make_ldm_b():
    pipe = load("tiny-sd-b", torch.float16)
    gen = torch.Generator().manual_seed(5)
    nlayers = pipe.text_encoder.config.num_hidden_layers
    ldm = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config)
    ldm.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    ldm.update(clip_to_openclip(pipe.text_encoder.state_dict(), nlayers, gen))
    check_unet_vae(ldm, pipe)
    check_openclip(ldm, os.path.join(MODELS, "tiny-sd-b"), pipe, nlayers)
    path = os.path.join(MODELS, "tiny-sd-b-ldm.safetensors")
    save_file({k: v.contiguous() for k, v in ldm.items()}, path)
    print("wrote", path, len(ldm), "tensors")


# A tiny SD 1.x as the LDM repository would configure it (v1-inference.yaml's keys).
TINY_C_ORIGINAL = {"model": {"params": {
    "linear_start": 0.00085, "linear_end": 0.012, "scale_factor": 0.18215,
    "cond_stage_config": {"target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"},
    "unet_config": {"params": {
        "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 32,
        "attention_resolutions": [1], "num_res_blocks": 1, "channel_mult": [1, 1],
        "num_heads": 8, "use_spatial_transformer": True, "transformer_depth": 1,
        "context_dim": 64, "legacy": False}},
    "first_stage_config": {"params": {"embed_dim": 4, "ddconfig": {
        "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
        "ch": 32, "ch_mult": [1, 1], "num_res_blocks": 1, "attn_resolutions": [],
        "dropout": 0.0}}}}}}


def perturb(model, seed):
    """Every parameter off its initial value (as make_tiny_models.py does)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif p.dim() <= 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(noise / p[0].numel() ** 0.5)


def make_ldm_c():
    """tiny-sd-c: configs from the original config by diffusers' own functions, as
    from_single_file makes them (image_size 512, scheduler_type "ddim")."""
    orig = TINY_C_ORIGINAL
    unet = UNet2DConditionModel(**sfu.create_unet_diffusers_config(orig, image_size=512))
    vae = AutoencoderKL(**sfu.create_vae_diffusers_config(orig, image_size=512))
    sched = sfu.create_scheduler_from_ldm("StableDiffusionPipeline", orig, {},
                                          scheduler_type="ddim")["scheduler"]
    tok = CLIPTokenizer.from_pretrained(os.path.join(MODELS, "tiny-sd-a", "tokenizer"))
    # openai/clip-vit-large-patch14's kind of config at a tiny width: 64-channel heads
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok.get_vocab()), hidden_size=64, intermediate_size=37,
        num_attention_heads=1, num_hidden_layers=2, max_position_embeddings=77,
        hidden_act="quick_gelu", layer_norm_eps=1e-5, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    torch.manual_seed(3)
    for i, m in enumerate((text, unet, vae)):
        perturb(m, 30 + i)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False).to(torch.float16)
    out = os.path.join(MODELS, "tiny-sd-c-config")
    shutil.rmtree(out, ignore_errors=True)
    pipe.save_pretrained(out, safe_serialization=True)
    for comp in ("unet", "vae", "text_encoder"):  # configs only: the weights are the single file
        for name in os.listdir(os.path.join(out, comp)):
            if name.endswith(".safetensors"):
                os.remove(os.path.join(out, comp, name))
    ldm = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config)
    ldm.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    ldm.update(clip_to_ldm(pipe.text_encoder.state_dict()))
    check_unet_vae(ldm, pipe)
    path = os.path.join(MODELS, "tiny-sd-c-ldm.safetensors")
    save_file({k: v.contiguous() for k, v in ldm.items()}, path)
    print("wrote", path, len(ldm), "tensors, and", out)


# The original configs diffusers 0.27 fetches for SD 1.x and 2.x (CONFIG_URLS "v1", "v2"),
# the keys its conversion reads.
V1_INFERENCE = {"model": {"params": {
    "linear_start": 0.00085, "linear_end": 0.0120, "timesteps": 1000, "scale_factor": 0.18215,
    "cond_stage_config": {"target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"},
    "unet_config": {"params": {
        "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
        "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
        "num_heads": 8, "use_spatial_transformer": True, "transformer_depth": 1,
        "context_dim": 768, "legacy": False}},
    "first_stage_config": {"params": {"embed_dim": 4, "ddconfig": {
        "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
        "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
        "dropout": 0.0}}}}}}
V2_INFERENCE_V = {"model": {"params": {
    "parameterization": "v", "linear_start": 0.00085, "linear_end": 0.0120, "timesteps": 1000,
    "scale_factor": 0.18215,
    "cond_stage_config": {"target": "ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder",
                          "params": {"freeze": True, "layer": "penultimate"}},
    "unet_config": {"params": {
        "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
        "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
        "num_head_channels": 64, "use_spatial_transformer": True,
        "use_linear_in_transformer": True, "transformer_depth": 1, "context_dim": 1024,
        "legacy": False}},
    "first_stage_config": V1_INFERENCE["model"]["params"]["first_stage_config"]}}}
# openai/clip-vit-large-patch14 and stabilityai/stable-diffusion-2's text_encoder configs.
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
              num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu",
              projection_dim=768)
OPENCLIP_H = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096,
                  num_attention_heads=16, num_hidden_layers=23, max_position_embeddings=77,
                  hidden_act="gelu", projection_dim=512)


def full_size(name, orig, text_cfg, image_size, openclip):
    """The keys of a full-size single file, and the configs diffusers makes for it."""
    out = os.path.join(ROOT, "tests", "fixtures", "single_file", name)
    shutil.rmtree(out, ignore_errors=True)
    unet_cfg = sfu.create_unet_diffusers_config(orig, image_size=image_size)
    vae_cfg = sfu.create_vae_diffusers_config(orig, image_size=image_size)
    sched = sfu.create_scheduler_from_ldm("StableDiffusionPipeline", orig, {},
                                          scheduler_type="ddim")["scheduler"]
    shapes = {}
    with torch.no_grad():
        unet = UNet2DConditionModel(**unet_cfg)
        ldm = unet_to_ldm(unet.state_dict(), unet.config)
        same(sfu.convert_ldm_unet_checkpoint(dict(ldm), dict(unet.config)), unet.state_dict(),
             name + " unet")
        unet.save_config(os.path.join(out, "unet"))
        shapes.update({k: v.shape for k, v in ldm.items()})
        del unet, ldm
        vae = AutoencoderKL(**vae_cfg)
        ldm = vae_to_ldm(vae.state_dict(), vae.config)
        same(sfu.convert_ldm_vae_checkpoint(dict(ldm), dict(vae.config)), vae.state_dict(),
             name + " vae")
        vae.save_config(os.path.join(out, "vae"))
        shapes.update({k: v.shape for k, v in ldm.items()})
        del vae, ldm
        text = CLIPTextModel(CLIPTextConfig(**text_cfg))
        sd = text.state_dict()
        if openclip:
            ldm = clip_to_openclip(sd, text_cfg["num_hidden_layers"], torch.Generator())
        else:
            ldm = clip_to_ldm(sd)
            ldm.update(sd1_buffers(torch.float32))
        text.config.save_pretrained(os.path.join(out, "text_encoder"))
        shapes.update({k: v.shape for k, v in ldm.items()})
        del text, ldm
    sched.save_config(os.path.join(out, "scheduler"))
    keys = [[k, "I64" if "position_ids" in k or k.endswith("num_updates") else "F16", list(s)]
            for k, s in sorted(shapes.items())]
    with open(os.path.join(out + "-keys.json"), "w") as f:
        json.dump({"tensors": keys}, f, separators=(",", ":"))
    print("wrote", out, len(keys), "keys")


def twin(sd, path):
    save_file({k: v.detach().clone().contiguous() for k, v in sd.items()}, path)


def make_torch_fixtures():
    os.makedirs(TORCH_FIXTURES, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    base = torch.randn(10, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f16"] = torch.randn(3, generator=g).half()
    sd["bf16"] = torch.randn(4, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, generator=g).double()
    sd["i64"] = torch.tensor([1, -2, 3 << 40])
    sd["i32"] = torch.tensor([7, -8], dtype=torch.int32)
    sd["i16"] = torch.tensor([9, -10], dtype=torch.int16)
    sd["i8"] = torch.tensor([-11], dtype=torch.int8)
    sd["u8"] = torch.tensor([250, 3], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["view"] = base[2:5]  # offset 2 into a shared storage
    sd["base"] = base
    sd["row"] = base.view(2, 5)[1]  # offset 5
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["scalar"] = torch.tensor(1.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["unit_dim"] = torch.randn(3, generator=g).as_strided((3, 1), (1, 7))  # contiguous
    path = os.path.join(TORCH_FIXTURES, "dtypes.pt")
    torch.save(sd, path)
    torch.save(sd, os.path.join(TORCH_FIXTURES, "legacy.pt"), _use_new_zipfile_serialization=False)
    twin(sd, os.path.join(TORCH_FIXTURES, "dtypes.safetensors"))

    inner = collections.OrderedDict(a=torch.arange(4.0), b=torch.ones(2, 2, dtype=torch.float16))
    ckpt = {"state_dict": {"state_dict": inner, "note": "inner"}, "global_step": 3, "epoch": 1,
            "hparams": {"lr": 0.1, "name": "café", "betas": (0.9, 0.99), "flag": True,
                        "blob": b"\x00\xffbytes", "list": [1, None, 2.5], "big": 1 << 70}}
    torch.save(ckpt, os.path.join(TORCH_FIXTURES, "nested.ckpt"))
    twin(inner, os.path.join(TORCH_FIXTURES, "nested.safetensors"))

    torch.save({"ok": torch.zeros(2), "t": torch.arange(6.0).reshape(2, 3).t()},
               os.path.join(TORCH_FIXTURES, "noncontiguous.pt"))
    print("wrote", TORCH_FIXTURES)


def main():
    torch.set_num_threads(2)
    make_torch_fixtures()
    make_bin_folder()
    make_ldm_a()
    make_ldm_b()
    make_ldm_c()
    full_size("sd15", V1_INFERENCE, CLIP_L, 512, openclip=False)
    full_size("sd21", V2_INFERENCE_V, OPENCLIP_H, 768, openclip=True)


if __name__ == "__main__":
    main()
