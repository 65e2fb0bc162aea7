#!/bin/sh
# scripts/bench_kernels.sh — time the CPU backend's heavy ops (kernels/dev/bench_kernels.c)
# at SD 1.x shapes, and the same ops in PyTorch when Debian's torch is installed.
#
#   scripts/bench_kernels.sh [BUILD_DIR] [FILTER]    (BUILD_DIR defaults to build-cpu)
#
# Builds the library target in BUILD_DIR, links the benchmark against it, runs it.
# SDREPL_BENCH_TORCH=0 skips the PyTorch side.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-cpu}
filter=${2:-}
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DSDREPL_CUDA=OFF >/dev/null
cmake --build "$build" --target sdrepl_kernels -j2 >/dev/null
blas=/usr/lib/$(gcc -print-multiarch)/openblas-openmp
gcc -O2 -fopenmp -I. kernels/dev/bench_kernels.c "$build/libsdrepl_kernels.a" \
  -L"$blas" -Wl,-rpath,"$blas" -lopenblas -lm -o "$build/bench_kernels"
echo "== sdrepl CPU backend"
"$build/bench_kernels" ${filter:+"$filter"}

[ "${SDREPL_BENCH_TORCH:-1}" = 1 ] || exit 0
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "(no torch: skipping PyTorch)"; exit 0; }
echo "== PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), 2 threads"
/usr/bin/python3 - "$filter" <<'PY'
import sys, time, torch
import torch.nn.functional as F
torch.set_num_threads(2)
filt = sys.argv[1] if len(sys.argv) > 1 else ""
def best(f, reps):
    f()
    t = 1e30
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t
def report(name, t, flops=0, nbytes=0):
    s = "%-44s %9.2f ms" % (name, t * 1e3)
    if flops: s += "  %7.1f GFLOP/s" % (flops / t * 1e-9)
    if nbytes: s += "  %7.1f GB/s" % (nbytes / t * 1e-9)
    print(s, flush=True)
with torch.no_grad():
    if "linear" in "linear" + filt and (not filt or filt in "linear"):
        for M, K, N in ((4096, 320, 320), (154, 768, 3072), (4096, 320, 2560)):
            x, w, b = torch.rand(M, K), torch.rand(N, K), torch.rand(N)
            report("linear M%d K%d N%d" % (M, K, N), best(lambda: F.linear(x, w, b), 10), 2 * M * N * K)
    if not filt or filt in "conv":
        # kernels/dev/bench_kernels.c's conv_shapes, float32 weights only
        for B, C, H, Co, k, s, p, reps in ((2, 4, 64, 320, 3, 1, 1, 5), (2, 320, 64, 320, 3, 1, 1, 5),
                                          (2, 640, 32, 640, 3, 1, 1, 5), (2, 1280, 16, 1280, 3, 1, 1, 5),
                                          (2, 1280, 8, 1280, 3, 1, 1, 5), (2, 2560, 8, 1280, 3, 1, 1, 5),
                                          (2, 320, 64, 320, 1, 1, 0, 5), (1, 512, 64, 512, 3, 1, 1, 3),
                                          (1, 512, 128, 512, 3, 1, 1, 2), (1, 512, 256, 512, 3, 1, 1, 1),
                                          (1, 256, 256, 256, 3, 1, 1, 2), (1, 256, 512, 128, 3, 1, 1, 1),
                                          (1, 128, 512, 128, 3, 1, 1, 2), (1, 128, 512, 3, 3, 1, 1, 3),
                                          (1, 128, 513, 128, 3, 2, 0, 3)):
            x, w, b = torch.rand(B, C, H, H), torch.rand(Co, C, k, k), torch.rand(Co)
            Ho = (H + 2 * p - k) // s + 1
            report("conv2d (%d,%d,%d,%d) %dx%d s%d ->%d" % (B, C, H, H, k, k, s, Co),
                   best(lambda: F.conv2d(x, w, b, s, p), reps), 2 * B * Co * C * k * k * Ho * Ho)
    if not filt or filt in "attention":
        for B, h, Tq, Tk, Dh, reps in ((2, 8, 4096, 4096, 40, 3), (2, 8, 4096, 77, 40, 5), (2, 12, 77, 77, 64, 10)):
            q, k, v = torch.rand(B * h, Tq, Dh), torch.rand(B * h, Tk, Dh), torch.rand(B * h, Tk, Dh)
            def attn():  # diffusers' AttnProcessor: scores with bmm, softmax, bmm
                s = torch.bmm(q, k.transpose(1, 2)) * (Dh ** -0.5)
                return torch.bmm(s.softmax(dim=-1), v)
            report("attention B%d heads%d Tq%d Tk%d Dh%d" % (B, h, Tq, Tk, Dh), best(attn, reps), 4 * B * h * Tq * Tk * Dh)
    if not filt or filt in "norm":
        x, g, b = torch.rand(2, 320, 64, 64), torch.rand(320), torch.rand(320)
        report("group_norm+silu (2,320,64,64) /32", best(lambda: F.silu(F.group_norm(x, 32, g, b, 1e-5)), 10), 0, 8 * x.numel())
    if not filt or filt in "geglu":
        x = torch.rand(8192, 2560)
        def geglu():
            h, gate = x.chunk(2, dim=-1)
            return h * F.gelu(gate)
        report("geglu (8192,2560)", best(geglu, 10), 0, 12 * 8192 * 1280)
PY
