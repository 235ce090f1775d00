#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build/fuzz and runs each for the given
# number of seconds (default 180; 0 skips). Exits non-zero on any crash, leak, UB report,
# timeout or out-of-memory; the failing input is kept under build/fuzz/artifacts/.
# Seeds: tests/fuzz/corpus/<target>/ (read only); what the fuzzer finds goes to
# build/fuzz/corpus/<target>/, which later runs start from.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-180}
if [ "$seconds" = 0 ]; then echo "fuzz: skipped (0 seconds)"; exit 0; fi
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (scripts/install-deps.sh)" >&2; exit 1; }

build=build/fuzz
# Configured once, as a project of its own (tests/fuzz/CMakeLists.txt): clang, no other library.
if ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD/tests/fuzz" "$build/CMakeCache.txt" 2>/dev/null; then
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
  cmake -S tests/fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "${JOBS:-1}" --target eas_query_fuzz

status=0
# shellcheck disable=SC2043  # one target so far; add more here
for target in eas_query_fuzz; do
  name=${target%_fuzz}
  corpus=$build/corpus/$name
  artifacts=$build/artifacts/$name/
  log=$build/$name.log
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"* # only this run's findings
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
  echo "=== fuzz: $target for ${seconds}s"
  rc=0
  # Leaks are errors here (the decoder touches no OpenSSL); UB aborts (-fno-sanitize-recover).
  ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" \
      "$corpus" "tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" || true
  grep -E '^stat::' "$log" || true
  echo "corpus: $(find "$corpus" -type f | wc -l) files in $corpus"
  if [ "$rc" != 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" ||
     [ -n "$(ls -A "$artifacts")" ]; then
    echo "=== fuzz: $target FAILED (exit $rc); log: $log" >&2
    sed -nE '/ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:/,$p' "$log" | head -80 >&2
    for f in "$artifacts"*; do
      [ -f "$f" ] || continue
      echo "--- $f (hex):" >&2
      od -An -tx1 -v "$f" | head -40 >&2
    done
    status=1
  fi
done
exit $status
