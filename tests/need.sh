# Sourced by the suite's shell tests in tests/ (`. "$(dirname "$0")/need.sh"`): sets $here to the source root, and
# gives checks for what a test needs, each ending the test as skipped (exit 77, with a message saying what to
# install) when it is absent.
#   need_python      sets $py to a Python with onnx and numpy (scripts/find-python.sh)
#   need_ort         node and onnxruntime-node under $ORT_NODE_MODULES (default build/ort/node_modules), exported
#   need_python_ort  both (a comparison with ONNX Runtime on models and inputs that Python writes)
here=$(cd "$(dirname "$0")/.." && pwd)

need_python() {
  py=$("$here/scripts/find-python.sh" onnx numpy) || { echo "SKIP: no Python with onnx and numpy (python3-onnx, python3-numpy)"; exit 77; }
}

need_ort() {
  if ! command -v node >/dev/null; then echo "SKIP: node not installed"; exit 77; fi
  : "${ORT_NODE_MODULES:=$here/build/ort/node_modules}"
  export ORT_NODE_MODULES
  if [ ! -d "$ORT_NODE_MODULES/onnxruntime-node" ]; then
    echo "SKIP: onnxruntime-node not found at $ORT_NODE_MODULES (npm install --ignore-scripts onnxruntime-node --prefix build/ort)"
    exit 77
  fi
}

need_python_ort() {
  need_python
  need_ort
}
