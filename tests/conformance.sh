#!/usr/bin/env bash
# Conformance: run `safeinfer check-onnx` on one folder of the ONNX backend test data.
# usage: conformance.sh SAFEINFER SUITE DEVICES [MIN_PASSED]
# Fails when any case fails, or when fewer than MIN_PASSED cases pass (a guard against silent skipping).
# Exits 77 (ctest: skipped) with a message when the test data is absent (a user's fresh clone).
set -u
bin=$1 suite=$2 devices=$3 min=${4:-0}
root=${SI_ONNX_TESTS:-$(cd "$(dirname "$0")/../.." && pwd)/shared/onnx-tests}
if [ ! -d "$root/$suite" ]; then
  echo "SKIP: ONNX backend test data not found at $root/$suite (set SI_ONNX_TESTS to its folder)"
  exit 77
fi
out=$("$bin" check-onnx "$root/$suite" --devices "$devices" 2>&1)
rc=$?
echo "$out" | grep -v '^PASS ' | tail -n 200
passed=$(echo "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed.*/\1/p')
if [ "${passed:-0}" = 0 ] && echo "$out" | grep -q "device $devices is not available"; then
  echo "SKIP: device $devices is not available on this machine"
  exit 77
fi
if [ "${passed:-0}" -lt "$min" ]; then
  echo "FAIL: only ${passed:-0} cases passed on $devices, at least $min expected"
  exit 1
fi
exit $rc
