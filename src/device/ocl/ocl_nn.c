/*
 * ocl_nn.c — the OCL planners of MatMul and Gemm (tiled or vector GEMM kernels), Conv (im2col + GEMM or a
 * direct kernel), ConvTranspose, pooling, the reductions, Softmax/LogSoftmax and the normalisations.
 */
#include "device/ocl/ocl_ops.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

typedef struct gemm_args {
    ocl_arg a, b, c, y;
    bool has_c;
    int64_t M, N, K, sam, sak, sbk, sbn, scm, scn, ystride;
    int br;                         /* batch rank */
    int64_t bdims[SI_MAX_DIMS * 2]; /* batch dims */
    int64_t bs[3][SI_MAX_DIMS * 2]; /* batch strides of A, B, C */
    float alpha, beta;
} gemm_args;

static si_result emit_gemm(ocl_plan *p, gemm_args *g) {
    int64_t batch = si_shape_count(g->br, g->bdims);
    if (g->M == 0 || g->N == 0 || batch == 0) return SI_OK;
    int r = ocl_merge_dims(g->br, g->bdims, 3, g->bs);
    int meta[1 + 4 * SI_MAX_DIMS * 2];
    meta[0] = r;
    for (int k = 0; k < r; k++) {
        meta[1 + k] = (int)g->bdims[k];
        meta[1 + r + k] = (int)g->bs[0][k];
        meta[1 + 2 * r + k] = (int)g->bs[1][k];
        meta[1 + 3 * r + k] = (int)g->bs[2][k];
    }
    int64_t sv[10] = {g->M, g->N, g->K, g->sam, g->sak, g->sbk, g->sbn, g->scm, g->scn, g->ystride};
    int mid, sid;
    si_result s = ocl_meta(p, meta, 1 + 4 * r, &mid);
    if (!s) s = ocl_meta64(p, sv, 10, &sid);
    if (s) return s;
    ocl_step st;
    bool v8 = p->caps->cpu && g->sbn == 1, dot = p->caps->cpu && !v8 && g->sak == 1 && g->sbk == 1;
    const char *kernel = v8 ? "gemm_v8" : dot ? "gemm_dot" : "gemm";
    st_args(&st, kernel, g->a, g->b, g->has_c ? g->c : g->a, g->y, arg_meta(mid), arg_meta(sid), arg_int(g->has_c), arg_flt(g->alpha), arg_flt(g->beta));
    st.dims = 3;
    if (v8 || dot) { /* one work item per 4x8 (1x4) block; the driver picks the work-group size */
        st.gws[0] = ((size_t)g->N + (v8 ? 7 : 3)) / (v8 ? 8 : 4);
        st.gws[1] = v8 ? ((size_t)g->M + 3) / 4 : (size_t)g->M;
        st.gws[2] = (size_t)batch;
        return ocl_emit(p, &st);
    }
    size_t ts = (size_t)p->caps->ts;
    st.gws[0] = round_up((size_t)g->N, ts);
    st.gws[1] = round_up((size_t)g->M, ts);
    st.gws[2] = (size_t)batch;
    st.lws[0] = ts;
    st.lws[1] = ts;
    st.lws[2] = 1;
    return ocl_emit(p, &st);
}

// --- matrix products ----------------------------------------------------------------------------------------

si_result ocl_plan_matmul(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *A = &p->in[0], *B = &p->in[1];
    int na = A->ndim, nb = B->ndim;
    if (na < 1 || nb < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "inputs must have rank 1 or more");
    int64_t M = na == 1 ? 1 : A->dims[na - 2], K = A->dims[na - 1];
    int64_t Kb = nb == 1 ? B->dims[0] : B->dims[nb - 2], N = nb == 1 ? 1 : B->dims[nb - 1];
    if (K != Kb) return ocl_err(p, SI_ERR_INVALID_ARG, "inner dimensions differ (%lld vs %lld)", (long long)K, (long long)Kb);
    gemm_args g;
    memset(&g, 0, sizeof g);
    int bra = na > 2 ? na - 2 : 0, brb = nb > 2 ? nb - 2 : 0;
    if ((s = ocl_bcast(p, bra, A->dims, brb, B->dims, &g.br, g.bdims))) return s;
    int64_t od[SI_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < g.br; k++) od[nd++] = g.bdims[k];
    if (na > 1) od[nd++] = M;
    if (nb > 1) od[nd++] = N;
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    si_broadcast_strides(bra, A->dims, g.br, g.bdims, g.bs[0]);
    si_broadcast_strides(brb, B->dims, g.br, g.bdims, g.bs[1]);
    for (int k = 0; k < g.br; k++) {
        g.bs[0][k] *= M * K;
        g.bs[1][k] *= K * N;
        g.bs[2][k] = 0;
    }
    g.a = arg_val(A->vid);
    g.b = arg_val(B->vid);
    g.y = arg_val(p->out[0].vid);
    g.M = M;
    g.N = N;
    g.K = K;
    g.sam = K;
    g.sak = 1;
    g.sbk = N;
    g.sbn = 1;
    g.ystride = M * N;
    g.alpha = 1.0f;
    return emit_gemm(p, &g);
}

si_result ocl_plan_gemm(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *A = &p->in[0], *B = &p->in[1];
    if (A->ndim != 2 || B->ndim != 2) return ocl_err(p, SI_ERR_INVALID_ARG, "A and B must be matrices");
    bool ta = si_attr_int(p->node, "transA", 0) != 0, tb = si_attr_int(p->node, "transB", 0) != 0;
    gemm_args g;
    memset(&g, 0, sizeof g);
    g.M = ta ? A->dims[1] : A->dims[0];
    g.K = ta ? A->dims[0] : A->dims[1];
    g.sam = ta ? 1 : A->dims[1];
    g.sak = ta ? A->dims[1] : 1;
    int64_t Kb = tb ? B->dims[1] : B->dims[0];
    g.N = tb ? B->dims[0] : B->dims[1];
    g.sbk = tb ? 1 : B->dims[1];
    g.sbn = tb ? B->dims[1] : 1;
    if (g.K != Kb) return ocl_err(p, SI_ERR_INVALID_ARG, "inner dimensions differ (%lld vs %lld)", (long long)g.K, (long long)Kb);
    int64_t od[2] = {g.M, g.N};
    if (has_in(p, 2)) {
        if ((s = ocl_need_f32(p, 2))) return s;
        const ocl_desc *C = &p->in[2];
        if (C->ndim > 2) return ocl_err(p, SI_ERR_INVALID_ARG, "C has rank %d", C->ndim);
        for (int k = 0; k < C->ndim; k++) {
            int64_t want = od[2 - C->ndim + k];
            if (C->dims[k] != 1 && C->dims[k] != want) return ocl_err(p, SI_ERR_INVALID_ARG, "C does not broadcast to [M, N]");
        }
        int64_t cs[2];
        si_broadcast_strides(C->ndim, C->dims, 2, od, cs);
        g.scm = cs[0];
        g.scn = cs[1];
        g.has_c = dcount(C) > 0;
        g.c = arg_val(C->vid);
    }
    if ((s = ocl_set_out(p, 0, 2, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    g.a = arg_val(A->vid);
    g.b = arg_val(B->vid);
    g.y = arg_val(p->out[0].vid);
    g.ystride = g.M * g.N;
    g.alpha = si_attr_float(p->node, "alpha", 1.0f);
    g.beta = si_attr_float(p->node, "beta", 1.0f);
    g.br = 0;
    return emit_gemm(p, &g);
}

// --- convolution and pooling --------------------------------------------------------------------------------

typedef struct window {
    int nsp;                 /* spatial dims (1..3) */
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} window;

/* Kernel size, strides, dilations, pads (explicit or auto_pad) and output size of a sliding window over the
 * spatial dims of x (rank 3..5). ceil: pooling's ceil_mode. */
static si_result window_plan(ocl_plan *p, const ocl_desc *x, const int64_t *kshape, bool ceil_mode, bool allow_dil, window *w) {
    si_result s;
    memset(w, 0, sizeof *w);
    w->nsp = x->ndim - 2;
    if (w->nsp < 1 || w->nsp > 3) return ocl_err(p, SI_ERR_UNSUPPORTED, "%d spatial dimensions are not supported (1 to 3)", w->nsp);
    int64_t v[16];
    int n;
    for (int i = 0; i < w->nsp; i++) {
        w->in[i] = x->dims[2 + i];
        w->k[i] = kshape[i];
        w->s[i] = w->d[i] = 1;
        if (w->k[i] < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "kernel size %lld", (long long)w->k[i]);
    }
    if ((s = ocl_attr_ints(p, "strides", v, 16, &n))) return s;
    if (n >= 0) {
        if (n != w->nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "strides has %d values for %d spatial dimensions", n, w->nsp);
        for (int i = 0; i < n; i++)
            if ((w->s[i] = v[i]) < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "stride %lld", (long long)v[i]);
    }
    if ((s = ocl_attr_ints(p, "dilations", v, 16, &n))) return s;
    if (n >= 0) {
        if (n != w->nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "dilations has %d values for %d spatial dimensions", n, w->nsp);
        for (int i = 0; i < n; i++) {
            if ((w->d[i] = v[i]) < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "dilation %lld", (long long)v[i]);
            if (v[i] != 1 && !allow_dil) return ocl_err(p, SI_ERR_UNSUPPORTED, "dilations are not supported in this opset");
        }
    }
    const char *ap = si_attr_str(p->node, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") && ap[0])
        return ocl_err(p, SI_ERR_UNSUPPORTED, "auto_pad '%s' is not supported", ap);
    if ((s = ocl_attr_ints(p, "pads", v, 16, &n))) return s;
    if (n >= 0 && !same_upper && !same_lower && !valid) {
        if (n != 2 * w->nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "pads has %d values for %d spatial dimensions", n, w->nsp);
        for (int i = 0; i < w->nsp; i++) {
            w->pb[i] = v[i];
            w->pe[i] = v[w->nsp + i];
            if (w->pb[i] < 0 || w->pe[i] < 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "negative pads are not supported");
        }
    }
    for (int i = 0; i < w->nsp; i++) {
        int64_t ext = (w->k[i] - 1) * w->d[i] + 1;
        if (same_upper || same_lower) {
            w->out[i] = (w->in[i] + w->s[i] - 1) / w->s[i];
            int64_t total = (w->out[i] - 1) * w->s[i] + ext - w->in[i];
            if (total < 0) total = 0;
            w->pb[i] = same_upper ? total / 2 : total - total / 2;
            w->pe[i] = total - w->pb[i];
        } else {
            int64_t span = w->in[i] + w->pb[i] + w->pe[i] - ext;
            if (span < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "the window (%lld) is larger than the padded input (%lld)", (long long)ext,
                                         (long long)(w->in[i] + w->pb[i] + w->pe[i]));
            if (ceil_mode) {
                w->out[i] = (span + w->s[i] - 1) / w->s[i] + 1;
                if ((w->out[i] - 1) * w->s[i] >= w->in[i] + w->pb[i]) w->out[i]--; /* the last window must start inside */
            } else {
                w->out[i] = span / w->s[i] + 1;
            }
        }
        if (w->out[i] < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "empty output along spatial dimension %d", i);
    }
    return SI_OK;
}

/* [ID, IH, IW, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW] with missing leading spatial
 * dims set to 1 (pads 0). */
static void window_meta(const window *w, int64_t *m) {
    int off = 3 - w->nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - off;
        bool on = j >= 0;
        m[i] = on ? w->in[j] : 1;
        m[3 + i] = on ? w->out[j] : 1;
        m[6 + i] = on ? w->k[j] : 1;
        m[9 + i] = on ? w->s[j] : 1;
        m[12 + i] = on ? w->pb[j] : 0;
        m[15 + i] = on ? w->d[j] : 1;
    }
}

/* The metadata of the im2col, conv and conv_transpose kernels: N, C, input dims, OC, output dims, kernel,
 * strides, pads, dilations (3-D, from window_meta), G. */
static si_result conv_meta(ocl_plan *p, const window *w, int64_t N, int64_t C, int64_t OC, int64_t G, int *mid) {
    int64_t wm[18], m[22] = {N, C};
    window_meta(w, wm);
    memcpy(m + 2, wm, sizeof(int64_t) * 3);
    m[5] = OC;
    memcpy(m + 6, wm + 3, sizeof(int64_t) * 15);
    m[21] = G;
    return ocl_meta64(p, m, 22, mid);
}

/* A direct convolution kernel (conv, conv_transpose): one work-item per output element. */
static si_result emit_direct_conv(ocl_plan *p, const char *kernel, int mid) {
    const ocl_desc *X = &p->in[0], *W = &p->in[1];
    return OCL_EMIT_1D(p, kernel, dcount(&p->out[0]), arg_val(X->vid), arg_val(W->vid), arg_val(has_in(p, 2) ? p->in[2].vid : W->vid),
                       arg_val(p->out[0].vid), arg_int(dcount(&p->out[0])), arg_meta(mid), arg_int(has_in(p, 2)));
}

si_result ocl_plan_conv(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *X = &p->in[0], *W = &p->in[1];
    if (X->ndim < 3 || X->ndim > 5) return ocl_err(p, SI_ERR_UNSUPPORTED, "input rank %d is not supported (3 to 5)", X->ndim);
    if (W->ndim != X->ndim) return ocl_err(p, SI_ERR_INVALID_ARG, "W has rank %d, X has rank %d", W->ndim, X->ndim);
    int64_t G = si_attr_int(p->node, "group", 1);
    int64_t N = X->dims[0], C = X->dims[1], OC = W->dims[0];
    if (G < 1 || C % G || OC % G || W->dims[1] * G != C)
        return ocl_err(p, SI_ERR_INVALID_ARG, "group %lld does not fit %lld input and %lld output channels (W has %lld per group)", (long long)G,
                       (long long)C, (long long)OC, (long long)W->dims[1]);
    int64_t ks[SI_MAX_DIMS];
    int n;
    if ((s = ocl_attr_ints(p, "kernel_shape", ks, SI_MAX_DIMS, &n))) return s;
    if (n >= 0) {
        if (n != X->ndim - 2) return ocl_err(p, SI_ERR_INVALID_ARG, "kernel_shape has %d values", n);
        for (int i = 0; i < n; i++)
            if (ks[i] != W->dims[2 + i]) return ocl_err(p, SI_ERR_INVALID_ARG, "kernel_shape differs from W's shape");
    }
    window w;
    if ((s = window_plan(p, X, W->dims + 2, false, true, &w))) return s;
    if (has_in(p, 2)) {
        if ((s = ocl_need_f32(p, 2))) return s;
        if (dcount(&p->in[2]) != OC) return ocl_err(p, SI_ERR_INVALID_ARG, "B has %lld values for %lld output channels", (long long)dcount(&p->in[2]), (long long)OC);
    }
    int64_t od[SI_MAX_DIMS] = {N, OC};
    for (int i = 0; i < w.nsp; i++) od[2 + i] = w.out[i];
    if ((s = ocl_set_out(p, 0, X->ndim, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t wm[18];
    window_meta(&w, wm);
    int64_t P = wm[3] * wm[4] * wm[5], KK = wm[6] * wm[7] * wm[8], CG = C / G, OCG = OC / G;
    int64_t Pin = wm[0] * wm[1] * wm[2];
    bool one = KK == 1, unit = true;
    for (int i = 0; i < w.nsp; i++)
        if (w.s[i] != 1 || w.pb[i] || w.pe[i]) unit = false;
    size_t col_bytes = (size_t)(N * C * KK * P) * sizeof(float);
    if ((one && unit) || (col_bytes <= p->caps->im2col_max && (cl_ulong)col_bytes <= p->caps->max_alloc && N * C * KK * P <= INT_MAX)) {
        /* as GEMM per (image, group): Y[n,g] (OCG x P) = W[g] (OCG x CG*KK) * cols[n,g] (CG*KK x P) + bias */
        gemm_args g;
        memset(&g, 0, sizeof g);
        if (one && unit) {
            g.b = arg_val(X->vid);
            g.bs[1][0] = C * Pin;
            g.bs[1][1] = CG * Pin;
        } else {
            int mid;
            if ((s = conv_meta(p, &w, N, C, OC, G, &mid))) return s;
            ocl_step st;
            st_args(&st, "im2col", arg_val(X->vid), arg_scratch(), arg_int(N * C * KK), arg_meta(mid));
            st.dims = 2;
            st.gws[0] = (size_t)(wm[3] * wm[4]); /* OD * OH */
            st.gws[1] = (size_t)(N * C * KK);
            if ((s = ocl_emit(p, &st))) return s;
            ocl_scratch(p, col_bytes);
            g.b = arg_scratch();
            g.bs[1][0] = C * KK * P;
            g.bs[1][1] = CG * KK * P;
        }
        g.a = arg_val(W->vid);
        g.y = arg_val(p->out[0].vid);
        g.M = OCG;
        g.N = P;
        g.K = CG * KK;
        g.sam = CG * KK;
        g.sak = 1;
        g.sbk = P;
        g.sbn = 1;
        g.ystride = OCG * P;
        g.br = 2;
        g.bdims[0] = N;
        g.bdims[1] = G;
        g.bs[0][0] = 0;
        g.bs[0][1] = OCG * CG * KK;
        g.alpha = 1.0f;
        if (has_in(p, 2)) {
            g.has_c = true;
            g.c = arg_val(p->in[2].vid);
            g.scm = 1;
            g.scn = 0;
            g.bs[2][0] = 0;
            g.bs[2][1] = OCG;
            g.beta = 1.0f;
        }
        return emit_gemm(p, &g);
    }
    int mid;
    if ((s = conv_meta(p, &w, N, C, OC, G, &mid))) return s;
    return emit_direct_conv(p, "conv", mid);
}

si_result ocl_plan_conv_transpose(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *X = &p->in[0], *W = &p->in[1];
    int nsp = X->ndim - 2;
    if (nsp < 1 || nsp > 3) return ocl_err(p, SI_ERR_UNSUPPORTED, "input rank %d is not supported (3 to 5)", X->ndim);
    if (W->ndim != X->ndim) return ocl_err(p, SI_ERR_INVALID_ARG, "W has rank %d, X has rank %d", W->ndim, X->ndim);
    int64_t G = si_attr_int(p->node, "group", 1), N = X->dims[0], C = X->dims[1];
    if (G < 1 || C % G || W->dims[0] != C) return ocl_err(p, SI_ERR_INVALID_ARG, "W does not fit %lld input channels in %lld groups", (long long)C, (long long)G);
    int64_t OC = W->dims[1] * G;
    if (has_in(p, 2)) {
        if ((s = ocl_need_f32(p, 2))) return s;
        if (dcount(&p->in[2]) != OC) return ocl_err(p, SI_ERR_INVALID_ARG, "B must have %lld values", (long long)OC);
    }
    int64_t st[3] = {1, 1, 1}, dl[3] = {1, 1, 1}, op[3] = {0, 0, 0}, pads[6] = {0}, os[SI_MAX_DIMS + 2], ks[SI_MAX_DIMS];
    int n, nos;
    if ((s = ocl_attr_ints(p, "strides", st, 3, &n))) return s;
    if (n >= 0 && n != nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "strides has %d values", n);
    if ((s = ocl_attr_ints(p, "dilations", dl, 3, &n))) return s;
    if (n >= 0 && n != nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "dilations has %d values", n);
    if ((s = ocl_attr_ints(p, "output_padding", op, 3, &n))) return s;
    if (n >= 0 && n != nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "output_padding has %d values", n);
    if ((s = ocl_attr_ints(p, "pads", pads, 6, &n))) return s;
    if (n >= 0 && n != 2 * nsp) return ocl_err(p, SI_ERR_INVALID_ARG, "pads has %d values", n);
    if ((s = ocl_attr_ints(p, "kernel_shape", ks, SI_MAX_DIMS, &n))) return s;
    for (int i = 0; n >= 0 && i < nsp; i++)
        if (n != nsp || ks[i] != W->dims[2 + i]) return ocl_err(p, SI_ERR_INVALID_ARG, "kernel_shape differs from W's shape");
    if ((s = ocl_attr_ints(p, "output_shape", os, SI_MAX_DIMS + 2, &nos))) return s;
    if (nos > 0 && nos != nsp && nos != nsp + 2) return ocl_err(p, SI_ERR_INVALID_ARG, "output_shape has %d values", nos);
    const char *ap = si_attr_str(p->node, "auto_pad", "NOTSET");
    bool su = !strcmp(ap, "SAME_UPPER"), sl = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!su && !sl && !valid && ap[0] && strcmp(ap, "NOTSET")) return ocl_err(p, SI_ERR_UNSUPPORTED, "auto_pad '%s' is not supported", ap);
    window w;
    memset(&w, 0, sizeof w);
    w.nsp = nsp;
    int64_t od[SI_MAX_DIMS] = {N, OC};
    for (int i = 0; i < nsp; i++) {
        int64_t in = X->dims[2 + i], k = W->dims[2 + i], eff = (k - 1) * dl[i] + 1, o, pb, pe;
        if (st[i] < 1 || dl[i] < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "strides and dilations must be positive");
        if (nos > 0 || su || sl) {
            o = nos > 0 ? os[nos - nsp + i] : in * st[i];
            int64_t total = st[i] * (in - 1) + op[i] + eff - o;
            int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor */
            pb = su ? half : total - half;
            pe = total - pb;
        } else {
            pb = valid ? 0 : pads[i];
            pe = valid ? 0 : pads[nsp + i];
            if (pb < 0 || pe < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "pads must not be negative");
            o = st[i] * (in - 1) + op[i] + eff - pb - pe;
        }
        if (o < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "output spatial size would be %lld", (long long)o);
        w.in[i] = in;
        w.out[i] = o;
        w.k[i] = k;
        w.s[i] = st[i];
        w.d[i] = dl[i];
        w.pb[i] = pb;
        od[2 + i] = o;
    }
    if ((s = ocl_set_out(p, 0, X->ndim, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int mid;
    if ((s = conv_meta(p, &w, N, C, OC, G, &mid))) return s;
    return emit_direct_conv(p, "conv_transpose", mid);
}

si_result ocl_plan_pool(ocl_plan *p, const void *arg) {
    (void)arg;
    bool maxp = si_node_is(p->node, SI_OP_MAX_POOL);
    si_result s;
    if (maxp && has_out(p, 1)) return ocl_err(p, SI_ERR_UNSUPPORTED, "the Indices output is not supported");
    if ((s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *X = &p->in[0];
    if (X->ndim < 3 || X->ndim > 5) return ocl_err(p, SI_ERR_UNSUPPORTED, "input rank %d is not supported (3 to 5)", X->ndim);
    int64_t ks[SI_MAX_DIMS];
    int n;
    if ((s = ocl_attr_ints(p, "kernel_shape", ks, SI_MAX_DIMS, &n))) return s;
    if (n != X->ndim - 2) return ocl_err(p, SI_ERR_INVALID_ARG, "kernel_shape must have %d values", X->ndim - 2);
    bool ceil_mode = si_attr_int(p->node, "ceil_mode", 0) != 0;
    bool allow_dil = maxp ? p->node->opset >= 10 : p->node->opset >= 19;
    window w;
    if ((s = window_plan(p, X, ks, ceil_mode, allow_dil, &w))) return s;
    int64_t od[SI_MAX_DIMS] = {X->dims[0], X->dims[1]};
    for (int i = 0; i < w.nsp; i++) od[2 + i] = w.out[i];
    if ((s = ocl_set_out(p, 0, X->ndim, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t m[22];
    m[0] = X->dims[0] * X->dims[1];
    window_meta(&w, m + 1);
    /* ends of the padded input per (D, H, W) */
    int off = 3 - w.nsp;
    for (int i = 0; i < 3; i++) m[19 + i] = i - off >= 0 ? w.in[i - off] + w.pe[i - off] : 1;
    int mid;
    if ((s = ocl_meta64(p, m, 22, &mid))) return s;
    int mode = maxp ? 0 : si_attr_int(p->node, "count_include_pad", 0) ? 2 : 1;
    return OCL_EMIT_1D(p, "pool", dcount(&p->out[0]), arg_val(X->vid), arg_val(p->out[0].vid), arg_int(dcount(&p->out[0])), arg_meta(mid),
                       arg_int(mode));
}

// --- reductions ---------------------------------------------------------------------------------------------

/* Reduce x over the axes flagged in `red` (rank x->ndim) with op, into value vy. */
static si_result emit_reduce(ocl_plan *p, const ocl_desc *x, const bool *red, int op, int vy) {
    int nd = x->ndim;
    int64_t st[SI_MAX_DIMS];
    si_strides(nd, x->dims, st);
    int64_t kd[SI_MAX_DIMS * 2], ks[1][SI_MAX_DIMS * 2], rd[SI_MAX_DIMS * 2], rs[1][SI_MAX_DIMS * 2];
    int nk = 0, nr = 0;
    int64_t n = 1, rcount = 1;
    for (int k = 0; k < nd; k++) {
        if (red[k]) {
            rd[nr] = x->dims[k];
            rs[0][nr++] = st[k];
            rcount *= x->dims[k];
        } else {
            kd[nk] = x->dims[k];
            ks[0][nk++] = st[k];
            n *= x->dims[k];
        }
    }
    if (n == 0) return SI_OK;
    nk = ocl_merge_dims(nk, kd, 1, ks);
    nr = ocl_merge_dims(nr, rd, 1, rs);
    if (rcount == 0) nr = 0;
    int meta[3 + 4 * SI_MAX_DIMS];
    int o = 0;
    meta[o++] = nk;
    for (int k = 0; k < nk; k++) meta[o++] = (int)kd[k];
    for (int k = 0; k < nk; k++) meta[o++] = (int)ks[0][k];
    meta[o++] = nr;
    for (int k = 0; k < nr; k++) meta[o++] = (int)rd[k];
    for (int k = 0; k < nr; k++) meta[o++] = (int)rs[0][k];
    meta[o++] = (int)rcount;
    int mid;
    si_result s = ocl_meta(p, meta, o, &mid);
    if (s) return s;
    return OCL_EMIT_1D(p, "reduce", n, arg_val(x->vid), arg_val(vy), arg_int(n), arg_meta(mid), arg_int(op));
}

si_result ocl_plan_reduce(ocl_plan *p, const void *arg) {
    const reduce_def *rd = arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    int64_t axes[SI_MAX_DIMS * 2];
    int na = -1;
    if (p->node->opset >= rd->axes_input_opset) {
        if (has_in(p, 1) && (s = ocl_const_ints(p, 1, axes, SI_MAX_DIMS * 2, &na))) return s;
    } else if ((s = ocl_attr_ints(p, "axes", axes, SI_MAX_DIMS * 2, &na))) {
        return s;
    }
    bool keep = si_attr_int(p->node, "keepdims", 1) != 0;
    bool noop = si_attr_int(p->node, "noop_with_empty_axes", 0) != 0;
    bool red[SI_MAX_DIMS] = {false};
    if (na <= 0) {
        if (noop && p->node->opset >= rd->axes_input_opset) {
            if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
            return ocl_emit_view(p);
        }
        for (int k = 0; k < x->ndim; k++) red[k] = true;
    } else {
        for (int i = 0; i < na; i++) {
            int a;
            if ((s = ocl_norm_axis(p, axes[i], x->ndim, &a))) return s;
            red[a] = true;
        }
    }
    int64_t od[SI_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (!red[k]) od[nd++] = x->dims[k];
        else if (keep) od[nd++] = 1;
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return emit_reduce(p, x, red, rd->code, p->out[0].vid);
}

si_result ocl_plan_global_pool(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    if (x->ndim < 2) return ocl_err(p, SI_ERR_INVALID_ARG, "input rank %d is below 2", x->ndim);
    bool red[SI_MAX_DIMS] = {false};
    int64_t od[SI_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) {
        red[k] = k >= 2;
        od[k] = k >= 2 ? 1 : x->dims[k];
    }
    if ((s = ocl_set_out(p, 0, x->ndim, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    return emit_reduce(p, x, red, si_node_is(p->node, SI_OP_GLOBAL_MAX_POOL) ? 2 : 1, p->out[0].vid);
}

si_result ocl_plan_softmax(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    const ocl_desc *x = &p->in[0];
    if (x->ndim < 1) return ocl_err(p, SI_ERR_UNSUPPORTED, "a scalar input is not supported");
    bool old = p->node->opset < 13;
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", old ? 1 : -1), x->ndim, &axis))) return s;
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t outer = si_shape_count(axis, x->dims), len, inner;
    if (old) {
        len = si_shape_count(x->ndim - axis, x->dims + axis);
        inner = 1;
    } else {
        len = x->dims[axis];
        inner = si_shape_count(x->ndim - axis - 1, x->dims + axis + 1);
    }
    int64_t rows = outer * inner;
    if (rows == 0 || len == 0) return SI_OK;
    return OCL_EMIT_1D(p, "softmax", rows, arg_val(x->vid), arg_val(p->out[0].vid), arg_int(rows), arg_int(len), arg_int(inner),
                       arg_int(si_node_is(p->node, SI_OP_LOG_SOFTMAX)));
}

// --- normalization ------------------------------------------------------------------------------------------

si_result ocl_plan_batchnorm(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    for (int k = 0; k < 5; k++)
        if ((s = ocl_need_f32(p, k))) return s;
    if ((s = ocl_max_inputs(p, 5))) return s;
    for (int k = 1; k < p->n_out; k++)
        if (has_out(p, k)) return ocl_err(p, SI_ERR_UNSUPPORTED, "training outputs (running mean/var) are not supported");
    if (si_attr_int(p->node, "training_mode", 0)) return ocl_err(p, SI_ERR_UNSUPPORTED, "training_mode=1 is not supported");
    if (p->node->opset < 9 && si_attr_int(p->node, "spatial", 1) != 1) return ocl_err(p, SI_ERR_UNSUPPORTED, "spatial=0 is not supported");
    if (p->node->opset < 7 && !si_attr_int(p->node, "is_test", 1)) return ocl_err(p, SI_ERR_UNSUPPORTED, "is_test=0 is not supported");
    const ocl_desc *x = &p->in[0];
    if (x->ndim < 2) return ocl_err(p, SI_ERR_UNSUPPORTED, "input rank %d is not supported", x->ndim);
    int64_t C = x->dims[1];
    for (int k = 1; k < 5; k++)
        if (dcount(&p->in[k]) != C) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d has %lld values for %lld channels", k, (long long)dcount(&p->in[k]), (long long)C);
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0)) return SI_OK;
    float eps = si_attr_float(p->node, "epsilon", 1e-5f);
    int64_t inner = si_shape_count(x->ndim - 2, x->dims + 2), nc = dcount(x) / (inner ? inner : 1);
    ocl_step st;
    if (p->in[1].cval && p->in[2].cval && p->in[3].cval && p->in[4].cval && inner > 0 && C <= (1 << 20)) {
        /* constant parameters: y = x * a + b per channel, a and b computed here */
        if (!p->build) return SI_OK;
        int *ab = si_malloc(sizeof(int) * (size_t)(2 * C + 1));
        if (!ab) return si_err(SI_ERR_NO_MEM, "out of memory");
        const float *sc = p->in[1].cval->data, *bi = p->in[2].cval->data, *mu = p->in[3].cval->data, *va = p->in[4].cval->data;
        for (int64_t c = 0; c < C; c++) {
            double a = (double)sc[c] / sqrt((double)va[c] + (double)eps);
            ab[c] = f2bits((float)a);
            ab[C + c] = f2bits((float)((double)bi[c] - (double)mu[c] * a));
        }
        int mid;
        s = ocl_meta(p, ab, (int)(2 * C), &mid);
        si_free(ab);
        if (s) return s;
        st_args(&st, "chan_affine", arg_val(x->vid), arg_meta(mid), arg_val(p->out[0].vid), arg_int(inner), arg_int(nc), arg_int(C));
        st.dims = 2;
        st.gws[0] = (size_t)inner;
        st.gws[1] = (size_t)nc;
        return nc ? ocl_emit(p, &st) : SI_OK;
    }
    return OCL_EMIT_1D(p, "batchnorm", dcount(x), arg_val(x->vid), arg_val(p->in[1].vid), arg_val(p->in[2].vid), arg_val(p->in[3].vid),
                       arg_val(p->in[4].vid), arg_val(p->out[0].vid), arg_int(dcount(x)), arg_int(C), arg_int(inner), arg_flt(eps));
}

/* Scale/bias of LayerNormalization over the trailing dims from `axis`: its length when it indexes the row
 * modulo its length (its shape, leading 1s dropped, is a suffix of the normalized shape), else -1. */
static int64_t row_param_len(const ocl_desc *x, int axis, const ocl_desc *t) {
    int nt = t->ndim, lead = 0;
    while (lead < nt && t->dims[lead] == 1) lead++;
    int rest = nt - lead, nn = x->ndim - axis;
    if (rest == 0) return 1;
    if (rest > nn) return -1;
    for (int i = 0; i < rest; i++)
        if (t->dims[lead + i] != x->dims[x->ndim - rest + i]) return -1;
    return dcount(t);
}

si_result ocl_plan_layernorm(ocl_plan *p, const void *arg) {
    (void)arg;
    bool rms = si_node_is(p->node, SI_OP_RMS_NORMALIZATION);
    si_result s;
    if ((s = ocl_max_inputs(p, rms ? 2 : 3)) || (s = ocl_max_outputs(p, rms ? 1 : 3))) return s;
    const ocl_desc *x = &p->in[0];
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", -1), x->ndim, &axis))) return s;
    int64_t stash = si_attr_int(p->node, "stash_type", 1);
    if (stash != 1) return ocl_err(p, SI_ERR_UNSUPPORTED, "stash_type %lld is not supported (1: float32)", (long long)stash);
    int64_t rows = si_shape_count(axis, x->dims), cols = si_shape_count(x->ndim - axis, x->dims + axis);
    int64_t slen = row_param_len(x, axis, &p->in[1]), blen = 1;
    if (slen < 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "the scale's shape does not broadcast along the normalized axes");
    if (has_in(p, 2)) {
        if ((s = ocl_need_f32(p, 2))) return s;
        if ((blen = row_param_len(x, axis, &p->in[2])) < 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "the bias's shape does not broadcast along the normalized axes");
    }
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    int64_t sd[SI_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) sd[k] = k < axis ? x->dims[k] : 1;
    for (int k = 1; k < 3 && k < p->n_out; k++)
        if (has_out(p, k) && (s = ocl_set_out(p, k, x->ndim, sd))) return s;
    if (!has_out(p, 0)) {
        if (has_out(p, 1) || has_out(p, 2)) return ocl_err(p, SI_ERR_UNSUPPORTED, "Mean/InvStdDev without Y are not supported");
        return SI_OK;
    }
    bool stats = has_out(p, 1) || has_out(p, 2);
    if (stats && !(has_out(p, 1) && has_out(p, 2))) return ocl_err(p, SI_ERR_UNSUPPORTED, "Mean and InvStdDev must be requested together");
    if (rows == 0) return SI_OK;
    ocl_step st;
    st_args(&st, "layernorm", arg_val(x->vid), arg_val(p->in[1].vid), arg_val(has_in(p, 2) ? p->in[2].vid : p->in[1].vid), arg_val(p->out[0].vid),
            arg_val(stats ? p->out[1].vid : p->out[0].vid), arg_val(stats ? p->out[2].vid : p->out[0].vid), arg_int(cols),
            arg_flt(si_attr_float(p->node, "epsilon", 1e-5f)), arg_int((has_in(p, 2) ? 1 : 0) | (stats ? 2 : 0) | (rms ? 4 : 0)), arg_int(slen),
            arg_int(blen));
    return ocl_emit_rows(p, &st, rows);
}

si_result ocl_plan_groupnorm(ocl_plan *p, const void *arg) {
    (void)arg;
    bool inst = si_node_is(p->node, SI_OP_INSTANCE_NORMALIZATION);
    si_result s;
    const ocl_desc *x = &p->in[0];
    if (x->ndim < 2) return ocl_err(p, SI_ERR_UNSUPPORTED, "input rank %d is not supported", x->ndim);
    int64_t N = x->dims[0], C = x->dims[1], sp = si_shape_count(x->ndim - 2, x->dims + 2);
    int64_t G = inst ? C : si_attr_int(p->node, "num_groups", 0);
    if (G < 1 || C % G) return ocl_err(p, SI_ERR_INVALID_ARG, "num_groups %lld does not divide %lld channels", (long long)G, (long long)C);
    if (!inst && si_attr_int(p->node, "stash_type", 1) != 1) return ocl_err(p, SI_ERR_UNSUPPORTED, "stash_type other than float32 is not supported");
    /* scale/bias per channel (InstanceNormalization, GroupNormalization-21) or per group (-18) */
    bool per_group = !inst && p->node->opset < 21;
    int64_t want = per_group ? G : C;
    for (int k = 1; k < 3; k++)
        if (dcount(&p->in[k]) != want) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d has %lld values, expected %lld", k, (long long)dcount(&p->in[k]), (long long)want);
    if ((s = ocl_set_out(p, 0, x->ndim, x->dims))) return s;
    if (!has_out(p, 0) || N * G == 0) return SI_OK;
    int64_t cols = (C / G) * sp;
    if (cols == 0) return SI_OK;
    ocl_step st;
    st_args(&st, "groupnorm", arg_val(x->vid), arg_val(p->in[1].vid), arg_val(p->in[2].vid), arg_val(p->out[0].vid), arg_int(cols), arg_int(G),
            arg_int(per_group ? 1 : C / G), arg_int(per_group ? cols : sp), arg_flt(si_attr_float(p->node, "epsilon", 1e-5f)));
    return ocl_emit_rows(p, &st, N * G);
}
