/*
 * elementwise.c — reference kernels for the ONNX element-wise ops: unary math and activations, binary
 * arithmetic / comparison / logic / bitwise ops with numpy broadcasting, the variadic Min/Max/Sum/Mean,
 * Where, Cast/CastLike and IsNaN/IsInf (plus Swish, opset 24).
 *
 * Structure:
 *  - element access helpers: ld_raw/st_raw move integer bit patterns (signed types sign-extended to 64
 *    bits, stores truncate, so +,-,* wrap like C/numpy), ld_f/st_f go through double (float -> int stores
 *    truncate toward zero like ONNX Cast; -> bool is v != 0).
 *  - one broadcasting iterator (bc_plan / bc_run): it merges dimensions that are contiguous for every
 *    input, then calls a row function for each innermost row with per-input start offsets and steps
 *    (0 for a broadcast input). Binary ops, PRelu, Where and the variadic folds all use it.
 *  - binary ops are described by a bin_def: a double function for floats, an int64 function for signed
 *    integers and a uint64 function for unsigned integers and bool (comparisons return 0/1). float32 has
 *    dedicated loops for Add/Sub/Mul/Div/Min/Max.
 *  - unary ops are described by an un_def in the same way; float32 has dedicated loops for Relu,
 *    LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh and Clip.
 */
#include "ops/ops.h"

#include <float.h>
#include <math.h>

/* ---------------------------------------------------------------------------------------------------------
 * Element access
 */

static bool t_float(si_dtype t)
{
    return t == SI_F32 || t == SI_F64 || t == SI_F16 || t == SI_BF16;
}

static bool t_signed(si_dtype t)
{
    return t == SI_I8 || t == SI_I16 || t == SI_I32 || t == SI_I64;
}

/* Integer (or bool) element i as 64 bits: signed types sign-extended, unsigned zero-extended. */
static inline uint64_t ld_raw(si_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case SI_I8: return (uint64_t)(int64_t)((const int8_t *)p)[i];
    case SI_U8:
    case SI_BOOL: return ((const uint8_t *)p)[i];
    case SI_I16: return (uint64_t)(int64_t)((const int16_t *)p)[i];
    case SI_U16:
    case SI_F16:
    case SI_BF16: return ((const uint16_t *)p)[i];
    case SI_I32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case SI_U32: return ((const uint32_t *)p)[i];
    case SI_I64: return (uint64_t)((const int64_t *)p)[i];
    case SI_U64: return ((const uint64_t *)p)[i];
    case SI_F32: {
        uint32_t v;
        memcpy(&v, (const float *)p + i, 4);
        return v;
    }
    case SI_F64: {
        uint64_t v;
        memcpy(&v, (const double *)p + i, 8);
        return v;
    }
    default: return 0;
    }
}

/* Store the low bits of v as element i (wrapping conversion between integer types). */
static inline void st_raw(si_dtype t, void *p, int64_t i, uint64_t v)
{
    switch (si_dtype_size(t)) {
    case 1: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case 2: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case 4: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case 8: ((uint64_t *)p)[i] = v; break;
    default: break;
    }
}

/* Element i of any stored type as double. */
static inline double ld_f(si_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case SI_F32: return ((const float *)p)[i];
    case SI_F64: return ((const double *)p)[i];
    case SI_F16: return si_f16_to_f32(((const uint16_t *)p)[i]);
    case SI_BF16: return si_bf16_to_f32(((const uint16_t *)p)[i]);
    case SI_I8:
    case SI_I16:
    case SI_I32:
    case SI_I64: return (double)(int64_t)ld_raw(t, p, i);
    default: return (double)ld_raw(t, p, i);
    }
}

/* A double converted to an integer type's bit pattern: truncation toward zero, NaN -> 0; values beyond
 * int64 saturate, narrower targets then wrap (what numpy/C casts do on common hardware). */
static uint64_t f2i(si_dtype t, double v)
{
    if (isnan(v))
        return 0;
    v = trunc(v);
    if (t == SI_U64 && v >= 0) {
        if (v >= 18446744073709551616.0)
            return UINT64_MAX;
        return (uint64_t)v;
    }
    if (v >= 9223372036854775808.0)
        return (uint64_t)INT64_MAX;
    if (v < -9223372036854775808.0)
        return (uint64_t)INT64_MIN;
    return (uint64_t)(int64_t)v;
}

/* Store v as element i of any stored type (floats round, ints truncate, bool is v != 0). */
static inline void st_f(si_dtype t, void *p, int64_t i, double v)
{
    switch (t) {
    case SI_F32: ((float *)p)[i] = (float)v; break;
    case SI_F64: ((double *)p)[i] = v; break;
    case SI_F16: ((uint16_t *)p)[i] = si_f32_to_f16((float)v); break;
    case SI_BF16: ((uint16_t *)p)[i] = si_f32_to_bf16((float)v); break;
    case SI_BOOL: ((uint8_t *)p)[i] = (uint8_t)(v != 0); break;
    default: st_raw(t, p, i, f2i(t, v)); break;
    }
}

static si_result check_type(const si_kctx *c, uint32_t types, si_dtype t, const char *what)
{
    if (!si_dtype_valid(t) || !(types & SI_T(t)))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%s of type %s is not supported", what, si_dtype_name(t));
    return SI_OK;
}

static si_result set_out(si_kctx *c, si_dtype dt, int ndim, const int64_t *dims)
{
    if (c->n_out < 1 || !c->out[0])
        return SI_OK;
    return si_set_out(c, 0, dt, ndim, dims);
}

static int64_t tcount(const si_tensor *t)
{
    return si_shape_count(t->ndim, t->dims);
}

/* ---------------------------------------------------------------------------------------------------------
 * The broadcasting iterator
 */

#define BC_MAX_IN 3

typedef struct bc_plan {
    int nd;                                /* rank after dropping 1s and merging, >= 1 */
    int nin;
    int64_t total;                         /* output element count */
    int64_t dims[SI_MAX_DIMS];
    int64_t str[BC_MAX_IN][SI_MAX_DIMS];   /* element strides per input, 0 where broadcast */
} bc_plan;

/* Row callback: n output elements starting at output offset o; input k starts at off[k] and advances by
 * step[k] per element. */
typedef void (*bc_row_fn)(void *ctx, int64_t n, int64_t o, const int64_t *off, const int64_t *step);

static void bc_plan_init(bc_plan *p, int nout, const int64_t *out, int nin, const int *in_nd,
                         const int64_t *const *in_dims)
{
    int64_t st[BC_MAX_IN][SI_MAX_DIMS];
    p->nin = nin;
    p->nd = 0;
    p->total = si_shape_count(nout, out);
    for (int k = 0; k < nin; k++)
        si_broadcast_strides(in_nd[k], in_dims[k], nout, out, st[k]);
    for (int d = 0; d < nout; d++) {
        if (out[d] == 1)
            continue;
        if (p->nd > 0) {
            int last = p->nd - 1;
            bool merge = true;
            for (int k = 0; k < nin; k++)
                if (p->str[k][last] != st[k][d] * out[d])
                    merge = false;
            if (merge) {
                p->dims[last] *= out[d];
                for (int k = 0; k < nin; k++)
                    p->str[k][last] = st[k][d];
                continue;
            }
        }
        p->dims[p->nd] = out[d];
        for (int k = 0; k < nin; k++)
            p->str[k][p->nd] = st[k][d];
        p->nd++;
    }
    if (p->nd == 0) {
        p->nd = 1;
        p->dims[0] = 1;
        for (int k = 0; k < nin; k++)
            p->str[k][0] = 0;
    }
}

static void bc_run(const bc_plan *p, bc_row_fn fn, void *ctx)
{
    if (p->total <= 0)
        return;
    int nd = p->nd;
    int64_t inner = p->dims[nd - 1];
    int64_t rows = p->total / inner;
    int64_t idx[SI_MAX_DIMS] = {0};
    int64_t off[BC_MAX_IN] = {0};
    int64_t step[BC_MAX_IN];
    for (int k = 0; k < p->nin; k++)
        step[k] = p->str[k][nd - 1];
    for (int64_t r = 0; r < rows; r++) {
        fn(ctx, inner, r * inner, off, step);
        for (int d = nd - 2; d >= 0; d--) {
            idx[d]++;
            for (int k = 0; k < p->nin; k++)
                off[k] += p->str[k][d];
            if (idx[d] < p->dims[d])
                break;
            for (int k = 0; k < p->nin; k++)
                off[k] -= p->str[k][d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

/* Copy with broadcasting (element size only matters). */
typedef struct copy_ctx {
    size_t esize;
    const void *x;
    void *y;
} copy_ctx;

#define COPY_ROW(T)                                                                                            \
    do {                                                                                                       \
        const T *x_ = (const T *)c->x + off[0];                                                                \
        T *y_ = (T *)c->y + o;                                                                                 \
        int64_t s_ = step[0];                                                                                  \
        for (int64_t i = 0; i < n; i++)                                                                        \
            y_[i] = x_[i * s_];                                                                                \
    } while (0)

static void copy_row(void *vc, int64_t n, int64_t o, const int64_t *off, const int64_t *step)
{
    const copy_ctx *c = vc;
    switch (c->esize) {
    case 1: COPY_ROW(uint8_t); break;
    case 2: COPY_ROW(uint16_t); break;
    case 4: COPY_ROW(uint32_t); break;
    default: COPY_ROW(uint64_t); break;
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Binary ops
 */

typedef void (*f32_bin_fn)(int64_t n, float *y, const float *a, int64_t sa, const float *b, int64_t sb);

typedef struct bin_def {
    const char *name;
    uint32_t types;        /* accepted types of input A (and B unless types_b) */
    uint32_t types_b;      /* 0: B must have A's type; else accepted types of B (Pow) */
    bool out_bool;         /* comparisons and logic ops */
    bool ipow;             /* Pow: integer ** integer */
    double (*f)(double, double);
    int64_t (*s)(int64_t, int64_t);
    uint64_t (*u)(uint64_t, uint64_t);
    f32_bin_fn f32;        /* optional float32 loop */
} bin_def;

/* float32 loops specialised for the common step patterns. */
#define F32_BIN(NAME, EXPR)                                                                                    \
    static void NAME(int64_t n, float *out, const float *a, int64_t sa, const float *b, int64_t sb)            \
    {                                                                                                          \
        if (sa == 1 && sb == 1) {                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                                  \
                float x = a[i], y = b[i];                                                                      \
                out[i] = (EXPR);                                                                               \
            }                                                                                                  \
        } else if (sa == 1 && sb == 0) {                                                                       \
            const float y = b[0];                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                                  \
                float x = a[i];                                                                                \
                out[i] = (EXPR);                                                                               \
            }                                                                                                  \
        } else if (sa == 0 && sb == 1) {                                                                       \
            const float x = a[0];                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                                  \
                float y = b[i];                                                                                \
                out[i] = (EXPR);                                                                               \
            }                                                                                                  \
        } else {                                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                                  \
                float x = a[i * sa], y = b[i * sb];                                                            \
                out[i] = (EXPR);                                                                               \
            }                                                                                                  \
        }                                                                                                      \
    }

F32_BIN(f32_add, x + y)
F32_BIN(f32_sub, x - y)
F32_BIN(f32_mul, x * y)
F32_BIN(f32_div, x / y)
F32_BIN(f32_min, (x != x || x < y) ? x : y)
F32_BIN(f32_max, (x != x || x > y) ? x : y)

/* float semantics (double) */
static double fb_add(double a, double b) { return a + b; }
static double fb_sub(double a, double b) { return a - b; }
static double fb_mul(double a, double b) { return a * b; }
static double fb_div(double a, double b) { return a / b; }
static double fb_pow(double a, double b) { return pow(a, b); }
static double fb_fmod(double a, double b) { return fmod(a, b); }
static double fb_pymod(double a, double b)
{
    double r = fmod(a, b);
    if (r != 0) {
        if ((r < 0) != (b < 0))
            r += b;
    } else {
        r = copysign(0.0, b);
    }
    return r;
}
static double fb_min(double a, double b) { return (isnan(a) || a < b) ? a : b; }
static double fb_max(double a, double b) { return (isnan(a) || a > b) ? a : b; }
static double fb_eq(double a, double b) { return a == b; }
static double fb_lt(double a, double b) { return a < b; }
static double fb_gt(double a, double b) { return a > b; }
static double fb_le(double a, double b) { return a <= b; }
static double fb_ge(double a, double b) { return a >= b; }
static double fb_prelu(double a, double b) { return a < 0 ? a * b : a; }

/* signed integers (wrapping arithmetic, division by zero gives 0) */
static int64_t sb_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t sb_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t sb_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t sb_div(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return (int64_t)(0 - (uint64_t)a);
    return a / b;
}
static int64_t sb_fmod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    return a % b;
}
static int64_t sb_pymod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}
static int64_t sb_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t sb_max(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t sb_eq(int64_t a, int64_t b) { return a == b; }
static int64_t sb_lt(int64_t a, int64_t b) { return a < b; }
static int64_t sb_gt(int64_t a, int64_t b) { return a > b; }
static int64_t sb_le(int64_t a, int64_t b) { return a <= b; }
static int64_t sb_ge(int64_t a, int64_t b) { return a >= b; }
static int64_t sb_and(int64_t a, int64_t b) { return a & b; }
static int64_t sb_or(int64_t a, int64_t b) { return a | b; }
static int64_t sb_xor(int64_t a, int64_t b) { return a ^ b; }
static int64_t sb_prelu(int64_t a, int64_t b) { return a < 0 ? sb_mul(a, b) : a; }

/* unsigned integers and bool */
static uint64_t ub_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t ub_sub(uint64_t a, uint64_t b) { return a - b; }
static uint64_t ub_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t ub_div(uint64_t a, uint64_t b) { return b == 0 ? 0 : a / b; }
static uint64_t ub_mod(uint64_t a, uint64_t b) { return b == 0 ? 0 : a % b; }
static uint64_t ub_min(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t ub_max(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t ub_eq(uint64_t a, uint64_t b) { return a == b; }
static uint64_t ub_lt(uint64_t a, uint64_t b) { return a < b; }
static uint64_t ub_gt(uint64_t a, uint64_t b) { return a > b; }
static uint64_t ub_le(uint64_t a, uint64_t b) { return a <= b; }
static uint64_t ub_ge(uint64_t a, uint64_t b) { return a >= b; }
static uint64_t ub_band(uint64_t a, uint64_t b) { return a & b; }
static uint64_t ub_bor(uint64_t a, uint64_t b) { return a | b; }
static uint64_t ub_bxor(uint64_t a, uint64_t b) { return a ^ b; }
static uint64_t ub_land(uint64_t a, uint64_t b) { return (a != 0) && (b != 0); }
static uint64_t ub_lor(uint64_t a, uint64_t b) { return (a != 0) || (b != 0); }
static uint64_t ub_lxor(uint64_t a, uint64_t b) { return (a != 0) != (b != 0); }
static uint64_t ub_shl(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a << b; }
static uint64_t ub_shr(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a >> b; }
static uint64_t ub_prelu(uint64_t a, uint64_t b)
{
    (void)b;
    return a;
}

/* integer ** integer with wrapping; negative exponents give what truncating the real result gives */
static uint64_t int_pow(uint64_t a, bool a_signed, uint64_t e, bool e_signed)
{
    if (e_signed && (int64_t)e < 0) {
        if (a == 1)
            return 1;
        if (a_signed && (int64_t)a == -1)
            return (e & 1) ? (uint64_t)-1 : 1;
        return 0;
    }
    uint64_t r = 1;
    while (e) {
        if (e & 1)
            r *= a;
        a *= a;
        e >>= 1;
    }
    return r;
}

enum { BM_F32FAST, BM_F32, BM_F64, BM_FLT, BM_SINT, BM_UINT, BM_IPOW };

typedef struct bin_ctx {
    const bin_def *d;
    int mode;
    si_dtype ta, tb, to;
    const void *a, *b;
    void *o;
} bin_ctx;

static void bin_row(void *vc, int64_t n, int64_t o, const int64_t *off, const int64_t *step)
{
    const bin_ctx *c = vc;
    const bin_def *d = c->d;
    int64_t ia = off[0], ib = off[1], sa = step[0], sb = step[1];
    switch (c->mode) {
    case BM_F32FAST:
        d->f32(n, (float *)c->o + o, (const float *)c->a + ia, sa, (const float *)c->b + ib, sb);
        break;
    case BM_F32: {
        const float *a = (const float *)c->a + ia, *b = (const float *)c->b + ib;
        float *y = (float *)c->o + o;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)d->f(a[i * sa], b[i * sb]);
        break;
    }
    case BM_F64: {
        const double *a = (const double *)c->a + ia, *b = (const double *)c->b + ib;
        double *y = (double *)c->o + o;
        for (int64_t i = 0; i < n; i++)
            y[i] = d->f(a[i * sa], b[i * sb]);
        break;
    }
    case BM_FLT:
        for (int64_t i = 0; i < n; i++)
            st_f(c->to, c->o, o + i, d->f(ld_f(c->ta, c->a, ia + i * sa), ld_f(c->tb, c->b, ib + i * sb)));
        break;
    case BM_SINT:
        for (int64_t i = 0; i < n; i++) {
            int64_t a = (int64_t)ld_raw(c->ta, c->a, ia + i * sa);
            int64_t b = (int64_t)ld_raw(c->tb, c->b, ib + i * sb);
            st_raw(c->to, c->o, o + i, (uint64_t)d->s(a, b));
        }
        break;
    case BM_UINT:
        for (int64_t i = 0; i < n; i++) {
            uint64_t a = ld_raw(c->ta, c->a, ia + i * sa);
            uint64_t b = ld_raw(c->tb, c->b, ib + i * sb);
            st_raw(c->to, c->o, o + i, d->u(a, b));
        }
        break;
    case BM_IPOW: {
        bool as = t_signed(c->ta), es = t_signed(c->tb);
        for (int64_t i = 0; i < n; i++) {
            uint64_t a = ld_raw(c->ta, c->a, ia + i * sa);
            uint64_t e = ld_raw(c->tb, c->b, ib + i * sb);
            st_raw(c->to, c->o, o + i, int_pow(a, as, e, es));
        }
        break;
    }
    default: break;
    }
}

/* Pick the loop for A, B -> out types. */
static int bin_mode(const bin_def *d, si_dtype ta, si_dtype tb, si_dtype to)
{
    if (t_float(ta) || t_float(tb)) {
        if (ta == SI_F32 && tb == SI_F32 && to == SI_F32)
            return d->f32 ? BM_F32FAST : BM_F32;
        if (ta == SI_F64 && tb == SI_F64 && to == SI_F64)
            return BM_F64;
        return BM_FLT;
    }
    if (d->ipow)
        return BM_IPOW;
    if (t_signed(ta))
        return d->s ? BM_SINT : BM_FLT;
    return d->u ? BM_UINT : BM_FLT;
}

/* out = d(a, b) with a and b broadcast to out's shape. */
static void bin_apply(const bin_def *d, const si_tensor *a, int na, const int64_t *da, const si_tensor *b, int nb,
                      const int64_t *db, si_tensor *out)
{
    bin_ctx bc = {d, 0, a->dtype, b->dtype, out->dtype, a->data, b->data, out->data};
    bc.mode = bin_mode(d, a->dtype, b->dtype, out->dtype);
    int nds[2] = {na, nb};
    const int64_t *dims[2] = {da, db};
    bc_plan p;
    bc_plan_init(&p, out->ndim, out->dims, 2, nds, dims);
    bc_run(&p, bin_row, &bc);
}

/* The shape B is broadcast with: before opset 7, Add/Sub/Mul/Div/Pow/logic/comparisons took attributes
 * broadcast=1 and axis, which align B's dims with A's starting at `axis`. */
static si_result legacy_b_shape(const si_kctx *c, int na, int *nb, int64_t *db)
{
    const si_tensor *b = c->in[1];
    *nb = b->ndim;
    memcpy(db, b->dims, sizeof(int64_t) * (size_t)b->ndim);
    if (c->opset >= 7 || si_attr_int(c->node, "broadcast", 0) != 1 || !si_node_attr(c->node, "axis"))
        return SI_OK;
    int axis;
    si_result s = si_axis(c, si_attr_int(c->node, "axis", 0), na, &axis);
    if (s)
        return s;
    int pad = na - axis - b->ndim;
    if (pad < 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "B of rank %d does not fit A of rank %d at axis %d", b->ndim, na,
                         axis);
    for (int i = 0; i < pad; i++)
        db[(*nb)++] = 1;
    return SI_OK;
}

static si_result bin_infer(si_kctx *c, const bin_def *d)
{
    if (c->n_in != 2 || !c->in[0] || !c->in[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects 2 inputs, got %d", c->n_in);
    const si_tensor *a = c->in[0], *b = c->in[1];
    si_result s = check_type(c, d->types, a->dtype, "input A");
    if (s)
        return s;
    if (d->types_b) {
        if ((s = check_type(c, d->types_b, b->dtype, "input B")))
            return s;
    } else if (a->dtype != b->dtype) {
        return si_op_err(c, SI_ERR_INVALID_ARG, "inputs have different types %s and %s", si_dtype_name(a->dtype),
                         si_dtype_name(b->dtype));
    }
    int nb, nout;
    int64_t db[SI_MAX_DIMS], dout[SI_MAX_DIMS];
    if ((s = legacy_b_shape(c, a->ndim, &nb, db)))
        return s;
    if ((s = si_broadcast_shape(c, a->ndim, a->dims, nb, db, &nout, dout)))
        return s;
    return set_out(c, d->out_bool ? SI_BOOL : a->dtype, nout, dout);
}

static si_result bin_run(si_kctx *c, const bin_def *d)
{
    si_tensor *out = c->out[0];
    if (!out || tcount(out) == 0)
        return SI_OK;
    int nb;
    int64_t db[SI_MAX_DIMS];
    si_result s = legacy_b_shape(c, c->in[0]->ndim, &nb, db);
    if (s)
        return s;
    bin_apply(d, c->in[0], c->in[0]->ndim, c->in[0]->dims, c->in[1], nb, db, out);
    return SI_OK;
}

#define BINARY_OP(ID, NAME, TYPES, TYPES_B, OUT_BOOL, F, S, U, F32)                                            \
    static const bin_def bd_##ID = {NAME, TYPES, TYPES_B, OUT_BOOL, false, F, S, U, F32};                     \
    static si_result infer_##ID(si_kctx *c) { return bin_infer(c, &bd_##ID); }                                 \
    static si_result run_##ID(si_kctx *c) { return bin_run(c, &bd_##ID); }                                     \
    static const si_op_def op_##ID = {NAME, "", TYPES, infer_##ID, run_##ID, NULL};

#define SIGNED_INTS (SI_T(SI_I8) | SI_T(SI_I16) | SI_T(SI_I32) | SI_T(SI_I64))
#define UNSIGNED_INTS (SI_T(SI_U8) | SI_T(SI_U16) | SI_T(SI_U32) | SI_T(SI_U64))

BINARY_OP(add, "Add", SI_T_NUMERIC, 0, false, fb_add, sb_add, ub_add, f32_add)
BINARY_OP(sub, "Sub", SI_T_NUMERIC, 0, false, fb_sub, sb_sub, ub_sub, f32_sub)
BINARY_OP(mul, "Mul", SI_T_NUMERIC, 0, false, fb_mul, sb_mul, ub_mul, f32_mul)
BINARY_OP(div, "Div", SI_T_NUMERIC, 0, false, fb_div, sb_div, ub_div, f32_div)
BINARY_OP(equal, "Equal", SI_T_ALL, 0, true, fb_eq, sb_eq, ub_eq, NULL)
BINARY_OP(less, "Less", SI_T_NUMERIC, 0, true, fb_lt, sb_lt, ub_lt, NULL)
BINARY_OP(greater, "Greater", SI_T_NUMERIC, 0, true, fb_gt, sb_gt, ub_gt, NULL)
BINARY_OP(less_eq, "LessOrEqual", SI_T_NUMERIC, 0, true, fb_le, sb_le, ub_le, NULL)
BINARY_OP(greater_eq, "GreaterOrEqual", SI_T_NUMERIC, 0, true, fb_ge, sb_ge, ub_ge, NULL)
BINARY_OP(and, "And", SI_T(SI_BOOL), 0, true, NULL, NULL, ub_land, NULL)
BINARY_OP(or, "Or", SI_T(SI_BOOL), 0, true, NULL, NULL, ub_lor, NULL)
BINARY_OP(xor, "Xor", SI_T(SI_BOOL), 0, true, NULL, NULL, ub_lxor, NULL)
BINARY_OP(bit_and, "BitwiseAnd", SI_T_INTS, 0, false, NULL, sb_and, ub_band, NULL)
BINARY_OP(bit_or, "BitwiseOr", SI_T_INTS, 0, false, NULL, sb_or, ub_bor, NULL)
BINARY_OP(bit_xor, "BitwiseXor", SI_T_INTS, 0, false, NULL, sb_xor, ub_bxor, NULL)

/* Pow: base and exponent may have different types; the output has the base's type. */
static const bin_def bd_pow = {"Pow", SI_T_NUMERIC, SI_T_NUMERIC, false, true, fb_pow, NULL, NULL, NULL};
static si_result infer_pow(si_kctx *c) { return bin_infer(c, &bd_pow); }
static si_result run_pow(si_kctx *c) { return bin_run(c, &bd_pow); }
static const si_op_def op_pow = {"Pow", "", SI_T_NUMERIC, infer_pow, run_pow, NULL};

/* Mod: fmod=0 follows the sign of the divisor (Python/numpy mod), fmod=1 is C fmod. */
static const bin_def bd_mod = {"Mod", SI_T_NUMERIC, 0, false, false, fb_pymod, sb_pymod, ub_mod, NULL};
static const bin_def bd_fmod = {"Mod", SI_T_NUMERIC, 0, false, false, fb_fmod, sb_fmod, ub_mod, NULL};
static si_result mod_def(const si_kctx *c, const bin_def **d)
{
    int64_t f = si_attr_int(c->node, "fmod", 0);
    if (f != 0 && f != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute fmod must be 0 or 1, got %lld", (long long)f);
    *d = f ? &bd_fmod : &bd_mod;
    return SI_OK;
}
static si_result infer_mod(si_kctx *c)
{
    const bin_def *d = NULL;
    si_result s = mod_def(c, &d);
    return s ? s : bin_infer(c, d);
}
static si_result run_mod(si_kctx *c)
{
    const bin_def *d = NULL;
    si_result s = mod_def(c, &d);
    return s ? s : bin_run(c, d);
}
static const si_op_def op_mod = {"Mod", "", SI_T_NUMERIC, infer_mod, run_mod, NULL};

/* BitShift: direction "LEFT" or "RIGHT" (required). */
static const bin_def bd_shl = {"BitShift", UNSIGNED_INTS, 0, false, false, NULL, NULL, ub_shl, NULL};
static const bin_def bd_shr = {"BitShift", UNSIGNED_INTS, 0, false, false, NULL, NULL, ub_shr, NULL};
static si_result shift_def(const si_kctx *c, const bin_def **d)
{
    const char *dir = si_attr_str(c->node, "direction", NULL);
    if (!dir)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute direction is required");
    if (strcmp(dir, "LEFT") == 0)
        *d = &bd_shl;
    else if (strcmp(dir, "RIGHT") == 0)
        *d = &bd_shr;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute direction must be LEFT or RIGHT, got '%s'", dir);
    return SI_OK;
}
static si_result infer_shift(si_kctx *c)
{
    const bin_def *d = NULL;
    si_result s = shift_def(c, &d);
    return s ? s : bin_infer(c, d);
}
static si_result run_shift(si_kctx *c)
{
    const bin_def *d = NULL;
    si_result s = shift_def(c, &d);
    return s ? s : bin_run(c, d);
}
static const si_op_def op_shift = {"BitShift", "", UNSIGNED_INTS, infer_shift, run_shift, NULL};

/* PRelu: slope is broadcast to X's shape (unidirectional). Before opset 7 a 1-D slope of X's channel count
 * was also accepted; it applies along axis 1. */
static const bin_def bd_prelu = {"PRelu", SI_T_NUMERIC, 0, false, false, fb_prelu, sb_prelu, ub_prelu, NULL};

static si_result prelu_slope_shape(const si_kctx *c, int *ns, int64_t *ds)
{
    const si_tensor *x = c->in[0], *sl = c->in[1];
    int nout;
    int64_t dout[SI_MAX_DIMS];
    *ns = sl->ndim;
    memcpy(ds, sl->dims, sizeof(int64_t) * (size_t)sl->ndim);
    if (c->opset < 7 && sl->ndim == 1 && x->ndim >= 2 && sl->dims[0] == x->dims[1] && sl->dims[0] != 1) {
        /* channel slope: [C] -> [C, 1, ..., 1] */
        for (int i = 2; i < x->ndim; i++)
            ds[(*ns)++] = 1;
    }
    si_result s = si_broadcast_shape(c, x->ndim, x->dims, *ns, ds, &nout, dout);
    if (s)
        return s;
    if (nout != x->ndim || memcmp(dout, x->dims, sizeof(int64_t) * (size_t)nout) != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "slope is not unidirectionally broadcastable to X");
    return SI_OK;
}

static si_result infer_prelu(si_kctx *c)
{
    if (c->n_in != 2 || !c->in[0] || !c->in[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects 2 inputs, got %d", c->n_in);
    const si_tensor *x = c->in[0];
    si_result s = check_type(c, bd_prelu.types, x->dtype, "input X");
    if (s)
        return s;
    if (c->in[1]->dtype != x->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "slope type %s differs from X type %s",
                         si_dtype_name(c->in[1]->dtype), si_dtype_name(x->dtype));
    int ns;
    int64_t ds[SI_MAX_DIMS];
    if ((s = prelu_slope_shape(c, &ns, ds)))
        return s;
    return set_out(c, x->dtype, x->ndim, x->dims);
}

static si_result run_prelu(si_kctx *c)
{
    si_tensor *out = c->out[0];
    if (!out || tcount(out) == 0)
        return SI_OK;
    int ns;
    int64_t ds[SI_MAX_DIMS];
    si_result s = prelu_slope_shape(c, &ns, ds);
    if (s)
        return s;
    bin_apply(&bd_prelu, c->in[0], c->in[0]->ndim, c->in[0]->dims, c->in[1], ns, ds, out);
    return SI_OK;
}
static const si_op_def op_prelu = {"PRelu", "", SI_T_NUMERIC, infer_prelu, run_prelu, NULL};

/* ---------------------------------------------------------------------------------------------------------
 * Variadic Min / Max / Sum / Mean: out = in0 broadcast, then out = op(out, in_k) for each further input.
 */

static si_result var_infer(si_kctx *c, const bin_def *d)
{
    if (c->n_in < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects at least one input");
    int nout = 0;
    int64_t dout[SI_MAX_DIMS];
    for (int i = 0; i < c->n_in; i++) {
        const si_tensor *t = c->in[i];
        if (!t)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
        si_result s = check_type(c, d->types, t->dtype, "input");
        if (s)
            return s;
        if (t->dtype != c->in[0]->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has type %s, input 0 has %s", i,
                             si_dtype_name(t->dtype), si_dtype_name(c->in[0]->dtype));
        if (i == 0) {
            nout = t->ndim;
            memcpy(dout, t->dims, sizeof(int64_t) * (size_t)nout);
        } else {
            int64_t prev[SI_MAX_DIMS];
            int nprev = nout;
            memcpy(prev, dout, sizeof(prev));
            if ((s = si_broadcast_shape(c, nprev, prev, t->ndim, t->dims, &nout, dout)))
                return s;
        }
    }
    return set_out(c, c->in[0]->dtype, nout, dout);
}

static si_result var_run(si_kctx *c, const bin_def *d, bool mean)
{
    si_tensor *out = c->out[0];
    if (!out || tcount(out) == 0)
        return SI_OK;
    const si_tensor *x0 = c->in[0];
    copy_ctx cc = {si_dtype_size(out->dtype), x0->data, out->data};
    int nd0 = x0->ndim;
    const int64_t *d0 = x0->dims;
    bc_plan p;
    bc_plan_init(&p, out->ndim, out->dims, 1, &nd0, &d0);
    bc_run(&p, copy_row, &cc);
    for (int k = 1; k < c->n_in; k++)
        bin_apply(d, out, out->ndim, out->dims, c->in[k], c->in[k]->ndim, c->in[k]->dims, out);
    if (mean && c->n_in > 1) {
        int64_t n = tcount(out);
        if (out->dtype == SI_F32) {
            float *y = out->data;
            for (int64_t i = 0; i < n; i++)
                y[i] /= (float)c->n_in;
        } else {
            for (int64_t i = 0; i < n; i++)
                st_f(out->dtype, out->data, i, ld_f(out->dtype, out->data, i) / c->n_in);
        }
    }
    return SI_OK;
}

static const bin_def bd_vmin = {"Min", SI_T_NUMERIC, 0, false, false, fb_min, sb_min, ub_min, f32_min};
static const bin_def bd_vmax = {"Max", SI_T_NUMERIC, 0, false, false, fb_max, sb_max, ub_max, f32_max};
static const bin_def bd_vsum = {"Sum", SI_T_FLOATS, 0, false, false, fb_add, NULL, NULL, f32_add};
static const bin_def bd_vmean = {"Mean", SI_T_FLOATS, 0, false, false, fb_add, NULL, NULL, f32_add};

static si_result infer_vmin(si_kctx *c) { return var_infer(c, &bd_vmin); }
static si_result run_vmin(si_kctx *c) { return var_run(c, &bd_vmin, false); }
static si_result infer_vmax(si_kctx *c) { return var_infer(c, &bd_vmax); }
static si_result run_vmax(si_kctx *c) { return var_run(c, &bd_vmax, false); }
static si_result infer_vsum(si_kctx *c) { return var_infer(c, &bd_vsum); }
static si_result run_vsum(si_kctx *c) { return var_run(c, &bd_vsum, false); }
static si_result infer_vmean(si_kctx *c) { return var_infer(c, &bd_vmean); }
static si_result run_vmean(si_kctx *c) { return var_run(c, &bd_vmean, true); }
static const si_op_def op_min = {"Min", "", SI_T_NUMERIC, infer_vmin, run_vmin, NULL};
static const si_op_def op_max = {"Max", "", SI_T_NUMERIC, infer_vmax, run_vmax, NULL};
static const si_op_def op_sum = {"Sum", "", SI_T_FLOATS, infer_vsum, run_vsum, NULL};
static const si_op_def op_mean = {"Mean", "", SI_T_FLOATS, infer_vmean, run_vmean, NULL};

/* ---------------------------------------------------------------------------------------------------------
 * Where
 */

typedef struct where_ctx {
    size_t esize;
    const uint8_t *cond;
    const void *x, *y;
    void *o;
} where_ctx;

#define WHERE_ROW(T)                                                                                           \
    do {                                                                                                       \
        const uint8_t *c_ = c->cond + off[0];                                                                  \
        const T *x_ = (const T *)c->x + off[1];                                                                \
        const T *y_ = (const T *)c->y + off[2];                                                                \
        T *o_ = (T *)c->o + o;                                                                                 \
        for (int64_t i = 0; i < n; i++)                                                                        \
            o_[i] = c_[i * step[0]] ? x_[i * step[1]] : y_[i * step[2]];                                       \
    } while (0)

static void where_row(void *vc, int64_t n, int64_t o, const int64_t *off, const int64_t *step)
{
    const where_ctx *c = vc;
    switch (c->esize) {
    case 1: WHERE_ROW(uint8_t); break;
    case 2: WHERE_ROW(uint16_t); break;
    case 4: WHERE_ROW(uint32_t); break;
    default: WHERE_ROW(uint64_t); break;
    }
}

static si_result infer_where(si_kctx *c)
{
    if (c->n_in != 3 || !c->in[0] || !c->in[1] || !c->in[2])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects 3 inputs, got %d", c->n_in);
    const si_tensor *cond = c->in[0], *x = c->in[1], *y = c->in[2];
    if (cond->dtype != SI_BOOL)
        return si_op_err(c, SI_ERR_INVALID_ARG, "condition must be bool, got %s", si_dtype_name(cond->dtype));
    si_result s = check_type(c, SI_T_ALL, x->dtype, "input X");
    if (s)
        return s;
    if (x->dtype != y->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "X and Y have different types %s and %s", si_dtype_name(x->dtype),
                         si_dtype_name(y->dtype));
    int n1, n2;
    int64_t d1[SI_MAX_DIMS], d2[SI_MAX_DIMS];
    if ((s = si_broadcast_shape(c, cond->ndim, cond->dims, x->ndim, x->dims, &n1, d1)))
        return s;
    if ((s = si_broadcast_shape(c, n1, d1, y->ndim, y->dims, &n2, d2)))
        return s;
    return set_out(c, x->dtype, n2, d2);
}

static si_result run_where(si_kctx *c)
{
    si_tensor *out = c->out[0];
    if (!out || tcount(out) == 0)
        return SI_OK;
    where_ctx wc = {si_dtype_size(out->dtype), c->in[0]->data, c->in[1]->data, c->in[2]->data, out->data};
    int nds[3];
    const int64_t *dims[3];
    for (int k = 0; k < 3; k++) {
        nds[k] = c->in[k]->ndim;
        dims[k] = c->in[k]->dims;
    }
    bc_plan p;
    bc_plan_init(&p, out->ndim, out->dims, 3, nds, dims);
    bc_run(&p, where_row, &wc);
    return SI_OK;
}
static const si_op_def op_where = {"Where", "", SI_T(SI_BOOL), infer_where, run_where, NULL};

/* ---------------------------------------------------------------------------------------------------------
 * Unary ops
 */

typedef struct un_par {
    double a, b, g;       /* alpha / beta / gamma style parameters; Clip: min, max */
    uint64_t lo, hi;      /* Clip on integers: min, max as 64-bit patterns */
    int flag1, flag2;
} un_par;

typedef void (*f32_un_fn)(int64_t n, const float *x, float *y, const un_par *p);

typedef struct un_def {
    const char *name;
    uint32_t types;
    bool out_bool;
    double (*f)(double, const un_par *);
    int64_t (*s)(int64_t, const un_par *);
    uint64_t (*u)(uint64_t, const un_par *);
    f32_un_fn f32;
    si_result (*par)(const si_kctx *, un_par *); /* reads attributes (and Clip's inputs) */
    int max_in;
} un_def;

#define UF(NAME, EXPR)                                                                                         \
    static double NAME(double x, const un_par *p)                                                              \
    {                                                                                                          \
        (void)p;                                                                                               \
        return (EXPR);                                                                                         \
    }

static double sigmoid_d(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double softplus_d(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

static double sign_d(double x)
{
    return x > 0 ? 1.0 : x < 0 ? -1.0 : x; /* keeps 0, -0 and NaN */
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

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
UF(fu_celu, (x > 0 ? x : 0.0) + fmin(0.0, p->a * (exp(x / p->a) - 1.0)))
UF(fu_sigmoid, sigmoid_d(x))
UF(fu_hsigmoid, clamp01(p->a * x + p->b))
UF(fu_hswish, x * clamp01(x / 6.0 + 0.5))
UF(fu_swish, x * sigmoid_d(p->a * x))
UF(fu_tanh, tanh(x))
UF(fu_erf, erf(x))
UF(fu_gelu, p->flag1 ? 0.5 * x * (1.0 + tanh(0.79788456080286535587989211986876 * (x + 0.044715 * x * x * x)))
                     : 0.5 * x * (1.0 + erf(x / sqrt(2.0))))
UF(fu_softplus, softplus_d(x))
UF(fu_softsign, x / (1.0 + fabs(x)))
UF(fu_mish, x * tanh(softplus_d(x)))
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
UF(fu_shrink, x < -p->g ? x + p->b : x > p->g ? x - p->b : 0.0)
UF(fu_isnan, isnan(x) ? 1.0 : 0.0)
UF(fu_isinf, (isinf(x) && ((x > 0 && p->flag1) || (x < 0 && p->flag2))) ? 1.0 : 0.0)
UF(fu_clip, x < p->a ? p->a : x > p->b ? p->b : x)

static int64_t su_abs(int64_t x, const un_par *p) { (void)p; return x < 0 ? (int64_t)(0 - (uint64_t)x) : x; }
static int64_t su_neg(int64_t x, const un_par *p) { (void)p; return (int64_t)(0 - (uint64_t)x); }
static int64_t su_sign(int64_t x, const un_par *p) { (void)p; return x > 0 ? 1 : x < 0 ? -1 : 0; }
static int64_t su_relu(int64_t x, const un_par *p) { (void)p; return x < 0 ? 0 : x; }
static int64_t su_bnot(int64_t x, const un_par *p) { (void)p; return ~x; }
static int64_t su_clip(int64_t x, const un_par *p)
{
    int64_t lo = (int64_t)p->lo, hi = (int64_t)p->hi;
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}
static uint64_t uu_id(uint64_t x, const un_par *p) { (void)p; return x; }
static uint64_t uu_sign(uint64_t x, const un_par *p) { (void)p; return x > 0; }
static uint64_t uu_bnot(uint64_t x, const un_par *p) { (void)p; return ~x; }
static uint64_t uu_not(uint64_t x, const un_par *p) { (void)p; return x == 0; }
static uint64_t uu_clip(uint64_t x, const un_par *p)
{
    x = x < p->lo ? p->lo : x;
    return x > p->hi ? p->hi : x;
}

/* float32 loops for the activations CNNs use most */
static void f32_relu(int64_t n, const float *x, float *y, const un_par *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}
static void f32_leaky(int64_t n, const float *x, float *y, const un_par *p)
{
    const float a = (float)p->a;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? a * x[i] : x[i];
}
static void f32_sigmoid(int64_t n, const float *x, float *y, const un_par *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void f32_hsigmoid(int64_t n, const float *x, float *y, const un_par *p)
{
    const float a = (float)p->a, b = (float)p->b;
    for (int64_t i = 0; i < n; i++) {
        float v = a * x[i] + b;
        y[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
}
static void f32_hswish(int64_t n, const float *x, float *y, const un_par *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / 6.0f + 0.5f;
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        y[i] = x[i] * v;
    }
}
static void f32_tanh(int64_t n, const float *x, float *y, const un_par *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}
static void f32_clip(int64_t n, const float *x, float *y, const un_par *p)
{
    const float lo = (float)p->a, hi = (float)p->b;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

/* attribute readers */
static si_result par_alpha(const si_kctx *c, float dflt, un_par *p)
{
    p->a = si_attr_float(c->node, "alpha", dflt);
    return SI_OK;
}
static si_result par_leaky(const si_kctx *c, un_par *p) { return par_alpha(c, 0.01f, p); }
static si_result par_alpha1(const si_kctx *c, un_par *p) { return par_alpha(c, 1.0f, p); }
static si_result par_celu(const si_kctx *c, un_par *p)
{
    par_alpha(c, 1.0f, p);
    if (p->a == 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "alpha must not be 0");
    return SI_OK;
}
static si_result par_selu(const si_kctx *c, un_par *p)
{
    p->a = si_attr_float(c->node, "alpha", 1.67326319217681884765625f);
    p->g = si_attr_float(c->node, "gamma", 1.05070102214813232421875f);
    return SI_OK;
}
static si_result par_hsigmoid(const si_kctx *c, un_par *p)
{
    p->a = si_attr_float(c->node, "alpha", 0.2f);
    p->b = si_attr_float(c->node, "beta", 0.5f);
    return SI_OK;
}
static si_result par_shrink(const si_kctx *c, un_par *p)
{
    p->b = si_attr_float(c->node, "bias", 0.0f);
    p->g = si_attr_float(c->node, "lambd", 0.5f);
    return SI_OK;
}
static si_result par_gelu(const si_kctx *c, un_par *p)
{
    const char *a = si_attr_str(c->node, "approximate", "none");
    if (strcmp(a, "none") == 0)
        p->flag1 = 0;
    else if (strcmp(a, "tanh") == 0)
        p->flag1 = 1;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute approximate must be 'none' or 'tanh', got '%s'", a);
    return SI_OK;
}
static si_result par_isinf(const si_kctx *c, un_par *p)
{
    p->flag1 = si_attr_int(c->node, "detect_positive", 1) != 0;
    p->flag2 = si_attr_int(c->node, "detect_negative", 1) != 0;
    return SI_OK;
}

/* Clip: attributes min/max before opset 11, optional scalar inputs from 11 on. */
static si_result par_clip(const si_kctx *c, un_par *p)
{
    si_dtype t = c->in[0]->dtype;
    bool sg = t_signed(t);
    if (c->opset < 11) {
        p->a = si_attr_float(c->node, "min", -FLT_MAX);
        p->b = si_attr_float(c->node, "max", FLT_MAX);
        p->lo = f2i(sg ? SI_I64 : SI_U64, p->a);
        p->hi = f2i(sg ? SI_I64 : SI_U64, p->b);
        return SI_OK;
    }
    p->a = -INFINITY;
    p->b = INFINITY;
    p->lo = sg ? (uint64_t)INT64_MIN : 0;
    p->hi = sg ? (uint64_t)INT64_MAX : UINT64_MAX;
    for (int k = 1; k <= 2 && k < c->n_in; k++) {
        const si_tensor *m = c->in[k];
        if (!m || tcount(m) == 0)
            continue;
        if (!m->data)
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has no data", k == 1 ? "min" : "max");
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

static si_result un_infer(si_kctx *c, const un_def *d)
{
    if (c->n_in < 1 || c->n_in > d->max_in || !c->in[0])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects %s%d input%s, got %d", d->max_in > 1 ? "1 to " : "",
                         d->max_in, d->max_in > 1 ? "s" : "", c->n_in);
    const si_tensor *x = c->in[0];
    si_result s = check_type(c, d->types, x->dtype, "input");
    if (s)
        return s;
    for (int k = 1; k < c->n_in; k++) {
        const si_tensor *m = c->in[k];
        if (!m)
            continue;
        if (m->dtype != x->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has type %s, input 0 has %s", k,
                             si_dtype_name(m->dtype), si_dtype_name(x->dtype));
        if (si_shape_count(m->ndim, m->dims) > 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d must be a scalar", k);
    }
    return set_out(c, d->out_bool ? SI_BOOL : x->dtype, x->ndim, x->dims);
}

static si_result un_run(si_kctx *c, const un_def *d)
{
    const si_tensor *x = c->in[0];
    si_tensor *y = c->out[0];
    if (!y)
        return SI_OK;
    int64_t n = tcount(x);
    if (n == 0)
        return SI_OK;
    un_par p;
    memset(&p, 0, sizeof(p));
    if (d->par) {
        si_result s = d->par(c, &p);
        if (s)
            return s;
    }
    si_dtype t = x->dtype, to = y->dtype;
    if (t == SI_F32 && to == SI_F32) {
        const float *xv = x->data;
        float *yv = y->data;
        if (d->f32) {
            d->f32(n, xv, yv, &p);
        } else {
            for (int64_t i = 0; i < n; i++)
                yv[i] = (float)d->f(xv[i], &p);
        }
    } else if (t == SI_F64 && to == SI_F64) {
        const double *xv = x->data;
        double *yv = y->data;
        for (int64_t i = 0; i < n; i++)
            yv[i] = d->f(xv[i], &p);
    } else if (!t_float(t) && t_signed(t) && d->s) {
        for (int64_t i = 0; i < n; i++)
            st_raw(to, y->data, i, (uint64_t)d->s((int64_t)ld_raw(t, x->data, i), &p));
    } else if (!t_float(t) && !t_signed(t) && d->u) {
        for (int64_t i = 0; i < n; i++)
            st_raw(to, y->data, i, d->u(ld_raw(t, x->data, i), &p));
    } else if (d->f) {
        for (int64_t i = 0; i < n; i++)
            st_f(to, y->data, i, d->f(ld_f(t, x->data, i), &p));
    } else {
        return si_op_err(c, SI_ERR_UNSUPPORTED, "input of type %s is not supported", si_dtype_name(t));
    }
    return SI_OK;
}

#define UNARY_OP(ID, NAME, TYPES, OUT_BOOL, F, S, U, F32, PAR, MAXIN)                                          \
    static const un_def ud_##ID = {NAME, TYPES, OUT_BOOL, F, S, U, F32, PAR, MAXIN};                          \
    static si_result infer_##ID(si_kctx *c) { return un_infer(c, &ud_##ID); }                                  \
    static si_result run_##ID(si_kctx *c) { return un_run(c, &ud_##ID); }                                      \
    static const si_op_def op_##ID = {NAME, "", TYPES, infer_##ID, run_##ID, NULL};

#define FLOATS SI_T_FLOATS
#define FLOATS_SINTS (SI_T_FLOATS | SIGNED_INTS)

UNARY_OP(abs, "Abs", SI_T_NUMERIC, false, fu_abs, su_abs, uu_id, NULL, NULL, 1)
UNARY_OP(neg, "Neg", FLOATS_SINTS, false, fu_neg, su_neg, NULL, NULL, NULL, 1)
UNARY_OP(sqrt, "Sqrt", FLOATS, false, fu_sqrt, NULL, NULL, NULL, NULL, 1)
UNARY_OP(exp, "Exp", FLOATS, false, fu_exp, NULL, NULL, NULL, NULL, 1)
UNARY_OP(log, "Log", FLOATS, false, fu_log, NULL, NULL, NULL, NULL, 1)
UNARY_OP(recip, "Reciprocal", FLOATS, false, fu_recip, NULL, NULL, NULL, NULL, 1)
UNARY_OP(floor, "Floor", FLOATS, false, fu_floor, NULL, NULL, NULL, NULL, 1)
UNARY_OP(ceil, "Ceil", FLOATS, false, fu_ceil, NULL, NULL, NULL, NULL, 1)
UNARY_OP(round, "Round", FLOATS, false, fu_round, NULL, NULL, NULL, NULL, 1)
UNARY_OP(sign, "Sign", SI_T_NUMERIC, false, fu_sign, su_sign, uu_sign, NULL, NULL, 1)
UNARY_OP(clip, "Clip", SI_T_NUMERIC, false, fu_clip, su_clip, uu_clip, f32_clip, par_clip, 3)
UNARY_OP(relu, "Relu", FLOATS_SINTS, false, fu_relu, su_relu, NULL, f32_relu, NULL, 1)
UNARY_OP(leaky, "LeakyRelu", FLOATS, false, fu_leaky, NULL, NULL, f32_leaky, par_leaky, 1)
UNARY_OP(elu, "Elu", FLOATS, false, fu_elu, NULL, NULL, NULL, par_alpha1, 1)
UNARY_OP(selu, "Selu", FLOATS, false, fu_selu, NULL, NULL, NULL, par_selu, 1)
UNARY_OP(celu, "Celu", FLOATS, false, fu_celu, NULL, NULL, NULL, par_celu, 1)
UNARY_OP(sigmoid, "Sigmoid", FLOATS, false, fu_sigmoid, NULL, NULL, f32_sigmoid, NULL, 1)
UNARY_OP(hsigmoid, "HardSigmoid", FLOATS, false, fu_hsigmoid, NULL, NULL, f32_hsigmoid, par_hsigmoid, 1)
UNARY_OP(hswish, "HardSwish", FLOATS, false, fu_hswish, NULL, NULL, f32_hswish, NULL, 1)
UNARY_OP(swish, "Swish", FLOATS, false, fu_swish, NULL, NULL, NULL, par_alpha1, 1)
UNARY_OP(tanh, "Tanh", FLOATS, false, fu_tanh, NULL, NULL, f32_tanh, NULL, 1)
UNARY_OP(erf, "Erf", SI_T_NUMERIC, false, fu_erf, NULL, NULL, NULL, NULL, 1)
UNARY_OP(gelu, "Gelu", FLOATS, false, fu_gelu, NULL, NULL, NULL, par_gelu, 1)
UNARY_OP(softplus, "Softplus", FLOATS, false, fu_softplus, NULL, NULL, NULL, NULL, 1)
UNARY_OP(softsign, "Softsign", FLOATS, false, fu_softsign, NULL, NULL, NULL, NULL, 1)
UNARY_OP(mish, "Mish", FLOATS, false, fu_mish, NULL, NULL, NULL, NULL, 1)
UNARY_OP(sin, "Sin", FLOATS, false, fu_sin, NULL, NULL, NULL, NULL, 1)
UNARY_OP(cos, "Cos", FLOATS, false, fu_cos, NULL, NULL, NULL, NULL, 1)
UNARY_OP(tan, "Tan", FLOATS, false, fu_tan, NULL, NULL, NULL, NULL, 1)
UNARY_OP(asin, "Asin", FLOATS, false, fu_asin, NULL, NULL, NULL, NULL, 1)
UNARY_OP(acos, "Acos", FLOATS, false, fu_acos, NULL, NULL, NULL, NULL, 1)
UNARY_OP(atan, "Atan", FLOATS, false, fu_atan, NULL, NULL, NULL, NULL, 1)
UNARY_OP(sinh, "Sinh", FLOATS, false, fu_sinh, NULL, NULL, NULL, NULL, 1)
UNARY_OP(cosh, "Cosh", FLOATS, false, fu_cosh, NULL, NULL, NULL, NULL, 1)
UNARY_OP(asinh, "Asinh", FLOATS, false, fu_asinh, NULL, NULL, NULL, NULL, 1)
UNARY_OP(acosh, "Acosh", FLOATS, false, fu_acosh, NULL, NULL, NULL, NULL, 1)
UNARY_OP(atanh, "Atanh", FLOATS, false, fu_atanh, NULL, NULL, NULL, NULL, 1)
UNARY_OP(thrrelu, "ThresholdedRelu", FLOATS, false, fu_threlu, NULL, NULL, NULL, par_alpha1, 1)
UNARY_OP(shrink, "Shrink", SI_T_NUMERIC, false, fu_shrink, NULL, NULL, NULL, par_shrink, 1)
UNARY_OP(isnan, "IsNaN", FLOATS, true, fu_isnan, NULL, NULL, NULL, NULL, 1)
UNARY_OP(isinf, "IsInf", FLOATS, true, fu_isinf, NULL, NULL, NULL, par_isinf, 1)
UNARY_OP(not, "Not", SI_T(SI_BOOL), false, NULL, NULL, uu_not, NULL, NULL, 1)
UNARY_OP(bit_not, "BitwiseNot", SI_T_INTS, false, NULL, su_bnot, uu_bnot, NULL, NULL, 1)

/* ---------------------------------------------------------------------------------------------------------
 * Cast / CastLike
 */

/* Cast-1 named the target type with a string. */
static si_dtype dtype_from_name(const char *s)
{
    static const struct {
        const char *name;
        si_dtype t;
    } names[] = {{"FLOAT", SI_F32},   {"UINT8", SI_U8},    {"INT8", SI_I8},     {"UINT16", SI_U16},
                 {"INT16", SI_I16},   {"INT32", SI_I32},   {"INT64", SI_I64},   {"STRING", SI_STRING},
                 {"BOOL", SI_BOOL},   {"FLOAT16", SI_F16}, {"DOUBLE", SI_F64},  {"UINT32", SI_U32},
                 {"UINT64", SI_U64},  {"BFLOAT16", SI_BF16}};
    for (size_t i = 0; i < SI_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].t;
    return SI_DTYPE_UNDEFINED;
}

static si_result cast_target(const si_kctx *c, si_dtype *to)
{
    const si_attr *a = si_node_attr(c->node, "to");
    if (!a)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'to' is required");
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

/* Convert n elements: floats -> ints truncate toward zero, anything -> bool is x != 0, ints -> ints wrap. */
static void convert(si_dtype ts, const void *src, si_dtype td, void *dst, int64_t n)
{
    if (ts == td) {
        memcpy(dst, src, (size_t)n * si_dtype_size(ts));
        return;
    }
    if (ts == SI_F32 && td == SI_F16) {
        const float *x = src;
        uint16_t *y = dst;
        for (int64_t i = 0; i < n; i++)
            y[i] = si_f32_to_f16(x[i]);
        return;
    }
    if (ts == SI_F16 && td == SI_F32) {
        const uint16_t *x = src;
        float *y = dst;
        for (int64_t i = 0; i < n; i++)
            y[i] = si_f16_to_f32(x[i]);
        return;
    }
    if (t_float(ts)) {
        for (int64_t i = 0; i < n; i++)
            st_f(td, dst, i, ld_f(ts, src, i));
        return;
    }
    /* integer or bool source */
    bool sg = t_signed(ts);
    if (td == SI_BOOL) {
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = ld_raw(ts, src, i) != 0;
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
        for (int64_t i = 0; i < n; i++)
            st_raw(td, dst, i, ld_raw(ts, src, i));
    }
}

static si_result cast_check_in(const si_kctx *c, int need)
{
    if (c->n_in != need || !c->in[0] || (need > 1 && !c->in[1]))
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects %d input%s, got %d", need, need > 1 ? "s" : "", c->n_in);
    return check_type(c, SI_T_ALL, c->in[0]->dtype, "input");
}

static si_result infer_cast(si_kctx *c)
{
    si_dtype to = SI_DTYPE_UNDEFINED;
    si_result s = cast_check_in(c, 1);
    if (s || (s = cast_target(c, &to)))
        return s;
    return set_out(c, to, c->in[0]->ndim, c->in[0]->dims);
}

static si_result infer_castlike(si_kctx *c)
{
    si_result s = cast_check_in(c, 2);
    if (s)
        return s;
    si_dtype to = c->in[1]->dtype;
    if (!si_dtype_valid(to))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "cast to element type %s is not supported", si_dtype_name(to));
    return set_out(c, to, c->in[0]->ndim, c->in[0]->dims);
}

static si_result run_cast(si_kctx *c)
{
    si_tensor *y = c->out[0];
    if (!y || tcount(y) == 0)
        return SI_OK;
    convert(c->in[0]->dtype, c->in[0]->data, y->dtype, y->data, tcount(y));
    return SI_OK;
}

static const si_op_def op_cast = {"Cast", "", SI_T_ALL, infer_cast, run_cast, NULL};
static const si_op_def op_castlike = {"CastLike", "", SI_T_ALL, infer_castlike, run_cast, NULL};

/* ---------------------------------------------------------------------------------------------------------
 * The table
 */

const si_op_def *const si_ops_elementwise[] = {
    &op_abs,      &op_add,     &op_sub,      &op_mul,     &op_div,      &op_pow,      &op_sqrt,     &op_exp,
    &op_log,      &op_neg,     &op_recip,    &op_floor,   &op_ceil,     &op_round,    &op_sign,     &op_mod,
    &op_min,      &op_max,     &op_sum,      &op_mean,    &op_clip,     &op_relu,     &op_leaky,    &op_prelu,
    &op_elu,      &op_selu,    &op_celu,     &op_sigmoid, &op_hsigmoid, &op_hswish,   &op_tanh,     &op_erf,
    &op_gelu,     &op_softplus, &op_softsign, &op_mish,   &op_sin,      &op_cos,      &op_tan,      &op_asin,
    &op_acos,     &op_atan,    &op_sinh,     &op_cosh,    &op_asinh,    &op_acosh,    &op_atanh,    &op_thrrelu,
    &op_shrink,   &op_equal,   &op_less,     &op_greater, &op_less_eq,  &op_greater_eq, &op_not,    &op_and,
    &op_or,       &op_xor,     &op_shift,    &op_bit_and, &op_bit_or,   &op_bit_xor,  &op_bit_not,  &op_where,
    &op_cast,     &op_castlike, &op_isnan,   &op_isinf,   &op_swish,   NULL};
