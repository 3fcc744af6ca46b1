/*
 * elem.h — element access shared by the element-wise families (unary.c, binary.c): ld_raw/st_raw move integer
 * bit patterns (signed types sign-extended to 64 bits, stores truncate, so +,-,* wrap like C/numpy), ld_f/st_f
 * go through double (float -> int stores truncate toward zero like ONNX Cast; -> bool is v != 0).
 */
#ifndef SI_OPS_ELEM_H
#define SI_OPS_ELEM_H

#include "ops/ops.h"

#include <math.h>

static inline bool t_float(si_dtype t) { return t == SI_F32 || t == SI_F64 || t == SI_F16 || t == SI_BF16; }

static inline bool t_signed(si_dtype t) { return t == SI_I8 || t == SI_I16 || t == SI_I32 || t == SI_I64; }

/* Integer (or bool) element i as 64 bits: signed types sign-extended, unsigned zero-extended. */
static inline uint64_t ld_raw(si_dtype t, const void *p, int64_t i) {
    switch (t) {
    case SI_I8: return (uint64_t)(int64_t)((const int8_t *)p)[i];
    case SI_U8:
    case SI_BOOL: return ((const uint8_t *)p)[i];
    case SI_I16: return (uint64_t)(int64_t)((const int16_t *)p)[i];
    case SI_U16:
    case SI_F16:
    case SI_BF16: return ((const uint16_t *)p)[i];
    case SI_I32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case SI_U32: return ((const uint32_t *)p)[i];
    case SI_I64: return (uint64_t)((const int64_t *)p)[i];
    case SI_U64: return ((const uint64_t *)p)[i];
    case SI_F32: {
        uint32_t v;
        memcpy(&v, (const float *)p + i, 4);
        return v;
    }
    case SI_F64: {
        uint64_t v;
        memcpy(&v, (const double *)p + i, 8);
        return v;
    }
    default: return 0;
    }
}

/* Store the low bits of v as element i (wrapping conversion between integer types). */
static inline void st_raw(si_dtype t, void *p, int64_t i, uint64_t v) {
    switch (si_dtype_size(t)) {
    case 1: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case 2: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case 4: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case 8: ((uint64_t *)p)[i] = v; break;
    default: break;
    }
}

/* Element i of any stored type as double. */
static inline double ld_f(si_dtype t, const void *p, int64_t i) {
    switch (t) {
    case SI_F32: return ((const float *)p)[i];
    case SI_F64: return ((const double *)p)[i];
    case SI_F16: return si_f16_to_f32(((const uint16_t *)p)[i]);
    case SI_BF16: return si_bf16_to_f32(((const uint16_t *)p)[i]);
    case SI_I8:
    case SI_I16:
    case SI_I32:
    case SI_I64: return (double)(int64_t)ld_raw(t, p, i);
    default: return (double)ld_raw(t, p, i);
    }
}

/* A double converted to an integer type's bit pattern: truncation toward zero, NaN -> 0; values beyond
 * int64 saturate, narrower targets then wrap (what numpy/C casts do on common hardware). */
static inline uint64_t f2i(si_dtype t, double v) {
    if (isnan(v)) return 0;
    v = trunc(v);
    if (t == SI_U64 && v >= 0) {
        if (v >= 18446744073709551616.0) return UINT64_MAX;
        return (uint64_t)v;
    }
    if (v >= 9223372036854775808.0) return (uint64_t)INT64_MAX;
    if (v < -9223372036854775808.0) return (uint64_t)INT64_MIN;
    return (uint64_t)(int64_t)v;
}

/* Store v as element i of any stored type (floats round, ints truncate, bool is v != 0). */
static inline void st_f(si_dtype t, void *p, int64_t i, double v) {
    switch (t) {
    case SI_F32: ((float *)p)[i] = (float)v; break;
    case SI_F64: ((double *)p)[i] = v; break;
    case SI_F16: ((uint16_t *)p)[i] = si_f32_to_f16((float)v); break;
    case SI_BF16: ((uint16_t *)p)[i] = si_f32_to_bf16((float)v); break;
    case SI_BOOL: ((uint8_t *)p)[i] = (uint8_t)(v != 0); break;
    default: st_raw(t, p, i, f2i(t, v)); break;
    }
}

#endif
