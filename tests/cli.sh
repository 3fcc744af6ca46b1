#!/usr/bin/env bash
# The command line's contracts (each check prints what it ran; the first failure names itself):
#   --version and COMMAND --help; config --list lists every key and the README's table is the generated one;
#   run takes every configuration key as a flag and refuses bad values by name;
#   run --requests M: requests that end on different devices after a failover agree (within the tolerance
#   relative to the output's scale) and exit 0, while genuinely different outputs (NaN) exit 1;
#   check-onnx: more than 256 paths are all run; a folder without a case, and a --filter that selects no
#   case, are errors.
# usage: cli.sh SAFEINFER SOURCE_DIR WORKDIR
set -u
bin=$1 src=$2 work=$3
model=$src/examples/tiny_cnn.onnx
rm -rf "$work" && mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect RC CMD...: run CMD, keep its output in $out, check its exit status
expect() {
  local want=$1; shift
  out=$("$@" 2>&1); local rc=$?
  [ "$rc" = "$want" ] || fail "exit $rc (expected $want): $*"$'\n'"$out"
}

# --- version and help ---------------------------------------------------------------------------------------
hdr=$(sed -n 's/^#define SI_VERSION_STRING "\(.*\)"/\1/p' "$src/include/safeinfer.h")
expect 0 "$bin" --version
echo "$out" | grep -q "^safeinfer $hdr (library $hdr)$" || fail "--version: '$out' (header: $hdr)"
for cmd in run inspect check-onnx compare bench config; do
  expect 0 "$bin" "$cmd" --help
  echo "$out" | grep -q "^usage: safeinfer $cmd " || fail "$cmd --help: no usage line"
  [ "$(echo "$out" | wc -l)" -ge 3 ] || fail "$cmd --help: no details"
done
expect 0 "$bin" help run
echo "$out" | grep -q -- "--infer-timeout-ms 0..86400000" || fail "run's help does not list the configuration flags"
expect 2 "$bin" frobnicate
echo "$out" | grep -q "unknown command 'frobnicate'" || fail "unknown command message"

# --- configuration keys: the library's table, the CLI flags and the README ---------------------------------
expect 0 "$bin" config --list
for key in devices threads faults retries infer_timeout_ms compile_timeout_ms standby failback_ms check_outputs recovery_ms strict loop_max_iterations adaptive_threads; do
  flag=--${key//_/-}
  echo "$out" | grep -q -- "^  $flag " || fail "config --list lacks $flag"
done
expect 0 "$bin" config --list --markdown
echo "$out" > "$work/table.md"
sed -n '/^<!-- config-table begin/,/^<!-- config-table end/p' "$src/README.md" | sed '1d;$d' > "$work/readme-table.md"
if ! diff -u "$work/readme-table.md" "$work/table.md" > "$work/table.diff"; then
  fail "README.md's configuration table is not \`safeinfer config --list --markdown\` (update it with that command):"
  cat "$work/table.diff"
fi
# every key is a flag of run, checked by the library: a bad value is refused by name before anything runs
expect 4 "$bin" run "$model" --shape batch=1 --adaptive-threads maybe
echo "$out" | grep -q "adaptive_threads: 'maybe' is not on or off" || fail "--adaptive-threads maybe: $out"
expect 4 "$bin" run "$model" --shape batch=1 --threads " 5"
echo "$out" | grep -q "threads: ' 5' is not a whole number" || fail "--threads ' 5': $out"
expect 4 "$bin" run "$model" --shape batch=1 --devices REF,REF
echo "$out" | grep -q "REF is listed twice" || fail "--devices REF,REF: $out"
expect 0 "$bin" run "$model" --shape batch=1 --devices REF --retries 2 --standby on --check-outputs nan --strict off

# --- run --requests: a failover between requests is not a difference -------------------------------------
# Two requests on CPU,REF with CPU failing at its 2nd inference: one request's outputs come from CPU, the
# other's from REF (a failover re-runs the inference there). They differ in the last bits, not more.
expect 0 "$bin" run "$model" --shape batch=2 --devices CPU,REF --requests 2 --faults CPU.infer=2
echo "$out" | grep -q "failover .* from CPU to REF" || fail "no failover CPU -> REF: $out"
echo "$out" | grep -q "probs: 2 requests agree: largest difference" || fail "no agreement line: $out"
echo "$out" | grep "requests agree"
# The same on OCL,CPU when there is an OpenCL device (PoCL on machines without a GPU).
expect 0 "$bin" run "$model" --shape batch=2 --devices OCL,CPU --requests 2 --faults OCL.infer=2
if echo "$out" | grep -q "from OCL to CPU"; then echo "$out" | grep "requests agree"; else echo "(no OpenCL device: OCL,CPU not checked)"; fi
# Outputs that really differ (NaN from a faulty device, no NaN check) are still reported, exit status 1.
expect 1 "$bin" run "$model" --shape batch=2 --devices CPU,REF --requests 2 --faults CPU.infer=2:nan
echo "$out" | grep -q "output 'probs' of request [01] differs from request 0's" || fail "NaN outputs not reported: $out"
expect 2 "$bin" run "$model" --shape batch=2 --requests 2 --rtol abc
echo "$out" | grep -q -- "--rtol needs a number" || fail "--rtol abc: $out"

# --- check-onnx ---------------------------------------------------------------------------------------------
case_dir=$src/tests/data/case_small
args=()
for i in $(seq 300); do args+=("$case_dir"); done
expect 0 "$bin" check-onnx "${args[@]}" --devices REF
echo "$out" | tail -n 1 | grep -q "^300 passed, 0 failed, 0 skipped$" || fail "300 paths: $(echo "$out" | tail -n 1)"
mkdir -p "$work/empty" "$work/no-cases/sub"
echo "not a model" > "$work/no-cases/readme.txt"
for d in "$work/empty" "$work/no-cases"; do
  expect 1 "$bin" check-onnx "$d" --devices REF
  echo "$out" | grep -q "no test case in '$d'" || fail "check-onnx on a folder without cases: $out"
done
expect 1 "$bin" check-onnx "$case_dir" "$work/empty" --devices REF
echo "$out" | grep -q "^1 passed" || fail "a case next to an empty folder still runs: $out"
expect 1 "$bin" check-onnx "$src/tests/data" --filter '^nomatch$' --devices REF
echo "$out" | grep -q -- "--filter selects none of the 1 test cases" || fail "--filter matching nothing: $out"
expect 2 "$bin" check-onnx "$case_dir" --rtol 1e-3x
expect 0 "$bin" check-onnx "$src/tests/data" --filter small --devices REF --json "$work/check.json"
grep -q '"passed": 1' "$work/check.json" || fail "check-onnx --json: $(cat "$work/check.json")"

# --- folding in inspect and bench: the functions shown, --set changing the cut --------------------------------
expect 0 "$bin" inspect "$src/tests/data/fold_blocks.onnx" --devices CPU
echo "$out" | grep -q "^function 0: 4 calls, 7 nodes" || fail "inspect shows the folded function: $out"
echo "$out" | grep -q "Call of function 0" || fail "inspect shows the calls: $out"
expect 0 "$bin" inspect "$src/tests/data/fold_blocks.onnx" --devices CPU --set fold=off
echo "$out" | grep -q "function" && fail "inspect --set fold=off shows no function: $out"
expect 4 "$bin" inspect "$src/tests/data/fold_blocks.onnx" --devices CPU --set fold=maybe
expect 2 "$bin" bench "$model" --set fold

[ $fails = 0 ] && echo "OK: all CLI checks passed"
exit $((fails > 0))
