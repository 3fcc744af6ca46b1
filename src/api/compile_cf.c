/*
 * compile_cf.c — control flow at compile time: a host submodel (one If, Loop or Scan node, see partition.h)
 * becomes the executor core's control step (exec/control.h) over compiled branches or bodies.
 *
 * Each branch or body is detached from the node (si_graph_detach: its outer-scope reads become inputs, or
 * initializers where they are constants) and compiled by si_compile_graph as a scope of its own: If folding,
 * partition, fail-safe submodels over the same device list, control flow inside it compiled here again.
 * The control step binds a body's outer inputs to its own inputs (the host submodel's, which the partition
 * made of the node's inputs and implicit inputs) or to the host submodel's constants.
 */
#include "api/compiled.h"
#include "exec/control.h"
#include "ops/ops.h"

#include <stdio.h>

/* The source of value `name` of host graph h: a constant of h, or one of h's inputs. */
si_result si_host_source(const si_graph *h, const char *name, si_src *src) {
    int v = si_graph_find_value(h, name);
    if (v >= 0 && h->values[v].const_val) {
        *src = (si_src){.kind = SI_SRC_CONST, .constant = h->values[v].const_val};
        return SI_OK;
    }
    for (int i = 0; v >= 0 && i < h->n_inputs; i++)
        if (h->inputs[i] == v) {
            *src = (si_src){.kind = SI_SRC_INPUT, .index = i};
            return SI_OK;
        }
    return si_err(SI_ERR_INTERNAL, "control flow: '%s' is neither an input nor a constant of the host submodel", name);
}

/* An INTS attribute of exactly n values, or absent (NULL). */
static si_result ints_attr(const si_node *n, const char *name, int want, const int64_t **out) {
    int cnt = 0;
    *out = si_attr_ints(n, name, &cnt);
    if (*out && cnt != want)
        return si_err(SI_ERR_INVALID_ARG, "Scan (node '%s'): attribute '%s' has %d values, expected %d", n->name, name, cnt, want);
    return SI_OK;
}

si_result si_compile_control(si_compiled *c, si_scope *sc, int sub, si_cmodel **out) {
    *out = NULL;
    const si_graph *h = sc->part->subs[sub].g;
    if (h->n_nodes != 1) return si_err(SI_ERR_INTERNAL, "host submodel %d has %d nodes", sub, h->n_nodes);
    const si_node *n = &h->nodes[0];
    si_cf_kind kind;
    if (si_node_is(n, SI_OP_IF)) kind = SI_CF_IF;
    else if (si_node_is(n, SI_OP_LOOP)) kind = SI_CF_LOOP;
    else if (si_node_is(n, SI_OP_SCAN)) kind = SI_CF_SCAN;
    else
        return si_err(SI_ERR_UNSUPPORTED, "node '%s' (%s) has subgraphs; the executor runs If, Loop and Scan only", n->name,
                      n->op_type);
    static const char *const if_attrs[] = {"then_branch", "else_branch"}, *const body_attr[] = {"body"};
    const char *const *attrs = kind == SI_CF_IF ? if_attrs : body_attr;
    const int n_bodies = kind == SI_CF_IF ? 2 : 1;

    si_result st = SI_OK;
    si_port *in_ports = si_calloc((size_t)h->n_inputs + 1, sizeof(si_port));
    si_port *out_ports = si_calloc((size_t)h->n_outputs + 1, sizeof(si_port));
    si_src *node_in = si_calloc((size_t)n->n_in + 1, sizeof(si_src));
    int *node_out = si_calloc((size_t)n->n_out + 1, sizeof(int));
    si_cmodel *bodies[2] = {NULL, NULL};
    si_src *body_in[2] = {NULL, NULL};
    int n_formal[2] = {0, 0};
    if (!in_ports || !out_ports || !node_in || !node_out) { st = si_err(SI_ERR_NO_MEM, "out of memory"); goto done; }
    for (int i = 0; i < h->n_inputs; i++) si_port_of(&in_ports[i], &h->values[h->inputs[i]]);
    for (int k = 0; k < h->n_outputs; k++) si_port_of(&out_ports[k], &h->values[h->outputs[k]]);
    for (int k = 0; k < n->n_in && !st; k++) {
        if (n->in[k] < 0) node_in[k] = (si_src){.kind = SI_SRC_NONE};
        else st = si_host_source(h, h->values[n->in[k]].name, &node_in[k]);
    }
    for (int k = 0; k < n->n_out; k++) {
        node_out[k] = -1;
        for (int j = 0; n->out[k] >= 0 && j < h->n_outputs; j++)
            if (h->outputs[j] == n->out[k]) node_out[k] = j;
    }
    /* the bodies, each a scope of its own */
    for (int b = 0; b < n_bodies && !st; b++) {
        const si_attr *a = si_node_attr(n, attrs[b]);
        if (!a || a->type != SI_ATTR_GRAPH || !a->g) {
            st = si_err(SI_ERR_INVALID_ARG, "%s (node '%s'): attribute '%s' (a graph) is required", n->op_type, n->name, attrs[b]);
            break;
        }
        si_graph *body = NULL;
        if ((st = si_graph_detach(a->g, &body))) break;
        n_formal[b] = a->g->n_inputs;
        int n_outer = body->n_inputs - n_formal[b];
        if (!(body_in[b] = si_calloc((size_t)n_outer + 1, sizeof(si_src)))) st = si_err(SI_ERR_NO_MEM, "out of memory");
        for (int p = 0; p < n_outer && !st; p++)
            st = si_host_source(h, body->values[body->inputs[n_formal[b] + p]].name, &body_in[b][p]);
        if (st) { si_graph_free(body); break; }
        char path[1024];
        snprintf(path, sizeof path, "%s%s%s.%s", sc->path, *sc->path ? "/" : "", n->name, attrs[b]);
        st = si_compile_graph(c, path, body, &bodies[b]); /* takes body */
    }
    si_cf_desc d = {.kind = kind, .name = n->name, .n_inputs = h->n_inputs, .n_outputs = h->n_outputs,
                    .inputs = in_ports, .outputs = out_ports, .n_node_in = n->n_in, .node_in = node_in,
                    .n_node_out = n->n_out, .node_out = node_out, .n_bodies = n_bodies, .bodies = bodies,
                    .n_formal = n_formal, .body_in = (const si_src *const *)body_in,
                    .max_iterations = c->loop_max_iterations};
    if (!st && kind == SI_CF_SCAN) {
        const si_attr *m = si_node_attr(n, "num_scan_inputs");
        d.scan.v8 = n->opset < 9;
        d.scan.n_scan_inputs = m && m->type == SI_ATTR_INT && m->i > 0 && m->i <= SI_MAX_DIMS ? (int)m->i : 0;
        if (!d.scan.n_scan_inputs)
            st = si_err(SI_ERR_INVALID_ARG, "Scan (node '%s'): attribute num_scan_inputs must be in 1..%d", n->name, SI_MAX_DIMS);
        int M = d.scan.n_scan_inputs, K = n->n_out - (n->n_in - d.scan.v8 - M);
        if (!st && d.scan.v8) st = ints_attr(n, "directions", M, &d.scan.in_rev);
        if (!st && !d.scan.v8 && !(st = ints_attr(n, "scan_input_axes", M, &d.scan.in_axes)) &&
            !(st = ints_attr(n, "scan_input_directions", M, &d.scan.in_rev)) &&
            !(st = ints_attr(n, "scan_output_axes", K, &d.scan.out_axes)))
            st = ints_attr(n, "scan_output_directions", K, &d.scan.out_rev);
    }
    if (!st) {
        st = si_cf_create(&d, out); /* takes the bodies */
        bodies[0] = bodies[1] = NULL;
        if (!st)
            si_sink_event(c->sink, SI_EVENT_COMPILE, sc->base + sub, -1, -1, "compile", SI_OK, "%s '%s' on the host", n->op_type,
                          n->name);
    }
done:
    for (int b = 0; b < 2; b++) {
        if (bodies[b]) bodies[b]->iface->free(bodies[b]);
        si_free(body_in[b]);
    }
    SI_FREE_ALL(in_ports, out_ports, node_in, node_out);
    return st;
}
