/*
 * norm.c — the normalisations: BatchNormalization, InstanceNormalization, LayerNormalization,
 * RMSNormalization, GroupNormalization, LpNormalization, LRN and MeanVarianceNormalization. Inputs are
 * converted once to double, computed in double and converted back (rounding like ONNX Cast).
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

/* ---- BatchNormalization ---- */

typedef struct nn_bn {
    int64_t N, C, S, psz; /* psz: 1 (spatial) or S (per activation, spatial=0 in old opsets) */
    bool training;
} nn_bn;

static si_result bn_prep(si_kctx *c, nn_bn *p) {
    si_result st;
    if ((st = si_need_inputs(c, 5))) return st;
    const si_tensor *x = si_in(c, 0);
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "X"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 2, got %d", x->ndim);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->S = si_prod(x->dims, 2, x->ndim);
    bool spatial = c->opset >= 9 || si_attr_int(c->node, "spatial", 1) != 0;
    p->psz = spatial ? 1 : p->S;
    static const char *const names[5] = {"X", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++) {
        const si_tensor *t = si_in(c, i);
        if ((st = si_check_type(c, t->dtype, SI_T_FLOATS, names[i]))) return st;
        if (si_dim_ne(si_count(t), si_dim_mul(p->C, p->psz)))
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, expected %lld", names[i],
                             (long long)si_count(t), (long long)(p->C * p->psz));
    }
    if (c->opset >= 14) {
        p->training = si_attr_int(c->node, "training_mode", 0) != 0;
    } else {
        bool extra = false;
        for (int k = 1; k < c->n_out; k++)
            if (c->out[k]) extra = true;
        p->training = extra && (c->opset > 6 || si_attr_int(c->node, "is_test", 0) == 0);
    }
    if (p->training && !spatial)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "training mode with spatial=0 is not supported");
    return SI_OK;
}

SI_OP_PLANNED(bn_infer, nn_bn, p, bn_prep) {
    si_result st = SI_OK;
    const si_tensor *x = si_in(c, 0);
    if ((st = si_same_as_input(c, 0, 0))) return st;
    int64_t cd[1] = {p->C};
    si_dtype st_dt = c->opset >= 14 ? si_in(c, 3)->dtype : x->dtype;
    for (int k = 1; k < c->n_out && k < 5; k++) {
        if (!c->out[k]) continue;
        if (c->opset >= 14 && k > 2)
            return si_op_err(c, SI_ERR_INVALID_ARG, "BatchNormalization-%d has at most 3 outputs", c->opset);
        const si_tensor *src = si_in(c, (k % 2) ? 3 : 4);
        if (p->psz == 1)
            st = si_set_out(c, k, st_dt, 1, cd);
        else
            st = si_set_out(c, k, st_dt, src->ndim, src->dims);
        if (st) return st;
    }
    return SI_OK;
}

SI_OP_PLANNED(bn_run, nn_bn, p, bn_prep) {
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    double mom = si_attr_float(c->node, "momentum", 0.9f);
    double *xd = si_tensor_to_f64(x), *sc = si_tensor_to_f64(si_in(c, 1)), *bi = si_tensor_to_f64(si_in(c, 2));
    double *mn = si_tensor_to_f64(si_in(c, 3)), *vr = si_tensor_to_f64(si_in(c, 4));
    const int64_t np = p->C * p->psz;
    double *bm = si_calloc((size_t)(2 * np + 1), sizeof(double));
    if (!xd || !sc || !bi || !mn || !vr || !bm) {
        SI_FREE_ALL(xd, sc, bi, mn, vr, bm);
        return si_op_nomem(c);
    }
    double *bv = bm + np;
    const double *um = mn, *uv = vr; /* statistics used for Y */
    if (p->training) {
        const double cnt = (double)(p->N * p->S);
        for (int64_t ch = 0; ch < p->C; ch++) {
            double s = 0, q = 0;
            for (int64_t n = 0; n < p->N; n++) {
                const double *v = xd + (n * p->C + ch) * p->S;
                for (int64_t i = 0; i < p->S; i++) s += v[i];
            }
            const double m = cnt > 0 ? s / cnt : 0.0;
            for (int64_t n = 0; n < p->N; n++) {
                const double *v = xd + (n * p->C + ch) * p->S;
                for (int64_t i = 0; i < p->S; i++) q += (v[i] - m) * (v[i] - m);
            }
            bm[ch] = m;
            bv[ch] = cnt > 0 ? q / cnt : 0.0;
        }
        um = bm;
        uv = bv;
    }
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t ch = 0; ch < p->C; ch++) {
            double *v = xd + (n * p->C + ch) * p->S;
            for (int64_t i = 0; i < p->S; i++) {
                const int64_t k = ch * p->psz + (p->psz == 1 ? 0 : i);
                v[i] = sc[k] * (v[i] - um[k]) / sqrt(uv[k] + eps) + bi[k];
            }
        }
    if (y) si_tensor_from_f64(y, xd);
    /* extra outputs: running mean/var (updated in training mode), then saved batch mean/var (opset < 14) */
    for (int k = 1; k < c->n_out && k < 5; k++) {
        si_tensor *o = c->out[k];
        if (!o) continue;
        for (int64_t i = 0; i < np; i++) {
            double v;
            if (k == 1)
                v = p->training ? mn[i] * mom + bm[i] * (1 - mom) : mn[i];
            else if (k == 2)
                v = p->training ? vr[i] * mom + bv[i] * (1 - mom) : vr[i];
            else if (k == 3)
                v = p->training ? bm[i] : mn[i];
            else
                v = p->training ? bv[i] : vr[i];
            si_store_f64(o->dtype, o->data, i, v);
        }
    }
    SI_FREE_ALL(xd, sc, bi, mn, vr, bm);
    return SI_OK;
}

/* ---- InstanceNormalization ---- */

static si_result instnorm_prep(si_kctx *c) {
    si_result st;
    if ((st = si_need_inputs(c, 3))) return st;
    const si_tensor *x = si_in(c, 0);
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "input"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2, got %d", x->ndim);
    for (int i = 1; i < 3; i++) {
        const si_tensor *t = si_in(c, i);
        if ((st = si_check_type(c, t->dtype, SI_T_FLOATS, i == 1 ? "scale" : "B"))) return st;
        if (si_dim_ne(si_count(t), x->dims[1]))
            return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, expected %lld", i == 1 ? "scale" : "B",
                             (long long)si_count(t), (long long)x->dims[1]);
    }
    return SI_OK;
}

static si_result instnorm_infer(si_kctx *c) {
    si_result st = instnorm_prep(c);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result instnorm_run(si_kctx *c) {
    si_result st = instnorm_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t N = x->dims[0], C = x->dims[1], S = si_prod(x->dims, 2, x->ndim);
    double *xd = si_tensor_to_f64(x), *sc = si_tensor_to_f64(si_in(c, 1)), *bi = si_tensor_to_f64(si_in(c, 2));
    if (!xd || !sc || !bi) {
        SI_FREE_ALL(xd, sc, bi);
        return si_op_nomem(c);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            double *v = xd + (n * C + ch) * S, s = 0, q = 0;
            for (int64_t i = 0; i < S; i++) s += v[i];
            const double m = S > 0 ? s / (double)S : 0.0;
            for (int64_t i = 0; i < S; i++) q += (v[i] - m) * (v[i] - m);
            const double inv = 1.0 / sqrt((S > 0 ? q / (double)S : 0.0) + eps);
            for (int64_t i = 0; i < S; i++) v[i] = (v[i] - m) * inv * sc[ch] + bi[ch];
        }
    si_tensor_from_f64(y, xd);
    SI_FREE_ALL(xd, sc, bi);
    return SI_OK;
}

/* ---- LayerNormalization / RMSNormalization ---- */

static si_result lnorm_prep(si_kctx *c, bool rms, int *axis) {
    si_result st;
    if ((st = si_need_inputs(c, 2))) return st;
    const si_tensor *x = si_in(c, 0), *sc = si_in(c, 1), *b = rms ? NULL : si_in(c, 2);
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "X")) || (st = si_check_type(c, sc->dtype, SI_T_FLOATS, "Scale")))
        return st;
    if (b && (st = si_check_type(c, b->dtype, SI_T_FLOATS, "B"))) return st;
    if (x->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1");
    if ((st = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, axis))) return st;
    if ((st = si_unibroadcast_check(c, sc, x->ndim, x->dims, "Scale"))) return st;
    if (b && (st = si_unibroadcast_check(c, b, x->ndim, x->dims, "B"))) return st;
    return SI_OK;
}

static si_dtype nn_stash_type(const si_kctx *c) {
    int64_t t = si_attr_int(c->node, "stash_type", 1);
    if (t == SI_F64 || t == SI_F16 || t == SI_BF16) return (si_dtype)t;
    return SI_F32;
}

static si_result lnorm_infer(si_kctx *c) {
    int axis = 0;
    si_result st = lnorm_prep(c, false, &axis);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    if ((st = si_same_as_input(c, 0, 0))) return st;
    int64_t dims[SI_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = i < axis ? x->dims[i] : 1;
    if ((st = si_set_out(c, 1, nn_stash_type(c), x->ndim, dims))) return st;
    return si_set_out(c, 2, nn_stash_type(c), x->ndim, dims);
}

static si_result rmsnorm_infer(si_kctx *c) {
    int axis = 0;
    si_result st = lnorm_prep(c, true, &axis);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result lnorm_run_common(si_kctx *c, bool rms) {
    int axis = 0;
    si_result st = lnorm_prep(c, rms, &axis);
    if (st) return st;
    const si_tensor *x = si_in(c, 0), *b = rms ? NULL : si_in(c, 2);
    si_tensor *y = si_out(c, 0), *om = rms ? NULL : si_out(c, 1), *oi = rms ? NULL : si_out(c, 2);
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t outer = si_prod(x->dims, 0, axis), inner = si_prod(x->dims, axis, x->ndim);
    double *xd = si_tensor_to_f64(x), *sc = si_broadcast_to_f64(si_in(c, 1), x->ndim, x->dims);
    double *bd = b ? si_broadcast_to_f64(b, x->ndim, x->dims) : NULL;
    if (!xd || !sc || (b && !bd)) {
        SI_FREE_ALL(xd, sc, bd);
        return si_op_nomem(c);
    }
    for (int64_t o = 0; o < outer; o++) {
        double *v = xd + o * inner;
        const double *s = sc + o * inner, *bb = bd ? bd + o * inner : NULL;
        double m = 0, q = 0;
        if (!rms) {
            for (int64_t i = 0; i < inner; i++) m += v[i];
            m = inner > 0 ? m / (double)inner : 0.0;
        }
        for (int64_t i = 0; i < inner; i++) q += (v[i] - m) * (v[i] - m);
        const double inv = 1.0 / sqrt((inner > 0 ? q / (double)inner : 0.0) + eps);
        for (int64_t i = 0; i < inner; i++) v[i] = (v[i] - m) * inv * s[i] + (bb ? bb[i] : 0.0);
        if (om) si_store_f64(om->dtype, om->data, o, m);
        if (oi) si_store_f64(oi->dtype, oi->data, o, inv);
    }
    if (y) si_tensor_from_f64(y, xd);
    SI_FREE_ALL(xd, sc, bd);
    return SI_OK;
}

static si_result lnorm_run(si_kctx *c) { return lnorm_run_common(c, false); }
static si_result rmsnorm_run(si_kctx *c) { return lnorm_run_common(c, true); }

/* ---- GroupNormalization ---- */

static si_result gnorm_prep(si_kctx *c, int64_t *groups, bool *per_channel) {
    si_result st;
    if ((st = si_need_inputs(c, 3))) return st;
    const si_tensor *x = si_in(c, 0);
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "X"))) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 2, got %d", x->ndim);
    const si_attr *a = si_node_attr(c->node, "num_groups");
    if (!a) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute num_groups is required");
    int64_t g = a->i, C = x->dims[1];
    if (g < 1 && !si_dim_known(C))
        return si_op_err(c, SI_ERR_INVALID_ARG, "num_groups %lld must be positive", (long long)g);
    if (g < 1 || (si_dim_known(C) && C % g != 0))
        return si_op_err(c, SI_ERR_INVALID_ARG, "num_groups %lld must be positive and divide the %lld channels",
                         (long long)g, (long long)C);
    *groups = g;
    const si_tensor *sc = si_in(c, 1), *b = si_in(c, 2);
    if ((st = si_check_type(c, sc->dtype, SI_T_FLOATS, "scale")) ||
        (st = si_check_type(c, b->dtype, SI_T_FLOATS, "bias")))
        return st;
    /* opset 21: one scale/bias per channel. opset 18 specifies one per group, but exporters also wrote one
     * per channel (the reason for the revision), so accept both there. */
    int64_t n = si_count(sc), nb = si_count(b); /* -1: not known yet (compile time) */
    bool ok = (n < 0 || nb < 0 || n == nb) && (n < 0 || !si_dim_known(C) || n == C || (c->opset < 21 && n == g));
    if (!ok)
        return si_op_err(c, SI_ERR_INVALID_ARG, "scale and bias must have %lld values (got %lld and %lld)",
                         (long long)(c->opset >= 21 ? C : g), (long long)n, (long long)si_count(b));
    *per_channel = c->opset >= 21 || n != g;
    return SI_OK;
}

static si_result gnorm_infer(si_kctx *c) {
    int64_t g = 0;
    bool pc = false;
    si_result st = gnorm_prep(c, &g, &pc);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result gnorm_run(si_kctx *c) {
    int64_t G = 0;
    bool pc = false;
    si_result st = gnorm_prep(c, &G, &pc);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    const double eps = si_attr_float(c->node, "epsilon", 1e-5f);
    const int64_t N = x->dims[0], C = x->dims[1], S = si_prod(x->dims, 2, x->ndim), cpg = C / G;
    double *xd = si_tensor_to_f64(x), *sc = si_tensor_to_f64(si_in(c, 1)), *bi = si_tensor_to_f64(si_in(c, 2));
    if (!xd || !sc || !bi) {
        SI_FREE_ALL(xd, sc, bi);
        return si_op_nomem(c);
    }
    const int64_t gsz = cpg * S;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double *v = xd + (n * C + g * cpg) * S, s = 0, q = 0;
            for (int64_t i = 0; i < gsz; i++) s += v[i];
            const double m = gsz > 0 ? s / (double)gsz : 0.0;
            for (int64_t i = 0; i < gsz; i++) q += (v[i] - m) * (v[i] - m);
            const double inv = 1.0 / sqrt((gsz > 0 ? q / (double)gsz : 0.0) + eps);
            for (int64_t i = 0; i < gsz; i++) {
                const int64_t k = pc ? g * cpg + i / S : g;
                v[i] = (v[i] - m) * inv * sc[k] + bi[k];
            }
        }
    si_tensor_from_f64(y, xd);
    SI_FREE_ALL(xd, sc, bi);
    return SI_OK;
}

/* ---- LpNormalization ---- */

static si_result lpnorm_prep(si_kctx *c, int *axis, int64_t *p) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_FLOATS, "input", &x);
    if (st) return st;
    if ((st = si_axis(c, si_attr_int(c->node, "axis", -1), x->ndim, axis))) return st;
    *p = si_attr_int(c->node, "p", 2);
    if (*p != 1 && *p != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "p must be 1 or 2, got %lld", (long long)*p);
    return SI_OK;
}

static si_result lpnorm_infer(si_kctx *c) {
    int axis = 0;
    int64_t p = 0;
    si_result st = lpnorm_prep(c, &axis, &p);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result lpnorm_run(si_kctx *c) {
    int axis = 0;
    int64_t p = 0;
    si_result st = lpnorm_prep(c, &axis, &p);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    const int64_t outer = si_prod(x->dims, 0, axis), len = x->dims[axis], inner = si_prod(x->dims, axis + 1, x->ndim);
    double *xd = si_tensor_to_f64(x);
    if (!xd) return si_op_nomem(c);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double *v = xd + o * len * inner + i, nrm = 0;
            for (int64_t k = 0; k < len; k++) nrm += p == 1 ? fabs(v[k * inner]) : v[k * inner] * v[k * inner];
            if (p == 2) nrm = sqrt(nrm);
            for (int64_t k = 0; k < len; k++) v[k * inner] = nrm != 0 ? v[k * inner] / nrm : 0.0;
        }
    si_tensor_from_f64(y, xd);
    si_free(xd);
    return SI_OK;
}

/* ---- LRN ---- */

static si_result lrn_prep(si_kctx *c, int64_t *size) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_FLOATS, "X", &x);
    if (st) return st;
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 2, got %d", x->ndim);
    const si_attr *a = si_node_attr(c->node, "size");
    if (!a || a->i < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute size is required and must be positive");
    *size = a->i;
    return SI_OK;
}

static si_result lrn_infer(si_kctx *c) {
    int64_t size = 0;
    si_result st = lrn_prep(c, &size);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result lrn_run(si_kctx *c) {
    int64_t size = 0;
    si_result st = lrn_prep(c, &size);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    const double alpha = si_attr_float(c->node, "alpha", 1e-4f), beta = si_attr_float(c->node, "beta", 0.75f);
    const double bias = si_attr_float(c->node, "bias", 1.0f);
    const int64_t N = x->dims[0], C = x->dims[1], S = si_prod(x->dims, 2, x->ndim);
    const int64_t lo = (size - 1) / 2, hi = size - 1 - lo; /* floor((size-1)/2), ceil((size-1)/2) */
    double *xd = si_tensor_to_f64(x), *yd = si_malloc((size_t)SI_MAX(si_count(x), (int64_t)1) * sizeof(double));
    if (!xd || !yd) {
        SI_FREE_ALL(xd, yd);
        return si_op_nomem(c);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            const int64_t c0 = SI_MAX((int64_t)0, ch - lo), c1 = SI_MIN(C - 1, ch + hi);
            for (int64_t i = 0; i < S; i++) {
                double sq = 0;
                for (int64_t k = c0; k <= c1; k++) {
                    const double v = xd[(n * C + k) * S + i];
                    sq += v * v;
                }
                const int64_t at = (n * C + ch) * S + i;
                yd[at] = xd[at] / pow(bias + alpha / (double)size * sq, beta);
            }
        }
    si_tensor_from_f64(y, yd);
    SI_FREE_ALL(xd, yd);
    return SI_OK;
}

/* ---- MeanVarianceNormalization ---- */

static si_result mvn_prep(si_kctx *c, bool *red) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_FLOATS, "X", &x);
    if (st) return st;
    for (int i = 0; i < SI_MAX_DIMS; i++) red[i] = false;
    int cnt = 0;
    const int64_t *ax = c->opset >= 9 ? si_attr_ints(c->node, "axes", &cnt) : NULL;
    static const int64_t dflt[3] = {0, 2, 3}, per_chan[2] = {2, 3}, across[3] = {1, 2, 3};
    if (!ax && c->opset < 9) {
        /* the experimental opset-1 form: per (n, c) unless across_channels */
        bool ac = si_attr_int(c->node, "across_channels", 0) != 0;
        ax = ac ? across : per_chan;
        cnt = ac ? 3 : 2;
    } else if (!ax) {
        ax = dflt;
        cnt = 3;
    }
    for (int i = 0; i < cnt; i++) {
        int a = 0;
        if ((st = si_axis(c, ax[i], x->ndim, &a))) return st;
        red[a] = true;
    }
    return SI_OK;
}

static si_result mvn_infer(si_kctx *c) {
    bool red[SI_MAX_DIMS];
    si_result st = mvn_prep(c, red);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result mvn_run(si_kctx *c) {
    bool red[SI_MAX_DIMS];
    si_result st = mvn_prep(c, red);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(x) == 0) return SI_OK;
    const int r = x->ndim;
    const int64_t n = si_count(x);
    /* group id of each element: its index in the shape with the reduced axes removed */
    int64_t gst[SI_MAX_DIMS], ng = 1, idx[SI_MAX_DIMS] = {0};
    for (int d = r - 1; d >= 0; d--) {
        gst[d] = red[d] ? 0 : ng;
        if (!red[d]) ng *= x->dims[d];
    }
    double *xd = si_tensor_to_f64(x), *sum = si_calloc((size_t)(2 * ng), sizeof(double));
    int64_t *gid = si_malloc((size_t)n * sizeof(int64_t)), *gcnt = si_calloc((size_t)ng, sizeof(int64_t));
    if (!xd || !sum || !gid || !gcnt) {
        SI_FREE_ALL(xd, sum, gid, gcnt);
        return si_op_nomem(c);
    }
    double *sq = sum + ng;
    int64_t g = 0;
    for (int64_t i = 0; i < n; i++) {
        gid[i] = g;
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++;
            g += gst[d];
            if (idx[d] < x->dims[d]) break;
            g -= gst[d] * idx[d];
            idx[d] = 0;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        sum[gid[i]] += xd[i];
        gcnt[gid[i]]++;
    }
    for (int64_t k = 0; k < ng; k++) sum[k] = gcnt[k] ? sum[k] / (double)gcnt[k] : 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double dv = xd[i] - sum[gid[i]];
        sq[gid[i]] += dv * dv;
    }
    for (int64_t k = 0; k < ng; k++) sq[k] = sqrt(gcnt[k] ? sq[k] / (double)gcnt[k] : 0.0) + 1e-9;
    const bool scale = c->opset >= 9 || si_attr_int(c->node, "normalize_variance", 1) != 0;
    for (int64_t i = 0; i < n; i++) xd[i] = scale ? (xd[i] - sum[gid[i]]) / sq[gid[i]] : xd[i] - sum[gid[i]];
    si_tensor_from_f64(y, xd);
    SI_FREE_ALL(xd, sum, gid, gcnt);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(BATCH_NORMALIZATION, SI_T_FLOATS, bn_infer, bn_run),
    SI_OP_DEF(INSTANCE_NORMALIZATION, SI_T_FLOATS, instnorm_infer, instnorm_run),
    SI_OP_DEF(LAYER_NORMALIZATION, SI_T_FLOATS, lnorm_infer, lnorm_run),
    SI_OP_DEF(GROUP_NORMALIZATION, SI_T_FLOATS, gnorm_infer, gnorm_run),
    SI_OP_DEF(RMS_NORMALIZATION, SI_T_FLOATS, rmsnorm_infer, rmsnorm_run),
    SI_OP_DEF(LP_NORMALIZATION, SI_T_FLOATS, lpnorm_infer, lpnorm_run),
    SI_OP_DEF(LRN, SI_T_FLOATS, lrn_infer, lrn_run),
    SI_OP_DEF(MEAN_VARIANCE_NORMALIZATION, SI_T_FLOATS, mvn_infer, mvn_run),
};

SI_OP_FAMILY_PARTIAL(norm, defs);
