/*
 * cpu_qlinear.c — the element-wise com.microsoft QOperator ops (QLinearSigmoid, QLinearLeakyRelu, QLinearAdd,
 * QLinearMul) as the CPU device's own kernels, table-driven and in the layout their input already has.
 *
 * In a statically quantized (QOperator) network these sit between QLinearConvs, whose uint8 outputs are
 * channels-last: YOLO's SiLU is QLinearSigmoid then QLinearMul, a residual is QLinearAdd. As reference kernels
 * they cost a reorder to plain and back around each one and a per-element requantization. Here, with constant
 * scales and zero points, the whole op is a table computed once at plan time by the reference code
 * (si_qlinear_unary_table / si_qlinear_binary_table in ops/qlinear_ms.c), so results are bit-identical to the
 * reference kernels: 256 entries for the unary ops, 256 x 256 for the binary ones (64 KiB, one lookup per output).
 * Both operands of a binary op must have one shape (no broadcasting: the reference kernel runs those); the second
 * is read in the first's layout (a reorder only when they differ). The output keeps the input's layout.
 *
 * Tables compose: SiLU as the quantizer writes it (QLinearMul(x, QLinearSigmoid(x))) is one 256-entry table, and
 * cpu_qlinear_follow hands that table, or a lone QLinearSigmoid / QLinearLeakyRelu's, to the QLinearConv before
 * it, whose requantization pass applies it as it writes each byte (cpu_quant.c).
 */
#include "device/cpu/cpu_llm.h"

#include "ops/quant.h"

#include <math.h>
#include <stdio.h>

#define QL_CHUNK 32768 /* elements per unit of work */

typedef struct ql_params {
    const uint8_t *table; /* 256 (unary) or 65536 (binary) entries */
    bool binary;
    int64_t n;
    /* the binary ops' arithmetic for the AVX-512 path, as the reference kernel computes its tables (float32,
     * ops/qlinear_ms.c bin_row): Add: round(fma(a, ra, fma(b, rb, f))), f = zc - (ra * za + rb * zb);
     * Mul: round((float)((a - za) * (b - zb)) * mul + zc); saturated */
    bool mul, s8;
    float ra, rb, fmul, f;
    int32_t za, zb, zc;
    int32_t qlo; /* a lower bound on the output (a Relu folded in the QDQ form: the zero point), INT32_MIN for none */
} ql_params;

typedef struct ql_job {
    const ql_params *p;
    const uint8_t *a, *b;
    uint8_t *y;
} ql_job;

/* 16 bytes to int32, sign- or zero-extended */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512i ld16(const uint8_t *p, __mmask16 m, bool s8) {
    __m128i v = _mm_maskz_loadu_epi8(m, p);
    return s8 ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void bin512(const ql_params *p, const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n) {
    const __m512i za = _mm512_set1_epi32(p->za), zb = _mm512_set1_epi32(p->zb);
    const __m512 zc = _mm512_set1_ps((float)p->zc), f = _mm512_set1_ps(p->f);
    const __m512i lo = _mm512_set1_epi32(SI_MAX(p->s8 ? -128 : 0, p->qlo)), hi = _mm512_set1_epi32(p->s8 ? 127 : 255);
    const __m512 ra = _mm512_set1_ps(p->ra), rb = _mm512_set1_ps(p->rb), fm = _mm512_set1_ps(p->fmul);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512i va = ld16(a + i, m, p->s8), vb = ld16(b + i, m, p->s8);
        __m512 v;
        if (p->mul) { /* the multiply and the add rounded apart (the _round forms are never contracted) */
            const __m512i ca = _mm512_sub_epi32(va, za), cb = _mm512_sub_epi32(vb, zb);
            v = _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(ca, cb)), fm, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v = _mm512_add_round_ps(v, zc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else {
            v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(va), ra, _mm512_fmadd_ps(_mm512_cvtepi32_ps(vb), rb, f));
        }
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-1073741824.0f)), _mm512_set1_ps(1073741824.0f));
        __m512i q = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
        _mm512_mask_cvtepi32_storeu_epi8(y + i, m, q);
    }
}

static bool have_bin512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

/* 64 bytes at a time: two 128-entry halves of the table by vpermi2b, picked by each byte's top bit. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void lut512(const uint8_t *t, const uint8_t *x, uint8_t *y, int64_t n) {
    const __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 64), t2 = _mm512_loadu_si512(t + 128), t3 = _mm512_loadu_si512(t + 192);
    for (int64_t i = 0; i < n; i += 64) {
        const __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - i)) - 1;
        const __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
}

/* 32 bytes at a time on AVX2: the table as 16 rows of 16 (vpshufb looks a row up by the low nibble), each row's
 * result kept where the high nibble names it. About 5x the byte-by-byte loop (the table of a QLinearConv's folded
 * SiLU was 60% of its requantization step). The tail is the caller's. */
__attribute__((target("avx2"))) static int64_t lut256(const uint8_t *t, const uint8_t *x, uint8_t *y, int64_t n) {
    __m256i row[16];
    for (int k = 0; k < 16; k++) row[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16 * k)));
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        __m256i r = _mm256_setzero_si256();
        for (int k = 0; k < 16; k++)
            r = _mm256_or_si256(r, _mm256_and_si256(_mm256_shuffle_epi8(row[k], lo), _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)k))));
        _mm256_storeu_si256((__m256i *)(y + i), r);
    }
    return i;
}

void cpu_lut8(const uint8_t *table, const uint8_t *x, uint8_t *y, int64_t n) {
    /* a plain function of the CPU: every thread computes the same, nothing shared is written */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi")) {
        lut512(table, x, y, n);
        return;
    }
    int64_t i = __builtin_cpu_supports("avx2") ? lut256(table, x, y, n) : 0;
    for (; i < n; i++) y[i] = table[x[i]];
}

static void ql_units(void *ctx, int64_t lo, int64_t hi) {
    const ql_job *j = ctx;
    const ql_params *p = j->p;
    const int64_t e0 = lo * QL_CHUNK, e1 = SI_MIN(hi * QL_CHUNK, p->n);
    const uint8_t *t = p->table;
    if (p->binary && have_bin512()) {
        bin512(p, j->a + e0, j->b + e0, j->y + e0, e1 - e0);
        return;
    }
    if (p->binary)
        for (int64_t i = e0; i < e1; i++) j->y[i] = t[(size_t)j->a[i] << 8 | j->b[i]];
    else
        cpu_lut8(t, j->a + e0, j->y + e0, e1 - e0);
}

/* ptr: A[, B], Y */
static si_result ql_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const ql_params *p = params;
    ql_job j = {.p = p, .a = ptr[0], .b = p->binary ? ptr[1] : NULL, .y = ptr[p->binary ? 2 : 1]};
    cpu_par_for((p->n + QL_CHUNK - 1) / QL_CHUNK, 1, ql_units, &j);
    return SI_OK;
}

/* The binary ops' parameters for the vector path, the same arithmetic as the table's (ops/qlinear_ms.c bin_init). */
static void bin_arith(ql_params *p, float as, int32_t az, float bs, int32_t bz, float cs, int32_t cz) {
    p->ra = as / cs, p->rb = bs / cs, p->fmul = as * bs / cs;
    p->f = si_qlinear_add_offset(p->ra, az, p->rb, bz, cz);
    p->za = az, p->zb = bz, p->zc = cz;
}

/* A constant float32 scale (input k, one value) into *s: finite, non-zero when it divides; false otherwise (the
 * reference kernel then runs the node, and names the error). */
static bool const_scale(const si_graph *g, const si_node *nd, int k, bool divides, float *s) {
    const si_tensor *t = k < nd->n_in ? cpu_const_input(g, nd, k) : NULL;
    if (!t || !t->data || t->dtype != SI_F32 || si_tensor_count(t) != 1) return false;
    *s = *(const float *)t->data;
    return isfinite(*s) && (!divides || *s != 0.0f);
}

/* A constant zero point (input k, absent: 0) of element type dt into *z. */
static bool const_zp(const si_graph *g, const si_node *nd, int k, si_dtype dt, int32_t *z) {
    *z = 0;
    if (k >= nd->n_in || nd->in[k] < 0) return true;
    const si_tensor *t = cpu_const_input(g, nd, k);
    if (!t || !t->data || t->dtype != dt || si_tensor_count(t) != 1) return false;
    *z = (int32_t)si_load_i64(dt, t->data, 0);
    return true;
}

/* QLinearSigmoid / QLinearLeakyRelu node nd (X, X_scale, X_zero_point, Y_scale[, Y_zero_point]) of type dt as a
 * byte table; false when its parameters are not constants the table can hold. */
static bool unary_table(const si_graph *g, const si_node *nd, si_dtype dt, uint8_t *table) {
    if (!nd->op || nd->n_in < 4 || (nd->op->id != SI_OP_QLINEAR_SIGMOID && nd->op->id != SI_OP_QLINEAR_LEAKY_RELU)) return false;
    float xs, ys;
    int32_t xz, yz;
    if (!const_scale(g, nd, 1, false, &xs) || !const_scale(g, nd, 3, true, &ys) || !const_zp(g, nd, 2, dt, &xz) || !const_zp(g, nd, 4, dt, &yz))
        return false;
    const bool leaky = nd->op->id == SI_OP_QLINEAR_LEAKY_RELU;
    si_qlinear_unary_table(leaky, leaky ? si_attr_float(nd, "alpha", 0.01f) : 0.0f, dt, xs, xz, ys, yz, table);
    return true;
}

/* QLinearAdd / QLinearMul node nd with A and B of type dt as a 256 x 256 byte table (out[a * 256 + b]). */
static bool binary_table(const si_graph *g, const si_node *nd, si_dtype dt, uint8_t *table) {
    if (!nd->op || nd->n_in < 7 || (nd->op->id != SI_OP_QLINEAR_ADD && nd->op->id != SI_OP_QLINEAR_MUL)) return false;
    float as, bs, cs;
    int32_t az, bz, cz;
    if (!const_scale(g, nd, 1, false, &as) || !const_scale(g, nd, 4, false, &bs) || !const_scale(g, nd, 6, true, &cs) ||
        !const_zp(g, nd, 2, dt, &az) || !const_zp(g, nd, 5, dt, &bz) || !const_zp(g, nd, 7, dt, &cz))
        return false;
    return si_qlinear_binary_table(nd->op->id == SI_OP_QLINEAR_MUL, dt, as, az, bs, bz, cs, cz, table);
}

static bool is_ms(const si_node *nd, si_op_id id) { return nd->op && nd->domain[0] && nd->op->id == id; }

/* SiLU as ONNX Runtime's quantizer writes it: s = QLinearSigmoid(x) (node sn, whose table `table` holds) whose only
 * consumer is QLinearMul(x, s) or (s, x) of one shape and type. On success table becomes the composition
 * x -> Mul(x, Sigmoid(x)), element by element exactly what the two tables give, and *mul is the Mul node. */
static bool silu(cpu_pb *b, int sn, uint8_t *table, int *mul) {
    const si_graph *g = b->g;
    const si_node *s = &g->nodes[sn];
    const int x = s->in[0], sv = s->out[0];
    if (b->n_consumers[sv] != 1 || cpu_value_is_output(g, sv)) return false;
    const int m = cpu_pb_consumer(b, sv, 0);
    if (m < 0 || b->done[m] || !is_ms(&g->nodes[m], SI_OP_QLINEAR_MUL) || g->nodes[m].n_out != 1 || g->nodes[m].out[0] < 0) return false;
    const si_node *mn = &g->nodes[m];
    const bool x_first = mn->in[0] == x && mn->in[3] == sv, s_first = mn->in[0] == sv && mn->in[3] == x;
    const si_val *X = &g->values[x], *M = &g->values[mn->out[0]];
    if ((!x_first && !s_first) || M->dtype != X->dtype || M->ndim != X->ndim || memcmp(M->dims, X->dims, sizeof(int64_t) * (size_t)X->ndim))
        return false;
    uint8_t *t2 = si_malloc(65536);
    if (!t2) return false;
    bool ok = binary_table(g, mn, X->dtype, t2);
    if (ok)
        for (int v = 0; v < 256; v++) table[v] = x_first ? t2[v << 8 | table[v]] : t2[table[v] << 8 | v];
    si_free(t2);
    *mul = m;
    return ok;
}

/* The element-wise ops after value v (uint8 / int8, computed by the caller's node) that fold into a byte table
 * applied as v is written: a QLinearSigmoid / QLinearLeakyRelu that is v's only consumer, or SiLU (QLinearSigmoid
 * and QLinearMul, v's only two consumers). Returns how many nodes fold (0, 1 or 2: their ids in nodes[]), with the
 * table and the value the last one writes (*out). */
int cpu_qlinear_follow(cpu_pb *b, int v, uint8_t *table, int nodes[2], int *out) {
    const si_graph *g = b->g;
    if (b->no_fusion || cpu_no_own() || v < 0 || cpu_value_is_output(g, v)) return 0;
    const si_dtype dt = g->values[v].dtype;
    const int nc = b->n_consumers[v];
    if (nc < 1 || nc > 2) return 0;
    int sig = -1;
    for (int k = 0; k < nc; k++) {
        int c = cpu_pb_consumer(b, v, k);
        if (c < 0 || b->done[c]) return 0;
        if ((is_ms(&g->nodes[c], SI_OP_QLINEAR_SIGMOID) || is_ms(&g->nodes[c], SI_OP_QLINEAR_LEAKY_RELU)) && g->nodes[c].in[0] == v) sig = c;
    }
    if (sig < 0 || g->nodes[sig].n_out != 1 || g->nodes[sig].out[0] < 0 || g->values[g->nodes[sig].out[0]].dtype != dt ||
        !unary_table(g, &g->nodes[sig], dt, table))
        return 0;
    nodes[0] = sig;
    if (nc == 1) {
        *out = g->nodes[sig].out[0];
        return 1;
    }
    int mul;
    if (!is_ms(&g->nodes[sig], SI_OP_QLINEAR_SIGMOID) || !silu(b, sig, table, &mul)) return 0;
    nodes[1] = mul;
    *out = g->nodes[mul].out[0];
    return 2;
}

/* QLinearAdd / QLinearMul of same-shaped values a and b (uint8 / int8, type dt) into value y, with constant scales and
 * zero points; qlo bounds the output from below (INT32_MIN: none), which applies to the table too. Stands for node n
 * and the nodes extra[0..n_extra) (the QDQ form's DequantizeLinear-less Add, its Relu and QuantizeLinear). */
si_result cpu_qlinear_binary_emit(cpu_pb *b, int n, bool mul, int a, int bv, int y, float as, int32_t az, float bs, int32_t bz, float cs,
                                  int32_t cz, int32_t qlo, const int *extra, int n_extra) {
    const si_graph *g = b->g;
    const si_val *A = &g->values[a], *B = &g->values[bv], *Y = &g->values[y];
    const si_dtype dt = A->dtype;
    if (cpu_no_own() || (dt != SI_U8 && dt != SI_I8) || Y->dtype != dt || B->dtype != dt || A->const_val || B->const_val ||
        !cpu_value_static(A) || !cpu_value_static(B) || !cpu_value_static(Y) || si_shape_count(A->ndim, A->dims) < 1 ||
        Y->ndim != A->ndim || B->ndim != A->ndim || memcmp(Y->dims, A->dims, sizeof(int64_t) * (size_t)A->ndim) ||
        memcmp(B->dims, A->dims, sizeof(int64_t) * (size_t)A->ndim) || cs == 0.0f || !isfinite(cs) || !isfinite(as) || !isfinite(bs))
        return SI_ERR_UNSUPPORTED;
    ql_params *p = cpu_pb_own(b, sizeof *p);
    uint8_t *table = cpu_pb_own(b, 65536);
    if (!p || !table) return SI_ERR_NO_MEM;
    *p = (ql_params){.table = table, .binary = true, .n = si_shape_count(A->ndim, A->dims), .mul = mul, .s8 = dt == SI_I8, .qlo = qlo};
    bin_arith(p, as, az, bs, bz, cs, cz);
    if (!si_qlinear_binary_table(mul, dt, as, az, bs, bz, cs, cz, table)) return SI_ERR_NO_MEM;
    if (qlo != INT32_MIN)
        for (int i = 0; i < 65536; i++) {
            const int32_t v = dt == SI_I8 ? (int32_t)(int8_t)table[i] : (int32_t)table[i];
            if (v < qlo) table[i] = (uint8_t)qlo;
        }
    int ab = cpu_pb_dense(b, a);
    if (ab < 0) return SI_ERR_INTERNAL;
    const dnnl_memory_desc_t amd = b->p->bufs[ab].md;
    int bb = cpu_pb_in_md(b, bv, &amd);
    if (bb < 0) return SI_ERR_INTERNAL;
    int out = cpu_pb_new_out(b, y, &amd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[3] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_SRC_1, bb}, {DNNL_ARG_DST, out}};
    const char *what = n_extra ? (mul ? "QDQ Mul" : "QDQ Add") : g->nodes[n].op_type;
    si_result st = cpu_pb_emit_own(b, n, what, "own:qlinear_table2", ql_run, p, args, 3);
    if (st) return st;
    cpu_pb_consume(b, n);
    for (int i = 0; i < n_extra; i++) cpu_pb_consume(b, extra[i]);
    return SI_OK;
}

si_result cpu_qlinear_unary_emit(cpu_pb *b, int n, int x, int y, const uint8_t *table, const int *extra, int n_extra) {
    const si_graph *g = b->g;
    const si_val *X = &g->values[x], *Y = &g->values[y];
    if (cpu_no_own() || (X->dtype != SI_U8 && X->dtype != SI_I8) || Y->dtype != X->dtype || X->const_val || !cpu_value_static(X) ||
        !cpu_value_static(Y) || si_shape_count(X->ndim, X->dims) < 1 || Y->ndim != X->ndim || memcmp(Y->dims, X->dims, sizeof(int64_t) * (size_t)X->ndim))
        return SI_ERR_UNSUPPORTED;
    ql_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    *p = (ql_params){.table = table, .n = si_shape_count(X->ndim, X->dims)};
    int ab = cpu_pb_dense(b, x);
    int out = ab < 0 ? -1 : cpu_pb_new_out(b, y, &b->p->bufs[ab].md);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[2] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_DST, out}};
    char what[48];
    snprintf(what, sizeof what, "QDQ %s", g->nodes[n].op_type);
    si_result st = cpu_pb_emit_own(b, n, what, "own:qlinear_table", ql_run, p, args, 2);
    if (st) return st;
    cpu_pb_consume(b, n);
    for (int i = 0; i < n_extra; i++) cpu_pb_consume(b, extra[i]);
    return SI_OK;
}

si_result cpu_lower_qlinear_ew(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || !nd->op || nd->n_in < 4 || nd->in[0] < 0 || nd->n_out != 1 || nd->out[0] < 0) return SI_ERR_UNSUPPORTED;
    const si_op_id id = nd->op->id;
    const bool binary = id == SI_OP_QLINEAR_ADD || id == SI_OP_QLINEAR_MUL;
    const si_val *A = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    const si_dtype dt = A->dtype;
    if ((dt != SI_U8 && dt != SI_I8) || Y->dtype != dt || A->const_val || !cpu_value_static(A) || !cpu_value_static(Y) ||
        si_shape_count(A->ndim, A->dims) < 1 || Y->ndim != A->ndim || memcmp(Y->dims, A->dims, sizeof(int64_t) * (size_t)A->ndim))
        return SI_ERR_UNSUPPORTED;
    ql_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    p->binary = binary;
    p->n = si_shape_count(A->ndim, A->dims);
    uint8_t *table = cpu_pb_own(b, binary ? 65536 : 256);
    if (!table) return SI_ERR_NO_MEM;
    p->table = table;
    if (binary) { /* A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale[, C_zero_point] */
        if (nd->n_in < 7 || nd->in[3] < 0) return SI_ERR_UNSUPPORTED;
        const si_val *B = &g->values[nd->in[3]];
        if (B->dtype != dt || B->const_val || !cpu_value_static(B) || B->ndim != A->ndim ||
            memcmp(B->dims, A->dims, sizeof(int64_t) * (size_t)A->ndim))
            return SI_ERR_UNSUPPORTED;
        float as, bs, cs;
        int32_t az, bz, cz;
        if (!const_scale(g, nd, 1, false, &as) || !const_scale(g, nd, 4, false, &bs) || !const_scale(g, nd, 6, true, &cs) ||
            !const_zp(g, nd, 2, dt, &az) || !const_zp(g, nd, 5, dt, &bz) || !const_zp(g, nd, 7, dt, &cz))
            return SI_ERR_UNSUPPORTED;
        if (!si_qlinear_binary_table(id == SI_OP_QLINEAR_MUL, dt, as, az, bs, bz, cs, cz, table)) return SI_ERR_NO_MEM;
        p->mul = id == SI_OP_QLINEAR_MUL, p->s8 = dt == SI_I8, p->qlo = INT32_MIN;
        bin_arith(p, as, az, bs, bz, cs, cz);
    } else if (!unary_table(g, nd, dt, table)) {
        return SI_ERR_UNSUPPORTED;
    } else if (id == SI_OP_QLINEAR_SIGMOID && !b->no_fusion) { /* SiLU: QLinearMul(x, QLinearSigmoid(x)) as one table */
        int mul;
        if (silu(b, n, table, &mul)) {
            int ab = cpu_pb_dense(b, nd->in[0]);
            int out = ab < 0 ? -1 : cpu_pb_new_out(b, g->nodes[mul].out[0], &b->p->bufs[ab].md);
            if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
            cpu_arg args[2] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_DST, out}};
            si_result st = cpu_pb_emit_own(b, n, "QLinearSigmoid+QLinearMul", "own:qlinear_table", ql_run, p, args, 2);
            if (!st) cpu_pb_consume(b, n), cpu_pb_consume(b, mul);
            return st;
        }
    }
    int ab = cpu_pb_dense(b, nd->in[0]);
    if (ab < 0) return SI_ERR_INTERNAL;
    const dnnl_memory_desc_t amd = b->p->bufs[ab].md;
    int bb = binary ? cpu_pb_in_md(b, nd->in[3], &amd) : -1;
    if (binary && bb < 0) return SI_ERR_INTERNAL;
    int out = cpu_pb_new_out(b, nd->out[0], &amd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[3] = {{DNNL_ARG_SRC, ab}, {DNNL_ARG_SRC_1, bb}, {DNNL_ARG_DST, out}};
    if (!binary) args[1] = args[2];
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, binary ? "own:qlinear_table2" : "own:qlinear_table", ql_run, p, args, binary ? 3 : 2);
    if (!st) cpu_pb_consume(b, n);
    return st;
}

// --- QLinearConcat ------------------------------------------------------------------------------------------------

/* The output as rows of `row` bytes; input k fills bytes [off[k], off[k] + len[k]) of each row from its own rows
 * of len[k] bytes, copied (same scale and zero point as the output) or through its requantization table. Plain
 * layout: a row is everything from the concatenation axis inwards; channels-last along the channels: a row is
 * one pixel's channels. */
#define QCAT_MAX 64

typedef struct qcat_params {
    int n;
    int64_t rows, row, off[QCAT_MAX], len[QCAT_MAX];
    const uint8_t *table[QCAT_MAX]; /* NULL: copy */
} qcat_params;

typedef struct qcat_job {
    const qcat_params *p;
    void *const *ptr;
} qcat_job;

static void qcat_rows(void *ctx, int64_t lo, int64_t hi) {
    const qcat_job *j = ctx;
    const qcat_params *p = j->p;
    uint8_t *y = j->ptr[p->n];
    for (int k = 0; k < p->n; k++) {
        const uint8_t *x = j->ptr[k], *t = p->table[k];
        const int64_t len = p->len[k];
        for (int64_t r = lo; r < hi; r++) {
            uint8_t *d = y + r * p->row + p->off[k];
            const uint8_t *s = x + r * len;
            if (!t) memcpy(d, s, (size_t)len);
            else
                for (int64_t i = 0; i < len; i++) d[i] = t[s[i]];
        }
    }
}

/* ptr: the inputs, Y */
static si_result qcat_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const qcat_params *p = params;
    qcat_job j = {.p = p, .ptr = ptr};
    cpu_par_for(p->rows, SI_MAX((int64_t)1, 65536 / SI_MAX((int64_t)1, p->row)), qcat_rows, &j);
    return SI_OK;
}

/* Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input; attribute axis. */
si_result cpu_qlinear_concat_emit(cpu_pb *b, int n, int64_t axis, int nx, const int *x, const float *xsc, const int32_t *xzp, int y, float ys,
                                  int32_t yz, const int *extra, int n_extra) {
    const si_graph *g = b->g;
    if (cpu_no_own() || nx < 1 || nx > QCAT_MAX || y < 0) return SI_ERR_UNSUPPORTED;
    const si_val *Y = &g->values[y];
    const si_dtype dt = Y->dtype;
    const int r = Y->ndim;
    if (axis < 0) axis += r;
    if ((dt != SI_U8 && dt != SI_I8) || !cpu_value_static(Y) || si_shape_count(r, Y->dims) < 1 || axis < 0 || axis >= r || ys == 0.0f || !isfinite(ys))
        return SI_ERR_UNSUPPORTED;
    qcat_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    memset(p, 0, sizeof *p);
    p->n = nx;
    /* channels-last along the channels when input 0 already is (a QLinearConv's output), else plain */
    bool cl = false;
    if (axis == 1 && r >= 3 && r <= 5 && x[0] >= 0) {
        int e = cpu_pb_existing(b, x[0]);
        if (e >= 0 && !b->p->bufs[e].dyn) {
            dnnl_memory_desc_t want;
            dnnl_dims_t d;
            const si_val *X0 = &g->values[x[0]];
            for (int i = 0; i < r; i++) d[i] = X0->dims[i];
            dnnl_memory_desc_init_by_tag(&want, r, d, b->p->bufs[e].md.data_type, r == 3 ? dnnl_acb : r == 4 ? dnnl_acdb : dnnl_acdeb);
            cl = dnnl_memory_desc_equal(&b->p->bufs[e].md, &want);
        }
    }
    const int64_t outer = si_shape_count((int)axis, Y->dims), after = si_shape_count(r - (int)axis - 1, Y->dims + axis + 1);
    p->rows = cl ? outer * after : outer;
    p->row = cl ? Y->dims[axis] : Y->dims[axis] * after;
    int bufs[QCAT_MAX + 1];
    int64_t off = 0;
    for (int k = 0; k < p->n; k++) {
        if (x[k] < 0) return SI_ERR_UNSUPPORTED;
        const si_val *X = &g->values[x[k]];
        if (X->dtype != dt || !cpu_value_static(X) || X->ndim != r) return SI_ERR_UNSUPPORTED;
        for (int d = 0; d < r; d++)
            if (d != axis && X->dims[d] != Y->dims[d]) return SI_ERR_UNSUPPORTED;
        const float xs = xsc[k];
        const int32_t xz = xzp[k];
        if (!isfinite(xs)) return SI_ERR_UNSUPPORTED;
        if (xs != ys || xz != yz) {
            uint8_t *t = cpu_pb_own(b, 256);
            if (!t) return SI_ERR_NO_MEM;
            si_qlinear_requant_table(dt, xs, xz, ys, yz, t);
            p->table[k] = t;
        }
        p->len[k] = cl ? X->dims[axis] : X->dims[axis] * after;
        p->off[k] = off;
        off += p->len[k];
        if (cl) {
            dnnl_memory_desc_t md;
            dnnl_dims_t d;
            for (int i = 0; i < r; i++) d[i] = X->dims[i];
            dnnl_memory_desc_init_by_tag(&md, r, d, dt == SI_U8 ? dnnl_u8 : dnnl_s8, r == 3 ? dnnl_acb : r == 4 ? dnnl_acdb : dnnl_acdeb);
            bufs[k] = cpu_pb_in_md(b, x[k], &md);
        } else {
            bufs[k] = cpu_pb_plain(b, x[k]);
        }
        if (bufs[k] < 0) return SI_ERR_INTERNAL;
        if (b->p->bufs[bufs[k]].dyn) return SI_ERR_UNSUPPORTED;
    }
    if (off != p->row) return SI_ERR_UNSUPPORTED;
    dnnl_memory_desc_t ymd;
    if (cl) {
        dnnl_dims_t d;
        for (int i = 0; i < r; i++) d[i] = Y->dims[i];
        dnnl_memory_desc_init_by_tag(&ymd, r, d, dt == SI_U8 ? dnnl_u8 : dnnl_s8, r == 3 ? dnnl_acb : r == 4 ? dnnl_acdb : dnnl_acdeb);
    } else {
        cpu_md_plain_dt(&ymd, r, Y->dims, dt == SI_U8 ? dnnl_u8 : dnnl_s8);
    }
    int out = cpu_pb_new_out(b, y, &ymd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    bufs[p->n] = out;
    const char *what = n_extra ? (cl ? "QDQ Concat(channels-last)" : "QDQ Concat") : cl ? "QLinearConcat(channels-last)" : "QLinearConcat";
    si_result st = cpu_pb_emit_fn(b, n, what, qcat_run, p, bufs, p->n, &out, 1);
    if (st) return st;
    cpu_pb_consume(b, n);
    for (int i = 0; i < n_extra; i++) cpu_pb_consume(b, extra[i]);
    return SI_OK;
}

si_result cpu_lower_qlinear_concat(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || nd->n_in < 5 || (nd->n_in - 2) % 3 || (nd->n_in - 2) / 3 > QCAT_MAX || nd->n_out != 1 || nd->out[0] < 0 ||
        !si_node_attr(nd, "axis"))
        return SI_ERR_UNSUPPORTED;
    const si_dtype dt = g->values[nd->out[0]].dtype;
    float ys, xsc[QCAT_MAX];
    int32_t yz, xzp[QCAT_MAX];
    int x[QCAT_MAX];
    const int nx = (nd->n_in - 2) / 3;
    if (!const_scale(g, nd, 0, true, &ys) || !const_zp(g, nd, 1, dt, &yz)) return SI_ERR_UNSUPPORTED;
    for (int k = 0; k < nx; k++) {
        x[k] = nd->in[2 + 3 * k];
        if (!const_scale(g, nd, 3 + 3 * k, false, &xsc[k]) || !const_zp(g, nd, 4 + 3 * k, dt, &xzp[k])) return SI_ERR_UNSUPPORTED;
    }
    return cpu_qlinear_concat_emit(b, n, si_attr_int(nd, "axis", 0), nx, x, xsc, xzp, nd->out[0], ys, yz, NULL, 0);
}
