/* Interval -> fixed-point format, and the lookup pad offset (see kif.h). */
#include "alir/kif.h"
#include "core/fxp.h"

#include <math.h>

alk_kif alk_kif_of(alk_qint qint) {
    if (qint.min == 0.0 && qint.max == 0.0) {
        return (alk_kif){0, 0, 0};
    }
    int k = qint.min < 0.0;
    int f = -alk_iceil_log2((float)qint.step);
    long long int_min = llround(qint.min / qint.step);
    long long int_max = llround(qint.max / qint.step);
    /* Magnitudes in unsigned arithmetic: |INT64_MIN| = 2^63 is a valid 64-bit format. */
    unsigned long long bits_arg =
        int_min < 0 ? 0ULL - (unsigned long long)int_min : (unsigned long long)int_min;
    if (int_max >= 0 && (unsigned long long)int_max + 1 > bits_arg) {
        bits_arg = (unsigned long long)int_max + 1;
    }
    int bits = bits_arg > 0 ? alk_iceil_log2((float)bits_arg) : 0;
    return (alk_kif){k, bits - f, f};
}

alk_qint alk_qint_widen_for_kif(alk_qint qint) {
    if ((qint.min == 0.0 && qint.max == 0.0) || !(qint.step > 0.0)) {
        return qint;
    }
    long long int_min = llround(qint.min / qint.step);
    long long int_max = llround(qint.max / qint.step);
    unsigned long long count =
        int_min < 0 ? 0ULL - (unsigned long long)int_min : (unsigned long long)int_min;
    if (int_max >= 0 && (unsigned long long)int_max + 1 > count) {
        count = (unsigned long long)int_max + 1;
    }
    int n = count > 0 ? alk_iceil_log2((float)count) : 0;
    /* float32 rounded the count down onto 2^n: the format has one bit too few. A top of
     * 2^n + 2^(n-22) codes is a float32 above 2^n (n >= 24 here, so both are exact). */
    if (n < 63 && count > (1ULL << n)) {
        double top = ldexp((double)((1ULL << n) + (1ULL << (n - 22))), 0) * qint.step;
        qint.max = top > qint.max ? top : qint.max;
    }
    return qint;
}

bool alk_qint_fits_int64(alk_qint qint) {
    if (qint.min == 0.0 && qint.max == 0.0) {
        return true;
    }
    /* The codes first: alk_kif_of rounds them to long long. */
    if (!isfinite(qint.min) || !isfinite(qint.max) || qint.min / qint.step < -0x1p63 ||
        qint.max / qint.step >= 0x1p63) {
        return false;
    }
    return alk_kif_width(alk_kif_of(qint)) <= 64;
}

int64_t alk_lookup_pad_left(alk_qint qint, alk_kif kif) {
    if (kif.k) {
        return llround((qint.min + ldexp(1.0, kif.i)) / qint.step);
    }
    return llround(qint.min / qint.step);
}
