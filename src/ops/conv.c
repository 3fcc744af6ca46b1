/*
 * conv.c — Conv and ConvTranspose, and the window geometry (nn.h) they share with pooling.
 *
 * Both run as im2col / col2im around the GEMM kernels of gemm.c: float32 directly, float16/bfloat16 through
 * float32 copies, float64 in double. The kernels of one element type are written once, in conv_kernel.inc.
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

/* =========================================================================================================
 * Window geometry (Conv, ConvTranspose, pooling)
 */

si_result si_auto_pad(const si_kctx *c, int *out) {
    static const char *const names[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"}; /* NN_PAD_* order */
    *out = NN_PAD_NOTSET;
    if (!si_attr_str(c->node, "auto_pad", "NOTSET")[0]) return SI_OK; /* "" is NOTSET too */
    return si_attr_choice(c, "auto_pad", "NOTSET", names, 4, out);
}

void si_geom_clear(nn_geom *g, int nsp) {
    g->nsp = nsp;
    for (int i = 0; i < NN_SP; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
}

si_result si_spatial_rank(const si_kctx *c, const si_tensor *x, int *nsp) {
    if (x->ndim < 3)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->ndim);
    if (x->ndim - 2 > NN_SP)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "%d spatial dimensions are not supported (1 to %d)", x->ndim - 2,
                         NN_SP);
    *nsp = x->ndim - 2;
    return SI_OK;
}

#define NN_GEOM_MAX (((int64_t)1 << 31) - 1)

si_result si_geom_init(const si_kctx *c, int nsp, const int64_t *in, const int64_t *k, bool ceil_ok, nn_geom *g) {
    int64_t s[NN_SP], d[NN_SP], pads[2 * NN_SP];
    int ap = 0;
    si_result st;
    if ((st = si_attr_ints_n(c, "strides", nsp, 1, s)) || (st = si_attr_ints_n(c, "dilations", nsp, 1, d)) ||
        (st = si_attr_ints_n(c, "pads", 2 * nsp, 0, pads)) || (st = si_auto_pad(c, &ap)))
        return st;
    int64_t ceil_mode = ceil_ok ? si_attr_int(c->node, "ceil_mode", 0) : 0;
    si_geom_clear(g, nsp);
    int off = NN_SP - nsp;
    for (int i = 0; i < nsp; i++) {
        if (si_dim_known(k[i]) && k[i] < 1)
            return si_op_err(c, SI_ERR_INVALID_ARG, "kernel size %lld must be positive", (long long)k[i]);
        if (s[i] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "stride %lld must be positive", (long long)s[i]);
        if (d[i] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "dilation %lld must be positive", (long long)d[i]);
        int64_t pb = pads[i], pe = pads[i + nsp], o;
        if (pb < 0 || pe < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "pads must not be negative");
        /* beyond any tensor that fits in memory, and small enough that the window arithmetic cannot overflow */
        if (s[i] > NN_GEOM_MAX || d[i] > NN_GEOM_MAX || pb > NN_GEOM_MAX || pe > NN_GEOM_MAX || k[i] > NN_GEOM_MAX)
            return si_op_err(c, SI_ERR_INVALID_ARG, "kernel %lld, stride %lld, dilation %lld or pads %lld/%lld exceed %lld",
                             (long long)k[i], (long long)s[i], (long long)d[i], (long long)pb, (long long)pe,
                             (long long)NN_GEOM_MAX);
        if (!si_dim_known(in[i]) || !si_dim_known(k[i])) {
            /* compile time: with stride 1 the output is the input plus a known amount (a symbol stays one when
             * that is 0: "same" convolutions); otherwise it is not known either */
            int64_t o_ = SI_DIM_UNKNOWN;
            if (s[i] == 1 && si_dim_known(k[i])) {
                int64_t eff = (k[i] - 1) * d[i] + 1;
                o_ = ap == NN_PAD_SAME_UPPER || ap == NN_PAD_SAME_LOWER ? in[i]
                     : ap == NN_PAD_VALID                               ? si_dim_add(in[i], 1 - eff)
                                                                        : si_dim_add(in[i], pb + pe + 1 - eff);
            }
            g->in[off + i] = in[i];
            g->out[off + i] = o_;
            g->k[off + i] = k[i];
            g->s[off + i] = s[i];
            g->d[off + i] = d[i];
            g->pb[off + i] = ap == NN_PAD_NOTSET ? pb : 0;
            g->pe[off + i] = ap == NN_PAD_NOTSET ? pe : 0;
            continue;
        }
        int64_t eff = (k[i] - 1) * d[i] + 1;
        if (ap == NN_PAD_SAME_UPPER || ap == NN_PAD_SAME_LOWER) {
            o = si_ceildiv(in[i], s[i]);
            int64_t total = SI_MAX((int64_t)0, (o - 1) * s[i] + eff - in[i]);
            if (ap == NN_PAD_SAME_UPPER) {
                pb = total / 2;
                pe = total - pb;
            } else {
                pe = total / 2;
                pb = total - pe;
            }
        } else {
            if (ap == NN_PAD_VALID) pb = pe = 0;
            int64_t span = in[i] + pb + pe - eff;
            if (span < 0)
                return si_op_err(c, SI_ERR_INVALID_ARG,
                                 "window of %lld (kernel %lld, dilation %lld) is larger than the padded input %lld",
                                 (long long)eff, (long long)k[i], (long long)d[i], (long long)(in[i] + pb + pe));
            o = (ceil_mode ? si_ceildiv(span, s[i]) : span / s[i]) + 1;
            /* the last window must start inside the input or its left padding */
            if (ceil_mode && (o - 1) * s[i] >= in[i] + pb) o--;
        }
        if (o < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "output spatial size would be %lld", (long long)o);
        g->in[off + i] = in[i];
        g->out[off + i] = o;
        g->k[off + i] = k[i];
        g->s[off + i] = s[i];
        g->d[off + i] = d[i];
        g->pb[off + i] = pb;
        g->pe[off + i] = pe;
    }
    return SI_OK;
}

/* =========================================================================================================
 * Kernels
 */

/* Common description of a Conv / ConvTranspose node. */
typedef struct nn_conv {
    nn_geom g; /* Conv: in = X spatial, out = Y spatial. ConvTranspose: the same (X -> Y). */
    int64_t N, C, M; /* batch, input channels, output channels */
    int64_t group, cg, mg, kp; /* group count, in/out channels per group, kernel elements */
} nn_conv;

/* Floats (or doubles) allowed in one im2col / col2im chunk. */
#define NN_COL_BUDGET ((int64_t)1 << 21)

static bool nn_dgemm_b(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa, const double *B,
                       int64_t rsb, int64_t csb, double *C, int64_t ldc, bool accumulate) {
    si_dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
    return true;
}

#define T float
#define CK(name) nn_##name##_f32
#define CK_GEMM si_sgemm
#include "ops/conv_kernel.inc"

#define T double
#define CK(name) nn_##name##_f64
#define CK_GEMM nn_dgemm_b
#include "ops/conv_kernel.inc"

/* =========================================================================================================
 * Conv, ConvTranspose
 */

/* What Conv and ConvTranspose check alike: X, W (and B) of one float type, W's rank and kernel_shape, group.
 * Fills N, C, group, kp and *nsp; the caller checks the channels, which the two ops lay out differently. */
static si_result nn_conv_common(si_kctx *c, nn_conv *p, int *nsp) {
    si_result st;
    if ((st = si_need_inputs(c, 2))) return st;
    const si_tensor *x = si_in(c, 0), *w = si_in(c, 1), *b = si_in(c, 2);
    if ((st = si_spatial_rank(c, x, nsp))) return st;
    if ((st = si_check_type(c, x->dtype, SI_T_FLOATS, "X")) || (st = si_same_type(c, x, w, "W"))) return st;
    if (b && (st = si_same_type(c, x, b, "B"))) return st;
    if (w->ndim != x->ndim) return si_op_err(c, SI_ERR_INVALID_ARG, "W has rank %d, X has rank %d", w->ndim, x->ndim);
    int cnt = 0;
    const int64_t *ks = si_attr_ints(c->node, "kernel_shape", &cnt);
    if (ks && cnt > 0) {
        if (cnt != *nsp) return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape has %d values, expected %d", cnt, *nsp);
        for (int i = 0; i < *nsp; i++)
            if (si_dim_ne(ks[i], w->dims[2 + i]))
                return si_op_err(c, SI_ERR_INVALID_ARG, "kernel_shape[%d] = %lld does not match W's %lld", i,
                                 (long long)ks[i], (long long)w->dims[2 + i]);
    }
    p->group = si_attr_int(c->node, "group", 1);
    if (p->group < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "group %lld must be positive", (long long)p->group);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->kp = si_prod(w->dims, 2, w->ndim);
    return SI_OK;
}

static si_result conv_prep(si_kctx *c, nn_conv *p) {
    int nsp = 0;
    si_result st = nn_conv_common(c, p, &nsp);
    if (st) return st;
    const si_tensor *x = si_in(c, 0), *w = si_in(c, 1), *b = si_in(c, 2);
    p->M = w->dims[0];
    if (si_dim_known(w->dims[1]) && si_dim_known(p->C) &&
        (w->dims[1] > p->C / p->group || w->dims[1] * p->group != p->C)) /* no overflow for a hostile group */
        return si_op_err(c, SI_ERR_INVALID_ARG,
                         "W has %lld input channels per group but X has %lld channels and group %lld",
                         (long long)w->dims[1], (long long)p->C, (long long)p->group);
    if (si_dim_known(p->M) && p->M % p->group != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "output channels %lld are not divisible by group %lld", (long long)p->M,
                         (long long)p->group);
    if (b && (b->ndim != 1 || si_dim_ne(b->dims[0], p->M)))
        return si_dim_known(p->M) ? si_op_err(c, SI_ERR_INVALID_ARG, "B must have shape [%lld]", (long long)p->M)
                                  : si_op_err(c, SI_ERR_INVALID_ARG, "B must be 1-D");
    p->cg = p->C / p->group;
    p->mg = p->M / p->group;
    return si_geom_init(c, nsp, x->dims + 2, w->dims + 2, false, &p->g);
}

si_result si_geom_set_out(si_kctx *c, int k, si_dtype dt, int64_t n, int64_t ch, const nn_geom *g) {
    int64_t dims[SI_MAX_DIMS];
    dims[0] = n;
    dims[1] = ch;
    for (int i = 0; i < g->nsp; i++) dims[2 + i] = g->out[NN_SP - g->nsp + i];
    return si_set_out(c, k, dt, g->nsp + 2, dims);
}

SI_OP_PLANNED(conv_infer, nn_conv, p, conv_prep) {
    return si_geom_set_out(c, 0, si_in(c, 0)->dtype, p->N, p->M, &p->g);
}

/* Shared driver of Conv and ConvTranspose: float32 directly, float16/bfloat16 through float32 copies,
 * float64 in double. */
static si_result nn_conv_dispatch(si_kctx *c, const nn_conv *p, bool transpose) {
    const si_tensor *x = si_in(c, 0), *w = si_in(c, 1), *b = si_in(c, 2);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    if (si_count(x) == 0 || si_count(w) == 0) {
        /* empty reduction: Y is the bias (or zero) */
        memset(y->data, 0, y->nbytes);
        if (b) {
            int64_t per = si_count(y) / (p->N * p->M);
            for (int64_t i = 0; i < si_count(y); i++)
                si_store_f64(y->dtype, y->data, i, si_load_f64(b->dtype, b->data, (i / per) % p->M));
        }
        return SI_OK;
    }
    if (x->dtype == SI_F64) {
        bool ok = transpose ? nn_convt_core_f64(p, x->data, w->data, b ? b->data : NULL, y->data)
                            : nn_conv_core_f64(p, x->data, w->data, b ? b->data : NULL, y->data);
        return ok ? SI_OK : si_op_nomem(c);
    }
    if (x->dtype == SI_F32) {
        bool ok = transpose ? nn_convt_core_f32(p, x->data, w->data, b ? b->data : NULL, y->data)
                            : nn_conv_core_f32(p, x->data, w->data, b ? b->data : NULL, y->data);
        return ok ? SI_OK : si_op_nomem(c);
    }
    float *xf = si_tensor_to_f32(x), *wf = si_tensor_to_f32(w), *bf = b ? si_tensor_to_f32(b) : NULL;
    float *yf = si_calloc((size_t)si_count(y), sizeof(float));
    bool ok = xf && wf && yf && (!b || bf);
    if (ok) ok = transpose ? nn_convt_core_f32(p, xf, wf, bf, yf) : nn_conv_core_f32(p, xf, wf, bf, yf);
    if (ok) si_tensor_from_f32(y, yf);
    SI_FREE_ALL(xf, wf, bf, yf);
    return ok ? SI_OK : si_op_nomem(c);
}

SI_OP_PLANNED(conv_run, nn_conv, p, conv_prep) {
    return nn_conv_dispatch(c, p, false);
}

static si_result convt_prep(si_kctx *c, nn_conv *p) {
    int nsp = 0;
    si_result st = nn_conv_common(c, p, &nsp);
    if (st) return st;
    const si_tensor *x = si_in(c, 0), *w = si_in(c, 1), *b = si_in(c, 2);
    if (si_dim_ne(w->dims[0], p->C))
        return si_op_err(c, SI_ERR_INVALID_ARG, "W has %lld input channels, X has %lld", (long long)w->dims[0],
                         (long long)p->C);
    if (si_dim_known(p->C) && p->C % p->group != 0)
        return si_op_err(c, SI_ERR_INVALID_ARG, "input channels %lld are not divisible by group %lld", (long long)p->C,
                         (long long)p->group);
    if (si_dim_known(w->dims[1]) && w->dims[1] > INT64_MAX / 16 / p->group) /* a hostile group must not overflow M */
        return si_op_err(c, SI_ERR_INVALID_ARG, "group %lld is too large", (long long)p->group);
    p->M = si_dim_mul(w->dims[1], p->group);
    if (b && (b->ndim != 1 || si_dim_ne(b->dims[0], p->M)))
        return si_dim_known(p->M) ? si_op_err(c, SI_ERR_INVALID_ARG, "B must have shape [%lld]", (long long)p->M)
                                  : si_op_err(c, SI_ERR_INVALID_ARG, "B must be 1-D");
    p->cg = p->C / p->group;
    p->mg = w->dims[1];

    int64_t s[NN_SP], d[NN_SP], op[NN_SP], pads[2 * NN_SP], os[NN_SP];
    int ap = 0;
    if ((st = si_attr_ints_n(c, "strides", nsp, 1, s)) || (st = si_attr_ints_n(c, "dilations", nsp, 1, d)) ||
        (st = si_attr_ints_n(c, "output_padding", nsp, 0, op)) || (st = si_attr_ints_n(c, "pads", 2 * nsp, 0, pads)) ||
        (st = si_auto_pad(c, &ap)))
        return st;
    int cnt = 0;
    const int64_t *osa = si_attr_ints(c->node, "output_shape", &cnt);
    bool have_os = osa && cnt > 0;
    if (have_os) {
        if (cnt != nsp && cnt != nsp + 2)
            return si_op_err(c, SI_ERR_INVALID_ARG, "output_shape has %d values, expected %d", cnt, nsp);
        for (int i = 0; i < nsp; i++) os[i] = osa[cnt - nsp + i];
    }
    nn_geom *g = &p->g;
    si_geom_clear(g, nsp);
    int off = NN_SP - nsp;
    /* beyond any tensor that fits in memory, and small enough that s (in - 1) + output_padding + the dilated kernel
     * - pads cannot overflow (each term under 2^60) */
    const int64_t lim = NN_GEOM_MAX / 2;
    for (int i = 0; i < nsp; i++) {
        int64_t in = x->dims[2 + i], k = w->dims[2 + i];
        if (s[i] < 1 || d[i] < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "strides and dilations must be positive");
        if (s[i] > lim || d[i] > lim || op[i] > lim || op[i] < -lim || pads[i] > lim || pads[i] < -lim || pads[i + nsp] > lim ||
            pads[i + nsp] < -lim || (have_os && (os[i] > lim || os[i] < -lim)) || (si_dim_known(in) && in > lim) ||
            (si_dim_known(k) && k > lim))
            return si_op_err(c, SI_ERR_INVALID_ARG,
                             "input %lld, kernel %lld, stride %lld, dilation %lld, output_padding %lld, pads %lld/%lld or output_shape "
                             "exceed %lld",
                             (long long)in, (long long)k, (long long)s[i], (long long)d[i], (long long)op[i], (long long)pads[i],
                             (long long)pads[i + nsp], (long long)lim);
        if (!si_dim_known(in) || !si_dim_known(k)) {
            /* compile time: an explicit output_shape, or with stride 1 the input plus a known amount */
            int64_t o_ = have_os ? os[i] : SI_DIM_UNKNOWN;
            if (!have_os && s[i] == 1 && si_dim_known(k)) {
                int64_t eff = (k - 1) * d[i] + 1;
                o_ = ap == NN_PAD_SAME_UPPER || ap == NN_PAD_SAME_LOWER ? in
                     : ap == NN_PAD_VALID ? si_dim_add(in, op[i] + eff - 1)
                                          : si_dim_add(in, op[i] + eff - 1 - pads[i] - pads[i + nsp]);
            }
            g->in[off + i] = in;
            g->out[off + i] = o_;
            g->k[off + i] = k;
            g->s[off + i] = s[i];
            g->d[off + i] = d[i];
            g->pb[off + i] = g->pe[off + i] = 0;
            continue;
        }
        int64_t eff = (k - 1) * d[i] + 1, pb, pe, o;
        if (have_os || ap == NN_PAD_SAME_UPPER || ap == NN_PAD_SAME_LOWER) {
            o = have_os ? os[i] : in * s[i];
            int64_t total = s[i] * (in - 1) + op[i] + eff - o;
            if (ap == NN_PAD_SAME_UPPER) {
                pb = si_floordiv(total, 2);
                pe = total - pb;
            } else {
                pe = si_floordiv(total, 2);
                pb = total - pe;
            }
        } else {
            pb = ap == NN_PAD_VALID ? 0 : pads[i];
            pe = ap == NN_PAD_VALID ? 0 : pads[i + nsp];
            if (pb < 0 || pe < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "pads must not be negative");
            o = s[i] * (in - 1) + op[i] + eff - pb - pe;
        }
        if (o < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "output spatial size would be %lld", (long long)o);
        g->in[off + i] = in;
        g->out[off + i] = o;
        g->k[off + i] = k;
        g->s[off + i] = s[i];
        g->d[off + i] = d[i];
        g->pb[off + i] = pb;
        g->pe[off + i] = pe;
    }
    return SI_OK;
}

SI_OP_PLANNED(convt_infer, nn_conv, p, convt_prep) {
    return si_geom_set_out(c, 0, si_in(c, 0)->dtype, p->N, p->M, &p->g);
}

SI_OP_PLANNED(convt_run, nn_conv, p, convt_prep) {
    return nn_conv_dispatch(c, p, true);
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(CONV, SI_T_FLOATS, conv_infer, conv_run),
    SI_OP_DEF(CONV_TRANSPOSE, SI_T_FLOATS, convt_infer, convt_run),
};

SI_OP_FAMILY_PARTIAL(conv, defs);
