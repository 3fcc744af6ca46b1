#!/usr/bin/env bash
# A model with ops OCL lacks (CumSum, ArgMax between convolutions) on OCL,CPU: inspect shows the cut into
# OCL and CPU submodels, and the outputs equal REF's. Skips (77) without python3-onnx or an OpenCL device.
set -u
bin=$1 work=$2
. "$(dirname "$0")/need.sh"
need_python
echo "using Python $py"
mkdir -p "$work"
"$py" "$here/scripts/make_compare_models.py" "$work/models" >/dev/null || exit 1
model=$work/models/mixed_opset13.onnx
out=$("$bin" inspect "$model" --devices OCL,CPU --shape batch=2) || { echo "$out"; exit 1; }
echo "$out" | sed -n '/^partition/,$p'
if ! echo "$out" | grep -q "submodel 0 on OCL"; then echo "SKIP: no OpenCL device here (everything went to CPU)"; exit 77; fi
echo "$out" | grep -q "^partition over OCL,CPU: 4 submodels" || { echo "FAIL: expected 4 submodels"; exit 1; }
echo "$out" | grep -q "submodel 1 on CPU: 1 node: CumSum" || { echo "FAIL: CumSum should run on CPU"; exit 1; }
echo "$out" | grep -q "not on earlier devices: node .*OCL: op CumSum" || { echo "FAIL: the reason is not shown"; exit 1; }
# a device that is not there gives every node the same reason: it is said once, with the count of nodes
out=$("$bin" inspect "$model" --devices OCL.63,CPU --shape batch=2) || { echo "$out"; exit 1; }
echo "$out" | grep "not on earlier devices" | head -c 300; echo
echo "$out" | grep -q "not on earlier devices: node '[^']*' and [0-9]* others: OCL.63: device OCL.63 is not available" ||
  { echo "FAIL: the unavailable device's reason is not given once for all nodes"; exit 1; }
[ "$(echo "$out" | grep -o "is not available" | wc -l)" = 1 ] || { echo "FAIL: the same reason is repeated"; exit 1; }
rm -rf "$work/ref" "$work/split"
"$bin" run "$model" --shape batch=2 --input x=random:3 --devices REF --output-dir "$work/ref" >/dev/null || exit 1
"$bin" run "$model" --shape batch=2 --input x=random:3 --devices OCL,CPU --output-dir "$work/split" || exit 1
"$bin" compare "$work/ref" "$work/split" --rtol 1e-4 --atol 1e-6
