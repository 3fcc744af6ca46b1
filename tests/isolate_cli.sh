#!/usr/bin/env bash
# `safeinfer run --isolate OCL` with a device that crashes inside its helper process: the run exits 0, the
# report shows the lost device (the helper's death, a failover for a crash at inference), and the outputs
# equal a fault-free REF run (`safeinfer compare`).
#   isolate_cli.sh SAFEINFER WORK MODE     MODE: crash (OCL.infer=3:crash), segv (OCL.compile=always:segv),
#                                          split (a model cut into OCL and CPU parts, 4 requests on 4 threads
#                                          with random crashes and segfaults of the OCL part), orphan (the
#                                          program killed with SIGKILL while its helper hangs in an inference:
#                                          the helper ends by itself within seconds)
# Skips (77) without an OpenCL device.
set -u
bin=$1 work=$2 mode=$3
here=$(cd "$(dirname "$0")/.." && pwd)
model=$here/examples/tiny_cnn.onnx
shape=(--shape batch=2)
input=(--input image=random:1)
rm -rf "$work/$mode"
mkdir -p "$work/$mode"
w=$work/$mode
fail() { echo "FAIL: $*"; exit 1; }

out=$("$bin" inspect "$model" --devices OCL,CPU "${shape[@]}") || { echo "$out"; exit 1; }
echo "$out" | grep -q "submodel 0 on OCL" || { echo "SKIP: no OpenCL device here"; exit 77; }

case $mode in
orphan)
  "$bin" run "$model" "${shape[@]}" "${input[@]}" --devices OCL,CPU --isolate OCL --faults OCL.infer=2:hang --repeat 3 \
    --output-dir "$w/out" > "$w/run.txt" 2>&1 &
  pid=$!
  helper=
  for _ in $(seq 300); do # its helper, once inference 2 hangs in it (inference 1 has written nothing yet: wait)
    helper=$(pgrep -P "$pid" -x safeinfer-worke | head -1)
    [ -n "$helper" ] && sleep 1 && break
    sleep 0.1
  done
  [ -n "$helper" ] || { kill -9 "$pid"; fail "no helper process of $pid"; }
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  for _ in $(seq 100); do
    state=$(sed 's/.*) //' "/proc/$helper/stat" 2>/dev/null | cut -c1)
    if [ -z "$state" ] || [ "$state" = Z ]; then echo "helper $helper ended after its program $pid was killed"; echo PASS; exit 0; fi
    sleep 0.1
  done
  kill -9 "$helper"
  fail "helper $helper still runs 10 s after its program $pid was killed" ;;
crash) faults=OCL.infer=3:crash; args=(--repeat 5) ;;
segv) faults=OCL.compile=always:segv; args=(--repeat 5) ;;
split)
  model=$here/tests/data/mixed_cumsum.onnx
  shape=()
  input=()
  faults=OCL.infer=p0.2@3:crash,OCL.infer=p0.1@4:segv
  args=(--repeat 6 --requests 4 --standby on --failback-ms 20 --retries 1)
  out=$("$bin" inspect "$model" --devices OCL,CPU) || { echo "$out"; exit 1; }
  echo "$out" | grep -q "submodel 0 on OCL" || fail "mixed_cumsum.onnx should start on OCL: $out"
  ;;
*) fail "unknown mode $mode" ;;
esac
inputs=()
if [ ${#input[@]} -eq 0 ]; then # the inputs of the model, random with a fixed seed
  for name in $("$bin" inspect "$model" | sed -n 's/^  input \([^:]*\):.*/\1/p'); do inputs+=(--input "$name=random:7"); done
else
  inputs=("${input[@]}")
fi

"$bin" run "$model" "${shape[@]}" "${inputs[@]}" --devices REF --output-dir "$w/ref" >/dev/null || fail "the REF run"
echo "--- safeinfer run $(basename "$model") --devices OCL,CPU --isolate OCL --faults $faults ${args[*]}"
"$bin" run "$model" "${shape[@]}" "${inputs[@]}" --devices OCL,CPU --isolate OCL --faults "$faults" "${args[@]}" \
  --report "$w/report.json" --output-dir "$w/out" > "$w/run.txt" 2>&1
rc=$?
grep -v "^  \|values=" "$w/run.txt"
[ $rc = 0 ] || fail "exit status $rc"
grep -q '"status":"SI_ERR_DEVICE_LOST"' "$w/report.json" || fail "no lost device in the report"
case $mode in
crash)
  grep -q '"type":"failover","submodel":0,"from":"OCL","to":"CPU","stage":"infer","status":"SI_ERR_DEVICE_LOST"' "$w/report.json" ||
    fail "no DEVICE_LOST failover at inference in the report"
  grep -q 'killed by signal 6 (Aborted)' "$w/report.json" || fail "the report does not say how the helper died" ;;
segv)
  grep -q '"stage":"compile","status":"SI_ERR_DEVICE_LOST","message":"OCL (isolated): the helper process (pid [0-9]*) died: killed by signal 11' "$w/report.json" ||
    fail "no DEVICE_LOST compile (segfault) in the report"
  grep -q '"type":"quarantine"' "$w/report.json" || fail "OCL is not quarantined"
  grep -q '"device":"CPU"' "$w/report.json" || fail "the submodel did not end on CPU" ;;
split)
  grep -q '"type":"failover"' "$w/report.json" || fail "no failover in the report"
  grep -q "requests agree" "$w/run.txt" || fail "the requests' outputs were not compared" ;;
esac
"$bin" compare "$w/ref" "$w/out" --rtol 1e-4 --atol 1e-6 || fail "outputs differ from REF's"
echo "PASS"
