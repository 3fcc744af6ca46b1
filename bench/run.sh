#!/usr/bin/env bash
# bench/run.sh — benchmark safeinfer against ONNX Runtime on the models of bench/make_models.py.
#
# usage: bench/run.sh [--small | --all] [--models NAME,...] [--threads "1 2"] [--iterations N] [--warmup N]
#                     [--devices LIST]
#
#   --small        the quick models (resnet18_small, mobilenetv2_small, bert_tiny) instead of the full ones
#                  (resnet50, mobilenetv2, bert_base, text_detector, yolo, unet, u2net_fp16, speech_encoder, yolo_qop,
#                  unet_qop, resnet50_qdq, bert_base_qdq, yolo_qdq, mobilenetv2_qdq, mobilenetv2_qop); --all
#                  runs both
#   --threads      thread counts to run, each for safeinfer and ONNX Runtime (default "1 2")
#   --iterations   timed runs per model and thread count (default 20; 3 on REF with a full-size model)
#   --warmup       untimed runs after the first inference (default 3; 1 on REF with a full-size model)
#   --devices      safeinfer device list (default CPU; REF, with a notice, when this safeinfer has no CPU device)
#
# Environment: SAFEINFER (the safeinfer binary, default build/bin/safeinfer), MODELS_DIR (default
# build/bench-models), RESULTS_DIR (default $MODELS_DIR/results), PYTHON (default: the first of /usr/bin/python3 and
# the python3s on PATH that has numpy and onnx, scripts/find-python.sh), ORT_NODE_MODULES (a node_modules folder holding onnxruntime-node; default bench/node_modules).
# Models and their inputs are written once by make_models.py and reused; the same .npy inputs and thread
# count go to both runtimes. See bench/README.md for how to read the numbers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
SAFEINFER=${SAFEINFER:-$root/build/bin/safeinfer}
MODELS_DIR=${MODELS_DIR:-$root/build/bench-models}
RESULTS_DIR=${RESULTS_DIR:-$MODELS_DIR/results}
PYTHON=${PYTHON:-$("$root/scripts/find-python.sh" onnx numpy || echo /usr/bin/python3)}
echo "bench: using Python $PYTHON" >&2

set_name=full models="" threads="1 2" iterations="" warmup="" devices=CPU devices_given=0
while [ $# -gt 0 ]; do
    case "$1" in
    --small) set_name=small ;;
    --all) set_name=all ;;
    --models) models=${2//,/ }; shift ;;
    --threads) threads=$2; shift ;;
    --iterations) iterations=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --devices) devices=$2; devices_given=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$models" ]; then
    case $set_name in
    full) models="resnet50 mobilenetv2 bert_base text_detector yolo unet u2net_fp16 speech_encoder yolo_qop unet_qop resnet50_qdq bert_base_qdq yolo_qdq mobilenetv2_qdq mobilenetv2_qop" ;;
    small) models="resnet18_small mobilenetv2_small bert_tiny" ;;
    all) models="resnet50 mobilenetv2 bert_base text_detector yolo unet u2net_fp16 speech_encoder yolo_qop unet_qop resnet50_qdq bert_base_qdq yolo_qdq mobilenetv2_qdq mobilenetv2_qop resnet18_small mobilenetv2_small bert_tiny" ;;
    esac
fi

if [ ! -x "$SAFEINFER" ]; then
    echo "run.sh: no safeinfer binary at $SAFEINFER; build it first:" >&2
    echo "  cmake -S $root -B $root/build -DCMAKE_BUILD_TYPE=Release && cmake --build $root/build -j" >&2
    echo "  (or point SAFEINFER at one)" >&2
    exit 1
fi

# --- models and inputs ----------------------------------------------------------------------------------
missing=""
for m in $models; do
    [ -f "$MODELS_DIR/$m.onnx" ] && [ -d "$MODELS_DIR/$m.inputs" ] || missing="$missing,$m"
done
if [ -n "$missing" ]; then
    echo "== building models into $MODELS_DIR"
    "$PYTHON" "$here/make_models.py" "$MODELS_DIR" --models "${missing#,}"
fi
mkdir -p "$RESULTS_DIR"

# --- safeinfer devices: CPU, or REF when this build has no CPU device --------------------------------------
if [ "$devices_given" = 0 ]; then
    # the device list is checked before compiling, so a tiny model answers "unknown device" at once
    if ! probe=$("$SAFEINFER" run "$root/examples/tiny_cnn.onnx" --shape batch=1 --devices CPU 2>&1 >/dev/null) &&
       printf '%s' "$probe" | grep -q "unknown device"; then
        echo "NOTICE: this safeinfer has no CPU device ($(printf '%s' "$probe" | grep -o "unknown device.*" | head -1));"
        echo "        falling back to the REF device, a plain reference implementation that is much slower."
        devices=REF
    fi
fi
big=0
for m in $models; do case $m in resnet50|mobilenetv2|bert_base|text_detector|yolo|unet|u2net_fp16) big=1 ;; esac; done
if [ "$devices" = REF ] && [ $big = 1 ]; then
    if [ -z "$iterations" ] || [ -z "$warmup" ]; then
        echo "NOTICE: REF is slow on big models: using --iterations ${iterations:-3} --warmup ${warmup:-1} (override with" \
             "--iterations/--warmup; --small runs the quick models)."
    fi
    iterations=${iterations:-3}
    warmup=${warmup:-1}
fi
iterations=${iterations:-20}
warmup=${warmup:-3}

# --- ONNX Runtime (node) ------------------------------------------------------------------------------------
have_ort=0
if [ -z "${ORT_NODE_MODULES:-}" ] && [ -d "$here/node_modules/onnxruntime-node" ]; then
    export ORT_NODE_MODULES=$here/node_modules
fi
if ! command -v node >/dev/null 2>&1; then
    echo "NOTICE: node is not installed: ONNX Runtime is not run; safeinfer's numbers only."
elif [ -n "${ORT_NODE_MODULES:-}" ] && [ -d "$ORT_NODE_MODULES/onnxruntime-node" ]; then
    have_ort=1
elif (cd "$here" && node -e "require.resolve('onnxruntime-node')") >/dev/null 2>&1; then  # as ort_run.js resolves it
    have_ort=1
else
    echo "NOTICE: onnxruntime-node not found (looked in \$ORT_NODE_MODULES and $here/node_modules): safeinfer's numbers only."
    echo "        To compare: (cd bench && npm install --ignore-scripts onnxruntime-node), see bench/README.md."
fi

# --- runs ---------------------------------------------------------------------------------------------------
# bench --json writes one key per line: "key": 1.5, or "key": "text",
json_num() { sed -n "s/^ *\"$2\": *\([^\",]*\),\{0,1\}$/\1/p" "$1" | head -1; }
json_text() { sed -n "s/^ *\"$2\": *\"\(.*\)\",\{0,1\}$/\1/p" "$1" | head -1; }
ort_field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

rows=()
node_base=""
ort_desc="no ONNX Runtime"
if [ $have_ort = 1 ]; then
    ort_pkg=${ORT_NODE_MODULES:+$ORT_NODE_MODULES/}onnxruntime-node/package.json
    ort_desc="ONNX Runtime $(cd "$here" && node -e "console.log(require('$ort_pkg').version)" 2>/dev/null || echo '(version ?)') on the same inputs"
fi
echo "== safeinfer ($SAFEINFER) on $devices, 1 + $warmup untimed and $iterations timed runs; $ort_desc"
for m in $models; do
    model="$MODELS_DIR/$m.onnx"
    feeds=()
    for f in "$MODELS_DIR/$m.inputs"/*.npy; do feeds+=("$(basename "$f" .npy)=$f"); done
    si_inputs=()
    for f in "${feeds[@]}"; do si_inputs+=(--input "$f"); done
    for t in $threads; do
        js="$RESULTS_DIR/$m.t$t.json"
        echo "-- $m, $t thread(s)"
        si_med=- si_rss=- si_dev=- ort_med=- ort_rss=- ratio=-
        rm -f "$js"
        if "$SAFEINFER" bench "$model" --devices "$devices" --threads "$t" --iterations "$iterations" --warmup "$warmup" \
                "${si_inputs[@]}" --json "$js"; then
            si_med=$(json_num "$js" median_ms)
            si_rss=$(json_num "$js" peak_rss_mib)
            si_dev=$(json_text "$js" devices)
        else
            echo "   safeinfer failed on $m (exit $?)"
            si_dev=failed
        fi
        if [ $have_ort = 1 ]; then
            # ORT's first run and warmup are untimed too: first inference + warmup, like safeinfer bench
            if out=$(ORT_WARMUP=$((warmup + 1)) node "$here/ort_run.js" "$model" "$RESULTS_DIR/$m.ort-out" "$t" \
                        "$iterations" "${feeds[@]}" 2>"$RESULTS_DIR/$m.t$t.ort.log"); then
                line=$(printf '%s\n' "$out" | grep '^ort:' | tail -1)
                echo "   $line"
                ort_med=$(ort_field "$line" median_ms)
                ort_rss=$(ort_field "$line" peak_rss_mib)
                [ -n "$node_base" ] || node_base=$(ort_field "$line" start_rss_mib)
            else
                echo "   ONNX Runtime failed on $m: $(printf '%s' "$out" | tail -1) $(tail -1 "$RESULTS_DIR/$m.t$t.ort.log")"
            fi
        fi
        if [ "$si_med" != - ] && [ "$ort_med" != - ]; then
            ratio=$(awk -v a="$si_med" -v b="$ort_med" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        fi
        rows+=("$m|$t|$si_dev|$si_med|$ort_med|$ratio|$si_rss|$ort_rss")
    done
done

# --- table --------------------------------------------------------------------------------------------------
fmt="%-18s %7s %-8s %14s %10s %12s %14s %12s\n"
{
    echo
    echo "Results (median latency of $iterations timed runs after 1 + $warmup untimed; peak RSS of the whole process):"
    printf "$fmt" model threads device "safeinfer ms" "ORT ms" "ratio si/ORT" "si peak MiB" "ORT peak MiB"
    for r in "${rows[@]}"; do
        IFS='|' read -r m t d a b q c e <<<"$r"
        num() { [ "$1" = - ] && echo - || awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
        printf "$fmt" "$m" "$t" "$d" "$(num "$a")" "$(num "$b")" "$q" "$(num "$c")" "$(num "$e")"
    done
    [ $have_ort = 1 ] || echo "(ONNX Runtime not available: its columns are empty)"
    [ -z "$node_base" ] || echo "(ORT's peak RSS includes node.js and the onnxruntime library: $node_base MiB before the model is loaded)"
    [ "$devices" != REF ] || echo "(safeinfer ran on REF, the reference device, not the optimized CPU device)"
} | tee "$RESULTS_DIR/table.txt"
