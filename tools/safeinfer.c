/*
 * safeinfer — the command-line tool: run, inspect, check-onnx and bench, written only against include/safeinfer.h.
 */
#include "cli.h"


#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>
#include <stdatomic.h>

void usage(FILE *f) {
    fprintf(f,
            "usage: safeinfer COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run MODEL [--devices LIST] [--shape NAME=DIMS]... [--input NAME=FILE.npy|random[:SEED]]...\n"
            "            [--output-dir DIR] [--repeat N] [--requests M] [--threads N] [--report FILE.json]\n"
            "            [--faults SPEC] [--retries N] [--infer-timeout-ms T] [--compile-timeout-ms T]\n"
            "            [--standby on|off]\n"
            "            [--failback-ms T] [--check-outputs nan|off] [--strict on|off]\n"
            "      run the model and print each output's name, type, shape and a summary.\n"
            "      --devices OCL,CPU: priority list; each part of the model runs on the first device that can take\n"
            "        it and fails over to the next one when a device fails.\n"
            "      --shape NAME=1x3x224x224 fixes an input's shape; --shape batch=1 fixes a symbolic dimension.\n"
            "      Inputs not given are random (seed 0). --output-dir writes DIR/<output>.npy.\n"
            "      --requests M runs M requests on M threads, --repeat N inferences each.\n"
            "      --faults injects device failures: RULE[,RULE...], RULE = DEVICE.STAGE=WHEN[:EFFECT],\n"
            "        STAGE compile|create|infer, WHEN always|N|N+|pX[@SEED], EFFECT error|lost|hang|nan|oom\n"
            "        (also $SAFEINFER_FAULTS). --report writes compile attempts, events and counters as JSON.\n"
            "      Policies: --retries N on the same device before failing over; --infer-timeout-ms T (and\n"
            "        --compile-timeout-ms T) abandon a call that hangs and quarantine its device; --standby on compiles the next device in the background; --failback-ms T\n"
            "        re-probes a failed preferred device every T ms; --check-outputs nan treats NaN/Inf outputs as\n"
            "        a device failure when the next device gives finite ones; --strict on: no fallback at all.\n"
            "  inspect MODEL [--devices LIST]\n"
            "      inputs, outputs, opsets, op histogram, parameters; with --devices, the submodels it is cut into.\n"
            "  check-onnx PATH... [--devices LIST] [--filter REGEX] [--json FILE] [--rtol X] [--atol X]\n"
            "      run ONNX backend test cases (folders with model.onnx and test_data_set_N/, or light_X.onnx\n"
            "      with light_X_output_0.pb) and compare outputs; exit status 1 when any case fails.\n"
            "  compare DIR_A DIR_B [--rtol X] [--atol X]\n"
            "      compare every .npy output in DIR_A with the one of the same name in DIR_B (check-onnx's tolerance).\n"
            "  bench MODEL [--devices LIST] [--threads N] [--iterations N] [--warmup N] [--shape ...]...\n"
            "              [--input NAME=FILE.npy|random[:SEED]]... [--json FILE]\n"
            "      time compile, the first inference, then --warmup (3) untimed and --iterations (20) timed runs;\n"
            "      prints median / p90 / min latency, throughput, peak RSS and the devices used (threads 1).\n");
}

// --- run ----------------------------------------------------------------------------------------------------

/* Flags that map one-to-one onto compile properties. */
static const struct { const char *flag, *key; } config_flags[] = {
    {"--devices", "devices"},         {"--threads", "threads"},         {"--faults", "faults"},
    {"--retries", "retries"},         {"--infer-timeout-ms", "infer_timeout_ms"},
    {"--compile-timeout-ms", "compile_timeout_ms"},
    {"--standby", "standby"},         {"--failback-ms", "failback_ms"}, {"--check-outputs", "check_outputs"},
    {"--strict", "strict"},
};

/* Event counts for the one-line summary; important events are also printed as they happen. */
static atomic_long event_counts[8], event_failed_compiles;

static void on_event(const si_event *e, void *user) {
    (void)user;
    if ((unsigned)e->type < 8) atomic_fetch_add(&event_counts[e->type], 1);
    if (e->type == SI_EVENT_COMPILE) {
        if (e->status) atomic_fetch_add(&event_failed_compiles, 1);
        return;
    }
    static const char *const names[] = {"compile", "failover", "retry", "quarantine", "standby-ready", "failback", "all-failed"};
    fprintf(stderr, "event %8.1f ms: %-13s submodel %d%s%s%s%s [%s] %s\n", e->t_ms, names[e->type], e->submodel,
            e->from[0] ? " from " : "", e->from, e->to[0] ? " to " : "", e->to, si_result_str(e->status), e->message);
}

typedef struct run_thread {
    si_compiled *cm;
    si_tensor **inputs;
    int nin;
    long repeat;
    si_request *rq;
    long failures;
    si_result first_status;
    char first_msg[512];
    double total_ms, best_ms;
} run_thread;

static void *run_worker(void *arg) {
    run_thread *t = arg;
    t->best_ms = INFINITY;
    for (long it = 0; it < t->repeat; it++) {
        double a = now_ms();
        si_result s = si_request_infer(t->rq);
        double d = now_ms() - a;
        t->total_ms += d;
        t->best_ms = fmin(t->best_ms, d);
        if (s) {
            if (!t->failures++) {
                t->first_status = s;
                snprintf(t->first_msg, sizeof t->first_msg, "%s", si_last_error());
            }
        }
    }
    return NULL;
}

static bool same_tensor(const si_tensor *a, const si_tensor *b) {
    return si_tensor_dtype(a) == si_tensor_dtype(b) && si_tensor_nbytes(a) == si_tensor_nbytes(b) &&
           si_tensor_ndim(a) == si_tensor_ndim(b) &&
           !memcmp(si_tensor_dims(a), si_tensor_dims(b), sizeof(int64_t) * (size_t)si_tensor_ndim(a)) &&
           (!si_tensor_nbytes(a) || !memcmp(si_tensor_data(a), si_tensor_data(b), si_tensor_nbytes(a)));
}

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *outdir = NULL, *report = NULL;
    const char *shapes[64], *inputs[64], *cfg_keys[32], *cfg_vals[32];
    int n_shapes = 0, n_inputs = 0, n_cfg = 0;
    long repeat = 1, nreq = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        bool matched = false;
        for (size_t f = 0; f < sizeof config_flags / sizeof config_flags[0] && !matched; f++)
            if (!strcmp(a, config_flags[f].flag) && has_val && n_cfg < 32) {
                cfg_keys[n_cfg] = config_flags[f].key;
                cfg_vals[n_cfg++] = argv[++i];
                matched = true;
            }
        if (matched) continue;
        if (!strcmp(a, "--shape") && has_val && n_shapes < 64) shapes[n_shapes++] = argv[++i];
        else if (!strcmp(a, "--input") && has_val && n_inputs < 64) inputs[n_inputs++] = argv[++i];
        else if (!strcmp(a, "--output-dir") && has_val) outdir = argv[++i];
        else if (!strcmp(a, "--report") && has_val) report = argv[++i];
        else if ((!strcmp(a, "--repeat") || !strcmp(a, "--requests")) && has_val) {
            int64_t v;
            if (!parse_i64(argv[++i], &v) || v < 1 || v > 100000000) { fprintf(stderr, "safeinfer: %s needs a positive number\n", a); return EXIT_USAGE; }
            if (!strcmp(a, "--repeat")) repeat = (long)v;
            else nreq = (long)v;
        } else if (a[0] == '-') { fprintf(stderr, "safeinfer run: unknown option '%s' (or missing value)\n", a); usage(stderr); return EXIT_USAGE; }
        else if (!model_path) model_path = a;
        else { fprintf(stderr, "safeinfer run: unexpected argument '%s'\n", a); return EXIT_USAGE; }
    }
    if (!model_path) { usage(stderr); return EXIT_USAGE; }
    if (nreq > 256) { fprintf(stderr, "safeinfer: --requests is limited to 256\n"); return EXIT_USAGE; }
    si_model *m;
    si_result s = si_model_load(model_path, &m);
    if (s) return fail_status(s, "load");
    for (int i = 0; i < n_shapes; i++)
        if ((s = apply_shape(m, shapes[i]))) { si_model_free(m); return fail_status(s, "--shape"); }
    int nin = si_model_num_inputs(m);
    si_tensor **tensors = calloc((size_t)nin + 1, sizeof *tensors);
    run_thread *th = calloc((size_t)nreq, sizeof *th);
    pthread_t *tids = calloc((size_t)nreq, sizeof *tids);
    int rc = 0;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    if (!tensors || !th || !tids) { fprintf(stderr, "safeinfer: out of memory\n"); rc = 3 + SI_ERR_NO_MEM; goto out; }
    if ((rc = make_inputs(m, inputs, n_inputs, tensors))) goto out;
    if ((s = si_config_create(&cfg))) { rc = fail_status(s, "config"); goto out; }
    for (int i = 0; i < n_cfg; i++)
        if ((s = si_config_set(cfg, cfg_keys[i], cfg_vals[i]))) { rc = fail_status(s, "config"); goto out; }
    if ((s = si_config_set_callback(cfg, on_event, NULL))) { rc = fail_status(s, "config"); goto out; }
    double t0 = now_ms();
    if ((s = si_compile(m, cfg, &cm))) { rc = fail_status(s, "compile"); goto out; }
    double t1 = now_ms();
    for (long q = 0; q < nreq; q++) {
        th[q] = (run_thread){.cm = cm, .inputs = tensors, .nin = nin, .repeat = repeat};
        if ((s = si_request_create(cm, &th[q].rq))) { rc = fail_status(s, "request"); goto out; }
        for (int i = 0; i < nin; i++)
            if ((s = si_request_set_input(th[q].rq, i, tensors[i]))) { rc = fail_status(s, "input"); goto out; }
    }
    if (nreq == 1) {
        run_worker(&th[0]);
    } else {
        for (long q = 0; q < nreq; q++)
            if (pthread_create(&tids[q], NULL, run_worker, &th[q])) { fprintf(stderr, "safeinfer: cannot start thread\n"); rc = 1; nreq = q; break; }
        for (long q = 0; q < nreq; q++) pthread_join(tids[q], NULL);
    }
    double total = 0, best = INFINITY;
    long failures = 0;
    for (long q = 0; q < nreq; q++) {
        total += th[q].total_ms;
        best = fmin(best, th[q].best_ms);
        failures += th[q].failures;
        if (th[q].failures)
            fprintf(stderr, "safeinfer: request %ld: %ld of %ld inferences failed; first: %s (%s)\n", q, th[q].failures,
                    repeat, th[q].first_msg, si_result_str(th[q].first_status));
    }
    printf("model %s on %s: compile %.1f ms, inference %.2f ms (mean of %ld x %ld request%s, best %.2f ms)\n", model_path,
           si_compiled_devices(cm), t1 - t0, total / (double)(repeat * nreq), repeat, nreq, nreq == 1 ? "" : "s", best);
    si_counters k;
    si_compiled_counters(cm, &k);
    printf("events: %ld compile attempts (%ld failed), %ld failovers, %ld retries, %ld quarantined, %ld standby ready, "
           "%ld failbacks; %lld inferences, %ld failed\n",
           atomic_load(&event_counts[SI_EVENT_COMPILE]), atomic_load(&event_failed_compiles),
           atomic_load(&event_counts[SI_EVENT_FAILOVER]), atomic_load(&event_counts[SI_EVENT_RETRY]),
           atomic_load(&event_counts[SI_EVENT_QUARANTINE]), atomic_load(&event_counts[SI_EVENT_STANDBY_READY]),
           atomic_load(&event_counts[SI_EVENT_FAILBACK]), (long long)k.inferences, failures);
    if (failures) rc = 3 + (int)SI_ERR_DEVICE;
    for (int o = 0; o < si_compiled_num_outputs(cm) && !failures; o++) {
        si_tensor *t;
        if ((s = si_request_get_output(th[0].rq, o, &t))) { rc = fail_status(s, "output"); goto out; }
        const char *name = si_compiled_output_name(cm, o);
        print_summary(name, t);
        for (long q = 1; q < nreq; q++) { /* every request ran the same inputs: the outputs must agree */
            si_tensor *u;
            if (!si_request_get_output(th[q].rq, o, &u) && !same_tensor(t, u)) {
                fprintf(stderr, "safeinfer: output '%s' of request %ld differs from request 0's\n", name, q);
                rc = 1;
            }
        }
        if (outdir) {
            char path[4096], safe[256];
            snprintf(safe, sizeof safe, "%s", name);
            for (char *c = safe; *c; c++)
                if (*c == '/' || *c == '\\' || *c == ':') *c = '_';
            mkdir_p(outdir);
            snprintf(path, sizeof path, "%s/%s.npy", outdir, safe);
            if ((s = si_tensor_write_npy(t, path))) { rc = fail_status(s, "write"); goto out; }
        }
    }
    if (report) {
        char *json = NULL;
        FILE *f = NULL;
        if ((s = si_compiled_report_json(cm, &json))) { rc = fail_status(s, "report"); goto out; }
        if (!(f = fopen(report, "w")) || fputs(json, f) < 0) {
            fprintf(stderr, "safeinfer: cannot write %s: %s\n", report, strerror(errno));
            rc = 3 + SI_ERR_IO;
        }
        if (f) fclose(f);
        si_free_string(json);
    }
out:
    for (long q = 0; th && q < nreq; q++) si_request_free(th[q].rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    for (int i = 0; tensors && i < nin; i++) si_tensor_free(tensors[i]);
    free(tensors);
    free(th);
    free(tids);
    si_model_free(m);
    return rc;
}

// --- inspect ---------------------------------------------------------------------------------------------

static void print_info(const char *kind, const si_value_info *v) {
    printf("  %s %s: %s", kind, v->name, si_dtype_name(v->dtype));
    if (v->ndim < 0) { printf(" (rank unknown)\n"); return; }
    printf("[");
    for (int d = 0; d < v->ndim; d++) {
        if (d) printf(",");
        if (v->dims[d] >= 0) printf("%" PRId64, v->dims[d]);
        else printf("%s", v->dim_names[d] ? v->dim_names[d] : "?");
    }
    printf("]\n");
}

static int cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *devices = NULL, *shapes[64];
    int n_shapes = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--devices") && i + 1 < argc) devices = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && n_shapes < 64) shapes[n_shapes++] = argv[++i];
        else if (argv[i][0] == '-' || path) { usage(stderr); return EXIT_USAGE; }
        else path = argv[i];
    }
    if (!path) { usage(stderr); return EXIT_USAGE; }
    argv[0] = (char *)path;
    si_model *m;
    si_result s = si_model_load(path, &m);
    if (s) return fail_status(s, "load");
    for (int i = 0; i < n_shapes; i++)
        if ((s = apply_shape(m, shapes[i]))) { si_model_free(m); return fail_status(s, "--shape"); }
    si_model_summary sum;
    si_model_summary_get(m, &sum);
    printf("model %s\n  ir_version %" PRId64 ", producer '%s'\n  opsets:", argv[0], sum.ir_version, sum.producer);
    for (int i = 0; i < si_model_num_opsets(m); i++) {
        const char *d;
        int64_t v;
        si_model_opset(m, i, &d, &v);
        printf(" %s=%" PRId64, *d ? d : "ai.onnx", v);
    }
    printf("\n");
    for (int i = 0; i < si_model_num_inputs(m); i++) {
        si_value_info v;
        if (!si_model_input_info(m, i, &v)) print_info("input", &v);
    }
    for (int i = 0; i < si_model_num_outputs(m); i++) {
        si_value_info v;
        if (!si_model_output_info(m, i, &v)) print_info("output", &v);
    }
    printf("  parameters: %" PRId64 " in %d initializers, %" PRId64 " bytes (%.2f MiB)\n", sum.n_params,
           sum.n_initializers, sum.param_bytes, (double)sum.param_bytes / 1048576.0);
    printf("  nodes: %d\n", sum.n_nodes);
    /* op histogram, most frequent first */
    int n = si_model_num_nodes(m), nu = 0;
    const char **ops = calloc((size_t)n + 1, sizeof *ops);
    int *cnt = calloc((size_t)n + 1, sizeof *cnt);
    for (int i = 0; ops && cnt && i < n; i++) {
        const char *op = si_model_node_op(m, i);
        int k = 0;
        while (k < nu && strcmp(ops[k], op)) k++;
        if (k == nu) ops[nu++] = op;
        cnt[k]++;
    }
    for (int a = 0; a < nu; a++) {
        int best = a;
        for (int b = a + 1; b < nu; b++)
            if (cnt[b] > cnt[best] || (cnt[b] == cnt[best] && strcmp(ops[b], ops[best]) < 0)) best = b;
        const char *to = ops[a]; ops[a] = ops[best]; ops[best] = to;
        int tc = cnt[a]; cnt[a] = cnt[best]; cnt[best] = tc;
        printf("    %-24s %d\n", ops[a], cnt[a]);
    }
    free(ops);
    free(cnt);
    if (devices) {
        si_config *cfg = NULL;
        char *text = NULL;
        if ((s = si_config_create(&cfg)) || (s = si_config_set(cfg, "devices", devices)) ||
            (s = si_model_partition_text(m, cfg, &text))) {
            si_config_free(cfg);
            si_model_free(m);
            return fail_status(s, "partition");
        }
        fputs(text, stdout);
        si_free_string(text);
        si_config_free(cfg);
    }
    si_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "check-onnx")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    fprintf(stderr, "safeinfer: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}

