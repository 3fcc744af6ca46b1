#!/usr/bin/env bash
# A model in the QDQ form (models/cnn.py yolo --small --qop qdq) on CPU in process and on CPU isolated in a helper
# process: the outputs must be equal, bit for bit. The CPU device runs DequantizeLinear -> Conv -> QuantizeLinear
# as integer convolutions from the folded weights' quantized source (si_val.dq_*), which the graph sent to the
# helper must carry; without it the helper runs the graph in float and rounds differently.
#   isolate_qdq.sh SAFEINFER WORK
# Skips (77) without /usr/bin/python3 with onnx and numpy.
set -u
bin=$1 work=$2
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
"$py" -c 'import onnx, numpy' 2>/dev/null || { echo "SKIP: $py with onnx and numpy is needed to write the model"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
"$py" "$here/models/cnn.py" yolo "$work/yolo_qdq.onnx" --small --qop qdq >/dev/null || { echo "FAIL: cannot write the model"; exit 1; }
"$bin" run "$work/yolo_qdq.onnx" --devices CPU --input images=random:3 --output-dir "$work/in" > "$work/in.txt" 2>&1 ||
  { cat "$work/in.txt"; echo "FAIL: in-process run"; exit 1; }
"$bin" run "$work/yolo_qdq.onnx" --devices CPU --isolate CPU --input images=random:3 --output-dir "$work/iso" > "$work/iso.txt" 2>&1 ||
  { cat "$work/iso.txt"; echo "FAIL: isolated run"; exit 1; }
"$bin" compare "$work/in" "$work/iso" --rtol 0 --atol 0 || { echo "FAIL: the isolated CPU device computes the QDQ form differently"; exit 1; }
echo "isolate_qdq: isolated and in-process CPU outputs equal"
# The OCL device takes QuantizeLinear and DequantizeLinear: the whole QDQ graph is one OCL submodel, not one per
# QuantizeLinear between OCL runs (skipped where no OpenCL device is found).
part=$("$bin" inspect "$work/yolo_qdq.onnx" --devices OCL,CPU 2>&1) || { echo "$part" | tail -5; echo "FAIL: inspect"; exit 1; }
if echo "$part" | grep -q "there is no OpenCL device\|OCL: .*not available"; then
  echo "isolate_qdq: no OpenCL device, OCL partition not checked"
else
  echo "$part" | grep -q "partition over OCL,CPU: 1 submodel" && echo "$part" | grep -q "submodel 0 on OCL" ||
    { echo "$part" | grep "partition over\|submodel .* on"; echo "FAIL: the QDQ graph is not one OCL submodel"; exit 1; }
  echo "isolate_qdq: the QDQ graph is one OCL submodel"
fi
