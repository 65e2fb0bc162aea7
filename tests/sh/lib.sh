# tests/sh/lib.sh — shared by the shell-driven tests.
set -euo pipefail
: "${SDREPL:?SDREPL must name the sdrepl binary}"
: "${SDREPL_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP" 2>/dev/null || true' EXIT
