/*
 * cpu_bmm.c — the CPU device's own kernel for a batched MatMul of two activations with few rows per product:
 * a decode step's attention (one query position against the whole cache, Q K^T and then P V); and, on CPUs
 * without AVX-512, for products of many rows too (prefill and encoder attention), tiled: B packed into 32-column
 * panels, then a 6 x 16 microkernel over blocks of rows (cpu_sgemm_pack_group / cpu_sgemm_packed_rows).
 *
 * oneDNN compiles (JITs) a matmul primitive for each shape. In a decode loop the cache grows by one position
 * per step, so every step met new shapes and paid the primitive's creation (about a millisecond a step for the
 * two attention products, more than their run time). This kernel takes any shape without code generation: rows
 * of A against B through the operands' strides (the Transposes matmul_strided folds), the output written
 * through its strides (a Transpose after it), the chain's output scale and binary post-ops (the scale and mask
 * of the scores) applied per row. The dot or axpy form is picked by which operand is contiguous.
 */
#include "device/cpu/cpu.h"
#include "device/cpu/cpu_llm.h"

#include <string.h>

#define BMM_MAX_ROWS 8              /* rows per product at most (M): decode steps, short speculative runs */
#define BMM_MAX_MACS (64LL << 20)   /* larger products amortize oneDNN's JIT and use its blocking */

typedef struct bmm_po {
    dnnl_alg_kind_t alg;
    int64_t st[DNNL_MAX_NDIMS]; /* element strides of the operand over the dst dims (0: broadcast) */
} bmm_po;

typedef struct bmm_params {
    int r;
    int64_t d[DNNL_MAX_NDIMS];                                      /* dst dims [..., M, N] */
    int64_t K;
    int64_t sa[DNNL_MAX_NDIMS], sb[DNNL_MAX_NDIMS], sd[DNNL_MAX_NDIMS]; /* element strides (0: broadcast) */
    int64_t nb;                                                     /* products (batch) */
    float oscale;
    int n_po;
    bmm_po po[CPU_MAX_PO];
    bool tiled; /* many rows: B packed into panels, then blocks of rows (bmm_tiled) */
} bmm_params;

static bool po_alg_ok(dnnl_alg_kind_t a) {
    return a == dnnl_binary_add || a == dnnl_binary_mul || a == dnnl_binary_sub || a == dnnl_binary_div ||
           a == dnnl_binary_max || a == dnnl_binary_min;
}

/* The tiled kernel for products of many rows: on CPUs with AVX2 and without AVX-512, where oneDNN 2.6's matmul is
 * gemm:jit (its kernels generated at the first call, 16-24 ms, and packed again at each call); with AVX-512 its
 * brgemm matmul is kept. SI_CPU_NO_BMM_TILED=1 turns it off (read at plan time). */
static bool bmm_tiled_cpu(void) {
    const cpu_vec *v = cpu_vec_get();
    return cpu_sgemm_strided_cpu() && !v->avx512 && !getenv("SI_CPU_NO_BMM_TILED");
}

static float po_apply(dnnl_alg_kind_t a, float x, float s) {
    switch (a) {
    case dnnl_binary_add: return x + s;
    case dnnl_binary_mul: return x * s;
    case dnnl_binary_sub: return x - s;
    case dnnl_binary_div: return x / s;
    case dnnl_binary_max: return x > s ? x : s;
    case dnnl_binary_min: return x < s ? x : s;
    default: return x;
    }
}

/* Element strides of a plain or strided (no blocking) f32 memory descriptor over rank r, 0 on a batch dim where the
 * descriptor has extent 1 and the product more (broadcast; the last two dims are the product's own). False for
 * other layouts. */
static bool md_strides(const dnnl_memory_desc_t *md, int r, const int64_t *full, int64_t *st) {
    if (md->ndims != r || md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks || md->offset0 ||
        md->data_type != dnnl_f32)
        return false;
    for (int i = 0; i < r; i++) st[i] = i < r - 2 && md->dims[i] == 1 && full[i] != 1 ? 0 : md->format_desc.blocking.strides[i];
    return true;
}

typedef struct bmm_job {
    const bmm_params *p;
    const float *a, *b;
    const float *const *po;
    float *d;
} bmm_job;

/* The element offsets of product bi in A, B, D and the post-op operands. */
static void bmm_offsets(const bmm_params *p, int64_t bi, int64_t *oa, int64_t *ob, int64_t *od, int64_t *op) {
    int64_t rem = bi;
    *oa = *ob = *od = 0;
    for (int k = 0; k < p->n_po; k++) op[k] = 0;
    for (int i = p->r - 3; i >= 0; i--) {
        const int64_t x = rem % p->d[i];
        rem /= p->d[i];
        *oa += x * p->sa[i], *ob += x * p->sb[i], *od += x * p->sd[i];
        for (int k = 0; k < p->n_po; k++) op[k] += x * p->po[k].st[i];
    }
}

/* d[0..n) = d op s[0..n) (sn 1) or d op s[0] (sn 0): loops the compiler vectorizes. */
static void po_run(dnnl_alg_kind_t a, float *restrict d, const float *restrict s, int64_t sn, int64_t n) {
    if (sn == 0) {
        const float v = s[0];
        switch (a) {
        case dnnl_binary_add: for (int64_t i = 0; i < n; i++) d[i] += v; return;
        case dnnl_binary_mul: for (int64_t i = 0; i < n; i++) d[i] *= v; return;
        case dnnl_binary_sub: for (int64_t i = 0; i < n; i++) d[i] -= v; return;
        case dnnl_binary_div: for (int64_t i = 0; i < n; i++) d[i] /= v; return;
        default: break;
        }
    } else if (sn == 1) {
        switch (a) {
        case dnnl_binary_add: for (int64_t i = 0; i < n; i++) d[i] += s[i]; return;
        case dnnl_binary_mul: for (int64_t i = 0; i < n; i++) d[i] *= s[i]; return;
        case dnnl_binary_sub: for (int64_t i = 0; i < n; i++) d[i] -= s[i]; return;
        case dnnl_binary_div: for (int64_t i = 0; i < n; i++) d[i] /= s[i]; return;
        default: break;
        }
    }
    for (int64_t i = 0; i < n; i++) d[i] = po_apply(a, d[i], s[i * sn]);
}

/* A row of D, d[0..n) with elements sdn apart: oscale times it, then the post-ops, whose operands for this row
 * start at po[k] + op[k] (then st[r - 1] apart). Contiguous rows op by op (vectorised), others element by
 * element: each element sees the same operations in the same order. */
static void post_row(const bmm_params *p, const float *const *po, const int64_t *op, float *d, int64_t sdn, int64_t n) {
    const int r = p->r;
    if (sdn == 1) {
        if (p->oscale != 1.0f)
            for (int64_t i = 0; i < n; i++) d[i] *= p->oscale;
        for (int k = 0; k < p->n_po; k++) po_run(p->po[k].alg, d, po[k] + op[k], p->po[k].st[r - 1], n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float x = d[i * sdn] * p->oscale;
        for (int k = 0; k < p->n_po; k++) x = po_apply(p->po[k].alg, x, po[k][op[k] + i * p->po[k].st[r - 1]]);
        d[i * sdn] = x;
    }
}

/* Row m of product bi: D[bi, m, :] = oscale * A[bi, m, :] B[bi] with the post-ops. */
static void bmm_row(const bmm_job *j, const cpu_vec *v, int64_t bi, int64_t m) {
    const bmm_params *p = j->p;
    const int r = p->r;
    const int64_t N = p->d[r - 1], K = p->K;
    int64_t oa, ob, od, op[CPU_MAX_PO];
    bmm_offsets(p, bi, &oa, &ob, &od, op);
    const float *a = j->a + oa + m * p->sa[r - 2], *bb = j->b + ob;
    float *d = j->d + od + m * p->sd[r - 2];
    const int64_t sak = p->sa[r - 1], sbk = p->sb[r - 2], sbn = p->sb[r - 1], sdn = p->sd[r - 1];
    if (sbn == 1 && sdn == 1) { /* B's rows contiguous (P V): D row = sum over k of a[k] B[k, :] */
        memset(d, 0, sizeof(float) * (size_t)N);
        for (int64_t k = 0; k < K; k++) v->axpy(d, a[k * sak], bb + k * sbk, N);
    } else if (sbk == 1 && sak == 1) { /* B's columns contiguous (Q K^T over the cache): one dot per column */
        for (int64_t n = 0; n < N; n++) d[n * sdn] = v->dot(a, bb + n * sbn, K);
    } else {
        for (int64_t n = 0; n < N; n++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++) s += a[k * sak] * bb[k * sbk + n * sbn];
            d[n * sdn] = s;
        }
    }
    if (p->oscale == 1.0f && !p->n_po) return;
    for (int k = 0; k < p->n_po; k++) op[k] += m * p->po[k].st[r - 2];
    post_row(p, j->po, op, d, sdn, N);
}

static void bmm_range(void *ctx, int64_t lo, int64_t hi) {
    const bmm_job *j = ctx;
    const cpu_vec *v = cpu_vec_get();
    const int64_t M = j->p->d[j->p->r - 2];
    for (int64_t i = lo; i < hi; i++) bmm_row(j, v, i / M, i % M);
}

/* Many rows: B of every product packed into panels once (tasks: product x column group), then blocks of rows of
 * each product against all of its panels (tasks: product x row block), the post-ops applied to each finished
 * block while it is in cache. A block of rows of D stays near 64 KiB (in L2 with the panels): 12 to 48 rows,
 * a multiple of the microkernel's 6 (a speech encoder's 1500 x 1500 scores: 12 rows). */
static int64_t bmm_row_block(int64_t N) { return SI_MAX((int64_t)12, SI_MIN((int64_t)48, 16384 / SI_MAX((int64_t)1, N) / 6 * 6)); }

typedef struct bmm_tile {
    const bmm_job *j;
    float *d;                /* D of the product */
    int64_t op[CPU_MAX_PO]; /* the post-op operands' offsets for the product */
} bmm_tile;

typedef struct bmm_tiled_job {
    const bmm_job *j;
    float *packed;
    int64_t groups, per; /* column groups per product, floats of panels per product */
} bmm_tiled_job;

static void bmm_tile_post(const void *ctx, int64_t m0, int64_t mr, int64_t n0, int nc) {
    const bmm_tile *t = ctx;
    const bmm_params *p = t->j->p;
    const int r = p->r;
    for (int64_t m = m0; m < m0 + mr; m++) {
        int64_t op[CPU_MAX_PO];
        for (int k = 0; k < p->n_po; k++) op[k] = t->op[k] + m * p->po[k].st[r - 2] + n0 * p->po[k].st[r - 1];
        post_row(p, t->j->po, op, t->d + m * p->sd[r - 2] + n0, 1, nc);
    }
}

/* The product bi as cpu_sgemm_strided (tile: its post-op context, filled in). */
static cpu_sgemm_strided bmm_product(const bmm_job *j, int64_t bi, bmm_tile *tile) {
    const bmm_params *p = j->p;
    const int r = p->r;
    int64_t oa, ob, od;
    *tile = (bmm_tile){.j = j};
    bmm_offsets(p, bi, &oa, &ob, &od, tile->op);
    tile->d = j->d + od;
    return (cpu_sgemm_strided){.a = j->a + oa, .b = j->b + ob, .y = tile->d, .M = p->d[r - 2], .N = p->d[r - 1], .K = p->K, .lda = p->sa[r - 2],
                               .sbk = p->sb[r - 2], .sbn = p->sb[r - 1], .ldy = p->sd[r - 2],
                               .post = p->oscale != 1.0f || p->n_po ? bmm_tile_post : NULL, .post_ctx = tile};
}

static void bmm_pack_tasks(void *ctx, int64_t lo, int64_t hi) {
    const bmm_tiled_job *t = ctx;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t bi = i / t->groups, g = i % t->groups;
        bmm_tile tile;
        const cpu_sgemm_strided q = bmm_product(t->j, bi, &tile);
        cpu_sgemm_pack_group(&q, g, t->packed + bi * t->per + g * q.K * CPU_SGEMM_GROUP);
    }
}

static void bmm_row_tasks(void *ctx, int64_t lo, int64_t hi) {
    const bmm_tiled_job *t = ctx;
    const int64_t M = t->j->p->d[t->j->p->r - 2], rb = bmm_row_block(t->j->p->d[t->j->p->r - 1]), blocks = (M + rb - 1) / rb;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t bi = i / blocks, m0 = i % blocks * rb;
        bmm_tile tile;
        const cpu_sgemm_strided q = bmm_product(t->j, bi, &tile);
        cpu_sgemm_packed_rows(&q, t->packed + bi * t->per, m0, SI_MIN(rb, M - m0));
    }
}

static si_result bmm_tiled(const bmm_job *j, int threads) {
    const bmm_params *p = j->p;
    const int64_t M = p->d[p->r - 2], N = p->d[p->r - 1], groups = (N + CPU_SGEMM_GROUP - 1) / CPU_SGEMM_GROUP;
    bmm_tiled_job t = {.j = j, .groups = groups, .per = groups * p->K * CPU_SGEMM_GROUP};
    cpu_arena *hold;
    if (!(t.packed = cpu_scratch_take((size_t)(p->nb * t.per) * sizeof(float), &hold)))
        return si_err(SI_ERR_NO_MEM, "MatMul: no memory for the packed operand (%lld floats)", (long long)(p->nb * t.per));
    const int64_t rb = bmm_row_block(N), packs = p->nb * groups, rows = p->nb * ((M + rb - 1) / rb);
    if (threads > 1) {
        cpu_par_for(packs, 1, bmm_pack_tasks, &t);
        cpu_par_for(rows, 1, bmm_row_tasks, &t);
    } else {
        bmm_pack_tasks(&t, 0, packs);
        bmm_row_tasks(&t, 0, rows);
    }
    cpu_arena_give(hold);
    return SI_OK;
}

/* bufs: A, B, the post-op operands in chain order, D. */
static si_result bmm_kernel(const void *ctx, void *const *bufs, int threads) {
    const bmm_params *p = ctx;
    bmm_job j = {p, bufs[0], bufs[1], (const float *const *)(bufs + 2), bufs[2 + p->n_po]};
    if (p->tiled) return bmm_tiled(&j, threads);
    const int64_t rows = p->nb * p->d[p->r - 2];
    const int64_t macs = rows * p->d[p->r - 1] * p->K;
    if (threads > 1 && macs >= (256 << 10)) cpu_par_for(rows, 1, bmm_range, &j);
    else bmm_range(&j, 0, rows);
    return SI_OK;
}

/* Can the own kernel take this product and chain: f32 operands in plain or strided layouts, an output scale and
 * binary post-ops with f32 operands (no eltwise, no residual sum, no folded affine)? *few: few rows, the row
 * kernel; else only the tiled kernel can (cpu_bmm_lower checks its strides). */
static bool bmm_fits(const cpu_pb *b, const cpu_chain *c, const dnnl_memory_desc_t *smd, const dnnl_memory_desc_t *wmd,
                     const dnnl_memory_desc_t *dmd, bool *few) {
    const int r = dmd->ndims;
    if (r < 3 || smd->ndims != r || wmd->ndims != r || c->scale || c->shift) return false;
    int64_t nb = 1;
    for (int i = 0; i < r - 2; i++) nb *= dmd->dims[i];
    *few = dmd->dims[r - 2] <= BMM_MAX_ROWS &&
           (double)nb * (double)dmd->dims[r - 2] * (double)dmd->dims[r - 1] * (double)smd->dims[r - 1] <= (double)BMM_MAX_MACS;
    if (!*few && !bmm_tiled_cpu()) return false;
    for (int i = 0; i < c->n_po; i++) {
        const cpu_po *po = &c->po[i];
        if (po->kind != PO_BINARY || !po_alg_ok(po->alg) || po->ndim != r || b->g->values[po->value].dtype != SI_F32) return false;
    }
    return true;
}

si_result cpu_bmm_lower(cpu_pb *b, int n, cpu_chain *c, const dnnl_memory_desc_t *smd, int sa, const dnnl_memory_desc_t *wmd,
                        int sw, const dnnl_memory_desc_t *dmd, int tn) {
    bool few;
    if (!bmm_fits(b, c, smd, wmd, dmd, &few)) return SI_ERR_UNSUPPORTED;
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const int r = dmd->ndims;
    bmm_params q = {.r = r, .nb = 1, .K = smd->dims[r - 1], .oscale = c->oscale, .n_po = c->n_po};
    for (int i = 0; i < r; i++) q.d[i] = dmd->dims[i];
    for (int i = 0; i < r - 2; i++) q.nb *= q.d[i];
    if (!md_strides(smd, r, q.d, q.sa) || !md_strides(wmd, r, q.d, q.sb) || !md_strides(dmd, r, q.d, q.sd))
        return SI_ERR_UNSUPPORTED;
    q.tiled = !few;
    if (q.tiled && (q.sa[r - 1] != 1 || q.sd[r - 1] != 1)) return SI_ERR_UNSUPPORTED; /* the tiled kernel's rows */
    for (int i = 0; i < c->n_po; i++) {
        q.po[i].alg = c->po[i].alg;
        si_broadcast_strides(r, c->po[i].dims, r, q.d, q.po[i].st);
    }
    bmm_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    *p = q;
    cpu_arg args[4 + CPU_MAX_PO];
    int na = 2;
    args[0].arg = DNNL_ARG_SRC;
    args[0].buf = sa >= 0 ? sa : cpu_pb_in_md(b, nd->in[0], smd);
    args[1].arg = DNNL_ARG_WEIGHTS;
    args[1].buf = args[0].buf < 0 ? -1 : sw >= 0 ? sw : cpu_pb_in_md(b, nd->in[1], wmd);
    if (args[1].buf < 0) return SI_ERR_INTERNAL;
    si_result s = cpu_chain_args(b, c, args, &na);
    if (s) return s;
    int db;
    if (tn >= 0) { /* written straight into the layout of the Transpose after it */
        const si_val *T = &g->values[g->nodes[tn].out[0]];
        dnnl_memory_desc_t tmd;
        cpu_md_plain(&tmd, T->ndim, T->dims);
        int tb = cpu_pb_new_out(b, g->nodes[tn].out[0], &tmd);
        db = tb < 0 ? -1 : cpu_pb_alias(b, tb, dmd);
    } else {
        db = cpu_chain_dst(b, c, dmd);
    }
    if (db < 0) return SI_ERR_INTERNAL;
    args[na].arg = DNNL_ARG_DST;
    args[na++].buf = db;
    char name[96];
    cpu_chain_name(c, tn >= 0 ? (few ? "MatMul(rows)+Transpose" : "MatMul(tiled)+Transpose") : few ? "MatMul(rows)" : "MatMul(tiled)", name,
                   sizeof name);
    if ((s = cpu_pb_emit_own(b, n, name, few ? "own:bmm" : "own:bmm_tiled", bmm_kernel, p, args, na))) return s;
    cpu_chain_consume(b, c);
    if (tn >= 0) cpu_pb_consume(b, tn);
    return SI_OK;
}
