/*
 * moe.c — MoE (com.microsoft): a mixture of experts with float weights, as ONNX Runtime 1.30's CPU kernel computes
 * it (../shared/LLM-OPS-NOTES.md §11). Per token: p = softmax(router logits) over the E experts; the k largest
 * (ties: the lower expert index first) weigh the chosen experts, renormalised to sum 1 with
 * normalize_routing_weights; expert e computes fc2[e] act(fc1[e] x + b1[e]) + b2[e] with weights stored
 * [E, out, in]; the output is the weighted sum.
 *
 * Activations: relu, gelu (the tanh approximation, as ORT's CPU kernel), silu, identity, and swiglu with the
 * interleaved fusion (swiglu_fusion = 1: gate and linear values alternate in fc1's output; with limit L the gate
 * is clipped to <= L and the linear value to [-L, L]; a = g sigmoid(alpha g) (l + beta)). fc3 (a separate gate
 * projection) is not implemented by ORT's CPU kernel and not here either.
 *
 * QMoE (com.microsoft): the same experts with 2-, 4- or 8-bit weights packed in bytes ([E, out, in / (8 / bits)],
 * the first value in the low bits), scales per output row ([E, out]) or per block of block_size inputs ([E, out,
 * in / block_size]), optional zero points packed along the rows ([E, out / (8 / bits)]) or, with blocks, along each
 * row's blocks ([E, out, blocks / (8 / bits)]); default 2^(bits - 1):
 * w = (q - zp) * scale. ORT 1.30's CPU kernel always renormalises the chosen experts' weights to sum 1 (a softmax
 * over the k chosen logits), whatever normalize_routing_weights says; checked against it with both settings
 * (tests/llm_ops_ort.py qmoe_*). Experts run in ascending order; a weight row is dequantized into a row of scratch
 * when a token needs it (never a whole expert or table), so a model's memory holds the packed weights only.
 * Refused with the reason: fc3, router_weights (input 14), FP4 / FP8 modes (quant_type).
 */
#include "ops/llm.h"

#include <float.h>
#include <string.h>

/* The attributes MoE and QMoE share; f = 2 with SwiGLU (set in *f). */
static si_result moe_attrs(const si_kctx *c, si_moe *p, int64_t *f) {
    si_result st;
    static const char *const acts[] = {"relu", "gelu", "silu", "identity", "swiglu"};
    if ((st = si_attr_choice(c, "activation_type", "relu", acts, 5, &p->act))) return st;
    const int64_t fusion = si_attr_int(c->node, "swiglu_fusion", 0);
    if (p->act == MOE_SWIGLU && fusion != 1)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "swiglu needs swiglu_fusion = 1 (interleaved gate and linear values), got %lld", (long long)fusion);
    *f = p->act == MOE_SWIGLU ? 2 : 1;
    p->normalize = si_attr_int(c->node, "normalize_routing_weights", 0) != 0;
    p->alpha = si_attr_float(c->node, "activation_alpha", 1.0f);
    p->beta = si_attr_float(c->node, "activation_beta", 0.0f);
    p->limit = si_node_attr(c->node, "swiglu_limit") ? si_attr_float(c->node, "swiglu_limit", 0.0f) : INFINITY;
    return SI_OK;
}

/* Tokens, experts and k from the input and the router logits (after p->E is unknown: set here). */
static si_result moe_tokens(const si_kctx *c, si_moe *p, const si_tensor *x, const si_tensor *r) {
    if (x->ndim != 2 && x->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input must be [tokens, hidden] or [batch, sequence, hidden]");
    p->hidden = x->dims[x->ndim - 1];
    p->T = si_prod(x->dims, 0, x->ndim - 1);
    if (r->ndim != 2 || r->dims[0] != p->T)
        return si_op_err(c, SI_ERR_INVALID_ARG, "router_probs must be [%lld tokens, experts]", (long long)p->T);
    p->E = r->dims[1];
    p->k = si_attr_int(c->node, "k", 1);
    if (p->k < 1 || p->k > p->E)
        return si_op_err(c, SI_ERR_INVALID_ARG, "k = %lld must be in 1..%lld (the number of experts)", (long long)p->k, (long long)p->E);
    if (si_attr_int(c->node, "use_sparse_mixer", 0) != 0 && p->k != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "use_sparse_mixer needs k = 2, got %lld", (long long)p->k);
    return SI_OK;
}

/* The optional biases: fc1 [E, fF], fc2 [E, hidden]. */
static si_result moe_biases(const si_kctx *c, const si_moe *p, int64_t f, const si_tensor *b1, const si_tensor *b2) {
    if (b1 && (b1->ndim != 2 || b1->dims[0] != p->E || b1->dims[1] != f * p->F))
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc1_experts_bias must be [%lld, %lld]", (long long)p->E, (long long)(f * p->F));
    if (b2 && (b2->ndim != 2 || b2->dims[0] != p->E || b2->dims[1] != p->hidden))
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc2_experts_bias must be [%lld, %lld]", (long long)p->E, (long long)p->hidden);
    return SI_OK;
}

si_result si_moe_prepare(const si_kctx *c, si_moe *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    static const int req[] = {0, 1, 2, 4};
    for (size_t i = 0; i < SI_ARRAY_LEN(req); i++)
        if ((st = si_need_input(c, req[i], false))) return st;
    const si_tensor *x = si_in(c, 0), *r = si_in(c, 1), *w1 = si_in(c, 2), *b1 = si_in(c, 3), *w2 = si_in(c, 4), *b2 = si_in(c, 5);
    if ((st = si_check_type(c, x->dtype, LLM_T_FLOAT, "input"))) return st;
    static const char *const names[6] = {"input", "router_probs", "fc1_experts_weights", "fc1_experts_bias", "fc2_experts_weights",
                                         "fc2_experts_bias"};
    for (int i = 1; i < 6; i++)
        if (si_in(c, i) && (st = si_same_type(c, x, si_in(c, i), names[i]))) return st;
    if (si_in(c, 6) || si_in(c, 7)) return si_op_err(c, SI_ERR_UNSUPPORTED, "fc3 experts (a separate gate projection) are not supported");
    int64_t f;
    if ((st = moe_attrs(c, p, &f)) || (st = moe_tokens(c, p, x, r))) return st;
    if (w2->ndim != 3 || w2->dims[0] != p->E || w2->dims[1] != p->hidden)
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc2_experts_weights must be [%lld experts, %lld hidden, inner] ([E, out, in])", (long long)p->E,
                         (long long)p->hidden);
    p->F = w2->dims[2];
    if (w1->ndim != 3 || w1->dims[0] != p->E || w1->dims[1] != f * p->F || w1->dims[2] != p->hidden)
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc1_experts_weights must be [%lld, %lld, %lld] ([E, out, in]; the [E, in, out] layout is not accepted)",
                         (long long)p->E, (long long)(f * p->F), (long long)p->hidden);
    return moe_biases(c, p, f, b1, b2);
}

/* Compile time with the token count (or another dimension) open: the output is the input's type and shape (what
 * the submodel after it reads); the checks wait for the run. True: that case (*st says how it went). */
static bool moe_dims_open(si_kctx *c, si_result *st) {
    if (!(c->partial && c->n_in > 1 && c->in[0] && c->in[1] &&
          (!si_dims_known(c->in[0]->ndim, c->in[0]->dims) || !si_dims_known(c->in[1]->ndim, c->in[1]->dims))))
        return false;
    *st = si_check_type(c, c->in[0]->dtype, LLM_T_FLOAT, "input");
    if (!*st) *st = si_same_as_input(c, 0, 0);
    return true;
}

/* MoE and QMoE: the output is the input's type and shape once the node checks out. */
static si_result moe_infer(si_kctx *c) {
    si_result st;
    if (moe_dims_open(c, &st)) return st;
    if (si_node_is(c->node, SI_OP_QMOE)) {
        si_qmoe q;
        st = si_qmoe_prepare(c, &q);
    } else {
        si_moe p;
        st = si_moe_prepare(c, &p);
    }
    return st ? st : si_same_as_input(c, 0, 0);
}


double si_moe_route(const si_moe *p, const float *logits, float *prob, int64_t *sel) {
    const int64_t E = p->E;
    float m = -INFINITY;
    double sum = 0;
    for (int64_t e = 0; e < E; e++) m = logits[e] > m ? logits[e] : m;
    for (int64_t e = 0; e < E; e++) sum += prob[e] = expf(logits[e] - m);
    for (int64_t e = 0; e < E; e++) prob[e] = (float)(prob[e] / sum);
    /* top k, the lower index first among equal probabilities */
    double wsum = 0;
    for (int64_t i = 0; i < p->k; i++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            bool taken = false;
            for (int64_t j = 0; j < i; j++) taken |= sel[j] == e;
            if (!taken && (best < 0 || prob[e] > prob[best])) best = e;
        }
        sel[i] = best;
        wsum += prob[best];
    }
    return wsum;
}

void si_moe_act_rows(const si_moe *p, const float *in, float *out) {
    const int64_t F = p->F;
    if (p->act == MOE_SWIGLU)
        for (int64_t o = 0; o < F; o++) {
            const float g = fminf(in[2 * o], p->limit), l = fmaxf(fminf(in[2 * o + 1], p->limit), -p->limit);
            out[o] = g / (1.0f + expf(-p->alpha * g)) * (l + p->beta);
        }
    else
        for (int64_t o = 0; o < F; o++) out[o] = si_moe_act(p->act, in[o]);
}

/* One expert on one token: yt += w * (W2 act(W1 xt + b1) + b2), W1 [fF, hidden], W2 [hidden, F], sums in double;
 * h: fF floats of scratch; b1, b2: the expert's bias rows or NULL. */
static void moe_ffn(const si_moe *p, const float *W1, const float *b1, const float *W2, const float *b2, const float *xt, float *h, float w,
                    float *yt) {
    const int64_t Hd = p->hidden, F = p->F, fF = (p->act == MOE_SWIGLU ? 2 : 1) * F;
    for (int64_t o = 0; o < fF; o++) {
        double d = b1 ? b1[o] : 0.0;
        for (int64_t in = 0; in < Hd; in++) d += (double)W1[o * Hd + in] * xt[in];
        h[o] = (float)d;
    }
    si_moe_act_rows(p, h, h);
    for (int64_t o = 0; o < Hd; o++) {
        double d = b2 ? b2[o] : 0.0;
        for (int64_t in = 0; in < F; in++) d += (double)W2[o * F + in] * h[in];
        yt[o] += w * (float)d;
    }
}

SI_OP_PLANNED(moe_run, si_moe, p, si_moe_prepare) {
    si_result st = SI_OK;
    const int64_t Hd = p->hidden, F = p->F, E = p->E, f = p->act == MOE_SWIGLU ? 2 : 1;
    float *x = si_tensor_to_f32(si_in(c, 0)), *r = si_tensor_to_f32(si_in(c, 1)), *w1 = si_tensor_to_f32(si_in(c, 2));
    float *w2 = si_tensor_to_f32(si_in(c, 4)), *b1 = si_in(c, 3) ? si_tensor_to_f32(si_in(c, 3)) : NULL;
    float *b2 = si_in(c, 5) ? si_tensor_to_f32(si_in(c, 5)) : NULL;
    float *y = si_calloc((size_t)(p->T * Hd + 1), sizeof(float)), *h = si_malloc((size_t)(f * F + 1) * sizeof(float));
    float *prob = si_malloc((size_t)(E + 1) * sizeof(float));
    int64_t *sel = si_malloc((size_t)(p->k + 1) * sizeof(int64_t));
    if (!x || !r || !w1 || !w2 || (si_in(c, 3) && !b1) || (si_in(c, 5) && !b2) || !y || !h || !prob || !sel) {
        st = si_op_nomem(c);
        goto done;
    }
    for (int64_t t = 0; t < p->T; t++) {
        const float *xt = x + t * Hd;
        const double wsum = si_moe_route(p, r + t * E, prob, sel);
        for (int64_t i = 0; i < p->k; i++) {
            const int64_t e = sel[i];
            const float w = p->normalize ? (float)(prob[e] / wsum) : prob[e];
            moe_ffn(p, w1 + e * f * F * Hd, b1 ? b1 + e * f * F : NULL, w2 + e * Hd * F, b2 ? b2 + e * Hd : NULL, xt, h, w, y + t * Hd);
        }
    }
    if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), y);
done:
    SI_FREE_ALL(x, r, w1, w2, b1, b2, y, h, prob, sel);
    return st;
}

// --- QMoE --------------------------------------------------------------------------------------------------------

/* Quantized weights w [E, rows, cols / per] (uint8), scales [E, rows] or [E, rows, cols / block], zero points
 * [E, ceil(rows / per)] (uint8, optional): checked against the expected shapes. */
static si_result qmoe_check_fc(const si_kctx *c, const si_qmoe *q, int iw, int is, int iz, int64_t rows, int64_t cols, const char *fc) {
    si_result st;
    const si_tensor *w = si_in(c, iw), *s = si_in(c, is), *z = si_in(c, iz);
    const int64_t per = 8 / q->bits, E = q->p.E;
    if (w->dtype != SI_U8) return si_op_err(c, SI_ERR_INVALID_ARG, "%s_experts_weights must be uint8 (packed), got %s", fc, si_dtype_name(w->dtype));
    if (cols % per)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s's inner size %lld is not a multiple of %lld (%d-bit values per byte)", fc, (long long)cols,
                         (long long)per, q->bits);
    if (w->ndim != 3 || w->dims[0] != E || w->dims[1] != rows || w->dims[2] != cols / per)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s_experts_weights must be [%lld, %lld, %lld] ([E, out, in / %lld]), got rank %d", fc, (long long)E,
                         (long long)rows, (long long)(cols / per), (long long)per, w->ndim);
    if ((st = si_check_type(c, s->dtype, LLM_T_FLOAT, fc[2] == '1' ? "fc1_scales" : "fc2_scales"))) return st;
    if (q->block) {
        if (cols % q->block)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s's inner size %lld is not a multiple of block_size %lld", fc, (long long)cols, (long long)q->block);
        if (s->ndim != 3 || s->dims[0] != E || s->dims[1] != rows || s->dims[2] != cols / q->block)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s_scales must be [%lld, %lld, %lld] (a scale per block of %lld)", fc, (long long)E, (long long)rows,
                             (long long)(cols / q->block), (long long)q->block);
    } else if (s->ndim != 2 || s->dims[0] != E || s->dims[1] != rows) {
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s_scales must be [%lld, %lld] (a scale per output row)", fc, (long long)E, (long long)rows);
    }
    if (z && q->block) {
        const int64_t zb = (cols / q->block + per - 1) / per;
        if (z->dtype != SI_U8 || z->ndim != 3 || z->dims[0] != E || z->dims[1] != rows || z->dims[2] != zb)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s_zero_points must be uint8 [%lld, %lld, %lld] (packed along the blocks)", fc, (long long)E,
                             (long long)rows, (long long)zb);
    } else if (z && (z->dtype != SI_U8 || z->ndim != 2 || z->dims[0] != E || z->dims[1] != (rows + per - 1) / per)) {
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s_zero_points must be uint8 [%lld, %lld] (packed along the rows)", fc, (long long)E,
                         (long long)((rows + per - 1) / per));
    }
    return SI_OK;
}

si_result si_qmoe_prepare(const si_kctx *c, si_qmoe *q) {
    si_result st;
    memset(q, 0, sizeof *q);
    si_moe *p = &q->p;
    static const int req[] = {0, 1, 2, 3, 5, 6};
    for (size_t i = 0; i < SI_ARRAY_LEN(req); i++)
        if ((st = si_need_input(c, req[i], false))) return st;
    const si_tensor *x = si_in(c, 0), *r = si_in(c, 1), *w1 = si_in(c, 2), *w2 = si_in(c, 5), *b1 = si_in(c, 4), *b2 = si_in(c, 7);
    if ((st = si_check_type(c, x->dtype, LLM_T_FLOAT, "input")) || (st = si_same_type(c, x, r, "router_probs")) ||
        (b1 && (st = si_same_type(c, x, b1, "fc1_experts_bias"))) || (b2 && (st = si_same_type(c, x, b2, "fc2_experts_bias"))))
        return st;
    if (si_in(c, 8) || si_in(c, 9) || si_in(c, 10) || si_in(c, 13))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "fc3 experts (a separate gate projection) are not supported");
    if (si_in(c, 14)) return si_op_err(c, SI_ERR_UNSUPPORTED, "router_weights (separate mixing weights) are not supported");
    const int64_t bits = si_attr_int(c->node, "expert_weight_bits", 4);
    if (bits != 2 && bits != 4 && bits != 8)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "expert_weight_bits = %lld is not supported (2, 4 or 8)", (long long)bits);
    if (si_node_attr(c->node, "quant_type")) return si_op_err(c, SI_ERR_UNSUPPORTED, "quant_type (FP4 / FP8 modes) is not supported");
    q->bits = (int)bits;
    q->block = si_attr_int(c->node, "block_size", 0);
    if (q->block < 0 || (q->block && q->block % (8 / bits)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "block_size %lld must be positive and a multiple of %lld (%lld-bit values per byte)",
                         (long long)q->block, (long long)(8 / bits), (long long)bits);
    int64_t f;
    if ((st = moe_attrs(c, p, &f)) || (st = moe_tokens(c, p, x, r))) return st;
    const int64_t per = 8 / bits;
    if (w2->ndim != 3 || w1->ndim != 3)
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc1_experts_weights and fc2_experts_weights must be 3-D ([E, out, in / %lld])", (long long)per);
    p->F = w2->dims[2] * per;
    if ((st = qmoe_check_fc(c, q, 2, 3, 11, f * p->F, p->hidden, "fc1")) || (st = qmoe_check_fc(c, q, 5, 6, 12, p->hidden, p->F, "fc2")))
        return st;
    return moe_biases(c, p, f, b1, b2);
}

/* One quantized projection of the experts: packed weights [E, rows, cols / per], scales, zero points or NULL. */
typedef struct qmoe_fc {
    const uint8_t *w, *zp;
    const float *s;
    int64_t rows, cols;
} qmoe_fc;

/* Row o of expert e as float: (q - zp) * scale, a block (or the whole row) at a time, a byte at a time. */
static void qmoe_row(const si_qmoe *q, const qmoe_fc *fc, int64_t e, int64_t o, float *w) {
    const int bits = q->bits, per = 8 / bits;
    const unsigned mask = (1u << bits) - 1;
    if (fc->cols <= 0) return; /* an empty row */
    const int64_t rows = fc->rows, cols = fc->cols, rb = cols / per, bl = q->block ? q->block : cols, nb = cols / bl;
    const int64_t zrow = q->block ? (nb + per - 1) / per : 0, zexp = q->block ? rows * zrow : (rows + per - 1) / per;
    const uint8_t *row = fc->w + (e * rows + o) * rb, *zp = fc->zp ? fc->zp + e * zexp : NULL;
    const float *se = fc->s + (e * rows + o) * nb;
    for (int64_t b = 0; b < nb; b++) {
        int z = 1 << (bits - 1);
        if (zp) z = q->block ? si_packed_code(zp + o * zrow, bits, b) : si_packed_code(zp, bits, o);
        const float sc = se[b];
        for (int64_t j = b * bl / per; j < (b + 1) * bl / per; j++)
            for (int t = 0; t < per; t++) *w++ = (float)((int)((row[j] >> (bits * t)) & mask) - z) * sc;
    }
}

void si_qmoe_row_zero_points(const uint8_t *zp, int bits, int64_t rows, int64_t e, float *out) {
    const uint8_t *ze = zp + e * ((rows + 8 / bits - 1) / (8 / bits));
    for (int64_t o = 0; o < rows; o++) out[o] = (float)si_packed_code(ze, bits, o);
}

/* fc's row o of expert e times v (cols values), in double, plus bias (or 0); row: cols floats of scratch. */
static float qmoe_dot(const si_qmoe *q, const qmoe_fc *fc, int64_t e, int64_t o, const float *v, double bias, float *row) {
    qmoe_row(q, fc, e, o, row);
    double d = bias;
    for (int64_t i = 0; i < fc->cols; i++) d += (double)row[i] * v[i];
    return (float)d;
}

SI_OP_PLANNED(qmoe_run, si_qmoe, q, si_qmoe_prepare) {
    si_result st = SI_OK;
    const si_moe *p = &q->p;
    const int64_t Hd = p->hidden, F = p->F, E = p->E, K = p->k, fF = (p->act == MOE_SWIGLU ? 2 : 1) * F, T = p->T;
    float *x = si_tensor_to_f32(si_in(c, 0)), *r = si_tensor_to_f32(si_in(c, 1)), *s1 = si_tensor_to_f32(si_in(c, 3));
    float *s2 = si_tensor_to_f32(si_in(c, 6)), *b1 = si_in(c, 4) ? si_tensor_to_f32(si_in(c, 4)) : NULL;
    float *b2 = si_in(c, 7) ? si_tensor_to_f32(si_in(c, 7)) : NULL;
    float *y = si_calloc((size_t)(T * Hd + 1), sizeof(float)), *h = si_malloc((size_t)(fF + 1) * sizeof(float));
    float *row = si_malloc((size_t)(SI_MAX(Hd, F) + 1) * sizeof(float));
    float *prob = si_malloc((size_t)(E + 1) * sizeof(float)), *wt = si_malloc((size_t)(T * K + 1) * sizeof(float));
    int64_t *sel = si_malloc((size_t)(T * K + 1) * sizeof(int64_t));
    if (!x || !r || !s1 || !s2 || (si_in(c, 4) && !b1) || (si_in(c, 7) && !b2) || !y || !h || !row || !prob || !wt || !sel) {
        st = si_op_nomem(c);
        goto done;
    }
    const si_tensor *z1 = si_in(c, 11), *z2 = si_in(c, 12);
    const qmoe_fc fc1 = {si_in(c, 2)->data, z1 ? z1->data : NULL, s1, fF, Hd}, fc2 = {si_in(c, 5)->data, z2 ? z2->data : NULL, s2, Hd, F};
    for (int64_t t = 0; t < T; t++) { /* the chosen experts' weights, always renormalised (ORT's QMoE) */
        const double wsum = si_moe_route(p, r + t * E, prob, sel + t * K);
        for (int64_t i = 0; i < K; i++) wt[t * K + i] = (float)(prob[sel[t * K + i]] / wsum);
    }
    for (int64_t e = 0; e < E; e++) /* experts in ascending order, each token's share added in that order */
        for (int64_t j = 0; j < T * K; j++) {
            if (sel[j] != e) continue;
            const float *xt = x + (j / K) * Hd;
            for (int64_t o = 0; o < fF; o++) h[o] = qmoe_dot(q, &fc1, e, o, xt, b1 ? b1[e * fF + o] : 0.0, row);
            si_moe_act_rows(p, h, h);
            float *yt = y + (j / K) * Hd;
            for (int64_t o = 0; o < Hd; o++) yt[o] += wt[j] * qmoe_dot(q, &fc2, e, o, h, b2 ? b2[e * Hd + o] : 0.0, row);
        }
    if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), y);
done:
    SI_FREE_ALL(x, r, s1, s2, b1, b2, y, h, row, prob, wt, sel);
    return st;
}

static const si_op_def defs[] = {
    SI_OP_DEF(MOE, LLM_T_FLOAT, moe_infer, moe_run),
    SI_OP_DEF(QMOE, LLM_T_FLOAT, moe_infer, qmoe_run),
};

SI_OP_FAMILY_PARTIAL(moe, defs);
