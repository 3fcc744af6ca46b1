/*
 * cpu_llm.h — the CPU device's native kernels for the LLM ops (no oneDNN primitive fits them), shared by
 *
 *   cpu_llm.c        lowering (which nodes get a native step), threads, vector primitives, the fused norms
 *                    (SimplifiedLayerNormalization, Skip[Simplified]LayerNormalization) and GELUs
 *   cpu_llm_nbits.c  MatMulNBits: dequantize-in-the-loop GEMV for few rows, dequantized panels + oneDNN sgemm for more
 *   cpu_llm_nbgemm.c MatMulNBits prefill on AVX-512: panels packed from the codes, an 8 x 32 microkernel
 *   cpu_llm_nbq8.c   MatMulNBits at accuracy_level 4 (int8 A, as ONNX Runtime) on AVX-512 VNNI: GEMV and panel GEMM
 *   cpu_llm_moe.c    MoE (float weights): routing, tokens grouped by expert, GEMV or oneDNN sgemm per expert
 *   cpu_llm_attn.c   GroupQueryAttention, MultiHeadAttention and Attention (com.microsoft): a fused per-head loop
 *                    (Q.K, online softmax, .V); Attention's QKV projection on oneDNN's sgemm
 *
 * A native step is called like a reference-kernel step (cpu_pb_emit_native): plain float32 buffers, the node's
 * infer already run, but the outputs are not zero-filled: a kernel writes every element of what it outputs. Each kernel validates its node with the op's own prepare function
 * (ops/llm.h), so it refuses exactly what the reference kernel refuses, with the same message.
 *
 * Threads: the step runs on the thread count the device set for the plan (OpenMP, like oneDNN's primitives);
 * cpu_par_for splits work over that many threads: libgomp's team (the threads of oneDNN's primitives) where
 * libgomp is loaded, else the caller and helper threads of its own (cpu_llm.c).
 */
#ifndef SI_CPU_LLM_H
#define SI_CPU_LLM_H

#include "device/cpu/cpu.h"
#include "ops/llm.h"

#include <string.h>

/* fn(ctx, lo, hi) over [0, n) in chunks of `chunk`, on the plan's threads (dynamic scheduling). */
typedef void (*cpu_range_fn)(void *ctx, int64_t lo, int64_t hi);
void cpu_par_for(int64_t n, int64_t chunk, cpu_range_fn fn, void *ctx);
/* Threads cpu_par_for uses at most (>= 1). */
int cpu_par_threads(void);

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* e^x for x <= 0 (scores minus their running max; -inf gives 0): 2^n e^r, |r| <= ln2 / 2, degree-7 polynomial
 * (relative error under 1e-7). */
__attribute__((always_inline, target("avx512f"))) static inline __m512 cpu_exp512(__m512 x) {
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x); /* NaN stays NaN (max returns its second operand) */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.0f / 5040);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 720));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 120));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 24));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 6));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps((__mmask16)~tiny, _mm512_scalef_ps(y, n));
}

/* The sum and the max of the 8 lanes of x. */
__attribute__((always_inline, target("avx2,fma"))) static inline float cpu_hsum256(__m256 x) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}
__attribute__((always_inline, target("avx2,fma"))) static inline float cpu_hmax256(__m256 x) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* cpu_exp512 in 8 lanes (AVX2 + FMA): the same steps, so the same results. */
__attribute__((always_inline, target("avx2,fma"))) static inline __m256 cpu_exp256(__m256 x) {
    const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.0f / 5040);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 720));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 120));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 24));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 6));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(0.5f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f));
    const __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(y, s));
}

/* MatMulNBits with 4-bit codes: zero point x scale of blocks b0 .. b0+15 of output column n (lanes past nb zero),
 * for kernels that take the zero points out of their inner loop (sum (q - z) a = sum q a - z sum a). */
__attribute__((always_inline, target("avx2,avx512f"))) static inline __m512 cpu_nbits_zsw16(const si_nbits *p, const uint8_t *zp8,
                                                                                          const float *zpf, const float *scales,
                                                                                          int64_t n, int64_t b0) {
    const int64_t nb = p->nb, cnt = SI_MIN((int64_t)16, nb - b0);
    const __mmask16 mk = (__mmask16)((1u << cnt) - 1);
    const __m512 sw = _mm512_maskz_loadu_ps(mk, scales + n * nb + b0);
    __m512 z;
    if (p->zp == NB_ZP_FLOAT) {
        z = _mm512_maskz_loadu_ps(mk, zpf + n * nb + b0);
    } else if (p->zp == NB_ZP_NONE) {
        z = _mm512_set1_ps(8.0f);
    } else { /* packed, two blocks a byte, the even block low */
        uint64_t v = 0;
        memcpy(&v, zp8 + n * p->zrow + b0 / 2, (size_t)((cnt + 1) / 2));
        const __m128i e = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)v));
        const __m128i lo = _mm_and_si128(e, _mm_set1_epi16(15)), hi = _mm_srli_epi16(e, 4);
        const __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(lo, hi)), _mm_unpackhi_epi16(lo, hi), 1);
        z = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(w));
    }
    return _mm512_mul_ps(z, sw);
}

#endif

/* Vector primitives (AVX2+FMA when the CPU has them, else portable loops). */
typedef struct cpu_vec {
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*axpy)(float *y, float a, const float *x, int64_t n); /* y += a x */
    void (*scal)(float *y, float a, int64_t n);                 /* y *= a */
    bool avx2, avx512; /* the CPU has AVX2+FMA, AVX-512F (kernels with intrinsics check these) */
} cpu_vec;
const cpu_vec *cpu_vec_get(void);

/* The reference kernel for a node a native kernel does not take after all: zero-fills the outputs first (the
 * reference kernels expect that, native steps do not get it). */
si_result cpu_llm_ref(si_kctx *c);

/* MatMulNBits for many rows of A with AVX-512 or AVX2 + FMA (cpu_llm_nbgemm.c): Y[M, N] = A[M, K] W^T + bias, float32 A read in
 * place. _fits: the CPU and the sizes allow it. */
bool cpu_nbits_gemm_fits(const si_nbits *p);
void cpu_nbits_gemm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                    const float *a, float *y);

/* MatMulNBits' product Y[M, N] = A[M, K] W^T + bias on weights described by p (B, scales, packed zp8 or float zpf
 * or neither, bias optional; cpu_llm_nbits.c): GEMV passes for few rows of A, else panels. False: out of memory. */
bool cpu_nbits_mm(const si_nbits *p, const uint8_t *B, const uint8_t *zp8, const float *scales, const float *zpf, const float *bias,
                  const float *a, float *y);

/* Y[M, N] = A[M, K] W[N, K]^T + bias (bias optional) with the same kernel; _fits: the CPU and the sizes allow it. */
bool cpu_sgemm_nt_fits(int64_t N, int64_t K);
void cpu_sgemm_nt(const float *a, const float *w, const float *bias, float *y, int64_t M, int64_t N, int64_t K);

/* One float product Y[M, N] = A[M, K] B[K, N] with strided operands (cpu_llm_nbgemm.c, AVX2 + FMA; _cpu: this CPU
 * has them): A's rows lda apart (k contiguous), B's element (k, n) at b[k sbk + n sbn], Y's rows ldy apart (n
 * contiguous). B is first packed, group by group of 32 columns, into panels[g][K][32] (cpu_sgemm_pack_group, K x 32
 * floats per group); then rows of Y are computed from them (cpu_sgemm_packed_rows), and post, when set, is called
 * on each block of Y once it is final. */
typedef struct cpu_sgemm_strided {
    const float *a, *b;
    float *y;
    int64_t M, N, K, lda, sbk, sbn, ldy;
    void (*post)(const void *ctx, int64_t m0, int64_t mr, int64_t n0, int nc);
    const void *post_ctx;
} cpu_sgemm_strided;
#define CPU_SGEMM_GROUP 32 /* columns per group */
bool cpu_sgemm_strided_cpu(void);
void cpu_sgemm_pack_group(const cpu_sgemm_strided *q, int64_t g, float *dst);
void cpu_sgemm_packed_rows(const cpu_sgemm_strided *q, const float *packed, int64_t m0, int64_t mr); /* rows [m0, m0 + mr) */

/* MatMulNBits at accuracy_level 4 with int8 A (cpu_llm_nbq8.c); _cpu: this CPU has what it needs (AVX-512 VNNI, or
 * AVX2 + FMA: the same int8 A and integer block sums, by vpmaddubsw, and for prefill the float panel GEMM);
 * the kernel takes 4-bit codes in blocks of a multiple of 32 and falls back to cpu_nbits_run otherwise. */
bool cpu_nbits_q8_cpu(void);

/* The kernels (si_op_fn). */
si_result cpu_nbits_run(si_kctx *c);
si_result cpu_nbits_q8_run(si_kctx *c);
si_result cpu_gqa_run(si_kctx *c);
si_result cpu_mha_run(si_kctx *c);
si_result cpu_msattn_run(si_kctx *c);
si_result cpu_moe_run(si_kctx *c);
si_result cpu_qmoe_run(si_kctx *c);

#endif
