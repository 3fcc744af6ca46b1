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
 */
#include "ops/llm.h"

#include <float.h>
#include <string.h>

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
    static const char *const acts[] = {"relu", "gelu", "silu", "identity", "swiglu"};
    if ((st = si_attr_choice(c, "activation_type", "relu", acts, 5, &p->act))) return st;
    const int64_t fusion = si_attr_int(c->node, "swiglu_fusion", 0);
    if (p->act == MOE_SWIGLU && fusion != 1)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "swiglu needs swiglu_fusion = 1 (interleaved gate and linear values), got %lld", (long long)fusion);
    if (x->ndim != 2 && x->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input must be [tokens, hidden] or [batch, sequence, hidden]");
    p->hidden = x->dims[x->ndim - 1];
    p->T = si_prod(x->dims, 0, x->ndim - 1);
    if (r->ndim != 2 || r->dims[0] != p->T)
        return si_op_err(c, SI_ERR_INVALID_ARG, "router_probs must be [%lld tokens, experts]", (long long)p->T);
    p->E = r->dims[1];
    const int64_t f = p->act == MOE_SWIGLU ? 2 : 1;
    if (w2->ndim != 3 || w2->dims[0] != p->E || w2->dims[1] != p->hidden)
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc2_experts_weights must be [%lld experts, %lld hidden, inner] ([E, out, in])", (long long)p->E,
                         (long long)p->hidden);
    p->F = w2->dims[2];
    if (w1->ndim != 3 || w1->dims[0] != p->E || w1->dims[1] != f * p->F || w1->dims[2] != p->hidden)
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc1_experts_weights must be [%lld, %lld, %lld] ([E, out, in]; the [E, in, out] layout is not accepted)",
                         (long long)p->E, (long long)(f * p->F), (long long)p->hidden);
    if (b1 && (b1->ndim != 2 || b1->dims[0] != p->E || b1->dims[1] != f * p->F))
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc1_experts_bias must be [%lld, %lld]", (long long)p->E, (long long)(f * p->F));
    if (b2 && (b2->ndim != 2 || b2->dims[0] != p->E || b2->dims[1] != p->hidden))
        return si_op_err(c, SI_ERR_INVALID_ARG, "fc2_experts_bias must be [%lld, %lld]", (long long)p->E, (long long)p->hidden);
    p->k = si_attr_int(c->node, "k", 1);
    if (p->k < 1 || p->k > p->E)
        return si_op_err(c, SI_ERR_INVALID_ARG, "k = %lld must be in 1..%lld (the number of experts)", (long long)p->k, (long long)p->E);
    if (si_attr_int(c->node, "use_sparse_mixer", 0) != 0 && p->k != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "use_sparse_mixer needs k = 2, got %lld", (long long)p->k);
    p->normalize = si_attr_int(c->node, "normalize_routing_weights", 0) != 0;
    p->alpha = si_attr_float(c->node, "activation_alpha", 1.0f);
    p->beta = si_attr_float(c->node, "activation_beta", 0.0f);
    p->limit = si_node_attr(c->node, "swiglu_limit") ? si_attr_float(c->node, "swiglu_limit", 0.0f) : INFINITY;
    return SI_OK;
}

static si_result moe_infer(si_kctx *c) {
    /* compile time with the token count (or another dimension) open: the output is the input's type and shape
     * (what the submodel after it reads); the checks wait for the run */
    if (c->partial && c->n_in > 1 && c->in[0] && c->in[1] &&
        (!si_dims_known(c->in[0]->ndim, c->in[0]->dims) || !si_dims_known(c->in[1]->ndim, c->in[1]->dims))) {
        si_result st = si_check_type(c, c->in[0]->dtype, LLM_T_FLOAT, "input");
        return st ? st : si_same_as_input(c, 0, 0);
    }
    si_moe p;
    si_result st = si_moe_prepare(c, &p);
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
            const float *W1 = w1 + e * f * F * Hd, *W2 = w2 + e * Hd * F;
            for (int64_t o = 0; o < f * F; o++) {
                double d = b1 ? b1[e * f * F + o] : 0.0;
                for (int64_t in = 0; in < Hd; in++) d += (double)W1[o * Hd + in] * xt[in];
                h[o] = (float)d;
            }
            if (p->act == MOE_SWIGLU)
                for (int64_t o = 0; o < F; o++) {
                    const float g = fminf(h[2 * o], p->limit), l = fmaxf(fminf(h[2 * o + 1], p->limit), -p->limit);
                    h[o] = g / (1.0f + expf(-p->alpha * g)) * (l + p->beta);
                }
            else
                for (int64_t o = 0; o < F; o++) h[o] = si_moe_act(p->act, h[o]);
            for (int64_t o = 0; o < Hd; o++) {
                double d = b2 ? b2[e * Hd + o] : 0.0;
                for (int64_t in = 0; in < F; in++) d += (double)W2[o * F + in] * h[in];
                y[t * Hd + o] += w * (float)d;
            }
        }
    }
    if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), y);
done:
    SI_FREE_ALL(x, r, w1, w2, b1, b2, y, h, prob, sel);
    return st;
}

static const si_op_def defs[] = {
    SI_OP_DEF(MOE, LLM_T_FLOAT, moe_infer, moe_run),
};

SI_OP_FAMILY_PARTIAL(moe, defs);
