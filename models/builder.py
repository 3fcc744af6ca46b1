"""A small graph builder shared by the model generators in this folder (numpy + onnx, Debian's python3-onnx).

Names are made unique per graph; initializers come from a seeded numpy generator, so a generator run twice
writes the same model.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"


class Builder:
    def __init__(self, seed):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], {}
        self.domains = set()
        self.constant_nodes = False  # True: const() writes Constant nodes instead of initializers
        self.values = None  # name -> numpy value while calibrating (see calibrate())
        self.eager_errors = []

    def calibrate(self, feeds, center=True, clamp=(0.25, 4.0)):
        """Evaluate the graph in numpy as it is built (eager.py), starting from feeds {input name: array}, so that
        layers can scale their weights to the activations they see (layers.conv); center: also remove the mean;
        clamp: the range of the factor applied to He-initialised weights."""
        self.values = dict(feeds)
        self.calibrate_center, self.calibrate_clamp = center, clamp

    def sub(self):
        """A builder for a subgraph (an If/Loop body): its own node list; names, the seeded generator, the opset
        domains and the initializers are shared with this builder, so the subgraph's weights are initializers of
        the main graph read from the outer scope (as exporters write them), and no name repeats in the model."""
        s = Builder.__new__(Builder)
        s.seed, s.rng, s.inits, s.count, s.domains = self.seed, self.rng, self.inits, self.count, self.domains
        s.nodes, s.constant_nodes = [], self.constant_nodes
        s.values, s.eager_errors = self.values, self.eager_errors
        s.calibrate_center = getattr(self, "calibrate_center", True)
        s.calibrate_clamp = getattr(self, "calibrate_clamp", (0.25, 4.0))
        return s

    def graph(self, name, outputs, inputs=()):
        """This builder's nodes as a subgraph (no initializers of its own); outputs are value infos."""
        return helper.make_graph(self.nodes, name, list(inputs), outputs)

    def name(self, base):
        k = self.count.get(base, 0)
        self.count[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def const(self, base, array):
        """An initializer (0-d arrays stay 0-d), or a Constant node when constant_nodes is set."""
        n = self.name(base)
        if self.values is not None:
            self.values[n] = np.asarray(array)
        if self.constant_nodes:
            t = numpy_helper.from_array(np.asarray(array, order="C"), n)
            self.nodes.append(helper.make_node("Constant", [], [n], name=n, value=t))
            return n
        self.inits.append(numpy_helper.from_array(np.asarray(array, order="C"), n))
        return n

    def i64(self, base, values):
        return self.const(base, np.asarray(values, dtype=np.int64))

    def f32(self, base, value):
        return self.const(base, np.asarray(value, dtype=np.float32))

    def node(self, op, inputs, base=None, n_out=1, domain="", outputs=None, **attrs):
        base = self.name(base or op.lower())
        if outputs is None:
            outputs = [base] if n_out == 1 else [f"{base}_out{i}" for i in range(n_out)]
        if domain:
            self.domains.add(domain)
        self.nodes.append(helper.make_node(op, inputs, outputs, name=base, domain=domain or None, **attrs))
        if self.values is not None:
            self._evaluate(op, inputs, outputs, attrs)
        return outputs[0] if len(outputs) == 1 else outputs

    def _evaluate(self, op, inputs, outputs, attrs):
        import eager  # noqa: PLC0415  (eager imports this module)
        vals = [self.values.get(i) if i else None for i in inputs]
        if any(i and v is None for i, v in zip(inputs, vals)):
            return
        try:
            res = eager.evaluate(op, vals, attrs, len(outputs))
        except Exception as e:  # noqa: BLE001  (calibration is best effort: the node's outputs stay unknown)
            self.eager_errors.append(f"{op} {outputs[0]}: {e}")
            return
        for o, r in zip(outputs, res or []):
            self.values[o] = r

    def normal(self, shape, std):
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def model(self, name, inputs, outputs, opset, ir_version=8, producer="safeinfer-models"):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in sorted(self.domains)]
        m = helper.make_model(graph, opset_imports=ops, producer_name=producer)
        m.ir_version = ir_version
        return m


def tensor(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def save(model, path, check=True):
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, path)


F32, F16, I64, I32, U8, I8, BOOL = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32,
                                    TensorProto.UINT8, TensorProto.INT8, TensorProto.BOOL)
