/*
 * seqmodel.c — reference kernels for sequence-model ops of recent opsets (in double): LinearAttention (a
 * recurrent state updated per step by the linear, gated, delta or gated_delta rule), CausalConvWithState
 * (a depthwise causal 1-D convolution that carries its last kernel-1 inputs as state) and FlexAttention
 * (ai.onnx.preview; scaled dot-product attention with grouped KV heads; the score_mod / prob_mod subgraphs
 * are not supported).
 *
 * The semantics follow the ONNX definitions (their function bodies spell them out step by step).
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

/* Free up to eight buffers (NULLs allowed). */
static void free8(void *a, void *b, void *c, void *d, void *e, void *f, void *g, void *h) {
    void *p[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; i++) si_free(p[i]);
}

// --- LinearAttention ------------------------------------------------------------------------------------

enum { LA_LINEAR, LA_GATED, LA_DELTA, LA_GATED_DELTA };

typedef struct la_plan {
    int64_t B, T, hq, hkv, dk, dv;
    int rule;
    double scale;
    bool decay_per_head, beta_shared;
} la_plan;

static si_result la_plan_of(si_kctx *c, la_plan *p) {
    si_result s = si_inputs_typed(
        c, 3, 6, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T_LIKE0, SI_T_LIKE0, SI_T_LIKE0, SI_T_LIKE0},
        (const char *const[]){"input 'query'", "input 'key'", "input 'value'", "input 'past_state'", "input 'decay'", "input 'beta'"});
    if (s) return s;
    const si_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2], *past = si_in(c, 3), *dec = si_in(c, 4), *beta = si_in(c, 5);
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "query, key and value must have rank 3 (batch, sequence, heads * size)");
    static const char *const rules[] = {"linear", "gated", "delta", "gated_delta"};
    if ((s = si_attr_choice(c, "update_rule", "gated_delta", rules, 4, &p->rule))) return s;
    p->hq = si_attr_int(c->node, "q_num_heads", 0);
    p->hkv = si_attr_int(c->node, "kv_num_heads", 0);
    if (p->hq < 1 || p->hkv < 1 || p->hq % p->hkv || p->hq > INT32_MAX)
        return si_op_err(c, SI_ERR_INVALID_ARG, "q_num_heads %lld and kv_num_heads %lld must be positive, q a multiple of kv",
                         (long long)p->hq, (long long)p->hkv);
    p->B = q->dims[0];
    p->T = q->dims[1];
    for (int i = 0; i < 2; i++)
        if ((si_dim_known(k->dims[i]) && si_dim_known(q->dims[i]) && k->dims[i] != q->dims[i]) ||
            (si_dim_known(v->dims[i]) && si_dim_known(q->dims[i]) && v->dims[i] != q->dims[i]))
            return si_op_err(c, SI_ERR_INVALID_ARG, "query, key and value differ in dimension %d", i);
    p->dk = p->dv = SI_DIM_UNKNOWN;
    if (si_dim_known(q->dims[2])) {
        if (q->dims[2] % p->hq) return si_op_err(c, SI_ERR_INVALID_ARG, "query size %lld is not a multiple of q_num_heads", (long long)q->dims[2]);
        p->dk = q->dims[2] / p->hq;
        if (si_dim_known(k->dims[2]) && k->dims[2] != p->dk * p->hkv)
            return si_op_err(c, SI_ERR_INVALID_ARG, "key size %lld must be kv_num_heads * %lld", (long long)k->dims[2], (long long)p->dk);
    }
    if (si_dim_known(v->dims[2])) {
        if (v->dims[2] % p->hkv) return si_op_err(c, SI_ERR_INVALID_ARG, "value size %lld is not a multiple of kv_num_heads", (long long)v->dims[2]);
        p->dv = v->dims[2] / p->hkv;
    }
    const int64_t sdims[4] = {p->B, p->hkv, p->dk, p->dv};
    if (past) {
        if (past->ndim != 4) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'past_state' must have rank 4");
        for (int d = 0; d < 4; d++)
            if (si_dim_known(past->dims[d]) && si_dim_known(sdims[d]) && past->dims[d] != sdims[d])
                return si_op_err(c, SI_ERR_INVALID_ARG, "input 'past_state' dimension %d is %lld, expected %lld", d,
                                 (long long)past->dims[d], (long long)sdims[d]);
    }
    const bool gated = p->rule == LA_GATED || p->rule == LA_GATED_DELTA, delta = p->rule >= LA_DELTA;
    if (gated && !dec) return si_op_err(c, SI_ERR_INVALID_ARG, "update_rule %s needs input 'decay'", rules[p->rule]);
    if (delta && !beta) return si_op_err(c, SI_ERR_INVALID_ARG, "update_rule %s needs input 'beta'", rules[p->rule]);
    p->decay_per_head = false;
    if (gated) {
        if (dec->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'decay' must have rank 3");
        const int64_t last = dec->dims[2];
        if (si_dim_known(last) && si_dim_known(p->dk) && last != p->hkv * p->dk && last != p->hkv)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'decay' last dimension %lld must be kv_num_heads * d_k or kv_num_heads",
                             (long long)last);
        p->decay_per_head = last == p->hkv && !(si_dim_known(p->dk) && p->dk == 1);
    }
    p->beta_shared = false;
    if (delta) {
        if (beta->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'beta' must have rank 3");
        const int64_t last = beta->dims[2];
        if (si_dim_known(last) && last != p->hkv && last != 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'beta' last dimension %lld must be kv_num_heads or 1", (long long)last);
        p->beta_shared = last == 1;
    }
    p->scale = si_attr_float(c->node, "scale", 0.0f);
    if (p->scale == 0 && si_dim_known(p->dk)) p->scale = p->dk > 0 ? 1.0 / sqrt((double)p->dk) : 1.0;
    return SI_OK;
}

SI_OP_PLANNED(la_infer, la_plan, p, la_plan_of) {
    si_result s = SI_OK;
    const si_dtype dt = c->in[0]->dtype;
    const int64_t od[3] = {p->B, p->T, si_dim_mul(p->hq, p->dv)}, sd[4] = {p->B, p->hkv, p->dk, p->dv};
    if ((s = si_set_out(c, 0, dt, 3, od))) return s;
    return si_set_out(c, 1, dt, 4, sd);
}

SI_OP_PLANNED(la_run, la_plan, p, la_plan_of) {
    si_result s = si_run_ready(c);
    if (s) return s;
    const si_tensor *past = si_in(c, 3), *dec = si_in(c, 4), *bt = si_in(c, 5);
    const int64_t B = p->B, T = p->T, HQ = p->hq, HKV = p->hkv, DK = p->dk, DV = p->dv, G = HQ / HKV;
    const int64_t ns = B * HKV * DK * DV;
    const bool gated = p->rule == LA_GATED || p->rule == LA_GATED_DELTA, delta = p->rule >= LA_DELTA;
    double *q = si_tensor_to_f64(c->in[0]), *k = si_tensor_to_f64(c->in[1]), *v = si_tensor_to_f64(c->in[2]);
    double *st = past ? si_tensor_to_f64(past) : si_malloc(sizeof(double) * (size_t)(ns > 0 ? ns : 1));
    double *g = gated ? si_tensor_to_f64(dec) : NULL, *be = delta ? si_tensor_to_f64(bt) : NULL;
    double *y = si_malloc(sizeof(double) * (size_t)(B * T * HQ * DV > 0 ? B * T * HQ * DV : 1));
    double *tmp = si_malloc(sizeof(double) * (size_t)(DV > 0 ? DV : 1));
    if (!q || !k || !v || !st || !y || !tmp || (gated && !g) || (delta && !be)) {
        free8(q, k, v, st, g, be, y, tmp);
        return si_op_nomem(c);
    }
    if (!past) memset(st, 0, sizeof(double) * (size_t)ns);
    const int64_t glast = p->decay_per_head ? HKV : HKV * DK, blast = p->beta_shared ? 1 : HKV;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const int64_t bt0 = b * T + t;
            for (int64_t h = 0; h < HKV; h++) {
                double *S = st + (b * HKV + h) * DK * DV;
                const double *kt = k + bt0 * HKV * DK + h * DK, *vt = v + bt0 * HKV * DV + h * DV;
                if (gated)
                    for (int64_t i = 0; i < DK; i++) {
                        const double e = exp(g[bt0 * glast + (p->decay_per_head ? h : h * DK + i)]);
                        for (int64_t j = 0; j < DV; j++) S[i * DV + j] *= e;
                    }
                /* the row written: v (linear, gated) or beta * (v - S^T k) (delta rules) */
                for (int64_t j = 0; j < DV; j++) tmp[j] = vt[j];
                if (delta) {
                    const double bv = be[bt0 * blast + (p->beta_shared ? 0 : h)];
                    for (int64_t j = 0; j < DV; j++) {
                        double r = 0;
                        for (int64_t i = 0; i < DK; i++) r += S[i * DV + j] * kt[i];
                        tmp[j] = bv * (vt[j] - r);
                    }
                }
                for (int64_t i = 0; i < DK; i++)
                    for (int64_t j = 0; j < DV; j++) S[i * DV + j] += kt[i] * tmp[j];
            }
            for (int64_t hq = 0; hq < HQ; hq++) {
                const double *S = st + (b * HKV + hq / G) * DK * DV, *qt = q + bt0 * HQ * DK + hq * DK;
                double *yo = y + bt0 * HQ * DV + hq * DV;
                for (int64_t j = 0; j < DV; j++) {
                    double r = 0;
                    for (int64_t i = 0; i < DK; i++) r += qt[i] * S[i * DV + j];
                    yo[j] = p->scale * r;
                }
            }
        }
    if (si_out(c, 0)) si_tensor_from_f64(si_out(c, 0), y);
    if (si_out(c, 1)) si_tensor_from_f64(si_out(c, 1), st);
    free8(q, k, v, st, g, be, y, tmp);
    return SI_OK;
}

// --- CausalConvWithState --------------------------------------------------------------------------------

static si_result ccs_check(si_kctx *c, bool *silu) {
    si_result s = si_inputs_typed(c, 2, 4, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T_LIKE0, SI_T_LIKE0},
                                  (const char *const[]){"input 'input'", "input 'weight'", "input 'bias'", "input 'past_state'"});
    if (s) return s;
    const si_tensor *x = c->in[0], *w = c->in[1], *b = si_in(c, 2), *past = si_in(c, 3);
    if (x->ndim != 3) return si_op_err(c, SI_ERR_UNSUPPORTED, "input must have rank 3 (batch, channels, length), got %d", x->ndim);
    if (w->ndim != 3 || (si_dim_known(w->dims[1]) && w->dims[1] != 1) ||
        (si_dim_known(w->dims[0]) && si_dim_known(x->dims[1]) && w->dims[0] != x->dims[1]))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'weight' must have shape (channels, 1, kernel_size)");
    if (si_dim_known(w->dims[2]) && w->dims[2] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_size must be positive");
    if (b && (b->ndim != 1 || (si_dim_known(b->dims[0]) && si_dim_known(x->dims[1]) && b->dims[0] != x->dims[1])))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'bias' must have shape (channels)");
    if (past) {
        const int64_t want[3] = {x->dims[0], x->dims[1], si_dim_sub(w->dims[2], 1)};
        if (past->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'past_state' must have rank 3");
        for (int d = 0; d < 3; d++)
            if (si_dim_known(past->dims[d]) && si_dim_known(want[d]) && past->dims[d] != want[d])
                return si_op_err(c, SI_ERR_INVALID_ARG, "input 'past_state' dimension %d is %lld, expected %lld", d,
                                 (long long)past->dims[d], (long long)want[d]);
    }
    static const char *const acts[] = {"none", "silu", "swish"};
    int a = 0;
    if ((s = si_attr_choice(c, "activation", "none", acts, 3, &a))) return s;
    *silu = a != 0;
    return SI_OK;
}

static si_result ccs_infer(si_kctx *c) {
    bool silu = false;
    si_result s = ccs_check(c, &silu);
    if (s) return s;
    const si_tensor *x = c->in[0];
    const int64_t sd[3] = {x->dims[0], x->dims[1], si_dim_sub(c->in[1]->dims[2], 1)};
    if ((s = si_same_as_input(c, 0, 0))) return s;
    return si_set_out(c, 1, x->dtype, 3, sd);
}

static si_result ccs_run(si_kctx *c) {
    bool silu = false;
    si_result s = ccs_check(c, &silu);
    if (s || (s = si_run_ready(c))) return s;
    const si_tensor *xt = c->in[0], *bt = si_in(c, 2), *pt = si_in(c, 3);
    const int64_t B = xt->dims[0], C = xt->dims[1], L = xt->dims[2], K = c->in[1]->dims[2], P = L + K - 1;
    double *x = si_tensor_to_f64(xt), *w = si_tensor_to_f64(c->in[1]), *b = bt ? si_tensor_to_f64(bt) : NULL;
    double *past = pt ? si_tensor_to_f64(pt) : NULL;
    double *pad = si_malloc(sizeof(double) * (size_t)(P > 0 ? P : 1));
    double *y = si_malloc(sizeof(double) * (size_t)(B * C * L > 0 ? B * C * L : 1));
    double *ns = si_malloc(sizeof(double) * (size_t)(B * C * (K - 1) > 0 ? B * C * (K - 1) : 1));
    if (!x || !w || !pad || !y || !ns || (bt && !b) || (pt && !past)) {
        free8(x, w, b, past, pad, y, ns, NULL);
        return si_op_nomem(c);
    }
    for (int64_t n = 0; n < B; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            const int64_t row = n * C + ch;
            for (int64_t i = 0; i < K - 1; i++) pad[i] = past ? past[row * (K - 1) + i] : 0.0;
            memcpy(pad + K - 1, x + row * L, sizeof(double) * (size_t)L);
            for (int64_t t = 0; t < L; t++) {
                double acc = b ? b[ch] : 0.0;
                for (int64_t j = 0; j < K; j++) acc += w[ch * K + j] * pad[t + j];
                if (silu) acc = acc / (1.0 + exp(-acc));
                y[row * L + t] = acc;
            }
            for (int64_t i = 0; i < K - 1; i++) ns[row * (K - 1) + i] = pad[P - (K - 1) + i];
        }
    if (si_out(c, 0)) si_tensor_from_f64(si_out(c, 0), y);
    if (si_out(c, 1)) si_tensor_from_f64(si_out(c, 1), ns);
    free8(x, w, b, past, pad, y, ns, NULL);
    return SI_OK;
}

// --- FlexAttention --------------------------------------------------------------------------------------

/* The reference kernel has no subgraph evaluation: nodes with score_mod / prob_mod are refused when compiled. */
static si_result flex_check(si_kctx *c) {
    if (si_node_attr(c->node, "score_mod") || si_node_attr(c->node, "prob_mod"))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "the score_mod / prob_mod subgraphs are not supported");
    return SI_OK;
}

static si_result flex_infer(si_kctx *c) {
    si_result s = si_inputs_typed(c, 3, 3, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T_LIKE0},
                                  (const char *const[]){"input 'Q'", "input 'K'", "input 'V'"});
    if (s) return s;
    const si_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
        return si_op_err(c, SI_ERR_INVALID_ARG, "Q, K and V must have rank 4 (batch, heads, sequence, head size)");
    const int64_t hq = q->dims[1], hkv = k->dims[1];
    if (si_dim_known(hq) && si_dim_known(hkv) && (hkv < 1 || hq % hkv))
        return si_op_err(c, SI_ERR_INVALID_ARG, "Q's %lld heads are not a multiple of K's %lld", (long long)hq, (long long)hkv);
    if ((si_dim_known(q->dims[0]) && ((si_dim_known(k->dims[0]) && k->dims[0] != q->dims[0]) ||
                                      (si_dim_known(v->dims[0]) && v->dims[0] != q->dims[0]))) ||
        (si_dim_known(q->dims[3]) && si_dim_known(k->dims[3]) && q->dims[3] != k->dims[3]) ||
        (si_dim_known(k->dims[1]) && si_dim_known(v->dims[1]) && k->dims[1] != v->dims[1]) ||
        (si_dim_known(k->dims[2]) && si_dim_known(v->dims[2]) && k->dims[2] != v->dims[2]))
        return si_op_err(c, SI_ERR_INVALID_ARG, "Q, K and V have inconsistent shapes");
    const int64_t od[4] = {q->dims[0], q->dims[1], q->dims[2], v->dims[3]};
    return si_set_out(c, 0, q->dtype, 4, od);
}

static si_result flex_run(si_kctx *c) {
    si_result s = flex_check(c);
    if (!s) s = flex_infer(c);
    si_tensor *yt;
    if (s || (s = si_run_begin(c, &yt)) || !yt) return s;
    const si_tensor *qt = c->in[0], *kt = c->in[1], *vt = c->in[2];
    const int64_t B = qt->dims[0], HQ = qt->dims[1], TQ = qt->dims[2], D = qt->dims[3];
    const int64_t HKV = kt->dims[1], TK = kt->dims[2], DV = vt->dims[3], G = HQ / HKV;
    double scale = si_attr_float(c->node, "scale", 0.0f);
    if (scale == 0) scale = D > 0 ? 1.0 / sqrt((double)D) : 1.0;
    double *q = si_tensor_to_f64(qt), *k = si_tensor_to_f64(kt), *v = si_tensor_to_f64(vt);
    double *y = si_malloc(sizeof(double) * (size_t)si_count(yt)), *sc = si_malloc(sizeof(double) * (size_t)(TK > 0 ? TK : 1));
    if (!q || !k || !v || !y || !sc) {
        free8(q, k, v, y, sc, NULL, NULL, NULL);
        return si_op_nomem(c);
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < HQ; h++) {
            const double *K = k + (b * HKV + h / G) * TK * D, *V = v + (b * HKV + h / G) * TK * DV;
            for (int64_t i = 0; i < TQ; i++) {
                const double *Q = q + ((b * HQ + h) * TQ + i) * D;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < TK; j++) {
                    double d = 0;
                    for (int64_t e = 0; e < D; e++) d += Q[e] * K[j * D + e];
                    sc[j] = d * scale;
                    mx = fmax(mx, sc[j]);
                }
                for (int64_t j = 0; j < TK; j++) sum += (sc[j] = exp(sc[j] - mx));
                double *Y = y + ((b * HQ + h) * TQ + i) * DV;
                for (int64_t e = 0; e < DV; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < TK; j++) acc += sc[j] * V[j * DV + e];
                    Y[e] = TK > 0 ? acc / sum : 0.0;
                }
            }
        }
    si_tensor_from_f64(yt, y);
    free8(q, k, v, y, sc, NULL, NULL, NULL);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(LINEAR_ATTENTION, SI_T_FLOATS, la_infer, la_run),
    SI_OP_DEF(CAUSAL_CONV_WITH_STATE, SI_T_FLOATS, ccs_infer, ccs_run),
    {.id = SI_OP_FLEX_ATTENTION, .types = {SI_T_FLOATS}, .infer = flex_infer, .run = flex_run, .check = flex_check},
};

SI_OP_FAMILY_PARTIAL(seqmodel, defs);
