#!/usr/bin/env bash
# The LLM ops against ONNX Runtime (tests/llm_ops_ort.py): usage: llm_ops_ort.sh SAFEINFER WORKDIR DEVICES [THREADS]
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent.
set -u
. "$(dirname "$0")/need.sh"
need_python
: "${ORT_NODE_MODULES:=$here/build/ort/node_modules}"
export ORT_NODE_MODULES
exec "$py" "$here/tests/llm_ops_ort.py" "$1" "$2" --devices "$3" --threads "${4:-1}"
