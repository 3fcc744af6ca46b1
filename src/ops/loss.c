/*
 * loss.c — reference kernels for the loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (in
 * double).
 *
 * Both take scores of shape (N, C) or (N, C, d1, ..., dk) and integer targets of shape (N) or (N, d1, ..., dk),
 * an optional weight per class and the attributes ignore_index and reduction (none, sum, mean). The loss of one
 * element is -weight[t] * logp[n][t][d] (t its target); an element whose target is ignore_index counts with
 * weight 0. `mean` divides the sum by the sum of the weights of the elements counted. SoftmaxCrossEntropyLoss
 * computes logp = LogSoftmax(scores, axis 1) first and can return it as its second output.
 */
#include "ops/ops.h"

#include <math.h>

enum { LOSS_NONE, LOSS_SUM, LOSS_MEAN };

typedef struct loss_plan {
    int64_t n, c, inner; /* scores (n, c, inner...), targets (n, inner...) */
    int reduction;
    bool has_ii;
    int64_t ii;
} loss_plan;

static si_result loss_plan_of(si_kctx *c, loss_plan *p) {
    si_result s = si_inputs_typed(c, 2, 2, (const uint32_t[]){SI_T_FLOATS, SI_T(SI_I32) | SI_T(SI_I64)},
                                  (const char *const[]){"input 'scores'", "input 'target'"});
    if (s) return s;
    const si_tensor *x = c->in[0], *t = c->in[1], *w = si_in(c, 2);
    if (x->ndim < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'scores' must have rank >= 2 (N, C, ...), got %d", x->ndim);
    if (t->ndim != x->ndim - 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'target' must have rank %d (scores' rank - 1), got %d",
                         x->ndim - 1, t->ndim);
    for (int d = 0; d < t->ndim; d++) {
        int64_t xd = x->dims[d == 0 ? 0 : d + 1];
        if (si_dim_known(xd) && si_dim_known(t->dims[d]) && xd != t->dims[d])
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'target' dimension %d is %lld, scores have %lld", d,
                             (long long)t->dims[d], (long long)xd);
    }
    if (w) {
        if ((s = si_same_type(c, x, w, "input 'weight'"))) return s;
        if (w->ndim != 1 || (si_dim_known(w->dims[0]) && si_dim_known(x->dims[1]) && w->dims[0] != x->dims[1]))
            return si_op_err(c, SI_ERR_INVALID_ARG, "input 'weight' must have shape (C) with C = %lld",
                             (long long)x->dims[1]);
    }
    static const char *const reds[] = {"none", "sum", "mean"};
    if ((s = si_attr_choice(c, "reduction", "mean", reds, 3, &p->reduction))) return s;
    p->has_ii = si_node_attr(c->node, "ignore_index") != NULL;
    p->ii = si_attr_int(c->node, "ignore_index", 0);
    p->n = x->dims[0];
    p->c = x->dims[1];
    p->inner = si_prod(x->dims, 2, x->ndim);
    return SI_OK;
}

static si_result loss_set_outputs(si_kctx *c, const loss_plan *p, bool log_prob) {
    const si_tensor *x = c->in[0], *t = c->in[1];
    si_result s = p->reduction == LOSS_NONE ? si_set_out(c, 0, x->dtype, t->ndim, t->dims)
                                            : si_set_out(c, 0, x->dtype, 0, NULL);
    if (s) return s;
    if (log_prob) return si_same_as_input(c, 1, 0);
    return SI_OK;
}

SI_OP_PLANNED(nll_infer, loss_plan, p, loss_plan_of) {
    return loss_set_outputs(c, p, false);
}

SI_OP_PLANNED(sce_infer, loss_plan, p, loss_plan_of) {
    return loss_set_outputs(c, p, true);
}

/* The loss over logp (n, c, inner) into output 0. */
static si_result loss_compute(si_kctx *c, const loss_plan *p, const double *logp) {
    const si_tensor *t = c->in[1], *wt = si_in(c, 2);
    si_tensor *y = si_out(c, 0);
    const int64_t m = p->n * p->inner;
    int64_t *tg = si_tensor_to_i64(t);
    double *w = wt ? si_tensor_to_f64(wt) : NULL;
    double *l = si_malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
    if (!tg || !l || (wt && !w)) {
        SI_FREE_ALL(tg, w, l);
        return si_op_nomem(c);
    }
    si_result s = SI_OK;
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < m && !s; i++) {
        const int64_t n = i / p->inner, k = i % p->inner, cls = tg[i];
        if (p->has_ii && cls == p->ii) {
            l[i] = 0;
            continue;
        }
        if (cls < 0 || cls >= p->c) {
            s = si_op_err(c, SI_ERR_INVALID_ARG, "target value %lld at element %lld is outside [0, %lld) and is not ignore_index",
                          (long long)cls, (long long)i, (long long)p->c);
            break;
        }
        const double wi = w ? w[cls] : 1.0;
        l[i] = -logp[(n * p->c + cls) * p->inner + k] * wi;
        sum += l[i];
        wsum += wi;
    }
    if (!s && y) {
        if (p->reduction == LOSS_NONE) {
            si_tensor_from_f64(y, l);
        } else {
            double v = p->reduction == LOSS_SUM ? sum : sum / wsum;
            si_tensor_from_f64(y, &v);
        }
    }
    SI_FREE_ALL(tg, w, l);
    return s;
}

/* The loss of input 0 as log-probabilities (NegativeLogLikelihoodLoss), or of scores whose log-softmax over the
 * class axis it takes first (SoftmaxCrossEntropyLoss, which also gives that log-softmax as output 1). */
static si_result loss_run(si_kctx *c, bool log_softmax) {
    loss_plan p;
    si_result s = loss_plan_of(c, &p);
    if (s || (s = si_run_ready(c))) return s;
    double *x = si_tensor_to_f64(c->in[0]);
    if (!x) return si_op_nomem(c);
    for (int64_t n = 0; log_softmax && n < p.n; n++) /* in place */
        for (int64_t k = 0; k < p.inner; k++) {
            double *v = x + n * p.c * p.inner + k, mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < p.c; j++) mx = fmax(mx, v[j * p.inner]);
            for (int64_t j = 0; j < p.c; j++) sum += exp(v[j * p.inner] - mx);
            const double ls = mx + log(sum);
            for (int64_t j = 0; j < p.c; j++) v[j * p.inner] -= ls;
        }
    s = loss_compute(c, &p, x);
    if (!s && log_softmax && si_out(c, 1)) si_tensor_from_f64(si_out(c, 1), x);
    si_free(x);
    return s;
}

static si_result nll_run(si_kctx *c) { return loss_run(c, false); }
static si_result sce_run(si_kctx *c) { return loss_run(c, true); }

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(NEGATIVE_LOG_LIKELIHOOD_LOSS, SI_T_FLOATS, nll_infer, nll_run),
    SI_OP_DEF(SOFTMAX_CROSS_ENTROPY_LOSS, SI_T_FLOATS, sce_infer, sce_run),
};

SI_OP_FAMILY_PARTIAL(loss, defs);
