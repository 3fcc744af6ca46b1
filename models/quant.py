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
import numpy as np
from onnx import TensorProto, helper, numpy_helper


def quantize_weight(w, wtype, axis=None):
    """w float -> (q, scale, zero_point); axis: None per tensor, else the axis that keeps its own scale."""
    if axis is None:
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    else:
        red = tuple(i for i in range(w.ndim) if i != axis)
        lo, hi = np.minimum(w.min(axis=red), 0.0), np.maximum(w.max(axis=red), 0.0)
    if wtype == "int8":
        scale = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 1e-8) / 127.0
        zp = np.zeros_like(scale, dtype=np.int8)
        sc = scale if axis is None else np.expand_dims(scale, red)
        q = np.clip(np.round(w / sc), -127, 127).astype(np.int8)
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
