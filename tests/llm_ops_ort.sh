#!/usr/bin/env bash
# The LLM ops against ONNX Runtime (tests/llm_ops_ort.py): usage: llm_ops_ort.sh SAFEINFER WORKDIR DEVICES [THREADS]
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
py=$("$here/scripts/find-python.sh" onnx numpy) || { echo "SKIP: no Python with onnx and numpy (python3-onnx, python3-numpy)"; exit 77; }
: "${ORT_NODE_MODULES:=$here/build/ort/node_modules}"
export ORT_NODE_MODULES
exec "$py" "$here/tests/llm_ops_ort.py" "$1" "$2" --devices "$3" --threads "${4:-1}"
