#!/usr/bin/env bash
# `safeinfer inspect --dot`: the partition as a Graphviz graph, and a `run --report` drawn over it.
#   * CPU,REF (always there): one cluster; after a run where CPU fails (--faults CPU.infer=1) the report
#     overlay says the submodel ended on REF, names the failover and draws a red border;
#   * OCL,CPU on tests/data/mixed_cumsum.onnx (OCL has no CumSum; when an OpenCL device is present): three
#     clusters OCL / CPU / OCL, fallbacks in the labels, A crossing from submodel 0 to 1 and 2 on the edges;
#   * a malformed report, a report of another partition and --report without --dot are refused by name;
#   * the graphs render with `dot -Tsvg` when Graphviz is installed.
# usage: inspect_dot.sh SAFEINFER SOURCE_DIR WORKDIR
set -u
bin=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
model=$src/tests/data/mixed_cumsum.onnx
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
has() { grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks: $2"; }
render() {
  if command -v dot >/dev/null; then
    dot -Tsvg "$1" -o "${1%.dot}.svg" || fail "dot cannot render $1"
    grep -q "submodel 0 on" "${1%.dot}.svg" || fail "${1%.dot}.svg lacks the cluster labels"
  fi
}

# --- CPU,REF: one submodel; the report overlay -------------------------------------------------------------
"$bin" inspect "$model" --devices CPU,REF --dot "$work/cpu.dot" >/dev/null || fail "inspect --dot (CPU,REF)"
has "$work/cpu.dot" 'digraph safeinfer {'
has "$work/cpu.dot" 'label="submodel 0 on CPU\nfallback: REF'
has "$work/cpu.dot" 'input_0 -> submodel_0 [label="X\nfloat32[2,4]"]'
has "$work/cpu.dot" 'submodel_0 -> output_0;'
has "$work/cpu.dot" 'label="4 nodes\nRelu x2\nCumSum\nMul"'
[ "$(grep -c 'subgraph cluster_submodel_' "$work/cpu.dot")" = 1 ] || fail "CPU,REF: expected one cluster"
render "$work/cpu.dot"
"$bin" run "$model" --devices CPU,REF --faults CPU.infer=1 --report "$work/cpu-report.json" >"$work/run.log" 2>&1 ||
  fail "run --report: exit $?: $(tail -20 "$work/run.log")"
"$bin" inspect "$model" --devices CPU,REF --dot "$work/cpu-report.dot" --report "$work/cpu-report.json" >/dev/null || fail "inspect --dot --report"
has "$work/cpu-report.dot" '--- report ---\nended on REF\nfailover CPU -> REF at '
has "$work/cpu-report.dot" 'color="#d00000"; penwidth=3;'
render "$work/cpu-report.dot"
# the same without a failure: ends where planned, plain border
"$bin" run "$model" --devices CPU,REF --report "$work/calm.json" >"$work/calm.log" 2>&1 ||
  fail "run --report (no fault): exit $?: $(tail -20 "$work/calm.log")"
"$bin" inspect "$model" --devices CPU,REF --dot "$work/calm.dot" --report "$work/calm.json" >/dev/null || fail "inspect --report calm"
has "$work/calm.dot" '--- report ---\nended on CPU";'
has "$work/calm.dot" 'penwidth=1;'

# --- refusals ------------------------------------------------------------------------------------------------
printf '{"devices": ["CPU", "REF"], "submodels": [' > "$work/broken.json"
out=$("$bin" inspect "$model" --devices CPU,REF --dot "$work/x.dot" --report "$work/broken.json" 2>&1); rc=$?
[ $rc = 7 ] && echo "$out" | grep -q "not JSON: .* at byte" || fail "malformed report: exit $rc: $out"
out=$("$bin" inspect "$model" --devices REF --dot "$work/x.dot" --report "$work/cpu-report.json" 2>&1); rc=$?
[ $rc = 4 ] && echo "$out" | grep -q "was written for devices CPU,REF and 1 submodel; this partition: devices REF" || fail "report of another partition: exit $rc: $out"
printf '%.0s[' $(seq 1 5000) > "$work/deep.json"
out=$("$bin" inspect "$model" --devices CPU,REF --dot "$work/x.dot" --report "$work/deep.json" 2>&1); rc=$?
[ $rc = 7 ] && echo "$out" | grep -q "nested too deeply" || fail "deeply nested report: exit $rc: $out"
echo '[1, 2]' > "$work/array.json"
out=$("$bin" inspect "$model" --devices CPU,REF --dot "$work/x.dot" --report "$work/array.json" 2>&1); rc=$?
[ $rc = 4 ] && echo "$out" | grep -q "is not a \`safeinfer run --report\` file" || fail "a JSON array as report: exit $rc: $out"
out=$("$bin" inspect "$model" --devices CPU,REF --report "$work/cpu-report.json" 2>&1); rc=$?
[ $rc = 2 ] || fail "--report without --dot: exit $rc: $out"
out=$("$bin" inspect "$model" --devices CPU,REF --dot "$work/no/such/dir/x.dot" 2>&1); rc=$?
[ $rc = 6 ] && echo "$out" | grep -q "cannot write" || fail "unwritable --dot: exit $rc: $out"

# --- OCL,CPU: three submodels and the tensors between them ------------------------------------------------
"$bin" inspect "$model" --devices OCL,CPU --dot "$work/ocl.dot" > "$work/ocl.txt" || fail "inspect --dot (OCL,CPU)"
if grep -q "submodel 0 on OCL" "$work/ocl.txt"; then
  [ "$(grep -c 'subgraph cluster_submodel_' "$work/ocl.dot")" = 3 ] || fail "OCL,CPU: expected three clusters"
  has "$work/ocl.dot" 'label="submodel 0 on OCL\nfallback: CPU"'
  has "$work/ocl.dot" 'label="submodel 1 on CPU\nno fallback\nnot on earlier devices: node '"'"'cumsum'"'"': OCL: op CumSum'
  has "$work/ocl.dot" 'submodel_0 -> submodel_1 [label="A\nfloat32[2,4]"]'
  has "$work/ocl.dot" 'submodel_0 -> submodel_2 [label="A\nfloat32[2,4]"]'
  has "$work/ocl.dot" 'submodel_1 -> submodel_2 [label="C\nfloat32[2,4]"]'
  has "$work/ocl.dot" 'submodel_2 -> output_0;'
  # OCL's and CPU's colours differ
  c0=$(grep -A2 'cluster_submodel_0 ' "$work/ocl.dot" | sed -n 's/.*fillcolor="\([^"]*\)".*/\1/p' | head -1)
  c1=$(grep -A2 'cluster_submodel_1 ' "$work/ocl.dot" | sed -n 's/.*fillcolor="\([^"]*\)".*/\1/p' | head -1)
  [ -n "$c0" ] && [ "$c0" != "$c1" ] || fail "OCL and CPU clusters share a colour ($c0, $c1)"
  render "$work/ocl.dot"
else
  echo "(no OpenCL device here: the three-submodel graph is not checked)"
fi
command -v dot >/dev/null && echo "rendered with $(dot -V 2>&1)" || echo "(Graphviz not installed: graphs not rendered)"
[ $fails = 0 ] && echo "OK: inspect --dot"
exit $((fails > 0))
