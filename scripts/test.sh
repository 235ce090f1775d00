#!/usr/bin/env bash
# Installs what is needed, builds everything and runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir "build/${PRESET:-release}" --output-on-failure -j1
