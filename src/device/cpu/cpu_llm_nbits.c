/*
 * cpu_llm_nbits.c — MatMulNBits on the CPU device (float32 A).
 *
 * Few rows of A (decode: M = 1): a GEMV that never materialises the float weight. The rows of A are first
 * permuted (once per call, M x K floats) into the order the codes sit in a block's bytes: slot t of byte i holds
 * k = per*i + t (per = 8 / bits codes a byte), so byte i's codes meet A[per*i + t] at Ap[t][i]. Then every block
 * of W is one pass over its bytes: widen 8 bytes to 32-bit lanes, shift and mask slot t out, convert, subtract the
 * block's zero point, FMA with the permuted A; the block's scale is applied once to its partial sums. Up to four
 * rows of A share each block's codes. Rows of W are split over the threads.
 *
 * More rows (prefill): each thread dequantises a panel of 64 rows of W into a float buffer (256 KiB for K = 1024)
 * and multiplies it with oneDNN's sgemm (single-threaded inside the team).
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
#define NB_PANEL 64    /* rows of W per sgemm panel */

typedef struct nb_job {
    const si_nbits *p;
    const uint8_t *B, *zp8;
    const float *scales, *zpf, *bias, *a;
    const float *ap; /* GEMV: permuted rows of A, [M][n_blocks * per * blob] (zero beyond K) */
    float *y;
    atomic_bool nomem;
} nb_job;

/* Rows m0 .. m0+mr-1 of Y for output column n: the portable path. */
static void gemv_c(const nb_job *j, int64_t n, int64_t m0, int mr, float *out) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits, msk = (1 << bits) - 1;
    const int64_t kp = p->nb * p->block;
    float acc[NB_ROWS] = {0};
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const float s = j->scales[n * p->nb + blk], z = si_nbits_zero(p, j->zp8, j->zpf, n, blk);
        const uint8_t *bb = j->B + (n * p->nb + blk) * p->blob;
        for (int r = 0; r < mr; r++) {
            const float *ap = j->ap + (m0 + r) * kp + blk * p->block;
            float d = 0;
            for (int t = 0; t < per; t++)
                for (int64_t i = 0; i < p->blob; i++) d += ((float)((bb[i] >> (t * bits)) & msk) - z) * ap[t * p->blob + i];
            acc[r] += s * d;
        }
    }
    for (int r = 0; r < mr; r++) out[r] = acc[r];
}

#ifdef NB_X86
/* The same with AVX2: blob is a multiple of 8 bytes. */
__attribute__((target("avx2,fma"))) static void gemv_avx2(const nb_job *j, int64_t n, int64_t m0, int mr, float *out) {
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits;
    const int64_t kp = p->nb * p->block, blob = p->blob;
    const __m256i msk = _mm256_set1_epi32((1 << bits) - 1);
    __m256 acc[NB_ROWS];
    for (int r = 0; r < NB_ROWS; r++) acc[r] = _mm256_setzero_ps();
    const float *ap0 = j->ap + m0 * kp;
    for (int64_t blk = 0; blk < p->nb; blk++) {
        const __m256 z = _mm256_set1_ps(si_nbits_zero(p, j->zp8, j->zpf, n, blk));
        const uint8_t *bb = j->B + (n * p->nb + blk) * blob;
        const float *ab = ap0 + blk * p->block;
        __m256 d[NB_ROWS];
        for (int r = 0; r < NB_ROWS; r++) d[r] = _mm256_setzero_ps();
        for (int64_t i = 0; i < blob; i += 8) {
            const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(bb + i)));
            for (int t = 0; t < per; t++) {
                const __m256i q = _mm256_and_si256(_mm256_srl_epi32(x, _mm_cvtsi32_si128(t * bits)), msk);
                const __m256 w = _mm256_sub_ps(_mm256_cvtepi32_ps(q), z);
                const float *at = ab + t * blob + i;
                d[0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(at), d[0]);
                for (int r = 1; r < mr; r++) d[r] = _mm256_fmadd_ps(w, _mm256_loadu_ps(at + r * kp), d[r]);
            }
        }
        const __m256 s = _mm256_set1_ps(j->scales[n * p->nb + blk]);
        for (int r = 0; r < mr; r++) acc[r] = _mm256_fmadd_ps(d[r], s, acc[r]);
    }
    for (int r = 0; r < mr; r++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        out[r] = _mm_cvtss_f32(h);
    }
}
#endif

static void gemv_cols(void *ctx, int64_t lo, int64_t hi) {
    const nb_job *j = ctx;
    const si_nbits *p = j->p;
    bool simd = false;
#ifdef NB_X86
    simd = cpu_vec_get()->avx2 && p->blob % 8 == 0;
#endif
    for (int64_t m0 = 0; m0 < p->M; m0 += NB_ROWS) {
        const int mr = (int)SI_MIN((int64_t)NB_ROWS, p->M - m0);
        for (int64_t n = lo; n < hi; n++) {
            float out[NB_ROWS];
#ifdef NB_X86
            if (simd) gemv_avx2(j, n, m0, mr, out);
            else
#endif
                gemv_c(j, n, m0, mr, out);
            for (int r = 0; r < mr; r++) j->y[(m0 + r) * p->N + n] = out[r] + (j->bias ? j->bias[n] : 0.0f);
        }
    }
}

/* Panels [lo, hi) of NB_PANEL rows of W: dequantise, then Y[:, panel] = A W_panel^T. */
static void gemm_panels(void *ctx, int64_t lo, int64_t hi) {
    nb_job *j = ctx;
    const si_nbits *p = j->p;
    const int bits = p->bits, per = 8 / bits, msk = (1 << bits) - 1;
    float *w = si_malloc((size_t)(NB_PANEL * p->K) * sizeof(float));
    if (!w) {
        atomic_store(&j->nomem, true);
        return;
    }
    for (int64_t pi = lo; pi < hi; pi++) {
        const int64_t n0 = pi * NB_PANEL, nn = SI_MIN((int64_t)NB_PANEL, p->N - n0);
        for (int64_t r = 0; r < nn; r++) {
            const int64_t n = n0 + r;
            float *wr = w + r * p->K;
            for (int64_t blk = 0; blk < p->nb; blk++) {
                const float s = j->scales[n * p->nb + blk], z = si_nbits_zero(p, j->zp8, j->zpf, n, blk);
                const uint8_t *bb = j->B + (n * p->nb + blk) * p->blob;
                const int64_t k0 = blk * p->block, kn = SI_MIN((int64_t)p->block, p->K - k0);
                for (int64_t jj = 0; jj < kn; jj++) wr[k0 + jj] = ((float)((bb[jj / per] >> ((jj % per) * bits)) & msk) - z) * s;
            }
        }
        dnnl_status_t ds = dnnl_sgemm('N', 'T', p->M, nn, p->K, 1.0f, j->a, p->K, w, p->K, 0.0f, j->y + n0, p->N);
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

si_result cpu_nbits_run(si_kctx *c) {
    si_nbits p;
    si_result st = si_nbits_prepare(c, &p);
    if (st) return st;
    si_tensor *y = si_out(c, 0);
    if (!y || p.M == 0) return SI_OK;
    if (si_in(c, 0)->dtype != SI_F32) return c->node->op->run(c);
    nb_job j = {.p = &p, .B = si_in(c, 1)->data, .zp8 = p.zp == NB_ZP_PACKED ? si_in(c, 3)->data : NULL,
                .scales = si_in(c, 2)->data, .zpf = p.zp == NB_ZP_FLOAT ? si_in(c, 3)->data : NULL,
                .bias = p.bias ? si_in(c, 5)->data : NULL, .a = si_in(c, 0)->data, .y = y->data};
    atomic_init(&j.nomem, false);
    if (p.M > NB_GEMV_MAX) {
        cpu_par_for((p.N + NB_PANEL - 1) / NB_PANEL, 1, gemm_panels, &j);
        return atomic_load(&j.nomem) ? si_op_nomem(c) : SI_OK;
    }
    const int per = 8 / p.bits;
    const int64_t kp = p.nb * p.block;
    float *ap = si_calloc((size_t)(p.M * kp), sizeof(float));
    if (!ap) return si_op_nomem(c);
    for (int64_t m = 0; m < p.M; m++)
        for (int64_t k = 0; k < p.K; k++) {
            const int64_t blk = k / p.block, jj = k % p.block;
            ap[m * kp + blk * p.block + (jj % per) * p.blob + jj / per] = j.a[m * p.K + k];
        }
    j.ap = ap;
    cpu_par_for(p.N, 16, gemv_cols, &j);
    si_free(ap);
    return SI_OK;
}
