/*
 * The fixed-point format (k, i, f) of an interval, as the reference's ALIR interpreter computes
 * it (spec trace-alir.md §4.2, §4.7): k = sign bit present, i = integer bits without the sign,
 * f = fractional bits; width = k + i + f.
 */
#ifndef ALK_ALIR_KIF_H
#define ALK_ALIR_KIF_H

#include "alir/program.h"

#include <stdbool.h>

typedef struct alk_kif {
    int k;
    int i;
    int f;
} alk_kif;

static inline int alk_kif_width(alk_kif kif) {
    return kif.k + kif.i + kif.f;
}

/*
 * The minimal format holding every value of `qint` (with the reference's float32 count, see
 * alk_qint_widen_for_kif); the caller must have checked that the step is a positive finite number
 * and the bounds are finite multiples within 2^63 steps (alk_program_validate does), except for the
 * zero interval, which is (0, 0, 0) whatever its step.
 */
alk_kif alk_kif_of(alk_qint qint);

/*
 * `qint` with its top raised where alk_kif_of would give it a bit too few. The reference counts
 * an interval's codes in float32 (every reader of ALIR does the same), so a count just above
 * 2^n, n >= 24, rounds down onto 2^n: a value at the top of (-0.875, 1.0, 2^-30) wrapped to -1.
 * Raising the top to 2^n + 2^(n-22) codes makes the count a float32 above 2^n and the format
 * one bit wider; lookups index from the bottom, so their tables do not move. Other intervals
 * are returned unchanged.
 */
alk_qint alk_qint_widen_for_kif(alk_qint qint);

/*
 * Whether the values of `qint` fit ALIR's 64-bit integer codes: the zero interval, or finite
 * bounds within 2^63 steps of zero (INT64_MIN included) whose format is at most 64 bits wide.
 * Apart from the zero interval, the step must be a positive power of two. The one rule of
 * alk_program_validate and of the tracer's emission (trace/emit.c).
 */
bool alk_qint_fits_int64(alk_qint qint);

/* Index offset of a lookup reading a producer with interval `qint` (spec §4.4). */
int64_t alk_lookup_pad_left(alk_qint qint, alk_kif kif);

#endif
