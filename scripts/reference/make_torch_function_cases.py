"""Reference values for the torch functions and Tensor methods of bindings/tensor_shape.c,
bindings/tensor_math.c and bindings/torch.c (stack, lerp, linspace, arange, randn_like,
transpose, flatten, expand, repeat, pow, cos, sin, norm, argmax, where), as torch 1.13
computes them on the CPU.

    .venv-torch/bin/python scripts/reference/make_torch_function_cases.py

Writes tests/reference/torch_functions/<case>.npy: the inputs (in_*.npy) and each
case's expected result; tests/lua/test_torch_functions.lua loads both with
torch.load_npy. Dimensions and indices are 0-based here and 1-based in the Lua test
(stack(dim=0) is torch.stack(t, 1) there; argmax results are stored + 1). Everything
is seeded, so a rerun writes the same files.
"""
import os

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "torch_functions")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = {}
    a = torch.randn(2, 3, 4, generator=gen(0))
    b = torch.randn(3, 4, generator=gen(1))
    w = torch.rand(2, 3, 4, generator=gen(2))
    c = torch.randn(3, 1, generator=gen(3))
    cases.update(in_a=a, in_b=b, in_w=w, in_c=c)

    cases["stack_0"] = torch.stack([a, a * 2], 0)
    cases["stack_2"] = torch.stack([a, a * 2, a * 3], 2)
    cases["stack_m1"] = torch.stack([a, a * 2], -1)
    cases["lerp_03"] = torch.lerp(a, b.expand(2, 3, 4), 0.3)
    cases["lerp_07"] = torch.lerp(a, b.expand(2, 3, 4), 0.7)
    cases["lerp_w"] = torch.lerp(a, b.expand(2, 3, 4), w)
    cases["linspace_0_1_7"] = torch.linspace(0, 1, 7)
    cases["linspace_m3_5_10"] = torch.linspace(-3, 5, 10)
    cases["linspace_1000_0001_50"] = torch.linspace(1000, 0.001, 50)
    cases["linspace_f64"] = torch.linspace(0, 1, 11, dtype=torch.float64)
    cases["arange_10"] = torch.arange(10)
    cases["arange_05_3_03"] = torch.arange(0.5, 3, 0.3)
    cases["arange_10_0_m3"] = torch.arange(10, 0, -3)
    cases["randn_like_42"] = torch.randn(a.shape, generator=gen(42))
    cases["randn_like_f16_7"] = torch.randn((3, 4), generator=gen(7), dtype=torch.float16)
    cases["rand_like_5"] = torch.rand(a.shape, generator=gen(5))
    cases["transpose_0_2"] = a.transpose(0, 2).contiguous()
    cases["flatten_1"] = a.flatten(1)
    cases["expand_c"] = c.expand(2, 3, 5).contiguous()
    cases["repeat_b"] = b.repeat(2, 1, 2)
    cases["pow_2"] = a ** 2
    cases["pow_abs_b"] = a.abs() ** b.abs()
    cases["pow_2_a"] = torch.pow(2, a)
    cases["cos_a"] = torch.cos(a)
    cases["sin_a"] = torch.sin(a)
    cases["norm_a"] = a.norm()
    cases["norm_1"] = a.norm(1)
    cases["norm_inf"] = a.norm(float("inf"))
    cases["argmax_a"] = a.argmax() + 1
    cases["argmax_a_1"] = a.argmax(1) + 1
    cases["argmax_a_m1_keep"] = a.argmax(-1, keepdim=True) + 1
    cases["where_a_b"] = torch.where(a > 0, a, b)
    cases["where_a_0"] = torch.where(a > 0, a, 0.0)
    cases["cond_a"] = a > 0
    for name, t in cases.items():
        np.save(os.path.join(OUT, name + ".npy"), t.numpy())
    print(f"wrote {len(cases)} files to {OUT}")


if __name__ == "__main__":
    main()
