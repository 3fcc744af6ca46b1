/*
 * narrow.c — element types narrower than a byte or with 8-bit float encodings: float8 (e4m3fn, e4m3fnuz,
 * e5m2, e5m2fnuz, e8m0), float4e2m1, int4/uint4 and int2/uint2. safeinfer keeps one element per byte
 * (safeinfer.h); ONNX files pack the 4-bit and 2-bit types, low bits first.
 *
 * Conversions follow the ONNX specification (Cast): round to nearest, ties to even; with `saturate`, values
 * beyond the largest finite one (infinities too) become it, else NaN (float8e5m2: infinity). FNUZ types have
 * no negative zero (it encodes NaN); e4m3fn and e4m3fnuz have no infinity.
 */
#include "util/util.h"

#include <math.h>

bool si_dtype_is_narrow(si_dtype t) { return t >= SI_F8E4M3FN && t <= SI_I2; }

bool si_dtype_is_minifloat(si_dtype t) {
    return t == SI_F8E4M3FN || t == SI_F8E4M3FNUZ || t == SI_F8E5M2 || t == SI_F8E5M2FNUZ || t == SI_F4E2M1 ||
           t == SI_F8E8M0;
}

int si_dtype_packed_bits(si_dtype t) {
    switch (t) {
    case SI_U4: case SI_I4: case SI_F4E2M1: return 4;
    case SI_U2: case SI_I2: return 2;
    default: return 0;
    }
}

/* The layout of a float type: exponent and mantissa bits, bias, and how it spells NaN / infinity. */
typedef enum { MF_FN, MF_FNUZ, MF_IEEE, MF_NONE } mf_kind; /* NaN = all ones | NaN = 0x80 | IEEE | no NaN */
typedef struct mf_fmt {
    int ebits, mbits, bias;
    mf_kind kind;
    uint8_t maxcode; /* largest finite magnitude code */
} mf_fmt;

static bool mf_of(si_dtype t, mf_fmt *f) {
    switch (t) {
    case SI_F8E4M3FN: *f = (mf_fmt){4, 3, 7, MF_FN, 0x7e}; return true;
    case SI_F8E4M3FNUZ: *f = (mf_fmt){4, 3, 8, MF_FNUZ, 0x7f}; return true;
    case SI_F8E5M2: *f = (mf_fmt){5, 2, 15, MF_IEEE, 0x7b}; return true;
    case SI_F8E5M2FNUZ: *f = (mf_fmt){5, 2, 16, MF_FNUZ, 0x7f}; return true;
    case SI_F4E2M1: *f = (mf_fmt){2, 1, 1, MF_NONE, 0x7}; return true;
    default: return false;
    }
}

double si_minifloat_decode(si_dtype t, uint8_t code) {
    if (t == SI_F8E8M0) return code == 0xff ? NAN : ldexp(1.0, (int)code - 127);
    mf_fmt f;
    if (!mf_of(t, &f)) return 0;
    const int nb = 1 + f.ebits + f.mbits;
    code &= (uint8_t)((1u << nb) - 1);
    const unsigned sign = code >> (nb - 1), mag = code & ((1u << (nb - 1)) - 1);
    const unsigned e = mag >> f.mbits, m = mag & ((1u << f.mbits) - 1);
    if (f.kind == MF_FNUZ && code == 0x80) return NAN;
    if (f.kind == MF_FN && mag == 0x7f) return NAN;
    if (f.kind == MF_IEEE && e == (1u << f.ebits) - 1) return m ? NAN : sign ? -INFINITY : INFINITY;
    double v = e == 0 ? ldexp((double)m, 1 - f.bias - f.mbits) : ldexp((double)(m | (1u << f.mbits)), (int)e - f.bias - f.mbits);
    return sign ? -v : v;
}

uint8_t si_minifloat_encode(si_dtype t, double x, bool saturate) {
    mf_fmt f;
    if (t == SI_F8E8M0) return si_e8m0_encode(x, saturate, 0);
    if (!mf_of(t, &f)) return 0;
    const int nb = 1 + f.ebits + f.mbits;
    const unsigned sbit = signbit(x) ? 1u << (nb - 1) : 0;
    const uint8_t nan = f.kind == MF_FNUZ ? 0x80 : f.kind == MF_NONE ? 0x8 : (uint8_t)(sbit | 0x7f);
    if (isnan(x)) return nan;
    unsigned over; /* what a value beyond the range becomes without saturation */
    switch (f.kind) {
    case MF_IEEE: over = sbit | (((1u << f.ebits) - 1) << f.mbits); break; /* infinity */
    case MF_NONE: over = sbit | f.maxcode; break;
    default: over = nan; break;
    }
    if (isinf(x)) return (uint8_t)(saturate ? (sbit | f.maxcode) : over);
    const double a = fabs(x);
    const int emin = 1 - f.bias; /* exponent of the smallest normal value */
    uint64_t code;
    if (a < ldexp(1.0, emin)) {
        code = (uint64_t)nearbyint(ldexp(a, f.mbits - emin)); /* subnormal steps; 2^mbits is the smallest normal */
    } else {
        int e2;
        (void)frexp(a, &e2); /* a = [0.5, 1) * 2^e2 */
        int E = e2 - 1;
        if (E + f.bias > (1 << f.ebits) - 1 + 1) {
            code = UINT64_MAX;
        } else {
            uint64_t q = (uint64_t)nearbyint(ldexp(a, f.mbits - E)); /* in [2^mbits, 2^(mbits+1)] */
            if (q == (uint64_t)1 << (f.mbits + 1)) { q >>= 1; E++; }
            code = ((uint64_t)(E + f.bias) << f.mbits) | (q - ((uint64_t)1 << f.mbits));
        }
    }
    if (code > f.maxcode) return (uint8_t)(saturate ? (sbit | f.maxcode) : over);
    if (code == 0 && f.kind == MF_FNUZ) return 0; /* no negative zero */
    return (uint8_t)(sbit | code);
}

uint8_t si_e8m0_encode(double x, bool saturate, int round_mode) {
    if (isnan(x)) return 0xff;
    const double a = fabs(x); /* e8m0 has no sign: the magnitude is encoded */
    if (isinf(a)) return saturate ? 0xfe : 0xff;
    if (a == 0) return 0; /* the smallest value, 2^-127 */
    int e2;
    double fr = frexp(a, &e2); /* a = fr * 2^e2, fr in [0.5, 1): a = 2fr * 2^(e2-1) */
    int E = e2 - 1;
    double m = 2 * fr; /* [1, 2) */
    if (m > 1) {
        if (round_mode == 0) E++;                   /* up */
        else if (round_mode == 2 && m >= 1.5) E++; /* nearest: ties away from zero */
    }
    if (E < -127) return 0;
    if (E > 127) return saturate ? 0xfe : 0xff;
    return (uint8_t)(E + 127);
}

void si_narrow_unpack(si_dtype t, const uint8_t *src, uint8_t *dst, int64_t count) {
    const int bits = si_dtype_packed_bits(t);
    if (!bits) return;
    const int per = 8 / bits;
    const unsigned mask = (1u << bits) - 1;
    const bool sgn = t == SI_I4 || t == SI_I2;
    for (int64_t i = 0; i < count; i++) {
        unsigned v = (src[i / per] >> ((i % per) * bits)) & mask;
        if (sgn && (v & (1u << (bits - 1)))) v |= ~mask;
        dst[i] = (uint8_t)v;
    }
}

void si_narrow_pack(si_dtype t, const uint8_t *src, uint8_t *dst, int64_t count) {
    const int bits = si_dtype_packed_bits(t);
    if (!bits) return;
    const int per = 8 / bits;
    const unsigned mask = (1u << bits) - 1;
    for (int64_t i = 0; i < (count + per - 1) / per; i++) dst[i] = 0;
    for (int64_t i = 0; i < count; i++) dst[i / per] = (uint8_t)(dst[i / per] | ((src[i] & mask) << ((i % per) * bits)));
}
