/*
 * cpu_unary.c — unary ops oneDNN has no accurate eltwise algorithm for, as the CPU device's own kernels, in the
 * layout their input already has: Erf, Softplus, Softsign.
 *
 * Erf alone (not inside the GELU pattern cpu_chain.c folds into a oneDNN post-op) is what a quantized transformer
 * leaves when QuantizeLinear / DequantizeLinear pairs split x * 0.5 * (1 + erf(x / sqrt 2)) apart; on the reference
 * kernel it took a third of a QDQ BERT's time. With AVX-512: for |x| < 0.5 the odd Taylor series to x^15 (relative
 * error under 1e-8), above it erf = 1 - (a1 t + ... + a5 t^5) e^(-x^2), t = 1 / (1 + p |x|) (Abramowitz and Stegun
 * 7.1.26, absolute error under 1.5e-7, so relative under 3e-7 where erf >= 0.52), the sign restored; NaN stays NaN.
 * The same on AVX2 (erf256: the C library's erff took a fifth of a QDQ BERT-base there); elsewhere erff.
 *
 * Softplus (a YOLOv4-style Mish is Softplus -> Tanh -> Mul, which cpu_chain.c folds into oneDNN's mish; a Softplus
 * alone lands here) = max(x, 0) + log1p(e^-|x|), with log1p(u) = 2 atanh(u / (2 + u)) as an odd series in
 * s = u / (2 + u) <= 1/3 to s^17 (relative error under 1e-8, no cancellation near u = 0), on AVX-512 and AVX2;
 * oneDNN's soft_relu
 * computes log(1 + e^x), 1e-3 relative error below x = -8. Softsign = x / (1 + |x|).
 *
 * Tanh, on CPUs without AVX-512 (cpu_own_tanh), where oneDNN's AVX2 tanh took 4 ns an element (an ESPCN
 * super-resolution net spent a third of its time in its two Tanh post-ops, ~3x ONNX Runtime's): for |x| < 0.5 the
 * odd Taylor series to x^15 (relative error under 1e-8), above it (1 - t) / (1 + t) with t = e^(-2|x|) <= 0.37 (no
 * cancellation), the sign restored; NaN stays NaN. cpu_chain.c then leaves Tanh out of a primitive's post-ops.
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>

#define UN_CHUNK 16384

typedef enum un_kind { UN_ERF, UN_SOFTPLUS, UN_SOFTSIGN, UN_TANH } un_kind;

typedef struct un_params {
    un_kind kind;
    int64_t n;
} un_params;

typedef struct un_job {
    const float *x;
    float *y;
    int64_t n;
    un_kind kind;
} un_job;

/* erf(x) / (2/sqrt(pi) x) for |x| < 0.5, Horner's order (highest first), and Abramowitz and Stegun 7.1.26's a5 .. a1. */
static const float erf_small[8] = {-1.0f / 75600, 1.0f / 9360, -1.0f / 1320, 1.0f / 216, -1.0f / 42, 1.0f / 10, -1.0f / 3, 1.0f};
static const float erf_as[5] = {1.061405429f, -1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f};

__attribute__((target("avx512f"))) static void erf512(const float *x, float *y, int64_t n) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i), a = _mm512_abs_ps(v);
        /* small: 2/sqrt(pi) x (1 - x^2/3 + x^4/10 - x^6/42 + x^8/216 - x^10/1320 + x^12/9360 - x^14/75600) */
        const __m512 z = _mm512_mul_ps(v, v);
        __m512 s = _mm512_set1_ps(erf_small[0]);
#pragma GCC unroll 7
        for (int k = 1; k < 8; k++) s = _mm512_fmadd_ps(s, z, _mm512_set1_ps(erf_small[k]));
        s = _mm512_mul_ps(_mm512_mul_ps(s, v), _mm512_set1_ps(1.12837916709551257f));
        /* large: 1 - poly(t) e^(-x^2) with the sign of x */
        const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, one));
        __m512 p = _mm512_set1_ps(erf_as[0]);
#pragma GCC unroll 4
        for (int k = 1; k < 5; k++) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(erf_as[k]));
        p = _mm512_mul_ps(p, t);
        __m512 l = _mm512_fnmadd_ps(p, cpu_exp512(_mm512_sub_ps(_mm512_setzero_ps(), z)), one);
        l = _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(l), _mm512_and_epi32(_mm512_castps_si512(v), sign))); /* x's sign */
        const __mmask16 small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.5f), _CMP_LT_OQ);
        __m512 r = _mm512_mask_blend_ps(small, l, s);
        r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v); /* NaN */
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* Erf on AVX2 + FMA, 8 at a time, the same steps as erf512 (the tail is the caller's). */
__attribute__((target("avx2,fma"))) static int64_t erf256(const float *x, float *y, int64_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i), a = _mm256_andnot_ps(sign, v);
        const __m256 z = _mm256_mul_ps(v, v);
        __m256 s = _mm256_set1_ps(erf_small[0]);
#pragma GCC unroll 7
        for (int k = 1; k < 8; k++) s = _mm256_fmadd_ps(s, z, _mm256_set1_ps(erf_small[k]));
        s = _mm256_mul_ps(_mm256_mul_ps(s, v), _mm256_set1_ps(1.12837916709551257f));
        const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, one));
        __m256 p = _mm256_set1_ps(erf_as[0]);
#pragma GCC unroll 4
        for (int k = 1; k < 5; k++) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(erf_as[k]));
        p = _mm256_mul_ps(p, t);
        __m256 l = _mm256_fnmadd_ps(p, cpu_exp256(_mm256_sub_ps(_mm256_setzero_ps(), z)), one);
        l = _mm256_or_ps(l, _mm256_and_ps(v, sign)); /* x's sign */
        __m256 r = _mm256_blendv_ps(l, s, _mm256_cmp_ps(a, _mm256_set1_ps(0.5f), _CMP_LT_OQ));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q))); /* NaN stays NaN */
    }
    return i;
}

/* atanh(s) / s = 1 + s^2/3 + s^4/5 + ... + s^16/17, Horner's order (highest first): log1p(u) = 2 s atanh(s) / s
 * with s = u / (2 + u). */
static const float atanh_odd[9] = {1.0f / 17, 1.0f / 15, 1.0f / 13, 1.0f / 11, 1.0f / 9, 1.0f / 7, 1.0f / 5, 1.0f / 3, 1.0f};

__attribute__((target("avx512f"))) static void softplus512(const float *x, float *y, int64_t n) {
    const __m512 zero = _mm512_setzero_ps(), two = _mm512_set1_ps(2.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 u = cpu_exp512(_mm512_sub_ps(zero, _mm512_abs_ps(v))); /* (0, 1] */
        const __m512 t = _mm512_div_ps(u, _mm512_add_ps(two, u)), z = _mm512_mul_ps(t, t);
        __m512 p = _mm512_set1_ps(atanh_odd[0]);
#pragma GCC unroll 8
        for (int k = 1; k < 9; k++) p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(atanh_odd[k]));
        const __m512 l = _mm512_mul_ps(_mm512_mul_ps(p, t), two); /* log1p(u) */
        __m512 r = _mm512_add_ps(_mm512_max_ps(v, zero), l);
        r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v); /* NaN */
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* Softplus on AVX2 + FMA, 8 at a time (the tail is the caller's). */
__attribute__((target("avx2,fma"))) static int64_t softplus256(const float *x, float *y, int64_t n) {
    const __m256 zero = _mm256_setzero_ps(), two = _mm256_set1_ps(2.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 u = cpu_exp256(_mm256_or_ps(v, sign)); /* e^-|x|, in (0, 1] */
        const __m256 t = _mm256_div_ps(u, _mm256_add_ps(two, u)), z = _mm256_mul_ps(t, t);
        __m256 p = _mm256_set1_ps(atanh_odd[0]);
#pragma GCC unroll 8
        for (int k = 1; k < 9; k++) p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(atanh_odd[k]));
        const __m256 r = _mm256_add_ps(_mm256_max_ps(v, zero), _mm256_mul_ps(_mm256_mul_ps(p, t), two));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q))); /* NaN stays NaN */
    }
    return i;
}

/* tanh(x) / x = 1 - x^2/3 + 2x^4/15 - ... (2^2n (2^2n - 1) B_2n / (2n)!), Horner's order (highest first). */
static const float tanh_odd[8] = {
    -1.4558343870513183e-3f, 3.592128036572481e-3f, -8.863235529902197e-3f, 2.1869488536155203e-2f,
    -5.396825396825397e-2f,  0.13333333333333333f,  -0.3333333333333333f,   1.0f,
};

/* Tanh on AVX2 + FMA, 8 at a time (the tail is the caller's). */
__attribute__((target("avx2,fma"))) static int64_t tanh256(const float *x, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), m2 = _mm256_set1_ps(-2.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i), a = _mm256_andnot_ps(sign, v), z = _mm256_mul_ps(v, v);
        __m256 p = _mm256_set1_ps(tanh_odd[0]);
#pragma GCC unroll 7
        for (int k = 1; k < 8; k++) p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(tanh_odd[k]));
        const __m256 small = _mm256_mul_ps(p, v);
        const __m256 t = cpu_exp256(_mm256_mul_ps(m2, a));
        __m256 l = _mm256_div_ps(_mm256_sub_ps(one, t), _mm256_add_ps(one, t));
        l = _mm256_or_ps(l, _mm256_and_ps(v, sign)); /* x's sign */
        __m256 r = _mm256_blendv_ps(l, small, _mm256_cmp_ps(a, half, _CMP_LT_OQ));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q))); /* NaN stays NaN */
    }
    return i;
}

bool cpu_own_tanh(void) {
    const cpu_vec *v = cpu_vec_get();
    return v->avx2 && !v->avx512 && !cpu_no_own();
}

static float softplus1(float x) {
    if (isnan(x)) return x;
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

static void un_units(void *ctx, int64_t lo, int64_t hi) {
    const un_job *j = ctx;
    const int64_t e0 = lo * UN_CHUNK, e1 = SI_MIN(hi * UN_CHUNK, j->n);
    const float *x = j->x;
    float *y = j->y;
    const bool v512 = cpu_vec_get()->avx512;
    switch (j->kind) {
    case UN_ERF: {
        if (v512) {
            erf512(x + e0, y + e0, e1 - e0);
            break;
        }
        int64_t i = e0 + (cpu_vec_get()->avx2 ? erf256(x + e0, y + e0, e1 - e0) : 0);
        for (; i < e1; i++) y[i] = erff(x[i]);
        break;
    }
    case UN_SOFTPLUS: {
        if (v512) {
            softplus512(x + e0, y + e0, e1 - e0);
            break;
        }
        int64_t i = e0 + (cpu_vec_get()->avx2 ? softplus256(x + e0, y + e0, e1 - e0) : 0);
        for (; i < e1; i++) y[i] = softplus1(x[i]);
        break;
    }
    case UN_SOFTSIGN:
        for (int64_t i = e0; i < e1; i++) y[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case UN_TANH: {
        int64_t i = e0 + (cpu_vec_get()->avx2 ? tanh256(x + e0, y + e0, e1 - e0) : 0);
        for (; i < e1; i++) y[i] = tanhf(x[i]);
        break;
    }
    }
}

/* ptr: X, Y */
static si_result un_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const un_params *p = params;
    un_job j = {.x = ptr[0], .y = ptr[1], .n = p->n, .kind = p->kind};
    cpu_par_for((j.n + UN_CHUNK - 1) / UN_CHUNK, 1, un_units, &j);
    return SI_OK;
}

si_result cpu_lower_own_unary(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (nd->domain[0] || !nd->op || !cpu_own_f32_io(g, nd, &X, &Y) || X->ndim != Y->ndim ||
        memcmp(X->dims, Y->dims, sizeof(int64_t) * (size_t)X->ndim))
        return SI_ERR_UNSUPPORTED;
    un_kind kind;
    const char *kname;
    switch (nd->op->id) {
    case SI_OP_ERF: kind = UN_ERF, kname = "own:erf"; break;
    case SI_OP_SOFTPLUS: kind = UN_SOFTPLUS, kname = "own:softplus"; break;
    case SI_OP_SOFTSIGN: kind = UN_SOFTSIGN, kname = "own:softsign"; break;
    case SI_OP_TANH:
        if (!cpu_own_tanh()) return SI_ERR_UNSUPPORTED;
        kind = UN_TANH, kname = "own:tanh";
        break;
    default: return SI_ERR_UNSUPPORTED;
    }
    un_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    p->kind = kind;
    p->n = si_shape_count(X->ndim, X->dims);
    /* any dense layout (plain, channels-last, blocked without padding): element-wise */
    const int in = cpu_pb_dense(b, nd->in[0]);
    if (in < 0) return SI_ERR_INTERNAL;
    if (b->p->bufs[in].dyn) return SI_ERR_UNSUPPORTED;
    int out = cpu_pb_new_out(b, nd->out[0], &b->p->bufs[in].md);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[2] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}};
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, kname, un_run, p, args, 2);
    if (!st) cpu_pb_consume(b, n);
    return st;
}
