/*
 * test_graph.c — building an IR graph by hand for the tests that run single nodes (test_device_ops,
 * test_quant_rnn): the graph under construction is G; setup failures exit with status 2 (see test_graph.h).
 */
#include "test_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

si_graph *G;

void die(const char *what) {
    fprintf(stderr, "test setup failed: %s (%s)\n", what, si_last_error());
    exit(2);
}

void begin(int opset) {
    G = si_graph_new();
    if (!G || !(G->opsets = si_calloc(1, sizeof(si_opset))) || !(G->opsets[0].domain = si_strdup(""))) die("graph");
    G->opsets[0].version = opset;
    G->n_opsets = 1;
}

int val(const char *name) {
    int v = si_graph_value(G, name);
    if (v < 0) die("value");
    return v;
}

void push(int **list, int *n, int v) {
    *list = si_realloc(*list, sizeof(int) * (size_t)(*n + 1));
    if (!*list) die("list");
    (*list)[(*n)++] = v;
}

void input_typed(const char *name, si_dtype dt, const int64_t *dims, int nd) {
    int v = val(name);
    si_val *x = &G->values[v];
    x->dtype = dt;
    x->ndim = nd;
    if (nd) memcpy(x->dims, dims, sizeof(int64_t) * (size_t)nd);
    x->is_input = true;
    push(&G->inputs, &G->n_inputs, v);
}

void output(const char *name) {
    int v = val(name);
    G->values[v].is_output = true;
    push(&G->outputs, &G->n_outputs, v);
}

void set_const(const char *name, si_tensor *t) {
    const int v = val(name); /* first: it may grow the value array */
    si_val_set_const(&G->values[v], t);
}

static void const_1d(const char *name, si_dtype dt, const void *vals, int n) {
    si_tensor *t;
    int64_t d = n;
    if (si_tensor_create(dt, 1, &d, &t)) die("tensor");
    if (n) memcpy(t->data, vals, si_dtype_size(dt) * (size_t)n);
    set_const(name, t);
}

void ints(const char *name, const int64_t *vals, int n) { const_1d(name, SI_I64, vals, n); }

void floats(const char *name, const float *vals, int n) { const_1d(name, SI_F32, vals, n); }

void fconst(const char *name, float v) {
    si_tensor *t;
    if (si_tensor_create(SI_F32, 0, NULL, &t)) die("tensor");
    *(float *)t->data = v;
    set_const(name, t);
}

/* Split "a,b,,c" into value ids (-1 for an empty name). */
static int names(const char *list, int *ids) {
    int n = 0;
    if (!list || !*list) return 0;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char nm[64];
        snprintf(nm, sizeof nm, "%.*s", (int)l, p);
        ids[n++] = l ? val(nm) : -1;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

int node(const char *op, const char *ins, const char *outs) {
    int iv[64], ov[64];
    si_node n;
    memset(&n, 0, sizeof n);
    n.n_in = names(ins, iv);
    n.n_out = names(outs, ov);
    char nm[64];
    snprintf(nm, sizeof nm, "%s_%d", op, G->n_nodes);
    n.name = si_strdup(nm);
    n.op_type = si_strdup(op);
    n.domain = si_strdup("");
    n.in = si_malloc(sizeof(int) * (size_t)(n.n_in + 1));
    n.out = si_malloc(sizeof(int) * (size_t)(n.n_out + 1));
    if (!n.name || !n.op_type || !n.domain || !n.in || !n.out) die("node");
    memcpy(n.in, iv, sizeof(int) * (size_t)n.n_in);
    memcpy(n.out, ov, sizeof(int) * (size_t)n.n_out);
    int idx = si_graph_add_node(G, &n);
    if (idx < 0) die("add node");
    return idx;
}

si_attr *attr(int ni, const char *name, si_attr_type type) {
    si_node *n = &G->nodes[ni];
    si_attr *a = si_realloc(n->attrs, sizeof(si_attr) * (size_t)(n->n_attr + 1));
    if (!a) die("attr");
    n->attrs = a;
    a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    if (!(a->name = si_strdup(name))) die("attr");
    a->type = type;
    return a;
}
void ai(int ni, const char *name, int64_t v) { attr(ni, name, SI_ATTR_INT)->i = v; }
void af(int ni, const char *name, float v) { attr(ni, name, SI_ATTR_FLOAT)->f = v; }
void as(int ni, const char *name, const char *v) {
    si_attr *a = attr(ni, name, SI_ATTR_STRING);
    if (!(a->s = si_strdup(v))) die("attr");
}
void ais(int ni, const char *name, const int64_t *v, int n) {
    si_attr *a = attr(ni, name, SI_ATTR_INTS);
    a->n = n;
    if (!(a->ints = si_malloc(sizeof(int64_t) * (size_t)(n + 1)))) die("attr");
    if (n) memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}
