#!/usr/bin/env bash
# Self-signed certificates for the demo: a demo CA, mailgate's ECDSA and RSA certificates
# for localhost, and the demo origin's certificate for exchange.internal. Made once.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/examples/demo/certs"}
[ -f "$dir/origin.pem" ] && exit 0
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=mailgate demo CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() {  # name keyopts san
  local name=$1 san=$3
  # shellcheck disable=SC2086
  openssl req -new -newkey $2 -nodes -subj "/CN=${san%%,*}" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
    "$(echo "$san" | sed 's/\([^,]*\)/DNS:\1/g; s/DNS:\([0-9.]*\)\(,\|$\)/IP:\1\2/g')" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -sha256 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
issue mail-ecdsa "ec -pkeyopt ec_paramgen_curve:P-256" "localhost,127.0.0.1"
issue mail-rsa "rsa:2048" "localhost,127.0.0.1"
issue origin "ec -pkeyopt ec_paramgen_curve:P-256" "exchange.internal,127.0.0.1"
chmod 600 ./*.key
chmod 644 ./*.pem
echo "demo certificates written to $dir"
