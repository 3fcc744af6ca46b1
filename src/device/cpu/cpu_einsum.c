/*
 * cpu_einsum.c — two-input float32 Einsum that is a (batched) matrix product, as the CPU device's own kernel
 * (own:einsum): `bci,bcj->bij`, `bqhd,bkhd->bhqk`, `bhqk,bkhd->bqhd`, `oc,bci->boi` and the like. The reference
 * kernel (ops/einsum.c) walks every output element with an odometer in double precision, 14-57x slower than ONNX
 * Runtime on the attention and mixing layers of real models.
 *
 * The equation is read by the reference kernel's own parser (si_einsum_prepare), so both take it the same way
 * (implicit output, ellipsis, size-1 broadcasting). Each label of size > 1 is
 *
 *     batch (in both inputs and the output), contracted K (in both inputs only), M (input 0 and the output only),
 *     N (input 1 and the output only);
 *
 * a label repeated within one input (a diagonal) or summed out of one input alone is declined, and the reference
 * kernel runs the node. The K labels (in input 0's order) become one dimension, as do the M and the N labels (in
 * the output's order) where their strides allow it; M or N labels that do not merge into one stride in both the
 * input and the output are moved, outermost first, into the batch (the other input then has stride 0 over them:
 * `oc,bci->boi` is b products of [o,c] x [c,i]). Every product is one oneDNN sgemm reading the inputs in place
 * through their strides (row- or column-major, i.e. transposed or not) and writing the output in place (a
 * column-major output is computed as its transpose). An operand that cannot be read that way (K labels that do
 * not merge, a broadcast stride) is first gathered into a dense matrix of per-thread scratch, and an output that
 * cannot be written that way is computed into scratch and scattered.
 *
 * Threads: many products (or small ones) are split over the plan's threads, each a single-threaded sgemm on a
 * contiguous range of them with its own scratch; a few large ones run one after the other, each sgemm on the plan's
 * OpenMP team.
 */
#include "device/cpu/cpu_llm.h"

#include <string.h>

#define EIN_SMALL_FLOPS (1LL << 18) /* products below this many multiply-adds are never split over threads */

/* A strided view gathered into (or scattered from) a dense array: dims outermost first. */
typedef struct ein_view {
    int r;
    int64_t sz[SI_MAX_DIMS + 1], st[SI_MAX_DIMS + 1];
} ein_view;

typedef struct ein_params {
    int64_t M, N, K, nb;       /* product sizes, number of products */
    int nbat;                  /* batch labels (output order): size and stride in A, B, Y */
    int64_t bsz[SI_MAX_DIMS], bsa[SI_MAX_DIMS], bsb[SI_MAX_DIMS], bsy[SI_MAX_DIMS];
    int64_t ars, acs, brs, bcs, crs, ccs; /* element strides of rows and columns of A [M,K], B [K,N], C [M,N] */
    bool pack_a, pack_b, pack_c;
    ein_view va, vb;           /* packed operands: A as [M, K...], B as [K..., N] */
    int64_t slot;              /* scratch floats per thread: packed A, packed B, C */
    int slots;
} ein_params;

/* dst (dense) = the view of src */
static void gather(float *dst, const float *src, const ein_view *v) {
    const int r = v->r;
    const int64_t n = v->sz[r - 1], s = v->st[r - 1];
    int64_t idx[SI_MAX_DIMS + 1] = {0}, off = 0;
    for (;;) {
        const float *x = src + off;
        if (s == 1) memcpy(dst, x, sizeof(float) * (size_t)n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = x[i * s];
        dst += n;
        int d = r - 2;
        for (; d >= 0; d--) {
            off += v->st[d];
            if (++idx[d] < v->sz[d]) break;
            off -= v->st[d] * idx[d];
            idx[d] = 0;
        }
        if (d < 0) return;
    }
}

/* Strides (rs, cs) of a rows x cols matrix as sgemm reads it: row-major (cs 1, rs >= cols) or column-major (rs 1,
 * cs >= rows); the stride of a dimension of size 1 is free. False when the matrix cannot be read that way. */
static bool mat_norm(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs) {
    if (rows == 1) *rs = (*cs == 1 || cols == 1) ? cols : 1;
    if (cols == 1) {
        if (*rs == 1) *cs = rows;
        else *cs = 1;
    }
    if (rows == 1 && cols == 1) *rs = *cs = 1;
    return (*cs == 1 && *rs >= cols) || (*rs == 1 && *cs >= rows);
}

/* C [m,n] = A [m,k] B [k,n], every matrix through its (normalized) strides */
static dnnl_status_t mm(int64_t m, int64_t n, int64_t k, const float *a, int64_t ars, int64_t acs, const float *b, int64_t brs,
                        int64_t bcs, float *c, int64_t crs, int64_t ccs) {
    if (ccs != 1) /* column-major C: its transpose, B^T A^T, is row-major */
        return mm(n, m, k, b, bcs, brs, a, acs, ars, c, ccs, crs);
    const char ta = acs == 1 ? 'N' : 'T', tb = bcs == 1 ? 'N' : 'T';
    return dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, ta == 'N' ? ars : acs, b, tb == 'N' ? brs : bcs, 0.0f, c, crs);
}

typedef struct ein_job {
    const ein_params *p;
    const float *a, *b;
    float *y, *scratch;
    int nslots;
    atomic_int failed;        /* a dnnl_status_t */
} ein_job;

/* Products [lo, hi) on scratch slot `slot`. */
static dnnl_status_t ein_range(const ein_job *j, int slot, int64_t lo, int64_t hi) {
    const ein_params *p = j->p;
    float *pa = j->scratch + (size_t)slot * (size_t)p->slot, *pb = pa + (p->pack_a ? p->M * p->K : 0);
    float *pc = pb + (p->pack_b ? p->K * p->N : 0);
    int64_t last_a = -1, last_b = -1;
    for (int64_t bi = lo; bi < hi; bi++) {
        int64_t oa = 0, ob = 0, oy = 0, rem = bi;
        for (int i = p->nbat - 1; i >= 0; i--) {
            const int64_t x = rem % p->bsz[i];
            rem /= p->bsz[i];
            oa += x * p->bsa[i], ob += x * p->bsb[i], oy += x * p->bsy[i];
        }
        const float *a = j->a + oa, *b = j->b + ob;
        int64_t ars = p->ars, acs = p->acs, brs = p->brs, bcs = p->bcs, crs = p->crs, ccs = p->ccs;
        if (p->pack_a) { /* the same A for several products (stride 0 over a batch label): gathered once */
            if (oa != last_a) gather(pa, a, &p->va);
            last_a = oa, a = pa, ars = p->K, acs = 1;
        }
        if (p->pack_b) {
            if (ob != last_b) gather(pb, b, &p->vb);
            last_b = ob, b = pb, brs = p->N, bcs = 1;
        }
        float *c = p->pack_c ? pc : j->y + oy;
        if (p->pack_c) crs = p->N, ccs = 1;
        dnnl_status_t st = mm(p->M, p->N, p->K, a, ars, acs, b, brs, bcs, c, crs, ccs);
        if (st != dnnl_success) return st;
        if (p->pack_c) { /* scatter: Y[oy + m crs + n ccs] = C[m, n] */
            float *y = j->y + oy;
            for (int64_t m = 0; m < p->M; m++)
                for (int64_t n = 0; n < p->N; n++) y[m * p->crs + n * p->ccs] = pc[m * p->N + n];
        }
    }
    return dnnl_success;
}

/* Slots [lo, hi): slot s takes a contiguous share of the products. */
static void ein_slots(void *ctx, int64_t lo, int64_t hi) {
    ein_job *j = ctx;
    const int64_t nb = j->p->nb, ns = j->nslots;
    for (int64_t s = lo; s < hi; s++) {
        dnnl_status_t st = ein_range(j, (int)s, nb * s / ns, nb * (s + 1) / ns);
        if (st != dnnl_success) atomic_store(&j->failed, (int)st);
    }
}

/* ptr: A, B, scratch, Y */
static si_result ein_run(const void *params, void *const *ptr, int threads) {
    const ein_params *p = params;
    ein_job j = {.p = p, .a = ptr[0], .b = ptr[1], .scratch = ptr[2], .y = ptr[3], .nslots = 1};
    atomic_init(&j.failed, (int)dnnl_success);
    int64_t nth = SI_MIN((int64_t)SI_MIN(threads, p->slots), (int64_t)cpu_par_threads());
    nth = SI_MIN(nth, p->nb);
    /* products over the threads when they divide evenly, are many, or are too small to split one by one; else one
     * after the other, each on all threads */
    const bool split = nth > 1 && (p->nb % nth == 0 || p->nb >= 4 * nth || p->M * p->N * p->K < EIN_SMALL_FLOPS);
    dnnl_status_t st;
    if (split) {
        j.nslots = (int)nth;
        cpu_par_for(nth, 1, ein_slots, &j);
        st = (dnnl_status_t)atomic_load(&j.failed);
    } else {
        st = ein_range(&j, 0, 0, p->nb);
    }
    return st == dnnl_success ? SI_OK : cpu_dnnl_err(st, "sgemm (Einsum)", NULL);
}

/* Do the labels list[from..n) merge into one dimension in an operand of strides st (each stride the next one's
 * times its size)? */
static bool merges(const int *list, int from, int n, const int64_t *size, const int64_t *st) {
    for (int i = from; i + 1 < n; i++)
        if (st[list[i]] != st[list[i + 1]] * size[list[i + 1]]) return false;
    return true;
}

static int64_t group_size(const int *list, int from, int n, const int64_t *size) {
    int64_t s = 1;
    for (int i = from; i < n; i++) s *= size[list[i]];
    return s;
}

/* Per label, the element stride of operand dims (0: absent, or a size-1 dimension broadcast). */
static void label_strides(const int *lab, int ndim, const int64_t *dims, const int64_t *size, int64_t *st) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        st[lab[d]] = dims[d] == 1 && size[lab[d]] != 1 ? 0 : s;
        s *= dims[d];
    }
}

si_result cpu_lower_einsum(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (nd->n_in != 2 || !cpu_own_f32_io(g, nd, &X, &Y) || !cpu_input_f32_static(g, nd, 1)) return SI_ERR_UNSUPPORTED;
    const si_val *W = &g->values[nd->in[1]];
    if (si_shape_count(W->ndim, W->dims) <= 0) return SI_ERR_UNSUPPORTED;
    /* the labels, as the reference kernel reads them */
    si_tensor xd[2];
    const si_tensor *ins[2] = {&xd[0], &xd[1]};
    for (int i = 0; i < 2; i++) {
        const si_val *v = i ? W : X;
        memset(&xd[i], 0, sizeof xd[i]);
        xd[i].dtype = v->dtype;
        xd[i].ndim = v->ndim;
        memcpy(xd[i].dims, v->dims, sizeof(int64_t) * (size_t)v->ndim);
    }
    si_kctx c = {.node = nd, .opset = nd->opset, .n_in = 2, .in = ins, .n_out = 0, .out = NULL};
    si_einsum *e = si_malloc(sizeof *e);
    if (!e) return SI_ERR_NO_MEM;
    si_result s = si_einsum_prepare(&c, e);
    if (s) {
        si_free(e);
        si_err_clear();
        return SI_ERR_UNSUPPORTED;
    }
    int64_t sa[SI_EIN_LABELS] = {0}, sb[SI_EIN_LABELS] = {0}, sy[SI_EIN_LABELS] = {0};
    int cnt[2][SI_EIN_LABELS] = {{0}}, ypos[SI_EIN_LABELS];
    bool ok = e->nout == Y->ndim;
    for (int k = 0; ok && k < e->nout; k++) ok = e->size[e->out[k]] == Y->dims[k];
    for (int l = 0; l < SI_EIN_LABELS; l++) ypos[l] = -1;
    for (int k = 0; ok && k < e->nout; k++) ypos[e->out[k]] = k;
    for (int i = 0; ok && i < 2; i++) {
        const si_val *v = i ? W : X;
        for (int d = 0; d < v->ndim; d++) ok &= ++cnt[i][e->lab[i][d]] == 1; /* no diagonals */
    }
    if (ok) {
        label_strides(e->lab[0], X->ndim, X->dims, e->size, sa);
        label_strides(e->lab[1], W->ndim, W->dims, e->size, sb);
        label_strides(e->out, e->nout, Y->dims, e->size, sy);
    }
    /* groups: batch, M, N in the output's order; K in input 0's */
    int bat[SI_MAX_DIMS], mg[SI_MAX_DIMS], ng[SI_MAX_DIMS], kg[SI_MAX_DIMS], nbat = 0, nm = 0, nn = 0, nk = 0;
    for (int k = 0; ok && k < e->nout; k++) {
        const int l = e->out[k];
        if (e->size[l] == 1) continue;
        if (cnt[0][l] && cnt[1][l]) bat[nbat++] = l;
        else if (cnt[0][l]) mg[nm++] = l;
        else if (cnt[1][l]) ng[nn++] = l;
        else ok = false;
    }
    for (int d = 0; ok && d < X->ndim; d++) {
        const int l = e->lab[0][d];
        if (ypos[l] < 0 && e->size[l] != 1) {
            if (cnt[1][l]) kg[nk++] = l;
            else ok = false; /* summed out of input 0 alone */
        }
    }
    for (int d = 0; ok && d < W->ndim; d++) {
        const int l = e->lab[1][d];
        if (ypos[l] < 0 && e->size[l] != 1 && !cnt[0][l]) ok = false; /* summed out of input 1 alone */
    }
    if (!ok) {
        si_free(e);
        return SI_ERR_UNSUPPORTED;
    }
    /* M and N: the longest tail of the group that merges in its input and in the output; the rest joins the batch */
    int m0 = 0, n0 = 0;
    while (m0 < nm && !(merges(mg, m0, nm, e->size, sa) && merges(mg, m0, nm, e->size, sy))) m0++;
    while (n0 < nn && !(merges(ng, n0, nn, e->size, sb) && merges(ng, n0, nn, e->size, sy))) n0++;
    ein_params q;
    memset(&q, 0, sizeof q);
    for (int k = 0; k < e->nout; k++) { /* the batch in the output's order */
        const int l = e->out[k];
        bool moved = false;
        for (int i = 0; i < m0; i++) moved |= mg[i] == l;
        for (int i = 0; i < n0; i++) moved |= ng[i] == l;
        bool is_bat = false;
        for (int i = 0; i < nbat; i++) is_bat |= bat[i] == l;
        if (!moved && !is_bat) continue;
        q.bsz[q.nbat] = e->size[l], q.bsa[q.nbat] = sa[l], q.bsb[q.nbat] = sb[l], q.bsy[q.nbat] = sy[l];
        q.nbat++;
    }
    q.nb = 1;
    for (int i = 0; i < q.nbat; i++) q.nb *= q.bsz[i];
    q.M = group_size(mg, m0, nm, e->size);
    q.N = group_size(ng, n0, nn, e->size);
    q.K = group_size(kg, 0, nk, e->size);
    const int64_t ms_a = m0 < nm ? sa[mg[nm - 1]] : 0, ms_y = m0 < nm ? sy[mg[nm - 1]] : 0;
    const int64_t ns_b = n0 < nn ? sb[ng[nn - 1]] : 0, ns_y = n0 < nn ? sy[ng[nn - 1]] : 0;
    q.ars = ms_a, q.acs = nk ? sa[kg[nk - 1]] : 0;
    q.brs = nk ? sb[kg[nk - 1]] : 0, q.bcs = ns_b;
    q.crs = ms_y, q.ccs = ns_y;
    q.pack_a = !merges(kg, 0, nk, e->size, sa) || !mat_norm(q.M, q.K, &q.ars, &q.acs);
    q.pack_b = !merges(kg, 0, nk, e->size, sb) || !mat_norm(q.K, q.N, &q.brs, &q.bcs);
    q.pack_c = !mat_norm(q.M, q.N, &q.crs, &q.ccs);
    if (q.pack_c) q.crs = ms_y, q.ccs = ns_y; /* the scatter's strides */
    /* the gathers: A as [M, K labels...], B as [K labels..., N] */
    q.va.sz[q.va.r] = q.M, q.va.st[q.va.r++] = ms_a;
    for (int i = 0; i < nk; i++) {
        q.va.sz[q.va.r] = e->size[kg[i]], q.va.st[q.va.r++] = sa[kg[i]];
        q.vb.sz[q.vb.r] = e->size[kg[i]], q.vb.st[q.vb.r++] = sb[kg[i]];
    }
    q.vb.sz[q.vb.r] = q.N, q.vb.st[q.vb.r++] = ns_b;
    si_free(e);
    q.slots = SI_MAX(1, b->threads);
    q.slot = (q.pack_a ? q.M * q.K : 0) + (q.pack_b ? q.K * q.N : 0) + (q.pack_c ? q.M * q.N : 0);

    ein_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    *p = q;
    dnnl_memory_desc_t ymd, smd;
    cpu_md_plain(&ymd, Y->ndim, Y->dims);
    int64_t sdim = SI_MAX((int64_t)1, q.slot * q.slots);
    cpu_md_plain(&smd, 1, &sdim);
    int ab = cpu_pb_plain(b, nd->in[0]);
    int bb = ab < 0 ? -1 : cpu_pb_plain(b, nd->in[1]);
    int scr = bb < 0 ? -1 : cpu_pb_internal_md(b, &smd);
    int yb = scr < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &ymd);
    if (yb < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[4] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_WEIGHTS, bb}, {DNNL_ARG_DST, scr}, {DNNL_ARG_DST, yb}};
    s = cpu_pb_emit_own(b, n, nd->op_type, "own:einsum", ein_run, p, args, 4);
    if (!s) cpu_pb_consume(b, n);
    return s;
}
