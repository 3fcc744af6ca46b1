#!/usr/bin/env bash
# Real-model-style networks (opset 9-11 CNNs, transformer recognisers with symbolic dims) and the attribute space
# of the recurrent and quantization ops (scripts/make_rnn_quant_models.py) run on safeinfer and on ONNX Runtime
# with the same inputs; they must agree to 1e-4 relative error.
# usage: compare_ort.sh SAFEINFER WORKDIR DEVICES
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent.
set -u
bin=$1 work=$2 devices=$3
here=$(cd "$(dirname "$0")/.." && pwd)
py=$("$here/scripts/find-python.sh" onnx numpy) || { echo "SKIP: no Python with onnx and numpy (python3-onnx, python3-numpy)"; exit 77; }
echo "using Python $py ($("$py" -c 'import onnx, numpy; print("onnx", onnx.__version__, "numpy", numpy.__version__)'))"
if ! command -v node >/dev/null; then echo "SKIP: node not installed"; exit 77; fi
: "${ORT_NODE_MODULES:=$here/build/ort/node_modules}"
export ORT_NODE_MODULES
if [ ! -d "$ORT_NODE_MODULES/onnxruntime-node" ]; then
  echo "SKIP: onnxruntime-node not found at $ORT_NODE_MODULES (npm install --ignore-scripts onnxruntime-node --prefix build/ort)"
  exit 77
fi
mkdir -p "$work"
rc=0
while read -r model args; do
  [ -n "$model" ] || continue
  # shellcheck disable=SC2086
  "$py" "$here/scripts/compare_ort.py" "$bin" "$model" --devices "$devices" $args --rtol 1e-4 --workdir "$work/$(basename "$model" .onnx)"
  r=$?
  [ $r = 77 ] && exit 77
  [ $r != 0 ] && { echo "FAIL: $model"; rc=1; }
done < <("$py" "$here/scripts/make_compare_models.py" "$work/models"; "$py" "$here/scripts/make_rnn_quant_models.py" "$work/models-rnn-quant")
exit $rc
