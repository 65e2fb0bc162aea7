#!/usr/bin/env bash
# scripts/bench/gpu_wheels.sh — the Python wheels scripts/bench_gpu.sh needs on the GPU machine,
# downloaded here (pip, PyPI) into .whl/ at the repository root, which git ignores
# (.git/info/exclude) and the device tool carries (run's carry: [".whl"]).
#
#   bash scripts/bench/gpu_wheels.sh            (DIFFUSERS_VERSION=... for another release)
#
# The GPU image has Python 3.12 with torch 2.11, transformers 5.17, huggingface_hub 1.33,
# safetensors 0.8, numpy 2.5, Pillow, filelock, regex, requests (device README, KINDS.md),
# but no diffusers. diffusers 0.42.1 asks (Requires-Dist, extras left out) for
# importlib_metadata, filelock, huggingface-hub>=1.32,<3, numpy, regex, requests,
# safetensors>=0.8, Pillow: all there but importlib_metadata, which diffusers imports only
# on Python < 3.8 (utils/import_utils.py takes importlib.metadata otherwise), and which
# bench_gpu.sh installs with --no-deps. So the diffusers wheel alone travels (about 6 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${DIFFUSERS_VERSION:-0.42.1}
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" .whl
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
# One version of each package: two would stop the whole install there.
find .whl -name 'diffusers-*.whl' ! -name "diffusers-$version-*" -delete
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d .whl "diffusers==$version"
echo "Requires-Dist of diffusers $version (check each against the GPU image's packages):"
unzip -p .whl/diffusers-"$version"-*.whl '*/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' |
  sed 's/^/  /'
ls -l .whl
du -sh .whl
