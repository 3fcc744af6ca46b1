/*
 * test_narrow.c — the narrow element types (util/narrow.c): float8 / float4e2m1 encodings round to nearest even
 * and saturate (or not) as ONNX Cast specifies, NaN / infinity / negative zero per format, float8e8m0's rounding
 * modes, and the packing of 4-bit and 2-bit integers (low bits first, signed types sign-extended).
 */
#include "util/util.h"

#include "si_test.h"

#include <math.h>

#define ENC(t, x, sat, want) CHECK(si_minifloat_encode(t, x, sat) == (want))

static void test_e4m3fn(void) {
    ENC(SI_F8E4M3FN, 448.0, true, 0x7e);
    ENC(SI_F8E4M3FN, 464.0, false, 0x7e); /* the tie between 448 and 480 goes to 448 (even): no overflow */
    ENC(SI_F8E4M3FN, 465.0, false, 0x7f); /* beyond: NaN without saturation */
    ENC(SI_F8E4M3FN, 465.0, true, 0x7e);
    ENC(SI_F8E4M3FN, INFINITY, true, 0x7e);
    ENC(SI_F8E4M3FN, -INFINITY, true, 0xfe);
    ENC(SI_F8E4M3FN, INFINITY, false, 0x7f);
    ENC(SI_F8E4M3FN, -0.0, true, 0x80);
    ENC(SI_F8E4M3FN, ldexp(1, -9), true, 0x01);     /* the smallest subnormal */
    ENC(SI_F8E4M3FN, ldexp(1, -10), true, 0x00);    /* half of it: ties to even, 0 */
    ENC(SI_F8E4M3FN, 3 * ldexp(1, -10), true, 0x02); /* 1.5 steps: ties to even, 2 */
    ENC(SI_F8E4M3FN, 100.0, true, 0x6c);             /* 1.5625 * 2^6: mantissa 4.5 -> 4 */
    CHECK(isnan(si_minifloat_decode(SI_F8E4M3FN, 0x7f)) && isnan(si_minifloat_decode(SI_F8E4M3FN, 0xff)));
    CHECK(si_minifloat_decode(SI_F8E4M3FN, 0x01) == ldexp(1, -9));
    CHECK(si_minifloat_decode(SI_F8E4M3FN, 0xed) == -104.0);
    CHECK(si_minifloat_decode(SI_F8E4M3FN, 0x7e) == 448.0);
}

static void test_fnuz_e5m2(void) {
    ENC(SI_F8E4M3FNUZ, -0.0, true, 0x00); /* no negative zero: 0x80 is NaN */
    ENC(SI_F8E4M3FNUZ, 240.0, true, 0x7f);
    ENC(SI_F8E4M3FNUZ, NAN, true, 0x80);
    ENC(SI_F8E4M3FNUZ, INFINITY, false, 0x80);
    ENC(SI_F8E4M3FNUZ, ldexp(1, -10), true, 0x01);
    CHECK(isnan(si_minifloat_decode(SI_F8E4M3FNUZ, 0x80)));
    ENC(SI_F8E5M2, 57344.0, true, 0x7b);
    ENC(SI_F8E5M2, 61440.0, true, 0x7b);  /* the tie rounds to 65536 (even), beyond the range: saturates */
    ENC(SI_F8E5M2, 61440.0, false, 0x7c); /* ... or becomes infinity */
    ENC(SI_F8E5M2, -INFINITY, false, 0xfc);
    CHECK(isinf(si_minifloat_decode(SI_F8E5M2, 0x7c)) && isnan(si_minifloat_decode(SI_F8E5M2, 0x7d)));
    ENC(SI_F8E5M2FNUZ, 57344.0, true, 0x7f);
    ENC(SI_F8E5M2FNUZ, 1e9, false, 0x80);
}

static void test_e2m1_e8m0(void) {
    ENC(SI_F4E2M1, 0.25, true, 0x0); /* tie between 0 and 0.5: 0 */
    ENC(SI_F4E2M1, 0.75, true, 0x2); /* tie between 0.5 and 1: 1 */
    ENC(SI_F4E2M1, 5.0, true, 0x6);  /* tie between 4 and 6: 4 */
    ENC(SI_F4E2M1, 100.0, false, 0x7); /* no NaN nor infinity: always saturates */
    ENC(SI_F4E2M1, -100.0, false, 0xf);
    ENC(SI_F4E2M1, NAN, true, 0x8);
    CHECK(si_minifloat_decode(SI_F4E2M1, 0xe) == -4.0 && si_minifloat_decode(SI_F4E2M1, 0x1) == 0.5);
    CHECK(si_e8m0_encode(0.124, true, 0) == 0x7c); /* up: 0.125 */
    CHECK(si_e8m0_encode(1.1, true, 1) == 0x7f);   /* down: 1 */
    CHECK(si_e8m0_encode(1.5, true, 2) == 0x80);   /* nearest, tie: away from zero */
    CHECK(si_e8m0_encode(1.4, true, 2) == 0x7f);
    CHECK(si_e8m0_encode(NAN, true, 0) == 0xff);
    CHECK(si_minifloat_decode(SI_F8E8M0, 0x80) == 2.0 && isnan(si_minifloat_decode(SI_F8E8M0, 0xff)));
}

static void test_packing(void) {
    const uint8_t packed[2] = {0x87, 0x0f};
    uint8_t v[3], back[2];
    si_narrow_unpack(SI_I4, packed, v, 3);
    CHECK((int8_t)v[0] == 7 && (int8_t)v[1] == -8 && (int8_t)v[2] == -1);
    si_narrow_pack(SI_I4, v, back, 3);
    CHECK(back[0] == 0x87 && back[1] == 0x0f);
    si_narrow_unpack(SI_U4, packed, v, 3);
    CHECK(v[0] == 7 && v[1] == 8 && v[2] == 15);
    const uint8_t p2 = 0x39; /* 1, -2, -1, 0 as int2 */
    uint8_t w[4];
    si_narrow_unpack(SI_I2, &p2, w, 4);
    CHECK((int8_t)w[0] == 1 && (int8_t)w[1] == -2 && (int8_t)w[2] == -1 && w[3] == 0);
    int8_t i4[1];
    si_store_i64(SI_I4, i4, 0, -9); /* integer conversions wrap, as ONNX Cast does */
    CHECK(i4[0] == 7 && si_load_i64(SI_I4, i4, 0) == 7);
    uint8_t u2[1];
    si_store_f64(SI_U2, u2, 0, 5.7);
    CHECK(u2[0] == 1 && si_load_f64(SI_U2, u2, 0) == 1.0);
    CHECK(si_dtype_size(SI_I4) == 1 && si_dtype_packed_bits(SI_I4) == 4 && si_dtype_packed_bits(SI_F8E5M2) == 0);
    CHECK(!strcmp(si_dtype_name(SI_F8E4M3FNUZ), "float8e4m3fnuz") && !strcmp(si_dtype_name(SI_I2), "int2"));
}

int main(void) {
    test_e4m3fn();
    test_fnuz_e5m2();
    test_e2m1_e8m0();
    test_packing();
    return test_summary("test_narrow");
}
