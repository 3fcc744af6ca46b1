/*
 * unique.c — Unique: the distinct elements (or slices along an axis), sorted or in order of first occurrence,
 * with their first indices, inverse indices and counts.
 */
#include "ops/ops.h"

#include <math.h>

/* ---- Unique ----------------------------------------------------------------------------------------------- */

/* The input viewed as [outer, S, inner]: S slices compared lexicographically over (outer, inner). */
typedef struct uq_view {
    si_dtype dt;
    const void *data;
    int64_t outer, S, inner;
} uq_view;

static int uq_cmp_elem(si_dtype dt, const void *p, int64_t a, int64_t b) {
    if (si_dtype_is_float(dt)) {
        double x = si_load_f64(dt, p, a), y = si_load_f64(dt, p, b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (dt == SI_U64) {
        uint64_t x = ((const uint64_t *)p)[a], y = ((const uint64_t *)p)[b];
        return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = si_load_i64(dt, p, a), y = si_load_i64(dt, p, b);
    return x < y ? -1 : x > y ? 1 : 0;
}

static int uq_cmp(const uq_view *v, int64_t s1, int64_t s2) {
    for (int64_t o = 0; o < v->outer; o++)
        for (int64_t i = 0; i < v->inner; i++) {
            int r = uq_cmp_elem(v->dt, v->data, (o * v->S + s1) * v->inner + i, (o * v->S + s2) * v->inner + i);
            if (r) return r;
        }
    return 0;
}

/* Stable merge sort of idx[0..n) by slice order (tmp has n slots). */
static void uq_sort(const uq_view *v, int64_t *idx, int64_t *tmp, int64_t n) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = SI_MIN(lo + w, n), hi = SI_MIN(lo + 2 * w, n), a = lo, b = mid, k = lo;
            while (a < mid && b < hi) tmp[k++] = uq_cmp(v, idx[b], idx[a]) < 0 ? idx[b++] : idx[a++];
            while (a < mid) tmp[k++] = idx[a++];
            while (b < hi) tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int64_t));
    }
}

typedef struct uq_result {
    int64_t S, U;
    int64_t *first; /* [U] original slice index of each unique slice, in output order */
    int64_t *counts; /* [U] */
    int64_t *inverse; /* [S] output position of each original slice */
} uq_result;

static void uq_free(uq_result *r) {
    SI_FREE_ALL(r->first, r->counts, r->inverse);
    memset(r, 0, sizeof(*r));
}

static si_result uq_compute(si_kctx *c, int ax, uq_result *r) {
    const si_tensor *x = c->in[0];
    uq_view v = {x->dtype, x->data, 1, si_count(x), 1};
    if (ax >= 0) {
        v.outer = si_prod(x->dims, 0, ax);
        v.S = x->dims[ax];
        v.inner = si_prod(x->dims, ax + 1, x->ndim);
    }
    int64_t S = v.S;
    size_t sz = (size_t)(S > 0 ? S : 1) * sizeof(int64_t);
    memset(r, 0, sizeof(*r));
    int64_t *order = si_malloc(sz), *tmp = si_malloc(sz), *gid = si_malloc(sz);
    r->first = si_malloc(sz);
    r->counts = si_malloc(sz);
    r->inverse = si_malloc(sz);
    if (!order || !tmp || !gid || !r->first || !r->counts || !r->inverse) {
        SI_FREE_ALL(order, tmp, gid);
        uq_free(r);
        return SI_ERR_NO_MEM;
    }
    for (int64_t i = 0; i < S; i++) order[i] = i;
    uq_sort(&v, order, tmp, S);
    /* Groups of equal slices in sorted order; the first of each group is its first occurrence (stable). */
    int64_t U = 0;
    for (int64_t i = 0; i < S; i++) {
        if (i == 0 || uq_cmp(&v, order[i - 1], order[i]) != 0) {
            r->first[U] = order[i];
            r->counts[U] = 0;
            U++;
        }
        r->counts[U - 1]++;
        gid[order[i]] = U - 1;
    }
    /* pos[g]: output position of sorted group g (identity when sorted, else by first occurrence). */
    int64_t *pos = tmp;
    if (si_attr_int(c->node, "sorted", 1)) {
        for (int64_t g = 0; g < U; g++) pos[g] = g;
    } else {
        /* Walk the input in order; each new group takes the next position. */
        int64_t *f2 = order, *c2 = si_malloc(sz);
        if (!c2) {
            SI_FREE_ALL(order, tmp, gid);
            uq_free(r);
            return SI_ERR_NO_MEM;
        }
        for (int64_t g = 0; g < U; g++) pos[g] = -1;
        int64_t next = 0;
        for (int64_t i = 0; i < S; i++) {
            int64_t g = gid[i];
            if (pos[g] < 0) {
                pos[g] = next;
                f2[next] = r->first[g];
                c2[next] = r->counts[g];
                next++;
            }
        }
        memcpy(r->first, f2, (size_t)U * sizeof(int64_t));
        memcpy(r->counts, c2, (size_t)U * sizeof(int64_t));
        si_free(c2);
    }
    for (int64_t i = 0; i < S; i++) r->inverse[i] = pos[gid[i]];
    r->S = S;
    r->U = U;
    SI_FREE_ALL(order, tmp, gid);
    return SI_OK;
}

static si_result uq_axis(si_kctx *c, int *ax) {
    *ax = -1;
    if (!si_node_attr(c->node, "axis")) return SI_OK;
    return si_axis(c, si_attr_int(c->node, "axis", 0), c->in[0]->ndim, ax);
}

static si_result unique_infer(si_kctx *c) {
    si_result s;
    int ax;
    if ((s = si_need_input(c, 0, false)) || (s = uq_axis(c, &ax))) return s;
    const si_tensor *xv = c->in[0];
    if (!si_has_values(xv)) { /* compile time: the unique count is known at run time */
        int64_t dims[SI_MAX_DIMS], u = SI_DIM_UNKNOWN, n = si_count(xv);
        int64_t S = ax >= 0 ? xv->dims[ax] : n >= 0 ? n : SI_DIM_UNKNOWN;
        memcpy(dims, xv->dims, sizeof dims);
        if (ax >= 0) dims[ax] = SI_DIM_UNKNOWN;
        if ((s = ax >= 0 ? si_set_out(c, 0, xv->dtype, xv->ndim, dims) : si_set_out(c, 0, xv->dtype, 1, &u))) return s;
        if ((s = si_set_out(c, 1, SI_I64, 1, &u)) || (s = si_set_out(c, 2, SI_I64, 1, &S))) return s;
        return si_set_out(c, 3, SI_I64, 1, &u);
    }
    uq_result r;
    if ((s = uq_compute(c, ax, &r))) return s;
    const si_tensor *x = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    int nd = 1;
    dims[0] = r.U;
    if (ax >= 0) {
        nd = x->ndim;
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)nd);
        dims[ax] = r.U;
    }
    int64_t U = r.U, S = r.S;
    uq_free(&r);
    if (c->out[0] && (s = si_set_out(c, 0, x->dtype, nd, dims))) return s;
    if (c->n_out > 1 && c->out[1] && (s = si_set_out(c, 1, SI_I64, 1, &U))) return s;
    if (c->n_out > 2 && c->out[2] && (s = si_set_out(c, 2, SI_I64, 1, &S))) return s;
    if (c->n_out > 3 && c->out[3] && (s = si_set_out(c, 3, SI_I64, 1, &U))) return s;
    return SI_OK;
}

static si_result unique_run(si_kctx *c) {
    si_result s;
    int ax;
    if ((s = uq_axis(c, &ax))) return s;
    uq_result r;
    if ((s = uq_compute(c, ax, &r))) return s;
    const si_tensor *x = c->in[0];
    size_t es = si_esize(x);
    if (c->out[0] && r.U > 0) {
        si_tensor *y = c->out[0];
        int64_t outer = 1, inner = 1, S = r.S;
        if (ax >= 0) {
            outer = si_prod(x->dims, 0, ax);
            inner = si_prod(x->dims, ax + 1, x->ndim);
        }
        size_t blk = (size_t)inner * es;
        char *dst = y->data;
        const char *src = x->data;
        if (blk > 0)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t u = 0; u < r.U; u++)
                    memcpy(dst + (size_t)(o * r.U + u) * blk, src + (size_t)(o * S + r.first[u]) * blk, blk);
    }
    if (c->n_out > 1 && c->out[1] && r.U > 0) memcpy(c->out[1]->data, r.first, (size_t)r.U * sizeof(int64_t));
    if (c->n_out > 2 && c->out[2] && r.S > 0) memcpy(c->out[2]->data, r.inverse, (size_t)r.S * sizeof(int64_t));
    if (c->n_out > 3 && c->out[3] && r.U > 0) memcpy(c->out[3]->data, r.counts, (size_t)r.U * sizeof(int64_t));
    uq_free(&r);
    return SI_OK;
}

/* ---- table ------------------------------------------------------------------------------------------------ */

static const si_op_def defs[] = {
    SI_OP_DEF(UNIQUE, 0, unique_infer, unique_run),
};

SI_OP_FAMILY_PARTIAL(unique, defs);
