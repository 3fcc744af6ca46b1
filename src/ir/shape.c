/*
 * shape.c — type and shape inference over a finalized graph for the current input shapes, with constant
 * folding: a node whose inputs are all constant is evaluated once here with the reference kernels, so that
 * shape computations (Shape -> Gather -> Concat -> Reshape) and generated weights (ConstantOfShape) are
 * resolved before any device sees the graph.
 */
#include "ir/ir.h"

#include "ops/ops.h"


static bool value_known(const si_val *v) {
    if (v->const_val) return true;
    if (v->dtype == SI_DTYPE_UNDEFINED || v->ndim < 0) return false;
    for (int i = 0; i < v->ndim; i++)
        if (v->dims[i] < 0) return false;
    /* a declared shape whose size does not fit (hostile value_info) is as good as unknown */
    return si_shape_count(v->ndim, v->dims) <= INT64_MAX / 16;
}

/* Ops whose outputs depend only on their input's shape (Shape, Size) are folded as soon as that shape is
 * known; random generators never are. */
static bool shape_only(const si_node *n) { return (n->op->flags & SI_OPF_SHAPE_ONLY) != 0; }

static bool foldable(const si_node *n) { return (n->op->flags & SI_OPF_RANDOM) == 0; }

/* Set each output's dtype (when the op can tell it without shapes, e.g. Cast) is left to infer; here we
 * only copy what infer computed. */
static si_result infer_node(si_graph *g, int idx, size_t fold_max, size_t *folded) {
    si_node *n = &g->nodes[idx];
    if (!n->op) return SI_OK;
    const si_tensor *ins[64] = {0};
    si_tensor in_desc[64], out_t[64];
    si_tensor *outs[64] = {0}; /* absent outputs get a tensor too (kernels may write them); it is dropped */
    if (n->n_in > 64 || n->n_out > 64) return SI_OK;
    bool all_const = true;
    for (int k = 0; k < n->n_in; k++) {
        ins[k] = NULL;
        if (n->in[k] < 0) continue;
        si_val *v = &g->values[n->in[k]];
        if (!value_known(v)) return SI_OK; /* shapes stay unknown until run time */
        if (v->const_val) {
            ins[k] = v->const_val;
        } else {
            all_const = false;
            si_tensor *d = &in_desc[k];
            memset(d, 0, sizeof *d);
            d->dtype = v->dtype;
            d->ndim = v->ndim;
            memcpy(d->dims, v->dims, sizeof d->dims);
            d->nbytes = (size_t)si_shape_count(v->ndim, v->dims) * si_dtype_size(v->dtype);
            ins[k] = d;
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        memset(&out_t[k], 0, sizeof out_t[k]);
        outs[k] = &out_t[k];
    }
    si_kctx c = {.node = n, .opset = n->opset, .n_in = n->n_in, .in = ins, .n_out = n->n_out, .out = outs};
    si_result s = si_op_supported(n, n->n_in, ins);
    if (s == SI_ERR_UNSUPPORTED) { si_err_clear(); return SI_OK; } /* a device may still take it */
    if (s) return s;
    s = n->op->infer(&c);
    if (s == SI_SHAPE_DYNAMIC) { si_err_clear(); return SI_OK; }
    if (s == SI_ERR_UNSUPPORTED) { si_err_clear(); return SI_OK; }
    if (!s) s = si_outputs_typed(&c);
    if (s) return s;
    size_t total = 0;
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        /* an output that could never be allocated: a named error now, before anything is */
        if (out_t[k].nbytes >= SI_BIG_ALLOC) {
            char sh[160];
            si_shape_str(sh, sizeof sh, out_t[k].dtype, out_t[k].ndim, out_t[k].dims);
            if ((s = si_mem_fits(out_t[k].nbytes, sh)))
                return si_err_wrap(s, "node '%s' (%s) output '%s'", n->name, n->op_type, g->values[n->out[k]].name);
        }
    }
    for (int k = 0; k < n->n_out; k++) total = out_t[k].nbytes > SIZE_MAX - total ? SIZE_MAX : total + out_t[k].nbytes;
    /* per node at most fold_max bytes, per graph at most SI_FOLD_TOTAL_FACTOR times that */
    bool fold = (all_const || shape_only(n)) && foldable(n) && total <= fold_max &&
                total <= fold_max * SI_FOLD_TOTAL_FACTOR - *folded;
    if (fold) {
        for (int k = 0; k < n->n_out && !s; k++) s = si_tensor_alloc(outs[k]);
        if (!s) s = n->op->run(&c);
        if (!s) *folded += total;
        if (s) { /* folding is an optimisation: leave the node for run time, where the error will show */
            for (int k = 0; k < n->n_out; k++) si_tensor_release(&out_t[k]);
            si_err_clear();
            fold = false;
            s = SI_OK;
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) { si_tensor_release(&out_t[k]); continue; }
        si_val *v = &g->values[n->out[k]];
        v->dtype = out_t[k].dtype;
        v->ndim = out_t[k].ndim;
        memcpy(v->dims, out_t[k].dims, sizeof v->dims);
        if (fold) {
            si_tensor *t = si_malloc(sizeof *t);
            if (!t) {
                for (int j = k; j < n->n_out; j++) si_tensor_release(&out_t[j]);
                return si_err(SI_ERR_NO_MEM, "out of memory folding constants");
            }
            *t = out_t[k];
            si_const_unref(v->const_val);
            v->const_val = t;
        }
    }
    return SI_OK;
}

si_result si_graph_infer_shapes(si_graph *g, size_t fold_max_bytes) {
    size_t folded = 0;
    if (fold_max_bytes > SIZE_MAX / SI_FOLD_TOTAL_FACTOR) fold_max_bytes = SIZE_MAX / SI_FOLD_TOTAL_FACTOR;
    for (int i = 0; i < g->n_nodes; i++) {
        si_result s = infer_node(g, i, fold_max_bytes, &folded);
        if (s) return s;
    }
    return SI_OK;
}
