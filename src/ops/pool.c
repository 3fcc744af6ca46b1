/*
 * pool.c — MaxPool (with Indices), AveragePool, LpPool and GlobalAveragePool, GlobalMaxPool, GlobalLpPool,
 * over 1 to 3 spatial dimensions (the window geometry of nn.h). Values are computed in double.
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

/* A number attribute that some opsets declare as INT and others as FLOAT (LpPool's p). */
static double nn_attr_num(const si_kctx *c, const char *name, double dflt) {
    const si_attr *a = si_node_attr(c->node, name);
    if (!a) return dflt;
    if (a->type == SI_ATTR_INT) return (double)a->i;
    if (a->type == SI_ATTR_FLOAT) return (double)a->f;
    return dflt;
}

/* =========================================================================================================
 * Pooling: MaxPool, AveragePool, LpPool and the global variants
 */

enum { NN_POOL_MAX, NN_POOL_AVG, NN_POOL_LP };

typedef struct nn_pool {
    nn_geom g;
    int64_t N, C;
} nn_pool;

static si_result pool_prep(si_kctx *c, uint32_t types, nn_pool *p) {
    si_result st;
    if ((st = si_need_input(c, 0, false))) return st;
    const si_tensor *x = si_in(c, 0);
    int nsp = 0;
    if ((st = si_check_type(c, x->dtype, types, "X")) || (st = si_spatial_rank(c, x, &nsp))) return st;
    int cnt = 0;
    const int64_t *ks = si_attr_ints(c->node, "kernel_shape", &cnt);
    if (!ks || cnt != nsp)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute kernel_shape must have %d values (got %d)", nsp, cnt);
    p->N = x->dims[0];
    p->C = x->dims[1];
    return si_geom_init(c, nsp, x->dims + 2, ks, true, &p->g);
}

static si_result pool_infer_common(si_kctx *c, uint32_t types, bool indices) {
    nn_pool p;
    si_result st = pool_prep(c, types, &p);
    if (st) return st;
    if ((st = si_geom_set_out(c, 0, si_in(c, 0)->dtype, p.N, p.C, &p.g))) return st;
    if (indices && (st = si_geom_set_out(c, 1, SI_I64, p.N, p.C, &p.g))) return st;
    return SI_OK;
}

/* Number of window taps along one dimension whose coordinate lies in [lo, hi). */
static int64_t nn_taps_in(int64_t start, int64_t k, int64_t d, int64_t lo, int64_t hi) {
    int64_t n = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t v = start + i * d;
        if (v >= lo && v < hi) n++;
    }
    return n;
}

static void nn_pool_core(const nn_pool *p, int kind, bool include_pad, double lp, int64_t storage_order,
                         const double *x, double *y, int64_t *ind) {
    const nn_geom *g = &p->g;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t insz = ID * IH * IW, outsz = OD * OH * OW;
    for (int64_t nc = 0; nc < p->N * p->C; nc++) {
        const double *xin = x + nc * insz;
        double *yo = y + nc * outsz;
        int64_t *io = ind ? ind + nc * outsz : NULL;
        for (int64_t od = 0; od < OD; od++) {
            const int64_t sd = od * g->s[0] - g->pb[0];
            for (int64_t oh = 0; oh < OH; oh++) {
                const int64_t sh = oh * g->s[1] - g->pb[1];
                for (int64_t ow = 0; ow < OW; ow++) {
                    const int64_t sw = ow * g->s[2] - g->pb[2];
                    double acc = kind == NN_POOL_MAX ? -INFINITY : 0.0;
                    int64_t best = -1, cnt = 0;
                    bool saw_nan = false;
                    for (int64_t ka = 0; ka < g->k[0]; ka++) {
                        const int64_t id = sd + ka * g->d[0];
                        if (id < 0 || id >= ID) continue;
                        for (int64_t kb = 0; kb < g->k[1]; kb++) {
                            const int64_t ih = sh + kb * g->d[1];
                            if (ih < 0 || ih >= IH) continue;
                            const double *xr = xin + (id * IH + ih) * IW;
                            for (int64_t ke = 0; ke < g->k[2]; ke++) {
                                const int64_t iw = sw + ke * g->d[2];
                                if (iw < 0 || iw >= IW) continue;
                                const double v = xr[iw];
                                if (kind == NN_POOL_MAX) {
                                    if (isnan(v)) {
                                        saw_nan = true;
                                    } else if (best < 0 || v > acc) {
                                        acc = v;
                                        best = storage_order ? (iw * IH + ih) * ID + id : (id * IH + ih) * IW + iw;
                                    }
                                } else if (kind == NN_POOL_AVG) {
                                    acc += v;
                                } else {
                                    acc += pow(fabs(v), lp);
                                }
                                cnt++;
                            }
                        }
                    }
                    const int64_t o = (od * OH + oh) * OW + ow;
                    if (kind == NN_POOL_MAX) {
                        if (best < 0 && saw_nan) acc = NAN;
                        yo[o] = acc;
                        if (io) io[o] = best < 0 ? -1 : nc * insz + best;
                    } else if (kind == NN_POOL_AVG) {
                        int64_t div = cnt;
                        if (include_pad) {
                            div = nn_taps_in(sd, g->k[0], g->d[0], -g->pb[0], ID + g->pe[0]) *
                                nn_taps_in(sh, g->k[1], g->d[1], -g->pb[1], IH + g->pe[1]) *
                                nn_taps_in(sw, g->k[2], g->d[2], -g->pb[2], IW + g->pe[2]);
                        }
                        yo[o] = acc / (double)div;
                    } else {
                        yo[o] = pow(acc, 1.0 / lp);
                    }
                }
            }
        }
    }
}

static si_result pool_run_common(si_kctx *c, uint32_t types, int kind) {
    nn_pool p;
    si_result st = pool_prep(c, types, &p);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0), *ind = kind == NN_POOL_MAX ? si_out(c, 1) : NULL;
    if (!y || si_count(y) == 0) return SI_OK;
    bool include_pad = kind == NN_POOL_AVG && si_attr_int(c->node, "count_include_pad", 0) != 0;
    double lp = kind == NN_POOL_LP ? nn_attr_num(c, "p", 2.0) : 2.0;
    int64_t so = kind == NN_POOL_MAX ? si_attr_int(c->node, "storage_order", 0) : 0;
    double *xd = si_tensor_to_f64(x), *yd = si_malloc((size_t)si_count(y) * sizeof(double));
    if (!xd || !yd) {
        SI_FREE_ALL(xd, yd);
        return si_op_nomem(c);
    }
    nn_pool_core(&p, kind, include_pad, lp, so, xd, yd, ind ? (int64_t *)ind->data : NULL);
    si_tensor_from_f64(y, yd);
    SI_FREE_ALL(xd, yd);
    return SI_OK;
}

#define NN_T_MAXPOOL (SI_T_FLOATS | SI_T(SI_I8) | SI_T(SI_U8))

static si_result maxpool_infer(si_kctx *c) { return pool_infer_common(c, NN_T_MAXPOOL, true); }
static si_result maxpool_run(si_kctx *c) { return pool_run_common(c, NN_T_MAXPOOL, NN_POOL_MAX); }
static si_result avgpool_infer(si_kctx *c) { return pool_infer_common(c, SI_T_FLOATS, false); }
static si_result avgpool_run(si_kctx *c) { return pool_run_common(c, SI_T_FLOATS, NN_POOL_AVG); }
static si_result lppool_infer(si_kctx *c) { return pool_infer_common(c, SI_T_FLOATS, false); }
static si_result lppool_run(si_kctx *c) { return pool_run_common(c, SI_T_FLOATS, NN_POOL_LP); }

static si_result gpool_prep(si_kctx *c) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_FLOATS, "X", &x);
    if (st) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2 (N, C, ...), got %d", x->ndim);
    return SI_OK;
}

static si_result gpool_infer(si_kctx *c) {
    si_result st = gpool_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

static si_result gpool_run(si_kctx *c) {
    const int kind = si_op_arg(c); /* NN_POOL_AVG, NN_POOL_MAX or NN_POOL_LP */
    si_result st = gpool_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    const int64_t nc = x->dims[0] * x->dims[1], sz = si_prod(x->dims, 2, x->ndim);
    const double lp = kind == NN_POOL_LP ? nn_attr_num(c, "p", 2.0) : 2.0;
    double *xd = si_tensor_to_f64(x), *yd = si_malloc((size_t)nc * sizeof(double));
    if (!xd || !yd) {
        SI_FREE_ALL(xd, yd);
        return si_op_nomem(c);
    }
    for (int64_t i = 0; i < nc; i++) {
        const double *v = xd + i * sz;
        double acc = kind == NN_POOL_MAX ? -INFINITY : 0.0;
        for (int64_t j = 0; j < sz; j++) {
            if (kind == NN_POOL_MAX)
                acc = (v[j] > acc || isnan(v[j])) ? v[j] : acc;
            else if (kind == NN_POOL_AVG)
                acc += v[j];
            else
                acc += pow(fabs(v[j]), lp);
        }
        if (kind == NN_POOL_AVG)
            acc /= (double)sz;
        else if (kind == NN_POOL_LP)
            acc = pow(acc, 1.0 / lp);
        yd[i] = acc;
    }
    si_tensor_from_f64(y, yd);
    SI_FREE_ALL(xd, yd);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(MAX_POOL, NN_T_MAXPOOL, maxpool_infer, maxpool_run),
    SI_OP_DEF(AVERAGE_POOL, SI_T_FLOATS, avgpool_infer, avgpool_run),
    SI_OP_DEF(LP_POOL, SI_T_FLOATS, lppool_infer, lppool_run),
    SI_OP_DEF_ARG(GLOBAL_AVERAGE_POOL, SI_T_FLOATS, gpool_infer, gpool_run, NN_POOL_AVG),
    SI_OP_DEF_ARG(GLOBAL_MAX_POOL, SI_T_FLOATS, gpool_infer, gpool_run, NN_POOL_MAX),
    SI_OP_DEF_ARG(GLOBAL_LP_POOL, SI_T_FLOATS, gpool_infer, gpool_run, NN_POOL_LP),
};

SI_OP_FAMILY_PARTIAL(pool, defs);
