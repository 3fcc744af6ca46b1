/*
 * quickstart.c — the C quick start of the README: load a model, compile it for a device list with a fault
 * injected, run it, read the outputs, the counters and the report.
 *
 *   cc examples/quickstart.c $(pkg-config --cflags --libs safeinfer) -o quickstart
 *   ./quickstart examples/tiny_cnn.onnx
 *
 * Every call returns an si_result; si_last_error() says what went wrong on this thread.
 */
#include <safeinfer.h>

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                                        \
    do {                                                                                                   \
        si_result rc_ = (call);                                                                            \
        if (rc_ != SI_OK) {                                                                                \
            fprintf(stderr, "%s: %s: %s\n", #call, si_result_str(rc_), si_last_error());                 \
            goto done;                                                                                     \
        }                                                                                                  \
    } while (0)

static void on_event(const si_event *e, void *user) {
    (void)user;
    if (e->type == SI_EVENT_FAILOVER)
        printf("event: submodel %d failed over from %s to %s at %s\n", e->submodel, e->from, e->to, e->stage);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "examples/tiny_cnn.onnx";
    int status = 1;
    si_model *model = NULL;
    si_config *cfg = NULL;
    si_compiled *compiled = NULL;
    si_request *req = NULL;
    si_tensor *image = NULL;
    char *report = NULL;

    CHECK(si_model_load(path, &model));
    CHECK(si_model_set_dim(model, "batch", 1)); /* the example's open batch dimension */

    CHECK(si_config_create(&cfg));
    CHECK(si_config_set(cfg, "devices", "CPU,REF"));    /* a priority list; "AUTO" (the default) picks GPUs, then CPU */
    CHECK(si_config_set(cfg, "faults", "CPU.infer=2")); /* the 2nd CPU inference fails: watch the failover */
    CHECK(si_config_set_callback(cfg, on_event, NULL));
    CHECK(si_compile(model, cfg, &compiled));
    printf("compiled: %s (a submodel's device, then its fallbacks)\n", si_compiled_devices(compiled));

    int64_t dims[4] = {1, 3, 32, 32};
    CHECK(si_tensor_create(SI_F32, 4, dims, &image));
    float *px = si_tensor_data(image);
    for (int64_t i = 0; i < si_tensor_count(image); i++) px[i] = (float)(i % 17) / 17.0f;

    CHECK(si_request_create(compiled, &req));
    CHECK(si_request_set_input(req, si_model_input_index(model, "image"), image));
    for (int run = 1; run <= 3; run++) {
        CHECK(si_request_infer(req));
        si_tensor *probs = NULL;
        CHECK(si_request_get_output(req, si_model_output_index(model, "probs"), &probs));
        const float *p = si_tensor_data(probs);
        int best = 0;
        for (int k = 1; k < si_tensor_count(probs); k++)
            if (p[k] > p[best]) best = k;
        printf("run %d: class %d, p=%.4f\n", run, best, p[best]);
    }

    si_counters n;
    si_compiled_counters(compiled, &n);
    printf("inferences %lld, failovers %lld\n", (long long)n.inferences, (long long)n.failovers);
    CHECK(si_compiled_report_json(compiled, &report));
    printf("report: %.80s...\n", report);
    status = n.failovers == 1 ? 0 : 1;

done:
    si_free_string(report);
    si_request_free(req);
    si_tensor_free(image);
    si_compiled_free(compiled);
    si_config_free(cfg);
    si_model_free(model);
    return status;
}
