"""Random tiny models built with diffusers 0.27.2 itself, run by diffusers and then by sdrepl:
the check that "other models" give diffusers' pictures, beyond the committed tiny ones.

    .venv-torch/bin/python scripts/differential/random_models.py KIND SEED COUNT [OUT]
    build/sdrepl OUT/check.lua          # prints DIFF / FAIL lines, then the worst difference

KIND is sd (StableDiffusionPipeline and its img2img from components: block counts and
types, head dims, group norms, linear projection, upcast attention, padding, transformer
depths, VAE depths and scaling factors, gelu or quick_gelu text encoders, v-prediction),
xl (StableDiffusionXLPipeline and its img2img: text_time embeddings, both text encoders,
force_zeros_for_empty_prompt, force_upcast), inpaint (4- and 9-channel UNets, masks,
padding_mask_crop) or controlnet (ControlNetModel.from_unet, scales, guess mode, guidance
start and end). Each model is saved with save_pretrained and loaded back on both sides.
Needs the reference venv (scripts/reference/setup_torch_env.sh); OUT defaults to
/tmp/sdrepl-differential. Nothing here runs in CI: it writes models, not tests. What it found
so far is fixed and covered by tests (outdated configs, upsampling at any ratio, each
pipeline's own force_zeros_for_empty_prompt).
"""
import json
import os
import random
import shutil
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "reference"))
import common  # noqa: E402

import diffusers  # noqa: E402

common.patch_attention()


def lua(v):
    """A Python value as a Lua expression."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    return "{" + ", ".join("%s = %s" % (k, lua(x)) for k, x in v.items()) + "}"


class Run:
    def __init__(self, kind, seed, out):
        self.rng = random.Random(seed)
        self.out = out
        self.tok = CLIPTokenizer.from_pretrained(os.path.join(ROOT, "tests", "models", "tiny-sd-a",
                                                              "tokenizer"))
        self.lines = ["local worst = 0"]

    def text_encoder(self, hidden, projection=None):
        r = self.rng
        cfg = CLIPTextConfig(bos_token_id=1512, eos_token_id=r.choice([2, 1513]) if not projection
                             else 1513, hidden_size=hidden, intermediate_size=r.choice([37, 64]),
                             num_attention_heads=4, num_hidden_layers=r.choice([2, 3]),
                             pad_token_id=1513, vocab_size=1514,
                             hidden_act=r.choice(["quick_gelu", "gelu"]),
                             projection_dim=projection or 512)
        return CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)

    def vae(self, **kw):
        r = self.rng
        n = r.choice([2, 3])
        return diffusers.AutoencoderKL(
            block_out_channels=[r.choice([8, 16]) * 2 ** i for i in range(n)], in_channels=3,
            out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
            up_block_types=["UpDecoderBlock2D"] * n, latent_channels=4,
            norm_num_groups=r.choice([2, 4, 8]), layers_per_block=r.choice([1, 2]), **kw)

    def scheduler(self, classes, **kw):
        cls = self.rng.choice(classes)
        base = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", **kw)
        if cls is diffusers.PNDMScheduler:
            base["skip_prk_steps"] = True
        return cls(**base)

    def picture(self, c, w, h):
        img = common.sketch(w, h, phase=c * 0.2)
        path = "%s/m%d_image.png" % (self.out, c)
        img.save(path)
        return img, path

    def case(self, c, cls, args, extra_lua, desc, images, pil=False):
        """Records the Lua side of one call: load the saved model, call it with args (and the
        Lua expressions in extra_lua), compare with diffusers' images. pil: the call gives
        pictures (output_type "pil"), compared as their bytes / 255 on both sides, where a
        value a hair's breadth from a rounding boundary may land one level apart."""
        tol = 1.5 / 255 if pil else 2e-3
        d = "%s/m%d" % (self.out, c)
        if pil:
            images = np.stack([np.asarray(x, dtype=np.float32) / 255 for x in images])
        np.save(d + "_out%d.npy" % len(self.lines), images.astype(np.float32))
        call = "p" + lua(args)[:-1] + "".join(", %s = %s" % kv for kv in extra_lua.items()) + "}"
        got = ("torch.stack((function(t) local r = {} for i, im in ipairs(t) do "
               "r[i] = torch.tensor(im):float() end return r end)(%s.images)) / 255" % call
               if pil else call + ".images")
        self.lines.append(
            'do local ok, err = pcall(function() local p = %s; p:set_progress_bar_config{disable = '
            'true}; local a = %s; local d = (a - torch.load_npy("%s_out%d.npy")):abs()'
            ':max():item(); if not (d < %r) then print(string.format("DIFF %s: %%.3g", d)) end; '
            'worst = math.max(worst, d) end); if not ok then print("FAIL %s: " .. tostring(err)) '
            'end end' % (cls, got, d, len(self.lines), tol, desc, desc))

    def img2img(self, c, cls, base_cls, d, components, strength, steps, g, seed, desc):
        """The model's img2img pipeline made from its components, on a sketch."""
        i2i = getattr(diffusers, cls)(**components)
        i2i.set_progress_bar_config(disable=True)
        img, path = self.picture(c, 48, 40)
        args = dict(prompt="a cat", strength=strength, num_inference_steps=steps, guidance_scale=g,
                    output_type="np")
        out = i2i(image=img, generator=torch.Generator().manual_seed(seed), **args).images
        self.case(c, '%s(%s.from_pretrained("%s").components)' % (cls, base_cls, d), args,
                  {"image": 'Image.open("%s")' % path,
                   "generator": "torch.Generator():manual_seed(%d)" % seed}, desc + " i2i", out)

    def finish(self):
        self.lines.append('print("worst", worst)')
        with open(os.path.join(self.out, "check.lua"), "w") as f:
            f.write("\n".join(self.lines) + "\n")


def sd(run, c):
    r = run.rng
    n = r.choice([2, 3, 4])
    boc = [r.choice([8, 16]) * 2 ** min(i, 2) for i in range(n)]
    down = [r.choice(["CrossAttnDownBlock2D", "DownBlock2D"]) for _ in range(n)]
    down[0] = "CrossAttnDownBlock2D" if "CrossAttnDownBlock2D" not in down else down[0]
    up = ["CrossAttnUpBlock2D" if x == "CrossAttnDownBlock2D" else "UpBlock2D" for x in reversed(down)]
    hidden = r.choice([32, 48])
    heads = r.choice([2, 4]) if r.random() < 0.5 else [r.choice([1, 2, 4]) for _ in range(n)]
    unet = diffusers.UNet2DConditionModel(
        sample_size=r.choice([8, 16]), block_out_channels=tuple(boc), layers_per_block=r.choice([1, 2]),
        down_block_types=tuple(down), up_block_types=tuple(up), cross_attention_dim=hidden,
        norm_num_groups=r.choice([2, 4, 8]), attention_head_dim=heads,
        use_linear_projection=r.random() < 0.5, upcast_attention=r.random() < 0.3,
        flip_sin_to_cos=r.random() < 0.8, freq_shift=r.choice([0, 1]),
        downsample_padding=r.choice([0, 1]), mid_block_scale_factor=r.choice([1.0, 1.5]),
        transformer_layers_per_block=r.choice([1, 2]), only_cross_attention=r.random() < 0.15)
    sched = run.scheduler([diffusers.DDIMScheduler, diffusers.EulerDiscreteScheduler,
                           diffusers.DPMSolverMultistepScheduler, diffusers.PNDMScheduler,
                           diffusers.UniPCMultistepScheduler,
                           diffusers.EulerAncestralDiscreteScheduler],
                          prediction_type=r.choice(["epsilon", "v_prediction"]))
    pipe = diffusers.StableDiffusionPipeline(
        unet=unet, vae=run.vae(scaling_factor=r.choice([0.18215, 0.13025, 1.0])),
        text_encoder=run.text_encoder(hidden), tokenizer=run.tok, scheduler=sched,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    d = "%s/m%d" % (run.out, c)
    pipe.save_pretrained(d)
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(d, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    steps, g, seed = r.randint(2, 5), r.choice([1.0, 7.5]), r.randint(0, 999)
    desc = "m%d %s %s" % (c, type(sched).__name__, sched.config.prediction_type)
    args = dict(prompt="a red door on a hill", num_inference_steps=steps, guidance_scale=g,
                output_type="np")
    out = pipe(generator=torch.Generator().manual_seed(seed), **args).images
    run.case(c, 'StableDiffusionPipeline.from_pretrained("%s")' % d, args,
             {"generator": "torch.Generator():manual_seed(%d)" % seed}, desc + " t2i", out)
    run.img2img(c, "StableDiffusionImg2ImgPipeline", "StableDiffusionPipeline", d,
                dict(pipe.components, requires_safety_checker=False), 0.8, steps + 1, g, seed + 1,
                desc)


def xl(run, c):
    r = run.rng
    h1, h2, proj, atd, n = r.choice([16, 32]), r.choice([16, 32]), r.choice([16, 32]), r.choice([4, 8]), r.choice([2, 3])
    boc = [16 * 2 ** min(i, 1) for i in range(n)]
    down = ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * (n - 1)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, block_out_channels=tuple(boc), layers_per_block=r.choice([1, 2]),
        down_block_types=tuple(down), up_block_types=tuple(reversed([x.replace("Down", "Up") for x in down])),
        cross_attention_dim=h1 + h2, norm_num_groups=4, attention_head_dim=[2] * n,
        use_linear_projection=True, transformer_layers_per_block=[r.choice([1, 2]) for _ in range(n)],
        addition_embed_type="text_time", addition_time_embed_dim=atd,
        projection_class_embeddings_input_dim=6 * atd + proj)
    sched = run.scheduler([diffusers.EulerDiscreteScheduler, diffusers.DPMSolverMultistepScheduler,
                           diffusers.EulerAncestralDiscreteScheduler, diffusers.DDIMScheduler],
                          steps_offset=1, timestep_spacing="leading")
    fz = r.random() < 0.5
    pipe = diffusers.StableDiffusionXLPipeline(
        vae=run.vae(scaling_factor=0.13025, force_upcast=r.random() < 0.5),
        text_encoder=run.text_encoder(h1), text_encoder_2=run.text_encoder(h2, projection=proj),
        tokenizer=run.tok, tokenizer_2=run.tok, unet=unet, scheduler=sched,
        force_zeros_for_empty_prompt=fz)
    d = "%s/m%d" % (run.out, c)
    pipe.save_pretrained(d)
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(d)
    pipe.set_progress_bar_config(disable=True)
    steps, g, seed = r.randint(2, 4), r.choice([1.0, 5.0]), r.randint(0, 999)
    desc = "m%d %s force_zeros=%s" % (c, type(sched).__name__, fz)
    args = dict(prompt="a red door", num_inference_steps=steps, guidance_scale=g, output_type="np",
                height=32, width=48)
    if r.random() < 0.5:
        args["negative_prompt"] = r.choice(["", "blurry"])
    out = pipe(generator=torch.Generator().manual_seed(seed), **args).images
    run.case(c, 'StableDiffusionXLPipeline.from_pretrained("%s")' % d, args,
             {"generator": "torch.Generator():manual_seed(%d)" % seed}, desc + " t2i", out)
    run.img2img(c, "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLPipeline", d,
                pipe.components, 0.7, steps + 1, g, seed + 1, desc)


def small_unet(r, in_channels=4):
    return diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(16, 32),
        layers_per_block=r.choice([1, 2]), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        norm_num_groups=4, attention_head_dim=2, use_linear_projection=r.random() < 0.5)


def inpaint(run, c):
    r = run.rng
    sched = run.scheduler([diffusers.DDIMScheduler, diffusers.EulerDiscreteScheduler,
                           diffusers.DPMSolverMultistepScheduler, diffusers.PNDMScheduler,
                           diffusers.EulerAncestralDiscreteScheduler,
                           diffusers.LMSDiscreteScheduler], steps_offset=1)
    pipe = diffusers.StableDiffusionInpaintPipeline(
        unet=small_unet(r, r.choice([4, 9])), vae=run.vae(), text_encoder=run.text_encoder(32),
        tokenizer=run.tok, scheduler=sched, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    d = "%s/m%d" % (run.out, c)
    pipe.save_pretrained(d)
    pipe = diffusers.StableDiffusionInpaintPipeline.from_pretrained(d, safety_checker=None,
                                                                    requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    w, h = r.choice([(64, 64), (48, 40), (70, 52)])
    img, path = run.picture(c, w, h)
    mask = Image.new("L", (w, h), 0)
    x0, y0 = r.randint(0, w // 2), r.randint(0, h // 2)
    ImageDraw.Draw(mask).rectangle((x0, y0, x0 + w // 3, y0 + h // 3), fill=255)
    mpath = "%s/m%d_mask.png" % (run.out, c)
    mask.save(mpath)
    seed = r.randint(0, 999)
    args = dict(prompt="a cat", num_inference_steps=r.randint(2, 5), guidance_scale=r.choice([1.0, 7.5]),
                strength=r.choice([0.6, 0.9, 1.0]), height=h // 8 * 8, width=w // 8 * 8,
                output_type="np")
    crop = r.random() < 0.3
    if crop:  # diffusers crops only with pictures out
        args.update(padding_mask_crop=r.choice([4, 16]), output_type="pil")
    out = pipe(image=img, mask_image=mask, generator=torch.Generator().manual_seed(seed), **args).images
    desc = "m%d in=%d %s%s" % (c, pipe.unet.config.in_channels, type(sched).__name__,
                               " padding_mask_crop" if crop else "")
    run.case(c, 'StableDiffusionInpaintPipeline.from_pretrained("%s")' % d, args,
             {"image": 'Image.open("%s")' % path, "mask_image": 'Image.open("%s")' % mpath,
              "generator": "torch.Generator():manual_seed(%d)" % seed}, desc, out, pil=crop)


def controlnet(run, c):
    r = run.rng
    unet = small_unet(r)
    net = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=r.choice([(4, 8), (8, 16)]))
    with torch.no_grad():  # the zero convolutions are zeros: give them values that matter
        for p in net.parameters():
            p.add_(torch.randn(p.shape) * 0.05)
    sched = run.scheduler([diffusers.DDIMScheduler, diffusers.EulerDiscreteScheduler,
                           diffusers.UniPCMultistepScheduler], steps_offset=1)
    pipe = diffusers.StableDiffusionControlNetPipeline(
        unet=unet, vae=run.vae(), text_encoder=run.text_encoder(32), tokenizer=run.tok,
        scheduler=sched, controlnet=net, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    d = "%s/m%d" % (run.out, c)
    pipe.save_pretrained(d)
    pipe = diffusers.StableDiffusionControlNetPipeline.from_pretrained(d, safety_checker=None,
                                                                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    img, path = run.picture(c, 48, 40)
    seed = r.randint(0, 999)
    args = dict(prompt="a cat", num_inference_steps=r.randint(2, 4), guidance_scale=r.choice([1.0, 7.5]),
                output_type="np", controlnet_conditioning_scale=r.choice([0.5, 1.0]),
                guess_mode=r.random() < 0.3, control_guidance_start=r.choice([0.0, 0.3]),
                control_guidance_end=r.choice([0.8, 1.0]))
    out = pipe(image=img, generator=torch.Generator().manual_seed(seed), **args).images
    run.case(c, 'StableDiffusionControlNetPipeline.from_pretrained("%s")' % d, args,
             {"image": 'Image.open("%s")' % path,
              "generator": "torch.Generator():manual_seed(%d)" % seed},
             "m%d %s" % (c, type(sched).__name__), out)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("sd", "xl", "inpaint", "controlnet"):
        sys.exit(__doc__)
    kind, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = sys.argv[4] if len(sys.argv) > 4 else "/tmp/sdrepl-differential"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    run = Run(kind, seed, out)
    build = {"sd": sd, "xl": xl, "inpaint": inpaint, "controlnet": controlnet}[kind]
    for c in range(count):
        torch.manual_seed(c)
        try:
            build(run, c)
        except Exception as e:  # a configuration diffusers itself refuses: none to compare
            print("m%d: diffusers: %s: %s" % (c, type(e).__name__, str(e)[:100]))
    run.finish()
    print("wrote", os.path.join(out, "check.lua"))


if __name__ == "__main__":
    main()
