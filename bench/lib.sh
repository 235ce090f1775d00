# Shell helpers shared by the benchmark scripts (sourced; `started` is the array of the
# PIDs a script started and stops on exit).

forget() { local p=$1 i; for i in "${!started[@]}"; do [ "${started[$i]}" = "$p" ] && unset 'started[i]'; done; return 0; }

wait_port() {  # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
