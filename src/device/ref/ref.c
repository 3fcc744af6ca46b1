/*
 * ref.c — the REF device: runs a graph node by node with the reference kernels of ops/, inferring every
 * shape at run time from the actual inputs. It is the oracle that every other device is compared with, so
 * it favours plainness: one tensor slot per value, intermediates freed after their last use.
 */
#include "device/device.h"
#include "ops/ops.h"

#include <stdio.h>

typedef struct ref_model {
    si_cmodel base;
    si_graph *g;        /* private copy, shapes inferred, constants folded */
    int *steps;         /* node indices to run, in order */
    int n_steps;
    int *last_use;      /* per value: the last step that reads it (-1: none) */
    si_port *in_ports, *out_ports;
} ref_model;

typedef struct ref_req {
    si_ireq base;
    si_tensor *slots;    /* per value: runtime tensor (data owned) */
} ref_req;

// --- requests ---------------------------------------------------------------------------------------------

static const si_tensor *value_tensor(ref_req *r, ref_model *m, int v) {
    si_val *val = &m->g->values[v];
    if (val->const_val) return val->const_val;
    return &r->slots[v];
}

static si_result run_step(ref_req *r, ref_model *m, si_node *n) {
    const si_tensor *ins[64] = {0};
    si_tensor *outs[64] = {0};
    si_tensor scratch[64]; /* absent outputs ("" in the model) are computed into scratch and dropped */
    if (n->n_in > 64 || n->n_out > 64) return si_err(SI_ERR_UNSUPPORTED, "node '%s' has too many inputs or outputs", n->name);
    for (int k = 0; k < n->n_in; k++) ins[k] = n->in[k] >= 0 ? value_tensor(r, m, n->in[k]) : NULL;
    for (int k = 0; k < n->n_out; k++) {
        si_tensor *t = n->out[k] >= 0 ? &r->slots[n->out[k]] : &scratch[k];
        if (n->out[k] >= 0) si_tensor_release(t);
        memset(t, 0, sizeof *t);
        outs[k] = t;
    }
    si_kctx c = {.node = n, .opset = n->opset, .n_in = n->n_in, .in = ins, .n_out = n->n_out, .out = outs};
    si_result s = n->op->infer(&c);
    if (!s) s = si_outputs_typed(&c);
    for (int k = 0; !s && k < n->n_out; k++)
        if ((s = si_tensor_alloc(outs[k]))) si_err_wrap(s, "node '%s' (%s) output %d", n->name, n->op_type, k);
    if (!s) s = n->op->run(&c);
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] < 0) si_tensor_release(&scratch[k]);
    return s;
}

static void release_slots(ref_req *r, ref_model *m) {
    for (int v = 0; v < m->g->n_values; v++) si_tensor_release(&r->slots[v]);
}

static si_result ref_infer(si_ireq *r_) {
    ref_req *r = (ref_req *)r_;
    ref_model *m = (ref_model *)r->base.model;
    si_graph *g = m->g;
    si_result chk = si_ireq_check_inputs(&r->base);
    if (chk) return chk;
    for (int i = 0; i < m->base.n_inputs; i++) {
        si_tensor *slot = &r->slots[g->inputs[i]];
        si_tensor_view(slot, r->base.bound[i]); /* borrowed view of the caller's data */
    }
    si_result s = SI_OK;
    for (int st = 0; st < m->n_steps && !s; st++) {
        si_node *n = &g->nodes[m->steps[st]];
        s = run_step(r, m, n);
        if (s) break;
        for (int k = 0; k < n->n_in; k++) { /* free what is no longer needed */
            int v = n->in[k];
            if (v >= 0 && m->last_use[v] == st && !g->values[v].is_output && !g->values[v].is_input) si_tensor_release(&r->slots[v]);
        }
    }
    /* outputs: prepare every new tensor first, then replace them all, so that a failure leaves the previous
     * outputs as they were */
    si_tensor *fresh = s ? NULL : si_calloc((size_t)m->base.n_outputs + 1, sizeof(si_tensor));
    if (!s && !fresh) s = si_err(SI_ERR_NO_MEM, "REF: out of memory");
    for (int k = 0; !s && k < m->base.n_outputs; k++) {
        int v = g->outputs[k];
        const si_tensor *src = value_tensor(r, m, v);
        si_tensor *o = &fresh[k];
        bool movable = !g->values[v].const_val && !g->values[v].is_input && r->slots[v].owned;
        for (int j = k + 1; j < m->base.n_outputs; j++)
            if (g->outputs[j] == v) movable = false;
        if (movable) { /* hand the buffer over without a copy */
            *o = r->slots[v];
            r->slots[v].data = NULL;
            r->slots[v].owned = false;
        } else if (!(s = si_tensor_init(o, src->dtype, src->ndim, src->dims)) && !(s = si_tensor_alloc(o)) && o->nbytes) {
            memcpy(o->data, src->data, o->nbytes);
        }
    }
    for (int k = 0; fresh && k < m->base.n_outputs; k++) {
        if (s) { si_tensor_release(&fresh[k]); continue; }
        si_ireq_publish(&r->base, k, &fresh[k]);
    }
    si_free(fresh);
    release_slots(r, m);
    return s;
}

static void ref_req_free(si_ireq *r_) {
    ref_req *r = (ref_req *)r_;
    if (!r) return;
    ref_model *m = (ref_model *)r->base.model;
    if (r->slots) release_slots(r, m);
    si_free(r->slots);
    si_ireq_destroy(&r->base);
}

static si_result ref_req_init(si_ireq *r_) {
    ref_req *r = (ref_req *)r_;
    const ref_model *m = (const ref_model *)r_->model;
    if (!(r->slots = si_calloc((size_t)m->g->n_values + 1, sizeof(si_tensor))))
        return si_err(SI_ERR_NO_MEM, "REF: out of memory creating a request");
    return SI_OK;
}

static const si_ireq_i ref_req_iface = SI_IREQ_IFACE(.infer = ref_infer, .free = ref_req_free,
                                                     .size = sizeof(ref_req), .who = "REF", .init = ref_req_init);

// --- compiled model -----------------------------------------------------------------------------------------

static void ref_model_free(si_cmodel *m_) {
    ref_model *m = (ref_model *)m_;
    if (!m) return;
    si_graph_free(m->g);
    SI_FREE_ALL(m->steps, m->last_use, m->in_ports, m->out_ports);
    si_free(m);
}

static const si_cmodel_i ref_model_iface = {.create_request = si_ireq_create, .request = &ref_req_iface, .free = ref_model_free};

static si_result node_inputs(const si_graph *g, const si_node *n, const si_tensor **ins, si_tensor *desc) {
    for (int k = 0; k < n->n_in; k++) {
        ins[k] = NULL;
        if (n->in[k] < 0) continue;
        const si_val *v = &g->values[n->in[k]];
        if (v->const_val) { ins[k] = v->const_val; continue; }
        memset(&desc[k], 0, sizeof desc[k]);
        desc[k].dtype = v->dtype;
        desc[k].ndim = v->ndim < 0 ? 0 : v->ndim;
        memcpy(desc[k].dims, v->dims, sizeof desc[k].dims);
        ins[k] = &desc[k];
    }
    return SI_OK;
}

static si_result ref_supports_op(const si_device *d, const si_graph *g, const si_node *n) {
    (void)d;
    const si_tensor *ins[64];
    si_tensor desc[64];
    if (n->n_in > 64 || n->n_out > 64) return si_err(SI_ERR_UNSUPPORTED, "node '%s' has too many inputs or outputs", n->name);
    node_inputs(g, n, ins, desc);
    return si_op_supported(n, n->n_in, ins);
}

static si_result ref_compile(si_device *d, const si_graph *src, const si_compile_ctx *cc, si_cmodel **out) {
    (void)cc;
    *out = NULL;
    ref_model *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "REF: out of memory");
    m->base.iface = &ref_model_iface;
    m->base.device = d->name;
    si_result s = si_graph_clone(src, &m->g);
    if (s) { ref_model_free(&m->base); return s; }
    si_graph *g = m->g;
    for (int i = 0; i < g->n_nodes; i++)
        if ((s = ref_supports_op(d, g, &g->nodes[i])) || (s = si_op_runnable(&g->nodes[i]))) {
            si_err_wrap(s, "REF cannot run node '%s'", g->nodes[i].name);
            ref_model_free(&m->base);
            return s;
        }
    m->steps = si_malloc(sizeof(int) * ((size_t)g->n_nodes + 1));
    m->last_use = si_malloc(sizeof(int) * ((size_t)g->n_values + 1));
    m->in_ports = si_calloc((size_t)g->n_inputs + 1, sizeof(si_port));
    m->out_ports = si_calloc((size_t)g->n_outputs + 1, sizeof(si_port));
    if (!m->steps || !m->last_use || !m->in_ports || !m->out_ports) {
        ref_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "REF: out of memory");
    }
    for (int v = 0; v < g->n_values; v++) m->last_use[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        si_node *n = &g->nodes[i];
        bool folded = n->n_out > 0;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0 && !g->values[n->out[k]].const_val) folded = false;
        if (folded) continue; /* every output was computed at compile time */
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) m->last_use[n->in[k]] = m->n_steps;
        m->steps[m->n_steps++] = i;
    }
    si_cmodel_ports_from_graph(&m->base, g, m->in_ports, m->out_ports);
    *out = &m->base;
    return SI_OK;
}

static const si_device_i ref_iface = {
    .api_version = SI_DEVICE_API_VERSION,
    .supports_op = ref_supports_op,
    .compile = ref_compile,
};

si_device si_device_ref = {.iface = &ref_iface, .name = "REF", .ctx = NULL};
