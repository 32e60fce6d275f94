/*
 * Fixed-point numeric primitives shared by the solvers, the tracer and the ALIR engine
 * (spec cmvm.md §2.1–2.2). They work on float32 bit patterns on purpose: the reference converts
 * every double to float32 before calling them, and bit-exact results depend on that rounding
 * (2^37 + 1 becomes 2^37, so its ceil-log2 is 37).
 */
#ifndef ALK_CORE_FXP_H
#define ALK_CORE_FXP_H

#include <stdint.h>
#include <string.h>

/* ceil(log2(|x|)) read off the float32 bit pattern: exponent - 127 + (mantissa != 0); -127 for
 * zero. */
static inline int alk_iceil_log2(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    int exponent = (int)((bits >> 23) & 0xFF);
    return (int)(int8_t)(exponent - 127 + ((bits & 0x7FFFFF) != 0));
}

/* Exponent of the lowest set bit of a float32; 127 for zero and NaN. */
static inline int alk_lsb_loc(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    uint32_t exponent = (bits >> 23) & 0xFF;
    uint32_t mantissa = bits & 0x7FFFFF;
    if ((exponent == 0 && mantissa == 0) || (exponent == 0xFF && mantissa != 0)) {
        return 127;
    }
    return (int)exponent + __builtin_ctz(mantissa | 0x800000u) - 150;
}

/* Exponent of the lowest set bit of a double, without the float32 rounding (the reference's
 * get_lsb_loc_f64); 127 for zero and NaN, as alk_lsb_loc. */
static inline int alk_lsb_loc_f64(double x) {
    if (x == 0.0 || x != x) {
        return 127;
    }
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    int exponent = (int)((bits >> 52) & 0x7FF);
    uint64_t mantissa = bits & 0xFFFFFFFFFFFFFull;
    if (exponent == 0) {
        return __builtin_ctzll(mantissa) - 1074;
    }
    return exponent + __builtin_ctzll(mantissa | (1ull << 52)) - 1075;
}

#endif
