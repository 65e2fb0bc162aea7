"""Writes a T2IAdapter of TencentARC's SD 1.5 size (t2iadapter_*_sd15v2: a full adapter,
channels 320/640/1280/1280, two resnets a block, downscale_factor 8, three input channels) to
OUT_DIR with random weights, for scripts/bench_cpu.sh's adapter_features part: the timings do
not depend on the values.

    .venv-torch/bin/python scripts/bench/make_random_t2i_adapter.py OUT_DIR
"""
import os
import shutil
import sys

import torch
from diffusers import T2IAdapter


def main(out):
    if os.path.exists(os.path.join(out, "config.json")):
        print(f"{out}: already there")
        return
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2,
               downscale_factor=8, adapter_type="full_adapter").save_pretrained(
                   tmp, safe_serialization=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1])
