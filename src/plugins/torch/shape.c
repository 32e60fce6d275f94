/*
 * Structural torch operations (spec frontends.md §4.3-§4.5): reshapes, permutations, squeezes,
 * broadcasts, tiling, sizes and attributes.
 *
 * Nothing here creates hardware: every result is a view of its input's variables
 * (trace-alir.md §2.12). Shapes follow torch where it differs from the numpy calls the reference
 * makes, so that a shape-dependent step later in the model (a flatten, a broadcast) sees what
 * torch sees: `x.T` reverses every axis, `squeeze(d)` of an axis longer than 1 is a no-op,
 * `expand` aligns sizes from the right.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include <inttypes.h>
#include <string.h>

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
        !torch_axis(op, "dim", torch_required_int(op, "dim"), alk_fva_ndim(x), &axis)) {
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
    int64_t dim0 = torch_required_int(op, "dim0"), dim1 = torch_required_int(op, "dim1");
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
    alk_op_moveaxis(op, alk_op_in(op, 0));
}

/* ---- Adding and removing axes -------------------------------------------------------------- */

/* torch.unsqueeze(x, dim), x.unsqueeze(dim). */
void torch_unsqueeze(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dim = torch_required_int(op, "dim");
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

/* ---- Attributes ---------------------------------------------------------------------------- */

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
