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

// --- run ----------------------------------------------------------------------------------------------------

/* Is `a` the flag of a configuration key ("--infer-timeout-ms" for infer_timeout_ms)? *key gets the key. */
static bool config_flag(const char *a, const char **key) {
    for (int i = 0; i < si_config_num_keys(); i++) {
        si_config_key_info k;
        char flag[64];
        if (si_config_key(i, &k)) continue;
        config_flag_name(k.name, flag, sizeof flag);
        if (!strcmp(a, flag)) { *key = k.name; return true; }
    }
    return false;
}

/* Event counts for the one-line summary; important events are also printed as they happen. */
static atomic_long event_counts[8], event_failed_compiles;

static void on_event(const si_event *e, void *user) {
    (void)user;
    if ((unsigned)e->type < 8) atomic_fetch_add(&event_counts[e->type], 1);
    if (e->type == SI_EVENT_COMPILE) {
        if (e->status) atomic_fetch_add(&event_failed_compiles, 1);
        return;
    }
    fprintf(stderr, "event %8.1f ms: %-13s submodel %d%s%s%s%s [%s] %s\n", e->t_ms, si_event_type_str(e->type), e->submodel,
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

/* The outputs of two requests that ran the same inputs: the same type and shape, integers equal, floats
 * within rtol times the reference's scale (its largest finite magnitude) plus atol, NaN where the reference
 * has NaN. *diff receives the largest difference (INFINITY for a type, shape, NaN or integer mismatch) and
 * *scale the reference's scale. */
static bool outputs_agree(const si_tensor *ref, const si_tensor *t, double rtol, double atol, double *diff, double *scale) {
    *diff = INFINITY;
    *scale = 0;
    if (si_tensor_dtype(ref) != si_tensor_dtype(t) || si_tensor_ndim(ref) != si_tensor_ndim(t) ||
        memcmp(si_tensor_dims(ref), si_tensor_dims(t), sizeof(int64_t) * (size_t)si_tensor_ndim(ref)))
        return false;
    int64_t n = si_tensor_count(ref);
    bool flt = is_float(si_tensor_dtype(ref));
    for (int64_t i = 0; i < n && flt; i++) {
        double v = fabs(elem(ref, i));
        if (isfinite(v)) *scale = fmax(*scale, v);
    }
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!flt) {
            if (elem_i64(ref, i) != elem_i64(t, i)) return false;
            continue;
        }
        double a = elem(ref, i), b = elem(t, i);
        if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) {
            if (!(isnan(a) && isnan(b)) && a != b) return false;
            continue;
        }
        worst = fmax(worst, fabs(a - b));
    }
    *diff = worst;
    return worst <= rtol * *scale + atol;
}

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *outdir = NULL, *report = NULL;
    const char *shapes[64], *inputs[64], *cfg_keys[32], *cfg_vals[32];
    int n_shapes = 0, n_inputs = 0, n_cfg = 0;
    long repeat = 1, nreq = 1;
    double rtol = 1e-4, atol = 1e-7;
    bool profile = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        const char *key;
        int pf = profile_flag(argc, argv, &i);
        if (pf >= 0) {
            profile = pf;
            continue;
        }
        if (has_val && config_flag(a, &key)) {
            if (n_cfg == 32) { fprintf(stderr, "safeinfer run: too many configuration flags\n"); return EXIT_USAGE; }
            cfg_keys[n_cfg] = key;
            cfg_vals[n_cfg++] = argv[++i];
            continue;
        }
        if ((!strcmp(a, "--rtol") || !strcmp(a, "--atol")) && has_val) {
            if (!parse_tol(a, argv[++i], !strcmp(a, "--rtol") ? &rtol : &atol)) return EXIT_USAGE;
        } else if (!strcmp(a, "--shape") && has_val && n_shapes < 64) shapes[n_shapes++] = argv[++i];
        else if (!strcmp(a, "--input") && has_val && n_inputs < 64) inputs[n_inputs++] = argv[++i];
        else if (!strcmp(a, "--output-dir") && has_val) outdir = argv[++i];
        else if (!strcmp(a, "--report") && has_val) report = argv[++i];
        else if ((!strcmp(a, "--repeat") || !strcmp(a, "--requests")) && has_val) {
            int64_t v;
            if (!parse_i64(argv[++i], &v) || v < 1 || v > 100000000) { fprintf(stderr, "safeinfer: %s needs a positive number\n", a); return EXIT_USAGE; }
            if (!strcmp(a, "--repeat")) repeat = (long)v;
            else nreq = (long)v;
        } else if (a[0] == '-') { fprintf(stderr, "safeinfer run: unknown option '%s' (or missing value)\n", a); usage_cmd(stderr, "run"); return EXIT_USAGE; }
        else if (!model_path) model_path = a;
        else { fprintf(stderr, "safeinfer run: unexpected argument '%s'\n", a); return EXIT_USAGE; }
    }
    if (!model_path) { usage_cmd(stderr, "run"); return EXIT_USAGE; }
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
    if (profile && (s = si_config_set(cfg, "profile", "on"))) { rc = fail_status(s, "config"); goto out; }
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
    if (profile) {
        int prc = print_profile(stdout, cm, total);
        if (prc && !rc) rc = prc;
    }
    for (int o = 0; o < si_compiled_num_outputs(cm) && !failures; o++) {
        si_tensor *t;
        if ((s = si_request_get_output(th[0].rq, o, &t))) { rc = fail_status(s, "output"); goto out; }
        const char *name = si_compiled_output_name(cm, o);
        print_summary(name, t);
        /* every request ran the same inputs: the outputs must agree, to a tolerance, since requests may have
         * ended on different devices after a failover */
        double worst = 0, worst_scale = 0;
        long worst_q = 0, differ = 0;
        for (long q = 1; q < nreq; q++) {
            si_tensor *u;
            double d, sc;
            if ((s = si_request_get_output(th[q].rq, o, &u))) { rc = fail_status(s, "output"); goto out; }
            bool ok = outputs_agree(t, u, rtol, atol, &d, &sc);
            if (!ok && !differ++) fprintf(stderr, "safeinfer: output '%s' of request %ld differs from request 0's "
                                                  "(largest difference %.3g, the output's scale %.3g)\n", name, q, d, sc);
            if (d > worst || q == 1) { worst = d; worst_q = q; worst_scale = sc; }
        }
        if (differ) rc = 1;
        if (nreq > 1)
            printf("  %s: %ld requests %s: largest difference %.3g (request %ld; %.3g of the output's scale %.3g; "
                   "rtol %g, atol %g)\n", name, nreq, differ ? "DIFFER" : "agree", worst, worst_q,
                   worst_scale > 0 ? worst / worst_scale : 0.0, worst_scale, rtol, atol);
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
    free_inputs(tensors, nin);
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
    const char *path = NULL, *devices = NULL, *shapes[64], *dot = NULL, *report = NULL, *avoid = NULL, *sets[64];
    int n_shapes = 0, n_sets = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--devices") && i + 1 < argc) devices = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < 64 && strchr(argv[i + 1], '=')) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--avoid") && i + 1 < argc) avoid = argv[++i];
        else if (!strcmp(argv[i], "--dot") && i + 1 < argc) dot = argv[++i];
        else if (!strcmp(argv[i], "--report") && i + 1 < argc) report = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && n_shapes < 64) shapes[n_shapes++] = argv[++i];
        else if (argv[i][0] == '-' || path) { fprintf(stderr, "safeinfer inspect: unexpected argument '%s'\n", argv[i]); usage_cmd(stderr, "inspect"); return EXIT_USAGE; }
        else path = argv[i];
    }
    if (!path) { usage_cmd(stderr, "inspect"); return EXIT_USAGE; }
    if (report && !dot) { fprintf(stderr, "safeinfer inspect: --report is drawn on the --dot graph; give --dot FILE.dot\n"); return EXIT_USAGE; }
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
        if (!(s = si_config_create(&cfg)) && !(s = si_config_set(cfg, "devices", devices)))
            for (int i = 0; i < n_sets && !s; i++) { /* --set KEY=VALUE: fold, hfa_tile, moe_experts, ... */
                char kv[512];
                snprintf(kv, sizeof kv, "%s", sets[i]);
                char *eq = strchr(kv, '=');
                *eq = 0;
                s = si_config_set(cfg, kv, eq + 1);
            }
        if (s || (avoid && (s = si_config_set(cfg, "avoid", avoid))) || (s = si_model_partition_text(m, cfg, &text))) {
            si_config_free(cfg);
            si_model_free(m);
            return fail_status(s, "partition");
        }
        fputs(text, stdout);
        si_free_string(text);
        si_config_free(cfg);
    }
    int rc = dot ? write_partition_dot(m, path, devices, avoid, dot, report) : 0;
    si_model_free(m);
    return rc;
}

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} command;

static const command commands[] = {
    {"run", cmd_run}, {"inspect", cmd_inspect}, {"check-onnx", cmd_check}, {"compare", cmd_compare},
    {"bench", cmd_bench}, {"config", cmd_config},
};

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("safeinfer %s (library %s)\n", SI_VERSION_STRING, si_version(NULL, NULL, NULL));
        return 0;
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) { usage(stdout); return 0; }
    if (!strcmp(cmd, "help")) {
        if (argc > 2) usage_cmd(stdout, argv[2]);
        else usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name)) continue;
        for (int k = 2; k < argc; k++)
            if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) { usage_cmd(stdout, cmd); return 0; }
        return commands[i].fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "safeinfer: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
