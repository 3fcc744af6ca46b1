/*
 * quant.h — what the quantization ops (quant.c) share with devices that implement them: the integer range of
 * each quantized type and the exact arithmetic of DynamicQuantizeLinear's parameters, so that a device's fast
 * kernel rounds exactly as the reference one does.
 */
#ifndef SI_OPS_QUANT_H
#define SI_OPS_QUANT_H

#include "ops/ops.h"

#include <math.h>

/* The quantized element types (outputs of QuantizeLinear, inputs of DequantizeLinear). */
#define SI_T_QUANT (SI_T(SI_U8) | SI_T(SI_I8) | SI_T(SI_U16) | SI_T(SI_I16))
/* The narrow quantized types (QuantizeLinear / DequantizeLinear only): 4-bit and 2-bit integers, float8 and
 * float4e2m1 (these round to nearest even instead of saturating to an integer range). */
#define SI_T_QUANT_NARROW                                                                                       \
    (SI_T(SI_U4) | SI_T(SI_I4) | SI_T(SI_U2) | SI_T(SI_I2) | SI_T(SI_F8E4M3FN) | SI_T(SI_F8E4M3FNUZ) |            \
     SI_T(SI_F8E5M2) | SI_T(SI_F8E5M2FNUZ) | SI_T(SI_F4E2M1))

/* Saturation range of a quantized type (int32 too, for DequantizeLinear's input); false for other types. */
static inline bool si_q_range(si_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case SI_U8: *lo = 0, *hi = 255; return true;
    case SI_I8: *lo = -128, *hi = 127; return true;
    case SI_U16: *lo = 0, *hi = 65535; return true;
    case SI_I16: *lo = -32768, *hi = 32767; return true;
    case SI_I32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
    case SI_U4: *lo = 0, *hi = 15; return true;
    case SI_I4: *lo = -8, *hi = 7; return true;
    case SI_U2: *lo = 0, *hi = 3; return true;
    case SI_I2: *lo = -2, *hi = 1; return true;
    default: return false;
    }
}

/* DynamicQuantizeLinear's scale and zero point from the minimum and maximum of x (the range is first widened
 * to hold 0). float32 arithmetic, ties to even, as the ONNX specification and ONNX Runtime compute them; an
 * all-zero input gets the scale 1/255 rather than a division by zero. */
static inline void si_dql_params(float xmin, float xmax, float *scale, uint8_t *zp) {
    if (xmin > 0.0f) xmin = 0.0f;
    if (xmax < 0.0f) xmax = 0.0f;
    float range = xmax == xmin ? 1.0f : xmax - xmin;
    float s = range / 255.0f;
    float z = 0.0f - xmin / s;
    z = !(z >= 0.0f) ? 0.0f : z > 255.0f ? 255.0f : z; /* NaN (an infinite range: -inf / inf) gives 0 */
    *scale = s;
    *zp = (uint8_t)nearbyintf(z);
}

/* One element of DynamicQuantizeLinear: saturate(round(x / scale) + zp) to uint8 (NaN gives the zero point). */
static inline uint8_t si_dql_quantize(float x, float scale, float zp) {
    float v = nearbyintf(x / scale) + zp;
    if (!(v >= 0.0f)) return v != v ? (uint8_t)zp : 0;
    return v > 255.0f ? 255 : (uint8_t)v;
}

/* QLinearSigmoid (leaky false) / QLinearLeakyRelu of every byte of type dt (uint8 / int8), and QLinearAdd /
 * QLinearMul of every pair of bytes (out[a * 256 + b], 65536 entries), exactly as the reference kernels
 * (qlinear_ms.c) compute them, for a device's table-driven kernel. The binary one is false when out of memory. */
void si_qlinear_unary_table(bool leaky, float alpha, si_dtype dt, float xs, int32_t xz, float ys, int32_t yz, uint8_t *table);
/* The requantization of every byte from (xs, xz) to (ys, yz), as QLinearConcat's reference kernel does it. */
void si_qlinear_requant_table(si_dtype dt, float xs, int32_t xz, float ys, int32_t yz, uint8_t *table);
bool si_qlinear_binary_table(bool mul, si_dtype dt, float as, int32_t az, float bs, int32_t bz, float cs, int32_t cz, uint8_t *out);
/* QLinearAdd's constant term f = C_zp - (ra * A_zp + rb * B_zp) in float32 (ra = A_scale / C_scale, rb likewise), as
 * ONNX Runtime's x86 kernel folds the zero points: y = round(fma(a, ra, fma(b, rb, f))) on the raw bytes. */
static inline float si_qlinear_add_offset(float ra, int32_t az, float rb, int32_t bz, int32_t cz) {
    return (float)cz - (ra * (float)az + rb * (float)bz);
}

#endif
