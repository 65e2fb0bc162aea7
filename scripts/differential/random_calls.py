"""Random calls of the committed tiny pipelines (tiny-sd-a and tiny-sd-b, text to image and
image to image) in diffusers 0.27.2 and in sdrepl: sixteen schedulers with their options
(Karras sigmas, spacings, SDE, eta, noise_sampler_seed), steps, guidance, prompts long
and short or a list, negative prompts, images per prompt, guidance_rescale, clip_skip,
sizes, pictures of odd sizes, strengths, a generator or torch.manual_seed.

    .venv-torch/bin/python scripts/differential/random_calls.py SEED COUNT [OUT]
    build/sdrepl OUT/check.lua          # DIFF / FAIL lines, then the worst difference

Needs the reference venv (with torchsde); OUT defaults to /tmp/sdrepl-differential-calls.
Not part of CI.
"""
import json, os, random, sys
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "reference"))
import numpy as np
import torch
import common
common.patch_attention()
from diffusers import (StableDiffusionPipeline, StableDiffusionImg2ImgPipeline, PNDMScheduler, DDIMScheduler,
    LMSDiscreteScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
    UniPCMultistepScheduler, HeunDiscreteScheduler, DDPMScheduler, KDPM2DiscreteScheduler,
    KDPM2AncestralDiscreteScheduler, DEISMultistepScheduler, DPMSolverSinglestepScheduler, DPMSolverSDEScheduler,
    TCDScheduler, LCMScheduler)
OUT = sys.argv[3] if len(sys.argv) > 3 else "/tmp/sdrepl-differential-calls"
os.makedirs(OUT, exist_ok=True)
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 30
SCHEDS = {"PNDMScheduler": [], "DDIMScheduler": ["eta"], "LMSDiscreteScheduler": ["karras"],
          "EulerDiscreteScheduler": ["karras"], "EulerAncestralDiscreteScheduler": [],
          "DPMSolverMultistepScheduler": ["karras", "sde"], "UniPCMultistepScheduler": ["karras"],
          "HeunDiscreteScheduler": ["karras"], "DDPMScheduler": [], "KDPM2DiscreteScheduler": ["karras"],
          "KDPM2AncestralDiscreteScheduler": ["karras"], "DEISMultistepScheduler": ["karras"],
          "DPMSolverSinglestepScheduler": ["karras"], "DPMSolverSDEScheduler": ["karras", "nss"],
          "TCDScheduler": ["eta"], "LCMScheduler": []}
WORDS = "a photo of cat dog astronaut horse painting city night red blue castle forest detailed 4k art by Vermeer joy face human".split()
def prompt():
    n = rng.choice([1, 3, 6, 12, 90])
    return " ".join(rng.choice(WORDS) for _ in range(n))
def lua(v):
    if v is None: return "nil"
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (int, float)): return repr(v)
    if isinstance(v, str): return json.dumps(v)
    if isinstance(v, list): return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, dict): return "{" + ", ".join("%s = %s" % (k, lua(x)) for k, x in v.items()) + "}"
    raise TypeError(v)
pipes = {}
lua_lines = ['local worst = 0', 'local models = {}',
  'local cfgs = {}', 'local function pipe_of(m, i2i) local k = m .. tostring(i2i); if not models[k] then local p = StableDiffusionPipeline.from_pretrained("%s/tests/models/" .. m); p:set_progress_bar_config{disable = true}; if i2i then p = StableDiffusionImg2ImgPipeline(p.components) end; models[k] = p; cfgs[p] = p.scheduler.config end; return models[k] end' % ROOT]
for c in range(N):
    model = rng.choice(["tiny-sd-a", "tiny-sd-b"])
    i2i = rng.random() < 0.4
    key = (model, i2i)
    if key not in pipes:
        p = StableDiffusionPipeline.from_pretrained(ROOT + "/tests/models/" + model, safety_checker=None, requires_safety_checker=False)
        p.set_progress_bar_config(disable=True)
        if i2i:
            p = StableDiffusionImg2ImgPipeline(**p.components, requires_safety_checker=False)
            p.set_progress_bar_config(disable=True)
        pipes[key] = p
    pipe = pipes[key]
    base_config = dict(pipe.scheduler.config) if not hasattr(pipe, "_base_cfg") else pipe._base_cfg
    pipe._base_cfg = base_config
    sname = rng.choice(list(SCHEDS))
    kw = {}
    opts = SCHEDS[sname]
    if "karras" in opts and rng.random() < 0.4: kw["use_karras_sigmas"] = True
    if "sde" in opts and rng.random() < 0.3: kw["algorithm_type"] = "sde-dpmsolver++"
    if "nss" in opts: kw["noise_sampler_seed"] = rng.randint(0, 1000)
    if sname not in ("LCMScheduler", "TCDScheduler") and rng.random() < 0.3:
        kw["timestep_spacing"] = rng.choice(["leading", "trailing", "linspace"])
    cls = globals()[sname]
    pipe.scheduler = cls.from_config(base_config, **kw)
    steps = rng.randint(1, 8)
    if sname in ("LCMScheduler", "TCDScheduler"): steps = rng.randint(1, 4)
    args = {"num_inference_steps": steps, "output_type": "np"}
    two = rng.random() < 0.25
    args["prompt"] = [prompt(), prompt()] if two else prompt()
    if rng.random() < 0.3:
        args["negative_prompt"] = [prompt(), prompt()] if two else prompt()
    args["guidance_scale"] = rng.choice([0.0, 1.0, 1.5, 7.5])
    args["num_images_per_prompt"] = rng.choice([1, 1, 2])
    if "eta" in opts: args["eta"] = rng.choice([0.0, 0.3, 1.0])
    if rng.random() < 0.2: args["guidance_rescale"] = 0.7
    if rng.random() < 0.2: args["clip_skip"] = rng.choice([1, 2])
    if i2i:
        w, h = rng.randint(40, 90), rng.randint(40, 90)
        args["strength"] = rng.choice([0.3, 0.55, 0.8, 1.0])
        if steps * args["strength"] < 1: args["strength"] = 1.0
    else:
        args["height"] = rng.choice([32, 48, 64, 72])
        args["width"] = rng.choice([32, 40, 64, 88])
    seed = rng.randint(0, 10000)
    global_seed = rng.random() < 0.4 or sname == "DPMSolverSDEScheduler" and "noise_sampler_seed" not in kw
    pyargs = dict(args)
    if i2i:
        img = common.sketch(w, h, phase=c * 0.1)
        img.save("%s/img%d.png" % (OUT, c))
        pyargs["image"] = img
    try:
        if global_seed:
            torch.manual_seed(seed)
        else:
            pyargs["generator"] = torch.Generator().manual_seed(seed)
        images = pipe(**pyargs).images
    except Exception as e:
        print("case", c, "python error:", type(e).__name__, str(e)[:100])
        continue
    np.save("%s/case%d.npy" % (OUT, c), np.asarray(images, dtype=np.float32))
    luaargs = dict(args)
    la = lua(luaargs)[:-1]
    if i2i: la += ', image = Image.open("%s/img%d.png")' % (OUT, c)
    if not global_seed: la += ", generator = torch.Generator():manual_seed(%d)" % seed
    la += "}"
    desc = ("%d %s %s %s %s" % (c, model, "i2i" if i2i else "t2i", sname, json.dumps(kw))).replace(chr(34), chr(39))
    lua_lines.append('do local p = pipe_of(%s, %s); p.scheduler = %s.from_config(cfgs[p], %s)' % (lua(model), "true" if i2i else "false", sname, lua(kw) if kw else "{}"))
    if global_seed: lua_lines.append('  torch.manual_seed(%d)' % seed)
    lua_lines.append('  local ok, out = pcall(p, %s)' % la)
    lua_lines.append('  if not ok then print("FAIL %s: " .. tostring(out)) else local d = (out.images - torch.load_npy("%s/case%d.npy")):abs():max():item(); if not (d < 2e-3) then print(string.format("DIFF %s: %%.3g", d)) end; worst = math.max(worst, d) end end' % (desc, OUT, c, desc))
lua_lines.append('print("worst", worst)')
open(os.path.join(OUT, "check.lua"), "w").write("\n".join(lua_lines) + "\n")
print("written")
