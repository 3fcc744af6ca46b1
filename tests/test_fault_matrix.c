/*
 * test_fault_matrix.c — the fault matrix, through the public API only: every STAGE x EFFECT of the fault
 * spec x {one request; 8 concurrent requests} x {fault at the first call; at the 3rd; intermittent p0.2},
 * on the example model compiled for a two-device list (OCL,CPU when OpenCL is there, else CPU,REF). Every
 * inference must give REF's outputs for the same inputs (within check-onnx's tolerance), or — where the spec
 * leaves no device — the documented all-devices-failed error. Nothing may be lost or leak (run under ASan in
 * CI) or race (a ThreadSanitizer build runs it too).
 *
 * usage: test_fault_matrix [SCRATCH] [quick]   ("quick": fewer inferences per request)
 */
#include "safeinfer.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef SI_EXAMPLE_MODEL
#define SI_EXAMPLE_MODEL "examples/tiny_cnn.onnx"
#endif

#define N_INPUTS 4   /* distinct inputs, cycled through by every request */
#define BATCH 2

static int failures;
#define CHECK(c, ...)                                                                                             \
    do {                                                                                                          \
        if (!(c)) {                                                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #c);                                 \
            fprintf(stderr, __VA_ARGS__);                                                                         \
            fprintf(stderr, "\n");                                                                                \
            failures++;                                                                                           \
        }                                                                                                         \
    } while (0)

static si_model *model;
static si_tensor *inputs[N_INPUTS];
static float *expected[N_INPUTS][2]; /* REF's outputs (probs, logits) for each input */
static int64_t out_count[2];
static int per_request = 6;

static void fill(si_tensor *t, unsigned seed) {
    float *p = si_tensor_data(t);
    for (int64_t i = 0; i < si_tensor_count(t); i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

static bool close_to(const si_tensor *t, const float *want, int64_t n) {
    if (si_tensor_dtype(t) != SI_F32 || si_tensor_count(t) != n || !si_tensor_data(t)) return false;
    const float *p = si_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(p[i] - want[i]) <= 1e-5f + 1e-3f * fabsf(want[i]))) return false;
    return true;
}

static si_result compile(const char *devices, const char *faults, si_compiled **cm) {
    si_config *cfg;
    si_result s = si_config_create(&cfg);
    if (!s) s = si_config_set(cfg, "devices", devices);
    if (!s && faults) s = si_config_set(cfg, "faults", faults);
    if (!s && faults) s = si_config_set(cfg, "infer_timeout_ms", "1000");
    if (!s && faults) s = si_config_set(cfg, "compile_timeout_ms", "5000");
    if (!s && faults) s = si_config_set(cfg, "check_outputs", "nan");
    if (!s) s = si_compile(model, cfg, cm);
    si_config_free(cfg);
    return s;
}

typedef struct job {
    si_compiled *cm;
    int id;
    bool expect_fail; /* the spec leaves no device */
    int ok, wrong, failed, unexpected;
    char first_problem[600];
} job;

static void note(job *j, const char *fmt, const char *a) {
    if (!j->first_problem[0]) snprintf(j->first_problem, sizeof j->first_problem, fmt, a);
}

static void *run(void *arg) {
    job *j = arg;
    si_request *rq = NULL;
    if (si_request_create(j->cm, &rq)) {
        j->unexpected = per_request;
        note(j, "request create: %s", si_last_error());
        return NULL;
    }
    for (int i = 0; i < per_request; i++) {
        int which = (j->id + i) % N_INPUTS;
        si_result s = si_request_set_input(rq, 0, inputs[which]);
        if (!s) s = si_request_infer(rq);
        if (j->expect_fail) {
            if (s == SI_ERR_DEVICE && strstr(si_last_error(), "every device failed")) j->failed++;
            else { j->unexpected++; note(j, "expected the all-devices-failed error, got: %s", s ? si_last_error() : "success"); }
            continue;
        }
        if (s) { j->unexpected++; note(j, "infer failed: %s", si_last_error()); continue; }
        si_tensor *o0, *o1;
        if (si_request_get_output(rq, 0, &o0) || si_request_get_output(rq, 1, &o1)) { j->unexpected++; continue; }
        if (close_to(o0, expected[which][0], out_count[0]) && close_to(o1, expected[which][1], out_count[1])) j->ok++;
        else { j->wrong++; note(j, "%s", "outputs differ from REF's"); }
    }
    si_request_free(rq);
    return NULL;
}

static void run_case(const char *devices, const char *faults, int threads, bool expect_fail) {
    si_compiled *cm = NULL;
    si_result s = compile(devices, faults, &cm);
    if (expect_fail && s) { /* compile-time faults on every device: the compile itself reports them all */
        CHECK(s == SI_ERR_DEVICE || s == SI_ERR_NO_MEM || s == SI_ERR_DEVICE_LOST, "[%s] compile: %s", faults, si_last_error());
        return;
    }
    CHECK(s == SI_OK, "[%s %s] compile: %s", devices, faults, si_last_error());
    if (s) return;
    job jobs[8];
    pthread_t tids[8];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){.cm = cm, .id = t, .expect_fail = expect_fail};
        if (threads == 1) run(&jobs[t]);
        else pthread_create(&tids[t], NULL, run, &jobs[t]);
    }
    int ok = 0, wrong = 0, failed = 0, unexpected = 0;
    for (int t = 0; t < threads; t++) {
        if (threads > 1) pthread_join(tids[t], NULL);
        ok += jobs[t].ok;
        wrong += jobs[t].wrong;
        failed += jobs[t].failed;
        unexpected += jobs[t].unexpected;
        if (jobs[t].first_problem[0] && (jobs[t].wrong || jobs[t].unexpected))
            fprintf(stderr, "  [%s, %d threads] request %d: %s\n", faults, threads, t, jobs[t].first_problem);
    }
    int total = threads * per_request;
    if (expect_fail) CHECK(failed == total, "[%s, %d threads] %d of %d inferences gave the all-failed error", faults, threads, failed, total);
    else CHECK(ok == total, "[%s, %d threads] %d of %d inferences correct (%d wrong, %d errors)", faults, threads, ok, total, wrong, unexpected);
    si_counters k;
    si_compiled_counters(cm, &k);
    CHECK(k.inferences == total, "[%s] counted %lld inferences, ran %d", faults, (long long)k.inferences, total);
    char *json = NULL;
    CHECK(si_compiled_report_json(cm, &json) == SI_OK && json && strstr(json, "\"counters\""), "[%s] report", faults);
    si_free_string(json);
    si_compiled_free(cm);
}

static si_compiled *compile_with(const char *devices, const char *const *kv) {
    si_config *cfg;
    si_compiled *cm = NULL;
    si_result s = si_config_create(&cfg);
    if (!s) s = si_config_set(cfg, "devices", devices);
    for (int i = 0; !s && kv[i]; i += 2) s = si_config_set(cfg, kv[i], kv[i + 1]);
    if (!s) s = si_compile(model, cfg, &cm);
    CHECK(s == SI_OK, "compile %s: %s", devices, si_last_error());
    si_config_free(cfg);
    return cm;
}

static bool infer_ok(si_request *rq, int which) {
    si_tensor *o0, *o1;
    return !si_request_set_input(rq, 0, inputs[which]) && !si_request_infer(rq) && !si_request_get_output(rq, 0, &o0) &&
           !si_request_get_output(rq, 1, &o1) && close_to(o0, expected[which][0], out_count[0]) &&
           close_to(o1, expected[which][1], out_count[1]);
}

static bool report_has(si_compiled *cm, const char *what) {
    char *json = NULL;
    bool has = !si_compiled_report_json(cm, &json) && strstr(json, what);
    si_free_string(json);
    return has;
}

static void wait_report(si_compiled *cm, const char *what) {
    for (int i = 0; i < 500 && !report_has(cm, what); i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}

/* The policies through the public API: strict, retries, standby, fail-back. */
static void test_policies(const char *pair, const char *primary) {
    char spec[96];
    si_request *rq = NULL;
    si_counters k;
    /* strict=on: no fallback, the primary's error comes back */
    snprintf(spec, sizeof spec, "%s.infer=1", primary);
    si_compiled *cm = compile_with(pair, (const char *const[]){"faults", spec, "strict", "on", NULL});
    if (cm && !si_request_create(cm, &rq)) {
        CHECK(!strcmp(si_compiled_devices(cm), primary), "strict: runs on %s", si_compiled_devices(cm));
        CHECK(si_request_set_input(rq, 0, inputs[0]) == SI_OK && si_request_infer(rq) == SI_ERR_DEVICE &&
                  strstr(si_last_error(), primary), "strict: expected %s's error, got %s", primary, si_last_error());
        CHECK(infer_ok(rq, 1), "strict: the next inference works (%s)", si_last_error());
        si_request_free(rq);
    }
    si_compiled_free(cm);
    /* retries=2: a transient failure is retried on the same device */
    cm = compile_with(pair, (const char *const[]){"faults", spec, "retries", "2", NULL});
    if (cm && !si_request_create(cm, &rq)) {
        CHECK(infer_ok(rq, 0) && infer_ok(rq, 1), "retries: %s", si_last_error());
        si_compiled_counters(cm, &k);
        CHECK(k.retries == 1 && k.failovers == 0, "retries: %lld retries, %lld failovers", (long long)k.retries, (long long)k.failovers);
        si_request_free(rq);
    }
    si_compiled_free(cm);
    /* standby=on: the fallback is compiled in the background and used at the failover */
    snprintf(spec, sizeof spec, "%s.infer=3", primary);
    cm = compile_with(pair, (const char *const[]){"faults", spec, "standby", "on", NULL});
    if (cm && !si_request_create(cm, &rq)) {
        wait_report(cm, "standby_ready");
        CHECK(report_has(cm, "standby_ready"), "standby: no standby_ready event");
        for (int i = 0; i < 5; i++) CHECK(infer_ok(rq, i % N_INPUTS), "standby: inference %d: %s", i, si_last_error());
        si_compiled_counters(cm, &k);
        CHECK(k.failovers == 1, "standby: %lld failovers", (long long)k.failovers);
        si_request_free(rq);
    }
    si_compiled_free(cm);
    /* failback_ms: once OCL.infer=2 has passed, the model moves back to the primary */
    snprintf(spec, sizeof spec, "%s.infer=2", primary);
    cm = compile_with(pair, (const char *const[]){"faults", spec, "failback_ms", "30", NULL});
    if (cm && !si_request_create(cm, &rq)) {
        CHECK(infer_ok(rq, 0) && infer_ok(rq, 1), "failback: %s", si_last_error());
        wait_report(cm, "\"failback\"");
        si_compiled_counters(cm, &k);
        CHECK(k.failovers == 1 && k.failbacks == 1, "failback: %lld failovers, %lld failbacks", (long long)k.failovers, (long long)k.failbacks);
        CHECK(infer_ok(rq, 2), "failback: after moving back: %s", si_last_error());
        si_request_free(rq);
    }
    si_compiled_free(cm);
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[2], "quick")) per_request = 3;
    si_result s = si_model_load(SI_EXAMPLE_MODEL, &model);
    if (s) { fprintf(stderr, "load: %s\n", si_last_error()); return 1; }
    if ((s = si_model_set_dim(model, "batch", BATCH))) { fprintf(stderr, "set_dim: %s\n", si_last_error()); return 1; }
    /* which two devices: the accelerator and the CPU when OpenCL is there, else CPU with REF behind it */
    const char *pair = NULL, *primary = NULL, *fallback = NULL;
    static const char *const pairs[][3] = {{"OCL,CPU", "OCL", "CPU"}, {"CPU,REF", "CPU", "REF"}};
    for (int p = 0; p < 2 && !pair; p++) {
        si_compiled *cm = NULL;
        /* the pair counts only when the primary device really runs the model (it may be absent here) */
        if (compile(pairs[p][0], NULL, &cm) == SI_OK && !strncmp(si_compiled_devices(cm), pairs[p][1], strlen(pairs[p][1])) &&
            si_compiled_devices(cm)[strlen(pairs[p][1])] == '>') {
            pair = pairs[p][0]; primary = pairs[p][1]; fallback = pairs[p][2];
            printf("fault matrix on %s (submodels: %s)\n", pair, si_compiled_devices(cm));
        }
        if (cm) si_compiled_free(cm);
        cm = NULL;
    }
    if (!pair) {
        printf("SKIP: neither OCL,CPU nor CPU,REF can be compiled here (%s)\n", si_last_error());
        si_model_free(model);
        return 77;
    }
    /* REF's outputs for each input */
    si_compiled *ref;
    si_request *rq;
    int64_t dims[4] = {BATCH, 3, 32, 32};
    if (compile("REF", NULL, &ref) || si_request_create(ref, &rq)) { fprintf(stderr, "REF: %s\n", si_last_error()); return 1; }
    for (int i = 0; i < N_INPUTS; i++) {
        if (si_tensor_create(SI_F32, 4, dims, &inputs[i])) return 1;
        fill(inputs[i], 1000u + (unsigned)i);
        if (si_request_set_input(rq, 0, inputs[i]) || si_request_infer(rq)) { fprintf(stderr, "REF infer: %s\n", si_last_error()); return 1; }
        for (int k = 0; k < 2; k++) {
            si_tensor *o;
            if (si_request_get_output(rq, k, &o)) return 1;
            out_count[k] = si_tensor_count(o);
            expected[i][k] = malloc(sizeof(float) * (size_t)out_count[k]);
            memcpy(expected[i][k], si_tensor_data(o), sizeof(float) * (size_t)out_count[k]);
        }
    }
    si_request_free(rq);
    si_compiled_free(ref);

    static const char *const stages[] = {"compile", "create", "infer"};
    static const char *const effects[] = {"error", "lost", "hang", "nan", "oom"};
    static const char *const whens[] = {"1", "3", "p0.2@7"};
    int cases = 0;
    for (int st = 0; st < 3; st++)
        for (int ef = 0; ef < 5; ef++)
            for (int w = 0; w < 3; w++)
                for (int th = 1; th <= 8; th += 7) {
                    char spec[128];
                    snprintf(spec, sizeof spec, "%s.%s=%s:%s", primary, stages[st], whens[w], effects[ef]);
                    run_case(pair, spec, th, false);
                    cases++;
                }
    /* where the spec leaves no device: the documented error, and the request stays usable */
    static const char *const both[] = {"infer=1+", "create=1+", "infer=1+:lost"};
    for (int b = 0; b < 3; b++)
        for (int th = 1; th <= 8; th += 7) {
            char spec[160];
            snprintf(spec, sizeof spec, "%s.%s,%s.%s", primary, both[b], fallback, both[b]);
            run_case(pair, spec, th, true);
            cases++;
        }
    char spec[160];
    snprintf(spec, sizeof spec, "%s.compile=always,%s.compile=always", primary, fallback);
    run_case(pair, spec, 1, true);
    cases++;

    test_policies(pair, primary);
    for (int i = 0; i < N_INPUTS; i++) {
        si_tensor_free(inputs[i]);
        free(expected[i][0]);
        free(expected[i][1]);
    }
    si_model_free(model);
    printf("fault matrix: %d cases, %d failed checks\n", cases, failures);
    return failures ? 1 : 0;
}
