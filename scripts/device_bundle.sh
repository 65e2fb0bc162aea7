#!/usr/bin/env bash
# scripts/device_bundle.sh — sdrepl itself, built here with CUDA, packed with the shared
# libraries it needs, so that the GPU machine can run notebooks through the Lua API.
#
#   bash scripts/device_bundle.sh [BUILD_DIR]     (default build; writes .device-bundle.tar.xz)
#
# The GPU machine's image (Ubuntu 24.04, CUDA 13.0, no Lua, SDL2, readline or
# curl, no internet) cannot build the REPL, and the checks there (tests/cuda) drive
# the engine from C. This archive carries the REPL as users run it: the sdrepl
# binary of BUILD_DIR (configured with nvcc found, so with the CUDA backend for
# sm_90a) and every library `ldd` finds for it, except the C library's own (the
# GPU machine's newer glibc runs programs built against this one's) and CUDA's
# (the GPU machine's toolkit and driver provide the same sonames). The device tool
# carries it (carry: [".device-bundle.tar.xz"], about 20 MB); scripts/device_check.sh
# unpacks it into /tmp/sdrepl-bundle and runs tests/cuda/lua/test_notebook_device.lua
# and examples/seed_notebook.lua with "cuda" being the H200. The file is listed in
# .git/info/exclude so it is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
exe=$build/sdrepl
out=.device-bundle.tar.xz
[ -x "$exe" ] || { echo "device_bundle: no $exe: build first (scripts/setup.sh)" >&2; exit 1; }
if ! ldd "$exe" | grep -q libcudart; then
  echo "device_bundle: $exe has no CUDA backend (nvcc was not found when it was configured)" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/sdrepl-bundle/bin" "$stage/sdrepl-bundle/lib"
objcopy --strip-debug "$exe" "$stage/sdrepl-bundle/bin/sdrepl"
# name => path as the loader resolves it; the copy takes the name the binary asks for
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libcuda|libcublas|libcudart)'
ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
  if grep -qE "$skip" <<<"$name"; then
    continue
  fi
  cp -L "$path" "$stage/sdrepl-bundle/lib/$name"
  strip --strip-debug "$stage/sdrepl-bundle/lib/$name" 2>/dev/null || true
done
{
  echo "sdrepl $(git rev-parse --short HEAD) built $(date -u +%Y-%m-%dT%H:%MZ) on"
  # what device_check.sh compares with the sources it runs next to (no git there)
  echo "sources $(bash scripts/device_sources_hash.sh)"
  grep PRETTY_NAME /etc/os-release 2>/dev/null || true
  ldd --version | sed -n 1p
} >"$stage/sdrepl-bundle/BUILT"
tar -C "$stage" -cf - sdrepl-bundle | xz -T0 -6 >"$out.tmp"
mv "$out.tmp" "$out"
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$out" "$exclude" 2>/dev/null || echo "/$out" >>"$exclude"
echo "device_bundle: $(du -h "$out" | cut -f1) in $out ($(ls "$stage/sdrepl-bundle/lib" | wc -l)" \
  "libraries); carry it: [\"$out\"]"
