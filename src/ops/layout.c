/*
 * layout.c — reference kernels for the ops that keep the elements and change the shape or the order: Reshape,
 * Squeeze, Unsqueeze, Flatten (same bytes, new shape), Transpose, Concat, Split and Slice. They copy bytes by
 * element size, so they work for every stored type, bool and float16 included.
 *
 * Every op computes its parameters in one "plan" function shared by infer and run, so that both agree.
 */
#include "ops/ops.h"

/* The arg of the versions of Reshape, Squeeze, Unsqueeze and Slice: the older ones read their parameters from
 * attributes, the newer ones from inputs. */
enum { LAYOUT_ATTRS, LAYOUT_INPUTS };

// --- strided copies --------------------------------------------------------------------------------------

/* Copy n elements of size es from src (element stride sstride, may be negative) to contiguous dst. */
static void copy_strided(void *dst, const void *src, int64_t n, int64_t sstride, size_t es) {
    if (sstride == 1) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    /* the loop for elements of type T, one per common element size */
#define COPY_STRIDED_AS(T)                                                                                     \
    {                                                                                                          \
        const T *s = src;                                                                                      \
        T *d = dst;                                                                                            \
        for (int64_t j = 0; j < n; j++) d[j] = s[j * sstride];                                                 \
        break;                                                                                                 \
    }
    switch (es) {
    case 1: COPY_STRIDED_AS(uint8_t)
    case 2: COPY_STRIDED_AS(uint16_t)
    case 4: COPY_STRIDED_AS(uint32_t)
    case 8: COPY_STRIDED_AS(uint64_t)
#undef COPY_STRIDED_AS
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
    int64_t total = si_prod(odims, 0, nd);
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
        si_next_offset(idx, odims, istr, nd - 1, &off);
    }
}

// --- Reshape, Squeeze, Unsqueeze, Flatten: same bytes, new shape ----------------------------------------

static si_result copy_all(si_kctx *c) {
    si_result s = si_run_ready(c);
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

/* The factors of a shape that are not known sizes: symbols (ids into sym[], at most SI_MAX_DIMS) and the
 * count of unknown ones; *known is the product of the known sizes. */
typedef struct factors {
    int64_t known;
    int sym[SI_MAX_DIMS], nsym, nunknown;
} factors;

static void factorize(int n, const int64_t *dims, int skip, factors *f) {
    f->known = 1;
    f->nsym = f->nunknown = 0;
    for (int i = 0; i < n; i++) {
        if (i == skip) continue;
        int id = si_dim_sym_id(dims[i]);
        if (dims[i] >= 0) f->known *= dims[i];
        else if (id >= 0) f->sym[f->nsym++] = id;
        else f->nunknown++;
    }
}

/* Compile time: Reshape's -1 where some dimension is a symbol or unknown. The symbols of the new shape cancel
 * those of the input; what is left is the -1: a size when only known sizes remain, a symbol when exactly that
 * symbol remains, else unknown. */
static int64_t reshape_free_dim(const si_tensor *x, int n, const int64_t *dims, int infer_at) {
    factors in, out;
    factorize(x->ndim, x->dims, -1, &in);
    factorize(n, dims, infer_at, &out);
    if (in.nunknown || out.nunknown || in.known == 0 || out.known == 0 || in.known % out.known) return SI_DIM_UNKNOWN;
    for (int i = 0; i < out.nsym; i++) {
        int j = 0;
        while (j < in.nsym && in.sym[j] != out.sym[i]) j++;
        if (j == in.nsym) return SI_DIM_UNKNOWN;
        in.sym[j] = in.sym[--in.nsym];
    }
    int64_t q = in.known / out.known;
    if (in.nsym == 0) return q;
    return in.nsym == 1 && q == 1 ? si_dim_sym(in.sym[0]) : SI_DIM_UNKNOWN;
}

/* Reshape-1 to -4 take the new shape as an attribute, Reshape-5 and later as an input. */
static si_result reshape_infer(si_kctx *c) {
    const bool shape_input = si_op_arg(c) == LAYOUT_INPUTS;
    const si_tensor *x;
    si_result s = si_input0(c, 0, NULL, &x);
    if (s) return s;
    int64_t shape[SI_MAX_DIMS];
    int n = 0;
    if (shape_input) {
        if ((s = si_need_input(c, 1, false))) return s;
        const si_tensor *st = c->in[1];
        if (!si_has_values(st) && si_dtype_is_int(st->dtype) && st->ndim <= 1) { /* compile time: rank only */
            int64_t len = st->ndim == 0 ? 1 : st->dims[0];
            return si_set_out_unknown(c, 0, x->dtype, si_dim_known(len) && len <= SI_MAX_DIMS ? (int)len : -1);
        }
        if ((s = si_tensor_ints(c, st, "input 'shape'", shape, SI_MAX_DIMS, &n))) return s;
    } else {
        if ((s = si_attr_ints_buf(c, "shape", shape, SI_MAX_DIMS, &n))) return s;
        if (n < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'shape' is missing");
    }
    bool allowzero = c->opset >= 14 && si_attr_int(c->node, "allowzero", 0) != 0;
    int64_t dims[SI_MAX_DIMS], known = 1, count = si_shape_count(x->ndim, x->dims);
    int infer_at = -1;
    bool has_zero = false, partial = count < 0; /* compile time: a dimension is a symbol or unknown */
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
        if (v < 0) partial = true;
        else known = v && known > INT64_MAX / v ? INT64_MAX : known * v; /* saturate: the counts then differ */
    }
    if (allowzero && has_zero && infer_at >= 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "shape has both 0 and -1 while allowzero is set");
    if (partial) {
        if (infer_at >= 0) dims[infer_at] = reshape_free_dim(x, n, dims, infer_at);
    } else if (infer_at >= 0) {
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

/* Squeeze and Unsqueeze take axes as an attribute before opset 13, as an input from 13 on (which Unsqueeze
 * requires): input 0 and the axes (na -1: not given). later: at compile time, the axes input's values are known only
 * at run time; na is then their count (-1: not known either). */
typedef struct sq_p {
    const si_tensor *x;
    int64_t axes[SI_MAX_DIMS];
    int na;
    bool later;
} sq_p;

static si_result sq_axes(si_kctx *c, sq_p *p) {
    const bool axes_input = si_op_arg(c) == LAYOUT_INPUTS, need = si_node_is(c->node, SI_OP_UNSQUEEZE);
    si_result s = si_input0(c, 0, NULL, &p->x);
    if (s || (axes_input && need && (s = si_need_input(c, 1, false)))) return s;
    if (axes_input && si_in(c, 1) && !si_has_values(c->in[1])) {
        const int64_t cnt = si_count(c->in[1]);
        p->later = true;
        p->na = cnt >= 0 && cnt <= SI_MAX_DIMS ? (int)cnt : -1;
        return SI_OK;
    }
    return si_node_axes(c, axes_input, p->axes, SI_MAX_DIMS, &p->na);
}

SI_OP_PLANNED(squeeze_infer, sq_p, p, sq_axes) {
    const si_tensor *x = p->x;
    int na = p->na;
    if (p->later) return si_set_out_unknown(c, 0, x->dtype, na > 0 && na <= x->ndim ? x->ndim - na : -1);
    if (na < 0) na = 0;
    bool sq[SI_MAX_DIMS];
    if (na == 0) {
        for (int i = 0; i < x->ndim; i++) {
            if (!si_dim_known(x->dims[i])) /* compile time: it may be 1 (a symbol too) */
                return si_set_out_unknown(c, 0, x->dtype, -1);
            sq[i] = x->dims[i] == 1;
        }
    } else {
        si_result s = si_axes_mask(c, p->axes, na, x->ndim, sq);
        if (s) return s;
        for (int i = 0; i < x->ndim; i++)
            if (sq[i] && si_dim_known(x->dims[i]) && x->dims[i] != 1)
                return si_op_err(c, SI_ERR_INVALID_ARG, "cannot squeeze axis %d of size %lld", i, (long long)x->dims[i]);
    }
    int64_t dims[SI_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!sq[i]) dims[nd++] = x->dims[i];
    return si_set_out(c, 0, x->dtype, nd, dims);
}

SI_OP_PLANNED(unsqueeze_infer, sq_p, p, sq_axes) {
    const si_tensor *x = p->x;
    const int na = p->na;
    if (p->later) return si_set_out_unknown(c, 0, x->dtype, na >= 0 && x->ndim + na <= SI_MAX_DIMS ? x->ndim + na : -1);
    if (na < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'axes' is missing");
    int rank = x->ndim + na;
    if (rank > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, SI_MAX_DIMS);
    bool ins[SI_MAX_DIMS];
    si_result s = si_axes_mask(c, p->axes, na, rank, ins);
    if (s) return s;
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0, j = 0; i < rank; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    return si_set_out(c, 0, x->dtype, rank, dims);
}

static si_result flatten_infer(si_kctx *c) {
    const si_tensor *x;
    si_result s = si_input0(c, 0, NULL, &x);
    if (s) return s;
    int64_t axis = si_attr_int(c->node, "axis", 1);
    int64_t lo = c->opset >= 11 ? -(int64_t)x->ndim : 0;
    if (axis < lo || axis > x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is out of range [%lld, %d] for rank %d", (long long)axis,
                         (long long)lo, x->ndim, x->ndim);
    if (axis < 0) axis += x->ndim;
    int64_t dims[2] = {si_prod(x->dims, 0, (int)axis), si_prod(x->dims, (int)axis, x->ndim)};
    return si_set_out(c, 0, x->dtype, 2, dims);
}

// --- Transpose ------------------------------------------------------------------------------------------

static si_result transpose_plan(const si_kctx *c, int *perm) {
    const si_tensor *x;
    si_result s = si_input0(c, 0, NULL, &x);
    if (s) return s;
    int64_t pv[SI_MAX_DIMS];
    int n = 0;
    if ((s = si_attr_ints_buf(c, "perm", pv, SI_MAX_DIMS, &n))) return s;
    if (n <= 0) {
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
    if (s || (s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    int64_t istr[SI_MAX_DIMS], dims[SI_MAX_DIMS], str[SI_MAX_DIMS];
    si_strides(x->ndim, x->dims, istr);
    for (int i = 0; i < x->ndim; i++) {
        dims[i] = x->dims[perm[i]];
        str[i] = istr[perm[i]];
    }
    gather_copy(c->out[0]->data, x->data, si_dtype_size(x->dtype), x->ndim, dims, str, 0);
    return SI_OK;
}

// --- Concat ---------------------------------------------------------------------------------------------

static si_result concat_plan(const si_kctx *c, int *axis, int64_t *out_dims) {
    if (c->n_in < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "needs at least one input");
    for (int i = 0; i < c->n_in; i++)
        if (!c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
    const si_tensor *x = c->in[0];
    si_result s = si_check_type(c, x->dtype, 0, NULL);
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
            if (d != *axis && si_dim_ne(t->dims[d], x->dims[d])) ok = false;
        if (!ok) {
            char a[160], b[160];
            return si_op_err(c, SI_ERR_INVALID_ARG, "input %d %s does not match input 0 %s outside axis %d", i,
                             si_shape_str(a, sizeof a, t->dtype, t->ndim, t->dims),
                             si_shape_str(b, sizeof b, x->dtype, x->ndim, x->dims), *axis);
        }
        for (int d = 0; d < x->ndim; d++) /* compile time: what one input does not know another may */
            if (d != *axis) out_dims[d] = si_dim_merge(out_dims[d], t->dims[d]);
        out_dims[*axis] = si_dim_add(out_dims[*axis], t->dims[*axis]);
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
    if (s || (s = si_run_ready(c))) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    size_t es = si_dtype_size(x->dtype);
    int64_t outer = si_prod(dims, 0, axis), inner = si_prod(dims, axis + 1, x->ndim);
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

// --- Split ----------------------------------------------------------------------------------------------

/* The axis, and the length of every output along it (sz: n_out entries; the op function frees it). */
typedef struct split_p {
    int axis;
    int64_t *sz;
} split_p;

static si_result split_plan(const si_kctx *c, split_p *p) {
    p->sz = NULL;
    const si_tensor *x;
    si_result s = si_input0(c, 0, NULL, &x);
    if (s) return s;
    if (c->n_out < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "needs at least one output");
    if ((s = si_axis(c, si_attr_int(c->node, "axis", 0), x->ndim, &p->axis))) return s;
    int64_t dim = x->dims[p->axis], *sz = si_malloc(sizeof(int64_t) * (size_t)c->n_out);
    if (!sz) return si_err(SI_ERR_NO_MEM, "out of memory in Split");
    int n = 0;
    bool given = false;
    if (c->opset >= 13 && si_in(c, 1) && !si_has_values(c->in[1]) && si_count(c->in[1]) != 0) {
        for (int i = 0; i < c->n_out; i++) sz[i] = SI_DIM_UNKNOWN; /* compile time: sizes known at run time */
        p->sz = sz;
        return SI_OK;
    }
    if (c->opset >= 13) {
        if (si_in(c, 1)) {
            s = si_tensor_ints(c, c->in[1], "input 'split'", sz, c->n_out, &n);
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
        if (!s && si_dim_ne(sum, dim))
            s = si_op_err(c, SI_ERR_INVALID_ARG, "split sizes add up to %lld, axis %d has %lld", (long long)sum, p->axis,
                          (long long)dim);
    } else if (!s && has_num) {
        int64_t num = si_attr_int(c->node, "num_outputs", 0);
        if (num != c->n_out)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "num_outputs = %lld but the node has %d outputs", (long long)num, c->n_out);
        int64_t chunk = num > 0 ? si_dim_div(dim, num, true) : 0;
        for (int i = 0; !s && i < c->n_out; i++)
            sz[i] = i < c->n_out - 1 ? chunk : si_dim_sub(dim, si_dim_mul(chunk, c->n_out - 1));
        if (!s && si_dim_known(dim) && sz[c->n_out - 1] < 0)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "axis of size %lld cannot be split into %lld chunks", (long long)dim,
                          (long long)num);
    } else if (!s) {
        if (si_dim_known(dim) && dim % c->n_out != 0)
            s = si_op_err(c, SI_ERR_INVALID_ARG, "axis of size %lld does not split into %d equal parts", (long long)dim,
                          c->n_out);
        for (int i = 0; !s && i < c->n_out; i++) sz[i] = si_dim_div(dim, c->n_out, false);
    }
    if (s) {
        si_free(sz);
        return s;
    }
    p->sz = sz;
    return SI_OK;
}

SI_OP_PLANNED(split_infer, split_p, p, split_plan) {
    const int axis = p->axis;
    int64_t *sz = p->sz;
    si_result s = SI_OK;
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

SI_OP_PLANNED(split_run, split_p, p, split_plan) {
    const int axis = p->axis;
    int64_t *sz = p->sz;
    si_result s = si_run_ready(c);
    if (s) {
        si_free(sz);
        return s;
    }
    const si_tensor *x = c->in[0];
    size_t es = si_dtype_size(x->dtype);
    int64_t outer = si_prod(x->dims, 0, axis), inner = si_prod(x->dims, axis + 1, x->ndim);
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

// --- Slice ----------------------------------------------------------------------------------------------

typedef struct splan {
    int rank;
    int64_t start[SI_MAX_DIMS], step[SI_MAX_DIMS], len[SI_MAX_DIMS];
} splan;

/* An end at least this large is past the end of any dimension (sizes stay below 2^40 elements). */
#define SI_SLICE_TO_END ((int64_t)1 << 40)

/* Compile time, starts/ends/axes/steps not known: the sliced axes' lengths are not known (every axis when the
 * axes are not known either). */
static si_result slice_values_unknown(const si_kctx *c, splan *p) {
    const si_tensor *x = c->in[0], *ta = si_in(c, 3);
    int64_t axes[SI_MAX_DIMS];
    int na = -1;
    p->rank = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->len[d] = ta && si_has_values(ta) ? x->dims[d] : SI_DIM_UNKNOWN;
    }
    if (ta && si_has_values(ta)) {
        si_result s = si_tensor_ints(c, ta, "input 'axes'", axes, SI_MAX_DIMS, &na);
        if (s) return s;
        for (int i = 0; i < na; i++) {
            int a;
            if ((s = si_axis(c, axes[i], x->ndim, &a))) return s;
            p->len[a] = SI_DIM_UNKNOWN;
        }
    }
    return SI_OK;
}

/* Slice-1 to -9 take starts/ends/axes as attributes, Slice-10 and later starts/ends/axes/steps as inputs. */
static si_result slice_plan(const si_kctx *c, splan *p) {
    const bool inputs = si_op_arg(c) == LAYOUT_INPUTS;
    const si_tensor *x;
    si_result s = si_input0(c, 0, NULL, &x);
    if (s) return s;
    int64_t starts[SI_MAX_DIMS], ends[SI_MAX_DIMS], axes[SI_MAX_DIMS], steps[SI_MAX_DIMS];
    int ns = 0, ne = 0, na = -1, nst = -1;
    if (inputs) {
        if ((s = si_need_input(c, 1, false)) || (s = si_need_input(c, 2, false))) return s;
        if (!si_has_values(c->in[1]) || !si_has_values(c->in[2]) || (si_in(c, 3) && !si_has_values(c->in[3])) ||
            (si_in(c, 4) && !si_has_values(c->in[4])))
            return slice_values_unknown(c, p);
        if ((s = si_tensor_ints(c, c->in[1], "input 'starts'", starts, SI_MAX_DIMS, &ns))) return s;
        if ((s = si_tensor_ints(c, c->in[2], "input 'ends'", ends, SI_MAX_DIMS, &ne))) return s;
        if (si_in(c, 3) && (s = si_tensor_ints(c, c->in[3], "input 'axes'", axes, SI_MAX_DIMS, &na))) return s;
        if (si_in(c, 4) && (s = si_tensor_ints(c, c->in[4], "input 'steps'", steps, SI_MAX_DIMS, &nst))) return s;
    } else {
        if ((s = si_attr_ints_buf(c, "starts", starts, SI_MAX_DIMS, &ns)) ||
            (s = si_attr_ints_buf(c, "ends", ends, SI_MAX_DIMS, &ne)) ||
            (s = si_attr_ints_buf(c, "axes", axes, SI_MAX_DIMS, &na)))
            return s;
        if (ns < 0 || ne < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "attributes 'starts' and 'ends' are required");
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
        if (!si_dim_known(dim)) { /* compile time: known only when the slice runs to the end of any size */
            p->len[a] = step == 1 && st >= 0 && en >= SI_SLICE_TO_END ? si_dim_sub(dim, st) : SI_DIM_UNKNOWN;
            continue;
        }
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

SI_OP_PLANNED(slice_infer, splan, p, slice_plan) {
    return si_set_out(c, 0, c->in[0]->dtype, p->rank, p->len);
}

SI_OP_PLANNED(slice_run, splan, p, slice_plan) {
    si_result s = si_run_ready(c);
    if (s) return s;
    const si_tensor *x = c->in[0];
    if (!c->out[0]) return SI_OK;
    int64_t istr[SI_MAX_DIMS], str[SI_MAX_DIMS], base = 0;
    si_strides(x->ndim, x->dims, istr);
    for (int d = 0; d < p->rank; d++) {
        base += p->start[d] * istr[d];
        str[d] = p->step[d] * istr[d];
    }
    gather_copy(c->out[0]->data, x->data, si_dtype_size(x->dtype), p->rank, p->len, str, base);
    return SI_OK;
}

// --- table ----------------------------------------------------------------------------------------------

static const si_op_def defs[] = {
    SI_OP_VERSION_ARG(RESHAPE, 0, 4, 0, reshape_infer, copy_all, LAYOUT_ATTRS),
    SI_OP_VERSION_ARG(RESHAPE, 5, 0, 0, reshape_infer, copy_all, LAYOUT_INPUTS),
    SI_OP_DEF(TRANSPOSE, 0, transpose_infer, transpose_run),
    SI_OP_DEF(CONCAT, 0, concat_infer, concat_run),
    SI_OP_DEF(SPLIT, 0, split_infer, split_run),
    SI_OP_VERSION_ARG(SLICE, 0, 9, 0, slice_infer, slice_run, LAYOUT_ATTRS),
    SI_OP_VERSION_ARG(SLICE, 10, 0, 0, slice_infer, slice_run, LAYOUT_INPUTS),
    SI_OP_VERSION_ARG(SQUEEZE, 0, 12, 0, squeeze_infer, copy_all, LAYOUT_ATTRS),
    SI_OP_VERSION_ARG(SQUEEZE, 13, 0, 0, squeeze_infer, copy_all, LAYOUT_INPUTS),
    SI_OP_VERSION_ARG(UNSQUEEZE, 0, 12, 0, unsqueeze_infer, copy_all, LAYOUT_ATTRS),
    SI_OP_VERSION_ARG(UNSQUEEZE, 13, 0, 0, unsqueeze_infer, copy_all, LAYOUT_INPUTS),
    SI_OP_DEF(FLATTEN, 0, flatten_infer, copy_all),
};

SI_OP_FAMILY_PARTIAL(layout, defs);
