/*
 * cpu_data.c — data-movement ops of super-resolution and image networks as the CPU device's own kernels, plain
 * float32 layout, rows split over the plan's threads:
 *
 *   DepthToSpace (DCR and CRD) / SpaceToDepth   one permuting copy: each output row of DepthToSpace interleaves
 *                                               `blocksize` input rows, each output row of SpaceToDepth takes
 *                                               every blocksize-th element of one input row.
 *   Pad (constant, reflect, edge, wrap)          per output row: the source row found through per-axis
 *                                               coordinate maps (or the constant), then the left border, one
 *                                               contiguous copy of the input row and the right border.
 *
 * The reference kernels (ops/rearrange.c, ops/pad.c) copy element by element through memcpy with index
 * arithmetic per element (1.1 - 1.4 ms per op on a 64 x 96 image); Pad's geometry is the reference's own
 * (si_pad_prepare, si_pad_src). Declined (the reference kernel runs them): other element types, non-4-D inputs of
 * DepthToSpace / SpaceToDepth, negative or non-constant pads, non-constant constant_value / axes.
 */
#include "device/cpu/cpu_llm.h"

#include <string.h>

/* --- DepthToSpace / SpaceToDepth ---------------------------------------------------------------------------- */

typedef struct d2s_params {
    int64_t N, OC, H, W, b; /* depth layout [N, OC b b, H, W], space layout [N, OC, H b, W b] */
    bool crd, to_space;
} d2s_params;

typedef struct d2s_job {
    const d2s_params *p;
    const float *x;
    float *y;
} d2s_job;

/* DepthToSpace: rows [lo, hi) of the output, row t = ((n OC + oc) H + h) b + i, of W b elements. */
static void d2s_rows(void *ctx, int64_t lo, int64_t hi) {
    const d2s_job *j = ctx;
    const d2s_params *p = j->p;
    const int64_t b = p->b, W = p->W, H = p->H, OC = p->OC;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t i = t % b, h = (t / b) % H, oc = (t / (b * H)) % OC, n = t / (b * H * OC);
        float *yr = j->y + t * W * b;
        for (int64_t jj = 0; jj < b; jj++) {
            const int64_t ic = p->crd ? oc * b * b + i * b + jj : (i * b + jj) * OC + oc;
            const float *xr = j->x + ((n * OC * b * b + ic) * H + h) * W;
            if (b == 2) {
                for (int64_t w = 0; w < W; w++) yr[2 * w + jj] = xr[w];
            } else {
                for (int64_t w = 0; w < W; w++) yr[w * b + jj] = xr[w];
            }
        }
    }
}

/* SpaceToDepth: rows [lo, hi) of the output, row t = (n OC b b + ic) H + h with ic = (i b + jj) OC + oc, of W
 * elements (OC: the input's channels here). */
static void s2d_rows(void *ctx, int64_t lo, int64_t hi) {
    const d2s_job *j = ctx;
    const d2s_params *p = j->p;
    const int64_t b = p->b, W = p->W, H = p->H, OC = p->OC;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t h = t % H, ic = (t / H) % (OC * b * b), n = t / (H * OC * b * b);
        const int64_t oc = ic % OC, ij = ic / OC, i = ij / b, jj = ij % b;
        const float *xr = j->x + ((n * OC + oc) * H * b + h * b + i) * W * b + jj;
        float *yr = j->y + t * W;
        if (b == 2) {
            for (int64_t w = 0; w < W; w++) yr[w] = xr[2 * w];
        } else {
            for (int64_t w = 0; w < W; w++) yr[w] = xr[w * b];
        }
    }
}

/* ptr: X, Y */
static si_result d2s_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const d2s_params *p = params;
    d2s_job j = {.p = p, .x = ptr[0], .y = ptr[1]};
    const int64_t rows = p->N * p->OC * p->H * p->b * (p->to_space ? 1 : p->b), len = p->to_space ? p->W * p->b : p->W;
    cpu_par_for(rows, SI_MAX((int64_t)1, 8192 / SI_MAX((int64_t)1, len)), p->to_space ? d2s_rows : s2d_rows, &j);
    return SI_OK;
}

si_result cpu_lower_depth_to_space(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (nd->domain[0] || !cpu_own_f32_io(g, nd, &X, &Y) || X->ndim != 4 || Y->ndim != 4) return SI_ERR_UNSUPPORTED;
    const bool to_space = si_node_is(nd, SI_OP_DEPTH_TO_SPACE);
    if (!si_node_attr(nd, "blocksize")) return SI_ERR_UNSUPPORTED;
    const int64_t bs = si_attr_int(nd, "blocksize", 0);
    if (bs < 1 || bs > 4096) return SI_ERR_UNSUPPORTED;
    bool crd = false;
    if (to_space) {
        const char *m = si_attr_str(nd, "mode", "DCR");
        if (!strcmp(m, "CRD")) crd = true;
        else if (strcmp(m, "DCR")) return SI_ERR_UNSUPPORTED;
    }
    const int64_t *d = X->dims;
    d2s_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    *p = (d2s_params){.N = d[0], .b = bs, .crd = crd, .to_space = to_space};
    if (to_space) {
        if (d[1] % (bs * bs)) return SI_ERR_UNSUPPORTED;
        p->OC = d[1] / (bs * bs), p->H = d[2], p->W = d[3];
    } else {
        if (d[2] % bs || d[3] % bs) return SI_ERR_UNSUPPORTED;
        p->OC = d[1], p->H = d[2] / bs, p->W = d[3] / bs;
    }
    const int64_t want[4] = {d[0], to_space ? p->OC : d[1] * bs * bs, to_space ? d[2] * bs : p->H, to_space ? d[3] * bs : p->W};
    if (memcmp(want, Y->dims, sizeof want)) return SI_ERR_UNSUPPORTED;
    int in = cpu_pb_plain(b, nd->in[0]);
    if (in < 0) return SI_ERR_INTERNAL;
    if (b->p->bufs[in].dyn) return SI_ERR_UNSUPPORTED;
    dnnl_memory_desc_t ymd;
    cpu_md_plain(&ymd, 4, Y->dims);
    int out = cpu_pb_new_out(b, nd->out[0], &ymd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[2] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}};
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, to_space ? "own:depth_to_space" : "own:space_to_depth", d2s_run, p, args, 2);
    if (!st) cpu_pb_consume(b, n);
    return st;
}

/* --- Pad ---------------------------------------------------------------------------------------------------- */

typedef struct pad_params {
    int r;
    int64_t in[SI_MAX_DIMS], out[SI_MAX_DIMS], pb[SI_MAX_DIMS], pe[SI_MAX_DIMS];
    int64_t xs[SI_MAX_DIMS]; /* input strides */
    int64_t *map[SI_MAX_DIMS]; /* per axis except the last: output coordinate -> input coordinate, -1: constant */
    int64_t *lmap, *rmap;    /* the last axis' borders: pb[r-1] left and pe[r-1] right input coordinates (-1) */
    float cval;
} pad_params;

typedef struct pad_job {
    const pad_params *p;
    const float *x;
    float *y;
} pad_job;

/* Output rows [lo, hi) (all axes but the last). */
static void pad_rows(void *ctx, int64_t lo, int64_t hi) {
    const pad_job *j = ctx;
    const pad_params *p = j->p;
    const int r = p->r;
    const int64_t W = p->out[r - 1], L = p->pb[r - 1], R = p->pe[r - 1], len = p->in[r - 1];
    for (int64_t t = lo; t < hi; t++) {
        float *yr = j->y + t * W;
        int64_t base = 0, rem = t;
        bool inside = true;
        for (int d = r - 2; d >= 0; d--) {
            const int64_t m = p->map[d][rem % p->out[d]];
            rem /= p->out[d];
            if (m < 0) inside = false;
            else base += m * p->xs[d];
        }
        if (!inside) {
            for (int64_t k = 0; k < W; k++) yr[k] = p->cval;
            continue;
        }
        const float *xr = j->x + base;
        for (int64_t k = 0; k < L; k++) yr[k] = p->lmap[k] < 0 ? p->cval : xr[p->lmap[k]];
        memcpy(yr + L, xr, sizeof(float) * (size_t)len);
        for (int64_t k = 0; k < R; k++) yr[L + len + k] = p->rmap[k] < 0 ? p->cval : xr[p->rmap[k]];
    }
}

/* ptr: X, Y */
static si_result pad_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const pad_params *p = params;
    pad_job j = {.p = p, .x = ptr[0], .y = ptr[1]};
    const int64_t W = p->out[p->r - 1], rows = si_shape_count(p->r - 1, p->out);
    cpu_par_for(rows, SI_MAX((int64_t)1, 8192 / SI_MAX((int64_t)1, W)), pad_rows, &j);
    return SI_OK;
}

si_result cpu_lower_pad(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (nd->domain[0] || !cpu_own_f32_io(g, nd, &X, &Y) || X->ndim < 1 || Y->ndim != X->ndim || nd->n_in > 4) return SI_ERR_UNSUPPORTED;
    /* the geometry, as the reference kernel reads it (ops/pad.c): pads, axes and the constant must be constants */
    const si_tensor *ins[4];
    si_tensor xdesc;
    memset(&xdesc, 0, sizeof xdesc);
    xdesc.dtype = X->dtype;
    xdesc.ndim = X->ndim;
    memcpy(xdesc.dims, X->dims, sizeof(int64_t) * (size_t)X->ndim);
    ins[0] = &xdesc;
    for (int k = 1; k < nd->n_in; k++) {
        ins[k] = NULL;
        if (nd->in[k] >= 0 && !(ins[k] = g->values[nd->in[k]].const_val)) return SI_ERR_UNSUPPORTED;
    }
    si_kctx c = {.node = nd, .opset = nd->opset, .n_in = nd->n_in, .in = ins, .n_out = 0, .out = NULL};
    si_pad pg;
    if (si_pad_prepare(&c, &pg)) {
        si_err_clear();
        return SI_ERR_UNSUPPORTED;
    }
    const int r = X->ndim, mode = pg.mode;
    float cval = 0.0f;
    if (mode == SI_PAD_CONSTANT) {
        const si_tensor *cv = nd->opset >= 11 && nd->n_in > 2 ? ins[2] : NULL;
        if (cv && si_tensor_count(cv) > 0) { /* an empty one is absent */
            if (!cv->data) return SI_ERR_UNSUPPORTED;
            cval = (float)si_load_f64(cv->dtype, cv->data, 0);
        } else if (nd->opset < 11) {
            cval = si_attr_float(nd, "value", 0.0f);
        }
    }
    pad_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    memset(p, 0, sizeof *p);
    p->r = r;
    p->cval = cval;
    for (int d = 0; d < r; d++) {
        if (pg.pb[d] < 0 || pg.pe[d] < 0) return SI_ERR_UNSUPPORTED; /* cropping: the reference kernel */
        p->pb[d] = pg.pb[d], p->pe[d] = pg.pe[d];
        p->in[d] = X->dims[d];
        p->out[d] = pg.out[d];
        if (p->out[d] != Y->dims[d]) return SI_ERR_UNSUPPORTED;
    }
    p->xs[r - 1] = 1;
    for (int d = r - 2; d >= 0; d--) p->xs[d] = p->xs[d + 1] * p->in[d + 1];
    for (int d = 0; d < r - 1; d++) {
        if (!(p->map[d] = cpu_pb_own(b, sizeof(int64_t) * (size_t)p->out[d]))) return SI_ERR_NO_MEM;
        for (int64_t o = 0; o < p->out[d]; o++) p->map[d][o] = si_pad_src(&pg, d, p->in[d], o);
    }
    const int64_t L = p->pb[r - 1], R = p->pe[r - 1];
    p->lmap = cpu_pb_own(b, sizeof(int64_t) * (size_t)SI_MAX(L, (int64_t)1));
    p->rmap = cpu_pb_own(b, sizeof(int64_t) * (size_t)SI_MAX(R, (int64_t)1));
    if (!p->lmap || !p->rmap) return SI_ERR_NO_MEM;
    for (int64_t k = 0; k < L; k++) p->lmap[k] = si_pad_src(&pg, r - 1, p->in[r - 1], k);
    for (int64_t k = 0; k < R; k++) p->rmap[k] = si_pad_src(&pg, r - 1, p->in[r - 1], L + p->in[r - 1] + k);
    int in = cpu_pb_plain(b, nd->in[0]);
    if (in < 0) return SI_ERR_INTERNAL;
    if (b->p->bufs[in].dyn) return SI_ERR_UNSUPPORTED;
    dnnl_memory_desc_t ymd;
    cpu_md_plain(&ymd, r, Y->dims);
    int out = cpu_pb_new_out(b, nd->out[0], &ymd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[2] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}};
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, "own:pad", pad_run, p, args, 2);
    if (!st) cpu_pb_consume(b, n);
    return st;
}

// --- Split, Slice (steps of 1): reorders from sub-memory views ----------------------------------------------------

/* Output y of node n as the part of x starting at offs (y's dims): a oneDNN reorder from a sub-memory view of x in
 * the layout x already has where oneDNN can take the view there (plain, channels-last, blocked when the part is whole
 * blocks), else of its plain copy; y in x's channels-last layout when x has it, else plain. dry: only whether it can
 * (so that a node of several parts emits all of them or none). */
static si_result part_copy(cpu_pb *b, int n, int x, int y, const int64_t *offs, const char *what, bool dry) {
    const si_graph *g = b->g;
    const si_val *X = &g->values[x], *Y = &g->values[y];
    const dnnl_data_type_t dt = cpu_dnnl_type(X->dtype);
    const int r = X->ndim;
    if (dt == dnnl_data_type_undef || Y->dtype != X->dtype || r < 1 || r > 6 || Y->ndim != r || !cpu_value_static(X) || !cpu_value_static(Y) ||
        si_shape_count(r, Y->dims) < 1 || X->const_val)
        return SI_ERR_UNSUPPORTED;
    dnnl_dims_t d, o;
    for (int i = 0; i < r; i++) d[i] = Y->dims[i], o[i] = offs[i];
    int src = cpu_pb_existing(b, x);
    if (src < 0) return SI_ERR_INTERNAL;
    dnnl_memory_desc_t sub, dmd;
    if (b->p->bufs[src].dyn || dnnl_memory_desc_init_submemory(&sub, &b->p->bufs[src].md, d, o) != dnnl_success) {
        src = cpu_pb_plain(b, x);
        if (src < 0) return SI_ERR_INTERNAL;
        if (b->p->bufs[src].dyn || dnnl_memory_desc_init_submemory(&sub, &b->p->bufs[src].md, d, o) != dnnl_success) return SI_ERR_UNSUPPORTED;
    }
    /* y in x's layout when it is one of the usual ones (channels-last, channels blocked by 16 / 8): the next
     * convolution reads it as it is */
    static const dnnl_format_tag_t tags[3][3] = {{dnnl_acb, dnnl_aBc16b, dnnl_aBc8b},
                                                 {dnnl_acdb, dnnl_aBcd16b, dnnl_aBcd8b},
                                                 {dnnl_acdeb, dnnl_aBcde16b, dnnl_aBcde8b}};
    dnnl_format_tag_t tag = dnnl_format_tag_undef;
    for (int t = 0; r >= 3 && r <= 5 && t < 3 && tag == dnnl_format_tag_undef; t++) {
        dnnl_memory_desc_t xmd;
        dnnl_dims_t xd;
        for (int i = 0; i < r; i++) xd[i] = X->dims[i];
        if (dnnl_memory_desc_init_by_tag(&xmd, r, xd, dt, tags[r - 3][t]) == dnnl_success && dnnl_memory_desc_equal(&xmd, &b->p->bufs[src].md))
            tag = tags[r - 3][t];
    }
    if (tag == dnnl_format_tag_undef || dnnl_memory_desc_init_by_tag(&dmd, r, d, dt, tag) != dnnl_success) cpu_md_plain_dt(&dmd, r, Y->dims, dt);
    dnnl_primitive_desc_t pd;
    if (dnnl_reorder_primitive_desc_create(&pd, &sub, b->eng, &dmd, b->eng, NULL) != dnnl_success) return SI_ERR_UNSUPPORTED;
    if (dry) {
        dnnl_primitive_desc_destroy(pd);
        return SI_OK;
    }
    const int sv = cpu_pb_alias(b, src, &sub);
    const int dst = sv < 0 ? -1 : cpu_pb_new_out(b, y, &dmd);
    if (dst < 0) {
        dnnl_primitive_desc_destroy(pd);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[2] = {{DNNL_ARG_FROM, sv}, {DNNL_ARG_TO, dst}};
    return cpu_pb_emit_dnnl(b, n, what, pd, args, 2);
}

si_result cpu_lower_split(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || nd->n_in < 1 || nd->in[0] < 0 || nd->n_out < 1) return SI_ERR_UNSUPPORTED;
    const si_val *X = &g->values[nd->in[0]];
    const int r = X->ndim;
    int64_t axis = si_attr_int(nd, "axis", 0);
    if (axis < 0) axis += r;
    if (r < 1 || axis < 0 || axis >= r || !cpu_value_static(X)) return SI_ERR_UNSUPPORTED;
    int64_t offs[SI_MAX_DIMS] = {0}, at = 0;
    for (int k = 0; k < nd->n_out; k++) { /* the parts as shape inference sized them, one after the other */
        if (nd->out[k] < 0) return SI_ERR_UNSUPPORTED;
        const si_val *Y = &g->values[nd->out[k]];
        if (Y->ndim != r || !cpu_value_static(Y) || Y->dims[axis] < 1) return SI_ERR_UNSUPPORTED; /* empty parts: the reference kernel */
        for (int i = 0; i < r; i++)
            if (i != axis && Y->dims[i] != X->dims[i]) return SI_ERR_UNSUPPORTED;
        at += Y->dims[axis];
    }
    if (at != X->dims[axis]) return SI_ERR_UNSUPPORTED;
    for (int pass = 0; pass < 2; pass++) {
        offs[axis] = 0;
        for (int k = 0; k < nd->n_out; k++) {
            si_result s = part_copy(b, n, nd->in[0], nd->out[k], offs, "Split", pass == 0);
            if (s) return pass == 0 ? s : si_err_wrap(s == SI_ERR_UNSUPPORTED ? SI_ERR_INTERNAL : s, "CPU: Split '%s'", nd->name);
            offs[axis] += g->values[nd->out[k]].dims[axis];
        }
    }
    cpu_pb_consume(b, n);
    return SI_OK;
}

/* Slice with steps of 1 and constant starts / axes (opset 10 on: inputs; before: attributes): one part of the input. */
si_result cpu_lower_slice(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || nd->n_in < 1 || nd->in[0] < 0 || nd->n_out != 1 || nd->out[0] < 0) return SI_ERR_UNSUPPORTED;
    const si_val *X = &g->values[nd->in[0]];
    const int r = X->ndim;
    if (r < 1 || !cpu_value_static(X)) return SI_ERR_UNSUPPORTED;
    int64_t st[SI_MAX_DIMS], ax[SI_MAX_DIMS], sp[SI_MAX_DIMS];
    int ns = 0, na = 0;
    if (nd->opset < 10) {
        const int64_t *a = si_attr_ints(nd, "starts", &ns), *x = si_attr_ints(nd, "axes", &na);
        if (!a || ns > SI_MAX_DIMS || (x && na != ns)) return SI_ERR_UNSUPPORTED;
        for (int i = 0; i < ns; i++) st[i] = a[i], ax[i] = x ? x[i] : i, sp[i] = 1;
    } else {
        const si_tensor *S = cpu_const_input(g, nd, 1), *A = cpu_const_input(g, nd, 3), *P = cpu_const_input(g, nd, 4);
        if (!S || !S->data || !si_dtype_is_int(S->dtype) || (ns = (int)si_tensor_count(S)) > SI_MAX_DIMS) return SI_ERR_UNSUPPORTED;
        if ((nd->n_in > 3 && nd->in[3] >= 0 && (!A || !A->data || si_tensor_count(A) != ns)) ||
            (nd->n_in > 4 && nd->in[4] >= 0 && (!P || !P->data || si_tensor_count(P) != ns)))
            return SI_ERR_UNSUPPORTED;
        for (int i = 0; i < ns; i++) {
            st[i] = si_load_i64(S->dtype, S->data, i);
            ax[i] = A ? si_load_i64(A->dtype, A->data, i) : i;
            sp[i] = P ? si_load_i64(P->dtype, P->data, i) : 1;
        }
    }
    int64_t offs[SI_MAX_DIMS] = {0};
    for (int i = 0; i < ns; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r || sp[i] != 1) return SI_ERR_UNSUPPORTED;
        const int64_t dim = X->dims[a];
        int64_t s = st[i] < 0 ? st[i] + dim : st[i];
        offs[a] = s < 0 ? 0 : s > dim ? dim : s;
    }
    const si_val *Y = &g->values[nd->out[0]];
    if (Y->ndim != r || !cpu_value_static(Y)) return SI_ERR_UNSUPPORTED;
    for (int i = 0; i < r; i++)
        if (Y->dims[i] < 1 || offs[i] + Y->dims[i] > X->dims[i]) return SI_ERR_UNSUPPORTED;
    si_result s = part_copy(b, n, nd->in[0], nd->out[0], offs, "Slice", false);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

/* --- Concat as contiguous copies ----------------------------------------------------------------------------- */

/* A Concat whose inputs each land as one contiguous run of the output: every dim before the axis is 1 and the
 * layouts are all plain, or all channels-blocked (aBcd8b / aBcd16b and the like, concat on the channels, each
 * input's channels a multiple of the block): then input i is its own bytes at offset (its axis offset) x (the
 * elements per axis index) of the output. oneDNN's concat ran ESRGAN's channel concats (blocked, 16-64 MB) through
 * its generic kernel at 2.7 GB/s, a fifth of the network's time. */
#define CAT_MAX 64
#define CAT_CHUNK ((int64_t)1 << 18) /* floats a thread copies at a time */

typedef struct cat_params {
    int n;
    int64_t off[CAT_MAX + 1]; /* element offsets of the inputs in the output; off[n]: the output's size */
} cat_params;

typedef struct cat_job {
    const cat_params *p;
    void *const *bufs;
} cat_job;

static void cat_units(void *ctx, int64_t lo, int64_t hi) {
    const cat_job *j = ctx;
    const cat_params *p = j->p;
    float *y = j->bufs[p->n];
    for (int64_t u = lo; u < hi; u++) { /* unit u: a chunk of the output */
        int64_t e0 = u * CAT_CHUNK, e1 = SI_MIN(e0 + CAT_CHUNK, p->off[p->n]);
        for (int i = 0; i < p->n && e0 < e1; i++) {
            const int64_t a = SI_MAX(e0, p->off[i]), z = SI_MIN(e1, p->off[i + 1]);
            if (a < z) memcpy(y + a, (const float *)j->bufs[i] + (a - p->off[i]), sizeof(float) * (size_t)(z - a));
        }
    }
}

/* bufs: the inputs, then the output */
static si_result cat_run(const void *params, void *const *bufs, int threads) {
    (void)threads;
    const cat_params *p = params;
    cat_job j = {.p = p, .bufs = bufs};
    cpu_par_for((p->off[p->n] + CAT_CHUNK - 1) / CAT_CHUNK, 1, cat_units, &j);
    return SI_OK;
}

/* md is exactly the layout `tag` gives dims (its element type f32). */
static bool md_is(const dnnl_memory_desc_t *md, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t t;
    if (dnnl_memory_desc_init_by_tag(&t, md->ndims, md->dims, dnnl_f32, tag) != dnnl_success) return false;
    return dnnl_memory_desc_equal(md, &t);
}

dnnl_format_tag_t cpu_tag_cblocked(int r, int64_t bl) {
    if (bl == 8) return r == 3 ? dnnl_aBc8b : r == 4 ? dnnl_aBcd8b : r == 5 ? dnnl_aBcde8b : dnnl_format_tag_undef;
    if (bl == 16) return r == 3 ? dnnl_aBc16b : r == 4 ? dnnl_aBcd16b : r == 5 ? dnnl_aBcde16b : dnnl_format_tag_undef;
    return dnnl_format_tag_undef;
}

si_result cpu_concat_copy(cpu_pb *b, int n, const dnnl_memory_desc_t *mds, const cpu_arg *srcs, int na, int axis, const dnnl_memory_desc_t *dmd) {
    const int r = dmd->ndims;
    if (na < 1 || na > CAT_MAX || dmd->data_type != dnnl_f32 || dmd->format_kind != dnnl_blocked) return SI_ERR_UNSUPPORTED;
    for (int i = 0; i < axis; i++)
        if (dmd->dims[i] != 1) return SI_ERR_UNSUPPORTED;
    const dnnl_blocking_desc_t *bk = &dmd->format_desc.blocking;
    dnnl_format_tag_t tag = dnnl_format_tag_undef;
    if (bk->inner_nblks == 0) tag = r == 1 ? dnnl_a : r == 2 ? dnnl_ab : r == 3 ? dnnl_abc : r == 4 ? dnnl_abcd : r == 5 ? dnnl_abcde : dnnl_format_tag_undef;
    else if (bk->inner_nblks == 1 && bk->inner_idxs[0] == 1 && axis == 1) tag = cpu_tag_cblocked(r, bk->inner_blks[0]);
    if (tag == dnnl_format_tag_undef || !md_is(dmd, tag)) return SI_ERR_UNSUPPORTED;
    const int64_t bl = bk->inner_nblks ? bk->inner_blks[0] : 1;
    int64_t inner = 1; /* elements per index of the axis */
    for (int i = axis + 1; i < r; i++) inner *= dmd->dims[i];
    cat_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    p->n = na;
    int64_t a = 0;
    for (int i = 0; i < na; i++) {
        if (mds[i].data_type != dnnl_f32 || mds[i].ndims != r || mds[i].dims[axis] % bl || !md_is(&mds[i], tag)) return SI_ERR_UNSUPPORTED;
        p->off[i] = a * inner;
        a += mds[i].dims[axis];
    }
    p->off[na] = a * inner;
    if (a != dmd->dims[axis]) return SI_ERR_UNSUPPORTED;
    int dst = cpu_pb_new_out(b, b->g->nodes[n].out[0], dmd);
    if (dst < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[CAT_MAX + 1];
    memcpy(args, srcs, sizeof(cpu_arg) * (size_t)na);
    args[na] = (cpu_arg){DNNL_ARG_DST, dst};
    si_result s = cpu_pb_emit_own(b, n, "Concat", "own:concat", cat_run, p, args, na + 1);
    if (!s) cpu_pb_consume(b, n);
    return s;
}
