/*
 * cpu_softmax.c — Softmax / LogSoftmax over an axis that is not the innermost one (YOLO's DFL softmax over
 * 16 bins of a [1, 4, 16, 8400] tensor), where this oneDNN has only its reference implementation: plain
 * layout, the inner dims contiguous, so every pass (max, exp and sum, scale) runs along rows of `inner`
 * values. Accurate form: exp(x - max) / sum; log form: x - max - log(sum).
 */
#include "device/cpu/cpu.h"

#include <math.h>

typedef struct sm_params {
    int64_t outer, axis, inner;
    bool log;
} sm_params;

/* ptr: X, scratch (2 * inner floats: max, sum), Y */
static si_result sm_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const sm_params *p = params;
    const float *x = ptr[0];
    float *mx = ptr[1], *sum = mx + p->inner, *y = ptr[2];
    const int64_t A = p->axis, I = p->inner;
    for (int64_t o = 0; o < p->outer; o++) {
        const float *xo = x + o * A * I;
        float *yo = y + o * A * I;
        for (int64_t i = 0; i < I; i++) mx[i] = xo[i], sum[i] = 0;
        for (int64_t a = 1; a < A; a++)
            for (int64_t i = 0; i < I; i++) mx[i] = xo[a * I + i] > mx[i] ? xo[a * I + i] : mx[i];
        for (int64_t a = 0; a < A; a++)
            for (int64_t i = 0; i < I; i++) {
                float e = expf(xo[a * I + i] - mx[i]);
                sum[i] += e;
                if (!p->log) yo[a * I + i] = e;
            }
        if (p->log) {
            for (int64_t i = 0; i < I; i++) sum[i] = mx[i] + logf(sum[i]);
            for (int64_t a = 0; a < A; a++)
                for (int64_t i = 0; i < I; i++) yo[a * I + i] = xo[a * I + i] - sum[i];
        } else {
            for (int64_t i = 0; i < I; i++) sum[i] = 1.0f / sum[i];
            for (int64_t a = 0; a < A; a++)
                for (int64_t i = 0; i < I; i++) yo[a * I + i] *= sum[i];
        }
    }
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
