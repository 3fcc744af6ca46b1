/*
 * test_ocl_concurrency.c — many OCL requests at once on a CRNN-style text recogniser (tests/data/crnn_rec.onnx,
 * made by scripts/make_crnn.py: conv/BN/ReLU/pool backbone on 1x3x48xW, then a sequence head of MatMul,
 * Softmax and layer norms), every output checked against REF. Each run, in a fresh child process:
 *
 *  1. THREADS threads that each compile the model for their own width (64, 96, 128, ...), wait for each other,
 *     then run INFERS inferences at once: the same kernels run at the same time from several requests with
 *     grid sizes the process has not run yet. Under PoCL 3.1 this aborted the process now and then
 *     (pocl_release_dlhandle_cache: Assertion `found->ref_count > 0' failed) until the OCL device ran the
 *     first inference of each compiled model alone (see "PoCL" in src/device/ocl/ocl.c). PoCL's cache of
 *     loaded kernels is per process and starts empty, so every run is a fresh child process.
 *  2. One compiled model (x = 1x3x48x320), THREADS requests on THREADS threads, INFERS inferences each, each
 *     thread with its own input (twice): what `safeinfer run --requests 4` does.
 *
 * An abort in a run is reported as a failed check.
 *
 *   test_ocl_concurrency SCRATCH [--threads T] [--infers N] [--runs K]
 *
 * Defaults (T=8, N=3, K=4) take some seconds with a warm PoCL kernel cache (~/.cache/pocl; the first run on
 * a machine compiles the kernels for 9 widths). A long run by hand:
 *   build/bin/test_ocl_concurrency /tmp --runs 100 --infers 8
 * Exits 77 (ctest: skipped) when OCL is not built in or there is no OpenCL device.
 */
#include "si_test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

static int T = 8, N = 3;
static unsigned char *model_buf;
static size_t model_len;

static void die(const char *what) {
    fprintf(stderr, "test setup failed: %s (%s)\n", what, si_last_error());
    exit(2);
}

static si_model *load_at_width(int64_t w) {
    si_model *m = NULL;
    const int64_t dims[4] = {1, 3, 48, w};
    if (si_model_load_memory(model_buf, model_len, NULL, &m) || si_model_set_input_shape(m, "x", 4, dims)) die("loading crnn_rec.onnx");
    return m;
}

static si_compiled *compile_on(const si_model *m, const char *devices) {
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", devices)) die("config");
    si_result st = si_compile(m, cfg, &c);
    si_config_free(cfg);
    if (st) {
        fprintf(stderr, "compiling crnn_rec on %s: %s\n", devices, si_last_error());
        return NULL;
    }
    return c;
}

/* One inference of c on `in`: a copy of output 0 (caller frees), or NULL on failure. */
static float *run_once(si_request *r, si_tensor *in, int64_t *count) {
    si_tensor *out = NULL;
    if (si_request_set_input(r, 0, in) || si_request_infer(r) || si_request_get_output(r, 0, &out)) return NULL;
    *count = si_tensor_count(out);
    float *copy = malloc(sizeof(float) * (size_t)*count);
    if (copy) memcpy(copy, si_tensor_data(out), sizeof(float) * (size_t)*count);
    return copy;
}

/* REF's output for input `in` of model m. */
static float *ref_output(const si_model *m, si_tensor *in, int64_t *count) {
    si_compiled *c = compile_on(m, "REF");
    si_request *r = NULL;
    if (!c || si_request_create(c, &r)) die("REF");
    float *o = run_once(r, in, count);
    if (!o) die("REF inference");
    si_request_free(r);
    si_compiled_free(c);
    return o;
}

typedef struct job {
    int round, t;
    si_compiled *shared;      /* part 1: the compiled model all threads share; part 2: NULL (own model) */
    pthread_barrier_t *bar;
    int bad;                  /* inferences that failed or differed from REF */
    double max_err;
    char msg[512];
} job;

static void *job_main(void *arg) {
    job *j = arg;
    int64_t w = j->shared ? 320 : 64 + 32 * (int64_t)j->t; /* part 2: a width per thread */
    si_model *m = load_at_width(w);
    si_tensor *in = NULL;
    const int64_t dims[4] = {1, 3, 48, w};
    if (si_tensor_create(SI_F32, 4, dims, &in)) die("input");
    fill_xorshift(in, (uint32_t)(1000 * j->round + j->t + 1), 0.0f);
    int64_t n_ref = 0, n_out = 0;
    float *want = ref_output(m, in, &n_ref);
    si_compiled *c = j->shared ? j->shared : compile_on(m, "OCL");
    si_request *r = NULL;
    if (!c || si_request_create(c, &r)) {
        snprintf(j->msg, sizeof j->msg, "width %lld: %s", (long long)w, si_last_error());
        j->bad = N;
    }
    pthread_barrier_wait(j->bar); /* every thread starts its inferences at the same time */
    for (int k = 0; r && k < N; k++) {
        float *got = run_once(r, in, &n_out);
        if (!got || n_out != n_ref) {
            if (!j->bad) snprintf(j->msg, sizeof j->msg, "width %lld, inference %d: %s", (long long)w, k, got ? "wrong size" : si_last_error());
            j->bad++;
            free(got);
            continue;
        }
        bool differs = false;
        for (int64_t i = 0; i < n_ref; i++) {
            double e = fabs((double)got[i] - (double)want[i]);
            if (e > j->max_err) j->max_err = e;
            if (!(e <= 1e-4 + 1e-3 * fabs((double)want[i]))) {
                if (!differs && !j->bad)
                    snprintf(j->msg, sizeof j->msg, "width %lld, inference %d: probs[%lld] = %g, REF %g", (long long)w, k, (long long)i,
                             (double)got[i], (double)want[i]);
                differs = true;
            }
        }
        if (differs) j->bad++;
        free(got);
    }
    si_request_free(r);
    if (!j->shared) si_compiled_free(c);
    si_tensor_free(in);
    si_model_free(m);
    free(want);
    return NULL;
}

/* Start T jobs (part 1 when shared != NULL), wait for them, count what went wrong. */
static void run_jobs(int round, si_compiled *shared, const char *part) {
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)T);
    pthread_t th[64];
    job jobs[64];
    for (int t = 0; t < T; t++) {
        jobs[t] = (job){.round = round, .t = t, .shared = shared, .bar = &bar};
        if (pthread_create(&th[t], NULL, job_main, &jobs[t])) die("pthread_create");
    }
    double max_err = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        CHECK(jobs[t].bad == 0);
        if (jobs[t].bad) fprintf(stderr, "  %s, thread %d: %d of %d inferences wrong or failed: %s\n", part, t, jobs[t].bad, N, jobs[t].msg);
        if (jobs[t].max_err > max_err) max_err = jobs[t].max_err;
    }
    fprintf(stderr, "  %s: %d threads x %d inferences, largest |OCL - REF| %.3g\n", part, T, N, max_err);
    pthread_barrier_destroy(&bar);
}

static void stress(void *arg) {
    (void)arg;
    /* The first OpenCL build of the process happens on this thread: LLVM (in PoCL) then puts its own alternate
     * signal stack on the thread that builds first, and AddressSanitizer fails (CHECK "unable to unmap") when
     * such a thread exits; this one lives until the process ends. */
    si_model *m = load_at_width(320);
    si_compiled *c = compile_on(m, "OCL");
    CHECK(c != NULL);
    run_jobs(0, NULL, "a width per thread");
    if (c) {
        run_jobs(0, c, "one compiled model");
        run_jobs(1, c, "one compiled model");
    }
    si_compiled_free(c);
    si_model_free(m);
}

int main(int argc, char **argv) {
    int repeat = 4;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--infers")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) repeat = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (T < 1 || T > 64 || N < 1 || repeat < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    model_buf = read_all(data_path("crnn_rec.onnx"), &model_len);
    /* Is there an OCL device? Asked in a child, so that this process never initialises OpenCL before fork. */
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        si_config *cfg = NULL;
        if (si_config_create(&cfg) || si_config_set(cfg, "devices", "OCL")) _exit(77); /* OCL not built in */
        si_model *m = load_at_width(64);
        si_compiled *c = NULL;
        si_result st = si_compile(m, cfg, &c);
        if (st) fprintf(stderr, "test_ocl_concurrency: skipped: OCL cannot run crnn_rec: %s\n", si_last_error());
        _exit(st == SI_ERR_UNSUPPORTED ? 77 : st ? 1 : 0);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) die("probe child");
    if (WEXITSTATUS(ws) == 77) return 77;
    CHECK(WEXITSTATUS(ws) == 0);
    for (int k = 0; k < repeat; k++) {
        fprintf(stderr, "run %d of %d\n", k + 1, repeat);
        CHECK_NO_CRASH(stress, NULL);
    }
    free(model_buf);
    return test_summary("test_ocl_concurrency");
}
