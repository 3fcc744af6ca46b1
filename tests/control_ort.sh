#!/usr/bin/env bash
# Control flow against ONNX Runtime.
# 1. The If/Loop/Scan fixtures (tests/data/control_{flow,loop_if,scan}.onnx: nested Ifs, an If inside a Loop that
#    ends on its condition with a trip count of 2^63-1, a Scan) with their dimensions open, on CPU and REF: the
#    outputs of `safeinfer run` equal ONNX Runtime's (models/ort_run.js) within 1e-5.
# 2. The merged speech decoder of models/speech.py (optimum-style: one If on use_cache_branch whose branches read the
# model's inputs and weights from the outer scope) compiled once with its dimensions open and run as a greedy
# decode through the library (models/si_speech.py, the Python package over include/safeinfer.h): the tokens must
# equal ONNX Runtime's (models/ort_speech.js) on CPU, on CPU,REF with CPU failing mid-sequence (the cached branch
# fails over to REF) and on OCL,CPU with OCL failing (OCL takes the open dimensions, so its fault must fail over).
# usage: control_ort.sh SAFEINFER LIBRARY WORKDIR [SANITIZERS]
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent. Part 2 is
# skipped for a sanitizer build of the library (it does not load into python3 without preloading its runtime).
set -u
bin=$1 lib=$2 work=$3 san=${4:-}
. "$(dirname "$0")/need.sh"
need_python_ort
mkdir -p "$work"
rc=0
# --- 1. the fixtures ---
"$py" - "$work" <<'PY' || { echo "FAIL: writing the inputs"; exit 1; }
import sys
import numpy as np
w = sys.argv[1]
np.save(w + "/X.npy", np.array([[1, 2, -3], [-0.5, 0.25, 4], [0.1, 0.2, 0.3]], np.float32))
np.save(w + "/N.npy", np.array(2**63 - 1, np.int64))
np.save(w + "/GO.npy", np.array(True))
np.save(w + "/LIM.npy", np.array(40, np.float32))
np.save(w + "/C1.npy", np.array(True))
np.save(w + "/C0.npy", np.array(False))
np.save(w + "/H0.npy", np.array([0.5, -1, 2], np.float32))
np.save(w + "/XS.npy", (np.arange(15, dtype=np.float32).reshape(5, 3) / 7 - 1).astype(np.float32))
PY
while read -r name ins; do
  for dev in CPU REF; do
    rm -rf "$work/ort-$name" "$work/si-$name-$dev"
    oargs=() sargs=()
    for i in $ins; do oargs+=("${i%%=*}=$work/${i#*=}.npy"); sargs+=(--input "${i%%=*}=$work/${i#*=}.npy"); done
    node "$here/models/ort_run.js" "$here/tests/data/$name.onnx" "${oargs[@]}" --out "$work/ort-$name" >/dev/null ||
      { echo "FAIL: ONNX Runtime on $name"; rc=1; continue; }
    "$bin" run "$here/tests/data/$name.onnx" "${sargs[@]}" --devices $dev --output-dir "$work/si-$name-$dev" >/dev/null ||
      { echo "FAIL: safeinfer run $name on $dev"; rc=1; continue; }
    if out=$("$bin" compare "$work/ort-$name" "$work/si-$name-$dev" --rtol 1e-5 --atol 1e-6); then
      echo "ok   $name ($ins) on $dev: $(echo "$out" | tail -1)"
    else
      echo "FAIL: $name ($ins) on $dev:"; echo "$out"; rc=1
    fi
  done
done <<'LIST'
control_flow X=X C=C1
control_flow X=X C=C0
control_loop_if X=X N=N GO=GO LIM=LIM
control_scan H0=H0 XS=XS
LIST
# --- 2. the speech decoder ---
[ -z "$san" ] || { echo "speech decoder: skipped (a sanitizer build of the library does not load into python3 as it is)"; exit $rc; }
steps=12
"$py" "$here/models/speech.py" "$work/speech" >/dev/null || { echo "FAIL: models/speech.py"; exit 1; }
ort=$(node "$here/models/ort_speech.js" "$work/speech" $steps | tail -1) || { echo "FAIL: ort_speech.js: $ort"; exit 1; }
want=$(echo "$ort" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["tokens"])')
echo "ONNX Runtime: $want"
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
OCL,CPU OCL.infer=3 1
LIST
exit $rc
