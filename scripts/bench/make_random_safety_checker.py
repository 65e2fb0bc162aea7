"""Writes SD_DIR's pipeline again with a safety checker: a random StableDiffusionSafetyChecker
of CompVis' size (CLIP ViT-L/14 at 224x224, projection to 768) and CompVis' feature
extractor, the other components linked to SD_DIR's. For scripts/bench_cpu.sh's
safety_checker part: the timings do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_safety_checker.py SD_DIR OUT_DIR
"""
import json
import os
import shutil
import sys

import torch
from transformers import CLIPConfig

from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

VISION = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
              num_hidden_layers=24, patch_size=14)
FEATURES = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}


def main(sd, out):
    if os.path.exists(os.path.join(out, "model_index.json")):
        print(f"{out}: already there")
        return
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "feature_extractor"))
    for name in os.listdir(sd):
        if os.path.isdir(os.path.join(sd, name)):
            os.symlink(os.path.abspath(os.path.join(sd, name)), os.path.join(tmp, name))
    torch.manual_seed(0)
    sc = StableDiffusionSafetyChecker(CLIPConfig(vision_config=VISION, projection_dim=768))
    sc.save_pretrained(os.path.join(tmp, "safety_checker"), safe_serialization=True)
    with open(os.path.join(tmp, "feature_extractor", "preprocessor_config.json"), "w") as fh:
        json.dump(FEATURES, fh, indent=2)
    with open(os.path.join(sd, "model_index.json")) as fh:
        index = json.load(fh)
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    with open(os.path.join(tmp, "model_index.json"), "w") as fh:
        json.dump(index, fh, indent=2)
    os.rename(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
