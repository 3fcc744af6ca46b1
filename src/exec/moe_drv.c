/*
 * moe_drv.c — the sparse MoE driver (moe_drv.h): routing on the host, one auxiliary request per expert. Written
 * only against the compiled-model and request interfaces; float32.
 */
#include "exec/moe_drv.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic int64_t expert_runs;
int64_t si_moe_expert_runs(void) { return atomic_load(&expert_runs); }

typedef struct moe_model {
    si_cmodel base;
    si_cmodel *plain;
    si_cmodel **experts;
    int E;
    int x_in, router_in;
    int64_t k;
    bool normalize;
    si_port *in_ports, *out_ports;
    char label[128];
    void *owned;
    void (*owned_free)(void *);
} moe_model;

typedef struct moe_req {
    si_ireq base;
    si_ireq *plain;
    si_ireq **experts;
    si_tensor xe;          /* the rows of one expert */
    int64_t *sel;          /* [T, k] chosen experts */
    float *w;              /* [T, k] their weights */
    int64_t *rows;         /* tokens of one expert */
    int64_t cap_t;
} moe_req;

static void free_models(si_cmodel *plain, si_cmodel **ex, int n) {
    if (plain) plain->iface->free(plain);
    for (int e = 0; ex && e < n; e++)
        if (ex[e]) ex[e]->iface->free(ex[e]);
}

static void moe_model_free(si_cmodel *m_) {
    moe_model *m = (moe_model *)m_;
    free_models(m->plain, m->experts, m->E);
    si_free(m->experts);
    if (m->owned_free) m->owned_free(m->owned);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

static void moe_req_free(si_ireq *r_) {
    moe_req *r = (moe_req *)r_;
    const moe_model *m = (const moe_model *)r_->model;
    if (r->plain) r->plain->iface->free(r->plain);
    for (int e = 0; r->experts && e < m->E; e++)
        if (r->experts[e]) r->experts[e]->iface->free(r->experts[e]);
    si_free(r->experts);
    si_tensor_release(&r->xe);
    SI_FREE_ALL(r->sel, r->w, r->rows);
    si_ireq_destroy(r_);
}

static si_result aux_fail(si_result s, const moe_model *m, const char *which, int e) {
    if (e >= 0) return si_err_wrap(s, "%s: expert %d model", m->label, e);
    return si_err_wrap(s, "%s: %s model", m->label, which);
}

static si_result run_plain(moe_req *r, const moe_model *m) {
    si_result s = SI_OK;
    for (int i = 0; !s && i < m->base.n_inputs; i++) s = r->plain->iface->set_input(r->plain, i, r->base.bound[i]);
    if (s || (s = r->plain->iface->infer(r->plain))) return aux_fail(s, m, "plain MoE", -1);
    si_tensor *o = NULL;
    if ((s = r->plain->iface->get_output(r->plain, 0, &o))) return aux_fail(s, m, "plain MoE", -1);
    if (!(s = si_ireq_shape_output(&r->base, 0, o->dtype, o->ndim, o->dims)) && o->nbytes) memcpy(r->base.outs[0]->data, o->data, o->nbytes);
    return s;
}

/* Softmax over the E logits of each token, the top k (ties: the lower expert first), renormalised when asked. */
static void route(const moe_model *m, const float *lg, int64_t T, int64_t *sel, float *w) {
    const int64_t E = m->E, k = m->k;
    for (int64_t t = 0; t < T; t++) {
        const float *l = lg + t * E;
        float mx = -INFINITY;
        for (int64_t e = 0; e < E; e++) mx = l[e] > mx ? l[e] : mx;
        double sum = 0;
        for (int64_t e = 0; e < E; e++) sum += expf(l[e] - mx);
        double wsum = 0;
#define PROB(e) ((float)((double)expf(l[e] - mx) / sum))
        for (int64_t i = 0; i < k; i++) {
            int64_t best = -1;
            for (int64_t e = 0; e < E; e++) {
                bool taken = false;
                for (int64_t j = 0; j < i; j++) taken |= sel[t * k + j] == e;
                if (!taken && (best < 0 || PROB(e) > PROB(best))) best = e;
            }
            sel[t * k + i] = best;
            w[t * k + i] = PROB(best);
            wsum += w[t * k + i];
        }
#undef PROB
        if (m->normalize)
            for (int64_t i = 0; i < k; i++) w[t * k + i] = (float)(w[t * k + i] / wsum);
    }
}

static si_result moe_infer(si_ireq *r_) {
    moe_req *r = (moe_req *)r_;
    const moe_model *m = (const moe_model *)r_->model;
    si_result s = si_ireq_check_inputs(r_);
    if (s) return s;
    const si_tensor *x = r_->bound[m->x_in], *rl = r_->bound[m->router_in];
    if (x->dtype != SI_F32 || rl->dtype != SI_F32 || x->ndim < 2 || rl->ndim != 2) return run_plain(r, m);
    const int64_t H = x->dims[x->ndim - 1], T = si_shape_count(x->ndim - 1, x->dims), E = m->E, k = m->k;
    if (rl->dims[0] != T || rl->dims[1] != E || T < 1) return run_plain(r, m);
    if (T > r->cap_t) {
        si_free(r->sel), si_free(r->w), si_free(r->rows);
        r->sel = si_malloc(sizeof(int64_t) * (size_t)(T * k));
        r->w = si_malloc(sizeof(float) * (size_t)(T * k));
        r->rows = si_malloc(sizeof(int64_t) * (size_t)T);
        r->cap_t = r->sel && r->w && r->rows ? T : 0;
        if (!r->cap_t) return si_err(SI_ERR_NO_MEM, "%s: out of memory routing %lld tokens", m->label, (long long)T);
    }
    route(m, rl->data, T, r->sel, r->w);
    if ((s = si_ireq_shape_output(r_, 0, SI_F32, x->ndim, x->dims))) return s;
    float *out = r_->outs[0]->data;
    memset(out, 0, sizeof(float) * (size_t)(T * H));
    const float *xd = x->data;
    for (int e = 0; e < E; e++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < k; i++)
                if (r->sel[t * k + i] == e) r->rows[n++] = t * k + i; /* the token's slot: row t, weight w[t k + i] */
        if (!n) continue;
        int64_t np = 1;
        while (np < n) np *= 2;
        const int64_t xd2[2] = {np, H};
        if (!(r->xe.data && r->xe.nbytes == (size_t)(np * H) * sizeof(float))) {
            si_tensor_release(&r->xe);
            if ((s = si_tensor_init(&r->xe, SI_F32, 2, xd2)) || (s = si_tensor_alloc(&r->xe))) return s;
        }
        float *xb = r->xe.data;
        for (int64_t j = 0; j < n; j++) memcpy(xb + j * H, xd + (r->rows[j] / k) * H, sizeof(float) * (size_t)H);
        memset(xb + n * H, 0, sizeof(float) * (size_t)((np - n) * H));
        si_ireq *q = r->experts[e];
        si_tensor *y = NULL;
        if ((s = q->iface->set_input(q, 0, &r->xe)) || (s = q->iface->infer(q)) || (s = q->iface->get_output(q, 0, &y)))
            return aux_fail(s, m, NULL, e);
        atomic_fetch_add(&expert_runs, 1);
        if (y->dtype != SI_F32 || y->nbytes != r->xe.nbytes)
            return si_err(SI_ERR_DEVICE, "%s: expert %d's output has %zu bytes, not %zu", m->label, e, y->nbytes, r->xe.nbytes);
        const float *yd = y->data;
        for (int64_t j = 0; j < n; j++) {
            const int64_t t = r->rows[j] / k;
            const float wt = r->w[r->rows[j]];
            float *o = out + t * H;
            for (int64_t c = 0; c < H; c++) o[c] += wt * yd[j * H + c];
        }
    }
    return SI_OK;
}

static void moe_cancel(si_ireq *r_) {
    moe_req *r = (moe_req *)r_;
    const moe_model *m = (const moe_model *)r_->model;
    si_ireq_cancel(r->plain);
    si_ireqs_cancel(r->experts, m->E);
}

static void moe_profile(si_ireq *r_, si_prof *sink) {
    moe_req *r = (moe_req *)r_;
    const moe_model *m = (const moe_model *)r_->model;
    si_ireq_profile(r->plain, sink);
    si_ireqs_profile(r->experts, m->E, sink);
}

static si_result moe_req_init(si_ireq *r_) {
    moe_req *r = (moe_req *)r_;
    const moe_model *m = (const moe_model *)r_->model;
    si_result s = SI_OK;
    if (!(r->experts = si_calloc((size_t)m->E + 1, sizeof(si_ireq *)))) s = si_err(SI_ERR_NO_MEM, "out of memory");
    else if ((s = m->plain->iface->create_request(m->plain, &r->plain))) s = aux_fail(s, m, "plain MoE", -1);
    for (int e = 0; !s && e < m->E; e++)
        if ((s = m->experts[e]->iface->create_request(m->experts[e], &r->experts[e]))) s = aux_fail(s, m, NULL, e);
    return s;
}

static const si_ireq_i moe_req_iface = SI_IREQ_IFACE_OF(moe, "MoE request");

static const si_cmodel_i moe_iface = {.create_request = si_ireq_create, .request = &moe_req_iface, .free = moe_model_free};

si_result si_moe_create(const si_moe_desc *d, si_cmodel **out) {
    *out = NULL;
    si_result s = SI_OK;
    bool ok = d->plain && d->experts && d->n_experts > 0 && d->k >= 1 && d->k <= d->n_experts && d->plain->n_outputs == 1 &&
              d->x_in >= 0 && d->x_in < d->plain->n_inputs && d->router_in >= 0 && d->router_in < d->plain->n_inputs;
    for (int e = 0; ok && e < d->n_experts; e++) ok = d->experts[e] && d->experts[e]->n_inputs == 1 && d->experts[e]->n_outputs == 1;
    moe_model *m = NULL;
    if (!ok) s = si_err(SI_ERR_INVALID_ARG, "MoE: bad descriptor");
    else if (!(m = si_calloc(1, sizeof *m)) || !(m->experts = si_calloc((size_t)d->n_experts, sizeof(si_cmodel *)))) s = si_err(SI_ERR_NO_MEM, "out of memory");
    if (s) {
        if (m) si_free(m);
        free_models(d->plain, d->experts, d->n_experts);
        if (d->owned_free) d->owned_free(d->owned);
        return s;
    }
    m->base = (si_cmodel){.iface = &moe_iface, .n_inputs = d->plain->n_inputs, .n_outputs = 1, .device = d->plain->device};
    m->plain = d->plain;
    memcpy(m->experts, d->experts, sizeof(si_cmodel *) * (size_t)d->n_experts);
    m->E = d->n_experts, m->x_in = d->x_in, m->router_in = d->router_in, m->k = d->k, m->normalize = d->normalize;
    m->owned = d->owned, m->owned_free = d->owned_free;
    snprintf(m->label, sizeof m->label, "%s", d->label ? d->label : "MoE");
    m->in_ports = si_ports_copy(d->plain->inputs, d->plain->n_inputs);
    m->out_ports = si_ports_copy(d->plain->outputs, 1);
    if (!m->in_ports || !m->out_ports) {
        moe_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->base.inputs = m->in_ports, m->base.outputs = m->out_ports;
    *out = &m->base;
    return SI_OK;
}
