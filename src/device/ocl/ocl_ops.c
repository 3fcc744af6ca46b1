/*
 * ocl_ops.c — the OCL device's op planners: the checks, reads and emitters they share, and the dispatch table
 * (one entry per op id; the planners themselves are in ocl_eltwise.c, ocl_nn.c and ocl_layout.c, see ocl_ops.h).
 *
 * Everything is float32 with 32-bit indices; parameters (shapes, axes, pads, ...) must be constants.
 */
#include "device/ocl/ocl_ops.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

// --- checks and reads ----------------------------------------------------------------------------------------

si_result ocl_need_in(ocl_plan *p, int k) {
    if (!has_in(p, k)) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d is missing", k);
    if (p->in[k].ndim < 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "dynamic shape: input %d has an unknown shape", k);
    return SI_OK;
}

/* Input k: present, float32, known shape, indexable with 32-bit ints. */
si_result ocl_need_f32(ocl_plan *p, int k) {
    si_result s = ocl_need_in(p, k);
    if (s) return s;
    const ocl_desc *d = &p->in[k];
    if (d->dtype != SI_F32)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d has element type %s; the OCL device supports float32 only", k,
                       si_dtype_name(d->dtype));
    if (dcount(d) > INT_MAX)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d has %lld elements, more than 32-bit indexing allows", k, (long long)dcount(d));
    return SI_OK;
}

si_result ocl_max_inputs(ocl_plan *p, int n) {
    for (int k = n; k < p->n_in; k++)
        if (has_in(p, k)) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d is not supported", k);
    return SI_OK;
}

si_result ocl_max_outputs(ocl_plan *p, int n) {
    for (int k = n; k < p->n_out; k++)
        if (has_out(p, k)) return ocl_err(p, SI_ERR_UNSUPPORTED, "output %d is not supported", k);
    return SI_OK;
}

/* A constant integer list (rank <= 1) from input k. */
si_result ocl_const_ints(ocl_plan *p, int k, int64_t *vals, int max, int *n) {
    *n = 0;
    const ocl_desc *d = &p->in[k];
    if (!d->cval) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d must be a constant (its value decides the shapes)", k);
    if (!si_dtype_is_int(d->cval->dtype) || d->cval->ndim > 1)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d must be a 1-D integer tensor", k);
    int64_t c = si_shape_count(d->cval->ndim, d->cval->dims);
    if (c > max) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d has %lld values, at most %d are supported", k, (long long)c, max);
    for (int64_t i = 0; i < c; i++) vals[i] = si_load_i64(d->cval->dtype, d->cval->data, i);
    *n = (int)c;
    return SI_OK;
}

/* A constant float scalar from input k (float types only). */
si_result ocl_const_float(ocl_plan *p, int k, float *v) {
    const ocl_desc *d = &p->in[k];
    if (!d->cval) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d must be a constant", k);
    if (d->cval->dtype != SI_F32) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d has element type %s; float32 expected", k, si_dtype_name(d->cval->dtype));
    if (si_shape_count(d->cval->ndim, d->cval->dims) != 1) return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d must hold one value", k);
    *v = ((const float *)d->cval->data)[0];
    return SI_OK;
}

/* An INTS attribute into vals (at most max); *n = -1 when absent. */
si_result ocl_attr_ints(ocl_plan *p, const char *name, int64_t *vals, int max, int *n) {
    *n = si_attr_ints_copy(p->node, name, vals, max);
    if (*n > max) return ocl_err(p, SI_ERR_UNSUPPORTED, "attribute %s has %d values, at most %d are supported", name, *n, max);
    return SI_OK;
}

si_result ocl_norm_axis(ocl_plan *p, int64_t axis, int rank, int *out) {
    *out = 0;
    if (axis < -(int64_t)rank || axis >= rank)
        return ocl_err(p, SI_ERR_INVALID_ARG, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return SI_OK;
}

si_result ocl_set_out(ocl_plan *p, int k, int ndim, const int64_t *dims) {
    if (k >= p->n_out) return SI_OK;
    ocl_desc *o = &p->out[k];
    if (ndim < 0 || ndim > SI_MAX_DIMS) return ocl_err(p, SI_ERR_UNSUPPORTED, "output rank %d is not supported", ndim);
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "output %d would have a negative dimension", k);
    o->dtype = SI_F32;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++) o->dims[i] = dims[i];
    if (si_shape_count(ndim, dims) > INT_MAX)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "output %d has %lld elements, more than 32-bit indexing allows", k, (long long)si_shape_count(ndim, dims));
    return SI_OK;
}

/* Numpy broadcast of two shapes. */
si_result ocl_bcast(ocl_plan *p, int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out) {
    int n = si_broadcast_dims(na, a, nb, b, out);
    *nout = SI_MAX(n, 0);
    if (n < 0) {
        int i = -1 - n, m = SI_MAX(na, nb);
        int64_t da = i < m - na ? 1 : a[i - (m - na)], db = i < m - nb ? 1 : b[i - (m - nb)];
        return ocl_err(p, SI_ERR_INVALID_ARG, "shapes cannot be broadcast (dimension %d: %lld vs %lld)", i, (long long)da, (long long)db);
    }
    return SI_OK;
}

/* Merge dimensions that every one of the `ns` stride arrays walks contiguously, dropping dimensions of
 * size 1. dims/strides are rewritten in place; returns the new rank. */
int ocl_merge_dims(int nd, int64_t *dims, int ns, int64_t (*strides)[SI_MAX_DIMS * 2]) {
    int r = 0;
    for (int k = 0; k < nd; k++) {
        if (dims[k] == 1) continue;
        bool merge = r > 0;
        for (int s = 0; merge && s < ns; s++)
            if (strides[s][r - 1] != strides[s][k] * dims[k]) merge = false;
        if (merge) {
            dims[r - 1] *= dims[k];
            for (int s = 0; s < ns; s++) strides[s][r - 1] = strides[s][k];
        } else {
            dims[r] = dims[k];
            for (int s = 0; s < ns; s++) strides[s][r] = strides[s][k];
            r++;
        }
    }
    return r;
}

// --- emission -----------------------------------------------------------------------------------------------

/* Emit a 1-D launch over n items (nothing when n is 0). */
si_result ocl_emit_1d(ocl_plan *p, ocl_step *st, int64_t n) {
    if (n <= 0) return SI_OK;
    st->dims = 1;
    st->lws[0] = p->caps->elem_wg;
    st->gws[0] = round_up((size_t)n, st->lws[0]);
    return ocl_emit(p, st);
}

si_result ocl_meta64(ocl_plan *p, const int64_t *v, int n, int *id) {
    int buf[128];
    if (n > 128) return ocl_err(p, SI_ERR_INTERNAL, "kernel metadata too long");
    for (int i = 0; i < n; i++) buf[i] = (int)v[i];
    return ocl_meta(p, buf, n, id);
}

/* Outputs that are views of input 0 (same elements, maybe another shape). */
si_result ocl_emit_view(ocl_plan *p) {
    if (!has_out(p, 0)) return SI_OK;
    return ocl_alias(p, 0, 0);
}

// --- dispatch -----------------------------------------------------------------------------------------------

typedef si_result (*plan_fn)(ocl_plan *p, const void *arg);

/* The planner of each op the OCL device runs, with its argument; an empty entry: not supported. */
typedef struct planner {
    plan_fn fn;
    const void *arg;
} planner;

#define UNARY(kernel, par) {ocl_plan_unary, &(const unary_def){kernel, par}}
#define REDUCE(code, axes_input_opset) {ocl_plan_reduce, &(const reduce_def){code, axes_input_opset}}

static const planner planners[SI_OP_COUNT] = {
    [SI_OP_ADD] = {ocl_plan_binary, "b_add"},
    [SI_OP_SUB] = {ocl_plan_binary, "b_sub"},
    [SI_OP_MUL] = {ocl_plan_binary, "b_mul"},
    [SI_OP_DIV] = {ocl_plan_binary, "b_div"},
    [SI_OP_POW] = {ocl_plan_binary, "b_pow"},
    [SI_OP_PRELU] = {ocl_plan_prelu, NULL},
    [SI_OP_SHAPE] = {ocl_plan_shape, NULL},
    [SI_OP_SIZE] = {ocl_plan_shape, NULL},
    [SI_OP_SUM] = {ocl_plan_variadic, "b_add"},
    [SI_OP_MEAN] = {ocl_plan_variadic, "b_add"},
    [SI_OP_MAX] = {ocl_plan_variadic, "b_max"},
    [SI_OP_MIN] = {ocl_plan_variadic, "b_min"},
    [SI_OP_IDENTITY] = {ocl_plan_identity, NULL},
    [SI_OP_DROPOUT] = {ocl_plan_dropout, NULL},
    [SI_OP_LRN] = {ocl_plan_lrn, NULL},
    [SI_OP_CAST] = {ocl_plan_cast, NULL},
    [SI_OP_CAST_LIKE] = {ocl_plan_cast, NULL},
    [SI_OP_MATMUL] = {ocl_plan_matmul, NULL},
    [SI_OP_GEMM] = {ocl_plan_gemm, NULL},
    [SI_OP_CONV] = {ocl_plan_conv, NULL},
    [SI_OP_CONV_TRANSPOSE] = {ocl_plan_conv_transpose, NULL},
    [SI_OP_GATHER] = {ocl_plan_gather, NULL},
    [SI_OP_MAX_POOL] = {ocl_plan_pool, NULL},
    [SI_OP_AVERAGE_POOL] = {ocl_plan_pool, NULL},
    [SI_OP_GLOBAL_AVERAGE_POOL] = {ocl_plan_global_pool, NULL},
    [SI_OP_GLOBAL_MAX_POOL] = {ocl_plan_global_pool, NULL},
    [SI_OP_SOFTMAX] = {ocl_plan_softmax, NULL},
    [SI_OP_LOG_SOFTMAX] = {ocl_plan_softmax, NULL},
    [SI_OP_BATCH_NORMALIZATION] = {ocl_plan_batchnorm, NULL},
    [SI_OP_LAYER_NORMALIZATION] = {ocl_plan_layernorm, NULL},
    [SI_OP_RMS_NORMALIZATION] = {ocl_plan_layernorm, NULL},
    [SI_OP_INSTANCE_NORMALIZATION] = {ocl_plan_groupnorm, NULL},
    [SI_OP_GROUP_NORMALIZATION] = {ocl_plan_groupnorm, NULL},
    [SI_OP_RESHAPE] = {ocl_plan_reshape, NULL},
    [SI_OP_FLATTEN] = {ocl_plan_flatten, NULL},
    [SI_OP_SQUEEZE] = {ocl_plan_squeeze, NULL},
    [SI_OP_UNSQUEEZE] = {ocl_plan_unsqueeze, NULL},
    [SI_OP_TRANSPOSE] = {ocl_plan_transpose, NULL},
    [SI_OP_CONCAT] = {ocl_plan_concat, NULL},
    [SI_OP_SPLIT] = {ocl_plan_split, NULL},
    [SI_OP_SLICE] = {ocl_plan_slice, NULL},
    [SI_OP_EXPAND] = {ocl_plan_expand, NULL},
    [SI_OP_TILE] = {ocl_plan_tile, NULL},
    [SI_OP_PAD] = {ocl_plan_pad, NULL},
    [SI_OP_RESIZE] = {ocl_plan_resize, NULL},
    [SI_OP_UPSAMPLE] = {ocl_plan_resize, NULL},
    /* unary ops: one kernel each, with the attributes read as unary_par says */
    [SI_OP_RELU] = UNARY("u_relu", P_NONE),
    [SI_OP_LEAKY_RELU] = UNARY("u_leaky_relu", P_LEAKY),
    [SI_OP_SIGMOID] = UNARY("u_sigmoid", P_NONE),
    [SI_OP_HARD_SIGMOID] = UNARY("u_hard_sigmoid", P_HSIG),
    [SI_OP_HARD_SWISH] = UNARY("u_hard_swish", P_NONE),
    [SI_OP_TANH] = UNARY("u_tanh", P_NONE),
    [SI_OP_CLIP] = UNARY("u_clip", P_CLIP),
    [SI_OP_EXP] = UNARY("u_exp", P_NONE),
    [SI_OP_LOG] = UNARY("u_log", P_NONE),
    [SI_OP_SQRT] = UNARY("u_sqrt", P_NONE),
    [SI_OP_ERF] = UNARY("u_erf", P_NONE),
    [SI_OP_NEG] = UNARY("u_neg", P_NONE),
    [SI_OP_ABS] = UNARY("u_abs", P_NONE),
    [SI_OP_RECIPROCAL] = UNARY("u_reciprocal", P_NONE),
    [SI_OP_FLOOR] = UNARY("u_floor", P_NONE),
    [SI_OP_CEIL] = UNARY("u_ceil", P_NONE),
    [SI_OP_ROUND] = UNARY("u_round", P_NONE),
    [SI_OP_SIGN] = UNARY("u_sign", P_NONE),
    [SI_OP_ELU] = UNARY("u_elu", P_ALPHA1),
    [SI_OP_SELU] = UNARY("u_selu", P_SELU),
    [SI_OP_CELU] = UNARY("u_celu", P_CELU),
    [SI_OP_SOFTPLUS] = UNARY("u_softplus", P_NONE),
    [SI_OP_SOFTSIGN] = UNARY("u_softsign", P_NONE),
    [SI_OP_MISH] = UNARY("u_mish", P_NONE),
    [SI_OP_SWISH] = UNARY("u_swish", P_ALPHA1),
    [SI_OP_GELU] = UNARY("u_gelu", P_GELU),
    [SI_OP_THRESHOLDED_RELU] = UNARY("u_thresholded_relu", P_ALPHA1),
    [SI_OP_SHRINK] = UNARY("u_shrink", P_SHRINK),
    [SI_OP_SIN] = UNARY("u_sin", P_NONE),
    [SI_OP_COS] = UNARY("u_cos", P_NONE),
    [SI_OP_TAN] = UNARY("u_tan", P_NONE),
    [SI_OP_ASIN] = UNARY("u_asin", P_NONE),
    [SI_OP_ACOS] = UNARY("u_acos", P_NONE),
    [SI_OP_ATAN] = UNARY("u_atan", P_NONE),
    [SI_OP_SINH] = UNARY("u_sinh", P_NONE),
    [SI_OP_COSH] = UNARY("u_cosh", P_NONE),
    [SI_OP_ASINH] = UNARY("u_asinh", P_NONE),
    [SI_OP_ACOSH] = UNARY("u_acosh", P_NONE),
    [SI_OP_ATANH] = UNARY("u_atanh", P_NONE),
    /* reductions: emit_reduce code, opset from which axes is an input */
    [SI_OP_REDUCE_SUM] = REDUCE(0, 13),
    [SI_OP_REDUCE_MEAN] = REDUCE(1, 18),
    [SI_OP_REDUCE_MAX] = REDUCE(2, 18),
    [SI_OP_REDUCE_MIN] = REDUCE(3, 18),
    [SI_OP_REDUCE_PROD] = REDUCE(4, 18),
    [SI_OP_REDUCE_L1] = REDUCE(5, 18),
    [SI_OP_REDUCE_L2] = REDUCE(6, 18),
    [SI_OP_REDUCE_SUM_SQUARE] = REDUCE(7, 18),
    [SI_OP_REDUCE_LOG_SUM] = REDUCE(8, 18),
    [SI_OP_REDUCE_LOG_SUM_EXP] = REDUCE(9, 18),
};

si_result ocl_plan_node(ocl_plan *p) {
    const si_node *n = p->node;
    const char *dom = n->domain ? n->domain : "";
    if (dom[0] && strcmp(dom, "ai.onnx"))
        return si_err(SI_ERR_UNSUPPORTED, "op %s.%s (node '%s') is not supported", dom, n->op_type, n->name);
    const planner *pl = n->op ? &planners[n->op->id] : NULL;
    if (pl && pl->fn) return pl->fn(p, pl->arg);
    return si_err(SI_ERR_UNSUPPORTED, "op %s (node '%s') is not supported", n->op_type, n->name);
}
