/*
 * proxy.c — the isolated device's proxy: the device, compiled-model and request interfaces of a device that
 * runs in a helper process (see isolate.h for what crosses and how, helper.h for the process itself).
 *
 * Sections: the constant store (weights in shared memory, written once per proxy), supports_op (one batched
 * question per graph, answers kept per node), compile, requests (the arena, inputs in, outputs out), the
 * device.
 */
#include "device/isolate/isolate.h"

#include "device/faulty/faulty.h"
#include "device/isolate/helper.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Inputs are copied into shared memory in pieces of this size, so that a cancel waits for at most one. */
#define STAGE_CHUNK ((size_t)4 << 20)

// --- the constant store ---------------------------------------------------------------------------------
// Every constant a graph sent to the helper refers to lives in a shared-memory segment, found by the
// tensor's address. The store holds a reference on each constant it placed, so an address cannot be reused
// by another tensor while the entry exists. Segments are sealed read-only once written and kept (with their
// fds, so that a restarted helper gets them too) until the proxy is freed.

typedef struct store_ent {
    const si_tensor *t; /* NULL: empty slot */
    uint32_t seg;       /* 0: placed in the segment being made */
    uint64_t off;
} store_ent;

typedef struct store_seg {
    uint32_t id;
    int fd;
} store_seg;

typedef struct store {
    store_ent *tab; /* open addressing, cap a power of two, at most half full */
    size_t cap, n;
    store_seg *segs;
    int n_segs, cap_segs;
} store;

static size_t ptr_hash(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return (size_t)(x ^ (x >> 33));
}

static store_ent *store_find(store *s, const si_tensor *t) {
    if (!s->cap) return NULL;
    for (size_t i = ptr_hash(t) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->tab[i].t == t) return &s->tab[i];
        if (!s->tab[i].t) return NULL;
    }
}

static bool store_grow(store *s) {
    size_t cap = s->cap ? s->cap * 2 : 256;
    store_ent *tab = si_calloc(cap, sizeof *tab);
    if (!tab) return false;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->tab[i].t) continue;
        size_t j = ptr_hash(s->tab[i].t) & (cap - 1);
        while (tab[j].t) j = (j + 1) & (cap - 1);
        tab[j] = s->tab[i];
    }
    si_free(s->tab);
    s->tab = tab;
    s->cap = cap;
    return true;
}

static store_ent *store_insert(store *s, const si_tensor *t) {
    if ((s->n + 1) * 2 > s->cap && !store_grow(s)) return NULL;
    size_t i = ptr_hash(t) & (s->cap - 1);
    while (s->tab[i].t) i = (i + 1) & (s->cap - 1);
    s->tab[i] = (store_ent){.t = t};
    s->n++;
    return &s->tab[i];
}

/* Drop the entries of a segment that could not be made (rebuild without them). */
static void store_drop_pending(store *s) {
    store_ent *old = s->tab;
    size_t cap = s->cap;
    s->tab = NULL;
    s->cap = s->n = 0;
    for (size_t i = 0; i < cap; i++) {
        if (!old[i].t || !old[i].seg) continue;
        store_ent *e = store_insert(s, old[i].t); /* cannot fail: fewer entries than before */
        if (e) *e = old[i];
    }
    si_free(old);
}

static void store_free(store *s) {
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].t && s->tab[i].seg) si_const_unref((si_tensor *)s->tab[i].t);
    for (int i = 0; i < s->n_segs; i++) close(s->segs[i].fd);
    si_free(s->tab);
    si_free(s->segs);
    memset(s, 0, sizeof *s);
}

static bool has_data(const si_tensor *t) { return t && t->data && t->nbytes; }

/* The constants a value carries to the helper: its own and its folded DequantizeLinear's source (si_val.dq_*). */
static int val_consts(const si_val *val, const si_tensor *ts[4]) {
    int n = 0;
    if (val->const_val) ts[n++] = val->const_val;
    if (val->const_val && val->dq_q) {
        ts[n++] = val->dq_q;
        ts[n++] = val->dq_scale;
        if (val->dq_zp) ts[n++] = val->dq_zp;
    }
    return n;
}

/* Place every constant of g that the store does not hold yet into one new segment. */
static si_result store_add(store *s, const si_graph *g) {
    size_t total = 0;
    for (int v = 0; v < g->n_values; v++) {
        const si_tensor *ts[4];
        for (int k = 0, nk = val_consts(&g->values[v], ts); k < nk; k++) {
            const si_tensor *t = ts[k];
            if (!has_data(t) || store_find(s, t)) continue;
            store_ent *e = store_insert(s, t);
            if (!e) { store_drop_pending(s); return si_err(SI_ERR_NO_MEM, "out of memory placing constants"); }
            e->off = total;
            total = si_wire_align(total + t->nbytes);
            if (total == SIZE_MAX) { store_drop_pending(s); return si_err(SI_ERR_NO_MEM, "constants too large"); }
        }
    }
    if (!total) return SI_OK;
    if (s->n_segs == s->cap_segs) {
        int cap = s->cap_segs ? 2 * s->cap_segs : 8;
        store_seg *q = si_realloc(s->segs, sizeof *q * (size_t)cap);
        if (!q) { store_drop_pending(s); return si_err(SI_ERR_NO_MEM, "out of memory placing constants"); }
        s->segs = q;
        s->cap_segs = cap;
    }
    int fd = si_shm_create("constants", total, true);
    uint8_t *map = fd < 0 ? MAP_FAILED : mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        if (fd >= 0) {
            si_err(SI_ERR_NO_MEM, "cannot map %zu bytes of shared memory for constants: %s", total, strerror(errno));
            close(fd);
        }
        si_error e;
        si_error_save(&e, SI_ERR_NO_MEM);
        store_drop_pending(s);
        return si_error_restore(&e);
    }
    for (int v = 0; v < g->n_values; v++) {
        const si_tensor *ts[4];
        for (int k = 0, nk = val_consts(&g->values[v], ts); k < nk; k++) {
            const si_tensor *t = ts[k];
            store_ent *e = has_data(t) ? store_find(s, t) : NULL;
            if (e && !e->seg) memcpy(map + e->off, t->data, t->nbytes);
        }
    }
    munmap(map, total);
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL)) { /* read-only from now on */
        si_err(SI_ERR_NO_MEM, "cannot seal the shared memory of constants: %s", strerror(errno));
        close(fd);
        store_drop_pending(s);
        return SI_ERR_NO_MEM;
    }
    uint32_t id = (uint32_t)s->n_segs + 1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].t && !s->tab[i].seg) {
            s->tab[i].seg = id;
            si_const_ref((si_tensor *)s->tab[i].t);
        }
    s->segs[s->n_segs++] = (store_seg){.id = id, .fd = fd};
    return SI_OK;
}

static bool store_place(void *user, const si_tensor *t, uint32_t *seg, uint64_t *off) {
    store_ent *e = store_find(user, t);
    if (!e || !e->seg) return false;
    *seg = e->seg;
    *off = e->off;
    return true;
}

/* The segments g's constants are in: their ids written to b (count first) and their fds into fds. */
static si_result store_refs(store *s, const si_graph *g, si_wbuf *b, int *fds, int *nfds) {
    uint32_t ids[SI_WIRE_MAX_FDS];
    int n = 0;
    for (int v = 0; v < g->n_values; v++) {
        const si_tensor *ts[4];
        for (int k = 0, nk = val_consts(&g->values[v], ts); k < nk; k++) {
            const si_tensor *t = ts[k];
            if (!has_data(t)) continue;
            uint32_t id = store_find(s, t)->seg;
            bool seen = false;
            for (int i = 0; i < n && !seen; i++) seen = ids[i] == id;
            if (seen) continue;
            if (n == SI_WIRE_MAX_FDS) return si_err(SI_ERR_UNSUPPORTED, "the graph's constants are spread over more than %d shared-memory segments", SI_WIRE_MAX_FDS);
            ids[n] = id;
            fds[n++] = s->segs[id - 1].fd;
        }
    }
    wb_u32(b, (uint32_t)n);
    for (int i = 0; i < n; i++) wb_u32(b, ids[i]);
    *nfds = n;
    return SI_OK;
}

// --- the device ---------------------------------------------------------------------------------------

typedef struct iso_dev {
    si_device base;
    char name[64];
    si_helper *h;
    char start_error[SI_ERR_CAP]; /* why the helper could not be started when the proxy was made ("" if it was) */
    si_result refusal;            /* the helper's own refusal (a device that is not there), or SI_OK */
    pthread_mutex_t store_mu;
    store consts;
    pthread_mutex_t sup_mu;       /* the supports_op answers, for one graph */
    const si_graph *sup_g;
    int sup_n;
    uint64_t *sup_fp;
    si_result *sup_st;
    char **sup_msg;
} iso_dev;

/* The graph of a message: the segments it needs (ids, then fds alongside) and its encoding. */
static si_result encode_graph(iso_dev *d, const si_graph *g, si_wbuf *b, int *fds, int *nfds) {
    pthread_mutex_lock(&d->store_mu);
    si_result st = store_add(&d->consts, g);
    if (!st) st = store_refs(&d->consts, g, b, fds, nfds);
    if (!st && !si_graph_encode(b, g, store_place, &d->consts))
        st = b->oom ? si_err(SI_ERR_NO_MEM, "out of memory encoding a graph") : si_err(SI_ERR_INTERNAL, "a constant has no place in shared memory");
    pthread_mutex_unlock(&d->store_mu);
    return st;
}

/* One round trip on a fresh channel of `kind` to incarnation inc: send `type` with payload b and fds, read
 * the answer into b. A failed socket is the helper's death (SI_ERR_DEVICE_LOST naming how). */
static si_result round_trip(iso_dev *d, uint64_t inc, si_channel_kind kind, uint32_t type, si_wbuf *b, const int *fds,
                            int nfds, int timeout_ms, const char *what, int *chan_out, uint32_t *reply_type) {
    int ch;
    si_result st = si_helper_channel(d->h, inc, kind, 0, &ch);
    if (st) return st;
    si_helper_busy(d->h, 1);
    st = si_wire_send(ch, type, b, fds, nfds);
    int rfds[SI_WIRE_MAX_FDS], nr = 0;
    if (!st) st = si_wire_recv(ch, reply_type, b, rfds, &nr, timeout_ms);
    si_helper_busy(d->h, -1);
    si_wire_close_fds(rfds, nr);
    if (st == SI_ERR_ABORTED) si_helper_kill(d->h, inc, "it did not answer in time");
    if (st == SI_ERR_DEVICE_LOST || st == SI_ERR_ABORTED) {
        close(ch);
        return si_helper_lost(d->h, inc, what);
    }
    if (st || !chan_out) close(ch);
    else *chan_out = ch;
    return st;
}

/* The helper broke the protocol: it cannot be trusted any more. */
static si_result protocol_broken(iso_dev *d, uint64_t inc, const char *what) {
    si_helper_kill(d->h, inc, "it sent a malformed answer");
    return si_helper_lost(d->h, inc, what);
}

/* The status, flags and message at the start of a reply; the status returned (message set when not OK). A
 * malformed head breaks the protocol. */
static si_result reply_head(iso_dev *d, uint64_t inc, si_rbuf *r, const char *what) {
    si_result st = si_helper_status(rb_u32(r));
    si_helper_note_flags(d->h, rb_u32(r));
    char msg[SI_ERR_CAP];
    rb_str_into(r, msg, sizeof msg);
    if (r->bad) return protocol_broken(d, inc, what);
    return st ? si_err(st, "%s", msg) : SI_OK;
}

// --- supports_op ----------------------------------------------------------------------------------------

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* What a node's answer may depend on: its op, opset and attributes' count, and the types, shapes and
 * constants of its values. */
static uint64_t node_fp(const si_graph *g, const si_node *n) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, n->op_type, strlen(n->op_type));
    h = fnv(h, n->domain, strlen(n->domain));
    int head[4] = {n->opset, n->n_in, n->n_out, n->n_attr};
    h = fnv(h, head, sizeof head);
    for (int pass = 0; pass < 2; pass++) {
        const int *ids = pass ? n->out : n->in;
        for (int k = 0; k < (pass ? n->n_out : n->n_in); k++) {
            int v = ids[k];
            h = fnv(h, &v, sizeof v);
            if (v < 0 || v >= g->n_values) continue;
            const si_val *val = &g->values[v];
            h = fnv(h, &val->dtype, sizeof val->dtype);
            h = fnv(h, &val->ndim, sizeof val->ndim);
            if (val->ndim > 0) h = fnv(h, val->dims, sizeof(int64_t) * (size_t)val->ndim);
            h = fnv(h, &val->const_val, sizeof val->const_val);
        }
    }
    return h;
}

static void sup_clear(iso_dev *d) {
    for (int i = 0; d->sup_msg && i < d->sup_n; i++) si_free(d->sup_msg[i]);
    SI_FREE_CLEAR(d->sup_msg);
    SI_FREE_CLEAR(d->sup_st);
    SI_FREE_CLEAR(d->sup_fp);
    d->sup_g = NULL;
    d->sup_n = 0;
}

/* Ask the helper about every node of g (with sup_mu held). When it cannot answer, every node is declined with
 * the reason. NO_MEM when the answers cannot be kept. */
static si_result sup_query(iso_dev *d, const si_graph *g) {
    sup_clear(d);
    int nn = g->n_nodes;
    d->sup_fp = si_calloc((size_t)nn + 1, sizeof(uint64_t));
    d->sup_st = si_calloc((size_t)nn + 1, sizeof(si_result));
    d->sup_msg = si_calloc((size_t)nn + 1, sizeof(char *));
    if (!d->sup_fp || !d->sup_st || !d->sup_msg) { sup_clear(d); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    d->sup_g = g;
    d->sup_n = nn;
    for (int i = 0; i < nn; i++) d->sup_fp[i] = node_fp(g, &g->nodes[i]);
    si_result st = SI_OK;
    uint64_t inc = 0;
    si_wbuf b = {0};
    int fds[SI_WIRE_MAX_FDS], nfds = 0;
    if (d->refusal) st = si_err(SI_ERR_UNSUPPORTED, "%s", d->start_error);
    else st = si_helper_ensure(d->h, &inc, NULL);
    if (!st) st = encode_graph(d, g, &b, fds, &nfds);
    uint32_t type = 0;
    if (!st) st = round_trip(d, inc, SI_CH_SUPPORTS, SI_MSG_SUPPORTS, &b, fds, nfds, SI_ISOLATE_START_TIMEOUT_MS, "supports_op", NULL, &type);
    si_rbuf r = rb_make(b.p, b.n);
    if (!st && type != SI_MSG_REPLY) st = protocol_broken(d, inc, "supports_op");
    if (!st) st = reply_head(d, inc, &r, "supports_op");
    if (!st && rb_u32(&r) != (uint32_t)nn) st = protocol_broken(d, inc, "supports_op");
    for (int i = 0; !st && i < nn; i++) {
        d->sup_st[i] = si_helper_status(rb_u32(&r));
        d->sup_msg[i] = rb_str(&r, NULL);
        if (r.bad || (d->sup_st[i] && !d->sup_msg[i])) st = protocol_broken(d, inc, "supports_op");
    }
    wb_free(&b);
    if (st == SI_ERR_NO_MEM) { sup_clear(d); return st; }
    if (st) { /* the device cannot be asked: it declines everything, saying why */
        char why[SI_ERR_CAP];
        snprintf(why, sizeof why, "%s", si_last_error());
        for (int i = 0; i < nn; i++) {
            si_free(d->sup_msg[i]);
            d->sup_st[i] = SI_ERR_UNSUPPORTED;
            d->sup_msg[i] = si_strdup(why);
        }
    }
    return SI_OK;
}

static si_result iso_supports_op(const si_device *d_, const si_graph *g, const si_node *n) {
    iso_dev *d = d_->ctx;
    long idx = n - g->nodes;
    if (idx < 0 || idx >= g->n_nodes) return si_err(SI_ERR_INTERNAL, "supports_op: the node is not in the graph");
    pthread_mutex_lock(&d->sup_mu);
    si_result st = SI_OK;
    uint64_t fp = node_fp(g, n);
    if (d->sup_g != g || d->sup_n != g->n_nodes || d->sup_fp[idx] != fp) st = sup_query(d, g);
    if (!st) {
        st = d->sup_st[idx];
        if (st) si_err(st, "%s", d->sup_msg[idx] ? d->sup_msg[idx] : "declined");
    }
    pthread_mutex_unlock(&d->sup_mu);
    return st;
}

// --- compiled models ------------------------------------------------------------------------------------

typedef struct iso_model {
    si_cmodel base;
    iso_dev *dev;
    uint64_t inc;      /* the helper incarnation that compiled it */
    int chan;          /* its lifeline: closing it frees the helper's model */
    uint64_t id;       /* the helper's model id */
    si_port *in_ports, *out_ports;
    char label[64];
} iso_model;

static const si_cmodel_i iso_model_iface;

static void iso_model_free(si_cmodel *m_) {
    iso_model *m = (iso_model *)m_;
    if (!m) return;
    if (m->chan >= 0) close(m->chan);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

static bool read_ports(si_rbuf *r, si_port **out, int *n_out, int want) {
    uint32_t n = rb_count(r, 1u << 20);
    if (r->bad || (int)n != want) return false;
    si_port *p = si_calloc((size_t)n + 1, sizeof(si_port));
    if (!p) { r->bad = true; return false; }
    *out = p;
    for (uint32_t i = 0; i < n; i++) {
        p[i].name = rb_str(r, NULL);
        rb_shape(r, &p[i].dtype, &p[i].ndim, p[i].dims, true);
        *n_out = (int)i + 1;
        if (r->bad || !p[i].name) return false;
    }
    return true;
}

static si_result iso_compile(si_device *d_, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out) {
    iso_dev *d = d_->ctx;
    const si_options *opts = si_compile_opts(cc);
    *out = NULL;
    if (d->refusal) return si_err(d->refusal, "%s", d->start_error);
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attr; a++)
            if (g->nodes[i].attrs[a].g || g->nodes[i].attrs[a].gs)
                return si_err(SI_ERR_UNSUPPORTED, "%s (isolated): node '%s' (%s) holds a subgraph, which an isolated device does not take yet",
                              d_->name, g->nodes[i].name, g->nodes[i].op_type);
    uint64_t inc;
    si_result st = si_helper_ensure(d->h, &inc, NULL);
    if (st) return st;
    si_wbuf b = {0};
    wb_u32(&b, (uint32_t)(opts ? opts->n : 0));
    for (int i = 0; opts && i < opts->n; i++) {
        wb_str(&b, opts->keys[i]);
        wb_str(&b, opts->values[i]);
    }
    int fds[SI_WIRE_MAX_FDS], nfds = 0, chan = -1;
    st = encode_graph(d, g, &b, fds, &nfds);
    uint32_t type = 0;
    if (!st) {
        si_helper_count(d->h, 0);
        st = round_trip(d, inc, SI_CH_COMPILE, SI_MSG_COMPILE, &b, fds, nfds, -1, "compile", &chan, &type);
    }
    iso_model *m = NULL;
    si_rbuf r = rb_make(b.p, b.n);
    if (!st && type != SI_MSG_REPLY) st = protocol_broken(d, inc, "compile");
    if (!st) st = reply_head(d, inc, &r, "compile");
    if (!st && !(m = si_calloc(1, sizeof *m))) st = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!st) {
        m->chan = chan;
        chan = -1;
        m->dev = d;
        m->inc = inc;
        m->id = rb_u64(&r);
        rb_str_into(&r, m->label, sizeof m->label);
        bool ok = read_ports(&r, &m->in_ports, &m->base.n_inputs, g->n_inputs) &&
                  read_ports(&r, &m->out_ports, &m->base.n_outputs, g->n_outputs);
        if (!ok || r.pos != r.n) st = protocol_broken(d, inc, "compile");
    }
    wb_free(&b);
    if (chan >= 0) close(chan);
    if (st) {
        iso_model_free(m ? &m->base : NULL);
        return st;
    }
    m->base.iface = &iso_model_iface;
    m->base.inputs = m->in_ports;
    m->base.outputs = m->out_ports;
    m->base.device = m->label;
    *out = &m->base;
    return SI_OK;
}

// --- requests -------------------------------------------------------------------------------------------
// The arena: [input 0][input 1]...[outputs, slot 0][outputs, slot 1], each part SI_WIRE_ALIGN aligned. An
// inference writes its outputs into the slot the request does not show; they are shown (published) only when
// it succeeded. When the arena must grow, the old one stays mapped while the shown outputs live in it.

typedef struct iso_req {
    si_ireq base;
    iso_model *m;
    int chan;
    int n_in, n_out;
    si_tensor *in_desc;  /* their types and shapes for this inference (no data) */
    size_t *in_need;
    /* base.outs: the outputs shown, views into the arena (not owned) */
    size_t *in_cap, *out_cap, *in_off, *out_off[2];
    int arena;           /* fd, -1 when none */
    uint8_t *map;
    size_t size;
    bool arena_sent;     /* the helper has this arena */
    uint8_t *old_map;    /* the previous arena, kept while the shown outputs are in it */
    size_t old_size;
    int shown;           /* the slot the shown outputs are in, -1 before the first success */
    bool shown_in_old;
    pthread_mutex_t io_mu; /* the caller's inputs are read under it; cancel takes it */
    bool cancelled;
    si_wbuf msg;         /* reused message buffer */
} iso_req;

static void unmap(uint8_t **p, size_t *n) {
    if (*p) munmap(*p, *n);
    *p = NULL;
    *n = 0;
}

/* Make room: capacities at least in_need/out_need (NULL: keep). A new arena when anything grows. */
static si_result req_room(iso_req *r, const size_t *in_need, const size_t *out_need) {
    bool grow = r->arena < 0;
    for (int i = 0; in_need && i < r->n_in; i++)
        if (in_need[i] > r->in_cap[i]) { r->in_cap[i] = in_need[i]; grow = true; }
    for (int k = 0; out_need && k < r->n_out; k++)
        if (out_need[k] > r->out_cap[k]) { r->out_cap[k] = out_need[k]; grow = true; }
    if (!grow) return SI_OK;
    size_t total = 0;
    for (int i = 0; i < r->n_in && total != SIZE_MAX; i++) {
        r->in_off[i] = total;
        total = si_wire_align(total + r->in_cap[i]);
    }
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < r->n_out && total != SIZE_MAX; k++) {
            r->out_off[s][k] = total;
            total = si_wire_align(total + r->out_cap[k]);
        }
    if (total == SIZE_MAX) return si_err(SI_ERR_NO_MEM, "request buffers too large");
    if (!total) total = SI_WIRE_ALIGN;
    int fd = si_shm_create("arena", total, false);
    if (fd < 0) return SI_ERR_NO_MEM;
    uint8_t *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        si_err(SI_ERR_NO_MEM, "cannot map %zu bytes of shared memory: %s", total, strerror(errno));
        close(fd);
        return SI_ERR_NO_MEM;
    }
    if (r->shown >= 0 && !r->shown_in_old) { /* the shown outputs are in the current arena: keep it mapped */
        unmap(&r->old_map, &r->old_size);
        r->old_map = r->map;
        r->old_size = r->size;
        r->shown_in_old = true;
    } else {
        unmap(&r->map, &r->size);
    }
    if (r->arena >= 0) close(r->arena);
    r->arena = fd;
    r->map = map;
    r->size = total;
    r->arena_sent = false;
    return SI_OK;
}

static void req_free(si_ireq *r_) {
    iso_req *r = (iso_req *)r_;
    if (!r) return;
    if (r->chan >= 0) close(r->chan); /* the helper frees its request */
    unmap(&r->map, &r->size);
    unmap(&r->old_map, &r->old_size);
    if (r->arena >= 0) close(r->arena);
    wb_free(&r->msg);
    SI_FREE_ALL(r->in_desc, r->in_need, r->in_cap, r->out_cap, r->in_off, r->out_off[0], r->out_off[1]);
    pthread_mutex_destroy(&r->io_mu);
    si_ireq_destroy(&r->base);
}

/* The watchdog gave up on an inference: from now on nothing of the caller's is read (inputs are staged under
 * io_mu), and the helper is killed, so the call returns at once as a lost device. */
static void req_cancel(si_ireq *r_) {
    iso_req *r = (iso_req *)r_;
    pthread_mutex_lock(&r->io_mu);
    r->cancelled = true;
    pthread_mutex_unlock(&r->io_mu);
    si_helper_kill(r->m->dev->h, r->m->inc, "a call on it was abandoned (cancel: the watchdog gave up on it)");
}

/* Copy the caller's inputs into the arena, piece by piece under io_mu; false when cancelled meanwhile. */
static bool stage_inputs(iso_req *r) {
    for (int i = 0; i < r->n_in; i++) {
        for (size_t off = 0;; off += STAGE_CHUNK) {
            pthread_mutex_lock(&r->io_mu);
            bool go = !r->cancelled;
            const si_tensor *t = r->base.bound[i];
            size_t total = r->in_desc[i].nbytes;
            size_t n = go && off < total ? SI_MIN(STAGE_CHUNK, total - off) : 0;
            if (n) memcpy(r->map + r->in_off[i] + off, (const uint8_t *)t->data + off, n);
            pthread_mutex_unlock(&r->io_mu);
            if (!go) return false;
            if (!n) break;
        }
    }
    return true;
}

/* Where the outputs go: offset and room per output for slot s. */
static void put_outputs(iso_req *r, si_wbuf *b, int s) {
    wb_u8(b, r->arena_sent ? 0 : 1);
    wb_u32(b, (uint32_t)r->n_out);
    for (int k = 0; k < r->n_out; k++) {
        wb_u64(b, r->out_off[s][k]);
        wb_u64(b, r->out_cap[k]);
    }
}

static si_result send_msg(iso_req *r, uint32_t type) {
    int fd = r->arena;
    si_result st = si_wire_send(r->chan, type, &r->msg, &fd, r->arena_sent ? 0 : 1);
    if (!st) r->arena_sent = true;
    return st;
}

/* The outputs the helper wrote into slot s: check them against the room they had, then show them. */
static si_result publish(iso_req *r, si_rbuf *rd, int s) {
    si_tensor tmp[64], *t = r->n_out <= 64 ? tmp : si_calloc((size_t)r->n_out, sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "out of memory");
    bool ok = rb_u32(rd) == (uint32_t)r->n_out;
    for (int k = 0; ok && k < r->n_out; k++) {
        memset(&t[k], 0, sizeof t[k]);
        rb_shape(rd, &t[k].dtype, &t[k].ndim, t[k].dims, false);
        t[k].nbytes = si_wire_nbytes(t[k].dtype, t[k].ndim, t[k].dims);
        ok = !rd->bad && t[k].nbytes <= r->out_cap[k];
        t[k].data = t[k].nbytes ? r->map + r->out_off[s][k] : NULL;
    }
    if (ok && rd->pos == rd->n) {
        for (int k = 0; k < r->n_out; k++) si_ireq_publish(&r->base, k, &t[k]);
        r->shown = s;
        if (r->shown_in_old) unmap(&r->old_map, &r->old_size);
        r->shown_in_old = false;
    }
    if (t != tmp) si_free(t);
    return ok && rd->pos == rd->n ? SI_OK : protocol_broken(r->m->dev, r->m->inc, "infer");
}

static si_result infer_exchange(iso_req *r, int s);

static si_result req_infer(si_ireq *r_) {
    iso_req *r = (iso_req *)r_;
    iso_model *m = r->m;
    iso_dev *d = m->dev;
    /* what is needed of the caller's tensors is read under io_mu, and never after a cancel */
    pthread_mutex_lock(&r->io_mu);
    si_result st = r->cancelled ? SI_ERR_ABORTED : si_ireq_check_inputs(&r->base);
    for (int i = 0; !st && i < r->n_in; i++) {
        const si_tensor *t = r->base.bound[i];
        r->in_desc[i] = (si_tensor){.dtype = t->dtype, .ndim = t->ndim, .nbytes = t->nbytes};
        memcpy(r->in_desc[i].dims, t->dims, sizeof t->dims);
        r->in_need[i] = t->nbytes;
    }
    pthread_mutex_unlock(&r->io_mu);
    if (st == SI_ERR_ABORTED || !si_helper_alive(d->h, m->inc)) return si_helper_lost(d->h, m->inc, "infer");
    if (st) return st;
    if ((st = req_room(r, r->in_need, NULL))) return st;
    int s = r->shown == 0 ? 1 : 0; /* the slot not shown */
    si_wbuf *b = &r->msg;
    b->n = 0;
    wb_u32(b, (uint32_t)r->n_in);
    for (int i = 0; i < r->n_in; i++) {
        wb_shape(b, r->in_desc[i].dtype, r->in_desc[i].ndim, r->in_desc[i].dims);
        wb_u64(b, r->in_off[i]);
    }
    put_outputs(r, b, s);
    if (!stage_inputs(r)) return si_helper_lost(d->h, m->inc, "infer (cancelled)");
    si_helper_count(d->h, 2);
    si_helper_busy(d->h, 1);
    st = infer_exchange(r, s);
    si_helper_busy(d->h, -1);
    return st;
}

/* Send the inference, read its answer (growing the output room once if asked to). */
static si_result infer_exchange(iso_req *r, int s) {
    iso_model *m = r->m;
    iso_dev *d = m->dev;
    si_wbuf *b = &r->msg;
    si_result st = send_msg(r, SI_MSG_INFER);
    uint32_t type = 0;
    int fds[SI_WIRE_MAX_FDS], nfds = 0;
    for (int round = 0; !st; round++) {
        st = si_wire_recv(r->chan, &type, b, fds, &nfds, -1);
        si_wire_close_fds(fds, nfds);
        if (st) break;
        si_rbuf rd = rb_make(b->p, b->n);
        if (type == SI_MSG_NEED && round == 0) { /* the outputs are larger than their room: grow, fetch */
            size_t tmp[64], *out_need = r->n_out <= 64 ? tmp : si_calloc((size_t)r->n_out, sizeof(size_t));
            if (!out_need) return si_err(SI_ERR_NO_MEM, "out of memory");
            bool ok = rb_u32(&rd) == (uint32_t)r->n_out;
            for (int k = 0; ok && k < r->n_out; k++) {
                uint64_t v = rb_u64(&rd);
                out_need[k] = (size_t)v;
                ok = !rd.bad && v < ((uint64_t)1 << 48);
            }
            st = ok ? req_room(r, NULL, out_need) : protocol_broken(d, m->inc, "infer");
            if (out_need != tmp) si_free(out_need);
            if (st) return st;
            b->n = 0;
            put_outputs(r, b, s);
            st = send_msg(r, SI_MSG_FETCH);
            continue;
        }
        if (type != SI_MSG_REPLY) return protocol_broken(d, m->inc, "infer");
        st = reply_head(d, m->inc, &rd, "infer");
        if (st) return st; /* the device's own failure, as it gave it (INVALID_ARG stays the caller's) */
        return publish(r, &rd, s);
    }
    if (st == SI_ERR_NO_MEM) return st;
    return si_helper_lost(d->h, m->inc, "infer");
}

static si_result iso_req_init(si_ireq *r_) {
    iso_req *r = (iso_req *)r_;
    iso_model *m = (iso_model *)r_->model;
    iso_dev *d = m->dev;
    r->m = m;
    r->chan = -1;
    r->arena = -1;
    r->shown = -1;
    r->n_in = m->base.n_inputs;
    r->n_out = m->base.n_outputs;
    pthread_mutex_init(&r->io_mu, NULL);
    size_t ni = (size_t)r->n_in + 1, no = (size_t)r->n_out + 1;
    r->in_desc = si_calloc(ni, sizeof(si_tensor));
    r->in_need = si_calloc(ni, sizeof(size_t));
    r->in_cap = si_calloc(ni, sizeof(size_t));
    r->in_off = si_calloc(ni, sizeof(size_t));
    r->out_cap = si_calloc(no, sizeof(size_t));
    r->out_off[0] = si_calloc(no, sizeof(size_t));
    r->out_off[1] = si_calloc(no, sizeof(size_t));
    if (!r->in_desc || !r->in_need || !r->in_cap || !r->in_off || !r->out_cap || !r->out_off[0] || !r->out_off[1])
        return si_err(SI_ERR_NO_MEM, "isolated device: out of memory creating a request");
    for (int k = 0; k < r->n_out; k++) {
        const si_port *p = &m->out_ports[k];
        size_t n = si_wire_nbytes(p->dtype, p->ndim, p->dims); /* fixed shape: the room it needs */
        r->out_cap[k] = n == SIZE_MAX ? 0 : n;
    }
    for (int i = 0; i < r->n_in; i++) {
        const si_port *p = &m->in_ports[i];
        size_t n = si_wire_nbytes(p->dtype, p->ndim, p->dims);
        r->in_cap[i] = n == SIZE_MAX ? 0 : n;
    }
    si_result st = si_helper_channel(d->h, m->inc, SI_CH_REQUEST, m->id, &r->chan);
    uint32_t type = 0;
    int fds[SI_WIRE_MAX_FDS], nfds = 0;
    if (!st) {
        si_helper_count(d->h, 1);
        si_helper_busy(d->h, 1);
        st = si_wire_recv(r->chan, &type, &r->msg, fds, &nfds, -1);
        si_helper_busy(d->h, -1);
        si_wire_close_fds(fds, nfds);
        if (st && st != SI_ERR_NO_MEM) st = si_helper_lost(d->h, m->inc, "create_request");
    }
    if (!st) {
        si_rbuf rd = rb_make(r->msg.p, r->msg.n);
        if (type != SI_MSG_REPLY) st = protocol_broken(d, m->inc, "create_request");
        else st = reply_head(d, m->inc, &rd, "create_request");
    }
    return st;
}

static const si_ireq_i iso_req_iface = SI_IREQ_IFACE(.infer = req_infer, .free = req_free, .cancel = req_cancel,
                                                     .size = sizeof(iso_req), .who = "isolated device", .init = iso_req_init);

static si_result iso_create_request(si_cmodel *m_, si_ireq **out) {
    const iso_model *m = (const iso_model *)m_;
    *out = NULL;
    if (!si_helper_alive(m->dev->h, m->inc)) return si_helper_lost(m->dev->h, m->inc, "create_request");
    return si_ireq_create(m_, out);
}

static const si_cmodel_i iso_model_iface = {.create_request = iso_create_request, .request = &iso_req_iface, .free = iso_model_free};

// --- the device -------------------------------------------------------------------------------------------

static const si_device_i iso_iface = {
    .api_version = SI_DEVICE_API_VERSION,
    .supports_op = iso_supports_op,
    .compile = iso_compile,
};

bool si_isolate_is(const si_device *d) { return d && d->iface == &iso_iface; }

void si_isolate_free(si_device *d_);

si_result si_isolate_create(const char *name, const char *faults, si_device **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_isolate_create: out is NULL");
    *out = NULL;
    if (!name) return si_err(SI_ERR_INVALID_ARG, "si_isolate_create: no device name");
    iso_dev *d = si_calloc(1, sizeof *d);
    if (!d) return si_err(SI_ERR_NO_MEM, "out of memory");
    snprintf(d->name, sizeof d->name, "%s", name);
    si_result st = si_helper_new(name, faults, &d->h);
    if (st) { si_free(d); return st; }
    pthread_mutex_init(&d->store_mu, NULL);
    pthread_mutex_init(&d->sup_mu, NULL);
    d->base = (si_device){.iface = &iso_iface, .name = d->name, .ctx = d};
    uint64_t inc;
    si_result refusal = SI_OK;
    if ((st = si_helper_ensure(d->h, &inc, &refusal))) {
        /* the device is not there, or the helper died while opening it: the proxy declines everything, saying
         * why (as an absent device does). No worker program, or one from another build: the caller's error. */
        bool declines = (refusal && refusal != SI_ERR_INVALID_ARG) || (!refusal && st == SI_ERR_DEVICE_LOST);
        if (!declines) {
            si_error e;
            si_error_save(&e, refusal ? refusal : st);
            si_isolate_free(&d->base);
            return si_error_restore(&e);
        }
        snprintf(d->start_error, sizeof d->start_error, "%s", si_last_error());
        d->refusal = SI_ERR_UNSUPPORTED;
        si_err_clear();
    }
    *out = &d->base;
    return SI_OK;
}

void si_isolate_abort_calls(si_device *d_) {
    if (!si_isolate_is(d_)) return;
    iso_dev *d = d_->ctx;
    si_helper_kill_busy(d->h, "the compiled model was freed while a call was still waiting on the helper");
}

void si_isolate_free(si_device *d_) {
    if (!si_isolate_is(d_)) return;
    iso_dev *d = d_->ctx;
    si_helper_free(d->h);
    sup_clear(d);
    store_free(&d->consts);
    pthread_mutex_destroy(&d->sup_mu);
    pthread_mutex_destroy(&d->store_mu);
    si_free(d);
}
