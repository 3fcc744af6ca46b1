/*
 * tensor.c — reference kernels for the data-movement and tensor-construction ops: Expand, Gather,
 * GatherElements, GatherND, ScatterND, ScatterElements, Scatter, Shape, Size, ConstantOfShape, Constant,
 * Identity, Tile, Range, Trilu, DepthToSpace, SpaceToDepth, OneHot, NonZero, EyeLike, Compress,
 * ReverseSequence and Unique.
 *
 * Ops that only move elements work for every stored type: they copy bytes by element size. Ops that
 * combine values (Scatter* reductions, Range, Unique's ordering) go through si_load_* / si_store_*.
 */
#include "ops/ops.h"

#include <math.h>

/* ---- small helpers ---------------------------------------------------------------------------------------- */

static int64_t numel(const si_tensor *t) { return si_shape_count(t->ndim, t->dims); }

static size_t esize(const si_tensor *t) { return si_dtype_size(t->dtype); }

static int64_t prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/* Input i must be present; with need_data its values must be known (a tensor without elements always is). */
static si_result need_in(const si_kctx *c, int i, bool need_data)
{
    if (i >= c->n_in || c->in[i] == NULL)
        return si_op_err(c, SI_ERR_INVALID_ARG, "required input %d is missing", i);
    const si_tensor *t = c->in[i];
    if (t->ndim < 0 || t->ndim > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has an invalid rank %d", i, t->ndim);
    if (need_data && t->data == NULL && numel(t) > 0)
        return SI_SHAPE_DYNAMIC;
    return SI_OK;
}

static bool has_in(const si_kctx *c, int i) { return i < c->n_in && c->in[i] != NULL; }

static si_result need_index_type(const si_kctx *c, int i, const char *what)
{
    si_dtype dt = c->in[i]->dtype;
    if (dt != SI_I32 && dt != SI_I64)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%s must be int32 or int64, got %s", what, si_dtype_name(dt));
    return SI_OK;
}

/* Read an integer tensor of rank <= 1 into a new array (at least one slot is allocated). */
static si_result read_ints(const si_kctx *c, const si_tensor *t, const char *what, int64_t **vals, int64_t *n)
{
    *vals = NULL;
    *n = 0;
    if (!si_dtype_is_int(t->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be an integer tensor, got %s", what,
                         si_dtype_name(t->dtype));
    if (t->ndim > 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be 1-D, got rank %d", what, t->ndim);
    int64_t cnt = numel(t);
    int64_t *v = si_malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof(int64_t));
    if (!v)
        return SI_ERR_NO_MEM;
    for (int64_t i = 0; i < cnt; i++)
        v[i] = si_load_i64(t->dtype, t->data, i);
    *vals = v;
    *n = cnt;
    return SI_OK;
}

/* A single value (scalar or one-element tensor) as int64. */
static si_result read_scalar_i64(const si_kctx *c, const si_tensor *t, const char *what, int64_t *v)
{
    if (numel(t) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must hold exactly one value, got %lld", what,
                         (long long)numel(t));
    *v = si_load_i64(t->dtype, t->data, 0);
    return SI_OK;
}

/* Is element i of a buffer of type dt non-zero? (-0.0 is zero; NaN is not.) */
static bool elem_nonzero(si_dtype dt, const void *p, int64_t i)
{
    if (si_dtype_is_float(dt))
        return si_load_f64(dt, p, i) != 0.0;
    size_t es = si_dtype_size(dt);
    const unsigned char *b = (const unsigned char *)p + (size_t)i * es;
    for (size_t k = 0; k < es; k++)
        if (b[k])
            return true;
    return false;
}

static void copy_all(si_tensor *out, const si_tensor *in)
{
    if (out->nbytes > 0 && in->data && out->data)
        memcpy(out->data, in->data, SI_MIN(out->nbytes, in->nbytes));
}

/* Element-wise reductions used by the scatter ops. */
enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static si_result get_reduction(const si_kctx *c, int *red)
{
    const char *s = si_attr_str(c->node, "reduction", "none");
    if (!strcmp(s, "none"))
        *red = RED_NONE;
    else if (!strcmp(s, "add"))
        *red = RED_ADD;
    else if (!strcmp(s, "mul"))
        *red = RED_MUL;
    else if (!strcmp(s, "max"))
        *red = RED_MAX;
    else if (!strcmp(s, "min"))
        *red = RED_MIN;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "unknown reduction '%s' (none, add, mul, max, min)", s);
    return SI_OK;
}

/* *dst = red(*dst, *src) for one element of type dt. */
static void combine(si_dtype dt, size_t es, void *dst, const void *src, int red)
{
    if (red == RED_NONE) {
        memcpy(dst, src, es);
    } else if (si_dtype_is_float(dt)) {
        double a = si_load_f64(dt, dst, 0), b = si_load_f64(dt, src, 0), r;
        switch (red) {
        case RED_ADD: r = a + b; break;
        case RED_MUL: r = a * b; break;
        case RED_MAX: r = (isnan(a) || a >= b) ? a : b; break;
        default: r = (isnan(a) || a <= b) ? a : b; break;
        }
        si_store_f64(dt, dst, 0, r);
    } else if (dt == SI_U64) {
        uint64_t a, b, r;
        memcpy(&a, dst, 8);
        memcpy(&b, src, 8);
        switch (red) {
        case RED_ADD: r = a + b; break;
        case RED_MUL: r = a * b; break;
        case RED_MAX: r = a > b ? a : b; break;
        default: r = a < b ? a : b; break;
        }
        memcpy(dst, &r, 8);
    } else {
        int64_t a = si_load_i64(dt, dst, 0), b = si_load_i64(dt, src, 0), r;
        switch (red) {
        case RED_ADD: r = (int64_t)((uint64_t)a + (uint64_t)b); break;
        case RED_MUL: r = (int64_t)((uint64_t)a * (uint64_t)b); break;
        case RED_MAX: r = a > b ? a : b; break;
        default: r = a < b ? a : b; break;
        }
        if (dt == SI_BOOL)
            r = r != 0;
        si_store_i64(dt, dst, 0, r);
    }
}

/* Increment a multi-index over dims[0..nd); returns false after the last one. */
static bool next_index(int64_t *idx, const int64_t *dims, int nd)
{
    for (int d = nd - 1; d >= 0; d--) {
        if (++idx[d] < dims[d])
            return true;
        idx[d] = 0;
    }
    return false;
}

/* ---- Identity --------------------------------------------------------------------------------------------- */

static si_result identity_infer(si_kctx *c)
{
    si_result s = need_in(c, 0, false);
    if (s)
        return s;
    return si_same_as_input(c, 0, 0);
}

static si_result identity_run(si_kctx *c)
{
    copy_all(c->out[0], c->in[0]);
    return SI_OK;
}

static const si_op_def op_identity = {"Identity", "", 0, identity_infer, identity_run, NULL};

/* ---- Shape / Size ----------------------------------------------------------------------------------------- */

static void shape_range(const si_kctx *c, int rank, int64_t *start, int64_t *end)
{
    int64_t st = si_attr_int(c->node, "start", 0);
    int64_t en = si_attr_int(c->node, "end", rank);
    if (st < 0)
        st += rank;
    if (en < 0)
        en += rank;
    st = SI_MAX(0, SI_MIN(st, rank));
    en = SI_MAX(0, SI_MIN(en, rank));
    if (en < st)
        en = st;
    *start = st;
    *end = en;
}

static si_result shape_infer(si_kctx *c)
{
    si_result s = need_in(c, 0, false);
    if (s)
        return s;
    int64_t st, en;
    shape_range(c, c->in[0]->ndim, &st, &en);
    int64_t d = en - st;
    return si_set_out(c, 0, SI_I64, 1, &d);
}

static si_result shape_run(si_kctx *c)
{
    int64_t st, en;
    shape_range(c, c->in[0]->ndim, &st, &en);
    int64_t *o = c->out[0]->data;
    for (int64_t i = st; i < en; i++)
        o[i - st] = c->in[0]->dims[i];
    return SI_OK;
}

static const si_op_def op_shape = {"Shape", "", 0, shape_infer, shape_run, NULL};

static si_result size_infer(si_kctx *c)
{
    si_result s = need_in(c, 0, false);
    if (s)
        return s;
    return si_set_out(c, 0, SI_I64, 0, NULL);
}

static si_result size_run(si_kctx *c)
{
    *(int64_t *)c->out[0]->data = numel(c->in[0]);
    return SI_OK;
}

static const si_op_def op_size = {"Size", "", 0, size_infer, size_run, NULL};

/* ---- Constant / ConstantOfShape --------------------------------------------------------------------------- */

/* Which attribute of a Constant node holds the value: returns it, or NULL with an error status. */
static si_result constant_attr(const si_kctx *c, const si_attr **out)
{
    static const char *const ok[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
    static const char *const bad[] = {"value_string", "value_strings", "sparse_value"};
    *out = NULL;
    for (size_t i = 0; i < SI_ARRAY_LEN(bad); i++)
        if (si_node_attr(c->node, bad[i]))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "attribute '%s' is not supported", bad[i]);
    for (size_t i = 0; i < SI_ARRAY_LEN(ok); i++) {
        const si_attr *a = si_node_attr(c->node, ok[i]);
        if (a) {
            *out = a;
            return SI_OK;
        }
    }
    return si_op_err(c, SI_ERR_INVALID_ARG, "no value attribute (value, value_float(s), value_int(s))");
}

static si_result constant_infer(si_kctx *c)
{
    const si_attr *a;
    si_result s = constant_attr(c, &a);
    if (s)
        return s;
    if (!strcmp(a->name, "value")) {
        const si_tensor *t = a->t;
        if (a->type != SI_ATTR_TENSOR || !t)
            return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'value' is not a tensor");
        if (!si_dtype_valid(t->dtype))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "value of type %s is not supported",
                             si_dtype_name(t->dtype));
        if (t->data == NULL && numel(t) > 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'value' has no data");
        return si_set_out(c, 0, t->dtype, t->ndim, t->dims);
    }
    /* the kind must match the name: run reads the field the name says */
    static const struct { const char *name; si_attr_type type; } kinds[] = {
        {"value_float", SI_ATTR_FLOAT}, {"value_int", SI_ATTR_INT}, {"value_floats", SI_ATTR_FLOATS}, {"value_ints", SI_ATTR_INTS}};
    for (size_t i = 0; i < SI_ARRAY_LEN(kinds); i++)
        if (!strcmp(a->name, kinds[i].name) && a->type != kinds[i].type)
            return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has the wrong kind (%d)", a->name, (int)a->type);
    if (!strcmp(a->name, "value_float"))
        return si_set_out(c, 0, SI_F32, 0, NULL);
    if (!strcmp(a->name, "value_int"))
        return si_set_out(c, 0, SI_I64, 0, NULL);
    int64_t n = a->n;
    if (!strcmp(a->name, "value_floats"))
        return si_set_out(c, 0, SI_F32, 1, &n);
    return si_set_out(c, 0, SI_I64, 1, &n);
}

static si_result constant_run(si_kctx *c)
{
    const si_attr *a;
    si_result s = constant_attr(c, &a);
    if (s)
        return s;
    si_tensor *o = c->out[0];
    if (o->nbytes == 0)
        return SI_OK;
    if (!strcmp(a->name, "value"))
        copy_all(o, a->t);
    else if (!strcmp(a->name, "value_float"))
        *(float *)o->data = a->f;
    else if (!strcmp(a->name, "value_int"))
        *(int64_t *)o->data = a->i;
    else if (!strcmp(a->name, "value_floats"))
        memcpy(o->data, a->floats, (size_t)a->n * sizeof(float));
    else
        memcpy(o->data, a->ints, (size_t)a->n * sizeof(int64_t));
    return SI_OK;
}

static const si_op_def op_constant = {"Constant", "", 0, constant_infer, constant_run, NULL};

static si_result cos_value(const si_kctx *c, const si_tensor **val)
{
    const si_tensor *t = si_attr_tensor(c->node, "value");
    *val = t;
    if (!t)
        return SI_OK;
    if (numel(t) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'value' must hold exactly one element, has %lld",
                         (long long)numel(t));
    if (!si_dtype_valid(t->dtype) || !t->data)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "attribute 'value' of type %s is not supported",
                         si_dtype_name(t->dtype));
    return SI_OK;
}

static si_result cos_infer(si_kctx *c)
{
    si_result s = need_in(c, 0, true);
    if (s)
        return s;
    const si_tensor *val;
    if ((s = cos_value(c, &val)))
        return s;
    int64_t *dims, n;
    if ((s = read_ints(c, c->in[0], "input 'shape'", &dims, &n)))
        return s;
    if (n > SI_MAX_DIMS) {
        si_free(dims);
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %lld exceeds %d", (long long)n, SI_MAX_DIMS);
    }
    for (int64_t i = 0; i < n; i++) {
        if (dims[i] < 0) {
            long long bad = (long long)dims[i]; /* read before the array is freed */
            si_free(dims);
            return si_op_err(c, SI_ERR_INVALID_ARG, "negative dimension %lld in 'shape'", bad);
        }
    }
    s = si_set_out(c, 0, val ? val->dtype : SI_F32, (int)n, dims);
    si_free(dims);
    return s;
}

static si_result cos_run(si_kctx *c)
{
    const si_tensor *val;
    si_result s = cos_value(c, &val);
    if (s)
        return s;
    si_tensor *o = c->out[0];
    if (!val) /* default: float32 zeros, already zero-filled */
        return SI_OK;
    size_t es = esize(o);
    int64_t n = numel(o);
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)o->data + (size_t)i * es, val->data, es);
    return SI_OK;
}

static const si_op_def op_constantofshape = {"ConstantOfShape", "", SI_T_INTS, cos_infer, cos_run, NULL};

/* ---- Expand ----------------------------------------------------------------------------------------------- */

static si_result expand_infer(si_kctx *c)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, true)))
        return s;
    int64_t *shape, n;
    if ((s = read_ints(c, c->in[1], "input 'shape'", &shape, &n)))
        return s;
    if (n > SI_MAX_DIMS) {
        si_free(shape);
        return si_op_err(c, SI_ERR_UNSUPPORTED, "shape rank %lld exceeds %d", (long long)n, SI_MAX_DIMS);
    }
    for (int64_t i = 0; i < n; i++) {
        if (shape[i] < 0) {
            long long bad = (long long)shape[i]; /* read before the array is freed */
            si_free(shape);
            return si_op_err(c, SI_ERR_INVALID_ARG, "negative dimension %lld in 'shape'", bad);
        }
    }
    int nout;
    int64_t out[SI_MAX_DIMS];
    s = si_broadcast_shape(c, c->in[0]->ndim, c->in[0]->dims, (int)n, shape, &nout, out);
    si_free(shape);
    if (s)
        return s;
    return si_set_out(c, 0, c->in[0]->dtype, nout, out);
}

/* Copy `in` into `out` with numpy broadcasting (out's shape is the broadcast shape). */
static void broadcast_copy(const si_tensor *in, si_tensor *out)
{
    size_t es = esize(out);
    int nd = out->ndim;
    int64_t total = numel(out);
    if (total == 0)
        return;
    const char *src = in->data;
    char *dst = out->data;
    if (nd == 0) {
        memcpy(dst, src, es);
        return;
    }
    int64_t st[SI_MAX_DIMS];
    si_broadcast_strides(in->ndim, in->dims, nd, out->dims, st);
    int64_t inner = out->dims[nd - 1], istr = st[nd - 1];
    int64_t idx[SI_MAX_DIMS] = {0};
    for (int64_t o = 0; o < total; o += inner) {
        int64_t off = 0;
        for (int d = 0; d < nd - 1; d++)
            off += idx[d] * st[d];
        if (istr == 1 || inner == 1) {
            memcpy(dst + (size_t)o * es, src + (size_t)off * es, (size_t)inner * es);
        } else {
            for (int64_t j = 0; j < inner; j++)
                memcpy(dst + (size_t)(o + j) * es, src + (size_t)off * es, es);
        }
        next_index(idx, out->dims, nd - 1);
    }
}

static si_result expand_run(si_kctx *c)
{
    broadcast_copy(c->in[0], c->out[0]);
    return SI_OK;
}

static const si_op_def op_expand = {"Expand", "", 0, expand_infer, expand_run, NULL};

/* ---- Gather ----------------------------------------------------------------------------------------------- */

static si_result gather_infer(si_kctx *c)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, false)) || (s = need_index_type(c, 1, "indices")))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int ax;
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, &ax)))
        return s;
    int nd = x->ndim - 1 + ind->ndim;
    if (nd > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    int64_t dims[SI_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < ax; i++)
        dims[k++] = x->dims[i];
    for (int i = 0; i < ind->ndim; i++)
        dims[k++] = ind->dims[i];
    for (int i = ax + 1; i < x->ndim; i++)
        dims[k++] = x->dims[i];
    return si_set_out(c, 0, x->dtype, nd, dims);
}

static si_result gather_run(si_kctx *c)
{
    const si_tensor *x = c->in[0], *ind = c->in[1];
    si_tensor *o = c->out[0];
    int ax;
    si_result s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, &ax);
    if (s)
        return s;
    int64_t outer = prod(x->dims, 0, ax), axd = x->dims[ax];
    size_t blk = (size_t)prod(x->dims, ax + 1, x->ndim) * esize(x);
    int64_t ni = numel(ind);
    for (int64_t i = 0; i < ni; i++) {
        int64_t k = si_load_i64(ind->dtype, ind->data, i);
        if (k < -axd || k >= axd)
            return si_op_err(c, SI_ERR_INVALID_ARG, "index %lld out of range [-%lld, %lld)", (long long)k,
                             (long long)axd, (long long)axd);
    }
    if (numel(o) == 0)
        return SI_OK;
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t a = 0; a < outer; a++) {
        for (int64_t i = 0; i < ni; i++) {
            int64_t k = si_load_i64(ind->dtype, ind->data, i);
            if (k < 0)
                k += axd;
            memcpy(dst, src + (size_t)(a * axd + k) * blk, blk);
            dst += blk;
        }
    }
    return SI_OK;
}

static const si_op_def op_gather = {"Gather", "", 0, gather_infer, gather_run, NULL};

/* ---- GatherElements / ScatterElements / Scatter ----------------------------------------------------------- */

/* data, indices (same rank; indices no larger than data outside the axis); returns the normalised axis. */
static si_result elements_check(si_kctx *c, int *ax)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, false)) || (s = need_index_type(c, 1, "indices")))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1];
    if (x->ndim < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "data must have rank >= 1");
    if (ind->ndim != x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "indices rank %d differs from data rank %d", ind->ndim, x->ndim);
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, ax)))
        return s;
    for (int d = 0; d < x->ndim; d++)
        if (d != *ax && ind->dims[d] > x->dims[d])
            return si_op_err(c, SI_ERR_INVALID_ARG, "indices dimension %d (%lld) exceeds data's (%lld)", d,
                             (long long)ind->dims[d], (long long)x->dims[d]);
    return SI_OK;
}

static si_result gather_elements_infer(si_kctx *c)
{
    int ax;
    si_result s = elements_check(c, &ax);
    if (s)
        return s;
    return si_set_out(c, 0, c->in[0]->dtype, c->in[1]->ndim, c->in[1]->dims);
}

/* Offsets (in elements) into data for each element of indices, validating every index. */
static si_result element_offsets(si_kctx *c, int ax, int64_t **offs_out)
{
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int nd = x->ndim;
    int64_t n = numel(ind);
    *offs_out = NULL;
    int64_t *offs = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!offs)
        return SI_ERR_NO_MEM;
    int64_t st[SI_MAX_DIMS];
    int64_t acc = 1;
    for (int d = nd - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= x->dims[d];
    }
    int64_t idx[SI_MAX_DIMS] = {0};
    int64_t axd = x->dims[ax];
    for (int64_t i = 0; i < n; i++) {
        int64_t k = si_load_i64(ind->dtype, ind->data, i);
        if (k < -axd || k >= axd) {
            si_free(offs);
            return si_op_err(c, SI_ERR_INVALID_ARG, "index %lld out of range [-%lld, %lld)", (long long)k,
                             (long long)axd, (long long)axd);
        }
        if (k < 0)
            k += axd;
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += (d == ax ? k : idx[d]) * st[d];
        offs[i] = off;
        next_index(idx, ind->dims, nd);
    }
    *offs_out = offs;
    return SI_OK;
}

static si_result gather_elements_run(si_kctx *c)
{
    int ax;
    si_result s = elements_check(c, &ax);
    if (s)
        return s;
    int64_t *offs;
    if ((s = element_offsets(c, ax, &offs)))
        return s;
    size_t es = esize(c->in[0]);
    int64_t n = numel(c->in[1]);
    const char *src = c->in[0]->data;
    char *dst = c->out[0]->data;
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + (size_t)i * es, src + (size_t)offs[i] * es, es);
    si_free(offs);
    return SI_OK;
}

static const si_op_def op_gather_elements = {"GatherElements", "", 0, gather_elements_infer, gather_elements_run,
                                             NULL};

static si_result scatter_elements_infer(si_kctx *c)
{
    int ax, red;
    si_result s;
    if ((s = elements_check(c, &ax)) || (s = need_in(c, 2, false)) || (s = get_reduction(c, &red)))
        return s;
    const si_tensor *ind = c->in[1], *upd = c->in[2];
    if (upd->dtype != c->in[0]->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates type %s differs from data type %s",
                         si_dtype_name(upd->dtype), si_dtype_name(c->in[0]->dtype));
    bool same = upd->ndim == ind->ndim;
    for (int d = 0; same && d < ind->ndim; d++)
        same = upd->dims[d] == ind->dims[d];
    if (!same)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates and indices must have the same shape");
    return si_same_as_input(c, 0, 0);
}

static si_result scatter_elements_run(si_kctx *c)
{
    int ax, red;
    si_result s;
    if ((s = elements_check(c, &ax)) || (s = get_reduction(c, &red)))
        return s;
    int64_t *offs;
    if ((s = element_offsets(c, ax, &offs)))
        return s;
    const si_tensor *x = c->in[0], *upd = c->in[2];
    si_tensor *o = c->out[0];
    copy_all(o, x);
    size_t es = esize(x);
    int64_t n = numel(c->in[1]);
    char *dst = o->data;
    const char *src = upd->data;
    for (int64_t i = 0; i < n; i++)
        combine(x->dtype, es, dst + (size_t)offs[i] * es, src + (size_t)i * es, red);
    si_free(offs);
    return SI_OK;
}

static const si_op_def op_scatter_elements = {"ScatterElements", "", 0, scatter_elements_infer,
                                              scatter_elements_run, NULL};
/* The deprecated opset-9/11 Scatter is ScatterElements without reductions. */
static const si_op_def op_scatter = {"Scatter", "", 0, scatter_elements_infer, scatter_elements_run, NULL};

/* ---- GatherND / ScatterND --------------------------------------------------------------------------------- */

static si_result gather_nd_infer(si_kctx *c)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, false)) || (s = need_index_type(c, 1, "indices")))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int r = x->ndim, q = ind->ndim;
    int64_t b = si_attr_int(c->node, "batch_dims", 0);
    if (q < 1 || r < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "data and indices must have rank >= 1");
    if (b < 0 || b >= q || b >= r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "batch_dims %lld must be in [0, min(%d, %d))", (long long)b, q, r);
    for (int i = 0; i < b; i++)
        if (ind->dims[i] != x->dims[i])
            return si_op_err(c, SI_ERR_INVALID_ARG, "batch dimension %d differs: indices %lld, data %lld", i,
                             (long long)ind->dims[i], (long long)x->dims[i]);
    int64_t m = ind->dims[q - 1];
    if (m < 1 || m > r - b)
        return si_op_err(c, SI_ERR_INVALID_ARG, "indices last dimension %lld must be in [1, %lld]", (long long)m,
                         (long long)(r - b));
    int nd = q - 1 + r - (int)b - (int)m;
    if (nd > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    int64_t dims[SI_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < q - 1; i++)
        dims[k++] = ind->dims[i];
    for (int i = (int)(b + m); i < r; i++)
        dims[k++] = x->dims[i];
    return si_set_out(c, 0, x->dtype, nd, dims);
}

/* Element offset of the slice addressed by one index tuple (within one batch), validated. */
static si_result nd_offset(si_kctx *c, const si_tensor *ind, int64_t t0, int64_t m, const int64_t *dims,
                           int64_t *off)
{
    int64_t o = 0;
    for (int64_t j = 0; j < m; j++) {
        int64_t k = si_load_i64(ind->dtype, ind->data, t0 + j), d = dims[j];
        if (k < -d || k >= d)
            return si_op_err(c, SI_ERR_INVALID_ARG, "index %lld out of range [-%lld, %lld)", (long long)k,
                             (long long)d, (long long)d);
        if (k < 0)
            k += d;
        o = o * d + k;
    }
    *off = o;
    return SI_OK;
}

static si_result gather_nd_run(si_kctx *c)
{
    const si_tensor *x = c->in[0], *ind = c->in[1];
    int r = x->ndim, q = ind->ndim;
    int b = (int)si_attr_int(c->node, "batch_dims", 0);
    int64_t m = ind->dims[q - 1];
    int64_t nb = prod(x->dims, 0, b);
    int64_t bsz = prod(x->dims, b, r);              /* data elements per batch */
    int64_t nt = prod(ind->dims, b, q - 1);         /* index tuples per batch */
    int64_t slice = prod(x->dims, b + (int)m, r);   /* elements per gathered slice */
    size_t es = esize(x);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    if (slice == 0 || numel(c->out[0]) == 0)
        return SI_OK;
    for (int64_t bi = 0; bi < nb; bi++) {
        for (int64_t t = 0; t < nt; t++) {
            int64_t off = 0;
            si_result s = nd_offset(c, ind, (bi * nt + t) * m, m, x->dims + b, &off);
            if (s)
                return s;
            memcpy(dst + (size_t)((bi * nt + t) * slice) * es, src + (size_t)(bi * bsz + off * slice) * es,
                   (size_t)slice * es);
        }
    }
    return SI_OK;
}

static const si_op_def op_gather_nd = {"GatherND", "", 0, gather_nd_infer, gather_nd_run, NULL};

static si_result scatter_nd_infer(si_kctx *c)
{
    si_result s;
    int red;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, false)) || (s = need_in(c, 2, false)) ||
        (s = need_index_type(c, 1, "indices")) || (s = get_reduction(c, &red)))
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int r = x->ndim, q = ind->ndim;
    if (q < 1 || r < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "data and indices must have rank >= 1");
    if (upd->dtype != x->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates type %s differs from data type %s",
                         si_dtype_name(upd->dtype), si_dtype_name(x->dtype));
    int64_t m = ind->dims[q - 1];
    if (m < 1 || m > r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "indices last dimension %lld must be in [1, %d]", (long long)m, r);
    /* updates shape = indices.shape[:-1] + data.shape[m:] */
    bool ok = upd->ndim == q - 1 + r - (int)m;
    for (int i = 0; ok && i < q - 1; i++)
        ok = upd->dims[i] == ind->dims[i];
    for (int i = (int)m; ok && i < r; i++)
        ok = upd->dims[q - 1 + i - m] == x->dims[i];
    if (!ok)
        return si_op_err(c, SI_ERR_INVALID_ARG, "updates shape must be indices.shape[:-1] + data.shape[%lld:]",
                         (long long)m);
    return si_same_as_input(c, 0, 0);
}

static si_result scatter_nd_run(si_kctx *c)
{
    int red;
    si_result s = get_reduction(c, &red);
    if (s)
        return s;
    const si_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    si_tensor *o = c->out[0];
    int r = x->ndim, q = ind->ndim;
    int64_t m = ind->dims[q - 1];
    int64_t nt = prod(ind->dims, 0, q - 1);
    int64_t slice = prod(x->dims, (int)m, r);
    size_t es = esize(x);
    copy_all(o, x);
    char *dst = o->data;
    const char *src = upd->data;
    for (int64_t t = 0; t < nt; t++) {
        int64_t off = 0;
        if ((s = nd_offset(c, ind, t * m, m, x->dims, &off)))
            return s;
        if (slice == 0)
            continue;
        if (red == RED_NONE) {
            memcpy(dst + (size_t)(off * slice) * es, src + (size_t)(t * slice) * es, (size_t)slice * es);
        } else {
            for (int64_t i = 0; i < slice; i++)
                combine(x->dtype, es, dst + (size_t)(off * slice + i) * es, src + (size_t)(t * slice + i) * es,
                        red);
        }
    }
    return SI_OK;
}

static const si_op_def op_scatter_nd = {"ScatterND", "", 0, scatter_nd_infer, scatter_nd_run, NULL};

/* ---- Tile ------------------------------------------------------------------------------------------------- */

/* The per-dimension repeat counts (rank entries). Opset >= 6: input 'repeats'; opset 1: 'tiles' + 'axis'. */
static si_result tile_repeats(si_kctx *c, int64_t *rep)
{
    si_result s;
    const si_tensor *x = c->in[0];
    if ((s = need_in(c, 1, true)))
        return s;
    if (c->opset < 6 && c->n_in >= 3) {
        if ((s = need_in(c, 2, true)))
            return s;
        int64_t tiles = 0, axis = 0;
        int ax;
        if ((s = read_scalar_i64(c, c->in[1], "input 'tiles'", &tiles)) ||
            (s = read_scalar_i64(c, c->in[2], "input 'axis'", &axis)) || (s = si_axis(c, axis, x->ndim, &ax)))
            return s;
        for (int d = 0; d < x->ndim; d++)
            rep[d] = d == ax ? tiles : 1;
    } else {
        int64_t *v, n;
        if ((s = read_ints(c, c->in[1], "input 'repeats'", &v, &n)))
            return s;
        if (n != x->ndim) {
            si_free(v);
            return si_op_err(c, SI_ERR_INVALID_ARG, "'repeats' has %lld entries, input rank is %d", (long long)n,
                             x->ndim);
        }
        for (int d = 0; d < x->ndim; d++)
            rep[d] = v[d];
        si_free(v);
    }
    for (int d = 0; d < x->ndim; d++)
        if (rep[d] < 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "negative repeat count %lld", (long long)rep[d]);
    return SI_OK;
}

static si_result tile_infer(si_kctx *c)
{
    si_result s;
    int64_t rep[SI_MAX_DIMS], dims[SI_MAX_DIMS];
    if ((s = need_in(c, 0, false)) || (s = tile_repeats(c, rep)))
        return s;
    const si_tensor *x = c->in[0];
    for (int d = 0; d < x->ndim; d++)
        dims[d] = x->dims[d] * rep[d];
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result tile_run(si_kctx *c)
{
    const si_tensor *x = c->in[0];
    si_tensor *o = c->out[0];
    int nd = o->ndim;
    size_t es = esize(x);
    if (numel(o) == 0)
        return SI_OK;
    if (nd == 0) {
        memcpy(o->data, x->data, es);
        return SI_OK;
    }
    int64_t ist[SI_MAX_DIMS], acc = 1;
    for (int d = nd - 1; d >= 0; d--) {
        ist[d] = acc;
        acc *= x->dims[d];
    }
    /* Walk output rows (all dims but the last); each is the input row repeated. */
    int64_t row_in = x->dims[nd - 1], row_out = o->dims[nd - 1];
    int64_t rows = prod(o->dims, 0, nd - 1);
    int64_t idx[SI_MAX_DIMS] = {0};
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int d = 0; d < nd - 1; d++)
            off += (idx[d] % x->dims[d]) * ist[d];
        for (int64_t j = 0; j < row_out; j += row_in)
            memcpy(dst + (size_t)(r * row_out + j) * es, src + (size_t)off * es, (size_t)row_in * es);
        next_index(idx, o->dims, nd - 1);
    }
    return SI_OK;
}

static const si_op_def op_tile = {"Tile", "", 0, tile_infer, tile_run, NULL};

/* ---- Range ------------------------------------------------------------------------------------------------ */

static si_result range_count(si_kctx *c, int64_t *count)
{
    si_result s;
    if ((s = need_in(c, 0, true)) || (s = need_in(c, 1, true)) || (s = need_in(c, 2, true)))
        return s;
    si_dtype dt = c->in[0]->dtype;
    for (int i = 0; i < 3; i++) {
        if (c->in[i]->dtype != dt)
            return si_op_err(c, SI_ERR_INVALID_ARG, "start, limit and delta must have the same type");
        if (numel(c->in[i]) != 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d must be a scalar", i);
    }
    if (!si_dtype_is_float(dt) && !si_dtype_is_int(dt))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "type %s is not supported", si_dtype_name(dt));
    int64_t n;
    if (si_dtype_is_float(dt)) {
        double st = si_load_f64(dt, c->in[0]->data, 0), lim = si_load_f64(dt, c->in[1]->data, 0),
               dl = si_load_f64(dt, c->in[2]->data, 0);
        if (dl == 0 || !isfinite(st) || !isfinite(lim) || !isfinite(dl))
            return si_op_err(c, SI_ERR_INVALID_ARG, "start, limit and delta must be finite, delta non-zero");
        double f = ceil((lim - st) / dl);
        if (f > 9.0e15)
            return si_op_err(c, SI_ERR_INVALID_ARG, "too many elements");
        n = f > 0 ? (int64_t)f : 0;
    } else {
        int64_t st = si_load_i64(dt, c->in[0]->data, 0), lim = si_load_i64(dt, c->in[1]->data, 0),
                dl = si_load_i64(dt, c->in[2]->data, 0);
        if (dl == 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "delta must be non-zero");
        /* ceil((lim - st) / dl) in integers; refuse spans that could overflow int64 */
        double diff = (double)lim - (double)st;
        if (fabs(diff) > 9.0e15)
            return si_op_err(c, SI_ERR_INVALID_ARG, "range too large");
        int64_t d = lim - st;
        int64_t q = d / dl, rem = d % dl;
        if (rem != 0 && ((rem > 0) == (dl > 0)))
            q++;
        n = q > 0 ? q : 0;
    }
    *count = n;
    return SI_OK;
}

static si_result range_infer(si_kctx *c)
{
    int64_t n;
    si_result s = range_count(c, &n);
    if (s)
        return s;
    return si_set_out(c, 0, c->in[0]->dtype, 1, &n);
}

static si_result range_run(si_kctx *c)
{
    int64_t n;
    si_result s = range_count(c, &n);
    if (s)
        return s;
    si_dtype dt = c->in[0]->dtype;
    void *o = c->out[0]->data;
    if (si_dtype_is_float(dt)) {
        double st = si_load_f64(dt, c->in[0]->data, 0), dl = si_load_f64(dt, c->in[2]->data, 0);
        if (dt == SI_F32) {
            float fs = (float)st, fd = (float)dl;
            for (int64_t i = 0; i < n; i++)
                ((float *)o)[i] = fs + (float)i * fd;
        } else {
            for (int64_t i = 0; i < n; i++)
                si_store_f64(dt, o, i, st + (double)i * dl);
        }
    } else {
        int64_t st = si_load_i64(dt, c->in[0]->data, 0), dl = si_load_i64(dt, c->in[2]->data, 0);
        for (int64_t i = 0; i < n; i++)
            si_store_i64(dt, o, i, st + i * dl);
    }
    return SI_OK;
}

static const si_op_def op_range = {"Range", "", SI_T_NUMERIC, range_infer, range_run, NULL};

/* ---- Trilu ------------------------------------------------------------------------------------------------ */

static si_result trilu_k(si_kctx *c, int64_t *k)
{
    *k = 0;
    if (!has_in(c, 1))
        return SI_OK;
    si_result s = need_in(c, 1, true);
    if (s)
        return s;
    if (!si_dtype_is_int(c->in[1]->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "k must be an integer");
    return read_scalar_i64(c, c->in[1], "input 'k'", k);
}

static si_result trilu_infer(si_kctx *c)
{
    si_result s;
    int64_t k;
    if ((s = need_in(c, 0, false)) || (s = trilu_k(c, &k)))
        return s;
    if (c->in[0]->ndim < 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2, got %d", c->in[0]->ndim);
    return si_same_as_input(c, 0, 0);
}

static si_result trilu_run(si_kctx *c)
{
    int64_t k;
    si_result s = trilu_k(c, &k);
    if (s)
        return s;
    const si_tensor *x = c->in[0];
    si_tensor *o = c->out[0];
    bool upper = si_attr_int(c->node, "upper", 1) != 0;
    int nd = x->ndim;
    int64_t rows = x->dims[nd - 2], cols = x->dims[nd - 1];
    int64_t mats = prod(x->dims, 0, nd - 2);
    size_t es = esize(x);
    if (numel(x) == 0)
        return SI_OK;
    int64_t lim = rows + cols;
    if (k > lim)
        k = lim;
    if (k < -lim)
        k = -lim;
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t m = 0; m < mats; m++) {
        for (int64_t i = 0; i < rows; i++) {
            int64_t j0, j1; /* kept columns [j0, j1) */
            if (upper) {
                j0 = SI_MAX(0, i + k);
                j1 = cols;
            } else {
                j0 = 0;
                j1 = SI_MIN(cols, i + k + 1);
            }
            if (j1 > j0) {
                size_t off = (size_t)((m * rows + i) * cols + j0) * es;
                memcpy(dst + off, src + off, (size_t)(j1 - j0) * es);
            }
        }
    }
    return SI_OK;
}

static const si_op_def op_trilu = {"Trilu", "", 0, trilu_infer, trilu_run, NULL};

/* ---- DepthToSpace / SpaceToDepth -------------------------------------------------------------------------- */

static si_result blocksize(si_kctx *c, int64_t *b)
{
    si_result s = need_in(c, 0, false);
    if (s)
        return s;
    if (c->in[0]->ndim != 4)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 4-D (N, C, H, W), got rank %d", c->in[0]->ndim);
    if (!si_node_attr(c->node, "blocksize"))
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'blocksize' is required");
    *b = si_attr_int(c->node, "blocksize", 0);
    if (*b < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "blocksize must be >= 1, got %lld", (long long)*b);
    return SI_OK;
}

static si_result d2s_mode(si_kctx *c, bool *crd)
{
    const char *m = si_attr_str(c->node, "mode", "DCR");
    if (!strcmp(m, "DCR"))
        *crd = false;
    else if (!strcmp(m, "CRD"))
        *crd = true;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "unknown mode '%s' (DCR or CRD)", m);
    return SI_OK;
}

static si_result d2s_infer(si_kctx *c)
{
    int64_t b = 1;
    bool crd = false;
    si_result s;
    if ((s = blocksize(c, &b)) || (s = d2s_mode(c, &crd)))
        return s;
    const int64_t *d = c->in[0]->dims;
    if (d[1] % (b * b))
        return si_op_err(c, SI_ERR_INVALID_ARG, "channels %lld not divisible by blocksize^2 %lld", (long long)d[1],
                         (long long)(b * b));
    int64_t od[4] = {d[0], d[1] / (b * b), d[2] * b, d[3] * b};
    return si_set_out(c, 0, c->in[0]->dtype, 4, od);
}

static si_result d2s_run(si_kctx *c)
{
    int64_t b = 1;
    bool crd = false;
    si_result s;
    if ((s = blocksize(c, &b)) || (s = d2s_mode(c, &crd)))
        return s;
    const si_tensor *x = c->in[0];
    size_t es = esize(x);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], OC = C / (b * b);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    if (numel(x) == 0)
        return SI_OK;
    for (int64_t n = 0; n < N; n++)
        for (int64_t oc = 0; oc < OC; oc++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < b; i++)
                    for (int64_t w = 0; w < W; w++)
                        for (int64_t j = 0; j < b; j++) {
                            int64_t ic = crd ? oc * b * b + i * b + j : (i * b + j) * OC + oc;
                            int64_t si = ((n * C + ic) * H + h) * W + w;
                            int64_t di = ((n * OC + oc) * H * b + h * b + i) * W * b + w * b + j;
                            memcpy(dst + (size_t)di * es, src + (size_t)si * es, es);
                        }
    return SI_OK;
}

static const si_op_def op_depth_to_space = {"DepthToSpace", "", 0, d2s_infer, d2s_run, NULL};

static si_result s2d_infer(si_kctx *c)
{
    int64_t b = 1;
    si_result s = blocksize(c, &b);
    if (s)
        return s;
    const int64_t *d = c->in[0]->dims;
    if (d[2] % b || d[3] % b)
        return si_op_err(c, SI_ERR_INVALID_ARG, "height %lld and width %lld must be divisible by blocksize %lld",
                         (long long)d[2], (long long)d[3], (long long)b);
    int64_t od[4] = {d[0], d[1] * b * b, d[2] / b, d[3] / b};
    return si_set_out(c, 0, c->in[0]->dtype, 4, od);
}

static si_result s2d_run(si_kctx *c)
{
    int64_t b;
    si_result s = blocksize(c, &b);
    if (s)
        return s;
    const si_tensor *x = c->in[0];
    size_t es = esize(x);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], OH = H / b, OW = W / b;
    const char *src = x->data;
    char *dst = c->out[0]->data;
    if (numel(x) == 0)
        return SI_OK;
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < b; j++)
                for (int64_t ch = 0; ch < C; ch++)
                    for (int64_t h = 0; h < OH; h++)
                        for (int64_t w = 0; w < OW; w++) {
                            int64_t oc = (i * b + j) * C + ch;
                            int64_t di = ((n * C * b * b + oc) * OH + h) * OW + w;
                            int64_t si = ((n * C + ch) * H + h * b + i) * W + w * b + j;
                            memcpy(dst + (size_t)di * es, src + (size_t)si * es, es);
                        }
    return SI_OK;
}

static const si_op_def op_space_to_depth = {"SpaceToDepth", "", 0, s2d_infer, s2d_run, NULL};

/* ---- OneHot ----------------------------------------------------------------------------------------------- */

static si_result onehot_params(si_kctx *c, int *ax, int64_t *depth)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, true)) || (s = need_in(c, 2, false)))
        return s;
    const si_tensor *ind = c->in[0], *dep = c->in[1], *val = c->in[2];
    if (!si_dtype_is_float(ind->dtype) && !si_dtype_is_int(ind->dtype))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "indices of type %s are not supported",
                         si_dtype_name(ind->dtype));
    if (!si_dtype_is_float(dep->dtype) && !si_dtype_is_int(dep->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "depth must be numeric");
    if (numel(val) != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "values must hold 2 elements [off, on], has %lld",
                         (long long)numel(val));
    if (ind->ndim + 1 > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", ind->ndim + 1, SI_MAX_DIMS);
    if ((s = read_scalar_i64(c, dep, "depth", depth)))
        return s;
    if (*depth < 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "depth must be non-negative, got %lld", (long long)*depth);
    return si_axis(c, si_attr_int(c->node, "axis", -1), ind->ndim + 1, ax);
}

static si_result onehot_infer(si_kctx *c)
{
    int ax;
    int64_t depth;
    si_result s = onehot_params(c, &ax, &depth);
    if (s)
        return s;
    const si_tensor *ind = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < ind->ndim; i++) {
        if (i == ax)
            dims[k++] = depth;
        dims[k++] = ind->dims[i];
    }
    if (ax == ind->ndim)
        dims[k++] = depth;
    return si_set_out(c, 0, c->in[2]->dtype, k, dims);
}

static si_result onehot_run(si_kctx *c)
{
    int ax;
    int64_t depth;
    si_result s = onehot_params(c, &ax, &depth);
    if (s)
        return s;
    const si_tensor *ind = c->in[0], *val = c->in[2];
    si_tensor *o = c->out[0];
    size_t es = esize(val);
    int64_t outer = prod(ind->dims, 0, ax), inner = prod(ind->dims, ax, ind->ndim);
    const char *off_v = val->data, *on_v = (const char *)val->data + es;
    char *dst = o->data;
    if (numel(o) == 0)
        return SI_OK;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t d = 0; d < depth; d++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t k = si_load_i64(ind->dtype, ind->data, a * inner + i);
                if (k < 0)
                    k += depth;
                memcpy(dst + (size_t)((a * depth + d) * inner + i) * es, k == d ? on_v : off_v, es);
            }
    return SI_OK;
}

static const si_op_def op_onehot = {"OneHot", "", SI_T_NUMERIC, onehot_infer, onehot_run, NULL};

/* ---- NonZero ---------------------------------------------------------------------------------------------- */

static si_result nonzero_infer(si_kctx *c)
{
    si_result s = need_in(c, 0, true);
    if (s)
        return s;
    const si_tensor *x = c->in[0];
    int64_t n = numel(x), nnz = 0;
    for (int64_t i = 0; i < n; i++)
        nnz += elem_nonzero(x->dtype, x->data, i);
    int64_t dims[2] = {x->ndim > 0 ? x->ndim : 1, nnz};
    return si_set_out(c, 0, SI_I64, 2, dims);
}

static si_result nonzero_run(si_kctx *c)
{
    const si_tensor *x = c->in[0];
    si_tensor *o = c->out[0];
    int nd = x->ndim;
    int64_t n = numel(x), nnz = o->dims[1], j = 0;
    int64_t *out = o->data;
    int64_t idx[SI_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        if (elem_nonzero(x->dtype, x->data, i)) {
            if (j >= nnz)
                return si_op_err(c, SI_ERR_INTERNAL, "non-zero count changed since shape inference");
            if (nd == 0)
                out[j] = 0;
            for (int d = 0; d < nd; d++)
                out[d * nnz + j] = idx[d];
            j++;
        }
        next_index(idx, x->dims, nd);
    }
    if (j != nnz)
        return si_op_err(c, SI_ERR_INTERNAL, "non-zero count changed since shape inference");
    return SI_OK;
}

static const si_op_def op_nonzero = {"NonZero", "", 0, nonzero_infer, nonzero_run, NULL};

/* ---- EyeLike ---------------------------------------------------------------------------------------------- */

static si_result eyelike_dtype(si_kctx *c, si_dtype *dt)
{
    *dt = c->in[0]->dtype;
    if (si_node_attr(c->node, "dtype")) {
        int64_t v = si_attr_int(c->node, "dtype", 0);
        if (v < 0 || v > 64 || !si_dtype_valid((si_dtype)v))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "dtype %lld is not supported", (long long)v);
        *dt = (si_dtype)v;
    }
    return SI_OK;
}

static si_result eyelike_infer(si_kctx *c)
{
    si_result s;
    si_dtype dt;
    if ((s = need_in(c, 0, false)) || (s = eyelike_dtype(c, &dt)))
        return s;
    if (c->in[0]->ndim != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 2-D, got rank %d", c->in[0]->ndim);
    return si_set_out(c, 0, dt, 2, c->in[0]->dims);
}

static si_result eyelike_run(si_kctx *c)
{
    si_tensor *o = c->out[0];
    int64_t k = si_attr_int(c->node, "k", 0);
    int64_t rows = o->dims[0], cols = o->dims[1];
    for (int64_t i = 0; i < rows; i++) {
        if (k >= cols || k <= -rows) /* no diagonal element (also keeps i + k from overflowing) */
            break;
        int64_t j = i + k;
        if (j >= 0 && j < cols)
            si_store_f64(o->dtype, o->data, i * cols + j, 1.0);
    }
    return SI_OK;
}

static const si_op_def op_eyelike = {"EyeLike", "", 0, eyelike_infer, eyelike_run, NULL};

/* ---- Compress --------------------------------------------------------------------------------------------- */

/* Returns the axis (-1 for flattened) and the selected count; validates the condition. */
static si_result compress_params(si_kctx *c, int *ax, int64_t *nsel)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, true)))
        return s;
    const si_tensor *x = c->in[0], *cond = c->in[1];
    if (cond->ndim > 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "condition must be 1-D, got rank %d", cond->ndim);
    *ax = -1;
    if (si_node_attr(c->node, "axis")) {
        if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, ax)))
            return s;
    }
    int64_t len = *ax < 0 ? numel(x) : x->dims[*ax];
    int64_t nc = numel(cond), cnt = 0;
    for (int64_t i = 0; i < nc; i++) {
        if (elem_nonzero(cond->dtype, cond->data, i)) {
            if (i >= len)
                return si_op_err(c, SI_ERR_INVALID_ARG, "condition selects index %lld beyond the size %lld",
                                 (long long)i, (long long)len);
            cnt++;
        }
    }
    *nsel = cnt;
    return SI_OK;
}

static si_result compress_infer(si_kctx *c)
{
    int ax;
    int64_t nsel;
    si_result s = compress_params(c, &ax, &nsel);
    if (s)
        return s;
    const si_tensor *x = c->in[0];
    if (ax < 0)
        return si_set_out(c, 0, x->dtype, 1, &nsel);
    int64_t dims[SI_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[ax] = nsel;
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result compress_run(si_kctx *c)
{
    int ax;
    int64_t nsel;
    si_result s = compress_params(c, &ax, &nsel);
    if (s)
        return s;
    const si_tensor *x = c->in[0], *cond = c->in[1];
    if (numel(c->out[0]) == 0)
        return SI_OK;
    int64_t outer, axd;
    size_t blk;
    if (ax < 0) {
        outer = 1;
        axd = numel(x);
        blk = esize(x);
    } else {
        outer = prod(x->dims, 0, ax);
        axd = x->dims[ax];
        blk = (size_t)prod(x->dims, ax + 1, x->ndim) * esize(x);
    }
    int64_t nc = SI_MIN(numel(cond), axd);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < nc; i++)
            if (elem_nonzero(cond->dtype, cond->data, i)) {
                memcpy(dst, src + (size_t)(a * axd + i) * blk, blk);
                dst += blk;
            }
    return SI_OK;
}

static const si_op_def op_compress = {"Compress", "", 0, compress_infer, compress_run, NULL};

/* ---- ReverseSequence -------------------------------------------------------------------------------------- */

static si_result revseq_axes(si_kctx *c, int *batch_axis, int *time_axis)
{
    si_result s;
    if ((s = need_in(c, 0, false)) || (s = need_in(c, 1, false)))
        return s;
    const si_tensor *x = c->in[0], *len = c->in[1];
    if (x->ndim < 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2, got %d", x->ndim);
    int64_t ba = si_attr_int(c->node, "batch_axis", 1), ta = si_attr_int(c->node, "time_axis", 0);
    if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "batch_axis/time_axis must be 0/1 or 1/0, got %lld/%lld",
                         (long long)ba, (long long)ta);
    if (!si_dtype_is_int(len->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens must be an integer tensor");
    if (len->ndim != 1 || len->dims[0] != x->dims[ba])
        return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens must be 1-D with %lld entries (the batch size)",
                         (long long)x->dims[ba]);
    *batch_axis = (int)ba;
    *time_axis = (int)ta;
    return SI_OK;
}

static si_result revseq_infer(si_kctx *c)
{
    int ba, ta;
    si_result s = revseq_axes(c, &ba, &ta);
    if (s)
        return s;
    return si_same_as_input(c, 0, 0);
}

static si_result revseq_run(si_kctx *c)
{
    int ba, ta;
    si_result s = revseq_axes(c, &ba, &ta);
    if (s)
        return s;
    const si_tensor *x = c->in[0], *len = c->in[1];
    si_tensor *o = c->out[0];
    int64_t B = x->dims[ba], T = x->dims[ta];
    size_t blk = (size_t)prod(x->dims, 2, x->ndim) * esize(x);
    for (int64_t b = 0; b < B; b++) {
        int64_t l = si_load_i64(len->dtype, len->data, b);
        if (l < 0 || l > T)
            return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens[%lld] = %lld outside [0, %lld]", (long long)b,
                             (long long)l, (long long)T);
    }
    copy_all(o, x);
    if (blk == 0)
        return SI_OK;
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t b = 0; b < B; b++) {
        int64_t l = si_load_i64(len->dtype, len->data, b);
        for (int64_t t = 0; t < l; t++) {
            int64_t di = ta == 0 ? t * B + b : b * T + t;
            int64_t si = ta == 0 ? (l - 1 - t) * B + b : b * T + (l - 1 - t);
            memcpy(dst + (size_t)di * blk, src + (size_t)si * blk, blk);
        }
    }
    return SI_OK;
}

static const si_op_def op_reverse_sequence = {"ReverseSequence", "", 0, revseq_infer, revseq_run, NULL};

/* ---- Unique ----------------------------------------------------------------------------------------------- */

/* The input viewed as [outer, S, inner]: S slices compared lexicographically over (outer, inner). */
typedef struct uq_view {
    si_dtype dt;
    const void *data;
    int64_t outer, S, inner;
} uq_view;

static int uq_cmp_elem(si_dtype dt, const void *p, int64_t a, int64_t b)
{
    if (si_dtype_is_float(dt)) {
        double x = si_load_f64(dt, p, a), y = si_load_f64(dt, p, b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (dt == SI_U64) {
        uint64_t x = ((const uint64_t *)p)[a], y = ((const uint64_t *)p)[b];
        return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = si_load_i64(dt, p, a), y = si_load_i64(dt, p, b);
    return x < y ? -1 : x > y ? 1 : 0;
}

static int uq_cmp(const uq_view *v, int64_t s1, int64_t s2)
{
    for (int64_t o = 0; o < v->outer; o++)
        for (int64_t i = 0; i < v->inner; i++) {
            int r = uq_cmp_elem(v->dt, v->data, (o * v->S + s1) * v->inner + i, (o * v->S + s2) * v->inner + i);
            if (r)
                return r;
        }
    return 0;
}

/* Stable merge sort of idx[0..n) by slice order (tmp has n slots). */
static void uq_sort(const uq_view *v, int64_t *idx, int64_t *tmp, int64_t n)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = SI_MIN(lo + w, n), hi = SI_MIN(lo + 2 * w, n), a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = uq_cmp(v, idx[b], idx[a]) < 0 ? idx[b++] : idx[a++];
            while (a < mid)
                tmp[k++] = idx[a++];
            while (b < hi)
                tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int64_t));
    }
}

typedef struct uq_result {
    int64_t S, U;
    int64_t *first;   /* [U] original slice index of each unique slice, in output order */
    int64_t *counts;  /* [U] */
    int64_t *inverse; /* [S] output position of each original slice */
} uq_result;

static void uq_free(uq_result *r)
{
    si_free(r->first);
    si_free(r->counts);
    si_free(r->inverse);
    memset(r, 0, sizeof(*r));
}

static si_result uq_compute(si_kctx *c, int ax, uq_result *r)
{
    const si_tensor *x = c->in[0];
    uq_view v = {x->dtype, x->data, 1, numel(x), 1};
    if (ax >= 0) {
        v.outer = prod(x->dims, 0, ax);
        v.S = x->dims[ax];
        v.inner = prod(x->dims, ax + 1, x->ndim);
    }
    int64_t S = v.S;
    size_t sz = (size_t)(S > 0 ? S : 1) * sizeof(int64_t);
    memset(r, 0, sizeof(*r));
    int64_t *order = si_malloc(sz), *tmp = si_malloc(sz), *gid = si_malloc(sz);
    r->first = si_malloc(sz);
    r->counts = si_malloc(sz);
    r->inverse = si_malloc(sz);
    if (!order || !tmp || !gid || !r->first || !r->counts || !r->inverse) {
        si_free(order);
        si_free(tmp);
        si_free(gid);
        uq_free(r);
        return SI_ERR_NO_MEM;
    }
    for (int64_t i = 0; i < S; i++)
        order[i] = i;
    uq_sort(&v, order, tmp, S);
    /* Groups of equal slices in sorted order; the first of each group is its first occurrence (stable). */
    int64_t U = 0;
    for (int64_t i = 0; i < S; i++) {
        if (i == 0 || uq_cmp(&v, order[i - 1], order[i]) != 0) {
            r->first[U] = order[i];
            r->counts[U] = 0;
            U++;
        }
        r->counts[U - 1]++;
        gid[order[i]] = U - 1;
    }
    /* pos[g]: output position of sorted group g (identity when sorted, else by first occurrence). */
    int64_t *pos = tmp;
    if (si_attr_int(c->node, "sorted", 1)) {
        for (int64_t g = 0; g < U; g++)
            pos[g] = g;
    } else {
        /* Walk the input in order; each new group takes the next position. */
        int64_t *f2 = order, *c2 = si_malloc(sz);
        if (!c2) {
            si_free(order);
            si_free(tmp);
            si_free(gid);
            uq_free(r);
            return SI_ERR_NO_MEM;
        }
        for (int64_t g = 0; g < U; g++)
            pos[g] = -1;
        int64_t next = 0;
        for (int64_t i = 0; i < S; i++) {
            int64_t g = gid[i];
            if (pos[g] < 0) {
                pos[g] = next;
                f2[next] = r->first[g];
                c2[next] = r->counts[g];
                next++;
            }
        }
        memcpy(r->first, f2, (size_t)U * sizeof(int64_t));
        memcpy(r->counts, c2, (size_t)U * sizeof(int64_t));
        si_free(c2);
    }
    for (int64_t i = 0; i < S; i++)
        r->inverse[i] = pos[gid[i]];
    r->S = S;
    r->U = U;
    si_free(order);
    si_free(tmp);
    si_free(gid);
    return SI_OK;
}

static si_result uq_axis(si_kctx *c, int *ax)
{
    *ax = -1;
    if (!si_node_attr(c->node, "axis"))
        return SI_OK;
    return si_axis(c, si_attr_int(c->node, "axis", 0), c->in[0]->ndim, ax);
}

static si_result unique_infer(si_kctx *c)
{
    si_result s;
    int ax;
    if ((s = need_in(c, 0, true)) || (s = uq_axis(c, &ax)))
        return s;
    uq_result r;
    if ((s = uq_compute(c, ax, &r)))
        return s;
    const si_tensor *x = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    int nd = 1;
    dims[0] = r.U;
    if (ax >= 0) {
        nd = x->ndim;
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)nd);
        dims[ax] = r.U;
    }
    int64_t U = r.U, S = r.S;
    uq_free(&r);
    if (c->out[0] && (s = si_set_out(c, 0, x->dtype, nd, dims)))
        return s;
    if (c->n_out > 1 && c->out[1] && (s = si_set_out(c, 1, SI_I64, 1, &U)))
        return s;
    if (c->n_out > 2 && c->out[2] && (s = si_set_out(c, 2, SI_I64, 1, &S)))
        return s;
    if (c->n_out > 3 && c->out[3] && (s = si_set_out(c, 3, SI_I64, 1, &U)))
        return s;
    return SI_OK;
}

static si_result unique_run(si_kctx *c)
{
    si_result s;
    int ax;
    if ((s = uq_axis(c, &ax)))
        return s;
    uq_result r;
    if ((s = uq_compute(c, ax, &r)))
        return s;
    const si_tensor *x = c->in[0];
    size_t es = esize(x);
    if (c->out[0] && r.U > 0) {
        si_tensor *y = c->out[0];
        int64_t outer = 1, inner = 1, S = r.S;
        if (ax >= 0) {
            outer = prod(x->dims, 0, ax);
            inner = prod(x->dims, ax + 1, x->ndim);
        }
        size_t blk = (size_t)inner * es;
        char *dst = y->data;
        const char *src = x->data;
        if (blk > 0)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t u = 0; u < r.U; u++)
                    memcpy(dst + (size_t)(o * r.U + u) * blk, src + (size_t)(o * S + r.first[u]) * blk, blk);
    }
    if (c->n_out > 1 && c->out[1] && r.U > 0)
        memcpy(c->out[1]->data, r.first, (size_t)r.U * sizeof(int64_t));
    if (c->n_out > 2 && c->out[2] && r.S > 0)
        memcpy(c->out[2]->data, r.inverse, (size_t)r.S * sizeof(int64_t));
    if (c->n_out > 3 && c->out[3] && r.U > 0)
        memcpy(c->out[3]->data, r.counts, (size_t)r.U * sizeof(int64_t));
    uq_free(&r);
    return SI_OK;
}

static const si_op_def op_unique = {"Unique", "", 0, unique_infer, unique_run, NULL};

/* ---- table ------------------------------------------------------------------------------------------------ */

const si_op_def *const si_ops_tensor[] = {
    &op_expand,        &op_gather,       &op_gather_elements, &op_gather_nd,       &op_scatter_nd,
    &op_scatter_elements, &op_scatter,   &op_shape,           &op_size,            &op_constantofshape,
    &op_constant,      &op_identity,     &op_tile,            &op_range,           &op_trilu,
    &op_depth_to_space, &op_space_to_depth, &op_onehot,       &op_nonzero,         &op_eyelike,
    &op_compress,      &op_reverse_sequence, &op_unique,      NULL,
};
