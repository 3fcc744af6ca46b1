#!/usr/bin/env bash
# Conformance: run `safeinfer check-onnx` on one folder of the ONNX backend test data.
# usage: conformance.sh SAFEINFER SUITE DEVICES
# Exits 77 (ctest: skipped) with a message when the test data is absent (a user's fresh clone).
set -u
bin=$1 suite=$2 devices=$3
root=${SI_ONNX_TESTS:-$(cd "$(dirname "$0")/../.." && pwd)/shared/onnx-tests}
if [ ! -d "$root/$suite" ]; then
  echo "SKIP: ONNX backend test data not found at $root/$suite (set SI_ONNX_TESTS to its folder)"
  exit 77
fi
out=$("$bin" check-onnx "$root/$suite" --devices "$devices" 2>&1)
rc=$?
echo "$out" | grep -v '^PASS ' | tail -n 200
exit $rc
