/*
 * hfa.c — host flash attention (hfa.h): the tile loop over auxiliary compiled models. Written only against the
 * compiled-model and request interfaces; float32 only (the caller builds it for float32 attentions).
 *
 * One request holds one request of each auxiliary model (made when the request is made) and its own tile and
 * state buffers (made at the first inference, kept while the shapes stay). A failed auxiliary inference ends the
 * inference with that status; the fail-safe layer above decides what happens next.
 */
#include "exec/hfa.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic int64_t tile_runs;
int64_t si_hfa_tile_runs(void) { return atomic_load(&tile_runs); }

enum { T_Q, T_K, T_V, T_MASK, T_ACC, T_M, T_L, T_NIN };

typedef struct hfa_model {
    si_cmodel base;
    si_cmodel *plain, *tile, *final;
    si_port *in_ports, *out_ports;
    int q_in, k_in, v_in, mask_in;
    si_tensor *mask_const;
    int k_axis;
    bool causal, mask_short;
    int64_t tile_n;
    char label[128];
    void *owned;
    void (*owned_free)(void *);
} hfa_model;

typedef struct hfa_req {
    si_ireq base;
    si_ireq *plain, *tile, *final;
    si_tensor kt, vt, mt, acc, m, l; /* host buffers: tiles and the running state */
} hfa_req;

static void hfa_model_free(si_cmodel *m_) {
    hfa_model *m = (hfa_model *)m_;
    if (m->plain) m->plain->iface->free(m->plain);
    if (m->tile) m->tile->iface->free(m->tile);
    if (m->final) m->final->iface->free(m->final);
    if (m->mask_const) si_const_unref(m->mask_const);
    if (m->owned_free) m->owned_free(m->owned);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

static void hfa_req_free(si_ireq *r_) {
    hfa_req *r = (hfa_req *)r_;
    if (r->plain) r->plain->iface->free(r->plain);
    if (r->tile) r->tile->iface->free(r->tile);
    if (r->final) r->final->iface->free(r->final);
    si_tensor_release(&r->kt);
    si_tensor_release(&r->vt);
    si_tensor_release(&r->mt);
    si_tensor_release(&r->acc);
    si_tensor_release(&r->m);
    si_tensor_release(&r->l);
    si_ireq_destroy(r_);
}

/* t holds float32 of this shape (its storage kept when the byte size is the same). */
static si_result shape_buf(si_tensor *t, int nd, const int64_t *dims) {
    int64_t n = si_shape_count(nd, dims);
    if (t->data && t->owned && t->dtype == SI_F32 && (int64_t)t->nbytes == n * (int64_t)sizeof(float)) {
        t->ndim = nd;
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)nd);
        return SI_OK;
    }
    si_tensor_release(t);
    si_result s = si_tensor_init(t, SI_F32, nd, dims);
    return s ? s : si_tensor_alloc(t);
}

/* Copy keys [t0, t0 + T) of src along axis ax into dst (zero past the end). */
static void slice_keys(si_tensor *dst, const si_tensor *src, int ax, int64_t t0, int64_t T) {
    const int64_t len = src->dims[ax], outer = si_shape_count(ax, src->dims), inner = si_shape_count(src->ndim - ax - 1, src->dims + ax + 1);
    const int64_t have = SI_MAX(0, SI_MIN(T, len - t0));
    const float *s = src->data;
    float *d = dst->data;
    for (int64_t o = 0; o < outer; o++) {
        float *dd = d + o * T * inner;
        if (have > 0) memcpy(dd, s + (o * len + t0) * inner, sizeof(float) * (size_t)(have * inner));
        if (have < T) memset(dd + have * inner, 0, sizeof(float) * (size_t)((T - have) * inner));
    }
}

/* The mask tile [mask's dims aligned to rank r (rows Sq when causal), T]: the mask's columns t0.. (bool: 0 or
 * -inf; a last dimension of 1 broadcasts unless mask_short; columns past it -inf), -inf where causal masks, -inf
 * past the keys. */
static si_result make_mask(hfa_req *r, const hfa_model *m, const si_tensor *mk, int rank, int64_t Sq, int64_t Skv, int64_t t0) {
    const int64_t T = m->tile_n;
    int64_t md[SI_MAX_DIMS];
    for (int i = 0; i < rank; i++) md[i] = 1;
    if (mk)
        for (int i = 0; i < mk->ndim; i++) md[rank - mk->ndim + i] = mk->dims[i];
    const int64_t mcols = mk ? md[rank - 1] : 1, mrows = mk ? md[rank - 2] : 1;
    if (m->causal) md[rank - 2] = Sq;
    md[rank - 1] = T;
    si_result s = shape_buf(&r->mt, rank, md);
    if (s) return s;
    const int64_t rows = md[rank - 2], outer = si_shape_count(rank - 2, md);
    float *d = r->mt.data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < rows; i++) {
            float *row = d + (o * rows + i) * T;
            const int64_t mi = mrows == 1 ? 0 : i;
            for (int64_t j = 0; j < T; j++) {
                const int64_t col = t0 + j;
                float v = 0.0f;
                if (col >= Skv || (m->causal && col > i)) v = -INFINITY;
                else if (mk) {
                    const int64_t mc = mcols == 1 && !m->mask_short ? 0 : col;
                    if (mc >= mcols) v = -INFINITY;
                    else {
                        const int64_t at = (o * mrows + mi) * mcols + mc;
                        if (mk->dtype == SI_BOOL) v = ((const uint8_t *)mk->data)[at] ? 0.0f : -INFINITY;
                        else v = ((const float *)mk->data)[at];
                    }
                }
                row[j] = v;
            }
        }
    return SI_OK;
}

/* out k of r (shape of src) := src's contents. */
static si_result copy_out(hfa_req *r, int k, const si_tensor *src) {
    si_result s = si_ireq_shape_output(&r->base, k, src->dtype, src->ndim, src->dims);
    if (!s && src->nbytes) memcpy(r->base.outs[k]->data, src->data, src->nbytes);
    return s;
}

static si_result aux_fail(si_result s, const hfa_model *m, const char *which) {
    return si_err_wrap(s, "%s: %s model", m->label, which);
}

static si_result run_plain(hfa_req *r, const hfa_model *m) {
    si_result s = SI_OK;
    for (int i = 0; !s && i < m->base.n_inputs; i++) s = r->plain->iface->set_input(r->plain, i, r->base.bound[i]);
    if (s || (s = r->plain->iface->infer(r->plain))) return aux_fail(s, m, "plain attention");
    for (int k = 0; !s && k < m->base.n_outputs; k++) {
        si_tensor *o = NULL;
        if (!(s = r->plain->iface->get_output(r->plain, k, &o))) s = copy_out(r, k, o);
    }
    return s;
}

/* Can the loop take these shapes? Q [..., Sq, D], K [..., Skv, D] (or K^T [..., D, Skv]), V [..., Skv, Dv], all
 * of one rank with the same leading dimensions; a mask of at most that rank whose leading dimensions are 1 or
 * theirs. */
static bool loop_takes(const hfa_model *m, const si_tensor *q, const si_tensor *k, const si_tensor *v, const si_tensor *mk) {
    const int r = q->ndim;
    if (r < 2 || k->ndim != r || v->ndim != r || q->dtype != SI_F32 || k->dtype != SI_F32 || v->dtype != SI_F32) return false;
    for (int i = 0; i < r - 2; i++)
        if (k->dims[i] != q->dims[i] || v->dims[i] != q->dims[i]) return false;
    if (mk) {
        if (mk->ndim > r || (mk->dtype != SI_F32 && mk->dtype != SI_BOOL)) return false;
        for (int i = 0; i < mk->ndim - 2; i++) {
            int64_t want = q->dims[r - mk->ndim + i];
            if (mk->dims[i] != 1 && mk->dims[i] != want) return false;
        }
        if (mk->ndim >= 2 && mk->dims[mk->ndim - 2] != 1 && mk->dims[mk->ndim - 2] != q->dims[r - 2]) return false;
        if (mk->ndim >= 1 && mk->dims[mk->ndim - 1] > k->dims[m->k_axis]) return false; /* the plain model names it */
    }
    return true;
}

static si_result hfa_infer(si_ireq *r_) {
    hfa_req *r = (hfa_req *)r_;
    const hfa_model *m = (const hfa_model *)r_->model;
    si_result s = si_ireq_check_inputs(r_);
    if (s) return s;
    const si_tensor *q = r_->bound[m->q_in], *k = r_->bound[m->k_in], *v = r_->bound[m->v_in];
    const si_tensor *mk = m->mask_in >= 0 ? r_->bound[m->mask_in] : m->mask_const;
    const int rank = q->ndim;
    if (k->ndim != rank || m->k_axis >= rank) return run_plain(r, m);
    const int64_t Skv = k->dims[m->k_axis], T = m->tile_n;
    if (Skv <= T || !loop_takes(m, q, k, v, mk) || v->dims[rank - 2] != Skv) return run_plain(r, m);
    const int64_t Sq = q->dims[rank - 2], Dv = v->dims[rank - 1];
    int64_t kd[SI_MAX_DIMS], vd[SI_MAX_DIMS], od[SI_MAX_DIMS];
    memcpy(kd, k->dims, sizeof(int64_t) * (size_t)rank);
    memcpy(vd, v->dims, sizeof(int64_t) * (size_t)rank);
    memcpy(od, q->dims, sizeof(int64_t) * (size_t)rank);
    kd[m->k_axis] = T;
    vd[rank - 2] = T;
    od[rank - 1] = Dv;
    /* the state: [1, rows, Dv] and [1, rows, 1], rows = every query of every leading dimension */
    const int64_t rows = si_shape_count(rank - 1, q->dims);
    if ((s = shape_buf(&r->kt, rank, kd)) || (s = shape_buf(&r->vt, rank, vd)) || (s = shape_buf(&r->acc, 3, (int64_t[]){1, rows, Dv})) ||
        (s = shape_buf(&r->m, 3, (int64_t[]){1, rows, 1})) || (s = shape_buf(&r->l, 3, (int64_t[]){1, rows, 1})))
        return s;
    memset(r->acc.data, 0, r->acc.nbytes);
    memset(r->l.data, 0, r->l.nbytes);
    float *mx = r->m.data;
    for (int64_t i = 0; i < rows; i++) mx[i] = -FLT_MAX; /* finite: exp(m - m') stays 0, not NaN */
    si_ireq *t = r->tile;
    si_tensor *bind[T_NIN] = {(si_tensor *)q, &r->kt, &r->vt, &r->mt, &r->acc, &r->m, &r->l};
    for (int64_t t0 = 0; t0 < Skv; t0 += T) {
        slice_keys(&r->kt, k, m->k_axis, t0, T);
        slice_keys(&r->vt, v, rank - 2, t0, T);
        if ((s = make_mask(r, m, mk, rank, Sq, Skv, t0))) return s;
        for (int i = 0; !s && i < T_NIN; i++) s = t->iface->set_input(t, i, bind[i]);
        if (s || (s = t->iface->infer(t))) return aux_fail(s, m, "tile");
        atomic_fetch_add(&tile_runs, 1);
        si_tensor *o[3] = {NULL, NULL, NULL};
        for (int i = 0; !s && i < 3; i++) s = t->iface->get_output(t, i, &o[i]);
        if (s) return aux_fail(s, m, "tile");
        si_tensor *st[3] = {&r->acc, &r->m, &r->l};
        for (int i = 0; i < 3; i++) {
            if (o[i]->nbytes != st[i]->nbytes || o[i]->dtype != SI_F32)
                return si_err(SI_ERR_DEVICE, "%s: the tile model's output %d has %zu bytes, not %zu", m->label, i, o[i]->nbytes, st[i]->nbytes);
            memcpy(st[i]->data, o[i]->data, st[i]->nbytes);
        }
    }
    si_ireq *f = r->final;
    if ((s = f->iface->set_input(f, 0, &r->acc)) || (s = f->iface->set_input(f, 1, &r->l)) || (s = f->iface->infer(f)))
        return aux_fail(s, m, "final");
    si_tensor *o = NULL;
    if ((s = f->iface->get_output(f, 0, &o))) return aux_fail(s, m, "final");
    if (o->dtype != SI_F32 || (int64_t)o->nbytes != rows * Dv * (int64_t)sizeof(float))
        return si_err(SI_ERR_DEVICE, "%s: the final model's output has %zu bytes, not %lld", m->label, o->nbytes, (long long)(rows * Dv * 4));
    if ((s = si_ireq_shape_output(r_, 0, SI_F32, rank, od))) return s;
    memcpy(r_->outs[0]->data, o->data, o->nbytes);
    return SI_OK;
}

static void hfa_cancel(si_ireq *r_) {
    hfa_req *r = (hfa_req *)r_;
    si_ireqs_cancel((si_ireq *[3]){r->plain, r->tile, r->final}, 3);
}

static void hfa_profile(si_ireq *r_, si_prof *sink) {
    hfa_req *r = (hfa_req *)r_;
    si_ireqs_profile((si_ireq *[3]){r->plain, r->tile, r->final}, 3, sink);
}

static si_result hfa_req_init(si_ireq *r_) {
    hfa_req *r = (hfa_req *)r_;
    const hfa_model *m = (const hfa_model *)r_->model;
    si_result s;
    if ((s = m->plain->iface->create_request(m->plain, &r->plain))) s = aux_fail(s, m, "plain attention");
    else if ((s = m->tile->iface->create_request(m->tile, &r->tile))) s = aux_fail(s, m, "tile");
    else if ((s = m->final->iface->create_request(m->final, &r->final))) s = aux_fail(s, m, "final");
    return s;
}

static const si_ireq_i hfa_req_iface = SI_IREQ_IFACE_OF(hfa, "flash attention request");

static const si_cmodel_i hfa_iface = {.create_request = si_ireq_create, .request = &hfa_req_iface, .free = hfa_model_free};

si_result si_hfa_create(const si_hfa_desc *d, si_cmodel **out) {
    *out = NULL;
    si_result s = SI_OK;
    hfa_model *m = NULL;
    if (!d->plain || !d->tile || !d->final || d->tile_keys <= 0 || d->tile->n_inputs != T_NIN || d->tile->n_outputs != 3 ||
        d->final->n_inputs != 2 || d->final->n_outputs != 1 || d->plain->n_outputs != 1 || d->q_in < 0 ||
        d->q_in >= d->plain->n_inputs || d->k_in < 0 || d->k_in >= d->plain->n_inputs || d->v_in < 0 ||
        d->v_in >= d->plain->n_inputs || d->mask_in >= d->plain->n_inputs) {
        s = si_err(SI_ERR_INVALID_ARG, "flash attention: bad descriptor");
        goto fail;
    }
    if (!(m = si_calloc(1, sizeof *m))) { s = si_err(SI_ERR_NO_MEM, "out of memory"); goto fail; }
    m->base = (si_cmodel){.iface = &hfa_iface, .n_inputs = d->plain->n_inputs, .n_outputs = d->plain->n_outputs, .device = d->plain->device};
    m->plain = d->plain, m->tile = d->tile, m->final = d->final;
    m->owned = d->owned, m->owned_free = d->owned_free;
    m->in_ports = si_ports_copy(d->plain->inputs, d->plain->n_inputs);
    m->out_ports = si_ports_copy(d->plain->outputs, d->plain->n_outputs);
    if (!m->in_ports || !m->out_ports) {
        hfa_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->base.inputs = m->in_ports, m->base.outputs = m->out_ports;
    m->q_in = d->q_in, m->k_in = d->k_in, m->v_in = d->v_in, m->mask_in = d->mask_in;
    m->mask_const = d->mask_const ? si_const_ref(d->mask_const) : NULL;
    m->k_axis = d->k_axis, m->causal = d->causal, m->mask_short = d->mask_short, m->tile_n = d->tile_keys;
    snprintf(m->label, sizeof m->label, "%s", d->label ? d->label : "flash attention");
    *out = &m->base;
    return SI_OK;
fail:
    if (d->plain) d->plain->iface->free(d->plain);
    if (d->tile) d->tile->iface->free(d->tile);
    if (d->final) d->final->iface->free(d->final);
    if (d->owned_free) d->owned_free(d->owned);
    return s;
}
