/*
 * cpu_qdq.c — QuantizeLinear and DequantizeLinear on activations (the QDQ format ONNX Runtime's static quantizer
 * writes: a Q -> DQ pair around each activation, per-tensor parameters for activations, per-axis for weights) as
 * the CPU device's own kernels. The reference kernels (ops/quant.c) load and store every element through the
 * generic si_load / si_store helpers and took 92% of a QDQ model's time; these are one streaming pass, split over
 * the plan's threads in chunks of rows of the quantization axis.
 *
 * Results are bit-identical to the reference kernels':
 *   QuantizeLinear    y = saturate(round_half_even(x / scale) + zp): the float32 division (never a reciprocal
 *                     multiply), NaN -> zp, the quotient clamped to +-1024 (beyond the 8-bit range with any zero
 *                     point, so saturation is unchanged) and rounded ties-to-even (vroundps, or the 1.5 * 2^23
 *                     addition in the scalar version, as cpu_quant.c's DynamicQuantizeLinear does).
 *   DequantizeLinear  y = (x - zp) * scale: the reference computes (double)(x - zp) * scale rounded once to float;
 *                     for 8-bit x the difference and the product are exact in double, so a float32 multiply of
 *                     the exact float (x - zp) rounds to the same value. int32 x (zero point 0) multiplies in
 *                     double, as the reference does, then rounds.
 * Declined (the reference kernel runs them): blocked quantization (block_size), other element types (16-bit,
 * 4-bit, float8), scales other than float32 or with zero / non-finite values, non-constant scales or zero points,
 * the opset 23 precision / output_dtype attributes other than float32, non-float32 inputs of QuantizeLinear.
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define QDQ_CHUNK 16384 /* elements per unit of work */

typedef struct qdq_params {
    bool quant;            /* QuantizeLinear, else DequantizeLinear */
    si_dtype qt;           /* the quantized type: U8, I8 (and I32 for DequantizeLinear) */
    int64_t outer, len, inner; /* x as [outer, len, inner]; len is 1 per tensor */
    int64_t nch;           /* chunks per row of inner elements */
    float *scale;          /* [len] */
    int32_t *zp;           /* [len] */
} qdq_params;

/* --- QuantizeLinear ----------------------------------------------------------------------------------------- */

static void quant_scalar(const float *x, void *y, int64_t n, float scale, float zp, float lo, float hi, bool s8) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        v = v != v ? 0.0f : v < -1024.0f ? -1024.0f : v > 1024.0f ? 1024.0f : v;
        v = (v + 12582912.0f) - 12582912.0f + zp;
        v = v < lo ? lo : v > hi ? hi : v;
        if (s8) ((int8_t *)y)[i] = (int8_t)(int)v;
        else ((uint8_t *)y)[i] = (uint8_t)(int)v;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void quant_avx2(const float *x, void *y, int64_t n, float scale, float zp, float lo, float hi,
                                                       bool s8) {
    const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zp), cl = _mm256_set1_ps(-1024.0f), ch = _mm256_set1_ps(1024.0f);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    uint8_t *yb = y;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i q[2];
        for (int h = 0; h < 2; h++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i + 8 * h), s);
            v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v); /* NaN -> 0 */
            v = _mm256_min_ps(_mm256_max_ps(v, cl), ch);
            v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
            q[h] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, vlo), vhi));
        }
        /* values are in range already: the packs only narrow (lanes 0-3 | 8-11 | 4-7 | 12-15 after the 256-bit
         * packs, hence the permute) */
        __m256i w = _mm256_packs_epi32(q[0], q[1]);
        w = _mm256_permute4x64_epi64(w, 0xd8);
        __m128i b = s8 ? _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1))
                       : _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128((__m128i *)(void *)(yb + i), b);
    }
    quant_scalar(x + i, yb + i, n - i, scale, zp, lo, hi, s8);
}
#endif

static void quant_range(const float *x, void *y, int64_t n, float scale, float zp, bool s8) {
    const float lo = s8 ? -128.0f : 0.0f, hi = s8 ? 127.0f : 255.0f;
#if defined(__x86_64__)
    if (cpu_vec_get()->avx2) {
        quant_avx2(x, y, n, scale, zp, lo, hi, s8);
        return;
    }
#endif
    quant_scalar(x, y, n, scale, zp, lo, hi, s8);
}

/* --- DequantizeLinear --------------------------------------------------------------------------------------- */

CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void deq_u8(const uint8_t *x, float *y, int64_t n, float scale, int32_t zp) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void deq_s8(const int8_t *x, float *y, int64_t n, float scale, int32_t zp) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void deq_s32(const int32_t *x, float *y, int64_t n, float scale) {
    const double s = scale;
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * s);
}

/* --- the kernel ---------------------------------------------------------------------------------------------- */

typedef struct qdq_job {
    const qdq_params *p;
    const void *x;
    void *y;
} qdq_job;

/* Units [lo, hi): unit u is chunk u % nch of row u / nch (a row: inner elements sharing one scale). */
static void qdq_units(void *ctx, int64_t lo, int64_t hi) {
    const qdq_job *j = ctx;
    const qdq_params *p = j->p;
    const size_t xes = p->quant ? sizeof(float) : si_dtype_size(p->qt), yes = p->quant ? 1 : sizeof(float);
    for (int64_t u = lo; u < hi; u++) {
        const int64_t row = u / p->nch, c0 = (u % p->nch) * QDQ_CHUNK, a = row % p->len;
        const int64_t n = SI_MIN((int64_t)QDQ_CHUNK, p->inner - c0), off = row * p->inner + c0;
        const void *x = (const char *)j->x + (size_t)off * xes;
        void *y = (char *)j->y + (size_t)off * yes;
        if (p->quant) quant_range(x, y, n, p->scale[a], (float)p->zp[a], p->qt == SI_I8);
        else if (p->qt == SI_U8) deq_u8(x, y, n, p->scale[a], p->zp[a]);
        else if (p->qt == SI_I8) deq_s8(x, y, n, p->scale[a], p->zp[a]);
        else deq_s32(x, y, n, p->scale[a]);
    }
}

/* ptr: X, Y */
static si_result qdq_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const qdq_params *p = params;
    qdq_job j = {.p = p, .x = ptr[0], .y = ptr[1]};
    const int64_t units = p->outer * p->len * p->nch, per = SI_MAX((int64_t)1, p->inner);
    cpu_par_for(units, SI_MAX((int64_t)1, QDQ_CHUNK / SI_MIN(per, (int64_t)QDQ_CHUNK)), qdq_units, &j);
    return SI_OK;
}

/* --- lowering ----------------------------------------------------------------------------------------------- */

/* The node's scale (input 1) and zero point (input 2) as per-tensor or per-axis float32 / int32 arrays in p, from
 * constants; false when the reference kernel should run the node. */
static bool qdq_params_of(cpu_pb *b, const si_node *nd, const si_val *X, qdq_params *p) {
    const si_graph *g = b->g;
    if (nd->n_in < 2 || nd->in[1] < 0) return false;
    const si_tensor *S = g->values[nd->in[1]].const_val, *Z = nd->n_in > 2 && nd->in[2] >= 0 ? g->values[nd->in[2]].const_val : NULL;
    if (!S || !S->data || S->dtype != SI_F32) return false;
    if (nd->n_in > 2 && nd->in[2] >= 0 && (!Z || !Z->data || Z->dtype != p->qt)) return false;
    if (nd->opset >= 21 && si_attr_int(nd, "block_size", 0) != 0) return false;
    if (nd->opset >= 23 && (si_attr_int(nd, "precision", 0) > 0 && si_attr_int(nd, "precision", 0) != SI_F32)) return false;
    if (nd->opset >= 23 && !p->quant && si_attr_int(nd, "output_dtype", 0) > 0 && si_attr_int(nd, "output_dtype", 0) != SI_F32) return false;
    const int64_t ns = si_tensor_count(S), total = si_shape_count(X->ndim, X->dims);
    if (Z && si_tensor_count(Z) != ns) return false;
    if (ns == 1 && S->ndim <= 1) { /* per tensor */
        p->outer = p->len = 1;
        p->inner = total;
    } else {
        const int r = X->ndim;
        int64_t axis = si_attr_int(nd, "axis", 1);
        if (nd->opset < 13 || r == 0 || axis < -r || axis >= r) return false;
        if (axis < 0) axis += r;
        if (S->ndim != 1 || S->dims[0] != X->dims[axis] || (Z && (Z->ndim != 1 || Z->dims[0] != S->dims[0]))) return false;
        p->len = X->dims[axis];
        p->outer = si_shape_count((int)axis, X->dims);
        p->inner = si_shape_count(r - (int)axis - 1, X->dims + axis + 1);
    }
    if (p->inner < 1 || p->len < 1) return false;
    p->nch = (p->inner + QDQ_CHUNK - 1) / QDQ_CHUNK;
    p->scale = cpu_pb_own(b, sizeof(float) * (size_t)p->len);
    p->zp = cpu_pb_own(b, sizeof(int32_t) * (size_t)p->len);
    if (!p->scale || !p->zp) return false;
    for (int64_t k = 0; k < p->len; k++) {
        p->scale[k] = ((const float *)S->data)[k];
        p->zp[k] = Z ? (int32_t)si_load_i64(Z->dtype, Z->data, k) : 0;
        if (p->quant && (p->scale[k] == 0.0f || !isfinite(p->scale[k]))) return false; /* the reference's error */
        if (p->qt == SI_I32 && p->zp[k] != 0) return false;                              /* likewise */
    }
    return true;
}

static dnnl_data_type_t dnnl_of(si_dtype dt) { return dt == SI_U8 ? dnnl_u8 : dt == SI_I8 ? dnnl_s8 : dt == SI_I32 ? dnnl_s32 : dnnl_f32; }

si_result cpu_lower_qdq(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->domain[0] || nd->n_in < 2 || nd->in[0] < 0 || nd->n_out != 1 || nd->out[0] < 0) return SI_ERR_UNSUPPORTED;
    const bool dq = si_node_is(nd, SI_OP_DEQUANTIZE_LINEAR);
    if (dq && cpu_qdq_feeds_int_convs(b, n)) { /* its Convs read the integers */
        cpu_pb_consume(b, n);
        return SI_OK;
    }
    if (si_node_dq_of_consts(g, nd)) return cpu_dq_fold(b, n);
    if (cpu_no_own()) return SI_ERR_UNSUPPORTED;
    return cpu_qdq_emit(b, n);
}

si_result cpu_dq_fold(cpu_pb *b, int d) {
    si_graph *g = (si_graph *)b->g; /* the plan's own graph: cpu_plan_build took it over */
    const si_node *nd = &g->nodes[d];
    uint64_t fp = 0;
    for (int k = 1; k < nd->n_in; k++) {
        const si_tensor *t = nd->in[k] >= 0 ? g->values[nd->in[k]].const_val : NULL;
        fp = cpu_fp(fp, &k, sizeof k);
        if (t) fp = cpu_fp(fp, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        if (t && t->nbytes) fp = cpu_fp(fp, t->data, t->nbytes);
    }
    const int64_t attrs[5] = {nd->opset, si_attr_int(nd, "axis", 1), si_attr_int(nd, "block_size", 0),
                              si_attr_int(nd, "output_dtype", 0), si_attr_int(nd, "precision", 0)};
    fp = cpu_fp(fp, attrs, sizeof attrs);
    si_tensor *t = NULL;
    si_result st = cpu_store_node_const(b->store, g, d, "dq>f32", fp, &t);
    if (st) return si_err_wrap(st, "CPU: dequantizing the weights of node '%s'", nd->name);
    si_val *Y = &g->values[nd->out[0]];
    si_const_unref(Y->const_val);
    Y->const_val = t;
    si_val_set_dq_of(Y, g, nd); /* QDQ fusions of the readers find the integers */
    if (!b->done[d]) cpu_pb_consume(b, d);
    return SI_OK;
}

/* The QuantizeLinear / DequantizeLinear step of node n; also for a DequantizeLinear skipped above whose reader
 * turned out not to run as an integer product after all (cpu_quant_qdq.c calls it then, out of order). */
si_result cpu_qdq_emit(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || nd->domain[0] || nd->n_in < 2 || nd->in[0] < 0 || nd->n_out != 1 || nd->out[0] < 0) return SI_ERR_UNSUPPORTED;
    const si_val *X = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    if (!cpu_value_static(X) || !cpu_value_static(Y) || X->ndim != Y->ndim || si_shape_count(X->ndim, X->dims) < 1) return SI_ERR_UNSUPPORTED;
    qdq_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    memset(p, 0, sizeof *p);
    p->quant = si_node_is(nd, SI_OP_QUANTIZE_LINEAR);
    if (p->quant) {
        if (X->dtype != SI_F32 || (Y->dtype != SI_U8 && Y->dtype != SI_I8)) return SI_ERR_UNSUPPORTED;
        p->qt = Y->dtype;
    } else {
        if ((X->dtype != SI_U8 && X->dtype != SI_I8 && X->dtype != SI_I32) || Y->dtype != SI_F32) return SI_ERR_UNSUPPORTED;
        p->qt = X->dtype;
    }
    if (!qdq_params_of(b, nd, X, p)) {
        si_err_clear();
        return SI_ERR_UNSUPPORTED;
    }
    /* per tensor: elementwise, so in whatever dense layout x already has (a convolution's channels-last or
     * channel-blocked output, no padded channels), and y in that layout: no reorder of x to plain */
    const int in = p->len == 1 && !b->no_fusion ? cpu_pb_dense(b, nd->in[0]) : cpu_pb_plain(b, nd->in[0]);
    if (in < 0) return SI_ERR_INTERNAL;
    if (b->p->bufs[in].dyn) return SI_ERR_UNSUPPORTED;
    dnnl_memory_desc_t ymd = b->p->bufs[in].md;
    ymd.data_type = dnnl_of(Y->dtype);
    int out = cpu_pb_new_out(b, nd->out[0], &ymd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[2] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}};
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, p->quant ? "own:quantize" : "own:dequantize", qdq_run, p, args, 2);
    if (!st) cpu_pb_consume(b, n);
    return st;
}
