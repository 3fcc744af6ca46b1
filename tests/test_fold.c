/*
 * test_fold.c — repeated blocks folded into one function body and calls (ir/fold.h), end to end through
 * include/safeinfer.h on tests/data/fold_blocks.onnx (4 identical blocks, each with its own weights, its own
 * input P_j and output K_j; see scripts/make_test_models.py), against values computed here:
 *   - fold=on and fold=off give the same outputs, equal to this file's, on REF, CPU and CPU,REF, at two sequence
 *     lengths; the report shows one function with 4 calls (none with fold=off) and each call names it;
 *   - the body is one fail-safe unit: CPU,REF with CPU failing at its Nth inference (N = 1..4: one call of the
 *     body each) fails the body over once (one failover event, on the body's submodel, one compile on REF) and
 *     every later call runs on REF; the outputs are the fault-free ones;
 *   - the watchdog, standby warm-ups and fail-back probes with the body's weights (parameters) bound;
 *   - requests on 3 threads with random CPU faults share the body (TSan runs this);
 *   - OCL,CPU (where an OpenCL device takes the body): its weights uploaded once per call, a failover moves it once;
 *   - blocks whose weights feed a Conv are not folded (fold_conv.onnx);
 *   - a model that uses the Call op itself is refused by name.
 *
 *   test_fold [BUILD_DIR]
 */
#include "si_test.h"

#include <stdbool.h>
#include <stdint.h>

#define L 4 /* blocks */
#define D 8 /* width */

static void weights(int j, float *w, float *b) {
    for (int k = 0; k < D * D; k++) w[k] = (float)((k * 7 + j * 5) % 17) / 16.0f - 0.5f;
    for (int i = 0; i < D; i++) b[i] = (float)((i * 3 + j) % 5) / 8.0f - 0.25f;
}

/* Inputs for `rows` = batch * seq rows: X and P_j in a fixed pattern. */
static void inputs(int rows, float *x, float p[L][64]) {
    for (int i = 0; i < rows * D; i++) x[i] = (float)((i * 11) % 13) / 6.0f - 1.0f;
    for (int j = 0; j < L; j++)
        for (int i = 0; i < rows * D; i++) p[j][i] = (float)((i * 5 + j * 3) % 7) / 10.0f - 0.3f;
}

/* Y and K_j as the model defines them. */
static void expected(int rows, const float *x0, float p[L][64], float *y, float k[L][64]) {
    float x[64], w[D * D], b[D];
    memcpy(x, x0, sizeof(float) * (size_t)(rows * D));
    for (int j = 0; j < L; j++) {
        weights(j, w, b);
        float nx[64];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < D; c++) {
                float h = 0;
                for (int q = 0; q < D; q++) h += x[r * D + q] * w[q * D + c];
                h += b[c] + p[j][r * D + c];
                k[j][r * D + c] = tanhf(h);
                nx[r * D + c] = x[r * D + c] + (h > 0 ? h : 0) * 0.5f;
            }
        memcpy(x, nx, sizeof(float) * (size_t)(rows * D));
    }
    memcpy(y, x, sizeof(float) * (size_t)(rows * D));
}

static si_compiled *compile(const char *const *props) {
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    CHECK_OK(si_model_load(data_path("fold_blocks.onnx"), &m));
    CHECK_OK(si_config_create(&cfg));
    for (int i = 0; cfg && props[i]; i += 2) CHECK_OK(si_config_set(cfg, props[i], props[i + 1]));
    if (m && cfg) CHECK_OK(si_compile(m, cfg, &c));
    si_config_free(cfg);
    si_model_free(m);
    return c;
}

/* Bind the inputs of `seq` rows (batch 1) to rq (they are copied in x and p, which outlive the inference). */
static bool bind_inputs(si_compiled *c, si_request *rq, int seq, float *x, float p[L][64], si_tensor **tx, si_tensor **tp) {
    inputs(seq, x, p);
    int64_t dims[3] = {1, seq, D};
    bool ok = si_tensor_wrap(SI_F32, 3, dims, x, sizeof(float) * (size_t)(seq * D), tx) == SI_OK &&
              si_request_set_input(rq, compiled_index(c, 0, "X"), *tx) == SI_OK;
    for (int j = 0; j < L && ok; j++) {
        char name[8];
        snprintf(name, sizeof name, "P%d", j);
        ok = si_tensor_wrap(SI_F32, 3, dims, p[j], sizeof(float) * (size_t)(seq * D), &tp[j]) == SI_OK &&
             si_request_set_input(rq, compiled_index(c, 0, name), tp[j]) == SI_OK;
    }
    return ok;
}

/* Every output of rq is the result for `seq` rows. */
static bool outputs_match(si_compiled *c, si_request *rq, int seq) {
    float x[64], p[L][64], y[64], k[L][64];
    inputs(seq, x, p);
    expected(seq, x, p, y, k);
    bool ok = true;
    for (int o = 0; ok && o <= L; o++) {
        char name[8];
        snprintf(name, sizeof name, o < L ? "K%d" : "Y", o);
        si_tensor *t = NULL;
        ok = si_request_get_output(rq, compiled_index(c, 1, name), &t) == SI_OK && t &&
             si_tensor_ndim(t) == 3 && si_tensor_dims(t)[1] == seq;
        const float *got = ok ? si_tensor_data(t) : NULL, *want = o < L ? k[o] : y;
        for (int i = 0; ok && i < seq * D; i++)
            if (fabsf(got[i] - want[i]) > 1e-5f) {
                fprintf(stderr, "  %s[%d] = %g, expected %g\n", name, i, got[i], want[i]);
                ok = false;
            }
    }
    return ok;
}

/* One inference at `seq` rows (batch 1) on rq; true when every output matches. */
static bool run_once(si_compiled *c, si_request *rq, int seq) {
    float x[64], p[L][64];
    si_tensor *tx = NULL, *tp[L] = {NULL};
    bool ok = bind_inputs(c, rq, seq, x, p, &tx, tp);
    if (ok && si_request_infer(rq) != SI_OK) {
        fprintf(stderr, "  infer: %s\n", si_last_error());
        ok = false;
    }
    ok = ok && outputs_match(c, rq, seq);
    si_tensor_free(tx);
    for (int j = 0; j < L; j++) si_tensor_free(tp[j]);
    return ok;
}

/* CPU alone, failing from its 7th inference on (5 a model inference: the 4 calls, then the Identity; so the second
 * call of the second inference, after the first call wrote its outputs): that inference fails, and every output, the first call's too, is still the first
 * inference's (the executor takes the calls' output buffers instead of copying them, never the ones it shows). */
static void test_failed_keeps_outputs(void) {
    fprintf(stderr, "fold_blocks on CPU failing from its 6th inference: the outputs stay the last successful ones\n");
    const char *props[] = {"devices", "CPU", "faults", "CPU.infer=7+", NULL};
    si_compiled *c = compile(props);
    si_request *rq = NULL;
    if (c) CHECK_OK(si_request_create(c, &rq));
    if (rq) {
        CHECK(run_once(c, rq, 3));
        float x[64], p[L][64];
        si_tensor *tx = NULL, *tp[L] = {NULL};
        CHECK(bind_inputs(c, rq, 2, x, p, &tx, tp)); /* fewer rows: the buffers are rewritten in place */
        for (int i = 0; i < 2 * D; i++) { /* other values than the first inference's first rows */
            x[i] = -x[i];
            for (int j = 0; j < L; j++) p[j][i] = 0.5f - p[j][i];
        }
        CHECK(si_request_infer(rq) != SI_OK);
        CHECK(outputs_match(c, rq, 3));
        si_tensor_free(tx);
        for (int j = 0; j < L; j++) si_tensor_free(tp[j]);
    }
    si_request_free(rq);
    si_compiled_free(c);
}

/* Occurrences of `needle` in s. */
static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s ? strstr(s, needle) : NULL; p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_outputs(const char *devices) {
    for (int fold = 0; fold < 2; fold++) {
        fprintf(stderr, "fold_blocks on %s, fold=%s\n", devices, fold ? "on" : "off");
        const char *props[] = {"devices", devices, "fold", fold ? "on" : "off", NULL};
        si_compiled *c = compile(props);
        si_request *rq = NULL;
        if (c) CHECK_OK(si_request_create(c, &rq));
        if (!rq) { si_compiled_free(c); continue; }
        CHECK(run_once(c, rq, 3));
        CHECK(run_once(c, rq, 5)); /* another shape: the body plans it once for every call */
        CHECK(run_once(c, rq, 3));
        char *rep = NULL;
        CHECK_OK(si_compiled_report_json(c, &rep));
        if (fold) {
            CHECK(strstr(rep, "\"functions\":[\n {\"id\":0,\"calls\":4,\"ops\":7,") != NULL);
            CHECK(count(rep, "\"function\":0") == 4); /* each call names its function */
            CHECK(strstr(rep, "\"scope\":\"fn0\"") != NULL);
        } else {
            CHECK(strstr(rep, "\"functions\":[]") != NULL);
            CHECK(count(rep, "\"function\":") == 0);
        }
        si_free_string(rep);
        si_request_free(rq);
        si_compiled_free(c);
    }
}

/* CPU,REF with CPU failing at its nth inference: the body fails over once, for all its calls. */
static void test_body_failover(void) {
    fprintf(stderr, "fold_blocks on CPU,REF, CPU failing at its Nth inference (N = 1..4: a call of the body)\n");
    for (int n = 1; n <= 4; n++) {
        char spec[32];
        snprintf(spec, sizeof spec, "CPU.infer=%d", n);
        const char *props[] = {"devices", "CPU,REF", "faults", spec, NULL};
        si_compiled *c = compile(props);
        si_request *rq = NULL;
        if (c) CHECK_OK(si_request_create(c, &rq));
        if (!rq) { si_compiled_free(c); continue; }
        bool ok = run_once(c, rq, 3) && run_once(c, rq, 4);
        if (!ok) fprintf(stderr, "  %s: outputs differ\n", spec);
        CHECK(ok);
        si_counters k;
        si_compiled_counters(c, &k);
        CHECK(k.failovers == 1);
        char *rep = NULL;
        CHECK_OK(si_compiled_report_json(c, &rep));
        /* one failover event, on the body's submodel (5: after the model's 4 calls and its Identity); one compile
         * of it on REF; the body runs on REF now */
        CHECK(count(rep, "\"type\":\"failover\"") == 1);
        CHECK(strstr(rep, "\"type\":\"failover\",\"submodel\":5,") != NULL);
        CHECK(count(rep, "{\"device\":\"REF\",\"stage\":\"compile\"") == 1);
        const char *fn = strstr(rep, "\"scope\":\"fn0\"");
        CHECK(fn && strstr(fn, "\"device\":\"REF\"") != NULL);
        if (!ok || k.failovers != 1) fprintf(stderr, "%s\n", rep);
        si_free_string(rep);
        si_request_free(rq);
        si_compiled_free(c);
    }
}

/* The fail-safe policies that bind a body's inputs themselves: the watchdog (copies of the inputs, never of the
 * weights), standby warm-ups and fail-back probes (the weights a call bound, never zeros). Outputs stay right while
 * the body moves between CPU and REF. */
static void test_policies(void) {
    static const char *const cases[][2] = {
        {"infer_timeout_ms", "60000"}, /* the watchdog's input snapshots */
        {"standby", "on"},             /* REF compiled and warmed up in the background */
        {"failback_ms", "5"},          /* CPU probed again after it failed once, with the weights seen */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fprintf(stderr, "fold_blocks on CPU,REF, CPU failing once, %s=%s\n", cases[c][0], cases[c][1]);
        const char *props[] = {"devices", "CPU,REF", "faults", "CPU.infer=2", cases[c][0], cases[c][1], NULL};
        si_compiled *cm = compile(props);
        si_request *rq = NULL;
        if (cm) CHECK_OK(si_request_create(cm, &rq));
        if (!rq) { si_compiled_free(cm); continue; }
        for (int i = 0; i < 30; i++) {
            CHECK(run_once(cm, rq, 1 + i % 4));
            if (!strcmp(cases[c][0], "failback_ms")) usleep(2000);
        }
        si_counters k;
        si_compiled_counters(cm, &k);
        CHECK(k.failovers == 1);
        if (!strcmp(cases[c][0], "failback_ms")) CHECK(k.failbacks >= 1);
        si_request_free(rq);
        si_compiled_free(cm);
    }
}

static void work(test_thread *t) {
    si_request *rq = test_thread_request(t);
    if (!rq) return;
    for (int i = 0; i < 12; i++)
        if (!run_once(t->cm, rq, 1 + i % 5)) test_thread_failed(t, "run");
    si_request_free(rq);
}

static void test_threads(void) {
    fprintf(stderr, "fold_blocks on CPU,REF from 3 threads, CPU failing at random\n");
    const char *props[] = {"devices", "CPU,REF", "faults", "CPU.infer=p0.1@5", "recovery_ms", "1", NULL};
    si_compiled *c = compile(props);
    if (!c) return;
    test_thread w[3];
    int failed = 0;
    run_threads(w, 3, c, NULL, work, NULL, &failed);
    CHECK(failed == 0);
    si_counters k;
    si_compiled_counters(c, &k);
    CHECK(k.failovers >= 1);
    si_compiled_free(c);
}

/* OCL,CPU: the body on OCL (its weights uploaded once per call's constant), OCL failing at its Nth inference moves
 * the body to CPU once. Skipped without an OpenCL device that takes the body. */
static void test_ocl(void) {
    for (int n = 0; n <= 3; n++) {
        char spec[32];
        snprintf(spec, sizeof spec, n ? "OCL.infer=%d" : "", n);
        const char *props[] = {"devices", "OCL,CPU", "faults", spec, NULL};
        si_compiled *c = compile(props);
        char *rep = NULL;
        if (c) CHECK_OK(si_compiled_report_json(c, &rep));
        const char *fn = rep ? strstr(rep, "\"scope\":\"fn0\"") : NULL;
        bool on_ocl = fn && strstr(fn, "\"device\":\"OCL\"");
        si_free_string(rep);
        if (!on_ocl) {
            fprintf(stderr, "OCL,CPU: skipped (no OpenCL device takes the body here)\n");
            si_compiled_free(c);
            return;
        }
        fprintf(stderr, "fold_blocks on OCL,CPU%s%s\n", n ? ", " : "", spec);
        si_request *rq = NULL;
        CHECK_OK(si_request_create(c, &rq));
        for (int i = 0; rq && i < 4; i++) CHECK(run_once(c, rq, 2 + i % 3));
        si_counters k;
        si_compiled_counters(c, &k);
        CHECK(k.failovers == (n ? 1 : 0));
        si_request_free(rq);
        si_compiled_free(c);
    }
}

/* Blocks whose weights feed a Conv are not folded (its fast path wants constant weights): the same outputs with
 * fold on and off, and no function. */
static void test_not_folded(void) {
    fprintf(stderr, "fold_conv: conv blocks are not folded\n");
    float out[2][144];
    for (int fold = 0; fold < 2; fold++) {
        si_model *m = NULL;
        si_config *cfg = NULL;
        si_compiled *c = NULL;
        si_request *rq = NULL;
        CHECK_OK(si_model_load(data_path("fold_conv.onnx"), &m));
        CHECK_OK(si_config_create(&cfg));
        if (cfg) CHECK_OK(si_config_set(cfg, "fold", fold ? "on" : "off"));
        if (cfg) CHECK_OK(si_config_set(cfg, "devices", "CPU"));
        if (m && cfg) CHECK_OK(si_compile(m, cfg, &c));
        if (c) CHECK_OK(si_request_create(c, &rq));
        float x[144];
        for (int i = 0; i < 144; i++) x[i] = (float)(i % 9) / 4.0f - 1.0f;
        int64_t dims[4] = {1, 4, 6, 6};
        si_tensor *tx = NULL, *y = NULL;
        if (rq) CHECK_OK(si_tensor_wrap(SI_F32, 4, dims, x, sizeof x, &tx));
        if (tx) CHECK_OK(si_request_set_input(rq, 0, tx));
        if (tx) CHECK_OK(si_request_infer(rq));
        if (tx) CHECK_OK(si_request_get_output(rq, 0, &y));
        memcpy(out[fold], y ? si_tensor_data(y) : x, sizeof x);
        char *rep = NULL;
        if (c) CHECK_OK(si_compiled_report_json(c, &rep));
        CHECK(rep && strstr(rep, "\"functions\":[]"));
        si_free_string(rep);
        si_tensor_free(tx);
        si_request_free(rq);
        si_compiled_free(c);
        si_config_free(cfg);
        si_model_free(m);
    }
    CHECK(!memcmp(out[0], out[1], sizeof out[0]));
}

static void test_hostile(void) {
    fprintf(stderr, "a model using Call (ai.safeinfer) itself\n");
    si_model *m = NULL;
    CHECK_ERR(si_model_load(data_path("fold_hostile_call.onnx"), &m), SI_ERR_UNSUPPORTED, "ai.safeinfer");
    si_model_free(m);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    test_outputs("REF");
    test_outputs("CPU");
    test_outputs("CPU,REF");
    test_body_failover();
    test_failed_keeps_outputs();
    test_policies();
    test_threads();
    test_ocl();
    test_not_folded();
    test_hostile();
    return test_summary("test_fold");
}
