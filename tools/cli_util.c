/*
 * cli_util.c — shared helpers of the CLI commands: parsing, random inputs, element access, summaries.
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

int fail_status(si_result s, const char *what) {
    fprintf(stderr, "safeinfer: %s: %s (%s)\n", what, si_last_error(), si_result_str(s));
    return 3 + (int)s;
}

double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *v = x;
    return true;
}

/* "1x3x224x224" -> dims; "" or "scalar" -> rank 0 */
bool parse_dims(const char *s, int *ndim, int64_t *dims) {
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

uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint16_t f32_to_f16_bits(float f) {
    /* simple conversion for random inputs in [-1, 1): normal numbers only */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (e <= 0) return (uint16_t)sign;
    return (uint16_t)(sign | ((uint32_t)e << 10) | ((x & 0x7fffff) >> 13));
}

/* Random values: floats uniform in [-1, 1), integers in [0, 10), bools 0/1. */
void fill_random(si_tensor *t, uint64_t seed) {
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

/* The value of a narrow float code (safeinfer.h: one byte per element): ebits/mbits/bias of the format; kind 0:
 * NaN is all ones (e4m3fn), 1: NaN is 0x80 (fnuz), 2: IEEE (e5m2), 3: no NaN (e2m1). */
static double minifloat(uint8_t code, int ebits, int mbits, int bias, int kind) {
    const int nb = 1 + ebits + mbits;
    code &= (uint8_t)((1u << nb) - 1);
    const unsigned sign = code >> (nb - 1), mag = code & ((1u << (nb - 1)) - 1), e = mag >> mbits, m = mag & ((1u << mbits) - 1);
    if ((kind == 1 && code == 0x80) || (kind == 0 && mag == 0x7f)) return NAN;
    if (kind == 2 && e == (1u << ebits) - 1) return m ? NAN : sign ? -INFINITY : INFINITY;
    double v = e == 0 ? ldexp(m, 1 - bias - mbits) : ldexp(m | (1u << mbits), (int)e - bias - mbits);
    return sign ? -v : v;
}

double elem(const si_tensor *t, int64_t i) {
    const void *p = si_tensor_data(t);
    const uint8_t c8 = si_tensor_dtype(t) >= SI_F8E4M3FN ? ((const uint8_t *)p)[i] : 0;
    switch (si_tensor_dtype(t)) {
    case SI_F8E4M3FN: return minifloat(c8, 4, 3, 7, 0);
    case SI_F8E4M3FNUZ: return minifloat(c8, 4, 3, 8, 1);
    case SI_F8E5M2: return minifloat(c8, 5, 2, 15, 2);
    case SI_F8E5M2FNUZ: return minifloat(c8, 5, 2, 16, 1);
    case SI_F4E2M1: return minifloat(c8, 2, 1, 1, 3);
    case SI_F8E8M0: return c8 == 0xff ? NAN : ldexp(1.0, (int)c8 - 127);
    case SI_U4: return c8 & 0xf;
    case SI_U2: return c8 & 0x3;
    case SI_I4: return (c8 & 0x8) ? (int)(c8 & 0xf) - 16 : (int)(c8 & 0xf);
    case SI_I2: return (c8 & 0x2) ? (int)(c8 & 0x3) - 4 : (int)(c8 & 0x3);
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

int64_t elem_i64(const si_tensor *t, int64_t i) {
    const void *p = si_tensor_data(t);
    switch (si_tensor_dtype(t)) {
    case SI_I64: return ((const int64_t *)p)[i];
    case SI_U64: return (int64_t)((const uint64_t *)p)[i];
    default: return (int64_t)elem(t, i);
    }
}

bool is_float(si_dtype t) {
    return t == SI_F32 || t == SI_F64 || t == SI_F16 || t == SI_BF16 || t == SI_F8E4M3FN || t == SI_F8E4M3FNUZ ||
           t == SI_F8E5M2 || t == SI_F8E5M2FNUZ || t == SI_F4E2M1 || t == SI_F8E8M0;
}

void shape_str(const si_tensor *t, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < si_tensor_ndim(t) && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ",%" PRId64 : "%" PRId64, si_tensor_dims(t)[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

// --- run --------------------------------------------------------------------------------------------------


int split_kv(const char *arg, char *key, size_t kn, const char **val) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= kn) return -1;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = 0;
    *val = eq + 1;
    return 0;
}

si_result apply_shape(si_model *m, const char *arg) {
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

void print_summary(const char *name, const si_tensor *t) {
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


void free_inputs(si_tensor **tensors, int n) {
    for (int i = 0; tensors && i < n; i++) si_tensor_free(tensors[i]);
    free(tensors);
}

int make_inputs(si_model *m, const char *const *specs, int n_specs, si_tensor **tensors) {
    int nin = si_model_num_inputs(m);
    si_result s;
    /* inputs: from --input, else random */
    for (int i = 0; i < n_specs; i++) {
        char key[256];
        const char *val;
        if (split_kv(specs[i], key, sizeof key, &val)) { fprintf(stderr, "safeinfer: bad --input '%s' (expected NAME=FILE.npy or NAME=random[:SEED])\n", specs[i]); return EXIT_USAGE; }
        int idx = si_model_input_index(m, key);
        if (idx < 0) { fprintf(stderr, "safeinfer: --input: the model has no input named '%s'\n", key); return EXIT_USAGE; }
        if (strncmp(val, "random", 6) != 0) {
            if ((s = si_tensor_read_npy(val, &tensors[idx]))) return fail_status(s, "--input");
        }
    }
    for (int i = 0; i < nin; i++) {
        if (tensors[i]) continue;
        si_value_info info;
        if ((s = si_model_input_info(m, i, &info))) return fail_status(s, "input");
        uint64_t seed = 0;
        for (int k = 0; k < n_specs; k++) { /* random:SEED for this input? */
            char key[256];
            const char *val;
            if (!split_kv(specs[k], key, sizeof key, &val) && !strcmp(key, info.name) && !strncmp(val, "random:", 7)) {
                int64_t sv;
                if (!parse_i64(val + 7, &sv)) { fprintf(stderr, "safeinfer: bad seed in --input %s\n", specs[k]); return EXIT_USAGE; }
                seed = (uint64_t)sv;
            }
        }
        if (info.ndim < 0) { fprintf(stderr, "safeinfer: input '%s' has unknown rank; give it with --shape %s=DIMS\n", info.name, info.name); return EXIT_USAGE; }
        for (int d = 0; d < info.ndim; d++)
            if (info.dims[d] < 0) {
                fprintf(stderr, "safeinfer: input '%s' dimension %d ('%s') is not fixed; use --shape %s=N or --shape %s=DIMS\n",
                        info.name, d, info.dim_names[d] ? info.dim_names[d] : "?", info.dim_names[d] ? info.dim_names[d] : "DIM", info.name);
                return EXIT_USAGE;
            }
        if ((s = si_tensor_create(info.dtype, info.ndim, info.dims, &tensors[i]))) return fail_status(s, "input");
        fill_random(tensors[i], seed + (uint64_t)i);
    }
    return 0;
}

int mkdir_p(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return (mkdir(buf, 0777) != 0 && errno != EEXIST) ? -1 : 0;
}

bool parse_tol(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0) {
        fprintf(stderr, "safeinfer: %s needs a number >= 0, not '%s'\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}
