/*
 * gqa.c — decoder attention with a KV cache and the rotary embedding: GroupQueryAttention and RotaryEmbedding
 * (com.microsoft), and the ONNX RotaryEmbedding (opset 23). Semantics: ONNX Runtime 1.30's CPU kernels, as
 * ../shared/LLM-OPS-NOTES.md (§2, §4) records them.
 *
 * GroupQueryAttention, per batch row b (T_b = seqlens_k[b] + 1 keys):
 *   - mode from S and total_sequence_length (TSL): the first prompt when S == TSL (the past is ignored, P_b = 0),
 *     otherwise P_b = T_b - S valid past tokens (decode S = 1, or a chunk, batch 1 only);
 *   - rotary (do_rotary): new Q and K heads rotated at position_ids[b, s], else s (first prompt), else P_b + s;
 *   - present[b, g] = past rows [0, P_b), then the S new rows, zeros after (present length max(TSL, past));
 *   - query row i (absolute a = P_b + i) against keys j < T_b: s = scale q.k, softcap, + attention_bias;
 *     causal keeps j <= a, local_window_size W keeps the W keys j > a - W; softmax (an extra logit 0 with
 *     smooth_softmax, head_sink[h] with a head sink); out = sum p_j v_j. Query head h reads KV head h / (N / N_kv).
 */
#include "ops/llm.h"

#include <string.h>

enum { GQ_Q, GQ_K, GQ_V, GQ_PK, GQ_PV, GQ_SEQLENS, GQ_TSL, GQ_COS, GQ_SIN, GQ_POS, GQ_BIAS, GQ_SINK, GQ_KSCALE };

static si_result need_int(const si_kctx *c, int i, si_dtype dt, const char *what) {
    si_result st = si_need_input(c, i, false);
    if (st) return st;
    if (si_in(c, i)->dtype != dt)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be %s, got %s", what, si_dtype_name(dt), si_dtype_name(si_in(c, i)->dtype));
    return SI_OK;
}

si_result si_gqa_prepare(const si_kctx *c, bool need_tsl, si_gqa *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    p->tsl = p->Cout = -1;
    if ((st = si_need_input(c, GQ_Q, false))) return st;
    const si_tensor *q = si_in(c, GQ_Q), *k = si_in(c, GQ_K), *v = si_in(c, GQ_V);
    const si_tensor *pk = si_in(c, GQ_PK), *pv = si_in(c, GQ_PV);
    if ((st = si_check_type(c, q->dtype, LLM_T_FLOAT, "query"))) return st;
    const si_attr *an = si_node_attr(c->node, "num_heads"), *akv = si_node_attr(c->node, "kv_num_heads");
    if (!an || !akv) return si_op_err(c, SI_ERR_INVALID_ARG, "attributes num_heads and kv_num_heads are required");
    p->N = an->i;
    p->Nkv = akv->i;
    if (p->N < 1 || p->Nkv < 1 || p->N % p->Nkv)
        return si_op_err(c, SI_ERR_INVALID_ARG, "num_heads (%lld) must be a positive multiple of kv_num_heads (%lld)",
                         (long long)p->N, (long long)p->Nkv);
    if (q->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "query must be 3-D [batch, sequence, hidden], got rank %d", q->ndim);
    p->B = q->dims[0];
    p->S = q->dims[1];
    if (!!k != !!v) return si_op_err(c, SI_ERR_INVALID_ARG, "key and value must be given together");
    p->packed = !k;
    const int64_t heads = p->packed ? p->N + 2 * p->Nkv : p->N;
    if (q->dims[2] % heads)
        return si_op_err(c, SI_ERR_INVALID_ARG, "query hidden size %lld is not a multiple of %lld heads%s", (long long)q->dims[2],
                         (long long)heads, p->packed ? " (packed Q, K, V)" : "");
    p->H = q->dims[2] / heads;
    if (p->H < 1 || p->H % 8)
        return si_op_err(c, SI_ERR_INVALID_ARG, "head size %lld must be a positive multiple of 8", (long long)p->H);
    for (int i = GQ_K; i <= GQ_V && !p->packed; i++) {
        const si_tensor *t = si_in(c, i);
        if ((st = si_same_type(c, q, t, i == GQ_K ? "key" : "value"))) return st;
        if (t->ndim != 3 || t->dims[0] != p->B || t->dims[1] != p->S || t->dims[2] != p->Nkv * p->H)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be [%lld, %lld, %lld]", i == GQ_K ? "key" : "value", (long long)p->B,
                             (long long)p->S, (long long)(p->Nkv * p->H));
    }
    if (!!pk != !!pv) return si_op_err(c, SI_ERR_INVALID_ARG, "past_key and past_value must be given together");
    if (pk) {
        for (int i = GQ_PK; i <= GQ_PV; i++) {
            const si_tensor *t = si_in(c, i);
            if ((st = si_same_type(c, q, t, i == GQ_PK ? "past_key" : "past_value"))) return st;
            if (t->ndim != 4 || t->dims[0] != p->B || t->dims[1] != p->Nkv || t->dims[3] != p->H || t->dims[2] != pk->dims[2])
                return si_op_err(c, SI_ERR_INVALID_ARG, "past_key and past_value must be [%lld, %lld, past, %lld] (BNSH)",
                                 (long long)p->B, (long long)p->Nkv, (long long)p->H);
        }
        p->C = pk->dims[2];
    }
    if ((st = need_int(c, GQ_SEQLENS, SI_I32, "seqlens_k")) || (st = need_int(c, GQ_TSL, SI_I32, "total_sequence_length")))
        return st;
    if (si_count(si_in(c, GQ_SEQLENS)) != p->B)
        return si_op_err(c, SI_ERR_INVALID_ARG, "seqlens_k must hold one value per batch row (%lld)", (long long)p->B);
    const si_tensor *tt = si_in(c, GQ_TSL);
    if (si_count(tt) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "total_sequence_length must hold exactly one value, got %lld", (long long)si_count(tt));
    /* attributes */
    p->rotary = si_attr_int(c->node, "do_rotary", 0) != 0;
    p->interleaved = si_attr_int(c->node, "rotary_interleaved", 0) != 0;
    p->causal = si_attr_int(c->node, "causal", 1) != 0;
    p->smooth = si_attr_int(c->node, "smooth_softmax", 0) != 0;
    p->window = si_attr_int(c->node, "local_window_size", -1);
    p->softcap = si_attr_float(c->node, "softcap", 0.0f);
    const float sc = si_attr_float(c->node, "scale", 0.0f);
    p->scale = sc != 0.0f ? sc : (float)(1.0 / sqrt((double)p->H));
    const int64_t qko = si_attr_int(c->node, "qk_output", 0);
    if (qko < 0 || qko > 2) return si_op_err(c, SI_ERR_INVALID_ARG, "qk_output %lld is not 0, 1 or 2", (long long)qko);
    p->qk_output = (int)qko;
    if (si_out(c, 3) && !p->qk_output)
        return si_op_err(c, SI_ERR_INVALID_ARG, "output_qk is asked for but qk_output is 0");
    if (p->softcap < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "softcap must not be negative");
    if (p->window == 0 || p->window < -1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "local_window_size %lld must be -1 (off) or positive", (long long)p->window);
    if (!p->causal && p->window > 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "local_window_size needs causal attention (causal = 0 given)");
    if (si_attr_int(c->node, "sliding_window_cache", 0) != 0)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "sliding_window_cache is not supported");
    for (int i = GQ_KSCALE; i < c->n_in && i <= 15; i++)
        if (si_in(c, i))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "input %d (%s) is not supported", i,
                             i < 14 ? "a quantized KV cache scale" : "a Q/K norm weight, CUDA/WebGPU only");
    /* rotary caches */
    const si_tensor *cs = si_in(c, GQ_COS), *sn = si_in(c, GQ_SIN);
    if (!!cs != !!sn) return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache and sin_cache must be given together");
    if (p->rotary && !cs) return si_op_err(c, SI_ERR_INVALID_ARG, "do_rotary needs cos_cache and sin_cache");
    if (cs) {
        if ((st = si_same_type(c, q, cs, "cos_cache")) || (st = si_same_type(c, q, sn, "sin_cache"))) return st;
        if (cs->ndim != 2 || sn->ndim != 2 || cs->dims[0] != sn->dims[0] || cs->dims[1] != sn->dims[1])
            return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache and sin_cache must be 2-D of the same shape");
        if (p->H % 16)
            return si_op_err(c, SI_ERR_INVALID_ARG, "head size %lld must be a multiple of 16 with rotary caches", (long long)p->H);
        p->half = cs->dims[1];
        p->max_pos = cs->dims[0];
        if (p->half < 8 || p->half % 8 || p->half > p->H / 2)
            return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache width %lld must be a multiple of 8 and at most head size / 2 = %lld",
                             (long long)p->half, (long long)(p->H / 2));
    }
    const si_tensor *pos = si_in(c, GQ_POS);
    if (pos) {
        if (pos->dtype != SI_I64) return si_op_err(c, SI_ERR_INVALID_ARG, "position_ids must be int64, got %s", si_dtype_name(pos->dtype));
        if (pos->ndim != 2 || pos->dims[0] != p->B || pos->dims[1] != p->S)
            return si_op_err(c, SI_ERR_INVALID_ARG, "position_ids must be [%lld, %lld]", (long long)p->B, (long long)p->S);
    }
    const si_tensor *sink = si_in(c, GQ_SINK);
    if (sink) {
        if ((st = si_check_type(c, sink->dtype, LLM_T_FLOAT, "head_sink"))) return st;
        if (si_count(sink) != p->N)
            return si_op_err(c, SI_ERR_INVALID_ARG, "head_sink must hold one value per head (%lld)", (long long)p->N);
    }
    /* total_sequence_length decides the mode and the present length */
    if (!tt->data) return need_tsl ? si_err(SI_ERR_UNSUPPORTED, "total_sequence_length is not known until run time") : SI_OK;
    p->tsl = si_load_i64(tt->dtype, tt->data, 0);
    if (p->tsl < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "total_sequence_length %lld must be positive", (long long)p->tsl);
    p->first_prompt = p->S == p->tsl;
    if (!p->first_prompt && p->S > 1 && p->B > 1)
        return si_op_err(c, SI_ERR_INVALID_ARG,
                         "a chunk of %lld tokens after a past (sequence length != total_sequence_length %lld) needs batch 1, got %lld",
                         (long long)p->S, (long long)p->tsl, (long long)p->B);
    if (p->S > p->tsl)
        return si_op_err(c, SI_ERR_INVALID_ARG, "sequence length %lld exceeds total_sequence_length %lld", (long long)p->S, (long long)p->tsl);
    p->Cout = SI_MAX(p->tsl, p->C);
    if (cs && p->max_pos < p->tsl)
        return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache has %lld rows, fewer than total_sequence_length %lld", (long long)p->max_pos,
                         (long long)p->tsl);
    const si_tensor *ab = si_in(c, GQ_BIAS);
    if (ab) {
        if ((st = si_same_type(c, q, ab, "attention_bias"))) return st;
        if (ab->ndim != 4 || (ab->dims[0] != 1 && ab->dims[0] != p->B) || (ab->dims[1] != 1 && ab->dims[1] != p->N) ||
            ab->dims[2] != p->S || ab->dims[3] != p->tsl)
            return si_op_err(c, SI_ERR_INVALID_ARG, "attention_bias must be [%lld or 1, %lld or 1, %lld, %lld]", (long long)p->B,
                             (long long)p->N, (long long)p->S, (long long)p->tsl);
        p->bias_b = ab->dims[0] != 1;
        p->bias_n = ab->dims[1] != 1;
    }
    return SI_OK;
}

si_result si_gqa_lengths(const si_kctx *c, const si_gqa *p, int64_t b, int64_t *past, int64_t *total) {
    const int64_t t = (int64_t)((const int32_t *)si_in(c, GQ_SEQLENS)->data)[b] + 1;
    *total = t;
    *past = p->first_prompt ? 0 : t - p->S;
    if (p->first_prompt ? (t < 1 || t > p->S) : (*past < 0 || *past > p->C || t > p->tsl))
        return si_op_err(c, SI_ERR_INVALID_ARG,
                         "seqlens_k[%lld] = %lld does not fit: %lld new tokens, past buffer %lld, total_sequence_length %lld",
                         (long long)b, (long long)(t - 1), (long long)p->S, (long long)p->C, (long long)p->tsl);
    return SI_OK;
}

si_result si_gqa_position(const si_kctx *c, const si_gqa *p, int64_t b, int64_t s, int64_t past, int64_t *pos) {
    const si_tensor *pt = si_in(c, GQ_POS);
    *pos = pt ? ((const int64_t *)pt->data)[b * p->S + s] : p->first_prompt ? s : past + s;
    if (*pos < 0 || *pos >= p->max_pos)
        return si_op_err(c, SI_ERR_INVALID_ARG, "rotary position %lld of token %lld (batch row %lld) is outside the %lld cache rows",
                         (long long)*pos, (long long)s, (long long)b, (long long)p->max_pos);
    return SI_OK;
}

/* Open dimensions: output [B, S, N * H] (H from the query's hidden size when known), present [B, Nkv, ?, H]
 * (its length depends on total_sequence_length's value), output_qk [B, N, S, ?]. */
static si_result gqa_infer_open(si_kctx *c) {
    const si_tensor *q = si_in(c, GQ_Q);
    const si_attr *an = si_node_attr(c->node, "num_heads"), *akv = si_node_attr(c->node, "kv_num_heads");
    if (!q || q->ndim != 3 || !an || !akv || an->i < 1 || akv->i < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "a 3-D query and attributes num_heads, kv_num_heads are required");
    const int64_t N = an->i, Nkv = akv->i, heads = si_in(c, GQ_K) ? N : N + 2 * Nkv, hid = q->dims[2];
    const int64_t H = si_dim_known(hid) ? hid / heads : SI_DIM_UNKNOWN;
    const int64_t B = q->dims[0], S = q->dims[1], NH = si_dim_known(H) ? N * H : SI_DIM_UNKNOWN;
    si_result st;
    if ((st = si_set_out(c, 0, q->dtype, 3, (int64_t[]){B, S, NH}))) return st;
    if ((st = si_set_out(c, 1, q->dtype, 4, (int64_t[]){B, Nkv, SI_DIM_UNKNOWN, H}))) return st;
    if ((st = si_set_out(c, 2, q->dtype, 4, (int64_t[]){B, Nkv, SI_DIM_UNKNOWN, H}))) return st;
    return si_set_out(c, 3, q->dtype, 4, (int64_t[]){B, N, S, SI_DIM_UNKNOWN});
}

static si_result gqa_infer(si_kctx *c) {
    if (llm_dims_open(c)) return gqa_infer_open(c);
    const bool need = si_out(c, 1) || si_out(c, 2) || si_out(c, 3);
    si_gqa p;
    si_result st = si_gqa_prepare(c, need, &p);
    if (st) return st;
    const si_dtype dt = si_in(c, GQ_Q)->dtype;
    if ((st = si_set_out(c, 0, dt, 3, (int64_t[]){p.B, p.S, p.N * p.H}))) return st;
    if ((st = si_set_out(c, 1, dt, 4, (int64_t[]){p.B, p.Nkv, p.Cout, p.H}))) return st;
    if ((st = si_set_out(c, 2, dt, 4, (int64_t[]){p.B, p.Nkv, p.Cout, p.H}))) return st;
    return si_set_out(c, 3, dt, 4, (int64_t[]){p.B, p.N, p.S, p.tsl});
}

typedef struct gqa_mask_ctx {
    const si_gqa *p;
    const int64_t *past;
    const float *bias;
} gqa_mask_ctx;

static void gqa_mask(const llm_attn *a, int64_t b, int64_t h, int64_t i, float *s, int64_t kv) {
    const gqa_mask_ctx *m = a->ctx;
    const si_gqa *p = m->p;
    const int64_t at = m->past[b] + i;
    const float *br = m->bias ? m->bias + (((p->bias_b ? b : 0) * (p->bias_n ? p->N : 1) + (p->bias_n ? h : 0)) * p->S + i) * p->tsl
                              : NULL;
    for (int64_t j = 0; j < kv; j++) {
        if ((p->causal && j > at) || (p->window > 0 && j <= at - p->window)) s[j] = -INFINITY;
        else if (br) s[j] += br[j];
    }
}

static si_result gqa_run(si_kctx *c) {
    si_gqa p;
    si_result st = si_gqa_prepare(c, true, &p);
    if (st) return st;
    const int64_t B = p.B, S = p.S, N = p.N, Nkv = p.Nkv, H = p.H, C = p.C, T = p.Cout;
    const int64_t qrow = si_in(c, GQ_Q)->dims[2], kvrow = Nkv * H;
    float *qf = si_tensor_to_f32(si_in(c, GQ_Q));
    float *kf = p.packed ? NULL : si_tensor_to_f32(si_in(c, GQ_K)), *vf = p.packed ? NULL : si_tensor_to_f32(si_in(c, GQ_V));
    float *pkf = C ? si_tensor_to_f32(si_in(c, GQ_PK)) : NULL, *pvf = C ? si_tensor_to_f32(si_in(c, GQ_PV)) : NULL;
    float *cs = p.half ? si_tensor_to_f32(si_in(c, GQ_COS)) : NULL, *sn = p.half ? si_tensor_to_f32(si_in(c, GQ_SIN)) : NULL;
    float *ab = si_in(c, GQ_BIAS) ? si_tensor_to_f32(si_in(c, GQ_BIAS)) : NULL;
    float *sink = si_in(c, GQ_SINK) ? si_tensor_to_f32(si_in(c, GQ_SINK)) : NULL;
    float *pres = si_calloc((size_t)(2 * B * Nkv * T * H + 1), sizeof(float));
    float *qr = si_malloc((size_t)(B * N * S * H + 1) * sizeof(float)), *out = si_calloc((size_t)(B * S * N * H + 1), sizeof(float));
    float *qk = si_out(c, 3) ? si_calloc((size_t)(B * N * S * p.tsl + 1), sizeof(float)) : NULL;
    int64_t *len = si_malloc((size_t)(2 * B + 1) * sizeof(int64_t));
    bool ok = qf && (p.packed || (kf && vf)) && (!C || (pkf && pvf)) && (!p.half || (cs && sn)) && (!si_in(c, GQ_BIAS) || ab) &&
              (!si_in(c, GQ_SINK) || sink) && pres && qr && out && (!si_out(c, 3) || qk) && len;
    if (!ok) st = si_op_nomem(c);
    float *pk = pres, *pv = pres + B * Nkv * T * H;
    int64_t *past = len, *total = len + B;
    for (int64_t b = 0; b < B && !st; b++) {
        if ((st = si_gqa_lengths(c, &p, b, &past[b], &total[b]))) break;
        for (int64_t g = 0; g < Nkv && past[b]; g++) {
            memcpy(pk + ((b * Nkv + g) * T) * H, pkf + ((b * Nkv + g) * C) * H, (size_t)(past[b] * H) * sizeof(float));
            memcpy(pv + ((b * Nkv + g) * T) * H, pvf + ((b * Nkv + g) * C) * H, (size_t)(past[b] * H) * sizeof(float));
        }
        if (past[b] + S > T) {
            st = si_op_err(c, SI_ERR_INVALID_ARG, "batch row %lld: %lld past + %lld new tokens exceed the present length %lld",
                           (long long)b, (long long)past[b], (long long)S, (long long)T);
            break;
        }
        for (int64_t s = 0; s < S; s++) {
            int64_t pos = 0;
            if (p.rotary && (st = si_gqa_position(c, &p, b, s, past[b], &pos))) break;
            const float *tok = qf + (b * S + s) * qrow;
            const float *kt = p.packed ? tok + N * H : kf + (b * S + s) * kvrow;
            const float *vt = p.packed ? tok + (N + Nkv) * H : vf + (b * S + s) * kvrow;
            for (int64_t h = 0; h < N; h++) {
                float *d = qr + ((b * N + h) * S + s) * H;
                memcpy(d, tok + h * H, (size_t)H * sizeof(float));
                if (p.rotary) si_rope(d, p.half, cs + pos * p.half, sn + pos * p.half, p.interleaved);
            }
            for (int64_t g = 0; g < Nkv; g++) {
                float *dk = pk + ((b * Nkv + g) * T + past[b] + s) * H, *dv = pv + ((b * Nkv + g) * T + past[b] + s) * H;
                memcpy(dk, kt + g * H, (size_t)H * sizeof(float));
                memcpy(dv, vt + g * H, (size_t)H * sizeof(float));
                if (p.rotary) si_rope(dk, p.half, cs + pos * p.half, sn + pos * p.half, p.interleaved);
            }
        }
    }
    if (!st) {
        gqa_mask_ctx mc = {&p, past, ab};
        llm_attn a = {
            .B = B, .N = N, .Nkv = Nkv, .S = S, .T = T, .H = H, .Hv = H,
            .q = qr, .k = pk, .v = pv, .out = out,
            .qs = {N * S * H, S * H, H}, .ks = {Nkv * T * H, T * H, H}, .vs = {Nkv * T * H, T * H, H}, .os = {S * N * H, H, N * H},
            .kv_len = total, .scale = p.scale, .softcap = p.softcap, .mask = gqa_mask, .ctx = &mc,
            .smooth = p.smooth, .sink = sink,
            .qk = qk, .qk_T = p.tsl, .qk_stage = p.qk_output == 1 ? LLM_QK_MASKED : LLM_QK_PROBS, .qk_fill = 0.0f,
            .qk_fill_masked = true, /* qk_output 1: the scores softmax sees, 0 where the masks removed a key */
        };
        if (!llm_attention(&a)) st = si_op_nomem(c);
    }
    if (!st) {
        if (si_out(c, 0)) si_tensor_from_f32(si_out(c, 0), out);
        if (si_out(c, 1)) si_tensor_from_f32(si_out(c, 1), pk);
        if (si_out(c, 2)) si_tensor_from_f32(si_out(c, 2), pv);
        if (si_out(c, 3)) si_tensor_from_f32(si_out(c, 3), qk);
    }
    SI_FREE_ALL(qf, kf, vf, pkf, pvf, cs, sn, ab, sink, pres, qr, out, qk, len);
    return st;
}

// --- RotaryEmbedding (com.microsoft and ONNX opset 23) -------------------------------------------------------------

/* The input seen as [B, S, N, H] with strides (in elements) per axis, and where its cos/sin rows come from. */
typedef struct rope_geo {
    int64_t B, S, N, H, st[4]; /* strides of batch, head, token */
    int64_t half;       /* rotated pairs: rotary dimension / 2 */
    bool interleaved;
} rope_geo;

/* com.microsoft: input [B, S, D] or [B, N, S, H]; position_ids int64 [B, S] or [1] (an offset); caches [rows, half]. */
static si_result ms_rope_prep(si_kctx *c, rope_geo *g) {
    si_result st;
    if ((st = si_inputs_typed(c, 4, 4, (const uint32_t[]){LLM_T_FLOAT, 0, SI_T_LIKE0, SI_T_LIKE0},
                              (const char *const[]){"input", "position_ids", "cos_cache", "sin_cache"})))
        return st;
    const si_tensor *x = si_in(c, 0), *pos = si_in(c, 1), *cs = si_in(c, 2), *sn = si_in(c, 3);
    if (pos->dtype != SI_I64) return si_op_err(c, SI_ERR_INVALID_ARG, "position_ids must be int64, got %s", si_dtype_name(pos->dtype));
    if (cs->ndim != 2 || sn->ndim != 2 || cs->dims[0] != sn->dims[0] || cs->dims[1] != sn->dims[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache and sin_cache must be 2-D of the same shape");
    if (si_attr_int(c->node, "is_packed_batching", 0) != 0)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "is_packed_batching is not supported");
    const int64_t nh = si_attr_int(c->node, "num_heads", 0), rdim = si_attr_int(c->node, "rotary_embedding_dim", 0);
    g->interleaved = si_attr_int(c->node, "interleaved", 0) != 0;
    if (nh < 0 || rdim < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "num_heads and rotary_embedding_dim must not be negative");
    if (rdim > 0 && nh == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "rotary_embedding_dim needs num_heads");
    const int64_t w = cs->dims[1];
    if (x->ndim == 3) {
        g->B = x->dims[0];
        g->S = x->dims[1];
        g->H = nh > 0 ? (x->dims[2] % nh ? -1 : x->dims[2] / nh) : 2 * w;
        if (g->H <= 0 || x->dims[2] % g->H)
            return si_op_err(c, SI_ERR_INVALID_ARG, "hidden size %lld does not split into heads of %s", (long long)x->dims[2],
                             nh > 0 ? "num_heads" : "2 x the cache width");
        g->N = x->dims[2] / g->H;
        g->st[0] = g->S * x->dims[2], g->st[1] = g->H, g->st[2] = x->dims[2], g->st[3] = 1;
    } else if (x->ndim == 4) {
        g->B = x->dims[0], g->N = x->dims[1], g->S = x->dims[2], g->H = x->dims[3];
        g->st[0] = g->N * g->S * g->H, g->st[1] = g->S * g->H, g->st[2] = g->H, g->st[3] = 1;
    } else {
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 3-D [batch, sequence, hidden] or 4-D [batch, heads, sequence, head], got rank %d",
                         x->ndim);
    }
    const int64_t r = rdim > 0 ? rdim : g->H;
    if (r > g->H || r % 2 || w != r / 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache width %lld must be %s / 2 = %lld", (long long)w,
                         rdim > 0 ? "rotary_embedding_dim" : "the head size", (long long)(r / 2));
    g->half = w;
    const bool ok = (pos->ndim == 2 && pos->dims[0] == g->B && pos->dims[1] == g->S) || si_count(pos) == 1;
    if (!ok) return si_op_err(c, SI_ERR_INVALID_ARG, "position_ids must be [%lld, %lld] or hold one offset", (long long)g->B, (long long)g->S);
    return SI_OK;
}

/* ONNX: X [B, N, S, H] or [B, S, D] (num_heads); caches [rows, half] with position_ids, else [B, S, half]. */
static si_result onnx_rope_prep(si_kctx *c, rope_geo *g) {
    si_result st;
    if ((st = si_inputs_typed(c, 3, 3, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T_LIKE0},
                              (const char *const[]){"X", "cos_cache", "sin_cache"})))
        return st;
    const si_tensor *x = si_in(c, 0), *cs = si_in(c, 1), *sn = si_in(c, 2), *pos = si_in(c, 3);
    const int64_t nh = si_attr_int(c->node, "num_heads", 0), rdim = si_attr_int(c->node, "rotary_embedding_dim", 0);
    g->interleaved = si_attr_int(c->node, "interleaved", 0) != 0;
    if (x->ndim == 4) {
        g->B = x->dims[0], g->N = x->dims[1], g->S = x->dims[2], g->H = x->dims[3];
        g->st[0] = g->N * g->S * g->H, g->st[1] = g->S * g->H, g->st[2] = g->H, g->st[3] = 1;
    } else if (x->ndim == 3) {
        if (nh < 1 || x->dims[2] % nh)
            return si_op_err(c, SI_ERR_INVALID_ARG, "a 3-D input needs num_heads dividing its hidden size %lld", (long long)x->dims[2]);
        g->B = x->dims[0], g->S = x->dims[1], g->N = nh, g->H = x->dims[2] / nh;
        g->st[0] = g->S * x->dims[2], g->st[1] = g->H, g->st[2] = x->dims[2], g->st[3] = 1;
    } else {
        return si_op_err(c, SI_ERR_INVALID_ARG, "X must be 3-D or 4-D, got rank %d", x->ndim);
    }
    const int64_t r = rdim > 0 ? rdim : g->H;
    if (r > g->H || r % 2) return si_op_err(c, SI_ERR_INVALID_ARG, "rotary_embedding_dim %lld must be even and at most %lld", (long long)r, (long long)g->H);
    g->half = r / 2;
    if (pos) {
        if (!si_dtype_is_int(pos->dtype)) return si_op_err(c, SI_ERR_INVALID_ARG, "position_ids must be an integer tensor");
        if (pos->ndim != 2 || pos->dims[0] != g->B || pos->dims[1] != g->S)
            return si_op_err(c, SI_ERR_INVALID_ARG, "position_ids must be [%lld, %lld]", (long long)g->B, (long long)g->S);
        if (cs->ndim != 2 || cs->dims[1] != g->half)
            return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache must be [rows, %lld] with position_ids", (long long)g->half);
    } else if (cs->ndim != 3 || cs->dims[0] != g->B || cs->dims[1] != g->S || cs->dims[2] != g->half) {
        return si_op_err(c, SI_ERR_INVALID_ARG, "cos_cache must be [%lld, %lld, %lld] without position_ids", (long long)g->B,
                         (long long)g->S, (long long)g->half);
    }
    if (sn->ndim != cs->ndim || memcmp(sn->dims, cs->dims, sizeof(int64_t) * (size_t)cs->ndim))
        return si_op_err(c, SI_ERR_INVALID_ARG, "sin_cache must have the shape of cos_cache");
    return SI_OK;
}

/* Rotate every head of every token: the cache row of token (b, s) is row_of(b, s) (-1: out of range). */
static si_result rope_apply(si_kctx *c, const rope_geo *g, const si_tensor *pos, int cos_in, bool onnx) {
    const si_tensor *x = si_in(c, 0), *ct = si_in(c, cos_in);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    float *xf = si_tensor_to_f32(x), *cs = si_tensor_to_f32(ct), *sn = si_tensor_to_f32(si_in(c, cos_in + 1));
    si_result st = xf && cs && sn ? SI_OK : si_op_nomem(c);
    const int64_t rows = ct->ndim == 2 ? ct->dims[0] : -1;
    for (int64_t b = 0; b < g->B && !st; b++)
        for (int64_t s = 0; s < g->S && !st; s++) {
            int64_t row;
            if (!pos) row = b * g->S + s; /* ONNX without position_ids: caches [B, S, half] */
            else if (si_count(pos) == 1 && !onnx) row = si_load_i64(pos->dtype, pos->data, 0) + s;
            else row = si_load_i64(pos->dtype, pos->data, b * g->S + s);
            if (pos && (row < 0 || row >= rows)) {
                st = si_op_err(c, SI_ERR_INVALID_ARG, "position %lld of token (%lld, %lld) is outside the %lld cache rows", (long long)row,
                               (long long)b, (long long)s, (long long)rows);
                break;
            }
            for (int64_t h = 0; h < g->N; h++)
                si_rope(xf + b * g->st[0] + h * g->st[1] + s * g->st[2], g->half, cs + row * g->half, sn + row * g->half, g->interleaved);
        }
    if (!st) si_tensor_from_f32(y, xf);
    si_free(xf), si_free(cs), si_free(sn);
    return st;
}

/* RotaryEmbedding of either domain: the geometry, then (run) the rotation with that form's inputs. */
static si_result rope_prep(si_kctx *c, rope_geo *g) {
    return si_node_is(c->node, SI_OP_ROTARY_EMBEDDING) ? onnx_rope_prep(c, g) : ms_rope_prep(c, g);
}
static si_result rope_infer(si_kctx *c) {
    if (llm_dims_open(c)) return si_same_as_input(c, 0, 0);
    rope_geo g;
    si_result st = rope_prep(c, &g);
    return st ? st : si_same_as_input(c, 0, 0);
}
SI_OP_PLANNED(rope_run, rope_geo, g, rope_prep) {
    /* ONNX: the caches are inputs 1, 2 and position_ids input 3; com.microsoft: position_ids 1, the caches 2, 3 */
    const bool onnx = si_node_is(c->node, SI_OP_ROTARY_EMBEDDING);
    return rope_apply(c, g, si_in(c, onnx ? 3 : 1), onnx ? 1 : 2, onnx);
}

static const si_op_def defs[] = {
    SI_OP_DEF(GROUP_QUERY_ATTENTION, LLM_T_FLOAT, gqa_infer, gqa_run),
    SI_OP_DEF(MS_ROTARY_EMBEDDING, LLM_T_FLOAT, rope_infer, rope_run),
    SI_OP_DEF(ROTARY_EMBEDDING, SI_T_FLOATS, rope_infer, rope_run),
};

SI_OP_FAMILY_PARTIAL(gqa, defs);
