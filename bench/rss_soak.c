/*
 * rss_soak.c — memory over many inferences: compile a model, run inferences on a few requests, free
 * everything, and do it again; print the process's resident set size (RSS, /proc/self/statm) as it goes.
 * A leak per inference, per request or per compile shows as RSS that keeps growing after the first cycles.
 *
 *   rss_soak MODEL [--devices LIST] [--faults SPEC] [--set KEY=VALUE]... [--shape NAME=DxDx..]... [--cycles C]
 *            [--infers N] [--requests R] [--report K] [--sample S]
 *
 * --set sets any compile property (retries=1, failback_ms=5, standby=on, ...); --shape fixes an input's shape
 * (x=1x3x48x320) or a symbolic dimension (batch=2); --sample S also prints RSS every S inferences (and measures
 * growth from the first sample instead of from the end of cycle 1).
 *
 * Each cycle: si_compile, R requests, N inferences spread over them (random inputs, fixed seed), the
 * requests and the compiled model freed. A failed inference (every device failed) is counted, not fatal.
 * Prints "cycle K: inferences I, RSS X MiB" every K cycles, then the RSS after the first cycle and at the
 * end and their difference. No pass/fail: the numbers are for a person to read.
 */
#include <safeinfer.h>
#include "rss.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fill(si_tensor *t, unsigned *seed) {
    if (si_tensor_dtype(t) != SI_F32) return;
    float *p = si_tensor_data(t);
    for (int64_t i = 0; i < si_tensor_count(t); i++) p[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--devices LIST] [--faults SPEC] [--set KEY=VALUE]... [--shape NAME=DxD..]... [--cycles C] [--infers N] [--requests R] [--report K] [--sample S]\n", argv[0]);
        return 2;
    }
    const char *devices = "REF", *faults = NULL;
    int cycles = 20, infers = 100, nreq = 2, report = 5, sample = 0;
    const char *shapes[16], *sets[16];
    int n_shapes = 0, n_sets = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--devices")) devices = argv[i + 1];
        else if (!strcmp(argv[i], "--faults")) faults = argv[i + 1];
        else if (!strcmp(argv[i], "--shape") && n_shapes < 16) shapes[n_shapes++] = argv[i + 1];
        else if (!strcmp(argv[i], "--set") && n_sets < 16) sets[n_sets++] = argv[i + 1];
        else if (!strcmp(argv[i], "--cycles")) cycles = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--infers")) infers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--requests")) nreq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--report")) report = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sample")) sample = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (nreq < 1 || nreq > 64 || cycles < 1 || infers < 0 || report < 1) {
        fprintf(stderr, "bad numbers\n");
        return 2;
    }
    si_model *model = NULL;
    si_config *cfg = NULL;
    if (si_model_load(argv[1], &model) || si_config_create(&cfg) || si_config_set(cfg, "devices", devices) ||
        (faults && si_config_set(cfg, "faults", faults))) {
        fprintf(stderr, "%s\n", si_last_error());
        return 1;
    }
    for (int s = 0; s < n_sets; s++) {
        char key[128];
        const char *eq = strchr(sets[s], '=');
        if (!eq || (size_t)(eq - sets[s]) >= sizeof key) { fprintf(stderr, "bad --set %s\n", sets[s]); return 2; }
        memcpy(key, sets[s], (size_t)(eq - sets[s]));
        key[eq - sets[s]] = 0;
        if (si_config_set(cfg, key, eq + 1)) { fprintf(stderr, "%s\n", si_last_error()); return 1; }
    }
    for (int s = 0; s < n_shapes; s++) { /* NAME=1x3x48x320: an input's shape; NAME=N: a symbolic dimension */
        char name[128];
        const char *eq = strchr(shapes[s], '=');
        if (!eq || (size_t)(eq - shapes[s]) >= sizeof name) { fprintf(stderr, "bad --shape %s\n", shapes[s]); return 2; }
        memcpy(name, shapes[s], (size_t)(eq - shapes[s]));
        name[eq - shapes[s]] = 0;
        int64_t dims[8];
        int nd = 0;
        for (const char *p = eq + 1; *p && nd < 8;) {
            dims[nd++] = strtoll(p, (char **)&p, 10);
            if (*p == 'x') p++;
            else if (*p) { fprintf(stderr, "bad --shape %s\n", shapes[s]); return 2; }
        }
        si_result st = si_model_input_index(model, name) >= 0 ? si_model_set_input_shape(model, name, nd, dims)
                                                              : si_model_set_dim(model, name, dims[0]);
        if (st) { fprintf(stderr, "%s\n", si_last_error()); return 1; }
    }
    double first = 0;
    long total = 0, failed = 0;
    si_counters sum = {0};
    unsigned seed = 1;
    for (int c = 0; c < cycles; c++) {
        si_compiled *cm = NULL;
        if (si_compile(model, cfg, &cm)) { fprintf(stderr, "compile: %s\n", si_last_error()); return 1; }
        int nin = si_compiled_num_inputs(cm);
        si_request *req[64] = {0};
        si_tensor *in[64][8] = {{0}};
        for (int r = 0; r < nreq; r++) {
            if (si_request_create(cm, &req[r])) { fprintf(stderr, "request: %s\n", si_last_error()); return 1; }
            for (int i = 0; i < nin && i < 8; i++) {
                si_value_info vi;
                if (si_model_input_info(model, si_model_input_index(model, si_compiled_input_name(cm, i)), &vi) ||
                    si_tensor_create(vi.dtype, vi.ndim, vi.dims, &in[r][i]) || si_request_set_input(req[r], i, in[r][i])) {
                    fprintf(stderr, "input: %s\n", si_last_error());
                    return 1;
                }
                fill(in[r][i], &seed);
            }
        }
        for (int k = 0; k < infers; k++) {
            total++;
            if (si_request_infer(req[k % nreq])) failed++;
            if (sample > 0 && total % sample == 0) {
                if (total == sample) first = rss_mib();
                printf("  inferences %ld: RSS %.1f MiB\n", total, rss_mib());
            }
        }
        si_counters cn;
        si_compiled_counters(cm, &cn);
        sum.failovers += cn.failovers;
        sum.failbacks += cn.failbacks;
        sum.retries += cn.retries;
        for (int r = 0; r < nreq; r++) {
            si_request_free(req[r]);
            for (int i = 0; i < nin && i < 8; i++) si_tensor_free(in[r][i]);
        }
        si_compiled_free(cm);
        if (c == 0 && sample <= 0) first = rss_mib();
        if ((c + 1) % report == 0) printf("cycle %d: inferences %ld (%ld failed), failovers %lld, failbacks %lld, retries %lld, RSS %.1f MiB\n", c + 1, total,
                                           failed, (long long)sum.failovers, (long long)sum.failbacks, (long long)sum.retries, rss_mib());
        fflush(stdout);
    }
    double last = rss_mib();
    for (int s = 0; s < n_sets; s++) printf("%s%s", s ? ", " : "set ", sets[s]);
    printf("%sdevices %s, faults %s: %d cycles x %d inferences on %d requests; RSS %s %.1f MiB, at the end %.1f MiB, growth %.1f MiB\n",
           n_sets ? "; " : "", devices, faults ? faults : "none", cycles, infers, nreq, sample > 0 ? "at the first sample" : "after cycle 1", first, last, last - first);
    si_config_free(cfg);
    si_model_free(model);
    return 0;
}
