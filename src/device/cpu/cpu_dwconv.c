/*
 * cpu_dwconv.c — depthwise 1-D convolution (one input channel per group, as many groups as channels) as the CPU
 * device's own kernel: the depthwise convolutions over time of speech encoders (Conformer's convolution module,
 * QuartzNet / Citrinet blocks). oneDNN 2.6 has no jit kernel for 1-D depthwise convolutions and ran them on its
 * GEMM-based one (x64:gemm:jit): a Conformer block's 15-tap depthwise convolution took 0.5-0.7 ms for 144 x 100
 * values, a third of the model (the same layer written as a [1, 15] 2-D convolution runs six times faster than
 * ONNX Runtime).
 *
 * Each (image, channel) row: the bias, then each kernel tap over the output positions it reaches (unit stride: one
 * vectorizable multiply-add over a contiguous input range), then the chain's activations (cpu_act_apply). The
 * chain's per-channel affine ops (BatchNormalization, a per-channel Mul / Add) are folded into the weights and the
 * bias, once per compiled model. Rows are split over the plan's threads. Plain layout in and out.
 */
#include "device/cpu/cpu_llm.h"

#include <stdio.h>

typedef struct dw_params {
    int64_t N, C, W, OW, K, s, d, pl;
    const float *w;    /* [C, K], the folded scale applied */
    const float *bias; /* [C], the folded affine applied */
    int n_act;
    cpu_act act[CPU_MAX_ACT];
} dw_params;

typedef struct dw_job {
    const dw_params *p;
    const float *x;
    float *y;
} dw_job;

/* Rows [lo, hi): row t is channel t % C of image t / C. */
static void dw_rows(void *ctx, int64_t lo, int64_t hi) {
    const dw_job *jb = ctx;
    const dw_params *p = jb->p;
    const int64_t W = p->W, OW = p->OW, s = p->s;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t c = t % p->C;
        const float *xr = jb->x + t * W, *wc = p->w + c * p->K;
        float *yr = jb->y + t * OW;
        const float b = p->bias[c];
        for (int64_t o = 0; o < OW; o++) yr[o] = b;
        for (int64_t k = 0; k < p->K; k++) {
            /* output o reads input o s + k d - pl: in [0, W) for o in [o0, o1) */
            const int64_t off = k * p->d - p->pl;
            const int64_t o0 = off >= 0 ? 0 : (-off + s - 1) / s;
            const int64_t o1 = SI_MIN(OW, W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1);
            const float wk = wc[k];
            if (s == 1) {
                const float *xs = xr + off;
                for (int64_t o = o0; o < o1; o++) yr[o] += wk * xs[o];
            } else {
                for (int64_t o = o0; o < o1; o++) yr[o] += wk * xr[o * s + off];
            }
        }
        cpu_act_apply(p->act, p->n_act, yr, OW);
    }
}

/* ptr: X, Y */
static si_result dw_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const dw_params *p = params;
    dw_job jb = {.p = p, .x = ptr[0], .y = ptr[1]};
    cpu_par_for(p->N * p->C, SI_MAX((int64_t)1, 4096 / SI_MAX((int64_t)1, p->OW * p->K)), dw_rows, &jb);
    return SI_OK;
}

si_result cpu_lower_dwconv1d(cpu_pb *b, int n, int64_t stride, int64_t dil, int64_t pl) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (cpu_no_own() || nd->n_in < 2 || !cpu_own_f32_io(g, nd, &X, &Y) || X->ndim != 3 || Y->ndim != 3) return SI_ERR_UNSUPPORTED;
    const si_tensor *Wt = cpu_const_input(g, nd, 1), *B = cpu_const_input(g, nd, 2);
    const int64_t C = X->dims[1];
    if (!Wt || Wt->dtype != SI_F32 || !Wt->data || Wt->ndim != 3 || Wt->dims[0] != C || Wt->dims[1] != 1 || Y->dims[1] != C ||
        si_attr_int(nd, "group", 1) != C || C < 2)
        return SI_ERR_UNSUPPORTED;
    if (nd->n_in > 2 && nd->in[2] >= 0 && (!B || B->dtype != SI_F32 || !B->data || si_shape_count(B->ndim, B->dims) != C))
        return SI_ERR_UNSUPPORTED;
    dw_params p = {.N = X->dims[0], .C = C, .W = X->dims[2], .OW = Y->dims[2], .K = Wt->dims[2], .s = stride, .d = dil, .pl = pl};
    if (p.s < 1 || p.d < 1 || p.OW < 0) return SI_ERR_UNSUPPORTED;
    /* the chain: folded per-channel affine ops, then the activations this kernel applies */
    cpu_chain c;
    cpu_chain_init(&c, b, n, 3, Y->dims, 1, false);
    p.n_act = cpu_chain_own_acts(b, &c, p.act);
    cpu_skey wk = {.node = n, .tag = "dwconv1d.w", .fp = cpu_chain_fp(&c), .src = Wt};
    bool make_w;
    float *w = cpu_pb_shared(b, &wk, sizeof(float) * (size_t)(C * p.K), &make_w);
    float *bias = si_malloc(sizeof(float) * (size_t)C);
    dw_params *pp = cpu_pb_own(b, sizeof *pp);
    if (!w || !bias || !pp) {
        si_free(bias);
        cpu_chain_free(&c);
        return SI_ERR_NO_MEM;
    }
    const float *w0 = Wt->data, *b0 = B ? B->data : NULL;
    for (int64_t ch = 0; make_w && ch < C; ch++)
        for (int64_t k = 0; k < p.K; k++) w[ch * p.K + k] = w0[ch * p.K + k] * (c.scale ? c.scale[ch] : 1.0f);
    if (make_w) cpu_pb_shared_ready(b, w);
    for (int64_t ch = 0; ch < C; ch++) bias[ch] = (b0 ? b0[ch] : 0.0f) * (c.scale ? c.scale[ch] : 1.0f) + (c.shift ? c.shift[ch] : 0.0f);
    const float *sbias = cpu_pb_shared_data(b, n, "bias", bias, sizeof(float) * (size_t)C);
    si_free(bias);
    if (!sbias) {
        cpu_chain_free(&c);
        return SI_ERR_NO_MEM;
    }
    p.w = w;
    p.bias = sbias;
    *pp = p;
    int in_buf = cpu_pb_plain(b, nd->in[0]);
    dnnl_memory_desc_t ymd;
    cpu_md_plain(&ymd, 3, Y->dims);
    int out = in_buf < 0 ? -1 : cpu_chain_dst(b, &c, &ymd);
    if (out < 0) {
        cpu_chain_free(&c);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[2] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, out}};
    char name[96];
    cpu_chain_name(&c, "ConvDw", name, sizeof name);
    si_result st = cpu_pb_emit_own(b, n, name, "own:dwconv1d", dw_run, pp, args, 2);
    if (!st) cpu_chain_consume(b, &c);
    cpu_chain_free(&c);
    return st;
}
