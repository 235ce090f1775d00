#!/usr/bin/env bash
# Configures and builds one preset (default: release). Extra args go to the build (targets).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-release}
[ -f "build/$preset/build.ninja" ] || cmake --preset "$preset"
jobs=${JOBS:-$(nproc)}
if [ $# -gt 0 ]; then
  cmake --build "build/$preset" -j "$jobs" --target "$@"
else
  cmake --build "build/$preset" -j "$jobs"
fi
