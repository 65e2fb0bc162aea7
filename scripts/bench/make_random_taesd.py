"""Writes an AutoencoderTiny of madebyollin/taesd's size (diffusers' defaults: four stages of
64 channels) to OUT_DIR with random weights, for scripts/bench_cpu.sh's taesd_decode part:
the timings do not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_taesd.py OUT_DIR
"""
import os
import shutil
import sys

import torch
from diffusers import AutoencoderTiny


def main(out):
    if os.path.exists(os.path.join(out, "config.json")):
        print(f"{out}: already there")
        return
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(tmp, safe_serialization=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1])
