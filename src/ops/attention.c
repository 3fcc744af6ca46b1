/*
 * attention.c — scaled dot-product attention: the reference loop every attention op shares (llm_attention), and
 * MultiHeadAttention and Attention (com.microsoft, ONNX Runtime 1.30's CPU semantics) and the ONNX Attention
 * (opsets 23 and 24). GroupQueryAttention (gqa.c) runs on the same loop.
 *
 * The loop, per batch row b, query head h (reading KV head h / (N / N_kv)) and query row i:
 *   s_j = scale * q.k_j for the row's keys j; softcap * tanh(s_j / softcap) when softcap > 0; the op's masks and
 *   biases; softmax over j, with one extra logit (0 for smooth softmax, or the head's sink) in the denominator;
 *   a row whose keys are all masked (-inf) gives zeros; out = sum_j p_j v_j.
 */
#include "ops/llm.h"

#include <float.h>
#include <string.h>

static void qk_record(const llm_attn *a, int stage, int64_t b, int64_t h, int64_t i, const float *s, int64_t kv) {
    if (!a->qk || a->qk_stage != stage) return;
    float *d = a->qk + ((b * a->N + h) * a->S + i) * a->qk_T;
    for (int64_t j = 0; j < a->qk_T; j++) d[j] = j < kv && !(a->qk_fill_masked && s[j] == -INFINITY) ? s[j] : a->qk_fill;
}

bool llm_attention(const llm_attn *a) {
    float *s = si_malloc((size_t)(a->T + 1) * sizeof(float));
    double *acc = si_malloc((size_t)(a->Hv + 1) * sizeof(double));
    if (!s || !acc) {
        SI_FREE_ALL(s, acc);
        return false;
    }
    const int64_t G = a->N / a->Nkv;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->N; h++)
            for (int64_t i = 0; i < a->S; i++) {
                const int64_t kv = a->kv_len ? SI_MIN(a->kv_len[b], a->T) : a->T, g = h / G;
                const float *q = a->q + b * a->qs[0] + h * a->qs[1] + i * a->qs[2];
                for (int64_t j = 0; j < kv; j++) {
                    const float *k = a->k + b * a->ks[0] + g * a->ks[1] + j * a->ks[2];
                    double d = 0;
                    for (int64_t e = 0; e < a->H; e++) d += (double)q[e] * k[e];
                    s[j] = (float)(d * a->scale);
                }
                qk_record(a, LLM_QK_RAW, b, h, i, s, kv);
                if (a->softcap > 0)
                    for (int64_t j = 0; j < kv; j++) s[j] = a->softcap * tanhf(s[j] / a->softcap);
                qk_record(a, LLM_QK_CAPPED, b, h, i, s, kv);
                if (a->mask) a->mask(a, b, h, i, s, kv);
                qk_record(a, LLM_QK_MASKED, b, h, i, s, kv);
                const bool extra = a->sink || a->smooth;
                const float xl = a->sink ? a->sink[h] : 0.0f;
                float m = extra ? xl : -INFINITY;
                for (int64_t j = 0; j < kv; j++) m = s[j] > m ? s[j] : m;
                double sum = 0;
                for (int64_t j = 0; j < kv; j++) {
                    s[j] = m == -INFINITY ? 0.0f : expf(s[j] - m);
                    sum += s[j];
                }
                if (extra) sum += exp((double)xl - m);
                for (int64_t j = 0; j < kv; j++) s[j] = sum > 0 ? (float)(s[j] / sum) : 0.0f;
                qk_record(a, LLM_QK_PROBS, b, h, i, s, kv);
                for (int64_t e = 0; e < a->Hv; e++) acc[e] = 0;
                for (int64_t j = 0; j < kv; j++) {
                    const float *v = a->v + b * a->vs[0] + g * a->vs[1] + j * a->vs[2];
                    for (int64_t e = 0; e < a->Hv; e++) acc[e] += (double)s[j] * v[e];
                }
                float *o = a->out + b * a->os[0] + h * a->os[1] + i * a->os[2];
                for (int64_t e = 0; e < a->Hv; e++) o[e] = (float)acc[e];
            }
    SI_FREE_ALL(s, acc);
    return true;
}

/* An additive bias [B or 1, N or 1, S, T] (attention_bias of the contrib ops). */
/* past_key [B, heads, P, H] and past_value [B, heads, P, Hv]: given together, typed like q; *P = P (0 without them). */
static si_result past_kv_check(const si_kctx *c, const si_tensor *q, const si_tensor *pk, const si_tensor *pv, int64_t B,
                               int64_t heads, int64_t H, int64_t Hv, int64_t *P) {
    si_result st;
    if (!!pk != !!pv) return si_op_err(c, SI_ERR_INVALID_ARG, "past_key and past_value must be given together");
    if (!pk) return SI_OK;
    if ((st = si_same_type(c, q, pk, "past_key")) || (st = si_same_type(c, q, pv, "past_value"))) return st;
    if (pk->ndim != 4 || pk->dims[0] != B || pk->dims[1] != heads || pk->dims[3] != H || pv->ndim != 4 || pv->dims[0] != B ||
        pv->dims[1] != heads || pv->dims[2] != pk->dims[2] || pv->dims[3] != Hv)
        return si_op_err(c, SI_ERR_INVALID_ARG, "past_key must be [%lld, %lld, past, %lld] and past_value [.., %lld]", (long long)B,
                         (long long)heads, (long long)H, (long long)Hv);
    *P = pk->dims[2];
    return SI_OK;
}

static si_result bias4_check(const si_kctx *c, int i, const si_tensor *q, int64_t B, int64_t N, int64_t S, int64_t T) {
    const si_tensor *ab = si_in(c, i);
    if (!ab) return SI_OK;
    si_result st = si_same_type(c, q, ab, "attention_bias");
    if (st) return st;
    if (ab->ndim != 4 || (ab->dims[0] != 1 && ab->dims[0] != B) || (ab->dims[1] != 1 && ab->dims[1] != N) || ab->dims[2] != S ||
        ab->dims[3] != T)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attention_bias must be [%lld or 1, %lld or 1, %lld, %lld]", (long long)B, (long long)N,
                         (long long)S, (long long)T);
    return SI_OK;
}

static const float *bias4_row(const si_tensor *ab, const float *d, int64_t b, int64_t h, int64_t i) {
    if (!d) return NULL;
    const int64_t bb = ab->dims[0] == 1 ? 0 : b, hh = ab->dims[1] == 1 ? 0 : h;
    return d + ((bb * ab->dims[1] + hh) * ab->dims[2] + i) * ab->dims[3];
}

/* Split [B, L, heads * hd] (rows of `row` floats starting at column `off`, plus an optional bias slice) into
 * [B, heads, L, hd] at dst, after `skip` rows of each head's block of `rows` rows. */
static void split_heads(float *dst, const float *src, const float *bias, int64_t B, int64_t L, int64_t heads, int64_t hd,
                        int64_t row, int64_t off, int64_t rows, int64_t skip) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++)
            for (int64_t h = 0; h < heads; h++)
                for (int64_t e = 0; e < hd; e++)
                    dst[((b * heads + h) * rows + skip + l) * hd + e] =
                        src[(b * L + l) * row + off + h * hd + e] + (bias ? bias[h * hd + e] : 0.0f);
}

// --- MultiHeadAttention / Attention (com.microsoft): masks ----------------------------------------------------------

typedef struct ms_mask {
    int kind;
    const int32_t *m;
    int64_t B, S, T, past; /* unidirectional: rows i < S - 1 keep keys j <= past + i, the last row keeps all
                            * (ONNX Runtime's CPU mask; the usual causal mask when L == S) */
    bool causal;
    float filter;
    const si_tensor *bias;
    const float *bias_d;
} ms_mask;

static si_result ms_mask_form(const si_kctx *c, const si_tensor *mk, int64_t B, int64_t S, int64_t T, bool end_start_ok, int *kind) {
    *kind = MK_NONE;
    if (!mk) return SI_OK;
    if (mk->dtype != SI_I32) return si_op_err(c, SI_ERR_INVALID_ARG, "the mask must be int32, got %s", si_dtype_name(mk->dtype));
    if (mk->ndim == 1 && mk->dims[0] == B) *kind = MK_LEN;
    else if (mk->ndim == 1 && mk->dims[0] == 2 * B && end_start_ok) *kind = MK_END_START;
    else if (mk->ndim == 2 && mk->dims[0] == B && mk->dims[1] == T) *kind = MK_2D;
    else if (mk->ndim == 3 && mk->dims[0] == B && mk->dims[1] == S && mk->dims[2] == T) *kind = MK_3D;
    else {
        char a[96];
        return si_op_err(c, mk->ndim == 1 || mk->ndim == 4 ? SI_ERR_UNSUPPORTED : SI_ERR_INVALID_ARG,
                         "mask %s is not supported: [%lld] lengths%s, [%lld, %lld] or [%lld, %lld, %lld]",
                         si_shape_str(a, sizeof a, mk->dtype, mk->ndim, mk->dims), (long long)B, end_start_ok ? " (or end and start)" : "",
                         (long long)B, (long long)T, (long long)B, (long long)S, (long long)T);
    }
    return SI_OK;
}

static void ms_mask_fn(const llm_attn *a, int64_t b, int64_t h, int64_t i, float *s, int64_t kv) {
    const ms_mask *k = a->ctx;
    const float *br = bias4_row(k->bias, k->bias_d, b, h, i);
    for (int64_t j = 0; j < kv; j++) {
        bool masked = false;
        switch (k->kind) {
        case MK_LEN: masked = j >= k->m[b]; break;
        case MK_END_START: masked = j >= k->m[b] || j < k->m[k->B + b]; break;
        case MK_2D: masked = k->m[b * k->T + j] == 0; break;
        case MK_3D: masked = k->m[(b * k->S + i) * k->T + j] == 0; break;
        default: break;
        }
        if (br) s[j] += br[j];
        if (masked) s[j] += k->filter;
        if (k->causal && i < k->S - 1 && j > k->past + i) s[j] = -FLT_MAX;
    }
}

/* The attention of MultiHeadAttention and Attention (com.microsoft) over split heads q [B, N, S, H], k [B, N, T, H]
 * and v [B, N, T, Hv] into out [B, S, N x Hv], with mask m (its causal flag and filter value taken here from the
 * node's unidirectional and mask_filter_value) and the node's scale (0: 1/sqrt(H)); qk, when not NULL, receives
 * the masked scores [B, N, S, T]. False when out of memory. */
static bool ms_attend(const si_kctx *c, ms_mask *m, int64_t N, int64_t H, int64_t Hv, const float *q, const float *k,
                      const float *v, float *out, float *qk) {
    const int64_t S = m->S, T = m->T;
    const float sc = si_attr_float(c->node, "scale", 0.0f);
    m->causal = si_attr_int(c->node, "unidirectional", 0) != 0;
    m->filter = si_attr_float(c->node, "mask_filter_value", -10000.0f);
    llm_attn a = {.B = m->B, .N = N, .Nkv = N, .S = S, .T = T, .H = H, .Hv = Hv, .q = q, .k = k, .v = v, .out = out,
                  .qs = {N * S * H, S * H, H}, .ks = {N * T * H, T * H, H}, .vs = {N * T * Hv, T * Hv, Hv}, .os = {S * N * Hv, Hv, N * Hv},
                  .scale = sc != 0.0f ? sc : (float)(1.0 / sqrt((double)H)), .mask = ms_mask_fn, .ctx = m,
                  .qk = qk, .qk_T = T, .qk_stage = LLM_QK_MASKED};
    return llm_attention(&a);
}

// --- MultiHeadAttention ---------------------------------------------------------------------------------------------

si_result si_mha_prepare(const si_kctx *c, si_mha *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    if ((st = si_need_input(c, MHA_Q, false))) return st;
    const si_tensor *q = si_in(c, MHA_Q), *k = si_in(c, MHA_K), *v = si_in(c, MHA_V), *bias = si_in(c, MHA_BIAS);
    const si_tensor *pk = si_in(c, MHA_PK), *pv = si_in(c, MHA_PV);
    if ((st = si_check_type(c, q->dtype, LLM_T_FLOAT, "query"))) return st;
    const si_attr *an = si_node_attr(c->node, "num_heads");
    if (!an || an->i < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute num_heads is required and must be positive");
    p->N = an->i;
    if (q->ndim == 5 || (k && k->ndim == 5))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "packed %s input is not supported (ONNX Runtime's CPU kernel has none)", q->ndim == 5 ? "QKV" : "KV");
    if (q->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "query must be 3-D [batch, sequence, hidden], got rank %d", q->ndim);
    if (!k || !v) return si_op_err(c, SI_ERR_UNSUPPORTED, "key and value are required (packed QKV is not supported)");
    if ((st = si_same_type(c, q, k, "key")) || (st = si_same_type(c, q, v, "value"))) return st;
    if (si_in(c, MHA_PSL) || si_in(c, MHA_CACHE))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "past_sequence_length and cache_indirection (buffer sharing, beam search) are not supported");
    p->B = q->dims[0];
    p->S = q->dims[1];
    const int64_t D = q->dims[2];
    if (D % p->N) return si_op_err(c, SI_ERR_INVALID_ARG, "query hidden size %lld is not a multiple of num_heads %lld", (long long)D, (long long)p->N);
    p->H = D / p->N;
    if (k->ndim == 3) {
        if (k->dims[0] != p->B || k->dims[2] != D || v->ndim != 3 || v->dims[0] != p->B || v->dims[1] != k->dims[1] || v->dims[2] % p->N)
            return si_op_err(c, SI_ERR_INVALID_ARG, "key must be [%lld, L, %lld] and value [%lld, L, heads x v_head]", (long long)p->B,
                             (long long)D, (long long)p->B);
        p->L = k->dims[1];
        p->Hv = v->dims[2] / p->N;
    } else if (k->ndim == 4) {
        if (k->dims[0] != p->B || k->dims[1] != p->N || k->dims[3] != p->H || v->ndim != 4 || v->dims[0] != p->B || v->dims[1] != p->N ||
            v->dims[2] != k->dims[2])
            return si_op_err(c, SI_ERR_INVALID_ARG, "4-D key and value must be [%lld, %lld, L, head]", (long long)p->B, (long long)p->N);
        p->cross = true;
        p->L = k->dims[2];
        p->Hv = v->dims[3];
    } else {
        return si_op_err(c, SI_ERR_INVALID_ARG, "key must be 3-D or 4-D, got rank %d", k->ndim);
    }
    if (bias) {
        if ((st = si_same_type(c, q, bias, "bias"))) return st;
        if (bias->ndim != 1 || bias->dims[0] != 2 * D + p->N * p->Hv)
            return si_op_err(c, SI_ERR_INVALID_ARG, "bias must be 1-D with %lld values (Q, K, V biases)", (long long)(2 * D + p->N * p->Hv));
    }
    if (pk && pv && p->cross) return si_op_err(c, SI_ERR_INVALID_ARG, "past_key/past_value cannot be used with 4-D key and value");
    if ((st = past_kv_check(c, q, pk, pv, p->B, p->N, p->H, p->Hv, &p->P))) return st;
    p->T = p->P + p->L;
    if ((st = ms_mask_form(c, si_in(c, MHA_MASK), p->B, p->S, p->T, false, &p->mask))) return st;
    return bias4_check(c, MHA_ABIAS, q, p->B, p->N, p->S, p->T);
}

SI_OP_PLANNED(mha_infer, si_mha, p, si_mha_prepare) {
    si_result st = SI_OK;
    const si_dtype dt = si_in(c, MHA_Q)->dtype;
    if ((st = si_set_out(c, 0, dt, 3, (int64_t[]){p->B, p->S, p->N * p->Hv}))) return st;
    if ((st = si_set_out(c, 1, dt, 4, (int64_t[]){p->B, p->N, p->T, p->H}))) return st;
    if ((st = si_set_out(c, 2, dt, 4, (int64_t[]){p->B, p->N, p->T, p->Hv}))) return st;
    return si_set_out(c, 3, dt, 4, (int64_t[]){p->B, p->N, p->S, p->T});
}

SI_OP_PLANNED(mha_run, si_mha, p, si_mha_prepare) {
    si_result st = SI_OK;
    const int64_t B = p->B, S = p->S, L = p->L, N = p->N, H = p->H, Hv = p->Hv, P = p->P, T = p->T, D = N * H;
    const si_tensor *mk = si_in(c, MHA_MASK), *abt = si_in(c, MHA_ABIAS);
    float *qf = si_tensor_to_f32(si_in(c, MHA_Q)), *kf = si_tensor_to_f32(si_in(c, MHA_K)), *vf = si_tensor_to_f32(si_in(c, MHA_V));
    float *bias = si_in(c, MHA_BIAS) ? si_tensor_to_f32(si_in(c, MHA_BIAS)) : NULL;
    float *pkf = P ? si_tensor_to_f32(si_in(c, MHA_PK)) : NULL, *pvf = P ? si_tensor_to_f32(si_in(c, MHA_PV)) : NULL;
    float *ab = abt ? si_tensor_to_f32(abt) : NULL;
    float *qh = si_malloc((size_t)(B * N * S * H + 1) * sizeof(float));
    float *kh = si_malloc((size_t)(B * N * T * H + 1) * sizeof(float)), *vh = si_malloc((size_t)(B * N * T * Hv + 1) * sizeof(float));
    float *out = si_malloc((size_t)(B * S * N * Hv + 1) * sizeof(float));
    float *qk = si_out(c, 3) ? si_malloc((size_t)(B * N * S * T + 1) * sizeof(float)) : NULL;
    if (!qf || !kf || !vf || (si_in(c, MHA_BIAS) && !bias) || (P && (!pkf || !pvf)) || (abt && !ab) || !qh || !kh || !vh || !out ||
        (si_out(c, 3) && !qk)) {
        st = si_op_nomem(c);
        goto done;
    }
    split_heads(qh, qf, bias, B, S, N, H, D, 0, S, 0);
    if (p->cross) {
        memcpy(kh, kf, (size_t)(B * N * T * H) * sizeof(float));
        memcpy(vh, vf, (size_t)(B * N * T * Hv) * sizeof(float));
    } else {
        for (int64_t bh = 0; bh < B * N && P; bh++) {
            memcpy(kh + bh * T * H, pkf + bh * P * H, (size_t)(P * H) * sizeof(float));
            memcpy(vh + bh * T * Hv, pvf + bh * P * Hv, (size_t)(P * Hv) * sizeof(float));
        }
        split_heads(kh, kf, bias ? bias + D : NULL, B, L, N, H, D, 0, T, P);
        split_heads(vh, vf, bias ? bias + 2 * D : NULL, B, L, N, Hv, N * Hv, 0, T, P);
    }
    ms_mask mm = {.kind = p->mask, .m = mk ? mk->data : NULL, .B = B, .S = S, .T = T, .past = P, .bias = abt, .bias_d = ab};
    if (!ms_attend(c, &mm, N, H, Hv, qh, kh, vh, out, qk)) {
        st = si_op_nomem(c);
        goto done;
    }
    if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), out);
    if (si_out(c, 1)) si_tensor_from_f32(si_out(c, 1), kh);
    if (si_out(c, 2)) si_tensor_from_f32(si_out(c, 2), vh);
    if (si_out(c, 3)) si_tensor_from_f32(si_out(c, 3), qk);
done:
    SI_FREE_ALL(qf, kf, vf, bias, pkf, pvf, ab, qh, kh, vh, out, qk);
    return st;
}

// --- Attention (com.microsoft): the projection, then MHA ------------------------------------------------------------

si_result si_msattn_prepare(const si_kctx *c, si_msattn *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    if ((st = si_need_input(c, AT_X, false)) || (st = si_need_input(c, AT_W, false))) return st;
    const si_tensor *x = si_in(c, AT_X), *w = si_in(c, AT_W), *bias = si_in(c, AT_BIAS), *past = si_in(c, AT_PAST);
    if ((st = si_check_type(c, x->dtype, LLM_T_FLOAT, "input")) || (st = si_same_type(c, x, w, "weights"))) return st;
    const si_attr *an = si_node_attr(c->node, "num_heads");
    if (!an || an->i < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute num_heads is required and must be positive");
    p->N = an->i;
    if (si_attr_int(c->node, "do_rotary", 0) != 0) return si_op_err(c, SI_ERR_UNSUPPORTED, "do_rotary is not supported");
    if (si_attr_int(c->node, "past_present_share_buffer", 0) != 0 || si_in(c, AT_PSL))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "past_present_share_buffer / past_sequence_length is not supported");
    if (x->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 3-D [batch, sequence, hidden], got rank %d", x->ndim);
    p->B = x->dims[0], p->S = x->dims[1], p->Din = x->dims[2];
    if (w->ndim != 2 || w->dims[0] != p->Din)
        return si_op_err(c, SI_ERR_INVALID_ARG, "weights must be [%lld, q + k + v hidden]", (long long)p->Din);
    int64_t hs[3];
    int n = 0;
    if ((st = si_attr_ints_buf(c, "qkv_hidden_sizes", hs, 3, &n))) return st;
    if (n > 0 && n != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "qkv_hidden_sizes must hold 3 values");
    if (n <= 0) {
        if (w->dims[1] % 3) return si_op_err(c, SI_ERR_INVALID_ARG, "weights' second dimension %lld is not 3 x hidden", (long long)w->dims[1]);
        hs[0] = hs[1] = hs[2] = w->dims[1] / 3;
    }
    p->Dq = hs[0], p->Dk = hs[1], p->Dv = hs[2];
    if (p->Dq != p->Dk || p->Dq < 1 || p->Dv < 1 || p->Dq % p->N || p->Dv % p->N || hs[0] + hs[1] + hs[2] != w->dims[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "hidden sizes %lld, %lld, %lld must add up to %lld, Q and K equal, each a multiple of %lld heads",
                         (long long)hs[0], (long long)hs[1], (long long)hs[2], (long long)w->dims[1], (long long)p->N);
    if (bias) {
        if ((st = si_same_type(c, x, bias, "bias"))) return st;
        if (bias->ndim != 1 || bias->dims[0] != w->dims[1])
            return si_op_err(c, SI_ERR_INVALID_ARG, "bias must be 1-D with %lld values", (long long)w->dims[1]);
    }
    if (past) {
        if ((st = si_same_type(c, x, past, "past"))) return st;
        if (p->Dq != p->Dv) return si_op_err(c, SI_ERR_INVALID_ARG, "past needs equal Q, K and V hidden sizes");
        if (past->ndim != 5 || past->dims[0] != 2 || past->dims[1] != p->B || past->dims[2] != p->N || past->dims[4] != p->Dq / p->N)
            return si_op_err(c, SI_ERR_INVALID_ARG, "past must be [2, %lld, %lld, past, %lld]", (long long)p->B, (long long)p->N,
                             (long long)(p->Dq / p->N));
        p->P = past->dims[3];
    }
    if (c->n_out > 1 && c->out[1] && p->Dq != p->Dv) /* present is [2, B, N, T, head size]: one head size for K and V */
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output present needs equal Q, K and V hidden sizes, got %lld, %lld, %lld", (long long)hs[0],
                         (long long)hs[1], (long long)hs[2]);
    p->T = p->P + p->S;
    if ((st = ms_mask_form(c, si_in(c, AT_MASK), p->B, p->S, p->T, true, &p->mask))) return st;
    return bias4_check(c, AT_ABIAS, x, p->B, p->N, p->S, p->T);
}

SI_OP_PLANNED(msat_infer, si_msattn, p, si_msattn_prepare) {
    si_result st = SI_OK;
    const si_dtype dt = si_in(c, AT_X)->dtype;
    if ((st = si_set_out(c, 0, dt, 3, (int64_t[]){p->B, p->S, p->Dv}))) return st;
    return si_set_out(c, 1, dt, 5, (int64_t[]){2, p->B, p->N, p->T, p->Dq / p->N});
}

SI_OP_PLANNED(msat_run, si_msattn, p, si_msattn_prepare) {
    si_result st = SI_OK;
    const int64_t B = p->B, S = p->S, N = p->N, H = p->Dq / p->N, Hv = p->Dv / p->N, P = p->P, T = p->T, W = p->Dq + p->Dk + p->Dv;
    const si_tensor *mk = si_in(c, AT_MASK), *abt = si_in(c, AT_ABIAS);
    float *xf = si_tensor_to_f32(si_in(c, AT_X)), *wf = si_tensor_to_f32(si_in(c, AT_W));
    float *bias = si_in(c, AT_BIAS) ? si_tensor_to_f32(si_in(c, AT_BIAS)) : NULL;
    float *pf = P ? si_tensor_to_f32(si_in(c, AT_PAST)) : NULL, *ab = abt ? si_tensor_to_f32(abt) : NULL;
    float *proj = si_malloc((size_t)(B * S * W + 1) * sizeof(float));
    float *qh = si_malloc((size_t)(B * N * S * H + 1) * sizeof(float)), *kv = si_malloc((size_t)(2 * B * N * T * H + 1) * sizeof(float));
    float *vh = si_malloc((size_t)(B * N * T * Hv + 1) * sizeof(float)), *out = si_malloc((size_t)(B * S * N * Hv + 1) * sizeof(float));
    if (!xf || !wf || (si_in(c, AT_BIAS) && !bias) || (P && !pf) || (abt && !ab) || !proj || !qh || !kv || !vh || !out) {
        st = si_op_nomem(c);
        goto done;
    }
    for (int64_t r = 0; r < B * S; r++)
        for (int64_t o = 0; o < W; o++) {
            double d = bias ? bias[o] : 0.0;
            for (int64_t i = 0; i < p->Din; i++) d += (double)xf[r * p->Din + i] * wf[i * W + o];
            proj[r * W + o] = (float)d;
        }
    float *kh = kv; /* present = [2, B, N, T, H]: keys, then values (H == Hv with a past) */
    for (int64_t bh = 0; bh < B * N && P; bh++) {
        memcpy(kh + bh * T * H, pf + bh * P * H, (size_t)(P * H) * sizeof(float));
        memcpy(vh + bh * T * Hv, pf + (B * N + bh) * P * H, (size_t)(P * Hv) * sizeof(float));
    }
    split_heads(qh, proj, NULL, B, S, N, H, W, 0, S, 0);
    split_heads(kh, proj, NULL, B, S, N, H, W, p->Dq, T, P);
    split_heads(vh, proj, NULL, B, S, N, Hv, W, p->Dq + p->Dk, T, P);
    ms_mask mm = {.kind = p->mask, .m = mk ? mk->data : NULL, .B = B, .S = S, .T = T, .past = P, .bias = abt, .bias_d = ab};
    if (!ms_attend(c, &mm, N, H, Hv, qh, kh, vh, out, NULL)) {
        st = si_op_nomem(c);
        goto done;
    }
    if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), out);
    if (si_out(c, 1)) {
        memcpy(kv + B * N * T * H, vh, (size_t)(B * N * T * H) * sizeof(float));
        si_tensor_from_f32(si_out(c, 1), kv);
    }
done:
    SI_FREE_ALL(xf, wf, bias, pf, ab, proj, qh, kv, vh, out);
    return st;
}

// --- Attention (ONNX, opsets 23 and 24) -------------------------------------------------------------------------------

enum { OA_Q, OA_K, OA_V, OA_MASK, OA_PK, OA_PV, OA_NONPAD };

typedef struct oa_p {
    int64_t B, Nq, Nkv, S, L, H, Hv, P, T;
    bool three_d;
    int64_t mdims[4]; /* attn_mask broadcast to [B, Nq, S, mask T] (its last dim may be shorter than T) */
    int64_t mstr[4];
} oa_p;

static si_result oa_prep(si_kctx *c, oa_p *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    if ((st = si_inputs_typed(c, 3, 3, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T_LIKE0}, (const char *const[]){"Q", "K", "V"})))
        return st;
    const si_tensor *q = si_in(c, OA_Q), *k = si_in(c, OA_K), *v = si_in(c, OA_V), *mk = si_in(c, OA_MASK);
    const si_tensor *pk = si_in(c, OA_PK), *pv = si_in(c, OA_PV), *np = si_in(c, OA_NONPAD);
    if (q->ndim != k->ndim || q->ndim != v->ndim || (q->ndim != 3 && q->ndim != 4))
        return si_op_err(c, SI_ERR_INVALID_ARG, "Q, K and V must all be 3-D or all 4-D");
    p->B = q->dims[0];
    if (q->ndim == 3) {
        p->three_d = true;
        p->Nq = si_attr_int(c->node, "q_num_heads", 0);
        p->Nkv = si_attr_int(c->node, "kv_num_heads", 0);
        if (p->Nq < 1 || p->Nkv < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "3-D inputs need q_num_heads and kv_num_heads");
        if (q->dims[2] % p->Nq || k->dims[2] % p->Nkv || v->dims[2] % p->Nkv)
            return si_op_err(c, SI_ERR_INVALID_ARG, "hidden sizes must be multiples of the head counts");
        p->S = q->dims[1], p->H = q->dims[2] / p->Nq, p->L = k->dims[1], p->Hv = v->dims[2] / p->Nkv;
        if (k->dims[2] / p->Nkv != p->H) return si_op_err(c, SI_ERR_INVALID_ARG, "Q and K head sizes differ");
    } else {
        p->Nq = q->dims[1], p->S = q->dims[2], p->H = q->dims[3];
        p->Nkv = k->dims[1], p->L = k->dims[2], p->Hv = v->dims[3];
        if (k->dims[3] != p->H || v->dims[1] != p->Nkv) return si_op_err(c, SI_ERR_INVALID_ARG, "K must be [B, kv heads, L, head] like Q's head");
    }
    if (k->dims[0] != p->B || v->dims[0] != p->B || (q->ndim == 3 ? v->dims[1] : v->dims[2]) != p->L)
        return si_op_err(c, SI_ERR_INVALID_ARG, "K and V must have Q's batch and the same sequence length");
    if (p->Nq % p->Nkv) return si_op_err(c, SI_ERR_INVALID_ARG, "q heads (%lld) must be a multiple of kv heads (%lld)", (long long)p->Nq,
                                         (long long)p->Nkv);
    if ((st = past_kv_check(c, q, pk, pv, p->B, p->Nkv, p->H, p->Hv, &p->P))) return st;
    p->T = p->P + p->L;
    if (mk) {
        if (mk->dtype != SI_BOOL && (st = si_same_type(c, q, mk, "attn_mask"))) return st;
        if (mk->ndim < 2 || mk->ndim > 4) return si_op_err(c, SI_ERR_INVALID_ARG, "attn_mask must have rank 2 to 4, got %d", mk->ndim);
        const int64_t want[4] = {p->B, p->Nq, p->S, mk->dims[mk->ndim - 1]};
        for (int i = 0; i < 4; i++) p->mdims[i] = i < 4 - mk->ndim ? 1 : mk->dims[i - (4 - mk->ndim)];
        for (int i = 0; i < 3; i++)
            if (p->mdims[i] != 1 && p->mdims[i] != want[i])
                return si_op_err(c, SI_ERR_INVALID_ARG, "attn_mask does not broadcast to [%lld, %lld, %lld, %lld]", (long long)p->B,
                                 (long long)p->Nq, (long long)p->S, (long long)p->T);
        if (p->mdims[3] > p->T) return si_op_err(c, SI_ERR_INVALID_ARG, "attn_mask has %lld keys, more than %lld", (long long)p->mdims[3], (long long)p->T);
        int64_t s = 1;
        for (int i = 3; i >= 0; i--) {
            p->mstr[i] = p->mdims[i] == 1 && i < 3 ? 0 : s;
            s *= p->mdims[i];
        }
    }
    if (np) {
        if (np->dtype != SI_I64 || np->ndim != 1 || np->dims[0] != p->B)
            return si_op_err(c, SI_ERR_INVALID_ARG, "nonpad_kv_seqlen must be int64 [%lld]", (long long)p->B);
    }
    const int64_t mode = si_attr_int(c->node, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3) return si_op_err(c, SI_ERR_INVALID_ARG, "qk_matmul_output_mode %lld is not in 0..3", (long long)mode);
    return SI_OK;
}

SI_OP_PLANNED(oa_infer, oa_p, p, oa_prep) {
    si_result st = SI_OK;
    const si_dtype dt = si_in(c, OA_Q)->dtype;
    if (p->three_d) st = si_set_out(c, 0, dt, 3, (int64_t[]){p->B, p->S, p->Nq * p->Hv});
    else st = si_set_out(c, 0, dt, 4, (int64_t[]){p->B, p->Nq, p->S, p->Hv});
    if (st || (st = si_set_out(c, 1, dt, 4, (int64_t[]){p->B, p->Nkv, p->T, p->H})) ||
        (st = si_set_out(c, 2, dt, 4, (int64_t[]){p->B, p->Nkv, p->T, p->Hv})))
        return st;
    return si_set_out(c, 3, dt, 4, (int64_t[]){p->B, p->Nq, p->S, p->T});
}

typedef struct oa_mask {
    const oa_p *p;
    const si_tensor *mask;
    const float *mf;     /* float mask values (NULL for a bool mask) */
    const int64_t *nonpad;
    bool causal;
} oa_mask;

static void oa_mask_fn(const llm_attn *a, int64_t b, int64_t h, int64_t i, float *s, int64_t kv) {
    const oa_mask *m = a->ctx;
    const oa_p *p = m->p;
    /* causal: bottom-right aligned to the past (or to nonpad_kv_seqlen without a past) */
    const int64_t off = p->P ? p->P : m->nonpad ? m->nonpad[b] - p->S : 0;
    for (int64_t j = 0; j < kv; j++) {
        if (m->mask) {
            if (j >= p->mdims[3]) s[j] = -INFINITY;
            else {
                const int64_t at = (p->mdims[0] == 1 ? 0 : b) * p->mstr[0] + (p->mdims[1] == 1 ? 0 : h) * p->mstr[1] +
                                   (p->mdims[2] == 1 ? 0 : i) * p->mstr[2] + j;
                if (m->mf) s[j] += m->mf[at];
                else if (!((const uint8_t *)m->mask->data)[at]) s[j] = -INFINITY;
            }
        }
        if (m->causal && j > i + off) s[j] = -INFINITY;
        if (m->nonpad && j >= m->nonpad[b]) s[j] = -INFINITY;
    }
}

SI_OP_PLANNED(oa_run, oa_p, p, oa_prep) {
    si_result st = SI_OK;
    const int64_t B = p->B, Nq = p->Nq, Nkv = p->Nkv, S = p->S, L = p->L, H = p->H, Hv = p->Hv, P = p->P, T = p->T;
    const si_tensor *mk = si_in(c, OA_MASK), *npt = si_in(c, OA_NONPAD);
    float *qf = si_tensor_to_f32(si_in(c, OA_Q)), *kf = si_tensor_to_f32(si_in(c, OA_K)), *vf = si_tensor_to_f32(si_in(c, OA_V));
    float *pkf = P ? si_tensor_to_f32(si_in(c, OA_PK)) : NULL, *pvf = P ? si_tensor_to_f32(si_in(c, OA_PV)) : NULL;
    float *mf = mk && mk->dtype != SI_BOOL ? si_tensor_to_f32(mk) : NULL;
    float *qh = si_malloc((size_t)(B * Nq * S * H + 1) * sizeof(float));
    float *kh = si_malloc((size_t)(B * Nkv * T * H + 1) * sizeof(float)), *vh = si_malloc((size_t)(B * Nkv * T * Hv + 1) * sizeof(float));
    float *out = si_malloc((size_t)(B * Nq * S * Hv + 1) * sizeof(float));
    float *qk = si_out(c, 3) ? si_malloc((size_t)(B * Nq * S * T + 1) * sizeof(float)) : NULL;
    if (!qf || !kf || !vf || (P && (!pkf || !pvf)) || (mk && mk->dtype != SI_BOOL && !mf) || !qh || !kh || !vh || !out || (si_out(c, 3) && !qk)) {
        st = si_op_nomem(c);
        goto done;
    }
    if (p->three_d) split_heads(qh, qf, NULL, B, S, Nq, H, Nq * H, 0, S, 0);
    else memcpy(qh, qf, (size_t)(B * Nq * S * H) * sizeof(float));
    for (int64_t bh = 0; bh < B * Nkv && P; bh++) {
        memcpy(kh + bh * T * H, pkf + bh * P * H, (size_t)(P * H) * sizeof(float));
        memcpy(vh + bh * T * Hv, pvf + bh * P * Hv, (size_t)(P * Hv) * sizeof(float));
    }
    if (p->three_d) {
        split_heads(kh, kf, NULL, B, L, Nkv, H, Nkv * H, 0, T, P);
        split_heads(vh, vf, NULL, B, L, Nkv, Hv, Nkv * Hv, 0, T, P);
    } else {
        for (int64_t bh = 0; bh < B * Nkv; bh++) {
            memcpy(kh + (bh * T + P) * H, kf + bh * L * H, (size_t)(L * H) * sizeof(float));
            memcpy(vh + (bh * T + P) * Hv, vf + bh * L * Hv, (size_t)(L * Hv) * sizeof(float));
        }
    }
    const si_attr *asc = si_node_attr(c->node, "scale");
    const int64_t mode = si_attr_int(c->node, "qk_matmul_output_mode", 0);
    /* What the ONNX test data (the reference implementation) records: the scores after the softcap for modes 0 and
     * 1, with the mask added for mode 2, the probabilities for mode 3. */
    static const int stage_of[4] = {LLM_QK_CAPPED, LLM_QK_CAPPED, LLM_QK_MASKED, LLM_QK_PROBS};
    oa_mask om = {.p = p, .mask = mk, .mf = mf, .nonpad = npt ? npt->data : NULL, .causal = si_attr_int(c->node, "is_causal", 0) != 0};
    llm_attn a = {.B = B, .N = Nq, .Nkv = Nkv, .S = S, .T = T, .H = H, .Hv = Hv, .q = qh, .k = kh, .v = vh, .out = out,
                  .qs = {Nq * S * H, S * H, H}, .ks = {Nkv * T * H, T * H, H}, .vs = {Nkv * T * Hv, T * Hv, Hv},
                  .scale = asc ? asc->f : (float)(1.0 / sqrt((double)H)), .softcap = si_attr_float(c->node, "softcap", 0.0f),
                  .mask = oa_mask_fn, .ctx = &om, .qk = qk, .qk_T = T, .qk_stage = stage_of[mode]};
    if (p->three_d) {
        a.os[0] = S * Nq * Hv, a.os[1] = Hv, a.os[2] = Nq * Hv;
    } else {
        a.os[0] = Nq * S * Hv, a.os[1] = S * Hv, a.os[2] = Hv;
    }
    if (!llm_attention(&a)) {
        st = si_op_nomem(c);
        goto done;
    }
    if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), out);
    if (si_out(c, 1)) si_tensor_from_f32(si_out(c, 1), kh);
    if (si_out(c, 2)) si_tensor_from_f32(si_out(c, 2), vh);
    if (si_out(c, 3)) si_tensor_from_f32(si_out(c, 3), qk);
done:
    SI_FREE_ALL(qf, kf, vf, pkf, pvf, mf, qh, kh, vh, out, qk);
    return st;
}

static const si_op_def defs[] = {
    SI_OP_DEF(MULTI_HEAD_ATTENTION, LLM_T_FLOAT, mha_infer, mha_run),
    SI_OP_DEF(MS_ATTENTION, LLM_T_FLOAT, msat_infer, msat_run),
    SI_OP_DEF(ATTENTION, SI_T_FLOATS, oa_infer, oa_run),
};

SI_OP_FAMILY(attention, defs);
