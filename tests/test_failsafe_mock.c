/*
 * test_failsafe_mock.c — the watchdog, the fail-safe layer and the executor over mock devices whose every call
 * the test scripts: a call can fail (with any status), or block on a gate that only the test opens, so that
 * "the watchdog gave up while the call was still running", "a failover waits for a standby compile" or "free
 * is called while a background compile is stuck" happen exactly when the test wants, without sleeps.
 *
 * Each defect of the issue "Never die with the device" (part B) has a test here that fails without its fix:
 *   abandoned_call_reads_snapshot      an abandoned call read the caller's input after infer returned
 *   abandoned_call_request_memory      ... and a previous submodel's output that the request owns
 *   switch_waits_for_standby           requests failed with "every device failed" during another's failover
 *   free_does_not_wait                 freeing the model waited for a stuck background compile
 *   outputs_survive_failure            a failed infer emptied the outputs (fail-safe and executor paths)
 *   recovery_*                         the model never tried its devices again after they had all failed
 *   nan_check_asks_a_working_device    check_outputs=nan took NaN outputs as the answer when the next device's
 *                                      check inference failed (found by the soak, tests/soak/)
 */
#include "exec/exec.h"
#include "failsafe/failsafe.h"
#include "failsafe/watchdog.h"
#include "mock_model.h"
#include "util/thread.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int failures;
#define CHECK(c)                                                                                                  \
    do {                                                                                                          \
        if (!(c)) { fprintf(stderr, "%s:%d: CHECK failed: %s [last error: %s]\n", __FILE__, __LINE__, #c, si_last_error()); failures++; } \
    } while (0)

#define N 8 /* elements per tensor */

/* Poll cond (an expression) every millisecond until it holds, for up to `ms`: for what other threads do. */
#define WAIT_UNTIL(cond, ms)                                                                                      \
    do {                                                                                                          \
        for (int i_ = 0; i_ < (ms) && !(cond); i_++) usleep(1000);                                                \
    } while (0)

// --- a gate: a call blocks on it until the test opens it ------------------------------------------------------

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting; /* calls blocked on it now */
    int entered; /* calls that reached it */
} gate;

static void gate_init(gate *g) {
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    g->waiting = g->entered = 0;
}

static void gate_pass(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->entered++;
    g->waiting++;
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gate_entered(gate *g) {
    pthread_mutex_lock(&g->mu);
    int n = g->entered;
    pthread_mutex_unlock(&g->mu);
    return n;
}

// --- mock devices: out = in + k, every call scripted -----------------------------------------------------------

typedef struct mdev {
    float k;
    _Atomic int compiles, creates, infers; /* calls so far */
    int fail_from, fail_to;  /* infer calls fail_from..fail_to (1-based) fail with fail_status */
    si_result fail_status;
    int gate_infer;          /* this infer call blocks on infer_gate (0: none) */
    gate infer_gate;
    int nan_call;            /* this infer call writes NaN outputs (0: none) */
    bool nan_keep_first;     /* ... but for the first element, which keeps its value */
    int gate_compile;        /* this compile call blocks on compile_gate (0: none) */
    gate compile_gate;
    _Atomic int finished;    /* gated infer calls that ran to the end */
    _Atomic float seen;      /* the first input element a gated infer call read once it was let through */
} mdev;

static mdev devs[3];

typedef struct mmodel {
    si_cmodel base;
    si_port in, out;
    mdev *d;
} mmodel;

static si_result mr_set_input(si_ireq *r, int i, si_tensor *t) {
    return si_bind_input(r->model, i, t, &((mock_req *)r)->in);
}

static si_result mr_get_output(si_ireq *r, int i, si_tensor **t) {
    si_result s = si_output_index(r->model, i);
    if (!s) *t = &((mock_req *)r)->out;
    return s;
}

/* Writes its output in place when the size stays (as a device with device-side buffers mapped back does). */
static si_result mr_infer(si_ireq *r_) {
    mock_req *r = (mock_req *)r_;
    mdev *d = ((mmodel *)r->base.model)->d;
    int call = atomic_fetch_add(&d->infers, 1) + 1;
    si_result chk = si_check_bound(r->base.model, &r->in);
    if (chk) return chk;
    bool gated = call == d->gate_infer;
    if (gated) gate_pass(&d->infer_gate);
    if (call >= d->fail_from && call <= d->fail_to) return si_err(d->fail_status, "mock infer call %d: scripted failure", call);
    const float *x = r->in->data;
    if (gated) atomic_store(&d->seen, x[0]);
    if (r->out.nbytes != r->in->nbytes || !r->out.data) {
        si_tensor_release(&r->out);
        si_result s = si_tensor_init(&r->out, SI_F32, r->in->ndim, r->in->dims);
        if (!s) s = si_tensor_alloc(&r->out);
        if (s) return s;
    }
    float *y = r->out.data;
    for (int64_t i = 0; i < si_tensor_count(r->in); i++) y[i] = call == d->nan_call && (i > 0 || !d->nan_keep_first) ? NAN : x[i] + d->k;
    if (gated) atomic_fetch_add(&d->finished, 1);
    return SI_OK;
}

static const si_ireq_i mreq_iface = {.set_input = mr_set_input, .get_output = mr_get_output, .infer = mr_infer, .free = mock_req_free};

static si_result mm_create(si_cmodel *m, si_ireq **out) {
    atomic_fetch_add(&((mmodel *)m)->d->creates, 1);
    return mock_req_new(m, &mreq_iface, sizeof(mock_req), out);
}

static void mm_free(si_cmodel *m) { free(m); }

static const si_cmodel_i mmodel_iface = {.create_request = mm_create, .free = mm_free};

static si_cmodel *mock_model(mdev *d) {
    mmodel *m = calloc(1, sizeof *m);
    m->base.iface = &mmodel_iface;
    mock_ports(&m->base, &m->in, &m->out, N);
    m->d = d;
    return &m->base;
}

static si_result factory(void *user, int device, si_cmodel **out) {
    (void)user;
    mdev *d = &devs[device];
    int call = atomic_fetch_add(&d->compiles, 1) + 1;
    if (call == d->gate_compile) gate_pass(&d->compile_gate);
    *out = mock_model(d);
    return SI_OK;
}

/* Fresh devices: D0 adds 1, D1 adds 10, D2 adds 100; nothing fails, nothing blocks. */
static void reset_devs(void) {
    for (int i = 0; i < 3; i++) {
        mdev *d = &devs[i];
        memset(d, 0, sizeof *d);
        d->k = i == 0 ? 1.0f : i == 1 ? 10.0f : 100.0f;
        d->fail_status = SI_ERR_DEVICE;
        gate_init(&d->infer_gate);
        gate_init(&d->compile_gate);
    }
}

static void open_all_gates(void) {
    for (int i = 0; i < 3; i++) {
        gate_open(&devs[i].infer_gate);
        gate_open(&devs[i].compile_gate);
    }
}

// --- fixtures -------------------------------------------------------------------------------------------------

static _Atomic int sinks_released; /* sinks whose last reference is gone */
static void sink_released(void *arg) { (void)arg; atomic_fetch_add(&sinks_released, 1); }

static si_sink *new_sink(void) {
    const char *names[3] = {"D0", "D1", "D2"};
    si_sink *s = NULL;
    CHECK(si_sink_create(names, 3, NULL, NULL, &s) == SI_OK);
    s->cleanup = sink_released;
    return s;
}

static si_cmodel *make_fs(si_sink *s, int n, si_failsafe_policy pol) {
    int cand[3] = {0, 1, 2};
    si_failsafe_desc d = {.submodel = 0, .n_candidates = n, .candidates = cand, .factory = factory, .policy = pol,
                          .sink = s, .device_desc = "mock"};
    si_cmodel *cm = NULL;
    CHECK(si_failsafe_create(&d, &cm) == SI_OK);
    return cm;
}

static si_tensor *vec(float v) {
    int64_t n = N;
    si_tensor *t = NULL;
    if (si_tensor_create(SI_F32, 1, &n, &t)) return NULL;
    for (int i = 0; i < N; i++) ((float *)t->data)[i] = v;
    return t;
}

static bool all_equal(const si_tensor *t, float v) {
    if (!t || !t->data || t->dtype != SI_F32 || si_tensor_count(t) != N) return false;
    for (int i = 0; i < N; i++)
        if (((const float *)t->data)[i] != v) return false;
    return true;
}

/* A request of cm with x set as input 0 and one inference run (each step checked to succeed). */
static si_ireq *infer_once(si_cmodel *cm, si_tensor *x) {
    si_ireq *r = NULL;
    CHECK(cm->iface->create_request(cm, &r) == SI_OK);
    CHECK(r->iface->set_input(r, 0, x) == SI_OK);
    CHECK(r->iface->infer(r) == SI_OK);
    return r;
}

static int count_events(si_sink *s, si_event_type t, const char *stage) {
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = 0; i < s->n_log; i++) n += s->log[i].type == t && (!stage || !strcmp(s->log[i].stage, stage));
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Let go of a sink and wait (bounded) until everything holding it has finished. */
static void release_sink(si_sink *s) {
    int before = atomic_load(&sinks_released);
    si_sink_unref(s);
    open_all_gates();
    WAIT_UNTIL(atomic_load(&sinks_released) > before, 10000);
    CHECK(atomic_load(&sinks_released) > before);
}

// --- the watchdog unit ------------------------------------------------------------------------------------------

typedef struct wd_ctx {
    gate *g;             /* the call blocks here when set */
    si_result ret;
    pthread_t ran_on;
    _Atomic int abandons, reclaims;
    pthread_t abandoned_on;
    _Atomic int reclaim_status;
} wd_ctx;

static si_result wd_run(void *arg) {
    wd_ctx *c = arg;
    c->ran_on = pthread_self();
    if (c->g) gate_pass(c->g);
    return c->ret ? si_err(c->ret, "the call's own message %d", 42) : SI_OK;
}

static void wd_abandon(void *arg) {
    wd_ctx *c = arg;
    c->abandoned_on = pthread_self();
    atomic_fetch_add(&c->abandons, 1);
}

static void wd_reclaim(void *arg, si_result st) {
    wd_ctx *c = arg;
    atomic_store(&c->reclaim_status, (int)st);
    atomic_fetch_add(&c->reclaims, 1);
}

static const si_wd_ops wd_ops = {.run = wd_run, .abandon = wd_abandon, .reclaim = wd_reclaim};

static void test_watchdog(void) {
    si_watchdog *w = NULL;
    bool abandoned = true;
    wd_ctx a = {.ret = SI_ERR_DEVICE};
    /* returns in time: its status and message come back to this thread */
    si_err_clear();
    CHECK(si_watchdog_call(&w, &wd_ops, &a, 5000, "mock", &abandoned) == SI_ERR_DEVICE);
    CHECK(!abandoned && w != NULL);
    CHECK(strstr(si_last_error(), "the call's own message 42") != NULL);
    CHECK(!pthread_equal(a.ran_on, pthread_self()));
    /* the worker is reused for the next call */
    wd_ctx b = {.ret = SI_OK};
    CHECK(si_watchdog_call(&w, &wd_ops, &b, 5000, "mock", &abandoned) == SI_OK && !abandoned);
    CHECK(pthread_equal(a.ran_on, b.ran_on));
    CHECK(atomic_load(&a.abandons) == 0 && atomic_load(&a.reclaims) == 0);
    /* a call that does not return in time is abandoned: the hook runs on this thread, the worker goes with the
     * call, and the call is reclaimed (with its own status) when it returns, not before */
    gate g;
    gate_init(&g);
    wd_ctx c = {.g = &g, .ret = SI_ERR_DEVICE_LOST};
    CHECK(si_watchdog_call(&w, &wd_ops, &c, 30, "mock call", &abandoned) == SI_ERR_DEVICE);
    CHECK(abandoned && w == NULL);
    CHECK(strstr(si_last_error(), "mock call did not return within 30 ms") != NULL);
    CHECK(atomic_load(&c.abandons) == 1 && pthread_equal(c.abandoned_on, pthread_self()));
    CHECK(gate_entered(&g) == 1 && atomic_load(&c.reclaims) == 0);
    gate_open(&g);
    WAIT_UNTIL(atomic_load(&c.reclaims) == 1, 10000);
    CHECK(atomic_load(&c.reclaims) == 1);
    CHECK(atomic_load(&c.reclaim_status) == SI_ERR_DEVICE_LOST);
    /* a fresh worker for the next call */
    wd_ctx d = {.ret = SI_OK};
    CHECK(si_watchdog_call(&w, &wd_ops, &d, 5000, "mock", &abandoned) == SI_OK && w != NULL);
    si_watchdog_free(w);
    si_watchdog_free(NULL);
}

static void test_error_snapshot(void) {
    si_error e;
    si_err(SI_ERR_PARSE, "first %s", "message");
    CHECK(si_error_save(&e, SI_ERR_PARSE) == SI_ERR_PARSE);
    si_err(SI_ERR_IO, "something else");
    CHECK(si_error_restore(&e) == SI_ERR_PARSE && !strcmp(si_last_error(), "first message"));
    CHECK(si_error_save(&e, SI_OK) == SI_OK && e.msg[0] == 0);
}

static _Atomic int callbacks;
static void count_callback(const si_event *e, void *user) {
    (void)e;
    (void)user;
    atomic_fetch_add(&callbacks, 1);
}

/* After si_sink_close (si_compiled_free calls it), background work may still log events, but the user's
 * callback (whose `user` the caller may free now) is never called again. */
static void test_sink_close(void) {
    const char *names[1] = {"D0"};
    si_sink *s = NULL;
    CHECK(si_sink_create(names, 1, count_callback, NULL, &s) == SI_OK);
    si_sink_event(s, SI_EVENT_COMPILE, 0, -1, 0, "compile", SI_OK, "before");
    CHECK(atomic_load(&callbacks) == 1);
    si_sink_close(s);
    si_sink_event(s, SI_EVENT_COMPILE, 0, -1, 0, "compile", SI_OK, "after");
    CHECK(atomic_load(&callbacks) == 1 && s->n_log == 2);
    si_sink_unref(s);
}

// --- defect 1: abandoned calls own what they read ------------------------------------------------------------

/* D0's first inference is stuck past the watchdog; the model fails over to D1 and the infer succeeds. The caller
 * then reuses its input tensor (new values), or frees the request and the tensor, as the header allows. When the
 * stuck call is let through, it must read its own copy of the input (1.0), never the caller's tensor. */
static void abandoned_call(bool free_first) {
    reset_devs();
    devs[0].gate_infer = 1;
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.infer_timeout_ms = 2000});
    si_tensor *x = vec(1.0f);
    si_ireq *r = infer_once(cm, x);
    si_tensor *y;
    CHECK(r->iface->get_output(r, 0, &y) == SI_OK && all_equal(y, 11.0f)); /* D1: x + 10 */
    CHECK(gate_entered(&devs[0].infer_gate) == 1 && atomic_load(&devs[0].finished) == 0);
    if (free_first) { /* the worked example's order: request, then tensor (ASan reports a read of either) */
        r->iface->free(r);
        si_tensor_free(x);
    } else {
        for (int i = 0; i < N; i++) ((float *)x->data)[i] = 99.0f;
    }
    gate_open(&devs[0].infer_gate);
    WAIT_UNTIL(atomic_load(&devs[0].finished) == 1, 10000);
    CHECK(atomic_load(&devs[0].finished) == 1);
    CHECK(atomic_load(&devs[0].seen) == 1.0f); /* the snapshot, not the caller's tensor */
    if (!free_first) {
        CHECK(r->iface->infer(r) == SI_OK && all_equal(y, 109.0f)); /* still on D1, with the new values */
        r->iface->free(r);
        si_tensor_free(x);
    }
    cm->iface->free(cm);
    release_sink(s);
}

static void test_abandoned_call_reads_snapshot(void) {
    abandoned_call(false);
    abandoned_call(true);
}

/* A two-submodel executor: submodel 0 runs on one plain device (D2, +100), submodel 1 is fail-safe over D0, D1
 * with a watchdog; it reads submodel 0's output, a tensor the request owns. D0's call is stuck and abandoned.
 * The next infer rewrites submodel 0's output (in place), or the request is freed with it: the stuck call must
 * still read what it was given (1 + 100). */
static void request_memory(bool free_request) {
    reset_devs();
    devs[0].gate_infer = 1;
    si_sink *s = new_sink();
    si_cmodel *subs[2] = {mock_model(&devs[2]), make_fs(s, 2, (si_failsafe_policy){.infer_timeout_ms = 2000})};
    si_src in0[1] = {{.kind = SI_SRC_INPUT, .index = 0}};
    si_src in1[1] = {{.kind = SI_SRC_SUB, .index = 0, .port = 0}};
    si_src *sub_inputs[2] = {in0, in1};
    si_port port = {.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {N}};
    si_src out_src[1] = {{.kind = SI_SRC_SUB, .index = 1, .port = 0}};
    si_exec_desc ed = {.n_subs = 2, .subs = subs, .sub_inputs = sub_inputs, .n_inputs = 1, .n_outputs = 1,
                       .inputs = &port, .outputs = &port, .out_src = out_src, .label = "mock"};
    si_cmodel *cm = NULL;
    CHECK(si_exec_create(&ed, &cm) == SI_OK);
    si_tensor *x = vec(1.0f);
    si_ireq *r = infer_once(cm, x);
    si_tensor *y;
    CHECK(r->iface->get_output(r, 0, &y) == SI_OK && all_equal(y, 111.0f)); /* 1 + 100 + 10 */
    CHECK(gate_entered(&devs[0].infer_gate) == 1);
    if (free_request) {
        r->iface->free(r);
    } else {
        for (int i = 0; i < N; i++) ((float *)x->data)[i] = 5.0f;
        CHECK(r->iface->infer(r) == SI_OK && all_equal(y, 115.0f)); /* submodel 0's output is now 105 */
    }
    gate_open(&devs[0].infer_gate);
    WAIT_UNTIL(atomic_load(&devs[0].finished) == 1, 10000);
    CHECK(atomic_load(&devs[0].finished) == 1);
    CHECK(atomic_load(&devs[0].seen) == 101.0f);
    if (!free_request) r->iface->free(r);
    si_tensor_free(x);
    cm->iface->free(cm);
    release_sink(s);
}

static void test_abandoned_call_request_memory(void) {
    request_memory(false);
    request_memory(true);
}

// --- defect 2: a switch under way makes other requests wait, never fail ----------------------------------------

typedef struct infer_job {
    si_ireq *r;
    si_result st;
    _Atomic bool done;
} infer_job;

static void *infer_main(void *arg) {
    infer_job *j = arg;
    j->st = j->r->iface->infer(j->r);
    atomic_store(&j->done, true);
    return NULL;
}

static bool attempt_logged(si_sink *s, int device, const char *stage) {
    pthread_mutex_lock(&s->mu);
    bool found = false;
    for (int i = 0; i < s->n_attempts && !found; i++)
        found = s->attempts[i].device == device && !strcmp(s->attempts[i].stage, stage);
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* standby=on; D1's standby compile is stuck. Request A's infer fails on D0 and its failover waits for that
 * compile. Meanwhile request B infers: it must wait for the failover and then run on D1, not fail with
 * "every device failed ... D1: not tried". The failover uses the standby compile (no second compile of D1). */
static void test_switch_waits_for_standby(void) {
    reset_devs();
    devs[1].gate_compile = 1;
    devs[0].fail_from = devs[0].fail_to = 2;
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.standby = true});
    WAIT_UNTIL(gate_entered(&devs[1].compile_gate) == 1, 10000);
    CHECK(gate_entered(&devs[1].compile_gate) == 1); /* the standby compile is stuck */
    si_ireq *ra = NULL, *rb = NULL;
    CHECK(cm->iface->create_request(cm, &ra) == SI_OK && cm->iface->create_request(cm, &rb) == SI_OK);
    si_tensor *x = vec(1.0f);
    CHECK(ra->iface->set_input(ra, 0, x) == SI_OK && rb->iface->set_input(rb, 0, x) == SI_OK);
    CHECK(rb->iface->infer(rb) == SI_OK); /* D0 call 1 */
    infer_job a = {.r = ra}, b = {.r = rb};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, infer_main, &a); /* D0 call 2 fails: the failover waits for D1's standby */
    WAIT_UNTIL(attempt_logged(s, 0, "infer"), 10000);
    CHECK(attempt_logged(s, 0, "infer"));
    pthread_create(&tb, NULL, infer_main, &b);
    WAIT_UNTIL(atomic_load(&b.done), 200); /* without the fix, B fails at once; with it, B waits */
    gate_open(&devs[1].compile_gate);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.st == SI_OK && b.st == SI_OK);
    si_tensor *y;
    CHECK(rb->iface->get_output(rb, 0, &y) == SI_OK && all_equal(y, 11.0f));
    CHECK(si_failsafe_active_device(cm) == 1);
    CHECK(atomic_load(&devs[1].compiles) == 1); /* the standby compile was used */
    CHECK(count_events(s, SI_EVENT_ALL_FAILED, NULL) == 0 && count_events(s, SI_EVENT_FAILOVER, NULL) == 1);
    ra->iface->free(ra);
    rb->iface->free(rb);
    si_tensor_free(x);
    cm->iface->free(cm);
    release_sink(s);
}

// --- defect 3: freeing never waits for background work or abandoned calls --------------------------------------

typedef struct watcher {
    gate *g;
    _Atomic bool stop, opened;
} watcher;

static void *watcher_main(void *arg) { /* a free that waits would hang the test: let it through after 10 s */
    watcher *w = arg;
    for (int i = 0; i < 10000 && !atomic_load(&w->stop); i++) usleep(1000);
    if (!atomic_load(&w->stop)) {
        atomic_store(&w->opened, true);
        gate_open(w->g);
    }
    return NULL;
}

static void test_free_does_not_wait(void) {
    reset_devs();
    devs[1].gate_compile = 1; /* the standby compile of D1 never returns until the test says so */
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.standby = true});
    WAIT_UNTIL(gate_entered(&devs[1].compile_gate) == 1, 10000);
    CHECK(gate_entered(&devs[1].compile_gate) == 1);
    watcher w = {.g = &devs[1].compile_gate};
    pthread_t t;
    pthread_create(&t, NULL, watcher_main, &w);
    cm->iface->free(cm); /* must return while the compile is stuck */
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    CHECK(!atomic_load(&w.opened));
    int before = atomic_load(&sinks_released);
    si_sink_unref(s);
    CHECK(atomic_load(&sinks_released) == before); /* the stuck compile still holds the model and the sink */
    gate_open(&devs[1].compile_gate);
    WAIT_UNTIL(atomic_load(&sinks_released) == before + 1, 10000);
    CHECK(atomic_load(&sinks_released) == before + 1); /* ... and lets go when it returns */
}

// --- defect 4: outputs after a failed infer -------------------------------------------------------------------

/* Inference 1 works; inference 2 fails on every device. The output tensor is the same object, with inference
 * 1's shape and values, on every path: views, copies (watchdog, NaN check). */
static void outputs_after_failure(si_failsafe_policy pol, const char *what) {
    reset_devs();
    devs[0].fail_from = 2, devs[0].fail_to = 99;
    devs[1].fail_from = 1, devs[1].fail_to = 99;
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, pol);
    si_tensor *x = vec(1.0f), *y1, *y2;
    si_ireq *r = infer_once(cm, x);
    CHECK(r->iface->get_output(r, 0, &y1) == SI_OK && all_equal(y1, 2.0f));
    for (int i = 0; i < N; i++) ((float *)x->data)[i] = 3.0f;
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE && strstr(si_last_error(), "every device failed"));
    CHECK(r->iface->get_output(r, 0, &y2) == SI_OK && y1 == y2);
    if (!all_equal(y2, 2.0f) || y2->ndim != 1) {
        fprintf(stderr, "  [%s] output after a failed infer: ndim %d count %lld data %p\n", what, y2->ndim,
                (long long)si_tensor_count(y2), y2->data);
        failures++;
    }
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE && all_equal(y2, 2.0f)); /* and again */
    r->iface->free(r);
    si_tensor_free(x);
    cm->iface->free(cm);
    release_sink(s);
}

/* The executor: output 0 comes from submodel 0 (fail-safe, works), output 1 from submodel 1 (fails at the 2nd
 * inference, every device). After the failed infer both outputs are inference 1's, not a mix. */
static void exec_outputs_after_failure(void) {
    reset_devs();
    devs[2].fail_from = 2, devs[2].fail_to = 99;
    si_sink *s = new_sink();
    si_cmodel *subs[2] = {make_fs(s, 2, (si_failsafe_policy){0}), mock_model(&devs[2])};
    si_src in0[1] = {{.kind = SI_SRC_INPUT, .index = 0}};
    si_src in1[1] = {{.kind = SI_SRC_SUB, .index = 0, .port = 0}};
    si_src *sub_inputs[2] = {in0, in1};
    si_port ports_in[1] = {{.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {N}}};
    si_port ports_out[2] = {{.name = "a", .dtype = SI_F32, .ndim = 1, .dims = {N}}, {.name = "b", .dtype = SI_F32, .ndim = 1, .dims = {N}}};
    si_src out_src[2] = {{.kind = SI_SRC_SUB, .index = 0, .port = 0}, {.kind = SI_SRC_SUB, .index = 1, .port = 0}};
    si_exec_desc ed = {.n_subs = 2, .subs = subs, .sub_inputs = sub_inputs, .n_inputs = 1, .n_outputs = 2,
                       .inputs = ports_in, .outputs = ports_out, .out_src = out_src, .label = "mock"};
    si_cmodel *cm = NULL;
    CHECK(si_exec_create(&ed, &cm) == SI_OK);
    si_tensor *x = vec(1.0f), *a1, *b1, *a2, *b2;
    si_ireq *r = infer_once(cm, x);
    CHECK(r->iface->get_output(r, 0, &a1) == SI_OK && r->iface->get_output(r, 1, &b1) == SI_OK);
    CHECK(all_equal(a1, 2.0f) && all_equal(b1, 102.0f));
    for (int i = 0; i < N; i++) ((float *)x->data)[i] = 3.0f;
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE);
    CHECK(r->iface->get_output(r, 0, &a2) == SI_OK && r->iface->get_output(r, 1, &b2) == SI_OK);
    CHECK(a1 == a2 && b1 == b2);
    CHECK(all_equal(a2, 2.0f) && all_equal(b2, 102.0f)); /* inference 1's, both */
    devs[2].fail_to = 2; /* works again */
    CHECK(r->iface->infer(r) == SI_OK && all_equal(a2, 4.0f) && all_equal(b2, 104.0f));
    r->iface->free(r);
    si_tensor_free(x);
    cm->iface->free(cm);
    release_sink(s);
}

static void test_outputs_survive_failure(void) {
    outputs_after_failure((si_failsafe_policy){0}, "views");
    outputs_after_failure((si_failsafe_policy){.infer_timeout_ms = 5000}, "watchdog");
    outputs_after_failure((si_failsafe_policy){.check_nan = true}, "check_nan");
    outputs_after_failure((si_failsafe_policy){.retries = 2}, "retries");
    exec_outputs_after_failure();
}

/* check_outputs=nan: D0 gives NaN, D1's check inference fails, D2 gives finite outputs: the NaN outputs are a
 * failure of D0 (D2 says so), not the answer; the inference re-runs on D1. */
static void test_nan_check_asks_a_working_device(void) {
    reset_devs();
    devs[0].nan_call = 1;
    devs[1].fail_from = devs[1].fail_to = 1; /* the check's inference on D1 */
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 3, (si_failsafe_policy){.check_nan = true});
    si_ireq *r = NULL;
    si_tensor *x = vec(2.0f), *y = NULL;
    CHECK(cm && !cm->iface->create_request(cm, &r));
    if (r) {
        CHECK(r->iface->set_input(r, 0, x) == SI_OK);
        CHECK(r->iface->infer(r) == SI_OK);
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK);
        CHECK(all_equal(y, 12.0f)); /* D1's answer: 2 + 10; not D0's NaN */
        CHECK(count_events(s, SI_EVENT_FAILOVER, "check") == 1);
        CHECK(atomic_load(&devs[2].infers) == 1); /* D2 was asked */
        r->iface->free(r);
    }
    if (cm) cm->iface->free(cm);
    si_tensor_free(x);
    release_sink(s);
}

/* check_outputs=nan compares element by element: an output whose first element is -inf on every device (the
 * input's -inf, as a Log(0) or an attention mask gives) is the answer, and stays on D0; when D0 also writes NaN
 * over the other elements, where D1 gives finite values, the legitimate -inf must not hide them: D0 fails over. */
static void test_nan_check_element_by_element(void) {
    for (int injected = 0; injected < 2; injected++) {
        reset_devs();
        devs[0].nan_call = injected ? 1 : 0;
        devs[0].nan_keep_first = true;
        si_sink *s = new_sink();
        si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.check_nan = true});
        si_ireq *r = NULL;
        si_tensor *x = vec(2.0f), *y = NULL;
        ((float *)x->data)[0] = -INFINITY;
        CHECK(cm && !cm->iface->create_request(cm, &r));
        if (r) {
            CHECK(r->iface->set_input(r, 0, x) == SI_OK);
            CHECK(r->iface->infer(r) == SI_OK);
            CHECK(r->iface->get_output(r, 0, &y) == SI_OK);
            const float *v = y ? y->data : NULL;
            bool rest = v != NULL;
            for (int i = 1; v && i < N; i++) rest &= v[i] == (injected ? 12.0f : 3.0f); /* D1's 2 + 10, D0's 2 + 1 */
            CHECK(v && v[0] == -INFINITY && rest);
            CHECK(count_events(s, SI_EVENT_FAILOVER, "check") == injected);
            CHECK(si_failsafe_active_device(cm) == injected);
            CHECK(atomic_load(&devs[1].infers) >= 1); /* D1 was asked in both cases */
            r->iface->free(r);
        }
        if (cm) cm->iface->free(cm);
        si_tensor_free(x);
        release_sink(s);
    }
}

// --- defect 5: recovery after every device failed ----------------------------------------------------------

/* Parse "tried again in N ms" from the all-failed message; -1 when absent. */
static double retry_in_ms(void) {
    const char *p = strstr(si_last_error(), "tried again in ");
    return p ? atof(p + strlen("tried again in ")) : -1;
}

/* The "tried again in N ms" of the k-th (0-based) all_failed event, -1 when absent. */
static double logged_wait(si_sink *s, int k) {
    double w = -1;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_log; i++)
        if (s->log[i].type == SI_EVENT_ALL_FAILED && k-- == 0) {
            const char *p = strstr(s->log[i].message, "tried again in ");
            w = p ? atof(p + strlen("tried again in ")) : -1;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return w;
}

/* D0 fails inference 2 only; D1 fails its first inference: inference 2 leaves no device. With recovery_ms the
 * model tries again after the back-off and runs on D0 again; each fruitless round doubles the back-off. The
 * back-offs are long enough that the failing inference returns before its back-off is over. */
static void test_recovery_after_all_failed(void) {
    reset_devs();
    devs[0].fail_from = devs[0].fail_to = 2;
    devs[1].fail_from = 1, devs[1].fail_to = 99;
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.recovery_ms = 500});
    si_tensor *x = vec(1.0f), *y;
    si_ireq *r = infer_once(cm, x);
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE && strstr(si_last_error(), "every device failed"));
    CHECK(retry_in_ms() >= 0 && retry_in_ms() <= 500);
    CHECK(si_failsafe_active_device(cm) == -1);
    /* the next inferences after the back-off: a recovery round finds D0 working again */
    si_result st = SI_ERR_DEVICE;
    WAIT_UNTIL((st = r->iface->infer(r)) == SI_OK, 5000);
    CHECK(st == SI_OK);
    CHECK(r->iface->get_output(r, 0, &y) == SI_OK && all_equal(y, 2.0f));
    CHECK(si_failsafe_active_device(cm) == 0);
    CHECK(count_events(s, SI_EVENT_ALL_FAILED, NULL) == 1);
    CHECK(count_events(s, SI_EVENT_FAILBACK, "recovery") == 1);
    r->iface->free(r);
    cm->iface->free(cm);
    release_sink(s);

    /* every round fails: the back-off doubles (50, 100, 200 ms: as the all_failed events say) */
    reset_devs();
    devs[0].fail_from = 2, devs[0].fail_to = 999;
    devs[1].fail_from = 1, devs[1].fail_to = 999;
    s = new_sink();
    cm = make_fs(s, 2, (si_failsafe_policy){.recovery_ms = 50});
    r = infer_once(cm, x);
    WAIT_UNTIL(r->iface->infer(r) == SI_ERR_DEVICE && count_events(s, SI_EVENT_ALL_FAILED, NULL) >= 3, 10000);
    CHECK(count_events(s, SI_EVENT_ALL_FAILED, NULL) >= 3);
    for (int k = 0; k < 3; k++) {
        double w = logged_wait(s, k), want = 50.0 * (1 << k);
        if (!(w > want * 0.8 && w <= want)) {
            fprintf(stderr, "  round %d: back-off %.0f ms, expected %.0f\n", k, w, want);
            failures++;
        }
    }
    CHECK(count_events(s, SI_EVENT_FAILBACK, "recovery") >= 2); /* each round got D0 going, then it failed */
    r->iface->free(r);
    cm->iface->free(cm);
    release_sink(s);

    /* recovery_ms = 0: stays failed */
    reset_devs();
    devs[0].fail_from = devs[0].fail_to = 2;
    devs[1].fail_from = 1, devs[1].fail_to = 99;
    s = new_sink();
    cm = make_fs(s, 2, (si_failsafe_policy){0});
    r = infer_once(cm, x);
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE && retry_in_ms() < 0);
    usleep(100000);
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE);
    CHECK(atomic_load(&devs[0].compiles) == 1); /* never tried again */
    r->iface->free(r);
    cm->iface->free(cm);
    release_sink(s);
    si_tensor_free(x);
}

/* A watchdog timeout quarantines the device for recovery_ms, not for good (recovery_ms = 0: for good). A lost
 * device stays quarantined until a recovery round gets it working. */
static void test_recovery_quarantine(void) {
    si_tensor *x = vec(1.0f);
    for (int on = 0; on < 2; on++) {
        reset_devs();
        devs[0].gate_infer = 1;
        si_sink *s = new_sink();
        si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.infer_timeout_ms = 2000, .recovery_ms = on ? 1000 : 0});
        si_ireq *r = NULL;
        CHECK(cm->iface->create_request(cm, &r) == SI_OK);
        CHECK(r->iface->set_input(r, 0, x) == SI_OK);
        CHECK(r->iface->infer(r) == SI_OK && si_failsafe_active_device(cm) == 1);
        CHECK(si_sink_quarantined(s, 0));
        pthread_mutex_lock(&s->mu);
        bool found = false;
        for (int i = 0; i < s->n_log; i++)
            found |= s->log[i].type == SI_EVENT_QUARANTINE &&
                     strstr(s->log[i].message, on ? "D0 quarantined for 1000 ms: infer did not return" : "D0 quarantined: infer did not return");
        pthread_mutex_unlock(&s->mu);
        CHECK(found); /* the first timeout: recovery_ms (then doubling per timeout), or for good */
        if (on) {
            WAIT_UNTIL(!si_sink_quarantined(s, 0), 5000);
    CHECK(!si_sink_quarantined(s, 0));
        } else {
            CHECK(atomic_load(&s->q_until_us[0]) == INT64_MAX);
        }
        r->iface->free(r);
        cm->iface->free(cm);
        release_sink(s);
    }
    /* lost: D0 loses its device at inference 2 (transiently, as a restarted driver would), D1 fails too; the
     * recovery round tries D0 although it is quarantined, and it works: the quarantine is lifted */
    reset_devs();
    devs[0].fail_from = devs[0].fail_to = 2;
    devs[0].fail_status = SI_ERR_DEVICE_LOST;
    devs[1].fail_from = 1, devs[1].fail_to = 99;
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.recovery_ms = 500});
    si_ireq *r = infer_once(cm, x);
    CHECK(r->iface->infer(r) == SI_ERR_DEVICE);
    CHECK(si_sink_quarantined(s, 0) && atomic_load(&s->q_until_us[0]) == INT64_MAX);
    si_result st = SI_ERR_DEVICE;
    WAIT_UNTIL((st = r->iface->infer(r)) == SI_OK, 5000);
    CHECK(st == SI_OK);
    CHECK(si_failsafe_active_device(cm) == 0 && !si_sink_quarantined(s, 0));
    r->iface->free(r);
    cm->iface->free(cm);
    release_sink(s);
    si_tensor_free(x);
}

/* Requests that arrive while a recovery round runs wait for it and share its result. */
static void test_recovery_concurrent(void) {
    reset_devs();
    devs[0].fail_from = devs[0].fail_to = 2;
    devs[1].fail_from = 1, devs[1].fail_to = 99;
    devs[0].gate_compile = 2; /* the recovery round's compile of D0 is held until the others have arrived */
    si_sink *s = new_sink();
    si_cmodel *cm = make_fs(s, 2, (si_failsafe_policy){.recovery_ms = 300});
    si_tensor *x = vec(1.0f);
    si_ireq *r[4];
    for (int i = 0; i < 4; i++) {
        CHECK(cm->iface->create_request(cm, &r[i]) == SI_OK);
        CHECK(r[i]->iface->set_input(r[i], 0, x) == SI_OK);
    }
    CHECK(r[0]->iface->infer(r[0]) == SI_OK);
    CHECK(r[0]->iface->infer(r[0]) == SI_ERR_DEVICE);
    usleep(350000); /* past the back-off */
    infer_job j[4];
    pthread_t t[4];
    j[0] = (infer_job){.r = r[0]};
    pthread_create(&t[0], NULL, infer_main, &j[0]);
    WAIT_UNTIL(gate_entered(&devs[0].compile_gate) == 1, 5000);
    CHECK(gate_entered(&devs[0].compile_gate) == 1);
    for (int i = 1; i < 4; i++) {
        j[i] = (infer_job){.r = r[i]};
        pthread_create(&t[i], NULL, infer_main, &j[i]);
    }
    WAIT_UNTIL(atomic_load(&j[1].done), 100);
    gate_open(&devs[0].compile_gate);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(j[i].st == SI_OK);
        r[i]->iface->free(r[i]);
    }
    CHECK(atomic_load(&devs[0].compiles) == 2); /* one recovery round */
    si_tensor_free(x);
    cm->iface->free(cm);
    release_sink(s);
}

int main(void) {
    test_watchdog();
    test_error_snapshot();
    test_sink_close();
    test_abandoned_call_reads_snapshot();
    test_abandoned_call_request_memory();
    test_switch_waits_for_standby();
    test_free_does_not_wait();
    test_outputs_survive_failure();
    test_recovery_after_all_failed();
    test_recovery_quarantine();
    test_recovery_concurrent();
    test_nan_check_asks_a_working_device();
    test_nan_check_element_by_element();
    if (failures) fprintf(stderr, "test_failsafe_mock: %d failures\n", failures);
    else printf("test_failsafe_mock: ok\n");
    return failures ? 1 : 0;
}
