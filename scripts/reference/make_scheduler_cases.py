"""Records what diffusers' schedulers compute, for tests/unit/test_scheduler.c.

    .venv-torch/bin/python scripts/reference/make_scheduler_cases.py

Needs scipy (LMSDiscreteScheduler integrates with scipy.integrate.quad): Debian's
python3-scipy, which the venv sees through --system-site-packages; and torchsde==0.2.6
(pip), whose Brownian tree DPMSolverSDEScheduler draws from.

Writes tests/reference/schedulers/: manifest.json and .npy files. Everything is
seeded, so a rerun writes the same files.

Every case starts from SD 1.4's scheduler_config.json as diffusers loads it
(PNDMScheduler.from_config), then makes its class with `Class.from_config(pndm.config,
**kwargs)`, as a notebook does; the C test does the same from the same JSON text and
compares the resulting config dict too. A case records:
  - timesteps, sigmas, init_noise_sigma after set_timesteps(n);
  - a short run as a pipeline makes it: latents = base * init_noise_sigma, then for
    each timestep x_in = scale_model_input(x, t), model_output = model(x_in, t) with
    the fixed function below, x = step(model_output, t, x, **extra).prev_sample, where
    extra is eta and a seeded generator for the classes whose step takes them;
  - pred_original_sample at the same steps, for the classes whose step output has one;
  - the generator's next draws after the run (so a step that draws too much or too
    little shows);
  - img2img: get_timesteps' slice for a strength, set_begin_index where the class has
    it, add_noise at the slice's first timestep, then the run over the slice.
The model function (the C test computes the same, in the same float32 operations):
    model_output = 0.9 * x_in + w * float(0.1 * sin(t * 0.01 + 1))
"""
import json
import math
import os
import sys

import numpy as np
import torch

import diffusers
from diffusers import (DDIMInverseScheduler, DDIMScheduler, DDPMScheduler, DEISMultistepScheduler,
                       DPMSolverMultistepScheduler, DPMSolverSDEScheduler,
                       DPMSolverSinglestepScheduler,
                       EDMDPMSolverMultistepScheduler, EDMEulerScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       HeunDiscreteScheduler, KDPM2AncestralDiscreteScheduler,
                       KDPM2DiscreteScheduler, LCMScheduler, LMSDiscreteScheduler,
                       PNDMScheduler, TCDScheduler, UniPCMultistepScheduler)

try:
    import scipy  # noqa: F401  (LMSDiscreteScheduler needs it)
except ImportError:
    sys.exit("make_scheduler_cases.py: needs scipy (apt-get install python3-scipy)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "schedulers")

# CompVis/stable-diffusion-v1-4's scheduler/scheduler_config.json, as published.
SD14_CONFIG = """{
  "_class_name": "PNDMScheduler",
  "_diffusers_version": "0.7.0.dev0",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "num_train_timesteps": 1000,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 1,
  "trained_betas": null,
  "clip_sample": false
}
"""

CLASSES = {
    "PNDMScheduler": PNDMScheduler,
    "DDIMScheduler": DDIMScheduler,
    "LMSDiscreteScheduler": LMSDiscreteScheduler,
    "EulerDiscreteScheduler": EulerDiscreteScheduler,
    "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler,
    "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler,
    "UniPCMultistepScheduler": UniPCMultistepScheduler,
    "HeunDiscreteScheduler": HeunDiscreteScheduler,
    "DDPMScheduler": DDPMScheduler,
    "KDPM2DiscreteScheduler": KDPM2DiscreteScheduler,
    "KDPM2AncestralDiscreteScheduler": KDPM2AncestralDiscreteScheduler,
    "DEISMultistepScheduler": DEISMultistepScheduler,
    "DPMSolverSinglestepScheduler": DPMSolverSinglestepScheduler,
    "LCMScheduler": LCMScheduler,
    "EDMEulerScheduler": EDMEulerScheduler,
    "EDMDPMSolverMultistepScheduler": EDMDPMSolverMultistepScheduler,
    "TCDScheduler": TCDScheduler,
    "DPMSolverSDEScheduler": DPMSolverSDEScheduler,
    "DDIMInverseScheduler": DDIMInverseScheduler,
}
SHORT = {"PNDMScheduler": "pndm", "DDIMScheduler": "ddim", "LMSDiscreteScheduler": "lms",
         "EulerDiscreteScheduler": "euler", "EulerAncestralDiscreteScheduler": "euler_a",
         "DPMSolverMultistepScheduler": "dpm"}
# Classes added later have their cases after all of the first six's, so that adding one
# leaves the seeds, and so the files, of the earlier cases as they were.
LATER = {"UniPCMultistepScheduler": "unipc", "HeunDiscreteScheduler": "heun",
         "DDPMScheduler": "ddpm", "KDPM2DiscreteScheduler": "kdpm2",
         "KDPM2AncestralDiscreteScheduler": "kdpm2_a", "DEISMultistepScheduler": "deis",
         "DPMSolverSinglestepScheduler": "dpm_single"}
ALL = dict(SHORT, **LATER)
SHAPE = (1, 4, 8, 8)        # the runs of SD 1.4's config and add_noise
SMALL = (1, 4, 4, 4)        # the variants and img2img runs, to keep the files small


def model(x_in, t, w):
    return 0.9 * x_in + w * float(0.1 * math.sin(float(t) * 0.01 + 1.0))


def rec_steps(n):
    """Which steps keep their whole latents: all of a short run, else the first four
    (where multistep methods warm up), the middle and the last."""
    if n <= 5:
        return list(range(n))
    return sorted({0, 1, 2, 3, n // 2 - 1, n - 1})


def to_list(t):
    """Numbers for JSON; float32 ones in their shortest form (C reads them back exactly
    by rounding the double to float)."""
    a = np.asarray(t)
    if a.dtype == np.float32:
        return [float(str(v)) for v in a.reshape(-1)]
    return [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


class Writer:
    def __init__(self):
        os.makedirs(OUT, exist_ok=True)
        for f in os.listdir(OUT):
            if f.endswith(".npy") or f == "manifest.json":
                os.remove(os.path.join(OUT, f))
        self.manifest = {
            "generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                          "numpy": np.__version__, "scipy": scipy.__version__},
            "sd14_config": SD14_CONFIG,
            "model": "model_output = 0.9 * x_in + w * float(0.1 * sin(t * 0.01 + 1))",
            "cases": [], "alphas_cumprod": [], "timesteps": [], "add_noise": []}

    def save(self, name, array):
        a = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
        assert np.isfinite(a).all(), name
        np.save(os.path.join(OUT, name + ".npy"), a)
        return name

    def close(self):
        with open(os.path.join(OUT, "manifest.json"), "w") as f:
            json.dump(self.manifest, f, separators=(",", ":"))
            f.write("\n")


def sd14():
    return PNDMScheduler.from_config(json.loads(SD14_CONFIG))


def make(cls_name, kwargs):
    return CLASSES[cls_name].from_config(sd14().config, **kwargs)


def describe(s):
    ts = s.timesteps.numpy() if torch.is_tensor(s.timesteps) else s.timesteps
    d = {"timesteps": to_list(ts), "timesteps_dtype": str(ts.dtype),
         "init_noise_sigma": float(s.init_noise_sigma)}
    if hasattr(s, "sigmas") and not isinstance(s, (PNDMScheduler, DDIMScheduler)):
        d["sigmas"] = to_list(s.sigmas.numpy())
    return d


def extra_kwargs(s, g, eta):
    import inspect
    params = inspect.signature(s.step).parameters
    kw = {}
    if "eta" in params:
        kw["eta"] = eta
    if "generator" in params:
        kw["generator"] = g
    return kw


def run(s, x, timesteps, w, g, eta, keep):
    """The denoising loop of StableDiffusionPipeline, with a fixed model. Also the step
    outputs' pred_original_sample at the kept steps, for the classes that give one."""
    prev, scaled, x0 = [], [], []
    kw = extra_kwargs(s, g, eta)
    for i, t in enumerate(timesteps):
        x_in = s.scale_model_input(x, t)
        mo = model(x_in, t, w)
        out = s.step(mo, t, x, **kw)
        x = out.prev_sample
        if i in keep:
            prev.append(x.numpy().copy())
            # LCMScheduler's second output is `denoised`, TCDScheduler's `pred_noised_sample`
            x0_out = getattr(out, "pred_original_sample", getattr(out, "denoised", None))
            x0_out = getattr(out, "pred_noised_sample", x0_out)
            if x0_out is not None:
                x0.append(x0_out.numpy().copy())
            if len(scaled) < 2:
                scaled.append(x_in.numpy().copy())
    return np.stack(prev), np.stack(scaled), (np.stack(x0) if x0 else None)


def trajectory_case(wr, name, cls_name, kwargs, n, eta=0.0, seed=None, small=False,
                    global_seed=None):
    """global_seed: no generator given, the step draws from torch's default one, seeded
    so (torch.manual_seed)."""
    base, w = (wr.base_s, wr.w_s) if small else (wr.base, wr.w)
    s = make(cls_name, kwargs)
    s.set_timesteps(n)
    case = {"name": name, "class": cls_name, "kwargs": kwargs, "steps": n, "eta": eta,
            "small": small}
    if small or n == 10:
        case["config"] = json.dumps(dict(s.config), separators=(",", ":"))
    case.update(describe(s))
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if global_seed is not None:
        torch.manual_seed(global_seed)
    x = base * s.init_noise_sigma
    keep = rec_steps(len(s.timesteps))
    prev, scaled, x0 = run(s, x, s.timesteps, w, g, eta, keep)
    case["rec_steps"] = keep
    case["prev"] = wr.save(name + "_prev", prev)
    if x0 is not None:
        case["x0"] = wr.save(name + "_x0", x0)
    if s.scale_model_input(base, s.timesteps[0]) is not base:
        case["scaled"] = wr.save(name + "_scaled", scaled)
    if g is not None:
        case["seed"] = seed
        case["rng_after"] = to_list(torch.randn(4, generator=g))
    if global_seed is not None:
        case["global_seed"] = global_seed
        case["rng_after"] = to_list(torch.randn(4))
    wr.manifest["cases"].append(case)


def img2img_case(wr, name, cls_name, kwargs, n, strength, eta=0.0, seed=None, global_seed=None):
    """get_timesteps, set_begin_index, add_noise, the loop (pipeline_stable_diffusion_img2img).
    global_seed: as trajectory_case's."""
    s = make(cls_name, kwargs)
    s.set_timesteps(n)
    init_timestep = min(int(n * strength), n)
    t_start = max(n - init_timestep, 0)
    timesteps = s.timesteps[t_start * s.order:]
    if hasattr(s, "set_begin_index"):
        s.set_begin_index(t_start * s.order)
    x = s.add_noise(wr.base_s, wr.noise_s, timesteps[:1])
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if global_seed is not None:
        torch.manual_seed(global_seed)
    keep = rec_steps(len(timesteps))
    prev, scaled, x0 = run(s, x, timesteps, wr.w_s, g, eta, keep)
    case = {"name": name, "class": cls_name, "kwargs": kwargs, "steps": n, "eta": eta,
            "small": True, "strength": strength, "t_start": t_start,
            "slice": to_list(timesteps.numpy()), "noised": wr.save(name + "_noised", x)}
    case.update(describe(s))
    case["rec_steps"] = keep
    case["prev"] = wr.save(name + "_prev", prev)
    if x0 is not None:
        case["x0"] = wr.save(name + "_x0", x0)
    if g is not None:
        case["seed"] = seed
        case["rng_after"] = to_list(torch.randn(4, generator=g))
    if global_seed is not None:
        case["global_seed"] = global_seed
        case["rng_after"] = to_list(torch.randn(4))
    wr.manifest["cases"].append(case)


def unipc_cases(wr):
    """UniPCMultistepScheduler: SD 1.4's config at the usual lengths (1x4x8x8, whose
    order-3 sums go through BLAS), then its options on 1x4x4x4 latents, img2img."""
    seed = 500
    for n in (1, 2, 3, 10, 50):
        seed += 1
        trajectory_case(wr, "unipc_%d" % n, "UniPCMultistepScheduler", {}, n, seed=seed)
    seed += 1
    trajectory_case(wr, "unipc_order3_50", "UniPCMultistepScheduler", {"solver_order": 3}, 50,
                    seed=seed)
    variants = [
        ("unipc_bh1_10", {"solver_type": "bh1"}, 10),
        ("unipc_order1_10", {"solver_order": 1}, 10),
        ("unipc_order3_8", {"solver_order": 3}, 8),
        ("unipc_order3_bh1_20", {"solver_order": 3, "solver_type": "bh1"}, 20),
        ("unipc_order3_final_off_16", {"solver_order": 3, "lower_order_final": False}, 16),
        ("unipc_final_off_6", {"lower_order_final": False}, 6),
        ("unipc_noise_pred_10", {"predict_x0": False}, 10),
        ("unipc_noise_pred_bh1_o3_12", {"predict_x0": False, "solver_type": "bh1",
                                        "solver_order": 3}, 12),
        ("unipc_v_10", {"prediction_type": "v_prediction"}, 10),
        ("unipc_v_bh1_noise_pred_9", {"prediction_type": "v_prediction", "solver_type": "bh1",
                                      "predict_x0": False}, 9),
        ("unipc_sample_10", {"prediction_type": "sample"}, 10),
        ("unipc_karras_10", {"use_karras_sigmas": True}, 10),
        ("unipc_karras_o3_25", {"use_karras_sigmas": True, "solver_order": 3}, 25),
        ("unipc_trailing_10", {"timestep_spacing": "trailing"}, 10),
        ("unipc_trailing_61", {"timestep_spacing": "trailing"}, 61),
        ("unipc_leading_10", {"timestep_spacing": "leading"}, 10),
        ("unipc_linspace_bh1_7", {"timestep_spacing": "linspace", "solver_type": "bh1"}, 7),
        ("unipc_no_corrector_10", {"disable_corrector": [0, 1, 4]}, 10),
        ("unipc_midpoint_10", {"solver_type": "midpoint"}, 10),
        ("unipc_cos_10", {"beta_schedule": "squaredcos_cap_v2"}, 10),
    ]
    for name, kwargs, n in variants:
        seed += 1
        trajectory_case(wr, name, "UniPCMultistepScheduler", kwargs, n, seed=seed, small=True)
    for name, kwargs, strength in [
            ("i2i_unipc_08", {}, 0.8),
            ("i2i_unipc_karras_o3_06", {"use_karras_sigmas": True, "solver_order": 3}, 0.6)]:
        seed += 1
        img2img_case(wr, name, "UniPCMultistepScheduler", kwargs, 50, strength, seed=seed)


def heun_cases(wr):
    """HeunDiscreteScheduler: its timesteps and inner sigmas come twice, one model call
    each, so n steps are 2n - 1 calls. SD 1.4's config at several lengths, then its
    options on 1x4x4x4 latents; img2img slices at t_start * order (2), which starts
    on the second copy of a repeated timestep, the second half of a pair."""
    seed = 600
    for n in (1, 2, 3, 10, 25):
        seed += 1
        trajectory_case(wr, "heun_%d" % n, "HeunDiscreteScheduler", {}, n, seed=seed)
    variants = [
        ("heun_karras_10", {"use_karras_sigmas": True}, 10),
        ("heun_karras_trailing_7", {"use_karras_sigmas": True, "timestep_spacing": "trailing"}, 7),
        ("heun_leading_10", {"timestep_spacing": "leading"}, 10),
        ("heun_leading_offset0_9", {"timestep_spacing": "leading", "steps_offset": 0}, 9),
        ("heun_trailing_10", {"timestep_spacing": "trailing"}, 10),
        ("heun_trailing_61", {"timestep_spacing": "trailing"}, 61),
        ("heun_v_10", {"prediction_type": "v_prediction"}, 10),
        ("heun_v_karras_leading_8", {"prediction_type": "v_prediction", "use_karras_sigmas": True,
                                     "timestep_spacing": "leading"}, 8),
        ("heun_sample_clip_10", {"prediction_type": "sample", "clip_sample": True,
                                 "clip_sample_range": 1.5}, 10),
        ("heun_clip_6", {"clip_sample": True}, 6),
        ("heun_cos_10", {"beta_schedule": "squaredcos_cap_v2"}, 10),
        ("heun_linear_10", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02}, 10),
    ]
    for name, kwargs, n in variants:
        seed += 1
        trajectory_case(wr, name, "HeunDiscreteScheduler", kwargs, n, seed=seed, small=True)
    for name, kwargs, n, strength in [
            ("i2i_heun_075", {}, 50, 0.75),
            ("i2i_heun_055_10", {}, 10, 0.55),
            ("i2i_heun_05_7", {}, 7, 0.5),
            ("i2i_heun_karras_06_12", {"use_karras_sigmas": True}, 12, 0.6)]:
        seed += 1
        img2img_case(wr, name, "HeunDiscreteScheduler", kwargs, n, strength, seed=seed)


def kdpm2_cases(wr):
    """KDPM2DiscreteScheduler: as Heun's, two calls a step (the second at the midpoint
    sigma, whose fractional timestep comes between the steps' own), 2n - 1 calls for n
    steps. SD 1.4's config at several lengths (vectorized and scalar lerps both), its
    options, img2img slices at t_start * 2."""
    seed = 1000
    for n in (1, 2, 3, 10, 25):
        seed += 1
        trajectory_case(wr, "kdpm2_%d" % n, "KDPM2DiscreteScheduler", {}, n, seed=seed)
    for name, kwargs, n in [
            ("kdpm2_karras_10", {"use_karras_sigmas": True}, 10),
            ("kdpm2_karras_trailing_7", {"use_karras_sigmas": True, "timestep_spacing": "trailing"}, 7),
            ("kdpm2_leading_10", {"timestep_spacing": "leading"}, 10),
            ("kdpm2_trailing_61", {"timestep_spacing": "trailing"}, 61),
            ("kdpm2_v_10", {"prediction_type": "v_prediction"}, 10),
            ("kdpm2_cos_10", {"beta_schedule": "squaredcos_cap_v2"}, 10),
            ("kdpm2_linear_10", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02}, 10)]:
        seed += 1
        trajectory_case(wr, name, "KDPM2DiscreteScheduler", kwargs, n, seed=seed, small=True)
    for name, kwargs, n, strength in [
            ("i2i_kdpm2_075", {}, 20, 0.75),
            ("i2i_kdpm2_karras_06_12", {"use_karras_sigmas": True}, 12, 0.6)]:
        seed += 1
        img2img_case(wr, name, "KDPM2DiscreteScheduler", kwargs, n, strength, seed=seed)


def kdpm2_ancestral_cases(wr):
    """KDPM2AncestralDiscreteScheduler: KDPM2's two calls a step down to sigma_down, plus
    noise of sigma_up from the generator, which every call draws from (the first half's
    unused). SD 1.4's config at several lengths, its options, img2img, and a run from
    torch's default generator."""
    seed = 1100
    for n in (1, 2, 3, 10, 25):
        seed += 1
        trajectory_case(wr, "kdpm2_a_%d" % n, "KDPM2AncestralDiscreteScheduler", {}, n, seed=seed)
    for name, kwargs, n in [
            ("kdpm2_a_karras_10", {"use_karras_sigmas": True}, 10),
            ("kdpm2_a_leading_9", {"timestep_spacing": "leading"}, 9),
            ("kdpm2_a_trailing_61", {"timestep_spacing": "trailing"}, 61),
            ("kdpm2_a_v_10", {"prediction_type": "v_prediction"}, 10),
            ("kdpm2_a_cos_10", {"beta_schedule": "squaredcos_cap_v2"}, 10)]:
        seed += 1
        trajectory_case(wr, name, "KDPM2AncestralDiscreteScheduler", kwargs, n, seed=seed,
                        small=True)
    seed += 1
    trajectory_case(wr, "kdpm2_a_global_6", "KDPM2AncestralDiscreteScheduler", {}, 6,
                    global_seed=seed, small=True)
    for name, kwargs, n, strength in [
            ("i2i_kdpm2_a_075", {}, 20, 0.75),
            ("i2i_kdpm2_a_karras_06_12", {"use_karras_sigmas": True}, 12, 0.6)]:
        seed += 1
        img2img_case(wr, name, "KDPM2AncestralDiscreteScheduler", kwargs, n, strength, seed=seed)


def deis_cases(wr):
    """DEISMultistepScheduler: log-rho multistep of order 1 to 3 on noise predictions, on
    UniPC's schedule. SD 1.4's config at several lengths (short runs end with lower
    orders), its options, thresholding, img2img."""
    seed = 1200
    for n in (1, 2, 3, 10, 25):
        seed += 1
        trajectory_case(wr, "deis_%d" % n, "DEISMultistepScheduler", {}, n, seed=seed)
    for name, kwargs, n in [
            ("deis_order3_20", {"solver_order": 3}, 20),
            ("deis_order3_short_8", {"solver_order": 3}, 8),
            ("deis_order1_10", {"solver_order": 1}, 10),
            ("deis_karras_10", {"use_karras_sigmas": True}, 10),
            ("deis_leading_10", {"timestep_spacing": "leading"}, 10),
            ("deis_trailing_10", {"timestep_spacing": "trailing"}, 10),
            ("deis_v_10", {"prediction_type": "v_prediction"}, 10),
            ("deis_sample_10", {"prediction_type": "sample"}, 10),
            ("deis_no_lof_6", {"lower_order_final": False, "solver_order": 3}, 6),
            ("deis_thresh_10", {"thresholding": True, "sample_max_value": 2.0}, 10),
            ("deis_dpm_names_10", {"algorithm_type": "dpmsolver++", "solver_type": "midpoint"}, 10)]:
        seed += 1
        trajectory_case(wr, name, "DEISMultistepScheduler", kwargs, n, seed=seed, small=True)
    for name, kwargs, n, strength in [
            ("i2i_deis_08", {}, 20, 0.8),
            ("i2i_deis_karras_06_12", {"use_karras_sigmas": True}, 12, 0.6)]:
        seed += 1
        img2img_case(wr, name, "DEISMultistepScheduler", kwargs, n, strength, seed=seed)


def singlestep_cases(wr):
    """DPMSolverSinglestepScheduler: groups of steps from a kept sample, by the order list
    (set_timesteps turns lower_order_final on when the steps do not divide into groups
    or the last sigma is zero). SD 1.4's config at several lengths, orders, both
    algorithms and solver types, Karras sigmas, img2img begun mid-group."""
    seed = 1300
    for n in (1, 2, 3, 10, 25):
        seed += 1
        trajectory_case(wr, "dpm_single_%d" % n, "DPMSolverSinglestepScheduler", {}, n, seed=seed)
    for name, kwargs, n in [
            ("dpm_single_order3_12", {"solver_order": 3}, 12),
            ("dpm_single_order3_10", {"solver_order": 3}, 10),
            # 11 steps of order 3 end with a second-order step to sigma 0, which diffusers
            # turns into NaN (r0 = 0): with sigma_min last they do not
            ("dpm_single_order3_11", {"solver_order": 3, "final_sigmas_type": "sigma_min"}, 11),
            ("dpm_single_order1_6", {"solver_order": 1}, 6),
            ("dpm_single_heun_9", {"solver_type": "heun"}, 9),
            ("dpm_single_heun3_12", {"solver_type": "heun", "solver_order": 3}, 12),
            ("dpm_single_noise_10", {"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min"},
             10),
            ("dpm_single_noise_heun3_12", {"algorithm_type": "dpmsolver", "solver_type": "heun",
                                           "solver_order": 3, "final_sigmas_type": "sigma_min"}, 12),
            ("dpm_single_no_lof_8", {"final_sigmas_type": "sigma_min"}, 8),
            ("dpm_single_no_lof3_9", {"final_sigmas_type": "sigma_min", "solver_order": 3}, 9),
            ("dpm_single_karras_10", {"use_karras_sigmas": True}, 10),
            ("dpm_single_v_10", {"prediction_type": "v_prediction"}, 10),
            ("dpm_single_sample_10", {"prediction_type": "sample"}, 10),
            ("dpm_single_thresh_10", {"thresholding": True, "sample_max_value": 2.0}, 10)]:
        seed += 1
        trajectory_case(wr, name, "DPMSolverSinglestepScheduler", kwargs, n, seed=seed,
                        small=True)
    for name, kwargs, n, strength in [
            ("i2i_dpm_single_075", {}, 20, 0.75),
            ("i2i_dpm_single_3_07_13", {"solver_order": 3}, 13, 0.7)]:
        seed += 1
        img2img_case(wr, name, "DPMSolverSinglestepScheduler", kwargs, n, strength, seed=seed)


def threshold_cases(wr):
    """Dynamic thresholding (_threshold_sample) where diffusers has it: DDIM and DDPM on
    the predicted x0, DPM-Solver++ and UniPC on their data predictions, DPM-Solver on a
    noise prediction through its x0 (UniPC's noise predictions are left alone). A
    sample_max_value above 1 and ratios below 0.995 make the quantile itself matter.
    Also DPM-Solver's SDE form at solver_order 3 over 4 steps, which never reaches the
    third-order update it lacks."""
    seed = 900
    for name, cls_name, kwargs, n, eta in [
            ("ddim_thresh_10", "DDIMScheduler", {"thresholding": True, "sample_max_value": 2.5},
             10, 0.0),
            ("ddim_thresh_r09_eta1_10", "DDIMScheduler",
             {"thresholding": True, "dynamic_thresholding_ratio": 0.9, "sample_max_value": 4.0},
             10, 1.0),
            ("ddpm_thresh_r08_10", "DDPMScheduler",
             {"thresholding": True, "dynamic_thresholding_ratio": 0.8, "sample_max_value": 3.0},
             10, 0.0),
            ("dpm_thresh_10", "DPMSolverMultistepScheduler",
             {"thresholding": True, "sample_max_value": 2.0}, 10, 0.0),
            ("dpm_dpmsolver_thresh_10", "DPMSolverMultistepScheduler",
             {"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min",
              "thresholding": True, "dynamic_thresholding_ratio": 0.7, "sample_max_value": 2.0},
             10, 0.0),
            ("dpm_sde_thresh_10", "DPMSolverMultistepScheduler",
             {"algorithm_type": "sde-dpmsolver++", "thresholding": True,
              "sample_max_value": 1.5}, 10, 0.0),
            ("unipc_thresh_10", "UniPCMultistepScheduler",
             {"thresholding": True, "dynamic_thresholding_ratio": 0.9, "sample_max_value": 1.5},
             10, 0.0),
            ("unipc_noise_thresh_10", "UniPCMultistepScheduler",
             {"predict_x0": False, "thresholding": True, "sample_max_value": 1.5}, 10, 0.0),
            ("dpm_sde3_4", "DPMSolverMultistepScheduler",
             {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}, 4, 0.0)]:
        seed += 1
        trajectory_case(wr, name, cls_name, kwargs, n, eta=eta, seed=seed, small=True)


def ddpm_cases(wr):
    """DDPMScheduler: SD 1.4's config at several lengths with a seeded generator (every
    step with t > 0 draws), each variance_type, predictions, clipping, spacings, zero
    SNR; a run without a generator (drawing from torch's default one, seeded), a
    one-step run at t = 0 that draws nothing, img2img."""
    seed = 700
    for n in (1, 2, 3, 10, 50):
        seed += 1
        trajectory_case(wr, "ddpm_%d" % n, "DDPMScheduler", {}, n, seed=seed)
    variants = [
        ("ddpm_small_log_10", {"variance_type": "fixed_small_log"}, 10),
        ("ddpm_large_10", {"variance_type": "fixed_large"}, 10),
        # NaN on every step in diffusers (the square root of a log variance): refused by
        # sdrepl, so not recorded, but it keeps its seed so that the cases after it do
        ("ddpm_large_log_4", {"variance_type": "fixed_large_log"}, 4),
        ("ddpm_v_10", {"prediction_type": "v_prediction"}, 10),
        ("ddpm_sample_10", {"prediction_type": "sample"}, 10),
        ("ddpm_clip_10", {"clip_sample": True}, 10),
        ("ddpm_clip15_large_10", {"clip_sample": True, "clip_sample_range": 1.5,
                                  "variance_type": "fixed_large"}, 10),
        ("ddpm_trailing_10", {"timestep_spacing": "trailing"}, 10),
        ("ddpm_trailing_61", {"timestep_spacing": "trailing"}, 61),
        ("ddpm_linspace_10", {"timestep_spacing": "linspace"}, 10),
        ("ddpm_leading_offset0_10", {"steps_offset": 0}, 10),
        ("ddpm_zsnr_v_10", {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing",
                            "prediction_type": "v_prediction"}, 10),
        ("ddpm_linear_10", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
         10),
        ("ddpm_cos_small_log_10", {"beta_schedule": "squaredcos_cap_v2",
                                   "variance_type": "fixed_small_log"}, 10),
    ]
    for name, kwargs, n in variants:
        seed += 1
        if kwargs.get("variance_type") == "fixed_large_log":
            continue
        trajectory_case(wr, name, "DDPMScheduler", kwargs, n, seed=seed, small=True)
    seed += 1
    trajectory_case(wr, "ddpm_global_10", "DDPMScheduler", {}, 10, small=True, global_seed=seed)
    trajectory_case(wr, "ddpm_t0_nogen_1", "DDPMScheduler", {"timestep_spacing": "linspace"}, 1,
                    small=True)
    for name, kwargs, n, strength in [
            ("i2i_ddpm_06_20", {}, 20, 0.6),
            ("i2i_ddpm_large_08", {"variance_type": "fixed_large"}, 50, 0.8)]:
        seed += 1
        img2img_case(wr, name, "DDPMScheduler", kwargs, n, strength, seed=seed)


def lcm_cases(wr):
    """LCMScheduler: its own schedule (num_inference_steps of original_inference_steps'
    distillation timesteps), the boundary condition, noise from the generator at every step
    but the last; its `denoised` output recorded as x0. SD 1.4's config at LCM's usual
    lengths, then its options, and img2img (a begin index, the last step still noiseless)."""
    seed = 1400
    for n in (1, 2, 4, 8):
        seed += 1
        trajectory_case(wr, "lcm_%d" % n, "LCMScheduler", {}, n, seed=seed)
    for name, kwargs, n in [
            ("lcm_50", {}, 50),
            ("lcm_orig25_6", {"original_inference_steps": 25}, 6),
            ("lcm_orig7_3", {"original_inference_steps": 7}, 3),
            ("lcm_scaling5_4", {"timestep_scaling": 5.0}, 4),
            ("lcm_v_4", {"prediction_type": "v_prediction"}, 4),
            ("lcm_sample_clip_4", {"prediction_type": "sample", "clip_sample": True,
                                   "clip_sample_range": 1.5}, 4),
            ("lcm_thresh_4", {"thresholding": True, "sample_max_value": 1.5}, 4),
            ("lcm_zsnr_v_4", {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction"},
             4)]:
        seed += 1
        trajectory_case(wr, name, "LCMScheduler", kwargs, n, seed=seed, small=True)
    for name, kwargs, n, strength in [
            ("i2i_lcm_06_8", {}, 8, 0.6),
            ("i2i_lcm_05_4", {}, 4, 0.5)]:
        seed += 1
        img2img_case(wr, name, "LCMScheduler", kwargs, n, strength, seed=seed)


def edm_cases(wr):
    """EDMEulerScheduler and EDMDPMSolverMultistepScheduler (Playground v2.5's): no betas,
    a rho schedule of sigmas from sigma_max to sigma_min, timesteps 0.25 * log(sigma), the
    model's input scaled by c_in and its output turned into c_skip * x + c_out * output.
    From SD 1.4's config (none of whose keys they take), at the usual lengths, then
    Playground v2.5's own settings and the options, and img2img with a begin index."""
    seed = 1500
    for cls_name, short in (("EDMEulerScheduler", "edm_euler"),
                            ("EDMDPMSolverMultistepScheduler", "edm_dpm")):
        for n in (1, 2, 3, 10, 50):
            seed += 1
            trajectory_case(wr, "%s_%d" % (short, n), cls_name, {}, n, seed=seed)
    playground = {"sigma_min": 0.002, "sigma_max": 80.0, "sigma_data": 0.5, "rho": 7.0,
                  "solver_order": 2, "algorithm_type": "dpmsolver++", "solver_type": "midpoint",
                  "final_sigmas_type": "zero", "lower_order_final": True,
                  "euler_at_final": False, "prediction_type": "epsilon"}
    for name, cls_name, kwargs, n in [
            ("edm_euler_v_10", "EDMEulerScheduler", {"prediction_type": "v_prediction"}, 10),
            ("edm_euler_range_10", "EDMEulerScheduler", {"sigma_min": 0.03, "sigma_max": 14.6,
                                                         "sigma_data": 1.0, "rho": 5.0}, 10),
            ("edm_dpm_playground_25", "EDMDPMSolverMultistepScheduler", playground, 25),
            ("edm_dpm_order3_20", "EDMDPMSolverMultistepScheduler", {"solver_order": 3}, 20),
            ("edm_dpm_order1_6", "EDMDPMSolverMultistepScheduler", {"solver_order": 1}, 6),
            ("edm_dpm_heun_10", "EDMDPMSolverMultistepScheduler", {"solver_type": "heun"}, 10),
            ("edm_dpm_v_10", "EDMDPMSolverMultistepScheduler", {"prediction_type": "v_prediction"},
             10),
            ("edm_dpm_sde_10", "EDMDPMSolverMultistepScheduler",
             {"algorithm_type": "sde-dpmsolver++"}, 10),
            ("edm_dpm_sde_heun_10", "EDMDPMSolverMultistepScheduler",
             {"algorithm_type": "sde-dpmsolver++", "solver_type": "heun"}, 10),
            ("edm_dpm_sigma_min_10", "EDMDPMSolverMultistepScheduler",
             {"final_sigmas_type": "sigma_min"}, 10),
            ("edm_dpm_euler_final_16", "EDMDPMSolverMultistepScheduler",
             {"final_sigmas_type": "sigma_min", "euler_at_final": True}, 16),
            ("edm_dpm_sigma_min_16", "EDMDPMSolverMultistepScheduler",
             {"final_sigmas_type": "sigma_min"}, 16),
            ("edm_dpm_thresh_10", "EDMDPMSolverMultistepScheduler",
             {"thresholding": True, "sample_max_value": 1.5}, 10)]:
        seed += 1
        trajectory_case(wr, name, cls_name, kwargs, n, seed=seed, small=True)
    for name, cls_name, kwargs, n, strength in [
            ("i2i_edm_euler_08", "EDMEulerScheduler", {}, 30, 0.8),
            ("i2i_edm_dpm_06", "EDMDPMSolverMultistepScheduler", playground, 25, 0.6)]:
        seed += 1
        img2img_case(wr, name, cls_name, kwargs, n, strength, seed=seed)


def tcd_cases(wr):
    """TCDScheduler: LCM's schedule; each step noises its x0 back to s = floor((1 - eta) *
    prev_t) and, with eta > 0 and a step to follow, on to prev_t with noise from the
    generator; its `pred_noised_sample` recorded as x0. eta as the pipelines pass it (0 by
    default there; 0.3, TCD's usual; 0.6 and 0.8, whose float32 (1 - eta) * prev_t lands
    on the other side of an integer from the float64 product; 1), then the options (none of
    which clip or threshold here), and img2img."""
    seed = 1600
    for n, eta in ((1, 0.3), (2, 0.3), (4, 0.3), (8, 0.3), (4, 0.0), (4, 0.6), (8, 0.8),
                   (4, 1.0), (50, 0.3)):
        seed += 1
        trajectory_case(wr, "tcd_%d_eta%g" % (n, eta), "TCDScheduler", {}, n, eta=eta, seed=seed)
    for name, kwargs, n, eta in [
            ("tcd_orig25_6", {"original_inference_steps": 25}, 6, 0.3),
            ("tcd_v_4", {"prediction_type": "v_prediction"}, 4, 0.3),
            ("tcd_sample_4", {"prediction_type": "sample", "clip_sample": True}, 4, 0.5),
            ("tcd_thresh_4", {"thresholding": True, "sample_max_value": 1.5}, 4, 0.3),
            ("tcd_zsnr_v_4", {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction"},
             4, 0.3)]:
        seed += 1
        trajectory_case(wr, name, "TCDScheduler", kwargs, n, eta=eta, seed=seed, small=True)
    seed += 1
    trajectory_case(wr, "tcd_global_4", "TCDScheduler", {}, 4, eta=0.3, small=True,
                    global_seed=seed)
    for name, kwargs, n, strength in [
            ("i2i_tcd_06_8", {}, 8, 0.6),
            ("i2i_tcd_05_4", {}, 4, 0.5)]:
        seed += 1
        img2img_case(wr, name, "TCDScheduler", kwargs, n, strength, eta=0.3, seed=seed)


def dpm_solver_sde_cases(wr):
    """DPMSolverSDEScheduler: two calls a step (the second at the midpoint in -log sigma),
    each adding noise from a torchsde Brownian tree whose seed comes from
    torch.randint on the default generator (global_seed) unless the config gives
    noise_sampler_seed. SD 1.4's config at several lengths, its options, img2img."""
    seed = 1700
    for n in (1, 2, 3, 10, 25):
        seed += 1
        trajectory_case(wr, "dpmsde_%d" % n, "DPMSolverSDEScheduler", {}, n, global_seed=seed)
    for name, kwargs, n in [
            ("dpmsde_karras_10", {"use_karras_sigmas": True}, 10),
            ("dpmsde_karras_trailing_7", {"use_karras_sigmas": True,
                                           "timestep_spacing": "trailing"}, 7),
            ("dpmsde_leading_9", {"timestep_spacing": "leading"}, 9),
            ("dpmsde_trailing_61", {"timestep_spacing": "trailing"}, 61),
            ("dpmsde_v_10", {"prediction_type": "v_prediction"}, 10),
            ("dpmsde_cos_10", {"beta_schedule": "squaredcos_cap_v2"}, 10)]:
        seed += 1
        trajectory_case(wr, name, "DPMSolverSDEScheduler", kwargs, n, global_seed=seed,
                        small=True)
    trajectory_case(wr, "dpmsde_seeded_8", "DPMSolverSDEScheduler", {"noise_sampler_seed": 42},
                    8, small=True)
    for name, kwargs, n, strength in [
            ("i2i_dpmsde_075", {}, 20, 0.75),
            ("i2i_dpmsde_karras_06_12", {"use_karras_sigmas": True}, 12, 0.6)]:
        seed += 1
        img2img_case(wr, name, "DPMSolverSDEScheduler", kwargs, n, strength, global_seed=seed)


def ddim_inverse_cases(wr):
    """DDIMInverseScheduler: DDIM backwards over rising timesteps, from the previous step's
    alpha (the initial one before the first) to t. SD 1.4's config at several lengths, then
    its options on 1x4x4x4 latents."""
    for n in (1, 2, 3, 10, 50):
        trajectory_case(wr, "ddim_inverse_%d" % n, "DDIMInverseScheduler", {}, n)
    for name, kwargs, n in [
            ("ddim_inverse_trailing_10", {"timestep_spacing": "trailing"}, 10),
            ("ddim_inverse_trailing_61", {"timestep_spacing": "trailing"}, 61),
            ("ddim_inverse_one_10", {"set_alpha_to_one": True}, 10),
            ("ddim_inverse_v_10", {"prediction_type": "v_prediction"}, 10),
            ("ddim_inverse_sample_clip_10", {"prediction_type": "sample", "clip_sample": True,
                                             "clip_sample_range": 1.5}, 10),
            ("ddim_inverse_linear_offset0_7", {"beta_schedule": "linear", "beta_start": 0.0001,
                                               "beta_end": 0.02, "steps_offset": 0}, 7),
            ("ddim_inverse_zsnr_v_10", {"rescale_betas_zero_snr": True,
                                        "prediction_type": "v_prediction",
                                        "timestep_spacing": "trailing"}, 10)]:
        trajectory_case(wr, name, "DDIMInverseScheduler", kwargs, n, small=True)


def main():
    torch.set_num_threads(1)
    wr = Writer()
    wr.base = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    wr.w = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    wr.noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    wr.manifest["base"] = wr.save("base", wr.base)
    wr.manifest["w"] = wr.save("w", wr.w)
    wr.manifest["noise"] = wr.save("noise", wr.noise)
    wr.base_s, wr.w_s, wr.noise_s = (torch.randn(SMALL, generator=torch.Generator().manual_seed(k))
                                     for k in (3, 4, 5))
    wr.manifest["base_small"] = wr.save("base_small", wr.base_s)
    wr.manifest["w_small"] = wr.save("w_small", wr.w_s)
    wr.manifest["noise_small"] = wr.save("noise_small", wr.noise_s)
    wr.manifest["pndm_config"] = json.dumps(dict(sd14().config))

    # Each class from SD 1.4's config, as from_config gives it, at several lengths.
    seed = 100
    for cls_name, short in SHORT.items():
        for n in (1, 2, 3, 10, 50):
            seed += 1
            trajectory_case(wr, "%s_%d" % (short, n), cls_name, {}, n, seed=seed)

    # Variants: spacings, predictions, solver settings, beta schedules.
    variants = [
        ("pndm_prk_10", "PNDMScheduler", {"skip_prk_steps": False}, 10, 0.0),
        ("pndm_v_10", "PNDMScheduler", {"prediction_type": "v_prediction"}, 10, 0.0),
        ("pndm_trailing_7", "PNDMScheduler", {"timestep_spacing": "trailing"}, 7, 0.0),
        ("ddim_trailing_eta0_10", "DDIMScheduler", {"timestep_spacing": "trailing"}, 10, 0.0),
        ("ddim_trailing_eta1_10", "DDIMScheduler", {"timestep_spacing": "trailing"}, 10, 1.0),
        ("ddim_eta1_50", "DDIMScheduler", {}, 50, 1.0),
        ("ddim_eta05_linspace_10", "DDIMScheduler", {"timestep_spacing": "linspace"}, 10, 0.5),
        ("ddim_clip_10", "DDIMScheduler", {"clip_sample": True, "set_alpha_to_one": True,
                                           "clip_sample_range": 1.5}, 10, 0.0),
        ("ddim_sample_10", "DDIMScheduler", {"prediction_type": "sample"}, 10, 0.0),
        ("ddim_zsnr_v_10", "DDIMScheduler", {"rescale_betas_zero_snr": True, "timestep_spacing":
                                             "trailing", "prediction_type": "v_prediction"}, 10, 0.0),
        ("ddim_linear_10", "DDIMScheduler", {"beta_schedule": "linear", "beta_start": 0.0001,
                                             "beta_end": 0.02}, 10, 0.0),
        ("ddim_trained_10", "DDIMScheduler", {"num_train_timesteps": 100, "trained_betas":
                                              [round(0.001 + 0.002 * i, 6) for i in range(100)]},
         10, 0.0),
        ("lms_leading_10", "LMSDiscreteScheduler", {"timestep_spacing": "leading"}, 10, 0.0),
        ("lms_karras_10", "LMSDiscreteScheduler", {"use_karras_sigmas": True}, 10, 0.0),
        ("lms_karras_50", "LMSDiscreteScheduler", {"use_karras_sigmas": True}, 50, 0.0),
        ("lms_v_10", "LMSDiscreteScheduler", {"prediction_type": "v_prediction"}, 10, 0.0),
        ("euler_leading_10", "EulerDiscreteScheduler", {"timestep_spacing": "leading"}, 10, 0.0),
        ("euler_trailing_10", "EulerDiscreteScheduler", {"timestep_spacing": "trailing"}, 10, 0.0),
        ("euler_linear_interp_10", "EulerDiscreteScheduler", {"interpolation_type": "linear"},
         10, 0.0),
        ("euler_log_linear_10", "EulerDiscreteScheduler", {"interpolation_type": "log_linear"},
         10, 0.0),
        ("euler_karras_10", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, 10, 0.0),
        ("euler_v_10", "EulerDiscreteScheduler", {"prediction_type": "v_prediction"}, 10, 0.0),
        ("euler_zsnr_v_10", "EulerDiscreteScheduler", {"rescale_betas_zero_snr": True,
                                                       "prediction_type": "v_prediction",
                                                       "timestep_spacing": "trailing"}, 10, 0.0),
        ("euler_a_leading_50", "EulerAncestralDiscreteScheduler", {"timestep_spacing": "leading"},
         50, 0.0),
        ("euler_a_trailing_10", "EulerAncestralDiscreteScheduler",
         {"timestep_spacing": "trailing"}, 10, 0.0),
        ("euler_a_v_10", "EulerAncestralDiscreteScheduler", {"prediction_type": "v_prediction"},
         10, 0.0),
        ("dpm_karras_10", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, 10, 0.0),
        ("dpm_karras_50", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, 50, 0.0),
        ("dpm_order3_20", "DPMSolverMultistepScheduler", {"solver_order": 3}, 20, 0.0),
        ("dpm_heun_10", "DPMSolverMultistepScheduler", {"solver_type": "heun"}, 10, 0.0),
        ("dpm_v_10", "DPMSolverMultistepScheduler", {"prediction_type": "v_prediction"}, 10, 0.0),
        ("dpm_sample_10", "DPMSolverMultistepScheduler", {"prediction_type": "sample"}, 10, 0.0),
        ("dpm_leading_10", "DPMSolverMultistepScheduler", {"timestep_spacing": "leading"}, 10, 0.0),
        ("dpm_trailing_10", "DPMSolverMultistepScheduler", {"timestep_spacing": "trailing"}, 10,
         0.0),
        ("dpm_lu_10", "DPMSolverMultistepScheduler", {"use_lu_lambdas": True}, 10, 0.0),
        ("dpm_dpmsolver_10", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver",
                                                             "final_sigmas_type": "sigma_min"},
         10, 0.0),
        ("dpm_dpmsolver3_20", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver",
                                                              "solver_order": 3,
                                                              "final_sigmas_type": "sigma_min"},
         20, 0.0),
        ("dpm_sde_10", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, 10,
         0.0),
        ("dpm_sde_heun_10", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++",
                                                            "solver_type": "heun"}, 10, 0.0),
        ("dpm_sde1_10", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver",
                                                        "final_sigmas_type": "sigma_min"}, 10,
         0.0),
        ("dpm_euler_final_10", "DPMSolverMultistepScheduler", {"euler_at_final": True,
                                                               "final_sigmas_type": "sigma_min"},
         10, 0.0),
        ("dpm_cos_clip_10", "DPMSolverMultistepScheduler", {"beta_schedule": "squaredcos_cap_v2",
                                                            "lambda_min_clipped": -5.1}, 10, 0.0),
        ("dpm_zsnr_10", "DPMSolverMultistepScheduler", {"rescale_betas_zero_snr": True,
                                                        "timestep_spacing": "trailing",
                                                        "prediction_type": "v_prediction"}, 10,
         0.0),
    ]
    for name, cls_name, kwargs, n, eta in variants:
        seed += 1
        trajectory_case(wr, name, cls_name, kwargs, n, eta=eta, seed=seed, small=True)

    # img2img: PNDM's 38 calls from t=741 (strength 0.75), and the classes with a begin index.
    for name, cls_name, kwargs, strength, eta in [
            ("i2i_pndm_075", "PNDMScheduler", {}, 0.75, 0.0),
            ("i2i_ddim_08", "DDIMScheduler", {}, 0.8, 0.0),
            ("i2i_lms_03", "LMSDiscreteScheduler", {}, 0.3, 0.0),
            ("i2i_euler_075", "EulerDiscreteScheduler", {}, 0.75, 0.0),
            ("i2i_euler_a_08", "EulerAncestralDiscreteScheduler", {}, 0.8, 0.0),
            ("i2i_dpm_karras_08", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True},
             0.8, 0.0)]:
        seed += 1
        img2img_case(wr, name, cls_name, kwargs, 50, strength, eta=eta, seed=seed)

    # A half pipeline draws its step noise in float16, its own stream. Ten Euler
    # ancestral steps in float32 with that noise widened (what set_noise_dtype(float16)
    # does): randn_tensor swapped for one that draws half numbers.
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as ea_module
    draw = ea_module.randn_tensor
    ea_module.randn_tensor = lambda shape, generator=None, device=None, dtype=None: torch.randn(
        shape, generator=generator, dtype=torch.float16).float()
    s = make("EulerAncestralDiscreteScheduler", {})
    s.set_timesteps(10)
    g = torch.Generator().manual_seed(77)
    prev, _, _ = run(s, wr.base_s * s.init_noise_sigma, s.timesteps, wr.w_s, g, 0.0, [9])
    ea_module.randn_tensor = draw
    wr.manifest["half_noise"] = {"class": "EulerAncestralDiscreteScheduler", "steps": 10,
                                 "seed": 77, "final": wr.save("half_noise_final", prev[0]),
                                 "rng_after": to_list(torch.randn(4, generator=g))}

    # add_noise at the first timestep of each strength's slice (50 steps).
    for cls_name, short in ALL.items():
        for strength in (0.3, 0.75, 0.8, 1.0):
            s = make(cls_name, {})
            s.set_timesteps(50)
            t_start = max(50 - min(int(50 * strength), 50), 0)
            timesteps = s.timesteps[t_start * s.order:]
            if hasattr(s, "set_begin_index"):
                s.set_begin_index(t_start * s.order)
            out = s.add_noise(wr.base, wr.noise, timesteps[:1])
            name = "noise_%s_%d" % (short, round(strength * 100))
            wr.manifest["add_noise"].append({
                "class": cls_name, "strength": strength, "t_start": t_start,
                "slice": to_list(timesteps.numpy()), "out": wr.save(name, out)})

    # Training schedules, bit for bit: every beta_schedule and the zero-SNR rescale.
    for name, cls_name, kwargs in [
            ("ac_scaled_linear", "DDIMScheduler", {}),
            ("ac_linear", "DDIMScheduler", {"beta_schedule": "linear", "beta_start": 0.0001,
                                            "beta_end": 0.02}),
            ("ac_squaredcos", "DDIMScheduler", {"beta_schedule": "squaredcos_cap_v2"}),
            ("ac_zsnr", "DDIMScheduler", {"rescale_betas_zero_snr": True}),
            ("ac_zsnr_euler", "EulerDiscreteScheduler", {"rescale_betas_zero_snr": True})]:
        s = make(cls_name, kwargs)
        wr.manifest["alphas_cumprod"].append({"class": cls_name, "kwargs": kwargs,
                                              "file": wr.save(name, s.alphas_cumprod)})

    # Timesteps alone, for many lengths and every spacing (numpy's arange gives 62
    # trailing timesteps for 61 steps, for instance).
    for cls_name in ALL:
        for spacing in ("leading", "trailing", "linspace"):
            for n in ((1, 2, 3, 7, 50, 61) if spacing == "trailing" else (1, 2, 3, 7, 50)):
                s = make(cls_name, {"timestep_spacing": spacing})
                s.set_timesteps(n)
                d = {"class": cls_name, "spacing": spacing, "steps": n}
                d.update(describe(s))
                wr.manifest["timesteps"].append(d)

    unipc_cases(wr)
    heun_cases(wr)
    ddpm_cases(wr)
    threshold_cases(wr)
    kdpm2_cases(wr)
    kdpm2_ancestral_cases(wr)
    deis_cases(wr)
    singlestep_cases(wr)
    lcm_cases(wr)
    edm_cases(wr)
    tcd_cases(wr)
    dpm_solver_sde_cases(wr)
    ddim_inverse_cases(wr)

    wr.close()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d cases, %d bytes, to %s" % (len(wr.manifest["cases"]), total, OUT))


if __name__ == "__main__":
    main()
