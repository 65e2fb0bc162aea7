"""T2I-Adapters as diffusers 0.27.2 computes them, for tests/lua/test_t2i_adapter.lua:

  - three tiny random adapters, saved as save_pretrained writes them: a full_adapter for
    tiny-sd-a's UNet (channels 32 and 64, downscale_factor 4: the VAE's factor), a
    light_adapter on one-channel pictures (a sketch adapter's input), and a full_adapter_xl
    for tiny-sdxl's UNet (downscale_factor 8, twice its VAE's factor, as SDXL's 16);
  - their features for a sketch preprocessed as the adapter pipelines do (PIL's Lanczos
    resize, [0, 1], channels first), and the full adapter's for an odd size (its average
    pooling in ceil mode);
  - UNet calls with those features as down_intrablock_additional_residuals: tiny-sd-a's
    (batch 2, the features' batch 1 broadcast, guided as the pipeline's [v] * 2 would be
    too), with residuals of the mid block's shape as well, and tiny-sdxl's;
  - whole runs (seeded, np output, 4 steps): StableDiffusionAdapterPipeline on tiny-sd-a
    with the full adapter (its size from the sketch, adapter_conditioning_scale 0.8), a
    MultiAdapter with a second adapter on the sketch's "L" picture (scales 0.7 and 0.4), one
    picture per prompt for two prompts, and two images per prompt unguided; and
    StableDiffusionXLAdapterPipeline on tiny-sdxl with adapter_conditioning_factor 0.5.

    .venv-torch/bin/python scripts/reference/make_t2i_adapter_cases.py

Writes tests/models/tiny-t2i-adapter{,-light,-xl}/ and tests/reference/t2i_adapter/. Seeded:
a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image

import diffusers
from diffusers import (MultiAdapter, StableDiffusionAdapterPipeline,
                       StableDiffusionXLAdapterPipeline, T2IAdapter, UNet2DConditionModel)

import common
import make_tiny_models

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "models")
OUT = os.path.join(ROOT, "tests", "reference", "t2i_adapter")

ADAPTERS = {
    "tiny-t2i-adapter": dict(in_channels=3, channels=[32, 64], num_res_blocks=2,
                             downscale_factor=4, adapter_type="full_adapter"),
    "tiny-t2i-adapter-light": dict(in_channels=1, channels=[32, 64], num_res_blocks=2,
                                   downscale_factor=4, adapter_type="light_adapter"),
    "tiny-t2i-adapter-xl": dict(in_channels=3, channels=[32, 64, 64, 64], num_res_blocks=2,
                                downscale_factor=8, adapter_type="full_adapter_xl"),
    # a second SD adapter on one-channel pictures, for MultiAdapter
    "tiny-t2i-adapter-b": dict(in_channels=1, channels=[32, 64], num_res_blocks=1,
                               downscale_factor=4, adapter_type="full_adapter"),
}
PROMPT = "a sketch of a house by a lake"


def preprocess(image, height, width):
    """_preprocess_adapter_image for one PIL picture."""
    a = np.array(image.resize((width, height), resample=Image.LANCZOS))
    a = a[None, ..., None] if a.ndim == 2 else a[None, ...]
    return torch.from_numpy((a.astype(np.float32) / 255.0).transpose(0, 3, 1, 2))


def main():
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__},
                "features": [], "unet": []}

    def save(name, t):
        a = (t.numpy() if torch.is_tensor(t) else np.asarray(t)).astype(np.float32)
        assert np.isfinite(a).all(), name
        np.save(os.path.join(OUT, name + ".npy"), a)
        return name

    adapters = {}
    for i, (name, cfg) in enumerate(ADAPTERS.items()):
        torch.manual_seed(300 + i)
        adapter = T2IAdapter(**cfg)
        make_tiny_models.perturb(adapter, 3000 + i)
        path = os.path.join(MODELS, name)
        shutil.rmtree(path, ignore_errors=True)
        adapter.save_pretrained(path, safe_serialization=True)
        adapters[name] = T2IAdapter.from_pretrained(path).eval()

    sketch = common.sketch(72, 56)
    sketch.save(os.path.join(OUT, "sketch.png"))
    cases = [("full", "tiny-t2i-adapter", preprocess(sketch, 64, 48)),
             ("full_odd", "tiny-t2i-adapter", preprocess(sketch, 20, 28)),
             ("light", "tiny-t2i-adapter-light", preprocess(sketch.convert("L"), 64, 48)),
             ("xl", "tiny-t2i-adapter-xl", preprocess(sketch, 64, 48))]
    feats = {}
    for case, name, x in cases:
        with torch.no_grad():
            f = adapters[name](x)
        feats[case] = f
        manifest["features"].append({"name": case, "adapter": name, "input": save(case + "_in", x),
                                     "features": [save("%s_f%d" % (case, k), v)
                                                  for k, v in enumerate(f)]})

    # tiny-sd-a's UNet: the full adapter's features (batch 1 against a batch of 2), then
    # residuals for both down blocks and the mid block
    g = torch.Generator().manual_seed(31)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, "tiny-sd-a", "unet"))
    x = torch.randn(2, 4, 16, 12, generator=g)
    ctx = torch.randn(2, 7, 32, generator=g)
    t = torch.tensor([701.0, 45.0])
    mid = torch.randn(2, 64, 8, 6, generator=g)
    runs = [("sd_full", [0.8 * v for v in feats["full"]]),
            ("sd_mid", [v.repeat(2, 1, 1, 1) for v in feats["full"]] + [mid])]
    for run, residuals in runs:
        with torch.no_grad():
            out = unet(x, t, encoder_hidden_states=ctx,
                       down_intrablock_additional_residuals=[r.clone() for r in residuals]).sample
        manifest["unet"].append({"name": run, "unet": "tiny-sd-a", "x": save(run + "_x", x),
                                 "t": save(run + "_t", t), "context": save(run + "_context", ctx),
                                 "residuals": [save("%s_r%d" % (run, k), r)
                                               for k, r in enumerate(residuals)],
                                 "out": save(run + "_out", out)})

    # tiny-sdxl's UNet: DownBlock2D then CrossAttnDownBlock2D, the XL adapter's features
    unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, "tiny-sdxl", "unet"))
    x = torch.randn(1, 4, 16, 12, generator=g)
    ctx = torch.randn(1, 5, 64, generator=g)
    text_embeds = torch.randn(1, 24, generator=g)
    time_ids = torch.tensor([[48.0, 64.0, 0.0, 0.0, 48.0, 64.0]])
    t = torch.tensor([501.0])
    with torch.no_grad():
        out = unet(x, t, encoder_hidden_states=ctx,
                   added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids},
                   down_intrablock_additional_residuals=[v.clone() for v in feats["xl"]]).sample
    manifest["unet"].append({"name": "xl", "unet": "tiny-sdxl", "x": save("xl_x", x),
                             "t": save("xl_t", t), "context": save("xl_context", ctx),
                             "text_embeds": save("xl_text_embeds", text_embeds),
                             "time_ids": save("xl_time_ids", time_ids),
                             "residuals": ["xl_f%d" % k for k in range(len(feats["xl"]))],
                             "out": save("xl_out", out)})

    # whole runs
    manifest["runs"] = []

    def run(pipe, name, **kw):
        o = dict(prompt=PROMPT, num_inference_steps=4, output_type="np",
                 generator=torch.Generator().manual_seed(5))
        o.update(kw)
        images = pipe(**o).images
        manifest["runs"].append({"name": name, "shape": list(images.shape)})
        save(name, images)

    sd_model = os.path.join(MODELS, "tiny-sd-a")
    pipe = StableDiffusionAdapterPipeline.from_pretrained(
        sd_model, adapter=adapters["tiny-t2i-adapter"], safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    run(pipe, "pipe_sd", image=sketch, adapter_conditioning_scale=0.8)
    sketch2 = common.sketch(72, 56, phase=0.2)
    sketch2.save(os.path.join(OUT, "sketch2.png"))
    run(pipe, "pipe_sd_two", prompt=[PROMPT, "a castle"], image=[sketch, sketch2],
        negative_prompt=["blurry", "dark"])
    run(pipe, "pipe_sd_unguided", image=sketch, guidance_scale=1.0, num_images_per_prompt=2)
    multi = StableDiffusionAdapterPipeline.from_pretrained(
        sd_model, adapter=MultiAdapter([adapters["tiny-t2i-adapter"], adapters["tiny-t2i-adapter-b"]]),
        safety_checker=None)
    multi.set_progress_bar_config(disable=True)
    run(multi, "pipe_sd_multi", image=[sketch, sketch.convert("L")],
        adapter_conditioning_scale=[0.7, 0.4])
    xl = StableDiffusionXLAdapterPipeline.from_pretrained(
        os.path.join(MODELS, "tiny-sdxl"), adapter=adapters["tiny-t2i-adapter-xl"])
    xl.set_progress_bar_config(disable=True)
    run(xl, "pipe_xl", image=sketch, adapter_conditioning_factor=0.5, guidance_scale=5.0)

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
