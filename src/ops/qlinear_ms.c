/*
 * qlinear_ms.c — the com.microsoft "QOperator" ops that ONNX Runtime's quantize_static(QuantFormat.QOperator)
 * writes and int8 model-zoo models use: QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
 * QLinearConcat, QLinearGlobalAveragePool, QLinearAveragePool, QLinearSoftmax and QGemm.
 *
 * Each op dequantizes ((q - zero point) * scale, float32), applies the float op and requantizes (divide by the
 * output scale, round half to even, add the zero point, saturate), in float32 arithmetic in the order ONNX
 * Runtime's kernels use, so results agree with it exactly or within one unit where its vector code rounds an
 * intermediate differently (a fused multiply-add, its approximate logistic). Scales and zero points are per
 * tensor (QGemm's B may have one per column); a zero point that is absent is 0 of the data's type. Element types:
 * uint8 and int8.
 *
 * Element ops run through 256-entry tables indexed by the quantized byte: the unary ops map a byte to a byte,
 * QLinearAdd adds two per-operand float tables, QLinearMul multiplies centred integers. QLinearSoftmax is computed
 * in float32 (ONNX Runtime uses a fixed-point exponent table): within one unit of it.
 */
#include "ops/quant.h"

#include "ops/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define T_Q8 (SI_T(SI_U8) | SI_T(SI_I8))
#define T_SC SI_T(SI_F32)

/* =========================================================================================================
 * Quantization parameters
 */

typedef struct qp {
    float scale;
    int32_t zp;
} qp;

/* Input i is a float32 scale with one value (absent: an error when required). */
static si_result scale_ok(const si_kctx *c, int i, bool required, const char *what) {
    const si_tensor *s = si_in(c, i);
    si_result st;
    if (!s) return required ? si_op_err(c, SI_ERR_INVALID_ARG, "input %s is missing", what) : SI_OK;
    if ((st = si_need_input(c, i, false)) || (st = si_check_type(c, s->dtype, T_SC, what))) return st;
    if (si_count(s) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be a scalar (per-tensor), got %lld values", what, (long long)si_count(s));
    return SI_OK;
}

/* Input i, when present, is a zero point of element type dt (that of `of`) with one value. */
static si_result zp_ok(const si_kctx *c, int i, si_dtype dt, const char *what, const char *of) {
    const si_tensor *z = si_in(c, i);
    si_result st;
    if (!z) return SI_OK;
    if ((st = si_need_input(c, i, false))) return st;
    if (z->dtype != dt)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has element type %s, %s has %s: they must be the same", what,
                         si_dtype_name(z->dtype), of, si_dtype_name(dt));
    if (si_count(z) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be a scalar (per-tensor), got %lld values", what, (long long)si_count(z));
    return SI_OK;
}

/* Scale value v named what: finite, and non-zero when it divides. */
static si_result scale_value(const si_kctx *c, float v, bool divides, const char *what) {
    if (divides && (v == 0.0f || !isfinite(v)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s is %g: a scale that divides must be non-zero and finite", what, (double)v);
    if (!isfinite(v)) return si_op_err(c, SI_ERR_INVALID_ARG, "%s is %g: a scale must be finite", what, (double)v);
    return SI_OK;
}

/* The values of scale input si and zero point input zi (run time; checked by scale_ok / zp_ok). */
static si_result read_qp(const si_kctx *c, int si, int zi, bool divides, const char *what, qp *p) {
    const si_tensor *s = si_in(c, si), *z = si_in(c, zi);
    p->scale = *(const float *)s->data;
    p->zp = z ? (int32_t)si_load_i64(z->dtype, z->data, 0) : 0;
    return scale_value(c, p->scale, divides, what);
}

/* A quantized byte of type uint8 (sgn false) or int8 as an integer. */
static inline int32_t q_ld(bool sgn, uint8_t b) { return sgn ? (int32_t)(int8_t)b : (int32_t)b; }

/* saturate(round_half_even(v) + zp) into [lo, hi], as a byte of the type; NaN gives the zero point. */
static inline uint8_t q_st(float v, int32_t zp, int32_t lo, int32_t hi) {
    if (isnan(v)) return (uint8_t)zp;
    double r = (double)nearbyintf(v) + zp;
    return (uint8_t)(int32_t)(r < lo ? lo : r > hi ? hi : r);
}

static inline void q_lohi(si_dtype dt, int32_t *lo, int32_t *hi) {
    *lo = dt == SI_I8 ? -128 : 0;
    *hi = dt == SI_I8 ? 127 : 255;
}

/* Quantize v with output parameters y into type dt. */
static inline uint8_t q_out(si_dtype dt, float v, const qp *y) {
    int32_t lo, hi;
    q_lohi(dt, &lo, &hi);
    return q_st(v / y->scale, y->zp, lo, hi);
}

enum { F_IDENT, F_SIGMOID, F_LEAKY };

/* table[b] = quantize_y(f(dequantize_x(b))) for every byte b of type dt. */
static void q_table(si_dtype dt, const qp *x, const qp *y, int f, float alpha, uint8_t *table) {
    const bool sgn = dt == SI_I8;
    for (int b = 0; b < 256; b++) {
        float v = (float)(q_ld(sgn, (uint8_t)b) - x->zp) * x->scale;
        if (f == F_SIGMOID) v = 1.0f / (1.0f + expf(-v));
        else if (f == F_LEAKY && v < 0.0f) v *= alpha;
        table[b] = q_out(dt, v, y);
    }
}

/* =========================================================================================================
 * QLinearAdd, QLinearMul: A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale[, C_zero_point]
 */

enum { BIN_ADD, BIN_MUL };

typedef struct qbin {
    int nd;
    int64_t dims[SI_MAX_DIMS], sa[SI_MAX_DIMS], sb[SI_MAX_DIMS];
} qbin;

static si_result qbin_prep(const si_kctx *c, qbin *p) {
    const si_tensor *a, *b;
    si_result st = si_input0(c, T_Q8, "A", &a);
    if (st || (st = si_need_input(c, 3, false))) return st;
    b = si_in(c, 3);
    if ((st = si_same_type(c, a, b, "B"))) return st;
    if ((st = scale_ok(c, 1, true, "A_scale")) || (st = scale_ok(c, 4, true, "B_scale")) || (st = scale_ok(c, 6, true, "C_scale")) ||
        (st = zp_ok(c, 2, a->dtype, "A_zero_point", "A")) || (st = zp_ok(c, 5, a->dtype, "B_zero_point", "A")) ||
        (st = zp_ok(c, 7, a->dtype, "C_zero_point", "A")))
        return st;
    if ((st = si_broadcast_shape(c, a->ndim, a->dims, b->ndim, b->dims, &p->nd, p->dims))) return st;
    si_broadcast_strides(a->ndim, a->dims, p->nd, p->dims, p->sa);
    si_broadcast_strides(b->ndim, b->dims, p->nd, p->dims, p->sb);
    return SI_OK;
}

SI_OP_PLANNED(qbin_infer, qbin, p, qbin_prep) { return si_set_out(c, 0, si_in(c, 0)->dtype, p->nd, p->dims); }

/* The arithmetic is ONNX Runtime's x86 kernels' (MLAS, AVX2), so that results agree with it to the bit rather than
 * differing by one now and then (which a deep residual network carries to its outputs):
 *   QLinearAdd  round(fma(a, ra, fma(b, rb, f))) with ra = A_scale / C_scale, rb = B_scale / C_scale, the raw
 *               bytes a, b and f = C_zp - (ra * A_zp + rb * B_zp), all in float32
 *   QLinearMul  round((float)((a - A_zp) * (b - B_zp)) * m + C_zp), m = A_scale * B_scale / C_scale
 * rounded to nearest even, then saturated. An operand that is one value along the row (a broadcast scalar) goes
 * into f with a plain multiply and add first, as ONNX Runtime does: round(fma(b, rb, f + a * ra)) for a scalar a. */
typedef struct bin_ctx {
    int op;
    int32_t lo, hi;
    float mul, zc;            /* QLinearMul: A_scale * B_scale / C_scale, C_zp */
    float ra, rb, f, fa[256]; /* QLinearAdd: A_scale / C_scale, B_scale / C_scale, f, the bytes as float32 */
    float tb[256];            /* QLinearAdd: fma(b, B_scale / C_scale, f) */
    int32_t ca[256], cb[256]; /* QLinearMul: a - A_zp, b - B_zp */
} bin_ctx;

/* f + x * r with the product rounded apart (never contracted into a fused multiply-add) */
static float add_product(float f, float x, float r) {
    volatile float p = x * r;
    return f + p;
}

/* n outputs; a and b advance by da and db bytes (0: broadcast, the operand is a scalar along the row). */
static void bin_row(const bin_ctx *k, const uint8_t *a, int64_t da, const uint8_t *b, int64_t db, uint8_t *y, int64_t n) {
    if (k->op == BIN_ADD && da == 0) {
        const float fx = add_product(k->f, k->fa[a[0]], k->ra);
        for (int64_t i = 0; i < n; i++) y[i] = q_st(fmaf(k->fa[b[i * db]], k->rb, fx), 0, k->lo, k->hi);
    } else if (k->op == BIN_ADD && db == 0) {
        const float fx = add_product(k->f, k->fa[b[0]], k->rb);
        for (int64_t i = 0; i < n; i++) y[i] = q_st(fmaf(k->fa[a[i * da]], k->ra, fx), 0, k->lo, k->hi);
    } else if (k->op == BIN_ADD) {
        for (int64_t i = 0; i < n; i++) y[i] = q_st(fmaf(k->fa[a[i * da]], k->ra, k->tb[b[i * db]]), 0, k->lo, k->hi);
    } else {
        for (int64_t i = 0; i < n; i++) {
            const float p = (float)(k->ca[a[i * da]] * k->cb[b[i * db]]) * k->mul;
            y[i] = q_st(p + k->zc, 0, k->lo, k->hi);
        }
    }
}

static void bin_init(bin_ctx *k, int op, si_dtype dt, const qp *qa, const qp *qb, const qp *qc) {
    const bool sgn = dt == SI_I8;
    k->op = op;
    k->zc = (float)qc->zp;
    q_lohi(dt, &k->lo, &k->hi);
    const float ra = qa->scale / qc->scale, rb = qb->scale / qc->scale;
    const float f = si_qlinear_add_offset(ra, qa->zp, rb, qb->zp, qc->zp);
    k->ra = ra, k->rb = rb, k->f = f;
    k->mul = qa->scale * qb->scale / qc->scale;
    for (int v = 0; v < 256; v++) {
        k->ca[v] = q_ld(sgn, (uint8_t)v) - qa->zp;
        k->cb[v] = q_ld(sgn, (uint8_t)v) - qb->zp;
        k->fa[v] = (float)q_ld(sgn, (uint8_t)v);
        k->tb[v] = fmaf((float)q_ld(sgn, (uint8_t)v), rb, f);
    }
}

SI_OP_PLANNED(qbin_run, qbin, p, qbin_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    qp qa, qb, qc;
    if ((st = read_qp(c, 1, 2, false, "A_scale", &qa)) || (st = read_qp(c, 4, 5, false, "B_scale", &qb)) ||
        (st = read_qp(c, 6, 7, true, "C_scale", &qc)))
        return st;
    bin_ctx *k = si_malloc(sizeof *k);
    if (!k) return si_op_nomem(c);
    bin_init(k, si_op_arg(c), y->dtype, &qa, &qb, &qc);
    const uint8_t *a = si_in(c, 0)->data, *b = si_in(c, 3)->data;
    uint8_t *yd = y->data;
    const int64_t total = si_count(y), nd = p->nd;
    const int64_t inner = nd ? p->dims[nd - 1] : 1, da = nd ? p->sa[nd - 1] : 0, db = nd ? p->sb[nd - 1] : 0;
    if (si_count(si_in(c, 0)) == total && si_count(si_in(c, 3)) == total) { /* same shape: one flat row */
        bin_row(k, a, total > 1, b, 1, yd, total); /* one element each: A is the scalar (ONNX Runtime's choice) */
    } else if (inner > 0) {
        int64_t idx[SI_MAX_DIMS] = {0}, oa = 0, ob = 0;
        for (int64_t r = 0; r < total / inner; r++) {
            bin_row(k, a + oa, da, b + ob, db, yd + r * inner, inner);
            for (int d = (int)nd - 2; d >= 0; d--) {
                idx[d]++, oa += p->sa[d], ob += p->sb[d];
                if (idx[d] < p->dims[d]) break;
                oa -= p->sa[d] * idx[d], ob -= p->sb[d] * idx[d], idx[d] = 0;
            }
        }
    }
    si_free(k);
    return SI_OK;
}

/* The whole op as a table for a device's kernel (quant.h): out[a * 256 + b] = QLinearAdd / QLinearMul of the
 * bytes a and b of two same-shaped operands, exactly as bin_row computes them. */
bool si_qlinear_binary_table(bool mul, si_dtype dt, float as, int32_t az, float bs, int32_t bz, float cs, int32_t cz, uint8_t *out) {
    bin_ctx *k = si_malloc(sizeof *k);
    if (!k) return false;
    const qp qa = {as, az}, qb = {bs, bz}, qc = {cs, cz};
    bin_init(k, mul ? BIN_MUL : BIN_ADD, dt, &qa, &qb, &qc);
    uint8_t bytes[256];
    for (int v = 0; v < 256; v++) bytes[v] = (uint8_t)v;
    uint8_t as256[256];
    for (int a = 0; a < 256; a++) {
        memset(as256, a, sizeof as256); /* a as a row (not a broadcast scalar, which rounds otherwise) */
        bin_row(k, as256, 1, bytes, 1, out + a * 256, 256);
    }
    si_free(k);
    return true;
}

/* =========================================================================================================
 * QLinearSigmoid, QLinearLeakyRelu: X, X_scale, X_zero_point, Y_scale[, Y_zero_point]
 */

static si_result qun_prep(const si_kctx *c) {
    const si_tensor *x;
    si_result st = si_input0(c, T_Q8, "X", &x);
    if (st || (st = scale_ok(c, 1, true, "X_scale")) || (st = scale_ok(c, 3, true, "Y_scale")) ||
        (st = zp_ok(c, 2, x->dtype, "X_zero_point", "X")) || (st = zp_ok(c, 4, x->dtype, "Y_zero_point", "X")))
        return st;
    return SI_OK;
}

static si_result qun_infer(si_kctx *c) {
    si_result st = qun_prep(c);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result qun_run(si_kctx *c) {
    si_tensor *y;
    si_result st = qun_prep(c);
    if (st || (st = si_run_begin(c, &y)) || !y) return st;
    qp qx, qy;
    if ((st = read_qp(c, 1, 2, false, "X_scale", &qx)) || (st = read_qp(c, 3, 4, true, "Y_scale", &qy))) return st;
    const int f = si_op_arg(c);
    const float alpha = f == F_LEAKY ? si_attr_float(c->node, "alpha", 0.01f) : 0.0f;
    uint8_t table[256];
    q_table(y->dtype, &qx, &qy, f, alpha, table);
    const uint8_t *x = si_in(c, 0)->data;
    uint8_t *yd = y->data;
    for (int64_t i = 0, n = si_count(y); i < n; i++) yd[i] = table[x[i]];
    return SI_OK;
}

void si_qlinear_unary_table(bool leaky, float alpha, si_dtype dt, float xs, int32_t xz, float ys, int32_t yz, uint8_t *table) {
    const qp qx = {xs, xz}, qy = {ys, yz};
    q_table(dt, &qx, &qy, leaky ? F_LEAKY : F_SIGMOID, alpha, table);
}

void si_qlinear_requant_table(si_dtype dt, float xs, int32_t xz, float ys, int32_t yz, uint8_t *table) {
    const qp qx = {xs, xz}, qy = {ys, yz};
    q_table(dt, &qx, &qy, F_IDENT, 0.0f, table);
}

/* =========================================================================================================
 * QLinearConcat: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) for each input; attribute axis
 */

typedef struct qcat {
    int n, axis;
    si_dtype dt;
    int64_t dims[SI_MAX_DIMS];
} qcat;

static si_result qcat_prep(const si_kctx *c, qcat *p) {
    si_result st;
    if ((st = scale_ok(c, 0, true, "Y_scale"))) return st;
    if (c->n_in < 4 || (c->n_in - 2) % 3 == 1) /* the last X_zero_point may be left out */
        return si_op_err(c, SI_ERR_INVALID_ARG, "expected Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples, got %d inputs",
                         c->n_in);
    p->n = (c->n_in - 2 + 2) / 3;
    if ((st = si_need_input(c, 2, false))) return st;
    const si_tensor *x0 = si_in(c, 2), *yz = si_in(c, 1);
    if ((st = si_check_type(c, x0->dtype, T_Q8, "input 0"))) return st;
    p->dt = yz ? yz->dtype : x0->dtype;
    if ((st = zp_ok(c, 1, p->dt, "Y_zero_point", "Y")) || (st = si_check_type(c, p->dt, T_Q8, "Y_zero_point"))) return st;
    if (!si_node_attr(c->node, "axis")) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute axis is required");
    if ((st = si_axis(c, si_attr_int(c->node, "axis", 0), x0->ndim, &p->axis))) return st;
    memcpy(p->dims, x0->dims, sizeof(int64_t) * (size_t)x0->ndim);
    p->dims[p->axis] = 0;
    for (int k = 0; k < p->n; k++) {
        char xn[32], sn[32], zn[40];
        snprintf(xn, sizeof xn, "input %d", k);
        snprintf(sn, sizeof sn, "scale of input %d", k);
        snprintf(zn, sizeof zn, "zero point of input %d", k);
        if ((st = si_need_input(c, 2 + 3 * k, false))) return st;
        const si_tensor *x = si_in(c, 2 + 3 * k);
        if (x->dtype != p->dt)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has element type %s, Y has %s: they must be the same", xn,
                             si_dtype_name(x->dtype), si_dtype_name(p->dt));
        if ((st = scale_ok(c, 3 + 3 * k, true, sn)) || (st = zp_ok(c, 4 + 3 * k, p->dt, zn, xn))) return st;
        if (x->ndim != x0->ndim)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has rank %d, input 0 has rank %d", xn, x->ndim, x0->ndim);
        for (int d = 0; d < x->ndim; d++)
            if (d != p->axis && x->dims[d] != x0->dims[d])
                return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld in dimension %d, input 0 has %lld (only axis %d may differ)", xn,
                                 (long long)x->dims[d], d, (long long)x0->dims[d], p->axis);
        p->dims[p->axis] += x->dims[p->axis];
    }
    return SI_OK;
}

SI_OP_PLANNED(qcat_infer, qcat, p, qcat_prep) { return si_set_out(c, 0, p->dt, si_in(c, 2)->ndim, p->dims); }

SI_OP_PLANNED(qcat_run, qcat, p, qcat_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    qp qy;
    if ((st = read_qp(c, 0, 1, true, "Y_scale", &qy))) return st;
    const int r = y->ndim;
    const int64_t outer = si_prod(y->dims, 0, p->axis), after = si_prod(y->dims, p->axis + 1, r);
    uint8_t *yd = y->data;
    int64_t off = 0;
    for (int k = 0; k < p->n; k++) {
        const si_tensor *x = si_in(c, 2 + 3 * k);
        qp qx;
        char sn[32];
        snprintf(sn, sizeof sn, "scale of input %d", k);
        if ((st = read_qp(c, 3 + 3 * k, 4 + 3 * k, false, sn, &qx))) return st;
        const bool same = qx.scale == qy.scale && qx.zp == qy.zp;
        uint8_t table[256];
        if (!same) q_table(p->dt, &qx, &qy, F_IDENT, 0.0f, table);
        const int64_t inner = x->dims[p->axis] * after;
        const uint8_t *xd = x->data;
        for (int64_t o = 0; o < outer; o++) {
            uint8_t *dst = yd + o * y->dims[p->axis] * after + off;
            const uint8_t *src = xd + o * inner;
            if (same) memcpy(dst, src, (size_t)inner);
            else
                for (int64_t i = 0; i < inner; i++) dst[i] = table[src[i]];
        }
        off += inner;
    }
    return SI_OK;
}

/* =========================================================================================================
 * QLinearGlobalAveragePool, QLinearAveragePool: X, x_scale, x_zero_point, y_scale[, y_zero_point]; channels_last
 */

/* x's layout: N, C and the spatial size, channels first or last. */
static si_result qpool_in(const si_kctx *c, int min_rank, bool *cl) {
    si_result st = qun_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    if (x->ndim < min_rank)
        return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= %d (N, C, spatial...), got %d", min_rank, x->ndim);
    *cl = si_attr_int(c->node, "channels_last", 0) != 0;
    return SI_OK;
}

static si_result gap_infer(si_kctx *c) {
    bool cl = false;
    si_result st = qpool_in(c, 3, &cl);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    int64_t dims[SI_MAX_DIMS];
    const int cdim = cl ? x->ndim - 1 : 1;
    for (int i = 0; i < x->ndim; i++) dims[i] = (i == 0 || i == cdim) ? x->dims[i] : 1;
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result gap_run(si_kctx *c) {
    bool cl = false;
    si_tensor *y;
    si_result st = qpool_in(c, 3, &cl);
    if (st || (st = si_run_begin(c, &y)) || !y) return st;
    qp qx, qy;
    if ((st = read_qp(c, 1, 2, false, "x_scale", &qx)) || (st = read_qp(c, 3, 4, true, "y_scale", &qy))) return st;
    const si_tensor *x = si_in(c, 0);
    const bool sgn = x->dtype == SI_I8;
    const int r = x->ndim;
    const int64_t N = x->dims[0], C = cl ? x->dims[r - 1] : x->dims[1], sz = cl ? si_prod(x->dims, 1, r - 1) : si_prod(x->dims, 2, r);
    if (sz == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "X has no spatial elements to average");
    int64_t *acc = si_calloc((size_t)C + 1, sizeof(int64_t));
    if (!acc) return si_op_nomem(c);
    /* ONNX Runtime: round((sum - x_zp * size) * (x_scale / (y_scale * size))) + y_zp */
    const float scale = qx.scale / (qy.scale * (float)sz);
    int32_t lo, hi;
    q_lohi(y->dtype, &lo, &hi);
    const uint8_t *xd = x->data;
    uint8_t *yd = y->data;
    for (int64_t n = 0; n < N; n++) {
        memset(acc, 0, sizeof(int64_t) * (size_t)C);
        const uint8_t *xn = xd + n * C * sz;
        if (cl) {
            for (int64_t s = 0; s < sz; s++)
                for (int64_t ch = 0; ch < C; ch++) acc[ch] += q_ld(sgn, xn[s * C + ch]);
        } else {
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t s = 0; s < sz; s++) acc[ch] += q_ld(sgn, xn[ch * sz + s]);
        }
        for (int64_t ch = 0; ch < C; ch++)
            yd[n * C + ch] = q_st((float)(int32_t)(acc[ch] - (int64_t)qx.zp * sz) * scale, qy.zp, lo, hi);
    }
    si_free(acc);
    return SI_OK;
}

typedef struct qavg {
    nn_geom g;
    bool cl;
    int64_t N, C;
} qavg;

static si_result qavg_prep(const si_kctx *c, qavg *p) {
    si_result st = qpool_in(c, 3, &p->cl);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    const int nsp = x->ndim - 2;
    if (nsp > NN_SP) return si_op_err(c, SI_ERR_UNSUPPORTED, "%d spatial dimensions are not supported (1 to %d)", nsp, NN_SP);
    int cnt = 0;
    const int64_t *ks = si_attr_ints(c->node, "kernel_shape", &cnt);
    if (!ks || cnt != nsp)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute kernel_shape must have %d values (got %d)", nsp, cnt);
    p->N = x->dims[0];
    p->C = p->cl ? x->dims[x->ndim - 1] : x->dims[1];
    return si_geom_init(c, nsp, x->dims + (p->cl ? 1 : 2), ks, true, &p->g);
}

SI_OP_PLANNED(qavg_infer, qavg, p, qavg_prep) {
    if (!p->cl) return si_geom_set_out(c, 0, si_in(c, 0)->dtype, p->N, p->C, &p->g);
    int64_t dims[SI_MAX_DIMS];
    const int r = si_in(c, 0)->ndim, off = NN_SP - (r - 2);
    dims[0] = p->N;
    for (int i = 1; i < r - 1; i++) dims[i] = p->g.out[off + i - 1];
    dims[r - 1] = p->C;
    return si_set_out(c, 0, si_in(c, 0)->dtype, r, dims);
}

/* Window taps along one dimension that lie in [lo, hi): the window starts at st and has k taps. */
static inline int64_t taps_in(int64_t st, int64_t k, int64_t lo, int64_t hi) {
    int64_t a = st > lo ? st : lo, b = st + k < hi ? st + k : hi;
    return b > a ? b - a : 0;
}

SI_OP_PLANNED(qavg_run, qavg, p, qavg_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    qp qx, qy;
    if ((st = read_qp(c, 1, 2, false, "x_scale", &qx)) || (st = read_qp(c, 3, 4, true, "y_scale", &qy))) return st;
    const si_tensor *x = si_in(c, 0);
    const bool incl = si_attr_int(c->node, "count_include_pad", 0) != 0, sgn = x->dtype == SI_I8;
    int32_t lo, hi;
    q_lohi(y->dtype, &lo, &hi);
    const nn_geom *g = &p->g;
    const int64_t insz = nn_geom_in_size(g), outsz = nn_geom_out_size(g), C = p->C;
    /* element (n, c, spatial s): channels first n*C*insz + c*insz + s; channels last (n*insz + s)*C + c */
    const int64_t cst = p->cl ? 1 : insz, sst = p->cl ? C : 1, ocst = p->cl ? 1 : outsz, osst = p->cl ? C : 1;
    const uint8_t *xd = x->data;
    uint8_t *yd = y->data;
    /* as ONNX Runtime's kernels: uint8 takes the window's integer sum less the zero point per tap (padding adds 0)
     * times x_scale / (y_scale * taps) in float32; int8 sums the dequantized values in float32 and divides by the
     * taps, then by y_scale. Either rounds half to even. */
    float deq[256];
    for (int b = 0; b < 256; b++) deq[b] = qx.scale * (float)(q_ld(sgn, (uint8_t)b) - qx.zp);
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            const uint8_t *xc = xd + n * C * insz + ch * cst;
            uint8_t *yc = yd + n * C * outsz + ch * ocst;
            for (int64_t od = 0; od < g->out[0]; od++)
                for (int64_t oh = 0; oh < g->out[1]; oh++)
                    for (int64_t ow = 0; ow < g->out[2]; ow++) {
                        const int64_t sd = od * g->s[0] - g->pb[0], sh = oh * g->s[1] - g->pb[1], sw = ow * g->s[2] - g->pb[2];
                        int64_t sum = 0, cnt = 0;
                        float fsum = 0.0f;
                        for (int64_t id = SI_MAX(sd, 0); id < SI_MIN(sd + g->k[0], g->in[0]); id++)
                            for (int64_t ih = SI_MAX(sh, 0); ih < SI_MIN(sh + g->k[1], g->in[1]); ih++)
                                for (int64_t iw = SI_MAX(sw, 0); iw < SI_MIN(sw + g->k[2], g->in[2]); iw++) {
                                    const uint8_t b = xc[((id * g->in[1] + ih) * g->in[2] + iw) * sst];
                                    sum += q_ld(sgn, b);
                                    fsum += deq[b];
                                    cnt++;
                                }
                        sum -= (int64_t)qx.zp * cnt;
                        if (incl)
                            cnt = taps_in(sd, g->k[0], -g->pb[0], g->in[0] + g->pe[0]) *
                                  taps_in(sh, g->k[1], -g->pb[1], g->in[1] + g->pe[1]) *
                                  taps_in(sw, g->k[2], -g->pb[2], g->in[2] + g->pe[2]);
                        float v = 0.0f;
                        if (cnt && sgn) v = fsum / (float)cnt / qy.scale;
                        else if (cnt) v = (float)sum * (qx.scale / (qy.scale * (float)cnt));
                        yc[((od * g->out[1] + oh) * g->out[2] + ow) * osst] = q_st(v, qy.zp, lo, hi);
                    }
        }
    return SI_OK;
}

/* =========================================================================================================
 * QLinearSoftmax: X, X_scale, x_zero_point, y_scale, y_zero_point; attributes axis and opset (that of the Softmax
 * it replaced: before 13 the input is coerced to 2-D at axis, default 1; from 13 on one axis, default -1)
 */

typedef struct qsm {
    int64_t outer, len, inner; /* rows: outer x inner, each len values inner apart */
} qsm;

static si_result qsm_prep(const si_kctx *c, qsm *p) {
    si_result st = qun_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    const int64_t ver = si_attr_int(c->node, "opset", 13);
    int axis;
    if (x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1, got a scalar");
    if ((st = si_axis(c, si_attr_int(c->node, "axis", ver < 13 ? 1 : -1), x->ndim, &axis))) return st;
    p->outer = si_prod(x->dims, 0, axis);
    p->len = ver < 13 ? si_prod(x->dims, axis, x->ndim) : x->dims[axis];
    p->inner = ver < 13 ? 1 : si_prod(x->dims, axis + 1, x->ndim);
    return SI_OK;
}

SI_OP_PLANNED(qsm_infer, qsm, p, qsm_prep) {
    (void)p;
    return si_same_as_input(c, 0, 0);
}

SI_OP_PLANNED(qsm_run, qsm, p, qsm_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    qp qx, qy;
    if ((st = read_qp(c, 1, 2, false, "X_scale", &qx)) || (st = read_qp(c, 3, 4, true, "y_scale", &qy))) return st;
    const bool sgn = y->dtype == SI_I8;
    float ex[256]; /* exp(-d * x_scale): the distance d below the row's largest value */
    for (int d = 0; d < 256; d++) ex[d] = expf(-(float)d * qx.scale);
    const uint8_t *xd = si_in(c, 0)->data;
    uint8_t *yd = y->data;
    for (int64_t o = 0; o < p->outer; o++)
        for (int64_t in = 0; in < p->inner; in++) {
            const int64_t base = o * p->len * p->inner + in;
            int32_t mx = -1000;
            for (int64_t j = 0; j < p->len; j++) mx = SI_MAX(mx, q_ld(sgn, xd[base + j * p->inner]));
            float sum = 0.0f;
            for (int64_t j = 0; j < p->len; j++) sum += ex[mx - q_ld(sgn, xd[base + j * p->inner])];
            for (int64_t j = 0; j < p->len; j++)
                yd[base + j * p->inner] = q_out(y->dtype, ex[mx - q_ld(sgn, xd[base + j * p->inner])] / sum, &qy);
        }
    return SI_OK;
}

/* =========================================================================================================
 * QGemm: A, a_scale, a_zero_point, B, b_scale, b_zero_point[, C (int32)][, y_scale, y_zero_point]; alpha, transA,
 * transB. Y = alpha * a_scale * b_scale * ((A - a_zp) (B - b_zp) + C): float32, or quantized with y_scale, y_zp.
 */

typedef struct qgemm {
    int64_t M, N, K;
    bool ta, tb;
    si_dtype out;
} qgemm;

/* A per-column parameter of B: one value or [N]. */
static si_result col_ok(const si_kctx *c, const si_tensor *t, int64_t N, const char *what) {
    if (!t || si_count(t) == 1 || (t->ndim == 1 && t->dims[0] == N)) return SI_OK;
    return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be a scalar or have one value per column of B (%lld), got %lld values", what,
                     (long long)N, (long long)si_count(t));
}

static si_result qgemm_prep(const si_kctx *c, qgemm *p) {
    const si_tensor *a, *b;
    si_result st = si_input0(c, T_Q8, "A", &a);
    if (st || (st = si_need_input(c, 3, false)) || (st = si_need_input(c, 4, false))) return st;
    b = si_in(c, 3);
    const si_tensor *bs = si_in(c, 4), *bz = si_in(c, 5), *cc = si_in_nonempty(c, 6), *ys = si_in(c, 7), *yz = si_in(c, 8);
    if ((st = si_check_type(c, b->dtype, T_Q8, "B")) || (st = si_check_type(c, bs->dtype, T_SC, "b_scale"))) return st;
    if (a->ndim != 2 || b->ndim != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "A and B must be matrices (rank 2), got ranks %d and %d", a->ndim, b->ndim);
    p->ta = si_attr_int(c->node, "transA", 0) != 0;
    p->tb = si_attr_int(c->node, "transB", 0) != 0;
    p->M = a->dims[p->ta ? 1 : 0], p->K = a->dims[p->ta ? 0 : 1], p->N = b->dims[p->tb ? 0 : 1];
    const int64_t kb = b->dims[p->tb ? 1 : 0];
    if (kb != p->K)
        return si_op_err(c, SI_ERR_INVALID_ARG, "A has K = %lld, B has K = %lld (transA %d, transB %d)", (long long)p->K,
                         (long long)kb, p->ta, p->tb);
    if ((st = scale_ok(c, 1, true, "a_scale")) || (st = zp_ok(c, 2, a->dtype, "a_zero_point", "A")) ||
        (st = col_ok(c, bs, p->N, "b_scale")) || (st = col_ok(c, bz, p->N, "b_zero_point")))
        return st;
    if (bz && bz->dtype != b->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "b_zero_point has element type %s, B has %s: they must be the same",
                         si_dtype_name(bz->dtype), si_dtype_name(b->dtype));
    if (cc) {
        if ((st = si_check_type(c, cc->dtype, SI_T(SI_I32), "C"))) return st;
        if ((st = si_unibroadcast_check(c, cc, 2, (int64_t[]){p->M, p->N}, "C"))) return st;
    }
    if ((st = scale_ok(c, 7, false, "y_scale"))) return st;
    if (yz) {
        if (!ys) return si_op_err(c, SI_ERR_INVALID_ARG, "y_zero_point is given without y_scale");
        if ((st = si_check_type(c, yz->dtype, T_Q8, "y_zero_point")) || (st = zp_ok(c, 8, yz->dtype, "y_zero_point", "Y")))
            return st;
    } else if (ys) {
        return si_op_err(c, SI_ERR_UNSUPPORTED, "y_scale without y_zero_point leaves the output type open: give y_zero_point");
    }
    p->out = yz ? yz->dtype : SI_F32;
    if (p->M * p->N > 0 && p->K > SI_REF_MAX_WORK / (p->M * p->N))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%lld x %lld x %lld products exceed the reference kernel's limit", (long long)p->M,
                         (long long)p->N, (long long)p->K);
    return SI_OK;
}

SI_OP_PLANNED(qgemm_infer, qgemm, p, qgemm_prep) { return si_set_out(c, 0, p->out, 2, (int64_t[]){p->M, p->N}); }

SI_OP_PLANNED(qgemm_run, qgemm, p, qgemm_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 3), *bs = si_in(c, 4), *bz = si_in(c, 5), *cc = si_in_nonempty(c, 6);
    const si_tensor *ys = si_in(c, 7), *yz = si_in(c, 8);
    qp qa, qy = {1.0f, 0};
    if ((st = read_qp(c, 1, 2, false, "a_scale", &qa))) return st;
    if (ys && (st = read_qp(c, 7, 8, true, "y_scale", &qy))) return st;
    const int64_t M = p->M, N = p->N, K = p->K;
    const float alpha = si_attr_float(c->node, "alpha", 1.0f);
    int32_t *aw = si_malloc(sizeof(int32_t) * (size_t)(M * K + 1)), *bw = si_malloc(sizeof(int32_t) * (size_t)(K * N + 1));
    int64_t *acc = si_malloc(sizeof(int64_t) * (size_t)(N + 1));
    float *osc = si_malloc(sizeof(float) * (size_t)(N + 1));
    if (!aw || !bw || !acc || !osc) {
        SI_FREE_ALL(aw, bw, acc, osc);
        return si_op_nomem(c);
    }
    /* A - a_zp as [M, K] and B - b_zp as [K, N], whatever the transposes */
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++)
            aw[i * K + k] = (int32_t)si_load_i64(a->dtype, a->data, p->ta ? k * M + i : i * K + k) - qa.zp;
    for (int64_t j = 0; j < N; j++) {
        const int64_t cj = si_count(bs) == 1 ? 0 : j;
        const int32_t zj = bz ? (int32_t)si_load_i64(bz->dtype, bz->data, si_count(bz) == 1 ? 0 : j) : 0;
        const float bsj = ((const float *)bs->data)[cj];
        if ((st = scale_value(c, bsj, false, "b_scale"))) break;
        osc[j] = alpha * qa.scale * bsj; /* ONNX Runtime's order: (alpha * a_scale * b_scale) / y_scale */
        if (ys) osc[j] /= qy.scale;
        for (int64_t k = 0; k < K; k++) bw[k * N + j] = (int32_t)si_load_i64(b->dtype, b->data, p->tb ? j * K + k : k * N + j) - zj;
    }
    int64_t cst[2] = {0, 0};
    if (cc) si_broadcast_strides(cc->ndim, cc->dims, 2, (int64_t[]){M, N}, cst);
    int32_t lo = 0, hi = 0;
    if (yz) q_lohi(p->out, &lo, &hi);
    for (int64_t i = 0; !st && i < M; i++) {
        for (int64_t j = 0; j < N; j++) acc[j] = cc ? ((const int32_t *)cc->data)[i * cst[0] + j * cst[1]] : 0;
        for (int64_t k = 0; k < K; k++) {
            const int64_t av = aw[i * K + k];
            const int32_t *br = bw + k * N;
            if (av)
                for (int64_t j = 0; j < N; j++) acc[j] += av * br[j];
        }
        for (int64_t j = 0; j < N; j++) {
            const float v = (float)(int32_t)(uint32_t)(uint64_t)acc[j] * osc[j]; /* the int32 accumulator wraps */
            if (yz) ((uint8_t *)y->data)[i * N + j] = q_st(v, qy.zp, lo, hi);
            else ((float *)y->data)[i * N + j] = v;
        }
    }
    SI_FREE_ALL(aw, bw, acc, osc);
    return st;
}

/* =========================================================================================================
 * Op table
 */

#define T_BIN {T_Q8, T_SC, T_Q8, T_Q8}
#define T_UN {T_Q8, T_SC, T_Q8, T_SC}

static const si_op_def defs[] = {
    {.id = SI_OP_QLINEAR_ADD, .types = T_BIN, .infer = qbin_infer, .run = qbin_run, .arg = BIN_ADD},
    {.id = SI_OP_QLINEAR_MUL, .types = T_BIN, .infer = qbin_infer, .run = qbin_run, .arg = BIN_MUL},
    {.id = SI_OP_QLINEAR_SIGMOID, .types = T_UN, .infer = qun_infer, .run = qun_run, .arg = F_SIGMOID},
    {.id = SI_OP_QLINEAR_LEAKY_RELU, .types = T_UN, .infer = qun_infer, .run = qun_run, .arg = F_LEAKY},
    {.id = SI_OP_QLINEAR_CONCAT, .types = {T_SC, T_Q8, T_Q8, T_SC}, .infer = qcat_infer, .run = qcat_run},
    {.id = SI_OP_QLINEAR_GLOBAL_AVERAGE_POOL, .types = T_UN, .infer = gap_infer, .run = gap_run},
    {.id = SI_OP_QLINEAR_AVERAGE_POOL, .types = T_UN, .infer = qavg_infer, .run = qavg_run},
    {.id = SI_OP_QLINEAR_SOFTMAX, .types = T_UN, .infer = qsm_infer, .run = qsm_run},
    {.id = SI_OP_QGEMM, .types = {T_Q8, T_SC, T_Q8, T_Q8}, .infer = qgemm_infer, .run = qgemm_run},
};

SI_OP_FAMILY(qlinear_ms, defs);
