/*
 * cpu_llm_nbgemm.c — MatMulNBits with many rows of A (prefill) on AVX-512: Y = Ap W^T (+ bias), float32 compute.
 *
 * W is split into groups of 32 output columns (rows of W). Each group is dequantised once per call into a packed
 * panel Wp[k][32] (k in A's order: slot t of byte i of a block is k = per * i + t), straight from the codes: one 32-bit gather fetches 4 bytes of the same block of
 * 16 rows of W, and each (byte, slot) of it becomes one 16-lane vector of Wp, q * scale - zero * scale. Then an
 * 8 x 32 outer-product microkernel (16 accumulators, each k step: two loads of Wp, eight broadcasts of Ap) runs
 * over all of k for every 8 rows of A. The groups are split over the threads; each thread packs its own panel.
 */
#include "device/cpu/cpu_llm.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define NG_NR 32 /* columns of Y per panel */

typedef struct ng_job {
    const si_nbits *p;
    const uint8_t *B, *zp8;
    const float *scales, *zpf, *bias, *ap;
    int64_t kp, groups, tasks;
    float *y;
    atomic_bool nomem;
} ng_job;

/* Wp[kp][32] for columns n0 .. n0+nc-1 (nc <= 32; the other lanes are zero). */
__attribute__((target("avx512f"))) static void pack_panel(const ng_job *j, int64_t n0, int nc, float *wp) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits;
    const int64_t blob = p->blob, nb = p->nb, kp = j->kp;
    const __m512i msk = _mm512_set1_epi32((1 << bits) - 1);
    for (int h = 0; h < 2; h++) { /* two halves of 16 columns */
        const int c0 = h * 16, hc = SI_MAX(0, SI_MIN(16, nc - c0));
        const __mmask16 lanes = (__mmask16)((1u << hc) - 1);
        if (!hc) {
            for (int64_t k = 0; k < kp; k++) _mm512_storeu_ps(wp + k * NG_NR + c0, _mm512_setzero_ps());
            continue;
        }
        const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                _mm512_set1_epi32((int)(nb * blob)));
        for (int64_t blk = 0; blk < nb; blk++) {
            float sv[16] = {0}, zv[16] = {0};
            for (int c = 0; c < hc; c++) {
                const int64_t n = n0 + c0 + c;
                sv[c] = j->scales[n * nb + blk];
                zv[c] = -si_nbits_zero(p, j->zp8, j->zpf, n, blk) * sv[c];
            }
            const __m512 s = _mm512_loadu_ps(sv), zs = _mm512_loadu_ps(zv);
            const uint8_t *base = j->B + ((n0 + c0) * nb + blk) * blob;
            float *wb = wp + blk * p->block * NG_NR + c0;
            for (int64_t i = 0; i < blob; i += 4) {
                const __m512i x = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, base + i, 1);
                for (int b = 0; b < 4; b++)
                    for (int t = 0; t < per; t++) {
                        const __m512i q = _mm512_and_si512(_mm512_srli_epi32(x, (unsigned)(8 * b + t * bits)), msk);
                        const __m512 w = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), s, zs);
                        _mm512_storeu_ps(wb + ((i + b) * per + t) * NG_NR, w);
                    }
            }
        }
    }
}

/* c[8][32] = a[8 rows, stride kp][0..kp) . wp[kp][32]. */
__attribute__((target("avx512f"))) static void kernel_8x32(const float *a, int64_t kp, const float *wp, __m512 acc[8][2]) {
    for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kp; k++) {
        const __m512 w0 = _mm512_loadu_ps(wp + k * NG_NR), w1 = _mm512_loadu_ps(wp + k * NG_NR + 16);
        for (int r = 0; r < 8; r++) {
            const __m512 av = _mm512_set1_ps(a[r * kp + k]);
            acc[r][0] = _mm512_fmadd_ps(av, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, w1, acc[r][1]);
        }
    }
}

__attribute__((target("avx512f"))) static void ng_task(void *ctx, int64_t lo, int64_t hi) {
    ng_job *j = ctx;
    const si_nbits *p = j->p;
    const int64_t kp = j->kp;
    float *wp = si_malloc((size_t)(kp * NG_NR) * sizeof(float));
    if (!wp) {
        atomic_store(&j->nomem, true);
        return;
    }
    for (int64_t t = lo; t < hi; t++)
        for (int64_t g = t; g < j->groups; g += j->tasks) {
            const int64_t n0 = g * NG_NR;
            const int nc = (int)SI_MIN((int64_t)NG_NR, p->N - n0);
            pack_panel(j, n0, nc, wp);
            __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
            const __mmask16 m0 = (__mmask16)((1u << SI_MIN(16, nc)) - 1), m1 = (__mmask16)((1u << SI_MAX(0, nc - 16)) - 1);
            if (j->bias) b0 = _mm512_maskz_loadu_ps(m0, j->bias + n0), b1 = _mm512_maskz_loadu_ps(m1, j->bias + n0 + 16);
            for (int64_t r0 = 0; r0 < p->M; r0 += 8) {
                __m512 acc[8][2];
                kernel_8x32(j->ap + r0 * kp, kp, wp, acc);
                const int mr = (int)SI_MIN((int64_t)8, p->M - r0);
                for (int r = 0; r < mr; r++) {
                    float *yr = j->y + (r0 + r) * p->N + n0;
                    _mm512_mask_storeu_ps(yr, m0, _mm512_add_ps(acc[r][0], b0));
                    if (m1) _mm512_mask_storeu_ps(yr + 16, m1, _mm512_add_ps(acc[r][1], b1));
                }
            }
        }
    si_free(wp);
}

bool cpu_nbits_gemm_fits(const si_nbits *p) {
    return cpu_vec_get()->avx512 && p->N * p->nb * p->blob < ((int64_t)1 << 31) - 64;
}

bool cpu_nbits_gemm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                    const float *ap, int64_t kp, float *y) {
    ng_job j = {.p = p, .B = B, .zp8 = zp8, .scales = scales, .zpf = zpf, .bias = bias, .ap = ap, .kp = kp, .y = y,
                .groups = (p->N + NG_NR - 1) / NG_NR};
    atomic_init(&j.nomem, false);
    j.tasks = SI_MIN((int64_t)cpu_par_threads(), j.groups);
    cpu_par_for(j.tasks, 1, ng_task, &j);
    return !atomic_load(&j.nomem);
}

#else
bool cpu_nbits_gemm_fits(const si_nbits *p) {
    (void)p;
    return false;
}
bool cpu_nbits_gemm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                    const float *ap, int64_t kp, float *y) {
    (void)p, (void)B, (void)zp8, (void)scales, (void)zpf, (void)bias, (void)ap, (void)kp, (void)y;
    return false;
}
#endif
