#!/usr/bin/env bash
# Added latency per request of the Redis limit store, against the local store.
#
#   bash bench/store_latency.sh                 # 10 s measured per store
#   DURATION=30 MAILGATE_BIN=/tmp/mailgate bash bench/store_latency.sh
#
# Starts the TLS demo origin (examples/demo/origin.py, /echo; with TCP_NODELAY, see below) and
# a redis-server on free loopback ports, then mailgate twice on one configuration that differs
# only in dynamic_ip_restrictions.store: `local`, then `redis://127.0.0.1:P/0`. The limit
# (max_requests 100,000,000 per 1s, connections_per_ip 100,000) never denies anything, but every
# request still makes one store decision (with Redis: one Lua script run, pipelined by the
# store's thread). 1 worker, access log off, log level warn. Each run: WARMUP s (2) of load,
# then `wrk -t1 -c16 -d${DURATION}s --latency` on /echo. Prints requests/s, mean, p50, p90 and
# p99 per store, mailgate's CPU µs per request (utime+stime of its process over the measured
# run / requests) and core 0 busy, and the difference redis - local in p50 and mean latency.
#
# Checks (the script fails otherwise): both configurations pass `mailgate check` and have
# `access: "off"`; every request answered 2xx without socket errors; from /metrics on the
# admin port, the Redis run made store round trips (mailgate_store_round_trips_total > 0)
# with 0 mailgate_store_unanswered_total and 0 mailgate_store_errors_total, and no request was
# denied by dynamic_ip_restrictions in either run.
#
# Cores (2-core machine): mailgate (all its threads, the Redis store's thread too) on core 0;
# wrk, the origin, redis-server and this script on core 1. Knobs: DURATION (10), WARMUP (2),
# CONNECTIONS (16), MAILGATE_BIN (build/release/mailgate; never built here). Core 1 is the
# busier one here (the origin is Python), so redis-server's own CPU there (printed too) slows
# the origin and wrk as well: at 16 connections part of the added latency is that, not the
# round trip. CONNECTIONS=1 gives the unloaded round trip.
# Working files and logs: bench/work/store/. Only 127.0.0.1; every process started here is
# stopped by its PID on exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-16}
MG="${MAILGATE_BIN:-$root/build/release/mailgate}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
work="$root/bench/work/store"
certs="$work/certs"
logs="$work/logs"

say() { printf '[store-latency] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -x "$MG" ] || die "no mailgate binary at $MG (build it, or set MAILGATE_BIN)"
for tool in wrk redis-server taskset curl openssl; do
  command -v "$tool" >/dev/null || die "$tool is missing (bash scripts/install-deps.sh)"
done
[ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] || die "needs 2 cores (mailgate on core 0, the load on core 1)"
taskset -pc 1 $$ >/dev/null  # this script and its helpers stay off mailgate's core

# --- processes: every one started is stopped by PID --------------------------------------------
started=()
cleanup() {
  local p
  for p in "${started[@]}"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() {  # n -> n distinct loopback ports free right now
  "$PY" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

cpu_ticks() {  # pid -> utime+stime of the process, all its threads, in clock ticks
  local line f
  read -r line <"/proc/$1/stat"
  read -r -a f <<<"${line##*) }"
  echo $((f[11] + f[12]))
}
hz=$(getconf CLK_TCK)

redis_ping() (  # port (a subshell: the descriptor closes with it)
  reply=""
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  [ "${reply%$'\r'}" = "+PONG" ]
)

metric() {  # admin-port name labels -> value (0 when absent)
  local want=$2
  [ -z "$3" ] || want="$2{$3}"
  curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" |
    awk -v want="$want" '$1 == want { print $2; found = 1 } END { if (!found) print 0 }'
}

metric_sum() {  # admin-port name -> sum over all label sets
  curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" |
    awk -v name="$2" 'index($1, name "{") == 1 || $1 == name { s += $2 } END { printf "%d\n", s }'
}

# --- setup -------------------------------------------------------------------------------------
rm -rf "$logs" "$work/conf"
mkdir -p "$logs" "$work/conf" "$work/redis"
bash "$root/scripts/demo-certs.sh" "$certs" >/dev/null
read -r origin_port redis_port mg_port admin_port <<<"$(free_ports 4)"

# The demo origin as it is, but with TCP_NODELAY on its sockets: it writes a response's head
# and body in two sends, and without it each keep-alive response waits ~40 ms for the
# proxy's delayed ACK (Nagle), which would bury the microseconds measured here.
origin_nodelay='
import importlib.util, socket, sys
spec = importlib.util.spec_from_file_location("demo_origin", sys.argv[1])
origin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(origin)
finish = origin._Server.finish_request
def finish_request(self, request, address):
    request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return finish(self, request, address)
origin._Server.finish_request = finish_request
sys.exit(origin.main(sys.argv[2:]))
'
taskset -c 1 "$PY" -c "$origin_nodelay" "$root/examples/demo/origin.py" --listen "127.0.0.1:$origin_port" \
  --cert "$certs/origin.pem" --key "$certs/origin.key" --quiet 2>"$logs/origin.log" &
started+=($!)
taskset -c 1 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work/redis" >"$logs/redis.log" 2>&1 &
redis_pid=$!; started+=("$redis_pid")
wait_port "$origin_port" 10 || die "the origin did not start ($logs/origin.log)"
for ((i = 0; i < 100; i++)); do redis_ping "$redis_port" 2>/dev/null && break; sleep 0.1; done
redis_ping "$redis_port" || die "redis-server did not answer PING ($logs/redis.log)"

mailgate_conf() {  # store
  cat <<CONF
server: { workers: 1, admin: "127.0.0.1:$admin_port", drain_timeout: 1s }
log: { level: warn, access: "off" }
listeners:
  - name: bench
    address: "127.0.0.1:$mg_port"
    tls:
      profile: intermediate
      certificates:
        - { cert: $certs/mail-ecdsa.pem, key: $certs/mail-ecdsa.key }
upstreams:
  - name: origin
    servers: ["127.0.0.1:$origin_port"]
    tls: { server_name: exchange.internal, ca: $certs/ca.pem }
    pool: { max_idle: 64, idle_timeout: 60s }
    extended_protection: off
limits: { connections_per_ip: 100000 }
dynamic_ip_restrictions:
  max_requests: { count: 100000000, per: 1s }
  store: "$1"
locations:
  - path: /
    upstream: origin
CONF
}

stores=(local "redis://127.0.0.1:$redis_port/0")
names=(local redis)
for k in 0 1; do
  conf="$work/conf/mailgate-${names[$k]}.yaml"
  mailgate_conf "${stores[$k]}" >"$conf"
  grep -q '^log: {.*access: "off"' "$conf" || die "$conf: the access log is not off"
  "$MG" check -c "$conf" >"$logs/check-${names[$k]}.log" 2>&1 ||
    { cat "$logs/check-${names[$k]}.log" >&2; die "mailgate rejects $conf"; }
done

# --- runs --------------------------------------------------------------------------------------
url="https://127.0.0.1:$mg_port/echo"
wrk_args=(-t1 -c"$CONNECTIONS" --timeout 5s)
say "mailgate on core 0 (1 worker); wrk, origin (:$origin_port), redis (:$redis_port) on core 1"
say "${WARMUP}s warm-up + ${DURATION}s of wrk -t1 -c$CONNECTIONS --latency $url per store"
for k in 0 1; do
  n=${names[$k]}
  taskset -c 0 "$MG" run -c "$work/conf/mailgate-$n.yaml" >"$logs/mailgate-$n.log" 2>&1 &
  mg_pid=$!; started+=("$mg_pid")
  wait_port "$mg_port" 10 || die "mailgate ($n) did not listen on $mg_port ($logs/mailgate-$n.log)"
  wait_port "$admin_port" 5 || die "mailgate ($n): no admin endpoint on $admin_port"
  code=$(curl -sS --max-time 5 --cacert "$certs/ca.pem" --resolve "localhost:$mg_port:127.0.0.1" \
    -o /dev/null -w '%{http_code}' "https://localhost:$mg_port/echo") || true
  [ "$code" = 200 ] || die "mailgate ($n): GET /echo answered '$code' ($logs/mailgate-$n.log)"
  [ "$WARMUP" = 0 ] || taskset -c 1 wrk "${wrk_args[@]}" -d"${WARMUP}s" "$url" >/dev/null
  rt0=$(metric "$admin_port" mailgate_store_round_trips_total 'store="redis"')
  req0=$(metric "$admin_port" mailgate_requests_total "")
  ticks0=$(cpu_ticks "$mg_pid") rticks0=$(cpu_ticks "$redis_pid")
  taskset -c 1 wrk "${wrk_args[@]}" -d"${DURATION}s" --latency "$url" >"$logs/wrk-$n.out" 2>&1 ||
    { cat "$logs/wrk-$n.out" >&2; die "wrk failed against $n"; }
  ticks1=$(cpu_ticks "$mg_pid") rticks1=$(cpu_ticks "$redis_pid")
  rt1=$(metric "$admin_port" mailgate_store_round_trips_total 'store="redis"')
  req1=$(metric "$admin_port" mailgate_requests_total "")
  unanswered=$(metric_sum "$admin_port" mailgate_store_unanswered_total)
  store_errors=$(metric "$admin_port" mailgate_store_errors_total 'store="redis"')
  denied=$(metric_sum "$admin_port" mailgate_dynamic_ip_decisions_total)
  store_up=$(metric "$admin_port" mailgate_store_up 'store="redis"')
  printf '%s round_trips=%s requests=%s unanswered=%s store_errors=%s denied=%s store_up=%s cpu_s=%s redis_cpu_s=%s\n' \
    "$n" "$((rt1 - rt0))" "$((req1 - req0))" "$unanswered" "$store_errors" "$denied" "$store_up" \
    "$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" 'BEGIN { print t / hz }')" \
    "$(awk -v t=$((rticks1 - rticks0)) -v hz="$hz" 'BEGIN { print t / hz }')" \
    >"$logs/metrics-$n.txt"
  kill -INT "$mg_pid" 2>/dev/null || true  # SIGINT: exits at once (SIGTERM drains)
  wait "$mg_pid" 2>/dev/null || true
  forget "$mg_pid"
  ! grep -q 'Non-2xx\|Socket errors' "$logs/wrk-$n.out" ||
    { cat "$logs/wrk-$n.out" >&2; die "$n: wrk saw errors or non-2xx answers"; }
  [ "$denied" = 0 ] || die "$n: dynamic_ip_restrictions denied $denied requests"
  [ "$unanswered" = 0 ] || die "$n: $unanswered store decisions unanswered (mailgate_store_unanswered_total)"
  if [ "$n" = redis ]; then
    [ "$((rt1 - rt0))" -gt 0 ] || die "redis: no store round trips during the run"
    [ "$store_errors" = 0 ] || die "redis: mailgate_store_errors_total = $store_errors"
    [ "$store_up" = 1 ] || die "redis: mailgate_store_up = $store_up"
  else
    # the local run must not have a Redis store at all
    [ "$rt1" = 0 ] || die "local: a Redis store is configured"
  fi
done

# --- the table ---------------------------------------------------------------------------------
"$PY" - "$logs/wrk-local.out" "$logs/wrk-redis.out" "$logs/metrics-local.txt" "$logs/metrics-redis.txt" <<'PY'
import re, sys

def secs(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]

def parse(path):
    text = open(path).read()
    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
           "requests": int(re.search(r"(\d+) requests in", text).group(1)),
           "duration": secs(re.search(r"requests in ([\d.]+(?:us|ms|s|m))", text).group(1)),
           "mean": secs(re.search(r"^\s+Latency\s+(\S+)", text, re.M).group(1))}
    for p in ("50", "90", "99"):
        out["p" + p] = secs(re.search(rf"^\s+{p}%\s+(\S+)", text, re.M).group(1))
    return out

def metrics(path):
    words = open(path).read().split()
    return dict(w.split("=", 1) for w in words[1:])

local, redis = parse(sys.argv[1]), parse(sys.argv[2])
ml, mr = metrics(sys.argv[3]), metrics(sys.argv[4])
ms = lambda s: f"{s * 1e3:.3f}"
print()
print("| store | requests/s | mean ms | p50 ms | p90 ms | p99 ms | mailgate CPU µs/req | core 0 busy |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, r, m in (("local", local, ml), ("redis", redis, mr)):
    cpu = float(m["cpu_s"])
    r["cpu_us"] = cpu * 1e6 / r["requests"]
    print(f"| {name} | {r['rps']:,.0f} | {ms(r['mean'])} | {ms(r['p50'])} | {ms(r['p90'])} | "
          f"{ms(r['p99'])} | {r['cpu_us']:.1f} | {cpu / r['duration']:.2f} |")
print()
for key, label in (("p50", "p50"), ("mean", "mean")):
    d = redis[key] - local[key]
    print(f"redis - local, {label}: {d * 1e3:+.3f} ms = {d * 1e6:+.0f} µs per request")
print(f"requests/s: redis / local = {redis['rps'] / local['rps']:.3f}; mailgate CPU per request: "
      f"{redis['cpu_us'] - local['cpu_us']:+.1f} µs")
rt, n = int(mr["round_trips"]), int(mr["requests"])
print(f"redis run: {rt:,} store round trips for {n:,} requests "
      f"({n / rt if rt else 0:.2f} decisions per round trip), "
      f"unanswered {mr['unanswered']}, store errors {mr['store_errors']}; "
      f"redis-server CPU {float(mr['redis_cpu_s']) * 1e6 / redis['requests']:.1f} µs/request "
      f"(on core 1, with wrk and the origin); "
      f"denied: local {ml['denied']}, redis {mr['denied']}")
PY
say "logs and wrk outputs in $logs"
