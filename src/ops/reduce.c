/*
 * reduce.c — reference kernels for reductions (Reduce*, ArgMax/ArgMin, TopK, CumSum) and layout ops
 * (Reshape, Transpose, Concat, Split, Slice, Squeeze, Unsqueeze, Flatten).
 *
 * Every op computes its parameters in one "plan" function shared by infer and run, so that both agree.
 * Reductions use one driver: the input is walked once in memory order as runs of its innermost (merged)
 * dimension, and every run is folded into the accumulators of the output elements it belongs to
 * (outer x reduced x inner, for any set of axes). Float types accumulate in double, integer types in 64-bit
 * integers (wrapping like the narrow types do). Layout ops copy bytes by element size, so they work for
 * every stored type, bool and float16 included.
 */
#include "ops/ops.h"

#include <math.h>

// --- shared helpers -------------------------------------------------------------------------------------

static si_result need_in(const si_kctx *c, int i, const char *what) {
    if (i >= c->n_in || !c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "required input %d (%s) is missing", i, what);
    return SI_OK;
}

static bool has_in(const si_kctx *c, int i) { return i < c->n_in && c->in[i] != NULL; }

static si_result check_dtype(const si_kctx *c, si_dtype dt, uint32_t mask) {
    if (!si_dtype_valid(dt) || (mask && !(mask & SI_T(dt))))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "element type %s is not supported", si_dtype_name(dt));
    return SI_OK;
}

/* run(): every present input with elements must carry data, every output with elements must be allocated. */
static si_result run_ready(const si_kctx *c) {
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && !c->in[i]->data && si_shape_count(c->in[i]->ndim, c->in[i]->dims) > 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has no data", i);
    for (int k = 0; k < c->n_out; k++)
        if (c->out[k] && !c->out[k]->data && si_shape_count(c->out[k]->ndim, c->out[k]->dims) > 0)
            return si_op_err(c, SI_ERR_INTERNAL, "output %d is not allocated", k);
    return SI_OK;
}

/* The values of integer input i (scalar or 1-D) into buf[cap]. SI_SHAPE_DYNAMIC when they are not known. */
static si_result input_ints(const si_kctx *c, int i, const char *what, int64_t *buf, int cap, int *n) {
    const si_tensor *t = c->in[i];
    *n = 0;
    if (!si_dtype_is_int(t->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input '%s' must be an integer tensor, got %s", what,
                         si_dtype_name(t->dtype));
    if (t->ndim > 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input '%s' must be 1-D, got rank %d", what, t->ndim);
    int64_t cnt = si_shape_count(t->ndim, t->dims);
    if (cnt > cap)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input '%s' has %lld values, at most %d are allowed here", what,
                         (long long)cnt, cap);
    if (cnt > 0 && !t->data) return SI_SHAPE_DYNAMIC;
    for (int64_t k = 0; k < cnt; k++) buf[k] = si_load_i64(t->dtype, t->data, k);
    *n = (int)cnt;
    return SI_OK;
}

/* An INTS attribute into buf[cap]; *present tells whether the node has it. */
static si_result attr_ints(const si_kctx *c, const char *name, int64_t *buf, int cap, int *n, bool *present) {
    int cnt = 0;
    const int64_t *v = si_attr_ints(c->node, name, &cnt);
    if (present) *present = si_node_attr(c->node, name) != NULL;
    *n = 0;
    if (cnt > cap)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has %d values, at most %d are allowed here", name, cnt,
                         cap);
    for (int k = 0; k < cnt; k++) buf[k] = v[k];
    *n = cnt;
    return SI_OK;
}

static int64_t prod_dims(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
}

/* Normalise a list of axes against `rank` into a mask; duplicates are an error. */
static si_result axes_mask(const si_kctx *c, const int64_t *axes, int n, int rank, bool *mask) {
    for (int i = 0; i < rank; i++) mask[i] = false;
    for (int i = 0; i < n; i++) {
        int a;
        si_result s = si_axis(c, axes[i], rank, &a);
        if (s) return s;
        if (mask[a]) return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is given twice", (long long)axes[i]);
        mask[a] = true;
    }
    return SI_OK;
}

/* Contiguous strides in elements. */
static void strides_of(int rank, const int64_t *dims, int64_t *str) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        str[i] = s;
        s *= dims[i];
    }
}

/* Copy n elements of size es from src (element stride sstride, may be negative) to contiguous dst. */
static void copy_strided(void *dst, const void *src, int64_t n, int64_t sstride, size_t es) {
    if (sstride == 1) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1: {
        const uint8_t *s = src;
        uint8_t *d = dst;
        for (int64_t j = 0; j < n; j++) d[j] = s[j * sstride];
        break;
    }
    case 2: {
        const uint16_t *s = src;
        uint16_t *d = dst;
        for (int64_t j = 0; j < n; j++) d[j] = s[j * sstride];
        break;
    }
    case 4: {
        const uint32_t *s = src;
        uint32_t *d = dst;
        for (int64_t j = 0; j < n; j++) d[j] = s[j * sstride];
        break;
    }
    case 8: {
        const uint64_t *s = src;
        uint64_t *d = dst;
        for (int64_t j = 0; j < n; j++) d[j] = s[j * sstride];
        break;
    }
    default: {
        const uint8_t *s = src;
        uint8_t *d = dst;
        for (int64_t j = 0; j < n; j++) memcpy(d + (size_t)j * es, s + j * sstride * (int64_t)es, es);
        break;
    }
    }
}

/* Gather an output of rank `nd` and shape `odims` from `src`: output element (i0..) reads
 * src[base + sum(i_d * istr[d])] (strides in elements, may be negative). Used by Transpose and Slice. */
static void gather_copy(void *dst, const void *src, size_t es, int nd, const int64_t *odims, const int64_t *istr,
                        int64_t base) {
    int64_t total = prod_dims(odims, 0, nd);
    if (total == 0) return;
    if (nd == 0) {
        memcpy(dst, (const uint8_t *)src + base * (int64_t)es, es);
        return;
    }
    int64_t L = odims[nd - 1], ls = istr[nd - 1];
    int64_t idx[SI_MAX_DIMS] = {0};
    int64_t off = base;
    uint8_t *d = dst;
    for (int64_t r = 0; r < total / L; r++) {
        copy_strided(d, (const uint8_t *)src + off * (int64_t)es, L, ls, es);
        d += (size_t)L * es;
        for (int k = nd - 2; k >= 0; k--) {
            idx[k]++;
            off += istr[k];
            if (idx[k] < odims[k]) break;
            off -= istr[k] * odims[k];
            idx[k] = 0;
        }
    }
}

/* Runs of n elements converted to double / int64 (integers as two's-complement bits, bool as 0/1); the type
 * switch sits outside the loop. */
static void load_run_f64(si_dtype dt, const void *p, int64_t off, int64_t n, double *o) {
    switch (dt) {
    case SI_F32: {
        const float *s = (const float *)p + off;
        for (int64_t j = 0; j < n; j++) o[j] = s[j];
        break;
    }
    case SI_F64: memcpy(o, (const double *)p + off, (size_t)n * sizeof(double)); break;
    case SI_F16: {
        const uint16_t *s = (const uint16_t *)p + off;
        for (int64_t j = 0; j < n; j++) o[j] = si_f16_to_f32(s[j]);
        break;
    }
    case SI_BF16: {
        const uint16_t *s = (const uint16_t *)p + off;
        for (int64_t j = 0; j < n; j++) o[j] = si_bf16_to_f32(s[j]);
        break;
    }
    default:
        for (int64_t j = 0; j < n; j++) o[j] = si_load_f64(dt, p, off + j);
        break;
    }
}

static void load_run_i64(si_dtype dt, const void *p, int64_t off, int64_t n, int64_t *o) {
    switch (dt) {
    case SI_I32: {
        const int32_t *s = (const int32_t *)p + off;
        for (int64_t j = 0; j < n; j++) o[j] = s[j];
        break;
    }
    case SI_I64: memcpy(o, (const int64_t *)p + off, (size_t)n * sizeof(int64_t)); break;
    case SI_U8: {
        const uint8_t *s = (const uint8_t *)p + off;
        for (int64_t j = 0; j < n; j++) o[j] = s[j];
        break;
    }
    case SI_I8: {
        const int8_t *s = (const int8_t *)p + off;
        for (int64_t j = 0; j < n; j++) o[j] = s[j];
        break;
    }
    default:
        for (int64_t j = 0; j < n; j++) o[j] = si_load_i64(dt, p, off + j);
        break;
    }
}

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

static si_result reduce_plan(const si_kctx *c, rkind k, rplan *p) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    uint32_t mask = SI_T_NUMERIC | ((k == R_MAX || k == R_MIN) ? SI_T(SI_BOOL) : 0);
    if ((s = check_dtype(c, x->dtype, mask))) return s;
    int64_t axes[SI_MAX_DIMS];
    int na = 0;
    int axes_input_opset = k == R_SUM ? 13 : 18;
    if (c->opset >= axes_input_opset) {
        if (has_in(c, 1) && (s = input_ints(c, 1, "axes", axes, SI_MAX_DIMS, &na))) return s;
    } else if ((s = attr_ints(c, "axes", axes, SI_MAX_DIMS, &na, NULL))) {
        return s;
    }
    bool keepdims = si_attr_int(c->node, "keepdims", 1) != 0;
    bool noop = si_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    p->rank = x->ndim;
    memcpy(p->dims, x->dims, sizeof p->dims);
    if (na == 0) {
        for (int i = 0; i < p->rank; i++) p->red[i] = !noop; /* noop: reduce over no axis at all */
    } else if ((s = axes_mask(c, axes, na, p->rank, p->red))) {
        return s;
    }
    p->out_nd = 0;
    p->n_red = 1;
    for (int i = 0; i < p->rank; i++) {
        if (p->red[i]) {
            p->n_red *= p->dims[i];
            if (keepdims) p->out_dims[p->out_nd++] = 1;
        } else {
            p->out_dims[p->out_nd++] = p->dims[i];
        }
    }
    return SI_OK;
}

static si_result reduce_infer_k(si_kctx *c, rkind k) {
    rplan p;
    si_result s = reduce_plan(c, k, &p);
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

/* One pass in double: acc[o] = fold(acc[o], x) for every input element x of output element o. aux holds the
 * per-output maximum for F_EXPSUM. buf has room for one run (md[m-1] elements). */
static void rpass_f64(const si_tensor *x, const rspace *sp, rfold f, double *acc, const double *aux, double *buf) {
    int m = sp->m;
    int64_t L = sp->md[m - 1];
    bool inner_red = sp->ostr[m - 1] == 0;
    int64_t total = prod_dims(sp->md, 0, m), idx[SI_MAX_DIMS] = {0}, o = 0;
    for (int64_t r = 0; r < total / L; r++) {
        load_run_f64(x->dtype, x->data, r * L, L, buf);
        if (inner_red) {
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
        for (int d = m - 2; d >= 0; d--) {
            idx[d]++;
            o += sp->ostr[d];
            if (idx[d] < sp->md[d]) break;
            o -= sp->ostr[d] * sp->md[d];
            idx[d] = 0;
        }
    }
}

/* The same in 64-bit integers (sums and products wrap; uns: compare as uint64). */
static void rpass_i64(const si_tensor *x, const rspace *sp, rfold f, bool uns, int64_t *acc, int64_t *buf) {
    int m = sp->m;
    int64_t L = sp->md[m - 1];
    bool inner_red = sp->ostr[m - 1] == 0;
    int64_t total = prod_dims(sp->md, 0, m), idx[SI_MAX_DIMS] = {0}, o = 0;
    for (int64_t r = 0; r < total / L; r++) {
        load_run_i64(x->dtype, x->data, r * L, L, buf);
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
        for (int d = m - 2; d >= 0; d--) {
            idx[d]++;
            o += sp->ostr[d];
            if (idx[d] < sp->md[d]) break;
            o -= sp->ostr[d] * sp->md[d];
            idx[d] = 0;
        }
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

static si_result reduce_run_k(si_kctx *c, rkind k) {
    rplan p;
    si_result s = reduce_plan(c, k, &p);
    if (s) return s;
    if ((s = run_ready(c))) return s;
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
            si_free(acc);
            si_free(aux);
            si_free(buf);
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
        si_free(acc);
        si_free(aux);
        si_free(buf);
    } else {
        bool uns = x->dtype == SI_U64;
        int64_t *acc = si_malloc(sizeof(int64_t) * (size_t)n_out);
        int64_t *buf = si_malloc(sizeof(int64_t) * (size_t)(L > 0 ? L : 1));
        if (!acc || !buf) {
            si_free(acc);
            si_free(buf);
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
        si_free(acc);
        si_free(buf);
    }
    return SI_OK;
}

#define REDUCE_OP(fn, kind, name)                                                                              \
    static si_result fn##_infer(si_kctx *c) { return reduce_infer_k(c, kind); }                                \
    static si_result fn##_run(si_kctx *c) { return reduce_run_k(c, kind); }                                    \
    static const si_op_def op_##fn = {name, "", SI_T_NUMERIC | ((kind == R_MAX || kind == R_MIN) ? SI_T(SI_BOOL) : 0), \
                                      fn##_infer, fn##_run, NULL};

REDUCE_OP(reduce_mean, R_MEAN, "ReduceMean")
REDUCE_OP(reduce_sum, R_SUM, "ReduceSum")
REDUCE_OP(reduce_max, R_MAX, "ReduceMax")
REDUCE_OP(reduce_min, R_MIN, "ReduceMin")
REDUCE_OP(reduce_prod, R_PROD, "ReduceProd")
REDUCE_OP(reduce_l1, R_L1, "ReduceL1")
REDUCE_OP(reduce_l2, R_L2, "ReduceL2")
REDUCE_OP(reduce_sumsq, R_SUMSQ, "ReduceSumSquare")
REDUCE_OP(reduce_logsum, R_LOGSUM, "ReduceLogSum")
REDUCE_OP(reduce_logsumexp, R_LOGSUMEXP, "ReduceLogSumExp")

// --- ArgMax / ArgMin ------------------------------------------------------------------------------------

typedef struct aplan {
    int axis;
    int64_t outer, n, inner;
    int out_nd;
    int64_t out_dims[SI_MAX_DIMS];
} aplan;

static si_result arg_plan(const si_kctx *c, aplan *p) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, SI_T_NUMERIC))) return s;
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, &p->axis))) return s;
    bool keepdims = si_attr_int(c->node, "keepdims", 1) != 0;
    p->outer = prod_dims(x->dims, 0, p->axis);
    p->n = x->dims[p->axis];
    p->inner = prod_dims(x->dims, p->axis + 1, x->ndim);
    if (p->n == 0 && p->outer * p->inner > 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "cannot take the arg-extremum over an empty axis %d", p->axis);
    p->out_nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != p->axis) p->out_dims[p->out_nd++] = x->dims[i];
        else if (keepdims) p->out_dims[p->out_nd++] = 1;
    }
    return SI_OK;
}

static si_result arg_infer(si_kctx *c) {
    aplan p;
    si_result s = arg_plan(c, &p);
    if (s) return s;
    return si_set_out(c, 0, SI_I64, p.out_nd, p.out_dims);
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
    if ((s = run_ready(c))) return s;
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

static const si_op_def op_argmax = {"ArgMax", "", SI_T_NUMERIC, arg_infer, argmax_run, NULL};
static const si_op_def op_argmin = {"ArgMin", "", SI_T_NUMERIC, arg_infer, argmin_run, NULL};

// --- TopK -----------------------------------------------------------------------------------------------

typedef struct tplan {
    int axis;
    int64_t k, outer, n, inner;
    int64_t out_dims[SI_MAX_DIMS];
} tplan;

static si_result topk_plan(const si_kctx *c, tplan *p) {
    si_result s = need_in(c, 0, "X");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, SI_T_NUMERIC))) return s;
    if ((s = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, &p->axis))) return s;
    if (c->opset >= 10) {
        if ((s = need_in(c, 1, "K"))) return s;
        int64_t kv[1];
        int nk = 0;
        if ((s = input_ints(c, 1, "K", kv, 1, &nk))) return s;
        if (nk != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'K' must hold exactly one value");
        p->k = kv[0];
    } else {
        if (!si_node_attr(c->node, "k")) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'k' is missing");
        p->k = si_attr_int(c->node, "k", 0);
    }
    p->outer = prod_dims(x->dims, 0, p->axis);
    p->n = x->dims[p->axis];
    p->inner = prod_dims(x->dims, p->axis + 1, x->ndim);
    if (p->k < 0 || p->k > p->n)
        return si_op_err(c, SI_ERR_INVALID_ARG, "k = %lld is out of range for axis %d of size %lld", (long long)p->k,
                         p->axis, (long long)p->n);
    memcpy(p->out_dims, x->dims, sizeof p->out_dims);
    p->out_dims[p->axis] = p->k;
    return SI_OK;
}

static si_result topk_infer(si_kctx *c) {
    tplan p;
    si_result s = topk_plan(c, &p);
    if (s) return s;
    if ((s = si_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, p.out_dims))) return s;
    return si_set_out(c, 1, SI_I64, c->in[0]->ndim, p.out_dims);
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

static si_result topk_run(si_kctx *c) {
    tplan p;
    si_result s = topk_plan(c, &p);
    if (s) return s;
    if ((s = run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (p.k == 0 || p.outer * p.inner == 0) return SI_OK;
    bool largest = si_attr_int(c->node, "largest", 1) != 0;
    int cls = si_dtype_is_float(x->dtype) ? 0 : x->dtype == SI_U64 ? 2 : 1;
    size_t es = si_dtype_size(x->dtype);
    tkey *v = si_malloc(sizeof(tkey) * (size_t)p.n), *tmp = si_malloc(sizeof(tkey) * (size_t)p.n);
    if (!v || !tmp) {
        si_free(v);
        si_free(tmp);
        return si_err(SI_ERR_NO_MEM, "out of memory in TopK");
    }
    uint8_t *yv = c->out[0] ? c->out[0]->data : NULL;
    int64_t *yi = (c->n_out > 1 && c->out[1]) ? c->out[1]->data : NULL;
    const uint8_t *xd = x->data;
    for (int64_t o = 0; o < p.outer; o++)
        for (int64_t i = 0; i < p.inner; i++) {
            int64_t base = o * p.n * p.inner + i;
            for (int64_t j = 0; j < p.n; j++) {
                int64_t e = base + j * p.inner;
                v[j].idx = j;
                if (cls == 0) v[j].f = si_load_f64(x->dtype, xd, e);
                else v[j].i = si_load_i64(x->dtype, xd, e);
            }
            tkey_sort(v, tmp, p.n, cls, largest);
            int64_t obase = o * p.k * p.inner + i;
            for (int64_t j = 0; j < p.k; j++) {
                int64_t oe = obase + j * p.inner;
                if (yv) memcpy(yv + (size_t)oe * es, xd + (size_t)(base + v[j].idx * p.inner) * es, es);
                if (yi) yi[oe] = v[j].idx;
            }
        }
    si_free(v);
    si_free(tmp);
    return SI_OK;
}

static const si_op_def op_topk = {"TopK", "", SI_T_NUMERIC, topk_infer, topk_run, NULL};

// --- CumSum ---------------------------------------------------------------------------------------------

static si_result cumsum_axis(const si_kctx *c, int *axis) {
    int64_t a[1];
    int n = 0;
    si_result s = input_ints(c, 1, "axis", a, 1, &n);
    if (s) return s;
    if (n != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'axis' must hold exactly one value");
    return si_axis(c, a[0], c->in[0]->ndim, axis);
}

static si_result cumsum_infer(si_kctx *c) {
    si_result s = need_in(c, 0, "x");
    if (s || (s = need_in(c, 1, "axis"))) return s;
    if ((s = check_dtype(c, c->in[0]->dtype, SI_T_NUMERIC))) return s;
    int axis;
    s = cumsum_axis(c, &axis);
    if (s && s != SI_SHAPE_DYNAMIC) return s; /* the output shape does not depend on the axis value */
    return si_same_as_input(c, 0, 0);
}

static si_result cumsum_run(si_kctx *c) {
    si_result s = need_in(c, 0, "x");
    if (s || (s = need_in(c, 1, "axis")) || (s = run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    si_tensor *y = c->out[0];
    int axis;
    if ((s = cumsum_axis(c, &axis))) return s;
    bool exclusive = si_attr_int(c->node, "exclusive", 0) != 0, reverse = si_attr_int(c->node, "reverse", 0) != 0;
    int64_t outer = prod_dims(x->dims, 0, axis), n = x->dims[axis], inner = prod_dims(x->dims, axis + 1, x->ndim);
    if (!y || outer * n * inner == 0) return SI_OK;
    bool fl = si_dtype_is_float(x->dtype);
    /* acc and row for one row of `inner` contiguous elements, in double or int64 */
    size_t esz = fl ? sizeof(double) : sizeof(int64_t);
    void *acc = si_malloc(esz * (size_t)inner), *row = si_malloc(esz * (size_t)inner);
    if (!acc || !row) {
        si_free(acc);
        si_free(row);
        return si_err(SI_ERR_NO_MEM, "out of memory in CumSum");
    }
    for (int64_t o = 0; o < outer; o++) {
        memset(acc, 0, esz * (size_t)inner);
        for (int64_t jj = 0; jj < n; jj++) {
            int64_t j = reverse ? n - 1 - jj : jj, off = (o * n + j) * inner;
            if (fl) {
                double *a = acc, *r = row;
                load_run_f64(x->dtype, x->data, off, inner, r);
                for (int64_t i = 0; i < inner; i++) {
                    double v = r[i];
                    r[i] = exclusive ? a[i] : a[i] + v;
                    a[i] += v;
                }
                store_run_f64(y->dtype, y->data, off, inner, r);
            } else {
                int64_t *a = acc, *r = row;
                load_run_i64(x->dtype, x->data, off, inner, r);
                for (int64_t i = 0; i < inner; i++) {
                    int64_t v = r[i], sum = (int64_t)((uint64_t)a[i] + (uint64_t)v);
                    r[i] = exclusive ? a[i] : sum;
                    a[i] = sum;
                }
                store_run_i64(y->dtype, y->data, off, inner, r);
            }
        }
    }
    si_free(acc);
    si_free(row);
    return SI_OK;
}

static const si_op_def op_cumsum = {"CumSum", "", SI_T_NUMERIC, cumsum_infer, cumsum_run, NULL};

// --- Reshape, Squeeze, Unsqueeze, Flatten: same bytes, new shape ----------------------------------------

static si_result copy_all(si_kctx *c) {
    si_result s = run_ready(c);
    if (s) return s;
    const si_tensor *x = c->in[0];
    si_tensor *y = c->out[0];
    if (!y) return SI_OK;
    size_t n = (size_t)si_shape_count(x->ndim, x->dims) * si_dtype_size(x->dtype);
    size_t m = (size_t)si_shape_count(y->ndim, y->dims) * si_dtype_size(y->dtype);
    if (n != m) return si_op_err(c, SI_ERR_INTERNAL, "output size %zu differs from input size %zu", m, n);
    if (n) memcpy(y->data, x->data, n);
    return SI_OK;
}

static si_result reshape_infer(si_kctx *c) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    int64_t shape[SI_MAX_DIMS];
    int n = 0;
    if (c->opset >= 5) {
        if ((s = need_in(c, 1, "shape")) || (s = input_ints(c, 1, "shape", shape, SI_MAX_DIMS, &n))) return s;
    } else {
        bool present;
        if ((s = attr_ints(c, "shape", shape, SI_MAX_DIMS, &n, &present))) return s;
        if (!present) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'shape' is missing");
    }
    bool allowzero = c->opset >= 14 && si_attr_int(c->node, "allowzero", 0) != 0;
    int64_t dims[SI_MAX_DIMS], known = 1, count = si_shape_count(x->ndim, x->dims);
    int infer_at = -1;
    bool has_zero = false;
    for (int i = 0; i < n; i++) {
        int64_t v = shape[i];
        if (v == -1) {
            if (infer_at >= 0) return si_op_err(c, SI_ERR_INVALID_ARG, "shape has more than one -1");
            infer_at = i;
            dims[i] = 1;
            continue;
        }
        if (v < -1) return si_op_err(c, SI_ERR_INVALID_ARG, "shape value %lld is invalid", (long long)v);
        if (v == 0) {
            has_zero = true;
            if (!allowzero) {
                if (i >= x->ndim)
                    return si_op_err(c, SI_ERR_INVALID_ARG, "shape[%d] = 0 copies a dimension the rank-%d input lacks",
                                     i, x->ndim);
                v = x->dims[i];
            }
        }
        dims[i] = v;
        known *= v;
    }
    if (allowzero && has_zero && infer_at >= 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "shape has both 0 and -1 while allowzero is set");
    if (infer_at >= 0) {
        if (known == 0 || count % known != 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "cannot infer the -1 dimension: %lld elements into blocks of %lld",
                             (long long)count, (long long)known);
        dims[infer_at] = count / known;
    } else if (known != count) {
        char a[160], b[160];
        return si_op_err(c, SI_ERR_INVALID_ARG, "cannot reshape %s to %s (element counts differ)",
                         si_shape_str(a, sizeof a, x->dtype, x->ndim, x->dims), si_shape_str(b, sizeof b, x->dtype, n, dims));
    }
    return si_set_out(c, 0, x->dtype, n, dims);
}

static const si_op_def op_reshape = {"Reshape", "", 0, reshape_infer, copy_all, NULL};

static si_result squeeze_infer(si_kctx *c) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    int64_t axes[SI_MAX_DIMS];
    int na = 0;
    if (c->opset >= 13) {
        if (has_in(c, 1) && (s = input_ints(c, 1, "axes", axes, SI_MAX_DIMS, &na))) return s;
    } else if ((s = attr_ints(c, "axes", axes, SI_MAX_DIMS, &na, NULL))) {
        return s;
    }
    bool sq[SI_MAX_DIMS];
    if (na == 0) {
        for (int i = 0; i < x->ndim; i++) sq[i] = x->dims[i] == 1;
    } else {
        if ((s = axes_mask(c, axes, na, x->ndim, sq))) return s;
        for (int i = 0; i < x->ndim; i++)
            if (sq[i] && x->dims[i] != 1)
                return si_op_err(c, SI_ERR_INVALID_ARG, "cannot squeeze axis %d of size %lld", i, (long long)x->dims[i]);
    }
    int64_t dims[SI_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!sq[i]) dims[nd++] = x->dims[i];
    return si_set_out(c, 0, x->dtype, nd, dims);
}

static const si_op_def op_squeeze = {"Squeeze", "", 0, squeeze_infer, copy_all, NULL};

static si_result unsqueeze_infer(si_kctx *c) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    int64_t axes[SI_MAX_DIMS];
    int na = 0;
    if (c->opset >= 13) {
        if ((s = need_in(c, 1, "axes")) || (s = input_ints(c, 1, "axes", axes, SI_MAX_DIMS, &na))) return s;
    } else {
        bool present;
        if ((s = attr_ints(c, "axes", axes, SI_MAX_DIMS, &na, &present))) return s;
        if (!present) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'axes' is missing");
    }
    int rank = x->ndim + na;
    if (rank > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, SI_MAX_DIMS);
    bool ins[SI_MAX_DIMS];
    if ((s = axes_mask(c, axes, na, rank, ins))) return s;
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0, j = 0; i < rank; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    return si_set_out(c, 0, x->dtype, rank, dims);
}

static const si_op_def op_unsqueeze = {"Unsqueeze", "", 0, unsqueeze_infer, copy_all, NULL};

static si_result flatten_infer(si_kctx *c) {
    si_result s = need_in(c, 0, "input");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    int64_t axis = si_attr_int(c->node, "axis", 1);
    int64_t lo = c->opset >= 11 ? -(int64_t)x->ndim : 0;
    if (axis < lo || axis > x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is out of range [%lld, %d] for rank %d", (long long)axis,
                         (long long)lo, x->ndim, x->ndim);
    if (axis < 0) axis += x->ndim;
    int64_t dims[2] = {prod_dims(x->dims, 0, (int)axis), prod_dims(x->dims, (int)axis, x->ndim)};
    return si_set_out(c, 0, x->dtype, 2, dims);
}

static const si_op_def op_flatten = {"Flatten", "", 0, flatten_infer, copy_all, NULL};

// --- Transpose ------------------------------------------------------------------------------------------

static si_result transpose_plan(const si_kctx *c, int *perm) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    int64_t pv[SI_MAX_DIMS];
    int n = 0;
    bool present;
    if ((s = attr_ints(c, "perm", pv, SI_MAX_DIMS, &n, &present))) return s;
    if (!present || n == 0) {
        for (int i = 0; i < x->ndim; i++) perm[i] = x->ndim - 1 - i;
        return SI_OK;
    }
    if (n != x->ndim) return si_op_err(c, SI_ERR_INVALID_ARG, "perm has %d entries for rank %d", n, x->ndim);
    bool seen[SI_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        if (pv[i] < 0 || pv[i] >= n || seen[pv[i]])
            return si_op_err(c, SI_ERR_INVALID_ARG, "perm is not a permutation of 0..%d", n - 1);
        seen[pv[i]] = true;
        perm[i] = (int)pv[i];
    }
    return SI_OK;
}

static si_result transpose_infer(si_kctx *c) {
    int perm[SI_MAX_DIMS];
    si_result s = transpose_plan(c, perm);
    if (s) return s;
    const si_tensor *x = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = x->dims[perm[i]];
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result transpose_run(si_kctx *c) {
    int perm[SI_MAX_DIMS];
    si_result s = transpose_plan(c, perm);
    if (s || (s = run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    int64_t istr[SI_MAX_DIMS], dims[SI_MAX_DIMS], str[SI_MAX_DIMS];
    strides_of(x->ndim, x->dims, istr);
    for (int i = 0; i < x->ndim; i++) {
        dims[i] = x->dims[perm[i]];
        str[i] = istr[perm[i]];
    }
    gather_copy(c->out[0]->data, x->data, si_dtype_size(x->dtype), x->ndim, dims, str, 0);
    return SI_OK;
}

static const si_op_def op_transpose = {"Transpose", "", 0, transpose_infer, transpose_run, NULL};

// --- Concat ---------------------------------------------------------------------------------------------

static si_result concat_plan(const si_kctx *c, int *axis, int64_t *out_dims) {
    if (c->n_in < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "needs at least one input");
    for (int i = 0; i < c->n_in; i++)
        if (!c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
    const si_tensor *x = c->in[0];
    si_result s = check_dtype(c, x->dtype, 0);
    if (s) return s;
    if (c->opset >= 4 && !si_node_attr(c->node, "axis"))
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'axis' is missing");
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 1), x->ndim, axis))) return s;
    memcpy(out_dims, x->dims, sizeof(int64_t) * SI_MAX_DIMS);
    out_dims[*axis] = 0;
    for (int i = 0; i < c->n_in; i++) {
        const si_tensor *t = c->in[i];
        if (t->dtype != x->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is %s, input 0 is %s", i, si_dtype_name(t->dtype),
                             si_dtype_name(x->dtype));
        bool ok = t->ndim == x->ndim;
        for (int d = 0; ok && d < x->ndim; d++)
            if (d != *axis && t->dims[d] != x->dims[d]) ok = false;
        if (!ok) {
            char a[160], b[160];
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d %s does not match input 0 %s outside axis %d", i,
                             si_shape_str(a, sizeof a, t->dtype, t->ndim, t->dims),
                             si_shape_str(b, sizeof b, x->dtype, x->ndim, x->dims), *axis);
        }
        out_dims[*axis] += t->dims[*axis];
    }
    return SI_OK;
}

static si_result concat_infer(si_kctx *c) {
    int axis;
    int64_t dims[SI_MAX_DIMS];
    si_result s = concat_plan(c, &axis, dims);
    if (s) return s;
    return si_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, dims);
}

static si_result concat_run(si_kctx *c) {
    int axis;
    int64_t dims[SI_MAX_DIMS];
    si_result s = concat_plan(c, &axis, dims);
    if (s || (s = run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    size_t es = si_dtype_size(x->dtype);
    int64_t outer = prod_dims(dims, 0, axis), inner = prod_dims(dims, axis + 1, x->ndim);
    uint8_t *d = c->out[0]->data;
    if (outer * inner * dims[axis] == 0) return SI_OK;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < c->n_in; i++) {
            size_t chunk = (size_t)(c->in[i]->dims[axis] * inner) * es;
            if (!chunk) continue;
            memcpy(d, (const uint8_t *)c->in[i]->data + (size_t)o * chunk, chunk);
            d += chunk;
        }
    return SI_OK;
}

static const si_op_def op_concat = {"Concat", "", 0, concat_infer, concat_run, NULL};

// --- Split ----------------------------------------------------------------------------------------------

/* *sizes (n_out entries, caller frees with si_free) receives the length of every output along *axis. */
static si_result split_plan(const si_kctx *c, int *axis, int64_t **sizes) {
    *sizes = NULL;
    si_result s = need_in(c, 0, "input");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    if (c->n_out < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "needs at least one output");
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, axis))) return s;
    int64_t dim = x->dims[*axis], *sz = si_malloc(sizeof(int64_t) * (size_t)c->n_out);
    if (!sz) return si_err(SI_ERR_NO_MEM, "out of memory in Split");
    int n = 0;
    bool given = false;
    if (c->opset >= 13) {
        if (has_in(c, 1)) {
            s = input_ints(c, 1, "split", sz, c->n_out, &n);
            given = n > 0; /* an empty 'split' tensor counts as absent */
        }
    } else {
        const int64_t *v = si_attr_ints(c->node, "split", &n);
        if (n > 0) {
            if (n != c->n_out) s = si_op_err(c, SI_ERR_INVALID_ARG, "'split' has %d values for %d outputs", n, c->n_out);
            else memcpy(sz, v, sizeof(int64_t) * (size_t)n);
            given = true;
        }
    }
    bool has_num = c->opset >= 18 && si_node_attr(c->node, "num_outputs") != NULL;
    if (!s && given && has_num) s = si_op_err(c, SI_ERR_INVALID_ARG, "both 'split' and 'num_outputs' are given");
    if (!s && given) {
        int64_t sum = 0;
        if (n != c->n_out) s = si_op_err(c, SI_ERR_INVALID_ARG, "'split' has %d values for %d outputs", n, c->n_out);
        for (int i = 0; !s && i < n; i++) {
            if (sz[i] < 0) s = si_op_err(c, SI_ERR_INVALID_ARG, "split[%d] = %lld is negative", i, (long long)sz[i]);
            sum += sz[i];
        }
        if (!s && sum != dim)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "split sizes add up to %lld, axis %d has %lld", (long long)sum, *axis,
                          (long long)dim);
    } else if (!s && has_num) {
        int64_t num = si_attr_int(c->node, "num_outputs", 0);
        if (num != c->n_out)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "num_outputs = %lld but the node has %d outputs", (long long)num, c->n_out);
        int64_t chunk = num > 0 ? (dim + num - 1) / num : 0;
        for (int i = 0; !s && i < c->n_out; i++) sz[i] = i < c->n_out - 1 ? chunk : dim - chunk * (c->n_out - 1);
        if (!s && sz[c->n_out - 1] < 0)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "axis of size %lld cannot be split into %lld chunks", (long long)dim,
                          (long long)num);
    } else if (!s) {
        if (dim % c->n_out != 0)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "axis of size %lld does not split into %d equal parts", (long long)dim,
                          c->n_out);
        for (int i = 0; !s && i < c->n_out; i++) sz[i] = dim / c->n_out;
    }
    if (s) {
        si_free(sz);
        return s;
    }
    *sizes = sz;
    return SI_OK;
}

static si_result split_infer(si_kctx *c) {
    int axis;
    int64_t *sz;
    si_result s = split_plan(c, &axis, &sz);
    if (s) return s;
    const si_tensor *x = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    for (int k = 0; !s && k < c->n_out; k++) {
        dims[axis] = sz[k];
        s = si_set_out(c, k, x->dtype, x->ndim, dims);
    }
    si_free(sz);
    return s;
}

static si_result split_run(si_kctx *c) {
    int axis;
    int64_t *sz;
    si_result s = split_plan(c, &axis, &sz);
    if (s) return s;
    if ((s = run_ready(c))) {
        si_free(sz);
        return s;
    }
    const si_tensor *x = c->in[0];
    size_t es = si_dtype_size(x->dtype);
    int64_t outer = prod_dims(x->dims, 0, axis), inner = prod_dims(x->dims, axis + 1, x->ndim);
    const uint8_t *src = x->data;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < c->n_out; k++) {
            size_t chunk = (size_t)(sz[k] * inner) * es;
            if (!chunk) continue;
            if (c->out[k]) memcpy((uint8_t *)c->out[k]->data + (size_t)o * chunk, src, chunk);
            src += chunk;
        }
    si_free(sz);
    return SI_OK;
}

static const si_op_def op_split = {"Split", "", 0, split_infer, split_run, NULL};

// --- Slice ----------------------------------------------------------------------------------------------

typedef struct splan {
    int rank;
    int64_t start[SI_MAX_DIMS], step[SI_MAX_DIMS], len[SI_MAX_DIMS];
} splan;

static si_result slice_plan(const si_kctx *c, splan *p) {
    si_result s = need_in(c, 0, "data");
    if (s) return s;
    const si_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, 0))) return s;
    int64_t starts[SI_MAX_DIMS], ends[SI_MAX_DIMS], axes[SI_MAX_DIMS], steps[SI_MAX_DIMS];
    int ns = 0, ne = 0, na = -1, nst = -1;
    if (c->opset >= 10) {
        if ((s = need_in(c, 1, "starts")) || (s = need_in(c, 2, "ends"))) return s;
        if ((s = input_ints(c, 1, "starts", starts, SI_MAX_DIMS, &ns))) return s;
        if ((s = input_ints(c, 2, "ends", ends, SI_MAX_DIMS, &ne))) return s;
        if (has_in(c, 3) && (s = input_ints(c, 3, "axes", axes, SI_MAX_DIMS, &na))) return s;
        if (has_in(c, 4) && (s = input_ints(c, 4, "steps", steps, SI_MAX_DIMS, &nst))) return s;
    } else {
        bool ps, pe, pa;
        if ((s = attr_ints(c, "starts", starts, SI_MAX_DIMS, &ns, &ps))) return s;
        if ((s = attr_ints(c, "ends", ends, SI_MAX_DIMS, &ne, &pe))) return s;
        if (!ps || !pe) return si_op_err(c, SI_ERR_INVALID_ARG, "attributes 'starts' and 'ends' are required");
        int n = 0;
        if ((s = attr_ints(c, "axes", axes, SI_MAX_DIMS, &n, &pa))) return s;
        if (pa) na = n;
    }
    if (ne != ns) return si_op_err(c, SI_ERR_INVALID_ARG, "starts has %d values, ends %d", ns, ne);
    if (na >= 0 && na != ns) return si_op_err(c, SI_ERR_INVALID_ARG, "axes has %d values, starts %d", na, ns);
    if (nst >= 0 && nst != ns) return si_op_err(c, SI_ERR_INVALID_ARG, "steps has %d values, starts %d", nst, ns);
    p->rank = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->len[d] = x->dims[d];
    }
    bool seen[SI_MAX_DIMS] = {false};
    for (int i = 0; i < ns; i++) {
        int a;
        if ((s = si_axis(c, na >= 0 ? axes[i] : i, x->ndim, &a))) return s;
        if (seen[a]) return si_op_err(c, SI_ERR_INVALID_ARG, "axis %d is sliced twice", a);
        seen[a] = true;
        int64_t dim = x->dims[a], st = starts[i], en = ends[i], step = nst >= 0 ? steps[i] : 1;
        if (step == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "step for axis %d is 0", a);
        if (st < 0) st += dim;
        if (en < 0) en += dim;
        int64_t len;
        if (step > 0) {
            st = SI_MAX(0, SI_MIN(st, dim));
            en = SI_MAX(0, SI_MIN(en, dim));
            len = en > st ? (en - st - 1) / step + 1 : 0;
        } else {
            st = SI_MAX(0, SI_MIN(st, dim - 1));
            en = SI_MAX(-1, SI_MIN(en, dim - 1));
            int64_t astep = step == INT64_MIN ? INT64_MAX : -step;
            len = st > en ? (st - en - 1) / astep + 1 : 0;
        }
        p->start[a] = len > 0 ? st : 0;
        p->step[a] = len > 1 ? step : 1; /* |step| < dim when len > 1: no overflow in strides */
        p->len[a] = len;
    }
    return SI_OK;
}

static si_result slice_infer(si_kctx *c) {
    splan p;
    si_result s = slice_plan(c, &p);
    if (s) return s;
    return si_set_out(c, 0, c->in[0]->dtype, p.rank, p.len);
}

static si_result slice_run(si_kctx *c) {
    splan p;
    si_result s = slice_plan(c, &p);
    if (s || (s = run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    int64_t istr[SI_MAX_DIMS], str[SI_MAX_DIMS], base = 0;
    strides_of(x->ndim, x->dims, istr);
    for (int d = 0; d < p.rank; d++) {
        base += p.start[d] * istr[d];
        str[d] = p.step[d] * istr[d];
    }
    gather_copy(c->out[0]->data, x->data, si_dtype_size(x->dtype), p.rank, p.len, str, base);
    return SI_OK;
}

static const si_op_def op_slice = {"Slice", "", 0, slice_infer, slice_run, NULL};

// --- table ----------------------------------------------------------------------------------------------

const si_op_def *const si_ops_reduce[] = {
    &op_reduce_mean, &op_reduce_sum,   &op_reduce_max,    &op_reduce_min,   &op_reduce_prod, &op_reduce_l1,
    &op_reduce_l2,   &op_reduce_sumsq, &op_reduce_logsum, &op_reduce_logsumexp,
    &op_argmax,      &op_argmin,       &op_topk,          &op_cumsum,
    &op_reshape,     &op_transpose,    &op_concat,        &op_split,        &op_slice,       &op_squeeze,
    &op_unsqueeze,   &op_flatten,      NULL};
