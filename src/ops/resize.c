/*
 * resize.c — Resize and Upsample: the geometry every device shares (si_resize_prepare, si_resize_coord in
 * ops.h) and the reference kernel (separable interpolation taps per axis, computed in double).
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

/* Values of an integer or float tensor as doubles into a caller array of at most max entries. */
static si_result nn_read_doubles(const si_kctx *c, const si_tensor *t, int max, double *out, int *n, const char *what) {
    int64_t cnt = si_count(t);
    if (cnt > max)
        return si_op_err(c, SI_ERR_INVALID_ARG, "%s has %lld values, at most %d allowed", what, (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++) out[i] = si_load_f64(t->dtype, t->data, i);
    *n = (int)cnt;
    return SI_OK;
}

/* Compile time, scales or sizes not known: the resized axes' sizes are not known either. */
static si_result resize_values_unknown(si_resize *p) {
    for (int i = 0; i < p->naxes; i++) p->out[p->axes[i]] = SI_DIM_UNKNOWN;
    p->complete = false;
    return SI_OK;
}

si_result si_resize_prepare(si_kctx *c, si_resize_form form, si_resize *p) {
    const si_tensor *x;
    si_result st = si_input0(c, SI_T_ALL, "X", &x);
    if (st) return st;
    const int r = x->ndim;
    if (r < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank >= 1");
    p->rank = r;
    const bool legacy = form != SI_RESIZE_FULL; /* Upsample and Resize-10 */

    static const char *const modes[4] = {"nearest", "linear", "cubic", "bilinear"};
    int m = 0;
    if ((st = si_attr_choice(c, "mode", "nearest", modes, legacy ? 2 : 3, &m))) {
        if (!legacy || strcmp(si_attr_str(c->node, "mode", ""), "bilinear") != 0) return st;
        m = SI_RS_LINEAR; /* old Upsample spelling */
    }
    p->mode = m;
    if (legacy) {
        p->ctm = SI_CT_ASYMMETRIC;
        p->nearest = SI_NM_FLOOR;
        p->cubic_a = -0.75;
        p->extrap = 0;
        p->exclude_outside = false;
        p->antialias = false;
    } else {
        static const char *const ctms[7] = {"half_pixel",          "pytorch_half_pixel",   "align_corners",
                                            "asymmetric",          "tf_half_pixel_for_nn", "tf_crop_and_resize",
                                            "half_pixel_symmetric"};
        static const char *const nms[4] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
        if ((st = si_attr_choice(c, "coordinate_transformation_mode", "half_pixel", ctms, 7, &p->ctm)) ||
            (st = si_attr_choice(c, "nearest_mode", "round_prefer_floor", nms, 4, &p->nearest)))
            return st;
        p->cubic_a = si_attr_float(c->node, "cubic_coeff_a", -0.75f);
        p->extrap = si_attr_float(c->node, "extrapolation_value", 0.0f);
        p->exclude_outside = si_attr_int(c->node, "exclude_outside", 0) != 0;
        p->antialias = c->opset >= 18 && si_attr_int(c->node, "antialias", 0) != 0;
    }

    /* axes (opset 18) */
    int cnt = 0;
    const int64_t *ax = (!legacy && c->opset >= 18) ? si_attr_ints(c->node, "axes", &cnt) : NULL;
    bool seen[SI_MAX_DIMS] = {false};
    if (ax && cnt > 0) {
        if (cnt > r) return si_op_err(c, SI_ERR_INVALID_ARG, "axes has %d values for rank %d", cnt, r);
        for (int i = 0; i < cnt; i++) {
            if ((st = si_axis(c, ax[i], r, &p->axes[i]))) return st;
            if (seen[p->axes[i]]) return si_op_err(c, SI_ERR_INVALID_ARG, "axes contains %lld twice", (long long)ax[i]);
            seen[p->axes[i]] = true;
        }
        p->naxes = cnt;
    } else {
        for (int i = 0; i < r; i++) p->axes[i] = i;
        p->naxes = r;
    }
    p->complete = true;
    for (int d = 0; d < r; d++) {
        p->in[d] = p->out[d] = x->dims[d];
        p->scale[d] = 1.0;
        if (!si_dim_known(x->dims[d])) p->complete = false; /* compile time */
    }

    /* scales or sizes */
    double sv[SI_MAX_DIMS];
    int64_t zv[SI_MAX_DIMS];
    int ns = -1, nz = -1;
    if (form == SI_RESIZE_SCALES_ATTR) {
        const float *f = si_attr_floats(c->node, "scales", &cnt);
        if (!f) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute scales is required");
        if (cnt > SI_MAX_DIMS) cnt = SI_MAX_DIMS + 1;
        for (int i = 0; i < cnt && i < SI_MAX_DIMS; i++) sv[i] = f[i];
        ns = cnt;
    } else {
        const int si = legacy ? 1 : 2;
        const si_tensor *ts = legacy ? si_in(c, 1) : si_in_nonempty(c, 2);
        const si_tensor *tz = legacy ? NULL : si_in_nonempty(c, 3);
        /* compile time: an input whose length is not known may still turn out empty at run time */
        if (c->partial && ((ts && si_count(ts) < 0) || (tz && si_count(tz) < 0))) return resize_values_unknown(p);
        if (ts && tz) return si_op_err(c, SI_ERR_INVALID_ARG, "only one of scales and sizes may be given");
        if (!ts && !tz) return si_op_err(c, SI_ERR_INVALID_ARG, "one of scales and sizes is required");
        if (ts) {
            if ((st = si_need_input(c, si, false))) return st;
            if (!si_dtype_is_float(ts->dtype)) return si_op_err(c, SI_ERR_INVALID_ARG, "scales must be a float tensor");
            if (c->partial && !si_has_values(ts)) return resize_values_unknown(p);
            if ((st = si_need_input(c, si, true))) return st;
            if ((st = nn_read_doubles(c, ts, SI_MAX_DIMS, sv, &ns, "scales"))) return st;
        } else {
            if ((st = si_need_input(c, 3, false))) return st;
            if (c->partial && !si_has_values(tz)) return resize_values_unknown(p);
            if ((st = si_tensor_ints(c, tz, "sizes", zv, SI_MAX_DIMS, &nz))) return st;
        }
    }
    if (ns >= 0) {
        if (ns != p->naxes) return si_op_err(c, SI_ERR_INVALID_ARG, "scales has %d values, expected %d", ns, p->naxes);
        for (int i = 0; i < ns; i++) {
            const int d = p->axes[i];
            if (!(sv[i] > 0)) return si_op_err(c, SI_ERR_INVALID_ARG, "scales must be positive, got %g", sv[i]);
            p->scale[d] = sv[i];
            if (!si_dim_known(p->in[d])) { /* compile time */
                p->out[d] = sv[i] == 1.0 ? p->in[d] : SI_DIM_UNKNOWN;
                continue;
            }
            if (sv[i] * (double)p->in[d] > 4e18)
                return si_op_err(c, SI_ERR_INVALID_ARG, "scale %g makes dimension %d too large", sv[i], d);
            p->out[d] = (int64_t)floor(sv[i] * (double)p->in[d]);
        }
    } else {
        if (nz != p->naxes) return si_op_err(c, SI_ERR_INVALID_ARG, "sizes has %d values, expected %d", nz, p->naxes);
        for (int i = 0; i < nz; i++)
            if (zv[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "sizes must not be negative");
        static const char *const pols[3] = {"stretch", "not_larger", "not_smaller"};
        int pol = 0;
        if (!legacy && c->opset >= 18 && (st = si_attr_choice(c, "keep_aspect_ratio_policy", "stretch", pols, 3, &pol)))
            return st;
        bool in_known = true;
        for (int i = 0; i < nz; i++) in_known &= si_dim_known(p->in[p->axes[i]]);
        if (pol == 0) {
            for (int i = 0; i < nz; i++) {
                const int d = p->axes[i];
                p->out[d] = zv[i];
                p->scale[d] = p->in[d] > 0 ? (double)zv[i] / (double)p->in[d] : 1.0;
            }
        } else if (!in_known) { /* compile time: the common scale is not known */
            for (int i = 0; i < nz; i++) p->out[p->axes[i]] = SI_DIM_UNKNOWN;
        } else {
            double s = pol == 1 ? INFINITY : 0.0;
            for (int i = 0; i < nz; i++) {
                const int d = p->axes[i];
                const double v = p->in[d] > 0 ? (double)zv[i] / (double)p->in[d] : 1.0;
                s = pol == 1 ? SI_MIN(s, v) : SI_MAX(s, v);
            }
            for (int i = 0; i < nz; i++) {
                const int d = p->axes[i];
                p->scale[d] = s;
                p->out[d] = (int64_t)(s * (double)p->in[d] + 0.5);
            }
        }
    }
    for (int d = 0; d < r; d++) {
        p->roi0[d] = 0.0;
        p->roi1[d] = 1.0;
    }
    if (p->ctm == SI_CT_TF_CROP_AND_RESIZE) {
        const si_tensor *roi = si_in_nonempty(c, 1);
        if (roi && c->partial && !si_has_values(roi)) {
            p->complete = false; /* the crop box only moves the taps, not the output's shape */
        } else if (roi) {
            double rv[2 * SI_MAX_DIMS];
            int n = 0;
            if ((st = nn_read_doubles(c, roi, 2 * SI_MAX_DIMS, rv, &n, "roi"))) return st;
            if (n != 2 * p->naxes)
                return si_op_err(c, SI_ERR_INVALID_ARG, "roi has %d values, expected %d", n, 2 * p->naxes);
            for (int i = 0; i < p->naxes; i++) {
                p->roi0[p->axes[i]] = rv[i];
                p->roi1[p->axes[i]] = rv[p->naxes + i];
            }
        }
    }
    return SI_OK;
}

/* The geometry of the node, in the interface of its version (the definition's arg). */
static si_result resize_prep(si_kctx *c, si_resize *p) { return si_resize_prepare(c, si_resize_form_of(c->node), p); }

SI_OP_PLANNED(resize_infer, si_resize, p, resize_prep) {
    return si_set_out(c, 0, si_in(c, 0)->dtype, p->rank, p->out);
}

static double cubic_w(double x, double A) {
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
}

/* An axis the node does not resize maps each coordinate to itself (one tap), whatever the mode. */
static bool axis_identity(const si_resize *p, int d) {
    return p->in[d] == p->out[d] && p->scale[d] == 1.0 && p->ctm != SI_CT_TF_CROP_AND_RESIZE &&
        p->ctm != SI_CT_TF_HALF_PIXEL_FOR_NN;
}

/* The first tap's offset from the base index, and the tap count, for axis d. */
static int64_t taps_start(const si_resize *p, int d, int64_t *nt) {
    const double sa = SI_MIN(p->scale[d], 1.0); /* antialias kernel scale */
    int64_t start = 0;
    *nt = 1;
    if (axis_identity(p, d)) return 0;
    if (p->mode == SI_RS_LINEAR) {
        start = p->antialias ? (int64_t)floor(-1.0 / sa) + 1 : 0;
        *nt = 2 - 2 * start;
    } else if (p->mode == SI_RS_CUBIC) {
        start = p->antialias ? (int64_t)floor(-2.0 / sa) + 1 : -1;
        *nt = 2 - 2 * start;
    }
    return start;
}

int64_t si_resize_ntaps(const si_resize *p, int d) {
    int64_t nt;
    taps_start(p, d, &nt);
    return nt;
}

double si_resize_coord(const si_resize *p, int d, int64_t o, bool *outside) {
    const int64_t in = p->in[d], on = p->out[d];
    const double s = p->scale[d], outf = s * (double)in, roi0 = p->roi0[d], roi1 = p->roi1[d];
    double x;
    *outside = false;
    switch (p->ctm) {
    case SI_CT_PYTORCH_HALF_PIXEL: x = on > 1 ? (o + 0.5) / s - 0.5 : 0.0; break;
    case SI_CT_ALIGN_CORNERS: x = outf == 1.0 ? 0.0 : (double)o * (double)(in - 1) / (outf - 1.0); break;
    case SI_CT_ASYMMETRIC: x = (double)o / s; break;
    case SI_CT_TF_HALF_PIXEL_FOR_NN: x = (o + 0.5) / s; break;
    case SI_CT_HALF_PIXEL_SYMMETRIC: {
        const double adj = (double)on / outf, center = (double)in / 2.0;
        x = center * (1.0 - adj) + (o + 0.5) / s - 0.5;
        break;
    }
    case SI_CT_TF_CROP_AND_RESIZE:
        x = outf == 1.0 ? (roi1 - roi0) * (double)(in - 1) / 2.0
                        : (double)o * (roi1 - roi0) * (double)(in - 1) / (outf - 1.0);
        x += roi0 * (double)(in - 1);
        if (x < 0 || x > (double)(in - 1)) *outside = true;
        break;
    default: x = (o + 0.5) / s - 0.5; break;
    }
    return x;
}

void si_resize_taps(const si_resize *p, int d, int64_t o, int64_t *ix, double *w, bool *outside) {
    const int64_t in = p->in[d];
    const double sa = SI_MIN(p->scale[d], 1.0);
    int64_t nt;
    const int64_t start = taps_start(p, d, &nt);
    *outside = false;
    if (axis_identity(p, d)) {
        ix[0] = o;
        w[0] = 1.0;
        return;
    }
    const double x = si_resize_coord(p, d, o, outside);
    const double xf = floor(x);
    if (p->mode == SI_RS_NEAREST) {
        const double fr = x - xf;
        int64_t i = (int64_t)xf;
        if (fr != 0) {
            switch (p->nearest) {
            case SI_NM_ROUND_PREFER_CEIL: i += fr >= 0.5 ? 1 : 0; break;
            case SI_NM_FLOOR: break;
            case SI_NM_CEIL: i += 1; break;
            default: i += fr > 0.5 ? 1 : 0; break;
            }
        }
        ix[0] = SI_MAX((int64_t)0, SI_MIN(in - 1, i));
        w[0] = 1.0;
        return;
    }
    /* the neighbours left of x are preferred: ratio in (0, 1] */
    int64_t base;
    double ratio;
    if (x == xf) {
        base = (int64_t)xf - 1;
        ratio = 1.0;
    } else {
        base = (int64_t)xf;
        ratio = x - xf;
    }
    double sum = 0;
    for (int64_t k = 0; k < nt; k++) {
        const int64_t off = start + k;
        double v;
        if (p->mode == SI_RS_LINEAR) {
            v = p->antialias ? SI_MAX(0.0, 1.0 - fabs(((double)off - ratio) * sa)) : (off == 0 ? 1.0 - ratio : ratio);
        } else {
            v = p->antialias ? cubic_w(sa * ((double)off - ratio), p->cubic_a)
                             : cubic_w((double)off - ratio, p->cubic_a);
        }
        const int64_t src = base + off;
        if (p->exclude_outside && (src < 0 || src >= in)) v = 0.0;
        w[k] = v;
        sum += v;
        ix[k] = SI_MAX((int64_t)0, SI_MIN(in - 1, src));
    }
    if ((p->antialias || p->exclude_outside) && sum != 0)
        for (int64_t k = 0; k < nt; k++) w[k] /= sum;
}

/* The taps of every output coordinate of one axis (the reference kernel's tables). */
typedef struct nn_taps {
    int64_t nt;
    int64_t *idx;
    double *w;
    unsigned char *ext;
} nn_taps;

static bool nn_resize_taps(const si_resize *p, int d, nn_taps *t) {
    const int64_t on = p->out[d], nt = si_resize_ntaps(p, d);
    t->nt = nt;
    t->idx = si_malloc((size_t)(SI_MAX(on, (int64_t)1) * nt) * sizeof(int64_t));
    t->w = si_malloc((size_t)(SI_MAX(on, (int64_t)1) * nt) * sizeof(double));
    t->ext = si_calloc((size_t)SI_MAX(on, (int64_t)1), 1);
    if (!t->idx || !t->w || !t->ext) return false;
    for (int64_t o = 0; o < on; o++) {
        bool outside;
        si_resize_taps(p, d, o, t->idx + o * nt, t->w + o * nt, &outside);
        t->ext[o] = outside;
    }
    return true;
}

SI_OP_PLANNED(resize_run, si_resize, p, resize_prep) {
    const si_tensor *x = si_in(c, 0);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    if (si_count(x) == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "cannot resize an empty input to a non-empty output");
    const int r = p->rank;
    nn_taps taps[SI_MAX_DIMS];
    memset(taps, 0, sizeof taps);
    double *xd = si_tensor_to_f64(x), *yd = si_malloc((size_t)si_count(y) * sizeof(double));
    bool ok = xd && yd;
    for (int d = 0; ok && d < r; d++) ok = nn_resize_taps(p, d, &taps[d]);
    if (ok) {
        int64_t xs[SI_MAX_DIMS], o[SI_MAX_DIMS] = {0};
        xs[r - 1] = 1;
        for (int d = r - 2; d >= 0; d--) xs[d] = xs[d + 1] * p->in[d + 1];
        const int64_t n = si_count(y);
        for (int64_t i = 0; i < n; i++) {
            bool ext = false;
            for (int d = 0; d < r; d++)
                if (taps[d].ext[o[d]]) ext = true;
            double acc = 0;
            if (ext) {
                acc = p->extrap;
            } else {
                int64_t k[SI_MAX_DIMS] = {0};
                for (;;) {
                    double w = 1.0;
                    int64_t off = 0;
                    for (int d = 0; d < r; d++) {
                        const int64_t at = o[d] * taps[d].nt + k[d];
                        w *= taps[d].w[at];
                        off += taps[d].idx[at] * xs[d];
                    }
                    acc += w * xd[off];
                    int d = r - 1;
                    while (d >= 0 && ++k[d] == taps[d].nt) k[d--] = 0;
                    if (d < 0) break;
                }
            }
            yd[i] = acc;
            for (int d = r - 1; d >= 0; d--) {
                if (++o[d] < p->out[d]) break;
                o[d] = 0;
            }
        }
        si_tensor_from_f64(y, yd);
    }
    for (int d = 0; d < r; d++) {
        SI_FREE_ALL(taps[d].idx, taps[d].w, taps[d].ext);
    }
    SI_FREE_ALL(xd, yd);
    return ok ? SI_OK : si_op_nomem(c);
}

si_resize_form si_resize_form_of(const si_node *n) { return (si_resize_form)n->op->arg; }

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    /* the arg is the version's interface (si_resize_form) */
    SI_OP_VERSION_ARG(RESIZE, 0, 10, SI_T_ALL, resize_infer, resize_run, SI_RESIZE_SCALES_INPUT),
    SI_OP_VERSION_ARG(RESIZE, 11, 0, SI_T_ALL, resize_infer, resize_run, SI_RESIZE_FULL),
    SI_OP_VERSION_ARG(UPSAMPLE, 0, 8, SI_T_ALL, resize_infer, resize_run, SI_RESIZE_SCALES_ATTR),
    SI_OP_VERSION_ARG(UPSAMPLE, 9, 0, SI_T_ALL, resize_infer, resize_run, SI_RESIZE_SCALES_INPUT),
};

SI_OP_FAMILY_PARTIAL(resize, defs);
