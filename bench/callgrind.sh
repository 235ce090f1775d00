#!/usr/bin/env bash
# Instructions per proxied request, from valgrind's callgrind: stable on a shared, noisy
# machine where CPU time is not. mailgate (1 worker) runs under callgrind in front of an
# nginx TLS origin; a client makes N1, then (in a second run) N2 keep-alive requests over
# CONNS connections (GET 1 KiB, scenario a's shape); the difference of the two totals,
# divided by N2 - N1, is the cost of one request without start-up and handshakes.
# Usage: MAILGATE_BIN=build/release/mailgate bench/callgrind.sh        (N1=200 N2=1200 CONNS=4)
#        SIZE=1048576 N1=10 N2=60: the body size (scenario d's 1 MiB)
#        KEEP=1 keeps the callgrind files (bench/work/callgrind/) for callgrind_annotate.
#        NEW_CONN=1: a new TLS connection per request (Connection: close), resuming the last
#        session (scenario b's shape)
#        PROXY=nginx measures nginx (one worker, no master) with the proxy settings of
#        bench/run.sh in mailgate's place: the same client, origin and count.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${MAILGATE_BIN:-$root/build/release/mailgate}
n1=${N1:-200}
n2=${N2:-1200}
conns=${CONNS:-4}
work="$root/bench/work/callgrind"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
mkdir -p "$work"
for p in valgrind nginx; do
  command -v "$p" >/dev/null || { apt-get update && apt-get install -y --no-install-recommends valgrind nginx-light; }
done
bash "$root/scripts/demo-certs.sh" "$work/certs" >/dev/null
certs="$work/certs"
head -c "${SIZE:-1024}" /dev/zero | tr '\0' 'x' > "$work/1k"

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:19543 ssl;
    ssl_certificate $certs/origin.pem;
    ssl_certificate_key $certs/origin.key;
    keepalive_requests 1000000;
    location / { root $work; try_files /1k =404; default_type text/plain; }
  }
}
CONF
cat > "$work/mailgate.yaml" <<CONF
server: { workers: 1 }
log: { level: warn, access: "off" }
listeners:
  - name: bench
    address: "127.0.0.1:18543"
    tls:
      certificates:
        - { cert: $certs/mail-ecdsa.pem, key: $certs/mail-ecdsa.key }
upstreams:
  - name: origin
    servers: ["127.0.0.1:19543"]
    tls: { server_name: exchange.internal, ca: $certs/ca.pem }
    extended_protection: "off"
limits: { connections_per_ip: 100000 }
anonymous_autodiscover: "off"
locations:
  - { path: /, upstream: origin }
CONF

cat > "$work/nginx-proxy.conf" <<CONF
worker_processes 1;
master_process off;
pid $work/nginx-proxy.pid;
error_log $work/nginx-proxy-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  server_tokens off;
  keepalive_requests 1000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream origin { server 127.0.0.1:19543; keepalive 64; }
  server {
    listen 127.0.0.1:18543 ssl;
    ssl_certificate $certs/mail-ecdsa.pem;
    ssl_certificate_key $certs/mail-ecdsa.key;
$(nginx_proxy_settings "$certs" "max-age=63072000; includeSubDomains" \
    "proxy_hide_header Server; proxy_hide_header X-Powered-By; proxy_hide_header X-AspNet-Version;")
    location / { proxy_pass https://origin; }
  }
}
CONF

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
nginx -c "$work/nginx.conf" & pids+=($!)

# Makes N requests over CONNS keep-alive connections, all answered 200.
client() {
  /usr/bin/python3 - "$1" "$conns" "$certs/ca.pem" "${NEW_CONN:-0}" <<'PY'
import socket, ssl, sys
n, conns, ca, new_conn = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
ctx = ssl.create_default_context(cafile=ca)
session = None

def connect():
    global session
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 18543)), server_hostname="localhost",
                        session=session)
    return s, s.makefile("rb")

socks = [] if new_conn else [connect() for _ in range(conns)]
req = b"GET /owa/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n"
req += b"Connection: close\r\n\r\n" if new_conn else b"\r\n"
for i in range(n):
    s, f = connect() if new_conn else socks[i % conns]
    s.sendall(req)
    status = f.readline()
    assert b" 200 " in status, status
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
    if new_conn:
        f.read()  # to the close: the session ticket has arrived by then
        session = s.session
        s.close()
PY
}

# Runs the proxy under callgrind for N requests; prints the total instructions.
measure() {
  local n=$1 out="$work/callgrind.$1.out"
  local -a cmd=("$bin" run -c "$work/mailgate.yaml")
  [ "${PROXY:-mailgate}" = nginx ] && cmd=(nginx -c "$work/nginx-proxy.conf")
  valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" 2>"$work/valgrind.$n.log" &
  local mg=$!
  pids+=($mg)
  wait_port 18543 30 || { echo "the proxy did not start (see $work/valgrind.$n.log)" >&2; return 1; }
  client "$n" || { kill -TERM "$mg"; echo "the client failed" >&2; return 1; }
  kill -TERM "$mg"
  wait "$mg" || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$out"
}

ir1=$(measure "$n1") && ir2=$(measure "$n2") || exit 1
per=$(( (ir2 - ir1) / (n2 - n1) ))
echo "callgrind: $ir1 Ir for $n1 requests, $ir2 Ir for $n2 requests"
shape="keep-alive GET ${SIZE:-1024} bytes, $conns connections"
[ "${NEW_CONN:-0}" = 1 ] && shape="GET ${SIZE:-1024} bytes, a new resumed TLS connection each"
echo "${PROXY:-mailgate} instructions per request ($shape): $per"
[ "${KEEP:-0}" = 1 ] || rm -f "$work"/callgrind.*.out
