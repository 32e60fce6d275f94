/*
 * Surrogate cost and latency of a lookup (spec trace-alir.md §3.9, `cost_lat_lut`): the table is
 * padded to the full input code space, each output bit becomes a boolean function of the input
 * bits, and LUT6s are counted by splitting on input bits (all axes tried at the top level, the
 * axis with the most equal half-pairs below). Bit arrays are bytes indexed by the input code,
 * axis 0 being the code's most significant bit, as numpy's reshape((2,) * w) orders them.
 */
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <string.h>

enum { LUT_X = 6 };

/* Whether the d-dimensional bit array holds more than one value. */
static bool varies(const uint8_t *bits, size_t n) {
    for (size_t j = 1; j < n; j++) {
        if (bits[j] != bits[0]) {
            return true;
        }
    }
    return false;
}

/* numpy.take(bits, v, axis=ax) of a d-dimensional array: fixes code bit (d - 1 - ax) to v. */
static void take(const uint8_t *bits, int d, int ax, int v, uint8_t *out) {
    int p = d - 1 - ax;
    size_t half = (size_t)1 << (d - 1);
    size_t low_mask = ((size_t)1 << p) - 1;
    for (size_t j = 0; j < half; j++) {
        size_t code = ((j & ~low_mask) << 1) | ((size_t)v << p) | (j & low_mask);
        out[j] = bits[code];
    }
}

/* _count_luts_rec: greedy split on the axis with the most equal half-pairs. */
static double count_rec(const uint8_t *bits, int d, uint8_t *scratch) {
    size_t n = (size_t)1 << d;
    if (d <= LUT_X) {
        return varies(bits, n) ? 1.0 : 0.0;
    }
    size_t half = n / 2;
    uint8_t *left = scratch;
    uint8_t *right = scratch + half;
    uint8_t *deeper = scratch + n;
    size_t best_matches = 0;
    int best_ax = 0;
    for (int ax = 0; ax < d; ax++) {
        take(bits, d, ax, 0, left);
        take(bits, d, ax, 1, right);
        size_t matches = 0;
        for (size_t j = 0; j < half; j++) {
            matches += left[j] == right[j];
        }
        if (ax == 0 || matches > best_matches) {
            best_matches = matches;
            best_ax = ax;
        }
    }
    take(bits, d, best_ax, 0, left);
    if (best_matches == half) {
        return count_rec(left, d - 1, deeper);
    }
    /* Each level owns n bytes (both halves) and hands the rest of the scratch to its child,
     * so `right` survives the recursion on `left` (2^d + 2^(d-1) + ... < 2^(d+1) bytes). */
    take(bits, d, best_ax, 1, right);
    double c = count_rec(left, d - 1, deeper);
    return c + count_rec(right, d - 1, deeper);
}

/* _count_luts: every axis tried at the top level. */
static double count_luts(const uint8_t *bits, int d, uint8_t *scratch) {
    size_t n = (size_t)1 << d;
    if (d <= LUT_X) {
        return varies(bits, n) ? 1.0 : 0.0;
    }
    size_t half = n / 2;
    uint8_t *left = scratch;
    uint8_t *right = scratch + half;
    uint8_t *deeper = scratch + n;
    double best = INFINITY;
    for (int ax = 0; ax < d; ax++) {
        take(bits, d, ax, 0, left);
        take(bits, d, ax, 1, right);
        double c;
        if (memcmp(left, right, half) == 0) {
            c = count_rec(left, d - 1, deeper);
        } else {
            c = count_rec(left, d - 1, deeper);
            c += count_rec(right, d - 1, deeper);
        }
        if (c < best) {
            best = c;
        }
    }
    return best;
}

int alk__tr_cost_lat_lut(alk_qint q_in, const alk_ftable *table, const double *float_unused,
                         bool want_cost, double *ret_cost, double *ret_lat) {
    (void)float_unused;
    alk_kif kif = alk_kif_of(q_in);
    int bw_in = alk_kif_width(kif);
    bool large = bw_in - LUT_X > 6;
    double lat;
    if (large) {
        lat = (bw_in - LUT_X > 1 ? bw_in - LUT_X : 1) * 0.5;
    } else {
        int extra = bw_in - LUT_X > 0 ? bw_in - LUT_X : 0;
        lat = 0.075 + 0.2 * (extra < 3 ? extra : 3) + 0.8 * (extra - 3 > 0 ? extra - 3 : 0);
    }
    *ret_lat = lat;
    *ret_cost = 0;
    if (!want_cost) {
        return ALK_OK;
    }
    if (large) {
        *ret_cost = 0.5 * ldexp(1.0, bw_in - LUT_X);
        return ALK_OK;
    }
    if (bw_in < 0) {
        bw_in = 0;
    }
    /* padded_table: the table placed at pad_left in 2^w codes (NaN elsewhere), rotated by half
     * for signed keys so that the position is the two's-complement code; NaN reads as 0. */
    size_t size = (size_t)1 << bw_in;
    int64_t pad_left = alk_lookup_pad_left(q_in, kif);
    int64_t *codes = alk_calloc(size, sizeof(int64_t));
    uint8_t *bits = alk_malloc(size);
    uint8_t *scratch = alk_malloc(4 * size + 64);
    if (codes == NULL || bits == NULL || scratch == NULL) {
        alk_free(codes);
        alk_free(bits);
        alk_free(scratch);
        return ALK_ENOMEM;
    }
    for (size_t j = 0; j < table->len; j++) {
        int64_t pos = pad_left + (int64_t)j;
        if (pos < 0 || (size_t)pos >= size) {
            continue;
        }
        if (q_in.min < 0) {
            pos = (int64_t)(((size_t)pos + size / 2) % size);
        }
        codes[pos] = (table->mask != NULL && table->mask[j]) ? 0 : table->values[j];
    }
    alk_kif out_kif = alk_kif_of(table->out_qint);
    int out_bw = alk_kif_width(out_kif);
    double total = 0.0;
    for (int b = 0; b < out_bw; b++) {
        for (size_t j = 0; j < size; j++) {
            bits[j] = (uint8_t)((b < 63 ? codes[j] >> b : (codes[j] < 0 ? -1 : 0)) & 1);
        }
        if (!varies(bits, size)) {
            continue;
        }
        total += count_luts(bits, bw_in, scratch);
    }
    double scale = 1.0 + (0.5625 - 0.109375 * out_bw);
    total *= scale > 1 ? scale : 1;
    alk_free(codes);
    alk_free(bits);
    alk_free(scratch);
    *ret_cost = total;
    return ALK_OK;
}
