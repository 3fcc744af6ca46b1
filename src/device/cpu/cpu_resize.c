/*
 * cpu_resize.c — Resize and Upsample (every opset form, mode, coordinate_transformation_mode and
 * nearest_mode: the taps come from the shared geometry of ops/resize.c, si_resize_taps) as the CPU device's
 * own kernel, float32, in the layout the input already has: plain, or a dense permutation of it such as the
 * nhwc a oneDNN convolution writes (the output gets the same layout, so no reorder runs on either side).
 *
 * Nearest: one gather pass, a copy of the contiguous block below the innermost resized axis per output
 * position (per-axis offset tables). Linear / cubic: one pass per resized axis (separable; the taps of the
 * reference kernel factor per axis), the axis that grows least first, through scratch buffers; weights in
 * float32. tf_crop_and_resize: outputs outside the crop box along any axis become extrapolation_value.
 * Output rows (one output coordinate of the axis a pass resizes, or one gathered row) are split over the plan's
 * threads.
 */
#include "device/cpu/cpu_llm.h"

#include <stdio.h>

typedef struct rs_axis {
    int64_t in, out, nt;   /* sizes, taps per output coordinate */
    int64_t *idx;          /* [out * nt] input index */
    float *w;              /* [out * nt] */
    unsigned char *ext;    /* [out]: outside the crop box */
    bool resized;
} rs_axis;

typedef struct rs_params {
    int r;                 /* rank; axes in memory order (outermost first) */
    rs_axis ax[SI_MAX_DIMS];
    bool nearest;
    bool any_ext;
    float extrap;
    int n_pass, pass[SI_MAX_DIMS]; /* linear / cubic: axes in pass order */
    int64_t **offs;        /* nearest: per axis, out -> idx * input stride */
} rs_params;

/* dims after the passes done so far (pass order) */
static void pass_dims(const rs_params *p, int done, int64_t *d) {
    for (int a = 0; a < p->r; a++) d[a] = p->ax[a].in;
    for (int i = 0; i < done; i++) d[p->pass[i]] = p->ax[p->pass[i]].out;
}

/* Rows [lo, hi) of a pass: row t is output coordinate t % out of block t / out. */
typedef struct pass_job {
    const rs_axis *ax;
    const float *src;
    float *dst;
    int64_t inner;
} pass_job;

static void pass_rows(void *ctx, int64_t lo, int64_t hi) {
    const pass_job *pj = ctx;
    const rs_axis *ax = pj->ax;
    const int64_t in = ax->in, on = ax->out, nt = ax->nt, inner = pj->inner;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t o = t / on, j = t % on;
        const float *s = pj->src + o * in * inner;
        float *dr = pj->dst + (o * on + j) * inner;
        const int64_t *ix = ax->idx + j * nt;
        const float *w = ax->w + j * nt;
        if (inner == 1) {
            float acc = 0;
            for (int64_t k = 0; k < nt; k++) acc += w[k] * s[ix[k]];
            dr[0] = acc;
            continue;
        }
        const float *s0 = s + ix[0] * inner;
        const float w0 = w[0];
        for (int64_t i = 0; i < inner; i++) dr[i] = w0 * s0[i];
        for (int64_t k = 1; k < nt; k++) {
            const float *sk = s + ix[k] * inner;
            const float wk = w[k];
            if (wk == 0.0f) continue;
            for (int64_t i = 0; i < inner; i++) dr[i] += wk * sk[i];
        }
    }
}

static void one_pass(const rs_axis *ax, const float *src, float *dst, int64_t outer, int64_t inner) {
    pass_job pj = {.ax = ax, .src = src, .dst = dst, .inner = inner};
    cpu_par_for(outer * ax->out, SI_MAX((int64_t)1, 16384 / SI_MAX((int64_t)1, inner * ax->nt)), pass_rows, &pj);
}

/* Nearest: y[o_0..o_{r-1}] = x[idx_0[o_0]..]; the axes below the innermost resized one form a block. A row is the
 * output positions of that innermost resized axis for one position of the axes above it. */
typedef struct gather_job {
    const rs_params *p;
    const float *x;
    float *y;
    int last;
    int64_t block;
} gather_job;

static void gather_rows(void *ctx, int64_t lo, int64_t hi) {
    const gather_job *gj = ctx;
    const rs_params *p = gj->p;
    const int last = gj->last;
    const int64_t block = gj->block, n_inner = p->ax[last].out;
    const int64_t *off_last = p->offs[last];
    for (int64_t row = lo; row < hi; row++) {
        int64_t base = 0, rem = row;
        for (int a = last - 1; a >= 0; a--) {
            base += p->offs[a][rem % p->ax[a].out];
            rem /= p->ax[a].out;
        }
        const float *xs = gj->x + base;
        float *yd = gj->y + row * n_inner * block;
        if (block == 1)
            for (int64_t j = 0; j < n_inner; j++) yd[j] = xs[off_last[j]];
        else
            for (int64_t j = 0; j < n_inner; j++) memcpy(yd + j * block, xs + off_last[j], sizeof(float) * (size_t)block);
    }
}

static void gather(const rs_params *p, const float *x, float *y) {
    int last = -1;
    for (int a = 0; a < p->r; a++)
        if (p->ax[a].resized) last = a;
    int64_t block = 1, rows = 1;
    for (int a = last + 1; a < p->r; a++) block *= p->ax[a].in;
    for (int a = 0; a < last; a++) rows *= p->ax[a].out;
    gather_job gj = {.p = p, .x = x, .y = y, .last = last, .block = block};
    cpu_par_for(rows, SI_MAX((int64_t)1, 16384 / SI_MAX((int64_t)1, p->ax[last].out * block)), gather_rows, &gj);
}

static void extrapolate(const rs_params *p, float *y) {
    int64_t o[SI_MAX_DIMS] = {0}, n = 1;
    for (int a = 0; a < p->r; a++) n *= p->ax[a].out;
    for (int64_t i = 0; i < n; i++) {
        bool ext = false;
        for (int a = 0; a < p->r && !ext; a++) ext = p->ax[a].ext[o[a]];
        if (ext) y[i] = p->extrap;
        for (int a = p->r - 1; a >= 0; a--) {
            if (++o[a] < p->ax[a].out) break;
            o[a] = 0;
        }
    }
}

/* ptr: X, scratch (two halves), Y */
static si_result rs_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const rs_params *p = params;
    const float *x = ptr[0];
    float *y = ptr[2];
    if (p->nearest) {
        gather(p, x, y);
    } else {
        float *tmp[2] = {ptr[1], NULL};
        int64_t d[SI_MAX_DIMS], half = 0;
        for (int i = 0; i + 1 < p->n_pass; i++) { /* the scratch holds two of the intermediate results */
            pass_dims(p, i + 1, d);
            half = SI_MAX(half, si_shape_count(p->r, d));
        }
        tmp[1] = tmp[0] + half;
        const float *src = x;
        for (int i = 0; i < p->n_pass; i++) {
            int a = p->pass[i];
            pass_dims(p, i, d);
            int64_t outer = 1, inner = 1;
            for (int k = 0; k < a; k++) outer *= d[k];
            for (int k = a + 1; k < p->r; k++) inner *= d[k];
            float *dst = i + 1 == p->n_pass ? y : tmp[i & 1];
            one_pass(&p->ax[a], src, dst, outer, inner);
            src = dst;
        }
    }
    if (p->any_ext) extrapolate(p, y);
    return SI_OK;
}

/* A dense layout of v's buffer: plain or a permutation of its dims (nhwc); *perm lists the logical axes
 * outermost first. */
static bool dense_perm(const dnnl_memory_desc_t *md, int r, int *perm) {
    if (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks || md->offset0 || md->ndims != r) return false;
    for (int i = 0; i < r; i++) {
        if (md->dims[i] != md->padded_dims[i] || md->padded_offsets[i]) return false;
        perm[i] = i;
    }
    const int64_t *st = md->format_desc.blocking.strides;
    for (int i = 1; i < r; i++) /* stable sort by stride, descending */
        for (int j = i; j > 0 && st[perm[j]] > st[perm[j - 1]]; j--) {
            int t = perm[j];
            perm[j] = perm[j - 1];
            perm[j - 1] = t;
        }
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        if (md->dims[perm[i]] != 1 && st[perm[i]] != s) return false;
        s *= md->dims[perm[i]];
    }
    return true;
}

si_result cpu_lower_resize(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const si_val *X, *Y;
    if (!cpu_own_f32_io(g, nd, &X, &Y) || X->ndim < 1 || X->ndim > DNNL_MAX_NDIMS || Y->ndim != X->ndim) return SI_ERR_UNSUPPORTED;
    /* the geometry, as the reference kernel reads it: scales / sizes / roi must be constants by now */
    const si_tensor *ins[8];
    si_tensor xdesc;
    memset(&xdesc, 0, sizeof xdesc);
    xdesc.dtype = X->dtype;
    xdesc.ndim = X->ndim;
    memcpy(xdesc.dims, X->dims, sizeof(int64_t) * (size_t)X->ndim);
    if (nd->n_in > 8) return SI_ERR_UNSUPPORTED;
    ins[0] = &xdesc;
    for (int k = 1; k < nd->n_in; k++) {
        ins[k] = NULL;
        if (nd->in[k] < 0) continue;
        if (!(ins[k] = g->values[nd->in[k]].const_val)) return SI_ERR_UNSUPPORTED;
    }
    si_kctx c = {.node = nd, .opset = nd->opset, .n_in = nd->n_in, .in = ins, .n_out = 0, .out = NULL};
    si_resize rz;
    if (si_resize_prepare(&c, si_resize_form_of(nd), &rz)) {
        si_err_clear();
        return SI_ERR_UNSUPPORTED;
    }
    const int r = rz.rank;
    for (int d = 0; d < r; d++)
        if (rz.out[d] != Y->dims[d] || rz.in[d] != X->dims[d]) return SI_ERR_UNSUPPORTED;

    /* the input's layout: an existing dense permutation (nhwc) or plain */
    int in_buf = cpu_pb_existing(b, nd->in[0]), perm[DNNL_MAX_NDIMS];
    if (in_buf < 0 || b->p->bufs[in_buf].dyn || !dense_perm(&b->p->bufs[in_buf].md, r, perm)) {
        in_buf = cpu_pb_plain(b, nd->in[0]);
        for (int i = 0; i < r; i++) perm[i] = i;
    }
    if (in_buf < 0) return SI_ERR_INTERNAL;

    rs_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    memset(p, 0, sizeof *p);
    p->r = r;
    p->nearest = rz.mode == SI_RS_NEAREST && !rz.antialias;
    p->extrap = (float)rz.extrap;
    int64_t istride[SI_MAX_DIMS], s = 1;
    for (int a = r - 1; a >= 0; a--) istride[a] = s, s *= rz.in[perm[a]];
    for (int a = 0; a < r; a++) {
        int d = perm[a];
        rs_axis *ax = &p->ax[a];
        ax->in = rz.in[d];
        ax->out = rz.out[d];
        ax->nt = si_resize_ntaps(&rz, d);
        ax->idx = cpu_pb_own(b, sizeof(int64_t) * (size_t)(ax->out * ax->nt));
        ax->w = cpu_pb_own(b, sizeof(float) * (size_t)(ax->out * ax->nt));
        ax->ext = cpu_pb_own(b, (size_t)ax->out);
        double *wd = si_malloc(sizeof(double) * (size_t)ax->nt);
        if (!ax->idx || !ax->w || !ax->ext || !wd) {
            si_free(wd);
            return SI_ERR_NO_MEM;
        }
        bool ident = ax->in == ax->out;
        for (int64_t o = 0; o < ax->out; o++) {
            bool outside;
            si_resize_taps(&rz, d, o, ax->idx + o * ax->nt, wd, &outside);
            ax->ext[o] = outside;
            p->any_ext |= outside;
            for (int64_t k = 0; k < ax->nt; k++) {
                ax->w[o * ax->nt + k] = (float)wd[k];
                /* an identity axis: one tap of weight 1 at o (or several where only one weighs) */
                if (wd[k] != 0.0 && (ax->idx[o * ax->nt + k] != o || wd[k] != 1.0)) ident = false;
            }
            if (outside) ident = false;
        }
        si_free(wd);
        ax->resized = !ident;
        if (p->nearest && ax->nt != 1) p->nearest = false;
    }
    int64_t scratch = 0;
    bool any = false;
    for (int a = 0; a < r; a++) any |= p->ax[a].resized;
    if (!any) p->ax[r - 1].resized = true; /* a copy */
    if (p->nearest) {
        p->offs = cpu_pb_own(b, sizeof(int64_t *) * (size_t)r);
        if (!p->offs) return SI_ERR_NO_MEM;
        for (int a = 0; a < r; a++) {
            rs_axis *ax = &p->ax[a];
            if (!(p->offs[a] = cpu_pb_own(b, sizeof(int64_t) * (size_t)ax->out))) return SI_ERR_NO_MEM;
            for (int64_t o = 0; o < ax->out; o++) p->offs[a][o] = (ax->resized ? ax->idx[o] : o) * istride[a];
        }
    } else {
        /* passes: the axes that grow least first (the intermediate results stay small) */
        for (int a = 0; a < r; a++)
            if (p->ax[a].resized) p->pass[p->n_pass++] = a;
        for (int i = 1; i < p->n_pass; i++)
            for (int j = i; j > 0; j--) {
                const rs_axis *u = &p->ax[p->pass[j]], *v = &p->ax[p->pass[j - 1]];
                if ((double)u->out / (double)u->in >= (double)v->out / (double)v->in) break;
                int t = p->pass[j];
                p->pass[j] = p->pass[j - 1];
                p->pass[j - 1] = t;
            }
        int64_t d[SI_MAX_DIMS];
        for (int i = 0; i + 1 < p->n_pass; i++) {
            pass_dims(p, i + 1, d);
            scratch = SI_MAX(scratch, si_shape_count(r, d));
        }
        scratch *= 2;
    }
    /* output: the input's layout */
    int64_t ostr[DNNL_MAX_NDIMS];
    s = 1;
    for (int a = r - 1; a >= 0; a--) ostr[perm[a]] = s, s *= Y->dims[perm[a]];
    dnnl_memory_desc_t ymd, smd;
    cpu_md_strided(&ymd, r, Y->dims, ostr);
    int64_t sdim = SI_MAX(scratch, (int64_t)1);
    cpu_md_plain(&smd, 1, &sdim);
    int sb = cpu_pb_internal_md(b, &smd);
    int out = sb < 0 ? -1 : cpu_pb_new_out(b, nd->out[0], &ymd);
    if (out < 0) return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    cpu_arg args[3] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, sb}, {DNNL_ARG_DST, out}};
    si_result st = cpu_pb_emit_own(b, n, nd->op_type, p->nearest ? "own:resize_nearest" : "own:resize_separable", rs_run, p, args, 3);
    if (!st) cpu_pb_consume(b, n);
    return st;
}
