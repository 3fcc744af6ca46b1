#!/usr/bin/env bash
# The merged speech decoder of models/speech.py (optimum-style: one If on use_cache_branch whose branches read the
# model's inputs and weights from the outer scope) compiled once with its dimensions open and run as a greedy
# decode through the library (models/si_speech.py, the Python package over include/safeinfer.h): the tokens must
# equal ONNX Runtime's (models/ort_speech.js) on CPU, on CPU,REF with CPU failing mid-sequence (the cached branch
# fails over to REF) and on OCL,CPU with OCL failing.
# usage: control_speech.sh LIBRARY WORKDIR [SANITIZERS]
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent, or the library is
# a sanitizer build (it does not load into python3 without preloading its runtime).
set -u
lib=$1 work=$2 san=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
[ -z "$san" ] || { echo "SKIP: a sanitizer build of the library does not load into python3 as it is"; exit 77; }
py=$("$here/scripts/find-python.sh" onnx numpy) || { echo "SKIP: no Python with onnx and numpy (python3-onnx, python3-numpy)"; exit 77; }
if ! command -v node >/dev/null; then echo "SKIP: node not installed"; exit 77; fi
: "${ORT_NODE_MODULES:=$here/build/ort/node_modules}"
export ORT_NODE_MODULES
if [ ! -d "$ORT_NODE_MODULES/onnxruntime-node" ]; then
  echo "SKIP: onnxruntime-node not found at $ORT_NODE_MODULES (npm install --ignore-scripts onnxruntime-node --prefix build/ort)"
  exit 77
fi
mkdir -p "$work"
steps=12
"$py" "$here/models/speech.py" "$work/speech" >/dev/null || { echo "FAIL: models/speech.py"; exit 1; }
ort=$(node "$here/models/ort_speech.js" "$work/speech" $steps | tail -1) || { echo "FAIL: ort_speech.js: $ort"; exit 1; }
want=$(echo "$ort" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["tokens"])')
echo "ONNX Runtime: $want"
rc=0
while read -r devices faults need_failover; do
  args=(--devices "$devices")
  [ "$faults" = - ] || args+=(--faults "$faults")
  out=$(SAFEINFER_LIBRARY=$lib "$py" "$here/models/si_speech.py" "$work/speech" $steps "${args[@]}" --report "$work/report-$devices.json" 2>&1 | tail -1)
  got=$(echo "$out" | "$py" -c 'import json, sys; d = json.load(sys.stdin); print(d["tokens"], d["failovers"])' 2>/dev/null)
  toks=${got% *} fo=${got##* }
  if [ "$toks" != "$want" ]; then
    echo "FAIL: $devices faults $faults: $out"
    rc=1
  elif [ "$need_failover" = 1 ] && [ "$fo" -lt 1 ]; then
    echo "FAIL: $devices faults $faults: no failover: $out"
    rc=1
  else
    echo "ok   $devices faults $faults: $toks, $fo failover(s)"
  fi
done <<'LIST'
CPU - 0
REF - 0
CPU,REF CPU.infer=5 1
OCL,CPU - 0
OCL,CPU OCL.infer=3 0
LIST
exit $rc
