/*
 * training.c — reference kernels for the optimizer ops of domain ai.onnx.preview.training: Adagrad, Momentum
 * (standard and Nesterov) and Adam (in double). Each takes the learning rate R (a scalar), the update count T
 * (an int64 scalar), then n tensors X, their gradients G and one or two per-tensor states, and returns the new
 * X and states, in the same order (all X_new, then each state's new values).
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

enum { OPT_ADAGRAD, OPT_MOMENTUM, OPT_ADAM };

/* n: tensors optimized; the node has 2 + (2 + states) * n inputs and (1 + states) * n outputs. */
static si_result opt_plan(si_kctx *c, int states, int *n) {
    const int rest = c->n_in - 2;
    if (rest <= 0 || rest % (2 + states))
        return si_op_err(c, SI_ERR_INVALID_ARG, "expected R, T and %d groups of n tensors, got %d inputs", 2 + states, c->n_in);
    *n = rest / (2 + states);
    if (c->n_out != (1 + states) * *n)
        return si_op_err(c, SI_ERR_INVALID_ARG, "expected %d outputs for %d tensors, got %d", (1 + states) * *n, *n, c->n_out);
    si_result s;
    for (int i = 0; i < c->n_in; i++)
        if ((s = si_need_input(c, i, false))) return s;
    const si_tensor *r = c->in[0], *t = c->in[1];
    if ((s = si_check_type(c, r->dtype, SI_T_FLOATS, "input 'R'")) || (s = si_check_type(c, t->dtype, SI_T(SI_I64), "input 'T'")))
        return s;
    if (si_count(r) > 1 || si_count(t) > 1) return si_op_err(c, SI_ERR_INVALID_ARG, "inputs 'R' and 'T' must be scalars");
    for (int i = 0; i < *n; i++) {
        const si_tensor *x = c->in[2 + i];
        if ((s = si_check_type(c, x->dtype, SI_T_FLOATS, "input X"))) return s;
        for (int g = 1; g < 2 + states; g++) {
            const si_tensor *o = c->in[2 + g * *n + i];
            if ((s = si_same_type(c, x, o, "a gradient or state input"))) return s;
            bool same = o->ndim == x->ndim;
            for (int d = 0; same && d < x->ndim; d++)
                same = !si_dim_known(x->dims[d]) || !si_dim_known(o->dims[d]) || x->dims[d] == o->dims[d];
            if (!same)
                return si_op_err(c, SI_ERR_INVALID_ARG, "input %d must have the shape of input %d (tensor %d)", 2 + g * *n + i,
                                 2 + i, i);
        }
    }
    return SI_OK;
}

static si_result opt_infer(si_kctx *c) {
    const int states = si_op_arg(c) == OPT_ADAM ? 2 : 1;
    int n = 0;
    si_result s = opt_plan(c, states, &n);
    for (int k = 0; !s && k < (1 + states) * n; k++) s = si_same_as_input(c, k, 2 + (k / n == 0 ? 0 : k / n + 1) * n + k % n);
    return s;
}

static si_result opt_run(si_kctx *c) {
    const int kind = si_op_arg(c); /* OPT_ADAGRAD, OPT_MOMENTUM or OPT_ADAM */
    const int states = kind == OPT_ADAM ? 2 : 1;
    int n = 0;
    si_result s = opt_plan(c, states, &n);
    if (s || (s = si_run_ready(c))) return s;
    const double R = si_count(c->in[0]) ? si_load_f64(c->in[0]->dtype, c->in[0]->data, 0) : 0.0;
    const int64_t T = si_count(c->in[1]) ? si_load_i64(SI_I64, c->in[1]->data, 0) : 0;
    const double norm = si_attr_float(c->node, "norm_coefficient", 0.0f);
    for (int i = 0; i < n && !s; i++) {
        const si_tensor *xt = c->in[2 + i];
        const int64_t m = si_count(xt);
        double *x = si_tensor_to_f64(xt), *g = si_tensor_to_f64(c->in[2 + n + i]), *a = si_tensor_to_f64(c->in[2 + 2 * n + i]);
        double *b = states > 1 ? si_tensor_to_f64(c->in[2 + 3 * n + i]) : NULL;
        if (!x || !g || !a || (states > 1 && !b)) {
            s = si_op_nomem(c);
        } else if (kind == OPT_ADAGRAD) {
            const double decay = si_attr_float(c->node, "decay_factor", 0.0f), eps = si_attr_float(c->node, "epsilon", 0.0f);
            const double r = R / (1.0 + (double)T * decay);
            for (int64_t j = 0; j < m; j++) {
                const double gr = norm * x[j] + g[j];
                a[j] += gr * gr;
                x[j] -= r * gr / (sqrt(a[j]) + eps);
            }
        } else if (kind == OPT_MOMENTUM) {
            const double alpha = si_attr_float(c->node, "alpha", 0.0f), beta = si_attr_float(c->node, "beta", 0.0f);
            const bool nesterov = !strcmp(si_attr_str(c->node, "mode", "standard"), "nesterov");
            const double bt = T > 0 ? beta : 1.0;
            for (int64_t j = 0; j < m; j++) {
                const double gr = norm * x[j] + g[j];
                a[j] = alpha * a[j] + bt * gr;
                x[j] -= nesterov ? R * (gr + alpha * a[j]) : R * a[j];
            }
        } else {
            const double alpha = si_attr_float(c->node, "alpha", 0.9f), beta = si_attr_float(c->node, "beta", 0.999f);
            const double eps = si_attr_float(c->node, "epsilon", 0.0f), post = si_attr_float(c->node, "norm_coefficient_post", 0.0f);
            const double ra = T > 0 ? R * sqrt(1.0 - pow(beta, (double)T)) / (1.0 - pow(alpha, (double)T)) : R;
            for (int64_t j = 0; j < m; j++) {
                const double gr = norm * x[j] + g[j];
                a[j] = alpha * a[j] + (1.0 - alpha) * gr;
                b[j] = beta * b[j] + (1.0 - beta) * gr * gr;
                x[j] = (1.0 - post) * (x[j] - ra * a[j] / (sqrt(b[j]) + eps));
            }
        }
        if (!s) {
            if (si_out(c, i)) si_tensor_from_f64(si_out(c, i), x);
            if (si_out(c, n + i)) si_tensor_from_f64(si_out(c, n + i), a);
            if (b && si_out(c, 2 * n + i)) si_tensor_from_f64(si_out(c, 2 * n + i), b);
        }
        SI_FREE_ALL(x, g, a, b);
    }
    return s;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF_ARG(ADAGRAD, SI_T_FLOATS, opt_infer, opt_run, OPT_ADAGRAD),
    SI_OP_DEF_ARG(MOMENTUM, SI_T_FLOATS, opt_infer, opt_run, OPT_MOMENTUM),
    SI_OP_DEF_ARG(ADAM, SI_T_FLOATS, opt_infer, opt_run, OPT_ADAM),
};

SI_OP_FAMILY_PARTIAL(training, defs);
