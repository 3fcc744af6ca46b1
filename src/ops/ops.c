/*
 * ops.c — the op registry (the per-group tables of elementwise.c, nn.c, reduce.c, tensor.c) and helpers
 * shared by op authors: axis normalisation, broadcasting, output shapes, reading small integer tensors.
 */
#include "ops/ops.h"

#include <stdarg.h>
#include <stdio.h>

static const si_op_def *const *const groups[] = {si_ops_elementwise, si_ops_nn, si_ops_tensor, si_ops_reduce};

static bool default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

const si_op_def *si_op_find(const char *domain, const char *op_type) {
    for (size_t g = 0; g < SI_ARRAY_LEN(groups); g++)
        for (const si_op_def *const *p = groups[g]; *p; p++) {
            bool dom_ok = default_domain((*p)->domain) ? default_domain(domain) : (domain && !strcmp(domain, (*p)->domain));
            if (dom_ok && !strcmp((*p)->name, op_type)) return *p;
        }
    return NULL;
}

const si_op_def *const *si_op_all(int *count) {
    static const si_op_def *all[512];
    static int n = -1;
    if (n < 0) { /* built once; racing threads write identical contents */
        int k = 0;
        for (size_t g = 0; g < SI_ARRAY_LEN(groups); g++)
            for (const si_op_def *const *p = groups[g]; *p && k < 512; p++) all[k++] = *p;
        n = k;
    }
    *count = n;
    return all;
}

si_result si_op_supported(const si_node *node, int n_in, const si_tensor *const *in) {
    const si_op_def *op = node->op;
    if (!op) return si_err(SI_ERR_UNSUPPORTED, "op %s%s%s is not implemented", node->domain[0] ? node->domain : "",
                           node->domain[0] ? "." : "", node->op_type);
    if (op->types && n_in > 0 && in[0] && in[0]->dtype != SI_DTYPE_UNDEFINED && !(op->types & SI_T(in[0]->dtype)))
        return si_err(SI_ERR_UNSUPPORTED, "op %s does not support element type %s", node->op_type,
                      si_dtype_name(in[0]->dtype));
    if (op->check) {
        si_kctx c = {.node = node, .opset = node->opset, .n_in = n_in, .in = in, .n_out = 0, .out = NULL};
        return op->check(&c);
    }
    return SI_OK;
}

// --- helpers --------------------------------------------------------------------------------------------

si_result si_op_err(const si_kctx *c, si_result s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return si_err(s, "%s (node '%s'): %s", c->node->op_type, c->node->name, msg);
}

si_result si_axis(const si_kctx *c, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= rank)
        return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return SI_OK;
}

si_result si_broadcast_shape(const si_kctx *c, int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                             int64_t *out) {
    int n = SI_MAX(na, nb);
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else {
            char sa[128], sb[128];
            return si_op_err(c, SI_ERR_INVALID_ARG, "shapes %s and %s cannot be broadcast",
                             si_shape_str(sa, sizeof sa, c->in[0] ? c->in[0]->dtype : SI_F32, na, a),
                             si_shape_str(sb, sizeof sb, c->in[0] ? c->in[0]->dtype : SI_F32, nb, b));
        }
    }
    *nout = n;
    return SI_OK;
}

void si_broadcast_strides(int nin, const int64_t *in, int nout, const int64_t *out, int64_t *strides) {
    int64_t s = 1;
    for (int i = nout - 1; i >= 0; i--) {
        int j = i - (nout - nin);
        if (j < 0) { strides[i] = 0; continue; }
        strides[i] = (in[j] == 1 && out[i] != 1) ? 0 : s;
        s *= in[j];
    }
}

si_result si_set_out(si_kctx *c, int k, si_dtype dt, int ndim, const int64_t *dims) {
    if (k >= c->n_out || !c->out[k]) return SI_OK;
    si_tensor *t = c->out[k];
    if (ndim < 0 || ndim > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", ndim, SI_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "output dimension %d is negative (%lld)", i, (long long)dims[i]);
    if (si_shape_count(ndim, dims) > INT64_MAX / 16) { /* the byte size would overflow */
        char sh[160];
        return si_op_err(c, SI_ERR_INVALID_ARG, "output shape %s is too large", si_shape_str(sh, sizeof sh, dt, ndim, dims));
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
    t->nbytes = (size_t)si_shape_count(ndim, dims) * si_dtype_size(dt);
    return SI_OK;
}

si_result si_same_as_input(si_kctx *c, int k, int i) {
    if (i >= c->n_in || !c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
    return si_set_out(c, k, c->in[i]->dtype, c->in[i]->ndim, c->in[i]->dims);
}

si_result si_need_input(const si_kctx *c, int i, bool need_data) {
    if (i >= c->n_in || !c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "required input %d is missing", i);
    if (need_data && !c->in[i]->data && c->in[i]->nbytes) return SI_SHAPE_DYNAMIC;
    return SI_OK;
}

si_result si_tensor_ints(const si_kctx *c, const si_tensor *t, int64_t **vals, int *n) {
    *vals = NULL;
    *n = 0;
    if (!si_dtype_is_int(t->dtype)) return si_op_err(c, SI_ERR_INVALID_ARG, "expected an integer tensor, got %s", si_dtype_name(t->dtype));
    if (t->ndim > 1) return si_op_err(c, SI_ERR_INVALID_ARG, "expected a 1-D tensor, got rank %d", t->ndim);
    if (!t->data && t->nbytes) return SI_SHAPE_DYNAMIC;
    int64_t cnt = si_shape_count(t->ndim, t->dims);
    if (cnt > (1 << 20)) return si_op_err(c, SI_ERR_INVALID_ARG, "integer list of %lld elements is too long", (long long)cnt);
    int64_t *v = si_malloc(sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
    if (!v) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (int64_t i = 0; i < cnt; i++) v[i] = si_load_i64(t->dtype, t->data, i);
    *vals = v;
    *n = (int)cnt;
    return SI_OK;
}
