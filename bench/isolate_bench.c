/*
 * isolate_bench.c — what running a device out of process (isolate=DEVICE) costs per inference: the same model
 * on the same device in this process and in a helper process, timed in alternating blocks (so that a machine
 * whose load drifts affects both alike), median and 90th percentile of each, and their difference.
 *
 *   isolate_bench MODEL [--device D] [--iterations N] [--blocks B] [--dim NAME=VALUE]... [--threads T]
 *
 * D defaults to OCL (CPU when there is no OpenCL device); N inferences per block (default 200), B blocks of
 * each (default 5), after 20 untimed warm-up inferences of each. Inputs are zeros of the model's shapes
 * (unknown dimensions 1). Prints the numbers; asserts nothing.
 */
#include "bench.h"
#include "safeinfer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct run {
    const char *label;
    si_compiled *cm;
    si_request *rq;
    double compile_ms;
    double *t;
    int n;
} run;

static int setup(run *r, si_model *m, const char *device, bool isolated, const char *threads) {
    si_config *cfg = NULL;
    double t0 = now_ms();
    si_result s = si_config_create(&cfg);
    if (!s) s = si_config_set(cfg, "devices", device);
    if (!s) s = si_config_set(cfg, "threads", threads);
    if (!s && isolated) s = si_config_set(cfg, "isolate", device);
    if (!s) s = si_compile(m, cfg, &r->cm);
    si_config_free(cfg);
    r->compile_ms = now_ms() - t0;
    if (!s) s = si_request_create(r->cm, &r->rq);
    for (int i = 0; !s && i < si_compiled_num_inputs(r->cm); i++) {
        si_value_info vi;
        si_tensor *t = NULL;
        s = si_model_input_info(m, si_model_input_index(m, si_compiled_input_name(r->cm, i)), &vi);
        int64_t dims[SI_MAX_DIMS];
        for (int d = 0; !s && d < vi.ndim; d++) dims[d] = vi.dims[d] < 0 ? 1 : vi.dims[d];
        if (!s) s = si_tensor_create(vi.dtype, vi.ndim, dims, &t);
        if (!s) s = si_request_set_input(r->rq, i, t); /* kept: freed at the end (leaked in this program) */
    }
    if (s) fprintf(stderr, "isolate_bench: %s: %s\n", r->label, si_last_error());
    return s ? 1 : 0;
}

static int block(run *r, int n) {
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (si_request_infer(r->rq)) {
            fprintf(stderr, "isolate_bench: %s: %s\n", r->label, si_last_error());
            return 1;
        }
        r->t[r->n++] = now_ms() - t0;
    }
    return 0;
}

static double pct(const run *r, double p) { return r->t[(int)((r->n - 1) * p + 0.5)]; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: isolate_bench MODEL [--device D] [--iterations N] [--blocks B] [--dim NAME=VALUE]... [--threads T]\n");
        return 2;
    }
    const char *device = NULL, *threads = "1";
    int iters = 200, blocks = 5;
    si_model *m = NULL;
    if (si_model_load(argv[1], &m)) { fprintf(stderr, "isolate_bench: %s\n", si_last_error()); return 1; }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--iterations")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--blocks")) blocks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = argv[i + 1];
        else if (!strcmp(argv[i], "--dim")) {
            const char *eq = strchr(argv[i + 1], '=');
            char name[64];
            snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - argv[i + 1]) : 0, argv[i + 1]);
            if (!eq || si_model_set_dim(m, name, atoll(eq + 1))) { fprintf(stderr, "isolate_bench: %s\n", si_last_error()); return 2; }
        } else { fprintf(stderr, "isolate_bench: unknown option %s\n", argv[i]); return 2; }
    }
    if (iters < 1 || blocks < 1) return 2;
    run in = {.label = "in-process"}, out = {.label = "isolated"};
    if (!device) { /* OCL where there is one: ask a helper, so that this process does not load the driver first */
        device = "OCL";
        if (setup(&out, m, "OCL", true, threads) || strcmp(si_compiled_devices(out.cm), "OCL")) device = "CPU";
        si_request_free(out.rq);
        si_compiled_free(out.cm);
        out = (run){.label = "isolated"};
    }
    in.t = malloc(sizeof(double) * (size_t)(iters * blocks));
    out.t = malloc(sizeof(double) * (size_t)(iters * blocks));
    if (!in.t || !out.t || setup(&out, m, device, true, threads) || setup(&in, m, device, false, threads)) return 1;
    if (block(&in, 20) || block(&out, 20)) return 1; /* warm-up, not counted */
    in.n = out.n = 0;
    for (int b = 0; b < blocks; b++)
        if (block(&in, iters) || block(&out, iters)) return 1;
    qsort(in.t, (size_t)in.n, sizeof(double), cmp_d);
    qsort(out.t, (size_t)out.n, sizeof(double), cmp_d);
    printf("model %s on %s, %d inferences each (%d blocks of %d, alternating)\n", argv[1], device, in.n, blocks, iters);
    printf("  %-11s compile %8.1f ms   median %8.3f ms   p90 %8.3f ms   min %8.3f ms\n", in.label, in.compile_ms,
           pct(&in, 0.5), pct(&in, 0.9), in.t[0]);
    printf("  %-11s compile %8.1f ms   median %8.3f ms   p90 %8.3f ms   min %8.3f ms\n", out.label, out.compile_ms,
           pct(&out, 0.5), pct(&out, 0.9), out.t[0]);
    printf("  isolation costs %+.3f ms per inference at the median (%+.1f%%), %+.3f ms at the minimum\n",
           pct(&out, 0.5) - pct(&in, 0.5), 100.0 * (pct(&out, 0.5) - pct(&in, 0.5)) / pct(&in, 0.5), out.t[0] - in.t[0]);
    si_request_free(in.rq);
    si_request_free(out.rq);
    si_compiled_free(in.cm);
    si_compiled_free(out.cm);
    si_model_free(m);
    free(in.t);
    free(out.t);
    return 0;
}
