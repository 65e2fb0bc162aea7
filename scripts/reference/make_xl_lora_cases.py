"""LoRA on Stable Diffusion XL as diffusers 0.27.2 loads it with PEFT 0.10.0
(StableDiffusionXLLoraLoaderMixin), for tests/lua/test_xl_lora.lua, on the committed tiny
model tiny-sdxl (not changed):

  - two LoRA files: one as SDXL's training scripts save it (save_lora_weights with the UNet's,
    text_encoder's and text_encoder_2's layers); one in Kohya's format as its SDXL trainer
    writes it: the UNet's layers under the original model's numbered blocks
    (lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q, middle_block_2_in_layers_2,
    output_blocks_2_2_conv), lora_te1_ and lora_te2_ for the two text encoders, float16, an
    alpha per layer, not all the same;
  - the modules each file's adapter lands on in diffusers (checked here against the modules
    the file was made for, so the names do go through the block mapping);
  - txt2img runs (64x64, 3 steps, seeded, np output) after the first load, with
    cross_attention_kwargs scale 0.5, after the Kohya file as a second adapter,
    set_adapters with weights, fuse_lora(lora_scale=0.8), unfuse_lora, disable_lora and
    unload_lora_weights; the active and listed adapters after each; LCMScheduler with the
    Kohya file at four steps and guidance 1 (LCM-LoRA's way);
  - StableDiffusionXLImg2ImgPipeline on the same model with the Kohya file alone.

    .venv-torch/bin/python scripts/reference/make_xl_lora_cases.py   (needs peft==0.10.0)

Writes tests/fixtures/lora-xl/ and tests/reference/xl_lora/. Seeded: a rerun writes the same
files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file

from diffusers import LCMScheduler, StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig, get_peft_model_state_dict

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sdxl")
FIX = os.path.join(ROOT, "tests", "fixtures", "lora-xl")
OUT = os.path.join(ROOT, "tests", "reference", "xl_lora")
PROMPT = "a photo of a lora cat"


def load(cls=StableDiffusionXLPipeline):
    pipe = cls.from_pretrained(MODEL, torch_dtype=torch.float32, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def randomize(model, g):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def lora_modules(model):
    return sorted(n for n, m in model.named_modules() if hasattr(m, "lora_A"))


def make_fixtures():
    shutil.rmtree(FIX, ignore_errors=True)
    os.makedirs(FIX)
    g = torch.Generator().manual_seed(11)
    pipe = load()
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0",
                                                     "proj_in", "ff.net.0.proj", "conv1",
                                                     "linear_1"]))
    te_cfg = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                        target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
    pipe.text_encoder.add_adapter(te_cfg)
    pipe.text_encoder_2.add_adapter(LoraConfig(r=2, lora_alpha=2, init_lora_weights=False,
                                               target_modules=["q_proj", "v_proj", "out_proj",
                                                               "fc1", "fc2"]))
    for m in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2):
        randomize(m, g)
    layers = [convert_state_dict_to_diffusers(get_peft_model_state_dict(m))
              for m in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2)]
    StableDiffusionXLPipeline.save_lora_weights(
        os.path.join(FIX, "diffusers"), unet_lora_layers=layers[0],
        text_encoder_lora_layers=layers[1], text_encoder_2_lora_layers=layers[2])

    # Kohya's SDXL trainer: the original UNet's block names, underscores for dots
    pipe = load()
    kohya, meant = {}, {"unet": [], "text_encoder": [], "text_encoder_2": []}

    def add(prefix, flat, weight, rank, alpha):
        flat = prefix + flat.replace(".", "_")
        out_f, in_f = weight.shape[0], weight.shape[1]
        k = weight.shape[2:]
        kohya[flat + ".lora_down.weight"] = (torch.randn((rank, in_f) + tuple(k), generator=g) * 0.3).half()
        kohya[flat + ".lora_up.weight"] = (torch.randn((out_f, rank) + (1,) * len(k), generator=g) * 0.3).half()
        kohya[flat + ".alpha"] = torch.tensor(float(alpha)).half()
    i = 0
    for n, m in pipe.unet.named_modules():
        if n.endswith(("attn2.to_k", "attn1.to_v", "attn1.to_q", "ff.net.2", "proj_out",
                       "conv_shortcut", "time_emb_proj", "conv2", "downsamplers.0.conv",
                       "upsamplers.0.conv")):
            sgm = common.sgm_unet_name(n + ".weight", pipe.unet.config)[:-len(".weight")]
            add("lora_unet_", sgm, m.weight, 4, [2, 2, 4][i % 3])
            meant["unet"].append(n)
            i += 1
    for prefix, te, key in (("lora_te1_", pipe.text_encoder, "text_encoder"),
                            ("lora_te2_", pipe.text_encoder_2, "text_encoder_2")):
        for n, m in te.named_modules():
            if n.endswith(("self_attn.k_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")):
                add(prefix, n, m.weight, 4, [4, 4, 2][i % 3])
                meant[key].append(n)
                i += 1
    save_file(kohya, os.path.join(FIX, "kohya-sgm.safetensors"))

    # diffusers' loading lands each pair where it was meant to
    pipe.load_lora_weights(os.path.join(FIX, "kohya-sgm.safetensors"))
    for key, model in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder),
                       ("text_encoder_2", pipe.text_encoder_2)):
        got = lora_modules(model)
        assert got == sorted(meant[key]), (key, set(got) ^ set(meant[key]))
    return meant


def main():
    meant = make_fixtures()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    pipe = load()
    manifest = {"prompt": PROMPT, "runs": [], "kohya_modules": meant}

    def run(name, p=None, **kw):
        p = p or pipe
        g = torch.Generator().manual_seed(42)
        if "image" not in kw:
            kw = dict(kw, height=64, width=64)
        kw = dict({"num_inference_steps": 3}, **kw)
        img = p(prompt=PROMPT, generator=g, output_type="np", **kw).images
        np.save(os.path.join(OUT, name + ".npy"), img.astype(np.float32))
        manifest["runs"].append({"name": name, "active": list(p.get_active_adapters()),
                                 "list": {k: list(v) for k, v in p.get_list_adapters().items()},
                                 "scale": kw.get("cross_attention_kwargs", {}).get("scale")})

    run("base")
    pipe.load_lora_weights(os.path.join(FIX, "diffusers"))
    run("loaded")
    run("scaled", cross_attention_kwargs={"scale": 0.5})
    pipe.load_lora_weights(FIX, weight_name="kohya-sgm.safetensors", adapter_name="k")
    run("second")
    pipe.set_adapters(["default_0", "k"], adapter_weights=[0.7, 0.4])
    run("set_adapters")
    pipe.fuse_lora(lora_scale=0.8)
    run("fused")
    pipe.unfuse_lora()
    run("unfused")
    pipe.disable_lora()
    run("disabled")
    pipe.enable_lora()
    pipe.unload_lora_weights()
    run("unloaded")

    # LCM-LoRA's way: LCMScheduler, a LoRA, four steps without guidance
    lcm = load()
    lcm.scheduler = LCMScheduler.from_config(lcm.scheduler.config)
    lcm.load_lora_weights(os.path.join(FIX, "kohya-sgm.safetensors"))
    run("lcm_lora", lcm, num_inference_steps=4, guidance_scale=1.0)

    i2i = load(StableDiffusionXLImg2ImgPipeline)
    i2i.load_lora_weights(os.path.join(FIX, "kohya-sgm.safetensors"))
    image = common.sketch(64, 64)
    image.save(os.path.join(OUT, "sketch64.png"))
    run("i2i_kohya", i2i, image=image, strength=0.6)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
