/*
 * signal.c — discrete Fourier transforms: DFT (opset 17, axis an attribute; opset 20, axis an input) and STFT.
 *
 * A signal's last dimension holds one (real) or two (real, imaginary) values. The transforms are computed
 * directly (O(n^2) per signal, in double, with a table of n twiddle factors) — the reference kernel, not a fast
 * one; a node whose work would exceed SI_REF_MAX_WORK products (about a second) is refused by name rather than run
 * for minutes (2^34 let a fuzzed DFT of length 54,076 run past the fuzzer's 20 s timeout).
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

/* The work buffers of a length-n DFT: cos / sin of 2*pi*j/n for j in [0, n), and the signal's real and
 * imaginary parts (one allocation, freed with si_free(w->cs)). */
typedef struct dft_work {
    double *cs, *sn, *re, *im;
} dft_work;

static si_result dft_work_new(const si_kctx *c, int64_t n, dft_work *w) {
    *w = (dft_work){0};
    if (!(w->cs = si_malloc(sizeof(double) * (size_t)n * 4))) return si_op_nomem(c);
    w->sn = w->cs + n, w->re = w->sn + n, w->im = w->re + n;
    for (int64_t j = 0; j < n; j++) {
        double a = 2.0 * M_PI * (double)j / (double)n;
        w->cs[j] = cos(a);
        w->sn[j] = sin(a);
    }
    return SI_OK;
}

/* Bin k of the DFT of w's signal (sign -1: forward, +1: inverse, unscaled) into *sr, *si. */
static void dft_bin(const dft_work *w, int64_t n, int64_t k, double sign, double *sr, double *si) {
    double r = 0, i = 0;
    const int64_t step = k % n;
    for (int64_t j = 0, t = 0; j < n; j++, t = t + step >= n ? t + step - n : t + step) { /* t = k j mod n */
        double wr = w->cs[t], wi = sign * w->sn[t];
        r += w->re[j] * wr - w->im[j] * wi;
        i += w->re[j] * wi + w->im[j] * wr;
    }
    *sr = r, *si = i;
}

/* =========================================================================================================
 * DFT
 */

typedef struct dft_plan {
    int axis;          /* in [0, rank - 2] */
    int64_t len;       /* input length along the axis */
    int64_t n;         /* transform length */
    int64_t out_len;   /* output length along the axis */
    int out_c;         /* 1 (real output: inverse of a one-sided spectrum) or 2 */
    bool inverse, onesided;
} dft_plan;

static si_result dft_prep(const si_kctx *c, dft_plan *p) {
    const si_tensor *x;
    si_result s = si_input0(c, SI_T_FLOATS, "input", &x);
    if (s) return s;
    const int r = x->ndim;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 2 and a last dimension of 1 (real) or 2 (complex), got rank %d", r);
    int64_t axis = c->opset >= 20 ? -2 : 1;
    if (c->opset >= 20) {
        const si_tensor *a = si_in_nonempty(c, 2);
        if (a) {
            if ((s = si_need_input(c, 2, true)) || (s = si_tensor_scalar_i64(c, a, "input 'axis'", &axis))) return s;
        }
    } else {
        axis = si_attr_int(c->node, "axis", 1);
    }
    if (axis < -r || axis > r - 2 || axis == -1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "axis %lld is out of range for an input of rank %d (the last dimension holds the complex parts)",
                         (long long)axis, r);
    p->axis = (int)(axis < 0 ? axis + r : axis);
    p->len = x->dims[p->axis];
    p->inverse = si_attr_int(c->node, "inverse", 0) != 0;
    p->onesided = si_attr_int(c->node, "onesided", 0) != 0;
    int64_t n = p->inverse && p->onesided ? 2 * (p->len - 1) : p->len;
    const si_tensor *dl = si_in_nonempty(c, 1);
    if (dl) {
        if ((s = si_need_input(c, 1, true)) || (s = si_tensor_scalar_i64(c, dl, "input 'dft_length'", &n))) return s;
    }
    if (n < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "the transform length %lld must be positive", (long long)n);
    p->n = n;
    p->out_len = !p->inverse && p->onesided ? n / 2 + 1 : n;
    p->out_c = p->inverse && p->onesided ? 1 : 2;
    int64_t work = si_prod(x->dims, 0, r - 1) / (p->len ? p->len : 1);
    if (work > 0 && (n > SI_REF_MAX_WORK / work || p->out_len > SI_REF_MAX_WORK / (work * n)))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "a DFT of length %lld over %lld signals is too large for the reference kernel (O(n^2))",
                         (long long)n, (long long)work);
    return SI_OK;
}

SI_OP_PLANNED(dft_infer, dft_plan, p, dft_prep) {
    const si_tensor *x = c->in[0];
    int64_t dims[SI_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[p->axis] = p->out_len;
    dims[x->ndim - 1] = p->out_c;
    return si_set_out(c, 0, x->dtype, x->ndim, dims);
}

SI_OP_PLANNED(dft_run, dft_plan, p, dft_prep) {
    si_tensor *y;
    si_result s = si_run_begin(c, &y);
    if (s || !y) return s;
    const si_tensor *x = c->in[0];
    const int r = x->ndim;
    const int cin = (int)x->dims[r - 1];
    const int64_t outer = si_prod(x->dims, 0, p->axis), inner = si_prod(x->dims, p->axis + 1, r - 1), n = p->n;
    const int64_t m = SI_MIN(p->len, p->inverse && p->onesided ? n / 2 + 1 : n); /* input values used */
    dft_work dw;
    if ((s = dft_work_new(c, n, &dw))) return s;
    double *re = dw.re, *im = dw.im;
    const double sign = p->inverse ? 1.0 : -1.0, scale = p->inverse ? 1.0 / (double)n : 1.0;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            /* the signal (or, for the inverse of a one-sided spectrum, its Hermitian completion), zero-padded */
            for (int64_t j = 0; j < n; j++) re[j] = im[j] = 0;
            for (int64_t j = 0; j < m; j++) {
                int64_t off = ((o * p->len + j) * inner + i) * cin;
                re[j] = si_load_f64(x->dtype, x->data, off);
                im[j] = cin == 2 ? si_load_f64(x->dtype, x->data, off + 1) : 0;
            }
            if (p->inverse && p->onesided)
                for (int64_t k = m; k < n; k++)
                    if (n - k < m) re[k] = re[n - k], im[k] = -im[n - k];
            for (int64_t k = 0; k < p->out_len; k++) {
                double sr, si;
                dft_bin(&dw, n, k, sign, &sr, &si);
                int64_t off = ((o * p->out_len + k) * inner + i) * p->out_c;
                si_store_f64(y->dtype, y->data, off, sr * scale);
                if (p->out_c == 2) si_store_f64(y->dtype, y->data, off + 1, si * scale);
            }
        }
    }
    si_free(dw.cs);
    return SI_OK;
}

/* =========================================================================================================
 * STFT
 */

typedef struct stft_plan {
    int64_t batch, len, step, flen, frames, bins;
    int cin;
} stft_plan;

static si_result stft_prep(const si_kctx *c, stft_plan *p) {
    const si_tensor *x;
    si_result s = si_input0(c, SI_T_FLOATS, "signal", &x);
    if (s || (s = si_need_input(c, 1, true))) return s;
    if (x->ndim != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return si_op_err(c, SI_ERR_INVALID_ARG, "signal must be [batch, length, 1 or 2], got rank %d", x->ndim);
    p->batch = x->dims[0];
    p->len = x->dims[1];
    p->cin = (int)x->dims[2];
    if ((s = si_tensor_scalar_i64(c, c->in[1], "input 'frame_step'", &p->step))) return s;
    if (p->step < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "frame_step %lld must be positive", (long long)p->step);
    const si_tensor *w = si_in_nonempty(c, 2), *fl = si_in_nonempty(c, 3);
    p->flen = -1;
    if (fl) {
        if ((s = si_need_input(c, 3, true)) || (s = si_tensor_scalar_i64(c, fl, "input 'frame_length'", &p->flen))) return s;
    }
    if (w) {
        if ((s = si_need_input(c, 2, false))) return s;
        if ((s = si_same_type(c, x, w, "window"))) return s;
        if (w->ndim != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "window must be 1-D, got rank %d", w->ndim);
        if (p->flen >= 0 && p->flen != w->dims[0])
            return si_op_err(c, SI_ERR_INVALID_ARG, "frame_length %lld differs from the window's length %lld", (long long)p->flen,
                             (long long)w->dims[0]);
        p->flen = w->dims[0];
    }
    if (p->flen < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "needs a window or a frame_length");
    if (p->flen < 1 || p->flen > p->len)
        return si_op_err(c, SI_ERR_INVALID_ARG, "frame_length %lld must be in [1, %lld] (the signal's length)", (long long)p->flen,
                         (long long)p->len);
    bool onesided = si_attr_int(c->node, "onesided", 1) != 0;
    if (onesided && p->cin == 2) return si_op_err(c, SI_ERR_INVALID_ARG, "onesided needs a real signal");
    p->frames = (p->len - p->flen) / p->step + 1;
    p->bins = onesided ? p->flen / 2 + 1 : p->flen;
    int64_t work = p->batch * p->frames;
    if (work > 0 && (p->flen > SI_REF_MAX_WORK / work || p->bins > SI_REF_MAX_WORK / (work * p->flen)))
        return si_op_err(c, SI_ERR_UNSUPPORTED, "an STFT of %lld frames of %lld is too large for the reference kernel (O(n^2))",
                         (long long)work, (long long)p->flen);
    return SI_OK;
}

SI_OP_PLANNED(stft_infer, stft_plan, p, stft_prep) {
    int64_t dims[4] = {p->batch, p->frames, p->bins, 2};
    return si_set_out(c, 0, c->in[0]->dtype, 4, dims);
}

SI_OP_PLANNED(stft_run, stft_plan, p, stft_prep) {
    si_tensor *y;
    si_result s = si_run_begin(c, &y);
    if (s || !y) return s;
    const si_tensor *x = c->in[0], *w = si_in_nonempty(c, 2);
    const int64_t n = p->flen;
    dft_work dw;
    if ((s = dft_work_new(c, n, &dw))) return s;
    double *re = dw.re, *im = dw.im;
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t f = 0; f < p->frames; f++) {
            for (int64_t j = 0; j < n; j++) {
                int64_t off = (b * p->len + f * p->step + j) * p->cin;
                double wv = w ? si_load_f64(w->dtype, w->data, j) : 1.0;
                re[j] = wv * si_load_f64(x->dtype, x->data, off);
                im[j] = p->cin == 2 ? wv * si_load_f64(x->dtype, x->data, off + 1) : 0;
            }
            for (int64_t k = 0; k < p->bins; k++) {
                double sr, si;
                dft_bin(&dw, n, k, -1.0, &sr, &si);
                int64_t off = ((b * p->frames + f) * p->bins + k) * 2;
                si_store_f64(y->dtype, y->data, off, sr);
                si_store_f64(y->dtype, y->data, off + 1, si);
            }
        }
    }
    si_free(dw.cs);
    return SI_OK;
}

/* =========================================================================================================
 * The table
 */

static const si_op_def defs[] = {
    SI_OP_VERSION(DFT, 0, 19, SI_T_FLOATS, dft_infer, dft_run),
    SI_OP_VERSION(DFT, 20, 0, SI_T_FLOATS, dft_infer, dft_run),
    SI_OP_DEF(STFT, SI_T_FLOATS, stft_infer, stft_run),
};

SI_OP_FAMILY(signal, defs);
