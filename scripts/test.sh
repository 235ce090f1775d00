#!/usr/bin/env bash
# Installs what is needed, builds everything and runs every test (unit and end-to-end),
# first on the release build (then a smoke run of bench/run.sh, 2 s per scenario and proxy),
# then again on the ASan+UBSan build; then fuzzes the ActiveSync query decoder for
# FUZZ_SECONDS (default 120; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
for preset in ${PRESETS:-release asan}; do
  echo "=== $preset: build"
  PRESET=$preset bash scripts/build.sh
  echo "=== $preset: test"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    ctest --test-dir "build/$preset" --output-on-failure -j2
  if [ "$preset" = release ]; then
    # bench/run.sh's smoke form: fails if the script breaks, never on its numbers; the results
    # go to a temporary directory, never to the committed bench/results.
    echo "=== $preset: benchmark smoke"
    smoke=$(mktemp -d)
    RESULTS=$smoke MAILGATE_BIN="$PWD/build/release/mailgate" ROUNDS=1 DURATION=2 WARMUP=0 \
      SCENARIOS="a e g" LONGPOLLS=100 bash bench/run.sh
    rm -rf "$smoke"
  fi
done
bash scripts/fuzz.sh "${FUZZ_SECONDS:-120}"
