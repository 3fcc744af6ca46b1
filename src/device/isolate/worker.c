/*
 * worker.c — safeinfer-worker, the helper process of an isolated device (see isolate.h). Built from the
 * library's sources into its own program; the library starts it with its control socket as fd 3.
 *
 * The main thread reads the control socket: HELLO (which device to host, the fault spec) and then new
 * channels, each served by a thread of its own until the library closes it: a supports question, a compiled
 * model (closing its channel frees it once its requests are gone), or a request (create, then inferences).
 * Tensors are read from and written to the request's arena, shared memory the library made; constants are
 * views into the segments the library sent, mapped private and kept for the life of the process.
 *
 * It ends when the control socket reaches end of file (the library stopped it, or the library's process
 * died and the kernel closed its sockets) and when its parent changes (checked every second). A clean end
 * frees everything, so a sanitizer build reports leaks; an end with calls still running (a device stuck in a
 * call) is immediate (_exit).
 */
#include "device/faulty/faulty.h"
#include "device/isolate/wire.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/thread.h"

typedef struct seg {
    uint32_t id;
    uint8_t *base;
    size_t size;
} seg;

typedef struct wmodel {
    uint64_t id;
    si_cmodel *cm;
    int refs; /* under W.mu: its channel and each request */
    struct wmodel *next;
} wmodel;

static struct {
    si_device *dev;     /* what is compiled on: the device, or its fault wrapper */
    si_device *wrapper; /* the fault wrapper, or NULL */
    pthread_mutex_t mu; /* what follows */
    pthread_cond_t cv;  /* live reaches 0 */
    seg *segs;
    int n_segs, cap_segs;
    wmodel *models;
    uint64_t next_id;
    int live; /* channel threads running */
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

// --- replies --------------------------------------------------------------------------------------------

static uint32_t flags(void) { return si_faulty_is_lost(W.wrapper) ? SI_REPLY_FAULT_LOST : 0; }

/* Start a reply: status, flags, the message when it failed. */
static void reply_head(si_wbuf *b, si_result st) {
    b->n = 0;
    b->oom = false;
    wb_u32(b, (uint32_t)st);
    wb_u32(b, flags());
    wb_str(b, st ? si_last_error() : "");
}

static bool send_reply(int ch, si_wbuf *b, si_result st) {
    if (b->oom) { /* the answer did not fit in memory: say so instead */
        si_err(SI_ERR_NO_MEM, "the helper process ran out of memory for its answer");
        reply_head(b, SI_ERR_NO_MEM);
    }
    (void)st;
    return si_wire_send(ch, SI_MSG_REPLY, b, NULL, 0) == SI_OK;
}

static bool fail(int ch, si_wbuf *b, si_result st) {
    reply_head(b, st);
    return send_reply(ch, b, st);
}

// --- shared-memory segments -------------------------------------------------------------------------------

static const uint8_t *seg_map(void *user, uint32_t id, size_t *size) {
    (void)user;
    const uint8_t *base = NULL;
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < W.n_segs; i++)
        if (W.segs[i].id == id) {
            base = W.segs[i].base;
            *size = W.segs[i].size;
        }
    pthread_mutex_unlock(&W.mu);
    return base;
}

/* The segment ids at the head of a message, one per fd that came with it: map the ones not known yet. */
static si_result take_segments(si_rbuf *r, int *fds, int nfds) {
    uint32_t n = rb_count(r, SI_WIRE_MAX_FDS);
    if (r->bad || (int)n != nfds) return si_err(SI_ERR_PARSE, "malformed segment list (%u ids, %d fds)", n, nfds);
    si_result st = SI_OK;
    for (uint32_t i = 0; i < n && !st; i++) {
        uint32_t id = rb_u32(r);
        size_t size;
        if (seg_map(NULL, id, &size)) continue;
        long long sz = si_shm_size(fds[i]);
        if (sz <= 0) { st = si_err(SI_ERR_PARSE, "shared-memory segment %u has no size", id); break; }
        /* private: a device that wrote into a constant would write into its own copy of the page */
        void *p = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fds[i], 0);
        if (p == MAP_FAILED) { st = si_err(SI_ERR_NO_MEM, "cannot map segment %u: %s", id, strerror(errno)); break; }
        pthread_mutex_lock(&W.mu);
        if (W.n_segs == W.cap_segs) {
            int cap = W.cap_segs ? 2 * W.cap_segs : 8;
            seg *q = si_realloc(W.segs, sizeof *q * (size_t)cap);
            if (q) { W.segs = q; W.cap_segs = cap; }
        }
        if (W.n_segs < W.cap_segs) W.segs[W.n_segs++] = (seg){.id = id, .base = p, .size = (size_t)sz};
        else { munmap(p, (size_t)sz); st = si_err(SI_ERR_NO_MEM, "out of memory"); }
        pthread_mutex_unlock(&W.mu);
    }
    si_wire_close_fds(fds, nfds);
    return st;
}

// --- models -----------------------------------------------------------------------------------------------

static void model_unref(wmodel *m) {
    pthread_mutex_lock(&W.mu);
    bool last = --m->refs == 0;
    if (last)
        for (wmodel **p = &W.models; *p; p = &(*p)->next)
            if (*p == m) { *p = m->next; break; }
    pthread_mutex_unlock(&W.mu);
    if (!last) return;
    m->cm->iface->free(m->cm);
    si_free(m);
}

static wmodel *model_find(uint64_t id) {
    pthread_mutex_lock(&W.mu);
    wmodel *m = W.models;
    while (m && m->id != id) m = m->next;
    if (m) m->refs++;
    pthread_mutex_unlock(&W.mu);
    return m;
}

static void put_ports(si_wbuf *b, const si_port *p, int n) {
    wb_u32(b, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        wb_str(b, p[i].name);
        wb_shape(b, p[i].dtype, p[i].ndim, p[i].dims);
    }
}

// --- channels -----------------------------------------------------------------------------------------------

typedef struct channel {
    int fd;
    si_channel_kind kind;
    uint64_t model_id;
    si_wbuf b;
    int fds[SI_WIRE_MAX_FDS], nfds;
} channel;

static si_result recv_msg(channel *c, uint32_t *type) {
    return si_wire_recv(c->fd, type, &c->b, c->fds, &c->nfds, -1);
}

static void serve_supports(channel *c) {
    uint32_t type;
    if (recv_msg(c, &type) || type != SI_MSG_SUPPORTS) return;
    si_rbuf r = rb_make(c->b.p, c->b.n);
    si_graph *g = NULL;
    si_result st = take_segments(&r, c->fds, c->nfds);
    if (!st) st = si_graph_decode(&r, seg_map, NULL, &g);
    if (st) { fail(c->fd, &c->b, st); return; }
    si_wbuf out = {0};
    reply_head(&out, SI_OK);
    wb_u32(&out, (uint32_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        si_err_clear();
        si_result s = W.dev->iface->supports_op(W.dev, g, &g->nodes[i]);
        wb_u32(&out, (uint32_t)s);
        wb_str(&out, s ? si_last_error() : NULL);
    }
    send_reply(c->fd, &out, SI_OK);
    wb_free(&out);
    si_graph_free(g);
}

static void serve_compile(channel *c) {
    uint32_t type;
    if (recv_msg(c, &type) || type != SI_MSG_COMPILE) return;
    si_rbuf r = rb_make(c->b.p, c->b.n);
    uint32_t nopt = rb_count(&r, 4096);
    char **kv = si_calloc(2 * (size_t)nopt + 2, sizeof(char *));
    si_result st = kv ? SI_OK : si_err(SI_ERR_NO_MEM, "out of memory");
    for (uint32_t i = 0; !st && i < 2 * nopt; i++)
        if (!(kv[i] = rb_str(&r, NULL))) st = si_err(SI_ERR_PARSE, "malformed compile options");
    si_graph *g = NULL;
    if (!st) st = take_segments(&r, c->fds, c->nfds);
    else si_wire_close_fds(c->fds, c->nfds);
    if (!st) st = si_graph_decode(&r, seg_map, NULL, &g);
    const char **keys = kv ? si_calloc((size_t)nopt + 1, sizeof(char *)) : NULL, **vals = kv ? si_calloc((size_t)nopt + 1, sizeof(char *)) : NULL;
    if (!st && (!keys || !vals)) st = si_err(SI_ERR_NO_MEM, "out of memory");
    for (uint32_t i = 0; !st && i < nopt; i++) {
        keys[i] = kv[2 * i];
        vals[i] = kv[2 * i + 1];
    }
    si_options opts = {.n = (int)nopt, .keys = keys, .values = vals};
    si_cmodel *cm = NULL;
    si_compile_ctx cc = {.opts = &opts};
    if (!st) st = W.dev->iface->compile(W.dev, g, &cc, &cm);
    si_graph_free(g);
    for (uint32_t i = 0; kv && i < 2 * nopt; i++) si_free(kv[i]);
    si_free(kv);
    si_free(keys);
    si_free(vals);
    wmodel *m = NULL;
    if (!st && !(m = si_calloc(1, sizeof *m))) {
        cm->iface->free(cm);
        st = si_err(SI_ERR_NO_MEM, "out of memory");
    }
    if (st) { fail(c->fd, &c->b, st); return; }
    m->cm = cm;
    m->refs = 1;
    pthread_mutex_lock(&W.mu);
    m->id = ++W.next_id;
    m->next = W.models;
    W.models = m;
    pthread_mutex_unlock(&W.mu);
    si_wbuf out = {0};
    reply_head(&out, SI_OK);
    wb_u64(&out, m->id);
    wb_str(&out, cm->device ? cm->device : "");
    put_ports(&out, cm->inputs, cm->n_inputs);
    put_ports(&out, cm->outputs, cm->n_outputs);
    bool sent = send_reply(c->fd, &out, SI_OK);
    wb_free(&out);
    while (sent && !recv_msg(c, &type)) si_wire_close_fds(c->fds, c->nfds); /* nothing is expected: wait for the end */
    model_unref(m);
}

/* A request's state in the helper. */
typedef struct wreq {
    si_ireq *rq;
    int n_in, n_out;
    si_tensor *in;     /* views into the arena, bound to rq */
    uint64_t *in_off, *out_off, *out_cap;
    si_tensor **out;
    uint8_t *arena;
    size_t size;
} wreq;

static si_result take_arena(wreq *q, si_rbuf *r, int *fds, int nfds) {
    bool has = rb_u8(r);
    if (r->bad || (int)has != nfds) {
        si_wire_close_fds(fds, nfds);
        return si_err(SI_ERR_PARSE, "malformed arena");
    }
    if (!has) return q->arena ? SI_OK : si_err(SI_ERR_PARSE, "no arena");
    long long sz = si_shm_size(fds[0]);
    void *p = sz > 0 ? mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0) : MAP_FAILED;
    si_wire_close_fds(fds, nfds);
    if (p == MAP_FAILED) return si_err(SI_ERR_NO_MEM, "cannot map the request's shared memory: %s", strerror(errno));
    if (q->arena) munmap(q->arena, q->size);
    q->arena = p;
    q->size = (size_t)sz;
    return SI_OK;
}

static bool in_arena(const wreq *q, uint64_t off, uint64_t n) { return off <= q->size && n <= q->size - off && off % SI_WIRE_ALIGN == 0; }

/* The outputs into the slot the message names: NEED when one does not fit (the results stay in rq). */
static bool put_outputs(channel *c, wreq *q, si_rbuf *r) {
    uint32_t n = rb_count(r, 1u << 20);
    si_result st = r->bad || (int)n != q->n_out ? si_err(SI_ERR_PARSE, "malformed outputs") : SI_OK;
    si_wbuf *b = &c->b;
    uint64_t *off = q->out_off, *cap = q->out_cap;
    si_tensor **t = q->out;
    bool fits = true;
    for (uint32_t k = 0; !st && k < n; k++) {
        off[k] = rb_u64(r);
        cap[k] = rb_u64(r);
        if (r->bad || !in_arena(q, off[k], cap[k])) st = si_err(SI_ERR_PARSE, "output %u outside the shared memory", k);
        else if (!(st = q->rq->iface->get_output(q->rq, (int)k, &t[k])) && t[k]->nbytes > cap[k]) fits = false;
    }
    if (st) return fail(c->fd, b, st);
    if (!fits) {
        b->n = 0;
        wb_u32(b, n);
        for (uint32_t k = 0; k < n; k++) wb_u64(b, t[k]->nbytes);
        return si_wire_send(c->fd, SI_MSG_NEED, b, NULL, 0) == SI_OK;
    }
    for (uint32_t k = 0; k < n; k++)
        if (t[k]->nbytes) memcpy(q->arena + off[k], t[k]->data, t[k]->nbytes);
    reply_head(b, SI_OK);
    wb_u32(b, n);
    for (uint32_t k = 0; k < n; k++) wb_shape(b, t[k]->dtype, t[k]->ndim, t[k]->dims);
    return send_reply(c->fd, b, SI_OK);
}

static bool serve_infer(channel *c, wreq *q) {
    si_rbuf r = rb_make(c->b.p, c->b.n);
    uint32_t n = rb_count(&r, 1u << 20);
    si_result st = r.bad || (int)n != q->n_in ? si_err(SI_ERR_PARSE, "malformed inputs") : SI_OK;
    uint64_t *offs = q->in_off;
    for (uint32_t i = 0; !st && i < n; i++) {
        si_tensor *t = &q->in[i];
        memset(t, 0, sizeof *t);
        rb_shape(&r, &t->dtype, &t->ndim, t->dims, false);
        offs[i] = rb_u64(&r);
        t->nbytes = si_wire_nbytes(t->dtype, t->ndim, t->dims);
        if (r.bad || t->nbytes == SIZE_MAX) st = si_err(SI_ERR_PARSE, "malformed input %u", i);
    }
    /* the arena first (it may be new), then where the inputs are in it */
    if (!st) st = take_arena(q, &r, c->fds, c->nfds);
    else si_wire_close_fds(c->fds, c->nfds);
    for (uint32_t i = 0; !st && i < n; i++) {
        si_tensor *t = &q->in[i];
        if (!in_arena(q, offs[i], t->nbytes)) st = si_err(SI_ERR_PARSE, "input %u outside the shared memory", i);
        t->data = t->nbytes ? q->arena + offs[i] : NULL;
        if (!st) st = q->rq->iface->set_input(q->rq, (int)i, t);
    }
    if (!st) st = q->rq->iface->infer(q->rq);
    if (st) return fail(c->fd, &c->b, st);
    return put_outputs(c, q, &r);
}

static bool serve_fetch(channel *c, wreq *q) {
    si_rbuf r = rb_make(c->b.p, c->b.n);
    si_result st = take_arena(q, &r, c->fds, c->nfds);
    if (st) return fail(c->fd, &c->b, st);
    return put_outputs(c, q, &r);
}

static void serve_request(channel *c) {
    wmodel *m = model_find(c->model_id);
    wreq q = {0};
    si_result st = m ? SI_OK : si_err(SI_ERR_INTERNAL, "no model %llu in the helper process", (unsigned long long)c->model_id);
    if (!st) st = m->cm->iface->create_request(m->cm, &q.rq);
    if (!st) {
        q.n_in = m->cm->n_inputs;
        q.n_out = m->cm->n_outputs;
        size_t ni = (size_t)q.n_in + 1, no = (size_t)q.n_out + 1;
        q.in = si_calloc(ni, sizeof(si_tensor));
        q.in_off = si_calloc(ni, sizeof(uint64_t));
        q.out_off = si_calloc(no, sizeof(uint64_t));
        q.out_cap = si_calloc(no, sizeof(uint64_t));
        q.out = si_calloc(no, sizeof(si_tensor *));
        if (!q.in || !q.in_off || !q.out_off || !q.out_cap || !q.out) st = si_err(SI_ERR_NO_MEM, "out of memory");
    }
    reply_head(&c->b, st);
    bool ok = send_reply(c->fd, &c->b, st) && !st;
    uint32_t type;
    while (ok && !recv_msg(c, &type)) {
        if (type == SI_MSG_INFER) ok = serve_infer(c, &q);
        else if (type == SI_MSG_FETCH) ok = serve_fetch(c, &q);
        else ok = false; /* not ours to answer: the library sees the channel close */
    }
    if (q.rq) q.rq->iface->free(q.rq);
    if (q.arena) munmap(q.arena, q.size);
    SI_FREE_ALL(q.in, q.in_off, q.out_off, q.out_cap, q.out);
    if (m) model_unref(m);
}

static void *channel_main(void *arg) {
    channel *c = arg;
    switch (c->kind) {
    case SI_CH_SUPPORTS: serve_supports(c); break;
    case SI_CH_COMPILE: serve_compile(c); break;
    case SI_CH_REQUEST: serve_request(c); break;
    }
    si_wire_close_fds(c->fds, c->nfds);
    close(c->fd);
    wb_free(&c->b);
    si_free(c);
    pthread_mutex_lock(&W.mu);
    if (--W.live == 0) pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

// --- the control socket -----------------------------------------------------------------------------------

/* HELLO: check that we speak the library's protocol, open the device, set up fault injection. */
static si_fault_spec *g_spec;

static si_result hello(int ctl) {
    si_wbuf b = {0};
    uint32_t type;
    int fds[SI_WIRE_MAX_FDS], nfds;
    si_result st = si_wire_recv(ctl, &type, &b, fds, &nfds, 60000);
    if (st) { wb_free(&b); return st; }
    si_wire_close_fds(fds, nfds);
    si_rbuf r = rb_make(b.p, b.n);
    uint32_t proto = rb_u32(&r);
    char version[64], device[64];
    rb_str_into(&r, version, sizeof version);
    rb_str_into(&r, device, sizeof device);
    char *faults = rb_str(&r, NULL);
    int64_t calls[SI_FAULT_STAGES];
    for (int i = 0; i < SI_FAULT_STAGES; i++) calls[i] = rb_i64(&r);
    bool lost = rb_u8(&r);
    if (type != SI_MSG_HELLO || r.bad) st = si_err(SI_ERR_INVALID_ARG, "malformed HELLO");
    else if (proto != SI_WIRE_PROTOCOL || strcmp(version, SI_VERSION_STRING))
        st = si_err(SI_ERR_UNSUPPORTED, "the helper program is safeinfer %s (protocol %d), the library %s (protocol %u): they must come from the same build",
                    SI_VERSION_STRING, SI_WIRE_PROTOCOL, version, proto);
    si_device *d = NULL;
    if (!st) st = si_device_get(device, &d);
    if (!st && faults && *faults) {
        if (!(st = si_fault_spec_parse(faults, &g_spec)) && si_fault_spec_mentions(g_spec, device) &&
            !(st = si_faulty_wrap(d, g_spec, &W.wrapper))) {
            si_faulty_resume(W.wrapper, calls, lost);
            d = W.wrapper;
        }
    }
    si_free(faults);
    W.dev = d;
    reply_head(&b, st);
    si_wire_send(ctl, SI_MSG_REPLY, &b, NULL, 0);
    wb_free(&b);
    return st;
}

static void new_channel(int ctl) {
    si_wbuf b = {0};
    uint32_t type;
    int fds[SI_WIRE_MAX_FDS], nfds;
    si_result st = si_wire_recv(ctl, &type, &b, fds, &nfds, 10000);
    if (st == SI_ERR_DEVICE_LOST || st == SI_ERR_ABORTED) { /* the library is gone (or broken): end */
        wb_free(&b);
        return;
    }
    si_rbuf r = rb_make(b.p, b.n);
    uint32_t kind = rb_u32(&r);
    uint64_t model = rb_u64(&r);
    wb_free(&b);
    channel *c = !st && type == SI_MSG_CHANNEL && !r.bad && nfds == 1 && kind >= SI_CH_SUPPORTS && kind <= SI_CH_REQUEST
                     ? si_calloc(1, sizeof *c) : NULL;
    if (!c) { si_wire_close_fds(fds, nfds); return; } /* the library sees the channel close: lost */
    *c = (channel){.fd = fds[0], .kind = (si_channel_kind)kind, .model_id = model};
    pthread_mutex_lock(&W.mu);
    W.live++;
    pthread_mutex_unlock(&W.mu);
    if (si_thread_detached(channel_main, c)) {
        close(c->fd);
        si_free(c);
        pthread_mutex_lock(&W.mu);
        W.live--;
        pthread_mutex_unlock(&W.mu);
    }
}

int main(int argc, char **argv) {
    int ctl = 3;
    if (argc == 3 && !strcmp(argv[1], "--fd")) ctl = atoi(argv[2]);
    if (argc != 3 || ctl < 0) {
        fprintf(stderr, "safeinfer-worker: the helper process of an isolated safeinfer device (isolate=DEVICE); it "
                        "is started by the library, not by hand\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "safeinfer-worke");
    pid_t parent = getppid();
    si_cond_init(&W.cv);
    if (hello(ctl)) return 1;
    for (;;) {
        struct pollfd pf = {.fd = ctl, .events = POLLIN};
        int rc = poll(&pf, 1, 1000);
        if (getppid() != parent) _exit(0); /* the library's process is gone */
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) break;
        if (rc == 0) continue;
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            char peek;
            if (recv(ctl, &peek, 1, MSG_PEEK) <= 0) break; /* end of file: stop */
            new_channel(ctl);
        }
    }
    /* stop: cleanly when every channel has ended (soon after the library closed them), else at once */
    pthread_mutex_lock(&W.mu);
    struct timespec dl = si_deadline_ms(2000);
    while (W.live > 0 && !si_cond_wait_until(&W.cv, &W.mu, &dl)) {}
    bool idle = W.live == 0;
    pthread_mutex_unlock(&W.mu);
    if (!idle) _exit(0);
    for (int i = 0; i < W.n_segs; i++) munmap(W.segs[i].base, W.segs[i].size);
    si_free(W.segs);
    si_faulty_free(W.wrapper);
    si_fault_spec_free(g_spec);
    close(ctl);
    return 0;
}
