/*
 * request.c — the public request functions: thin wrappers over the compiled model's request interface that
 * count inferences for the report.
 */
#include "api/compiled.h"

struct si_request {
    si_ireq *r;
    si_compiled *c;
};

si_result si_request_create(si_compiled *c, si_request **out) {
    if (!c || !out) return si_err(SI_ERR_INVALID_ARG, "si_request_create: compiled model or out is NULL");
    *out = NULL;
    si_request *rq = si_calloc(1, sizeof *rq);
    if (!rq) return si_err(SI_ERR_NO_MEM, "out of memory");
    rq->c = c;
    si_budget *prev = si_budget_enter(&c->budget); /* the request's buffers count against max_memory_mb */
    si_result s = c->cm->iface->create_request(c->cm, &rq->r);
    si_budget_leave(prev);
    if (s) { si_free(rq); return s; }
    *out = rq;
    return SI_OK;
}

void si_request_free(si_request *r) {
    if (!r) return;
    r->r->iface->free(r->r);
    si_free(r);
}

si_result si_request_set_input(si_request *r, int index, si_tensor *t) {
    if (!r || !t) return si_err(SI_ERR_INVALID_ARG, "si_request_set_input: request or tensor is NULL");
    return r->r->iface->set_input(r->r, index, t);
}

si_result si_request_infer(si_request *r) {
    if (!r) return si_err(SI_ERR_INVALID_ARG, "si_request_infer: request is NULL");
    atomic_fetch_add(&r->c->sink->inferences, 1);
    si_budget *prev = si_budget_enter(&r->c->budget); /* run-time buffers count against max_memory_mb too */
    si_result s = r->r->iface->infer(r->r);
    if (r->c->prof && r->r->iface->profile) r->r->iface->profile(r->r, r->c->prof);
    si_budget_leave(prev);
    return s;
}

si_result si_request_get_output(si_request *r, int index, si_tensor **out) {
    if (!r || !out) return si_err(SI_ERR_INVALID_ARG, "si_request_get_output: request or out is NULL");
    return r->r->iface->get_output(r->r, index, out);
}

