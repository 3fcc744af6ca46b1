/*
 * control.c — If, Loop and Scan: their types and shapes, from the subgraphs in their attributes. No device kernel
 * runs them (si_op_runnable refuses them when a device compiles): the executor runs them on the host
 * (exec/control.c), with their subgraphs compiled like models of their own (api/compile_cf.c); shape inference infers the subgraphs before
 * the node (ir/shape.c): the values the subgraphs read from the outer scope take the enclosing graph's types,
 * the formal inputs of Loop's and Scan's bodies those si_control_bind gives them, and the node's outputs
 * follow from the subgraphs' outputs.
 */
#include "ops/ops.h"

/* The subgraph in attribute `name`; INVALID_ARG when the node lacks it. */
static si_result body_attr(const si_kctx *c, const char *name, const si_graph **g) {
    const si_attr *a = si_node_attr(c->node, name);
    *g = a && a->type == SI_ATTR_GRAPH ? a->g : NULL;
    if (!*g) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' (a graph) is required", name);
    return SI_OK;
}

static const si_val *body_output(const si_graph *g, int k) { return &g->values[g->outputs[k]]; }

/* Give a formal input of a body the type dt, rank nd and dims, unless the body declares them. */
static void bind_input(si_graph *body, int i, si_dtype dt, int nd, const int64_t *dims) {
    si_val *v = &body->values[body->inputs[i]];
    if (v->dtype == SI_DTYPE_UNDEFINED) v->dtype = dt;
    if (v->ndim < 0 && nd >= 0) {
        v->ndim = nd;
        for (int d = 0; d < nd; d++) v->dims[d] = dims ? dims[d] : SI_DIM_UNKNOWN;
    }
}

// --- If ---------------------------------------------------------------------------------------------------

static si_result if_infer(si_kctx *c) {
    si_result s = si_need_input(c, 0, false);
    if (s) return s;
    const si_tensor *cond = c->in[0];
    if (cond->dtype != SI_BOOL)
        return si_op_err(c, SI_ERR_INVALID_ARG, "cond must be bool, got %s", si_dtype_name(cond->dtype));
    if (si_dim_ne(si_count(cond), 1))
        return si_op_err(c, SI_ERR_INVALID_ARG, "cond must hold one value, has %lld", (long long)si_count(cond));
    const si_graph *tb, *eb;
    if ((s = body_attr(c, "then_branch", &tb)) || (s = body_attr(c, "else_branch", &eb))) return s;
    if (tb->n_outputs != c->n_out || eb->n_outputs != c->n_out)
        return si_op_err(c, SI_ERR_INVALID_ARG, "the node has %d outputs, then_branch %d and else_branch %d", c->n_out,
                         tb->n_outputs, eb->n_outputs);
    /* a condition known now (a constant, or folded from shapes): the outputs are the taken branch's */
    const int taken = cond->data && si_count(cond) == 1 ? (si_load_f64(SI_BOOL, cond->data, 0) != 0 ? 1 : 2) : 0;
    for (int k = 0; k < c->n_out; k++) {
        const si_val *t = body_output(tb, k), *e = body_output(eb, k);
        if (t->dtype != SI_DTYPE_UNDEFINED && e->dtype != SI_DTYPE_UNDEFINED && t->dtype != e->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "output %d is %s in then_branch and %s in else_branch", k,
                             si_dtype_name(t->dtype), si_dtype_name(e->dtype));
        si_dtype dt = t->dtype != SI_DTYPE_UNDEFINED ? t->dtype : e->dtype;
        if (taken) {
            const si_val *o = taken == 1 ? t : e;
            s = o->ndim < 0 ? si_set_out_unknown(c, k, dt, -1) : si_set_out(c, k, dt, o->ndim, o->dims);
        } else if (t->ndim != e->ndim) { /* ONNX lets the branches differ in shape: the rank is the branch taken's */
            s = si_set_out_unknown(c, k, dt, -1);
        } else {
            int64_t dims[SI_MAX_DIMS];
            for (int d = 0; d < t->ndim; d++) dims[d] = t->dims[d] == e->dims[d] ? t->dims[d] : SI_DIM_UNKNOWN;
            s = si_set_out(c, k, dt, t->ndim, dims);
        }
        if (s) return s;
    }
    return SI_OK;
}

// --- Loop -------------------------------------------------------------------------------------------------

/* Inputs M, cond, v_initial[N]; body inputs iter_num, cond, N carried; body outputs cond, N carried, K scans;
 * node outputs N final values, K scan outputs. */
static si_result loop_shape(const si_kctx *c, const si_graph **body, int *n_carried, int *n_scan) {
    si_result s = body_attr(c, "body", body);
    if (s) return s;
    if (c->n_in < 2) return si_op_err(c, SI_ERR_INVALID_ARG, "expects inputs M, cond and the loop-carried values");
    const si_graph *b = *body;
    int N = c->n_in - 2, K = b->n_outputs - 1 - N;
    if (b->n_inputs != N + 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "the body has %d inputs, expected %d (iteration, condition, %d carried)",
                         b->n_inputs, N + 2, N);
    if (K < 0 || c->n_out != N + K)
        return si_op_err(c, SI_ERR_INVALID_ARG, "the body has %d outputs and the node %d, for %d carried values",
                         b->n_outputs, c->n_out, N);
    for (int i = 0; i < N; i++)
        if (!c->in[2 + i]) return si_op_err(c, SI_ERR_INVALID_ARG, "loop-carried input %d is missing", i);
    const si_tensor *m = si_in(c, 0), *cond = si_in(c, 1);
    if (m && (!si_dtype_is_int(m->dtype) || si_dim_ne(si_count(m), 1)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "M must be one integer");
    if (cond && (cond->dtype != SI_BOOL || si_dim_ne(si_count(cond), 1)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "cond must be one bool");
    *n_carried = N;
    *n_scan = K;
    return SI_OK;
}

static si_result loop_bind(si_kctx *c, si_graph *body) {
    const si_graph *b;
    int N, K;
    si_result s = loop_shape(c, &b, &N, &K);
    if (s) return s;
    bind_input(body, 0, SI_I64, 0, NULL);
    bind_input(body, 1, SI_BOOL, 0, NULL);
    for (int i = 0; i < N; i++) /* the shape of a carried value may change from one iteration to the next */
        bind_input(body, 2 + i, c->in[2 + i]->dtype, c->in[2 + i]->ndim, NULL);
    return SI_OK;
}

static si_result loop_infer(si_kctx *c) {
    const si_graph *b;
    int N, K;
    si_result s = loop_shape(c, &b, &N, &K);
    if (s) return s;
    for (int i = 0; i < N; i++) { /* the initial value after no iteration, the body's after the last */
        const si_tensor *init = c->in[2 + i];
        const si_val *o = body_output(b, 1 + i);
        if (o->dtype != SI_DTYPE_UNDEFINED && o->dtype != init->dtype)
            return si_op_err(c, SI_ERR_INVALID_ARG, "loop-carried value %d is %s, the body makes it %s", i,
                             si_dtype_name(init->dtype), si_dtype_name(o->dtype));
        if (o->ndim != init->ndim) {
            s = si_set_out_unknown(c, i, init->dtype, o->ndim < 0 ? init->ndim : -1);
        } else {
            int64_t dims[SI_MAX_DIMS];
            for (int d = 0; d < init->ndim; d++) dims[d] = o->dims[d] == init->dims[d] ? init->dims[d] : SI_DIM_UNKNOWN;
            s = si_set_out(c, i, init->dtype, init->ndim, dims);
        }
        if (s) return s;
    }
    for (int k = 0; k < K; k++) { /* one slice per iteration, stacked along a new first axis */
        const si_val *o = body_output(b, 1 + N + k);
        if (o->ndim + 1 > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "scan output %d has rank above %d", k, SI_MAX_DIMS);
        if (o->ndim < 0) {
            s = si_set_out_unknown(c, N + k, o->dtype, -1);
        } else {
            int64_t dims[SI_MAX_DIMS];
            dims[0] = SI_DIM_UNKNOWN;
            for (int d = 0; d < o->ndim; d++) dims[1 + d] = o->dims[d];
            s = si_set_out(c, N + k, o->dtype, o->ndim + 1, dims);
        }
        if (s) return s;
    }
    return SI_OK;
}

// --- Scan ---------------------------------------------------------------------------------------------------
/* Scan-9 and later: inputs N states, M scan inputs (scanned along scan_input_axes); body inputs N states, M
 * slices; body outputs N states, K slices; node outputs N final states, K scan outputs (stacked along
 * scan_output_axes). Scan-8: input 0 is sequence_lens, and every other input and output has a batch dimension
 * first that the body does not see; scan inputs are scanned along axis 1, scan outputs stacked along axis 1. */

typedef struct scan_plan {
    bool v8;                  /* opset 8: sequence_lens and a batch dimension */
    int first;                /* index of the first state input (1 for Scan-8) */
    int N, M, K;              /* state values, scan inputs, scan outputs */
    int in_axis[SI_MAX_DIMS]; /* per scan input */
    int64_t len, batch;       /* the sequence length; Scan-8: the batch size */
} scan_plan;

/* An INTS attribute of n axes (default 0) into out, each normalised against ranks[i] (+ extra). */
static si_result scan_axes(const si_kctx *c, const char *name, int n, const int *ranks, int extra, int *out) {
    int cnt = 0;
    const int64_t *v = si_attr_ints(c->node, name, &cnt);
    if (v && cnt != n) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute '%s' has %d values, expected %d", name, cnt, n);
    for (int i = 0; i < n; i++) {
        si_result s = si_axis(c, v ? v[i] : 0, ranks[i] + extra, &out[i]);
        if (s) return s;
    }
    return SI_OK;
}

static si_result scan_shape(const si_kctx *c, const si_graph **body, scan_plan *p) {
    si_result s = body_attr(c, "body", body);
    if (s) return s;
    const si_graph *b = *body;
    p->v8 = c->opset < 9;
    p->first = p->v8 ? 1 : 0;
    const int n_in = c->n_in - p->first;
    const si_attr *m = si_node_attr(c->node, "num_scan_inputs");
    if (!m || m->i < 1 || m->i > n_in || m->i > SI_MAX_DIMS)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute num_scan_inputs must be in 1..%d", SI_MIN(n_in, SI_MAX_DIMS));
    p->M = (int)m->i;
    p->N = n_in - p->M;
    p->K = c->n_out - p->N;
    if (b->n_inputs != p->N + p->M || b->n_outputs != c->n_out || p->K < 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "the body has %d inputs and %d outputs, expected %d and %d",
                         b->n_inputs, b->n_outputs, p->N + p->M, c->n_out);
    if (p->K > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "more than %d scan outputs", SI_MAX_DIMS);
    int ranks[SI_MAX_DIMS];
    for (int i = p->first; i < c->n_in; i++) {
        if (!c->in[i]) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d is missing", i);
        if (p->v8 && c->in[i]->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "input %d has no batch dimension", i);
    }
    for (int j = 0; j < p->M; j++) {
        ranks[j] = c->in[p->first + p->N + j]->ndim;
        if (ranks[j] < 1 + p->v8) return si_op_err(c, SI_ERR_INVALID_ARG, "scan input %d must have rank >= %d", j, 1 + p->v8);
    }
    if (p->v8)
        for (int j = 0; j < p->M; j++) p->in_axis[j] = 1;
    else if ((s = scan_axes(c, "scan_input_axes", p->M, ranks, 0, p->in_axis)))
        return s;
    p->len = p->batch = SI_DIM_UNKNOWN;
    for (int i = p->first; p->v8 && i < c->n_in; i++) p->batch = si_dim_merge(p->batch, c->in[i]->dims[0]);
    for (int j = 0; j < p->M; j++) {
        int64_t l = c->in[p->first + p->N + j]->dims[p->in_axis[j]];
        if (si_dim_ne(l, p->len) && si_dim_known(p->len))
            return si_op_err(c, SI_ERR_INVALID_ARG, "scan inputs have sequence lengths %lld and %lld", (long long)p->len,
                             (long long)l);
        p->len = j ? si_dim_merge(p->len, l) : l;
    }
    return SI_OK;
}

static si_result scan_bind(si_kctx *c, si_graph *body) {
    const si_graph *b;
    scan_plan p;
    si_result s = scan_shape(c, &b, &p);
    if (s) return s;
    for (int i = 0; i < p.N; i++) { /* Scan-8: without the batch dimension */
        const si_tensor *x = c->in[p.first + i];
        bind_input(body, i, x->dtype, x->ndim - p.v8, x->dims + p.v8);
    }
    for (int j = 0; j < p.M; j++) { /* one slice: the scan axis removed (and the batch axis for Scan-8) */
        const si_tensor *x = c->in[p.first + p.N + j];
        int64_t dims[SI_MAX_DIMS];
        int nd = 0;
        for (int d = p.v8; d < x->ndim; d++)
            if (d != p.in_axis[j]) dims[nd++] = x->dims[d];
        bind_input(body, p.N + j, x->dtype, nd, dims);
    }
    return SI_OK;
}

static si_result scan_infer(si_kctx *c) {
    const si_graph *b;
    scan_plan p;
    si_result s = scan_shape(c, &b, &p);
    if (s) return s;
    for (int i = 0; i < p.N; i++) /* state values keep their type and shape */
        if ((s = si_same_as_input(c, i, p.first + i))) return s;
    int ranks[SI_MAX_DIMS], out_axis[SI_MAX_DIMS];
    for (int k = 0; k < p.K; k++) ranks[k] = SI_MAX(body_output(b, p.N + k)->ndim, 0);
    if (p.v8)
        for (int k = 0; k < p.K; k++) out_axis[k] = 0; /* after the batch dimension */
    else if ((s = scan_axes(c, "scan_output_axes", p.K, ranks, 1, out_axis)))
        return s;
    for (int k = 0; k < p.K; k++) { /* one slice per step, stacked along the output axis */
        const si_val *o = body_output(b, p.N + k);
        if (o->ndim + 1 + p.v8 > SI_MAX_DIMS)
            return si_op_err(c, SI_ERR_UNSUPPORTED, "scan output %d has rank above %d", k, SI_MAX_DIMS);
        if (o->ndim < 0) {
            s = si_set_out_unknown(c, p.N + k, o->dtype, -1);
        } else {
            int64_t dims[SI_MAX_DIMS + 1];
            if (p.v8) dims[0] = p.batch;
            for (int d = 0, j = 0; d <= o->ndim; d++) dims[p.v8 + d] = d == out_axis[k] ? p.len : o->dims[j++];
            s = si_set_out(c, p.N + k, o->dtype, o->ndim + 1 + p.v8, dims);
        }
        if (s) return s;
    }
    return SI_OK;
}

si_result si_control_bind(si_kctx *c, const char *attr, si_graph *body) {
    (void)attr;
    if (si_node_is(c->node, SI_OP_LOOP)) return loop_bind(c, body);
    if (si_node_is(c->node, SI_OP_SCAN)) return scan_bind(c, body);
    return SI_OK; /* If's branches have no formal inputs */
}

/* A Call (ir/fold.h) is made after shape inference, its outputs typed, and never inferred again: one in a model
 * is refused here. */
static si_result call_infer(si_kctx *c) {
    return si_err(SI_ERR_UNSUPPORTED, "node '%s': Call (%s) is made by safeinfer when it folds repeated blocks; a model "
                  "may not use it", c->node->name, c->node->domain);
}

// --- table ------------------------------------------------------------------------------------------------

static const si_op_def defs[] = {
    {.id = SI_OP_IF, .flags = SI_OPF_SUBGRAPH, .types = {SI_T(SI_BOOL)}, .infer = if_infer},
    {.id = SI_OP_LOOP, .flags = SI_OPF_SUBGRAPH, .types = {SI_T_INTS, SI_T(SI_BOOL)}, .infer = loop_infer},
    {.id = SI_OP_SCAN, .flags = SI_OPF_SUBGRAPH, .infer = scan_infer},
    {.id = SI_OP_CALL, .flags = SI_OPF_HOST, .infer = call_infer},
};

SI_OP_FAMILY_PARTIAL(control, defs);
