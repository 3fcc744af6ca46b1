/*
 * ocl_llm.c — the OCL planners of the LLM ops that are cheap on a GPU (ONNX Runtime contrib ops):
 * SimplifiedLayerNormalization, SkipLayerNormalization and SkipSimplifiedLayerNormalization (one reduction
 * kernel, optional outputs included), MatMulNBits (a GEMV kernel that decodes the quantized weight on the fly
 * for a few rows of A, else a dequantization into the scratch buffer and a tiled GEMM) and FastGelu, BiasGelu,
 * QuickGelu (one element-wise kernel), QuantizeLinear and DequantizeLinear (int8/uint8, per tensor or per axis). The
 * semantics are those of the reference kernels (src/ops/llm_norm.c, src/ops/quant.c,
 * src/ops/nbits.c); attention, rotary embeddings and the rest stay on other devices.
 */
#include "device/ocl/ocl_ops.h"

#include <limits.h>

// --- the normalisations -------------------------------------------------------------------------------------

enum { NF_SKIP = 1, NF_BIAS = 2, NF_BETA = 4, NF_SIMPLE = 8, NF_MEAN = 16, NF_INV = 32, NF_SUM = 64 };

static si_result emit_norm(ocl_plan *p, int64_t rows, int64_t cols, int flags, int64_t skip_rows, int64_t glen,
                           const int vids[9], float eps) {
    if (rows == 0 || cols == 0) return SI_OK;
    int64_t mv[4] = {cols, flags, skip_rows, glen};
    int mid;
    si_result s = ocl_meta64(p, mv, 4, &mid);
    if (s) return s;
    ocl_step st;
    st_init(&st, "ms_norm");
    for (int k = 0; k < 9; k++) a_val(&st, vids[k] >= 0 ? vids[k] : vids[0]);
    a_meta(&st, mid);
    a_flt(&st, eps);
    return ocl_emit_rows(p, &st, rows);
}

/* SimplifiedLayerNormalization: X, scale broadcast over the normalized axes; outputs Y and inv_std_var. */
static si_result plan_sln(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0], *g = &p->in[1];
    if (x->ndim < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "X must have rank >= 1");
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", -1), x->ndim, &axis))) return s;
    int r = x->ndim - axis;
    if (g->ndim > r) return ocl_err(p, SI_ERR_INVALID_ARG, "scale has rank %d, more than the %d normalised axes", g->ndim, r);
    for (int i = 0; i < g->ndim; i++) {
        int64_t d = g->dims[g->ndim - 1 - i], xd = x->dims[x->ndim - 1 - i];
        if (d != 1 && d != xd)
            return ocl_err(p, SI_ERR_INVALID_ARG, "scale dimension %d is %lld, X has %lld there", g->ndim - 1 - i, (long long)d, (long long)xd);
    }
    /* the kernel indexes the scale modulo its length: a suffix of the normalized shape after leading 1s */
    int lead = 0;
    while (lead < g->ndim && g->dims[lead] == 1) lead++;
    for (int i = lead; i < g->ndim; i++)
        if (g->dims[i] != x->dims[x->ndim - g->ndim + i])
            return ocl_err(p, SI_ERR_UNSUPPORTED, "a scale broadcast inside the normalized shape is not supported");
    int64_t rows = si_shape_count(axis, x->dims), cols = si_shape_count(r, x->dims + axis);
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    int64_t sd[SI_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) sd[k] = k < axis ? x->dims[k] : 1;
    if (has_out(p, 1) && (s = ocl_set_out(p, 1, x->ndim, sd))) return s;
    if (!has_out(p, 0)) {
        if (has_out(p, 1)) return ocl_err(p, SI_ERR_UNSUPPORTED, "inv_std_var without Y is not supported");
        return SI_OK;
    }
    int flags = NF_SIMPLE | (has_out(p, 1) ? NF_INV : 0);
    int vids[9] = {x->vid, -1, -1, g->vid, -1, p->out[0].vid, -1, has_out(p, 1) ? p->out[1].vid : -1, -1};
    return emit_norm(p, rows, cols, flags, 1, dcount(g), vids, si_attr_float(p->node, "epsilon", 1e-5f));
}

/* SkipLayerNormalization (input, skip, gamma, beta, bias) and SkipSimplifiedLayerNormalization (input, skip,
 * gamma, bias); outputs Y, mean, inv_std_var, input_skip_bias_sum. The skip has the input's trailing shape. */
static si_result plan_skipnorm(ocl_plan *p, const void *arg) {
    (void)arg;
    bool simple = si_node_is(p->node, SI_OP_SKIP_SIMPLIFIED_LAYER_NORMALIZATION);
    si_result s;
    for (int k = 0; k < 3; k++)
        if ((s = ocl_need_f32(p, k))) return s;
    if ((s = ocl_max_inputs(p, simple ? 4 : 5)) || (s = ocl_max_outputs(p, 4))) return s;
    const ocl_desc *x = &p->in[0], *sk = &p->in[1], *g = &p->in[2];
    if (x->ndim < 2 || x->ndim > 3)
        return ocl_err(p, SI_ERR_INVALID_ARG, "input must be 3-D [batch, sequence, hidden] or 2-D, got rank %d", x->ndim);
    int64_t H = x->dims[x->ndim - 1], rows = si_shape_count(x->ndim - 1, x->dims);
    int lead = 0;
    while (lead < sk->ndim - 1 && sk->dims[lead] == 1) lead++;
    bool ok = sk->ndim >= 1 && sk->ndim - lead <= x->ndim;
    for (int i = 0; ok && i < sk->ndim - lead; i++) ok = sk->dims[sk->ndim - 1 - i] == x->dims[x->ndim - 1 - i];
    if (!ok) return ocl_err(p, SI_ERR_INVALID_ARG, "skip does not match the input (same shape, or [1, S, H] / [S, H])");
    int64_t skip_rows = H > 0 ? dcount(sk) / H : 1;
    if (skip_rows < 1) skip_rows = 1;
    if (g->ndim != 1 || dcount(g) != H) return ocl_err(p, SI_ERR_INVALID_ARG, "gamma must be 1-D with %lld values", (long long)H);
    int beta = simple ? -1 : 3, bias = simple ? 3 : 4, flags = NF_SKIP | (simple ? NF_SIMPLE : 0);
    const int opt[2] = {beta, bias};
    static const char *const names[2] = {"beta", "bias"};
    int vids[9] = {x->vid, sk->vid, -1, g->vid, -1, -1, -1, -1, -1};
    for (int k = 0; k < 2; k++) {
        if (opt[k] < 0 || !has_in(p, opt[k])) continue;
        if ((s = ocl_need_f32(p, opt[k]))) return s;
        const ocl_desc *t = &p->in[opt[k]];
        if (t->ndim != 1 || dcount(t) != H)
            return ocl_err(p, SI_ERR_INVALID_ARG, "%s must be 1-D with %lld values", names[k], (long long)H);
        flags |= k == 0 ? NF_BETA : NF_BIAS;
        vids[k == 0 ? 4 : 2] = t->vid;
    }
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    int64_t sd[SI_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) sd[k] = k < x->ndim - 1 ? x->dims[k] : 1;
    for (int k = 1; k < 3; k++)
        if (has_out(p, k) && (s = ocl_set_out(p, k, x->ndim, sd))) return s;
    if (has_out(p, 3) && (s = ocl_set_out(p, 3, x->ndim, x->dims))) return s;
    /* Y is written always (the kernel needs a buffer); the other outputs when requested */
    if (!has_out(p, 0)) return ocl_err(p, SI_ERR_UNSUPPORTED, "the optional outputs without output 0 are not supported");
    vids[5] = p->out[0].vid;
    static const int oflag[4] = {0, NF_MEAN, NF_INV, NF_SUM};
    for (int k = 1; k < 4; k++)
        if (has_out(p, k)) {
            flags |= oflag[k];
            vids[5 + k] = p->out[k].vid;
        }
    return emit_norm(p, rows, H, flags, skip_rows, H, vids, si_attr_float(p->node, "epsilon", 1e-12f));
}

// --- MatMulNBits --------------------------------------------------------------------------------------------

/* Rows of A up to which the GEMV kernel (decoding B once per row of A) is used rather than dequantization + GEMM. */
#define NBITS_GEMV_MAX_M 4

static si_result plan_nbits(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    if ((s = ocl_max_inputs(p, 6))) return s;
    const ocl_desc *a = &p->in[0], *b = &p->in[1], *sc = &p->in[2];
    if (b->dtype != SI_U8) return ocl_err(p, SI_ERR_INVALID_ARG, "B must be uint8, got %s", si_dtype_name(b->dtype));
    const si_attr *ak = si_node_attr(p->node, "K"), *an = si_node_attr(p->node, "N"), *abs_ = si_node_attr(p->node, "block_size");
    if (!ak || !an || !abs_) return ocl_err(p, SI_ERR_INVALID_ARG, "attributes K, N and block_size are required");
    int64_t K = ak->i, N = an->i, block = abs_->i, bits = si_attr_int(p->node, "bits", 4);
    if (bits != 2 && bits != 4 && bits != 8)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "bits = %lld is not supported (2, 4 or 8)", (long long)bits);
    if (K < 1 || N < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "K (%lld) and N (%lld) must be positive", (long long)K, (long long)N);
    if (block < 16 || block > (1 << 20) || (block & (block - 1)))
        return ocl_err(p, SI_ERR_INVALID_ARG, "block_size %lld must be a power of two >= 16", (long long)block);
    int64_t acc = si_attr_int(p->node, "accuracy_level", 0);
    if (acc < 0 || acc > 4) return ocl_err(p, SI_ERR_INVALID_ARG, "accuracy_level %lld is not in 0..4", (long long)acc);
    if (si_attr_int(p->node, "weight_prepacked", 0) != 0)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "weight_prepacked (GPU layouts) is not supported");
    if (a->ndim < 1 || a->dims[a->ndim - 1] != K)
        return ocl_err(p, SI_ERR_INVALID_ARG, "A's last dimension must be K = %lld, got %lld", (long long)K,
                       a->ndim ? (long long)a->dims[a->ndim - 1] : 0LL);
    int64_t M = si_shape_count(a->ndim - 1, a->dims), nb = (K + block - 1) / block, blob = block * bits / 8;
    int64_t zrow = (nb * bits + 7) / 8;
    if (dcount(b) != N * nb * blob)
        return ocl_err(p, SI_ERR_INVALID_ARG, "B has %lld bytes, expected N x n_blocks x blob = %lld x %lld x %lld",
                       (long long)dcount(b), (long long)N, (long long)nb, (long long)blob);
    if (dcount(sc) != N * nb)
        return ocl_err(p, SI_ERR_INVALID_ARG, "scales has %lld values, expected N x n_blocks = %lld", (long long)dcount(sc), (long long)(N * nb));
    if (N * nb * blob > INT_MAX || N * K > INT_MAX)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "the weight has more elements than 32-bit indexing allows");
    int zmode = 0, zvid = a->vid;
    if (has_in(p, 3)) {
        if ((s = ocl_need_in(p, 3))) return s;
        const ocl_desc *z = &p->in[3];
        if (z->dtype == SI_U8) {
            zmode = 1;
            if (dcount(z) != N * zrow)
                return ocl_err(p, SI_ERR_INVALID_ARG, "packed zero_points has %lld bytes, expected N x %lld = %lld", (long long)dcount(z),
                               (long long)zrow, (long long)(N * zrow));
        } else if (z->dtype == SI_F32) {
            zmode = 2;
            if (dcount(z) != N * nb)
                return ocl_err(p, SI_ERR_INVALID_ARG, "zero_points has %lld values, expected N x n_blocks = %lld", (long long)dcount(z),
                               (long long)(N * nb));
        } else {
            return ocl_err(p, SI_ERR_INVALID_ARG, "zero_points must be uint8 (packed) or float32, got %s", si_dtype_name(z->dtype));
        }
        zvid = z->vid;
    }
    if (has_in(p, 4)) {
        if ((s = ocl_need_in(p, 4))) return s;
        if (dcount(&p->in[4]) > 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "g_idx (act-order groups) is not supported");
    }
    bool bias = has_in(p, 5);
    if (bias) {
        if ((s = ocl_need_f32(p, 5))) return s;
        if (dcount(&p->in[5]) != N)
            return ocl_err(p, SI_ERR_INVALID_ARG, "bias has %lld values, expected N = %lld", (long long)dcount(&p->in[5]), (long long)N);
    }
    int64_t dims[SI_MAX_DIMS];
    for (int k = 0; k < a->ndim; k++) dims[k] = a->dims[k];
    dims[a->ndim - 1] = N;
    if ((s = ocl_set_out(p, 0, a->ndim, dims))) return s;
    if (!has_out(p, 0) || M == 0) return SI_OK;
    int64_t mv[10] = {K, N, block, bits, nb, blob, zrow, zmode, bias, M};
    int mid;
    if ((s = ocl_meta64(p, mv, 10, &mid))) return s;
    int bvid = bias ? p->in[5].vid : a->vid;
    ocl_step st;
    if (M <= NBITS_GEMV_MAX_M) {
        st_args(&st, p->caps->cpu ? "nbits_gemv_col" : "nbits_gemv", arg_val(a->vid), arg_val(b->vid), arg_val(sc->vid), arg_val(zvid), arg_val(zvid),
                arg_val(bvid), arg_val(p->out[0].vid), arg_meta(mid));
        st.dims = 2;
        st.lws[0] = p->caps->cpu ? p->caps->elem_wg : (size_t)p->caps->wg;
        st.lws[1] = 1;
        st.gws[0] = p->caps->cpu ? (size_t)(N + (int64_t)st.lws[0] - 1) / st.lws[0] * st.lws[0] : (size_t)N * st.lws[0];
        st.gws[1] = (size_t)M;
        return ocl_emit(p, &st);
    }
    if ((s = OCL_EMIT_1D(p, "nbits_dequant", N * nb * blob, arg_val(b->vid), arg_val(sc->vid), arg_val(zvid), arg_val(zvid), arg_scratch(),
                         arg_meta(mid), arg_int(N * nb * blob))))
        return s;
    ocl_scratch(p, (size_t)(N * K) * sizeof(float));
    st_args(&st, "nbits_mm", arg_val(a->vid), arg_scratch(), arg_val(bvid), arg_val(p->out[0].vid), arg_meta(mid));
    size_t ts = (size_t)p->caps->ts;
    st.dims = 2;
    st.lws[0] = ts;
    st.lws[1] = ts;
    st.gws[0] = round_up((size_t)N, ts);
    st.gws[1] = round_up((size_t)M, ts);
    return ocl_emit(p, &st);
}

// --- FastGelu, BiasGelu, QuickGelu --------------------------------------------------------------------------

static si_result plan_gelu(ocl_plan *p, const void *arg) {
    (void)arg;
    int kind = si_node_is(p->node, SI_OP_FAST_GELU) ? 0 : si_node_is(p->node, SI_OP_BIAS_GELU) ? 1 : 2;
    si_result s;
    if ((s = ocl_max_inputs(p, kind == 2 ? 1 : 2)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    bool bias = kind != 2 && has_in(p, 1);
    if (kind == 1 && !bias) return ocl_err(p, SI_ERR_INVALID_ARG, "input 1 (bias) is required");
    int64_t last = x->ndim ? x->dims[x->ndim - 1] : 1;
    if (bias) {
        if ((s = ocl_need_f32(p, 1))) return s;
        const ocl_desc *b = &p->in[1];
        if (x->ndim < 1 || b->ndim != 1 || b->dims[0] != last)
            return ocl_err(p, SI_ERR_INVALID_ARG, "bias must be 1-D with the input's last dimension (%lld values)", x->ndim ? (long long)last : 0LL);
    }
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, "ms_gelu", dcount(x), arg_val(x->vid), arg_val(bias ? p->in[1].vid : x->vid), arg_val(p->out[0].vid), arg_int(dcount(x)),
                       arg_int(last > 0 ? last : 1), arg_int(kind), arg_int(bias), arg_flt(si_attr_float(p->node, "alpha", 1.702f)));
}

// --- QuantizeLinear, DequantizeLinear ---------------------------------------------------------------------------

/* The checks both share: per tensor or per axis (blocked quantization stays on other devices); *inner and *len
 * index the scale (k = (i / inner) % len); *zp: a zero point is given. qt: the quantized type (x's for
 * DequantizeLinear, the zero point's or uint8 for QuantizeLinear). */
static si_result q_axis(ocl_plan *p, const char *sname, si_dtype qt, int64_t *inner, int64_t *len, bool *zp) {
    si_result s;
    const ocl_desc *x = &p->in[0], *sc = &p->in[1];
    if (dcount(x) > INT_MAX) return ocl_err(p, SI_ERR_UNSUPPORTED, "x has more elements than 32-bit indexing allows");
    int64_t block = p->node->opset >= 21 ? si_attr_int(p->node, "block_size", 0) : 0;
    if (block < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "block_size %lld must not be negative", (long long)block);
    if (block) return ocl_err(p, SI_ERR_UNSUPPORTED, "blocked quantization (block_size %lld) is not supported", (long long)block);
    *inner = 1, *len = 1;
    int r = x->ndim;
    if (!(dcount(sc) == 1 && sc->ndim <= 1)) { /* per axis */
        if (p->node->opset < 13 || r == 0)
            return ocl_err(p, SI_ERR_INVALID_ARG, "%s must be a scalar here (it has %lld values)", sname, (long long)dcount(sc));
        int axis;
        if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 1), r, &axis))) return s;
        *len = x->dims[axis];
        *inner = si_shape_count(r - axis - 1, x->dims + axis + 1);
        if (sc->ndim != 1 || sc->dims[0] != *len)
            return ocl_err(p, SI_ERR_INVALID_ARG, "per-axis %s must be 1-D of length %lld (axis %d), got rank %d with %lld values", sname,
                           (long long)*len, axis, sc->ndim, (long long)dcount(sc));
    }
    if (*inner <= 0) *inner = 1;
    if (*len <= 0) *len = 1;
    *zp = has_in(p, 2);
    if (*zp) {
        if ((s = ocl_need_in(p, 2))) return s;
        const ocl_desc *z = &p->in[2];
        if (z->dtype != qt)
            return ocl_err(p, SI_ERR_INVALID_ARG, "the zero point has element type %s, the quantized type is %s: they must be the same",
                           si_dtype_name(z->dtype), si_dtype_name(qt));
        if (z->ndim != sc->ndim || dcount(z) != dcount(sc)) return ocl_err(p, SI_ERR_INVALID_ARG, "the zero point must have %s's shape", sname);
    }
    return SI_OK;
}

/* DequantizeLinear: int8/uint8 to float32. */
static si_result plan_dequantize(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    if ((s = ocl_need_type2(p, 0, SI_I8, SI_U8))) return s;
    int64_t odt = p->node->opset >= 23 ? si_attr_int(p->node, "output_dtype", 0) : 0;
    if (odt && odt != SI_F32) return ocl_err(p, SI_ERR_UNSUPPORTED, "output_dtype %lld is not supported (float32)", (long long)odt);
    int64_t inner = 1, len = 1;
    bool zp = false;
    if ((s = q_axis(p, "x_scale", x->dtype, &inner, &len, &zp))) return s;
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, "dq_linear", dcount(x), arg_val(x->vid), arg_val(p->in[1].vid), arg_val(zp ? p->in[2].vid : x->vid), arg_val(p->out[0].vid),
                       arg_int(dcount(x)), arg_int((int)inner), arg_int((int)len), arg_int((x->dtype == SI_I8 ? 1 : 0) | (zp ? 2 : 0)));
}

/* QuantizeLinear: float32 to uint8 / int8, the division correctly rounded (the device must say it is). */
static si_result plan_quantize(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    if (!p->caps->exact_div)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "this device's float32 division is not correctly rounded (CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT), "
                                              "which x / y_scale needs");
    if (p->node->opset >= 23 && si_attr_int(p->node, "precision", 0))
        return ocl_err(p, SI_ERR_UNSUPPORTED, "the precision attribute is not supported");
    si_dtype qt = has_in(p, 2) ? p->in[2].dtype : SI_U8;
    int64_t odt = p->node->opset >= 21 ? si_attr_int(p->node, "output_dtype", 0) : 0;
    if (odt && !has_in(p, 2)) qt = (si_dtype)odt;
    if (qt != SI_U8 && qt != SI_I8)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "output element type %s is not supported (uint8, int8)", si_dtype_name(qt));
    if (odt && odt != (int64_t)qt)
        return ocl_err(p, SI_ERR_INVALID_ARG, "output_dtype %lld differs from the zero point's type %s", (long long)odt, si_dtype_name(qt));
    int64_t inner = 1, len = 1;
    bool zp = false;
    if ((s = q_axis(p, "y_scale", qt, &inner, &len, &zp))) return s;
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    p->out[0].dtype = qt;
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, "q_linear", dcount(x), arg_val(x->vid), arg_val(p->in[1].vid), arg_val(zp ? p->in[2].vid : x->vid), arg_val(p->out[0].vid),
                       arg_int(dcount(x)), arg_int((int)inner), arg_int((int)len), arg_int((qt == SI_I8 ? 1 : 0) | (zp ? 2 : 0)));
}

// --- dispatch -----------------------------------------------------------------------------------------------

const ocl_planner *ocl_llm_planner(const si_node *n) {
    static const ocl_planner sln = {plan_sln, NULL, {"ff", 2, 2}}, skipnorm = {plan_skipnorm, NULL, {NULL, 0, 0}},
                             nbits = {plan_nbits, NULL, {"fif", 0, 1}}, gelu = {plan_gelu, NULL, {"f", 0, 0}},
                             dequantize = {plan_dequantize, NULL, {"if", 3, 1}},
                             quantize = {plan_quantize, NULL, {"ff", 3, 1}};
    switch (n->op ? (int)n->op->id : -1) {
    case SI_OP_SIMPLIFIED_LAYER_NORMALIZATION: return &sln;
    case SI_OP_SKIP_LAYER_NORMALIZATION:
    case SI_OP_SKIP_SIMPLIFIED_LAYER_NORMALIZATION: return &skipnorm;
    case SI_OP_MATMUL_NBITS: return &nbits;
    case SI_OP_FAST_GELU:
    case SI_OP_BIAS_GELU:
    case SI_OP_QUICK_GELU: return &gelu;
    case SI_OP_DEQUANTIZE_LINEAR: return &dequantize;
    case SI_OP_QUANTIZE_LINEAR: return &quantize;
    default: return NULL;
    }
}
