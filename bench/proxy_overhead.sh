#!/usr/bin/env bash
# Keep-alive requests/s and mailgate CPU per request: wrk through mailgate against wrk
# straight to the TLS origin (nginx returning a small body), in one run.
# mailgate (1 worker) is pinned to core 0; origin and wrk to core 1.
# Usage: bench/proxy_overhead.sh [seconds] [connections]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs=${1:-10}
conns=${2:-50}
work="$root/bench/work/overhead"
mkdir -p "$work"
command -v nginx >/dev/null || { apt-get update && apt-get install -y --no-install-recommends nginx-light; }
[ -x "$root/build/release/mailgate" ] || bash "$root/scripts/build.sh" mailgate
bash "$root/scripts/demo-certs.sh" "$work/certs" >/dev/null
certs="$work/certs"

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:19443 ssl;
    ssl_certificate $certs/origin.pem;
    ssl_certificate_key $certs/origin.key;
    keepalive_requests 1000000;
    location / { return 200 "hello from the origin\n"; }
  }
}
CONF
cat > "$work/mailgate.yaml" <<CONF
server: { workers: 1 }
log: { level: warn, access: "off" }
listeners:
  - name: bench
    address: "127.0.0.1:18443"
    tls:
      certificates:
        - { cert: $certs/mail-ecdsa.pem, key: $certs/mail-ecdsa.key }
upstreams:
  - name: origin
    servers: ["127.0.0.1:19443"]
    tls: { server_name: exchange.internal, ca: $certs/ca.pem }
locations:
  - { path: /, upstream: origin }
CONF

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 1 nginx -c "$work/nginx.conf" & pids+=($!)
taskset -c 0 "$root/build/release/mailgate" run -c "$work/mailgate.yaml" 2>"$work/mailgate.log" & mg=$!; pids+=($mg)
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_wrk() {  # url -> prints requests/s; sets REQS
  local out
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency "$1")
  REQS=$(echo "$out" | awk '/requests in/ {print $1}')
  RPS=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P50=$(echo "$out" | awk '$1=="50%" {print $2}')
  P99=$(echo "$out" | awk '$1=="99%" {print $2}')
  ERRS=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
}
hz=$(getconf CLK_TCK)
run_wrk https://127.0.0.1:19443/
echo "direct to origin : ${RPS} req/s  p50 ${P50}  p99 ${P99} ${ERRS}"
t0=$(cpu_ticks "$mg")
run_wrk https://127.0.0.1:18443/
t1=$(cpu_ticks "$mg")
us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$REQS" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
echo "through mailgate : ${RPS} req/s  p50 ${P50}  p99 ${P99} ${ERRS}"
echo "mailgate CPU     : ${us} us/request ($((t1 - t0)) ticks for ${REQS} requests)"
