/*
 * llm_norm.c — the normalisations and activations transformer exporters fuse (ONNX Runtime's contrib ops):
 * SimplifiedLayerNormalization (RMSNorm, registered by ORT in the default ONNX domain),
 * SkipSimplifiedLayerNormalization, SkipLayerNormalization, EmbedLayerNormalization, FastGelu, BiasGelu and
 * QuickGelu (com.microsoft). Reference kernels: inputs widened to float32, statistics accumulated in double,
 * outputs rounded once.
 */
#include "ops/llm.h"
#include "ops/nn.h"

#include <string.h>

/* Optional float outputs with X's shape but the normalised axes (from `axis` on) set to 1, float32. */
static si_result stat_out(si_kctx *c, int k, const si_tensor *x, int axis) {
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = i < axis ? x->dims[i] : 1;
    return si_set_out(c, k, SI_F32, x->ndim, dims);
}

// --- SimplifiedLayerNormalization -------------------------------------------------------------------------------

static si_result sln_prep(si_kctx *c, int *axis) {
    si_result st;
    if ((st = si_need_inputs(c, 2))) return st;
    const si_tensor *x = si_in(c, 0), *sc = si_in(c, 1);
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "X")) || (st = si_check_type(c, sc->dtype, SI_T_FLOATS, "scale")))
        return st;
    if (x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1");
    if ((st = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, axis))) return st;
    /* scale broadcasts over the normalised axes */
    const int r = x->ndim - *axis;
    if (sc->ndim > r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "scale has rank %d, more than the %d normalised axes", sc->ndim, r);
    for (int i = 0; i < sc->ndim; i++) {
        const int64_t d = sc->dims[sc->ndim - 1 - i], xd = x->dims[x->ndim - 1 - i];
        if (d != 1 && d != xd)
            return si_op_err(c, SI_ERR_INVALID_ARG, "scale dimension %d is %lld, X has %lld there", sc->ndim - 1 - i,
                             (long long)d, (long long)xd);
    }
    return SI_OK;
}

static si_result sln_infer(si_kctx *c) {
    int axis = 0;
    if (llm_dims_open(c)) {
        const si_tensor *x = si_in(c, 0);
        si_result st;
        if (!x || x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1");
        if ((st = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, &axis)) || (st = si_same_as_input(c, 0, 0))) return st;
        return stat_out(c, 1, x, axis);
    }
    si_result st = sln_prep(c, &axis);
    if (st || (st = si_same_as_input(c, 0, 0))) return st;
    return stat_out(c, 1, si_in(c, 0), axis);
}

static si_result sln_run(si_kctx *c) {
    int axis = 0;
    si_result st = sln_prep(c, &axis);
    if (st) return st;
    const si_tensor *x = si_in(c, 0), *sc = si_in(c, 1);
    si_tensor *y = si_out(c, 0), *oi = si_out(c, 1);
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t outer = si_prod(x->dims, 0, axis), inner = si_prod(x->dims, axis, x->ndim);
    float *xf = si_tensor_to_f32(x), *g = si_malloc((size_t)SI_MAX(inner, (int64_t)1) * sizeof(float));
    if (!xf || !g) {
        SI_FREE_ALL(xf, g);
        return si_op_nomem(c);
    }
    /* the scale over the normalised shape (broadcast) */
    int64_t idx[SI_MAX_DIMS] = {0}, str[SI_MAX_DIMS];
    const int r = x->ndim - axis;
    si_broadcast_strides(sc->ndim, sc->dims, r, x->dims + axis, str);
    for (int64_t i = 0, off = 0; i < inner; i++) {
        g[i] = (float)si_load_f64(sc->dtype, sc->data, off);
        si_next_offset(idx, x->dims + axis, str, r, &off);
    }
    for (int64_t o = 0; o < outer; o++) {
        float *v = xf + o * inner;
        double q = 0;
        for (int64_t i = 0; i < inner; i++) q += (double)v[i] * v[i];
        const float inv = (float)(1.0 / sqrt((inner > 0 ? q / (double)inner : 0.0) + eps));
        for (int64_t i = 0; i < inner; i++) v[i] = v[i] * inv * g[i];
        if (oi) si_store_f64(oi->dtype, oi->data, o, inv);
    }
    if (y) si_tensor_from_f32(y, xf);
    SI_FREE_ALL(xf, g);
    return SI_OK;
}

// --- SkipLayerNormalization, SkipSimplifiedLayerNormalization ------------------------------------------------------

/* input 0 [..., H]; skip (1) with the input's trailing shape (leading dims 1 or absent); gamma (2) [H]; then
 * beta (3) and bias (4) for SkipLayerNormalization, bias (3) for the simplified form. */
si_result si_skipnorm_prepare(const si_kctx *c, bool simplified, si_skipnorm *p) {
    si_result st;
    if ((st = si_need_inputs(c, 3))) return st;
    const si_tensor *x = si_in(c, 0), *sk = si_in(c, 1), *g = si_in(c, 2);
    if ((st = si_check_type(c, x->dtype, LLM_T_FLOAT, "input"))) return st;
    if (x->ndim < 2 || x->ndim > 3)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 3-D [batch, sequence, hidden] or 2-D, got rank %d", x->ndim);
    if ((st = si_same_type(c, x, sk, "skip")) || (st = si_same_type(c, x, g, "gamma"))) return st;
    p->H = x->dims[x->ndim - 1];
    p->rows = si_prod(x->dims, 0, x->ndim - 1);
    int lead = 0;
    while (lead < sk->ndim - 1 && sk->dims[lead] == 1) lead++;
    bool ok = sk->ndim >= 1 && sk->ndim - lead <= x->ndim;
    for (int i = 0; ok && i < sk->ndim - lead; i++)
        ok = sk->dims[sk->ndim - 1 - i] == x->dims[x->ndim - 1 - i];
    if (!ok) {
        char a[96], b[96];
        return si_op_err(c, SI_ERR_INVALID_ARG, "skip %s does not match input %s (same shape, or [1, S, H] / [S, H])",
                         si_shape_str(a, sizeof a, sk->dtype, sk->ndim, sk->dims),
                         si_shape_str(b, sizeof b, x->dtype, x->ndim, x->dims));
    }
    p->skip_rows = p->H > 0 ? si_count(sk) / p->H : 1;
    if (p->skip_rows < 1) p->skip_rows = 1;
    if (si_count(g) != p->H || g->ndim != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "gamma must be 1-D with %lld values", (long long)p->H);
    p->beta = simplified ? -1 : 3;
    p->bias = simplified ? 3 : 4;
    const int opt[2] = {p->beta, p->bias};
    static const char *const names[2] = {"beta", "bias"};
    for (int k = 0; k < 2; k++) {
        const si_tensor *t = opt[k] >= 0 ? si_in(c, opt[k]) : NULL;
        if (!t) {
            if (k == 0) p->beta = -1;
            else p->bias = -1;
            continue;
        }
        if ((st = si_same_type(c, x, t, names[k]))) return st;
        if (t->ndim != 1 || si_count(t) != p->H)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be 1-D with %lld values", names[k], (long long)p->H);
    }
    p->eps = si_attr_float(c->node, "epsilon", 1e-12f);
    return SI_OK;
}

static si_result skipnorm_infer_common(si_kctx *c, bool simplified) {
    si_skipnorm p;
    if (llm_dims_open(c)) {
        const si_tensor *x = si_in(c, 0);
        si_result st;
        if (!x || x->ndim < 2 || x->ndim > 3)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 3-D [batch, sequence, hidden] or 2-D");
        if ((st = si_same_as_input(c, 0, 0)) || (st = stat_out(c, 1, x, x->ndim - 1)) || (st = stat_out(c, 2, x, x->ndim - 1)))
            return st;
        return si_same_as_input(c, 3, 0);
    }
    si_result st = si_skipnorm_prepare(c, simplified, &p);
    if (st || (st = si_same_as_input(c, 0, 0))) return st;
    const si_tensor *x = si_in(c, 0);
    if ((st = stat_out(c, 1, x, x->ndim - 1)) || (st = stat_out(c, 2, x, x->ndim - 1))) return st;
    return si_same_as_input(c, 3, 0);
}

static si_result skipnorm_run_common(si_kctx *c, bool simplified) {
    si_skipnorm p;
    si_result st = si_skipnorm_prepare(c, simplified, &p);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0), *om = si_out(c, 1), *oi = si_out(c, 2), *osum = si_out(c, 3);
    float *u = si_tensor_to_f32(x), *sk = si_tensor_to_f32(si_in(c, 1)), *g = si_tensor_to_f32(si_in(c, 2));
    float *be = p.beta >= 0 ? si_tensor_to_f32(si_in(c, p.beta)) : NULL;
    float *bi = p.bias >= 0 ? si_tensor_to_f32(si_in(c, p.bias)) : NULL;
    float *yf = si_malloc((size_t)SI_MAX(si_count(x), (int64_t)1) * sizeof(float));
    if (!u || !sk || !g || (p.beta >= 0 && !be) || (p.bias >= 0 && !bi) || !yf) {
        SI_FREE_ALL(u, sk, g, be, bi, yf);
        return si_op_nomem(c);
    }
    const int64_t H = p.H;
    for (int64_t r = 0; r < p.rows; r++) {
        float *v = u + r * H, *o = yf + r * H;
        const float *s = sk + (r % p.skip_rows) * H;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < H; i++) {
            v[i] = v[i] + s[i] + (bi ? bi[i] : 0.0f);
            sum += v[i];
        }
        const double mean = simplified || H == 0 ? 0.0 : sum / (double)H;
        for (int64_t i = 0; i < H; i++) sq += ((double)v[i] - mean) * ((double)v[i] - mean);
        const double inv = 1.0 / sqrt((H > 0 ? sq / (double)H : 0.0) + p.eps);
        for (int64_t i = 0; i < H; i++) o[i] = (float)(((double)v[i] - mean) * inv * g[i] + (be ? be[i] : 0.0f));
        if (om) si_store_f64(om->dtype, om->data, r, mean);
        if (oi) si_store_f64(oi->dtype, oi->data, r, inv);
    }
    if (y) si_tensor_from_f32(y, yf);
    if (osum) si_tensor_from_f32(osum, u);
    SI_FREE_ALL(u, sk, g, be, bi, yf);
    return SI_OK;
}

static si_result skipln_infer(si_kctx *c) { return skipnorm_infer_common(c, false); }
static si_result skipln_run(si_kctx *c) { return skipnorm_run_common(c, false); }
static si_result skipsln_infer(si_kctx *c) { return skipnorm_infer_common(c, true); }
static si_result skipsln_run(si_kctx *c) { return skipnorm_run_common(c, true); }

// --- EmbedLayerNormalization -------------------------------------------------------------------------------------

/* Inputs: input_ids [B, S] int32, segment_ids (opt), word/position/segment (opt) embeddings [rows, H], gamma,
 * beta, mask [B, S] (opt), position_ids [B, S] or [1, S] (opt). */
static si_result eln_prep(si_kctx *c, int64_t *B, int64_t *S, int64_t *H) {
    si_result st;
    static const int req[] = {0, 2, 3, 5, 6};
    for (size_t i = 0; i < SI_ARRAY_LEN(req); i++)
        if ((st = si_need_input(c, req[i], false))) return st;
    const si_tensor *ids = si_in(c, 0), *we = si_in(c, 2), *pe = si_in(c, 3);
    if (ids->dtype != SI_I32) return si_op_err(c, SI_ERR_UNSUPPORTED, "input_ids must be int32, got %s", si_dtype_name(ids->dtype));
    if (ids->ndim != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input_ids must be 2-D [batch, sequence], got rank %d", ids->ndim);
    if ((st = si_check_type(c, we->dtype, SI_T(SI_F32) | SI_T(SI_F16), "word_embedding"))) return st;
    *B = ids->dims[0];
    *S = ids->dims[1];
    if (we->ndim != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "word_embedding must be 2-D, got rank %d", we->ndim);
    *H = we->dims[1];
    static const char *const names[9] = {"input_ids", "segment_ids", "word_embedding", "position_embedding",
                                         "segment_embedding", "gamma", "beta", "mask", "position_ids"};
    for (int i = 3; i <= 6; i++) {
        const si_tensor *t = si_in(c, i);
        if (!t) continue;
        if ((st = si_same_type(c, we, t, names[i]))) return st;
        const bool table = i == 3 || i == 4;
        if (table ? (t->ndim != 2 || t->dims[1] != *H) : (t->ndim != 1 || t->dims[0] != *H))
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be %s with hidden size %lld", names[i], table ? "[rows, hidden]" : "1-D",
                             (long long)*H);
    }
    if (!!si_in(c, 1) != !!si_in(c, 4))
        return si_op_err(c, SI_ERR_INVALID_ARG, "segment_ids and segment_embedding must be given together");
    static const int int_inputs[] = {1, 7, 8};
    for (size_t k = 0; k < SI_ARRAY_LEN(int_inputs); k++) {
        const int i = int_inputs[k];
        const si_tensor *t = si_in(c, i);
        if (!t) continue;
        if (t->dtype != SI_I32) return si_op_err(c, SI_ERR_UNSUPPORTED, "%s must be int32, got %s", names[i], si_dtype_name(t->dtype));
        const bool ok = t->ndim == 2 && t->dims[1] == *S && (t->dims[0] == *B || (i == 8 && t->dims[0] == 1));
        if (!ok) return si_op_err(c, SI_ERR_INVALID_ARG, "%s must have the shape of input_ids", names[i]);
    }
    (void)pe;
    return SI_OK;
}

static si_result eln_infer(si_kctx *c) {
    int64_t B = 0, S = 0, H = 0;
    if (llm_dims_open(c)) { /* [B, S] ids, [rows, H] word embedding */
        const si_tensor *ids = si_in(c, 0), *we = si_in(c, 2);
        if (!ids || !we || ids->ndim != 2 || we->ndim != 2)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input_ids and word_embedding must be 2-D");
        const int64_t d[3] = {ids->dims[0], ids->dims[1], we->dims[1]};
        si_result st;
        if ((st = si_set_out(c, 0, we->dtype, 3, d)) || (st = si_set_out(c, 1, SI_I32, 1, d))) return st;
        return si_set_out(c, 2, we->dtype, 3, d);
    }
    si_result st = eln_prep(c, &B, &S, &H);
    if (st) return st;
    const si_dtype dt = si_in(c, 2)->dtype;
    if ((st = si_set_out(c, 0, dt, 3, (int64_t[]){B, S, H}))) return st;
    if ((st = si_set_out(c, 1, SI_I32, 1, (int64_t[]){B}))) return st;
    return si_set_out(c, 2, dt, 3, (int64_t[]){B, S, H});
}

/* The row of an embedding table for an id; INVALID_ARG when out of range. */
static si_result eln_row(si_kctx *c, const si_tensor *tab, const char *what, int64_t id, const float *base,
                         const float **row) {
    if (id < 0 || id >= tab->dims[0])
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s id %lld is out of range [0, %lld)", what, (long long)id,
                         (long long)tab->dims[0]);
    *row = base + id * tab->dims[1];
    return SI_OK;
}

static si_result eln_run(si_kctx *c) {
    int64_t B = 0, S = 0, H = 0;
    si_result st = eln_prep(c, &B, &S, &H);
    if (st) return st;
    const si_tensor *ids = si_in(c, 0), *seg = si_in(c, 1), *mask = si_in(c, 7), *pids = si_in(c, 8);
    const si_tensor *we = si_in(c, 2), *pe = si_in(c, 3), *se = si_in(c, 4);
    si_tensor *y = si_out(c, 0), *omask = si_out(c, 1), *osum = si_out(c, 2);
    const double eps = si_attr_float(c->node, "epsilon", 1e-12f);
    float *w = si_tensor_to_f32(we), *p = si_tensor_to_f32(pe), *sg = se ? si_tensor_to_f32(se) : NULL;
    float *g = si_tensor_to_f32(si_in(c, 5)), *be = si_tensor_to_f32(si_in(c, 6));
    float *sum = si_malloc((size_t)SI_MAX(B * S * H, (int64_t)1) * 2 * sizeof(float));
    if (!w || !p || (se && !sg) || !g || !be || !sum) {
        SI_FREE_ALL(w, p, sg, g, be, sum);
        return si_op_nomem(c);
    }
    float *out = sum + B * S * H;
    const int32_t *id = ids->data, *sid = seg ? seg->data : NULL, *pid = pids ? pids->data : NULL;
    for (int64_t b = 0; b < B && !st; b++)
        for (int64_t s = 0; s < S && !st; s++) {
            const int64_t t = b * S + s;
            const float *rw = NULL, *rp = NULL, *rs = NULL;
            const int64_t pos = pid ? pid[(pids->dims[0] == 1 ? 0 : b) * S + s] : s;
            if ((st = eln_row(c, we, "word", id[t], w, &rw)) || (st = eln_row(c, pe, "position", pos, p, &rp)) ||
                (sid && (st = eln_row(c, se, "segment", sid[t], sg, &rs))))
                break;
            float *v = sum + t * H, *o = out + t * H;
            double m = 0, q = 0;
            for (int64_t i = 0; i < H; i++) {
                v[i] = rw[i] + rp[i] + (rs ? rs[i] : 0.0f);
                m += v[i];
            }
            m = H ? m / (double)H : 0.0;
            for (int64_t i = 0; i < H; i++) q += (v[i] - m) * (v[i] - m);
            const double inv = 1.0 / sqrt((H ? q / (double)H : 0.0) + eps);
            for (int64_t i = 0; i < H; i++) o[i] = (float)((v[i] - m) * inv * g[i] + be[i]);
        }
    if (!st) {
        if (y) si_tensor_from_f32(y, out);
        if (osum) si_tensor_from_f32(osum, sum);
        /* mask_index: the number of non-zero mask entries per row (0 without a mask) */
        for (int64_t b = 0; omask && b < B; b++) {
            int32_t n = 0;
            for (int64_t s = 0; mask && s < S; s++) n += ((const int32_t *)mask->data)[b * S + s] != 0;
            ((int32_t *)omask->data)[b] = n;
        }
    }
    SI_FREE_ALL(w, p, sg, g, be, sum);
    return st;
}

// --- FastGelu, BiasGelu, QuickGelu ----------------------------------------------------------------------------------

/* X, then an optional (FastGelu) or required (BiasGelu) 1-D bias over the last axis. */
static si_result gelu_prep(si_kctx *c, bool bias_required) {
    const si_tensor *x;
    si_result st = si_input0(c, LLM_T_FLOAT | SI_T(SI_F64), "X", &x);
    if (st) return st;
    if (bias_required && (st = si_need_input(c, 1, false))) return st;
    const si_tensor *b = si_in(c, 1);
    if (!b) return SI_OK;
    if ((st = si_same_type(c, x, b, "bias"))) return st;
    if (x->ndim < 1 || b->ndim != 1 || b->dims[0] != x->dims[x->ndim - 1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "bias must be 1-D with the input's last dimension (%lld values)",
                         x->ndim ? (long long)x->dims[x->ndim - 1] : 0LL);
    return SI_OK;
}

enum { ACT_FAST_GELU, ACT_BIAS_GELU, ACT_QUICK_GELU };

static si_result act_run(si_kctx *c, int kind) {
    si_result st = gelu_prep(c, kind == ACT_BIAS_GELU);
    if (st) return st;
    const si_tensor *x = si_in(c, 0), *b = si_in(c, 1);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    const int64_t n = si_count(x), last = x->ndim ? x->dims[x->ndim - 1] : 1;
    const double alpha = si_attr_float(c->node, "alpha", 1.702f);
    for (int64_t i = 0; i < n; i++) {
        double v = si_load_f64(x->dtype, x->data, i);
        if (b && kind != ACT_QUICK_GELU) v += si_load_f64(b->dtype, b->data, i % last);
        double r;
        if (kind == ACT_FAST_GELU) r = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
        else if (kind == ACT_BIAS_GELU) r = 0.5 * v * (1.0 + erf(v * 0.7071067811865476));
        else r = v / (1.0 + exp(-alpha * v));
        si_store_f64(y->dtype, y->data, i, r);
    }
    return SI_OK;
}

static si_result fastgelu_infer(si_kctx *c) {
    if (llm_dims_open(c)) return si_same_as_input(c, 0, 0);
    si_result st = gelu_prep(c, false);
    return st ? st : si_same_as_input(c, 0, 0);
}
static si_result biasgelu_infer(si_kctx *c) {
    if (llm_dims_open(c)) return si_same_as_input(c, 0, 0);
    si_result st = gelu_prep(c, true);
    return st ? st : si_same_as_input(c, 0, 0);
}
static si_result quickgelu_infer(si_kctx *c) {
    if (llm_dims_open(c)) return si_same_as_input(c, 0, 0);
    const si_tensor *x;
    si_result st = si_input0(c, LLM_T_FLOAT | SI_T(SI_F64), "X", &x);
    return st ? st : si_same_as_input(c, 0, 0);
}
static si_result fastgelu_run(si_kctx *c) { return act_run(c, ACT_FAST_GELU); }
static si_result biasgelu_run(si_kctx *c) { return act_run(c, ACT_BIAS_GELU); }
static si_result quickgelu_run(si_kctx *c) {
    const si_tensor *x;
    si_result st = si_input0(c, LLM_T_FLOAT | SI_T(SI_F64), "X", &x);
    return st ? st : act_run(c, ACT_QUICK_GELU);
}

static const si_op_def defs[] = {
    SI_OP_DEF(SIMPLIFIED_LAYER_NORMALIZATION, SI_T_FLOATS, sln_infer, sln_run),
    SI_OP_DEF(SKIP_LAYER_NORMALIZATION, LLM_T_FLOAT, skipln_infer, skipln_run),
    SI_OP_DEF(SKIP_SIMPLIFIED_LAYER_NORMALIZATION, LLM_T_FLOAT, skipsln_infer, skipsln_run),
    SI_OP_DEF(EMBED_LAYER_NORMALIZATION, SI_T(SI_I32), eln_infer, eln_run),
    SI_OP_DEF(FAST_GELU, LLM_T_FLOAT | SI_T(SI_F64), fastgelu_infer, fastgelu_run),
    SI_OP_DEF(BIAS_GELU, LLM_T_FLOAT | SI_T(SI_F64), biasgelu_infer, biasgelu_run),
    SI_OP_DEF(QUICK_GELU, LLM_T_FLOAT | SI_T(SI_F64), quickgelu_infer, quickgelu_run),
};

SI_OP_FAMILY_PARTIAL(llm_norm, defs);
