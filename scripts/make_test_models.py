#!/usr/bin/python3
"""Write the small ONNX fixtures used by tests/test_api.c, tests/test_bad_input.c, tests/test_alloc_fail.c and
tests/cli.sh (case_small/: an ONNX backend test case), tests/inspect_dot.sh (mixed_cumsum.onnx) and
tests/test_subgraph.c (control_*.onnx: If, Loop and Scan with nested subgraphs reading outer-scope values) and
the shapes_fixture test (open_attention.onnx: an encoder block with batch and sequence left open) and
tests/test_fold.c (fold_*.onnx: repeated blocks folded into function calls).

    /usr/bin/python3 scripts/make_test_models.py [OUTDIR]     (default: tests/data next to this script)

Needs the onnx and numpy Python packages (Debian: python3-onnx, python3-numpy). The output is deterministic:
running the script twice gives byte-identical files, so the fixtures can be committed and regenerated.
Several models are deliberately invalid (a cycle, a dangling reference, escaping external data, ...); they
are assembled with onnx.helper and never passed to onnx.checker, which would refuse them.

The arithmetic the tests assert is written out next to each model below.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8  # what onnx 1.12 writes for opset 17; fixed so that a newer onnx gives the same bytes
PRODUCER = "safeinfer-tests"

F = TensorProto.FLOAT
I32 = TensorProto.INT32
I64 = TensorProto.INT64

# The valid model's parameters: Y = Relu(X * W + B), Z = Reshape(Transpose(Y), [-1])
W = np.array([1.0, -2.0, 0.5], dtype=np.float32)
B = np.array([0.5, 1.0, -1.0], dtype=np.float32)
S = np.array([-1], dtype=np.int64)


def model(graph, opset=17, domains=None, ir_version=IR_VERSION):
    imports = [helper.make_opsetid("", opset)] if opset is not None else []
    for d, v in (domains or []):
        imports.append(helper.make_opsetid(d, v))
    m = helper.make_model(graph, opset_imports=imports, producer_name=PRODUCER)
    m.ir_version = ir_version
    return m


def raw(name, arr):
    """An initializer with its bytes in raw_data."""
    return numpy_helper.from_array(arr, name)


def typed(name, arr):
    """An initializer with its values in the typed fields (float_data, int64_data, int32_data)."""
    arr = np.asarray(arr)
    t = TensorProto()
    t.name = name
    t.dims.extend(arr.shape)
    if arr.dtype == np.float32:
        t.data_type = F
        t.float_data.extend(arr.flatten().tolist())
    elif arr.dtype == np.int64:
        t.data_type = I64
        t.int64_data.extend(arr.flatten().tolist())
    elif arr.dtype == np.int32:
        t.data_type = I32
        t.int32_data.extend(arr.flatten().tolist())
    else:
        raise ValueError(arr.dtype)
    return t


def external(name, arr, location, offset=None, length=None):
    """An initializer whose bytes live in an external file (not written here)."""
    t = TensorProto()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") \
        else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype]
    t.dims.extend(arr.shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key = k
            e.value = str(v)
    return t


def small_graph(inits, name="small"):
    """X float[batch,3] -> Y = Relu(X*W + B) float[batch,3], Z = Reshape(Transpose(Y,[1,0]), S) float[?]."""
    nodes = [
        helper.make_node("Mul", ["X", "W"], ["M"], name="mul"),
        helper.make_node("Add", ["M", "B"], ["A"], name="add"),
        helper.make_node("Relu", ["A"], ["Y"], name="relu"),
        helper.make_node("Transpose", ["Y"], ["T"], name="transpose", perm=[1, 0]),
        helper.make_node("Reshape", ["T", "S"], ["Z"], name="reshape"),
    ]
    z = helper.make_tensor_value_info("Z", F, [None])  # a dimension with neither value nor name
    return helper.make_graph(nodes, name, [helper.make_tensor_value_info("X", F, ["batch", 3])],
                             [helper.make_tensor_value_info("Y", F, ["batch", 3]), z], initializer=inits)


def control_flow_graph():
    """X float[batch,3], C bool[] -> Y, AF float[batch,3], S float[?,batch,3], with W float[3], M int64 = 3:
         A = X + W, Q = X * X
         Y = If(C): then  TR = Relu(A); TI = If(C): then IT = TR * W    (TR of the enclosing branch, W of the model)
                                                   else IE = X - W     (both two levels up)
                    else  EN = Neg(Q)                                  (Q read only by this branch)
         AF, S = Loop(M, "", A): body(i, cond_in, v): v2 = v + W; cond_out = cond_in; s = v2 * X
    The subgraphs read A, C, Q, W and X from enclosing graphs by name: If's implicit inputs are A, C, W, X, Q;
    Loop's W and X."""
    inner_then = helper.make_graph([helper.make_node("Mul", ["TR", "W"], ["IT"], name="inner_mul")], "inner_then", [],
                                   [helper.make_tensor_value_info("IT", F, None)])
    inner_else = helper.make_graph([helper.make_node("Sub", ["X", "W"], ["IE"], name="inner_sub")], "inner_else", [],
                                   [helper.make_tensor_value_info("IE", F, None)])
    then_g = helper.make_graph([helper.make_node("Relu", ["A"], ["TR"], name="then_relu"),
                                helper.make_node("If", ["C"], ["TI"], name="inner_if", then_branch=inner_then,
                                                 else_branch=inner_else)],
                               "then", [], [helper.make_tensor_value_info("TI", F, None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["Q"], ["EN"], name="else_neg")], "else", [],
                               [helper.make_tensor_value_info("EN", F, None)])
    body = helper.make_graph([helper.make_node("Add", ["v", "W"], ["v2"], name="body_add"),
                              helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
                              helper.make_node("Mul", ["v2", "X"], ["s"], name="body_scan")],
                             "body", [helper.make_tensor_value_info("i", I64, []),
                                      helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                                      helper.make_tensor_value_info("v", F, None)],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v2", F, None), helper.make_tensor_value_info("s", F, None)])
    nodes = [helper.make_node("Add", ["X", "W"], ["A"], name="add"),
             helper.make_node("Mul", ["X", "X"], ["Q"], name="square"),
             helper.make_node("If", ["C"], ["Y"], name="if", then_branch=then_g, else_branch=else_g),
             helper.make_node("Loop", ["M", "", "A"], ["AF", "S"], name="loop", body=body)]
    return helper.make_graph(nodes, "control_flow",
                             [helper.make_tensor_value_info("X", F, ["batch", 3]),
                              helper.make_tensor_value_info("C", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("Y", F, ["batch", 3]),
                              helper.make_tensor_value_info("AF", F, ["batch", 3]),
                              helper.make_tensor_value_info("S", F, [None, "batch", 3])],
                             initializer=[raw("W", W), raw("M", np.array(3, np.int64))])


FOLD_LAYERS, FOLD_D = 4, 8


def fold_weights(j):
    """Layer j's weights of fold_blocks.onnx: W [D, D], B [D] (values k/8 - 1 .. in a fixed pattern)."""
    k = np.arange(FOLD_D * FOLD_D, dtype=np.float32)
    w = (((k * 7 + j * 5) % 17) / 16.0 - 0.5).astype(np.float32).reshape(FOLD_D, FOLD_D)
    b = (((np.arange(FOLD_D) * 3 + j) % 5) / 8.0 - 0.25).astype(np.float32)
    return w, b


def fold_blocks_graph():
    """A stack of FOLD_LAYERS identical blocks (tests/test_fold.c), X float[batch, seq, D], P_j float[batch, seq, D]:
        h_j = X_j @ W_j + B_j + P_j;  K_j = Tanh(h_j) (an output per layer);  X_{j+1} = X_j + Relu(h_j) * S
    with S = 0.5 shared by every block, Y = X_4."""
    nodes, inits = [], [raw("S", np.array(0.5, np.float32))]
    ins = [helper.make_tensor_value_info("X", F, ["batch", "seq", FOLD_D])]
    outs = []
    x = "X"
    for j in range(FOLD_LAYERS):
        w, b = fold_weights(j)
        inits += [raw("W%d" % j, w), raw("B%d" % j, b)]
        ins.append(helper.make_tensor_value_info("P%d" % j, F, ["batch", "seq", FOLD_D]))
        n = "l%d." % j
        nodes += [helper.make_node("MatMul", [x, "W%d" % j], [n + "mm"], name=n + "matmul"),
                  helper.make_node("Add", [n + "mm", "B%d" % j], [n + "b"], name=n + "bias"),
                  helper.make_node("Add", [n + "b", "P%d" % j], [n + "h"], name=n + "past"),
                  helper.make_node("Tanh", [n + "h"], ["K%d" % j], name=n + "tanh"),
                  helper.make_node("Relu", [n + "h"], [n + "r"], name=n + "relu"),
                  helper.make_node("Mul", [n + "r", "S"], [n + "s"], name=n + "scale"),
                  helper.make_node("Add", [x, n + "s"], [n + "x"], name=n + "residual")]
        outs.append(helper.make_tensor_value_info("K%d" % j, F, ["batch", "seq", FOLD_D]))
        x = n + "x"
    nodes.append(helper.make_node("Identity", [x], ["Y"], name="out"))
    outs.append(helper.make_tensor_value_info("Y", F, ["batch", "seq", FOLD_D]))
    return helper.make_graph(nodes, "fold_blocks", ins, outs, initializer=inits)


def fold_conv_graph():
    """3 identical conv blocks (tests/test_fold.c), X float[1, 4, 6, 6]: X_{j+1} = X_j + Sigmoid(Relu(Conv(X_j, W_j) + B_j)
    * S) with W_j [4, 4, 3, 3] (pads 1), B_j [1, 4, 1, 1], S = 0.5 shared; Y = X_3. Not folded: W_j feeds a Conv."""
    nodes, inits = [], [raw("S", np.array(0.5, np.float32))]
    x = "X"
    for j in range(3):
        w = ((np.arange(144, dtype=np.float32) * (j + 3)) % 11 / 22.0 - 0.25).reshape(4, 4, 3, 3).astype(np.float32)
        b = (np.arange(4, dtype=np.float32) * 0.1 - 0.1 * j).reshape(1, 4, 1, 1).astype(np.float32)
        inits += [raw("W%d" % j, w), raw("B%d" % j, b)]
        n = "c%d." % j
        nodes += [helper.make_node("Conv", [x, "W%d" % j], [n + "conv"], name=n + "conv", pads=[1, 1, 1, 1]),
                  helper.make_node("Add", [n + "conv", "B%d" % j], [n + "b"], name=n + "bias"),
                  helper.make_node("Relu", [n + "b"], [n + "r"], name=n + "relu"),
                  helper.make_node("Mul", [n + "r", "S"], [n + "s"], name=n + "scale"),
                  helper.make_node("Sigmoid", [n + "s"], [n + "g"], name=n + "gate"),
                  helper.make_node("Add", [x, n + "g"], [n + "x"], name=n + "residual")]
        x = n + "x"
    nodes.append(helper.make_node("Identity", [x], ["Y"], name="out"))
    return helper.make_graph(nodes, "fold_conv", [helper.make_tensor_value_info("X", F, [1, 4, 6, 6])],
                             [helper.make_tensor_value_info("Y", F, [1, 4, 6, 6])], initializer=inits)


def control_loop_if_graph():
    """X float[batch,3], N int64[], GO bool[], LIM float[], with W float[3] -> VF float[batch,3], VS float[?,batch,3]:
         VF, VS = Loop(N, GO, X): body(i, cond_in, v):
             even = Equal(Mod(i, 2), 0)
             v2 = If(even): then t = v + W       (v of the body, W of the model: two levels up)
                            else e = v * X       (X of the model, two levels up)
             cond_out = Less(ReduceSum(v2), LIM)  (LIM of the model)
             -> (cond_out, v2, v2 as the scan output)
    A Loop that ends on its trip count or on its condition, with an If nested in its body (tests/test_control.c)."""
    then_g = helper.make_graph([helper.make_node("Add", ["v", "W"], ["t"], name="then_add")], "then", [],
                               [helper.make_tensor_value_info("t", F, None)])
    else_g = helper.make_graph([helper.make_node("Mul", ["v", "X"], ["e"], name="else_mul")], "else", [],
                               [helper.make_tensor_value_info("e", F, None)])
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["two"], name="c_two", value=numpy_helper.from_array(np.array(2, np.int64))),
         helper.make_node("Constant", [], ["zero"], name="c_zero", value=numpy_helper.from_array(np.array(0, np.int64))),
         helper.make_node("Mod", ["i", "two"], ["r"], name="mod"),
         helper.make_node("Equal", ["r", "zero"], ["even"], name="even"),
         helper.make_node("If", ["even"], ["v2"], name="inner_if", then_branch=then_g, else_branch=else_g),
         helper.make_node("ReduceSum", ["v2"], ["s"], name="sum", keepdims=0),
         helper.make_node("Less", ["s", "LIM"], ["cond_out"], name="less"),
         helper.make_node("Identity", ["v2"], ["sc"], name="scan_out")],
        "body", [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v2", F, None),
         helper.make_tensor_value_info("sc", F, None)])
    return helper.make_graph(
        [helper.make_node("Loop", ["N", "GO", "X"], ["VF", "VS"], name="loop", body=body)], "control_loop_if",
        [helper.make_tensor_value_info("X", F, ["batch", 3]), helper.make_tensor_value_info("N", I64, []),
         helper.make_tensor_value_info("GO", TensorProto.BOOL, []), helper.make_tensor_value_info("LIM", F, [])],
        [helper.make_tensor_value_info("VF", F, ["batch", 3]), helper.make_tensor_value_info("VS", F, [None, "batch", 3])],
        initializer=[raw("W", W)])


def control_bad_loop_graph():
    """V float[1], N int64[] -> VF = V + N: a Loop whose body keeps its condition true, so it ends on N alone (a
    negative N, and an N past the property loop_max_iterations, are errors: tests/test_control.c)."""
    body = helper.make_graph([helper.make_node("Add", ["v", "one"], ["v2"], name="body_add"),
                              helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
                             "body", [helper.make_tensor_value_info("i", I64, []),
                                      helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                                      helper.make_tensor_value_info("v", F, [1])],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v2", F, [1])])
    return helper.make_graph(
        [helper.make_node("Loop", ["N", "", "V"], ["VF"], name="loop", body=body)], "control_bad_loop",
        [helper.make_tensor_value_info("V", F, [1]), helper.make_tensor_value_info("N", I64, [])],
        [helper.make_tensor_value_info("VF", F, [1])], initializer=[raw("one", np.array([1], np.float32))])


def control_scan_graph():
    """H0 float[3], XS float[seq,3] (scanned along axis 0), with W float[3] -> HF float[3], YS float[3,seq]:
         P = XS * XS
         HF, YS = Scan(H0, P; num_scan_inputs=1, scan_output_axes=[1]):
                  body(h, x): h2 = h + x * W  (W of the model: an outer value); y = Relu(h2)  -> (h2, y)
    The body reads W from the model's graph by name: Scan's implicit input is W."""
    body = helper.make_graph([helper.make_node("Mul", ["x", "W"], ["xw"], name="body_mul"),
                              helper.make_node("Add", ["h", "xw"], ["h2"], name="body_add"),
                              helper.make_node("Relu", ["h2"], ["y"], name="body_relu")],
                             "scan_body", [helper.make_tensor_value_info("h", F, [3]),
                                           helper.make_tensor_value_info("x", F, [3])],
                             [helper.make_tensor_value_info("h2", F, None), helper.make_tensor_value_info("y", F, None)])
    nodes = [helper.make_node("Mul", ["XS", "XS"], ["P"], name="square"),
             helper.make_node("Scan", ["H0", "P"], ["HF", "YS"], name="scan", body=body, num_scan_inputs=1,
                              scan_output_axes=[1])]
    return helper.make_graph(nodes, "control_scan",
                             [helper.make_tensor_value_info("H0", F, [3]),
                              helper.make_tensor_value_info("XS", F, ["seq", 3])],
                             [helper.make_tensor_value_info("HF", F, [3]),
                              helper.make_tensor_value_info("YS", F, [3, "seq"])],
                             initializer=[raw("W", W)])


def open_attention_graph():
    """A small encoder block with batch and sequence left open (tests/CMakeLists.txt: shapes_fixture):
    input_ids int64[batch,sequence], attention_mask int64[batch,sequence] -> hidden float[batch,sequence,8],
    pooled float[batch,8], probs float[batch,2,sequence,sequence]. Embedding (Gather), LayerNormalization, one
    QKV MatMul split in three, heads by Shape -> Gather -> Concat -> Reshape, a padding mask (Cast, Unsqueeze,
    Sub, Mul) and a causal mask (Range over the sequence length, LessOrEqual, Where), Softmax, the output
    projection and an Erf GELU feed-forward, mean pooling."""
    rng = np.random.default_rng(8)
    H, NH, HD, V, FF = 8, 2, 4, 16, 16

    def w(name, *shape):
        return raw(name, (rng.standard_normal(shape) * 0.2).astype(np.float32))

    def c64(name, vals):
        return raw(name, np.array(vals, np.int64))

    def cf(name, val):
        return raw(name, np.array(val, np.float32))

    N = helper.make_node
    nodes = [
        N("Gather", ["embed", "input_ids"], ["x0"], name="embed"),
        N("LayerNormalization", ["x0", "ln1_g", "ln1_b"], ["x1"], name="ln1", axis=-1),
        N("MatMul", ["x1", "w_qkv"], ["qkv0"], name="qkv"),
        N("Add", ["qkv0", "b_qkv"], ["qkv"], name="qkv_bias"),
        N("Split", ["qkv", "split3"], ["q0", "k0", "v0"], name="split", axis=-1),
        N("Shape", ["x1"], ["xs"], name="shape"),
        N("Gather", ["xs", "i0"], ["b"], name="batch_dim", axis=0),
        N("Gather", ["xs", "i1"], ["s"], name="seq_dim", axis=0),
        N("Unsqueeze", ["b", "ax0"], ["b1"], name="b1"),
        N("Unsqueeze", ["s", "ax0"], ["s1"], name="s1"),
        N("Concat", ["b1", "s1", "heads"], ["qshape"], name="qshape", axis=0),
        N("Concat", ["b1", "s1", "hidden_size"], ["oshape"], name="oshape", axis=0),
    ]
    for t in "qkv":
        nodes += [N("Reshape", [t + "0", "qshape"], [t + "r"], name=t + "_heads"),
                  N("Transpose", [t + "r"], [t + "h"], name=t + "_t", perm=[0, 2, 1, 3])]
    nodes += [
        N("Transpose", ["kh"], ["kt"], name="k_tt", perm=[0, 1, 3, 2]),
        N("MatMul", ["qh", "kt"], ["sc0"], name="scores"),
        N("Div", ["sc0", "sqrt_hd"], ["sc1"], name="scale"),
        N("Cast", ["attention_mask"], ["mf"], name="mask_f", to=F),
        N("Unsqueeze", ["mf", "ax12"], ["m4"], name="mask_4d"),
        N("Sub", ["one", "m4"], ["m_inv"], name="mask_inv"),
        N("Mul", ["m_inv", "neg_big"], ["m_add"], name="mask_add"),
        N("Add", ["sc1", "m_add"], ["sc2"], name="masked"),
        N("Range", ["zero", "s", "step"], ["pos"], name="positions"),
        N("Unsqueeze", ["pos", "ax0"], ["pos_row"], name="pos_row"),
        N("Unsqueeze", ["pos", "ax1"], ["pos_col"], name="pos_col"),
        N("LessOrEqual", ["pos_row", "pos_col"], ["causal"], name="causal"),
        N("Where", ["causal", "sc2", "neg_big"], ["sc3"], name="causal_mask"),
        N("Softmax", ["sc3"], ["probs"], name="softmax", axis=-1),
        N("MatMul", ["probs", "vh"], ["ctx"], name="context"),
        N("Transpose", ["ctx"], ["ctx_t"], name="ctx_t", perm=[0, 2, 1, 3]),
        N("Reshape", ["ctx_t", "oshape"], ["ctx_r"], name="merge_heads"),
        N("MatMul", ["ctx_r", "w_o"], ["att"], name="out_proj"),
        N("Add", ["att", "x0"], ["r1"], name="residual1"),
        N("LayerNormalization", ["r1", "ln2_g", "ln2_b"], ["x2"], name="ln2", axis=-1),
        N("MatMul", ["x2", "w_ff1"], ["f1"], name="ff1"),
        N("Div", ["f1", "sqrt2"], ["f2"], name="gelu_div"),
        N("Erf", ["f2"], ["f3"], name="gelu_erf"),
        N("Add", ["f3", "one"], ["f4"], name="gelu_add"),
        N("Mul", ["f1", "f4"], ["f5"], name="gelu_mul"),
        N("Mul", ["f5", "half"], ["f6"], name="gelu_half"),
        N("MatMul", ["f6", "w_ff2"], ["f7"], name="ff2"),
        N("Add", ["f7", "r1"], ["hidden"], name="residual2"),
        N("ReduceMean", ["hidden"], ["pooled"], name="pool", axes=[1], keepdims=0),
    ]
    inits = [w("embed", V, H), cf("ln1_g", np.ones(H)), cf("ln1_b", np.zeros(H)), w("w_qkv", H, 3 * H),
             w("b_qkv", 3 * H), c64("split3", [H, H, H]), c64("i0", 0), c64("i1", 1), c64("ax0", [0]),
             c64("ax1", [1]), c64("ax12", [1, 2]), c64("heads", [NH, HD]), c64("hidden_size", [H]),
             cf("sqrt_hd", np.sqrt(HD)), cf("one", 1.0), cf("neg_big", -1e4), c64("zero", 0), c64("step", 1),
             w("w_o", H, H), cf("ln2_g", np.ones(H)), cf("ln2_b", np.zeros(H)), w("w_ff1", H, FF),
             cf("sqrt2", np.sqrt(2.0)), cf("half", 0.5), w("w_ff2", FF, H)]
    return helper.make_graph(nodes, "open_attention",
                             [helper.make_tensor_value_info("input_ids", I64, ["batch", "sequence"]),
                              helper.make_tensor_value_info("attention_mask", I64, ["batch", "sequence"])],
                             [helper.make_tensor_value_info("hidden", F, ["batch", "sequence", H]),
                              helper.make_tensor_value_info("pooled", F, ["batch", H]),
                              helper.make_tensor_value_info("probs", F, ["batch", NH, "sequence", "sequence"])],
                             initializer=inits)


def nested_ifs(depth):
    """Y = If(C) nested `depth` deep (each then_branch holds the next If; the innermost returns X)."""
    g = helper.make_graph([helper.make_node("Identity", ["X"], ["Y%d" % depth], name="leaf")], "leaf", [],
                          [helper.make_tensor_value_info("Y%d" % depth, F, None)])
    for d in range(depth - 1, -1, -1):
        other = helper.make_graph([helper.make_node("Neg", ["X"], ["N%d" % d], name="neg%d" % d)], "else%d" % d, [],
                                  [helper.make_tensor_value_info("N%d" % d, F, None)])
        node = helper.make_node("If", ["C"], ["Y%d" % d], name="if%d" % d, then_branch=g, else_branch=other)
        g = helper.make_graph([node], "then%d" % d, [], [helper.make_tensor_value_info("Y%d" % d, F, None)])
    return helper.make_graph(g.node, "nested_ifs", [helper.make_tensor_value_info("X", F, [2]),
                                                      helper.make_tensor_value_info("C", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("Y0", F, [2])])


def bad_op_models():
    """Models whose op input is malformed (tests/test_bad_input.c: each gets INVALID_ARG naming the problem).
    op_bad_nll: NegativeLogLikelihoodLoss over scores X float[2,3] with targets T int64[2] given at run time
    (ignore_index -1: the test feeds a target of 7, outside [0, 3)). op_bad_gridsample: a grid of rank 3 for a
    rank-4 X. op_bad_col2im: block_shape [3,3] with 4 columns per block (not a multiple of 9).
    op_bad_tensorscatter: write_indices given at run time (the test feeds 3: 2 updates do not fit in 4 positions,
    mode linear). op_bad_roialign: batch_indices given at run time (the test feeds 5 for a batch of 1)."""
    m = {}
    m["op_bad_nll.onnx"] = model(helper.make_graph(
        [helper.make_node("NegativeLogLikelihoodLoss", ["X", "T"], ["Y"], name="nll", ignore_index=-1)], "bad_nll",
        [helper.make_tensor_value_info("X", F, [2, 3]), helper.make_tensor_value_info("T", I64, [2])],
        [helper.make_tensor_value_info("Y", F, [])]), opset=13)
    m["op_bad_gridsample.onnx"] = model(helper.make_graph(
        [helper.make_node("GridSample", ["X", "G"], ["Y"], name="gs")], "bad_gridsample",
        [helper.make_tensor_value_info("X", F, [1, 1, 3, 3]), helper.make_tensor_value_info("G", F, [1, 2, 2])],
        [helper.make_tensor_value_info("Y", F, None)]), opset=16)
    m["op_bad_col2im.onnx"] = model(helper.make_graph(
        [helper.make_node("Col2Im", ["X", "I", "B"], ["Y"], name="c2i")], "bad_col2im",
        [helper.make_tensor_value_info("X", F, [1, 4, 4])], [helper.make_tensor_value_info("Y", F, None)],
        initializer=[raw("I", np.array([4, 4], np.int64)), raw("B", np.array([3, 3], np.int64))]), opset=18)
    m["op_bad_tensorscatter.onnx"] = model(helper.make_graph(
        [helper.make_node("TensorScatter", ["P", "U", "W"], ["Y"], name="ts")], "bad_tensorscatter",
        [helper.make_tensor_value_info("P", F, [1, 4, 2]), helper.make_tensor_value_info("U", F, [1, 2, 2]),
         helper.make_tensor_value_info("W", I64, [1])], [helper.make_tensor_value_info("Y", F, [1, 4, 2])]), opset=24)
    m["op_bad_roialign.onnx"] = model(helper.make_graph(
        [helper.make_node("RoiAlign", ["X", "R", "BI"], ["Y"], name="roi")], "bad_roialign",
        [helper.make_tensor_value_info("X", F, [1, 1, 4, 4]), helper.make_tensor_value_info("BI", I64, [1])],
        [helper.make_tensor_value_info("Y", F, None)],
        initializer=[raw("R", np.array([[0, 0, 2, 2]], np.float32))]), opset=16)
    return m


def build(out):
    files = {}

    # ---- valid models ----------------------------------------------------------------------------------
    files["small.onnx"] = model(small_graph([raw("W", W), raw("B", B), raw("S", S)]))
    files["small_typed.onnx"] = model(small_graph([typed("W", W), typed("B", B), typed("S", S)]))

    # external data: W at offset 0 (12 bytes), B at offset 16 (after 4 padding bytes), S inline
    ext_bin = W.tobytes() + b"\0\0\0\0" + B.tobytes()
    files["ext.onnx"] = model(small_graph([external("W", W, "ext.bin", 0, 12), external("B", B, "ext.bin", 16, 12),
                                           raw("S", S)]))
    files["ext_escape.onnx"] = model(small_graph([external("W", W, "../escape.bin"), raw("B", B), raw("S", S)]))
    files["ext_escape_mid.onnx"] = model(small_graph([external("W", W, "sub/../../escape.bin"), raw("B", B),
                                                      raw("S", S)]))
    files["ext_abs.onnx"] = model(small_graph([external("W", W, "/tmp/safeinfer_abs.bin"), raw("B", B),
                                               raw("S", S)]))
    files["ext_missing.onnx"] = model(small_graph([external("W", W, "no_such_file.bin"), raw("B", B), raw("S", S)]))
    files["ext_short.onnx"] = model(small_graph([external("W", W, "ext.bin", 20), raw("B", B), raw("S", S)]))
    files["ext_badlen.onnx"] = model(small_graph([external("W", W, "ext.bin", 0, 8), raw("B", B), raw("S", S)]))

    # Clip by opset. Input X float[6] = the test's values; expected:
    #   opset 6 : attributes min=-1, max=2
    #   opset 11: inputs min=-1, max=2 (scalar initializers)
    #   opset 13: input min absent (""), max=0.5
    #   opset 13, int32: min=-2, max=3 (int32 scalar initializers)
    x6 = [helper.make_tensor_value_info("X", F, [6])]
    y6 = [helper.make_tensor_value_info("Y", F, [6])]
    files["clip6.onnx"] = model(helper.make_graph(
        [helper.make_node("Clip", ["X"], ["Y"], name="clip", min=-1.0, max=2.0)], "clip6", x6, y6), opset=6,
        ir_version=3)
    files["clip11.onnx"] = model(helper.make_graph(
        [helper.make_node("Clip", ["X", "lo", "hi"], ["Y"], name="clip")], "clip11", x6, y6,
        initializer=[raw("lo", np.array(-1.0, np.float32)), raw("hi", np.array(2.0, np.float32))]), opset=11,
        ir_version=6)
    files["clip13.onnx"] = model(helper.make_graph(
        [helper.make_node("Clip", ["X", "", "hi"], ["Y"], name="clip")], "clip13", x6, y6,
        initializer=[raw("hi", np.array(0.5, np.float32))]), opset=13, ir_version=7)
    files["clip13_int.onnx"] = model(helper.make_graph(
        [helper.make_node("Clip", ["X", "lo", "hi"], ["Y"], name="clip")], "clip13_int",
        [helper.make_tensor_value_info("X", I32, [6])], [helper.make_tensor_value_info("Y", I32, [6])],
        initializer=[raw("lo", np.array(-2, np.int32)), raw("hi", np.array(3, np.int32))]), opset=13, ir_version=7)

    # Constant nodes: C = Constant(value=[1,2,3]); Y = X + C (X float[2,3]); Z = Reshape(Y, Constant(value_ints=[3,2]))
    files["constant.onnx"] = model(helper.make_graph(
        [helper.make_node("Constant", [], ["C"], name="c",
                          value=helper.make_tensor("cv", F, [3], [1.0, 2.0, 3.0])),
         helper.make_node("Add", ["X", "C"], ["Y"], name="add"),
         helper.make_node("Constant", [], ["shape"], name="cs", value_ints=[3, 2]),
         helper.make_node("Reshape", ["Y", "shape"], ["Z"], name="reshape")],
        "constant", [helper.make_tensor_value_info("X", F, [2, 3])],
        [helper.make_tensor_value_info("Y", F, [2, 3]), helper.make_tensor_value_info("Z", F, [3, 2])]))

    # two outputs, the second is the graph input itself: Y = Relu(X), X
    files["passthrough.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"], name="relu")], "passthrough",
        [helper.make_tensor_value_info("X", F, [2, 2])],
        [helper.make_tensor_value_info("Y", F, [2, 2]), helper.make_tensor_value_info("X", F, [2, 2])]))

    # C = A + B with A float[batch,3] and B float[n]: a B of the wrong length fails only at infer time
    files["add_dyn.onnx"] = model(helper.make_graph(
        [helper.make_node("Add", ["A", "B"], ["C"], name="add")], "add_dyn",
        [helper.make_tensor_value_info("A", F, ["batch", 3]), helper.make_tensor_value_info("B", F, ["n"])],
        [helper.make_tensor_value_info("C", F, ["batch", 3])]))

    # one KV-cache step (test_ocl_shapes): present = Concat(past, new) on axis 2, scores = query x present^T;
    # past float[1,2,past_len,4] (0 at the first step), new and query float[1,2,seq,4]
    files["kv_concat.onnx"] = model(helper.make_graph(
        [helper.make_node("Concat", ["past", "new"], ["present"], name="concat", axis=2),
         helper.make_node("Transpose", ["present"], ["present_t"], name="transpose", perm=[0, 1, 3, 2]),
         helper.make_node("MatMul", ["query", "present_t"], ["scores"], name="scores")], "kv_concat",
        [helper.make_tensor_value_info("past", F, [1, 2, "past_len", 4]),
         helper.make_tensor_value_info("new", F, [1, 2, "seq", 4]),
         helper.make_tensor_value_info("query", F, [1, 2, "seq", 4])],
        [helper.make_tensor_value_info("present", F, [1, 2, "total_len", 4]),
         helper.make_tensor_value_info("scores", F, [1, 2, "seq", "total_len"])]))

    # MatMul and Gemm (src/ops/nn.c), X float[batch,3]:
    #   Y = Relu(MatMul(X, Wm) + bm), Wm = [[1,2],[3,4],[5,6]], bm = [0.5,-10]
    #   G = Gemm(X, Wg, cg, transB=1, alpha=2, beta=0.5), Wg = [[1,0,-1],[0.5,0.5,0.5]], cg = [1,2]
    files["matmul.onnx"] = model(helper.make_graph(
        [helper.make_node("MatMul", ["X", "Wm"], ["P"], name="matmul"),
         helper.make_node("Add", ["P", "bm"], ["Q"], name="add"),
         helper.make_node("Relu", ["Q"], ["Y"], name="relu"),
         helper.make_node("Gemm", ["X", "Wg", "cg"], ["G"], name="gemm", transB=1, alpha=2.0, beta=0.5)],
        "matmul", [helper.make_tensor_value_info("X", F, ["batch", 3])],
        [helper.make_tensor_value_info("Y", F, ["batch", 2]), helper.make_tensor_value_info("G", F, ["batch", 2])],
        initializer=[raw("Wm", np.array([[1, 2], [3, 4], [5, 6]], np.float32)),
                     raw("bm", np.array([0.5, -10], np.float32)),
                     raw("Wg", np.array([[1, 0, -1], [0.5, 0.5, 0.5]], np.float32)),
                     raw("cg", np.array([1, 2], np.float32))]))

    # A model the OCL device cannot take whole (it has no CumSum): on OCL,CPU it is cut into three submodels,
    # OCL [Relu] -> CPU [CumSum] -> OCL [Mul, Relu], and A crosses from submodel 0 to submodel 2
    # (tests/inspect_dot.sh). X float[2,4]: A = Relu(X), C = CumSum(A, axis 1), Y = Relu(C * A).
    files["mixed_cumsum.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["A"], name="relu_in"),
         helper.make_node("CumSum", ["A", "axis"], ["C"], name="cumsum"),
         helper.make_node("Mul", ["C", "A"], ["D"], name="mul"),
         helper.make_node("Relu", ["D"], ["Y"], name="relu_out")],
        "mixed_cumsum", [helper.make_tensor_value_info("X", F, [2, 4])], [helper.make_tensor_value_info("Y", F, [2, 4])],
        initializer=[raw("axis", np.array(1, np.int64))]))

    # ---- invalid models ------------------------------------------------------------------------------------
    xy = ([helper.make_tensor_value_info("X", F, [2, 3])], [helper.make_tensor_value_info("Y", F, [2, 3])])

    # a cycle: A = Add(X, Y) and Y = Relu(A)
    files["cycle.onnx"] = model(helper.make_graph(
        [helper.make_node("Add", ["X", "Y"], ["A"], name="add"), helper.make_node("Relu", ["A"], ["Y"], name="relu")],
        "cycle", *xy))
    # an op nobody implements, in the default domain
    files["unknown_op.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["R"], name="relu"), helper.make_node("FooBar", ["R"], ["Y"], name="foo")],
        "unknown_op", *xy))
    # a node reads 'ghost', which nothing produces
    files["dangling.onnx"] = model(helper.make_graph(
        [helper.make_node("Add", ["X", "ghost"], ["Y"], name="add")], "dangling", *xy))
    # a graph output nothing produces
    files["output_missing.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"], name="relu")], "output_missing", xy[0],
        [helper.make_tensor_value_info("Y", F, [2, 3]), helper.make_tensor_value_info("nowhere", F, [2, 3])]))
    # two nodes produce Y
    files["double_producer.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"], name="relu1"), helper.make_node("Abs", ["X"], ["Y"], name="abs2")],
        "double_producer", *xy))
    # string input
    files["string_input.onnx"] = model(helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"], name="id")], "string_input",
        [helper.make_tensor_value_info("X", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("Y", TensorProto.STRING, [2])]))
    # sequence input
    seq = helper.make_sequence_value_info("X", F, [2]) if hasattr(helper, "make_sequence_value_info") else \
        helper.make_value_info("X", helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2])))
    files["sequence_input.onnx"] = model(helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"], name="id")], "sequence_input", [seq],
        [helper.make_tensor_value_info("Y", F, [2])]))
    # rank 9 input (SI_MAX_DIMS is 8)
    files["rank9_input.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"], name="relu")], "rank9_input",
        [helper.make_tensor_value_info("X", F, [1] * 9)], [helper.make_tensor_value_info("Y", F, [1] * 9)]))
    # raw_data of 8 bytes for a float[3] initializer
    bad_raw = raw("W", W)
    bad_raw.raw_data = bad_raw.raw_data[:8]
    files["raw_size_mismatch.onnx"] = model(small_graph([bad_raw, raw("B", B), raw("S", S)]))
    # two values in float_data for a float[3] initializer
    files["typed_count_mismatch.onnx"] = model(small_graph([typed("W", W[:2].reshape(2)), raw("B", B), raw("S", S)]))
    files["typed_count_mismatch.onnx"].graph.initializer[0].ClearField("dims")
    files["typed_count_mismatch.onnx"].graph.initializer[0].dims.extend([3])
    # an initializer with a gigantic shape and no data
    huge = TensorProto()
    huge.name = "W"
    huge.data_type = F
    huge.dims.extend([1 << 31, 1 << 31, 1 << 31])
    huge.raw_data = b""
    files["huge_init.onnx"] = model(small_graph([huge, raw("B", B), raw("S", S)]))
    # an initializer with a negative dimension
    neg = TensorProto()
    neg.name = "W"
    neg.data_type = F
    neg.dims.extend([-3])
    neg.raw_data = b""
    files["neg_dim_init.onnx"] = model(small_graph([neg, raw("B", B), raw("S", S)]))
    # an initializer element type safeinfer does not know (complex64 = 14: UNSUPPORTED; 99: PARSE)
    cplx = TensorProto()
    cplx.name = "W"
    cplx.data_type = 14
    cplx.dims.extend([3])
    cplx.raw_data = b"\0" * 24
    files["complex_init.onnx"] = model(small_graph([cplx, raw("B", B), raw("S", S)]))
    # the only opset import is a custom domain, yet the nodes use the default domain
    files["no_default_opset.onnx"] = model(helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"], name="relu")], "no_default_opset", *xy), opset=None,
        domains=[("com.example", 1)])
    # declared shapes that cannot broadcast: X float[2,3] + W float[4]
    files["bad_broadcast.onnx"] = model(helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"], name="add")], "bad_broadcast", *xy,
        initializer=[raw("W", np.arange(4, dtype=np.float32))]))
    # the same with the batch open (X float[batch,3]): refused once batch is known, as before partial shapes
    # (tests/test_subgraph.c)
    files["bad_broadcast_open.onnx"] = model(helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"], name="add")], "bad_broadcast_open",
        [helper.make_tensor_value_info("X", F, ["batch", 3])], [helper.make_tensor_value_info("Y", F, ["batch", 3])],
        initializer=[raw("W", np.arange(4, dtype=np.float32))]))
    # a model with no graph at all
    nog = onnx.ModelProto()
    nog.ir_version = IR_VERSION
    nog.producer_name = PRODUCER
    nog.opset_import.extend([helper.make_opsetid("", 17)])
    files["no_graph.onnx"] = nog

    # ---- repeated blocks folded into function calls (tests/test_fold.c) -------------------------------------
    files["fold_blocks.onnx"] = model(fold_blocks_graph())
    # blocks whose weights feed a Conv (whose fast path wants them constant): not folded
    files["fold_conv.onnx"] = model(fold_conv_graph())
    # a model that uses the op safeinfer's folding makes: refused by name
    files["fold_hostile_call.onnx"] = model(helper.make_graph(
        [helper.make_node("Call", ["X"], ["Y"], name="call", domain="ai.safeinfer", function=0)], "hostile_call",
        [helper.make_tensor_value_info("X", F, [3])], [helper.make_tensor_value_info("Y", F, [3])]),
        domains=[("ai.safeinfer", 1)])

    # ---- control flow (tests/test_subgraph.c) ---------------------------------------------------------------
    files["control_flow.onnx"] = model(control_flow_graph())
    files["control_scan.onnx"] = model(control_scan_graph())
    files["control_loop_if.onnx"] = model(control_loop_if_graph())
    files["control_bad_loop.onnx"] = model(control_bad_loop_graph())
    files["open_attention.onnx"] = model(open_attention_graph())  # open batch and sequence (shapes_fixture)
    files["control_nested16.onnx"] = model(nested_ifs(16))  # subgraphs 16 deep: the most safeinfer takes
    files["control_nested17.onnx"] = model(nested_ifs(17))  # one more: refused by name
    # an If whose branches disagree in element type (float32 and int64): invalid
    files["control_if_types.onnx"] = model(helper.make_graph(
        [helper.make_node("If", ["C"], ["Y"], name="if",
                          then_branch=helper.make_graph([helper.make_node("Identity", ["X"], ["T"], name="t")], "then",
                                                        [], [helper.make_tensor_value_info("T", F, None)]),
                          else_branch=helper.make_graph([helper.make_node("Cast", ["X"], ["E"], name="e", to=I64)],
                                                        "else", [], [helper.make_tensor_value_info("E", I64, None)]))],
        "if_types", [helper.make_tensor_value_info("X", F, [2]), helper.make_tensor_value_info("C", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("Y", F, [2])]))
    # If on conditions known before run time, with branches of different ranks: the outputs are the taken
    # branch's. Y1: a constant condition (true: X, float[batch,3]); Y2: a condition folded from X's rank
    # (Equal(Size(Shape(X)), 2): true: the else branch, ReduceSum(X) of rank 1, is not taken)
    def rank_branches(tag):
        t = helper.make_graph([helper.make_node("Identity", ["X"], ["T" + tag], name="t" + tag)], "then" + tag, [],
                              [helper.make_tensor_value_info("T" + tag, F, None)])
        e = helper.make_graph([helper.make_node("ReduceSum", ["X"], ["E" + tag], name="e" + tag, keepdims=0)],
                              "else" + tag, [], [helper.make_tensor_value_info("E" + tag, F, None)])
        return dict(then_branch=t, else_branch=e)
    files["control_if_const.onnx"] = model(helper.make_graph(
        [helper.make_node("If", ["CT"], ["Y1"], name="if_const", **rank_branches("1")),
         helper.make_node("Shape", ["X"], ["XS"], name="shape"),
         helper.make_node("Size", ["XS"], ["XR"], name="rank"),
         helper.make_node("Equal", ["XR", "two"], ["C2"], name="is_2d"),
         helper.make_node("If", ["C2"], ["Y2"], name="if_rank", **rank_branches("2"))],
        "if_const", [helper.make_tensor_value_info("X", F, ["batch", 3])],
        [helper.make_tensor_value_info("Y1", F, ["y1a", "y1b"]), helper.make_tensor_value_info("Y2", F, ["y2a", "y2b"])],
        initializer=[raw("CT", np.array(True)), raw("two", np.array(2, np.int64))]))
    # Ifs folded at compile time (tests/test_control.c): Y1 = If(CT) whose then-branch is If(CF) whose else-branch
    # returns the initializer W itself (no node: an Identity takes its place); Y2 = If(CF) whose else-branch returns
    # the model input X itself; Y3 = If(CT) whose branch makes a value named A like the model's own A (names are
    # how subgraphs read outer values, so it is not inlined: it runs on the host). Y1 = W, Y2 = X, Y3 = -X, A = Relu(X).
    def g1(nodes, name, out):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, F, None)])
    inner = helper.make_node("If", ["CF"], ["T1"], name="inner_if",
                             then_branch=g1([helper.make_node("Neg", ["X"], ["N1"], name="n1")], "it", "N1"),
                             else_branch=g1([], "ie", "W"))
    # a shape as a run-time value (a folded layer's batch size): N int64[1] -> Reshape X [B, 12] to [N, 3, 4] (N = 0:
    # copy B) -> MatMul W [4, 5] -> Softmax. The CPU device plans it by N's value: MatMul and Softmax on fast kernels
    files["shape_input.onnx"] = model(helper.make_graph(
        [helper.make_node("Concat", ["N", "tail"], ["shp"], name="shape", axis=0),
         helper.make_node("Reshape", ["X", "shp"], ["r"], name="reshape"),
         helper.make_node("MatMul", ["r", "Wm"], ["m"], name="matmul"),
         helper.make_node("Softmax", ["m"], ["Y"], name="softmax", axis=-1)],
        "shape_input", [helper.make_tensor_value_info("N", I64, [1]), helper.make_tensor_value_info("X", F, ["B", 12])],
        [helper.make_tensor_value_info("Y", F, ["B", 3, 5])],
        initializer=[raw("tail", np.array([3, 4], np.int64)),
                     raw("Wm", np.arange(20, dtype=np.float32).reshape(4, 5) / 10)]))
    files["control_if_fold.onnx"] = model(helper.make_graph(
        [helper.make_node("If", ["CT"], ["Y1"], name="if1", then_branch=g1([inner], "t1", "T1"),
                          else_branch=g1([helper.make_node("Abs", ["X"], ["B1"], name="b1")], "e1", "B1")),
         helper.make_node("If", ["CF"], ["Y2"], name="if2",
                          then_branch=g1([helper.make_node("Relu", ["X"], ["R2"], name="r2")], "t2", "R2"),
                          else_branch=g1([], "e2", "X")),
         helper.make_node("Relu", ["X"], ["A"], name="relu"),
         helper.make_node("If", ["CT"], ["Y3"], name="if3",
                          then_branch=g1([helper.make_node("Neg", ["X"], ["A"], name="a3")], "t3", "A"),
                          else_branch=g1([helper.make_node("Abs", ["X"], ["B3"], name="b3")], "e3", "B3"))],
        "if_fold", [helper.make_tensor_value_info("X", F, [3])],
        [helper.make_tensor_value_info(n, F, [3]) for n in ("Y1", "Y2", "Y3", "A")],
        initializer=[raw("CT", np.array(True)), raw("CF", np.array(False)), raw("W", W)]))
    # a GRAPHS attribute (no standard op has one; a custom-domain op here): two graphs, each reading a model value
    # by name (X in the first, W in the second)
    gs = [helper.make_graph([helper.make_node("Neg", ["X"], ["G0"], name="g0")], "g0", [],
                            [helper.make_tensor_value_info("G0", F, None)]),
          helper.make_graph([helper.make_node("Abs", ["W"], ["G1"], name="g1")], "g1", [],
                            [helper.make_tensor_value_info("G1", F, None)])]
    multi = helper.make_node("Multi", ["X"], ["Y"], name="multi", domain="com.example")
    multi.attribute.extend([helper.make_attribute("bodies", gs)])
    files["control_graphs.onnx"] = model(helper.make_graph(
        [multi], "graphs_attr", [helper.make_tensor_value_info("X", F, [3])], [helper.make_tensor_value_info("Y", F, [3])],
        initializer=[raw("W", W)]), domains=[("com.example", 1)])
    # a branch reading 'nowhere', which no enclosing graph has: invalid
    files["control_dangling.onnx"] = model(helper.make_graph(
        [helper.make_node("If", ["C"], ["Y"], name="if",
                          then_branch=helper.make_graph([helper.make_node("Neg", ["nowhere"], ["T"], name="t")], "then",
                                                        [], [helper.make_tensor_value_info("T", F, None)]),
                          else_branch=helper.make_graph([helper.make_node("Neg", ["X"], ["E"], name="e")], "else", [],
                                                        [helper.make_tensor_value_info("E", F, None)]))],
        "dangling", [helper.make_tensor_value_info("X", F, [2]), helper.make_tensor_value_info("C", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("Y", F, [2])]))

    files.update(bad_op_models())

    os.makedirs(out, exist_ok=True)
    for name, m in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(m.SerializeToString())
    with open(os.path.join(out, "ext.bin"), "wb") as f:
        f.write(ext_bin)
    # an empty file and a file that is not protobuf at all
    with open(os.path.join(out, "empty.onnx"), "wb") as f:
        pass
    with open(os.path.join(out, "text.onnx"), "wb") as f:
        f.write(b"this is not an ONNX model\n")
    # a malformed .npy: magic right, header length past the end of the file
    with open(os.path.join(out, "bad_header.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00\xff\x7f{'descr': '<f4'")
    # a .npy whose header is fine but whose data is short (float32[4] with 8 bytes)
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
    hdr += b" " * (63 - (10 + len(hdr)) % 64) + b"\n"
    with open(os.path.join(out, "short_data.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + b"\0" * 8)

    # an ONNX backend test case for `safeinfer check-onnx` (tests/cli.sh): small.onnx with one data set
    case = os.path.join(out, "case_small")
    os.makedirs(os.path.join(case, "test_data_set_0"), exist_ok=True)
    with open(os.path.join(case, "model.onnx"), "wb") as f:
        f.write(files["small.onnx"].SerializeToString())
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]], dtype=np.float32)
    y = np.maximum(x * W + B, 0).astype(np.float32)
    case_files = {"input_0.pb": numpy_helper.from_array(x, "X"), "output_0.pb": numpy_helper.from_array(y, "Y"),
                  "output_1.pb": numpy_helper.from_array(y.T.reshape(-1), "Z")}
    for name, t in case_files.items():
        with open(os.path.join(case, "test_data_set_0", name), "wb") as f:
            f.write(t.SerializeToString())

    # self-check of the valid models with onnx's checker (the invalid ones are deliberately not checked)
    for name in ("small.onnx", "small_typed.onnx", "clip6.onnx", "clip11.onnx", "clip13.onnx", "clip13_int.onnx",
                 "constant.onnx", "passthrough.onnx", "add_dyn.onnx", "kv_concat.onnx", "matmul.onnx", "mixed_cumsum.onnx",
                 "control_flow.onnx", "control_scan.onnx", "control_loop_if.onnx", "control_bad_loop.onnx", "open_attention.onnx", "control_if_const.onnx", "control_nested16.onnx", "control_nested17.onnx", "shape_input.onnx"):
        onnx.checker.check_model(files[name])
    return sorted(list(files) + ["ext.bin", "empty.onnx", "text.onnx", "bad_header.npy", "short_data.npy"] +
                  ["case_small/model.onnx"] + ["case_small/test_data_set_0/" + n for n in case_files])


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                              "tests", "data")
    names = build(os.path.normpath(out))
    print("wrote %d files to %s" % (len(names), os.path.normpath(out)))
