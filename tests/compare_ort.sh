#!/usr/bin/env bash
# Real-model-style networks (opset 9-11 CNNs, transformer recognisers with symbolic dims, models/zoo.py's GPT-2,
# T5 encoder, EfficientNet, NMS post-processing and ViT, models/zoo2.py's super-resolution, ConvNeXt, style transfer,
# wav2vec2 and GRU tagger) and the attribute space
# of the recurrent and quantization ops (scripts/make_rnn_quant_models.py) run on safeinfer and on ONNX Runtime
# with the same inputs; they must agree to 1e-4 relative error (a model's line may ask for less, or for one device).
# usage: compare_ort.sh SAFEINFER WORKDIR DEVICES
# Exits 77 (skipped) with a message when python3-onnx/numpy, node or onnxruntime-node are absent.
set -u
bin=$1 work=$2 devices=$3
. "$(dirname "$0")/need.sh"
need_python_ort
echo "using Python $py ($("$py" -c 'import onnx, numpy; print("onnx", onnx.__version__, "numpy", numpy.__version__)'))"
mkdir -p "$work"
rc=0
# Statically quantized CNNs in ONNX Runtime's QOperator form (models/cnn.py --qop): QLinearConv chains, MaxPool and
# Slice on uint8, QLinearMatMul; the integer arithmetic must agree exactly (rtol 1e-4 on the dequantized outputs).
# The com.microsoft form (QLinearConcat) against ONNX Runtime without its graph optimizations: its optimizer rewrites
# the quantized graph into kernels that round differently (one unit now and then, which a deep random net amplifies).
# Not on REF alone: its float ConvTranspose rounds differently from ORT's in the last bit, and the QuantizeLinear
# after it turns that into a unit now and then (the CPU device's ConvTranspose sums as ORT does).
qop_models() {
  mkdir -p "$1"
  for m in yolo unet; do
    "$py" "$here/models/cnn.py" $m "$1/${m}_qop_onnx.onnx" --small --qop onnx >/dev/null && echo "$1/${m}_qop_onnx.onnx"
  done
  if [ "$devices" != REF ]; then
    "$py" "$here/models/cnn.py" unet "$1/unet_qop_ms.onnx" --small --qop ms >/dev/null && echo "$1/unet_qop_ms.onnx --ort-opt disabled"
  fi
  # QLinearAdd / QLinearMul / QLinearSigmoid (YOLO's SiLU and residuals; MobileNetV2's residual QLinearAdds, against
  # ORT's optimized graph too): computed as ORT's x86 kernels round them, so every unit agrees
  "$py" "$here/models/cnn.py" yolo "$1/yolo_qop_ms.onnx" --small --qop ms >/dev/null && echo "$1/yolo_qop_ms.onnx --ort-opt disabled"
  "$py" "$here/bench/make_models.py" "$1" --models mobilenetv2_small_qop >/dev/null && echo "$1/mobilenetv2_small_qop.onnx"
  # The QDQ form: the CPU device runs DequantizeLinear -> Conv -> QuantizeLinear as one integer convolution, as ORT's
  # optimizer does, and equals its optimized graph. REF and OCL run the graph as written, in float between the
  # pairs, and their float convolutions sum in another order than ORT's: a last-bit difference before a
  # QuantizeLinear is a unit after it, which this random net amplifies, so they are not compared exactly here.
  # (On a CPU without AVX-512 VNNI the integer convolutions are float products of the integers, cpu_int8f.c: the same bits.)
  if [ "$devices" = CPU ]; then
    "$py" "$here/models/cnn.py" yolo "$1/yolo_qdq.onnx" --small --qop qdq >/dev/null && echo "$1/yolo_qdq.onnx"
  fi
}
while read -r model args; do
  [ -n "$model" ] || continue
  # shellcheck disable=SC2086
  "$py" "$here/scripts/compare_ort.py" "$bin" "$model" --devices "$devices" --rtol 1e-4 $args --workdir "$work/$(basename "$model" .onnx)"
  r=$?
  [ $r = 77 ] && exit 77
  [ $r != 0 ] && { echo "FAIL: $model"; rc=1; }
done < <("$py" "$here/scripts/make_compare_models.py" "$work/models"; "$py" "$here/scripts/make_rnn_quant_models.py" "$work/models-rnn-quant"
         qop_models "$work/models-qop"; "$py" "$here/models/zoo.py" "$work/models-zoo"; "$py" "$here/models/zoo2.py" "$work/models-zoo2")
exit $rc
