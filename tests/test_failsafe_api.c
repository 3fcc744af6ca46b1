/*
 * test_failsafe_api.c — the fail-safe promises through the public API only, on the example model with injected
 * faults (CPU and REF exist on every build):
 *   outputs after a failed infer    the output tensor keeps the last successful infer's shape and data, on one
 *                                   device and on a device list (defect 4 of "Never die with the device")
 *   recovery_ms                     after every device failed, the model tries them again (defect 5); the
 *                                   property is validated; the all-failed message says when
 *   concurrent failovers            with standby=on, fail-back and random faults, no inference of any thread
 *                                   fails while another one's failover is under way (defect 2)
 *   accuracy_check                  outputs off the reference device's (NRMSE over accuracy_threshold) fail the
 *                                   active device over (stage accuracy) and the inference gives the reference's
 *                                   answer; within the threshold nothing moves; the keys are validated
 * The mock-device tests (test_failsafe_mock.c) drive the same defects deterministically at the layer level.
 */
#include "si_test.h"

#include <stdatomic.h>
#include <stdbool.h>

#define BATCH 2
#define OUT_N (BATCH * 10)

static si_model *model;
static si_tensor *input;

static si_compiled *compile_kv(const char *const *kv) {
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_result s = si_config_create(&cfg);
    for (int i = 0; !s && kv[i]; i += 2) s = si_config_set(cfg, kv[i], kv[i + 1]);
    if (!s) s = si_compile(model, cfg, &cm);
    CHECK(s == SI_OK);
    si_config_free(cfg);
    return s ? NULL : cm;
}

/* A request on cm (a failed check when cm is NULL or the request cannot be made; cm is freed then). */
static si_request *request_on(si_compiled *cm) {
    si_request *rq = NULL;
    if (cm && !si_request_create(cm, &rq)) return rq;
    CHECK(false);
    si_compiled_free(cm);
    return NULL;
}

/* Inference 1 works, inference 2 fails on every device: output 0 is the same object with inference 1's shape
 * and data. */
static void outputs_after_failure(const char *devices, const char *faults) {
    si_compiled *cm = compile_kv((const char *const[]){"devices", devices, "faults", faults, "recovery_ms", "0", NULL});
    si_request *rq = request_on(cm);
    if (!rq) return;
    CHECK_OK(si_request_set_input(rq, 0, input));
    CHECK_OK(si_request_infer(rq));
    si_tensor *y1 = NULL, *y2 = NULL;
    CHECK_OK(si_request_get_output(rq, 0, &y1));
    float good[OUT_N];
    CHECK(y1 && si_tensor_count(y1) == OUT_N && si_tensor_data(y1));
    if (y1 && si_tensor_data(y1) && si_tensor_count(y1) == OUT_N) memcpy(good, si_tensor_data(y1), sizeof good);
    CHECK_ERR(si_request_infer(rq), SI_ERR_DEVICE, "");
    CHECK_OK(si_request_get_output(rq, 0, &y2));
    CHECK(y1 == y2);
    CHECK(si_tensor_ndim(y2) == 2 && si_tensor_dims(y2)[0] == BATCH && si_tensor_dims(y2)[1] == 10);
    CHECK(si_tensor_count(y2) == OUT_N && si_tensor_nbytes(y2) == sizeof good);
    if (si_tensor_count(y2) == OUT_N) CHECK_FLOATS(si_tensor_data(y2), good, OUT_N);
    else fprintf(stderr, "  [%s | %s] after a failed infer: ndim %d count %lld data %p\n", devices, faults,
                 si_tensor_ndim(y2), (long long)si_tensor_count(y2), si_tensor_data(y2));
    si_request_free(rq);
    si_compiled_free(cm);
}

static void test_outputs_after_failure(void) {
    outputs_after_failure("CPU", "CPU.infer=2");                 /* one device: the device's own request */
    outputs_after_failure("CPU,REF", "CPU.infer=2,REF.infer=1"); /* the fail-safe request: every device fails */
    outputs_after_failure("CPU,REF", "CPU.infer=2+,REF.infer=1+");
}

/* Seconds in the all-failed message ("... tried again in N ms"), -1 when absent. */
static double retry_in_ms(void) {
    const char *p = strstr(si_last_error(), "tried again in ");
    return p ? atof(p + strlen("tried again in ")) : -1;
}

static void test_recovery(void) {
    si_config *cfg = NULL;
    CHECK_OK(si_config_create(&cfg));
    CHECK_OK(si_config_set(cfg, "recovery_ms", "250"));
    CHECK_OK(si_config_set(cfg, "recovery_ms", "0"));
    CHECK_ERR(si_config_set(cfg, "recovery_ms", "-1"), SI_ERR_INVALID_ARG, "recovery_ms");
    CHECK_ERR(si_config_set(cfg, "recovery_ms", "soon"), SI_ERR_INVALID_ARG, "recovery_ms");
    si_config_free(cfg);
    /* CPU fails its 2nd inference only, REF its first: inference 2 leaves no device; after recovery_ms the
     * devices are tried again and CPU works (long enough that inference 2 ends before the back-off does) */
    si_compiled *cm = compile_kv((const char *const[]){"devices", "CPU,REF", "faults", "CPU.infer=2,REF.infer=1",
                                                       "recovery_ms", "500", NULL});
    si_request *rq = request_on(cm);
    if (!rq) return;
    CHECK_OK(si_request_set_input(rq, 0, input));
    CHECK_OK(si_request_infer(rq));
    CHECK_ERR(si_request_infer(rq), SI_ERR_DEVICE, "every device failed");
    CHECK(retry_in_ms() >= 0 && retry_in_ms() <= 500);
    si_result st = SI_ERR_DEVICE;
    for (int i = 0; i < 5000 && (st = si_request_infer(rq)) != SI_OK; i++) usleep(1000);
    CHECK(st == SI_OK);
    CHECK_STREQ(si_compiled_devices(cm), "CPU>REF");
    char *json = NULL;
    CHECK_OK(si_compiled_report_json(cm, &json));
    CHECK(json && strstr(json, "\"type\":\"failback\",\"submodel\":0,\"from\":\"\",\"to\":\"CPU\",\"stage\":\"recovery\""));
    si_free_string(json);
    si_request_free(rq);
    si_compiled_free(cm);
    /* the default: on (1000 ms), and the message says so */
    cm = compile_kv((const char *const[]){"devices", "CPU,REF", "faults", "CPU.infer=1+,REF.infer=1+", NULL});
    if (cm && !si_request_create(cm, &rq)) {
        CHECK_OK(si_request_set_input(rq, 0, input));
        CHECK_ERR(si_request_infer(rq), SI_ERR_DEVICE, "every device failed");
        CHECK(retry_in_ms() > 500 && retry_in_ms() <= 1000);
        si_request_free(rq);
    }
    si_compiled_free(cm);
}

/* Many requests on one compiled model with standby=on, fail-back and random CPU faults: failovers and
 * fail-backs (each followed by a standby compile) keep happening; no request may fail meanwhile. */
static void work(test_thread *t) {
    si_request *rq = test_thread_request(t);
    if (!rq) return;
    if (si_request_set_input(rq, 0, input)) {
        test_thread_failed(t, "set_input");
        si_request_free(rq);
        return;
    }
    for (int i = 0; i < 40; i++) {
        if (!si_request_infer(rq)) t->ok++;
        else test_thread_failed(t, "infer");
    }
    si_request_free(rq);
}

static void test_concurrent_failovers(void) {
    si_compiled *cm = compile_kv((const char *const[]){"devices", "CPU,REF", "standby", "on", "failback_ms", "2",
                                                       "faults", "CPU.infer=p0.3@5", NULL});
    if (!cm) return;
    test_thread w[6];
    int ok = 0, failed = 0;
    run_threads(w, 6, cm, NULL, work, &ok, &failed);
    si_counters k;
    si_compiled_counters(cm, &k);
    fprintf(stderr, "  concurrent: %d ok, %d failed; %lld failovers, %lld failbacks\n", ok, failed,
            (long long)k.failovers, (long long)k.failbacks);
    CHECK(ok == 240 && failed == 0);
    CHECK(k.failovers >= 1);
    si_compiled_free(cm);
}

/* Whether cm's report has a submodel that ended on `device`. */
static bool ended_on(si_compiled *cm, const char *device) {
    char *json = NULL, want[64];
    if (si_compiled_report_json(cm, &json)) return false;
    snprintf(want, sizeof want, "\"device\":\"%s\",\"attempts\"", device);
    bool yes = strstr(json, want) != NULL;
    si_free_string(json);
    return yes;
}

/* n inferences of rq on the global input; output 0 after them (NULL when it cannot be read). */
static si_tensor *infer_n(si_request *rq, int n) {
    si_tensor *y = NULL;
    for (int i = 0; i < n; i++) {
        CHECK_OK(si_request_set_input(rq, 0, input));
        CHECK_OK(si_request_infer(rq));
    }
    CHECK_OK(si_request_get_output(rq, 0, &y));
    return y;
}

/* Number of failovers with stage "accuracy" in cm's report, and whether a passing check was recorded. */
static int accuracy_failovers(si_compiled *cm, bool *passed) {
    char *json = NULL;
    int n = 0;
    *passed = false;
    if (si_compiled_report_json(cm, &json)) return -1;
    for (const char *p = json; (p = strstr(p, "\"type\":\"failover\"")); p++) {
        const char *e = strchr(p, '}');
        const char *st = strstr(p, "\"stage\":\"accuracy\"");
        if (st && e && st < e) n++;
    }
    *passed = strstr(json, "\"stage\":\"accuracy\",\"status\":\"SI_OK\"") != NULL;
    si_free_string(json);
    return n;
}

static void test_accuracy_check(void) {
    fprintf(stderr, "accuracy_check\n");
    /* CPU agrees with REF: checked, nothing moves */
    si_compiled *cm = compile_kv((const char *const[]){"devices", "CPU,REF", "accuracy_check", "REF", NULL});
    si_request *rq = NULL;
    float want[OUT_N];
    bool passed = false;
    if (cm && !si_request_create(cm, &rq)) {
        si_tensor *y = infer_n(rq, 3);
        if (y && si_tensor_count(y) == OUT_N) memcpy(want, si_tensor_data(y), sizeof want);
        CHECK(accuracy_failovers(cm, &passed) == 0 && passed);
        CHECK(ended_on(cm, "CPU") && !ended_on(cm, "REF"));
    }
    si_request_free(rq);
    si_compiled_free(cm);
    /* CPU's second inference gives NaN: the check against REF fails it over, and that inference gives REF's answer */
    cm = compile_kv((const char *const[]){"devices", "CPU,REF", "accuracy_check", "REF", "faults", "CPU.infer=2:nan", NULL});
    rq = NULL;
    if (cm && !si_request_create(cm, &rq)) {
        si_tensor *y = infer_n(rq, 2);
        if (y && si_tensor_count(y) == OUT_N) CHECK_FLOATS(si_tensor_data(y), want, OUT_N);
        CHECK(accuracy_failovers(cm, &passed) == 1);
        CHECK(ended_on(cm, "REF"));
    }
    si_request_free(rq);
    si_compiled_free(cm);
    /* sampling: with accuracy_check_every=4 the NaN of inference 2 is not seen (inferences 1 and 5 are checked) */
    cm = compile_kv((const char *const[]){"devices", "CPU,REF", "accuracy_check", "REF", "accuracy_check_every", "4",
                                          "faults", "CPU.infer=2:nan", NULL});
    rq = NULL;
    if (cm && !si_request_create(cm, &rq)) {
        CHECK_OK(si_request_set_input(rq, 0, input));
        for (int i = 0; i < 3; i++) CHECK_OK(si_request_infer(rq));
        CHECK(accuracy_failovers(cm, &passed) == 0);
    }
    si_request_free(rq);
    si_compiled_free(cm);
    /* bad keys: named errors */
    si_config *cfg = NULL;
    CHECK_OK(si_config_create(&cfg));
    CHECK_ERR(si_config_set(cfg, "accuracy_threshold", "-1"), SI_ERR_INVALID_ARG, "accuracy_threshold");
    CHECK_ERR(si_config_set(cfg, "accuracy_threshold", "nan"), SI_ERR_INVALID_ARG, "accuracy_threshold");
    CHECK_ERR(si_config_set(cfg, "accuracy_check_every", "0"), SI_ERR_INVALID_ARG, "accuracy_check_every");
    CHECK_ERR(si_config_set(cfg, "accuracy_check", "GPU"), SI_ERR_INVALID_ARG, "GPU");
    CHECK_OK(si_config_set(cfg, "devices", "CPU"));
    CHECK_OK(si_config_set(cfg, "accuracy_check", "REF"));
    cm = NULL;
    CHECK_ERR(si_compile(model, cfg, &cm), SI_ERR_INVALID_ARG, "not in the device list");
    CHECK(cm == NULL);
    si_config_free(cfg);
}

int main(void) {
    CHECK_OK(si_model_load(SI_EXAMPLE_MODEL, &model));
    CHECK_OK(si_model_set_dim(model, "batch", BATCH));
    int64_t dims[4] = {BATCH, 3, 32, 32};
    CHECK_OK(si_tensor_create(SI_F32, 4, dims, &input));
    if (n_failed) return test_summary("test_failsafe_api");
    float *p = si_tensor_data(input);
    for (int64_t i = 0; i < si_tensor_count(input); i++) p[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    test_outputs_after_failure();
    test_recovery();
    test_concurrent_failovers();
    test_accuracy_check();
    si_tensor_free(input);
    si_model_free(model);
    return test_summary("test_failsafe_api");
}
