/*
 * cpu_llm_attn.c — GroupQueryAttention and MultiHeadAttention on the CPU device (float32, no qk output).
 *
 * One fused loop per (batch row, KV head, query row): the query heads that share the KV head walk the row's keys
 * in blocks of 64: the scores of a block (q.k, one read of each key for all the heads), softcap and the op's
 * biases, then an online softmax (running max and denominator per head, the accumulated output rescaled once per
 * block) and the values added in (one read of each value row). Nothing of size [S, T] is formed, so decode over
 * a long cache streams K and V once. Work is split over (batch, KV head, query row) tasks on the plan's threads.
 *
 * Semantics are the reference kernels' (ops/gqa.c, ops/attention.c); the caches, rotary embedding and the
 * validation come from the same prepare functions (ops/llm.h).
 */
#include "device/cpu/cpu_llm.h"

#include <float.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ATT_X86 1
#endif

#define ATT_BLK 64

typedef struct cpu_attn cpu_attn;
struct cpu_attn {
    int64_t B, N, Nkv, S, H, Hv;
    const float *q, *k, *v; /* element d of (b, head, row) at base[b*st[0] + head*st[1] + row*st[2] + d] */
    float *out;
    int64_t qs[3], ks[3], vs[3], os[3];
    float scale, softcap;
    const float *sink; /* per head extra softmax logit, or NULL */
    bool smooth;       /* extra logit 0 */
    /* keys [*lo, *hi) of query row i of batch row b */
    void (*range)(const cpu_attn *a, int64_t b, int64_t i, int64_t *lo, int64_t *hi);
    /* adds biases / masks to the scores s[0..n) of keys j0.. (NULL: none) */
    void (*adjust)(const cpu_attn *a, int64_t b, int64_t h, int64_t i, int64_t j0, float *s, int64_t n);
    const void *ctx;
    atomic_bool nomem;
    const float *kt;   /* blocked path: K transposed per 64-key block, [B][Nkv][ktb][H][64], or NULL */
    int64_t ktb;       /* blocks of 64 keys per (b, KV head) in kt */
    const void *key;   /* the scratch pool of the calling request (cpu_scratch_take_key) */
    const struct att_isa *isa; /* blocked path: its vector pieces */
};

static void attn_tasks(void *ctx, int64_t lo, int64_t hi) {
    cpu_attn *a = ctx;
    const cpu_vec *v = cpu_vec_get();
    const int64_t G = a->N / a->Nkv, H = a->H, Hv = a->Hv;
    cpu_arena *hold;
    float *buf = cpu_scratch_take_key(a->key, (size_t)(G * (ATT_BLK + Hv + 2)) * sizeof(float), &hold);
    if (!buf) {
        atomic_store(&a->nomem, true);
        return;
    }
    float *sc = buf, *acc = buf + G * ATT_BLK, *m = acc + G * Hv, *l = m + G;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t b = t / (a->Nkv * a->S), g = (t / a->S) % a->Nkv, i = t % a->S;
        int64_t j0 = 0, j1 = 0;
        a->range(a, b, i, &j0, &j1);
        const bool extra = a->sink || a->smooth;
        for (int64_t hh = 0; hh < G; hh++) {
            m[hh] = extra ? (a->sink ? a->sink[g * G + hh] : 0.0f) : -INFINITY;
            l[hh] = extra ? 1.0f : 0.0f;
            memset(acc + hh * Hv, 0, (size_t)Hv * sizeof(float));
        }
        const float *kb = a->k + b * a->ks[0] + g * a->ks[1], *vb = a->v + b * a->vs[0] + g * a->vs[1];
        for (int64_t js = j0; js < j1; js += ATT_BLK) {
            const int64_t n = SI_MIN((int64_t)ATT_BLK, j1 - js);
            for (int64_t jj = 0; jj < n; jj++) {
                const float *k = kb + (js + jj) * a->ks[2];
                for (int64_t hh = 0; hh < G; hh++)
                    sc[hh * ATT_BLK + jj] = a->scale * v->dot(a->q + b * a->qs[0] + (g * G + hh) * a->qs[1] + i * a->qs[2], k, H);
            }
            for (int64_t hh = 0; hh < G; hh++) {
                float *s = sc + hh * ATT_BLK;
                if (a->softcap > 0)
                    for (int64_t jj = 0; jj < n; jj++) s[jj] = a->softcap * tanhf(s[jj] / a->softcap);
                if (a->adjust) a->adjust(a, b, g * G + hh, i, js, s, n);
                float mb = -INFINITY;
                for (int64_t jj = 0; jj < n; jj++) mb = s[jj] > mb ? s[jj] : mb;
                if (mb == -INFINITY) { /* every key of the block masked */
                    for (int64_t jj = 0; jj < n; jj++) s[jj] = 0;
                    continue;
                }
                const float mn = mb > m[hh] ? mb : m[hh];
                if (mn != m[hh]) {
                    const float corr = m[hh] == -INFINITY ? 0.0f : expf(m[hh] - mn);
                    v->scal(acc + hh * Hv, corr, Hv);
                    l[hh] *= corr;
                    m[hh] = mn;
                }
                float sum = 0;
                for (int64_t jj = 0; jj < n; jj++) sum += s[jj] = expf(s[jj] - mn);
                l[hh] += sum;
            }
            for (int64_t jj = 0; jj < n; jj++) {
                const float *vr = vb + (js + jj) * a->vs[2];
                for (int64_t hh = 0; hh < G; hh++)
                    if (sc[hh * ATT_BLK + jj] != 0.0f) v->axpy(acc + hh * Hv, sc[hh * ATT_BLK + jj], vr, Hv);
            }
        }
        for (int64_t hh = 0; hh < G; hh++) {
            float *o = a->out + b * a->os[0] + (g * G + hh) * a->os[1] + i * a->os[2];
            const float inv = l[hh] > 0 ? 1.0f / l[hh] : 0.0f;
            for (int64_t e = 0; e < Hv; e++) o[e] = acc[hh * Hv + e] * inv;
        }
    }
    cpu_arena_give(hold);
}

#ifdef ATT_X86
// --- many query rows (AVX-512 or AVX2): blocks of queries against blocks of keys ----------------------------------------------

#define ATT_QV 32 /* query vectors (rows x heads of a KV group) per task, at most */

/* s[r][0..64) = q_r . kt[.][0..64) for MR query vectors (kt: the key block transposed, [H][64]). */
__attribute__((always_inline, target("avx512f"))) static inline void scores_body(const float *const *q, const float *kt, int64_t H, float *s,
                                                                              const int MR) {
    __m512 acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t d = 0; d < H; d++) {
        const float *kd = kt + d * ATT_BLK;
        const __m512 k0 = _mm512_loadu_ps(kd), k1 = _mm512_loadu_ps(kd + 16), k2 = _mm512_loadu_ps(kd + 32), k3 = _mm512_loadu_ps(kd + 48);
        for (int r = 0; r < MR; r++) {
            const __m512 qv = _mm512_set1_ps(q[r][d]);
            acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(s + r * ATT_BLK + c * 16, acc[r][c]);
}

__attribute__((target("avx512f"))) static void scores(const float *const *q, const float *kt, int64_t H, float *s, int mr) {
    switch (mr) {
    case 1: scores_body(q, kt, H, s, 1); break;
    case 2: scores_body(q, kt, H, s, 2); break;
    case 3: scores_body(q, kt, H, s, 3); break;
    default: scores_body(q, kt, H, s, 4); break;
    }
}

/* o_r[0..16 NV) += sum_j p_r[j] v_j[0..16 NV) for QR query vectors, n values (rows of v, stride vst). */
__attribute__((always_inline, target("avx512f"))) static inline void pv_body(float *const *o, const float *const *pr, const float *v, int64_t vst,
                                                                          int64_t n, const int QR, const int NV) {
    __m512 acc[2][8];
    for (int r = 0; r < QR; r++)
        for (int c = 0; c < NV; c++) acc[r][c] = _mm512_loadu_ps(o[r] + 16 * c);
    for (int64_t j = 0; j < n; j++) {
        const float *vj = v + j * vst;
        __m512 vv[8];
        for (int c = 0; c < NV; c++) vv[c] = _mm512_loadu_ps(vj + 16 * c);
        for (int r = 0; r < QR; r++) {
            const __m512 pj = _mm512_set1_ps(pr[r][j]);
            for (int c = 0; c < NV; c++) acc[r][c] = _mm512_fmadd_ps(pj, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < QR; r++)
        for (int c = 0; c < NV; c++) _mm512_storeu_ps(o[r] + 16 * c, acc[r][c]);
}

#define PV_CASES(QR)                                                                                                              \
    switch (nv) {                                                                                                                 \
    case 1: pv_body(o, pr, v, vst, n, QR, 1); break;                                                                              \
    case 2: pv_body(o, pr, v, vst, n, QR, 2); break;                                                                              \
    case 3: pv_body(o, pr, v, vst, n, QR, 3); break;                                                                              \
    case 4: pv_body(o, pr, v, vst, n, QR, 4); break;                                                                              \
    case 5: pv_body(o, pr, v, vst, n, QR, 5); break;                                                                              \
    case 6: pv_body(o, pr, v, vst, n, QR, 6); break;                                                                              \
    case 7: pv_body(o, pr, v, vst, n, QR, 7); break;                                                                              \
    default: pv_body(o, pr, v, vst, n, QR, 8); break;                                                                             \
    }

__attribute__((target("avx512f"))) static void pv(float *const *o, const float *const *pr, const float *v, int64_t vst, int64_t n, int qr, int nv) {
    if (qr == 2) PV_CASES(2)
    else PV_CASES(1)
}

/* kt[d][jj] = k_jj[d] for n keys (rows of k, stride kst), zero for jj in [n, 64). */
static void kt_block(const float *k, int64_t kst, int64_t n, int64_t H, float *kt) {
    for (int64_t jj = 0; jj < ATT_BLK; jj++) {
        if (jj < n)
            for (int64_t d = 0; d < H; d++) kt[d * ATT_BLK + jj] = k[jj * kst + d];
        else
            for (int64_t d = 0; d < H; d++) kt[d * ATT_BLK + jj] = 0.0f;
    }
}

typedef struct kt_job {
    cpu_attn *a;
    float *kt;
    const int64_t *keys; /* keys of batch row b: kt holds blocks of [0, keys[b]) */
} kt_job;

/* Tasks (b, g, block): a->kt's block. */
static void kt_tasks(void *ctx, int64_t lo, int64_t hi) {
    const kt_job *j = ctx;
    const cpu_attn *a = j->a;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t blk = t % a->ktb, bg = t / a->ktb, b = bg / a->Nkv, g = bg % a->Nkv, js = blk * ATT_BLK;
        const int64_t n = SI_MAX((int64_t)0, SI_MIN((int64_t)ATT_BLK, j->keys[b] - js));
        kt_block(a->k + b * a->ks[0] + g * a->ks[1] + js * a->ks[2], a->ks[2], n, a->H, j->kt + t * a->H * ATT_BLK);
    }
}

/* The vector pieces of the blocked path for one instruction set. */
typedef struct att_isa {
    void (*scores)(const float *const *q, const float *kt, int64_t H, float *s, int mr); /* mr <= score_rows */
    /* keys outside [vlo, vhi) of a 64-key block of scores: -inf; the others times scale unless scaled; the max */
    float (*mask_max)(float *s, int64_t vlo, int64_t vhi, float scale, bool scaled);
    float (*exp_sum)(float *s, float mn); /* s = exp(s - mn) over the block, their sum */
    void (*pv)(float *const *o, const float *const *pr, const float *v, int64_t vst, int64_t n, int qr, int nv);
    int pv_cols, lanes, pv_rows; /* columns of o per pv call (nv vectors of lanes floats), query vectors (qr) at most */
    int score_rows;              /* query vectors per scores call at most */
} att_isa;

__attribute__((target("avx512f"))) static float mask_max512(float *s, int64_t vlo, int64_t vhi, float scale, bool scaled) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512 mxv = _mm512_set1_ps(-INFINITY);
    for (int c = 0; c < ATT_BLK; c += 16) {
        const __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32(c));
        const __mmask16 ok = _mm512_cmp_epi32_mask(idx, _mm512_set1_epi32((int)vlo), _MM_CMPINT_NLT) &
                             _mm512_cmp_epi32_mask(idx, _mm512_set1_epi32((int)vhi), _MM_CMPINT_LT);
        __m512 v = _mm512_loadu_ps(s + c);
        if (!scaled) v = _mm512_mul_ps(v, _mm512_set1_ps(scale));
        v = _mm512_mask_blend_ps(ok, _mm512_set1_ps(-INFINITY), v);
        _mm512_storeu_ps(s + c, v);
        mxv = _mm512_max_ps(mxv, v);
    }
    return _mm512_reduce_max_ps(mxv);
}

__attribute__((target("avx512f"))) static float exp_sum512(float *s, float mn) {
    const __m512 mv = _mm512_set1_ps(mn);
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < ATT_BLK; c += 16) {
        const __m512 e = cpu_exp512(_mm512_sub_ps(_mm512_loadu_ps(s + c), mv));
        _mm512_storeu_ps(s + c, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static const att_isa att_avx512 = {scores, mask_max512, exp_sum512, pv, 128, 16, 2, 4};

// --- the same pieces in 8 lanes (AVX2 + FMA); named accumulators (GCC keeps arrays of them in memory) ---------------

/* s[r][0..64) = q_r . kt[.][0..64) for MR <= 6 query vectors, 16 keys at a time (each load of K serves six). */
#define SC_ROW(r, A0, A1)                                                                                                 \
    if (MR > r) {                                                                                                         \
        const __m256 qv = _mm256_broadcast_ss(q[r] + d);                                                                  \
        A0 = _mm256_fmadd_ps(qv, k0, A0);                                                                                 \
        A1 = _mm256_fmadd_ps(qv, k1, A1);                                                                                 \
    }
#define SC_OUT(r, A0, A1)                                                                                                 \
    if (MR > r) _mm256_storeu_ps(s + r * ATT_BLK + c, A0), _mm256_storeu_ps(s + r * ATT_BLK + c + 8, A1);
__attribute__((always_inline, target("avx2,fma"))) static inline void scores256_body(const float *const *q, const float *kt, int64_t H, float *s,
                                                                                  const int MR) {
    for (int c = 0; c < ATT_BLK; c += 16) {
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00, a40 = a00,
               a41 = a00, a50 = a00, a51 = a00;
        for (int64_t d = 0; d < H; d++) {
            const __m256 k0 = _mm256_loadu_ps(kt + d * ATT_BLK + c), k1 = _mm256_loadu_ps(kt + d * ATT_BLK + c + 8);
            SC_ROW(0, a00, a01)
            SC_ROW(1, a10, a11)
            SC_ROW(2, a20, a21)
            SC_ROW(3, a30, a31)
            SC_ROW(4, a40, a41)
            SC_ROW(5, a50, a51)
        }
        SC_OUT(0, a00, a01)
        SC_OUT(1, a10, a11)
        SC_OUT(2, a20, a21)
        SC_OUT(3, a30, a31)
        SC_OUT(4, a40, a41)
        SC_OUT(5, a50, a51)
    }
}
#undef SC_ROW
#undef SC_OUT

__attribute__((noinline, target("avx2,fma"))) static void scores256(const float *const *q, const float *kt, int64_t H, float *s, int mr) {
    switch (mr) {
    case 1: scores256_body(q, kt, H, s, 1); break;
    case 2: scores256_body(q, kt, H, s, 2); break;
    case 3: scores256_body(q, kt, H, s, 3); break;
    case 4: scores256_body(q, kt, H, s, 4); break;
    case 5: scores256_body(q, kt, H, s, 5); break;
    default: scores256_body(q, kt, H, s, 6); break;
    }
}

__attribute__((target("avx2,fma"))) static float mask_max256(float *s, int64_t vlo, int64_t vhi, float scale, bool scaled) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mxv = ninf;
    for (int c = 0; c < ATT_BLK; c += 8) {
        const __m256i idx = _mm256_add_epi32(iota, _mm256_set1_epi32(c));
        const __m256i ok = _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)vlo - 1)),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)vhi), idx));
        __m256 v = _mm256_loadu_ps(s + c);
        if (!scaled) v = _mm256_mul_ps(v, _mm256_set1_ps(scale));
        v = _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(ok));
        _mm256_storeu_ps(s + c, v);
        mxv = _mm256_max_ps(mxv, v);
    }
    return cpu_hmax256(mxv);
}

__attribute__((target("avx2,fma"))) static float exp_sum256(float *s, float mn) {
    const __m256 mv = _mm256_set1_ps(mn);
    __m256 sum = _mm256_setzero_ps();
    for (int c = 0; c < ATT_BLK; c += 8) {
        const __m256 e = cpu_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + c), mv));
        _mm256_storeu_ps(s + c, e);
        sum = _mm256_add_ps(sum, e);
    }
    return cpu_hsum256(sum);
}

/* o_r[0..8 NV) += sum_j p_r[j] v_j[0..8 NV) for QR <= 6 query vectors, NV <= 2: the GEMM microkernel's 6 x 16
 * shape, so that each load of V serves six query vectors (with two, the loads of V from L2 bounded it). */
#define PV_ROW(r, A0, A1)                                                                                                 \
    if (QR > r) {                                                                                                         \
        const __m256 pj = _mm256_broadcast_ss(pr[r] + j);                                                                 \
        A0 = _mm256_fmadd_ps(pj, v0, A0);                                                                                 \
        if (NV > 1) A1 = _mm256_fmadd_ps(pj, v1, A1);                                                                     \
    }
#define PV_LOAD(r, A0, A1)                                                                                                \
    if (QR > r) A0 = _mm256_loadu_ps(o[r]), A1 = NV > 1 ? _mm256_loadu_ps(o[r] + 8) : A1;
#define PV_STORE(r, A0, A1)                                                                                               \
    if (QR > r) {                                                                                                         \
        _mm256_storeu_ps(o[r], A0);                                                                                       \
        if (NV > 1) _mm256_storeu_ps(o[r] + 8, A1);                                                                       \
    }
__attribute__((always_inline, target("avx2,fma"))) static inline void pv256_body(float *const *o, const float *const *pr, const float *v, int64_t vst,
                                                                              int64_t n, const int QR, const int NV) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0, e0 = a0, e1 = a0, f0 = a0, f1 = a0;
    PV_LOAD(0, a0, a1) PV_LOAD(1, b0, b1) PV_LOAD(2, c0, c1) PV_LOAD(3, d0, d1) PV_LOAD(4, e0, e1) PV_LOAD(5, f0, f1)
    for (int64_t j = 0; j < n; j++) {
        const float *vj = v + j * vst;
        const __m256 v0 = _mm256_loadu_ps(vj), v1 = NV > 1 ? _mm256_loadu_ps(vj + 8) : v0;
        PV_ROW(0, a0, a1)
        PV_ROW(1, b0, b1)
        PV_ROW(2, c0, c1)
        PV_ROW(3, d0, d1)
        PV_ROW(4, e0, e1)
        PV_ROW(5, f0, f1)
    }
    PV_STORE(0, a0, a1) PV_STORE(1, b0, b1) PV_STORE(2, c0, c1) PV_STORE(3, d0, d1) PV_STORE(4, e0, e1) PV_STORE(5, f0, f1)
}
#undef PV_ROW
#undef PV_LOAD
#undef PV_STORE

#define PV256_CASES(QR)                                                                                                           \
    if (nv > 1) pv256_body(o, pr, v, vst, n, QR, 2);                                                                              \
    else pv256_body(o, pr, v, vst, n, QR, 1);

__attribute__((noinline, target("avx2,fma"))) static void pv256(float *const *o, const float *const *pr, const float *v, int64_t vst, int64_t n, int qr,
                                                              int nv) {
    switch (qr) {
    case 1: PV256_CASES(1) break;
    case 2: PV256_CASES(2) break;
    case 3: PV256_CASES(3) break;
    case 4: PV256_CASES(4) break;
    case 5: PV256_CASES(5) break;
    default: PV256_CASES(6) break;
    }
}
#undef PV256_CASES

static const att_isa att_avx2 = {scores256, mask_max256, exp_sum256, pv256, 16, 8, 6, 6};

/* Task t: batch row b, KV head g, query rows [i0, i0 + qb): the qb x G query vectors walk the union of their key
 * ranges in blocks of 64; each block of keys is transposed once and read by all of them. */
static void attn_blocks(void *ctx, int64_t lo, int64_t hi) {
    cpu_attn *a = ctx;
    const att_isa *is = a->isa;
    const int64_t G = a->N / a->Nkv, H = a->H, Hv = a->Hv, qb = SI_MAX((int64_t)1, ATT_QV / G), nqb = (a->S + qb - 1) / qb;
    const int64_t QV = qb * G;
    cpu_arena *hold;
    float *buf = cpu_scratch_take_key(a->key, (size_t)(QV * (ATT_BLK + Hv + 2) + H * ATT_BLK) * sizeof(float), &hold);
    if (!buf) {
        atomic_store(&a->nomem, true);
        return;
    }
    float *sc = buf, *acc = sc + QV * ATT_BLK, *m = acc + QV * Hv, *l = m + QV, *kt = l + QV;
    int64_t rl[ATT_QV], rh[ATT_QV];
    const float *qp[ATT_QV];
    float *op[ATT_QV];
    const float *pp[ATT_QV];
    const bool extra = a->sink || a->smooth;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t b = t / (a->Nkv * nqb), g = (t / nqb) % a->Nkv, i0 = (t % nqb) * qb, nq = SI_MIN(qb, a->S - i0), nv = nq * G;
        int64_t j0 = INT64_MAX, j1 = 0;
        for (int64_t r = 0; r < nq; r++) {
            a->range(a, b, i0 + r, &rl[r], &rh[r]);
            if (rl[r] < rh[r]) j0 = SI_MIN(j0, rl[r]), j1 = SI_MAX(j1, rh[r]);
        }
        for (int64_t x = 0; x < nv; x++) { /* query vector x: row i0 + x / G, head g G + x % G */
            const int64_t i = i0 + x / G, hh = x % G;
            m[x] = extra ? (a->sink ? a->sink[g * G + hh] : 0.0f) : -INFINITY;
            l[x] = extra ? 1.0f : 0.0f;
            memset(acc + x * Hv, 0, (size_t)Hv * sizeof(float));
            qp[x] = a->q + b * a->qs[0] + (g * G + hh) * a->qs[1] + i * a->qs[2];
            op[x] = acc + x * Hv;
            pp[x] = sc + x * ATT_BLK;
        }
        const float *kb = a->k + b * a->ks[0] + g * a->ks[1], *vb = a->v + b * a->vs[0] + g * a->vs[1];
        for (int64_t js = j0 / ATT_BLK * ATT_BLK; js < j1; js += ATT_BLK) {
            const int64_t n = SI_MIN((int64_t)ATT_BLK, j1 - js);
            const float *ktp = a->kt ? a->kt + ((b * a->Nkv + g) * a->ktb + js / ATT_BLK) * H * ATT_BLK : kt;
            if (!a->kt) kt_block(kb + js * a->ks[2], a->ks[2], n, H, kt);
            for (int64_t x = 0; x < nv; x += is->score_rows)
                is->scores(qp + x, ktp, H, sc + x * ATT_BLK, (int)SI_MIN((int64_t)is->score_rows, nv - x));
            for (int64_t x = 0; x < nv; x++) {
                float *s = sc + x * ATT_BLK;
                const int64_t r = x / G, i = i0 + r;
                const int64_t vlo = SI_MAX((int64_t)0, rl[r] - js), vhi = SI_MIN(n, rh[r] - js);
                const bool scalar = a->softcap > 0 || a->adjust;
                if (scalar) {
                    for (int64_t jj = 0; jj < n; jj++) s[jj] *= a->scale;
                    if (a->softcap > 0)
                        for (int64_t jj = 0; jj < n; jj++) s[jj] = a->softcap * tanhf(s[jj] / a->softcap);
                    if (a->adjust) a->adjust(a, b, g * G + x % G, i, js, s, n);
                }
                const float mb = is->mask_max(s, vlo, vhi, a->scale, scalar); /* keys outside the row's range: -inf */
                if (mb == -INFINITY) { /* every key of the block masked for this vector */
                    memset(s, 0, ATT_BLK * sizeof(float));
                    continue;
                }
                const float mn = mb > m[x] ? mb : m[x];
                if (mn != m[x]) {
                    const float corr = m[x] == -INFINITY ? 0.0f : expf(m[x] - mn);
                    for (int64_t e = 0; e < Hv; e++) acc[x * Hv + e] *= corr;
                    l[x] *= corr;
                    m[x] = mn;
                }
                l[x] += is->exp_sum(s, mn);
            }
            for (int64_t x = 0; x < nv; x += is->pv_rows) {
                const int qr = (int)SI_MIN((int64_t)is->pv_rows, nv - x);
                for (int64_t e0 = 0; e0 < Hv; e0 += is->pv_cols) {
                    float *oo[8];
                    for (int r = 0; r < qr; r++) oo[r] = op[x + r] + e0;
                    is->pv(oo, pp + x, vb + js * a->vs[2] + e0, a->vs[2], n, qr, (int)(SI_MIN((int64_t)is->pv_cols, Hv - e0) / is->lanes));
                }
            }
        }
        for (int64_t x = 0; x < nv; x++) {
            const int64_t i = i0 + x / G, hh = x % G;
            float *o = a->out + b * a->os[0] + (g * G + hh) * a->os[1] + i * a->os[2];
            const float inv = l[x] > 0 ? 1.0f / l[x] : 0.0f;
            for (int64_t e = 0; e < Hv; e++) o[e] = acc[x * Hv + e] * inv;
        }
    }
    cpu_arena_give(hold);
}
#endif

static bool cpu_attention(cpu_attn *a) {
    atomic_init(&a->nomem, false);
    a->key = si_budget_current();
#ifdef ATT_X86
    /* several query rows: blocks (decode, one row, stays on the per-row loop that streams K and V once) */
    const int64_t G = a->N / a->Nkv;
    const cpu_vec *cv = cpu_vec_get();
    a->isa = cv->avx512 ? &att_avx512 : cv->avx2 ? &att_avx2 : NULL;
    if (a->S >= 4 && a->isa && a->Hv % a->isa->lanes == 0 && G <= ATT_QV && !getenv("SI_CPU_ATTN_ROWS")) {
        const int64_t qb = SI_MAX((int64_t)1, ATT_QV / G);
        float *kt = NULL;
        cpu_arena *kt_hold = NULL;
        int64_t *keys = NULL;
        if (a->S > qb) { /* several tasks per KV head: transpose each 64-key block of K once, not once per task */
            if (!(keys = si_malloc((size_t)a->B * sizeof(int64_t)))) return false;
            int64_t most = 0;
            for (int64_t b = 0; b < a->B; b++) {
                keys[b] = 0;
                for (int64_t i = 0; i < a->S; i++) {
                    int64_t lo, hi;
                    a->range(a, b, i, &lo, &hi);
                    keys[b] = SI_MAX(keys[b], hi);
                }
                most = SI_MAX(most, keys[b]);
            }
            a->ktb = (most + ATT_BLK - 1) / ATT_BLK;
            kt = a->ktb ? cpu_scratch_take((size_t)(a->B * a->Nkv * a->ktb * a->H * ATT_BLK) * sizeof(float), &kt_hold) : NULL;
            if (a->ktb && !kt) {
                si_free(keys);
                return false;
            }
            kt_job j = {.a = a, .kt = kt, .keys = keys};
            cpu_par_for(a->B * a->Nkv * a->ktb, 4, kt_tasks, &j);
            a->kt = kt;
        }
        cpu_par_for(a->B * a->Nkv * ((a->S + qb - 1) / qb), 1, attn_blocks, a);
        cpu_arena_give(kt_hold);
        si_free(keys);
        a->kt = NULL;
        return !atomic_load(&a->nomem);
    }
#endif
    cpu_par_for(a->B * a->Nkv * a->S, 1, attn_tasks, a);
    return !atomic_load(&a->nomem);
}

// --- GroupQueryAttention ----------------------------------------------------------------------------------------------

enum { GQ_Q, GQ_K, GQ_V, GQ_PK, GQ_PV, GQ_SEQLENS, GQ_TSL, GQ_COS, GQ_SIN, GQ_POS, GQ_BIAS, GQ_SINK };

typedef struct gqa_ctx {
    const si_kctx *c;
    const si_gqa *p;
    const int64_t *past, *total;
    const float *bias;
    float *qr, *pk, *pv;
} gqa_ctx;

static void gqa_range(const cpu_attn *a, int64_t b, int64_t i, int64_t *lo, int64_t *hi) {
    const gqa_ctx *x = a->ctx;
    const int64_t at = x->past[b] + i;
    *hi = x->p->causal ? SI_MIN(at + 1, x->total[b]) : x->total[b];
    *lo = x->p->window > 0 ? SI_MAX((int64_t)0, at - x->p->window + 1) : 0;
    if (*lo > *hi) *lo = *hi;
}

static void gqa_bias(const cpu_attn *a, int64_t b, int64_t h, int64_t i, int64_t j0, float *s, int64_t n) {
    const gqa_ctx *x = a->ctx;
    const si_gqa *p = x->p;
    const float *br = x->bias + (((p->bias_b ? b : 0) * (p->bias_n ? p->N : 1) + (p->bias_n ? h : 0)) * p->S + i) * p->tsl + j0;
    for (int64_t jj = 0; jj < n; jj++) s[jj] += br[jj];
}

/* Tasks (b, g): present[b, g] = the valid past rows, the new tokens' K and V (K rotated), zeros after; the task of
 * g = 0 also rotates row b's queries. */
static void gqa_fill(void *ctx, int64_t lo, int64_t hi) {
    gqa_ctx *x = ctx;
    const si_kctx *c = x->c;
    const si_gqa *p = x->p;
    const int64_t S = p->S, N = p->N, Nkv = p->Nkv, H = p->H, T = p->Cout, C = p->C;
    const float *q = si_in(c, GQ_Q)->data, *kin = p->packed ? NULL : si_in(c, GQ_K)->data, *vin = p->packed ? NULL : si_in(c, GQ_V)->data;
    const float *cos_c = p->half ? si_in(c, GQ_COS)->data : NULL, *sin_c = p->half ? si_in(c, GQ_SIN)->data : NULL;
    const int64_t qrow = si_in(c, GQ_Q)->dims[2], kvrow = Nkv * H;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t b = t / Nkv, g = t % Nkv, P = x->past[b];
        float *pk = x->pk + (b * Nkv + g) * T * H, *pv = x->pv + (b * Nkv + g) * T * H;
        if (P) {
            memcpy(pk, (const float *)si_in(c, GQ_PK)->data + (b * Nkv + g) * C * H, (size_t)(P * H) * sizeof(float));
            memcpy(pv, (const float *)si_in(c, GQ_PV)->data + (b * Nkv + g) * C * H, (size_t)(P * H) * sizeof(float));
        }
        memset(pk + (P + S) * H, 0, (size_t)((T - P - S) * H) * sizeof(float));
        memset(pv + (P + S) * H, 0, (size_t)((T - P - S) * H) * sizeof(float));
        for (int64_t s = 0; s < S; s++) {
            int64_t pos = 0;
            if (p->rotary) (void)si_gqa_position(c, p, b, s, P, &pos); /* checked before */
            const float *tok = q + (b * S + s) * qrow;
            const float *kt = p->packed ? tok + N * H : kin + (b * S + s) * kvrow, *vt = p->packed ? tok + (N + Nkv) * H : vin + (b * S + s) * kvrow;
            float *dk = pk + (P + s) * H;
            memcpy(dk, kt + g * H, (size_t)H * sizeof(float));
            memcpy(pv + (P + s) * H, vt + g * H, (size_t)H * sizeof(float));
            if (p->rotary) si_rope(dk, p->half, cos_c + pos * p->half, sin_c + pos * p->half, p->interleaved);
            for (int64_t h = 0; h < N && g == 0; h++) {
                float *d = x->qr + ((b * N + h) * S + s) * H;
                memcpy(d, tok + h * H, (size_t)H * sizeof(float));
                if (p->rotary) si_rope(d, p->half, cos_c + pos * p->half, sin_c + pos * p->half, p->interleaved);
            }
        }
    }
}

si_result cpu_gqa_run(si_kctx *c) {
    si_gqa p;
    si_result st = si_gqa_prepare(c, true, &p);
    if (st) return st;
    if (si_in(c, GQ_Q)->dtype != SI_F32 || si_out(c, 3)) return cpu_llm_ref(c);
    const int64_t B = p.B, S = p.S, N = p.N, Nkv = p.Nkv, H = p.H, T = p.Cout;
    si_tensor *opk = si_out(c, 1), *opv = si_out(c, 2);
    const size_t cache = (size_t)(B * Nkv * T * H);
    cpu_arena *hold;
    float *scratch = cpu_scratch_take(((opk ? 0 : cache) + (opv ? 0 : cache) + (size_t)(B * N * S * H) + 1) * sizeof(float), &hold);
    int64_t *len = si_malloc((size_t)(2 * B + 1) * sizeof(int64_t));
    if (!scratch || !len) {
        cpu_arena_give(hold);
        si_free(len);
        return si_op_nomem(c);
    }
    gqa_ctx x = {.c = c, .p = &p, .past = len, .total = len + B, .bias = si_in(c, GQ_BIAS) ? si_in(c, GQ_BIAS)->data : NULL};
    float *f = scratch;
    x.qr = f, f += B * N * S * H;
    x.pk = opk ? opk->data : f, f += opk ? 0 : cache;
    x.pv = opv ? opv->data : f;
    for (int64_t b = 0; b < B && !st; b++) { /* every check before the threads start (messages are per thread) */
        st = si_gqa_lengths(c, &p, b, &len[b], &len[B + b]);
        if (!st && len[b] + S > T)
            st = si_op_err(c, SI_ERR_INVALID_ARG, "batch row %lld: %lld past + %lld new tokens exceed the present length %lld",
                           (long long)b, (long long)len[b], (long long)S, (long long)T);
        for (int64_t s = 0; s < S && !st && p.rotary; s++) {
            int64_t pos;
            st = si_gqa_position(c, &p, b, s, len[b], &pos);
        }
    }
    if (!st) cpu_par_for(B * Nkv, 1, gqa_fill, &x);
    if (!st) {
        cpu_attn a = {.B = B, .N = N, .Nkv = Nkv, .S = S, .H = H, .Hv = H, .q = x.qr, .k = x.pk, .v = x.pv, .out = si_out(c, 0)->data,
                      .qs = {N * S * H, S * H, H}, .ks = {Nkv * T * H, T * H, H}, .vs = {Nkv * T * H, T * H, H},
                      .os = {S * N * H, H, N * H}, .scale = p.scale, .softcap = p.softcap,
                      .sink = si_in(c, GQ_SINK) ? si_in(c, GQ_SINK)->data : NULL, .smooth = p.smooth,
                      .range = gqa_range, .adjust = x.bias ? gqa_bias : NULL, .ctx = &x};
        if (!si_out(c, 0)) a.out = NULL;
        if (a.out && !cpu_attention(&a)) st = si_op_nomem(c);
    }
    cpu_arena_give(hold);
    si_free(len);
    return st;
}

// --- MultiHeadAttention ---------------------------------------------------------------------------------------------

/* The masks of MultiHeadAttention and Attention (com.microsoft): key padding (mask_filter_value added), an
 * additive attention_bias, and ORT's unidirectional mask (rows i < S - 1 keep keys j <= P + i). */
typedef struct ms_mask_ctx {
    int64_t B, S, T, P;
    int kind; /* MK_* */
    const int32_t *mask;
    const si_tensor *bias;
    bool causal;
    float filter;
} ms_mask_ctx;

static void ms_range(const cpu_attn *a, int64_t b, int64_t i, int64_t *lo, int64_t *hi) {
    const ms_mask_ctx *x = a->ctx;
    (void)b;
    *lo = 0;
    *hi = x->causal && i < x->S - 1 ? SI_MIN(x->T, x->P + i + 1) : x->T;
}

static void ms_adjust(const cpu_attn *a, int64_t b, int64_t h, int64_t i, int64_t j0, float *s, int64_t n) {
    const ms_mask_ctx *x = a->ctx;
    if (x->bias) {
        const si_tensor *ab = x->bias;
        const float *br = (const float *)ab->data +
                          (((ab->dims[0] == 1 ? 0 : b) * ab->dims[1] + (ab->dims[1] == 1 ? 0 : h)) * x->S + i) * x->T + j0;
        for (int64_t jj = 0; jj < n; jj++) s[jj] += br[jj];
    }
    for (int64_t jj = 0; jj < n && x->kind != MK_NONE; jj++) {
        const int64_t j = j0 + jj;
        bool masked = false;
        switch (x->kind) {
        case MK_LEN: masked = j >= x->mask[b]; break;
        case MK_END_START: masked = j >= x->mask[b] || j < x->mask[x->B + b]; break;
        case MK_2D: masked = !x->mask[b * x->T + j]; break;
        default: masked = !x->mask[(b * x->S + i) * x->T + j]; break;
        }
        if (masked) s[jj] += x->filter;
    }
}

/* [B, L, heads * hd] (+ bias) into rows [skip, skip + L) of [B, heads, rows, hd]. */
static void mha_split(float *dst, const float *src, const float *bias, int64_t B, int64_t L, int64_t heads, int64_t hd, int64_t rows,
                      int64_t skip) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++)
            for (int64_t h = 0; h < heads; h++) {
                float *d = dst + ((b * heads + h) * rows + skip + l) * hd;
                const float *s = src + (b * L + l) * heads * hd + h * hd;
                for (int64_t e = 0; e < hd; e++) d[e] = s[e] + (bias ? bias[h * hd + e] : 0.0f);
            }
}

/* The fused loop of MultiHeadAttention and Attention (com.microsoft) on heads in [B, N, S|T, H] layout (qh, kh, vh)
 * into output 0, with the op's mask kind, mask (int32 key mask, may be NULL) and attention bias (may be NULL). */
static si_result ms_attend(si_kctx *c, int64_t B, int64_t S, int64_t T, int64_t P, int64_t N, int64_t H, int64_t Hv, int mask_kind,
                           const si_tensor *mask, const si_tensor *abias, const float *qh, const float *kh, const float *vh) {
    const float sc = si_attr_float(c->node, "scale", 0.0f);
    ms_mask_ctx x = {.B = B, .S = S, .T = T, .P = P, .kind = mask_kind, .mask = mask ? mask->data : NULL, .bias = abias,
                     .causal = si_attr_int(c->node, "unidirectional", 0) != 0, .filter = si_attr_float(c->node, "mask_filter_value", -10000.0f)};
    cpu_attn a = {.B = B, .N = N, .Nkv = N, .S = S, .H = H, .Hv = Hv, .q = qh, .k = kh, .v = vh,
                  .out = si_out(c, 0) ? si_out(c, 0)->data : NULL, .qs = {N * S * H, S * H, H}, .ks = {N * T * H, T * H, H},
                  .vs = {N * T * Hv, T * Hv, Hv}, .os = {S * N * Hv, Hv, N * Hv}, .scale = sc != 0.0f ? sc : (float)(1.0 / sqrt((double)H)),
                  .range = ms_range, .adjust = x.bias || mask_kind != MK_NONE ? ms_adjust : NULL, .ctx = &x};
    if (a.out && !cpu_attention(&a)) return si_op_nomem(c);
    return SI_OK;
}

si_result cpu_mha_run(si_kctx *c) {
    si_mha p;
    si_result st = si_mha_prepare(c, &p);
    if (st) return st;
    if (si_in(c, MHA_Q)->dtype != SI_F32 || si_out(c, 3)) return cpu_llm_ref(c);
    const int64_t B = p.B, S = p.S, L = p.L, N = p.N, H = p.H, Hv = p.Hv, P = p.P, T = p.T;
    si_tensor *opk = si_out(c, 1), *opv = si_out(c, 2);
    const float *bias = si_in(c, MHA_BIAS) ? si_in(c, MHA_BIAS)->data : NULL;
    const size_t nk = (size_t)(B * N * T * H), nv = (size_t)(B * N * T * Hv);
    cpu_arena *hold;
    float *scratch = cpu_scratch_take(((size_t)(B * N * S * H) + (opk || p.cross ? 0 : nk) + (opv || p.cross ? 0 : nv) + 1) * sizeof(float), &hold);
    if (!scratch) return si_op_nomem(c);
    float *qh = scratch, *f = scratch + B * N * S * H;
    const float *kh, *vh;
    mha_split(qh, si_in(c, MHA_Q)->data, bias, B, S, N, H, S, 0);
    if (p.cross) { /* K and V as given; present = them */
        kh = si_in(c, MHA_K)->data;
        vh = si_in(c, MHA_V)->data;
        if (opk) memcpy(opk->data, kh, nk * sizeof(float));
        if (opv) memcpy(opv->data, vh, nv * sizeof(float));
    } else {
        float *kw = opk ? opk->data : f;
        f += opk ? 0 : nk;
        float *vw = opv ? opv->data : f;
        for (int64_t bh = 0; bh < B * N && P; bh++) {
            memcpy(kw + bh * T * H, (const float *)si_in(c, MHA_PK)->data + bh * P * H, (size_t)(P * H) * sizeof(float));
            memcpy(vw + bh * T * Hv, (const float *)si_in(c, MHA_PV)->data + bh * P * Hv, (size_t)(P * Hv) * sizeof(float));
        }
        mha_split(kw, si_in(c, MHA_K)->data, bias ? bias + N * H : NULL, B, L, N, H, T, P);
        mha_split(vw, si_in(c, MHA_V)->data, bias ? bias + 2 * N * H : NULL, B, L, N, Hv, T, P);
        kh = kw;
        vh = vw;
    }
    st = ms_attend(c, B, S, T, P, N, H, Hv, p.mask, si_in(c, MHA_MASK), si_in(c, MHA_ABIAS), qh, kh, vh);
    cpu_arena_give(hold);
    return st;
}

// --- Attention (com.microsoft): the QKV projection on sgemm, then the fused loop ----------------------------------------

si_result cpu_msattn_run(si_kctx *c) {
    si_msattn p;
    si_result st = si_msattn_prepare(c, &p);
    if (st) return st;
    if (si_in(c, AT_X)->dtype != SI_F32) return cpu_llm_ref(c);
    const int64_t B = p.B, S = p.S, N = p.N, H = p.Dq / p.N, Hv = p.Dv / p.N, P = p.P, T = p.T, W = p.Dq + p.Dk + p.Dv;
    si_tensor *opres = si_out(c, 1);
    const size_t nk = (size_t)(B * N * T * H), nv = (size_t)(B * N * T * Hv);
    cpu_arena *hold;
    float *proj = cpu_scratch_take(((size_t)(B * S * W) + (size_t)(B * N * S * H) + (opres ? 0 : nk + nv) + 1) * sizeof(float), &hold);
    if (!proj) return si_op_nomem(c);
    float *qh = proj + B * S * W, *kh = opres ? opres->data : qh + B * N * S * H, *vh = kh + nk; /* present: keys, then values */
    const float *bias = si_in(c, AT_BIAS) ? si_in(c, AT_BIAS)->data : NULL;
    dnnl_status_t ds = dnnl_sgemm('N', 'N', B * S, W, p.Din, 1.0f, si_in(c, AT_X)->data, p.Din, si_in(c, AT_W)->data, W, 0.0f, proj, W);
    if (ds != dnnl_success) {
        cpu_arena_give(hold);
        return si_op_nomem(c);
    }
    if (P) {
        const float *past = si_in(c, AT_PAST)->data;
        for (int64_t bh = 0; bh < B * N; bh++) {
            memcpy(kh + bh * T * H, past + bh * P * H, (size_t)(P * H) * sizeof(float));
            memcpy(vh + bh * T * Hv, past + (B * N + bh) * P * H, (size_t)(P * Hv) * sizeof(float));
        }
    }
    for (int64_t b = 0; b < B; b++) /* split heads, adding the projection's bias */
        for (int64_t s = 0; s < S; s++) {
            const float *row = proj + (b * S + s) * W;
            for (int64_t h = 0; h < N; h++) {
                float *dq = qh + ((b * N + h) * S + s) * H, *dk = kh + ((b * N + h) * T + P + s) * H, *dv = vh + ((b * N + h) * T + P + s) * Hv;
                for (int64_t e = 0; e < H; e++) {
                    dq[e] = row[h * H + e] + (bias ? bias[h * H + e] : 0.0f);
                    dk[e] = row[p.Dq + h * H + e] + (bias ? bias[p.Dq + h * H + e] : 0.0f);
                }
                for (int64_t e = 0; e < Hv; e++) dv[e] = row[p.Dq + p.Dk + h * Hv + e] + (bias ? bias[p.Dq + p.Dk + h * Hv + e] : 0.0f);
            }
        }
    st = ms_attend(c, B, S, T, P, N, H, Hv, p.mask, si_in(c, AT_MASK), si_in(c, AT_ABIAS), qh, kh, vh);
    cpu_arena_give(hold);
    return st;
}
