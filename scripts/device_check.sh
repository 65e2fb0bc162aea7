#!/usr/bin/env bash
# scripts/device_check.sh — the CUDA backend's checks on a GPU machine, in one go:
# build with nvcc for sm_90a (+ compute_80 PTX), run tests/cuda, print a short table last.
#
#   bash scripts/device_check.sh        (from anywhere; runs in the repository)
#
# Build: the whole project configured with -DSDREPL_CUDA=ON when its libraries are
# there (Lua, SDL2, readline, curl, cJSON, stb, OpenBLAS); otherwise, as on the
# workplace's GPU image, tests/cuda alone (kernels, CPU backend with a plain sgemm,
# CUDA backend, random number generators), which needs only cmake, nvcc and gcc.
# Only the check programs are built either way; SDREPL_DEVICE_BUILD=alone forces the second.
#
# Runs, each under its own time limit:
#   check_philox      torch's curand kernel against engine/philox.h and the CPU emulation
#   test_cuda_random  sdr_cuda_random against curand (bit for bit) and the CPU emulation
#   test_cuda_ops     every op against the CPU backend, float32/float16/bfloat16; errors; graphs
# Expected on an H200 with 16 cores: build 1-2 min, checks under 1 min; the limits
# below stop it before 9 min whatever happens. Logs go to $OUT when set (the device
# tool brings that folder back), else build-device/out.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-$root/build-device/out}
mkdir -p "$out"
bdir=$root/build-device
start=$(date +%s)
jobs=$(nproc 2>/dev/null || echo 4)
command -v nvcc >/dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH
declare -a rows

now() { echo $(($(date +%s) - start)); }
row() { rows+=("$(printf '%-18s %-6s %5s s  %s' "$1" "$2" "$3" "$4")"); }

{
  echo "== machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
    --format=csv,noheader 2>&1
  nvcc --version 2>&1 | tail -n 2
  cmake --version 2>&1 | head -n 1
  ${CC:-cc} --version 2>&1 | head -n 1
  echo "cores: $jobs"
} >"$out/machine.txt" 2>&1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)

# ---- build ----
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
targets=(test_cuda_ops test_cuda_random check_philox)
if [ "${SDREPL_DEVICE_BUILD:-}" != alone ] &&
  pkg-config --exists lua5.4 sdl2 stb libcurl libcjson readline 2>/dev/null &&
  [ -e /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h ]; then
  mode="whole project"
  src=.
  bin=$bdir/tests/cuda
else
  mode="tests/cuda alone"
  src=tests/cuda
  bin=$bdir
fi
t=$(date +%s)
rm -rf "$bdir/CMakeCache.txt" "$bdir/CMakeFiles"
timeout 300 bash -c "cmake -S '$src' -B '$bdir' ${gen[*]} -DCMAKE_BUILD_TYPE=Release \
  -DSDREPL_CUDA=ON && cmake --build '$bdir' -j $jobs --target ${targets[*]}" \
  >"$out/build.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  row build ok $(($(date +%s) - t)) "$mode, $jobs jobs"
else
  row build FAIL $(($(date +%s) - t)) "$mode, exit $rc (build.log)"
  tail -n 40 "$out/build.log"
fi

# ---- checks ----
run() { # name limit
  local name=$1 limit=$2 t rc note
  if [ ! -x "$bin/$name" ]; then
    row "$name" "-" 0 "not built"
    return
  fi
  t=$(date +%s)
  (cd "$root" && timeout "$limit" "$bin/$name") >"$out/$name.log" 2>&1
  rc=$?
  case $rc in
  0) note=$(grep -E "failed|largest|agree" "$out/$name.log" | tail -n 1) ;;
  77) note="skipped: $(head -n 1 "$out/$name.log")" ;;
  124) note="stopped after $limit s" ;;
  *) note="exit $rc: $(grep -m 1 FAIL "$out/$name.log")" ;;
  esac
  local st=ok
  [ $rc -eq 0 ] || st=FAIL
  [ $rc -eq 77 ] && st=SKIP
  row "$name" "$st" $(($(date +%s) - t)) "${note:0:90}"
}
run check_philox 45
run test_cuda_random 60
run test_cuda_ops 150

# ---- report: failures, the ops table, then the summary ----
for f in check_philox test_cuda_random test_cuda_ops; do
  [ -f "$out/$f.log" ] || continue
  if grep -q FAIL "$out/$f.log"; then
    echo "== $f: first failures"
    grep -A 5 -m 8 FAIL "$out/$f.log" | cut -c1-200
  fi
done
if [ -f "$out/test_cuda_ops.log" ]; then
  sed -n '/^CUDA backend against the CPU backend/,$p' "$out/test_cuda_ops.log"
fi
{
  echo
  echo "== device check: ${gpu:-no GPU found}; $(now) s in all"
  printf '%-18s %-6s %7s  %s\n' step status time note
  printf '%s\n' "${rows[@]}"
} | tee "$out/summary.txt"
grep -q -E "^[a-z_]+ +(FAIL|SKIP|-) " "$out/summary.txt" && exit 1
exit 0
