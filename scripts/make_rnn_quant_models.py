#!/usr/bin/python3
"""Write small models over the attribute space of the recurrent layers (LSTM, GRU, RNN: directions,
sequence_lens, initial states, peepholes, input_forget, linear_before_reset, clip, activations with alpha/beta;
layout 1, which ONNX Runtime refuses, is left to the ONNX node tests) and of the quantization ops (DynamicQuantizeLinear -> MatMulInteger / ConvInteger -> Cast -> Mul,
QuantizeLinear / DequantizeLinear per tensor, per axis and blocked, QLinearMatMul, QLinearConv), for comparing
safeinfer with ONNX Runtime (tests/compare_ort.sh). Random weights, fixed seed; float inputs and outputs.
usage: /usr/bin/python3 scripts/make_rnn_quant_models.py OUTDIR   (prints one line per model: FILE SHAPE-ARGS)
"""
import os, sys
import numpy as np
import onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from quant import int8_weights  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
F = TP.FLOAT


def save(name, nodes, inputs, outputs, inits, opset):
    g = h.make_graph(nodes, name, inputs, outputs, inits)
    m = h.make_model(g, producer_name="safeinfer-compare", opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    p = os.path.join(out, name + ".onnx")
    onnx.save(m, p)
    print(p)


def arr(name, a):
    return nh.from_array(np.asarray(a), name)


# --- recurrent layers ------------------------------------------------------------------------------------------
def rnn(name, op, T=5, N=3, I=4, H=6, direction="forward", bias=True, seq=None, init=False, peep=False, layout=0,
        outputs=("Y", "Y_h", "Y_c"), opset=14, **attrs):
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    D = 2 if direction == "bidirectional" else 1
    inits = [arr("W", rng.standard_normal((D, G * H, I)).astype(np.float32) / np.sqrt(I)),
             arr("R", rng.standard_normal((D, G * H, H)).astype(np.float32) / np.sqrt(H))]
    ins = ["X", "W", "R"]
    ins.append("B" if bias else "")
    if bias:
        inits.append(arr("B", (0.3 * rng.standard_normal((D, 2 * G * H))).astype(np.float32)))
    ins.append("seq" if seq is not None else "")
    if seq is not None:
        inits.append(arr("seq", np.array(seq, np.int32)))
    sshape = [N, D, H] if layout else [D, N, H]
    graph_in = [h.make_tensor_value_info("X", F, [N, T, I] if layout else [T, N, I])]
    if init:
        ins.append("h0")
        graph_in.append(h.make_tensor_value_info("h0", F, sshape))
        if op == "LSTM":
            ins.append("c0")
            graph_in.append(h.make_tensor_value_info("c0", F, sshape))
    else:
        ins.append("")
        if op == "LSTM":
            ins.append("")
    if peep:
        ins.append("P")
        inits.append(arr("P", (0.5 * rng.standard_normal((D, 3 * H))).astype(np.float32)))
    while ins and ins[-1] == "":
        ins.pop()
    outs = [o if o in outputs else "" for o in (["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"])]
    while outs and outs[-1] == "":
        outs.pop()
    node = h.make_node(op, ins, outs, hidden_size=H, direction=direction, **({"layout": layout} if layout else {}), **attrs)
    yshape = [N, T, D, H] if layout else [T, D, N, H]
    graph_out = [h.make_tensor_value_info(o, F, yshape if o == "Y" else sshape) for o in outs if o]
    save(name, [node], graph_in, graph_out, inits, opset)


rnn("lstm_fwd", "LSTM")
rnn("lstm_rev_init", "LSTM", direction="reverse", init=True)
rnn("lstm_bidi_seq_peep", "LSTM", direction="bidirectional", seq=[5, 0, 4], init=True, peep=True)
rnn("lstm_clip_forget", "LSTM", clip=0.7, input_forget=1, init=True)
rnn("lstm_acts", "LSTM", direction="bidirectional", activations=["HardSigmoid", "ScaledTanh", "Softsign",
                                                                  "Sigmoid", "Elu", "Affine"],
    activation_alpha=[0.3, 0.8, 1.2, 0.5], activation_beta=[0.4, 1.1, 0.2])
rnn("lstm_hc_only", "LSTM", outputs=("Y_h", "Y_c"), T=7, N=1, I=16, H=32)
rnn("gru_fwd", "GRU")
rnn("gru_lbr_bidi_seq", "GRU", direction="bidirectional", linear_before_reset=1, seq=[4, 5, 1], init=True)
rnn("gru_rev_clip", "GRU", direction="reverse", clip=0.5, init=True)
rnn("gru_acts", "GRU", activations=["Softplus", "LeakyRelu"], activation_alpha=[0.2], seq=[2, 0, 5])
rnn("gru_lbr_acts", "GRU", linear_before_reset=1, activations=["HardSigmoid", "ThresholdedRelu"],
    activation_alpha=[0.25, 0.1], activation_beta=[0.45])
rnn("rnn_fwd", "RNN")
rnn("rnn_relu_bidi_seq", "RNN", direction="bidirectional", activations=["Relu", "Tanh"], seq=[5, 3, 0], init=True)
rnn("rnn_affine_rev", "RNN", direction="reverse", activations=["Affine"], activation_alpha=[0.7], activation_beta=[0.1],
    clip=1.5)


# --- quantization ----------------------------------------------------------------------------------------------
def q8(shape, dtype):
    lo, hi = (0, 256) if dtype == np.uint8 else (-128, 128)
    return rng.integers(lo, hi, shape).astype(dtype)


def w8(shape, dtype):
    """Weights of an integer product: int8 ones within +-INT8_WEIGHT_MAX (7 bits where ORT's uint8 x int8 products
    saturate, models/quant.py)."""
    return int8_weights(rng, shape) if dtype == np.int8 else q8(shape, dtype)


def dynamic_matmul(name, wtype, M=5, K=24, N=7, per_col=False):
    w = w8((K, N), wtype)
    ws = np.float32(0.02) if not per_col else (0.01 + 0.02 * rng.random(N)).astype(np.float32)
    wz = (np.array(3 if wtype == np.uint8 else 0, wtype) if not per_col else q8((N,), wtype))
    inits = [arr("w", w), arr("ws", ws), arr("wz", wz)]
    nodes = [h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             h.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["acc"]),
             h.make_node("Cast", ["acc"], ["accf"], to=F),
             h.make_node("Mul", ["xs", "ws"], ["sp"]),
             h.make_node("Mul", ["accf", "sp"], ["y"])]
    save(name, nodes, [h.make_tensor_value_info("x", F, [2, M, K])], [h.make_tensor_value_info("y", F, [2, M, N])], inits, 13)


def dynamic_conv(name, wtype, C=3, OC=5, k=3, H=9, pads=(1, 1, 1, 1), strides=(1, 1), group=1, bias=True):
    w = w8((OC, C // group, k, k), wtype)
    wz = np.array(130 if wtype == np.uint8 else 0, wtype)
    inits = [arr("w", w), arr("ws", np.float32(0.015)), arr("wz", wz), arr("b", (0.5 * rng.standard_normal((1, OC, 1, 1))).astype(np.float32))]
    nodes = [h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             h.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["acc"], pads=list(pads), strides=list(strides), group=group,
                         kernel_shape=[k, k]),
             h.make_node("Cast", ["acc"], ["accf"], to=F),
             h.make_node("Mul", ["xs", "ws"], ["sp"]),
             h.make_node("Mul", ["accf", "sp"], ["m" if bias else "y0"])]
    if bias:
        nodes.append(h.make_node("Add", ["m", "b"], ["y0"]))
    nodes.append(h.make_node("Relu", ["y0"], ["y"]))
    OH = (H + pads[0] + pads[2] - k) // strides[0] + 1
    OW = (H + 1 + pads[1] + pads[3] - k) // strides[1] + 1
    save(name, nodes, [h.make_tensor_value_info("x", F, [1, C, H, H + 1])], [h.make_tensor_value_info("y", F, [1, OC, OH, OW])], inits, 13)


dynamic_matmul("dq_matmul_s8", np.int8)
dynamic_matmul("dq_matmul_u8", np.uint8)
dynamic_matmul("dq_matmul_s8_percol", np.int8, per_col=True)
dynamic_conv("dq_conv_u8", np.uint8)
dynamic_conv("dq_conv_s8_s2", np.int8, strides=(2, 2), pads=(0, 1, 1, 0))
dynamic_conv("dq_conv_u8_grouped", np.uint8, C=4, OC=6, group=2, bias=False)


def qdq(name, x_shape, scale, zp, opset=21, **attrs):
    inits = [arr("s", scale)] + ([arr("z", zp)] if zp is not None else [])
    nodes = [h.make_node("QuantizeLinear", ["x", "s"] + (["z"] if zp is not None else []), ["q"], **attrs),
             h.make_node("DequantizeLinear", ["q", "s"] + (["z"] if zp is not None else []), ["y"], **attrs)]
    save(name, nodes, [h.make_tensor_value_info("x", F, x_shape)], [h.make_tensor_value_info("y", F, x_shape)], inits, opset)


qdq("qdq_tensor_u8", [3, 4, 5], np.float32(0.01), np.array(128, np.uint8), opset=13)
qdq("qdq_axis_s8", [3, 4, 5], (0.005 + 0.01 * rng.random(4)).astype(np.float32), q8((4,), np.int8), opset=13, axis=1)
qdq("qdq_blocked_u8", [4, 6, 3], (0.005 + 0.01 * rng.random((4, 2, 3))).astype(np.float32), q8((4, 2, 3), np.uint8), axis=1, block_size=4)
qdq("qdq_int16", [6, 5], np.float32(0.0001), np.array(-7, np.int16))


def qlinear_matmul(name, t, M=4, K=9, N=5):
    inits = [arr("as", np.float32(0.02)), arr("az", q8((), t)), arr("b", w8((K, N), t)), arr("bs", np.float32(0.03)),
             arr("bz", q8((), t)), arr("ys", np.float32(0.4)), arr("yz", q8((), t))]
    nodes = [h.make_node("QuantizeLinear", ["x", "as", "az"], ["a"]),
             h.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["q"]),
             h.make_node("DequantizeLinear", ["q", "ys", "yz"], ["y"])]
    save(name, nodes, [h.make_tensor_value_info("x", F, [2, M, K])], [h.make_tensor_value_info("y", F, [2, M, N])], inits, 13)


def qlinear_conv(name, t, C=4, OC=6, k=3, per_channel=True):
    wt = np.int8
    inits = [arr("xs", np.float32(0.02)), arr("xz", q8((), t)), arr("w", w8((OC, C, k, k), wt)),
             arr("ws", (0.005 + 0.01 * rng.random(OC)).astype(np.float32) if per_channel else np.float32(0.01)),
             arr("wz", np.zeros(OC if per_channel else (), wt)), arr("ys", np.float32(0.3)), arr("yz", q8((), t)),
             arr("bias", rng.integers(-500, 500, OC).astype(np.int32))]
    nodes = [h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             h.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"], ["q"], pads=[1, 1, 1, 1]),
             h.make_node("DequantizeLinear", ["q", "ys", "yz"], ["y"])]
    save(name, nodes, [h.make_tensor_value_info("x", F, [1, C, 7, 8])], [h.make_tensor_value_info("y", F, [1, OC, 7, 8])], inits, 13)


qlinear_matmul("qlinear_matmul_u8", np.uint8)
qlinear_matmul("qlinear_matmul_s8", np.int8)
qlinear_conv("qlinear_conv_u8", np.uint8)
qlinear_conv("qlinear_conv_s8_tensor", np.int8, per_channel=False)
