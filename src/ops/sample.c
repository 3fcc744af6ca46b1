/*
 * sample.c — reference kernels that read an input at computed positions (in double): GridSample (nearest,
 * linear, cubic; padding zeros, border, reflection; 1 to 3 spatial dimensions), AffineGrid (the grids of affine
 * transforms), RoiAlign (average or max of bilinear samples over regions), Col2Im (columns summed back into
 * an image) and DeformConv (a convolution whose taps are moved by learned offsets, 2-D).
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

#define GS_MAXR 3 /* spatial dimensions GridSample and AffineGrid support */

// --- GridSample -------------------------------------------------------------------------------------------

enum { GS_NEAREST, GS_LINEAR, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

typedef struct gs_plan {
    int r; /* spatial rank */
    int mode, pad;
    bool align;
} gs_plan;

static si_result gs_plan_of(si_kctx *c, gs_plan *p) {
    si_result s = si_need_inputs(c, 2);
    if (s) return s;
    const si_tensor *x = c->in[0], *g = c->in[1];
    if ((s = si_check_type(c, g->dtype, SI_T_FLOATS, "input 'grid'"))) return s;
    p->r = x->ndim - 2;
    if (p->r < 1 || p->r > GS_MAXR)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "input 'X' must have rank 3 to %d (N, C, spatial...), got %d", GS_MAXR + 2, x->ndim);
    if (g->ndim != x->ndim)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'grid' must have rank %d like X, got %d", x->ndim, g->ndim);
    if (si_dim_known(g->dims[g->ndim - 1]) && g->dims[g->ndim - 1] != p->r)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'grid' last dimension must be %d (the spatial rank), got %lld", p->r,
                         (long long)g->dims[g->ndim - 1]);
    if (si_dim_known(g->dims[0]) && si_dim_known(x->dims[0]) && g->dims[0] != x->dims[0])
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'grid' batch %lld differs from X's %lld", (long long)g->dims[0],
                         (long long)x->dims[0]);
    /* opset 16 names the modes bilinear and bicubic, later opsets linear and cubic: both are accepted */
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear", "bicubic"};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    int m = 0;
    if ((s = si_attr_choice(c, "mode", c->opset < 20 ? "bilinear" : "linear", modes, 5, &m))) return s;
    p->mode = m == 3 ? GS_LINEAR : m == 4 ? GS_CUBIC : m;
    if ((s = si_attr_choice(c, "padding_mode", "zeros", pads, 3, &p->pad))) return s;
    p->align = si_attr_int(c->node, "align_corners", 0) != 0;
    return SI_OK;
}

SI_OP_PLANNED(gs_infer, gs_plan, p, gs_plan_of) {
    int64_t od[SI_MAX_DIMS] = {c->in[0]->dims[0], c->in[0]->dims[1]};
    for (int d = 0; d < p->r; d++) od[2 + d] = c->in[1]->dims[1 + d];
    return si_set_out(c, 0, c->in[0]->dtype, p->r + 2, od);
}

/* x reflected into [lo, hi] */
static double gs_reflect(double x, double lo, double hi) {
    const double rng = hi - lo;
    if (rng <= 0) return lo;
    if (x < lo) {
        const double dx = lo - x, n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        const double dx = x - hi, n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? hi - r : lo + r;
    }
    return x;
}

/* The index read for integer position i along an axis of `size`, or -1 for a zero (padding zeros) */
static int64_t gs_index(const gs_plan *p, int64_t i, int64_t size) {
    if (i >= 0 && i < size) return i;
    if (p->pad == GS_ZEROS) return -1;
    if (p->pad == GS_REFLECTION) {
        const double lo = p->align ? 0.0 : -0.5, hi = p->align ? (double)(size - 1) : (double)size - 0.5;
        i = (int64_t)gs_reflect((double)i, lo, hi);
    }
    return i < 0 ? 0 : i >= size ? size - 1 : i;
}

static void gs_cubic_coeffs(double t, double *w) {
    const double a = -0.75;
    double x = t + 1;
    w[0] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    x = t;
    w[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
    x = 1 - t;
    w[2] = ((a + 2) * x - (a + 3)) * x * x + 1;
    x = 2 - t;
    w[3] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

SI_OP_PLANNED(gs_run, gs_plan, p, gs_plan_of) {
    si_tensor *yt;
    si_result s = si_run_begin(c, &yt);
    if (s || !yt) return s;
    const si_tensor *xt = c->in[0], *gt = c->in[1];
    const int r = p->r;
    const int64_t N = xt->dims[0], C = xt->dims[1], in_sp = si_prod(xt->dims, 2, xt->ndim);
    const int64_t out_sp = si_prod(gt->dims, 1, gt->ndim - 1);
    for (int d = 0; d < r; d++)
        if (xt->dims[2 + d] == 0) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'X' spatial dimension %d is 0", d);
    double *x = si_tensor_to_f64(xt), *g = si_tensor_to_f64(gt), *y = si_malloc(sizeof(double) * (size_t)si_count(yt));
    if (!x || !g || !y) {
        SI_FREE_ALL(x, g, y);
        return si_op_nomem(c);
    }
    const int ntap1 = p->mode == GS_NEAREST ? 1 : p->mode == GS_LINEAR ? 2 : 4;
    int64_t idx[GS_MAXR][4];
    double w[GS_MAXR][4];
    int64_t xs[GS_MAXR];
    si_strides(r, xt->dims + 2, xs);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < out_sp; o++) {
            const double *gp = g + (n * out_sp + o) * r;
            for (int d = 0; d < r; d++) {
                const int64_t size = xt->dims[2 + d];
                const double gv = gp[r - 1 - d]; /* the grid lists x (the last axis) first */
                double v = p->align ? (gv + 1) / 2 * (double)(size - 1) : ((gv + 1) * (double)size - 1) / 2;
                /* border: nearest and linear clamp the coordinate; cubic clamps each of its taps instead
                 * (gs_index), as PyTorch and ONNX Runtime do */
                if (p->pad == GS_BORDER && p->mode != GS_CUBIC)
                    v = fmin(fmax(v, 0.0), (double)(size - 1));
                else if (p->pad == GS_REFLECTION)
                    v = gs_reflect(v, p->align ? 0.0 : -0.5, p->align ? (double)(size - 1) : (double)size - 0.5);
                if (!isfinite(v)) v = -2.0 * (double)size - 4; /* far outside: zeros or the border */
                v = fmin(fmax(v, -2.0 * (double)size - 4), 3.0 * (double)size + 4);
                if (p->mode == GS_NEAREST) {
                    idx[d][0] = gs_index(p, (int64_t)nearbyint(v), size);
                    w[d][0] = 1;
                } else {
                    const double f = floor(v), t = v - f;
                    if (p->mode == GS_LINEAR) {
                        w[d][0] = 1 - t;
                        w[d][1] = t;
                    } else {
                        gs_cubic_coeffs(t, w[d]);
                    }
                    const int64_t i0 = (int64_t)f - (p->mode == GS_CUBIC ? 1 : 0);
                    for (int k = 0; k < ntap1; k++) idx[d][k] = gs_index(p, i0 + k, size);
                }
            }
            int ntaps = 1;
            for (int d = 0; d < r; d++) ntaps *= ntap1;
            for (int64_t ch = 0; ch < C; ch++) {
                const double *xp = x + (n * C + ch) * in_sp;
                double acc = 0;
                for (int t = 0; t < ntaps; t++) {
                    double wt = 1;
                    int64_t off = 0;
                    int tt = t;
                    bool zero = false;
                    for (int d = r - 1; d >= 0; d--) {
                        const int k = tt % ntap1;
                        tt /= ntap1;
                        if (idx[d][k] < 0) zero = true;
                        wt *= w[d][k];
                        off += idx[d][k] * xs[d];
                    }
                    if (!zero) acc += wt * xp[off];
                }
                y[(n * C + ch) * out_sp + o] = acc;
            }
        }
    si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, g, y);
    return SI_OK;
}

// --- AffineGrid -------------------------------------------------------------------------------------------

/* The output shape (N, spatial..., r) from input 'size' (N, C, spatial...); *r its spatial rank. */
static si_result ag_shape(si_kctx *c, int64_t *od, int *r, bool *known) {
    si_result s = si_need_inputs(c, 2);
    if (s) return s;
    const si_tensor *th = c->in[0], *sz = c->in[1];
    if ((s = si_check_type(c, th->dtype, SI_T_FLOATS, "input 'theta'"))) return s;
    if (th->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'theta' must have rank 3 (N, r, r+1), got %d", th->ndim);
    if (sz->ndim != 1 || (si_dim_known(sz->dims[0]) && sz->dims[0] != 4 && sz->dims[0] != 5))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'size' must hold 4 or 5 values (N, C, [D,] H, W)");
    *known = si_has_values(sz);
    *r = si_dim_known(sz->dims[0]) ? (int)sz->dims[0] - 2 : si_dim_known(th->dims[1]) ? (int)th->dims[1] : -1;
    if (*r != 2 && *r != 3) return si_op_err(c, SI_ERR_UNSUPPORTED, "the spatial rank is not known");
    if ((si_dim_known(th->dims[1]) && th->dims[1] != *r) || (si_dim_known(th->dims[2]) && th->dims[2] != *r + 1))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'theta' must have shape (N, %d, %d)", *r, *r + 1);
    if (!*known) return SI_OK;
    int64_t v[5];
    int nv = 0;
    if ((s = si_tensor_ints(c, sz, "input 'size'", v, 5, &nv))) return s;
    for (int i = 0; i < nv; i++)
        if (v[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'size' value %d is negative", i);
    if (si_dim_known(th->dims[0]) && v[0] != th->dims[0])
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'size' N = %lld differs from theta's %lld", (long long)v[0],
                         (long long)th->dims[0]);
    od[0] = v[0];
    for (int d = 0; d < *r; d++) od[1 + d] = v[2 + d];
    od[1 + *r] = *r;
    return SI_OK;
}

static si_result ag_infer(si_kctx *c) {
    int64_t od[SI_MAX_DIMS];
    int r = 0;
    bool known = false;
    si_result s = ag_shape(c, od, &r, &known);
    if (s) return s;
    if (!known) return si_set_out_unknown(c, 0, c->in[0]->dtype, r + 2);
    return si_set_out(c, 0, c->in[0]->dtype, r + 2, od);
}

static si_result ag_run(si_kctx *c) {
    int64_t od[SI_MAX_DIMS];
    int r = 0;
    bool known = false;
    si_result s = ag_shape(c, od, &r, &known);
    si_tensor *yt;
    if (s || (s = si_run_begin(c, &yt)) || !yt) return s;
    const bool align = si_attr_int(c->node, "align_corners", 0) != 0;
    const int64_t N = od[0], sp = si_prod(od, 1, 1 + r);
    double *th = si_tensor_to_f64(c->in[0]), *y = si_malloc(sizeof(double) * (size_t)si_count(yt));
    if (!th || !y) {
        SI_FREE_ALL(th, y);
        return si_op_nomem(c);
    }
    for (int64_t n = 0; n < N; n++) {
        const double *t = th + n * r * (r + 1);
        int64_t idx[GS_MAXR] = {0};
        for (int64_t o = 0; o < sp; o++) {
            double base[GS_MAXR + 1]; /* x (last axis) first, then 1 */
            for (int d = 0; d < r; d++) {
                const int64_t size = od[1 + d], i = idx[d];
                double v;
                if (align)
                    v = size > 1 ? -1.0 + 2.0 * (double)i / (double)(size - 1) : 0.0;
                else
                    v = (2.0 * (double)i + 1.0) / (double)size - 1.0;
                base[r - 1 - d] = v;
            }
            base[r] = 1.0;
            for (int k = 0; k < r; k++) {
                double acc = 0;
                for (int j = 0; j <= r; j++) acc += t[k * (r + 1) + j] * base[j];
                y[(n * sp + o) * r + k] = acc;
            }
            si_next_index(idx, od + 1, r);
        }
    }
    si_tensor_from_f64(yt, y);
    SI_FREE_ALL(th, y);
    return SI_OK;
}

// --- RoiAlign ---------------------------------------------------------------------------------------------

static si_result roi_infer(si_kctx *c) {
    si_result s = si_inputs_typed(c, 3, 3, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T(SI_I64) | SI_T(SI_I32)},
                                  (const char *const[]){"input 'X'", "input 'rois'", "input 'batch_indices'"});
    if (s) return s;
    const si_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    if (x->ndim != 4) return si_op_err(c, SI_ERR_INVALID_ARG, "input 'X' must have rank 4 (N, C, H, W), got %d", x->ndim);
    if (rois->ndim != 2 || (si_dim_known(rois->dims[1]) && rois->dims[1] != 4))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'rois' must have shape (num_rois, 4)");
    if (bi->ndim != 1 || (si_dim_known(bi->dims[0]) && si_dim_known(rois->dims[0]) && bi->dims[0] != rois->dims[0]))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'batch_indices' must have shape (num_rois)");
    const int64_t oh = si_attr_int(c->node, "output_height", 1), ow = si_attr_int(c->node, "output_width", 1);
    if (oh < 1 || ow < 1 || oh > (1 << 20) || ow > (1 << 20))
        return si_op_err(c, SI_ERR_INVALID_ARG, "output_height %lld / output_width %lld must lie in [1, 2^20]", (long long)oh,
                         (long long)ow);
    if (si_attr_int(c->node, "sampling_ratio", 0) < 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "attribute 'sampling_ratio' must not be negative");
    static const char *const modes[] = {"avg", "max"}, *const ctms[] = {"half_pixel", "output_half_pixel"};
    int m = 0;
    if ((s = si_attr_choice(c, "mode", "avg", modes, 2, &m))) return s;
    if ((s = si_attr_choice(c, "coordinate_transformation_mode", "half_pixel", ctms, 2, &m))) return s;
    const int64_t od[4] = {rois->dims[0], x->dims[1], oh, ow};
    return si_set_out(c, 0, x->dtype, 4, od);
}

static si_result roi_run(si_kctx *c) {
    si_result s = roi_infer(c);
    si_tensor *yt;
    if (s || (s = si_run_begin(c, &yt)) || !yt) return s;
    const si_tensor *xt = c->in[0];
    const int64_t C = xt->dims[1], H = xt->dims[2], W = xt->dims[3], R = yt->dims[0], OH = yt->dims[2], OW = yt->dims[3];
    const bool maxm = !strcmp(si_attr_str(c->node, "mode", "avg"), "max");
    /* opset 10 had no coordinate_transformation_mode: its behaviour is output_half_pixel */
    const bool half = c->opset >= 16 && !strcmp(si_attr_str(c->node, "coordinate_transformation_mode", "half_pixel"), "half_pixel");
    const double scale = si_attr_float(c->node, "spatial_scale", 1.0f);
    const int64_t sr = si_attr_int(c->node, "sampling_ratio", 0);
    double *x = si_tensor_to_f64(xt), *rois = si_tensor_to_f64(c->in[1]), *y = si_malloc(sizeof(double) * (size_t)si_count(yt));
    int64_t *bi = si_tensor_to_i64(c->in[2]);
    if (!x || !rois || !y || !bi) {
        SI_FREE_ALL(x, rois, y, bi);
        return si_op_nomem(c);
    }
    for (int64_t r = 0; r < R && !s; r++) {
        if (bi[r] < 0 || bi[r] >= xt->dims[0]) {
            s = si_op_err(c, SI_ERR_INVALID_ARG, "batch_indices[%lld] = %lld is outside [0, %lld)", (long long)r,
                          (long long)bi[r], (long long)xt->dims[0]);
            break;
        }
        const double off = half ? 0.5 : 0.0, *b = rois + r * 4;
        const double x0 = b[0] * scale - off, y0 = b[1] * scale - off, x1 = b[2] * scale - off, y1 = b[3] * scale - off;
        double rw = x1 - x0, rh = y1 - y0;
        if (!half) {
            rw = fmax(rw, 1.0);
            rh = fmax(rh, 1.0);
        }
        const double bh = rh / (double)OH, bw = rw / (double)OW;
        double gh_d = sr > 0 ? (double)sr : ceil(rh / (double)OH), gw_d = sr > 0 ? (double)sr : ceil(rw / (double)OW);
        gh_d = gh_d < 0 ? 0 : gh_d; /* an inverted box (half_pixel) samples nothing: zeros */
        gw_d = gw_d < 0 ? 0 : gw_d;
        if (!(gh_d <= 4096) || !(gw_d <= 4096)) {
            s = si_op_err(c, SI_ERR_INVALID_ARG, "roi %lld: sampling grid %g x %g is not in [0, 4096]", (long long)r, gh_d, gw_d);
            break;
        }
        const int64_t gh = (int64_t)gh_d, gw = (int64_t)gw_d;
        const double cnt = (double)(gh * gw > 0 ? gh * gw : 1);
        for (int64_t ch = 0; ch < C; ch++) {
            const double *xp = x + (bi[r] * C + ch) * H * W;
            for (int64_t ph = 0; ph < OH; ph++)
                for (int64_t pw = 0; pw < OW; pw++) {
                    double acc = 0;
                    bool first = true;
                    for (int64_t iy = 0; iy < gh; iy++)
                        for (int64_t ix = 0; ix < gw; ix++) {
                            double yy = y0 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                            double xx = x0 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                            double v = 0;
                            if (!(yy < -1.0 || yy > (double)H || xx < -1.0 || xx > (double)W)) {
                                yy = fmax(yy, 0.0);
                                xx = fmax(xx, 0.0);
                                int64_t yl = (int64_t)yy, xl = (int64_t)xx, yh, xh;
                                if (yl >= H - 1) {
                                    yh = yl = H - 1;
                                    yy = (double)yl;
                                } else {
                                    yh = yl + 1;
                                }
                                if (xl >= W - 1) {
                                    xh = xl = W - 1;
                                    xx = (double)xl;
                                } else {
                                    xh = xl + 1;
                                }
                                const double ly = yy - (double)yl, lx = xx - (double)xl, hy = 1 - ly, hx = 1 - lx;
                                const double v1 = hy * hx * xp[yl * W + xl], v2 = hy * lx * xp[yl * W + xh];
                                const double v3 = ly * hx * xp[yh * W + xl], v4 = ly * lx * xp[yh * W + xh];
                                v = maxm ? fmax(fmax(v1, v2), fmax(v3, v4)) : v1 + v2 + v3 + v4;
                            }
                            if (maxm) {
                                acc = first ? v : fmax(acc, v);
                                first = false;
                            } else {
                                acc += v;
                            }
                        }
                    y[((r * C + ch) * OH + ph) * OW + pw] = maxm ? acc : acc / cnt;
                }
        }
    }
    if (!s) si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, rois, y, bi);
    return s;
}

// --- Col2Im -----------------------------------------------------------------------------------------------

typedef struct c2i_plan {
    int r;
    int64_t img[SI_MAX_DIMS], blk[SI_MAX_DIMS], dil[SI_MAX_DIMS], str[SI_MAX_DIMS], pads[2 * SI_MAX_DIMS];
    int64_t nb[SI_MAX_DIMS]; /* block positions per axis */
    bool known;
} c2i_plan;

static si_result c2i_plan_of(si_kctx *c, c2i_plan *p) {
    si_result s = si_need_inputs(c, 3);
    if (s) return s;
    const si_tensor *x = c->in[0], *is = c->in[1], *bs = c->in[2];
    if (x->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank 3 (N, C * prod(block_shape), L), got %d", x->ndim);
    if (is->ndim != 1 || bs->ndim != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "image_shape and block_shape must be 1-D");
    if (si_dim_known(is->dims[0]) && (is->dims[0] < 1 || is->dims[0] > SI_MAX_DIMS - 2)) /* the output's rank - 2 */
        return si_op_err(c, SI_ERR_INVALID_ARG, "image_shape has %lld values: 1 to %d supported", (long long)is->dims[0], SI_MAX_DIMS - 2);
    p->known = si_has_values(is) && si_has_values(bs);
    if (!p->known) return SI_OK;
    int ni = 0, nbk = 0;
    if ((s = si_tensor_ints(c, is, "input 'image_shape'", p->img, SI_MAX_DIMS - 2, &ni)) ||
        (s = si_tensor_ints(c, bs, "input 'block_shape'", p->blk, SI_MAX_DIMS - 2, &nbk)))
        return s;
    if (ni != nbk || ni < 1)
        return si_op_err(c, SI_ERR_INVALID_ARG, "image_shape has %d values, block_shape %d: they must be equal and >= 1", ni, nbk);
    p->r = ni;
    if ((s = si_attr_ints_n(c, "dilations", ni, 1, p->dil)) || (s = si_attr_ints_n(c, "strides", ni, 1, p->str)) ||
        (s = si_attr_ints_n(c, "pads", 2 * ni, 0, p->pads)))
        return s;
    int64_t L = 1, K = 1;
    for (int d = 0; d < ni; d++) {
        if (p->img[d] < 0 || p->blk[d] < 1 || p->dil[d] < 1 || p->str[d] < 1 || p->pads[d] < 0 || p->pads[ni + d] < 0 ||
            p->img[d] > INT32_MAX || p->blk[d] > INT32_MAX || p->dil[d] > INT32_MAX || p->str[d] > INT32_MAX ||
            p->pads[d] > INT32_MAX || p->pads[ni + d] > INT32_MAX)
            return si_op_err(c, SI_ERR_INVALID_ARG, "axis %d: image %lld, block %lld, dilation %lld, stride %lld or pads are out of range",
                             d, (long long)p->img[d], (long long)p->blk[d], (long long)p->dil[d], (long long)p->str[d]);
        const int64_t span = p->dil[d] * (p->blk[d] - 1) + 1, full = p->img[d] + p->pads[d] + p->pads[ni + d];
        if (full < span)
            return si_op_err(c, SI_ERR_INVALID_ARG, "axis %d: the block (extent %lld) does not fit in the padded image (%lld)",
                             d, (long long)span, (long long)full);
        p->nb[d] = (full - span) / p->str[d] + 1;
        L = si_dim_mul(L, p->nb[d]);
        K = si_dim_mul(K, p->blk[d]);
    }
    if (si_dim_known(x->dims[2]) && x->dims[2] != L)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input has %lld blocks (dimension 2), the shapes give %lld", (long long)x->dims[2],
                         (long long)L);
    if (si_dim_known(x->dims[1]) && x->dims[1] % K != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input dimension 1 (%lld) is not a multiple of prod(block_shape) = %lld",
                         (long long)x->dims[1], (long long)K);
    return SI_OK;
}

SI_OP_PLANNED(c2i_infer, c2i_plan, p, c2i_plan_of) {
    const si_tensor *x = c->in[0];
    if (!p->known) {
        int r = si_dim_known(c->in[1]->dims[0]) ? (int)c->in[1]->dims[0] : -1;
        return si_set_out_unknown(c, 0, x->dtype, r >= 0 ? r + 2 : -1);
    }
    int64_t od[SI_MAX_DIMS] = {x->dims[0], si_dim_known(x->dims[1]) ? x->dims[1] / si_prod(p->blk, 0, p->r) : SI_DIM_UNKNOWN};
    for (int d = 0; d < p->r; d++) od[2 + d] = p->img[d];
    return si_set_out(c, 0, x->dtype, p->r + 2, od);
}

SI_OP_PLANNED(c2i_run, c2i_plan, p, c2i_plan_of) {
    si_result s = si_run_ready(c);
    if (s) return s;
    si_tensor *yt = si_out(c, 0);
    const si_tensor *xt = c->in[0];
    if (!yt || si_count(yt) == 0 || si_count(xt) == 0) return SI_OK;
    const int r = p->r;
    const int64_t N = xt->dims[0], K = si_prod(p->blk, 0, r), C = xt->dims[1] / K, L = xt->dims[2];
    const int64_t isz = si_prod(p->img, 0, r);
    double *x = si_tensor_to_f64(xt), *y = si_malloc(sizeof(double) * (size_t)si_count(yt));
    if (!x || !y) {
        SI_FREE_ALL(x, y);
        return si_op_nomem(c);
    }
    memset(y, 0, sizeof(double) * (size_t)si_count(yt));
    int64_t istr[SI_MAX_DIMS];
    si_strides(r, p->img, istr);
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            int64_t kidx[SI_MAX_DIMS] = {0};
            for (int64_t k = 0; k < K; k++) {
                int64_t lidx[SI_MAX_DIMS] = {0};
                const double *xp = x + ((n * C + ch) * K + k) * L;
                for (int64_t l = 0; l < L; l++) {
                    int64_t off = 0;
                    bool in = true;
                    for (int d = 0; d < r && in; d++) {
                        const int64_t pos = lidx[d] * p->str[d] - p->pads[d] + kidx[d] * p->dil[d];
                        in = pos >= 0 && pos < p->img[d];
                        off += pos * istr[d];
                    }
                    if (in) y[(n * C + ch) * isz + off] += xp[l];
                    si_next_index(lidx, p->nb, r);
                }
                si_next_index(kidx, p->blk, r);
            }
        }
    si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, y);
    return SI_OK;
}

// --- DeformConv (2-D) -------------------------------------------------------------------------------------

typedef struct dc_plan {
    nn_geom g;
    int64_t group, og; /* groups of channels, groups of offsets */
} dc_plan;

static si_result dc_plan_of(si_kctx *c, dc_plan *p) {
    si_result s = si_inputs_typed(c, 3, 5, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0, SI_T_LIKE0, SI_T_LIKE0, SI_T_LIKE0},
                                  (const char *const[]){"input 'X'", "input 'W'", "input 'offset'", "input 'B'", "input 'mask'"});
    if (s) return s;
    const si_tensor *x = c->in[0], *w = c->in[1], *off = c->in[2], *b = si_in(c, 3), *mk = si_in(c, 4);
    if (x->ndim != 4) return si_op_err(c, SI_ERR_UNSUPPORTED, "input 'X' must have rank 4 (N, C, H, W: 2-D only), got %d", x->ndim);
    if (w->ndim != 4 || off->ndim != 4 || (mk && mk->ndim != 4))
        return si_op_err(c, SI_ERR_INVALID_ARG, "inputs 'W', 'offset' and 'mask' must have rank 4");
    int64_t ks[2] = {w->dims[2], w->dims[3]};
    int nk = 0;
    if ((s = si_attr_ints_buf(c, "kernel_shape", ks, 2, &nk))) return s;
    if (nk >= 0 && nk != 2) return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape has %d values, expected 2", nk);
    for (int i = 0; i < 2; i++)
        if (si_dim_known(w->dims[2 + i]) && ks[i] != w->dims[2 + i])
            return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape[%d] = %lld does not match W's %lld", i, (long long)ks[i],
                             (long long)w->dims[2 + i]);
    p->group = si_attr_int(c->node, "group", 1);
    p->og = si_attr_int(c->node, "offset_group", 1);
    if (p->group < 1 || p->og < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "group and offset_group must be positive");
    const int64_t C = x->dims[1], M = w->dims[0];
    if (si_dim_known(C) && (C % p->group || C % p->og))
        return si_op_err(c, SI_ERR_INVALID_ARG, "channels %lld are not a multiple of group %lld and offset_group %lld",
                         (long long)C, (long long)p->group, (long long)p->og);
    if (si_dim_known(C) && si_dim_known(w->dims[1]) && w->dims[1] * p->group != C)
        return si_op_err(c, SI_ERR_INVALID_ARG, "W has %lld input channels per group, X has %lld channels in %lld groups",
                         (long long)w->dims[1], (long long)C, (long long)p->group);
    if (si_dim_known(M) && M % p->group)
        return si_op_err(c, SI_ERR_INVALID_ARG, "output channels %lld are not a multiple of group %lld", (long long)M, (long long)p->group);
    if (b && (b->ndim != 1 || (si_dim_known(b->dims[0]) && si_dim_known(M) && b->dims[0] != M)))
        return si_op_err(c, SI_ERR_INVALID_ARG, "input 'B' must have shape (%lld)", (long long)M);
    if ((s = si_geom_init(c, 2, x->dims + 2, ks, false, &p->g))) return s;
    const int64_t oh = p->g.out[NN_SP - 2], ow = p->g.out[NN_SP - 1];
    const int64_t K = si_dim_mul(ks[0], ks[1]);
    const int64_t want[2][4] = {{x->dims[0], si_dim_mul(p->og, si_dim_mul(2, K)), oh, ow}, {x->dims[0], si_dim_mul(p->og, K), oh, ow}};
    for (int t = 0; t < 2; t++) {
        const si_tensor *v = t ? mk : off;
        if (!v) continue;
        for (int d = 0; d < 4; d++)
            if (si_dim_known(v->dims[d]) && si_dim_known(want[t][d]) && v->dims[d] != want[t][d])
                return si_op_err(c, SI_ERR_INVALID_ARG, "input '%s' dimension %d is %lld, expected %lld", t ? "mask" : "offset",
                                 d, (long long)v->dims[d], (long long)want[t][d]);
    }
    return SI_OK;
}

SI_OP_PLANNED(dc_infer, dc_plan, p, dc_plan_of) {
    const int64_t od[4] = {c->in[0]->dims[0], c->in[1]->dims[0], p->g.out[NN_SP - 2], p->g.out[NN_SP - 1]};
    return si_set_out(c, 0, c->in[0]->dtype, 4, od);
}

/* x (h x w plane) at (y, xx) by bilinear interpolation, 0 outside */
static double dc_bilinear(const double *x, int64_t H, int64_t W, double y, double xx) {
    if (!(y > -1.0 && y < (double)H && xx > -1.0 && xx < (double)W)) return 0;
    const double fy = floor(y), fx = floor(xx), ly = y - fy, lx = xx - fx;
    const int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
    double v = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            const int64_t yy = y0 + i, xj = x0 + j;
            if (yy < 0 || yy >= H || xj < 0 || xj >= W) continue;
            v += (i ? ly : 1 - ly) * (j ? lx : 1 - lx) * x[yy * W + xj];
        }
    return v;
}

SI_OP_PLANNED(dc_run, dc_plan, p, dc_plan_of) {
    si_tensor *yt;
    si_result s = si_run_begin(c, &yt);
    if (s || !yt) return s;
    const si_tensor *xt = c->in[0], *wt = c->in[1], *bt = si_in(c, 3), *mt = si_in(c, 4);
    const int64_t N = xt->dims[0], C = xt->dims[1], H = xt->dims[2], W = xt->dims[3], M = wt->dims[0];
    const int64_t KH = wt->dims[2], KW = wt->dims[3], K = KH * KW, OH = yt->dims[2], OW = yt->dims[3];
    const int64_t cpg = C / p->group, mpg = M / p->group, cpo = C / p->og;
    const int o = NN_SP - 2;
    double *x = si_tensor_to_f64(xt), *w = si_tensor_to_f64(wt), *off = si_tensor_to_f64(c->in[2]);
    double *b = bt ? si_tensor_to_f64(bt) : NULL, *mk = mt ? si_tensor_to_f64(mt) : NULL;
    double *y = si_malloc(sizeof(double) * (size_t)si_count(yt));
    if (!x || !w || !off || !y || (bt && !b) || (mt && !mk)) {
        SI_FREE_ALL(x, w, off, b, mk, y);
        return si_op_nomem(c);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            const int64_t g = m / mpg;
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double acc = b ? b[m] : 0;
                    for (int64_t ci = 0; ci < cpg; ci++) {
                        const int64_t ch = g * cpg + ci, og = ch / cpo;
                        const double *xp = x + (n * C + ch) * H * W;
                        for (int64_t k = 0; k < K; k++) {
                            const int64_t ky = k / KW, kx = k % KW;
                            const double dy = off[(((n * p->og + og) * 2 * K + 2 * k) * OH + oy) * OW + ox];
                            const double dx = off[(((n * p->og + og) * 2 * K + 2 * k + 1) * OH + oy) * OW + ox];
                            const double py = (double)(oy * p->g.s[o] - p->g.pb[o] + ky * p->g.d[o]) + dy;
                            const double px = (double)(ox * p->g.s[o + 1] - p->g.pb[o + 1] + kx * p->g.d[o + 1]) + dx;
                            double v = dc_bilinear(xp, H, W, py, px);
                            if (mk) v *= mk[(((n * p->og + og) * K + k) * OH + oy) * OW + ox];
                            acc += w[(m * cpg + ci) * K + k] * v;
                        }
                    }
                    y[((n * M + m) * OH + oy) * OW + ox] = acc;
                }
        }
    si_tensor_from_f64(yt, y);
    SI_FREE_ALL(x, w, off, b, mk, y);
    return SI_OK;
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(GRID_SAMPLE, SI_T_FLOATS, gs_infer, gs_run),
    SI_OP_DEF(AFFINE_GRID, SI_T_FLOATS, ag_infer, ag_run),
    SI_OP_DEF(ROI_ALIGN, SI_T_FLOATS, roi_infer, roi_run),
    SI_OP_DEF(COL2IM, SI_T_FLOATS, c2i_infer, c2i_run),
    SI_OP_DEF(DEFORM_CONV, SI_T_FLOATS, dc_infer, dc_run),
};

SI_OP_FAMILY_PARTIAL(sample, defs);
