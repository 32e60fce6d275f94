/*
 * Numeric primitives of the CMVM solver (spec cmvm.md §2, §3.1, §10.2).
 *
 * Design: every function reproduces the reference's arithmetic types exactly, because compat
 * mode must agree bit for bit: intervals are float32, overlap counts are int8 with wrap-around,
 * the adder width of cost_add is a uint8, and its latency step is computed in double and rounded
 * to float. The comments name the reference behaviour being copied where it is not obvious.
 *
 * Thread rule: pure functions, callable from any thread.
 */
#include "cmvm/cmvm_int.h"
#include "core/fxp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

alk__fq alk__qint_add(alk__fq q0, alk__fq q1, int64_t shift, bool sub0, bool sub1) {
    float min0 = q0.min, max0 = q0.max, step0 = q0.step;
    float min1 = q1.min, max1 = q1.max, step1 = q1.step;
    if (sub0) {
        float t = min0;
        min0 = -max0;
        max0 = -t;
    }
    if (sub1) {
        float t = min1;
        min1 = -max1;
        max1 = -t;
    }
    /* The scale is computed as a double power and stored in a float, as the reference does. */
    float scale = (float)pow(2.0, (double)shift);
    min1 *= scale;
    max1 *= scale;
    step1 *= scale;
    alk__fq r = {min0 + min1, max0 + max1, step1 < step0 ? step1 : step0};
    return r;
}

/* Bit width of an interval in the reference's int8 arithmetic (qint_to_bw). */
static int8_t qint_to_bw(alk__fq q) {
    if (q.min == q.max && q.min == 0) {
        return 0;
    }
    int8_t is_signed = q.min < 0 ? 1 : 0;
    float lo = q.min / q.step;
    float hi = q.max / q.step;
    int8_t a = (int8_t)alk_iceil_log2(lo);
    int8_t b = (int8_t)alk_iceil_log2(hi + 1.0f);
    int8_t mbits = a > b ? a : b;
    return (int8_t)(mbits + is_signed);
}

alk__bw alk__interval_bw(alk__fq q) {
    /* get_lsb_loc returns an int8 in the reference: +inf (exponent 128) wraps to -128. */
    return (alk__bw){.lsb = (int8_t)alk_lsb_loc(q.step), .bw = qint_to_bw(q)};
}

void alk__overlap_counts_bw(alk__bw w0, alk__bw w1, int8_t shift1, int *ret_accum, int *ret_overlap,
                            int *ret_tail) {
    int8_t r0 = (int8_t)(-w0.lsb);
    int8_t r1 = (int8_t)(-w1.lsb - shift1);
    int8_t l0 = (int8_t)(r0 - w0.bw), l1 = (int8_t)(r1 - w1.bw);
    int8_t s[4] = {l0, r0, l1, r1};
    for (int i = 1; i < 4; i++) {
        int8_t v = s[i];
        int j = i;
        while (j > 0 && s[j - 1] > v) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = v;
    }
    /* [quirk] spec §2.5: the second test compares r1 with l0, not r0 with l1. */
    if (r0 < l0 || r1 < l0) {
        int8_t t = s[1];
        s[1] = s[2];
        s[2] = t;
    }
    *ret_overlap = (int8_t)(s[2] - s[1]);
    *ret_accum = (int8_t)(s[1] - s[0]);
    *ret_tail = (int8_t)(s[3] - s[2]);
}

void alk__overlap_counts(alk__fq q0, alk__fq q1, int8_t shift1, int *ret_accum, int *ret_overlap,
                         int *ret_tail) {
    alk__overlap_counts_bw(alk__interval_bw(q0), alk__interval_bw(q1), shift1, ret_accum,
                           ret_overlap, ret_tail);
}

void alk__cost_add(alk__fq q0, alk__fq q1, int64_t shift, float *ret_cost, float *ret_latency) {
    int accum, overlap, tail;
    alk__overlap_counts(q0, q1, (int8_t)shift, &accum, &overlap, &tail);
    if (overlap <= 0) {
        *ret_cost = 0.0f;
        *ret_latency = 0.0f;
        return;
    }
    uint8_t bw = (uint8_t)(accum + overlap + tail);
    int width = (int)bw - 1;
    *ret_cost = (float)(width > 1 ? width : 1);
    *ret_latency = (float)((double)(float)width * 0.025 + 1.1);
}

void alk__minimal_kif(double min, double max, double step, int *ret_k, int *ret_i, int *ret_f) {
    if (min == 0.0 && max == 0.0) {
        *ret_k = 0;
        *ret_i = 0;
        *ret_f = 0;
        return;
    }
    double safe_step = step > 0.0 ? step : 1.0;
    int k = min < 0.0 ? 1 : 0;
    int f = -alk_iceil_log2((float)safe_step);
    long long lo = llrint(min / safe_step);
    long long hi = llrint(max / safe_step);
    long long arg = llabs(lo) > hi + 1 ? llabs(lo) : hi + 1;
    int bits = arg > 0 ? alk_iceil_log2((float)arg) : 0;
    *ret_k = k;
    *ret_i = bits - f;
    *ret_f = f;
}

int alk__naf_weight(int64_t v) {
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    /* NAF weight = popcount(((3a) xor a) >> 1); 3a needs 2 more bits, fine below 2^62. */
    return alk__popcount64(((3 * a) ^ a) >> 1);
}

void alk__surrogate_add(alk__fq q0, alk__fq q1, int64_t shift, bool sub, int64_t carry_size,
                        double *ret_cost, double *ret_latency) {
    int left, overlap, right;
    alk__overlap_counts(q0, q1, (int8_t)shift, &left, &overlap, &right);
    if (overlap <= 0) {
        *ret_cost = 0.0;
        *ret_latency = 0.0;
        return;
    }
    int64_t cost;
    if (sub) {
        cost = left + overlap + right - 1;
        if (cost < 1) {
            cost = 1;
        }
    } else {
        cost = left + overlap;
    }
    /* Python's modulo: -1 mod 65535 = 65534 (an almost constant adder delay). */
    int64_t n_accum = ((carry_size % 65535) + 65535) % 65535;
    if (n_accum == 0) {
        n_accum = 65535;
    }
    int64_t num = cost - 1 + n_accum - 1;
    int64_t q = num >= 0 ? num / n_accum : -((-num + n_accum - 1) / n_accum);
    *ret_cost = (double)cost;
    *ret_latency = (double)q * 0.025390625 + 1.09375;
}

bool alk__center(const alk__mat *m, int32_t *shift0, int32_t *shift1, int64_t *centred,
                 uint32_t *ret_row, uint32_t *ret_col) {
    uint32_t rows = m->rows, cols = m->cols;
    for (uint32_t j = 0; j < cols; j++) {
        int lowest = 127;
        for (uint32_t i = 0; i < rows; i++) {
            int l = alk_lsb_loc_f64(m->v[(size_t)i * cols + j]);
            lowest = l < lowest ? l : lowest;
        }
        shift1[j] = lowest == 127 ? 0 : lowest;
    }
    for (uint32_t i = 0; i < rows; i++) {
        int lowest = 127;
        for (uint32_t j = 0; j < cols; j++) {
            double v = ldexp(m->v[(size_t)i * cols + j], -shift1[j]);
            int l = alk_lsb_loc_f64(v);
            lowest = l < lowest ? l : lowest;
        }
        shift0[i] = lowest == 127 ? 0 : lowest;
    }
    const double limit = ldexp(1.0, ALK_CMVM_MAX_ENTRY_BITS);
    for (uint32_t i = 0; i < rows; i++) {
        for (uint32_t j = 0; j < cols; j++) {
            double v = ldexp(m->v[(size_t)i * cols + j], -shift1[j] - shift0[i]);
            if (!(fabs(v) < limit)) {
                *ret_row = i;
                *ret_col = j;
                return false;
            }
            centred[(size_t)i * cols + j] = (int64_t)v;
        }
    }
    return true;
}
