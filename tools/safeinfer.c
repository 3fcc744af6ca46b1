/*
 * safeinfer — the command-line tool: run, inspect and check-onnx, written only against include/safeinfer.h.
 */
#include "safeinfer.h"

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

/* Exit codes: 0 ok, 1 check failures, 2 usage, 3 + status for library errors. */
#define EXIT_USAGE 2

static void usage(FILE *f) {
    fprintf(f,
            "usage: safeinfer COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run MODEL [--devices LIST] [--shape NAME=DIMS]... [--input NAME=FILE.npy|random[:SEED]]...\n"
            "            [--output-dir DIR] [--repeat N]\n"
            "      run the model and print each output's name, type, shape and a summary.\n"
            "      --shape NAME=1x3x224x224 fixes an input's shape; --shape batch=1 fixes a symbolic dimension.\n"
            "      Inputs not given are random (seed 0). --output-dir writes DIR/<output>.npy.\n"
            "  inspect MODEL\n"
            "      inputs, outputs, opsets, op histogram, parameters.\n"
            "  check-onnx PATH... [--devices LIST] [--filter REGEX] [--json FILE] [--rtol X] [--atol X]\n"
            "      run ONNX backend test cases (folders with model.onnx and test_data_set_N/, or light_X.onnx\n"
            "      with light_X_output_0.pb) and compare outputs; exit status 1 when any case fails.\n");
}

static int fail_status(si_status s, const char *what) {
    fprintf(stderr, "safeinfer: %s: %s (%s)\n", what, si_last_error(), si_status_str(s));
    return 3 + (int)s;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *v = x;
    return true;
}

/* "1x3x224x224" -> dims; "" or "scalar" -> rank 0 */
static bool parse_dims(const char *s, int *ndim, int64_t *dims) {
    *ndim = 0;
    if (!*s || !strcmp(s, "scalar")) return true;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, "x,", &save); tok; tok = strtok_r(NULL, "x,", &save)) {
        if (*ndim >= SI_MAX_DIMS || !parse_i64(tok, &dims[*ndim]) || dims[*ndim] < 0) return false;
        (*ndim)++;
    }
    return true;
}

// --- random inputs ----------------------------------------------------------------------------------------

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint16_t f32_to_f16_bits(float f) {
    /* simple conversion for random inputs in [-1, 1): normal numbers only */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (e <= 0) return (uint16_t)sign;
    return (uint16_t)(sign | ((uint32_t)e << 10) | ((x & 0x7fffff) >> 13));
}

/* Random values: floats uniform in [-1, 1), integers in [0, 10), bools 0/1. */
static void fill_random(si_tensor *t, uint64_t seed) {
    uint64_t st = seed * 0x2545f4914f6cdd1dull + 1;
    int64_t n = si_tensor_count(t);
    void *p = si_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix(&st);
        double u = (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0;
        switch (si_tensor_dtype(t)) {
        case SI_F32: ((float *)p)[i] = (float)u; break;
        case SI_F64: ((double *)p)[i] = u; break;
        case SI_F16: ((uint16_t *)p)[i] = f32_to_f16_bits((float)u); break;
        case SI_BF16: { float f = (float)u; uint32_t b; memcpy(&b, &f, 4); ((uint16_t *)p)[i] = (uint16_t)(b >> 16); break; }
        case SI_BOOL: ((uint8_t *)p)[i] = r & 1; break;
        case SI_I8: ((int8_t *)p)[i] = (int8_t)(r % 10); break;
        case SI_U8: ((uint8_t *)p)[i] = (uint8_t)(r % 10); break;
        case SI_I16: ((int16_t *)p)[i] = (int16_t)(r % 10); break;
        case SI_U16: ((uint16_t *)p)[i] = (uint16_t)(r % 10); break;
        case SI_I32: ((int32_t *)p)[i] = (int32_t)(r % 10); break;
        case SI_U32: ((uint32_t *)p)[i] = (uint32_t)(r % 10); break;
        case SI_I64: ((int64_t *)p)[i] = (int64_t)(r % 10); break;
        case SI_U64: ((uint64_t *)p)[i] = r % 10; break;
        default: break;
        }
    }
}

static double elem(const si_tensor *t, int64_t i) {
    const void *p = si_tensor_data(t);
    switch (si_tensor_dtype(t)) {
    case SI_F32: return ((const float *)p)[i];
    case SI_F64: return ((const double *)p)[i];
    case SI_F16: {
        uint16_t h = ((const uint16_t *)p)[i];
        int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
        return (h & 0x8000) ? -v : v;
    }
    case SI_BF16: { uint32_t b = (uint32_t)((const uint16_t *)p)[i] << 16; float f; memcpy(&f, &b, 4); return f; }
    case SI_I8: return ((const int8_t *)p)[i];
    case SI_U8: case SI_BOOL: return ((const uint8_t *)p)[i];
    case SI_I16: return ((const int16_t *)p)[i];
    case SI_U16: return ((const uint16_t *)p)[i];
    case SI_I32: return ((const int32_t *)p)[i];
    case SI_U32: return ((const uint32_t *)p)[i];
    case SI_I64: return (double)((const int64_t *)p)[i];
    case SI_U64: return (double)((const uint64_t *)p)[i];
    default: return 0;
    }
}

static int64_t elem_i64(const si_tensor *t, int64_t i) {
    const void *p = si_tensor_data(t);
    switch (si_tensor_dtype(t)) {
    case SI_I64: return ((const int64_t *)p)[i];
    case SI_U64: return (int64_t)((const uint64_t *)p)[i];
    default: return (int64_t)elem(t, i);
    }
}

static bool is_float(si_dtype t) { return t == SI_F32 || t == SI_F64 || t == SI_F16 || t == SI_BF16; }

static void shape_str(const si_tensor *t, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < si_tensor_ndim(t) && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ",%" PRId64 : "%" PRId64, si_tensor_dims(t)[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

// --- run --------------------------------------------------------------------------------------------------

typedef struct kv { const char *key; const char *val; } kv;

static int split_kv(const char *arg, char *key, size_t kn, const char **val) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= kn) return -1;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = 0;
    *val = eq + 1;
    return 0;
}

static si_status apply_shape(si_model *m, const char *arg) {
    char key[256];
    const char *val;
    int nd;
    int64_t dims[SI_MAX_DIMS];
    if (split_kv(arg, key, sizeof key, &val) || !parse_dims(val, &nd, dims)) {
        fprintf(stderr, "safeinfer: bad --shape '%s' (expected NAME=1x3x224x224 or DIM=N)\n", arg);
        exit(EXIT_USAGE);
    }
    if (si_model_input_index(m, key) >= 0) return si_model_set_input_shape(m, key, nd, dims);
    if (nd != 1) {
        fprintf(stderr, "safeinfer: --shape %s: no input is named '%s' (a symbolic dimension takes one value)\n", arg, key);
        exit(EXIT_USAGE);
    }
    return si_model_set_dim(m, key, dims[0]);
}

static void print_summary(const char *name, const si_tensor *t) {
    char sh[256];
    shape_str(t, sh, sizeof sh);
    int64_t n = si_tensor_count(t);
    printf("%s: %s%s", name, si_dtype_name(si_tensor_dtype(t)), sh);
    if (n > 0) {
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        int64_t nan = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = elem(t, i);
            if (isnan(v)) { nan++; continue; }
            mn = fmin(mn, v); mx = fmax(mx, v); sum += v;
        }
        printf(" min=%.6g max=%.6g mean=%.6g", mn, mx, n > nan ? sum / (double)(n - nan) : NAN);
        if (nan) printf(" nan=%" PRId64, nan);
        printf(" values=[");
        for (int64_t i = 0; i < n && i < 6; i++) printf(i ? ", %.6g" : "%.6g", elem(t, i));
        printf(n > 6 ? ", ...]" : "]");
    }
    printf("\n");
}

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *devices = NULL, *outdir = NULL;
    const char *shapes[64], *inputs[64];
    int n_shapes = 0, n_inputs = 0;
    long repeat = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--devices") && has_val) devices = argv[++i];
        else if (!strcmp(a, "--shape") && has_val && n_shapes < 64) shapes[n_shapes++] = argv[++i];
        else if (!strcmp(a, "--input") && has_val && n_inputs < 64) inputs[n_inputs++] = argv[++i];
        else if (!strcmp(a, "--output-dir") && has_val) outdir = argv[++i];
        else if (!strcmp(a, "--repeat") && has_val) {
            int64_t v;
            if (!parse_i64(argv[++i], &v) || v < 1) { fprintf(stderr, "safeinfer: --repeat needs a positive number\n"); return EXIT_USAGE; }
            repeat = (long)v;
        } else if (a[0] == '-' ) { fprintf(stderr, "safeinfer run: unknown option '%s'\n", a); usage(stderr); return EXIT_USAGE; }
        else if (!model_path) model_path = a;
        else { fprintf(stderr, "safeinfer run: unexpected argument '%s'\n", a); return EXIT_USAGE; }
    }
    if (!model_path) { usage(stderr); return EXIT_USAGE; }
    si_model *m;
    si_status s = si_model_load(model_path, &m);
    if (s) return fail_status(s, "load");
    for (int i = 0; i < n_shapes; i++)
        if ((s = apply_shape(m, shapes[i]))) { si_model_free(m); return fail_status(s, "--shape"); }
    int nin = si_model_num_inputs(m);
    si_tensor **tensors = calloc((size_t)nin + 1, sizeof *tensors);
    int rc = 0;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    if (!tensors) { fprintf(stderr, "safeinfer: out of memory\n"); si_model_free(m); return 3 + SI_ERR_NO_MEM; }
    /* inputs: from --input, else random */
    for (int i = 0; i < n_inputs; i++) {
        char key[256];
        const char *val;
        if (split_kv(inputs[i], key, sizeof key, &val)) { fprintf(stderr, "safeinfer: bad --input '%s' (expected NAME=FILE.npy or NAME=random[:SEED])\n", inputs[i]); rc = EXIT_USAGE; goto out; }
        int idx = si_model_input_index(m, key);
        if (idx < 0) { fprintf(stderr, "safeinfer: --input: the model has no input named '%s'\n", key); rc = EXIT_USAGE; goto out; }
        if (strncmp(val, "random", 6) != 0) {
            if ((s = si_tensor_read_npy(val, &tensors[idx]))) { rc = fail_status(s, "--input"); goto out; }
        }
    }
    for (int i = 0; i < nin; i++) {
        if (tensors[i]) continue;
        si_value_info info;
        if ((s = si_model_input_info(m, i, &info))) { rc = fail_status(s, "input"); goto out; }
        uint64_t seed = 0;
        for (int k = 0; k < n_inputs; k++) { /* random:SEED for this input? */
            char key[256];
            const char *val;
            if (!split_kv(inputs[k], key, sizeof key, &val) && !strcmp(key, info.name) && !strncmp(val, "random:", 7)) {
                int64_t sv;
                if (!parse_i64(val + 7, &sv)) { fprintf(stderr, "safeinfer: bad seed in --input %s\n", inputs[k]); rc = EXIT_USAGE; goto out; }
                seed = (uint64_t)sv;
            }
        }
        if (info.ndim < 0) { fprintf(stderr, "safeinfer: input '%s' has unknown rank; give it with --shape %s=DIMS\n", info.name, info.name); rc = EXIT_USAGE; goto out; }
        for (int d = 0; d < info.ndim; d++)
            if (info.dims[d] < 0) {
                fprintf(stderr, "safeinfer: input '%s' dimension %d ('%s') is not fixed; use --shape %s=N or --shape %s=DIMS\n",
                        info.name, d, info.dim_names[d] ? info.dim_names[d] : "?", info.dim_names[d] ? info.dim_names[d] : "DIM", info.name);
                rc = EXIT_USAGE;
                goto out;
            }
        if ((s = si_tensor_create(info.dtype, info.ndim, info.dims, &tensors[i]))) { rc = fail_status(s, "input"); goto out; }
        fill_random(tensors[i], seed + (uint64_t)i);
    }
    if ((s = si_config_create(&cfg)) || (devices && (s = si_config_set(cfg, "devices", devices)))) { rc = fail_status(s, "config"); goto out; }
    double t0 = now_ms();
    if ((s = si_compile(m, cfg, &cm))) { rc = fail_status(s, "compile"); goto out; }
    double t1 = now_ms();
    if ((s = si_request_create(cm, &rq))) { rc = fail_status(s, "request"); goto out; }
    for (int i = 0; i < nin; i++)
        if ((s = si_request_set_input(rq, i, tensors[i]))) { rc = fail_status(s, "input"); goto out; }
    double best = INFINITY, total = 0;
    for (long it = 0; it < repeat; it++) {
        double a = now_ms();
        if ((s = si_request_infer(rq))) { rc = fail_status(s, "infer"); goto out; }
        double d = now_ms() - a;
        total += d;
        best = fmin(best, d);
    }
    printf("model %s on %s: compile %.1f ms, inference %.2f ms (mean of %ld, best %.2f ms)\n", model_path,
           si_compiled_devices(cm), t1 - t0, total / (double)repeat, repeat, best);
    for (int k = 0; k < si_compiled_num_outputs(cm); k++) {
        si_tensor *o;
        if ((s = si_request_get_output(rq, k, &o))) { rc = fail_status(s, "output"); goto out; }
        const char *name = si_compiled_output_name(cm, k);
        print_summary(name, o);
        if (outdir) {
            char path[4096], safe[256];
            snprintf(safe, sizeof safe, "%s", name);
            for (char *c = safe; *c; c++)
                if (*c == '/' || *c == '\\' || *c == ':') *c = '_';
            mkdir(outdir, 0777);
            snprintf(path, sizeof path, "%s/%s.npy", outdir, safe);
            if ((s = si_tensor_write_npy(o, path))) { rc = fail_status(s, "write"); goto out; }
        }
    }
out:
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    for (int i = 0; i < nin; i++) si_tensor_free(tensors[i]);
    free(tensors);
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
    if (argc != 1) { usage(stderr); return EXIT_USAGE; }
    si_model *m;
    si_status s = si_model_load(argv[0], &m);
    if (s) return fail_status(s, "load");
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
    si_model_free(m);
    return 0;
}

// --- check-onnx ---------------------------------------------------------------------------------------------

typedef struct checker {
    const char *devices;
    double rtol, atol;
    regex_t re;
    bool has_re;
    FILE *json;
    int passed, failed, skipped, json_count;
} checker;

typedef enum { R_PASS, R_FAIL, R_SKIP } result;

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static bool dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void json_str(FILE *f, const char *s) {
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
        if (err > ck->atol + ck->rtol * fabs(e)) {
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
    si_status s = si_model_load(model_path, &m);
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
    if ((s = si_request_infer(rq))) { snprintf(msg, mn, "infer: %s (%s)", si_last_error(), si_status_str(s)); goto out; }
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
    for (int i = 0; made && m && i < si_model_num_inputs(m); i++) si_tensor_free(made[i]);
    free(made);
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
static si_status tlist_read(tlist *l, const char *dir, const char *prefix) {
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
        si_status s = si_tensor_read_pb(p, &l->t[k], &l->names[k]);
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
        si_status s = tlist_read(&in, sd, "input");
        if (!s) s = tlist_read(&out, sd, "output");
        else memset(&out, 0, sizeof out);
        result r;
        if (s) {
            /* an input we cannot represent: the model load tells whether it is unsupported */
            si_model *m;
            si_status ls = si_model_load(model, &m);
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
    si_status s = si_tensor_read_pb(exp_path, &exp, &exp_name);
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
        if (selected(ck, base)) check_case_dir(ck, path, base);
        return;
    }
    if (is_light_model(path)) {
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
        names[n++] = strdup(e->d_name);
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

static int cmd_check(int argc, char **argv) {
    checker ck = {.rtol = 1e-3, .atol = 1e-7};
    const char *paths[256];
    int np = 0;
    const char *json_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--devices") && has_val) ck.devices = argv[++i];
        else if (!strcmp(a, "--filter") && has_val) {
            if (regcomp(&ck.re, argv[++i], REG_EXTENDED | REG_NOSUB)) { fprintf(stderr, "safeinfer: bad --filter regex '%s'\n", argv[i]); return EXIT_USAGE; }
            ck.has_re = true;
        } else if (!strcmp(a, "--json") && has_val) json_path = argv[++i];
        else if (!strcmp(a, "--rtol") && has_val) ck.rtol = atof(argv[++i]);
        else if (!strcmp(a, "--atol") && has_val) ck.atol = atof(argv[++i]);
        else if (a[0] == '-') { fprintf(stderr, "safeinfer check-onnx: unknown option '%s'\n", a); usage(stderr); return EXIT_USAGE; }
        else if (np < 256) paths[np++] = a;
    }
    if (!np) { usage(stderr); return EXIT_USAGE; }
    if (json_path) {
        if (!(ck.json = fopen(json_path, "w"))) { fprintf(stderr, "safeinfer: cannot write %s: %s\n", json_path, strerror(errno)); return 3 + SI_ERR_IO; }
        fprintf(ck.json, "{\"devices\": ");
        json_str(ck.json, ck.devices ? ck.devices : "REF");
        fprintf(ck.json, ", \"cases\": [");
    }
    for (int i = 0; i < np; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s", paths[i]);
        size_t l = strlen(p);
        while (l > 1 && p[l - 1] == '/') p[--l] = 0;
        check_path(&ck, p, 0);
    }
    if (ck.json) {
        fprintf(ck.json, "\n], \"passed\": %d, \"failed\": %d, \"skipped\": %d}\n", ck.passed, ck.failed, ck.skipped);
        fclose(ck.json);
    }
    if (ck.has_re) regfree(&ck.re);
    printf("%d passed, %d failed, %d skipped\n", ck.passed, ck.failed, ck.skipped);
    return ck.failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "check-onnx")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    fprintf(stderr, "safeinfer: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
