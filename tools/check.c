/*
 * check.c — `safeinfer check-onnx`: runs ONNX backend test cases and compares outputs.
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

// --- check-onnx ---------------------------------------------------------------------------------------------

typedef struct checker {
    const char *devices;
    double rtol, atol;
    regex_t re;
    bool has_re;
    FILE *json;
    int passed, failed, skipped, json_count;
    int found; /* test cases found (selected or not) */
} checker;

typedef enum { R_PASS, R_FAIL, R_SKIP } result;

bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
bool dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void report(checker *ck, const char *name, result r, const char *msg) {
    static const char *const tags[] = {"PASS", "FAIL", "SKIP"};
    if (r == R_PASS) { ck->passed++; printf("PASS %s\n", name); }
    else { if (r == R_FAIL) ck->failed++; else ck->skipped++; printf("%s %s: %s\n", tags[r], name, msg); }
    fflush(stdout);
    if (ck->json) {
        fprintf(ck->json, "%s\n  {\"case\": ", ck->json_count++ ? "," : "");
        json_str(ck->json, name);
        fprintf(ck->json, ", \"result\": \"%s\", \"message\": ", tags[r]);
        json_str(ck->json, r == R_PASS ? "" : msg);
        fprintf(ck->json, "}");
    }
}

/* Compare got with expected; on mismatch fill msg and return false. */
static bool compare(const checker *ck, const char *oname, const si_tensor *got, const si_tensor *exp, char *msg, size_t mn) {
    char gs[256], es[256];
    shape_str(got, gs, sizeof gs);
    shape_str(exp, es, sizeof es);
    if (si_tensor_dtype(got) != si_tensor_dtype(exp)) {
        snprintf(msg, mn, "output '%s': type %s, expected %s", oname, si_dtype_name(si_tensor_dtype(got)), si_dtype_name(si_tensor_dtype(exp)));
        return false;
    }
    if (si_tensor_ndim(got) != si_tensor_ndim(exp) || memcmp(si_tensor_dims(got), si_tensor_dims(exp), sizeof(int64_t) * (size_t)si_tensor_ndim(got))) {
        snprintf(msg, mn, "output '%s': shape %s, expected %s", oname, gs, es);
        return false;
    }
    int64_t n = si_tensor_count(got), bad = 0, worst = -1;
    double worst_err = 0;
    bool flt = is_float(si_tensor_dtype(got));
    /* float32 / float64 results that are sums of large terms (a DFT) carry the rounding of the output's range:
     * where the expected value is near 0, differences below one rounding step (machine epsilon) of the largest
     * expected magnitude are noise of the reference's arithmetic, not errors. */
    double atol = ck->atol;
    si_dtype odt = si_tensor_dtype(got);
    if (odt == SI_F32 || odt == SI_F64) {
        double emax = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs(elem(exp, i));
            if (isfinite(e) && e > emax) emax = e;
        }
        double eps = odt == SI_F32 ? 1.1920929e-7 : 2.220446049250313e-16;
        if (eps * emax > atol) atol = eps * emax;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!flt) {
            if (elem_i64(got, i) != elem_i64(exp, i)) { if (!bad++) worst = i; }
            continue;
        }
        double g = elem(got, i), e = elem(exp, i);
        if (isnan(e) || isnan(g)) {
            if (isnan(e) != isnan(g)) { if (!bad++) { worst = i; worst_err = INFINITY; } }
            continue;
        }
        if (isinf(e) || isinf(g)) {
            if (g != e) { if (!bad++) { worst = i; worst_err = INFINITY; } }
            continue;
        }
        double err = fabs(g - e);
        if (err > atol + ck->rtol * fabs(e)) {
            bad++;
            if (err > worst_err || worst < 0) { worst_err = err; worst = i; }
        }
    }
    if (!bad) return true;
    if (flt)
        snprintf(msg, mn, "output '%s': %" PRId64 " of %" PRId64 " values differ, largest error %.3g at [%" PRId64 "] (got %.9g, expected %.9g)",
                 oname, bad, n, worst_err, worst, elem(got, worst), elem(exp, worst));
    else
        snprintf(msg, mn, "output '%s': %" PRId64 " of %" PRId64 " values differ, first at [%" PRId64 "] (got %" PRId64 ", expected %" PRId64 ")",
                 oname, bad, n, worst, elem_i64(got, worst), elem_i64(exp, worst));
    return false;
}

/* Run one data set: inputs (may be NULL for light models: zeros), expected outputs. */
static result run_set(checker *ck, const char *model_path, si_tensor **ins, char **in_names, int n_in,
                      si_tensor **exps, char **exp_names, int n_exp, char *msg, size_t mn) {
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    si_tensor **made = NULL;
    result r = R_FAIL;
    si_result s = si_model_load(model_path, &m);
    if (s) { snprintf(msg, mn, "load: %s", si_last_error()); r = s == SI_ERR_UNSUPPORTED ? R_SKIP : R_FAIL; goto out; }
    int nin = si_model_num_inputs(m);
    int *map = calloc((size_t)nin + 1, sizeof *map);
    made = calloc((size_t)nin + 1, sizeof *made);
    if (!map || !made) { free(map); snprintf(msg, mn, "out of memory"); goto out; }
    if (ins && n_in > nin) { free(map); snprintf(msg, mn, "%d input files for %d model inputs", n_in, nin); goto out; }
    for (int i = 0; i < nin; i++) map[i] = -1;
    for (int k = 0; ins && k < n_in; k++) { /* by name when named, else by position */
        int idx = in_names[k][0] ? si_model_input_index(m, in_names[k]) : k;
        if (idx < 0) idx = k;
        map[idx] = k;
    }
    for (int i = 0; i < nin; i++) {
        si_value_info info;
        if ((s = si_model_input_info(m, i, &info))) break;
        if (map[i] >= 0) {
            const si_tensor *t = ins[map[i]];
            if ((s = si_model_set_input_shape(m, info.name, si_tensor_ndim(t), si_tensor_dims(t)))) break;
        } else if (!ins) { /* light models: zero inputs of the declared shape */
            for (int d = 0; d < info.ndim; d++)
                if (info.dims[d] < 0) info.dims[d] = 1;
            if ((s = si_tensor_create(info.dtype, info.ndim < 0 ? 0 : info.ndim, info.dims, &made[i]))) break;
        }
    }
    if (s) { free(map); snprintf(msg, mn, "inputs: %s", si_last_error()); r = s == SI_ERR_UNSUPPORTED ? R_SKIP : R_FAIL; goto out; }
    if ((s = si_config_create(&cfg)) || (ck->devices && (s = si_config_set(cfg, "devices", ck->devices)))) { free(map); snprintf(msg, mn, "config: %s", si_last_error()); goto out; }
    if ((s = si_compile(m, cfg, &cm))) { free(map); snprintf(msg, mn, "compile: %s", si_last_error()); r = s == SI_ERR_UNSUPPORTED ? R_SKIP : R_FAIL; goto out; }
    if ((s = si_request_create(cm, &rq))) { free(map); snprintf(msg, mn, "request: %s", si_last_error()); goto out; }
    for (int i = 0; i < nin && !s; i++) {
        si_tensor *t = map[i] >= 0 ? ins[map[i]] : made[i];
        if (!t) { s = SI_ERR_INVALID_ARG; snprintf(msg, mn, "no data for input %d", i); break; }
        if ((s = si_request_set_input(rq, i, t))) snprintf(msg, mn, "set input: %s", si_last_error());
    }
    free(map);
    if (s) goto out;
    if ((s = si_request_infer(rq))) { snprintf(msg, mn, "infer: %s (%s)", si_last_error(), si_result_str(s)); goto out; }
    int nout = si_compiled_num_outputs(cm);
    if (n_exp > nout) { snprintf(msg, mn, "%d expected outputs, the model has %d", n_exp, nout); goto out; }
    for (int k = 0; k < n_exp; k++) {
        si_tensor *o;
        int idx = k;
        for (int j = 0; exp_names[k][0] && j < nout; j++)
            if (!strcmp(si_compiled_output_name(cm, j), exp_names[k])) idx = j;
        if ((s = si_request_get_output(rq, idx, &o))) { snprintf(msg, mn, "output: %s", si_last_error()); goto out; }
        if (!compare(ck, si_compiled_output_name(cm, idx), o, exps[k], msg, mn)) goto out;
    }
    r = R_PASS;
out:
    free_inputs(made, m ? si_model_num_inputs(m) : 0);
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    si_model_free(m);
    return r;
}

typedef struct tlist { si_tensor **t; char **names; int n; } tlist;

static void tlist_free(tlist *l) {
    for (int i = 0; i < l->n; i++) { si_tensor_free(l->t[i]); si_free_string(l->names[i]); }
    free(l->t);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* Read dir/prefix_0.pb, prefix_1.pb, ... */
static si_result tlist_read(tlist *l, const char *dir, const char *prefix) {
    memset(l, 0, sizeof *l);
    for (int k = 0;; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s_%d.pb", dir, prefix, k);
        if (!file_exists(p)) break;
        si_tensor **nt = realloc(l->t, sizeof *nt * (size_t)(k + 1));
        char **nn = realloc(l->names, sizeof *nn * (size_t)(k + 1));
        if (nt) l->t = nt;
        if (nn) l->names = nn;
        if (!nt || !nn) return SI_ERR_NO_MEM;
        si_result s = si_tensor_read_pb(p, &l->t[k], &l->names[k]);
        if (s) return s;
        l->n = k + 1;
    }
    return SI_OK;
}

static void check_case_dir(checker *ck, const char *dir, const char *name) {
    char model[4096], msg[2048] = "";
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    int sets = 0;
    result worst = R_PASS;
    char worst_msg[2048] = "";
    for (int n = 0;; n++) {
        char sd[4096];
        snprintf(sd, sizeof sd, "%s/test_data_set_%d", dir, n);
        if (!dir_exists(sd)) break;
        sets++;
        tlist in, out;
        si_result s = tlist_read(&in, sd, "input");
        if (!s) s = tlist_read(&out, sd, "output");
        else memset(&out, 0, sizeof out);
        result r;
        if (s) {
            /* an input we cannot represent: the model load tells whether it is unsupported */
            si_model *m;
            si_result ls = si_model_load(model, &m);
            si_model_free(m);
            snprintf(msg, sizeof msg, "test data: %s", si_last_error());
            r = (s == SI_ERR_UNSUPPORTED || ls == SI_ERR_UNSUPPORTED) ? R_SKIP : R_FAIL;
            if (ls == SI_ERR_UNSUPPORTED) snprintf(msg, sizeof msg, "load: %s", si_last_error());
        } else {
            r = run_set(ck, model, in.t, in.names, in.n, out.t, out.names, out.n, msg, sizeof msg);
        }
        tlist_free(&in);
        tlist_free(&out);
        if (r == R_FAIL || (r == R_SKIP && worst == R_PASS)) {
            worst = r;
            snprintf(worst_msg, sizeof worst_msg, "%s%s", sets > 1 ? "" : "", msg);
        }
        if (r == R_FAIL) break;
    }
    if (!sets) {
        report(ck, name, R_SKIP, "no test_data_set_N folder");
        return;
    }
    report(ck, name, worst, worst_msg);
}

static void check_light(checker *ck, const char *model, const char *name) {
    char exp_path[4096], msg[2048] = "";
    size_t l = strlen(model);
    snprintf(exp_path, sizeof exp_path, "%.*s_output_0.pb", (int)(l - 5), model);
    si_tensor *exp = NULL;
    char *exp_name = NULL;
    si_result s = si_tensor_read_pb(exp_path, &exp, &exp_name);
    if (s) { snprintf(msg, sizeof msg, "expected output: %s", si_last_error()); report(ck, name, R_FAIL, msg); return; }
    char *names[1] = {exp_name};
    result r = run_set(ck, model, NULL, NULL, 0, &exp, names, 1, msg, sizeof msg);
    report(ck, name, r, msg);
    si_tensor_free(exp);
    si_free_string(exp_name);
}

static bool selected(checker *ck, const char *name) { return !ck->has_re || regexec(&ck->re, name, 0, NULL, 0) == 0; }

static bool is_light_model(const char *path) {
    size_t l = strlen(path);
    if (l < 6 || strcmp(path + l - 5, ".onnx")) return false;
    char exp[4096];
    snprintf(exp, sizeof exp, "%.*s_output_0.pb", (int)(l - 5), path);
    return file_exists(exp);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_path(checker *ck, const char *path, int depth) {
    char model[4096];
    snprintf(model, sizeof model, "%s/model.onnx", path);
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    if (file_exists(model)) {
        ck->found++;
        if (selected(ck, base)) check_case_dir(ck, path, base);
        return;
    }
    if (is_light_model(path)) {
        ck->found++;
        if (selected(ck, base)) check_light(ck, path, base);
        return;
    }
    if (!dir_exists(path)) {
        if (depth == 0) { report(ck, path, R_FAIL, "not a test case, a light model or a folder"); }
        return;
    }
    if (depth > 3) return;
    DIR *d = opendir(path);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nn = realloc(names, sizeof *nn * cap);
            if (!nn) break;
            names = nn;
        }
        if ((names[n] = strdup(e->d_name))) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        if (dir_exists(sub) || is_light_model(sub)) check_path(ck, sub, depth + 1);
        free(names[i]);
    }
    free(names);
}

int cmd_check(int argc, char **argv) {
    int rc = 0;
    checker ck = {.rtol = 1e-3, .atol = 1e-7};
    const char **paths = calloc((size_t)argc + 1, sizeof *paths); /* every argument at most */
    int np = 0;
    const char *json_path = NULL;
    if (!paths) { fprintf(stderr, "safeinfer: out of memory\n"); return 3 + SI_ERR_NO_MEM; }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--devices") && has_val) ck.devices = argv[++i];
        else if (!strcmp(a, "--filter") && has_val) {
            if (ck.has_re) regfree(&ck.re);
            ck.has_re = false;
            if (regcomp(&ck.re, argv[++i], REG_EXTENDED | REG_NOSUB)) { fprintf(stderr, "safeinfer: bad --filter regex '%s'\n", argv[i]); free(paths); return EXIT_USAGE; }
            ck.has_re = true;
        } else if (!strcmp(a, "--json") && has_val) json_path = argv[++i];
        else if (!strcmp(a, "--rtol") && has_val) { if (!parse_tol(a, argv[++i], &ck.rtol)) rc = EXIT_USAGE; }
        else if (!strcmp(a, "--atol") && has_val) { if (!parse_tol(a, argv[++i], &ck.atol)) rc = EXIT_USAGE; }
        else if (a[0] == '-') { fprintf(stderr, "safeinfer check-onnx: unknown option '%s' (or missing value)\n", a); usage_cmd(stderr, "check-onnx"); rc = EXIT_USAGE; }
        else paths[np++] = a;
    }
    if (!rc && !np) { usage_cmd(stderr, "check-onnx"); rc = EXIT_USAGE; }
    if (!rc && json_path && !(ck.json = fopen(json_path, "w"))) {
        fprintf(stderr, "safeinfer: cannot write %s: %s\n", json_path, strerror(errno));
        rc = 3 + SI_ERR_IO;
    }
    if (rc) {
        if (ck.has_re) regfree(&ck.re);
        free(paths);
        return rc;
    }
    if (ck.json) {
        fprintf(ck.json, "{\"devices\": ");
        json_str(ck.json, ck.devices ? ck.devices : "AUTO");
        fprintf(ck.json, ", \"cases\": [");
    }
    int empty = 0;
    for (int i = 0; i < np; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s", paths[i]);
        size_t l = strlen(p);
        while (l > 1 && p[l - 1] == '/') p[--l] = 0;
        int before = ck.found, failed_before = ck.failed;
        check_path(&ck, p, 0);
        if (ck.found == before && ck.failed == failed_before) { /* a folder without a single case */
            fprintf(stderr, "safeinfer check-onnx: no test case in '%s' (expected folders with model.onnx and "
                            "test_data_set_N/, or light_X.onnx with light_X_output_0.pb)\n", paths[i]);
            empty++;
        }
    }
    int selected_cases = ck.passed + ck.failed + ck.skipped;
    if (ck.has_re && ck.found && !selected_cases)
        fprintf(stderr, "safeinfer check-onnx: --filter selects none of the %d test cases found\n", ck.found);
    if (ck.json) {
        fprintf(ck.json, "\n], \"passed\": %d, \"failed\": %d, \"skipped\": %d}\n", ck.passed, ck.failed, ck.skipped);
        fclose(ck.json);
    }
    if (ck.has_re) regfree(&ck.re);
    free(paths);
    printf("%d passed, %d failed, %d skipped\n", ck.passed, ck.failed, ck.skipped);
    return ck.failed || empty || !selected_cases ? 1 : 0;
}


// --- compare ------------------------------------------------------------------------------------------------

/* safeinfer compare DIR_A DIR_B [--rtol X] [--atol X]: every .npy in DIR_A against the same name in DIR_B. */
int cmd_compare(int argc, char **argv) {
    checker ck = {.rtol = 1e-3, .atol = 1e-7};
    const char *dirs[2];
    int nd = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") && i + 1 < argc) { if (!parse_tol(argv[i], argv[i + 1], &ck.rtol)) return EXIT_USAGE; i++; }
        else if (!strcmp(argv[i], "--atol") && i + 1 < argc) { if (!parse_tol(argv[i], argv[i + 1], &ck.atol)) return EXIT_USAGE; i++; }
        else if (argv[i][0] == '-' || nd == 2) { fprintf(stderr, "safeinfer compare: unexpected argument '%s'\n", argv[i]); usage_cmd(stderr, "compare"); return EXIT_USAGE; }
        else dirs[nd++] = argv[i];
    }
    if (nd != 2) { usage_cmd(stderr, "compare"); return EXIT_USAGE; }
    DIR *d = opendir(dirs[0]);
    if (!d) { fprintf(stderr, "safeinfer: cannot open %s: %s\n", dirs[0], strerror(errno)); return 3 + SI_ERR_IO; }
    int same = 0, differ = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".npy")) continue;
        char pa[4096], pb[4096], msg[1024] = "";
        snprintf(pa, sizeof pa, "%s/%s", dirs[0], e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", dirs[1], e->d_name);
        si_tensor *a = NULL, *b = NULL;
        si_result s = si_tensor_read_npy(pa, &a);
        if (!s) s = si_tensor_read_npy(pb, &b);
        bool ok = !s && compare(&ck, e->d_name, a, b, msg, sizeof msg);
        if (s) snprintf(msg, sizeof msg, "%s", si_last_error());
        printf("%s %s%s%s\n", ok ? "SAME" : "DIFFERENT", e->d_name, ok ? "" : ": ", ok ? "" : msg);
        if (ok) same++;
        else differ++;
        si_tensor_free(a);
        si_tensor_free(b);
    }
    closedir(d);
    printf("%d same, %d different (rtol %g, atol %g)\n", same, differ, ck.rtol, ck.atol);
    return differ || !same ? 1 : 0;
}
