/*
 * call.c — a folded block's call: the shared body run with this call's inputs and weights (call.h).
 *
 * The calls of one inference run one after the other, so they share body requests: a function keeps the idle ones in
 * a pool, a call takes one for its inference (a new one only when every request of the pool is busy: calls of
 * inferences running at the same time), binds its inputs and weights, runs it, copies the body's outputs into its
 * own output tensors and puts the request back. So a folded model holds one body request (one activation arena, one
 * set of device buffers) per inference running, not one per call; the copies are a layer's outputs (the hidden
 * state, its KV cache), small next to the layer's compute.
 */
#include "exec/call.h"

#include <pthread.h>
#include <stdatomic.h>

struct si_fn {
    si_cmodel *body;
    atomic_int refs;
    pthread_mutex_t mu; /* the pool */
    si_ireq **pool;     /* idle body requests */
    int n_pool, cap_pool;
};

si_result si_fn_new(si_cmodel *body, si_fn **out) {
    *out = NULL;
    si_fn *f = si_calloc(1, sizeof *f);
    if (!f || pthread_mutex_init(&f->mu, NULL)) {
        si_free(f);
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
    for (int i = 0; i < f->n_pool; i++) f->pool[i]->iface->free(f->pool[i]);
    si_free(f->pool);
    pthread_mutex_destroy(&f->mu);
    f->body->iface->free(f->body);
    si_free(f);
}

const si_cmodel *si_fn_body(const si_fn *f) { return f->body; }

/* An idle body request, or a new one. */
static si_result fn_take(si_fn *f, si_ireq **out) {
    pthread_mutex_lock(&f->mu);
    *out = f->n_pool ? f->pool[--f->n_pool] : NULL;
    pthread_mutex_unlock(&f->mu);
    return *out ? SI_OK : f->body->iface->create_request(f->body, out);
}

/* Back to the pool (freed when the pool cannot grow). Its inputs are unbound: the caller's tensors are not kept. */
static void fn_give(si_fn *f, si_ireq *r) {
    for (int p = 0; p < f->body->n_inputs; p++) (void)r->iface->set_input(r, p, NULL);
    pthread_mutex_lock(&f->mu);
    if (f->n_pool == f->cap_pool) {
        int cap = f->cap_pool ? 2 * f->cap_pool : 4;
        si_ireq **np = si_realloc(f->pool, sizeof *np * (size_t)cap);
        if (np) f->pool = np, f->cap_pool = cap;
    }
    if (f->n_pool < f->cap_pool) {
        f->pool[f->n_pool++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    if (r) r->iface->free(r);
}

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
    _Atomic(si_ireq *) active; /* the body request running for it now (for cancel), or NULL */
} call_req;

/* Is body output m->out_body[k] the source of call output k alone? */
static bool sole_source(const call_model *m, int k) {
    for (int j = 0; j < m->base.n_outputs; j++)
        if (j != k && m->out_body[j] == m->out_body[k]) return false;
    return true;
}

/* Output k of this call: the body output it is. Where the body's request lets its output buffers be exchanged
 * (si_ireq_i) and no other output of the call is the same body output, the call takes the body's buffer and gives
 * it its old one to write next (a prefill's hidden states and KV presents are megabytes a layer); otherwise a copy. */
static si_result take_output(call_req *r, si_ireq *b, int k) {
    const call_model *m = (const call_model *)r->base.model;
    si_tensor *t = NULL;
    si_result s = b->iface->get_output(b, m->out_body[k], &t);
    if (!s && !t) s = si_err(SI_ERR_INTERNAL, "body output %d is missing", m->out_body[k]);
    if (!s && b->iface->outputs_exchangeable && sole_source(m, k)) {
        si_tensor_exchange(r->base.outs[k], t);
        return SI_OK;
    }
    if (!s) s = si_ireq_shape_output(&r->base, k, t->dtype, t->ndim, t->dims);
    if (!s && t->nbytes) memcpy(r->base.outs[k]->data, t->data, t->nbytes);
    return s;
}

static si_result call_infer(si_ireq *r_) {
    call_req *r = (call_req *)r_;
    const call_model *m = (const call_model *)r->base.model;
    si_result s = si_ireq_check_inputs(&r->base);
    if (s) return s;
    si_ireq *b = NULL;
    if ((s = fn_take(m->fn, &b))) return si_err_wrap(s, "%s", m->name);
    const si_cmodel *bm = m->fn->body;
    for (int p = 0; !s && p < bm->n_inputs; p++) {
        const si_src *src = &m->body_in[p];
        s = b->iface->set_input(b, p, src->kind == SI_SRC_INPUT ? r->base.bound[src->index] : src->constant);
    }
    atomic_store(&r->active, b);
    if (!s) s = b->iface->infer(b);
    atomic_store(&r->active, NULL);
    /* the body's outputs into this call's own (on a failure some may already hold this inference's) */
    for (int k = 0; !s && k < m->base.n_outputs; k++) s = take_output(r, b, k);
    fn_give(m->fn, b);
    return s ? si_err_wrap(s, "%s", m->name) : SI_OK;
}

/* Cancel reaches the body request running for this call; a cancel that comes between two calls' inferences is
 * the next call's caller's to see (the executor checks its own flag). */
static void call_cancel(si_ireq *r_) {
    call_req *r = (call_req *)r_;
    si_ireq_cancel(atomic_load(&r->active));
}

/* The step timings of the idle body requests (those of requests running for other calls stay with them until a
 * later flush): each timing is added once. */
static void call_profile(si_ireq *r_, si_prof *sink) {
    const call_model *m = (const call_model *)r_->model;
    si_fn *f = m->fn;
    pthread_mutex_lock(&f->mu);
    si_ireqs_profile(f->pool, f->n_pool, sink);
    pthread_mutex_unlock(&f->mu);
}

static void call_req_free(si_ireq *r_) {
    call_req *r = (call_req *)r_;
    if (r) si_ireq_destroy(&r->base);
}

static si_result call_req_init(si_ireq *r) {
    atomic_init(&((call_req *)r)->active, NULL);
    return SI_OK;
}

static const si_ireq_i call_req_iface = SI_IREQ_IFACE_OF(call, "call", .outputs_exchangeable = true);

static void call_model_free(si_cmodel *m_) {
    call_model *m = (call_model *)m_;
    if (!m) return;
    for (int p = 0; m->body_in && m->fn && p < m->fn->body->n_inputs; p++)
        if (m->body_in[p].kind == SI_SRC_CONST) si_const_unref(m->body_in[p].constant);
    si_fn_unref(m->fn);
    SI_FREE_ALL(m->body_in, m->out_body, m->name);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

static const si_cmodel_i call_model_iface = {.create_request = si_ireq_create, .request = &call_req_iface, .free = call_model_free};

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
