/*
 * cpu_bmm.c — the CPU device's own kernel for a batched MatMul of two activations with few rows per product:
 * a decode step's attention (one query position against the whole cache, Q K^T and then P V).
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
} bmm_params;

static bool po_alg_ok(dnnl_alg_kind_t a) {
    return a == dnnl_binary_add || a == dnnl_binary_mul || a == dnnl_binary_sub || a == dnnl_binary_div ||
           a == dnnl_binary_max || a == dnnl_binary_min;
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

/* Row m of product bi: D[bi, m, :] = oscale * A[bi, m, :] B[bi] with the post-ops. */
static void bmm_row(const bmm_job *j, const cpu_vec *v, int64_t bi, int64_t m) {
    const bmm_params *p = j->p;
    const int r = p->r;
    const int64_t N = p->d[r - 1], K = p->K;
    int64_t oa = 0, ob = 0, od = 0, op[CPU_MAX_PO] = {0}, rem = bi;
    for (int i = r - 3; i >= 0; i--) {
        const int64_t x = rem % p->d[i];
        rem /= p->d[i];
        oa += x * p->sa[i], ob += x * p->sb[i], od += x * p->sd[i];
        for (int k = 0; k < p->n_po; k++) op[k] += x * p->po[k].st[i];
    }
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
    for (int64_t n = 0; n < N; n++) {
        float x = d[n * sdn] * p->oscale;
        for (int k = 0; k < p->n_po; k++) x = po_apply(p->po[k].alg, x, j->po[k][op[k] + n * p->po[k].st[r - 1]]);
        d[n * sdn] = x;
    }
}

static void bmm_range(void *ctx, int64_t lo, int64_t hi) {
    const bmm_job *j = ctx;
    const cpu_vec *v = cpu_vec_get();
    const int64_t M = j->p->d[j->p->r - 2];
    for (int64_t i = lo; i < hi; i++) bmm_row(j, v, i / M, i % M);
}

/* bufs: A, B, the post-op operands in chain order, D. */
static si_result bmm_kernel(const void *ctx, void *const *bufs, int threads) {
    const bmm_params *p = ctx;
    bmm_job j = {p, bufs[0], bufs[1], (const float *const *)(bufs + 2), bufs[2 + p->n_po]};
    const int64_t rows = p->nb * p->d[p->r - 2];
    const int64_t macs = rows * p->d[p->r - 1] * p->K;
    if (threads > 1 && macs >= (256 << 10)) cpu_par_for(rows, 1, bmm_range, &j);
    else bmm_range(&j, 0, rows);
    return SI_OK;
}

/* Can the own kernel take this product and chain: few rows, f32 operands in plain or strided layouts, an output
 * scale and binary post-ops with f32 operands (no eltwise, no residual sum, no folded affine)? */
static bool bmm_fits(const cpu_pb *b, const cpu_chain *c, const dnnl_memory_desc_t *smd, const dnnl_memory_desc_t *wmd,
                     const dnnl_memory_desc_t *dmd) {
    const int r = dmd->ndims;
    if (r < 3 || smd->ndims != r || wmd->ndims != r || dmd->dims[r - 2] > BMM_MAX_ROWS || c->scale || c->shift) return false;
    int64_t nb = 1;
    for (int i = 0; i < r - 2; i++) nb *= dmd->dims[i];
    if ((double)nb * (double)dmd->dims[r - 2] * (double)dmd->dims[r - 1] * (double)smd->dims[r - 1] > (double)BMM_MAX_MACS) return false;
    for (int i = 0; i < c->n_po; i++) {
        const cpu_po *po = &c->po[i];
        if (po->kind != PO_BINARY || !po_alg_ok(po->alg) || po->ndim != r || b->g->values[po->value].dtype != SI_F32) return false;
    }
    return true;
}

si_result cpu_bmm_lower(cpu_pb *b, int n, cpu_chain *c, const dnnl_memory_desc_t *smd, int sa, const dnnl_memory_desc_t *wmd,
                        int sw, const dnnl_memory_desc_t *dmd, int tn) {
    if (!bmm_fits(b, c, smd, wmd, dmd)) return SI_ERR_UNSUPPORTED;
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const int r = dmd->ndims;
    bmm_params q = {.r = r, .nb = 1, .K = smd->dims[r - 1], .oscale = c->oscale, .n_po = c->n_po};
    for (int i = 0; i < r; i++) q.d[i] = dmd->dims[i];
    for (int i = 0; i < r - 2; i++) q.nb *= q.d[i];
    if (!md_strides(smd, r, q.d, q.sa) || !md_strides(wmd, r, q.d, q.sb) || !md_strides(dmd, r, q.d, q.sd))
        return SI_ERR_UNSUPPORTED;
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
    cpu_chain_name(c, tn >= 0 ? "MatMul(rows)+Transpose" : "MatMul(rows)", name, sizeof name);
    if ((s = cpu_pb_emit_own(b, n, name, "own:bmm", bmm_kernel, p, args, na))) return s;
    cpu_chain_consume(b, c);
    if (tn >= 0) cpu_pb_consume(b, tn);
    return SI_OK;
}
