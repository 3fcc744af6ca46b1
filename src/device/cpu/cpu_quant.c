/*
 * cpu_quant.c — the CPU device's quantized ops:
 *
 *   DynamicQuantizeLinear  one kernel (min/max, then quantize, each pass split over the threads) that keeps the
 *                          layout of its input: a convolution's channels-last output is quantized in place of
 *                          a reorder, and the next int8 convolution reads it as it is.
 *   ConvInteger            a oneDNN int8 convolution (u8/s8 activations with their zero point as a run-time
 *                          attribute, s8 weights packed once), and with it the Cast -> Mul(scale) that ONNX
 *                          Runtime's dynamic quantizer puts after it, as a post-op (the scale product is read at
 *                          run time), then what cpu_chain absorbs (bias Add, Relu, ...).
 *   MatMulInteger          a oneDNN int8 matmul (activations' and weights' zero points as attributes), with the
 *                          same Cast -> Mul chain.
 *   QLinearConv,           the QOperator form of ONNX Runtime's static quantizer: the oneDNN int8 convolution /
 *   QLinearMatMul          matmul (int32 bias and input zero point in the primitive) into int32, then an own
 *                          requantization pass (per-channel multiplier, the product in float32 rounded to
 *                          nearest even as the reference kernel and ONNX Runtime do, zero point, saturation), channels-last
 *                          uint8/int8 out, which the next QLinearConv reads as it is. A convolution without a folded
 *                          table requantizes inside the primitive instead, to the same bytes (fused_rq_pd).
 *
 * oneDNN takes s8 weights only. uint8 weights w with zero point wz are exact as s8 when every w - wz fits; else
 * the matmul runs w - 128 with the weights zero point wz - 128, and the convolution (which has no weights zero
 * point) runs w - 128 and adds the missing (128 - wz) * S, S being the sum of (x - xz) over each output's
 * window: an FN step writes it into the destination, which the convolution accumulates into (a sum post-op).
 * Everything else (per-channel weight zero points that need that correction, float16 scales, ...) runs on the
 * reference kernels. The QDQ form's patterns that lower to these kernels are matched in cpu_quant_qdq.c.
 *
 * All of this needs exact int8 products: a CPU with AVX-512 VNNI (si_cpu_int8_exact), or s8 weights within
 * [-64, 64] (cpu_int8_weights_exact). Without VNNI oneDNN's int8 kernels add pairs of u8 x s8 products in
 * saturating int16 (vpmaddubsw); with 7-bit weights a pair stays within 2 * 255 * 64 = 32640 and the sums are
 * exact (ONNX Runtime's reduce_range quantizes weights so for these CPUs), except for convolutions of int8
 * inputs, which are one unit off there (conv_src_exact). Every other node cpu_int8f.c rewrites
 * into exact float products of the integers before lowering; what it leaves runs on the reference kernels (the
 * ops) or as written in float (the QDQ patterns). The s8 weights given to oneDNN are w - wz whenever that fits
 * (the zero point then is 0), so that the test on the tensors and the one on the packed bytes agree.
 */
#include "device/cpu/cpu_quant.h"

#include "ops/nn.h"
#include "ops/quant.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ARGS 48
#define MAX_THR 64

/* The only consumer node of v, not lowered yet, when v is not a graph output; else -1. */
static int sole_consumer(const cpu_pb *b, int v) {
    if (v < 0 || b->n_consumers[v] != 1 || cpu_value_is_output(b->g, v)) return -1;
    int c = cpu_pb_consumer(b, v, 0);
    return c >= 0 && !b->done[c] ? c : -1;
}

static bool static_nonempty(const si_val *v) { return cpu_value_static(v) && si_shape_count(v->ndim, v->dims) > 0; }

/* A buffer holding value v in layout want (element type included): an existing one, else a reorder from one of
 * the value's buffers of that element type (its plain buffer seen through a typed descriptor, when there is no
 * other). -1 with si_err set on failure. */
static int typed_in(cpu_pb *b, int v, const dnnl_memory_desc_t *want) {
    int src = -1;
    for (int i = b->vbuf[v]; i >= 0; i = b->p->bufs[i].next) {
        const cpu_buf *bf = &b->p->bufs[i];
        if (bf->dyn) continue;
        if (dnnl_memory_desc_equal(&bf->md, want)) return i;
        if (src < 0 && bf->md.data_type == want->data_type && bf->md.format_kind == dnnl_blocked && bf->md.ndims == want->ndims &&
            !memcmp(bf->md.dims, want->dims, sizeof(dnnl_dim_t) * (size_t)want->ndims))
            src = i;
    }
    const si_val *val = &b->g->values[v];
    if (src < 0) { /* the plain buffer seen through a plain descriptor of the right type and want's dims */
        int pb = cpu_pb_plain(b, v);
        if (pb < 0) return -1;
        if (b->p->bufs[pb].dyn) {
            si_err(SI_ERR_UNSUPPORTED, "CPU: '%s' has a run-time shape", val->name);
            return -1;
        }
        dnnl_memory_desc_t pmd;
        int64_t d[DNNL_MAX_NDIMS];
        for (int i = 0; i < want->ndims; i++) d[i] = want->dims[i];
        cpu_md_plain_dt(&pmd, want->ndims, d, cpu_dnnl_type(val->dtype));
        if (dnnl_memory_desc_get_size(&pmd) != cpu_value_nbytes(val)) {
            si_err(SI_ERR_INTERNAL, "CPU: '%s' seen with another size", val->name);
            return -1;
        }
        if (dnnl_memory_desc_equal(&pmd, want)) return cpu_pb_alias(b, pb, want);
        src = cpu_pb_alias(b, pb, &pmd);
    }
    int dst = src < 0 ? -1 : cpu_pb_internal_md(b, want);
    if (dst < 0 || cpu_pb_emit_reorder(b, val->producer, src, dst)) return -1;
    return dst;
}

// --- DynamicQuantizeLinear ------------------------------------------------------------------------------------

typedef struct dql_job {
    const float *x;
    uint8_t *y;
    int64_t n;
    float lo[MAX_THR], hi[MAX_THR];
    float scale, zp;
} dql_job;

/* Scalar versions (any x86-64, and the tails of the vector ones). */
static void minmax_scalar(const float *x, int64_t n, float *lo, float *hi) {
    float l = *lo, h = *hi;
    for (int64_t i = 0; i < n; i++) { /* NaN compares false and is skipped */
        l = x[i] < l ? x[i] : l;
        h = x[i] > h ? x[i] : h;
    }
    *lo = l;
    *hi = h;
}

/* saturate(round(x / scale) + zp): the division and ties-to-even rounding of the reference kernel (the
 * 1.5 * 2^23 addition rounds a float below 2^22 to an integer in the default rounding mode), NaN -> zp. */
static void quant_scalar(const float *x, uint8_t *y, int64_t n, float scale, float zp) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        v = v != v ? 0.0f : v < -1024.0f ? -1024.0f : v > 1024.0f ? 1024.0f : v;
        v = (v + 12582912.0f) - 12582912.0f + zp;
        y[i] = (uint8_t)(v < 0.0f ? 0 : v > 255.0f ? 255 : (int)v);
    }
}

/* AVX2 versions (gcc does not vectorise the NaN-exact selects of the scalar ones). */
__attribute__((target("avx2"))) static void minmax_avx2(const float *x, int64_t n, float *lo, float *hi) {
    __m256 l0 = _mm256_setzero_ps(), h0 = l0, l1 = l0, h1 = l0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) { /* min_ps(v, m) returns m when v is NaN */
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        l0 = _mm256_min_ps(a, l0), h0 = _mm256_max_ps(a, h0);
        l1 = _mm256_min_ps(b, l1), h1 = _mm256_max_ps(b, h1);
    }
    float lv[8], hv[8];
    _mm256_storeu_ps(lv, _mm256_min_ps(l0, l1));
    _mm256_storeu_ps(hv, _mm256_max_ps(h0, h1));
    float l = 0, h = 0;
    for (int k = 0; k < 8; k++) l = lv[k] < l ? lv[k] : l, h = hv[k] > h ? hv[k] : h;
    minmax_scalar(x + i, n - i, &l, &h);
    *lo = l;
    *hi = h;
}

__attribute__((target("avx2"))) static void quant_avx2(const float *x, uint8_t *y, int64_t n, float scale, float zp) {
    const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zp), lo = _mm256_set1_ps(-1024.0f), hi = _mm256_set1_ps(1024.0f);
    const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
        v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v); /* NaN -> 0 */
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
        __m256i q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(y + i), _mm_packus_epi16(w, w));
    }
    quant_scalar(x + i, y + i, n - i, scale, zp);
}

static bool have_avx2(void) { return __builtin_cpu_supports("avx2"); }
static bool have_avx512(void) { return __builtin_cpu_supports("avx512f"); }

static void minmax_range(const float *x, int64_t n, float *lo, float *hi) {
    if (have_avx2()) {
        minmax_avx2(x, n, lo, hi);
        return;
    }
    *lo = *hi = 0;
    minmax_scalar(x, n, lo, hi);
}

static void quant_range(const float *x, uint8_t *y, int64_t n, float scale, float zp) {
    if (have_avx2()) quant_avx2(x, y, n, scale, zp);
    else quant_scalar(x, y, n, scale, zp);
}

static void range_of(int64_t n, int ithr, int nthr, int64_t *b0, int64_t *b1) {
    *b0 = n * ithr / nthr;
    *b1 = n * (ithr + 1) / nthr;
}

static void dql_minmax(void *arg, int ithr, int nthr) {
    dql_job *j = arg;
    int64_t b0, b1;
    range_of(j->n, ithr, nthr, &b0, &b1);
    if (ithr < MAX_THR) minmax_range(j->x + b0, b1 - b0, &j->lo[ithr], &j->hi[ithr]);
}

static void dql_quant(void *arg, int ithr, int nthr) {
    dql_job *j = arg;
    int64_t b0, b1;
    range_of(j->n, ithr, nthr, &b0, &b1);
    quant_range(j->x + b0, j->y + b0, b1 - b0, j->scale, j->zp);
}

/* bufs: x, y, y_scale, y_zero_point; ctx: the element count. */
static si_result dql_kernel(const void *ctx, void *const *bufs, int threads) {
    dql_job j;
    memset(&j, 0, sizeof j);
    j.x = bufs[0];
    j.y = bufs[1];
    j.n = *(const int64_t *)ctx;
    int nthr = j.n < 65536 ? 1 : SI_MIN(threads, MAX_THR);
    cpu_parallel(nthr, dql_minmax, &j);
    float lo = 0, hi = 0;
    for (int i = 0; i < MAX_THR; i++) {
        lo = j.lo[i] < lo ? j.lo[i] : lo;
        hi = j.hi[i] > hi ? j.hi[i] : hi;
    }
    uint8_t zp;
    si_dql_params(lo, hi, &j.scale, &zp);
    j.zp = zp;
    cpu_parallel(nthr, dql_quant, &j);
    *(float *)bufs[2] = j.scale;
    *(uint8_t *)bufs[3] = zp;
    return SI_OK;
}

si_result cpu_lower_dynamic_quantize(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in != 1 || nd->in[0] < 0 || nd->n_out != 3) return cpu_unsupported();
    for (int k = 0; k < 3; k++)
        if (nd->out[k] < 0 || !cpu_value_static(&g->values[nd->out[k]])) return cpu_unsupported();
    const si_val *X = &g->values[nd->in[0]];
    if (X->dtype != SI_F32 || X->const_val || !static_nonempty(X)) return cpu_unsupported();
    int src = cpu_pb_existing(b, nd->in[0]);
    if (src < 0) return SI_ERR_INTERNAL;
    const cpu_buf *sb = &b->p->bufs[src];
    int64_t count = si_shape_count(X->ndim, X->dims);
    /* any dense layout without padding: the kernel is element-wise apart from the global min/max */
    if (sb->dyn || sb->md.data_type != dnnl_f32 || sb->md.format_kind != dnnl_blocked || sb->md.offset0 ||
        dnnl_memory_desc_get_size(&sb->md) != (size_t)count * sizeof(float))
        src = cpu_pb_plain(b, nd->in[0]);
    if (src < 0) return SI_ERR_INTERNAL;
    dnnl_memory_desc_t ymd = b->p->bufs[src].md, smd, zmd;
    ymd.data_type = dnnl_u8;
    cpu_md_plain_dt(&smd, 0, NULL, dnnl_f32);
    cpu_md_plain_dt(&zmd, 0, NULL, dnnl_u8);
    int64_t *ctx = cpu_pb_own(b, sizeof(int64_t));
    if (!ctx) return SI_ERR_NO_MEM;
    *ctx = count;
    int out[3] = {cpu_pb_new_out(b, nd->out[0], &ymd), cpu_pb_new_out(b, nd->out[1], &smd), cpu_pb_new_out(b, nd->out[2], &zmd)};
    if (out[0] < 0 || out[1] < 0 || out[2] < 0) return SI_ERR_NO_MEM;
    si_result s = cpu_pb_emit_fn(b, n, "DynamicQuantizeLinear", dql_kernel, ctx, &src, 1, out, 3);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

// --- zero points ------------------------------------------------------------------------------------------------

/* bufs: a uint8/int8 zero point, its int32 copy; ctx: 1 when the zero point is signed. */
static si_result zp_kernel(const void *ctx, void *const *bufs, int threads) {
    (void)threads;
    *(int32_t *)bufs[1] = *(const int *)ctx ? *(const int8_t *)bufs[0] : *(const uint8_t *)bufs[0];
    return SI_OK;
}

/* An int32 [1] buffer holding the zero point value zv (-1: absent, 0) for a run-time zero-point attribute. */
static int zp_buffer(cpu_pb *b, int n, int zv) {
    dnnl_memory_desc_t md;
    int64_t one = 1;
    cpu_md_plain_dt(&md, 1, &one, dnnl_s32);
    const si_tensor *c = zv >= 0 ? b->g->values[zv].const_val : NULL;
    if (zv < 0 || c) {
        int32_t *v = cpu_pb_own(b, sizeof(int32_t));
        if (!v) return -1;
        *v = c ? (int32_t)si_load_i64(c->dtype, c->data, 0) : 0;
        return cpu_pb_const_buf(b, v, &md);
    }
    int *ctx = cpu_pb_own(b, sizeof(int));
    int src = ctx ? cpu_pb_plain(b, zv) : -1;
    int dst = src < 0 ? -1 : cpu_pb_internal_md(b, &md);
    if (dst < 0) return -1;
    *ctx = b->g->values[zv].dtype == SI_I8;
    if (cpu_pb_emit_fn(b, n, "zero point", zp_kernel, ctx, &src, 1, &dst, 1)) return -1;
    return dst;
}

/* A zero point input k of node nd that the primitive can take: absent, a scalar constant, or a scalar value
 * computed at run time, of element type dt. */
static bool scalar_zp_ok(const si_graph *g, const si_node *nd, int k, si_dtype dt) {
    if (k >= nd->n_in || nd->in[k] < 0) return true;
    const si_val *z = &g->values[nd->in[k]];
    return z->dtype == dt && cpu_value_static(z) && si_shape_count(z->ndim, z->dims) == 1 && (!z->const_val || z->const_val->data);
}

// --- the dequantizing chain: Cast(to float) -> Mul(scale product) -> ... -----------------------------------------

typedef struct dq_chain {
    int cast, mul;   /* nodes, -1 when the product is not dequantized this way */
    int scale;       /* the scale product's value */
    int64_t n_scale; /* 1 or one per output channel */
} dq_chain;

/* y (an int32 product of rank r with channels at axis ch, nch of them) followed by Cast to float32 and a Mul by a
 * float32 scale that holds one value or one per channel (broadcast along ch). */
static void find_dq_chain(cpu_pb *b, int y, int ch, int64_t nch, dq_chain *q) {
    const si_graph *g = b->g;
    q->cast = q->mul = q->scale = -1;
    int cast = sole_consumer(b, y);
    if (cast < 0 || b->no_fusion) return;
    const si_node *cn = &g->nodes[cast];
    if (!cpu_is_op(cn, SI_OP_CAST) || si_attr_int(cn, "to", 0) != SI_F32 || cn->n_out != 1) return;
    int mul = sole_consumer(b, cn->out[0]);
    if (mul < 0) return;
    const si_node *mn = &g->nodes[mul];
    if (!cpu_is_op(mn, SI_OP_MUL) || mn->n_in != 2 || mn->n_out != 1) return;
    int sv = mn->in[0] == cn->out[0] ? mn->in[1] : mn->in[0];
    if (sv == cn->out[0]) return;
    const si_val *S = &g->values[sv], *Y = &g->values[y], *O = &g->values[mn->out[0]];
    if (S->dtype != SI_F32 || !cpu_value_static(S)) return;
    if (O->dtype != SI_F32 || O->ndim != Y->ndim || memcmp(O->dims, Y->dims, sizeof(int64_t) * (size_t)Y->ndim)) return;
    int64_t cnt = si_shape_count(S->ndim, S->dims);
    if (cnt != 1) { /* one per channel: every other dimension 1 (right-aligned) */
        if (S->ndim > Y->ndim || cnt != nch) return;
        for (int i = 0; i < S->ndim; i++) {
            int ax = i + (Y->ndim - S->ndim);
            if (S->dims[i] != 1 && ax != ch) return;
        }
    }
    /* the scale product (Mul(x_scale, w_scale)) usually comes after the product in the graph: compute it first */
    if (!S->const_val && b->vbuf[sv] < 0 && (S->producer < 0 || cpu_pb_lower_now(b, S->producer) || b->vbuf[sv] < 0)) {
        si_err_clear();
        return;
    }
    q->cast = cast;
    q->mul = mul;
    q->scale = sv;
    q->n_scale = cnt;
}

/* The chain of a dequantized product: optional sum (the correction written into dst beforehand), the binary Mul
 * by the scale (a first group that is never dropped), then whatever cpu_chain absorbs after the Mul. */
static void dq_chain_init(cpu_pb *b, cpu_chain *c, const dq_chain *q, int r, const int64_t *pdims, int ch, bool sum) {
    cpu_chain_init(c, b, q->mul, r, pdims, -1, false);
    if (sum) c->po[c->n_po++] = (cpu_po){.kind = PO_SUM, .alpha = 1.0f};
    cpu_po *p = &c->po[c->n_po++];
    memset(p, 0, sizeof *p);
    p->kind = PO_BINARY;
    p->alg = dnnl_binary_mul;
    p->value = q->scale;
    p->ndim = r;
    for (int i = 0; i < r; i++) p->dims[i] = q->n_scale > 1 && i == ch ? q->n_scale : 1;
    c->grp[0].node_end = 0;
    c->grp[0].po_end = c->n_po;
    c->grp[0].out = b->g->nodes[q->mul].out[0];
    c->grp[0].fold = true;
    snprintf(c->grp[0].name, sizeof c->grp[0].name, "Cast+Mul");
    c->n_groups = 1;
    cpu_chain_extend(b, c);
}

bool si_cpu_int8_exact(void) {
    static _Atomic int known; /* 0 not asked yet, 1 yes, 2 no (every thread that asks first computes the same answer) */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (!k) {
        const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
        const bool vnni = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_vnni) == (unsigned)dnnl_cpu_isa_avx512_core_vnni;
        const char *e = getenv("SI_CPU_NO_VNNI");
        k = vnni && !(e && *e && strcmp(e, "0")) ? 1 : 2;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 1;
}

/* A pair of u8 x s8 products in int16 cannot saturate: 2 * 255 * 64 = 32640. */
#define W7_LO (-64)
#define W7_HI 64

bool cpu_int8_weights_exact(const si_tensor *W, const si_tensor *WZ, bool conv) {
    if (si_cpu_int8_exact()) return true;
    if (!W || !W->data || (W->dtype != SI_U8 && W->dtype != SI_I8) || (WZ && (!WZ->data || WZ->dtype != W->dtype))) return false;
    const int64_t wn = si_tensor_count(W), nz = WZ ? si_tensor_count(WZ) : 1;
    if (nz != 1 && !(conv && W->ndim > 0 && nz == W->dims[0])) return false;
    const int64_t per = nz == 1 || wn == 0 ? SI_MAX(wn, 1) : wn / nz;
    for (int64_t i = 0; i < wn; i++) {
        const int64_t v = si_load_i64(W->dtype, W->data, i) - (WZ ? si_load_i64(WZ->dtype, WZ->data, i / per) : 0);
        if (v < W7_LO || v > W7_HI) return false;
    }
    return true;
}

/* Whether oneDNN's product of these packed s8 weights (and no weights zero point) is exact on this CPU. */
static bool w8_exact(const int8_t *w, int64_t n) {
    if (si_cpu_int8_exact()) return true;
    for (int64_t i = 0; i < n; i++)
        if (w[i] < W7_LO || w[i] > W7_HI) return false;
    return true;
}

/* Whether a convolution of x of type xt is exact with exact weights: without VNNI an int8 input's convolution was
 * one unit off in the op table (test_device_ops, group int8_w7) even with 7-bit weights (oneDNN scales such weights
 * by 0.5 there, as far as we can tell); uint8 inputs only. */
static bool conv_src_exact(si_dtype xt) { return si_cpu_int8_exact() || xt == SI_U8; }

/* Primitive descriptor for op_desc with the chain's post-ops and the zero points (src at run time; weights a
 * constant, when wzp is not NULL); drops post-op groups while oneDNN refuses them or only has its reference
 * implementation. exact: the weights' products are exact on this CPU (see the top); UNSUPPORTED when not. */
static si_result q_create_pd(cpu_pb *b, cpu_chain *c, const void *op_desc, bool src_zp, const int32_t *wzp, bool exact, dnnl_primitive_desc_t *pd,
                             const char *nname) {
    if (!exact) return SI_ERR_UNSUPPORTED; /* saturating int16 pairs without VNNI (see the top) */
    for (;;) {
        dnnl_primitive_attr_t attr = cpu_chain_attr(c, 1.0f);
        if (!attr) return SI_ERR_NO_MEM;
        int32_t rt = DNNL_RUNTIME_S32_VAL;
        dnnl_status_t st = src_zp ? dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &rt) : dnnl_success;
        if (st == dnnl_success && wzp) st = dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_WEIGHTS, 1, 0, wzp);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, op_desc, attr, b->eng, NULL);
        dnnl_primitive_attr_destroy(attr);
        if (st == dnnl_success && !cpu_pd_is_ref(*pd)) return SI_OK;
        if (st == dnnl_success) dnnl_primitive_desc_destroy(*pd);
        else if (st != dnnl_unimplemented && st != dnnl_invalid_arguments) return cpu_dnnl_err(st, "primitive descriptor", nname);
        *pd = NULL;
        if (!c || !cpu_chain_truncate(c)) return SI_ERR_UNSUPPORTED;
    }
}

/* Emit the product's step: args holds SRC, WEIGHTS and the zero points; the chain's operands and DST are added.
 * dst: the destination buffer (already written by the correction step when the chain sums into it), or -1. */
static si_result q_finish(cpu_pb *b, int n, cpu_chain *c, const dq_chain *q, dnnl_primitive_desc_t pd, cpu_arg *args, int na, int dst,
                          const char *anchor) {
    si_result s = c ? cpu_chain_args(b, c, args, &na) : SI_OK;
    if (!s && dst < 0) {
        int out = c ? cpu_chain_out(c) : b->g->nodes[n].out[0];
        dst = cpu_pb_new_out(b, out, cpu_pd_md(pd, dnnl_query_dst_md));
        if (dst < 0) s = SI_ERR_NO_MEM;
    }
    if (s) {
        dnnl_primitive_desc_destroy(pd);
        return s;
    }
    args[na].arg = DNNL_ARG_DST;
    args[na++].buf = dst;
    char name[96];
    if (c) {
        char tail[96];
        cpu_chain_name(c, "", tail, sizeof tail);
        snprintf(name, sizeof name, "%s%s", anchor, tail);
    } else {
        snprintf(name, sizeof name, "%s", anchor);
    }
    s = cpu_pb_emit_dnnl(b, n, name, pd, args, na);
    if (s) return s;
    cpu_pb_consume(b, n);
    if (c) {
        cpu_pb_consume(b, q->cast);
        cpu_chain_consume(b, c);
    }
    return SI_OK;
}

// --- ConvInteger ------------------------------------------------------------------------------------------------

/* The correction (128 - wz) * S of uint8 weights run as w - 128 (see the file comment), written into the
 * channels-last float32 destination for every output channel of the window's group. */
typedef struct corr_ctx {
    nn_geom g;           /* 3-D geometry with leading unit dims */
    int64_t N, C, G, OC; /* batch, input channels, groups, output channels */
    float k;             /* 128 - wz */
    bool sx;             /* x is int8 */
} corr_ctx;

typedef struct corr_job {
    const corr_ctx *c;
    const uint8_t *x;
    int32_t zp;
    float *dst;
    int32_t *cs;  /* per input pixel and group: the sum of (x - zp) over the group's channels */
    int32_t *acc; /* per thread: one output row of window sums (OW * G) */
} corr_job;

/* Sum of n bytes (unsigned, or signed when sx): a loop gcc vectorises. */
CPU_TARGET_CLONES("avx2", "default") static int32_t byte_sum(const uint8_t *p, int64_t n, bool sx) {
    uint32_t s = 0;
    if (sx) { /* int8 v = (v ^ 0x80) - 128 read as uint8 */
        for (int64_t i = 0; i < n; i++) s += (uint8_t)(p[i] ^ 0x80);
        return (int32_t)s - 128 * (int32_t)n;
    }
    for (int64_t i = 0; i < n; i++) s += p[i];
    return (int32_t)s;
}

static void corr_sums(void *arg, int ithr, int nthr) {
    const corr_job *j = arg;
    const corr_ctx *c = j->c;
    const int64_t pix = c->N * nn_geom_in_size(&c->g), cg = c->C / c->G;
    int64_t b0, b1;
    range_of(pix, ithr, nthr, &b0, &b1);
    for (int64_t p = b0; p < b1; p++) {
        const uint8_t *xp = j->x + p * c->C;
        for (int64_t gi = 0; gi < c->G; gi++) j->cs[p * c->G + gi] = byte_sum(xp + gi * cg, cg, c->sx) - (int32_t)cg * j->zp;
    }
}

CPU_TARGET_CLONES("avx2", "default") static void corr_fill(void *arg, int ithr, int nthr) {
    const corr_job *j = arg;
    const corr_ctx *c = j->c;
    const nn_geom *g = &c->g;
    const int64_t OW = g->out[2], G = c->G, rows = c->N * g->out[0] * g->out[1], ocg = c->OC / G, sw = g->s[2];
    int32_t *acc = j->acc + (int64_t)ithr * OW * G;
    int64_t b0, b1;
    range_of(rows, ithr, nthr, &b0, &b1);
    for (int64_t row = b0; row < b1; row++) {
        const int64_t nb = row / (g->out[0] * g->out[1]), od = (row / g->out[1]) % g->out[0], oh = row % g->out[1];
        memset(acc, 0, sizeof(int32_t) * (size_t)(OW * G));
        for (int64_t ka = 0; ka < g->k[0]; ka++) {
            const int64_t id = od * g->s[0] - g->pb[0] + ka * g->d[0];
            if (id < 0 || id >= g->in[0]) continue;
            for (int64_t kb = 0; kb < g->k[1]; kb++) {
                const int64_t ih = oh * g->s[1] - g->pb[1] + kb * g->d[1];
                if (ih < 0 || ih >= g->in[1]) continue;
                const int32_t *cr = j->cs + ((nb * g->in[0] + id) * g->in[1] + ih) * g->in[2] * G;
                for (int64_t ke = 0; ke < g->k[2]; ke++) {
                    const int64_t off = ke * g->d[2] - g->pb[2];
                    int64_t lo = 0, hi = OW; /* outputs whose tap lies inside the row */
                    while (lo < OW && off + lo * sw < 0) lo++;
                    while (hi > lo && off + (hi - 1) * sw >= g->in[2]) hi--;
                    if (G == 1 && sw == 1) {
                        const int32_t *src = cr + off;
                        for (int64_t ow = lo; ow < hi; ow++) acc[ow] += src[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++)
                            for (int64_t gi = 0; gi < G; gi++) acc[ow * G + gi] += cr[(off + ow * sw) * G + gi];
                    }
                }
            }
        }
        float *d = j->dst + row * OW * c->OC;
        for (int64_t ow = 0; ow < OW; ow++)
            for (int64_t gi = 0; gi < G; gi++) {
                const float v = c->k * (float)acc[ow * G + gi];
                float *dg = d + ow * c->OC + gi * ocg;
                for (int64_t o = 0; o < ocg; o++) dg[o] = v;
            }
    }
}

/* bufs: x (channels-last), zero point (int32), dst (channels-last float32), scratch (int32 per pixel and group). */
static si_result corr_kernel(const void *ctx, void *const *bufs, int threads) {
    const corr_ctx *c = ctx;
    int32_t *cs = bufs[3];
    corr_job j = {.c = c, .x = bufs[0], .zp = *(const int32_t *)bufs[1], .dst = bufs[2], .cs = cs,
                  .acc = cs + c->N * nn_geom_in_size(&c->g) * c->G};
    int nthr = SI_MIN(threads, MAX_THR);
    cpu_parallel(nthr, corr_sums, &j);
    cpu_parallel(nthr, corr_fill, &j);
    return SI_OK;
}

/* The geometry of convolution node nd (auto_pad, pads, strides, dilations) exactly as the reference kernel reads
 * it, for input X, weights W and output Y of rank r = 2 + spatial dims; false when it does not give Y's shape. */
static bool conv_geom(const si_node *nd, const si_val *X, const si_val *Y, const si_tensor *W, nn_geom *geo) {
    const int r = X->ndim, sp = r - 2;
    si_tensor xd = {.dtype = X->dtype, .ndim = r};
    memcpy(xd.dims, X->dims, sizeof xd.dims);
    const si_tensor *ins[1] = {&xd};
    si_kctx kc = {.node = nd, .opset = nd->opset, .n_in = 1, .in = ins};
    if (si_geom_init(&kc, sp, X->dims + 2, W->dims + 2, false, geo)) {
        si_err_clear();
        return false;
    }
    for (int i = 0; i < sp; i++)
        if (geo->out[NN_SP - sp + i] != Y->dims[2 + i]) return false;
    return true;
}

/* The lower bound a Relu folded before the output's QuantizeLinear puts on the quantized output: its zero point
 * (value yz, -1: 0), into *qlo (INT32_MIN without a Relu); false when the zero point is not a constant. */
static bool relu_floor(const si_graph *g, bool relu, int yz, int32_t *qlo) {
    *qlo = INT32_MIN;
    if (!relu) return true;
    const si_tensor *z = yz >= 0 ? g->values[yz].const_val : NULL;
    if (yz >= 0 && (!z || !z->data)) return false;
    *qlo = z ? (int32_t)si_load_i64(z->dtype, z->data, 0) : 0;
    return true;
}

/* Channels-last tag of a rank-3..5 tensor. */
static dnnl_format_tag_t channels_last(int r) { return r == 3 ? dnnl_acb : r == 4 ? dnnl_acdb : dnnl_acdeb; }

/* What ConvInteger and MatMulInteger share: input 0 (*X) 8-bit integers computed at run time with a static non-empty
 * shape, constant 8-bit weights (*W) with their constant zero point (*WZ, may be NULL), a scalar input zero point,
 * one int32 output (*Y) with a static non-empty shape. */
static bool int8_io(const si_graph *g, const si_node *nd, const si_val **X, const si_tensor **W, const si_tensor **WZ, const si_val **Y) {
    if (nd->n_in < 2 || nd->n_out != 1 || nd->out[0] < 0 || nd->in[0] < 0) return false;
    *X = &g->values[nd->in[0]];
    *Y = &g->values[nd->out[0]];
    *W = cpu_const_input(g, nd, 1);
    *WZ = cpu_const_input(g, nd, 3);
    if (((*X)->dtype != SI_U8 && (*X)->dtype != SI_I8) || (*X)->const_val || !static_nonempty(*X)) return false;
    if (!*W || !(*W)->data || ((*W)->dtype != SI_U8 && (*W)->dtype != SI_I8)) return false;
    if ((*Y)->dtype != SI_I32 || !static_nonempty(*Y) || !scalar_zp_ok(g, nd, 2, (*X)->dtype)) return false;
    return !(nd->n_in > 3 && nd->in[3] >= 0 && (!*WZ || (*WZ)->dtype != (*W)->dtype || !(*WZ)->data));
}

si_result cpu_lower_conv_integer(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    const si_tensor *W, *WZ;
    if (!int8_io(g, nd, &X, &W, &WZ, &Y)) return cpu_unsupported();
    const int r = X->ndim, sp = r - 2;
    if (r < 3 || r > 5 || W->ndim != r || Y->ndim != r) return cpu_unsupported();
    const int64_t OC = W->dims[0], G = si_attr_int(nd, "group", 1), C = X->dims[1];
    if (WZ && si_shape_count(WZ->ndim, WZ->dims) != 1 && si_shape_count(WZ->ndim, WZ->dims) != OC) return cpu_unsupported();
    if (G < 1 || C % G || OC % G || W->dims[1] * G != C || Y->dims[1] != OC) return cpu_unsupported();
    /* the geometry exactly as the reference kernel reads it (auto_pad, pads, strides, dilations) */
    nn_geom geo;
    if (!conv_geom(nd, X, Y, W, &geo)) return cpu_unsupported();

    /* s8 weights: w - wz when every value fits, else w - offset (128 for uint8) and the correction */
    const int64_t wn = si_shape_count(W->ndim, W->dims), per_oc = wn / OC;
    int8_t *w8 = si_malloc((size_t)wn + 1);
    if (!w8) return si_err(SI_ERR_NO_MEM, "CPU: out of memory packing weights");
    bool fits = true;
    for (int64_t i = 0; i < wn && fits; i++) {
        int64_t z = WZ ? si_load_i64(WZ->dtype, WZ->data, si_shape_count(WZ->ndim, WZ->dims) == 1 ? 0 : i / per_oc) : 0;
        int64_t v = si_load_i64(W->dtype, W->data, i) - z;
        fits = v >= -128 && v <= 127;
        w8[i] = (int8_t)v;
    }
    float kcorr = 0;
    if (!fits) {
        int64_t off = W->dtype == SI_U8 ? 128 : 0, z0 = si_load_i64(WZ->dtype, WZ->data, 0);
        for (int64_t i = 1; i < si_shape_count(WZ->ndim, WZ->dims); i++)
            if (si_load_i64(WZ->dtype, WZ->data, i) != z0) { /* per-channel correction: not as one sum */
                si_free(w8);
                return cpu_unsupported();
            }
        for (int64_t i = 0; i < wn; i++) w8[i] = (int8_t)(si_load_i64(W->dtype, W->data, i) - off);
        kcorr = (float)(off - z0);
    }
    dq_chain q;
    find_dq_chain(b, nd->out[0], 1, OC, &q);
    if (kcorr != 0 && q.mul < 0) { /* the correction rides on the float32 destination */
        si_free(w8);
        return cpu_unsupported();
    }

    dnnl_dims_t sd, wd, dd, st, dl, pl, pr;
    for (int i = 0; i < r; i++) sd[i] = X->dims[i], dd[i] = Y->dims[i];
    int wr = cpu_conv_weight_dims(r, G, W->dims, wd);
    for (int i = 0; i < sp; i++) {
        int j = NN_SP - sp + i;
        st[i] = geo.s[j], dl[i] = geo.d[j] - 1, pl[i] = geo.pb[j], pr[i] = geo.pe[j];
    }
    dnnl_memory_desc_t smd, wmd, dmd, wplain;
    dnnl_memory_desc_init_by_tag(&smd, r, sd, X->dtype == SI_U8 ? dnnl_u8 : dnnl_s8, channels_last(r));
    dnnl_memory_desc_init_by_tag(&wmd, wr, wd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dmd, r, dd, q.mul >= 0 ? dnnl_f32 : dnnl_s32, channels_last(r));
    {
        int64_t wdd[DNNL_MAX_NDIMS];
        for (int i = 0; i < wr; i++) wdd[i] = wd[i];
        cpu_md_plain_dt(&wplain, wr, wdd, dnnl_s8);
    }
    dnnl_convolution_desc_t cd;
    if (dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &smd, &wmd, NULL, &dmd, st, dl, pl,
                                                   pr) != dnnl_success) {
        si_free(w8);
        return cpu_unsupported();
    }
    cpu_chain c;
    if (q.mul >= 0) dq_chain_init(b, &c, &q, r, Y->dims, 1, kcorr != 0);
    dnnl_primitive_desc_t pd;
    si_result s = q_create_pd(b, q.mul >= 0 ? &c : NULL, &cd, true, NULL, w8_exact(w8, wn) && conv_src_exact(X->dtype), &pd, nd->name);
    if (s) {
        si_free(w8);
        if (q.mul >= 0) cpu_chain_free(&c);
        return s;
    }
    int xb = typed_in(b, nd->in[0], cpu_pd_md(pd, dnnl_query_src_md));
    uint64_t fp = cpu_fp(0, &kcorr, sizeof kcorr);
    if (WZ && WZ->data) fp = cpu_fp(fp, WZ->data, WZ->nbytes);
    cpu_skey wk = {.node = n, .tag = "qconv.w", .fp = fp, .src = W};
    int wb = xb < 0 ? -1 : cpu_pb_pack(b, &wk, w8, NULL, NULL, &wplain, cpu_pd_md(pd, dnnl_query_weights_md));
    int zb = wb < 0 ? -1 : zp_buffer(b, n, nd->n_in > 2 ? nd->in[2] : -1);
    si_free(w8);
    int dst = -1;
    if (zb >= 0 && kcorr != 0) {
        corr_ctx *cc = cpu_pb_own(b, sizeof *cc);
        dnnl_memory_desc_t csmd;
        int64_t csn = X->dims[0] * nn_geom_in_size(&geo) * G + MAX_THR * geo.out[2] * G; /* sums, then rows per thread */
        cpu_md_plain_dt(&csmd, 1, &csn, dnnl_s32);
        int scratch = cc ? cpu_pb_internal_md(b, &csmd) : -1;
        dst = scratch < 0 ? -1 : cpu_pb_new_out(b, cpu_chain_out(&c), cpu_pd_md(pd, dnnl_query_dst_md));
        if (dst >= 0) {
            *cc = (corr_ctx){.g = geo, .N = X->dims[0], .C = C, .G = G, .OC = OC, .k = kcorr, .sx = X->dtype == SI_I8};
            int ins2[2] = {xb, zb}, outs2[2] = {dst, scratch};
            if (cpu_pb_emit_fn(b, n, "ConvInteger correction", corr_kernel, cc, ins2, 2, outs2, 2)) dst = -1;
        }
        if (dst < 0) zb = -1;
    }
    if (zb < 0) {
        dnnl_primitive_desc_destroy(pd);
        if (q.mul >= 0) cpu_chain_free(&c);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zb}};
    s = q_finish(b, n, q.mul >= 0 ? &c : NULL, &q, pd, args, 3, dst, kcorr != 0 ? "ConvInteger(u8w)" : "ConvInteger");
    if (q.mul >= 0) cpu_chain_free(&c);
    return s;
}

// --- MatMulInteger ----------------------------------------------------------------------------------------------

typedef struct w8_fill_ctx {
    const si_tensor *B;
    int64_t off;
} w8_fill_ctx;

/* The s8 weights of a matrix product: B - off (cpu_pb_pack calls it only when the store has no packed copy yet: a
 * plan for a new shape does not convert them again). */
static void w8_fill(const void *ctx, void *dst) {
    const w8_fill_ctx *c = ctx;
    const int64_t n = si_tensor_count(c->B);
    int8_t *w = dst;
    if (c->B->dtype == SI_I8 && !c->off) {
        memcpy(w, c->B->data, (size_t)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) w[i] = (int8_t)(si_load_i64(c->B->dtype, c->B->data, i) - c->off);
}

/* The offset a matrix product's weights B (one zero point, BZ or 0) are packed with: the zero point when every
 * B - BZ fits int8 (the primitive's weights zero point is then 0), else 128 for uint8 and 0 for int8, with the
 * weights zero point BZ - offset. *exact: oneDNN's product of them is exact on this CPU. */
static int64_t w8_offset(const si_tensor *B, const si_tensor *BZ, bool *exact) {
    const int64_t z = BZ ? si_load_i64(BZ->dtype, BZ->data, 0) : 0, n = si_tensor_count(B);
    bool fits = true;
    for (int64_t i = 0; i < n && fits; i++) {
        const int64_t v = si_load_i64(B->dtype, B->data, i) - z;
        fits = v >= -128 && v <= 127;
    }
    const int64_t off = fits ? z : B->dtype == SI_U8 ? 128 : 0;
    *exact = fits && cpu_int8_weights_exact(B, BZ, false);
    return off;
}

si_result cpu_lower_matmul_integer(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *A, *Y;
    const si_tensor *B, *BZ;
    if (!int8_io(g, nd, &A, &B, &BZ, &Y) || A->ndim < 2 || B->ndim != 2) return cpu_unsupported();
    if (BZ && si_shape_count(BZ->ndim, BZ->dims) != 1) return cpu_unsupported();
    const int64_t K = B->dims[0], N = B->dims[1], M = si_shape_count(A->ndim - 1, A->dims);
    if (A->dims[A->ndim - 1] != K) return cpu_unsupported();
    /* s8 weights: B - BZ where that fits, else uint8 ones shifted by 128, with the weights zero point shifted alike */
    bool exact;
    const int64_t off = w8_offset(B, BZ, &exact);
    int32_t wzp = (int32_t)((BZ ? si_load_i64(BZ->dtype, BZ->data, 0) : 0) - off);
    const w8_fill_ctx wf = {.B = B, .off = off};
    dq_chain q;
    find_dq_chain(b, nd->out[0], Y->ndim - 1, N, &q);
    int64_t sd[2] = {M, K}, wd[2] = {K, N}, dd[2] = {M, N};
    dnnl_memory_desc_t smd, wmd, dmd, wplain;
    cpu_md_plain_dt(&smd, 2, sd, A->dtype == SI_U8 ? dnnl_u8 : dnnl_s8);
    cpu_md_plain_dt(&wplain, 2, wd, dnnl_s8);
    cpu_md_plain_dt(&dmd, 2, dd, q.mul >= 0 ? dnnl_f32 : dnnl_s32);
    dnnl_dims_t wdd = {K, N};
    dnnl_memory_desc_init_by_tag(&wmd, 2, wdd, dnnl_s8, dnnl_format_tag_any);
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd) != dnnl_success) return cpu_unsupported();
    cpu_chain c;
    if (q.mul >= 0) dq_chain_init(b, &c, &q, 2, dd, 1, false);
    dnnl_primitive_desc_t pd;
    si_result s = q_create_pd(b, q.mul >= 0 ? &c : NULL, &md, true, wzp ? &wzp : NULL, exact, &pd, nd->name);
    if (s) {
        if (q.mul >= 0) cpu_chain_free(&c);
        return s;
    }
    int xb = typed_in(b, nd->in[0], &smd);
    cpu_skey wk = {.node = n, .tag = "qmm.w", .fp = cpu_fp(0, &off, sizeof off), .src = B};
    int wb = xb < 0 ? -1 : cpu_pb_pack(b, &wk, NULL, w8_fill, &wf, &wplain, cpu_pd_md(pd, dnnl_query_weights_md));
    int zb = wb < 0 ? -1 : zp_buffer(b, n, nd->n_in > 2 ? nd->in[2] : -1);
    if (zb < 0) {
        dnnl_primitive_desc_destroy(pd);
        if (q.mul >= 0) cpu_chain_free(&c);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    /* the destination is the plain [M, N] view of the output value */
    cpu_arg args[MAX_ARGS] = {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zb}};
    s = q_finish(b, n, q.mul >= 0 ? &c : NULL, &q, pd, args, 3, -1, "MatMulInteger");
    if (q.mul >= 0) cpu_chain_free(&c);
    return s;
}

// --- QLinearConv, QLinearMatMul -----------------------------------------------------------------------------------

/* s8 weights w - wz (wz one value, or one per output channel of per_oc weights each) when every difference fits,
 * else NULL. */
static int8_t *s8_weights(const si_tensor *W, const si_tensor *WZ, int64_t per_oc) {
    const int64_t wn = si_tensor_count(W), nz = WZ ? si_tensor_count(WZ) : 0;
    int8_t *w8 = si_malloc((size_t)wn + 1);
    if (!w8) return NULL;
    for (int64_t i = 0; i < wn; i++) {
        int64_t v = si_load_i64(W->dtype, W->data, i) - (WZ ? si_load_i64(WZ->dtype, WZ->data, nz == 1 ? 0 : i / per_oc) : 0);
        if (v < -128 || v > 127) {
            si_free(w8);
            return NULL;
        }
        w8[i] = (int8_t)v;
    }
    return w8;
}

/* The requantization of an int32 product, channels last: y = saturate(round_half_even(acc * m[c]) + zp), the
 * product in float32, exactly as the reference kernel (and ONNX Runtime) computes it; oneDNN's own requantization
 * rounds differently now and then, which a deep quantized net amplifies. */
typedef struct rq_ctx {
    const float *m; /* per channel */
    int64_t rows, C;
    bool s8; /* int8 output, else uint8 */
    const uint8_t *table; /* the element-wise ops folded after it (cpu_qlinear_follow), or NULL */
    const int32_t *bias;  /* per channel, added to the accumulator (QGemm's C), or NULL */
    bool f32;             /* float32 output (acc * m), no rounding (QGemm without y_scale) */
    const float *fbias;   /* f32: per channel, added to acc * m (a QDQ Gemm's float C), or NULL */
    int32_t qlo;          /* a lower bound on the output (a folded Relu: the zero point), INT32_MIN for none */
} rq_ctx;

typedef struct rq_job {
    const rq_ctx *c;
    const int32_t *acc;
    int32_t zp;
    void *y;
} rq_job;

/* 16 channels at a time: the product clamped to +-2^30 (beyond any 8-bit result, and exact in int32), rounded to
 * nearest even, the zero point added and the range clamped in int32, then narrowed. */
__attribute__((target("avx512f"))) static void rq_rows512(const rq_job *j, int64_t r0, int64_t r1) {
    const rq_ctx *c = j->c;
    const __m512i zp = _mm512_set1_epi32(j->zp), hi = _mm512_set1_epi32(c->s8 ? 127 : 255);
    const __m512i lo = _mm512_set1_epi32(SI_MAX(c->s8 ? -128 : 0, c->qlo));
    const __m512 flo = _mm512_set1_ps(-1073741824.0f), fhi = _mm512_set1_ps(1073741824.0f);
    for (int64_t r = r0; r < r1; r++) {
        const int32_t *a = j->acc + r * c->C;
        uint8_t *y = (uint8_t *)j->y + r * c->C;
        for (int64_t k = 0; k < c->C; k += 16) {
            const __mmask16 mk = c->C - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (c->C - k)) - 1);
            __m512i av = _mm512_maskz_loadu_epi32(mk, a + k);
            if (c->bias) av = _mm512_add_epi32(av, _mm512_maskz_loadu_epi32(mk, c->bias + k));
            __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(av), _mm512_maskz_loadu_ps(mk, c->m + k));
            if (c->f32) {
                if (c->fbias) p = _mm512_add_ps(p, _mm512_maskz_loadu_ps(mk, c->fbias + k));
                _mm512_mask_storeu_ps((float *)j->y + r * c->C + k, mk, p);
                continue;
            }
            p = _mm512_min_ps(_mm512_max_ps(p, flo), fhi);
            __m512i q = _mm512_cvt_roundps_epi32(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, zp), lo), hi);
            _mm512_mask_cvtepi32_storeu_epi8(y + k, mk, q);
        }
        if (c->table && !c->f32) cpu_lut8(c->table, y, y, c->C);
    }
}

/* The same on AVX2, 16 channels at a time (the last few through a padded copy). */
__attribute__((target("avx2,fma"))) static void rq16_256(const rq_ctx *c, const int32_t *a, const int32_t *bias, const float *m, const float *fb,
                                                         __m256i zp, __m256i lo, __m256i hi, void *out) {
    const __m256 flo = _mm256_set1_ps(-1073741824.0f), fhi = _mm256_set1_ps(1073741824.0f);
    __m256i q[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int h = 0; h < 2; h++) {
        __m256i av = _mm256_loadu_si256((const __m256i *)(a + 8 * h));
        if (bias) av = _mm256_add_epi32(av, _mm256_loadu_si256((const __m256i *)(bias + 8 * h)));
        __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(av), _mm256_loadu_ps(m + 8 * h));
        if (c->f32) {
            if (fb) p = _mm256_add_ps(p, _mm256_loadu_ps(fb + 8 * h));
            _mm256_storeu_ps((float *)out + 8 * h, p);
            continue;
        }
        p = _mm256_min_ps(_mm256_max_ps(p, flo), fhi);
        q[h] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(p), zp), lo), hi); /* nearest even */
    }
    if (c->f32) return;
    /* int32 -> int16 (exact: the values are 8-bit), lanes back in order, then -> 8 bits */
    __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
    __m256i bv = c->s8 ? _mm256_packs_epi16(w, w) : _mm256_packus_epi16(w, w);
    _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(_mm256_permute4x64_epi64(bv, 0xd8)));
}

__attribute__((target("avx2,fma"))) static void rq_rows256(const rq_job *j, int64_t r0, int64_t r1) {
    const rq_ctx *c = j->c;
    const __m256i zp = _mm256_set1_epi32(j->zp), hi = _mm256_set1_epi32(c->s8 ? 127 : 255);
    const __m256i lo = _mm256_set1_epi32(SI_MAX(c->s8 ? -128 : 0, c->qlo));
    const int64_t C = c->C, full = C & ~(int64_t)15, rest = C - full;
    int64_t t0 = r0; /* the first row the table has not mapped yet */
    for (int64_t r = r0; r < r1; r++) {
        const int32_t *a = j->acc + r * C;
        uint8_t *y = (uint8_t *)j->y + r * C;
        float *yf = (float *)j->y + r * C;
        for (int64_t k = 0; k < full; k += 16)
            rq16_256(c, a + k, c->bias ? c->bias + k : NULL, c->m + k, c->fbias ? c->fbias + k : NULL, zp, lo, hi,
                     c->f32 ? (void *)(yf + k) : (void *)(y + k));
        if (rest) {
            int32_t ta[16] = {0}, tb[16] = {0};
            float tm[16] = {0}, tf[16] = {0}, to[16];
            memcpy(ta, a + full, sizeof(int32_t) * (size_t)rest);
            memcpy(tm, c->m + full, sizeof(float) * (size_t)rest);
            if (c->bias) memcpy(tb, c->bias + full, sizeof(int32_t) * (size_t)rest);
            if (c->fbias) memcpy(tf, c->fbias + full, sizeof(float) * (size_t)rest);
            rq16_256(c, ta, c->bias ? tb : NULL, tm, c->fbias ? tf : NULL, zp, lo, hi, to);
            memcpy(c->f32 ? (void *)(yf + full) : (void *)(y + full), to, (c->f32 ? sizeof(float) : 1) * (size_t)rest);
        }
        /* the table over the rows done since, about 4 KiB at a time: still in L1, one call (not one per row) */
        if (c->table && !c->f32 && ((r + 1 - t0) * C >= 4096 || r + 1 == r1)) {
            uint8_t *yt = (uint8_t *)j->y + t0 * C;
            cpu_lut8(c->table, yt, yt, (r + 1 - t0) * C);
            t0 = r + 1;
        }
    }
}

static void rq_rows(void *arg, int ithr, int nthr) {
    const rq_job *j = arg;
    const rq_ctx *c = j->c;
    const float lo = (float)SI_MAX(c->s8 ? -128 : 0, c->qlo), hi = c->s8 ? 127.0f : 255.0f, zp = (float)j->zp;
    int64_t r0, r1;
    range_of(c->rows, ithr, nthr, &r0, &r1);
    if (have_avx512()) {
        rq_rows512(j, r0, r1);
        return;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        rq_rows256(j, r0, r1);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const int32_t *a = j->acc + r * c->C;
        for (int64_t k = 0; k < c->C; k++) {
            float p = (float)(int32_t)((uint32_t)a[k] + (uint32_t)(c->bias ? c->bias[k] : 0)) * c->m[k];
            if (c->f32) {
                ((float *)j->y)[r * c->C + k] = c->fbias ? p + c->fbias[k] : p;
                continue;
            }
            p = p < -1073741824.0f ? -1073741824.0f : p > 1073741824.0f ? 1073741824.0f : p;
            float v = __builtin_nearbyintf(p) + zp;
            v = v < lo ? lo : v > hi ? hi : v;
            uint8_t q = c->s8 ? (uint8_t)(int8_t)v : (uint8_t)v;
            ((uint8_t *)j->y)[r * c->C + k] = c->table ? c->table[q] : q;
        }
    }
}

/* bufs: the int32 product (channels last), the output zero point (int32), the output. */
static si_result rq_kernel(const void *ctx, void *const *bufs, int threads) {
    rq_job j = {.c = ctx, .acc = bufs[0], .zp = *(const int32_t *)bufs[1], .y = bufs[2]};
    cpu_parallel(SI_MIN(threads, MAX_THR), rq_rows, &j);
    return SI_OK;
}

/* The requantization multipliers x_scale * w_scale[m] / y_scale in float32 as the reference kernel computes them
 * (plan-owned), or NULL when a scale is not a constant float32 of the right size or does not divide. */
static float *requant_scales_of(cpu_pb *b, float alpha, const si_tensor *xs, const si_tensor *ws, const si_tensor *ys, int64_t M) {
    if (!xs || !ws || !xs->data || !ws->data || xs->dtype != SI_F32 || ws->dtype != SI_F32 || si_tensor_count(xs) != 1 ||
        (ys && (!ys->data || ys->dtype != SI_F32 || si_tensor_count(ys) != 1)))
        return NULL;
    const int64_t nw = si_tensor_count(ws);
    if (nw != 1 && nw != M) return NULL;
    const float x = *(const float *)xs->data, y = ys ? *(const float *)ys->data : 1.0f;
    if (y == 0.0f || !isfinite(y)) return NULL; /* the reference kernel names the error */
    float *m = cpu_pb_own(b, sizeof(float) * (size_t)M);
    if (!m) return NULL;
    for (int64_t i = 0; i < M; i++) {
        const float w = ((const float *)ws->data)[nw == 1 ? 0 : i];
        if (!isfinite(w)) return NULL;
        m[i] = alpha * x * w;
        if (ys) m[i] /= y;
    }
    return m;
}

/* The steps of an integer product: the oneDNN primitive (pd, args) into the int32 buffer acc, then the
 * requantization pass (a copy of rc0) into dst with the output zero point buffer zy; or, rc0 NULL, the primitive
 * alone, requantizing into dst itself (fused_rq_pd; its step is named NAME+requantize). Node n and the nodes in
 * also[0..n_also) are consumed. dst < 0 (a buffer that could not be made): pd is destroyed, the error returned. */
static si_result rq_emit(cpu_pb *b, int n, const char *name, dnnl_primitive_desc_t pd, cpu_arg *args, int nargs, int acc, int zy, int dst,
                         const rq_ctx *rc0, const char *rq_name, const int *also, int n_also) {
    rq_ctx *rc = dst < 0 || !rc0 ? NULL : cpu_pb_own(b, sizeof *rc);
    if (dst < 0 || (rc0 && !rc)) {
        dnnl_primitive_desc_destroy(pd);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    char fused[96];
    if (!rc0) {
        snprintf(fused, sizeof fused, "%s+requantize", name);
        name = fused;
    }
    si_result s = cpu_pb_emit_dnnl(b, n, name, pd, args, nargs);
    int rin[2] = {acc, zy};
    if (!s && rc) {
        *rc = *rc0;
        s = cpu_pb_emit_fn(b, n, rq_name, rq_kernel, rc, rin, 2, &dst, 1);
    }
    if (s) return s;
    cpu_pb_consume(b, n);
    for (int i = 0; i < n_also; i++) cpu_pb_consume(b, also[i]);
    return SI_OK;
}

/* The requantization done by the oneDNN primitive itself, with rq_rows' result: output scales m[oc] (the product
 * float(acc + bias) * m, as rq_rows computes it), an eltwise round to nearest even, then a Relu at a folded Relu's
 * floor (the zero point), then the output zero point (added to an integer, the float add is exact; oneDNN alone
 * would round p + zp, which now and then differs by one) and the saturation. Saves the int32 product's write and
 * read. NULL when oneDNN refuses it or has only its reference implementation; SI_NO_FUSED_REQUANT=1 turns it off. */
static dnnl_primitive_desc_t fused_rq_pd(cpu_pb *b, const void *op_desc, const int32_t *wzp, bool exact, const float *m, int64_t OC, int32_t qlo) {
    if (b->no_fusion || OC > INT32_MAX || getenv("SI_NO_FUSED_REQUANT") || !exact) return NULL; /* read at plan time only */
    dnnl_primitive_attr_t attr = cpu_chain_attr(NULL, 1.0f);
    if (!attr) {
        si_err_clear();
        return NULL;
    }
    int32_t rt = DNNL_RUNTIME_S32_VAL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t st = dnnl_primitive_attr_set_output_scales(attr, OC, 1 << 1, m);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &rt);
    if (st == dnnl_success && wzp) st = dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_WEIGHTS, 1, 0, wzp);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_DST, 1, 0, &rt);
    if (st == dnnl_success) st = dnnl_post_ops_create(&po);
    if (st == dnnl_success) st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_round, 0.0f, 0.0f);
    if (st == dnnl_success && qlo != INT32_MIN) st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, op_desc, attr, b->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return NULL;
    if (cpu_pd_is_ref(pd)) {
        dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    return pd;
}

/* The oneDNN int8 convolution (channels-last uint8/int8 in, int32 bias and input zero point in the primitive) into
 * int32, then the requantization pass (rq_kernel), channels-last uint8/int8 out, which the next one reads as it
 * is; or, without a folded table, the convolution requantizing itself (fused_rq_pd). n is the node whose
 * attributes give the geometry (QLinearConv or Conv). */
si_result cpu_qlconv_lower(cpu_pb *b, int n, const qlc_in *a) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X = &g->values[a->x], *Y = &g->values[a->y];
    const si_tensor *W = a->W, *WZ = a->WZ, *B = a->B;
    if ((X->dtype != SI_U8 && X->dtype != SI_I8) || X->const_val || !static_nonempty(X) || !static_nonempty(Y)) return cpu_unsupported();
    if (!W || !W->data || (W->dtype != SI_U8 && W->dtype != SI_I8) || (Y->dtype != SI_U8 && Y->dtype != SI_I8)) return cpu_unsupported();
    if ((WZ && (!WZ->data || WZ->dtype != W->dtype)) || (B && (!B->data || B->dtype != SI_I32))) return cpu_unsupported();
    const int r = X->ndim, sp = r - 2;
    if (r < 3 || r > 5 || W->ndim != r || Y->ndim != r) return cpu_unsupported();
    const int64_t OC = W->dims[0], G = si_attr_int(nd, "group", 1), C = X->dims[1];
    if (G < 1 || C % G || OC % G || W->dims[1] * G != C || Y->dims[1] != OC) return cpu_unsupported();
    if (WZ && si_tensor_count(WZ) != 1 && si_tensor_count(WZ) != OC) return cpu_unsupported();
    if (B && si_tensor_count(B) != OC) return cpu_unsupported();
    int32_t qlo;
    if (!relu_floor(g, a->relu, a->yz, &qlo)) return cpu_unsupported();
    nn_geom geo;
    if (!conv_geom(nd, X, Y, W, &geo)) return cpu_unsupported();
    float *scales = a->ys ? requant_scales_of(b, 1.0f, a->xs, a->WS, a->ys, OC) : NULL;
    if (!scales) {
        si_err_clear();
        return cpu_unsupported();
    }
    int8_t *w8 = s8_weights(W, WZ, si_tensor_count(W) / OC);
    if (!w8) return cpu_unsupported();
    const bool exact = w8_exact(w8, si_tensor_count(W)) && conv_src_exact(X->dtype);
    dnnl_dims_t sd, wd, dd, bd = {OC}, st, dl, pl, pr;
    for (int i = 0; i < r; i++) sd[i] = X->dims[i], dd[i] = Y->dims[i];
    int wr = cpu_conv_weight_dims(r, G, W->dims, wd);
    for (int i = 0; i < sp; i++) {
        int j = NN_SP - sp + i;
        st[i] = geo.s[j], dl[i] = geo.d[j] - 1, pl[i] = geo.pb[j], pr[i] = geo.pe[j];
    }
    dnnl_memory_desc_t smd, wmd, dmd, ymd, bmd, wplain;
    dnnl_memory_desc_init_by_tag(&smd, r, sd, X->dtype == SI_U8 ? dnnl_u8 : dnnl_s8, channels_last(r));
    dnnl_memory_desc_init_by_tag(&wmd, wr, wd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dmd, r, dd, dnnl_s32, channels_last(r));
    dnnl_memory_desc_init_by_tag(&ymd, r, dd, Y->dtype == SI_U8 ? dnnl_u8 : dnnl_s8, channels_last(r));
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_s32, dnnl_a);
    {
        int64_t wdd[DNNL_MAX_NDIMS];
        for (int i = 0; i < wr; i++) wdd[i] = wd[i];
        cpu_md_plain_dt(&wplain, wr, wdd, dnnl_s8);
    }
    dnnl_convolution_desc_t cd;
    if (dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &smd, &wmd, B ? &bmd : NULL,
                                                   &dmd, st, dl, pl, pr) != dnnl_success) {
        si_free(w8);
        return cpu_unsupported();
    }
    const bool dw = G > 1 && G == C && G == OC;
    uint8_t *table = cpu_pb_own(b, 256);
    int folded[2], yv = a->y, nf = table && !a->relu ? cpu_qlinear_follow(b, a->y, table, folded, &yv) : 0;
    if (!table) {
        si_free(w8);
        return SI_ERR_NO_MEM;
    }
    dnnl_convolution_desc_t fcd; /* the same convolution into the 8-bit output, when it can requantize itself */
    dnnl_primitive_desc_t pd =
        nf ? NULL
           : dnnl_dilated_convolution_forward_desc_init(&fcd, dnnl_forward_inference, dnnl_convolution_direct, &smd, &wmd, B ? &bmd : NULL, &ymd, st,
                                                        dl, pl, pr) == dnnl_success
               ? fused_rq_pd(b, &fcd, NULL, exact, scales, OC, qlo)
               : NULL;
    const bool fused = pd != NULL;
    si_result s = fused ? SI_OK : q_create_pd(b, NULL, &cd, true, NULL, exact, &pd, nd->name);
    if (s) {
        si_free(w8);
        return s;
    }
    int xb = typed_in(b, a->x, cpu_pd_md(pd, dnnl_query_src_md));
    uint64_t fp = WZ ? cpu_fp(0, WZ->data, WZ->nbytes) : 0;
    cpu_skey wk = {.node = n, .tag = "qlconv.w", .fp = fp, .src = W};
    int wb = xb < 0 ? -1 : cpu_pb_pack(b, &wk, w8, NULL, NULL, &wplain, cpu_pd_md(pd, dnnl_query_weights_md));
    si_free(w8);
    int bb = wb < 0 || !B ? wb : cpu_pb_const_buf(b, B->data, &bmd);
    int zx = bb < 0 ? -1 : zp_buffer(b, n, a->xz);
    int zy = zx < 0 ? -1 : zp_buffer(b, n, a->yz);
    int acc = zy < 0 || fused ? -1 : cpu_pb_internal_md(b, &dmd);
    int dst = (fused ? zy : acc) < 0 ? -1 : cpu_pb_new_out(b, yv, &ymd);
    const rq_ctx rc = {.m = scales, .rows = si_shape_count(r, Y->dims) / OC, .C = OC, .s8 = Y->dtype == SI_I8, .table = nf ? table : NULL, .qlo = qlo};
    cpu_arg args[6] = {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zx}, {DNNL_ARG_DST, fused ? dst : acc}};
    int na = 4;
    if (fused) args[na++] = (cpu_arg){DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, zy};
    if (B) args[na++] = (cpu_arg){DNNL_ARG_BIAS, bb};
    static const char *const rq_names[3] = {"QLinearConv requantize", "QLinearConv requantize+table", "QLinearConv requantize+SiLU"};
    int also[6], n_also = 0;
    for (int i = 0; i < nf; i++) also[n_also++] = folded[i];
    for (int i = 0; i < a->n_extra; i++) also[n_also++] = a->extra[i];
    return rq_emit(b, n, a->n_extra ? (dw ? "QDQ Conv(dw)" : "QDQ Conv") : dw ? "QLinearConv(dw)" : "QLinearConv", pd, args, na, acc, zy, dst,
                   fused ? NULL : &rc, rq_names[nf], also, n_also);
}

/* QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point[, B]. Scales, weights,
 * their zero point and the bias must be constants; the zero points of x and y may be computed. */
si_result cpu_lower_qlinear_conv(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 8 || nd->n_out != 1 || nd->in[0] < 0 || nd->out[0] < 0 || nd->in[7] < 0) return cpu_unsupported();
    const si_dtype xt = g->values[nd->in[0]].dtype, yt = g->values[nd->out[0]].dtype;
    if (!scalar_zp_ok(g, nd, 2, xt) || !scalar_zp_ok(g, nd, 7, yt)) return cpu_unsupported();
    if (nd->n_in > 8 && nd->in[8] >= 0 && !cpu_const_input(g, nd, 8)) return cpu_unsupported();
    qlc_in a = {.x = nd->in[0], .xz = nd->in[2], .yz = nd->in[7], .y = nd->out[0], .xs = cpu_const_input(g, nd, 1), .ys = cpu_const_input(g, nd, 6),
                .W = cpu_const_input(g, nd, 3), .WS = cpu_const_input(g, nd, 4), .WZ = nd->in[5] >= 0 ? cpu_const_input(g, nd, 5) : NULL,
                .B = nd->n_in > 8 ? cpu_const_input(g, nd, 8) : NULL};
    if (nd->in[5] >= 0 && !a.WZ) return cpu_unsupported();
    return cpu_qlconv_lower(b, n, &a);
}

/* The oneDNN int8 matmul into int32, then the requantization pass: multipliers alpha * x_scale * w_scale[n]
 * (/ y_scale) in float32 in that order (the reference kernels' and ONNX Runtime's), C added to the accumulator.
 * With an 8-bit output and no C, the matmul requantizes itself instead (fused_rq_pd). */
si_result cpu_qmm_lower(cpu_pb *b, int n, const qmm_in *a) {
    const si_graph *g = b->g;
    const si_val *A = &g->values[a->x], *Y = &g->values[a->y];
    const si_tensor *B = a->W, *BZ = a->WZ, *C = a->C;
    if ((A->dtype != SI_U8 && A->dtype != SI_I8) || A->const_val || !static_nonempty(A) || !static_nonempty(Y) || A->ndim < 2) return cpu_unsupported();
    if (!B || !B->data || B->ndim != 2 || (B->dtype != SI_U8 && B->dtype != SI_I8) || !a->xs || !a->xs->data || a->xs->dtype != SI_F32 ||
        si_tensor_count(a->xs) != 1 || !a->WS || !a->WS->data || a->WS->dtype != SI_F32)
        return cpu_unsupported();
    if (a->ys ? (Y->dtype != SI_U8 && Y->dtype != SI_I8) || !a->ys->data || a->ys->dtype != SI_F32 || si_tensor_count(a->ys) != 1 : Y->dtype != SI_F32)
        return cpu_unsupported();
    if (BZ) { /* one zero point (oneDNN's weights zero point is a scalar) */
        if (!BZ->data || BZ->dtype != B->dtype) return cpu_unsupported();
        for (int64_t i = 1; i < si_tensor_count(BZ); i++)
            if (si_load_i64(BZ->dtype, BZ->data, i) != si_load_i64(BZ->dtype, BZ->data, 0)) return cpu_unsupported();
    }
    const int64_t K = a->tb ? B->dims[1] : B->dims[0], N = a->tb ? B->dims[0] : B->dims[1], M = si_shape_count(A->ndim - 1, A->dims);
    if (A->dims[A->ndim - 1] != K || Y->dims[Y->ndim - 1] != N || si_shape_count(Y->ndim, Y->dims) != M * N) return cpu_unsupported();
    if (BZ && si_tensor_count(BZ) != 1 && si_tensor_count(BZ) != N) return cpu_unsupported();
    if (si_tensor_count(a->WS) != 1 && si_tensor_count(a->WS) != N) return cpu_unsupported();
    if (C && (!C->data || C->dtype != SI_I32 || si_tensor_count(C) != N || C->dims[C->ndim - 1] != N)) return cpu_unsupported();
    float *fbias = NULL;
    if (a->Cf) { /* one value per column, or one for all */
        const int64_t nc = si_tensor_count(a->Cf);
        if (a->ys || !a->Cf->data || a->Cf->dtype != SI_F32 || (nc != 1 && (nc != N || a->Cf->dims[a->Cf->ndim - 1] != N))) return cpu_unsupported();
        if (!(fbias = cpu_pb_own(b, sizeof(float) * (size_t)N))) return SI_ERR_NO_MEM;
        for (int64_t j = 0; j < N; j++) fbias[j] = ((const float *)a->Cf->data)[nc == 1 ? 0 : j];
    }
    int32_t qlo;
    if ((a->relu && !a->ys) || !relu_floor(g, a->relu, a->yz, &qlo)) return cpu_unsupported();
    float *scales = requant_scales_of(b, a->alpha, a->xs, a->WS, a->ys, N);
    if (!scales) {
        si_err_clear();
        return cpu_unsupported();
    }
    bool exact;
    const int64_t off = w8_offset(B, BZ, &exact);
    int32_t wzp = (int32_t)((BZ ? si_load_i64(BZ->dtype, BZ->data, 0) : 0) - off);
    w8_fill_ctx *wf = cpu_pb_own(b, sizeof *wf);
    if (!wf) return SI_ERR_NO_MEM;
    *wf = (w8_fill_ctx){.B = B, .off = off};
    int64_t sd[2] = {M, K}, dd[2] = {M, N};
    dnnl_dims_t wdd = {K, N};
    dnnl_memory_desc_t smd, wmd, dmd, ymd, wplain;
    cpu_md_plain_dt(&smd, 2, sd, A->dtype == SI_U8 ? dnnl_u8 : dnnl_s8);
    dnnl_memory_desc_init_by_tag(&wplain, 2, wdd, dnnl_s8, a->tb ? dnnl_ba : dnnl_ab); /* B as stored: [K, N] or [N, K] */
    cpu_md_plain_dt(&dmd, 2, dd, dnnl_s32);
    cpu_md_plain_dt(&ymd, Y->ndim, Y->dims, !a->ys ? dnnl_f32 : Y->dtype == SI_U8 ? dnnl_u8 : dnnl_s8);
    dnnl_memory_desc_init_by_tag(&wmd, 2, wdd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_t y2;
    cpu_md_plain_dt(&y2, 2, dd, Y->dtype == SI_U8 ? dnnl_u8 : dnnl_s8);
    /* where oneDNN has no brgemm matmul (AVX2), its int8 1x1 convolution over one image of M pixels, as for float
     * (cpu_mm1x1.c): its GEMM packs the weights at every call (a classifier head's row: 0.18 against 0.03 ms, and
     * slower at 2 threads). Src, dst and the int32 product are the plain matrices seen channels-last. */
    bool conv1 = !wzp && cpu_mm1x1_wanted(b, M) && conv_src_exact(A->dtype); /* int8 inputs: see conv_src_exact */
    cpu_mm1x1 cacc, cy; /* into the int32 product, and into the 8-bit output */
    union {
        dnnl_matmul_desc_t mm;
        dnnl_convolution_desc_t cv;
    } od, fod;
    dnnl_primitive_desc_t pd;
    bool fused;
    for (;;) { /* the convolution, else (or when oneDNN has none for it) the matmul */
        bool ok, fok;
        if (conv1) {
            const dnnl_data_type_t xt = A->dtype == SI_U8 ? dnnl_u8 : dnnl_s8, yt = Y->dtype == SI_U8 ? dnnl_u8 : dnnl_s8;
            cpu_mm1x1_descs(M, K, N, xt, dnnl_s8, dnnl_s32, a->tb, &cacc);
            cpu_mm1x1_descs(M, K, N, xt, dnnl_s8, yt, a->tb, &cy);
            ok = cpu_mm1x1_conv(&cacc, false, &od.cv);
            fok = cpu_mm1x1_conv(&cy, false, &fod.cv);
        } else {
            ok = dnnl_matmul_desc_init(&od.mm, &smd, &wmd, NULL, &dmd) == dnnl_success;
            fok = dnnl_matmul_desc_init(&fod.mm, &smd, &wmd, NULL, &y2) == dnnl_success; /* into the 8-bit output (Y seen as [M, N]) */
        }
        pd = ok && a->ys && !C && fok ? fused_rq_pd(b, &fod, wzp ? &wzp : NULL, exact, scales, N, qlo) : NULL;
        fused = pd != NULL;
        si_result s = fused ? SI_OK : !ok ? cpu_unsupported() : q_create_pd(b, NULL, &od, true, wzp ? &wzp : NULL, exact, &pd, g->nodes[n].name);
        if (!s) break;
        if (!conv1 || s != SI_ERR_UNSUPPORTED) return s;
        conv1 = false;
    }
    int xb = typed_in(b, a->x, &smd);
    if (conv1 && xb >= 0) xb = cpu_pb_alias(b, xb, &cacc.src);
    cpu_skey wk = {.node = n, .tag = conv1 ? "qmm8.w1x1" : "qmm8.w", .fp = cpu_fp(0, &off, sizeof off), .src = B};
    int wb = xb < 0 ? -1 : cpu_pb_pack(b, &wk, NULL, w8_fill, wf, conv1 ? &cacc.wplain : &wplain, cpu_pd_md(pd, dnnl_query_weights_md));
    int zx = wb < 0 ? -1 : zp_buffer(b, n, a->xz);
    int zy = zx < 0 ? -1 : zp_buffer(b, n, a->ys ? a->yz : -1);
    int acc = zy < 0 || fused ? -1 : cpu_pb_internal_md(b, &dmd);
    int yb = (fused ? zy : acc) < 0 ? -1 : cpu_pb_new_out(b, a->y, &ymd);
    int dst = fused && yb >= 0 ? cpu_pb_alias(b, yb, conv1 ? &cy.dst : &y2) : yb;
    int pdst = fused ? dst : acc >= 0 && conv1 ? cpu_pb_alias(b, acc, &cacc.dst) : acc;
    if (pdst < 0) dst = -1;
    const rq_ctx rc = {.m = scales, .rows = M, .C = N, .s8 = Y->dtype == SI_I8, .bias = C ? C->data : NULL, .f32 = !a->ys, .fbias = fbias, .qlo = qlo};
    cpu_arg args[5] = {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zx}, {DNNL_ARG_DST, pdst},
                       {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, zy}};
    return rq_emit(b, n, a->name, pd, args, fused ? 5 : 4, acc, zy, dst, fused ? NULL : &rc, a->ys ? "requantize" : "scale", a->extra, a->n_extra);
}

/* QLinearMatMul: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point with b a constant 2-D
 * matrix (one zero point) and constant scales (b's one, or one per column). */
si_result cpu_lower_qlinear_matmul(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 8 || nd->n_out != 1 || nd->in[0] < 0 || nd->out[0] < 0 || nd->in[7] < 0) return cpu_unsupported();
    if (!scalar_zp_ok(g, nd, 2, g->values[nd->in[0]].dtype) || !scalar_zp_ok(g, nd, 7, g->values[nd->out[0]].dtype)) return cpu_unsupported();
    qmm_in a = {.x = nd->in[0], .xz = nd->in[2], .y = nd->out[0], .yz = nd->in[7], .xs = cpu_const_input(g, nd, 1), .ys = cpu_const_input(g, nd, 6),
                .W = cpu_const_input(g, nd, 3), .WS = cpu_const_input(g, nd, 4), .WZ = nd->in[5] >= 0 ? cpu_const_input(g, nd, 5) : NULL,
                .alpha = 1.0f, .name = "QLinearMatMul"};
    if ((nd->in[5] >= 0 && !a.WZ) || !a.ys) return cpu_unsupported();
    return cpu_qmm_lower(b, n, &a);
}

/* QGemm (com.microsoft): A, a_scale, a_zero_point, B, b_scale, b_zero_point[, C][, y_scale, y_zero_point]; alpha,
 * transA, transB. A 2-D and computed, B a constant (transB any), one zero point for B, C absent or one int32 per
 * column; float32 out when there is no y_scale. */
si_result cpu_lower_qgemm(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 6 || nd->n_out != 1 || nd->in[0] < 0 || nd->out[0] < 0 || si_attr_int(nd, "transA", 0)) return cpu_unsupported();
    if (g->values[nd->in[0]].ndim != 2 || !scalar_zp_ok(g, nd, 2, g->values[nd->in[0]].dtype)) return cpu_unsupported();
    const bool has_c = nd->n_in > 6 && nd->in[6] >= 0, has_y = nd->n_in > 7 && nd->in[7] >= 0;
    qmm_in a = {.x = nd->in[0], .xz = nd->in[2], .y = nd->out[0], .yz = -1, .xs = cpu_const_input(g, nd, 1), .W = cpu_const_input(g, nd, 3),
                .WS = cpu_const_input(g, nd, 4), .WZ = nd->in[5] >= 0 ? cpu_const_input(g, nd, 5) : NULL,
                .C = has_c ? cpu_const_input(g, nd, 6) : NULL, .tb = si_attr_int(nd, "transB", 0) != 0,
                .alpha = si_attr_float(nd, "alpha", 1.0f), .name = "QGemm"};
    if ((nd->in[5] >= 0 && !a.WZ) || (has_c && !a.C)) return cpu_unsupported();
    if (has_y) {
        if (nd->n_in < 9 || nd->in[8] < 0 || !scalar_zp_ok(g, nd, 8, g->values[nd->out[0]].dtype) || !(a.ys = cpu_const_input(g, nd, 7)))
            return cpu_unsupported();
        a.yz = nd->in[8];
    }
    if (a.C) cpu_pb_keep_const(b, nd->in[6]);
    return cpu_qmm_lower(b, n, &a);
}

