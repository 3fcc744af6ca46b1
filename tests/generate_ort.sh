#!/usr/bin/env bash
# LLM generation against ONNX Runtime: decoders written by models/llm.py (the plain-ONNX form, the GenAI form with
# int4 MatMulNBits + GroupQueryAttention + SkipSimplifiedLayerNormalization, the GenAI form with MoE layers and with
# QMoE layers (4-bit experts in blocks of 32 with zero points, SwiGLU as the GenAI builder writes it)),
# each compiled once with its dimensions open and run by `safeinfer bench MODEL --generate P,N`: a prompt prefilled
# over an empty KV cache, then greedy decoding with the presents fed back. The tokens must equal ONNX Runtime's
# (models/ort_generate.js, the same prompt) on CPU, on OCL,CPU, and on OCL,CPU with OCL failing mid-generation
# (SAFEINFER_FAULTS=OCL.infer=4: the run must report a failover and still give the same tokens). The layers are
# folded into one function body and its calls (fold=on, the default: the report must show a function of at least 2
# calls), and the CPU rows run again with fold=off. The MoE and QMoE models run with their experts as auxiliary models
# (moe_experts=on) with a device failing mid-generation, and the plain model's attention as host flash attention over
# tiles of 4 keys (hfa_tile=4, inside the folded body) with CPU failing mid-generation: the auxiliary models fail over
# with their owner and the tokens stay ONNX Runtime's.
# usage: generate_ort.sh SAFEINFER WORKDIR
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent.
set -u
bin=$1 work=$2
. "$(dirname "$0")/need.sh"
need_python_ort
rm -rf "$work"
mkdir -p "$work"
geom=(--layers 4 --hidden 128 --heads 4 --kv-heads 2 --inter 256 --vocab 512)
"$py" "$here/models/llm.py" "$work/plain.onnx" "${geom[@]}" >/dev/null || { echo "FAIL: models/llm.py plain"; exit 1; }
"$py" "$here/models/llm.py" "$work/genai.onnx" --form genai --zero-points "${geom[@]}" >/dev/null || { echo "FAIL: models/llm.py genai"; exit 1; }
"$py" "$here/models/llm.py" "$work/moe.onnx" --form genai --moe --experts 4 --top-k 2 "${geom[@]}" >/dev/null ||
  { echo "FAIL: models/llm.py genai --moe"; exit 1; }
"$py" "$here/models/llm.py" "$work/qmoe.onnx" --form genai --moe --qmoe --moe-act swiglu --zero-points --experts 4 --top-k 2 "${geom[@]}" >/dev/null ||
  { echo "FAIL: models/llm.py genai --moe --qmoe"; exit 1; }
P=12 N=8
ocl=1
"$bin" run "$here/examples/tiny_cnn.onnx" --devices OCL --shape batch=1 >/dev/null 2>&1 || { ocl=0; echo "no OCL device: the OCL,CPU rows are skipped"; }
field() { "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d[sys.argv[2]])' "$1" "$2"; }
rc=0
for model in plain genai moe qmoe; do
  ort=$(node "$here/models/ort_generate.js" "$work/$model.onnx" $P $N | tail -1) || { echo "FAIL: ort_generate.js $model: $ort"; rc=1; continue; }
  want=$(echo "$ort" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["tokens"])')
  echo "$model: ONNX Runtime $want"
  while read -r only devices faults need_failover sets calls_want; do
    [ "$only" = all ] || [ "$only" = "$model" ] || continue
    [ $ocl = 1 ] || [ "$devices" = CPU ] || continue
    json="$work/$model-$devices-$faults-$sets.json"
    setargs=()
    for kv in ${sets//,/ }; do setargs+=(--set "$kv"); done
    if [ "$faults" = - ]; then
      out=$("$bin" bench "$work/$model.onnx" --generate $P,$N --devices "$devices" "${setargs[@]}" --json "$json" 2>&1)
    else
      out=$(SAFEINFER_FAULTS=$faults "$bin" bench "$work/$model.onnx" --generate $P,$N --devices "$devices" "${setargs[@]}" --json "$json" 2>&1)
    fi
    if [ $? -ne 0 ]; then echo "FAIL: $model on $devices ($faults, $sets): $out"; rc=1; continue; fi
    got=$(field "$json" tokens) fo=$(field "$json" failovers)
    calls=$("$py" -c 'import json, sys; f = json.load(open(sys.argv[1]))["report"]["functions"]; print(f[0]["calls"] if f else 0)' "$json")
    if [ "$got" != "$want" ]; then
      echo "FAIL: $model on $devices ($faults, $sets): tokens $got"; rc=1
    elif [ "$need_failover" = 1 ] && [ "$fo" -lt 1 ]; then
      echo "FAIL: $model on $devices ($faults, $sets): no failover"; rc=1
    elif { [ "$calls_want" = 2+ ] && [ "$calls" -lt 2 ]; } || { [ "$calls_want" = 0 ] && [ "$calls" -ne 0 ]; }; then
      echo "FAIL: $model on $devices ($faults, $sets): the report's first function has $calls calls"; rc=1
    else
      echo "ok   $model on $devices ($faults, $sets): $calls calls, $fo failover(s), $(echo "$out" | grep -E '^  (prefill|decode) ' | tr -s ' ' | tr '\n' ';')"
    fi
  done <<'LIST'
all CPU - 0 fold=on 2+
all CPU - 0 fold=off 0
all OCL,CPU - 0 fold=on 2+
all OCL,CPU OCL.infer=4 1 fold=on 2+
all OCL,CPU OCL.infer=4 1 fold=off 0
moe CPU - 0 moe_experts=on 0
moe OCL,CPU OCL.infer=6 1 moe_experts=on 0
moe CPU,REF CPU.infer=9 1 moe_experts=on 0
qmoe CPU - 0 moe_experts=on 0
qmoe OCL,CPU OCL.infer=6 1 moe_experts=on 0
qmoe CPU,REF CPU.infer=9 1 moe_experts=on 0
plain CPU,REF CPU.infer=7 1 hfa_tile=4 2+
LIST
done
# QMoE's experts become auxiliary models too (MatMulNBits on views of the packed weights)
out=$("$bin" inspect "$work/qmoe.onnx" --devices CPU --set moe_experts=on 2>&1)
if echo "$out" | grep -q "QMoE (one model per expert)"; then echo "ok   qmoe: a QMoE unit of expert models"; else echo "FAIL: no QMoE expert unit: $out" | head -20; rc=1; fi
# not a decoder: a named error, no crash
out=$("$bin" bench "$here/examples/tiny_cnn.onnx" --generate 4,2 2>&1)
if [ $? -lt 3 ] || ! echo "$out" | grep -q "logits"; then echo "FAIL: --generate on a CNN: $out"; rc=1; else echo "ok   --generate on a CNN: $out"; fi
exit $rc
