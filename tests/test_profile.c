/*
 * test_profile.c — the step profile (compile property profile=on, si_compiled_profile_json): the CPU device
 * reports each step with the ONNX nodes it covers, its ops, its kernel and its calls; a step on a reference
 * kernel is flagged; the OCL device reports its kernel launches (device time from event timestamps); without
 * profile=on there is no profile; rows of REF-only submodels do not break it.
 */
#include "si_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compile path on devices with profile on|off|NULL, run `runs` inferences, return the profile JSON (or NULL
 * with *status set). */
static char *profile_of(const char *path, const char *devices, const char *profile, int runs, si_result *status) {
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    char *json = NULL;
    si_tensor *in[8] = {0};
    CHECK_OK(si_model_load(path, &m));
    CHECK_OK(si_config_create(&cfg));
    CHECK_OK(si_config_set(cfg, "devices", devices));
    if (profile) CHECK_OK(si_config_set(cfg, "profile", profile));
    CHECK_OK(si_compile(m, cfg, &cm));
    CHECK_OK(si_request_create(cm, &rq));
    int nin = si_model_num_inputs(m);
    for (int i = 0; i < nin && i < 8; i++) {
        si_value_info vi;
        CHECK_OK(si_model_input_info(m, i, &vi));
        int64_t dims[8];
        for (int d = 0; d < vi.ndim; d++) dims[d] = vi.dims[d] > 0 ? vi.dims[d] : 2;
        CHECK_OK(si_tensor_create(vi.dtype, vi.ndim, dims, &in[i]));
        memset(si_tensor_data(in[i]), 0, si_tensor_nbytes(in[i]));
        CHECK_OK(si_request_set_input(rq, i, in[i]));
    }
    for (int k = 0; k < runs; k++) CHECK_OK(si_request_infer(rq));
    *status = si_compiled_profile_json(cm, &json);
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    si_model_free(m);
    for (int i = 0; i < 8; i++) si_tensor_free(in[i]);
    return json;
}

/* The step object of the profile whose "ops" is ops (a copy of it, up to its closing brace), or "". */
static const char *step_with(const char *json, const char *ops, char *buf, size_t n) {
    char key[128];
    snprintf(key, sizeof key, "\"ops\":\"%s\"", ops);
    const char *p = strstr(json, key);
    buf[0] = 0;
    if (!p) return buf;
    const char *b = p;
    while (b > json && *b != '{') b--;
    const char *e = strchr(p, '}');
    size_t len = e ? (size_t)(e - b + 1) : strlen(b);
    if (len >= n) len = n - 1;
    memcpy(buf, b, len);
    buf[len] = 0;
    return buf;
}

/* The step of json whose "ops" is ops holds each of the strings in want (NULL-terminated); the missing ones and
 * the whole profile are printed when not. The step is copied to step (n bytes). */
static void check_step(const char *json, const char *ops, const char *const *want, char *step, size_t n) {
    step[0] = 0;
    if (!json) return; /* profile_on counted it */
    step_with(json, ops, step, n);
    int before = n_failed;
    for (int i = 0; want[i]; i++) {
        CHECK(strstr(step, want[i]));
        if (!strstr(step, want[i])) fprintf(stderr, "  the step of %s lacks %s\n", ops, want[i]);
    }
    if (n_failed != before) fprintf(stderr, "profile: %s\n", json);
}

/* profile_of with profile=on: the profile, its status checked. */
static char *profile_on(const char *path, const char *devices, int runs) {
    si_result st;
    char *j = profile_of(path, devices, "on", runs, &st);
    CHECK(st == SI_OK && j);
    return j;
}

/* Whether the example model compiles on OCL here (built in, a device present). */
static bool ocl_available(void) {
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    bool ok = !si_model_load(SI_EXAMPLE_MODEL, &m) && !si_config_create(&cfg) && !si_config_set(cfg, "devices", "OCL") &&
              !si_compile(m, cfg, &cm);
    si_compiled_free(cm);
    si_config_free(cfg);
    si_model_free(m);
    return ok;
}

int main(void) {
    si_result st;
    char step[1024];
#ifdef SI_HAVE_CPU
    /* a small CNN on CPU: fused steps on oneDNN kernels, named by their nodes, three calls each */
    char *j = profile_on(SI_EXAMPLE_MODEL, "CPU", 3);
    /* tiny_cnn's nodes have no names: their indices */
    check_step(j, "Conv+BatchNormalization+Relu",
               (const char *const[]){"\"device\":\"CPU\"", "\"calls\":3,", "\"reference\":false", "\"nodes\":\"#0,#1,#2\"",
                                     "\"kernel\":\"", NULL},
               step, sizeof step);
    CHECK(!strstr(step, "\"kernel\":\"\"") && !strstr(step, "\"kernel\":\"reference\""));
    CHECK(j && strstr(j, "\"reference_ms\":0,"));
    si_free_string(j);

    /* CumSum has no fast kernel: its step is a reference one, flagged, named by its node */
    j = profile_on(SI_TEST_DATA "/mixed_cumsum.onnx", "CPU", 2);
    check_step(j, "ref:CumSum",
               (const char *const[]){"\"nodes\":\"cumsum\"", "\"kernel\":\"reference\"", "\"reference\":true",
                                     "\"calls\":2,", NULL},
               step, sizeof step);
    check_step(j, "Mul+Relu", (const char *const[]){"\"nodes\":\"mul,relu_out\"", "\"reference\":false", NULL}, step,
               sizeof step);
    CHECK(j && !strstr(j, "\"reference_ms\":0,"));
    si_free_string(j);

    /* a shape given as a run-time value (an int64 input feeding a Reshape, as a folded layer's batch size): the CPU
     * device plans by its value, so what follows the Reshape has known shapes and runs on fast kernels */
    j = profile_on(SI_TEST_DATA "/shape_input.onnx", "CPU", 2);
    check_step(j, "Softmax", (const char *const[]){"\"nodes\":\"softmax\"", "\"reference\":false", "\"calls\":2,", NULL}, step,
               sizeof step);
    CHECK(j && strstr(j, "\"reference_ms\":0,"));
    if (j && !strstr(j, "\"reference_ms\":0,")) fprintf(stderr, "profile: %s\n", j);
    si_free_string(j);
#endif
    /* OCL: a row per kernel launch, timed by the device (event timestamps), named ocl:KERNEL, three calls each */
    if (ocl_available()) {
        j = profile_on(SI_EXAMPLE_MODEL, "OCL", 3);
        check_step(j, "Conv",
                   (const char *const[]){"\"device\":\"OCL\"", "\"calls\":3,", "\"kernel\":\"ocl:", "\"reference\":false",
                                         NULL},
                   step, sizeof step);
        CHECK(j && !strstr(j, "\"total_ms\":0,"));
        si_free_string(j);
    } else {
        fprintf(stderr, "test_profile: no OCL device: the OCL part is not run\n");
    }
    /* profile off (the default, or off): no profile, a named error */
    j = profile_of(SI_EXAMPLE_MODEL, "REF", NULL, 1, &st);
    CHECK(st == SI_ERR_INVALID_ARG && !j && strstr(si_last_error(), "profile=on"));
    j = profile_of(SI_EXAMPLE_MODEL, "REF", "off", 1, &st);
    CHECK(st == SI_ERR_INVALID_ARG && !j);
    /* REF reports no steps: an empty profile, not an error */
    j = profile_of(SI_EXAMPLE_MODEL, "REF", "on", 1, &st);
    CHECK(st == SI_OK && j && strstr(j, "\"steps\":[]"));
    si_free_string(j);
    CHECK_ERR(si_compiled_profile_json(NULL, &j), SI_ERR_INVALID_ARG, "NULL");
    si_config *cfg;
    CHECK_OK(si_config_create(&cfg));
    CHECK_ERR(si_config_set(cfg, "profile", "sometimes"), SI_ERR_INVALID_ARG, "profile");
    si_config_free(cfg);
    return test_summary("test_profile");
}
