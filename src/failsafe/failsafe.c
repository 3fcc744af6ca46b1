/*
 * failsafe.c — the fail-safe compiled model (see failsafe.h).
 *
 * Generations: each activation of a compiled model (first compile, failover, fail-back) is a new generation
 * `fs_gen` holding the device's compiled model and a reference count (the model's active slot, every request
 * whose inner request was made from it, and abandoned calls still running on it). A request remembers the
 * generation of its inner request; when the model's active generation differs, the inner request is
 * re-created from the active one before the next inference.
 *
 * Background work (standby compile, fail-back probes) runs on detached threads counted in `bg_running`;
 * freeing the model stops them and waits for them. Calls abandoned by the watchdog run on detached threads
 * that own what they use and release it when the call returns.
 */
#include "failsafe/failsafe.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

// --- generations ------------------------------------------------------------------------------------------

typedef struct fs_gen {
    si_cmodel *cm;
    int pos;          /* candidate position */
    _Atomic int refs; /* extra references; 0 = one owner */
    si_ireq *spare;   /* a request made and warmed up in the background (standby), taken by the first
                       * request that joins this generation; guarded by the model's mutex */
} fs_gen;

static fs_gen *gen_ref(fs_gen *g) {
    if (g) atomic_fetch_add(&g->refs, 1);
    return g;
}

static void gen_unref(fs_gen *g) {
    if (!g || atomic_fetch_sub(&g->refs, 1) != 0) return;
    if (g->spare) g->spare->iface->free(g->spare);
    g->cm->iface->free(g->cm);
    si_free(g);
}

// --- the model --------------------------------------------------------------------------------------------

typedef struct fs_model {
    si_cmodel base;
    int submodel;
    int n;           /* candidates */
    int *cand;       /* device index per candidate position */
    si_factory_fn factory;
    void *user;
    si_failsafe_policy pol;
    si_sink *sink;
    char *device_desc;
    si_port *in_ports, *out_ports;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    fs_gen *active;  /* NULL when every candidate has failed */
    fs_gen *standby; /* compiled ahead for a later position, or NULL */
    int standby_busy_pos; /* position being compiled in the background, -1 when none */
    bool failback_running;
    bool ready;      /* ports are known: background work may start */
    bool stopping;
    int bg_running;
    char **fail_msg; /* per position: the last failure, for the all-failed message */
    si_tensor *probe_in; /* per input: the last shapes that ran (descriptors), for fail-back probes */
    bool have_probe_shapes;
} fs_model;

static const char *dev_name(const fs_model *m, int pos) {
    int d = m->cand[pos];
    return d >= 0 && d < m->sink->n_devices ? m->sink->device_names[d] : "?";
}

static bool quarantined(const fs_model *m, int pos) { return atomic_load(&m->sink->quarantined[m->cand[pos] & 63]); }

static void note_failure(fs_model *m, int pos, const char *stage, si_result st, const char *msg) {
    char buf[1200];
    snprintf(buf, sizeof buf, "%s failed (%s): %s", stage, si_result_str(st), msg);
    si_free(m->fail_msg[pos]);
    m->fail_msg[pos] = si_strdup(buf);
}


/* A device call handed to a thread so that a watchdog can give up on it. An abandoned job owns what its
 * call uses (the inner request, a generation, a reference on the sink) and releases it when the call returns. */
typedef enum { JOB_COMPILE, JOB_CREATE, JOB_INFER } job_kind;

typedef struct fs_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_kind kind;
    si_factory_fn factory; /* compile */
    void *user;
    int device;
    fs_gen *gen;           /* create, infer: the generation the call runs on (a reference once abandoned) */
    si_ireq *inner;        /* infer: the request; create: the result */
    si_cmodel *cm;         /* compile: the result */
    si_budget *budget;     /* the caller's memory budget (util.h): the call on the thread charges it too */
    si_sink *sink;
    bool done, abandoned;
    si_result st;
    char msg[1024];
} fs_job;

static void job_free(fs_job *j) {
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    si_free(j);
}

static void *job_main(void *arg) {
    fs_job *j = arg;
    si_result st = SI_OK;
    si_cmodel *cm = NULL;
    si_ireq *made = NULL;
    si_budget *prev = si_budget_enter(j->budget);
    switch (j->kind) {
    case JOB_COMPILE: st = j->factory(j->user, j->device, &cm); break;
    case JOB_CREATE: st = j->gen->cm->iface->create_request(j->gen->cm, &made); break;
    case JOB_INFER: st = j->inner->iface->infer(j->inner); break;
    }
    si_budget_leave(prev);
    pthread_mutex_lock(&j->mu);
    j->st = st;
    snprintf(j->msg, sizeof j->msg, "%s", st ? si_last_error() : "");
    if (j->kind == JOB_COMPILE) j->cm = cm;
    if (j->kind == JOB_CREATE) j->inner = made;
    j->done = true;
    bool abandoned = j->abandoned;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (abandoned) { /* nobody waits any more: reclaim what the call used */
        if (j->cm) j->cm->iface->free(j->cm);
        if (j->inner) j->inner->iface->free(j->inner);
        gen_unref(j->gen);
        atomic_fetch_sub(&j->sink->outstanding, 1);
        si_sink_unref(j->sink);
        job_free(j);
    }
    return NULL;
}

/* Run j's call on a thread and wait up to timeout_ms. SI_OK/the call's status when it returned in time
 * (results in j, which the caller frees with job_free); when it did not, the job is abandoned (the caller
 * must no longer touch j, nor what it handed to it), *timed_out is set and SI_ERR_DEVICE returned. */
static si_result run_job(fs_model *m, fs_job *j, int timeout_ms, bool *timed_out, const char *what) {
    *timed_out = false;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    j->budget = si_budget_current();
    int rc = pthread_create(&t, &a, job_main, j);
    pthread_attr_destroy(&a);
    if (rc != 0) { /* no thread: run the call here, unguarded */
        j->abandoned = false;
        job_main(j);
        return j->st ? si_err(j->st, "%s", j->msg) : SI_OK;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long ns = dl.tv_nsec + (long)(timeout_ms % 1000) * 1000000L;
    dl.tv_sec += timeout_ms / 1000 + ns / 1000000000L;
    dl.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&j->mu);
    while (!j->done && pthread_cond_timedwait(&j->cv, &j->mu, &dl) != ETIMEDOUT) {}
    if (j->done) {
        pthread_mutex_unlock(&j->mu);
        return j->st ? si_err(j->st, "%s", j->msg) : SI_OK;
    }
    /* give up; under j->mu the call cannot complete, so what it uses is still alive here */
    if (j->kind == JOB_INFER && j->inner->iface->cancel) j->inner->iface->cancel(j->inner);
    if (j->gen) gen_ref(j->gen);
    j->sink = si_sink_ref(m->sink);
    atomic_fetch_add(&m->sink->outstanding, 1);
    j->abandoned = true;
    pthread_mutex_unlock(&j->mu);
    *timed_out = true;
    return si_err(SI_ERR_DEVICE, "%s did not return within %d ms (abandoned)", what, timeout_ms);
}

/* Compile candidate `pos` (no lock needed; the factory must be thread-safe). */
static si_result compile_at(fs_model *m, int pos, fs_gen **out) {
    *out = NULL;
    si_cmodel *cm = NULL;
    si_result st;
    if (m->pol.compile_timeout_ms > 0) {
        fs_job *j = si_calloc(1, sizeof *j);
        bool timed_out = false;
        if (!j) return si_err(SI_ERR_NO_MEM, "out of memory");
        *j = (fs_job){.kind = JOB_COMPILE, .factory = m->factory, .user = m->user, .device = m->cand[pos]};
        st = run_job(m, j, m->pol.compile_timeout_ms, &timed_out, "compile");
        if (!timed_out) {
            cm = j->cm;
            job_free(j);
        } else if (!atomic_exchange(&m->sink->quarantined[m->cand[pos] & 63], true)) {
            si_sink_event(m->sink, SI_EVENT_QUARANTINE, m->submodel, m->cand[pos], -1, "compile", st,
                          "device %s quarantined: %s", dev_name(m, pos), si_last_error());
        }
    } else {
        st = m->factory(m->user, m->cand[pos], &cm);
    }
    if (!st && !cm) st = si_err(SI_ERR_INTERNAL, "the factory returned no compiled model for device %s", dev_name(m, pos));
    if (!st && m->in_ports && (cm->n_inputs != m->base.n_inputs || cm->n_outputs != m->base.n_outputs)) {
        st = si_err(SI_ERR_INTERNAL, "device %s compiled %d inputs/%d outputs, expected %d/%d", dev_name(m, pos),
                    cm->n_inputs, cm->n_outputs, m->base.n_inputs, m->base.n_outputs);
        cm->iface->free(cm);
    }
    const char *msg = st ? si_last_error() : "ok";
    si_sink_attempt(m->sink, m->submodel, m->cand[pos], "compile", st, msg);
    si_sink_event(m->sink, SI_EVENT_COMPILE, m->submodel, -1, m->cand[pos], "compile", st, "%s", msg);
    if (st) return st;
    fs_gen *g = si_calloc(1, sizeof *g);
    if (!g) { cm->iface->free(cm); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    g->cm = cm;
    g->pos = pos;
    *out = g;
    return SI_OK;
}

static si_result all_failed_error(fs_model *m) {
    char buf[4096];
    size_t o = (size_t)snprintf(buf, sizeof buf, "submodel %d: every device failed", m->submodel);
    for (int p = 0; p < m->n && o < sizeof buf; p++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "; %s: %s", dev_name(m, p),
                              m->fail_msg[p] ? m->fail_msg[p] : quarantined(m, p) ? "lost (quarantined)" : "not tried");
    return si_err(SI_ERR_DEVICE, "%s", buf);
}

static void *standby_main(void *arg);
static void *failback_main(void *arg);

static void start_bg(fs_model *m, void *(*fn)(void *)) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    m->bg_running++;
    if (pthread_create(&t, &a, fn, m) != 0) m->bg_running--; /* no thread: the policy is skipped */
    pthread_attr_destroy(&a);
}

/* With m->mu held: compile the next usable candidate after the active one in the background. */
static void maybe_start_standby(fs_model *m) {
    if (!m->pol.standby || !m->ready || m->stopping || !m->active || m->standby || m->standby_busy_pos >= 0) return;
    for (int p = m->active->pos + 1; p < m->n; p++) {
        if (quarantined(m, p)) continue;
        m->standby_busy_pos = p;
        start_bg(m, standby_main);
        if (m->bg_running == 0) m->standby_busy_pos = -1;
        return;
    }
}

static void maybe_start_failback(fs_model *m) {
    if (m->pol.failback_ms <= 0 || !m->ready || m->stopping || m->failback_running) return;
    if (m->active && m->active->pos == 0) return;
    m->failback_running = true;
    int before = m->bg_running;
    start_bg(m, failback_main);
    if (m->bg_running == before) m->failback_running = false;
}

/* With m->mu held: make the first usable candidate from `from` on active. */
static void activate_from(fs_model *m, int from, int failed_pos, const char *stage, si_result why, const char *why_msg) {
    for (int p = from; p < m->n && !m->stopping; p++) {
        if (quarantined(m, p)) {
            if (!m->fail_msg[p]) note_failure(m, p, "quarantine", SI_ERR_DEVICE_LOST, "device lost");
            continue;
        }
        while (m->standby_busy_pos == p) pthread_cond_wait(&m->cv, &m->mu); /* its compile is under way */
        fs_gen *g = NULL;
        if (m->standby && m->standby->pos == p) {
            g = m->standby;
            m->standby = NULL;
        } else {
            if (m->standby && m->standby->pos < p) { gen_unref(m->standby); m->standby = NULL; }
            si_result st = compile_at(m, p, &g);
            if (st) { note_failure(m, p, "compile", st, si_last_error()); continue; }
        }
        m->active = g;
        if (failed_pos >= 0)
            si_sink_event(m->sink, SI_EVENT_FAILOVER, m->submodel, m->cand[failed_pos], m->cand[p], stage, why,
                          "submodel %d moved from %s to %s: %s", m->submodel, dev_name(m, failed_pos), dev_name(m, p), why_msg);
        maybe_start_standby(m);
        if (failed_pos >= 0) maybe_start_failback(m);
        return;
    }
    if (!m->stopping) {
        all_failed_error(m);
        si_sink_event(m->sink, SI_EVENT_ALL_FAILED, m->submodel, failed_pos >= 0 ? m->cand[failed_pos] : -1, -1, "",
                      SI_ERR_DEVICE, "%s", si_last_error());
        maybe_start_failback(m);
    }
}

/* The generation g failed at `stage`: move the model on from g, unless another request already did. */
static void failover_from(fs_model *m, fs_gen *g, const char *stage, si_result st, const char *msg, bool lost) {
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", msg);
    pthread_mutex_lock(&m->mu);
    if (m->active == g && g) {
        int pos = g->pos;
        note_failure(m, pos, stage, st, copy);
        si_sink_attempt(m->sink, m->submodel, m->cand[pos], stage, st, copy);
        if (lost && !atomic_exchange(&m->sink->quarantined[m->cand[pos] & 63], true))
            si_sink_event(m->sink, SI_EVENT_QUARANTINE, m->submodel, m->cand[pos], -1, stage, st,
                          "device %s quarantined: %s", dev_name(m, pos), copy);
        m->active = NULL;
        gen_unref(g);
        activate_from(m, pos + 1, pos, stage, st, copy);
    }
    pthread_mutex_unlock(&m->mu);
}

// --- background work ------------------------------------------------------------------------------------

static void bg_done(fs_model *m) {
    m->bg_running--;
    pthread_cond_broadcast(&m->cv);
}

/* Make a request on g and run it once on zero inputs (when the input shapes are fixed), so that the first
 * failover onto g costs one inference, not request creation and first-run set-up. Best effort. */
static void warm_up(fs_model *m, fs_gen *g) {
    si_ireq *r = NULL;
    if (g->cm->iface->create_request(g->cm, &r)) { si_err_clear(); return; }
    bool fixed = true;
    for (int i = 0; i < m->base.n_inputs && fixed; i++) {
        const si_port *p = &m->in_ports[i];
        if (p->ndim < 0) fixed = false;
        for (int d = 0; d < p->ndim && fixed; d++) fixed = p->dims[d] >= 0;
    }
    si_tensor **ins = fixed ? si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor *)) : NULL;
    si_result st = ins ? SI_OK : SI_ERR_NO_MEM;
    for (int i = 0; !st && i < m->base.n_inputs; i++) {
        st = si_tensor_create(m->in_ports[i].dtype, m->in_ports[i].ndim, m->in_ports[i].dims, &ins[i]);
        if (!st) st = r->iface->set_input(r, i, ins[i]);
    }
    if (!st) st = r->iface->infer(r);
    for (int i = 0; !st && i < m->base.n_inputs; i++) r->iface->set_input(r, i, NULL);
    for (int i = 0; ins && i < m->base.n_inputs; i++) si_tensor_free(ins[i]);
    si_free(ins);
    if (st) si_err_clear(); /* a failed warm-up is not a failure: the real inference will tell */
    pthread_mutex_lock(&m->mu);
    if (!g->spare) g->spare = r;
    else r->iface->free(r);
    pthread_mutex_unlock(&m->mu);
}

static void *standby_main(void *arg) {
    fs_model *m = arg;
    pthread_mutex_lock(&m->mu);
    int pos = m->standby_busy_pos;
    pthread_mutex_unlock(&m->mu);
    fs_gen *g = NULL;
    si_result st = compile_at(m, pos, &g);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", st ? si_last_error() : "");
    if (!st) warm_up(m, g);
    pthread_mutex_lock(&m->mu);
    m->standby_busy_pos = -1;
    if (!st && !m->stopping && m->active && m->active->pos < pos && !m->standby) {
        m->standby = g;
        si_sink_event(m->sink, SI_EVENT_STANDBY_READY, m->submodel, -1, m->cand[pos], "compile", SI_OK,
                      "submodel %d is ready on %s", m->submodel, dev_name(m, pos));
    } else {
        if (st) note_failure(m, pos, "compile", st, msg);
        gen_unref(g);
    }
    bg_done(m);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* One trial inference on a fresh request of g with zero inputs of the last shapes that ran. */
static si_result probe(fs_model *m, fs_gen *g, const si_tensor *shapes) {
    si_ireq *r = NULL;
    si_tensor **ins = si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor *));
    if (!ins) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_result st = g->cm->iface->create_request(g->cm, &r);
    for (int i = 0; !st && i < m->base.n_inputs; i++) {
        st = si_tensor_create(shapes[i].dtype, shapes[i].ndim, shapes[i].dims, &ins[i]);
        if (!st) st = r->iface->set_input(r, i, ins[i]);
    }
    if (!st) st = r->iface->infer(r);
    if (r) r->iface->free(r);
    for (int i = 0; i < m->base.n_inputs; i++) si_tensor_free(ins[i]);
    si_free(ins);
    return st;
}

static void *failback_main(void *arg) {
    fs_model *m = arg;
    si_tensor *shapes = si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor));
    pthread_mutex_lock(&m->mu);
    while (!m->stopping && shapes) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long ns = dl.tv_nsec + (long)(m->pol.failback_ms % 1000) * 1000000L;
        dl.tv_sec += m->pol.failback_ms / 1000 + ns / 1000000000L;
        dl.tv_nsec = ns % 1000000000L;
        while (!m->stopping && pthread_cond_timedwait(&m->cv, &m->mu, &dl) != ETIMEDOUT) {}
        if (m->stopping) break;
        int limit = m->active ? m->active->pos : m->n;
        int target = -1;
        for (int p = 0; p < limit && target < 0; p++)
            if (!quarantined(m, p)) target = p;
        if (target < 0) break; /* nothing better to return to */
        if (!m->have_probe_shapes) continue;
        memcpy(shapes, m->probe_in, sizeof(si_tensor) * (size_t)m->base.n_inputs);
        pthread_mutex_unlock(&m->mu);
        fs_gen *g = NULL;
        si_result st = compile_at(m, target, &g);
        if (!st) {
            st = probe(m, g, shapes);
            si_sink_attempt(m->sink, m->submodel, m->cand[target], "probe", st, st ? si_last_error() : "ok");
        }
        pthread_mutex_lock(&m->mu);
        if (st || m->stopping || (m->active && m->active->pos <= target)) {
            gen_unref(g);
            continue;
        }
        fs_gen *old = m->active;
        int from = old ? old->pos : -1;
        m->active = g;
        si_free(m->fail_msg[target]);
        m->fail_msg[target] = NULL;
        if (m->standby && m->standby->pos <= target) { gen_unref(m->standby); m->standby = NULL; }
        gen_unref(old);
        si_sink_event(m->sink, SI_EVENT_FAILBACK, m->submodel, from >= 0 ? m->cand[from] : -1, m->cand[target], "probe",
                      SI_OK, "submodel %d moved back to %s", m->submodel, dev_name(m, target));
        maybe_start_standby(m);
        if (target == 0) break;
    }
    m->failback_running = false;
    si_free(shapes);
    bg_done(m);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

// --- requests ---------------------------------------------------------------------------------------------

typedef struct fs_req {
    si_ireq base;
    fs_gen *gen;       /* generation of `inner` (a reference) */
    si_ireq *inner;
    si_tensor **bound; /* the caller's inputs */
    si_tensor **outs;  /* stable output tensors: views of the inner request's outputs */
    pthread_mutex_t cmu; /* guards `inner` against cancel() from another thread */
} fs_req;

static void clear_views(fs_req *r) {
    for (int k = 0; k < r->base.model->n_outputs; k++) {
        si_tensor *o = r->outs[k];
        si_dtype dt = o->dtype;
        memset(o, 0, sizeof *o);
        o->dtype = dt;
    }
}

/* Release a request and its generation on a background thread: after a failover the failed device's request
 * may be slow to tear down (driver queues), and the re-run on the next device should not wait for it. */
typedef struct reap_job {
    si_ireq *inner;
    fs_gen *gen;
    si_sink *sink;
} reap_job;

static void *reap_main(void *arg) {
    reap_job *j = arg;
    if (j->inner) j->inner->iface->free(j->inner);
    gen_unref(j->gen);
    atomic_fetch_sub(&j->sink->outstanding, 1);
    si_sink_unref(j->sink);
    si_free(j);
    return NULL;
}

static void drop_inner_async(fs_model *m, fs_req *r) {
    clear_views(r);
    pthread_mutex_lock(&r->cmu);
    si_ireq *inner = r->inner;
    r->inner = NULL;
    pthread_mutex_unlock(&r->cmu);
    fs_gen *g = r->gen;
    r->gen = NULL;
    reap_job *j = si_malloc(sizeof *j);
    pthread_t t;
    pthread_attr_t a;
    if (j) {
        *j = (reap_job){.inner = inner, .gen = g, .sink = si_sink_ref(m->sink)};
        atomic_fetch_add(&m->sink->outstanding, 1);
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, reap_main, j);
        pthread_attr_destroy(&a);
        if (rc == 0) return;
        atomic_fetch_sub(&m->sink->outstanding, 1);
        si_sink_unref(m->sink);
        si_free(j);
    }
    if (inner) inner->iface->free(inner); /* no thread: release here */
    gen_unref(g);
}

static void drop_inner(fs_req *r) {
    clear_views(r);
    pthread_mutex_lock(&r->cmu);
    si_ireq *inner = r->inner;
    r->inner = NULL;
    pthread_mutex_unlock(&r->cmu);
    if (inner) inner->iface->free(inner);
    gen_unref(r->gen);
    r->gen = NULL;
}

/* Run the inner infer, under the watchdog when a timeout is set. *timed_out tells the caller that the inner
 * request was abandoned (it no longer belongs to r). */
static si_result run_inner(fs_model *m, fs_req *r, bool *timed_out) {
    *timed_out = false;
    if (m->pol.infer_timeout_ms <= 0) return r->inner->iface->infer(r->inner);
    fs_job *j = si_calloc(1, sizeof *j);
    if (!j) return si_err(SI_ERR_NO_MEM, "out of memory");
    j->kind = JOB_INFER;
    j->inner = r->inner;
    j->gen = r->gen;
    si_result st = run_job(m, j, m->pol.infer_timeout_ms, timed_out, "infer");
    if (!*timed_out) {
        job_free(j);
        return st;
    }
    clear_views(r);
    pthread_mutex_lock(&r->cmu);
    r->inner = NULL; /* the abandoned call owns it now */
    pthread_mutex_unlock(&r->cmu);
    gen_unref(r->gen); /* the job took its own reference */
    r->gen = NULL;
    return st;
}

/* create_request on g, under the watchdog when a timeout is set. */
static si_result create_inner(fs_model *m, fs_gen *g, si_ireq **out, bool *timed_out) {
    *timed_out = false;
    *out = NULL;
    if (m->pol.infer_timeout_ms <= 0) return g->cm->iface->create_request(g->cm, out);
    fs_job *j = si_calloc(1, sizeof *j);
    if (!j) return si_err(SI_ERR_NO_MEM, "out of memory");
    j->kind = JOB_CREATE;
    j->gen = g;
    si_result st = run_job(m, j, m->pol.infer_timeout_ms, timed_out, "create_request");
    if (*timed_out) return st;
    *out = j->inner;
    job_free(j);
    return st;
}

static bool outputs_finite(fs_req *r) {
    for (int k = 0; k < r->base.model->n_outputs; k++) {
        const si_tensor *t = r->outs[k];
        if (!si_dtype_is_float(t->dtype) || !t->data) continue;
        int64_t n = si_shape_count(t->ndim, t->dims);
        if (t->dtype == SI_F32) {
            const float *p = t->data;
            for (int64_t i = 0; i < n; i++)
                if (!isfinite(p[i])) return false;
        } else {
            for (int64_t i = 0; i < n; i++)
                if (!isfinite(si_load_f64(t->dtype, t->data, i))) return false;
        }
    }
    return true;
}

static si_result bind_views(fs_req *r) {
    for (int k = 0; k < r->base.model->n_outputs; k++) {
        si_tensor *t;
        si_result st = r->inner->iface->get_output(r->inner, k, &t);
        if (st) return st;
        si_tensor *o = r->outs[k];
        *o = *t; /* a view: the data stays the inner request's */
        o->owned = false;
        atomic_store(&o->refs, 0);
    }
    return SI_OK;
}

/* check_outputs=nan: does the next candidate give finite outputs for the same inputs? Leaves the compiled
 * model it made as the standby, so that the failover that follows reuses it. */
static bool next_gives_finite(fs_model *m, fs_req *r, fs_gen *g) {
    pthread_mutex_lock(&m->mu);
    int pos = -1;
    for (int p = g->pos + 1; p < m->n && pos < 0; p++)
        if (!quarantined(m, p)) pos = p;
    while (pos >= 0 && m->standby_busy_pos == pos) pthread_cond_wait(&m->cv, &m->mu);
    fs_gen *ng = (pos >= 0 && m->standby && m->standby->pos == pos) ? gen_ref(m->standby) : NULL;
    pthread_mutex_unlock(&m->mu);
    if (pos < 0) return false;
    if (!ng) {
        if (compile_at(m, pos, &ng)) return false;
        pthread_mutex_lock(&m->mu);
        if (!m->standby && m->active == g) m->standby = gen_ref(ng);
        pthread_mutex_unlock(&m->mu);
    }
    si_ireq *q = NULL;
    bool finite = false;
    si_result st = ng->cm->iface->create_request(ng->cm, &q);
    for (int i = 0; !st && i < m->base.n_inputs; i++) st = q->iface->set_input(q, i, r->bound[i]);
    if (!st) st = q->iface->infer(q);
    if (!st) {
        finite = true;
        for (int k = 0; k < m->base.n_outputs && finite; k++) {
            si_tensor *t;
            if (q->iface->get_output(q, k, &t)) { finite = false; break; }
            int64_t n = si_shape_count(t->ndim, t->dims);
            if (si_dtype_is_float(t->dtype) && t->data)
                for (int64_t i = 0; i < n && finite; i++) finite = isfinite(si_load_f64(t->dtype, t->data, i));
        }
    }
    si_sink_attempt(m->sink, m->submodel, m->cand[pos], "check", st, st ? si_last_error() : finite ? "finite outputs" : "non-finite outputs too");
    if (q) q->iface->free(q);
    gen_unref(ng);
    return finite;
}

static void remember_shapes(fs_model *m, fs_req *r) {
    if (m->pol.failback_ms <= 0) return;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->base.n_inputs; i++) {
        si_tensor *d = &m->probe_in[i];
        memset(d, 0, sizeof *d);
        d->dtype = r->bound[i]->dtype;
        d->ndim = r->bound[i]->ndim;
        memcpy(d->dims, r->bound[i]->dims, sizeof d->dims);
    }
    m->have_probe_shapes = true;
    pthread_mutex_unlock(&m->mu);
}

#define AGAIN ((si_result)(SI_ERR_ABORTED + 100)) /* internal: go round again (retry or re-run after failover) */

/* One attempt on generation g (r->inner made from it): SI_OK, a status for the caller, or AGAIN. */
static si_result infer_once(fs_model *m, fs_req *r, fs_gen *g, int *retries_left_p) {
    int retries_left = *retries_left_p;
    si_result st = SI_OK;
    for (int i = 0; i < m->base.n_inputs && !st; i++) st = r->inner->iface->set_input(r->inner, i, r->bound[i]);
    if (st == SI_ERR_INVALID_ARG) return st;
    bool timed_out = false;
    if (!st) st = run_inner(m, r, &timed_out);
    if (!st) st = bind_views(r);
    if (!st) {
        if (m->pol.check_nan && !outputs_finite(r) && next_gives_finite(m, r, g)) {
            failover_from(m, g, "check", SI_ERR_DEVICE, "non-finite outputs (NaN/Inf) where the next device gives finite values", false);
            return AGAIN;
        }
        remember_shapes(m, r);
        return SI_OK;
    }
    if (st == SI_ERR_INVALID_ARG) { clear_views(r); return st; }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", si_last_error());
    bool lost = st == SI_ERR_DEVICE_LOST || timed_out;
    if (!lost && retries_left > 0) {
        retries_left--;
        *retries_left_p = retries_left;
        si_sink_event(m->sink, SI_EVENT_RETRY, m->submodel, m->cand[g->pos], m->cand[g->pos], "infer", st, "%s", msg);
        return AGAIN;
    }
    failover_from(m, g, "infer", st, msg, lost);
    drop_inner_async(m, r);
    return AGAIN;
}

static si_result fs_infer(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    fs_model *m = (fs_model *)r->base.model;
    si_result chk = si_check_bound(&m->base, r->bound);
    if (chk) return chk;
    int retries_left = m->pol.retries;
    for (int round = 0; round < 4 * m->n + 4 + m->pol.retries; round++) {
        /* join the active generation */
        pthread_mutex_lock(&m->mu);
        fs_gen *g = m->active;
        if (g && quarantined(m, g->pos)) { /* lost through another submodel: leave it now */
            pthread_mutex_unlock(&m->mu);
            failover_from(m, g, "quarantine", SI_ERR_DEVICE_LOST, "the device was lost (quarantined)", false);
            continue;
        }
        if (!g) {
            si_result st = all_failed_error(m);
            pthread_mutex_unlock(&m->mu);
            drop_inner(r);
            return st;
        }
        if (r->gen != g) {
            gen_ref(g);
            si_ireq *spare = g->spare;
            g->spare = NULL;
            pthread_mutex_unlock(&m->mu);
            drop_inner(r);
            r->gen = g;
            si_ireq *inner = spare;
            bool create_timed_out = false;
            si_result st = spare ? SI_OK : create_inner(m, g, &inner, &create_timed_out);
            if (st) {
                if (st == SI_ERR_INVALID_ARG) return st;
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", si_last_error());
                bool lost = st == SI_ERR_DEVICE_LOST || create_timed_out;
                if (!lost && retries_left > 0) {
                    retries_left--;
                    si_sink_event(m->sink, SI_EVENT_RETRY, m->submodel, m->cand[g->pos], m->cand[g->pos], "create", st, "%s", msg);
                    gen_unref(r->gen);
                    r->gen = NULL;
                    continue;
                }
                failover_from(m, g, "create", st, msg, lost);
                gen_unref(r->gen); /* held until now so that g cannot be reused by a new generation */
                r->gen = NULL;
                continue;
            }
            pthread_mutex_lock(&r->cmu);
            r->inner = inner;
            pthread_mutex_unlock(&r->cmu);
        } else {
            pthread_mutex_unlock(&m->mu);
        }
        /* bind and run; hold g so that its address cannot be reused by a new generation meanwhile */
        gen_ref(g);
        si_result st = infer_once(m, r, g, &retries_left);
        gen_unref(g);
        if (st != AGAIN) return st;
    }
    return si_err(SI_ERR_DEVICE, "submodel %d: inference kept failing; giving up after repeated failovers", m->submodel);
}

static si_result fs_set_input(si_ireq *r_, int i, si_tensor *t) {
    fs_req *r = (fs_req *)r_;
    return si_bind_input(r->base.model, i, t, r->bound);
}

static si_result fs_get_output(si_ireq *r_, int k, si_tensor **t) {
    fs_req *r = (fs_req *)r_;
    si_result s = si_output_index(r->base.model, k);
    if (!s) *t = r->outs[k];
    return s;
}

static void fs_cancel(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    pthread_mutex_lock(&r->cmu);
    if (r->inner && r->inner->iface->cancel) r->inner->iface->cancel(r->inner);
    pthread_mutex_unlock(&r->cmu);
}

static void fs_req_free(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    if (!r) return;
    if (r->outs) drop_inner(r);
    for (int k = 0; r->outs && k < r->base.model->n_outputs; k++) si_free(r->outs[k]);
    si_free(r->outs);
    si_free(r->bound);
    pthread_mutex_destroy(&r->cmu);
    si_free(r);
}

static const si_ireq_i fs_req_iface = {
    .set_input = fs_set_input,
    .get_output = fs_get_output,
    .infer = fs_infer,
    .free = fs_req_free,
    .cancel = fs_cancel,
};

/* Request creation is lazy about the inner request: it is made (and failed over) by the first infer. */
static si_result fs_create_request(si_cmodel *m_, si_ireq **out) {
    fs_model *m = (fs_model *)m_;
    *out = NULL;
    fs_req *r = si_calloc(1, sizeof *r);
    if (!r) return si_err(SI_ERR_NO_MEM, "out of memory creating a request");
    r->base.iface = &fs_req_iface;
    r->base.model = m_;
    pthread_mutex_init(&r->cmu, NULL);
    r->bound = si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor *));
    r->outs = si_calloc((size_t)m->base.n_outputs + 1, sizeof(si_tensor *));
    bool ok = r->bound && r->outs;
    for (int k = 0; ok && k < m->base.n_outputs; k++) {
        if (!(r->outs[k] = si_calloc(1, sizeof(si_tensor)))) ok = false;
        else r->outs[k]->dtype = m->out_ports[k].dtype;
    }
    if (!ok) { fs_req_free(&r->base); return si_err(SI_ERR_NO_MEM, "out of memory creating a request"); }
    *out = &r->base;
    return SI_OK;
}


static void fs_model_free(si_cmodel *m_) {
    fs_model *m = (fs_model *)m_;
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    while (m->bg_running > 0) pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    gen_unref(m->active);
    gen_unref(m->standby);
    for (int p = 0; m->fail_msg && p < m->n; p++) si_free(m->fail_msg[p]);
    si_free(m->fail_msg);
    si_free(m->probe_in);
    si_ports_free(m->in_ports, m->base.n_inputs);
    si_ports_free(m->out_ports, m->base.n_outputs);
    si_free(m->cand);
    si_free(m->device_desc);
    si_sink_unref(m->sink);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    si_free(m);
}

static const si_cmodel_i fs_model_iface = {.create_request = fs_create_request, .free = fs_model_free};

bool si_failsafe_is(const si_cmodel *m) { return m && m->iface == &fs_model_iface; }

int si_failsafe_active_device(si_cmodel *m_) {
    if (!si_failsafe_is(m_)) return -1;
    fs_model *m = (fs_model *)m_;
    pthread_mutex_lock(&m->mu);
    int d = m->active ? m->cand[m->active->pos] : -1;
    pthread_mutex_unlock(&m->mu);
    return d;
}

si_result si_failsafe_create(const si_failsafe_desc *d, si_cmodel **out) {
    *out = NULL;
    if (d->n_candidates < 1 || !d->factory || !d->sink) return si_err(SI_ERR_INVALID_ARG, "failsafe: no candidates or factory");
    fs_model *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "out of memory");
    m->base.iface = &fs_model_iface;
    m->submodel = d->submodel;
    m->n = d->n_candidates;
    m->factory = d->factory;
    m->user = d->user;
    m->pol = d->policy;
    m->sink = si_sink_ref(d->sink);
    m->standby_busy_pos = -1;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->cand = si_malloc(sizeof(int) * ((size_t)m->n + 1));
    m->fail_msg = si_calloc((size_t)m->n + 1, sizeof(char *));
    m->device_desc = si_strdup(d->device_desc ? d->device_desc : "");
    if (!m->cand || !m->fail_msg || !m->device_desc) { fs_model_free(&m->base); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    memcpy(m->cand, d->candidates, sizeof(int) * (size_t)m->n);
    m->base.device = m->device_desc;
    /* compile on the first candidate that takes it */
    pthread_mutex_lock(&m->mu);
    activate_from(m, 0, -1, "compile", SI_OK, "");
    bool ok = m->active != NULL;
    pthread_mutex_unlock(&m->mu);
    if (!ok) {
        si_result st = all_failed_error(m);
        char msg[4096];
        snprintf(msg, sizeof msg, "%s", si_last_error());
        fs_model_free(&m->base);
        return si_err(st, "%s", msg);
    }
    si_cmodel *cm = m->active->cm;
    si_result st = SI_OK;
    if (!(m->in_ports = si_ports_copy(cm->inputs, cm->n_inputs)) || !(m->out_ports = si_ports_copy(cm->outputs, cm->n_outputs)))
        st = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!st && !(m->probe_in = si_calloc((size_t)cm->n_inputs + 1, sizeof(si_tensor)))) st = si_err(SI_ERR_NO_MEM, "out of memory");
    m->base.n_inputs = cm->n_inputs;
    m->base.n_outputs = cm->n_outputs;
    if (st) { fs_model_free(&m->base); return st; }
    m->base.inputs = m->in_ports;
    m->base.outputs = m->out_ports;
    pthread_mutex_lock(&m->mu);
    m->ready = true;
    maybe_start_standby(m);
    pthread_mutex_unlock(&m->mu);
    *out = &m->base;
    return SI_OK;
}
