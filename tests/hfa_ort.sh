#!/usr/bin/env bash
# Host flash attention against ONNX Runtime: the fixtures of scripts/make_hfa_models.py with hfa_tile=16 at
# contexts of one tile plus one key and of many tiles, on DEVICES; within 1e-4 relative error.
# usage: hfa_ort.sh SAFEINFER WORKDIR DEVICES        (exits 77, skipped, without Python+onnx, node or onnxruntime-node)
set -u
bin=$1 work=$2 devices=$3
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/need.sh"
need_python
need_ort
mkdir -p "$work"
rc=0
for m in hfa_attn hfa_attn_bool hfa_pat hfa_mha; do
  for L in 17 300; do
    "$py" "$here/scripts/compare_ort.py" "$bin" "$here/tests/data/$m.onnx" --devices "$devices" --shape "L=$L" \
      --config hfa_tile=16 --rtol 1e-4 --workdir "$work/$m-$L"
    r=$?
    [ $r = 77 ] && exit 77
    [ $r != 0 ] && { echo "FAIL: $m at L=$L"; rc=1; }
  done
done
exit $rc
