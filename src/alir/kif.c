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
