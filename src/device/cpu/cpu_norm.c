/*
 * cpu_norm.c — group and instance normalization as the CPU device's own kernel: the normalizations of diffusion
 * U-Nets, VAEs, style-transfer and speech networks, which oneDNN 2.6 has no primitive for (its group norm
 * arrived later), so they ran on the reference kernel in double precision:
 *
 *   GroupNormalization (opset 18: one scale/bias per group or per channel; 21: per channel)
 *   InstanceNormalization (a group norm with one channel per group)
 *   Reshape(x, [N, G, -1]) -> InstanceNormalization -> Reshape(back to x's shape): the group norm PyTorch exports
 *   below opset 18 (the affine after it is a Mul and an Add, which the chain folds)
 *
 * One step: per-channel sums and sums of squares in double precision (partial sums per task, over slices of the
 * spatial axis, reduced per group afterwards: mean and variance of the group, as the reference kernel computes
 * them), then y = x a[c] + b[c] with the group's statistics, the op's scale and bias and the chain's folded
 * per-channel affine (a Mul / Add by a per-channel constant) in a and b, then the chain's activations (Swish, the
 * usual next op; cpu_act_apply).
 *
 * Layouts: plain [N, C, spatial], or the input's own layout when a Conv left it channel-blocked ([N, C/B, spatial,
 * B], B = 8 or 16, channels padded to a multiple of B) or channels-last ([N, spatial, C]); the output takes the
 * input's layout, so a Conv -> GroupNorm -> Swish -> Conv stack runs without reorders. Padded channels are written
 * as zeros. Declined (the reference kernel runs it): other element types, dynamic shapes, constants for scale or
 * bias that are not float32 (or not constants), SI_CPU_NO_OWN.
 */
#include "device/cpu/cpu_llm.h"

#include <math.h>
#include <string.h>

typedef struct gn_params {
    int64_t N, C, G, S;   /* images, channels, groups, spatial size */
    int64_t B, nblk;      /* 0: plain; else tiles of S x B values (channels blk B .. blk B + B - 1), nblk per image */
    int64_t chunk, nchunk; /* the spatial axis in nchunk slices of chunk (the statistics' tasks) */
    double eps;
    const float *gamma, *beta; /* per channel: the op's scale and bias with the chain's affine folded in */
    int n_act;
    cpu_act act[CPU_MAX_ACT];
} gn_params;

typedef struct gn_job {
    const gn_params *p;
    const float *x;
    float *y;
    double *part; /* stats tasks x width x 2: sums, then sums of squares */
    float *a, *b; /* [N, C]: y = x a + b */
} gn_job;

/* width of a statistics task's partial sums: 1 channel (plain) or a tile's B */
static int64_t gn_width(const gn_params *p) { return p->B ? p->B : 1; }
static int64_t gn_rows(const gn_params *p) { return p->N * (p->B ? p->nblk : p->C); }

/* Sums and sums of squares of n floats into s[0], q[0] (double precision; 8 lanes the compiler vectorizes). */
CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void sums_row(const float *x, int64_t n, double *s, double *q) {
    double ls[8] = {0}, lq[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const double v = x[i + j];
            ls[j] += v;
            lq[j] += v * v;
        }
    double ts = 0, tq = 0;
    for (; i < n; i++) ts += x[i], tq += (double)x[i] * x[i];
    for (int j = 0; j < 8; j++) ts += ls[j], tq += lq[j];
    *s = ts, *q = tq;
}

/* Per-lane sums over rows of a tile: rows x B values, lane j of every row into s[j], q[j]. */
CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void sums_tile(const float *x, int64_t rows, int64_t B, double *s, double *q) {
    for (int64_t j = 0; j < B; j++) s[j] = 0, q[j] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * B;
        for (int64_t j = 0; j < B; j++) {
            const double v = xr[j];
            s[j] += v;
            q[j] += v * v;
        }
    }
}

/* Statistics task t = (row, slice): row is (n, c) plain or (n, blk) tiled. */
static void gn_stats(void *ctx, int64_t lo, int64_t hi) {
    const gn_job *j = ctx;
    const gn_params *p = j->p;
    const int64_t W = gn_width(p);
    for (int64_t t = lo; t < hi; t++) {
        const int64_t row = t / p->nchunk, sl = t % p->nchunk;
        const int64_t s0 = sl * p->chunk, s1 = SI_MIN(p->S, s0 + p->chunk);
        double *ps = j->part + t * W * 2;
        if (!p->B) sums_row(j->x + row * p->S + s0, s1 - s0, ps, ps + 1);
        else sums_tile(j->x + (row * p->S + s0) * p->B, s1 - s0, p->B, ps, ps + W);
    }
}

CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void affine_row(const float *x, float *y, int64_t n, float a, float b) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

CPU_TARGET_CLONES("avx512f", "avx2", "default")
static void affine_tile(const float *x, float *y, int64_t rows, int64_t B, const float *a, const float *b) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < B; k++) y[r * B + k] = x[r * B + k] * a[k] + b[k];
}

/* Apply task t = (row, slice), the same split as the statistics. */
static void gn_apply(void *ctx, int64_t lo, int64_t hi) {
    const gn_job *j = ctx;
    const gn_params *p = j->p;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t row = t / p->nchunk, sl = t % p->nchunk;
        const int64_t s0 = sl * p->chunk, s1 = SI_MIN(p->S, s0 + p->chunk);
        if (!p->B) {
            const int64_t n = row / p->C, c = row % p->C;
            const float *xr = j->x + row * p->S + s0;
            float *yr = j->y + row * p->S + s0;
            affine_row(xr, yr, s1 - s0, j->a[n * p->C + c], j->b[n * p->C + c]);
            cpu_act_apply(p->act, p->n_act, yr, s1 - s0);
            continue;
        }
        const int64_t n = row / p->nblk, blk = row % p->nblk, c0 = blk * p->B, live = SI_MIN(p->B, p->C - c0);
        float a[64], b[64];
        for (int64_t k = 0; k < p->B; k++) {
            a[k] = k < live ? j->a[n * p->C + c0 + k] : 0.0f;
            b[k] = k < live ? j->b[n * p->C + c0 + k] : 0.0f;
        }
        const float *xt = j->x + (row * p->S + s0) * p->B;
        float *yt = j->y + (row * p->S + s0) * p->B;
        affine_tile(xt, yt, s1 - s0, p->B, a, b);
        cpu_act_apply(p->act, p->n_act, yt, (s1 - s0) * p->B);
        if (live < p->B) /* padded channels stay zero (an activation may have moved them) */
            for (int64_t r = 0; r < s1 - s0; r++)
                for (int64_t k = live; k < p->B; k++) yt[r * p->B + k] = 0.0f;
    }
}

/* ptr: X, Y */
static si_result gn_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const gn_params *p = params;
    const int64_t W = gn_width(p), tasks = gn_rows(p) * p->nchunk;
    cpu_arena *hold;
    double *part = cpu_scratch_take(sizeof(double) * (size_t)(tasks * W * 2) + sizeof(float) * (size_t)(2 * p->N * p->C) + 64, &hold);
    if (!part) {
        cpu_arena_give(hold);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory (group normalization scratch)");
    }
    gn_job j = {.p = p, .x = ptr[0], .y = ptr[1], .part = part};
    j.a = (float *)(part + tasks * W * 2);
    j.b = j.a + p->N * p->C;
    cpu_par_for(tasks, 1, gn_stats, &j);
    /* per group: the channels' partial sums, then each channel's a and b */
    const int64_t cpg = p->C / p->G;
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t g = 0; g < p->G; g++) {
            double s = 0, q = 0;
            for (int64_t c = g * cpg; c < (g + 1) * cpg; c++) {
                const int64_t row = p->B ? n * p->nblk + c / p->B : n * p->C + c, lane = p->B ? c % p->B : 0;
                for (int64_t sl = 0; sl < p->nchunk; sl++) {
                    const double *ps = part + (row * p->nchunk + sl) * W * 2;
                    s += ps[lane];
                    q += ps[W + lane];
                }
            }
            const double cnt = (double)(cpg * p->S), mean = cnt > 0 ? s / cnt : 0.0;
            const double var = cnt > 0 ? fmax(q / cnt - mean * mean, 0.0) : 0.0, rstd = 1.0 / sqrt(var + p->eps);
            for (int64_t c = g * cpg; c < (g + 1) * cpg; c++) {
                const double a = rstd * p->gamma[c];
                j.a[n * p->C + c] = (float)a;
                j.b[n * p->C + c] = (float)(p->beta[c] - mean * a);
            }
        }
    cpu_par_for(tasks, 1, gn_apply, &j);
    cpu_arena_give(hold);
    return SI_OK;
}

/* The layout of md for [N, C, spatial...] dims: 0 plain, B for channel-blocked by B (8 or 16), C for channels-last;
 * -1 for any other. */
static int64_t gn_layout(const dnnl_memory_desc_t *md, int r, const int64_t *d) {
    if (md->format_kind != dnnl_blocked || md->ndims != r || md->offset0) return -1;
    const dnnl_blocking_desc_t *bk = &md->format_desc.blocking;
    const int64_t S = si_shape_count(r - 2, d + 2);
    int64_t st = 1;
    if (bk->inner_nblks == 0) {
        for (int i = 0; i < r; i++)
            if (md->padded_dims[i] != d[i]) return -1;
        bool plain = true, last = bk->strides[1] == 1 && bk->strides[0] == d[1] * S;
        for (int i = r - 1; i >= 0; i--) {
            plain &= bk->strides[i] == st || d[i] == 1;
            st *= d[i];
        }
        st = d[1];
        for (int i = r - 1; i >= 2; i--) {
            last &= bk->strides[i] == st || d[i] == 1;
            st *= d[i];
        }
        return plain ? 0 : last && d[1] <= 1024 ? d[1] : -1;
    }
    if (bk->inner_nblks != 1 || bk->inner_idxs[0] != 1 || (bk->inner_blks[0] != 8 && bk->inner_blks[0] != 16)) return -1;
    const int64_t B = bk->inner_blks[0], Cp = (d[1] + B - 1) / B * B;
    if (md->padded_dims[0] != d[0] || md->padded_dims[1] != Cp) return -1;
    for (int i = 2; i < r; i++)
        if (md->padded_dims[i] != d[i]) return -1;
    st = B;
    for (int i = r - 1; i >= 2; i--) {
        if (bk->strides[i] != st && d[i] != 1) return -1;
        st *= d[i];
    }
    if (bk->strides[1] != B * S && Cp > B) return -1;
    if (bk->strides[0] != Cp * S && d[0] > 1) return -1;
    return B;
}

/* One group-norm step over value xv for node `node` whose output (the chain's anchor) has xv's shape: G groups,
 * per-channel scale gsc and bias gbi (C values each), extra[] the pattern's other nodes. */
static si_result gn_emit(cpu_pb *b, int node, int anchor, int xv, int64_t G, const float *gsc, const float *gbi, float eps,
                         const int *extra, int n_extra, const char *what) {
    const si_graph *g = b->g;
    const si_val *X = &g->values[xv], *Y = &g->values[g->nodes[anchor].out[0]];
    const int r = X->ndim;
    const int64_t C = X->dims[1];
    gn_params *p = cpu_pb_own(b, sizeof *p);
    float *gamma = cpu_pb_own(b, sizeof(float) * (size_t)C), *beta = cpu_pb_own(b, sizeof(float) * (size_t)C);
    if (!p || !gamma || !beta) return SI_ERR_NO_MEM;
    memset(p, 0, sizeof *p);
    *p = (gn_params){.N = X->dims[0], .C = C, .G = G, .S = si_shape_count(r - 2, X->dims + 2), .eps = eps};
    cpu_chain c;
    cpu_chain_init(&c, b, anchor, r, Y->dims, 1, false);
    p->n_act = cpu_chain_own_acts(b, &c, p->act);
    for (int64_t k = 0; k < C; k++) {
        const float sc = c.scale ? c.scale[k] : 1.0f, sh = c.shift ? c.shift[k] : 0.0f;
        gamma[k] = gsc[k] * sc;
        beta[k] = gbi[k] * sc + sh;
    }
    p->gamma = gamma, p->beta = beta;
    /* the input's layout when a kernel left it blocked or channels-last, else plain */
    int in_buf = cpu_pb_existing(b, xv);
    int64_t lay = in_buf >= 0 && !b->p->bufs[in_buf].dyn ? gn_layout(&b->p->bufs[in_buf].md, r, X->dims) : -1;
    if (lay < 0) {
        in_buf = cpu_pb_plain(b, xv);
        lay = 0;
    }
    if (in_buf < 0 || b->p->bufs[in_buf].dyn) {
        cpu_chain_free(&c);
        return in_buf < 0 ? SI_ERR_INTERNAL : SI_ERR_UNSUPPORTED;
    }
    p->B = lay;
    p->nblk = lay ? (C + lay - 1) / lay : 0;
    /* spatial slices: enough tasks for the threads, at least 4096 values each */
    const int64_t rows = gn_rows(p), want = 4 * (int64_t)cpu_par_threads();
    const int64_t width = lay ? lay : 1, min_rows = SI_MAX((int64_t)1, 4096 / width);
    p->nchunk = rows >= want ? 1 : SI_MAX((int64_t)1, SI_MIN((want + rows - 1) / rows, p->S / min_rows));
    p->chunk = (p->S + p->nchunk - 1) / p->nchunk;
    p->nchunk = p->S ? (p->S + p->chunk - 1) / p->chunk : 1;
    dnnl_memory_desc_t ymd = b->p->bufs[in_buf].md;
    if (!lay) cpu_md_plain(&ymd, r, Y->dims);
    int out = cpu_chain_dst(b, &c, &ymd);
    if (out < 0) {
        cpu_chain_free(&c);
        return si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    cpu_arg args[2] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, out}};
    char name[96];
    cpu_chain_name(&c, what, name, sizeof name);
    si_result st = cpu_pb_emit_own(b, node, name, "own:groupnorm", gn_run, p, args, 2);
    if (!st) {
        for (int i = 0; i < n_extra; i++) cpu_pb_consume(b, extra[i]);
        cpu_chain_consume(b, &c);
    }
    cpu_chain_free(&c);
    return st;
}

/* A float32 constant of `count` values (any shape), or NULL. */
static const float *f32_const(const si_graph *g, const si_node *nd, int k, int64_t count) {
    const si_tensor *t = cpu_const_input(g, nd, k);
    if (!t || t->dtype != SI_F32 || !t->data || si_shape_count(t->ndim, t->dims) != count) return NULL;
    return t->data;
}

/* x's value for a group norm: float32, static, [N, C, spatial...] with at least one spatial axis. */
static bool gn_input_ok(const si_graph *g, int xv) {
    if (xv < 0) return false;
    const si_val *X = &g->values[xv];
    return !X->const_val && X->dtype == SI_F32 && X->ndim >= 3 && cpu_value_static(X) && si_shape_count(X->ndim, X->dims) > 0;
}

/* GroupNormalization and InstanceNormalization nodes. */
si_result cpu_lower_groupnorm(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || nd->domain[0] || nd->n_in < 3 || nd->n_out != 1 || !gn_input_ok(g, nd->in[0])) return SI_ERR_UNSUPPORTED;
    const si_val *X = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    if (Y->dtype != SI_F32 || Y->ndim != X->ndim || memcmp(Y->dims, X->dims, sizeof(int64_t) * (size_t)X->ndim)) return SI_ERR_UNSUPPORTED;
    const int64_t C = X->dims[1];
    const bool inst = si_node_is(nd, SI_OP_INSTANCE_NORMALIZATION);
    int64_t G = C;
    if (!inst) {
        if (!si_node_attr(nd, "num_groups")) return SI_ERR_UNSUPPORTED;
        G = si_attr_int(nd, "num_groups", 0);
        if (G < 1 || C % G) return SI_ERR_UNSUPPORTED;
    }
    const float eps = si_attr_float(nd, "epsilon", 1e-5f);
    /* scale and bias: per channel, or (GroupNormalization before opset 21) per group */
    const float *sc = f32_const(g, nd, 1, C), *bi = f32_const(g, nd, 2, C);
    bool per_group = false;
    if ((!sc || !bi) && !inst && nd->opset < 21 && G != C) {
        sc = f32_const(g, nd, 1, G), bi = f32_const(g, nd, 2, G);
        per_group = true;
    }
    if (!sc || !bi) return SI_ERR_UNSUPPORTED;
    float *gs = si_malloc(sizeof(float) * (size_t)C), *gb = si_malloc(sizeof(float) * (size_t)C);
    if (!gs || !gb) {
        SI_FREE_ALL(gs, gb);
        return SI_ERR_NO_MEM;
    }
    for (int64_t k = 0; k < C; k++) {
        const int64_t i = per_group ? k / (C / G) : k;
        gs[k] = sc[i], gb[k] = bi[i];
    }
    si_result st = gn_emit(b, n, n, nd->in[0], G, gs, gb, eps, NULL, 0, inst ? "InstanceNorm" : "GroupNorm");
    SI_FREE_ALL(gs, gb);
    return st;
}

/* Reshape(x, [N, G, -1]) -> InstanceNormalization -> Reshape(to x's shape), found at the first Reshape (node n):
 * the group norm over x. SI_ERR_UNSUPPORTED when n does not start one. */
si_result cpu_lower_groupnorm_pattern(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *r1 = &g->nodes[n];
    if (cpu_no_own() || !si_node_is(r1, SI_OP_RESHAPE) || r1->domain[0] || r1->n_out != 1 || !gn_input_ok(g, r1->in[0]))
        return SI_ERR_UNSUPPORTED;
    const int xv = r1->in[0], v1 = r1->out[0];
    const si_val *X = &g->values[xv], *V1 = &g->values[v1];
    const int64_t N = X->dims[0], C = X->dims[1], S = si_shape_count(X->ndim - 2, X->dims + 2);
    if (V1->ndim != 3 || !cpu_value_static(V1) || V1->dims[0] != N) return SI_ERR_UNSUPPORTED;
    const int64_t G = V1->dims[1];
    if (G < 1 || C % G || V1->dims[2] != C / G * S) return SI_ERR_UNSUPPORTED;
    if (b->n_consumers[v1] != 1 || cpu_value_is_output(g, v1)) return SI_ERR_UNSUPPORTED;
    const int in = cpu_pb_consumer(b, v1, 0);
    if (in < 0) return SI_ERR_UNSUPPORTED;
    const si_node *ni = &g->nodes[in];
    if (!si_node_is(ni, SI_OP_INSTANCE_NORMALIZATION) || ni->domain[0] || ni->n_in < 3 || ni->in[0] != v1 || ni->n_out != 1)
        return SI_ERR_UNSUPPORTED;
    const int v2 = ni->out[0];
    const float *sc = f32_const(g, ni, 1, G), *bi = f32_const(g, ni, 2, G);
    if (!sc || !bi || g->values[v2].dtype != SI_F32 || b->n_consumers[v2] != 1 || cpu_value_is_output(g, v2)) return SI_ERR_UNSUPPORTED;
    const int r2 = cpu_pb_consumer(b, v2, 0);
    if (r2 < 0) return SI_ERR_UNSUPPORTED;
    const si_node *nr2 = &g->nodes[r2];
    if (!si_node_is(nr2, SI_OP_RESHAPE) || nr2->domain[0] || nr2->in[0] != v2 || nr2->n_out != 1) return SI_ERR_UNSUPPORTED;
    const si_val *Y = &g->values[nr2->out[0]];
    if (Y->dtype != SI_F32 || Y->ndim != X->ndim || memcmp(Y->dims, X->dims, sizeof(int64_t) * (size_t)X->ndim)) return SI_ERR_UNSUPPORTED;
    /* the second Reshape's shape input must be ready (a constant, or computed already: Shape(x)) */
    if (nr2->n_in > 1 && nr2->in[1] >= 0 && !g->values[nr2->in[1]].const_val) return SI_ERR_UNSUPPORTED;
    float *gs = si_malloc(sizeof(float) * (size_t)C), *gb = si_malloc(sizeof(float) * (size_t)C);
    if (!gs || !gb) {
        SI_FREE_ALL(gs, gb);
        return SI_ERR_NO_MEM;
    }
    for (int64_t k = 0; k < C; k++) gs[k] = sc[k / (C / G)], gb[k] = bi[k / (C / G)];
    const int extra[2] = {n, in};
    si_result st = gn_emit(b, n, r2, xv, G, gs, gb, si_attr_float(ni, "epsilon", 1e-5f), extra, 2, "GroupNorm");
    SI_FREE_ALL(gs, gb);
    return st;
}
