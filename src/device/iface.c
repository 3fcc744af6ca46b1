/*
 * iface.c — helpers of the compiled-model and request interfaces, shared by devices, the fail-safe layer and
 * the executor core. No device lives here (the executor core's tests link this file without any device).
 */
#include "device/iface.h"

#include <stdio.h>
#include <string.h>


si_result si_port_check(const si_port *p, const si_tensor *t) {
    char want[256], got[256];
    /* an undefined type is one not known at compile time (a value after an op inferred only at run time) */
    bool ok = (t->dtype == p->dtype || p->dtype == SI_DTYPE_UNDEFINED) && (p->ndim < 0 || p->ndim == t->ndim);
    for (int i = 0; ok && p->ndim >= 0 && i < p->ndim; i++)
        if (p->dims[i] >= 0 && p->dims[i] != t->dims[i]) ok = false;
    if (ok) return SI_OK;
    if (p->ndim >= 0) {
        size_t o = (size_t)snprintf(want, sizeof want, "%s[", si_dtype_name(p->dtype));
        for (int i = 0; i < p->ndim && o < sizeof want; i++)
            o += p->dims[i] >= 0 ? (size_t)snprintf(want + o, sizeof want - o, i ? ",%lld" : "%lld", (long long)p->dims[i])
                                 : (size_t)snprintf(want + o, sizeof want - o, i ? ",?" : "?");
        if (o < sizeof want) snprintf(want + o, sizeof want - o, "]");
    } else {
        snprintf(want, sizeof want, "%s of any shape", si_dtype_name(p->dtype));
    }
    return si_err(SI_ERR_INVALID_ARG, "input '%s': expected %s, got %s", p->name, want,
                  si_shape_str(got, sizeof got, t->dtype, t->ndim, t->dims));
}

si_result si_cmodel_prepare_input(si_cmodel *m, int i, const si_tensor *t) {
    if (i < 0 || i >= m->n_inputs) return si_err(SI_ERR_INVALID_ARG, "input index %d out of range (model has %d)", i, m->n_inputs);
    return m->iface->prepare_input ? m->iface->prepare_input(m, i, t) : SI_OK;
}

si_result si_bind_input(const si_cmodel *m, int i, si_tensor *t, si_tensor **slots) {
    if (i < 0 || i >= m->n_inputs) return si_err(SI_ERR_INVALID_ARG, "input index %d out of range (model has %d)", i, m->n_inputs);
    if (t) {
        si_result s = si_port_check(&m->inputs[i], t);
        if (s) return s;
    }
    slots[i] = t;
    return SI_OK;
}

si_result si_output_index(const si_cmodel *m, int k) {
    if (k < 0 || k >= m->n_outputs) return si_err(SI_ERR_INVALID_ARG, "output index %d out of range (model has %d)", k, m->n_outputs);
    return SI_OK;
}

si_port *si_ports_copy(const si_port *p, int n) {
    si_port *d = si_calloc((size_t)n + 1, sizeof(si_port));
    for (int i = 0; d && i < n; i++) {
        d[i] = p[i];
        if (!(d[i].name = si_strdup(p[i].name))) {
            si_ports_free(d, i);
            return NULL;
        }
    }
    return d;
}

void si_ports_free(si_port *p, int n) {
    for (int i = 0; p && i < n; i++) si_free((char *)p[i].name);
    si_free(p);
}

void si_cmodel_destroy(si_cmodel *m, si_port *in_ports, si_port *out_ports) {
    si_ports_free(in_ports, m->n_inputs);
    si_ports_free(out_ports, m->n_outputs);
    si_free(m);
}

si_result si_check_bound(const si_cmodel *m, si_tensor *const *bound) {
    for (int i = 0; i < m->n_inputs; i++) {
        if (!bound[i]) return si_err(SI_ERR_INVALID_ARG, "input '%s' is not set", m->inputs[i].name);
        si_result s = si_port_check(&m->inputs[i], bound[i]);
        if (s) return s;
        if (bound[i]->nbytes && !bound[i]->data) return si_err(SI_ERR_INVALID_ARG, "input '%s' has no data", m->inputs[i].name);
    }
    return SI_OK;
}

si_result si_ireq_init(si_ireq *r, const si_ireq_i *iface, si_cmodel *m, const char *who) {
    r->iface = iface;
    r->model = m;
    r->bound = si_calloc((size_t)m->n_inputs + 1, sizeof(si_tensor *));
    r->outs = si_calloc((size_t)m->n_outputs + 1, sizeof(si_tensor *));
    bool ok = r->bound && r->outs;
    for (int k = 0; ok && k < m->n_outputs; k++) {
        if (!(r->outs[k] = si_calloc(1, sizeof(si_tensor)))) ok = false;
        else r->outs[k]->dtype = m->outputs[k].dtype;
    }
    if (ok) return SI_OK;
    si_ireq_fini(r);
    return si_err(SI_ERR_NO_MEM, "%s: out of memory creating a request", who);
}

void si_ireq_fini(si_ireq *r) {
    if (r->outs && r->model)
        for (int k = 0; k < r->model->n_outputs; k++) si_tensor_free(r->outs[k]);
    SI_FREE_CLEAR(r->outs);
    SI_FREE_CLEAR(r->bound);
}

static si_result ireq_new(size_t size, const si_ireq_i *iface, si_cmodel *m, const char *who, si_ireq **out) {
    si_ireq *r = *out = si_calloc(1, size);
    if (!r) return si_err(SI_ERR_NO_MEM, "%s: out of memory creating a request", who);
    si_result s = si_ireq_init(r, iface, m, who);
    if (s) {
        si_free(r);
        *out = NULL;
    }
    return s;
}

/* The end of a create_request begun by ireq_new: when s is not SI_OK, the request *out is freed through its
 * interface and *out = NULL. Returns s, its message kept. */
static si_result ireq_done(si_ireq **out, si_result s) {
    if (!s || !*out) return s;
    si_error e;
    si_error_save(&e, s); /* what the free does must not change the message */
    (*out)->iface->free(*out);
    *out = NULL;
    return si_error_restore(&e);
}

si_result si_ireq_create(si_cmodel *m, si_ireq **out) {
    const si_ireq_i *iface = m->iface->request;
    si_result s = ireq_new(iface->size, iface, m, iface->who, out);
    if (s || !iface->init) return s;
    return ireq_done(out, iface->init(*out));
}

void si_ireq_destroy(si_ireq *r) {
    si_ireq_fini(r);
    si_free(r);
}

si_result si_ireq_set_input(si_ireq *r, int i, si_tensor *t) { return si_bind_input(r->model, i, t, r->bound); }

si_result si_ireq_get_output(si_ireq *r, int i, si_tensor **t) {
    si_result s = si_output_index(r->model, i);
    if (!s) *t = r->outs[i];
    return s;
}

void si_ireq_cancel(si_ireq *r) {
    if (r && r->iface->cancel) r->iface->cancel(r);
}

void si_ireq_profile(si_ireq *r, si_prof *sink) {
    if (r && r->iface->profile) r->iface->profile(r, sink);
}

void si_ireqs_cancel(si_ireq *const *rs, int n) {
    for (int i = 0; rs && i < n; i++) si_ireq_cancel(rs[i]);
}

void si_ireqs_profile(si_ireq *const *rs, int n, si_prof *sink) {
    for (int i = 0; rs && i < n; i++) si_ireq_profile(rs[i], sink);
}

si_result si_ireq_check_inputs(const si_ireq *r) { return si_check_bound(r->model, r->bound); }

void si_ireq_publish(si_ireq *r, int k, si_tensor *fresh) {
    si_tensor_release(r->outs[k]);
    *r->outs[k] = *fresh;
    memset(fresh, 0, sizeof *fresh);
}

si_result si_ireq_shape_output(si_ireq *r, int k, si_dtype dt, int ndim, const int64_t *dims) {
    return si_tensor_reshape(r->outs[k], dt, ndim, dims);
}
