/*
 * test_control.c — control flow run end to end through include/safeinfer.h: If, Loop and Scan on the host, their
 * branches and bodies compiled like models (tests/data/control_*.onnx, scripts/make_test_models.py), against
 * values computed here:
 *   - control_flow.onnx: an If (reading model values from two levels up through a nested If) and a Loop with a
 *     scan output, both conditions, on REF, CPU,REF and CPU; two requests that take different branches;
 *   - control_loop_if.onnx: an If nested in a Loop body, the loop ending on its trip count or on its condition
 *     (a trip count of 2^63-1 too, as PyTorch exports while loops), with no iteration at all;
 *   - control_scan.onnx: Scan with a scan output stacked along axis 1;
 *   - control_nested16.onnx: Ifs nested 16 deep, each branch a scope of its own;
 *   - control_if_const.onnx, control_if_fold.onnx: Ifs on conditions known at compile time are folded away (no
 *     host step left), nested ones too, except one whose branch reuses a model value's name (it runs);
 *   - failover inside a branch or a body: CPU,REF with CPU failing at its Nth inference, for every N the
 *     inferences reach, gives the fault-free outputs (and OCL,CPU with OCL failing, where OpenCL is present,
 *     with a branch on OCL);
 *   - bad input: a negative trip count and a loop past loop_max_iterations are named errors, the outputs stay
 *     the last successful inference's.
 *
 *   test_control [BUILD_DIR]
 */
#include "si_test.h"

#include <stdbool.h>
#include <stdint.h>

static const float W[3] = {1.0f, -2.0f, 0.5f};

typedef struct feed {
    const char *name;
    si_dtype dt;
    int nd;
    int64_t dims[4];
    const void *data;
} feed;

/* A compiled model for file on the config's key/value pairs (NULL-terminated), inputs fixed where shapes say. */
static si_compiled *compile(const char *file, const char *const *props, const char *fix_name, int fix_nd, const int64_t *fix) {
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    CHECK_OK(si_model_load(data_path(file), &m));
    CHECK_OK(si_config_create(&cfg));
    if (m && fix_name) CHECK_OK(si_model_set_input_shape(m, fix_name, fix_nd, fix));
    for (int i = 0; cfg && props && props[i]; i += 2) CHECK_OK(si_config_set(cfg, props[i], props[i + 1]));
    if (m && cfg) {
        si_result s = si_compile(m, cfg, &c);
        if (s) fprintf(stderr, "  compile %s: %s\n", file, si_last_error());
        CHECK(s == SI_OK);
    }
    si_config_free(cfg);
    si_model_free(m);
    return c;
}

/* compile(file, props) and a request on it: the request (*c its compiled model), or NULL with nothing left when
 * either fails (a failed check). */
static si_request *compile_request(const char *file, const char *const *props, si_compiled **c) {
    si_request *rq = NULL;
    *c = compile(file, props, NULL, 0, NULL);
    if (*c) CHECK_OK(si_request_create(*c, &rq));
    if (!rq) {
        si_compiled_free(*c);
        *c = NULL;
    }
    return rq;
}

/* A compiled model, a request on it (compile_request) and the tensors wrapping the feeds that infer() binds (at most
 * 4). */
typedef struct ctl_run {
    si_compiled *c;
    si_request *rq;
    si_tensor *keep[4];
} ctl_run;

static bool run_open(ctl_run *r, const char *file, const char *const *props) {
    memset(r, 0, sizeof *r);
    r->rq = compile_request(file, props, &r->c);
    return r->rq != NULL;
}

/* Free the request and the kept tensors (not the compiled model: other runs may share it). */
static void run_release(ctl_run *r) {
    for (int i = 0; i < 4; i++) si_tensor_free(r->keep[i]);
    si_request_free(r->rq);
    memset(r->keep, 0, sizeof r->keep);
    r->rq = NULL;
}

static void run_close(ctl_run *r) {
    run_release(r);
    si_compiled_free(r->c);
}

/* Bind the feeds by name, infer. The tensors wrap the caller's data. */
static si_result infer(ctl_run *r, const feed *f, int n) {
    si_compiled *c = r->c;
    si_request *rq = r->rq;
    si_tensor **keep = r->keep;
    for (int i = 0; i < n; i++) {
        int idx = compiled_index(c, 0, f[i].name);
        CHECK(idx >= 0);
        if (idx < 0) continue;
        si_tensor_free(keep[i]);
        keep[i] = NULL;
        int64_t cnt = 1;
        for (int d = 0; d < f[i].nd; d++) cnt *= f[i].dims[d];
        size_t es = f[i].dt == SI_I64 ? 8 : f[i].dt == SI_BOOL ? 1 : 4;
        CHECK_OK(si_tensor_wrap(f[i].dt, f[i].nd, f[i].dims, (void *)f[i].data, (size_t)cnt * es, &keep[i]));
        CHECK_OK(si_request_set_input(rq, idx, keep[i]));
    }
    return si_request_infer(rq);
}

/* Output `name` of r's request: its float data and shape. */
static const float *output(ctl_run *r, const char *name, int *nd, int64_t *dims) {
    int k = compiled_index(r->c, 1, name);
    if (k < 0) {
        CHECK(!"no such output");
        return NULL;
    }
    si_tensor *t = NULL;
    CHECK_OK(si_request_get_output(r->rq, k, &t));
    if (!t) return NULL;
    *nd = si_tensor_ndim(t);
    for (int d = 0; d < *nd; d++) dims[d] = si_tensor_dims(t)[d];
    return si_tensor_data(t);
}

static void check_shape(int nd, const int64_t *dims, int want_nd, const int64_t *want) {
    CHECK(nd == want_nd);
    for (int d = 0; d < nd && d < want_nd; d++) CHECK(dims[d] == want[d]);
}

// --- control_flow.onnx ---------------------------------------------------------------------------------------

static const float X23[6] = {1.0f, 2.0f, -3.0f, -0.5f, 0.25f, 4.0f};

/* Y, AF, S of control_flow.onnx for X = X23. */
static void flow_expect(bool c, float *y, float *af, float *s) {
    for (int i = 0; i < 6; i++) {
        float x = X23[i], w = W[i % 3], a = x + w;
        y[i] = c ? (a > 0 ? a : 0) * w : -(x * x);
        af[i] = a + 3 * w;
        for (int it = 0; it < 3; it++) s[it * 6 + i] = (a + (float)(it + 1) * w) * x;
    }
}

static void test_flow(const char *devices) {
    fprintf(stderr, "control_flow.onnx on %s\n", devices);
    const char *props[] = {"devices", devices, NULL};
    si_compiled *c = compile("control_flow.onnx", props, NULL, 0, NULL);
    if (!c) return;
    ctl_run run[2] = {{.c = c}, {.c = c}};
    CHECK_OK(si_request_create(c, &run[0].rq));
    CHECK_OK(si_request_create(c, &run[1].rq));
    for (int round = 0; round < 2 && run[0].rq && run[1].rq; round++)
        for (int r = 0; r < 2; r++) { /* two requests, the two branches, then swapped */
            bool cv = (r + round) % 2 == 0;
            feed f[2] = {{"X", SI_F32, 2, {2, 3}, X23}, {"C", SI_BOOL, 0, {0}, &cv}};
            CHECK_OK(infer(&run[r], f, 2));
        }
    for (int r = 0; r < 2 && run[r].rq; r++) {
        bool cv = r % 2 == 1; /* the last round's condition */
        float y[6], af[6], s[18];
        flow_expect(cv, y, af, s);
        int nd;
        int64_t dims[8];
        const float *p = output(&run[r], "Y", &nd, dims);
        check_shape(nd, dims, 2, (int64_t[]){2, 3});
        CHECK_FLOATS(p, y, 6);
        p = output(&run[r], "AF", &nd, dims);
        check_shape(nd, dims, 2, (int64_t[]){2, 3});
        CHECK_FLOATS(p, af, 6);
        p = output(&run[r], "S", &nd, dims);
        check_shape(nd, dims, 3, (int64_t[]){3, 2, 3});
        CHECK_FLOATS(p, s, 18);
    }
    run_release(&run[0]);
    run_close(&run[1]);
}

// --- control_loop_if.onnx ------------------------------------------------------------------------------------

/* The loop of control_loop_if.onnx on X = X23: vf and the scan output (iters * 6 floats); returns iters. */
static int64_t loop_if_expect(int64_t n, bool go, float lim, float *vf, float *vs) {
    float v[6];
    memcpy(v, X23, sizeof v);
    int64_t it = 0;
    for (bool cond = go; cond && it < n; it++) {
        float sum = 0;
        for (int i = 0; i < 6; i++) {
            v[i] = it % 2 == 0 ? v[i] + W[i % 3] : v[i] * X23[i];
            sum += v[i];
        }
        memcpy(vs + it * 6, v, sizeof v);
        cond = sum < lim;
    }
    memcpy(vf, v, sizeof v);
    return it;
}

/* Run control_loop_if on r for (n, go, lim) and compare. */
static void loop_if_case(ctl_run *r, int64_t n, bool go, float lim) {
    feed f[4] = {{"X", SI_F32, 2, {2, 3}, X23}, {"N", SI_I64, 0, {0}, &n}, {"GO", SI_BOOL, 0, {0}, &go},
                 {"LIM", SI_F32, 0, {0}, &lim}};
    float vf[6], vs[6 * 64];
    int64_t iters = loop_if_expect(n, go, lim, vf, vs);
    CHECK(iters < 64);
    si_result s = infer(r, f, 4);
    CHECK(s == SI_OK);
    if (s) {
        fprintf(stderr, "  N=%lld GO=%d LIM=%g: %s\n", (long long)n, go, (double)lim, si_last_error());
        return;
    }
    int nd;
    int64_t dims[8];
    const float *p = output(r, "VF", &nd, dims);
    check_shape(nd, dims, 2, (int64_t[]){2, 3});
    CHECK_FLOATS(p, vf, 6);
    p = output(r, "VS", &nd, dims);
    if (iters) {
        check_shape(nd, dims, 3, (int64_t[]){iters, 2, 3});
        CHECK_FLOATS(p, vs, iters * 6);
    } else { /* no iteration: empty (the slice shape is the body's, which never ran: [0, 0, 3] here) */
        CHECK(nd == 3 && dims[0] == 0 && dims[2] == 3);
    }
}

static void test_loop_if(const char *devices) {
    fprintf(stderr, "control_loop_if.onnx on %s\n", devices);
    const char *props[] = {"devices", devices, NULL};
    ctl_run r;
    if (!run_open(&r, "control_loop_if.onnx", props)) return;
    loop_if_case(&r, 5, true, 1e9f);      /* ends on the trip count */
    loop_if_case(&r, INT64_MAX, true, 40.0f); /* ends on the condition (the sums grow past 40) */
    loop_if_case(&r, 7, false, 1e9f);     /* no iteration: the initial value, an empty scan output */
    loop_if_case(&r, 0, true, 1e9f);
    loop_if_case(&r, 1, true, -1e9f);     /* one iteration, then the condition is false */
    run_close(&r);
}

// --- control_scan.onnx ---------------------------------------------------------------------------------------

static void test_scan(const char *devices) {
    fprintf(stderr, "control_scan.onnx on %s\n", devices);
    const char *props[] = {"devices", devices, NULL};
    ctl_run r;
    if (!run_open(&r, "control_scan.onnx", props)) return;
    const float h0[3] = {0.5f, -1.0f, 2.0f};
    const float xs[12] = {1, 2, 3, -1, 0.5f, -2, 0, 1, -1, 2, -0.5f, 0.25f};
    for (int64_t seq = 4; seq >= 0; seq -= 2) { /* the sequence length changes from one inference to the next */
        feed f[2] = {{"H0", SI_F32, 1, {3}, h0}, {"XS", SI_F32, 2, {seq, 3}, xs}};
        CHECK_OK(infer(&r, f, 2));
        float h[3], ys[12];
        memcpy(h, h0, sizeof h);
        for (int t = 0; t < seq; t++)
            for (int j = 0; j < 3; j++) {
                float p = xs[t * 3 + j] * xs[t * 3 + j];
                h[j] += p * W[j];
                ys[j * seq + t] = h[j] > 0 ? h[j] : 0; /* YS[j][t]: stacked along axis 1 */
            }
        int nd;
        int64_t dims[8];
        const float *p = output(&r, "HF", &nd, dims);
        check_shape(nd, dims, 1, (int64_t[]){3});
        CHECK_FLOATS(p, h, 3);
        p = output(&r, "YS", &nd, dims);
        check_shape(nd, dims, 2, (int64_t[]){3, seq});
        if (seq) CHECK_FLOATS(p, ys, seq * 3);
    }
    run_close(&r);
}

// --- nesting -------------------------------------------------------------------------------------------------

/* control_nested16.onnx: Ifs nested 16 deep (each then-branch holds the next, the innermost gives X; else -X),
 * every branch a scope compiled on its own: C true gives X through all 16 levels, C false -X at the top. */
static void test_nested(const char *devices) {
    fprintf(stderr, "control_nested16.onnx on %s\n", devices);
    const char *props[] = {"devices", devices, NULL};
    ctl_run r = {.c = compile("control_nested16.onnx", props, NULL, 0, NULL)};
    if (r.c) CHECK_OK(si_request_create(r.c, &r.rq));
    char *rep = NULL;
    if (r.c) CHECK_OK(si_compiled_report_json(r.c, &rep));
    /* the deepest branch's scope path names all 16 Ifs */
    CHECK(rep && strstr(rep, "if0.then_branch/if1.then_branch/if2.then_branch/if3.then_branch/if4.then_branch/"
                             "if5.then_branch/if6.then_branch/if7.then_branch/if8.then_branch/if9.then_branch/"
                             "if10.then_branch/if11.then_branch/if12.then_branch/if13.then_branch/if14.then_branch/"
                             "if15.then_branch\""));
    si_free_string(rep);
    const float x[2] = {1.5f, -4.0f}, nx[2] = {-1.5f, 4.0f};
    for (int k = 0; r.rq && k < 2; k++) {
        bool cv = k == 0;
        feed f[2] = {{"X", SI_F32, 1, {2}, x}, {"C", SI_BOOL, 0, {0}, &cv}};
        CHECK_OK(infer(&r, f, 2));
        int nd;
        int64_t dims[8];
        CHECK_FLOATS(output(&r, "Y0", &nd, dims), cv ? x : nx, 2);
    }
    run_close(&r);
}

// --- folding ---------------------------------------------------------------------------------------------------

static void test_fold(void) {
    fprintf(stderr, "control_if_const.onnx: Ifs on known conditions folded away\n");
    const char *props[] = {"devices", "REF", NULL};
    ctl_run r = {.c = compile("control_if_const.onnx", props, NULL, 0, NULL)};
    if (!r.c) return;
    char *rep = NULL;
    CHECK_OK(si_compiled_report_json(r.c, &rep));
    CHECK(rep && !strstr(rep, "\"host\"") && !strstr(rep, "\"subgraphs\"") && !strstr(rep, "\"If\""));
    si_free_string(rep);
    CHECK_OK(si_request_create(r.c, &r.rq));
    feed f[1] = {{"X", SI_F32, 2, {2, 3}, X23}};
    if (r.rq) CHECK_OK(infer(&r, f, 1));
    int nd;
    int64_t dims[8];
    for (int k = 0; r.rq && k < 2; k++) { /* Y1 (a constant condition) and Y2 (one folded from X's rank): X */
        const float *p = output(&r, k ? "Y2" : "Y1", &nd, dims);
        check_shape(nd, dims, 2, (int64_t[]){2, 3});
        CHECK_FLOATS(p, X23, 6);
    }
    run_close(&r);

    /* control_if_fold.onnx: an If in a folded branch folds too, branches that return an initializer or a model
     * input as they are; the If whose branch reuses a model value's name (A) is left to the host */
    fprintf(stderr, "control_if_fold.onnx\n");
    r = (ctl_run){.c = compile("control_if_fold.onnx", props, NULL, 0, NULL)};
    if (!r.c) return;
    rep = NULL;
    CHECK_OK(si_compiled_report_json(r.c, &rep));
    const char *h = rep ? strstr(rep, "\"host\"") : NULL;
    CHECK(h && !strstr(h + 1, "\"host\"")); /* one host step */
    CHECK(rep && strstr(rep, "\"scope\":\"if3.then_branch\"") && !strstr(rep, "if1.") && !strstr(rep, "if2.") &&
          !strstr(rep, "inner_if"));
    si_free_string(rep);
    CHECK_OK(si_request_create(r.c, &r.rq));
    const float x[3] = {1, -2, 3}, nx[3] = {-1, 2, -3}, rx[3] = {1, 0, 3};
    feed f3[1] = {{"X", SI_F32, 1, {3}, x}};
    if (r.rq) CHECK_OK(infer(&r, f3, 1));
    const char *names[4] = {"Y1", "Y2", "Y3", "A"};
    const float *want[4] = {W, x, nx, rx};
    for (int k = 0; r.rq && k < 4; k++) {
        const float *p = output(&r, names[k], &nd, dims);
        check_shape(nd, dims, 1, (int64_t[]){3});
        CHECK_FLOATS(p, want[k], 3);
    }
    run_close(&r);
}

// --- failover inside branches and bodies ---------------------------------------------------------------------

/* control_loop_if on `devices` with `faults`: the fault-free values, *failovers the count. */
static void fault_case(const char *devices, const char *faults, int64_t *failovers, bool *ok) {
    const char *props[] = {"devices", devices, "faults", faults, NULL};
    *ok = false;
    ctl_run r;
    if (!run_open(&r, "control_loop_if.onnx", props)) return;
    int before = n_failed;
    for (int rep = 0; rep < 2; rep++) loop_if_case(&r, 6, true, 1e9f);
    *ok = n_failed == before;
    si_counters k;
    si_compiled_counters(r.c, &k);
    *failovers = k.failovers;
    run_close(&r);
}

static void test_failover(const char *devices, const char *dev) {
    fprintf(stderr, "failover on %s, %s failing at its Nth inference\n", devices, dev);
    int with_failover = 0, n;
    for (n = 1; n <= 64; n++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s.infer=%d", dev, n);
        int64_t fo = 0;
        bool ok;
        fault_case(devices, spec, &fo, &ok);
        if (!ok) fprintf(stderr, "  %s: outputs differ\n", spec);
        if (!fo) break; /* the Nth inference was never reached */
        with_failover++;
    }
    fprintf(stderr, "  %d fault positions, each failed over with the fault-free outputs\n", with_failover);
    CHECK(with_failover >= 8 && n <= 64); /* 2 inferences of 6 iterations: many device calls inside the body */
}

/* OCL,CPU with the batch fixed: a branch runs on OCL (the report says so), and OCL failing at its Nth inference
 * gives the fault-free outputs. Skipped without an OpenCL device. */
static void test_ocl(void) {
    const char *props[] = {"devices", "OCL,CPU", NULL};
    int64_t fix[2] = {2, 3};
    si_compiled *c = compile("control_flow.onnx", props, "X", 2, fix);
    char *rep = NULL;
    if (c) CHECK_OK(si_compiled_report_json(c, &rep));
    const char *then = rep ? strstr(rep, "\"scope\":\"if.then_branch\"") : NULL;
    const char *next = then ? strstr(then + 1, "\"scope\"") : NULL;
    const char *on_ocl = then ? strstr(then, "\"device\":\"OCL\"") : NULL;
    bool branch_on_ocl = on_ocl && (!next || on_ocl < next);
    si_free_string(rep);
    si_compiled_free(c);
    if (!branch_on_ocl) {
        fprintf(stderr, "OCL,CPU: skipped (no OpenCL device takes the If's then-branch here)\n");
        return;
    }
    fprintf(stderr, "OCL,CPU: the If's then-branch runs on OCL; OCL failing at its Nth inference\n");
    int failed_over = 0;
    for (int n = 1; n <= 12; n++) {
        char spec[64];
        snprintf(spec, sizeof spec, "OCL.infer=%d", n);
        const char *fprops[] = {"devices", "OCL,CPU", "faults", spec, NULL};
        ctl_run run = {.c = compile("control_flow.onnx", fprops, "X", 2, fix)};
        if (run.c) CHECK_OK(si_request_create(run.c, &run.rq));
        for (int r = 0; run.rq && r < 3; r++) {
            bool cv = true;
            feed f[2] = {{"X", SI_F32, 2, {2, 3}, X23}, {"C", SI_BOOL, 0, {0}, &cv}};
            CHECK_OK(infer(&run, f, 2));
            float y[6], af[6], s[18];
            flow_expect(cv, y, af, s);
            int nd;
            int64_t dims[8];
            CHECK_FLOATS(output(&run, "Y", &nd, dims), y, 6);
            CHECK_FLOATS(output(&run, "AF", &nd, dims), af, 6);
            CHECK_FLOATS(output(&run, "S", &nd, dims), s, 18);
        }
        si_counters k;
        if (run.c) {
            si_compiled_counters(run.c, &k);
            failed_over += k.failovers > 0;
        }
        run_close(&run);
    }
    fprintf(stderr, "  %d fault positions failed over\n", failed_over);
    CHECK(failed_over >= 2);
}

// --- threads ---------------------------------------------------------------------------------------------------

/* A thread's trip count is 3 + its index. */
static void thread_main(test_thread *t) {
    si_request *rq = test_thread_request(t);
    if (!rq) return;
    int64_t n = 3 + t->id;
    bool go = true;
    float lim = 1e9f;
    float vf[6], vs[6 * 64];
    loop_if_expect(n, go, lim, vf, vs);
    const void *feeds[4] = {X23, &n, &go, &lim};
    const char *names[4] = {"X", "N", "GO", "LIM"};
    si_dtype dts[4] = {SI_F32, SI_I64, SI_BOOL, SI_F32};
    si_tensor *t4[4] = {NULL, NULL, NULL, NULL};
    int64_t xd[2] = {2, 3};
    size_t nb[4] = {24, 8, 1, 4};
    for (int i = 0; i < 4; i++) {
        int idx = compiled_index(t->cm, 0, names[i]);
        if (idx < 0 || si_tensor_wrap(dts[i], i ? 0 : 2, xd, (void *)feeds[i], nb[i], &t4[i]) || si_request_set_input(rq, idx, t4[i]))
            test_thread_failed(t, names[i]);
    }
    for (int rep = 0; rep < 20 && !t->failed; rep++) {
        si_tensor *o = NULL;
        if (si_request_infer(rq) || si_request_get_output(rq, 0, &o) || !o) { test_thread_failed(t, "infer"); break; }
        const float *d = si_tensor_data(o);
        for (int i = 0; i < 6; i++)
            if (fabsf(d[i] - vf[i]) > 1e-5f * (1 + fabsf(vf[i]))) test_thread_failed(t, "output differs");
    }
    for (int i = 0; i < 4; i++) si_tensor_free(t4[i]);
    si_request_free(rq);
}

/* Four threads, each with its own request on one compiled model, each its own trip count: each gets its own
 * values (a control step's body requests belong to its request). */
static void test_threads(const char *devices) {
    fprintf(stderr, "threads on %s\n", devices);
    const char *props[] = {"devices", devices, NULL};
    si_compiled *c = compile("control_loop_if.onnx", props, NULL, 0, NULL);
    if (!c) return;
    test_thread t[4];
    int failed = 0;
    run_threads(t, 4, c, NULL, thread_main, NULL, &failed);
    CHECK(failed == 0);
    si_compiled_free(c);
}

// --- bad input -------------------------------------------------------------------------------------------------

static void test_bad_loop(void) {
    fprintf(stderr, "bad trip counts\n");
    const char *props[] = {"devices", "REF", "loop_max_iterations", "1000", NULL};
    ctl_run r;
    if (!run_open(&r, "control_bad_loop.onnx", props)) return;
    const float v = 2.5f;
    int64_t n = 5;
    feed f[2] = {{"V", SI_F32, 1, {1}, &v}, {"N", SI_I64, 0, {0}, &n}};
    CHECK_OK(infer(&r, f, 2));
    int nd;
    int64_t dims[8];
    const float want = 7.5f;
    CHECK_FLOATS(output(&r, "VF", &nd, dims), &want, 1);
    n = -3;
    CHECK_ERR(infer(&r, f, 2), SI_ERR_INVALID_ARG, "Loop (node 'loop'): the trip count M is negative (-3)");
    CHECK_FLOATS(output(&r, "VF", &nd, dims), &want, 1); /* the last successful inference's */
    n = INT64_MAX;
    CHECK_ERR(infer(&r, f, 2), SI_ERR_INVALID_ARG, "stopped after 1000 iterations");
    CHECK_FLOATS(output(&r, "VF", &nd, dims), &want, 1);
    n = 1000; /* the limit itself is allowed */
    CHECK_OK(infer(&r, f, 2));
    const float w1000 = 1002.5f;
    CHECK_FLOATS(output(&r, "VF", &nd, dims), &w1000, 1);
    run_close(&r);
    /* the limit is a checked property */
    si_config *cfg = NULL;
    CHECK_OK(si_config_create(&cfg));
    if (cfg) CHECK_ERR(si_config_set(cfg, "loop_max_iterations", "-1"), SI_ERR_INVALID_ARG, "loop_max_iterations");
    si_config_free(cfg);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const char *lists[] = {"REF", "CPU,REF", "CPU"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
#ifndef SI_HAVE_CPU
        if (strstr(lists[i], "CPU")) continue;
#endif
        test_flow(lists[i]);
        test_loop_if(lists[i]);
        test_scan(lists[i]);
        test_nested(lists[i]);
    }
    test_fold();
    test_bad_loop();
    test_threads("REF");
#ifdef SI_HAVE_CPU
    test_threads("CPU,REF");
#endif
#ifdef SI_HAVE_CPU
    test_failover("CPU,REF", "CPU");
#endif
#if defined(SI_HAVE_OCL) && defined(SI_HAVE_CPU)
    test_ocl();
#endif
    return test_summary("test_control");
}
