/*
 * tensorops.c — reference kernels for CenterCropPad (crop or zero-pad around the centre), TensorScatter (write an
 * update into a cache at per-batch positions, linear or circular), SwiGLU (a * sigmoid(alpha * a) * b), Det
 * (determinants), MaxUnpool (MaxPool's values put back at their indices) and the ai.onnx.ml ops Binarizer and
 * ArrayFeatureExtractor, and TfIdfVectorizer (n-gram counts over integer tokens).
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

// --- CenterCropPad ----------------------------------------------------------------------------------------

/* The output shape: input dims, with the axes named by attribute `axes` (all of them by default) set to the
 * values of input 'shape'. *known false at compile time while those values are not known. */
static si_result ccp_shape(si_kctx *c, int64_t *od, bool *known) {
    si_result s = si_need_inputs(c, 2);
    if (s) return s;
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
    si_result s = si_inputs_typed(c, 2, 2, (const uint32_t[]){0, SI_T_LIKE0}, (const char *const[]){"input 'past_cache'", "input 'update'"});
    if (s) return s;
    const si_tensor *x = c->in[0], *u = c->in[1], *wi = si_in(c, 2);
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

SI_OP_PLANNED(ts_infer, ts_plan, p, ts_plan_of) {
    (void)p;
    return si_same_as_input(c, 0, 0);
}

SI_OP_PLANNED(ts_run, ts_plan, p, ts_plan_of) {
    si_result s = si_run_ready(c);
    if (s) return s;
    const si_tensor *x = c->in[0], *u = c->in[1], *wt = si_in(c, 2);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    si_copy_data(y, x);
    const int64_t batch = x->dims[0], max_seq = x->dims[p->axis], seq = u->dims[p->axis];
    const int64_t mid = si_prod(x->dims, 1, p->axis), inner = si_prod(x->dims, p->axis + 1, x->ndim);
    if (si_count(u) == 0) return SI_OK;
    int64_t *wi = wt ? si_tensor_to_i64(wt) : NULL;
    if (wt && !wi) return si_op_nomem(c);
    const size_t es = si_esize(x), row = (size_t)inner * es;
    for (int64_t b = 0; b < batch && !s; b++) {
        const int64_t w0 = wi ? wi[b] : 0;
        if (w0 < 0 || w0 >= max_seq || (!p->circular && w0 + seq > max_seq)) {
            s = si_op_err(c, SI_ERR_INVALID_ARG, "write_indices[%lld] = %lld: %lld updates do not fit in %lld positions (mode %s)",
                          (long long)b, (long long)w0, (long long)seq, (long long)max_seq, p->circular ? "circular" : "linear");
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
    si_result s = si_inputs_typed(c, 2, 2, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0}, (const char *const[]){"input 'a'", "input 'b'"});
    if (s) return s;
    const si_tensor *a = c->in[0], *b = c->in[1];
    int n = 0;
    int64_t od[SI_MAX_DIMS];
    if ((s = si_broadcast_shape(c, a->ndim, a->dims, b->ndim, b->dims, &n, od))) return s;
    return si_set_out(c, 0, a->dtype, n, od);
}

static si_result swiglu_run(si_kctx *c) {
    si_result s = swiglu_infer(c);
    si_tensor *y;
    if (s || (s = si_run_begin(c, &y)) || !y) return s;
    const double alpha = si_attr_float(c->node, "alpha", 1.0f);
    double *a = si_broadcast_to_f64(c->in[0], y->ndim, y->dims), *b = si_broadcast_to_f64(c->in[1], y->ndim, y->dims);
    if (!a || !b) {
        SI_FREE_ALL(a, b);
        return si_op_nomem(c);
    }
    const int64_t n = si_count(y);
    for (int64_t i = 0; i < n; i++) a[i] = a[i] / (1.0 + exp(-alpha * a[i])) * b[i];
    si_tensor_from_f64(y, a);
    SI_FREE_ALL(a, b);
    return SI_OK;
}

// --- Det --------------------------------------------------------------------------------------------------

static si_result det_infer(si_kctx *c) {
    const si_tensor *x;
    si_result s = si_input0(c, SI_T_FLOATS, "input", &x);
    if (s) return s;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2 ([..., M, M]), got %d", x->ndim);
    const int64_t m = x->dims[x->ndim - 1], m2 = x->dims[x->ndim - 2];
    if (si_dim_known(m) && si_dim_known(m2) && m != m2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input matrices must be square, got %lld x %lld", (long long)m2, (long long)m);
    return si_set_out(c, 0, x->dtype, x->ndim - 2, x->dims);
}

/* Determinants by LU decomposition with partial pivoting. */
static si_result det_run(si_kctx *c) {
    si_result s = det_infer(c);
    si_tensor *yt;
    if (s || (s = si_run_begin(c, &yt)) || !yt) return s;
    const si_tensor *xt = c->in[0];
    const int64_t M = xt->dims[xt->ndim - 1], nb = si_count(yt);
    double *x = si_tensor_to_f64(xt), *y = si_malloc(sizeof(double) * (size_t)nb);
    if (!x || !y) {
        SI_FREE_ALL(x, y);
        return si_op_nomem(c);
    }
    for (int64_t b = 0; b < nb; b++) {
        double *a = x + b * M * M, det = 1.0;
        for (int64_t k = 0; k < M && det != 0; k++) {
            int64_t piv = k;
            for (int64_t i = k + 1; i < M; i++)
                if (fabs(a[i * M + k]) > fabs(a[piv * M + k])) piv = i;
            if (a[piv * M + k] == 0) {
                det = 0;
                break;
            }
            if (piv != k) {
                for (int64_t j = 0; j < M; j++) {
                    const double t = a[k * M + j];
                    a[k * M + j] = a[piv * M + j];
                    a[piv * M + j] = t;
                }
                det = -det;
            }
            det *= a[k * M + k];
            for (int64_t i = k + 1; i < M; i++) {
                const double f = a[i * M + k] / a[k * M + k];
                for (int64_t j = k; j < M; j++) a[i * M + j] -= f * a[k * M + j];
            }
        }
        y[b] = det;
    }
    si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, y);
    return SI_OK;
}

// --- MaxUnpool --------------------------------------------------------------------------------------------

/* Output shape: input 'output_shape' when given, else (in - 1) * stride - pads + kernel per spatial axis (that
 * default shape into *dflt, when not NULL). */
static si_result unpool_shape(si_kctx *c, int64_t *od, bool *known, int64_t *dflt) {
    si_result s = si_need_inputs(c, 2);
    if (s) return s;
    const si_tensor *x = c->in[0], *ix = c->in[1], *os = si_in_nonempty(c, 2);
    if ((s = si_check_type(c, x->dtype, SI_T_FLOATS, "input 'X'")) || (s = si_check_type(c, ix->dtype, SI_T(SI_I64), "input 'I'")))
        return s;
    const int r = x->ndim, nsp = r - 2;
    if (nsp < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'X' must have rank >= 3, got %d", r);
    if (ix->ndim != r) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'I' must have X's rank %d, got %d", r, ix->ndim);
    for (int d = 0; d < r; d++)
        if (si_dim_known(x->dims[d]) && si_dim_known(ix->dims[d]) && x->dims[d] != ix->dims[d])
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'I' dimension %d is %lld, X has %lld", d, (long long)ix->dims[d],
                             (long long)x->dims[d]);
    int64_t k[SI_MAX_DIMS], st[SI_MAX_DIMS], pads[2 * SI_MAX_DIMS];
    int nk = 0;
    if ((s = si_attr_ints_buf(c, "kernel_shape", k, SI_MAX_DIMS, &nk))) return s;
    if (nk != nsp) return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape must have %d values", nsp);
    if ((s = si_attr_ints_n(c, "strides", nsp, 1, st)) || (s = si_attr_ints_n(c, "pads", 2 * nsp, 0, pads))) return s;
    od[0] = x->dims[0];
    od[1] = x->dims[1];
    *known = true;
    for (int d = 0; d < nsp; d++) {
        if (k[d] < 1 || st[d] < 1 || pads[d] < 0 || pads[nsp + d] < 0 || k[d] > INT32_MAX || st[d] > INT32_MAX)
            return si_op_err(c, SI_ERR_INVALID_ARG, "axis %d: kernel %lld, stride %lld or pads out of range", d, (long long)k[d],
                             (long long)st[d]);
        const int64_t in = x->dims[2 + d];
        od[2 + d] = si_dim_known(in) ? (in - 1) * st[d] - pads[d] - pads[nsp + d] + k[d] : SI_DIM_UNKNOWN;
        if (si_dim_known(in) && (in > INT32_MAX || od[2 + d] < 0))
            return si_op_err(c, SI_ERR_INVALID_ARG, "axis %d: the output size is out of range", d);
    }
    if (dflt)
        for (int d = 0; d < r; d++) dflt[d] = od[d];
    if (os) {
        if (!si_has_values(os)) {
            *known = false;
            return SI_OK;
        }
        int64_t v[SI_MAX_DIMS];
        int nv = 0;
        if ((s = si_tensor_ints(c, os, "input 'output_shape'", v, SI_MAX_DIMS, &nv))) return s;
        if (nv != r) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'output_shape' must have %d values, got %d", r, nv);
        for (int d = 0; d < r; d++) {
            if (v[d] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'output_shape' value %d is negative", d);
            if (d < 2 && si_dim_known(od[d]) && v[d] != od[d])
                return si_op_err(c, SI_ERR_INVALID_ARG, "input 'output_shape' dimension %d must be X's %lld", d, (long long)od[d]);
            od[d] = v[d];
        }
    }
    return SI_OK;
}

static si_result unpool_infer(si_kctx *c) {
    int64_t od[SI_MAX_DIMS];
    bool known = false;
    si_result s = unpool_shape(c, od, &known, NULL);
    if (s) return s;
    if (!known) return si_set_out_unknown(c, 0, c->in[0]->dtype, c->in[0]->ndim);
    return si_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, od);
}

/* Y.flat[I[i]] = X[i] (indices as MaxPool gives them: into the whole output of the default shape, batch and
 * channel included); with output_shape, that result is padded with zeros at the end of each axis (or cut). */
static si_result unpool_run(si_kctx *c) {
    si_result s = unpool_infer(c);
    if (s || (s = si_run_ready(c))) return s;
    int64_t od[SI_MAX_DIMS], dd[SI_MAX_DIMS];
    bool known = false;
    if ((s = unpool_shape(c, od, &known, dd))) return s;
    si_tensor *yt = si_out(c, 0);
    const si_tensor *xt = c->in[0];
    const int r = xt->ndim;
    if (!yt || si_count(xt) == 0 || si_count(yt) == 0) return SI_OK;
    const int64_t n = si_count(xt), nd = si_shape_count(r, dd), ny = si_count(yt);
    double *x = si_tensor_to_f64(xt), *u = si_calloc((size_t)(nd > 0 ? nd : 1), sizeof(double));
    double *y = si_calloc((size_t)ny, sizeof(double));
    int64_t *ix = si_tensor_to_i64(c->in[1]);
    if (!x || !u || !y || !ix) s = si_op_nomem(c);
    for (int64_t i = 0; !s && i < n; i++) {
        if (ix[i] < 0 || ix[i] >= nd)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "index %lld at element %lld is outside the unpooled tensor (%lld elements)",
                          (long long)ix[i], (long long)i, (long long)nd);
        else
            u[ix[i]] = x[i];
    }
    if (!s && nd > 0) {
        int64_t idx[SI_MAX_DIMS] = {0}, ys[SI_MAX_DIMS], k = 0;
        si_strides(r, od, ys);
        do {
            int64_t off = 0;
            bool in = true;
            for (int d = 0; d < r && in; d++) {
                in = idx[d] < od[d];
                off += idx[d] * ys[d];
            }
            if (in) y[off] = u[k];
            k++;
        } while (si_next_index(idx, dd, r));
        si_tensor_from_f64(yt, y);
    }
    SI_FREE_ALL(x, u, y, ix);
    return s;
}

// --- ai.onnx.ml: Binarizer, ArrayFeatureExtractor ---------------------------------------------------------

static si_result binarizer_infer(si_kctx *c) {
    const si_tensor *x;
    si_result s = si_input0(c, SI_T_FLOATS | SI_T(SI_I32) | SI_T(SI_I64), "input", &x);
    return s ? s : si_same_as_input(c, 0, 0);
}

static si_result binarizer_run(si_kctx *c) {
    si_result s = binarizer_infer(c);
    si_tensor *y;
    if (s || (s = si_run_begin(c, &y)) || !y) return s;
    const double th = si_attr_float(c->node, "threshold", 0.0f);
    double *v = si_tensor_to_f64(c->in[0]);
    if (!v) return si_op_nomem(c);
    for (int64_t i = 0; i < si_count(y); i++) v[i] = v[i] > th ? 1.0 : isnan(v[i]) ? v[i] : 0.0;
    si_tensor_from_f64(y, v);
    si_free(v);
    return SI_OK;
}

/* Z = X[..., Y] along the last axis (a 1-D X is read as [1, C]). */
static si_result afe_infer(si_kctx *c) {
    si_result s = si_need_inputs(c, 2);
    if (s) return s;
    const si_tensor *x = c->in[0], *ix = c->in[1];
    if ((s = si_check_type(c, ix->dtype, SI_T(SI_I64), "input 'Y'"))) return s;
    if (x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'X' must have rank >= 1");
    int64_t od[SI_MAX_DIMS];
    int r = x->ndim;
    if (r == 1) {
        od[0] = 1;
        r = 2;
    } else {
        for (int d = 0; d < r - 1; d++) od[d] = x->dims[d];
    }
    od[r - 1] = si_count(ix);
    return si_set_out(c, 0, x->dtype, r, od);
}

static si_result afe_run(si_kctx *c) {
    si_result s = afe_infer(c);
    si_tensor *yt;
    if (s || (s = si_run_begin(c, &yt)) || !yt) return s;
    const si_tensor *xt = c->in[0];
    const int64_t C = xt->dims[xt->ndim - 1], outer = si_count(xt) / (C > 0 ? C : 1), k = si_count(c->in[1]);
    int64_t *ix = si_tensor_to_i64(c->in[1]);
    if (!ix) return si_op_nomem(c);
    const size_t es = si_esize(xt);
    for (int64_t j = 0; j < k && !s; j++)
        if (ix[j] < 0 || ix[j] >= C)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "index %lld is outside [0, %lld)", (long long)ix[j], (long long)C);
    for (int64_t o = 0; o < outer && !s; o++)
        for (int64_t j = 0; j < k; j++)
            memcpy((char *)yt->data + (size_t)(o * k + j) * es, (const char *)xt->data + (size_t)(o * C + ix[j]) * es, es);
    si_free(ix);
    return s;
}

// --- TfIdfVectorizer --------------------------------------------------------------------------------------

enum { TFIDF_TF, TFIDF_IDF, TFIDF_TFIDF };


typedef struct tfidf_plan {
    const int64_t *pool, *counts, *index;
    const float *weights;
    int npool, nlev, nidx, nw, mode;
    int64_t minn, maxn, skip, width;
} tfidf_plan;

static si_result tfidf_plan_of(si_kctx *c, tfidf_plan *p) {
    const si_tensor *x;
    si_result s = si_input0(c, SI_T(SI_I32) | SI_T(SI_I64), "input", &x);
    if (s) return s;
    if (x->ndim != 1 && x->ndim != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank 1 or 2, got %d", x->ndim);
    static const char *const modes[] = {"TF", "IDF", "TFIDF"};
    if ((s = si_attr_choice(c, "mode", "TF", modes, 3, &p->mode))) return s;
    p->minn = si_attr_int(c->node, "min_gram_length", 1);
    p->maxn = si_attr_int(c->node, "max_gram_length", 1);
    p->skip = si_attr_int(c->node, "max_skip_count", 0);
    p->pool = si_attr_ints(c->node, "pool_int64s", &p->npool);
    p->counts = si_attr_ints(c->node, "ngram_counts", &p->nlev);
    p->index = si_attr_ints(c->node, "ngram_indexes", &p->nidx);
    p->weights = si_attr_floats(c->node, "weights", &p->nw);
    if (!p->pool) {
        if (si_node_attr(c->node, "pool_strings")) return si_op_err(c, SI_ERR_UNSUPPORTED, "pool_strings: string inputs are not supported");
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'pool_int64s' is missing");
    }
    if (p->minn < 1 || p->maxn < p->minn || p->skip < 0 || p->skip > INT32_MAX || p->maxn > INT32_MAX)
        return si_op_err(c, SI_ERR_INVALID_ARG, "min_gram_length %lld, max_gram_length %lld or max_skip_count %lld is out of range",
                         (long long)p->minn, (long long)p->maxn, (long long)p->skip);
    if (!p->counts || !p->index || p->nlev < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "attributes 'ngram_counts' and 'ngram_indexes' are required");
    int64_t grams = 0;
    for (int l = 0; l < p->nlev; l++) {
        const int64_t a = p->counts[l], b = l + 1 < p->nlev ? p->counts[l + 1] : p->npool;
        if (a < 0 || b < a || b > p->npool || (b - a) % (l + 1))
            return si_op_err(c, SI_ERR_INVALID_ARG, "ngram_counts[%d] = %lld does not delimit whole %d-grams of the pool", l,
                             (long long)a, l + 1);
        grams += (b - a) / (l + 1);
    }
    if (grams != p->nidx)
        return si_op_err(c, SI_ERR_INVALID_ARG, "the pool holds %lld n-grams, ngram_indexes has %d", (long long)grams, p->nidx);
    if (p->weights && p->nw != p->nidx)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'weights' has %d values, expected %d", p->nw, p->nidx);
    /* the matching is rows x C x skips x n-grams x n comparisons: a named error before an input asks for hours of it */
    const int64_t rows = x->ndim == 2 ? x->dims[0] : 1, C = x->dims[x->ndim - 1];
    double work = 0;
    for (int l = 0; l < p->nlev; l++) {
        const int64_t n = l + 1, a = p->counts[l], b = l + 1 < p->nlev ? p->counts[l + 1] : p->npool;
        if (n < p->minn || n > p->maxn) continue;
        const double skips = n == 1 ? 1.0 : (double)SI_MIN(p->skip, C) + 1.0;
        work += (double)rows * (double)C * skips * (double)((b - a) / n) * (double)n;
    }
    if (work > (double)SI_REF_MAX_WORK)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "matching %lld rows of %lld tokens against the pool takes about %.3g comparisons, more than %lld",
                         (long long)rows, (long long)C, work, (long long)SI_REF_MAX_WORK);
    p->width = 0;
    for (int i = 0; i < p->nidx; i++) {
        if (p->index[i] < 0 || p->index[i] >= (1 << 24))
            return si_op_err(c, SI_ERR_INVALID_ARG, "ngram_indexes[%d] = %lld is out of range", i, (long long)p->index[i]);
        if (p->index[i] + 1 > p->width) p->width = p->index[i] + 1;
    }
    return SI_OK;
}

SI_OP_PLANNED(tfidf_infer, tfidf_plan, p, tfidf_plan_of) {
    const si_tensor *x = c->in[0];
    const int64_t od[2] = {x->ndim == 2 ? x->dims[0] : p->width, p->width};
    return x->ndim == 2 ? si_set_out(c, 0, SI_F32, 2, od) : si_set_out(c, 0, SI_F32, 1, od + 1);
}

SI_OP_PLANNED(tfidf_run, tfidf_plan, p, tfidf_plan_of) {
    si_result s = tfidf_infer(c);
    si_tensor *yt;
    if (s || (s = si_run_begin(c, &yt)) || !yt) return s;
    const si_tensor *xt = c->in[0];
    const int64_t rows = xt->ndim == 2 ? xt->dims[0] : 1, C = xt->dims[xt->ndim - 1];
    int64_t *x = si_tensor_to_i64(xt);
    double *y = si_calloc((size_t)si_count(yt), sizeof(double));
    if (!x || !y) {
        SI_FREE_ALL(x, y);
        return si_op_nomem(c);
    }
    for (int64_t r = 0; r < rows; r++) {
        const int64_t *row = x + r * C;
        double *out = y + r * p->width;
        int64_t base = 0; /* n-grams of the levels before */
        for (int l = 0; l < p->nlev; l++) {
            const int64_t n = l + 1, a = p->counts[l], b = l + 1 < p->nlev ? p->counts[l + 1] : p->npool, ng = (b - a) / n;
            if (n >= p->minn && n <= p->maxn)
                for (int64_t i = 0; i < C; i++)
                    for (int64_t k = 0; k <= (n == 1 ? 0 : p->skip); k++) {
                        if (i + (n - 1) * (k + 1) >= C) break;
                        for (int64_t g = 0; g < ng; g++) {
                            const int64_t *gram = p->pool + a + g * n;
                            int64_t j = 0;
                            while (j < n && row[i + j * (k + 1)] == gram[j]) j++;
                            if (j == n) out[p->index[base + g]] += 1.0;
                        }
                    }
            base += ng;
        }
        if (p->mode != TFIDF_TF)
            for (int g = 0; g < p->nidx; g++) {
                double *v = &out[p->index[g]];
                const double w = p->weights ? p->weights[g] : 1.0;
                *v = p->mode == TFIDF_IDF ? (*v > 0 ? w : 0.0) : *v * w;
            }
    }
    si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, y);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(CENTER_CROP_PAD, 0, ccp_infer, ccp_run),
    SI_OP_DEF(TENSOR_SCATTER, 0, ts_infer, ts_run),
    SI_OP_DEF(SWIGLU, SI_T_FLOATS, swiglu_infer, swiglu_run),
    SI_OP_DEF(DET, SI_T_FLOATS, det_infer, det_run),
    SI_OP_DEF(MAX_UNPOOL, SI_T_FLOATS, unpool_infer, unpool_run),
    SI_OP_DEF(BINARIZER, 0, binarizer_infer, binarizer_run),
    SI_OP_DEF(ARRAY_FEATURE_EXTRACTOR, 0, afe_infer, afe_run),
    SI_OP_DEF(TF_IDF_VECTORIZER, SI_T(SI_I32) | SI_T(SI_I64), tfidf_infer, tfidf_run),
};

SI_OP_FAMILY_PARTIAL(tensorops, defs);
