#!/usr/bin/env bash
# Builds (if needed) and runs the whole CPU test suite through CTest. GPU tests are labelled and skip with a
# visible reason on machines without a CUDA device; scripts/gpu-check.sh runs them on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${TAILOR_CMAKE_ARGS:-}
fi
cmake --build "$BUILD" -j "$(nproc)"
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"
