#!/usr/bin/python3
"""Vision models people deploy, random weights from a fixed seed, at their real input sizes (--small: a reduced
input, and for some a reduced width, for tests on REF). Batch norms are folded into the conv biases (as exporters
and optimisers leave them) except where the real model keeps explicit BatchNormalization nodes.

text_detector  DBNet text detector as PaddleOCR's mobile det model exports (paddle2onnx, opset 11, every weight
               a Constant node, dynamic batch / height / width): MobileNetV3-large x0.5 backbone (3x3/2 stem,
               15 inverted-residual blocks with depthwise 3x3 / 5x5 convs, squeeze-excitation (GlobalAveragePool,
               1x1 convs, HardSigmoid(0.2, 0.5), Mul) on some, HardSwish as x * HardSigmoid(1/6, 0.5) below
               opset 14, a final 1x1 conv to 480), DB-FPN (1x1 lateral convs to 96, three nearest 2x Resizes
               top-down with Adds, 3x3 convs to 24, Resizes by 8 / 4 / 2 and a Concat: six Resizes), DB head
               (3x3 conv + BatchNormalization + ReLU, two 2x2 stride-2 ConvTransposes with BatchNormalization /
               ReLU between, Sigmoid). x float32 [batch, 3, height, width] (640 x 640; --small 160) ->
               sigmoid_0.tmp_0 float32 [batch, 1, height, width].
yolo           YOLOv8n as ultralytics exports it (opset 17, static shapes): Conv + SiLU (x * Sigmoid(x)) blocks,
               C2f blocks (1x1 conv, Split, bottlenecks with residual Adds, Concat, 1x1 conv), SPPF (three 5x5
               MaxPools, Concat), PAN neck (two nearest 2x Resizes + Concats, two stride-2 convs + Concats), three
               Detect heads (box: 64 = 4 x 16 DFL bins, cls: 80), then the decode in the graph: Reshape/Concat to
               [1, 144, anchors], Split, DFL (Reshape, Transpose, Softmax, 1x1 Conv by 0..15), dist2bbox with
               constant anchor points and strides (Sub, Add, Div, Mul, Concat), Sigmoid on the classes.
               images float32 [1, 3, 640, 640] (--small 160) -> output0 float32 [1, 84, 8400] (--small 525).
unet           U-Net (Ronneberger et al.) as the common PyTorch implementation exports it (opset 13): double
               3x3 conv + ReLU blocks, four 2x2 MaxPool downs (base width 32: 32..512), four 2x2 stride-2
               ConvTranspose ups with skip Concats, 1x1 conv to 2 class logits. input float32 [1, 3, 512, 512]
               (--small 128, width 16) -> logits float32 [1, 2, 512, 512].
u2net_fp16     U^2-Net (u2netp geometry: RSU7..RSU4F stages, mid 16, out 64) converted to float16 (opset 11):
               weights and activations float16, RSU blocks of 3x3 conv + ReLU with dilations 1 / 2 / 4 / 8,
               ceil-mode 2x2 MaxPools, bilinear upsampling to the skip's size done in float32 between two Casts
               (Shape, Slice, Concat -> Resize(sizes), as float16 converters leave Resize), residual Adds, six side
               outputs upsampled to the input size, Concat and a 1x1 fuse conv, Sigmoid on all seven.
               input.1 float16 [1, 3, 1024, 1024] (--small 320) -> d0 .. d6 float16 [1, 1, 1024, 1024];
               --keep-io-types: float32 input and outputs with Casts at the edges. Sizes that are not multiples
               of 32 (--size 300) give odd maps, where the ceil-mode pools and the Resize-to-skip matter. u2netp
               costs ~20 GMAC at 320 x 320 and ~200 at 1024 x 1024 (full resolution convs): for REF tests, use
               --size 160 or less.
unet_int8      the U-Net at 1024 x 1024 (base width 16; --small 128, width 8) quantized as ONNX Runtime's
               dynamic quantizer does for Conv: DynamicQuantizeLinear on each conv input, uint8 weights with
               scale / zero point, ConvInteger, Cast to float, Mul by the scales' product, Add of the bias
               (quant.py); the ConvTransposes stay float. input float32 [1, 3, 1024, 1024] -> logits.
crnn           a text-line recogniser in PaddleOCR's mobile form (opset 17, dynamic batch and width): conv
               backbone of 3x3 stem + depthwise-separable blocks with HardSwish, strides (2, 1) late so the width
               stays 1/4, AveragePool over the remaining height, Squeeze/Transpose to [batch, width/4, C], then
               a sequence head: 2 pre-LN transformer encoder layers (default) or a 2-layer bidirectional LSTM
               (--lstm), a linear layer to 6625 classes (--small 97) and Softmax (CTC probabilities).
               x float32 [batch, 3, 48, width] (320; --small 160) -> softmax_2.tmp_0 float32 [batch, width/4, classes].

usage: cnn.py MODEL OUT.onnx [--small] [--lstm] [--keep-io-types] [--width N] [--size N] [--seed N]
  --width  base width (unet / unet_int8), --size: input height and width (text_detector, yolo, unet*, u2net_fp16)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder, F32, F16, tensor, save  # noqa: E402
from layers import conv, batchnorm, relu, silu, hardswish_opset11, layernorm, linear, split_heads, merge_heads, \
    attention, gelu_erf  # noqa: E402
from quant import quantize_dynamic, quantize_qdq, quantize_static  # noqa: E402


def calibration_image(seed, shape):
    """The input the convs' batch norms are folded from (Builder.calibrate): uniform [0, 1), as the test inputs."""
    return np.random.default_rng(seed + 1000).random(shape).astype(np.float32)


def divisible(v, d=8):
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


# --- text_detector ---------------------------------------------------------------------------------------------
MBV3_LARGE = [  # k, expansion, out, se, act, stride
    (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1)]


def text_detector(a):
    b = Builder(a.seed)
    b.constant_nodes = True
    size = a.size or (160 if a.small else 640)
    b.calibrate({"x": calibration_image(a.seed, [2, 3, 256, 256])})
    scale = 0.5

    def act(x, kind, base):
        return relu(b, x, base) if kind == "relu" else hardswish_opset11(b, x, base)

    x = conv(b, "x", 3, divisible(16 * scale), 3, "backbone.conv1", stride=2)
    x = act(x, "hswish", "backbone.conv1.act")
    cin, stages = divisible(16 * scale), []
    for i, (k, e, c, se, kind, s) in enumerate(MBV3_LARGE):
        p = f"backbone.stage.{i}"
        if s == 2 and i > 1:
            stages.append((x, cin))  # the outputs at strides 4, 8, 16 feed the FPN
        exp, out = divisible(e * scale), divisible(c * scale)
        h = act(conv(b, x, cin, exp, 1, p + ".expand_conv"), kind, p + ".expand_act")
        h = act(conv(b, h, exp, exp, k, p + ".bottleneck_conv", stride=s, group=exp), kind, p + ".bottleneck_act")
        if se:
            sq = b.node("GlobalAveragePool", [h], base=p + ".mid_se.avg_pool")
            sq = relu(b, conv(b, sq, exp, exp // 4, 1, p + ".mid_se.conv1"), p + ".mid_se.relu")
            sq = conv(b, sq, exp // 4, exp, 1, p + ".mid_se.conv2", gain=1.0)
            sq = b.node("HardSigmoid", [sq], base=p + ".mid_se.hardsigmoid", alpha=0.2, beta=0.5)
            h = b.node("Mul", [h, sq], base=p + ".mid_se.mul")
        res = s == 1 and cin == out
        h = conv(b, h, exp, out, 1, p + ".linear_conv", gain=1.0, norm=0.5 if res else 1.0)
        if res:
            h = b.node("Add", [x, h], base=p + ".add")
        x, cin = h, out
    x = act(conv(b, x, cin, divisible(960 * scale), 1, "backbone.conv2"), "hswish", "backbone.conv2.act")
    stages.append((x, divisible(960 * scale)))
    # DB-FPN
    C = 96
    roi = lambda: b.const("roi", np.zeros(0, np.float32))  # noqa: E731  (Resize-11 takes roi as an input)

    def up(t, f, base):
        return b.node("Resize", [t, roi(), b.const(base + ".scales", np.array([1, 1, f, f], np.float32))],
                      base=base, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    ins = [conv(b, t, c, C, 1, f"neck.in{i + 2}_conv", bias=False, gain=1.0) for i, (t, c) in enumerate(stages)]
    out4 = b.node("Add", [ins[2], up(ins[3], 2, "neck.up5")], base="neck.out4")
    out3 = b.node("Add", [ins[1], up(out4, 2, "neck.up4")], base="neck.out3")
    out2 = b.node("Add", [ins[0], up(out3, 2, "neck.up3")], base="neck.out2")
    p5 = up(conv(b, ins[3], C, C // 4, 3, "neck.p5_conv", bias=False, gain=1.0), 8, "neck.p5_up")
    p4 = up(conv(b, out4, C, C // 4, 3, "neck.p4_conv", bias=False, gain=1.0), 4, "neck.p4_up")
    p3 = up(conv(b, out3, C, C // 4, 3, "neck.p3_conv", bias=False, gain=1.0), 2, "neck.p3_up")
    p2 = conv(b, out2, C, C // 4, 3, "neck.p2_conv", bias=False, gain=1.0)
    fuse = b.node("Concat", [p5, p4, p3, p2], base="neck.concat", axis=1)
    # DB head (the binarize branch)
    h = conv(b, fuse, C, C // 4, 3, "head.binarize.conv1", bias=False, gain=0.5)
    h = relu(b, batchnorm(b, h, C // 4, "head.binarize.conv_bn1"), "head.binarize.relu1")
    w = b.normal((C // 4, C // 4, 2, 2), np.sqrt(2.0 / (C // 4)))
    h = b.node("ConvTranspose", [h, b.const("head.binarize.conv2.weight", w),
                                 b.const("head.binarize.conv2.bias", b.normal((C // 4,), 0.05))],
               base="head.binarize.conv2", kernel_shape=[2, 2], strides=[2, 2])
    h = relu(b, batchnorm(b, h, C // 4, "head.binarize.conv_bn2"), "head.binarize.relu2")
    w = b.normal((C // 4, 1, 2, 2), np.sqrt(2.0 / (C // 4)))
    h = b.node("ConvTranspose", [h, b.const("head.binarize.conv3.weight", w),
                                 b.const("head.binarize.conv3.bias", np.array([-0.5], np.float32))],
               base="head.binarize.conv3", kernel_shape=[2, 2], strides=[2, 2])
    b.node("Sigmoid", [h], base="head.sigmoid", outputs=["sigmoid_0.tmp_0"])
    return b.model("ppocr_det_db_mobile_like", [tensor("x", F32, ["p2o.DynamicDimension.0", 3,
                                                                  "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"])],
                   [tensor("sigmoid_0.tmp_0", F32, ["p2o.DynamicDimension.0", 1, "p2o.DynamicDimension.1",
                                                    "p2o.DynamicDimension.2"])], opset=11, ir_version=6), \
        {"x": [1, 3, size, size]}


# --- yolo ------------------------------------------------------------------------------------------------------
def yolo(a):
    b = Builder(a.seed)
    size = a.size or (160 if a.small else 640)
    b.calibrate({"images": calibration_image(a.seed, [2, 3, 320, 320])})
    G = 2.8  # He gain for SiLU (E[silu(x)^2] = 1 / 2.8 for unit-normal x) where calibration does not reach

    def cv(x, c1, c2, k, s, p):
        return silu(b, conv(b, x, c1, c2, k, p + ".conv", stride=s, gain=G), p + ".act")

    def c2f(x, c1, c2, n, shortcut, p):
        c = c2 // 2
        y = cv(x, c1, 2 * c, 1, 1, p + ".cv1")
        ys = list(b.node("Split", [y, b.i64(p + ".split", [c, c])], base=p + ".split", n_out=2, axis=1))
        for i in range(n):
            q = f"{p}.m.{i}"
            t = cv(cv(ys[-1], c, c, 3, 1, q + ".cv1"), c, c, 3, 1, q + ".cv2")
            if shortcut:
                t = b.node("Add", [ys[-1], b.node("Mul", [t, b.f32("res_scale", 0.5)], base=q + ".scale")],
                           base=q + ".add")
            ys.append(t)
        cat = b.node("Concat", ys, base=p + ".concat", axis=1)
        return cv(cat, (2 + n) * c, c2, 1, 1, p + ".cv2")

    def sppf(x, c1, c2, p):
        c = c1 // 2
        x = cv(x, c1, c, 1, 1, p + ".cv1")
        ys = [x]
        for i in range(3):
            ys.append(b.node("MaxPool", [ys[-1]], base=f"{p}.m.{i}", kernel_shape=[5, 5], strides=[1, 1],
                             pads=[2, 2, 2, 2]))
        return cv(b.node("Concat", ys, base=p + ".concat", axis=1), 4 * c, c2, 1, 1, p + ".cv2")

    def upsample(x, p):
        return b.node("Resize", [x, "", b.const(p + ".scales", np.array([1, 1, 2, 2], np.float32))], base=p,
                      mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    x = cv("images", 3, 16, 3, 2, "model.0")
    x = cv(x, 16, 32, 3, 2, "model.1")
    x = c2f(x, 32, 32, 1, True, "model.2")
    x = cv(x, 32, 64, 3, 2, "model.3")
    p3 = c2f(x, 64, 64, 2, True, "model.4")
    x = cv(p3, 64, 128, 3, 2, "model.5")
    p4 = c2f(x, 128, 128, 2, True, "model.6")
    x = cv(p4, 128, 256, 3, 2, "model.7")
    x = c2f(x, 256, 256, 1, True, "model.8")
    p5 = sppf(x, 256, 256, "model.9")
    x = b.node("Concat", [upsample(p5, "model.10"), p4], base="model.11", axis=1)
    n12 = c2f(x, 384, 128, 1, False, "model.12")
    x = b.node("Concat", [upsample(n12, "model.13"), p3], base="model.14", axis=1)
    o3 = c2f(x, 192, 64, 1, False, "model.15")
    x = b.node("Concat", [cv(o3, 64, 64, 3, 2, "model.16"), n12], base="model.17", axis=1)
    o4 = c2f(x, 192, 128, 1, False, "model.18")
    x = b.node("Concat", [cv(o4, 128, 128, 3, 2, "model.19"), p5], base="model.20", axis=1)
    o5 = c2f(x, 384, 256, 1, False, "model.21")
    nc, reg = 80, 16
    c2, c3 = 64, 80
    levels = []
    for i, (t, ch) in enumerate(((o3, 64), (o4, 128), (o5, 256))):
        p = "model.22"
        bx = cv(cv(t, ch, c2, 3, 1, f"{p}.cv2.{i}.0"), c2, c2, 3, 1, f"{p}.cv2.{i}.1")
        bx = conv(b, bx, c2, 4 * reg, 1, f"{p}.cv2.{i}.2", norm=2.0)  # peaked DFL bins: distinct boxes
        cl = cv(cv(t, ch, c3, 3, 1, f"{p}.cv3.{i}.0"), c3, c3, 3, 1, f"{p}.cv3.{i}.1")
        cl = conv(b, cl, c3, nc, 1, f"{p}.cv3.{i}.2", norm=1.5)  # with the prior -4: a few scores above 0.5
        cl = b.node("Add", [cl, b.f32(f"{p}.cls_prior.{i}", -4.0)], base=f"{p}.cv3.{i}.prior")
        cat = b.node("Concat", [bx, cl], base=f"{p}.cat.{i}", axis=1)
        levels.append(b.node("Reshape", [cat, b.i64(f"{p}.shape.{i}", [1, 4 * reg + nc, -1])], base=f"{p}.view.{i}"))
    x = b.node("Concat", levels, base="model.22.concat", axis=2)
    box, cls = b.node("Split", [x, b.i64("model.22.split", [4 * reg, nc])], base="model.22.split", n_out=2, axis=1)
    # DFL: softmax over the 16 bins of each side, expectation by a 1x1 conv with weights 0..15
    A = sum((size // s) ** 2 for s in (8, 16, 32))
    d = b.node("Reshape", [box, b.i64("model.22.dfl.shape", [1, 4, reg, A])], base="model.22.dfl.view")
    d = b.node("Softmax", [b.node("Transpose", [d], base="model.22.dfl.transpose", perm=[0, 2, 1, 3])],
               base="model.22.dfl.softmax", axis=1)
    d = b.node("Conv", [d, b.const("model.22.dfl.conv.weight", np.arange(reg, dtype=np.float32).reshape(1, reg, 1, 1))],
               base="model.22.dfl.conv", kernel_shape=[1, 1])
    d = b.node("Reshape", [d, b.i64("model.22.dfl.shape2", [1, 4, A])], base="model.22.dfl.out")
    anchors, strides = [], []
    for s in (8, 16, 32):
        n = size // s
        yy, xx = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5, indexing="ij")
        anchors.append(np.stack([xx.ravel(), yy.ravel()]))
        strides.append(np.full(n * n, s))
    anc = b.const("model.22.anchors", np.concatenate(anchors, 1)[None].astype(np.float32))
    st = b.const("model.22.strides", np.concatenate(strides)[None].astype(np.float32))
    lt = b.node("Slice", [d, b.i64("s0", [0]), b.i64("s2", [2]), b.i64("s1", [1])], base="model.22.lt")
    rb = b.node("Slice", [d, b.i64("s2b", [2]), b.i64("s4", [4]), b.i64("s1b", [1])], base="model.22.rb")
    x1y1 = b.node("Sub", [anc, lt], base="model.22.x1y1")
    x2y2 = b.node("Add", [anc, rb], base="model.22.x2y2")
    cxy = b.node("Div", [b.node("Add", [x1y1, x2y2], base="model.22.sum"), b.f32("two", 2.0)], base="model.22.cxy")
    wh = b.node("Sub", [x2y2, x1y1], base="model.22.wh")
    boxes = b.node("Mul", [b.node("Concat", [cxy, wh], base="model.22.xywh", axis=1), st], base="model.22.boxes")
    b.node("Concat", [boxes, b.node("Sigmoid", [cls], base="model.22.cls_sigmoid")], base="model.22.out", axis=1,
           outputs=["output0"])
    return b.model("yolov8n_like", [tensor("images", F32, [1, 3, size, size])],
                   [tensor("output0", F32, [1, 4 + nc, A])], opset=17), {"images": [1, 3, size, size]}


# --- unet ------------------------------------------------------------------------------------------------------
def unet_graph(b, size, width, classes=2, bilinear=False):
    b.calibrate({"input": calibration_image(b.seed, [2, 3, 128, 128])})
    def double(x, c1, c2, p):
        x = relu(b, conv(b, x, c1, c2, 3, p + ".double_conv.0"), p + ".double_conv.2")
        return relu(b, conv(b, x, c2, c2, 3, p + ".double_conv.3"), p + ".double_conv.5")

    ch = [width * 2 ** i for i in range(5)]
    x = double("input", 3, ch[0], "inc")
    skips = [x]
    for i in range(4):
        x = b.node("MaxPool", [x], base=f"down{i + 1}.maxpool", kernel_shape=[2, 2], strides=[2, 2])
        x = double(x, ch[i], ch[i + 1], f"down{i + 1}.conv")
        skips.append(x)
    for i in range(4):
        c = ch[4 - i]
        p = f"up{i + 1}"
        if bilinear:  # nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), then a 1x1 conv halving c
            x = b.node("Resize", [x, "", b.f32(p + ".up.scales", [1, 1, 2, 2])], base=p + ".up.resize",
                       mode="linear", coordinate_transformation_mode="align_corners")
            x = conv(b, x, c, c // 2, 1, p + ".up.conv")
        else:
            w = b.normal((c, c // 2, 2, 2), np.sqrt(1.0 / c))
            x = b.node("ConvTranspose", [x, b.const(p + ".up.weight", w),
                                         b.const(p + ".up.bias", b.normal((c // 2,), 0.05))],
                       base=p + ".up", kernel_shape=[2, 2], strides=[2, 2])
        x = b.node("Concat", [skips[3 - i], x], base=p + ".concat", axis=1)
        x = double(x, c, c // 2, p + ".conv")
    conv(b, x, ch[0], classes, 1, "outc.conv", gain=1.0)
    b.nodes[-1].output[0] = "logits"
    return b.model("unet_like", [tensor("input", F32, [1, 3, size, size])],
                   [tensor("logits", F32, [1, classes, size, size])], opset=13)


def unet(a):
    size = a.size or (128 if a.small else 512)
    width = a.width or (16 if a.small else 32)
    return unet_graph(Builder(a.seed), size, width, bilinear=a.bilinear), {"input": [1, 3, size, size]}


def unet_int8(a):
    size = a.size or (128 if a.small else 1024)
    width = a.width or (8 if a.small else 16)
    m = unet_graph(Builder(a.seed), size, width, bilinear=a.bilinear)
    m, counts = quantize_dynamic(m, ops=("Conv",), conv_weight_type=a.weight_type)
    m.graph.name = "unet_like_int8"
    return m, {"input": [1, 3, size, size]}


# --- u2net_fp16 ------------------------------------------------------------------------------------------------
def u2net_fp16(a):
    b = Builder(a.seed)
    size = a.size or (320 if a.small else 1024)
    H = np.float16
    b.calibrate({"input.1": calibration_image(a.seed, [2, 3, 128, 128]).astype(np.float32 if a.keep_io_types else H)},
                center=False, clamp=(0.5, 2.0))
    mid, out = 16, 64

    def rebn(x, c1, c2, d, p):
        return relu(b, conv(b, x, c1, c2, 3, p + ".conv_s1", dil=d, dtype=H), p + ".relu_s1")

    def pool(x, p):
        return b.node("MaxPool", [x], base=p, kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)

    def up_like(x, tar, p):
        """F.interpolate(x, size=tar.shape[2:], mode='bilinear') on a float16 graph: Resize in float32."""
        s_src = b.node("Slice", [b.node("Shape", [x], base=p + ".shape_src"), b.i64(p + ".a0", [0]),
                                 b.i64(p + ".a2", [2]), b.i64(p + ".ax", [0])], base=p + ".nc")
        s_tar = b.node("Slice", [b.node("Shape", [tar], base=p + ".shape_tar"), b.i64(p + ".b2", [2]),
                                 b.i64(p + ".b4", [4]), b.i64(p + ".bx", [0])], base=p + ".hw")
        sizes = b.node("Concat", [s_src, s_tar], base=p + ".sizes", axis=0)
        f = b.node("Cast", [x], base=p + ".to_float", to=F32)
        r = b.node("Resize", [f, b.const(p + ".roi", np.zeros(0, np.float32)),
                              b.const(p + ".scales", np.zeros(0, np.float32)), sizes], base=p + ".resize",
                   mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
        return b.node("Cast", [r], base=p + ".to_half", to=F16)

    def rsu(x, L, c_in, c_mid, c_out, p):
        hxin = rebn(x, c_in, c_out, 1, p + ".rebnconvin")
        enc = [rebn(hxin, c_out, c_mid, 1, p + ".rebnconv1")]
        for i in range(2, L):
            enc.append(rebn(pool(enc[-1], f"{p}.pool{i - 1}"), c_mid, c_mid, 1, f"{p}.rebnconv{i}"))
        hx = rebn(enc[-1], c_mid, c_mid, 2, f"{p}.rebnconv{L}")
        for i in range(L - 1, 0, -1):
            if i < L - 1:
                hx = up_like(hx, enc[i - 1], f"{p}.up{i}")
            cat = b.node("Concat", [hx, enc[i - 1]], base=f"{p}.cat{i}", axis=1)
            hx = rebn(cat, 2 * c_mid, c_out if i == 1 else c_mid, 1, f"{p}.rebnconv{i}d")
        return b.node("Add", [hx, hxin], base=p + ".add")

    def rsu4f(x, c_in, c_mid, c_out, p):
        hxin = rebn(x, c_in, c_out, 1, p + ".rebnconvin")
        h1 = rebn(hxin, c_out, c_mid, 1, p + ".rebnconv1")
        h2 = rebn(h1, c_mid, c_mid, 2, p + ".rebnconv2")
        h3 = rebn(h2, c_mid, c_mid, 4, p + ".rebnconv3")
        h4 = rebn(h3, c_mid, c_mid, 8, p + ".rebnconv4")
        h3d = rebn(b.node("Concat", [h4, h3], base=p + ".cat3", axis=1), 2 * c_mid, c_mid, 4, p + ".rebnconv3d")
        h2d = rebn(b.node("Concat", [h3d, h2], base=p + ".cat2", axis=1), 2 * c_mid, c_mid, 2, p + ".rebnconv2d")
        h1d = rebn(b.node("Concat", [h2d, h1], base=p + ".cat1", axis=1), 2 * c_mid, c_out, 1, p + ".rebnconv1d")
        return b.node("Add", [h1d, hxin], base=p + ".add")

    x = "input.1"
    if a.keep_io_types:
        x = b.node("Cast", ["input.1"], base="graph_input_cast0", to=F16)
    hx1 = rsu(x, 7, 3, mid, out, "stage1")
    hx2 = rsu(pool(hx1, "pool12"), 6, out, mid, out, "stage2")
    hx3 = rsu(pool(hx2, "pool23"), 5, out, mid, out, "stage3")
    hx4 = rsu(pool(hx3, "pool34"), 4, out, mid, out, "stage4")
    hx5 = rsu4f(pool(hx4, "pool45"), out, mid, out, "stage5")
    hx6 = rsu4f(pool(hx5, "pool56"), out, mid, out, "stage6")
    hx5d = rsu4f(b.node("Concat", [up_like(hx6, hx5, "up6"), hx5], base="cat5d", axis=1), 2 * out, mid, out, "stage5d")
    hx4d = rsu(b.node("Concat", [up_like(hx5d, hx4, "up5d"), hx4], base="cat4d", axis=1), 4, 2 * out, mid, out,
               "stage4d")
    hx3d = rsu(b.node("Concat", [up_like(hx4d, hx3, "up4d"), hx3], base="cat3d", axis=1), 5, 2 * out, mid, out,
               "stage3d")
    hx2d = rsu(b.node("Concat", [up_like(hx3d, hx2, "up3d"), hx2], base="cat2d", axis=1), 6, 2 * out, mid, out,
               "stage2d")
    hx1d = rsu(b.node("Concat", [up_like(hx2d, hx1, "up2d"), hx1], base="cat1d", axis=1), 7, 2 * out, mid, out,
               "stage1d")
    sides = []
    for i, t in enumerate((hx1d, hx2d, hx3d, hx4d, hx5d, hx6)):
        s = conv(b, t, out, 1, 3, f"side{i + 1}", gain=1.0, dtype=H)
        sides.append(s if i == 0 else up_like(s, sides[0], f"side{i + 1}.up"))
    d0 = conv(b, b.node("Concat", sides, base="side_cat", axis=1), 6, 1, 1, "outconv", gain=1.0, dtype=H)
    outs = []
    for i, t in enumerate([d0] + sides):
        if a.keep_io_types:
            sg = b.node("Sigmoid", [t], base=f"sigmoid_d{i}")
            b.node("Cast", [sg], base=f"graph_output_cast{i}", to=F32, outputs=[f"d{i}"])
        else:
            b.node("Sigmoid", [t], base=f"sigmoid_d{i}", outputs=[f"d{i}"])
        outs.append(tensor(f"d{i}", F32 if a.keep_io_types else F16, [1, 1, size, size]))
    io = F32 if a.keep_io_types else F16
    return b.model("u2netp_like_fp16", [tensor("input.1", io, [1, 3, size, size])], outs, opset=11), \
        {"input.1": [1, 3, size, size]}


# --- crnn ------------------------------------------------------------------------------------------------------
def crnn(a):
    b = Builder(a.seed)
    width = a.size or (160 if a.small else 320)
    b.calibrate({"x": calibration_image(a.seed, [2, 3, 48, 320])})
    k = 0.5 if a.small else 1.0
    classes = 97 if a.small else 6625

    def hsw(x, p):
        return b.node("HardSwish", [x], base=p)

    c = int(32 * k)
    x = hsw(conv(b, "x", 3, c, 3, "backbone.conv1", stride=2), "backbone.conv1.act")
    plan = [(64, 1), (128, 2), (128, 1), (256, (2, 1)), (256, 1), (256, 1), (512, (2, 1)), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1)]
    for i, (co, s) in enumerate(plan):
        co = int(co * k)
        p = f"backbone.block{i}"
        x = hsw(conv(b, x, c, c, 3, p + ".dw", stride=s, group=c), p + ".dw.act")
        x = hsw(conv(b, x, c, co, 1, p + ".pw"), p + ".pw.act")
        c = co
    # height 48 -> 24 (stem) -> 12 -> 6 -> 3; pool it away, width / 4 time steps remain
    x = b.node("AveragePool", [x], base="backbone.pool", kernel_shape=[3, 1], strides=[3, 1])
    x = b.node("Squeeze", [x, b.i64("ax2", [2])], base="neck.squeeze")
    x = b.node("Transpose", [x], base="neck.transpose", perm=[0, 2, 1])  # [batch, T, C]
    if a.lstm:
        hid = 48 if a.small else 96
        x = b.node("Transpose", [x], base="neck.time_major", perm=[1, 0, 2])  # [T, batch, C]
        cin = c
        for l in range(2):
            p = f"neck.encoder.lstm.{l}"
            W = b.normal((2, 4 * hid, cin), 1.0 / np.sqrt(cin))
            R = b.normal((2, 4 * hid, hid), 1.0 / np.sqrt(hid))
            B = b.normal((2, 8 * hid), 0.1)
            y = b.node("LSTM", [x, b.const(p + ".W", W), b.const(p + ".R", R), b.const(p + ".B", B)],
                       base=p, n_out=3, hidden_size=hid, direction="bidirectional")[0]
            y = b.node("Transpose", [y], base=p + ".transpose", perm=[0, 2, 1, 3])  # [T, batch, 2, hid]
            x = b.node("Reshape", [y, b.i64(p + ".shape", [0, 0, 2 * hid])], base=p + ".merge")
            cin = 2 * hid
        x = b.node("Transpose", [x], base="neck.batch_major", perm=[1, 0, 2])
        d = cin
    else:
        d, heads, ffn = (64, 2, 128) if a.small else (120, 8, 240)
        x = linear(b, x, c, d, "neck.proj")
        for l in range(2):
            p = f"neck.svtr.blocks.{l}"
            h = layernorm(b, x, d, p + ".norm1")
            q = split_heads(b, linear(b, h, d, d, p + ".mixer.q"), heads, d // heads, p + ".q")
            kk = split_heads(b, linear(b, h, d, d, p + ".mixer.k"), heads, d // heads, p + ".k")
            v = split_heads(b, linear(b, h, d, d, p + ".mixer.v"), heads, d // heads, p + ".v")
            o = merge_heads(b, attention(b, q, kk, v, d // heads, p + ".mixer"), d, p + ".merge")
            x = b.node("Add", [x, linear(b, o, d, d, p + ".mixer.proj", scale=0.5)], base=p + ".res1")
            h = layernorm(b, x, d, p + ".norm2")
            h = gelu_erf(b, linear(b, h, d, ffn, p + ".mlp.fc1"), p + ".mlp.act")
            x = b.node("Add", [x, linear(b, h, ffn, d, p + ".mlp.fc2", scale=0.5)], base=p + ".res2")
        x = layernorm(b, x, d, "neck.norm")
    # logits of standard deviation ~4 (the LSTM's outputs are tanh-bounded and small: a larger scale)
    logits = linear(b, x, d, classes, "head.fc", scale=24.0 if a.lstm else 4.0)
    b.node("Softmax", [logits], base="head.softmax", axis=-1, outputs=["softmax_2.tmp_0"])
    return b.model("ppocr_rec_like" + ("_lstm" if a.lstm else "_svtr"),
                   [tensor("x", F32, ["batch", 3, 48, "width"])],
                   [tensor("softmax_2.tmp_0", F32, ["batch", "steps", classes])], opset=17), \
        {"x": [1, 3, 48, width]}


MODELS = {"text_detector": text_detector, "yolo": yolo, "unet": unet, "u2net_fp16": u2net_fp16,
          "unet_int8": unet_int8, "crnn": crnn}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("out")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--lstm", action="store_true", help="crnn: BiLSTM sequence head instead of transformer layers")
    ap.add_argument("--keep-io-types", action="store_true", help="u2net_fp16: float32 input and outputs")
    ap.add_argument("--weight-type", choices=["uint8", "int8"], default="uint8", help="unet_int8: ConvInteger weights")
    ap.add_argument("--bilinear", action="store_true", help="unet / unet_int8: bilinear Resize (align_corners) + 1x1 "
                    "conv upsamplers instead of ConvTranspose")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--qop", choices=["ms", "onnx", "qdq"], default=None,
                    help="quantize statically, calibrated on one seeded random input: QOperator form "
                    "(quant.quantize_static) with the com.microsoft QLinear ops (ms) or ONNX-domain ops only (onnx), "
                    "or the QDQ form (quant.quantize_qdq)")
    a = ap.parse_args()
    m, shapes = MODELS[a.model](a)
    if a.qop:
        rng = np.random.default_rng(a.seed + 1)
        feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in shapes.items()}
        if a.qop == "qdq":
            m, counts = quantize_qdq(m, feeds)
        else:
            m, counts = quantize_static(m, feeds, ms_ops=a.qop == "ms")
        m.graph.name += "_qop"
        print("quantized:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    save(m, a.out)
    n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    n += sum(int(np.prod(nd.attribute[0].t.dims)) for nd in m.graph.node if nd.op_type == "Constant")
    print(f"{a.out}: {a.model}, input {' '.join(f'{k} {list(v)}' for k, v in shapes.items())}, {n / 1e6:.2f}M values, "
          f"{len(m.graph.node)} nodes, opset {m.opset_import[0].version}")


if __name__ == "__main__":
    main()
