/*
 * dot.c — `safeinfer inspect MODEL --devices LIST --dot FILE.dot [--report FILE.json]`: the partition
 * (si_model_partition_json) as a Graphviz graph. One cluster per submodel, filled with its device's colour,
 * its fallbacks and ops in the label; the model's inputs and outputs as ellipses; one edge per tensor that
 * crosses between submodels, labelled with its name and shape. With a `run --report` file, each cluster
 * shows the device the submodel ended on (and takes its colour), and its failovers, fail-backs and
 * quarantines; a submodel that moved gets a red border.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[] = {"#9fd89f", "#9fc5f8", "#ffd27f", "#f4a6a6", "#d5b6f4", "#c9c9c9",
                                      "#a6e3e0", "#f7c6e0"};
#define N_PALETTE (sizeof palette / sizeof palette[0])

/* A string in a DOT label: quotes and backslashes escaped, newlines as \n. */
static void dot_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') { fputs("\\n", f); continue; }
        if ((unsigned char)*s < 0x20) continue;
        fputc(*s, f);
    }
}

/* "float32[2,3,?,?]" from a {"dtype","shape"} object. */
static void shape_text(const jval *v, char *buf, size_t n) {
    const jval *shape = json_get(v, "shape");
    size_t o = (size_t)snprintf(buf, n, "%s", json_str_of(json_get(v, "dtype"), "?"));
    if (!shape || shape->type != J_ARR) { if (o < n) snprintf(buf + o, n - o, "[?]"); return; }
    for (int d = 0; d < shape->n && o < n; d++) {
        int x = json_int_of(&shape->items[d], -1);
        if (x >= 0) o += (size_t)snprintf(buf + o, n - o, "%s%d", d ? "," : "[", x);
        else o += (size_t)snprintf(buf + o, n - o, "%s?", d ? "," : "[");
    }
    if (o < n) snprintf(buf + o, n - o, shape->n ? "]" : "[]");
}

/* The rest of a label: "NAME\nSHAPE" (the shape of the {"dtype","shape"} object v), then the closing of the
 * attribute list. */
static void label_end(FILE *f, const char *name, const jval *v) {
    char sh[256];
    shape_text(v, sh, sizeof sh);
    dot_text(f, name);
    fputs("\\n", f);
    dot_text(f, sh);
    fputs("\"];\n", f);
}

static int device_index(const jval *devices, const char *name) {
    for (int i = 0; devices && i < devices->n; i++)
        if (!strcmp(json_str_of(&devices->items[i], ""), name)) return i;
    return -1;
}

static const char *device_colour(const jval *devices, const char *name) {
    int i = device_index(devices, name);
    return i < 0 ? "#ffffff" : palette[(size_t)i % N_PALETTE];
}

/* The partition's structure must be what the writer expects; the library writes it, so a mismatch is a bug. */
static bool partition_ok(const jval *p) {
    const jval *subs = json_get(p, "submodels"), *devs = json_get(p, "devices");
    if (!subs || subs->type != J_ARR || !devs || devs->type != J_ARR) return false;
    for (int s = 0; s < subs->n; s++) {
        const jval *sm = &subs->items[s];
        const jval *in = json_get(sm, "inputs"), *out = json_get(sm, "outputs"), *ops = json_get(sm, "ops");
        if (!in || in->type != J_ARR || !out || out->type != J_ARR || !ops || ops->type != J_ARR) return false;
    }
    return true;
}

/* Check that the report belongs to this partition: the same devices, the same number of submodels. */
static bool report_matches(const jval *rep, const jval *part, const char *path, char *err, size_t errn) {
    const jval *rdev = json_get(rep, "devices"), *rsub = json_get(rep, "submodels"), *rev = json_get(rep, "events");
    const jval *pdev = json_get(part, "devices"), *psub = json_get(part, "submodels");
    if (!rdev || rdev->type != J_ARR || !rsub || rsub->type != J_ARR || (rev && rev->type != J_ARR)) {
        snprintf(err, errn, "%s is not a `safeinfer run --report` file (no \"devices\" or \"submodels\" list)", path);
        return false;
    }
    bool same = rdev->n == pdev->n;
    for (int i = 0; same && i < rdev->n; i++) same = !strcmp(json_str_of(&rdev->items[i], ""), json_str_of(&pdev->items[i], ""));
    if (!same || rsub->n != psub->n) {
        char rl[256] = "", pl[256] = "";
        for (int i = 0; i < rdev->n; i++)
            snprintf(rl + strlen(rl), sizeof rl - strlen(rl), "%s%s", i ? "," : "", json_str_of(&rdev->items[i], "?"));
        for (int i = 0; i < pdev->n; i++)
            snprintf(pl + strlen(pl), sizeof pl - strlen(pl), "%s%s", i ? "," : "", json_str_of(&pdev->items[i], "?"));
        snprintf(err, errn, "%s was written for devices %s and %d submodel%s; this partition: devices %s and %d "
                            "submodel%s (give the same model, --shape and --devices as the run)",
                 path, rl, rsub->n, rsub->n == 1 ? "" : "s", pl, psub->n, psub->n == 1 ? "" : "s");
        return false;
    }
    return true;
}

/* The cluster label's report part: where the submodel ended and what happened to it. *moved: it changed device. */
static void report_lines(FILE *f, const jval *rep, int sub, const char *planned, bool *moved, const char **ended) {
    const jval *rs = &json_get(rep, "submodels")->items[sub];
    const char *dev = json_str_of(json_get(rs, "device"), "");
    *ended = dev;
    *moved = strcmp(dev, planned) != 0;
    fputs("\\n--- report ---\\n", f);
    if (!*dev) fputs("ended on: none (every device failed)", f);
    else { fputs("ended on ", f); dot_text(f, dev); }
    const jval *ev = json_get(rep, "events");
    int shown = 0, more = 0;
    for (int i = 0; ev && i < ev->n; i++) {
        const jval *e = &ev->items[i];
        const char *type = json_str_of(json_get(e, "type"), "");
        if (json_int_of(json_get(e, "submodel"), -1) != sub || !strcmp(type, "compile")) continue;
        if (!strcmp(type, "failover") || !strcmp(type, "failback")) *moved = true;
        if (shown == 4) { more++; continue; }
        shown++;
        char line[256];
        const char *from = json_str_of(json_get(e, "from"), ""), *to = json_str_of(json_get(e, "to"), "");
        const jval *t = json_get(e, "t_ms");
        snprintf(line, sizeof line, "%s%s%s%s%s at %.1f ms", type, *from ? " " : "", from, *to ? " -> " : "", to,
                 t && t->type == J_NUM ? t->num : 0.0);
        fputs("\\n", f);
        dot_text(f, line);
    }
    if (more) fprintf(f, "\\n(+%d more events)", more);
}

static void write_dot(FILE *f, const jval *part, const jval *rep, const char *model_path, const char *report_path) {
    const jval *devs = json_get(part, "devices"), *subs = json_get(part, "submodels");
    const jval *ins = json_get(part, "inputs"), *outs = json_get(part, "outputs");
    fputs("digraph safeinfer {\n  graph [rankdir=TB, fontname=\"Helvetica\", labelloc=t, label=\"", f);
    dot_text(f, model_path);
    fputs(" on ", f);
    dot_text(f, json_str_of(json_get(part, "config_devices"), "?"));
    if (devs->n && strstr(json_str_of(json_get(part, "config_devices"), ""), "AUTO")) {
        fputs(" (", f);
        for (int d = 0; d < devs->n; d++) { if (d) fputs(",", f); dot_text(f, json_str_of(&devs->items[d], "?")); }
        fputs(")", f);
    }
    if (rep) { fputs("\\nreport: ", f); dot_text(f, report_path); }
    fputs("\"];\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n", f);
    /* legend: one box per device of the list */
    fputs("  subgraph cluster_legend {\n    label=\"devices\"; style=dashed; fontsize=10;\n", f);
    for (int d = 0; d < devs->n; d++) {
        fprintf(f, "    legend_%d [shape=box, style=filled, fillcolor=\"%s\", label=\"", d, palette[(size_t)d % N_PALETTE]);
        dot_text(f, json_str_of(&devs->items[d], "?"));
        fputs("\"];\n", f);
    }
    fputs("  }\n", f);
    for (int i = 0; ins && i < ins->n; i++) {
        fprintf(f, "  input_%d [shape=ellipse, label=\"", i);
        label_end(f, json_str_of(json_get(&ins->items[i], "name"), "?"), &ins->items[i]);
    }
    for (int i = 0; outs && i < outs->n; i++) {
        fprintf(f, "  output_%d [shape=ellipse, style=bold, label=\"", i);
        label_end(f, json_str_of(json_get(&outs->items[i], "name"), "?"), &outs->items[i]);
    }
    for (int s = 0; s < subs->n; s++) {
        const jval *sm = &subs->items[s];
        const char *dev = json_str_of(json_get(sm, "device"), "?");
        const jval *fb = json_get(sm, "fallbacks"), *ops = json_get(sm, "ops");
        fprintf(f, "  subgraph cluster_submodel_%d {\n    label=\"submodel %d on ", s, s);
        dot_text(f, dev);
        if (fb && fb->type == J_ARR && fb->n) {
            fputs("\\nfallback: ", f);
            for (int k = 0; k < fb->n; k++) { if (k) fputs(", ", f); dot_text(f, json_str_of(&fb->items[k], "?")); }
        } else {
            fputs("\\nno fallback", f);
        }
        const char *why = json_str_of(json_get(sm, "why"), "");
        if (*why) {
            char w[104];
            if (strlen(why) > 100) snprintf(w, sizeof w, "%.97s...", why);
            else snprintf(w, sizeof w, "%s", why);
            fputs("\\nnot on earlier devices: ", f);
            dot_text(f, w);
        }
        bool moved = false;
        const char *ended = dev;
        if (rep) report_lines(f, rep, s, dev, &moved, &ended);
        fprintf(f, "\";\n    style=\"filled,rounded\"; fillcolor=\"%s\"; color=\"%s\"; penwidth=%d;\n",
                *ended ? device_colour(devs, ended) : "#ffffff", moved || !*ended ? "#d00000" : "#404040",
                moved || !*ended ? 3 : 1);
        /* one node inside: the op histogram (first-seen order, at most 12 kinds) */
        fprintf(f, "    submodel_%d [shape=box, style=filled, fillcolor=white, label=\"%d node%s", s, ops->n,
                ops->n == 1 ? "" : "s");
        int kinds = 0;
        for (int i = 0; i < ops->n; i++) {
            const char *op = json_str_of(&ops->items[i], "?");
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) seen = !strcmp(json_str_of(&ops->items[j], "?"), op);
            if (seen) continue;
            if (kinds++ == 12) continue;
            int cnt = 0;
            for (int j = i; j < ops->n; j++) cnt += !strcmp(json_str_of(&ops->items[j], "?"), op);
            fputs("\\n", f);
            dot_text(f, op);
            if (cnt > 1) fprintf(f, " x%d", cnt);
        }
        if (kinds > 12) fprintf(f, "\\n(+%d more kinds)", kinds - 12);
        fputs("\"];\n  }\n", f);
    }
    /* edges: model inputs and crossing tensors into submodels, submodels into model outputs */
    for (int s = 0; s < subs->n; s++) {
        const jval *in = json_get(&subs->items[s], "inputs");
        for (int k = 0; k < in->n; k++) {
            const jval *t = &in->items[k];
            const char *name = json_str_of(json_get(t, "name"), "?");
            int from = json_int_of(json_get(t, "from"), -1);
            if (from >= 0 && from < subs->n) {
                fprintf(f, "  submodel_%d -> submodel_%d [label=\"", from, s);
            } else {
                int mi = -1;
                for (int i = 0; ins && i < ins->n && mi < 0; i++)
                    if (!strcmp(json_str_of(json_get(&ins->items[i], "name"), ""), name)) mi = i;
                if (mi < 0) continue;
                fprintf(f, "  input_%d -> submodel_%d [label=\"", mi, s);
            }
            label_end(f, name, t);
        }
    }
    for (int i = 0; outs && i < outs->n; i++) {
        int from = json_int_of(json_get(&outs->items[i], "from"), -1);
        if (from >= 0 && from < subs->n) fprintf(f, "  submodel_%d -> output_%d;\n", from, i);
    }
    fputs("}\n", f);
}

int write_partition_dot(si_model *m, const char *model_path, const char *devices, const char *avoid, const char *dot_path,
                        const char *report_path) {
    si_config *cfg = NULL;
    char *json = NULL, *rep_text = NULL, err[1024];
    jval *part = NULL, *rep = NULL;
    int rc = 0;
    si_result s;
    if ((s = si_config_create(&cfg)) || (devices && (s = si_config_set(cfg, "devices", devices))) ||
        (avoid && (s = si_config_set(cfg, "avoid", avoid))) || (s = si_model_partition_json(m, cfg, &json))) {
        rc = fail_status(s, "partition");
        goto out;
    }
    if (!(part = json_parse(json, err, sizeof err)) || !partition_ok(part)) {
        fprintf(stderr, "safeinfer: the library's partition JSON is malformed (%s): a bug\n", part ? "structure" : err);
        rc = 3 + SI_ERR_INTERNAL;
        goto out;
    }
    if (report_path) {
        if (!(rep_text = read_text_file(report_path, err, sizeof err))) {
            fprintf(stderr, "safeinfer: --report: %s\n", err);
            rc = 3 + SI_ERR_IO;
            goto out;
        }
        if (!(rep = json_parse(rep_text, err, sizeof err))) {
            fprintf(stderr, "safeinfer: --report %s: not JSON: %s\n", report_path, err);
            rc = 3 + SI_ERR_PARSE;
            goto out;
        }
        if (!report_matches(rep, part, report_path, err, sizeof err)) {
            fprintf(stderr, "safeinfer: --report: %s\n", err);
            rc = 3 + SI_ERR_INVALID_ARG;
            goto out;
        }
    }
    FILE *f = fopen(dot_path, "w");
    if (!f) {
        fprintf(stderr, "safeinfer: cannot write %s: %s\n", dot_path, strerror(errno));
        rc = 3 + SI_ERR_IO;
        goto out;
    }
    write_dot(f, part, rep, model_path, report_path);
    if (fclose(f) != 0) {
        fprintf(stderr, "safeinfer: cannot write %s: %s\n", dot_path, strerror(errno));
        rc = 3 + SI_ERR_IO;
        goto out;
    }
    printf("graph: %s (render: dot -Tsvg %s -o %.*s.svg)\n", dot_path, dot_path,
           (int)(strlen(dot_path) > 4 && !strcmp(dot_path + strlen(dot_path) - 4, ".dot") ? strlen(dot_path) - 4 : strlen(dot_path)),
           dot_path);
out:
    json_free(part);
    json_free(rep);
    free(rep_text);
    si_free_string(json);
    si_config_free(cfg);
    return rc;
}
