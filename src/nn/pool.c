/*
 * Pools (frontends §2.2 Average/MaxPooling and the global pools, §4.3-§4.4 torch's pools and
 * adaptive pools with output 1).
 *
 * Design. A pool is the patch gather of its window viewed (..., K_vol, C) and reduced over the taps
 * with the reference's heap tree: a max tree after the taps outside the input were replaced by
 * the constant -2147483648 (the reference's np.where on the patch mask), or a sum multiplied by
 * the float64 reciprocal of a divisor per output position. The divisors are plain numbers that
 * depend only on the geometry, so they are counted here from it (the reference gathers an all-ones
 * array for the same count): per axis, the taps that land inside the input (or inside the padded
 * input, for torch's count_include_pad), multiplied over the axes.
 */
#include "nn/nn_int.h"

#include "core/alloc.h"

#include <string.h>

/* The pad value of max pools: the reference's int32 minimum, a constant no input reaches. */
static const double MAX_POOL_PAD = -2147483648.0;

/* Taps of output position `o` on axis `d` that read inside [lo, hi) of the input coordinates. */
static size_t taps_within(const alk_nn_window *w, const alk_nn_geometry *g, size_t d, size_t o,
                          int64_t lo, int64_t hi) {
    size_t count = 0;
    for (size_t k = 0; k < w->kernel[d]; k++) {
        int64_t pos = (int64_t)(o * w->strides[d] + k * w->dilation[d]) - (int64_t)g->before[d];
        count += pos >= lo && pos < hi;
    }
    return count;
}

/* Per output position (C order over the output's spatial axes) the reciprocal of its divisor. */
static alk_fva *reciprocal_divisors(alk_trace *t, const alk_nn_pool *pool,
                                    const alk_nn_geometry *g) {
    const alk_nn_window *w = &pool->window;
    if (!alk__nn_ok(t)) {
        return NULL; /* the gather failed: its sizes are not to be trusted */
    }
    size_t n = 1;
    for (size_t d = 0; d < w->rank; d++) {
        n *= g->out[d];
    }
    double *values = alk__nn_alloc(t, n, sizeof(double));
    if (values == NULL) {
        return NULL;
    }
    size_t pos[ALK_NN_MAX_RANK] = {0};
    for (size_t j = 0; j < n; j++) {
        double divisor = 1;
        for (size_t d = 0; d < w->rank; d++) {
            int64_t in = (int64_t)g->in[d];
            size_t count = pool->count_include_pad
                               ? taps_within(w, g, d, pos[d], -(int64_t)g->before[d],
                                             in + (int64_t)g->after[d])
                               : taps_within(w, g, d, pos[d], 0, in);
            divisor *= (double)count;
        }
        if (pool->divisor_override != 0) {
            divisor = (double)pool->divisor_override;
        }
        /* x / c is x * (1/c) in the reference, with the reciprocal in float64. */
        values[j] = 1.0 / divisor;
        for (size_t d = w->rank; d-- > 0;) {
            if (++pos[d] < g->out[d]) {
                break;
            }
            pos[d] = 0;
        }
    }
    /* Shaped (*out, 1): it broadcasts against the pooled (B, *out, C). */
    size_t shape[ALK_NN_MAX_RANK + 1];
    memcpy(shape, g->out, w->rank * sizeof(size_t));
    shape[w->rank] = 1;
    alk_fva *r = alk_fva_numbers(t, w->rank + 1, shape, values);
    alk_free(values);
    return r;
}

/* A window with no tap outside the input needs no masking and no per-position divisor. */
static bool has_padding(const alk_nn_geometry *g, const alk_nn_window *w) {
    for (size_t d = 0; d < w->rank; d++) {
        int64_t last =
            (int64_t)((g->out[d] - 1) * w->strides[d] + (w->kernel[d] - 1) * w->dilation[d]) -
            (int64_t)g->before[d];
        if (g->before[d] > 0 || last >= (int64_t)g->in[d]) {
            return true;
        }
    }
    return false;
}

/*
 * Whether some output of a max pool reads only padding (dilated taps can step over the input:
 * MaxPool1d(2, 2, padding=1, dilation=2) of one value). torch gives -inf there, which no
 * fixed-point value is; the reference gives its pad constant. Refused, naming the position.
 */
static bool reads_only_padding(alk_trace *t, const alk_nn_window *w, const alk_nn_geometry *g) {
    for (size_t d = 0; d < w->rank; d++) {
        for (size_t o = 0; o < g->out[d]; o++) {
            if (taps_within(w, g, d, o, 0, (int64_t)g->in[d]) == 0) {
                alk_trace_fail(t, ALK_EINVAL,
                               "spatial axis %zu: output %zu of the max pool reads only padding "
                               "(torch gives -inf there)",
                               d, o);
                return true;
            }
        }
    }
    return false;
}

alk_fva *alk_nn_pool_apply(alk_trace *t, const alk_fva *x, const alk_nn_pool *pool) {
    if (!alk__nn_ok(t) || x == NULL || pool == NULL) {
        return NULL;
    }
    const alk_nn_window *w = &pool->window;
    if (w->rank < 1 || w->rank > ALK_NN_MAX_RANK || alk_fva_ndim(x) != w->rank + 2) {
        alk_trace_fail(t, ALK_EINVAL,
                       "input of %zu axes: a %zu-D pool needs (batch, %zu spatial, channels)",
                       alk_fva_ndim(x), w->rank, w->rank);
        return NULL;
    }
    alk_fva *xl = alk__nn_channels_last(t, x, w->channels_first);
    if (xl == NULL) {
        return NULL;
    }
    const size_t *shape = alk_fva_shape(xl);
    size_t in[ALK_NN_MAX_RANK], channels = shape[w->rank + 1];
    for (size_t d = 0; d < w->rank; d++) {
        in[d] = shape[1 + d];
    }
    alk_nn_geometry g;
    if (alk_nn_window_resolve(t, w, in, false, &g) != ALK_OK) {
        return NULL;
    }
    alk_patch_spec spec;
    alk__nn_patch_spec(w, &g, false, &spec);
    bool padded = has_padding(&g, w);
    if (pool->kind == ALK_NN_POOL_MAX && padded && reads_only_padding(t, w, &g)) {
        return NULL;
    }
    double pad_value = pool->kind == ALK_NN_POOL_MAX && padded ? MAX_POOL_PAD : 0.0;
    alk_fva *patches = alk_fva_patches(t, xl, &spec, pad_value);
    if (patches == NULL) {
        return NULL;
    }
    /* (B, *out, K_vol*C) -> (B, *out, K_vol, C), reduced over the taps. */
    int64_t view[ALK_NN_MAX_RANK + 3];
    size_t ndim = alk_fva_ndim(patches);
    for (size_t d = 0; d + 1 < ndim; d++) {
        view[d] = (int64_t)alk_fva_shape(patches)[d];
    }
    view[ndim - 1] = -1;
    view[ndim] = (int64_t)channels;
    patches = alk_fva_reshape(t, patches, ndim + 1, view);
    static const int taps_axis[1] = {-2};
    alk_fva *y;
    if (pool->kind == ALK_NN_POOL_MAX) {
        y = alk_fva_reduce(t, ALK_REDUCE_MAX, patches, taps_axis, 1, false);
    } else {
        y = alk_fva_reduce(t, ALK_REDUCE_SUM, patches, taps_axis, 1, false);
        y = alk_fva_binary(t, ALK_MUL, y, reciprocal_divisors(t, pool, &g));
    }
    return alk__nn_restore_layout(t, y, w->channels_first);
}

alk_fva *alk_nn_global_pool(alk_trace *t, const alk_fva *x, alk_nn_pool_kind kind,
                            bool channels_first, bool keepdims) {
    if (!alk__nn_ok(t) || x == NULL) {
        return NULL;
    }
    size_t first, rank;
    if (!alk__nn_spatial_axes(t, x, channels_first, &first, &rank)) {
        return NULL;
    }
    size_t ndim = rank + 2;
    alk_fva *xl = alk__nn_channels_last(t, x, channels_first);
    if (xl == NULL) {
        return NULL;
    }
    int axes[ALK_NN_MAX_RANK];
    size_t count = 1;
    for (size_t d = 0; d + 2 < ndim; d++) {
        axes[d] = (int)(d + 1);
        count *= alk_fva_shape(xl)[d + 1];
    }
    alk_fva *y;
    if (kind == ALK_NN_POOL_MAX) {
        y = alk_fva_reduce(t, ALK_REDUCE_MAX, xl, axes, ndim - 2, keepdims);
    } else {
        y = alk_fva_div_scalar(t, alk_fva_reduce(t, ALK_REDUCE_SUM, xl, axes, ndim - 2, keepdims),
                               (double)count);
    }
    /* Without keepdims the result is (B, C) in either layout. */
    return keepdims ? alk__nn_restore_layout(t, y, channels_first) : y;
}
