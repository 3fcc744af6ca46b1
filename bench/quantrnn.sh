#!/usr/bin/env bash
# bench/quantrnn.sh — safeinfer's CPU device against ONNX Runtime on the quantized and recurrent models of
# models/: unet_int8 (DynamicQuantizeLinear + ConvInteger, 1x3x1024x1024), crnn --lstm (2-layer BiLSTM head),
# the whisper-like encoder dynamically quantized (DynamicQuantizeLinear + MatMulInteger; default and --tiny
# geometry), one cached step of its quantized merged decoder and the VAD at 16 kHz (If + LSTM) — the last two with
# their If replaced by the branch that runs (bench/inline_if.py), since this branch has no control flow.
#
# usage: bench/quantrnn.sh [--models a,b] [--threads "1 2"] [--iterations N] [--warmup N]
# For each model and thread count: safeinfer bench (median of N timed runs) and models/ort_run.js (median of N
# timed runs), then one `safeinfer run` on CPU whose outputs are compared with ONNX Runtime's (largest |diff|
# relative to the output's largest magnitude). Environment: SAFEINFER (default build/bin/safeinfer), MODELS_DIR
# (default build/qrb), ORT_NODE_MODULES (onnxruntime-node), PYTHON (default /usr/bin/python3).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
SAFEINFER=${SAFEINFER:-$root/build/bin/safeinfer}
MODELS_DIR=${MODELS_DIR:-$root/build/qrb}
PYTHON=${PYTHON:-/usr/bin/python3}
models=unet_int8,crnn_lstm,enc_q,enc_tiny_q,dec_step_q,vad16k
threads="1 2"
iterations=10
warmup=2
. "$root/bench/opts.sh"
parse_opts "models threads iterations warmup" "$@"
mkdir -p "$MODELS_DIR"
cd "$MODELS_DIR"

# --- models ---
[ -f unet_int8.onnx ] || "$PYTHON" "$root/models/cnn.py" unet_int8 unet_int8.onnx
[ -f crnn_lstm.onnx ] || "$PYTHON" "$root/models/cnn.py" crnn crnn_lstm.onnx --lstm
[ -d speech ] || "$PYTHON" "$root/models/speech.py" speech --quantize dynamic
[ -d speech_tiny ] || "$PYTHON" "$root/models/speech.py" speech_tiny --tiny --quantize dynamic
[ -f vad.onnx ] || "$PYTHON" "$root/models/vad.py" vad.onnx
[ -f enc_q.onnx ] || cp speech/encoder_model_quantized.onnx enc_q.onnx
[ -f enc_tiny_q.onnx ] || cp speech_tiny/encoder_model_quantized.onnx enc_tiny_q.onnx
[ -f dec_step_q.onnx ] || "$PYTHON" "$root/bench/inline_if.py" speech/decoder_model_merged_quantized.onnx dec_step_q.onnx --branch then
[ -f vad16k.onnx ] || "$PYTHON" "$root/bench/inline_if.py" vad.onnx vad16k.onnx --branch then

# --- inputs (fixed seed) ---
"$PYTHON" - <<'EOF'
import os, numpy as np, onnx
rng = np.random.default_rng(7)
def save(model, arrays):
    d = model + ".inputs"
    os.makedirs(d, exist_ok=True)
    for k, v in arrays.items():
        np.save(os.path.join(d, k + ".npy"), v)
f32 = np.float32
save("unet_int8", {"input": rng.standard_normal((1, 3, 1024, 1024)).astype(f32)})
save("crnn_lstm", {"x": rng.standard_normal((1, 3, 48, 320)).astype(f32)})
save("enc_q", {"input_features": rng.standard_normal((1, 80, 200)).astype(f32)})
save("enc_tiny_q", {"input_features": rng.standard_normal((1, 80, 3000)).astype(f32)})
# one cached decoder step: 32 tokens of self-attention cache, the encoder's K/V of 100 frames (200 / 2)
m = onnx.load("dec_step_q.onnx")
ins = {"input_ids": np.array([[17]], dtype=np.int64)}
for i in m.graph.input:
    if i.name.startswith("past_key_values"):
        t = 32 if ".decoder." in i.name else 100
        ins[i.name] = (0.5 * rng.standard_normal((1, 4, t, 32))).astype(f32)
save("dec_step_q", ins)
t = np.arange(512) / 16000.0
save("vad16k", {"input": (0.3 * np.sin(2 * np.pi * 140 * t) + 0.01 * rng.standard_normal(512)).astype(f32)[None, :],
                "state": (0.1 * rng.standard_normal((2, 1, 128))).astype(f32)})
EOF

json_num() { sed -n "s/^ *\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1" | head -n 1; }
printf '%-12s %3s %12s %12s %8s %10s %10s  %s\n' model thr si_med_ms ort_med_ms si/ort si_rss_MiB ort_rss_MiB "max|diff|/scale (CPU vs ORT)"
for m in ${models//,/ }; do
  args=()
  for f in "$m.inputs"/*.npy; do n=$(basename "$f" .npy); args+=(--input "$n=$f"); done
  ortargs=()
  for f in "$m.inputs"/*.npy; do n=$(basename "$f" .npy); ortargs+=("$n=$f"); done
  # correctness: one CPU run against ORT's outputs
  rm -rf "$m.si-out" "$m.ort-out"
  "$SAFEINFER" run "$m.onnx" --devices CPU "${args[@]}" --output-dir "$m.si-out" >/dev/null
  node "$root/models/ort_run.js" "$m.onnx" "${ortargs[@]}" --out "$m.ort-out" --threads 1 --repeat 1 >/dev/null 2>&1
  diff=$("$PYTHON" - "$m.si-out" "$m.ort-out" <<'EOF'
import sys, os, numpy as np
a, b = sys.argv[1], sys.argv[2]
worst = []
for f in sorted(os.listdir(b)):
    x = np.load(os.path.join(a, f)).astype(np.float64); y = np.load(os.path.join(b, f)).astype(np.float64)
    assert x.shape == y.shape, (f, x.shape, y.shape)
    scale = max(np.abs(y).max(), 1e-30)
    worst.append((np.abs(x - y).max() / scale, f[:-4]))
w = max(worst)
print(f"{w[0]:.2e} ({w[1]}; {len(worst)} outputs)")
EOF
)
  for t in $threads; do
    js="$m.si.t$t.json"
    "$SAFEINFER" bench "$m.onnx" --devices CPU --threads "$t" --iterations "$iterations" --warmup "$warmup" "${args[@]}" --json "$js" >/dev/null
    ort=$(node "$root/models/ort_run.js" "$m.onnx" "${ortargs[@]}" --threads "$t" --repeat "$iterations" --warmup "$warmup" 2>/dev/null)
    ort_med=$(echo "$ort" | sed -n 's/.*"median_ms": *\([0-9.eE+-]*\).*/\1/p')
    ort_rss=$(echo "$ort" | sed -n 's/.*"peak_rss_mib": *\([0-9.eE+-]*\).*/\1/p')
    si_med=$(json_num "$js" median_ms)
    si_rss=$(json_num "$js" peak_rss_mib)
    ratio=$(awk -v a="$si_med" -v b="$ort_med" 'BEGIN { printf "%.2f", a / b }')
    printf '%-12s %3s %12.3f %12.3f %8s %10s %10s  %s\n' "$m" "$t" "$si_med" "$ort_med" "$ratio" "$si_rss" "$ort_rss" "$diff"
  done
done
