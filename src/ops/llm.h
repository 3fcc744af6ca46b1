/*
 * llm.h — what the LLM op families share (nbits.c, gqa.c, attention.c, llm_norm.c, moe.c), and what the CPU
 * device's fast kernels borrow from them: each op's parameter parsing and validation (so that the reference
 * kernel and a fast kernel read a node the same way and reject the same inputs with the same message), the
 * rotary embedding, and the reference attention loop.
 *
 * Semantics are ONNX Runtime's (com.microsoft contrib ops as ORT 1.30's CPU kernels compute them; see
 * ../shared/LLM-OPS-NOTES.md). Reference kernels compute in float32 (float16/bfloat16 inputs are widened, the
 * outputs rounded once at the end), like ORT's CPU kernels.
 */
#ifndef SI_OPS_LLM_H
#define SI_OPS_LLM_H

#include "ops/ops.h"

#include <math.h>

#define LLM_T_FLOAT (SI_T(SI_F32) | SI_T(SI_F16) | SI_T(SI_BF16))

// --- MatMulNBits (nbits.c) ------------------------------------------------------------------------------------

/* Y[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]), W stored as `bits`-bit codes in blocks of `block` along k:
 * W[n, k] = (q[n, k] - zp[n, k / block]) * scale[n, k / block]. */
typedef struct si_nbits {
    int64_t M, K, N;     /* M: rows of A (the product of its leading dimensions) */
    int bits, block;     /* 2, 4 or 8; block_size (a power of two >= 16) */
    int pshift;          /* log2 of the codes per byte (8 / bits): 2, 1, 0 */
    int64_t nb, blob;    /* blocks per row of W (ceil(K / block)), bytes per block (block * bits / 8) */
    int64_t zrow;        /* bytes per row of packed zero points: ceil(nb * bits / 8) */
    enum { NB_ZP_NONE, NB_ZP_PACKED, NB_ZP_FLOAT } zp;
    bool bias;
} si_nbits;

/* Attributes and input shapes of a MatMulNBits node (inputs as descriptors, data not needed). */
si_result si_nbits_prepare(const si_kctx *c, si_nbits *p);

/* A block_size MatMulNBits takes: a power of two from 16 to 2^20. */
static inline bool si_nbits_block_ok(int64_t block) { return block >= 16 && block <= (1 << 20) && !(block & (block - 1)); }

/* p->pshift, nb, blob and zrow from p->K, p->bits and p->block. */
static inline void si_nbits_layout(si_nbits *p) {
    p->pshift = p->bits == 2 ? 2 : p->bits == 4 ? 1 : 0;
    p->nb = (p->K + p->block - 1) / p->block;
    p->blob = (int64_t)p->block * p->bits / 8;
    p->zrow = (p->nb * p->bits + 7) / 8;
}

/* Code i of bits-bit codes packed 8 / bits to a byte, the first in the low bits (MatMulNBits' and QMoE's packing). */
static inline int si_packed_code(const uint8_t *p, int bits, int64_t i) {
    const int per = 8 / bits;
    return (p[i / per] >> (bits * (int)(i % per))) & ((1 << bits) - 1);
}
/* The zero point of block blk of row n (2^(bits-1) without zero points); zpf: the float zero points. */
/* Compile-time inference (c->partial) with some input dimension not known: the families of llm.h then set
 * only the output types and the dimensions that follow from the known ones, and leave their checks to run time
 * (the partial contract, ops.h); with every dimension known they infer as at run time. */
static inline bool llm_dims_open(const si_kctx *c) {
    if (!c->partial) return false;
    for (int k = 0; k < c->n_in; k++) {
        const si_tensor *t = c->in[k];
        if (t && !si_dims_known(t->ndim, t->dims)) return true;
    }
    return false;
}

static inline float si_nbits_zero(const si_nbits *p, const uint8_t *zp8, const float *zpf, int64_t n, int64_t blk) {
    if (p->zp == NB_ZP_FLOAT) return zpf[n * p->nb + blk];
    if (p->zp == NB_ZP_NONE) return (float)(1 << (p->bits - 1));
    const int64_t at = blk >> p->pshift, slot = blk & ((1 << p->pshift) - 1);
    return (float)((zp8[n * p->zrow + at] >> (slot * p->bits)) & ((1 << p->bits) - 1));
}

// --- rotary embedding -------------------------------------------------------------------------------------------

/* Rotate x[0..2*half) in place by the angles of one cache row (cos[m], sin[m], m < half): rotate-half pairs
 * (m, m + half), or adjacent pairs (2m, 2m + 1) when interleaved. */
static inline void si_rope(float *x, int64_t half, const float *cs, const float *sn, bool interleaved) {
    for (int64_t m = 0; m < half; m++) {
        const int64_t i0 = interleaved ? 2 * m : m, i1 = interleaved ? 2 * m + 1 : m + half;
        const float a = x[i0], b = x[i1];
        x[i0] = a * cs[m] - b * sn[m];
        x[i1] = b * cs[m] + a * sn[m];
    }
}

// --- GroupQueryAttention (gqa.c) -------------------------------------------------------------------------------

typedef struct si_gqa {
    int64_t B, S, N, Nkv, H;
    bool packed;          /* query holds Q, K and V (no key/value inputs) */
    int64_t C;            /* past buffer length (0 without past) */
    int64_t tsl;          /* total_sequence_length (-1 while its value is not known) */
    int64_t Cout;         /* present length: max(tsl, C) */
    int64_t half;         /* cos/sin cache width (rotary dimension / 2), 0 without caches */
    int64_t max_pos;      /* cos/sin cache rows */
    bool rotary, interleaved, causal, smooth, first_prompt;
    int64_t window;       /* local_window_size: keys kept per query (<= 0: no window) */
    float scale, softcap;
    int qk_output;        /* 0 none, 1 scores, 2 probabilities */
    bool bias_b, bias_n;  /* attention_bias has a batch / head dimension of its own (else broadcast) */
} si_gqa;

/* Attributes and input shapes of a GroupQueryAttention node. need_tsl: the value of total_sequence_length
 * is needed (SI_ERR_UNSUPPORTED while it is not known: shape inference leaves the outputs to run time); without it tsl and Cout are -1. */
si_result si_gqa_prepare(const si_kctx *c, bool need_tsl, si_gqa *p);
/* Row b's lengths from seqlens_k (checked against the buffers): *past valid past tokens, *total keys. */
si_result si_gqa_lengths(const si_kctx *c, const si_gqa *p, int64_t b, int64_t *past, int64_t *total);
/* The rotary position of new token s of row b (past: the row's valid past length); -1 after an error. */
si_result si_gqa_position(const si_kctx *c, const si_gqa *p, int64_t b, int64_t s, int64_t past, int64_t *pos);

// --- MultiHeadAttention (attention.c) --------------------------------------------------------------------------

enum { MHA_Q, MHA_K, MHA_V, MHA_BIAS, MHA_MASK, MHA_ABIAS, MHA_PK, MHA_PV, MHA_PSL, MHA_CACHE };
/* forms of key_padding_mask (and of Attention's mask_index): none, valid lengths [B], end and start positions
 * [2B], [B, T] and [B, S, T] with 0 for a masked key (mask_filter_value added to its score) */
enum { MK_NONE, MK_LEN, MK_END_START, MK_2D, MK_3D };

typedef struct si_mha {
    int64_t B, S, L, N, H, Hv, P, T; /* L new keys after P past ones: T in all */
    bool cross;                      /* key/value given as [B, N, L, H] (used as they are) */
    int mask;                        /* MK_* */
} si_mha;
si_result si_mha_prepare(const si_kctx *c, si_mha *p);

// --- Attention (com.microsoft; attention.c) ----------------------------------------------------------------------

enum { AT_X, AT_W, AT_BIAS, AT_MASK, AT_PAST, AT_ABIAS, AT_PSL };

typedef struct si_msattn {
    int64_t B, S, Din, N, Dq, Dk, Dv, P, T; /* Dq, Dk, Dv: the projection's Q, K, V widths; P past, T = P + S keys */
    int mask;                              /* MK_* */
} si_msattn;
si_result si_msattn_prepare(const si_kctx *c, si_msattn *p);

// --- the reference attention loop (attention.c) -----------------------------------------------------------------

/* Scores and softmax stage recorded in an optional qk output. */
enum { LLM_QK_NONE, LLM_QK_RAW, LLM_QK_CAPPED, LLM_QK_MASKED, LLM_QK_PROBS };

typedef struct llm_attn llm_attn;
/* Adjusts the scores s[0..kv) of query row i of head h in batch row b in place: adds biases, sets keys that do
 * not take part to -INFINITY (or to a large negative value, as the op defines). */
typedef void (*llm_mask_fn)(const llm_attn *a, int64_t b, int64_t h, int64_t i, float *s, int64_t kv);

struct llm_attn {
    int64_t B, N, Nkv, S, T, H, Hv; /* query head h reads KV head h / (N / Nkv) */
    /* element d of (b, head, row) sits at base[b*st[0] + head*st[1] + row*st[2] + d] */
    const float *q, *k, *v;
    float *out;
    int64_t qs[3], ks[3], vs[3], os[3];
    const int64_t *kv_len;  /* keys per batch row (NULL: T) */
    float scale, softcap;   /* s = scale * q.k, then softcap * tanh(s / softcap) when softcap > 0 */
    llm_mask_fn mask;       /* then the op's masks and biases (NULL: none) */
    const void *ctx;        /* for mask */
    bool smooth;            /* the softmax has an extra logit 0 ... */
    const float *sink;      /* ... or sink[h] (per head) */
    float *qk;              /* optional [B, N, S, qk_T] output of stage qk_stage */
    int64_t qk_T;
    int qk_stage;
    float qk_fill;          /* qk entries past a row's keys ... */
    bool qk_fill_masked;    /* ... and, when set, those its masks removed (-INFINITY) */
};

/* Runs the attention described by a; false when out of memory. */
bool llm_attention(const llm_attn *a);

// --- MoE (moe.c) ------------------------------------------------------------------------------------------------

enum { MOE_RELU, MOE_GELU, MOE_SILU, MOE_IDENTITY, MOE_SWIGLU };

typedef struct si_moe {
    int64_t T, hidden, E, F, k; /* F: the inner size (fc1 gives 2F values with SwiGLU) */
    int act;
    bool normalize;
    float alpha, beta, limit;
} si_moe;
/* Validates a MoE node (fc1 [E, f F, hidden], fc2 [E, hidden, F], f = 2 with SwiGLU), fills p. */
si_result si_moe_prepare(const si_kctx *c, si_moe *p);
/* The routing of one token: prob[E] = softmax(logits[E]), sel[k] = the k most probable experts (the lower index first
 * among equal probabilities). Returns the sum of their probabilities (the weights' divisor when p->normalize). */
double si_moe_route(const si_moe *p, const float *logits, float *prob, int64_t *sel);

/* The activation of one token's fc1 output (fF values at in) into F values at out (out <= in: in place or
 * compacting rows; SwiGLU: interleaved gate and linear values, clipped to swiglu_limit). */
void si_moe_act_rows(const si_moe *p, const float *in, float *out);

/* QMoE: a MoE whose expert weights are packed 2/4/8-bit codes (moe.c). */
typedef struct si_qmoe {
    si_moe p;      /* p.normalize is what the attribute says; the weights are renormalised regardless (moe.c) */
    int bits;      /* 2, 4, 8 */
    int64_t block; /* 0: a scale (and zero point) per output row */
} si_qmoe;
/* Validates a QMoE node (fc1 [E, fF, hidden / per], fc2 [E, hidden, F / per] uint8, per = 8 / bits), fills q. */
si_result si_qmoe_prepare(const si_kctx *c, si_qmoe *q);
/* Expert e's zero points per row (zp: [E, ceil(rows / per)] packed along the rows) as rows floats in out. */
void si_qmoe_row_zero_points(const uint8_t *zp, int bits, int64_t rows, int64_t e, float *out);

/* The non-gated activations (relu, gelu as ORT's CPU kernel: the tanh approximation, silu, identity). */
static inline float si_moe_act(int act, float v) {
    switch (act) {
    case MOE_RELU: return v > 0 ? v : 0.0f;
    case MOE_GELU: return (float)(0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * (double)v * v * v))));
    case MOE_SILU: return v / (1.0f + expf(-v));
    default: return v;
    }
}

// --- norms (llm_norm.c) ---------------------------------------------------------------------------------------

/* SkipLayerNormalization / SkipSimplifiedLayerNormalization: input [..., H], skip broadcastable over the rows. */
typedef struct si_skipnorm {
    int64_t rows, H, skip_rows; /* skip_rows: rows of skip, repeated over the input's rows */
    int beta, bias;             /* input indices of beta and bias (-1 absent) */
    float eps;
} si_skipnorm;
si_result si_skipnorm_prepare(const si_kctx *c, bool simplified, si_skipnorm *p);

#endif
