#!/usr/bin/env python3
"""Write benchmark models (real architectures, random weights from a fixed seed) and their inputs.

usage: make_models.py OUTDIR [--small | --all] [--models NAME,NAME...] [--force]

  default   the full-size models: resnet50, mobilenetv2, bert_base, text_detector, yolo, unet, u2net_fp16,
            speech_encoder, yolo_qop, unet_qop, resnet50_qdq, bert_base_qdq, yolo_qdq, mobilenetv2_qdq,
            mobilenetv2_qop
  --small   quick variants for tests and the REF device: resnet18_small, mobilenetv2_small, bert_tiny,
            mobilenetv2_small_qop
  --all     both sets
  --models  only the named models (from either set)
  --force   rewrite files that already exist (otherwise existing models are kept)

For each model NAME it writes OUTDIR/NAME.onnx and OUTDIR/NAME.inputs/<input>.npy (one input set, fixed
seed, the same one bench/run.sh feeds to safeinfer and to ONNX Runtime) and prints the path, the parameter
count and the file size. Needs numpy and onnx (>= 1.12; LayerNormalization needs opset 17).

The models:
  resnet50        ResNet-50 v1 (He et al. 2015): 7x7/2 stem conv + BN + ReLU + 3x3/2 max pool, bottleneck
                  blocks [3, 4, 6, 3] (widths 64..512, expansion 4, stride on the first 1x1 conv as in v1, 1x1
                  projection shortcuts), BN after every conv, global average pool, FC 1000. 1x3x224x224, opset 13.
  mobilenetv2     MobileNetV2 (Sandler et al. 2018), width 1.0: 3x3/2 stem, 17 inverted residual blocks
                  (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1)
                  with depthwise 3x3 convs, ReLU6 as Clip(0, 6), linear bottlenecks, 1x1 conv to 1280, average
                  pool, FC 1000. BN after every conv. 1x3x224x224, opset 13.
  bert_base       BERT-base encoder: word (30522 x 768) + position (512 x 768) + token type (2 x 768) embedding
                  Gathers, LayerNormalization, 12 layers of 12-head self-attention (MatMul, Reshape, Transpose,
                  Softmax; the attention mask becomes an additive bias (1 - mask) * -10000) and a GELU (Erf)
                  feed-forward of 3072, post-LN residuals, and the tanh pooler. Inputs input_ids and
                  attention_mask, int64 [1, 128]; outputs last_hidden_state [1,128,768], pooler_output [1,768].
                  Opset 17.
  text_detector   DBNet text detector (PaddleOCR mobile: MobileNetV3 backbone, FPN with six Resizes, a head
                  with two stride-2 ConvTransposes), 1x3x640x640, opset 11 (models/cnn.py, as the next three).
  yolo            YOLOv8n (Conv + SiLU, C2f, SPPF, Resize + Concat neck, decode in the graph), 1x3x640x640.
  unet            U-Net (base width 32, four stride-2 ConvTranspose ups with skip Concats), 1x3x512x512.
  u2net_fp16      U^2-Net (u2netp geometry) in float16 (weights and activations; float32 input and outputs with
                  Casts at the edges, as ONNX Runtime's converter leaves them with keep_io_types), 1x3x1024x1024.
  speech_encoder  Whisper-tiny's encoder (models/speech.py --tiny: Conv1d 80 -> 384 and 384 -> 384 stride 2 with GELU
                  (Erf), sinusoidal positions, 4 pre-LN layers of 6-head attention and a 1536 GELU MLP), float32,
                  input_features [1, 80, 3000] (30 s of log-mel frames; the dims are open in the model), opset 17.
  yolo_qop, unet_qop  the yolo and unet above quantized statically in ONNX Runtime's QOperator form (models/quant.py:
                  QuantizeLinear, QLinearConv with int8 per-channel weights, com.microsoft QLinearAdd / QLinearMul /
                  QLinearSigmoid / QLinearConcat, MaxPool and Resize on uint8), calibrated on the input image.
  resnet50_qdq, bert_base_qdq, yolo_qdq, mobilenetv2_qdq  resnet50, bert_base, yolo and mobilenetv2 quantized
                  statically in the QDQ form (QuantizeLinear / DequantizeLinear pairs on activations, int8 weights
                  behind DequantizeLinear; ONNX Runtime's default).
  mobilenetv2_qop mobilenetv2 in the QOperator form (QLinearConv, QLinearAdd, QLinearGlobalAveragePool, QGemm).
  resnet18_small  ResNet-18 topology (basic blocks [2, 2, 2, 2]) at half width (32..256), 1x3x112x112, FC 100.
  mobilenetv2_small  MobileNetV2 at width 0.5, 1x3x96x96, FC 100.
  mobilenetv2_small_qop  that one in the QOperator form (as mobilenetv2_qop).
  bert_tiny       the BERT graph with 2 layers, hidden 128, 2 heads, intermediate 512, vocabulary 1024, seq 32.

Weights: conv weights He-normal, BN statistics near (mean 0, var 1) with gamma near 1, BERT weights N(0, 0.02)
with LayerNorm gamma 1, beta 0 (BERT's own initialisation), so activations stay in a normal range and outputs
can be compared with ONNX Runtime.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import builder  # noqa: E402 (models/builder.py)

SEED = 20240601
# BN gamma of the last conv of a residual branch: small, so that activations do not grow block after block
# (the "zero-init residual" idea, softened) and the logits stay in a range where outputs compare well.
RESIDUAL_GAMMA = (0.2, 0.4)


class Builder(builder.Builder):
    """Accumulates nodes and initializers for one graph, with unique names (models/builder.py)."""

    def model(self, name, inputs, outputs, opset):
        return super().model(name, inputs, outputs, opset, producer="safeinfer bench/make_models.py")


# --- CNN pieces ---------------------------------------------------------------------------------------------

def conv_bn(b, x, cin, cout, k, stride, name, groups=1, act="relu", gamma_range=(0.7, 1.0)):
    """Conv (no bias) + BatchNormalization + optional ReLU / ReLU6 (Clip)."""
    fan_in = cin // groups * k * k
    w = b.const(f"{name}.weight", b.normal((cout, cin // groups, k, k), np.sqrt(2.0 / fan_in)))
    y = b.node("Conv", [x, w], f"{name}.conv", kernel_shape=[k, k], strides=[stride, stride],
               pads=[k // 2] * 4, group=groups)
    gamma = b.const(f"{name}.bn.gamma", b.rng.uniform(*gamma_range, cout).astype(np.float32))
    beta = b.const(f"{name}.bn.beta", b.normal((cout,), 0.05))
    mean = b.const(f"{name}.bn.mean", b.normal((cout,), 0.05))
    var = b.const(f"{name}.bn.var", b.rng.uniform(0.8, 1.2, cout).astype(np.float32))
    y = b.node("BatchNormalization", [y, gamma, beta, mean, var], f"{name}.bn", epsilon=1e-5)
    if act == "relu":
        y = b.node("Relu", [y], f"{name}.relu")
    elif act == "relu6":
        y = b.node("Clip", [y, b.zero6[0], b.zero6[1]], f"{name}.relu6")
    return y


def classifier(b, name, x, y, cin, hw, classes, seed):
    """The head (average pool, FC to classes) on features y of image input x [1, 3, hw, hw]: the model and its
    input (normal, from seed + 1)."""
    y = b.node("GlobalAveragePool", [y], "pool")
    y = b.node("Flatten", [y], "flatten", axis=1)
    w = b.const("fc.weight", b.normal((classes, cin), np.sqrt(1.0 / cin)))
    bias = b.const("fc.bias", np.zeros(classes, np.float32))
    y = b.node("Gemm", [y, w, bias], "logits", transB=1)
    inp = helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, hw, hw])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, classes])
    m = b.model(name, [inp], [out], 13)
    rng = np.random.default_rng(seed + 1)
    return m, {x: rng.standard_normal((1, 3, hw, hw)).astype(np.float32)}


def resnet(name, block, layers, widths, hw, classes, seed):
    b = Builder(seed)
    x = "input"
    y = conv_bn(b, x, 3, widths[0], 7, 2, "stem")
    y = b.node("MaxPool", [y], "stem.maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = widths[0]
    expansion = 4 if block == "bottleneck" else 1
    for stage, (n, width) in enumerate(zip(layers, widths)):
        for i in range(n):
            stride = 2 if (i == 0 and stage > 0) else 1
            cout = width * expansion
            p = f"layer{stage + 1}.{i}"
            if block == "bottleneck":  # v1: the stride sits on the first 1x1 conv
                h = conv_bn(b, y, cin, width, 1, stride, f"{p}.conv1")
                h = conv_bn(b, h, width, width, 3, 1, f"{p}.conv2")
                h = conv_bn(b, h, width, cout, 1, 1, f"{p}.conv3", act=None, gamma_range=RESIDUAL_GAMMA)
            else:
                h = conv_bn(b, y, cin, width, 3, stride, f"{p}.conv1")
                h = conv_bn(b, h, width, cout, 3, 1, f"{p}.conv2", act=None, gamma_range=RESIDUAL_GAMMA)
            short = y if (stride == 1 and cin == cout) else conv_bn(b, y, cin, cout, 1, stride, f"{p}.downsample", act=None)
            y = b.node("Add", [h, short], f"{p}.add")
            y = b.node("Relu", [y], f"{p}.relu")
            cin = cout
    return classifier(b, name, x, y, cin, hw, classes, seed)


def make_divisible(v, d=8):
    r = max(d, int(v + d / 2) // d * d)
    return r + d if r < 0.9 * v else r


def mobilenetv2(name, width, hw, classes, seed):
    b = Builder(seed)
    b.zero6 = (b.const("relu6.min", np.array(0.0, np.float32)), b.const("relu6.max", np.array(6.0, np.float32)))
    x = "input"
    cin = make_divisible(32 * width)
    y = conv_bn(b, x, 3, cin, 3, 2, "features.0", act="relu6")
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    k = 1
    for t, c, n, s in settings:
        cout = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{k}"
            hidden = cin * t
            h = y
            if t != 1:
                h = conv_bn(b, h, cin, hidden, 1, 1, f"{p}.expand", act="relu6")
            h = conv_bn(b, h, hidden, hidden, 3, stride, f"{p}.dw", groups=hidden, act="relu6")
            h = conv_bn(b, h, hidden, cout, 1, 1, f"{p}.project", act=None)  # linear bottleneck
            y = b.node("Add", [y, h], f"{p}.add") if (stride == 1 and cin == cout) else h
            cin = cout
            k += 1
    last = make_divisible(1280 * max(1.0, width))
    y = conv_bn(b, y, cin, last, 1, 1, f"features.{k}", act="relu6")
    return classifier(b, name, x, y, last, hw, classes, seed)


# --- BERT ---------------------------------------------------------------------------------------------------

def bert(name, layers, hidden, heads, inter, seq, vocab, seed, max_pos=512):
    b = Builder(seed)
    std = 0.02
    head = hidden // heads
    f32 = lambda v: np.array(v, np.float32)  # noqa: E731

    def linear(x, cin, cout, p):
        w = b.const(f"{p}.weight", b.normal((cin, cout), std))
        bias = b.const(f"{p}.bias", np.zeros(cout, np.float32))
        return b.node("Add", [b.node("MatMul", [x, w], f"{p}.matmul"), bias], f"{p}.add")

    def layer_norm(x, p):
        g = b.const(f"{p}.gamma", np.ones(hidden, np.float32))
        be = b.const(f"{p}.beta", np.zeros(hidden, np.float32))
        return b.node("LayerNormalization", [x, g, be], p, axis=-1, epsilon=1e-12)

    # embeddings
    ids, mask = "input_ids", "attention_mask"
    word = b.const("embeddings.word", b.normal((vocab, hidden), std))
    pos = b.const("embeddings.position", b.normal((max_pos, hidden), std))
    tok = b.const("embeddings.token_type", b.normal((2, hidden), std))
    pos_ids = b.const("embeddings.position_ids", np.arange(seq, dtype=np.int64)[None, :])
    tok_ids = b.const("embeddings.token_type_ids", np.zeros((1, seq), np.int64))
    e = b.node("Gather", [word, ids], "embeddings.word_gather", axis=0)
    e = b.node("Add", [e, b.node("Gather", [pos, pos_ids], "embeddings.position_gather", axis=0)], "embeddings.add_pos")
    e = b.node("Add", [e, b.node("Gather", [tok, tok_ids], "embeddings.token_type_gather", axis=0)], "embeddings.add_tok")
    x = layer_norm(e, "embeddings.ln")

    # attention mask -> additive bias [1, 1, 1, seq]: 0 where attended, -10000 where masked
    m = b.node("Cast", [mask], "mask.cast", to=TensorProto.FLOAT)
    m = b.node("Sub", [b.const("mask.one", f32(1.0)), m], "mask.invert")
    m = b.node("Mul", [m, b.const("mask.neg", f32(-10000.0))], "mask.scale")
    bias = b.node("Unsqueeze", [m, b.const("mask.axes", np.array([1, 2], np.int64))], "mask.bias")

    split_shape = b.const("attn.split_shape", np.array([1, seq, heads, head], np.int64))
    merge_shape = b.const("attn.merge_shape", np.array([1, seq, hidden], np.int64))
    scale = b.const("attn.scale", f32(1.0 / np.sqrt(head)))
    inv_sqrt2 = b.const("gelu.inv_sqrt2", f32(1.0 / np.sqrt(2.0)))
    one, half = b.const("gelu.one", f32(1.0)), b.const("gelu.half", f32(0.5))

    for li in range(layers):
        p = f"layer{li}"
        q = linear(x, hidden, hidden, f"{p}.attn.q")
        k = linear(x, hidden, hidden, f"{p}.attn.k")
        v = linear(x, hidden, hidden, f"{p}.attn.v")
        q = b.node("Transpose", [b.node("Reshape", [q, split_shape], f"{p}.attn.q_split")], f"{p}.attn.q_t", perm=[0, 2, 1, 3])
        k = b.node("Transpose", [b.node("Reshape", [k, split_shape], f"{p}.attn.k_split")], f"{p}.attn.k_t", perm=[0, 2, 3, 1])
        v = b.node("Transpose", [b.node("Reshape", [v, split_shape], f"{p}.attn.v_split")], f"{p}.attn.v_t", perm=[0, 2, 1, 3])
        s = b.node("MatMul", [q, k], f"{p}.attn.scores")              # [1, heads, seq, seq]
        s = b.node("Mul", [s, scale], f"{p}.attn.scaled")
        s = b.node("Add", [s, bias], f"{p}.attn.masked")
        s = b.node("Softmax", [s], f"{p}.attn.probs", axis=-1)
        c = b.node("MatMul", [s, v], f"{p}.attn.context")             # [1, heads, seq, head]
        c = b.node("Transpose", [c], f"{p}.attn.context_t", perm=[0, 2, 1, 3])
        c = b.node("Reshape", [c, merge_shape], f"{p}.attn.context_merge")
        a = linear(c, hidden, hidden, f"{p}.attn.out")
        x = layer_norm(b.node("Add", [a, x], f"{p}.attn.residual"), f"{p}.attn.ln")
        h = linear(x, hidden, inter, f"{p}.ffn.in")
        g = b.node("Erf", [b.node("Mul", [h, inv_sqrt2], f"{p}.gelu.div")], f"{p}.gelu.erf")
        g = b.node("Mul", [b.node("Mul", [h, half], f"{p}.gelu.half"), b.node("Add", [g, one], f"{p}.gelu.add")], f"{p}.gelu")
        h = linear(g, inter, hidden, f"{p}.ffn.out")
        x = layer_norm(b.node("Add", [h, x], f"{p}.ffn.residual"), f"{p}.ffn.ln")

    last = b.node("Identity", [x], "last_hidden_state")
    first = b.node("Gather", [x, b.const("pooler.index", np.array(0, np.int64))], "pooler.first", axis=1)
    pooled = b.node("Tanh", [linear(first, hidden, hidden, "pooler.dense")], "pooler_output")
    inputs = [helper.make_tensor_value_info(ids, TensorProto.INT64, [1, seq]),
              helper.make_tensor_value_info(mask, TensorProto.INT64, [1, seq])]
    outputs = [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, seq, hidden]),
               helper.make_tensor_value_info(pooled, TensorProto.FLOAT, [1, hidden])]
    model = b.model(name, inputs, outputs, 17)
    rng = np.random.default_rng(seed + 1)
    n_real = seq * 3 // 4  # the last quarter is padding, so the mask matters
    input_ids = rng.integers(0, vocab, (1, seq), dtype=np.int64)
    input_ids[0, n_real:] = 0
    attention_mask = np.zeros((1, seq), np.int64)
    attention_mask[0, :n_real] = 1
    return model, {ids: input_ids, mask: attention_mask}


# --- the model list -----------------------------------------------------------------------------------------

FULL = {
    "resnet50": lambda: resnet("resnet50", "bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], 224, 1000, SEED),
    "mobilenetv2": lambda: mobilenetv2("mobilenetv2", 1.0, 224, 1000, SEED + 10),
    "bert_base": lambda: bert("bert_base", 12, 768, 12, 3072, 128, 30522, SEED + 20),
    "text_detector": lambda: vision("text_detector"),
    "yolo": lambda: vision("yolo"),
    "unet": lambda: vision("unet"),
    "u2net_fp16": lambda: vision("u2net_fp16", keep_io_types=True),
    "speech_encoder": lambda: speech_encoder(),
    "yolo_qop": lambda: vision("yolo", qop=True),
    "unet_qop": lambda: vision("unet", qop=True),
    "resnet50_qdq": lambda: qdq(FULL["resnet50"]),
    "bert_base_qdq": lambda: qdq(FULL["bert_base"]),
    "yolo_qdq": lambda: qdq(FULL["yolo"]),
    "mobilenetv2_qdq": lambda: qdq(FULL["mobilenetv2"]),
    "mobilenetv2_qop": lambda: qop(FULL["mobilenetv2"]),
}


def qdq(make):
    """A float model of this list quantized statically in the QDQ form (models/quant.py quantize_qdq: ONNX Runtime's
    default), calibrated on its input."""
    from quant import quantize_qdq  # noqa: E402, PLC0415 (models/quant.py)
    model, inputs = make()
    model, _ = quantize_qdq(model, inputs)
    model.graph.name += "_qdq"
    return model, inputs
def qop(make):
    """A float model of this list quantized statically in ONNX Runtime's QOperator form (models/quant.py
    quantize_static with the com.microsoft ops), calibrated on its input."""
    from quant import quantize_static  # noqa: E402, PLC0415 (models/quant.py)
    model, inputs = make()
    model, _ = quantize_static(model, inputs, ms_ops=True)
    model.graph.name += "_qop"
    return model, inputs


def vision(name, size=None, keep_io_types=False, qop=False):
    """A model of models/cnn.py (the vision models people deploy) and its input: an image in 0..1. qop: quantized
    statically in ONNX Runtime's QOperator form with the com.microsoft ops (models/quant.py quantize_static),
    calibrated on that image."""
    import cnn  # noqa: E402, PLC0415 (models/cnn.py)
    a = argparse.Namespace(small=False, lstm=False, keep_io_types=keep_io_types, weight_type="uint8", width=None,
                           size=size, seed=5, bilinear=False)
    model, shapes = cnn.MODELS[name](a)
    rng = np.random.default_rng(SEED)
    inputs = {k: rng.random(v, dtype=np.float32) for k, v in shapes.items()}
    if qop:
        from quant import quantize_static  # noqa: E402, PLC0415 (models/quant.py)
        model, _ = quantize_static(model, inputs, ms_ops=True)
        model.graph.name += "_qop"
    return model, inputs


def speech_encoder():
    """Whisper-tiny's encoder of models/speech.py and 30 s of log-mel-like features."""
    import speech  # noqa: E402, PLC0415 (models/speech.py)
    a = argparse.Namespace(tiny=True, quantize=None, d_model=384, heads=6, encoder_layers=4, decoder_layers=4, ffn=1536,
                           vocab=51865, frames=3000, seed=8)
    model = speech.Speech(a).encoder()
    rng = np.random.default_rng(SEED + 60)
    return model, {"input_features": rng.standard_normal((1, speech.N_MELS, a.frames)).astype(np.float32)}


SMALL = {
    "resnet18_small": lambda: resnet("resnet18_small", "basic", [2, 2, 2, 2], [32, 64, 128, 256], 112, 100, SEED + 30),
    "mobilenetv2_small": lambda: mobilenetv2("mobilenetv2_small", 0.5, 96, 100, SEED + 40),
    "bert_tiny": lambda: bert("bert_tiny", 2, 128, 2, 512, 32, 1024, SEED + 50),
    "mobilenetv2_small_qop": lambda: qop(SMALL["mobilenetv2_small"]),
}


def param_count(model):
    return sum(int(np.prod(t.dims)) if t.dims else 1 for t in model.graph.initializer)


def write(outdir, name, force):
    path = os.path.join(outdir, f"{name}.onnx")
    indir = os.path.join(outdir, f"{name}.inputs")
    if not force and os.path.exists(path) and os.path.isdir(indir):
        model = onnx.load(path)
        status = "kept"
    else:
        model, inputs = {**FULL, **SMALL}[name]()
        onnx.checker.check_model(model)
        os.makedirs(indir, exist_ok=True)
        for k, v in inputs.items():
            np.save(os.path.join(indir, f"{k}.npy"), v)
        tmp = path + ".tmp"
        onnx.save(model, tmp)
        os.replace(tmp, path)
        status = "wrote"
    size = os.path.getsize(path)
    print(f"{status} {path}: {param_count(model) / 1e6:.2f} M parameters, {size / 1048576:.1f} MiB, inputs in {indir}/")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--small", action="store_true", help="the quick variants only")
    ap.add_argument("--all", action="store_true", help="full and quick variants")
    ap.add_argument("--models", help="comma-separated names (from either set)")
    ap.add_argument("--force", action="store_true", help="rewrite existing files")
    a = ap.parse_args()
    if a.models:
        names = [n for n in a.models.split(",") if n]
        bad = [n for n in names if n not in FULL and n not in SMALL]
        if bad:
            ap.error(f"unknown model(s) {', '.join(bad)}; known: {', '.join(list(FULL) + list(SMALL))}")
    else:
        names = list(SMALL) if a.small else list(FULL) + (list(SMALL) if a.all else [])
    os.makedirs(a.outdir, exist_ok=True)
    for n in names:
        write(a.outdir, n, a.force)


if __name__ == "__main__":
    main()
