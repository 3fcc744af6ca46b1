/*
 * generate.c — reference kernels for the ops that make tensors from shapes and attributes: Shape and Size
 * (folded as soon as the input shape is known: SI_OPF_SHAPE_ONLY), Constant, ConstantOfShape, Range, OneHot,
 * EyeLike, and Identity.
 */
#include "ops/ops.h"

#include <math.h>

/* ---- Identity --------------------------------------------------------------------------------------------- */

static si_result identity_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    return si_same_as_input(c, 0, 0);
}

static si_result identity_run(si_kctx *c) {
    si_copy_data(c->out[0], c->in[0]);
    return SI_OK;
}

/* ---- Shape / Size ----------------------------------------------------------------------------------------- */

static void shape_range(const si_kctx *c, int rank, int64_t *start, int64_t *end) {
    int64_t st = si_attr_int(c->node, "start", 0);
    int64_t en = si_attr_int(c->node, "end", rank);
    if (st < 0) st += rank;
    if (en < 0) en += rank;
    st = SI_MAX(0, SI_MIN(st, rank));
    en = SI_MAX(0, SI_MIN(en, rank));
    if (en < st) en = st;
    *start = st;
    *end = en;
}

static si_result shape_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    int64_t st, en;
    shape_range(c, c->in[0]->ndim, &st, &en);
    int64_t d = en - st;
    return si_set_out(c, 0, SI_I64, 1, &d);
}

static si_result shape_run(si_kctx *c) {
    int64_t st, en;
    shape_range(c, c->in[0]->ndim, &st, &en);
    int64_t *o = c->out[0]->data;
    for (int64_t i = st; i < en; i++) o[i - st] = c->in[0]->dims[i];
    return SI_OK;
}

static si_result size_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    return si_set_out(c, 0, SI_I64, 0, NULL);
}

static si_result size_run(si_kctx *c) {
    *(int64_t *)c->out[0]->data = si_count(c->in[0]);
    return SI_OK;
}

/* ---- Constant / ConstantOfShape --------------------------------------------------------------------------- */

/* Which attribute of a Constant node holds the value: returns it, or NULL with an error status. */
static si_result constant_attr(const si_kctx *c, const si_attr **out) {
    static const char *const ok[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
    static const char *const bad[] = {"value_string", "value_strings", "sparse_value"};
    *out = NULL;
    for (size_t i = 0; i < SI_ARRAY_LEN(bad); i++)
        if (si_node_attr(c->node, bad[i]))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "attribute '%s' is not supported", bad[i]);
    for (size_t i = 0; i < SI_ARRAY_LEN(ok); i++) {
        const si_attr *a = si_node_attr(c->node, ok[i]);
        if (a) {
            /* the kind must match the name: infer and run read the field the name says */
            static const si_attr_type kinds[] = {SI_ATTR_TENSOR, SI_ATTR_FLOAT, SI_ATTR_FLOATS, SI_ATTR_INT, SI_ATTR_INTS};
            if (i > 0 && a->type != kinds[i])
                return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has the wrong kind (%d)", a->name, (int)a->type);
            *out = a;
            return SI_OK;
        }
    }
    return si_op_err(c, SI_ERR_INVALID_ARG, "no value attribute (value, value_float(s), value_int(s))");
}

static si_result constant_infer(si_kctx *c) {
    const si_attr *a;
    si_result s = constant_attr(c, &a);
    if (s) return s;
    if (!strcmp(a->name, "value")) {
        const si_tensor *t = a->t;
        if (a->type != SI_ATTR_TENSOR || !t)
            return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'value' is not a tensor");
        if (!si_dtype_valid(t->dtype))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "value of type %s is not supported", si_dtype_name(t->dtype));
        if (t->data == NULL && si_count(t) > 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'value' has no data");
        return si_set_out(c, 0, t->dtype, t->ndim, t->dims);
    }
    if (!strcmp(a->name, "value_float")) return si_set_out(c, 0, SI_F32, 0, NULL);
    if (!strcmp(a->name, "value_int")) return si_set_out(c, 0, SI_I64, 0, NULL);
    int64_t n = a->n;
    if (!strcmp(a->name, "value_floats")) return si_set_out(c, 0, SI_F32, 1, &n);
    return si_set_out(c, 0, SI_I64, 1, &n);
}

static si_result constant_run(si_kctx *c) {
    const si_attr *a;
    si_result s = constant_attr(c, &a);
    if (s) return s;
    si_tensor *o = c->out[0];
    if (o->nbytes == 0) return SI_OK;
    if (!strcmp(a->name, "value"))
        si_copy_data(o, a->t);
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

static si_result cos_value(const si_kctx *c, const si_tensor **val) {
    const si_tensor *t = si_attr_tensor(c->node, "value");
    *val = t;
    if (!t) return SI_OK;
    if (si_count(t) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'value' must hold exactly one element, has %lld",
                         (long long)si_count(t));
    if (!si_dtype_valid(t->dtype) || !t->data)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "attribute 'value' of type %s is not supported",
                         si_dtype_name(t->dtype));
    return SI_OK;
}

static si_result cos_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    const si_tensor *val, *sh = c->in[0];
    if ((s = cos_value(c, &val))) return s;
    if (!si_has_values(sh) && si_dtype_is_int(sh->dtype) && sh->ndim == 1) { /* compile time: the rank only */
        int64_t n = sh->dims[0];
        return si_set_out_unknown(c, 0, val ? val->dtype : SI_F32, si_dim_known(n) && n <= SI_MAX_DIMS ? (int)n : -1);
    }
    if ((s = si_need_input(c, 0, true))) return s;
    int64_t dims[SI_MAX_DIMS];
    int n;
    if ((s = si_tensor_shape(c, c->in[0], "input 'shape'", dims, &n))) return s;
    return si_set_out(c, 0, val ? val->dtype : SI_F32, n, dims);
}

static si_result cos_run(si_kctx *c) {
    const si_tensor *val;
    si_result s = cos_value(c, &val);
    if (s) return s;
    si_tensor *o = c->out[0];
    if (!val) /* default: float32 zeros, already zero-filled */
        return SI_OK;
    size_t es = si_esize(o);
    int64_t n = si_count(o);
    for (int64_t i = 0; i < n; i++) memcpy((char *)o->data + (size_t)i * es, val->data, es);
    return SI_OK;
}

/* ---- Range ------------------------------------------------------------------------------------------------ */

static si_result range_count(si_kctx *c, int64_t *count) {
    si_result s;
    if ((s = si_need_inputs(c, 3))) return s;
    si_dtype dt = c->in[0]->dtype;
    for (int i = 0; i < 3; i++) {
        if (c->in[i]->dtype != dt)
            return si_op_err(c, SI_ERR_INVALID_ARG, "start, limit and delta must have the same type");
        if (si_dim_ne(si_count(c->in[i]), 1)) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d must be a scalar", i);
    }
    if (!si_dtype_is_float(dt) && !si_dtype_is_int(dt))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "type %s is not supported", si_dtype_name(dt));
    if (!c->in[0]->data || !c->in[1]->data || !c->in[2]->data) { /* compile time: the count is known at run time */
        if (!c->partial) return si_op_err(c, SI_ERR_INVALID_ARG, "start, limit and delta need their values");
        *count = SI_DIM_UNKNOWN;
        return SI_OK;
    }
    int64_t n;
    if (si_dtype_is_float(dt)) {
        double st = si_load_f64(dt, c->in[0]->data, 0), lim = si_load_f64(dt, c->in[1]->data, 0),
               dl = si_load_f64(dt, c->in[2]->data, 0);
        if (dl == 0 || !isfinite(st) || !isfinite(lim) || !isfinite(dl))
            return si_op_err(c, SI_ERR_INVALID_ARG, "start, limit and delta must be finite, delta non-zero");
        double f = ceil((lim - st) / dl);
        if (f > 9.0e15) return si_op_err(c, SI_ERR_INVALID_ARG, "too many elements");
        n = f > 0 ? (int64_t)f : 0;
    } else {
        int64_t st = si_load_i64(dt, c->in[0]->data, 0), lim = si_load_i64(dt, c->in[1]->data, 0),
                dl = si_load_i64(dt, c->in[2]->data, 0);
        if (dl == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "delta must be non-zero");
        /* ceil((lim - st) / dl) in integers; refuse spans that could overflow int64 */
        double diff = (double)lim - (double)st;
        if (fabs(diff) > 9.0e15) return si_op_err(c, SI_ERR_INVALID_ARG, "range too large");
        int64_t d = lim - st;
        int64_t q = d / dl, rem = d % dl;
        if (rem != 0 && ((rem > 0) == (dl > 0))) q++;
        n = q > 0 ? q : 0;
    }
    *count = n;
    return SI_OK;
}

static si_result range_infer(si_kctx *c) {
    int64_t n;
    si_result s = range_count(c, &n);
    if (s) return s;
    return si_set_out(c, 0, c->in[0]->dtype, 1, &n);
}

static si_result range_run(si_kctx *c) {
    int64_t n;
    si_result s = range_count(c, &n);
    if (s) return s;
    si_dtype dt = c->in[0]->dtype;
    void *o = c->out[0]->data;
    if (si_dtype_is_float(dt)) {
        double st = si_load_f64(dt, c->in[0]->data, 0), dl = si_load_f64(dt, c->in[2]->data, 0);
        if (dt == SI_F32) {
            float fs = (float)st, fd = (float)dl;
            for (int64_t i = 0; i < n; i++) ((float *)o)[i] = fs + (float)i * fd;
        } else {
            for (int64_t i = 0; i < n; i++) si_store_f64(dt, o, i, st + (double)i * dl);
        }
    } else {
        int64_t st = si_load_i64(dt, c->in[0]->data, 0), dl = si_load_i64(dt, c->in[2]->data, 0);
        for (int64_t i = 0; i < n; i++) si_store_i64(dt, o, i, st + i * dl);
    }
    return SI_OK;
}

/* ---- OneHot ----------------------------------------------------------------------------------------------- */

static si_result onehot_params(si_kctx *c, int *ax, int64_t *depth) {
    si_result s;
    if ((s = si_need_inputs(c, 3)))
        return s;
    const si_tensor *ind = c->in[0], *dep = c->in[1], *val = c->in[2];
    if (!si_dtype_is_float(ind->dtype) && !si_dtype_is_int(ind->dtype))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "indices of type %s are not supported", si_dtype_name(ind->dtype));
    if (!si_dtype_is_float(dep->dtype) && !si_dtype_is_int(dep->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "depth must be numeric");
    if (si_dim_ne(si_count(val), 2))
        return si_op_err(c, SI_ERR_INVALID_ARG, "values must hold 2 elements [off, on], has %lld",
                         (long long)si_count(val));
    if (ind->ndim + 1 > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", ind->ndim + 1, SI_MAX_DIMS);
    if (c->partial && !si_has_values(dep)) { /* compile time: depth known at run time */
        *depth = SI_DIM_UNKNOWN;
        return si_axis(c, si_attr_int(c->node, "axis", -1), ind->ndim + 1, ax);
    }
    if ((s = si_need_input(c, 1, true)) || (s = si_tensor_scalar_i64(c, dep, "depth", depth))) return s;
    if (*depth < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "depth must be non-negative, got %lld", (long long)*depth);
    return si_axis(c, si_attr_int(c->node, "axis", -1), ind->ndim + 1, ax);
}

static si_result onehot_infer(si_kctx *c) {
    int ax;
    int64_t depth;
    si_result s = onehot_params(c, &ax, &depth);
    if (s) return s;
    const si_tensor *ind = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < ind->ndim; i++) {
        if (i == ax) dims[k++] = depth;
        dims[k++] = ind->dims[i];
    }
    if (ax == ind->ndim) dims[k++] = depth;
    return si_set_out(c, 0, c->in[2]->dtype, k, dims);
}

static si_result onehot_run(si_kctx *c) {
    int ax;
    int64_t depth;
    si_result s = onehot_params(c, &ax, &depth);
    if (s) return s;
    const si_tensor *ind = c->in[0], *val = c->in[2];
    si_tensor *o = c->out[0];
    size_t es = si_esize(val);
    int64_t outer = si_prod(ind->dims, 0, ax), inner = si_prod(ind->dims, ax, ind->ndim);
    const char *off_v = val->data, *on_v = (const char *)val->data + es;
    char *dst = o->data;
    if (si_count(o) == 0) return SI_OK;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t d = 0; d < depth; d++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t k = si_load_i64(ind->dtype, ind->data, a * inner + i);
                if (k < 0) k += depth;
                memcpy(dst + (size_t)((a * depth + d) * inner + i) * es, k == d ? on_v : off_v, es);
            }
    return SI_OK;
}

/* ---- EyeLike ---------------------------------------------------------------------------------------------- */

static si_result eyelike_dtype(si_kctx *c, si_dtype *dt) {
    *dt = c->in[0]->dtype;
    if (si_node_attr(c->node, "dtype")) {
        int64_t v = si_attr_int(c->node, "dtype", 0);
        if (v < 0 || v > 64 || !si_dtype_valid((si_dtype)v))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "dtype %lld is not supported", (long long)v);
        *dt = (si_dtype)v;
    }
    return SI_OK;
}

static si_result eyelike_infer(si_kctx *c) {
    si_result s;
    si_dtype dt;
    if ((s = si_need_input(c, 0, false)) || (s = eyelike_dtype(c, &dt))) return s;
    if (c->in[0]->ndim != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 2-D, got rank %d", c->in[0]->ndim);
    return si_set_out(c, 0, dt, 2, c->in[0]->dims);
}

static si_result eyelike_run(si_kctx *c) {
    si_tensor *o = c->out[0];
    int64_t k = si_attr_int(c->node, "k", 0);
    int64_t rows = o->dims[0], cols = o->dims[1];
    for (int64_t i = 0; i < rows; i++) {
        if (k >= cols || k <= -rows) /* no diagonal element (also keeps i + k from overflowing) */
            break;
        int64_t j = i + k;
        if (j >= 0 && j < cols) si_store_f64(o->dtype, o->data, i * cols + j, 1.0);
    }
    return SI_OK;
}

/* ---- table ------------------------------------------------------------------------------------------------ */

static const si_op_def defs[] = {
    {.id = SI_OP_SHAPE, .flags = SI_OPF_SHAPE_ONLY, .infer = shape_infer, .run = shape_run},
    {.id = SI_OP_SIZE, .flags = SI_OPF_SHAPE_ONLY, .infer = size_infer, .run = size_run},
    SI_OP_DEF(CONSTANT_OF_SHAPE, SI_T_INTS, cos_infer, cos_run),
    SI_OP_DEF(CONSTANT, 0, constant_infer, constant_run),
    SI_OP_DEF(IDENTITY, 0, identity_infer, identity_run),
    SI_OP_DEF(RANGE, SI_T_NUMERIC, range_infer, range_run),
    SI_OP_DEF(ONE_HOT, SI_T_NUMERIC, onehot_infer, onehot_run),
    SI_OP_DEF(EYE_LIKE, 0, eyelike_infer, eyelike_run),
};

SI_OP_FAMILY_PARTIAL(generate, defs);
