/*
 * bench.c — `safeinfer bench`: compile a model once, time the first inference, a few warm-up runs and then N
 * timed runs of one request, and report latency statistics, throughput, peak memory and the devices used.
 *
 * What is timed: si_compile (compile), the first si_request_infer after it (first inference: includes any
 * lazy work a device does on its first run), then --warmup untimed runs, then --iterations runs, each timed
 * alone with a monotonic clock. Inputs are made once and bound before the first run, so the loop measures
 * si_request_infer only. Peak RSS is the process's high-water mark (getrusage ru_maxrss) at the end: it
 * includes loading the model and the inputs, not just inference.
 */
#include "cli.h"
#include "generate.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BENCH_MAX_SPECS 64

typedef struct bench_opts {
    const char *model, *devices, *json;
    const char *shapes[BENCH_MAX_SPECS], *inputs[BENCH_MAX_SPECS], *sets[BENCH_MAX_SPECS];
    int n_shapes, n_inputs, n_sets;
    int64_t threads, iterations, warmup;
    int64_t gen_prompt, gen_steps; /* --generate P,N (0: not asked) */
    bool profile;
} bench_opts;

typedef struct bench_result {
    double compile_ms, first_ms;
    double median_ms, p90_ms, min_ms, max_ms, mean_ms;
    double throughput;   /* timed iterations per second of wall time spent in them */
    double peak_rss_mib;
    const char *devices_used; /* borrowed from the compiled model */
} bench_result;

// --- progress line (stderr, only on a terminal) ------------------------------------------------------------

typedef struct progress {
    bool on;       /* stderr is a TTY */
    bool dirty;    /* a line without its newline is on screen */
    double last;   /* now_ms() of the last update */
} progress;

static void progress_show(progress *p, bool force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void progress_show(progress *p, bool force, const char *fmt, ...) {
    if (!p->on) return;
    double t = now_ms();
    if (!force && t - p->last < 100.0) return; /* at most ~10 updates a second: fast models run thousands */
    p->last = t;
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r%-72s", line);
    fflush(stderr);
    p->dirty = true;
}

static void progress_end(progress *p) {
    if (p->on && p->dirty) fputc('\n', stderr);
    p->dirty = false;
}

// --- statistics ---------------------------------------------------------------------------------------------

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t (n >= 1) and fills the latency fields of r. p90 is the nearest-rank percentile: the smallest
 * sample with at least 90% of the samples at or below it. */
static void latency_stats(double *t, int64_t n, double total_ms, bench_result *r) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    r->min_ms = t[0];
    r->max_ms = t[n - 1];
    r->median_ms = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2.0;
    int64_t k = (int64_t)ceil(0.9 * (double)n) - 1;
    r->p90_ms = t[k < 0 ? 0 : k];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += t[i];
    r->mean_ms = sum / (double)n;
    r->throughput = total_ms > 0 ? (double)n * 1000.0 / total_ms : INFINITY;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return NAN;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

// --- output -------------------------------------------------------------------------------------------------

static void input_desc(const si_compiled *cm, si_tensor *const *in, int nin, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < nin && o < n; i++) {
        char sh[128];
        shape_str(in[i], sh, sizeof sh);
        o += (size_t)snprintf(buf + o, n - o, "%s%s %s%s", i ? ", " : "", si_compiled_input_name(cm, i),
                              si_dtype_name(si_tensor_dtype(in[i])), sh);
    }
}

static void print_table(const bench_opts *o, const bench_result *r, const char *inputs) {
    printf("safeinfer bench: %s\n", o->model);
    printf("  %-22s %s\n", "devices requested", o->devices ? o->devices : "(default)");
    printf("  %-22s %s\n", "devices used", r->devices_used);
    printf("  %-22s %" PRId64 "\n", "threads", o->threads);
    printf("  %-22s %s\n", "inputs", inputs);
    printf("  %-22s %" PRId64 " / %" PRId64 "\n", "warmup / iterations", o->warmup, o->iterations);
    printf("  %-22s %12.3f ms\n", "compile", r->compile_ms);
    printf("  %-22s %12.3f ms\n", "first inference", r->first_ms);
    printf("  %-22s %12.3f ms\n", "median latency", r->median_ms);
    printf("  %-22s %12.3f ms\n", "p90 latency", r->p90_ms);
    printf("  %-22s %12.3f ms\n", "min latency", r->min_ms);
    printf("  %-22s %12.3f ms\n", "mean latency", r->mean_ms);
    printf("  %-22s %12.3f ms\n", "max latency", r->max_ms);
    printf("  %-22s %12.2f inferences/s\n", "throughput", r->throughput);
    printf("  %-22s %12.1f MiB\n", "peak RSS", r->peak_rss_mib);
    fflush(stdout);
}

static void json_num(FILE *f, const char *key, double v, bool last) {
    fprintf(f, "  \"%s\": ", key);
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fprintf(f, "null");
    fprintf(f, last ? "\n" : ",\n");
}

/* The opening of a result object: the model, the devices asked for (null: the default) and those used. */
static void json_head(FILE *f, const bench_opts *o, const char *devices_used) {
    fprintf(f, "{\n  \"model\": ");
    json_str(f, o->model);
    fprintf(f, ",\n  \"devices_requested\": ");
    if (o->devices) json_str(f, o->devices);
    else fprintf(f, "null");
    fprintf(f, ",\n  \"devices\": ");
    json_str(f, devices_used);
}

/* Writes the result to f (opened before the run, so that a bad path fails at once) and closes it. */
static int write_json(FILE *f, const bench_opts *o, const bench_result *r, const si_compiled *cm, si_tensor *const *in, int nin) {
    json_head(f, o, r->devices_used);
    fprintf(f, ",\n  \"threads\": %" PRId64 ",\n  \"warmup\": %" PRId64 ",\n  \"iterations\": %" PRId64 ",\n  \"inputs\": [",
            o->threads, o->warmup, o->iterations);
    for (int i = 0; i < nin; i++) {
        fprintf(f, "%s{\"name\": ", i ? ", " : "");
        json_str(f, si_compiled_input_name(cm, i));
        fprintf(f, ", \"dtype\": \"%s\", \"shape\": [", si_dtype_name(si_tensor_dtype(in[i])));
        for (int d = 0; d < si_tensor_ndim(in[i]); d++) fprintf(f, d ? ", %" PRId64 : "%" PRId64, si_tensor_dims(in[i])[d]);
        fprintf(f, "]}");
    }
    fprintf(f, "],\n");
    json_num(f, "compile_ms", r->compile_ms, false);
    json_num(f, "first_inference_ms", r->first_ms, false);
    json_num(f, "median_ms", r->median_ms, false);
    json_num(f, "p90_ms", r->p90_ms, false);
    json_num(f, "min_ms", r->min_ms, false);
    json_num(f, "mean_ms", r->mean_ms, false);
    json_num(f, "max_ms", r->max_ms, false);
    json_num(f, "throughput_per_s", r->throughput, false);
    json_num(f, "peak_rss_mib", r->peak_rss_mib, !o->profile);
    if (o->profile) {
        char *pj = NULL;
        if (!si_compiled_profile_json(cm, &pj)) {
            size_t n = strlen(pj);
            while (n && pj[n - 1] == '\n') pj[--n] = 0;
            fprintf(f, "  \"profile\": %s\n", pj);
        } else {
            fprintf(f, "  \"profile\": null\n");
        }
        si_free_string(pj);
    }
    fprintf(f, "}\n");
    if (fclose(f)) { fprintf(stderr, "safeinfer bench: error writing %s\n", o->json); return 3 + SI_ERR_IO; }
    return 0;
}

// --- command ------------------------------------------------------------------------------------------------

static int parse_count(const char *opt, const char *s, int64_t lo, int64_t *v) {
    if (!parse_i64(s, v) || *v < lo || *v > 100000000) {
        fprintf(stderr, "safeinfer bench: %s needs a number >= %" PRId64 " (got '%s')\n", opt, lo, s);
        return EXIT_USAGE;
    }
    return 0;
}

/* The compile properties of the options: devices, threads, profile, then every --set KEY=VALUE. */
static si_result bench_config(const bench_opts *o, si_config **out) {
    char threads[32], kv[512];
    snprintf(threads, sizeof threads, "%lld", (long long)o->threads);
    si_config *cfg = NULL;
    si_result s;
    if ((s = si_config_create(&cfg)) || (o->devices && (s = si_config_set(cfg, "devices", o->devices))) ||
        (s = si_config_set(cfg, "threads", threads)) || (o->profile && (s = si_config_set(cfg, "profile", "on")))) {
        si_config_free(cfg);
        return s;
    }
    for (int i = 0; i < o->n_sets; i++) {
        snprintf(kv, sizeof kv, "%s", o->sets[i]);
        char *eq = strchr(kv, '=');
        *eq = 0;
        if ((s = si_config_set(cfg, kv, eq + 1))) {
            si_config_free(cfg);
            return s;
        }
    }
    *out = cfg;
    return SI_OK;
}

static int parse_opts(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->iterations = 20;
    o->warmup = 3;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        int rc = 0, pf = profile_flag(argc, argv, &i);
        if (pf >= 0) o->profile = pf;
        else if (!strcmp(a, "--devices") && has_val) o->devices = argv[++i];
        else if (!strcmp(a, "--json") && has_val) o->json = argv[++i];
        else if (!strcmp(a, "--threads") && has_val) rc = parse_count(a, argv[++i], 1, &o->threads);
        else if (!strcmp(a, "--iterations") && has_val) rc = parse_count(a, argv[++i], 1, &o->iterations);
        else if (!strcmp(a, "--warmup") && has_val) rc = parse_count(a, argv[++i], 0, &o->warmup);
        else if (!strcmp(a, "--generate") && has_val) {
            const char *v = argv[++i], *comma = strchr(v, ',');
            char pbuf[32];
            if (!comma || (size_t)(comma - v) >= sizeof pbuf) {
                fprintf(stderr, "safeinfer bench: --generate needs PROMPT,STEPS (e.g. 128,32; got '%s')\n", v);
                return EXIT_USAGE;
            }
            memcpy(pbuf, v, (size_t)(comma - v));
            pbuf[comma - v] = 0;
            if ((rc = parse_count("--generate (prompt)", pbuf, 1, &o->gen_prompt)) ||
                (rc = parse_count("--generate (steps)", comma + 1, 1, &o->gen_steps)))
                return rc;
        }
        else if (!strcmp(a, "--shape") && has_val) {
            if (o->n_shapes == BENCH_MAX_SPECS) { fprintf(stderr, "safeinfer bench: too many --shape\n"); return EXIT_USAGE; }
            o->shapes[o->n_shapes++] = argv[++i];
        } else if (!strcmp(a, "--set") && has_val) {
            if (o->n_sets == BENCH_MAX_SPECS) { fprintf(stderr, "safeinfer bench: too many --set\n"); return EXIT_USAGE; }
            if (!strchr(argv[i + 1], '=')) { fprintf(stderr, "safeinfer bench: --set needs KEY=VALUE (got '%s')\n", argv[i + 1]); return EXIT_USAGE; }
            o->sets[o->n_sets++] = argv[++i];
        } else if (!strcmp(a, "--input") && has_val) {
            if (o->n_inputs == BENCH_MAX_SPECS) { fprintf(stderr, "safeinfer bench: too many --input\n"); return EXIT_USAGE; }
            o->inputs[o->n_inputs++] = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "safeinfer bench: unknown option '%s'%s\n", a, has_val ? "" : " (or it lacks its value)");
            usage_cmd(stderr, "bench");
            return EXIT_USAGE;
        } else if (!o->model) o->model = a;
        else { fprintf(stderr, "safeinfer bench: unexpected argument '%s'\n", a); return EXIT_USAGE; }
        if (rc) return rc;
    }
    if (!o->model) { usage_cmd(stderr, "bench"); return EXIT_USAGE; }
    if (o->gen_steps && (o->n_shapes || o->n_inputs)) {
        fprintf(stderr, "safeinfer bench: --generate makes its own inputs (--shape and --input do not apply)\n");
        return EXIT_USAGE;
    }
    return 0;
}

// --- --generate P,N -----------------------------------------------------------------------------------------

static void gen_print(FILE *f, const bench_opts *o, const gen_result *g, bool json) {
    double pp = g->prefill_ms > 0 ? (double)o->gen_prompt * 1e3 / g->prefill_ms : NAN;
    double tg = o->gen_steps > 1 && g->decode_ms > 0 ? (double)(o->gen_steps - 1) * 1e3 / g->decode_ms : NAN;
    if (!json) {
        fprintf(f, "safeinfer bench --generate %lld,%lld: %s\n", (long long)o->gen_prompt, (long long)o->gen_steps, o->model);
        fprintf(f, "  %-22s %s\n", "devices requested", o->devices ? o->devices : "(default)");
        fprintf(f, "  %-22s %s\n", "devices used", g->devices);
        fprintf(f, "  %-22s %lld\n", "threads", (long long)o->threads);
        fprintf(f, "  %-22s %12.3f ms\n", "compile", g->compile_ms);
        fprintf(f, "  %-22s %12.3f ms   pp%lld %10.2f tokens/s   %ld page faults\n", "prefill", g->prefill_ms, (long long)o->gen_prompt, pp,
                g->prefill_faults);
        if (o->gen_steps > 1) {
            fprintf(f, "  %-22s %12.3f ms   tg%lld %10.2f tokens/s\n", "decode", g->decode_ms, (long long)(o->gen_steps - 1), tg);
            fprintf(f, "  %-22s %12.3f ms (median) %10.3f ms (min)\n", "decode step", g->step_median_ms, g->step_min_ms);
        }
        fprintf(f, "  %-22s %12.1f MiB\n", "peak RSS", g->peak_rss_mib);
        fprintf(f, "  %-22s %lld failovers, %lld retries, %lld failbacks\n", "events", (long long)g->counters.failovers,
                (long long)g->counters.retries, (long long)g->counters.failbacks);
        fprintf(f, "  %-22s", "tokens");
        for (int64_t i = 0; i < o->gen_steps; i++) fprintf(f, " %lld", (long long)g->tokens[i]);
        fprintf(f, "\n");
        return;
    }
    json_head(f, o, g->devices);
    fprintf(f, ",\n  \"threads\": %lld,\n  \"prompt\": %lld,\n  \"steps\": %lld,\n  \"tokens\": [", (long long)o->threads,
            (long long)o->gen_prompt, (long long)o->gen_steps);
    for (int64_t i = 0; i < o->gen_steps; i++) fprintf(f, i ? ", %lld" : "%lld", (long long)g->tokens[i]);
    fprintf(f, "],\n");
    json_num(f, "compile_ms", g->compile_ms, false);
    json_num(f, "prefill_ms", g->prefill_ms, false);
    json_num(f, "prefill_tokens_per_s", pp, false);
    fprintf(f, "  \"prefill_page_faults\": %ld,\n", g->prefill_faults);
    json_num(f, "decode_ms", g->decode_ms, false);
    json_num(f, "decode_tokens_per_s", tg, false);
    json_num(f, "decode_step_median_ms", o->gen_steps > 1 ? g->step_median_ms : NAN, false);
    json_num(f, "decode_step_min_ms", o->gen_steps > 1 ? g->step_min_ms : NAN, false);
    json_num(f, "peak_rss_mib", g->peak_rss_mib, false);
    fprintf(f, "  \"failovers\": %lld,\n  \"retries\": %lld,\n  \"failbacks\": %lld,\n  \"report\": %s\n}\n",
            (long long)g->counters.failovers, (long long)g->counters.retries, (long long)g->counters.failbacks,
            g->report ? g->report : "null");
}

/* bench --generate --profile: the step profile of the whole generation, printed after the table */
typedef struct gen_prof {
    char *text;
    size_t len;
    int rc;
} gen_prof;

static void gen_profile(const si_compiled *c, void *ctx) {
    gen_prof *p = ctx;
    FILE *f = open_memstream(&p->text, &p->len);
    if (!f) {
        p->rc = 3 + SI_ERR_NO_MEM;
        return;
    }
    p->rc = print_profile(f, c, 0);
    fclose(f);
}

static int bench_generate(const bench_opts *o) {
    FILE *json = NULL;
    if (o->json && !(json = fopen(o->json, "w"))) {
        fprintf(stderr, "safeinfer bench: cannot write %s\n", o->json);
        return 3 + SI_ERR_IO;
    }
    si_config *cfg = NULL;
    char err[1024];
    si_result s;
    if ((s = bench_config(o, &cfg))) {
        if (json) fclose(json), remove(o->json);
        return fail_status(s, "config");
    }
    gen_prof prof = {0};
    gen_opts go = {.model = o->model, .cfg = cfg, .prompt = o->gen_prompt, .steps = o->gen_steps, .seed = 1,
                   .inspect = o->profile ? gen_profile : NULL, .inspect_ctx = &prof};
    gen_result g;
    s = gen_run(&go, &g, err, sizeof err);
    si_config_free(cfg);
    if (s) {
        free(prof.text);
        if (json) fclose(json), remove(o->json);
        fprintf(stderr, "safeinfer bench: %s (%s)\n", err, si_result_str(s));
        return 3 + (int)s;
    }
    gen_print(stdout, o, &g, false);
    if (prof.text) fputs(prof.text, stdout);
    free(prof.text);
    int rc = prof.rc;
    if (json) {
        gen_print(json, o, &g, true);
        if (fclose(json)) {
            fprintf(stderr, "safeinfer bench: error writing %s\n", o->json);
            rc = 3 + SI_ERR_IO;
        }
    }
    gen_result_free(&g);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    if (o.gen_steps) return bench_generate(&o);

    progress pg = {.on = isatty(fileno(stderr)) == 1};
    si_model *m;
    si_result s;
    progress_show(&pg, true, "bench: loading %s", o.model);
    if ((s = si_model_load(o.model, &m))) { progress_end(&pg); return fail_status(s, "load"); }
    for (int i = 0; i < o.n_shapes; i++)
        if ((s = apply_shape(m, o.shapes[i]))) { progress_end(&pg); si_model_free(m); return fail_status(s, "--shape"); }

    FILE *json = NULL;
    if (o.json && !(json = fopen(o.json, "w"))) {
        progress_end(&pg);
        fprintf(stderr, "safeinfer bench: cannot write %s\n", o.json);
        si_model_free(m);
        return 3 + SI_ERR_IO;
    }
    int nin = si_model_num_inputs(m);
    si_tensor **in = calloc((size_t)nin + 1, sizeof *in);
    double *times = calloc((size_t)o.iterations, sizeof *times);
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    bench_result r = {0};
    char threads[32], inputs[1024];
    snprintf(threads, sizeof threads, "%" PRId64, o.threads);
    if (!in || !times) { progress_end(&pg); fprintf(stderr, "safeinfer bench: out of memory\n"); rc = 3 + SI_ERR_NO_MEM; goto out; }
    if ((rc = make_inputs(m, o.inputs, o.n_inputs, in))) { progress_end(&pg); goto out; }
    if ((s = bench_config(&o, &cfg))) {
        progress_end(&pg);
        rc = fail_status(s, "config");
        goto out;
    }

    progress_show(&pg, true, "bench: compiling");
    double t0 = now_ms();
    if ((s = si_compile(m, cfg, &cm))) { progress_end(&pg); rc = fail_status(s, "compile"); goto out; }
    r.compile_ms = now_ms() - t0;
    r.devices_used = si_compiled_devices(cm);
    si_model_free(m); /* the compiled model keeps what it needs; free the graph so RSS reflects inference */
    m = NULL;
    if ((s = si_request_create(cm, &rq))) { progress_end(&pg); rc = fail_status(s, "request"); goto out; }
    for (int i = 0; i < nin; i++)
        if ((s = si_request_set_input(rq, i, in[i]))) { progress_end(&pg); rc = fail_status(s, "input"); goto out; }

    progress_show(&pg, true, "bench: first inference (compile %.1f ms)", r.compile_ms);
    t0 = now_ms();
    if ((s = si_request_infer(rq))) { progress_end(&pg); rc = fail_status(s, "infer"); goto out; }
    r.first_ms = now_ms() - t0;

    for (int64_t w = 0; w < o.warmup; w++) {
        progress_show(&pg, w == 0, "bench: warmup %" PRId64 "/%" PRId64, w + 1, o.warmup);
        if ((s = si_request_infer(rq))) { progress_end(&pg); rc = fail_status(s, "infer (warmup)"); goto out; }
    }

    double loop0 = now_ms();
    for (int64_t it = 0; it < o.iterations; it++) {
        double a = now_ms();
        if ((s = si_request_infer(rq))) { progress_end(&pg); rc = fail_status(s, "infer"); goto out; }
        times[it] = now_ms() - a;
        progress_show(&pg, it == 0 || it + 1 == o.iterations, "bench: iteration %" PRId64 "/%" PRId64 "  last %.3f ms",
                      it + 1, o.iterations, times[it]);
    }
    double loop_ms = now_ms() - loop0;
    progress_end(&pg);

    latency_stats(times, o.iterations, loop_ms, &r);
    r.peak_rss_mib = peak_rss_mib();
    input_desc(cm, in, nin, inputs, sizeof inputs);
    print_table(&o, &r, inputs);
    if (o.profile && (rc = print_profile(stdout, cm, 0))) goto out;
    if (json) {
        rc = write_json(json, &o, &r, cm, in, nin);
        json = NULL;
    }

out:
    if (json) { /* failed before the result: leave no half-written file */
        fclose(json);
        remove(o.json);
    }
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    free_inputs(in, nin);
    free(times);
    si_model_free(m);
    return rc;
}
