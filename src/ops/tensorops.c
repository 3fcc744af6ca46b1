/*
 * tensorops.c — reference kernels for CenterCropPad (crop or zero-pad around the centre), TensorScatter (write an
 * update into a cache at per-batch positions, linear or circular) and SwiGLU (a * sigmoid(alpha * a) * b).
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

// --- CenterCropPad ----------------------------------------------------------------------------------------

/* The output shape: input dims, with the axes named by attribute `axes` (all of them by default) set to the
 * values of input 'shape'. *known false at compile time while those values are not known. */
static si_result ccp_shape(si_kctx *c, int64_t *od, bool *known) {
    si_result s = si_need_input(c, 0, false);
    if (s || (s = si_need_input(c, 1, false))) return s;
    const si_tensor *x = c->in[0], *sh = c->in[1];
    if ((s = si_check_type(c, sh->dtype, SI_T(SI_I32) | SI_T(SI_I64), "input 'shape'"))) return s;
    const int r = x->ndim;
    int64_t axes[SI_MAX_DIMS];
    int na = 0;
    if ((s = si_attr_ints_buf(c, "axes", axes, SI_MAX_DIMS, &na))) return s;
    if (na < 0)
        for (na = 0; na < r; na++) axes[na] = na;
    bool mask[SI_MAX_DIMS];
    if ((s = si_axes_mask(c, axes, na, r, mask))) return s;
    for (int d = 0; d < r; d++) od[d] = x->dims[d];
    *known = si_has_values(sh);
    if (!*known) return SI_OK;
    int64_t v[SI_MAX_DIMS];
    int nv = 0;
    if ((s = si_tensor_ints(c, sh, "input 'shape'", v, SI_MAX_DIMS, &nv))) return s;
    if (nv != na)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'shape' has %d values for %d axes", nv, na);
    for (int i = 0; i < na; i++) {
        if (v[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'shape' value %d is negative (%lld)", i, (long long)v[i]);
        int a = 0;
        if ((s = si_axis(c, axes[i], r, &a))) return s;
        od[a] = v[i];
    }
    return SI_OK;
}

static si_result ccp_infer(si_kctx *c) {
    int64_t od[SI_MAX_DIMS];
    bool known = false;
    si_result s = ccp_shape(c, od, &known);
    if (s) return s;
    if (!known) return si_set_out_unknown(c, 0, c->in[0]->dtype, c->in[0]->ndim);
    return si_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, od);
}

static si_result ccp_run(si_kctx *c) {
    int64_t od[SI_MAX_DIMS];
    bool known = false;
    si_result s = ccp_shape(c, od, &known);
    if (s || (s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    si_tensor *y = si_out(c, 0);
    const int r = x->ndim;
    if (!y || si_count(y) == 0) return SI_OK;
    /* per axis: output index o reads input index o + shift when that lies inside the input */
    int64_t shift[SI_MAX_DIMS], xs[SI_MAX_DIMS], idx[SI_MAX_DIMS] = {0};
    for (int d = 0; d < r; d++)
        shift[d] = x->dims[d] >= od[d] ? (x->dims[d] - od[d]) / 2 : -((od[d] - x->dims[d]) / 2);
    si_strides(r, x->dims, xs);
    const size_t es = si_esize(x);
    int64_t k = 0;
    do {
        int64_t off = 0;
        bool in = true;
        for (int d = 0; d < r && in; d++) {
            int64_t i = idx[d] + shift[d];
            in = i >= 0 && i < x->dims[d];
            off += i * xs[d];
        }
        if (in) memcpy((char *)y->data + (size_t)k * es, (const char *)x->data + (size_t)off * es, es);
        k++;
    } while (si_next_index(idx, od, r));
    return SI_OK;
}

// --- TensorScatter ----------------------------------------------------------------------------------------

typedef struct ts_plan {
    int axis;
    bool circular;
} ts_plan;

static si_result ts_plan_of(si_kctx *c, ts_plan *p) {
    si_result s = si_need_input(c, 0, false);
    if (s || (s = si_need_input(c, 1, false))) return s;
    const si_tensor *x = c->in[0], *u = c->in[1], *wi = si_in(c, 2);
    if ((s = si_same_type(c, x, u, "input 'update'"))) return s;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'past_cache' must have rank >= 2, got %d", x->ndim);
    if (u->ndim != x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'update' has rank %d, past_cache has %d", u->ndim, x->ndim);
    if ((s = si_axis(c, si_attr_int(c->node, "axis", -2), x->ndim, &p->axis))) return s;
    if (p->axis == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'axis' must not be the batch axis 0");
    static const char *const modes[] = {"linear", "circular"};
    int m = 0;
    if ((s = si_attr_choice(c, "mode", "linear", modes, 2, &m))) return s;
    p->circular = m == 1;
    for (int d = 0; d < x->ndim; d++) {
        if (!si_dim_known(x->dims[d]) || !si_dim_known(u->dims[d])) continue;
        if (d == p->axis ? u->dims[d] > x->dims[d] : u->dims[d] != x->dims[d])
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'update' dimension %d is %lld, past_cache has %lld", d,
                             (long long)u->dims[d], (long long)x->dims[d]);
    }
    if (wi) {
        if ((s = si_check_type(c, wi->dtype, SI_T(SI_I32) | SI_T(SI_I64), "input 'write_indices'"))) return s;
        if (wi->ndim != 1 || (si_dim_known(wi->dims[0]) && si_dim_known(x->dims[0]) && wi->dims[0] != x->dims[0]))
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'write_indices' must have shape (batch = %lld)",
                             (long long)x->dims[0]);
    }
    return SI_OK;
}

static si_result ts_infer(si_kctx *c) {
    ts_plan p;
    si_result s = ts_plan_of(c, &p);
    return s ? s : si_same_as_input(c, 0, 0);
}

static si_result ts_run(si_kctx *c) {
    ts_plan p;
    si_result s = ts_plan_of(c, &p);
    if (s || (s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0], *u = c->in[1], *wt = si_in(c, 2);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    si_copy_data(y, x);
    const int64_t batch = x->dims[0], max_seq = x->dims[p.axis], seq = u->dims[p.axis];
    const int64_t mid = si_prod(x->dims, 1, p.axis), inner = si_prod(x->dims, p.axis + 1, x->ndim);
    if (si_count(u) == 0) return SI_OK;
    int64_t *wi = wt ? si_tensor_to_i64(wt) : NULL;
    if (wt && !wi) return si_op_nomem(c);
    const size_t es = si_esize(x), row = (size_t)inner * es;
    for (int64_t b = 0; b < batch && !s; b++) {
        const int64_t w0 = wi ? wi[b] : 0;
        if (w0 < 0 || w0 >= max_seq || (!p.circular && w0 + seq > max_seq)) {
            s = si_op_err(c, SI_ERR_INVALID_ARG, "write_indices[%lld] = %lld: %lld updates do not fit in %lld positions (mode %s)",
                          (long long)b, (long long)w0, (long long)seq, (long long)max_seq, p.circular ? "circular" : "linear");
            break;
        }
        for (int64_t m = 0; m < mid; m++)
            for (int64_t q = 0; q < seq; q++) {
                const int64_t pos = (w0 + q) % max_seq;
                memcpy((char *)y->data + (size_t)(((b * mid + m) * max_seq + pos) * inner) * es,
                       (const char *)u->data + (size_t)(((b * mid + m) * seq + q) * inner) * es, row);
            }
    }
    si_free(wi);
    return s;
}

// --- SwiGLU -----------------------------------------------------------------------------------------------

static si_result swiglu_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s || (s = si_need_input(c, 1, false))) return s;
    const si_tensor *a = c->in[0], *b = c->in[1];
    if ((s = si_check_type(c, a->dtype, SI_T_FLOATS, "input 'a'")) || (s = si_same_type(c, a, b, "input 'b'"))) return s;
    int n = 0;
    int64_t od[SI_MAX_DIMS];
    if ((s = si_broadcast_shape(c, a->ndim, a->dims, b->ndim, b->dims, &n, od))) return s;
    return si_set_out(c, 0, a->dtype, n, od);
}

static si_result swiglu_run(si_kctx *c) {
    si_result s = swiglu_infer(c);
    if (s || (s = si_run_ready(c))) return s;
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    const double alpha = si_attr_float(c->node, "alpha", 1.0f);
    double *a = si_broadcast_to_f64(c->in[0], y->ndim, y->dims), *b = si_broadcast_to_f64(c->in[1], y->ndim, y->dims);
    if (!a || !b) {
        si_free(a);
        si_free(b);
        return si_op_nomem(c);
    }
    const int64_t n = si_count(y);
    for (int64_t i = 0; i < n; i++) a[i] = a[i] / (1.0 + exp(-alpha * a[i])) * b[i];
    si_tensor_from_f64(y, a);
    si_free(a);
    si_free(b);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(CENTER_CROP_PAD, 0, ccp_infer, ccp_run),
    SI_OP_DEF(TENSOR_SCATTER, 0, ts_infer, ts_run),
    SI_OP_DEF(SWIGLU, SI_T_FLOATS, swiglu_infer, swiglu_run),
};

SI_OP_FAMILY_PARTIAL(tensorops, defs);
