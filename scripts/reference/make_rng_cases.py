#!/usr/bin/env python3
"""Reference draws from torch's CPU generator, for tests/unit/test_generator.c.

Writes tests/fixtures/rng/*.npy and tests/fixtures/rng/manifest.json. Each case
seeds a generator (the global one through torch.manual_seed, a torch.Generator
object, or a fresh torch.Generator left at torch's default seed) and then runs
its steps in order on that one generator, so state carried between calls (the
mt19937 position, the cached second normal of the scalar path) is checked too.

Each draw is stored whole when it has at most 1024 values; larger ones keep
the first 64, the last 64 and every 61st value, plus the CRC-32 of all the
bytes, so every value is still compared bit for bit. bfloat16 draws are stored
as their int16 bit patterns (numpy has no bfloat16).

torch's CPU kernels come in a plain build and an AVX2 build (ATen picks one at
run time; ATEN_CPU_CAPABILITY=default forces the plain one). Cases marked
"default" are drawn in a child process started with that setting.

It also writes a few small arrays with numpy itself into tests/fixtures/npy/
for tests/unit/test_npy.c: every element type engine/npy.c reads, format 2.0,
and files it must refuse (Fortran order, big-endian, a structured type).

Run with the reference environment (scripts/reference/setup_torch_env.sh):
    .venv-torch/bin/python scripts/reference/make_rng_cases.py
"""
import json
import os
import platform
import subprocess
import sys
import zlib

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "rng")
NPY_OUT = os.path.join(ROOT, "tests", "fixtures", "npy")
FULL_LIMIT = 1024
HEAD = TAIL = 64
STRIDE = 61
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def randn(n, dtype):
    return ("randn", dtype, n)


def rand(n):
    return ("rand", "float32", n)


def cases():
    """(name, capability, generator kind, seed, steps) for every case."""
    out = []
    seeds = [0, 1, 42, 100, 1000, 2**32 + 5]
    for s in seeds:
        for n in [1, 2, 3, 15, 16, 17, 31, 32, 1000]:
            out.append((f"seed{s}_randn_f32_{n}", "avx2", "global", s, [randn(n, "float32")]))
    for s in [0, 42, 100]:
        # torch.randn((1, 4, 64, 64)) and the img2img noise (3, 4, 64, 64)
        for shape in [(1, 4, 64, 64), (3, 4, 64, 64)]:
            n = int(np.prod(shape))
            out.append((f"seed{s}_randn_f32_{n}", "avx2", "global", s, [randn(shape, "float32")]))
    for dt, short in [("float16", "f16"), ("bfloat16", "bf16")]:
        for s in [0, 42, 100]:
            for n in [1, 3, 15, 16, 17, 31, 1000, 16384]:
                out.append((f"seed{s}_randn_{short}_{n}", "avx2", "global", s, [randn(n, dt)]))
    for s in [0, 42]:
        for n in [1, 16, 17, 1000]:
            out.append((f"seed{s}_rand_f32_{n}", "avx2", "global", s, [rand(n)]))
    # One generator, many calls: the cached normal survives block draws and
    # other dtypes, and a re-seed drops it.
    out.append(("sequence_global_42", "avx2", "global", 42, [
        randn(3, "float32"), randn(16, "float32"), randn(1, "float32"), randn(5, "float32"),
        randn(17, "float32"), randn(3, "float16"), randn(2, "float32"), rand(5),
        randn(1000, "float32"), randn(1, "float32"), ("seed", 42, 0), randn(1, "float32"),
        randn(1, "float16"), randn(20, "bfloat16"), randn(1, "bfloat16")]))
    out.append(("sequence_object_7", "avx2", "object", 7, [
        randn(1, "float32"), randn(31, "float32"), randn(2, "float32"), rand(3),
        randn(16, "bfloat16"), randn(1, "float32"), randn(700, "float16"), randn(3, "float32")]))
    out.append(("default_seed_generator", "avx2", "fresh", None, [
        randn(5, "float32"), randn(100, "float32"), rand(3), randn(2, "float16")]))
    # The plain build's float32 path (normal_fill with libm's logf, sinf, cosf).
    for s in [0, 42]:
        for n in [16, 17, 31, 32, 1000]:
            out.append((f"default_seed{s}_randn_f32_{n}", "default", "global", s,
                        [randn(n, "float32")]))
        for shape in [(1, 4, 64, 64), (3, 4, 64, 64)]:
            n = int(np.prod(shape))
            out.append((f"default_seed{s}_randn_f32_{n}", "default", "global", s,
                        [randn(shape, "float32")]))
    out.append(("default_seed0_randn_f16_1000", "default", "global", 0, [randn(1000, "float16")]))
    out.append(("default_sequence_global_42", "default", "global", 42, [
        randn(3, "float32"), randn(33, "float32"), randn(1, "float32"), rand(2),
        randn(100, "float32")]))
    return out


def stored(x):
    """The values kept in the fixture, and how they were picked."""
    flat = x.reshape(-1)
    if flat.size <= FULL_LIMIT:
        return flat, "full"
    picked = np.concatenate([flat[:HEAD], flat[-TAIL:], flat[::STRIDE]])
    return picked, {"head": HEAD, "tail": TAIL, "stride": STRIDE}


def as_numpy(t, dtype):
    if dtype == "bfloat16":
        return t.view(torch.int16).numpy().copy()
    return t.numpy().copy()


def run(case):
    name, capability, kind, seed, steps = case
    if kind == "global":
        torch.manual_seed(seed)
        gen = None
    elif kind == "object":
        gen = torch.Generator()
        gen.manual_seed(seed)
    else:
        gen = torch.Generator()  # torch's default seed, 67280421310721
    entries = []
    for i, step in enumerate(steps):
        if step[0] == "seed":
            if gen is None:
                torch.manual_seed(step[1])
            else:
                gen.manual_seed(step[1])
            entries.append({"op": "seed", "seed": step[1]})
            continue
        op, dtype, size = step
        shape = size if isinstance(size, tuple) else (size,)
        if op == "randn":
            t = torch.randn(shape, dtype=DTYPES[dtype], generator=gen)
        else:
            t = torch.rand(shape, dtype=DTYPES[dtype], generator=gen)
        x = as_numpy(t, dtype)
        values, sample = stored(x)
        fname = f"{name}_{i}.npy"
        np.save(os.path.join(OUT, fname), values)
        entries.append({
            "op": op, "dtype": dtype, "shape": list(shape), "n": int(x.size),
            "file": fname, "sample": sample,
            "crc32": zlib.crc32(np.ascontiguousarray(x).tobytes()),
            "sum": float(t.double().sum()),
        })
    return {"name": name, "capability": capability, "generator": kind,
            "seed": seed, "steps": entries}


def capability_line():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def child(capability):
    todo = [c for c in cases() if c[1] == capability]
    result = {"capability_used": capability_line(), "cases": [run(c) for c in todo]}
    json.dump(result, sys.stdout)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor(), []
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines()
                  if l.startswith("model name")), "unknown")
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines()
                  if l.startswith("flags")), [])
    return model, [f for f in ["avx2", "fma", "avx512f", "f16c"] if f in flags]


def debian_torch():
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def npy_fixtures():
    """numpy-written files; test_npy.c rebuilds the same values from the names."""
    os.makedirs(NPY_OUT, exist_ok=True)
    for f in os.listdir(NPY_OUT):
        if f.endswith(".npy"):
            os.remove(os.path.join(NPY_OUT, f))

    def save(name, a, **kw):
        path = os.path.join(NPY_OUT, name)
        if kw:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, a, **kw)
        else:
            np.save(path, a)

    # value i of each array is a simple function of i, see test_npy.c
    save("f32_2x3.npy", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
    save("f16_4.npy", np.arange(4, dtype=np.float16) / 3)
    save("f64_scalar.npy", np.array(np.pi))
    save("i64_3x1.npy", (np.arange(3, dtype=np.int64) * -(10**12)).reshape(3, 1))
    save("i32_empty.npy", np.zeros((0,), dtype=np.int32))
    save("i16_2x2.npy", (np.arange(4, dtype=np.int16) - 2).reshape(2, 2))
    save("i8_5.npy", np.arange(5, dtype=np.int8) - 3)
    save("u8_2x2x2.npy", (np.arange(8, dtype=np.uint8) * 30).reshape(2, 2, 2))
    save("bool_5.npy", np.array([True, False, True, True, False]))
    save("f32_v2_3.npy", np.arange(3, dtype=np.float32), version=(2, 0))
    save("f32_2x5x1x1x1x1x1x1.npy", np.arange(10, dtype=np.float32).reshape(2, 5, 1, 1, 1, 1, 1, 1))
    # refused
    save("bad_fortran_2x3.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    save("bad_bigendian_3.npy", np.arange(3, dtype=">f4"))
    save("bad_structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    save("bad_9dims.npy", np.zeros((1,) * 9, dtype=np.float32))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy"):
            os.remove(os.path.join(OUT, f))
    runs = {}
    for capability in ["avx2", "default"]:
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
        text = subprocess.run([sys.executable, __file__, "--child", capability], env=env,
                              capture_output=True, text=True, check=True).stdout
        runs[capability] = json.loads(text)
    npy_fixtures()
    model, flags = cpu_model()
    manifest = {
        "generator": "scripts/reference/make_rng_cases.py",
        "torch": torch.__version__,
        "debian_python3_torch": debian_torch(),
        "numpy": np.__version__,
        "cpu": model,
        "cpu_flags": flags,
        "paths": {c: runs[c]["capability_used"] for c in runs},
        "sample": f"n <= {FULL_LIMIT}: all values; larger: first {HEAD}, last {TAIL}, "
                  f"every value at a multiple of {STRIDE}; crc32 covers all bytes; bfloat16 as int16 bits",
        "cases": runs["avx2"]["cases"] + runs["default"]["cases"],
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(manifest['cases'])} cases, {len(os.listdir(OUT))} files, {size} bytes in {OUT}")


if __name__ == "__main__":
    main()
