#!/usr/bin/python3
"""Six more kinds of real-world models, written as torch.onnx (opset 17) exports them (random weights, fixed seed;
the small and the --realistic variant of a fully convolutional model share their weights):

  esrgan      a Real-ESRGAN-like x4 super-resolution net (RRDBNet, 32 features): conv 3->32, 3 residual-in-residual
              dense blocks of 3 dense blocks each (4 convs: three 3x3 convs of growth 16 on the Concat of all earlier
              features, each followed by LeakyRelu(0.2), and a 3x3 conv back to 32; the block's output scaled by 0.2
              with a Mul and Added to its input, the same around each RRDB), trunk conv + skip Add, two nearest 2x
              upsamples (Resize nearest / asymmetric / floor with a scales input and an empty roi, as
              F.interpolate exports) each followed by a conv + LeakyRelu, conv_hr + LeakyRelu, conv_last to 3.
              input float32 [1, 3, 64, 64] (--realistic 256) -> output float32 [1, 3, 256, 256] (1024).
  espcn       ESPCN x3 super-resolution on the luma channel: conv 5x5 1->64 + Tanh, conv 3x3 64->32 + Tanh,
              conv 3x3 32->9, pixel shuffle (DepthToSpace blocksize 3, mode CRD as torch exports it).
              input float32 [1, 1, 128, 128] (--realistic 540 x 960) -> output float32 [1, 1, 384, 384] (1620 x 2880).
  convnext    a ConvNeXt-tiny-like classifier with small widths (32, 64, 128, 256; depths 3, 3, 9, 3): stem Conv 4x4
              stride 4 + LayerNorm over channels written as the official channels_first LayerNorm exports it
              (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add on [C, 1, 1]); blocks: depthwise 7x7 conv,
              Transpose to NHWC, LayerNormalization, MatMul + Add to 4x, erf GELU, MatMul + Add back, layer-scale
              Mul, Transpose back, residual Add; downsampling layers LayerNorm + Conv 2x2 stride 2 (the first in the
              channels_first form, the others as torchvision's LayerNorm2d: Transpose, LayerNormalization,
              Transpose); head ReduceMean over H, W (keepdims 0) + LayerNormalization + Gemm to 1000 classes.
              input float32 [1, 3, 64, 64] (--realistic 224) -> logits float32 [1, 1000].
  stylenet    fast neural style transfer (pytorch/examples' TransformerNet): reflect Pad + Conv + InstanceNormalization
              + Relu (9x9 3->32 stride 1, 3x3 32->64 stride 2, 3x3 64->128 stride 2), 5 residual blocks (reflect Pad,
              3x3 conv, IN, Relu, reflect Pad, 3x3 conv, IN, Add), 2 upsamples (Resize nearest x2, reflect Pad,
              3x3 conv, IN, Relu: 128->64->32), reflect Pad + 9x9 conv to 3, (Tanh + 1) * 127.5.
              input float32 [1, 3, 64, 64] (--realistic 512) -> output float32 [1, 3, 64, 64] (512).
  wav2vec     a wav2vec2-base-like speech encoder as Hugging Face's Wav2Vec2Model exports: input_values Unsqueezed to
              [B, 1, T]; feature extractor of 7 Conv1d without bias (kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2,
              64 channels, --realistic 512), the first followed by GroupNorm with one group per channel (Reshape,
              InstanceNormalization, Reshape to the Shape of its input, Mul, Add), erf GELU after each; Transpose,
              LayerNormalization, feature projection MatMul + Add to d = 64 (768); positional conv embedding
              (Conv1d kernel 16 (128), groups 16, padding k/2, Slice off the last frame, GELU) Added; LayerNorm;
              2 (12) post-LN encoder layers with 4 (12) heads: q scaled after its projection, the Reshapes to
              [B, T, H, hd] and [B*H, T, hd] from Shape/Gather/Mul/Concat, 3-D MatMuls (bmm) and Softmax, FFN 4x with
              erf GELU. input_values float32 [batch_size, sequence_length] (1 x 4000, --realistic 1 x 16000 = 1 s at
              16 kHz) -> last_hidden_state float32 [batch_size, frames, d] (12 frames, --realistic 49).
  gru_tagger  a bidirectional GRU sequence tagger: Gather of an embedding (vocab 1000 x 64; --realistic 20000 x 128)
              by int64 tokens, Transpose to time-major, 2 bidirectional GRU layers (hidden 64, --realistic 256;
              linear_before_reset 1, initial_h Sliced from zeros built with Shape/ConstantOfShape, as torch exports
              nn.GRU), each layer's Y [seq, 2, 1, H] Transposed to [seq, 1, 2, H] and Reshaped to [seq, 1, 2H],
              Transpose back to batch-major, MatMul + Add to 20 tags, LogSoftmax.
              input_ids int64 [1, seq] (seq 12, --realistic 128) -> tag_logprobs float32 [1, seq, 20].

Weights are He-initialised; the convolutions are calibrated while building (Builder.calibrate, layers.conv: each
conv is evaluated in numpy on a seeded input and scaled to a unit spread), so the deep nets keep activations in
a normal range and the outputs are well conditioned (models/eager.py evaluates their ops: LeakyRelu, Pad,
InstanceNormalization, DepthToSpace, ReduceMean, Pow and Sqrt were added there for them).

usage: zoo2.py OUTDIR [--realistic]   writes OUTDIR/NAME.onnx and prints one line per model: its path and the
                                      --shape arguments scripts/compare_ort.py needs (for the open dimensions)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder, F32, I64, tensor, save  # noqa: E402
from layers import conv, layernorm, linear, gelu_erf, he_std  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

OPSET = 17


def calib(seed, shape):
    """The calibration input: uniform [-1, 1), as scripts/compare_ort.py feeds float inputs."""
    return np.random.default_rng(seed + 1000).uniform(-1, 1, shape).astype(np.float32)


def rename(b, old, new):
    """Name a value as the exporter names the graph output (layers' helpers pick their own names)."""
    for n in b.nodes:
        for lst in (n.output, n.input):
            for k, v in enumerate(lst):
                if v == old:
                    lst[k] = new


def write(b, name, inputs, outputs, path):
    save(b.model(name, inputs, outputs, OPSET, producer="pytorch"), path)


def resize2x(b, x, base):
    """F.interpolate(x, scale_factor=2, mode='nearest') at opset 11+: an empty roi and a scales constant."""
    return b.node("Resize", [x, "", b.f32(base + ".scales", np.array([1, 1, 2, 2], np.float32))], base=base,
                  coordinate_transformation_mode="asymmetric", cubic_coeff_a=-0.75, mode="nearest",
                  nearest_mode="floor")


# --- esrgan ----------------------------------------------------------------------------------------------------
def esrgan(path, realistic):
    res = 256 if realistic else 64
    b = Builder(21)
    b.calibrate({"input": calib(21, [1, 3, 64, 64])})
    nf, gc = 32, 16
    lg = 2.0 / (1 + 0.2 ** 2)

    def lrelu(x, base):
        return b.node("LeakyRelu", [x], base=base, alpha=0.2)

    def scaled_add(x, res_in, base):
        return b.node("Add", [b.node("Mul", [x, b.f32(base + ".scale", 0.2)], base=base + ".mul"), res_in], base=base)

    feat = conv(b, "input", 3, nf, 3, "conv_first", gain=1.0)
    x = feat
    for i in range(3):
        rrdb_in = x
        for j in range(3):
            p = f"body.{i}.rdb{j + 1}"
            feats, cin = [x], nf
            for k in range(4):
                xin = feats[0] if len(feats) == 1 else b.node("Concat", feats, base=p + f".cat{k + 1}", axis=1)
                if k < 3:
                    c = lrelu(conv(b, xin, cin, gc, 3, p + f".conv{k + 1}", gain=lg), p + f".lrelu{k + 1}")
                    feats.append(c)
                    cin += gc
                else:
                    c = conv(b, xin, cin, nf, 3, p + ".conv4", gain=1.0)
            x = scaled_add(c, x, p + ".res")
        x = scaled_add(x, rrdb_in, f"body.{i}.res")
    feat = b.node("Add", [feat, conv(b, x, nf, nf, 3, "conv_body", gain=1.0)], base="trunk_add")
    feat = lrelu(conv(b, resize2x(b, feat, "up1"), nf, nf, 3, "conv_up1", gain=lg), "lrelu_up1")
    feat = lrelu(conv(b, resize2x(b, feat, "up2"), nf, nf, 3, "conv_up2", gain=lg), "lrelu_up2")
    feat = lrelu(conv(b, feat, nf, nf, 3, "conv_hr", gain=lg), "lrelu_hr")
    out = conv(b, feat, nf, 3, 3, "conv_last", gain=1.0)
    rename(b, out, "output")
    write(b, "esrgan_like", [tensor("input", F32, [1, 3, res, res])], [tensor("output", F32, [1, 3, 4 * res, 4 * res])],
          path)
    return ""


# --- espcn -----------------------------------------------------------------------------------------------------
def espcn(path, realistic, r=3):
    h, w = (540, 960) if realistic else (128, 128)
    b = Builder(23)
    b.calibrate({"input": calib(23, [1, 1, 128, 128])})
    x = b.node("Tanh", [conv(b, "input", 1, 64, 5, "first_part.0", gain=1.0)], base="first_part.1")
    x = b.node("Tanh", [conv(b, x, 64, 32, 3, "first_part.2", gain=1.0)], base="first_part.3")
    x = conv(b, x, 32, r * r, 3, "last_part.0", gain=1.0)
    b.node("DepthToSpace", [x], base="last_part.1", blocksize=r, mode="CRD", outputs=["output"])
    write(b, "espcn_like", [tensor("input", F32, [1, 1, h, w])], [tensor("output", F32, [1, 1, r * h, r * w])], path)
    return ""


# --- convnext --------------------------------------------------------------------------------------------------
def convnext(path, realistic, dims=(32, 64, 128, 256), depths=(3, 3, 9, 3), classes=1000):
    res = 224 if realistic else 64
    b = Builder(25)
    b.calibrate({"input": calib(25, [1, 3, res, res])})

    def ln_channels_first(x, c, base):
        """The official ConvNeXt LayerNorm(data_format='channels_first') as torch exports it."""
        u = b.node("ReduceMean", [x], base=base + ".mean", axes=[1], keepdims=1)
        d = b.node("Sub", [x, u], base=base + ".sub")
        s = b.node("ReduceMean", [b.node("Pow", [d, b.f32(base + ".two", 2.0)], base=base + ".pow")],
                   base=base + ".var", axes=[1], keepdims=1)
        y = b.node("Div", [d, b.node("Sqrt", [b.node("Add", [s, b.f32(base + ".eps", 1e-6)], base=base + ".add_eps")],
                                     base=base + ".sqrt")], base=base + ".div")
        g = (1.0 + 0.1 * b.rng.standard_normal((c, 1, 1))).astype(np.float32)
        be = (0.05 * b.rng.standard_normal((c, 1, 1))).astype(np.float32)
        y = b.node("Mul", [b.const(base + ".weight", g), y], base=base + ".mul")
        return b.node("Add", [y, b.const(base + ".bias", be)], base=base)

    def ln_2d(x, c, base):
        """torchvision's LayerNorm2d: permute to NHWC, F.layer_norm, permute back."""
        t = b.node("Transpose", [x], base=base + ".to_nhwc", perm=[0, 2, 3, 1])
        t = layernorm(b, t, c, base + ".ln")
        return b.node("Transpose", [t], base=base, perm=[0, 3, 1, 2])

    x = conv(b, "input", 3, dims[0], 4, "downsample_layers.0.0", stride=4, pad=0, gain=1.0)
    x = ln_channels_first(x, dims[0], "downsample_layers.0.1")
    for st, (c, depth) in enumerate(zip(dims, depths)):
        if st > 0:
            p = f"downsample_layers.{st}"
            x = (ln_channels_first if st == 1 else ln_2d)(x, dims[st - 1], p + ".0")
            x = conv(b, x, dims[st - 1], c, 2, p + ".1", stride=2, pad=0, gain=1.0)
        for k in range(depth):
            p = f"stages.{st}.{k}"
            y = conv(b, x, c, c, 7, p + ".dwconv", group=c, gain=1.0)
            y = b.node("Transpose", [y], base=p + ".permute1", perm=[0, 2, 3, 1])
            y = layernorm(b, y, c, p + ".norm")
            y = gelu_erf(b, linear(b, y, c, 4 * c, p + ".pwconv1"), p + ".act")
            y = linear(b, y, 4 * c, c, p + ".pwconv2", std=he_std(4 * c, 1.0))
            gamma = (0.1 + 0.2 * b.rng.random(c)).astype(np.float32)
            y = b.node("Mul", [b.const(p + ".gamma", gamma), y], base=p + ".layer_scale")
            y = b.node("Transpose", [y], base=p + ".permute2", perm=[0, 3, 1, 2])
            x = b.node("Add", [x, y], base=p + ".residual")
    x = b.node("ReduceMean", [x], base="pool", axes=[-2, -1], keepdims=0)
    x = layernorm(b, x, dims[-1], "norm")
    b.node("Gemm", [x, b.const("head.weight", b.normal((classes, dims[-1]), 2.0 / np.sqrt(dims[-1]))),
                    b.const("head.bias", b.normal((classes,), 0.02))], base="head", alpha=1.0, beta=1.0, transB=1,
           outputs=["logits"])
    write(b, "convnext_like", [tensor("input", F32, [1, 3, res, res])], [tensor("logits", F32, [1, classes])], path)
    return ""


# --- stylenet --------------------------------------------------------------------------------------------------
def stylenet(path, realistic):
    res = 512 if realistic else 64
    b = Builder(27)
    b.calibrate({"input": calib(27, [1, 3, 64, 64])})

    def conv_layer(x, cin, cout, k, stride, base):
        p = k // 2
        x = b.node("Pad", [x, b.i64(base + ".pads", [0, 0, p, p, 0, 0, p, p])], base=base + ".reflection_pad",
                   mode="reflect")
        return conv(b, x, cin, cout, k, base + ".conv2d", stride=stride, pad=0)

    def inorm(x, c, base):
        s = (1.0 + 0.1 * b.rng.standard_normal(c)).astype(np.float32)
        be = (0.05 * b.rng.standard_normal(c)).astype(np.float32)
        return b.node("InstanceNormalization", [x, b.const(base + ".weight", s), b.const(base + ".bias", be)],
                      base=base, epsilon=1e-5)

    def relu(x, base):
        return b.node("Relu", [x], base=base)

    x = relu(inorm(conv_layer("input", 3, 32, 9, 1, "conv1"), 32, "in1"), "relu1")
    x = relu(inorm(conv_layer(x, 32, 64, 3, 2, "conv2"), 64, "in2"), "relu2")
    x = relu(inorm(conv_layer(x, 64, 128, 3, 2, "conv3"), 128, "in3"), "relu3")
    for i in range(1, 6):
        p = f"res{i}"
        y = relu(inorm(conv_layer(x, 128, 128, 3, 1, p + ".conv1"), 128, p + ".in1"), p + ".relu")
        y = inorm(conv_layer(y, 128, 128, 3, 1, p + ".conv2"), 128, p + ".in2")
        x = b.node("Add", [y, x], base=p + ".add")
    x = relu(inorm(conv_layer(resize2x(b, x, "deconv1.upsample"), 128, 64, 3, 1, "deconv1"), 64, "in4"), "relu4")
    x = relu(inorm(conv_layer(resize2x(b, x, "deconv2.upsample"), 64, 32, 3, 1, "deconv2"), 32, "in5"), "relu5")
    y = b.node("Tanh", [conv_layer(x, 32, 3, 9, 1, "deconv3")], base="tanh")
    y = b.node("Add", [y, b.f32("one", 1.0)], base="tanh_add")
    b.node("Mul", [y, b.f32("half_range", 127.5)], base="tanh_scale", outputs=["output"])
    write(b, "stylenet_like", [tensor("input", F32, [1, 3, res, res])], [tensor("output", F32, [1, 3, res, res])],
          path)
    return ""


# --- wav2vec ---------------------------------------------------------------------------------------------------
def wav2vec(path, realistic):
    T = 16000 if realistic else 4000
    C, d, heads, layers, kpos = (512, 768, 12, 12, 128) if realistic else (64, 64, 4, 2, 16)
    hd = d // heads
    b = Builder(29)
    b.calibrate({"input_values": calib(29, [1, T])})
    x = b.node("Unsqueeze", ["input_values", b.i64("unsq_axes", [1])], base="feature_extractor.unsqueeze")
    cin = 1
    for i, (k, s) in enumerate(zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))):
        p = f"feature_extractor.conv_layers.{i}"
        x = conv(b, x, cin, C, k, p + ".conv", stride=s, pad=0, bias=False, dims=1, gain=2.0)
        if i == 0:  # nn.GroupNorm(C, C) as torch exports it
            g = p + ".layer_norm"
            r = b.node("Reshape", [x, b.i64(g + ".shape", [0, C, -1])], base=g + ".reshape")
            r = b.node("InstanceNormalization", [r, b.const(g + ".ones", np.ones(C, np.float32)),
                                                 b.const(g + ".zeros", np.zeros(C, np.float32))],
                       base=g + ".instnorm", epsilon=1e-5)
            r = b.node("Reshape", [r, b.node("Shape", [x], base=g + ".shape_of")], base=g + ".reshape_back")
            r = b.node("Mul", [r, b.const(g + ".weight", (1.0 + 0.1 * b.rng.standard_normal((C, 1))).astype(np.float32))],
                       base=g + ".mul")
            x = b.node("Add", [r, b.const(g + ".bias", (0.05 * b.rng.standard_normal((C, 1))).astype(np.float32))],
                       base=g + ".add")
        x = gelu_erf(b, x, p + ".activation")
        cin = C
    x = b.node("Transpose", [x], base="feature_extractor.transpose", perm=[0, 2, 1])
    x = layernorm(b, x, C, "feature_projection.layer_norm")
    x = linear(b, x, C, d, "feature_projection.projection")
    # positional conv embedding: Conv1d(d, d, kpos, padding=kpos // 2, groups=16), SamePad, GELU
    pe = b.node("Transpose", [x], base="encoder.pos_conv_embed.transpose1", perm=[0, 2, 1])
    pe = conv(b, pe, d, d, kpos, "encoder.pos_conv_embed.conv", pad=kpos // 2, group=16, dims=1, gain=1.0)
    pe = b.node("Slice", [pe, b.i64("pad_starts", [0]), b.i64("pad_ends", [-1]), b.i64("pad_axes", [2]),
                          b.i64("pad_steps", [1])], base="encoder.pos_conv_embed.padding")
    pe = gelu_erf(b, pe, "encoder.pos_conv_embed.activation")
    pe = b.node("Transpose", [pe], base="encoder.pos_conv_embed.transpose2", perm=[0, 2, 1])
    x = b.node("Add", [x, pe], base="encoder.pos_add")
    x = layernorm(b, x, d, "encoder.layer_norm")

    def unsq(v, base):
        return b.node("Unsqueeze", [v, b.i64(base + ".axes", [0])], base=base)

    for l in range(layers):
        p = f"encoder.layers.{l}"
        a = p + ".attention"
        shp = b.node("Shape", [x], base=a + ".shape")
        bsz = b.node("Gather", [shp, b.i64(a + ".i0", 0)], base=a + ".bsz", axis=0)
        tgt = b.node("Gather", [shp, b.i64(a + ".i1", 1)], base=a + ".tgt_len", axis=0)
        s4 = b.node("Concat", [unsq(bsz, a + ".u_bsz"), b.i64(a + ".m1", [-1]), b.i64(a + ".hh", [heads, hd])],
                    base=a + ".shape4", axis=0)
        bh = b.node("Mul", [bsz, b.i64(a + ".nheads", heads)], base=a + ".bsz_heads")
        s3 = b.node("Concat", [unsq(bh, a + ".u_bh"), b.i64(a + ".m1b", [-1]), b.i64(a + ".hd", [hd])],
                    base=a + ".proj_shape", axis=0)

        def heads_of(t, base):
            t = b.node("Reshape", [t, s4], base=base + ".view")
            t = b.node("Transpose", [t], base=base + ".transpose", perm=[0, 2, 1, 3])
            return b.node("Reshape", [t, s3], base=base + ".bmm_view")

        q = b.node("Mul", [linear(b, x, d, d, a + ".q_proj"), b.f32(a + ".scaling", hd ** -0.5)], base=a + ".q_scaled")
        q = heads_of(q, a + ".q")
        k = heads_of(linear(b, x, d, d, a + ".k_proj"), a + ".k")
        v = heads_of(linear(b, x, d, d, a + ".v_proj"), a + ".v")
        w = b.node("MatMul", [q, b.node("Transpose", [k], base=a + ".kt", perm=[0, 2, 1])], base=a + ".bmm1")
        w = b.node("Softmax", [w], base=a + ".softmax", axis=-1)
        o = b.node("MatMul", [w, v], base=a + ".bmm2")
        o = b.node("Reshape", [o, b.node("Concat", [unsq(bsz, a + ".u_bsz2"), b.i64(a + ".h1", [heads]),
                                                     unsq(tgt, a + ".u_tgt"), b.i64(a + ".hd1", [hd])],
                                         base=a + ".shape_out4", axis=0)], base=a + ".out_view")
        o = b.node("Transpose", [o], base=a + ".out_transpose", perm=[0, 2, 1, 3])
        o = b.node("Reshape", [o, b.node("Concat", [unsq(bsz, a + ".u_bsz3"), unsq(tgt, a + ".u_tgt2"),
                                                     b.i64(a + ".dd", [d])], base=a + ".shape_out3", axis=0)],
                   base=a + ".out_reshape")
        o = linear(b, o, d, d, a + ".out_proj")
        x = layernorm(b, b.node("Add", [x, o], base=p + ".attn_residual"), d, p + ".layer_norm")
        f = gelu_erf(b, linear(b, x, d, 4 * d, p + ".feed_forward.intermediate_dense"), p + ".feed_forward.act")
        f = linear(b, f, 4 * d, d, p + ".feed_forward.output_dense")
        x = layernorm(b, b.node("Add", [x, f], base=p + ".ffn_residual"), d, p + ".final_layer_norm")
    rename(b, x, "last_hidden_state")
    write(b, "wav2vec2_like", [tensor("input_values", F32, ["batch_size", "sequence_length"])],
          [tensor("last_hidden_state", F32, ["batch_size", "frames", d])], path)
    return f"--shape batch_size=1 --shape sequence_length={T}"


# --- gru_tagger ------------------------------------------------------------------------------------------------
def gru_tagger(path, realistic, tags=20):
    vocab, E, H, seq = (20000, 128, 256, 128) if realistic else (1000, 64, 64, 12)
    b = Builder(31)
    x = b.node("Gather", [b.const("embedding.weight", b.normal((vocab, E), 1.0)), "input_ids"], base="embedding")
    x = b.node("Transpose", [x], base="gru.batch_first_in", perm=[1, 0, 2])  # [seq, 1, E]
    bsz = b.node("Gather", [b.node("Shape", ["input_ids"], base="gru.shape"), b.i64("gru.i0", 0)], base="gru.bsz",
                 axis=0)
    h0_shape = b.node("Concat", [b.i64("gru.nl", [4]), b.node("Unsqueeze", [bsz, b.i64("gru.ax0", [0])], base="gru.u"),
                                 b.i64("gru.hid", [H])], base="gru.h0_shape", axis=0)
    h0 = b.node("ConstantOfShape", [h0_shape], base="gru.h0",
                value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))
    cin = E
    bound = 1.0 / np.sqrt(H)  # torch's nn.GRU init: uniform(-1/sqrt(H), 1/sqrt(H))
    for l in range(2):
        p = f"gru.l{l}"
        W = b.rng.uniform(-bound, bound, (2, 3 * H, cin)).astype(np.float32)
        R = b.rng.uniform(-bound, bound, (2, 3 * H, H)).astype(np.float32)
        B = b.rng.uniform(-bound, bound, (2, 6 * H)).astype(np.float32)
        hl = b.node("Slice", [h0, b.i64(p + ".h_start", [2 * l]), b.i64(p + ".h_end", [2 * l + 2]),
                              b.i64(p + ".h_axes", [0])], base=p + ".initial_h")
        y = b.node("GRU", [x, b.const(p + ".W", W), b.const(p + ".R", R), b.const(p + ".B", B), "", hl], base=p,
                   n_out=2, hidden_size=H, direction="bidirectional", linear_before_reset=1)[0]
        y = b.node("Transpose", [y], base=p + ".transpose", perm=[0, 2, 1, 3])  # [seq, 1, 2, H]
        x = b.node("Reshape", [y, b.i64(p + ".shape", [0, 0, -1])], base=p + ".reshape")
        cin = 2 * H
    x = b.node("Transpose", [x], base="gru.batch_first_out", perm=[1, 0, 2])
    x = linear(b, x, 2 * H, tags, "classifier", scale=3.0)
    b.node("LogSoftmax", [x], base="log_softmax", axis=-1, outputs=["tag_logprobs"])
    write(b, "gru_tagger", [tensor("input_ids", I64, [1, "seq"])], [tensor("tag_logprobs", F32, [1, "seq", tags])],
          path)
    return f"--shape seq={seq}"


MODELS = (esrgan, espcn, convnext, stylenet, wav2vec, gru_tagger)

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--realistic"]
    if len(args) != 1 or any(a.startswith("-") for a in args):
        sys.exit(__doc__)
    real = "--realistic" in sys.argv[1:]
    out = args[0]
    os.makedirs(out, exist_ok=True)
    for f in MODELS:
        path = os.path.join(out, f.__name__ + ".onnx")
        shapes = f(path, real)
        print(path, shapes)
