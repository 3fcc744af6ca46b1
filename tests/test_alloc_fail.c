/*
 * test_alloc_fail.c — out-of-memory injection. For N = 1, 2, ... the Nth allocation of the library fails
 * (si_alloc_fail_after, src/util/alloc.c) while a whole pipeline runs: load from memory (or from a file),
 * set_dim, compile, request, set_input, infer twice, get_output. Each run must end cleanly: SI_OK with the
 * right output values, or a failure status with a message, and everything freed (under AddressSanitizer a
 * leak is reported with the N that caused it, and fails the test). The loop for a pipeline ends at the first
 * N whose failure is never reached, i.e. when N exceeds the allocations the whole run makes.
 *
 *   test_alloc_fail [BUILD_DIR]
 *
 * Also runs each pipeline with repeated failures (every 3rd allocation after the Nth), which exercises the
 * clean-up paths while they themselves run short of memory.
 */
#include "si_test.h"
#include "util/util.h"

#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define MAX_N 20000

/* The devices the pipelines compile for (REF unless $SI_ALLOC_FAIL_DEVICES says otherwise), made before any
 * failure is armed. */
static si_config *g_cfg;
#define LEAK_BATCH 16 /* runs between two leak checks */

typedef enum stage { ST_LOAD, ST_SETDIM, ST_COMPILE, ST_REQUEST, ST_INPUT, ST_INFER1, ST_OUTPUT, ST_INFER2, ST_DONE } stage;
static const char *const stage_names[] = {"load", "set_dim", "compile", "request_create", "set_input", "infer",
                                          "get_output", "second infer", "done"};

typedef struct pipeline {
    const char *name;      /* fixture */
    int from_file;         /* si_model_load instead of si_model_load_memory */
    const char *dim;       /* symbolic dimension to fix, or NULL */
    int64_t dim_value;
    int n_in;
    int in_ndim[2];
    int64_t in_dims[2][2];
    int n_out;
    int64_t out_count[2];
    float want[2][8];      /* expected outputs for the input values below */
    si_dtype in_dt[2];     /* input element types (0: float32); others take the values converted */
} pipeline;

/* inputs: input k holds in_vals[k][i] */
static const float in_vals[2][8] = {{1, 2, 3, -1, -2, -3, 0, 0}, {10, 20, 30, 0, 0, 0, 0, 0}};

static const pipeline pipelines[] = {
    /* Y = Relu(X*W+B), Z = Transpose(Y) flattened */
    {"small.onnx", 0, "batch", 2, 1, {2}, {{2, 3}}, 2, {6, 6}, {{1.5f, 0, 0.5f, 0, 5, 0}, {1.5f, 0, 0, 5, 0.5f, 0}}, {0}},
    {"small_typed.onnx", 0, NULL, 0, 1, {2}, {{2, 3}}, 2, {6, 6}, {{1.5f, 0, 0.5f, 0, 5, 0}, {1.5f, 0, 0, 5, 0.5f, 0}}, {0}},
    {"ext.onnx", 1, NULL, 0, 1, {2}, {{2, 3}}, 2, {6, 6}, {{1.5f, 0, 0.5f, 0, 5, 0}, {1.5f, 0, 0, 5, 0.5f, 0}}, {0}},
    /* Y = X + [1,2,3], Z = Reshape(Y, [3,2]) (Constant nodes, folded at compile) */
    {"constant.onnx", 0, NULL, 0, 1, {2}, {{2, 3}}, 2, {6, 6}, {{2, 4, 6, 0, 0, 0}, {2, 4, 6, 0, 0, 0}}, {0}},
    /* Y = Relu(X@Wm + bm), G = Gemm(X, Wg, cg, transB=1, alpha=2, beta=0.5) */
    {"matmul.onnx", 0, "batch", 2, 1, {2}, {{2, 3}}, 2, {4, 4}, {{22.5f, 18, 0, 0}, {-3.5f, 7, 4.5f, -5}}, {0}},
    /* Y = Relu(X), and X itself as the second output (copied, not moved) */
    {"passthrough.onnx", 0, NULL, 0, 1, {2}, {{2, 2}}, 2, {4, 4}, {{1, 2, 3, 0}, {1, 2, 3, -1}}, {0}},
    /* C = A + B */
    {"add_dyn.onnx", 0, "n", 3, 2, {2, 1}, {{2, 3}, {3, 0}}, 1, {6}, {{11, 22, 33, 9, 18, 27}}, {0}},
    /* control flow: HF, YS = Scan(H0, XS * XS) with h += x * [1,-2,0.5], y = Relu(h) (the body compiled as a
     * scope of its own, the Scan run on the host) */
    {"control_scan.onnx", 0, "seq", 2, 2, {1, 2}, {{3, 0}, {2, 3}}, 2, {3, 6}, {{101, -798, 453}, {101, 101, 0, 0, 453, 453}}, {0}},
    /* VF = Loop(N = 10) of V + 1 */
    {"control_bad_loop.onnx", 0, NULL, 0, 2, {1, 0}, {{1, 0}, {0, 0}}, 1, {1}, {{11}}, {SI_F32, SI_I64}},
};

typedef struct outcome {
    si_result status;
    stage at;
    int values_ok;
    int kept_ok;  /* after a failed second infer: the outputs still hold the first infer's results */
    int rerun_ok; /* ... and the request runs again, with the right results */
} outcome;

/* Do the request's outputs hold p's expected values? */
static int outputs_ok(const pipeline *p, si_request *rq) {
    int ok = 1;
    for (int k = 0; k < p->n_out; k++) {
        si_tensor *t = NULL;
        if (si_request_get_output(rq, k, &t) || !t) return 0;
        const float *d = si_tensor_data(t);
        if (si_tensor_count(t) != p->out_count[k] || !d || si_tensor_nbytes(t) != (size_t)p->out_count[k] * 4) {
            ok = 0;
            continue;
        }
        for (int i = 0; i < p->out_count[k]; i++)
            if (fabsf(d[i] - p->want[k][i]) > 1e-6f) ok = 0;
    }
    return ok;
}

static outcome run_pipeline(const pipeline *p, const unsigned char *buf, size_t len) {
    outcome o = {SI_OK, ST_LOAD, 0, 1, 1};
    si_model *m = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    si_tensor *in[2] = {NULL, NULL};
    si_result s;
    if (p->from_file) s = si_model_load(data_path(p->name), &m);
    else s = si_model_load_memory(buf, len, NULL, &m);
    if (s) goto done;
    o.at = ST_SETDIM;
    if (p->dim && (s = si_model_set_dim(m, p->dim, p->dim_value))) goto done;
    o.at = ST_COMPILE;
    if ((s = si_compile(m, g_cfg, &cm))) goto done;
    si_model_free(m);
    m = NULL;
    o.at = ST_REQUEST;
    if ((s = si_request_create(cm, &rq))) goto done;
    o.at = ST_INPUT;
    for (int k = 0; k < p->n_in; k++) {
        si_dtype dt = p->in_dt[k] ? p->in_dt[k] : SI_F32;
        if ((s = si_tensor_create(dt, p->in_ndim[k], p->in_dims[k], &in[k]))) goto done;
        for (int64_t i = 0; i < si_tensor_count(in[k]); i++) si_store_f64(dt, si_tensor_data(in[k]), i, in_vals[k][i]);
        if ((s = si_request_set_input(rq, k, in[k]))) goto done;
    }
    /* two infers: the second reuses the request's output objects */
    for (int rep = 0; rep < 2; rep++) {
        o.at = rep ? ST_INFER2 : ST_INFER1;
        if ((s = si_request_infer(rq))) {
            if (rep) {
                /* "after a failure the request stays usable" and the outputs are those of the last successful
                 * infer (the first one, same inputs); keep the message of the failure */
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", si_last_error());
                o.kept_ok = outputs_ok(p, rq);
                si_err_clear();
                si_alloc_fail_after(0, 0);
                if (si_request_infer(rq) || !outputs_ok(p, rq)) o.rerun_ok = 0;
                si_err(s, "%s", msg); /* the failure's message, for the checks of the caller */
            }
            goto done;
        }
        o.at = ST_OUTPUT;
        o.values_ok = outputs_ok(p, rq);
    }
    o.at = ST_DONE;
done:
    o.status = s;
    si_request_free(rq);
    for (int k = 0; k < 2; k++) si_tensor_free(in[k]);
    si_compiled_free(cm);
    si_model_free(m);
    return o;
}

/* After a run with the hook armed: was the armed failure still pending (never reached)? Probes with up to
 * `n` allocations; the hook is disarmed afterwards. */
static int failure_still_pending(long n) {
    int pending = 0;
    for (long i = 0; i < n && !pending; i++) {
        void *q = si_malloc(1);
        if (!q) pending = 1;
        si_free(q);
    }
    si_alloc_fail_after(0, 0);
    return pending;
}

/* Leaks so far? LeakSanitizer reports every leak again on each later check, so checking stops after the first
 * leak found (the exit-time check still fails the run). */
static int leak_check(void) {
#ifdef HAVE_LSAN
    static int leak_seen;
    if (leak_seen) return 0;
    return leak_seen = __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
}

/* every <= 1: N = 1, 2, ... until the failure is never reached; returns the number of allocation points.
 * every > 1: N = 1 .. points (from the first loop), with every `every`th allocation after the Nth failing too. */
static long run_loop(const pipeline *p, long every, long points) {
    size_t len = 0;
    unsigned char *buf = p->from_file ? NULL : read_all(data_path(p->name), &len);

    /* the pipeline works without injected failures */
    si_alloc_fail_after(0, 0);
    outcome base = run_pipeline(p, buf, len);
    CHECK(base.status == SI_OK && base.values_ok);
    if (base.status != SI_OK || !base.values_ok) {
        fprintf(stderr, "%s: baseline run failed at %s: %s: %s\n", p->name, stage_names[base.at],
                si_result_str(base.status), si_last_error());
        free(buf);
        return 0;
    }

    int counts[9][9] = {{0}}; /* [stage][status] */
    long n;
    int finished = 0;
    long last = every > 1 ? points : MAX_N;
    for (n = 1; n <= last; n++) {
        si_err_clear();
        si_alloc_fail_after(n, every);
        outcome o = run_pipeline(p, buf, len);
        int pending = 0;
        if (every > 1) si_alloc_fail_after(0, 0);
        else pending = failure_still_pending(n + 1);
        if (o.status >= 0 && o.status <= 8) counts[o.at][o.status]++;
        /* leak checks scan the heap: every LEAK_BATCH runs (and at the end), naming the range of N */
        if (n % LEAK_BATCH == 0 || pending || n == last) {
            if (leak_check()) {
                CHECK(0 && "leak");
                fprintf(stderr, "%s: leak with one of the allocations %ld..%ld failing (every %ld); the last run ended "
                                "at %s with %s\n", p->name, n - (n - 1) % LEAK_BATCH, n, every, stage_names[o.at],
                        si_result_str(o.status));
            }
        }
        if (!o.kept_ok) {
            CHECK(o.kept_ok);
            fprintf(stderr, "%s: allocation %ld failing (every %ld) in the second infer: afterwards the outputs do not "
                            "hold the last successful results\n", p->name, n, every);
        }
        if (!o.rerun_ok) {
            CHECK(o.rerun_ok);
            fprintf(stderr, "%s: allocation %ld failing (every %ld) in the second infer: afterwards the request does "
                            "not run again correctly\n", p->name, n, every);
        }
        if (o.status == SI_OK) {
            /* a run that absorbed a failure must still compute the right values */
            if (!o.values_ok) {
                CHECK(o.values_ok);
                fprintf(stderr, "%s: allocation %ld failing: OK but wrong outputs\n", p->name, n);
            }
        } else {
            /* a failure: a message, and only where the allocation failure was actually injected */
            if (!*si_last_error()) {
                CHECK(*si_last_error());
                fprintf(stderr, "%s: allocation %ld failing: %s at %s without a message\n", p->name, n,
                        si_result_str(o.status), stage_names[o.at]);
            }
            if (o.status != SI_ERR_NO_MEM) {
                /* protobuf-c cannot tell a failed allocation from a malformed message: PARSE at load is
                 * accepted; anything else must be NO_MEM */
                int ok = o.status == SI_ERR_PARSE && o.at == ST_LOAD && strstr(si_last_error(), "malformed");
                if (!ok) {
                    CHECK(o.status == SI_ERR_NO_MEM);
                    fprintf(stderr, "%s: allocation %ld failing (every %ld): %s at %s: \"%s\"\n", p->name, n, every,
                            si_result_str(o.status), stage_names[o.at], si_last_error());
                }
            }
            if (pending) {
                CHECK(!pending);
                fprintf(stderr, "%s: run %ld failed (%s at %s) although no allocation failed\n", p->name, n,
                        si_result_str(o.status), stage_names[o.at]);
            }
        }
        if (pending) { /* N is past the last allocation: the whole run went through */
            finished = o.status == SI_OK;
            break;
        }
    }
    si_alloc_fail_after(0, 0);
    if (every <= 1) CHECK(finished);
    fprintf(stderr, "%s (every %ld): %ld runs;", p->name, every, n - 1);
    for (int st = 0; st < 9; st++)
        for (int ss = 0; ss < 9; ss++)
            if (counts[st][ss]) fprintf(stderr, " %s:%s=%d", stage_names[st], si_result_str((si_result)ss), counts[st][ss]);
    fprintf(stderr, "\n");
    free(buf);
    return n - 1;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const char *devices = getenv("SI_ALLOC_FAIL_DEVICES");
    if (si_config_create(&g_cfg) || si_config_set(g_cfg, "devices", devices ? devices : "REF")) {
        fprintf(stderr, "test_alloc_fail: config: %s\n", si_last_error());
        return 1;
    }
    for (size_t i = 0; i < sizeof pipelines / sizeof pipelines[0]; i++) {
        long points = run_loop(&pipelines[i], 0, 0);
        run_loop(&pipelines[i], 3, points);
    }
    si_alloc_fail_after(0, 0);
    si_config_free(g_cfg);
    return test_summary("test_alloc_fail");
}
