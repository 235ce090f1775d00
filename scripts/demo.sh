#!/usr/bin/env bash
# Installs what is needed, builds mailgate, makes demo certificates and starts mailgate on
# examples/demo.yaml in front of the bundled demo origin (an Exchange-like TLS server).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
bash scripts/build.sh mailgate
bash scripts/demo-certs.sh
certs=examples/demo/certs
build/release/mailgate check -c examples/demo.yaml

/usr/bin/python3 examples/demo/origin.py --listen 127.0.0.1:9443 \
  --cert "$certs/origin.pem" --key "$certs/origin.key" &
origin=$!
trap 'kill "$origin" 2>/dev/null || true' EXIT
cat <<MSG

mailgate demo: https://localhost:8443 -> demo origin https://127.0.0.1:9443 (exchange.internal)
Try it from another shell:
  curl --cacert $root/$certs/ca.pem -i https://localhost:8443/owa/
  curl --cacert $root/$certs/ca.pem -i -X OPTIONS https://localhost:8443/Microsoft-Server-ActiveSync
  curl -i http://localhost:8080/owa/      # port 80's job: a 301 to https, nothing proxied
Stop with Ctrl-C.

MSG
build/release/mailgate run -c examples/demo.yaml
