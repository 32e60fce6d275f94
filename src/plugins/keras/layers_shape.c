/*
 * Handlers of the Keras layers that move, repeat or combine values (spec frontends.md §2.2):
 * the no-op layers, Reshape, Flatten, Permute, RepeatVector, the padding, cropping and
 * upsampling layers, the merge layers, Concatenate and Dot.
 *
 * Layers keep the batch axis of 1 as Keras does: the reference's Reshape and Flatten drop it
 * (frontends.md §8.1), which changes nothing in the flattened outputs but makes every layer that
 * counts axes after them (a Conv2D after a Reshape, a Flatten of channels_first data) fail or
 * compute something else. Flatten of channels_first data moves the channels last first, as Keras
 * does (the reference ignores data_format).
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"

#include <string.h>

/* Dropout, GaussianNoise, Random*, Identity, ...: the input itself at inference. */
void keras_identity(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_out(op, alk_op_in(op, 0));
}

/* ---- Reshapes ----------------------------------------------------------------------------------
 */

/* `x` reshaped to (1, *dims) (the batch axis kept). */
static alk_fva *with_batch(alk_op *op, const alk_fva *x, const int64_t *dims, size_t n) {
    int64_t shape[ALK_FVA_MAX_DIM];
    if (n + 1 > ALK_FVA_MAX_DIM) {
        alk_op_fail(op, ALK_EINVAL, "%zu axes: at most %d are supported", n + 1, ALK_FVA_MAX_DIM);
        return NULL;
    }
    shape[0] = x != NULL && alk_fva_ndim(x) > 0 ? (int64_t)alk_fva_shape(x)[0] : 1;
    memcpy(shape + 1, dims, n * sizeof(*dims));
    return alk_fva_reshape(alk_op_trace(op), x, n + 1, shape);
}

void keras_reshape_layer(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dims[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "target_shape", dims, ALK_FVA_MAX_DIM - 1);
    if (n == SIZE_MAX && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "target_shape is missing");
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, with_batch(op, x, dims, n));
    }
}

void keras_flatten(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    if (x != NULL && alk_fva_ndim(x) > 2 && keras_channels_first(op)) {
        x = alk_fva_moveaxis(alk_op_trace(op), x, 1, -1);
    }
    int64_t all = -1;
    if (!alk_op_failed(op)) {
        alk_op_out(op, with_batch(op, x, &all, 1));
    }
}

void keras_permute(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dims[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "dims", dims, ALK_FVA_MAX_DIM - 1);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (n == SIZE_MAX || n + 1 != alk_fva_ndim(x)) {
        alk_op_fail(op, ALK_EINVAL, "dims must permute the %zu non-batch axes",
                    alk_fva_ndim(x) - 1);
        return;
    }
    int axes[ALK_FVA_MAX_DIM] = {0};
    for (size_t i = 0; i < n; i++) {
        axes[i + 1] = (int)dims[i]; /* Keras counts from 1, past the batch axis */
    }
    alk_op_out(op, alk_fva_transpose(alk_op_trace(op), x, axes));
}

void keras_repeat_vector(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t n = alk_op_int(op, "n", -1);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (alk_fva_ndim(x) != 2 || n < 1) {
        alk_op_fail(op, ALK_EINVAL, "RepeatVector takes (batch, features) and n >= 1");
        return;
    }
    int64_t dims[2] = {1, (int64_t)alk_fva_shape(x)[1]};
    alk_op_out(op, alk_fva_repeat(alk_op_trace(op), with_batch(op, x, dims, 2), (size_t)n, 1));
}

/* ---- Padding, cropping, upsampling -------------------------------------------------------------
 */

/* `key` as one (before, after) pair per spatial axis: an int p (p, p) everywhere, one pair for
 * a 1-D layer, or per axis an int or a pair (Keras normalizes configs to the last form). */
static bool read_pairs(alk_op *op, const char *key, size_t rank, size_t (*pairs)[2]) {
    const alk_arg *v = alk_op_get(op, key);
    bool ok = v != NULL;
    if (ok && v->kind == ALK_ARG_INT) {
        for (size_t d = 0; d < rank; d++) {
            pairs[d][0] = pairs[d][1] = (size_t)v->as.integer;
        }
        ok = v->as.integer >= 0;
    } else if (ok && (v->kind == ALK_ARG_LIST || v->kind == ALK_ARG_TUPLE)) {
        const alk_arg *const *items = v->as.seq.items;
        size_t n = v->as.seq.len;
        bool one_pair =
            rank == 1 && n == 2 && items[0]->kind == ALK_ARG_INT && items[1]->kind == ALK_ARG_INT;
        ok = one_pair || n == rank;
        for (size_t d = 0; ok && d < rank; d++) {
            const alk_arg *item = one_pair ? v : items[d];
            if (item->kind == ALK_ARG_INT) {
                pairs[d][0] = pairs[d][1] = (size_t)item->as.integer;
                ok = item->as.integer >= 0;
            } else if ((item->kind == ALK_ARG_LIST || item->kind == ALK_ARG_TUPLE) &&
                       item->as.seq.len == 2 && item->as.seq.items[0]->kind == ALK_ARG_INT &&
                       item->as.seq.items[1]->kind == ALK_ARG_INT &&
                       item->as.seq.items[0]->as.integer >= 0 &&
                       item->as.seq.items[1]->as.integer >= 0) {
                pairs[d][0] = (size_t)item->as.seq.items[0]->as.integer;
                pairs[d][1] = (size_t)item->as.seq.items[1]->as.integer;
            } else {
                ok = false;
            }
        }
    } else {
        ok = false;
    }
    if (!ok && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL,
                    "%s must be a non-negative int or %zu (before, after) pairs of them", key,
                    rank);
    }
    return ok;
}

static bool spatial_input(alk_op *op, const alk_fva *x, size_t rank) {
    if (x != NULL && alk_fva_ndim(x) != rank + 2) {
        alk_op_fail(op, ALK_EINVAL, "its input has %zu axes; a %zu-D layer needs %zu",
                    alk_fva_ndim(x), rank, rank + 2);
        return false;
    }
    return x != NULL;
}

void keras_zero_padding(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    size_t pads[ALK_NN_MAX_RANK][2];
    if (spatial_input(op, x, rank) && read_pairs(op, "padding", rank, pads)) {
        alk_op_out(op, alk_nn_pad_spatial(alk_op_trace(op), x, keras_channels_first(op),
                                          (const size_t(*)[2])pads, ALK_PAD_CONSTANT, 0.0));
    }
}

void keras_cropping(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    size_t crops[ALK_NN_MAX_RANK][2];
    if (spatial_input(op, x, rank) && read_pairs(op, "cropping", rank, crops)) {
        alk_op_out(op, alk_nn_crop_spatial(alk_op_trace(op), x, keras_channels_first(op),
                                           (const size_t(*)[2])crops));
    }
}

void keras_upsampling(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    const char *interpolation = alk_op_str(op, "interpolation", "nearest");
    int64_t size[ALK_NN_MAX_RANK];
    alk_op_ints(op, "size", rank, 2, size);
    if (interpolation != NULL && strcmp(interpolation, "nearest") != 0 && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL,
                    "interpolation '%s' is not supported: only 'nearest' repeats values exactly",
                    interpolation);
    }
    size_t scale[ALK_NN_MAX_RANK];
    for (size_t d = 0; d < rank; d++) {
        scale[d] = size[d] > 0 ? (size_t)size[d] : 0;
    }
    if (spatial_input(op, x, rank) && !alk_op_failed(op)) {
        alk_op_out(op,
                   alk_nn_upsample_nearest(alk_op_trace(op), x, keras_channels_first(op), scale));
    }
}

/* ---- Merges ------------------------------------------------------------------------------------
 */

enum { MAX_MERGE_INPUTS = 64 };

/* numpy's broadcast shape of `arrays` into shape/ndim; false (op failed) when incompatible. */
static bool broadcast_shape(alk_op *op, alk_fva *const *arrays, size_t n, size_t *shape,
                            size_t *ret_ndim) {
    size_t ndim = 0;
    for (size_t i = 0; i < n; i++) {
        ndim = alk_fva_ndim(arrays[i]) > ndim ? alk_fva_ndim(arrays[i]) : ndim;
    }
    for (size_t d = 0; d < ndim; d++) {
        shape[d] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t off = ndim - alk_fva_ndim(arrays[i]);
        for (size_t d = 0; d < alk_fva_ndim(arrays[i]); d++) {
            size_t s = alk_fva_shape(arrays[i])[d];
            if (s != 1 && shape[off + d] != 1 && shape[off + d] != s) {
                alk_op_fail(op, ALK_EINVAL, "input %zu does not broadcast with the others", i);
                return false;
            }
            shape[off + d] = s != 1 ? s : shape[off + d];
        }
    }
    *ret_ndim = ndim;
    return true;
}

/* Add, Subtract, Multiply, Maximum, Minimum, Average: the inputs broadcast to one shape,
 * stacked, then reduced over the stack (the reference's np.stack + np.sum & co.); Subtract
 * takes exactly two. */
void keras_merge(alk_op *op, const void *kind_arg) {
    static const alk_reduce_op reduce[] = {
        [KERAS_MERGE_ADD] = ALK_REDUCE_SUM,      [KERAS_MERGE_MULTIPLY] = ALK_REDUCE_PROD,
        [KERAS_MERGE_MAXIMUM] = ALK_REDUCE_MAX,  [KERAS_MERGE_MINIMUM] = ALK_REDUCE_MIN,
        [KERAS_MERGE_AVERAGE] = ALK_REDUCE_MEAN,
    };
    keras_merge_kind kind = *(const keras_merge_kind *)kind_arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *xs[MAX_MERGE_INPUTS];
    size_t n = alk_op_in_list(op, 0, xs, MAX_MERGE_INPUTS);
    if (n == 0 || alk_op_failed(op)) {
        return;
    }
    if (n > MAX_MERGE_INPUTS) {
        alk_op_fail(op, ALK_ELIMIT, "%zu inputs; at most %d", n, MAX_MERGE_INPUTS);
        return;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    size_t ndim;
    if (!broadcast_shape(op, xs, n, shape, &ndim)) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        xs[i] = alk_fva_broadcast_to(t, xs[i], ndim, shape);
    }
    if (kind == KERAS_MERGE_SUBTRACT) {
        if (n != 2) {
            alk_op_fail(op, ALK_EINVAL, "Subtract takes exactly 2 inputs, got %zu", n);
            return;
        }
        alk_op_out(op, alk_fva_binary(t, ALK_SUB, xs[0], xs[1]));
        return;
    }
    int axis = 0;
    alk_op_out(op, alk_fva_reduce(t, reduce[kind], alk_fva_stack(t, xs, n, 0), &axis, 1, false));
}

void keras_concatenate_layer(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *xs[MAX_MERGE_INPUTS];
    size_t n = alk_op_in_list(op, 0, xs, MAX_MERGE_INPUTS);
    int64_t axis = alk_op_int(op, "axis", -1);
    if (n > MAX_MERGE_INPUTS) {
        alk_op_fail(op, ALK_ELIMIT, "%zu inputs; at most %d", n, MAX_MERGE_INPUTS);
    }
    if (n > 0 && !alk_op_failed(op)) {
        alk_op_out(op, alk_fva_concatenate(alk_op_trace(op), xs, n, (int)axis));
    }
}

/* Dot(axes): Keras's batch_dot as the reference spells it with an einsum (alk_nn_dot). */
void keras_dot_layer(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *xs[2];
    size_t n = alk_op_in_list(op, 0, xs, 2);
    int64_t axes[2];
    size_t n_axes = alk_op_int_list(op, "axes", axes, 2);
    if (alk_op_failed(op)) {
        return;
    }
    if (n != 2 || n_axes == SIZE_MAX) {
        alk_op_fail(op, ALK_EINVAL, "Dot takes 2 inputs and axes");
        return;
    }
    if (alk_op_bool(op, "normalize", false)) {
        alk_op_fail(op, ALK_EINVAL,
                    "normalize=True (cosine proximity) is not supported: it divides by the "
                    "inputs' L2 norms, which has no exact fixed-point form");
        return;
    }
    if (n_axes == 1) {
        axes[1] = axes[0];
    }
    alk_op_out(op, alk_nn_dot(alk_op_trace(op), xs[0], xs[1], axes[0], axes[1]));
}
