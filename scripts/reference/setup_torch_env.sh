#!/usr/bin/env bash
# Makes .venv-torch: Debian's torch (apt: python3-torch, python3-scipy for LMS, libopenblas0-pthread so
# torch does not fall back to the slow reference BLAS) plus the pinned pip packages.
# Only the reference generator and benchmarks need it; tests never do.
set -euo pipefail
cd "$(dirname "$0")/../.."
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
need=()
for p in python3-torch python3-numpy python3-scipy python3-venv libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
[ -x .venv-torch/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv-torch
.venv-torch/bin/pip install -q -r scripts/reference/requirements-torch.txt
.venv-torch/bin/python -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
