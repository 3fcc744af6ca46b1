"""Layers shared by the model generators: convolutions with folded batch norm, LayerNormalization, linear
projections, GELU/SiLU/HardSwish written the ways exporters write them, multi-head attention.

Each takes the Builder first and returns the output value's name. Weights come from the builder's seeded
generator, scaled so that activations keep a unit-ish range through a deep stack (He-normal for convs followed
by ReLU-like activations, 1/sqrt(fan_in) for projections), so outputs of the random models are well conditioned.
"""
import numpy as np


def he_std(fan_in, gain=2.0):
    return float(np.sqrt(gain / fan_in))


def significant(v, digits):
    v = np.asarray(v, np.float64)
    e = np.floor(np.log10(np.maximum(np.abs(v), 1e-30)))
    return np.round(v / 10 ** e, digits - 1) * 10 ** e


def conv(b, x, cin, cout, k, base, stride=1, pad=None, dil=1, group=1, bias=True, gain=2.0, dims=2, dtype=np.float32,
         bias_std=0.05, norm=1.0):
    """Conv with a (folded batch-norm) bias: weights [cout, cin/group, k...], He-normal with the given gain.

    When the builder calibrates and knows x's value, the batch norm is folded from the statistics the conv sees
    instead: each output channel gets mean beta ~ N(0, bias_std) and standard deviation norm * gamma, gamma ~
    1 + N(0, 0.1) (a conv without bias gets the spread only); with b.calibrate_center false, only the scale is
    set (root mean square norm * gamma) and the bias stays beta."""
    ks = [k] * dims if isinstance(k, int) else list(k)
    st = [stride] * dims if isinstance(stride, int) else list(stride)
    dl = [dil] * dims if isinstance(dil, int) else list(dil)
    if pad is None:
        pad = [d * (kk - 1) // 2 for d, kk in zip(dl, ks)]
    elif isinstance(pad, int):
        pad = [pad] * dims
    fan_in = cin // group * int(np.prod(ks))
    w = b.normal([cout, cin // group] + ks, he_std(fan_in, gain))
    beta = b.rng.standard_normal(cout) * bias_std
    y = None
    if b.values is not None and b.values.get(x) is not None:
        import eager  # noqa: PLC0415
        y = eager.conv(b.values[x], w, None, strides=st, pads=list(pad) + list(pad), dilations=dl, group=group)
        sh = [1, -1] + [1] * (y.ndim - 2)
        if y.size // y.shape[1] >= 16:  # not on a squeeze-excitation's [N, C, 1, 1]: too few samples
            red = (0,) + tuple(range(2, y.ndim))
            if b.calibrate_center:
                mean, std = y.mean(axis=red), y.std(axis=red) + 1e-6
            else:  # scale only: robust where the statistics depend on the image size (dilations on small maps)
                mean, std = np.zeros(cout), np.sqrt((y * y).mean(axis=red)) + 1e-6
            # a factor far from the He scale means statistics from too few real samples (a dilated conv on a map
            # smaller than its reach sees mostly padding): clamp it so other image sizes stay in range
            g = norm * (1.0 + 0.1 * b.rng.standard_normal(cout)) * np.clip(1.0 / std, *b.calibrate_clamp)
            # 4 significant digits: the same model on every machine (BLAS sums differ in the last bits)
            g, mean = significant(g, 4), significant(mean, 4)
            w = w * g.reshape([-1] + [1] * (w.ndim - 1))
            y = y * g.reshape(sh)
            if bias:
                beta = beta - mean * g
        if bias:
            y = y + beta.reshape(sh).astype(np.float32)
    ins = [x, b.const(base + ".weight", w.astype(dtype))]
    if bias:
        ins.append(b.const(base + ".bias", beta.astype(dtype)))
    values, b.values = b.values, None  # the output's value is y: no second evaluation
    out = b.node("Conv", ins, base=base, kernel_shape=ks, strides=st, pads=list(pad) + list(pad), dilations=dl,
                 group=group)
    b.values = values
    if y is not None:
        values[out] = y
    return out


def batchnorm(b, x, c, base, dtype=np.float32):
    """An explicit BatchNormalization (inference form) with statistics near (0, 1) and gamma near 1."""
    g = (1.0 + 0.1 * b.rng.standard_normal(c)).astype(dtype)
    be = (0.05 * b.rng.standard_normal(c)).astype(dtype)
    m = (0.05 * b.rng.standard_normal(c)).astype(dtype)
    v = (1.0 + 0.2 * b.rng.random(c)).astype(dtype)
    return b.node("BatchNormalization", [x, b.const(base + ".weight", g), b.const(base + ".bias", be),
                                         b.const(base + ".running_mean", m), b.const(base + ".running_var", v)],
                  base=base, epsilon=1e-5)


def relu(b, x, base=None):
    return b.node("Relu", [x], base=base or "relu")


def silu(b, x, base="silu"):
    """SiLU as x * Sigmoid(x), the way PyTorch exports it below opset 21."""
    return b.node("Mul", [x, b.node("Sigmoid", [x], base=base + ".sig")], base=base)


def hardswish_opset11(b, x, base="hswish"):
    """HardSwish below opset 14: x * HardSigmoid(x; alpha 1/6, beta 0.5)."""
    return b.node("Mul", [x, b.node("HardSigmoid", [x], base=base + ".hsig", alpha=1.0 / 6, beta=0.5)], base=base)


def gelu_erf(b, x, base="gelu"):
    """GELU as exporters write it: 0.5 * x * (1 + Erf(x / sqrt(2)))."""
    e = b.node("Erf", [b.node("Div", [x, b.f32("sqrt2", np.sqrt(2.0))], base=base + ".div")], base=base + ".erf")
    one = b.node("Add", [e, b.f32("one_f", 1.0)], base=base + ".add")
    return b.node("Mul", [b.node("Mul", [x, one], base=base + ".mul"), b.f32("half", 0.5)], base=base)


def layernorm(b, x, d, base, axis=-1):
    g = (1.0 + 0.1 * b.rng.standard_normal(d)).astype(np.float32)
    be = (0.05 * b.rng.standard_normal(d)).astype(np.float32)
    return b.node("LayerNormalization", [x, b.const(base + ".weight", g), b.const(base + ".bias", be)], base=base,
                  axis=axis, epsilon=1e-5)


def linear(b, x, k, n, base, bias=True, std=None, scale=1.0):
    """MatMul by a [k, n] weight (+ Add bias), std 1/sqrt(k) times scale unless std is given."""
    std = std if std is not None else scale / np.sqrt(k)
    y = b.node("MatMul", [x, b.const(base + ".weight", b.normal((k, n), std))], base=base + ".matmul")
    if not bias:
        return y
    return b.node("Add", [y, b.const(base + ".bias", b.normal((n,), 0.02))], base=base)


def split_heads(b, x, heads, hd, base):
    """[B, S, heads*hd] -> [B, heads, S, hd]."""
    r = b.node("Reshape", [x, b.i64("shape_heads", [0, -1, heads, hd])], base=base + ".reshape")
    return b.node("Transpose", [r], base=base, perm=[0, 2, 1, 3])


def merge_heads(b, x, d, base):
    """[B, heads, S, hd] -> [B, S, heads*hd]."""
    t = b.node("Transpose", [x], base=base + ".t", perm=[0, 2, 1, 3])
    return b.node("Reshape", [t, b.i64("shape_merge", [0, -1, d])], base=base)


def attention(b, q, k, v, hd, base, bias=None, scale_q=True):
    """Softmax(q k^T / sqrt(hd) + bias) v on [B, H, S, hd] tensors (bias broadcast to [B, H, S, T])."""
    kt = b.node("Transpose", [k], base=base + ".kt", perm=[0, 1, 3, 2])
    s = b.node("MatMul", [q, kt], base=base + ".qk")
    if scale_q:
        s = b.node("Mul", [s, b.f32("attn_scale_%d" % hd, 1.0 / np.sqrt(hd))], base=base + ".scaled")
    if bias is not None:
        s = b.node("Add", [s, bias], base=base + ".biased")
    p = b.node("Softmax", [s], base=base + ".probs", axis=-1)
    return b.node("MatMul", [p, v], base=base + ".pv")
