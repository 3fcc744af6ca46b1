/*
 * dropout.c — Dropout for inference: the output is the input and the mask all true. Training mode (random) is
 * refused by the check unless the graph turns it off with constants.
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

static si_result dropout_prep(si_kctx *c) {
    si_result st;
    if ((st = si_need_input(c, 0, false))) return st;
    const si_tensor *x = si_in(c, 0), *r = si_in(c, 1), *t = si_in(c, 2);
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "data"))) return st;
    if (c->opset >= 12) {
        if (r && (st = si_check_type(c, r->dtype, SI_T_FLOATS, "ratio"))) return st;
        if (r && si_dim_ne(si_count(r), 1)) return si_op_err(c, SI_ERR_INVALID_ARG, "ratio must be a scalar");
        if (t && t->dtype != SI_BOOL)
            return si_op_err(c, SI_ERR_INVALID_ARG, "training_mode must be bool, got %s", si_dtype_name(t->dtype));
        if (t && si_dim_ne(si_count(t), 1)) return si_op_err(c, SI_ERR_INVALID_ARG, "training_mode must be a scalar");
    }
    return SI_OK;
}

/* Training-mode dropout is random: refused before anything runs when the graph may switch it on, i.e. when
 * training_mode is not a constant false (or the ratio is not a constant 0). */
static si_result dropout_check(si_kctx *c) {
    if (c->opset < 12 || c->n_in < 3 || !c->in[2]) return SI_OK;
    const si_tensor *r = c->n_in > 1 ? c->in[1] : NULL, *t = c->in[2];
    bool training_off = t->data && t->nbytes && si_load_f64(SI_BOOL, t->data, 0) == 0;
    bool ratio_zero = r && r->data && r->nbytes && si_load_f64(r->dtype, r->data, 0) == 0;
    if (training_off || ratio_zero) return SI_OK;
    return si_op_err(c, SI_ERR_UNSUPPORTED, "training_mode is %s: training-mode (random) dropout is not supported",
                     t->data ? "true" : "a graph input, not a constant");
}

static si_result dropout_infer(si_kctx *c) {
    si_result st = dropout_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0);
    if ((st = si_same_as_input(c, 0, 0))) return st;
    return si_set_out(c, 1, c->opset >= 10 ? SI_BOOL : x->dtype, x->ndim, x->dims);
}

static si_result dropout_run(si_kctx *c) {
    si_result st = dropout_prep(c);
    if (st) return st;
    const si_tensor *x = si_in(c, 0), *r = si_in(c, 1), *t = si_in(c, 2);
    if (c->opset >= 12 && t && t->data && si_load_f64(SI_BOOL, t->data, 0) != 0) {
        double ratio = (r && r->data) ? si_load_f64(r->dtype, r->data, 0) : 0.5;
        if (ratio < 0 || ratio >= 1) return si_op_err(c, SI_ERR_INVALID_ARG, "ratio %g must be in [0, 1)", ratio);
        if (ratio != 0)
            return si_op_err(c, SI_ERR_UNSUPPORTED, "training mode with ratio %g (random dropout) is not supported",
                             ratio);
    }
    si_tensor *y = si_out(c, 0), *mask = si_out(c, 1);
    if (y && y->data && x->data) memcpy(y->data, x->data, SI_MIN(y->nbytes, x->nbytes));
    if (mask && mask->data) {
        if (mask->dtype == SI_BOOL)
            memset(mask->data, 1, mask->nbytes);
        else
            for (int64_t i = 0; i < si_count(mask); i++) si_store_f64(mask->dtype, mask->data, i, 1.0);
    }
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    {.id = SI_OP_DROPOUT, .types = {SI_T_FLOATS}, .infer = dropout_infer, .run = dropout_run, .check = dropout_check},
};

SI_OP_FAMILY_PARTIAL(dropout, defs);
