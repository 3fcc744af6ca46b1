/*
 * test_failsafe.c — the fail-safe compiled model, driven directly: two candidate devices, "A" (the REF device
 * behind a fault wrapper) and "B" (plain REF), over tests/data/small.onnx. Every policy and failure path is
 * checked against the outputs of a fault-free run.
 */
#include "si_test.h"

#include "device/faulty/faulty.h"
#include "failsafe/failsafe.h"
#include "onnx/onnx.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>


static si_graph *graph;
static si_device *devs[2];

static si_result factory(void *user, int d, si_cmodel **out) {
    (void)user;
    return devs[d]->iface->compile(devs[d], graph, NULL, out);
}

static si_result load_graph(void) {
    char *buf;
    size_t len;
    si_result s = si_read_file(SI_TEST_DATA "/small.onnx", &buf, &len);
    if (s) return s;
    s = si_onnx_load(buf, len, NULL, &graph);
    si_free(buf);
    if (s) return s;
    si_val *x = &graph->values[graph->inputs[0]]; /* X: [batch, 3] -> [2, 3] */
    x->dims[0] = 2;
    return si_graph_infer_shapes(graph, 1 << 20);
}

typedef struct setup {
    si_fault_spec *spec_a, *spec_b;
    si_sink *sink;
    si_cmodel *cm;
} setup;

static si_tensor *input; /* X, [2,3] */
static float expected[6];

/* A fault-free run on plain REF gives the expected outputs. */
static void compute_expected(void) {
    si_cmodel *cm;
    si_ireq *r;
    CHECK(si_device_ref.iface->compile(&si_device_ref, graph, NULL, &cm) == SI_OK);
    CHECK(cm->iface->create_request(cm, &r) == SI_OK);
    CHECK(r->iface->set_input(r, 0, input) == SI_OK);
    CHECK(r->iface->infer(r) == SI_OK);
    si_tensor *y;
    CHECK(r->iface->get_output(r, 0, &y) == SI_OK);
    CHECK(si_tensor_count(y) == 6);
    memcpy(expected, y->data, sizeof expected);
    r->iface->free(r);
    cm->iface->free(cm);
}

static bool output_ok(si_ireq *r) {
    si_tensor *y;
    if (r->iface->get_output(r, 0, &y) || si_tensor_count(y) != 6 || !y->data) return false;
    for (int i = 0; i < 6; i++)
        if (fabsf(((float *)y->data)[i] - expected[i]) > 1e-6f) return false;
    return true;
}

static si_result make(setup *st, const char *fault_a, const char *fault_b, si_failsafe_policy pol) {
    memset(st, 0, sizeof *st);
    const char *names[2] = {"A", "B"};
    CHECK(si_sink_create(names, 2, NULL, NULL, &st->sink) == SI_OK);
    devs[0] = devs[1] = &si_device_ref;
    CHECK(si_fault_spec_parse(fault_a, &st->spec_a) == SI_OK);
    CHECK(si_fault_spec_parse(fault_b, &st->spec_b) == SI_OK);
    CHECK(si_faulty_wrap(&si_device_ref, st->spec_a, &devs[0]) == SI_OK);
    CHECK(si_faulty_wrap(&si_device_ref, st->spec_b, &devs[1]) == SI_OK);
    int cand[2] = {0, 1};
    si_failsafe_desc d = {.submodel = 0, .n_candidates = 2, .candidates = cand, .factory = factory, .policy = pol,
                          .sink = st->sink, .device_desc = "A>B"};
    return si_failsafe_create(&d, &st->cm);
}

/* What the devices need, freed by the sink's last reference (a call the watchdog abandoned may hold it). */
typedef struct devices_owned {
    si_device *wrap[2];
    si_fault_spec *spec[2];
} devices_owned;

static void free_devices(void *arg) {
    devices_owned *o = arg;
    for (int i = 0; i < 2; i++) {
        si_faulty_free(o->wrap[i]);
        si_fault_spec_free(o->spec[i]);
    }
    free(o);
}

static void teardown(setup *st) {
    if (st->cm) st->cm->iface->free(st->cm);
    si_faulty_release_hangs(devs[0]); /* abandoned calls in injected hangs finish now */
    si_faulty_release_hangs(devs[1]);
    devices_owned *o = malloc(sizeof *o);
    *o = (devices_owned){{devs[0], devs[1]}, {st->spec_a, st->spec_b}};
    st->sink->cleanup = free_devices;
    st->sink->cleanup_arg = o;
    si_sink_unref(st->sink);
}

static int count_events(si_sink *s, si_event_type t) {
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = 0; i < s->n_log; i++) n += s->log[i].type == t;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static bool wait_for(si_sink *s, si_event_type t, int n, int ms) {
    for (int i = 0; i < ms; i++) {
        if (count_events(s, t) >= n) return true;
        usleep(1000);
    }
    return false;
}

static si_ireq *req(setup *st) {
    si_ireq *r = NULL;
    CHECK(st->cm->iface->create_request(st->cm, &r) == SI_OK);
    if (r) CHECK(r->iface->set_input(r, 0, input) == SI_OK);
    return r;
}

static const si_failsafe_policy none = {0};

/* make() (which must work) and a request with the input bound. */
static si_ireq *open_req(setup *st, const char *fault_a, const char *fault_b, si_failsafe_policy pol) {
    CHECK(make(st, fault_a, fault_b, pol) == SI_OK);
    return req(st);
}

static void close_req(setup *st, si_ireq *r) {
    r->iface->free(r);
    teardown(st);
}

/* A fault on device A (B has none) under a policy: `infers` inferences, each with the right output; then the model
 * is on device `active`, with `failovers` failovers (counted and as events) and `retries` retries (-1: not checked),
 * A quarantined or not. */
typedef struct fault_case {
    const char *fault;
    si_failsafe_policy pol;
    int infers, active, failovers, retries;
    bool quarantined;
    const char *what;
} fault_case;

static const fault_case fault_cases[] = {
    {"", {0}, 3, 0, 0, -1, false, "no fault: no failover"},
    {"REF.create=1", {0}, 1, 1, -1, -1, false, "request creation (lazy: the inner request is made by the first infer)"},
    {"REF.infer=1:lost", {.retries = 3}, 1, -1, -1, 0, true, "a lost device: quarantined, no retries"},
    {"REF.infer=1", {.retries = 2}, 1, 0, 0, 1, false, "an error retried on A: the retry works"},
    {"REF.infer=1:nan", {.check_nan = true}, 1, 1, -1, -1, false, "NaN outputs with check_nan"},
    {"REF.infer=1:oom", {0}, 1, 1, -1, -1, false, "out of memory"},
};

static void test_fault_cases(void) {
    for (size_t i = 0; i < sizeof fault_cases / sizeof fault_cases[0]; i++) {
        const fault_case *c = &fault_cases[i];
        int before = n_failed;
        setup st;
        si_ireq *r = open_req(&st, c->fault, "", c->pol);
        for (int k = 0; k < c->infers; k++) CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
        if (c->active >= 0) CHECK(si_failsafe_active_device(st.cm) == c->active);
        if (c->failovers >= 0) {
            CHECK(atomic_load(&st.sink->failovers) == c->failovers);
            CHECK(count_events(st.sink, SI_EVENT_FAILOVER) == c->failovers);
        }
        if (c->retries >= 0) CHECK(atomic_load(&st.sink->retries) == c->retries);
        CHECK(si_sink_quarantined(st.sink, 0) == c->quarantined);
        CHECK(count_events(st.sink, SI_EVENT_QUARANTINE) == (c->quarantined ? 1 : 0));
        if (n_failed != before) fprintf(stderr, "  fault case \"%s\": %s\n", c->fault, c->what);
        close_req(&st, r);
    }
}

static void test_infer_failover_keeps_tensors(void) {
    setup st;
    si_ireq *r = open_req(&st, "REF.infer=2", "", none);
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
    si_tensor *before, *after;
    CHECK(r->iface->get_output(r, 0, &before) == SI_OK);
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r)); /* 2nd call fails on A, re-runs on B */
    CHECK(r->iface->get_output(r, 0, &after) == SI_OK);
    CHECK(before == after); /* the caller's output tensor is the same object */
    CHECK(si_failsafe_active_device(st.cm) == 1);
    CHECK(count_events(st.sink, SI_EVENT_FAILOVER) == 1);
    CHECK(atomic_load(&st.sink->failovers) == 1);
    close_req(&st, r);
}

static void test_compile_failure(void) {
    setup st;
    CHECK(make(&st, "REF.compile=always", "", none) == SI_OK);
    CHECK(si_failsafe_active_device(st.cm) == 1);
    CHECK(st.sink->n_attempts >= 2 && st.sink->attempts[0].status == SI_ERR_DEVICE && st.sink->attempts[0].device == 0);
    si_ireq *r = req(&st);
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
    close_req(&st, r);
}

static void test_hang_watchdog(void) {
    setup st;
    si_ireq *r = open_req(&st, "REF.infer=1:hang", "", (si_failsafe_policy){.infer_timeout_ms = 100});
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(si_failsafe_active_device(st.cm) == 1);
    CHECK(b.tv_sec - a.tv_sec < 10); /* rescued by the watchdog, not by the hang's 30 s cap */
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
    close_req(&st, r);
}

/* Without check_nan (the fault cases have it on), NaN outputs are returned as they are. */
static void test_nan_unchecked(void) {
    setup st;
    si_ireq *r = open_req(&st, "REF.infer=1:nan", "", none);
    CHECK(r->iface->infer(r) == SI_OK);
    si_tensor *y;
    CHECK(r->iface->get_output(r, 0, &y) == SI_OK && isnan(((float *)y->data)[0]));
    CHECK(si_failsafe_active_device(st.cm) == 0);
    close_req(&st, r);
}

static void test_all_failed(void) {
    setup st;
    si_ireq *r = open_req(&st, "REF.infer=1+", "REF.infer=1+", none);
    for (int i = 0; i < 2; i++) { /* the request stays usable and keeps saying why */
        CHECK(r->iface->infer(r) == SI_ERR_DEVICE);
        CHECK(strstr(si_last_error(), "every device failed") && strstr(si_last_error(), "A:") && strstr(si_last_error(), "B:"));
    }
    CHECK(count_events(st.sink, SI_EVENT_ALL_FAILED) == 1);
    close_req(&st, r);
    /* both fail at compile: creation fails with a message naming both */
    CHECK(make(&st, "REF.compile=always", "REF.compile=always", none) == SI_ERR_DEVICE);
    CHECK(strstr(si_last_error(), "A:") && strstr(si_last_error(), "B:"));
    teardown(&st);
}

static void test_invalid_arg_is_not_failover(void) {
    setup st;
    si_ireq *r = open_req(&st, "", "", none);
    int64_t d[2] = {2, 4};
    si_tensor *bad;
    CHECK(si_tensor_create(SI_F32, 2, d, &bad) == SI_OK);
    CHECK(r->iface->set_input(r, 0, bad) == SI_ERR_INVALID_ARG);
    CHECK(si_failsafe_active_device(st.cm) == 0);
    CHECK(atomic_load(&st.sink->failovers) == 0);
    si_tensor_free(bad);
    close_req(&st, r);
}

/* A thread on the compiled model ctx: its own request, 25 inferences. */
static void work(test_thread *t) {
    si_cmodel *cm = t->ctx;
    si_ireq *r = NULL;
    if (cm->iface->create_request(cm, &r)) { t->failed = 1000; return; }
    r->iface->set_input(r, 0, input);
    for (int i = 0; i < 25; i++) {
        if (r->iface->infer(r) == SI_OK && output_ok(r)) t->ok++;
        else test_thread_failed(t, "infer");
    }
    r->iface->free(r);
}

static void test_concurrent(void) {
    setup st;
    CHECK(make(&st, "REF.infer=p0.2@3", "", none) == SI_OK);
    test_thread w[8];
    int ok = 0, bad = 0;
    run_threads(w, 8, NULL, st.cm, work, &ok, &bad);
    CHECK(ok == 200 && bad == 0);
    CHECK(atomic_load(&st.sink->failovers) == 1); /* the first failure moves the model; the others join */
    teardown(&st);
}

static void test_standby(void) {
    setup st;
    CHECK(make(&st, "REF.infer=2", "", (si_failsafe_policy){.standby = true}) == SI_OK);
    CHECK(wait_for(st.sink, SI_EVENT_STANDBY_READY, 1, 5000));
    int compiles = count_events(st.sink, SI_EVENT_COMPILE);
    si_ireq *r = req(&st);
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r)); /* fails on A, B is ready */
    CHECK(si_failsafe_active_device(st.cm) == 1);
    CHECK(count_events(st.sink, SI_EVENT_COMPILE) == compiles); /* no compile at failover time */
    close_req(&st, r);
}

static void test_failback(void) {
    setup st;
    si_ireq *r = open_req(&st, "REF.infer=2", "", (si_failsafe_policy){.failback_ms = 20});
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r));
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r)); /* A's 2nd infer fails: over to B */
    CHECK(si_failsafe_active_device(st.cm) == 1);
    CHECK(wait_for(st.sink, SI_EVENT_FAILBACK, 1, 5000));
    CHECK(si_failsafe_active_device(st.cm) == 0);
    CHECK(r->iface->infer(r) == SI_OK && output_ok(r)); /* runs on A again */
    CHECK(atomic_load(&st.sink->failbacks) == 1);
    close_req(&st, r);
}

int main(void) {
    if (load_graph()) { fprintf(stderr, "cannot load small.onnx: %s\n", si_last_error()); return 1; }
    int64_t d[2] = {2, 3};
    if (si_tensor_create(SI_F32, 2, d, &input)) return 1;
    for (int i = 0; i < 6; i++) ((float *)input->data)[i] = (float)i * 0.7f - 1.5f;
    compute_expected();
    test_fault_cases();
    test_infer_failover_keeps_tensors();
    test_compile_failure();
    test_hang_watchdog();
    test_nan_unchecked();
    test_all_failed();
    test_invalid_arg_is_not_failover();
    test_concurrent();
    test_standby();
    test_failback();
    si_tensor_free(input);
    si_graph_free(graph);
    if (n_failed) fprintf(stderr, "test_failsafe: %d failures\n", n_failed);
    else printf("test_failsafe: ok\n");
    return n_failed ? 1 : 0;
}
