"""Writes a ControlNetModel of SD 1.5's size beside SD_DIR: ControlNetModel.from_unet of
SD_DIR's UNet (the conditioning embedding of lllyasviel's nets, 16-32-96-256), for
scripts/bench_cpu.sh's controlnet part: the timings do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_controlnet.py SD_DIR OUT_DIR
"""
import os
import shutil
import sys

import torch
from diffusers import ControlNetModel, UNet2DConditionModel


def main(sd, out):
    if os.path.exists(os.path.join(out, "config.json")):
        print(f"{out}: already there")
        return
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    unet = UNet2DConditionModel.from_pretrained(sd, subfolder="unet")
    torch.manual_seed(0)
    net = ControlNetModel.from_unet(unet)
    net.save_pretrained(tmp, safe_serialization=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
