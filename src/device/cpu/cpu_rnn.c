/*
 * cpu_rnn.c — the CPU device's recurrent layers (LSTM, GRU, RNN), every attribute the reference kernel takes
 * (ops/rnn.h reads the node for both): directions, sequence_lens, initial states, peepholes, input_forget,
 * linear_before_reset, clip, layout, every activation with its alpha/beta.
 *
 * Two steps. The input projection of every time step and both directions is one oneDNN matmul,
 * X [T*N, I] x W^T [I, D*G*H] + (Wb + Rb), weights packed once. The recurrence is an FN step: per direction and
 * batch row (rows split over the threads), each time step adds h W_R^T (a vectorised row-times-matrix product over
 * R^T packed once) to that step's projection and applies the gate equations in float32, with a polynomial exp
 * (relative error below 1e-7) for the sigmoid and tanh.
 */
#include "device/cpu/cpu.h"

#include "ops/rnn.h"

#include <math.h>
#include <stdio.h>

#define MAX_ARGS 8

typedef struct rnn_ctx {
    si_rnn p;
    const float *rt;   /* per direction R^T [H, G*H] */
    const float *rbh;  /* GRU: per direction Rbh [H] (NULL without B) */
    const float *peep; /* LSTM: per direction P [3H] (i, o, f) or NULL */
    const int32_t *seq_const; /* sequence lengths known at compile time, or NULL */
    int i_xw, i_h0, i_c0, i_seq, i_y, i_yh, i_yc, i_scratch; /* buffer positions, -1 when absent */
    int64_t scratch_per_row; /* floats */
} rnn_ctx;

// --- vector maths ---------------------------------------------------------------------------------------------

/* exp(x) for x in [-87, 88]: 2^n * p(r), r = x - n ln 2, p of degree 7 (Taylor, |r| <= 0.35: error < 1e-7). */
static inline float exp_poly(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p = 1.0f / 5040 + r * (1.0f / 40320);
    p = 1.0f / 720 + r * p;
    p = 1.0f / 120 + r * p;
    p = 1.0f / 24 + r * p;
    p = 1.0f / 6 + r * p;
    p = 0.5f + r * p;
    p = 1.0f + r * p;
    p = 1.0f + r * p;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_poly(-x)); }

static inline float tanh_f(float x) {
    float a = x < 0 ? -x : x;
    float t = exp_poly(-2.0f * a);
    float big = (1.0f - t) / (1.0f + t);
    float x2 = a * a; /* |x| < 1/8: the series is exact to float precision */
    float small = a * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315))));
    float r = a < 0.125f ? small : big;
    return x < 0 ? -r : r;
}

CPU_TARGET_CLONES("avx512f", "avx2", "default") static void act_apply(const si_rnn_act *a, bool has_clip, float clip, float *x,
                                                                                  int64_t n) {
    if (has_clip)
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < -clip ? -clip : x[i] > clip ? clip : x[i];
    const float al = a->alpha, be = a->beta;
    switch (a->fn) {
    case SI_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = sigmoid_f(x[i]);
        break;
    case SI_ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanh_f(x[i]);
        break;
    case SI_ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case SI_ACT_AFFINE:
        for (int64_t i = 0; i < n; i++) x[i] = al * x[i] + be;
        break;
    case SI_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] >= 0 ? x[i] : al * x[i];
        break;
    case SI_ACT_THRESHOLDED_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > al ? x[i] : 0;
        break;
    case SI_ACT_SCALED_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = al * tanh_f(be * x[i]);
        break;
    case SI_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = al * x[i] + be;
            x[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        break;
    case SI_ACT_ELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] >= 0 ? x[i] : al * (exp_poly(x[i]) - 1.0f);
        break;
    case SI_ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + (x[i] < 0 ? -x[i] : x[i]));
        break;
    case SI_ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > 30.0f ? x[i] : log1pf(expf(x[i]));
        break;
    }
}

/* R^T [H, GH] per direction is packed in panels of RT_PANEL columns, each panel [H, width] row-major (the last one
 * narrower when GH is not a multiple): a step reads each panel as one contiguous run (a row of 64 columns out of
 * 3H at a stride was 10-20% slower on a GRU of hidden size 256). */
#define RT_PANEL 64

static int64_t rt_at(int64_t H, int64_t GH, int64_t k, int64_t j) {
    const int64_t p = j / RT_PANEL, w = SI_MIN(RT_PANEL, GH - p * RT_PANEL);
    return p * RT_PANEL * H + k * w + (j - p * RT_PANEL);
}

/* g[0..n) += h[0..H) M[:, c0..c0+n), M the paneled R^T of one direction: 64 columns at a time held in registers. */
CPU_TARGET_CLONES("avx512f", "avx2", "default") static void vec_mat(const float *restrict h, int64_t H, const float *restrict m, int64_t GH,
                                                                                int64_t c0, int64_t n, float *restrict g) {
    for (int64_t j = c0; j < c0 + n;) {
        const int64_t p = j / RT_PANEL, pj = j - p * RT_PANEL, w = SI_MIN(RT_PANEL, GH - p * RT_PANEL), cnt = SI_MIN(w - pj, c0 + n - j);
        const float *restrict pm = m + p * RT_PANEL * H + pj;
        float *restrict gj = g + (j - c0);
        if (cnt == RT_PANEL) {
            float acc[RT_PANEL];
            for (int q = 0; q < RT_PANEL; q++) acc[q] = gj[q];
            for (int64_t k = 0; k < H; k++) {
                const float hk = h[k];
                const float *restrict mr = pm + k * RT_PANEL;
                for (int q = 0; q < RT_PANEL; q++) acc[q] += hk * mr[q];
            }
            for (int q = 0; q < RT_PANEL; q++) gj[q] = acc[q];
        } else {
            for (int64_t k = 0; k < H; k++) {
                const float hk = h[k];
                const float *restrict mr = pm + k * w;
                for (int64_t q = 0; q < cnt; q++) gj[q] += hk * mr[q];
            }
        }
        j += cnt;
    }
}

// --- the recurrence ---------------------------------------------------------------------------------------------

typedef struct rnn_job {
    const rnn_ctx *c;
    void *const *bufs;
} rnn_job;

static const float *buf_f(const rnn_job *j, int i) { return i >= 0 ? j->bufs[i] : NULL; }

/* One direction d, batch row b, over its sequence. */
static void rnn_row(const rnn_job *j, int d, int64_t b, float *scratch) {
    const rnn_ctx *c = j->c;
    const si_rnn *p = &c->p;
    const int64_t H = p->H, GH = p->gates * H, DGH = p->ndir * GH, T = p->T, N = p->N;
    const float *xw = buf_f(j, c->i_xw), *h0 = buf_f(j, c->i_h0), *c0 = buf_f(j, c->i_c0);
    float *y = (float *)buf_f(j, c->i_y), *yh = (float *)buf_f(j, c->i_yh), *yc = (float *)buf_f(j, c->i_yc);
    const float *rt = c->rt + d * H * GH, *rbh = c->rbh ? c->rbh + d * H : NULL, *P = c->peep ? c->peep + d * 3 * H : NULL;
    const si_rnn_act *fa = &p->act[d][0], *ga = &p->act[d][1], *ha = &p->act[d][2];
    float *h = scratch, *cs = h + H, *g = cs + H, *hn = g + GH, *tmp = hn + H;
    const int64_t so = (p->layout ? b * p->ndir + d : d * N + b) * H; /* state offset */
    for (int64_t k = 0; k < H; k++) h[k] = h0 ? h0[so + k] : 0.0f, cs[k] = c0 ? c0[so + k] : 0.0f;
    int64_t len = T;
    if (c->i_seq >= 0) len = ((const int32_t *)j->bufs[c->i_seq])[b];
    else if (c->seq_const) len = c->seq_const[b];
    len = len < 0 ? 0 : len > T ? T : len;
    const bool reverse = p->direction == 1 || d == 1;
    for (int64_t s = 0; s < len; s++) {
        const int64_t t = reverse ? len - 1 - s : s;
        const float *xr = xw + (p->layout ? b * T + t : t * N + b) * DGH + d * GH;
        memcpy(g, xr, sizeof(float) * (size_t)GH);
        if (p->kind == SI_RNN_VANILLA) {
            vec_mat(h, H, rt, GH, 0, GH, g);
            act_apply(fa, p->has_clip, p->clip, g, H);
            memcpy(h, g, sizeof(float) * (size_t)H);
        } else if (p->kind == SI_RNN_GRU) {
            float *z = g, *r = g + H, *hc = g + 2 * H;
            vec_mat(h, H, rt, GH, 0, 2 * H, g);
            act_apply(fa, p->has_clip, p->clip, g, 2 * H);
            for (int64_t k = 0; k < H; k++) hn[k] = rbh ? rbh[k] : 0.0f;
            if (p->linear_before_reset) {
                vec_mat(h, H, rt, GH, 2 * H, H, hn);
                for (int64_t k = 0; k < H; k++) hc[k] += r[k] * hn[k];
            } else {
                for (int64_t k = 0; k < H; k++) tmp[k] = r[k] * h[k];
                vec_mat(tmp, H, rt, GH, 2 * H, H, hn);
                for (int64_t k = 0; k < H; k++) hc[k] += hn[k];
            }
            act_apply(ga, p->has_clip, p->clip, hc, H);
            for (int64_t k = 0; k < H; k++) h[k] = (1.0f - z[k]) * hc[k] + z[k] * h[k];
        } else { /* LSTM, gates i, o, f, c */
            float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
            vec_mat(h, H, rt, GH, 0, GH, g);
            if (P)
                for (int64_t k = 0; k < H; k++) gi[k] += P[k] * cs[k], gf[k] += P[2 * H + k] * cs[k];
            act_apply(fa, p->has_clip, p->clip, gi, H);
            if (p->input_forget)
                for (int64_t k = 0; k < H; k++) gf[k] = 1.0f - gi[k];
            else
                act_apply(fa, p->has_clip, p->clip, gf, H);
            act_apply(ga, p->has_clip, p->clip, gc, H);
            for (int64_t k = 0; k < H; k++) cs[k] = gf[k] * cs[k] + gi[k] * gc[k];
            if (P)
                for (int64_t k = 0; k < H; k++) go[k] += P[H + k] * cs[k];
            act_apply(fa, p->has_clip, p->clip, go, H);
            memcpy(tmp, cs, sizeof(float) * (size_t)H);
            act_apply(ha, false, 0, tmp, H);
            for (int64_t k = 0; k < H; k++) h[k] = go[k] * tmp[k];
        }
        if (y) memcpy(y + (p->layout ? (b * T + t) * p->ndir + d : (t * p->ndir + d) * N + b) * H, h, sizeof(float) * (size_t)H);
    }
    if (len == 0) /* a row without steps: zero final states (as the reference kernel and ONNX Runtime) */
        for (int64_t k = 0; k < H; k++) h[k] = cs[k] = 0.0f;
    if (y) /* steps past the row's length stay zero */
        for (int64_t t = len; t < T; t++)
            memset(y + (p->layout ? (b * T + t) * p->ndir + d : (t * p->ndir + d) * N + b) * H, 0, sizeof(float) * (size_t)H);
    if (yh) memcpy(yh + so, h, sizeof(float) * (size_t)H);
    if (yc) memcpy(yc + so, cs, sizeof(float) * (size_t)H);
}

static void rnn_part(void *arg, int ithr, int nthr) {
    const rnn_job *j = arg;
    const rnn_ctx *c = j->c;
    const int64_t rows = c->p.ndir * c->p.N;
    float *scratch = j->bufs[c->i_scratch];
    for (int64_t i = ithr; i < rows; i += nthr) rnn_row(j, (int)(i / c->p.N), i % c->p.N, scratch + i * c->scratch_per_row);
}

static si_result rnn_kernel(const void *ctx, void *const *bufs, int threads) {
    const rnn_ctx *c = ctx;
    rnn_job j = {c, bufs};
    int64_t rows = c->p.ndir * c->p.N;
    cpu_parallel((int)SI_MIN((int64_t)threads, rows), rnn_part, &j);
    return SI_OK;
}

// --- lowering ---------------------------------------------------------------------------------------------------

static const si_tensor *const_of(const si_graph *g, const si_node *n, int k) { return cpu_const_input(g, n, k); }

/* A runtime or constant float32 input's plain buffer, or -1 when absent. */
static int in_buf(cpu_pb *b, const si_node *nd, int k) {
    if (k >= nd->n_in || nd->in[k] < 0) return -1;
    return cpu_pb_plain(b, nd->in[k]);
}

/* W [D, G*H, I] transposed to W^T [I, D*G*H] (the input projection's weights). */
typedef struct rnn_wt {
    const float *w;
    int64_t D, GH, I;
} rnn_wt;

static void fill_rnn_wt(const void *ctx, void *dst) {
    const rnn_wt *p = ctx;
    float *wt = dst;
    const int64_t DGH = p->D * p->GH;
    for (int64_t d = 0; d < p->D; d++)
        for (int64_t k = 0; k < p->GH; k++)
            for (int64_t i = 0; i < p->I; i++) wt[i * DGH + d * p->GH + k] = p->w[(d * p->GH + k) * p->I + i];
}

si_result cpu_lower_rnn(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    /* the node seen by the reference reader: descriptors of its inputs, constants with their data */
    si_tensor desc[8];
    const si_tensor *ins[8] = {0};
    if (nd->n_in > 8 || nd->n_in < 3) return SI_ERR_UNSUPPORTED;
    for (int k = 0; k < nd->n_in; k++) {
        if (nd->in[k] < 0) continue;
        const si_val *v = &g->values[nd->in[k]];
        if (!cpu_value_static(v)) return SI_ERR_UNSUPPORTED;
        if (v->const_val) {
            ins[k] = v->const_val;
            continue;
        }
        memset(&desc[k], 0, sizeof desc[k]);
        desc[k].dtype = v->dtype;
        desc[k].ndim = v->ndim;
        memcpy(desc[k].dims, v->dims, sizeof desc[k].dims);
        ins[k] = &desc[k];
    }
    si_kctx kc = {.node = nd, .opset = nd->opset, .n_in = nd->n_in, .in = ins};
    rnn_ctx *c = cpu_pb_own(b, sizeof *c);
    if (!c) return SI_ERR_NO_MEM;
    memset(c, 0, sizeof *c);
    if (si_rnn_prepare(&kc, &c->p)) {
        si_err_clear();
        return SI_ERR_UNSUPPORTED;
    }
    si_rnn *p = &c->p;
    const si_tensor *W = const_of(g, nd, SI_RNN_W), *R = const_of(g, nd, SI_RNN_R), *B = const_of(g, nd, SI_RNN_B);
    const si_tensor *P = p->kind == SI_RNN_LSTM ? const_of(g, nd, SI_RNN_P) : NULL, *SEQ = const_of(g, nd, SI_RNN_SEQ);
    if (ins[0]->dtype != SI_F32 || !W || !R || !W->data || !R->data) return SI_ERR_UNSUPPORTED;
    if (nd->n_in > SI_RNN_B && nd->in[SI_RNN_B] >= 0 && (!B || !B->data)) return SI_ERR_UNSUPPORTED;
    if (p->kind == SI_RNN_LSTM && nd->n_in > SI_RNN_P && nd->in[SI_RNN_P] >= 0 && (!P || !P->data)) return SI_ERR_UNSUPPORTED;
    if (SEQ && (SEQ->dtype != SI_I32 || !SEQ->data)) return SI_ERR_UNSUPPORTED;
    if (nd->n_in > SI_RNN_SEQ && nd->in[SI_RNN_SEQ] >= 0 && !SEQ && g->values[nd->in[SI_RNN_SEQ]].dtype != SI_I32) return SI_ERR_UNSUPPORTED;
    for (int k = 0; k < nd->n_out; k++)
        if (nd->out[k] >= 0 && (g->values[nd->out[k]].dtype != SI_F32 || !cpu_value_static(&g->values[nd->out[k]]))) return SI_ERR_UNSUPPORTED;
    const int64_t D = p->ndir, H = p->H, G = p->gates, GH = G * H, DGH = D * GH, I = p->I, rows = p->T * p->N;
    if (rows == 0 || p->N == 0) return SI_ERR_UNSUPPORTED;

    /* packed constants, made once per compiled model (the store): W^T [I, D*G*H] with the bias row Wb + Rb (Rbh
     * stays apart for the GRU), R^T per direction */
    float *bias = si_malloc(sizeof(float) * (size_t)DGH + 1);
    float *rbh = p->kind == SI_RNN_GRU && B ? cpu_pb_own(b, sizeof(float) * (size_t)(D * H)) : NULL;
    float *peep = P ? cpu_pb_own(b, sizeof(float) * (size_t)(D * 3 * H)) : NULL;
    cpu_skey rk = {.node = n, .tag = "rnn.rtp", .src = R};
    bool make_rt = false;
    float *rt = bias ? cpu_pb_shared(b, &rk, sizeof(float) * (size_t)(D * H * GH), &make_rt) : NULL;
    if (!bias || !rt || (p->kind == SI_RNN_GRU && B && !rbh) || (P && !peep)) {
        si_free(bias);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory packing recurrent weights");
    }
    const float *r0 = R->data, *b0 = B ? B->data : NULL;
    for (int64_t d = 0; d < D; d++)
        for (int64_t k = 0; k < GH; k++) {
            for (int64_t h = 0; make_rt && h < H; h++) rt[d * H * GH + rt_at(H, GH, h, k)] = r0[(d * GH + k) * H + h];
            bool gru_h = p->kind == SI_RNN_GRU && k >= 2 * H;
            bias[d * GH + k] = b0 ? b0[d * 2 * GH + k] + (gru_h ? 0.0f : b0[d * 2 * GH + GH + k]) : 0.0f;
            if (gru_h && rbh) rbh[d * H + k - 2 * H] = b0[d * 2 * GH + GH + k];
        }
    if (make_rt) cpu_pb_shared_ready(b, rt);
    if (peep) memcpy(peep, P->data, sizeof(float) * (size_t)(D * 3 * H));
    c->rt = rt;
    c->rbh = rbh;
    c->peep = peep;
    if (SEQ) {
        int32_t *sq = cpu_pb_own(b, sizeof(int32_t) * (size_t)p->N);
        if (!sq) {
            si_free(bias);
            return SI_ERR_NO_MEM;
        }
        memcpy(sq, SEQ->data, sizeof(int32_t) * (size_t)p->N);
        c->seq_const = sq;
    }

    /* step 1: the input projection of every step, one matmul */
    int64_t sd[2] = {rows, I}, wd[2] = {I, DGH}, dd[2] = {rows, DGH}, bd[2] = {1, DGH};
    dnnl_memory_desc_t smd, wplain, wany, dmd, bmd;
    cpu_md_plain(&smd, 2, sd);
    cpu_md_plain(&wplain, 2, wd);
    cpu_md_plain(&dmd, 2, dd);
    cpu_md_plain(&bmd, 2, bd);
    dnnl_dims_t wdd = {I, DGH};
    dnnl_memory_desc_init_by_tag(&wany, 2, wdd, dnnl_f32, dnnl_format_tag_any);
    dnnl_matmul_desc_t mdesc;
    dnnl_convolution_desc_t cdesc;
    cpu_mm1x1 m1; /* the product as a 1x1 convolution where oneDNN's matmul has no brgemm kernel (cpu_mm1x1.c) */
    const bool conv = cpu_mm1x1_wanted(b, rows) && cpu_mm1x1_probe(b, rows, I, DGH);
    if (conv) cpu_mm1x1_descs(rows, I, DGH, dnnl_f32, dnnl_f32, dnnl_f32, false, &m1);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = cpu_chain_attr(NULL, 1.0f);
    dnnl_status_t ds = !attr ? dnnl_out_of_memory
                       : conv ? (cpu_mm1x1_conv(&m1, true, &cdesc) ? dnnl_success : dnnl_unimplemented)
                              : dnnl_matmul_desc_init(&mdesc, &smd, &wany, &bmd, &dmd);
    if (ds == dnnl_success) ds = dnnl_primitive_desc_create(&pd, conv ? (const void *)&cdesc : (const void *)&mdesc, attr, b->eng, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success) {
        si_free(bias);
        return ds == dnnl_unimplemented ? SI_ERR_UNSUPPORTED : cpu_dnnl_err(ds, "recurrent input projection", nd->name);
    }
    int xb = cpu_pb_in_md(b, nd->in[0], &smd);
    if (conv && xb >= 0) xb = cpu_pb_alias(b, xb, &m1.src); /* the same bytes */
    rnn_wt wt = {W->data, D, GH, I};
    cpu_skey wk = {.node = n, .tag = conv ? "rnn.w1x1" : "rnn.w", .src = W};
    int wb = xb < 0 ? -1 : cpu_pb_pack(b, &wk, NULL, fill_rnn_wt, &wt, conv ? &m1.wplain : &wplain, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
    const void *sbias = wb < 0 ? NULL : cpu_pb_shared_data(b, n, "bias", bias, sizeof(float) * (size_t)DGH);
    si_free(bias);
    int bb = sbias ? cpu_pb_const_buf(b, sbias, conv ? &m1.bias : &bmd) : -1;
    int xw = bb < 0 ? -1 : cpu_pb_internal_md(b, &dmd);
    int xd = xw >= 0 && conv ? cpu_pb_alias(b, xw, &m1.dst) : xw;
    if (xd < 0) {
        dnnl_primitive_desc_destroy(pd);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg margs[4] = {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_BIAS, bb}, {DNNL_ARG_DST, xd}};
    char what[64];
    snprintf(what, sizeof what, "%s input projection", nd->op_type);
    si_result s = cpu_pb_emit_dnnl(b, n, what, pd, margs, 4);
    if (s) return s;

    /* step 2: the recurrence */
    int ib[MAX_ARGS], ob[MAX_ARGS], ni = 0, no = 0;
    c->i_xw = ni, ib[ni++] = xw;
    c->i_h0 = c->i_c0 = c->i_seq = c->i_y = c->i_yh = c->i_yc = -1;
    int h0 = in_buf(b, nd, SI_RNN_H0), c0 = p->kind == SI_RNN_LSTM ? in_buf(b, nd, SI_RNN_C0) : -1;
    int sq = !SEQ && nd->n_in > SI_RNN_SEQ && nd->in[SI_RNN_SEQ] >= 0 ? cpu_pb_plain(b, nd->in[SI_RNN_SEQ]) : -1;
    if (h0 >= 0) c->i_h0 = ni, ib[ni++] = h0;
    if (c0 >= 0) c->i_c0 = ni, ib[ni++] = c0;
    if (sq >= 0) c->i_seq = ni, ib[ni++] = sq;
    for (int k = 0; k < nd->n_out && k < 3; k++) {
        int v = nd->out[k];
        if (v < 0) continue;
        dnnl_memory_desc_t omd;
        cpu_md_plain(&omd, g->values[v].ndim, g->values[v].dims);
        int ob1 = cpu_pb_new_out(b, v, &omd);
        if (ob1 < 0) return SI_ERR_NO_MEM;
        *(k == 0 ? &c->i_y : k == 1 ? &c->i_yh : &c->i_yc) = ni + no;
        ob[no++] = ob1;
    }
    c->scratch_per_row = (GH + 5 * H + 16) & ~(int64_t)15;
    int64_t sn = D * p->N * c->scratch_per_row;
    dnnl_memory_desc_t scmd;
    cpu_md_plain(&scmd, 1, &sn);
    int scb = cpu_pb_internal_md(b, &scmd);
    if (scb < 0) return SI_ERR_NO_MEM;
    c->i_scratch = ni + no;
    ob[no++] = scb;
    snprintf(what, sizeof what, "%s recurrence", nd->op_type);
    s = cpu_pb_emit_fn(b, n, what, rnn_kernel, c, ib, ni, ob, no);
    if (!s) cpu_pb_consume(b, n);
    return s;
}
