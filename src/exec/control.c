/*
 * control.c — If, Loop and Scan run by the executor on the host (see control.h).
 *
 * A request holds one request per body, created with it. Every infer makes its results in `fresh` tensors of
 * its own and moves them into the output tensors only when the whole node has succeeded, so a failure anywhere
 * (a body, a bad condition, the iteration limit) leaves the outputs as the last successful inference left them.
 *
 * Loop-carried values and Scan states live in two sets of tensors owned by the request: the body reads the
 * current set while its outputs are copied into the other, then the two swap. They are copies: a body output
 * belongs to the body's request and is rewritten by its next infer, which also reads the state. Scan outputs
 * are gathered slice by slice in a growing buffer and stacked along their axis at the end.
 */
#include "exec/control.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cf_model {
    si_cmodel base;
    si_cf_kind kind;
    char *name;
    si_port *in_ports, *out_ports;
    int n_node_in, n_node_out;
    si_src *node_in;
    int *node_out;
    int n_bodies;
    si_cmodel *bodies[2];
    int n_formal[2];
    si_src *body_in[2];
    bool v8;
    int n_state, n_scan_in, n_scan_out; /* Loop: carried values and scan outputs; Scan: N, M, K */
    int64_t *in_axes, *in_rev, *out_axes, *out_rev;
    int64_t max_iter;
} cf_model;

/* Scan outputs gathered slice by slice: `count` slices of one shape, back to back. */
typedef struct gather {
    si_dtype dtype;
    int ndim;
    int64_t dims[SI_MAX_DIMS];
    size_t slice_bytes;
    int64_t count;
    uint8_t *data;
    size_t cap;
} gather;

typedef struct cf_req {
    si_ireq base;
    si_ireq *body[2];
    si_tensor *fresh;      /* per node output: this inference's result, moved into outs on success */
    si_tensor *state[2];   /* per carried value / state: the current set and the next one */
    int cur;               /* which state set is current */
    si_tensor *slices;     /* Scan: per scan input, the slice of this step */
    si_tensor *views;      /* Scan-8: per node input, the batch entry being scanned */
    si_tensor iter, cond;  /* Loop: the iteration number and the condition fed to the body */
    gather *gathers;       /* per scan output */
    atomic_bool cancelled;
} cf_req;

static const char *kind_name(si_cf_kind k) { return k == SI_CF_IF ? "If" : k == SI_CF_LOOP ? "Loop" : "Scan"; }

static si_result cf_err(const cf_model *m, si_result s, const char *fmt, ...) SI_PRINTF(3, 4);
static si_result cf_err(const cf_model *m, si_result s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return si_err(s, "%s (node '%s'): %s", kind_name(m->kind), m->name, msg);
}

// --- tensors ---------------------------------------------------------------------------------------------------

/* dst (a tensor of ours) takes src's type, shape and bytes; its buffer is reused while it holds them (and grows
 * with headroom when not: si_tensor_copy_room). */
static si_result assign(si_tensor *dst, const si_tensor *src) {
    si_tensor fresh;
    si_result s = si_tensor_copy_room(dst, src, &fresh);
    if (s) return s;
    si_tensor_copy_into(dst, src, &fresh);
    return SI_OK;
}

/* dst takes src's contents without a copy (src is left empty). */
static void move(si_tensor *dst, si_tensor *src) {
    si_tensor_release(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
    src->dtype = dst->dtype;
}

/* A zero-filled tensor of this shape in t (reusing its buffer when the size stays). */
static si_result make(si_tensor *t, si_dtype dt, int ndim, const int64_t *dims) {
    int64_t cnt = si_shape_count(ndim, dims);
    size_t nbytes = (size_t)cnt * si_dtype_size(dt);
    if (t->owned && t->data && t->nbytes == nbytes) {
        t->dtype = dt;
        t->ndim = ndim;
        memset(t->dims, 0, sizeof t->dims);
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
        memset(t->data, 0, nbytes);
        return SI_OK;
    }
    si_tensor_release(t);
    si_result s = si_tensor_init(t, dt, ndim, dims);
    return s ? s : si_tensor_alloc(t);
}

static int64_t count_of(const si_tensor *t) { return si_shape_count(t->ndim, t->dims); }

// --- sources ---------------------------------------------------------------------------------------------------

/* Node input k: a port of ours or a constant; NULL when absent. */
static const si_tensor *node_input(const cf_req *r, int k) {
    const cf_model *m = (const cf_model *)r->base.model;
    if (k >= m->n_node_in) return NULL;
    const si_src *s = &m->node_in[k];
    if (s->kind == SI_SRC_INPUT) return r->base.bound[s->index];
    if (s->kind == SI_SRC_CONST) return s->constant;
    return NULL;
}

/* Bind body b's outer-scope inputs (the ports after its formal ones). */
static si_result bind_outer(cf_req *r, int b) {
    const cf_model *m = (const cf_model *)r->base.model;
    const si_cmodel *bm = m->bodies[b];
    for (int p = m->n_formal[b]; p < bm->n_inputs; p++) {
        const si_src *s = &m->body_in[b][p - m->n_formal[b]];
        si_tensor *t = s->kind == SI_SRC_INPUT ? r->base.bound[s->index] : s->constant;
        si_result st = r->body[b]->iface->set_input(r->body[b], p, t);
        if (st) return st;
    }
    return SI_OK;
}

static si_result body_output(cf_req *r, int b, int k, si_tensor **t) {
    si_result s = r->body[b]->iface->get_output(r->body[b], k, t);
    if (!s && !*t) s = si_err(SI_ERR_INTERNAL, "body output %d is missing", k);
    return s;
}

/* Run body b (inputs bound); a failure names the node and the body. */
static si_result run_body(cf_req *r, int b) {
    const cf_model *m = (const cf_model *)r->base.model;
    if (atomic_load(&r->cancelled)) return cf_err(m, SI_ERR_ABORTED, "cancelled");
    si_result s = r->body[b]->iface->infer(r->body[b]);
    if (s)
        return si_err_wrap(s, "%s (node '%s') %s", kind_name(m->kind), m->name,
                           m->kind != SI_CF_IF ? "body" : b == 0 ? "then_branch" : "else_branch");
    return SI_OK;
}

/* Node output k's result t (a body output) against the port it goes to: element type, rank, fixed dims. */
static si_result check_result(const cf_model *m, int k, const si_tensor *t, const char *what) {
    int port = m->node_out[k];
    if (port < 0) return SI_OK;
    const si_port *p = &m->out_ports[port];
    bool ok = (p->dtype == SI_DTYPE_UNDEFINED || p->dtype == t->dtype) && (p->ndim < 0 || p->ndim == t->ndim);
    for (int d = 0; ok && p->ndim >= 0 && d < p->ndim; d++) ok = p->dims[d] < 0 || p->dims[d] == t->dims[d];
    if (ok) return SI_OK;
    char a[128], b[128];
    if (p->ndim >= 0) si_shape_str(b, sizeof b, p->dtype, p->ndim, p->dims);
    else snprintf(b, sizeof b, "%s of any shape", si_dtype_name(p->dtype));
    return cf_err(m, SI_ERR_INVALID_ARG, "%s is %s, the node's output '%s' is %s", what,
                  si_shape_str(a, sizeof a, t->dtype, t->ndim, t->dims), p->name, b);
}

/* One bool: the value of a condition. */
static si_result read_cond(const cf_model *m, const si_tensor *t, const char *what, bool *v) {
    if (t->dtype != SI_BOOL || count_of(t) != 1)
        return cf_err(m, SI_ERR_INVALID_ARG, "%s must be one bool, got %s with %lld elements", what, si_dtype_name(t->dtype),
                      (long long)count_of(t));
    if (!t->data) return cf_err(m, SI_ERR_INVALID_ARG, "%s has no data", what);
    *v = si_load_f64(SI_BOOL, t->data, 0) != 0;
    return SI_OK;
}

/* Every node output's fresh result is made: exchange them with the output tensors (the old buffers stay in fresh,
 * for the next inference to write into when they fit). */
static void commit(cf_req *r) {
    const cf_model *m = (const cf_model *)r->base.model;
    for (int k = 0; k < m->n_node_out; k++)
        if (m->node_out[k] >= 0) si_tensor_exchange(r->base.outs[m->node_out[k]], &r->fresh[k]);
}

// --- gathering scan outputs ---------------------------------------------------------------------------------

static void gather_reset(gather *g) { g->count = 0; }

/* Append slice t (every slice of one output has the first one's type and shape). */
static si_result gather_add(const cf_model *m, gather *g, const si_tensor *t, int k) {
    if (g->count == 0) {
        g->dtype = t->dtype;
        g->ndim = t->ndim;
        memcpy(g->dims, t->dims, sizeof g->dims);
        g->slice_bytes = t->nbytes;
    } else if (t->dtype != g->dtype || t->ndim != g->ndim || memcmp(t->dims, g->dims, sizeof(int64_t) * (size_t)t->ndim)) {
        char a[128], b[128];
        return cf_err(m, SI_ERR_INVALID_ARG, "scan output %d changes from %s to %s at iteration %lld", k,
                      si_shape_str(a, sizeof a, g->dtype, g->ndim, g->dims), si_shape_str(b, sizeof b, t->dtype, t->ndim, t->dims),
                      (long long)g->count);
    }
    if (g->ndim + 1 + m->v8 > SI_MAX_DIMS) return cf_err(m, SI_ERR_UNSUPPORTED, "scan output %d has rank above %d", k, SI_MAX_DIMS - 1);
    size_t need = (size_t)(g->count + 1) * g->slice_bytes;
    if (g->slice_bytes && need / g->slice_bytes != (size_t)(g->count + 1))
        return cf_err(m, SI_ERR_NO_MEM, "scan output %d is too large", k);
    if (need > g->cap) {
        size_t cap = g->cap ? g->cap : 64;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *p = si_realloc(g->data, cap);
        if (!p) return cf_err(m, SI_ERR_NO_MEM, "out of memory gathering scan output %d (%zu bytes)", k, cap);
        g->data = p;
        g->cap = cap;
    }
    if (g->slice_bytes) memcpy(g->data + (size_t)g->count * g->slice_bytes, t->data, g->slice_bytes);
    g->count++;
    return SI_OK;
}

/* The gathered slices stacked along `axis` (of the result; reversed: the last slice first) into out. With no
 * slice at all, the port's type and shape give the empty result's. */
static si_result gather_stack(const cf_model *m, gather *g, int k, int port, int64_t axis_raw, bool rev, si_tensor *out) {
    if (g->count == 0) {
        const si_port *p = port >= 0 ? &m->out_ports[port] : NULL;
        int nd = p && p->ndim > 0 ? p->ndim : 1;
        int64_t dims[SI_MAX_DIMS] = {0};
        for (int d = 0; p && d < nd; d++) dims[d] = p->dims[d] >= 0 ? p->dims[d] : 0;
        int64_t a = axis_raw < 0 ? axis_raw + nd : axis_raw;
        if (a >= 0 && a < nd) dims[a] = 0;
        else dims[0] = 0;
        return make(out, p && p->dtype != SI_DTYPE_UNDEFINED ? p->dtype : SI_F32, nd, dims);
    }
    int nd = g->ndim + 1;
    int64_t a = axis_raw < 0 ? axis_raw + nd : axis_raw;
    if (a < 0 || a >= nd) return cf_err(m, SI_ERR_INVALID_ARG, "scan output axis %lld is out of range for rank %d", (long long)axis_raw, nd);
    int64_t dims[SI_MAX_DIMS];
    for (int d = 0, j = 0; d < nd; d++) dims[d] = d == a ? g->count : g->dims[j++];
    si_result s = make(out, g->dtype, nd, dims);
    if (s) return cf_err(m, s, "scan output %d: %s", k, si_last_error());
    size_t es = si_dtype_size(g->dtype);
    int64_t outer = si_shape_count((int)a, g->dims);
    size_t inner = (size_t)si_shape_count(g->ndim - (int)a, g->dims + a) * es;
    for (int64_t t = 0; t < g->count; t++) {
        int64_t pos = rev ? g->count - 1 - t : t;
        const uint8_t *src = g->data + (size_t)t * g->slice_bytes;
        uint8_t *dst = (uint8_t *)out->data;
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + ((size_t)(o * g->count + pos)) * inner, src + (size_t)o * inner, inner);
    }
    return SI_OK;
}

/* The final loop-carried values (Loop) or states (Scan) of r: each of the N the node outputs, checked against its
 * output (`label` and its index name it in an error), moved to its output. */
static si_result take_states(cf_req *r, int N, const char *label) {
    const cf_model *m = (const cf_model *)r->base.model;
    for (int i = 0; i < N; i++) {
        if (m->node_out[i] < 0) continue;
        char what[64];
        snprintf(what, sizeof what, "%s %d", label, i);
        si_result s = check_result(m, i, &r->state[r->cur][i], what);
        if (s) return s;
        move(&r->fresh[i], &r->state[r->cur][i]);
    }
    return SI_OK;
}

// --- If ------------------------------------------------------------------------------------------------------

static si_result run_if(cf_req *r) {
    const cf_model *m = (const cf_model *)r->base.model;
    const si_tensor *c = node_input(r, 0);
    if (!c) return cf_err(m, SI_ERR_INVALID_ARG, "the condition is missing");
    bool v = false; /* read only when read_cond succeeds; set for the failing path too */
    si_result s = read_cond(m, c, "the condition", &v);
    int b = v ? 0 : 1;
    if (!s) s = bind_outer(r, b);
    if (!s) s = run_body(r, b);
    for (int k = 0; !s && k < m->n_node_out; k++) {
        if (m->node_out[k] < 0) continue;
        si_tensor *t;
        char what[64];
        snprintf(what, sizeof what, "%s output %d", b == 0 ? "then_branch" : "else_branch", k);
        if (!(s = body_output(r, b, k, &t)) && !(s = check_result(m, k, t, what)))
            /* node output k is branch output k alone: taken instead of copied where the branch allows it */
            s = r->body[b]->iface->outputs_exchangeable ? (si_tensor_exchange(&r->fresh[k], t), SI_OK) : assign(&r->fresh[k], t);
    }
    return s;
}

// --- Loop ----------------------------------------------------------------------------------------------------

static si_result run_loop(cf_req *r) {
    const cf_model *m = (const cf_model *)r->base.model;
    const int N = m->n_state, K = m->n_scan_out;
    const si_tensor *mt = node_input(r, 0), *ct = node_input(r, 1);
    int64_t trips = -1; /* -1: no trip count */
    bool cond = true;
    si_result s;
    if (mt) {
        if (!si_dtype_is_int(mt->dtype) || count_of(mt) != 1 || !mt->data)
            return cf_err(m, SI_ERR_INVALID_ARG, "the trip count M must be one integer, got %s with %lld elements",
                          si_dtype_name(mt->dtype), (long long)count_of(mt));
        trips = si_load_i64(mt->dtype, mt->data, 0);
        if (trips < 0) return cf_err(m, SI_ERR_INVALID_ARG, "the trip count M is negative (%lld)", (long long)trips);
    }
    if (ct && (s = read_cond(m, ct, "the condition", &cond))) return s;
    r->cur = 0;
    for (int i = 0; i < N; i++) {
        const si_tensor *init = node_input(r, 2 + i);
        if (!init) return cf_err(m, SI_ERR_INVALID_ARG, "loop-carried input %d is missing", i);
        if ((s = assign(&r->state[0][i], init))) return s;
    }
    for (int k = 0; k < K; k++) gather_reset(&r->gathers[k]);
    if ((s = bind_outer(r, 0))) return s;
    int64_t it = 0;
    for (; cond && (trips < 0 || it < trips); it++) {
        if (m->max_iter > 0 && it >= m->max_iter)
            return cf_err(m, SI_ERR_INVALID_ARG, "stopped after %lld iterations (the limit, property loop_max_iterations)%s",
                          (long long)m->max_iter, trips < 0 ? ": no trip count, and the condition stayed true" : "");
        si_ireq *br = r->body[0];
        *(int64_t *)r->iter.data = it;
        *(uint8_t *)r->cond.data = 1;
        si_tensor *st = r->state[r->cur];
        if ((s = br->iface->set_input(br, 0, &r->iter)) || (s = br->iface->set_input(br, 1, &r->cond))) return s;
        for (int i = 0; i < N; i++)
            if ((s = br->iface->set_input(br, 2 + i, &st[i]))) return s;
        if ((s = run_body(r, 0))) return s;
        si_tensor *t;
        if ((s = body_output(r, 0, 0, &t)) || (s = read_cond(m, t, "the body's condition output", &cond))) return s;
        si_tensor *next = r->state[!r->cur];
        for (int i = 0; i < N; i++) {
            if ((s = body_output(r, 0, 1 + i, &t))) return s;
            if (t->dtype != st[i].dtype)
                return cf_err(m, SI_ERR_INVALID_ARG, "the body makes loop-carried value %d %s, it is %s", i,
                              si_dtype_name(t->dtype), si_dtype_name(st[i].dtype));
            if ((s = assign(&next[i], t))) return s;
        }
        for (int k = 0; k < K; k++)
            if ((s = body_output(r, 0, 1 + N + k, &t)) || (s = gather_add(m, &r->gathers[k], t, k))) return s;
        r->cur = !r->cur;
    }
    if ((s = take_states(r, N, "loop-carried value"))) return s;
    for (int k = 0; k < K; k++) {
        if (m->node_out[N + k] < 0) continue;
        if ((s = gather_stack(m, &r->gathers[k], k, m->node_out[N + k], 0, false, &r->fresh[N + k]))) return s;
        char what[64];
        snprintf(what, sizeof what, "scan output %d", k);
        if ((s = check_result(m, N + k, &r->fresh[N + k], what))) return s;
    }
    return SI_OK;
}

// --- Scan ----------------------------------------------------------------------------------------------------

/* The slice at `pos` along `axis` of x into t. */
static si_result take_slice(const si_tensor *x, int axis, int64_t pos, si_tensor *t) {
    int64_t dims[SI_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != axis) dims[nd++] = x->dims[d];
    si_result s = make(t, x->dtype, nd, dims);
    if (s) return s;
    size_t es = si_dtype_size(x->dtype);
    int64_t outer = si_shape_count(axis, x->dims), len = x->dims[axis];
    size_t inner = (size_t)si_shape_count(x->ndim - axis - 1, x->dims + axis + 1) * es;
    for (int64_t o = 0; o < outer && inner; o++)
        memcpy((uint8_t *)t->data + (size_t)o * inner, (const uint8_t *)x->data + ((size_t)(o * len + pos)) * inner, inner);
    return SI_OK;
}

/* One scan over inputs xs (states first, then the scanned ones; Scan-8: one batch entry's views) for `len` steps
 * (Scan-8: an entry's sequence length, at most the steps its inputs hold). The final states are left in r->state[r->cur], the scan outputs in
 * r->gathers. */
static si_result scan_once(cf_req *r, const si_tensor *const *xs, const int *axes, int64_t len) {
    const cf_model *m = (const cf_model *)r->base.model;
    const int N = m->n_state, M = m->n_scan_in, K = m->n_scan_out;
    si_ireq *br = r->body[0];
    si_result s;
    r->cur = 0;
    for (int i = 0; i < N; i++)
        if ((s = assign(&r->state[0][i], xs[i]))) return s;
    for (int k = 0; k < K; k++) gather_reset(&r->gathers[k]);
    for (int64_t t = 0; t < len; t++) {
        for (int j = 0; j < M; j++) {
            bool rev = m->in_rev && m->in_rev[j];
            /* Scan-8 with a shorter sequence: a reversed input starts at its own last step */
            if ((s = take_slice(xs[N + j], axes[j], rev ? len - 1 - t : t, &r->slices[j]))) return s;
            if ((s = br->iface->set_input(br, N + j, &r->slices[j]))) return s;
        }
        si_tensor *st = r->state[r->cur];
        for (int i = 0; i < N; i++)
            if ((s = br->iface->set_input(br, i, &st[i]))) return s;
        if ((s = run_body(r, 0))) return s;
        si_tensor *next = r->state[!r->cur], *o;
        for (int i = 0; i < N; i++) {
            if ((s = body_output(r, 0, i, &o))) return s;
            if (o->dtype != st[i].dtype)
                return cf_err(m, SI_ERR_INVALID_ARG, "the body makes state %d %s, it is %s", i, si_dtype_name(o->dtype),
                              si_dtype_name(st[i].dtype));
            if ((s = assign(&next[i], o))) return s;
        }
        for (int k = 0; k < K; k++)
            if ((s = body_output(r, 0, N + k, &o)) || (s = gather_add(m, &r->gathers[k], o, k))) return s;
        r->cur = !r->cur;
    }
    return SI_OK;
}

/* The scan axes of the inputs and the common length; INVALID_ARG when they disagree. */
static si_result scan_axes(const cf_model *m, const si_tensor *const *xs, int *axes, int64_t *len) {
    *len = -1;
    for (int j = 0; j < m->n_scan_in; j++) {
        const si_tensor *x = xs[m->n_state + j];
        int64_t a = m->v8 ? 0 : m->in_axes ? m->in_axes[j] : 0;
        if (a < 0) a += x->ndim;
        if (a < 0 || a >= x->ndim)
            return cf_err(m, SI_ERR_INVALID_ARG, "scan input %d (rank %d) has no axis %lld", j, x->ndim,
                          (long long)(m->in_axes ? m->in_axes[j] : 0));
        axes[j] = (int)a;
        if (*len >= 0 && x->dims[a] != *len)
            return cf_err(m, SI_ERR_INVALID_ARG, "scan inputs have sequence lengths %lld and %lld", (long long)*len,
                          (long long)x->dims[a]);
        *len = x->dims[a];
    }
    return SI_OK;
}

static si_result run_scan9(cf_req *r) {
    const cf_model *m = (const cf_model *)r->base.model;
    const int N = m->n_state, M = m->n_scan_in, K = m->n_scan_out;
    const si_tensor *xs[2 * SI_MAX_DIMS + 64];
    int axes[SI_MAX_DIMS];
    for (int i = 0; i < N + M; i++)
        if (!(xs[i] = node_input(r, i))) return cf_err(m, SI_ERR_INVALID_ARG, "input %d is missing", i);
    int64_t len;
    si_result s = scan_axes(m, xs, axes, &len);
    if (!s) s = bind_outer(r, 0);
    if (!s) s = scan_once(r, xs, axes, len);
    if (s) return s;
    if ((s = take_states(r, N, "state"))) return s;
    for (int k = 0; k < K; k++) {
        if (m->node_out[N + k] < 0) continue;
        bool rev = m->out_rev && m->out_rev[k];
        if ((s = gather_stack(m, &r->gathers[k], k, m->node_out[N + k], m->out_axes ? m->out_axes[k] : 0, rev, &r->fresh[N + k])))
            return s;
        char what[64];
        snprintf(what, sizeof what, "scan output %d", k);
        if ((s = check_result(m, N + k, &r->fresh[N + k], what))) return s;
    }
    return SI_OK;
}

/* A view of batch entry b of x (rank >= 1): the entry's shape and data, not owned. */
static void batch_view(const si_tensor *x, int64_t b, si_tensor *v) {
    memset(v, 0, sizeof *v);
    v->dtype = x->dtype;
    v->ndim = x->ndim - 1;
    memcpy(v->dims, x->dims + 1, sizeof(int64_t) * (size_t)v->ndim);
    v->nbytes = x->dims[0] ? x->nbytes / (size_t)x->dims[0] : 0;
    v->data = v->nbytes ? (uint8_t *)x->data + (size_t)b * v->nbytes : NULL;
}

/* Scan-8: input 0 is sequence_lens (optional), every other input has a batch axis first; each batch entry is
 * scanned on its own (along its axis 0) for its own length, and the results stacked on the batch axis (scan
 * output steps past an entry's length are zeros). */
static si_result run_scan8(cf_req *r) {
    const cf_model *m = (const cf_model *)r->base.model;
    const int N = m->n_state, M = m->n_scan_in, K = m->n_scan_out;
    const si_tensor *xs[2 * SI_MAX_DIMS + 64], *views[2 * SI_MAX_DIMS + 64];
    int axes[SI_MAX_DIMS];
    const si_tensor *lens = node_input(r, 0);
    int64_t batch = -1;
    for (int i = 0; i < N + M; i++) {
        if (!(xs[i] = node_input(r, 1 + i))) return cf_err(m, SI_ERR_INVALID_ARG, "input %d is missing", 1 + i);
        if (xs[i]->ndim < 1 + (i >= N)) return cf_err(m, SI_ERR_INVALID_ARG, "input %d has no batch axis", 1 + i);
        if (batch >= 0 && xs[i]->dims[0] != batch)
            return cf_err(m, SI_ERR_INVALID_ARG, "inputs have batch sizes %lld and %lld", (long long)batch, (long long)xs[i]->dims[0]);
        batch = xs[i]->dims[0];
    }
    if (lens && count_of(lens) == 0) lens = NULL; /* empty: every entry has the full length */
    if (lens && (!si_dtype_is_int(lens->dtype) || count_of(lens) != batch))
        return cf_err(m, SI_ERR_INVALID_ARG, "sequence_lens must hold %lld integers", (long long)batch);
    si_tensor *vt = r->views;
    for (int i = 0; i < N + M; i++) { /* shapes for the axes and the full length */
        batch_view(xs[i], 0, &vt[i]);
        views[i] = &vt[i];
    }
    int64_t full;
    si_result s = scan_axes(m, views, axes, &full);
    if (!s) s = bind_outer(r, 0);
    if (s) return s;
    for (int k = 0; k < K; k++) r->gathers[k].count = 0;
    for (int64_t b = 0; b < batch; b++) {
        for (int i = 0; i < N + M; i++) batch_view(xs[i], b, &vt[i]);
        int64_t len = lens ? si_load_i64(lens->dtype, lens->data, b) : full;
        if (len < 0 || len > full)
            return cf_err(m, SI_ERR_INVALID_ARG, "sequence_lens[%lld] = %lld is not in 0..%lld", (long long)b, (long long)len,
                          (long long)full);
        if ((s = scan_once(r, views, axes, len))) return s;
        /* the entry's results into the batched outputs (made at the first entry) */
        for (int i = 0; i < N; i++) {
            const si_tensor *st = &r->state[r->cur][i];
            if (m->node_out[i] < 0) continue;
            if (b == 0) {
                int64_t dims[SI_MAX_DIMS];
                if (st->ndim + 1 > SI_MAX_DIMS) return cf_err(m, SI_ERR_UNSUPPORTED, "state %d has rank above %d", i, SI_MAX_DIMS - 1);
                dims[0] = batch;
                memcpy(dims + 1, st->dims, sizeof(int64_t) * (size_t)st->ndim);
                if ((s = make(&r->fresh[i], st->dtype, st->ndim + 1, dims))) return s;
            }
            si_tensor *f = &r->fresh[i];
            if (st->nbytes * (size_t)batch != f->nbytes || st->dtype != f->dtype)
                return cf_err(m, SI_ERR_INVALID_ARG, "state %d has different shapes for different batch entries", i);
            if (st->nbytes) memcpy((uint8_t *)f->data + (size_t)b * st->nbytes, st->data, st->nbytes);
        }
        for (int k = 0; k < K; k++) {
            gather *g = &r->gathers[k];
            int port = m->node_out[N + k];
            if (port < 0) continue;
            if (g->count == 0 && len > 0) return cf_err(m, SI_ERR_INTERNAL, "scan output %d gathered nothing", k);
            if (b == 0) { /* [batch, full, slice...]: the slice shape from this entry, else the port's */
                int64_t dims[SI_MAX_DIMS] = {0};
                int nd;
                si_dtype dt;
                if (g->count) {
                    nd = g->ndim + 2;
                    dt = g->dtype;
                    memcpy(dims + 2, g->dims, sizeof(int64_t) * (size_t)g->ndim);
                } else {
                    const si_port *p = &m->out_ports[port];
                    nd = p->ndim >= 2 ? p->ndim : 2;
                    dt = p->dtype;
                    for (int d = 2; d < nd; d++) dims[d] = p->dims[d] >= 0 ? p->dims[d] : 0;
                }
                dims[0] = batch;
                dims[1] = full;
                if (nd > SI_MAX_DIMS) return cf_err(m, SI_ERR_UNSUPPORTED, "scan output %d has rank above %d", k, SI_MAX_DIMS);
                if ((s = make(&r->fresh[N + k], dt, nd, dims))) return s;
            }
            si_tensor *f = &r->fresh[N + k];
            size_t entry = f->dims[0] ? f->nbytes / (size_t)f->dims[0] : 0;
            if (g->count && (g->dtype != f->dtype || g->slice_bytes * (size_t)full != entry))
                return cf_err(m, SI_ERR_INVALID_ARG, "scan output %d has different shapes for different batch entries", k);
            if (g->count) memcpy((uint8_t *)f->data + (size_t)b * entry, g->data, (size_t)g->count * g->slice_bytes);
        }
    }
    for (int k = 0; k < N + K; k++) {
        if (m->node_out[k] < 0) continue;
        char what[64];
        snprintf(what, sizeof what, "%s %d", k < N ? "state" : "scan output", k < N ? k : k - N);
        if (batch == 0) { /* no entry: empty results of the ports' shapes */
            const si_port *p = &m->out_ports[m->node_out[k]];
            int64_t dims[SI_MAX_DIMS] = {0};
            for (int d = 1; d < p->ndim; d++) dims[d] = p->dims[d] >= 0 ? p->dims[d] : 0;
            if ((s = make(&r->fresh[k], p->dtype, p->ndim > 0 ? p->ndim : 1, dims))) return s;
        }
        if ((s = check_result(m, k, &r->fresh[k], what))) return s;
    }
    return SI_OK;
}

// --- requests ------------------------------------------------------------------------------------------------

static si_result cf_infer(si_ireq *r_) {
    cf_req *r = (cf_req *)r_;
    cf_model *m = (cf_model *)r->base.model;
    si_result s = si_ireq_check_inputs(&r->base);
    if (s) return s;
    atomic_store(&r->cancelled, false);
    switch (m->kind) {
    case SI_CF_IF: s = run_if(r); break;
    case SI_CF_LOOP: s = run_loop(r); break;
    case SI_CF_SCAN: s = m->v8 ? run_scan8(r) : run_scan9(r); break;
    }
    if (!s) commit(r);
    return s;
}

static void cf_cancel(si_ireq *r_) {
    cf_req *r = (cf_req *)r_;
    cf_model *m = (cf_model *)r->base.model;
    atomic_store(&r->cancelled, true);
    si_ireqs_cancel(r->body, m->n_bodies);
}

static void cf_req_free(si_ireq *r_) {
    cf_req *r = (cf_req *)r_;
    if (!r) return;
    cf_model *m = (cf_model *)r->base.model;
    for (int b = 0; b < m->n_bodies; b++)
        if (r->body[b]) r->body[b]->iface->free(r->body[b]);
    for (int k = 0; r->fresh && k < m->n_node_out; k++) si_tensor_release(&r->fresh[k]);
    for (int h = 0; h < 2; h++) {
        for (int i = 0; r->state[h] && i < m->n_state; i++) si_tensor_release(&r->state[h][i]);
        si_free(r->state[h]);
    }
    for (int j = 0; r->slices && j < m->n_scan_in; j++) si_tensor_release(&r->slices[j]);
    for (int k = 0; r->gathers && k < m->n_scan_out; k++) si_free(r->gathers[k].data);
    si_tensor_release(&r->iter);
    si_tensor_release(&r->cond);
    SI_FREE_ALL(r->fresh, r->slices, r->views, r->gathers);
    si_ireq_destroy(&r->base);
}

static si_result cf_req_init(si_ireq *r_) {
    cf_req *r = (cf_req *)r_;
    const cf_model *m = (const cf_model *)r_->model;
    si_result s = SI_OK;
    atomic_init(&r->cancelled, false);
    r->fresh = si_calloc((size_t)m->n_node_out + 1, sizeof(si_tensor));
    r->state[0] = si_calloc((size_t)m->n_state + 1, sizeof(si_tensor));
    r->state[1] = si_calloc((size_t)m->n_state + 1, sizeof(si_tensor));
    r->slices = si_calloc((size_t)m->n_scan_in + 1, sizeof(si_tensor));
    r->views = si_calloc((size_t)m->n_node_in + 1, sizeof(si_tensor));
    r->gathers = si_calloc((size_t)m->n_scan_out + 1, sizeof(gather));
    if (!(r->fresh && r->state[0] && r->state[1] && r->slices && r->views && r->gathers))
        s = si_err(SI_ERR_NO_MEM, "control flow: out of memory creating a request");
    if (!s && m->kind == SI_CF_LOOP) { /* scalars, or [1] where the body declares them so */
        const si_port *bp = m->bodies[0]->inputs;
        int64_t one[1] = {1};
        if (!(s = si_tensor_init(&r->iter, SI_I64, bp[0].ndim == 1 ? 1 : 0, one)) && !(s = si_tensor_alloc(&r->iter)) &&
            !(s = si_tensor_init(&r->cond, SI_BOOL, bp[1].ndim == 1 ? 1 : 0, one)))
            s = si_tensor_alloc(&r->cond);
    }
    for (int b = 0; !s && b < m->n_bodies; b++) s = m->bodies[b]->iface->create_request(m->bodies[b], &r->body[b]);
    return s;
}

static const si_ireq_i cf_req_iface = SI_IREQ_IFACE(.infer = cf_infer, .free = cf_req_free, .cancel = cf_cancel,
                                                    .size = sizeof(cf_req), .who = "control flow", .init = cf_req_init);

// --- the compiled model --------------------------------------------------------------------------------------

static void cf_model_free(si_cmodel *m_) {
    cf_model *m = (cf_model *)m_;
    if (!m) return;
    for (int b = 0; b < m->n_bodies; b++) {
        if (m->bodies[b]) m->bodies[b]->iface->free(m->bodies[b]);
        si_free(m->body_in[b]);
    }
    for (int k = 0; m->node_in && k < m->n_node_in; k++)
        if (m->node_in[k].kind == SI_SRC_CONST) si_const_unref(m->node_in[k].constant);
    SI_FREE_ALL(m->node_in, m->node_out, m->in_axes, m->in_rev, m->out_axes, m->out_rev, m->name);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

static const si_cmodel_i cf_model_iface = {.create_request = si_ireq_create, .request = &cf_req_iface, .free = cf_model_free};

static int64_t *ints_copy(const int64_t *v, int n, bool *ok) {
    if (!v) return NULL;
    int64_t *d = si_malloc(sizeof(int64_t) * ((size_t)n + 1));
    if (!d) *ok = false;
    else if (n) memcpy(d, v, sizeof(int64_t) * (size_t)n);
    return d;
}

/* The shape of the description: body counts and port counts as the kind needs them. */
static si_result check_desc(const si_cf_desc *d) {
    const char *k = kind_name(d->kind);
    int want_bodies = d->kind == SI_CF_IF ? 2 : 1;
    if (d->n_bodies != want_bodies) return si_err(SI_ERR_INTERNAL, "%s '%s': %d bodies", k, d->name, d->n_bodies);
    for (int b = 0; b < d->n_bodies; b++) {
        const si_cmodel *bm = d->bodies[b];
        if (!bm || d->n_formal[b] < 0 || d->n_formal[b] > bm->n_inputs)
            return si_err(SI_ERR_INTERNAL, "%s '%s': body %d has %d inputs, fewer than its formal ones", k, d->name, b,
                          bm ? bm->n_inputs : -1);
        for (int p = d->n_formal[b]; p < bm->n_inputs; p++) {
            const si_src *s = &d->body_in[b][p - d->n_formal[b]];
            if (!((s->kind == SI_SRC_INPUT && s->index >= 0 && s->index < d->n_inputs) || (s->kind == SI_SRC_CONST && s->constant)))
                return si_err(SI_ERR_INTERNAL, "%s '%s': body %d input %d has no source", k, d->name, b, p);
        }
    }
    for (int i = 0; i < d->n_node_in; i++) {
        const si_src *s = &d->node_in[i];
        if (!((s->kind == SI_SRC_INPUT && s->index >= 0 && s->index < d->n_inputs) || (s->kind == SI_SRC_CONST && s->constant) ||
              s->kind == SI_SRC_NONE))
            return si_err(SI_ERR_INTERNAL, "%s '%s': node input %d has no source", k, d->name, i);
    }
    for (int i = 0; i < d->n_node_out; i++)
        if (d->node_out[i] < -1 || d->node_out[i] >= d->n_outputs)
            return si_err(SI_ERR_INTERNAL, "%s '%s': node output %d has a bad port", k, d->name, i);
    const si_cmodel *b0 = d->bodies[0];
    switch (d->kind) {
    case SI_CF_IF:
        if (d->n_formal[0] || d->n_formal[1] || b0->n_outputs != d->n_node_out || d->bodies[1]->n_outputs != d->n_node_out)
            return si_err(SI_ERR_INVALID_ARG, "If '%s': the node has %d outputs, then_branch %d and else_branch %d", d->name,
                          d->n_node_out, b0->n_outputs, d->bodies[1]->n_outputs);
        if (d->n_node_in < 1) return si_err(SI_ERR_INVALID_ARG, "If '%s' has no condition", d->name);
        break;
    case SI_CF_LOOP: {
        int N = d->n_node_in - 2;
        if (N < 0 || d->n_formal[0] != N + 2 || b0->n_outputs != 1 + d->n_node_out || d->n_node_out < N)
            return si_err(SI_ERR_INVALID_ARG, "Loop '%s': %d inputs and %d outputs, the body %d formal inputs and %d outputs",
                          d->name, d->n_node_in, d->n_node_out, d->n_formal[0], b0->n_outputs);
        break;
    }
    case SI_CF_SCAN: {
        int M = d->scan.n_scan_inputs, N = d->n_node_in - d->scan.v8 - M;
        if (M < 1 || M > SI_MAX_DIMS || N < 0 || N > 64 || d->n_formal[0] != N + M || b0->n_outputs != d->n_node_out ||
            d->n_node_out < N || d->n_node_out - N > SI_MAX_DIMS)
            return si_err(SI_ERR_INVALID_ARG, "Scan '%s': %d inputs (%d scanned) and %d outputs, the body %d formal inputs and %d outputs",
                          d->name, d->n_node_in, M, d->n_node_out, d->n_formal[0], b0->n_outputs);
        break;
    }
    default: return si_err(SI_ERR_INTERNAL, "control flow kind %d", (int)d->kind);
    }
    return SI_OK;
}

si_result si_cf_create(const si_cf_desc *d, si_cmodel **out) {
    *out = NULL;
    si_result s = check_desc(d);
    cf_model *m = s ? NULL : si_calloc(1, sizeof *m);
    if (!m) {
        for (int b = 0; b < d->n_bodies; b++)
            if (d->bodies[b]) d->bodies[b]->iface->free(d->bodies[b]);
        return s ? s : si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->base.iface = &cf_model_iface;
    m->kind = d->kind;
    m->n_bodies = d->n_bodies;
    for (int b = 0; b < d->n_bodies; b++) {
        m->bodies[b] = d->bodies[b];
        m->n_formal[b] = d->n_formal[b];
    }
    m->base.n_inputs = d->n_inputs;
    m->base.n_outputs = d->n_outputs;
    m->n_node_in = d->n_node_in;
    m->n_node_out = d->n_node_out;
    m->max_iter = d->max_iterations;
    bool ok = true;
    m->name = si_strdup(d->name ? d->name : "");
    m->in_ports = si_ports_copy(d->inputs, d->n_inputs);
    m->out_ports = si_ports_copy(d->outputs, d->n_outputs);
    m->node_in = si_calloc((size_t)d->n_node_in + 1, sizeof(si_src));
    m->node_out = si_calloc((size_t)d->n_node_out + 1, sizeof(int));
    ok = m->name && m->in_ports && m->out_ports && m->node_in && m->node_out;
    for (int b = 0; ok && b < d->n_bodies; b++) {
        int n = d->bodies[b]->n_inputs - d->n_formal[b];
        if (!(m->body_in[b] = si_calloc((size_t)n + 1, sizeof(si_src)))) ok = false;
        else if (n) memcpy(m->body_in[b], d->body_in[b], sizeof(si_src) * (size_t)n);
    }
    if (ok) {
        memcpy(m->node_out, d->node_out, sizeof(int) * (size_t)d->n_node_out);
        for (int k = 0; k < d->n_node_in; k++) {
            m->node_in[k] = d->node_in[k];
            if (m->node_in[k].kind == SI_SRC_CONST) si_const_ref(m->node_in[k].constant);
        }
    }
    if (d->kind == SI_CF_LOOP) {
        m->n_state = d->n_node_in - 2;
        m->n_scan_out = d->n_node_out - m->n_state;
    } else if (d->kind == SI_CF_SCAN) {
        m->v8 = d->scan.v8;
        m->n_scan_in = d->scan.n_scan_inputs;
        m->n_state = d->n_node_in - m->v8 - m->n_scan_in;
        m->n_scan_out = d->n_node_out - m->n_state;
        m->in_axes = ints_copy(d->scan.in_axes, m->n_scan_in, &ok);
        m->in_rev = ints_copy(d->scan.in_rev, m->n_scan_in, &ok);
        m->out_axes = ints_copy(d->scan.out_axes, m->n_scan_out, &ok);
        m->out_rev = ints_copy(d->scan.out_rev, m->n_scan_out, &ok);
    }
    if (!ok) {
        cf_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    m->base.inputs = m->in_ports;
    m->base.outputs = m->out_ports;
    m->base.device = "host";
    *out = &m->base;
    return SI_OK;
}
