/*
 * cpu_llm_nbits.c — MatMulNBits on the CPU device (float32 A).
 *
 * GEMV and the non-AVX-512 GEMM: the reduction over k may visit k in any order, so the rows of A are first permuted (once per call, M x K floats,
 * zero-padded to whole blocks) into the order the codes sit in a block's bytes: slot t of byte i holds
 * k = per*i + t (per = 8 / bits codes a byte), and Ap[blk][t][i] = A[blk*block + per*i + t]. Unpacking a block
 * then needs no shuffles: slot t of every byte, in byte order, lines up with Ap[blk][t][...].
 *
 * Few rows of A (decode: M = 1): a GEMV that never materialises the float weight. Each block of W is one pass over
 * its bytes: widen 16 (AVX-512) or 8 (AVX2) bytes to 32-bit lanes, shift and mask slot t out, convert, subtract the
 * block's zero point, FMA with Ap; the block's scale is applied once to its partial sums. Up to four rows of A
 * share each block's codes. Rows of W are split over the threads.
 *
 * More rows (prefill): with AVX-512, cpu_llm_nbgemm.c (A read in place, no permutation; panels of 32 columns x 256
 * values of k packed from the codes; an 8 x 32 microkernel); otherwise each thread dequantises a panel of 256 rows of W (in the permuted order, contiguous loops the compiler
 * vectorises) into a float buffer and multiplies it with oneDNN's sgemm (single-threaded inside the team).
 */
#include "device/cpu/cpu_llm.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NB_X86 1
#endif

#define NB_ROWS 4      /* rows of A per GEMV pass */
#define NB_GEMV_MAX 8  /* up to this many rows of A: GEMV passes, above: dequantised panels + sgemm */
#define NB_PANEL 256   /* rows of W per sgemm panel */

typedef struct nb_job {
    const si_nbits *p;
    const uint8_t *B, *zp8;
    const float *scales, *zpf, *bias;
    const float *ap; /* permuted rows of A, [M][kp] (kp = n_blocks * block, zero beyond K) */
    const float *asum; /* [M][nb]: the sum of each block of A (the AVX2 and AVX-512 GEMVs) */
    int64_t kp;
    float *y;
    atomic_bool nomem;
} nb_job;

/* Rows m0 .. m0+mr-1 of Y for output column n: the portable path. */
static void gemv_c(const nb_job *j, int64_t n, int64_t m0, int mr, float *out) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits, msk = (1 << bits) - 1;
    float acc[NB_ROWS] = {0};
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const float s = j->scales[n * p->nb + blk], z = si_nbits_zero(p, j->zp8, j->zpf, n, blk);
        const uint8_t *bb = j->B + (n * p->nb + blk) * p->blob;
        for (int r = 0; r < mr; r++) {
            const float *ap = j->ap + (m0 + r) * j->kp + blk * p->block;
            float d = 0;
            for (int t = 0; t < per; t++)
                for (int64_t i = 0; i < p->blob; i++) d += ((float)((bb[i] >> (t * bits)) & msk) - z) * ap[t * p->blob + i];
            acc[r] += s * d;
        }
    }
    for (int r = 0; r < mr; r++) out[r] = acc[r];
}

#ifdef NB_X86
/* Any bits with AVX2: blob is a multiple of 8 bytes. MR (1..4, a constant in each instance) rows of A. The zero
 * point out of the inner loop, as in the AVX-512 kernel (sum_k (q - z) a = sum_k q a - z sum_k a). */
__attribute__((always_inline, target("avx2,fma"))) static inline void gemv_avx2_body(const nb_job *j, int64_t n, int64_t m0, float *out,
                                                                                   const int MR) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits;
    const int64_t kp = j->kp, blob = p->blob;
    const __m256i msk = _mm256_set1_epi32((1 << bits) - 1);
    __m256 acc[NB_ROWS];
    float corr[NB_ROWS] = {0};
    for (int r = 0; r < MR; r++) acc[r] = _mm256_setzero_ps();
    const float *ap0 = j->ap + m0 * kp;
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const uint8_t *bb = j->B + (n * p->nb + blk) * blob;
        const float *ab = ap0 + blk * p->block;
        __m256 d[NB_ROWS];
        for (int r = 0; r < MR; r++) d[r] = _mm256_setzero_ps();
        for (int64_t i = 0; i < blob; i += 8) {
            const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(bb + i)));
            for (int t = 0; t < per; t++) {
                const __m256 w = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(x, _mm_cvtsi32_si128(t * bits)), msk));
                const float *at = ab + t * blob + i;
                for (int r = 0; r < MR; r++) d[r] = _mm256_fmadd_ps(w, _mm256_loadu_ps(at + r * kp), d[r]);
            }
        }
        const float sc = j->scales[n * p->nb + blk], zs = si_nbits_zero(p, j->zp8, j->zpf, n, blk) * sc;
        const __m256 s = _mm256_set1_ps(sc);
        for (int r = 0; r < MR; r++) {
            acc[r] = _mm256_fmadd_ps(d[r], s, acc[r]);
            corr[r] += zs * j->asum[(m0 + r) * p->nb + blk];
        }
    }
    for (int r = 0; r < MR; r++) {
        out[r] = cpu_hsum256(acc[r]) - corr[r];
    }
}

/* The zero points' share of rows m0 .. m0+MR-1 of column n: sum_blk z sw asum (asum: the sum of A's block), 16
 * blocks at a time. */
__attribute__((always_inline, target("avx512f"))) static inline void zcorr_avx512(const nb_job *j, int64_t n, int64_t m0, float *corr,
                                                                                const int MR) {
    const si_nbits *p = j->p;
    const int64_t nb = p->nb;
    __m512 c[NB_ROWS];
    for (int r = 0; r < MR; r++) c[r] = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
        const __mmask16 mk = (__mmask16)((1u << SI_MIN((int64_t)16, nb - b0)) - 1);
        const __m512 zs = cpu_nbits_zsw16(p, j->zp8, j->zpf, j->scales, n, b0);
        for (int r = 0; r < MR; r++) c[r] = _mm512_fmadd_ps(zs, _mm512_maskz_loadu_ps(mk, j->asum + (m0 + r) * nb + b0), c[r]);
    }
    for (int r = 0; r < MR; r++) corr[r] = _mm512_reduce_add_ps(c[r]);
}

/* 4-bit codes with AVX-512: 16 bytes (32 codes) per step, blob a multiple of 16. The zero point is taken out of the
 * inner loop: sum_k (q - z) a = sum_k q a - z sum_k a, the second sum per row and block computed once per call. */
__attribute__((always_inline, target("avx2,avx512f"))) static inline void gemv4_avx512_body(const nb_job *j, int64_t n, int64_t m0, float *out,
                                                                                          const int MR) {
    const si_nbits *p = j->p;
    const int64_t kp = j->kp, blob = p->blob;
    const __m512i m15 = _mm512_set1_epi32(15);
    __m512 acc[NB_ROWS];
    for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();
    const float *ap0 = j->ap + m0 * kp;
    const uint8_t *bn = j->B + n * p->nb * blob;
    const float *sn = j->scales + n * p->nb;
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const uint8_t *bb = bn + blk * blob;
        const float *ab = ap0 + blk * p->block;
        __m512 d[NB_ROWS];
        for (int r = 0; r < MR; r++) d[r] = _mm512_setzero_ps();
        for (int64_t i = 0; i < blob; i += 16) {
            const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(bb + i)));
            const __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(x, m15));
            const __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(x, 4));
            for (int r = 0; r < MR; r++)
                d[r] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(ab + r * kp + blob + i), _mm512_fmadd_ps(lo, _mm512_loadu_ps(ab + r * kp + i), d[r]));
        }
        const __m512 s = _mm512_set1_ps(sn[blk]);
        for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(d[r], s, acc[r]);
    }
    float corr[NB_ROWS];
    zcorr_avx512(j, n, m0, corr, MR);
    for (int r = 0; r < MR; r++) out[r] = _mm512_reduce_add_ps(acc[r]) - corr[r];
}

__attribute__((target("avx2,fma"))) static void gemv_avx2(const nb_job *j, int64_t n, int64_t m0, int mr, float *out) {
    switch (mr) { /* one instance per row count: the row loops unroll and the accumulators stay in registers */
    case 1: gemv_avx2_body(j, n, m0, out, 1); break;
    case 2: gemv_avx2_body(j, n, m0, out, 2); break;
    case 3: gemv_avx2_body(j, n, m0, out, 3); break;
    default: gemv_avx2_body(j, n, m0, out, 4); break;
    }
}

__attribute__((target("avx2,avx512f"))) static void gemv4_avx512(const nb_job *j, int64_t n, int64_t m0, int mr, float *out) {
    switch (mr) {
    case 1: gemv4_avx512_body(j, n, m0, out, 1); break;
    case 2: gemv4_avx512_body(j, n, m0, out, 2); break;
    case 3: gemv4_avx512_body(j, n, m0, out, 3); break;
    default: gemv4_avx512_body(j, n, m0, out, 4); break;
    }
}
#endif

typedef void (*gemv_fn)(const nb_job *j, int64_t n, int64_t m0, int mr, float *out);

static gemv_fn gemv_pick(const si_nbits *p) {
#ifdef NB_X86
    const cpu_vec *v = cpu_vec_get();
    if (v->avx512 && p->bits == 4 && p->blob % 16 == 0) return gemv4_avx512;
    if (v->avx2 && p->blob % 8 == 0) return gemv_avx2;
#endif
    (void)p;
    return gemv_c;
}

static void gemv_cols(void *ctx, int64_t lo, int64_t hi) {
    const nb_job *j = ctx;
    const si_nbits *p = j->p;
    const gemv_fn f = gemv_pick(p);
    for (int64_t m0 = 0; m0 < p->M; m0 += NB_ROWS) {
        const int mr = (int)SI_MIN((int64_t)NB_ROWS, p->M - m0);
        for (int64_t n = lo; n < hi; n++) {
            float out[NB_ROWS];
            f(j, n, m0, mr, out);
            for (int r = 0; r < mr; r++) j->y[(m0 + r) * p->N + n] = out[r] + (j->bias ? j->bias[n] : 0.0f);
        }
    }
}

#ifdef NB_X86
/* 4-bit rows with AVX-512 (blob a multiple of 16). */
__attribute__((target("avx512f"))) static void dequant4_avx512(const nb_job *j, int64_t n, float *w) {
    const si_nbits *p = j->p;
    const int64_t blob = p->blob;
    const __m512i m15 = _mm512_set1_epi32(15);
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const __m512 s = _mm512_set1_ps(j->scales[n * p->nb + blk]), z = _mm512_set1_ps(si_nbits_zero(p, j->zp8, j->zpf, n, blk));
        const uint8_t *bb = j->B + (n * p->nb + blk) * blob;
        float *wb = w + blk * p->block;
        for (int64_t i = 0; i < blob; i += 16) {
            const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(bb + i)));
            _mm512_storeu_ps(wb + i, _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(x, m15)), z), s));
            _mm512_storeu_ps(wb + blob + i, _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x, 4)), z), s));
        }
    }
}
#endif

/* Row n of W, dequantised in the permuted order into w[0..kp). */
static void dequant_row(const nb_job *j, int64_t n, float *w) {
    const si_nbits *p = j->p;
#ifdef NB_X86
    if (p->bits == 4 && p->blob % 16 == 0 && cpu_vec_get()->avx512) {
        dequant4_avx512(j, n, w);
        return;
    }
#endif
    const int bits = p->bits, per = 8 / bits, msk = (1 << bits) - 1;
    const int64_t blob = p->blob;
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const float s = j->scales[n * p->nb + blk], z = si_nbits_zero(p, j->zp8, j->zpf, n, blk);
        const uint8_t *bb = j->B + (n * p->nb + blk) * blob;
        float *wb = w + blk * p->block;
        for (int t = 0; t < per; t++) {
            const int sh = t * bits;
            float *wt = wb + t * blob;
            for (int64_t i = 0; i < blob; i++) wt[i] = ((float)((bb[i] >> sh) & msk) - z) * s;
        }
    }
}

/* Panels [lo, hi) of NB_PANEL rows of W: dequantise, then Y[:, panel] = Ap W_panel^T. */
static void gemm_panels(void *ctx, int64_t lo, int64_t hi) {
    nb_job *j = ctx;
    const si_nbits *p = j->p;
    float *w = si_malloc((size_t)(NB_PANEL * j->kp) * sizeof(float));
    if (!w) {
        atomic_store(&j->nomem, true);
        return;
    }
    for (int64_t pi = lo; pi < hi; pi++) {
        const int64_t n0 = pi * NB_PANEL, nn = SI_MIN((int64_t)NB_PANEL, p->N - n0);
        for (int64_t r = 0; r < nn; r++) dequant_row(j, n0 + r, w + r * j->kp);
        dnnl_status_t ds = dnnl_sgemm('N', 'T', p->M, nn, j->kp, 1.0f, j->ap, j->kp, w, j->kp, 0.0f, j->y + n0, p->N);
        if (ds != dnnl_success) { /* only out of memory is possible with valid arguments */
            atomic_store(&j->nomem, true);
            break;
        }
        if (j->bias)
            for (int64_t m = 0; m < p->M; m++)
                for (int64_t r = 0; r < nn; r++) j->y[m * p->N + n0 + r] += j->bias[n0 + r];
    }
    si_free(w);
}

bool cpu_nbits_mm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                  const float *a, float *y) {
    const int per = 8 / p->bits;
    const int64_t kp = p->nb * p->block;
    nb_job j = {.p = p, .B = B, .zp8 = zp8, .scales = scales, .zpf = zpf, .bias = bias, .kp = kp, .y = y};
    atomic_init(&j.nomem, false);
    if (p->M > NB_GEMV_MAX && cpu_nbits_gemm_fits(p)) { /* A in place, no copy */
        cpu_nbits_gemm(p, B, zp8, scales, zpf, bias, a, y);
        return true;
    }
    cpu_arena *hold;
    float *ap = cpu_scratch_take((size_t)(p->M * kp + p->M * p->nb) * sizeof(float), &hold);
    if (!ap) return false;
    float *asum = ap + p->M * kp;
    memset(ap, 0, (size_t)(p->M * kp) * sizeof(float)); /* the padding of a last partial block */
    for (int64_t m = 0; m < p->M; m++)
        for (int64_t blk = 0; blk < p->nb; blk++) {
            const float *ar = a + m * p->K + blk * p->block;
            float *dst = ap + m * kp + blk * p->block;
            const int64_t len = SI_MIN((int64_t)p->block, p->K - blk * p->block);
            if (per == 1) {
                memcpy(dst, ar, (size_t)len * sizeof(float));
            } else {
                for (int64_t i = 0; i < p->blob; i++)
                    for (int t = 0; t < per && i * per + t < len; t++) dst[t * p->blob + i] = ar[i * per + t];
            }
        }
    for (int64_t m = 0; p->M <= NB_GEMV_MAX && m < p->M; m++) /* the GEMVs' block sums (the padding is zero) */
        for (int64_t blk = 0; blk < p->nb; blk++) {
            const float *ab = ap + m * kp + blk * p->block;
            float sum = 0;
            for (int64_t i = 0; i < p->block; i++) sum += ab[i];
            asum[m * p->nb + blk] = sum;
        }
    j.ap = ap, j.asum = asum;
    if (p->M <= NB_GEMV_MAX) cpu_par_for(p->N, 16, gemv_cols, &j);
    else cpu_par_for((p->N + NB_PANEL - 1) / NB_PANEL, 1, gemm_panels, &j);
    cpu_arena_give(hold);
    return !atomic_load(&j.nomem);
}

si_result cpu_nbits_run(si_kctx *c) {
    si_nbits p;
    si_result st = si_nbits_prepare(c, &p);
    if (st) return st;
    si_tensor *y = si_out(c, 0);
    if (!y || p.M == 0) return SI_OK;
    if (si_in(c, 0)->dtype != SI_F32) return cpu_llm_ref(c);
    const bool ok = cpu_nbits_mm(&p, si_in(c, 1)->data, p.zp == NB_ZP_PACKED ? si_in(c, 3)->data : NULL, si_in(c, 2)->data,
                                 p.zp == NB_ZP_FLOAT ? si_in(c, 3)->data : NULL, p.bias ? si_in(c, 5)->data : NULL, si_in(c, 0)->data, y->data);
    return ok ? SI_OK : si_op_nomem(c);
}
