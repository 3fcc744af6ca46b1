/*
 * binary.c — reference kernels for the element-wise ops of two or more inputs with numpy broadcasting:
 * arithmetic, comparisons, logic and bitwise ops, Pow, Mod, BitShift, PRelu, the variadic Min/Max/Sum/Mean,
 * and Where.
 *
 * Structure:
 *  - one broadcasting iterator (bc_plan / bc_run): it merges dimensions that are contiguous for every
 *    input, then calls a row function for each innermost row with per-input start offsets and steps
 *    (0 for a broadcast input). Binary ops, PRelu, Where and the variadic folds all use it.
 *  - binary ops are described by a bin_def: a double function for floats, an int64 function for signed
 *    integers and a uint64 function for unsigned integers and bool (comparisons return 0/1). float32 has
 *    dedicated loops for Add/Sub/Mul/Div/Min/Max.
 *  - element access (ld_raw/st_raw, ld_f/st_f) is shared with unary.c through elem.h.
 */
#include "ops/elem.h"

/* ---------------------------------------------------------------------------------------------------------
 * The broadcasting iterator
 */

#define BC_MAX_IN 3

typedef struct bc_plan {
    int nd; /* rank after dropping 1s and merging, >= 1 */
    int nin;
    int64_t total; /* output element count */
    int64_t dims[SI_MAX_DIMS];
    int64_t str[BC_MAX_IN][SI_MAX_DIMS]; /* element strides per input, 0 where broadcast */
} bc_plan;

/* Row callback: n output elements starting at output offset o; input k starts at off[k] and advances by
 * step[k] per element. */
typedef void (*bc_row_fn)(void *ctx, int64_t n, int64_t o, const int64_t *off, const int64_t *step);

static void bc_plan_init(bc_plan *p, int nout, const int64_t *out, int nin, const int *in_nd,
                         const int64_t *const *in_dims) {
    int64_t st[BC_MAX_IN][SI_MAX_DIMS];
    p->nin = nin;
    p->nd = 0;
    p->total = si_shape_count(nout, out);
    for (int k = 0; k < nin; k++) si_broadcast_strides(in_nd[k], in_dims[k], nout, out, st[k]);
    for (int d = 0; d < nout; d++) {
        if (out[d] == 1) continue;
        if (p->nd > 0) {
            int last = p->nd - 1;
            bool merge = true;
            for (int k = 0; k < nin; k++)
                if (p->str[k][last] != st[k][d] * out[d]) merge = false;
            if (merge) {
                p->dims[last] *= out[d];
                for (int k = 0; k < nin; k++) p->str[k][last] = st[k][d];
                continue;
            }
        }
        p->dims[p->nd] = out[d];
        for (int k = 0; k < nin; k++) p->str[k][p->nd] = st[k][d];
        p->nd++;
    }
    if (p->nd == 0) {
        p->nd = 1;
        p->dims[0] = 1;
        for (int k = 0; k < nin; k++) p->str[k][0] = 0;
    }
}

static void bc_run(const bc_plan *p, bc_row_fn fn, void *ctx) {
    if (p->total <= 0) return;
    int nd = p->nd;
    int64_t inner = p->dims[nd - 1];
    int64_t rows = p->total / inner;
    int64_t idx[SI_MAX_DIMS] = {0};
    int64_t off[BC_MAX_IN] = {0};
    int64_t step[BC_MAX_IN];
    for (int k = 0; k < p->nin; k++) step[k] = p->str[k][nd - 1];
    for (int64_t r = 0; r < rows; r++) {
        fn(ctx, inner, r * inner, off, step);
        for (int d = nd - 2; d >= 0; d--) {
            idx[d]++;
            for (int k = 0; k < p->nin; k++) off[k] += p->str[k][d];
            if (idx[d] < p->dims[d]) break;
            for (int k = 0; k < p->nin; k++) off[k] -= p->str[k][d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

/* ROW(T) with T the unsigned type of esize bytes (1, 2, 4, else 8): for kernels that move elements without
 * reading them. */
#define BY_ESIZE(esize, ROW)                                                                                           \
    switch (esize) {                                                                                                   \
    case 1: ROW(uint8_t); break;                                                                                       \
    case 2: ROW(uint16_t); break;                                                                                      \
    case 4: ROW(uint32_t); break;                                                                                      \
    default: ROW(uint64_t); break;                                                                                     \
    }

/* Copy with broadcasting (element size only matters). */
typedef struct copy_ctx {
    size_t esize;
    const void *x;
    void *y;
} copy_ctx;

#define COPY_ROW(T)                                                                                                    \
    do {                                                                                                               \
        const T *x_ = (const T *)c->x + off[0];                                                                        \
        T *y_ = (T *)c->y + o;                                                                                         \
        int64_t s_ = step[0];                                                                                          \
        for (int64_t i = 0; i < n; i++) y_[i] = x_[i * s_];                                                            \
    } while (0)

static void copy_row(void *vc, int64_t n, int64_t o, const int64_t *off, const int64_t *step) {
    const copy_ctx *c = vc;
    BY_ESIZE(c->esize, COPY_ROW)
}

/* ---------------------------------------------------------------------------------------------------------
 * Binary ops
 */

typedef void (*f32_bin_fn)(int64_t n, float *y, const float *a, int64_t sa, const float *b, int64_t sb);

typedef struct bin_def {
    uint32_t types; /* accepted types of input A (and B unless types_b) */
    uint32_t types_b; /* 0: B must have A's type; else accepted types of B (Pow) */
    bool out_bool; /* comparisons and logic ops */
    bool ipow; /* Pow: integer ** integer */
    double (*f)(double, double);
    int64_t (*s)(int64_t, int64_t);
    uint64_t (*u)(uint64_t, uint64_t);
    f32_bin_fn f32; /* optional float32 loop */
} bin_def;

/* float32 loops specialised for the common step patterns: F32_LOOP is one of them, with x and y element i of
 * a and b (XV, YV). */
#define F32_LOOP(EXPR, XV, YV)                                                                                         \
    for (int64_t i = 0; i < n; i++) {                                                                                  \
        const float x = (XV), y = (YV);                                                                                \
        out[i] = (EXPR);                                                                                               \
    }
#define F32_BIN(NAME, EXPR)                                                                                            \
    static void NAME(int64_t n, float *out, const float *a, int64_t sa, const float *b, int64_t sb) {                  \
        if (sa == 1 && sb == 1) {                                                                                      \
            F32_LOOP(EXPR, a[i], b[i])                                                                                 \
        } else if (sa == 1 && sb == 0) {                                                                               \
            const float b0 = b[0];                                                                                     \
            F32_LOOP(EXPR, a[i], b0)                                                                                   \
        } else if (sa == 0 && sb == 1) {                                                                               \
            const float a0 = a[0];                                                                                     \
            F32_LOOP(EXPR, a0, b[i])                                                                                   \
        } else {                                                                                                       \
            F32_LOOP(EXPR, a[i * sa], b[i * sb])                                                                       \
        }                                                                                                              \
    }

F32_BIN(f32_add, x + y)
F32_BIN(f32_sub, x - y)
F32_BIN(f32_mul, x *y)
F32_BIN(f32_div, x / y)
F32_BIN(f32_min, (x != x || x < y) ? x : y)
F32_BIN(f32_max, (x != x || x > y) ? x : y)

/* The comparisons <pfx>_eq, _lt, _gt, _le, _ge on T, 1 or 0: the same for every type. */
#define CMP_OPS(pfx, T)                                                                                                \
    static T pfx##_eq(T a, T b) { return a == b; }                                                                     \
    static T pfx##_lt(T a, T b) { return a < b; }                                                                      \
    static T pfx##_gt(T a, T b) { return a > b; }                                                                      \
    static T pfx##_le(T a, T b) { return a <= b; }                                                                     \
    static T pfx##_ge(T a, T b) { return a >= b; }
/* What signed and unsigned integers do alike: min, max, the comparisons and the bitwise and, or, xor. */
#define INT_OPS(pfx, T)                                                                                                \
    static T pfx##_min(T a, T b) { return a < b ? a : b; }                                                             \
    static T pfx##_max(T a, T b) { return a > b ? a : b; }                                                            \
    CMP_OPS(pfx, T)                                                                                                    \
    static T pfx##_and(T a, T b) { return a & b; }                                                                     \
    static T pfx##_or(T a, T b) { return a | b; }                                                                      \
    static T pfx##_xor(T a, T b) { return a ^ b; }

/* float semantics (double) */
static double fb_add(double a, double b) { return a + b; }
static double fb_sub(double a, double b) { return a - b; }
static double fb_mul(double a, double b) { return a * b; }
static double fb_div(double a, double b) { return a / b; }
static double fb_pow(double a, double b) { return pow(a, b); }
static double fb_fmod(double a, double b) { return fmod(a, b); }
static double fb_pymod(double a, double b) {
    double r = fmod(a, b);
    if (r != 0) {
        if ((r < 0) != (b < 0)) r += b;
    } else {
        r = copysign(0.0, b);
    }
    return r;
}
static double fb_min(double a, double b) { return (isnan(a) || a < b) ? a : b; }
static double fb_max(double a, double b) { return (isnan(a) || a > b) ? a : b; }
CMP_OPS(fb, double)
static double fb_prelu(double a, double b) { return a < 0 ? a * b : a; }

/* signed integers (wrapping arithmetic, division by zero gives 0) */
static int64_t sb_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t sb_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t sb_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t sb_div(int64_t a, int64_t b) {
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}
static int64_t sb_fmod(int64_t a, int64_t b) {
    if (b == 0 || b == -1) return 0;
    return a % b;
}
static int64_t sb_pymod(int64_t a, int64_t b) {
    if (b == 0 || b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
INT_OPS(sb, int64_t)
static int64_t sb_prelu(int64_t a, int64_t b) { return a < 0 ? sb_mul(a, b) : a; }

/* unsigned integers and bool */
static uint64_t ub_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t ub_sub(uint64_t a, uint64_t b) { return a - b; }
static uint64_t ub_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t ub_div(uint64_t a, uint64_t b) { return b == 0 ? 0 : a / b; }
static uint64_t ub_mod(uint64_t a, uint64_t b) { return b == 0 ? 0 : a % b; }
INT_OPS(ub, uint64_t)
static uint64_t ub_land(uint64_t a, uint64_t b) { return (a != 0) && (b != 0); }
static uint64_t ub_lor(uint64_t a, uint64_t b) { return (a != 0) || (b != 0); }
static uint64_t ub_lxor(uint64_t a, uint64_t b) { return (a != 0) != (b != 0); }
static uint64_t ub_shl(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a << b; }
static uint64_t ub_shr(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a >> b; }
static uint64_t ub_prelu(uint64_t a, uint64_t b) {
    (void)b;
    return a;
}

/* integer ** integer with wrapping; negative exponents give what truncating the real result gives */
static uint64_t int_pow(uint64_t a, bool a_signed, uint64_t e, bool e_signed) {
    if (e_signed && (int64_t)e < 0) {
        if (a == 1) return 1;
        if (a_signed && (int64_t)a == -1) return (e & 1) ? (uint64_t)-1 : 1;
        return 0;
    }
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= a;
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

static void bin_row(void *vc, int64_t n, int64_t o, const int64_t *off, const int64_t *step) {
    const bin_ctx *c = vc;
    const bin_def *d = c->d;
    int64_t ia = off[0], ib = off[1], sa = step[0], sb = step[1];
    switch (c->mode) {
    case BM_F32FAST: d->f32(n, (float *)c->o + o, (const float *)c->a + ia, sa, (const float *)c->b + ib, sb); break;
    case BM_F32: {
        const float *a = (const float *)c->a + ia, *b = (const float *)c->b + ib;
        float *y = (float *)c->o + o;
        for (int64_t i = 0; i < n; i++) y[i] = (float)d->f(a[i * sa], b[i * sb]);
        break;
    }
    case BM_F64: {
        const double *a = (const double *)c->a + ia, *b = (const double *)c->b + ib;
        double *y = (double *)c->o + o;
        for (int64_t i = 0; i < n; i++) y[i] = d->f(a[i * sa], b[i * sb]);
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
static int bin_mode(const bin_def *d, si_dtype ta, si_dtype tb, si_dtype to) {
    if (t_float(ta) || t_float(tb)) {
        if (ta == SI_F32 && tb == SI_F32 && to == SI_F32) return d->f32 ? BM_F32FAST : BM_F32;
        if (ta == SI_F64 && tb == SI_F64 && to == SI_F64) return BM_F64;
        return BM_FLT;
    }
    if (d->ipow) return BM_IPOW;
    if (t_signed(ta)) return d->s ? BM_SINT : BM_FLT;
    return d->u ? BM_UINT : BM_FLT;
}

/* out = d(a, b) with a and b broadcast to out's shape. */
static void bin_apply(const bin_def *d, const si_tensor *a, int na, const int64_t *da, const si_tensor *b, int nb,
                      const int64_t *db, si_tensor *out) {
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
static si_result legacy_b_shape(const si_kctx *c, int na, int *nb, int64_t *db) {
    const si_tensor *b = c->in[1];
    *nb = b->ndim;
    memcpy(db, b->dims, sizeof(int64_t) * (size_t)b->ndim);
    if (c->opset >= 7 || si_attr_int(c->node, "broadcast", 0) != 1 || !si_node_attr(c->node, "axis")) return SI_OK;
    int axis;
    si_result s = si_axis(c, si_attr_int(c->node, "axis", 0), na, &axis);
    if (s) return s;
    int pad = na - axis - b->ndim;
    if (pad < 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "B of rank %d does not fit A of rank %d at axis %d", b->ndim, na, axis);
    for (int i = 0; i < pad; i++) db[(*nb)++] = 1;
    return SI_OK;
}

static si_result bin_infer(si_kctx *c, const bin_def *d) {
    if (c->n_in != 2 || !c->in[0] || !c->in[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects 2 inputs, got %d", c->n_in);
    const si_tensor *a = c->in[0], *b = c->in[1];
    si_result s = si_check_type(c, a->dtype, d->types, "input A");
    if (s) return s;
    if (d->types_b) {
        if ((s = si_check_type(c, b->dtype, d->types_b, "input B"))) return s;
    } else if (a->dtype != b->dtype) {
        return si_op_err(c, SI_ERR_INVALID_ARG, "inputs have different types %s and %s", si_dtype_name(a->dtype),
                         si_dtype_name(b->dtype));
    }
    int nb, nout;
    int64_t db[SI_MAX_DIMS], dout[SI_MAX_DIMS];
    if ((s = legacy_b_shape(c, a->ndim, &nb, db))) return s;
    if ((s = si_broadcast_shape(c, a->ndim, a->dims, nb, db, &nout, dout))) return s;
    return si_set_out(c, 0, d->out_bool ? SI_BOOL : a->dtype, nout, dout);
}

static si_result bin_run(si_kctx *c, const bin_def *d) {
    si_tensor *out = c->out[0];
    if (!out || si_count(out) == 0) return SI_OK;
    int nb;
    int64_t db[SI_MAX_DIMS];
    si_result s = legacy_b_shape(c, c->in[0]->ndim, &nb, db);
    if (s) return s;
    bin_apply(d, c->in[0], c->in[0]->ndim, c->in[0]->dims, c->in[1], nb, db, out);
    return SI_OK;
}

/* The binary ops of one bin_def: X(ID, fn, TYPES, OUT_BOOL, F, S, U, F32) gives bd_<id>, infer_<id>, run_<id>
 * and the op's line in the table at the end. */
#define PLAIN_BINARY_OPS(X)                                                                                    \
    X(ADD, add, SI_T_NUMERIC, false, fb_add, sb_add, ub_add, f32_add)                                          \
    X(SUB, sub, SI_T_NUMERIC, false, fb_sub, sb_sub, ub_sub, f32_sub)                                          \
    X(MUL, mul, SI_T_NUMERIC, false, fb_mul, sb_mul, ub_mul, f32_mul)                                          \
    X(DIV, div, SI_T_NUMERIC, false, fb_div, sb_div, ub_div, f32_div)                                          \
    X(EQUAL, equal, SI_T_ALL, true, fb_eq, sb_eq, ub_eq, NULL)                                                 \
    X(LESS, less, SI_T_NUMERIC, true, fb_lt, sb_lt, ub_lt, NULL)                                               \
    X(GREATER, greater, SI_T_NUMERIC, true, fb_gt, sb_gt, ub_gt, NULL)                                         \
    X(LESS_OR_EQUAL, less_eq, SI_T_NUMERIC, true, fb_le, sb_le, ub_le, NULL)                                   \
    X(GREATER_OR_EQUAL, greater_eq, SI_T_NUMERIC, true, fb_ge, sb_ge, ub_ge, NULL)                             \
    X(AND, and, SI_T(SI_BOOL), true, NULL, NULL, ub_land, NULL)                                                \
    X(OR, or, SI_T(SI_BOOL), true, NULL, NULL, ub_lor, NULL)                                                   \
    X(XOR, xor, SI_T(SI_BOOL), true, NULL, NULL, ub_lxor, NULL)                                                \
    X(BITWISE_AND, bit_and, SI_T_INTS, false, NULL, sb_and, ub_and, NULL)                                     \
    X(BITWISE_OR, bit_or, SI_T_INTS, false, NULL, sb_or, ub_or, NULL)                                         \
    X(BITWISE_XOR, bit_xor, SI_T_INTS, false, NULL, sb_xor, ub_xor, NULL)

#define BINARY_FNS(ID, fn, TYPES, OUT_BOOL, F, S, U, F32)                                                      \
    static const bin_def bd_##fn = {TYPES, 0, OUT_BOOL, false, F, S, U, F32};                                 \
    static si_result infer_##fn(si_kctx *c) { return bin_infer(c, &bd_##fn); }                                 \
    static si_result run_##fn(si_kctx *c) { return bin_run(c, &bd_##fn); }
PLAIN_BINARY_OPS(BINARY_FNS)

/* Pow: base and exponent may have different types; the output has the base's type. */
static const bin_def bd_pow = {SI_T_NUMERIC, SI_T_NUMERIC, false, true, fb_pow, NULL, NULL, NULL};
static si_result infer_pow(si_kctx *c) { return bin_infer(c, &bd_pow); }
static si_result run_pow(si_kctx *c) { return bin_run(c, &bd_pow); }

/* Ops whose bin_def an attribute chooses (Mod, BitShift). */
typedef si_result (*bin_pick)(const si_kctx *c, const bin_def **d);

static si_result picked_infer(si_kctx *c, bin_pick pick) {
    const bin_def *d = NULL;
    si_result s = pick(c, &d);
    return s ? s : bin_infer(c, d);
}

static si_result picked_run(si_kctx *c, bin_pick pick) {
    const bin_def *d = NULL;
    si_result s = pick(c, &d);
    return s ? s : bin_run(c, d);
}

/* Mod: fmod=0 follows the sign of the divisor (Python/numpy mod), fmod=1 is C fmod. */
static const bin_def bd_mod = {SI_T_NUMERIC, 0, false, false, fb_pymod, sb_pymod, ub_mod, NULL};
static const bin_def bd_fmod = {SI_T_NUMERIC, 0, false, false, fb_fmod, sb_fmod, ub_mod, NULL};
static si_result mod_def(const si_kctx *c, const bin_def **d) {
    int64_t f = si_attr_int(c->node, "fmod", 0);
    if (f != 0 && f != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute fmod must be 0 or 1, got %lld", (long long)f);
    *d = f ? &bd_fmod : &bd_mod;
    return SI_OK;
}
static si_result infer_mod(si_kctx *c) { return picked_infer(c, mod_def); }
static si_result run_mod(si_kctx *c) { return picked_run(c, mod_def); }

/* BitShift: direction "LEFT" or "RIGHT" (required). */
static const bin_def bd_shl = {SI_T_UNSIGNED_INTS, 0, false, false, NULL, NULL, ub_shl, NULL};
static const bin_def bd_shr = {SI_T_UNSIGNED_INTS, 0, false, false, NULL, NULL, ub_shr, NULL};
static si_result shift_def(const si_kctx *c, const bin_def **d) {
    const char *dir = si_attr_str(c->node, "direction", NULL);
    if (!dir) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute direction is required");
    if (strcmp(dir, "LEFT") == 0)
        *d = &bd_shl;
    else if (strcmp(dir, "RIGHT") == 0)
        *d = &bd_shr;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute direction must be LEFT or RIGHT, got '%s'", dir);
    return SI_OK;
}
static si_result infer_shift(si_kctx *c) { return picked_infer(c, shift_def); }
static si_result run_shift(si_kctx *c) { return picked_run(c, shift_def); }

/* PRelu: slope is broadcast to X's shape (unidirectional). Before opset 7 a 1-D slope of X's channel count
 * was also accepted; it applies along axis 1. */
static const bin_def bd_prelu = {SI_T_NUMERIC, 0, false, false, fb_prelu, sb_prelu, ub_prelu, NULL};

static si_result prelu_slope_shape(const si_kctx *c, int *ns, int64_t *ds) {
    const si_tensor *x = c->in[0], *sl = c->in[1];
    int nout;
    int64_t dout[SI_MAX_DIMS];
    *ns = sl->ndim;
    memcpy(ds, sl->dims, sizeof(int64_t) * (size_t)sl->ndim);
    if (c->opset < 7 && sl->ndim == 1 && x->ndim >= 2 && si_dim_known(sl->dims[0]) && sl->dims[0] == x->dims[1] &&
        sl->dims[0] != 1) {
        /* channel slope: [C] -> [C, 1, ..., 1] */
        for (int i = 2; i < x->ndim; i++) ds[(*ns)++] = 1;
    }
    si_result s = si_broadcast_shape(c, x->ndim, x->dims, *ns, ds, &nout, dout);
    if (s) return s;
    bool ok = nout == x->ndim;
    for (int i = 0; ok && i < nout; i++) /* a dimension not known passes: the run checks it */
        ok = dout[i] == x->dims[i] || !si_dim_known(x->dims[i]) || !si_dim_known(dout[i]);
    if (!ok) return si_op_err(c, SI_ERR_INVALID_ARG, "slope is not unidirectionally broadcastable to X");
    return SI_OK;
}

static si_result infer_prelu(si_kctx *c) {
    if (c->n_in != 2 || !c->in[0] || !c->in[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects 2 inputs, got %d", c->n_in);
    const si_tensor *x = c->in[0];
    si_result s = si_check_type(c, x->dtype, bd_prelu.types, "input X");
    if (s) return s;
    if (c->in[1]->dtype != x->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "slope type %s differs from X type %s", si_dtype_name(c->in[1]->dtype),
                         si_dtype_name(x->dtype));
    int ns;
    int64_t ds[SI_MAX_DIMS];
    /* before opset 7, whether a 1-D slope is per channel depends on X's channel count */
    bool undecided = c->opset < 7 && c->in[1]->ndim == 1 && x->ndim >= 2 && !si_dim_known(x->dims[1]);
    if (!undecided && (s = prelu_slope_shape(c, &ns, ds))) return s;
    return si_set_out(c, 0, x->dtype, x->ndim, x->dims);
}

static si_result run_prelu(si_kctx *c) {
    si_tensor *out = c->out[0];
    if (!out || si_count(out) == 0) return SI_OK;
    int ns;
    int64_t ds[SI_MAX_DIMS];
    si_result s = prelu_slope_shape(c, &ns, ds);
    if (s) return s;
    bin_apply(&bd_prelu, c->in[0], c->in[0]->ndim, c->in[0]->dims, c->in[1], ns, ds, out);
    return SI_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Variadic Min / Max / Sum / Mean: out = in0 broadcast, then out = op(out, in_k) for each further input.
 */

static si_result var_infer(si_kctx *c, const bin_def *d) {
    if (c->n_in < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "expects at least one input");
    int nout = 0;
    int64_t dout[SI_MAX_DIMS];
    for (int i = 0; i < c->n_in; i++) {
        const si_tensor *t = c->in[i];
        if (!t) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
        si_result s = si_check_type(c, t->dtype, d->types, "input");
        if (s) return s;
        if (t->dtype != c->in[0]->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has type %s, input 0 has %s", i, si_dtype_name(t->dtype),
                             si_dtype_name(c->in[0]->dtype));
        if (i == 0) {
            nout = t->ndim;
            memcpy(dout, t->dims, sizeof(int64_t) * (size_t)nout);
        } else {
            int64_t prev[SI_MAX_DIMS];
            int nprev = nout;
            memcpy(prev, dout, sizeof(prev));
            if ((s = si_broadcast_shape(c, nprev, prev, t->ndim, t->dims, &nout, dout))) return s;
        }
    }
    return si_set_out(c, 0, c->in[0]->dtype, nout, dout);
}

static si_result var_run(si_kctx *c, const bin_def *d, bool mean) {
    si_tensor *out = c->out[0];
    if (!out || si_count(out) == 0) return SI_OK;
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
        int64_t n = si_count(out);
        if (out->dtype == SI_F32) {
            float *y = out->data;
            for (int64_t i = 0; i < n; i++) y[i] /= (float)c->n_in;
        } else {
            for (int64_t i = 0; i < n; i++) st_f(out->dtype, out->data, i, ld_f(out->dtype, out->data, i) / c->n_in);
        }
    }
    return SI_OK;
}

static const bin_def bd_vmin = {SI_T_NUMERIC, 0, false, false, fb_min, sb_min, ub_min, f32_min};
static const bin_def bd_vmax = {SI_T_NUMERIC, 0, false, false, fb_max, sb_max, ub_max, f32_max};
static const bin_def bd_vsum = {SI_T_FLOATS, 0, false, false, fb_add, NULL, NULL, f32_add};
static const bin_def bd_vmean = {SI_T_FLOATS, 0, false, false, fb_add, NULL, NULL, f32_add};

static si_result infer_vmin(si_kctx *c) { return var_infer(c, &bd_vmin); }
static si_result run_vmin(si_kctx *c) { return var_run(c, &bd_vmin, false); }
static si_result infer_vmax(si_kctx *c) { return var_infer(c, &bd_vmax); }
static si_result run_vmax(si_kctx *c) { return var_run(c, &bd_vmax, false); }
static si_result infer_vsum(si_kctx *c) { return var_infer(c, &bd_vsum); }
static si_result run_vsum(si_kctx *c) { return var_run(c, &bd_vsum, false); }
static si_result infer_vmean(si_kctx *c) { return var_infer(c, &bd_vmean); }
static si_result run_vmean(si_kctx *c) { return var_run(c, &bd_vmean, true); }

/* ---------------------------------------------------------------------------------------------------------
 * Where
 */

typedef struct where_ctx {
    size_t esize;
    const uint8_t *cond;
    const void *x, *y;
    void *o;
} where_ctx;

#define WHERE_ROW(T)                                                                                                   \
    do {                                                                                                               \
        const uint8_t *c_ = c->cond + off[0];                                                                          \
        const T *x_ = (const T *)c->x + off[1];                                                                        \
        const T *y_ = (const T *)c->y + off[2];                                                                        \
        T *o_ = (T *)c->o + o;                                                                                         \
        for (int64_t i = 0; i < n; i++) o_[i] = c_[i * step[0]] ? x_[i * step[1]] : y_[i * step[2]];                   \
    } while (0)

static void where_row(void *vc, int64_t n, int64_t o, const int64_t *off, const int64_t *step) {
    const where_ctx *c = vc;
    BY_ESIZE(c->esize, WHERE_ROW)
}

static si_result infer_where(si_kctx *c) {
    if (c->n_in != 3 || !c->in[0] || !c->in[1] || !c->in[2])
        return si_op_err(c, SI_ERR_INVALID_ARG, "expects 3 inputs, got %d", c->n_in);
    const si_tensor *cond = c->in[0], *x = c->in[1], *y = c->in[2];
    if (cond->dtype != SI_BOOL)
        return si_op_err(c, SI_ERR_INVALID_ARG, "condition must be bool, got %s", si_dtype_name(cond->dtype));
    si_result s = si_check_type(c, x->dtype, SI_T_ALL, "input X");
    if (s) return s;
    if (x->dtype != y->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "X and Y have different types %s and %s", si_dtype_name(x->dtype),
                         si_dtype_name(y->dtype));
    int n1, n2;
    int64_t d1[SI_MAX_DIMS], d2[SI_MAX_DIMS];
    if ((s = si_broadcast_shape(c, cond->ndim, cond->dims, x->ndim, x->dims, &n1, d1))) return s;
    if ((s = si_broadcast_shape(c, n1, d1, y->ndim, y->dims, &n2, d2))) return s;
    return si_set_out(c, 0, x->dtype, n2, d2);
}

static si_result run_where(si_kctx *c) {
    si_tensor *out = c->out[0];
    if (!out || si_count(out) == 0) return SI_OK;
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

/* ---------------------------------------------------------------------------------------------------------
 * The table
 */

static const si_op_def defs[] = {
#define BINARY_DEF(ID, fn, TYPES, OUT_BOOL, F, S, U, F32)                                                              \
    SI_OP_DEF(ID, TYPES, infer_##fn, run_##fn),
    PLAIN_BINARY_OPS(BINARY_DEF)
#undef BINARY_DEF
    SI_OP_DEF(POW, SI_T_NUMERIC, infer_pow, run_pow),
    SI_OP_DEF(MOD, SI_T_NUMERIC, infer_mod, run_mod),
    SI_OP_DEF(BIT_SHIFT, SI_T_UNSIGNED_INTS, infer_shift, run_shift),
    SI_OP_DEF(PRELU, SI_T_NUMERIC, infer_prelu, run_prelu),
    SI_OP_DEF(MIN, SI_T_NUMERIC, infer_vmin, run_vmin),
    SI_OP_DEF(MAX, SI_T_NUMERIC, infer_vmax, run_vmax),
    SI_OP_DEF(SUM, SI_T_FLOATS, infer_vsum, run_vsum),
    SI_OP_DEF(MEAN, SI_T_FLOATS, infer_vmean, run_vmean),
    SI_OP_DEF(WHERE, SI_T(SI_BOOL), infer_where, run_where),
};

SI_OP_FAMILY_PARTIAL(binary, defs);
