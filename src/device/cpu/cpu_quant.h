/*
 * cpu_quant.h — what the CPU device's integer kernels (cpu_quant.c) share with the QDQ-form matchers that lower onto
 * them (cpu_quant_qdq.c): the descriptions of an integer convolution / matrix product with requantization, and
 * their lowerings.
 */
#ifndef SI_CPU_QUANT_H
#define SI_CPU_QUANT_H

#include "device/cpu/cpu.h"

/* What an integer convolution with requantization reads: the quantized input value x (uint8 / int8), the zero
 * point values of x and y (-1: 0), constant scales, weights, their zero point and the bias, the output value y, and
 * the nodes it stands for besides the anchor (the QDQ form's QuantizeLinear, Relu). */
typedef struct qlc_in {
    int x, xz, yz, y;
    const si_tensor *xs, *ys, *W, *WS, *WZ, *B;
    bool relu;                 /* max(y, y_zero_point): a Relu between the convolution and its QuantizeLinear */
    int extra[4], n_extra;
} qlc_in;

/* What an integer matrix product with requantization reads: the quantized input value x ([..., K], uint8 / int8)
 * and its zero point value (-1: 0), constant scales, the constant 2-D weights ([K, N], or [N, K] with tb) with one
 * zero point, an int32 bias per column (or NULL), alpha; the output value y, quantized with ys / yz, or float32
 * when ys is NULL; the nodes it stands for besides the anchor. */
typedef struct qmm_in {
    int x, xz, y, yz;
    const si_tensor *xs, *ys, *W, *WS, *WZ, *C;
    const si_tensor *Cf; /* float32 C added to the float output (a QDQ Gemm whose bias is not quantized), or NULL */
    bool tb, relu;
    float alpha;
    const char *name;
    int extra[4], n_extra;
} qmm_in;

/* The integer convolution (oneDNN int8 into int32, then the requantization pass) and the integer matrix product for
 * node n as a describes them; UNSUPPORTED where oneDNN or the kernels do not take them (nothing emitted). */
si_result cpu_qlconv_lower(cpu_pb *b, int n, const qlc_in *a);
/* Conv node n in the QDQ form ORT runs as one integer convolution (cpu_quant_qdq.c): *a describes it. Reads b's
 * graph, n_consumers, done and no_fusion only. */
bool cpu_qdq_conv_match(const cpu_pb *b, int n, qlc_in *a);
/* Likewise for a MatMul / Gemm node n (its output quantized, or float32 when a->ys is NULL). */
bool cpu_qdq_mm_match(const cpu_pb *b, int n, qmm_in *a);
si_result cpu_qmm_lower(cpu_pb *b, int n, const qmm_in *a);
/* Whether oneDNN's int8 product of constant weights W with zero point WZ (NULL: 0; one value, or one per output
 * channel of a convolution, conv) is exact on this CPU: always with AVX-512 VNNI (si_cpu_int8_exact); without it,
 * when every W - WZ lies in [-64, 64] (see cpu_quant.c). cpu_int8f.c leaves the nodes it is true for to the
 * integer kernels and rewrites the others. */
bool cpu_int8_weights_exact(const si_tensor *W, const si_tensor *WZ, bool conv);

#endif
