/*
 * nn.c — reference kernels for the neural-network ops of the default ONNX domain:
 *   Conv, ConvTranspose, MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool, GlobalLpPool,
 *   BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization, RMSNormalization,
 *   LpNormalization, LRN, MeanVarianceNormalization, Gemm, MatMul, Softmax, LogSoftmax, Hardmax, Dropout,
 *   Resize, Upsample, Pad, Einsum.
 *
 * Numerics: the big ops (Conv, ConvTranspose, Gemm, MatMul) run float32 (and float16/bfloat16 converted to
 * float32) through one shared cache-blocked GEMM (nn_sgemm); float64 uses a plain triple loop in double;
 * integer MatMul/Gemm accumulate in 64-bit integers. The other ops convert their input once to double,
 * compute in double and convert the result back (rounding like ONNX Cast), so that per-element type dispatch
 * stays out of the inner loops.
 *
 * Convolutions and pooling support 1, 2 and 3 spatial dimensions: all geometry is mapped onto 3-D with
 * leading unit dimensions.
 */
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* =========================================================================================================
 * Small helpers
 */

#define NN_SP 3 /* spatial dims handled by conv/pool kernels (1-D and 2-D are mapped onto 3-D) */

#define NN_T_GEMM (SI_T_FLOATS | SI_T(SI_I32) | SI_T(SI_I64) | SI_T(SI_U32) | SI_T(SI_U64))

static const si_tensor *nn_in(const si_kctx *c, int i)
{
    return (i >= 0 && i < c->n_in) ? c->in[i] : NULL;
}

static si_tensor *nn_out(const si_kctx *c, int k)
{
    return (k >= 0 && k < c->n_out) ? c->out[k] : NULL;
}

/* An optional input that is present and has at least one element (empty tensors count as absent, which is
 * how ONNX models spell "not given" for Resize's roi/scales and similar inputs). */
static const si_tensor *nn_in_nonempty(const si_kctx *c, int i)
{
    const si_tensor *t = nn_in(c, i);
    if (t && si_shape_count(t->ndim, t->dims) == 0) return NULL;
    return t;
}

static int64_t nn_count(const si_tensor *t)
{
    return si_shape_count(t->ndim, t->dims);
}

static bool nn_type_in(si_dtype dt, uint32_t mask)
{
    return (int)dt > 0 && (int)dt < 32 && (SI_T(dt) & mask) != 0;
}

static si_result nn_check_type(const si_kctx *c, const si_tensor *t, uint32_t mask, const char *what)
{
    if (!nn_type_in(t->dtype, mask))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%s: element type %s is not supported", what,
                         si_dtype_name(t->dtype));
    return SI_OK;
}

static si_result nn_same_type(const si_kctx *c, const si_tensor *a, const si_tensor *b, const char *what)
{
    if (a->dtype != b->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has element type %s, expected %s like the first input", what,
                         si_dtype_name(b->dtype), si_dtype_name(a->dtype));
    return SI_OK;
}

static si_result nn_nomem(const si_kctx *c)
{
    return si_op_err(c, SI_ERR_NO_MEM, "out of memory");
}

/* Input i must be present; with need_data its values must be known (else SI_SHAPE_DYNAMIC). */
static si_result nn_need(const si_kctx *c, int i, bool need_data)
{
    const si_tensor *t = nn_in(c, i);
    if (!t) return si_op_err(c, SI_ERR_INVALID_ARG, "required input %d is missing", i);
    if (need_data && !t->data && nn_count(t) > 0) return SI_SHAPE_DYNAMIC;
    return SI_OK;
}

static si_result nn_set_out(si_kctx *c, int k, si_dtype dt, int ndim, const int64_t *dims)
{
    if (!nn_out(c, k)) return SI_OK;
    return si_set_out(c, k, dt, ndim, dims);
}

static int64_t nn_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static int64_t nn_ceildiv(int64_t a, int64_t b)
{
    return -nn_floordiv(-a, b);
}

static int64_t nn_prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Reads an INTS attribute of exactly n values; absent (or empty) gives n copies of dflt. */
static si_result nn_attr_ints_n(const si_kctx *c, const char *name, int n, int64_t dflt, int64_t *out)
{
    int cnt = 0;
    const int64_t *v = si_attr_ints(c->node, name, &cnt);
    if (!v || cnt == 0) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return SI_OK;
    }
    if (cnt != n) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has %d values, expected %d", name, cnt, n);
    memcpy(out, v, (size_t)n * sizeof(int64_t));
    return SI_OK;
}

/* A number attribute that some opsets declare as INT and others as FLOAT (LpPool's p). */
static double nn_attr_num(const si_kctx *c, const char *name, double dflt)
{
    const si_attr *a = si_node_attr(c->node, name);
    if (!a) return dflt;
    if (a->type == SI_ATTR_INT) return (double)a->i;
    if (a->type == SI_ATTR_FLOAT) return (double)a->f;
    return dflt;
}

/* Whole tensor converted to double / float (new buffers, at least one element). NULL when out of memory. */
static double *nn_to_f64(const si_tensor *t)
{
    int64_t n = nn_count(t);
    double *d = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!d) return NULL;
    if (n > 0 && t->dtype == SI_F32) {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = p[i];
    } else if (n > 0 && t->dtype == SI_F64) {
        memcpy(d, t->data, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++) d[i] = si_load_f64(t->dtype, t->data, i);
    }
    return d;
}

static float *nn_to_f32(const si_tensor *t)
{
    int64_t n = nn_count(t);
    float *d = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!d) return NULL;
    if (n > 0 && t->dtype == SI_F32) {
        memcpy(d, t->data, (size_t)n * sizeof(float));
    } else if (t->dtype == SI_F16) {
        const uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = si_f16_to_f32(p[i]);
    } else if (t->dtype == SI_BF16) {
        const uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = si_bf16_to_f32(p[i]);
    } else {
        for (int64_t i = 0; i < n; i++) d[i] = (float)si_load_f64(t->dtype, t->data, i);
    }
    return d;
}

static void nn_from_f64(si_tensor *t, const double *v)
{
    int64_t n = nn_count(t);
    if (n <= 0 || !t->data) return;
    if (t->dtype == SI_F32) {
        float *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = (float)v[i];
    } else if (t->dtype == SI_F64) {
        memcpy(t->data, v, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++) si_store_f64(t->dtype, t->data, i, v[i]);
    }
}

static void nn_from_f32(si_tensor *t, const float *v)
{
    int64_t n = nn_count(t);
    if (n <= 0 || !t->data) return;
    if (t->dtype == SI_F32) {
        memcpy(t->data, v, (size_t)n * sizeof(float));
    } else if (t->dtype == SI_F16) {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = si_f32_to_f16(v[i]);
    } else if (t->dtype == SI_BF16) {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = si_f32_to_bf16(v[i]);
    } else {
        for (int64_t i = 0; i < n; i++) si_store_f64(t->dtype, t->data, i, (double)v[i]);
    }
}

/* Values of an integer or float tensor as doubles into a caller array of at most max entries. */
static si_result nn_read_doubles(const si_kctx *c, const si_tensor *t, int max, double *out, int *n, const char *what)
{
    int64_t cnt = nn_count(t);
    if (cnt > max) return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, at most %d allowed", what,
                                    (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++) out[i] = si_load_f64(t->dtype, t->data, i);
    *n = (int)cnt;
    return SI_OK;
}

static si_result nn_read_ints(const si_kctx *c, const si_tensor *t, int max, int64_t *out, int *n, const char *what)
{
    if (!si_dtype_is_int(t->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be an integer tensor, got %s", what,
                         si_dtype_name(t->dtype));
    int64_t cnt = nn_count(t);
    if (cnt > max) return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, at most %d allowed", what,
                                    (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++) out[i] = si_load_i64(t->dtype, t->data, i);
    *n = (int)cnt;
    return SI_OK;
}

/* =========================================================================================================
 * GEMM: C[M x N] (=|+=) A[M x K] * B[K x N] with arbitrary row/column strides (so transposes are free).
 * float32: packed, cache-blocked, with a 6x8 register micro-kernel written in plain C that compilers
 * vectorise. float64: plain loops.
 */

#define NN_MR 6
#define NN_NR 8
#define NN_KC 256
#define NN_MC 96
#define NN_NC 2048

static void nn_ukernel(int64_t kc, const float *restrict a, const float *restrict b, float *restrict cc,
                       int64_t ldc, int mr, int nr, bool acc)
{
    float t[NN_MR][NN_NR];
    for (int i = 0; i < NN_MR; i++)
        for (int j = 0; j < NN_NR; j++) t[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < NN_MR; i++) {
            const float av = a[i];
            for (int j = 0; j < NN_NR; j++) t[i][j] += av * b[j];
        }
        a += NN_MR;
        b += NN_NR;
    }
    if (mr == NN_MR && nr == NN_NR) {
        if (acc) {
            for (int i = 0; i < NN_MR; i++)
                for (int j = 0; j < NN_NR; j++) cc[i * ldc + j] += t[i][j];
        } else {
            for (int i = 0; i < NN_MR; i++)
                for (int j = 0; j < NN_NR; j++) cc[i * ldc + j] = t[i][j];
        }
    } else {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) cc[i * ldc + j] = acc ? cc[i * ldc + j] + t[i][j] : t[i][j];
    }
}

static void nn_pack_a(int64_t mc, int64_t kc, const float *a, int64_t rs, int64_t cs, float *p)
{
    for (int64_t i0 = 0; i0 < mc; i0 += NN_MR) {
        int mr = (int)SI_MIN(mc - i0, (int64_t)NN_MR);
        for (int64_t k = 0; k < kc; k++) {
            const float *src = a + i0 * rs + k * cs;
            for (int i = 0; i < mr; i++) p[i] = src[i * rs];
            for (int i = mr; i < NN_MR; i++) p[i] = 0.0f;
            p += NN_MR;
        }
    }
}

static void nn_pack_b(int64_t kc, int64_t nc, const float *b, int64_t rs, int64_t cs, float *p)
{
    for (int64_t j0 = 0; j0 < nc; j0 += NN_NR) {
        int nr = (int)SI_MIN(nc - j0, (int64_t)NN_NR);
        for (int64_t k = 0; k < kc; k++) {
            const float *src = b + k * rs + j0 * cs;
            if (cs == 1 && nr == NN_NR) {
                memcpy(p, src, NN_NR * sizeof(float));
            } else {
                for (int j = 0; j < nr; j++) p[j] = src[j * cs];
                for (int j = nr; j < NN_NR; j++) p[j] = 0.0f;
            }
            p += NN_NR;
        }
    }
}

static float nn_sdot(int64_t n, const float *a, int64_t sa, const float *b, int64_t sb)
{
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    if (sa == 1 && sb == 1) {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    }
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i * sa] * b[i * sb];
    return r;
}

/* C = A*B (accumulate: C += A*B). Returns false when out of memory (C is then unchanged). */
static bool nn_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa, const float *B,
                     int64_t rsb, int64_t csb, float *C, int64_t ldc, bool accumulate)
{
    if (M <= 0 || N <= 0) return true;
    if (K <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return true;
    }
    if (M < 4) {
        /* matrix-vector shaped: no packing, stream B once per row of A */
        for (int64_t i = 0; i < M; i++) {
            float *cr = C + i * ldc;
            const float *ar = A + i * rsa;
            if (csb == 1) {
                if (!accumulate) memset(cr, 0, (size_t)N * sizeof(float));
                for (int64_t k = 0; k < K; k++) {
                    const float av = ar[k * csa];
                    const float *br = B + k * rsb;
                    for (int64_t j = 0; j < N; j++) cr[j] += av * br[j];
                }
            } else {
                for (int64_t j = 0; j < N; j++) {
                    float v = nn_sdot(K, ar, csa, B + j * csb, rsb);
                    cr[j] = accumulate ? cr[j] + v : v;
                }
            }
        }
        return true;
    }
    int64_t ncap = SI_MIN(N, (int64_t)NN_NC);
    ncap = (ncap + NN_NR - 1) / NN_NR * NN_NR;
    int64_t kcap = SI_MIN(K, (int64_t)NN_KC);
    int64_t mcap = (SI_MIN(M, (int64_t)NN_MC) + NN_MR - 1) / NN_MR * NN_MR;
    float *pa = si_malloc((size_t)(mcap * kcap) * sizeof(float));
    float *pb = si_malloc((size_t)(ncap * kcap) * sizeof(float));
    if (!pa || !pb) {
        si_free(pa);
        si_free(pb);
        return false;
    }
    for (int64_t jc = 0; jc < N; jc += NN_NC) {
        int64_t nc = SI_MIN(N - jc, (int64_t)NN_NC);
        for (int64_t pc = 0; pc < K; pc += NN_KC) {
            int64_t kc = SI_MIN(K - pc, (int64_t)NN_KC);
            bool acc = accumulate || pc > 0;
            nn_pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, pb);
            for (int64_t ic = 0; ic < M; ic += NN_MC) {
                int64_t mc = SI_MIN(M - ic, (int64_t)NN_MC);
                nn_pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, pa);
                for (int64_t jr = 0; jr < nc; jr += NN_NR) {
                    int nr = (int)SI_MIN(nc - jr, (int64_t)NN_NR);
                    for (int64_t ir = 0; ir < mc; ir += NN_MR) {
                        int mr = (int)SI_MIN(mc - ir, (int64_t)NN_MR);
                        nn_ukernel(kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, acc);
                    }
                }
            }
        }
    }
    si_free(pa);
    si_free(pb);
    return true;
}

static void nn_dgemm(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa, const double *B,
                     int64_t rsb, int64_t csb, double *C, int64_t ldc, bool accumulate)
{
    for (int64_t i = 0; i < M; i++) {
        double *cr = C + i * ldc;
        if (!accumulate)
            for (int64_t j = 0; j < N; j++) cr[j] = 0.0;
        for (int64_t k = 0; k < K; k++) {
            const double av = A[i * rsa + k * csa];
            const double *br = B + k * rsb;
            for (int64_t j = 0; j < N; j++) cr[j] += av * br[j * csb];
        }
    }
}

/* Integer GEMM with wrap-around 64-bit arithmetic (operands already widened to int64). */
static void nn_igemm(int64_t M, int64_t N, int64_t K, const int64_t *A, int64_t rsa, int64_t csa, const int64_t *B,
                     int64_t rsb, int64_t csb, int64_t *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        uint64_t *cr = (uint64_t *)(C + i * ldc);
        for (int64_t j = 0; j < N; j++) cr[j] = 0;
        for (int64_t k = 0; k < K; k++) {
            const uint64_t av = (uint64_t)A[i * rsa + k * csa];
            const int64_t *br = B + k * rsb;
            for (int64_t j = 0; j < N; j++) cr[j] += av * (uint64_t)br[j * csb];
        }
    }
}

static int64_t *nn_to_i64(const si_tensor *t)
{
    int64_t n = nn_count(t);
    int64_t *d = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) d[i] = si_load_i64(t->dtype, t->data, i);
    return d;
}

/* =========================================================================================================
 * Convolution / pooling geometry
 */

typedef struct nn_geom {
    int nsp; /* real spatial dims; the arrays hold 3-D geometry with leading unit dims */
    int64_t in[NN_SP], out[NN_SP], k[NN_SP], s[NN_SP], d[NN_SP], pb[NN_SP], pe[NN_SP];
} nn_geom;

enum { NN_PAD_NOTSET, NN_PAD_VALID, NN_PAD_SAME_UPPER, NN_PAD_SAME_LOWER };

static si_result nn_auto_pad(const si_kctx *c, int *out)
{
    const char *s = si_attr_str(c->node, "auto_pad", "NOTSET");
    if (!s[0] || !strcmp(s, "NOTSET")) *out = NN_PAD_NOTSET;
    else if (!strcmp(s, "VALID")) *out = NN_PAD_VALID;
    else if (!strcmp(s, "SAME_UPPER")) *out = NN_PAD_SAME_UPPER;
    else if (!strcmp(s, "SAME_LOWER")) *out = NN_PAD_SAME_LOWER;
    else return si_op_err(c, SI_ERR_INVALID_ARG, "unknown auto_pad '%s'", s);
    return SI_OK;
}

static void nn_geom_clear(nn_geom *g, int nsp)
{
    g->nsp = nsp;
    for (int i = 0; i < NN_SP; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
}

static si_result nn_spatial_rank(const si_kctx *c, const si_tensor *x, int *nsp)
{
    if (x->ndim < 3)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 3 (N, C, spatial...), got rank %d",
                         x->ndim);
    if (x->ndim - 2 > NN_SP)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%d spatial dimensions are not supported (1 to %d)", x->ndim - 2,
                         NN_SP);
    *nsp = x->ndim - 2;
    return SI_OK;
}

/* Strides, dilations, pads, auto_pad (and ceil_mode when ceil_ok) for a forward window op (Conv, pools) over
 * input spatial shape `in` with kernel `k`; computes the output spatial shape. */
static si_result nn_geom_init(const si_kctx *c, int nsp, const int64_t *in, const int64_t *k, bool ceil_ok,
                              nn_geom *g)
{
    int64_t s[NN_SP], d[NN_SP], pads[2 * NN_SP];
    int ap = 0;
    si_result st;
    if ((st = nn_attr_ints_n(c, "strides", nsp, 1, s)) || (st = nn_attr_ints_n(c, "dilations", nsp, 1, d)) ||
        (st = nn_attr_ints_n(c, "pads", 2 * nsp, 0, pads)) || (st = nn_auto_pad(c, &ap)))
        return st;
    int64_t ceil_mode = ceil_ok ? si_attr_int(c->node, "ceil_mode", 0) : 0;
    nn_geom_clear(g, nsp);
    int off = NN_SP - nsp;
    for (int i = 0; i < nsp; i++) {
        if (k[i] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "kernel size %lld must be positive", (long long)k[i]);
        if (s[i] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "stride %lld must be positive", (long long)s[i]);
        if (d[i] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "dilation %lld must be positive", (long long)d[i]);
        int64_t pb = pads[i], pe = pads[i + nsp], o;
        if (pb < 0 || pe < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "pads must not be negative");
        int64_t eff = (k[i] - 1) * d[i] + 1;
        if (ap == NN_PAD_SAME_UPPER || ap == NN_PAD_SAME_LOWER) {
            o = nn_ceildiv(in[i], s[i]);
            int64_t total = SI_MAX((int64_t)0, (o - 1) * s[i] + eff - in[i]);
            if (ap == NN_PAD_SAME_UPPER) {
                pb = total / 2;
                pe = total - pb;
            } else {
                pe = total / 2;
                pb = total - pe;
            }
        } else {
            if (ap == NN_PAD_VALID) pb = pe = 0;
            int64_t span = in[i] + pb + pe - eff;
            if (span < 0)
                return si_op_err(c, SI_ERR_INVALID_ARG,
                                 "window of %lld (kernel %lld, dilation %lld) is larger than the padded input %lld",
                                 (long long)eff, (long long)k[i], (long long)d[i], (long long)(in[i] + pb + pe));
            o = (ceil_mode ? nn_ceildiv(span, s[i]) : span / s[i]) + 1;
            /* the last window must start inside the input or its left padding */
            if (ceil_mode && (o - 1) * s[i] >= in[i] + pb) o--;
        }
        if (o < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "output spatial size would be %lld", (long long)o);
        g->in[off + i] = in[i];
        g->out[off + i] = o;
        g->k[off + i] = k[i];
        g->s[off + i] = s[i];
        g->d[off + i] = d[i];
        g->pb[off + i] = pb;
        g->pe[off + i] = pe;
    }
    return SI_OK;
}

/* Common description of a Conv / ConvTranspose node. */
typedef struct nn_conv {
    nn_geom g;       /* Conv: in = X spatial, out = Y spatial. ConvTranspose: the same (X -> Y). */
    int64_t N, C, M; /* batch, input channels, output channels */
    int64_t group, cg, mg, kp; /* group count, in/out channels per group, kernel elements */
} nn_conv;

static int64_t nn_geom_in_size(const nn_geom *g)
{
    return g->in[0] * g->in[1] * g->in[2];
}

static int64_t nn_geom_out_size(const nn_geom *g)
{
    return g->out[0] * g->out[1] * g->out[2];
}

/* Floats (or doubles) allowed in one im2col / col2im chunk. */
#define NN_COL_BUDGET ((int64_t)1 << 21)

static bool nn_dgemm_b(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa, const double *B,
                       int64_t rsb, int64_t csb, double *C, int64_t ldc, bool accumulate)
{
    nn_dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
    return true;
}

/* ---- float kernels for Conv / ConvTranspose ---- */

/* Columns for output rows q in [q0, q1) (q enumerates (od, oh) pairs, each row has OW columns) of one
 * group: col[(ch, ka, kb, ke)][(q - q0) * OW + ow]. */
static void nn_im2col_f32(const nn_geom *g, const float *x, int64_t cg, int64_t q0, int64_t q1, float *col)
{
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2], OH = g->out[1], OW = g->out[2];
    const int64_t ncols = (q1 - q0) * OW, sw = g->s[2];
    float *dst = col;
    for (int64_t ch = 0; ch < cg; ch++) {
        const float *xc = x + ch * ID * IH * IW;
        for (int64_t ka = 0; ka < g->k[0]; ka++)
            for (int64_t kb = 0; kb < g->k[1]; kb++)
                for (int64_t ke = 0; ke < g->k[2]; ke++, dst += ncols) {
                    const int64_t iw0 = ke * g->d[2] - g->pb[2];
                    int64_t lo = 0, hi = OW;
                    while (lo < OW && iw0 + lo * sw < 0) lo++;
                    while (hi > lo && iw0 + (hi - 1) * sw >= IW) hi--;
                    for (int64_t q = q0; q < q1; q++) {
                        float *row = dst + (q - q0) * OW;
                        const int64_t id = (q / OH) * g->s[0] - g->pb[0] + ka * g->d[0];
                        const int64_t ih = (q % OH) * g->s[1] - g->pb[1] + kb * g->d[1];
                        if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                            for (int64_t o = 0; o < OW; o++) row[o] = 0;
                            continue;
                        }
                        const float *xr = xc + (id * IH + ih) * IW;
                        for (int64_t o = 0; o < lo; o++) row[o] = 0;
                        if (sw == 1) {
                            if (hi > lo) memcpy(row + lo, xr + (iw0 + lo), (size_t)(hi - lo) * sizeof(float));
                        } else {
                            for (int64_t o = lo; o < hi; o++) row[o] = xr[iw0 + o * sw];
                        }
                        for (int64_t o = hi; o < OW; o++) row[o] = 0;
                    }
                }
    }
}

/* Scatter-add of columns for input rows q in [q0, q1) (q enumerates (id, ih), each with IW columns) into
 * the mg output channels of one group (ConvTranspose). */
static void nn_col2im_f32(const nn_geom *g, const float *col, int64_t mg, int64_t q0, int64_t q1, float *y)
{
    const int64_t IH = g->in[1], IW = g->in[2], OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t ncols = (q1 - q0) * IW, osz = OD * OH * OW, sw = g->s[2];
    const float *src = col;
    for (int64_t m = 0; m < mg; m++) {
        float *ym = y + m * osz;
        for (int64_t ka = 0; ka < g->k[0]; ka++)
            for (int64_t kb = 0; kb < g->k[1]; kb++)
                for (int64_t ke = 0; ke < g->k[2]; ke++, src += ncols) {
                    const int64_t ow0 = ke * g->d[2] - g->pb[2];
                    int64_t lo = 0, hi = IW;
                    while (lo < IW && ow0 + lo * sw < 0) lo++;
                    while (hi > lo && ow0 + (hi - 1) * sw >= OW) hi--;
                    for (int64_t q = q0; q < q1; q++) {
                        const int64_t od = (q / IH) * g->s[0] - g->pb[0] + ka * g->d[0];
                        const int64_t oh = (q % IH) * g->s[1] - g->pb[1] + kb * g->d[1];
                        if (od < 0 || od >= OD || oh < 0 || oh >= OH) continue;
                        float *yr = ym + (od * OH + oh) * OW;
                        const float *row = src + (q - q0) * IW;
                        for (int64_t i = lo; i < hi; i++) yr[ow0 + i * sw] += row[i];
                    }
                }
    }
}

static void nn_add_bias_f32(float *y, const float *b, int64_t m, int64_t sz)
{
    for (int64_t i = 0; i < m; i++) {
        const float v = b[i];
        float *r = y + i * sz;
        for (int64_t j = 0; j < sz; j++) r[j] += v;
    }
}

/* Y = Conv(X, W) + B for all batches and groups. false when out of memory. */
static bool nn_conv_core_f32(const nn_conv *p, const float *x, const float *w, const float *b, float *y)
{
    const nn_geom *g = &p->g;
    const int64_t insz = nn_geom_in_size(g), outsz = nn_geom_out_size(g), OW = g->out[2];
    const int64_t kr = p->cg * p->kp, nq = g->out[0] * g->out[1];
    bool pointwise = true;
    for (int i = 0; i < NN_SP; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 || g->pe[i] != 0) pointwise = false;
    float *col = NULL;
    int64_t rows = nq;
    if (!pointwise) {
        rows = SI_MAX((int64_t)1, SI_MIN(nq, NN_COL_BUDGET / SI_MAX((int64_t)1, kr * OW)));
        col = si_malloc((size_t)(kr * rows * OW) * sizeof(float) + 1);
        if (!col) return false;
    }
    bool ok = true;
    for (int64_t n = 0; n < p->N && ok; n++)
        for (int64_t gi = 0; gi < p->group && ok; gi++) {
            const float *xg = x + (n * p->C + gi * p->cg) * insz;
            const float *wg = w + gi * p->mg * kr;
            float *yg = y + (n * p->M + gi * p->mg) * outsz;
            if (pointwise) {
                ok = nn_sgemm(p->mg, outsz, p->cg, wg, kr, 1, xg, insz, 1, yg, outsz, false);
            } else {
                for (int64_t q0 = 0; q0 < nq && ok; q0 += rows) {
                    int64_t q1 = SI_MIN(nq, q0 + rows), ncols = (q1 - q0) * OW;
                    nn_im2col_f32(g, xg, p->cg, q0, q1, col);
                    ok = nn_sgemm(p->mg, ncols, kr, wg, kr, 1, col, ncols, 1, yg + q0 * OW, outsz, false);
                }
            }
            if (ok && b) nn_add_bias_f32(yg, b + gi * p->mg, p->mg, outsz);
        }
    si_free(col);
    return ok;
}

/* Y = ConvTranspose(X, W) + B. W is [C, M/group, k...]. false when out of memory. */
static bool nn_convt_core_f32(const nn_conv *p, const float *x, const float *w, const float *b, float *y)
{
    const nn_geom *g = &p->g;
    const int64_t insz = nn_geom_in_size(g), outsz = nn_geom_out_size(g), IW = g->in[2];
    const int64_t kr = p->mg * p->kp, nq = g->in[0] * g->in[1];
    const int64_t rows = SI_MAX((int64_t)1, SI_MIN(nq, NN_COL_BUDGET / SI_MAX((int64_t)1, kr * IW)));
    float *col = si_malloc((size_t)(kr * rows * IW) * sizeof(float) + 1);
    if (!col) return false;
    for (int64_t i = 0; i < p->N * p->M * outsz; i++) y[i] = 0;
    bool ok = true;
    for (int64_t n = 0; n < p->N && ok; n++)
        for (int64_t gi = 0; gi < p->group && ok; gi++) {
            const float *xg = x + (n * p->C + gi * p->cg) * insz;
            const float *wg = w + gi * p->cg * kr;
            float *yg = y + (n * p->M + gi * p->mg) * outsz;
            for (int64_t q0 = 0; q0 < nq && ok; q0 += rows) {
                int64_t q1 = SI_MIN(nq, q0 + rows), ncols = (q1 - q0) * IW;
                /* col[kr x ncols] = Wg^T [kr x cg] * Xg[cg x ncols] */
                ok = nn_sgemm(kr, ncols, p->cg, wg, 1, kr, xg + q0 * IW, insz, 1, col, ncols, false);
                if (ok) nn_col2im_f32(g, col, p->mg, q0, q1, yg);
            }
            if (ok && b) nn_add_bias_f32(yg, b + gi * p->mg, p->mg, outsz);
        }
    si_free(col);
    return ok;
}

/* ---- double kernels for Conv / ConvTranspose ---- */

/* Columns for output rows q in [q0, q1) (q enumerates (od, oh) pairs, each row has OW columns) of one
 * group: col[(ch, ka, kb, ke)][(q - q0) * OW + ow]. */
static void nn_im2col_f64(const nn_geom *g, const double *x, int64_t cg, int64_t q0, int64_t q1, double *col)
{
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2], OH = g->out[1], OW = g->out[2];
    const int64_t ncols = (q1 - q0) * OW, sw = g->s[2];
    double *dst = col;
    for (int64_t ch = 0; ch < cg; ch++) {
        const double *xc = x + ch * ID * IH * IW;
        for (int64_t ka = 0; ka < g->k[0]; ka++)
            for (int64_t kb = 0; kb < g->k[1]; kb++)
                for (int64_t ke = 0; ke < g->k[2]; ke++, dst += ncols) {
                    const int64_t iw0 = ke * g->d[2] - g->pb[2];
                    int64_t lo = 0, hi = OW;
                    while (lo < OW && iw0 + lo * sw < 0) lo++;
                    while (hi > lo && iw0 + (hi - 1) * sw >= IW) hi--;
                    for (int64_t q = q0; q < q1; q++) {
                        double *row = dst + (q - q0) * OW;
                        const int64_t id = (q / OH) * g->s[0] - g->pb[0] + ka * g->d[0];
                        const int64_t ih = (q % OH) * g->s[1] - g->pb[1] + kb * g->d[1];
                        if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                            for (int64_t o = 0; o < OW; o++) row[o] = 0;
                            continue;
                        }
                        const double *xr = xc + (id * IH + ih) * IW;
                        for (int64_t o = 0; o < lo; o++) row[o] = 0;
                        if (sw == 1) {
                            if (hi > lo) memcpy(row + lo, xr + (iw0 + lo), (size_t)(hi - lo) * sizeof(double));
                        } else {
                            for (int64_t o = lo; o < hi; o++) row[o] = xr[iw0 + o * sw];
                        }
                        for (int64_t o = hi; o < OW; o++) row[o] = 0;
                    }
                }
    }
}

/* Scatter-add of columns for input rows q in [q0, q1) (q enumerates (id, ih), each with IW columns) into
 * the mg output channels of one group (ConvTranspose). */
static void nn_col2im_f64(const nn_geom *g, const double *col, int64_t mg, int64_t q0, int64_t q1, double *y)
{
    const int64_t IH = g->in[1], IW = g->in[2], OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t ncols = (q1 - q0) * IW, osz = OD * OH * OW, sw = g->s[2];
    const double *src = col;
    for (int64_t m = 0; m < mg; m++) {
        double *ym = y + m * osz;
        for (int64_t ka = 0; ka < g->k[0]; ka++)
            for (int64_t kb = 0; kb < g->k[1]; kb++)
                for (int64_t ke = 0; ke < g->k[2]; ke++, src += ncols) {
                    const int64_t ow0 = ke * g->d[2] - g->pb[2];
                    int64_t lo = 0, hi = IW;
                    while (lo < IW && ow0 + lo * sw < 0) lo++;
                    while (hi > lo && ow0 + (hi - 1) * sw >= OW) hi--;
                    for (int64_t q = q0; q < q1; q++) {
                        const int64_t od = (q / IH) * g->s[0] - g->pb[0] + ka * g->d[0];
                        const int64_t oh = (q % IH) * g->s[1] - g->pb[1] + kb * g->d[1];
                        if (od < 0 || od >= OD || oh < 0 || oh >= OH) continue;
                        double *yr = ym + (od * OH + oh) * OW;
                        const double *row = src + (q - q0) * IW;
                        for (int64_t i = lo; i < hi; i++) yr[ow0 + i * sw] += row[i];
                    }
                }
    }
}

static void nn_add_bias_f64(double *y, const double *b, int64_t m, int64_t sz)
{
    for (int64_t i = 0; i < m; i++) {
        const double v = b[i];
        double *r = y + i * sz;
        for (int64_t j = 0; j < sz; j++) r[j] += v;
    }
}

/* Y = Conv(X, W) + B for all batches and groups. false when out of memory. */
static bool nn_conv_core_f64(const nn_conv *p, const double *x, const double *w, const double *b, double *y)
{
    const nn_geom *g = &p->g;
    const int64_t insz = nn_geom_in_size(g), outsz = nn_geom_out_size(g), OW = g->out[2];
    const int64_t kr = p->cg * p->kp, nq = g->out[0] * g->out[1];
    bool pointwise = true;
    for (int i = 0; i < NN_SP; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 || g->pe[i] != 0) pointwise = false;
    double *col = NULL;
    int64_t rows = nq;
    if (!pointwise) {
        rows = SI_MAX((int64_t)1, SI_MIN(nq, NN_COL_BUDGET / SI_MAX((int64_t)1, kr * OW)));
        col = si_malloc((size_t)(kr * rows * OW) * sizeof(double) + 1);
        if (!col) return false;
    }
    bool ok = true;
    for (int64_t n = 0; n < p->N && ok; n++)
        for (int64_t gi = 0; gi < p->group && ok; gi++) {
            const double *xg = x + (n * p->C + gi * p->cg) * insz;
            const double *wg = w + gi * p->mg * kr;
            double *yg = y + (n * p->M + gi * p->mg) * outsz;
            if (pointwise) {
                ok = nn_dgemm_b(p->mg, outsz, p->cg, wg, kr, 1, xg, insz, 1, yg, outsz, false);
            } else {
                for (int64_t q0 = 0; q0 < nq && ok; q0 += rows) {
                    int64_t q1 = SI_MIN(nq, q0 + rows), ncols = (q1 - q0) * OW;
                    nn_im2col_f64(g, xg, p->cg, q0, q1, col);
                    ok = nn_dgemm_b(p->mg, ncols, kr, wg, kr, 1, col, ncols, 1, yg + q0 * OW, outsz, false);
                }
            }
            if (ok && b) nn_add_bias_f64(yg, b + gi * p->mg, p->mg, outsz);
        }
    si_free(col);
    return ok;
}

/* Y = ConvTranspose(X, W) + B. W is [C, M/group, k...]. false when out of memory. */
static bool nn_convt_core_f64(const nn_conv *p, const double *x, const double *w, const double *b, double *y)
{
    const nn_geom *g = &p->g;
    const int64_t insz = nn_geom_in_size(g), outsz = nn_geom_out_size(g), IW = g->in[2];
    const int64_t kr = p->mg * p->kp, nq = g->in[0] * g->in[1];
    const int64_t rows = SI_MAX((int64_t)1, SI_MIN(nq, NN_COL_BUDGET / SI_MAX((int64_t)1, kr * IW)));
    double *col = si_malloc((size_t)(kr * rows * IW) * sizeof(double) + 1);
    if (!col) return false;
    for (int64_t i = 0; i < p->N * p->M * outsz; i++) y[i] = 0;
    bool ok = true;
    for (int64_t n = 0; n < p->N && ok; n++)
        for (int64_t gi = 0; gi < p->group && ok; gi++) {
            const double *xg = x + (n * p->C + gi * p->cg) * insz;
            const double *wg = w + gi * p->cg * kr;
            double *yg = y + (n * p->M + gi * p->mg) * outsz;
            for (int64_t q0 = 0; q0 < nq && ok; q0 += rows) {
                int64_t q1 = SI_MIN(nq, q0 + rows), ncols = (q1 - q0) * IW;
                /* col[kr x ncols] = Wg^T [kr x cg] * Xg[cg x ncols] */
                ok = nn_dgemm_b(kr, ncols, p->cg, wg, 1, kr, xg + q0 * IW, insz, 1, col, ncols, false);
                if (ok) nn_col2im_f64(g, col, p->mg, q0, q1, yg);
            }
            if (ok && b) nn_add_bias_f64(yg, b + gi * p->mg, p->mg, outsz);
        }
    si_free(col);
    return ok;
}

/* =========================================================================================================
 * Conv, ConvTranspose
 */

static si_result nn_conv_common(si_kctx *c, int nsp, const si_tensor *x, const si_tensor *w, const si_tensor *b)
{
    si_result st;
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X")) || (st = nn_same_type(c, x, w, "W"))) return st;
    if (b && (st = nn_same_type(c, x, b, "B"))) return st;
    if (w->ndim != x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "W has rank %d, X has rank %d", w->ndim, x->ndim);
    int cnt = 0;
    const int64_t *ks = si_attr_ints(c->node, "kernel_shape", &cnt);
    if (ks && cnt > 0) {
        if (cnt != nsp)
            return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape has %d values, expected %d", cnt, nsp);
        for (int i = 0; i < nsp; i++)
            if (ks[i] != w->dims[2 + i])
                return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape[%d] = %lld does not match W's %lld", i,
                                 (long long)ks[i], (long long)w->dims[2 + i]);
    }
    return SI_OK;
}

static si_result conv_prep(si_kctx *c, nn_conv *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false)) || (st = nn_need(c, 1, false))) return st;
    const si_tensor *x = nn_in(c, 0), *w = nn_in(c, 1), *b = nn_in(c, 2);
    int nsp = 0;
    if ((st = nn_spatial_rank(c, x, &nsp)) || (st = nn_conv_common(c, nsp, x, w, b))) return st;
    p->group = si_attr_int(c->node, "group", 1);
    if (p->group < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "group %lld must be positive", (long long)p->group);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->M = w->dims[0];
    if (w->dims[1] > p->C / p->group || w->dims[1] * p->group != p->C) /* no overflow for a hostile group */
        return si_op_err(c, SI_ERR_INVALID_ARG, "W has %lld input channels per group but X has %lld channels and group %lld",
                         (long long)w->dims[1], (long long)p->C, (long long)p->group);
    if (p->M % p->group != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "output channels %lld are not divisible by group %lld",
                         (long long)p->M, (long long)p->group);
    if (b && (b->ndim != 1 || b->dims[0] != p->M))
        return si_op_err(c, SI_ERR_INVALID_ARG, "B must have shape [%lld]", (long long)p->M);
    p->cg = p->C / p->group;
    p->mg = p->M / p->group;
    p->kp = nn_prod(w->dims, 2, w->ndim);
    return nn_geom_init(c, nsp, x->dims + 2, w->dims + 2, false, &p->g);
}

static si_result nn_conv_set_out(si_kctx *c, const nn_conv *p, si_dtype dt)
{
    int64_t dims[SI_MAX_DIMS];
    int nsp = p->g.nsp;
    dims[0] = p->N;
    dims[1] = p->M;
    for (int i = 0; i < nsp; i++) dims[2 + i] = p->g.out[NN_SP - nsp + i];
    return nn_set_out(c, 0, dt, nsp + 2, dims);
}

static si_result conv_infer(si_kctx *c)
{
    nn_conv p;
    si_result st = conv_prep(c, &p);
    if (st) return st;
    return nn_conv_set_out(c, &p, nn_in(c, 0)->dtype);
}

/* Shared driver of Conv and ConvTranspose: float32 directly, float16/bfloat16 through float32 copies,
 * float64 in double. */
static si_result nn_conv_dispatch(si_kctx *c, const nn_conv *p, bool transpose)
{
    const si_tensor *x = nn_in(c, 0), *w = nn_in(c, 1), *b = nn_in(c, 2);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    if (nn_count(x) == 0 || nn_count(w) == 0) {
        /* empty reduction: Y is the bias (or zero) */
        memset(y->data, 0, y->nbytes);
        if (b) {
            int64_t per = nn_count(y) / (p->N * p->M);
            for (int64_t i = 0; i < nn_count(y); i++)
                si_store_f64(y->dtype, y->data, i, si_load_f64(b->dtype, b->data, (i / per) % p->M));
        }
        return SI_OK;
    }
    if (x->dtype == SI_F64) {
        bool ok = transpose ? nn_convt_core_f64(p, x->data, w->data, b ? b->data : NULL, y->data)
                            : nn_conv_core_f64(p, x->data, w->data, b ? b->data : NULL, y->data);
        return ok ? SI_OK : nn_nomem(c);
    }
    if (x->dtype == SI_F32) {
        bool ok = transpose ? nn_convt_core_f32(p, x->data, w->data, b ? b->data : NULL, y->data)
                            : nn_conv_core_f32(p, x->data, w->data, b ? b->data : NULL, y->data);
        return ok ? SI_OK : nn_nomem(c);
    }
    float *xf = nn_to_f32(x), *wf = nn_to_f32(w), *bf = b ? nn_to_f32(b) : NULL;
    float *yf = si_calloc((size_t)nn_count(y), sizeof(float));
    bool ok = xf && wf && yf && (!b || bf);
    if (ok)
        ok = transpose ? nn_convt_core_f32(p, xf, wf, bf, yf) : nn_conv_core_f32(p, xf, wf, bf, yf);
    if (ok) nn_from_f32(y, yf);
    si_free(xf);
    si_free(wf);
    si_free(bf);
    si_free(yf);
    return ok ? SI_OK : nn_nomem(c);
}

static si_result conv_run(si_kctx *c)
{
    nn_conv p;
    si_result st = conv_prep(c, &p);
    if (st) return st;
    return nn_conv_dispatch(c, &p, false);
}

static si_result convt_prep(si_kctx *c, nn_conv *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false)) || (st = nn_need(c, 1, false))) return st;
    const si_tensor *x = nn_in(c, 0), *w = nn_in(c, 1), *b = nn_in(c, 2);
    int nsp = 0;
    if ((st = nn_spatial_rank(c, x, &nsp)) || (st = nn_conv_common(c, nsp, x, w, b))) return st;
    p->group = si_attr_int(c->node, "group", 1);
    if (p->group < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "group %lld must be positive", (long long)p->group);
    p->N = x->dims[0];
    p->C = x->dims[1];
    if (w->dims[0] != p->C)
        return si_op_err(c, SI_ERR_INVALID_ARG, "W has %lld input channels, X has %lld", (long long)w->dims[0],
                         (long long)p->C);
    if (p->C % p->group != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input channels %lld are not divisible by group %lld",
                         (long long)p->C, (long long)p->group);
    if (w->dims[1] > INT64_MAX / 16 / p->group) /* a hostile group must not overflow M */
        return si_op_err(c, SI_ERR_INVALID_ARG, "group %lld is too large", (long long)p->group);
    p->M = w->dims[1] * p->group;
    if (b && (b->ndim != 1 || b->dims[0] != p->M))
        return si_op_err(c, SI_ERR_INVALID_ARG, "B must have shape [%lld]", (long long)p->M);
    p->cg = p->C / p->group;
    p->mg = w->dims[1];
    p->kp = nn_prod(w->dims, 2, w->ndim);

    int64_t s[NN_SP], d[NN_SP], op[NN_SP], pads[2 * NN_SP], os[NN_SP];
    int ap = 0;
    if ((st = nn_attr_ints_n(c, "strides", nsp, 1, s)) || (st = nn_attr_ints_n(c, "dilations", nsp, 1, d)) ||
        (st = nn_attr_ints_n(c, "output_padding", nsp, 0, op)) ||
        (st = nn_attr_ints_n(c, "pads", 2 * nsp, 0, pads)) || (st = nn_auto_pad(c, &ap)))
        return st;
    int cnt = 0;
    const int64_t *osa = si_attr_ints(c->node, "output_shape", &cnt);
    bool have_os = osa && cnt > 0;
    if (have_os) {
        if (cnt != nsp && cnt != nsp + 2)
            return si_op_err(c, SI_ERR_INVALID_ARG, "output_shape has %d values, expected %d", cnt, nsp);
        for (int i = 0; i < nsp; i++) os[i] = osa[cnt - nsp + i];
    }
    nn_geom *g = &p->g;
    nn_geom_clear(g, nsp);
    int off = NN_SP - nsp;
    for (int i = 0; i < nsp; i++) {
        int64_t in = x->dims[2 + i], k = w->dims[2 + i];
        if (s[i] < 1 || d[i] < 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "strides and dilations must be positive");
        int64_t eff = (k - 1) * d[i] + 1, pb, pe, o;
        if (have_os || ap == NN_PAD_SAME_UPPER || ap == NN_PAD_SAME_LOWER) {
            o = have_os ? os[i] : in * s[i];
            int64_t total = s[i] * (in - 1) + op[i] + eff - o;
            if (ap == NN_PAD_SAME_UPPER) {
                pb = nn_floordiv(total, 2);
                pe = total - pb;
            } else {
                pe = nn_floordiv(total, 2);
                pb = total - pe;
            }
        } else {
            pb = ap == NN_PAD_VALID ? 0 : pads[i];
            pe = ap == NN_PAD_VALID ? 0 : pads[i + nsp];
            if (pb < 0 || pe < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "pads must not be negative");
            o = s[i] * (in - 1) + op[i] + eff - pb - pe;
        }
        if (o < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "output spatial size would be %lld", (long long)o);
        g->in[off + i] = in;
        g->out[off + i] = o;
        g->k[off + i] = k;
        g->s[off + i] = s[i];
        g->d[off + i] = d[i];
        g->pb[off + i] = pb;
        g->pe[off + i] = pe;
    }
    return SI_OK;
}

static si_result convt_infer(si_kctx *c)
{
    nn_conv p;
    si_result st = convt_prep(c, &p);
    if (st) return st;
    return nn_conv_set_out(c, &p, nn_in(c, 0)->dtype);
}

static si_result convt_run(si_kctx *c)
{
    nn_conv p;
    si_result st = convt_prep(c, &p);
    if (st) return st;
    return nn_conv_dispatch(c, &p, true);
}

/* =========================================================================================================
 * Pooling: MaxPool, AveragePool, LpPool and the global variants
 */

enum { NN_POOL_MAX, NN_POOL_AVG, NN_POOL_LP };

typedef struct nn_pool {
    nn_geom g;
    int64_t N, C;
} nn_pool;

static si_result pool_prep(si_kctx *c, uint32_t types, nn_pool *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    int nsp = 0;
    if ((st = nn_check_type(c, x, types, "X")) || (st = nn_spatial_rank(c, x, &nsp))) return st;
    int cnt = 0;
    const int64_t *ks = si_attr_ints(c->node, "kernel_shape", &cnt);
    if (!ks || cnt != nsp)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute kernel_shape must have %d values (got %d)", nsp, cnt);
    p->N = x->dims[0];
    p->C = x->dims[1];
    return nn_geom_init(c, nsp, x->dims + 2, ks, true, &p->g);
}

static si_result pool_infer_common(si_kctx *c, uint32_t types, bool indices)
{
    nn_pool p;
    si_result st = pool_prep(c, types, &p);
    if (st) return st;
    int64_t dims[SI_MAX_DIMS];
    int nsp = p.g.nsp;
    dims[0] = p.N;
    dims[1] = p.C;
    for (int i = 0; i < nsp; i++) dims[2 + i] = p.g.out[NN_SP - nsp + i];
    if ((st = nn_set_out(c, 0, nn_in(c, 0)->dtype, nsp + 2, dims))) return st;
    if (indices && (st = nn_set_out(c, 1, SI_I64, nsp + 2, dims))) return st;
    return SI_OK;
}

/* Number of window taps along one dimension whose coordinate lies in [lo, hi). */
static int64_t nn_taps_in(int64_t start, int64_t k, int64_t d, int64_t lo, int64_t hi)
{
    int64_t n = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t v = start + i * d;
        if (v >= lo && v < hi) n++;
    }
    return n;
}

static void nn_pool_core(const nn_pool *p, int kind, bool include_pad, double lp, int64_t storage_order,
                         const double *x, double *y, int64_t *ind)
{
    const nn_geom *g = &p->g;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t insz = ID * IH * IW, outsz = OD * OH * OW;
    for (int64_t nc = 0; nc < p->N * p->C; nc++) {
        const double *xin = x + nc * insz;
        double *yo = y + nc * outsz;
        int64_t *io = ind ? ind + nc * outsz : NULL;
        for (int64_t od = 0; od < OD; od++) {
            const int64_t sd = od * g->s[0] - g->pb[0];
            for (int64_t oh = 0; oh < OH; oh++) {
                const int64_t sh = oh * g->s[1] - g->pb[1];
                for (int64_t ow = 0; ow < OW; ow++) {
                    const int64_t sw = ow * g->s[2] - g->pb[2];
                    double acc = kind == NN_POOL_MAX ? -INFINITY : 0.0;
                    int64_t best = -1, cnt = 0;
                    bool saw_nan = false;
                    for (int64_t ka = 0; ka < g->k[0]; ka++) {
                        const int64_t id = sd + ka * g->d[0];
                        if (id < 0 || id >= ID) continue;
                        for (int64_t kb = 0; kb < g->k[1]; kb++) {
                            const int64_t ih = sh + kb * g->d[1];
                            if (ih < 0 || ih >= IH) continue;
                            const double *xr = xin + (id * IH + ih) * IW;
                            for (int64_t ke = 0; ke < g->k[2]; ke++) {
                                const int64_t iw = sw + ke * g->d[2];
                                if (iw < 0 || iw >= IW) continue;
                                const double v = xr[iw];
                                if (kind == NN_POOL_MAX) {
                                    if (isnan(v)) {
                                        saw_nan = true;
                                    } else if (best < 0 || v > acc) {
                                        acc = v;
                                        best = storage_order ? (iw * IH + ih) * ID + id : (id * IH + ih) * IW + iw;
                                    }
                                } else if (kind == NN_POOL_AVG) {
                                    acc += v;
                                } else {
                                    acc += pow(fabs(v), lp);
                                }
                                cnt++;
                            }
                        }
                    }
                    const int64_t o = (od * OH + oh) * OW + ow;
                    if (kind == NN_POOL_MAX) {
                        if (best < 0 && saw_nan) acc = NAN;
                        yo[o] = acc;
                        if (io) io[o] = best < 0 ? -1 : nc * insz + best;
                    } else if (kind == NN_POOL_AVG) {
                        int64_t div = cnt;
                        if (include_pad) {
                            div = nn_taps_in(sd, g->k[0], g->d[0], -g->pb[0], ID + g->pe[0]) *
                                  nn_taps_in(sh, g->k[1], g->d[1], -g->pb[1], IH + g->pe[1]) *
                                  nn_taps_in(sw, g->k[2], g->d[2], -g->pb[2], IW + g->pe[2]);
                        }
                        yo[o] = acc / (double)div;
                    } else {
                        yo[o] = pow(acc, 1.0 / lp);
                    }
                }
            }
        }
    }
}

static si_result pool_run_common(si_kctx *c, uint32_t types, int kind)
{
    nn_pool p;
    si_result st = pool_prep(c, types, &p);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0), *ind = kind == NN_POOL_MAX ? nn_out(c, 1) : NULL;
    if (!y || nn_count(y) == 0) return SI_OK;
    bool include_pad = kind == NN_POOL_AVG && si_attr_int(c->node, "count_include_pad", 0) != 0;
    double lp = kind == NN_POOL_LP ? nn_attr_num(c, "p", 2.0) : 2.0;
    int64_t so = kind == NN_POOL_MAX ? si_attr_int(c->node, "storage_order", 0) : 0;
    double *xd = nn_to_f64(x), *yd = si_malloc((size_t)nn_count(y) * sizeof(double));
    if (!xd || !yd) {
        si_free(xd);
        si_free(yd);
        return nn_nomem(c);
    }
    nn_pool_core(&p, kind, include_pad, lp, so, xd, yd, ind ? (int64_t *)ind->data : NULL);
    nn_from_f64(y, yd);
    si_free(xd);
    si_free(yd);
    return SI_OK;
}

#define NN_T_MAXPOOL (SI_T_FLOATS | SI_T(SI_I8) | SI_T(SI_U8))

static si_result maxpool_infer(si_kctx *c)
{
    return pool_infer_common(c, NN_T_MAXPOOL, true);
}
static si_result maxpool_run(si_kctx *c)
{
    return pool_run_common(c, NN_T_MAXPOOL, NN_POOL_MAX);
}
static si_result avgpool_infer(si_kctx *c)
{
    return pool_infer_common(c, SI_T_FLOATS, false);
}
static si_result avgpool_run(si_kctx *c)
{
    return pool_run_common(c, SI_T_FLOATS, NN_POOL_AVG);
}
static si_result lppool_infer(si_kctx *c)
{
    return pool_infer_common(c, SI_T_FLOATS, false);
}
static si_result lppool_run(si_kctx *c)
{
    return pool_run_common(c, SI_T_FLOATS, NN_POOL_LP);
}

static si_result gpool_prep(si_kctx *c)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X"))) return st;
    if (x->ndim < 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2 (N, C, ...), got %d", x->ndim);
    return SI_OK;
}

static si_result gpool_infer(si_kctx *c)
{
    si_result st = gpool_prep(c);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    return nn_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result gpool_run_common(si_kctx *c, int kind)
{
    si_result st = gpool_prep(c);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    const int64_t nc = x->dims[0] * x->dims[1], sz = nn_prod(x->dims, 2, x->ndim);
    const double lp = kind == NN_POOL_LP ? nn_attr_num(c, "p", 2.0) : 2.0;
    double *xd = nn_to_f64(x), *yd = si_malloc((size_t)nc * sizeof(double));
    if (!xd || !yd) {
        si_free(xd);
        si_free(yd);
        return nn_nomem(c);
    }
    for (int64_t i = 0; i < nc; i++) {
        const double *v = xd + i * sz;
        double acc = kind == NN_POOL_MAX ? -INFINITY : 0.0;
        for (int64_t j = 0; j < sz; j++) {
            if (kind == NN_POOL_MAX) acc = (v[j] > acc || isnan(v[j])) ? v[j] : acc;
            else if (kind == NN_POOL_AVG) acc += v[j];
            else acc += pow(fabs(v[j]), lp);
        }
        if (kind == NN_POOL_AVG) acc /= (double)sz;
        else if (kind == NN_POOL_LP) acc = pow(acc, 1.0 / lp);
        yd[i] = acc;
    }
    nn_from_f64(y, yd);
    si_free(xd);
    si_free(yd);
    return SI_OK;
}

static si_result gavgpool_run(si_kctx *c)
{
    return gpool_run_common(c, NN_POOL_AVG);
}
static si_result gmaxpool_run(si_kctx *c)
{
    return gpool_run_common(c, NN_POOL_MAX);
}
static si_result glppool_run(si_kctx *c)
{
    return gpool_run_common(c, NN_POOL_LP);
}

/* =========================================================================================================
 * Normalisations
 */

/* Can t be broadcast (numpy rules, one direction) to shape dims of rank r? */
static si_result nn_bcast_check(const si_kctx *c, const si_tensor *t, int r, const int64_t *dims, const char *what)
{
    bool ok = t->ndim <= r;
    for (int i = 0; ok && i < t->ndim; i++) {
        int64_t td = t->dims[t->ndim - 1 - i], xd = dims[r - 1 - i];
        if (td != 1 && td != xd) ok = false;
    }
    if (!ok) {
        char a[96], b[96];
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s of shape %s cannot be broadcast to %s", what,
                         si_shape_str(a, sizeof a, t->dtype, t->ndim, t->dims),
                         si_shape_str(b, sizeof b, t->dtype, r, dims));
    }
    return SI_OK;
}

/* t's values broadcast to shape dims (rank r) as a new double array of prod(dims) values. */
static double *nn_bcast_expand(const si_tensor *t, int r, const int64_t *dims)
{
    int64_t n = nn_prod(dims, 0, r), st[SI_MAX_DIMS], idx[SI_MAX_DIMS] = {0};
    double *out = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!out) return NULL;
    si_broadcast_strides(t->ndim, t->dims, r, dims, st);
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        out[i] = si_load_f64(t->dtype, t->data, off);
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++;
            off += st[d];
            if (idx[d] < dims[d]) break;
            off -= st[d] * idx[d];
            idx[d] = 0;
        }
    }
    return out;
}

static void nn_free_all(void *a, void *b, void *c, void *d, void *e, void *f)
{
    si_free(a);
    si_free(b);
    si_free(c);
    si_free(d);
    si_free(e);
    si_free(f);
}

/* ---- BatchNormalization ---- */

typedef struct nn_bn {
    int64_t N, C, S, psz; /* psz: 1 (spatial) or S (per activation, spatial=0 in old opsets) */
    bool training;
} nn_bn;

static si_result bn_prep(si_kctx *c, nn_bn *p)
{
    si_result st;
    for (int i = 0; i < 5; i++)
        if ((st = nn_need(c, i, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 2, got %d", x->ndim);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->S = nn_prod(x->dims, 2, x->ndim);
    bool spatial = c->opset >= 9 || si_attr_int(c->node, "spatial", 1) != 0;
    p->psz = spatial ? 1 : p->S;
    static const char *const names[5] = {"X", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++) {
        const si_tensor *t = nn_in(c, i);
        if ((st = nn_check_type(c, t, SI_T_FLOATS, names[i]))) return st;
        if (nn_count(t) != p->C * p->psz)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, expected %lld", names[i],
                             (long long)nn_count(t), (long long)(p->C * p->psz));
    }
    if (c->opset >= 14) {
        p->training = si_attr_int(c->node, "training_mode", 0) != 0;
    } else {
        bool extra = false;
        for (int k = 1; k < c->n_out; k++)
            if (c->out[k]) extra = true;
        p->training = extra && (c->opset > 6 || si_attr_int(c->node, "is_test", 0) == 0);
    }
    if (p->training && !spatial)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "training mode with spatial=0 is not supported");
    return SI_OK;
}

static si_result bn_infer(si_kctx *c)
{
    nn_bn p;
    si_result st = bn_prep(c, &p);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = si_same_as_input(c, 0, 0))) return st;
    int64_t cd[1] = {p.C};
    si_dtype st_dt = c->opset >= 14 ? nn_in(c, 3)->dtype : x->dtype;
    for (int k = 1; k < c->n_out && k < 5; k++) {
        if (!c->out[k]) continue;
        if (c->opset >= 14 && k > 2)
            return si_op_err(c, SI_ERR_INVALID_ARG, "BatchNormalization-%d has at most 3 outputs", c->opset);
        const si_tensor *src = nn_in(c, (k % 2) ? 3 : 4);
        if (p.psz == 1) st = nn_set_out(c, k, st_dt, 1, cd);
        else st = nn_set_out(c, k, st_dt, src->ndim, src->dims);
        if (st) return st;
    }
    return SI_OK;
}

static si_result bn_run(si_kctx *c)
{
    nn_bn p;
    si_result st = bn_prep(c, &p);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    double mom = si_attr_float(c->node, "momentum", 0.9f);
    double *xd = nn_to_f64(x), *sc = nn_to_f64(nn_in(c, 1)), *bi = nn_to_f64(nn_in(c, 2));
    double *mn = nn_to_f64(nn_in(c, 3)), *vr = nn_to_f64(nn_in(c, 4));
    const int64_t np = p.C * p.psz;
    double *bm = si_calloc((size_t)(2 * np + 1), sizeof(double));
    if (!xd || !sc || !bi || !mn || !vr || !bm) {
        nn_free_all(xd, sc, bi, mn, vr, bm);
        return nn_nomem(c);
    }
    double *bv = bm + np;
    const double *um = mn, *uv = vr; /* statistics used for Y */
    if (p.training) {
        const double cnt = (double)(p.N * p.S);
        for (int64_t ch = 0; ch < p.C; ch++) {
            double s = 0, q = 0;
            for (int64_t n = 0; n < p.N; n++) {
                const double *v = xd + (n * p.C + ch) * p.S;
                for (int64_t i = 0; i < p.S; i++) s += v[i];
            }
            const double m = cnt > 0 ? s / cnt : 0.0;
            for (int64_t n = 0; n < p.N; n++) {
                const double *v = xd + (n * p.C + ch) * p.S;
                for (int64_t i = 0; i < p.S; i++) q += (v[i] - m) * (v[i] - m);
            }
            bm[ch] = m;
            bv[ch] = cnt > 0 ? q / cnt : 0.0;
        }
        um = bm;
        uv = bv;
    }
    for (int64_t n = 0; n < p.N; n++)
        for (int64_t ch = 0; ch < p.C; ch++) {
            double *v = xd + (n * p.C + ch) * p.S;
            for (int64_t i = 0; i < p.S; i++) {
                const int64_t k = ch * p.psz + (p.psz == 1 ? 0 : i);
                v[i] = sc[k] * (v[i] - um[k]) / sqrt(uv[k] + eps) + bi[k];
            }
        }
    if (y) nn_from_f64(y, xd);
    /* extra outputs: running mean/var (updated in training mode), then saved batch mean/var (opset < 14) */
    for (int k = 1; k < c->n_out && k < 5; k++) {
        si_tensor *o = c->out[k];
        if (!o) continue;
        for (int64_t i = 0; i < np; i++) {
            double v;
            if (k == 1) v = p.training ? mn[i] * mom + bm[i] * (1 - mom) : mn[i];
            else if (k == 2) v = p.training ? vr[i] * mom + bv[i] * (1 - mom) : vr[i];
            else if (k == 3) v = p.training ? bm[i] : mn[i];
            else v = p.training ? bv[i] : vr[i];
            si_store_f64(o->dtype, o->data, i, v);
        }
    }
    nn_free_all(xd, sc, bi, mn, vr, bm);
    return SI_OK;
}

/* ---- InstanceNormalization ---- */

static si_result instnorm_prep(si_kctx *c)
{
    si_result st;
    for (int i = 0; i < 3; i++)
        if ((st = nn_need(c, i, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "input"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2, got %d", x->ndim);
    for (int i = 1; i < 3; i++) {
        const si_tensor *t = nn_in(c, i);
        if ((st = nn_check_type(c, t, SI_T_FLOATS, i == 1 ? "scale" : "B"))) return st;
        if (nn_count(t) != x->dims[1])
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, expected %lld", i == 1 ? "scale" : "B",
                             (long long)nn_count(t), (long long)x->dims[1]);
    }
    return SI_OK;
}

static si_result instnorm_infer(si_kctx *c)
{
    si_result st = instnorm_prep(c);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result instnorm_run(si_kctx *c)
{
    si_result st = instnorm_prep(c);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y) return SI_OK;
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t N = x->dims[0], C = x->dims[1], S = nn_prod(x->dims, 2, x->ndim);
    double *xd = nn_to_f64(x), *sc = nn_to_f64(nn_in(c, 1)), *bi = nn_to_f64(nn_in(c, 2));
    if (!xd || !sc || !bi) {
        nn_free_all(xd, sc, bi, NULL, NULL, NULL);
        return nn_nomem(c);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            double *v = xd + (n * C + ch) * S, s = 0, q = 0;
            for (int64_t i = 0; i < S; i++) s += v[i];
            const double m = S > 0 ? s / (double)S : 0.0;
            for (int64_t i = 0; i < S; i++) q += (v[i] - m) * (v[i] - m);
            const double inv = 1.0 / sqrt((S > 0 ? q / (double)S : 0.0) + eps);
            for (int64_t i = 0; i < S; i++) v[i] = (v[i] - m) * inv * sc[ch] + bi[ch];
        }
    nn_from_f64(y, xd);
    nn_free_all(xd, sc, bi, NULL, NULL, NULL);
    return SI_OK;
}

/* ---- LayerNormalization / RMSNormalization ---- */

static si_result lnorm_prep(si_kctx *c, bool rms, int *axis)
{
    si_result st;
    if ((st = nn_need(c, 0, false)) || (st = nn_need(c, 1, false))) return st;
    const si_tensor *x = nn_in(c, 0), *sc = nn_in(c, 1), *b = rms ? NULL : nn_in(c, 2);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X")) || (st = nn_check_type(c, sc, SI_T_FLOATS, "Scale"))) return st;
    if (b && (st = nn_check_type(c, b, SI_T_FLOATS, "B"))) return st;
    if (x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1");
    if ((st = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, axis))) return st;
    if ((st = nn_bcast_check(c, sc, x->ndim, x->dims, "Scale"))) return st;
    if (b && (st = nn_bcast_check(c, b, x->ndim, x->dims, "B"))) return st;
    return SI_OK;
}

static si_dtype nn_stash_type(const si_kctx *c)
{
    int64_t t = si_attr_int(c->node, "stash_type", 1);
    if (t == SI_F64 || t == SI_F16 || t == SI_BF16) return (si_dtype)t;
    return SI_F32;
}

static si_result lnorm_infer(si_kctx *c)
{
    int axis = 0;
    si_result st = lnorm_prep(c, false, &axis);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = si_same_as_input(c, 0, 0))) return st;
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = i < axis ? x->dims[i] : 1;
    if ((st = nn_set_out(c, 1, nn_stash_type(c), x->ndim, dims))) return st;
    return nn_set_out(c, 2, nn_stash_type(c), x->ndim, dims);
}

static si_result rmsnorm_infer(si_kctx *c)
{
    int axis = 0;
    si_result st = lnorm_prep(c, true, &axis);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result lnorm_run_common(si_kctx *c, bool rms)
{
    int axis = 0;
    si_result st = lnorm_prep(c, rms, &axis);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0), *b = rms ? NULL : nn_in(c, 2);
    si_tensor *y = nn_out(c, 0), *om = rms ? NULL : nn_out(c, 1), *oi = rms ? NULL : nn_out(c, 2);
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t outer = nn_prod(x->dims, 0, axis), inner = nn_prod(x->dims, axis, x->ndim);
    double *xd = nn_to_f64(x), *sc = nn_bcast_expand(nn_in(c, 1), x->ndim, x->dims);
    double *bd = b ? nn_bcast_expand(b, x->ndim, x->dims) : NULL;
    if (!xd || !sc || (b && !bd)) {
        nn_free_all(xd, sc, bd, NULL, NULL, NULL);
        return nn_nomem(c);
    }
    for (int64_t o = 0; o < outer; o++) {
        double *v = xd + o * inner;
        const double *s = sc + o * inner, *bb = bd ? bd + o * inner : NULL;
        double m = 0, q = 0;
        if (!rms) {
            for (int64_t i = 0; i < inner; i++) m += v[i];
            m = inner > 0 ? m / (double)inner : 0.0;
        }
        for (int64_t i = 0; i < inner; i++) q += (v[i] - m) * (v[i] - m);
        const double inv = 1.0 / sqrt((inner > 0 ? q / (double)inner : 0.0) + eps);
        for (int64_t i = 0; i < inner; i++) v[i] = (v[i] - m) * inv * s[i] + (bb ? bb[i] : 0.0);
        if (om) si_store_f64(om->dtype, om->data, o, m);
        if (oi) si_store_f64(oi->dtype, oi->data, o, inv);
    }
    if (y) nn_from_f64(y, xd);
    nn_free_all(xd, sc, bd, NULL, NULL, NULL);
    return SI_OK;
}

static si_result lnorm_run(si_kctx *c)
{
    return lnorm_run_common(c, false);
}
static si_result rmsnorm_run(si_kctx *c)
{
    return lnorm_run_common(c, true);
}

/* ---- GroupNormalization ---- */

static si_result gnorm_prep(si_kctx *c, int64_t *groups, bool *per_channel)
{
    si_result st;
    for (int i = 0; i < 3; i++)
        if ((st = nn_need(c, i, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 2, got %d", x->ndim);
    const si_attr *a = si_node_attr(c->node, "num_groups");
    if (!a) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute num_groups is required");
    int64_t g = a->i, C = x->dims[1];
    if (g < 1 || C % g != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "num_groups %lld must be positive and divide the %lld channels",
                         (long long)g, (long long)C);
    *groups = g;
    const si_tensor *sc = nn_in(c, 1), *b = nn_in(c, 2);
    if ((st = nn_check_type(c, sc, SI_T_FLOATS, "scale")) || (st = nn_check_type(c, b, SI_T_FLOATS, "bias")))
        return st;
    /* opset 21: one scale/bias per channel. opset 18 specifies one per group, but exporters also wrote one
     * per channel (the reason for the revision), so accept both there. */
    int64_t n = nn_count(sc);
    bool ok = n == nn_count(b) && (n == C || (c->opset < 21 && n == g));
    if (!ok)
        return si_op_err(c, SI_ERR_INVALID_ARG, "scale and bias must have %lld values (got %lld and %lld)",
                         (long long)(c->opset >= 21 ? C : g), (long long)n, (long long)nn_count(b));
    *per_channel = c->opset >= 21 || n != g;
    return SI_OK;
}

static si_result gnorm_infer(si_kctx *c)
{
    int64_t g = 0;
    bool pc = false;
    si_result st = gnorm_prep(c, &g, &pc);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result gnorm_run(si_kctx *c)
{
    int64_t G = 0;
    bool pc = false;
    si_result st = gnorm_prep(c, &G, &pc);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y) return SI_OK;
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t N = x->dims[0], C = x->dims[1], S = nn_prod(x->dims, 2, x->ndim), cpg = C / G;
    double *xd = nn_to_f64(x), *sc = nn_to_f64(nn_in(c, 1)), *bi = nn_to_f64(nn_in(c, 2));
    if (!xd || !sc || !bi) {
        nn_free_all(xd, sc, bi, NULL, NULL, NULL);
        return nn_nomem(c);
    }
    const int64_t gsz = cpg * S;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double *v = xd + (n * C + g * cpg) * S, s = 0, q = 0;
            for (int64_t i = 0; i < gsz; i++) s += v[i];
            const double m = gsz > 0 ? s / (double)gsz : 0.0;
            for (int64_t i = 0; i < gsz; i++) q += (v[i] - m) * (v[i] - m);
            const double inv = 1.0 / sqrt((gsz > 0 ? q / (double)gsz : 0.0) + eps);
            for (int64_t i = 0; i < gsz; i++) {
                const int64_t k = pc ? g * cpg + i / S : g;
                v[i] = (v[i] - m) * inv * sc[k] + bi[k];
            }
        }
    nn_from_f64(y, xd);
    nn_free_all(xd, sc, bi, NULL, NULL, NULL);
    return SI_OK;
}

/* ---- LpNormalization ---- */

static si_result lpnorm_prep(si_kctx *c, int *axis, int64_t *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "input"))) return st;
    if ((st = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, axis))) return st;
    *p = si_attr_int(c->node, "p", 2);
    if (*p != 1 && *p != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "p must be 1 or 2, got %lld", (long long)*p);
    return SI_OK;
}

static si_result lpnorm_infer(si_kctx *c)
{
    int axis = 0;
    int64_t p = 0;
    si_result st = lpnorm_prep(c, &axis, &p);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result lpnorm_run(si_kctx *c)
{
    int axis = 0;
    int64_t p = 0;
    si_result st = lpnorm_prep(c, &axis, &p);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y) return SI_OK;
    const int64_t outer = nn_prod(x->dims, 0, axis), len = x->dims[axis], inner = nn_prod(x->dims, axis + 1, x->ndim);
    double *xd = nn_to_f64(x);
    if (!xd) return nn_nomem(c);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double *v = xd + o * len * inner + i, nrm = 0;
            for (int64_t k = 0; k < len; k++) nrm += p == 1 ? fabs(v[k * inner]) : v[k * inner] * v[k * inner];
            if (p == 2) nrm = sqrt(nrm);
            for (int64_t k = 0; k < len; k++) v[k * inner] = nrm != 0 ? v[k * inner] / nrm : 0.0;
        }
    nn_from_f64(y, xd);
    si_free(xd);
    return SI_OK;
}

/* ---- LRN ---- */

static si_result lrn_prep(si_kctx *c, int64_t *size)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 2, got %d", x->ndim);
    const si_attr *a = si_node_attr(c->node, "size");
    if (!a || a->i < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute size is required and must be positive");
    *size = a->i;
    return SI_OK;
}

static si_result lrn_infer(si_kctx *c)
{
    int64_t size = 0;
    si_result st = lrn_prep(c, &size);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result lrn_run(si_kctx *c)
{
    int64_t size = 0;
    si_result st = lrn_prep(c, &size);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y) return SI_OK;
    const double alpha = si_attr_float(c->node, "alpha", 1e-4f), beta = si_attr_float(c->node, "beta", 0.75f);
    const double bias = si_attr_float(c->node, "bias", 1.0f);
    const int64_t N = x->dims[0], C = x->dims[1], S = nn_prod(x->dims, 2, x->ndim);
    const int64_t lo = (size - 1) / 2, hi = size - 1 - lo; /* floor((size-1)/2), ceil((size-1)/2) */
    double *xd = nn_to_f64(x), *yd = si_malloc((size_t)SI_MAX(nn_count(x), (int64_t)1) * sizeof(double));
    if (!xd || !yd) {
        nn_free_all(xd, yd, NULL, NULL, NULL, NULL);
        return nn_nomem(c);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            const int64_t c0 = SI_MAX((int64_t)0, ch - lo), c1 = SI_MIN(C - 1, ch + hi);
            for (int64_t i = 0; i < S; i++) {
                double sq = 0;
                for (int64_t k = c0; k <= c1; k++) {
                    const double v = xd[(n * C + k) * S + i];
                    sq += v * v;
                }
                const int64_t at = (n * C + ch) * S + i;
                yd[at] = xd[at] / pow(bias + alpha / (double)size * sq, beta);
            }
        }
    nn_from_f64(y, yd);
    nn_free_all(xd, yd, NULL, NULL, NULL, NULL);
    return SI_OK;
}

/* ---- MeanVarianceNormalization ---- */

static si_result mvn_prep(si_kctx *c, bool *red)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "X"))) return st;
    for (int i = 0; i < SI_MAX_DIMS; i++) red[i] = false;
    int cnt = 0;
    const int64_t *ax = c->opset >= 9 ? si_attr_ints(c->node, "axes", &cnt) : NULL;
    static const int64_t dflt[3] = {0, 2, 3}, per_chan[2] = {2, 3}, across[3] = {1, 2, 3};
    if (!ax && c->opset < 9) {
        /* the experimental opset-1 form: per (n, c) unless across_channels */
        bool ac = si_attr_int(c->node, "across_channels", 0) != 0;
        ax = ac ? across : per_chan;
        cnt = ac ? 3 : 2;
    } else if (!ax) {
        ax = dflt;
        cnt = 3;
    }
    for (int i = 0; i < cnt; i++) {
        int a = 0;
        if ((st = si_axis(c, ax[i], x->ndim, &a))) return st;
        red[a] = true;
    }
    return SI_OK;
}

static si_result mvn_infer(si_kctx *c)
{
    bool red[SI_MAX_DIMS];
    si_result st = mvn_prep(c, red);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result mvn_run(si_kctx *c)
{
    bool red[SI_MAX_DIMS];
    si_result st = mvn_prep(c, red);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(x) == 0) return SI_OK;
    const int r = x->ndim;
    const int64_t n = nn_count(x);
    /* group id of each element: its index in the shape with the reduced axes removed */
    int64_t gst[SI_MAX_DIMS], ng = 1, idx[SI_MAX_DIMS] = {0};
    for (int d = r - 1; d >= 0; d--) {
        gst[d] = red[d] ? 0 : ng;
        if (!red[d]) ng *= x->dims[d];
    }
    double *xd = nn_to_f64(x), *sum = si_calloc((size_t)(2 * ng), sizeof(double));
    int64_t *gid = si_malloc((size_t)n * sizeof(int64_t)), *gcnt = si_calloc((size_t)ng, sizeof(int64_t));
    if (!xd || !sum || !gid || !gcnt) {
        nn_free_all(xd, sum, gid, gcnt, NULL, NULL);
        return nn_nomem(c);
    }
    double *sq = sum + ng;
    int64_t g = 0;
    for (int64_t i = 0; i < n; i++) {
        gid[i] = g;
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++;
            g += gst[d];
            if (idx[d] < x->dims[d]) break;
            g -= gst[d] * idx[d];
            idx[d] = 0;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        sum[gid[i]] += xd[i];
        gcnt[gid[i]]++;
    }
    for (int64_t k = 0; k < ng; k++) sum[k] = gcnt[k] ? sum[k] / (double)gcnt[k] : 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double dv = xd[i] - sum[gid[i]];
        sq[gid[i]] += dv * dv;
    }
    for (int64_t k = 0; k < ng; k++) sq[k] = sqrt(gcnt[k] ? sq[k] / (double)gcnt[k] : 0.0) + 1e-9;
    const bool scale = c->opset >= 9 || si_attr_int(c->node, "normalize_variance", 1) != 0;
    for (int64_t i = 0; i < n; i++) xd[i] = scale ? (xd[i] - sum[gid[i]]) / sq[gid[i]] : xd[i] - sum[gid[i]];
    nn_from_f64(y, xd);
    nn_free_all(xd, sum, gid, gcnt, NULL, NULL);
    return SI_OK;
}

/* =========================================================================================================
 * MatMul, Gemm
 */

typedef struct nn_mm {
    int ob;                                          /* rank of the broadcast batch shape */
    int64_t bd[SI_MAX_DIMS], ast[SI_MAX_DIMS], bst[SI_MAX_DIMS]; /* batch shape, strides in matrices */
    int64_t M, N, K, nbatch, abatch, bbatch;
    int nout;
    int64_t odims[SI_MAX_DIMS];
} nn_mm;

static si_result mm_prep(si_kctx *c, nn_mm *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false)) || (st = nn_need(c, 1, false))) return st;
    const si_tensor *a = nn_in(c, 0), *b = nn_in(c, 1);
    if ((st = nn_check_type(c, a, NN_T_GEMM, "A")) || (st = nn_same_type(c, a, b, "B"))) return st;
    if (a->ndim < 1 || b->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "operands must have rank >= 1");
    const int ar = a->ndim, br = b->ndim;
    p->M = ar >= 2 ? a->dims[ar - 2] : 1;
    p->K = a->dims[ar - 1];
    const int64_t kb = br >= 2 ? b->dims[br - 2] : b->dims[0];
    p->N = br >= 2 ? b->dims[br - 1] : 1;
    if (kb != p->K) {
        char s1[96], s2[96];
        return si_op_err(c, SI_ERR_INVALID_ARG, "inner dimensions differ: A %s, B %s",
                         si_shape_str(s1, sizeof s1, a->dtype, a->ndim, a->dims),
                         si_shape_str(s2, sizeof s2, b->dtype, b->ndim, b->dims));
    }
    const int na = ar >= 2 ? ar - 2 : 0, nb = br >= 2 ? br - 2 : 0;
    if ((st = si_broadcast_shape(c, na, a->dims, nb, b->dims, &p->ob, p->bd))) return st;
    si_broadcast_strides(na, a->dims, p->ob, p->bd, p->ast);
    si_broadcast_strides(nb, b->dims, p->ob, p->bd, p->bst);
    p->nbatch = nn_prod(p->bd, 0, p->ob);
    p->abatch = nn_prod(a->dims, 0, na);
    p->bbatch = nn_prod(b->dims, 0, nb);
    p->nout = 0;
    for (int i = 0; i < p->ob; i++) p->odims[p->nout++] = p->bd[i];
    if (ar >= 2) p->odims[p->nout++] = p->M;
    if (br >= 2) p->odims[p->nout++] = p->N;
    if (p->nout > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "result rank exceeds %d", SI_MAX_DIMS);
    return SI_OK;
}

static si_result matmul_infer(si_kctx *c)
{
    nn_mm p;
    si_result st = mm_prep(c, &p);
    if (st) return st;
    return nn_set_out(c, 0, nn_in(c, 0)->dtype, p.nout, p.odims);
}

/* Matrix offsets (in matrices) of A and B for output batch index bi. */
static void mm_offsets(const nn_mm *p, int64_t bi, int64_t *ao, int64_t *bo)
{
    int64_t a = 0, b = 0;
    for (int d = p->ob - 1; d >= 0; d--) {
        const int64_t i = bi % p->bd[d];
        bi /= p->bd[d];
        a += i * p->ast[d];
        b += i * p->bst[d];
    }
    *ao = a;
    *bo = b;
}

static si_result matmul_run(si_kctx *c)
{
    nn_mm p;
    si_result st = mm_prep(c, &p);
    if (st) return st;
    const si_tensor *a = nn_in(c, 0), *b = nn_in(c, 1);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    if (p.K == 0) return SI_OK; /* an empty inner dimension: the outputs are the (zero-filled) sums of nothing */
    const int64_t M = p.M, N = p.N, K = p.K, asz = M * K, bsz = K * N, ysz = M * N;
    const si_dtype dt = a->dtype;
    if (dt == SI_F32 || dt == SI_F16 || dt == SI_BF16) {
        const float *af = a->data, *bf = b->data;
        float *ta = NULL, *tb = NULL, *yf = y->data, *ty = NULL;
        if (dt != SI_F32) {
            ta = nn_to_f32(a);
            tb = nn_to_f32(b);
            ty = si_malloc((size_t)nn_count(y) * sizeof(float));
            af = ta;
            bf = tb;
            yf = ty;
        }
        bool ok = af && bf && yf;
        if (ok && p.bbatch == 1 && p.abatch == p.nbatch) {
            /* B shared by every batch: one GEMM over all rows of A */
            ok = nn_sgemm(p.nbatch * M, N, K, af, K, 1, bf, N, 1, yf, N, false);
        } else {
            for (int64_t bi = 0; ok && bi < p.nbatch; bi++) {
                int64_t ao, bo;
                mm_offsets(&p, bi, &ao, &bo);
                ok = nn_sgemm(M, N, K, af + ao * asz, K, 1, bf + bo * bsz, N, 1, yf + bi * ysz, N, false);
            }
        }
        if (ok && dt != SI_F32) nn_from_f32(y, yf);
        nn_free_all(ta, tb, ty, NULL, NULL, NULL);
        return ok ? SI_OK : nn_nomem(c);
    }
    if (dt == SI_F64) {
        const double *ad = a->data, *bd = b->data;
        double *yd = y->data;
        for (int64_t bi = 0; bi < p.nbatch; bi++) {
            int64_t ao, bo;
            mm_offsets(&p, bi, &ao, &bo);
            nn_dgemm(M, N, K, ad + ao * asz, K, 1, bd + bo * bsz, N, 1, yd + bi * ysz, N, false);
        }
        return SI_OK;
    }
    int64_t *ai = nn_to_i64(a), *bi64 = nn_to_i64(b), *yi = si_malloc((size_t)nn_count(y) * sizeof(int64_t));
    if (!ai || !bi64 || !yi) {
        nn_free_all(ai, bi64, yi, NULL, NULL, NULL);
        return nn_nomem(c);
    }
    for (int64_t bi = 0; bi < p.nbatch; bi++) {
        int64_t ao, bo;
        mm_offsets(&p, bi, &ao, &bo);
        nn_igemm(M, N, K, ai + ao * asz, K, 1, bi64 + bo * bsz, N, 1, yi + bi * ysz, N);
    }
    for (int64_t i = 0; i < nn_count(y); i++) si_store_i64(y->dtype, y->data, i, yi[i]);
    nn_free_all(ai, bi64, yi, NULL, NULL, NULL);
    return SI_OK;
}

typedef struct nn_gemm {
    int64_t M, N, K;
    bool ta, tb;
} nn_gemm;

static si_result gemm_prep(si_kctx *c, nn_gemm *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false)) || (st = nn_need(c, 1, false))) return st;
    const si_tensor *a = nn_in(c, 0), *b = nn_in(c, 1), *cc = nn_in(c, 2);
    if ((st = nn_check_type(c, a, NN_T_GEMM, "A")) || (st = nn_same_type(c, a, b, "B"))) return st;
    if (cc && (st = nn_same_type(c, a, cc, "C"))) return st;
    if (a->ndim != 2 || b->ndim != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "A and B must be 2-D (got ranks %d and %d)", a->ndim, b->ndim);
    p->ta = si_attr_int(c->node, "transA", 0) != 0;
    p->tb = si_attr_int(c->node, "transB", 0) != 0;
    p->M = p->ta ? a->dims[1] : a->dims[0];
    p->K = p->ta ? a->dims[0] : a->dims[1];
    const int64_t kb = p->tb ? b->dims[1] : b->dims[0];
    p->N = p->tb ? b->dims[0] : b->dims[1];
    if (kb != p->K)
        return si_op_err(c, SI_ERR_INVALID_ARG, "inner dimensions differ: %lld (A) and %lld (B)", (long long)p->K,
                         (long long)kb);
    if (cc) {
        int64_t dims[2] = {p->M, p->N};
        if ((st = nn_bcast_check(c, cc, 2, dims, "C"))) return st;
    }
    return SI_OK;
}

static si_result gemm_infer(si_kctx *c)
{
    nn_gemm p;
    si_result st = gemm_prep(c, &p);
    if (st) return st;
    int64_t dims[2] = {p.M, p.N};
    return nn_set_out(c, 0, nn_in(c, 0)->dtype, 2, dims);
}

static si_result gemm_run(si_kctx *c)
{
    nn_gemm p;
    si_result st = gemm_prep(c, &p);
    if (st) return st;
    const si_tensor *a = nn_in(c, 0), *b = nn_in(c, 1), *cc = nn_in(c, 2);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    const double alpha = si_attr_float(c->node, "alpha", 1.0f), beta = si_attr_float(c->node, "beta", 1.0f);
    const int64_t M = p.M, N = p.N, K = p.K, MN = M * N;
    const int64_t rsa = p.ta ? 1 : K, csa = p.ta ? M : 1, rsb = p.tb ? 1 : N, csb = p.tb ? K : 1;
    int64_t dims[2] = {M, N};
    double *cd = cc ? nn_bcast_expand(cc, 2, dims) : NULL;
    if (cc && !cd) return nn_nomem(c);
    const si_dtype dt = a->dtype;
    bool ok = true;
    if (dt == SI_F32 || dt == SI_F16 || dt == SI_BF16) {
        const float *af = a->data, *bf = b->data;
        float *ta = NULL, *tb = NULL, *yf = y->data, *ty = NULL;
        if (dt != SI_F32) {
            ta = nn_to_f32(a);
            tb = nn_to_f32(b);
            ty = si_malloc((size_t)MN * sizeof(float));
            af = ta;
            bf = tb;
            yf = ty;
        }
        ok = af && bf && yf && nn_sgemm(M, N, K, af, rsa, csa, bf, rsb, csb, yf, N, false);
        if (ok && (alpha != 1.0 || cd))
            for (int64_t i = 0; i < MN; i++) yf[i] = (float)(alpha * yf[i] + (cd ? beta * cd[i] : 0.0));
        if (ok && dt != SI_F32) nn_from_f32(y, yf);
        nn_free_all(ta, tb, ty, cd, NULL, NULL);
    } else if (dt == SI_F64) {
        double *yd = y->data;
        nn_dgemm(M, N, K, a->data, rsa, csa, b->data, rsb, csb, yd, N, false);
        for (int64_t i = 0; i < MN; i++) yd[i] = alpha * yd[i] + (cd ? beta * cd[i] : 0.0);
        si_free(cd);
    } else {
        int64_t *ai = nn_to_i64(a), *bi = nn_to_i64(b), *yi = si_malloc((size_t)MN * sizeof(int64_t));
        int64_t *ci = cc ? nn_to_i64(cc) : NULL;
        ok = ai && bi && yi && (!cc || ci);
        if (ok) {
            nn_igemm(M, N, K, ai, rsa, csa, bi, rsb, csb, yi, N);
            if (alpha == 1.0 && (beta == 1.0 || !cc)) {
                /* exact integer path; C broadcast via its expanded doubles' source indices */
                int64_t cst[2] = {0, 0};
                if (cc) si_broadcast_strides(cc->ndim, cc->dims, 2, dims, cst);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        uint64_t v = (uint64_t)yi[i * N + j];
                        if (cc) v += (uint64_t)ci[i * cst[0] + j * cst[1]];
                        si_store_i64(y->dtype, y->data, i * N + j, (int64_t)v);
                    }
            } else {
                for (int64_t i = 0; i < MN; i++)
                    si_store_f64(y->dtype, y->data, i, alpha * (double)yi[i] + (cd ? beta * cd[i] : 0.0));
            }
        }
        nn_free_all(ai, bi, yi, ci, cd, NULL);
    }
    return ok ? SI_OK : nn_nomem(c);
}

/* =========================================================================================================
 * Softmax, LogSoftmax, Hardmax
 */

enum { NN_SOFTMAX, NN_LOGSOFTMAX, NN_HARDMAX };

/* opset < 13: the input is coerced to 2-D at `axis` (default 1) and normalised over the second dimension;
 * opset >= 13: normalised along the single axis (default -1). */
static si_result smax_prep(si_kctx *c, int64_t *outer, int64_t *len, int64_t *inner)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "input"))) return st;
    const int r = x->ndim;
    const bool old = c->opset < 13;
    int64_t axis = si_attr_int(c->node, "axis", old ? 1 : -1);
    int a = 0;
    if (r == 0) {
        *outer = *len = *inner = 1;
        return SI_OK;
    }
    if (old && axis == r) a = r;
    else if ((st = si_axis(c, axis, r, &a))) return st;
    *outer = nn_prod(x->dims, 0, a);
    if (old) {
        *len = nn_prod(x->dims, a, r);
        *inner = 1;
    } else {
        *len = x->dims[a];
        *inner = nn_prod(x->dims, a + 1, r);
    }
    return SI_OK;
}

static si_result smax_infer(si_kctx *c)
{
    int64_t o = 0, l = 0, i = 0;
    si_result st = smax_prep(c, &o, &l, &i);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result smax_run_common(si_kctx *c, int kind)
{
    int64_t outer = 0, len = 0, inner = 0;
    si_result st = smax_prep(c, &outer, &len, &inner);
    if (st) return st;
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    double *xd = nn_to_f64(nn_in(c, 0));
    if (!xd) return nn_nomem(c);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double *v = xd + o * len * inner + i;
            double mx = v[0];
            int64_t arg = 0;
            for (int64_t k = 1; k < len; k++)
                if (v[k * inner] > mx) {
                    mx = v[k * inner];
                    arg = k;
                }
            if (kind == NN_HARDMAX) {
                for (int64_t k = 0; k < len; k++) v[k * inner] = k == arg ? 1.0 : 0.0;
                continue;
            }
            double s = 0;
            for (int64_t k = 0; k < len; k++) s += exp(v[k * inner] - mx);
            if (kind == NN_SOFTMAX) {
                for (int64_t k = 0; k < len; k++) v[k * inner] = exp(v[k * inner] - mx) / s;
            } else {
                const double ls = log(s);
                for (int64_t k = 0; k < len; k++) v[k * inner] = v[k * inner] - mx - ls;
            }
        }
    nn_from_f64(y, xd);
    si_free(xd);
    return SI_OK;
}

static si_result softmax_run(si_kctx *c)
{
    return smax_run_common(c, NN_SOFTMAX);
}
static si_result logsoftmax_run(si_kctx *c)
{
    return smax_run_common(c, NN_LOGSOFTMAX);
}
static si_result hardmax_run(si_kctx *c)
{
    return smax_run_common(c, NN_HARDMAX);
}

/* =========================================================================================================
 * Dropout (inference: identity; mask all true)
 */

static si_result dropout_prep(si_kctx *c)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0), *r = nn_in(c, 1), *t = nn_in(c, 2);
    if ((st = nn_check_type(c, x, SI_T_FLOATS, "data"))) return st;
    if (c->opset >= 12) {
        if (r && (st = nn_check_type(c, r, SI_T_FLOATS, "ratio"))) return st;
        if (r && nn_count(r) != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "ratio must be a scalar");
        if (t && t->dtype != SI_BOOL)
            return si_op_err(c, SI_ERR_INVALID_ARG, "training_mode must be bool, got %s", si_dtype_name(t->dtype));
        if (t && nn_count(t) != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "training_mode must be a scalar");
    }
    return SI_OK;
}

/* Training-mode dropout is random: refused before anything runs when the graph may switch it on, i.e. when
 * training_mode is not a constant false (or the ratio is not a constant 0). */
static si_result dropout_check(si_kctx *c)
{
    if (c->opset < 12 || c->n_in < 3 || !c->in[2]) return SI_OK;
    const si_tensor *r = c->n_in > 1 ? c->in[1] : NULL, *t = c->in[2];
    bool training_off = t->data && t->nbytes && si_load_f64(SI_BOOL, t->data, 0) == 0;
    bool ratio_zero = r && r->data && r->nbytes && si_load_f64(r->dtype, r->data, 0) == 0;
    if (training_off || ratio_zero) return SI_OK;
    return si_op_err(c, SI_ERR_UNSUPPORTED, "training_mode is %s: training-mode (random) dropout is not supported",
                     t->data ? "true" : "a graph input, not a constant");
}

static si_result dropout_infer(si_kctx *c)
{
    si_result st = dropout_prep(c);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = si_same_as_input(c, 0, 0))) return st;
    return nn_set_out(c, 1, c->opset >= 10 ? SI_BOOL : x->dtype, x->ndim, x->dims);
}

static si_result dropout_run(si_kctx *c)
{
    si_result st = dropout_prep(c);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0), *r = nn_in(c, 1), *t = nn_in(c, 2);
    if (c->opset >= 12 && t && t->data && si_load_f64(SI_BOOL, t->data, 0) != 0) {
        double ratio = (r && r->data) ? si_load_f64(r->dtype, r->data, 0) : 0.5;
        if (ratio < 0 || ratio >= 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "ratio %g must be in [0, 1)", ratio);
        if (ratio != 0)
            return si_op_err(c, SI_ERR_UNSUPPORTED,
                             "training mode with ratio %g (random dropout) is not supported", ratio);
    }
    si_tensor *y = nn_out(c, 0), *mask = nn_out(c, 1);
    if (y && y->data && x->data) memcpy(y->data, x->data, SI_MIN(y->nbytes, x->nbytes));
    if (mask && mask->data) {
        if (mask->dtype == SI_BOOL) memset(mask->data, 1, mask->nbytes);
        else
            for (int64_t i = 0; i < nn_count(mask); i++) si_store_f64(mask->dtype, mask->data, i, 1.0);
    }
    return SI_OK;
}

/* =========================================================================================================
 * Resize, Upsample
 */



static si_result nn_pick(const si_kctx *c, const char *attr, const char *dflt, const char *const *names, int n,
                         int *out)
{
    const char *s = si_attr_str(c->node, attr, dflt);
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return SI_OK;
        }
    return si_op_err(c, SI_ERR_INVALID_ARG, "unsupported %s '%s'", attr, s);
}

si_result si_resize_prepare(si_kctx *c, bool upsample, si_resize *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_ALL, "X"))) return st;
    const int r = x->ndim;
    if (r < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1");
    p->rank = r;
    const bool legacy = upsample || c->opset < 11; /* Upsample and Resize-10 */

    static const char *const modes[4] = {"nearest", "linear", "cubic", "bilinear"};
    int m = 0;
    if ((st = nn_pick(c, "mode", "nearest", modes, legacy ? 2 : 3, &m))) {
        if (!legacy || strcmp(si_attr_str(c->node, "mode", ""), "bilinear") != 0) return st;
        m = SI_RS_LINEAR; /* old Upsample spelling */
    }
    p->mode = m;
    if (legacy) {
        p->ctm = SI_CT_ASYMMETRIC;
        p->nearest = SI_NM_FLOOR;
        p->cubic_a = -0.75;
        p->extrap = 0;
        p->exclude_outside = false;
        p->antialias = false;
    } else {
        static const char *const ctms[7] = {"half_pixel",         "pytorch_half_pixel", "align_corners",
                                            "asymmetric",         "tf_half_pixel_for_nn", "tf_crop_and_resize",
                                            "half_pixel_symmetric"};
        static const char *const nms[4] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
        if ((st = nn_pick(c, "coordinate_transformation_mode", "half_pixel", ctms, 7, &p->ctm)) ||
            (st = nn_pick(c, "nearest_mode", "round_prefer_floor", nms, 4, &p->nearest)))
            return st;
        p->cubic_a = si_attr_float(c->node, "cubic_coeff_a", -0.75f);
        p->extrap = si_attr_float(c->node, "extrapolation_value", 0.0f);
        p->exclude_outside = si_attr_int(c->node, "exclude_outside", 0) != 0;
        p->antialias = c->opset >= 18 && si_attr_int(c->node, "antialias", 0) != 0;
    }

    /* axes (opset 18) */
    int cnt = 0;
    const int64_t *ax = (!legacy && c->opset >= 18) ? si_attr_ints(c->node, "axes", &cnt) : NULL;
    bool seen[SI_MAX_DIMS] = {false};
    if (ax && cnt > 0) {
        if (cnt > r) return si_op_err(c, SI_ERR_INVALID_ARG, "axes has %d values for rank %d", cnt, r);
        for (int i = 0; i < cnt; i++) {
            if ((st = si_axis(c, ax[i], r, &p->axes[i]))) return st;
            if (seen[p->axes[i]]) return si_op_err(c, SI_ERR_INVALID_ARG, "axes contains %lld twice", (long long)ax[i]);
            seen[p->axes[i]] = true;
        }
        p->naxes = cnt;
    } else {
        for (int i = 0; i < r; i++) p->axes[i] = i;
        p->naxes = r;
    }
    for (int d = 0; d < r; d++) {
        p->in[d] = p->out[d] = x->dims[d];
        p->scale[d] = 1.0;
    }

    /* scales or sizes */
    double sv[SI_MAX_DIMS];
    int64_t zv[SI_MAX_DIMS];
    int ns = -1, nz = -1;
    if (upsample && c->opset < 9) {
        const float *f = si_attr_floats(c->node, "scales", &cnt);
        if (!f) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute scales is required");
        if (cnt > SI_MAX_DIMS) cnt = SI_MAX_DIMS + 1;
        for (int i = 0; i < cnt && i < SI_MAX_DIMS; i++) sv[i] = f[i];
        ns = cnt;
    } else {
        const int si = legacy ? 1 : 2;
        const si_tensor *ts = legacy ? nn_in(c, 1) : nn_in_nonempty(c, 2);
        const si_tensor *tz = legacy ? NULL : nn_in_nonempty(c, 3);
        if (ts && tz) return si_op_err(c, SI_ERR_INVALID_ARG, "only one of scales and sizes may be given");
        if (!ts && !tz) return si_op_err(c, SI_ERR_INVALID_ARG, "one of scales and sizes is required");
        if (ts) {
            if ((st = nn_need(c, si, true))) return st;
            if (!si_dtype_is_float(ts->dtype))
                return si_op_err(c, SI_ERR_INVALID_ARG, "scales must be a float tensor");
            if ((st = nn_read_doubles(c, ts, SI_MAX_DIMS, sv, &ns, "scales"))) return st;
        } else {
            if ((st = nn_need(c, 3, true))) return st;
            if ((st = nn_read_ints(c, tz, SI_MAX_DIMS, zv, &nz, "sizes"))) return st;
        }
    }
    if (ns >= 0) {
        if (ns != p->naxes)
            return si_op_err(c, SI_ERR_INVALID_ARG, "scales has %d values, expected %d", ns, p->naxes);
        for (int i = 0; i < ns; i++) {
            const int d = p->axes[i];
            if (!(sv[i] > 0)) return si_op_err(c, SI_ERR_INVALID_ARG, "scales must be positive, got %g", sv[i]);
            if (sv[i] * (double)p->in[d] > 4e18)
                return si_op_err(c, SI_ERR_INVALID_ARG, "scale %g makes dimension %d too large", sv[i], d);
            p->scale[d] = sv[i];
            p->out[d] = (int64_t)floor(sv[i] * (double)p->in[d]);
        }
    } else {
        if (nz != p->naxes)
            return si_op_err(c, SI_ERR_INVALID_ARG, "sizes has %d values, expected %d", nz, p->naxes);
        for (int i = 0; i < nz; i++)
            if (zv[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "sizes must not be negative");
        static const char *const pols[3] = {"stretch", "not_larger", "not_smaller"};
        int pol = 0;
        if (!legacy && c->opset >= 18 &&
            (st = nn_pick(c, "keep_aspect_ratio_policy", "stretch", pols, 3, &pol)))
            return st;
        if (pol == 0) {
            for (int i = 0; i < nz; i++) {
                const int d = p->axes[i];
                p->out[d] = zv[i];
                p->scale[d] = p->in[d] > 0 ? (double)zv[i] / (double)p->in[d] : 1.0;
            }
        } else {
            double s = pol == 1 ? INFINITY : 0.0;
            for (int i = 0; i < nz; i++) {
                const int d = p->axes[i];
                const double v = p->in[d] > 0 ? (double)zv[i] / (double)p->in[d] : 1.0;
                s = pol == 1 ? SI_MIN(s, v) : SI_MAX(s, v);
            }
            for (int i = 0; i < nz; i++) {
                const int d = p->axes[i];
                p->scale[d] = s;
                p->out[d] = (int64_t)(s * (double)p->in[d] + 0.5);
            }
        }
    }
    for (int d = 0; d < r; d++) {
        p->roi0[d] = 0.0;
        p->roi1[d] = 1.0;
    }
    if (p->ctm == SI_CT_TF_CROP_AND_RESIZE) {
        const si_tensor *roi = nn_in_nonempty(c, 1);
        if (roi) {
            double rv[2 * SI_MAX_DIMS];
            int n = 0;
            if ((st = nn_read_doubles(c, roi, 2 * SI_MAX_DIMS, rv, &n, "roi"))) return st;
            if (n != 2 * p->naxes)
                return si_op_err(c, SI_ERR_INVALID_ARG, "roi has %d values, expected %d", n, 2 * p->naxes);
            for (int i = 0; i < p->naxes; i++) {
                p->roi0[p->axes[i]] = rv[i];
                p->roi1[p->axes[i]] = rv[p->naxes + i];
            }
        }
    }
    return SI_OK;
}

static si_result resize_infer_common(si_kctx *c, bool upsample)
{
    si_resize p;
    si_result st = si_resize_prepare(c, upsample, &p);
    if (st) return st;
    return nn_set_out(c, 0, nn_in(c, 0)->dtype, p.rank, p.out);
}

static double nn_cubic_w(double x, double A)
{
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
}

/* Interpolation taps of one axis: for output position o, nt source indices and weights, and whether the
 * position lies outside the crop box (tf_crop_and_resize: extrapolation value). */
typedef struct nn_taps {
    int64_t nt;
    int64_t *idx;
    double *w;
    unsigned char *ext;
} nn_taps;

static bool nn_resize_taps(const si_resize *p, int d, double roi0, double roi1, nn_taps *t)
{
    const int64_t in = p->in[d], on = p->out[d];
    const double s = p->scale[d], outf = s * (double)in;
    const bool ident = in == on && s == 1.0 && p->ctm != SI_CT_TF_CROP_AND_RESIZE &&
                       p->ctm != SI_CT_TF_HALF_PIXEL_FOR_NN;
    const double sa = SI_MIN(s, 1.0); /* antialias kernel scale */
    int64_t nt = 1, start = 0;
    if (!ident && p->mode == SI_RS_LINEAR) {
        start = p->antialias ? (int64_t)floor(-1.0 / sa) + 1 : 0;
        nt = 2 - 2 * start;
    } else if (!ident && p->mode == SI_RS_CUBIC) {
        start = p->antialias ? (int64_t)floor(-2.0 / sa) + 1 : -1;
        nt = 2 - 2 * start;
    }
    t->nt = nt;
    t->idx = si_malloc((size_t)(SI_MAX(on, (int64_t)1) * nt) * sizeof(int64_t));
    t->w = si_malloc((size_t)(SI_MAX(on, (int64_t)1) * nt) * sizeof(double));
    t->ext = si_calloc((size_t)SI_MAX(on, (int64_t)1), 1);
    if (!t->idx || !t->w || !t->ext) return false;
    for (int64_t o = 0; o < on; o++) {
        int64_t *ix = t->idx + o * nt;
        double *w = t->w + o * nt;
        if (ident) {
            ix[0] = o;
            w[0] = 1.0;
            continue;
        }
        double x;
        switch (p->ctm) {
        case SI_CT_PYTORCH_HALF_PIXEL: x = on > 1 ? (o + 0.5) / s - 0.5 : 0.0; break;
        case SI_CT_ALIGN_CORNERS: x = outf == 1.0 ? 0.0 : (double)o * (double)(in - 1) / (outf - 1.0); break;
        case SI_CT_ASYMMETRIC: x = (double)o / s; break;
        case SI_CT_TF_HALF_PIXEL_FOR_NN: x = (o + 0.5) / s; break;
        case SI_CT_HALF_PIXEL_SYMMETRIC: {
            const double adj = (double)on / outf, center = (double)in / 2.0;
            x = center * (1.0 - adj) + (o + 0.5) / s - 0.5;
            break;
        }
        case SI_CT_TF_CROP_AND_RESIZE:
            x = outf == 1.0 ? (roi1 - roi0) * (double)(in - 1) / 2.0
                            : (double)o * (roi1 - roi0) * (double)(in - 1) / (outf - 1.0);
            x += roi0 * (double)(in - 1);
            if (x < 0 || x > (double)(in - 1)) t->ext[o] = 1;
            break;
        default: x = (o + 0.5) / s - 0.5; break;
        }
        const double xf = floor(x);
        if (p->mode == SI_RS_NEAREST) {
            const double fr = x - xf;
            int64_t i = (int64_t)xf;
            if (fr != 0) {
                switch (p->nearest) {
                case SI_NM_ROUND_PREFER_CEIL: i += fr >= 0.5 ? 1 : 0; break;
                case SI_NM_FLOOR: break;
                case SI_NM_CEIL: i += 1; break;
                default: i += fr > 0.5 ? 1 : 0; break;
                }
            }
            ix[0] = SI_MAX((int64_t)0, SI_MIN(in - 1, i));
            w[0] = 1.0;
            continue;
        }
        /* the neighbours left of x are preferred: ratio in (0, 1] */
        int64_t base;
        double ratio;
        if (x == xf) {
            base = (int64_t)xf - 1;
            ratio = 1.0;
        } else {
            base = (int64_t)xf;
            ratio = x - xf;
        }
        double sum = 0;
        for (int64_t k = 0; k < nt; k++) {
            const int64_t off = start + k;
            double v;
            if (p->mode == SI_RS_LINEAR) {
                v = p->antialias ? SI_MAX(0.0, 1.0 - fabs(((double)off - ratio) * sa))
                                 : (off == 0 ? 1.0 - ratio : ratio);
            } else {
                v = p->antialias ? nn_cubic_w(sa * ((double)off - ratio), p->cubic_a)
                                 : nn_cubic_w((double)off - ratio, p->cubic_a);
            }
            const int64_t src = base + off;
            if (p->exclude_outside && (src < 0 || src >= in)) v = 0.0;
            w[k] = v;
            sum += v;
            ix[k] = SI_MAX((int64_t)0, SI_MIN(in - 1, src));
        }
        if ((p->antialias || p->exclude_outside) && sum != 0)
            for (int64_t k = 0; k < nt; k++) w[k] /= sum;
    }
    return true;
}

static si_result resize_run_common(si_kctx *c, bool upsample)
{
    si_resize p;
    si_result st = si_resize_prepare(c, upsample, &p);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    if (nn_count(x) == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "cannot resize an empty input to a non-empty output");
    const int r = p.rank;
    nn_taps taps[SI_MAX_DIMS];
    memset(taps, 0, sizeof taps);
    double *xd = nn_to_f64(x), *yd = si_malloc((size_t)nn_count(y) * sizeof(double));
    bool ok = xd && yd;
    for (int d = 0; ok && d < r; d++) ok = nn_resize_taps(&p, d, p.roi0[d], p.roi1[d], &taps[d]);
    if (ok) {
        int64_t xs[SI_MAX_DIMS], o[SI_MAX_DIMS] = {0};
        xs[r - 1] = 1;
        for (int d = r - 2; d >= 0; d--) xs[d] = xs[d + 1] * p.in[d + 1];
        const int64_t n = nn_count(y);
        for (int64_t i = 0; i < n; i++) {
            bool ext = false;
            for (int d = 0; d < r; d++)
                if (taps[d].ext[o[d]]) ext = true;
            double acc = 0;
            if (ext) {
                acc = p.extrap;
            } else {
                int64_t k[SI_MAX_DIMS] = {0};
                for (;;) {
                    double w = 1.0;
                    int64_t off = 0;
                    for (int d = 0; d < r; d++) {
                        const int64_t at = o[d] * taps[d].nt + k[d];
                        w *= taps[d].w[at];
                        off += taps[d].idx[at] * xs[d];
                    }
                    acc += w * xd[off];
                    int d = r - 1;
                    while (d >= 0 && ++k[d] == taps[d].nt) k[d--] = 0;
                    if (d < 0) break;
                }
            }
            yd[i] = acc;
            for (int d = r - 1; d >= 0; d--) {
                if (++o[d] < p.out[d]) break;
                o[d] = 0;
            }
        }
        nn_from_f64(y, yd);
    }
    for (int d = 0; d < r; d++) {
        si_free(taps[d].idx);
        si_free(taps[d].w);
        si_free(taps[d].ext);
    }
    si_free(xd);
    si_free(yd);
    return ok ? SI_OK : nn_nomem(c);
}

static si_result resize_infer(si_kctx *c)
{
    return resize_infer_common(c, false);
}
static si_result resize_run(si_kctx *c)
{
    return resize_run_common(c, false);
}
static si_result upsample_infer(si_kctx *c)
{
    return resize_infer_common(c, true);
}
static si_result upsample_run(si_kctx *c)
{
    return resize_run_common(c, true);
}

/* =========================================================================================================
 * Pad
 */

enum { NN_PM_CONSTANT, NN_PM_REFLECT, NN_PM_EDGE, NN_PM_WRAP };

typedef struct nn_padp {
    int rank, mode;
    int64_t pb[SI_MAX_DIMS], pe[SI_MAX_DIMS], out[SI_MAX_DIMS];
} nn_padp;

static si_result pad_prep(si_kctx *c, nn_padp *p)
{
    si_result st;
    if ((st = nn_need(c, 0, false))) return st;
    const si_tensor *x = nn_in(c, 0);
    if ((st = nn_check_type(c, x, SI_T_ALL, "data"))) return st;
    const int r = x->ndim;
    p->rank = r;
    static const char *const modes[4] = {"constant", "reflect", "edge", "wrap"};
    if ((st = nn_pick(c, "mode", "constant", modes, 4, &p->mode))) return st;
    int64_t pads[2 * SI_MAX_DIMS];
    int np = 0, axes[SI_MAX_DIMS], naxes = r;
    for (int i = 0; i < r; i++) axes[i] = i;
    if (c->opset < 11) {
        int cnt = 0;
        const int64_t *v = si_attr_ints(c->node, "pads", &cnt);
        if (!v) v = si_attr_ints(c->node, "paddings", &cnt);
        if (!v) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute pads is required");
        if (cnt > 2 * SI_MAX_DIMS) return si_op_err(c, SI_ERR_INVALID_ARG, "too many pads");
        memcpy(pads, v, (size_t)cnt * sizeof(int64_t));
        np = cnt;
    } else {
        if ((st = nn_need(c, 1, true))) return st;
        if ((st = nn_read_ints(c, nn_in(c, 1), 2 * SI_MAX_DIMS, pads, &np, "pads"))) return st;
        const si_tensor *ta = c->opset >= 18 ? nn_in(c, 3) : NULL;
        if (ta) {
            int64_t av[SI_MAX_DIMS];
            bool seen[SI_MAX_DIMS] = {false};
            if ((st = nn_need(c, 3, true))) return st;
            if ((st = nn_read_ints(c, ta, SI_MAX_DIMS, av, &naxes, "axes"))) return st;
            for (int i = 0; i < naxes; i++) {
                if ((st = si_axis(c, av[i], r, &axes[i]))) return st;
                if (seen[axes[i]])
                    return si_op_err(c, SI_ERR_INVALID_ARG, "axes contains %lld twice", (long long)av[i]);
                seen[axes[i]] = true;
            }
        }
    }
    if (np != 2 * naxes) return si_op_err(c, SI_ERR_INVALID_ARG, "pads has %d values, expected %d", np, 2 * naxes);
    for (int d = 0; d < r; d++) p->pb[d] = p->pe[d] = 0;
    for (int i = 0; i < naxes; i++) {
        p->pb[axes[i]] = pads[i];
        p->pe[axes[i]] = pads[naxes + i];
    }
    for (int d = 0; d < r; d++) {
        p->out[d] = x->dims[d] + p->pb[d] + p->pe[d];
        if (p->out[d] < 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "pads make dimension %d negative (%lld)", d, (long long)p->out[d]);
        /* non-constant modes need source data along a padded dimension */
        const int64_t len = x->dims[d] - SI_MAX((int64_t)0, -p->pb[d]) - SI_MAX((int64_t)0, -p->pe[d]);
        if (p->mode != NN_PM_CONSTANT && p->out[d] > 0 && len <= 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "mode '%s' cannot pad an empty dimension %d", modes[p->mode], d);
    }
    return SI_OK;
}

static si_result pad_infer(si_kctx *c)
{
    nn_padp p;
    si_result st = pad_prep(c, &p);
    if (st) return st;
    return nn_set_out(c, 0, nn_in(c, 0)->dtype, p.rank, p.out);
}

static si_result pad_run(si_kctx *c)
{
    nn_padp p;
    si_result st = pad_prep(c, &p);
    if (st) return st;
    const si_tensor *x = nn_in(c, 0);
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    const int r = p.rank;
    const size_t esz = si_dtype_size(x->dtype);
    if (r == 0) {
        memcpy(y->data, x->data, esz);
        return SI_OK;
    }
    /* the constant element */
    unsigned char cval[16];
    memset(cval, 0, sizeof cval);
    if (p.mode == NN_PM_CONSTANT) {
        const si_tensor *cv = c->opset >= 11 ? nn_in_nonempty(c, 2) : NULL;
        if (cv) {
            if (!cv->data) return si_op_err(c, SI_ERR_INVALID_ARG, "constant_value has no data");
            if (si_dtype_is_int(x->dtype) && si_dtype_is_int(cv->dtype))
                si_store_i64(x->dtype, cval, 0, si_load_i64(cv->dtype, cv->data, 0));
            else
                si_store_f64(x->dtype, cval, 0, si_load_f64(cv->dtype, cv->data, 0));
        } else if (c->opset < 11) {
            si_store_f64(x->dtype, cval, 0, si_attr_float(c->node, "value", 0.0f));
        }
    }
    /* per dimension: output coordinate -> input coordinate, or -1 for the constant */
    int64_t *map[SI_MAX_DIMS] = {NULL};
    bool ok = true;
    for (int d = 0; d < r && ok; d++) {
        map[d] = si_malloc((size_t)SI_MAX(p.out[d], (int64_t)1) * sizeof(int64_t));
        if (!map[d]) {
            ok = false;
            break;
        }
        const int64_t lo = SI_MAX((int64_t)0, -p.pb[d]);
        const int64_t len = x->dims[d] - lo - SI_MAX((int64_t)0, -p.pe[d]);
        const int64_t shift = SI_MAX((int64_t)0, p.pb[d]);
        for (int64_t o = 0; o < p.out[d]; o++) {
            const int64_t i = o - shift;
            int64_t v;
            if (i >= 0 && i < len) {
                v = i;
            } else if (p.mode == NN_PM_CONSTANT || len <= 0) {
                v = -1;
            } else if (p.mode == NN_PM_EDGE) {
                v = i < 0 ? 0 : len - 1;
            } else if (p.mode == NN_PM_WRAP) {
                v = ((i % len) + len) % len;
            } else if (len == 1) {
                v = 0;
            } else {
                const int64_t per = 2 * (len - 1);
                v = ((i % per) + per) % per;
                if (v >= len) v = per - v;
            }
            map[d][o] = v < 0 ? -1 : lo + v;
        }
    }
    if (ok) {
        int64_t xs[SI_MAX_DIMS], o[SI_MAX_DIMS] = {0};
        xs[r - 1] = 1;
        for (int d = r - 2; d >= 0; d--) xs[d] = xs[d + 1] * x->dims[d + 1];
        const int64_t W = p.out[r - 1], rows = nn_count(y) / W;
        const unsigned char *src = x->data;
        unsigned char *dst = y->data;
        for (int64_t row = 0; row < rows; row++) {
            int64_t base = 0;
            bool inside = true;
            for (int d = 0; d < r - 1; d++) {
                const int64_t m = map[d][o[d]];
                if (m < 0) inside = false;
                else base += m * xs[d];
            }
            const int64_t *ml = map[r - 1];
            for (int64_t j = 0; j < W; j++, dst += esz) {
                if (inside && ml[j] >= 0) memcpy(dst, src + (size_t)(base + ml[j]) * esz, esz);
                else memcpy(dst, cval, esz);
            }
            for (int d = r - 2; d >= 0; d--) {
                if (++o[d] < p.out[d]) break;
                o[d] = 0;
            }
        }
    }
    for (int d = 0; d < r; d++) si_free(map[d]);
    return ok ? SI_OK : nn_nomem(c);
}

/* =========================================================================================================
 * Einsum
 */

#define NN_EIN_LETTERS 52                         /* 'A'..'Z' -> 0..25, 'a'..'z' -> 26..51 (ASCII order) */
#define NN_EIN_LABELS (NN_EIN_LETTERS + SI_MAX_DIMS) /* then the broadcast (ellipsis) dimensions */
#define NN_EIN_MAXOPS 32

typedef struct nn_ein {
    int nops, nout;
    int lab[NN_EIN_MAXOPS][SI_MAX_DIMS]; /* label of each operand dimension */
    int out[SI_MAX_DIMS];               /* output labels in order */
    int64_t size[NN_EIN_LABELS];        /* -1: label unused */
} nn_ein;

static int nn_ein_label(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
    return -1;
}

/* Parses one term: letters and at most one "..."; labels[] receives letter labels with -2 marking where the
 * ellipsis stands. Returns the number of entries or -1 on a syntax error. */
static int nn_ein_term(const char *s, const char *end, int *labels, int max)
{
    int n = 0;
    bool ell = false;
    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        if (*s == '.') {
            if (end - s < 3 || s[1] != '.' || s[2] != '.' || ell) return -1;
            ell = true;
            if (n >= max) return -1;
            labels[n++] = -2;
            s += 3;
            continue;
        }
        const int l = nn_ein_label(*s);
        if (l < 0 || n >= max) return -1;
        labels[n++] = l;
        s++;
    }
    return n;
}

static si_result einsum_prep(si_kctx *c, nn_ein *e)
{
    si_result st;
    const char *eq = si_attr_str(c->node, "equation", NULL);
    if (!eq) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute equation is required");
    if (c->n_in < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "at least one input is required");
    if (c->n_in > NN_EIN_MAXOPS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "more than %d operands are not supported", NN_EIN_MAXOPS);
    e->nops = c->n_in;
    for (int i = 0; i < e->nops; i++) {
        if ((st = nn_need(c, i, false))) return st;
        if ((st = nn_check_type(c, nn_in(c, i), SI_T_NUMERIC, "input"))) return st;
        if (i > 0 && (st = nn_same_type(c, nn_in(c, 0), nn_in(c, i), "input"))) return st;
    }
    const char *arrow = strstr(eq, "->");
    const char *lhs_end = arrow ? arrow : eq + strlen(eq);
    for (int l = 0; l < NN_EIN_LABELS; l++) e->size[l] = -1;
    int count[NN_EIN_LETTERS] = {0};
    int ell_rank = 0, terms[NN_EIN_MAXOPS][SI_MAX_DIMS + 1], nterm[NN_EIN_MAXOPS];
    /* first pass: split terms and find the broadcast rank */
    const char *s = eq;
    for (int i = 0; i < e->nops; i++) {
        const char *t_end = s;
        while (t_end < lhs_end && *t_end != ',') t_end++;
        if (i < e->nops - 1 && t_end >= lhs_end)
            return si_op_err(c, SI_ERR_INVALID_ARG, "equation '%s' has fewer terms than the %d inputs", eq, e->nops);
        if (i == e->nops - 1 && t_end != lhs_end)
            return si_op_err(c, SI_ERR_INVALID_ARG, "equation '%s' has more terms than the %d inputs", eq, e->nops);
        nterm[i] = nn_ein_term(s, t_end, terms[i], SI_MAX_DIMS + 1);
        if (nterm[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "cannot parse equation '%s'", eq);
        const si_tensor *x = nn_in(c, i);
        int letters = 0;
        bool ell = false;
        for (int k = 0; k < nterm[i]; k++) {
            if (terms[i][k] == -2) ell = true;
            else {
                letters++;
                count[terms[i][k]]++;
            }
        }
        if (letters > x->ndim || (!ell && letters != x->ndim))
            return si_op_err(c, SI_ERR_INVALID_ARG, "term %d of '%s' does not match input rank %d", i, eq, x->ndim);
        if (ell) ell_rank = SI_MAX(ell_rank, x->ndim - letters);
        s = t_end + 1;
    }
    /* second pass: labels per dimension and sizes */
    for (int i = 0; i < e->nops; i++) {
        const si_tensor *x = nn_in(c, i);
        int letters = 0, dim = 0;
        for (int k = 0; k < nterm[i]; k++) letters += terms[i][k] != -2;
        const int er = x->ndim - letters;
        for (int k = 0; k < nterm[i]; k++) {
            if (terms[i][k] == -2) {
                for (int j = 0; j < er; j++) e->lab[i][dim++] = NN_EIN_LETTERS + (ell_rank - er + j);
            } else {
                e->lab[i][dim++] = terms[i][k];
            }
        }
        for (int d = 0; d < x->ndim; d++) {
            const int l = e->lab[i][d];
            const int64_t n = x->dims[d];
            if (e->size[l] < 0 || e->size[l] == 1) e->size[l] = (e->size[l] == 1 && n == 0) ? 0 : SI_MAX(n, e->size[l]);
            else if (n != e->size[l] && n != 1)
                return si_op_err(c, SI_ERR_INVALID_ARG, "dimension sizes %lld and %lld of one label differ",
                                 (long long)n, (long long)e->size[l]);
        }
    }
    /* output labels */
    e->nout = 0;
    if (arrow) {
        int ol[SI_MAX_DIMS + 1];
        int n = nn_ein_term(arrow + 2, arrow + strlen(arrow), ol, SI_MAX_DIMS + 1);
        if (n < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "cannot parse the output of equation '%s'", eq);
        bool used[NN_EIN_LABELS] = {false};
        for (int k = 0; k < n; k++) {
            if (ol[k] == -2) {
                for (int j = 0; j < ell_rank; j++) {
                    if (e->nout >= SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank too large");
                    e->out[e->nout++] = NN_EIN_LETTERS + j;
                }
                continue;
            }
            if (e->size[ol[k]] < 0 || used[ol[k]])
                return si_op_err(c, SI_ERR_INVALID_ARG, "output label '%c' of '%s' is unknown or repeated",
                                 ol[k] < 26 ? 'A' + ol[k] : 'a' + ol[k] - 26, eq);
            used[ol[k]] = true;
            if (e->nout >= SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank too large");
            e->out[e->nout++] = ol[k];
        }
    } else {
        for (int j = 0; j < ell_rank; j++) e->out[e->nout++] = NN_EIN_LETTERS + j;
        for (int l = 0; l < NN_EIN_LETTERS; l++)
            if (count[l] == 1) {
                if (e->nout >= SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank too large");
                e->out[e->nout++] = l;
            }
    }
    return SI_OK;
}

static si_result einsum_infer(si_kctx *c)
{
    nn_ein e;
    si_result st = einsum_prep(c, &e);
    if (st) return st;
    int64_t dims[SI_MAX_DIMS];
    for (int k = 0; k < e.nout; k++) dims[k] = e.size[e.out[k]];
    return nn_set_out(c, 0, nn_in(c, 0)->dtype, e.nout, dims);
}

static si_result einsum_run(si_kctx *c)
{
    nn_ein e;
    si_result st = einsum_prep(c, &e);
    if (st) return st;
    si_tensor *y = nn_out(c, 0);
    if (!y || nn_count(y) == 0) return SI_OK;
    /* loop labels: the output labels, then the summed ones */
    int loop[NN_EIN_LABELS], nl = 0;
    bool is_out[NN_EIN_LABELS] = {false};
    for (int k = 0; k < e.nout; k++) {
        loop[nl++] = e.out[k];
        is_out[e.out[k]] = true;
    }
    for (int l = 0; l < NN_EIN_LABELS; l++)
        if (e.size[l] >= 0 && !is_out[l]) loop[nl++] = l;
    int64_t inner = 1;
    for (int k = e.nout; k < nl; k++) inner *= e.size[loop[k]];
    /* per operand stride of each loop label (repeated labels add up: diagonals; broadcast dims: 0) */
    int64_t(*st_)[NN_EIN_LABELS] = si_calloc(NN_EIN_MAXOPS, sizeof(*st_));
    const bool isf = si_dtype_is_float(y->dtype);
    double *ops_d[NN_EIN_MAXOPS] = {NULL};
    int64_t *ops_i[NN_EIN_MAXOPS] = {NULL};
    bool ok = st_ != NULL;
    for (int i = 0; ok && i < e.nops; i++) {
        const si_tensor *x = nn_in(c, i);
        int64_t stride = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
            const int l = e.lab[i][d];
            for (int k = 0; k < nl; k++)
                if (loop[k] == l && !(x->dims[d] == 1 && e.size[l] != 1)) st_[i][k] += stride;
            stride *= x->dims[d];
        }
        if (isf) ok = (ops_d[i] = nn_to_f64(x)) != NULL;
        else ok = (ops_i[i] = nn_to_i64(x)) != NULL;
    }
    if (ok) {
        const int64_t nouter = nn_count(y);
        int64_t idx[NN_EIN_LABELS] = {0}, off[NN_EIN_MAXOPS] = {0};
        for (int64_t o = 0; o < nouter; o++) {
            double accd = 0;
            uint64_t acci = 0;
            for (int64_t s = 0; s < inner; s++) {
                if (isf) {
                    double v = 1;
                    for (int i = 0; i < e.nops; i++) v *= ops_d[i][off[i]];
                    accd += v;
                } else {
                    uint64_t v = 1;
                    for (int i = 0; i < e.nops; i++) v *= (uint64_t)ops_i[i][off[i]];
                    acci += v;
                }
                /* advance the summed labels (innermost) and, after the last one, the output labels */
                for (int k = nl - 1; k >= 0; k--) {
                    if (k < e.nout && s + 1 < inner) break;
                    idx[k]++;
                    for (int i = 0; i < e.nops; i++) off[i] += st_[i][k];
                    if (idx[k] < e.size[loop[k]]) break;
                    for (int i = 0; i < e.nops; i++) off[i] -= st_[i][k] * idx[k];
                    idx[k] = 0;
                }
            }
            if (isf) si_store_f64(y->dtype, y->data, o, accd);
            else si_store_i64(y->dtype, y->data, o, (int64_t)acci);
        }
    }
    for (int i = 0; i < e.nops; i++) {
        si_free(ops_d[i]);
        si_free(ops_i[i]);
    }
    si_free(st_);
    return ok ? SI_OK : nn_nomem(c);
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def op_conv = {"Conv", "", SI_T_FLOATS, conv_infer, conv_run, NULL};
static const si_op_def op_convtranspose = {"ConvTranspose", "", SI_T_FLOATS, convt_infer, convt_run, NULL};
static const si_op_def op_maxpool = {"MaxPool", "", NN_T_MAXPOOL, maxpool_infer, maxpool_run, NULL};
static const si_op_def op_averagepool = {"AveragePool", "", SI_T_FLOATS, avgpool_infer, avgpool_run, NULL};
static const si_op_def op_lppool = {"LpPool", "", SI_T_FLOATS, lppool_infer, lppool_run, NULL};
static const si_op_def op_globalaveragepool = {"GlobalAveragePool", "", SI_T_FLOATS, gpool_infer, gavgpool_run, NULL};
static const si_op_def op_globalmaxpool = {"GlobalMaxPool", "", SI_T_FLOATS, gpool_infer, gmaxpool_run, NULL};
static const si_op_def op_globallppool = {"GlobalLpPool", "", SI_T_FLOATS, gpool_infer, glppool_run, NULL};
static const si_op_def op_batchnorm = {"BatchNormalization", "", SI_T_FLOATS, bn_infer, bn_run, NULL};
static const si_op_def op_instancenorm = {"InstanceNormalization", "", SI_T_FLOATS, instnorm_infer, instnorm_run, NULL};
static const si_op_def op_layernorm = {"LayerNormalization", "", SI_T_FLOATS, lnorm_infer, lnorm_run, NULL};
static const si_op_def op_groupnorm = {"GroupNormalization", "", SI_T_FLOATS, gnorm_infer, gnorm_run, NULL};
static const si_op_def op_rmsnorm = {"RMSNormalization", "", SI_T_FLOATS, rmsnorm_infer, rmsnorm_run, NULL};
static const si_op_def op_lpnorm = {"LpNormalization", "", SI_T_FLOATS, lpnorm_infer, lpnorm_run, NULL};
static const si_op_def op_lrn = {"LRN", "", SI_T_FLOATS, lrn_infer, lrn_run, NULL};
static const si_op_def op_mvn = {"MeanVarianceNormalization", "", SI_T_FLOATS, mvn_infer, mvn_run, NULL};
static const si_op_def op_gemm = {"Gemm", "", NN_T_GEMM, gemm_infer, gemm_run, NULL};
static const si_op_def op_matmul = {"MatMul", "", NN_T_GEMM, matmul_infer, matmul_run, NULL};
static const si_op_def op_softmax = {"Softmax", "", SI_T_FLOATS, smax_infer, softmax_run, NULL};
static const si_op_def op_logsoftmax = {"LogSoftmax", "", SI_T_FLOATS, smax_infer, logsoftmax_run, NULL};
static const si_op_def op_hardmax = {"Hardmax", "", SI_T_FLOATS, smax_infer, hardmax_run, NULL};
static const si_op_def op_dropout = {"Dropout", "", SI_T_FLOATS, dropout_infer, dropout_run, dropout_check};
static const si_op_def op_resize = {"Resize", "", SI_T_ALL, resize_infer, resize_run, NULL};
static const si_op_def op_upsample = {"Upsample", "", SI_T_ALL, upsample_infer, upsample_run, NULL};
static const si_op_def op_pad = {"Pad", "", SI_T_ALL, pad_infer, pad_run, NULL};
static const si_op_def op_einsum = {"Einsum", "", SI_T_NUMERIC, einsum_infer, einsum_run, NULL};

const si_op_def *const si_ops_nn[] = {
    &op_conv,        &op_convtranspose, &op_maxpool,   &op_averagepool, &op_lppool,    &op_globalaveragepool,
    &op_globalmaxpool, &op_globallppool, &op_batchnorm, &op_instancenorm, &op_layernorm, &op_groupnorm,
    &op_rmsnorm,     &op_lpnorm,        &op_lrn,       &op_mvn,         &op_gemm,      &op_matmul,
    &op_softmax,     &op_logsoftmax,    &op_hardmax,   &op_dropout,     &op_resize,    &op_upsample,
    &op_pad,         &op_einsum,        NULL};
