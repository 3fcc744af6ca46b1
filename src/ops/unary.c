/*
 * unary.c — reference kernels for the element-wise ops of one input: math functions and activations,
 * IsNaN/IsInf, Not/BitwiseNot, Clip (one definition per interface: attributes before opset 11, inputs
 * from 11 on), and Cast/CastLike.
 *
 * Unary ops are described by an un_def: a double function for floats, an int64 function for signed integers
 * and a uint64 function for unsigned integers and bool; float32 has dedicated loops for Relu, LeakyRelu,
 * Sigmoid, HardSigmoid, HardSwish, Tanh and Clip. The list UNARY_OPS below generates each op's functions and
 * its line of the table at the end.
 */
#include "ops/elem.h"

#include <float.h>

/* ---------------------------------------------------------------------------------------------------------
 * Unary ops
 */

typedef struct un_par {
    double a, b, g; /* alpha / beta / gamma style parameters; Clip: min, max */
    uint64_t lo, hi; /* Clip on integers: min, max as 64-bit patterns */
    int flag1, flag2;
} un_par;

typedef void (*f32_un_fn)(int64_t n, const float *x, float *y, const un_par *p);

typedef struct un_def {
    uint32_t types;
    bool out_bool;
    double (*f)(double, const un_par *);
    int64_t (*s)(int64_t, const un_par *);
    uint64_t (*u)(uint64_t, const un_par *);
    f32_un_fn f32;
    si_result (*par)(const si_kctx *, un_par *); /* reads attributes (and Clip's inputs) */
    int max_in;
} un_def;

#define UF(NAME, EXPR)                                                                                                 \
    static double NAME(double x, const un_par *p) {                                                                    \
        (void)p;                                                                                                       \
        return (EXPR);                                                                                                 \
    }

static double sigmoid_d(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double softplus_d(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double sign_d(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; /* keeps 0, -0 and NaN */ }

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

UF(fu_abs, fabs(x))
UF(fu_neg, -x)
UF(fu_sqrt, sqrt(x))
UF(fu_exp, exp(x))
UF(fu_log, log(x))
UF(fu_recip, 1.0 / x)
UF(fu_floor, floor(x))
UF(fu_ceil, ceil(x))
UF(fu_round, nearbyint(x)) /* default rounding mode: half to even */
UF(fu_sign, sign_d(x))
UF(fu_relu, x < 0 ? 0.0 : x)
UF(fu_leaky, x < 0 ? p->a * x : x)
UF(fu_elu, x < 0 ? p->a * (exp(x) - 1.0) : x)
UF(fu_selu, x > 0 ? p->g * x : p->g * (p->a * exp(x) - p->a))
UF(fu_celu, (x > 0 ? x : 0.0) + fmin(0.0, p->a *(exp(x / p->a) - 1.0)))
UF(fu_sigmoid, sigmoid_d(x))
UF(fu_hsigmoid, clamp01(p->a *x + p->b))
UF(fu_hswish, x *clamp01(x / 6.0 + 0.5))
UF(fu_swish, x *sigmoid_d(p->a *x))
UF(fu_tanh, tanh(x))
UF(fu_erf, erf(x))
UF(fu_gelu,
   p->flag1 ? 0.5 * x *(1.0 + tanh(0.79788456080286535587989211986876 * (x + 0.044715 * x * x * x)))
            : 0.5 * x * (1.0 + erf(x / sqrt(2.0))))
UF(fu_softplus, softplus_d(x))
UF(fu_softsign, x / (1.0 + fabs(x)))
UF(fu_mish, x *tanh(softplus_d(x)))
UF(fu_sin, sin(x))
UF(fu_cos, cos(x))
UF(fu_tan, tan(x))
UF(fu_asin, asin(x))
UF(fu_acos, acos(x))
UF(fu_atan, atan(x))
UF(fu_sinh, sinh(x))
UF(fu_cosh, cosh(x))
UF(fu_asinh, asinh(x))
UF(fu_acosh, acosh(x))
UF(fu_atanh, atanh(x))
UF(fu_threlu, x > p->a ? x : 0.0)
UF(fu_shrink, x<-p->g ? x + p->b : x> p->g ? x - p->b : 0.0)
UF(fu_isnan, isnan(x) ? 1.0 : 0.0)
UF(fu_isinf, (isinf(x) && ((x > 0 && p->flag1) || (x < 0 && p->flag2))) ? 1.0 : 0.0)
UF(fu_clip, x<p->a ? p->a : x> p->b ? p->b : x)

static int64_t su_abs(int64_t x, const un_par *p) {
    (void)p;
    return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
}
static int64_t su_neg(int64_t x, const un_par *p) {
    (void)p;
    return (int64_t)(0 - (uint64_t)x);
}
static int64_t su_sign(int64_t x, const un_par *p) {
    (void)p;
    return x > 0 ? 1 : x < 0 ? -1 : 0;
}
static int64_t su_relu(int64_t x, const un_par *p) {
    (void)p;
    return x < 0 ? 0 : x;
}
static int64_t su_bnot(int64_t x, const un_par *p) {
    (void)p;
    return ~x;
}
static int64_t su_clip(int64_t x, const un_par *p) {
    int64_t lo = (int64_t)p->lo, hi = (int64_t)p->hi;
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}
static uint64_t uu_id(uint64_t x, const un_par *p) {
    (void)p;
    return x;
}
static uint64_t uu_sign(uint64_t x, const un_par *p) {
    (void)p;
    return x > 0;
}
static uint64_t uu_bnot(uint64_t x, const un_par *p) {
    (void)p;
    return ~x;
}
static uint64_t uu_not(uint64_t x, const un_par *p) {
    (void)p;
    return x == 0;
}
static uint64_t uu_clip(uint64_t x, const un_par *p) {
    x = x < p->lo ? p->lo : x;
    return x > p->hi ? p->hi : x;
}

/* float32 loops for the activations CNNs use most */
static void f32_relu(int64_t n, const float *x, float *y, const un_par *p) {
    (void)p;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}
static void f32_leaky(int64_t n, const float *x, float *y, const un_par *p) {
    const float a = (float)p->a;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? a * x[i] : x[i];
}
static void f32_sigmoid(int64_t n, const float *x, float *y, const un_par *p) {
    (void)p;
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void f32_hsigmoid(int64_t n, const float *x, float *y, const un_par *p) {
    const float a = (float)p->a, b = (float)p->b;
    for (int64_t i = 0; i < n; i++) {
        float v = a * x[i] + b;
        y[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
}
static void f32_hswish(int64_t n, const float *x, float *y, const un_par *p) {
    (void)p;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / 6.0f + 0.5f;
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        y[i] = x[i] * v;
    }
}
static void f32_tanh(int64_t n, const float *x, float *y, const un_par *p) {
    (void)p;
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void f32_clip(int64_t n, const float *x, float *y, const un_par *p) {
    const float lo = (float)p->a, hi = (float)p->b;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

/* attribute readers */
static si_result par_alpha(const si_kctx *c, float dflt, un_par *p) {
    p->a = si_attr_float(c->node, "alpha", dflt);
    return SI_OK;
}
static si_result par_leaky(const si_kctx *c, un_par *p) { return par_alpha(c, 0.01f, p); }
static si_result par_alpha1(const si_kctx *c, un_par *p) { return par_alpha(c, 1.0f, p); }
static si_result par_celu(const si_kctx *c, un_par *p) {
    par_alpha(c, 1.0f, p);
    if (p->a == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "alpha must not be 0");
    return SI_OK;
}
/* Two float attributes into two parameters. */
static si_result par_two(const si_kctx *c, double *x, const char *nx, float dx, double *y, const char *ny, float dy) {
    *x = si_attr_float(c->node, nx, dx);
    *y = si_attr_float(c->node, ny, dy);
    return SI_OK;
}
static si_result par_selu(const si_kctx *c, un_par *p) {
    return par_two(c, &p->a, "alpha", 1.67326319217681884765625f, &p->g, "gamma", 1.05070102214813232421875f);
}
static si_result par_hsigmoid(const si_kctx *c, un_par *p) { return par_two(c, &p->a, "alpha", 0.2f, &p->b, "beta", 0.5f); }
static si_result par_shrink(const si_kctx *c, un_par *p) { return par_two(c, &p->b, "bias", 0.0f, &p->g, "lambd", 0.5f); }
static si_result par_gelu(const si_kctx *c, un_par *p) {
    const char *a = si_attr_str(c->node, "approximate", "none");
    if (strcmp(a, "none") == 0)
        p->flag1 = 0;
    else if (strcmp(a, "tanh") == 0)
        p->flag1 = 1;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute approximate must be 'none' or 'tanh', got '%s'", a);
    return SI_OK;
}
static si_result par_isinf(const si_kctx *c, un_par *p) {
    p->flag1 = si_attr_int(c->node, "detect_positive", 1) != 0;
    p->flag2 = si_attr_int(c->node, "detect_negative", 1) != 0;
    return SI_OK;
}

/* Clip-6: min/max are attributes. */
static si_result par_clip6(const si_kctx *c, un_par *p) {
    bool sg = t_signed(c->in[0]->dtype);
    p->a = si_attr_float(c->node, "min", -FLT_MAX);
    p->b = si_attr_float(c->node, "max", FLT_MAX);
    p->lo = f2i(sg ? SI_I64 : SI_U64, p->a);
    p->hi = f2i(sg ? SI_I64 : SI_U64, p->b);
    return SI_OK;
}

/* Clip-11 and later: min/max are optional scalar inputs. */
static si_result par_clip(const si_kctx *c, un_par *p) {
    bool sg = t_signed(c->in[0]->dtype);
    p->a = -INFINITY;
    p->b = INFINITY;
    p->lo = sg ? (uint64_t)INT64_MIN : 0;
    p->hi = sg ? (uint64_t)INT64_MAX : UINT64_MAX;
    for (int k = 1; k <= 2 && k < c->n_in; k++) {
        const si_tensor *m = c->in[k];
        if (!m || si_count(m) == 0) continue;
        if (!m->data) return si_op_err(c, SI_ERR_INVALID_ARG, "%s has no data", k == 1 ? "min" : "max");
        double v = ld_f(m->dtype, m->data, 0);
        uint64_t r = t_float(m->dtype) ? 0 : ld_raw(m->dtype, m->data, 0);
        if (k == 1) {
            p->a = v;
            p->lo = r;
        } else {
            p->b = v;
            p->hi = r;
        }
    }
    return SI_OK;
}

static si_result un_infer(si_kctx *c, const un_def *d) {
    if (c->n_in < 1 || c->n_in > d->max_in || !c->in[0])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects %s%d input%s, got %d", d->max_in > 1 ? "1 to " : "", d->max_in,
                         d->max_in > 1 ? "s" : "", c->n_in);
    const si_tensor *x = c->in[0];
    si_result s = si_check_type(c, x->dtype, d->types, "input");
    if (s) return s;
    for (int k = 1; k < c->n_in; k++) {
        const si_tensor *m = c->in[k];
        if (!m) continue;
        if (m->dtype != x->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has type %s, input 0 has %s", k, si_dtype_name(m->dtype),
                             si_dtype_name(x->dtype));
        if (si_shape_count(m->ndim, m->dims) > 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d must be a scalar", k);
    }
    return si_set_out(c, 0, d->out_bool ? SI_BOOL : x->dtype, x->ndim, x->dims);
}

static si_result un_run(si_kctx *c, const un_def *d) {
    const si_tensor *x = c->in[0];
    si_tensor *y = c->out[0];
    if (!y) return SI_OK;
    int64_t n = si_count(x);
    if (n == 0) return SI_OK;
    un_par p;
    memset(&p, 0, sizeof(p));
    if (d->par) {
        si_result s = d->par(c, &p);
        if (s) return s;
    }
    si_dtype t = x->dtype, to = y->dtype;
    if (t == SI_F32 && to == SI_F32) {
        const float *xv = x->data;
        float *yv = y->data;
        if (d->f32) {
            d->f32(n, xv, yv, &p);
        } else {
            for (int64_t i = 0; i < n; i++) yv[i] = (float)d->f(xv[i], &p);
        }
    } else if (t == SI_F64 && to == SI_F64) {
        const double *xv = x->data;
        double *yv = y->data;
        for (int64_t i = 0; i < n; i++) yv[i] = d->f(xv[i], &p);
    } else if (!t_float(t) && t_signed(t) && d->s) {
        for (int64_t i = 0; i < n; i++) st_raw(to, y->data, i, (uint64_t)d->s((int64_t)ld_raw(t, x->data, i), &p));
    } else if (!t_float(t) && !t_signed(t) && d->u) {
        for (int64_t i = 0; i < n; i++) st_raw(to, y->data, i, d->u(ld_raw(t, x->data, i), &p));
    } else if (d->f) {
        for (int64_t i = 0; i < n; i++) st_f(to, y->data, i, d->f(ld_f(t, x->data, i), &p));
    } else {
        return si_op_err(c, SI_ERR_UNSUPPORTED, "input of type %s is not supported", si_dtype_name(t));
    }
    return SI_OK;
}

/* One line per unary op (per version, where an opset changed the interface):
 * X(ID, fn, SINCE, UNTIL, TYPES, OUT_BOOL, F, S, U, F32, PAR, MAX_IN) gives ud_<id>, infer_<id>, run_<id> and the
 * definition's line in the table at the end (SINCE/UNTIL 0: open). */
#define UNARY_OPS(X) \
    X(ABS, abs, 0, 0, SI_T_NUMERIC, false, fu_abs, su_abs, uu_id, NULL, NULL, 1)                                \
    X(NEG, neg, 0, 0, (SI_T_FLOATS | SI_T_SIGNED_INTS), false, fu_neg, su_neg, NULL, NULL, NULL, 1)             \
    X(SQRT, sqrt, 0, 0, SI_T_FLOATS, false, fu_sqrt, NULL, NULL, NULL, NULL, 1)                                 \
    X(EXP, exp, 0, 0, SI_T_FLOATS, false, fu_exp, NULL, NULL, NULL, NULL, 1)                                    \
    X(LOG, log, 0, 0, SI_T_FLOATS, false, fu_log, NULL, NULL, NULL, NULL, 1)                                    \
    X(RECIPROCAL, recip, 0, 0, SI_T_FLOATS, false, fu_recip, NULL, NULL, NULL, NULL, 1)                         \
    X(FLOOR, floor, 0, 0, SI_T_FLOATS, false, fu_floor, NULL, NULL, NULL, NULL, 1)                              \
    X(CEIL, ceil, 0, 0, SI_T_FLOATS, false, fu_ceil, NULL, NULL, NULL, NULL, 1)                                 \
    X(ROUND, round, 0, 0, SI_T_FLOATS, false, fu_round, NULL, NULL, NULL, NULL, 1)                              \
    X(SIGN, sign, 0, 0, SI_T_NUMERIC, false, fu_sign, su_sign, uu_sign, NULL, NULL, 1)                          \
    X(CLIP, clip6, 0, 10, SI_T_NUMERIC, false, fu_clip, su_clip, uu_clip, f32_clip, par_clip6, 3)               \
    X(CLIP, clip, 11, 0, SI_T_NUMERIC, false, fu_clip, su_clip, uu_clip, f32_clip, par_clip, 3)                 \
    X(RELU, relu, 0, 0, (SI_T_FLOATS | SI_T_SIGNED_INTS), false, fu_relu, su_relu, NULL, f32_relu, NULL, 1)     \
    X(LEAKY_RELU, leaky, 0, 0, SI_T_FLOATS, false, fu_leaky, NULL, NULL, f32_leaky, par_leaky, 1)               \
    X(ELU, elu, 0, 0, SI_T_FLOATS, false, fu_elu, NULL, NULL, NULL, par_alpha1, 1)                              \
    X(SELU, selu, 0, 0, SI_T_FLOATS, false, fu_selu, NULL, NULL, NULL, par_selu, 1)                             \
    X(CELU, celu, 0, 0, SI_T_FLOATS, false, fu_celu, NULL, NULL, NULL, par_celu, 1)                             \
    X(SIGMOID, sigmoid, 0, 0, SI_T_FLOATS, false, fu_sigmoid, NULL, NULL, f32_sigmoid, NULL, 1)                 \
    X(HARD_SIGMOID, hsigmoid, 0, 0, SI_T_FLOATS, false, fu_hsigmoid, NULL, NULL, f32_hsigmoid, par_hsigmoid, 1) \
    X(HARD_SWISH, hswish, 0, 0, SI_T_FLOATS, false, fu_hswish, NULL, NULL, f32_hswish, NULL, 1)                 \
    X(SWISH, swish, 0, 0, SI_T_FLOATS, false, fu_swish, NULL, NULL, NULL, par_alpha1, 1)                        \
    X(TANH, tanh, 0, 0, SI_T_FLOATS, false, fu_tanh, NULL, NULL, f32_tanh, NULL, 1)                             \
    X(ERF, erf, 0, 0, SI_T_NUMERIC, false, fu_erf, NULL, NULL, NULL, NULL, 1)                                   \
    X(GELU, gelu, 0, 0, SI_T_FLOATS, false, fu_gelu, NULL, NULL, NULL, par_gelu, 1)                             \
    X(SOFTPLUS, softplus, 0, 0, SI_T_FLOATS, false, fu_softplus, NULL, NULL, NULL, NULL, 1)                     \
    X(SOFTSIGN, softsign, 0, 0, SI_T_FLOATS, false, fu_softsign, NULL, NULL, NULL, NULL, 1)                     \
    X(MISH, mish, 0, 0, SI_T_FLOATS, false, fu_mish, NULL, NULL, NULL, NULL, 1)                                 \
    X(SIN, sin, 0, 0, SI_T_FLOATS, false, fu_sin, NULL, NULL, NULL, NULL, 1)                                    \
    X(COS, cos, 0, 0, SI_T_FLOATS, false, fu_cos, NULL, NULL, NULL, NULL, 1)                                    \
    X(TAN, tan, 0, 0, SI_T_FLOATS, false, fu_tan, NULL, NULL, NULL, NULL, 1)                                    \
    X(ASIN, asin, 0, 0, SI_T_FLOATS, false, fu_asin, NULL, NULL, NULL, NULL, 1)                                 \
    X(ACOS, acos, 0, 0, SI_T_FLOATS, false, fu_acos, NULL, NULL, NULL, NULL, 1)                                 \
    X(ATAN, atan, 0, 0, SI_T_FLOATS, false, fu_atan, NULL, NULL, NULL, NULL, 1)                                 \
    X(SINH, sinh, 0, 0, SI_T_FLOATS, false, fu_sinh, NULL, NULL, NULL, NULL, 1)                                 \
    X(COSH, cosh, 0, 0, SI_T_FLOATS, false, fu_cosh, NULL, NULL, NULL, NULL, 1)                                 \
    X(ASINH, asinh, 0, 0, SI_T_FLOATS, false, fu_asinh, NULL, NULL, NULL, NULL, 1)                              \
    X(ACOSH, acosh, 0, 0, SI_T_FLOATS, false, fu_acosh, NULL, NULL, NULL, NULL, 1)                              \
    X(ATANH, atanh, 0, 0, SI_T_FLOATS, false, fu_atanh, NULL, NULL, NULL, NULL, 1)                              \
    X(THRESHOLDED_RELU, thrrelu, 0, 0, SI_T_FLOATS, false, fu_threlu, NULL, NULL, NULL, par_alpha1, 1)          \
    X(SHRINK, shrink, 0, 0, SI_T_NUMERIC, false, fu_shrink, NULL, NULL, NULL, par_shrink, 1)                    \
    X(IS_NAN, isnan, 0, 0, SI_T_FLOATS, true, fu_isnan, NULL, NULL, NULL, NULL, 1)                              \
    X(IS_INF, isinf, 0, 0, SI_T_FLOATS, true, fu_isinf, NULL, NULL, NULL, par_isinf, 1)                         \
    X(NOT, not, 0, 0, SI_T(SI_BOOL), false, NULL, NULL, uu_not, NULL, NULL, 1)                                  \
    X(BITWISE_NOT, bit_not, 0, 0, SI_T_INTS, false, NULL, su_bnot, uu_bnot, NULL, NULL, 1)                     

#define UNARY_FNS(ID, fn, SINCE, UNTIL, TYPES, OUT_BOOL, F, S, U, F32, PAR, MAXIN)                             \
    static const un_def ud_##fn = {TYPES, OUT_BOOL, F, S, U, F32, PAR, MAXIN};                                \
    static si_result infer_##fn(si_kctx *c) { return un_infer(c, &ud_##fn); }                                  \
    static si_result run_##fn(si_kctx *c) { return un_run(c, &ud_##fn); }
UNARY_OPS(UNARY_FNS)

/* ---------------------------------------------------------------------------------------------------------
 * Cast / CastLike
 */

/* Cast-1 named the target type with a string. */
static si_dtype dtype_from_name(const char *s) {
    static const struct {
        const char *name;
        si_dtype t;
    } names[] = {{"FLOAT", SI_F32},  {"UINT8", SI_U8},     {"INT8", SI_I8},    {"UINT16", SI_U16},
                 {"INT16", SI_I16},  {"INT32", SI_I32},    {"INT64", SI_I64},  {"STRING", SI_STRING},
                 {"BOOL", SI_BOOL},  {"FLOAT16", SI_F16},  {"DOUBLE", SI_F64}, {"UINT32", SI_U32},
                 {"UINT64", SI_U64}, {"BFLOAT16", SI_BF16}};
    for (size_t i = 0; i < SI_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i].name) == 0) return names[i].t;
    return SI_DTYPE_UNDEFINED;
}

static si_result cast_target(const si_kctx *c, si_dtype *to) {
    const si_attr *a = si_node_attr(c->node, "to");
    if (!a) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'to' is required");
    int64_t v;
    if (a->type == SI_ATTR_STRING) {
        v = dtype_from_name(a->s ? a->s : "");
        if (v == SI_DTYPE_UNDEFINED)
            return si_op_err(c, SI_ERR_UNSUPPORTED, "cast to '%s' is not supported", a->s ? a->s : "");
    } else {
        v = si_attr_int(c->node, "to", 0);
    }
    if (v <= 0 || v > 255 || !si_dtype_valid((si_dtype)v))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "cast to element type %lld (%s) is not supported", (long long)v,
                         si_dtype_name((si_dtype)v));
    *to = (si_dtype)v;
    return SI_OK;
}

/* The narrow types (util.h): read each element as double (floats) or int64 (4-bit and 2-bit integers), write
 * each with ONNX's rules: to float8 / float4e2m1 round to nearest even with `saturate`; to float8e8m0 with
 * `round_mode`; float -> integer truncates toward zero, then int4/int2 (like every integer type) wrap. */
static void convert_narrow(si_dtype ts, const void *src, si_dtype td, void *dst, int64_t n, bool sat, int round_mode) {
    const bool src_int = !t_float(ts) && !si_dtype_is_minifloat(ts);
    for (int64_t i = 0; i < n; i++) {
        if (td == SI_F8E8M0) {
            ((uint8_t *)dst)[i] = si_e8m0_encode(si_load_f64(ts, src, i), sat, round_mode);
        } else if (si_dtype_is_minifloat(td)) {
            ((uint8_t *)dst)[i] = si_minifloat_encode(td, si_load_f64(ts, src, i), sat);
        } else if (src_int) {
            int64_t v = si_load_i64(ts, src, i);
            if (t_float(td)) st_f(td, dst, i, (double)v);
            else if (td == SI_BOOL) ((uint8_t *)dst)[i] = v != 0;
            else if (si_dtype_is_narrow(td)) si_store_i64(td, dst, i, v);
            else st_raw(td, dst, i, (uint64_t)v);
        } else {
            double v = si_load_f64(ts, src, i);
            if (si_dtype_is_narrow(td)) si_store_i64(td, dst, i, (int64_t)f2i(SI_I64, v));
            else st_f(td, dst, i, v);
        }
    }
}

/* Convert n elements: floats -> ints truncate toward zero, anything -> bool is x != 0, ints -> ints wrap. */
static void convert(si_dtype ts, const void *src, si_dtype td, void *dst, int64_t n, bool sat, int round_mode) {
    if (si_dtype_is_narrow(ts) || si_dtype_is_narrow(td)) {
        convert_narrow(ts, src, td, dst, n, sat, round_mode);
        return;
    }
    if (ts == td) {
        memcpy(dst, src, (size_t)n * si_dtype_size(ts));
        return;
    }
    if (ts == SI_F32 && td == SI_F16) {
        const float *x = src;
        uint16_t *y = dst;
        for (int64_t i = 0; i < n; i++) y[i] = si_f32_to_f16(x[i]);
        return;
    }
    if (ts == SI_F16 && td == SI_F32) {
        const uint16_t *x = src;
        float *y = dst;
        for (int64_t i = 0; i < n; i++) y[i] = si_f16_to_f32(x[i]);
        return;
    }
    if (t_float(ts)) {
        for (int64_t i = 0; i < n; i++) st_f(td, dst, i, ld_f(ts, src, i));
        return;
    }
    /* integer or bool source */
    bool sg = t_signed(ts);
    if (td == SI_BOOL) {
        for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = ld_raw(ts, src, i) != 0;
    } else if (td == SI_F32) {
        float *y = dst;
        for (int64_t i = 0; i < n; i++) {
            uint64_t r = ld_raw(ts, src, i);
            y[i] = sg ? (float)(int64_t)r : (float)r;
        }
    } else if (t_float(td)) {
        for (int64_t i = 0; i < n; i++) {
            uint64_t r = ld_raw(ts, src, i);
            st_f(td, dst, i, sg ? (double)(int64_t)r : (double)r);
        }
    } else {
        for (int64_t i = 0; i < n; i++) st_raw(td, dst, i, ld_raw(ts, src, i));
    }
}

#define T_CAST (SI_T_ALL | SI_T_NARROW_MASK)

static si_result cast_check_in(const si_kctx *c, int need) {
    if (c->n_in != need || !c->in[0] || (need > 1 && !c->in[1]))
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects %d input%s, got %d", need, need > 1 ? "s" : "", c->n_in);
    return si_check_type(c, c->in[0]->dtype, T_CAST, "input");
}

/* Cast's `round_mode` (opset 25, for float8e8m0): 0 up, 1 down, 2 nearest; -1 for another value. */
static int cast_round_mode(const si_kctx *c) {
    const char *m = si_attr_str(c->node, "round_mode", "up");
    return !strcmp(m, "up") ? 0 : !strcmp(m, "down") ? 1 : !strcmp(m, "nearest") ? 2 : -1;
}

static si_result infer_cast(si_kctx *c) {
    si_dtype to = SI_DTYPE_UNDEFINED;
    si_result s = cast_check_in(c, 1);
    if (s || (s = cast_target(c, &to))) return s;
    if (cast_round_mode(c) < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "round_mode '%s' is not up, down or nearest", si_attr_str(c->node, "round_mode", ""));
    return si_set_out(c, 0, to, c->in[0]->ndim, c->in[0]->dims);
}

static si_result infer_castlike(si_kctx *c) {
    si_result s = cast_check_in(c, 2);
    if (s) return s;
    si_dtype to = c->in[1]->dtype;
    if (cast_round_mode(c) < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "round_mode '%s' is not up, down or nearest", si_attr_str(c->node, "round_mode", ""));
    if (!si_dtype_valid(to))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "cast to element type %s is not supported", si_dtype_name(to));
    return si_set_out(c, 0, to, c->in[0]->ndim, c->in[0]->dims);
}

static si_result run_cast(si_kctx *c) {
    si_tensor *y = c->out[0];
    if (!y || si_count(y) == 0) return SI_OK;
    bool sat = si_attr_int(c->node, "saturate", 1) != 0; /* opset 19 on: only float8 targets read it */
    convert(c->in[0]->dtype, c->in[0]->data, y->dtype, y->data, si_count(y), sat, cast_round_mode(c));
    return SI_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * BitCast (opset 26): the same bytes read as another type of the same size.
 */

static si_result infer_bitcast(si_kctx *c) {
    const si_tensor *x;
    si_result s = si_input0(c, SI_T_ALL, "input", &x);
    if (s) return s;
    int64_t v = si_attr_int(c->node, "to", 0);
    si_dtype to = (si_dtype)v;
    if (v <= 0 || v >= 32 || !(SI_T(to) & SI_T_ALL))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "bit cast to element type %lld (%s) is not supported", (long long)v, si_dtype_name(to));
    if (si_dtype_size(to) != si_dtype_size(x->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "bit cast from %s to %s: the element types must have the same size", si_dtype_name(x->dtype),
                         si_dtype_name(to));
    if (to == SI_BOOL && x->dtype != SI_BOOL)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "bit cast from %s to bool is not supported (bytes other than 0 and 1 are no bool)",
                         si_dtype_name(x->dtype));
    return si_set_out(c, 0, to, x->ndim, x->dims);
}

static si_result run_bitcast(si_kctx *c) {
    si_result s = infer_bitcast(c);
    if (s || (s = si_run_ready(c))) return s;
    if (c->out[0]) si_copy_data(c->out[0], c->in[0]);
    return SI_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * The table
 */

static const si_op_def defs[] = {
#define UNARY_DEF(ID, fn, SINCE, UNTIL, TYPES, OUT_BOOL, F, S, U, F32, PAR, MAXIN)                                     \
    SI_OP_VERSION(ID, SINCE, UNTIL, TYPES, infer_##fn, run_##fn),
    UNARY_OPS(UNARY_DEF)
#undef UNARY_DEF
    SI_OP_DEF(CAST, T_CAST, infer_cast, run_cast),
    {.id = SI_OP_CAST_LIKE, .types = {T_CAST, T_CAST}, .infer = infer_castlike, .run = run_cast},
    SI_OP_DEF(BIT_CAST, SI_T_ALL, infer_bitcast, run_bitcast),
};

SI_OP_FAMILY_PARTIAL(unary, defs);
