#!/usr/bin/env bash
# Installs everything mailgate needs to build, run its demo and run its tests on Debian 12.
# Only apt: a fresh machine has bash and apt and nothing else.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "run as root (apt-get)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake ninja-build pkg-config ca-certificates
  clang libclang-rt-dev llvm
  libboost1.81-dev libssl-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev libre2-dev libhiredis-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-pytest curl openssl wrk procps iproute2 testssl.sh
  slowhttptest redis-server
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
