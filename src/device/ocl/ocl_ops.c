/*
 * ocl_ops.c — the OCL device's op planners: the checks, reads and emitters they share (ocl_ops.h), the planners
 * of the element-wise ops (unary kernels with their attributes as parameters, binary ops with broadcasting,
 * PRelu, Sum/Mean/Max/Min, Cast, Identity, Dropout, LRN), of the layout ops (Reshape, Flatten, Squeeze and
 * Unsqueeze as views; Transpose, Concat, Split, Slice, Expand, Tile, Pad and Gather as strided copies), of
 * Resize/Upsample (REF's geometry and taps, weighted sums on the device) and of Shape/Size (constants of the
 * compiled model), and the dispatch table: one entry per op id. The planners of MatMul, Gemm, convolutions,
 * pooling, reductions, Softmax and the normalisations are in ocl_nn.c.
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

si_result ocl_need_type2(ocl_plan *p, int k, si_dtype a, si_dtype b) {
    const si_dtype t = p->in[k].dtype;
    if (t == a || t == b) return SI_OK;
    return ocl_err(p, SI_ERR_UNSUPPORTED, "input %d has element type %s; the OCL device supports %s or %s here", k, si_dtype_name(t),
                   si_dtype_name(a), si_dtype_name(b));
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

si_result ocl_emit_1d_of(ocl_plan *p, const char *kernel, int64_t n, int n_args, const ocl_arg *args) {
    ocl_step st;
    st_set(&st, kernel, n_args, args);
    return ocl_emit_1d(p, &st, n);
}

si_result ocl_emit_rows(ocl_plan *p, ocl_step *st, int64_t rows) {
    st->dims = 1;
    st->lws[0] = (size_t)p->caps->wg;
    st->gws[0] = (size_t)rows * st->lws[0];
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

/* The static name of a binary kernel's 3-D variant (step kernel names must outlive the compile). */
static const char *kernel3_name(const char *k3) {
    static const char *const names[] = {"b_add3", "b_sub3", "b_mul3", "b_div3", "b_pow3", "b_max3", "b_min3", "b_prelu3"};
    for (size_t i = 0; i < SI_ARRAY_LEN(names); i++)
        if (!strcmp(names[i], k3)) return names[i];
    return NULL;
}

/* Y[out] = A op B with A and B broadcast to the output shape (nd, od). */
static si_result emit_binary(ocl_plan *p, const char *kernel, int va, const ocl_desc *da, int vb, const ocl_desc *db, int vy,
                             int nd, const int64_t *od) {
    int64_t n = si_shape_count(nd, od);
    if (n == 0) return SI_OK;
    int64_t dims[SI_MAX_DIMS * 2], st[2][SI_MAX_DIMS * 2];
    si_broadcast_strides(da->ndim, da->dims, nd, od, st[0]);
    si_broadcast_strides(db->ndim, db->dims, nd, od, st[1]);
    memcpy(dims, od, sizeof(int64_t) * (size_t)nd);
    int r = ocl_merge_dims(nd, dims, 2, st);
    int64_t ca = dcount(da), cb = dcount(db);
    int mode = (ca == n && cb == n) ? 1 : (ca == n && cb == 1) ? 2 : (ca == 1 && cb == n) ? 3 : 0;
    if (mode == 0 && r <= 3) { /* a 3-D launch without index arithmetic */
        int m3[9];
        for (int k = 0; k < 3; k++) { /* k = 0 innermost */
            bool on = k < r;
            m3[k] = on ? (int)dims[r - 1 - k] : 1;
            m3[3 + k] = on ? (int)st[0][r - 1 - k] : 0;
            m3[6 + k] = on ? (int)st[1][r - 1 - k] : 0;
        }
        int mid;
        si_result s = ocl_meta(p, m3, 9, &mid);
        if (s) return s;
        char k3[32];
        snprintf(k3, sizeof k3, "%s3", kernel);
        const char *kernel3 = kernel3_name(k3);
        if (!kernel3) return ocl_err(p, SI_ERR_INTERNAL, "no 3-D variant of %s", kernel);
        ocl_step stp;
        st_args(&stp, kernel3, arg_val(va), arg_val(vb), arg_val(vy), arg_meta(mid));
        stp.dims = 3;
        stp.gws[0] = (size_t)m3[0];
        stp.gws[1] = (size_t)m3[1];
        stp.gws[2] = (size_t)m3[2];
        return ocl_emit(p, &stp);
    }
    int meta[1 + 3 * SI_MAX_DIMS];
    int mn = 1;
    meta[0] = 0;
    if (mode == 0) {
        meta[0] = r;
        for (int k = 0; k < r; k++) {
            meta[1 + k] = (int)dims[k];
            meta[1 + r + k] = (int)st[0][k];
            meta[1 + 2 * r + k] = (int)st[1][k];
        }
        mn = 1 + 3 * r;
    }
    int mid;
    si_result s = ocl_meta(p, meta, mn, &mid);
    if (s) return s;
    return OCL_EMIT_1D(p, kernel, n, arg_val(va), arg_val(vb), arg_val(vy), arg_int(n), arg_meta(mid), arg_int(mode));
}

// --- element-wise -------------------------------------------------------------------------------------------

typedef enum { P_NONE, P_LEAKY, P_ALPHA1, P_HSIG, P_SELU, P_SHRINK, P_CLIP, P_GELU, P_CELU } unary_par;

/* arg of plan_unary: the kernel and how the node's attributes become its parameters. */
typedef struct unary_def {
    const char *kernel;
    unary_par par;
} unary_def;

static si_result plan_unary(ocl_plan *p, const void *arg) {
    const unary_def *d = arg;
    si_result s;
    if ((s = ocl_max_inputs(p, d->par == P_CLIP ? 3 : 1)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    float a = 0, b = 0;
    const char *kernel = d->kernel;
    switch (d->par) {
    case P_NONE: break;
    case P_LEAKY: a = si_attr_float(p->node, "alpha", 0.01f); break;
    case P_ALPHA1: a = si_attr_float(p->node, "alpha", 1.0f); break;
    case P_CELU:
        a = si_attr_float(p->node, "alpha", 1.0f);
        if (a == 0) return ocl_err(p, SI_ERR_INVALID_ARG, "alpha must not be 0");
        break;
    case P_HSIG:
        a = si_attr_float(p->node, "alpha", 0.2f);
        b = si_attr_float(p->node, "beta", 0.5f);
        break;
    case P_SELU:
        a = si_attr_float(p->node, "alpha", 1.67326319217681884765625f);
        b = si_attr_float(p->node, "gamma", 1.05070102214813232421875f);
        break;
    case P_SHRINK:
        a = si_attr_float(p->node, "lambd", 0.5f);
        b = si_attr_float(p->node, "bias", 0.0f);
        break;
    case P_GELU: {
        const char *ap = si_attr_str(p->node, "approximate", "none");
        if (!strcmp(ap, "tanh")) kernel = "u_gelu_tanh";
        else if (strcmp(ap, "none")) return ocl_err(p, SI_ERR_UNSUPPORTED, "approximate='%s' is not supported", ap);
        break;
    }
    case P_CLIP:
        if (p->node->opset < 11) {
            a = si_attr_float(p->node, "min", -FLT_MAX);
            b = si_attr_float(p->node, "max", FLT_MAX);
            break;
        }
        a = -INFINITY;
        b = INFINITY;
        bool lo = has_in(p, 1) && p->in[1].ndim >= 0 && dcount(&p->in[1]) > 0;
        bool hi = has_in(p, 2) && p->in[2].ndim >= 0 && dcount(&p->in[2]) > 0;
        if ((!lo || p->in[1].cval) && (!hi || p->in[2].cval)) { /* constant bounds: attributes of u_clip */
            if (lo && (s = ocl_const_float(p, 1, &a))) return s;
            if (hi && (s = ocl_const_float(p, 2, &b))) return s;
            break;
        }
        for (int k = 1; k <= 2; k++) { /* bounds computed at run time */
            if (!(k == 1 ? lo : hi)) continue;
            if ((s = ocl_need_f32(p, k))) return s;
            if (dcount(&p->in[k]) != 1) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d must hold one value", k);
        }
        if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
        if (!has_out(p, 0)) return SI_OK;
        return OCL_EMIT_1D(p, "u_clip_t", dcount(x), arg_val(x->vid), arg_val(lo ? p->in[1].vid : x->vid), arg_val(hi ? p->in[2].vid : x->vid),
                           arg_val(p->out[0].vid), arg_int(dcount(x)), arg_int((lo ? 1 : 0) | (hi ? 2 : 0)));
    }
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, kernel, dcount(x), arg_val(x->vid), arg_val(p->out[0].vid), arg_int(dcount(x)), arg_flt(a), arg_flt(b));
}

static si_result plan_identity(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    if ((s = ocl_set_out(p, 0, p->in[0].ndim, p->in[0].dims))) return s;
    return ocl_emit_view(p);
}

/* Dropout in inference: Y is a view of X, the optional mask is all true (1.0 before opset 10). Training
 * mode is accepted only with ratio 0 (REF's rule: nothing is dropped). */
static si_result plan_dropout(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    if (p->node->opset < 7 && si_attr_int(p->node, "is_test", 0) == 0)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "training mode (is_test=0) is not supported");
    if (has_in(p, 2)) {
        const ocl_desc *t = &p->in[2];
        if (!t->cval || si_shape_count(t->cval->ndim, t->cval->dims) != 1)
            return ocl_err(p, SI_ERR_UNSUPPORTED, "training_mode must be a constant");
        if (si_load_i64(t->cval->dtype, t->cval->data, 0) != 0) {
            double ratio = 0.5;
            if (has_in(p, 1)) {
                const ocl_desc *r = &p->in[1];
                if (!r->cval || si_shape_count(r->cval->ndim, r->cval->dims) != 1) return ocl_err(p, SI_ERR_UNSUPPORTED, "ratio must be a constant");
                ratio = si_load_f64(r->cval->dtype, r->cval->data, 0);
            }
            if (ratio != 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "training mode with ratio %g (random dropout) is not supported", ratio);
        }
    }
    const ocl_desc *x = &p->in[0];
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (has_out(p, 1)) {
        if ((s = ocl_set_out(p, 1, x->ndim, x->dims))) return s;
        bool b = p->node->opset >= 10;
        p->out[1].dtype = b ? SI_BOOL : SI_F32;
        if ((s = OCL_EMIT_1D(p, b ? "fill_u8" : "fill_f32", dcount(x), arg_val(p->out[1].vid), arg_int(dcount(x)), b ? arg_int(1) : arg_flt(1.0f))))
            return s;
    }
    return ocl_emit_view(p);
}

static si_result plan_lrn(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    if (x->ndim < 2) return ocl_err(p, SI_ERR_INVALID_ARG, "X must have rank 2 or more");
    const si_attr *a = si_node_attr(p->node, "size");
    if (!a || a->i < 1 || a->i > INT_MAX) return ocl_err(p, SI_ERR_INVALID_ARG, "attribute size is required and must be positive");
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, "lrn", dcount(x), arg_val(x->vid), arg_val(p->out[0].vid), arg_int(dcount(x)), arg_int(x->dims[1]),
                       arg_int(si_shape_count(x->ndim - 2, x->dims + 2)), arg_int(a->i), arg_flt(si_attr_float(p->node, "alpha", 1e-4f)),
                       arg_flt(si_attr_float(p->node, "beta", 0.75f)), arg_flt(si_attr_float(p->node, "bias", 1.0f)));
}

static si_result plan_cast(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const char *kernel = NULL;
    switch (p->in[0].dtype) {
    case SI_F32: break;
    case SI_I64: kernel = "cast_i64"; break;
    case SI_I32: kernel = "cast_i32"; break;
    case SI_BOOL:
    case SI_U8: kernel = "cast_u8"; break;
    default:
        return ocl_err(p, SI_ERR_UNSUPPORTED, "input 0 has element type %s; casts from float32, int64, int32, uint8 and bool are supported",
                       si_dtype_name(p->in[0].dtype));
    }
    if (dcount(&p->in[0]) > INT_MAX) return ocl_err(p, SI_ERR_UNSUPPORTED, "input 0 is too large for 32-bit indexing");
    si_dtype to;
    if (si_node_is(p->node, SI_OP_CAST_LIKE)) {
        if ((s = ocl_need_in(p, 1))) return s;
        to = p->in[1].dtype;
    } else {
        const si_attr *a = si_node_attr(p->node, "to");
        if (!a || a->type != SI_ATTR_INT) return ocl_err(p, SI_ERR_UNSUPPORTED, "attribute 'to' must be an integer");
        to = (si_dtype)a->i;
    }
    if (to != SI_F32) return ocl_err(p, SI_ERR_UNSUPPORTED, "cast to %s is not supported (float32 only)", si_dtype_name(to));
    if ((s = ocl_set_out(p, 0, p->in[0].ndim, p->in[0].dims))) return s;
    if (!kernel) return ocl_emit_view(p);
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, kernel, dcount(&p->in[0]), arg_val(p->in[0].vid), arg_val(p->out[0].vid), arg_int(dcount(&p->in[0])));
}

/* PRelu: the slope broadcasts to X (one way); before opset 7 a [C] slope is per channel. */
static si_result plan_prelu(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    ocl_desc sl = p->in[1];
    if (p->node->opset < 7 && sl.ndim == 1 && x->ndim >= 2 && sl.dims[0] == x->dims[1] && sl.dims[0] != 1)
        for (int i = 2; i < x->ndim; i++) sl.dims[sl.ndim++] = 1; /* [C] -> [C, 1, ..., 1] */
    int nd;
    int64_t od[SI_MAX_DIMS];
    if ((s = ocl_bcast(p, x->ndim, x->dims, sl.ndim, sl.dims, &nd, od))) return s;
    if (nd != x->ndim || memcmp(od, x->dims, sizeof(int64_t) * (size_t)nd))
        return ocl_err(p, SI_ERR_INVALID_ARG, "slope is not unidirectionally broadcastable to X");
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return emit_binary(p, "b_prelu", x->vid, x, sl.vid, &sl, p->out[0].vid, nd, od);
}

static si_result plan_binary(ocl_plan *p, const void *arg) {
    const char *kernel = arg;
    si_result s;
    int nd;
    int64_t od[SI_MAX_DIMS];
    if ((s = ocl_bcast(p, p->in[0].ndim, p->in[0].dims, p->in[1].ndim, p->in[1].dims, &nd, od))) return s;
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    /* x^2 (RMSNorm and LayerNorm exports square this way): x * x, exact where pow() may be off by ulps, and much
     * cheaper than pow() on every device */
    const si_tensor *e = p->in[1].cval;
    if (!strcmp(kernel, "b_pow") && e && e->dtype == SI_F32 && si_shape_count(e->ndim, e->dims) == 1 && ((const float *)e->data)[0] == 2.0f &&
        nd == p->in[0].ndim)
        return emit_binary(p, "b_mul", p->in[0].vid, &p->in[0], p->in[0].vid, &p->in[0], p->out[0].vid, nd, od);
    return emit_binary(p, kernel, p->in[0].vid, &p->in[0], p->in[1].vid, &p->in[1], p->out[0].vid, nd, od);
}

/* Sum, Mean, Max, Min over any number of inputs: the first two into the output (both broadcast to the
 * final shape), then the output with each further input in place, then Mean's scale. */
static si_result plan_variadic(ocl_plan *p, const void *arg) {
    const char *kernel = arg;
    bool mean = si_node_is(p->node, SI_OP_MEAN);
    si_result s;
    if (p->n_in < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "expects at least one input");
    if ((s = ocl_max_outputs(p, 1))) return s;
    int nd = 0;
    int64_t od[SI_MAX_DIMS];
    for (int k = 0; k < p->n_in; k++) {
        if ((s = ocl_need_f32(p, k))) return s;
        if (k == 0) {
            nd = p->in[0].ndim;
            memcpy(od, p->in[0].dims, sizeof od);
        } else {
            int64_t t[SI_MAX_DIMS];
            memcpy(t, od, sizeof t);
            if ((s = ocl_bcast(p, nd, t, p->in[k].ndim, p->in[k].dims, &nd, od))) return s;
        }
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int vy = p->out[0].vid;
    if (p->n_in == 1) {
        if (p->in[0].ndim == nd) return ocl_alias(p, 0, 0);
        return SI_OK;
    }
    if ((s = emit_binary(p, kernel, p->in[0].vid, &p->in[0], p->in[1].vid, &p->in[1], vy, nd, od))) return s;
    ocl_desc yd = p->out[0];
    for (int k = 2; k < p->n_in; k++)
        if ((s = emit_binary(p, kernel, vy, &yd, p->in[k].vid, &p->in[k], vy, nd, od))) return s;
    if (mean) {
        return OCL_EMIT_1D(p, "u_scale", si_shape_count(nd, od), arg_val(vy), arg_val(vy), arg_int(si_shape_count(nd, od)),
                           arg_flt(1.0f / (float)p->n_in), arg_flt(0.0f));
    }
    return SI_OK;
}

/* Strided copy: Y[doff + c.dstride] = X[soff + c.sstride] for every coordinate c of dims. */
static si_result emit_copy(ocl_plan *p, ocl_arg x, ocl_arg y, int nd, const int64_t *dims_in, const int64_t *sst_in,
                           const int64_t *dst_in, int64_t soff, int64_t doff) {
    int64_t n = si_shape_count(nd, dims_in);
    if (n == 0) return SI_OK;
    int64_t dims[SI_MAX_DIMS * 2], st[2][SI_MAX_DIMS * 2];
    memcpy(dims, dims_in, sizeof(int64_t) * (size_t)nd);
    memcpy(st[0], sst_in, sizeof(int64_t) * (size_t)nd);
    memcpy(st[1], dst_in, sizeof(int64_t) * (size_t)nd);
    int r = ocl_merge_dims(nd, dims, 2, st);
    if (r <= 3) { /* a 3-D launch without index arithmetic */
        int m3[11];
        m3[0] = (int)soff;
        m3[1] = (int)doff;
        for (int k = 0; k < 3; k++) {
            bool on = k < r;
            m3[2 + k] = on ? (int)dims[r - 1 - k] : 1;
            m3[5 + k] = on ? (int)st[0][r - 1 - k] : 0;
            m3[8 + k] = on ? (int)st[1][r - 1 - k] : 0;
        }
        int mid;
        si_result s = ocl_meta(p, m3, 11, &mid);
        if (s) return s;
        ocl_step stp;
        st_args(&stp, "copy3", x, y, arg_meta(mid));
        stp.dims = 3;
        stp.gws[0] = (size_t)m3[2];
        stp.gws[1] = (size_t)m3[3];
        stp.gws[2] = (size_t)m3[4];
        return ocl_emit(p, &stp);
    }
    int meta[3 + 3 * SI_MAX_DIMS * 2];
    meta[0] = r;
    meta[1] = (int)soff;
    meta[2] = (int)doff;
    for (int k = 0; k < r; k++) {
        meta[3 + k] = (int)dims[k];
        meta[3 + r + k] = (int)st[0][k];
        meta[3 + 2 * r + k] = (int)st[1][k];
    }
    int mid;
    si_result s = ocl_meta(p, meta, 3 + 3 * r, &mid);
    if (s) return s;
    return OCL_EMIT_1D(p, "copy_nd", n, x, y, arg_int(n), arg_meta(mid));
}

// --- layout -------------------------------------------------------------------------------------------------

static si_result plan_reshape(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t sh[SI_MAX_DIMS];
    int n;
    if (p->node->opset < 5) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, "shape", sh, SI_MAX_DIMS, &n))) return s;
        if (n < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "attribute shape is missing");
    } else {
        if ((s = ocl_max_inputs(p, 2)) || (s = ocl_need_in(p, 1)) || (s = ocl_const_ints(p, 1, sh, SI_MAX_DIMS, &n))) return s;
    }
    bool allowzero = si_attr_int(p->node, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (sh[i] == 0 && !allowzero) {
            if (i >= x->ndim) return ocl_err(p, SI_ERR_INVALID_ARG, "shape[%d] = 0 copies a dimension the input lacks", i);
            sh[i] = x->dims[i];
        }
        if (sh[i] == -1) {
            if (infer >= 0) return ocl_err(p, SI_ERR_INVALID_ARG, "more than one -1 in shape");
            infer = i;
        } else if (sh[i] < 0) {
            return ocl_err(p, SI_ERR_INVALID_ARG, "shape[%d] = %lld", i, (long long)sh[i]);
        } else {
            known *= sh[i];
        }
    }
    int64_t total = dcount(x);
    if (infer >= 0) {
        if (known == 0 || total % known) return ocl_err(p, SI_ERR_INVALID_ARG, "cannot infer the -1 dimension");
        sh[infer] = total / known;
    } else if (known != total) {
        return ocl_err(p, SI_ERR_INVALID_ARG, "%lld elements cannot be reshaped to %lld", (long long)total, (long long)known);
    }
    if ((s = ocl_set_out(p, 0, n, sh))) return s;
    return ocl_emit_view(p);
}

static si_result plan_flatten(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t axis = si_attr_int(p->node, "axis", 1);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis > x->ndim) return ocl_err(p, SI_ERR_INVALID_ARG, "axis out of range");
    int64_t od[2] = {si_shape_count((int)axis, x->dims), si_shape_count(x->ndim - (int)axis, x->dims + axis)};
    if ((s = ocl_set_out(p, 0, 2, od))) return s;
    return ocl_emit_view(p);
}

static si_result squeeze_axes(ocl_plan *p, int64_t *axes, int *n) {
    si_result s;
    *n = -1;
    if (p->node->opset < 13) return ocl_attr_ints(p, "axes", axes, SI_MAX_DIMS * 2, n);
    if ((s = ocl_max_inputs(p, 2))) return s;
    if (has_in(p, 1)) return ocl_const_ints(p, 1, axes, SI_MAX_DIMS * 2, n);
    return SI_OK;
}

static si_result plan_squeeze(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t axes[SI_MAX_DIMS * 2];
    int n;
    if ((s = squeeze_axes(p, axes, &n))) return s;
    bool drop[SI_MAX_DIMS] = {false};
    if (n < 0) {
        for (int k = 0; k < x->ndim; k++) drop[k] = x->dims[k] == 1;
    } else {
        for (int i = 0; i < n; i++) {
            int a;
            if ((s = ocl_norm_axis(p, axes[i], x->ndim, &a))) return s;
            if (x->dims[a] != 1) return ocl_err(p, SI_ERR_INVALID_ARG, "cannot squeeze dimension %d of size %lld", a, (long long)x->dims[a]);
            drop[a] = true;
        }
    }
    int64_t od[SI_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < x->ndim; k++)
        if (!drop[k]) od[nd++] = x->dims[k];
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    return ocl_emit_view(p);
}

static si_result plan_unsqueeze(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t axes[SI_MAX_DIMS * 2];
    int n;
    if ((s = squeeze_axes(p, axes, &n))) return s;
    if (n < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "axes are missing");
    int nd = x->ndim + n;
    if (nd > SI_MAX_DIMS) return ocl_err(p, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    bool ins[SI_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        if ((s = ocl_norm_axis(p, axes[i], nd, &a))) return s;
        if (ins[a]) return ocl_err(p, SI_ERR_INVALID_ARG, "axis %d appears twice", a);
        ins[a] = true;
    }
    int64_t od[SI_MAX_DIMS];
    for (int k = 0, j = 0; k < nd; k++) od[k] = ins[k] ? 1 : x->dims[j++];
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    return ocl_emit_view(p);
}

static si_result plan_transpose(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim;
    int64_t perm[SI_MAX_DIMS];
    int n;
    if ((s = ocl_attr_ints(p, "perm", perm, SI_MAX_DIMS, &n))) return s;
    if (n < 0) {
        for (int k = 0; k < nd; k++) perm[k] = nd - 1 - k;
    } else if (n != nd) {
        return ocl_err(p, SI_ERR_INVALID_ARG, "perm has %d values for rank %d", n, nd);
    }
    bool seen[SI_MAX_DIMS] = {false};
    int64_t od[SI_MAX_DIMS], ist[SI_MAX_DIMS], sst[SI_MAX_DIMS], dst[SI_MAX_DIMS];
    si_strides(nd, x->dims, ist);
    for (int k = 0; k < nd; k++) {
        if (perm[k] < 0 || perm[k] >= nd || seen[perm[k]]) return ocl_err(p, SI_ERR_INVALID_ARG, "perm is not a permutation");
        seen[perm[k]] = true;
        od[k] = x->dims[perm[k]];
        sst[k] = ist[perm[k]];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    si_strides(nd, od, dst);
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), nd, od, sst, dst, 0, 0);
}

static si_result plan_concat(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    if (p->n_in < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "no inputs");
    if ((s = ocl_max_outputs(p, 1))) return s;
    for (int k = 0; k < p->n_in; k++)
        if ((s = ocl_need_f32(p, k))) return s;
    const ocl_desc *x0 = &p->in[0];
    int nd = x0->ndim, axis;
    if (!si_node_attr(p->node, "axis")) return ocl_err(p, SI_ERR_INVALID_ARG, "attribute axis is missing");
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 0), nd, &axis))) return s;
    int64_t od[SI_MAX_DIMS];
    memcpy(od, x0->dims, sizeof od);
    od[axis] = 0;
    for (int k = 0; k < p->n_in; k++) {
        const ocl_desc *x = &p->in[k];
        if (x->ndim != nd) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d has rank %d, input 0 has %d", k, x->ndim, nd);
        for (int i = 0; i < nd; i++)
            if (i != axis && x->dims[i] != x0->dims[i]) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d differs in dimension %d", k, i);
        od[axis] += x->dims[axis];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t outer = si_shape_count(axis, od), inner = si_shape_count(nd - axis - 1, od + axis + 1), off = 0;
    for (int k = 0; k < p->n_in; k++) {
        int64_t len = p->in[k].dims[axis] * inner;
        int64_t dims[2] = {outer, len}, sst[2] = {len, 1}, dst[2] = {od[axis] * inner, 1};
        if ((s = emit_copy(p, arg_val(p->in[k].vid), arg_val(p->out[0].vid), 2, dims, sst, dst, 0, off))) return s;
        off += len;
    }
    return SI_OK;
}

static si_result plan_split(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 0), x->ndim, &axis))) return s;
    int64_t sizes[OCL_MAX_IO];
    int n = -1, nout = p->n_out;
    if (p->node->opset < 13) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, "split", sizes, OCL_MAX_IO, &n))) return s;
    } else {
        if ((s = ocl_max_inputs(p, 2))) return s;
        if (has_in(p, 1) && (s = ocl_const_ints(p, 1, sizes, OCL_MAX_IO, &n))) return s;
    }
    int64_t d = x->dims[axis];
    if (n < 0) {
        int64_t num = p->node->opset >= 18 ? si_attr_int(p->node, "num_outputs", nout) : nout;
        if (num != nout || nout < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "num_outputs %lld for %d outputs", (long long)num, nout);
        if (p->node->opset >= 18 && si_node_attr(p->node, "num_outputs")) {
            int64_t chunk = (d + nout - 1) / nout;
            for (int k = 0; k < nout; k++) sizes[k] = SI_MAX(0, SI_MIN(chunk, d - chunk * k));
        } else {
            if (d % nout) return ocl_err(p, SI_ERR_INVALID_ARG, "dimension %lld does not split into %d equal parts", (long long)d, nout);
            for (int k = 0; k < nout; k++) sizes[k] = d / nout;
        }
    } else {
        int64_t sum = 0;
        if (n != nout) return ocl_err(p, SI_ERR_INVALID_ARG, "split has %d sizes for %d outputs", n, nout);
        for (int k = 0; k < n; k++) sum += sizes[k];
        if (sum != d) return ocl_err(p, SI_ERR_INVALID_ARG, "split sizes add up to %lld, not %lld", (long long)sum, (long long)d);
    }
    int64_t outer = si_shape_count(axis, x->dims), inner = si_shape_count(x->ndim - axis - 1, x->dims + axis + 1), off = 0;
    for (int k = 0; k < nout; k++) {
        int64_t od[SI_MAX_DIMS];
        memcpy(od, x->dims, sizeof od);
        od[axis] = sizes[k];
        if ((s = ocl_set_out(p, k, x->ndim, od))) return s;
        if (has_out(p, k)) {
            int64_t len = sizes[k] * inner;
            int64_t dims[2] = {outer, len}, sst[2] = {d * inner, 1}, dst[2] = {len, 1};
            if ((s = emit_copy(p, arg_val(x->vid), arg_val(p->out[k].vid), 2, dims, sst, dst, off, 0))) return s;
        }
        off += sizes[k] * inner;
    }
    return SI_OK;
}

static si_result plan_slice(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim;
    int64_t starts[SI_MAX_DIMS], ends[SI_MAX_DIMS], axes[SI_MAX_DIMS], steps[SI_MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    if (p->node->opset < 10) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, "starts", starts, SI_MAX_DIMS, &ns)) || (s = ocl_attr_ints(p, "ends", ends, SI_MAX_DIMS, &ne)) ||
            (s = ocl_attr_ints(p, "axes", axes, SI_MAX_DIMS, &na)))
            return s;
    } else {
        if ((s = ocl_max_inputs(p, 5)) || (s = ocl_need_in(p, 1)) || (s = ocl_need_in(p, 2))) return s;
        if ((s = ocl_const_ints(p, 1, starts, SI_MAX_DIMS, &ns)) || (s = ocl_const_ints(p, 2, ends, SI_MAX_DIMS, &ne))) return s;
        if (has_in(p, 3) && (s = ocl_const_ints(p, 3, axes, SI_MAX_DIMS, &na))) return s;
        if (has_in(p, 4) && (s = ocl_const_ints(p, 4, steps, SI_MAX_DIMS, &nst))) return s;
    }
    if (ns < 0 || ne != ns) return ocl_err(p, SI_ERR_INVALID_ARG, "starts and ends differ in length");
    if (na >= 0 && na != ns) return ocl_err(p, SI_ERR_INVALID_ARG, "axes has %d values for %d starts", na, ns);
    if (nst >= 0 && nst != ns) return ocl_err(p, SI_ERR_INVALID_ARG, "steps has %d values for %d starts", nst, ns);
    int64_t st0[SI_MAX_DIMS], step[SI_MAX_DIMS], od[SI_MAX_DIMS];
    bool seen[SI_MAX_DIMS] = {false};
    for (int k = 0; k < nd; k++) {
        st0[k] = 0;
        step[k] = 1;
        od[k] = x->dims[k];
    }
    for (int i = 0; i < ns; i++) {
        int a;
        if ((s = ocl_norm_axis(p, na >= 0 ? axes[i] : i, nd, &a))) return s;
        if (seen[a]) return ocl_err(p, SI_ERR_INVALID_ARG, "axis %d appears twice", a);
        seen[a] = true;
        int64_t d = x->dims[a], b = starts[i], e = ends[i], t = nst >= 0 ? steps[i] : 1;
        if (t == 0) return ocl_err(p, SI_ERR_INVALID_ARG, "step 0");
        if (b < 0) b = b < -d ? 0 : b + d;
        if (e < 0) e = e < -d ? -1 : e + d;
        int64_t cnt;
        if (t > 0) {
            b = SI_MIN(b, d);
            e = SI_MAX((int64_t)0, SI_MIN(e, d));
            cnt = e > b ? (e - b + t - 1) / t : 0;
        } else {
            if (ends[i] < -d) e = -1;
            b = SI_MIN(b, d - 1);
            e = SI_MIN(e, d - 1);
            cnt = b > e ? (b - e + (-t) - 1) / (-t) : 0;
        }
        if (cnt < 0) cnt = 0;
        st0[a] = cnt ? b : 0;
        step[a] = t;
        od[a] = cnt;
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t ist[SI_MAX_DIMS], sst[SI_MAX_DIMS], dst[SI_MAX_DIMS], soff = 0;
    si_strides(nd, x->dims, ist);
    si_strides(nd, od, dst);
    for (int k = 0; k < nd; k++) {
        soff += st0[k] * ist[k];
        sst[k] = ist[k] * step[k];
    }
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), nd, od, sst, dst, soff, 0);
}

static si_result plan_expand(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t sh[SI_MAX_DIMS], od[SI_MAX_DIMS];
    int n, nd;
    if ((s = ocl_const_ints(p, 1, sh, SI_MAX_DIMS, &n))) return s;
    if ((s = ocl_bcast(p, x->ndim, x->dims, n, sh, &nd, od))) return s;
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t sst[SI_MAX_DIMS], dst[SI_MAX_DIMS];
    si_broadcast_strides(x->ndim, x->dims, nd, od, sst);
    si_strides(nd, od, dst);
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), nd, od, sst, dst, 0, 0);
}

static si_result plan_tile(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim, n;
    int64_t rep[SI_MAX_DIMS];
    if ((s = ocl_const_ints(p, 1, rep, SI_MAX_DIMS, &n))) return s;
    if (n != nd) return ocl_err(p, SI_ERR_INVALID_ARG, "repeats has %d values for rank %d", n, nd);
    int64_t od[SI_MAX_DIMS], ist[SI_MAX_DIMS], ost[SI_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        if (rep[k] < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "negative repeat");
        od[k] = x->dims[k] * rep[k];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    /* view the output as [rep0, in0, rep1, in1, ...]: the repeat dims read the input with stride 0 */
    si_strides(nd, x->dims, ist);
    si_strides(nd, od, ost);
    int64_t dims[SI_MAX_DIMS * 2], sst[SI_MAX_DIMS * 2], dst[SI_MAX_DIMS * 2];
    for (int k = 0; k < nd; k++) {
        dims[2 * k] = rep[k];
        dims[2 * k + 1] = x->dims[k];
        sst[2 * k] = 0;
        sst[2 * k + 1] = ist[k];
        dst[2 * k] = x->dims[k] * ost[k];
        dst[2 * k + 1] = ost[k];
    }
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), 2 * nd, dims, sst, dst, 0, 0);
}

static si_result plan_pad(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim, n, na = -1;
    int64_t pads[2 * SI_MAX_DIMS], axes[SI_MAX_DIMS];
    float value = 0;
    if (p->node->opset < 11) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, p->node->opset < 2 ? "paddings" : "pads", pads, 2 * SI_MAX_DIMS, &n))) return s;
        value = si_attr_float(p->node, "value", 0.0f);
    } else {
        if ((s = ocl_max_inputs(p, 4)) || (s = ocl_need_in(p, 1)) || (s = ocl_const_ints(p, 1, pads, 2 * SI_MAX_DIMS, &n))) return s;
        if (has_in(p, 2) && dcount(&p->in[2]) > 0 && (s = ocl_const_float(p, 2, &value))) return s;
        if (has_in(p, 3) && (s = ocl_const_ints(p, 3, axes, SI_MAX_DIMS, &na))) return s;
    }
    const char *mode = si_attr_str(p->node, "mode", "constant");
    int mcode = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2 : !strcmp(mode, "wrap") ? 3 : -1;
    if (mcode < 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    int64_t pb[SI_MAX_DIMS] = {0}, pe[SI_MAX_DIMS] = {0};
    int nax = na >= 0 ? na : nd;
    if (n != 2 * nax) return ocl_err(p, SI_ERR_INVALID_ARG, "pads has %d values for %d axes", n, nax);
    for (int i = 0; i < nax; i++) {
        int a = i;
        if (na >= 0 && (s = ocl_norm_axis(p, axes[i], nd, &a))) return s;
        pb[a] = pads[i];
        pe[a] = pads[nax + i];
    }
    int64_t od[SI_MAX_DIMS], xst[SI_MAX_DIMS];
    si_strides(nd, x->dims, xst);
    int meta[2 + 5 * SI_MAX_DIMS];
    meta[0] = nd;
    meta[1] = mcode;
    for (int k = 0; k < nd; k++) {
        od[k] = x->dims[k] + pb[k] + pe[k];
        if (od[k] < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "pads remove more than dimension %d holds", k);
        /* negative pads crop: the kept input is [lo, lo + len) */
        int64_t lo = SI_MAX((int64_t)0, -pb[k]), len = x->dims[k] - lo - SI_MAX((int64_t)0, -pe[k]);
        if (mcode && len <= 0 && od[k] > 0) return ocl_err(p, SI_ERR_INVALID_ARG, "mode '%s' cannot pad an empty dimension %d", mode, k);
        meta[2 + k] = (int)od[k];
        meta[2 + nd + k] = (int)SI_MAX(len, (int64_t)0);
        meta[2 + 2 * nd + k] = (int)SI_MAX(pb[k], (int64_t)0);
        meta[2 + 3 * nd + k] = (int)lo;
        meta[2 + 4 * nd + k] = (int)xst[k];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int mid;
    if ((s = ocl_meta(p, meta, 2 + 5 * nd, &mid))) return s;
    return OCL_EMIT_1D(p, "pad_nd", si_shape_count(nd, od), arg_val(x->vid), arg_val(p->out[0].vid), arg_int(si_shape_count(nd, od)), arg_meta(mid),
                       arg_flt(value));
}

/* Gather with float32 data and int32/int64 indices (constants, or model inputs checked before each run). */
static si_result plan_gather(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0], *ix = &p->in[1];
    if ((s = ocl_need_type2(p, 1, SI_I32, SI_I64))) return s;
    if (x->ndim < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "data must have rank 1 or more");
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 0), x->ndim, &axis))) return s;
    int64_t od[SI_MAX_DIMS];
    int nd = si_gather_dims(x->ndim, x->dims, axis, ix->ndim, ix->dims, od);
    if (nd > SI_MAX_DIMS) return ocl_err(p, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    int64_t len = x->dims[axis], nidx = dcount(ix), inner = si_shape_count(x->ndim - axis - 1, x->dims + axis + 1);
    if (nidx > INT_MAX) return ocl_err(p, SI_ERR_UNSUPPORTED, "too many indices");
    if (ix->cval) {
        for (int64_t i = 0; i < nidx; i++) {
            int64_t k = si_load_i64(ix->cval->dtype, ix->cval->data, i);
            if (k < -len || k >= len) return ocl_err(p, SI_ERR_INVALID_ARG, "index %lld is out of range for a dimension of %lld", (long long)k, (long long)len);
        }
    } else if ((s = ocl_index_check(p, 1, len))) {
        return s;
    }
    if (!has_out(p, 0)) return SI_OK;
    return OCL_EMIT_1D(p, ix->dtype == SI_I64 ? "gather_i64" : "gather_i32", dcount(&p->out[0]), arg_val(x->vid), arg_val(ix->vid),
                       arg_val(p->out[0].vid), arg_int(dcount(&p->out[0])), arg_int(nidx), arg_int(len), arg_int(inner));
}

// --- Resize / Upsample ------------------------------------------------------------------------------------------
/* The geometry and the taps are REF's (ops/resize.c: si_resize_prepare, si_resize_taps); only the weighted sums
 * run on the device. */

/* Resize/Upsample geometry, read from this node's constants; scales, sizes and roi must be constants here. */
static si_result resize_prep(ocl_plan *p, si_resize *q) {
    const si_resize_form form = si_resize_form_of(p->node);
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1)) || (s = ocl_max_inputs(p, form == SI_RESIZE_FULL ? 4 : 2))) return s;
    si_tensor desc[OCL_MAX_IO];
    const si_tensor *ins[OCL_MAX_IO];
    for (int k = 0; k < p->n_in; k++) {
        ins[k] = NULL;
        if (!has_in(p, k)) continue;
        if (p->in[k].cval) { ins[k] = p->in[k].cval; continue; }
        memset(&desc[k], 0, sizeof desc[k]);
        desc[k].dtype = p->in[k].dtype;
        desc[k].ndim = p->in[k].ndim < 0 ? 0 : p->in[k].ndim;
        memcpy(desc[k].dims, p->in[k].dims, sizeof desc[k].dims);
        desc[k].nbytes = (size_t)dcount(&p->in[k]) * si_dtype_size(desc[k].dtype);
        ins[k] = &desc[k];
    }
    si_kctx c = {.node = p->node, .opset = p->node->opset, .n_in = p->n_in, .in = ins, .n_out = 0, .out = NULL,
                 .partial = true}; /* values may be missing here: they are refused below */
    s = si_resize_prepare(&c, form, q);
    if (!s && !q->complete)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "scales, sizes and roi must be constants");
    return s;
}

/* Taps of axis d into tab (o * (1 + 2 * nt) ints per output coordinate: outside flag, then index and float
 * weight bits per tap); returns nt. */
static int64_t resize_taps(const si_resize *q, int d, int *tab, bool count_only) {
    const int64_t nt = si_resize_ntaps(q, d);
    if (count_only || nt > 64) return nt;
    int64_t idx[64];
    double w[64];
    for (int64_t o = 0; o < q->out[d]; o++) {
        int *e = tab + o * (1 + 2 * nt);
        bool outside;
        si_resize_taps(q, d, o, idx, w, &outside);
        e[0] = outside;
        for (int64_t k = 0; k < nt; k++) {
            e[1 + 2 * k] = (int)idx[k];
            e[2 + 2 * k] = f2bits((float)w[k]);
        }
    }
    return nt;
}

static si_result plan_resize(ocl_plan *p, const void *arg) {
    (void)arg;
    si_resize q;
    si_result s = resize_prep(p, &q);
    if (s) return s;
    const ocl_desc *x = &p->in[0];
    int r = q.rank;
    if ((s = ocl_set_out(p, 0, r, q.out))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t n = dcount(&p->out[0]);
    if (n == 0) return SI_OK;
    if (dcount(x) == 0) return ocl_err(p, SI_ERR_INVALID_ARG, "cannot resize an empty input to a non-empty output");
    int64_t nts[SI_MAX_DIMS], total = 0;
    for (int d = 0; d < r; d++) {
        nts[d] = resize_taps(&q, d, NULL, true);
        if (nts[d] > 64) return ocl_err(p, SI_ERR_UNSUPPORTED, "%lld interpolation taps per axis are too many", (long long)nts[d]);
        total += q.out[d] * (1 + 2 * nts[d]);
    }
    if (total > (1 << 24)) return ocl_err(p, SI_ERR_UNSUPPORTED, "interpolation tables too large");
    if (!p->build) return SI_OK; /* the tables are only built when compiling */
    int *tab = si_malloc(sizeof(int) * (size_t)(total + 1));
    if (!tab) return si_err(SI_ERR_NO_MEM, "out of memory");
    int meta[2 + 5 * SI_MAX_DIMS];
    int64_t xs[SI_MAX_DIMS], off = 0;
    si_strides(r, x->dims, xs);
    meta[0] = r;
    for (int d = 0; d < r; d++) {
        resize_taps(&q, d, tab + off, false);
        meta[1 + d] = (int)q.out[d];
        meta[1 + r + d] = (int)xs[d];
        meta[1 + 3 * r + d] = (int)nts[d];
        meta[1 + 4 * r + d] = (int)off;
        off += q.out[d] * (1 + 2 * nts[d]);
    }
    for (int d = 0; d < r; d++) meta[1 + 2 * r + d] = 0;
    meta[1 + 5 * r] = f2bits(q.extrap);
    int mid, tid;
    s = ocl_meta(p, meta, 2 + 5 * r, &mid);
    if (!s) s = ocl_meta(p, tab, (int)total, &tid);
    si_free(tab);
    if (s) return s;
    return OCL_EMIT_1D(p, "resize", n, arg_val(x->vid), arg_val(p->out[0].vid), arg_int(n), arg_meta(mid), arg_meta(tid));
}

/* Shape and Size: known at compile time, so their outputs become constants of the compiled model. */
static si_result plan_shape(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t vals[SI_MAX_DIMS], n = 0;
    if (si_node_is(p->node, SI_OP_SIZE)) {
        vals[n++] = dcount(x);
    } else {
        int64_t b = si_attr_int(p->node, "start", 0), e = si_attr_int(p->node, "end", x->ndim);
        if (b < 0) b += x->ndim;
        if (e < 0) e += x->ndim;
        b = SI_MAX((int64_t)0, SI_MIN(b, (int64_t)x->ndim));
        e = SI_MAX((int64_t)0, SI_MIN(e, (int64_t)x->ndim));
        for (int64_t i = b; i < e; i++) vals[n++] = x->dims[i];
    }
    bool size = si_node_is(p->node, SI_OP_SIZE);
    if ((s = ocl_set_out(p, 0, size ? 0 : 1, &n))) return s;
    p->out[0].dtype = SI_I64;
    if (!has_out(p, 0)) return SI_OK;
    return ocl_const_out(p, 0, vals, (int)n);
}

// --- dispatch -----------------------------------------------------------------------------------------------

/* The planner of each op the OCL device runs, with its argument and first checks; an empty entry: not supported. */
#define UNARY(kernel, par) {plan_unary, &(const unary_def){kernel, par}, {"f", 0, 0}}
#define REDUCE(code, axes_input_opset) {ocl_plan_reduce, &(const reduce_def){code, axes_input_opset}, {"f", 2, 1}}

static const ocl_planner planners[SI_OP_COUNT] = {
    [SI_OP_ADD] = {plan_binary, "b_add", {"ff", 2, 1}},
    [SI_OP_SUB] = {plan_binary, "b_sub", {"ff", 2, 1}},
    [SI_OP_MUL] = {plan_binary, "b_mul", {"ff", 2, 1}},
    [SI_OP_DIV] = {plan_binary, "b_div", {"ff", 2, 1}},
    [SI_OP_POW] = {plan_binary, "b_pow", {"ff", 2, 1}},
    [SI_OP_PRELU] = {plan_prelu, NULL, {"ff", 2, 1}},
    [SI_OP_SHAPE] = {plan_shape, NULL, {"i", 1, 1}},
    [SI_OP_SIZE] = {plan_shape, NULL, {"i", 1, 1}},
    [SI_OP_SUM] = {plan_variadic, "b_add", {NULL, 0, 0}},
    [SI_OP_MEAN] = {plan_variadic, "b_add", {NULL, 0, 0}},
    [SI_OP_MAX] = {plan_variadic, "b_max", {NULL, 0, 0}},
    [SI_OP_MIN] = {plan_variadic, "b_min", {NULL, 0, 0}},
    [SI_OP_IDENTITY] = {plan_identity, NULL, {"f", 1, 1}},
    [SI_OP_DROPOUT] = {plan_dropout, NULL, {"f", 3, 2}},
    [SI_OP_LRN] = {plan_lrn, NULL, {"f", 1, 1}},
    [SI_OP_CAST] = {plan_cast, NULL, {"i", 0, 1}},
    [SI_OP_CAST_LIKE] = {plan_cast, NULL, {"i", 0, 1}},
    [SI_OP_MATMUL] = {ocl_plan_matmul, NULL, {"ff", 2, 1}},
    [SI_OP_GEMM] = {ocl_plan_gemm, NULL, {"ff", 3, 1}},
    [SI_OP_CONV] = {ocl_plan_conv, NULL, {"ff", 3, 1}},
    [SI_OP_CONV_TRANSPOSE] = {ocl_plan_conv_transpose, NULL, {"ff", 3, 1}},
    [SI_OP_GATHER] = {plan_gather, NULL, {"fi", 2, 1}},
    [SI_OP_MAX_POOL] = {ocl_plan_pool, NULL, {"f", 1, 0}},
    [SI_OP_AVERAGE_POOL] = {ocl_plan_pool, NULL, {"f", 1, 0}},
    [SI_OP_GLOBAL_AVERAGE_POOL] = {ocl_plan_global_pool, NULL, {"f", 1, 1}},
    [SI_OP_GLOBAL_MAX_POOL] = {ocl_plan_global_pool, NULL, {"f", 1, 1}},
    [SI_OP_SOFTMAX] = {ocl_plan_softmax, NULL, {"f", 1, 1}},
    [SI_OP_LOG_SOFTMAX] = {ocl_plan_softmax, NULL, {"f", 1, 1}},
    [SI_OP_BATCH_NORMALIZATION] = {ocl_plan_batchnorm, NULL, {NULL, 0, 0}},
    [SI_OP_LAYER_NORMALIZATION] = {ocl_plan_layernorm, NULL, {"ff", 0, 0}},
    [SI_OP_RMS_NORMALIZATION] = {ocl_plan_layernorm, NULL, {"ff", 0, 0}},
    [SI_OP_INSTANCE_NORMALIZATION] = {ocl_plan_groupnorm, NULL, {"fff", 3, 1}},
    [SI_OP_GROUP_NORMALIZATION] = {ocl_plan_groupnorm, NULL, {"fff", 3, 1}},
    [SI_OP_RESHAPE] = {plan_reshape, NULL, {"f", 0, 1}},
    [SI_OP_FLATTEN] = {plan_flatten, NULL, {"f", 1, 1}},
    [SI_OP_SQUEEZE] = {plan_squeeze, NULL, {"f", 0, 1}},
    [SI_OP_UNSQUEEZE] = {plan_unsqueeze, NULL, {"f", 0, 1}},
    [SI_OP_TRANSPOSE] = {plan_transpose, NULL, {"f", 1, 1}},
    [SI_OP_CONCAT] = {plan_concat, NULL, {NULL, 0, 0}},
    [SI_OP_SPLIT] = {plan_split, NULL, {"f", 0, 0}},
    [SI_OP_SLICE] = {plan_slice, NULL, {"f", 0, 1}},
    [SI_OP_EXPAND] = {plan_expand, NULL, {"fi", 2, 1}},
    [SI_OP_TILE] = {plan_tile, NULL, {"fi", 2, 1}},
    [SI_OP_PAD] = {plan_pad, NULL, {"f", 0, 1}},
    [SI_OP_RESIZE] = {plan_resize, NULL, {NULL, 0, 0}},
    [SI_OP_UPSAMPLE] = {plan_resize, NULL, {NULL, 0, 0}},
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

/* A planner's first checks (ocl_io). */
static si_result check_io(ocl_plan *p, const ocl_io *io) {
    si_result s = SI_OK;
    for (int k = 0; io->need && io->need[k] && !s; k++) s = io->need[k] == 'f' ? ocl_need_f32(p, k) : ocl_need_in(p, k);
    if (!s && io->max_in) s = ocl_max_inputs(p, io->max_in);
    if (!s && io->max_out) s = ocl_max_outputs(p, io->max_out);
    return s;
}

si_result ocl_plan_node(ocl_plan *p) {
    const si_node *n = p->node;
    const char *dom = n->domain ? n->domain : "";
    const ocl_planner *pl = ocl_llm_planner(n);
    if (!pl) {
        if (dom[0] && strcmp(dom, "ai.onnx"))
            return si_err(SI_ERR_UNSUPPORTED, "op %s.%s (node '%s') is not supported", dom, n->op_type, n->name);
        pl = n->op ? &planners[n->op->id] : NULL;
    }
    if (!pl || !pl->fn) return si_err(SI_ERR_UNSUPPORTED, "op %s (node '%s') is not supported", n->op_type, n->name);
    si_result s = check_io(p, &pl->io);
    return s ? s : pl->fn(p, pl->arg);
}
