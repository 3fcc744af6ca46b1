#!/usr/bin/python3
"""Write the host flash attention fixtures of tests/test_hfa.c (tests/data/hfa_*.onnx): attentions whose context
length L is left open, so that one model runs short contexts (the plain attention) and long ones (the tile loop).

    /usr/bin/python3 scripts/make_hfa_models.py [OUTDIR]     (default: tests/data next to this script)
    /usr/bin/python3 scripts/make_hfa_models.py --bench DIR  the models of the measurements in docs/DESIGN.md
                                                             ("Auxiliary models"), not used by the tests

hfa_attn.onnx     Y = Relu(Attention(Q[1,2,4,8], K[1,2,L,8], V[1,2,L,8], M[4,L] float, is_causal=1))   (opset 23)
                  (the Attention's output declared in value_info: safeinfer infers no type for it while L is open)
hfa_attn_bool.onnx  Attention with a bool mask M[1,2,4,L] and no Relu after it: the whole model is the unit
hfa_attn_mask1.onnx, hfa_attn_mask40.onnx   Attention with a float mask M[4,1] / M[4,40] covering fewer keys than L
hfa_pat.onnx      Y = Softmax((Q[2,2,3,8] @ KT[2,2,8,L]) / sqrt(8) + M[2,1,1,L]) @ V[2,2,L,8]          (opset 17)
hfa_mha.onnx      Y = Softmax(Q @ KT * 0.25) @ V with Q[1,3,6,16] (no mask), then an Add of a constant
hfa_late_v.onnx   Softmax(Q @ KT) @ (X @ Wv), the V projection listed between the Softmax and the last MatMul
moe_experts.onnx  X[T,16] -> MoE(silu, k=2, normalized, biases; router X @ Wa) -> MoE(gelu, k=1, no biases; router
                  from its input) -> Y[T,16], 8 experts of inner size 24 each (com.microsoft, opset 17); T is open
Deterministic: the same bytes on every run.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def model(graph, opset):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="safeinfer-tests")
    m.ir_version = 8 if opset <= 17 else 10
    return m


def vi(name, dims, t=F):
    return helper.make_tensor_value_info(name, t, dims)


def build(out):
    files = {}
    files["hfa_attn.onnx"] = model(helper.make_graph(
        [helper.make_node("Attention", ["Q", "K", "V", "M"], ["A"], name="attn", is_causal=1),
         helper.make_node("Relu", ["A"], ["Y"], name="relu")], "hfa_attn",
        [vi("Q", [1, 2, 4, 8]), vi("K", [1, 2, "L", 8]), vi("V", [1, 2, "L", 8]), vi("M", [4, "L"])],
        [vi("Y", [1, 2, 4, 8])], value_info=[vi("A", [1, 2, 4, 8])]), 23)
    files["hfa_attn_bool.onnx"] = model(helper.make_graph(
        [helper.make_node("Attention", ["Q", "K", "V", "M"], ["Y"], name="attn_bool", scale=0.5)], "hfa_attn_bool",
        [vi("Q", [1, 2, 4, 8]), vi("K", [1, 2, "L", 8]), vi("V", [1, 2, "L", 8]), vi("M", [1, 2, 4, "L"], TensorProto.BOOL)],
        [vi("Y", [1, 2, 4, 8])]), 23)
    for n in (1, 40):  # a mask covering fewer keys than there are: the keys past it are masked (not broadcast)
        files["hfa_attn_mask%d.onnx" % n] = model(helper.make_graph(
            [helper.make_node("Attention", ["Q", "K", "V", "M"], ["Y"], name="attn_mask%d" % n)], "hfa_attn_mask%d" % n,
            [vi("Q", [1, 2, 4, 8]), vi("K", [1, 2, "L", 8]), vi("V", [1, 2, "L", 8]), vi("M", [4, n])],
            [vi("Y", [1, 2, 4, 8])]), 23)
    files["hfa_pat.onnx"] = model(helper.make_graph(
        [helper.make_node("MatMul", ["Q", "KT"], ["s0"], name="qk"),
         helper.make_node("Div", ["s0", "c"], ["s1"], name="scale"),
         helper.make_node("Add", ["s1", "M"], ["s2"], name="mask"),
         helper.make_node("Softmax", ["s2"], ["p"], name="softmax", axis=-1),
         helper.make_node("MatMul", ["p", "V"], ["Y"], name="pv")], "hfa_pat",
        [vi("Q", [2, 2, 3, 8]), vi("KT", [2, 2, 8, "L"]), vi("V", [2, 2, "L", 8]), vi("M", [2, 1, 1, "L"])],
        [vi("Y", [2, 2, 3, 8])], initializer=[numpy_helper.from_array(np.array(np.sqrt(8.0), dtype=np.float32), "c")]), 17)
    # V projected by a node listed after the attention: the unit waits for it and still runs in one stretch
    files["hfa_late_v.onnx"] = model(helper.make_graph(
        [helper.make_node("MatMul", ["Q", "KT"], ["s0"], name="qk"),
         helper.make_node("Softmax", ["s0"], ["p"], name="softmax", axis=-1),
         helper.make_node("MatMul", ["X", "Wv"], ["V"], name="v_proj"),
         helper.make_node("MatMul", ["p", "V"], ["Y"], name="pv")], "hfa_late_v",
        [vi("Q", [1, 2, 3, 8]), vi("KT", [1, 2, 8, "L"]), vi("X", [1, 2, "L", 8])], [vi("Y", [1, 2, 3, 8])],
        initializer=[numpy_helper.from_array((np.arange(64, dtype=np.float32).reshape(8, 8) % 7 - 3) / 8, "Wv")]), 17)
    files["hfa_mha.onnx"] = model(helper.make_graph(
        [helper.make_node("MatMul", ["Q", "KT"], ["s0"], name="qk"),
         helper.make_node("Mul", ["c", "s0"], ["s1"], name="scale"),
         helper.make_node("Softmax", ["s1"], ["p"], name="softmax", axis=3),
         helper.make_node("MatMul", ["p", "V"], ["A"], name="pv"),
         helper.make_node("Add", ["A", "b"], ["Y"], name="bias")], "hfa_mha",
        [vi("Q", [1, 3, 6, 16]), vi("KT", [1, 3, 16, "L"]), vi("V", [1, 3, "L", 16])],
        [vi("Y", [1, 3, 6, 16])],
        initializer=[numpy_helper.from_array(np.array(0.25, dtype=np.float32), "c"),
                     numpy_helper.from_array(np.linspace(-1, 1, 16).astype(np.float32), "b")]), 17)
    rng = np.random.default_rng(7)
    E, H, Fi = 8, 16, 24
    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)
    ms = "com.microsoft"
    g = helper.make_graph(
        [helper.make_node("MatMul", ["X", "Wa"], ["ra"], name="router_a"),
         helper.make_node("MoE", ["X", "ra", "W1a", "B1a", "W2a", "B2a"], ["Ya"], name="moe_a", domain=ms, k=2,
                          activation_type="silu", normalize_routing_weights=1),
         helper.make_node("MatMul", ["Ya", "Wb"], ["rb"], name="router_b"),
         helper.make_node("MoE", ["Ya", "rb", "W1b", "", "W2b"], ["Y"], name="moe_b", domain=ms, k=1, activation_type="gelu")],
        "moe_experts", [vi("X", ["T", H])], [vi("Y", ["T", H])],
        initializer=[w("Wa", H, E), w("W1a", E, Fi, H), w("B1a", E, Fi), w("W2a", E, H, Fi), w("B2a", E, H), w("Wb", H, E),
                     w("W1b", E, Fi, H), w("W2b", E, H, Fi)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)], producer_name="safeinfer-tests")
    m.ir_version = 8
    files["moe_experts.onnx"] = m
    os.makedirs(out, exist_ok=True)
    for name, m in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(m.SerializeToString())
    return sorted(files)


def bench(out):
    """8 heads of 64: Attention (causal) and MatMul->Mul->Softmax->MatMul at 2048 x 2048 and 1 x 8192; a MoE of 16
    experts (hidden 256, inner 512, k 2, silu) with an open token count."""
    os.makedirs(out, exist_ok=True)
    files = {}
    for tag, S, L in (("2k", 2048, 2048), ("1x8k", 1, 8192)):
        files["big_attn_%s.onnx" % tag] = model(helper.make_graph(
            [helper.make_node("Attention", ["Q", "K", "V"], ["Y"], is_causal=1, name="attn")], "big_attn",
            [vi("Q", [1, 8, S, 64]), vi("K", [1, 8, L, 64]), vi("V", [1, 8, L, 64])], [vi("Y", [1, 8, S, 64])]), 23)
        files["big_pat_%s.onnx" % tag] = model(helper.make_graph(
            [helper.make_node("MatMul", ["Q", "KT"], ["s0"]), helper.make_node("Mul", ["s0", "c"], ["s1"]),
             helper.make_node("Softmax", ["s1"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "V"], ["Y"])], "big_pat",
            [vi("Q", [1, 8, S, 64]), vi("KT", [1, 8, 64, L]), vi("V", [1, 8, L, 64])], [vi("Y", [1, 8, S, 64])],
            initializer=[numpy_helper.from_array(np.array(0.125, dtype=np.float32), "c")]), 17)
    rng = np.random.default_rng(1)
    E, H, Fi = 16, 256, 512
    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.05).astype(np.float32), name)
    m = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["X", "Wr"], ["r"]),
         helper.make_node("MoE", ["X", "r", "W1", "B1", "W2", "B2"], ["Y"], domain="com.microsoft", k=2, activation_type="silu",
                          normalize_routing_weights=1, name="moe")], "big_moe", [vi("X", ["T", H])], [vi("Y", ["T", H])],
        initializer=[w("Wr", H, E), w("W1", E, Fi, H), w("B1", E, Fi), w("W2", E, H, Fi), w("B2", E, H)]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)], producer_name="safeinfer-tests")
    m.ir_version = 8
    files["big_moe.onnx"] = m
    for name, mm in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(mm.SerializeToString())
    return sorted(files)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--bench":
        names = bench(sys.argv[2])
        print("wrote %d files to %s" % (len(names), sys.argv[2]))
        sys.exit(0)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
    names = build(os.path.normpath(out))
    print("wrote %d files to %s" % (len(names), os.path.normpath(out)))
