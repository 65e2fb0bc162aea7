"""The safety checker as diffusers 0.27.2 runs it (StableDiffusionSafetyChecker with
transformers 4.40.2's CLIPVisionModel and CLIPImageProcessor), for
tests/lua/test_safety_checker.lua:

  - tests/models/tiny-sd-sc: tiny-sd-b's components plus a random safety checker (a
    2-layer CLIP vision tower, 32x32 pictures in 4x4 patches, projection to 16) and a
    feature extractor, in the real layout: model_index.json names both, the checker's
    config.json has CompVis' "vision_config_dict" beside "vision_config" (transformers
    then takes the dict's values and CLIPVisionConfig's defaults for the rest: here
    hidden_act, which vision_config says is "gelu", becomes "quick_gelu"), and
    preprocessor_config.json is CompVis' old CLIPFeatureExtractor one (sizes as ints).
    The concept thresholds are set from the reference runs' own pictures so that some are
    flagged and some not, one only through the special-care adjustment of 0.01, and no
    score lies within 2e-4 of where its rounding to 3 places changes the verdict;
  - runs: txt2img (3 images of one prompt; 2 prompts at 96x80), img2img from the sketch
    (the seed notebook's strength 0.8, 3 images), with np output: flagged pictures are
    zeros; the flags;
  - one run's stages: its pictures before the checker, the feature extractor's pixel_values, the checker's image_embeds,
    its cosine distances to the special-care and concept embeddings;
  - the feature extractor at CompVis' real size (224, bicubic from 64x64, 96x80 and
    300x200 pictures): the resized and cropped pixels before rescaling (uint8), and
    pixel_values for the smallest.

    .venv-torch/bin/python scripts/reference/make_safety_checker_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from transformers import CLIPConfig, CLIPImageProcessor

from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BASE = os.path.join(ROOT, "tests", "models", "tiny-sd-b")
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-sc")
OUT = os.path.join(ROOT, "tests", "reference", "safety_checker")
PROMPTS = ["a red barn in a field", "an astronaut riding a horse"]
VISION = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
              image_size=32, patch_size=4)
MARGIN = 2e-4

# name, pipeline, call arguments (generator seeds added below)
CASES = [
    ("t2i_n3", "t2i", dict(prompt=PROMPTS[0], num_images_per_prompt=3, num_inference_steps=3,
                           height=64, width=64, seed=11)),
    ("t2i_2x_96x80", "t2i", dict(prompt=PROMPTS, num_inference_steps=3, height=96, width=80,
                                 seed=5)),
    ("i2i_n3", "i2i", dict(prompt=PROMPTS[1], strength=0.8, num_images_per_prompt=3,
                           num_inference_steps=5, seed=1024)),
]


def make_checker():
    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(hidden_size=16, intermediate_size=20, num_attention_heads=2,
                                         num_hidden_layers=1),
                        vision_config=VISION, projection_dim=16)
    sc = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        for p in sc.parameters():  # every weight random, layer norms' too
            p.add_(torch.randn_like(p) * 0.1)
        sc.concept_embeds.copy_(torch.randn_like(sc.concept_embeds))
        sc.special_care_embeds.copy_(torch.randn_like(sc.special_care_embeds))
        sc.concept_embeds_weights.fill_(2.0)  # nothing flagged until set_thresholds
        sc.special_care_embeds_weights.fill_(2.0)
    return sc


def write_model(sc):
    if os.path.exists(MODEL):
        shutil.rmtree(MODEL)
    shutil.copytree(BASE, MODEL)
    sc.save_pretrained(os.path.join(MODEL, "safety_checker"), safe_serialization=True)
    path = os.path.join(MODEL, "safety_checker", "config.json")
    with open(path) as fh:
        cfg = json.load(fh)
    cfg["vision_config"]["hidden_act"] = "gelu"  # overridden by vision_config_dict's default
    cfg["vision_config_dict"] = dict(VISION)
    with open(path, "w") as fh:
        json.dump(cfg, fh, indent=2, sort_keys=True)
    os.makedirs(os.path.join(MODEL, "feature_extractor"))
    fe = {"crop_size": 32, "do_center_crop": True, "do_normalize": True, "do_resize": True,
          "feature_extractor_type": "CLIPFeatureExtractor",
          "image_mean": [0.48145466, 0.4578275, 0.40821073],
          "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 32}
    with open(os.path.join(MODEL, "feature_extractor", "preprocessor_config.json"), "w") as fh:
        json.dump(fe, fh, indent=2)
    path = os.path.join(MODEL, "model_index.json")
    with open(path) as fh:
        index = json.load(fh)
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    index["requires_safety_checker"] = True
    with open(path, "w") as fh:
        json.dump(index, fh, indent=2, sort_keys=True)


def run(kind, args, **extra):
    cls = StableDiffusionPipeline if kind == "t2i" else StableDiffusionImg2ImgPipeline
    pipe = cls.from_pretrained(MODEL, torch_dtype=torch.float32, **extra)
    pipe.set_progress_bar_config(disable=True)
    args = dict(args)
    seed = args.pop("seed")
    if kind == "i2i":
        args["image"] = common.sketch(64, 64)
        args["image"].save(os.path.join(OUT, "i2i_init.png"))
    return pipe(**args, output_type="np", generator=torch.Generator().manual_seed(seed)), pipe


def stages(pipe, images):
    """The checker's steps for np pictures, as run_safety_checker makes its input."""
    pil = pipe.image_processor.numpy_to_pil(images)
    pixel_values = pipe.feature_extractor(pil, return_tensors="pt").pixel_values
    sc = pipe.safety_checker
    with torch.no_grad():
        embeds = sc.visual_projection(sc.vision_model(pixel_values)[1])
        special = torch.nn.functional.normalize(embeds) @ torch.nn.functional.normalize(
            sc.special_care_embeds).t()
        concept = torch.nn.functional.normalize(embeds) @ torch.nn.functional.normalize(
            sc.concept_embeds).t()
    return pixel_values.numpy(), embeds.numpy(), special.numpy(), concept.numpy()


def set_thresholds(sc, special, concept):
    """Concept 0 flags about half the pictures; special-care concept 0 fires for one that
    concept 0 leaves (and no other such one), whose concept k then passes only by the 0.01
    adjustment. Returns that picture's index."""
    n = concept.shape[0]
    w = concept.max(0) + 0.05
    ws = special.max(0) + 0.05
    order = np.argsort(concept[:, 0])
    w[0] = (concept[order[n // 2 - 1], 0] + concept[order[n // 2], 0]) / 2
    left = [int(i) for i in order[: n // 2]]
    by_special = sorted(left, key=lambda i: special[i, 0])
    j = by_special[-1]
    ws[0] = (special[j, 0] + special[by_special[-2], 0]) / 2
    others = [i for i in left if i != j]
    gaps = concept[j, 1:] - concept[others, 1:].max(0)
    k = 1 + int(np.argmax(gaps))
    assert gaps[k - 1] > 0.001, gaps
    w[k] = concept[j, k] + 0.005
    with torch.no_grad():
        sc.concept_embeds_weights.copy_(torch.from_numpy(w.astype(np.float32)))
        sc.special_care_embeds_weights.copy_(torch.from_numpy(ws.astype(np.float32)))
    return j


def check_margins(sc, special, concept):
    """No score within MARGIN of where it would round the other way (0.0005)."""
    w = sc.concept_embeds_weights.numpy().astype(np.float64)
    ws = sc.special_care_embeds_weights.numpy().astype(np.float64)
    for i in range(concept.shape[0]):
        adj = 0.0
        for k in range(special.shape[1]):
            s = float(special[i, k]) - ws[k] + adj
            assert abs(s - 0.0005) > MARGIN, ("special", i, k, s)
            if round(s, 3) > 0:
                adj = 0.01
        for k in range(concept.shape[1]):
            s = float(concept[i, k]) - w[k] + adj
            assert abs(s - 0.0005) > MARGIN, ("concept", i, k, s)


def feature_extractor_cases():
    """CompVis' preprocessor at 224 (as CLIPImageProcessor with dict sizes), from pictures
    smaller and larger than it."""
    fe = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    out = []
    for w, h in [(64, 64), (96, 80), (300, 200)]:
        img = common.sketch(w, h, 0.1)
        img.save(os.path.join(OUT, "fe_%dx%d.png" % (w, h)))
        arr = np.array(img)
        size = fe.resize(arr, size=fe.size, resample=fe.resample)
        crop = fe.center_crop(size, fe.crop_size)
        np.save(os.path.join(OUT, "fe_%dx%d_crop.npy" % (w, h)), crop.astype(np.uint8))
        if w == 64:
            np.save(os.path.join(OUT, "fe_%dx%d_pixel_values.npy" % (w, h)),
                    fe(img, return_tensors="np").pixel_values)
        out.append({"width": w, "height": h, "crop": list(crop.shape)})
    with open(os.path.join(OUT, "fe_config.json"), "w") as fh:
        json.dump(fe.to_dict(), fh, indent=2, sort_keys=True)
    return out


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    sc = make_checker()
    write_model(sc)
    # the pictures with nothing flagged, and the checker's distances for each
    specials, concepts = [], []
    for name, kind, args in CASES:
        out, pipe = run(kind, args)
        assert not any(out.nsfw_content_detected)
        _, _, s, c = stages(pipe, out.images)
        specials.append(s)
        concepts.append(c)
    special, concept = np.concatenate(specials), np.concatenate(concepts)
    j = set_thresholds(sc, special, concept)
    check_margins(sc, special, concept)
    write_model(sc)

    manifest = {"cases": [], "feature_extractor": feature_extractor_cases(), "adjusted": int(j)}
    flags_all = []
    for name, kind, args in CASES:
        out, pipe = run(kind, args)
        flags = [bool(f) for f in out.nsfw_content_detected]
        flags_all += flags
        np.save(os.path.join(OUT, name + ".npy"), out.images.astype(np.float32))
        entry = {"name": name, "pipeline": kind, "flags": flags}
        entry.update({k: v for k, v in args.items()})
        manifest["cases"].append(entry)
        if name == "t2i_n3":
            unchecked, _ = run(kind, args, safety_checker=None)
            np.save(os.path.join(OUT, name + "_unchecked.npy"), unchecked.images.astype(np.float32))
            pv, emb, s, c = stages(pipe, unchecked.images)
            for key, arr in [("pixel_values", pv), ("image_embeds", emb), ("special_cos", s),
                             ("concept_cos", c)]:
                np.save(os.path.join(OUT, name + "_" + key + ".npy"), arr.astype(np.float32))
    assert any(flags_all) and not all(flags_all), flags_all
    assert flags_all[j], "the adjusted picture is flagged"
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    print("flags", flags_all, "adjusted", j)


if __name__ == "__main__":
    main()
