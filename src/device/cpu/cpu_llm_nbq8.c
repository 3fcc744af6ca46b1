/*
 * cpu_llm_nbq8.c — MatMulNBits at accuracy_level 4 (int8 A) with 4-bit codes, on AVX-512 VNNI, or on AVX2 (the
 * section at the end).
 *
 * accuracy_level 4 lets a runtime quantise A to int8 (the attribute's "minimum precision used for A"), and ONNX
 * Runtime's CPU kernel does when B, scales and zero points are constant: per row of A and per block of K (the
 * weights' block), symmetric, scale = max|a| / 127, codes round(a * 127 / max|a|). This file does the same, so
 * that a level-4 model gives ONNX Runtime's numbers, and the dot products run as vpdpbusd: 64 code x activation
 * products per instruction in int32, then one float scale (scale of A's block x scale of W's block) per block:
 *
 *   Y[m, n] = sum_blk sa[m, blk] sw[n, blk] (sum_k q[n, k] qa[m, k]  -  z[n, blk] sum_k qa[m, k])
 *
 * The zero-point term is one dot product per output over the blocks (z sw against sa x the block's code sum).
 *
 * A is quantised once per call (quant_row, k order), then laid out for one of two kernels:
 *
 * GEMV, up to Q8_ROWS_MAX rows (decode). A column's codes are read as they are stored: 64 bytes are 4 pieces of
 * 32 values (byte i of a piece holds k = 2i in its low nibble, 2i + 1 in its high one). Masked, the low nibbles
 * meet A's even k and, shifted, the high nibbles its odd k, so A's row is stored per group of 4 pieces as [even k
 * of the 4 pieces | odd k]; the int32 lanes 4t .. 4t+3 then hold piece t's partial sums, scaled by its block's sw
 * (4 scales spread over the lanes by one permute) and A's sa (stored per lane). Up to four rows of A share the
 * unpacked codes; the columns are split over the threads.
 *
 * GEMM, more rows (prefill). Panels of 32 columns in vpdpbusd's layout (each int32 lane the 4 codes of one column
 * that meet 4 bytes of A: 4 bytes of codes hold 8 values, their low nibbles k 0 2 4 6, the high ones k 1 3 5 7, so
 * A's row is stored per 8 k as k0 k2 k4 k6 k1 k3 k5 k7), packed per call by 32-bit gathers; a 4 x 32 microkernel
 * accumulates a block in int32, then scales it into float. Each thread packs its panels and runs every row over
 * them.
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define Q8_X86 1
#endif

#define Q8_MR 4       /* rows of A per pass over the columns */
#define Q8_ROWS_MAX 8 /* rows of A for the GEMV; more: the panel GEMM */
#define QG_MR 4       /* rows of A per pass of the GEMM over a panel */

/* The VNNI kernels of this file can run. */
static bool q8_vnni(void) {
#ifdef Q8_X86
    static atomic_int ok = -1; /* first calls may run on several threads: each computes the same value */
    int v = atomic_load_explicit(&ok, memory_order_relaxed);
    if (v < 0) {
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512vnni") && cpu_vec_get()->avx512 && !getenv("SI_CPU_NO_VNNI");
        atomic_store_explicit(&ok, v, memory_order_relaxed);
    }
    return v;
#else
    return false;
#endif
}

bool cpu_nbits_q8_cpu(void) { return q8_vnni() || cpu_vec_get()->avx2; }

#ifdef Q8_X86
typedef struct q8_job q8_job;
struct q8_job {
    const si_nbits *p;
    const uint8_t *B, *zp8;
    const float *scales, *bias;
    const int8_t *qa; /* [M][ng][128]: group g of row m: even k of its 4 pieces (4 x 16), then odd k (AVX2: [64], 2 pieces) */
    const float *sp;  /* [M][ng][16]: the scale of A's block of each int32 lane of a group (the piece's, x4) (AVX2: [8]) */
    const float *ca;  /* [M][nb]: A's block scale x the block's code sum */
    int64_t ng;       /* groups of 4 pieces of 32 values per row: ceil(nb * block / 128) (AVX2: pairs of pieces) */
    float *y;
    /* column n of rows m0 .. m0+mr-1 of Y, without bias: col_rows (VNNI) or col256_rows (AVX2) */
    void (*col)(const q8_job *j, int64_t n, int64_t m0, int mr, float *o);
};

/* a[k .. k+8) of a block of len values, zero past len. */
__attribute__((always_inline, target("avx2,fma"))) static inline __m256 load8(const float *a, int64_t k, int64_t len) {
    if (k + 8 <= len) return _mm256_loadu_ps(a + k);
    if (k >= len) return _mm256_setzero_ps();
    return _mm256_maskload_ps(a + k, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(len - k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

/* Row a[0..K) of A in int8, k order (qk, [nb * block]), its block scales (sa) and sa x the block's code sums (ca);
 * blocks of `block` values, the last one read masked, as if zero-padded. AVX2 (both kernels use it). */
__attribute__((target("avx2,fma"))) static void quant_row(const float *a, int64_t K, int64_t block, int64_t nb, int8_t *qk, float *sa, float *ca) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t k0 = blk * block, len = SI_MIN(block, K - k0);
        const float *src = a + k0;
        __m256 mx = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (int64_t k = 0; k < block; k += 8) {
            const __m256 v = load8(src, k, len);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            mx = _mm256_max_ps(mx, _mm256_and_ps(v, absm));
        }
        const float amax = _mm256_movemask_ps(nan) ? NAN : cpu_hmax256(mx);
        const float inv = amax > 0 && isfinite(amax) ? 127.0f / amax : 0.0f;
        const __m256 iv = _mm256_set1_ps(inv);
        __m256i sum = _mm256_setzero_si256();
        for (int64_t k = 0; k < block; k += 8) {
            __m256 v = load8(src, k, len);
            if (isfinite(inv)) {
                v = _mm256_mul_ps(v, iv);
            } else {
                float t[8];
                _mm256_storeu_ps(t, v);
                for (int e = 0; e < 8; e++) t[e] = 127.0f * (t[e] / amax);
                v = _mm256_loadu_ps(t);
            }
            const __m256i q = _mm256_cvtps_epi32(v); /* NaN: INT_MIN, saturated to -128 below, as cvtsepi32 does */
            sum = _mm256_add_epi32(sum, q);
            const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            _mm_storel_epi64((__m128i *)(qk + k0 + k), _mm_packs_epi16(q16, q16));
        }
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
        sa[blk] = isfinite(amax) ? amax / 127.0f : NAN;
        ca[blk] = sa[blk] * (float)_mm_cvtsi128_si32(t);
    }
}

/* The GEMV's layout of a row (qk, np pieces of 32 values) into groups of gp pieces (qa, [ng][32 gp]: the even k of
 * the gp pieces, 16 each, then their odd k) and lane scales (sp, [ng][4 gp]: each piece's block scale, x4); zero
 * pieces up to a whole group. gp 4 for the VNNI kernel (16 int32 lanes), 2 for the AVX2 one (8 lanes). */
__attribute__((target("avx2,fma"))) static void gemv_layout(const int8_t *qk, const float *sa, int64_t np, int64_t ppb, int64_t ng, int gp, int8_t *qa,
                                                            float *sp) {
    const __m256i deint = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, /* per 128-bit lane: evens, odds */
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int64_t pc = 0; pc < ng * gp; pc++) {
        int8_t *gq = qa + (pc / gp) * 32 * gp + (pc % gp) * 16;
        if (pc < np) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(qk + pc * 32));
            b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b, deint), 0xD8); /* [even k (16) | odd k (16)] */
            _mm_storeu_si128((__m128i *)gq, _mm256_castsi256_si128(b));
            _mm_storeu_si128((__m128i *)(gq + 16 * gp), _mm256_extracti128_si256(b, 1));
            _mm_storeu_ps(sp + pc * 4, _mm_set1_ps(sa[pc / ppb]));
        } else {
            memset(gq, 0, 16);
            memset(gq + 16 * gp, 0, 16);
            _mm_storeu_ps(sp + pc * 4, _mm_setzero_ps());
        }
    }
}

/* Column n of rows m0 .. m0+MR-1 of Y, without bias. A group is 64 bytes of codes (4 pieces: byte i of piece t
 * holds k = 32t + 2i low, 2i + 1 high); its low nibbles meet A's even k, the high ones the odd k; the int32 lanes
 * 4t .. 4t+3 are piece t's, scaled by its block's sw and A's sa. */
__attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512vnni"))) static inline void col_body(const q8_job *j, int64_t n, int64_t m0,
                                                                                                      float *o, const int MR) {
    const si_nbits *p = j->p;
    const int64_t nb = p->nb, ppb = p->block / 32, ng = j->ng, np = nb * ppb;
    const int lp = __builtin_ctzll((unsigned long long)ppb); /* block_size is a power of two */
    const uint8_t *bn = j->B + n * nb * p->blob;
    const float *sn = j->scales + n * nb;
    const int8_t *qa = j->qa + m0 * ng * 128;
    const float *sp = j->sp + m0 * ng * 16;
    const __m512i m4 = _mm512_set1_epi8(15);
    /* lane l of a group: piece l / 4, block (first piece + l / 4) / ppb; bpg: blocks a group starts over */
    const __m512i idx = _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), (unsigned)(2 + SI_MIN(lp, 2)));
    __m512 acc[Q8_MR];
    for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; g++) {
        const int64_t pc = g * 4, left = np - pc;
        const __m512i x = left >= 4 ? _mm512_loadu_si512(bn + pc * 16)
                                    : _mm512_maskz_loadu_epi8((__mmask64)((1ull << (left * 16)) - 1), bn + pc * 16);
        const __m512i lo = _mm512_and_si512(x, m4), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
        const int64_t b0 = pc >> lp;
        const __m128 s4 = nb - b0 >= 4 ? _mm_loadu_ps(sn + b0) : _mm_maskz_loadu_ps((__mmask8)((1u << (nb - b0)) - 1), sn + b0);
        const __m512 sw = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s4));
        for (int r = 0; r < MR; r++) {
            const int8_t *q = qa + (r * ng + g) * 128;
            __m512i ia = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(q));
            ia = _mm512_dpbusd_epi32(ia, hi, _mm512_loadu_si512(q + 64));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(sw, _mm512_loadu_ps(sp + (r * ng + g) * 16)), acc[r]);
        }
    }
    for (int64_t b = 0; b < nb; b += 16) { /* the zero points: minus sum_blk z sw ca */
        const __mmask16 mk = (__mmask16)((1u << SI_MIN((int64_t)16, nb - b)) - 1);
        const __m512 z = cpu_nbits_zsw16(p, j->zp8, NULL, j->scales, n, b);
        for (int r = 0; r < MR; r++) acc[r] = _mm512_fnmadd_ps(z, _mm512_maskz_loadu_ps(mk, j->ca + (m0 + r) * nb + b), acc[r]);
    }
    for (int r = 0; r < MR; r++) o[r] = _mm512_reduce_add_ps(acc[r]);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void col_rows(const q8_job *j, int64_t n, int64_t m0, int mr, float *o) {
    switch (mr) { /* one instance per row count: the row loops unroll, the accumulators stay in registers */
    case 1: col_body(j, n, m0, o, 1); break;
    case 2: col_body(j, n, m0, o, 2); break;
    case 3: col_body(j, n, m0, o, 3); break;
    default: col_body(j, n, m0, o, 4); break;
    }
}

/* Columns [lo, hi). */
static void cols(void *ctx, int64_t lo, int64_t hi) {
    const q8_job *j = ctx;
    const si_nbits *p = j->p;
    for (int64_t m0 = 0; m0 < p->M; m0 += Q8_MR) {
        const int mr = (int)SI_MIN((int64_t)Q8_MR, p->M - m0);
        for (int64_t n = lo; n < hi; n++) {
            float o[Q8_MR];
            j->col(j, n, m0, mr, o);
            for (int r = 0; r < mr; r++) j->y[(m0 + r) * p->N + n] = o[r] + (j->bias ? j->bias[n] : 0.0f);
        }
    }
}

// --- many rows (prefill): panels of 32 columns in vpdpbusd's layout ---------------------------------------------------

#define QG_NR 32 /* columns per panel: two vectors of 16 int32 lanes */

typedef struct qg_job {
    const si_nbits *p;
    const uint8_t *B, *zp8;
    const float *scales, *bias;
    const int8_t *qa;     /* [M][kp]: A's codes, each 8 k as k0 k2 k4 k6 k1 k3 k5 k7 */
    const void *key;      /* the scratch pool of the calling request */
    const float *sa, *ca; /* [M][nb] */
    int64_t kp;
    float *y;
    atomic_bool nomem;
} qg_job;

/* r[0..15] (16 rows of 16 int32) transposed in place: r[e] holds element e of rows 0..15. */
__attribute__((always_inline, target("avx512f"))) static inline void tr16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) { /* lane L: rows 2i, 2i+1 at elements 4L, 4L+1 (t[2i]) and 4L+2, 4L+3 (t[2i+1]) */
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i+k], lane L: rows 4i .. 4i+3 at element 4L+k */
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int k = 0; k < 4; k++) { /* element 4L+k: lane L of r[k], r[4+k], r[8+k], r[12+k] */
        const __m512i s0 = _mm512_shuffle_i32x4(r[k], r[4 + k], 0x44), s1 = _mm512_shuffle_i32x4(r[k], r[4 + k], 0xEE);
        const __m512i s2 = _mm512_shuffle_i32x4(r[8 + k], r[12 + k], 0x44), s3 = _mm512_shuffle_i32x4(r[8 + k], r[12 + k], 0xEE);
        t[k] = _mm512_shuffle_i32x4(s0, s2, 0x88);
        t[4 + k] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
        t[8 + k] = _mm512_shuffle_i32x4(s1, s3, 0x88);
        t[12 + k] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
    }
    for (int e = 0; e < 16; e++) r[e] = t[e];
}

/* The panel of columns n0 .. n0+nc-1 (the others zero): wq [nb][block / 4][32] int32, each the 4 codes of one
 * column that meet one int32 of A's row (4 bytes of codes hold k 0-7 of 8: their low nibbles k 0 2 4 6, their high
 * nibbles k 1 3 5 7), sw and zs [nb][32] (the block's scale, zero point x scale). Each column's codes, scales and
 * zero points are contiguous: 16 columns x 16 of their words are loaded and transposed in registers (a gather per
 * word of 16 columns took ~80% of the packing, which took a fifth of a 64-token prefill). */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void qg_pack(const qg_job *j, int64_t n0, int nc, int32_t *wq, float *sw, float *zs) {
    const si_nbits *p = j->p;
    const int64_t nb = p->nb, W = nb * p->blob / 4; /* int32 words of codes per column; word w -> q 2w (low), 2w+1 */
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i nib = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4), m15 = _mm512_set1_epi32(15);
    for (int h = 0; h < 2; h++) {
        const int hc = SI_MAX(0, SI_MIN(16, nc - 16 * h));
        const uint8_t *base = j->B + (n0 + 16 * h) * nb * p->blob;
        for (int64_t w0 = 0; w0 < W; w0 += 16) {
            const int wc = (int)SI_MIN((int64_t)16, W - w0);
            const __mmask16 wm = (__mmask16)((1u << wc) - 1);
            __m512i r[16];
            for (int c = 0; c < 16; c++) r[c] = c < hc ? _mm512_maskz_loadu_epi32(wm, base + c * nb * p->blob + w0 * 4) : _mm512_setzero_si512();
            tr16(r);
            for (int e = 0; e < wc; e++) {
                int32_t *o = wq + (2 * (w0 + e)) * QG_NR + 16 * h;
                _mm512_storeu_si512(o, _mm512_and_si512(r[e], m4));
                _mm512_storeu_si512(o + QG_NR, _mm512_and_si512(_mm512_srli_epi32(r[e], 4), m4));
            }
        }
        for (int64_t b0 = 0; b0 < nb; b0 += 16) { /* scales and zero point x scale, 16 blocks of 16 columns */
            const int bc = (int)SI_MIN((int64_t)16, nb - b0);
            const __mmask16 bm = (__mmask16)((1u << bc) - 1);
            __m512i sv[16], zv[16];
            for (int c = 0; c < 16; c++) {
                if (c >= hc) {
                    sv[c] = zv[c] = _mm512_setzero_si512();
                    continue;
                }
                const int64_t n = n0 + 16 * h + c;
                const __m512 s = _mm512_maskz_loadu_ps(bm, j->scales + n * nb + b0);
                __m512 z = _mm512_set1_ps(8.0f);
                if (j->zp8) { /* 4-bit: two blocks a byte, the even block in the low nibble */
                    const __m128i zb = _mm_maskz_loadu_epi8((__mmask16)((1u << ((bc + 1) / 2)) - 1), j->zp8 + n * p->zrow + b0 / 2);
                    const __m512i zi = _mm512_and_si512(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(zb, dup)), nib), m15);
                    z = _mm512_cvtepi32_ps(zi);
                }
                sv[c] = _mm512_castps_si512(s);
                zv[c] = _mm512_castps_si512(_mm512_mul_ps(z, s));
            }
            tr16(sv);
            tr16(zv);
            for (int e = 0; e < bc; e++) {
                _mm512_storeu_si512(sw + (b0 + e) * QG_NR + 16 * h, sv[e]);
                _mm512_storeu_si512(zs + (b0 + e) * QG_NR + 16 * h, zv[e]);
            }
        }
    }
}

/* Rows m0 .. m0+MR-1 of Y for the panel's 32 columns (acc[r][0..1]), without bias. */
__attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512vnni"))) static inline void
qg_body(const qg_job *j, const int32_t *wq, const float *sw, const float *zs, int64_t m0, __m512 (*out)[2], const int MR) {
    const si_nbits *p = j->p;
    const int64_t nb = p->nb, q4 = p->block / 4, kp = j->kp;
    __m512 acc[QG_MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nb; blk++) {
        __m512i ia[QG_MR][2];
        for (int r = 0; r < MR; r++) ia[r][0] = ia[r][1] = _mm512_setzero_si512();
        const int32_t *wb = wq + blk * q4 * QG_NR;
        const int8_t *ab = j->qa + m0 * kp + blk * p->block;
        for (int64_t q = 0; q < q4; q++) {
            const __m512i w0 = _mm512_loadu_si512(wb + q * QG_NR), w1 = _mm512_loadu_si512(wb + q * QG_NR + 16);
            for (int r = 0; r < MR; r++) {
                int32_t v;
                memcpy(&v, ab + r * kp + 4 * q, 4);
                const __m512i av = _mm512_set1_epi32(v);
                ia[r][0] = _mm512_dpbusd_epi32(ia[r][0], w0, av);
                ia[r][1] = _mm512_dpbusd_epi32(ia[r][1], w1, av);
            }
        }
        const __m512 s0 = _mm512_loadu_ps(sw + blk * QG_NR), s1 = _mm512_loadu_ps(sw + blk * QG_NR + 16);
        const __m512 z0 = _mm512_loadu_ps(zs + blk * QG_NR), z1 = _mm512_loadu_ps(zs + blk * QG_NR + 16);
        for (int r = 0; r < MR; r++) {
            const __m512 sa = _mm512_set1_ps(j->sa[(m0 + r) * nb + blk]), ca = _mm512_set1_ps(j->ca[(m0 + r) * nb + blk]);
            acc[r][0] = _mm512_fnmadd_ps(z0, ca, _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][0]), _mm512_mul_ps(s0, sa), acc[r][0]));
            acc[r][1] = _mm512_fnmadd_ps(z1, ca, _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][1]), _mm512_mul_ps(s1, sa), acc[r][1]));
        }
    }
    for (int r = 0; r < MR; r++) out[r][0] = acc[r][0], out[r][1] = acc[r][1];
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void qg_rows(const qg_job *j, const int32_t *wq, const float *sw,
                                                                                  const float *zs,
                                                                                  int64_t n0, int nc) {
    const si_nbits *p = j->p;
    const __mmask16 k0 = (__mmask16)((1u << SI_MIN(16, nc)) - 1), k1 = (__mmask16)((1u << SI_MAX(0, nc - 16)) - 1);
    const __m512 b0 = j->bias ? _mm512_maskz_loadu_ps(k0, j->bias + n0) : _mm512_setzero_ps();
    const __m512 b1 = j->bias ? _mm512_maskz_loadu_ps(k1, j->bias + n0 + 16) : _mm512_setzero_ps();
    for (int64_t m0 = 0; m0 < p->M; m0 += QG_MR) {
        const int mr = (int)SI_MIN((int64_t)QG_MR, p->M - m0);
        __m512 o[QG_MR][2];
        switch (mr) {
        case 1: qg_body(j, wq, sw, zs, m0, o, 1); break;
        case 2: qg_body(j, wq, sw, zs, m0, o, 2); break;
        case 3: qg_body(j, wq, sw, zs, m0, o, 3); break;
        default: qg_body(j, wq, sw, zs, m0, o, 4); break;
        }
        for (int r = 0; r < mr; r++) {
            float *yr = j->y + (m0 + r) * p->N + n0;
            _mm512_mask_storeu_ps(yr, k0, _mm512_add_ps(o[r][0], b0));
            _mm512_mask_storeu_ps(yr + 16, k1, _mm512_add_ps(o[r][1], b1));
        }
    }
}

/* Panels [lo, hi): each thread packs its panel, then runs every row of A over it. */
static void qg_panels(void *ctx, int64_t lo, int64_t hi) {
    qg_job *j = ctx;
    const si_nbits *p = j->p;
    const int64_t nb = p->nb;
    cpu_arena *hold;
    const size_t bytes = (size_t)(nb * p->block / 4 * QG_NR) * sizeof(int32_t) + (size_t)(2 * nb * QG_NR) * sizeof(float);
    int32_t *wq = cpu_scratch_take_key(j->key, bytes, &hold);
    if (!wq) {
        atomic_store(&j->nomem, true);
        return;
    }
    float *sw = (float *)(wq + nb * p->block / 4 * QG_NR), *zs = sw + nb * QG_NR;
    for (int64_t g = lo; g < hi; g++) {
        const int64_t n0 = g * QG_NR;
        const int nc = (int)SI_MIN((int64_t)QG_NR, p->N - n0);
        qg_pack(j, n0, nc, wq, sw, zs);
        qg_rows(j, wq, sw, zs, n0, nc);
    }
    cpu_arena_give(hold);
}

/* A's row in k order (qk) into the GEMM's order: each 8 k as k0 k2 k4 k6 k1 k3 k5 k7. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void gemm_layout(const int8_t *qk, int64_t kp, int8_t *qa) {
    const __m128i perm = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    for (int64_t k = 0; k < kp; k += 16)
        _mm_storeu_si128((__m128i *)(qa + k), _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(qk + k)), perm));
}

// --- AVX2 without VNNI: the same int8 A, products by vpmaddubsw ------------------------------------------------------
//
// A code (0..15) times an A code (-127..127), two of them added in int16 by vpmaddubsw, cannot saturate (2 x 15 x
// 127 = 3810), nor can the even and odd halves added (7620): the block sums are the exact int32 ones of the VNNI
// kernel. The GEMV reads a column's codes 32 bytes (two pieces of 32 values) at a time; A's row is laid out per
// pair of pieces as [even k of both pieces | odd k of both] and the int32 lanes 0-3 / 4-7 hold piece 0's / 1's
// partial sums. More rows (prefill): A quantised the same way, then dequantised (code x block scale, in float) into
// the float panel GEMM of cpu_llm_nbgemm.c: the level's int8 activations, float products.

/* z x sw of blocks b0 .. b0+cnt-1 (cnt <= 8) of column n, 0 past them: packed 4-bit zero points or none (8). */
__attribute__((always_inline, target("avx2,fma"))) static inline __m256 zsw8(const si_nbits *p, const uint8_t *zp8, const float *scales, int64_t n,
                                                                          int64_t b0, int cnt) {
    float sv[8] = {0};
    memcpy(sv, scales + n * p->nb + b0, (size_t)cnt * sizeof(float));
    __m256 z = _mm256_set1_ps(8.0f);
    if (zp8) {
        uint32_t v = 0;
        memcpy(&v, zp8 + n * p->zrow + b0 / 2, (size_t)((cnt + 1) / 2));
        const __m128i e = _mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)v));
        const __m128i w = _mm_unpacklo_epi16(_mm_and_si128(e, _mm_set1_epi16(15)), _mm_srli_epi16(e, 4)); /* even block low */
        z = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(w));
    }
    return _mm256_mul_ps(z, _mm256_loadu_ps(sv));
}

/* q8_job for the AVX2 GEMV: qa [M][ng][64], sp [M][ng][8], ng pairs of pieces. */
__attribute__((always_inline, target("avx2,fma"))) static inline void col256_body(const q8_job *j, int64_t n, int64_t m0, float *o, const int MR) {
    const si_nbits *p = j->p;
    const int64_t nb = p->nb, ppb = p->block / 32, ng = j->ng, np = nb * ppb;
    const int lp = __builtin_ctzll((unsigned long long)ppb);
    const uint8_t *bn = j->B + n * nb * p->blob;
    const float *sn = j->scales + n * nb;
    const int8_t *qa = j->qa + m0 * ng * 64;
    const float *sp = j->sp + m0 * ng * 8;
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t g = 0; g < ng; g++) {
        const int64_t pc = g * 2;
        const bool two = np - pc >= 2;
        const __m256i x = two ? _mm256_loadu_si256((const __m256i *)(bn + pc * 16))
                              : _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128((const __m128i *)(bn + pc * 16)), 0);
        const __m256i lo = _mm256_and_si256(x, m4), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
        const __m256 sw = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(sn[pc >> lp])), _mm_set1_ps(two ? sn[(pc + 1) >> lp] : 0.0f), 1);
#define Q8_ROW(r, A)                                                                                                      \
    if (MR > r) {                                                                                                         \
        const int8_t *q = qa + (r * ng + g) * 64;                                                                         \
        const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q)),           \
                                             _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q + 32))));    \
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones));                                              \
        A = _mm256_fmadd_ps(f, _mm256_mul_ps(sw, _mm256_loadu_ps(sp + (r * ng + g) * 8)), A);                            \
    }
        Q8_ROW(0, a0)
        Q8_ROW(1, a1)
        Q8_ROW(2, a2)
        Q8_ROW(3, a3)
#undef Q8_ROW
    }
    __m256 acc[4] = {a0, a1, a2, a3};
    for (int64_t b = 0; b < nb; b += 8) { /* the zero points: minus sum_blk z sw ca */
        const int cnt = (int)SI_MIN((int64_t)8, nb - b);
        const __m256 z = zsw8(p, j->zp8, j->scales, n, b, cnt);
        for (int r = 0; r < MR; r++) {
            float cv[8] = {0};
            memcpy(cv, j->ca + (m0 + r) * nb + b, (size_t)cnt * sizeof(float));
            acc[r] = _mm256_fnmadd_ps(z, _mm256_loadu_ps(cv), acc[r]);
        }
    }
    for (int r = 0; r < MR; r++) o[r] = cpu_hsum256(acc[r]);
}

__attribute__((target("avx2,fma"))) static void col256_rows(const q8_job *j, int64_t n, int64_t m0, int mr, float *o) {
    switch (mr) {
    case 1: col256_body(j, n, m0, o, 1); break;
    case 2: col256_body(j, n, m0, o, 2); break;
    case 3: col256_body(j, n, m0, o, 3); break;
    default: col256_body(j, n, m0, o, 4); break;
    }
}

/* ar[0..K) = code x its block's scale. */
__attribute__((target("avx2,fma"))) static void dequant_row256(const int8_t *qk, const float *sa, int64_t K, int64_t block, float *ar) {
    for (int64_t k0 = 0; k0 < K; k0 += block) {
        const int64_t len = SI_MIN(block, K - k0);
        const __m256 s = _mm256_set1_ps(sa[k0 / block]);
        int64_t k = 0;
        for (; k + 8 <= len; k += 8)
            _mm256_storeu_ps(ar + k0 + k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qk + k0 + k)))), s));
        for (; k < len; k++) ar[k0 + k] = (float)qk[k0 + k] * sa[k0 / block];
    }
}

typedef struct q8_rows256 {
    const si_nbits *p;
    const float *a;
    int8_t *qk, *qa;
    float *sp, *sa, *ca;
    int64_t np, ng, kp;
    bool gemv;
} q8_rows256;

/* Rows [lo, hi) of A: quantised, then laid out for the GEMV or dequantised for the GEMM (sp is then A in float). */
static void q8_rows(void *ctx, int64_t lo, int64_t hi) {
    const q8_rows256 *r = ctx;
    const si_nbits *p = r->p;
    for (int64_t m = lo; m < hi; m++) {
        quant_row(r->a + m * p->K, p->K, p->block, p->nb, r->qk + m * r->kp, r->sa + m * p->nb, r->ca + m * p->nb);
        if (r->gemv) gemv_layout(r->qk + m * r->kp, r->sa + m * p->nb, r->np, p->block / 32, r->ng, 2, r->qa + m * r->ng * 64, r->sp + m * r->ng * 8);
        else dequant_row256(r->qk + m * r->kp, r->sa + m * p->nb, p->K, p->block, r->sp + m * p->K);
    }
}

/* MatMulNBits at level 4 on AVX2 (p: 4-bit, block a multiple of 32, integer or no zero points). */
static si_result q8_run256(si_kctx *c, const si_nbits *pp) {
    si_nbits p = *pp;
    const int64_t np = p.nb * p.block / 32, ng = (np + 1) / 2, kp = np * 32;
    const bool gemv = p.M <= Q8_ROWS_MAX;
    const size_t qa_bytes = gemv ? (size_t)(p.M * ng * 64) : 0, qk_bytes = (size_t)(p.M * kp), pad = (4 - qk_bytes % 4) % 4;
    const size_t f_count = (gemv ? (size_t)(p.M * ng * 8) : (size_t)(p.M * p.K)) + (size_t)(2 * p.M * p.nb);
    cpu_arena *hold;
    uint8_t *buf = cpu_scratch_take(qa_bytes + qk_bytes + pad + f_count * sizeof(float), &hold);
    if (!buf) return si_op_nomem(c);
    q8_rows256 r = {.p = &p, .a = si_in(c, 0)->data, .qa = (int8_t *)buf, .qk = (int8_t *)buf + qa_bytes, .np = np, .ng = ng, .kp = kp, .gemv = gemv};
    r.sp = (float *)(buf + qa_bytes + qk_bytes + pad);
    r.sa = r.sp + (gemv ? p.M * ng * 8 : p.M * p.K), r.ca = r.sa + p.M * p.nb;
    cpu_par_for(p.M, SI_MAX((int64_t)1, 4096 / SI_MAX((int64_t)1, p.K)), q8_rows, &r);
    const uint8_t *zp8 = p.zp == NB_ZP_PACKED ? si_in(c, 3)->data : NULL;
    const float *bias = p.bias ? si_in(c, 5)->data : NULL;
    if (!gemv) {
        const bool ok = cpu_nbits_mm(&p, si_in(c, 1)->data, zp8, si_in(c, 2)->data, NULL, bias, r.sp, si_out(c, 0)->data);
        cpu_arena_give(hold);
        return ok ? SI_OK : si_op_nomem(c);
    }
    q8_job j = {.p = &p, .B = si_in(c, 1)->data, .zp8 = zp8, .scales = si_in(c, 2)->data, .bias = bias, .qa = r.qa, .sp = r.sp, .ca = r.ca,
                .ng = ng, .y = si_out(c, 0)->data, .col = col256_rows};
    cpu_par_for(p.N, 16, cols, &j);
    cpu_arena_give(hold);
    return SI_OK;
}
#endif

si_result cpu_nbits_q8_run(si_kctx *c) {
#ifdef Q8_X86
    si_nbits p;
    si_result st = si_nbits_prepare(c, &p);
    if (st) return st;
    si_tensor *y = si_out(c, 0);
    if (!y || p.M == 0) return SI_OK;
    if (si_in(c, 0)->dtype != SI_F32 || p.bits != 4 || p.block % 32 || p.zp == NB_ZP_FLOAT || !cpu_nbits_q8_cpu()) return cpu_nbits_run(c);
    if (!q8_vnni()) return q8_run256(c, &p);
    const int64_t np = p.nb * p.block / 32, ng = (np + 3) / 4, kp = np * 32;
    const size_t qa_bytes = (size_t)(p.M * ng * 128), qk_bytes = (size_t)(p.M * kp), sp_bytes = (size_t)(p.M * ng * 16) * sizeof(float);
    cpu_arena *hold;
    uint8_t *buf = cpu_scratch_take(qa_bytes + qk_bytes + sp_bytes + (size_t)(2 * p.M * p.nb) * sizeof(float), &hold);
    if (!buf) return si_op_nomem(c);
    int8_t *qa = (int8_t *)buf, *qk = qa + qa_bytes;
    float *sp = (float *)(buf + qa_bytes + qk_bytes), *sa = sp + p.M * ng * 16, *ca = sa + p.M * p.nb;
    const float *a = si_in(c, 0)->data;
    for (int64_t m = 0; m < p.M; m++) {
        quant_row(a + m * p.K, p.K, p.block, p.nb, qk + m * kp, sa + m * p.nb, ca + m * p.nb);
        if (p.M <= Q8_ROWS_MAX) gemv_layout(qk + m * kp, sa + m * p.nb, np, p.block / 32, ng, 4, qa + m * ng * 128, sp + m * ng * 16);
        else gemm_layout(qk + m * kp, kp, qa + m * kp);
    }
    if (p.M > Q8_ROWS_MAX) {
        qg_job g = {.p = &p, .B = si_in(c, 1)->data, .zp8 = p.zp == NB_ZP_PACKED ? si_in(c, 3)->data : NULL, .scales = si_in(c, 2)->data,
                    .bias = p.bias ? si_in(c, 5)->data : NULL, .qa = qa, .sa = sa,
                    .ca = ca, .kp = kp, .y = y->data, .key = si_budget_current()};
        atomic_init(&g.nomem, false);
        cpu_par_for((p.N + QG_NR - 1) / QG_NR, 1, qg_panels, &g);
        cpu_arena_give(hold);
        return atomic_load(&g.nomem) ? si_op_nomem(c) : SI_OK;
    }
    q8_job j = {.p = &p, .B = si_in(c, 1)->data, .zp8 = p.zp == NB_ZP_PACKED ? si_in(c, 3)->data : NULL, .scales = si_in(c, 2)->data,
                .bias = p.bias ? si_in(c, 5)->data : NULL, .qa = qa, .sp = sp,
                .ca = ca, .ng = ng, .y = y->data, .col = col_rows};
    cpu_par_for(p.N, 16, cols, &j);
    cpu_arena_give(hold);
    return SI_OK;
#else
    return cpu_nbits_run(c);
#endif
}
