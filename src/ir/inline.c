/*
 * inline.c — graph rewrites for control flow: a subgraph made a graph of its own (si_graph_detach), and Ifs on
 * conditions known at compile time replaced by the branch they take (si_graph_fold_ifs).
 */
#include "ir/ir.h"

#include "ops/ops.h"

#include <stdio.h>

// --- detach -----------------------------------------------------------------------------------------------------

/* g and its subgraphs at depth d (a graph's is its parent's + 1). */
static void redepth(si_graph *g, int d) {
    g->depth = d;
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attr; a++) {
            si_attr *at = &g->nodes[i].attrs[a];
            if (at->g) redepth(at->g, d + 1);
            for (int k = 0; at->gs && k < at->n; k++)
                if (at->gs[k]) redepth(at->gs[k], d + 1);
        }
}

si_result si_graph_detach(const si_graph *sub, si_graph **out) {
    *out = NULL;
    si_graph *s = NULL;
    si_result st = si_graph_clone(sub, &s);
    if (st) return st;
    const si_graph *root = si_graph_root(sub);
    s->parent = NULL;
    redepth(s, 0);
    st = SI_ERR_NO_MEM;
    if (si_graph_copy_syms(s, root)) goto fail;
    if (!s->n_opsets) {
        si_free(s->opsets);
        if (!(s->opsets = si_calloc((size_t)root->n_opsets + 1, sizeof(si_opset)))) goto fail;
        for (int i = 0; i < root->n_opsets; i++) {
            s->opsets[i].version = root->opsets[i].version;
            if (!(s->opsets[i].domain = si_strdup(root->opsets[i].domain))) goto fail;
            s->n_opsets = i + 1;
        }
    }
    int *inputs = si_realloc(s->inputs, sizeof(int) * ((size_t)s->n_inputs + (size_t)s->n_outer + 1));
    if (!inputs) goto fail;
    s->inputs = inputs;
    for (int i = 0; i < s->n_outer; i++) {
        si_val *v = &s->values[s->outer[i]];
        v->is_outer = false;
        if (v->const_val) {
            v->is_initializer = true;
        } else {
            v->is_input = true;
            s->inputs[s->n_inputs++] = s->outer[i];
        }
    }
    si_free(s->outer);
    s->outer = NULL;
    s->n_outer = 0;
    if ((st = si_graph_finalize(s))) goto fail;
    *out = s;
    return SI_OK;
fail:
    si_graph_free(s);
    return st == SI_ERR_NO_MEM ? si_err(SI_ERR_NO_MEM, "out of memory detaching a subgraph") : st;
}

// --- folding Ifs ------------------------------------------------------------------------------------------------

/* The branch an If on a known condition takes (NULL when the condition is not known); *attr its attribute. */
static const si_graph *taken_branch(const si_graph *g, const si_node *n, const char **attr) {
    if (!si_node_is(n, SI_OP_IF) || n->n_in < 1 || n->in[0] < 0) return NULL;
    const si_tensor *c = g->values[n->in[0]].const_val;
    if (!c || c->dtype != SI_BOOL || si_shape_count(c->ndim, c->dims) != 1 || !c->data) return NULL;
    *attr = si_load_f64(SI_BOOL, c->data, 0) != 0 ? "then_branch" : "else_branch";
    const si_attr *a = si_node_attr(n, *attr);
    const si_graph *b = a && a->type == SI_ATTR_GRAPH ? a->g : NULL;
    return b && b->n_outputs == n->n_out && b->n_inputs == 0 ? b : NULL;
}

/* Can branch b go into g as it is: no value of its own has the name of one of g's (names are how subgraphs read
 * outer values, so nothing is renamed)? */
static bool names_free(const si_graph *g, const si_graph *b) {
    for (int v = 0; v < b->n_values; v++)
        if (!b->values[v].is_outer && si_graph_find_value(g, b->values[v].name) >= 0) return false;
    return true;
}

/* Replace node `idx` of g (an If) by the nodes of its branch in attribute `attr`. The If's outputs keep their
 * values (and names): the branch node that makes an output makes that value now; an output that the branch
 * takes from elsewhere (an outer value, a constant, another output) gets an Identity. The caller finalizes g. */
static si_result inline_branch(si_graph *g, int idx, const char *attr) {
    si_node *n = &g->nodes[idx];
    si_attr *a = (si_attr *)si_node_attr(n, attr);
    si_graph *b = a->g; /* ours now: the node goes */
    a->g = NULL;
    int *map = si_malloc(sizeof(int) * ((size_t)b->n_values + 1));
    if (!map) {
        si_graph_free(b);
        return si_err(SI_ERR_NO_MEM, "out of memory folding If '%s'", n->name);
    }
    si_result st = SI_OK;
    for (int v = 0; v < b->n_values; v++) map[v] = -1;
    int n_out = n->n_out, *outs = si_malloc(sizeof(int) * ((size_t)n_out + 1));
    char *if_name = si_strdup(n->name);
    if (!outs || !if_name) { st = si_err(SI_ERR_NO_MEM, "out of memory folding If"); goto done; }
    memcpy(outs, n->out, sizeof(int) * (size_t)n_out);
    /* the outputs made by branch nodes become the If's output values */
    bool *direct = si_calloc((size_t)n_out + 1, sizeof(bool));
    if (!direct) { st = si_err(SI_ERR_NO_MEM, "out of memory folding If"); goto done; }
    for (int k = 0; k < n_out; k++) {
        int bo = b->outputs[k];
        if (outs[k] < 0 || b->values[bo].producer < 0 || b->values[bo].is_outer || b->values[bo].const_val || map[bo] >= 0) continue;
        map[bo] = outs[k];
        direct[k] = true;
    }
    /* the rest of the branch's values: outer ones are g's of that name, its own ones new values of g */
    for (int v = 0; v < b->n_values && !st; v++) {
        if (map[v] >= 0) continue;
        const si_val *bv = &b->values[v];
        int gv = bv->is_outer ? si_graph_find_value(g, bv->name) : si_graph_value(g, bv->name);
        if (gv < 0) { st = bv->is_outer ? si_err(SI_ERR_INTERNAL, "If '%s' reads '%s', which the graph lacks", if_name, bv->name)
                                        : si_err(SI_ERR_NO_MEM, "out of memory folding If '%s'", if_name); break; }
        map[v] = gv;
        if (bv->is_outer) continue;
        si_val *d = &g->values[gv];
        d->dtype = bv->dtype;
        d->ndim = bv->ndim;
        memcpy(d->dims, bv->dims, sizeof d->dims);
        if (bv->const_val) {
            d->const_val = si_const_ref(bv->const_val);
            d->is_initializer = bv->producer < 0;
        }
    }
    /* the If goes; the branch's nodes and the Identities come in */
    if (!st) {
        si_node_clear(&g->nodes[idx]);
        memmove(&g->nodes[idx], &g->nodes[idx + 1], sizeof(si_node) * (size_t)(g->n_nodes - idx - 1));
        g->n_nodes--;
    }
    for (int i = 0; i < b->n_nodes && !st; i++) {
        const si_node *bn = &b->nodes[i];
        si_node c;
        if ((st = si_node_copy(&c, bn, g))) break;
        for (int k = 0; k < bn->n_in; k++) c.in[k] = bn->in[k] >= 0 ? map[bn->in[k]] : -1;
        for (int k = 0; k < bn->n_out; k++) c.out[k] = bn->out[k] >= 0 ? map[bn->out[k]] : -1;
        for (int k = 0; k < bn->n_implicit; k++) c.implicit[k] = map[bn->implicit[k]];
        for (int q = 0; q < c.n_attr; q++) { /* its subgraphs are g's children now */
            if (c.attrs[q].g) redepth(c.attrs[q].g, g->depth + 1);
            for (int k = 0; c.attrs[q].gs && k < c.attrs[q].n; k++)
                if (c.attrs[q].gs[k]) redepth(c.attrs[q].gs[k], g->depth + 1);
        }
        if (si_graph_add_node(g, &c) < 0) { si_node_clear(&c); st = si_err(SI_ERR_NO_MEM, "out of memory folding If '%s'", if_name); }
    }
    for (int k = 0; k < n_out && !st; k++) {
        if (outs[k] < 0 || direct[k]) continue;
        char name[512];
        snprintf(name, sizeof name, "%s/output%d", if_name, k);
        si_node c = {.n_in = 1, .n_out = 1};
        c.name = si_strdup(name);
        c.op_type = si_strdup("Identity");
        c.domain = si_strdup("");
        c.in = si_malloc(sizeof(int));
        c.out = si_malloc(sizeof(int));
        if (!c.name || !c.op_type || !c.domain || !c.in || !c.out) {
            si_node_clear(&c);
            st = si_err(SI_ERR_NO_MEM, "out of memory folding If '%s'", if_name);
            break;
        }
        c.in[0] = map[b->outputs[k]];
        c.out[0] = outs[k];
        if (si_graph_add_node(g, &c) < 0) { si_node_clear(&c); st = si_err(SI_ERR_NO_MEM, "out of memory folding If '%s'", if_name); }
    }
    si_free(direct);
done:
    SI_FREE_ALL(map, outs, if_name);
    si_graph_free(b);
    return st;
}

si_result si_graph_fold_ifs(si_graph *g, size_t fold_max_bytes, int *folded) {
    if (folded) *folded = 0;
    if (g->parent) return SI_OK; /* only graphs of their own: a subgraph's outer names must stay as they are */
    for (int round = 0; round <= SI_MAX_GRAPH_DEPTH; round++) {
        int done = 0;
        for (int i = 0; i < g->n_nodes;) {
            const char *attr = NULL;
            const si_graph *b = taken_branch(g, &g->nodes[i], &attr);
            if (!b || !names_free(g, b)) { i++; continue; }
            si_result st = inline_branch(g, i, attr);
            if (st) return st; /* g is half rewritten: the caller drops it */
            done++;            /* node i is now the one after the If */
        }
        if (!done) return SI_OK;
        if (folded) *folded += done;
        si_result st = si_graph_finalize(g);
        if (!st) st = si_graph_infer_shapes(g, fold_max_bytes); /* branches inlined may hold Ifs known now */
        if (st) return st;
    }
    return SI_OK;
}
