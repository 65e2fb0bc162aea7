#!/usr/bin/env bash
# scripts/device_sources_hash.sh — one hash of the sources sdrepl is built from (the C
# files and the build files), so that device_check.sh can tell whether the carried
# bundle (device_bundle.sh) was built from the sources next to it. Needs no git.
set -euo pipefail
cd "$(dirname "$0")/.."
find CMakeLists.txt bindings engine kernels repl -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name CMakeLists.txt \) |
  LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-16
