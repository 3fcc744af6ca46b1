"""Numpy evaluation of the ops the generators use, for two things:

* calibrating the conv weights while the graph is built (Builder.calibrate): each conv sees its real input on a
  calibration image and its weights are scaled so that its output channels have zero mean and the wanted spread,
  as a batch norm folded into a trained conv leaves them. Without it, random weights make deep SiLU / HardSwish
  nets (whose gain depends on the activation's scale) either fade to zero or blow up within twenty layers. Ops
  not listed here, or that fail on the calibration shapes, leave their outputs unknown and the convs after them
  uncalibrated (float16 graphs are calibrated in float32);
* an independent reference for the quantized models (run_model: DynamicQuantizeLinear, ConvInteger and
  MatMulInteger written from the ONNX spec, the integer sums exact), which make_all.py --check compares with
  ONNX Runtime.
"""
import itertools

import numpy as np
from onnx import helper

from builder import F16, F32


def conv(x, w, b=None, strides=None, pads=None, dilations=None, group=1, _dtype=np.float32, **_):
    x, w = x.astype(_dtype), w.astype(_dtype)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    ks = w.shape[2:]
    d = len(ks)
    st = strides or [1] * d
    dl = dilations or [1] * d
    pd = pads or [0] * (2 * d)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pd[i], pd[i + d]) for i in range(d)])
    osz = [(xp.shape[2 + i] - dl[i] * (ks[i] - 1) - 1) // st[i] + 1 for i in range(d)]
    xg = xp.reshape((n, group, c // group) + xp.shape[2:])
    wg = w.reshape((group, m // group, cg) + tuple(ks))
    y = np.zeros((n, group, m // group) + tuple(osz), _dtype)
    for off in itertools.product(*[range(k) for k in ks]):
        sl = tuple(slice(o * dl[i], o * dl[i] + st[i] * (osz[i] - 1) + 1, st[i]) for i, o in enumerate(off))
        xs = xg[(Ellipsis,) + sl]
        if group == 1:  # a BLAS matmul per kernel offset: [m, c] x [n, c, spatial]
            y[:, 0] += np.moveaxis(np.tensordot(wg[(0, Ellipsis) + off], xs[:, 0], axes=([1], [1])), 0, 1)
        else:
            y += np.einsum("ngc...,gmc->ngm...", xs, wg[(Ellipsis,) + off], optimize=True)
    y = y.reshape((n, m) + tuple(osz))
    if b is not None:
        y += b.astype(_dtype).reshape((1, m) + (1,) * d)
    return y


def conv_transpose(x, w, b=None, strides=None, **_):
    x, w = x.astype(np.float32), w.astype(np.float32)
    n, c, h, wd = x.shape
    m, (kh, kw) = w.shape[1], w.shape[2:]
    sh, sw = strides or [1, 1]
    y = np.zeros((n, m, (h - 1) * sh + kh, (wd - 1) * sw + kw), np.float32)
    for i in range(kh):
        for j in range(kw):
            y[:, :, i:i + sh * (h - 1) + 1:sh, j:j + sw * (wd - 1) + 1:sw] += \
                np.einsum("nchw,cm->nmhw", x, w[:, :, i, j])
    if b is not None:
        y += b.astype(np.float32).reshape(1, m, 1, 1)
    return y


def pool(x, kernel_shape, strides=None, pads=None, ceil_mode=0, kind="max", **_):
    d = len(kernel_shape)
    st = strides or [1] * d
    pd = list(pads or [0] * (2 * d))
    size = []
    for i in range(d):
        span = x.shape[2 + i] + pd[i] + pd[i + d] - kernel_shape[i]
        o = (-(-span // st[i]) if ceil_mode else span // st[i]) + 1
        pd[i + d] += max(0, (o - 1) * st[i] + kernel_shape[i] - (x.shape[2 + i] + pd[i] + pd[i + d]))
        size.append(o)
    fill = -np.inf if kind == "max" else np.nan
    xp = np.pad(x.astype(np.float32), [(0, 0), (0, 0)] + [(pd[i], pd[i + d]) for i in range(d)], constant_values=fill)
    parts = [xp[(Ellipsis,) + tuple(slice(o, o + st[i] * (size[i] - 1) + 1, st[i]) for i, o in enumerate(off))]
             for off in itertools.product(*[range(k) for k in kernel_shape])]
    return np.max(parts, 0) if kind == "max" else np.nanmean(parts, 0)


def resize(x, roi=None, scales=None, sizes=None, mode="nearest", coordinate_transformation_mode="half_pixel", **_):
    x = x.astype(np.float32)
    if sizes is not None and sizes.size:
        out = [int(s) for s in sizes]
    else:
        out = [int(np.floor(n * s)) for n, s in zip(x.shape, scales)]
    for ax in range(x.ndim):
        n, o = x.shape[ax], out[ax]
        if n == o:
            continue
        s = o / n
        dst = np.arange(o, dtype=np.float64)
        if coordinate_transformation_mode == "asymmetric":
            src = dst / s
        elif coordinate_transformation_mode == "pytorch_half_pixel":
            src = (dst + 0.5) / s - 0.5 if o > 1 else np.zeros_like(dst)
        else:
            src = (dst + 0.5) / s - 0.5
        if mode == "nearest":
            x = np.take(x, np.clip(np.floor(src).astype(np.int64), 0, n - 1), axis=ax)
        else:
            src = np.clip(src, 0, n - 1)
            i0 = np.floor(src).astype(np.int64)
            i1 = np.minimum(i0 + 1, n - 1)
            f = (src - i0).astype(np.float32).reshape([-1 if a == ax else 1 for a in range(x.ndim)])
            x = np.take(x, i0, axis=ax) * (1 - f) + np.take(x, i1, axis=ax) * f
    return x


def _slice(x, starts, ends, axes=None, steps=None):
    sl = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for s, e, a, st in zip(starts, ends, axes, steps):
        sl[int(a)] = slice(int(s), int(min(e, 2 ** 62)), int(st))
    return x[tuple(sl)]


def _split(x, split=None, axis=0, n=None):
    if split is None:
        split = [x.shape[axis] // n] * n
    return np.split(x, np.cumsum(split)[:-1], axis=axis)


def _batchnorm(x, s, b, m, v, epsilon=1e-5, **_):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - m.reshape(sh)) / np.sqrt(v.reshape(sh) + epsilon) * s.reshape(sh) + b.reshape(sh)).astype(np.float32)


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


def _hsig(x, alpha=0.2, beta=0.5):
    return np.clip(alpha * x + beta, 0, 1).astype(np.float32)


DT = {F32: np.float32, F16: np.float16, 7: np.int64, 6: np.int32, 9: np.bool_}

OPS = {
    "Conv": lambda i, a: [conv(*i, **a)],
    "ConvTranspose": lambda i, a: [conv_transpose(*i, **a)],
    "MaxPool": lambda i, a: [pool(i[0], kind="max", **a)],
    "AveragePool": lambda i, a: [pool(i[0], kind="avg", **a)],
    "GlobalAveragePool": lambda i, a: [i[0].mean(axis=tuple(range(2, i[0].ndim)), keepdims=True)],
    "Resize": lambda i, a: [resize(*(list(i) + [None] * (4 - len(i))), **a)],
    "BatchNormalization": lambda i, a: [_batchnorm(*i, **a)],
    "Relu": lambda i, a: [np.maximum(i[0], 0)],
    "Sigmoid": lambda i, a: [_sigmoid(i[0])],
    "HardSigmoid": lambda i, a: [_hsig(i[0], **a)],
    "HardSwish": lambda i, a: [i[0] * _hsig(i[0], 1 / 6, 0.5)],
    "Add": lambda i, a: [i[0] + i[1]], "Sub": lambda i, a: [i[0] - i[1]],
    "Mul": lambda i, a: [i[0] * i[1]], "Div": lambda i, a: [i[0] / i[1]],
    "Concat": lambda i, a: [np.concatenate(i, axis=a["axis"])],
    "Identity": lambda i, a: [i[0]],
    "Cast": lambda i, a: [i[0].astype(DT[a["to"]])],
    "Shape": lambda i, a: [np.array(i[0].shape[a.get("start", 0):a.get("end", None)], np.int64)],
    "Slice": lambda i, a: [_slice(*i)],
    "Reshape": lambda i, a: [i[0].reshape([d if d != 0 else i[0].shape[k] for k, d in enumerate(i[1])])],
    "Transpose": lambda i, a: [np.transpose(i[0], a.get("perm"))],
    "Squeeze": lambda i, a: [np.squeeze(i[0], axis=tuple(int(v) for v in i[1]))],
    "Unsqueeze": lambda i, a: [np.expand_dims(i[0], axis=tuple(int(v) for v in i[1]))],
    "Clip": lambda i, a: [_clip(*i, **a)],
    "Flatten": lambda i, a: [i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1)],
    "Gemm": lambda i, a: [_gemm(*i, **a)],
}


def _clip(x, lo=None, hi=None, min=None, max=None, **_):  # noqa: A002 (opset 6 attributes)
    lo = min if lo is None else lo
    hi = max if hi is None else hi
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi).astype(x.dtype)


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0, **_):
    y = alpha * (a.T if transA else a).astype(np.float64) @ (b.T if transB else b).astype(np.float64)
    return (y + (beta * c if c is not None else 0)).astype(np.float32)


def _erf(x):
    """Abramowitz and Stegun 7.1.26: |error| < 1.5e-7."""
    x = x.astype(np.float64)
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t \
        * np.exp(-x * x)
    return np.sign(x) * y


def _layernorm(x, g, b=None, axis=-1, epsilon=1e-5, **_):
    axes = tuple(range(axis % x.ndim, x.ndim))
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    y = (x - m) / np.sqrt(v + epsilon) * g
    return (y + b if b is not None else y).astype(np.float32)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def dynamic_quantize_linear(x):
    """ONNX DynamicQuantizeLinear in float32 arithmetic: uint8, scale over a range holding 0, round half to even."""
    x = x.astype(np.float32)
    lo, hi = np.float32(min(0.0, float(x.min()))), np.float32(max(0.0, float(x.max())))
    s = np.float32((hi - lo) / np.float32(255.0))
    z = np.uint8(np.clip(np.round(-lo / s), 0, 255)) if s > 0 else np.uint8(0)
    q = np.clip(np.round(x / s) + z, 0, 255).astype(np.uint8) if s > 0 else np.zeros(x.shape, np.uint8)
    return [q, np.array(s, np.float32), np.array(z, np.uint8)]


def _conv_integer(x, w, xz=None, wz=None, **a):
    xi = x.astype(np.int64) - (0 if xz is None else np.int64(xz))
    wi = w.astype(np.int64) - (0 if wz is None else np.asarray(wz, np.int64).reshape([-1] + [1] * (w.ndim - 1)))
    # float64 sums of integer products are exact below 2^53
    return np.rint(conv(xi.astype(np.float64), wi.astype(np.float64), None, _dtype=np.float64, **a)).astype(np.int32)


def _matmul_integer(a, b, az=None, bz=None):
    ai = a.astype(np.int64) - (0 if az is None else np.asarray(az, np.int64))
    bi = b.astype(np.int64) - (0 if bz is None else np.asarray(bz, np.int64))
    return np.matmul(ai, bi).astype(np.int32)


OPS.update({
    "MatMul": lambda i, a: [np.matmul(i[0], i[1]).astype(np.float32)],
    "Softmax": lambda i, a: [_softmax(i[0], a.get("axis", -1))],
    "Erf": lambda i, a: [_erf(i[0]).astype(np.float32)],
    "Tanh": lambda i, a: [np.tanh(i[0])],
    "LayerNormalization": lambda i, a: [_layernorm(*i, **a)],
    "Gather": lambda i, a: [np.take(i[0], i[1], axis=a.get("axis", 0))],
    "DynamicQuantizeLinear": lambda i, a: dynamic_quantize_linear(i[0]),
    "ConvInteger": lambda i, a: [_conv_integer(*i, **a)],
    "MatMulInteger": lambda i, a: [_matmul_integer(*i)],
})


# the ops of models/zoo2.py's super-resolution, style-transfer and ConvNeXt nets
def _pad(x, pads, value=None, axes=None, mode="constant", **_):
    n = x.ndim
    pw = [(int(pads[i]), int(pads[i + n])) for i in range(n)]
    return np.pad(x, pw, mode={"reflect": "reflect", "edge": "edge"}.get(mode, "constant"))


def _instnorm(x, s, b, epsilon=1e-5, **_):
    red = tuple(range(2, x.ndim))
    m = x.mean(axis=red, keepdims=True)
    v = ((x - m) ** 2).mean(axis=red, keepdims=True)
    sh = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - m) / np.sqrt(v + epsilon) * s.reshape(sh) + b.reshape(sh)).astype(np.float32)


def _d2s(x, blocksize, mode="DCR", **_):
    n, c, h, w = x.shape
    r = blocksize
    if mode == "CRD":
        y = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, r, r, c // (r * r), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (r * r), h * r, w * r)


OPS.update({
    "LeakyRelu": lambda i, a: [np.where(i[0] >= 0, i[0], a.get("alpha", 0.01) * i[0]).astype(np.float32)],
    "Pad": lambda i, a: [_pad(*i, **a)],
    "InstanceNormalization": lambda i, a: [_instnorm(*i, **a)],
    "DepthToSpace": lambda i, a: [_d2s(i[0], **a)],
    "ReduceMean": lambda i, a: [i[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))],
    "Pow": lambda i, a: [np.power(i[0], i[1]).astype(i[0].dtype)],
    "Sqrt": lambda i, a: [np.sqrt(i[0])],
})


def run_model(model, feeds):
    """Evaluates an ONNX model (main graph only) in numpy: {output name: array}; raises on an op it lacks."""
    from onnx import numpy_helper
    vals = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    vals.update(feeds)
    for n in model.graph.node:
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs_of(n).items()}
        if n.op_type == "Constant":
            vals[n.output[0]] = numpy_helper.to_array(a["value"])
            continue
        out = evaluate(n.op_type, [vals[i] if i else None for i in n.input], a, len(n.output))
        if out is None:
            raise NotImplementedError(f"eager.py has no {n.op_type}")
        for o, v in zip(n.output, out):
            vals[o] = v
    return {o.name: vals[o.name] for o in model.graph.output}


def evaluate(op, values, attrs, n_out):
    """Outputs of op on values (numpy arrays, None for an omitted optional input), or None if unknown."""
    if op == "Split":
        return _split(values[0], None if len(values) < 2 else [int(v) for v in values[1]], attrs.get("axis", 0), n_out)
    f = OPS.get(op)
    if f is None:
        return None
    if op == "Resize":
        values = [v if v is not None else np.zeros(0, np.float32) for v in values]
    return f(values, attrs)


def attrs_of(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}
