"""Stable Diffusion XL as diffusers 0.27.2 runs it (StableDiffusionXLPipeline), for
tests/lua/test_xl.lua:

  - tests/models/tiny-sdxl: SDXL's layout at a tiny size: two CLIP text encoders (the
    second a CLIPTextModelWithProjection with gelu, as OpenCLIP bigG; its tokenizer pads
    with "!"), a UNet with the "text_time" added embedding, linear projections and several
    transformer layers per block, tiny-sd-a's VAE with SDXL's scaling factor, SDXL's Euler
    scheduler config, force_zeros_for_empty_prompt;
  - encode_prompt's four outputs for a few inputs; the UNet on random inputs with
    added_cond_kwargs;
  - tests/models/tiny-sdxl-refiner: the refiner's layout (text_encoder_2 only, aesthetic-score
    time ids), for StableDiffusionXLImg2ImgPipeline with the base and the refiner, and the
    ensemble of experts (the base to denoising_end, the refiner from denoising_start);
  - whole runs: the defaults (negative zeros), negative prompts and prompt_2, the micro-
    conditioning sizes with their negatives, denoising_end, no guidance, clip_skip with
    guidance_rescale, force_zeros_for_empty_prompt off, another scheduler, latents out.

    .venv-torch/bin/python scripts/reference/make_xl_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
                          CLIPTokenizer)

from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from PIL import Image, ImageDraw

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
SRC = os.path.join(MODELS, "tiny-sd-a")
MODEL = os.path.join(MODELS, "tiny-sdxl")
REFINER = os.path.join(MODELS, "tiny-sdxl-refiner")
INPAINT = os.path.join(MODELS, "tiny-sdxl-inpaint")
OUT = os.path.join(ROOT, "tests", "reference", "xl")

CASES = [
    ("xl_defaults", None, {}, dict(prompt="a photo of an astronaut riding a horse",
                                   num_inference_steps=4, seed=1)),
    ("xl_negatives", None, {}, dict(prompt="a red car", prompt_2="a blue sky",
                                    negative_prompt="blurry", negative_prompt_2="dark",
                                    num_images_per_prompt=2, num_inference_steps=3,
                                    guidance_scale=7.0, seeds=[2, 3])),
    ("xl_sizes", None, {}, dict(prompt=["a cat", "a dog on a hill"], height=48, width=64,
                                original_size=[128, 96], crops_coords_top_left=[8, 4],
                                target_size=[64, 80], negative_original_size=[32, 32],
                                negative_crops_coords_top_left=[0, 2],
                                negative_target_size=[48, 48], num_inference_steps=3, seed=4)),
    ("xl_denoising_end", None, {}, dict(prompt="a lighthouse", denoising_end=0.6,
                                        num_inference_steps=5, output_type="latent", seed=5)),
    ("xl_unguided", None, {}, dict(prompt=["a cat", "a tree"], guidance_scale=1.0,
                                   num_inference_steps=3, seed=6)),
    ("xl_clip_skip", None, {}, dict(prompt="a castle", negative_prompt="fog", clip_skip=1,
                                    guidance_rescale=0.7, num_inference_steps=3, seed=7)),
    ("xl_no_zeros", None, {"force_zeros_for_empty_prompt": False},
     dict(prompt="a castle", num_inference_steps=3, seed=8)),
    ("xl_dpm", "dpm", {}, dict(prompt="a river at dawn", num_inference_steps=4, seed=9)),
    # SDXL-Turbo's way: Euler ancestral with trailing timesteps, one step, no guidance
    ("xl_turbo", "turbo", {}, dict(prompt="a cat", num_inference_steps=1, guidance_scale=0.0,
                                   seed=10)),
]

# StableDiffusionXLImg2ImgPipeline: (name, model, scheduler, call); "ensemble" runs the base to
# denoising_end with latents out, then the refiner from there (diffusers' ensemble of experts)
I2I_CASES = [
    ("xl_i2i_base", "base", None, dict(prompt="a red car", image="sketch64", strength=0.5,
                                       num_inference_steps=4, seed=21)),
    ("xl_i2i_base_batch", "base", None, dict(prompt=["a cat", "a dog"], image="sketch80x72",
                                             negative_prompt="blurry", num_images_per_prompt=2,
                                             negative_original_size=[40, 40],
                                             crops_coords_top_left=[4, 8],
                                             negative_crops_coords_top_left=[2, 2],
                                             num_inference_steps=5, seed=22)),
    ("xl_refiner", "refiner", None, dict(prompt="a castle", image="sketch64", strength=0.6,
                                         negative_prompt="fog", aesthetic_score=7.0,
                                         negative_aesthetic_score=2.0, num_inference_steps=5,
                                         seed=26)),
    ("xl_refiner_dpm", "refiner", "dpm", dict(prompt="a castle", image="sketch64", strength=0.9,
                                              num_inference_steps=6, denoising_end=0.8,
                                              seed=27, guidance_scale=1.0)),
    ("xl_ensemble", "ensemble", None, dict(prompt="a lighthouse", num_inference_steps=6,
                                           high_noise_frac=0.7, seed=28)),
]

# StableDiffusionXLInpaintPipeline: (name, model, call): the base's legacy blend (its default
# strength 0.9999 starts from the picture's noised latents, 1.0 from pure noise) and an
# inpainting UNet of 9 channels
INPAINT_CASES = [
    ("xl_inpaint_legacy", "base", dict(prompt="a red car", image="sketch64", mask_image="box64",
                                       num_inference_steps=4, seed=41)),
    ("xl_inpaint_full", "base", dict(prompt=["a cat", "a dog"], image="sketch80x72",
                                     mask_image="box64", negative_prompt="blurry", strength=1.0,
                                     num_images_per_prompt=2, height=48, width=64,
                                     num_inference_steps=3, seed=42)),
    ("xl_inpaint_9ch", "inpaint", dict(prompt="a castle", image="sketch64", mask_image="box64",
                                       strength=0.7, aesthetic_score=5.0, num_inference_steps=5,
                                       seeds=[43])),
    # denoising_start on a picture: its latents not noised, the last steps only
    ("xl_inpaint_9ch_start", "inpaint", dict(prompt="a castle", image="sketch64",
                                             mask_image="box64", denoising_start=0.6,
                                             num_inference_steps=5, seed=44)),
]

ENCODE_CASES = [
    ("enc_plain", dict(prompt="a red car")),
    ("enc_both", dict(prompt=["a red car", "a tree"], prompt_2=["a blue sky", "rain"],
                      negative_prompt=["blurry", "dark"], num_images_per_prompt=2)),
    ("enc_skip", dict(prompt="a castle", negative_prompt="fog", clip_skip=2)),
    ("enc_unguided", dict(prompt="a castle", do_classifier_free_guidance=False)),
]


def make_text_encoders():
    base = dict(vocab_size=1514, hidden_size=32, intermediate_size=37, num_attention_heads=4,
                num_hidden_layers=3, max_position_embeddings=77, bos_token_id=1512,
                eos_token_id=2, pad_token_id=1)
    torch.manual_seed(61)
    te1 = CLIPTextModel(CLIPTextConfig(hidden_act="quick_gelu", **base))
    torch.manual_seed(62)
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(hidden_act="gelu", projection_dim=24, **base))
    return te1.eval(), te2.eval()


def make_unet(seed, layers_per_block, transformer_layers, cross_attention_dim, time_ids,
              in_channels=4):
    """A tiny SDXL UNet: the text_time embedding over the pooled width (24) and time_ids ids."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=in_channels, out_channels=4, layers_per_block=layers_per_block,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        transformer_layers_per_block=transformer_layers, use_linear_projection=True,
        cross_attention_dim=cross_attention_dim, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=24 + time_ids * 8,
        norm_num_groups=16)
    # diffusers initialises some layers at zero; random ones so every part shows
    with torch.no_grad():
        for p in unet.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn_like(p) * 0.05)
    return unet.eval()


def make_refiner(base):
    """SDXL's refiner layout: text_encoder_2 alone (the base's), a UNet attending to its width
    with aesthetic-score time ids, requires_aesthetics_score, no zeros for an empty prompt."""
    if os.path.exists(REFINER):
        shutil.rmtree(REFINER)
    unet = make_unet(64, 1, (1, 1), 32, 5)
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=base.vae, text_encoder=None, text_encoder_2=base.text_encoder_2, tokenizer=None,
        tokenizer_2=base.tokenizer_2, unet=unet, scheduler=base.scheduler,
        requires_aesthetics_score=True, force_zeros_for_empty_prompt=False, add_watermarker=False)
    pipe.save_pretrained(REFINER, safe_serialization=True)
    print("wrote", REFINER)


def make_inpaint(base):
    """An SDXL inpainting model's layout: the base's parts, a UNet of 9 input channels."""
    if os.path.exists(INPAINT):
        shutil.rmtree(INPAINT)
    pipe = StableDiffusionXLInpaintPipeline(
        vae=base.vae, text_encoder=base.text_encoder, text_encoder_2=base.text_encoder_2,
        tokenizer=base.tokenizer, tokenizer_2=base.tokenizer_2,
        unet=make_unet(65, 1, (1, 1), 64, 6, in_channels=9), scheduler=base.scheduler,
        add_watermarker=False)
    pipe.save_pretrained(INPAINT, safe_serialization=True)
    print("wrote", INPAINT)


def make_model():
    if os.path.exists(MODEL):
        shutil.rmtree(MODEL)
    tok = CLIPTokenizer.from_pretrained(os.path.join(SRC, "tokenizer"))
    tok2 = CLIPTokenizer.from_pretrained(os.path.join(SRC, "tokenizer"), pad_token="!")
    te1, te2 = make_text_encoders()
    vae = AutoencoderKL.from_pretrained(os.path.join(SRC, "vae"))
    vae.register_to_config(scaling_factor=0.13025)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                   beta_schedule="scaled_linear", steps_offset=1,
                                   timestep_spacing="leading", interpolation_type="linear",
                                   use_karras_sigmas=False)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok,
                                     tokenizer_2=tok2, unet=make_unet(63, 2, (1, 2), 64, 6),
                                     scheduler=sched,
                                     force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.save_pretrained(MODEL, safe_serialization=True)
    print("wrote", MODEL)
    make_refiner(pipe)
    make_inpaint(pipe)


def call_args(args):
    """A case's call: its generator(s) made from seed or seeds, the sizes as tuples."""
    call = dict(args)
    gen = ([torch.Generator().manual_seed(s) for s in call.pop("seeds")] if "seeds" in call
           else torch.Generator().manual_seed(call.pop("seed")))
    for k in list(call):
        if k.endswith("_size") or k.endswith("_top_left"):
            call[k] = tuple(call[k])
    return call, gen


def load(**kw):
    pipe = StableDiffusionXLPipeline.from_pretrained(MODEL, add_watermarker=False, **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), np.asarray(arr.detach() if torch.is_tensor(arr) else arr,
                                                          dtype=np.float32))


def i2i_cases(manifest, pics):
    for name, which, sched, args in I2I_CASES:
        call, gen = call_args(args)
        if which == "ensemble":
            frac = call.pop("high_noise_frac")
            base = load()
            latents = base(generator=gen, output_type="latent", denoising_end=frac, **call).images
            pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(REFINER, add_watermarker=False)
            pipe.set_progress_bar_config(disable=True)
            out = pipe(image=latents, denoising_start=frac, generator=gen, output_type="np",
                       **call).images
        else:
            pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
                MODEL if which == "base" else REFINER, add_watermarker=False)
            pipe.set_progress_bar_config(disable=True)
            if sched == "dpm":
                pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
            call["image"] = pics[call["image"]]
            out = pipe(generator=gen, output_type="np", **call).images
        save(name, out)
        entry = {"name": name, "model": which, "scheduler": sched}
        entry.update(args)
        manifest["img2img"].append(entry)
        print(name, np.asarray(out).shape)
    # the refiner's encode_prompt: its one text encoder
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(REFINER, add_watermarker=False)
    with torch.no_grad():
        pe, ne, pp, npool = pipe.encode_prompt("a castle", device="cpu", negative_prompt="fog")
    for k, v in dict(enc_refiner_prompt_embeds=pe, enc_refiner_negative_embeds=ne,
                     enc_refiner_pooled=pp, enc_refiner_negative_pooled=npool).items():
        save(k, v)


def inpaint_cases(manifest, pics):
    for name, which, args in INPAINT_CASES:
        call, gen = call_args(args)
        pipe = StableDiffusionXLInpaintPipeline.from_pretrained(
            MODEL if which == "base" else INPAINT, add_watermarker=False)
        pipe.set_progress_bar_config(disable=True)
        call["image"] = pics[call["image"]]
        call["mask_image"] = pics[call["mask_image"]]
        out = pipe(generator=gen, output_type="np", **call).images
        save(name, out)
        entry = {"name": name, "model": which}
        entry.update(args)
        manifest["inpaint"].append(entry)
        print(name, np.asarray(out).shape)


def inpaint_ensemble_case(manifest, pics):
    """The ensemble of experts for inpainting: the base to denoising_end with latents out, then
    from denoising_start on those latents (a 4-channel UNet's legacy blend)."""
    pipe = StableDiffusionXLInpaintPipeline.from_pretrained(MODEL, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(45)
    args = dict(prompt="a red car", mask_image=pics["box64"], num_inference_steps=6)
    latents = pipe(image=pics["sketch64"], denoising_end=0.7, output_type="latent", generator=g,
                   **args).images
    save("xl_inpaint_ensemble_latents", latents.numpy())
    out = pipe(image=latents, denoising_start=0.7, output_type="np", generator=g, **args).images
    save("xl_inpaint_ensemble", out)
    manifest["inpaint"].append({"name": "xl_inpaint_ensemble", "model": "base"})
    print("xl_inpaint_ensemble", np.asarray(out).shape)


def box_mask(width, height):
    """White (to paint) in a box left of the middle, black elsewhere."""
    img = Image.new("L", (width, height), 0)
    ImageDraw.Draw(img).rectangle([width // 4, height // 4, width // 2 + 6, height * 3 // 4],
                                  fill=255)
    return img


def encode_cases(manifest):
    pipe = load()
    for name, args in ENCODE_CASES:
        call = dict(args)
        cfg = call.pop("do_classifier_free_guidance", True)
        with torch.no_grad():
            pe, ne, pp, npool = pipe.encode_prompt(device="cpu", do_classifier_free_guidance=cfg,
                                                   **call)
        save(name + "_prompt_embeds", pe)
        save(name + "_pooled", pp)
        if cfg:
            save(name + "_negative_embeds", ne)
            save(name + "_negative_pooled", npool)
        entry = {"name": name, "do_classifier_free_guidance": cfg}
        entry.update(args)
        manifest["encode"].append(entry)
        print(name, tuple(pe.shape), tuple(pp.shape))


def textual_inversion_case(manifest):
    """A multi-vector inversion in the first tokenizer only: the prompt is spelled out for it,
    while the second tokenizer sees the prompt as given (maybe_convert_prompt per tokenizer)."""
    pipe = load()
    pipe.load_textual_inversion(os.path.join(ROOT, "tests", "fixtures", "textual_inversion",
                                             "shiny", "learned_embeds.safetensors"),
                                token="<shiny>")
    out = pipe("a <shiny> car", negative_prompt="a <shiny> blur", num_inference_steps=3,
               generator=torch.Generator().manual_seed(31), output_type="np").images
    save("xl_textual_inversion", out)
    manifest["textual_inversion"] = "xl_textual_inversion"


def xl_embedding_case(manifest):
    """An SDXL embedding as its docs load one: a file holding clip_l and clip_g halves, each
    into its own tokenizer and text encoder under one token (two vectors each, so both prompts
    are spelled out, each by its own tokenizer), used in the negative prompt."""
    pipe = load()
    g = torch.Generator().manual_seed(33)
    d1 = pipe.text_encoder.config.hidden_size
    d2 = pipe.text_encoder_2.config.hidden_size
    state = {"clip_l": torch.randn(2, d1, generator=g) * 0.5,
             "clip_g": torch.randn(2, d2, generator=g) * 0.5}
    folder = os.path.join(ROOT, "tests", "fixtures", "textual_inversion", "xl")
    os.makedirs(folder, exist_ok=True)
    save_file(state, os.path.join(folder, "embedding.safetensors"))
    state = load_file(os.path.join(folder, "embedding.safetensors"))
    pipe.load_textual_inversion(state["clip_g"], token="<xl-neg>", text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    pipe.load_textual_inversion(state["clip_l"], token="<xl-neg>", text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    out = pipe("a red car", negative_prompt="<xl-neg>, blurry", num_inference_steps=3,
               generator=torch.Generator().manual_seed(34), output_type="np").images
    save("xl_embedding", out)
    manifest["embedding"] = "xl_embedding"


def unet_case(manifest):
    pipe = load()
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 4, 8, 12, generator=g)
    ctx = torch.randn(2, 5, 64, generator=g)
    text_embeds = torch.randn(2, 24, generator=g)
    time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [1024, 768, 16, 32, 512, 512]])
    t = torch.tensor([801.0, 31.0])
    with torch.no_grad():
        out = pipe.unet(x, t, encoder_hidden_states=ctx,
                        added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
    for k, v in dict(unet_x=x, unet_context=ctx, unet_text_embeds=text_embeds,
                     unet_time_ids=time_ids, unet_t=t, unet_out=out).items():
        save(k, v)
    manifest["unet"] = ["unet_x", "unet_t", "unet_context", "unet_text_embeds", "unet_time_ids",
                        "unet_out"]


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_model()
    manifest = {"cases": [], "encode": [], "img2img": [], "inpaint": []}
    pics = {"sketch64": common.sketch(64, 64), "sketch80x72": common.sketch(80, 72, 0.2),
            "box64": box_mask(64, 64)}
    for name, img in pics.items():
        img.save(os.path.join(OUT, name + ".png"))
    encode_cases(manifest)
    textual_inversion_case(manifest)
    xl_embedding_case(manifest)
    i2i_cases(manifest, pics)
    inpaint_cases(manifest, pics)
    inpaint_ensemble_case(manifest, pics)
    unet_case(manifest)
    for name, sched, load_kw, args in CASES:
        pipe = load(**load_kw)
        if sched == "dpm":
            pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        if sched == "turbo":
            pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(
                pipe.scheduler.config, timestep_spacing="trailing")
        call, gen = call_args(args)
        out_type = call.pop("output_type", "np")
        out = pipe(generator=gen, output_type=out_type, **call)
        images = out.images.numpy() if out_type == "latent" else out.images
        save(name, images)
        entry = {"name": name, "scheduler": sched, "load": load_kw}
        entry.update(args)
        manifest["cases"].append(entry)
        print(name, np.asarray(images).shape)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
