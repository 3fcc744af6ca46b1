#!/usr/bin/env bash
# Run libFuzzer harnesses for a bounded time each (`make fuzz`, .ci/run).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS HARNESS...
#
# Each harness fuzzes for SECONDS with its corpus in BUILD_DIR/fuzz-corpus/<harness> (kept between runs),
# started from tests/fuzz/seeds/<harness> and tests/fuzz/regress/<harness>. A finding (crash, sanitizer
# report, leak, timeout, out-of-memory, violated property) is written to BUILD_DIR/fuzz-artifacts/<harness>/
# and fails the run: fix it in the library, then copy the artifact into tests/fuzz/regress/<harness>/ so that
# the fuzz_regress_<harness> ctest replays it on every build. Extra libFuzzer flags: $FUZZ_FLAGS; the
# per-input timeout (s): $FUZZ_TIMEOUT (default 20; raise it on a loaded machine).
set -uo pipefail
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
failed=()
for h in "$@"; do
  bin=$build/bin/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (build with -DSI_FUZZ=ON)" >&2; exit 2; }
  corpus=$build/fuzz-corpus/$h art=$build/fuzz-artifacts/$h
  mkdir -p "$corpus" "$art"
  dict=()
  [ -f "$src/$h.dict" ] && dict=(-dict="$src/$h.dict")
  echo "fuzz: $h for ${seconds}s"
  # allocator_may_return_null: an allocation the library refuses is its named error, not an ASan report;
  # -malloc_limit_mb sits above the harnesses' 256 MiB cap on one allocation (fuzz_common.h)
  ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-20}" -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" ${FUZZ_FLAGS:-} \
      "$corpus" "$src/seeds/$h" "$src/regress/$h" 2>&1 | grep -v '^#[0-9]*.*\(NEW\|REDUCE\|pulse\)' | tail -25
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    echo "fuzz: $h FOUND A PROBLEM (exit $rc); inputs in $art:" >&2
    ls -l "$art" >&2
    failed+=("$h")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings"
