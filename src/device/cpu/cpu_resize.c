/*
 * cpu_resize.c — Resize and Upsample (every opset form, mode, coordinate_transformation_mode and
 * nearest_mode: the taps come from the shared geometry of ops/resize.c, si_resize_taps) as the CPU device's
 * own kernel, float32, in the layout the input already has: plain, or a dense permutation of it such as the
 * nhwc a oneDNN convolution writes (the output gets the same layout, so no reorder runs on either side).
 *
 * Nearest: one gather pass, a copy of the contiguous block below the innermost resized axis per output
 * position (per-axis offset tables). Linear / cubic: one pass per resized axis (separable; the taps of the
 * reference kernel factor per axis), the axis that grows least first, through scratch buffers; weights in
 * float32. tf_crop_and_resize: outputs outside the crop box along any axis become extrapolation_value.
 * Output rows (one output coordinate of the axis a pass resizes, or one gathered row) are split over the plan's
 * threads.
 *
 * Bilinear over the last two axes of a plain or nhwc tensor (the upsampler of segmentation networks) has a
 * kernel of its own (bl_*) that computes what ONNX Runtime's CPU kernel computes, bit for bit: the source
 * coordinate in float32 from the float32 scale, clamped, the weights as distances to the two neighbours, and each
 * output as the sum, in a fixed order, of four products of (x weight * y weight) and a neighbour. Separable passes
 * round differently, and in a dynamically quantized network a last-bit difference before a DynamicQuantizeLinear
 * changes the next layer's scale (a bilinear int8 U-Net at 1024 x 1024 differed from ONNX Runtime by 4.3e-2 of
 * its output). No multiply-add is contracted here (FP_CONTRACT OFF; GCC in ISO C mode does not contract).
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>
#include <stdio.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct rs_axis {
    int64_t in, out, nt;   /* sizes, taps per output coordinate */
    int64_t *idx;          /* [out * nt] input index */
    float *w;              /* [out * nt] */
    unsigned char *ext;    /* [out]: outside the crop box */
    bool resized;
} rs_axis;

typedef struct rs_params {
    int r;                 /* rank; axes in memory order (outermost first) */
    rs_axis ax[SI_MAX_DIMS];
    bool nearest;
    bool q8;               /* nearest on uint8 / int8 (a QOperator model's tensors): bytes, not floats */
    bool any_ext;
    float extrap;
    int n_pass, pass[SI_MAX_DIMS]; /* linear / cubic: axes in pass order */
    int64_t **offs;        /* nearest: per axis, out -> idx * input stride */
} rs_params;

/* dims after the passes done so far (pass order) */
static void pass_dims(const rs_params *p, int done, int64_t *d) {
    for (int a = 0; a < p->r; a++) d[a] = p->ax[a].in;
    for (int i = 0; i < done; i++) d[p->pass[i]] = p->ax[p->pass[i]].out;
}

/* Rows [lo, hi) of a pass: row t is output coordinate t % out of block t / out. */
typedef struct pass_job {
    const rs_axis *ax;
    const float *src;
    float *dst;
    int64_t inner;
} pass_job;

static void pass_rows(void *ctx, int64_t lo, int64_t hi) {
    const pass_job *pj = ctx;
    const rs_axis *ax = pj->ax;
    const int64_t in = ax->in, on = ax->out, nt = ax->nt, inner = pj->inner;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t o = t / on, j = t % on;
        const float *s = pj->src + o * in * inner;
        float *dr = pj->dst + (o * on + j) * inner;
        const int64_t *ix = ax->idx + j * nt;
        const float *w = ax->w + j * nt;
        if (inner == 1) {
            float acc = 0;
            for (int64_t k = 0; k < nt; k++) acc += w[k] * s[ix[k]];
            dr[0] = acc;
            continue;
        }
        const float *s0 = s + ix[0] * inner;
        const float w0 = w[0];
        for (int64_t i = 0; i < inner; i++) dr[i] = w0 * s0[i];
        for (int64_t k = 1; k < nt; k++) {
            const float *sk = s + ix[k] * inner;
            const float wk = w[k];
            if (wk == 0.0f) continue;
            for (int64_t i = 0; i < inner; i++) dr[i] += wk * sk[i];
        }
    }
}

static void one_pass(const rs_axis *ax, const float *src, float *dst, int64_t outer, int64_t inner) {
    pass_job pj = {.ax = ax, .src = src, .dst = dst, .inner = inner};
    cpu_par_for(outer * ax->out, SI_MAX((int64_t)1, 16384 / SI_MAX((int64_t)1, inner * ax->nt)), pass_rows, &pj);
}

/* Nearest: y[o_0..o_{r-1}] = x[idx_0[o_0]..]; the axes below the innermost resized one form a block. A row is the
 * output positions of that innermost resized axis for one position of the axes above it. */
typedef struct gather_job {
    const rs_params *p;
    const float *x;
    float *y;
    int last;
    int64_t block;
} gather_job;

static void gather_rows(void *ctx, int64_t lo, int64_t hi) {
    const gather_job *gj = ctx;
    const rs_params *p = gj->p;
    const int last = gj->last;
    const int64_t block = gj->block, n_inner = p->ax[last].out;
    const int64_t *off_last = p->offs[last];
    for (int64_t row = lo; row < hi; row++) {
        int64_t base = 0, rem = row;
        for (int a = last - 1; a >= 0; a--) {
            base += p->offs[a][rem % p->ax[a].out];
            rem /= p->ax[a].out;
        }
        if (p->q8) {
            const uint8_t *xs = (const uint8_t *)gj->x + base;
            uint8_t *yd = (uint8_t *)gj->y + row * n_inner * block;
            if (block == 1)
                for (int64_t j = 0; j < n_inner; j++) yd[j] = xs[off_last[j]];
            else
                for (int64_t j = 0; j < n_inner; j++) memcpy(yd + j * block, xs + off_last[j], (size_t)block);
            continue;
        }
        const float *xs = gj->x + base;
        float *yd = gj->y + row * n_inner * block;
        if (block == 1)
            for (int64_t j = 0; j < n_inner; j++) yd[j] = xs[off_last[j]];
        else
            for (int64_t j = 0; j < n_inner; j++) memcpy(yd + j * block, xs + off_last[j], sizeof(float) * (size_t)block);
    }
}

static void gather(const rs_params *p, const float *x, float *y) {
    int last = -1;
    for (int a = 0; a < p->r; a++)
        if (p->ax[a].resized) last = a;
    int64_t block = 1, rows = 1;
    for (int a = last + 1; a < p->r; a++) block *= p->ax[a].in;
    for (int a = 0; a < last; a++) rows *= p->ax[a].out;
    gather_job gj = {.p = p, .x = x, .y = y, .last = last, .block = block};
    cpu_par_for(rows, SI_MAX((int64_t)1, 16384 / SI_MAX((int64_t)1, p->ax[last].out * block)), gather_rows, &gj);
}

static void extrapolate(const rs_params *p, float *y) {
    int64_t o[SI_MAX_DIMS] = {0}, n = 1;
    for (int a = 0; a < p->r; a++) n *= p->ax[a].out;
    for (int64_t i = 0; i < n; i++) {
        bool ext = false;
        for (int a = 0; a < p->r && !ext; a++) ext = p->ax[a].ext[o[a]];
        if (ext) y[i] = p->extrap;
        for (int a = p->r - 1; a >= 0; a--) {
            if (++o[a] < p->ax[a].out) break;
            o[a] = 0;
        }
    }
}

/* ptr: X, scratch (two halves), Y */
static si_result rs_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const rs_params *p = params;
    const float *x = ptr[0];
    float *y = ptr[2];
    if (p->nearest) {
        gather(p, x, y);
    } else {
        float *tmp[2] = {ptr[1], NULL};
        int64_t d[SI_MAX_DIMS], half = 0;
        for (int i = 0; i + 1 < p->n_pass; i++) { /* the scratch holds two of the intermediate results */
            pass_dims(p, i + 1, d);
            half = SI_MAX(half, si_shape_count(p->r, d));
        }
        tmp[1] = tmp[0] + half;
        const float *src = x;
        for (int i = 0; i < p->n_pass; i++) {
            int a = p->pass[i];
            pass_dims(p, i, d);
            int64_t outer = 1, inner = 1;
            for (int k = 0; k < a; k++) outer *= d[k];
            for (int k = a + 1; k < p->r; k++) inner *= d[k];
            float *dst = i + 1 == p->n_pass ? y : tmp[i & 1];
            one_pass(&p->ax[a], src, dst, outer, inner);
            src = dst;
        }
    }
    if (p->any_ext) extrapolate(p, y);
    return SI_OK;
}

/* --- bilinear in ONNX Runtime's arithmetic ------------------------------------------------------------------ */

typedef struct bl_axis {
    int32_t *i1, *i2; /* [out] the two neighbours */
    float *d1, *d2;   /* [out] distances to them: i1's weight is d2, i2's is d1 */
} bl_axis;

typedef struct bl_params {
    int64_t outer;          /* images (nhwc) or planes (plain) */
    int64_t H, W, OH, OW, C; /* C: channels, innermost (nhwc); 1 in plain */
    bool nhwc;
    bl_axis y, x;
    int32_t *base;          /* plain: per block of 16 output columns, the first input column it reads */
    unsigned char *fits;    /* plain: the block reads at most 16 input columns from base */
} bl_params;

/* One axis's neighbours and distances, as ONNX Runtime computes them in float32. */
static si_result bl_axis_make(cpu_pb *b, bl_axis *ax, int ctm, int64_t in, int64_t out, float scale) {
    ax->i1 = cpu_pb_own(b, sizeof(int32_t) * (size_t)out);
    ax->i2 = cpu_pb_own(b, sizeof(int32_t) * (size_t)out);
    ax->d1 = cpu_pb_own(b, sizeof(float) * (size_t)out);
    ax->d2 = cpu_pb_own(b, sizeof(float) * (size_t)out);
    if (!ax->i1 || !ax->i2 || !ax->d1 || !ax->d2) return SI_ERR_NO_MEM;
    const float last = (float)(in - 1);
    for (int64_t o = 0; o < out; o++) {
        const float of = (float)o;
        float x;
        if (scale == 1.0f) {
            x = of;
        } else {
            switch (ctm) {
            case SI_CT_ASYMMETRIC: x = of / scale; break;
            case SI_CT_ALIGN_CORNERS: x = out == 1 ? 0.0f : of * last / (float)(out - 1); break;
            case SI_CT_PYTORCH_HALF_PIXEL: x = out > 1 ? (of + 0.5f) / scale - 0.5f : 0.0f; break;
            default: x = (of + 0.5f) / scale - 0.5f; break;
            }
        }
        x = x < 0.0f ? 0.0f : x > last ? last : x;
        const int32_t i1 = (int32_t)SI_MIN((int64_t)x, in - 1), i2 = (int32_t)SI_MIN((int64_t)i1 + 1, in - 1);
        ax->i1[o] = i1;
        ax->i2[o] = i2;
        ax->d1[o] = i1 == i2 ? 0.5f : fabsf(x - (float)i1);
        ax->d2[o] = i1 == i2 ? 0.5f : fabsf(x - (float)i2);
    }
    return SI_OK;
}

/* out = dx2 dy2 X11 + dx1 dy2 X21 + dx2 dy1 X12 + dx1 dy1 X22 (X21: row i1, column i2), in that order */
static inline float bl_one(const bl_params *p, const float *r1, const float *r2, float a2, float a1, int64_t x) {
    const int32_t c1 = p->x.i1[x], c2 = p->x.i2[x];
    const float e1 = p->x.d1[x], e2 = p->x.d2[x];
    return e2 * a2 * r1[c1] + e1 * a2 * r1[c2] + e2 * a1 * r2[c1] + e1 * a1 * r2[c2];
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void bl_row_avx512(const bl_params *p, const float *r1, const float *r2, float a2, float a1,
                                                             float *yr) {
    const __m512 va2 = _mm512_set1_ps(a2), va1 = _mm512_set1_ps(a1);
    const int64_t W = p->W;
    for (int64_t x0 = 0, blk = 0; x0 < p->OW; x0 += 16, blk++) {
        const int64_t n = SI_MIN((int64_t)16, p->OW - x0);
        if (!p->fits[blk]) {
            for (int64_t x = x0; x < x0 + n; x++) yr[x] = bl_one(p, r1, r2, a2, a1, x);
            continue;
        }
        const __mmask16 m = (__mmask16)(n == 16 ? 0xffff : (1u << n) - 1);
        const int32_t base = p->base[blk];
        const __mmask16 lm = (__mmask16)(W - base >= 16 ? 0xffff : (1u << (W - base)) - 1);
        const __m512 w1 = _mm512_maskz_loadu_ps(lm, r1 + base), w2 = _mm512_maskz_loadu_ps(lm, r2 + base);
        const __m512i bv = _mm512_set1_epi32(base);
        const __m512i k1 = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, p->x.i1 + x0), bv);
        const __m512i k2 = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, p->x.i2 + x0), bv);
        const __m512 e1 = _mm512_maskz_loadu_ps(m, p->x.d1 + x0), e2 = _mm512_maskz_loadu_ps(m, p->x.d2 + x0);
        const __m512 x11 = _mm512_permutexvar_ps(k1, w1), x21 = _mm512_permutexvar_ps(k2, w1);
        const __m512 x12 = _mm512_permutexvar_ps(k1, w2), x22 = _mm512_permutexvar_ps(k2, w2);
        __m512 acc = _mm512_mul_ps(_mm512_mul_ps(e2, va2), x11);
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(e1, va2), x21));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(e2, va1), x12));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(e1, va1), x22));
        _mm512_mask_storeu_ps(yr + x0, m, acc);
    }
}
#endif

typedef struct bl_job {
    const bl_params *p;
    const float *x;
    float *y;
} bl_job;

/* Rows [lo, hi): row t is output row t % OH of plane (or image) t / OH. */
static void bl_rows(void *ctx, int64_t lo, int64_t hi) {
    const bl_job *jb = ctx;
    const bl_params *p = jb->p;
    const int64_t rs = p->W * p->C, ors = p->OW * p->C;
#if defined(__x86_64__)
    const bool vec = !p->nhwc && cpu_vec_get()->avx512;
#endif
    for (int64_t t = lo; t < hi; t++) {
        const int64_t o = t / p->OH, yy = t % p->OH;
        const float *img = jb->x + o * p->H * rs;
        const float *r1 = img + p->y.i1[yy] * rs, *r2 = img + p->y.i2[yy] * rs;
        const float a1 = p->y.d1[yy], a2 = p->y.d2[yy];
        float *yr = jb->y + (o * p->OH + yy) * ors;
        if (p->nhwc) {
            for (int64_t x = 0; x < p->OW; x++) {
                const float e1 = p->x.d1[x], e2 = p->x.d2[x];
                const float c11 = e2 * a2, c21 = e1 * a2, c12 = e2 * a1, c22 = e1 * a1;
                const float *p11 = r1 + p->x.i1[x] * p->C, *p21 = r1 + p->x.i2[x] * p->C;
                const float *p12 = r2 + p->x.i1[x] * p->C, *p22 = r2 + p->x.i2[x] * p->C;
                float *d = yr + x * p->C;
                for (int64_t c = 0; c < p->C; c++) d[c] = c11 * p11[c] + c21 * p21[c] + c12 * p12[c] + c22 * p22[c];
            }
            continue;
        }
#if defined(__x86_64__)
        if (vec) {
            bl_row_avx512(p, r1, r2, a2, a1, yr);
            continue;
        }
#endif
        for (int64_t x = 0; x < p->OW; x++) yr[x] = bl_one(p, r1, r2, a2, a1, x);
    }
}

/* ptr: X, Y */
static si_result bl_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const bl_params *p = params;
    bl_job jb = {.p = p, .x = ptr[0], .y = ptr[1]};
    cpu_par_for(p->outer * p->OH, SI_MAX((int64_t)1, 16384 / SI_MAX((int64_t)1, p->OW * p->C)), bl_rows, &jb);
    return SI_OK;
}

/* The bilinear kernel's geometry for rz over a buffer of layout perm, or NULL when it does not take it: linear
 * without antialias, a coordinate mode ONNX Runtime computes as above (align_corners only where scale x input is
 * the output's dimension), only the last two axes resized, and a plain or nhwc layout (4-D). */
static bl_params *bl_make(cpu_pb *b, const si_resize *rz, const int *perm) {
    const int r = rz->rank;
    if (rz->mode != SI_RS_LINEAR || rz->antialias || r < 2 || r > 4) return NULL;
    if (rz->ctm != SI_CT_HALF_PIXEL && rz->ctm != SI_CT_PYTORCH_HALF_PIXEL && rz->ctm != SI_CT_ALIGN_CORNERS && rz->ctm != SI_CT_ASYMMETRIC)
        return NULL;
    int64_t outer = 1;
    for (int d = 0; d < r - 2; d++) {
        if (rz->in[d] != rz->out[d] || rz->scale[d] != 1.0) return NULL;
        outer *= rz->in[d];
    }
    bool plain = true, nhwc = r == 4 && perm[0] == 0 && perm[1] == 2 && perm[2] == 3 && perm[3] == 1;
    for (int a = 0; a < r; a++) plain &= perm[a] == a;
    if (!plain && !nhwc) return NULL;
    const int64_t H = rz->in[r - 2], W = rz->in[r - 1], OH = rz->out[r - 2], OW = rz->out[r - 1];
    if (H < 1 || W < 1 || OH < 1 || OW < 1 || H > INT32_MAX || W > INT32_MAX) return NULL;
    /* align_corners divides by the output length less one: the spec's is scale x input (not always a whole
     * number), ONNX Runtime's the output's dimension; where they differ, the separable kernel keeps the spec's */
    for (int d = r - 2; rz->ctm == SI_CT_ALIGN_CORNERS && d < r; d++)
        if (fabs(rz->scale[d] * (double)rz->in[d] - (double)rz->out[d]) > 1e-9 * (double)rz->out[d]) return NULL;
    bl_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->nhwc = nhwc && !plain;
    p->H = H, p->W = W, p->OH = OH, p->OW = OW;
    p->C = p->nhwc ? rz->in[1] : 1;
    p->outer = p->nhwc ? rz->in[0] : outer;
    if (bl_axis_make(b, &p->y, rz->ctm, H, OH, (float)rz->scale[r - 2]) || bl_axis_make(b, &p->x, rz->ctm, W, OW, (float)rz->scale[r - 1]))
        return NULL;
    if (!p->nhwc) {
        const int64_t nb = (OW + 15) / 16;
        p->base = cpu_pb_own(b, sizeof(int32_t) * (size_t)nb);
        p->fits = cpu_pb_own(b, (size_t)nb);
        if (!p->base || !p->fits) return NULL;
        for (int64_t k = 0; k < nb; k++) {
            int32_t lo = INT32_MAX, hi = 0;
            for (int64_t x = 16 * k; x < SI_MIN(OW, 16 * k + 16); x++) {
                lo = SI_MIN(lo, p->x.i1[x]);
                hi = SI_MAX(hi, p->x.i2[x]);
            }
            p->base[k] = lo;
            p->fits[k] = hi - lo < 16;
        }
    }
    return p;
}

/* A dense layout of v's buffer: plain or a permutation of its dims (nhwc); *perm lists the logical axes
 * outermost first. */
static bool dense_perm(const dnnl_memory_desc_t *md, int r, int *perm) {
    if (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks || md->offset0 || md->ndims != r) return false;
    for (int i = 0; i < r; i++) {
        if (md->dims[i] != md->padded_dims[i] || md->padded_offsets[i]) return false;
        perm[i] = i;
    }
    const int64_t *st = md->format_desc.blocking.strides;
    for (int i = 1; i < r; i++) /* stable sort by stride, descending */
        for (int j = i; j > 0 && st[perm[j]] > st[perm[j - 1]]; j--) {
            int t = perm[j];
            perm[j] = perm[j - 1];
            perm[j - 1] = t;
        }
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        if (md->dims[perm[i]] != 1 && st[perm[i]] != s) return false;
        s *= md->dims[perm[i]];
    }
    return true;
}

si_result cpu_lower_resize(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    bool q8 = false;
    if (!cpu_own_f32_io(g, nd, &X, &Y)) { /* nearest on the uint8 / int8 tensors of a quantized model */
        if (cpu_no_own() || nd->n_in < 1 || nd->in[0] < 0 || nd->n_out < 1 || nd->out[0] < 0) return SI_ERR_UNSUPPORTED;
        X = &g->values[nd->in[0]], Y = &g->values[nd->out[0]];
        q8 = (X->dtype == SI_U8 || X->dtype == SI_I8) && Y->dtype == X->dtype && cpu_value_static(X) && cpu_value_static(Y) &&
             si_shape_count(X->ndim, X->dims) > 0 && si_shape_count(Y->ndim, Y->dims) > 0;
        if (!q8) return SI_ERR_UNSUPPORTED;
    }
    if (X->ndim < 1 || X->ndim > DNNL_MAX_NDIMS || Y->ndim != X->ndim) return SI_ERR_UNSUPPORTED;
    /* the geometry, as the reference kernel reads it: scales / sizes / roi must be constants by now */
    const si_tensor *ins[8];
    si_tensor xdesc;
    memset(&xdesc, 0, sizeof xdesc);
    xdesc.dtype = X->dtype;
    xdesc.ndim = X->ndim;
    memcpy(xdesc.dims, X->dims, sizeof(int64_t) * (size_t)X->ndim);
    if (nd->n_in > 8) return SI_ERR_UNSUPPORTED;
    ins[0] = &xdesc;
    for (int k = 1; k < nd->n_in; k++) {
        ins[k] = NULL;
        if (nd->in[k] < 0) continue;
        if (!(ins[k] = g->values[nd->in[k]].const_val)) return SI_ERR_UNSUPPORTED;
    }
    si_kctx c = {.node = nd, .opset = nd->opset, .n_in = nd->n_in, .in = ins, .n_out = 0, .out = NULL};
    si_resize rz;
    if (si_resize_prepare(&c, si_resize_form_of(nd), &rz)) {
        si_err_clear();
        return SI_ERR_UNSUPPORTED;
    }
    const int r = rz.rank;
    if (q8 && (rz.mode != SI_RS_NEAREST || rz.antialias)) return SI_ERR_UNSUPPORTED;
    for (int d = 0; d < r; d++)
        if (rz.out[d] != Y->dims[d] || rz.in[d] != X->dims[d]) return SI_ERR_UNSUPPORTED;

    /* the input's layout: an existing dense permutation (nhwc) or plain */
    int in_buf = cpu_pb_existing(b, nd->in[0]), perm[DNNL_MAX_NDIMS];
    if (in_buf < 0 || b->p->bufs[in_buf].dyn || !dense_perm(&b->p->bufs[in_buf].md, r, perm)) {
        in_buf = cpu_pb_plain(b, nd->in[0]);
        for (int i = 0; i < r; i++) perm[i] = i;
    }
    if (in_buf < 0) return SI_ERR_INTERNAL;

    const bl_params *bl = cpu_no_own() || q8 ? NULL : bl_make(b, &rz, perm);
    if (bl) {
        int64_t ostr[DNNL_MAX_NDIMS], s = 1;
        for (int a = r - 1; a >= 0; a--) ostr[perm[a]] = s, s *= Y->dims[perm[a]];
        dnnl_memory_desc_t ymd;
        cpu_md_strided(&ymd, r, Y->dims, ostr);
        int out = cpu_pb_new_out(b, nd->out[0], &ymd);
        if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
        cpu_arg args[2] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, out}};
        si_result st = cpu_pb_emit_own(b, n, nd->op_type, "own:resize_bilinear", bl_run, bl, args, 2);
        if (!st) cpu_pb_consume(b, n);
        return st;
    }
    si_err_clear();
    rs_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    memset(p, 0, sizeof *p);
    p->r = r;
    p->nearest = rz.mode == SI_RS_NEAREST && !rz.antialias;
    p->q8 = q8;
    p->extrap = (float)rz.extrap;
    int64_t istride[SI_MAX_DIMS], s = 1;
    for (int a = r - 1; a >= 0; a--) istride[a] = s, s *= rz.in[perm[a]];
    for (int a = 0; a < r; a++) {
        int d = perm[a];
        rs_axis *ax = &p->ax[a];
        ax->in = rz.in[d];
        ax->out = rz.out[d];
        ax->nt = si_resize_ntaps(&rz, d);
        ax->idx = cpu_pb_own(b, sizeof(int64_t) * (size_t)(ax->out * ax->nt));
        ax->w = cpu_pb_own(b, sizeof(float) * (size_t)(ax->out * ax->nt));
        ax->ext = cpu_pb_own(b, (size_t)ax->out);
        double *wd = si_malloc(sizeof(double) * (size_t)ax->nt);
        if (!ax->idx || !ax->w || !ax->ext || !wd) {
            si_free(wd);
            return SI_ERR_NO_MEM;
        }
        bool ident = ax->in == ax->out;
        for (int64_t o = 0; o < ax->out; o++) {
            bool outside;
            si_resize_taps(&rz, d, o, ax->idx + o * ax->nt, wd, &outside);
            ax->ext[o] = outside;
            p->any_ext |= outside;
            for (int64_t k = 0; k < ax->nt; k++) {
                ax->w[o * ax->nt + k] = (float)wd[k];
                /* an identity axis: one tap of weight 1 at o (or several where only one weighs) */
                if (wd[k] != 0.0 && (ax->idx[o * ax->nt + k] != o || wd[k] != 1.0)) ident = false;
            }
            if (outside) ident = false;
        }
        si_free(wd);
        ax->resized = !ident;
        if (p->nearest && ax->nt != 1) p->nearest = false;
    }
    if (q8 && (!p->nearest || p->any_ext)) return SI_ERR_UNSUPPORTED; /* extrapolation values are floats */
    int64_t scratch = 0;
    bool any = false;
    for (int a = 0; a < r; a++) any |= p->ax[a].resized;
    if (!any) p->ax[r - 1].resized = true; /* a copy */
    if (p->nearest) {
        p->offs = cpu_pb_own(b, sizeof(int64_t *) * (size_t)r);
        if (!p->offs) return SI_ERR_NO_MEM;
        for (int a = 0; a < r; a++) {
            rs_axis *ax = &p->ax[a];
            if (!(p->offs[a] = cpu_pb_own(b, sizeof(int64_t) * (size_t)ax->out))) return SI_ERR_NO_MEM;
            for (int64_t o = 0; o < ax->out; o++) p->offs[a][o] = (ax->resized ? ax->idx[o] : o) * istride[a];
        }
    } else {
        /* passes: the axes that grow least first (the intermediate results stay small) */
        for (int a = 0; a < r; a++)
            if (p->ax[a].resized) p->pass[p->n_pass++] = a;
        for (int i = 1; i < p->n_pass; i++)
            for (int j = i; j > 0; j--) {
                const rs_axis *u = &p->ax[p->pass[j]], *v = &p->ax[p->pass[j - 1]];
                if ((double)u->out / (double)u->in >= (double)v->out / (double)v->in) break;
                int t = p->pass[j];
                p->pass[j] = p->pass[j - 1];
                p->pass[j - 1] = t;
            }
        int64_t d[SI_MAX_DIMS];
        for (int i = 0; i + 1 < p->n_pass; i++) {
            pass_dims(p, i + 1, d);
            scratch = SI_MAX(scratch, si_shape_count(r, d));
        }
        scratch *= 2;
    }
    /* output: the input's layout */
    int64_t ostr[DNNL_MAX_NDIMS];
    s = 1;
    for (int a = r - 1; a >= 0; a--) ostr[perm[a]] = s, s *= Y->dims[perm[a]];
    dnnl_memory_desc_t ymd, smd;
    cpu_md_strided(&ymd, r, Y->dims, ostr);
    if (q8) ymd.data_type = b->p->bufs[in_buf].md.data_type;
    int64_t sdim = SI_MAX(scratch, (int64_t)1);
    cpu_md_plain(&smd, 1, &sdim);
    int sb = cpu_pb_internal_md(b, &smd);
    int out = sb < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &ymd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[3] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, sb}, {DNNL_ARG_DST, out}};
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, p->nearest ? "own:resize_nearest" : "own:resize_separable", rs_run, p, args, 3);
    if (!st) cpu_pb_consume(b, n);
    return st;
}
