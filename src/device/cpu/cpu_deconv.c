/*
 * cpu_deconv.c — ConvTranspose (1-3D, every group / stride / pads / output_padding / dilation / auto_pad /
 * output_shape) as the CPU device's own kernel: per image and group, GEMMs (oneDNN's sgemm) over blocks of
 * input rows
 *
 *     cols[pix, OCg*K] = X_g^T [pix, Cg] x W_g [Cg, OCg*K]        (pix: the block's input pixels)
 *
 * (this orientation runs several times faster in oneDNN's sgemm than W^T X for these shapes; a block's
 * columns stay in the L2 cache), then col2im: every column element adds to the output pixel
 * o = i*stride - pad_begin + k*dilation it lands on (a scatter; with stride >= kernel extent the kernel
 * positions do not overlap). The output starts as the bias; per-channel affine ops after the ConvTranspose
 * (BatchNormalization, Add/Mul by a per-channel constant) are folded into the weights and bias, and Relu /
 * LeakyRelu / Sigmoid / Tanh / Clip after them are applied as soon as an output row is complete (2-D), so
 * the output goes to memory once. Activations are plain (NCHW) in and out.
 *
 * Why not oneDNN's deconvolution: on this oneDNN (2.6) and an AVX-512 CPU, its implementations for strided
 * deconvolutions (the jit one in blocked layouts, gemm in plain ones) run 10-30x below the GEMM's speed for
 * the channel counts of segmentation heads (a DBNet head's 2x2 stride-2 ConvTransposes took 43% and 26% of
 * the model). It stays the path for what this kernel declines (a block of columns over 256 MiB).
 *
 * The U-Net upsampler (2-D, kernel == stride, 2 wide, no pads, one group) has a kernel of its own on AVX-512
 * and on AVX2 (dc_run_ks2): the kernel positions do not overlap, so every output value is one dot product over the input
 * channels, and the GEMM's columns need not go to memory at all. A tile is 32 input pixels of one input row by
 * 12 weight columns (6 (output channel, kernel row) pairs of kernel columns 0 and 1) in 24 accumulators; the
 * pairs are interleaved in registers into 64 consecutive output values, bias and activation added, and stored
 * once. A 64 -> 32 channel upsampler to 512 x 512 took 45 ms on the GEMM + scatter (the GEMM's inner dimension
 * is only the 64 input channels: it ran at a fifth of its peak, and the columns went to memory and back).
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>
#include <stdio.h>

#define DC_SP 3
#define DC_COLS_MAX ((size_t)256 << 20)

typedef struct dc_params {
    int64_t N, C, G, Cg, OCg, OC, K;
    int64_t in[DC_SP], out[DC_SP], k[DC_SP], s[DC_SP], d[DC_SP], pb[DC_SP]; /* 3-D, leading dims 1 */
    int64_t HWin, HWout;
    int64_t blk_rows;  /* input rows per GEMM block */
    const float *w;    /* [C, OCg, K] with the folded per-output-channel scale */
    const float *bias; /* [OC] */
    int n_act;
    cpu_act act[CPU_MAX_ACT];
} dc_params;

/* Output rows [r0, r1) of every channel of group g's output planes: set to the bias (init) or through the
 * activations (fin). 2-D (and 1-D) outputs only: a row is one oy. */
static void rows_init(const dc_params *p, float *yg, int64_t g, int64_t r0, int64_t r1) {
    const int64_t ow = p->out[2];
    for (int64_t o = 0; o < p->OCg; o++) {
        float b = p->bias[g * p->OCg + o], *yr = yg + o * p->HWout + r0 * ow;
        for (int64_t i = 0; i < (r1 - r0) * ow; i++) yr[i] = b;
    }
}

static void rows_fin(const dc_params *p, float *yg, int64_t r0, int64_t r1) {
    if (!p->n_act || r1 <= r0) return;
    for (int64_t o = 0; o < p->OCg; o++) cpu_act_apply(p->act, p->n_act, yg + o * p->HWout + r0 * p->out[2], (r1 - r0) * p->out[2]);
}

/* ptr: X, scratch (cols of a block of input rows [rows*W, OCg*K], then one input row of it transposed), Y.
 * Input rows go by blocks whose columns fit the L2 cache: the GEMM writes them, the scatter reads them there;
 * in 2-D the output rows are set to the bias just before the first input row that reaches them and finished
 * (activations) as soon as no later input row reaches them, so every output value is written to memory once. */
static si_result dc_run(const void *params, void *const *ptr, int threads) {
    (void)threads; /* the GEMM runs on the calling thread's OpenMP team (set by the executor) */
    const dc_params *p = params;
    const float *x = ptr[0];
    float *cols = ptr[1], *y = ptr[2];
    const int64_t OK = p->OCg * p->K, W = p->in[2], rows = p->in[0] * p->in[1], blk = p->blk_rows;
    float *tr = cols + OK * W * blk; /* [OK, W] */
    const bool two_d = p->in[0] == 1 && p->out[0] == 1;
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t g = 0; g < p->G; g++) {
            const float *xg = x + (n * p->C + g * p->Cg) * p->HWin;
            const float *wg = p->w + g * p->Cg * OK;
            float *yg = y + (n * p->OC + g * p->OCg) * p->HWout;
            int64_t inited = 0, done = 0; /* 2-D: output rows set to the bias / finished */
            if (!two_d) rows_init(p, yg, g, 0, p->HWout / p->out[2]);
            for (int64_t r0 = 0; r0 < rows; r0 += blk) {
                int64_t nr = SI_MIN(blk, rows - r0);
                /* cols[pix, o*K + k] = sum_c x[c, pix] w[c, o*K + k] (this shape runs near peak; [OK, pix] did not) */
                dnnl_status_t st = dnnl_sgemm('T', 'N', nr * W, OK, p->Cg, 1.0f, xg + r0 * W, p->HWin, wg, OK, 0.0f, cols, OK);
                if (st != dnnl_success) return cpu_dnnl_err(st, "sgemm (ConvTranspose)", NULL);
                for (int64_t r = r0; r < r0 + nr; r++) {
                    int64_t iz = r / p->in[1], iy = r % p->in[1];
                    if (two_d) { /* rows this input row reaches: up to iy*s - pb + (k-1)*d */
                        int64_t hi = SI_MIN(p->out[1], iy * p->s[1] - p->pb[1] + (p->k[1] - 1) * p->d[1] + 1);
                        if (hi > inited) rows_init(p, yg, g, inited, hi), inited = hi;
                    }
                    const float *crow = cols + (r - r0) * W * OK;
                    for (int64_t ix = 0; ix < W; ix++)
                        for (int64_t j = 0; j < OK; j++) tr[j * W + ix] = crow[ix * OK + j];
                    for (int64_t kz = 0; kz < p->k[0]; kz++) {
                        int64_t oz = iz * p->s[0] - p->pb[0] + kz * p->d[0];
                        if (oz < 0 || oz >= p->out[0]) continue;
                        for (int64_t ky = 0; ky < p->k[1]; ky++) {
                            int64_t oy = iy * p->s[1] - p->pb[1] + ky * p->d[1];
                            if (oy < 0 || oy >= p->out[1]) continue;
                            for (int64_t kx = 0; kx < p->k[2]; kx++) {
                                /* valid ix: 0 <= ix*s - pb + kx*d < out */
                                int64_t offx = kx * p->d[2] - p->pb[2], sx = p->s[2];
                                int64_t ix0 = offx >= 0 ? 0 : (-offx + sx - 1) / sx;
                                int64_t ix1 = p->out[2] - offx <= 0 ? 0 : (p->out[2] - offx + sx - 1) / sx; /* exclusive */
                                if (ix1 > W) ix1 = W;
                                if (ix0 >= ix1) continue;
                                int64_t kk = (kz * p->k[1] + ky) * p->k[2] + kx;
                                for (int64_t o = 0; o < p->OCg; o++) {
                                    const float *t = tr + (o * p->K + kk) * W;
                                    float *yr = yg + o * p->HWout + (oz * p->out[1] + oy) * p->out[2] + offx;
                                    if (sx == 1)
                                        for (int64_t ix = ix0; ix < ix1; ix++) yr[ix] += t[ix];
                                    else if (sx == 2)
                                        for (int64_t ix = ix0; ix < ix1; ix++) yr[2 * ix] += t[ix];
                                    else
                                        for (int64_t ix = ix0; ix < ix1; ix++) yr[ix * sx] += t[ix];
                                }
                            }
                        }
                    }
                    if (two_d) { /* rows below the first one the next input row reaches are final */
                        int64_t lo = SI_MIN(inited, SI_MAX((int64_t)0, (iy + 1) * p->s[1] - p->pb[1]));
                        if (lo > done) rows_fin(p, yg, done, lo), done = lo;
                    }
                }
            }
            if (two_d) {
                if (p->out[1] > inited) rows_init(p, yg, g, inited, p->out[1]);
                rows_fin(p, yg, done, p->out[1]);
            } else {
                rows_fin(p, yg, 0, p->HWout / p->out[2]);
            }
        }
    return SI_OK;
}

#if defined(__x86_64__)
#define KS_NJ 12 /* weight columns per tile: (output channel, kernel row) pairs of kernel columns 0 and 1 */
/* Input channels summed in one chain. ONNX Runtime's CPU ConvTranspose is a GEMM over the input channels (MLAS,
 * which steps through the inner dimension in slices of 128 once it is over 128, each slice summed from zero
 * and added to the output) and then the bias; summing in the same order gives its float results bit for bit,
 * which matters in quantized models: a DynamicQuantizeLinear after an upsampler turns a last-bit difference
 * into a different scale for the whole next layer (unet_int8 at 1024 x 1024 moved by 3.7e-2 of its output). */
#define KS_CHUNK 128

typedef struct ks_job {
    const dc_params *p;
    const float *x;
    float *y;
    bool vec_act; /* every activation is Relu / LeakyRelu / Clip (applied in registers) */
} ks_job;

/* One tile: input row `xr` (channel stride HWin), pixels [ix0, ix0 + n) (n <= 32), weight columns [j0, j0 + NJ):
 * output channel o = j / K, kernel row ky = (j % K) / 2, kernel column j % 2. */
__attribute__((always_inline, target("avx512f"))) static inline void ks_tile(const ks_job *jb, const float *xr, int64_t iy, int64_t ix0,
                                                                             int64_t n, int64_t j0, const int NJ) {
    const dc_params *p = jb->p;
    const int64_t C = p->C, HWin = p->HWin, OK = p->OCg * p->K, K = p->K, OW = p->out[2];
    const __mmask16 m0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1), m1 = (__mmask16)(n <= 16 ? 0 : n >= 32 ? 0xffff : (1u << (n - 16)) - 1);
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    /* output masks: pixel i of a vector gives output values 2i and 2i + 1 */
    __mmask16 om[4];
    for (int v = 0; v < 4; v++) {
        int64_t k = SI_MIN((int64_t)8, SI_MAX((int64_t)0, n - 8 * v));
        om[v] = (__mmask16)(k == 8 ? 0xffff : (1u << (2 * k)) - 1);
    }
    /* The input channels in chunks of KS_CHUNK, each summed from zero and added to the previous chunks' sum
     * (kept in y), then the bias: the order of a GEMM blocked by KS_CHUNK along its inner dimension (see the
     * comment at KS_CHUNK). */
    for (int64_t c0 = 0; c0 < C; c0 += KS_CHUNK) {
        const int64_t c1 = SI_MIN(C, c0 + KS_CHUNK);
        const bool first = c0 == 0, last = c1 == C;
        __m512 acc0[KS_NJ], acc1[KS_NJ];
#pragma GCC unroll 12
        for (int j = 0; j < NJ; j++) acc0[j] = acc1[j] = _mm512_setzero_ps();
        const float *w = p->w + j0;
        for (int64_t c = c0; c < c1; c++) {
            const __m512 x0 = _mm512_maskz_loadu_ps(m0, xr + c * HWin + ix0), x1 = _mm512_maskz_loadu_ps(m1, xr + c * HWin + ix0 + 16);
            const float *wc = w + c * OK;
#pragma GCC unroll 12
            for (int j = 0; j < NJ; j++) {
                const __m512 wb = _mm512_set1_ps(wc[j]);
                acc0[j] = _mm512_fmadd_ps(x0, wb, acc0[j]);
                acc1[j] = _mm512_fmadd_ps(x1, wb, acc1[j]);
            }
        }
#pragma GCC unroll 6
        for (int j = 0; j < NJ; j += 2) {
            const int64_t jj = j0 + j, o = jj / K, ky = (jj % K) / 2;
            float *yo = jb->y + o * p->HWout + (iy * p->s[1] + ky) * OW + 2 * ix0;
            __m512 r[4] = {_mm512_permutex2var_ps(acc0[j], lo, acc0[j + 1]), _mm512_permutex2var_ps(acc0[j], hi, acc0[j + 1]),
                           _mm512_permutex2var_ps(acc1[j], lo, acc1[j + 1]), _mm512_permutex2var_ps(acc1[j], hi, acc1[j + 1])};
            const __m512 b = _mm512_set1_ps(p->bias[o]);
            for (int v = 0; v < 4; v++) {
                if (!om[v]) break;
                if (!first) r[v] = _mm512_add_ps(_mm512_maskz_loadu_ps(om[v], yo + 16 * v), r[v]);
                if (last) {
                    r[v] = _mm512_add_ps(r[v], b);
                    if (jb->vec_act)
                        for (int a = 0; a < p->n_act; a++) {
                            const __m512 al = _mm512_set1_ps(p->act[a].alpha);
                            if (p->act[a].alg == dnnl_eltwise_relu)
                                r[v] = _mm512_fmadd_ps(al, _mm512_min_ps(r[v], _mm512_setzero_ps()), _mm512_max_ps(r[v], _mm512_setzero_ps()));
                            else
                                r[v] = _mm512_min_ps(_mm512_max_ps(r[v], al), _mm512_set1_ps(p->act[a].beta));
                        }
                }
                _mm512_mask_storeu_ps(yo + 16 * v, om[v], r[v]);
            }
            if (last && !jb->vec_act) cpu_act_apply(p->act, p->n_act, yo, 2 * n);
        }
    }
}

/* Input rows [lo, hi) of all images (row r: image r / H, input row r % H), in tiles of PIX pixels by up to KS_NJ
 * weight columns: NAME runs TILE, both compiled for TARGET. */
#define KS_ROWS(NAME, TILE, PIX, TARGET)                                                                              \
    __attribute__((target(TARGET))) static void NAME(void *ctx, int64_t lo, int64_t hi) {                             \
        const ks_job *jb = ctx;                                                                                       \
        const dc_params *p = jb->p;                                                                                   \
        const int64_t H = p->in[1], W = p->in[2], OK = p->OCg * p->K;                                                 \
        for (int64_t r = lo; r < hi; r++) {                                                                           \
            const int64_t img = r / H, iy = r % H;                                                                    \
            ks_job j1 = *jb;                                                                                          \
            j1.y = jb->y + img * p->OC * p->HWout;                                                                    \
            const float *xr = jb->x + img * p->C * p->HWin + iy * W;                                                  \
            for (int64_t j0 = 0; j0 < OK; j0 += KS_NJ) {                                                              \
                const int64_t nj = SI_MIN((int64_t)KS_NJ, OK - j0);                                                   \
                for (int64_t ix0 = 0; ix0 < W; ix0 += PIX) {                                                          \
                    const int64_t n = SI_MIN((int64_t)PIX, W - ix0);                                                  \
                    switch (nj) { /* even: K = 2 * kernel rows */                                                     \
                    case 12: TILE(&j1, xr, iy, ix0, n, j0, 12); break;                                                \
                    case 10: TILE(&j1, xr, iy, ix0, n, j0, 10); break;                                                \
                    case 8: TILE(&j1, xr, iy, ix0, n, j0, 8); break;                                                  \
                    case 6: TILE(&j1, xr, iy, ix0, n, j0, 6); break;                                                  \
                    case 4: TILE(&j1, xr, iy, ix0, n, j0, 4); break;                                                  \
                    default: TILE(&j1, xr, iy, ix0, n, j0, 2); break;                                                 \
                    }                                                                                                 \
                }                                                                                                     \
            }                                                                                                         \
        }                                                                                                             \
    }

KS_ROWS(ks_rows, ks_tile, 32, "avx512f")

/* The same tile on AVX2 + FMA: 8 input pixels (n <= 8) by NJ weight columns in NJ accumulators, the same chunked
 * order of additions, so the outputs are those of the AVX-512 kernel (and ONNX Runtime's) bit for bit. */
__attribute__((always_inline, target("avx2,fma"))) static inline void ks_tile8(const ks_job *jb, const float *xr, int64_t iy, int64_t ix0,
                                                                               int64_t n, int64_t j0, const int NJ) {
    const dc_params *p = jb->p;
    const int64_t C = p->C, HWin = p->HWin, OK = p->OCg * p->K, K = p->K, OW = p->out[2];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mx = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane);         /* pixels < n */
    const __m256i om0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(2 * n)), lane); /* output values 0..7 */
    const __m256i om1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(2 * n - 8)), lane);
    for (int64_t c0 = 0; c0 < C; c0 += KS_CHUNK) {
        const int64_t c1 = SI_MIN(C, c0 + KS_CHUNK);
        const bool first = c0 == 0, last = c1 == C;
        __m256 acc[KS_NJ];
#pragma GCC unroll 12
        for (int j = 0; j < NJ; j++) acc[j] = _mm256_setzero_ps();
        const float *w = p->w + j0;
        for (int64_t c = c0; c < c1; c++) {
            const __m256 x0 = n == 8 ? _mm256_loadu_ps(xr + c * HWin + ix0) : _mm256_maskload_ps(xr + c * HWin + ix0, mx);
            const float *wc = w + c * OK;
#pragma GCC unroll 12
            for (int j = 0; j < NJ; j++) acc[j] = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(wc + j), acc[j]);
        }
#pragma GCC unroll 6
        for (int j = 0; j < NJ; j += 2) {
            const int64_t jj = j0 + j, o = jj / K, ky = (jj % K) / 2;
            float *yo = jb->y + o * p->HWout + (iy * p->s[1] + ky) * OW + 2 * ix0;
            const __m256 ul = _mm256_unpacklo_ps(acc[j], acc[j + 1]), uh = _mm256_unpackhi_ps(acc[j], acc[j + 1]);
            __m256 r[2] = {_mm256_permute2f128_ps(ul, uh, 0x20), _mm256_permute2f128_ps(ul, uh, 0x31)};
            const __m256 b = _mm256_set1_ps(p->bias[o]);
            for (int v = 0; v < 2; v++) {
                const __m256i om = v ? om1 : om0;
                if (v && n <= 4) break;
                if (!first) r[v] = _mm256_add_ps(_mm256_maskload_ps(yo + 8 * v, om), r[v]);
                if (last) {
                    r[v] = _mm256_add_ps(r[v], b);
                    if (jb->vec_act)
                        for (int a = 0; a < p->n_act; a++) {
                            const __m256 al = _mm256_set1_ps(p->act[a].alpha);
                            if (p->act[a].alg == dnnl_eltwise_relu)
                                r[v] = _mm256_fmadd_ps(al, _mm256_min_ps(r[v], _mm256_setzero_ps()), _mm256_max_ps(r[v], _mm256_setzero_ps()));
                            else
                                r[v] = _mm256_min_ps(_mm256_max_ps(r[v], al), _mm256_set1_ps(p->act[a].beta));
                        }
                }
                _mm256_maskstore_ps(yo + 8 * v, om, r[v]);
            }
            if (last && !jb->vec_act) cpu_act_apply(p->act, p->n_act, yo, 2 * n);
        }
    }
}

KS_ROWS(ks_rows8, ks_tile8, 8, "avx2,fma")

/* ptr: X, (unused scratch), Y */
static si_result dc_run_ks2(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const dc_params *p = params;
    ks_job jb = {.p = p, .x = ptr[0], .y = ptr[2], .vec_act = true};
    for (int a = 0; a < p->n_act; a++)
        jb.vec_act &= p->act[a].alg == dnnl_eltwise_relu || p->act[a].alg == dnnl_eltwise_clip || p->act[a].alg == dnnl_eltwise_clip_v2;
    cpu_par_for(p->N * p->in[1], 1, cpu_vec_get()->avx512 ? ks_rows : ks_rows8, &jb);
    return SI_OK;
}

/* The shapes dc_run_ks2 takes: 2-D, one group, kernel == stride (2 wide), no dilation or pads, the output exactly
 * input x stride. */
static bool ks2_fits(const dc_params *p) {
    return (cpu_vec_get()->avx512 || cpu_vec_get()->avx2) && p->in[0] == 1 && p->out[0] == 1 && p->G == 1 && p->k[2] == 2 && p->s[2] == 2 && p->k[1] == p->s[1] &&
           p->d[1] == 1 && p->d[2] == 1 && p->pb[1] == 0 && p->pb[2] == 0 && p->out[1] == p->in[1] * p->s[1] && p->out[2] == p->in[2] * 2;
}
#else
static si_result dc_run_ks2(const void *params, void *const *ptr, int threads) {
    return dc_run(params, ptr, threads);
}
static bool ks2_fits(const dc_params *p) {
    (void)p;
    return false;
}
#endif

si_result cpu_lower_convtranspose(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (nd->n_in < 2 || !cpu_own_f32_io(g, nd, &X, &Y)) return SI_ERR_UNSUPPORTED;
    const si_tensor *W = cpu_const_input(g, nd, 1), *B = cpu_const_input(g, nd, 2);
    int r = X->ndim, sp = r - 2;
    if (r < 3 || r > 5 || !W || W->dtype != SI_F32 || W->ndim != r || !W->data || Y->ndim != r) return SI_ERR_UNSUPPORTED;
    int64_t G = si_attr_int(nd, "group", 1), C = X->dims[1];
    if (G < 1 || C % G || W->dims[0] != C) return SI_ERR_UNSUPPORTED;
    int64_t OCg = W->dims[1], OC = OCg * G;
    if (Y->dims[1] != OC || Y->dims[0] != X->dims[0]) return SI_ERR_UNSUPPORTED;
    if (nd->n_in > 2 && nd->in[2] >= 0 && (!B || B->dtype != SI_F32 || si_shape_count(B->ndim, B->dims) != OC)) return SI_ERR_UNSUPPORTED;
    int64_t s[DC_SP], d[DC_SP], op[DC_SP], pads[2 * DC_SP];
    if (!cpu_attr_ints(nd, "strides", sp, 1, 1, s) || !cpu_attr_ints(nd, "dilations", sp, 1, 1, d) ||
        !cpu_attr_ints(nd, "output_padding", sp, 0, INT64_MIN, op) || !cpu_attr_ints(nd, "pads", 2 * sp, 0, INT64_MIN, pads))
        return SI_ERR_UNSUPPORTED;
    const char *ap = si_attr_str(nd, "auto_pad", "NOTSET");
    bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!upper && !lower && !valid && strcmp(ap, "NOTSET")) return SI_ERR_UNSUPPORTED;
    int cnt = 0;
    const int64_t *osa = si_attr_ints(nd, "output_shape", &cnt);
    bool have_os = osa && cnt > 0;
    if (have_os && cnt != sp && cnt != sp + 2) return SI_ERR_UNSUPPORTED;

    dc_params p;
    memset(&p, 0, sizeof p);
    p.N = X->dims[0], p.C = C, p.G = G, p.Cg = C / G, p.OCg = OCg, p.OC = OC;
    p.K = si_shape_count(sp, W->dims + 2);
    for (int i = 0; i < DC_SP; i++) p.in[i] = p.out[i] = p.k[i] = p.s[i] = p.d[i] = 1, p.pb[i] = 0;
    for (int i = 0; i < sp; i++) {
        int j = DC_SP - sp + i;
        int64_t in = X->dims[2 + i], k = W->dims[2 + i], eff = (k - 1) * d[i] + 1, pb, pe, o;
        if (s[i] < 1 || d[i] < 1) return SI_ERR_UNSUPPORTED;
        if (have_os || upper || lower) { /* the reference kernel's rule (ops/conv.c) */
            o = have_os ? osa[cnt - sp + i] : in * s[i];
            int64_t total = s[i] * (in - 1) + op[i] + eff - o;
            pe = total >= 0 ? total / 2 : -((-total + 1) / 2);
            if (upper) pb = pe, pe = total - pb;
            else pb = total - pe;
        } else {
            pb = valid ? 0 : pads[i];
            pe = valid ? 0 : pads[i + sp];
            o = s[i] * (in - 1) + op[i] + eff - pb - pe;
        }
        if (o != Y->dims[2 + i]) return SI_ERR_UNSUPPORTED;
        p.in[j] = in, p.out[j] = o, p.k[j] = k, p.s[j] = s[i], p.d[j] = d[i], p.pb[j] = pb;
    }
    p.HWin = si_shape_count(sp, X->dims + 2);
    p.HWout = si_shape_count(sp, Y->dims + 2);
    /* input rows per block: their columns take about 512 KiB (L2) */
    size_t row_bytes = sizeof(float) * (size_t)(p.OCg * p.K) * (size_t)p.in[DC_SP - 1];
    int64_t rows = p.in[0] * p.in[1];
    p.blk_rows = SI_MAX((int64_t)1, SI_MIN(rows, (int64_t)(((size_t)512 << 10) / row_bytes)));
    size_t cols_bytes = row_bytes * (size_t)p.blk_rows;
    if (cols_bytes > DC_COLS_MAX) return SI_ERR_UNSUPPORTED;

    /* the chain: folded per-channel affine ops, then the activations this kernel applies */
    cpu_chain c;
    cpu_chain_init(&c, b, n, r, Y->dims, 1, false);
    p.n_act = cpu_chain_own_acts(b, &c, p.act);
    /* weights and bias with the folded affine: made once per compiled model (the store) */
    cpu_skey wk = {.node = n, .tag = "deconv.own.w", .fp = cpu_chain_fp(&c), .src = W};
    bool make_w;
    float *w = cpu_pb_shared(b, &wk, sizeof(float) * (size_t)(C * OCg * p.K), &make_w);
    float *bias = si_malloc(sizeof(float) * (size_t)OC + 1);
    dc_params *pp = cpu_pb_own(b, sizeof *pp);
    if (!w || !bias || !pp) {
        si_free(bias);
        cpu_chain_free(&c);
        return SI_ERR_NO_MEM;
    }
    const float *w0 = W->data, *b0 = B ? B->data : NULL;
    for (int64_t ic = 0; make_w && ic < C; ic++)
        for (int64_t o = 0; o < OCg; o++) {
            int64_t oc = (ic / p.Cg) * OCg + o;
            float sc = c.scale ? c.scale[oc] : 1.0f;
            for (int64_t k = 0; k < p.K; k++) w[(ic * OCg + o) * p.K + k] = w0[(ic * OCg + o) * p.K + k] * sc;
        }
    if (make_w) cpu_pb_shared_ready(b, w);
    for (int64_t oc = 0; oc < OC; oc++) bias[oc] = (b0 ? b0[oc] : 0.0f) * (c.scale ? c.scale[oc] : 1.0f) + (c.shift ? c.shift[oc] : 0.0f);
    const float *sbias = cpu_pb_shared_data(b, n, "bias", bias, sizeof(float) * (size_t)OC);
    si_free(bias);
    if (!sbias) {
        cpu_chain_free(&c);
        return SI_ERR_NO_MEM;
    }
    p.w = w;
    p.bias = sbias;
    *pp = p;

    const bool ks2 = ks2_fits(&p) && !cpu_no_own();
    int in_buf = cpu_pb_plain(b, nd->in[0]);
    dnnl_memory_desc_t cmd, ymd;
    int64_t cdim = ks2 ? 1 : (int64_t)(cols_bytes / sizeof(float)) + p.OCg * p.K * p.in[DC_SP - 1];
    cpu_md_plain(&cmd, 1, &cdim);
    cpu_md_plain(&ymd, r, Y->dims);
    int cols = in_buf < 0 ? -1 : cpu_pb_internal_md(b, &cmd);
    int out = cols < 0 ? -1 : cpu_chain_dst(b, &c, &ymd);
    if (out < 0) {
        cpu_chain_free(&c);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[3] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, cols}, {DNNL_ARG_DST, out}};
    char name[96];
    cpu_chain_name(&c, "ConvTranspose", name, sizeof name);
    si_result st = ks2 ? cpu_pb_emit_own(b, n, name, cpu_vec_get()->avx512 ? "own:avx512 kernel=stride" : "own:avx2 kernel=stride", dc_run_ks2, pp, args, 3)
                       : cpu_pb_emit_own(b, n, name, "own:gemm+col2im", dc_run, pp, args, 3);
    if (!st) cpu_chain_consume(b, &c);
    cpu_chain_free(&c);
    return st;
}
