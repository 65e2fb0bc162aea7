"""Builds the tiny random-weight SD 1.x pipelines the tests run, with diffusers itself,
and saves what diffusers computes from them, stage by stage, as .npy.

    .venv-torch/bin/python scripts/reference/make_tiny_models.py

Writes tests/models/<name>/ (the diffusers folder layout, as save_pretrained
writes it) and tests/reference/<name>/ (*.npy and manifest.json saying what
each file is). Everything is seeded, so a rerun writes the same files.

The two models differ where our code must follow the configs: layers per
block, head layouts (one number vs. a list), cross-attention widths, linear vs.
conv projections, activations, group counts; tiny-sd-b is stored in float16.
Every parameter is perturbed (norm weights too) so that none stays 1 or 0 and
a mix-up of two weights shows in the outputs.

The tokenizer is CLIP's real BPE cut to its first 1000 merges: the ids of the
kept tokens are CLIP's own (bytes, then merges in order, then the two special
tokens), so it is a true CLIPTokenizer with a vocabulary of 1514.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import diffusers
import transformers
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler,
                       EulerAncestralDiscreteScheduler, PNDMScheduler,
                       StableDiffusionImg2ImgPipeline, StableDiffusionPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLIP_VOCAB = os.environ.get("SDREPL_CLIP_VOCAB", os.path.join(ROOT, "..", "shared", "data", "clip-vocab"))
N_MERGES = 1000

PROMPTS = [
    "face of a human in  joy",
    "electronic art   of an angry human by Leonardo da Vinci",
    "a photograph of an astronaut riding a horse",
    "",
    "Café crème, naïve façade — 3 cats & 2 dogs!!!",
    "a very long prompt " * 20,
]

SD14_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      num_train_timesteps=1000, skip_prk_steps=True, steps_offset=1,
                      set_alpha_to_one=False)


def tiny_tokenizer(out_dir):
    """CLIP's vocabulary and merges cut to the first N_MERGES merges."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(CLIP_VOCAB, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(CLIP_VOCAB, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    header, merges = lines[0], lines[1:1 + N_MERGES]
    keep = 512 + N_MERGES
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    small = {tok: i for tok, i in by_id if i < keep}
    small["<|startoftext|>"] = keep
    small["<|endoftext|>"] = keep + 1
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(small, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join([header] + merges) + "\n")
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(CLIP_VOCAB, name), os.path.join(out_dir, name))
    return CLIPTokenizer.from_pretrained(out_dir)


def perturb(model, seed):
    """Every parameter moved off its initial value; norm weights around 1."""
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


def build(name, text_cfg, unet_cfg, vae_cfg, seed):
    torch.manual_seed(seed)
    tok = tiny_tokenizer(os.path.join(ROOT, "tests", "models", name, "tokenizer"))
    vocab = len(tok.get_vocab())
    text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab, bos_token_id=tok.bos_token_id,
                                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                        max_position_embeddings=77, **text_cfg))
    unet = UNet2DConditionModel(**unet_cfg)
    vae = AutoencoderKL(**vae_cfg)
    for i, m in enumerate((text, unet, vae)):
        perturb(m, seed * 10 + i)
    sched = PNDMScheduler(**SD14_SCHEDULER)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    return pipe


MODELS = {
    "tiny-sd-a": dict(
        seed=1,
        dtype=torch.float32,
        text=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                  num_hidden_layers=3, hidden_act="quick_gelu", layer_norm_eps=1e-5),
        unet=dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=2,
                  block_out_channels=(32, 64),
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                  cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
                 block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8,
                 down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3),
    ),
    "tiny-sd-b": dict(
        seed=2,
        dtype=torch.float16,
        text=dict(hidden_size=24, intermediate_size=50, num_attention_heads=2,
                  num_hidden_layers=2, hidden_act="gelu", layer_norm_eps=1e-5),
        unet=dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                  block_out_channels=(32, 32, 64),
                  down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                  cross_attention_dim=24, attention_head_dim=(2, 4, 8), norm_num_groups=8,
                  use_linear_projection=True),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=16,
                 block_out_channels=(16, 32), layers_per_block=2, norm_num_groups=8,
                 down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2),
    ),
}


class Recorder:
    def __init__(self, name):
        self.dir = os.path.join(ROOT, "tests", "reference", name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                       "transformers": transformers.__version__,
                                       "numpy": np.__version__},
                         "model": name, "files": {}}

    def save(self, key, array, what, **meta):
        a = array.detach().cpu().numpy() if torch.is_tensor(array) else np.asarray(array)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            sys.exit(f"{key}: the reference holds NaN or infinity")
        np.save(os.path.join(self.dir, key + ".npy"), a)
        self.manifest["files"][key] = dict(what=what, shape=list(a.shape), dtype=str(a.dtype), **meta)

    def close(self):
        with open(os.path.join(self.dir, "manifest.json"), "w") as f:
            json.dump(self.manifest, f, indent=1, ensure_ascii=False)


def text_stages(rec, pipe):
    tok, text = pipe.tokenizer, pipe.text_encoder
    rec.manifest["prompts"] = PROMPTS
    for i, prompt in enumerate(PROMPTS):
        plain = tok(prompt).input_ids
        rec.save(f"tokens_{i}", np.array(plain, dtype=np.int64),
                 "tokenizer(prompt).input_ids (no padding)", prompt=prompt)
        ids = tok(prompt, padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
        rec.save(f"input_ids_{i}", ids, "padding='max_length', max_length=77, truncation=True",
                 prompt=prompt)
    batch = tok(PROMPTS[:2], padding="max_length", max_length=tok.model_max_length,
                truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        out = text(batch, output_hidden_states=True)
    rec.save("text_input_ids", batch, "the ids of prompts 0 and 1 as one batch (2, 77)")
    rec.save("text_last_hidden_state", out.last_hidden_state,
             "text_encoder(text_input_ids).last_hidden_state (final layer norm applied)")
    rec.save("text_hidden_states", torch.stack(out.hidden_states),
             "output_hidden_states=True: (layers + 1, 2, 77, D); [0] is the embeddings; "
             "no final layer norm")
    # diffusers' clip_skip: hidden_states[-(clip_skip + 1)] then the final layer norm.
    skip1 = text.text_model.final_layer_norm(out.hidden_states[-2])
    rec.save("text_clip_skip_1", skip1, "clip_skip=1 as diffusers' encode_prompt computes it")


def unet_stages(rec, pipe):
    """One UNet call on a batch of two, as classifier-free guidance makes it."""
    unet = pipe.unet
    size = unet.config.sample_size
    g = torch.Generator().manual_seed(7)
    sample = torch.randn((2, unet.config.in_channels, size, size), generator=g)
    timesteps = torch.tensor([981.0, 501.0])
    context = torch.from_numpy(np.load(os.path.join(rec.dir, "text_last_hidden_state.npy")))
    with torch.no_grad():
        out = unet(sample, timesteps, encoder_hidden_states=context).sample
    rec.save("unet_sample", sample, "the latents given to the UNet (2, C, h, w)")
    rec.save("unet_timesteps", timesteps, "one timestep per batch entry")
    rec.save("unet_context", context, "encoder_hidden_states: text_last_hidden_state")
    rec.save("unet_out", out, "unet(unet_sample, unet_timesteps, encoder_hidden_states=unet_context).sample")


def vae_stages(rec, pipe):
    """The VAE's encoder (the posterior's parameters) and decoder on their own."""
    vae = pipe.vae
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    side = pipe.unet.config.sample_size * f
    g = torch.Generator().manual_seed(11)
    image = torch.rand((1, 3, side, side), generator=g) * 2 - 1
    with torch.no_grad():
        posterior = vae.encode(image).latent_dist
        z = torch.randn((1, vae.config.latent_channels, side // f, side // f), generator=g)
        decoded = vae.decode(z).sample
    rec.save("vae_encode_input", image, "an image in [-1, 1] (1, 3, H, W)")
    rec.save("vae_moments", posterior.parameters, "vae.encode(x).latent_dist.parameters: mean then logvar")
    rec.save("vae_mean", posterior.mean, "latent_dist.mean")
    rec.save("vae_std", posterior.std, "latent_dist.std (logvar clamped to [-30, 20])")
    rec.save("vae_decode_input", z, "latents given to vae.decode (already divided by scaling_factor)")
    rec.save("vae_decode_output", decoded, "vae.decode(z).sample")


SCHEDULERS = {
    "PNDMScheduler": PNDMScheduler,
    "DDIMScheduler": DDIMScheduler,
    "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler,
    "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler,
}

# Whole runs: (name, pipeline kind, arguments, scheduler, how the seed is given).
# "global" seeds torch.manual_seed as the notebook does; "generator" passes
# torch.Generator().manual_seed(seed); "generators" a list, one per image, seeded
# seed, seed + 1, ...
RUNS = [
    ("t2i_pndm", "txt2img", dict(prompt="a photograph of an astronaut riding a horse",
                                 num_inference_steps=10), "PNDMScheduler", ("global", 0)),
    ("t2i_ddim_n3", "txt2img", dict(prompt="a red cube", negative_prompt="blurry",
                                    num_images_per_prompt=3, num_inference_steps=8,
                                    guidance_scale=5.0), "DDIMScheduler", ("generator", 42)),
    ("t2i_eulera", "txt2img", dict(prompt=["a cat", "a dog"], num_inference_steps=7),
     "EulerAncestralDiscreteScheduler", ("generator", 3)),
    ("t2i_dpm_noguidance", "txt2img", dict(prompt="a lake at dawn", num_inference_steps=9,
                                           guidance_scale=1.0),
     "DPMSolverMultistepScheduler", ("global", 5)),
    ("t2i_clip_skip", "txt2img", dict(prompt="an oil painting", num_inference_steps=5, clip_skip=1),
     "PNDMScheduler", ("global", 9)),
    ("i2i_pndm_s08_n3", "img2img", dict(prompt="face of a human in  joy", strength=0.8,
                                        num_images_per_prompt=3, num_inference_steps=10),
     "PNDMScheduler", ("global", 100)),
    ("i2i_pndm_s03", "img2img", dict(prompt="electronic art   of an angry human by Leonardo da Vinci",
                                     strength=0.3, num_inference_steps=10), "PNDMScheduler",
     ("global", 1000)),
    ("i2i_ddim_s10", "img2img", dict(prompt="a sketch", strength=1.0, num_inference_steps=6),
     "DDIMScheduler", ("generator", 7)),
    ("i2i_eulera_s075", "img2img", dict(prompt="a sketch", strength=0.75, num_inference_steps=8),
     "EulerAncestralDiscreteScheduler", ("generator", 8)),
    ("i2i_dpm_s08", "img2img", dict(prompt="a sketch", strength=0.8, num_inference_steps=10,
                                    negative_prompt="ugly"),
     "DPMSolverMultistepScheduler", ("global", 11)),
    # A list of generators: each image's latents and each step's noise from its own.
    ("t2i_eulera_list", "txt2img", dict(prompt="a cat", num_images_per_prompt=2,
                                        num_inference_steps=6),
     "EulerAncestralDiscreteScheduler", ("generators", 21)),
    ("i2i_eulera_list_n3", "img2img", dict(prompt="a sketch", strength=0.8, num_images_per_prompt=3,
                                           num_inference_steps=8),
     "EulerAncestralDiscreteScheduler", ("generators", 31)),
]


def init_image(side):
    """The sketch img2img starts from, at the model's size."""
    return common.sketch(side, side)


def whole_runs(rec, name):
    out_dir = os.path.join(ROOT, "tests", "models", name)
    side = None
    runs = []
    for run, kind, args, sched, (how, seed) in RUNS:
        cls = StableDiffusionPipeline if kind == "txt2img" else StableDiffusionImg2ImgPipeline
        pipe = cls.from_pretrained(out_dir, torch_dtype=torch.float32, safety_checker=None,
                                   requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        pipe.scheduler = SCHEDULERS[sched].from_config(pipe.scheduler.config)
        side = side or pipe.unet.config.sample_size * pipe.vae_scale_factor
        call = dict(args, output_type="np")
        if kind == "img2img":
            image = init_image(side)
            image.save(os.path.join(rec.dir, "init_image.png"))
            call["image"] = image
        if how == "global":
            torch.manual_seed(seed)
        elif how == "generators":
            n = (len(args["prompt"]) if isinstance(args["prompt"], list) else 1) * \
                args.get("num_images_per_prompt", 1)
            call["generator"] = [torch.Generator().manual_seed(seed + i) for i in range(n)]
        else:
            call["generator"] = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            images = pipe(**call).images
        rec.save("run_" + run, images, f"{kind} output_type='np' (B, H, W, 3)")
        runs.append(dict(name=run, kind=kind, args=args, scheduler=sched, seed=seed, seed_via=how))
    rec.manifest["runs"] = runs


def main():
    torch.set_num_threads(2)
    for name, spec in MODELS.items():
        pipe = build(name, spec["text"], spec["unet"], spec["vae"], spec["seed"])
        out = os.path.join(ROOT, "tests", "models", name)
        # Weights stored in the model's dtype; references computed in float32 from
        # the stored weights, as our CPU backend computes.
        pipe.to(spec["dtype"]).save_pretrained(out, safe_serialization=True)
        pipe = StableDiffusionPipeline.from_pretrained(out, torch_dtype=torch.float32,
                                                       safety_checker=None,
                                                       requires_safety_checker=False)
        rec = Recorder(name)
        rec.manifest["stored_dtype"] = str(spec["dtype"]).replace("torch.", "")
        text_stages(rec, pipe)
        unet_stages(rec, pipe)
        vae_stages(rec, pipe)
        whole_runs(rec, name)
        rec.close()
        print(f"{name}: {out}")


if __name__ == "__main__":
    main()
