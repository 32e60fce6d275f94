/*
 * Structural torch operations (spec frontends.md §4.3-§4.5): reshapes, permutations, squeezes,
 * broadcasts, tiling, joins and splits, indexing, attributes, constants and dtype casts.
 *
 * Except for integer casts, nothing here creates hardware: every result is a view of its
 * input's variables (trace-alir.md §2.12). Shapes follow torch where it differs from the numpy
 * calls the reference makes, so that a shape-dependent step later in the model (a flatten, a
 * broadcast) sees what torch sees: `x.T` reverses every axis, `squeeze(d)` of an axis longer
 * than 1 is a no-op, `expand` aligns sizes from the right, `chunk` uses torch's sizes.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Parameter `key` as an int that must be given (by position, keyword or module attribute). */
static int64_t required_int(alk_op *op, const char *key) {
    if (!alk_op_has(op, key) && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "%s: missing (expected an int)", key);
    }
    return alk_op_int(op, key, 0);
}

void torch_identity(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_out(op, alk_op_in(op, 0));
}

/* Dropout in any form: identity in eval mode. `arg` points to the `training` default of the
 * row (torch's F.dropout defaults to True, F.alpha_dropout to False; modules say it as an
 * attribute). */
void torch_dropout(alk_op *op, const void *arg) {
    if (alk_op_bool(op, "training", *(const bool *)arg)) {
        alk_op_fail(op, ALK_ENOTSUP,
                    "dropout in training mode is not supported (training=True; call .eval() on "
                    "the model, or pass training=False)");
        return;
    }
    alk_op_out(op, alk_op_in(op, 0));
}

/* ---- Reshapes ------------------------------------------------------------------------------- */

/* x.view(*shape), x.reshape(*shape), torch.reshape(x, shape). */
void torch_reshape_op(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t shape[ALK_FVA_MAX_DIM];
    size_t n = torch_sizes(op, 1, "shape", shape);
    alk_op_out(op, torch_reshape(op, x, n, shape));
}

/* torch.flatten, x.flatten, nn.Flatten (whose attributes say start_dim=1). */
void torch_flatten(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t start_dim = alk_op_int(op, "start_dim", 0), end_dim = alk_op_int(op, "end_dim", -1);
    if (x == NULL) {
        return;
    }
    size_t ndim = alk_fva_ndim(x), start, end;
    if (!torch_axis(op, "start_dim", start_dim, ndim, &start) ||
        !torch_axis(op, "end_dim", end_dim, ndim, &end)) {
        return;
    }
    if (start > end) {
        alk_op_fail(op, ALK_EINVAL, "start_dim %" PRId64 " comes after end_dim %" PRId64, start_dim,
                    end_dim);
        return;
    }
    const size_t *shape = alk_fva_shape(x);
    int64_t out[ALK_FVA_MAX_DIM];
    size_t n = 0;
    for (size_t d = 0; d < start; d++) {
        out[n++] = (int64_t)shape[d];
    }
    out[n++] = -1;
    for (size_t d = end + 1; d < ndim; d++) {
        out[n++] = (int64_t)shape[d];
    }
    alk_op_out(op, torch_reshape(op, x, n, out));
}

/* nn.Unflatten(dim, unflattened_size). */
void torch_unflatten(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t sizes[ALK_FVA_MAX_DIM];
    size_t n_sizes = alk_op_int_list(op, "unflattened_size", sizes, ALK_FVA_MAX_DIM);
    size_t axis;
    if (x == NULL || n_sizes == SIZE_MAX ||
        !torch_axis(op, "dim", required_int(op, "dim"), alk_fva_ndim(x), &axis)) {
        if (n_sizes == SIZE_MAX && !alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "unflattened_size: missing");
        }
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    if (ndim - 1 + n_sizes > ALK_FVA_MAX_DIM) {
        alk_op_fail(op, ALK_EINVAL, "the result would have more than %d axes", ALK_FVA_MAX_DIM);
        return;
    }
    int64_t out[ALK_FVA_MAX_DIM];
    size_t n = 0;
    for (size_t d = 0; d < ndim; d++) {
        if (d != axis) {
            out[n++] = (int64_t)alk_fva_shape(x)[d];
            continue;
        }
        for (size_t j = 0; j < n_sizes; j++) {
            out[n++] = sizes[j];
        }
    }
    alk_op_out(op, torch_reshape(op, x, n, out));
}

/* ---- Axis orders ---------------------------------------------------------------------------- */

static void transpose_by(alk_op *op, alk_fva *x, const int *perm) {
    alk_op_out(op, x != NULL ? alk_fva_transpose(alk_op_trace(op), x, perm) : NULL);
}

/* torch.permute(x, dims), x.permute(*dims). */
void torch_permute(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dims[ALK_FVA_MAX_DIM];
    size_t n = torch_sizes(op, 1, "dims", dims);
    if (x == NULL || n == SIZE_MAX) {
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    if (n != ndim) {
        alk_op_fail(op, ALK_EINVAL, "dims has %zu entries for a %zu-D tensor", n, ndim);
        return;
    }
    int perm[ALK_FVA_MAX_DIM];
    bool seen[ALK_FVA_MAX_DIM] = {false};
    for (size_t d = 0; d < n; d++) {
        size_t axis;
        if (!torch_axis(op, "dims", dims[d], ndim, &axis)) {
            return;
        }
        if (seen[axis]) {
            alk_op_fail(op, ALK_EINVAL, "dims repeats axis %zu", axis);
            return;
        }
        seen[axis] = true;
        perm[d] = (int)axis;
    }
    transpose_by(op, x, perm);
}

/* The identity permutation of `ndim` axes with a and b swapped. */
static void swapped(size_t ndim, size_t a, size_t b, int *perm) {
    for (size_t d = 0; d < ndim; d++) {
        perm[d] = (int)d;
    }
    perm[a] = (int)b;
    perm[b] = (int)a;
}

/* torch.transpose(x, dim0, dim1), x.transpose(dim0, dim1). */
void torch_transpose(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dim0 = required_int(op, "dim0"), dim1 = required_int(op, "dim1");
    size_t a, b;
    if (x == NULL || !torch_axis(op, "dim0", dim0, alk_fva_ndim(x), &a) ||
        !torch_axis(op, "dim1", dim1, alk_fva_ndim(x), &b)) {
        return;
    }
    int perm[ALK_FVA_MAX_DIM];
    swapped(alk_fva_ndim(x), a, b, perm);
    transpose_by(op, x, perm);
}

/* x.t(): a transpose of a tensor of at most 2 axes. */
void torch_t(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    if (x != NULL && alk_fva_ndim(x) > 2) {
        alk_op_fail(op, ALK_EINVAL, "t() needs a tensor of at most 2 dimensions, got %zu-D",
                    alk_fva_ndim(x));
        return;
    }
    transpose_by(op, x, NULL);
}

/* torch.moveaxis/movedim(x, source, destination), ints or sequences of ints (numpy's rule). */
void torch_moveaxis(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t src[ALK_FVA_MAX_DIM], dst[ALK_FVA_MAX_DIM];
    size_t n_src = alk_op_int_list(op, "source", src, ALK_FVA_MAX_DIM);
    size_t n_dst = alk_op_int_list(op, "destination", dst, ALK_FVA_MAX_DIM);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (n_src == SIZE_MAX || n_src != n_dst) {
        alk_op_fail(op, ALK_EINVAL, "source and destination must have the same number of axes");
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    size_t s[ALK_FVA_MAX_DIM], d[ALK_FVA_MAX_DIM];
    bool moved[ALK_FVA_MAX_DIM] = {false};
    for (size_t j = 0; j < n_src; j++) {
        if (!torch_axis(op, "source", src[j], ndim, &s[j]) ||
            !torch_axis(op, "destination", dst[j], ndim, &d[j])) {
            return;
        }
        moved[s[j]] = true;
    }
    /* The axes that stay, in order, with each moved axis placed at its destination. */
    int perm[ALK_FVA_MAX_DIM];
    bool taken[ALK_FVA_MAX_DIM] = {false};
    for (size_t j = 0; j < n_src; j++) {
        if (taken[d[j]]) {
            alk_op_fail(op, ALK_EINVAL, "destination repeats axis %zu", d[j]);
            return;
        }
        taken[d[j]] = true;
        perm[d[j]] = (int)s[j];
    }
    size_t next = 0;
    for (size_t k = 0; k < ndim; k++) {
        if (taken[k]) {
            continue;
        }
        while (moved[next]) {
            next++;
        }
        perm[k] = (int)next++;
    }
    transpose_by(op, x, perm);
}

/* ---- Adding and removing axes -------------------------------------------------------------- */

/* torch.unsqueeze(x, dim), x.unsqueeze(dim). */
void torch_unsqueeze(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dim = required_int(op, "dim");
    size_t axis;
    if (x == NULL || !torch_axis(op, "dim", dim, alk_fva_ndim(x) + 1, &axis)) {
        return;
    }
    int64_t out[ALK_FVA_MAX_DIM + 1];
    size_t n = 0;
    for (size_t d = 0; d <= alk_fva_ndim(x); d++) {
        if (d == axis) {
            out[n++] = 1;
        }
        if (d < alk_fva_ndim(x)) {
            out[n++] = (int64_t)alk_fva_shape(x)[d];
        }
    }
    alk_op_out(op, torch_reshape(op, x, n, out));
}

/* torch.squeeze(x, dim=None), x.squeeze([dim]): without dim every axis of size 1 goes; with
 * dims only those of size 1 (torch leaves a longer axis alone, where numpy fails). */
void torch_squeeze(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    if (x == NULL) {
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    int axes[ALK_FVA_MAX_DIM];
    bool all;
    size_t n_axes = torch_axes(op, "dim", ndim, axes, &all);
    bool drop[ALK_FVA_MAX_DIM] = {false};
    for (size_t j = 0; j < n_axes; j++) {
        drop[axes[j]] = true;
    }
    int64_t out[ALK_FVA_MAX_DIM];
    size_t n = 0;
    for (size_t d = 0; d < ndim; d++) {
        size_t size = alk_fva_shape(x)[d];
        if (size != 1 || !(all || drop[d])) {
            out[n++] = (int64_t)size;
        }
    }
    alk_op_out(op, torch_reshape(op, x, n, out));
}

/* ---- Broadcasts and repetitions ------------------------------------------------------------- */

static void broadcast(alk_op *op, alk_fva *x, size_t n, const size_t *shape) {
    alk_op_out(op, x != NULL ? alk_fva_broadcast_to(alk_op_trace(op), x, n, shape) : NULL);
}

/* x.expand(*sizes): sizes align with x's axes from the right; -1 keeps an axis. */
void torch_expand(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t sizes[ALK_FVA_MAX_DIM];
    size_t n = torch_sizes(op, 1, "sizes", sizes);
    if (x == NULL || n == SIZE_MAX) {
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    if (n < ndim) {
        alk_op_fail(op, ALK_EINVAL, "%zu sizes for a %zu-D tensor", n, ndim);
        return;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < n; d++) {
        bool existing = d >= n - ndim;
        if (sizes[d] == -1 && existing) {
            shape[d] = alk_fva_shape(x)[d - (n - ndim)];
        } else if (sizes[d] < 0) {
            alk_op_fail(op, ALK_EINVAL, "size %" PRId64 " of a new leading axis", sizes[d]);
            return;
        } else {
            shape[d] = (size_t)sizes[d];
        }
    }
    broadcast(op, x, n, shape);
}

/* x.expand_as(other). */
void torch_expand_as(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0), *other = alk_op_in(op, 1);
    if (other != NULL) {
        broadcast(op, x, alk_fva_ndim(other), alk_fva_shape(other));
    }
}

/* torch.tile(x, dims) and x.repeat(*sizes): each axis repeated as a whole, numpy's tile. It is
 * a broadcast of x with a new axis before each of its axes, merged: free of hardware. */
void torch_tile(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t reps[ALK_FVA_MAX_DIM];
    size_t n_reps = torch_sizes(op, 1, "dims", reps);
    if (x == NULL || n_reps == SIZE_MAX) {
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    size_t d = ndim > n_reps ? ndim : n_reps;
    if (2 * d > ALK_FVA_MAX_DIM) {
        alk_op_fail(op, ALK_EINVAL, "tiling a %zu-D tensor is not supported (at most %d axes)", d,
                    ALK_FVA_MAX_DIM / 2);
        return;
    }
    int64_t pairs[ALK_FVA_MAX_DIM], merged[ALK_FVA_MAX_DIM];
    size_t wide[ALK_FVA_MAX_DIM];
    for (size_t j = 0; j < d; j++) {
        int64_t size = j < d - ndim ? 1 : (int64_t)alk_fva_shape(x)[j - (d - ndim)];
        int64_t rep = j < d - n_reps ? 1 : reps[j - (d - n_reps)];
        if (rep < 0) {
            alk_op_fail(op, ALK_EINVAL, "repetition %" PRId64 " is negative", rep);
            return;
        }
        pairs[2 * j] = 1;
        pairs[2 * j + 1] = size;
        wide[2 * j] = (size_t)rep;
        wide[2 * j + 1] = (size_t)size;
        merged[j] = rep * size;
    }
    alk_trace *t = alk_op_trace(op);
    alk_fva *spread = torch_reshape(op, x, 2 * d, pairs);
    alk_fva *tiled = spread != NULL ? alk_fva_broadcast_to(t, spread, 2 * d, wide) : NULL;
    alk_op_out(op, torch_reshape(op, tiled, d, merged));
}

/* torch.repeat_interleave(x, repeats, dim=None): each element repeated; without dim, of the
 * flattened tensor. */
void torch_repeat_interleave(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    const alk_arg *repeats = alk_op_get(op, "repeats");
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (repeats == NULL || repeats->kind != ALK_ARG_INT || repeats->as.integer < 0) {
        alk_op_fail(op, ALK_ENOTSUP,
                    "repeats must be a non-negative int (tensor repeats are "
                    "not supported)");
        return;
    }
    alk_trace *t = alk_op_trace(op);
    size_t axis = 0;
    if (!alk_op_has(op, "dim")) {
        x = alk_fva_ravel(t, x);
    } else if (!torch_axis(op, "dim", alk_op_int(op, "dim", 0), alk_fva_ndim(x), &axis)) {
        return;
    }
    alk_op_out(op, alk_fva_repeat(t, x, (size_t)repeats->as.integer, (int)axis));
}

/* ---- Sizes ---------------------------------------------------------------------------------- */

static const alk_arg *shape_tuple(alk_op *op, const alk_fva *x) {
    const alk_arg *items[ALK_FVA_MAX_DIM];
    size_t ndim = alk_fva_ndim(x);
    for (size_t d = 0; d < ndim; d++) {
        items[d] = alk_arg_of_int(op, (int64_t)alk_fva_shape(x)[d]);
    }
    return alk_arg_of_seq(op, ALK_ARG_TUPLE, items, ndim);
}

/* x.size() -> the shape (a tuple); x.size(dim) -> one int. */
void torch_size(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    if (x == NULL) {
        return;
    }
    if (!alk_op_has(op, "dim")) {
        alk_op_return(op, shape_tuple(op, x));
        return;
    }
    size_t axis;
    if (torch_axis(op, "dim", alk_op_int(op, "dim", 0), alk_fva_ndim(x), &axis)) {
        alk_op_return(op, alk_arg_of_int(op, (int64_t)alk_fva_shape(x)[axis]));
    }
}

/* ---- Joining and splitting ------------------------------------------------------------------ */

enum { MAX_PIECES = 1024 };

/* torch.cat/concat(tensors, dim), torch.concatenate(tensors, axis); `arg` true: stack. */
static void join(alk_op *op, bool stack) {
    alk_fva *arrays[MAX_PIECES];
    size_t n = alk_op_in_list(op, 0, arrays, MAX_PIECES);
    if (n > MAX_PIECES) {
        alk_op_fail(op, ALK_EINVAL, "%zu tensors (at most %d)", n, MAX_PIECES);
        return;
    }
    /* torch.concatenate spells the axis `axis`; the others `dim`. */
    int64_t dim = alk_op_has(op, "axis") ? alk_op_int(op, "axis", 0) : alk_op_int(op, "dim", 0);
    if (n == 0 || alk_op_failed(op)) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "needs at least one tensor");
        }
        return;
    }
    size_t axis;
    if (!torch_axis(op, "dim", dim, alk_fva_ndim(arrays[0]) + (stack ? 1 : 0), &axis)) {
        return;
    }
    alk_trace *t = alk_op_trace(op);
    alk_op_out(op, stack ? alk_fva_stack(t, arrays, n, (int)axis)
                         : alk_fva_concatenate(t, arrays, n, (int)axis));
}

void torch_cat(alk_op *op, const void *arg) {
    (void)arg;
    join(op, false);
}

void torch_stack(alk_op *op, const void *arg) {
    (void)arg;
    join(op, true);
}

/* x split along `axis` at the boundaries of `sizes` (n pieces): a tuple of views. */
static void split_into(alk_op *op, alk_fva *x, size_t axis, const size_t *sizes, size_t n) {
    const alk_arg *pieces[MAX_PIECES];
    alk_index index[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < alk_fva_ndim(x); d++) {
        index[d] = ALK_ALL;
    }
    size_t start = 0;
    for (size_t j = 0; j < n; j++) {
        index[axis] = ALK_SLICE((int64_t)start, (int64_t)(start + sizes[j]), 1);
        start += sizes[j];
        pieces[j] =
            alk_arg_of_array(op, alk_fva_index(alk_op_trace(op), x, index, alk_fva_ndim(x)));
    }
    alk_op_return(op, alk_arg_of_seq(op, ALK_ARG_TUPLE, pieces, n));
}

/* The axis of a split or chunk and its length; false after an error. */
static bool split_axis(alk_op *op, alk_fva *x, size_t *ret_axis, size_t *ret_len) {
    if (x == NULL || !torch_axis(op, "dim", alk_op_int(op, "dim", 0), alk_fva_ndim(x), ret_axis)) {
        return false;
    }
    if (alk_fva_ndim(x) == 0) {
        alk_op_fail(op, ALK_EINVAL, "cannot split a 0-d tensor");
        return false;
    }
    *ret_len = alk_fva_shape(x)[*ret_axis];
    return true;
}

/* torch.split(x, split_size_or_sections, dim=0): pieces of one size (the last shorter), or of
 * the given sizes, which must add up to the axis length. */
void torch_split(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    const alk_arg *how = alk_op_get(op, "split_size_or_sections");
    size_t axis, len;
    if (!split_axis(op, x, &axis, &len)) {
        return;
    }
    size_t sizes[MAX_PIECES], n = 0;
    if (how != NULL && how->kind == ALK_ARG_INT && how->as.integer > 0) {
        size_t size = (size_t)how->as.integer;
        for (size_t start = 0; start < len || n == 0; start += size) {
            if (n == MAX_PIECES) {
                alk_op_fail(op, ALK_EINVAL, "more than %d pieces", MAX_PIECES);
                return;
            }
            sizes[n++] = len - start < size ? len - start : size;
        }
    } else {
        int64_t sections[MAX_PIECES];
        size_t n_sections = alk_op_int_list(op, "split_size_or_sections", sections, MAX_PIECES);
        int64_t total = 0;
        for (size_t j = 0; j < n_sections && n_sections != SIZE_MAX; j++) {
            if (sections[j] < 0) {
                break;
            }
            sizes[n++] = (size_t)sections[j];
            total += sections[j];
        }
        if (alk_op_failed(op)) {
            return;
        }
        if (n_sections == SIZE_MAX || n != n_sections || total != (int64_t)len) {
            alk_op_fail(op, ALK_EINVAL,
                        "split_size_or_sections must be a positive int or non-negative sizes "
                        "adding up to %zu",
                        len);
            return;
        }
    }
    split_into(op, x, axis, sizes, n);
}

/* torch.chunk(x, chunks, dim=0): torch's rule, not numpy's array_split: pieces of
 * ceil(len / chunks), the last one shorter, and fewer than `chunks` of them when the length
 * does not fill them (6 in 4 chunks: 2, 2, 2). */
void torch_chunk(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t chunks = required_int(op, "chunks");
    size_t axis, len;
    if (!split_axis(op, x, &axis, &len)) {
        return;
    }
    if (chunks <= 0 || chunks > MAX_PIECES) {
        alk_op_fail(op, ALK_EINVAL, "chunks must be between 1 and %d, got %" PRId64, MAX_PIECES,
                    chunks);
        return;
    }
    size_t size = (len + (size_t)chunks - 1) / (size_t)chunks;
    size_t sizes[MAX_PIECES], n = 0;
    if (size == 0) {
        /* An empty axis gives `chunks` empty pieces. */
        for (; n < (size_t)chunks; n++) {
            sizes[n] = 0;
        }
    }
    for (size_t start = 0; start < len; start += size) {
        sizes[n++] = len - start < size ? len - start : size;
    }
    split_into(op, x, axis, sizes, n);
}

/* ---- Indexing ------------------------------------------------------------------------------- */

/* A slice bound: an int, or None (omitted). */
static bool slice_bound(alk_op *op, const alk_arg *bound, int64_t *ret) {
    if (bound->kind == ALK_ARG_NONE) {
        *ret = ALK_FV_NONE;
        return true;
    }
    if (bound->kind == ALK_ARG_INT && bound->as.integer > INT32_MIN &&
        bound->as.integer <= INT32_MAX) {
        *ret = bound->as.integer;
        return true;
    }
    alk_op_fail(op, ALK_EINVAL, "a slice bound must be an int or None, got %s",
                alk_arg_kind_name(bound->kind));
    return false;
}

/* One item of an index expression (numpy's basic indexing). */
static bool index_item(alk_op *op, const alk_arg *key, alk_index *ret) {
    switch (key->kind) {
    case ALK_ARG_INT:
        *ret = ALK_AT(key->as.integer);
        return true;
    case ALK_ARG_NONE:
        *ret = ALK_NEWAXIS;
        return true;
    case ALK_ARG_ELLIPSIS:
        *ret = ALK_ELLIPSIS;
        return true;
    case ALK_ARG_SLICE: {
        int64_t start, stop, step;
        if (!slice_bound(op, key->as.slice.start, &start) ||
            !slice_bound(op, key->as.slice.stop, &stop) ||
            !slice_bound(op, key->as.slice.step, &step)) {
            return false;
        }
        if (step == 0) {
            alk_op_fail(op, ALK_EINVAL, "slice step cannot be zero");
            return false;
        }
        *ret = ALK_SLICE(start, stop, step);
        return true;
    }
    default:
        alk_op_fail(op, ALK_ENOTSUP,
                    "indexing with a %s is not supported (ints, slices, None and ... are)",
                    alk_arg_kind_name(key->kind));
        return false;
    }
}

static void index_array(alk_op *op, alk_fva *x, const alk_arg *key) {
    enum { MAX_ITEMS = 2 * ALK_FVA_MAX_DIM };
    alk_index index[MAX_ITEMS];
    bool tuple = key->kind == ALK_ARG_TUPLE;
    size_t n = tuple ? key->as.seq.len : 1;
    if (n > MAX_ITEMS) {
        alk_op_fail(op, ALK_EINVAL, "an index of %zu items (at most %d)", n, MAX_ITEMS);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        if (!index_item(op, tuple ? key->as.seq.items[j] : key, &index[j])) {
            return;
        }
    }
    alk_op_out(op, alk_fva_index(alk_op_trace(op), x, index, n));
}

/* Python's indexing of a tuple or list (a split's pieces, a shape): an item or a slice. */
static void index_sequence(alk_op *op, const alk_arg *seq, const alk_arg *key) {
    int64_t len = (int64_t)seq->as.seq.len;
    if (key->kind == ALK_ARG_INT) {
        int64_t i = key->as.integer < 0 ? key->as.integer + len : key->as.integer;
        if (i < 0 || i >= len) {
            alk_op_fail(op, ALK_EINVAL, "%s index %" PRId64 " is out of range (length %" PRId64 ")",
                        alk_arg_kind_name(seq->kind), key->as.integer, len);
            return;
        }
        alk_op_return(op, seq->as.seq.items[i]);
        return;
    }
    if (key->kind != ALK_ARG_SLICE) {
        alk_op_fail(op, ALK_EINVAL, "%s indices must be ints or slices, not %s",
                    alk_arg_kind_name(seq->kind), alk_arg_kind_name(key->kind));
        return;
    }
    int64_t start, stop, step;
    if (!slice_bound(op, key->as.slice.start, &start) ||
        !slice_bound(op, key->as.slice.stop, &stop) ||
        !slice_bound(op, key->as.slice.step, &step)) {
        return;
    }
    step = step == ALK_FV_NONE ? 1 : step;
    if (step == 0) {
        alk_op_fail(op, ALK_EINVAL, "slice step cannot be zero");
        return;
    }
    /* Python's slice.indices(). */
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? len - 1 : len;
    int64_t first = start == ALK_FV_NONE ? (step < 0 ? hi : lo)
                    : start < 0          ? (start + len < lo ? lo : start + len)
                                         : (start > hi ? hi : start);
    int64_t last = stop == ALK_FV_NONE ? (step < 0 ? lo : hi)
                   : stop < 0          ? (stop + len < lo ? lo : stop + len)
                                       : (stop > hi ? hi : stop);
    const alk_arg *items[MAX_PIECES];
    size_t n = 0;
    for (int64_t i = first; (step > 0 ? i < last : i > last) && n < MAX_PIECES; i += step) {
        items[n++] = seq->as.seq.items[i];
    }
    alk_op_return(op, alk_arg_of_seq(op, seq->kind, items, n));
}

/* operator.getitem(obj, key): x[key] on a tensor (ints, slices whose bounds may come from other
 * nodes, None, ...), or indexing a tuple or list, or a dict by key. */
void torch_getitem(alk_op *op, const void *arg) {
    (void)arg;
    const alk_arg *obj = alk_op_arg(op, 0), *key = alk_op_arg(op, 1);
    if (obj == NULL || key == NULL) {
        alk_op_fail(op, ALK_EINVAL, "needs an object and a key");
        return;
    }
    switch (obj->kind) {
    case ALK_ARG_ARRAY:
        index_array(op, obj->as.array, key);
        return;
    case ALK_ARG_TUPLE:
    case ALK_ARG_LIST:
        index_sequence(op, obj, key);
        return;
    case ALK_ARG_DICT:
        for (size_t j = 0; key->kind == ALK_ARG_STR && j < obj->as.seq.len; j += 2) {
            if (strcmp(obj->as.seq.items[j]->as.str, key->as.str) == 0) {
                alk_op_return(op, obj->as.seq.items[j + 1]);
                return;
            }
        }
        alk_op_fail(op, ALK_EINVAL, "the dict has no such key");
        return;
    default:
        alk_op_fail(op, ALK_EINVAL, "a %s cannot be indexed", alk_arg_kind_name(obj->kind));
    }
}

/* The reference's messages for the attributes it refuses (§6.2 "must fail"). */
static void refuse_attribute(alk_op *op, const char *name) {
    if (strcmp(name, "indices") == 0) {
        alk_op_fail(op, ALK_ENOTSUP,
                    "accessing .indices of a torch reduction/sort is not supported");
    } else {
        alk_op_fail(op, ALK_EINVAL, "unsupported getattr for replay: '%s'", name);
    }
}

/* builtins.getattr(obj, name): x.T, x.mT, x.shape, x.ndim; `.values` of a max/min/sort
 * result. */
void torch_getattr(alk_op *op, const void *arg) {
    (void)arg;
    const alk_arg *obj = alk_op_arg(op, 0);
    const char *name = alk_op_str(op, "name", NULL);
    if (obj == NULL || name == NULL) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "needs an object and an attribute name");
        }
        return;
    }
    if (obj->kind == ALK_ARG_TUPLE && strcmp(name, "values") == 0 && obj->as.seq.len == 2) {
        /* torch.max(x, dim) & co. are (values, indices) pairs. */
        alk_op_return(op, obj->as.seq.items[0]);
        return;
    }
    if (obj->kind != ALK_ARG_ARRAY) {
        refuse_attribute(op, name);
        return;
    }
    alk_fva *x = obj->as.array;
    size_t ndim = alk_fva_ndim(x);
    if (strcmp(name, "T") == 0) {
        transpose_by(op, x, NULL); /* torch reverses every axis */
    } else if (strcmp(name, "mT") == 0 && ndim >= 2) {
        int perm[ALK_FVA_MAX_DIM];
        swapped(ndim, ndim - 2, ndim - 1, perm);
        transpose_by(op, x, perm);
    } else if (strcmp(name, "shape") == 0) {
        alk_op_return(op, shape_tuple(op, x));
    } else if (strcmp(name, "ndim") == 0) {
        alk_op_return(op, alk_arg_of_int(op, (int64_t)ndim));
    } else if (strcmp(name, "values") == 0) {
        alk_op_out(op, x);
    } else {
        refuse_attribute(op, name);
    }
}

/* ---- Constants and dtypes ------------------------------------------------------------------- */

/* An integer dtype's format (k, i): sign bit and integer bits. */
static bool integer_dtype(const char *dtype, int *ret_k, int *ret_i) {
    static const struct {
        const char *name;
        int k, i;
    } types[] = {
        {"uint8", 0, 8},   {"int8", 1, 7},   {"uint16", 0, 16}, {"int16", 1, 15},
        {"uint32", 0, 32}, {"int32", 1, 31}, {"uint64", 0, 64}, {"int64", 1, 63},
    };
    for (size_t j = 0; j < sizeof(types) / sizeof(types[0]); j++) {
        if (strcmp(dtype, types[j].name) == 0) {
            *ret_k = types[j].k;
            *ret_i = types[j].i;
            return true;
        }
    }
    return false;
}

static bool float_dtype(const char *dtype) {
    return strcmp(dtype, "float32") == 0 || strcmp(dtype, "float64") == 0 ||
           strcmp(dtype, "float16") == 0 || strcmp(dtype, "bfloat16") == 0;
}

/* x cast to `dtype` as the reference's Tensor.to does: bool -> x != 0; an integer type ->
 * truncated toward zero, then wrapped into the type; a float type -> unchanged. */
static alk_fva *cast(alk_op *op, alk_fva *x, const char *dtype) {
    alk_trace *t = alk_op_trace(op);
    int k, i;
    if (x == NULL || float_dtype(dtype)) {
        return x;
    }
    x = torch_plain(op, x); /* a cast compares: it needs the values */
    if (strcmp(dtype, "bool") == 0) {
        return alk_fva_binary_scalar(t, ALK_NOT_EQUAL, x, 0);
    }
    if (!integer_dtype(dtype, &k, &i)) {
        alk_op_fail(op, ALK_ENOTSUP, "dtype %s is not supported", dtype);
        return NULL;
    }
    alk_fva *toward_zero =
        alk_fva_where(t, alk_fva_binary_scalar(t, ALK_LESS, x, 0), alk_fva_unary(t, ALK_CEIL, x),
                      alk_fva_unary(t, ALK_FLOOR, x));
    return alk_fva_quantize(t, toward_zero, k, i, 0, ALK_WRAP, ALK_TRN);
}

/* x.to(dtype | device | tensor, ...), and x.int()/x.long() (`arg`: their dtype). The user's
 * model is the truth: .int() and .long() truncate as .to(torch.int32/int64) does, where the
 * reference leaves the values alone. */
void torch_to(alk_op *op, const void *arg) {
    alk_fva *x = alk_op_in(op, 0);
    const char *dtype = arg;
    for (size_t j = 1; dtype == NULL && j < alk_op_n_args(op); j++) {
        const alk_arg *a = alk_op_arg(op, j);
        dtype = a->kind == ALK_ARG_DTYPE ? a->as.str : NULL;
    }
    const alk_arg *kw = alk_op_kwarg(op, "dtype");
    if (dtype == NULL && kw != NULL && kw->kind == ALK_ARG_DTYPE) {
        dtype = kw->as.str;
    }
    alk_op_out(op, dtype != NULL ? cast(op, x, dtype) : x);
}

/* A fill value as a tensor of `dtype` holds it: truncated for integer types, 0/1 for bool,
 * rounded to float32 for float32 (torch's default dtype). */
static double fill_as(alk_op *op, double value, const char *dtype) {
    int k, i;
    if (!isfinite(value)) {
        alk_op_fail(op, ALK_EINVAL, "fill value %g has no fixed-point meaning", value);
        return 0;
    }
    if (dtype == NULL || strcmp(dtype, "float32") == 0) {
        return (double)(float)value;
    }
    if (strcmp(dtype, "float64") == 0) {
        return value;
    }
    if (strcmp(dtype, "bool") == 0) {
        return value != 0;
    }
    if (integer_dtype(dtype, &k, &i)) {
        return trunc(value);
    }
    alk_op_fail(op, ALK_ENOTSUP, "dtype %s is not supported", dtype);
    return 0;
}

static const char *dtype_param(alk_op *op) {
    const alk_arg *dtype = alk_op_get(op, "dtype");
    return dtype != NULL && dtype->kind == ALK_ARG_DTYPE ? dtype->as.str : NULL;
}

/* A numeric constant of `shape` filled with `value` (a broadcast 0-d array). */
static void out_filled(alk_op *op, double value, size_t n, const size_t *shape) {
    alk_trace *t = alk_op_trace(op);
    alk_fva *scalar = alk_op_failed(op) ? NULL : alk_fva_scalar(t, value);
    alk_op_out(op, scalar != NULL ? alk_fva_broadcast_to(t, scalar, n, shape) : NULL);
}

/* The fill value of a row: *arg (zeros, ones), or the `fill_value` argument (full). */
static double fill_value(alk_op *op, const void *arg) {
    double value = 0;
    if (arg != NULL) {
        return *(const double *)arg;
    }
    if (!torch_number_of(alk_op_get(op, "fill_value"), &value) && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "fill_value must be a number");
    }
    return value;
}

/* torch.zeros(*size), torch.ones(*size), torch.full(size, fill_value): plain numbers, not
 * symbolic (the reference's numpy constants). */
void torch_fill(alk_op *op, const void *arg) {
    int64_t sizes[ALK_FVA_MAX_DIM];
    /* zeros/ones take varargs sizes or one sequence; full's size is its first argument. */
    size_t n = arg != NULL ? torch_sizes(op, 0, "size", sizes)
                           : alk_op_int_list(op, "size", sizes, ALK_FVA_MAX_DIM);
    double value = fill_as(op, fill_value(op, arg), dtype_param(op));
    size_t shape[ALK_FVA_MAX_DIM];
    for (size_t d = 0; n != SIZE_MAX && d < n; d++) {
        if (sizes[d] < 0) {
            alk_op_fail(op, ALK_EINVAL, "size %" PRId64 " is negative", sizes[d]);
            return;
        }
        shape[d] = (size_t)sizes[d];
    }
    if (n != SIZE_MAX) {
        out_filled(op, value, n, shape);
    }
}

/* torch.zeros_like(x), ones_like(x), full_like(x, fill_value): constants of x's shape. */
void torch_fill_like(alk_op *op, const void *arg) {
    alk_fva *x = alk_op_in(op, 0);
    double value = fill_as(op, fill_value(op, arg), dtype_param(op));
    if (x != NULL) {
        out_filled(op, value, alk_fva_ndim(x), alk_fva_shape(x));
    }
}
