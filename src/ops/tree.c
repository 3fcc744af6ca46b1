/*
 * tree.c — reference kernel for TreeEnsemble (ai.onnx.ml, opset 5): every sample walks each tree from its root
 * (comparisons LEQ, LT, GTE, GT, EQ, NEQ, set MEMBER; NaN follows nodes_missing_value_tracks_true) to a leaf,
 * whose weight goes to its target; the targets aggregate over the trees by SUM, AVERAGE, MIN or MAX. Only
 * post_transform NONE is supported.
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

enum { TE_AVERAGE, TE_SUM, TE_MIN, TE_MAX };
enum { TE_LEQ, TE_LT, TE_GTE, TE_GT, TE_EQ, TE_NEQ, TE_MEMBER };

typedef struct te_plan {
    int nn, nl, nr;                            /* nodes, leaves, trees */
    const int64_t *feat, *tnode, *fnode, *tleaf, *fleaf, *ltarget, *roots, *missing;
    int nmissing;
    double *split, *lweight, *member; /* converted tensor attributes (owned) */
    int64_t nmember, ntargets;
    int64_t *mstart; /* per node: start of its membership set in member[] (MEMBER nodes), else -1 (owned) */
    uint8_t *mode;   /* owned */
    int agg;
} te_plan;

static void te_free(te_plan *p) { SI_FREE_ALL(p->split, p->lweight, p->member, p->mstart, p->mode); }

/* The values of tensor attribute `name` as doubles (*n of them); NULL with *n = -1 when absent. */
static si_result te_tensor_attr(si_kctx *c, const char *name, double **v, int64_t *n) {
    const si_tensor *t = si_attr_tensor(c->node, name);
    *v = NULL;
    *n = -1;
    if (!t) return SI_OK;
    if (!si_dtype_is_float(t->dtype) && !(SI_T_INTS & SI_T(t->dtype)))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "attribute '%s' has element type %s", name, si_dtype_name(t->dtype));
    *n = si_count(t);
    if (*n > 0 && !t->data) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has no data", name);
    *v = si_tensor_to_f64(t);
    return *v ? SI_OK : si_op_nomem(c);
}

static si_result te_ints(si_kctx *c, const char *name, int want, const int64_t **v) {
    int n = 0;
    *v = si_attr_ints(c->node, name, &n);
    if (!*v || n != want)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' must have %d values, got %d", name, want, *v ? n : 0);
    return SI_OK;
}

static si_result te_plan_of(si_kctx *c, te_plan *p) {
    memset(p, 0, sizeof *p);
    const si_tensor *x;
    si_result s = si_input0(c, SI_T_FLOATS, "input", &x);
    if (s) return s;
    if (x->ndim != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank 2 (N, features), got %d", x->ndim);
    if (si_attr_int(c->node, "post_transform", 0) != 0)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "post_transform %lld: only NONE (0) is supported",
                         (long long)si_attr_int(c->node, "post_transform", 0));
    p->agg = (int)si_attr_int(c->node, "aggregate_function", TE_SUM);
    if (p->agg < TE_AVERAGE || p->agg > TE_MAX)
        return si_op_err(c, SI_ERR_INVALID_ARG, "aggregate_function %d is not one of 0 to 3", p->agg);
    p->ntargets = si_attr_int(c->node, "n_targets", 0);
    if (p->ntargets < 1 || p->ntargets > (1 << 24)) return si_op_err(c, SI_ERR_INVALID_ARG, "n_targets %lld is out of range", (long long)p->ntargets);
    int64_t ns = 0, nw = 0;
    if ((s = te_tensor_attr(c, "nodes_splits", &p->split, &ns)) || (s = te_tensor_attr(c, "leaf_weights", &p->lweight, &nw)) ||
        (s = te_tensor_attr(c, "membership_values", &p->member, &p->nmember)))
        return s;
    if (ns < 1 || nw < 1 || ns > INT32_MAX || nw > INT32_MAX)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attributes 'nodes_splits' and 'leaf_weights' are required");
    p->nn = (int)ns;
    p->nl = (int)nw;
    if ((s = te_ints(c, "nodes_featureids", p->nn, &p->feat)) || (s = te_ints(c, "nodes_truenodeids", p->nn, &p->tnode)) ||
        (s = te_ints(c, "nodes_falsenodeids", p->nn, &p->fnode)) || (s = te_ints(c, "nodes_trueleafs", p->nn, &p->tleaf)) ||
        (s = te_ints(c, "nodes_falseleafs", p->nn, &p->fleaf)) || (s = te_ints(c, "leaf_targetids", p->nl, &p->ltarget)))
        return s;
    p->roots = si_attr_ints(c->node, "tree_roots", &p->nr);
    if (!p->roots || p->nr < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'tree_roots' is required");
    p->missing = si_attr_ints(c->node, "nodes_missing_value_tracks_true", &p->nmissing);
    if (p->missing && p->nmissing != p->nn)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'nodes_missing_value_tracks_true' must have %d values", p->nn);
    const int64_t nf = x->dims[1];
    for (int i = 0; i < p->nn; i++) {
        if (p->feat[i] < 0 || (si_dim_known(nf) && p->feat[i] >= nf))
            return si_op_err(c, SI_ERR_INVALID_ARG, "node %d reads feature %lld, outside [0, %lld)", i, (long long)p->feat[i], (long long)nf);
        for (int b = 0; b < 2; b++) {
            const int64_t id = b ? p->fnode[i] : p->tnode[i], leaf = b ? p->fleaf[i] : p->tleaf[i];
            if (id < 0 || id >= (leaf ? p->nl : p->nn))
                return si_op_err(c, SI_ERR_INVALID_ARG, "node %d: %s %s id %lld is out of range", i, b ? "false" : "true",
                                 leaf ? "leaf" : "node", (long long)id);
        }
    }
    for (int i = 0; i < p->nl; i++)
        if (p->ltarget[i] < 0 || p->ltarget[i] >= p->ntargets)
            return si_op_err(c, SI_ERR_INVALID_ARG, "leaf %d has target %lld, outside [0, %lld)", i, (long long)p->ltarget[i],
                             (long long)p->ntargets);
    for (int i = 0; i < p->nr; i++)
        if (p->roots[i] < 0 || p->roots[i] >= p->nn)
            return si_op_err(c, SI_ERR_INVALID_ARG, "tree_roots[%d] = %lld is out of range", i, (long long)p->roots[i]);
    /* nodes_modes: a uint8 tensor attribute (0 = BRANCH_LEQ when absent) */
    p->mode = si_calloc((size_t)p->nn, 1);
    p->mstart = si_malloc(sizeof(int64_t) * (size_t)p->nn);
    if (!p->mode || !p->mstart) return si_op_nomem(c);
    double *mv = NULL;
    int64_t nm = 0;
    if ((s = te_tensor_attr(c, "nodes_modes", &mv, &nm))) return s;
    if (mv && nm != p->nn) {
        si_free(mv);
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'nodes_modes' must have %d values", p->nn);
    }
    int64_t pos = 0;
    for (int i = 0; i < p->nn; i++) {
        const double m = mv ? mv[i] : 0;
        if (!(m >= TE_LEQ && m <= TE_MEMBER)) {
            si_free(mv);
            return si_op_err(c, SI_ERR_INVALID_ARG, "nodes_modes[%d] = %g is not a known mode", i, m);
        }
        p->mode[i] = (uint8_t)m;
        p->mstart[i] = -1;
        if (p->mode[i] == TE_MEMBER) { /* its set: the next run of membership_values up to a NaN */
            if (pos >= (p->nmember > 0 ? p->nmember : 0)) {
                si_free(mv);
                return si_op_err(c, SI_ERR_INVALID_ARG, "membership_values has no set for MEMBER node %d", i);
            }
            p->mstart[i] = pos;
            while (pos < p->nmember && !isnan(p->member[pos])) pos++;
            pos++;
        }
    }
    si_free(mv);
    return SI_OK;
}

static si_result te_infer(si_kctx *c) {
    te_plan p;
    si_result s = te_plan_of(c, &p);
    if (!s) {
        const int64_t od[2] = {c->in[0]->dims[0], p.ntargets};
        s = si_set_out(c, 0, c->in[0]->dtype, 2, od);
    }
    te_free(&p);
    return s;
}

static bool te_test(const te_plan *p, int node, double x) {
    if (isnan(x) && p->missing && p->missing[node]) return true;
    const double v = p->split[node];
    switch (p->mode[node]) {
    case TE_LEQ: return x <= v;
    case TE_LT: return x < v;
    case TE_GTE: return x >= v;
    case TE_GT: return x > v;
    case TE_EQ: return x == v;
    case TE_NEQ: return x != v;
    default:
        for (int64_t k = p->mstart[node]; k < p->nmember && !isnan(p->member[k]); k++)
            if (p->member[k] == x) return true;
        return false;
    }
}

static si_result te_run(si_kctx *c) {
    te_plan p;
    si_result s = te_plan_of(c, &p);
    if (!s) s = si_run_ready(c);
    si_tensor *yt = si_out(c, 0);
    if (s || !yt || si_count(yt) == 0) {
        te_free(&p);
        return s;
    }
    const si_tensor *xt = c->in[0];
    const int64_t N = xt->dims[0], F = xt->dims[1], T = p.ntargets;
    double *x = si_tensor_to_f64(xt), *y = si_calloc((size_t)(N * T), sizeof(double));
    int64_t *hits = si_calloc((size_t)T, sizeof(int64_t));
    if (!x || !y || !hits) s = si_op_nomem(c);
    for (int64_t n = 0; !s && n < N; n++) {
        double *yo = y + n * T;
        for (int64_t t = 0; t < T; t++) hits[t] = 0;
        for (int r = 0; r < p.nr && !s; r++) {
            int64_t node = p.roots[r], leaf = -1;
            for (int steps = 0; leaf < 0; steps++) {
                if (steps > p.nn) {
                    s = si_op_err(c, SI_ERR_INVALID_ARG, "tree %d has a cycle", r);
                    break;
                }
                const bool t = te_test(&p, (int)node, x[n * F + p.feat[node]]);
                const int64_t next = t ? p.tnode[node] : p.fnode[node];
                if (t ? p.tleaf[node] : p.fleaf[node])
                    leaf = next;
                else
                    node = next;
            }
            if (s) break;
            const int64_t tg = p.ltarget[leaf];
            const double w = p.lweight[leaf];
            if (p.agg == TE_MIN)
                yo[tg] = hits[tg] ? fmin(yo[tg], w) : w;
            else if (p.agg == TE_MAX)
                yo[tg] = hits[tg] ? fmax(yo[tg], w) : w;
            else
                yo[tg] += w;
            hits[tg]++;
        }
        if (p.agg == TE_AVERAGE)
            for (int64_t t = 0; t < T; t++) yo[t] /= (double)p.nr;
    }
    if (!s) si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, y, hits);
    te_free(&p);
    return s;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(TREE_ENSEMBLE, SI_T_FLOATS, te_infer, te_run),
};

SI_OP_FAMILY_PARTIAL(tree, defs);
