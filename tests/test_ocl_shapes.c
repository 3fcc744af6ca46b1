/*
 * test_ocl_shapes.c — the OCL device with open dimensions: a model compiled once with its input dimensions
 * open runs at every input shape that fits, each checked against REF.
 *
 *  1. The CRNN text recogniser (tests/data/crnn_rec.onnx, input x: float32[N,3,48,W]) compiled on OCL alone
 *     (so every node must be on OCL: a device that refused open dimensions fails this compile) runs at widths
 *     160, 320, 96, 320, 48, 224 and batch 1 and 2 on one request (new shapes, and a shape seen before).
 *  2. The same with plan_cache=1 and THREADS threads, each with its own request and its own sequence of widths,
 *     at once: plans are dropped and rebuilt while other requests run on theirs (TSan runs this test).
 *  3. A zero-sized dimension: the KV-cache step of a decoder, past [1,H,0,D] concatenated with the new key.
 *     (tests/data/kv_concat.onnx: Concat(past, new) on axis 2, then a MatMul with the query, open dimensions)
 *
 *   test_ocl_shapes
 * Exits 77 (ctest: skipped) when OCL is not built in or there is no OpenCL device.
 */
#include "si_test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define THREADS 3

static si_model *model;

static si_compiled *compile_on(const si_model *m, const char *devices, const char *plan_cache) {
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    si_result st = si_config_create(&cfg);
    if (!st) st = si_config_set(cfg, "devices", devices);
    if (!st && plan_cache) st = si_config_set(cfg, "plan_cache", plan_cache);
    if (!st) st = si_compile(m, cfg, &c);
    si_config_free(cfg);
    if (st) fprintf(stderr, "compile on %s: %s\n", devices, si_last_error());
    return c;
}

/* Largest |a - b| over max(1, |b|) of output k of two requests that ran; -1 when shapes differ. */
static double rel_diff(si_request *a, si_request *b, int k) {
    si_tensor *x = NULL, *y = NULL;
    if (si_request_get_output(a, k, &x) || si_request_get_output(b, k, &y)) return -1;
    if (si_tensor_ndim(x) != si_tensor_ndim(y) || si_tensor_count(x) != si_tensor_count(y)) return -1;
    for (int d = 0; d < si_tensor_ndim(x); d++)
        if (si_tensor_dims(x)[d] != si_tensor_dims(y)[d]) return -1;
    const float *p = si_tensor_data(x), *q = si_tensor_data(y);
    double worst = 0;
    for (int64_t i = 0; i < si_tensor_count(x); i++) {
        double e = fabs((double)p[i] - q[i]) / fmax(1.0, fabs((double)q[i]));
        if (!(e <= worst)) worst = e; /* NaN counts as the worst */
    }
    return worst;
}

/* One inference of x = [n,3,48,w] on request r (OCL) and on rr (REF); true when they agree. */
static bool run_width(si_request *r, si_request *rr, int64_t n, int64_t w, uint32_t seed) {
    int64_t dims[4] = {n, 3, 48, w};
    si_tensor *x = NULL;
    if (si_tensor_create(SI_F32, 4, dims, &x)) return false;
    fill_xorshift(x, seed, -0.5f);
    bool ok = !si_request_set_input(r, 0, x) && !si_request_infer(r);
    if (!ok) fprintf(stderr, "OCL at %lldx3x48x%lld: %s\n", (long long)n, (long long)w, si_last_error());
    ok = ok && !si_request_set_input(rr, 0, x) && !si_request_infer(rr);
    double d = ok ? rel_diff(r, rr, 0) : -1;
    si_tensor_free(x);
    if (ok && (d < 0 || d > 1e-3)) fprintf(stderr, "OCL vs REF at %lldx3x48x%lld: %g\n", (long long)n, (long long)w, d);
    return ok && d >= 0 && d <= 1e-3;
}

typedef struct {
    si_compiled *ocl, *ref;
    int id;
    bool ok;
} worker;

static void *work(void *arg) {
    worker *wk = arg;
    static const int64_t widths[] = {64, 128, 96, 64, 160, 128, 32, 96};
    si_request *r = NULL, *rr = NULL;
    wk->ok = !si_request_create(wk->ocl, &r) && !si_request_create(wk->ref, &rr);
    for (int i = 0; wk->ok && i < 8; i++) wk->ok = run_width(r, rr, 1, widths[(i + 3 * wk->id) % 8], (uint32_t)(wk->id * 100 + i));
    si_request_free(r);
    si_request_free(rr);
    return NULL;
}

/* kv_concat.onnx: past [1,2,P,4] and new [1,2,S,4] concatenated on axis 2 (present), and scores = query
 * [1,2,S,4] x present^T. Returns whether OCL matches REF at this past length (0 included). */
static bool kv_step(si_request *r, si_request *rr, int64_t past, int64_t s, uint32_t seed) {
    int64_t dp[4] = {1, 2, past, 4}, dn[4] = {1, 2, s, 4};
    si_tensor *tp = NULL, *tn = NULL, *tq = NULL;
    bool ok = !si_tensor_create(SI_F32, 4, dp, &tp) && !si_tensor_create(SI_F32, 4, dn, &tn) && !si_tensor_create(SI_F32, 4, dn, &tq);
    if (ok) {
        if (past) fill_xorshift(tp, seed, -0.5f);
        fill_xorshift(tn, seed + 1, -0.5f);
        fill_xorshift(tq, seed + 2, -0.5f);
    }
    for (int k = 0; ok && k < 2; k++) {
        si_request *q = k ? rr : r;
        ok = !si_request_set_input(q, 0, tp) && !si_request_set_input(q, 1, tn) && !si_request_set_input(q, 2, tq) && !si_request_infer(q);
        if (!ok) fprintf(stderr, "kv_concat at past %lld on %s: %s\n", (long long)past, k ? "REF" : "OCL", si_last_error());
    }
    for (int k = 0; ok && k < 2; k++) {
        double d = rel_diff(r, rr, k);
        ok = d >= 0 && d <= 1e-4;
        if (!ok) fprintf(stderr, "kv_concat output %d at past %lld: OCL vs REF %g\n", k, (long long)past, d);
    }
    si_tensor_free(tp);
    si_tensor_free(tn);
    si_tensor_free(tq);
    return ok;
}

int main(void) {
    si_config *probe = NULL;
    if (si_config_create(&probe) || si_config_set(probe, "devices", "OCL")) {
        fprintf(stderr, "test_ocl_shapes: skipped: OCL is not built in\n");
        return 77;
    }
    si_config_free(probe);
    CHECK_OK(si_model_load(data_path("crnn_rec.onnx"), &model));
    if (!model) return test_summary("test_ocl_shapes");
    si_compiled *ocl = compile_on(model, "OCL", NULL);
    if (!ocl && strstr(si_last_error(), "not available")) {
        fprintf(stderr, "test_ocl_shapes: skipped: no OpenCL device\n");
        si_model_free(model);
        return 77;
    }
    CHECK(ocl != NULL); /* every node on OCL, with N and W open */
    si_compiled *ref = compile_on(model, "REF", NULL);
    CHECK(ref != NULL);
    if (ocl && ref) {
        /* 1. one request, new shapes and a shape seen before */
        si_request *r = NULL, *rr = NULL;
        CHECK_OK(si_request_create(ocl, &r));
        CHECK_OK(si_request_create(ref, &rr));
        static const int64_t widths[] = {160, 320, 96, 320, 48, 224};
        for (int i = 0; r && rr && i < 6; i++) CHECK(run_width(r, rr, 1, widths[i], (uint32_t)i));
        if (r && rr) CHECK(run_width(r, rr, 2, 96, 7));
        /* a shape that does not fit the model is refused by name, and the request still works after it */
        int64_t bad[4] = {1, 4, 48, 64};
        si_tensor *x = NULL;
        CHECK_OK(si_tensor_create(SI_F32, 4, bad, &x));
        if (x && r) {
            fill_xorshift(x, 9, -0.5f);
            si_result st = si_request_set_input(r, 0, x);
            if (!st) st = si_request_infer(r);
            CHECK(st == SI_ERR_INVALID_ARG && strstr(si_last_error(), "'x'"));
            if (st != SI_ERR_INVALID_ARG) fprintf(stderr, "wrong channels: %s: %s\n", si_result_str(st), si_last_error());
        }
        si_tensor_free(x);
        if (r && rr) CHECK(run_width(r, rr, 1, 160, 8));
        si_request_free(r);
        si_request_free(rr);
        /* 2. plan_cache=1, several threads with their own widths at once */
        si_compiled *ocl1 = compile_on(model, "OCL", "1");
        CHECK(ocl1 != NULL);
        if (ocl1) {
            pthread_t th[THREADS];
            worker wk[THREADS];
            for (int t = 0; t < THREADS; t++) {
                wk[t] = (worker){ocl1, ref, t, false};
                CHECK(pthread_create(&th[t], NULL, work, &wk[t]) == 0);
            }
            for (int t = 0; t < THREADS; t++) {
                pthread_join(th[t], NULL);
                CHECK(wk[t].ok);
            }
            si_compiled_free(ocl1);
        }
    }
    si_compiled_free(ocl);
    si_compiled_free(ref);
    si_model_free(model);
    /* 3. a KV-cache concatenation from an empty past */
    si_model *kv = NULL;
    CHECK_OK(si_model_load(data_path("kv_concat.onnx"), &kv));
    si_compiled *kocl = kv ? compile_on(kv, "OCL", NULL) : NULL, *kref = kv ? compile_on(kv, "REF", NULL) : NULL;
    CHECK(kocl != NULL && kref != NULL);
    if (kocl && kref) {
        si_request *r = NULL, *rr = NULL;
        CHECK_OK(si_request_create(kocl, &r));
        CHECK_OK(si_request_create(kref, &rr));
        if (r && rr) CHECK(kv_step(r, rr, 0, 5, 1)); /* prefill: 5 tokens over an empty past */
        for (int64_t p = 5; r && rr && p < 9; p++) CHECK(kv_step(r, rr, p, 1, (uint32_t)p)); /* decode */
        si_request_free(r);
        si_request_free(rr);
    }
    si_compiled_free(kocl);
    si_compiled_free(kref);
    si_model_free(kv);
    return test_summary("test_ocl_shapes");
}
