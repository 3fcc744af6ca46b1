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

si_result cpu_moe_run(si_kctx *c) {
    si_moe p;
    si_result st = si_moe_prepare(c, &p);
    if (st) return st;
    for (int i = 0; i < 6; i++)
        if (si_in(c, i) && si_in(c, i)->dtype != SI_F32) return cpu_llm_ref(c);
    si_tensor *yt = si_out(c, 0);
    if (!yt || p.T == 0) return SI_OK;
    const int64_t T = p.T, Hd = p.hidden, E = p.E, F = p.F, K = p.k, fF = (p.act == MOE_SWIGLU ? 2 : 1) * F;
    const float *x = si_in(c, 0)->data, *lg = si_in(c, 1)->data, *w1 = si_in(c, 2)->data, *w2 = si_in(c, 4)->data;
    const float *b1 = si_in(c, 3) ? si_in(c, 3)->data : NULL, *b2 = si_in(c, 5) ? si_in(c, 5)->data : NULL;
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
        for (int64_t i = 0; i < K; i++) wt[t * K + i] = p.normalize ? (float)(prob[s[i]] / wsum) : prob[s[i]];
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
        if (!project(xg, w1 + e * fF * Hd, b1 ? b1 + e * fF : NULL, h, n, fF, Hd)) goto nomem;
        for (int64_t r = 0; r < n; r++) { /* the activation, in place: row r of [n, F] */
            float *hr = h + r * fF, *ar = h + r * F;
            if (p.act == MOE_SWIGLU)
                for (int64_t q = 0; q < F; q++) {
                    const float g = fminf(hr[2 * q], p.limit), l = fmaxf(fminf(hr[2 * q + 1], p.limit), -p.limit);
                    ar[q] = g / (1.0f + expf(-p.alpha * g)) * (l + p.beta);
                }
            else
                for (int64_t q = 0; q < F; q++) ar[q] = si_moe_act(p.act, hr[q]);
        }
        if (!project(h, w2 + e * Hd * F, b2 ? b2 + e * Hd : NULL, o, n, Hd, F)) goto nomem;
        for (int64_t r = 0; r < n; r++) memcpy(slot + ls[r] * Hd, o + r * Hd, (size_t)Hd * sizeof(float));
    }
    for (int64_t t = 0; t < T; t++) {
        float *yr = y + t * Hd;
        for (int64_t q = 0; q < Hd; q++) yr[q] = 0.0f;
        for (int64_t i = 0; i < K; i++) {
            const float w = wt[t * K + i], *sr = slot + (t * K + i) * Hd;
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
