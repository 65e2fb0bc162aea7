#!/usr/bin/env bash
# scripts/setup.sh — installs what sdrepl needs from Debian and builds it.
#   scripts/setup.sh            install packages (when root or with sudo) and build into build/
#   scripts/setup.sh --deps     install packages only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config clang libomp-dev
  liblua5.4-dev libreadline-dev libsdl2-dev libstb-dev libjpeg62-turbo-dev libwebp-dev libcurl4-openssl-dev
  libcjson-dev libopenblas-openmp-dev zlib1g-dev
  # for the tests: a local HTTP server, the REPL driven through tmux, the window under Xvfb
  python3 tmux xvfb imagemagick xdotool
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--deps" ] && exit 0

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
echo "setup: built build/sdrepl"
