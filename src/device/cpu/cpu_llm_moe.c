/*
 * cpu_llm_moe.c — MoE (com.microsoft, float32 weights) on the CPU device.
 *
 * The reference kernel (ops/moe.c) converts every expert's weights to float on each call and runs one token
 * at a time through scalar dot products; here the weights are read in place. Routing is the reference's
 * (softmax over the router logits, the k largest with the lower expert index first among equals, optionally
 * renormalised). Then the tokens are grouped by expert, and each expert with tokens runs its two projections on
 * the whole group: a GEMV (rows of the weight over the threads) for few tokens, for more cpu_sgemm_nt
 * (AVX-512) or oneDNN's sgemm. Each
 * (token, choice) result lands in its own slot and a token's output is the weighted sum of its slots in the
 * order of its choices, as the reference adds them.
 */
#include "device/cpu/cpu_llm.h"

#include <string.h>

#define MOE_GEMV_MAX 4 /* up to this many tokens of an expert: GEMV, above: sgemm */

typedef struct moe_gemv {
    const float *w, *x, *bias; /* w [rows, in], x [m, in] */
    float *y;                  /* [m, rows] */
    int64_t m, rows, in;
} moe_gemv;

static void gemv_rows(void *ctx, int64_t lo, int64_t hi) {
    const moe_gemv *g = ctx;
    const cpu_vec *v = cpu_vec_get();
    for (int64_t o = lo; o < hi; o++)
        for (int64_t r = 0; r < g->m; r++)
            g->y[r * g->rows + o] = v->dot(g->w + o * g->in, g->x + r * g->in, g->in) + (g->bias ? g->bias[o] : 0.0f);
}

/* y[m, rows] = x[m, in] w[rows, in]^T + bias. False when oneDNN runs out of memory. */
static bool project(const float *x, const float *w, const float *bias, float *y, int64_t m, int64_t rows, int64_t in) {
    if (m <= MOE_GEMV_MAX) {
        moe_gemv g = {.w = w, .x = x, .bias = bias, .y = y, .m = m, .rows = rows, .in = in};
        cpu_par_for(rows, 16, gemv_rows, &g);
        return true;
    }
    if (cpu_sgemm_nt_fits(rows, in)) {
        cpu_sgemm_nt(x, w, bias, y, m, rows, in);
        return true;
    }
    if (dnnl_sgemm('N', 'T', m, rows, in, 1.0f, x, in, w, in, 0.0f, y, rows) != dnnl_success) return false;
    if (bias)
        for (int64_t r = 0; r < m; r++)
            for (int64_t o = 0; o < rows; o++) y[r * rows + o] += bias[o];
    return true;
}

/* The experts' two projections for the driver below: fc (1 or 2) of expert e on n rows x, into y ([n, fF] or
 * [n, hidden]). False: out of memory. */
typedef bool (*moe_proj_fn)(const void *ctx, int64_t e, int fc, const float *x, float *y, int64_t n);

/* Routing, grouping by expert, the projections through proj and the weighted sums. renorm: the chosen weights
 * always sum to 1 (QMoE), else as normalize_routing_weights says; by_expert: a token's shares are added in
 * ascending expert order (QMoE, as ops/moe.c and ORT), else in the order of its choices (MoE). */
static si_result moe_drive(si_kctx *c, const si_moe *pp, bool renorm, bool by_expert, moe_proj_fn proj, const void *ctx) {
    const si_moe p = *pp;
    si_tensor *yt = si_out(c, 0);
    if (!yt || p.T == 0) return SI_OK;
    const int64_t T = p.T, Hd = p.hidden, E = p.E, F = p.F, K = p.k, fF = (p.act == MOE_SWIGLU ? 2 : 1) * F;
    const float *x = si_in(c, 0)->data, *lg = si_in(c, 1)->data;
    float *y = yt->data;

    int64_t *sel = si_malloc((size_t)(T * K) * sizeof(int64_t)), *cnt = si_calloc((size_t)(E + 1), sizeof(int64_t));
    int64_t *list = si_malloc((size_t)(T * K) * sizeof(int64_t)), *pos = si_malloc((size_t)E * sizeof(int64_t));
    float *wt = si_malloc((size_t)(T * K) * sizeof(float)), *prob = si_malloc((size_t)E * sizeof(float));
    cpu_arena *slot_hold = NULL, *work_hold = NULL;
    float *slot = cpu_scratch_take((size_t)(T * K * Hd) * sizeof(float), &slot_hold);
    float *xg = NULL, *h = NULL, *o = NULL;
    if (!sel || !cnt || !list || !pos || !wt || !prob || !slot) goto nomem;

    /* routing, as the reference */
    for (int64_t t = 0; t < T; t++) {
        int64_t *s = sel + t * K;
        const double wsum = si_moe_route(&p, lg + t * E, prob, s);
        for (int64_t i = 0; i < K; i++) cnt[s[i] + 1]++;
        for (int64_t i = 0; i < K; i++) wt[t * K + i] = renorm || p.normalize ? (float)(prob[s[i]] / wsum) : prob[s[i]];
    }
    /* group the (token, choice) slots by expert: list[cnt[e] .. cnt[e+1]) */
    int64_t most = 0;
    for (int64_t e = 0; e < E; e++) {
        most = SI_MAX(most, cnt[e + 1]);
        cnt[e + 1] += cnt[e];
    }
    memcpy(pos, cnt, (size_t)E * sizeof(int64_t));
    for (int64_t s = 0; s < T * K; s++) list[pos[sel[s]]++] = s;

    if (!(xg = cpu_scratch_take((size_t)(most * (2 * Hd + fF)) * sizeof(float), &work_hold))) goto nomem;
    h = xg + most * Hd;
    o = h + most * fF;
    for (int64_t e = 0; e < E; e++) {
        const int64_t n = cnt[e + 1] - cnt[e];
        if (!n) continue;
        const int64_t *ls = list + cnt[e];
        for (int64_t r = 0; r < n; r++) memcpy(xg + r * Hd, x + (ls[r] / K) * Hd, (size_t)Hd * sizeof(float));
        if (!proj(ctx, e, 1, xg, h, n)) goto nomem;
        for (int64_t r = 0; r < n; r++) si_moe_act_rows(&p, h + r * fF, h + r * F); /* in place: row r of [n, F] */
        if (!proj(ctx, e, 2, h, o, n)) goto nomem;
        for (int64_t r = 0; r < n; r++) memcpy(slot + ls[r] * Hd, o + r * Hd, (size_t)Hd * sizeof(float));
    }
    for (int64_t t = 0; t < T; t++) {
        float *yr = y + t * Hd;
        const int64_t *s = sel + t * K;
        for (int64_t q = 0; q < Hd; q++) yr[q] = 0.0f;
        for (int64_t i = 0, prev = -1; i < K; i++) {
            int64_t c_ = i; /* by expert: the choice with the next larger expert index */
            if (by_expert) {
                c_ = -1;
                for (int64_t j = 0; j < K; j++)
                    if (s[j] > prev && (c_ < 0 || s[j] < s[c_])) c_ = j;
                prev = s[c_];
            }
            const float w = wt[t * K + c_], *sr = slot + (t * K + c_) * Hd;
            for (int64_t q = 0; q < Hd; q++) yr[q] += w * sr[q];
        }
    }
    si_free(sel), si_free(cnt), si_free(list), si_free(pos), si_free(wt), si_free(prob);
    cpu_arena_give(slot_hold), cpu_arena_give(work_hold);
    return SI_OK;
nomem:
    si_free(sel), si_free(cnt), si_free(list), si_free(pos), si_free(wt), si_free(prob);
    cpu_arena_give(slot_hold), cpu_arena_give(work_hold);
    return si_op_nomem(c);
}

/* MoE: float weights read in place. */
typedef struct moe_fp {
    const float *w1, *w2, *b1, *b2;
    int64_t Hd, F, fF;
} moe_fp;

static bool moe_fp_proj(const void *ctx, int64_t e, int fc, const float *x, float *y, int64_t n) {
    const moe_fp *m = ctx;
    if (fc == 1) return project(x, m->w1 + e * m->fF * m->Hd, m->b1 ? m->b1 + e * m->fF : NULL, y, n, m->fF, m->Hd);
    return project(x, m->w2 + e * m->Hd * m->F, m->b2 ? m->b2 + e * m->Hd : NULL, y, n, m->Hd, m->F);
}

si_result cpu_moe_run(si_kctx *c) {
    si_moe p;
    si_result st = si_moe_prepare(c, &p);
    if (st) return st;
    for (int i = 0; i < 6; i++)
        if (si_in(c, i) && si_in(c, i)->dtype != SI_F32) return cpu_llm_ref(c);
    const si_tensor *b1 = si_in(c, 3), *b2 = si_in(c, 5);
    const moe_fp m = {si_in(c, 2)->data, si_in(c, 4)->data, b1 ? b1->data : NULL, b2 ? b2->data : NULL, p.hidden, p.F,
                      (p.act == MOE_SWIGLU ? 2 : 1) * p.F};
    return moe_drive(c, &p, false, false, moe_fp_proj, &m);
}

/* QMoE: each expert's projections are MatMulNBits products on its slice of the packed weights (cpu_nbits_mm: the
 * int4 GEMV for decode, the packed-panel GEMM for prefill); the weights are never dequantized as a whole. */
typedef struct moe_q {
    si_nbits nb[2];      /* fc1, fc2 (M set per call) */
    const uint8_t *w[2]; /* packed weights */
    const uint8_t *z[2]; /* packed zero points or NULL */
    const float *s[2], *b[2];
    bool rowzp;          /* zero points per row ([E, rows / per]): given to the kernel as floats */
    float *zpf;          /* rows floats of scratch for them */
} moe_q;

static bool moe_q_proj(const void *ctx, int64_t e, int fc, const float *x, float *y, int64_t n) {
    const moe_q *m = ctx;
    si_nbits p = m->nb[fc - 1];
    p.M = n;
    const int i = fc - 1;
    const uint8_t *zp8 = NULL;
    if (m->z[i] && m->rowzp) {
        si_qmoe_row_zero_points(m->z[i], p.bits, p.N, e, m->zpf);
    } else if (m->z[i]) {
        zp8 = m->z[i] + e * p.N * p.zrow;
    }
    return cpu_nbits_mm(&p, m->w[i] + e * p.N * p.nb * p.blob, zp8, m->s[i] + e * p.N * p.nb, m->z[i] && m->rowzp ? m->zpf : NULL,
                        m->b[i] ? m->b[i] + e * p.N : NULL, x, y);
}

/* The product's description for rows x cols weights in blocks of block (0: the whole row), or false when the
 * MatMulNBits kernels do not take that block (si_nbits_block_ok). */
static bool moe_q_desc(const si_qmoe *q, int64_t rows, int64_t cols, bool zp, bool rowzp, bool bias, si_nbits *p) {
    const int64_t block = q->block ? q->block : cols;
    if (!si_nbits_block_ok(block) || cols % block) return false;
    memset(p, 0, sizeof *p);
    p->K = cols, p->N = rows, p->bits = q->bits, p->block = (int)block;
    si_nbits_layout(p);
    p->zp = !zp ? NB_ZP_NONE : rowzp ? NB_ZP_FLOAT : NB_ZP_PACKED;
    p->bias = bias;
    return true;
}

si_result cpu_qmoe_run(si_kctx *c) {
    si_qmoe q;
    si_result st = si_qmoe_prepare(c, &q);
    if (st) return st;
    const si_moe *p = &q.p;
    const int64_t fF = (p->act == MOE_SWIGLU ? 2 : 1) * p->F;
    static const int fl[] = {0, 1, 3, 4, 6, 7};
    for (size_t i = 0; i < SI_ARRAY_LEN(fl); i++)
        if (si_in(c, fl[i]) && si_in(c, fl[i])->dtype != SI_F32) return cpu_llm_ref(c);
    const si_tensor *z1 = si_in(c, 11), *z2 = si_in(c, 12), *b1 = si_in(c, 4), *b2 = si_in(c, 7);
    moe_q m = {.w = {si_in(c, 2)->data, si_in(c, 5)->data}, .z = {z1 ? z1->data : NULL, z2 ? z2->data : NULL},
               .s = {si_in(c, 3)->data, si_in(c, 6)->data}, .b = {b1 ? b1->data : NULL, b2 ? b2->data : NULL}, .rowzp = !q.block};
    if (!moe_q_desc(&q, fF, p->hidden, z1, m.rowzp, b1, &m.nb[0]) || !moe_q_desc(&q, p->hidden, p->F, z2, m.rowzp, b2, &m.nb[1]))
        return cpu_llm_ref(c);
    if (!(m.zpf = si_malloc((size_t)(SI_MAX(fF, p->hidden) + 1) * sizeof(float)))) return si_op_nomem(c);
    st = moe_drive(c, p, true, true, moe_q_proj, &m);
    si_free(m.zpf);
    return st;
}
