/*
 * reduce.c — reference kernels for reductions: Reduce* (ten kinds), ArgMax/ArgMin, TopK, CumSum and CumProd.
 *
 * Every op computes its parameters in one "plan" function shared by infer and run, so that both agree.
 * Reductions use one driver: the input is walked once in memory order as runs of its innermost (merged)
 * dimension, and every run is folded into the accumulators of the output elements it belongs to
 * (outer x reduced x inner, for any set of axes). Float types accumulate in double, integer types in 64-bit
 * integers (wrapping like the narrow types do).
 */
#include "ops/ops.h"

#include <math.h>

// --- element runs ----------------------------------------------------------------------------------------

/* Runs of n elements converted to double / int64 (integers as two's-complement bits, bool as 0/1); the type
 * switch sits outside the loop: three common types get a loop of their own (LOAD_RUN: element type T converted
 * by CONV), the target type a copy, the others si_load_*. */
#define LOAD_RUN(DT, T, CONV)                                                                                  \
    case DT: {                                                                                                 \
        const T *s = (const T *)p + off;                                                                       \
        for (int64_t j = 0; j < n; j++) o[j] = CONV(s[j]);                                                     \
        break;                                                                                                 \
    }
#define AS_IS(v) (v)
#define LOAD_RUN_FN(NAME, TO, TO_DT, LOAD, CASE1, CASE2, CASE3)                                                \
    static void NAME(si_dtype dt, const void *p, int64_t off, int64_t n, TO *o) {                              \
        switch (dt) {                                                                                          \
            CASE1 CASE2 CASE3                                                                                  \
        case TO_DT: memcpy(o, (const TO *)p + off, (size_t)n * sizeof(TO)); break;                             \
        default:                                                                                               \
            for (int64_t j = 0; j < n; j++) o[j] = LOAD(dt, p, off + j);                                       \
            break;                                                                                             \
        }                                                                                                      \
    }
LOAD_RUN_FN(load_run_f64, double, SI_F64, si_load_f64, LOAD_RUN(SI_F32, float, AS_IS),
            LOAD_RUN(SI_F16, uint16_t, si_f16_to_f32), LOAD_RUN(SI_BF16, uint16_t, si_bf16_to_f32))
LOAD_RUN_FN(load_run_i64, int64_t, SI_I64, si_load_i64, LOAD_RUN(SI_I32, int32_t, AS_IS), LOAD_RUN(SI_U8, uint8_t, AS_IS),
            LOAD_RUN(SI_I8, int8_t, AS_IS))

static void store_run_f64(si_dtype dt, void *p, int64_t off, int64_t n, const double *v) {
    if (dt == SI_F32) {
        float *d = (float *)p + off;
        for (int64_t j = 0; j < n; j++) d[j] = (float)v[j];
    } else if (dt == SI_F64) {
        memcpy((double *)p + off, v, (size_t)n * sizeof(double));
    } else {
        for (int64_t j = 0; j < n; j++) si_store_f64(dt, p, off + j, v[j]);
    }
}

static void store_run_i64(si_dtype dt, void *p, int64_t off, int64_t n, const int64_t *v) {
    if (dt == SI_I64) {
        memcpy((int64_t *)p + off, v, (size_t)n * sizeof(int64_t));
    } else {
        for (int64_t j = 0; j < n; j++) si_store_i64(dt, p, off + j, v[j]);
    }
}

/* Smallest / largest value of an integer or bool type, as the int64 bit pattern the kernels use. */
static int64_t int_type_min(si_dtype dt) {
    switch (dt) {
    case SI_I8: return INT8_MIN;
    case SI_I16: return INT16_MIN;
    case SI_I32: return INT32_MIN;
    case SI_I64: return INT64_MIN;
    default: return 0; /* unsigned, bool */
    }
}

static int64_t int_type_max(si_dtype dt) {
    switch (dt) {
    case SI_I8: return INT8_MAX;
    case SI_I16: return INT16_MAX;
    case SI_I32: return INT32_MAX;
    case SI_I64: return INT64_MAX;
    case SI_U8: return UINT8_MAX;
    case SI_U16: return UINT16_MAX;
    case SI_U32: return UINT32_MAX;
    case SI_U64: return -1; /* all bits set */
    case SI_BOOL: return 1;
    default: return 0;
    }
}

/* a < b for int64 bit patterns of a signed (uns = false) or uint64 (uns = true) type. */
static bool int_less(int64_t a, int64_t b, bool uns) { return uns ? (uint64_t)a < (uint64_t)b : a < b; }

// --- reductions -----------------------------------------------------------------------------------------

typedef enum rkind { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_SUMSQ, R_LOGSUM, R_LOGSUMEXP } rkind;

typedef struct rplan {
    int rank;
    int64_t dims[SI_MAX_DIMS];
    bool red[SI_MAX_DIMS];
    int out_nd;
    int64_t out_dims[SI_MAX_DIMS];
    int64_t n_red; /* elements folded into each output element */
} rplan;

/* axes_input: the version of the op that takes axes as an input (ReduceSum from opset 13, the others from
 * 18), rather than as an attribute. */
static si_result reduce_plan(const si_kctx *c, rkind k, bool axes_input, rplan *p) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    const si_tensor *x = c->in[0];
    uint32_t mask = SI_T_NUMERIC | ((k == R_MAX || k == R_MIN) ? SI_T(SI_BOOL) : 0);
    if ((s = si_check_type(c, x->dtype, mask, NULL))) return s;
    int64_t axes[SI_MAX_DIMS];
    int na;
    if ((s = si_node_axes(c, axes_input, axes, SI_MAX_DIMS, &na))) return s;
    if (na < 0) na = 0;
    bool keepdims = si_attr_int(c->node, "keepdims", 1) != 0;
    bool noop = si_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    p->rank = x->ndim;
    memcpy(p->dims, x->dims, sizeof p->dims);
    if (na == 0) {
        for (int i = 0; i < p->rank; i++) p->red[i] = !noop; /* noop: reduce over no axis at all */
    } else if ((s = si_axes_mask(c, axes, na, p->rank, p->red))) {
        return s;
    }
    p->out_nd = 0;
    p->n_red = 1;
    for (int i = 0; i < p->rank; i++) {
        if (p->red[i]) {
            p->n_red = si_dim_mul(p->n_red, p->dims[i]);
            if (keepdims) p->out_dims[p->out_nd++] = 1;
        } else {
            p->out_dims[p->out_nd++] = p->dims[i];
        }
    }
    return SI_OK;
}

/* Compile time, axes given as an input whose values are not known: the rank when it follows, unknown dims
 * (a dimension of 1 stays 1 whether it is reduced or not, with keepdims). */
static si_result reduce_axes_unknown(si_kctx *c, const si_tensor *axes) {
    const si_tensor *x = c->in[0];
    if (si_attr_int(c->node, "keepdims", 1) != 0) {
        int64_t dims[SI_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++) dims[i] = x->dims[i] == 1 ? 1 : SI_DIM_UNKNOWN;
        return si_set_out(c, 0, x->dtype, x->ndim, dims);
    }
    int64_t n = si_count(axes); /* > 0 or not known: an empty axes tensor has its values */
    return si_set_out_unknown(c, 0, x->dtype, n > 0 && n <= x->ndim ? x->ndim - (int)n : -1);
}

static si_result reduce_infer_k(si_kctx *c, rkind k, bool axes_input) {
    rplan p;
    si_result s;
    if (axes_input && si_in(c, 1) && !si_has_values(c->in[1])) {
        if ((s = si_need_input(c, 0, false)) || (s = si_check_type(c, c->in[0]->dtype, 0, NULL))) return s;
        return reduce_axes_unknown(c, c->in[1]);
    }
    s = reduce_plan(c, k, axes_input, &p);
    if (s) return s;
    return si_set_out(c, 0, c->in[0]->dtype, p.out_nd, p.out_dims);
}

/* Fold operations of one pass over the input. */
typedef enum rfold { F_SUM, F_PROD, F_MAX, F_MIN, F_ABSSUM, F_SQSUM, F_EXPSUM } rfold;

/* The merged iteration space of a reduction: dimensions of size 1 dropped, neighbours of the same kind
 * (reduced / kept) merged. ostr: output stride of each merged dimension (0 when reduced). */
typedef struct rspace {
    int m;
    int64_t md[SI_MAX_DIMS];
    int64_t ostr[SI_MAX_DIMS];
} rspace;

static void reduce_space(const rplan *p, rspace *sp) {
    bool mred[SI_MAX_DIMS] = {false};
    int m = 0;
    for (int i = 0; i < p->rank; i++) {
        if (p->dims[i] == 1) continue;
        if (m > 0 && mred[m - 1] == p->red[i]) {
            sp->md[m - 1] *= p->dims[i];
        } else {
            sp->md[m] = p->dims[i];
            mred[m] = p->red[i];
            m++;
        }
    }
    if (m == 0) { /* a single element */
        sp->md[0] = 1;
        mred[0] = false;
        m = 1;
    }
    int64_t s = 1;
    for (int i = m - 1; i >= 0; i--) {
        sp->ostr[i] = mred[i] ? 0 : s;
        if (!mred[i]) s *= sp->md[i];
    }
    sp->m = m;
}

/* A walk over the runs of the input: run r (of n) is the L contiguous elements of the last dimension at idx over
 * the others; o is the offset of its first output element; inner_red: the run folds into that one element. */
typedef struct rrun {
    int64_t r, n, L, o, idx[SI_MAX_DIMS];
    bool inner_red;
} rrun;

static rrun rrun_first(const rspace *sp) {
    rrun w = {.L = sp->md[sp->m - 1], .inner_red = sp->ostr[sp->m - 1] == 0};
    w.n = si_prod(sp->md, 0, sp->m) / w.L;
    return w;
}

/* From one run to the next: idx and the output offset o step on. */
static void rrun_next(const rspace *sp, rrun *w) {
    w->r++;
    for (int d = sp->m - 2; d >= 0; d--) {
        w->idx[d]++;
        w->o += sp->ostr[d];
        if (w->idx[d] < sp->md[d]) break;
        w->o -= sp->ostr[d] * sp->md[d];
        w->idx[d] = 0;
    }
}

/* One pass in double: acc[o] = fold(acc[o], x) for every input element x of output element o. aux holds the
 * per-output maximum for F_EXPSUM. buf has room for one run (md[m-1] elements). */
static void rpass_f64(const si_tensor *x, const rspace *sp, rfold f, double *acc, const double *aux, double *buf) {
    for (rrun w = rrun_first(sp); w.r < w.n; rrun_next(sp, &w)) {
        const int64_t L = w.L, o = w.o;
        load_run_f64(x->dtype, x->data, w.r * L, L, buf);
        if (w.inner_red) {
            double a = acc[o];
            switch (f) {
            case F_SUM: for (int64_t j = 0; j < L; j++) a += buf[j]; break;
            case F_PROD: for (int64_t j = 0; j < L; j++) a *= buf[j]; break;
            case F_MAX:
                for (int64_t j = 0; j < L; j++)
                    if (buf[j] > a || isnan(buf[j])) a = buf[j];
                break;
            case F_MIN:
                for (int64_t j = 0; j < L; j++)
                    if (buf[j] < a || isnan(buf[j])) a = buf[j];
                break;
            case F_ABSSUM: for (int64_t j = 0; j < L; j++) a += fabs(buf[j]); break;
            case F_SQSUM: for (int64_t j = 0; j < L; j++) a += buf[j] * buf[j]; break;
            case F_EXPSUM: for (int64_t j = 0; j < L; j++) a += exp(buf[j] - aux[o]); break;
            }
            acc[o] = a;
        } else {
            double *a = acc + o;
            switch (f) {
            case F_SUM: for (int64_t j = 0; j < L; j++) a[j] += buf[j]; break;
            case F_PROD: for (int64_t j = 0; j < L; j++) a[j] *= buf[j]; break;
            case F_MAX:
                for (int64_t j = 0; j < L; j++)
                    if (buf[j] > a[j] || isnan(buf[j])) a[j] = buf[j];
                break;
            case F_MIN:
                for (int64_t j = 0; j < L; j++)
                    if (buf[j] < a[j] || isnan(buf[j])) a[j] = buf[j];
                break;
            case F_ABSSUM: for (int64_t j = 0; j < L; j++) a[j] += fabs(buf[j]); break;
            case F_SQSUM: for (int64_t j = 0; j < L; j++) a[j] += buf[j] * buf[j]; break;
            case F_EXPSUM: for (int64_t j = 0; j < L; j++) a[j] += exp(buf[j] - aux[o + j]); break;
            }
        }
    }
}

/* The same in 64-bit integers (sums and products wrap; uns: compare as uint64). */
static void rpass_i64(const si_tensor *x, const rspace *sp, rfold f, bool uns, int64_t *acc, int64_t *buf) {
    for (rrun w = rrun_first(sp); w.r < w.n; rrun_next(sp, &w)) {
        const int64_t L = w.L, o = w.o;
        const bool inner_red = w.inner_red;
        load_run_i64(x->dtype, x->data, w.r * L, L, buf);
        int64_t a1 = 0;
        int64_t *a = inner_red ? &a1 : acc + o;
        int64_t as = inner_red ? 0 : 1; /* accumulator step per element of the run */
        if (inner_red) a1 = acc[o];
        for (int64_t j = 0; j < L; j++) {
            int64_t *t = a + j * as, v = buf[j];
            switch (f) {
            case F_SUM: *t = (int64_t)((uint64_t)*t + (uint64_t)v); break;
            case F_PROD: *t = (int64_t)((uint64_t)*t * (uint64_t)v); break;
            case F_MAX:
                if (int_less(*t, v, uns)) *t = v;
                break;
            case F_MIN:
                if (int_less(v, *t, uns)) *t = v;
                break;
            case F_ABSSUM: *t = (int64_t)((uint64_t)*t + (!uns && v < 0 ? 0 - (uint64_t)v : (uint64_t)v)); break;
            case F_SQSUM: *t = (int64_t)((uint64_t)*t + (uint64_t)v * (uint64_t)v); break;
            case F_EXPSUM: break; /* float only */
            }
        }
        if (inner_red) acc[o] = a1;
    }
}

static rfold reduce_fold(rkind k) {
    switch (k) {
    case R_PROD: return F_PROD;
    case R_MAX: return F_MAX;
    case R_MIN: return F_MIN;
    case R_L1: return F_ABSSUM;
    case R_L2: case R_SUMSQ: return F_SQSUM;
    case R_LOGSUMEXP: return F_EXPSUM;
    default: return F_SUM; /* SUM, MEAN, LOGSUM */
    }
}

static si_result reduce_run_k(si_kctx *c, rkind k, bool axes_input) {
    rplan p;
    si_result s = reduce_plan(c, k, axes_input, &p);
    if (s) return s;
    if ((s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    si_tensor *y = c->out[0];
    int64_t n_out = si_shape_count(p.out_nd, p.out_dims);
    int64_t n_in = si_shape_count(x->ndim, x->dims);
    if (!y || n_out == 0) return SI_OK;
    rspace sp;
    reduce_space(&p, &sp);
    int64_t L = sp.md[sp.m - 1];
    rfold f = reduce_fold(k);
    bool fpath = si_dtype_is_float(x->dtype) || k == R_L2 || k == R_LOGSUM || k == R_LOGSUMEXP;
    if (fpath) {
        double *acc = si_malloc(sizeof(double) * (size_t)n_out);
        double *aux = k == R_LOGSUMEXP ? si_malloc(sizeof(double) * (size_t)n_out) : NULL;
        double *buf = si_malloc(sizeof(double) * (size_t)(L > 0 ? L : 1));
        if (!acc || !buf || (k == R_LOGSUMEXP && !aux)) {
            SI_FREE_ALL(acc, aux, buf);
            return si_err(SI_ERR_NO_MEM, "out of memory in reduction");
        }
        if (k == R_LOGSUMEXP) {
            for (int64_t i = 0; i < n_out; i++) aux[i] = -INFINITY;
            if (n_in > 0) rpass_f64(x, &sp, F_MAX, aux, NULL, buf);
        }
        double init = k == R_PROD ? 1.0 : k == R_MAX ? -INFINITY : k == R_MIN ? INFINITY : 0.0;
        for (int64_t i = 0; i < n_out; i++) acc[i] = init;
        if (n_in > 0) rpass_f64(x, &sp, f, acc, aux, buf);
        for (int64_t i = 0; i < n_out; i++) {
            double a = acc[i];
            switch (k) {
            case R_MEAN: a = a / (double)p.n_red; break;
            case R_L2: a = sqrt(a); break;
            case R_LOGSUM: a = log(a); break;
            case R_LOGSUMEXP: a = (isinf(aux[i]) || isnan(aux[i])) ? aux[i] : aux[i] + log(a); break;
            default: break;
            }
            acc[i] = a;
        }
        store_run_f64(y->dtype, y->data, 0, n_out, acc);
        SI_FREE_ALL(acc, aux, buf);
    } else {
        bool uns = x->dtype == SI_U64;
        int64_t *acc = si_malloc(sizeof(int64_t) * (size_t)n_out);
        int64_t *buf = si_malloc(sizeof(int64_t) * (size_t)(L > 0 ? L : 1));
        if (!acc || !buf) {
            SI_FREE_ALL(acc, buf);
            return si_err(SI_ERR_NO_MEM, "out of memory in reduction");
        }
        int64_t init = k == R_PROD ? 1 : k == R_MAX ? int_type_min(x->dtype) : k == R_MIN ? int_type_max(x->dtype) : 0;
        for (int64_t i = 0; i < n_out; i++) acc[i] = init;
        if (n_in > 0) rpass_i64(x, &sp, f, uns, acc, buf);
        if (k == R_MEAN) {
            for (int64_t i = 0; i < n_out; i++) {
                if (p.n_red == 0) acc[i] = 0;
                else if (uns) acc[i] = (int64_t)((uint64_t)acc[i] / (uint64_t)p.n_red);
                else acc[i] = acc[i] / p.n_red;
            }
        }
        store_run_i64(y->dtype, y->data, 0, n_out, acc);
        SI_FREE_ALL(acc, buf);
    }
    return SI_OK;
}

/* X(ID, fn, KIND, TYPES, V): the two versions of a reduction, axes as an attribute before opset V and as an
 * input from V on; gives fn_infer/fn_run (attribute), fn_infer_in/fn_run_in (input) and the table lines. */
#define REDUCE_OPS(X)                                                                                          \
    X(REDUCE_MEAN, reduce_mean, R_MEAN, SI_T_NUMERIC, 18)                                                      \
    X(REDUCE_SUM, reduce_sum, R_SUM, SI_T_NUMERIC, 13)                                                         \
    X(REDUCE_MAX, reduce_max, R_MAX, SI_T_NUMERIC | SI_T(SI_BOOL), 18)                                         \
    X(REDUCE_MIN, reduce_min, R_MIN, SI_T_NUMERIC | SI_T(SI_BOOL), 18)                                         \
    X(REDUCE_PROD, reduce_prod, R_PROD, SI_T_NUMERIC, 18)                                                      \
    X(REDUCE_L1, reduce_l1, R_L1, SI_T_NUMERIC, 18)                                                            \
    X(REDUCE_L2, reduce_l2, R_L2, SI_T_NUMERIC, 18)                                                            \
    X(REDUCE_SUM_SQUARE, reduce_sumsq, R_SUMSQ, SI_T_NUMERIC, 18)                                              \
    X(REDUCE_LOG_SUM, reduce_logsum, R_LOGSUM, SI_T_NUMERIC, 18)                                               \
    X(REDUCE_LOG_SUM_EXP, reduce_logsumexp, R_LOGSUMEXP, SI_T_NUMERIC, 18)

#define REDUCE_FNS(ID, fn, kind, TYPES, V)                                                                     \
    static si_result fn##_infer(si_kctx *c) { return reduce_infer_k(c, kind, false); }                         \
    static si_result fn##_run(si_kctx *c) { return reduce_run_k(c, kind, false); }                             \
    static si_result fn##_infer_in(si_kctx *c) { return reduce_infer_k(c, kind, true); }                       \
    static si_result fn##_run_in(si_kctx *c) { return reduce_run_k(c, kind, true); }
REDUCE_OPS(REDUCE_FNS)

// --- ArgMax / ArgMin ------------------------------------------------------------------------------------

typedef struct aplan {
    int axis;
    int64_t outer, n, inner;
    int out_nd;
    int64_t out_dims[SI_MAX_DIMS];
} aplan;

/* The numeric input x of ArgMax, ArgMin or TopK, and its attribute axis (def where absent): the axis of n
 * values, and the counts before (outer) and after it (inner). */
static si_result axis_input(const si_kctx *c, int64_t def, const si_tensor **x, int *axis, int64_t *outer, int64_t *n, int64_t *inner) {
    si_result s = si_input0(c, SI_T_NUMERIC, NULL, x);
    if (s || (s = si_axis(c, si_attr_int(c->node, "axis", def), (*x)->ndim, axis))) return s;
    *outer = si_prod((*x)->dims, 0, *axis);
    *n = (*x)->dims[*axis];
    *inner = si_prod((*x)->dims, *axis + 1, (*x)->ndim);
    return SI_OK;
}

static si_result arg_plan(const si_kctx *c, aplan *p) {
    const si_tensor *x;
    si_result s = axis_input(c, 0, &x, &p->axis, &p->outer, &p->n, &p->inner);
    if (s) return s;
    bool keepdims = si_attr_int(c->node, "keepdims", 1) != 0;
    if (p->n == 0 && si_dim_mul(p->outer, p->inner) > 0) /* not known (compile time): checked at run time */
        return si_op_err(c, SI_ERR_INVALID_ARG, "cannot take the arg-extremum over an empty axis %d", p->axis);
    p->out_nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != p->axis) p->out_dims[p->out_nd++] = x->dims[i];
        else if (keepdims) p->out_dims[p->out_nd++] = 1;
    }
    return SI_OK;
}

SI_OP_PLANNED(arg_infer, aplan, p, arg_plan) {
    return si_set_out(c, 0, SI_I64, p->out_nd, p->out_dims);
}

/* Is v a better pick than the current best b? NaN wins (like numpy), ties go by select_last_index. */
static bool arg_better_f(double v, double b, bool is_max, bool last) {
    if (isnan(b)) return last && isnan(v);
    if (isnan(v)) return true;
    if (is_max) return last ? v >= b : v > b;
    return last ? v <= b : v < b;
}

static bool arg_better_i(int64_t v, int64_t b, bool uns, bool is_max, bool last) {
    if (v == b) return last;
    return is_max ? int_less(b, v, uns) : int_less(v, b, uns);
}

static si_result arg_run_k(si_kctx *c, bool is_max) {
    aplan p;
    si_result s = arg_plan(c, &p);
    if (s) return s;
    if ((s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    int64_t *y = c->out[0]->data;
    bool last = si_attr_int(c->node, "select_last_index", 0) != 0;
    bool fl = si_dtype_is_float(x->dtype), uns = x->dtype == SI_U64;
    for (int64_t o = 0; o < p.outer; o++)
        for (int64_t i = 0; i < p.inner; i++) {
            int64_t base = o * p.n * p.inner + i, best = 0;
            if (fl) {
                double b = si_load_f64(x->dtype, x->data, base);
                for (int64_t j = 1; j < p.n; j++) {
                    double v = si_load_f64(x->dtype, x->data, base + j * p.inner);
                    if (arg_better_f(v, b, is_max, last)) { b = v; best = j; }
                }
            } else {
                int64_t b = si_load_i64(x->dtype, x->data, base);
                for (int64_t j = 1; j < p.n; j++) {
                    int64_t v = si_load_i64(x->dtype, x->data, base + j * p.inner);
                    if (arg_better_i(v, b, uns, is_max, last)) { b = v; best = j; }
                }
            }
            y[o * p.inner + i] = best;
        }
    return SI_OK;
}

static si_result argmax_run(si_kctx *c) { return arg_run_k(c, true); }
static si_result argmin_run(si_kctx *c) { return arg_run_k(c, false); }


// --- TopK -----------------------------------------------------------------------------------------------

typedef struct tplan {
    int axis;
    int64_t k, outer, n, inner;
    int64_t out_dims[SI_MAX_DIMS];
} tplan;

static si_result topk_plan(const si_kctx *c, tplan *p) {
    const si_tensor *x;
    si_result s = axis_input(c, -1, &x, &p->axis, &p->outer, &p->n, &p->inner);
    if (s) return s;
    if (c->opset >= 10) {
        if ((s = si_need_input(c, 1, false))) return s;
        if (!si_has_values(c->in[1])) { /* compile time: K is known at run time */
            memcpy(p->out_dims, x->dims, sizeof p->out_dims);
            p->out_dims[p->axis] = SI_DIM_UNKNOWN;
            p->k = -1;
            return SI_OK;
        }
        int64_t kv[1];
        int nk = 0;
        if ((s = si_tensor_ints(c, c->in[1], "input 'K'", kv, 1, &nk))) return s;
        if (nk != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'K' must hold exactly one value");
        p->k = kv[0];
    } else {
        if (!si_node_attr(c->node, "k")) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'k' is missing");
        p->k = si_attr_int(c->node, "k", 0);
    }
    if (p->k < 0 || (si_dim_known(p->n) && p->k > p->n))
        return si_op_err(c, SI_ERR_INVALID_ARG, "k = %lld is out of range for axis %d of size %lld", (long long)p->k,
                         p->axis, (long long)p->n);
    memcpy(p->out_dims, x->dims, sizeof p->out_dims);
    p->out_dims[p->axis] = p->k;
    return SI_OK;
}

SI_OP_PLANNED(topk_infer, tplan, p, topk_plan) {
    si_result s = SI_OK;
    if ((s = si_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, p->out_dims))) return s;
    return si_set_out(c, 1, SI_I64, c->in[0]->ndim, p->out_dims);
}

typedef struct tkey {
    double f;
    int64_t i;
    int64_t idx;
} tkey;

/* Strict order of the result: does a come before b? NaN counts as the largest value. Ties are kept in index
 * order by the stable merge sort. cls: 0 float, 1 signed, 2 unsigned. */
static bool tkey_before(const tkey *a, const tkey *b, int cls, bool largest) {
    if (cls == 0) {
        bool an = isnan(a->f), bn = isnan(b->f);
        if (an || bn) return largest ? (an && !bn) : (bn && !an);
        return largest ? a->f > b->f : a->f < b->f;
    }
    bool uns = cls == 2;
    return largest ? int_less(b->i, a->i, uns) : int_less(a->i, b->i, uns);
}

static void tkey_sort(tkey *v, tkey *tmp, int64_t n, int cls, bool largest) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = SI_MIN(lo + w, n), hi = SI_MIN(lo + 2 * w, n), i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = tkey_before(&v[j], &v[i], cls, largest) ? v[j++] : v[i++];
            while (i < mid) tmp[o++] = v[i++];
            while (j < hi) tmp[o++] = v[j++];
        }
        memcpy(v, tmp, sizeof(tkey) * (size_t)n);
    }
}

/* The first k of v's n keys in result order, into v[0..k): a scan keeping the best k sorted (a key is inserted
 * after the equal ones it meets, so ties stay in index order, as the sort keeps them). For k much smaller than n
 * (a detector's top 100 of 8,400 anchors) most keys are rejected by one comparison with the k-th. */
static void topk_select(tkey *v, int64_t n, int64_t k, int cls, bool largest) {
    int64_t cnt = 0;
    for (int64_t j = 0; j < n; j++) {
        const tkey key = v[j]; /* j >= cnt: v[j] is not part of the kept prefix yet */
        if (cnt == k && !tkey_before(&key, &v[k - 1], cls, largest)) continue;
        int64_t lo = 0, hi = cnt; /* the first kept key that key comes before */
        while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (tkey_before(&key, &v[mid], cls, largest)) hi = mid;
            else lo = mid + 1;
        }
        const int64_t last = cnt < k ? cnt : k - 1;
        memmove(&v[lo + 1], &v[lo], sizeof(tkey) * (size_t)(last - lo));
        v[lo] = key;
        if (cnt < k) cnt++;
    }
}

SI_OP_PLANNED(topk_run, tplan, p, topk_plan) {
    si_result s = SI_OK;
    if ((s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (p->k == 0 || p->outer * p->inner == 0) return SI_OK;
    bool largest = si_attr_int(c->node, "largest", 1) != 0;
    int cls = si_dtype_is_float(x->dtype) ? 0 : x->dtype == SI_U64 ? 2 : 1;
    size_t es = si_dtype_size(x->dtype);
    tkey *v = si_malloc(sizeof(tkey) * (size_t)p->n), *tmp = si_malloc(sizeof(tkey) * (size_t)p->n);
    if (!v || !tmp) {
        SI_FREE_ALL(v, tmp);
        return si_err(SI_ERR_NO_MEM, "out of memory in TopK");
    }
    uint8_t *yv = c->out[0] ? c->out[0]->data : NULL;
    int64_t *yi = (c->n_out > 1 && c->out[1]) ? c->out[1]->data : NULL;
    const uint8_t *xd = x->data;
    for (int64_t o = 0; o < p->outer; o++)
        for (int64_t i = 0; i < p->inner; i++) {
            int64_t base = o * p->n * p->inner + i;
            for (int64_t j = 0; j < p->n; j++) {
                int64_t e = base + j * p->inner;
                v[j].idx = j;
                if (cls == 0) v[j].f = si_load_f64(x->dtype, xd, e);
                else v[j].i = si_load_i64(x->dtype, xd, e);
            }
            if (p->k * 8 <= p->n) topk_select(v, p->n, p->k, cls, largest);
            else tkey_sort(v, tmp, p->n, cls, largest);
            int64_t obase = o * p->k * p->inner + i;
            for (int64_t j = 0; j < p->k; j++) {
                int64_t oe = obase + j * p->inner;
                if (yv) memcpy(yv + (size_t)oe * es, xd + (size_t)(base + v[j].idx * p->inner) * es, es);
                if (yi) yi[oe] = v[j].idx;
            }
        }
    SI_FREE_ALL(v, tmp);
    return SI_OK;
}


// --- CumSum, CumProd ---------------------------------------------------------------------------------------------

static si_result cumsum_axis(const si_kctx *c, int *axis) {
    int64_t a[1];
    int n = 0;
    si_result s = si_tensor_ints(c, c->in[1], "input 'axis'", a, 1, &n);
    if (s) return s;
    if (n != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'axis' must hold exactly one value");
    return si_axis(c, a[0], c->in[0]->ndim, axis);
}

static si_result cumsum_infer(si_kctx *c) {
    si_result s = si_need_inputs(c, 2);
    if (s) return s;
    if ((s = si_check_type(c, c->in[0]->dtype, SI_T_NUMERIC, NULL))) return s;
    int axis;
    if (si_has_values(c->in[1]) && (s = cumsum_axis(c, &axis))) return s; /* the shape does not depend on it */
    return si_same_as_input(c, 0, 0);
}

static si_result cum_run(si_kctx *c, bool prod) {
    si_result s = si_need_inputs(c, 2);
    if (s || (s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    si_tensor *y = c->out[0];
    int axis;
    if ((s = cumsum_axis(c, &axis))) return s;
    bool exclusive = si_attr_int(c->node, "exclusive", 0) != 0, reverse = si_attr_int(c->node, "reverse", 0) != 0;
    int64_t outer = si_prod(x->dims, 0, axis), n = x->dims[axis], inner = si_prod(x->dims, axis + 1, x->ndim);
    if (!y || outer * n * inner == 0) return SI_OK;
    bool fl = si_dtype_is_float(x->dtype);
    /* acc and row for one row of `inner` contiguous elements, in double or int64 */
    size_t esz = fl ? sizeof(double) : sizeof(int64_t);
    void *acc = si_malloc(esz * (size_t)inner), *row = si_malloc(esz * (size_t)inner);
    if (!acc || !row) {
        SI_FREE_ALL(acc, row);
        return si_op_nomem(c);
    }
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            if (fl)
                ((double *)acc)[i] = prod ? 1.0 : 0.0;
            else
                ((int64_t *)acc)[i] = prod ? 1 : 0;
        }
        for (int64_t jj = 0; jj < n; jj++) {
            int64_t j = reverse ? n - 1 - jj : jj, off = (o * n + j) * inner;
            if (fl) {
                double *a = acc, *r = row;
                load_run_f64(x->dtype, x->data, off, inner, r);
                for (int64_t i = 0; i < inner; i++) {
                    double v = r[i];
                    const double nv = prod ? a[i] * v : a[i] + v;
                    r[i] = exclusive ? a[i] : nv;
                    a[i] = nv;
                }
                store_run_f64(y->dtype, y->data, off, inner, r);
            } else {
                int64_t *a = acc, *r = row;
                load_run_i64(x->dtype, x->data, off, inner, r);
                for (int64_t i = 0; i < inner; i++) {
                    int64_t v = r[i], sum = (int64_t)(prod ? (uint64_t)a[i] * (uint64_t)v : (uint64_t)a[i] + (uint64_t)v);
                    r[i] = exclusive ? a[i] : sum;
                    a[i] = sum;
                }
                store_run_i64(y->dtype, y->data, off, inner, r);
            }
        }
    }
    SI_FREE_ALL(acc, row);
    return SI_OK;
}

static si_result cumsum_run(si_kctx *c) { return cum_run(c, false); }
static si_result cumprod_run(si_kctx *c) { return cum_run(c, true); }

// --- table ----------------------------------------------------------------------------------------------

static const si_op_def defs[] = {
#define REDUCE_DEFS(ID, fn, kind, TYPES, V)                                                                    \
    SI_OP_VERSION(ID, 0, V - 1, TYPES, fn##_infer, fn##_run), SI_OP_VERSION(ID, V, 0, TYPES, fn##_infer_in, fn##_run_in),
    REDUCE_OPS(REDUCE_DEFS)
#undef REDUCE_DEFS
    SI_OP_DEF(ARG_MAX, SI_T_NUMERIC, arg_infer, argmax_run),
    SI_OP_DEF(ARG_MIN, SI_T_NUMERIC, arg_infer, argmin_run),
    SI_OP_DEF(TOP_K, SI_T_NUMERIC, topk_infer, topk_run),
    SI_OP_DEF(CUM_SUM, SI_T_NUMERIC, cumsum_infer, cumsum_run),
    SI_OP_DEF(CUM_PROD, SI_T_NUMERIC, cumsum_infer, cumprod_run),
};

SI_OP_FAMILY_PARTIAL(reduce, defs);
