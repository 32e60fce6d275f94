/*
 * Joining, splitting and indexing torch tensors and Python sequences (spec frontends.md §4.4):
 * torch.cat/concat/concatenate/stack, torch.split/chunk (torch's chunk sizes, not numpy's
 * array_split of the reference), operator.getitem on tensors (numpy's basic indexing: ints,
 * slices whose bounds may come from other nodes, None, ...), tuples, lists and dicts.
 *
 * Views only: no hardware.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include <inttypes.h>
#include <string.h>

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
    int64_t chunks = torch_required_int(op, "chunks");
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

static void index_array(alk_op *op, alk_fva *x, const alk_arg *key) {
    /* A list key is fancy indexing in torch: one item, which alk_op_index refuses. */
    bool tuple = key->kind == ALK_ARG_TUPLE;
    alk_op_index(op, x, tuple ? key->as.seq.items : &key, tuple ? key->as.seq.len : 1);
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
    int64_t bounds[3];
    if (!alk_op_slice_bounds(op, key, bounds)) {
        return;
    }
    int64_t start = bounds[0], stop = bounds[1];
    int64_t step = bounds[2] == ALK_FV_NONE ? 1 : bounds[2];
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
