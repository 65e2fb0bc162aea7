#!/usr/bin/env bash
# scripts/device_check.sh — the CUDA backend's checks on a GPU machine, in one go:
# build with nvcc for sm_90a (+ compute_80 PTX), run tests/cuda, then the GPU benchmark
# with the time left, and print a short table last.
#
#   bash scripts/device_check.sh        (from anywhere; runs in the repository)
#
# With the device tool: run the command `bash scripts/device_check.sh` with carry
# [".deps-gpu", ".whl", ".device-bundle.tar.xz"] (scripts/device_deps.sh,
# scripts/bench/gpu_wheels.sh and scripts/device_bundle.sh make them where apt and pip
# work and sdrepl is built) and a timeout of 600 s.
#
# Build: the whole project configured with -DSDREPL_CUDA=ON when its libraries are
# there (Lua, SDL2, readline, curl, cJSON, stb, OpenBLAS); otherwise, as on the
# workplace's GPU image, tests/cuda alone: kernels, CPU backend (plain sgemm), CUDA
# backend, and the engine without the hub when cJSON, stb and zlib are found. Where
# their headers are missing, the Debian packages in .deps-gpu/ are unpacked with
# `dpkg -x` into /tmp/sdrepl-deps (never into /) and passed as -DSDREPL_DEPS_PREFIX.
# SDREPL_DEVICE_BUILD=alone forces the second way, SDREPL_DEVICE_DEPS=force the use of
# .deps-gpu/ (to try that path elsewhere); SDREPL_DEVICE_BUILD_DIR moves the build folder
# (default build-device; kept between runs on a warm machine).
#
# Runs, each under its own time limit, all within SDREPL_DEVICE_BUDGET seconds
# (default 530: the script ends before 9 minutes whatever happens):
#   check_philox      torch's curand kernel against kernels/philox.h and the CPU emulation
#   test_cuda_random  sdr_cuda_random against curand (bit for bit) and the CPU emulation
#   test_cuda_ops     every op against the CPU backend, float32/float16/bfloat16; errors; graphs
#   test_cuda_models  the tiny models and whole pipelines against the CPU, each dtype
#   *_sync, *_memcheck  only after a kernel fault: the failing test again with
#                     SDREPL_CUDA_SYNC=1 (the faulting op names itself), and under
#                     compute-sanitizer where it works
#   bench_gpu         scripts/bench_gpu.sh with the time left (if that script exists;
#                     without a GPU only with SDREPL_BENCH_CPU=1, its check of itself)
#   lua_notebook      sdrepl itself (.device-bundle.tar.xz, scripts/device_bundle.sh:
#                     built on the development machine, carried) running
#                     tests/cuda/lua/test_notebook_device.lua: the notebook's img2img
#                     through the Lua API, pipe:to("cuda") against the CPU
#   lua_textual_inv   the same sdrepl: a textual inversion loaded on "cuda" against the
#                     CPU (tests/cuda/lua/test_textual_inversion_device.lua)
#   lua_lora          the same sdrepl: LoRA adapters loaded, scaled, set and fused on "cuda"
#                     against the CPU (tests/cuda/lua/test_lora_device.lua)
#   lua_freeu         the same sdrepl: FreeU on "cuda" against the CPU
#                     (tests/cuda/lua/test_freeu_device.lua)
#   lua_safety        the same sdrepl: the safety checker on "cuda" against the CPU, and in
#                     float16 (tests/cuda/lua/test_safety_checker_device.lua)
#   lua_inpaint       the same sdrepl: inpainting (9- and 4-channel UNets) on "cuda" against
#                     the CPU (tests/cuda/lua/test_inpaint_device.lua)
#   lua_controlnet    the same sdrepl: ControlNet (guess mode, two nets with their own step
#                     ranges, float16) on "cuda" against the CPU
#                     (tests/cuda/lua/test_controlnet_device.lua)
#   lua_ip_adapter    the same sdrepl: IP-Adapters (each projection, two adapters, float16, a
#                     move after loading) on "cuda" against the CPU
#                     (tests/cuda/lua/test_ip_adapter_device.lua)
#   lua_lcm           the same sdrepl: LatentConsistencyModelPipeline (float16 too) and
#                     LCMScheduler on "cuda" against the CPU (tests/cuda/lua/test_lcm_device.lua)
#   lua_pix2pix       the same sdrepl: InstructPix2Pix on "cuda" against the CPU
#                     (tests/cuda/lua/test_pix2pix_device.lua)
#   lua_xl            the same sdrepl: StableDiffusionXLPipeline (micro-conditioning,
#                     denoising_end, float16 with the VAE in float32) on "cuda" against the CPU
#                     (tests/cuda/lua/test_xl_device.lua)
#   lua_upscale       the same sdrepl: StableDiffusionUpscalePipeline (float16 too) on "cuda"
#                     against the CPU (tests/cuda/lua/test_upscale_device.lua)
#   lua_tiny_vae      the same sdrepl: AutoencoderTiny (TAESD: ReLU and tanh kernels) alone and
#                     as a pipeline's VAE, float16 and its tiling, on "cuda" against the CPU
#                     (tests/cuda/lua/test_tiny_vae_device.lua)
#   lua_adapter       the same sdrepl: T2I-Adapter pipelines (a MultiAdapter, float16 too, and
#                     SDXL's) on "cuda" against the CPU (tests/cuda/lua/test_adapter_device.lua)
#   full_models       test_cuda_models --full-only on the benchmark's SD 1.5 (random
#                     weights): a UNet call and a VAE decode at 512x512, float16 vs float32
#   seed_notebook     examples/seed_notebook.lua by the carried sdrepl at SD 1.5's size
# Expected on an H200 with 16 cores: build 1-2 min, checks about 1 min, the rest for the
# benchmark. Logs go to $OUT when set (the device tool brings that folder back), else
# build-device/out.
# Exit status: 0 all ran and passed; 1 a build or check failed; 77 nothing failed but
# the GPU checks were skipped (no GPU).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
bdir=${SDREPL_DEVICE_BUILD_DIR:-$root/build-device}
out=${OUT:-$bdir/out}
[ -n "${OUT:-}" ] || rm -rf "$out" # a run's logs only: no table left from an earlier one
mkdir -p "$out"
start=$(date +%s)
budget=${SDREPL_DEVICE_BUDGET:-530}
jobs=$(nproc 2>/dev/null || echo 4)
command -v nvcc >/dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH
declare -a rows

now() { echo $(($(date +%s) - start)); }
left() { echo $((budget - $(now))); }
# limit NOMINAL RESERVE: NOMINAL seconds, or less to keep RESERVE of the budget
limit() {
  local l=$(($(left) - $2))
  [ "$l" -lt "$1" ] && echo "$l" || echo "$1"
}
row() { rows+=("$(printf '%-17s %-5s %4s s  %s' "$1" "$2" "$3" "$4")"); }

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
if [ "${SDREPL_DEVICE_BUILD:-}" != alone ] &&
  pkg-config --exists lua5.4 sdl2 stb libcurl libcjson readline 2>/dev/null &&
  [ -e /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h ]; then
  mode="whole project"
  src=$root
  bin=$bdir/tests/cuda
else
  mode="tests/cuda alone"
  src=$root/tests/cuda
  bin=$bdir
fi
deps=()
if [ "$mode" = "tests/cuda alone" ]; then
  if [ ! -e /usr/include/cjson/cJSON.h ] || [ ! -e /usr/include/stb/stb_image.h ] ||
    [ ! -e /usr/include/zlib.h ] || [ "${SDREPL_DEVICE_DEPS:-}" = force ]; then
    if ls .deps-gpu/*.deb >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
      rm -rf /tmp/sdrepl-deps && mkdir -p /tmp/sdrepl-deps
      for d in .deps-gpu/*.deb; do dpkg -x "$d" /tmp/sdrepl-deps; done
      deps=(-DSDREPL_DEPS_PREFIX=/tmp/sdrepl-deps)
      mode="$mode, deps from .deps-gpu"
    else
      mode="$mode, no .deps-gpu"
    fi
  fi
fi
# A build folder configured from another source folder is started afresh; one from
# this folder is kept (a second run on a warm machine recompiles nothing).
if [ -f "$bdir/CMakeCache.txt" ] &&
  ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$bdir/CMakeCache.txt"; then
  rm -rf "$bdir/CMakeCache.txt" "$bdir/CMakeFiles"
fi
t=$(date +%s)
lim=$(limit 300 120)
timeout -k 5 "$lim" cmake -S "$src" -B "$bdir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DSDREPL_CUDA=ON -U 'SDREPL_CJSON_*' -U 'SDREPL_STB_*' -U 'SDREPL_ZLIB_*' \
  -DSDREPL_DEPS_PREFIX= "${deps[@]}" >"$out/build.log" 2>&1 &&
  timeout -k 5 "$(limit 300 120)" cmake --build "$bdir" -j "$jobs" \
    --target test_cuda_ops test_cuda_random check_philox >>"$out/build.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  row build ok $(($(date +%s) - t)) "$mode, $jobs jobs"
else
  row build FAIL $(($(date +%s) - t)) "$mode, exit $rc (build.log)"
  tail -n 40 "$out/build.log"
fi
# The engine's programs: only where the engine could be built (cJSON, stb, zlib).
extra=()
if [ -f "$bdir/build.ninja" ]; then
  targets=$(ninja -C "$bdir" -t targets all 2>/dev/null | cut -d: -f1)
else
  targets=$(cmake --build "$bdir" --target help 2>/dev/null | sed 's/^\.\.\. //')
fi
for t in test_cuda_models bench_gpu; do
  grep -qxF "$t" <<<"$targets" && extra+=("$t")
done
if [ ${#extra[@]} -eq 0 ]; then
  row build_models "-" 0 "no engine: cJSON/stb/zlib missing (scripts/device_deps.sh, carry .deps-gpu)"
else
  t=$(date +%s)
  timeout -k 5 "$(limit 240 120)" cmake --build "$bdir" -j "$jobs" --target "${extra[@]}" \
    >"$out/build_models.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    row build_models ok $(($(date +%s) - t)) "${extra[*]}"
  else
    row build_models FAIL $(($(date +%s) - t)) "exit $rc (build_models.log)"
    tail -n 30 "$out/build_models.log"
  fi
fi

# ---- checks ----
# check NAME PROGRAM NOMINAL_LIMIT [ARGS...]: runs from the repository, log in $out/NAME.log
check() {
  local name=$1 prog=$2 lim rc note st t
  lim=$(limit "$3" 15)
  shift 3
  if [ ! -x "$prog" ]; then
    row "$name" "-" 0 "not built"
    return
  fi
  if [ "$lim" -lt 10 ]; then
    row "$name" "-" 0 "no time left"
    return
  fi
  t=$(date +%s)
  (cd "$root" && timeout -k 5 "$lim" "$prog" "$@") >"$out/$name.log" 2>&1
  rc=$?
  case $rc in
  0) note=$(grep -E "failed|largest|agree|passed" "$out/$name.log" | tail -n 1) ;;
  77) note="skipped: $(head -n 1 "$out/$name.log" | sed 's/^SKIPPED: //')" ;;
  124 | 137) note="stopped after $lim s" ;;
  *) note="exit $rc: $(grep -m 1 -E "FAIL|^sdrepl: " "$out/$name.log" || grep -v '^$' "$out/$name.log" | tail -n 1)" ;;
  esac
  st=ok
  [ $rc -eq 0 ] || st=FAIL
  [ $rc -eq 77 ] && st=SKIP
  row "$name" "$st" $(($(date +%s) - t)) "${note:0:90}"
}
check check_philox "$bin/check_philox" 45
check test_cuda_random "$bin/test_cuda_random" 60
check test_cuda_ops "$bin/test_cuda_ops" 150
check test_cuda_models "$bin/test_cuda_models" 150 --backend cuda

# A kernel that faulted poisons the CUDA context, and every later op reports the
# fault under its own name: such a failure is run again with each launch waited for
# (the faulting op names itself), new memory filled with NaN and no graphs, and,
# where compute-sanitizer can (not on gVisor), under its memory checker.
fault='illegal memory access|misaligned address|unspecified launch failure|illegal instruction|too many resources|invalid argument|launch failed'
for t in test_cuda_ops test_cuda_models; do
  [ -f "$out/$t.log" ] && grep -q FAIL "$out/$t.log" && grep -qE "$fault" "$out/$t.log" || continue
  targs=()
  [ $t = test_cuda_models ] && targs=(--backend cuda --quick)
  check "${t}_sync" /usr/bin/env 60 SDREPL_CUDA_SYNC=1 SDREPL_CUDA_POISON=1 SDREPL_GRAPHS=0 \
    "$bin/$t" "${targs[@]}"
  if [ $t = test_cuda_ops ] && command -v compute-sanitizer >/dev/null 2>&1; then
    check "${t}_memcheck" "$(command -v compute-sanitizer)" 90 --tool memcheck --print-limit 10 \
      "$bin/$t"
  fi
done

# ---- the REPL on the GPU: sdrepl as built on the development machine (device_bundle.sh) ----
sdrepl=()
if [ ! -f .device-bundle.tar.xz ]; then
  row lua_notebook "-" 0 "no .device-bundle.tar.xz (scripts/device_bundle.sh, carry it)"
elif [ -z "$gpu" ]; then
  row lua_notebook SKIP 0 "no GPU"
elif rm -rf /tmp/sdrepl-bundle && tar -C /tmp -xJf .device-bundle.tar.xz; then
  # CUDA's runtime and cuBLAS from this machine's toolkit, as the bundle leaves them out
  cuda_libs=""
  for d in "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")/../lib64" \
    /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -e "$d/libcublas.so.13" ] && cuda_libs="$cuda_libs:$d"
  done
  mkdir -p /tmp/sdrepl-home
  sdrepl=(/usr/bin/env "LD_LIBRARY_PATH=/tmp/sdrepl-bundle/lib$cuda_libs" SDREPL_NO_WINDOW=1
    SDREPL_INLINE=off "SDREPL_SOURCE_DIR=$root" "LUA_PATH=$root/tests/lua/?.lua;;"
    HOME=/tmp/sdrepl-home /tmp/sdrepl-bundle/bin/sdrepl)
  { cat /tmp/sdrepl-bundle/BUILT; echo "cuda libraries:$cuda_libs"; } >"$out/bundle.txt"
  check lua_notebook "${sdrepl[0]}" 60 "${sdrepl[@]:1}" tests/cuda/lua/test_notebook_device.lua
  check lua_textual_inv "${sdrepl[0]}" 30 "${sdrepl[@]:1}" \
    tests/cuda/lua/test_textual_inversion_device.lua
  check lua_lora "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_lora_device.lua
  check lua_freeu "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_freeu_device.lua
  check lua_safety "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_safety_checker_device.lua
  check lua_inpaint "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_inpaint_device.lua
  check lua_controlnet "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_controlnet_device.lua
  check lua_ip_adapter "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_ip_adapter_device.lua
  check lua_lcm "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_lcm_device.lua
  check lua_pix2pix "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_pix2pix_device.lua
  check lua_xl "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_xl_device.lua
  check lua_upscale "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_upscale_device.lua
  check lua_tiny_vae "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_tiny_vae_device.lua
  check lua_adapter "${sdrepl[0]}" 30 "${sdrepl[@]:1}" tests/cuda/lua/test_adapter_device.lua
  # A bundle built from other sources runs other code than these tests expect: say so.
  if ! grep -qxF "sources $(bash scripts/device_sources_hash.sh)" /tmp/sdrepl-bundle/BUILT; then
    row bundle_sources STALE 0 "the bundle was built from other sources (scripts/device_bundle.sh)"
  fi
else
  row lua_notebook FAIL 0 ".device-bundle.tar.xz does not unpack"
fi

# ---- the benchmark, then the full-size models, with what is left ----
bench_model=${SDREPL_BENCH_MODEL:-/tmp/sdrepl-bench/sd15-random-fp16}
if [ ! -f scripts/bench_gpu.sh ]; then
  row bench_gpu "-" 0 "no scripts/bench_gpu.sh"
elif [ -z "$gpu" ] && [ "${SDREPL_BENCH_CPU:-}" != 1 ]; then
  row bench_gpu SKIP 0 "no GPU"
elif [ "$(left)" -lt 90 ]; then
  row bench_gpu "-" 0 "$(left) s left"
else
  t=$(date +%s)
  # 60 s kept for the full-size models, 15 for the report, 60 for the full-size notebook
  bb=$(($(left) - 75))
  [ ${#sdrepl[@]} -gt 0 ] && bb=$((bb - 60))
  benchbin=()
  [ -x "$bdir/bench_gpu" ] && benchbin=(--bin "$bdir/bench_gpu")
  OUT=$out timeout -k 5 $((bb + 10)) bash scripts/bench_gpu.sh "${benchbin[@]}" --budget "$bb" \
    >"$out/bench_table.txt" 2>"$out/bench_stderr.log"
  rc=$?
  bnote="with $bdir/bench_gpu"
  [ ${#benchbin[@]} -gt 0 ] || bnote="no bench_gpu binary: diffusers only"
  case $rc in
  0) st=ok note="budget $bb s, $bnote" ;;
  77) st=SKIP note="skipped: $(tail -n 1 "$out/bench_stderr.log")" ;;
  124 | 137) st=FAIL note="stopped after $((bb + 10)) s" ;;
  *) st=FAIL note="exit $rc: $(grep -v '^$' "$out/bench_stderr.log" | tail -n 1)" ;;
  esac
  row bench_gpu "$st" $(($(date +%s) - t)) "${note:0:90}"
fi
if [ -f "$bench_model/model_index.json" ] && [ -n "$gpu" ]; then
  SDREPL_FULL_MODEL=$bench_model check full_models "$bin/test_cuda_models" 120 --backend cuda \
    --full-only
fi

# The seed notebook as a user runs it, at SD 1.5's size (the benchmark's random weights,
# so its pictures are noise), with "cuda" the GPU: 3 images at strength 0.8 in 50 steps,
# then 3 at strength 1 in 70, from a 512x512 picture.
if [ ${#sdrepl[@]} -gt 0 ] && [ -f "$bench_model/model_index.json" ]; then
  "${sdrepl[@]}" -e "Image.open('tests/reference/tiny-sd-a/init_image.png'):convert('RGB')\
:resize({512, 512}):save('/tmp/sdrepl-sketch-512.png')" >"$out/sketch.log" 2>&1
  check seed_notebook "${sdrepl[0]}" 60 "${sdrepl[@]:1}" examples/seed_notebook.lua \
    "$bench_model" file:///tmp/sdrepl-sketch-512.png
  if [ -f "$out/seed_notebook.log" ] && ! grep -qE "device:[[:space:]]+cuda" "$out/seed_notebook.log"; then
    row seed_notebook FAIL 0 "the notebook did not choose cuda"
  fi
fi

# ---- report: failures, the tables, the summary, the benchmark last ----
for f in check_philox test_cuda_random test_cuda_ops test_cuda_models test_cuda_ops_sync \
  test_cuda_models_sync test_cuda_ops_memcheck lua_notebook lua_textual_inv lua_lora lua_freeu lua_safety lua_inpaint lua_controlnet \
  lua_ip_adapter lua_lcm lua_pix2pix lua_xl lua_upscale lua_tiny_vae lua_adapter \
  full_models \
  seed_notebook; do
  [ -f "$out/$f.log" ] || continue
  if grep -q FAIL "$out/$f.log"; then
    echo "== $f: first failures"
    grep -A 3 -m 8 FAIL "$out/$f.log" | cut -c1-200
  fi
done
if [ -f "$out/test_cuda_ops.log" ]; then
  sed -n '/^CUDA backend against the CPU backend/,$p' "$out/test_cuda_ops.log"
fi
for f in test_cuda_models full_models; do
  [ -f "$out/$f.log" ] || continue
  grep -E "^full:|: [0-9.]+ s$" "$out/$f.log" | tr '\n' ' ' | fold -s -w 110
  echo
  sed -n '/^relative L2 error against the CPU/,$p' "$out/$f.log"
done
{
  echo
  echo "== device check: ${gpu:-no GPU found}; $(now) s in all"
  printf '%-17s %-5s %6s  %s\n' step state time note
  printf '%s\n' "${rows[@]}"
} | tee "$out/summary.txt"
if [ -s "$out/bench_table.txt" ]; then
  echo
  echo "== bench_gpu (bench_gpu.txt has the log)"
  grep -v '^$' "$out/bench_table.txt" | tail -n 20
fi
# The device tool brings back at most 8 files from $OUT: the summary, the benchmark's
# log and the two models/ops logs stay as they are, everything else goes into one archive.
if [ -n "${OUT:-}" ]; then
  keep=" summary.txt bench_gpu.txt test_cuda_ops.log test_cuda_models.log logs.tar.gz "
  rest=()
  for f in "$out"/*; do
    [ -f "$f" ] || continue
    case $keep in *" $(basename "$f") "*) ;; *) rest+=("$(basename "$f")") ;; esac
  done
  if [ ${#rest[@]} -gt 0 ] && tar czf "$out/logs.tar.gz" -C "$out" "${rest[@]}"; then
    (cd "$out" && rm -f "${rest[@]}")
  fi
fi
grep -qE "^[a-z_]+ +FAIL " "$out/summary.txt" && exit 1
grep -qE "^[a-z_]+ +(SKIP|-) " "$out/summary.txt" && exit 77
exit 0
