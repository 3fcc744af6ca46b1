/*
 * signal.c — discrete Fourier transforms: DFT (opset 17, axis an attribute; opset 20, axis an input) and STFT.
 *
 * A signal's last dimension holds one (real) or two (real, imaginary) values. Each signal's whole spectrum is
 * computed in O(n log n), in double: a radix-2 FFT when its length is a power of two, else Bluestein's algorithm
 * (the DFT as a convolution with a chirp, done by radix-2 FFTs of twice the length or more); the bins the output
 * keeps are read from it. (It was the direct O(n^2) sum: a log-mel front end of 3,000 frames of 400 samples took
 * 480 million products.) A node whose work would still exceed SI_REF_MAX_WORK butterflies is refused by name
 * rather than run for minutes (a fuzzed length of 2^40).
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

/* A length-n transform in O(m log m): a radix-2 FFT when n is a power of two (m = n), else Bluestein's algorithm
 * (the DFT as a convolution with a chirp, done by radix-2 FFTs of a power of two m >= 2n - 1). Double precision.
 * One allocation (freed by fft_work_free). */
typedef struct fft_work {
    int64_t n, m;
    bool pow2;
    double sign;       /* -1 forward, +1 inverse */
    double *cs, *sn;   /* [m / 2]: cos / sin of 2 pi j / m */
    double *ar, *ai;   /* [m]: scratch (Bluestein) */
    double *br, *bi;   /* [m]: the FFT of the chirp filter (Bluestein) */
    double *chr, *chi; /* [n]: the chirp exp(sign i pi j^2 / n) (Bluestein) */
} fft_work;

static int64_t pow2_at_least(int64_t v) {
    int64_t m = 1;
    while (m < v) m *= 2;
    return m;
}

/* The butterflies of a length-n transform (m log2 m per FFT; Bluestein runs two), for the work bound; n is at most
 * INT64_MAX / 2 here and the result saturates. */
static int64_t fft_cost(int64_t n) {
    if (n > ((int64_t)1 << 40)) return INT64_MAX;
    const bool pow2 = (n & (n - 1)) == 0;
    const int64_t m = pow2 ? n : pow2_at_least(2 * n - 1);
    int64_t lg = 1;
    while (((int64_t)1 << lg) < m) lg++;
    return (pow2 ? 1 : 3) * m * lg;
}

/* In place, length w->m: sign -1 forward, +1 inverse (unscaled). */
static void fft2(const fft_work *w, double *re, double *im, double sign) {
    const int64_t m = w->m;
    for (int64_t i = 1, j = 0; i < m; i++) { /* bit reversal */
        int64_t bit = m >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j], re[j] = t;
            t = im[i], im[i] = im[j], im[j] = t;
        }
    }
    for (int64_t len = 2; len <= m; len *= 2) {
        const int64_t half = len / 2, step = m / len;
        for (int64_t i = 0; i < m; i += len)
            for (int64_t j = 0; j < half; j++) {
                const double wr = w->cs[j * step], wi = sign * w->sn[j * step];
                const int64_t u = i + j, v = u + half;
                const double tr = re[v] * wr - im[v] * wi, ti = re[v] * wi + im[v] * wr;
                re[v] = re[u] - tr, im[v] = im[u] - ti;
                re[u] += tr, im[u] += ti;
            }
    }
}

static void fft_work_free(fft_work *w) { si_free(w->cs); }

static si_result fft_work_new(const si_kctx *c, int64_t n, double sign, fft_work *w) {
    *w = (fft_work){.n = n, .pow2 = (n & (n - 1)) == 0, .sign = sign};
    w->m = w->pow2 ? n : pow2_at_least(2 * n - 1);
    const int64_t m = w->m, tw = SI_MAX(m / 2, (int64_t)1);
    if (!(w->cs = si_malloc(sizeof(double) * (size_t)(2 * tw + (w->pow2 ? 0 : 4 * m + 2 * n))))) return si_op_nomem(c);
    w->sn = w->cs + tw;
    for (int64_t j = 0; j < tw; j++) {
        const double a = 2.0 * M_PI * (double)j / (double)m;
        w->cs[j] = cos(a), w->sn[j] = sin(a);
    }
    if (w->pow2) return SI_OK;
    w->ar = w->sn + tw, w->ai = w->ar + m, w->br = w->ai + m, w->bi = w->br + m, w->chr = w->bi + m, w->chi = w->chr + n;
    for (int64_t j = 0; j < n; j++) { /* j^2 mod 2n keeps the angle exact for long signals */
        const double a = M_PI * (double)((j * j) % (2 * n)) / (double)n;
        w->chr[j] = cos(a), w->chi[j] = sign * sin(a);
    }
    for (int64_t t = 0; t < m; t++) w->br[t] = w->bi[t] = 0;
    for (int64_t t = 0; t < n; t++) { /* the filter conj(chirp) at offsets t and -t (mod m) */
        w->br[t] = w->chr[t], w->bi[t] = -w->chi[t];
        if (t) w->br[m - t] = w->chr[t], w->bi[m - t] = -w->chi[t];
    }
    fft2(w, w->br, w->bi, -1.0);
    return SI_OK;
}

/* The length-n transform (sign as given to fft_work_new; unscaled) of (re, im) in place. */
static void fft_run(const fft_work *w, double *re, double *im) {
    if (w->pow2) {
        fft2(w, re, im, w->sign);
        return;
    }
    const int64_t n = w->n, m = w->m;
    double *ar = w->ar, *ai = w->ai;
    for (int64_t j = 0; j < n; j++) ar[j] = re[j] * w->chr[j] - im[j] * w->chi[j], ai[j] = re[j] * w->chi[j] + im[j] * w->chr[j];
    for (int64_t j = n; j < m; j++) ar[j] = ai[j] = 0;
    fft2(w, ar, ai, -1.0);
    for (int64_t t = 0; t < m; t++) {
        const double r = ar[t] * w->br[t] - ai[t] * w->bi[t], i = ar[t] * w->bi[t] + ai[t] * w->br[t];
        ar[t] = r, ai[t] = i;
    }
    fft2(w, ar, ai, 1.0);
    const double inv = 1.0 / (double)m;
    for (int64_t k = 0; k < n; k++) {
        const double r = ar[k] * inv, i = ai[k] * inv;
        re[k] = r * w->chr[k] - i * w->chi[k], im[k] = r * w->chi[k] + i * w->chr[k];
    }
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
    if (work > 0 && fft_cost(n) > SI_REF_MAX_WORK / work)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "a DFT of length %lld over %lld signals is too large for the reference kernel",
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
    fft_work fw;
    const double sign = p->inverse ? 1.0 : -1.0, scale = p->inverse ? 1.0 / (double)n : 1.0;
    if ((s = fft_work_new(c, n, sign, &fw))) return s;
    double *re = si_malloc(sizeof(double) * 2 * (size_t)n), *im = re + n;
    if (!re) {
        fft_work_free(&fw);
        return si_op_nomem(c);
    }
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
            fft_run(&fw, re, im);
            for (int64_t k = 0; k < p->out_len; k++) {
                int64_t off = ((o * p->out_len + k) * inner + i) * p->out_c;
                si_store_f64(y->dtype, y->data, off, re[k] * scale);
                if (p->out_c == 2) si_store_f64(y->dtype, y->data, off + 1, im[k] * scale);
            }
        }
    }
    si_free(re);
    fft_work_free(&fw);
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
    if (work > 0 && fft_cost(p->flen) > SI_REF_MAX_WORK / work)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "an STFT of %lld frames of %lld is too large for the reference kernel",
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
    fft_work fw;
    if ((s = fft_work_new(c, n, -1.0, &fw))) return s;
    double *re = si_malloc(sizeof(double) * 2 * (size_t)n), *im = re + n;
    if (!re) {
        fft_work_free(&fw);
        return si_op_nomem(c);
    }
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t f = 0; f < p->frames; f++) {
            for (int64_t j = 0; j < n; j++) {
                int64_t off = (b * p->len + f * p->step + j) * p->cin;
                double wv = w ? si_load_f64(w->dtype, w->data, j) : 1.0;
                re[j] = wv * si_load_f64(x->dtype, x->data, off);
                im[j] = p->cin == 2 ? wv * si_load_f64(x->dtype, x->data, off + 1) : 0;
            }
            fft_run(&fw, re, im);
            for (int64_t k = 0; k < p->bins; k++) {
                int64_t off = ((b * p->frames + f) * p->bins + k) * 2;
                si_store_f64(y->dtype, y->data, off, re[k]);
                si_store_f64(y->dtype, y->data, off + 1, im[k]);
            }
        }
    }
    si_free(re);
    fft_work_free(&fw);
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
