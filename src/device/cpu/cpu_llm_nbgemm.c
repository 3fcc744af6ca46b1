/*
 * cpu_llm_nbgemm.c — Y = A W^T (+ bias) for many rows of A on AVX-512 or AVX2 + FMA, float32 compute: MatMulNBits (W from its
 * codes, prefill) and float W [N, K] (the MoE experts, cpu_sgemm_nt: panels packed by 16 x 16 transposes).
 *
 * W is split into groups of 32 output columns (rows of W). Each group is dequantised once per call into a packed
 * panel Wp[k][32] (k in A's order: slot t of byte i of a block is k = per * i + t), straight from the codes: one 32-bit gather fetches 4 bytes of the same block of
 * 16 rows of W, and each (byte, slot) of it becomes one 16-lane vector of Wp, q * scale - zero * scale. Then an
 * 8 x 32 outer-product microkernel (16 accumulators, each k step: two loads of Wp, eight broadcasts of Ap) runs
 * over all of k for every 8 rows of A. The groups are split over the threads; each thread packs its own panel.
 * Without AVX-512 the same panels are packed 8 columns at a time and a 6 x 16 microkernel (12 accumulators) runs
 * over each half of a panel; the sums are taken in the same order, so both give the same results.
 */
#include "device/cpu/cpu_llm.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define NG_NR 32  /* columns of Y per panel */
#define NG_KC 256 /* rows of k per panel: 32 KiB, in L1 */
#define NG_MC 256 /* rows of A per pass over the panels (A's block stays in L2) */
_Static_assert(NG_NR == CPU_SGEMM_GROUP, "cpu_sgemm_pack_group's column groups are panels");

typedef struct ng_job ng_job;
/* wp[k - k0][32] for k in [k0, k0 + NG_KC) and columns n0 .. n0+nc-1 of W (nc <= 32; the other lanes zero) */
typedef void (*ng_pack_fn)(const ng_job *j, int64_t n0, int nc, int64_t k0, float *wp);

struct ng_job {
    const si_nbits *p;   /* MatMulNBits: the codes */
    const uint8_t *B, *zp8;
    const float *scales, *zpf;
    const float *w;      /* float B: element (k, n) at w[k sbk + n sbn] (W [N, K]: sbk 1, sbn K) */
    const float *bias, *a;
    int64_t M, N, K, groups, tasks;
    int64_t lda, ldy, sbk, sbn; /* A's and Y's row strides (K and N for the dense products), w's strides */
    float *y;
    ng_pack_fn pack;
};

/* ng_pack_fn from the codes. k0 is a multiple of NG_KC; a block is either a whole number of panels or a panel a
 * whole number of blocks. Lanes past nc and rows past K are not read by the kernel. */
__attribute__((target("avx512f"))) static void pack_panel(const ng_job *j, int64_t n0, int nc, int64_t k0, float *wp) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits;
    const int64_t blob = p->blob, nb = p->nb, block = p->block;
    const __m512i msk = _mm512_set1_epi32((1 << bits) - 1);
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)(nb * blob)));
    const int64_t b0 = k0 / block, b1 = SI_MIN(nb, (k0 + NG_KC + block - 1) / block);
    for (int h = 0; h < 2; h++) { /* two halves of 16 columns */
        const int c0 = h * 16, hc = SI_MAX(0, SI_MIN(16, nc - c0));
        if (!hc) {
            for (int64_t k = 0; k < NG_KC; k++) _mm512_storeu_ps(wp + k * NG_NR + c0, _mm512_setzero_ps());
            continue;
        }
        const __mmask16 lanes = (__mmask16)((1u << hc) - 1);
        for (int64_t blk = b0; blk < b1; blk++) {
            float sv[16] = {0}, zv[16] = {0};
            for (int c = 0; c < hc; c++) {
                const int64_t n = n0 + c0 + c;
                sv[c] = j->scales[n * nb + blk];
                zv[c] = -si_nbits_zero(p, j->zp8, j->zpf, n, blk) * sv[c];
            }
            const __m512 s = _mm512_loadu_ps(sv), zs = _mm512_loadu_ps(zv);
            const uint8_t *base = j->B + ((n0 + c0) * nb + blk) * blob;
            const int64_t kb = blk * block; /* k of the block's first code */
            const int64_t i0 = SI_MAX((int64_t)0, (k0 - kb) / per), i1 = SI_MIN(blob, (k0 + NG_KC - kb) / per);
            for (int64_t i = i0; i < i1; i += 4) {
                const __m512i x = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, base + i, 1);
                float *wr = wp + (kb + i * per - k0) * NG_NR + c0;
                for (int b = 0; b < 4; b++)
                    for (int t = 0; t < per; t++) {
                        const __m512i q = _mm512_and_si512(_mm512_srli_epi32(x, (unsigned)(8 * b + t * bits)), msk);
                        _mm512_storeu_ps(wr + (b * per + t) * NG_NR, _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), s, zs));
                    }
            }
        }
    }
}

/* ng_pack_fn from a float W [N, K]: 16 x 16 blocks (16 rows of W, 16 values of k) loaded row by row and
 * transposed in registers (unpack, then 128-bit lane shuffles). */
__attribute__((target("avx512f"))) static void pack_f32(const ng_job *j, int64_t n0, int nc, int64_t k0, float *wp) {
    const int64_t K = j->K, kl = SI_MIN((int64_t)NG_KC, K - k0);
    for (int h = 0; h < 2; h++) {
        const int c0 = h * 16, hc = SI_MAX(0, SI_MIN(16, nc - c0));
        const float *base = j->w + (n0 + c0) * K + k0;
        for (int64_t k = 0; k < kl; k += 16) {
            const int kr = (int)SI_MIN((int64_t)16, kl - k);
            const __mmask16 km = (__mmask16)((1u << kr) - 1);
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++) r[i] = i < hc ? _mm512_maskz_loadu_ps(km, base + i * K + k) : _mm512_setzero_ps();
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            for (int i = 0; i < 4; i++) { /* r[4i + q]: rows 4i..4i+3 of column 4l + q in 128-bit lane l */
                r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
                r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
                r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
                r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
            }
            for (int q = 0; q < 4; q++) {
                t[q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);
                t[4 + q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
                t[8 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
                t[12 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
            }
            for (int q = 0; q < 4; q++) { /* column c of the block: all 16 rows */
                r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
                r[8 + q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD);
                r[4 + q] = _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0x88);
                r[12 + q] = _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0xDD);
            }
            for (int c = 0; c < kr; c++) _mm512_storeu_ps(wp + (k + c) * NG_NR + c0, r[c]);
        }
    }
}

/* Y[MR rows][32 columns] (+)= A[MR rows, stride lda][k0 .. k0+kl) . wp[kl][32]; first: store with the bias. */
__attribute__((always_inline, target("avx512f"))) static inline void kernel_body(const float *a, int64_t lda, int64_t kl, const float *wp,
                                                                              float *y, int64_t ldy, __mmask16 m0, __mmask16 m1,
                                                                              const float *bias, bool first, const int MR) {
    __m512 acc[8][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kl; k++) {
        const __m512 w0 = _mm512_loadu_ps(wp + k * NG_NR), w1 = _mm512_loadu_ps(wp + k * NG_NR + 16);
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(a[r * lda + k]);
            acc[r][0] = _mm512_fmadd_ps(av, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *yr = y + r * ldy;
        __m512 c0, c1;
        if (first) c0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps(), c1 = bias && m1 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
        else c0 = _mm512_maskz_loadu_ps(m0, yr), c1 = _mm512_maskz_loadu_ps(m1, yr + 16);
        _mm512_mask_storeu_ps(yr, m0, _mm512_add_ps(c0, acc[r][0]));
        if (m1) _mm512_mask_storeu_ps(yr + 16, m1, _mm512_add_ps(c1, acc[r][1]));
    }
}

__attribute__((target("avx512f"))) static void kernel(const float *a, int64_t lda, int64_t kl, const float *wp, float *y, int64_t ldy,
                                                      __mmask16 m0, __mmask16 m1, const float *bias, bool first, int mr) {
    switch (mr) { /* one instance per row count: the accumulators stay in registers */
    case 1: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 1); break;
    case 2: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 2); break;
    case 3: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 3); break;
    case 4: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 4); break;
    case 5: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 5); break;
    case 6: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 6); break;
    case 7: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 7); break;
    default: kernel_body(a, lda, kl, wp, y, ldy, m0, m1, bias, first, 8); break;
    }
}

/* Task t of nt: column groups t, t + nt, ...; for each block of NG_MC rows of A, each panel of the group is packed
 * once and multiplied with every 8 rows of the block. */
__attribute__((target("avx512f"))) static void ng_task(void *ctx, int64_t lo, int64_t hi) {
    const ng_job *j = ctx;
    const int64_t K = j->K, N = j->N;
    _Alignas(64) float wp[NG_KC * NG_NR];
    for (int64_t t = lo; t < hi; t++)
        for (int64_t g = t; g < j->groups; g += j->tasks) {
            const int64_t n0 = g * NG_NR;
            const int nc = (int)SI_MIN((int64_t)NG_NR, N - n0);
            const __mmask16 m0 = (__mmask16)((1u << SI_MIN(16, nc)) - 1), m1 = (__mmask16)((1u << SI_MAX(0, nc - 16)) - 1);
            for (int64_t mc = 0; mc < j->M; mc += NG_MC) {
                const int64_t me = SI_MIN(j->M, mc + NG_MC);
                for (int64_t k0 = 0; k0 < K; k0 += NG_KC) {
                    j->pack(j, n0, nc, k0, wp);
                    const int64_t kl = SI_MIN((int64_t)NG_KC, K - k0);
                    for (int64_t r0 = mc; r0 < me; r0 += 8)
                        kernel(j->a + r0 * K + k0, K, kl, wp, j->y + r0 * N + n0, N, m0, m1, j->bias ? j->bias + n0 : NULL, k0 == 0,
                               (int)SI_MIN((int64_t)8, me - r0));
                }
            }
        }
}

// --- AVX2 + FMA: the same panels, packed 8 columns at a time, and a 6 x 16 microkernel over each half ---------

/* pack_panel in 8 lanes. Lanes past nc gather row n0 + c0 again with scale and zero 0, so they pack as 0. */
__attribute__((target("avx2,fma"))) static void pack_panel256(const ng_job *j, int64_t n0, int nc, int64_t k0, float *wp) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits;
    const int64_t blob = p->blob, nb = p->nb, block = p->block;
    const __m256i msk = _mm256_set1_epi32((1 << bits) - 1);
    const int64_t b0 = k0 / block, b1 = SI_MIN(nb, (k0 + NG_KC + block - 1) / block);
    for (int h = 0; h < 4; h++) { /* four groups of 8 columns */
        const int c0 = h * 8, hc = SI_MAX(0, SI_MIN(8, nc - c0));
        if (!hc) {
            for (int64_t k = 0; k < NG_KC; k++) _mm256_storeu_ps(wp + k * NG_NR + c0, _mm256_setzero_ps());
            continue;
        }
        int32_t ri[8];
        for (int c = 0; c < 8; c++) ri[c] = (int32_t)((c < hc ? c : 0) * nb * blob);
        const __m256i rows = _mm256_loadu_si256((const __m256i *)ri);
        for (int64_t blk = b0; blk < b1; blk++) {
            float sv[8] = {0}, zv[8] = {0};
            for (int c = 0; c < hc; c++) {
                const int64_t n = n0 + c0 + c;
                sv[c] = j->scales[n * nb + blk];
                zv[c] = -si_nbits_zero(p, j->zp8, j->zpf, n, blk) * sv[c];
            }
            const __m256 s = _mm256_loadu_ps(sv), zs = _mm256_loadu_ps(zv);
            const uint8_t *base = j->B + ((n0 + c0) * nb + blk) * blob;
            const int64_t kb = blk * block;
            const int64_t i0 = SI_MAX((int64_t)0, (k0 - kb) / per), i1 = SI_MIN(blob, (k0 + NG_KC - kb) / per);
            for (int64_t i = i0; i < i1; i += 4) {
                const __m256i x = _mm256_i32gather_epi32((const int *)(const void *)(base + i), rows, 1);
                float *wr = wp + (kb + i * per - k0) * NG_NR + c0;
                for (int b = 0; b < 4; b++)
                    for (int t = 0; t < per; t++) {
                        const __m256i q = _mm256_and_si256(_mm256_srli_epi32(x, 8 * b + t * bits), msk);
                        _mm256_storeu_ps(wr + (b * per + t) * NG_NR, _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), s, zs));
                    }
            }
        }
    }
}

/* pack_f32 in 8 lanes: 8 x 8 blocks transposed in registers. */
__attribute__((target("avx2,fma"))) static void pack_f32_256(const ng_job *j, int64_t n0, int nc, int64_t k0, float *wp) {
    const int64_t ld = j->sbn, kl = SI_MIN((int64_t)NG_KC, j->K - k0); /* sbk is 1: rows of W ld apart */
    for (int h = 0; h < 4; h++) {
        const int c0 = h * 8, hc = SI_MAX(0, SI_MIN(8, nc - c0));
        const float *base = j->w + (n0 + c0) * ld + k0;
        for (int64_t k = 0; k < kl; k += 8) {
            const int kr = (int)SI_MIN((int64_t)8, kl - k);
            const __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(kr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++) r[i] = i < hc ? _mm256_maskload_ps(base + i * ld + k, km) : _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            for (int i = 0; i < 2; i++) { /* r[4i + q]: rows 4i..4i+3 of column 4l + q in 128-bit lane l */
                r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
                r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
                r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
                r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
            }
            for (int q = 0; q < 4; q++) { /* column q and 4 + q: all 8 rows */
                t[q] = _mm256_permute2f128_ps(r[q], r[4 + q], 0x20);
                t[4 + q] = _mm256_permute2f128_ps(r[q], r[4 + q], 0x31);
            }
            for (int c = 0; c < kr; c++) _mm256_storeu_ps(wp + (k + c) * NG_NR + c0, t[c]);
        }
    }
}

/* Y[MR rows][nc <= 16 columns] (+)= A[MR rows][k0 .. k0+kl) . wp[kl][16 of 32]; first: store with the bias. The
 * accumulators are named variables, not an array: GCC kept an array of 12 in memory, one store per FMA. */
#define NG_ROW(r, A0, A1)                                                                                                 \
    if (MR > r) {                                                                                                         \
        const __m256 av = _mm256_broadcast_ss(a + r * lda + k);                                                           \
        A0 = _mm256_fmadd_ps(av, w0, A0);                                                                                 \
        A1 = _mm256_fmadd_ps(av, w1, A1);                                                                                 \
    }
__attribute__((always_inline, target("avx2,fma"))) static inline void kernel256_body(const float *a, int64_t lda, int64_t kl, const float *wp,
                                                                                  float *y, int64_t ldy, int nc, const float *bias, bool first,
                                                                                  const int MR) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00, a40 = a00,
           a41 = a00, a50 = a00, a51 = a00;
    for (int64_t k = 0; k < kl; k++) {
        const __m256 w0 = _mm256_loadu_ps(wp + k * NG_NR), w1 = _mm256_loadu_ps(wp + k * NG_NR + 8);
        NG_ROW(0, a00, a01)
        NG_ROW(1, a10, a11)
        NG_ROW(2, a20, a21)
        NG_ROW(3, a30, a31)
        NG_ROW(4, a40, a41)
        NG_ROW(5, a50, a51)
    }
    const __m256 acc[6][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
    for (int r = 0; r < MR; r++) {
        float *yr = y + r * ldy;
        if (nc == 16) {
            __m256 c0, c1;
            if (first) c0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps(), c1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
            else c0 = _mm256_loadu_ps(yr), c1 = _mm256_loadu_ps(yr + 8);
            _mm256_storeu_ps(yr, _mm256_add_ps(c0, acc[r][0]));
            _mm256_storeu_ps(yr + 8, _mm256_add_ps(c1, acc[r][1]));
        } else {
            float t[16];
            _mm256_storeu_ps(t, acc[r][0]);
            _mm256_storeu_ps(t + 8, acc[r][1]);
            for (int c = 0; c < nc; c++) yr[c] = (first ? (bias ? bias[c] : 0.0f) : yr[c]) + t[c];
        }
    }
}
#undef NG_ROW

__attribute__((noinline, target("avx2,fma"))) static void kernel256(const float *a, int64_t lda, int64_t kl, const float *wp, float *y, int64_t ldy, int nc,
                                                          const float *bias, bool first, int mr) {
    switch (mr) {
    case 1: kernel256_body(a, lda, kl, wp, y, ldy, nc, bias, first, 1); break;
    case 2: kernel256_body(a, lda, kl, wp, y, ldy, nc, bias, first, 2); break;
    case 3: kernel256_body(a, lda, kl, wp, y, ldy, nc, bias, first, 3); break;
    case 4: kernel256_body(a, lda, kl, wp, y, ldy, nc, bias, first, 4); break;
    case 5: kernel256_body(a, lda, kl, wp, y, ldy, nc, bias, first, 5); break;
    default: kernel256_body(a, lda, kl, wp, y, ldy, nc, bias, first, 6); break;
    }
}

/* Column group g of j's product with the 8-lane pieces: each panel is multiplied with every 6 rows of the block,
 * one half of 16 columns at a time. */
__attribute__((target("avx2,fma"))) static void ng_group256(const ng_job *j, int64_t g, float *wp) {
    const int64_t K = j->K, n0 = g * NG_NR;
    const int nc = (int)SI_MIN((int64_t)NG_NR, j->N - n0);
    for (int64_t mc = 0; mc < j->M; mc += NG_MC) {
        const int64_t me = SI_MIN(j->M, mc + NG_MC);
        for (int64_t k0 = 0; k0 < K; k0 += NG_KC) {
            j->pack(j, n0, nc, k0, wp);
            const int64_t kl = SI_MIN((int64_t)NG_KC, K - k0);
            for (int64_t r0 = mc; r0 < me; r0 += 6)
                for (int h = 0; h < 2 && h * 16 < nc; h++)
                    kernel256(j->a + r0 * j->lda + k0, j->lda, kl, wp + h * 16, j->y + r0 * j->ldy + n0 + h * 16, j->ldy, SI_MIN(16, nc - h * 16),
                              j->bias ? j->bias + n0 + h * 16 : NULL, k0 == 0, (int)SI_MIN((int64_t)6, me - r0));
        }
    }
}

static void ng_task256(void *ctx, int64_t lo, int64_t hi) {
    const ng_job *j = ctx;
    _Alignas(64) float wp[NG_KC * NG_NR];
    for (int64_t t = lo; t < hi; t++)
        for (int64_t g = t; g < j->groups; g += j->tasks) ng_group256(j, g, wp);
}

/* ng_pack_fn from a strided B: element (k, n) at w[k sbk + n sbn]. Rows of B contiguous (sbn 1): copied; columns
 * contiguous (sbk 1): pack_f32_256 with rows sbn apart; else element by element. */
__attribute__((target("avx2,fma"))) static void pack_strided256(const ng_job *j, int64_t n0, int nc, int64_t k0, float *wp) {
    const int64_t kl = SI_MIN((int64_t)NG_KC, j->K - k0);
    if (j->sbn == 1) {
        for (int64_t k = 0; k < kl; k++) {
            const float *row = j->w + (k0 + k) * j->sbk + n0;
            for (int c = 0; c < NG_NR; c += 8) {
                __m256 v;
                if (c + 8 <= nc) v = _mm256_loadu_ps(row + c);
                else if (c < nc) v = _mm256_maskload_ps(row + c, _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
                else v = _mm256_setzero_ps();
                _mm256_storeu_ps(wp + k * NG_NR + c, v);
            }
        }
    } else if (j->sbk == 1) {
        pack_f32_256(j, n0, nc, k0, wp);
    } else {
        for (int64_t k = 0; k < kl; k++)
            for (int c = 0; c < NG_NR; c++) wp[k * NG_NR + c] = c < nc ? j->w[(k0 + k) * j->sbk + (n0 + c) * j->sbn] : 0.0f;
    }
}

bool cpu_sgemm_strided_cpu(void) { return cpu_vec_get()->avx2; }

static ng_job strided_job(const cpu_sgemm_strided *q) {
    return (ng_job){.w = q->b, .a = q->a, .y = q->y, .M = q->M, .N = q->N, .K = q->K, .lda = q->lda, .ldy = q->ldy,
                    .sbk = q->sbk, .sbn = q->sbn, .groups = (q->N + NG_NR - 1) / NG_NR, .pack = pack_strided256};
}

void cpu_sgemm_pack_group(const cpu_sgemm_strided *q, int64_t g, float *dst) {
    const ng_job j = strided_job(q);
    for (int64_t k0 = 0; k0 < q->K; k0 += NG_KC) pack_strided256(&j, g * NG_NR, (int)SI_MIN((int64_t)NG_NR, q->N - g * NG_NR), k0, dst + k0 * NG_NR);
}

__attribute__((target("avx2,fma"))) void cpu_sgemm_packed_rows(const cpu_sgemm_strided *q, const float *packed, int64_t m0, int64_t mr) {
    const int64_t K = q->K, groups = (q->N + NG_NR - 1) / NG_NR;
    for (int64_t g = 0; g < groups; g++) {
        const int64_t n0 = g * NG_NR;
        const int nc = (int)SI_MIN((int64_t)NG_NR, q->N - n0);
        for (int64_t k0 = 0; k0 < K; k0 += NG_KC) {
            const float *wp = packed + (g * K + k0) * NG_NR;
            const int64_t kl = SI_MIN((int64_t)NG_KC, K - k0);
            for (int64_t r0 = m0; r0 < m0 + mr; r0 += 6)
                for (int h = 0; h < 2 && h * 16 < nc; h++)
                    kernel256(q->a + r0 * q->lda + k0, q->lda, kl, wp + h * 16, q->y + r0 * q->ldy + n0 + h * 16, q->ldy, SI_MIN(16, nc - h * 16),
                              NULL, k0 == 0, (int)SI_MIN((int64_t)6, m0 + mr - r0));
        }
        if (q->post) q->post(q->post_ctx, m0, mr, n0, nc);
    }
}

bool cpu_nbits_gemm_fits(const si_nbits *p) {
    const cpu_vec *v = cpu_vec_get();
    return (v->avx512 || v->avx2) && p->N * p->nb * p->blob < ((int64_t)1 << 31) - 64;
}

void cpu_nbits_gemm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                    const float *a, float *y) {
    const bool wide = cpu_vec_get()->avx512;
    ng_job j = {.p = p, .B = B, .zp8 = zp8, .scales = scales, .zpf = zpf, .bias = bias, .a = a, .y = y, .M = p->M, .N = p->N, .K = p->K,
                .lda = p->K, .ldy = p->N, .groups = (p->N + NG_NR - 1) / NG_NR, .pack = wide ? pack_panel : pack_panel256};
    j.tasks = SI_MIN((int64_t)cpu_par_threads(), j.groups);
    cpu_par_for(j.tasks, 1, wide ? ng_task : ng_task256, &j);
}

bool cpu_sgemm_nt_fits(int64_t N, int64_t K) {
    const cpu_vec *v = cpu_vec_get();
    return (v->avx512 || v->avx2) && N > 0 && K > 0;
}

void cpu_sgemm_nt(const float *a, const float *w, const float *bias, float *y, int64_t M, int64_t N, int64_t K) {
    const bool wide = cpu_vec_get()->avx512;
    ng_job j = {.w = w, .bias = bias, .a = a, .y = y, .M = M, .N = N, .K = K, .lda = K, .ldy = N, .sbk = 1, .sbn = K, .groups = (N + NG_NR - 1) / NG_NR,
                .pack = wide ? pack_f32 : pack_f32_256};
    j.tasks = SI_MIN((int64_t)cpu_par_threads(), j.groups);
    cpu_par_for(j.tasks, 1, wide ? ng_task : ng_task256, &j);
}

#else
bool cpu_sgemm_strided_cpu(void) { return false; }
void cpu_sgemm_pack_group(const cpu_sgemm_strided *q, int64_t g, float *dst) { (void)q, (void)g, (void)dst; }
void cpu_sgemm_packed_rows(const cpu_sgemm_strided *q, const float *packed, int64_t m0, int64_t mr) { (void)q, (void)packed, (void)m0, (void)mr; }
bool cpu_nbits_gemm_fits(const si_nbits *p) {
    (void)p;
    return false;
}
bool cpu_sgemm_nt_fits(int64_t N, int64_t K) {
    (void)N, (void)K;
    return false;
}
void cpu_sgemm_nt(const float *a, const float *w, const float *bias, float *y, int64_t M, int64_t N, int64_t K) {
    (void)a, (void)w, (void)bias, (void)y, (void)M, (void)N, (void)K;
}
void cpu_nbits_gemm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                    const float *a, float *y) {
    (void)p, (void)B, (void)zp8, (void)scales, (void)zpf, (void)bias, (void)a, (void)y;
}
#endif
