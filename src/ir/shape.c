/*
 * shape.c — type and shape inference over a finalized graph for the current input shapes, with constant
 * folding: a node whose inputs are all constant is evaluated once here with the reference kernels, so that
 * shape computations (Shape -> Gather -> Concat -> Reshape) and generated weights (ConstantOfShape) are
 * resolved before any device sees the graph.
 *
 * Shapes may be partial: a dimension is a size, a symbol or unknown (ir.h), and each op's infer sets what
 * follows from what is known (ops.h). A node is inferred when every input has a dtype and a rank; its outputs
 * are then replaced by what infer says. A node that cannot be inferred (an op safeinfer lacks, an input of
 * unknown rank, values only known at run time where the op cannot say more) keeps its outputs as they were
 * (declared types, or unknown). Subgraphs are inferred before their node: the values they read from the outer
 * scope take the enclosing graph's types (and constants), their formal inputs the node's (si_control_bind).
 * A contradiction inside a subgraph is not an error of the model: a branch that is not taken for these shapes
 * may well contradict them (ONNX's own expanded functions do), so the node whose rules are broken there keeps
 * unknown outputs and inference goes on; running the subgraph will report it if it is ever taken.
 */
#include "ir/ir.h"

#include "ops/ops.h"

/* Type and rank known (a constant always is): the node can be asked about it. */
static bool typed(const si_val *v) { return v->const_val || (v->dtype != SI_DTYPE_UNDEFINED && v->ndim >= 0); }

static si_result infer_graph(si_graph *g, size_t fold_max, size_t *folded, bool lenient);

/* Large weights stay quantized: per value of g, whether every reader of it is a Conv, MatMul or Gemm taking it as
 * its weights (input 1), and it is not a graph output. A DequantizeLinear of a constant whose output is such a
 * value, at least SI_DQ_KEEP_BYTES of it, is not folded (keep_dq): the int8 weights are what stays in memory, a
 * device computing the product in integers reads them (the CPU device's QDQ fusion), and one that computes in
 * float dequantizes them itself, once at compile (CPU) or per run (REF, OCL). NULL when out of memory (then
 * everything folds, as before). */
static bool *product_weights(const si_graph *g) {
    bool *w = si_calloc((size_t)g->n_values + 1, sizeof(bool));
    int *other = si_calloc((size_t)g->n_values + 1, sizeof(int));
    if (!w || !other) {
        si_free(w);
        si_free(other);
        return NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        const bool product = !n->domain[0] && n->op && (si_node_is(n, SI_OP_CONV) || si_node_is(n, SI_OP_MATMUL) || si_node_is(n, SI_OP_GEMM));
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            const int v = si_node_reads(n, k);
            if (v < 0) continue;
            if (product && k == 1) w[v] = true;
            else other[v]++;
        }
    }
    for (int o = 0; o < g->n_outputs; o++) other[g->outputs[o]]++;
    for (int v = 0; v < g->n_values; v++) w[v] = w[v] && !other[v];
    si_free(other);
    return w;
}

static bool keep_dq(const si_graph *g, const si_node *n, const bool *pw, size_t total) {
    return pw && total >= SI_DQ_KEEP_BYTES && !n->domain[0] && si_node_is(n, SI_OP_DEQUANTIZE_LINEAR) && n->n_out >= 1 &&
           n->out[0] >= 0 && pw[n->out[0]] && n->in[0] >= 0 && g->values[n->in[0]].const_val &&
           !(n->opset >= 21 && si_attr_int(n, "block_size", 0) != 0);
}

/* The outer-scope values of subgraph sg (a subgraph of a node of g) take g's types, shapes and constants. */
static void bind_outer(const si_graph *g, si_graph *sg) {
    for (int i = 0; i < sg->n_outer; i++) {
        si_val *d = &sg->values[sg->outer[i]];
        int pv = si_graph_find_value(g, d->name);
        if (pv < 0) continue;
        const si_val *s = &g->values[pv];
        d->dtype = s->dtype;
        d->ndim = s->ndim;
        memcpy(d->dims, s->dims, sizeof d->dims);
        if (d->const_val != s->const_val) {
            si_const_unref(d->const_val);
            d->const_val = si_const_ref(s->const_val);
        }
    }
}

/* Infer the subgraphs of node n (of g) before the node itself. */
static si_result infer_subgraphs(si_graph *g, si_node *n, si_kctx *c, size_t fold_max, size_t *folded) {
    for (int a = 0; a < n->n_attr; a++) {
        si_attr *at = &n->attrs[a];
        int ng = at->g ? 1 : at->gs ? at->n : 0;
        for (int k = 0; k < ng; k++) {
            si_graph *sg = at->g ? at->g : at->gs[k];
            if (!sg) continue;
            bind_outer(g, sg);
            si_result s = si_control_bind(c, at->name, sg);
            if (!s) s = infer_graph(sg, fold_max, folded, true);
            if (s == SI_ERR_NO_MEM) return si_err_wrap(s, "node '%s' (%s) attribute '%s'", n->name, n->op_type, at->name);
            if (s) si_err_clear(); /* the node's own rules (si_control_bind's) are checked again by its infer */
        }
    }
    return SI_OK;
}

/* SHAPE_ONLY ops give sizes: a negative value means that a dimension they read is not known. */
static bool sizes_known(const si_tensor *t) {
    if (t->dtype != SI_I64) return false;
    const int64_t *v = t->data;
    for (int64_t i = 0; i < si_shape_count(t->ndim, t->dims); i++)
        if (v[i] < 0) return false;
    return true;
}

/* A declared shape whose size does not fit (hostile value_info) is as good as unknown. */
static bool size_fits(const si_val *v) {
    return v->const_val || !si_dims_known(v->ndim, v->dims) || si_shape_count(v->ndim, v->dims) <= INT64_MAX / 16;
}

static si_result infer_node(si_graph *g, int idx, size_t fold_max, size_t *folded, const bool *pw) {
    si_node *n = &g->nodes[idx];
    if (!n->op) return SI_OK;
    const si_tensor *ins[64] = {0};
    si_tensor in_desc[64], out_t[64];
    si_tensor *outs[64] = {0}; /* absent outputs get a tensor too (kernels may write them); it is dropped */
    if (n->n_in > 64 || n->n_out > 64) return SI_OK;
    bool all_const = true, dims_known = true;
    for (int k = 0; k < n->n_in; k++) {
        ins[k] = NULL;
        if (n->in[k] < 0) continue;
        si_val *v = &g->values[n->in[k]];
        if (!typed(v) || !size_fits(v)) return SI_OK; /* nothing to say before the input's type and rank are known */
        dims_known &= v->const_val || si_dims_known(v->ndim, v->dims);
        if (v->const_val) {
            ins[k] = v->const_val;
        } else {
            all_const = false;
            si_tensor *d = &in_desc[k];
            memset(d, 0, sizeof *d);
            d->dtype = v->dtype;
            d->ndim = v->ndim;
            for (int i = 0; i < v->ndim; i++) /* any other negative (a -1 written by hand) is unknown too */
                d->dims[i] = si_dim_valid(v->dims[i]) ? v->dims[i] : SI_DIM_UNKNOWN;
            int64_t cnt = si_shape_count(v->ndim, v->dims);
            d->nbytes = cnt > 0 ? (size_t)cnt * si_dtype_size(v->dtype) : 0;
            ins[k] = d;
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        memset(&out_t[k], 0, sizeof out_t[k]);
        outs[k] = &out_t[k];
    }
    if (!dims_known && !si_op_partial(n->op)) return SI_OK; /* a family not ported to partial shapes yet */
    si_kctx c = {.node = n, .opset = n->opset, .n_in = n->n_in, .in = ins, .n_out = n->n_out, .out = outs,
                 .partial = true};
    si_result s = si_op_supported(n, n->n_in, ins);
    if (s == SI_ERR_UNSUPPORTED) { si_err_clear(); return SI_OK; } /* a device may still take it */
    if (s) return s;
    if ((n->op->flags & SI_OPF_SUBGRAPH) && (s = infer_subgraphs(g, n, &c, fold_max, folded))) return s;
    s = n->op->infer(&c);
    if (s == SI_ERR_UNSUPPORTED) { si_err_clear(); return SI_OK; } /* outputs stay as they were */
    /* An error seen while some input dimension is not known yet is left to the run (or to inference with the
     * dimensions fixed), as before partial shapes: a model is refused at load only for what contradicts known
     * shapes, and an op whose infer does not follow the partial contract (ops.h) cannot refuse a valid model. */
    if (s && s != SI_ERR_NO_MEM && !dims_known) { si_err_clear(); return SI_OK; }
    /* an output the op does not produce (a node naming more outputs than its op has) is refused by name; an
     * op with subgraphs, or inputs not fully known, may leave an output's type to run time */
    if (!s && dims_known && !(n->op->flags & SI_OPF_SUBGRAPH)) s = si_outputs_typed(&c);
    if (s) return s;
    size_t total = 0;
    bool outs_known = true;
    for (int k = 0; k < n->n_out; k++) {
        if (!outs[k]) continue;
        bool known = si_dims_known(out_t[k].ndim, out_t[k].dims);
        outs_known &= known;
        if (!known) continue;
        /* an output that could never be allocated: a named error now, before anything is */
        if (n->out[k] >= 0 && out_t[k].nbytes >= SI_BIG_ALLOC) {
            char sh[160];
            si_shape_str(sh, sizeof sh, out_t[k].dtype, out_t[k].ndim, out_t[k].dims);
            if ((s = si_mem_fits(out_t[k].nbytes, sh)))
                return si_err_wrap(s, "node '%s' (%s) output '%s'", n->name, n->op_type, g->values[n->out[k]].name);
        }
        total = out_t[k].nbytes > SIZE_MAX - total ? SIZE_MAX : total + out_t[k].nbytes;
    }
    bool shape_only = (n->op->flags & SI_OPF_SHAPE_ONLY) != 0;
    /* Shape and Size also when some dimension is not known: the dimensions they read may be. Per node at most
     * fold_max bytes, per graph (subgraphs included) at most SI_FOLD_TOTAL_FACTOR times that. */
    bool fold = (all_const || shape_only) && n->op->run && outs_known && !(n->op->flags & SI_OPF_RANDOM) &&
                total <= fold_max && total <= fold_max * SI_FOLD_TOTAL_FACTOR - *folded && !keep_dq(g, n, pw, total);
    if (fold) {
        for (int k = 0; k < n->n_out && !s; k++) s = si_tensor_alloc(outs[k]);
        if (!s) s = n->op->run(&c);
        for (int k = 0; k < n->n_out && !s && shape_only; k++)
            if (outs[k] && !sizes_known(outs[k])) s = SI_ERR_UNSUPPORTED; /* read a dimension not known yet */
        if (!s) *folded += total;
        if (s) { /* folding is an optimisation: leave the node for run time, where an error will show */
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
        si_const_unref(v->const_val);
        v->const_val = NULL;
        si_val_set_dq(v, NULL, NULL, NULL, 0);
        if (fold) {
            si_tensor *t = si_malloc(sizeof *t);
            if (!t) {
                for (int j = k; j < n->n_out; j++) si_tensor_release(&out_t[j]);
                return si_err(SI_ERR_NO_MEM, "out of memory folding constants");
            }
            *t = out_t[k];
            v->const_val = t;
            /* a dequantized constant remembers its quantized source */
            if (k == 0 && si_node_dq_of_consts(g, n)) si_val_set_dq_of(v, g, n);
        }
    }
    return SI_OK;
}

/* lenient (subgraphs): a node whose rules its inputs break gets unknown outputs, and inference goes on. */
static si_result infer_graph(si_graph *g, size_t fold_max, size_t *folded, bool lenient) {
    bool *pw = product_weights(g);
    for (int i = 0; i < g->n_nodes; i++) {
        si_result s = infer_node(g, i, fold_max, folded, pw);
        if (s && (!lenient || s == SI_ERR_NO_MEM)) {
            si_free(pw);
            return s;
        }
        if (s) {
            si_err_clear();
            const si_node *n = &g->nodes[i];
            for (int k = 0; k < n->n_out; k++) {
                if (n->out[k] < 0) continue;
                si_val *v = &g->values[n->out[k]];
                v->dtype = SI_DTYPE_UNDEFINED;
                v->ndim = -1;
                si_const_unref(v->const_val);
                v->const_val = NULL;
            }
        }
    }
    si_free(pw);
    return SI_OK;
}

si_result si_node_eval(const si_graph *g, int idx, si_tensor **out) {
    const si_node *n = &g->nodes[idx];
    *out = NULL;
    if (!n->op || !n->op->run || n->n_in > 64 || n->n_out > 64 || n->n_out < 1 || n->out[0] < 0 || (n->op->flags & SI_OPF_SUBGRAPH))
        return si_err(SI_ERR_UNSUPPORTED, "node '%s' (%s) cannot be evaluated ahead", n->name, n->op_type);
    const si_tensor *ins[64] = {0};
    si_tensor out_t[64];
    si_tensor *outs[64] = {0};
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0) continue;
        if (!(ins[k] = g->values[n->in[k]].const_val))
            return si_err(SI_ERR_UNSUPPORTED, "node '%s' (%s): input %d is not a constant", n->name, n->op_type, k);
    }
    for (int k = 0; k < n->n_out; k++) {
        memset(&out_t[k], 0, sizeof out_t[k]);
        outs[k] = &out_t[k];
    }
    si_kctx c = {.node = n, .opset = n->opset, .n_in = n->n_in, .in = ins, .n_out = n->n_out, .out = outs, .partial = true};
    si_result s = si_op_supported(n, n->n_in, ins);
    if (!s) s = n->op->infer(&c);
    for (int k = 0; k < n->n_out && !s; k++) s = si_tensor_alloc(outs[k]);
    if (!s) s = n->op->run(&c);
    si_tensor *t = s ? NULL : si_malloc(sizeof *t);
    if (!s && !t) s = si_err(SI_ERR_NO_MEM, "out of memory evaluating node '%s'", n->name);
    for (int k = t ? 1 : 0; k < n->n_out; k++) si_tensor_release(&out_t[k]);
    if (s) return s;
    *t = out_t[0];
    *out = t;
    return SI_OK;
}

bool si_node_dq_of_consts(const si_graph *g, const si_node *n) {
    if (n->domain[0] || !si_node_is(n, SI_OP_DEQUANTIZE_LINEAR) || n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out != 1 || n->out[0] < 0)
        return false;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && !g->values[n->in[k]].const_val) return false;
    return true;
}

void si_val_set_dq_of(si_val *v, const si_graph *g, const si_node *n) {
    if (n->opset >= 21 && si_attr_int(n, "block_size", 0) != 0) return; /* per tensor or per axis only, no blocks */
    si_val_set_dq(v, g->values[n->in[0]].const_val, g->values[n->in[1]].const_val,
                  n->n_in > 2 && n->in[2] >= 0 ? g->values[n->in[2]].const_val : NULL, (int)si_attr_int(n, "axis", 1));
}

si_result si_graph_fold_weights(si_graph *g) {
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        si_node *n = &g->nodes[i];
        const bool fold = si_node_dq_of_consts(g, n) && !g->values[n->out[0]].is_output;
        si_tensor *t = NULL;
        if (fold) {
            si_result s = si_node_eval(g, i, &t);
            if (s == SI_ERR_NO_MEM) return s;
            if (s) si_err_clear(); /* left to run time, where the error will show */
        }
        if (!t) {
            if (w != i) g->nodes[w] = *n;
            w++;
            continue;
        }
        si_val *v = &g->values[n->out[0]];
        si_const_unref(v->const_val);
        v->const_val = t;
        v->is_initializer = true;
        si_val_set_dq_of(v, g, n);
        si_node_clear(n);
    }
    g->n_nodes = w;
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
    return SI_OK;
}

si_result si_graph_infer_shapes(si_graph *g, size_t fold_max_bytes) {
    size_t folded = 0;
    if (fold_max_bytes > SIZE_MAX / SI_FOLD_TOTAL_FACTOR) fold_max_bytes = SIZE_MAX / SI_FOLD_TOTAL_FACTOR;
    return infer_graph(g, fold_max_bytes, &folded, false);
}
