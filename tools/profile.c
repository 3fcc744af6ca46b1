/*
 * profile.c — `--profile` of run and bench: the compiled model's step profile (si_compiled_profile_json) as a
 * table sorted by time, with a warning when reference kernels take more than 5% of a device's run.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int profile_flag(int argc, char **argv, int *i) {
    if (strcmp(argv[*i], "--profile")) return -1;
    if (*i + 1 < argc) { /* `--profile on|off` like every configuration flag; a bare --profile means on */
        const char *v = argv[*i + 1];
        bool on = !strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true");
        if (on || !strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) {
            ++*i;
            return on;
        }
    }
    return 1;
}

int print_profile(FILE *out, const si_compiled *cm, double infer_ms_total) {
    char *json = NULL;
    si_result s = si_compiled_profile_json(cm, &json);
    if (s) return fail_status(s, "profile");
    char err[256] = "";
    jval *v = json_parse(json, err, sizeof err);
    si_free_string(json);
    if (!v) { fprintf(stderr, "safeinfer: profile: %s\n", err); return 1; }
    const jval *steps = json_get(v, "steps");
    const jval *tot = json_get(v, "total_ms");
    double total = tot && tot->type == J_NUM ? tot->num : 0;
    fprintf(out, "profile: %d steps, %.2f ms in steps", steps ? steps->n : 0, total);
    if (infer_ms_total > 0) fprintf(out, " (%.1f%% of the inference time)", 100.0 * total / infer_ms_total);
    fprintf(out, "\n  %10s %6s %7s %10s  %-8s %-22s %s\n", "total ms", "share", "calls", "mean ms", "device", "kernel", "ops [nodes]");
    double ref_by_dev[8] = {0}, all_by_dev[8] = {0};
    char devs[8][32];
    int ndev = 0;
    for (int i = 0; steps && steps->type == J_ARR && i < steps->n; i++) {
        const jval *r = &steps->items[i];
        const jval *ms = json_get(r, "total_ms"), *mean = json_get(r, "mean_ms"), *sh = json_get(r, "share"), *calls = json_get(r, "calls"),
                   *ref = json_get(r, "reference");
        const char *dev = json_str_of(json_get(r, "device"), "?");
        double t = ms && ms->type == J_NUM ? ms->num : 0;
        fprintf(out, "  %10.3f %5.1f%% %7d %10.3f  %-8s %-22s %s [%s]\n", t, 100.0 * (sh && sh->type == J_NUM ? sh->num : 0),
                json_int_of(calls, 0), mean && mean->type == J_NUM ? mean->num : 0, dev, json_str_of(json_get(r, "kernel"), "?"),
                json_str_of(json_get(r, "ops"), ""), json_str_of(json_get(r, "nodes"), ""));
        int d = 0;
        while (d < ndev && strcmp(devs[d], dev)) d++;
        if (d == ndev && ndev < 8) snprintf(devs[ndev++], sizeof devs[0], "%s", dev);
        if (d < ndev) {
            all_by_dev[d] += t;
            if (ref && ref->type == J_BOOL && ref->num) ref_by_dev[d] += t;
        }
    }
    for (int d = 0; d < ndev; d++)
        if (all_by_dev[d] > 0 && ref_by_dev[d] > 0.05 * all_by_dev[d])
            fprintf(out, "WARNING: reference kernels take %.1f%% of the %s steps' time (%.2f of %.2f ms): those ops have no fast "
                    "kernel on %s for these types or attributes\n",
                    100.0 * ref_by_dev[d] / all_by_dev[d], devs[d], ref_by_dev[d], all_by_dev[d], devs[d]);
    json_free(v);
    return 0;
}
