/*
 * ocl_eltwise.c — the OCL planners of the element-wise ops: unary kernels (one per op, attributes as kernel
 * parameters), binary ops with broadcasting, PRelu, the variadic Sum/Mean/Max/Min, Cast, Identity, Dropout
 * and LRN.
 */
#include "device/ocl/ocl_ops.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

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
        ocl_step stp;
        st_init(&stp, NULL);
        stp.kernel = kernel3_name(k3);
        if (!stp.kernel) return ocl_err(p, SI_ERR_INTERNAL, "no 3-D variant of %s", kernel);
        a_val(&stp, va);
        a_val(&stp, vb);
        a_val(&stp, vy);
        a_meta(&stp, mid);
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
    ocl_step stp;
    st_init(&stp, kernel);
    a_val(&stp, va);
    a_val(&stp, vb);
    a_val(&stp, vy);
    a_int(&stp, n);
    a_meta(&stp, mid);
    a_int(&stp, mode);
    return ocl_emit_1d(p, &stp, n);
}

// --- element-wise -------------------------------------------------------------------------------------------

si_result ocl_plan_unary(ocl_plan *p, const void *arg) {
    const unary_def *d = arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_inputs(p, d->par == P_CLIP ? 3 : 1)) || (s = ocl_max_outputs(p, 1))) return s;
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
        ocl_step st;
        st_init(&st, "u_clip_t");
        a_val(&st, x->vid);
        a_val(&st, lo ? p->in[1].vid : x->vid);
        a_val(&st, hi ? p->in[2].vid : x->vid);
        a_val(&st, p->out[0].vid);
        a_int(&st, dcount(x));
        a_int(&st, (lo ? 1 : 0) | (hi ? 2 : 0));
        return ocl_emit_1d(p, &st, dcount(x));
    }
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    ocl_step st;
    st_init(&st, kernel);
    a_val(&st, x->vid);
    a_val(&st, p->out[0].vid);
    a_int(&st, dcount(x));
    a_flt(&st, a);
    a_flt(&st, b);
    return ocl_emit_1d(p, &st, dcount(x));
}

si_result ocl_plan_identity(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_inputs(p, 1)) || (s = ocl_max_outputs(p, 1))) return s;
    if ((s = ocl_set_out(p, 0, p->in[0].ndim, p->in[0].dims))) return s;
    return ocl_emit_view(p);
}

/* Dropout in inference: Y is a view of X, the optional mask is all true (1.0 before opset 10). Training
 * mode is accepted only with ratio 0 (REF's rule: nothing is dropped). */
si_result ocl_plan_dropout(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_inputs(p, 3)) || (s = ocl_max_outputs(p, 2))) return s;
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
        ocl_step st;
        st_init(&st, b ? "fill_u8" : "fill_f32");
        a_val(&st, p->out[1].vid);
        a_int(&st, dcount(x));
        if (b) a_int(&st, 1);
        else a_flt(&st, 1.0f);
        if ((s = ocl_emit_1d(p, &st, dcount(x)))) return s;
    }
    return ocl_emit_view(p);
}

si_result ocl_plan_lrn(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_inputs(p, 1)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    if (x->ndim < 2) return ocl_err(p, SI_ERR_INVALID_ARG, "X must have rank 2 or more");
    const si_attr *a = si_node_attr(p->node, "size");
    if (!a || a->i < 1 || a->i > INT_MAX) return ocl_err(p, SI_ERR_INVALID_ARG, "attribute size is required and must be positive");
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    ocl_step st;
    st_init(&st, "lrn");
    a_val(&st, x->vid);
    a_val(&st, p->out[0].vid);
    a_int(&st, dcount(x));
    a_int(&st, x->dims[1]);
    a_int(&st, si_shape_count(x->ndim - 2, x->dims + 2));
    a_int(&st, a->i);
    a_flt(&st, si_attr_float(p->node, "alpha", 1e-4f));
    a_flt(&st, si_attr_float(p->node, "beta", 0.75f));
    a_flt(&st, si_attr_float(p->node, "bias", 1.0f));
    return ocl_emit_1d(p, &st, dcount(x));
}

si_result ocl_plan_cast(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_in(p, 0);
    if (s || (s = ocl_max_outputs(p, 1))) return s;
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
    ocl_step st;
    st_init(&st, kernel);
    a_val(&st, p->in[0].vid);
    a_val(&st, p->out[0].vid);
    a_int(&st, dcount(&p->in[0]));
    return ocl_emit_1d(p, &st, dcount(&p->in[0]));
}

/* PRelu: the slope broadcasts to X (one way); before opset 7 a [C] slope is per channel. */
si_result ocl_plan_prelu(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_need_f32(p, 1)) || (s = ocl_max_inputs(p, 2)) || (s = ocl_max_outputs(p, 1))) return s;
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

si_result ocl_plan_binary(ocl_plan *p, const void *arg) {
    const char *kernel = arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_need_f32(p, 1)) || (s = ocl_max_inputs(p, 2)) || (s = ocl_max_outputs(p, 1))) return s;
    int nd;
    int64_t od[SI_MAX_DIMS];
    if ((s = ocl_bcast(p, p->in[0].ndim, p->in[0].dims, p->in[1].ndim, p->in[1].dims, &nd, od))) return s;
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return emit_binary(p, kernel, p->in[0].vid, &p->in[0], p->in[1].vid, &p->in[1], p->out[0].vid, nd, od);
}

/* Sum, Mean, Max, Min over any number of inputs: the first two into the output (both broadcast to the
 * final shape), then the output with each further input in place, then Mean's scale. */
si_result ocl_plan_variadic(ocl_plan *p, const void *arg) {
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
        ocl_step st;
        st_init(&st, "u_scale");
        a_val(&st, vy);
        a_val(&st, vy);
        a_int(&st, si_shape_count(nd, od));
        a_flt(&st, 1.0f / (float)p->n_in);
        a_flt(&st, 0.0f);
        return ocl_emit_1d(p, &st, si_shape_count(nd, od));
    }
    return SI_OK;
}
