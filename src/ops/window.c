/*
 * window.c — reference kernels for the signal windows HannWindow, HammingWindow and BlackmanWindow and for
 * MelWeightMatrix (in double, stored as attribute output_datatype, float32 by default).
 */
#include "ops/ops.h"

#include <math.h>

#define WIN_MAX_LEN ((int64_t)1 << 28) /* longest window / largest matrix dimension accepted */

enum { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN };

static si_result win_dtype(si_kctx *c, si_dtype *dt) {
    const int64_t v = si_attr_int(c->node, "output_datatype", SI_F32);
    const uint32_t ok = SI_T_NUMERIC;
    if (v < 0 || v > 31 || !(ok & SI_T((si_dtype)v)) || !si_dtype_size((si_dtype)v))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "attribute 'output_datatype' %lld is not a supported numeric type", (long long)v);
    *dt = (si_dtype)v;
    return SI_OK;
}

/* A scalar integer input's value; *known false while it is not known (compile time). */
static si_result win_scalar(si_kctx *c, int i, const char *what, int64_t *v, bool *known) {
    si_result s = si_need_input(c, i, false);
    if (s) return s;
    const si_tensor *t = c->in[i];
    if ((s = si_check_type(c, t->dtype, SI_T(SI_I32) | SI_T(SI_I64), what))) return s;
    *known = si_has_values(t);
    if (!*known) return SI_OK;
    return si_tensor_scalar_i64(c, t, what, v);
}

static si_result win_len(si_kctx *c, int64_t *n, bool *known) {
    si_result s = win_scalar(c, 0, "input 'size'", n, known);
    if (s || !*known) return s;
    if (*n < 0 || *n > WIN_MAX_LEN)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'size' is %lld, expected 0 to %lld", (long long)*n, (long long)WIN_MAX_LEN);
    return SI_OK;
}

static si_result win_infer(si_kctx *c) {
    si_dtype dt = SI_F32;
    int64_t n = 0;
    bool known = false;
    si_result s = win_dtype(c, &dt);
    if (s || (s = win_len(c, &n, &known))) return s;
    if (!known) return si_set_out_unknown(c, 0, dt, 1);
    return si_set_out(c, 0, dt, 1, &n);
}

static si_result win_run(si_kctx *c) {
    const int kind = si_op_arg(c); /* WIN_HANN, WIN_HAMMING or WIN_BLACKMAN */
    si_result s = win_infer(c);
    si_tensor *y;
    if (s || (s = si_run_begin(c, &y)) || !y) return s;
    const int64_t n = y->dims[0];
    const bool periodic = si_attr_int(c->node, "periodic", 1) != 0;
    const double N = periodic ? (double)n : (double)(n - 1), pi = 3.14159265358979323846;
    double *w = si_malloc(sizeof(double) * (size_t)n);
    if (!w) return si_op_nomem(c);
    for (int64_t i = 0; i < n; i++) {
        const double x = N > 0 ? 2.0 * pi * (double)i / N : 0.0;
        switch (kind) {
        case WIN_HANN: w[i] = 0.5 - 0.5 * cos(x); break;
        case WIN_HAMMING: w[i] = 25.0 / 46.0 - (1.0 - 25.0 / 46.0) * cos(x); break;
        default: w[i] = 0.42 - 0.5 * cos(x) + 0.08 * cos(2.0 * x); break;
        }
    }
    si_tensor_from_f64(y, w);
    si_free(w);
    return SI_OK;
}

// --- MelWeightMatrix --------------------------------------------------------------------------------------

typedef struct mel_plan {
    int64_t bins, dft, rate;
    double lo, hi;
    bool known;
} mel_plan;

static si_result mel_plan_of(si_kctx *c, mel_plan *p) {
    bool k0 = false, k1 = false, k2 = false;
    si_result s = win_scalar(c, 0, "input 'num_mel_bins'", &p->bins, &k0);
    if (s || (s = win_scalar(c, 1, "input 'dft_length'", &p->dft, &k1)) ||
        (s = win_scalar(c, 2, "input 'sample_rate'", &p->rate, &k2)) || (s = si_need_input(c, 3, false)) ||
        (s = si_need_input(c, 4, false)))
        return s;
    for (int i = 3; i < 5; i++)
        if ((s = si_check_type(c, c->in[i]->dtype, SI_T_FLOATS, i == 3 ? "input 'lower_edge_hertz'" : "input 'upper_edge_hertz'")))
            return s;
    p->known = k0 && k1 && k2 && si_has_values(c->in[3]) && si_has_values(c->in[4]);
    if (!p->known) return SI_OK;
    if (si_count(c->in[3]) != 1 || si_count(c->in[4]) != 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "lower_edge_hertz and upper_edge_hertz must be scalars");
    p->lo = si_load_f64(c->in[3]->dtype, c->in[3]->data, 0);
    p->hi = si_load_f64(c->in[4]->dtype, c->in[4]->data, 0);
    if (p->bins < 1 || p->bins > 65536 || p->dft < 1 || p->dft > WIN_MAX_LEN || p->rate < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "num_mel_bins %lld, dft_length %lld or sample_rate %lld is out of range",
                         (long long)p->bins, (long long)p->dft, (long long)p->rate);
    if (!(p->lo >= 0) || !(p->hi > p->lo) || !isfinite(p->hi))
        return si_op_err(c, SI_ERR_INVALID_ARG, "the edges must satisfy 0 <= lower_edge_hertz (%g) < upper_edge_hertz (%g)",
                         p->lo, p->hi);
    return SI_OK;
}

static si_result mel_infer(si_kctx *c) {
    si_dtype dt = SI_F32;
    mel_plan p;
    si_result s = win_dtype(c, &dt);
    if (s || (s = mel_plan_of(c, &p))) return s;
    if (!p.known) return si_set_out_unknown(c, 0, dt, 2);
    const int64_t od[2] = {p.dft / 2 + 1, p.bins};
    return si_set_out(c, 0, dt, 2, od);
}

/* Triangular filters between mel-spaced points (num_mel_bins + 2 of them, mapped back to DFT bins). */
static si_result mel_run(si_kctx *c) {
    si_result s = mel_infer(c);
    if (s || (s = si_run_ready(c))) return s;
    mel_plan p;
    if ((s = mel_plan_of(c, &p))) return s;
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    const int64_t nspec = p.dft / 2 + 1, M = p.bins;
    double *w = si_calloc((size_t)(nspec * M), sizeof(double));
    int64_t *f = si_malloc(sizeof(int64_t) * (size_t)(M + 2));
    if (!w || !f) {
        SI_FREE_ALL(w, f);
        return si_op_nomem(c);
    }
    const double lmel = 2595.0 * log10(1.0 + p.lo / 700.0), hmel = 2595.0 * log10(1.0 + p.hi / 700.0);
    const double step = (hmel - lmel) / (double)(M + 2);
    for (int64_t i = 0; i < M + 2; i++) {
        const double hz = 700.0 * (pow(10.0, ((double)i * step + lmel) / 2595.0) - 1.0);
        const double b = floor((double)(p.dft + 1) * hz / (double)p.rate);
        f[i] = b < 0 ? 0 : b >= (double)nspec ? nspec - 1 : (int64_t)b;
    }
    for (int64_t i = 0; i < M; i++) {
        const int64_t l = f[i], ctr = f[i + 1], r = f[i + 2];
        if (ctr == l)
            w[ctr * M + i] = 1.0;
        else
            for (int64_t j = l; j <= ctr; j++) w[j * M + i] = (double)(j - l) / (double)(ctr - l);
        for (int64_t j = ctr; j < r; j++) w[j * M + i] = (double)(r - j) / (double)(r - ctr);
    }
    si_tensor_from_f64(y, w);
    SI_FREE_ALL(w, f);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF_ARG(HANN_WINDOW, SI_T(SI_I32) | SI_T(SI_I64), win_infer, win_run, WIN_HANN),
    SI_OP_DEF_ARG(HAMMING_WINDOW, SI_T(SI_I32) | SI_T(SI_I64), win_infer, win_run, WIN_HAMMING),
    SI_OP_DEF_ARG(BLACKMAN_WINDOW, SI_T(SI_I32) | SI_T(SI_I64), win_infer, win_run, WIN_BLACKMAN),
    SI_OP_DEF(MEL_WEIGHT_MATRIX, SI_T(SI_I32) | SI_T(SI_I64), mel_infer, mel_run),
};

SI_OP_FAMILY_PARTIAL(window, defs);
