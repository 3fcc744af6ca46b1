#!/usr/bin/python3
"""Write models in the style of real deployments into OUTDIR, for comparing safeinfer with ONNX Runtime:
opset 9-11 CNNs (Conv, BatchNormalization, HardSigmoid, Clip, Resize/Upsample, ConvTranspose,
GlobalAveragePool) and transformer-style recognisers (MatMul, Softmax, ReduceMean, Pow, Sqrt, Transpose,
Reshape, Slice) with symbolic dimensions. Random weights, fixed seed.
usage: /usr/bin/python3 scripts/make_compare_models.py OUTDIR   (prints one line per model: FILE SHAPE-ARGS)
"""
import os, sys
import numpy as np
import onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def w(self, *shape, scale=None, dtype=np.float32):
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else max(shape[0], 1)
        a = (rng.standard_normal(shape) * (scale if scale is not None else 1 / np.sqrt(fan))).astype(dtype)
        n = self.name("w")
        self.inits.append(nh.from_array(a, n))
        return n

    def c(self, arr):
        n = self.name("c")
        self.inits.append(nh.from_array(np.asarray(arr), n))
        return n

    def op(self, t, ins, nout=1, **kw):
        outs = [self.name(t.lower()) for _ in range(nout)]
        self.nodes.append(h.make_node(t, ins, outs, **kw))
        return outs[0] if nout == 1 else outs

    def bn(self, x, ch):
        return self.op("BatchNormalization", [x, self.c((1 + 0.1 * rng.standard_normal(ch)).astype(np.float32)),
                                              self.c((0.1 * rng.standard_normal(ch)).astype(np.float32)),
                                              self.c((0.1 * rng.standard_normal(ch)).astype(np.float32)),
                                              self.c((1 + 0.3 * rng.random(ch)).astype(np.float32))], epsilon=1e-5)

    def save(self, fname, inputs, outputs, opset, shape_args):
        g = h.make_graph(self.nodes, fname, inputs, outputs, self.inits)
        m = h.make_model(g, producer_name="safeinfer-compare", opset_imports=[h.make_opsetid("", opset)])
        m.ir_version = 6
        onnx.checker.check_model(m)
        p = os.path.join(out, fname + ".onnx")
        onnx.save(m, p)
        print(p, " ".join(shape_args))


def cnn9():
    g = G()
    x = g.op("Conv", ["x", g.w(16, 3, 3, 3), g.w(16, scale=0.1)], pads=[1, 1, 1, 1], strides=[2, 2])
    x = g.op("Relu", [g.bn(x, 16)])
    x = g.op("Upsample", [x, g.c(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = g.op("Conv", [x, g.w(32, 16, 3, 3)], pads=[1, 1, 1, 1])
    x = g.op("HardSigmoid", [g.bn(x, 32)], alpha=0.2, beta=0.5)
    x = g.op("Clip", [x], min=0.1, max=0.9)
    x = g.op("GlobalAveragePool", [x])
    x = g.op("Flatten", [x])
    x = g.op("Gemm", [x, g.w(10, 32), g.w(10, scale=0.1)], transB=1)
    g.nodes[-1].output[0] = "logits"
    g.save("cnn_opset9", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 48, 48])],
           [h.make_tensor_value_info("logits", TP.FLOAT, ["N", 10])], 9, ["--shape", "N=2"])


def cnn11():
    g = G()
    x = g.op("Conv", ["x", g.w(16, 3, 3, 3), g.w(16, scale=0.1)], pads=[1, 1, 1, 1], strides=[2, 2])
    x = g.op("Clip", [g.bn(x, 16), g.c(np.float32(0)), g.c(np.float32(6))])
    skip = x
    x = g.op("Conv", [x, g.w(16, 1, 3, 3)], pads=[1, 1, 1, 1], group=16)
    hs = g.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)
    x = g.op("Mul", [x, hs])
    x = g.op("Conv", [x, g.w(32, 16, 1, 1)], strides=[2, 2])
    x = g.op("Relu", [g.bn(x, 32)])
    x = g.op("ConvTranspose", [x, g.w(32, 16, 2, 2), g.w(16, scale=0.1)], strides=[2, 2])
    x = g.op("Add", [x, skip])
    r1 = g.op("Resize", [x, g.c(np.array([], np.float32)), g.c(np.array([1, 1, 2, 2], np.float32))],
              mode="linear", coordinate_transformation_mode="half_pixel")
    r2 = g.op("Resize", [x, g.c(np.array([], np.float32)), g.c(np.array([], np.float32)),
                         g.c(np.array([2, 16, 40, 40], np.int64))], mode="linear",
              coordinate_transformation_mode="align_corners")
    r3 = g.op("Resize", [x, g.c(np.array([], np.float32)), g.c(np.array([1, 1, 2, 2], np.float32))],
              mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    x = g.op("Concat", [r1, r2, r3], axis=1)
    x = g.op("Conv", [x, g.w(8, 48, 3, 3)], pads=[1, 1, 1, 1])
    seg = g.op("Sigmoid", [x])
    gap = g.op("GlobalAveragePool", [x])
    g.nodes[-1].output[0] = "pooled"
    g.nodes[-2].output[0] = "seg"
    g.save("cnn_opset11", [h.make_tensor_value_info("x", TP.FLOAT, ["batch", 3, 40, 40])],
           [h.make_tensor_value_info("seg", TP.FLOAT, ["batch", 8, 40, 40]), h.make_tensor_value_info("pooled", TP.FLOAT, ["batch", 8, 1, 1])],
           11, ["--shape", "batch=2"])


def transformer(opset=11, d=64, heads=4, layers=2, ff=128, vocab=50):
    g = G()
    feats = "features"  # [batch, sequence, 40] acoustic features, like a speech recogniser
    x = g.op("MatMul", [feats, g.w(40, d)])
    x = g.op("Add", [x, g.w(d, scale=0.1)])

    def layernorm(x):
        mu = g.op("ReduceMean", [x], axes=[-1])
        xc = g.op("Sub", [x, mu])
        var = g.op("ReduceMean", [g.op("Pow", [xc, g.c(np.float32(2))])], axes=[-1])
        y = g.op("Div", [xc, g.op("Sqrt", [g.op("Add", [var, g.c(np.float32(1e-5))])])])
        return g.op("Add", [g.op("Mul", [y, g.w(d, scale=0.1)]), g.w(d, scale=0.1)])

    shp = g.op("Shape", [feats])
    b = g.op("Gather", [shp, g.c(np.array([0], np.int64))], axis=0)
    s = g.op("Gather", [shp, g.c(np.array([1], np.int64))], axis=0)
    hs = g.op("Concat", [b, s, g.c(np.array([heads, d // heads], np.int64))], axis=0)
    back = g.op("Concat", [b, s, g.c(np.array([d], np.int64))], axis=0)
    for _ in range(layers):
        y = layernorm(x)
        q, k, v = [g.op("Transpose", [g.op("Reshape", [g.op("Add", [g.op("MatMul", [y, g.w(d, d)]), g.w(d, scale=0.1)]), hs])],
                        perm=[0, 2, 1, 3]) for _ in range(3)]
        kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
        sc = g.op("Div", [g.op("MatMul", [q, kt]), g.c(np.float32(np.sqrt(d // heads)))])
        att = g.op("MatMul", [g.op("Softmax", [sc], axis=3), v])
        att = g.op("Reshape", [g.op("Transpose", [att], perm=[0, 2, 1, 3]), back])
        x = g.op("Add", [x, g.op("MatMul", [att, g.w(d, d)])])
        y = layernorm(x)
        f = g.op("Add", [g.op("MatMul", [y, g.w(d, ff)]), g.w(ff, scale=0.1)])
        gelu = g.op("Mul", [g.op("Mul", [f, g.op("Add", [g.op("Erf", [g.op("Div", [f, g.c(np.float32(np.sqrt(2)))])]), g.c(np.float32(1))])]), g.c(np.float32(0.5))])
        x = g.op("Add", [x, g.op("MatMul", [gelu, g.w(ff, d)])])
    x = layernorm(x)
    logits = g.op("MatMul", [x, g.w(d, vocab)])
    logp = g.op("LogSoftmax", [logits], axis=2)
    g.nodes[-1].output[0] = "log_probs"
    first = g.op("Slice", [x, g.c(np.array([0], np.int64)), g.c(np.array([1], np.int64)), g.c(np.array([1], np.int64)), g.c(np.array([1], np.int64))])
    g.nodes[-1].output[0] = "first_frame"
    g.save(f"transformer_opset{opset}", [h.make_tensor_value_info(feats, TP.FLOAT, ["batch", "sequence", 40])],
           [h.make_tensor_value_info("log_probs", TP.FLOAT, ["batch", "sequence", vocab]), h.make_tensor_value_info("first_frame", TP.FLOAT, ["batch", 1, d])],
           opset, ["--shape", "batch=2", "--shape", "sequence=17"])


def mixed():
    """A CNN with ops an accelerator typically lacks (CumSum, ArgMax) in the middle: it is cut into submodels."""
    g = G()
    x = g.op("Conv", ["x", g.w(8, 3, 3, 3), g.w(8, scale=0.1)], pads=[1, 1, 1, 1])
    x = g.op("Relu", [x])
    x = g.op("CumSum", [x, g.c(np.array(3, np.int64))])
    x = g.op("Conv", [x, g.w(8, 8, 3, 3)], pads=[1, 1, 1, 1])
    y = g.op("Sigmoid", [x])
    g.nodes[-1].output[0] = "y"
    g.op("ArgMax", ["y"], axis=1, keepdims=0)
    g.nodes[-1].output[0] = "idx"
    g.save("mixed_opset13", [h.make_tensor_value_info("x", TP.FLOAT, ["batch", 3, 16, 16])],
           [h.make_tensor_value_info("y", TP.FLOAT, ["batch", 8, 16, 16]), h.make_tensor_value_info("idx", TP.INT64, ["batch", 16, 16])],
           13, ["--shape", "batch=2"])


def upsample_exact():
    """A U-Net upsampler (ConvTranspose, kernel == stride == 2) over 256 channels: on the CPU device its output must
    equal ONNX Runtime's bit for bit (--rtol 0), since in a quantized U-Net a DynamicQuantizeLinear after it turns
    a last-bit difference into a different scale for the whole next layer."""
    g = G()
    y = g.op("ConvTranspose", ["x", g.w(256, 24, 2, 2), g.w(24, scale=0.1)], strides=[2, 2])
    g.nodes[-1].output[0] = "y"
    g.save("upsample_exact_opset13", [h.make_tensor_value_info("x", TP.FLOAT, [1, 256, 12, 40])],
           [h.make_tensor_value_info("y", TP.FLOAT, [1, 24, 24, 80])], 13, ["--devices", "CPU", "--rtol", "0"])


def resize_exact():
    """Bilinear Resize x2 in the modes segmentation networks export (align_corners, half_pixel): on the CPU device
    the outputs must equal ONNX Runtime's bit for bit, for the same reason as upsample_exact's."""
    g = G()
    outs = []
    for ctm in ("align_corners", "half_pixel", "pytorch_half_pixel"):
        g.op("Resize", ["x", "", g.c(np.array([1, 1, 2, 2], np.float32))], mode="linear", coordinate_transformation_mode=ctm)
        g.nodes[-1].output[0] = "y_" + ctm
        outs.append(h.make_tensor_value_info("y_" + ctm, TP.FLOAT, [1, 8, 34, 94]))
    g.save("resize_exact_opset13", [h.make_tensor_value_info("x", TP.FLOAT, [1, 8, 17, 47])], outs, 13,
           ["--devices", "CPU", "--rtol", "0"])


def stft_frontend():
    """A speech front end: STFT of 400-sample Hann frames (not a power of two: Bluestein's algorithm), hop 160,
    power spectrum, mel-like projection, Log."""
    g = G()
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)).astype(np.float32)
    spec = g.op("STFT", ["audio", g.c(np.array(160, np.int64)), g.c(win)], onesided=1)
    power = g.op("ReduceSumSquare", [spec], axes=[3], keepdims=0)
    mel = g.op("MatMul", [power, g.c((rng.random((201, 40)) / 20).astype(np.float32))])
    g.op("Log", [g.op("Add", [mel, g.c(np.array(1e-6, np.float32))])])
    g.nodes[-1].output[0] = "logmel"
    g.save("stft_frontend_opset17", [h.make_tensor_value_info("audio", TP.FLOAT, [1, 8000, 1])],
           [h.make_tensor_value_info("logmel", TP.FLOAT, [1, 48, 40])], 17, [])


def topk_ties():
    """A detector's top-k: TopK 25 of 1,000 scores per row (largest and smallest), many of them tied (scores rounded
    to tenths): values and indices must equal ONNX Runtime's (ties in index order)."""
    g = G()
    s = g.op("Div", [g.op("Round", [g.op("Mul", ["scores", g.c(np.array(10, np.float32))])]), g.c(np.array(10, np.float32))])
    k = g.c(np.array([25], np.int64))
    g.op("TopK", [s, k], nout=2, axis=-1, largest=1)
    g.nodes[-1].output[0], g.nodes[-1].output[1] = "top_v", "top_i"
    g.op("TopK", [s, k], nout=2, axis=1, largest=0)
    g.nodes[-1].output[0], g.nodes[-1].output[1] = "low_v", "low_i"
    g.save("topk_ties_opset11", [h.make_tensor_value_info("scores", TP.FLOAT, [3, 1000])],
           [h.make_tensor_value_info(n, TP.FLOAT if n.endswith("_v") else TP.INT64, [3, 25]) for n in ("top_v", "top_i", "low_v", "low_i")],
           11, [])


def gridsample_modes():
    """GridSample (opset 16) in every mode x padding x align_corners, the grid reaching past [-1, 1] so that every
    padding rule is exercised (bicubic pads each of its 4 x 4 taps, as PyTorch and ONNX Runtime do)."""
    g = G()
    grid = g.c((rng.random((2, 7, 9, 2)) * 3.2 - 1.6).astype(np.float32))
    outs = []
    for mode in ("nearest", "bilinear", "bicubic"):
        for pad in ("zeros", "border", "reflection"):
            for align in (0, 1):
                name = "y_%s_%s_%d" % (mode, pad, align)
                g.op("GridSample", ["x", grid], mode=mode, padding_mode=pad, align_corners=align)
                g.nodes[-1].output[0] = name
                outs.append(h.make_tensor_value_info(name, TP.FLOAT, [2, 3, 7, 9]))
    g.save("gridsample_modes_opset16", [h.make_tensor_value_info("x", TP.FLOAT, [2, 3, 5, 6])], outs, 16, [])


def qlinear_broadcast():
    """com.microsoft QLinearAdd / QLinearMul with a broadcast operand (per channel, a scalar, a row; as A and as B)
    and same-shaped ones, each with its own random scales and zero points, on a quantized image: uint8 outputs that
    must equal ONNX Runtime's to the unit (its x86 kernels' rounding, which differs with the broadcast)."""
    g = G()
    xq = g.op("QuantizeLinear", ["x", g.c(np.array(0.008, np.float32)), g.c(np.array(128, np.uint8))])
    outs = []
    for i in range(12):
        shape = [[1, 8, 1, 1], [1], [1, 1, 1, 64], [1, 8, 64, 64]][i % 4]
        other = xq if shape == [1, 8, 64, 64] and i % 8 == 3 else g.c(rng.integers(0, 256, shape).astype(np.uint8))
        sa, sb, sc = (float(v) for v in rng.uniform(0.005, 0.2, 3))
        za, zb, zc = (int(v) for v in rng.integers(0, 256, 3))
        qa = [xq, g.c(np.array(sa, np.float32)), g.c(np.array(za, np.uint8))]
        qb = [other, g.c(np.array(sb, np.float32)), g.c(np.array(zb, np.uint8))]
        ins = (qa + qb if i % 2 == 0 else qb + qa) + [g.c(np.array(sc, np.float32)), g.c(np.array(zc, np.uint8))]
        name = "y%d" % i
        g.nodes.append(h.make_node("QLinearMul" if i in (5, 9) else "QLinearAdd", ins, [name], domain="com.microsoft"))
        outs.append(h.make_tensor_value_info(name, TP.UINT8, [1, 8, 64, 64]))
    # a per-channel constant (46) as A, then as B, with scales and zero points under which ORT's scalar-operand
    # rounding (f + a * ra, then one fused multiply-add) and the two fused multiply-adds differ in range (b = 195)
    for i, const_first in ((12, True), (13, False)):
        k = [g.c(np.full([1, 8, 1, 1], 46, np.uint8)), g.c(np.array(0.19983933866024017, np.float32)), g.c(np.array(72, np.uint8))]
        v = [xq, g.c(np.array(0.13221198320388794, np.float32)), g.c(np.array(111, np.uint8))]
        ins = (k + v if const_first else v + k) + [g.c(np.array(0.05072949081659317, np.float32)), g.c(np.array(67, np.uint8))]
        g.nodes.append(h.make_node("QLinearAdd", ins, ["y%d" % i], domain="com.microsoft"))
        outs.append(h.make_tensor_value_info("y%d" % i, TP.UINT8, [1, 8, 64, 64]))
    gr = h.make_graph(g.nodes, "qlinear_broadcast", [h.make_tensor_value_info("x", TP.FLOAT, [1, 8, 64, 64])], outs, g.inits)
    m = h.make_model(gr, producer_name="safeinfer-compare", opset_imports=[h.make_opsetid("", 13), h.make_opsetid("com.microsoft", 1)])
    m.ir_version = 7
    p = os.path.join(out, "qlinear_broadcast_ms.onnx")
    onnx.save(m, p)
    print(p)


cnn9()
cnn11()
mixed()
upsample_exact()
resize_exact()
stft_frontend()
topk_ties()
gridsample_modes()
qlinear_broadcast()
transformer(11)

transformer(13)
