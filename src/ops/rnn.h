/*
 * rnn.h — what the recurrent ops (rnn.c: LSTM, GRU, RNN) share with devices that implement them: one reading
 * of a node's attributes and input shapes, and the activation functions with their alpha/beta, so that a
 * device's kernel computes exactly what the reference one does.
 *
 * ONNX layouts (layout 0; layout 1 swaps the first two dimensions of X, Y, initial and final states):
 *   X [T, N, I]   W [D, G*H, I]   R [D, G*H, H]   B [D, 2*G*H] (Wb then Rb)   sequence_lens [N]
 *   initial_h, initial_c, Y_h, Y_c [D, N, H]   P [D, 3*H] (LSTM peepholes i, o, f)   Y [T, D, N, H]
 * Gate order in W, R, B: LSTM i, o, f, c; GRU z, r, h; RNN one gate.
 */
#ifndef SI_OPS_RNN_H
#define SI_OPS_RNN_H

#include "ops/ops.h"

#include <math.h>

typedef enum si_rnn_kind { SI_RNN_VANILLA, SI_RNN_GRU, SI_RNN_LSTM } si_rnn_kind;

typedef enum si_rnn_fn {
    SI_ACT_RELU,
    SI_ACT_TANH,
    SI_ACT_SIGMOID,
    SI_ACT_AFFINE,
    SI_ACT_LEAKY_RELU,
    SI_ACT_THRESHOLDED_RELU,
    SI_ACT_SCALED_TANH,
    SI_ACT_HARD_SIGMOID,
    SI_ACT_ELU,
    SI_ACT_SOFTSIGN,
    SI_ACT_SOFTPLUS
} si_rnn_fn;

typedef struct si_rnn_act {
    si_rnn_fn fn;
    float alpha, beta;
} si_rnn_act;

/* Inputs and outputs by position. */
enum { SI_RNN_X, SI_RNN_W, SI_RNN_R, SI_RNN_B, SI_RNN_SEQ, SI_RNN_H0, SI_RNN_C0, SI_RNN_P };

typedef struct si_rnn {
    si_rnn_kind kind;
    int gates;             /* 1, 3 (GRU) or 4 (LSTM) */
    int ndir;              /* 1 or 2 */
    int direction;         /* 0 forward, 1 reverse, 2 bidirectional */
    int layout;            /* 0: time first, 1: batch first */
    int64_t T, N, I, H;    /* sequence length, batch, input size, hidden size */
    bool has_clip;
    float clip;
    bool input_forget;     /* LSTM: f = 1 - i */
    bool linear_before_reset; /* GRU */
    int n_act;             /* activations per direction: LSTM f, g, h; GRU f, g; RNN f */
    si_rnn_act act[2][3];  /* per direction */
} si_rnn;

/* Read and check a LSTM / GRU / RNN node (kind from the node's op) and its input shapes; INVALID_ARG naming the
 * input or attribute that is wrong, UNSUPPORTED for an unknown activation. */
si_result si_rnn_prepare(const si_kctx *c, si_rnn *p);
/* Output shapes: Y, Y_h, Y_c into dims (rank 4, 3, 3). */
void si_rnn_out_dims(const si_rnn *p, int64_t y[4], int64_t yh[3]);

/* One activation (gate inputs are clipped before it when the node has a clip). */
static inline double si_rnn_act_f(const si_rnn_act *a, double x) {
    switch (a->fn) {
    case SI_ACT_RELU: return x > 0 ? x : 0;
    case SI_ACT_TANH: return tanh(x);
    case SI_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case SI_ACT_AFFINE: return a->alpha * x + a->beta;
    case SI_ACT_LEAKY_RELU: return x >= 0 ? x : a->alpha * x;
    case SI_ACT_THRESHOLDED_RELU: return x > a->alpha ? x : 0;
    case SI_ACT_SCALED_TANH: return a->alpha * tanh(a->beta * x);
    case SI_ACT_HARD_SIGMOID: {
        double v = a->alpha * x + a->beta;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case SI_ACT_ELU: return x >= 0 ? x : a->alpha * (exp(x) - 1.0);
    case SI_ACT_SOFTSIGN: return x / (1.0 + fabs(x));
    case SI_ACT_SOFTPLUS: return x > 30 ? x : log1p(exp(x));
    }
    return x;
}

#endif
