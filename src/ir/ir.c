/*
 * ir.c — graph construction, validation and topological ordering (outer-scope reads of subgraphs included),
 * deep copy (one node and attribute copy, recursing into subgraphs), symbols, and attribute access.
 */
#include "ir/ir.h"

#include "ops/ops.h"

#include <limits.h>
#include <math.h>

// --- construction -------------------------------------------------------------------------------------

si_graph *si_graph_new(void) { return si_calloc(1, sizeof(si_graph)); }

void si_attr_clear(si_attr *a) {
    si_tensor_free(a->t);
    if (a->strings)
        for (int i = 0; i < a->n; i++) si_free(a->strings[i]);
    si_graph_free(a->g);
    if (a->gs)
        for (int i = 0; i < a->n; i++) si_graph_free(a->gs[i]);
    SI_FREE_ALL(a->name, a->s, a->floats, a->ints, a->strings, a->gs);
    memset(a, 0, sizeof *a);
}

void si_node_clear(si_node *n) {
    for (int i = 0; i < n->n_attr; i++) si_attr_clear(&n->attrs[i]);
    SI_FREE_ALL(n->name, n->op_type, n->domain, n->in, n->out, n->attrs, n->implicit);
    memset(n, 0, sizeof *n);
}

void si_val_set_dq(si_val *v, si_tensor *q, si_tensor *scale, si_tensor *zp, int axis) {
    si_const_unref(v->dq_q);
    si_const_unref(v->dq_scale);
    si_const_unref(v->dq_zp);
    v->dq_q = si_const_ref(q);
    v->dq_scale = q ? si_const_ref(scale) : NULL;
    v->dq_zp = q ? si_const_ref(zp) : NULL;
    v->dq_axis = axis;
}

static void value_clear(si_val *v) {
    si_free(v->name);
    for (int i = 0; i < SI_MAX_DIMS; i++) si_free(v->dim_names[i]);
    si_const_unref(v->const_val);
    si_val_set_dq(v, NULL, NULL, NULL, 0);
}

void si_graph_free(si_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) value_clear(&g->values[i]);
    si_free(g->values);
    for (int i = 0; i < g->n_nodes; i++) si_node_clear(&g->nodes[i]);
    SI_FREE_ALL(g->nodes, g->inputs, g->outputs);
    for (int i = 0; i < g->n_opsets; i++) si_free(g->opsets[i].domain);
    SI_FREE_ALL(g->opsets, g->producer, g->outer);
    for (int i = 0; i < g->n_syms; i++) si_free(g->syms[i]);
    SI_FREE_ALL(g->syms, g);
}

si_graph *si_graph_root(const si_graph *g) {
    while (g->parent) g = g->parent;
    return (si_graph *)g;
}

/* Room for element n of an array arr of *cap elements of esz bytes: arr itself while n < *cap, else arr grown to
 * twice its capacity (first: `first`), NULL when out of memory (arr and *cap unchanged then). */
static void *grow_for(void *arr, int n, int *cap, int first, size_t esz) {
    if (n < *cap) return arr;
    int c = *cap ? *cap * 2 : first;
    void *p = si_realloc(arr, esz * (size_t)c);
    if (p) *cap = c;
    return p;
}

int si_graph_sym(si_graph *g, const char *name) {
    si_graph *r = si_graph_root(g);
    for (int i = 0; i < r->n_syms; i++)
        if (!strcmp(r->syms[i], name)) return i;
    if (r->n_syms >= SI_MAX_SYMS) return -1;
    char **ns = grow_for(r->syms, r->n_syms, &r->cap_syms, 8, sizeof(char *));
    if (!ns) return -1;
    r->syms = ns;
    if (!(r->syms[r->n_syms] = si_strdup(name))) return -1;
    return r->n_syms++;
}

const char *si_graph_sym_name(const si_graph *g, int64_t d) {
    const si_graph *r = si_graph_root(g);
    int id = si_dim_sym_id(d);
    return id >= 0 && id < r->n_syms ? r->syms[id] : NULL;
}

si_result si_graph_copy_syms(si_graph *dst, const si_graph *src) {
    const si_graph *r = si_graph_root(src);
    for (int i = 0; i < r->n_syms; i++)
        if (si_graph_sym(dst, r->syms[i]) != i) return si_err(SI_ERR_NO_MEM, "out of memory copying dimension symbols");
    return SI_OK;
}

int si_graph_find_value(const si_graph *g, const char *name) {
    /* a linear scan: the loader, which looks up every name of a model, keeps its own hash index */
    for (int i = g->n_values - 1; i >= 0; i--)
        if (!strcmp(g->values[i].name, name)) return i;
    return -1;
}

int si_graph_value(si_graph *g, const char *name) {
    int i = si_graph_find_value(g, name);
    if (i >= 0) return i;
    return si_graph_add_value(g, name);
}

void si_val_set_const(si_val *v, si_tensor *t) {
    v->const_val = t;
    v->is_initializer = true;
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    memcpy(v->dims, t->dims, sizeof v->dims);
}

int si_graph_add_value(si_graph *g, const char *name) {
    si_val *nv = grow_for(g->values, g->n_values, &g->cap_values, 64, sizeof(si_val));
    if (!nv) return -1;
    g->values = nv;
    si_val *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = si_strdup(name);
    if (!v->name) return -1;
    v->ndim = -1;
    v->producer = -1;
    return g->n_values++;
}

int si_graph_add_node(si_graph *g, si_node *n) {
    si_node *nn = grow_for(g->nodes, g->n_nodes, &g->cap_nodes, 64, sizeof(si_node));
    if (!nn) return -1;
    g->nodes = nn;
    g->nodes[g->n_nodes] = *n;
    memset(n, 0, sizeof *n);
    return g->n_nodes++;
}

int64_t si_graph_opset(const si_graph *g, const char *domain) {
    g = si_graph_root(g); /* subgraphs use the model's opset imports */
    bool def = !domain || !*domain || !strcmp(domain, "ai.onnx");
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        bool gdef = !d || !*d || !strcmp(d, "ai.onnx");
        if ((def && gdef) || (!def && !gdef && !strcmp(d, domain))) return g->opsets[i].version;
    }
    return -1;
}

// --- finalize: validate and sort ------------------------------------------------------------------------

/* The names the subgraphs of n read from the outer scope, as values of g (created when g lacks them: then they
 * are outer reads of g too), into n->implicit without repeats. */
static si_result resolve_implicit(si_graph *g, si_node *n) {
    si_free(n->implicit);
    n->implicit = NULL;
    n->n_implicit = 0;
    int total = 0;
    for (int a = 0; a < n->n_attr; a++) {
        const si_attr *at = &n->attrs[a];
        if (at->g) total += at->g->n_outer;
        for (int k = 0; at->gs && k < at->n; k++) total += at->gs[k] ? at->gs[k]->n_outer : 0;
    }
    if (!total) return SI_OK;
    if (!(n->implicit = si_malloc(sizeof(int) * (size_t)total))) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (int a = 0; a < n->n_attr; a++) {
        const si_attr *at = &n->attrs[a];
        int ng = at->g ? 1 : at->gs ? at->n : 0;
        for (int k = 0; k < ng; k++) {
            const si_graph *sg = at->g ? at->g : at->gs[k];
            for (int i = 0; sg && i < sg->n_outer; i++) {
                int v = si_graph_value(g, sg->values[sg->outer[i]].name);
                if (v < 0) return si_err(SI_ERR_NO_MEM, "out of memory");
                bool dup = false;
                for (int j = 0; j < n->n_implicit && !dup; j++) dup = n->implicit[j] == v;
                if (!dup) n->implicit[n->n_implicit++] = v;
            }
        }
    }
    return SI_OK;
}

/* A value that a node or an output reads: its source must be in g, or (subgraphs) in an enclosing graph. */
static si_result check_source(si_graph *g, int v, const si_node *reader) {
    si_val *val = &g->values[v];
    if (val->producer >= 0 || val->is_input || val->is_initializer || val->const_val) return SI_OK;
    if (g->parent) {
        val->is_outer = true;
        return SI_OK;
    }
    if (reader)
        return si_err(SI_ERR_PARSE, "node '%s' (%s) reads '%s', which no node, input or initializer provides",
                      reader->name, reader->op_type, val->name);
    return si_err(SI_ERR_PARSE, "graph output '%s' is not produced by any node", val->name);
}

si_result si_graph_finalize(si_graph *g) {
    /* implicit inputs first: they may add values */
    for (int i = 0; i < g->n_nodes; i++) {
        si_result s = resolve_implicit(g, &g->nodes[i]);
        if (s) return s;
    }
    int nv = g->n_values, nn = g->n_nodes;
    /* producers */
    for (int v = 0; v < nv; v++) g->values[v].producer = -1;
    for (int i = 0; i < nn; i++) {
        si_node *n = &g->nodes[i];
        if (n->n_out == 0) /* every ONNX op has an output; kernels may write output 0 */
            return si_err(SI_ERR_PARSE, "node '%s' (%s) has no outputs", n->name, n->op_type);
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            si_val *val = &g->values[v];
            if (val->producer >= 0 || val->is_input || val->is_initializer)
                return si_err(SI_ERR_PARSE, "value '%s' is produced more than once (again by node '%s' %s)", val->name,
                              n->name, n->op_type);
            val->producer = i;
            val->is_outer = false;
        }
    }
    /* every consumed value must have a source (in a subgraph: here or in an enclosing graph) */
    for (int i = 0; i < nn; i++) {
        si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            int v = k < n->n_in ? n->in[k] : n->implicit[k - n->n_in];
            si_result s = v < 0 ? SI_OK : check_source(g, v, n);
            if (s) return s;
        }
    }
    for (int k = 0; k < g->n_outputs; k++) {
        si_result s = check_source(g, g->outputs[k], NULL);
        if (s) return s;
    }
    if (g->parent) {
        int n_outer = 0;
        for (int v = 0; v < nv; v++) n_outer += g->values[v].is_outer;
        si_free(g->outer);
        g->n_outer = 0;
        if (!(g->outer = si_malloc(sizeof(int) * ((size_t)n_outer + 1)))) return si_err(SI_ERR_NO_MEM, "out of memory");
        for (int v = 0; v < nv; v++)
            if (g->values[v].is_outer) g->outer[g->n_outer++] = v;
    }
    /* Kahn's algorithm over node dependencies, keeping the file's order where it is already valid */
    int *indeg = si_calloc((size_t)nn + 1, sizeof(int));
    int *order = si_malloc(sizeof(int) * ((size_t)nn + 1));
    int *users_start = si_calloc((size_t)nv + 1, sizeof(int));
    int total_in = 0;
    for (int i = 0; i < nn; i++) total_in += g->nodes[i].n_in + g->nodes[i].n_implicit;
    int *users = si_malloc(sizeof(int) * ((size_t)total_in + 1));
    int *fill = si_calloc((size_t)nv + 1, sizeof(int));
    si_node *sorted = si_malloc(sizeof(si_node) * ((size_t)nn + 1));
    si_result st = SI_OK;
    if (!indeg || !order || !users_start || !users || !fill || !sorted) { st = si_err(SI_ERR_NO_MEM, "out of memory sorting the graph"); goto done; }
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_in + g->nodes[i].n_implicit; k++) {
            int v = si_node_reads(&g->nodes[i], k);
            if (v >= 0 && g->values[v].producer >= 0) { users_start[v + 1]++; indeg[i]++; }
        }
    for (int v = 0; v < nv; v++) users_start[v + 1] += users_start[v];
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_in + g->nodes[i].n_implicit; k++) {
            int v = si_node_reads(&g->nodes[i], k);
            if (v >= 0 && g->values[v].producer >= 0) users[users_start[v] + fill[v]++] = i;
        }
    /* a min-ordered ready list keeps the original order stable; use a simple queue scanned in index order */
    int head = 0, tail = 0;
    for (int i = 0; i < nn; i++)
        if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        int i = order[head++];
        si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            for (int u = users_start[v]; u < users_start[v + 1]; u++)
                if (--indeg[users[u]] == 0) order[tail++] = users[u];
        }
    }
    if (tail != nn) {
        int bad = -1;
        for (int i = 0; i < nn && bad < 0; i++)
            if (indeg[i]) bad = i;
        st = si_err(SI_ERR_PARSE, "the graph has a cycle through node '%s' (%s)", g->nodes[bad].name, g->nodes[bad].op_type);
        goto done;
    }
    for (int i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
    if (nn) memcpy(g->nodes, sorted, sizeof(si_node) * (size_t)nn); /* a graph without nodes has no array */
    for (int i = 0; i < nn; i++) {
        si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0) g->values[n->out[k]].producer = i;
        int64_t ver = si_graph_opset(g, n->domain);
        if (ver < 0 && (!n->domain[0] || !strcmp(n->domain, "ai.onnx"))) {
            st = si_err(SI_ERR_PARSE, "node '%s' (%s): the model imports no opset for the default domain", n->name, n->op_type);
            goto done;
        }
        n->opset = ver < 0 ? 1 : ver > INT_MAX ? INT_MAX : (int)ver;
        n->op = si_op_find(n->domain, n->op_type, n->opset); /* the version of the op for this opset */
    }
done:
    SI_FREE_ALL(indeg, order, users_start, users, fill, sorted);
    return st;
}

// --- deep copy --------------------------------------------------------------------------------------------

static si_result graph_clone(const si_graph *g, si_graph *parent, si_graph **out);

static int *ints_dup(const int *a, int n) {
    int *d = si_malloc(sizeof(int) * ((size_t)n + 1));
    if (d && n) memcpy(d, a, sizeof(int) * (size_t)n);
    return d;
}

si_result si_attr_copy(si_attr *d, const si_attr *s, si_graph *owner) {
    *d = *s;
    d->name = NULL; d->s = NULL; d->t = NULL; d->floats = NULL; d->ints = NULL; d->strings = NULL;
    d->g = NULL; d->gs = NULL;
    si_result st = SI_ERR_NO_MEM;
    if (!(d->name = si_strdup(s->name))) goto fail;
    if (s->s && !(d->s = si_strdup(s->s))) goto fail;
    if (s->t && si_tensor_clone(s->t, &d->t)) goto fail;
    if (s->floats) {
        if (!(d->floats = si_malloc(sizeof(float) * (size_t)s->n + 1))) goto fail;
        memcpy(d->floats, s->floats, sizeof(float) * (size_t)s->n);
    }
    if (s->ints) {
        if (!(d->ints = si_malloc(sizeof(int64_t) * (size_t)s->n + 1))) goto fail;
        memcpy(d->ints, s->ints, sizeof(int64_t) * (size_t)s->n);
    }
    if (s->strings) {
        if (!(d->strings = si_calloc((size_t)s->n + 1, sizeof(char *)))) goto fail;
        for (int i = 0; i < s->n; i++)
            if (!(d->strings[i] = si_strdup(s->strings[i]))) goto fail;
    }
    if (s->g && (st = graph_clone(s->g, owner, &d->g))) goto fail;
    if (s->gs) {
        st = SI_ERR_NO_MEM;
        if (!(d->gs = si_calloc((size_t)s->n + 1, sizeof(si_graph *)))) goto fail;
        for (int i = 0; i < s->n; i++)
            if (s->gs[i] && (st = graph_clone(s->gs[i], owner, &d->gs[i]))) goto fail;
    }
    return SI_OK;
fail:
    si_attr_clear(d);
    return st == SI_ERR_NO_MEM ? si_err(SI_ERR_NO_MEM, "out of memory copying attribute '%s'", s->name) : st;
}

si_result si_node_copy(si_node *d, const si_node *s, si_graph *owner) {
    memset(d, 0, sizeof *d);
    d->opset = s->opset;
    d->op = s->op;
    d->n_in = s->n_in;
    d->n_out = s->n_out;
    d->n_implicit = s->n_implicit;
    if (!(d->name = si_strdup(s->name)) || !(d->op_type = si_strdup(s->op_type)) || !(d->domain = si_strdup(s->domain)) ||
        !(d->in = ints_dup(s->in, s->n_in)) || !(d->out = ints_dup(s->out, s->n_out)) ||
        !(d->implicit = ints_dup(s->implicit, s->n_implicit)) ||
        !(d->attrs = si_calloc((size_t)s->n_attr + 1, sizeof(si_attr)))) {
        si_node_clear(d);
        return si_err(SI_ERR_NO_MEM, "out of memory copying node '%s'", s->name);
    }
    for (int k = 0; k < s->n_attr; k++) {
        si_result st = si_attr_copy(&d->attrs[k], &s->attrs[k], owner);
        if (st) {
            si_node_clear(d);
            return st;
        }
        d->n_attr = k + 1;
    }
    return SI_OK;
}

static si_result graph_clone(const si_graph *g, si_graph *parent, si_graph **out) {
    *out = NULL;
    si_result st = SI_ERR_NO_MEM;
    si_graph *c = si_graph_new();
    if (!c) goto fail;
    c->ir_version = g->ir_version;
    c->parent = parent;
    c->depth = g->depth;
    if (!(c->producer = si_strdup(g->producer ? g->producer : ""))) goto fail;
    if (!(c->values = si_calloc((size_t)g->n_values + 1, sizeof(si_val)))) goto fail;
    c->cap_values = g->n_values + 1;
    for (int i = 0; i < g->n_values; i++) {
        const si_val *s = &g->values[i];
        si_val *d = &c->values[i];
        c->n_values = i + 1;
        *d = *s;
        d->name = NULL; d->const_val = NULL;
        d->dq_q = d->dq_scale = d->dq_zp = NULL;
        si_val_set_dq(d, s->dq_q, s->dq_scale, s->dq_zp, s->dq_axis);
        memset(d->dim_names, 0, sizeof d->dim_names);
        if (!(d->name = si_strdup(s->name))) goto fail;
        for (int k = 0; k < SI_MAX_DIMS; k++)
            if (s->dim_names[k] && !(d->dim_names[k] = si_strdup(s->dim_names[k]))) goto fail;
        d->const_val = si_const_ref(s->const_val); /* constants are immutable: shared, not copied */
    }
    if (!(c->nodes = si_calloc((size_t)g->n_nodes + 1, sizeof(si_node)))) goto fail;
    c->cap_nodes = g->n_nodes + 1;
    for (int i = 0; i < g->n_nodes; i++) {
        if ((st = si_node_copy(&c->nodes[i], &g->nodes[i], c))) goto fail;
        c->n_nodes = i + 1;
    }
    st = SI_ERR_NO_MEM;
    if (!(c->inputs = ints_dup(g->inputs, g->n_inputs)) || !(c->outputs = ints_dup(g->outputs, g->n_outputs)) ||
        !(c->outer = ints_dup(g->outer, g->n_outer)))
        goto fail;
    c->n_inputs = g->n_inputs;
    c->n_outputs = g->n_outputs;
    c->n_outer = g->n_outer;
    if (!(c->opsets = si_calloc((size_t)g->n_opsets + 1, sizeof(si_opset)))) goto fail;
    for (int i = 0; i < g->n_opsets; i++) {
        c->n_opsets = i + 1;
        c->opsets[i].version = g->opsets[i].version;
        if (!(c->opsets[i].domain = si_strdup(g->opsets[i].domain))) goto fail;
    }
    if (g->n_syms && (!(c->syms = si_calloc((size_t)g->n_syms, sizeof(char *))))) goto fail;
    c->cap_syms = g->n_syms;
    for (int i = 0; i < g->n_syms; i++) {
        if (!(c->syms[i] = si_strdup(g->syms[i]))) goto fail;
        c->n_syms = i + 1;
    }
    *out = c;
    return SI_OK;
fail:
    si_graph_free(c);
    return st == SI_ERR_NO_MEM ? si_err(SI_ERR_NO_MEM, "out of memory copying the graph") : st;
}

si_result si_graph_clone(const si_graph *g, si_graph **out) { return graph_clone(g, g->parent, out); }

// --- attributes -----------------------------------------------------------------------------------------

const si_attr *si_node_attr(const si_node *n, const char *name) {
    for (int i = 0; i < n->n_attr; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t si_attr_int(const si_node *n, const char *name, int64_t dflt) {
    const si_attr *a = si_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == SI_ATTR_INT) return a->i;
    if (a->type == SI_ATTR_FLOAT) { /* converted like a C cast, but NaN and out-of-range floats saturate */
        if (isnan(a->f)) return dflt;
        if (a->f >= 9223372036854775807.0f) return INT64_MAX;
        if (a->f <= -9223372036854775808.0f) return INT64_MIN;
        return (int64_t)a->f;
    }
    return dflt;
}

float si_attr_float(const si_node *n, const char *name, float dflt) {
    const si_attr *a = si_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == SI_ATTR_FLOAT) return a->f;
    if (a->type == SI_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *si_attr_str(const si_node *n, const char *name, const char *dflt) {
    const si_attr *a = si_node_attr(n, name);
    return (a && a->type == SI_ATTR_STRING && a->s) ? a->s : dflt;
}

const int64_t *si_attr_ints(const si_node *n, const char *name, int *count) {
    const si_attr *a = si_node_attr(n, name);
    if (!a || a->type != SI_ATTR_INTS) { *count = 0; return NULL; }
    *count = a->n;
    return a->ints;
}

const float *si_attr_floats(const si_node *n, const char *name, int *count) {
    const si_attr *a = si_node_attr(n, name);
    if (!a || a->type != SI_ATTR_FLOATS) { *count = 0; return NULL; }
    *count = a->n;
    return a->floats;
}

const si_tensor *si_attr_tensor(const si_node *n, const char *name) {
    const si_attr *a = si_node_attr(n, name);
    return (a && a->type == SI_ATTR_TENSOR) ? a->t : NULL;
}
