/*
 * Spatial and index layers (frontends §2.2 ZeroPadding/Cropping/UpSampling, Embedding,
 * CategoryEncoding; §4.3-§4.4 the torch pads, Upsample, PixelShuffle/Unshuffle, Embedding).
 *
 * Design. All of these but the embedding and the encodings are structural: they move references
 * (np.pad, slicing, np.repeat, reshape and transpose) and create no hardware, except the constant
 * of a constant pad, which alk_fva_pad makes as the reference's FVArray constructor would. The
 * spatial axes are located once per call from the layout (1..rank channels last, 2..rank+1
 * channels first).
 */
#include "nn/nn_int.h"

#include "core/alloc.h"

#include <math.h>
#include <string.h>

bool alk__nn_spatial_axes(alk_trace *t, const alk_fva *x, bool channels_first, size_t *ret_first,
                          size_t *ret_rank) {
    size_t ndim = alk_fva_ndim(x);
    if (ndim < 3 || ndim > ALK_NN_MAX_RANK + 2) {
        alk_trace_fail(t, ALK_EINVAL,
                       "input of %zu axes: a spatial layer needs (batch, 1 to 3 spatial, channels)",
                       ndim);
        return false;
    }
    *ret_first = channels_first ? 2 : 1;
    *ret_rank = ndim - 2;
    return true;
}

alk_fva *alk_nn_pad_spatial(alk_trace *t, const alk_fva *x, bool channels_first,
                            const size_t (*pads)[2], alk_pad_mode mode, double value) {
    size_t first, rank;
    if (!alk__nn_ok(t) || x == NULL || !alk__nn_spatial_axes(t, x, channels_first, &first, &rank)) {
        return NULL;
    }
    int64_t all[ALK_NN_MAX_RANK + 2][2];
    memset(all, 0, sizeof(all));
    for (size_t d = 0; d < rank; d++) {
        all[first + d][0] = (int64_t)pads[d][0];
        all[first + d][1] = (int64_t)pads[d][1];
    }
    return alk_fva_pad(t, x, (const int64_t(*)[2])all, mode, value);
}

alk_fva *alk_nn_crop_spatial(alk_trace *t, const alk_fva *x, bool channels_first,
                             const size_t (*crops)[2]) {
    size_t first, rank;
    if (!alk__nn_ok(t) || x == NULL || !alk__nn_spatial_axes(t, x, channels_first, &first, &rank)) {
        return NULL;
    }
    alk_index index[ALK_NN_MAX_RANK + 2];
    for (size_t d = 0; d < rank + 2; d++) {
        index[d] = ALK_ALL;
    }
    const size_t *shape = alk_fva_shape(x);
    for (size_t d = 0; d < rank; d++) {
        size_t size = shape[first + d];
        if (crops[d][0] + crops[d][1] > size) {
            alk_trace_fail(t, ALK_EINVAL,
                           "spatial axis %zu: cropping (%zu, %zu) is more than its %zu positions",
                           d, crops[d][0], crops[d][1], size);
            return NULL;
        }
        index[first + d] =
            ALK_SLICE((int64_t)crops[d][0], (int64_t)(size - crops[d][1]), ALK_FV_NONE);
    }
    return alk_fva_index(t, x, index, rank + 2);
}

alk_fva *alk_nn_upsample_nearest(alk_trace *t, const alk_fva *x, bool channels_first,
                                 const size_t *scale) {
    size_t first, rank;
    if (!alk__nn_ok(t) || x == NULL || !alk__nn_spatial_axes(t, x, channels_first, &first, &rank)) {
        return NULL;
    }
    alk_fva *y = (alk_fva *)x;
    for (size_t d = 0; d < rank; d++) {
        if (scale[d] < 1) {
            alk_trace_fail(t, ALK_EINVAL, "spatial axis %zu: upsampling by %zu", d, scale[d]);
            return NULL;
        }
        y = alk_fva_repeat(t, y, scale[d], (int)(first + d));
    }
    return y;
}

/* (N, C*r^R, *S): the channel count divided by r^R, or 0 (error recorded) when it does not. */
static size_t shuffled_channels(alk_trace *t, const alk_fva *x, size_t r, size_t rank) {
    size_t block = 1;
    for (size_t d = 0; d < rank; d++) {
        block *= r;
    }
    size_t c = alk_fva_shape(x)[1];
    if (r < 1 || c % block != 0) {
        alk_trace_fail(t, ALK_EINVAL, "%zu channels are not divisible by %zu^%zu", c, r, rank);
        return 0;
    }
    return c / block;
}

alk_fva *alk_nn_pixel_shuffle(alk_trace *t, const alk_fva *x, size_t r) {
    size_t first, rank;
    if (!alk__nn_ok(t) || x == NULL || !alk__nn_spatial_axes(t, x, true, &first, &rank)) {
        return NULL;
    }
    size_t c_out = shuffled_channels(t, x, r, rank);
    if (c_out == 0) {
        return NULL;
    }
    const size_t *shape = alk_fva_shape(x);
    /* (N, C, r, .., r, S0, .., S_R-1) -> (N, C, S0, r, S1, r, ..) -> (N, C, S0*r, ..) */
    int64_t split[2 + 2 * ALK_NN_MAX_RANK], merged[2 + ALK_NN_MAX_RANK];
    int perm[2 + 2 * ALK_NN_MAX_RANK];
    split[0] = merged[0] = (int64_t)shape[0];
    split[1] = merged[1] = (int64_t)c_out;
    perm[0] = 0;
    perm[1] = 1;
    for (size_t d = 0; d < rank; d++) {
        split[2 + d] = (int64_t)r;
        split[2 + rank + d] = (int64_t)shape[2 + d];
        perm[2 + 2 * d] = (int)(2 + rank + d);
        perm[3 + 2 * d] = (int)(2 + d);
        merged[2 + d] = (int64_t)(shape[2 + d] * r);
    }
    alk_fva *y = alk_fva_reshape(t, x, 2 + 2 * rank, split);
    y = alk_fva_transpose(t, y, perm);
    return alk_fva_reshape(t, y, 2 + rank, merged);
}

alk_fva *alk_nn_pixel_unshuffle(alk_trace *t, const alk_fva *x, size_t r) {
    size_t first, rank;
    if (!alk__nn_ok(t) || x == NULL || !alk__nn_spatial_axes(t, x, true, &first, &rank)) {
        return NULL;
    }
    const size_t *shape = alk_fva_shape(x);
    size_t block = 1;
    for (size_t d = 0; d < rank; d++) {
        if (r < 1 || shape[2 + d] % r != 0) {
            alk_trace_fail(t, ALK_EINVAL, "spatial axis %zu (%zu) is not divisible by %zu", d,
                           shape[2 + d], r);
            return NULL;
        }
        block *= r;
    }
    /* (N, C, S0/r, r, S1/r, r, ..) -> (N, C, r, .., r, S0/r, ..) -> (N, C*r^R, S0/r, ..) */
    int64_t split[2 + 2 * ALK_NN_MAX_RANK], merged[2 + ALK_NN_MAX_RANK];
    int perm[2 + 2 * ALK_NN_MAX_RANK];
    split[0] = merged[0] = (int64_t)shape[0];
    split[1] = (int64_t)shape[1];
    merged[1] = (int64_t)(shape[1] * block);
    perm[0] = 0;
    perm[1] = 1;
    for (size_t d = 0; d < rank; d++) {
        split[2 + 2 * d] = (int64_t)(shape[2 + d] / r);
        split[3 + 2 * d] = (int64_t)r;
        perm[2 + d] = (int)(3 + 2 * d);
        perm[2 + rank + d] = (int)(2 + 2 * d);
        merged[2 + d] = (int64_t)(shape[2 + d] / r);
    }
    alk_fva *y = alk_fva_reshape(t, x, 2 + 2 * rank, split);
    y = alk_fva_transpose(t, y, perm);
    return alk_fva_reshape(t, y, 2 + rank, merged);
}

/* ---- Embedding and category encoding ------------------------------------------------------- */

/* One column of an embedding table, for the lookup's float function. */
typedef struct embedding_column {
    const double *column; /* V entries */
    size_t n;
} embedding_column;

/* table[clip(int(v), 0, V-1)]: numpy's astype(int64) truncates toward zero. */
static double embedding_entry(double v, void *user) {
    const embedding_column *col = user;
    double index = trunc(v);
    if (!(index > 0)) {
        return col->column[0];
    }
    if (index >= (double)(col->n - 1)) {
        return col->column[col->n - 1];
    }
    return col->column[(size_t)index];
}

alk_fva *alk_nn_embedding(alk_trace *t, const alk_fva *x, const alk_fva *table) {
    if (!alk__nn_ok(t) || x == NULL || table == NULL) {
        return NULL;
    }
    if (!alk__nn_require_numeric(t, table, "embeddings")) {
        return NULL;
    }
    if (alk_fva_ndim(table) != 2 || alk_fva_shape(table)[0] == 0 || alk_fva_shape(table)[1] == 0) {
        alk_trace_fail(t, ALK_EINVAL, "embeddings must be a non-empty (V, D) table");
        return NULL;
    }
    size_t v = alk_fva_shape(table)[0], dims = alk_fva_shape(table)[1];
    /* Columns in one buffer, column-major, so each lookup reads one contiguous column. */
    double *columns = alk__nn_alloc(t, alk_fva_size(table), sizeof(double));
    alk_fva **stacked = alk__nn_alloc(t, dims, sizeof(alk_fva *));
    alk_fva *y = NULL;
    if (columns == NULL || stacked == NULL) {
        goto done;
    }
    for (size_t row = 0; row < v; row++) {
        for (size_t d = 0; d < dims; d++) {
            columns[d * v + row] = alk_fva_num_at(table, row * dims + d);
        }
    }
    for (size_t d = 0; d < dims; d++) {
        /* The tables are built inside this call, so the column may live on the stack. */
        embedding_column col = {columns + d * v, v};
        stacked[d] = alk_fva_map_fn(t, x, embedding_entry, &col, false, 0, 0, 0, ALK_WRAP, ALK_TRN);
        if (stacked[d] == NULL) {
            goto done;
        }
    }
    y = alk_fva_stack(t, stacked, dims, -1);
done:
    alk_free(columns);
    alk_free(stacked);
    return y;
}

alk_fva *alk_nn_category_encoding(alk_trace *t, const alk_fva *x, size_t num_tokens,
                                  alk_nn_category_mode mode) {
    if (!alk__nn_ok(t) || x == NULL) {
        return NULL;
    }
    if (num_tokens < 1 || num_tokens > ALK_FVA_MAX_ELEMENTS) {
        alk_trace_fail(t, ALK_EINVAL, "num_tokens %zu out of range", num_tokens);
        return NULL;
    }
    alk_fva **hot = alk__nn_alloc(t, num_tokens, sizeof(alk_fva *));
    if (hot == NULL) {
        return NULL;
    }
    for (size_t c = 0; c < num_tokens; c++) {
        hot[c] = alk_fva_binary_scalar(t, ALK_EQUAL, x, (double)c);
    }
    alk_fva *y = alk_fva_stack(t, hot, num_tokens, -1);
    alk_free(hot);
    if (mode == ALK_NN_ONE_HOT) {
        return y;
    }
    static const int tokens_axis[1] = {-2};
    y = alk_fva_reduce(t, ALK_REDUCE_SUM, y, tokens_axis, 1, false);
    return mode == ALK_NN_MULTI_HOT ? alk_fva_binary_scalar(t, ALK_GREATER, y, 0.0) : y;
}
