"""LoRA as diffusers 0.27.2 loads it with PEFT 0.10.0 (LoraLoaderMixin), for
tests/lua/test_lora.lua, on the committed tiny model tiny-sd-a (not changed):

  - two LoRA files: one in diffusers' own format (what save_lora_weights writes after
    training with PEFT: lora.down/lora.up for the attention, lora_A/lora_B elsewhere,
    lora_linear_layer for the text encoder) over attention, feed-forward, proj_in and
    resnet convs of the UNet and the text encoder's attention and MLP; one in Kohya's
    format (lora_unet_*/lora_te_*, float16, an alpha per layer, not all the same) over
    some of the same layers and some others;
  - the attention processors' old format (no prefix, processor.to_q_lora) in a torch.save
    .bin, loaded from its folder;
  - pipe.unet called on its own with cross_attention_kwargs scale 0.5, and without;
  - on tiny-sd-b (stored in float16, loaded as float32) a LoRA in PEFT's own names, and a
    run with it (the sums must stay float32, as torch widens the weights);
  - runs (3 steps, seeded, np output) after each of: the first load, a call with
    cross_attention_kwargs scale 0.5, the second load (inactive where the first adapter
    was already), set_adapters with weights, fuse_lora(lora_scale=0.8), unfuse_lora,
    disable_lora, enable_lora, delete_adapters, unload_lora_weights; the active adapters
    after each.

    .venv-torch/bin/python scripts/reference/make_lora_cases.py   (needs peft==0.10.0)

Writes tests/fixtures/lora/ and tests/reference/lora/. Seeded: a rerun writes the same
files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file

from diffusers import StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig, get_peft_model_state_dict

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
FIX = os.path.join(ROOT, "tests", "fixtures", "lora")
OUT = os.path.join(ROOT, "tests", "reference", "lora")
PROMPT = "a photo of a lora cat"


def load():
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                   safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_b():
    pipe = StableDiffusionPipeline.from_pretrained(MODEL.replace("tiny-sd-a", "tiny-sd-b"),
                                                   torch_dtype=torch.float32,
                                                   safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def randomize(model, g):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def make_fixtures():
    shutil.rmtree(FIX, ignore_errors=True)
    os.makedirs(FIX)
    g = torch.Generator().manual_seed(5)
    pipe = load()
    unet_cfg = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                          target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in",
                                          "ff.net.0.proj", "conv1"])
    pipe.unet.add_adapter(unet_cfg)
    te_cfg = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                        target_modules=["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"])
    pipe.text_encoder.add_adapter(te_cfg)
    randomize(pipe.unet, g)
    randomize(pipe.text_encoder, g)
    StableDiffusionPipeline.save_lora_weights(
        os.path.join(FIX, "diffusers"),
        unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)),
        text_encoder_lora_layers=convert_state_dict_to_diffusers(
            get_peft_model_state_dict(pipe.text_encoder)))

    # Kohya: module names with _ for ., lora_down/lora_up, an alpha each (float16 file)
    pipe = load()
    kohya = {}
    def add(prefix, module, weight, rank, alpha):
        flat = prefix + module.replace(".", "_")
        out_f, in_f = weight.shape[0], weight.shape[1]
        k = weight.shape[2:]
        kohya[flat + ".lora_down.weight"] = (torch.randn((rank, in_f) + tuple(k), generator=g) * 0.3).half()
        kohya[flat + ".lora_up.weight"] = (torch.randn((out_f, rank) + (1,) * len(k), generator=g) * 0.3).half()
        kohya[flat + ".alpha"] = torch.tensor(float(alpha)).half()
    i = 0
    for n, m in pipe.unet.named_modules():
        if n.endswith(("attn2.to_k", "attn1.to_v", "ff.net.2", "proj_out", "conv_shortcut",
                       "time_emb_proj", "attn1.to_q")):
            add("lora_unet_", n, m.weight, 8, [4, 4, 8][i % 3])
            i += 1
    for n, m in pipe.text_encoder.named_modules():
        if n.endswith(("self_attn.q_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")):
            add("lora_te_", n, m.weight, 8, [4, 4, 2][i % 3])
            i += 1
    save_file(kohya, os.path.join(FIX, "kohya.safetensors"))

    # the attention processors' old format as torch.save wrote it (the first LoRA training
    # scripts' pytorch_lora_weights.bin: no "unet." prefix, processor.to_q_lora.down.weight)
    from safetensors.torch import load_file
    old = {}
    for k, v in load_file(os.path.join(FIX, "diffusers", "pytorch_lora_weights.safetensors")).items():
        if not k.startswith("unet.") or (".attn1." not in k and ".attn2." not in k):
            continue
        k = k[len("unet."):]
        for leaf, proc in ((".to_q.", ".processor.to_q_lora."), (".to_k.", ".processor.to_k_lora."),
                           (".to_v.", ".processor.to_v_lora."), (".to_out.0.", ".processor.to_out_lora.")):
            k = k.replace(leaf + "lora.", proc)
        old[k] = v
    os.makedirs(os.path.join(FIX, "procs"))
    torch.save(old, os.path.join(FIX, "procs", "pytorch_lora_weights.bin"))

    # tiny-sd-b, stored in float16 and loaded as float32: PEFT's own names (lora_A/lora_B)
    b = load_b()
    peft = {}
    for n, m in b.unet.named_modules():
        if n.endswith(("attn1.to_q", "attn2.to_v", "time_emb_proj", "proj_in")):
            peft["unet." + n + ".lora_A.weight"] = torch.randn(4, m.weight.shape[1], generator=g) * 0.3
            peft["unet." + n + ".lora_B.weight"] = torch.randn(m.weight.shape[0], 4, generator=g) * 0.3
    save_file(peft, os.path.join(FIX, "b-peft.safetensors"))


def main():
    make_fixtures()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    pipe = load()
    manifest = {"prompt": PROMPT, "runs": []}

    def run(name, **kw):
        g = torch.Generator().manual_seed(42)
        img = pipe(prompt=PROMPT, num_inference_steps=3, generator=g, output_type="np",
                   **kw).images
        np.save(os.path.join(OUT, name + ".npy"), img.astype(np.float32))
        manifest["runs"].append({"name": name, "active": list(pipe.get_active_adapters()),
                                 "list": {k: list(v) for k, v in pipe.get_list_adapters().items()},
                                 "scale": kw.get("cross_attention_kwargs", {}).get("scale")})

    run("base")
    pipe.load_lora_weights(os.path.join(FIX, "diffusers"))
    run("loaded")
    run("scaled", cross_attention_kwargs={"scale": 0.5})
    run("after_scaled")
    pipe.load_lora_weights(FIX, weight_name="kohya.safetensors", adapter_name="k")
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
    run("enabled")
    pipe.delete_adapters("default_0")
    run("deleted")
    pipe.unload_lora_weights()
    run("unloaded")

    # the old attention processors' .bin from a folder (no .safetensors there: the .bin)
    pipe = load()
    pipe.load_lora_weights(os.path.join(FIX, "procs"))
    run("procs")

    # pipe.unet called on its own with cross_attention_kwargs={"scale": 0.5}, and without
    pipe = load()
    pipe.load_lora_weights(os.path.join(FIX, "diffusers"))
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 4, 16, 16, generator=g)
    ctx = torch.randn(2, 77, 32, generator=g)
    np.save(os.path.join(OUT, "unet_x.npy"), x.numpy())
    np.save(os.path.join(OUT, "unet_ctx.npy"), ctx.numpy())
    with torch.no_grad():
        for name, kw in (("unet_half", {"cross_attention_kwargs": {"scale": 0.5}}),
                         ("unet_full", {})):
            np.save(os.path.join(OUT, name + ".npy"),
                    pipe.unet(x, 400, encoder_hidden_states=ctx, **kw).sample.numpy())

    # a float16 file's weights with a LoRA: the sums in float32, as torch holds the weights
    pipe = load_b()
    pipe.load_lora_weights(os.path.join(FIX, "b-peft.safetensors"))
    run("b_loaded")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
