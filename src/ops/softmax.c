/*
 * softmax.c — Softmax, LogSoftmax and Hardmax (in double).
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

enum { NN_SOFTMAX, NN_LOGSOFTMAX, NN_HARDMAX };

/* opset < 13: the input is coerced to 2-D at `axis` (default 1) and normalised over the second dimension;
 * opset >= 13: normalised along the single axis (default -1). */
static si_result smax_prep(si_kctx *c, int64_t *outer, int64_t *len, int64_t *inner) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_FLOATS, "input", &x);
    if (st) return st;
    const int r = x->ndim;
    const bool old = c->opset < 13;
    int64_t axis = si_attr_int(c->node, "axis", old ? 1 : -1);
    int a = 0;
    if (r == 0) {
        *outer = *len = *inner = 1;
        return SI_OK;
    }
    if (old && axis == r)
        a = r;
    else if ((st = si_axis(c, axis, r, &a)))
        return st;
    *outer = si_prod(x->dims, 0, a);
    if (old) {
        *len = si_prod(x->dims, a, r);
        *inner = 1;
    } else {
        *len = x->dims[a];
        *inner = si_prod(x->dims, a + 1, r);
    }
    return SI_OK;
}

static si_result smax_infer(si_kctx *c) {
    int64_t o = 0, l = 0, i = 0;
    si_result st = smax_prep(c, &o, &l, &i);
    return st ? st : si_same_as_input(c, 0, 0);
}

static si_result smax_run(si_kctx *c) {
    const int kind = si_op_arg(c); /* NN_SOFTMAX, NN_LOGSOFTMAX or NN_HARDMAX */
    int64_t outer = 0, len = 0, inner = 0;
    si_result st = smax_prep(c, &outer, &len, &inner);
    if (st) return st;
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    double *xd = si_tensor_to_f64(si_in(c, 0));
    if (!xd) return si_op_nomem(c);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double *v = xd + o * len * inner + i;
            double mx = v[0];
            int64_t arg = 0;
            for (int64_t k = 1; k < len; k++)
                if (v[k * inner] > mx) {
                    mx = v[k * inner];
                    arg = k;
                }
            if (kind == NN_HARDMAX) {
                for (int64_t k = 0; k < len; k++) v[k * inner] = k == arg ? 1.0 : 0.0;
                continue;
            }
            double s = 0;
            for (int64_t k = 0; k < len; k++) s += exp(v[k * inner] - mx);
            if (kind == NN_SOFTMAX) {
                for (int64_t k = 0; k < len; k++) v[k * inner] = exp(v[k * inner] - mx) / s;
            } else {
                const double ls = log(s);
                for (int64_t k = 0; k < len; k++) v[k * inner] = v[k * inner] - mx - ls;
            }
        }
    si_tensor_from_f64(y, xd);
    si_free(xd);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF_ARG(SOFTMAX, SI_T_FLOATS, smax_infer, smax_run, NN_SOFTMAX),
    SI_OP_DEF_ARG(LOG_SOFTMAX, SI_T_FLOATS, smax_infer, smax_run, NN_LOGSOFTMAX),
    SI_OP_DEF_ARG(HARDMAX, SI_T_FLOATS, smax_infer, smax_run, NN_HARDMAX),
};

SI_OP_FAMILY_PARTIAL(softmax, defs);
