#!/usr/bin/python3
"""Write a CRNN-style text recogniser (the shape of a real OCR recognition model) for the OCL concurrency tests.

    /usr/bin/python3 scripts/make_crnn.py [OUT.onnx]     (default: tests/data/crnn_rec.onnx)

Input x: [N, 3, 48, W] (run it with --shape x=1x3x48x320). A conv/BN/ReLU/pool backbone brings the image to
[N, 64, 3, W/4]; the height is folded into the channels (Reshape [0, 192, -1]) and the width becomes the
sequence (Transpose -> [N, W/4, 192]); a linear projection, one self-attention block (MatMul, Softmax, residual,
a layer norm of ReduceMean/Sub/Pow/Sqrt/Div) and a feed-forward layer lead to per-step class probabilities
(Softmax over 97 classes): output probs [N, W/4, 97]. Many kernels run with several grid sizes, as in the real
model. Random weights with a fixed seed: the file is byte-identical on every run.
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "crnn_rec.onnx")
rng = np.random.default_rng(11)
nodes, inits = [], []
counter = [0]


def name(p):
    counter[0] += 1
    return f"{p}{counter[0]}"


def w(*shape, scale=None):
    fan = int(np.prod(shape[1:])) if len(shape) > 1 else max(shape[0], 1)
    a = (rng.standard_normal(shape) * (scale if scale is not None else 1 / np.sqrt(fan))).astype(np.float32)
    n = name("w")
    inits.append(nh.from_array(a, n))
    return n


def c(arr):
    n = name("c")
    inits.append(nh.from_array(np.asarray(arr), n))
    return n


def op(t, ins, **kw):
    o = name(t.lower())
    nodes.append(h.make_node(t, ins, [o], name=o, **kw))
    return o


def conv_bn_relu(x, cin, cout):
    x = op("Conv", [x, w(cout, cin, 3, 3), w(cout, scale=0.1)], pads=[1, 1, 1, 1])
    ch = cout
    x = op("BatchNormalization", [x, c((1 + 0.1 * rng.standard_normal(ch)).astype(np.float32)),
                                  c((0.1 * rng.standard_normal(ch)).astype(np.float32)),
                                  c((0.1 * rng.standard_normal(ch)).astype(np.float32)),
                                  c((1 + 0.3 * rng.random(ch)).astype(np.float32))], epsilon=1e-5)
    return op("Relu", [x])


def layernorm(x, d):
    mu = op("ReduceMean", [x], axes=[-1])
    xc = op("Sub", [x, mu])
    var = op("ReduceMean", [op("Pow", [xc, c(np.float32(2))])], axes=[-1])
    y = op("Div", [xc, op("Sqrt", [op("Add", [var, c(np.float32(1e-5))])])])
    return op("Add", [op("Mul", [y, w(d, scale=0.1)]), w(d, scale=0.1)])


# backbone: 48x320 -> 24x160 -> 12x80 -> 6x80 -> 3x80
x = conv_bn_relu("x", 3, 16)
x = op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
x = conv_bn_relu(x, 16, 32)
x = op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
x = conv_bn_relu(x, 32, 48)
x = conv_bn_relu(x, 48, 48)
x = op("MaxPool", [x], kernel_shape=[2, 1], strides=[2, 1])
x = conv_bn_relu(x, 48, 64)
x = op("MaxPool", [x], kernel_shape=[2, 1], strides=[2, 1])
# sequence head
d = 96
x = op("Reshape", [x, c(np.array([0, 192, -1], np.int64))])
x = op("Transpose", [x], perm=[0, 2, 1])
x = op("Add", [op("MatMul", [x, w(192, d)]), w(d, scale=0.1)])
y = layernorm(x, d)
q = op("MatMul", [y, w(d, d)])
k = op("MatMul", [y, w(d, d)])
v = op("MatMul", [y, w(d, d)])
sc = op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 2, 1])]), c(np.float32(1 / np.sqrt(d)))])
att = op("MatMul", [op("Softmax", [sc], axis=-1), v])
x = op("Add", [x, op("MatMul", [att, w(d, d)])])
y = layernorm(x, d)
f = op("Relu", [op("Add", [op("MatMul", [y, w(d, 2 * d)]), w(2 * d, scale=0.1)])])
x = op("Add", [x, op("MatMul", [f, w(2 * d, d)])])
logits = op("Add", [op("MatMul", [layernorm(x, d), w(d, 97)]), w(97, scale=0.1)])
nodes.append(h.make_node("Softmax", [logits], ["probs"], name="probs", axis=-1))

g = h.make_graph(nodes, "crnn_rec", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 48, "W"])],
                 [h.make_tensor_value_info("probs", TP.FLOAT, ["N", "T", 97])], inits)
m = h.make_model(g, producer_name="safeinfer-tests", opset_imports=[h.make_opsetid("", 13)])
m.ir_version = 7
onnx.checker.check_model(m)
onnx.save(m, out)
print(out)
