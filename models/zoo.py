#!/usr/bin/python3
"""Small models of five more kinds people bring, written as their exporters write them (random weights, fixed seed):

  gpt2    a GPT-2 decoder as torch.onnx exports it (opset 17, no KV cache): Range positions, Split q/k/v, Reshapes
          whose shapes come from Shape/Gather/Concat, the causal mask sliced from a [1, 1, 64, 64] bool buffer and
          applied with Where, LayerNormalization, the tanh GELU written with Pow, the LM head tied to the embedding
          through a Transpose; input_ids [batch, seq]
  t5enc   a T5 encoder: bucketed relative position bias computed in the graph (Range, Sub, Abs, Less, Log of a Cast,
          Where, Min, Gather of a bias table; the Log of position 0 is -inf, cast to int64 and then not selected),
          RMS norms written as Pow/ReduceMean/Sqrt/Reciprocal, Relu FFN; input_ids [1, seq]
  effnet  an EfficientNet-B0-like CNN: MBConv blocks with depthwise 3x3/5x5 convs, squeeze-excitation
          (GlobalAveragePool, two 1x1 convs, Sigmoid, Mul), Swish as x * Sigmoid(x), Gemm head; image [N, 3, 64, 64]
  nmsdet  a detector's post-processing: box deltas and class scores from a small head, NonMaxSuppression, the
          selected boxes and scores gathered (outputs of a data-dependent length), TopK of the best scores
  vit     a ViT: patch Conv, class token Expanded to the batch and Concat'ed, position embedding, pre-LN blocks with
          the erf GELU, the class token Gathered for a Gemm head; pixel_values [batch, 3, 32, 32]

usage: zoo.py OUTDIR   writes OUTDIR/NAME.onnx and prints one line per model: its path and the --shape arguments
                       scripts/compare_ort.py needs (tests/compare_ort.sh reads them)
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def vi(n, t, shape):
    return helper.make_tensor_value_info(n, t, shape)


def save(b, name, inputs, outputs, path, opset=17):
    g = helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def W(b, base, shape, std=None):
    std = std or 1.0 / math.sqrt(shape[0])
    return b.const(base, (b.rng.standard_normal(shape) * std).astype(np.float32))


def ln(b, x, d):
    return b.node("LayerNormalization", [x, b.const("g", np.ones(d, np.float32) + 0.1 * b.rng.standard_normal(d).astype(np.float32)),
                                         b.const("bb", 0.1 * b.rng.standard_normal(d).astype(np.float32))], axis=-1, epsilon=1e-5)


def gpt2(path, d=64, heads=4, layers=2, vocab=97, ctx=64):
    b = Builder(3)
    hd = d // heads
    wte = W(b, "wte", (vocab, d), 0.5)
    wpe = W(b, "wpe", (ctx, d), 0.1)
    shp = b.node("Shape", ["input_ids"])
    S = b.node("Gather", [shp, b.i64("one", 1)], axis=0)
    pos = b.node("Range", [b.i64("z", 0), S, b.i64("o", 1)])
    pos = b.node("Unsqueeze", [pos, b.i64("ax0", [0])])
    h = b.node("Add", [b.node("Gather", [wte, "input_ids"]), b.node("Gather", [wpe, pos])])
    mask_full = b.const("bias", np.tril(np.ones((1, 1, ctx, ctx), bool)))
    B_ = b.node("Gather", [shp, b.i64("zero", 0)], axis=0)
    for l in range(layers):
        x = ln(b, h, d)
        qkv = b.node("Add", [b.node("MatMul", [x, W(b, "c_attn", (d, 3 * d))]), b.const("c_attn_b", np.zeros(3 * d, np.float32))])
        q, k, v = b.node("Split", [qkv, b.i64("spl", [d, d, d])], n_out=3, axis=2)
        newshape = b.node("Concat", [b.node("Unsqueeze", [B_, b.i64("a0", [0])]), b.node("Unsqueeze", [S, b.i64("a0", [0])]),
                                     b.i64("hh", [heads, hd])], axis=0)
        def heads_of(t, perm):
            return b.node("Transpose", [b.node("Reshape", [t, newshape])], perm=perm)
        qh, kh, vh = heads_of(q, [0, 2, 1, 3]), heads_of(k, [0, 2, 3, 1]), heads_of(v, [0, 2, 1, 3])
        sc = b.node("Div", [b.node("MatMul", [qh, kh]), b.f32("sq", math.sqrt(hd))])
        m = b.node("Slice", [mask_full, b.i64("s0", [0, 0]), b.node("Concat", [b.node("Unsqueeze", [S, b.i64("a0", [0])]),
                                                                            b.node("Unsqueeze", [S, b.i64("a0", [0])])], axis=0),
                             b.i64("axs", [2, 3])])
        sc = b.node("Where", [m, sc, b.f32("minf", np.finfo(np.float32).min)])
        p = b.node("Softmax", [sc], axis=-1)
        o = b.node("Transpose", [b.node("MatMul", [p, vh])], perm=[0, 2, 1, 3])
        o = b.node("Reshape", [o, b.node("Concat", [b.node("Unsqueeze", [B_, b.i64("a0", [0])]), b.node("Unsqueeze", [S, b.i64("a0", [0])]),
                                                    b.i64("dd", [d])], axis=0)])
        h = b.node("Add", [h, b.node("Add", [b.node("MatMul", [o, W(b, "c_proj", (d, d))]), b.const("pb", np.zeros(d, np.float32))])])
        x = ln(b, h, d)
        f = b.node("Add", [b.node("MatMul", [x, W(b, "c_fc", (d, 4 * d))]), b.const("fb", 0.1 * np.ones(4 * d, np.float32))])
        inner = b.node("Mul", [b.f32("c", math.sqrt(2 / math.pi)), b.node("Add", [f, b.node("Mul", [b.f32("k", 0.044715),
                                                                                             b.node("Pow", [f, b.f32("three", 3.0)])])])])
        g = b.node("Mul", [b.node("Mul", [b.f32("half", 0.5), f]), b.node("Add", [b.f32("one_f", 1.0), b.node("Tanh", [inner])])])
        h = b.node("Add", [h, b.node("MatMul", [g, W(b, "c_proj2", (4 * d, d))])])
    h = ln(b, h, d)
    b.node("MatMul", [h, b.node("Transpose", [wte], perm=[1, 0])], outputs=["logits"])
    save(b, "gpt2", [vi("input_ids", I64, ["batch", "seq"])], [vi("logits", F, ["batch", "seq", vocab])], path)


def t5enc(path, d=64, heads=4, layers=2, vocab=100, nbk=32, maxd=128):
    b = Builder(5)
    hd = d // heads
    x = b.node("Gather", [W(b, "emb", (vocab, d), 1.0), "input_ids"])
    S = b.node("Gather", [b.node("Shape", ["input_ids"]), b.i64("one", 1)], axis=0)
    r = b.node("Range", [b.i64("z", 0), S, b.i64("o", 1)])
    ctxp = b.node("Unsqueeze", [r, b.i64("a1", [1])])
    memp = b.node("Unsqueeze", [r, b.i64("a0", [0])])
    rel = b.node("Sub", [memp, ctxp])
    half = nbk // 2
    ret = b.node("Mul", [b.node("Cast", [b.node("Greater", [rel, b.i64("z0", 0)])], to=I64), b.i64("h", half)])
    n = b.node("Abs", [rel])
    me = half // 2
    small = b.node("Less", [n, b.i64("me", me)])
    lg = b.node("Div", [b.node("Log", [b.node("Div", [b.node("Cast", [n], to=F), b.f32("mef", float(me))])]), b.f32("lgm", math.log(maxd / me))])
    large = b.node("Add", [b.i64("me2", me), b.node("Cast", [b.node("Mul", [lg, b.f32("rng", float(half - me))])], to=I64)])
    large = b.node("Min", [large, b.node("Sub", [b.node("Mul", [b.node("Cast", [b.node("Greater", [n, b.i64("neg", -1)])], to=I64), b.i64("h1", half - 1)]), b.i64("z2", 0)])])
    bucket = b.node("Add", [ret, b.node("Where", [small, n, large])])
    bias = b.node("Transpose", [b.node("Gather", [W(b, "relb", (nbk, heads), 1.0), bucket])], perm=[2, 0, 1])
    bias = b.node("Unsqueeze", [bias, b.i64("a00", [0])])

    def rms(t):
        var = b.node("ReduceMean", [b.node("Pow", [t, b.f32("two", 2.0)])], axes=[-1], keepdims=1)
        return b.node("Mul", [b.const("w", np.ones(d, np.float32)), b.node("Mul", [t, b.node("Reciprocal", [b.node("Sqrt", [b.node("Add", [var, b.f32("eps", 1e-6)])])])])])

    shp4 = b.i64("shp4", [1, -1, heads, hd])
    for l in range(layers):
        y = rms(x)
        q = b.node("Transpose", [b.node("Reshape", [b.node("MatMul", [y, W(b, "q", (d, d))]), shp4])], perm=[0, 2, 1, 3])
        k = b.node("Transpose", [b.node("Reshape", [b.node("MatMul", [y, W(b, "k", (d, d))]), shp4])], perm=[0, 2, 3, 1])
        v = b.node("Transpose", [b.node("Reshape", [b.node("MatMul", [y, W(b, "v", (d, d))]), shp4])], perm=[0, 2, 1, 3])
        sc = b.node("Add", [b.node("MatMul", [q, k]), bias])
        o = b.node("MatMul", [b.node("Softmax", [sc], axis=3), v])
        o = b.node("Reshape", [b.node("Transpose", [o], perm=[0, 2, 1, 3]), b.i64("shp3", [1, -1, d])])
        x = b.node("Add", [x, b.node("MatMul", [o, W(b, "o", (d, d))])])
        y = rms(x)
        x = b.node("Add", [x, b.node("MatMul", [b.node("Relu", [b.node("MatMul", [y, W(b, "wi", (d, 2 * d))])]), W(b, "wo", (2 * d, d))])])
    b.node("Identity", [rms(x)], outputs=["hidden"])
    save(b, "t5enc", [vi("input_ids", I64, [1, "seq"])], [vi("hidden", F, [1, "seq", d])], path)


def effnet(path, res=64):
    b = Builder(7)

    def conv(x, cin, cout, k, s, g=1, act="swish"):
        w = b.const("w", (b.rng.standard_normal((cout, cin // g, k, k)) * math.sqrt(2.0 / (cin // g * k * k))).astype(np.float32))
        y = b.node("Conv", [x, w, b.const("b", 0.05 * b.rng.standard_normal(cout).astype(np.float32))], kernel_shape=[k, k], strides=[s, s],
                   pads=[k // 2] * 4, group=g)
        if act == "swish":
            return b.node("Mul", [y, b.node("Sigmoid", [y])])
        if act == "relu6":
            return b.node("Clip", [y, b.f32("lo", 0.0), b.f32("hi", 6.0)])
        return y

    x = conv("image", 3, 16, 3, 2)
    for cin, cout, k, s, e in [(16, 16, 3, 1, 1), (16, 24, 3, 2, 6), (24, 24, 3, 1, 6), (24, 40, 5, 2, 6), (40, 40, 5, 1, 6)]:
        h = conv(x, cin, cin * e, 1, 1) if e != 1 else x
        h = conv(h, cin * e, cin * e, k, s, g=cin * e)
        se = b.node("GlobalAveragePool", [h])
        se = conv(se, cin * e, max(1, cin // 4), 1, 1)
        se = b.node("Sigmoid", [conv(se, max(1, cin // 4), cin * e, 1, 1, act=None)])
        h = b.node("Mul", [h, se])
        h = conv(h, cin * e, cout, 1, 1, act=None)
        x = b.node("Add", [x, h]) if (cin == cout and s == 1) else h
    x = conv(x, 40, 128, 1, 1)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    b.node("Gemm", [x, W(b, "fc", (10, 128)), b.const("fcb", np.zeros(10, np.float32))], transB=1, outputs=["logits"])
    save(b, "effnet", [vi("image", F, ["N", 3, res, res])], [vi("logits", F, ["N", 10])], path)


def nmsdet(path, n=200, c=3):
    b = Builder(9)
    # boxes from a small conv head on features, then NMS
    feat = b.node("Relu", [b.node("MatMul", ["feat", W(b, "w1", (16, 32))])])
    deltas = b.node("MatMul", [feat, W(b, "wb", (32, 4), 0.1)])
    boxes = b.node("Add", ["anchors", deltas])
    scores = b.node("Sigmoid", [b.node("MatMul", [feat, W(b, "wc", (32, c), 1.0)])])
    scores_t = b.node("Transpose", [scores], perm=[0, 2, 1])
    sel = b.node("NonMaxSuppression", [boxes, scores_t, b.i64("maxo", [10]), b.f32("iou", np.array([0.5], np.float32)),
                                       b.f32("sth", np.array([0.4], np.float32))], center_point_box=0)
    idx = b.node("Squeeze", [b.node("Slice", [sel, b.i64("s2", [2]), b.i64("e3", [3]), b.i64("ax1", [1])]), b.i64("sq1", [1])])
    cls = b.node("Squeeze", [b.node("Slice", [sel, b.i64("s1", [1]), b.i64("e2", [2]), b.i64("ax1b", [1])]), b.i64("sq1b", [1])])
    b.node("Gather", [b.node("Squeeze", [boxes, b.i64("sq0", [0])]), idx], axis=0, outputs=["det_boxes"])
    flat = b.node("Add", [b.node("Mul", [cls, b.i64("nn", n)]), idx])
    b.node("Gather", [b.node("Reshape", [scores_t, b.i64("m1", [-1])]), flat], axis=0, outputs=["det_scores"])
    b.node("Identity", [cls], outputs=["det_classes"])
    vals, inds = b.node("TopK", [b.node("ReduceMax", [scores], axes=[2], keepdims=0), b.i64("kk", [5])], n_out=2, axis=1)
    b.node("Identity", [vals], outputs=["top_scores"])
    b.node("Identity", [inds], outputs=["top_idx"])
    save(b, "nmsdet", [vi("feat", F, [1, n, 16]), vi("anchors", F, [1, n, 4])],
         [vi("det_boxes", F, ["k", 4]), vi("det_scores", F, ["k"]), vi("det_classes", I64, ["k"]), vi("top_scores", F, [1, 5]), vi("top_idx", I64, [1, 5])], path)


def vit(path, res=32, patch=8, d=64, heads=4, layers=2):
    b = Builder(11)
    hd = d // heads
    x = b.node("Conv", ["pixel_values", W(b, "pw", (d, 3, patch, patch), 0.2), b.const("pb", np.zeros(d, np.float32))],
               kernel_shape=[patch, patch], strides=[patch, patch])
    x = b.node("Transpose", [b.node("Reshape", [x, b.i64("r", [0, d, -1])])], perm=[0, 2, 1])
    Bn = b.node("Gather", [b.node("Shape", ["pixel_values"]), b.i64("zero", 0)], axis=0)
    cls = b.node("Expand", [W(b, "cls", (1, 1, d), 1.0), b.node("Concat", [b.node("Unsqueeze", [Bn, b.i64("a0", [0])]), b.i64("one1", [1, d])], axis=0)])
    x = b.node("Concat", [cls, x], axis=1)
    npos = (res // patch) ** 2 + 1
    x = b.node("Add", [x, W(b, "pos", (1, npos, d), 0.1)])
    for l in range(layers):
        y = ln(b, x, d)
        def proj(name):
            t = b.node("Add", [b.node("MatMul", [y, W(b, name, (d, d))]), b.const(name + "b", np.zeros(d, np.float32))])
            return b.node("Transpose", [b.node("Reshape", [t, b.i64("s4", [0, 0, heads, hd])])], perm=[0, 2, 1, 3])
        q, k, v = proj("q"), proj("k"), proj("v")
        sc = b.node("Mul", [b.node("MatMul", [q, b.node("Transpose", [k], perm=[0, 1, 3, 2])]), b.f32("sc", 1 / math.sqrt(hd))])
        o = b.node("MatMul", [b.node("Softmax", [sc], axis=-1), v])
        o = b.node("Reshape", [b.node("Transpose", [o], perm=[0, 2, 1, 3]), b.i64("s3", [0, 0, d])])
        x = b.node("Add", [x, b.node("MatMul", [o, W(b, "o", (d, d))])])
        y = ln(b, x, d)
        f = b.node("MatMul", [y, W(b, "f1", (d, 2 * d))])
        g = b.node("Mul", [b.node("Mul", [f, b.f32("h", 0.5)]), b.node("Add", [b.f32("o1", 1.0), b.node("Erf", [b.node("Div", [f, b.f32("s2", math.sqrt(2))])])])])
        x = b.node("Add", [x, b.node("MatMul", [g, W(b, "f2", (2 * d, d))])])
    x = ln(b, x, d)
    c = b.node("Gather", [x, b.i64("c0", 0)], axis=1)
    b.node("Gemm", [c, W(b, "head", (d, 10)), b.const("hb", np.zeros(10, np.float32))], outputs=["logits"])
    save(b, "vit", [vi("pixel_values", F, ["batch", 3, res, res])], [vi("logits", F, ["batch", 10])], path)


SHAPES = {"gpt2": "--shape batch=2 --shape seq=7", "t5enc": "--shape seq=9", "effnet": "--shape N=2", "nmsdet": "",
          "vit": "--shape batch=2"}

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for f in (gpt2, t5enc, effnet, nmsdet, vit):
        path = os.path.join(out, f.__name__ + ".onnx")
        f(path)
        print(path, SHAPES[f.__name__])
