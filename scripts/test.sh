#!/usr/bin/env bash
# Installs what is needed, builds everything and runs every test (unit and end-to-end),
# first on the release build, then again on the ASan+UBSan build; then fuzzes the ActiveSync
# query decoder for FUZZ_SECONDS (default 120; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
for preset in ${PRESETS:-release asan}; do
  echo "=== $preset: build"
  PRESET=$preset bash scripts/build.sh
  echo "=== $preset: test"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    ctest --test-dir "build/$preset" --output-on-failure -j2
done
bash scripts/fuzz.sh "${FUZZ_SECONDS:-120}"
