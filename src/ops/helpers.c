/*
 * helpers.c — what op authors share (declared in ops.h): error messages naming the node, reading inputs and
 * attributes (presence, integer lists, type checks), axes, broadcasting, output shapes and whole-tensor
 * conversions. One copy of each, for every family file and for devices that read nodes the same way.
 */
#include "ops/ops.h"

#include <stdarg.h>
#include <stdio.h>

si_result si_node_err(const si_node *n, si_result s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return si_err(s, "%s (node '%s'): %s", n->op_type, n->name ? n->name : "", msg);
}

si_result si_op_nomem(const si_kctx *c) { return si_op_err(c, SI_ERR_NO_MEM, "out of memory"); }

/* Values needed but not known: at compile time the node's outputs stay unknown (UNSUPPORTED tells shape
 * inference so); at run time it is the caller's mistake. */
static si_result values_missing(const si_kctx *c, const char *what) {
    if (c->partial) return si_op_err(c, SI_ERR_UNSUPPORTED, "the values of %s are only known at run time", what);
    return si_op_err(c, SI_ERR_INVALID_ARG, "%s has no data", what);
}

// --- inputs and attributes ------------------------------------------------------------------------------

si_result si_need_input(const si_kctx *c, int i, bool need_data) {
    const si_tensor *t = si_in(c, i);
    if (!t) return si_op_err(c, SI_ERR_INVALID_ARG, "required input %d is missing", i);
    if (t->ndim < 0 || t->ndim > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has an invalid rank %d", i, t->ndim);
    if (need_data && !si_has_values(t)) {
        char what[32];
        snprintf(what, sizeof what, "input %d", i);
        return values_missing(c, what);
    }
    return SI_OK;
}

si_result si_need_inputs(const si_kctx *c, int n) {
    si_result s = SI_OK;
    for (int i = 0; i < n && !s; i++) s = si_need_input(c, i, false);
    return s;
}

si_result si_inputs_typed(const si_kctx *c, int n_req, int n, const uint32_t *types, const char *const *names) {
    si_result s = si_need_inputs(c, n_req);
    for (int i = 0; i < n && !s; i++) {
        const si_tensor *t = si_in(c, i);
        if (!t || !types[i]) continue;
        s = types[i] == SI_T_LIKE0 ? si_same_type(c, c->in[0], t, names[i]) : si_check_type(c, t->dtype, types[i], names[i]);
    }
    return s;
}

si_result si_check_type(const si_kctx *c, si_dtype dt, uint32_t mask, const char *what) {
    /* mask 0 is any type but the narrow ones, which an op accepts only where it names them */
    if (!si_dtype_valid(dt) || (int)dt >= 32 || (mask && !(mask & SI_T(dt))) || (!mask && si_dtype_is_narrow(dt))) {
        if (what) return si_op_err(c, SI_ERR_UNSUPPORTED, "%s: element type %s is not supported", what, si_dtype_name(dt));
        return si_op_err(c, SI_ERR_UNSUPPORTED, "element type %s is not supported", si_dtype_name(dt));
    }
    return SI_OK;
}

si_result si_input0(const si_kctx *c, uint32_t mask, const char *what, const si_tensor **x) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    *x = c->in[0];
    return si_check_type(c, (*x)->dtype, mask, what);
}

si_result si_same_type(const si_kctx *c, const si_tensor *a, const si_tensor *b, const char *what) {
    if (a->dtype != b->dtype)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has element type %s, expected %s like the first input", what,
                         si_dtype_name(b->dtype), si_dtype_name(a->dtype));
    return SI_OK;
}

si_result si_run_ready(const si_kctx *c) {
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && !c->in[i]->data && si_shape_count(c->in[i]->ndim, c->in[i]->dims) > 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has no data", i);
    for (int k = 0; k < c->n_out; k++)
        if (c->out[k] && !c->out[k]->data && si_shape_count(c->out[k]->ndim, c->out[k]->dims) > 0)
            return si_op_err(c, SI_ERR_INTERNAL, "output %d is not allocated", k);
    return SI_OK;
}

si_result si_run_begin(const si_kctx *c, si_tensor **y) {
    si_tensor *t = si_out(c, 0);
    *y = t && si_count(t) != 0 ? t : NULL;
    return si_run_ready(c);
}

si_result si_outputs_typed(const si_kctx *c) {
    for (int k = 0; k < c->n_out; k++)
        if (c->node->out[k] >= 0 && c->out[k] && c->out[k]->dtype == SI_DTYPE_UNDEFINED)
            return si_op_err(c, SI_ERR_INVALID_ARG, "output %d is not one the op produces (the node names %d outputs)", k,
                             c->n_out);
    return SI_OK;
}

/* The checks shared by the two readers of integer lists: an integer tensor of rank <= 1. */
static si_result ints_check(const si_kctx *c, const si_tensor *t, const char *what) {
    if (!si_dtype_is_int(t->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be an integer tensor, got %s", what, si_dtype_name(t->dtype));
    if (t->ndim > 1) return si_op_err(c, SI_ERR_INVALID_ARG, "%s must be 1-D, got rank %d", what, t->ndim);
    return SI_OK;
}

si_result si_tensor_ints(const si_kctx *c, const si_tensor *t, const char *what, int64_t *buf, int cap, int *n) {
    *n = 0;
    si_result s = ints_check(c, t, what);
    if (s) return s;
    int64_t cnt = si_shape_count(t->ndim, t->dims);
    if (cnt > cap)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, at most %d are allowed here", what, (long long)cnt,
                         cap);
    if (!si_has_values(t)) return values_missing(c, what);
    for (int64_t k = 0; k < cnt; k++) buf[k] = si_load_i64(t->dtype, t->data, k);
    *n = (int)cnt;
    return SI_OK;
}

si_result si_tensor_ints_alloc(const si_kctx *c, const si_tensor *t, const char *what, int64_t **vals, int64_t *n) {
    *vals = NULL;
    *n = 0;
    si_result s = ints_check(c, t, what);
    if (s) return s;
    int64_t cnt = si_shape_count(t->ndim, t->dims);
    if (!si_has_values(t)) return values_missing(c, what);
    int64_t *v = si_malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof(int64_t));
    if (!v) return si_op_nomem(c);
    for (int64_t k = 0; k < cnt; k++) v[k] = si_load_i64(t->dtype, t->data, k);
    *vals = v;
    *n = cnt;
    return SI_OK;
}

si_result si_tensor_scalar_i64(const si_kctx *c, const si_tensor *t, const char *what, int64_t *v) {
    if (si_dim_ne(si_count(t), 1))
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s must hold exactly one value, got %lld", what, (long long)si_count(t));
    if (!t->data) return values_missing(c, what);
    *v = si_load_i64(t->dtype, t->data, 0);
    return SI_OK;
}

si_result si_tensor_shape(const si_kctx *c, const si_tensor *t, const char *what, int64_t *dims, int *n) {
    *n = 0;
    if (si_count(t) > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%s has %lld values: ranks above %d are not supported", what,
                         (long long)si_count(t), SI_MAX_DIMS);
    si_result s = si_tensor_ints(c, t, what, dims, SI_MAX_DIMS, n);
    for (int i = 0; !s && i < *n; i++)
        if (dims[i] < 0)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "negative dimension %lld in %s", (long long)dims[i], what);
    return s;
}

int si_attr_ints_copy(const si_node *n, const char *name, int64_t *buf, int cap) {
    int cnt = 0;
    const int64_t *v = si_attr_ints(n, name, &cnt);
    if (!si_node_attr(n, name)) return -1;
    if (cnt > cap) return cnt;
    for (int k = 0; k < cnt; k++) buf[k] = v[k];
    return cnt;
}

si_result si_attr_ints_buf(const si_kctx *c, const char *name, int64_t *buf, int cap, int *n) {
    *n = si_attr_ints_copy(c->node, name, buf, cap);
    if (*n > cap) {
        int cnt = *n;
        *n = 0;
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has %d values, at most %d are allowed here", name, cnt, cap);
    }
    return SI_OK;
}

si_result si_attr_choice(const si_kctx *c, const char *attr, const char *dflt, const char *const *names, int n,
                         int *out) {
    const char *s = si_attr_str(c->node, attr, dflt);
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return SI_OK;
        }
    return si_op_err(c, SI_ERR_INVALID_ARG, "unsupported %s '%s'", attr, s);
}

si_result si_node_axes(const si_kctx *c, bool from_input, int64_t *axes, int cap, int *n) {
    *n = -1;
    if (!from_input) return si_attr_ints_buf(c, "axes", axes, cap, n);
    const si_tensor *t = si_in(c, 1);
    return t ? si_tensor_ints(c, t, "input 'axes'", axes, cap, n) : SI_OK;
}

si_result si_attr_ints_n(const si_kctx *c, const char *name, int n, int64_t dflt, int64_t *out) {
    int cnt = 0;
    const int64_t *v = si_attr_ints(c->node, name, &cnt);
    if (!v || cnt == 0) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return SI_OK;
    }
    if (cnt != n) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has %d values, expected %d", name, cnt, n);
    memcpy(out, v, (size_t)n * sizeof(int64_t));
    return SI_OK;
}

// --- axes, shapes, broadcasting --------------------------------------------------------------------------

si_result si_axis(const si_kctx *c, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= rank)
        return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return SI_OK;
}

si_result si_axes_mask(const si_kctx *c, const int64_t *axes, int n, int rank, bool *mask) {
    for (int i = 0; i < rank; i++) mask[i] = false;
    for (int i = 0; i < n; i++) {
        int a = 0;
        si_result s = si_axis(c, axes[i], rank, &a);
        if (s) return s;
        if (mask[a]) return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is given twice", (long long)axes[i]);
        mask[a] = true;
    }
    return SI_OK;
}

int64_t si_prod(const int64_t *dims, int from, int to) { return si_dim_prod(dims, from, to); }

void si_strides(int rank, const int64_t *dims, int64_t *str) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        str[i] = s;
        s *= dims[i];
    }
}

int si_gather_dims(int xr, const int64_t *xd, int axis, int ir, const int64_t *id, int64_t *out) {
    const int nd = xr - 1 + ir;
    if (nd > SI_MAX_DIMS) return nd;
    int k = 0;
    for (int i = 0; i < axis; i++) out[k++] = xd[i];
    for (int i = 0; i < ir; i++) out[k++] = id[i];
    for (int i = axis + 1; i < xr; i++) out[k++] = xd[i];
    return nd;
}

int si_broadcast_dims(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out) {
    int n = SI_MAX(na, nb);
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (!si_dim_broadcast(da, db, &out[i])) return -1 - i;
    }
    return n;
}

si_result si_broadcast_shape(const si_kctx *c, int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                             int64_t *out) {
    int n = si_broadcast_dims(na, a, nb, b, out);
    if (n < 0) {
        char sa[128], sb[128];
        return si_op_err(c, SI_ERR_INVALID_ARG, "shapes %s and %s cannot be broadcast",
                         si_shape_str(sa, sizeof sa, c->in[0] ? c->in[0]->dtype : SI_F32, na, a),
                         si_shape_str(sb, sizeof sb, c->in[0] ? c->in[0]->dtype : SI_F32, nb, b));
    }
    *nout = n;
    return SI_OK;
}

void si_broadcast_strides(int nin, const int64_t *in, int nout, const int64_t *out, int64_t *strides) {
    int64_t s = 1;
    for (int i = nout - 1; i >= 0; i--) {
        int j = i - (nout - nin);
        if (j < 0) {
            strides[i] = 0;
            continue;
        }
        strides[i] = (in[j] == 1 && out[i] != 1) ? 0 : s;
        s *= in[j];
    }
}

si_result si_unibroadcast_check(const si_kctx *c, const si_tensor *t, int r, const int64_t *dims, const char *what) {
    bool ok = t->ndim <= r;
    for (int i = 0; ok && i < t->ndim; i++) {
        int64_t td = t->dims[t->ndim - 1 - i], xd = dims[r - 1 - i];
        if (td != 1 && si_dim_ne(td, xd)) ok = false;
    }
    if (!ok) {
        char a[96], b[96];
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s of shape %s cannot be broadcast to %s", what,
                         si_shape_str(a, sizeof a, t->dtype, t->ndim, t->dims), si_shape_str(b, sizeof b, t->dtype, r, dims));
    }
    return SI_OK;
}

double *si_broadcast_to_f64(const si_tensor *t, int r, const int64_t *dims) {
    int64_t n = si_prod(dims, 0, r), st[SI_MAX_DIMS], idx[SI_MAX_DIMS] = {0};
    double *out = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!out) return NULL;
    si_broadcast_strides(t->ndim, t->dims, r, dims, st);
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        out[i] = si_load_f64(t->dtype, t->data, off);
        si_next_offset(idx, dims, st, r, &off);
    }
    return out;
}

si_result si_set_out(si_kctx *c, int k, si_dtype dt, int ndim, const int64_t *dims) {
    if (k >= c->n_out || !c->out[k]) return SI_OK;
    si_tensor *t = c->out[k];
    if (ndim < 0 || ndim > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", ndim, SI_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0 && !(c->partial && si_dim_valid(dims[i])))
            return si_op_err(c, SI_ERR_INVALID_ARG, "output dimension %d is negative (%lld)", i, (long long)dims[i]);
    if (si_dims_known(ndim, dims) && si_shape_count(ndim, dims) > INT64_MAX / 16) { /* the byte size would overflow */
        char sh[160];
        return si_op_err(c, SI_ERR_INVALID_ARG, "output shape %s is too large", si_shape_str(sh, sizeof sh, dt, ndim, dims));
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
    int64_t n = si_shape_count(ndim, dims);
    t->nbytes = n > 0 ? (size_t)n * si_dtype_size(dt) : 0;
    return SI_OK;
}

si_result si_set_out_unknown(si_kctx *c, int k, si_dtype dt, int ndim) {
    if (k >= c->n_out || !c->out[k]) return SI_OK;
    if (!c->partial) return si_op_err(c, SI_ERR_INTERNAL, "output %d: shape not known at run time", k);
    if (ndim < 0) {
        si_tensor *t = c->out[k];
        t->dtype = dt;
        t->ndim = -1;
        t->nbytes = 0;
        return SI_OK;
    }
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < ndim && i < SI_MAX_DIMS; i++) dims[i] = SI_DIM_UNKNOWN;
    return si_set_out(c, k, dt, ndim, dims);
}

si_result si_same_as_input(si_kctx *c, int k, int i) {
    if (i >= c->n_in || !c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
    return si_set_out(c, k, c->in[i]->dtype, c->in[i]->ndim, c->in[i]->dims);
}

// --- whole-tensor conversions ---------------------------------------------------------------------------

double *si_tensor_to_f64(const si_tensor *t) {
    int64_t n = si_shape_count(t->ndim, t->dims);
    double *d = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!d) return NULL;
    if (n > 0 && t->dtype == SI_F32) {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = p[i];
    } else if (n > 0 && t->dtype == SI_F64) {
        memcpy(d, t->data, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++) d[i] = si_load_f64(t->dtype, t->data, i);
    }
    return d;
}

float *si_tensor_to_f32(const si_tensor *t) {
    int64_t n = si_shape_count(t->ndim, t->dims);
    float *d = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!d) return NULL;
    if (n > 0 && t->dtype == SI_F32) {
        memcpy(d, t->data, (size_t)n * sizeof(float));
    } else if (t->dtype == SI_F16) {
        const uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = si_f16_to_f32(p[i]);
    } else if (t->dtype == SI_BF16) {
        const uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = si_bf16_to_f32(p[i]);
    } else {
        for (int64_t i = 0; i < n; i++) d[i] = (float)si_load_f64(t->dtype, t->data, i);
    }
    return d;
}

int64_t *si_tensor_to_i64(const si_tensor *t) {
    int64_t n = si_shape_count(t->ndim, t->dims);
    int64_t *d = si_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) d[i] = si_load_i64(t->dtype, t->data, i);
    return d;
}

void si_tensor_from_f64(si_tensor *t, const double *v) {
    int64_t n = si_shape_count(t->ndim, t->dims);
    if (n <= 0 || !t->data) return;
    if (t->dtype == SI_F32) {
        float *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = (float)v[i];
    } else if (t->dtype == SI_F64) {
        memcpy(t->data, v, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++) si_store_f64(t->dtype, t->data, i, v[i]);
    }
}

void si_tensor_from_f32(si_tensor *t, const float *v) {
    int64_t n = si_shape_count(t->ndim, t->dims);
    if (n <= 0 || !t->data) return;
    if (t->dtype == SI_F32) {
        memcpy(t->data, v, (size_t)n * sizeof(float));
    } else if (t->dtype == SI_F16) {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = si_f32_to_f16(v[i]);
    } else if (t->dtype == SI_BF16) {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = si_f32_to_bf16(v[i]);
    } else {
        for (int64_t i = 0; i < n; i++) si_store_f64(t->dtype, t->data, i, (double)v[i]);
    }
}
