/*
 * gather.c — reference kernels for indexed reads and writes and for selections: Gather, GatherElements,
 * GatherND, ScatterElements (and the deprecated Scatter), ScatterND, Compress and NonZero. Elements move as
 * bytes; the scatter reductions combine values through si_load_* / si_store_*.
 */
#include "ops/ops.h"

#include <math.h>

/* ---- small helpers ---------------------------------------------------------------------------------------- */

static si_result need_index_type(const si_kctx *c, int i, const char *what) {
    si_dtype dt = c->in[i]->dtype;
    if (dt != SI_I32 && dt != SI_I64)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%s must be int32 or int64, got %s", what, si_dtype_name(dt));
    return SI_OK;
}

static bool elem_nonzero(si_dtype dt, const void *p, int64_t i) {
    if (si_dtype_is_float(dt)) return si_load_f64(dt, p, i) != 0.0;
    size_t es = si_dtype_size(dt);
    const unsigned char *b = (const unsigned char *)p + (size_t)i * es;
    for (size_t k = 0; k < es; k++)
        if (b[k]) return true;
    return false;
}

/* Element-wise reductions used by the scatter ops. */
enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static si_result get_reduction(const si_kctx *c, int *red) {
    static const char *const names[] = {"none", "add", "mul", "max", "min"}; /* RED_* order */
    return si_attr_choice(c, "reduction", "none", names, 5, red);
}

/* *dst = red(*dst, *src) for one element of type dt. */
static void combine(si_dtype dt, size_t es, void *dst, const void *src, int red) {
    if (red == RED_NONE) {
        memcpy(dst, src, es);
    } else if (si_dtype_is_float(dt)) {
        double a = si_load_f64(dt, dst, 0), b = si_load_f64(dt, src, 0), r;
        switch (red) {
        case RED_ADD: r = a + b; break;
        case RED_MUL: r = a * b; break;
        case RED_MAX: r = (isnan(a) || a >= b) ? a : b; break;
        default: r = (isnan(a) || a <= b) ? a : b; break;
        }
        si_store_f64(dt, dst, 0, r);
    } else if (dt == SI_U64) {
        uint64_t a, b, r;
        memcpy(&a, dst, 8);
        memcpy(&b, src, 8);
        switch (red) {
        case RED_ADD: r = a + b; break;
        case RED_MUL: r = a * b; break;
        case RED_MAX: r = a > b ? a : b; break;
        default: r = a < b ? a : b; break;
        }
        memcpy(dst, &r, 8);
    } else {
        int64_t a = si_load_i64(dt, dst, 0), b = si_load_i64(dt, src, 0), r;
        switch (red) {
        case RED_ADD: r = (int64_t)((uint64_t)a + (uint64_t)b); break;
        case RED_MUL: r = (int64_t)((uint64_t)a * (uint64_t)b); break;
        case RED_MAX: r = a > b ? a : b; break;
        default: r = a < b ? a : b; break;
        }
        if (dt == SI_BOOL) r = r != 0;
        si_store_i64(dt, dst, 0, r);
    }
}

/* ---- Gather ----------------------------------------------------------------------------------------------- */

static si_result gather_infer(si_kctx *c) {
    si_result s;
    if ((s = si_need_inputs(c, 2)) || (s = need_index_type(c, 1, "indices")))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int ax;
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, &ax))) return s;
    int64_t dims[SI_MAX_DIMS];
    int nd = si_gather_dims(x->ndim, x->dims, ax, ind->ndim, ind->dims, dims);
    if (nd > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    return si_set_out(c, 0, x->dtype, nd, dims);
}

static si_result gather_run(si_kctx *c) {
    const si_tensor *x = c->in[0], *ind = c->in[1];
    si_tensor *o = c->out[0];
    int ax;
    si_result s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, &ax);
    if (s) return s;
    int64_t outer = si_prod(x->dims, 0, ax), axd = x->dims[ax];
    size_t blk = (size_t)si_prod(x->dims, ax + 1, x->ndim) * si_esize(x);
    int64_t ni = si_count(ind);
    for (int64_t i = 0; i < ni; i++) {
        int64_t k = si_load_i64(ind->dtype, ind->data, i);
        if (k < -axd || k >= axd)
            return si_op_err(c, SI_ERR_INVALID_ARG, "index %lld out of range [-%lld, %lld)", (long long)k,
                             (long long)axd, (long long)axd);
    }
    if (si_count(o) == 0) return SI_OK;
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t a = 0; a < outer; a++) {
        for (int64_t i = 0; i < ni; i++) {
            int64_t k = si_load_i64(ind->dtype, ind->data, i);
            if (k < 0) k += axd;
            memcpy(dst, src + (size_t)(a * axd + k) * blk, blk);
            dst += blk;
        }
    }
    return SI_OK;
}

/* ---- GatherElements / ScatterElements / Scatter ----------------------------------------------------------- */

/* data, indices (same rank; indices no larger than data outside the axis); returns the normalised axis. */
static si_result elements_check(si_kctx *c, int *ax) {
    si_result s;
    if ((s = si_need_inputs(c, 2)) || (s = need_index_type(c, 1, "indices")))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1];
    if (x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "data must have rank >= 1");
    if (ind->ndim != x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "indices rank %d differs from data rank %d", ind->ndim, x->ndim);
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, ax))) return s;
    for (int d = 0; d < x->ndim; d++)
        if (d != *ax && si_dim_known(ind->dims[d]) && si_dim_known(x->dims[d]) && ind->dims[d] > x->dims[d])
            return si_op_err(c, SI_ERR_INVALID_ARG, "indices dimension %d (%lld) exceeds data's (%lld)", d,
                             (long long)ind->dims[d], (long long)x->dims[d]);
    return SI_OK;
}

static si_result gather_elements_infer(si_kctx *c) {
    int ax;
    si_result s = elements_check(c, &ax);
    if (s) return s;
    return si_set_out(c, 0, c->in[0]->dtype, c->in[1]->ndim, c->in[1]->dims);
}

/* Offsets (in elements) into data for each element of indices, validating every index. */
static si_result element_offsets(si_kctx *c, int ax, int64_t **offs_out) {
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int nd = x->ndim;
    int64_t n = si_count(ind);
    *offs_out = NULL;
    int64_t *offs = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!offs) return SI_ERR_NO_MEM;
    int64_t st[SI_MAX_DIMS];
    int64_t acc = 1;
    for (int d = nd - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= x->dims[d];
    }
    int64_t idx[SI_MAX_DIMS] = {0};
    int64_t axd = x->dims[ax];
    for (int64_t i = 0; i < n; i++) {
        int64_t k = si_load_i64(ind->dtype, ind->data, i);
        if (k < -axd || k >= axd) {
            si_free(offs);
            return si_op_err(c, SI_ERR_INVALID_ARG, "index %lld out of range [-%lld, %lld)", (long long)k,
                             (long long)axd, (long long)axd);
        }
        if (k < 0) k += axd;
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off += (d == ax ? k : idx[d]) * st[d];
        offs[i] = off;
        si_next_index(idx, ind->dims, nd);
    }
    *offs_out = offs;
    return SI_OK;
}

static si_result gather_elements_run(si_kctx *c) {
    int ax;
    si_result s = elements_check(c, &ax);
    if (s) return s;
    int64_t *offs;
    if ((s = element_offsets(c, ax, &offs))) return s;
    size_t es = si_esize(c->in[0]);
    int64_t n = si_count(c->in[1]);
    const char *src = c->in[0]->data;
    char *dst = c->out[0]->data;
    for (int64_t i = 0; i < n; i++) memcpy(dst + (size_t)i * es, src + (size_t)offs[i] * es, es);
    si_free(offs);
    return SI_OK;
}

static si_result scatter_elements_infer(si_kctx *c) {
    int ax, red;
    si_result s;
    if ((s = elements_check(c, &ax)) || (s = si_need_input(c, 2, false)) || (s = get_reduction(c, &red))) return s;
    const si_tensor *ind = c->in[1], *upd = c->in[2];
    if (upd->dtype != c->in[0]->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates type %s differs from data type %s", si_dtype_name(upd->dtype),
                         si_dtype_name(c->in[0]->dtype));
    bool same = upd->ndim == ind->ndim;
    for (int d = 0; same && d < ind->ndim; d++) same = !si_dim_ne(upd->dims[d], ind->dims[d]);
    if (!same) return si_op_err(c, SI_ERR_INVALID_ARG, "updates and indices must have the same shape");
    return si_same_as_input(c, 0, 0);
}

static si_result scatter_elements_run(si_kctx *c) {
    int ax, red;
    si_result s;
    if ((s = elements_check(c, &ax)) || (s = get_reduction(c, &red))) return s;
    int64_t *offs;
    if ((s = element_offsets(c, ax, &offs))) return s;
    const si_tensor *x = c->in[0], *upd = c->in[2];
    si_tensor *o = c->out[0];
    si_copy_data(o, x);
    size_t es = si_esize(x);
    int64_t n = si_count(c->in[1]);
    char *dst = o->data;
    const char *src = upd->data;
    for (int64_t i = 0; i < n; i++) combine(x->dtype, es, dst + (size_t)offs[i] * es, src + (size_t)i * es, red);
    si_free(offs);
    return SI_OK;
}

/* The deprecated opset-9/11 Scatter is ScatterElements without reductions. */
/* ---- GatherND / ScatterND --------------------------------------------------------------------------------- */

static si_result gather_nd_infer(si_kctx *c) {
    si_result s;
    if ((s = si_need_inputs(c, 2)) || (s = need_index_type(c, 1, "indices")))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int r = x->ndim, q = ind->ndim;
    int64_t b = si_attr_int(c->node, "batch_dims", 0);
    if (q < 1 || r < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "data and indices must have rank >= 1");
    if (b < 0 || b >= q || b >= r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "batch_dims %lld must be in [0, min(%d, %d))", (long long)b, q, r);
    for (int i = 0; i < b; i++)
        if (si_dim_ne(ind->dims[i], x->dims[i]))
            return si_op_err(c, SI_ERR_INVALID_ARG, "batch dimension %d differs: indices %lld, data %lld", i,
                             (long long)ind->dims[i], (long long)x->dims[i]);
    int64_t m = ind->dims[q - 1];
    if (!si_dim_known(m)) return si_set_out_unknown(c, 0, x->dtype, -1); /* compile time: the rank depends on m */
    if (m < 1 || m > r - b)
        return si_op_err(c, SI_ERR_INVALID_ARG, "indices last dimension %lld must be in [1, %lld]", (long long)m,
                         (long long)(r - b));
    int nd = q - 1 + r - (int)b - (int)m;
    if (nd > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    int64_t dims[SI_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < q - 1; i++) dims[k++] = ind->dims[i];
    for (int i = (int)(b + m); i < r; i++) dims[k++] = x->dims[i];
    return si_set_out(c, 0, x->dtype, nd, dims);
}

/* Element offset of the slice addressed by one index tuple (within one batch), validated. */
static si_result nd_offset(si_kctx *c, const si_tensor *ind, int64_t t0, int64_t m, const int64_t *dims, int64_t *off) {
    int64_t o = 0;
    for (int64_t j = 0; j < m; j++) {
        int64_t k = si_load_i64(ind->dtype, ind->data, t0 + j), d = dims[j];
        if (k < -d || k >= d)
            return si_op_err(c, SI_ERR_INVALID_ARG, "index %lld out of range [-%lld, %lld)", (long long)k, (long long)d,
                             (long long)d);
        if (k < 0) k += d;
        o = o * d + k;
    }
    *off = o;
    return SI_OK;
}

static si_result gather_nd_run(si_kctx *c) {
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int r = x->ndim, q = ind->ndim;
    int b = (int)si_attr_int(c->node, "batch_dims", 0);
    int64_t m = ind->dims[q - 1];
    int64_t nb = si_prod(x->dims, 0, b);
    int64_t bsz = si_prod(x->dims, b, r); /* data elements per batch */
    int64_t nt = si_prod(ind->dims, b, q - 1); /* index tuples per batch */
    int64_t slice = si_prod(x->dims, b + (int)m, r); /* elements per gathered slice */
    size_t es = si_esize(x);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    if (slice == 0 || si_count(c->out[0]) == 0) return SI_OK;
    for (int64_t bi = 0; bi < nb; bi++) {
        for (int64_t t = 0; t < nt; t++) {
            int64_t off = 0;
            si_result s = nd_offset(c, ind, (bi * nt + t) * m, m, x->dims + b, &off);
            if (s) return s;
            memcpy(dst + (size_t)((bi * nt + t) * slice) * es, src + (size_t)(bi * bsz + off * slice) * es,
                   (size_t)slice * es);
        }
    }
    return SI_OK;
}

static si_result scatter_nd_infer(si_kctx *c) {
    si_result s;
    int red;
    if ((s = si_need_inputs(c, 3)) ||
        (s = need_index_type(c, 1, "indices")) || (s = get_reduction(c, &red)))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int r = x->ndim, q = ind->ndim;
    if (q < 1 || r < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "data and indices must have rank >= 1");
    if (upd->dtype != x->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates type %s differs from data type %s", si_dtype_name(upd->dtype),
                         si_dtype_name(x->dtype));
    int64_t m = ind->dims[q - 1];
    if (!si_dim_known(m)) return si_same_as_input(c, 0, 0); /* compile time: the run checks the updates */
    if (m < 1 || m > r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "indices last dimension %lld must be in [1, %d]", (long long)m, r);
    /* updates shape = indices.shape[:-1] + data.shape[m:] */
    bool ok = upd->ndim == q - 1 + r - (int)m;
    for (int i = 0; ok && i < q - 1; i++) ok = !si_dim_ne(upd->dims[i], ind->dims[i]);
    for (int i = (int)m; ok && i < r; i++) ok = !si_dim_ne(upd->dims[q - 1 + i - m], x->dims[i]);
    if (!ok)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates shape must be indices.shape[:-1] + data.shape[%lld:]",
                         (long long)m);
    return si_same_as_input(c, 0, 0);
}

static si_result scatter_nd_run(si_kctx *c) {
    int red;
    si_result s = get_reduction(c, &red);
    if (s) return s;
    const si_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    si_tensor *o = c->out[0];
    int r = x->ndim, q = ind->ndim;
    int64_t m = ind->dims[q - 1];
    int64_t nt = si_prod(ind->dims, 0, q - 1);
    int64_t slice = si_prod(x->dims, (int)m, r);
    size_t es = si_esize(x);
    si_copy_data(o, x);
    char *dst = o->data;
    const char *src = upd->data;
    for (int64_t t = 0; t < nt; t++) {
        int64_t off = 0;
        if ((s = nd_offset(c, ind, t * m, m, x->dims, &off))) return s;
        if (slice == 0) continue;
        if (red == RED_NONE) {
            memcpy(dst + (size_t)(off * slice) * es, src + (size_t)(t * slice) * es, (size_t)slice * es);
        } else {
            for (int64_t i = 0; i < slice; i++)
                combine(x->dtype, es, dst + (size_t)(off * slice + i) * es, src + (size_t)(t * slice + i) * es, red);
        }
    }
    return SI_OK;
}

/* ---- NonZero ---------------------------------------------------------------------------------------------- */

static si_result nonzero_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    const si_tensor *x = c->in[0];
    if (!si_has_values(x)) { /* compile time: [rank, count of non-zeros] */
        int64_t dims[2] = {x->ndim > 0 ? x->ndim : 1, SI_DIM_UNKNOWN};
        return si_set_out(c, 0, SI_I64, 2, dims);
    }
    int64_t n = si_count(x), nnz = 0;
    for (int64_t i = 0; i < n; i++) nnz += elem_nonzero(x->dtype, x->data, i);
    int64_t dims[2] = {x->ndim > 0 ? x->ndim : 1, nnz};
    return si_set_out(c, 0, SI_I64, 2, dims);
}

static si_result nonzero_run(si_kctx *c) {
    const si_tensor *x = c->in[0];
    si_tensor *o = c->out[0];
    int nd = x->ndim;
    int64_t n = si_count(x), nnz = o->dims[1], j = 0;
    int64_t *out = o->data;
    int64_t idx[SI_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        if (elem_nonzero(x->dtype, x->data, i)) {
            if (j >= nnz) return si_op_err(c, SI_ERR_INTERNAL, "non-zero count changed since shape inference");
            if (nd == 0) out[j] = 0;
            for (int d = 0; d < nd; d++) out[d * nnz + j] = idx[d];
            j++;
        }
        si_next_index(idx, x->dims, nd);
    }
    if (j != nnz) return si_op_err(c, SI_ERR_INTERNAL, "non-zero count changed since shape inference");
    return SI_OK;
}

/* ---- Compress --------------------------------------------------------------------------------------------- */

/* Returns the axis (-1 for flattened) and the selected count; validates the condition. */
static si_result compress_params(si_kctx *c, int *ax, int64_t *nsel) {
    si_result s;
    if ((s = si_need_inputs(c, 2))) return s;
    const si_tensor *x = c->in[0], *cond = c->in[1];
    if (cond->ndim > 1) return si_op_err(c, SI_ERR_INVALID_ARG, "condition must be 1-D, got rank %d", cond->ndim);
    *ax = -1;
    if (si_node_attr(c->node, "axis")) {
        if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, ax))) return s;
    }
    if (!si_has_values(cond)) { /* compile time: the count is known at run time */
        *nsel = SI_DIM_UNKNOWN;
        return SI_OK;
    }
    if ((s = si_need_input(c, 1, true))) return s;
    int64_t len = *ax < 0 ? si_count(x) : x->dims[*ax];
    if (len < 0) len = INT64_MAX; /* compile time: not known, the run checks */
    int64_t nc = si_count(cond), cnt = 0;
    for (int64_t i = 0; i < nc; i++) {
        if (elem_nonzero(cond->dtype, cond->data, i)) {
            if (i >= len)
                return si_op_err(c, SI_ERR_INVALID_ARG, "condition selects index %lld beyond the size %lld",
                                 (long long)i, (long long)len);
            cnt++;
        }
    }
    *nsel = cnt;
    return SI_OK;
}

static si_result compress_infer(si_kctx *c) {
    int ax;
    int64_t nsel;
    si_result s = compress_params(c, &ax, &nsel);
    if (s) return s;
    const si_tensor *x = c->in[0];
    if (ax < 0) return si_set_out(c, 0, x->dtype, 1, &nsel);
    int64_t dims[SI_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[ax] = nsel;
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result compress_run(si_kctx *c) {
    int ax;
    int64_t nsel;
    si_result s = compress_params(c, &ax, &nsel);
    if (s) return s;
    const si_tensor *x = c->in[0], *cond = c->in[1];
    if (si_count(c->out[0]) == 0) return SI_OK;
    int64_t outer, axd;
    size_t blk;
    if (ax < 0) {
        outer = 1;
        axd = si_count(x);
        blk = si_esize(x);
    } else {
        outer = si_prod(x->dims, 0, ax);
        axd = x->dims[ax];
        blk = (size_t)si_prod(x->dims, ax + 1, x->ndim) * si_esize(x);
    }
    int64_t nc = SI_MIN(si_count(cond), axd);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < nc; i++)
            if (elem_nonzero(cond->dtype, cond->data, i)) {
                memcpy(dst, src + (size_t)(a * axd + i) * blk, blk);
                dst += blk;
            }
    return SI_OK;
}

/* ---- table ------------------------------------------------------------------------------------------------ */

static const si_op_def defs[] = {
    SI_OP_DEF(GATHER, 0, gather_infer, gather_run),
    SI_OP_DEF(GATHER_ELEMENTS, 0, gather_elements_infer, gather_elements_run),
    SI_OP_DEF(GATHER_ND, 0, gather_nd_infer, gather_nd_run),
    SI_OP_DEF(SCATTER_ND, 0, scatter_nd_infer, scatter_nd_run),
    SI_OP_DEF(SCATTER_ELEMENTS, 0, scatter_elements_infer, scatter_elements_run),
    SI_OP_DEF(SCATTER, 0, scatter_elements_infer, scatter_elements_run),
    SI_OP_DEF(COMPRESS, 0, compress_infer, compress_run),
    SI_OP_DEF(NON_ZERO, 0, nonzero_infer, nonzero_run),
};

SI_OP_FAMILY_PARTIAL(gather, defs);
