#!/bin/sh
# Partial shape inference on real models with open dimensions (models/*.py, plain forms): every value, in the
# subgraphs of the merged speech decoder's If too, gets an element type and a rank (test_shapes), the
# symbols of the inputs reach the outputs where the ops keep them, and with every input dimension fixed (what
# --shape does) every dimension of every value is known.
#
#   shapes_models.sh TEST_SHAPES SOURCE_DIR WORK_DIR
#
# Exit 77 (skipped) without a Python that has onnx and numpy.
set -e
T=$1
SRC=$2
W=$3
PY=/usr/bin/python3
if ! "$PY" -c 'import onnx, numpy' 2>/dev/null; then
    echo "skipped: $PY with onnx and numpy is needed to write the models"
    exit 77
fi
rm -rf "$W"
mkdir -p "$W"
"$PY" "$SRC/models/llm.py" "$W/llm.onnx" --layers 2 --hidden 64 --heads 4 --inter 128 --vocab 256 >/dev/null
"$PY" "$SRC/models/transformer.py" bert "$W/bert.onnx" >/dev/null
"$PY" "$SRC/models/transformer.py" conformer "$W/conformer.onnx" >/dev/null
"$PY" "$SRC/models/speech.py" "$W/speech" >/dev/null
"$PY" "$SRC/models/cnn.py" text_detector "$W/text_detector.onnx" --small >/dev/null
TD=p2o.DynamicDimension

echo "--- open batch, sequence, frames, image size"
"$T" \
    "$W/llm.onnx" \
        --expect embed=batch_size,sequence_length,64 \
        --expect model.layers.0.q.t=batch_size,4,sequence_length,16 \
        --expect present.0.key=batch_size,4,?,16 \
        --expect logits=batch_size,?,256 \
    "$W/bert.onnx" \
        --expect extended_attention_mask=batch_size,1,1,sequence_length \
        --expect last_hidden_state=batch_size,?,128 \
        --expect pooler_output=batch_size,128 \
    "$W/conformer.onnx" \
        --expect encoder_out=batch,?,96 \
        --expect encoder_out_lens=batch \
    "$W/speech/encoder_model.onnx" \
        --expect last_hidden_state=batch_size,?,128 \
    "$W/speech/decoder_model_merged.onnx" \
        --expect logits=batch_size,?,1024 \
        --expect present.0.decoder.key=batch_size,4,?,32 \
        --expect present.1.encoder.value=batch_size,4,?,32 \
    "$W/text_detector.onnx" \
        --expect "sigmoid_0.tmp_0=$TD.0,1,?,?"

echo "--- every input dimension fixed"
"$T" \
    "$W/llm.onnx" batch_size=1 sequence_length=3 total_sequence_length=5 past_sequence_length=2 --all-known \
        --expect logits=1,3,256 --expect present.1.value=1,4,5,16 \
    "$W/bert.onnx" batch_size=2 sequence_length=7 --all-known --expect last_hidden_state=2,7,128 \
    "$W/conformer.onnx" batch=2 frames=200 --all-known --expect encoder_out=2,49,96 \
    "$W/speech/encoder_model.onnx" batch_size=1 encoder_frames=200 --all-known --expect last_hidden_state=1,100,128 \
    "$W/speech/decoder_model_merged.onnx" batch_size=1 decoder_sequence_length=1 encoder_sequence_length=100 \
        past_decoder_sequence_length=4 encoder_sequence_length_out=100 \
        --expect logits=1,1,1024 --expect present.0.encoder.key=1,4,100,32 \
        --expect present.0.decoder.key=1,4,?,32 \
    "$W/text_detector.onnx" "$TD.0=1" "$TD.1=160" "$TD.2=160" --all-known --expect "sigmoid_0.tmp_0=1,1,160,160"
