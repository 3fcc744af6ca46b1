/*
 * nn.h — what the neural-network family files of ops/ share: the window geometry of convolutions and pooling
 * (defined in conv.c) and the GEMM kernels (defined in gemm.c). Not an interface for devices.
 *
 * Convolutions and pooling support 1, 2 and 3 spatial dimensions: all geometry is mapped onto 3-D with
 * leading unit dimensions.
 */
#ifndef SI_OPS_NN_H
#define SI_OPS_NN_H

#include "ops/ops.h"

#define NN_SP 3 /* spatial dims handled by conv/pool kernels (1-D and 2-D are mapped onto 3-D) */

typedef struct nn_geom {
    int nsp; /* real spatial dims; the arrays hold 3-D geometry with leading unit dims */
    int64_t in[NN_SP], out[NN_SP], k[NN_SP], s[NN_SP], d[NN_SP], pb[NN_SP], pe[NN_SP];
} nn_geom;

enum { NN_PAD_NOTSET, NN_PAD_VALID, NN_PAD_SAME_UPPER, NN_PAD_SAME_LOWER };

/* auto_pad as NN_PAD_*; INVALID_ARG for an unknown value. */
si_result si_auto_pad(const si_kctx *c, int *out);
/* All dimensions 1, no padding, nsp real spatial dimensions. */
void si_geom_clear(nn_geom *g, int nsp);
/* x's spatial rank (rank - 2, 1 to NN_SP). */
si_result si_spatial_rank(const si_kctx *c, const si_tensor *x, int *nsp);
/* Strides, dilations, pads, auto_pad (and ceil_mode when ceil_ok) for a forward window op (Conv, pools) over
 * input spatial shape `in` with kernel `k`; computes the output spatial shape. */
si_result si_geom_init(const si_kctx *c, int nsp, const int64_t *in, const int64_t *k, bool ceil_ok, nn_geom *g);
/* Output k of a window op: type dt, shape [n, ch, g's spatial output]. */
si_result si_geom_set_out(si_kctx *c, int k, si_dtype dt, int64_t n, int64_t ch, const nn_geom *g);

static inline int64_t nn_geom_in_size(const nn_geom *g) { return g->in[0] * g->in[1] * g->in[2]; }
static inline int64_t nn_geom_out_size(const nn_geom *g) { return g->out[0] * g->out[1] * g->out[2]; }

/* GEMM: C[M x N] (=|+=) A[M x K] * B[K x N] with arbitrary row/column strides (so transposes are free).
 * float32 returns false when out of memory (C is then unchanged); integers wrap in 64 bits (operands already
 * widened to int64). */
bool si_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa, const float *B, int64_t rsb,
              int64_t csb, float *C, int64_t ldc, bool accumulate);
void si_dgemm(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa, const double *B, int64_t rsb,
              int64_t csb, double *C, int64_t ldc, bool accumulate);
void si_igemm(int64_t M, int64_t N, int64_t K, const int64_t *A, int64_t rsa, int64_t csa, const int64_t *B,
              int64_t rsb, int64_t csb, int64_t *C, int64_t ldc);

/* numpy matmul shapes: A [..., M, K] (or [K]) times B [..., K, N] (or [K]) with broadcast batch dimensions. */
typedef struct nn_mm {
    int ob; /* rank of the broadcast batch shape */
    int64_t bd[SI_MAX_DIMS], ast[SI_MAX_DIMS], bst[SI_MAX_DIMS]; /* batch shape, strides in matrices */
    int64_t M, N, K, nbatch, abatch, bbatch;
    int nout;
    int64_t odims[SI_MAX_DIMS]; /* Y's shape (nout dims) */
} nn_mm;

/* The shapes of a matmul of a and b (element types checked by the caller); the strides only when every
 * dimension is known. INVALID_ARG when the inner dimensions differ. */
si_result si_mm_shape(const si_kctx *c, const si_tensor *a, const si_tensor *b, nn_mm *p);
/* Matrix offsets (in matrices) of A and B for output batch index bi. */
void si_mm_offsets(const nn_mm *p, int64_t bi, int64_t *ao, int64_t *bo);


#endif
