/*
 * call.c — a folded block's call: the shared body run with this call's inputs and weights (call.h).
 */
#include "exec/call.h"

#include <stdatomic.h>

struct si_fn {
    si_cmodel *body;
    atomic_int refs;
};

si_result si_fn_new(si_cmodel *body, si_fn **out) {
    *out = NULL;
    si_fn *f = si_calloc(1, sizeof *f);
    if (!f) {
        body->iface->free(body);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    f->body = body;
    atomic_init(&f->refs, 1);
    *out = f;
    return SI_OK;
}

si_fn *si_fn_ref(si_fn *f) {
    atomic_fetch_add(&f->refs, 1);
    return f;
}

void si_fn_unref(si_fn *f) {
    if (!f || atomic_fetch_sub(&f->refs, 1) != 1) return;
    f->body->iface->free(f->body);
    si_free(f);
}

const si_cmodel *si_fn_body(const si_fn *f) { return f->body; }

typedef struct call_model {
    si_cmodel base;
    char *name;
    si_fn *fn;
    si_port *in_ports, *out_ports;
    si_src *body_in; /* per body input */
    int *out_body;   /* per output port */
} call_model;

typedef struct call_req {
    si_ireq base;
    si_ireq *body;
} call_req;

static si_result call_infer(si_ireq *r_) {
    call_req *r = (call_req *)r_;
    const call_model *m = (const call_model *)r->base.model;
    si_result s = si_ireq_check_inputs(&r->base);
    const si_cmodel *b = m->fn->body;
    for (int p = 0; !s && p < b->n_inputs; p++) {
        const si_src *src = &m->body_in[p];
        s = r->body->iface->set_input(r->body, p, src->kind == SI_SRC_INPUT ? r->base.bound[src->index] : src->constant);
    }
    if (!s) s = r->body->iface->infer(r->body);
    return s ? si_err_wrap(s, "%s", m->name) : SI_OK;
}

/* The body request's own output tensor: stable across inferences, as the interface wants. */
static si_result call_get_output(si_ireq *r_, int i, si_tensor **t) {
    call_req *r = (call_req *)r_;
    const call_model *m = (const call_model *)r->base.model;
    si_result s = si_output_index(r->base.model, i);
    return s ? s : r->body->iface->get_output(r->body, m->out_body[i], t);
}

static void call_cancel(si_ireq *r_) {
    call_req *r = (call_req *)r_;
    if (r->body && r->body->iface->cancel) r->body->iface->cancel(r->body);
}

static void call_profile(si_ireq *r_, si_prof *sink) {
    call_req *r = (call_req *)r_;
    if (r->body && r->body->iface->profile) r->body->iface->profile(r->body, sink);
}

static void call_req_free(si_ireq *r_) {
    call_req *r = (call_req *)r_;
    if (!r) return;
    if (r->body) r->body->iface->free(r->body);
    si_ireq_destroy(&r->base);
}

static const si_ireq_i call_req_iface = {
    .set_input = si_ireq_set_input,
    .get_output = call_get_output,
    .infer = call_infer,
    .free = call_req_free,
    .cancel = call_cancel,
    .profile = call_profile,
};

static si_result call_create_request(si_cmodel *m_, si_ireq **out) {
    call_model *m = (call_model *)m_;
    si_result s = si_ireq_new(sizeof(call_req), &call_req_iface, m_, "call", out);
    if (s) return s;
    call_req *r = (call_req *)*out;
    return si_ireq_done(out, m->fn->body->iface->create_request(m->fn->body, &r->body));
}

static void call_model_free(si_cmodel *m_) {
    call_model *m = (call_model *)m_;
    if (!m) return;
    for (int p = 0; m->body_in && m->fn && p < m->fn->body->n_inputs; p++)
        if (m->body_in[p].kind == SI_SRC_CONST) si_const_unref(m->body_in[p].constant);
    si_fn_unref(m->fn);
    si_ports_free(m->in_ports, m->base.n_inputs);
    si_ports_free(m->out_ports, m->base.n_outputs);
    si_free(m->body_in);
    si_free(m->out_body);
    si_free(m->name);
    si_free(m);
}

static const si_cmodel_i call_model_iface = {.create_request = call_create_request, .free = call_model_free};

si_result si_call_create(const si_call_desc *d, si_cmodel **out) {
    *out = NULL;
    const si_cmodel *b = d->fn->body;
    for (int p = 0; p < b->n_inputs; p++) {
        const si_src *s = &d->body_in[p];
        if (!((s->kind == SI_SRC_INPUT && s->index >= 0 && s->index < d->n_inputs) || (s->kind == SI_SRC_CONST && s->constant)))
            return si_err(SI_ERR_INTERNAL, "call '%s': body input %d has no source", d->name, p);
    }
    for (int k = 0; k < d->n_outputs; k++)
        if (d->out_body[k] < 0 || d->out_body[k] >= b->n_outputs)
            return si_err(SI_ERR_INTERNAL, "call '%s': output %d is no body output", d->name, k);
    call_model *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "out of memory");
    m->base.iface = &call_model_iface;
    m->base.n_inputs = d->n_inputs;
    m->base.n_outputs = d->n_outputs;
    m->base.device = "host";
    m->name = si_strdup(d->name ? d->name : "");
    m->in_ports = si_ports_copy(d->inputs, d->n_inputs);
    m->out_ports = si_ports_copy(d->outputs, d->n_outputs);
    m->body_in = si_calloc((size_t)b->n_inputs + 1, sizeof(si_src));
    m->out_body = si_calloc((size_t)d->n_outputs + 1, sizeof(int));
    if (!m->name || !m->in_ports || !m->out_ports || !m->body_in || !m->out_body) {
        call_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->fn = si_fn_ref(d->fn);
    for (int p = 0; p < b->n_inputs; p++) {
        m->body_in[p] = d->body_in[p];
        if (m->body_in[p].kind == SI_SRC_CONST) si_const_ref(m->body_in[p].constant);
    }
    if (d->n_outputs) memcpy(m->out_body, d->out_body, sizeof(int) * (size_t)d->n_outputs);
    m->base.inputs = m->in_ports;
    m->base.outputs = m->out_ports;
    *out = &m->base;
    return SI_OK;
}
