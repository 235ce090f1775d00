#!/usr/bin/env bash
# mailgate against nginx and HAProxy, in one run, as in ../shared/PERF-BASELINE.md (issue 8).
#
#   bash bench/run.sh                       # 3 rounds of 10 s per scenario and proxy (~20 min)
#   ROUNDS=1 DURATION=5 bash bench/run.sh   # a quick look
#   FULL=1 bash bench/run.sh                # also scenario f (full handshakes, openssl s_time -new)
#   WORKERS=2 bash bench/run.sh             # throughput mode (needs more than 2 cores)
#
# Run as root on Debian 12. Installs what is missing (nginx, haproxy, wrk, python3) with
# apt-get, builds build/release/mailgate if it is missing, makes certificates, starts a TLS
# origin (nginx: /small = 1 KiB, /large.bin = 1 MiB, /upload takes POSTs) and a long-poll origin
# (bench/longpoll_origin.py), then runs each proxy in turn, freshly started for every scenario
# and round, with equivalent hardened configurations generated here: TLS 1.2+1.3 ECDHE+AEAD
# with server preference, ECDSA certificate, HSTS + the same header add/remove, X-Forwarded-For
# and -Proto, upstream TLS verified (CA + name, SNI exchange.internal) over a keep-alive pool of
# 64, streaming bodies (no buffering), no access log, WORKERS workers/threads.
#
# Scenarios (SCENARIOS="a b c d e g" by default, f added by FULL=1):
#   a keep-alive GET 1 KiB, 64 connections
#   b a new TLS connection per request (wrk -H 'Connection: close'; wrk resumes the session)
#   c keep-alive POST 64 KiB, 64 connections (bench/post64k.lua)
#   d keep-alive GET 1 MiB, 16 connections
#   e LONGPOLLS (5,000) held ActiveSync Pings (bench/longpoll_client.py): proxy RSS delta / held
#   f full handshakes: openssl s_time -new (one connection at a time)
#   g = a with a policy rule set: IP allow rule, report-mode UA rule, a 10,000-CIDR client_ip
#     block list that does not match, a UA allow rule (the request sends User-Agent: Site24x7);
#     nginx: allow/deny + geo + map/if; HAProxy: src ACLs + req.hdr regex ACLs
# Each: WARMUP s (2) of load, then DURATION s (10) measured; ROUNDS (3) rounds, medians.
#
# Cores: the proxy (all its processes and threads) gets cores 0..WORKERS-1 (taskset), wrk,
# openssl, the origins and this script the remaining cores. WORKERS=1 (default) on a 2-core
# machine = the method of PERF-BASELINE.md. WORKERS=N also sets mailgate's server.workers,
# nginx's worker_processes and HAProxy's nbthread to N, and wrk's threads to the number of
# load cores; it needs at least N+1 cores.
#
# Metrics: proxy CPU µs per request = utime+stime of the proxy's process tree from
# /proc/PID/stat over the measured run / completed requests (the primary figure); req/s;
# p50/p99 (wrk --latency); errors (non-2xx + socket errors; e: failed or early-answered polls);
# proxy core busy = CPU time / (load duration x WORKERS), "saturated" at >= 0.95.
#
# Output: a Markdown table on stdout and in bench/results/latest.md, all rounds and medians in
# bench/results/latest.json, the machine in bench/results/machine.txt. Working files and
# logs: bench/work/run/.
#
# Other knobs: PROXIES="mailgate nginx haproxy", SCENARIOS="a b ...", LONGPOLLS=5000,
# WARMUP=2 (0 = none), RESULTS=dir (default bench/results: the committed results). Smoke test
# (CI; about 30 s, leaves the committed results alone):
#   RESULTS=$(mktemp -d) ROUNDS=1 DURATION=2 WARMUP=0 SCENARIOS="a e g" LONGPOLLS=100 bash bench/run.sh
# Only 127.0.0.1 is used: proxies on 18443 (mailgate), 18444 (nginx), 18445 (HAProxy),
# origins on 19443 (TLS origin), 19444 (long-poll origin) and 19449 (its control port).
# Every process started here is stopped by its PID on exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench="$root/bench"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
WORKERS=${WORKERS:-1}
FULL=${FULL:-0}
LONGPOLLS=${LONGPOLLS:-5000}
PROXIES=${PROXIES:-mailgate nginx haproxy}
SCENARIOS=${SCENARIOS:-a b c d e g}
[ "$FULL" = 1 ] && [[ " $SCENARIOS " != *" f "* ]] && SCENARIOS="$SCENARIOS f"
RESULTS=${RESULTS:-$bench/results}
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
MG="${MAILGATE_BIN:-$root/build/release/mailgate}"
work="$bench/work/run"
certs="$work/certs"
logs="$work/logs"

say() { printf '[bench] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- what the run needs ---------------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
[ -x "$PY" ] || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
[ -x "$MG" ] || { say "building mailgate (release)"; bash "$root/scripts/build.sh" mailgate; }

ncpu=$(getconf _NPROCESSORS_ONLN)
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive number"
[ "$WORKERS" -lt "$ncpu" ] || die "WORKERS=$WORKERS leaves no core for the load generator ($ncpu cores)"
pcpus="0-$((WORKERS - 1))"
lcpus="$WORKERS-$((ncpu - 1))"
nload=$((ncpu - WORKERS))
taskset -pc "$lcpus" $$ >/dev/null  # this script and its helpers stay off the proxy's cores
hz=$(getconf CLK_TCK)

# 5,000 held long-polls: a client and an upstream connection each, in every process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * LONGPOLLS + 1000)) ]; then
  die "open files limit $(ulimit -n) is too low for LONGPOLLS=$LONGPOLLS (raise ulimit -Hn or lower LONGPOLLS)"
fi

# --- processes: every one started is stopped by PID --------------------------------------------
started=()
cleanup() {
  local p
  for p in "${started[@]}"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
  done
  # nginx workers of a proxy that was killed instead of stopped
  for p in ${PROXY_TREE:-}; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime of the proxy's processes, in ticks, into TICKS (no fork: called around the run)
proxy_ticks() {
  local p line f total=0
  for p in $PROXY_TREE; do
    read -r line 2>/dev/null <"/proc/$p/stat" || continue
    read -r -a f <<<"${line##*) }"
    total=$((total + f[11] + f[12]))
  done
  TICKS=$total
}

# --- certificates, content, configurations ---------------------------------------------------
rm -rf "$work/conf" "$logs"
mkdir -p "$work/conf" "$work/www" "$work/tmp" "$logs" "$RESULTS"
bash "$root/scripts/demo-certs.sh" "$certs" >/dev/null
(umask 077; cat "$certs/mail-ecdsa.pem" "$certs/mail-ecdsa.key" >"$certs/mail-ecdsa.haproxy.pem")
[ -f "$work/www/large.bin" ] || head -c 1048576 /dev/urandom >"$work/www/large.bin"
echo stored >"$work/www/stored.txt"
small=$(printf 'x%.0s' $(seq 1 1023))  # + "\n" = 1 KiB
"$PY" "$bench/blocklist.py" 10000 >"$work/conf/blocklist.txt"
sed 's/$/ 1;/' "$work/conf/blocklist.txt" >"$work/conf/blocklist.geo"
conf="$work/conf"

tls12_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
tls13_suites="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
hsts="max-age=63072000; includeSubDomains"
removed="Server X-Powered-By X-AspNet-Version X-AspNetMvc-Version X-OWA-Version X-FEServer X-BEServer X-CalculatedBETarget X-DiagInfo"
ua_allow="Site24x7"                 # the monitor of the blog's "monitor-only" rule
ua_report='MSIE [5-8]\.'            # report-mode rule: old browsers (does not match)

# The TLS origin: nginx on the load cores, keep-alive unlimited.
cat >"$conf/origin-nginx.conf" <<CONF
user root;
worker_processes $nload;
worker_rlimit_nofile $(ulimit -n);
pid $work/origin-nginx.pid;
error_log $logs/origin-nginx.log warn;
daemon off;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/tmp/o-body; proxy_temp_path $work/tmp/o-proxy;
  fastcgi_temp_path $work/tmp/o-fcgi; uwsgi_temp_path $work/tmp/o-uwsgi; scgi_temp_path $work/tmp/o-scgi;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  ssl_session_cache shared:ORIGIN:10m;
  server {
    listen 127.0.0.1:19443 ssl reuseport;
    ssl_certificate $certs/origin.pem;
    ssl_certificate_key $certs/origin.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_body_buffer_size 128k;
    client_max_body_size 2m;
    root $work/www;
    # Exchange-like headers that the proxies' header policy removes
    add_header X-Powered-By ASP.NET;
    add_header X-FEServer EXCH01;
    location = /small { default_type text/plain; return 200 "$small\n"; }
    location = /large.bin { default_type application/octet-stream; }
    # /upload reads the whole body before answering (as Exchange does): the mirror reads it
    # into the 128k buffer first, the static handler refuses POST, error_page answers 200.
    location /upload { mirror /sink; mirror_request_body on; error_page 405 =200 @stored; try_files /stored.txt =404; }
    location @stored { default_type text/plain; return 200 "stored\n"; }
    location = /sink { internal; return 204; }
    location / { default_type text/plain; return 200 "$small\n"; }
  }
}
CONF

# mailgate. $1 = 1: with the policy rule set of scenario g
mailgate_conf() {
  cat <<CONF
server: { workers: $WORKERS, drain_timeout: 1s }
log: { level: warn, access: "off" }
listeners:
  - name: bench
    address: "127.0.0.1:18443"
    tls:
      profile: intermediate
      certificates:
        - { cert: $certs/mail-ecdsa.pem, key: $certs/mail-ecdsa.key }
      hsts: { max_age: 2y, include_subdomains: true }
upstreams:
  - name: origin
    servers: ["127.0.0.1:19443"]
    tls: { server_name: exchange.internal, ca: $certs/ca.pem }
    pool: { max_idle: 64, idle_timeout: 60s }
    extended_protection: off
  - name: longpoll
    servers: ["127.0.0.1:19444"]
    tls: { server_name: exchange.internal, ca: $certs/ca.pem }
    pool: { max_idle: 64, idle_timeout: 60s }
    extended_protection: off
timeouts: { tls_handshake: 10s, request_header: 15s, idle: 60s,
            upstream_connect: 5s, upstream_response: 120s, send: 60s }
# One load generator address: per-address limits are not what is measured (nginx and
# HAProxy run without them here too).
limits: { connections: 1000000, connections_per_ip: 1000000 }
locations:
  - path: /Microsoft-Server-ActiveSync
    upstream: longpoll
    timeouts: { upstream_response: 3660s, idle: 3660s }
  - path: /
    upstream: origin
CONF
  [ "$1" = 1 ] || return 0
  cat <<CONF
    ip_restrictions: { allow: ["127.0.0.0/8", "::1/128"], action: forbidden }
    request_blocking:
      - name: legacy-browsers
        if: { user_agent: ['$ua_report'] }
        action: forbidden
        mode: report
      - name: blocklist
        if:
          client_ip:
CONF
  sed 's/^/            - /' "$conf/blocklist.txt"
  cat <<CONF
        action: forbidden
      - name: monitor-only
        if_not: { user_agent: ["$ua_allow"] }
        action: abort
CONF
}

nginx_conf() {
  local policy_http="" policy_loc=""
  if [ "$1" = 1 ]; then
    policy_http="geo \$bench_blocked { default 0; include $conf/blocklist.geo; }
  map \$http_user_agent \$bench_ua_ok { default 0; \"~*$ua_allow\" 1; }
  map \$http_user_agent \$bench_legacy { default \"\"; \"~*$ua_report\" legacy-browsers; }"
    # report mode has no nginx counterpart: the rule is evaluated into a variable, not enforced
    policy_loc="allow 127.0.0.0/8; allow ::1; deny all;
      set \$bench_report \$bench_legacy;
      if (\$bench_blocked) { return 403; }
      if (\$bench_ua_ok = 0) { return 444; }"
  fi
  local hide="" h
  for h in $removed; do hide+="proxy_hide_header $h; "; done
  cat <<CONF
user root;
worker_processes $WORKERS;
worker_rlimit_nofile $(ulimit -n);
pid $work/proxy-nginx.pid;
error_log $logs/proxy-nginx.log warn;
daemon off;
events { worker_connections 16384; }
http {
  access_log off;
  server_tokens off;
  client_body_temp_path $work/tmp/p-body; proxy_temp_path $work/tmp/p-proxy;
  fastcgi_temp_path $work/tmp/p-fcgi; uwsgi_temp_path $work/tmp/p-uwsgi; scgi_temp_path $work/tmp/p-scgi;
  keepalive_timeout 60s;
  keepalive_requests 100000000;
  client_header_timeout 15s;
  large_client_header_buffers 4 16k;
  client_max_body_size 150m;
  send_timeout 60s;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers $tls12_ciphers;
  ssl_conf_command Ciphersuites $tls13_suites;
  ssl_conf_command Options PrioritizeChaCha;
  ssl_prefer_server_ciphers on;
  ssl_ecdh_curve X25519:prime256v1:secp384r1;
  ssl_session_cache shared:BENCH:10m;
  upstream origin { server 127.0.0.1:19443; keepalive 64; keepalive_requests 100000000; keepalive_timeout 60s; }
  upstream longpoll { server 127.0.0.1:19444; keepalive 64; keepalive_timeout 60s; }
  $policy_http
  server {
    listen 127.0.0.1:18444 ssl reuseport;
    ssl_certificate $certs/mail-ecdsa.pem;
    ssl_certificate_key $certs/mail-ecdsa.key;
$(nginx_proxy_settings "$certs" "$hsts" "$hide")
    proxy_connect_timeout 5s;
    proxy_send_timeout 60s;
    proxy_read_timeout 120s;
    location /Microsoft-Server-ActiveSync {
      proxy_pass https://longpoll;
      proxy_read_timeout 3660s;
    }
    location / {
      $policy_loc
      proxy_pass https://origin;
    }
  }
}
CONF
}

haproxy_conf() {
  local h
  cat <<CONF
global
  nbthread $WORKERS
  maxconn $((LONGPOLLS + 4000))
  ssl-default-bind-ciphers $tls12_ciphers
  ssl-default-bind-ciphersuites $tls13_suites
  ssl-default-bind-curves X25519:P-256:P-384
  ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.2
  ssl-server-verify required
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 120s
  timeout http-request 15s
  timeout http-keep-alive 60s
  timeout tunnel 3660s
frontend bench
  bind 127.0.0.1:18445 ssl crt $certs/mail-ecdsa.haproxy.pem
  option forwardfor
  http-request set-header X-Forwarded-Proto https
CONF
  if [ "$1" = 1 ]; then
    cat <<CONF
  acl bench_local src 127.0.0.0/8 ::1
  http-request deny deny_status 403 if !bench_local
  acl bench_legacy req.hdr(user-agent) -m reg -i '$ua_report'
  http-request set-var(txn.bench_report) str(legacy-browsers) if bench_legacy
  acl bench_blocked src -f $conf/blocklist.txt
  http-request deny deny_status 403 if bench_blocked
  acl bench_ua_ok req.hdr(user-agent) -m reg -i $ua_allow
  http-request reject if !bench_ua_ok
CONF
  fi
  echo "  http-response set-header Strict-Transport-Security \"$hsts\""
  echo "  http-response set-header X-Content-Type-Options nosniff"
  echo "  http-response set-header X-Frame-Options SAMEORIGIN"
  echo "  http-response set-header Referrer-Policy strict-origin-when-cross-origin"
  for h in $removed; do echo "  http-response del-header $h"; done
  cat <<CONF
  use_backend longpoll if { path_beg -i /Microsoft-Server-ActiveSync }
  default_backend origin
backend origin
  http-reuse always
  server origin 127.0.0.1:19443 ssl verify required ca-file $certs/ca.pem sni str(exchange.internal) verifyhost exchange.internal pool-max-conn 64
backend longpoll
  http-reuse always
  timeout server 3660s
  server longpoll 127.0.0.1:19444 ssl verify required ca-file $certs/ca.pem sni str(exchange.internal) verifyhost exchange.internal pool-max-conn 64
CONF
}

for policy in 0 1; do
  mailgate_conf $policy >"$conf/mailgate-$policy.yaml"
  nginx_conf $policy >"$conf/nginx-$policy.conf"
  haproxy_conf $policy >"$conf/haproxy-$policy.cfg"
  "$MG" check -c "$conf/mailgate-$policy.yaml" >"$logs/check-mailgate-$policy.log" 2>&1 ||
    { cat "$logs/check-mailgate-$policy.log" >&2; die "mailgate rejects $conf/mailgate-$policy.yaml"; }
  nginx -t -q -e "$logs/check-nginx-$policy.log" -c "$conf/nginx-$policy.conf" 2>"$logs/check-nginx-$policy.err" ||
    { cat "$logs/check-nginx-$policy".* >&2; die "nginx rejects $conf/nginx-$policy.conf"; }
  haproxy -c -q -f "$conf/haproxy-$policy.cfg" >"$logs/check-haproxy-$policy.log" 2>&1 ||
    { cat "$logs/check-haproxy-$policy.log" >&2; die "haproxy rejects $conf/haproxy-$policy.cfg"; }
done

# --- origins ---------------------------------------------------------------------------------
taskset -c "$lcpus" nginx -e "$logs/origin-nginx.log" -c "$conf/origin-nginx.conf" &
origin_pid=$!; started+=("$origin_pid")
taskset -c "$lcpus" "$PY" "$bench/longpoll_origin.py" --listen 127.0.0.1:19444 --control 127.0.0.1:19449 \
  --cert "$certs/origin.pem" --key "$certs/origin.key" 2>"$logs/longpoll-origin.log" &
lp_pid=$!; started+=("$lp_pid")
wait_port 19443 10 || die "the TLS origin did not start ($logs/origin-nginx.log)"
wait_port 19449 10 || die "the long-poll origin did not start ($logs/longpoll-origin.log)"

# --- proxies ---------------------------------------------------------------------------------
PROXY_PID="" PROXY_TREE="" PROXY_PORT=""
start_proxy() {  # name policy(0|1)
  local name=$1 policy=$2 i log="$logs/$1.log"
  case $name in
    mailgate)
      PROXY_PORT=18443
      taskset -c "$pcpus" "$MG" run -c "$conf/mailgate-$policy.yaml" >>"$log" 2>&1 &
      ;;
    nginx)
      PROXY_PORT=18444
      taskset -c "$pcpus" nginx -e "$log" -c "$conf/nginx-$policy.conf" >>"$logs/nginx.stderr" 2>&1 &
      ;;
    haproxy)
      PROXY_PORT=18445
      taskset -c "$pcpus" haproxy -db -f "$conf/haproxy-$policy.cfg" >>"$log" 2>&1 &
      ;;
    *) die "unknown proxy $name" ;;
  esac
  PROXY_PID=$!; started+=("$PROXY_PID")
  local want=1; [ "$name" = nginx ] && want=$((WORKERS + 1))  # master + workers
  for ((i = 0; i < 150; i++)); do
    kill -0 "$PROXY_PID" 2>/dev/null || die "$name exited at start (see $log)"
    PROXY_TREE=$("$PY" "$bench/procstat.py" pids "$PROXY_PID" | tr '\n' ' ')
    if [ "$(wc -w <<<"$PROXY_TREE")" -ge "$want" ]; then
      # (mailgate prints "listening on ..." at level info; the bench runs it at warn)
      wait_port "$PROXY_PORT" 1 && return 0
    fi
    sleep 0.1
  done
  die "$name did not start listening on $PROXY_PORT (see $log)"
}

stop_proxy() {  # name
  local sig=TERM i p
  [ "$1" = mailgate ] && sig=INT  # mailgate: SIGTERM drains, SIGINT exits at once
  kill -"$sig" "$PROXY_PID" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  for p in $PROXY_TREE; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$PROXY_PID" 2>/dev/null || true
  forget "$PROXY_PID"
  PROXY_PID="" PROXY_TREE=""
}

# Once per proxy and configuration: the response carries the header policy, the request went
# through the verified upstream, and (policy) a client without the allowed User-Agent is refused.
declare -A checked=()
check_proxy() {  # name policy
  [ -z "${checked[$1-$2]:-}" ] || return 0
  checked[$1-$2]=1
  local url head code
  local -a curl=(curl -sS --max-time 5 --cacert "$certs/ca.pem" --resolve "localhost:$PROXY_PORT:127.0.0.1")
  url="https://localhost:$PROXY_PORT/small"
  head=$("${curl[@]}" -D - -o /dev/null -A "$ua_allow (check)" "$url" 2>&1 | tr -d '\r') || true
  code=$(awk 'NR == 1 { print $2 }' <<<"$head")
  [ "$code" = 200 ] || die "$1: GET /small answered '${head%%$'\n'*}' (see $logs/$1.log)"
  grep -qi '^strict-transport-security: max-age=63072000; includeSubDomains' <<<"$head" || die "$1: no HSTS header"
  grep -qi '^x-content-type-options: nosniff' <<<"$head" || die "$1: no X-Content-Type-Options"
  ! grep -qi '^x-powered-by\|^x-feserver' <<<"$head" || die "$1: X-Powered-By / X-FEServer not removed"
  if [ "$2" = 1 ]; then
    code=$("${curl[@]}" -o /dev/null -w '%{http_code}' -A "Mozilla/5.0" "$url" 2>/dev/null) || true
    [ "$code" != 200 ] || die "$1: the policy let a request without the allowed User-Agent through"
  fi
}

run_load() {  # scenario proxy round -> appends to results.jsonl
  local s=$1 p=$2 r=$3 url="https://127.0.0.1:$PROXY_PORT" out="$logs/$1-$2-$3.out" kind=wrk
  local -a args=()
  case $s in
    a) args=(-c64 "$url/small") ;;
    b) args=(-c64 -H "Connection: close" "$url/small") ;;
    c) args=(-c64 -s "$bench/post64k.lua" "$url/upload") ;;
    d) args=(-c16 "$url/large.bin") ;;
    g) args=(-c64 -H "User-Agent: $ua_allow (benchmark)" "$url/small") ;;
    f) kind=stime ;;
  esac
  if [ $kind = wrk ]; then
    [ "$WARMUP" = 0 ] || taskset -c "$lcpus" wrk -t"$nload" -d"${WARMUP}s" "${args[@]}" >/dev/null
    proxy_ticks; local t0=$TICKS w0=$EPOCHREALTIME
    taskset -c "$lcpus" wrk -t"$nload" -d"${DURATION}s" --latency --timeout 5s "${args[@]}" >"$out" 2>&1 || true
  else
    local st=(openssl s_time -connect "127.0.0.1:$PROXY_PORT" -new -www /small -CAfile "$certs/ca.pem")
    [ "$WARMUP" = 0 ] || taskset -c "$lcpus" "${st[@]}" -time "$WARMUP" >/dev/null 2>&1 || true
    proxy_ticks; local t0=$TICKS w0=$EPOCHREALTIME
    taskset -c "$lcpus" "${st[@]}" -time "$DURATION" >"$out" 2>&1 || true
  fi
  proxy_ticks; local t1=$TICKS w1=$EPOCHREALTIME
  "$PY" "$bench/report.py" record --results "$work/results.jsonl" --scenario "$s" --proxy "$p" \
    --round "$r" --workers "$WORKERS" --cpu-ticks $((t1 - t0)) --hz "$hz" \
    --wall "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')" --"$kind" "$out"
}

run_longpoll() {  # proxy round
  local out="$logs/e-$1-$2.out"
  taskset -c "$lcpus" "$PY" "$bench/longpoll_client.py" --connect "127.0.0.1:$PROXY_PORT" \
    --control 127.0.0.1:19449 --pid "$PROXY_PID" --ca "$certs/ca.pem" --n "$LONGPOLLS" \
    --hold "$DURATION" >"$out" 2>"$logs/e-$1-$2.err" &
  local cpid=$!; started+=("$cpid")
  wait "$cpid" || true
  forget "$cpid"
  "$PY" "$bench/report.py" record --results "$work/results.jsonl" --scenario e --proxy "$1" \
    --round "$2" --workers "$WORKERS" --n "$LONGPOLLS" --longpoll "$out"
}

# --- the machine -----------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cores: $ncpu (proxy on $pcpus, load generator and origins on $lcpus)"
  echo "kernel: $(uname -r)"
  echo "os: Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
  echo "mailgate: $("$MG" version 2>&1 | head -1), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  for pkg in nginx haproxy wrk openssl libssl3 python3; do
    echo "$pkg: $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo '?')"
  done
  echo "settings: ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP WORKERS=$WORKERS LONGPOLLS=$LONGPOLLS SCENARIOS=\"$SCENARIOS\" PROXIES=\"$PROXIES\""
} >"$RESULTS/machine.txt"

# --- the run ---------------------------------------------------------------------------------
: >"$work/results.jsonl"
read -r -a proxies <<<"$PROXIES"
say "proxy cores $pcpus, load cores $lcpus; rounds $ROUNDS x ${DURATION}s (+${WARMUP}s warm-up); scenarios $SCENARIOS"
for ((round = 1; round <= ROUNDS; round++)); do
  for s in $SCENARIOS; do
    # rotate the order of the proxies from round to round
    for ((k = 0; k < ${#proxies[@]}; k++)); do
      p=${proxies[$(((k + round - 1) % ${#proxies[@]}))]}
      policy=0; [ "$s" = g ] && policy=1
      say "round $round/$ROUNDS scenario $s: $p"
      start_proxy "$p" "$policy"
      check_proxy "$p" "$policy"
      if [ "$s" = e ]; then run_longpoll "$p" "$round"; else run_load "$s" "$p" "$round"; fi
      stop_proxy "$p"
    done
  done
done

settings=$(printf '{"rounds": %s, "duration_s": %s, "warmup_s": %s, "workers": %s, "longpolls": %s, "proxy_cores": "%s", "load_cores": "%s"}' \
  "$ROUNDS" "$DURATION" "$WARMUP" "$WORKERS" "$LONGPOLLS" "$pcpus" "$lcpus")
"$PY" "$bench/report.py" summarize --results "$work/results.jsonl" --md "$RESULTS/latest.md" \
  --json "$RESULTS/latest.json" --settings "$settings"
say "written: $RESULTS/latest.md, $RESULTS/latest.json, $RESULTS/machine.txt (logs in $logs)"
