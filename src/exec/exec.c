/*
 * exec.c — the executor core (see exec.h). A request holds one request per submodel; infer binds each
 * submodel input to its source tensor (a model input, or the stable output tensor of an earlier submodel's
 * request) and runs the submodels in order.
 *
 * Outputs after a failure: a model output of the last submodel is that submodel's output tensor, which keeps
 * its last good results when the submodel fails. An output of an earlier submodel would already hold the
 * failed inference's results when a later submodel fails, so such outputs (and outputs fed by a model input
 * or a constant) are the request's own copies, replaced only when every submodel has succeeded: after a
 * failed infer, every output is the last successful infer's.
 */
#include "exec/exec.h"

typedef struct exec_model {
    si_cmodel base;
    int n_subs;
    si_cmodel **subs;
    si_src **sub_inputs;
    si_port *in_ports, *out_ports;
    si_src *out_src;
    char *label;
    int *out_base;  /* per submodel: the index of its output 0 in last_use */
    int *last_use;  /* per submodel output: the last submodel reading it (n_subs: a model output, -1: none) */
} exec_model;

typedef struct exec_req {
    si_ireq base;
    si_ireq **subs;
    /* base.outs[k]: our copy of model output k when it is not the last submodel's (see own_output) */
    si_tensor *fresh;    /* per output: scratch for copy_outputs */
    bool *xchg;          /* per output: exchanged with its submodel's rather than copied (exchangeable) */
} exec_req;

/* Is model output k a copy of ours (fed by a model input, a constant, or a submodel before the last)? */
static bool own_output(const exec_model *m, int k) {
    return m->out_src[k].kind != SI_SRC_SUB || m->out_src[k].index < m->n_subs - 1;
}


static void exec_model_free(si_cmodel *m_) {
    exec_model *m = (exec_model *)m_;
    if (!m) return;
    for (int s = 0; s < m->n_subs; s++) {
        if (m->subs && m->subs[s]) m->subs[s]->iface->free(m->subs[s]);
        if (m->sub_inputs) si_free(m->sub_inputs[s]);
    }
    si_free(m->subs);
    si_free(m->sub_inputs);
    for (int k = 0; m->out_src && k < m->base.n_outputs; k++)
        if (m->out_src[k].kind == SI_SRC_CONST) si_const_unref(m->out_src[k].constant);
    SI_FREE_ALL(m->out_src, m->label, m->out_base, m->last_use);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

// --- requests -----------------------------------------------------------------------------------------------

static si_result exec_get_output(si_ireq *r_, int k, si_tensor **t) {
    exec_req *r = (exec_req *)r_;
    exec_model *m = (exec_model *)r->base.model;
    si_result s = si_output_index(&m->base, k);
    if (s) return s;
    const si_src *src = &m->out_src[k];
    if (!own_output(m, k)) return r->subs[src->index]->iface->get_output(r->subs[src->index], src->port, t);
    *t = r->base.outs[k];
    return SI_OK;
}

static si_result source_tensor(exec_req *r, const si_src *src, si_tensor **t) {
    exec_model *m = (exec_model *)r->base.model;
    switch (src->kind) {
    case SI_SRC_INPUT:
        *t = r->base.bound[src->index];
        if (!*t) return si_err(SI_ERR_INVALID_ARG, "input '%s' is not set", m->in_ports[src->index].name);
        return SI_OK;
    case SI_SRC_SUB: return r->subs[src->index]->iface->get_output(r->subs[src->index], src->port, t);
    case SI_SRC_CONST: *t = src->constant; return SI_OK;
    case SI_SRC_NONE: break;
    }
    return si_err(SI_ERR_INTERNAL, "bad source kind");
}

/* Model output k is fed by a submodel whose request lets its output buffers be exchanged (si_ireq_i), and no other
 * output of ours reads that one: it takes the submodel's buffer and gives it ours, instead of a copy. The submodel
 * writes its next results into our old buffer, so a failed inference still leaves ours whole. Decided once per
 * request (r->xchg), when its submodels' requests are made. */
static bool exchangeable(const exec_req *r, const exec_model *m, int k) {
    const si_src *s = &m->out_src[k];
    if (!own_output(m, k) || s->kind != SI_SRC_SUB || !r->subs[s->index]->iface->outputs_exchangeable) return false;
    for (int j = 0; j < m->base.n_outputs; j++)
        if (j != k && own_output(m, j) && m->out_src[j].kind == SI_SRC_SUB && m->out_src[j].index == s->index &&
            m->out_src[j].port == s->port)
            return false;
    return true;
}

/* Every submodel succeeded: refresh our copies. Room first (buffers are kept while they fit), so that a failure
 * leaves the previous outputs whole. */
static si_result copy_outputs(exec_req *r) {
    exec_model *m = (exec_model *)r->base.model;
    si_result st = SI_OK;
    si_tensor *src;
    int k = 0;
    for (; k < m->base.n_outputs; k++) {
        memset(&r->fresh[k], 0, sizeof r->fresh[k]);
        if (!own_output(m, k) || r->xchg[k]) continue;
        if ((st = source_tensor(r, &m->out_src[k], &src)) || (st = si_tensor_copy_room(r->base.outs[k], src, &r->fresh[k]))) {
            st = si_err_wrap(st, "output '%s'", m->out_ports[k].name);
            break;
        }
    }
    if (st) {
        for (int j = 0; j < k; j++) si_tensor_release(&r->fresh[j]);
        return st;
    }
    for (k = 0; k < m->base.n_outputs; k++) {
        if (!own_output(m, k) || source_tensor(r, &m->out_src[k], &src)) continue;
        if (r->xchg[k]) si_tensor_exchange(r->base.outs[k], src);
        else si_tensor_copy_into(r->base.outs[k], src, &r->fresh[k]);
    }
    return SI_OK;
}

/* After submodel s has run: the outputs no later submodel reads (those whose last reader was s, and s's own that
 * nothing reads) give their buffers up, where the producing request lets its outputs be exchanged (si_ireq_i: it
 * takes an empty output and allocates at its next inference). A released buffer goes to the blocks the compiled
 * model's budget keeps for reuse (si_budget_keep), so the next submodel's outputs are memory already faulted in:
 * the first inference of a chain of submodels (a folded model's calls: a hidden state or two each) holds the
 * values that are live at once, not one buffer per value. */
static void release_dead(exec_req *r, const exec_model *m, int s) {
    for (int d = 0; d <= s; d++) {
        if (!r->subs[d]->iface->outputs_exchangeable) continue;
        for (int q = 0; q < m->subs[d]->n_outputs; q++) {
            const int last = m->last_use[m->out_base[d] + q];
            si_tensor *o = NULL;
            if ((last == s || (last < 0 && d == s)) && !r->subs[d]->iface->get_output(r->subs[d], q, &o) && o && o->owned)
                si_tensor_release(o);
        }
    }
}

static si_result exec_infer(si_ireq *r_) {
    exec_req *r = (exec_req *)r_;
    exec_model *m = (exec_model *)r->base.model;
    si_result chk = si_ireq_check_inputs(&r->base);
    if (chk) return chk;
    for (int s = 0; s < m->n_subs; s++) {
        si_ireq *sr = r->subs[s];
        for (int p = 0; p < m->subs[s]->n_inputs; p++) {
            si_tensor *t;
            si_result st = source_tensor(r, &m->sub_inputs[s][p], &t);
            if (!st) st = sr->iface->set_input(sr, p, t);
            if (st) return st;
        }
        si_result st = sr->iface->infer(sr);
        if (st) return st; /* the outputs stay the last successful infer's (see the top of the file) */
        release_dead(r, m, s);
    }
    return copy_outputs(r);
}

static void exec_cancel(si_ireq *r_) {
    exec_req *r = (exec_req *)r_;
    exec_model *m = (exec_model *)r->base.model;
    si_ireqs_cancel(r->subs, m->n_subs);
}

static void exec_profile(si_ireq *r_, si_prof *sink) {
    exec_req *r = (exec_req *)r_;
    exec_model *m = (exec_model *)r->base.model;
    si_ireqs_profile(r->subs, m->n_subs, sink);
}

static void exec_req_free(si_ireq *r_) {
    exec_req *r = (exec_req *)r_;
    if (!r) return;
    exec_model *m = (exec_model *)r->base.model;
    for (int s = 0; r->subs && s < m->n_subs; s++)
        if (r->subs[s]) r->subs[s]->iface->free(r->subs[s]);
    SI_FREE_ALL(r->subs, r->fresh, r->xchg);
    si_ireq_destroy(&r->base);
}

static si_result exec_req_init(si_ireq *r_) {
    exec_req *r = (exec_req *)r_;
    const exec_model *m = (const exec_model *)r_->model;
    r->subs = si_calloc((size_t)m->n_subs + 1, sizeof(si_ireq *));
    r->fresh = si_calloc((size_t)m->base.n_outputs + 1, sizeof(si_tensor));
    r->xchg = si_calloc((size_t)m->base.n_outputs + 1, sizeof(bool));
    si_result st = !r->subs || !r->fresh || !r->xchg ? si_err(SI_ERR_NO_MEM, "executor: out of memory creating a request") : SI_OK;
    for (int s = 0; !st && s < m->n_subs; s++) st = m->subs[s]->iface->create_request(m->subs[s], &r->subs[s]);
    for (int k = 0; !st && k < m->base.n_outputs; k++) r->xchg[k] = exchangeable(r, m, k);
    return st;
}

#define EXEC_REQ_IFACE(...)                                                                                        \
    {.set_input = si_ireq_set_input, .get_output = exec_get_output, .infer = exec_infer, .free = exec_req_free,       \
     .cancel = exec_cancel, .profile = exec_profile, .size = sizeof(exec_req), .who = "executor", .init = exec_req_init, \
     __VA_ARGS__}
static const si_ireq_i exec_req_iface = EXEC_REQ_IFACE();
/* An executor whose every output is its own copy (rewritten whole by copy_outputs) or an output of its last submodel
 * whose requests are exchangeable: its own outputs may be exchanged too (control flow takes a branch's results so). */
static const si_ireq_i exec_req_iface_xchg = EXEC_REQ_IFACE(.outputs_exchangeable = true);

/* Every submodel input that reads model input i is bound to t. */
static si_result exec_prepare_input(si_cmodel *m_, int i, const si_tensor *t) {
    exec_model *m = (exec_model *)m_;
    si_result s = SI_OK;
    for (int k = 0; !s && k < m->n_subs; k++)
        for (int p = 0; !s && p < m->subs[k]->n_inputs; p++)
            if (m->sub_inputs[k][p].kind == SI_SRC_INPUT && m->sub_inputs[k][p].index == i)
                s = si_cmodel_prepare_input(m->subs[k], p, t);
    return s;
}

static const si_cmodel_i exec_model_iface = {.create_request = si_ireq_create, .request = &exec_req_iface, .free = exec_model_free,
                                             .prepare_input = exec_prepare_input};
static const si_cmodel_i exec_model_iface_xchg = {.create_request = si_ireq_create, .request = &exec_req_iface_xchg,
                                                  .free = exec_model_free, .prepare_input = exec_prepare_input};

/* Are the outputs of d's executor exchangeable (exec_req_iface_xchg)? Not when an output of the last submodel is two
 * of ours: exchanging one's buffer would change the other. */
static bool desc_exchangeable(const si_exec_desc *d) {
    for (int k = 0; k < d->n_outputs; k++) {
        const si_src *s = &d->out_src[k];
        if (s->kind != SI_SRC_SUB || s->index < d->n_subs - 1) continue; /* our own copy */
        const si_ireq_i *ri = d->subs[s->index]->iface->request;
        if (!ri || !ri->outputs_exchangeable) return false;
        for (int j = 0; j < d->n_outputs; j++)
            if (j != k && d->out_src[j].kind == SI_SRC_SUB && d->out_src[j].index == s->index && d->out_src[j].port == s->port) return false;
    }
    return true;
}


si_result si_exec_create(const si_exec_desc *d, si_cmodel **out) {
    *out = NULL;
    exec_model *m = si_calloc(1, sizeof *m);
    if (!m) {
        for (int s = 0; s < d->n_subs; s++) d->subs[s]->iface->free(d->subs[s]);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->base.iface = desc_exchangeable(d) ? &exec_model_iface_xchg : &exec_model_iface;
    m->n_subs = d->n_subs;
    m->subs = si_calloc((size_t)d->n_subs + 1, sizeof(si_cmodel *));
    if (m->subs) memcpy(m->subs, d->subs, sizeof(si_cmodel *) * (size_t)d->n_subs);
    else
        for (int s = 0; s < d->n_subs; s++) d->subs[s]->iface->free(d->subs[s]);
    m->base.n_inputs = d->n_inputs;
    m->base.n_outputs = d->n_outputs;
    m->sub_inputs = si_calloc((size_t)d->n_subs + 1, sizeof(si_src *));
    m->in_ports = si_ports_copy(d->inputs, d->n_inputs);
    m->out_ports = si_ports_copy(d->outputs, d->n_outputs);
    m->out_src = si_calloc((size_t)d->n_outputs + 1, sizeof(si_src));
    m->label = si_strdup(d->label ? d->label : "");
    bool ok = m->subs && m->sub_inputs && m->in_ports && m->out_ports && m->out_src && m->label;
    for (int s = 0; ok && s < d->n_subs; s++) {
        int n = d->subs[s]->n_inputs;
        if (!(m->sub_inputs[s] = si_calloc((size_t)n + 1, sizeof(si_src)))) ok = false;
        else memcpy(m->sub_inputs[s], d->sub_inputs[s], sizeof(si_src) * (size_t)n);
    }
    for (int k = 0; ok && k < d->n_outputs; k++) {
        m->out_src[k] = d->out_src[k];
        if (d->out_src[k].kind == SI_SRC_CONST) si_const_ref(d->out_src[k].constant);
    }
    int n_outs = 0;
    if (ok && !(m->out_base = si_calloc((size_t)d->n_subs + 1, sizeof(int)))) ok = false;
    for (int s = 0; ok && s < d->n_subs; s++) m->out_base[s] = n_outs, n_outs += d->subs[s]->n_outputs;
    if (ok && !(m->last_use = si_malloc(sizeof(int) * (size_t)(n_outs + 1)))) ok = false;
    for (int i = 0; ok && i < n_outs; i++) m->last_use[i] = -1;
    for (int s = 0; ok && s < d->n_subs; s++)
        for (int p = 0; p < d->subs[s]->n_inputs; p++) {
            const si_src *src = &d->sub_inputs[s][p];
            if (src->kind == SI_SRC_SUB) m->last_use[m->out_base[src->index] + src->port] = SI_MAX(m->last_use[m->out_base[src->index] + src->port], s);
        }
    for (int k = 0; ok && k < d->n_outputs; k++)
        if (d->out_src[k].kind == SI_SRC_SUB) m->last_use[m->out_base[d->out_src[k].index] + d->out_src[k].port] = d->n_subs;
    if (!ok) {
        if (m->out_src) /* constants not referenced yet must not be released */
            for (int k = 0; k < d->n_outputs; k++) m->out_src[k].kind = SI_SRC_INPUT;
        exec_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->base.inputs = m->in_ports;
    m->base.outputs = m->out_ports;
    m->base.device = m->label;
    *out = &m->base;
    return SI_OK;
}
