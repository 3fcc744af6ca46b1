#!/usr/bin/python3
"""Build examples/tiny_cnn.onnx: a small image classifier (Conv+BatchNorm+Relu blocks, a depthwise conv,
MaxPool, GlobalAveragePool, Gemm, Softmax) with a symbolic batch dimension and fixed random weights.
Uses Debian's python3-onnx and python3-numpy:  /usr/bin/python3 scripts/make_example.py
"""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(20261125)
inits = []


def w(name, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    a = rng.standard_normal(shape).astype(np.float32) * (scale or 1.0 / np.sqrt(fan_in))
    inits.append(numpy_helper.from_array(a, name))
    return name


def bn(prefix, c):
    inits.append(numpy_helper.from_array((1 + 0.1 * rng.standard_normal(c)).astype(np.float32), prefix + "_scale"))
    inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), prefix + "_bias"))
    inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), prefix + "_mean"))
    inits.append(numpy_helper.from_array((1 + 0.2 * rng.random(c)).astype(np.float32), prefix + "_var"))
    return [prefix + s for s in ("_scale", "_bias", "_mean", "_var")]


nodes = [
    helper.make_node("Conv", ["image", w("c1_w", 16, 3, 3, 3), w("c1_b", 16, scale=0.1)], ["c1"], pads=[1, 1, 1, 1]),
    helper.make_node("BatchNormalization", ["c1"] + bn("bn1", 16), ["b1"], epsilon=1e-5),
    helper.make_node("Relu", ["b1"], ["r1"]),
    helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Conv", ["p1", w("dw_w", 16, 1, 3, 3)], ["dw"], pads=[1, 1, 1, 1], group=16),
    helper.make_node("Clip", ["dw", "clip_min", "clip_max"], ["dwr"]),
    helper.make_node("Conv", ["dwr", w("c2_w", 32, 16, 1, 1), w("c2_b", 32, scale=0.1)], ["c2"]),
    helper.make_node("BatchNormalization", ["c2"] + bn("bn2", 32), ["b2"], epsilon=1e-5),
    helper.make_node("HardSwish", ["b2"], ["h2"]),
    helper.make_node("GlobalAveragePool", ["h2"], ["gap"]),
    helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
    helper.make_node("Gemm", ["flat", w("fc_w", 10, 32), w("fc_b", 10, scale=0.1)], ["logits"], transB=1),
    helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
]
inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "clip_min"))
inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "clip_max"))

graph = helper.make_graph(
    nodes, "tiny_cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10]),
     helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    inits)
model = helper.make_model(graph, producer_name="safeinfer-example", opset_imports=[helper.make_opsetid("", 14)])
model.ir_version = 8
onnx.checker.check_model(model)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "tiny_cnn.onnx")
onnx.save(model, out)
print("wrote", os.path.normpath(out), os.path.getsize(out), "bytes")
