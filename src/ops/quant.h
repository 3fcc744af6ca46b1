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

/* Saturation range of a quantized type (int32 too, for DequantizeLinear's input); false for other types. */
static inline bool si_q_range(si_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case SI_U8: *lo = 0, *hi = 255; return true;
    case SI_I8: *lo = -128, *hi = 127; return true;
    case SI_U16: *lo = 0, *hi = 65535; return true;
    case SI_I16: *lo = -32768, *hi = 32767; return true;
    case SI_I32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
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
    z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
    *scale = s;
    *zp = (uint8_t)nearbyintf(z);
}

/* One element of DynamicQuantizeLinear: saturate(round(x / scale) + zp) to uint8 (NaN gives the zero point). */
static inline uint8_t si_dql_quantize(float x, float scale, float zp) {
    float v = nearbyintf(x / scale) + zp;
    if (!(v >= 0.0f)) return v != v ? (uint8_t)zp : 0;
    return v > 255.0f ? 255 : (uint8_t)v;
}

#endif
