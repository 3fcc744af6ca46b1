/*
 * compile_fn.c — folded blocks at compile time: a host submodel holding one Call node (ir/fold.h) becomes the
 * executor core's call step (exec/call.h) over its function's body.
 *
 * The body is compiled once, at its first call, by si_compile_graph as a scope of its own ("fn0", ...):
 * partition over the same device list, each device submodel fail-safe over its candidates. Every call shares
 * it, so a body that fails on a device fails over once (one event, one compile on the next device) and every
 * call runs on the new device from then on. Each call binds the body's data inputs to its own inputs and the
 * body's parameters to its own constants (its layer's weights, which the host submodel holds).
 */
#include "api/compiled.h"
#include "ops/ops.h"

#include <stdio.h>

si_result si_compile_call(si_compiled *c, si_scope *sc, int sub, si_cmodel **out) {
    *out = NULL;
    const si_graph *h = sc->part->subs[sub].g;
    const si_node *n = &h->nodes[0];
    int64_t fid = si_attr_int(n, "function", -1);
    if (h->n_nodes != 1 || fid < 0 || fid >= sc->fold.n_funcs)
        return si_err(SI_ERR_INTERNAL, "call '%s': function %lld is not one this model's folding made", n->name, (long long)fid);
    si_result st = SI_OK;
    if (!sc->fns[fid]) { /* the first call: compile the body */
        si_graph *body = NULL;
        if ((st = si_graph_clone(sc->fold.funcs[fid].body, &body))) return st;
        char path[64];
        snprintf(path, sizeof path, "%s%sfn%lld", sc->path, *sc->path ? "/" : "", (long long)fid);
        sc->fn_scope[fid] = c->n_scopes; /* the scope si_compile_graph adds */
        si_cmodel *cm = NULL;
        if ((st = si_compile_graph(c, path, body, &cm))) return st; /* takes body */
        if ((st = si_fn_new(cm, &sc->fns[fid]))) return st;
    }
    const si_cmodel *b = si_fn_body(sc->fns[fid]);
    if (b->n_inputs != n->n_in || b->n_outputs != n->n_out)
        return si_err(SI_ERR_INTERNAL, "call '%s': %d inputs and %d outputs, its body %d and %d", n->name, n->n_in, n->n_out,
                      b->n_inputs, b->n_outputs);
    si_port *in_ports = si_calloc((size_t)h->n_inputs + 1, sizeof(si_port));
    si_port *out_ports = si_calloc((size_t)h->n_outputs + 1, sizeof(si_port));
    si_src *body_in = si_calloc((size_t)n->n_in + 1, sizeof(si_src));
    int *out_body = si_calloc((size_t)h->n_outputs + 1, sizeof(int));
    if (!in_ports || !out_ports || !body_in || !out_body) st = si_err(SI_ERR_NO_MEM, "out of memory");
    for (int i = 0; !st && i < h->n_inputs; i++) si_port_of(&in_ports[i], &h->values[h->inputs[i]]);
    for (int k = 0; !st && k < h->n_outputs; k++) {
        si_port_of(&out_ports[k], &h->values[h->outputs[k]]);
        out_body[k] = -1;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] == h->outputs[k]) out_body[k] = j;
    }
    for (int k = 0; !st && k < n->n_in; k++) st = si_host_source(h, h->values[n->in[k]].name, &body_in[k]);
    if (!st) {
        si_call_desc d = {.name = n->name, .fn = sc->fns[fid], .n_inputs = h->n_inputs, .n_outputs = h->n_outputs,
                          .inputs = in_ports, .outputs = out_ports, .body_in = body_in, .out_body = out_body};
        st = si_call_create(&d, out);
    }
    /* this call's weights packed or uploaded now, not by the first inference (a hint: the bind does what fails) */
    for (int k = 0; !st && k < n->n_in; k++)
        if (body_in[k].kind == SI_SRC_CONST && si_cmodel_prepare_input((si_cmodel *)b, k, body_in[k].constant)) si_err_clear();
    if (!st)
        si_sink_event(c->sink, SI_EVENT_COMPILE, sc->base + sub, -1, -1, "compile", SI_OK, "call '%s' of function %lld on the host",
                      n->name, (long long)fid);
    SI_FREE_ALL(in_ports, out_ports, body_in, out_body);
    return st;
}
