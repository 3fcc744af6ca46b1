/*
 * pad.c — Pad: constant, reflect, edge and wrap modes, pads as attributes (before opset 11) or inputs.
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

si_result si_pad_prepare(si_kctx *c, si_pad *p) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_ALL, "data", &x);
    if (st) return st;
    const int r = x->ndim;
    p->rank = r;
    static const char *const modes[4] = {"constant", "reflect", "edge", "wrap"};
    if ((st = si_attr_choice(c, "mode", "constant", modes, 4, &p->mode))) return st;
    int64_t pads[2 * SI_MAX_DIMS];
    int np = 0, axes[SI_MAX_DIMS], naxes = r;
    for (int i = 0; i < r; i++) axes[i] = i;
    if (c->opset < 11) {
        int cnt = 0;
        const int64_t *v = si_attr_ints(c->node, "pads", &cnt);
        if (!v) v = si_attr_ints(c->node, "paddings", &cnt);
        if (!v) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute pads is required");
        if (cnt > 2 * SI_MAX_DIMS) return si_op_err(c, SI_ERR_INVALID_ARG, "too many pads");
        memcpy(pads, v, (size_t)cnt * sizeof(int64_t));
        np = cnt;
    } else {
        if ((st = si_need_input(c, 1, true))) return st;
        if ((st = si_tensor_ints(c, si_in(c, 1), "pads", pads, 2 * SI_MAX_DIMS, &np))) return st;
        const si_tensor *ta = c->opset >= 18 ? si_in(c, 3) : NULL;
        if (ta) {
            int64_t av[SI_MAX_DIMS];
            bool seen[SI_MAX_DIMS] = {false};
            if ((st = si_need_input(c, 3, true))) return st;
            if ((st = si_tensor_ints(c, ta, "axes", av, SI_MAX_DIMS, &naxes))) return st;
            for (int i = 0; i < naxes; i++) {
                if ((st = si_axis(c, av[i], r, &axes[i]))) return st;
                if (seen[axes[i]])
                    return si_op_err(c, SI_ERR_INVALID_ARG, "axes contains %lld twice", (long long)av[i]);
                seen[axes[i]] = true;
            }
        }
    }
    if (np != 2 * naxes) return si_op_err(c, SI_ERR_INVALID_ARG, "pads has %d values, expected %d", np, 2 * naxes);
    for (int d = 0; d < r; d++) p->pb[d] = p->pe[d] = 0;
    for (int i = 0; i < naxes; i++) {
        p->pb[axes[i]] = pads[i];
        p->pe[axes[i]] = pads[naxes + i];
    }
    for (int d = 0; d < r; d++) {
        if (!si_dim_known(x->dims[d])) { /* compile time */
            p->out[d] = si_dim_add(x->dims[d], p->pb[d] + p->pe[d]);
            continue;
        }
        p->out[d] = x->dims[d] + p->pb[d] + p->pe[d];
        if (p->out[d] < 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "pads make dimension %d negative (%lld)", d, (long long)p->out[d]);
        /* non-constant modes need source data along a padded dimension */
        const int64_t len = x->dims[d] - SI_MAX((int64_t)0, -p->pb[d]) - SI_MAX((int64_t)0, -p->pe[d]);
        if (p->mode != SI_PAD_CONSTANT && p->out[d] > 0 && len <= 0)
            return si_op_err(c, SI_ERR_INVALID_ARG, "mode '%s' cannot pad an empty dimension %d", modes[p->mode], d);
    }
    return SI_OK;
}

int64_t si_pad_src(const si_pad *p, int d, int64_t in, int64_t o) {
    const int64_t lo = SI_MAX((int64_t)0, -p->pb[d]);            /* input rows a negative pad crops */
    const int64_t len = in - lo - SI_MAX((int64_t)0, -p->pe[d]); /* the rows kept */
    const int64_t i = o - SI_MAX((int64_t)0, p->pb[d]);
    int64_t v;
    if (i >= 0 && i < len) {
        v = i;
    } else if (p->mode == SI_PAD_CONSTANT || len <= 0) {
        return -1;
    } else if (p->mode == SI_PAD_EDGE) {
        v = i < 0 ? 0 : len - 1;
    } else if (p->mode == SI_PAD_WRAP) {
        v = ((i % len) + len) % len;
    } else if (len == 1) {
        v = 0;
    } else { /* reflect */
        const int64_t per = 2 * (len - 1);
        v = ((i % per) + per) % per;
        if (v >= len) v = per - v;
    }
    return lo + v;
}

static si_result pad_infer(si_kctx *c) {
    si_pad p;
    const si_tensor *x, *pads = si_in(c, 1), *axes = c->opset >= 18 ? si_in(c, 3) : NULL;
    si_result st = si_input0(c, SI_T_ALL, "data", &x);
    if (st) return st;
    if (c->opset >= 11 && ((pads && !si_has_values(pads)) || (axes && !si_has_values(axes))))
        return si_set_out_unknown(c, 0, x->dtype, x->ndim); /* compile time: pads known at run time */
    st = si_pad_prepare(c, &p);
    if (st) return st;
    return si_set_out(c, 0, si_in(c, 0)->dtype, p.rank, p.out);
}

SI_OP_PLANNED(pad_run, si_pad, p, si_pad_prepare) {
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    const int r = p->rank;
    const size_t esz = si_dtype_size(x->dtype);
    if (r == 0) {
        memcpy(y->data, x->data, esz);
        return SI_OK;
    }
    /* the constant element */
    unsigned char cval[16];
    memset(cval, 0, sizeof cval);
    if (p->mode == SI_PAD_CONSTANT) {
        const si_tensor *cv = c->opset >= 11 ? si_in_nonempty(c, 2) : NULL;
        if (cv) {
            if (!cv->data) return si_op_err(c, SI_ERR_INVALID_ARG, "constant_value has no data");
            if (si_dtype_is_int(x->dtype) && si_dtype_is_int(cv->dtype))
                si_store_i64(x->dtype, cval, 0, si_load_i64(cv->dtype, cv->data, 0));
            else
                si_store_f64(x->dtype, cval, 0, si_load_f64(cv->dtype, cv->data, 0));
        } else if (c->opset < 11) {
            si_store_f64(x->dtype, cval, 0, si_attr_float(c->node, "value", 0.0f));
        }
    }
    /* per dimension: output coordinate -> input coordinate, or -1 for the constant */
    int64_t *map[SI_MAX_DIMS] = {NULL};
    bool ok = true;
    for (int d = 0; d < r && ok; d++) {
        map[d] = si_malloc((size_t)SI_MAX(p->out[d], (int64_t)1) * sizeof(int64_t));
        if (!map[d]) {
            ok = false;
            break;
        }
        for (int64_t o = 0; o < p->out[d]; o++) map[d][o] = si_pad_src(p, d, x->dims[d], o);
    }
    if (ok) {
        int64_t xs[SI_MAX_DIMS], o[SI_MAX_DIMS] = {0};
        xs[r - 1] = 1;
        for (int d = r - 2; d >= 0; d--) xs[d] = xs[d + 1] * x->dims[d + 1];
        const int64_t W = p->out[r - 1], rows = si_count(y) / W;
        const unsigned char *src = x->data;
        unsigned char *dst = y->data;
        for (int64_t row = 0; row < rows; row++) {
            int64_t base = 0;
            bool inside = true;
            for (int d = 0; d < r - 1; d++) {
                const int64_t m = map[d][o[d]];
                if (m < 0)
                    inside = false;
                else
                    base += m * xs[d];
            }
            const int64_t *ml = map[r - 1];
            for (int64_t j = 0; j < W; j++, dst += esz) {
                if (inside && ml[j] >= 0)
                    memcpy(dst, src + (size_t)(base + ml[j]) * esz, esz);
                else
                    memcpy(dst, cval, esz);
            }
            for (int d = r - 2; d >= 0; d--) {
                if (++o[d] < p->out[d]) break;
                o[d] = 0;
            }
        }
    }
    for (int d = 0; d < r; d++) si_free(map[d]);
    return ok ? SI_OK : si_op_nomem(c);
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(PAD, SI_T_ALL, pad_infer, pad_run),
};

SI_OP_FAMILY_PARTIAL(pad, defs);
