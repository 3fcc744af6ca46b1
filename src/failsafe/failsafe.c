/*
 * failsafe.c — the fail-safe compiled model (see failsafe.h): the recovery policy. The mechanism for calls
 * with a deadline is failsafe/watchdog.h; the event sink and the quarantine table are failsafe/events.h.
 *
 * Generations: each activation of a compiled model (first compile, failover, recovery, fail-back) is a new
 * generation `fs_gen` holding the device's compiled model, reference counted: the model's active slot, every
 * request whose inner request was made from it, and abandoned calls still running on it. A request remembers
 * the generation of its inner request; when the model's active generation differs, the inner request is
 * re-created from the active one before the next inference.
 *
 * Switching: a failover or a recovery round sets `switching` while it chooses the next generation (m->mu is
 * released while it waits for a standby compile or compiles); every other request waits for the switch to
 * end and joins the new generation. "Every device failed" is reported only when no switch is under way.
 *
 * Failures: one decision (decide) for every stage. The caller's mistakes are returned as they are; a lost
 * device or a watchdog timeout quarantines the device; a request's other failures are retried (`retries`),
 * then fail over. A compile failure moves on to the next candidate; a probe failure leaves the model where
 * it is.
 *
 * Recovery (policy recovery_ms > 0): when every candidate has failed, the first request after a back-off
 * tries the list again from the top, quarantined devices included (a success lifts the quarantine); each
 * fruitless round doubles the back-off, up to 64 x recovery_ms, and a successful inference resets it. A
 * watchdog timeout quarantines the device for recovery_ms (doubling with each timeout of that device, up to
 * 64 x) instead of for good. recovery_ms = 0: a model whose candidates all failed stays failed (unless
 * fail-back finds one) and timeouts quarantine for good.
 *
 * Lifetime: the model is reference counted (its owner and each background thread); freeing it stops the
 * background work without waiting for it. Abandoned calls own what they use (their inner request, the input
 * snapshots they read, a generation, a reference on the sink, which keeps the devices alive) and release it
 * when they return.
 *
 * Outputs: a request's output tensors are stable objects that keep the last successful inference's results
 * when an inference fails. Without a watchdog or a NaN check they are views of the inner request's outputs
 * (no copy); an inner request whose outputs are viewed is kept ("held") when the request moves to another
 * generation, until the next success. With a watchdog (an abandoned call may still write its outputs) or the
 * NaN check (a rejected inference must not replace them) they are copies, made after each accepted inference.
 * With a watchdog the inner request also reads copies of the inputs (the snapshots), which an abandoned call
 * takes with it: the caller may free its tensors as soon as the infer returns.
 */
#include "failsafe/failsafe.h"

#include "failsafe/watchdog.h"
#include "util/thread.h"

#include <math.h>
#include <stdio.h>

// --- stages and the failure decision ------------------------------------------------------------------------

typedef enum { STAGE_COMPILE, STAGE_CREATE, STAGE_INFER, STAGE_CHECK, STAGE_PROBE, STAGE_QUARANTINE, STAGE_RECOVERY, STAGE_ACCURACY } fs_stage;
static const char *const stage_names[] = {"compile", "create", "infer", "check", "probe", "quarantine", "recovery", "accuracy"};

typedef enum {
    ACT_RETURN,  /* the caller's mistake: return it as it is */
    ACT_RETRY,   /* run the call again on the same device */
    ACT_FAILOVER /* move on: the next candidate (a probe: stay where the model is) */
} fs_action;

/* The one failure decision, for every stage. st: the failed call's status; timed_out: a watchdog abandoned it;
 * retries_left: the request's retry budget (requests only). *quarantine: the device must be quarantined. */
static fs_action decide(fs_stage stage, si_result st, bool timed_out, int *retries_left, bool *quarantine) {
    *quarantine = st == SI_ERR_DEVICE_LOST || timed_out;
    bool request = stage == STAGE_CREATE || stage == STAGE_INFER;
    if (request && st == SI_ERR_INVALID_ARG) return ACT_RETURN;
    if (request && !*quarantine && retries_left && *retries_left > 0) {
        (*retries_left)--;
        return ACT_RETRY;
    }
    return ACT_FAILOVER;
}

/* What one step of an inference leads to (internal; never returned to a caller). */
typedef enum { STEP_DONE, STEP_AGAIN } fs_step;

// --- generations ------------------------------------------------------------------------------------------

typedef struct fs_gen {
    si_cmodel *cm;
    int pos;          /* candidate position */
    _Atomic int refs;
    si_ireq *spare;   /* a request made and warmed up in the background (standby), taken by the first
                       * request that joins this generation; guarded by the model's mutex */
} fs_gen;

static fs_gen *gen_ref(fs_gen *g) {
    if (g) atomic_fetch_add(&g->refs, 1);
    return g;
}

static void gen_unref(fs_gen *g) {
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
    if (g->spare) g->spare->iface->free(g->spare);
    g->cm->iface->free(g->cm);
    si_free(g);
}

// --- the model --------------------------------------------------------------------------------------------

typedef struct fs_model {
    si_cmodel base;
    _Atomic int refs; /* the owner and each background thread */
    int submodel;
    int n;            /* candidates */
    int *cand;        /* device index per candidate position */
    si_factory_fn factory;
    void *user;
    si_failsafe_policy pol;
    si_sink *sink;
    char *device_desc;
    si_port *in_ports, *out_ports;

    pthread_mutex_t mu;
    pthread_cond_t cv;    /* monotonic: switches, standby compiles, fail-back timer, stopping */
    fs_gen *active;       /* NULL while switching, or when every candidate has failed */
    bool switching;       /* a failover or recovery round is choosing the next generation */
    fs_gen *standby;      /* compiled ahead for a later position, or NULL */
    int standby_busy_pos; /* position being compiled in the background, -1 when none */
    bool failback_running;
    bool ready;           /* ports are known: background work may start */
    bool stopping;        /* the owner freed the model: background work ends */
    char **fail_msg;      /* per position: the last failure, for the all-failed message */
    si_tensor *probe_in;  /* per input: the last shapes that ran (descriptors), for fail-back probes */
    bool *in_param;       /* per input: a parameter (si_failsafe_desc), or NULL when none is */
    int n_in_param;
    si_tensor **param_seen; /* per parameter input: a tensor bound to it (a constant), for warm-ups and probes */
    _Atomic bool params_seen;
    bool have_probe_shapes;
    int failed_rounds;    /* every candidate failed this many times since the last successful inference */
    double retry_at_ms;   /* (si_mono_ms) when every candidate has failed: the next recovery round */
    _Atomic bool recovering; /* a recovery round or fail-back activated a device; no inference succeeded since */
    int acc_pos;          /* accuracy check: the reference device's candidate position, -1 when none */
    fs_gen *acc_ref;      /* its compiled model, made by the first check (under mu) */
    _Atomic long acc_count; /* inferences that could be sampled */
    _Atomic bool acc_logged; /* a passing check was recorded (only the first is: the log keeps failures) */
} fs_model;

/* A parameter input's constant, seen bound by an inference (NULL for other inputs, or before one ran). */
static si_tensor *param_input(fs_model *m, int i) {
    if (!m->in_param || !m->in_param[i] || !atomic_load(&m->params_seen)) return NULL;
    return m->param_seen[i];
}

static fs_model *model_ref(fs_model *m) {
    atomic_fetch_add(&m->refs, 1);
    return m;
}

static void model_unref(fs_model *m) {
    if (atomic_fetch_sub(&m->refs, 1) != 1) return;
    gen_unref(m->active);
    gen_unref(m->standby);
    gen_unref(m->acc_ref);
    for (int p = 0; m->fail_msg && p < m->n; p++) si_free(m->fail_msg[p]);
    SI_FREE_ALL(m->fail_msg, m->probe_in, m->in_param, m->param_seen);
    si_free(m->cand);
    si_free(m->device_desc);
    si_sink_unref(m->sink);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    si_cmodel_destroy(&m->base, m->in_ports, m->out_ports);
}

static const char *dev_name(const fs_model *m, int pos) {
    int d = m->cand[pos];
    return d >= 0 && d < m->sink->n_devices ? m->sink->device_names[d] : "?";
}

static bool quarantined(const fs_model *m, int pos) { return si_sink_quarantined(m->sink, m->cand[pos]); }

/* With m->mu held: remember why candidate pos failed, for the all-failed message. */
static void note_failure(fs_model *m, int pos, fs_stage stage, si_result st, const char *msg) {
    char buf[SI_ERR_CAP + 128];
    snprintf(buf, sizeof buf, "%s failed (%s): %s", stage_names[stage], si_result_str(st), msg);
    si_free(m->fail_msg[pos]);
    m->fail_msg[pos] = si_strdup(buf);
}

/* Quarantine candidate pos for every submodel: a lost device until a recovery round lifts it; a device
 * abandoned by the watchdog for the back-off when recovery is on, else for good. */
static void quarantine(fs_model *m, int pos, fs_stage stage, const si_error *why, bool timed_out) {
    int d = m->cand[pos];
    long ms = -1;
    if (timed_out && why->status != SI_ERR_DEVICE_LOST && m->pol.recovery_ms > 0) {
        int strikes = si_sink_strike(m->sink, d); /* timeouts of d before this one */
        ms = (long)m->pol.recovery_ms << SI_MIN(strikes, 6);
    }
    if (!si_sink_quarantine(m->sink, d, ms)) return;
    if (ms > 0)
        si_sink_event(m->sink, SI_EVENT_QUARANTINE, m->submodel, d, -1, stage_names[stage], why->status,
                      "device %s quarantined for %ld ms: %s", dev_name(m, pos), ms, why->msg);
    else
        si_sink_event(m->sink, SI_EVENT_QUARANTINE, m->submodel, d, -1, stage_names[stage], why->status,
                      "device %s quarantined: %s", dev_name(m, pos), why->msg);
}

// --- compiles (under the watchdog when compile_timeout_ms is set) -----------------------------------------

/* A compile handed to the watchdog. Once abandoned it holds a reference on the sink, which owns what the
 * factory reads (devices, graphs, options). */
typedef struct compile_call {
    si_factory_fn factory;
    void *user;
    int device;
    si_cmodel *cm;
    si_sink *sink; /* borrowed; a reference once abandoned */
} compile_call;

static si_result compile_run(void *ctx) {
    compile_call *c = ctx;
    return c->factory(c->user, c->device, &c->cm);
}

static void compile_abandon(void *ctx) { si_sink_ref(((compile_call *)ctx)->sink); }

static void compile_reclaim(void *ctx, si_result st) {
    (void)st;
    compile_call *c = ctx;
    if (c->cm) c->cm->iface->free(c->cm);
    si_sink *s = c->sink;
    si_free(c);
    si_sink_unref(s);
}

static const si_wd_ops compile_ops = {.run = compile_run, .abandon = compile_abandon, .reclaim = compile_reclaim};

/* Compile candidate `pos` (without m->mu; the factory must be thread-safe). Records the attempt; a lost device
 * or a timeout quarantines it. */
static si_result compile_at(fs_model *m, int pos, fs_gen **out) {
    *out = NULL;
    si_cmodel *cm = NULL;
    si_result st;
    bool timed_out = false;
    if (m->pol.compile_timeout_ms > 0) {
        compile_call *c = si_calloc(1, sizeof *c);
        if (!c) return si_err(SI_ERR_NO_MEM, "out of memory");
        *c = (compile_call){.factory = m->factory, .user = m->user, .device = m->cand[pos], .sink = m->sink};
        si_watchdog *w = NULL;
        st = si_watchdog_call(&w, &compile_ops, c, m->pol.compile_timeout_ms, "compile", &timed_out);
        si_watchdog_free(w);
        if (!timed_out) {
            cm = c->cm;
            si_free(c);
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
    fs_gen *g = st ? NULL : si_calloc(1, sizeof *g);
    if (!st && !g) {
        cm->iface->free(cm);
        st = si_err(SI_ERR_NO_MEM, "out of memory");
    }
    si_error err;
    si_error_save(&err, st);
    const char *msg = st ? err.msg : "ok";
    si_sink_attempt(m->sink, m->submodel, m->cand[pos], "compile", st, msg);
    si_sink_event(m->sink, SI_EVENT_COMPILE, m->submodel, -1, m->cand[pos], "compile", st, "%s", msg);
    if (st) {
        bool q;
        (void)decide(STAGE_COMPILE, st, timed_out, NULL, &q); /* a compile failure always moves on */
        if (q) quarantine(m, pos, STAGE_COMPILE, &err, timed_out);
        return si_error_restore(&err);
    }
    g->cm = cm;
    g->pos = pos;
    atomic_init(&g->refs, 1);
    *out = g;
    return SI_OK;
}

/* With m->mu held. */
static si_result all_failed_error(fs_model *m) {
    char buf[4096];
    size_t o = (size_t)snprintf(buf, sizeof buf, "submodel %d: every device failed", m->submodel);
    for (int p = 0; p < m->n && o < sizeof buf; p++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "; %s: %s", dev_name(m, p),
                              m->fail_msg[p] ? m->fail_msg[p] : quarantined(m, p) ? "lost (quarantined)" : "not tried");
    if (m->pol.recovery_ms > 0 && o < sizeof buf)
        snprintf(buf + o, sizeof buf - o, "; the devices are tried again in %.0f ms",
                 fmax(0.0, m->retry_at_ms - si_mono_ms()));
    return si_err(SI_ERR_DEVICE, "%s", buf);
}

// --- switching ----------------------------------------------------------------------------------------------

static void maybe_start_standby(fs_model *m);
static void maybe_start_failback(fs_model *m);

/* With m->mu held and m->switching set by the caller: make the first usable candidate from `from` on active.
 * m->mu is released while waiting for a standby compile and while compiling. A recovery round tries every
 * candidate, quarantined ones included. */
static void activate_from(fs_model *m, int from, int failed_pos, fs_stage stage, const si_error *why, bool recovery) {
    int cfail = -1; /* the last candidate whose compile failed on the way (a failover at compile time) */
    si_error cerr;
    cerr.status = SI_OK;
    cerr.msg[0] = 0;
    for (int p = from; p < m->n && !m->stopping; p++) {
        if (!recovery && quarantined(m, p)) {
            if (!m->fail_msg[p]) note_failure(m, p, STAGE_QUARANTINE, SI_ERR_DEVICE_LOST, "device lost");
            continue;
        }
        while (m->standby_busy_pos == p && !m->stopping) pthread_cond_wait(&m->cv, &m->mu); /* its compile is under way */
        fs_gen *g = NULL;
        if (m->standby && m->standby->pos == p) {
            g = m->standby;
            m->standby = NULL;
        } else {
            if (m->standby && m->standby->pos < p) {
                fs_gen *old = m->standby;
                m->standby = NULL;
                gen_unref(old);
            }
            pthread_mutex_unlock(&m->mu);
            si_result st = compile_at(m, p, &g);
            pthread_mutex_lock(&m->mu);
            if (st) {
                note_failure(m, p, STAGE_COMPILE, st, si_last_error());
                si_error_save(&cerr, st);
                cfail = p;
                continue;
            }
            if (m->standby && m->standby->pos == p) { /* published meanwhile: keep ours */
                fs_gen *dup = m->standby;
                m->standby = NULL;
                gen_unref(dup);
            }
        }
        m->active = g;
        if (m->standby && m->standby->pos <= p) { /* published for a position the switch went past */
            fs_gen *behind = m->standby;
            m->standby = NULL;
            gen_unref(behind);
        }
        if (recovery) {
            si_sink_lift(m->sink, m->cand[p]);
            atomic_store(&m->recovering, true);
            si_sink_event(m->sink, SI_EVENT_FAILBACK, m->submodel, -1, m->cand[p], stage_names[STAGE_RECOVERY], SI_OK,
                          "submodel %d recovered on %s after every device had failed", m->submodel, dev_name(m, p));
        } else if (failed_pos >= 0) {
            si_sink_event(m->sink, SI_EVENT_FAILOVER, m->submodel, m->cand[failed_pos], m->cand[p], stage_names[stage],
                          why->status, "submodel %d moved from %s to %s: %s", m->submodel, dev_name(m, failed_pos),
                          dev_name(m, p), why->msg);
        } else if (cfail >= 0) { /* the submodel's first choice would not compile: it starts on a later device */
            si_sink_event(m->sink, SI_EVENT_FAILOVER, m->submodel, m->cand[cfail], m->cand[p], stage_names[STAGE_COMPILE],
                          cerr.status, "submodel %d moved from %s to %s: %s", m->submodel, dev_name(m, cfail),
                          dev_name(m, p), cerr.msg);
        }
        maybe_start_standby(m);
        if (failed_pos >= 0) maybe_start_failback(m);
        return;
    }
    if (m->stopping) return;
    if (m->pol.recovery_ms > 0) { /* the back-off before the next recovery round */
        m->retry_at_ms = si_mono_ms() + (double)((long)m->pol.recovery_ms << SI_MIN(m->failed_rounds, 6));
        m->failed_rounds++;
    }
    all_failed_error(m);
    si_sink_event(m->sink, SI_EVENT_ALL_FAILED, m->submodel, failed_pos >= 0 ? m->cand[failed_pos] : -1, -1,
                  recovery ? stage_names[STAGE_RECOVERY] : "", SI_ERR_DEVICE, "%s", si_last_error());
    maybe_start_failback(m);
}

/* Generation g failed at `stage`: move the model on from g, unless another request already did (then the
 * caller just joins the generation that request chose). */
static void failover_from(fs_model *m, fs_gen *g, fs_stage stage, const si_error *why, bool quarantine_it, bool timed_out) {
    fs_gen *old = NULL;
    pthread_mutex_lock(&m->mu);
    while (m->switching) pthread_cond_wait(&m->cv, &m->mu);
    if (g && m->active == g) {
        int pos = g->pos;
        note_failure(m, pos, stage, why->status, why->msg);
        si_sink_attempt(m->sink, m->submodel, m->cand[pos], stage_names[stage], why->status, why->msg);
        if (quarantine_it) quarantine(m, pos, stage, why, timed_out);
        old = g;
        m->active = NULL;
        m->switching = true;
        activate_from(m, pos + 1, pos, stage, why, false);
        m->switching = false;
        pthread_cond_broadcast(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    gen_unref(old);
}

/* With m->mu held, no switch under way and no active generation: is a recovery round due? */
static bool recovery_due(const fs_model *m) { return m->pol.recovery_ms > 0 && si_mono_ms() >= m->retry_at_ms; }

// --- background work ------------------------------------------------------------------------------------

static void *standby_main(void *arg);
static void *failback_main(void *arg);

/* With m->mu held: run fn(m) on a detached thread holding a reference on m. */
static bool start_bg(fs_model *m, void *(*fn)(void *)) {
    model_ref(m);
    if (!si_thread_detached(fn, m)) return true;
    atomic_fetch_sub(&m->refs, 1); /* never the last: the caller holds one */
    si_err_clear();                /* no thread: the policy is skipped */
    return false;
}

/* With m->mu held: compile the next usable candidate after the active one in the background. */
static void maybe_start_standby(fs_model *m) {
    if (!m->pol.standby || !m->ready || m->stopping || !m->active || m->standby || m->standby_busy_pos >= 0) return;
    for (int p = m->active->pos + 1; p < m->n; p++) {
        if (quarantined(m, p)) continue;
        m->standby_busy_pos = p;
        if (!start_bg(m, standby_main)) m->standby_busy_pos = -1;
        return;
    }
}

static void maybe_start_failback(fs_model *m) {
    if (m->pol.failback_ms <= 0 || !m->ready || m->stopping || m->failback_running) return;
    if (m->active && m->active->pos == 0) return;
    m->failback_running = start_bg(m, failback_main);
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
    for (int i = 0; i < m->base.n_inputs && fixed; i++) fixed = !m->in_param || !m->in_param[i] || param_input(m, i);
    si_tensor **ins = fixed ? si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor *)) : NULL;
    si_result st = ins ? SI_OK : SI_ERR_NO_MEM;
    for (int i = 0; !st && i < m->base.n_inputs; i++) {
        si_tensor *w = param_input(m, i); /* a parameter: the weights an inference bound, never zeros */
        if (!w) st = si_tensor_create(m->in_ports[i].dtype, m->in_ports[i].ndim, m->in_ports[i].dims, &ins[i]);
        if (!st) st = r->iface->set_input(r, i, w ? w : ins[i]);
    }
    if (!st) st = r->iface->infer(r);
    for (int i = 0; !st && i < m->base.n_inputs; i++) r->iface->set_input(r, i, NULL);
    for (int i = 0; ins && i < m->base.n_inputs; i++) si_tensor_free(ins[i]);
    si_free(ins);
    if (st) si_err_clear(); /* a failed warm-up is not a failure: the real inference will tell */
    pthread_mutex_lock(&m->mu);
    if (!g->spare) {
        g->spare = r;
        r = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    if (r) r->iface->free(r);
}

static void *standby_main(void *arg) {
    fs_model *m = arg;
    pthread_mutex_lock(&m->mu);
    int pos = m->standby_busy_pos;
    bool stop = m->stopping;
    pthread_mutex_unlock(&m->mu);
    fs_gen *g = NULL;
    si_result st = stop ? SI_OK : compile_at(m, pos, &g);
    si_error err;
    si_error_save(&err, st);
    pthread_mutex_lock(&m->mu);
    stop = m->stopping;
    pthread_mutex_unlock(&m->mu);
    if (g && !stop) warm_up(m, g);
    pthread_mutex_lock(&m->mu);
    m->standby_busy_pos = -1;
    /* publish it when it is after the active candidate, or when a switch (perhaps waiting for it) is under way */
    if (g && !m->stopping && !m->standby && (m->switching || (m->active && m->active->pos < pos))) {
        m->standby = g;
        g = NULL;
        si_sink_event(m->sink, SI_EVENT_STANDBY_READY, m->submodel, -1, m->cand[pos], "compile", SI_OK,
                      "submodel %d is ready on %s", m->submodel, dev_name(m, pos));
    } else if (st) {
        note_failure(m, pos, STAGE_COMPILE, st, err.msg);
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    gen_unref(g);
    model_unref(m);
    return NULL;
}

/* One trial inference on a fresh request of g with zero inputs of the last shapes that ran. */
static si_result probe(fs_model *m, fs_gen *g, const si_tensor *shapes) {
    si_ireq *r = NULL;
    si_tensor **ins = si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor *));
    if (!ins) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_result st = g->cm->iface->create_request(g->cm, &r);
    for (int i = 0; !st && i < m->base.n_inputs; i++) {
        si_tensor *w = param_input(m, i);
        if (!w) st = si_tensor_create(shapes[i].dtype, shapes[i].ndim, shapes[i].dims, &ins[i]);
        if (!st) st = r->iface->set_input(r, i, w ? w : ins[i]);
    }
    if (!st) st = r->iface->infer(r);
    si_error err;
    si_error_save(&err, st);
    if (r) r->iface->free(r);
    for (int i = 0; i < m->base.n_inputs; i++) si_tensor_free(ins[i]);
    si_free(ins);
    return si_error_restore(&err);
}

static void *failback_main(void *arg) {
    fs_model *m = arg;
    si_tensor *shapes = si_calloc((size_t)m->base.n_inputs + 1, sizeof(si_tensor));
    pthread_mutex_lock(&m->mu);
    while (!m->stopping && shapes) {
        struct timespec dl = si_deadline_ms(m->pol.failback_ms);
        while (!m->stopping && !si_cond_wait_until(&m->cv, &m->mu, &dl)) {}
        if (m->stopping) break;
        int limit = m->active ? m->active->pos : m->n;
        int target = -1;
        for (int p = 0; p < limit && target < 0; p++)
            if (!quarantined(m, p)) target = p;
        if (target < 0) break; /* nothing better to return to */
        if (!m->have_probe_shapes || m->switching) continue;
        memcpy(shapes, m->probe_in, sizeof(si_tensor) * (size_t)m->base.n_inputs);
        pthread_mutex_unlock(&m->mu);
        fs_gen *g = NULL;
        si_result st = compile_at(m, target, &g);
        if (!st) {
            st = probe(m, g, shapes);
            si_error err;
            si_error_save(&err, st);
            si_sink_attempt(m->sink, m->submodel, m->cand[target], "probe", st, st ? err.msg : "ok");
            bool q;
            if (st && decide(STAGE_PROBE, st, false, NULL, &q) == ACT_FAILOVER && q) quarantine(m, target, STAGE_PROBE, &err, false);
        }
        pthread_mutex_lock(&m->mu);
        if (st || m->stopping || m->switching || (m->active && m->active->pos <= target)) {
            pthread_mutex_unlock(&m->mu);
            gen_unref(g);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        fs_gen *old = m->active;
        int from = old ? old->pos : -1;
        m->active = g;
        m->failed_rounds = 0;
        SI_FREE_CLEAR(m->fail_msg[target]);
        fs_gen *dropped = NULL;
        if (m->standby && m->standby->pos <= target) {
            dropped = m->standby;
            m->standby = NULL;
        }
        si_sink_event(m->sink, SI_EVENT_FAILBACK, m->submodel, from >= 0 ? m->cand[from] : -1, m->cand[target], "probe",
                      SI_OK, "submodel %d moved back to %s", m->submodel, dev_name(m, target));
        maybe_start_standby(m);
        pthread_mutex_unlock(&m->mu);
        gen_unref(old);
        gen_unref(dropped);
        pthread_mutex_lock(&m->mu);
        if (target == 0) break;
    }
    m->failback_running = false;
    pthread_mutex_unlock(&m->mu);
    si_free(shapes);
    model_unref(m);
    return NULL;
}

// --- requests ---------------------------------------------------------------------------------------------

typedef struct fs_guard fs_guard;

typedef struct fs_req {
    si_ireq base;
    fs_gen *gen;         /* generation of `inner` (a reference) */
    si_ireq *inner;
    bool views_inner;    /* outs are views of inner's outputs */
    si_ireq *held;       /* a former inner request whose outputs outs still view (with its generation) */
    fs_gen *held_gen;
    fs_guard *guard;     /* watchdog on: the worker and the input snapshots, reused from call to call */
    si_tensor *fresh;    /* per output: scratch for copy_outputs */
    pthread_mutex_t cmu; /* guards `inner` against cancel() from another thread */
} fs_req;

/* Outputs are copies (not views) when a call may be abandoned or an inference rejected after it returned. */
static bool copies_outputs(const fs_model *m) { return m->pol.infer_timeout_ms > 0 || m->pol.check_nan; }

/* Release a request and its generation on a background thread: a failed device's request may be slow to tear
 * down (driver queues), and the re-run on the next device should not wait for it. Keeps the thread's message. */
typedef struct reap_job {
    si_ireq *req;
    fs_gen *gen;
    si_sink *sink;
} reap_job;

static void *reap_main(void *arg) {
    reap_job *j = arg;
    if (j->req) j->req->iface->free(j->req);
    gen_unref(j->gen);
    si_sink_unref(j->sink);
    si_free(j);
    return NULL;
}

static void release_async(fs_model *m, si_ireq *req, fs_gen *gen) {
    if (!req && !gen) return;
    reap_job *j = si_malloc(sizeof *j);
    if (j) {
        si_error keep;
        si_error_save(&keep, SI_ERR_INTERNAL);
        *j = (reap_job){.req = req, .gen = gen, .sink = si_sink_ref(m->sink)};
        bool started = !si_thread_detached(reap_main, j);
        si_error_restore(&keep);
        if (started) return;
        si_sink_unref(m->sink);
        si_free(j);
    }
    if (req) req->iface->free(req); /* no thread: release here */
    gen_unref(gen);
}

/* The request leaves its generation: drop its inner request, or keep it (held) while the outputs view it. */
static void detach_inner(fs_model *m, fs_req *r, bool async) {
    pthread_mutex_lock(&r->cmu);
    si_ireq *inner = r->inner;
    r->inner = NULL;
    pthread_mutex_unlock(&r->cmu);
    fs_gen *g = r->gen;
    r->gen = NULL;
    if (inner && r->views_inner) {
        release_async(m, r->held, r->held_gen); /* (none: views of inner replaced any held request) */
        r->held = inner;
        r->held_gen = g;
        r->views_inner = false;
    } else if (async) {
        release_async(m, inner, g);
    } else {
        if (inner) inner->iface->free(inner);
        gen_unref(g);
    }
}

/* After a successful inference: outs view the inner request's outputs; a held request is no longer needed. */
static si_result view_outputs(fs_model *m, fs_req *r) {
    for (int k = 0; k < m->base.n_outputs; k++) {
        si_tensor *t;
        si_result st = r->inner->iface->get_output(r->inner, k, &t);
        if (st) return st;
        si_tensor *o = r->base.outs[k];
        if (o->owned) si_tensor_release(o);
        si_tensor_view(o, t); /* the data stays the inner request's */
    }
    r->views_inner = true;
    release_async(m, r->held, r->held_gen);
    r->held = NULL;
    r->held_gen = NULL;
    return SI_OK;
}

/* After an accepted inference (copy mode): outs get copies of the inner request's outputs, in buffers of their
 * own (kept while they fit). On failure the previous outputs are left whole. */
static si_result copy_outputs(fs_model *m, fs_req *r) {
    si_result st = SI_OK;
    si_tensor *t;
    int k = 0;
    for (; k < m->base.n_outputs; k++) { /* room first */
        memset(&r->fresh[k], 0, sizeof r->fresh[k]);
        if ((st = r->inner->iface->get_output(r->inner, k, &t)) || (st = si_tensor_copy_room(r->base.outs[k], t, &r->fresh[k]))) {
            st = si_err_wrap(st, "output %d", k);
            break;
        }
    }
    if (st) {
        for (int j = 0; j < k; j++) si_tensor_release(&r->fresh[j]);
        return st;
    }
    for (k = 0; k < m->base.n_outputs; k++)
        if (!r->inner->iface->get_output(r->inner, k, &t)) si_tensor_copy_into(r->base.outs[k], t, &r->fresh[k]);
    return SI_OK;
}

/* A failed inference should leave the inner request's outputs as they were (the device contract). Where one
 * replaced them anyway, the views would dangle: re-point them at what is there. */
static void revalidate_views(fs_model *m, fs_req *r) {
    if (!r->views_inner || !r->inner) return;
    for (int k = 0; k < m->base.n_outputs; k++) {
        si_tensor *t, *o = r->base.outs[k];
        if (r->inner->iface->get_output(r->inner, k, &t)) continue;
        if (t->data != o->data || t->nbytes != o->nbytes) si_tensor_view(o, t);
    }
}

// --- guarded inferences (watchdog) ------------------------------------------------------------------------

/* What a guarded inference uses. The request owns it while the call may return in time; an abandoned call owns
 * it (with references on the generation and the sink) and reclaims it when it returns. */
struct fs_guard {
    si_watchdog *wd;
    si_ireq *inner;          /* borrowed from the request for the call; the call's once abandoned */
    fs_gen *gen;             /* borrowed; a reference once abandoned */
    si_sink *sink;           /* borrowed; a reference once abandoned */
    pthread_mutex_t *cmu;    /* the request's: the abandon hook takes inner out of it */
    si_ireq **slot;
    int n_in;
    si_tensor *snap;         /* the inputs the call reads: copies of the caller's (owned) */
};

static void guard_free(fs_guard *gd) {
    if (!gd) return;
    si_watchdog_free(gd->wd);
    for (int i = 0; gd->snap && i < gd->n_in; i++) si_tensor_release(&gd->snap[i]);
    si_free(gd->snap);
    si_free(gd);
}

static si_result guard_run(void *ctx) {
    fs_guard *gd = ctx;
    return gd->inner->iface->infer(gd->inner);
}

/* The watchdog gives up: ask the call to stop, take the inner request out of the request (a cancel from
 * another thread must not reach it any more), and keep what the call needs alive. */
static void guard_abandon(void *ctx) {
    fs_guard *gd = ctx;
    si_ireq_cancel(gd->inner);
    pthread_mutex_lock(gd->cmu);
    *gd->slot = NULL;
    pthread_mutex_unlock(gd->cmu);
    gd->cmu = NULL;
    gd->slot = NULL;
    gen_ref(gd->gen);
    si_sink_ref(gd->sink);
}

static void guard_reclaim(void *ctx, si_result st) {
    (void)st;
    fs_guard *gd = ctx;
    gd->inner->iface->free(gd->inner);
    gen_unref(gd->gen);
    si_sink *s = gd->sink;
    guard_free(gd);
    si_sink_unref(s); /* last: it may free the devices */
}

static const si_wd_ops guard_ops = {.run = guard_run, .abandon = guard_abandon, .reclaim = guard_reclaim};

/* Copy the caller's inputs into the guard's snapshots (buffers reused while the sizes stay). */
static si_result snapshot_inputs(fs_model *m, fs_req *r) {
    fs_guard *gd = r->guard;
    if (!gd) {
        if (!(gd = si_calloc(1, sizeof *gd))) return si_err(SI_ERR_NO_MEM, "out of memory");
        gd->n_in = m->base.n_inputs;
        if (!(gd->snap = si_calloc((size_t)gd->n_in + 1, sizeof(si_tensor)))) {
            si_free(gd);
            return si_err(SI_ERR_NO_MEM, "out of memory");
        }
        r->guard = gd;
    }
    for (int i = 0; i < gd->n_in; i++) {
        if (m->in_param && m->in_param[i]) continue; /* a constant: bound as it is (in_bound) */
        si_tensor fresh;
        si_result st = si_tensor_copy_room(&gd->snap[i], r->base.bound[i], &fresh);
        if (st) return si_err_wrap(st, "input %d", i);
        si_tensor_copy_into(&gd->snap[i], r->base.bound[i], &fresh);
    }
    return SI_OK;
}

/* Run the inner infer under the watchdog. *timed_out: it was abandoned, and with it the inner request, the
 * snapshots and the guard (the request has none of them any more). */
static si_result run_guarded(fs_model *m, fs_req *r, bool *timed_out) {
    fs_guard *gd = r->guard;
    gd->inner = r->inner;
    gd->gen = r->gen;
    gd->sink = m->sink;
    gd->cmu = &r->cmu;
    gd->slot = &r->inner;
    si_result st = si_watchdog_call(&gd->wd, &guard_ops, gd, m->pol.infer_timeout_ms, "infer", timed_out);
    if (!*timed_out) return st;
    r->guard = NULL;   /* r->inner was cleared by the hook */
    gen_unref(r->gen); /* the call took its own reference */
    r->gen = NULL;
    return st;
}

/* A create_request handed to the watchdog. */
typedef struct create_call {
    fs_gen *gen;   /* borrowed; a reference once abandoned */
    si_sink *sink; /* likewise */
    si_ireq *made;
} create_call;

static si_result create_run(void *ctx) {
    create_call *c = ctx;
    return c->gen->cm->iface->create_request(c->gen->cm, &c->made);
}

static void create_abandon(void *ctx) {
    create_call *c = ctx;
    gen_ref(c->gen);
    si_sink_ref(c->sink);
}

static void create_reclaim(void *ctx, si_result st) {
    (void)st;
    create_call *c = ctx;
    if (c->made) c->made->iface->free(c->made);
    gen_unref(c->gen);
    si_sink *s = c->sink;
    si_free(c);
    si_sink_unref(s);
}

static const si_wd_ops create_ops = {.run = create_run, .abandon = create_abandon, .reclaim = create_reclaim};

/* create_request on g, under the watchdog when infer_timeout_ms is set. */
static si_result create_inner(fs_model *m, fs_gen *g, si_ireq **out, bool *timed_out) {
    *timed_out = false;
    *out = NULL;
    if (m->pol.infer_timeout_ms <= 0) return g->cm->iface->create_request(g->cm, out);
    create_call *c = si_calloc(1, sizeof *c);
    if (!c) return si_err(SI_ERR_NO_MEM, "out of memory");
    *c = (create_call){.gen = g, .sink = m->sink};
    si_watchdog *w = NULL;
    si_result st = si_watchdog_call(&w, &create_ops, c, m->pol.infer_timeout_ms, "create_request", timed_out);
    si_watchdog_free(w);
    if (*timed_out) return st;
    *out = c->made;
    si_free(c);
    return st;
}

// --- inference --------------------------------------------------------------------------------------------

static bool tensor_finite(const si_tensor *t) {
    if (!si_dtype_is_float(t->dtype) || !t->data) return true;
    int64_t n = si_shape_count(t->ndim, t->dims);
    if (t->dtype == SI_F32) {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(p[i])) return false;
        return true;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(si_load_f64(t->dtype, t->data, i))) return false;
    return true;
}

static bool outputs_finite(fs_model *m, si_ireq *q) {
    for (int k = 0; k < m->base.n_outputs; k++) {
        si_tensor *t;
        if (q->iface->get_output(q, k, &t) || !tensor_finite(t)) return false;
    }
    return true;
}

/* Does t hold a non-finite value that ref (the same output from another device) does not confirm: a NaN where
 * ref has none, an infinity where ref has a different value? A model may give -inf legitimately (Log(0), a mask
 * of -inf before a Softmax): where the other device gives the same infinity it is the answer. Shapes that
 * differ: true. */
static bool unconfirmed_nonfinite(const si_tensor *t, const si_tensor *ref) {
    if (!si_dtype_is_float(t->dtype) || !t->data) return false;
    if (t->dtype != ref->dtype || t->ndim != ref->ndim || !ref->data) return true;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] != ref->dims[d]) return true;
    const int64_t n = si_shape_count(t->ndim, t->dims);
    for (int64_t i = 0; i < n; i++) {
        const double a = t->dtype == SI_F32 ? ((const float *)t->data)[i] : si_load_f64(t->dtype, t->data, i);
        if (isfinite(a)) continue;
        const double b = ref->dtype == SI_F32 ? ((const float *)ref->data)[i] : si_load_f64(ref->dtype, ref->data, i);
        if (isnan(a) ? !isnan(b) : a != b) return true;
    }
    return false;
}

/* check_outputs=nan, when r->inner's outputs hold NaN or Inf: does the next candidate that can run the same
 * inputs contradict them (unconfirmed_nonfinite on some output)? Element by element, not "finite or not": a
 * submodel whose outputs hold a legitimate -inf must still fail over when a device adds NaNs to them. A candidate
 * whose compile or check inference fails cannot say, so the one after it is asked (otherwise a NaN output would
 * be taken as the answer whenever the next device happened to fail too). Leaves the compiled model it made for
 * the first candidate after g's as the standby, so that the failover that follows reuses it. */
static bool next_contradicts(fs_model *m, fs_req *r, fs_gen *g) {
    for (int from = g->pos + 1;;) {
        pthread_mutex_lock(&m->mu);
        int pos = -1;
        for (int p = from; p < m->n && pos < 0; p++)
            if (!quarantined(m, p)) pos = p;
        while (pos >= 0 && m->standby_busy_pos == pos) pthread_cond_wait(&m->cv, &m->mu);
        fs_gen *ng = (pos >= 0 && m->standby && m->standby->pos == pos) ? gen_ref(m->standby) : NULL;
        pthread_mutex_unlock(&m->mu);
        if (pos < 0) return false;
        from = pos + 1;
        if (!ng) {
            if (compile_at(m, pos, &ng)) continue;
            pthread_mutex_lock(&m->mu);
            if (!m->standby && m->active == g) m->standby = gen_ref(ng);
            pthread_mutex_unlock(&m->mu);
        }
        si_ireq *q = NULL;
        si_result st = ng->cm->iface->create_request(ng->cm, &q);
        for (int i = 0; !st && i < m->base.n_inputs; i++) st = q->iface->set_input(q, i, r->base.bound[i]);
        if (!st) st = q->iface->infer(q);
        bool contra = false;
        for (int k = 0; !st && k < m->base.n_outputs && !contra; k++) {
            si_tensor *a, *b;
            if ((st = r->inner->iface->get_output(r->inner, k, &a)) || (st = q->iface->get_output(q, k, &b))) break;
            contra = unconfirmed_nonfinite(a, b);
        }
        si_sink_attempt(m->sink, m->submodel, m->cand[pos], "check", st,
                        st ? si_last_error() : contra ? "its outputs contradict the non-finite values" : "the same non-finite values");
        if (q) q->iface->free(q);
        gen_unref(ng);
        if (!st) return contra;
    }
}

/* NRMSE of output t against the reference ref: the RMS of the differences over the reference's range (max - min;
 * its largest magnitude when that is 0; 1 when both are 0). Shapes that differ: +inf. */
static double nrmse(const si_tensor *t, const si_tensor *ref) {
    if (t->dtype != ref->dtype || t->ndim != ref->ndim) return INFINITY;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] != ref->dims[d]) return INFINITY;
    int64_t n = si_shape_count(t->ndim, t->dims);
    if (n == 0) return 0;
    double sq = 0, lo = INFINITY, hi = -INFINITY, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = si_load_f64(t->dtype, t->data, i), b = si_load_f64(ref->dtype, ref->data, i);
        sq += (a - b) * (a - b);
        lo = fmin(lo, b), hi = fmax(hi, b), mag = fmax(mag, fabs(b));
    }
    double range = hi - lo > 0 ? hi - lo : mag > 0 ? mag : 1;
    double e = sqrt(sq / (double)n) / range;
    return isnan(e) ? INFINITY : e;
}

/* accuracy_check: run r's inputs on the reference device and compare r->inner's outputs with its. True when the
 * active device's outputs are out of bounds (why says by how much); false when they are within, or when the
 * reference cannot say (its compile or inference failed: recorded as an attempt). */
static bool accuracy_breach(fs_model *m, fs_req *r, si_error *why) {
    pthread_mutex_lock(&m->mu);
    fs_gen *ref = gen_ref(m->acc_ref);
    pthread_mutex_unlock(&m->mu);
    if (!ref) {
        si_result cst = compile_at(m, m->acc_pos, &ref);
        if (cst) {
            si_sink_attempt(m->sink, m->submodel, m->cand[m->acc_pos], stage_names[STAGE_ACCURACY], cst, si_last_error());
            return false;
        }
        pthread_mutex_lock(&m->mu);
        if (!m->acc_ref) m->acc_ref = gen_ref(ref);
        if (!m->standby && m->standby_busy_pos < 0) m->standby = gen_ref(ref); /* a failover to it reuses this compile */
        pthread_mutex_unlock(&m->mu);
    }
    si_ireq *q = NULL;
    si_result st = ref->cm->iface->create_request(ref->cm, &q);
    for (int i = 0; !st && i < m->base.n_inputs; i++) st = q->iface->set_input(q, i, r->base.bound[i]);
    if (!st) st = q->iface->infer(q);
    double worst = 0;
    int worst_k = -1;
    for (int k = 0; !st && k < m->base.n_outputs; k++) {
        si_tensor *a, *b;
        if ((st = r->inner->iface->get_output(r->inner, k, &a)) || (st = q->iface->get_output(q, k, &b))) break;
        double e = nrmse(a, b);
        if (e > worst || worst_k < 0) worst = e, worst_k = k;
    }
    bool breach = !st && worst > m->pol.acc_threshold;
    char msg[256];
    if (!st)
        snprintf(msg, sizeof msg, "NRMSE %.3g against %s%s%s (threshold %.3g)", worst, dev_name(m, m->acc_pos), worst_k >= 0 ? " on output " : "",
                 worst_k >= 0 ? m->out_ports[worst_k].name : "", m->pol.acc_threshold);
    if (st || breach || !atomic_exchange(&m->acc_logged, true))
        si_sink_attempt(m->sink, m->submodel, m->cand[m->acc_pos], stage_names[STAGE_ACCURACY], st, st ? si_last_error() : msg);
    if (q) q->iface->free(q);
    gen_unref(ref);
    if (breach) {
        why->status = SI_ERR_DEVICE;
        snprintf(why->msg, sizeof why->msg, "outputs off the reference: %s", msg);
    }
    return breach;
}

/* The first inference's parameters: kept for warm-ups and probes (constants, alive as long as the model). */
static void remember_params(fs_model *m, fs_req *r) {
    if (!m->in_param || atomic_load(&m->params_seen)) return;
    pthread_mutex_lock(&m->mu);
    if (!atomic_load(&m->params_seen)) {
        for (int i = 0; i < m->base.n_inputs; i++)
            if (m->in_param[i]) m->param_seen[i] = r->base.bound[i];
        atomic_store(&m->params_seen, true);
    }
    pthread_mutex_unlock(&m->mu);
}

static void remember_shapes(fs_model *m, fs_req *r) {
    if (m->pol.failback_ms <= 0) return;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->base.n_inputs; i++) {
        si_tensor *d = &m->probe_in[i];
        memset(d, 0, sizeof *d);
        d->dtype = r->base.bound[i]->dtype;
        d->ndim = r->base.bound[i]->ndim;
        memcpy(d->dims, r->base.bound[i]->dims, sizeof d->dims);
    }
    m->have_probe_shapes = true;
    pthread_mutex_unlock(&m->mu);
}

/* An inference succeeded: a recovery (or fail-back) has proven itself; the back-off starts over. */
static void note_success(fs_model *m) {
    if (!atomic_load_explicit(&m->recovering, memory_order_relaxed)) return;
    pthread_mutex_lock(&m->mu);
    m->failed_rounds = 0;
    atomic_store(&m->recovering, false);
    pthread_mutex_unlock(&m->mu);
}

/* One attempt on generation g (r->inner made from it). STEP_DONE with *out (SI_OK or a status for the
 * caller), or STEP_AGAIN (retry, or re-run after a failover). */
static fs_step infer_once(fs_model *m, fs_req *r, fs_gen *g, int *retries_left, si_result *out) {
    bool guarded = m->pol.infer_timeout_ms > 0;
    si_result st = guarded ? snapshot_inputs(m, r) : SI_OK;
    if (st) { /* our own allocation, not the device's failure */
        *out = st;
        return STEP_DONE;
    }
    remember_params(m, r);
    for (int i = 0; i < m->base.n_inputs && !st; i++)
        st = r->inner->iface->set_input(r->inner, i, guarded && !(m->in_param && m->in_param[i]) ? &r->guard->snap[i] : r->base.bound[i]);
    bool timed_out = false;
    if (!st) st = guarded ? run_guarded(m, r, &timed_out) : r->inner->iface->infer(r->inner);
    if (!st) {
        if (m->pol.check_nan && !outputs_finite(m, r->inner) && next_contradicts(m, r, g)) {
            si_error why = {.status = SI_ERR_DEVICE};
            snprintf(why.msg, sizeof why.msg, "non-finite outputs (NaN/Inf) where the next device gives other values");
            bool q;
            (void)decide(STAGE_CHECK, why.status, false, NULL, &q); /* a rejected output fails over */
            failover_from(m, g, STAGE_CHECK, &why, q, false);
            return STEP_AGAIN;
        }
        if (m->acc_pos >= 0 && g->pos != m->acc_pos && atomic_fetch_add(&m->acc_count, 1) % m->pol.acc_every == 0) {
            si_error why = {.status = SI_ERR_DEVICE};
            if (accuracy_breach(m, r, &why)) {
                bool q;
                (void)decide(STAGE_ACCURACY, why.status, false, NULL, &q); /* an inaccurate device fails over */
                failover_from(m, g, STAGE_ACCURACY, &why, q, false);
                return STEP_AGAIN;
            }
        }
        st = copies_outputs(m) ? copy_outputs(m, r) : view_outputs(m, r);
        if (!st) {
            remember_shapes(m, r);
            note_success(m);
        }
        *out = st;
        return STEP_DONE;
    }
    si_error err;
    si_error_save(&err, st);
    if (!timed_out) revalidate_views(m, r);
    bool q;
    switch (decide(STAGE_INFER, st, timed_out, retries_left, &q)) {
    case ACT_RETURN: *out = si_error_restore(&err); return STEP_DONE;
    case ACT_RETRY:
        si_sink_event(m->sink, SI_EVENT_RETRY, m->submodel, m->cand[g->pos], m->cand[g->pos], "infer", st, "%s", err.msg);
        return STEP_AGAIN;
    case ACT_FAILOVER: break;
    }
    failover_from(m, g, STAGE_INFER, &err, q, timed_out);
    if (!timed_out) detach_inner(m, r, true);
    return STEP_AGAIN;
}

/* Make r's inner request on g (the active generation; r holds a reference in r->gen). STEP_DONE with *out
 * SI_OK when it has one; STEP_AGAIN after a retry or a failover; STEP_DONE with a status for the caller. */
static fs_step join(fs_model *m, fs_req *r, fs_gen *g, si_ireq *spare, int *retries_left, si_result *out) {
    si_ireq *inner = spare;
    bool timed_out = false;
    si_result st = spare ? SI_OK : create_inner(m, g, &inner, &timed_out);
    if (!st) {
        pthread_mutex_lock(&r->cmu);
        r->inner = inner;
        pthread_mutex_unlock(&r->cmu);
        *out = SI_OK;
        return STEP_DONE;
    }
    si_error err;
    si_error_save(&err, st);
    bool q;
    fs_action act = decide(STAGE_CREATE, st, timed_out, retries_left, &q);
    if (act == ACT_RETRY)
        si_sink_event(m->sink, SI_EVENT_RETRY, m->submodel, m->cand[g->pos], m->cand[g->pos], "create", st, "%s", err.msg);
    if (act == ACT_FAILOVER) failover_from(m, g, STAGE_CREATE, &err, q, timed_out);
    gen_unref(r->gen); /* held until now so that g cannot be reused by a new generation */
    r->gen = NULL;
    *out = si_error_restore(&err);
    return act == ACT_RETURN ? STEP_DONE : STEP_AGAIN;
}

static si_result fs_infer(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    fs_model *m = (fs_model *)r->base.model;
    si_result chk = si_ireq_check_inputs(&r->base);
    if (chk) return chk;
    int retries_left = m->pol.retries;
    bool recovery_tried = false;
    for (int round = 0; round < 4 * m->n + 4 + m->pol.retries; round++) {
        /* join the active generation, once no switch is under way */
        pthread_mutex_lock(&m->mu);
        while (m->switching) pthread_cond_wait(&m->cv, &m->mu);
        fs_gen *g = m->active;
        if (g && quarantined(m, g->pos)) { /* lost through another submodel: leave it now */
            pthread_mutex_unlock(&m->mu);
            si_error why = {.status = SI_ERR_DEVICE_LOST};
            snprintf(why.msg, sizeof why.msg, "the device was lost (quarantined)");
            failover_from(m, g, STAGE_QUARANTINE, &why, false, false);
            continue;
        }
        if (!g && !recovery_tried && recovery_due(m)) { /* every candidate failed a while ago: try them again */
            recovery_tried = true;
            m->switching = true;
            activate_from(m, 0, -1, STAGE_RECOVERY, NULL, true);
            m->switching = false;
            pthread_cond_broadcast(&m->cv);
            pthread_mutex_unlock(&m->mu);
            continue;
        }
        if (!g) {
            si_error err;
            si_error_save(&err, all_failed_error(m));
            pthread_mutex_unlock(&m->mu);
            detach_inner(m, r, true); /* kept (held) while the outputs, the last good results, view it */
            return si_error_restore(&err);
        }
        if (r->gen != g) {
            gen_ref(g);
            si_ireq *spare = g->spare;
            g->spare = NULL;
            pthread_mutex_unlock(&m->mu);
            detach_inner(m, r, false);
            r->gen = g;
            si_result st;
            fs_step step = join(m, r, g, spare, &retries_left, &st);
            if (step == STEP_AGAIN) continue;
            if (st) return st;
        } else {
            pthread_mutex_unlock(&m->mu);
        }
        /* bind and run; hold g so that its address cannot be reused by a new generation meanwhile */
        gen_ref(g);
        si_result st;
        fs_step step = infer_once(m, r, g, &retries_left, &st);
        gen_unref(g);
        if (step == STEP_DONE) return st;
    }
    return si_err(SI_ERR_DEVICE, "submodel %d: inference kept failing; giving up after repeated failovers", m->submodel);
}

static void fs_cancel(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    pthread_mutex_lock(&r->cmu);
    si_ireq_cancel(r->inner);
    pthread_mutex_unlock(&r->cmu);
}

static void fs_profile(si_ireq *r_, si_prof *sink) {
    fs_req *r = (fs_req *)r_;
    pthread_mutex_lock(&r->cmu);
    si_ireq_profile(r->inner, sink);
    pthread_mutex_unlock(&r->cmu);
}

static void fs_req_free(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    if (!r) return;
    if (r->inner) r->inner->iface->free(r->inner);
    gen_unref(r->gen);
    if (r->held) r->held->iface->free(r->held);
    gen_unref(r->held_gen);
    guard_free(r->guard);
    si_free(r->fresh);
    pthread_mutex_destroy(&r->cmu);
    si_ireq_destroy(&r->base); /* the outputs are copies: owned */
}

/* Request creation is lazy about the inner request: it is made (and failed over) by the first infer. */
static si_result fs_req_init(si_ireq *r_) {
    fs_req *r = (fs_req *)r_;
    pthread_mutex_init(&r->cmu, NULL);
    if (!(r->fresh = si_calloc((size_t)r_->model->n_outputs + 1, sizeof(si_tensor))))
        return si_err(SI_ERR_NO_MEM, "fail-safe: out of memory creating a request");
    return SI_OK;
}

static const si_ireq_i fs_req_iface = SI_IREQ_IFACE_OF(fs, "fail-safe");

// --- the compiled model's interface ------------------------------------------------------------------------

/* The owner lets go: background work stops at its next check and releases its reference; nothing waits for a
 * call that may not return. */
static void fs_model_free(si_cmodel *m_) {
    fs_model *m = (fs_model *)m_;
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    model_unref(m);
}

/* The active generation's model prepares; a failover's next device binds the constant when it first runs. */
static si_result fs_prepare_input(si_cmodel *m_, int i, const si_tensor *t) {
    fs_model *m = (fs_model *)m_;
    pthread_mutex_lock(&m->mu);
    fs_gen *g = gen_ref(m->active);
    pthread_mutex_unlock(&m->mu);
    si_result s = g ? si_cmodel_prepare_input(g->cm, i, t) : SI_OK;
    gen_unref(g);
    return s;
}

static const si_cmodel_i fs_model_iface = {.create_request = si_ireq_create, .request = &fs_req_iface, .free = fs_model_free,
                                           .prepare_input = fs_prepare_input};

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
    if (pthread_mutex_init(&m->mu, NULL)) { si_free(m); return si_err(SI_ERR_NO_MEM, "failsafe: cannot create a mutex"); }
    if (si_cond_init(&m->cv)) {
        pthread_mutex_destroy(&m->mu);
        si_free(m);
        return si_err(SI_ERR_NO_MEM, "failsafe: cannot create a condition variable");
    }
    atomic_init(&m->refs, 1);
    m->base.iface = &fs_model_iface;
    m->submodel = d->submodel;
    m->n = d->n_candidates;
    m->factory = d->factory;
    m->user = d->user;
    m->pol = d->policy;
    m->sink = si_sink_ref(d->sink);
    m->standby_busy_pos = -1;
    m->cand = si_malloc(sizeof(int) * ((size_t)m->n + 1));
    m->fail_msg = si_calloc((size_t)m->n + 1, sizeof(char *));
    m->device_desc = si_strdup(d->device_desc ? d->device_desc : "");
    if (!m->cand || !m->fail_msg || !m->device_desc) { fs_model_free(&m->base); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    memcpy(m->cand, d->candidates, sizeof(int) * (size_t)m->n);
    m->base.device = m->device_desc;
    bool any_param = false;
    for (int i = 0; d->in_param && i < d->n_in_param; i++) any_param |= d->in_param[i];
    if (any_param) {
        m->in_param = si_calloc((size_t)d->n_in_param + 1, sizeof(bool));
        m->param_seen = si_calloc((size_t)d->n_in_param + 1, sizeof(si_tensor *));
        if (!m->in_param || !m->param_seen) { fs_model_free(&m->base); return si_err(SI_ERR_NO_MEM, "out of memory"); }
        memcpy(m->in_param, d->in_param, sizeof(bool) * (size_t)d->n_in_param);
        m->n_in_param = d->n_in_param;
    }
    m->acc_pos = -1;
    for (int p = 0; p < m->n && m->pol.acc_check; p++)
        if (m->cand[p] == m->pol.acc_device) m->acc_pos = p;
    if (m->pol.acc_every < 1) m->pol.acc_every = 1;
    /* compile on the first candidate that takes it */
    pthread_mutex_lock(&m->mu);
    m->switching = true;
    activate_from(m, 0, -1, STAGE_COMPILE, NULL, false);
    m->switching = false;
    bool ok = m->active != NULL;
    si_error err;
    if (!ok) si_error_save(&err, all_failed_error(m));
    pthread_mutex_unlock(&m->mu);
    if (!ok) {
        fs_model_free(&m->base);
        return si_error_restore(&err);
    }
    si_cmodel *cm = m->active->cm;
    si_result st = SI_OK;
    if (!(m->in_ports = si_ports_copy(cm->inputs, cm->n_inputs)) || !(m->out_ports = si_ports_copy(cm->outputs, cm->n_outputs)))
        st = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!st && !(m->probe_in = si_calloc((size_t)cm->n_inputs + 1, sizeof(si_tensor)))) st = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!st && m->in_param && m->n_in_param != cm->n_inputs)
        st = si_err(SI_ERR_INTERNAL, "failsafe: %d parameter flags for %d inputs", m->n_in_param, cm->n_inputs);
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
