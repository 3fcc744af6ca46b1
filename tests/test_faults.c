/*
 * test_faults.c — unit tests of the fault-injecting device (src/device/faulty): the spec parser (valid and
 * invalid specs, each error naming the bad part), every EFFECT at every STAGE, the WHEN forms with exact
 * call numbers, hangs abandoned by cancel and by si_faulty_release_hangs, "lost" failing every later call,
 * NaN poisoning by dtype, 8 threads against the deterministic probability rule, and allocation failures.
 *
 * The public API cannot take a wrapped device yet, so the device interface is driven directly: graphs come
 * from the internal loader (tests/data/small.onnx: X[batch,3] -> Y, Z) or are built by hand, and results of
 * calls that are not faulted are compared with the unwrapped REF device's.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "si_test.h"

#include "device/device.h"
#include "device/faulty/faulty.h"
#include "ir/ir.h"
#include "onnx/onnx.h"

/* Devices with REF's implementation under other names, to test rules for OCL and dotted names. */
static si_device dev_ocl, dev_ocl1;

static si_graph *g_small;    /* small.onnx with batch = 2 */
static si_tensor *x_in[2];   /* two different inputs */
static float want[2][2][6];  /* [input][output Y, Z]: REF's results */

// --- fixtures ---------------------------------------------------------------------------------------------

static si_graph *load_small(void) {
    size_t len;
    unsigned char *buf = read_all(data_path("small.onnx"), &len);
    si_graph *g = NULL;
    si_result s = si_onnx_load(buf, len, NULL, &g);
    free(buf);
    if (!s) {
        g->values[g->inputs[0]].dims[0] = 2;
        s = si_graph_infer_shapes(g, 1 << 20);
    }
    if (s) {
        fprintf(stderr, "cannot load small.onnx: %s: %s\n", si_result_str(s), si_last_error());
        exit(2);
    }
    return g;
}

static si_device *wrap(si_device *inner, const char *spec) {
    si_fault_spec *fs = NULL;
    si_device *d = NULL;
    CHECK_OK(si_fault_spec_parse(spec, &fs));
    CHECK_OK(si_faulty_wrap(inner, fs, &d));
    si_fault_spec_free(fs); /* the wrapper keeps its own copy of the rules */
    if (!d) exit(2);
    return d;
}

static const si_options no_opts_ = {0, NULL, NULL};
static const si_compile_ctx no_opts = {.opts = &no_opts_};
static si_result compile(si_device *d, si_cmodel **m) { return d->iface->compile(d, g_small, &no_opts, m); }
static si_result create(si_cmodel *m, si_ireq **r) { return m->iface->create_request(m, r); }

/* *d = inner wrapped with spec, and its compiled model (a failed check and NULL when the compile fails). */
static si_cmodel *wrap_compile(si_device **d, si_device *inner, const char *spec) {
    si_cmodel *m = NULL;
    *d = wrap(inner, spec);
    CHECK_OK(compile(*d, &m));
    return m;
}

/* Free what a case made: the request and the model (either may be NULL), then the wrapper d. */
static void free_case(si_device *d, si_cmodel *m, si_ireq *r) {
    if (r) r->iface->free(r);
    if (m) m->iface->free(m);
    si_faulty_free(d);
}

/* Bind input `which` and infer. */
static si_result infer(si_ireq *r, int which) {
    si_result s = r->iface->set_input(r, 0, x_in[which]);
    return s ? s : r->iface->infer(r);
}

/* The request's outputs equal REF's for input `which`, bit for bit. */
static bool outputs_are(si_ireq *r, int which) {
    for (int k = 0; k < 2; k++) {
        si_tensor *t = NULL;
        if (r->iface->get_output(r, k, &t) || !t || t->nbytes != sizeof want[0][0] ||
            memcmp(t->data, want[which][k], sizeof want[0][0]))
            return false;
    }
    return true;
}

static bool outputs_all_nan(si_ireq *r) {
    for (int k = 0; k < 2; k++) {
        si_tensor *t = NULL;
        if (r->iface->get_output(r, k, &t) || !t || t->nbytes != sizeof want[0][0]) return false;
        for (int i = 0; i < 6; i++)
            if (!isnan(((float *)t->data)[i])) return false;
    }
    return true;
}

static void setup(void) {
    dev_ocl = si_device_ref;
    dev_ocl.name = "OCL";
    dev_ocl1 = si_device_ref;
    dev_ocl1.name = "OCL.1";
    g_small = load_small();
    int64_t dims[2] = {2, 3};
    const float xs[2][6] = {{1, 2, 3, -4, 5, -6}, {-1, 0.5f, 7, 2, -3, 0.25f}};
    si_cmodel *m = NULL;
    si_ireq *r = NULL;
    if (compile(&si_device_ref, &m) || create(m, &r)) exit(2);
    for (int w = 0; w < 2; w++) {
        if (si_tensor_create(SI_F32, 2, dims, &x_in[w])) exit(2);
        memcpy(x_in[w]->data, xs[w], sizeof xs[w]);
        if (infer(r, w)) exit(2);
        for (int k = 0; k < 2; k++) {
            si_tensor *t;
            if (r->iface->get_output(r, k, &t) || t->nbytes != sizeof want[0][0]) exit(2);
            memcpy(want[w][k], t->data, sizeof want[0][0]);
        }
    }
    r->iface->free(r);
    m->iface->free(m);
}

/* The documented pX@SEED rule, written out again: call k fires when u(seed, k) < p. */
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static bool prob_fires(double p, uint64_t seed, int64_t k) {
    return (double)(mix64(seed ^ mix64((uint64_t)k)) >> 11) * 0x1p-53 < p;
}

// --- the parser -------------------------------------------------------------------------------------------

static void test_parse(void) {
    static const char *valid[] = {
        "", "   ", "REF.infer=1", " OCL . infer = 3 : hang ", "OCL.1.compile=2+:lost", "REF.create=always:oom",
        "CPU.create=always:oom,REF.infer=p0.25@42:nan", "OCL.infer=p1", "OCL.infer=p0", "OCL.infer=p.5@0",
        "REF.INFER=Always:NaN", "OCL.infer=9223372036854775807", "OCL.infer=p0.3@18446744073709551615",
        "REF.compile=1:error , REF.create=2 ,REF.infer=3+:oom", "OCL.infer=3:crash", "OCL.compile=always:SEGV",
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(valid); i++) {
        si_fault_spec *s = NULL;
        n_checks++;
        if (si_fault_spec_parse(valid[i], &s) || !s) {
            n_failed++;
            fprintf(stderr, "%s:%d: valid spec '%s' refused: %s\n", __FILE__, __LINE__, valid[i], si_last_error());
        }
        si_fault_spec_free(s);
    }
    si_fault_spec *s = NULL;
    CHECK_OK(si_fault_spec_parse("OCL.1.infer=1, CPU.compile=2", &s));
    CHECK(si_fault_spec_mentions(s, "OCL.1") && si_fault_spec_mentions(s, "CPU"));
    CHECK(!si_fault_spec_mentions(s, "OCL") && !si_fault_spec_mentions(s, "REF"));
    CHECK(!si_fault_spec_mentions(NULL, "CPU") && !si_fault_spec_mentions(s, NULL));
    si_fault_spec_free(s);
    CHECK_OK(si_fault_spec_parse(NULL, &s)); /* NULL is the empty spec */
    CHECK(s && !si_fault_spec_mentions(s, "REF"));
    si_fault_spec_free(s);
    si_fault_spec_free(NULL);
    CHECK_STATUS(si_fault_spec_parse("REF.infer=1", NULL), SI_ERR_INVALID_ARG);

    /* spec, then what the message must name */
    static const char *invalid[][2] = {
        {",REF.infer=1", "empty rule 1"},
        {"REF.infer=1,,CPU.infer=1", "empty rule 2"},
        {"REF.infer=1,", "trailing ','"},
        {"REF.infer=1, ", "trailing ','"},
        {"REF.infer", "'REF.infer': missing '='"},
        {"REFinfer=1", "'REFinfer=1': missing '.'"},
        {".infer=1", "empty DEVICE"},
        {"OCL 1.infer=1", "bad DEVICE 'OCL 1'"},
        {"REF.run=1", "'REF.run=1': unknown STAGE 'run'"},
        {"REF.=1", "unknown STAGE ''"},
        {"REF.infer=0", "bad WHEN '0'"},
        {"REF.infer=-1", "bad WHEN '-1'"},
        {"OCL.infer=3x", "fault spec 'OCL.infer=3x': bad WHEN '3x' (expected always, N, N+ or pX[@SEED])"},
        {"REF.infer=3+x", "bad WHEN '3+x'"},
        {"REF.infer=p1.5", "bad WHEN 'p1.5'"},
        {"REF.infer=p-0.1", "bad WHEN 'p-0.1'"},
        {"REF.infer=pabc", "bad WHEN 'pabc'"},
        {"REF.infer=p", "bad WHEN 'p'"},
        {"REF.infer=p0.1.2", "bad WHEN 'p0.1.2'"},
        {"REF.infer=p0.1@x", "bad WHEN 'p0.1@x'"},
        {"REF.infer=p0.1@", "bad WHEN 'p0.1@'"},
        {"REF.infer=p0.1@-3", "bad WHEN 'p0.1@-3'"},
        {"REF.infer=", "bad WHEN ''"},
        {"REF.infer=never", "bad WHEN 'never'"},
        {"REF.infer=99999999999999999999", "bad WHEN '99999999999999999999'"},
        {"REF.infer=1:boom", "'REF.infer=1:boom': unknown EFFECT 'boom'"},
        {"REF.infer=1:", "unknown EFFECT ''"},
        {"REF.infer=1, CPU.infer=2:explode", "'CPU.infer=2:explode': unknown EFFECT 'explode' (expected error, lost, hang, nan, oom, crash or segv)"},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(invalid); i++) {
        si_fault_spec *bad = (si_fault_spec *)&n_checks; /* must be reset to NULL */
        CHECK_ERR(si_fault_spec_parse(invalid[i][0], &bad), SI_ERR_INVALID_ARG, invalid[i][1]);
        CHECK(bad == NULL);
    }
}

// --- every EFFECT at every STAGE --------------------------------------------------------------------------

/* Spec "REF.<stage>=2:<effect>": compile, create and infer once each (call 1 of every stage: all succeed),
 * then make call 2 of the stage (faulted) and check what follows. */
static void effect_at_stage(const char *stage, const char *effect) {
    char spec[64];
    snprintf(spec, sizeof spec, "REF.%s=2:%s", stage, effect);
    si_device *d = wrap(&si_device_ref, spec);
    si_cmodel *m1 = NULL, *m2 = NULL, *m3 = NULL;
    si_ireq *r1 = NULL, *r2 = NULL, *r3 = NULL;
    CHECK_OK(compile(d, &m1));
    CHECK_OK(create(m1, &r1));
    CHECK_OK(infer(r1, 0));
    CHECK(outputs_are(r1, 0));
    CHECK_STREQ(d->name, "REF");
    CHECK_STREQ(m1->device, "REF");
    CHECK(m1->n_inputs == 1 && m1->n_outputs == 2 && m1->inputs[0].dims[1] == 3);

    si_result s;
    bool is_compile = !strcmp(stage, "compile"), is_create = !strcmp(stage, "create");
    if (is_compile) s = compile(d, &m2);
    else if (is_create) s = create(m1, &r2);
    else s = infer(r1, 1); /* a new input: a faulted infer must leave the old outputs */
    char where[64];
    snprintf(where, sizeof where, "REF %s call 2: ", stage);

    if (!strcmp(effect, "error") || !strcmp(effect, "oom")) {
        bool oom = !strcmp(effect, "oom");
        n_checks++;
        if (s != (oom ? SI_ERR_NO_MEM : SI_ERR_DEVICE) || !strstr(si_last_error(), where) ||
            !strstr(si_last_error(), oom ? "out of device memory (injected fault)" : "injected fault")) {
            n_failed++;
            fprintf(stderr, "%s:%d: %s gave %s \"%s\"\n", __FILE__, __LINE__, spec, si_result_str(s), si_last_error());
        }
        CHECK(!m2 && !r2);
        CHECK(outputs_are(r1, 0)); /* nothing computed */
        CHECK(!si_faulty_is_lost(d));
        /* call 3 of every stage works again */
        CHECK_OK(compile(d, &m2));
        CHECK_OK(create(m2, &r2));
        CHECK_OK(infer(r2, 1));
        CHECK(outputs_are(r2, 1));
        CHECK_OK(infer(r1, 1));
        CHECK(outputs_are(r1, 1));
    } else if (!strcmp(effect, "lost")) {
        CHECK(s == SI_ERR_DEVICE_LOST && strstr(si_last_error(), where) && strstr(si_last_error(), "device lost"));
        CHECK(si_faulty_is_lost(d));
        CHECK(!m2 && !r2);
        CHECK_ERR(compile(d, &m3), SI_ERR_DEVICE_LOST, "device lost");
        CHECK_ERR(create(m1, &r3), SI_ERR_DEVICE_LOST, "device lost");
        CHECK_ERR(infer(r1, 1), SI_ERR_DEVICE_LOST, "device lost");
        CHECK_ERR(infer(r1, 0), SI_ERR_DEVICE_LOST, "device lost");
        CHECK(!m3 && !r3 && outputs_are(r1, 0));
    } else if (!strcmp(effect, "nan")) {
        CHECK_OK(s);
        if (is_compile) { /* every request of m2 is poisoned, m1's are not */
            CHECK_OK(create(m2, &r2));
            CHECK_OK(create(m2, &r3));
            CHECK_OK(infer(r2, 0));
            CHECK(outputs_all_nan(r2));
            CHECK_OK(infer(r3, 1));
            CHECK(outputs_all_nan(r3));
        } else if (is_create) { /* r2 is poisoned for good, r1 is not */
            CHECK_OK(infer(r2, 0));
            CHECK(outputs_all_nan(r2));
            CHECK_OK(infer(r2, 1));
            CHECK(outputs_all_nan(r2));
        } else { /* this one inference only */
            CHECK(outputs_all_nan(r1));
        }
        CHECK_OK(infer(r1, 1));
        CHECK(outputs_are(r1, 1));
    }
    if (r3) r3->iface->free(r3);
    if (r2) r2->iface->free(r2);
    r1->iface->free(r1);
    if (m3) m3->iface->free(m3);
    if (m2) m2->iface->free(m2);
    m1->iface->free(m1);
    si_faulty_free(d);
}

static void test_effects(void) {
    static const char *stages[] = {"compile", "create", "infer"};
    static const char *effects[] = {"error", "oom", "lost", "nan"}; /* hang: test_hangs */
    for (int s = 0; s < 3; s++)
        for (int e = 0; e < 4; e++) effect_at_stage(stages[s], effects[e]);
}

// --- WHEN: exact call numbers -----------------------------------------------------------------------------

/* Infer n times through one request of a wrapper with `spec`; returns the pattern ('.' ok with REF's
 * outputs, 'x' DEVICE "injected fault", 'm' NO_MEM, '?' anything else). */
static void infer_pattern(si_device *inner, const char *spec, int n, char *pat) {
    si_device *d = wrap(inner, spec);
    si_cmodel *m = NULL;
    si_ireq *r = NULL;
    CHECK_OK(compile(d, &m));
    if (m) CHECK_OK(create(m, &r));
    for (int k = 0; r && k < n; k++) {
        si_result s = infer(r, k % 2);
        pat[k] = s == SI_OK ? (outputs_are(r, k % 2) ? '.' : '?')
                 : s == SI_ERR_DEVICE && strstr(si_last_error(), "injected fault") ? 'x'
                 : s == SI_ERR_NO_MEM ? 'm' : '?';
    }
    pat[n] = 0;
    free_case(d, m, r);
}

#define CHECK_PATTERN_ON(inner, spec, want)                                                                    \
    do {                                                                                                       \
        char pat_[64];                                                                                         \
        infer_pattern((inner), (spec), (int)strlen(want), pat_);                                               \
        CHECK_STREQ(pat_, (want));                                                                             \
    } while (0)
#define CHECK_PATTERN(spec, want) CHECK_PATTERN_ON(&si_device_ref, spec, want)

static void test_when(void) {
    CHECK_PATTERN("", "..........");
    CHECK_PATTERN("REF.infer=always", "xxxxxxxxxx");
    CHECK_PATTERN("REF.infer=3", "..x.......");
    CHECK_PATTERN("REF.infer=1", "x.........");
    CHECK_PATTERN("REF.infer=3+", "..xxxxxxxx");
    CHECK_PATTERN("REF.infer=p0", "..........");
    CHECK_PATTERN("REF.infer=p1@9", "xxxxxxxxxx");
    CHECK_PATTERN("REF.infer=2, REF.infer=5:oom, REF.infer=5, CPU.infer=always, OCL.infer=1", ".x..m.....");
    CHECK_PATTERN("REF.compile=2+, REF.create=2+:lost", ".........."); /* other stages' rules: infer untouched */
    /* pX@SEED against the documented rule; a different seed gives a different pattern */
    char want_p[41], want_q[41];
    for (int k = 0; k < 40; k++) {
        want_p[k] = prob_fires(0.5, 7, k + 1) ? 'x' : '.';
        want_q[k] = prob_fires(0.5, 0, k + 1) ? 'x' : '.';
    }
    want_p[40] = want_q[40] = 0;
    CHECK(strcmp(want_p, want_q) != 0 && strchr(want_p, 'x') && strchr(want_p, '.'));
    CHECK_PATTERN("REF.infer=p0.5@7", want_p);
    CHECK_PATTERN("REF.infer=p0.5", want_q);

    /* compile and create counters */
    si_device *d = wrap(&si_device_ref, "REF.compile=2, REF.create=2+");
    si_cmodel *m1 = NULL, *m2 = NULL;
    si_ireq *r1 = NULL, *r2 = NULL;
    CHECK_OK(compile(d, &m1));
    CHECK_ERR(compile(d, &m2), SI_ERR_DEVICE, "REF compile call 2: injected fault");
    CHECK(!m2);
    CHECK_OK(compile(d, &m2));
    CHECK_OK(create(m1, &r1));
    CHECK_ERR(create(m2, &r2), SI_ERR_DEVICE, "REF create call 2: injected fault");
    CHECK_ERR(create(m1, &r2), SI_ERR_DEVICE, "REF create call 3: injected fault");
    CHECK(!r2);
    CHECK_OK(infer(r1, 1));
    CHECK(outputs_are(r1, 1));
    r1->iface->free(r1);
    m2->iface->free(m2);
    m1->iface->free(m1);
    si_faulty_free(d);

    /* the infer counter is shared by every request of the wrapper, whatever its compiled model */
    d = wrap(&si_device_ref, "REF.infer=3");
    si_ireq *r3 = NULL;
    CHECK_OK(compile(d, &m1));
    CHECK_OK(compile(d, &m2));
    CHECK_OK(create(m1, &r1));
    CHECK_OK(create(m2, &r2));
    CHECK_OK(create(m1, &r3));
    CHECK_OK(infer(r1, 0)); /* call 1 */
    CHECK_OK(infer(r2, 0)); /* call 2 */
    CHECK_ERR(infer(r3, 1), SI_ERR_DEVICE, "REF infer call 3: injected fault");
    CHECK_OK(infer(r3, 1)); /* call 4 */
    CHECK_OK(infer(r1, 1)); /* call 5 */
    CHECK(outputs_are(r1, 1) && outputs_are(r2, 0) && outputs_are(r3, 1));
    r3->iface->free(r3);
    r2->iface->free(r2);
    r1->iface->free(r1);
    m2->iface->free(m2);
    m1->iface->free(m1);
    si_faulty_free(d);
}

// --- hangs ------------------------------------------------------------------------------------------------

typedef struct hang_job {
    si_device *d;
    si_cmodel *m;      /* create: the model; compile: receives the result */
    si_ireq *r;        /* infer: the request; create: receives the result */
    const char *stage;
    si_result s;
    char msg[512];
    atomic_int done;
    pthread_t th;
} hang_job;

static void *hang_thread(void *arg) {
    hang_job *j = arg;
    if (!strcmp(j->stage, "compile")) j->s = compile(j->d, &j->m);
    else if (!strcmp(j->stage, "create")) j->s = create(j->m, &j->r);
    else j->s = j->r->iface->infer(j->r);
    snprintf(j->msg, sizeof j->msg, "%s", si_last_error()); /* the message is thread-local */
    atomic_store(&j->done, 1);
    return NULL;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start the job; a release and a cancel made before it starts must not wake it: after 50 ms it still hangs.
 * Then abandon it (cancel its request, or release the wrapper's hangs) until it returns (the abandon is
 * repeated since it only wakes calls that are already waiting), and check the status and message. */
static void run_hang(hang_job *jobs, int n, bool by_cancel, const char *why) {
    for (int i = 0; i < n; i++) {
        si_faulty_release_hangs(jobs[i].d);
        if (jobs[i].r) jobs[i].r->iface->cancel(jobs[i].r);
        atomic_init(&jobs[i].done, 0);
    }
    for (int i = 0; i < n; i++)
        if (pthread_create(&jobs[i].th, NULL, hang_thread, &jobs[i])) exit(2);
    sleep_ms(50);
    for (int i = 0; i < n; i++) CHECK(!atomic_load(&jobs[i].done));
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < 2000 && !atomic_load(&jobs[i].done); t++) { /* at most ~10 s, below the cap */
            if (by_cancel) jobs[i].r->iface->cancel(jobs[i].r);
            else si_faulty_release_hangs(jobs[i].d);
            sleep_ms(5);
        }
        pthread_join(jobs[i].th, NULL);
        n_checks++;
        if (jobs[i].s != SI_ERR_DEVICE || !strstr(jobs[i].msg, "hang abandoned") || !strstr(jobs[i].msg, why)) {
            n_failed++;
            fprintf(stderr, "%s:%d: hang at %s gave %s \"%s\", expected SI_ERR_DEVICE \"... hang abandoned (%s)\"\n",
                    __FILE__, __LINE__, jobs[i].stage, si_result_str(jobs[i].s), jobs[i].msg, why);
        }
    }
}

static void test_hangs(void) {
    /* compile, released */
    si_device *d = wrap(&si_device_ref, "REF.compile=1:hang");
    hang_job j = {.d = d, .stage = "compile"};
    run_hang(&j, 1, false, "released");
    CHECK(!j.m && strstr(j.msg, "REF compile call 1"));
    si_cmodel *m = NULL;
    CHECK_OK(compile(d, &m)); /* call 2 */
    si_ireq *r = NULL;
    CHECK_OK(create(m, &r));
    CHECK_OK(infer(r, 0));
    CHECK(outputs_are(r, 0));
    free_case(d, m, r);

    /* create, released */
    m = wrap_compile(&d, &si_device_ref, "REF.create=1:hang");
    j = (hang_job){.d = d, .m = m, .stage = "create"};
    run_hang(&j, 1, false, "released");
    CHECK(!j.r && strstr(j.msg, "REF create call 1"));
    r = NULL;
    CHECK_OK(create(m, &r));
    free_case(d, m, r);

    /* infer, cancelled through the request; the next infer works */
    r = NULL;
    m = wrap_compile(&d, &si_device_ref, "REF.infer=1:hang");
    CHECK_OK(create(m, &r));
    CHECK_OK(r->iface->set_input(r, 0, x_in[1]));
    j = (hang_job){.d = d, .r = r, .stage = "infer"};
    run_hang(&j, 1, true, "cancelled");
    CHECK(strstr(j.msg, "REF infer call 1"));
    CHECK_OK(infer(r, 1));
    CHECK(outputs_are(r, 1));
    free_case(d, m, r);

    /* infer on two requests on two threads, both woken by one release */
    m = wrap_compile(&d, &si_device_ref, "REF.infer=always:hang");
    hang_job js[2] = {{.d = d, .stage = "infer"}, {.d = d, .stage = "infer"}};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(create(m, &js[i].r));
        CHECK_OK(js[i].r->iface->set_input(js[i].r, 0, x_in[i]));
    }
    run_hang(js, 2, false, "released");
    for (int i = 0; i < 2; i++) js[i].r->iface->free(js[i].r);
    free_case(d, m, NULL);
}

// --- device names, supports_op, pass-through --------------------------------------------------------------

static void test_names(void) {
    const char *spec = "OCL.1.infer=1, OCL.infer=2, OCL.1.compile=3:lost";
    CHECK_PATTERN_ON(&dev_ocl1, spec, "x...");
    CHECK_PATTERN_ON(&dev_ocl, spec, ".x..");
    CHECK_PATTERN_ON(&si_device_ref, spec, "....");

    si_device *d = wrap(&dev_ocl1, "OCL.1.compile=1:lost, OCL.1.infer=always");
    CHECK_STREQ(d->name, "OCL.1");
    si_cmodel *m = NULL;
    CHECK_ERR(compile(d, &m), SI_ERR_DEVICE_LOST, "OCL.1 compile call 1: device lost");
    /* a fault never changes supports_op, not even a lost device */
    for (int i = 0; i < g_small->n_nodes; i++) CHECK_OK(d->iface->supports_op(d, g_small, &g_small->nodes[i]));
    si_node unknown = g_small->nodes[0];
    unknown.op = NULL;
    unknown.op_type = "FooBar";
    CHECK_ERR(d->iface->supports_op(d, g_small, &unknown), SI_ERR_UNSUPPORTED, "FooBar");
    si_faulty_free(d);

    /* pass-through: the caller sees the inner request's stable output tensors; cancel reaches the inner */
    d = wrap(&si_device_ref, "");
    si_ireq *r = NULL;
    CHECK_OK(compile(d, &m));
    CHECK_OK(create(m, &r));
    CHECK(r->model == m && r->iface->cancel);
    CHECK_OK(infer(r, 0));
    si_tensor *t1 = NULL, *t2 = NULL;
    CHECK_OK(r->iface->get_output(r, 1, &t1));
    r->iface->cancel(r); /* nothing running: no effect on the next infer */
    CHECK_OK(infer(r, 1));
    CHECK_OK(r->iface->get_output(r, 1, &t2));
    CHECK(t1 && t1 == t2 && outputs_are(r, 1));
    CHECK_ERR(r->iface->get_output(r, 2, &t2), SI_ERR_INVALID_ARG, "out of range");
    CHECK_ERR(r->iface->set_input(r, 0, t1), SI_ERR_INVALID_ARG, "");
    free_case(d, m, r);

    /* not wrappers: no-ops */
    si_faulty_free(NULL);
    si_faulty_free(&si_device_ref);
    si_faulty_release_hangs(NULL);
    si_faulty_release_hangs(&si_device_ref);
    CHECK(!si_faulty_is_lost(NULL) && !si_faulty_is_lost(&si_device_ref));
    si_device *out = &si_device_ref;
    CHECK_STATUS(si_faulty_wrap(NULL, NULL, &out), SI_ERR_INVALID_ARG);
    CHECK(out == NULL);
    CHECK_STATUS(si_faulty_wrap(&si_device_ref, NULL, NULL), SI_ERR_INVALID_ARG);
}

// --- NaN by dtype -----------------------------------------------------------------------------------------

static void add_value(si_graph *g, const char *name, si_dtype dt, int ndim, const int64_t *dims, bool in, bool out) {
    int v = si_graph_value(g, name);
    if (v < 0) exit(2);
    g->values[v].dtype = dt;
    g->values[v].ndim = ndim;
    memcpy(g->values[v].dims, dims, sizeof(int64_t) * (size_t)ndim);
    g->values[v].is_input = in;
    g->values[v].is_output = out;
    int **list = in ? &g->inputs : &g->outputs;
    int *cnt = in ? &g->n_inputs : &g->n_outputs;
    *list = si_realloc(*list, sizeof(int) * (size_t)(*cnt + 1));
    if (!*list) exit(2);
    (*list)[(*cnt)++] = v;
}

static void add_node(si_graph *g, const char *op, const char *in, const char *out, int64_t cast_to) {
    si_node n = {0};
    n.name = si_strdup(out);
    n.op_type = si_strdup(op);
    n.domain = si_strdup("");
    n.n_in = n.n_out = 1;
    n.in = si_malloc(sizeof(int));
    n.out = si_malloc(sizeof(int));
    if (!n.name || !n.op_type || !n.domain || !n.in || !n.out) exit(2);
    n.in[0] = si_graph_value(g, in);
    n.out[0] = si_graph_value(g, out);
    if (cast_to) {
        n.attrs = si_calloc(1, sizeof(si_attr));
        if (!n.attrs || !(n.attrs[0].name = si_strdup("to"))) exit(2);
        n.attrs[0].type = SI_ATTR_INT;
        n.attrs[0].i = cast_to;
        n.n_attr = 1;
    }
    if (si_graph_add_node(g, &n) < 0) exit(2);
}

/* X f32[2,3], I i64[2] -> Y = Relu(X) f32, H f16, D f64, B bf16 (Casts of X), J = Identity(I) i64. */
static si_graph *mixed_graph(void) {
    si_graph *g = si_graph_new();
    if (!g || !(g->opsets = si_calloc(1, sizeof(si_opset))) || !(g->opsets[0].domain = si_strdup(""))) exit(2);
    g->opsets[0].version = 17;
    g->n_opsets = 1;
    int64_t d23[2] = {2, 3}, d2[1] = {2};
    add_value(g, "X", SI_F32, 2, d23, true, false);
    add_value(g, "I", SI_I64, 1, d2, true, false);
    add_node(g, "Relu", "X", "Y", 0);
    add_node(g, "Cast", "X", "H", SI_F16);
    add_node(g, "Cast", "X", "D", SI_F64);
    add_node(g, "Cast", "X", "B", SI_BF16);
    add_node(g, "Identity", "I", "J", 0);
    static const char *outs[] = {"Y", "H", "D", "B", "J"};
    static const si_dtype types[] = {SI_F32, SI_F16, SI_F64, SI_BF16, SI_I64};
    for (int k = 0; k < 5; k++) add_value(g, outs[k], types[k], k == 4 ? 1 : 2, k == 4 ? d2 : d23, false, true);
    si_result s = si_graph_finalize(g);
    if (!s) s = si_graph_infer_shapes(g, 1 << 20);
    if (s) {
        fprintf(stderr, "cannot build the mixed graph: %s\n", si_last_error());
        exit(2);
    }
    return g;
}

static bool is_nan_elem(si_dtype dt, const void *p, int64_t i) {
    if (dt == SI_F16) return (((const uint16_t *)p)[i] & 0x7C00) == 0x7C00 && (((const uint16_t *)p)[i] & 0x03FF);
    if (dt == SI_BF16) return (((const uint16_t *)p)[i] & 0x7F80) == 0x7F80 && (((const uint16_t *)p)[i] & 0x007F);
    return isnan(si_load_f64(dt, p, i));
}

static void test_nan_dtypes(void) {
    si_graph *g = mixed_graph();
    int64_t d23[2] = {2, 3}, d2[1] = {2};
    si_tensor *x = NULL, *ix = NULL;
    CHECK_OK(si_tensor_create(SI_F32, 2, d23, &x));
    CHECK_OK(si_tensor_create(SI_I64, 1, d2, &ix));
    memcpy(x->data, (float[6]){1, -2, 3, 4, -5, 6}, 6 * sizeof(float));
    memcpy(ix->data, (int64_t[2]){42, -7}, 2 * sizeof(int64_t));
    si_device *d = wrap(&si_device_ref, "REF.infer=2:nan");
    si_cmodel *m = NULL;
    si_ireq *r = NULL;
    CHECK_OK(d->iface->compile(d, g, &no_opts, &m));
    CHECK_OK(create(m, &r));
    CHECK(m && m->n_outputs == 5);
    for (int call = 1; r && call <= 3; call++) {
        CHECK_OK(r->iface->set_input(r, 0, x));
        CHECK_OK(r->iface->set_input(r, 1, ix));
        CHECK_OK(r->iface->infer(r));
        for (int k = 0; k < 5; k++) {
            si_tensor *t = NULL;
            CHECK_OK(r->iface->get_output(r, k, &t));
            if (!t) continue;
            int64_t n = si_shape_count(t->ndim, t->dims);
            int nans = 0;
            for (int64_t i = 0; i < n; i++) nans += k < 4 && is_nan_elem(t->dtype, t->data, i);
            CHECK(nans == (call == 2 && k < 4 ? (int)n : 0));
            if (k == 4) CHECK(n == 2 && ((int64_t *)t->data)[0] == 42 && ((int64_t *)t->data)[1] == -7);
            if (k == 1 && call != 2) CHECK(si_f16_to_f32(((uint16_t *)t->data)[2]) == 3.0f);
        }
    }
    free_case(d, m, r);
    si_tensor_free(x);
    si_tensor_free(ix);
    si_graph_free(g);
}

// --- threads ----------------------------------------------------------------------------------------------

#define N_THREADS 8
#define N_PER_THREAD 50
#define N_CALLS (N_THREADS * N_PER_THREAD)

static atomic_int failed_at[N_CALLS + 2]; /* per call number: injected failures seen */

typedef struct infer_job {
    si_cmodel *m;
    int which, wrong;
    si_result create_status;
} infer_job;

static void *infer_thread(void *arg) {
    infer_job *j = arg;
    si_ireq *r = NULL;
    if ((j->create_status = create(j->m, &r))) return NULL;
    for (int k = 0; k < N_PER_THREAD; k++) {
        si_result s = infer(r, j->which);
        long call = 0;
        const char *at = strstr(si_last_error(), "OCL infer call ");
        if (s == SI_ERR_DEVICE && at && strstr(si_last_error(), "injected fault")) call = strtol(at + 15, NULL, 10);
        if (call >= 1 && call <= N_CALLS) atomic_fetch_add(&failed_at[call], 1);
        else if (s || !outputs_are(r, j->which)) j->wrong++;
    }
    r->iface->free(r);
    return NULL;
}

/* 8 threads, 50 infers each, through one wrapper: exactly the calls the rule picks fail, each once, and the
 * counter ends at 400 (the 401st call hits the oom rule). */
static void test_threads(void) {
    si_device *d = wrap(&dev_ocl, "OCL.infer=401:oom, OCL.infer=p0.3@5");
    si_cmodel *m = NULL;
    CHECK_OK(compile(d, &m));
    if (!m) return;
    infer_job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (infer_job){.m = m, .which = i % 2};
        if (pthread_create(&th[i], NULL, infer_thread, &jobs[i])) exit(2);
    }
    int wrong = 0, failures = 0, predicted = 0, mismatched = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_OK(jobs[i].create_status);
        wrong += jobs[i].wrong;
    }
    for (int k = 1; k <= N_CALLS; k++) {
        int fires = prob_fires(0.3, 5, k);
        predicted += fires;
        failures += atomic_load(&failed_at[k]);
        mismatched += atomic_load(&failed_at[k]) != fires;
    }
    CHECK(wrong == 0);
    n_checks++;
    if (failures != predicted || mismatched) {
        n_failed++;
        fprintf(stderr, "%s:%d: %d injected failures in %d infers (%d call numbers differ), the rule predicts %d\n",
                __FILE__, __LINE__, failures, N_CALLS, mismatched, predicted);
    }
    CHECK(predicted > 60 && predicted < 180); /* about 30% of 400 */
    si_ireq *r = NULL;
    CHECK_OK(create(m, &r));
    if (r) CHECK_ERR(infer(r, 0), SI_ERR_NO_MEM, "OCL infer call 401: out of device memory (injected fault)");
    free_case(d, m, r);
}

// --- allocation failures ----------------------------------------------------------------------------------

/* Fail the Nth allocation of parse + wrap + compile + create + infer for N = 1, 2, ... until the whole
 * scenario succeeds: each step returns a clean status (ASan checks leaks). */
static void test_alloc_failures(void) {
    int n;
    for (n = 1; n < 10000; n++) {
        si_fault_spec *fs = NULL;
        si_device *d = NULL;
        si_cmodel *m = NULL;
        si_ireq *r = NULL;
        si_alloc_fail_after(n, 1);
        si_result s = si_fault_spec_parse("REF.infer=2:nan, CPU.compile=always, REF.create=9+:oom", &fs);
        if (!s) s = si_faulty_wrap(&si_device_ref, fs, &d);
        if (!s) s = compile(d, &m);
        if (!s) s = create(m, &r);
        if (!s) s = infer(r, 0);
        si_alloc_fail_after(0, 0);
        if (s != SI_OK && s != SI_ERR_NO_MEM) {
            n_checks++;
            n_failed++;
            fprintf(stderr, "%s:%d: allocation %d failing gave %s: %s\n", __FILE__, __LINE__, n, si_result_str(s),
                    si_last_error());
        }
        bool done = !s && outputs_are(r, 0);
        free_case(d, m, r);
        si_fault_spec_free(fs);
        if (done) break;
    }
    CHECK(n > 3 && n < 10000);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    setup();
    test_parse();
    test_effects();
    test_when();
    test_hangs();
    test_names();
    test_nan_dtypes();
    test_threads();
    test_alloc_failures();
    si_tensor_free(x_in[0]);
    si_tensor_free(x_in[1]);
    si_graph_free(g_small);
    return test_summary("test_faults");
}
