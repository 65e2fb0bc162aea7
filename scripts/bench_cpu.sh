#!/usr/bin/env bash
# scripts/bench_cpu.sh — sdrepl against PyTorch/diffusers on this CPU, in one run.
#
#   scripts/bench_cpu.sh [PARTS...]     (default: text_encoder unet vae_decode txt2img)
#   parts also: lora_load lora_txt2img lora_scaled (a rank-32 Kohya LoRA at SD 1.5 shapes,
#   scripts/bench/make_random_lora.py, beside the model: load, a 3-step run with it, and one
#   with cross_attention_kwargs scale 0.5); safety_checker (the feature extractor and a random
#   checker of CompVis' size, scripts/bench/make_random_safety_checker.py, on three 512x512
#   pictures, as a pipeline runs them after the VAE); inpaint (3 steps of the legacy 4-channel
#   inpainting at 512x512: two VAE encodes, the blend after each step); controlnet (3 steps of
#   StableDiffusionControlNetPipeline at 512x512 with a ControlNet of SD 1.5's size,
#   scripts/bench/make_random_controlnet.py: the net's down half and the UNet each step);
#   ip_adapter (3 steps of txt2img at 512x512 with h94's SD 1.5 IP-Adapter at its size,
#   scripts/bench/make_random_ip_adapter.py: the ViT-H image encoder once, the adapters' keys
#   and values in every cross-attention each step); sdxl (StableDiffusionXLPipeline at
#   stabilityai/stable-diffusion-xl-base-1.0's size, scripts/bench/make_random_sdxl.py: both
#   text encoders, one guided UNet step at 1024x1024 and the VAE's decode at that size);
#   taesd_decode (AutoencoderTiny at madebyollin/taesd's size, scripts/bench/make_random_taesd.py,
#   decoding the same 64x64 latents as vae_decode); adapter_features (a T2IAdapter of
#   TencentARC's SD 1.5 size, scripts/bench/make_random_t2i_adapter.py: its four features of a
#   512x512 picture, what an adapter pipeline computes once per call)
#
# Full SD 1.5 shapes with random weights (scripts/bench/make_random_sd.py, made
# once into $SDREPL_BENCH_MODEL, default build/bench/sd15-random). Each part runs
# in a fresh process on each side, alternating, best of SDREPL_BENCH_REPEAT
# after a warm-up; the table gives the time ratio (PyTorch / ours: above 1 means
# we are faster) and peak memory. Needs .venv-torch
# (scripts/reference/setup_torch_env.sh) and build/sdrepl.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${SDREPL_BENCH_MODEL:-build/bench/sd15-random}
REPEAT=${SDREPL_BENCH_REPEAT:-2}
PY=.venv-torch/bin/python
[ -x "$PY" ] || { echo "bench: run scripts/reference/setup_torch_env.sh first" >&2; exit 2; }
[ -x build/sdrepl ] || { echo "bench: build sdrepl first (scripts/setup.sh)" >&2; exit 2; }
mkdir -p "$(dirname "$MODEL")"
"$PY" scripts/bench/make_random_sd.py "$MODEL" >&2
case " $* " in *" lora_"*)
  "$PY" scripts/bench/make_random_lora.py "$MODEL" "$(dirname "$MODEL")/lora-r32.safetensors" >&2 ;;
esac
case " $* " in *" safety_checker "*)
  "$PY" scripts/bench/make_random_safety_checker.py "$MODEL" "$MODEL-sc" >&2 ;;
esac
case " $* " in *" controlnet "*)
  "$PY" scripts/bench/make_random_controlnet.py "$MODEL" "$MODEL-controlnet" >&2 ;;
esac
case " $* " in *" ip_adapter "*)
  "$PY" scripts/bench/make_random_ip_adapter.py "$MODEL" "$MODEL-ip-adapter" >&2 ;;
esac
case " $* " in *" taesd_decode "*)
  "$PY" scripts/bench/make_random_taesd.py "$MODEL-taesd" >&2 ;;
esac
case " $* " in *" adapter_features "*)
  "$PY" scripts/bench/make_random_t2i_adapter.py "$MODEL-t2i-adapter" >&2 ;;
esac
case " $* " in *" sdxl "*)
  "$PY" scripts/bench/make_random_sdxl.py "$MODEL-xl" >&2 ;;
esac
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(text_encoder unet vae_decode txt2img)
# Debian's torch uses OpenBLAS; make sure it is the optimised pthread build, not
# the reference BLAS (FACTS: 15x slower), and that neither side takes more than 2 threads.
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
results=$(mktemp)
for part in "${parts[@]}"; do
  echo "bench: $part" >&2
  torch_line=$("$PY" scripts/bench/torch_side.py "$MODEL" "$part" "$REPEAT" 2>/dev/null | tail -n 1)
  ours_line=$(SDREPL_NO_WINDOW=1 build/sdrepl scripts/bench/ours.lua "$MODEL" "$part" "$REPEAT" 2>/dev/null | tail -n 1)
  echo "$part|$torch_line|$ours_line" >>"$results"
done
"$PY" - "$results" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
print(f"{'part':<14}{'pytorch s':>11}{'sdrepl s':>11}{'ratio':>8}{'pytorch MB':>12}{'sdrepl MB':>11}")
for part, t, o in rows:
    t, o = json.loads(t), json.loads(o)
    print(f"{part:<14}{t['seconds']:>11.3f}{o['seconds']:>11.3f}{t['seconds'] / o['seconds']:>8.2f}"
          f"{t['peak_rss_mb']:>12.0f}{o['peak_rss_mb']:>11.0f}")
PY
rm -f "$results"
