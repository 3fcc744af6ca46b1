/*
 * rnn.c — the recurrent layers LSTM, GRU and RNN: forward, reverse and bidirectional, sequence_lens, initial
 * states, LSTM peepholes and input_forget, GRU linear_before_reset, clip, layout 0 and 1, every activation of
 * the specification with its alpha/beta, all outputs optional.
 *
 * The reference kernel is the specification's equations written out per batch row and time step, in double
 * (float16/bfloat16/float32 inputs are widened, the outputs rounded once). Steps at and after a row's
 * sequence length leave Y at zero; Y_h/Y_c hold the state after the row's last step (for the reverse
 * direction: after time 0), and zeros for a row of length 0 (as ONNX Runtime gives).
 *
 * activation_alpha / activation_beta are consumed in the order of the activations that take them (Affine,
 * LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu take alpha; Affine, ScaledTanh, HardSigmoid take
 * beta), as ONNX Runtime reads them; names compare without case.
 */
#include "ops/rnn.h"

#include <strings.h>

#define T_RNN SI_T_FLOATS

// --- attributes and shapes ----------------------------------------------------------------------------------

static const struct {
    const char *name;
    si_rnn_fn fn;
    bool alpha, beta;
    float da, db; /* defaults */
} act_names[] = {
    {"Relu", SI_ACT_RELU, false, false, 0, 0},
    {"Tanh", SI_ACT_TANH, false, false, 0, 0},
    {"Sigmoid", SI_ACT_SIGMOID, false, false, 0, 0},
    {"Affine", SI_ACT_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", SI_ACT_LEAKY_RELU, true, false, 0.01f, 0},
    {"ThresholdedRelu", SI_ACT_THRESHOLDED_RELU, true, false, 1.0f, 0},
    {"ScaledTanh", SI_ACT_SCALED_TANH, true, true, 1.0f, 1.0f},
    {"HardSigmoid", SI_ACT_HARD_SIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", SI_ACT_ELU, true, false, 1.0f, 0},
    {"Softsign", SI_ACT_SOFTSIGN, false, false, 0, 0},
    {"Softplus", SI_ACT_SOFTPLUS, false, false, 0, 0},
};

static si_result read_activations(const si_kctx *c, si_rnn *p) {
    static const si_rnn_fn dflt[3][3] = {
        {SI_ACT_TANH},                                  /* RNN */
        {SI_ACT_SIGMOID, SI_ACT_TANH},                  /* GRU */
        {SI_ACT_SIGMOID, SI_ACT_TANH, SI_ACT_TANH},     /* LSTM */
    };
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 3; k++) {
            p->act[d][k].fn = dflt[p->kind][k < p->n_act ? k : 0];
            p->act[d][k].alpha = p->act[d][k].beta = 0;
        }
    const si_attr *a = si_node_attr(c->node, "activations");
    if (!a || a->type != SI_ATTR_STRINGS || a->n == 0) return SI_OK;
    if (a->n != p->n_act * p->ndir)
        return si_op_err(c, SI_ERR_INVALID_ARG, "activations has %d names, expected %d (%d per direction)", a->n, p->n_act * p->ndir,
                         p->n_act);
    int na = 0, nb = 0;
    const float *alphas = si_attr_floats(c->node, "activation_alpha", &na);
    const float *betas = si_attr_floats(c->node, "activation_beta", &nb);
    int ia = 0, ib = 0;
    for (int i = 0; i < a->n; i++) {
        size_t j = 0;
        while (j < SI_ARRAY_LEN(act_names) && strcasecmp(act_names[j].name, a->strings[i] ? a->strings[i] : "")) j++;
        if (j == SI_ARRAY_LEN(act_names))
            return si_op_err(c, SI_ERR_UNSUPPORTED, "activation '%s' is not supported", a->strings[i] ? a->strings[i] : "");
        si_rnn_act *act = &p->act[i / p->n_act][i % p->n_act];
        act->fn = act_names[j].fn;
        act->alpha = act_names[j].da;
        act->beta = act_names[j].db;
        if (act_names[j].alpha && ia < na) act->alpha = alphas[ia++];
        if (act_names[j].beta && ib < nb) act->beta = betas[ib++];
    }
    if (p->ndir == 1)
        for (int k = 0; k < 3; k++) p->act[1][k] = p->act[0][k];
    return SI_OK;
}

/* t has exactly the dims d[0..n) (what names it). */
static si_result need_shape(const si_kctx *c, const si_tensor *t, const char *what, int n, const int64_t *d) {
    bool ok = t->ndim == n;
    for (int i = 0; ok && i < n; i++) ok = t->dims[i] == d[i];
    if (ok) return SI_OK;
    char got[96], want[96];
    si_shape_str(got, sizeof got, t->dtype, t->ndim, t->dims);
    si_shape_str(want, sizeof want, t->dtype, n, d);
    return si_op_err(c, SI_ERR_INVALID_ARG, "%s has shape %s, expected %s", what, got, want);
}

si_result si_rnn_prepare(const si_kctx *c, si_rnn *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    const si_op_id id = c->node->op->id;
    p->kind = id == SI_OP_LSTM ? SI_RNN_LSTM : id == SI_OP_GRU ? SI_RNN_GRU : SI_RNN_VANILLA;
    p->gates = p->kind == SI_RNN_LSTM ? 4 : p->kind == SI_RNN_GRU ? 3 : 1;
    p->n_act = p->kind == SI_RNN_LSTM ? 3 : p->kind == SI_RNN_GRU ? 2 : 1;
    for (int i = SI_RNN_X; i <= SI_RNN_R; i++)
        if ((st = si_need_input(c, i, false))) return st;
    const si_tensor *x = si_in(c, SI_RNN_X), *w = si_in(c, SI_RNN_W), *r = si_in(c, SI_RNN_R);
    if ((st = si_check_type(c, x->dtype, T_RNN, "X")) || (st = si_same_type(c, x, w, "W")) || (st = si_same_type(c, x, r, "R"))) return st;
    static const char *const dirs[] = {"forward", "reverse", "bidirectional"};
    if ((st = si_attr_choice(c, "direction", "forward", dirs, 3, &p->direction))) return st;
    p->ndir = p->direction == 2 ? 2 : 1;
    p->layout = (int)(c->opset >= 14 ? si_attr_int(c->node, "layout", 0) : 0);
    if (p->layout != 0 && p->layout != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "layout %d must be 0 or 1", p->layout);
    if (x->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "X must have rank 3, got %d", x->ndim);
    p->T = x->dims[p->layout ? 1 : 0];
    p->N = x->dims[p->layout ? 0 : 1];
    p->I = x->dims[2];
    if (r->ndim != 3) return si_op_err(c, SI_ERR_INVALID_ARG, "R must have rank 3, got %d", r->ndim);
    p->H = si_attr_int(c->node, "hidden_size", r->dims[2]);
    if (p->H < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "hidden_size %lld must be positive", (long long)p->H);
    if (p->H > ((int64_t)1 << 32)) /* gates * hidden_size and its multiples must not overflow */
        return si_op_err(c, SI_ERR_INVALID_ARG, "hidden_size %lld is too large", (long long)p->H);
    const int64_t D = p->ndir, GH = p->gates * p->H;
    if ((st = need_shape(c, w, "W", 3, (const int64_t[]){D, GH, p->I})) || (st = need_shape(c, r, "R", 3, (const int64_t[]){D, GH, p->H})))
        return st;
    const si_tensor *b = si_in(c, SI_RNN_B), *sl = si_in(c, SI_RNN_SEQ), *h0 = si_in(c, SI_RNN_H0);
    const si_tensor *c0 = p->kind == SI_RNN_LSTM ? si_in(c, SI_RNN_C0) : NULL, *pp = p->kind == SI_RNN_LSTM ? si_in(c, SI_RNN_P) : NULL;
    if (b && ((st = si_same_type(c, x, b, "B")) || (st = need_shape(c, b, "B", 2, (const int64_t[]){D, 2 * GH})))) return st;
    if (sl) {
        if (sl->dtype != SI_I32 && sl->dtype != SI_I64)
            return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens must be int32, got %s", si_dtype_name(sl->dtype));
        if ((st = need_shape(c, sl, "sequence_lens", 1, (const int64_t[]){p->N}))) return st;
        for (int64_t i = 0; sl->data && i < p->N; i++) {
            int64_t v = si_load_i64(sl->dtype, sl->data, i);
            if (v < 0 || v > p->T)
                return si_op_err(c, SI_ERR_INVALID_ARG, "sequence_lens[%lld] = %lld is outside 0..%lld (the sequence length)", (long long)i,
                                 (long long)v, (long long)p->T);
        }
    }
    int64_t sd[3] = {D, p->N, p->H};
    if (p->layout) sd[0] = p->N, sd[1] = D;
    if (h0 && ((st = si_same_type(c, x, h0, "initial_h")) || (st = need_shape(c, h0, "initial_h", 3, sd)))) return st;
    if (c0 && ((st = si_same_type(c, x, c0, "initial_c")) || (st = need_shape(c, c0, "initial_c", 3, sd)))) return st;
    if (pp && ((st = si_same_type(c, x, pp, "P")) || (st = need_shape(c, pp, "P", 2, (const int64_t[]){D, 3 * p->H})))) return st;
    const si_attr *ca = si_node_attr(c->node, "clip");
    if (ca) {
        p->has_clip = true;
        p->clip = si_attr_float(c->node, "clip", 0.0f);
        if (!(p->clip > 0)) return si_op_err(c, SI_ERR_INVALID_ARG, "clip %g must be positive", (double)p->clip);
    }
    p->input_forget = p->kind == SI_RNN_LSTM && si_attr_int(c->node, "input_forget", 0) != 0;
    p->linear_before_reset = p->kind == SI_RNN_GRU && si_attr_int(c->node, "linear_before_reset", 0) != 0;
    return read_activations(c, p);
}

void si_rnn_out_dims(const si_rnn *p, int64_t y[4], int64_t yh[3]) {
    if (p->layout) {
        y[0] = p->N, y[1] = p->T, y[2] = p->ndir, y[3] = p->H;
        yh[0] = p->N, yh[1] = p->ndir, yh[2] = p->H;
    } else {
        y[0] = p->T, y[1] = p->ndir, y[2] = p->N, y[3] = p->H;
        yh[0] = p->ndir, yh[1] = p->N, yh[2] = p->H;
    }
}

SI_OP_PLANNED(rnn_infer, si_rnn, p, si_rnn_prepare) {
    si_result st = SI_OK;
    int64_t y[4], yh[3];
    si_rnn_out_dims(p, y, yh);
    si_dtype dt = si_in(c, 0)->dtype;
    if ((st = si_set_out(c, 0, dt, 4, y)) || (st = si_set_out(c, 1, dt, 3, yh))) return st;
    return p->kind == SI_RNN_LSTM ? si_set_out(c, 2, dt, 3, yh) : SI_OK;
}

// --- the reference kernel -----------------------------------------------------------------------------------

/* Offsets of element [t, b, :] of X and of [t, d, b, :] of Y, and of [d, b, :] of a state. */
static int64_t x_off(const si_rnn *p, int64_t t, int64_t b) { return (p->layout ? b * p->T + t : t * p->N + b) * p->I; }
static int64_t y_off(const si_rnn *p, int64_t t, int d, int64_t b) {
    return (p->layout ? (b * p->T + t) * p->ndir + d : (t * p->ndir + d) * p->N + b) * p->H;
}
static int64_t s_off(const si_rnn *p, int d, int64_t b) { return (p->layout ? b * p->ndir + d : d * p->N + b) * p->H; }

static double clipped(const si_rnn *p, double v) {
    if (!p->has_clip) return v;
    return v < -p->clip ? -p->clip : v > p->clip ? p->clip : v;
}

/* The doubles of the node's inputs (NULL for absent ones). */
typedef struct rnn_data {
    double *x, *w, *r, *b, *h0, *c0, *pp;
} rnn_data;

static void rnn_data_free(rnn_data *d) { SI_FREE_ALL(d->x, d->w, d->r, d->b, d->h0, d->c0, d->pp); }

/* Run one direction d for batch row b: state h (and cell cs) in and out; writes Y rows. g: gate scratch. */
static void rnn_row(const si_rnn *p, const rnn_data *in, int d, int64_t b, int64_t len, double *h, double *cs, double *g,
                    double *hn, double *y) {
    const int64_t H = p->H, I = p->I, G = p->gates, GH = G * H;
    const double *W = in->w + d * GH * I, *R = in->r + d * GH * H;
    const double *Wb = in->b ? in->b + d * 2 * GH : NULL, *Rb = Wb ? Wb + GH : NULL;
    const double *P = in->pp ? in->pp + d * 3 * H : NULL;
    const si_rnn_act *f = &p->act[d][0], *gg = &p->act[d][1], *hh = &p->act[d][2];
    const bool reverse = p->direction == 1 || d == 1;
    for (int64_t s = 0; s < len; s++) {
        const int64_t t = reverse ? len - 1 - s : s;
        const double *xt = in->x + x_off(p, t, b);
        /* g[k] = X W^T + bias; the recurrent part of the GRU's h gate is kept apart (hn) */
        for (int64_t k = 0; k < GH; k++) {
            double v = Wb ? Wb[k] : 0.0;
            for (int64_t i = 0; i < I; i++) v += xt[i] * W[k * I + i];
            double rv = Rb ? Rb[k] : 0.0;
            bool gru_h = p->kind == SI_RNN_GRU && k >= 2 * H;
            if (!gru_h)
                for (int64_t j = 0; j < H; j++) rv += h[j] * R[k * H + j];
            if (gru_h) hn[k - 2 * H] = rv; /* Rbh; the product with R follows once r is known */
            else v += rv;
            g[k] = v;
        }
        if (p->kind == SI_RNN_VANILLA) {
            for (int64_t j = 0; j < H; j++) h[j] = si_rnn_act_f(f, clipped(p, g[j]));
        } else if (p->kind == SI_RNN_GRU) {
            double *z = g, *r = g + H, *hc = g + 2 * H;
            for (int64_t j = 0; j < H; j++) {
                z[j] = si_rnn_act_f(f, clipped(p, z[j]));
                r[j] = si_rnn_act_f(f, clipped(p, r[j]));
            }
            const double *Rh = R + 2 * H * H;
            for (int64_t j = 0; j < H; j++) {
                double acc = 0;
                if (p->linear_before_reset) { /* r * (h Rh^T + Rbh) */
                    for (int64_t k = 0; k < H; k++) acc += h[k] * Rh[j * H + k];
                    hc[j] += r[j] * (acc + hn[j]);
                } else { /* (r * h) Rh^T + Rbh */
                    for (int64_t k = 0; k < H; k++) acc += r[k] * h[k] * Rh[j * H + k];
                    hc[j] += acc + hn[j];
                }
            }
            for (int64_t j = 0; j < H; j++) {
                double ht = si_rnn_act_f(gg, clipped(p, hc[j]));
                hn[j] = (1.0 - z[j]) * ht + z[j] * h[j];
            }
            memcpy(h, hn, sizeof(double) * (size_t)H);
        } else { /* LSTM, gates i, o, f, c */
            double *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
            for (int64_t j = 0; j < H; j++) {
                double i = si_rnn_act_f(f, clipped(p, gi[j] + (P ? P[j] * cs[j] : 0.0)));
                double fg = p->input_forget ? 1.0 - i : si_rnn_act_f(f, clipped(p, gf[j] + (P ? P[2 * H + j] * cs[j] : 0.0)));
                double ct = si_rnn_act_f(gg, clipped(p, gc[j]));
                cs[j] = fg * cs[j] + i * ct;
                double o = si_rnn_act_f(f, clipped(p, go[j] + (P ? P[H + j] * cs[j] : 0.0)));
                h[j] = o * si_rnn_act_f(hh, cs[j]);
            }
        }
        if (y)
            for (int64_t j = 0; j < H; j++) y[y_off(p, t, d, b) + j] = h[j];
    }
}

SI_OP_PLANNED(rnn_run, si_rnn, p, si_rnn_prepare) {
    si_result st = si_run_ready(c);
    if (st) return st;
    si_tensor *Y = si_out(c, 0), *Yh = si_out(c, 1), *Yc = p->kind == SI_RNN_LSTM ? si_out(c, 2) : NULL;
    const si_tensor *sl = si_in(c, SI_RNN_SEQ), *h0 = si_in(c, SI_RNN_H0);
    const si_tensor *c0 = p->kind == SI_RNN_LSTM ? si_in(c, SI_RNN_C0) : NULL, *pp = p->kind == SI_RNN_LSTM ? si_in(c, SI_RNN_P) : NULL;
    const int64_t H = p->H, GH = p->gates * H, ns = p->ndir * p->N * H;
    rnn_data in = {0};
    in.x = si_tensor_to_f64(si_in(c, 0));
    in.w = si_tensor_to_f64(si_in(c, 1));
    in.r = si_tensor_to_f64(si_in(c, 2));
    if (si_in(c, SI_RNN_B)) in.b = si_tensor_to_f64(si_in(c, SI_RNN_B));
    if (h0) in.h0 = si_tensor_to_f64(h0);
    if (c0) in.c0 = si_tensor_to_f64(c0);
    if (pp) in.pp = si_tensor_to_f64(pp);
    double *y = Y ? si_calloc((size_t)si_count(Y) + 1, sizeof(double)) : NULL;
    double *hs = si_calloc((size_t)ns + 1, sizeof(double)), *cs = si_calloc((size_t)ns + 1, sizeof(double));
    double *g = si_malloc(sizeof(double) * (size_t)(GH + 1)), *hn = si_malloc(sizeof(double) * (size_t)(H + 1));
    bool ok = in.x && in.w && in.r && (!si_in(c, SI_RNN_B) || in.b) && (!h0 || in.h0) && (!c0 || in.c0) && (!pp || in.pp) &&
              (!Y || y) && hs && cs && g && hn;
    if (ok) {
        for (int d = 0; d < p->ndir; d++)
            for (int64_t b = 0; b < p->N; b++) {
                double *h = hs + s_off(p, d, b), *cc = cs + s_off(p, d, b);
                if (in.h0) memcpy(h, in.h0 + s_off(p, d, b), sizeof(double) * (size_t)H);
                if (in.c0) memcpy(cc, in.c0 + s_off(p, d, b), sizeof(double) * (size_t)H);
                int64_t len = sl ? si_load_i64(sl->dtype, sl->data, b) : p->T;
                rnn_row(p, &in, d, b, len, h, cc, g, hn, y);
                if (len == 0) memset(h, 0, sizeof(double) * (size_t)H), memset(cc, 0, sizeof(double) * (size_t)H);
            }
        if (Y && si_count(Y)) si_tensor_from_f64(Y, y);
        if (Yh && si_count(Yh)) si_tensor_from_f64(Yh, hs);
        if (Yc && si_count(Yc)) si_tensor_from_f64(Yc, cs);
    }
    rnn_data_free(&in);
    SI_FREE_ALL(y, hs, cs, g, hn);
    return ok ? SI_OK : si_op_nomem(c);
}

// --- op table ---------------------------------------------------------------------------------------------------

static const si_op_def defs[] = {
    SI_OP_DEF(LSTM, T_RNN, rnn_infer, rnn_run),
    SI_OP_DEF(GRU, T_RNN, rnn_infer, rnn_run),
    SI_OP_DEF(RNN, T_RNN, rnn_infer, rnn_run),
};

SI_OP_FAMILY(rnn, defs);
