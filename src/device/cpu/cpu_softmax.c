/*
 * cpu_softmax.c — the CPU device's own Softmax / LogSoftmax kernels. Accurate form: exp(x - max) / sum; log form:
 * x - max - log(sum).
 *
 *  - Over the innermost axis on AVX-512 and AVX2 (attention scores, classifier heads): one row at a time,
 *    vectorised, rows split over the plan's threads (oneDNN's AVX2 softmax took 2.1 ns an element on a speech
 *    encoder's 1500 x 1500 scores). oneDNN's JIT softmax is as fast once made, but a decode loop's scores
 *    have a new row length at every step, and making the primitive for it took 0.15-0.25 ms a step.
 *  - Over an axis that is not the innermost one (YOLO's DFL softmax over 16 bins of a [1, 4, 16, 8400] tensor),
 *    where this oneDNN has only its reference implementation: plain layout, the inner dims contiguous, so every
 *    pass (max, exp and sum, scale) runs along rows of `inner` values.
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>

typedef struct sm_params {
    int64_t outer, axis, inner;
    bool log;
} sm_params;

/* Columns [i0, i1) (at most SMA_CH) of outer block o: over the axis, max, then exp and sum, then scale (or the log
 * form); mx and sum are the caller's SMA_CH-float scratch. */
#define SMA_CH 1024

static void sm_cols(const sm_params *p, const float *xo, float *yo, int64_t i0, int64_t i1, float *mx, float *sum) {
    const int64_t A = p->axis, I = p->inner, n = i1 - i0;
    for (int64_t i = 0; i < n; i++) mx[i] = xo[i0 + i], sum[i] = 0;
    for (int64_t a = 1; a < A; a++) {
        const float *xr = xo + a * I + i0;
        for (int64_t i = 0; i < n; i++) mx[i] = xr[i] > mx[i] ? xr[i] : mx[i];
    }
    for (int64_t a = 0; a < A; a++) {
        const float *xr = xo + a * I + i0;
        float *yr = yo + a * I + i0;
        for (int64_t i = 0; i < n; i++) {
            float e = expf(xr[i] - mx[i]);
            sum[i] += e;
            if (!p->log) yr[i] = e;
        }
    }
    if (p->log) {
        for (int64_t i = 0; i < n; i++) sum[i] = mx[i] + logf(sum[i]);
        for (int64_t a = 0; a < A; a++)
            for (int64_t i = 0; i < n; i++) yo[a * I + i0 + i] = xo[a * I + i0 + i] - sum[i];
    } else {
        for (int64_t i = 0; i < n; i++) sum[i] = 1.0f / sum[i];
        for (int64_t a = 0; a < A; a++)
            for (int64_t i = 0; i < n; i++) yo[a * I + i0 + i] *= sum[i];
    }
}

typedef struct sm_job {
    const sm_params *p;
    const float *x;
    float *y;
    int64_t chunks; /* column chunks per outer block */
} sm_job;

/* Tasks [lo, hi): task t is column chunk t % chunks of outer block t / chunks. */
static void sm_tasks(void *ctx, int64_t lo, int64_t hi) {
    const sm_job *j = ctx;
    const sm_params *p = j->p;
    float mx[SMA_CH], sum[SMA_CH];
    for (int64_t t = lo; t < hi; t++) {
        const int64_t o = t / j->chunks, i0 = (t % j->chunks) * SMA_CH, i1 = SI_MIN(p->inner, i0 + SMA_CH);
        sm_cols(p, j->x + o * p->axis * p->inner, j->y + o * p->axis * p->inner, i0, i1, mx, sum);
    }
}

/* ptr: X, scratch (unused), Y. The columns (inner positions) are independent: chunks of them are split over the
 * plan's threads (YOLO's DFL softmax over 16 bins of 4 x 8400 columns ran on one). */
static si_result sm_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const sm_params *p = params;
    sm_job j = {.p = p, .x = ptr[0], .y = ptr[2], .chunks = (p->inner + SMA_CH - 1) / SMA_CH};
    cpu_par_for(p->outer * j.chunks, 1, sm_tasks, &j);
    return SI_OK;
}

si_result cpu_lower_softmax_axis(cpu_pb *b, int n, int ndims, const int64_t *dims, int ax, bool is_log) {
    if (cpu_no_own()) return SI_ERR_UNSUPPORTED;
    const si_node *nd = &b->g->nodes[n];
    sm_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    p->outer = si_shape_count(ax, dims);
    p->axis = dims[ax];
    p->inner = si_shape_count(ndims - ax - 1, dims + ax + 1);
    p->log = is_log;
    if (p->outer <= 0 || p->axis <= 0 || p->inner <= 0) return SI_ERR_UNSUPPORTED;
    dnnl_memory_desc_t md, smd;
    cpu_md_plain(&md, ndims, dims);
    int64_t sdim = 2 * p->inner;
    cpu_md_plain(&smd, 1, &sdim);
    int src = cpu_pb_in_md(b, nd->in[0], &md);
    int sb = src < 0 ? -1 : cpu_pb_internal_md(b, &smd);
    int dst = sb < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &md);
    if (dst < 0) return SI_ERR_INTERNAL;
    cpu_arg args[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, sb}, {DNNL_ARG_DST, dst}};
    si_result s = cpu_pb_emit_own(b, n, nd->op_type, "own:softmax_axis", sm_run, p, args, 3);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

// --- the innermost axis ---------------------------------------------------------------------------------------------

#if defined(__x86_64__) || defined(__i386__)
typedef struct smr_params {
    int64_t rows, len;
    bool log;
} smr_params;

typedef struct smr_job {
    const smr_params *p;
    const float *x;
    float *y;
} smr_job;

__attribute__((target("avx512f"))) static void smr_rows(void *ctx, int64_t lo, int64_t hi) {
    const smr_job *j = ctx;
    const int64_t A = j->p->len, tail = A % 16, body = A - tail;
    const __mmask16 k = (__mmask16)((1u << tail) - 1);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * A;
        float *y = j->y + r * A;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int64_t i = 0; i < body; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
        if (tail) mx = _mm512_mask_max_ps(mx, k, mx, _mm512_maskz_loadu_ps(k, x + body));
        const float m = _mm512_reduce_max_ps(mx);
        const __m512 mv = _mm512_set1_ps(m);
        __m512 sum = _mm512_setzero_ps();
        for (int64_t i = 0; i < body; i += 16) {
            const __m512 e = cpu_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
            if (!j->p->log) _mm512_storeu_ps(y + i, e);
            sum = _mm512_add_ps(sum, e);
        }
        if (tail) {
            const __m512 e = cpu_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + body), mv));
            if (!j->p->log) _mm512_mask_storeu_ps(y + body, k, e);
            sum = _mm512_mask_add_ps(sum, k, sum, e);
        }
        const float total = _mm512_reduce_add_ps(sum);
        if (j->p->log) {
            const __m512 sub = _mm512_set1_ps(m + logf(total));
            for (int64_t i = 0; i < body; i += 16) _mm512_storeu_ps(y + i, _mm512_sub_ps(_mm512_loadu_ps(x + i), sub));
            if (tail) _mm512_mask_storeu_ps(y + body, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + body), sub));
        } else {
            const __m512 inv = _mm512_set1_ps(1.0f / total);
            for (int64_t i = 0; i < body; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inv));
            if (tail) _mm512_mask_storeu_ps(y + body, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + body), inv));
        }
    }
}

/* The same on AVX2 + FMA, 8 at a time; the tail through a copy padded with -inf (e^-inf is 0 there too). */
__attribute__((target("avx2,fma"))) static void smr_rows256(void *ctx, int64_t lo, int64_t hi) {
    const smr_job *j = ctx;
    const int64_t A = j->p->len, tail = A % 8, body = A - tail;
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * A;
        float *y = j->y + r * A;
        float t[8], te[8];
        for (int i = 0; i < 8; i++) t[i] = i < tail ? x[body + i] : -INFINITY;
        __m256 mx = _mm256_loadu_ps(t);
        for (int64_t i = 0; i < body; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
        const float m = cpu_hmax256(mx);
        const __m256 mv = _mm256_set1_ps(m);
        __m256 sum = _mm256_setzero_ps();
        for (int64_t i = 0; i < body; i += 8) {
            const __m256 e = cpu_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
            if (!j->p->log) _mm256_storeu_ps(y + i, e);
            sum = _mm256_add_ps(sum, e);
        }
        if (tail) {
            const __m256 e = cpu_exp256(_mm256_sub_ps(_mm256_loadu_ps(t), mv));
            _mm256_storeu_ps(te, e);
            if (!j->p->log)
                for (int64_t i = 0; i < tail; i++) y[body + i] = te[i];
            sum = _mm256_add_ps(sum, e);
        }
        const float total = cpu_hsum256(sum);
        if (j->p->log) {
            const float sub = m + logf(total);
            const __m256 sv = _mm256_set1_ps(sub);
            for (int64_t i = 0; i < body; i += 8) _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), sv));
            for (int64_t i = body; i < A; i++) y[i] = x[i] - sub;
        } else {
            const float inv = 1.0f / total;
            const __m256 iv = _mm256_set1_ps(inv);
            for (int64_t i = 0; i < body; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), iv));
            for (int64_t i = body; i < A; i++) y[i] *= inv;
        }
    }
}

/* ptr: X, Y */
static si_result smr_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const smr_params *p = params;
    smr_job j = {.p = p, .x = ptr[0], .y = ptr[1]};
    cpu_par_for(p->rows, SI_MAX((int64_t)1, 16384 / p->len), cpu_vec_get()->avx512 ? smr_rows : smr_rows256, &j);
    return SI_OK;
}

si_result cpu_lower_softmax_rows(cpu_pb *b, int n, int ndims, const int64_t *dims, bool is_log) {
    if (cpu_no_own() || !cpu_vec_get()->avx2) return SI_ERR_UNSUPPORTED;
    const si_node *nd = &b->g->nodes[n];
    const int64_t len = dims[ndims - 1], rows = si_shape_count(ndims - 1, dims);
    if (len <= 0 || rows <= 0) return SI_ERR_UNSUPPORTED;
    smr_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    *p = (smr_params){.rows = rows, .len = len, .log = is_log};
    dnnl_memory_desc_t md;
    cpu_md_plain(&md, ndims, dims);
    int src = cpu_pb_in_md(b, nd->in[0], &md);
    /* in place when nothing reads the input afterwards (each row is read before it is written): attention scores
     * of 1500 x 1500 per head are not written twice */
    int dst = src < 0 ? -1 : cpu_pb_can_overwrite(b, src, 1) ? cpu_pb_new_inplace(b, nd->out[0], &md, src) : cpu_pb_new_out(b, nd->out[0], &md);
    if (dst < 0) return SI_ERR_INTERNAL;
    cpu_arg args[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    si_result s = cpu_pb_emit_own(b, n, nd->op_type, "own:softmax", smr_run, p, args, 2);
    if (!s) cpu_pb_consume(b, n);
    return s;
}
#else
si_result cpu_lower_softmax_rows(cpu_pb *b, int n, int ndims, const int64_t *dims, bool is_log) {
    (void)b, (void)n, (void)ndims, (void)dims, (void)is_log;
    return SI_ERR_UNSUPPORTED;
}
#endif
