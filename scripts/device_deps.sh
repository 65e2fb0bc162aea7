#!/usr/bin/env bash
# scripts/device_deps.sh — fetch, where apt works, the Debian packages the GPU machine's
# build needs beyond its image, into .deps-gpu/ at the repository's root.
#
#   bash scripts/device_deps.sh          (here: a Debian 12 machine with apt)
#
# The GPU machine (Ubuntu 24.04, CUDA, cmake, gcc, torch; no internet) lacks the
# headers of cJSON, stb and perhaps zlib, which the engine needs for the model
# checks (tests/cuda/test_cuda_models.c) and the benchmark (bench_gpu). These
# packages are bookworm's: built against glibc 2.36, they run on 24.04's newer one.
# scripts/device_check.sh unpacks them with `dpkg -x` into /tmp/sdrepl-deps (never
# into /) when the system has no headers of its own, and passes that folder to
# CMake (-DSDREPL_DEPS_PREFIX). Not libcurl: the engine is built without the hub.
#
# The folder travels to the GPU machine with the device tool's carry option
# (carry: [".deps-gpu"]); it is listed in .git/info/exclude so it is never
# committed. About 2 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.deps-gpu
pkgs=(libcjson1 libcjson-dev libstb0 libstb-dev zlib1g zlib1g-dev)

mkdir -p "$dest"
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$dest/" "$exclude" 2>/dev/null || echo "/$dest/" >>"$exclude"

# apt-get download writes into the current folder; _apt cannot always write there,
# so it runs unsandboxed (the warning it prints about that is harmless).
rm -f "$dest"/*.deb
(
  cd "$dest"
  apt-get download "${pkgs[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
)
missing=0
for p in "${pkgs[@]}"; do
  ls "$dest/${p}"_*.deb >/dev/null 2>&1 || { echo "device_deps: $p was not downloaded" >&2; missing=1; }
done
[ $missing -eq 0 ] || { echo "device_deps: try apt-get update first" >&2; exit 1; }
ls -l "$dest"
echo "device_deps: $(du -sh "$dest" | cut -f1) in $dest/; carry it: [\"$dest\"]"
