/*
 * cpu_lower_norm.c — normalisation and softmax on oneDNN primitives or the device's own kernels (split from
 * cpu_lower.c, whose helpers it shares through cpu.h): BatchNormalization (3-D on [N, C, 1, W] views),
 * Softmax / LogSoftmax, LayerNormalization and its written-out forms (ReduceMean -> Sub -> Pow -> ReduceMean ->
 * Add -> Sqrt -> Div [-> Mul -> Add]), and the written-out RMS norm (Pow / Mul x x -> ReduceMean -> Add -> Sqrt ->
 * Div / Reciprocal -> Mul [-> Mul]).
 */
#include "device/cpu/cpu.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

#define MAX_ARGS 80

static int64_t value_count(const si_graph *g, int v) { return si_shape_count(g->values[v].ndim, g->values[v].dims); }

static bool const_f32_count(const si_tensor *t, int64_t n) {
    return t && t->dtype == SI_F32 && t->data && si_shape_count(t->ndim, t->dims) == n;
}

/* A BatchNormalization over [N, C, W] that did not fold into a convolution (a TDNN's Conv1d -> Relu -> BN): oneDNN
 * 2.6 has only its reference kernel for 3-D batch normalization (1.3 ms for 256 x 300 values), so it runs on
 * [N, C, 1, W] views of the buffers (a unit dimension inserted into whatever layout they have), where its jit
 * kernel applies. No post-ops (their operands would have the 3-D shape). */
static si_result batchnorm_1d(cpu_pb *b, int n, int src, const si_tensor *const *ts, const dnnl_memory_desc_t *cmd) {
    const si_node *nd = &b->g->nodes[n];
    const dnnl_memory_desc_t md3 = b->p->bufs[src].md;
    dnnl_dims_t d4 = {md3.dims[0], md3.dims[1], 1, md3.dims[2]};
    dnnl_memory_desc_t md4, dst3;
    if (b->p->bufs[src].dyn || dnnl_memory_desc_reshape(&md4, &md3, 4, d4) != dnnl_success) return cpu_unsupported();
    dnnl_batch_normalization_desc_t bd;
    if (dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &md4, si_attr_float(nd, "epsilon", 1e-5f),
                                                   dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift) != dnnl_success)
        return cpu_unsupported();
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, NULL, &bd, &pd, nd->name);
    if (s) return s;
    const dnnl_memory_desc_t *dst4 = cpu_pd_md(pd, dnnl_query_dst_md);
    dnnl_dims_t d3 = {d4[0], d4[1], d4[3]};
    if (dnnl_memory_desc_reshape(&dst3, dst4, 3, d3) != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return cpu_unsupported();
    }
    int in4 = cpu_pb_alias(b, src, &md4);
    int out = in4 < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &dst3);
    int out4 = out < 0 ? -1 : cpu_pb_alias(b, out, dst4);
    if (out4 < 0) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    int bufs[4];
    for (int i = 0; i < 4; i++) {
        cpu_pb_keep_const(b, nd->in[1 + i]);
        bufs[i] = cpu_pb_const_buf(b, ts[i]->data, cmd);
    }
    cpu_arg args[6] = {{DNNL_ARG_SRC, in4}, {DNNL_ARG_SCALE, bufs[0]}, {DNNL_ARG_SHIFT, bufs[1]}, {DNNL_ARG_MEAN, bufs[2]},
                       {DNNL_ARG_VARIANCE, bufs[3]}, {DNNL_ARG_DST, out4}};
    s = cpu_pb_emit_dnnl(b, n, "BatchNormalization", pd, args, 6);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

si_result cpu_lower_batchnorm(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 5 || !cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd) || si_attr_int(nd, "training_mode", 0)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]];
    if (X->ndim < 2 || X->ndim > 5) return cpu_unsupported();
    int64_t C = X->dims[1];
    const si_tensor *ts[4];
    for (int i = 0; i < 4; i++)
        if (!const_f32_count(ts[i] = cpu_const_input(g, nd, 1 + i), C)) return cpu_unsupported();
    int src = cpu_pb_existing(b, nd->in[0]);
    if (src < 0) return SI_ERR_INTERNAL;
    dnnl_memory_desc_t md = b->p->bufs[src].md, cmd;
    cpu_md_plain(&cmd, 1, &C);
    if (X->ndim == 3) return batchnorm_1d(b, n, src, ts, &cmd);
    dnnl_batch_normalization_desc_t bd;
    dnnl_status_t ds = dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &md, si_attr_float(nd, "epsilon", 1e-5f),
                                                                  dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift);
    if (ds != dnnl_success) return cpu_unsupported();
    cpu_chain c;
    dnnl_primitive_desc_t pd;
    si_result s = cpu_chain_pd(b, n, &md, &c, &bd, &pd);
    if (s) return s;
    int bufs[4];
    for (int i = 0; i < 4; i++) {
        cpu_pb_keep_const(b, nd->in[1 + i]);
        bufs[i] = cpu_pb_const_buf(b, ts[i]->data, &cmd);
    }
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_SCALE, bufs[0]}, {DNNL_ARG_SHIFT, bufs[1]}, {DNNL_ARG_MEAN, bufs[2]},
                              {DNNL_ARG_VARIANCE, bufs[3]}};
    return cpu_finish_chain(b, &c, pd, args, 5, "BatchNormalization");
}

si_result cpu_lower_softmax(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (!cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]];
    int r = X->ndim;
    if (r < 1) return cpu_unsupported();
    int64_t axis = si_attr_int(nd, "axis", nd->opset >= 13 ? -1 : 1);
    if (axis < -r || axis >= r) return cpu_unsupported();
    if (axis < 0) axis += r;
    int64_t dims[DNNL_MAX_NDIMS];
    int nd2, ax;
    if (nd->opset >= 13) {
        if (r > DNNL_MAX_NDIMS) return cpu_unsupported();
        for (int i = 0; i < r; i++) dims[i] = X->dims[i];
        nd2 = r;
        ax = (int)axis;
    } else { /* softmax over the flattened trailing dims */
        dims[0] = si_shape_count((int)axis, X->dims);
        dims[1] = si_shape_count(r - (int)axis, X->dims + axis);
        nd2 = 2;
        ax = 1;
    }
    bool is_log = cpu_is_op(nd, SI_OP_LOG_SOFTMAX);
    if (ax == nd2 - 1) { /* the own kernel: no primitive to make for every new row length (cpu_softmax.c) */
        si_result s = cpu_lower_softmax_rows(b, n, nd2, dims, is_log);
        if (s != SI_ERR_UNSUPPORTED) return s;
    }
    dnnl_memory_desc_t md;
    cpu_md_plain(&md, nd2, dims);
    dnnl_softmax_v2_desc_t sd;
    dnnl_status_t ds = dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, is_log ? dnnl_softmax_log : dnnl_softmax_accurate, &md, &md, ax);
    if (ds != dnnl_success) return cpu_unsupported();
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, NULL, &sd, &pd, nd->name);
    if (s) return s;
    if (cpu_pd_is_ref(pd) && ax + 1 < nd2) { /* oneDNN's reference softmax: the own kernel (cpu_softmax.c) */
        dnnl_primitive_desc_destroy(pd);
        s = cpu_lower_softmax_axis(b, n, nd2, dims, ax, is_log);
        if (s != SI_ERR_UNSUPPORTED) return s;
        if ((s = cpu_create_pd(b, NULL, &sd, &pd, nd->name))) return s;
    }
    int src = cpu_pb_in_md(b, nd->in[0], &md);
    int dst = src < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &md);
    if (dst < 0) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    cpu_arg args[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    s = cpu_pb_emit_dnnl(b, n, nd->op_type, pd, args, 2);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

/* y = LayerNorm over the trailing dims from axis on, with scale (and bias) of that size: constants (scale, shift)
 * or, where those are NULL, the values scale_v / shift_v (a folded body's per-call parameters: read at run time). */
static si_result layernorm_step(cpu_pb *b, int n, int x, int y, int64_t axis, float eps, const float *scale, const float *shift,
                                int scale_v, int shift_v, const int *extra, int n_extra) {
    const si_val *X = &b->g->values[x];
    int64_t dims[2] = {si_shape_count((int)axis, X->dims), si_shape_count(X->ndim - (int)axis, X->dims + axis)};
    dnnl_memory_desc_t md, cmd;
    cpu_md_plain(&md, 2, dims);
    cpu_md_plain(&cmd, 1, &dims[1]);
    dnnl_layer_normalization_desc_t ld;
    const bool has_shift = shift || shift_v >= 0;
    dnnl_status_t ds = dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL, eps,
                                                                  dnnl_use_scale | (has_shift ? dnnl_use_shift : 0));
    if (ds != dnnl_success) return cpu_unsupported();
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, NULL, &ld, &pd, b->g->nodes[n].name);
    if (s) return s;
    int src = cpu_pb_in_md(b, x, &md);
    int dst = src < 0 ? -1 : cpu_pb_new_out(b, y, &md);
    int sb = dst < 0 ? -1 : scale ? cpu_pb_const_buf(b, scale, &cmd) : cpu_pb_in_md(b, scale_v, &cmd);
    int hb = sb < 0 || !has_shift ? -1 : shift ? cpu_pb_const_buf(b, shift, &cmd) : cpu_pb_in_md(b, shift_v, &cmd);
    if (sb < 0 || (has_shift && hb < 0)) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    cpu_arg args[5] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_SCALE, sb}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SHIFT, hb}};
    s = cpu_pb_emit_dnnl(b, n, n_extra ? "LayerNorm(decomposed)" : "LayerNormalization", pd, args, has_shift ? 4 : 3);
    if (!s) {
        cpu_pb_consume(b, n);
        for (int i = 0; i < n_extra; i++) cpu_pb_consume(b, extra[i]);
    }
    return s;
}

si_result cpu_lower_layernorm(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 2 || !cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]];
    int r = X->ndim;
    int64_t axis = si_attr_int(nd, "axis", -1);
    if (r < 1 || axis < -r || axis >= r) return cpu_unsupported();
    if (axis < 0) axis += r;
    int64_t inner = si_shape_count(r - (int)axis, X->dims + axis);
    const si_tensor *sc = cpu_const_input(g, nd, 1), *bi = cpu_const_input(g, nd, 2);
    const bool has_bias = nd->n_in > 2 && nd->in[2] >= 0;
    /* scale and bias: constants, or float32 values of exactly `inner` elements (a folded body's parameters) */
    if (sc ? !const_f32_count(sc, inner) : !cpu_in_ok(g, nd, 1) || value_count(g, nd->in[1]) != inner) return cpu_unsupported();
    if (has_bias && (bi ? !const_f32_count(bi, inner) : !cpu_in_ok(g, nd, 2) || value_count(g, nd->in[2]) != inner)) return cpu_unsupported();
    if (sc) cpu_pb_keep_const(b, nd->in[1]);
    if (bi) cpu_pb_keep_const(b, nd->in[2]);
    return layernorm_step(b, n, nd->in[0], nd->out[0], axis, si_attr_float(nd, "epsilon", 1e-5f), sc ? sc->data : NULL, bi ? bi->data : NULL,
                          sc ? -1 : nd->in[1], has_bias && !bi ? nd->in[2] : -1, NULL, 0);
}

/* ReduceMean -> Sub -> Pow 2 (or Mul d d) -> ReduceMean -> Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add beta]
 * over the last axis: one LayerNormalization. n is the first ReduceMean. */
static int only_consumer(const cpu_pb *b, int v) {
    if (v < 0 || b->n_consumers[v] != 1 || cpu_value_is_output(b->g, v)) return -1;
    int c = cpu_pb_consumer(b, v, 0);
    return c >= 0 && !b->done[c] ? c : -1;
}

/* The only consumer of value v when it is an op `id` whose other input is float32, D values along its last
 * dimension (a norm's gamma or beta): a constant, or a value already computed (a folded body's parameter, read at
 * run time). The node, with that input's value in *cv; else -1. */
static int row_step(const cpu_pb *b, int v, si_op_id id, int64_t D, int *cv) {
    int n = only_consumer(b, v);
    if (n < 0 || !cpu_is_op(&b->g->nodes[n], id) || b->g->nodes[n].n_in != 2) return -1;
    const si_node *nd = &b->g->nodes[n];
    int c = nd->in[0] == v ? nd->in[1] : nd->in[0];
    if (c < 0 || c == v) return -1;
    const si_val *cv_ = &b->g->values[c];
    const si_tensor *t = cv_->const_val;
    const int nd_c = t ? t->ndim : cv_->ndim;
    const int64_t *dims = t ? t->dims : cv_->dims;
    if ((t ? t->dtype : cv_->dtype) != SI_F32 || nd_c < 1 || si_shape_count(nd_c, dims) != D || dims[nd_c - 1] != D) return -1;
    if (!t && (!cpu_value_static(cv_) || b->vbuf[c] < 0)) return -1;
    *cv = c;
    return n;
}

static bool last_axis_mean(const si_graph *g, const si_node *n, int r) {
    if (!cpu_is_op(n, SI_OP_REDUCE_MEAN) || !si_attr_int(n, "keepdims", 1) || n->n_out != 1) return false;
    int na = 0;
    const int64_t *ax = si_attr_ints(n, "axes", &na);
    const si_tensor *t = cpu_const_input(g, n, 1);
    int64_t a;
    if (ax && na == 1) a = ax[0];
    else if (!ax && t && t->dtype == SI_I64 && si_shape_count(t->ndim, t->dims) == 1 && t->data) a = *(const int64_t *)t->data;
    else return false;
    return a == -1 || a == r - 1;
}

/* Is node cn the square of value v: Pow(v, 2.0) or Mul(v, v)? */
static bool square_of(const si_graph *g, const si_node *cn, int v) {
    if (cpu_is_op(cn, SI_OP_MUL)) return cn->n_in == 2 && cn->in[0] == v && cn->in[1] == v;
    const si_tensor *et = cpu_const_input(g, cn, 1);
    return cpu_is_op(cn, SI_OP_POW) && cn->in[0] == v && et && et->dtype == SI_F32 && si_shape_count(et->ndim, et->dims) == 1 &&
           *(const float *)et->data == 2.0f;
}

/* The norms' common tail after the square sq: ReduceMean over the last axis (rank r) -> Add a float32 scalar
 * constant eps -> Sqrt, each the only consumer of the one before. The Sqrt node (the three appended to nodes, eps in
 * *eps), else -1. */
static int mean_eps_sqrt(const cpu_pb *b, int sq, int r, int *nodes, int *nn, float *eps) {
    const si_graph *g = b->g;
    int rm = only_consumer(b, g->nodes[sq].out[0]);
    if (rm < 0 || !last_axis_mean(g, &g->nodes[rm], r)) return -1;
    int ad = only_consumer(b, g->nodes[rm].out[0]);
    if (ad < 0 || !cpu_is_op(&g->nodes[ad], SI_OP_ADD)) return -1;
    const si_node *adn = &g->nodes[ad];
    int ev = adn->in[0] == g->nodes[rm].out[0] ? adn->in[1] : adn->in[0];
    const si_tensor *et = ev >= 0 ? g->values[ev].const_val : NULL;
    if (!et || et->dtype != SI_F32 || si_shape_count(et->ndim, et->dims) != 1) return -1;
    int sqrt_n = only_consumer(b, adn->out[0]);
    if (sqrt_n < 0 || !cpu_is_op(&g->nodes[sqrt_n], SI_OP_SQRT)) return -1;
    *eps = *(const float *)et->data;
    nodes[(*nn)++] = rm;
    nodes[(*nn)++] = ad;
    nodes[(*nn)++] = sqrt_n;
    return sqrt_n;
}

si_result cpu_lower_layernorm_pattern(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *rm1 = &g->nodes[n];
    if (!cpu_in_ok(g, rm1, 0) || b->no_fusion) return cpu_unsupported();
    int x = rm1->in[0];
    const si_val *X = &g->values[x];
    int r = X->ndim;
    if (r < 1 || !last_axis_mean(g, rm1, r) || b->n_consumers[x] != 2 || cpu_value_is_output(g, rm1->out[0])) return cpu_unsupported();
    int nodes[10], nn = 0;
    int sub = only_consumer(b, rm1->out[0]);
    if (sub < 0 || !cpu_is_op(&g->nodes[sub], SI_OP_SUB) || g->nodes[sub].in[0] != x || g->nodes[sub].in[1] != rm1->out[0]) return cpu_unsupported();
    nodes[nn++] = sub;
    int d = g->nodes[sub].out[0];
    if (b->n_consumers[d] != 2 || cpu_value_is_output(g, d)) return cpu_unsupported();
    int c0 = cpu_pb_consumer(b, d, 0), c1 = cpu_pb_consumer(b, d, 1);
    if (c0 < 0 || c1 < 0) return cpu_unsupported();
    int sq = -1, dv = -1;
    for (int i = 0; i < 2; i++) {
        int c = i ? c1 : c0;
        const si_node *cn = &g->nodes[c];
        if (square_of(g, cn, d))
            sq = c;
        else if (cpu_is_op(cn, SI_OP_DIV) && cn->in[0] == d)
            dv = c;
    }
    if (sq < 0 || dv < 0 || c0 == c1) return cpu_unsupported();
    nodes[nn++] = sq;
    float eps;
    int sqrt_n = mean_eps_sqrt(b, sq, r, nodes, &nn, &eps);
    if (sqrt_n < 0) return cpu_unsupported();
    if (only_consumer(b, g->nodes[sqrt_n].out[0]) != dv || g->nodes[dv].in[1] != g->nodes[sqrt_n].out[0]) return cpu_unsupported();
    nodes[nn++] = dv;
    int out = g->nodes[dv].out[0];
    int64_t D = X->dims[r - 1];
    const float *gamma = NULL, *beta = NULL;
    int gamma_v = -1, beta_v = -1;
    int m = row_step(b, out, SI_OP_MUL, D, &gamma_v);
    if (m >= 0) {
        const si_tensor *t = g->values[gamma_v].const_val;
        gamma = t ? t->data : NULL;
        nodes[nn++] = m;
        out = g->nodes[m].out[0];
        int a2 = row_step(b, out, SI_OP_ADD, D, &beta_v);
        if (a2 >= 0) {
            t = g->values[beta_v].const_val;
            beta = t ? t->data : NULL;
            nodes[nn++] = a2;
            out = g->nodes[a2].out[0];
        }
    }
    const si_val *O = &g->values[out];
    if (O->dtype != SI_F32 || O->ndim != r || memcmp(O->dims, X->dims, sizeof(int64_t) * (size_t)r)) return cpu_unsupported();
    if (gamma_v < 0) {
        float *ones = cpu_pb_own(b, sizeof(float) * (size_t)D);
        if (!ones) return SI_ERR_NO_MEM;
        for (int64_t i = 0; i < D; i++) ones[i] = 1.0f;
        gamma = ones;
    }
    if (gamma) cpu_pb_keep_const(b, gamma_v);
    if (beta) cpu_pb_keep_const(b, beta_v);
    return layernorm_step(b, n, x, out, r - 1, eps, gamma, beta, gamma ? -1 : gamma_v, beta || beta_v < 0 ? -1 : beta_v, nodes, nn);
}

/* Pow 2 (or Mul x x) -> ReduceMean over the last axis -> Add eps -> Sqrt -> Div x by it (or Reciprocal, then Mul
 * x by it) [-> Mul gamma]: the RMS norm of LLM exports written out (LLaMA's, ONNX's plain decoders). One own step
 * (cpu_llm.c) instead of six, in prefill and at every decode step. n is the Pow. */
si_result cpu_lower_rms_pattern(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *pw = &g->nodes[n];
    if (b->no_fusion || pw->n_in != 2 || !cpu_in_ok(g, pw, 0) || pw->n_out != 1 || pw->out[0] < 0) return cpu_unsupported();
    const int x = pw->in[0];
    if (!square_of(g, pw, x)) return cpu_unsupported();
    const si_val *X = &g->values[x];
    const int r = X->ndim;
    if (r < 1) return cpu_unsupported();
    int nodes[8], nn = 0;
    float eps;
    int sq = mean_eps_sqrt(b, n, r, nodes, &nn, &eps);
    if (sq < 0) return cpu_unsupported();
    const int sd = g->nodes[sq].out[0];
    int out = -1, dv = only_consumer(b, sd);
    if (dv < 0) return cpu_unsupported();
    const si_node *dn = &g->nodes[dv];
    if (cpu_is_op(dn, SI_OP_DIV) && dn->in[0] == x && dn->in[1] == sd) {
        out = dn->out[0];
    } else if (cpu_is_op(dn, SI_OP_RECIPROCAL)) {
        int mu = only_consumer(b, dn->out[0]);
        const si_node *mn = mu >= 0 ? &g->nodes[mu] : NULL;
        if (!mn || !cpu_is_op(mn, SI_OP_MUL) || !((mn->in[0] == x && mn->in[1] == dn->out[0]) || (mn->in[1] == x && mn->in[0] == dn->out[0])))
            return cpu_unsupported();
        nodes[nn++] = dv;
        dv = mu;
        out = mn->out[0];
    } else {
        return cpu_unsupported();
    }
    nodes[nn++] = dv;
    const int64_t D = X->dims[r - 1];
    int gamma_v = -1;
    int m = row_step(b, out, SI_OP_MUL, D, &gamma_v);
    if (m >= 0) {
        nodes[nn++] = m;
        out = g->nodes[m].out[0];
    }
    const si_val *O = &g->values[out];
    if (O->dtype != SI_F32 || O->ndim != r || memcmp(O->dims, X->dims, sizeof(int64_t) * (size_t)r)) return cpu_unsupported();
    return cpu_rmsnorm_emit(b, n, x, gamma_v, out, eps, nodes, nn);
}

