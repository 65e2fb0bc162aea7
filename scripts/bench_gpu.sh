#!/usr/bin/env bash
# scripts/bench_gpu.sh — sdrepl against diffusers on one GPU, SD 1.5 at float16, in one run.
#
#   bash scripts/bench_gpu.sh --bin PATH/TO/bench_gpu [--budget SECONDS] [--repeat N]
#                             [--model DIR] [PARTS...]          (PARTS: unet txt2img img2img)
#
# Environment instead of flags: SDREPL_BENCH_BIN, SDREPL_BENCH_BUDGET (default 240),
# SDREPL_BENCH_REPEAT (default 2), SDREPL_BENCH_MODEL (default /tmp/sdrepl-bench/sd15-random-fp16),
# PYTHON (default python3). Everything is written to $OUT/bench_gpu.txt when OUT is set (the
# device tool brings that folder back), else to build-device/bench_gpu.txt; the table is
# printed last.
#
# What it does, within the budget (seconds from its start, the model's making included):
#  1. diffusers: imported, or installed from the carried wheels in .whl/ into /tmp/site
#     (scripts/bench/gpu_wheels.sh downloads them; the device tool's carry: [".whl"]).
#  2. The model: scripts/bench/make_random_sd.py --fp16 --device cuda into SDREPL_BENCH_MODEL,
#     unless already there: SD 1.5's configuration with random weights (timing does not depend
#     on the values).
#  3. Each part on each side in a fresh process, diffusers first, then ours
#     (scripts/bench/diffusers_gpu.py, and bench_gpu built from scripts/bench/bench_gpu.c):
#       unet     one guided UNet call (batch 2, 64x64 latents, 77 tokens), steps per second;
#                diffusers' process also measures the float16 matrix rate (8192^3 product)
#                and counts the UNet's FLOPs (from the config; and FlopCounterMode).
#       txt2img  512x512, 50 PNDM steps, guidance 7.5, prompt to pixels on the host, seconds.
#       img2img  the notebook's call: 3 images of a 512x512 picture, strength 0.8, 50 steps.
#     A part whose predicted time (from the UNet rates measured first) does not fit what is
#     left is run with fewer repeats, or skipped and said so; each process also has a time
#     limit, so the whole run ends within the budget.
#  4. The table: each part's figure on both sides, the ratio (above 1: sdrepl is faster),
#     peak GPU memory (diffusers: torch.cuda.max_memory_allocated; sdrepl:
#     sdr_cuda_memory_stats, both with the weights), and the floor: the UNet's FLOPs over the
#     measured matrix rate, and how far each side is from it.
# Exit status: 0 when every part that fitted ran on both sides; 1 when a run failed or ran
# out of time; 2 on bad arguments; 77 when there is no GPU.
#
# SDREPL_BENCH_CPU=1 checks this script on a machine without a GPU: both sides on the CPU
# (diffusers_gpu.py --device cpu --tiny, bench_gpu on the CPU backend), meant with
# --model tests/models/tiny-sd-a. Its figures mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)

bin=${SDREPL_BENCH_BIN:-}
budget=${SDREPL_BENCH_BUDGET:-240}
repeat=${SDREPL_BENCH_REPEAT:-2}
model=${SDREPL_BENCH_MODEL:-/tmp/sdrepl-bench/sd15-random-fp16}
PY=${PYTHON:-python3}
parts=()
while [ $# -gt 0 ]; do
  case $1 in
  --bin) bin=$2; shift 2 ;;
  --budget) budget=$2; shift 2 ;;
  --repeat) repeat=$2; shift 2 ;;
  --model) model=$2; shift 2 ;;
  unet | txt2img | img2img) parts+=("$1"); shift ;;
  *) echo "bench_gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#parts[@]} -gt 0 ] || parts=(unet txt2img img2img)
case $budget in '' | *[!0-9]*) echo "bench_gpu.sh: --budget takes whole seconds" >&2; exit 2 ;; esac
[ -n "$bin" ] && bin=$(cd "$(dirname "$bin")" 2>/dev/null && echo "$PWD/$(basename "$bin")")

outdir=${OUT:-$root/build-device}
mkdir -p "$outdir"
log=$outdir/bench_gpu.txt
: >"$log"
results=$(mktemp)
trap 'rm -f "$results" "$results".*' EXIT
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

left() { echo $((budget - ($(date +%s) - start))); }
say() { echo "bench_gpu: $*" | tee -a "$log" >&2; }

# ---- the machine and diffusers ----
pyargs=()
if [ "${SDREPL_BENCH_CPU:-}" = 1 ]; then
  gpu="CPU (SDREPL_BENCH_CPU=1: a check of this script, not a benchmark)"
  pyargs=(--device cpu --tiny)
else
  gpu=$(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null |
    head -n 1)
fi
if [ -z "$gpu" ]; then
  say "skipped: no GPU (nvidia-smi found none)"
  exit 77
fi
if ! "$PY" -c "import diffusers" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl >>"$log" 2>&1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi
versions=$("$PY" -c "import torch, diffusers, transformers; print('torch', torch.__version__, \
'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" 2>>"$log")
if [ -z "$versions" ]; then
  say "diffusers cannot be imported (no .whl/? run scripts/bench/gpu_wheels.sh where pip works)"
  versions="no diffusers"
fi
say "$gpu; $versions; budget ${budget} s"

# ---- the model ----
# Weights drawn on the GPU (a second); on the CPU if that fails (16 cores: some tens of seconds).
devices=(cuda cpu)
[ "${SDREPL_BENCH_CPU:-}" = 1 ] && devices=(cpu)
for dev in "${devices[@]}"; do
  [ -f "$model/model_index.json" ] && break
  t=$(date +%s)
  timeout -k 5 $(($(left) - 60 > 10 ? $(left) - 60 : 10)) "$PY" scripts/bench/make_random_sd.py \
    "$model" --fp16 --device "$dev" >>"$log" 2>&1
  rc=$?
  say "model made on $dev in $(($(date +%s) - t)) s (exit $rc): $model"
done
if [ ! -f "$model/model_index.json" ]; then
  say "no model at $model (see above); nothing to time"
  tail -n 20 "$log" >&2
  exit 1
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  say "no bench_gpu binary (--bin ${bin:-unset}): only diffusers runs"
  bin=
fi

# ---- runs ----
failed=0
# run SIDE PART LIMIT CMD...: one process; its JSON lines go to $results as "SIDE|line".
run() {
  local side=$1 part=$2 limit=$3 rc t
  shift 3
  t=$(date +%s)
  echo "== $side $part (limit $limit s): $*" >>"$log"
  timeout -k 5 "$limit" "$@" >"$results.out" 2>"$results.err"
  rc=$?
  cat "$results.out" >>"$log"
  tail -n 30 "$results.err" >>"$log"
  grep '^{' "$results.out" | sed "s/^/$side|/" >>"$results"
  case $rc in
  0) ;;
  77) say "$side $part: skipped ($(tail -n 1 "$results.err"))" ;;
  124 | 137) say "$side $part: stopped at its limit of $limit s"; failed=1
    echo "$side|{\"part\": \"$part\", \"error\": \"stopped at its $limit s limit\"}" >>"$results" ;;
  *) # the last line of stderr: Python's exception, or bench_gpu's message
    why=$(grep -v '^\s*$' "$results.err" | tail -n 1 | cut -c1-300)
    say "$side $part: exit $rc: $why"; failed=1
    grep -q "\"part\": \"$part\"" "$results.out" ||
      "$PY" -c 'import json, sys; print(sys.argv[1] + "|" + json.dumps({"part": sys.argv[2],
"error": sys.argv[3]}))' "$side" "$part" "exit $rc: $why" >>"$results" ;;
  esac
  echo "   $side $part: $(($(date +%s) - t)) s" >>"$log"
}

# A figure from the results: field SIDE PART KEY (empty when absent).
field() {
  "$PY" - "$results" "$1" "$2" "$3" <<'PY'
import json, sys
path, side, part, key = sys.argv[1:]
for l in open(path):
    s, _, j = l.partition("|")
    if s != side:
        continue
    try:
        d = json.loads(j)
    except ValueError:
        continue
    if d.get("part") == part and d.get(key) is not None:
        print(d[key])
PY
}

# Seconds one side needs for a generate part with r timed runs: start + load, then warm-up
# and runs at the UNet rate measured (rate for batch 2; img2img's calls are batch 6).
predict() { # rate start part r
  awk -v rate="$1" -v st="$2" -v part="$3" -v r="$4" 'BEGIN {
    if (rate == "" || rate <= 0) rate = 5;  # unknown: assume slow
    per = (part == "img2img") ? 41 * 3 / rate + 1.0 : 51 / rate + 0.5;
    printf "%d\n", st + (r + 0.3) * per + 0.999 }'
}

dstart=25 # a diffusers process: imports, load, .to("cuda")
ostart=8  # ours: load and upload
for part in "${parts[@]}"; do
  r=$repeat
  if [ "$part" != unet ]; then
    drate=$(field diffusers unet steps_per_second)
    orate=$(field sdrepl unet steps_per_second_graph)
    [ -n "$orate" ] || orate=$(field sdrepl unet steps_per_second)
    need() { echo $(($(predict "$drate" $dstart "$part" "$1") + $(predict "$orate" $ostart "$part" "$1"))); }
    while [ "$r" -gt 1 ] && [ "$(need "$r")" -gt "$(left)" ]; do r=$((r - 1)); done
    if [ "$(need "$r")" -gt "$(left)" ]; then
      say "$part: skipped, $(need "$r") s predicted for both sides, $(left) s left"
      echo "diffusers|{\"part\": \"$part\", \"skipped\": \"budget\"}" >>"$results"
      echo "sdrepl|{\"part\": \"$part\", \"skipped\": \"budget\"}" >>"$results"
      continue
    fi
  elif [ "$(left)" -lt 45 ]; then
    say "$part: skipped, $(left) s left"
    continue
  fi
  # Each side gets at most what is left, keeping a little for the other side and the table.
  if [ "$part" = unet ]; then
    dparts=matmul,unet,flops
  else
    dparts=$part
  fi
  lim=$(($(left) - 15))
  [ -n "$bin" ] && lim=$(($(left) * 2 / 3))
  run diffusers "$part" $((lim > 5 ? lim : 5)) "$PY" scripts/bench/diffusers_gpu.py "$model" "$dparts" "$r" \
    "${pyargs[@]}"
  if [ -n "$bin" ]; then
    lim=$(($(left) - 5))
    # after its timing, ours profiles one call/run per op (sdr_cuda_profile_*); kept for the log
    SDREPL_BENCH_PROFILE="$results.profile" run sdrepl "$part" $((lim > 5 ? lim : 5)) "$bin" \
      "$model" "$part" "$r"
  fi
done

# ---- where our GPU time went (into the log, ahead of the table) ----
if [ -s "$results.profile" ]; then
  echo "== sdrepl: GPU time per op (one eager UNet call; one whole run per part)" >>"$log"
  cat "$results.profile" >>"$log"
fi

# ---- the table ----
"$PY" - "$results" <<'PY' | tee -a "$log"
import json, sys

rows = {}
for l in open(sys.argv[1]):
    side, _, j = l.partition("|")
    try:
        d = json.loads(j)
    except ValueError:
        continue
    rows.setdefault((side, d.get("part")), {}).update(d)

def get(side, part, key):
    v = rows.get((side, part), {}).get(key)
    return v if isinstance(v, (int, float)) else None

def note(side, part):
    d = rows.get((side, part), {})
    return d.get("error") or (d.get("skipped") and "skipped: " + d["skipped"]) or "-"

def fmt(v, spec):
    width = int("".join(c for c in spec.split(".")[0] if c.isdigit()) or 0)
    return format(v, spec) if v is not None else "-".rjust(width)

print()
print(f"{'part':<30}{'diffusers':>10}{'sdrepl':>10}{'ratio':>7}{'diffusers MB':>14}{'sdrepl MB':>11}")
lines = [
    ("unet", "steps/s (batch 2)", "steps_per_second", "steps_per_second", True),
    ("unet", "steps/s, graph", "steps_per_second", "steps_per_second_graph", True),
    ("unet", "steps/s, graph, mma attn", "steps_per_second", "steps_per_second_graph_mma", True),
    ("txt2img", "s (50 steps)", "seconds", "seconds", False),
    ("img2img", "s (3 images, 0.8)", "seconds", "seconds", False),
]
for part, label, dkey, okey, rate in lines:
    if not any(k[1] == part for k in rows):
        continue
    d, o = get("diffusers", part, dkey), get("sdrepl", part, okey)
    if part == "unet" and okey.endswith("_mma") and o is None:
        err = rows.get(("sdrepl", "unet"), {}).get("other_attention_error")
        if err:
            print(f"{part + ' ' + label:<30}{'':>10}{'-':>10}   sdrepl: {err[:150]}")
        continue
    if part == "unet" and okey.endswith("graph") and o is None:
        err = rows.get(("sdrepl", "unet"), {}).get("graph_error")
        if err:
            print(f"{part + ' ' + label:<30}{'':>10}{'-':>10}   sdrepl: {err[:150]}")
        continue
    ratio = (o / d if rate else d / o) if d and o else None
    dm, om = get("diffusers", part, "peak_gpu_mb"), get("sdrepl", part, "peak_gpu_mb")
    text = f"{part + ' ' + label:<30}{fmt(d, '10.3f')}{fmt(o, '10.3f')}{fmt(ratio, '7.2f')}"
    text += f"{fmt(dm, '14.0f')}{fmt(om, '11.0f')}"
    problems = [f"{s}: {note(s, part)[:150]}" for s in ("diffusers", "sdrepl")
                if note(s, part) != "-" or (s == "sdrepl" and o is None)]
    print(text + ("   " + "; ".join(problems) if problems and (d is None or o is None) else ""))

flops, tflops = get("diffusers", "flops", "flops"), get("diffusers", "matmul", "tflops")
counted = get("diffusers", "flops", "flop_counter")
if flops and tflops:
    floor = flops / (tflops * 1e12)
    fl, mm = rows[("diffusers", "flops")], rows[("diffusers", "matmul")]
    print(f"\nfloor: one guided UNet call = {flops / 1e9:.1f} GFLOP (batch 2, {fl.get('latent')}x"
          f"{fl.get('latent')} latents, {fl.get('tokens')} tokens; FlopCounterMode:"
          f" {fmt(counted and counted / 1e9, '.1f')}) / {tflops:.1f} TFLOP/s ({mm.get('dtype')}"
          f" {mm.get('n')}^3 matmul) = {floor * 1e3:.2f} ms, {1 / floor:.0f} steps/s")
    for side, key in (("diffusers", "steps_per_second"), ("sdrepl", "steps_per_second"),
                      ("sdrepl", "steps_per_second_graph"), ("sdrepl", "steps_per_second_graph_mma")):
        sps = get(side, "unet", key)
        if sps:
            what = side + (" (graph)" if key.endswith("graph") else " (graph, mma)" if key.endswith("mma") else "")
            print(f"  {what:<17} {1e3 / sps:7.2f} ms per step: {1 / (sps * floor):5.1f}x the floor's time,"
                  f" {100 * sps * floor:4.1f}% of the matrix rate")
elif rows:
    print("\nfloor: not measured (diffusers' unet process did not finish)")
d_sps = get("diffusers", "unet", "steps_per_second")
o_sps = get("sdrepl", "unet", "steps_per_second_graph") or get("sdrepl", "unet", "steps_per_second")
if d_sps and o_sps:
    ratio = o_sps / d_sps
    mem = []
    for part in ("unet", "txt2img", "img2img"):
        dm, om = get("diffusers", part, "peak_gpu_mb"), get("sdrepl", part, "peak_gpu_mb")
        if dm and om:
            mem.append(f"{part} {'lower' if om < dm else 'NOT lower'}")
    print(f"\ngoal: UNet steps/s at least 1.5x diffusers': {ratio:.2f}x"
          f" ({'met' if ratio >= 1.5 else 'not met'}; sdrepl as its pipeline runs the UNet);"
          f" peak memory: {', '.join(mem) or 'not measured'}")
print("ratio: above 1 means sdrepl is faster (steps/s: sdrepl / diffusers; seconds: diffusers / sdrepl)")
PY
say "done in $(($(date +%s) - start)) s of ${budget}; log: $log"
exit $failed
