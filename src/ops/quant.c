/*
 * quant.c — linear quantization: QuantizeLinear and DequantizeLinear (per tensor, per axis and blocked, as in
 * opset 21 and later), DynamicQuantizeLinear, and the integer products MatMulInteger, ConvInteger,
 * QLinearMatMul and QLinearConv.
 *
 * The arithmetic follows the ONNX specification and its reference implementation, which produced the node
 * tests: QuantizeLinear divides in the precision of the scale (float32 unless the scale or the `precision`
 * attribute says float16/bfloat16), rounds ties to even and saturates; integer products accumulate exactly
 * (in 64 bits here, stored as int32 as the specification's int32 accumulator wraps); the QLinear ops requantize
 * with the multiplier a_scale * b_scale / y_scale computed in the scales' type, applied to the accumulator (bias
 * included) in float32 and rounded to nearest even, as ONNX Runtime does (a product in double rounds differently
 * now and then, and a deep quantized net amplifies a one-unit difference).
 *
 * Element types: uint8, int8, uint16, int16 (and int32 for DequantizeLinear) quantized values, and for
 * QuantizeLinear / DequantizeLinear the narrow types: int4/uint4, int2/uint2 (saturated like the others),
 * float8 and float4e2m1 (x / scale + zero point rounded to nearest even, saturated unless `saturate` is 0).
 * The integer products take 8-bit types only.
 */
#include "ops/quant.h"

#include "ops/nn.h"

#include <math.h>
#include <string.h>

#define T_SCALE (SI_T(SI_F32) | SI_T(SI_F16) | SI_T(SI_BF16))
#define T_Q8 (SI_T(SI_U8) | SI_T(SI_I8))

/* =========================================================================================================
 * Quantization parameters: how an element of x finds its scale and zero point
 */

typedef struct q_params {
    const si_tensor *scale, *zp; /* zp may be NULL */
    int axis;                    /* -1: per tensor */
    int64_t block;               /* 0: per axis (or per tensor) */
    int64_t len, inner, nblk;    /* x.dims[axis], product of the dims after it, blocks along the axis */
} q_params;

/* Index into scale / zero point of element i of x. */
static inline int64_t q_index(const q_params *p, int64_t i) {
    if (p->axis < 0) return 0;
    int64_t a = (i / p->inner) % p->len;
    if (!p->block) return a;
    int64_t o = i / (p->inner * p->len), in = i % p->inner;
    return (o * p->nblk + a / p->block) * p->inner + in;
}

/* Shared by QuantizeLinear and DequantizeLinear: the scale's and zero point's shapes against x's (per tensor,
 * per axis or blocked), axis and block_size. sname/zname name the inputs in messages. */
static si_result q_prepare(const si_kctx *c, const si_tensor *x, int si, int zi, const char *sname, const char *zname,
                           q_params *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    if ((st = si_need_input(c, si, false))) return st;
    p->scale = si_in(c, si);
    p->zp = si_in(c, zi);
    const si_tensor *s = p->scale;
    if ((st = si_check_type(c, s->dtype, T_SCALE, sname))) return st;
    if (p->zp && !(si_count(p->zp) == 1 && si_count(s) == 1 && p->zp->ndim <= 1 && s->ndim <= 1)) { /* [] and [1] */
        if (p->zp->ndim != s->ndim || memcmp(p->zp->dims, s->dims, sizeof(int64_t) * (size_t)s->ndim))
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s must have the shape of %s", zname, sname);
    }
    int64_t axis = si_attr_int(c->node, "axis", 1);
    p->block = c->opset >= 21 ? si_attr_int(c->node, "block_size", 0) : 0;
    if (p->block < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "block_size %lld must not be negative", (long long)p->block);
    int r = x->ndim;
    if (p->block == 0 && si_count(s) == 1 && s->ndim <= 1) { /* per tensor */
        p->axis = -1;
        return SI_OK;
    }
    if (c->opset < 13 || r == 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be a scalar here (it has %lld values)", sname, (long long)si_count(s));
    if (axis < -r || axis >= r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is out of range for an input of rank %d", (long long)axis, r);
    p->axis = (int)(axis < 0 ? axis + r : axis);
    p->len = x->dims[p->axis];
    p->inner = si_prod(x->dims, p->axis + 1, r);
    if (p->block == 0) {
        if (s->ndim != 1 || s->dims[0] != p->len)
            return si_op_err(c, SI_ERR_INVALID_ARG, "per-axis %s must be 1-D of length %lld (axis %d), got rank %d with %lld values",
                             sname, (long long)p->len, p->axis, s->ndim, (long long)si_count(s));
        return SI_OK;
    }
    p->nblk = (p->len + p->block - 1) / p->block;
    if (s->ndim != r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "blocked %s must have the rank of the input (%d), got %d", sname, r, s->ndim);
    for (int d = 0; d < r; d++) {
        int64_t want = d == p->axis ? p->nblk : x->dims[d];
        if (s->dims[d] != want)
            return si_op_err(c, SI_ERR_INVALID_ARG, "blocked %s has %lld in dimension %d, expected %lld (block_size %lld)", sname,
                             (long long)s->dims[d], d, (long long)want, (long long)p->block);
    }
    return SI_OK;
}

/* Round a float to the precision of a scale type (float16/bfloat16 arithmetic rounds each result). */
static inline float round_to(si_dtype dt, float v) {
    if (dt == SI_F16) return si_f16_to_f32(si_f32_to_f16(v));
    if (dt == SI_BF16) return si_bf16_to_f32(si_f32_to_bf16(v));
    return v;
}

/* An element type attribute (since opset `since`; 0 or absent: dflt, the scale's type) that must be float32,
 * float16 or bfloat16. */
static si_result float_type_attr(const si_kctx *c, int since, const char *name, si_dtype dflt, si_dtype *out) {
    int64_t v = c->opset >= since ? si_attr_int(c->node, name, 0) : 0;
    *out = v ? (si_dtype)v : dflt;
    if (!(*out == SI_F32 || *out == SI_F16 || *out == SI_BF16))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%s %lld is not supported (float32, float16, bfloat16)", name, (long long)v);
    return SI_OK;
}

/* =========================================================================================================
 * QuantizeLinear
 */

typedef struct q_node {
    q_params p;
    si_dtype out;  /* quantized type */
    si_dtype prec; /* type of the division x / y_scale */
} q_node;

static si_result q_prep(const si_kctx *c, q_node *q) {
    const si_tensor *x;
    si_result st = si_input0(c, T_SCALE | SI_T(SI_I32), "x", &x);
    if (st || (st = q_prepare(c, x, 1, 2, "y_scale", "y_zero_point", &q->p))) return st;
    int64_t odt = c->opset >= 21 ? si_attr_int(c->node, "output_dtype", 0) : 0;
    const si_tensor *zp = q->p.zp;
    if (odt && zp && odt != (int64_t)zp->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "output_dtype %lld does not match y_zero_point's element type %s", (long long)odt,
                         si_dtype_name(zp->dtype));
    q->out = zp ? zp->dtype : odt ? (si_dtype)odt : SI_U8;
    int64_t lo, hi;
    if ((int)q->out < 0 || (int)q->out >= 32 || !(SI_T(q->out) & (SI_T_QUANT | SI_T_QUANT_NARROW)) ||
        !(si_q_range(q->out, &lo, &hi) || si_dtype_is_minifloat(q->out)))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "quantizing to element type %s is not supported", si_dtype_name(q->out));
    return float_type_attr(c, 23, "precision", q->p.scale->dtype, &q->prec);
}

SI_OP_PLANNED(quantize_infer, q_node, q, q_prep) {
    return si_set_out(c, 0, q->out, si_in(c, 0)->ndim, si_in(c, 0)->dims);
}

/* Scales that divide must be non-zero and finite. */
static si_result check_divisor(const si_kctx *c, const si_tensor *s, const char *what) {
    for (int64_t i = 0; i < si_count(s); i++) {
        double v = si_load_f64(s->dtype, s->data, i);
        if (v == 0.0 || !isfinite(v))
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s[%lld] is %g: a scale that divides must be non-zero and finite", what,
                             (long long)i, v);
    }
    return SI_OK;
}

SI_OP_PLANNED(quantize_run, q_node, q, q_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    const si_tensor *x = si_in(c, 0), *s = q->p.scale, *zp = q->p.zp;
    if ((st = check_divisor(c, s, "y_scale"))) return st;
    int64_t lo = 0, hi = 0;
    const bool mf = si_dtype_is_minifloat(q->out);
    const bool sat = c->opset < 19 || si_attr_int(c->node, "saturate", 1) != 0;
    si_q_range(q->out, &lo, &hi);
    const int64_t n = si_count(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = q_index(&q->p, i);
        double v;
        if (x->dtype == SI_I32) { /* an int32 input divides in double (numpy's int32 / float32) */
            v = (double)((const int32_t *)x->data)[i] / si_load_f64(s->dtype, s->data, k);
        } else {
            float xv = round_to(q->prec, (float)si_load_f64(x->dtype, x->data, i));
            float sv = round_to(q->prec, (float)si_load_f64(s->dtype, s->data, k));
            v = round_to(q->prec, xv / sv);
        }
        if (mf) { /* float8 / float4e2m1: x / scale + zero point, rounded once to the type */
            float f = (float)v + (zp ? (float)si_load_f64(zp->dtype, zp->data, k) : 0.0f);
            ((uint8_t *)y->data)[i] = si_minifloat_encode(q->out, f, sat);
            continue;
        }
        double r = isnan(v) ? 0.0 : nearbyint(v);
        if (zp) r += (double)si_load_i64(zp->dtype, zp->data, k);
        si_store_i64(q->out, y->data, i, r < (double)lo ? lo : r > (double)hi ? hi : (int64_t)r);
    }
    return SI_OK;
}

/* =========================================================================================================
 * DequantizeLinear
 */

typedef struct dq_node {
    q_params p;
    si_dtype out;
} dq_node;

static si_result dq_prep(const si_kctx *c, dq_node *d) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_QUANT | SI_T_QUANT_NARROW | SI_T(SI_I32), "x", &x);
    if (st || (st = q_prepare(c, x, 1, 2, "x_scale", "x_zero_point", &d->p))) return st;
    if (d->p.zp && d->p.zp->dtype != x->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "x_zero_point has element type %s, x has %s: they must be the same",
                         si_dtype_name(d->p.zp->dtype), si_dtype_name(x->dtype));
    return float_type_attr(c, 23, "output_dtype", d->p.scale->dtype, &d->out);
}

SI_OP_PLANNED(dequantize_infer, dq_node, d, dq_prep) {
    return si_set_out(c, 0, d->out, si_in(c, 0)->ndim, si_in(c, 0)->dims);
}

SI_OP_PLANNED(dequantize_run, dq_node, d, dq_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    const si_tensor *x = si_in(c, 0), *s = d->p.scale, *zp = d->p.zp;
    if (zp && x->dtype == SI_I32)
        for (int64_t i = 0; i < si_count(zp); i++)
            if (si_load_i64(zp->dtype, zp->data, i) != 0)
                return si_op_err(c, SI_ERR_INVALID_ARG, "an int32 input's x_zero_point must be 0, got %lld at %lld",
                                 (long long)si_load_i64(zp->dtype, zp->data, i), (long long)i);
    const int64_t n = si_count(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = q_index(&d->p, i);
        if (si_dtype_is_minifloat(x->dtype)) { /* float8 / float4e2m1: (x - zero point) * scale in float32 */
            float xv = (float)si_load_f64(x->dtype, x->data, i) - (zp ? (float)si_load_f64(zp->dtype, zp->data, k) : 0.0f);
            si_store_f64(d->out, y->data, i, (double)(xv * (float)si_load_f64(s->dtype, s->data, k)));
            continue;
        }
        int64_t q = si_load_i64(x->dtype, x->data, i) - (zp ? si_load_i64(zp->dtype, zp->data, k) : 0);
        /* (x - zp) is exact in double and the product rounds once, as float32 arithmetic does */
        si_store_f64(d->out, y->data, i, (double)(float)((double)q * si_load_f64(s->dtype, s->data, k)));
    }
    return SI_OK;
}

/* =========================================================================================================
 * DynamicQuantizeLinear
 */

static si_result dql_infer(si_kctx *c) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T(SI_F32), "x", &x);
    if (st) return st;
    if ((st = si_set_out(c, 0, SI_U8, x->ndim, x->dims)) || (st = si_set_out(c, 1, SI_F32, 0, NULL))) return st;
    return si_set_out(c, 2, SI_U8, 0, NULL);
}

static si_result dql_run(si_kctx *c) {
    si_result st = dql_infer(c);
    if (st || (st = si_run_ready(c))) return st;
    const si_tensor *x = si_in(c, 0);
    const float *xv = x->data;
    const int64_t n = si_count(x);
    float lo = 0.0f, hi = 0.0f, scale;
    uint8_t zp;
    for (int64_t i = 0; i < n; i++) { /* NaN compares false: it is skipped */
        if (xv[i] < lo) lo = xv[i];
        if (xv[i] > hi) hi = xv[i];
    }
    si_dql_params(lo, hi, &scale, &zp);
    si_tensor *y = si_out(c, 0), *ys = si_out(c, 1), *yz = si_out(c, 2);
    if (y)
        for (int64_t i = 0; i < n; i++) ((uint8_t *)y->data)[i] = si_dql_quantize(xv[i], scale, (float)zp);
    if (ys) *(float *)ys->data = scale;
    if (yz) *(uint8_t *)yz->data = zp;
    return SI_OK;
}

/* =========================================================================================================
 * Integer matrix products: MatMulInteger, QLinearMatMul
 */

/* numpy matmul shapes of A and B (8-bit integers, each of either signedness). */
static si_result qmm_prep(const si_kctx *c, int ia, int ib, nn_mm *p) {
    si_result st;
    if ((st = si_need_input(c, ia, false)) || (st = si_need_input(c, ib, false))) return st;
    const si_tensor *a = si_in(c, ia), *b = si_in(c, ib);
    if ((st = si_check_type(c, a->dtype, T_Q8, "A")) || (st = si_check_type(c, b->dtype, T_Q8, "B"))) return st;
    return si_mm_shape(c, a, b, p);
}

/* A zero point (or scale) of an operand: a scalar (stride 0), one per row of A ([M], or A's shape with K = 1)
 * or one per column of B ([N], or B's shape with K = 1). Gives, for batch bi, the offset of the first value and
 * the stride along the rows (rows_of_a) or columns; *per_batch the stride between matrices. */
typedef struct qvec {
    const si_tensor *t;
    int64_t stride, batch_stride; /* along M (A) or N (B); between the operand's matrices */
} qvec;

static si_result qvec_of(const si_kctx *c, const si_tensor *t, const si_tensor *op, bool rows_of_a, int64_t len, const char *what,
                         qvec *v) {
    memset(v, 0, sizeof *v);
    v->t = t;
    if (!t || si_count(t) == 1) return SI_OK;
    if (t->ndim == 1 && t->dims[0] == len) {
        v->stride = 1;
        return SI_OK;
    }
    /* the operand's shape with its K dimension 1: one vector per matrix */
    bool same = op->ndim >= 2 && t->ndim == op->ndim;
    for (int d = 0; same && d < t->ndim; d++) {
        bool kdim = rows_of_a ? d == op->ndim - 1 : d == op->ndim - 2;
        same = kdim ? t->dims[d] == 1 : t->dims[d] == op->dims[d];
    }
    if (!same)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values: expected one, one per %s (%lld), or the operand's shape with 1 in place of K",
                         what, (long long)si_count(t), rows_of_a ? "row of A" : "column of B", (long long)len);
    v->stride = 1;
    v->batch_stride = len;
    return SI_OK;
}

static inline int64_t qvec_i64(const qvec *v, int64_t mat, int64_t i) {
    return v->t ? si_load_i64(v->t->dtype, v->t->data, mat * v->batch_stride + i * v->stride) : 0;
}
static inline double qvec_f64(const qvec *v, int64_t mat, int64_t i) {
    return si_load_f64(v->t->dtype, v->t->data, mat * v->batch_stride + i * v->stride);
}

/* acc[M x N] = (A - a_zp) (B - b_zp) for batch bi, exact in 64 bits. */
static void qmm_batch(const nn_mm *p, int64_t bi, const si_tensor *a, const qvec *az, const si_tensor *b, const qvec *bz, int64_t *acc) {
    int64_t ao, bo;
    si_mm_offsets(p, bi, &ao, &bo);
    const int64_t M = p->M, N = p->N, K = p->K;
    for (int64_t i = 0; i < M * N; i++) acc[i] = 0;
    for (int64_t i = 0; i < M; i++) {
        int64_t za = qvec_i64(az, ao, i);
        for (int64_t k = 0; k < K; k++) {
            int64_t av = si_load_i64(a->dtype, a->data, (ao * M + i) * K + k) - za;
            if (!av) continue;
            for (int64_t j = 0; j < N; j++) {
                int64_t bv = si_load_i64(b->dtype, b->data, (bo * K + k) * N + j) - qvec_i64(bz, bo, j);
                acc[i * N + j] += av * bv;
            }
        }
    }
}

static si_result zp_type(const si_kctx *c, const si_tensor *zp, const si_tensor *x, const char *zname, const char *xname) {
    if (zp && zp->dtype != x->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has element type %s, %s has %s: they must be the same", zname, si_dtype_name(zp->dtype),
                         xname, si_dtype_name(x->dtype));
    return SI_OK;
}

static si_result mmi_prep(const si_kctx *c, nn_mm *p, qvec *az, qvec *bz) {
    si_result st = qmm_prep(c, 0, 1, p);
    if (st) return st;
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 1), *za = si_in(c, 2), *zb = si_in(c, 3);
    if ((st = zp_type(c, za, a, "a_zero_point", "A")) || (st = zp_type(c, zb, b, "b_zero_point", "B"))) return st;
    if ((st = qvec_of(c, za, a, true, p->M, "a_zero_point", az))) return st;
    return qvec_of(c, zb, b, false, p->N, "b_zero_point", bz);
}

static si_result mmi_infer(si_kctx *c) {
    nn_mm p;
    qvec az, bz;
    si_result st = mmi_prep(c, &p, &az, &bz);
    if (st) return st;
    return si_set_out(c, 0, SI_I32, p.nout, p.odims);
}

static si_result mmi_run(si_kctx *c) {
    nn_mm p;
    qvec az, bz;
    si_result st = mmi_prep(c, &p, &az, &bz);
    si_tensor *y;
    if (st || (st = si_run_begin(c, &y)) || !y) return st;
    int64_t *acc = si_malloc(sizeof(int64_t) * (size_t)(p.M * p.N + 1));
    if (!acc) return si_op_nomem(c);
    int32_t *yd = y->data;
    for (int64_t bi = 0; bi < p.nbatch; bi++) {
        qmm_batch(&p, bi, si_in(c, 0), &az, si_in(c, 1), &bz, acc);
        for (int64_t i = 0; i < p.M * p.N; i++) yd[bi * p.M * p.N + i] = (int32_t)(uint32_t)(uint64_t)acc[i]; /* wraps */
    }
    si_free(acc);
    return SI_OK;
}

/* The requantization multiplier a_scale * b_scale / y_scale in the scales' precision. */
static double requant_mult(si_dtype dt, double as, double bs, double ys) {
    float m = round_to(dt, round_to(dt, (float)as * (float)bs) / (float)ys);
    return m;
}

/* saturate(round(acc * mult) + zp) into a quantized type. */
static void requant_store(si_dtype dt, void *y, int64_t i, double v, int64_t zp) {
    int64_t lo = 0, hi = 0;
    si_q_range(dt, &lo, &hi);
    double r = nearbyint(v) + (double)zp;
    si_store_i64(dt, y, i, r < (double)lo ? lo : r > (double)hi ? hi : (int64_t)r);
}

typedef struct qlmm {
    nn_mm p;
    qvec az, bz, as, bs, ys, yz;
} qlmm;

static si_result qlmm_prep(const si_kctx *c, qlmm *q) {
    si_result st = qmm_prep(c, 0, 3, &q->p);
    if (st) return st;
    for (int i = 1; i < 8; i++)
        if (i != 3 && (st = si_need_input(c, i, false))) return st;
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 3);
    const si_tensor *as = si_in(c, 1), *za = si_in(c, 2), *bs = si_in(c, 4), *zb = si_in(c, 5), *ys = si_in(c, 6), *zy = si_in(c, 7);
    if ((st = si_check_type(c, as->dtype, T_SCALE, "a_scale")) || (st = si_check_type(c, bs->dtype, T_SCALE, "b_scale")) ||
        (st = si_check_type(c, ys->dtype, T_SCALE, "y_scale")))
        return st;
    if (as->dtype != bs->dtype || as->dtype != ys->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "a_scale, b_scale and y_scale must have one element type (got %s, %s, %s)",
                         si_dtype_name(as->dtype), si_dtype_name(bs->dtype), si_dtype_name(ys->dtype));
    if ((st = zp_type(c, za, a, "a_zero_point", "a")) || (st = zp_type(c, zb, b, "b_zero_point", "b")) ||
        (st = si_check_type(c, zy->dtype, T_Q8, "y_zero_point")))
        return st;
    if ((st = qvec_of(c, za, a, true, q->p.M, "a_zero_point", &q->az)) || (st = qvec_of(c, zb, b, false, q->p.N, "b_zero_point", &q->bz)) ||
        (st = qvec_of(c, as, a, true, q->p.M, "a_scale", &q->as)) || (st = qvec_of(c, bs, b, false, q->p.N, "b_scale", &q->bs)))
        return st;
    if (si_count(ys) != 1 || si_count(zy) != 1)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "per-row y_scale or y_zero_point is not supported (one value each)");
    return SI_OK;
}

SI_OP_PLANNED(qlmm_infer, qlmm, q, qlmm_prep) {
    return si_set_out(c, 0, si_in(c, 7)->dtype, q->p.nout, q->p.odims);
}

SI_OP_PLANNED(qlmm_run, qlmm, q, qlmm_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    const si_tensor *ys = si_in(c, 6), *zy = si_in(c, 7);
    if ((st = check_divisor(c, ys, "y_scale"))) return st;
    const nn_mm *p = &q->p;
    int64_t *acc = si_malloc(sizeof(int64_t) * (size_t)(p->M * p->N + 1));
    if (!acc) return si_op_nomem(c);
    const double ysv = si_load_f64(ys->dtype, ys->data, 0);
    const int64_t yzp = si_load_i64(zy->dtype, zy->data, 0);
    for (int64_t bi = 0; bi < p->nbatch; bi++) {
        int64_t ao, bo;
        si_mm_offsets(p, bi, &ao, &bo);
        qmm_batch(p, bi, si_in(c, 0), &q->az, si_in(c, 3), &q->bz, acc);
        for (int64_t i = 0; i < p->M; i++)
            for (int64_t j = 0; j < p->N; j++) {
                double m = requant_mult(ys->dtype, qvec_f64(&q->as, ao, i), qvec_f64(&q->bs, bo, j), ysv);
                requant_store(y->dtype, y->data, (bi * p->M + i) * p->N + j, (double)((float)(int32_t)acc[i * p->N + j] * (float)m), yzp);
            }
    }
    si_free(acc);
    return SI_OK;
}

/* =========================================================================================================
 * Integer convolutions: ConvInteger, QLinearConv
 */

typedef struct qconv {
    nn_geom g;
    int64_t N, C, M, group, cg, mg;
    const si_tensor *x, *w, *xz, *wz; /* zero points may be NULL */
} qconv;

/* Geometry and zero points of an integer convolution whose x, w, x_zero_point, w_zero_point are inputs
 * ix, iw, ixz, iwz. */
static si_result qconv_prep(const si_kctx *c, int ix, int iw, int ixz, int iwz, qconv *p) {
    si_result st;
    int nsp = 0;
    if ((st = si_need_input(c, ix, false)) || (st = si_need_input(c, iw, false))) return st;
    const si_tensor *x = si_in(c, ix), *w = si_in(c, iw);
    p->x = x, p->w = w, p->xz = si_in(c, ixz), p->wz = si_in(c, iwz);
    if ((st = si_spatial_rank(c, x, &nsp))) return st;
    if ((st = si_check_type(c, x->dtype, T_Q8, "x")) || (st = si_check_type(c, w->dtype, T_Q8, "w"))) return st;
    if ((st = zp_type(c, p->xz, x, "x_zero_point", "x")) || (st = zp_type(c, p->wz, w, "w_zero_point", "w"))) return st;
    if (w->ndim != x->ndim) return si_op_err(c, SI_ERR_INVALID_ARG, "w has rank %d, x has rank %d", w->ndim, x->ndim);
    int cnt = 0;
    const int64_t *ks = si_attr_ints(c->node, "kernel_shape", &cnt);
    if (ks && cnt > 0) {
        if (cnt != nsp) return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape has %d values, expected %d", cnt, nsp);
        for (int i = 0; i < nsp; i++)
            if (ks[i] != w->dims[2 + i])
                return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape[%d] = %lld does not match w's %lld", i, (long long)ks[i],
                                 (long long)w->dims[2 + i]);
    }
    p->group = si_attr_int(c->node, "group", 1);
    if (p->group < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "group %lld must be positive", (long long)p->group);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->M = w->dims[0];
    if (w->dims[1] * p->group != p->C)
        return si_op_err(c, SI_ERR_INVALID_ARG, "w has %lld input channels per group but x has %lld channels and group %lld",
                         (long long)w->dims[1], (long long)p->C, (long long)p->group);
    if (p->M % p->group != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "output channels %lld are not divisible by group %lld", (long long)p->M, (long long)p->group);
    p->cg = p->C / p->group;
    p->mg = p->M / p->group;
    if (p->xz && si_count(p->xz) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "x_zero_point must be a scalar, got %lld values", (long long)si_count(p->xz));
    if (p->wz && si_count(p->wz) != 1 && !(p->wz->ndim == 1 && p->wz->dims[0] == p->M))
        return si_op_err(c, SI_ERR_INVALID_ARG, "w_zero_point must be a scalar or have one value per output channel (%lld), got %lld",
                         (long long)p->M, (long long)si_count(p->wz));
    return si_geom_init(c, nsp, x->dims + 2, w->dims + 2, false, &p->g);
}

/* acc[N, M, out...] = conv(x - x_zp, w - w_zp), exact in 64 bits; padding reads x_zp (contributes 0). NULL when
 * out of memory. */
static int64_t *qconv_acc(const qconv *p) {
    const nn_geom *g = &p->g;
    const int64_t insz = nn_geom_in_size(g), outsz = nn_geom_out_size(g), kp = g->k[0] * g->k[1] * g->k[2];
    const int64_t nx = p->N * p->C * insz, nw = p->M * p->cg * kp;
    int32_t *xs = si_malloc(sizeof(int32_t) * (size_t)(nx + 1)), *ws = si_malloc(sizeof(int32_t) * (size_t)(nw + 1));
    int64_t *acc = si_calloc((size_t)(p->N * p->M * outsz + 1), sizeof(int64_t));
    if (!xs || !ws || !acc) {
        SI_FREE_ALL(xs, ws, acc);
        return NULL;
    }
    int64_t xz = p->xz ? si_load_i64(p->xz->dtype, p->xz->data, 0) : 0;
    for (int64_t i = 0; i < nx; i++) xs[i] = (int32_t)(si_load_i64(p->x->dtype, p->x->data, i) - xz);
    for (int64_t i = 0; i < nw; i++) {
        int64_t m = i / (p->cg * kp);
        int64_t wz = p->wz ? si_load_i64(p->wz->dtype, p->wz->data, si_count(p->wz) == 1 ? 0 : m) : 0;
        ws[i] = (int32_t)(si_load_i64(p->w->dtype, p->w->data, i) - wz);
    }
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t m = 0; m < p->M; m++) {
            const int64_t gi = m / p->mg;
            int64_t *ym = acc + (n * p->M + m) * outsz;
            for (int64_t ch = 0; ch < p->cg; ch++) {
                const int32_t *xc = xs + (n * p->C + gi * p->cg + ch) * insz, *wc = ws + (m * p->cg + ch) * kp;
                for (int64_t ka = 0; ka < g->k[0]; ka++)
                    for (int64_t kb = 0; kb < g->k[1]; kb++)
                        for (int64_t ke = 0; ke < g->k[2]; ke++) {
                            const int64_t wv = wc[(ka * g->k[1] + kb) * g->k[2] + ke];
                            if (!wv) continue;
                            for (int64_t od = 0; od < g->out[0]; od++) {
                                const int64_t id = od * g->s[0] - g->pb[0] + ka * g->d[0];
                                if (id < 0 || id >= g->in[0]) continue;
                                for (int64_t oh = 0; oh < g->out[1]; oh++) {
                                    const int64_t ih = oh * g->s[1] - g->pb[1] + kb * g->d[1];
                                    if (ih < 0 || ih >= g->in[1]) continue;
                                    const int32_t *xr = xc + (id * g->in[1] + ih) * g->in[2];
                                    int64_t *yr = ym + (od * g->out[1] + oh) * g->out[2];
                                    for (int64_t ow = 0; ow < g->out[2]; ow++) {
                                        const int64_t iw = ow * g->s[2] - g->pb[2] + ke * g->d[2];
                                        if (iw >= 0 && iw < g->in[2]) yr[ow] += wv * xr[iw];
                                    }
                                }
                            }
                        }
            }
        }
    SI_FREE_ALL(xs, ws);
    return acc;
}

static si_result convi_infer(si_kctx *c) {
    qconv p;
    si_result st = qconv_prep(c, 0, 1, 2, 3, &p);
    if (st) return st;
    return si_geom_set_out(c, 0, SI_I32, p.N, p.M, &p.g);
}

static si_result convi_run(si_kctx *c) {
    qconv p;
    si_result st = qconv_prep(c, 0, 1, 2, 3, &p);
    si_tensor *y;
    if (st || (st = si_run_begin(c, &y)) || !y) return st;
    int64_t *acc = qconv_acc(&p);
    if (!acc) return si_op_nomem(c);
    for (int64_t i = 0; i < si_count(y); i++) ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(uint64_t)acc[i];
    si_free(acc);
    return SI_OK;
}

/* QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point[, B (int32)]. */
static si_result qlconv_prep(const si_kctx *c, qconv *p) {
    si_result st = qconv_prep(c, 0, 3, 2, 5, p);
    if (st) return st;
    for (int i = 1; i < 8; i++)
        if ((st = si_need_input(c, i, false))) return st;
    const si_tensor *xs = si_in(c, 1), *ws = si_in(c, 4), *ys = si_in(c, 6), *zy = si_in(c, 7), *b = si_in(c, 8);
    if ((st = si_check_type(c, xs->dtype, SI_T(SI_F32), "x_scale")) || (st = si_check_type(c, ws->dtype, SI_T(SI_F32), "w_scale")) ||
        (st = si_check_type(c, ys->dtype, SI_T(SI_F32), "y_scale")) || (st = si_check_type(c, zy->dtype, T_Q8, "y_zero_point")))
        return st;
    if (si_count(xs) != 1 || si_count(ys) != 1 || si_count(zy) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "x_scale, y_scale and y_zero_point must be scalars");
    if (si_count(ws) != 1 && !(ws->ndim == 1 && ws->dims[0] == p->M))
        return si_op_err(c, SI_ERR_INVALID_ARG, "w_scale must be a scalar or have one value per output channel (%lld), got %lld",
                         (long long)p->M, (long long)si_count(ws));
    if (b) {
        if ((st = si_check_type(c, b->dtype, SI_T(SI_I32), "B"))) return st;
        if (b->ndim != 1 || b->dims[0] != p->M) return si_op_err(c, SI_ERR_INVALID_ARG, "B must have shape [%lld]", (long long)p->M);
    }
    return SI_OK;
}

SI_OP_PLANNED(qlconv_infer, qconv, p, qlconv_prep) {
    return si_geom_set_out(c, 0, si_in(c, 7)->dtype, p->N, p->M, &p->g);
}

SI_OP_PLANNED(qlconv_run, qconv, p, qlconv_prep) {
    si_tensor *y;
    si_result st = si_run_begin(c, &y);
    if (st || !y) return st;
    const si_tensor *xs = si_in(c, 1), *ws = si_in(c, 4), *ys = si_in(c, 6), *zy = si_in(c, 7), *b = si_in(c, 8);
    if ((st = check_divisor(c, ys, "y_scale"))) return st;
    int64_t *acc = qconv_acc(p);
    if (!acc) return si_op_nomem(c);
    const int64_t outsz = nn_geom_out_size(&p->g), yzp = si_load_i64(zy->dtype, zy->data, 0);
    const double xsv = si_load_f64(xs->dtype, xs->data, 0), ysv = si_load_f64(ys->dtype, ys->data, 0);
    for (int64_t i = 0; i < si_count(y); i++) {
        int64_t m = (i / outsz) % p->M;
        double mult = requant_mult(SI_F32, xsv, si_load_f64(ws->dtype, ws->data, si_count(ws) == 1 ? 0 : m), ysv);
        int32_t a = (int32_t)(uint32_t)(uint64_t)(acc[i] + (b ? ((const int32_t *)b->data)[m] : 0));
        requant_store(y->dtype, y->data, i, (double)((float)a * (float)mult), yzp);
    }
    si_free(acc);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    {.id = SI_OP_QUANTIZE_LINEAR, .types = {T_SCALE | SI_T(SI_I32), 0, SI_T_ALL | SI_T_QUANT_NARROW},
     .infer = quantize_infer, .run = quantize_run},
    {.id = SI_OP_DEQUANTIZE_LINEAR, .types = {SI_T_QUANT | SI_T_QUANT_NARROW | SI_T(SI_I32), 0, SI_T_ALL | SI_T_QUANT_NARROW},
     .infer = dequantize_infer, .run = dequantize_run},
    SI_OP_DEF(DYNAMIC_QUANTIZE_LINEAR, SI_T(SI_F32), dql_infer, dql_run),
    SI_OP_DEF(MATMUL_INTEGER, T_Q8, mmi_infer, mmi_run),
    SI_OP_DEF(CONV_INTEGER, T_Q8, convi_infer, convi_run),
    SI_OP_DEF(QLINEAR_MATMUL, T_Q8, qlmm_infer, qlmm_run),
    SI_OP_DEF(QLINEAR_CONV, T_Q8, qlconv_infer, qlconv_run),
};

SI_OP_FAMILY(quant, defs);
