/*
 * cpu_lower.c — puts nodes on oneDNN primitives (float32, shapes known when planning):
 *
 *   Conv (1-3D, groups, depthwise, dilations, auto_pad) and ConvTranspose, with folded BatchNormalization /
 *   per-channel bias and scale, and post-ops (cpu_chain.c); strided 1x1 convolutions run on a subsampled
 *   copy shared by the convolutions that read the same value; MatMul and Gemm (constant weights packed
 *   once; batched products of two activations read Transpose outputs through strides and may write
 *   straight into the layout of a following Transpose); MaxPool, AveragePool, GlobalAveragePool,
 *   GlobalMaxPool; unary activations; Add/Sub/Mul/Div/Max/Min/Sum with broadcasting; Concat; LRN;
 *   Transpose; and Reshape/Flatten/Squeeze/Unsqueeze/Identity/Dropout as zero-copy views. BatchNormalization,
 *   Softmax / LogSoftmax, LayerNormalization and the written-out layer and RMS norms: cpu_lower_norm.c.
 *
 * Convolutions let oneDNN choose their activation layouts ("any"; on AVX-512 CPUs this oneDNN picks nhwc
 * for its brgemm kernels): activations then stay in that layout from one convolution, pooling, eltwise or
 * binary op to the next, and the plan builder reorders only where a node needs plain data. Anything not
 * taken here returns SI_ERR_UNSUPPORTED and runs on the reference kernel; so does any case oneDNN refuses.
 */
#include "device/cpu/cpu.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

#define MAX_ARGS 80

bool cpu_out_f32_static(const si_graph *g, const si_node *n) {
    if (n->n_out < 1 || n->out[0] < 0) return false;
    for (int k = 1; k < n->n_out; k++)
        if (n->out[k] >= 0) return false;
    const si_val *o = &g->values[n->out[0]];
    return o->dtype == SI_F32 && cpu_value_static(o) && si_shape_count(o->ndim, o->dims) > 0;
}

bool cpu_in_ok(const si_graph *g, const si_node *n, int k) {
    return cpu_input_f32_static(g, n, k) && si_shape_count(g->values[n->in[k]].ndim, g->values[n->in[k]].dims) > 0;
}

static int64_t value_count(const si_graph *g, int v) { return si_shape_count(g->values[v].ndim, g->values[v].dims); }

/* A convolution on oneDNN's GEMM-based kernel (x64:gemm:jit): 10-30 times slower than its jit ones. */
static bool pd_is_gemm_conv(const_dnnl_primitive_desc_t pd) {
    const char *s = NULL;
    dnnl_primitive_kind_t k;
    if (dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &k) != dnnl_success || k != dnnl_convolution) return false;
    return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s && strstr(s, "gemm:") &&
           !strstr(s, "brg");
}

/* The chain's post-ops push a convolution that has a jit kernel alone onto the GEMM-based one (a binary post-op
 * whose operand broadcasts per image and channel, [N, C, 1, 1] with N > 1: brgconv takes only per-channel or full
 * operands): a diffusion U-Net's Conv + time-embedding Add at batch 2 took 42 ms instead of 2. */
static bool post_ops_force_gemm(cpu_pb *b, const cpu_chain *c, const void *op_desc, const_dnnl_primitive_desc_t pd) {
    if (!c || !c->n_po || !pd_is_gemm_conv(pd)) return false;
    dnnl_primitive_attr_t attr = cpu_chain_attr(NULL, 1.0f);
    if (!attr) return false;
    dnnl_primitive_desc_t alone = NULL;
    dnnl_status_t st = cpu_pb_pd_create(b, NULL, op_desc, attr, &alone);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return false;
    const bool gemm = pd_is_gemm_conv(alone);
    dnnl_primitive_desc_destroy(alone);
    return !gemm;
}

/* Create a primitive descriptor for op_desc with the chain's post-ops; drops post-op groups while oneDNN
 * refuses them, only has its reference implementation for them, or only its GEMM-based convolution. */
si_result cpu_create_pd(cpu_pb *b, cpu_chain *c, const void *op_desc, dnnl_primitive_desc_t *pd, const char *nname) {
    for (;;) {
        dnnl_primitive_attr_t attr = cpu_chain_attr(c, c ? c->oscale : 1.0f);
        if (!attr) return SI_ERR_NO_MEM;
        dnnl_status_t st = cpu_pb_pd_create(b, c, op_desc, attr, pd);
        dnnl_primitive_attr_destroy(attr);
        if (st == dnnl_success && (!c || !c->n_po || !cpu_pd_is_ref(*pd)) && !post_ops_force_gemm(b, c, op_desc, *pd)) return SI_OK;
        if (st == dnnl_success) dnnl_primitive_desc_destroy(*pd);
        else if (st != dnnl_unimplemented && st != dnnl_invalid_arguments) return cpu_dnnl_err(st, "primitive descriptor", nname);
        *pd = NULL;
        if (!c || !cpu_chain_truncate(c)) return SI_ERR_UNSUPPORTED;
    }
}

/* A chain anchored at node n over the dims of md (no channel affine to fold), extended over the nodes that follow,
 * and the primitive descriptor of op_desc with its post-ops; on failure the chain is freed. */
si_result cpu_chain_pd(cpu_pb *b, int n, const dnnl_memory_desc_t *md, cpu_chain *c, const void *op_desc, dnnl_primitive_desc_t *pd) {
    int64_t dims[DNNL_MAX_NDIMS];
    for (int i = 0; i < md->ndims; i++) dims[i] = md->dims[i];
    cpu_chain_init(c, b, n, md->ndims, dims, -1, false);
    cpu_chain_extend(b, c);
    si_result s = cpu_create_pd(b, c, op_desc, pd, b->g->nodes[n].name);
    if (s) cpu_chain_free(c);
    return s;
}

/* Emit the step of an anchor with its chain; args holds the anchor's own arguments except DST. Frees the chain
 * (cpu_chain_free), and pd when it fails before the step owns it. */
si_result cpu_finish_chain(cpu_pb *b, cpu_chain *c, dnnl_primitive_desc_t pd, cpu_arg *args, int n_args, const char *anchor) {
    const dnnl_memory_desc_t *dmd = cpu_pd_md(pd, dnnl_query_dst_md);
    dnnl_memory_desc_t dst_md = *dmd;
    si_result s = cpu_chain_args(b, c, args, &n_args);
    int dst = s ? -1 : cpu_chain_dst(b, c, &dst_md);
    if (dst < 0) {
        dnnl_primitive_desc_destroy(pd);
        cpu_chain_free(c);
        return s ? s : SI_ERR_INTERNAL;
    }
    args[n_args].arg = DNNL_ARG_DST;
    args[n_args++].buf = dst;
    char name[96];
    cpu_chain_name(c, anchor, name, sizeof name);
    s = cpu_pb_emit_dnnl(b, c->anchor, name, pd, args, n_args);
    if (!s) cpu_chain_consume(b, c);
    cpu_chain_free(c);
    return s;
}

// --- zero-copy views --------------------------------------------------------------------------------------

static bool is_view_op(const si_graph *g, const si_node *n) {
    if (n->domain[0] || !n->op) return false;
    const si_op_id t = n->op->id;
    if (t == SI_OP_RESHAPE || t == SI_OP_FLATTEN || t == SI_OP_SQUEEZE || t == SI_OP_UNSQUEEZE ||
        t == SI_OP_IDENTITY)
        return n->n_out == 1;
    if (t == SI_OP_DROPOUT) { /* inference: output = input, the mask must not be asked for */
        if (n->n_out > 1 && n->out[1] >= 0) return false;
        if (n->n_in > 2 && n->in[2] >= 0) {
            const si_tensor *tm = g->values[n->in[2]].const_val;
            if (!tm || tm->dtype != SI_BOOL || !tm->data || *(const uint8_t *)tm->data) return false;
        }
        return true;
    }
    return false;
}

static si_result lower_view(cpu_pb *b, int n) {
    const si_node *nd = &b->g->nodes[n];
    int vi = nd->in[0], vo = nd->out[0];
    if (vi < 0 || vo < 0) return cpu_unsupported();
    const si_val *in = &b->g->values[vi], *out = &b->g->values[vo];
    if (in->const_val || !cpu_value_static(in) || !cpu_value_static(out) || in->dtype != out->dtype ||
        cpu_value_nbytes(in) != cpu_value_nbytes(out))
        return cpu_unsupported();
    if (b->p->vbuf_plain[vi] >= 0 && b->p->bufs[b->p->vbuf_plain[vi]].dyn) return cpu_unsupported();
    int src = cpu_pb_plain(b, vi);
    if (src < 0) return SI_ERR_INTERNAL;
    if (cpu_pb_view(b, vo, src) < 0) return SI_ERR_NO_MEM;
    cpu_pb_consume(b, n);
    return SI_OK;
}

// --- convolution ---------------------------------------------------------------------------------------------

/* Spatial padding per ONNX auto_pad / pads for input dims in[], kernel extents kext[]. */
static bool spatial_pads(const si_node *n, int sp, const int64_t *in, const int64_t *kext, const int64_t *stride,
                         int64_t *pl, int64_t *pr) {
    const char *ap = si_attr_str(n, "auto_pad", "NOTSET");
    int np;
    const int64_t *pads = si_attr_ints(n, "pads", &np);
    for (int i = 0; i < sp; i++) {
        pl[i] = pr[i] = 0;
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            int64_t out = (in[i] + stride[i] - 1) / stride[i];
            int64_t total = (out - 1) * stride[i] + kext[i] - in[i];
            if (total < 0) total = 0;
            pl[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            pr[i] = total - pl[i];
        } else if (!strcmp(ap, "NOTSET")) {
            if (pads && np != 2 * sp) return false;
            if (pads) {
                pl[i] = pads[i];
                pr[i] = pads[i + sp];
            }
        } else if (strcmp(ap, "VALID")) {
            return false;
        }
        if (pl[i] < 0 || pr[i] < 0) return false;
    }
    return true;
}

/* A view of every stride-th pixel of x's current buffer (dims: the subsampled shape), when x has a buffer
 * without inner blocks and oneDNN accepts the view (it refuses views whose rows overlap in its extent
 * check, e.g. odd heights). */
static bool sub_view(cpu_pb *b, int x, const int64_t *stride, const int64_t *dims, int *src_out, dnnl_memory_desc_t *vmd) {
    int src = b->vbuf[x];
    if (src < 0 || b->p->bufs[src].dyn) return false;
    const dnnl_memory_desc_t *md = &b->p->bufs[src].md;
    if (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks || md->offset0) return false;
    dnnl_dims_t d, st;
    for (int i = 0; i < md->ndims; i++) {
        d[i] = dims[i];
        st[i] = md->format_desc.blocking.strides[i] * (i >= 2 ? stride[i - 2] : 1);
    }
    if (dnnl_memory_desc_init_by_strides(vmd, md->ndims, d, dnnl_f32, st) != dnnl_success) return false;
    *src_out = src;
    return true;
}

/* Every stride-th pixel of value x, in layout want: a reorder from the strided view (shared by the
 * convolutions that subsample the same value the same way). */
static int subsampled(cpu_pb *b, int node, int x, const int64_t *stride, int sp, const dnnl_memory_desc_t *want) {
    for (int i = 0; i < b->n_sub; i++)
        if (b->sub[i].value == x && !memcmp(b->sub[i].stride, stride, sizeof(int64_t) * (size_t)sp) &&
            dnnl_memory_desc_equal(&b->p->bufs[b->sub[i].buf].md, want))
            return b->sub[i].buf;
    int src;
    dnnl_memory_desc_t vmd;
    int64_t dims[DNNL_MAX_NDIMS];
    for (int i = 0; i < want->ndims; i++) dims[i] = want->dims[i];
    if (!sub_view(b, x, stride, dims, &src, &vmd)) {
        si_err(SI_ERR_INTERNAL, "CPU: subsampled view of '%s' refused", b->g->values[x].name);
        return -1;
    }
    int view = cpu_pb_alias(b, src, &vmd);
    int dst = view < 0 ? -1 : cpu_pb_internal_md(b, want);
    if (dst < 0 || cpu_pb_emit_reorder(b, node, view, dst)) return -1;
    if (b->n_sub < (int)SI_ARRAY_LEN(b->sub)) {
        b->sub[b->n_sub].value = x;
        b->sub[b->n_sub].buf = dst;
        memcpy(b->sub[b->n_sub].stride, stride, sizeof(int64_t) * (size_t)sp);
        b->n_sub++;
    }
    return dst;
}

// --- weights made once per compiled model (the store, cpu_store.c) -------------------------------------------

/* Rows of w times a per-row scale (convolution weights [OC, ...] with a folded per-channel affine). */
typedef struct scaled_rows {
    const float *w, *scale;
    int64_t rows, cols;
} scaled_rows;

static void fill_scaled_rows(const void *ctx, void *dst) {
    const scaled_rows *r = ctx;
    float *d = dst;
    for (int64_t o = 0; o < r->rows; o++)
        for (int64_t k = 0; k < r->cols; k++) d[o * r->cols + k] = r->w[o * r->cols + k] * (r->scale ? r->scale[o] : 1.0f);
}

/* ConvTranspose weights [C, OCg, K] with the scale of output channel (c / Cg) * OCg + o. */
typedef struct deconv_w {
    const float *w, *scale;
    int64_t C, OCg, K, Cg;
} deconv_w;

static void fill_deconv_w(const void *ctx, void *dst) {
    const deconv_w *p = ctx;
    float *d = dst;
    for (int64_t ic = 0; ic < p->C; ic++)
        for (int64_t o = 0; o < p->OCg; o++) {
            float sc = p->scale ? p->scale[(ic / p->Cg) * p->OCg + o] : 1.0f;
            for (int64_t k = 0; k < p->K; k++) d[(ic * p->OCg + o) * p->K + k] = p->w[(ic * p->OCg + o) * p->K + k] * sc;
        }
}

/* MatMul / Gemm weights [K, N] from B ([K, N], or [N, K] transposed) times alpha and a per-column scale. */
typedef struct gemm_w {
    const float *w, *scale;
    float alpha;
    int64_t K, N;
    bool tb;
} gemm_w;

static void fill_gemm_w(const void *ctx, void *dst) {
    const gemm_w *p = ctx;
    float *d = dst;
    for (int64_t k = 0; k < p->K; k++)
        for (int64_t j = 0; j < p->N; j++)
            d[k * p->N + j] = (p->tb ? p->w[j * p->K + k] : p->w[k * p->N + j]) * p->alpha * (p->scale ? p->scale[j] : 1.0f);
}

/* The bias B (or zeros) with the chain's folded per-channel affine, as a CONST buffer of the store's. */
static int folded_bias(cpu_pb *b, int n, const si_tensor *B, const cpu_chain *c, int64_t OC, const dnnl_memory_desc_t *bmd) {
    float *bias = si_malloc(sizeof(float) * (size_t)OC + 1);
    if (!bias) {
        si_err(SI_ERR_NO_MEM, "CPU: out of memory packing weights");
        return -1;
    }
    const float *b0 = B ? B->data : NULL;
    for (int64_t o = 0; o < OC; o++) bias[o] = (b0 ? b0[o] : 0.0f) * (c->scale ? c->scale[o] : 1.0f) + (c->shift ? c->shift[o] : 0.0f);
    const void *sb = cpu_pb_shared_data(b, n, "bias", bias, sizeof(float) * (size_t)OC);
    si_free(bias);
    return sb ? cpu_pb_const_buf(b, sb, bmd) : -1;
}

/* The primitive of a convolution or, with deconv, a transposed convolution: source sd and destination dd (rank r),
 * weights wd (rank wr), all in the layouts oneDNN picks ("any": nhwc for its brgemm convolutions here; forcing
 * nChw16c gets the reference kernel on this oneDNN and CPU), bias bmd, strides st, dilations dl (oneDNN's: 0 for
 * none) and pads; on failure the chain is freed. */
static si_result conv_pd(cpu_pb *b, cpu_chain *c, bool deconv, int r, const int64_t *sd, int wr, const int64_t *wd, const int64_t *dd,
                         const dnnl_memory_desc_t *bmd, const int64_t *st, const int64_t *dl, const int64_t *pad_l, const int64_t *pad_r,
                         const char *nname, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_memory_desc_init_by_tag(&smd, r, sd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wmd, wr, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dmd, r, dd, dnnl_f32, dnnl_format_tag_any);
    union {
        dnnl_convolution_desc_t conv;
        dnnl_deconvolution_desc_t deconv;
    } od;
    dnnl_status_t ds = deconv ? dnnl_dilated_deconvolution_forward_desc_init(&od.deconv, dnnl_forward_inference, dnnl_deconvolution_direct, &smd,
                                                                             &wmd, bmd, &dmd, st, dl, pad_l, pad_r)
                              : dnnl_dilated_convolution_forward_desc_init(&od.conv, dnnl_forward_inference, dnnl_convolution_direct, &smd, &wmd,
                                                                           bmd, &dmd, st, dl, pad_l, pad_r);
    if (ds != dnnl_success) {
        cpu_chain_free(c);
        return ds == dnnl_unimplemented || ds == dnnl_invalid_arguments ? cpu_unsupported()
                                                                         : cpu_dnnl_err(ds, deconv ? "deconvolution" : "convolution", nname);
    }
    si_result s = cpu_create_pd(b, c, &od, pd, nname);
    if (s) cpu_chain_free(c);
    return s;
}

/* The rest of a (de)convolution once its primitive is made, on input buffer in_buf (< 0: failed): the weights
 * packed once per compiled model from wplain (fill folds the chain's per-channel scale in when there is one),
 * the bias folded, and the chain finished as anchor. Frees the chain, and pd on failure. */
static si_result conv_finish(cpu_pb *b, int n, cpu_chain *c, dnnl_primitive_desc_t pd, int in_buf, const cpu_skey *wk, cpu_wfill fill,
                             const void *fill_ctx, const dnnl_memory_desc_t *wplain, const si_tensor *B, int64_t OC,
                             const dnnl_memory_desc_t *bmd, const char *anchor) {
    int w_buf = -1, b_buf = -1;
    if (in_buf >= 0) w_buf = cpu_pb_pack(b, wk, wk->src->data, c->scale ? fill : NULL, fill_ctx, wplain, cpu_pd_md(pd, dnnl_query_weights_md));
    if (w_buf >= 0) b_buf = folded_bias(b, n, B, c, OC, bmd);
    if (b_buf < 0) {
        dnnl_primitive_desc_destroy(pd);
        cpu_chain_free(c);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_WEIGHTS, w_buf}, {DNNL_ARG_BIAS, b_buf}};
    return cpu_finish_chain(b, c, pd, args, 3, anchor);
}

static si_result lower_conv(cpu_pb *b, int n) {
    if (!b->no_fusion) { /* the QDQ form: DequantizeLinear -> Conv -> QuantizeLinear as an integer convolution */
        si_result q = cpu_lower_qdq_conv(b, n);
        if (q != SI_ERR_UNSUPPORTED) return q;
        si_err_clear();
    }
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 2 || !cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    const si_tensor *W = cpu_const_input(g, nd, 1), *B = cpu_const_input(g, nd, 2);
    int r = X->ndim, sp = r - 2;
    if (r < 3 || r > 5 || !W || W->dtype != SI_F32 || W->ndim != r || !W->data || Y->ndim != r) return cpu_unsupported();
    if (nd->n_in > 2 && nd->in[2] >= 0 && (!B || B->dtype != SI_F32 || si_shape_count(B->ndim, B->dims) != W->dims[0])) return cpu_unsupported();
    int64_t G = si_attr_int(nd, "group", 1), OC = W->dims[0], ICg = W->dims[1];
    if (G < 1 || X->dims[1] != ICg * G || OC % G) return cpu_unsupported();
    int64_t stride[3], dil[3], kext[3], pl[3], pr[3];
    if (!cpu_attr_ints(nd, "strides", sp, 1, 1, stride) || !cpu_attr_ints(nd, "dilations", sp, 1, 1, dil)) return cpu_unsupported();
    int nk;
    const int64_t *ks = si_attr_ints(nd, "kernel_shape", &nk);
    for (int i = 0; i < sp; i++) {
        if (ks && (nk != sp || ks[i] != W->dims[2 + i])) return cpu_unsupported();
        kext[i] = (W->dims[2 + i] - 1) * dil[i] + 1;
    }
    if (!spatial_pads(nd, sp, X->dims + 2, kext, stride, pl, pr)) return cpu_unsupported();
    for (int i = 0; i < sp; i++) {
        int64_t num = X->dims[2 + i] + pl[i] + pr[i] - kext[i];
        if (num < 0 || num / stride[i] + 1 != Y->dims[2 + i]) return cpu_unsupported();
    }
    if (Y->dims[1] != OC || Y->dims[0] != X->dims[0]) return cpu_unsupported();
    if (r == 3 && G == OC && ICg == 1 && G > 1) { /* depthwise over time: oneDNN has only its GEMM-based kernel for it */
        si_result ds = cpu_lower_dwconv1d(b, n, stride[0], dil[0], pl[0]);
        if (ds != SI_ERR_UNSUPPORTED) return ds;
    }
    /* a strided 1x1 convolution (ResNet's downsampling) reads every s-th pixel: copy those once (shared by
     * the convolutions that subsample the same value) and run a unit-stride 1x1 convolution, which oneDNN
     * runs much closer to peak */
    bool sub = G == 1 && !b->no_fusion;
    bool strided = false;
    for (int i = 0; i < sp; i++) {
        sub &= W->dims[2 + i] == 1 && pl[i] == 0 && pr[i] == 0;
        strided |= stride[i] > 1;
    }
    sub &= strided;
    if (sub) { /* the view must exist now: x keeps its current layout when the conv wants the same */
        int64_t sdims[DNNL_MAX_NDIMS];
        dnnl_memory_desc_t vmd;
        int src;
        for (int i = 0; i < r; i++) sdims[i] = i < 2 ? X->dims[i] : Y->dims[i];
        sub = sub_view(b, nd->in[0], stride, sdims, &src, &vmd);
    }

    cpu_chain c;
    cpu_chain_init(&c, b, n, r, Y->dims, 1, true);
    cpu_chain_extend(b, &c);

    dnnl_dims_t sd, wd, dd, st, dl, pad_l, pad_r;
    for (int i = 0; i < r; i++) sd[i] = X->dims[i], dd[i] = Y->dims[i];
    if (sub)
        for (int i = 0; i < sp; i++) sd[2 + i] = Y->dims[2 + i], stride[i] = 1;
    int wr = cpu_conv_weight_dims(r, G, W->dims, wd);
    for (int i = 0; i < sp; i++) st[i] = stride[i], dl[i] = dil[i] - 1, pad_l[i] = pl[i], pad_r[i] = pr[i];
    dnnl_memory_desc_t bmd, wplain;
    int64_t bdim = OC;
    cpu_md_plain(&bmd, 1, &bdim);
    {
        int64_t wdd[DNNL_MAX_NDIMS];
        for (int i = 0; i < wr; i++) wdd[i] = wd[i];
        cpu_md_plain(&wplain, wr, wdd);
    }
    dnnl_primitive_desc_t pd;
    si_result s = conv_pd(b, &c, false, r, sd, wr, wd, dd, &bmd, st, dl, pad_l, pad_r, nd->name, &pd);
    if (s) return s;
    /* weights and bias with the folded per-channel affine, made once per compiled model (the store) */
    scaled_rows sr = {W->data, c.scale, OC, si_shape_count(W->ndim, W->dims) / OC};
    cpu_skey wk = {.node = n, .tag = "conv.w", .fp = cpu_chain_fp(&c), .src = W};
    int64_t full_stride[3];
    if (sub) cpu_attr_ints(nd, "strides", sp, 1, 1, full_stride);
    const dnnl_memory_desc_t *src_md = cpu_pd_md(pd, dnnl_query_src_md);
    int in_buf = sub ? subsampled(b, n, nd->in[0], full_stride, sp, src_md) : cpu_pb_in_md(b, nd->in[0], src_md);
    return conv_finish(b, n, &c, pd, in_buf, &wk, fill_scaled_rows, &sr, &wplain, B, OC, &bmd,
                       G > 1 && G == OC && ICg == 1 ? "ConvDw" : sub ? "Conv1x1s" : "Conv");
}

/* ConvTranspose (explicit pads, no output_shape) as a oneDNN deconvolution. ONNX weights are
 * [C, M/group, k...]; oneDNN's are [group, M/group, C/group, k...]: a strided view, packed once. */
static si_result lower_convtranspose_dnnl(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 2 || !cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    const si_tensor *W = cpu_const_input(g, nd, 1), *B = cpu_const_input(g, nd, 2);
    int r = X->ndim, sp = r - 2;
    if (r < 3 || r > 5 || !W || W->dtype != SI_F32 || W->ndim != r || !W->data || Y->ndim != r) return cpu_unsupported();
    const char *ap = si_attr_str(nd, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") || si_node_attr(nd, "output_shape")) return cpu_unsupported();
    int64_t G = si_attr_int(nd, "group", 1), C = X->dims[1], OCg = W->dims[1], OC = OCg * G;
    if (G < 1 || W->dims[0] != C || C % G || Y->dims[1] != OC) return cpu_unsupported();
    if (nd->n_in > 2 && nd->in[2] >= 0 && (!B || B->dtype != SI_F32 || si_shape_count(B->ndim, B->dims) != OC)) return cpu_unsupported();
    int64_t stride[3], dil[3], kext[3], pl[3], pr[3], opad[3];
    if (!cpu_attr_ints(nd, "strides", sp, 1, 1, stride) || !cpu_attr_ints(nd, "dilations", sp, 1, 1, dil)) return cpu_unsupported();
    int np;
    const int64_t *pads = si_attr_ints(nd, "pads", &np), *op = si_attr_ints(nd, "output_padding", &np);
    if (op && np != sp) return cpu_unsupported();
    if ((pads = si_attr_ints(nd, "pads", &np)) && np != 2 * sp) return cpu_unsupported();
    for (int i = 0; i < sp; i++) {
        kext[i] = (W->dims[2 + i] - 1) * dil[i] + 1;
        pl[i] = pads ? pads[i] : 0;
        opad[i] = op ? op[i] : 0;
        pr[i] = (pads ? pads[i + sp] : 0) - opad[i]; /* output_padding: extra rows at the end */
        if (pl[i] < 0 || (pads && pads[i + sp] < 0) || pr[i] < 0) return cpu_unsupported();
        if ((X->dims[2 + i] - 1) * stride[i] + kext[i] - pl[i] - pr[i] != Y->dims[2 + i]) return cpu_unsupported();
    }
    cpu_chain c;
    cpu_chain_init(&c, b, n, r, Y->dims, 1, true);
    cpu_chain_extend(b, &c);
    dnnl_dims_t sd, wd, dd, st, dl, pad_l, pad_r;
    int64_t wdims[DNNL_MAX_NDIMS], wstr[DNNL_MAX_NDIMS];
    int64_t K = si_shape_count(sp, W->dims + 2), Cg = C / G;
    for (int i = 0; i < r; i++) sd[i] = X->dims[i], dd[i] = Y->dims[i];
    wdims[0] = G, wdims[1] = OCg, wdims[2] = Cg;
    wstr[0] = Cg * OCg * K, wstr[1] = K, wstr[2] = OCg * K;
    int64_t ks = 1;
    for (int i = sp - 1; i >= 0; i--) wdims[3 + i] = W->dims[2 + i], wstr[3 + i] = ks, ks *= W->dims[2 + i];
    for (int i = 0; i < r + 1; i++) wd[i] = wdims[i];
    for (int i = 0; i < sp; i++) st[i] = stride[i], dl[i] = dil[i] - 1, pad_l[i] = pl[i], pad_r[i] = pr[i];
    dnnl_memory_desc_t bmd, wplain;
    cpu_md_plain(&bmd, 1, &OC);
    cpu_md_strided(&wplain, r + 1, wdims, wstr);
    dnnl_primitive_desc_t pd;
    si_result s = conv_pd(b, &c, true, r, sd, r + 1, wd, dd, &bmd, st, dl, pad_l, pad_r, nd->name, &pd);
    if (s) return s;
    deconv_w dw = {W->data, c.scale, C, OCg, K, Cg};
    cpu_skey wk = {.node = n, .tag = "deconv.w", .fp = cpu_chain_fp(&c), .src = W};
    int in_buf = cpu_pb_in_md(b, nd->in[0], cpu_pd_md(pd, dnnl_query_src_md));
    return conv_finish(b, n, &c, pd, in_buf, &wk, fill_deconv_w, &dw, &wplain, B, OC, &bmd, "ConvTranspose");
}

static si_result lower_eltwise(cpu_pb *b, int n);

/* The own Tanh (cpu_unary.c) where it is faster, else oneDNN's eltwise with its chain. */
static si_result lower_tanh(cpu_pb *b, int n) {
    si_result s = cpu_lower_own_unary(b, n);
    return s == SI_ERR_UNSUPPORTED ? lower_eltwise(b, n) : s;
}

/* The own GEMM + col2im kernel (cpu_deconv.c), else oneDNN's deconvolution. */
static si_result lower_convtranspose(cpu_pb *b, int n) {
    si_result s = cpu_lower_convtranspose(b, n);
    return s == SI_ERR_UNSUPPORTED ? lower_convtranspose_dnnl(b, n) : s;
}

// --- MatMul and Gemm ------------------------------------------------------------------------------------------

/* Shared tail: src md (plain or strided), constant weights (wk: their store key; written [K,N] by wfill(wctx), or
 * wctx itself when wfill is NULL, via their plain md wplain, packed to the layout matmul wants) or an activation
 * (w_value with md wact), bias [1,N] or NULL. */
static si_result matmul_common(cpu_pb *b, int n, cpu_chain *c, int src_value, const dnnl_memory_desc_t *smd,
                               const cpu_skey *wk, cpu_wfill wfill, const void *wctx, const dnnl_memory_desc_t *wplain, int w_value,
                               const dnnl_memory_desc_t *wact, const float *bias, const dnnl_memory_desc_t *bmd,
                               const dnnl_memory_desc_t *dmd) {
    const bool w = wk != NULL;
    const bool param = w && w_value >= 0; /* weights from a parameter input: packed per bound tensor at run time */
    const si_node *nd = &b->g->nodes[n];
    dnnl_memory_desc_t wany, wip, bip;
    if (w) dnnl_memory_desc_init_by_tag(&wany, wplain->ndims, wplain->dims, dnnl_f32, dnnl_format_tag_any);
    /* weights a matmul at another shape packed already (compile's probe plans): their layout, not a second copy */
    bool kept = w && !param && cpu_store_layout(b->store, wk, wplain, &wany);
    if (param && wplain->ndims == 2) { /* one layout for every plan (prefill, decode): the one a 64-row GEMM wants */
        dnnl_memory_desc_t psrc, pdst;
        dnnl_dims_t sd = {64, wplain->dims[0]}, dd = {64, wplain->dims[1]};
        dnnl_memory_desc_init_by_tag(&psrc, 2, sd, dnnl_f32, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&pdst, 2, dd, dnnl_f32, dnnl_ab);
        dnnl_matmul_desc_t pmm;
        dnnl_primitive_desc_t ppd = NULL;
        if (dnnl_matmul_desc_init(&pmm, &psrc, &wany, NULL, &pdst) == dnnl_success &&
            dnnl_primitive_desc_create(&ppd, &pmm, NULL, b->eng, NULL) == dnnl_success) {
            wany = *cpu_pd_md(ppd, dnnl_query_weights_md);
            kept = true;
        }
        if (ppd) dnnl_primitive_desc_destroy(ppd);
    }
    /* else a few rows times constant weights (a classifier head): inner product (as fast as matmul here) */
    bool ip = !kept && w && cpu_md_is_plain(smd) && smd->ndims == 2 && smd->dims[0] <= 4;
    dnnl_status_t ds;
    union {
        dnnl_matmul_desc_t mm;
        dnnl_inner_product_desc_t ipd;
    } od;
    char iptag[24];
    cpu_skey ipk;
    if (ip) { /* its own tag: an [N, K] layout is never taken for a matmul's [K, N] */
        snprintf(iptag, sizeof iptag, "%.12s.ip", wk->tag);
        ipk = *wk;
        ipk.tag = iptag;
        wk = &ipk;
        int64_t K = wplain->dims[0], N = wplain->dims[1], wd[2] = {N, K}, ws[2] = {1, N};
        dnnl_dims_t wdd = {N, K};
        cpu_md_strided(&wip, 2, wd, ws);
        dnnl_memory_desc_init_by_tag(&wany, 2, wdd, dnnl_f32, dnnl_format_tag_any);
        cpu_md_plain(&bip, 1, &N);
        ds = dnnl_inner_product_forward_desc_init(&od.ipd, dnnl_forward_inference, smd, &wany, bias ? &bip : NULL, dmd);
        wplain = &wip;
        if (bias) bmd = &bip;
    } else {
        ds = dnnl_matmul_desc_init(&od.mm, smd, w ? &wany : wact, bias ? bmd : NULL, dmd);
    }
    if (ds != dnnl_success)
        return ds == dnnl_unimplemented || ds == dnnl_invalid_arguments ? cpu_unsupported() : cpu_dnnl_err(ds, "matmul", nd->name);
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, c, &od, &pd, nd->name);
    if (kept && (s == SI_ERR_UNSUPPORTED || (!s && cpu_pd_is_ref(pd)))) { /* no fast kernel for the kept layout: one of its own */
        if (!s) dnnl_primitive_desc_destroy(pd);
        s = SI_ERR_UNSUPPORTED;
        dnnl_memory_desc_init_by_tag(&wany, wplain->ndims, wplain->dims, dnnl_f32, dnnl_format_tag_any);
        if (dnnl_matmul_desc_init(&od.mm, smd, &wany, bias ? bmd : NULL, dmd) == dnnl_success) s = cpu_create_pd(b, c, &od, &pd, nd->name);
    }
    if (s) return s;
    /* a strided src (Gemm's transA) is a view of the plain buffer, not a reorder */
    int sb = cpu_md_is_plain(smd) ? cpu_pb_in_md(b, src_value, smd) : -1;
    if (!cpu_md_is_plain(smd)) {
        int pb = cpu_pb_plain(b, src_value);
        sb = pb < 0 ? -1 : cpu_pb_alias(b, pb, smd);
    }
    int wb = sb < 0 ? -1
             : param ? cpu_pb_param_buf(b, w_value, wk, wplain, cpu_pd_md(pd, dnnl_query_weights_md))
             : w     ? cpu_pb_pack(b, wk, wfill ? NULL : wctx, wfill, wctx, wplain, cpu_pd_md(pd, dnnl_query_weights_md))
                     : cpu_pb_in_md(b, w_value, wact);
    int bb = -1;
    if (wb >= 0 && bias) {
        const void *bc = cpu_pb_shared_data(b, n, "bias", bias, dnnl_memory_desc_get_size(bmd));
        if (bc) bb = cpu_pb_const_buf(b, bc, bmd);
    }
    if (wb < 0 || (bias && bb < 0)) {
        dnnl_primitive_desc_destroy(pd);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, sb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_BIAS, bb}};
    return cpu_finish_chain(b, c, pd, args, bias ? 3 : 2, nd->op_type);
}

/* The strided view of v (a Transpose folded into its consumers), or -1. */
static int strided_buf(cpu_pb *b, int v, const dnnl_memory_desc_t *plain) {
    for (int i = b->vbuf[v]; i >= 0; i = b->p->bufs[i].next) {
        const dnnl_memory_desc_t *md = &b->p->bufs[i].md;
        if (b->p->bufs[i].plain || b->p->bufs[i].dyn || md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks) continue;
        if (md->ndims == plain->ndims && !memcmp(md->dims, plain->dims, sizeof(dnnl_dim_t) * (size_t)md->ndims)) return i;
    }
    return -1;
}

/* MatMul of two activations of the same rank reading Transpose outputs through their strides, and writing
 * straight into the layout of a Transpose that follows (attention: Q K^T and P V, then back to [B,S,H,D]).
 * SI_ERR_UNSUPPORTED when there is nothing to fold or oneDNN has no fast kernel for the strides. */
static si_result matmul_strided(cpu_pb *b, int n, const dnnl_memory_desc_t *smd0, const dnnl_memory_desc_t *wmd0,
                                const dnnl_memory_desc_t *dmd0) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    int sa = strided_buf(b, nd->in[0], smd0), sw = strided_buf(b, nd->in[1], wmd0);
    int y = nd->out[0], tn = -1;
    int64_t perm[DNNL_MAX_NDIMS];
    int r = dmd0->ndims;
    if (b->n_consumers[y] == 1 && !cpu_value_is_output(g, y)) {
        int cn = cpu_pb_consumer(b, y, 0);
        const si_node *t = &g->nodes[cn];
        int np;
        const int64_t *pp = cpu_is_op(t, SI_OP_TRANSPOSE) ? si_attr_ints(t, "perm", &np) : NULL;
        if (pp && np == r && t->out[0] >= 0 && cpu_value_static(&g->values[t->out[0]])) {
            tn = cn;
            for (int i = 0; i < r; i++) perm[i] = pp[i];
        }
    }
    dnnl_memory_desc_t smd = sa >= 0 ? b->p->bufs[sa].md : *smd0, wmd = sw >= 0 ? b->p->bufs[sw].md : *wmd0, dmd = *dmd0;
    int64_t ys[DNNL_MAX_NDIMS], dims[DNNL_MAX_NDIMS];
    if (tn >= 0) { /* dst element i of Y lands where the Transpose puts it: stride of T's dim j with perm[j] == i */
        const si_val *T = &g->values[g->nodes[tn].out[0]];
        int64_t ts[DNNL_MAX_NDIMS], s = 1;
        for (int j = r - 1; j >= 0; j--) ts[j] = s, s *= T->dims[j];
        for (int j = 0; j < r; j++) {
            if (perm[j] < 0 || perm[j] >= r) return cpu_unsupported();
            ys[perm[j]] = ts[j];
        }
        for (int i = 0; i < r; i++) dims[i] = dmd0->dims[i];
        cpu_md_strided(&dmd, r, dims, ys);
    }
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd) != dnnl_success) return cpu_unsupported();
    /* without a Transpose after it, the product keeps its post-op chain (scale, mask, ...) */
    cpu_chain c;
    int64_t cd[DNNL_MAX_NDIMS];
    for (int i = 0; i < r; i++) cd[i] = dmd0->dims[i];
    cpu_chain_init(&c, b, n, r, cd, -1, false);
    c.allow_oscale = true;
    if (tn < 0) cpu_chain_extend(b, &c);
    si_result s = cpu_bmm_lower(b, n, &c, &smd, sa, &wmd, sw, &dmd, tn); /* few rows: no primitive per shape */
    if (s != SI_ERR_UNSUPPORTED || (sa < 0 && sw < 0 && tn < 0)) {
        cpu_chain_free(&c);
        return s;
    }
    dnnl_primitive_desc_t pd;
    s = cpu_create_pd(b, &c, &md, &pd, nd->name);
    if (!s && cpu_pd_is_ref(pd)) {
        dnnl_primitive_desc_destroy(pd);
        s = SI_ERR_UNSUPPORTED;
    }
    if (s) {
        cpu_chain_free(&c);
        return s;
    }
    int ab = sa >= 0 ? sa : cpu_pb_in_md(b, nd->in[0], &smd);
    int wb = ab < 0 ? -1 : sw >= 0 ? sw : cpu_pb_in_md(b, nd->in[1], &wmd);
    if (wb >= 0 && tn < 0) {
        cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_WEIGHTS, wb}};
        return cpu_finish_chain(b, &c, pd, args, 2, "MatMul(strided)");
    }
    cpu_chain_free(&c);
    int db = -1;
    if (wb >= 0) {
        if (tn >= 0) {
            const si_val *T = &g->values[g->nodes[tn].out[0]];
            dnnl_memory_desc_t tmd;
            cpu_md_plain(&tmd, T->ndim, T->dims);
            int tb = cpu_pb_new_out(b, g->nodes[tn].out[0], &tmd);
            db = tb < 0 ? -1 : cpu_pb_alias(b, tb, &dmd);
        } else {
            db = cpu_pb_new_out(b, y, &dmd);
        }
    }
    if (db < 0) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    cpu_arg args[3] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_DST, db}};
    s = cpu_pb_emit_dnnl(b, n, "MatMul+Transpose", pd, args, 3);
    if (!s) {
        cpu_pb_consume(b, n);
        if (tn >= 0) cpu_pb_consume(b, tn);
    }
    return s;
}

static si_result lower_matmul(cpu_pb *b, int n) {
    if (!b->no_fusion) { /* the QDQ form: DequantizeLinear -> MatMul / Gemm [-> QuantizeLinear] as an integer product */
        si_result q = cpu_lower_qdq_matmul(b, n);
        if (q != SI_ERR_UNSUPPORTED) return q;
        si_err_clear();
    }
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in != 2 || !cpu_in_ok(g, nd, 0) || !cpu_in_ok(g, nd, 1) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *A = &g->values[nd->in[0]], *Bv = &g->values[nd->in[1]], *Y = &g->values[nd->out[0]];
    const si_tensor *Bc = Bv->const_val;
    si_result s;
    if (Bc && Bc->ndim == 2 && A->ndim >= 2 && Bc->data) {
        /* activations [..., K] x constant [K, N]: one GEMM over all leading rows, weights packed once */
        int64_t K = Bc->dims[0], N = Bc->dims[1], M = si_shape_count(A->ndim - 1, A->dims);
        if (A->dims[A->ndim - 1] != K || N < 1) return cpu_unsupported();
        int64_t sd[2] = {M, K}, wd[2] = {K, N}, dd[2] = {M, N}, bd[2] = {1, N};
        dnnl_memory_desc_t smd, wplain, dmd, bmd;
        cpu_md_plain(&smd, 2, sd);
        cpu_md_plain(&wplain, 2, wd);
        cpu_md_plain(&dmd, 2, dd);
        cpu_md_plain(&bmd, 2, bd);
        const bool conv = cpu_mm1x1_wanted(b, M) && cpu_mm1x1_probe(b, M, K, N);
        cpu_chain c;
        cpu_chain_init(&c, b, n, 2, dd, Y->ndim - 1, true);
        cpu_chain_extend(b, &c);
        /* the weights with the folded per-column scale: made once per compiled model (the store) */
        gemm_w gw = {Bc->data, c.scale, 1.0f, K, N, false};
        cpu_skey wk = {.node = n, .tag = "mm.w", .fp = cpu_chain_fp(&c), .src = Bc};
        if (conv) {
            s = cpu_mm1x1_lower(b, n, &c, nd->in[0], M, K, N, &wk, c.scale ? fill_gemm_w : NULL, c.scale ? (const void *)&gw : Bc->data, -1, c.shift);
            cpu_chain_free(&c);
            return s;
        }
        s = matmul_common(b, n, &c, nd->in[0], &smd, &wk, c.scale ? fill_gemm_w : NULL, c.scale ? (const void *)&gw : Bc->data, &wplain, -1, NULL,
                          c.shift, &bmd, &dmd);
        cpu_chain_free(&c);
        return s;
    }
    if (Bv->is_param && !Bc && Bv->ndim == 2 && Bv->dtype == SI_F32 && A->ndim >= 2 && si_dims_known(2, Bv->dims)) {
        /* activations x a function body's weight (a parameter, bound per call): packed once per bound tensor into
         * the model's store at run time; nothing folds into it (the chain keeps its post-ops) */
        int64_t K = Bv->dims[0], N = Bv->dims[1], M = si_shape_count(A->ndim - 1, A->dims);
        if (A->dims[A->ndim - 1] != K || N < 1) return cpu_unsupported();
        int64_t sd[2] = {M, K}, wd[2] = {K, N}, dd[2] = {M, N};
        dnnl_memory_desc_t smd, wplain, dmd;
        cpu_md_plain(&smd, 2, sd);
        cpu_md_plain(&wplain, 2, wd);
        cpu_md_plain(&dmd, 2, dd);
        const bool conv = cpu_mm1x1_wanted(b, M) && cpu_mm1x1_probe(b, M, K, N);
        cpu_chain c;
        cpu_chain_init(&c, b, n, 2, dd, -1, true);
        cpu_chain_extend(b, &c);
        cpu_skey wk = {.node = n, .tag = "mm.p", .fp = cpu_chain_fp(&c)};
        if (conv) {
            s = cpu_mm1x1_lower(b, n, &c, nd->in[0], M, K, N, &wk, NULL, NULL, nd->in[1], NULL);
            cpu_chain_free(&c);
            return s;
        }
        s = matmul_common(b, n, &c, nd->in[0], &smd, &wk, NULL, NULL, &wplain, nd->in[1], NULL, NULL, NULL, &dmd);
        cpu_chain_free(&c);
        return s;
    }
    /* batched product of two activations (or a constant of another rank), with numpy broadcasting */
    int ra = A->ndim, rb = Bv->ndim;
    int64_t a[DNNL_MAX_NDIMS], w[DNNL_MAX_NDIMS], d[DNNL_MAX_NDIMS];
    int64_t a2[2], b2[2];
    if (ra == 1) a2[0] = 1, a2[1] = A->dims[0];
    if (rb == 1) b2[0] = Bv->dims[0], b2[1] = 1;
    const int64_t *ad = ra == 1 ? a2 : A->dims, *bdm = rb == 1 ? b2 : Bv->dims;
    int ran = ra == 1 ? 2 : ra, rbn = rb == 1 ? 2 : rb;
    int rr = SI_MAX(ran, rbn);
    if (rr > DNNL_MAX_NDIMS) return cpu_unsupported();
    for (int i = 0; i < rr; i++) {
        int ia = i - (rr - ran), ib = i - (rr - rbn);
        a[i] = ia < 0 ? 1 : ad[ia];
        w[i] = ib < 0 ? 1 : bdm[ib];
    }
    if (a[rr - 1] != w[rr - 2]) return cpu_unsupported();
    for (int i = 0; i < rr - 2; i++) {
        if (a[i] != w[i] && a[i] != 1 && w[i] != 1) return cpu_unsupported();
        d[i] = SI_MAX(a[i], w[i]);
    }
    d[rr - 2] = a[rr - 2];
    d[rr - 1] = w[rr - 1];
    if (si_shape_count(rr, d) != si_shape_count(Y->ndim, Y->dims)) return cpu_unsupported();
    dnnl_memory_desc_t smd, wmd, dmd;
    cpu_md_plain(&smd, rr, a);
    cpu_md_plain(&wmd, rr, w);
    cpu_md_plain(&dmd, rr, d);
    if (rr == ran && rr == rbn && rr == Y->ndim && !b->no_fusion) {
        s = matmul_strided(b, n, &smd, &wmd, &dmd);
        if (s != SI_ERR_UNSUPPORTED) return s;
    }
    cpu_chain c;
    cpu_chain_init(&c, b, n, rr, d, -1, rr == Y->ndim);
    c.allow_oscale = true;
    if (rr != Y->ndim) c.can_sum = false;
    cpu_chain_extend(b, &c);
    s = matmul_common(b, n, &c, nd->in[0], &smd, NULL, NULL, NULL, NULL, nd->in[1], &wmd, NULL, NULL, &dmd);
    cpu_chain_free(&c);
    return s;
}

static si_result lower_gemm(cpu_pb *b, int n) {
    if (!b->no_fusion) { /* the QDQ form: DequantizeLinear -> MatMul / Gemm [-> QuantizeLinear] as an integer product */
        si_result q = cpu_lower_qdq_matmul(b, n);
        if (q != SI_ERR_UNSUPPORTED) return q;
        si_err_clear();
    }
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 2 || !cpu_in_ok(g, nd, 0) || !cpu_in_ok(g, nd, 1) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *A = &g->values[nd->in[0]], *Bv = &g->values[nd->in[1]];
    const si_tensor *Bc = Bv->const_val, *C = cpu_const_input(g, nd, 2);
    if (A->ndim != 2 || Bv->ndim != 2 || !Bc || !Bc->data) return cpu_unsupported();
    if (nd->n_in > 2 && nd->in[2] >= 0 && (!C || C->dtype != SI_F32 || !C->data)) return cpu_unsupported();
    float alpha = si_attr_float(nd, "alpha", 1.0f), beta = si_attr_float(nd, "beta", 1.0f);
    bool ta = si_attr_int(nd, "transA", 0) != 0, tb = si_attr_int(nd, "transB", 0) != 0;
    int64_t M = ta ? A->dims[1] : A->dims[0], K = ta ? A->dims[0] : A->dims[1];
    int64_t Kb = tb ? Bc->dims[1] : Bc->dims[0], N = tb ? Bc->dims[0] : Bc->dims[1];
    if (K != Kb) return cpu_unsupported();
    /* C must broadcast to [M, N] along N only (or be a scalar): it becomes the bias row */
    if (C) {
        int64_t cnt = si_shape_count(C->ndim, C->dims);
        if (C->ndim > 2 || !(cnt == 1 || (cnt == N && C->dims[C->ndim - 1] == N))) return cpu_unsupported();
    }
    int64_t sd[2] = {M, K}, sst[2] = {ta ? 1 : K, ta ? M : 1}, wd[2] = {K, N}, dd[2] = {M, N}, bd[2] = {1, N};
    dnnl_memory_desc_t smd, wplain, dmd, bmd;
    cpu_md_strided(&smd, 2, sd, sst);
    cpu_md_plain(&wplain, 2, wd);
    cpu_md_plain(&dmd, 2, dd);
    cpu_md_plain(&bmd, 2, bd);
    cpu_chain c;
    cpu_chain_init(&c, b, n, 2, dd, 1, true);
    cpu_chain_extend(b, &c);
    bool has_bias = C || c.shift;
    float *bias = has_bias ? si_malloc(sizeof(float) * (size_t)N) : NULL;
    if (has_bias && !bias) {
        cpu_chain_free(&c);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory packing weights");
    }
    gemm_w gw = {Bc->data, c.scale, alpha, K, N, tb};
    uint64_t fp = cpu_chain_fp(&c);
    fp = cpu_fp(fp, &alpha, sizeof alpha);
    fp = cpu_fp(fp, &tb, sizeof tb);
    cpu_skey wk = {.node = n, .tag = "gemm.w", .fp = fp, .src = Bc};
    if (bias) {
        int64_t cnt = C ? si_shape_count(C->ndim, C->dims) : 0;
        for (int64_t j = 0; j < N; j++) {
            float cv = C ? beta * ((const float *)C->data)[cnt == 1 ? 0 : j] : 0.0f;
            bias[j] = cv * (c.scale ? c.scale[j] : 1.0f) + (c.shift ? c.shift[j] : 0.0f);
        }
    }
    bool as_is = !tb && alpha == 1.0f && !c.scale; /* packed straight from the constant */
    si_result s;
    if (!ta && cpu_mm1x1_wanted(b, M) && cpu_mm1x1_probe(b, M, K, N))
        s = cpu_mm1x1_lower(b, n, &c, nd->in[0], M, K, N, &wk, as_is ? NULL : fill_gemm_w, as_is ? (const void *)Bc->data : &gw, -1, bias);
    else
        s = matmul_common(b, n, &c, nd->in[0], &smd, &wk, as_is ? NULL : fill_gemm_w, as_is ? (const void *)Bc->data : &gw, &wplain, -1, NULL, bias,
                          &bmd, &dmd);
    si_free(bias);
    cpu_chain_free(&c);
    return s;
}

// --- pooling --------------------------------------------------------------------------------------------------

static si_result lower_pool_impl(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_op_id t = nd->op->id;
    if (nd->n_in < 1 || nd->in[0] < 0 || nd->n_out < 1 || nd->out[0] < 0) return cpu_unsupported();
    /* the QDQ form (DequantizeLinear -> MaxPool -> QuantizeLinear with the same scale and zero point) is MaxPool on
     * the integers, as the QOperator form writes it */
    int xin = nd->in[0], yout = nd->out[0], qnode = -1;
    if (t == SI_OP_MAX_POOL || t == SI_OP_GLOBAL_MAX_POOL) cpu_qdq_pool_match(b, n, &xin, &yout, &qnode);
    /* MaxPool also on the uint8 / int8 tensors of a quantized (QOperator) model, in their layout */
    const bool q8 = (t == SI_OP_MAX_POOL || t == SI_OP_GLOBAL_MAX_POOL) && (g->values[xin].dtype == SI_U8 || g->values[xin].dtype == SI_I8) &&
                    g->values[yout].dtype == g->values[xin].dtype && cpu_value_static(&g->values[xin]) &&
                    cpu_value_static(&g->values[yout]) && value_count(g, xin) > 0 && value_count(g, yout) > 0;
    if (!q8 && (nd->n_in < 1 || !cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd))) return cpu_unsupported();
    const si_val *X = &g->values[xin], *Y = &g->values[yout];
    int r = X->ndim, sp = r - 2;
    if (r < 3 || r > 5 || Y->ndim != r) return cpu_unsupported();
    bool global = t == SI_OP_GLOBAL_AVERAGE_POOL || t == SI_OP_GLOBAL_MAX_POOL;
    bool is_max = t == SI_OP_MAX_POOL || t == SI_OP_GLOBAL_MAX_POOL;
    int64_t kern[3], stride[3], dil[3], kext[3], pl[3], pr[3];
    dnnl_alg_kind_t alg = dnnl_pooling_max;
    if (global) {
        for (int i = 0; i < sp; i++) kern[i] = X->dims[2 + i], stride[i] = 1, dil[i] = 1, pl[i] = pr[i] = 0, kext[i] = kern[i];
        if (!is_max) alg = dnnl_pooling_avg_exclude_padding;
    } else {
        int nk;
        const int64_t *ks = si_attr_ints(nd, "kernel_shape", &nk);
        if (!ks || nk != sp) return cpu_unsupported();
        if (is_max && ((nd->n_out > 1 && nd->out[1] >= 0) || si_attr_int(nd, "storage_order", 0))) return cpu_unsupported();
        if (!cpu_attr_ints(nd, "strides", sp, 1, 1, stride) || !cpu_attr_ints(nd, "dilations", sp, 1, 1, dil)) return cpu_unsupported();
        for (int i = 0; i < sp; i++) {
            if (ks[i] < 1) return cpu_unsupported();
            kern[i] = ks[i];
            kext[i] = (ks[i] - 1) * dil[i] + 1;
        }
        if (!spatial_pads(nd, sp, X->dims + 2, kext, stride, pl, pr)) return cpu_unsupported();
        bool include_pad = !is_max && si_attr_int(nd, "count_include_pad", 0);
        if (!is_max) alg = include_pad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
        for (int i = 0; i < sp; i++) {
            int64_t num = X->dims[2 + i] + pl[i] + pr[i] - kext[i];
            if (num >= 0 && num / stride[i] + 1 == Y->dims[2 + i]) continue;
            /* ceil_mode: a last window that only partly covers the input; extra right padding, which
             * max pooling ignores and exclude-padding averaging does not count */
            int64_t pr2 = (Y->dims[2 + i] - 1) * stride[i] + kext[i] - X->dims[2 + i] - pl[i];
            if (pr2 < pr[i] || include_pad) return cpu_unsupported();
            if ((Y->dims[2 + i] - 1) * stride[i] >= X->dims[2 + i] + pl[i]) return cpu_unsupported(); /* window fully in padding */
            pr[i] = pr2;
        }
    }
    dnnl_dims_t dd, st, kk, dl, pad_l, pad_r;
    for (int i = 0; i < r; i++) dd[i] = Y->dims[i];
    for (int i = 0; i < sp; i++) st[i] = stride[i], kk[i] = kern[i], dl[i] = dil[i] - 1, pad_l[i] = pl[i], pad_r[i] = pr[i];
    int src = cpu_pb_existing(b, xin);
    if (src < 0) return SI_ERR_INTERNAL;
    if (q8 && !b->p->bufs[src].dyn) { /* oneDNN's integer pooling is fast channels-last only */
        dnnl_memory_desc_t nhwc;
        dnnl_dims_t xd;
        for (int i = 0; i < r; i++) xd[i] = X->dims[i];
        dnnl_memory_desc_init_by_tag(&nhwc, r, xd, b->p->bufs[src].md.data_type, r == 3 ? dnnl_acb : r == 4 ? dnnl_acdb : dnnl_acdeb);
        src = cpu_pb_in_md(b, xin, &nhwc);
        if (src < 0) return SI_ERR_INTERNAL;
    }
    dnnl_memory_desc_t smd = b->p->bufs[src].md, dmd;
    if (b->p->bufs[src].dyn) return cpu_unsupported();
    dnnl_memory_desc_init_by_tag(&dmd, r, dd, q8 ? smd.data_type : dnnl_f32, dnnl_format_tag_any);
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_status_t ds = dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &smd, &dmd, st, kk, dl, pad_l, pad_r);
    if (ds != dnnl_success) return ds == dnnl_unimplemented || ds == dnnl_invalid_arguments ? cpu_unsupported() : cpu_dnnl_err(ds, "pooling", nd->name);
    if (q8) { /* no post-ops on integers */
        dnnl_primitive_desc_t pd;
        dnnl_primitive_attr_t attr = cpu_chain_attr(NULL, 1.0f);
        if (!attr) return SI_ERR_NO_MEM;
        ds = dnnl_primitive_desc_create(&pd, &pdsc, attr, b->eng, NULL);
        dnnl_primitive_attr_destroy(attr);
        if (ds != dnnl_success) return cpu_unsupported();
        int dst = cpu_pb_new_out(b, yout, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0));
        if (dst < 0) {
            dnnl_primitive_desc_destroy(pd);
            return SI_ERR_NO_MEM;
        }
        cpu_arg args[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
        si_result s = cpu_pb_emit_dnnl(b, n, qnode >= 0 ? "QDQ MaxPool(int8)" : "MaxPool(int8)", pd, args, 2);
        if (!s) cpu_pb_consume(b, n);
        if (!s && qnode >= 0) cpu_pb_consume(b, qnode);
        return s;
    }
    cpu_chain c;
    dnnl_primitive_desc_t pd;
    si_result s = cpu_chain_pd(b, n, &dmd, &c, &pdsc, &pd);
    if (s) return s;
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, src}};
    return cpu_finish_chain(b, &c, pd, args, 1, nd->op_type);
}

static si_result lower_pool(cpu_pb *b, int n) { return cpu_qdq_fallback(b, n, lower_pool_impl(b, n)); }

// --- elementwise ------------------------------------------------------------------------------------------------

static si_result eltwise_step(cpu_pb *b, int n, int in_value, dnnl_alg_kind_t alg, float alpha, float beta, const int *extra, int n_extra,
                              int out_value, const char *name, dnnl_alg_kind_t alg2, float alpha2, float beta2) {
    int src = cpu_pb_existing(b, in_value);
    if (src < 0) return SI_ERR_INTERNAL;
    if (b->p->bufs[src].dyn) return cpu_unsupported();
    dnnl_memory_desc_t md = b->p->bufs[src].md;
    dnnl_eltwise_desc_t ed;
    dnnl_status_t ds = dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg, &md, alpha, beta);
    if (ds != dnnl_success) return cpu_unsupported();
    cpu_chain c;
    int64_t dims[DNNL_MAX_NDIMS];
    for (int i = 0; i < md.ndims; i++) dims[i] = md.dims[i];
    cpu_chain_init(&c, b, n, md.ndims, dims, -1, false);
    c.vrank = b->g->values[in_value].ndim; /* chains check shapes against the op's (unchanged) shape */
    memcpy(c.vdims, b->g->values[in_value].dims, sizeof c.vdims);
    /* the multi-node pattern or the second half of HardSigmoid: a first group that is never dropped */
    if (n_extra || alg2 != dnnl_alg_kind_undef) {
        if (alg2 != dnnl_alg_kind_undef) {
            c.po[0].kind = PO_ELTWISE;
            c.po[0].alg = alg2;
            c.po[0].alpha = alpha2;
            c.po[0].beta = beta2;
            c.n_po = 1;
        }
        for (int i = 0; i < n_extra; i++) c.nodes[c.n_nodes++] = extra[i];
        c.grp[0].node_end = c.n_nodes;
        c.grp[0].po_end = c.n_po;
        c.grp[0].out = out_value;
        c.grp[0].fold = true;
        snprintf(c.grp[0].name, sizeof c.grp[0].name, "%s", name);
        c.n_groups = 1;
    }
    cpu_chain_extend(b, &c);
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, &c, &ed, &pd, b->g->nodes[n].name);
    if (s) {
        cpu_chain_free(&c);
        return s;
    }
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, src}};
    return cpu_finish_chain(b, &c, pd, args, 1, n_extra ? "Eltwise" : b->g->nodes[n].op_type);
}

static si_result lower_eltwise(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (!b->no_fusion && (si_node_is(nd, SI_OP_SIGMOID) || si_node_is(nd, SI_OP_LEAKY_RELU))) {
        /* the QDQ form: DequantizeLinear -> Sigmoid / LeakyRelu -> QuantizeLinear */
        si_result q = cpu_lower_qdq_unary(b, n);
        if (q != SI_ERR_UNSUPPORTED) return q;
        si_err_clear();
    }
    if (!cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    dnnl_alg_kind_t alg[2];
    float al[2], be[2];
    int ne = cpu_eltwise_of(g, nd, alg, al, be);
    if (!ne) return cpu_unsupported();
    si_result s = eltwise_step(b, n, nd->in[0], alg[0], al[0], be[0], NULL, 0, nd->out[0], nd->op_type,
                               ne > 1 ? alg[1] : dnnl_alg_kind_undef, al[1], be[1]);
    if (s != SI_ERR_UNSUPPORTED || ne < 2) return s;
    /* the eltwise primitive takes no eltwise post-op here: two primitives through an anonymous buffer */
    int src = cpu_pb_existing(b, nd->in[0]);
    if (src < 0) return SI_ERR_INTERNAL;
    dnnl_memory_desc_t md = b->p->bufs[src].md;
    int mid = cpu_pb_internal_md(b, &md);
    if (mid < 0) return SI_ERR_NO_MEM;
    for (int i = 0; i < 2; i++) {
        dnnl_eltwise_desc_t ed;
        dnnl_primitive_desc_t pd;
        if (dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg[i], &md, al[i], be[i]) != dnnl_success) return cpu_unsupported();
        if ((s = cpu_create_pd(b, NULL, &ed, &pd, nd->name))) return s;
        int dst = i == 0 ? mid : cpu_pb_new_out(b, nd->out[0], &md);
        if (dst < 0) {
            dnnl_primitive_desc_destroy(pd);
            return SI_ERR_NO_MEM;
        }
        cpu_arg args[2] = {{DNNL_ARG_SRC, i == 0 ? src : mid}, {DNNL_ARG_DST, dst}};
        if ((s = cpu_pb_emit_dnnl(b, n, nd->op_type, pd, args, 2))) return s;
    }
    cpu_pb_consume(b, n);
    return SI_OK;
}

/* An activation pattern (GELU, x*Sigmoid(x), ...) on a value whose producer did not absorb it. */
static si_result lower_pattern(cpu_pb *b, int n, bool *done) {
    const si_node *nd = &b->g->nodes[n];
    *done = false;
    for (int k = 0; k < nd->n_in; k++) {
        int v = nd->in[k];
        if (v < 0 || b->g->values[v].const_val || !cpu_value_static(&b->g->values[v])) continue;
        int nodes[8], out;
        dnnl_alg_kind_t alg;
        float alpha;
        int np = cpu_pattern_match(b, v, &alg, &alpha, nodes, &out);
        if (!np) continue;
        bool mine = false;
        for (int i = 0; i < np; i++) mine |= nodes[i] == n;
        if (!mine) continue;
        /* the first pattern node is the step's node; the others ride along */
        int extra[8], ne = 0;
        for (int i = 0; i < np; i++)
            if (nodes[i] != n) extra[ne++] = nodes[i];
        si_result s = eltwise_step(b, n, v, alg, alpha, 0, extra, ne, out, cpu_pattern_name(alg), dnnl_alg_kind_undef, 0, 0);
        if (s == SI_OK) *done = true;
        return s == SI_ERR_UNSUPPORTED ? SI_OK : s;
    }
    return SI_OK;
}

static si_result lower_binary(cpu_pb *b, int n) {
    if (!b->no_fusion && (si_node_is(&b->g->nodes[n], SI_OP_ADD) || si_node_is(&b->g->nodes[n], SI_OP_MUL))) {
        /* the QDQ form: DequantizeLinear x 2 -> Add / Mul -> QuantizeLinear */
        si_result q = cpu_lower_qdq_add(b, n);
        if (q != SI_ERR_UNSUPPORTED) return q;
        si_err_clear();
    }
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in != 2 || !cpu_in_ok(g, nd, 0) || !cpu_in_ok(g, nd, 1) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_op_id t = nd->op->id;
    /* x + c, x - c, c - x, x * c with a one-value constant c: alpha x + beta, an eltwise op in x's layout (the
     * same roundings; oneDNN's binary with a scalar operand has only its reference kernel for some layouts on AVX2) */
    if ((t == SI_OP_ADD || t == SI_OP_SUB || t == SI_OP_MUL) && !b->no_fusion) {
        for (int k = 0; k < 2; k++) {
            const si_val *C = &g->values[nd->in[k]], *V = &g->values[nd->in[1 - k]];
            const si_val *Yv = &g->values[nd->out[0]];
            if (!C->const_val || C->const_val->dtype != SI_F32 || si_shape_count(C->ndim, C->dims) != 1 || V->const_val ||
                V->ndim != Yv->ndim || memcmp(V->dims, Yv->dims, sizeof(int64_t) * (size_t)V->ndim))
                continue;
            const float c = *(const float *)C->const_val->data;
            const float alpha = t == SI_OP_MUL ? c : t == SI_OP_SUB && k == 0 ? -1.0f : 1.0f;
            const float beta = t == SI_OP_MUL ? 0.0f : t == SI_OP_SUB && k == 1 ? -c : c;
            si_result es = eltwise_step(b, n, nd->in[1 - k], dnnl_eltwise_linear, alpha, beta, NULL, 0, nd->out[0], nd->op_type,
                                        dnnl_alg_kind_undef, 0, 0);
            if (es != SI_ERR_UNSUPPORTED) return es;
            si_err_clear();
        }
    }
    dnnl_alg_kind_t alg = t == SI_OP_ADD || t == SI_OP_SUM ? dnnl_binary_add : t == SI_OP_SUB ? dnnl_binary_sub : t == SI_OP_MUL ? dnnl_binary_mul
                        : t == SI_OP_DIV ? dnnl_binary_div : t == SI_OP_MAX ? dnnl_binary_max : dnnl_binary_min;
    bool commutative = alg != dnnl_binary_sub && alg != dnnl_binary_div;
    const si_val *Y = &g->values[nd->out[0]];
    int va = nd->in[0], vb = nd->in[1];
    const si_val *A = &g->values[va], *B = &g->values[vb];
    bool a_full = A->ndim == Y->ndim && !memcmp(A->dims, Y->dims, sizeof(int64_t) * (size_t)Y->ndim);
    bool b_full = B->ndim == Y->ndim && !memcmp(B->dims, Y->dims, sizeof(int64_t) * (size_t)Y->ndim);
    if (!a_full || (A->const_val && !B->const_val && b_full && commutative)) {
        if (!commutative || !b_full) return cpu_unsupported();
        int tv = va;
        va = vb, vb = tv;
        A = &g->values[va], B = &g->values[vb];
        b_full = B->ndim == Y->ndim && !memcmp(B->dims, Y->dims, sizeof(int64_t) * (size_t)Y->ndim);
    }
    if (A->const_val) return cpu_unsupported(); /* folded at compile time unless both are big constants */
    int64_t bd[DNNL_MAX_NDIMS];
    int r = Y->ndim < 1 ? 1 : Y->ndim;
    for (int i = 0; i < r; i++) {
        int j = i - (Y->ndim - B->ndim);
        bd[i] = (Y->ndim == 0 || j < 0) ? 1 : B->dims[j];
    }
    for (int pass = 0; pass < 2; pass++) {
        int sa = pass ? cpu_pb_plain(b, va) : cpu_pb_existing(b, va);
        if (sa < 0) return SI_ERR_INTERNAL;
        if (b->p->bufs[sa].dyn) return cpu_unsupported();
        dnnl_memory_desc_t amd = b->p->bufs[sa].md, bmd;
        bool blocked = !cpu_md_is_plain(&amd);
        if (blocked && pass) continue;
        if (b_full) bmd = amd;
        else cpu_md_plain(&bmd, r, bd);
        dnnl_binary_desc_t bdsc;
        dnnl_status_t ds = dnnl_binary_desc_init(&bdsc, alg, &amd, &bmd, &amd);
        if (ds != dnnl_success) {
            if (blocked) continue;
            return cpu_unsupported();
        }
        cpu_chain c;
        dnnl_primitive_desc_t pd;
        si_result s = cpu_chain_pd(b, n, &amd, &c, &bdsc, &pd);
        if (s == SI_ERR_UNSUPPORTED && blocked) continue;
        if (s) return s;
        if (blocked && cpu_pd_is_ref(pd)) { /* oneDNN's reference kernel in this layout (a per-channel operand in
                                             * nChw8c on AVX2: 64 ms for a squeeze-excitation Mul): plain instead */
            dnnl_primitive_desc_destroy(pd);
            cpu_chain_free(&c);
            continue;
        }
        int sb = cpu_pb_in_md(b, vb, &bmd);
        if (sb < 0) {
            dnnl_primitive_desc_destroy(pd);
            cpu_chain_free(&c);
            return SI_ERR_INTERNAL;
        }
        cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC_0, sa}, {DNNL_ARG_SRC_1, sb}};
        return cpu_finish_chain(b, &c, pd, args, 2, nd->op_type);
    }
    return cpu_unsupported();
}

/* PRelu as oneDNN's prelu primitive (a jit kernel in any layout): the slope broadcast to X's shape
 * (unidirectionally; before opset 7 a 1-D slope of X's channel count applies along axis 1). */
static si_result lower_prelu(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in != 2 || !cpu_in_ok(g, nd, 0) || !cpu_in_ok(g, nd, 1) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]], *S = &g->values[nd->in[1]];
    const int r = X->ndim;
    if (r < 1 || r > DNNL_MAX_NDIMS || S->ndim > r) return cpu_unsupported();
    int64_t wd[DNNL_MAX_NDIMS];
    const bool channel = nd->opset < 7 && S->ndim == 1 && r >= 2 && S->dims[0] == X->dims[1] && S->dims[0] != 1;
    for (int i = 0; i < r; i++) {
        const int j = channel ? (i == 1 ? 0 : -1) : i - (r - S->ndim);
        wd[i] = j < 0 ? 1 : S->dims[j];
        if (wd[i] != 1 && wd[i] != X->dims[i]) return cpu_unsupported();
    }
    for (int pass = 0; pass < 2; pass++) {
        int sa = pass ? cpu_pb_plain(b, nd->in[0]) : cpu_pb_existing(b, nd->in[0]);
        if (sa < 0) return SI_ERR_INTERNAL;
        if (b->p->bufs[sa].dyn) return cpu_unsupported();
        dnnl_memory_desc_t amd = b->p->bufs[sa].md, wmd;
        const bool blocked = !cpu_md_is_plain(&amd);
        if (blocked && pass) continue;
        /* a constant slope in the layout oneDNN's jit kernel wants (a blocked source takes a blocked slope) */
        const si_tensor *sc = S->const_val && S->const_val->dtype == SI_F32 ? S->const_val : NULL;
        dnnl_memory_desc_t wplain;
        cpu_md_plain(&wplain, r, wd);
        if (!sc) wmd = wplain;
        else if (dnnl_memory_desc_init_by_tag(&wmd, r, wd, dnnl_f32, dnnl_format_tag_any) != dnnl_success) return cpu_unsupported();
        dnnl_prelu_desc_t pdsc;
        dnnl_primitive_desc_t pd;
        if (dnnl_prelu_forward_desc_init(&pdsc, dnnl_forward_inference, &amd, &wmd) != dnnl_success) {
            if (blocked) continue;
            return cpu_unsupported();
        }
        si_result s = cpu_create_pd(b, NULL, &pdsc, &pd, nd->name);
        if (s == SI_ERR_UNSUPPORTED && blocked) {
            si_err_clear();
            continue;
        }
        if (s) return s;
        int sw;
        if (sc) {
            const cpu_skey wk = {.node = n, .tag = "prelu.w", .src = sc};
            sw = cpu_pb_pack(b, &wk, sc->data, NULL, NULL, &wplain, cpu_pd_md(pd, dnnl_query_weights_md));
        } else {
            sw = cpu_pb_in_md(b, nd->in[1], &wmd);
        }
        int dst = sw < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &amd);
        if (dst < 0) {
            dnnl_primitive_desc_destroy(pd);
            return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
        }
        cpu_arg args[3] = {{DNNL_ARG_SRC, sa}, {DNNL_ARG_WEIGHTS, sw}, {DNNL_ARG_DST, dst}};
        if ((s = cpu_pb_emit_dnnl(b, n, nd->op_type, pd, args, 3))) return s;
        cpu_pb_consume(b, n);
        return SI_OK;
    }
    return cpu_unsupported();
}

static si_result lower_pow(cpu_pb *b, int n) {
    si_result s = cpu_lower_rms_pattern(b, n);
    return s == SI_ERR_UNSUPPORTED ? lower_eltwise(b, n) : s;
}

/* Mul x x may start a written-out RMS norm; any other Mul is a binary op. */
static si_result lower_mul(cpu_pb *b, int n) {
    const si_node *nd = &b->g->nodes[n];
    si_result s = nd->n_in == 2 && nd->in[0] >= 0 && nd->in[0] == nd->in[1] ? cpu_lower_rms_pattern(b, n) : SI_ERR_UNSUPPORTED;
    return s == SI_ERR_UNSUPPORTED ? lower_binary(b, n) : s;
}

static si_result lower_lrn(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (!cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd) || g->values[nd->in[0]].ndim != 4) return cpu_unsupported();
    int64_t size = si_attr_int(nd, "size", 0);
    if (size < 1 || !(size & 1)) return cpu_unsupported();
    int src = cpu_pb_existing(b, nd->in[0]);
    if (src < 0) return SI_ERR_INTERNAL;
    dnnl_memory_desc_t md = b->p->bufs[src].md;
    dnnl_lrn_desc_t ld;
    dnnl_status_t ds = dnnl_lrn_forward_desc_init(&ld, dnnl_forward_inference, dnnl_lrn_across_channels, &md, size,
                                                  si_attr_float(nd, "alpha", 1e-4f), si_attr_float(nd, "beta", 0.75f), si_attr_float(nd, "bias", 1.0f));
    if (ds != dnnl_success) return cpu_unsupported();
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, NULL, &ld, &pd, nd->name);
    if (s) return s;
    int dst = cpu_pb_new_out(b, nd->out[0], cpu_pd_md(pd, dnnl_query_dst_md));
    if (dst < 0) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    cpu_arg args[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    s = cpu_pb_emit_dnnl(b, n, "LRN", pd, args, 2);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

// --- data movement ----------------------------------------------------------------------------------------------

static si_result lower_concat(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (!b->no_fusion) { /* the QDQ form: DequantizeLinear x k -> Concat -> QuantizeLinear */
        si_result q = cpu_lower_qdq_concat(b, n);
        if (q != SI_ERR_UNSUPPORTED) return q;
        si_err_clear();
    }
    if (nd->n_in < 2 || nd->n_in > MAX_ARGS - 2 || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *Y = &g->values[nd->out[0]];
    int r = Y->ndim;
    int64_t axis = si_attr_int(nd, "axis", 1);
    if (r < 1 || axis < -r || axis >= r) return cpu_unsupported();
    if (axis < 0) axis += r;
    dnnl_memory_desc_t mds[MAX_ARGS];
    cpu_arg args[MAX_ARGS];
    int vals[MAX_ARGS], na = 0;
    for (int k = 0; k < nd->n_in; k++) {
        if (nd->in[k] < 0) return cpu_unsupported();
        const si_val *v = &g->values[nd->in[k]];
        if (v->dtype != SI_F32 || !cpu_value_static(v) || v->ndim != r) return cpu_unsupported();
        if (v->dims[axis] == 0) continue;
        int bf = cpu_pb_existing(b, nd->in[k]);
        if (bf < 0) return SI_ERR_INTERNAL;
        if (b->p->bufs[bf].dyn) return cpu_unsupported();
        mds[na] = b->p->bufs[bf].md;
        vals[na] = nd->in[k];
        args[na].arg = DNNL_ARG_MULTIPLE_SRC + na;
        args[na].buf = bf;
        na++;
    }
    if (na < 1) return cpu_unsupported();
    dnnl_dims_t dd;
    for (int i = 0; i < r; i++) dd[i] = Y->dims[i];
    /* blocked inputs: let oneDNN pick the output layout; plain ones stay plain */
    bool any_blocked = false, any_plain = false;
    for (int i = 0; i < na; i++) any_blocked |= !cpu_md_is_plain(&mds[i]), any_plain |= cpu_md_is_plain(&mds[i]);
    if (any_blocked && any_plain) { /* mixed (a Resize's plain output next to a convolution's): oneDNN's concat is its
                                     * reference kernel then; the plain inputs reordered to the blocked one's layout */
        const dnnl_memory_desc_t *bm = NULL;
        for (int i = 0; i < na && !bm; i++)
            if (!cpu_md_is_plain(&mds[i])) bm = &mds[i];
        const dnnl_blocking_desc_t *bk = &bm->format_desc.blocking;
        const dnnl_format_tag_t tag =
            bm->format_kind == dnnl_blocked && bk->inner_nblks == 1 && bk->inner_idxs[0] == 1 ? cpu_tag_cblocked(r, bk->inner_blks[0]) : dnnl_format_tag_undef;
        for (int i = 0; tag != dnnl_format_tag_undef && i < na; i++) {
            if (!cpu_md_is_plain(&mds[i])) continue;
            dnnl_memory_desc_t md2;
            if (dnnl_memory_desc_init_by_tag(&md2, r, mds[i].dims, dnnl_f32, tag) != dnnl_success) break;
            const int bf = cpu_pb_in_md(b, vals[i], &md2);
            if (bf < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
            mds[i] = md2;
            args[i].buf = bf;
        }
    }
    dnnl_memory_desc_t dmd;
    if (any_blocked) dnnl_memory_desc_init_by_tag(&dmd, r, dd, dnnl_f32, dnnl_format_tag_any);
    else cpu_md_plain(&dmd, r, Y->dims);
    dnnl_primitive_attr_t attr = cpu_chain_attr(NULL, 1.0f);
    if (!attr) return SI_ERR_NO_MEM;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_concat_primitive_desc_create(&pd, &dmd, na, (int)axis, mds, attr, b->eng);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success) return ds == dnnl_unimplemented || ds == dnnl_invalid_arguments ? cpu_unsupported() : cpu_dnnl_err(ds, "concat", nd->name);
    if (!cpu_no_own()) { /* contiguous runs of the output: copies (cpu_data.c) */
        si_result c = cpu_concat_copy(b, n, mds, args, na, (int)axis, cpu_pd_md(pd, dnnl_query_dst_md));
        if (c != SI_ERR_UNSUPPORTED) {
            dnnl_primitive_desc_destroy(pd);
            return c;
        }
    }
    int dst = cpu_pb_new_out(b, nd->out[0], cpu_pd_md(pd, dnnl_query_dst_md));
    if (dst < 0) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    args[na].arg = DNNL_ARG_DST;
    args[na++].buf = dst;
    si_result s = cpu_pb_emit_dnnl(b, n, "Concat", pd, args, na);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

static si_result lower_transpose(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (!cpu_in_ok(g, nd, 0) || !cpu_out_f32_static(g, nd)) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    int r = X->ndim;
    if (r < 2 || r > DNNL_MAX_NDIMS || Y->ndim != r) return cpu_unsupported();
    int np;
    const int64_t *perm = si_attr_ints(nd, "perm", &np);
    int64_t p[DNNL_MAX_NDIMS], xs[DNNL_MAX_NDIMS], vd[DNNL_MAX_NDIMS], vs[DNNL_MAX_NDIMS];
    if (perm && np != r) return cpu_unsupported();
    for (int i = 0; i < r; i++) p[i] = perm ? perm[i] : r - 1 - i;
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) xs[i] = s, s *= X->dims[i];
    for (int i = 0; i < r; i++) {
        if (p[i] < 0 || p[i] >= r) return cpu_unsupported();
        vd[i] = X->dims[p[i]];
        vs[i] = xs[p[i]];
        if (vd[i] != Y->dims[i]) return cpu_unsupported();
    }
    int src = cpu_pb_plain(b, nd->in[0]);
    if (src < 0) return SI_ERR_INTERNAL;
    if (b->p->bufs[src].dyn) return cpu_unsupported();
    dnnl_memory_desc_t smd, dmd;
    cpu_md_strided(&smd, r, vd, vs);
    /* read by MatMuls only: no copy, they read the input through the permuted strides (a consumer that
     * needs it plain gets a reorder, which is this transpose done late) */
    bool all_matmul = b->n_consumers[nd->out[0]] > 0 && !cpu_value_is_output(g, nd->out[0]);
    for (int k = 0; all_matmul && k < b->n_consumers[nd->out[0]]; k++) {
        int cn = cpu_pb_consumer(b, nd->out[0], k);
        all_matmul = cn >= 0 && cpu_is_op(&g->nodes[cn], SI_OP_MATMUL) && r >= 3;
    }
    if (all_matmul && !b->no_fusion) {
        if (cpu_pb_strided_view(b, nd->out[0], src, &smd) < 0) return SI_ERR_NO_MEM;
        cpu_pb_consume(b, n);
        return SI_OK;
    }
    cpu_md_plain(&dmd, r, Y->dims);
    dnnl_primitive_attr_t attr = cpu_chain_attr(NULL, 1.0f);
    if (!attr) return SI_ERR_NO_MEM;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_reorder_primitive_desc_create(&pd, &smd, b->eng, &dmd, b->eng, attr);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success) return cpu_unsupported();
    int sv = cpu_pb_alias(b, src, &smd);
    int dst = sv < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &dmd);
    if (dst < 0) {
        dnnl_primitive_desc_destroy(pd);
        return SI_ERR_INTERNAL;
    }
    cpu_arg args[2] = {{DNNL_ARG_FROM, sv}, {DNNL_ARG_TO, dst}};
    si_result st = cpu_pb_emit_dnnl(b, n, "Transpose", pd, args, 2);
    if (!st) cpu_pb_consume(b, n);
    return st;
}

// --- entry -------------------------------------------------------------------------------------------------

/* The lowering of each op oneDNN takes; NULL: the reference kernel runs it. */
typedef si_result (*lower_fn)(cpu_pb *b, int n);
static const lower_fn lowerers[SI_OP_COUNT] = {
    [SI_OP_CONV] = lower_conv,
    [SI_OP_CONV_TRANSPOSE] = lower_convtranspose,
    [SI_OP_RESIZE] = cpu_lower_resize,
    [SI_OP_UPSAMPLE] = cpu_lower_resize,
    [SI_OP_CAST] = cpu_lower_cast,
    [SI_OP_EINSUM] = cpu_lower_einsum,
    [SI_OP_QUANTIZE_LINEAR] = cpu_lower_qdq,
    [SI_OP_DEQUANTIZE_LINEAR] = cpu_lower_qdq,
    [SI_OP_DEPTH_TO_SPACE] = cpu_lower_depth_to_space,
    [SI_OP_SPACE_TO_DEPTH] = cpu_lower_depth_to_space,
    [SI_OP_PAD] = cpu_lower_pad,
    [SI_OP_SPLIT] = cpu_lower_split,
    [SI_OP_SLICE] = cpu_lower_slice,
    [SI_OP_GROUP_NORMALIZATION] = cpu_lower_groupnorm,
    [SI_OP_INSTANCE_NORMALIZATION] = cpu_lower_groupnorm,
    [SI_OP_MATMUL] = lower_matmul,
    [SI_OP_GEMM] = lower_gemm,
    [SI_OP_MAX_POOL] = lower_pool,
    [SI_OP_AVERAGE_POOL] = lower_pool,
    [SI_OP_GLOBAL_AVERAGE_POOL] = lower_pool,
    [SI_OP_GLOBAL_MAX_POOL] = lower_pool,
    [SI_OP_BATCH_NORMALIZATION] = cpu_lower_batchnorm,
    [SI_OP_SOFTMAX] = cpu_lower_softmax,
    [SI_OP_LOG_SOFTMAX] = cpu_lower_softmax,
    [SI_OP_LAYER_NORMALIZATION] = cpu_lower_layernorm,
    [SI_OP_REDUCE_MEAN] = cpu_lower_layernorm_pattern, /* the first node of a written-out LayerNormalization */
    [SI_OP_LRN] = lower_lrn,
    [SI_OP_CONCAT] = lower_concat,
    [SI_OP_TRANSPOSE] = lower_transpose,
    [SI_OP_ADD] = lower_binary,
    [SI_OP_SUB] = lower_binary,
    [SI_OP_MUL] = lower_mul,
    [SI_OP_DIV] = lower_binary,
    [SI_OP_MAX] = lower_binary,
    [SI_OP_MIN] = lower_binary,
    [SI_OP_SUM] = lower_binary,
    /* the unary ops cpu_eltwise_of (cpu_chain.c) maps onto oneDNN eltwise algorithms */
    [SI_OP_RELU] = lower_eltwise,
    [SI_OP_LEAKY_RELU] = lower_eltwise,
    [SI_OP_ELU] = lower_eltwise,
    [SI_OP_SELU] = lower_eltwise,
    [SI_OP_PRELU] = lower_prelu,
    [SI_OP_SIGMOID] = lower_eltwise,
    [SI_OP_TANH] = lower_tanh,
    [SI_OP_EXP] = lower_eltwise,
    [SI_OP_SQRT] = lower_eltwise,
    [SI_OP_ABS] = lower_eltwise,
    [SI_OP_NEG] = lower_eltwise,
    [SI_OP_MISH] = lower_eltwise,
    [SI_OP_HARD_SWISH] = lower_eltwise,
    [SI_OP_GELU] = lower_eltwise,
    [SI_OP_HARD_SIGMOID] = lower_eltwise,
    [SI_OP_CLIP] = lower_eltwise,
    [SI_OP_POW] = lower_pow, /* the first node of a written-out RMS norm, else elementwise */
    /* the LLM ops: native kernels (cpu_llm.c) */
    [SI_OP_MATMUL_NBITS] = cpu_lower_llm,
    [SI_OP_MOE] = cpu_lower_llm,
    [SI_OP_QMOE] = cpu_lower_llm,
    [SI_OP_GROUP_QUERY_ATTENTION] = cpu_lower_llm,
    [SI_OP_MULTI_HEAD_ATTENTION] = cpu_lower_llm,
    [SI_OP_MS_ATTENTION] = cpu_lower_llm,
    [SI_OP_SIMPLIFIED_LAYER_NORMALIZATION] = cpu_lower_llm,
    [SI_OP_SKIP_SIMPLIFIED_LAYER_NORMALIZATION] = cpu_lower_llm,
    [SI_OP_SKIP_LAYER_NORMALIZATION] = cpu_lower_llm,
    [SI_OP_FAST_GELU] = cpu_lower_llm,
    [SI_OP_BIAS_GELU] = cpu_lower_llm,
    [SI_OP_QUICK_GELU] = cpu_lower_llm,
    /* quantized ops (cpu_quant.c), recurrent layers (cpu_rnn.c) */
    [SI_OP_DYNAMIC_QUANTIZE_LINEAR] = cpu_lower_dynamic_quantize,
    [SI_OP_CONV_INTEGER] = cpu_lower_conv_integer,
    [SI_OP_MATMUL_INTEGER] = cpu_lower_matmul_integer,
    [SI_OP_QLINEAR_CONV] = cpu_lower_qlinear_conv,
    [SI_OP_QLINEAR_MATMUL] = cpu_lower_qlinear_matmul,
    [SI_OP_QLINEAR_ADD] = cpu_lower_qlinear_ew,
    [SI_OP_QLINEAR_MUL] = cpu_lower_qlinear_ew,
    [SI_OP_QLINEAR_SIGMOID] = cpu_lower_qlinear_ew,
    [SI_OP_QLINEAR_LEAKY_RELU] = cpu_lower_qlinear_ew,
    [SI_OP_QLINEAR_CONCAT] = cpu_lower_qlinear_concat,
    [SI_OP_QGEMM] = cpu_lower_qgemm,
    [SI_OP_ERF] = cpu_lower_own_unary, /* alone: the GELU pattern folds it into a post-op first */
    [SI_OP_SOFTPLUS] = cpu_lower_own_unary, /* alone: the Mish pattern folds it into a post-op first */
    [SI_OP_SOFTSIGN] = cpu_lower_own_unary,
    [SI_OP_LSTM] = cpu_lower_rnn,
    [SI_OP_GRU] = cpu_lower_rnn,
    [SI_OP_RNN] = cpu_lower_rnn,
};

si_result cpu_lower_node(cpu_pb *b, int n) {
    const si_node *nd = &b->g->nodes[n];
    if (!nd->op) return cpu_unsupported();
    if (nd->domain[0]) return lowerers[nd->op->id] ? lowerers[nd->op->id](b, n) : cpu_unsupported(); /* com.microsoft */
    if (si_node_is(nd, SI_OP_RESHAPE) && !b->no_fusion) { /* the first node of a written-out group norm? */
        si_result s = cpu_lower_groupnorm_pattern(b, n);
        if (s != SI_ERR_UNSUPPORTED) return s;
        si_err_clear();
    }
    if (is_view_op(b->g, nd)) return lower_view(b, n);
    bool done;
    si_result s = lower_pattern(b, n, &done);
    if (s || done) return s;
    lower_fn f = lowerers[nd->op->id];
    return f ? f(b, n) : cpu_unsupported();
}
