"""Dynamic quantization written the way ONNX Runtime's dynamic quantizer (quantize_dynamic, QOperator form)
rewrites a float model, for the generators that offer a quantized variant.

  MatMul(x, W)      with W a 2-D float initializer:
      x -> DynamicQuantizeLinear -> (x_q uint8, x_scale, x_zero_point)
      MatMulInteger(x_q, W_q, x_zero_point, W_zero_point) -> Cast(to float) -> Mul(., x_scale * W_scale)
  Conv(x, W[, B])   with W a float initializer:
      x -> DynamicQuantizeLinear; ConvInteger(x_q, W_q, x_zero_point, W_zero_point) (Conv's attributes)
      -> Cast(to float) -> Mul(., x_scale * W_scale) [-> Add(., B reshaped to [1, M, 1...])]

One DynamicQuantizeLinear per activation and graph (the q/k/v projections of one input share it), one quantized
initializer per weight (an If's two branches reading one outer-scope weight share it). Subgraphs (If/Loop/Scan
bodies) are rewritten too, their weights being initializers of the main graph read from the outer scope.
Weights: int8 symmetric (zero point 0, scale max|W| / 127) or uint8 asymmetric (scale (max - min) / 255 over a
range that holds 0, zero point round(-min / scale)); per tensor, or per output column for MatMul (per_channel).
ConvTranspose, Gather and the rest stay float, as ORT's dynamic quantizer leaves them.
"""
import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"


def int8_products_exact():
    """Whether uint8 x int8 products are exact on this CPU in ONNX Runtime and in safeinfer's CPU device. With
    AVX-512 VNNI (or AMX) they accumulate in int32; without it ORT's x86 kernels (and oneDNN's) add pairs of
    products in saturating int16 (vpmaddubsw), which ORT's documentation answers with reduce_range: 7-bit
    weights, whose pairs cannot saturate (2 x 255 x 64 < 32768); safeinfer's CPU device then computes those ops
    on other kernels (si_cpu_int8_exact; AVX-VNNI alone counts as no, as there). SI_QUANT_REDUCE_RANGE=1 (or 0)
    forces 7-bit (or 8-bit) weights."""
    e = os.environ.get("SI_QUANT_REDUCE_RANGE")
    if e in ("0", "1"):
        return e == "0"
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return True
    return bool(flags & {"avx512_vnni", "amx_int8"})


# The largest int8 weight code: 127, or 63 where ORT's uint8 x int8 products saturate (reduce_range), so that the
# quantized models the tests compare with ORT have one right answer on every CPU.
INT8_WEIGHT_MAX = 127 if int8_products_exact() else 63


def int8_weights(rng, shape):
    """Random int8 weight codes for an integer product's tests, within +-INT8_WEIGHT_MAX (-128..127 where the
    products are exact, 7 bits elsewhere)."""
    return rng.integers(-INT8_WEIGHT_MAX - 1, INT8_WEIGHT_MAX + 1, size=shape).astype(np.int8)


def quantize_weight(w, wtype, axis=None):
    """w float -> (q, scale, zero_point); axis: None per tensor, else the axis that keeps its own scale."""
    if axis is None:
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    else:
        red = tuple(i for i in range(w.ndim) if i != axis)
        lo, hi = np.minimum(w.min(axis=red), 0.0), np.maximum(w.max(axis=red), 0.0)
    if wtype == "int8":
        scale = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 1e-8) / float(INT8_WEIGHT_MAX)
        zp = np.zeros_like(scale, dtype=np.int8)
        sc = scale if axis is None else np.expand_dims(scale, red)
        q = np.clip(np.round(w / sc), -INT8_WEIGHT_MAX, INT8_WEIGHT_MAX).astype(np.int8)
    else:
        scale = np.maximum(np.asarray(hi) - np.asarray(lo), 1e-8) / 255.0
        zp = np.clip(np.round(-np.asarray(lo) / scale), 0, 255).astype(np.uint8)
        sc = scale if axis is None else np.expand_dims(scale, red)
        z = zp if axis is None else np.expand_dims(zp, red)
        q = np.clip(np.round(w / sc) + z, 0, 255).astype(np.uint8)
    return q, np.asarray(scale, np.float32), np.asarray(zp)


class _Quantizer:
    def __init__(self, model, ops, matmul_wtype, conv_wtype, per_channel):
        self.model, self.ops = model, set(ops)
        self.mw, self.cw, self.per_channel = matmul_wtype, conv_wtype, per_channel
        self.inits = {t.name: t for t in model.graph.initializer}
        self.new_inits, self.wcache, self.names = [], {}, set()
        self.count = {"MatMul": 0, "Conv": 0}
        self._collect_names(model.graph)

    def _collect_names(self, g):
        for n in g.node:
            self.names.update(n.output)
            self.names.add(n.name)
            for a in n.attribute:
                if a.type == helper.AttributeProto.GRAPH:
                    self._collect_names(a.g)
        self.names.update(self.inits)

    def fresh(self, base):
        n, k = base, 0
        while n in self.names:
            k += 1
            n = f"{base}_{k}"
        self.names.add(n)
        return n

    def weight(self, name, wtype, axis):
        key = (name, wtype, axis)
        if key not in self.wcache:
            w = numpy_helper.to_array(self.inits[name]).astype(np.float32)
            q, s, z = quantize_weight(w, wtype, axis)
            qn, sn, zn = self.fresh(name + "_quantized"), self.fresh(name + "_scale"), self.fresh(name + "_zero_point")
            self.new_inits += [numpy_helper.from_array(q, qn), numpy_helper.from_array(s, sn),
                               numpy_helper.from_array(z, zn)]
            self.wcache[key] = (qn, sn, zn)
        return self.wcache[key]

    def float_weight(self, name, dims):
        t = self.inits.get(name)
        return t is not None and t.data_type == TensorProto.FLOAT and len(t.dims) in dims

    def graph(self, g):
        dql = {}  # activation -> (x_q, x_scale, x_zero_point) in this graph
        out = []

        def act(x):
            if x not in dql:
                base = self.fresh(x + "_DynamicQuantizeLinear")
                q, s, z = self.fresh(x + "_quantized"), self.fresh(x + "_scale"), self.fresh(x + "_zero_point")
                out.append(helper.make_node("DynamicQuantizeLinear", [x], [q, s, z], name=base))
                dql[x] = (q, s, z)
            return dql[x]

        for n in g.node:
            for a in n.attribute:
                if a.type == helper.AttributeProto.GRAPH:
                    self.graph(a.g)
            if n.op_type == "MatMul" and "MatMul" in self.ops and self.float_weight(n.input[1], (2,)):
                xq, xs, xz = act(n.input[0])
                wq, ws, wz = self.weight(n.input[1], self.mw, 1 if self.per_channel else None)
                y = n.output[0]
                i = self.fresh(y + "_output_quantized")
                c = self.fresh(y + "_output_quantized_cast")
                sp = self.fresh(y + "_scales_mul")
                out.append(helper.make_node("MatMulInteger", [xq, wq, xz, wz], [i], name=self.fresh(n.name + "_quant")))
                out.append(helper.make_node("Cast", [i], [c], name=self.fresh(c), to=TensorProto.FLOAT))
                out.append(helper.make_node("Mul", [xs, ws], [sp], name=self.fresh(sp)))
                out.append(helper.make_node("Mul", [c, sp], [y], name=self.fresh(y + "_mul")))
                self.count["MatMul"] += 1
            elif n.op_type == "Conv" and "Conv" in self.ops and self.float_weight(n.input[1], (3, 4, 5)):
                xq, xs, xz = act(n.input[0])
                wq, ws, wz = self.weight(n.input[1], self.cw, None)
                y = n.output[0]
                i = self.fresh(y + "_output_quantized")
                c = self.fresh(y + "_output_quantized_cast")
                sp = self.fresh(y + "_scales_mul")
                has_bias = len(n.input) > 2 and n.input[2]
                m = self.fresh(y + "_scaled") if has_bias else y
                out.append(helper.make_node("ConvInteger", [xq, wq, xz, wz], [i], name=self.fresh(n.name + "_quant"),
                                            **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
                out.append(helper.make_node("Cast", [i], [c], name=self.fresh(c), to=TensorProto.FLOAT))
                out.append(helper.make_node("Mul", [xs, ws], [sp], name=self.fresh(sp)))
                out.append(helper.make_node("Mul", [c, sp], [m], name=self.fresh(y + "_mul")))
                if has_bias:
                    bn = n.input[2]
                    rank = len(self.inits[n.input[1]].dims)
                    key = (bn, "reshaped")
                    if key not in self.wcache:
                        bv = numpy_helper.to_array(self.inits[bn])
                        r = self.fresh(bn + "_reshaped")
                        self.new_inits.append(numpy_helper.from_array(bv.reshape([1, -1] + [1] * (rank - 2)), r))
                        self.wcache[key] = r
                    out.append(helper.make_node("Add", [m, self.wcache[key]], [y], name=self.fresh(y + "_bias_add")))
                self.count["Conv"] += 1
            else:
                out.append(n)
        del g.node[:]
        g.node.extend(out)


def quantize_dynamic(model, ops=("MatMul", "Conv"), matmul_weight_type="int8", conv_weight_type="uint8",
                     per_channel=False):
    """Rewrites model (a ModelProto, in place) and returns it with the counts of rewritten nodes per op.

    Weights left without a float consumer are dropped from the initializers."""
    qz = _Quantizer(model, ops, matmul_weight_type, conv_weight_type, per_channel)
    qz.graph(model.graph)
    model.graph.initializer.extend(qz.new_inits)
    used = set()

    def uses(g):
        for n in g.node:
            used.update(n.input)
            for a in n.attribute:
                if a.type == helper.AttributeProto.GRAPH:
                    uses(a.g)
    uses(model.graph)
    used.update(o.name for o in model.graph.output)
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 10 for o in model.opset_import):
        raise ValueError("dynamic quantization needs opset >= 10")
    return model, dict(qz.count)


# --- static quantization, QOperator form ---------------------------------------------------------------------------
# quantize_static rewrites a float model the way ONNX Runtime's quantize_static(QuantFormat.QOperator) does, from
# activation ranges measured on one calibration input (a numpy evaluation of the float model, eager.py):
#
#   input x            -> QuantizeLinear (uint8, scale and zero point from x's range)
#   Conv [-> Relu|Clip] -> QLinearConv: int8 weights (symmetric, per output channel with per_channel), int32 bias at
#                         scale x_scale * w_scale; a Relu / Clip (constant bounds) that is the Conv's only consumer
#                         folds into the output range (a BatchNormalization after a Conv is folded into it first)
#   MatMul(x, W)       -> QLinearMatMul (W 2-D, int8 per tensor); Gemm(x, W, B) -> QGemm (com.microsoft)
#   Add [-> Relu] / Mul -> QLinearAdd (a Relu after it folds into its output range) / QLinearMul, Sigmoid ->
#                         QLinearSigmoid, LeakyRelu -> QLinearLeakyRelu,
#   Concat             -> QLinearConcat, GlobalAveragePool / AveragePool -> QLinearGlobalAveragePool /
#                         QLinearAveragePool (com.microsoft; with ms_ops=False these stay float between a
#                         DequantizeLinear and a QuantizeLinear, which is what an ONNX-domain-only runtime needs)
#   MaxPool, Resize (nearest), Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Slice, Split
#                      -> the same op on the uint8 tensor, which keeps its scale and zero point
#   anything else      -> DequantizeLinear of its quantized inputs, the float op
#   graph outputs      -> DequantizeLinear when they were produced quantized.
# Main graph only (no subgraphs).

_PASS = {"MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Split"}
_MS_QOPS = {"Add": "QLinearAdd", "Mul": "QLinearMul", "Sigmoid": "QLinearSigmoid", "LeakyRelu": "QLinearLeakyRelu",
            "Concat": "QLinearConcat", "GlobalAveragePool": "QLinearGlobalAveragePool",
            "AveragePool": "QLinearAveragePool"}


def _namer(names, new_inits):
    """fresh(base): a name not in names (then taken); init(base, array): a new initializer under a fresh name."""
    def fresh(base):
        n, k = base, 0
        while n in names:
            k += 1
            n = f"{base}_{k}"
        names.add(n)
        return n

    def init(base, arr):
        n = fresh(base)
        new_inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n
    return fresh, init


def _replace_nodes(g, nodes, new_inits):
    """g's nodes become nodes, new_inits join its initializers, and the initializers nothing reads go."""
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def _calibrate(model, feeds):
    import eager  # noqa: PLC0415
    vals = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    vals.update(feeds)
    for n in model.graph.node:
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in eager.attrs_of(n).items()}
        if n.op_type == "Constant":
            vals[n.output[0]] = numpy_helper.to_array(a["value"])
            continue
        out = eager.evaluate(n.op_type, [vals[i] if i else None for i in n.input], a, len(n.output))
        if out is None:
            raise NotImplementedError(f"calibration: eager.py has no {n.op_type}")
        for o, v in zip(n.output, out):
            vals[o] = v
    return vals


def _act_params(v):
    lo, hi = min(float(np.min(v)), 0.0), max(float(np.max(v)), 0.0)
    scale = max(hi - lo, 1e-6) / 255.0
    return np.float32(scale), np.uint8(np.clip(round(-lo / scale), 0, 255))


def _fold_batchnorm(model):
    """Folds each BatchNormalization whose input is a Conv with initializer weights (and no other consumer) into the
    Conv's weights and bias, as ONNX Runtime's quantization pre-processing does before quantizing."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    uses = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    prod = {o: n for n in g.node for o in n.output}
    drop, new = set(), {}
    for n in g.node:
        if n.op_type != "BatchNormalization" or len(n.output) != 1 or any(i not in inits for i in n.input[1:5]):
            continue
        conv = prod.get(n.input[0])
        if conv is None or conv.op_type != "Conv" or uses.get(n.input[0], 0) != 1 or conv.input[1] not in inits or \
                n.input[0] in [o.name for o in g.output]:
            continue
        eps = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "epsilon"), 1e-5)
        sc, bi, mu, var = (numpy_helper.to_array(inits[i]).astype(np.float64) for i in n.input[1:5])
        k = sc / np.sqrt(var + eps)
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2] else 0.0
        wn, bn = conv.input[1] + "_bnfolded", (conv.input[2] if len(conv.input) > 2 and conv.input[2] else conv.name) + "_bnfolded"
        new[wn] = (w * k.reshape([-1] + [1] * (w.ndim - 1))).astype(np.float32)
        new[bn] = ((b - mu) * k + bi).astype(np.float32)
        del conv.input[1:]
        conv.input.extend([wn, bn])
        conv.output[0] = n.output[0]
        drop.add(id(n))
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in new.items())


def quantize_static(model, feeds, per_channel=True, ms_ops=True, ops=None):
    """Rewrites model (in place) into QOperator form calibrated on feeds {input: array}; returns (model, counts).
    ops: the float op types to quantize (default: all that the form covers). BatchNormalization after a Conv is
    folded into it first."""
    _fold_batchnorm(model)
    vals = _calibrate(model, feeds)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    names = set(inits) | {o for n in g.node for o in n.output} | {i.name for i in g.input}
    new_inits, out, counts = [], [], {}
    q = {}            # float value -> (q, scale, zero point) names
    have_float = set(i.name for i in g.input) | set(inits)  # float values that exist in the rewritten graph

    fresh, init = _namer(names, new_inits)

    def params(v, like=None):
        s, z = _act_params(vals[like or v])
        return init(v + "_scale", s), init(v + "_zero_point", z)

    def quant(v):  # the quantized form of activation v (QuantizeLinear when there is none)
        if v not in q:
            s, z = params(v)
            qn = fresh(v + "_quantized")
            out.append(helper.make_node("QuantizeLinear", [v, s, z], [qn], name=fresh(v + "_QuantizeLinear")))
            q[v] = (qn, s, z)
        return q[v]

    def need_float(v):
        if v and v not in have_float and v in q:
            qn, s, z = q[v]
            out.append(helper.make_node("DequantizeLinear", [qn, s, z], [v], name=fresh(v + "_DequantizeLinear")))
        if v:
            have_float.add(v)

    def is_act(v):
        return v in vals and v not in inits and vals[v].dtype == np.float32

    def count(op):
        counts[op] = counts.get(op, 0) + 1

    def want(op):
        return ops is None or op in ops

    skip = set()
    for n in g.node:
        if id(n) in skip:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        op = n.op_type
        w = inits.get(n.input[1]) if len(n.input) > 1 else None
        if op == "Conv" and want(op) and w is not None and w.data_type == TensorProto.FLOAT and is_act(n.input[0]):
            y = n.output[0]
            cons = consumers.get(y, [])
            relu = cons[0] if len(cons) == 1 and cons[0].op_type in ("Relu", "Clip") and y not in [o.name for o in g.output] \
                and all(i == y or i in inits for i in cons[0].input if i) else None
            yo = relu.output[0] if relu is not None else y
            xq, xs, xz = quant(n.input[0])
            wf = numpy_helper.to_array(w).astype(np.float32)
            wq, ws, wz = quantize_weight(wf, "int8", 0 if per_channel else None)
            ins = [xq, xs, xz, init(n.input[1] + "_quantized", wq), init(n.input[1] + "_scale", ws),
                   init(n.input[1] + "_zero_point", wz)]
            ys, yz = params(yo)
            ins += [ys, yz]
            if len(n.input) > 2 and n.input[2]:
                b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
                xsv = float(numpy_helper.to_array(next(t for t in new_inits if t.name == xs)))
                bq = np.round(b / (xsv * np.asarray(ws, np.float64))).astype(np.int32)
                ins.append(init(n.input[2] + "_quantized", bq))
            qn = fresh(yo + "_quantized")
            out.append(helper.make_node("QLinearConv", ins, [qn], name=fresh(n.name or "QLinearConv"), **attrs))
            q[yo] = (qn, ys, yz)
            if relu is not None:
                skip.add(id(relu))
            count("QLinearConv")
            continue
        if op in ("MatMul", "Gemm") and want(op) and w is not None and len(w.dims) == 2 and is_act(n.input[0]) and \
                (op == "MatMul" or (ms_ops and attrs.get("transA", 0) == 0)):
            xq, xs, xz = quant(n.input[0])
            wq, ws, wz = quantize_weight(numpy_helper.to_array(w).astype(np.float32), "int8", None)
            ys, yz = params(n.output[0])
            qn = fresh(n.output[0] + "_quantized")
            if op == "MatMul":
                out.append(helper.make_node("QLinearMatMul", [xq, xs, xz, init(n.input[1] + "_quantized", wq),
                                            init(n.input[1] + "_scale", ws), init(n.input[1] + "_zero_point", wz), ys, yz],
                                            [qn], name=fresh(n.name or "QLinearMatMul")))
            else:
                ins = [xq, xs, xz, init(n.input[1] + "_quantized", wq), init(n.input[1] + "_scale", ws),
                       init(n.input[1] + "_zero_point", wz)]
                if len(n.input) > 2 and n.input[2]:
                    xsv = float(numpy_helper.to_array(next(t for t in new_inits if t.name == xs)))
                    b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) * attrs.get("beta", 1.0)
                    ins.append(init(n.input[2] + "_quantized",
                                    np.round(b / (xsv * float(ws) * attrs.get("alpha", 1.0))).astype(np.int32)))
                else:
                    ins.append("")
                ins += [ys, yz]
                out.append(helper.make_node("QGemm", ins, [qn], name=fresh(n.name or "QGemm"), domain=MS,
                                            **{k: v for k, v in attrs.items() if k in ("alpha", "transA", "transB")}))
            q[n.output[0]] = (qn, ys, yz)
            count(out[-1].op_type)
            continue
        acts = [i for i in n.input if i and is_act(i)]
        if ms_ops and op in _MS_QOPS and want(op) and acts and all(is_act(i) for i in n.input if i) and \
                all(vals[o].dtype == np.float32 for o in n.output):
            qop = _MS_QOPS[op]
            y = n.output[0]
            cons = consumers.get(y, [])
            relu = cons[0] if op == "Add" and len(cons) == 1 and cons[0].op_type == "Relu" and \
                y not in [o.name for o in g.output] else None
            if relu is not None:  # the residual's Relu folds into QLinearAdd's output range, as for QLinearConv
                skip.add(id(relu))
                y = relu.output[0]
            ys, yz = params(y)
            qn = fresh(y + "_quantized")
            if op == "Concat":
                ins = [ys, yz] + [p for i in n.input for p in quant(i)]
            else:
                ins = [p for i in n.input for p in quant(i)] + [ys, yz]
            extra = {}
            if op in ("GlobalAveragePool", "AveragePool"):
                extra["channels_last"] = 0
            out.append(helper.make_node(qop, ins, [qn], name=fresh(n.name or qop), domain=MS, **attrs, **extra))
            q[y] = (qn, ys, yz)
            count(qop)
            continue
        if op in _PASS | {"Resize"} and want(op) and n.input[0] in q and \
                (op != "Resize" or attrs.get("mode", b"nearest") in (b"nearest", "nearest")):
            qn_in = q[n.input[0]][0]
            outs = [fresh(o + "_quantized") for o in n.output]
            out.append(helper.make_node(op, [qn_in] + list(n.input[1:]), outs, name=fresh(n.name or op), **attrs))
            for o, qo in zip(n.output, outs):
                q[o] = (qo, q[n.input[0]][1], q[n.input[0]][2])
            for i in n.input[1:]:
                need_float(i) if i in q else None
            count(op + "(uint8)")
            continue
        for i in n.input:
            need_float(i)
        out.append(n)
        have_float.update(n.output)
    for o in g.output:
        need_float(o.name)
    _replace_nodes(g, out, new_inits)
    if ms_ops and any(n.domain == MS for n in g.node) and not any(o.domain == MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS, 1))
    return model, counts


# --- static quantization, QDQ form ---------------------------------------------------------------------------------
# quantize_qdq writes the QDQ form that ONNX Runtime's quantize_static(QuantFormat.QDQ) writes by default: the ops stay
# float, each activation input of a quantized op reads QuantizeLinear -> DequantizeLinear (one pair per tensor,
# uint8, calibrated on feeds), Conv / MatMul / Gemm weights are int8 initializers behind a DequantizeLinear (per output
# channel for Conv with per_channel, axis 0) and a Conv's bias an int32 initializer at scale x_scale * w_scale behind
# one. A Relu / Clip that is a Conv's only consumer is dropped and the Conv's output quantized with its range (ORT
# removes such activations too). MaxPool's output is quantized with its input's parameters. ORT fuses
# DequantizeLinear -> Conv -> QuantizeLinear into an integer convolution;
# the graph as written computes in float between the pairs.

_QDQ_OPS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "Concat", "GlobalAveragePool", "AveragePool", "Sigmoid", "MaxPool"}
_QDQ_SAME = {"MaxPool"}  # their output is quantized with their input's scale and zero point (as ORT's quantizer does)


def quantize_qdq(model, feeds, per_channel=True):
    """Rewrites model (in place) into QDQ form calibrated on feeds {input: array}; returns (model, counts)."""
    _fold_batchnorm(model)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    vals = _calibrate(model, feeds)
    # drop the activations after Conv (the Conv writes their output, quantized with their range)
    drop = set()
    for n in g.node:
        if n.op_type == "Conv" and len(consumers.get(n.output[0], [])) == 1 and n.output[0] not in outputs:
            a = consumers[n.output[0]][0]
            if a.op_type in ("Relu", "Clip") and all(i == n.output[0] or i in inits for i in a.input if i):
                n.output[0] = a.output[0]
                drop.add(id(a))
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep)
    names = set(inits) | {o for n in g.node for o in n.output} | {i.name for i in g.input}
    new_inits, out, counts, qdq = [], [], {}, {}

    fresh, init = _namer(names, new_inits)

    prod = {o: n for n in g.node for o in n.output}

    def act(v):
        if v not in qdq:
            src = v
            while src in prod and prod[src].op_type in _QDQ_SAME and prod[src].input[0] in vals:
                src = prod[src].input[0]
            s, z = _act_params(vals[src])
            sn, zn = init(v + "_scale", s), init(v + "_zero_point", z)
            qn, dn = fresh(v + "_QuantizeLinear_Output"), fresh(v + "_DequantizeLinear_Output")
            out.append(helper.make_node("QuantizeLinear", [v, sn, zn], [qn], name=fresh(v + "_QuantizeLinear")))
            out.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [dn], name=fresh(v + "_DequantizeLinear")))
            qdq[v] = (dn, float(s))
        return qdq[v]

    def is_act(v):
        return v in vals and v not in inits and vals[v].dtype == np.float32

    for n in g.node:
        op = n.op_type
        if op not in _QDQ_OPS or not any(is_act(i) for i in n.input if i):
            out.append(n)
            continue
        w = inits.get(n.input[1]) if len(n.input) > 1 else None
        ins = list(n.input)
        for k, i in enumerate(ins):
            if i and is_act(i):
                ins[k] = act(i)[0]
        if op in ("Conv", "MatMul", "Gemm") and w is not None and w.data_type == TensorProto.FLOAT and \
                (op == "Conv" or len(w.dims) == 2):
            wf = numpy_helper.to_array(w).astype(np.float32)
            axis = 0 if op == "Conv" and per_channel else None
            wq, ws, wz = quantize_weight(wf, "int8", axis)
            wd = fresh(n.input[1] + "_DequantizeLinear_Output")
            out.append(helper.make_node("DequantizeLinear", [init(n.input[1] + "_quantized", wq), init(n.input[1] + "_scale", ws),
                                                             init(n.input[1] + "_zero_point", wz)], [wd],
                                        name=fresh(n.input[1] + "_DequantizeLinear"), **({"axis": 0} if axis == 0 else {})))
            ins[1] = wd
            if op == "Conv" and len(n.input) > 2 and n.input[2] in inits:
                xs = act(n.input[0])[1]
                bs = (np.float32(xs) * np.asarray(ws, np.float32)).astype(np.float32)
                b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
                bq = np.round(b / bs.astype(np.float64)).astype(np.int32)
                bd = fresh(n.input[2] + "_DequantizeLinear_Output")
                out.append(helper.make_node("DequantizeLinear", [init(n.input[2] + "_quantized", bq),
                                                                 init(n.input[2] + "_scale", np.asarray(bs, np.float32).reshape(-1)),
                                                                 init(n.input[2] + "_zero_point", np.zeros(bq.shape, np.int32))],
                                            [bd], name=fresh(n.input[2] + "_DequantizeLinear"), axis=0))
                ins[2] = bd
        del n.input[:]
        n.input.extend(ins)
        out.append(n)
        counts[op] = counts.get(op, 0) + 1
    _replace_nodes(g, out, new_inits)
    return model, counts

