#!/usr/bin/env bash
# Host flash attention and MoE experts against ONNX Runtime: the fixtures of scripts/make_hfa_models.py with
# hfa_tile=16 at contexts of one tile plus one key and of many tiles, and with moe_experts=on, on DEVICES; within
# 1e-4 relative error.
# usage: hfa_ort.sh SAFEINFER WORKDIR DEVICES        (exits 77, skipped, without Python+onnx, node or onnxruntime-node)
set -u
bin=$1 work=$2 devices=$3
. "$(dirname "$0")/need.sh"
need_python_ort
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
# MoE experts as auxiliary models (moe_experts=on) at one token and at 37
for T in 1 37; do
  "$py" "$here/scripts/compare_ort.py" "$bin" "$here/tests/data/moe_experts.onnx" --devices "$devices" --shape "T=$T" \
    --config moe_experts=on --rtol 1e-4 --workdir "$work/moe-$T"
  r=$?
  [ $r = 77 ] && exit 77
  [ $r != 0 ] && { echo "FAIL: moe_experts at T=$T"; rc=1; }
done
exit $rc
