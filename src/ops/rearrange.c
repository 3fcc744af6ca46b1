/*
 * rearrange.c — reference kernels for the ops that copy elements into a new arrangement: Expand, Tile, Trilu,
 * DepthToSpace, SpaceToDepth and ReverseSequence. They copy bytes by element size, so they work for every
 * stored type.
 */
#include "ops/ops.h"

#include <math.h>

/* ---- Expand ----------------------------------------------------------------------------------------------- */

static si_result expand_infer(si_kctx *c) {
    si_result s;
    int64_t shape[SI_MAX_DIMS], out[SI_MAX_DIMS];
    int n, nout;
    if ((s = si_need_inputs(c, 2))) return s;
    const si_tensor *st = c->in[1];
    if (!si_has_values(st) && st->ndim == 1 && si_dim_known(st->dims[0]) && st->dims[0] <= SI_MAX_DIMS) {
        /* compile time: the shape's length is known, its values are not */
        n = (int)st->dims[0];
        for (int i = 0; i < n; i++) shape[i] = SI_DIM_UNKNOWN;
        if ((s = si_broadcast_shape(c, c->in[0]->ndim, c->in[0]->dims, n, shape, &nout, out))) return s;
        return si_set_out(c, 0, c->in[0]->dtype, nout, out);
    }
    if ((s = si_need_input(c, 1, true))) return s;
    if ((s = si_tensor_shape(c, c->in[1], "input 'shape'", shape, &n)) ||
        (s = si_broadcast_shape(c, c->in[0]->ndim, c->in[0]->dims, n, shape, &nout, out)))
        return s;
    return si_set_out(c, 0, c->in[0]->dtype, nout, out);
}

/* Copy `in` into `out` with numpy broadcasting (out's shape is the broadcast shape). */
static void broadcast_copy(const si_tensor *in, si_tensor *out) {
    size_t es = si_esize(out);
    int nd = out->ndim;
    int64_t total = si_count(out);
    if (total == 0) return;
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
        for (int d = 0; d < nd - 1; d++) off += idx[d] * st[d];
        if (istr == 1 || inner == 1) {
            memcpy(dst + (size_t)o * es, src + (size_t)off * es, (size_t)inner * es);
        } else {
            for (int64_t j = 0; j < inner; j++) memcpy(dst + (size_t)(o + j) * es, src + (size_t)off * es, es);
        }
        si_next_index(idx, out->dims, nd - 1);
    }
}

static si_result expand_run(si_kctx *c) {
    broadcast_copy(c->in[0], c->out[0]);
    return SI_OK;
}

/* ---- Tile ------------------------------------------------------------------------------------------------- */

/* The per-dimension repeat counts (rank entries). Opset >= 6: input 'repeats'; opset 1: 'tiles' + 'axis'. */
static si_result tile_repeats(si_kctx *c, int64_t *rep) {
    si_result s;
    const si_tensor *x = c->in[0];
    if ((s = si_need_input(c, 1, true))) return s;
    if (c->opset < 6 && c->n_in >= 3) {
        if ((s = si_need_input(c, 2, true))) return s;
        int64_t tiles = 0, axis = 0;
        int ax;
        if ((s = si_tensor_scalar_i64(c, c->in[1], "input 'tiles'", &tiles)) ||
            (s = si_tensor_scalar_i64(c, c->in[2], "input 'axis'", &axis)) || (s = si_axis(c, axis, x->ndim, &ax)))
            return s;
        for (int d = 0; d < x->ndim; d++) rep[d] = d == ax ? tiles : 1;
    } else {
        int64_t *v, n;
        if ((s = si_tensor_ints_alloc(c, c->in[1], "input 'repeats'", &v, &n))) return s;
        if (n != x->ndim) {
            si_free(v);
            return si_op_err(c, SI_ERR_INVALID_ARG, "'repeats' has %lld entries, input rank is %d", (long long)n,
                             x->ndim);
        }
        for (int d = 0; d < x->ndim; d++) rep[d] = v[d];
        si_free(v);
    }
    for (int d = 0; d < x->ndim; d++)
        if (rep[d] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "negative repeat count %lld", (long long)rep[d]);
    return SI_OK;
}

static si_result tile_infer(si_kctx *c) {
    si_result s;
    int64_t rep[SI_MAX_DIMS], dims[SI_MAX_DIMS];
    if ((s = si_need_inputs(c, 2))) return s;
    const si_tensor *x = c->in[0];
    bool known = si_has_values(c->in[1]) && (c->opset >= 6 || c->n_in < 3 || !c->in[2] || si_has_values(c->in[2]));
    if (!known) /* compile time: the repeats are known at run time */
        for (int d = 0; d < x->ndim; d++) rep[d] = SI_DIM_UNKNOWN;
    else if ((s = tile_repeats(c, rep)))
        return s;
    for (int d = 0; d < x->ndim; d++) dims[d] = si_dim_mul(x->dims[d], rep[d]);
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result tile_run(si_kctx *c) {
    const si_tensor *x = c->in[0];
    si_tensor *o = c->out[0];
    int nd = o->ndim;
    size_t es = si_esize(x);
    if (si_count(o) == 0) return SI_OK;
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
    int64_t rows = si_prod(o->dims, 0, nd - 1);
    int64_t idx[SI_MAX_DIMS] = {0};
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int d = 0; d < nd - 1; d++) off += (idx[d] % x->dims[d]) * ist[d];
        for (int64_t j = 0; j < row_out; j += row_in)
            memcpy(dst + (size_t)(r * row_out + j) * es, src + (size_t)off * es, (size_t)row_in * es);
        si_next_index(idx, o->dims, nd - 1);
    }
    return SI_OK;
}

/* ---- Trilu ------------------------------------------------------------------------------------------------ */

static si_result trilu_k(si_kctx *c, int64_t *k) {
    *k = 0;
    if (!si_in(c, 1)) return SI_OK;
    si_result s = si_need_input(c, 1, true);
    if (s) return s;
    if (!si_dtype_is_int(c->in[1]->dtype)) return si_op_err(c, SI_ERR_INVALID_ARG, "k must be an integer");
    return si_tensor_scalar_i64(c, c->in[1], "input 'k'", k);
}

static si_result trilu_infer(si_kctx *c) {
    si_result s;
    int64_t k;
    if ((s = si_need_input(c, 0, false))) return s;
    if ((!si_in(c, 1) || si_has_values(c->in[1])) && (s = trilu_k(c, &k))) return s; /* the shape does not need k */
    if (c->in[0]->ndim < 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2, got %d", c->in[0]->ndim);
    return si_same_as_input(c, 0, 0);
}

static si_result trilu_run(si_kctx *c) {
    int64_t k;
    si_result s = trilu_k(c, &k);
    if (s) return s;
    const si_tensor *x = c->in[0];
    si_tensor *o = c->out[0];
    bool upper = si_attr_int(c->node, "upper", 1) != 0;
    int nd = x->ndim;
    int64_t rows = x->dims[nd - 2], cols = x->dims[nd - 1];
    int64_t mats = si_prod(x->dims, 0, nd - 2);
    size_t es = si_esize(x);
    if (si_count(x) == 0) return SI_OK;
    int64_t lim = rows + cols;
    if (k > lim) k = lim;
    if (k < -lim) k = -lim;
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

/* ---- DepthToSpace / SpaceToDepth -------------------------------------------------------------------------- */

static si_result blocksize(si_kctx *c, int64_t *b) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    if (c->in[0]->ndim != 4)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must be 4-D (N, C, H, W), got rank %d", c->in[0]->ndim);
    if (!si_node_attr(c->node, "blocksize"))
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'blocksize' is required");
    *b = si_attr_int(c->node, "blocksize", 0);
    if (*b < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "blocksize must be >= 1, got %lld", (long long)*b);
    if (*b > ((int64_t)1 << 20)) /* blocksize^2 and the output dimensions must not overflow */
        return si_op_err(c, SI_ERR_INVALID_ARG, "blocksize %lld is too large", (long long)*b);
    return SI_OK;
}

static si_result d2s_mode(si_kctx *c, bool *crd) {
    const char *m = si_attr_str(c->node, "mode", "DCR");
    if (!strcmp(m, "DCR"))
        *crd = false;
    else if (!strcmp(m, "CRD"))
        *crd = true;
    else
        return si_op_err(c, SI_ERR_INVALID_ARG, "unknown mode '%s' (DCR or CRD)", m);
    return SI_OK;
}

static si_result d2s_infer(si_kctx *c) {
    int64_t b = 1;
    bool crd = false;
    si_result s;
    if ((s = blocksize(c, &b)) || (s = d2s_mode(c, &crd))) return s;
    const int64_t *d = c->in[0]->dims;
    if (si_dim_known(d[1]) && d[1] % (b * b))
        return si_op_err(c, SI_ERR_INVALID_ARG, "channels %lld not divisible by blocksize^2 %lld", (long long)d[1],
                         (long long)(b * b));
    int64_t od[4] = {d[0], si_dim_div(d[1], b * b, false), si_dim_mul(d[2], b), si_dim_mul(d[3], b)};
    return si_set_out(c, 0, c->in[0]->dtype, 4, od);
}

/* The moves of DepthToSpace and SpaceToDepth, each the other's inverse, between the depth layout [N, OC b b, H, W]
 * (channel oc b b + i b + j in CRD mode, (i b + j) OC + oc in DCR mode) and the space layout [N, OC, H b, W b]:
 * to_space copies depth -> space (DepthToSpace), else space -> depth (SpaceToDepth, which is DCR). */
static void block_moves(char *dst, const char *src, size_t es, int64_t N, int64_t OC, int64_t H, int64_t W, int64_t b, bool crd,
                        bool to_space) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t oc = 0; oc < OC; oc++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < b; i++)
                    for (int64_t w = 0; w < W; w++)
                        for (int64_t j = 0; j < b; j++) {
                            const int64_t ic = crd ? oc * b * b + i * b + j : (i * b + j) * OC + oc;
                            const int64_t de = ((n * OC * b * b + ic) * H + h) * W + w;
                            const int64_t se = ((n * OC + oc) * H * b + h * b + i) * W * b + w * b + j;
                            if (to_space) memcpy(dst + (size_t)se * es, src + (size_t)de * es, es);
                            else memcpy(dst + (size_t)de * es, src + (size_t)se * es, es);
                        }
}

static si_result d2s_run(si_kctx *c) {
    int64_t b = 1;
    bool crd = false;
    si_result s;
    if ((s = blocksize(c, &b)) || (s = d2s_mode(c, &crd))) return s;
    const si_tensor *x = c->in[0];
    if (si_count(x) == 0) return SI_OK;
    block_moves(c->out[0]->data, x->data, si_esize(x), x->dims[0], x->dims[1] / (b * b), x->dims[2], x->dims[3], b, crd, true);
    return SI_OK;
}

static si_result s2d_infer(si_kctx *c) {
    int64_t b = 1;
    si_result s = blocksize(c, &b);
    if (s) return s;
    const int64_t *d = c->in[0]->dims;
    if ((si_dim_known(d[2]) && d[2] % b) || (si_dim_known(d[3]) && d[3] % b))
        return si_op_err(c, SI_ERR_INVALID_ARG, "height %lld and width %lld must be divisible by blocksize %lld",
                         (long long)d[2], (long long)d[3], (long long)b);
    int64_t od[4] = {d[0], si_dim_mul(d[1], b * b), si_dim_div(d[2], b, false), si_dim_div(d[3], b, false)};
    return si_set_out(c, 0, c->in[0]->dtype, 4, od);
}

static si_result s2d_run(si_kctx *c) {
    int64_t b;
    si_result s = blocksize(c, &b);
    if (s) return s;
    const si_tensor *x = c->in[0];
    if (si_count(x) == 0) return SI_OK;
    block_moves(c->out[0]->data, x->data, si_esize(x), x->dims[0], x->dims[1], x->dims[2] / b, x->dims[3] / b, b, false, false);
    return SI_OK;
}

/* ---- ReverseSequence -------------------------------------------------------------------------------------- */

static si_result revseq_axes(si_kctx *c, int *batch_axis, int *time_axis) {
    si_result s;
    if ((s = si_need_inputs(c, 2))) return s;
    const si_tensor *x = c->in[0], *len = c->in[1];
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2, got %d", x->ndim);
    int64_t ba = si_attr_int(c->node, "batch_axis", 1), ta = si_attr_int(c->node, "time_axis", 0);
    if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "batch_axis/time_axis must be 0/1 or 1/0, got %lld/%lld", (long long)ba,
                         (long long)ta);
    if (!si_dtype_is_int(len->dtype))
        return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens must be an integer tensor");
    if (len->ndim != 1 || si_dim_ne(len->dims[0], x->dims[ba]))
        return si_dim_known(x->dims[ba])
                   ? si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens must be 1-D with %lld entries (the batch size)",
                               (long long)x->dims[ba])
                   : si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens must be 1-D (one entry per batch element)");
    *batch_axis = (int)ba;
    *time_axis = (int)ta;
    return SI_OK;
}

static si_result revseq_infer(si_kctx *c) {
    int ba, ta;
    si_result s = revseq_axes(c, &ba, &ta);
    if (s) return s;
    return si_same_as_input(c, 0, 0);
}

static si_result revseq_run(si_kctx *c) {
    int ba = 0, ta = 0;
    si_result s = revseq_axes(c, &ba, &ta);
    if (s) return s;
    const si_tensor *x = c->in[0], *len = c->in[1];
    si_tensor *o = c->out[0];
    int64_t B = x->dims[ba], T = x->dims[ta];
    size_t blk = (size_t)si_prod(x->dims, 2, x->ndim) * si_esize(x);
    for (int64_t b = 0; b < B; b++) {
        int64_t l = si_load_i64(len->dtype, len->data, b);
        if (l < 0 || l > T)
            return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens[%lld] = %lld outside [0, %lld]", (long long)b,
                             (long long)l, (long long)T);
    }
    si_copy_data(o, x);
    if (blk == 0) return SI_OK;
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

/* ---- table ------------------------------------------------------------------------------------------------ */

static const si_op_def defs[] = {
    SI_OP_DEF(EXPAND, 0, expand_infer, expand_run),
    SI_OP_DEF(TILE, 0, tile_infer, tile_run),
    SI_OP_DEF(TRILU, 0, trilu_infer, trilu_run),
    SI_OP_DEF(DEPTH_TO_SPACE, 0, d2s_infer, d2s_run),
    SI_OP_DEF(SPACE_TO_DEPTH, 0, s2d_infer, s2d_run),
    SI_OP_DEF(REVERSE_SEQUENCE, 0, revseq_infer, revseq_run),
};

SI_OP_FAMILY_PARTIAL(rearrange, defs);
