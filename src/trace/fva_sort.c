/*
 * Arrays of symbolic variables, part 5 of 7 (see fva_int.h): sorting networks (sort, argsort
 * through sort_by) and histograms (spec trace-alir.md §2.8, §2.9).
 *
 * Design. A trace cannot branch on data, so sorting is a fixed network of compare-and-swap
 * units, each a comparison node and two multiplexers per column; the network (Batcher's odd-even
 * merge or bitonic) and its padding to a power of two follow the reference, whose padding
 * constants come from the float32 bounds of the whole array. A histogram counts with comparisons
 * against the edges and sums, like the reference's cumulative formulation.
 *
 * Memory: arena only (see fva_int.h). Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Sorting (§2.8)                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* cmp_swap of two rows of m columns: one comparison of the keys (column 0) drives a multiplexer
 * pair per column, so a payload travels with its key. */
static void cmp_swap(alk_trace *t, alk_fvar **a, alk_fvar **b, size_t m, bool ascending) {
    alk_fvar *k = alk_fv_le(t, a[0], b[0]);
    for (size_t j = 0; j < m && !failed(t); j++) {
        alk_fvar *x = alk_fv_mux(t, k, a[j], b[j], NULL);
        alk_fvar *y = alk_fv_mux(t, k, b[j], a[j], NULL);
        if (ascending) {
            a[j] = x;
            b[j] = y;
        } else {
            a[j] = y;
            b[j] = x;
        }
    }
}

/* Batcher's odd-even merge sort in its iterative form (the reference's loop nest, whose order of
 * comparisons fixes the order nodes are made in). */
static void batcher(alk_trace *t, alk_fvar **rows, size_t n, size_t m) {
    int levels = n > 1 ? (int)ceil(log2((double)n)) : 0;
    for (int pe = 0; pe < levels; pe++) {
        size_t p = (size_t)1 << pe;
        for (int ke = pe; ke >= 0; ke--) {
            size_t k = (size_t)1 << ke;
            for (size_t j = k % p; j + k < n; j += 2 * k) {
                size_t lim = k < n - j - k ? k : n - j - k;
                for (size_t i = 0; i < lim; i++) {
                    if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) {
                        cmp_swap(t, rows + (i + j) * m, rows + (i + j + k) * m, m, true);
                    }
                }
            }
        }
    }
}

static void bitonic_merge(alk_trace *t, alk_fvar **rows, size_t n, size_t m, bool ascending) {
    if (n <= 1) {
        return;
    }
    for (size_t i = 0; i < n / 2; i++) {
        cmp_swap(t, rows + i * m, rows + (i + n / 2) * m, m, ascending);
    }
    bitonic_merge(t, rows, n / 2, m, ascending);
    bitonic_merge(t, rows + (n / 2) * m, n - n / 2, m, ascending);
}

/* Bitonic sort: two halves sorted in opposite directions form a bitonic sequence, then merged. */
static void bitonic(alk_trace *t, alk_fvar **rows, size_t n, size_t m, bool ascending) {
    if (n <= 1) {
        return;
    }
    bitonic(t, rows, n / 2, m, true);
    bitonic(t, rows + (n / 2) * m, n - n / 2, m, false);
    bitonic_merge(t, rows, n, m, ascending);
}

/* sort(a, axis) on an array whose last axis holds (key, payload...) rows. */
static alk_fva *sort_rows(alk_trace *t, const alk_fva *a, size_t axis, alk_sort_kind kind) {
    size_t sort_dim = a->shape[axis];
    alk_fva *r = alk_fva_copy(t, alk_fva_moveaxis(t, a, (int)axis, -2));
    if (r == NULL) {
        return NULL;
    }
    size_t m = r->shape[r->ndim - 1];
    size_t batch = sort_dim * m != 0 ? r->size / (sort_dim * m) : 0;
    size_t levels = sort_dim > 1 ? (size_t)ceil(log2((double)sort_dim)) : 0;
    size_t padded = (size_t)1 << levels;
    size_t pad = padded - sort_dim, pad_low = pad / 2;
    /* Padding constants from the float32 bounds of the whole array (quirk). */
    float lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < r->size; j++) {
        alk_fvar *v = r->vars[j];
        float l = (float)alk_fv_low(v), h = (float)alk_fv_high(v);
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
    }
    alk_fvar *low_pad = alk__fv_const_hw(t, (double)(lo - 1.0f), a->hw);
    alk_fvar *high_pad = alk__fv_const_hw(t, (double)(hi + 1.0f), a->hw);
    alk_fvar **rows = alk__trace_alloc(t, (padded * m != 0 ? padded * m : 1) * sizeof(alk_fvar *));
    if (rows == NULL || low_pad == NULL || high_pad == NULL) {
        return NULL;
    }
    for (size_t bi = 0; bi < batch && !failed(t); bi++) {
        for (size_t q = 0; q < padded; q++) {
            for (size_t c = 0; c < m; c++) {
                alk_fvar *v;
                if (q < pad_low) {
                    v = low_pad;
                } else if (q >= pad_low + sort_dim) {
                    v = high_pad;
                } else {
                    v = r->vars[(bi * sort_dim + q - pad_low) * m + c];
                }
                rows[q * m + c] = v;
            }
        }
        if (kind == ALK_SORT_BITONIC) {
            bitonic(t, rows, padded, m, true);
        } else {
            batcher(t, rows, padded, m);
        }
        for (size_t q = 0; q < sort_dim; q++) {
            for (size_t c = 0; c < m; c++) {
                r->vars[(bi * sort_dim + q) * m + c] = rows[(q + pad_low) * m + c];
            }
        }
    }
    if (failed(t)) {
        return NULL;
    }
    return alk_fva_moveaxis(t, r, -2, (int)axis);
}

alk_fva *alk_fva_sort(alk_trace *t, const alk_fva *a, int axis, alk_sort_kind kind) {
    if (failed(t) || a == NULL || !alk__fva_plain(t, a, "sort")) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "sort needs an array of variables");
        return NULL;
    }
    size_t ax;
    if (!alk__fva_norm_axis(t, axis, a->ndim, &ax)) {
        return NULL;
    }
    alk_index ix[2] = {ALK_ELLIPSIS, ALK_NEWAXIS};
    alk_fva *r = sort_rows(t, alk_fva_index(t, a, ix, 2), ax, kind);
    alk_index last[2] = {ALK_ELLIPSIS, ALK_AT(0)};
    return r == NULL ? NULL : alk_fva_index(t, r, last, 2);
}

alk_fva *alk_fva_sort_by(alk_trace *t, const alk_fva *keys, const alk_fva *aux,
                         alk_sort_kind kind) {
    if (failed(t) || keys == NULL || aux == NULL) {
        return NULL;
    }
    if (!alk__fva_plain(t, keys, "argsort") || !alk__fva_plain(t, aux, "argsort")) {
        return NULL;
    }
    if (keys->ndim != 1 || keys->numeric || aux->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "argsort needs 1-D keys and variables");
        return NULL;
    }
    if (aux->ndim == 0 || aux->shape[0] != keys->shape[0] || aux->ndim > 2) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "argsort index: %zu keys but the indexed array has a different "
                             "length",
                             keys->shape[0]);
        return NULL;
    }
    alk_index ix[2] = {ALK_ELLIPSIS, ALK_NEWAXIS};
    const alk_fva *aux2 = aux->ndim == 1 ? alk_fva_index(t, aux, ix, 2) : aux;
    alk_fva *parts[2] = {alk_fva_index(t, keys, ix, 2), (alk_fva *)aux2};
    alk_fva *cat = alk_fva_concatenate(t, parts, 2, -1);
    alk_fva *r = cat == NULL ? NULL : sort_rows(t, cat, 0, kind);
    alk_index payload[2] = {ALK_ELLIPSIS, ALK_SLICE(1, ALK_FV_NONE, ALK_FV_NONE)};
    return r == NULL ? NULL : alk_fva_index(t, r, payload, 2);
}

/* ---------------------------------------------------------------------------------------- */
/* Histogram (§2.9)                                                                         */
/* ---------------------------------------------------------------------------------------- */

alk_fva *alk_fva_histogram(alk_trace *t, const alk_fva *a, const double *edges, size_t n_edges,
                           const alk_fva *weights) {
    if (failed(t) || a == NULL || edges == NULL) {
        return NULL;
    }
    if (!alk__fva_plain(t, a, "histogram") || !alk__fva_plain(t, weights, "histogram")) {
        return NULL;
    }
    if (n_edges < 2) {
        alk__trace_set_error(t, ALK_EINVAL, "histogram needs at least 2 bin edges");
        return NULL;
    }
    for (size_t j = 0; j + 1 < n_edges; j++) {
        if (!(edges[j + 1] > edges[j])) {
            alk__trace_set_error(t, ALK_EINVAL, "bin edges must be strictly increasing");
            return NULL;
        }
    }
    alk_fva *flat = alk_fva_ravel(t, a);
    if (flat == NULL) {
        return NULL;
    }
    size_t m = flat->size;
    if (weights != NULL && weights->size != m) {
        alk__trace_set_error(t, ALK_EINVAL, "weights must have the same length as a (%zu vs %zu)",
                             weights->size, m);
        return NULL;
    }
    size_t nb = n_edges - 1;
    if (m == 0) {
        alk_fva *z = alk__fva_new(t, 1, &nb, false, a->hw);
        for (size_t j = 0; z != NULL && j < nb; j++) {
            z->vars[j] = num_var(t, 0.0, a->hw);
        }
        return z == NULL ? NULL : done(t, z);
    }
    alk_fva *w = weights != NULL ? alk_fva_ravel(t, weights) : alk_fva_scalar(t, 1.0);
    size_t shape_e[2] = {nb, 1};
    size_t shape_last[2] = {1, 1};
    alk_fva *e_low = alk_fva_numbers(t, 2, shape_e, edges);
    alk_fva *e_last = alk_fva_numbers(t, 2, shape_last, edges + nb);
    alk_index row[2] = {ALK_NEWAXIS, ALK_ALL};
    alk_fva *fr = alk_fva_index(t, flat, row, 2);
    int last_axis = -1;
    alk_fva *c1 = alk_fva_reduce(
        t, ALK_REDUCE_SUM,
        alk_fva_binary(t, ALK_MUL, alk_fva_binary(t, ALK_GREATER_EQUAL, fr, e_low), w), &last_axis,
        1, false);
    alk_fva *c2 =
        alk_fva_reduce(t, ALK_REDUCE_SUM,
                       alk_fva_binary(t, ALK_MUL, alk_fva_binary(t, ALK_GREATER, fr, e_last), w),
                       &last_axis, 1, false);
    alk_fva *parts[2] = {c1, c2};
    alk_fva *cum = alk_fva_concatenate(t, parts, 2, 0);
    alk_index head[1] = {ALK_SLICE(ALK_FV_NONE, -1, ALK_FV_NONE)};
    alk_index tail[1] = {ALK_SLICE(1, ALK_FV_NONE, ALK_FV_NONE)};
    return alk_fva_binary(t, ALK_SUB, alk_fva_index(t, cum, head, 1),
                          alk_fva_index(t, cum, tail, 1));
}
