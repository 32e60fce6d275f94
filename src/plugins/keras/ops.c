/*
 * Handlers of the Keras ops (spec frontends.md §2.2): the keras.src.ops.numpy operations a
 * functional model records (arithmetic, comparisons, reductions, indexing, shapes, contractions,
 * unary functions), the keras.src.ops.nn activations and keras.src.ops.image ExtractPatches.
 * An op's config holds its constructor arguments (axis, keepdims, ...); its call arguments are
 * the tensors and constants it was called with, read by the row's parameter names.
 *
 * Where the reference computes something else than Keras, these compute what Keras computes
 * (README "Differences from the reference"): Mean keeps its axes with keepdims, Max/Min take
 * their `initial`, Gelu's default tanh approximation and Elu's alpha are used, ExtractPatches
 * without strides steps by its size, GetItem keys are always tuples of index items, Negative
 * exists. Round with decimals other than 0 is refused (no exact form), as is a tensor divided
 * by a tensor.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"

#include <string.h>

/* ---- Arithmetic --------------------------------------------------------------------------------
 */

/* x1 OP x2 with numpy broadcasting; either may be a constant (a number or a __numpy__ array). */
void keras_op_binary(alk_op *op, const void *binop) {
    alk_op_out(op, alk_fva_binary(alk_op_trace(op), *(const alk_binop *)binop,
                                  alk_op_array(op, "x1"), alk_op_array(op, "x2")));
}

/* x1 / x2: by a constant, the product with its float64 reciprocal (the reference's rule); a
 * constant by a tensor, a table of c / v; a tensor by a tensor has no exact form. */
void keras_op_divide(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *a = alk_op_array(op, "x1");
    alk_fva *b = alk_op_array(op, "x2");
    if (a != NULL && b != NULL && !alk_fva_is_numeric(a) && !alk_fva_is_numeric(b)) {
        alk_op_fail(op, ALK_EINVAL,
                    "dividing a tensor by a tensor is not supported (no exact fixed-point "
                    "division); only division by a constant, or of a constant by a tensor");
        return;
    }
    alk_op_out(op, alk_fva_binary(alk_op_trace(op), ALK_DIVIDE, a, b));
}

/* ---- Reductions --------------------------------------------------------------------------------
 */

/* The `axis` of a reduction: *ret_n axes, or 0 (all axes) for None. */
static bool reduce_axes(alk_op *op, int *axes, size_t *ret_n) {
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "axis", values, ALK_FVA_MAX_DIM);
    if (alk_op_failed(op)) {
        return false;
    }
    *ret_n = n == SIZE_MAX ? 0 : n;
    for (size_t i = 0; i < *ret_n; i++) {
        axes[i] = (int)values[i];
    }
    return true;
}

/* `y` (x reduced over `axes`, axes dropped) reshaped with those axes kept as 1. */
static alk_fva *keep_axes(alk_op *op, const alk_fva *x, alk_fva *y, const int *axes, size_t n) {
    size_t ndim = alk_fva_ndim(x);
    int64_t shape[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < ndim; d++) {
        shape[d] = n == 0 ? 1 : (int64_t)alk_fva_shape(x)[d];
    }
    for (size_t i = 0; i < n; i++) {
        int a = axes[i] < 0 ? axes[i] + (int)ndim : axes[i];
        if (a >= 0 && a < (int)ndim) {
            shape[a] = 1;
        }
    }
    return alk_fva_reshape(alk_op_trace(op), y, ndim, shape);
}

/* Sum, Max, Min, Prod, Mean, All, Any, CountNonzero; Amax, Amin, Argmax, Argmin. */
void keras_op_reduce(alk_op *op, const void *reduce) {
    alk_reduce_op r = *(const alk_reduce_op *)reduce;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    int axes[ALK_FVA_MAX_DIM];
    size_t n;
    if (x == NULL || !reduce_axes(op, axes, &n)) {
        return;
    }
    bool keepdims = alk_op_bool(op, "keepdims", false);
    alk_fva *y;
    if (r == ALK_REDUCE_MEAN) {
        /* The tracer's mean drops the axes whatever keepdims says (the reference's quirk);
         * Keras keeps them. */
        y = alk_fva_reduce(t, r, x, n > 0 ? axes : NULL, n, false);
        y = keepdims ? keep_axes(op, x, y, axes, n) : y;
    } else {
        y = alk_fva_reduce(t, r, x, n > 0 ? axes : NULL, n, keepdims);
    }
    /* Max and Min take an initial value as a further candidate (the reference ignores it). */
    if ((r == ALK_REDUCE_MAX || r == ALK_REDUCE_MIN) && alk_op_has(op, "initial")) {
        y = alk_fva_binary_scalar(t, r == ALK_REDUCE_MAX ? ALK_MAXIMUM : ALK_MINIMUM, y,
                                  alk_op_float(op, "initial", 0.0));
    }
    alk_op_out(op, y);
}

/* average(x, axis, weights): the mean, or sum(x * w) / sum(w) with a constant w along axis. */
void keras_op_average(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    int axes[ALK_FVA_MAX_DIM];
    size_t n;
    if (x == NULL || !reduce_axes(op, axes, &n)) {
        return;
    }
    const alk_arg *weights = alk_op_get(op, "weights");
    if (weights == NULL || weights->kind == ALK_ARG_NONE) {
        alk_op_out(op, alk_fva_reduce(t, ALK_REDUCE_MEAN, x, n > 0 ? axes : NULL, n, false));
        return;
    }
    alk_fva *w = alk_op_array(op, "weights");
    if (w == NULL || !alk_fva_is_numeric(w) || n != 1 || alk_fva_ndim(w) != 1) {
        alk_op_fail(op, ALK_EINVAL, "weights must be a 1-D constant along one axis");
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    int axis = axes[0] < 0 ? axes[0] + (int)ndim : axes[0];
    if (axis < 0 || axis >= (int)ndim || alk_fva_shape(x)[axis] != alk_fva_size(w)) {
        alk_op_fail(op, ALK_EINVAL, "weights have %zu values, not one per position of axis %d",
                    alk_fva_size(w), axes[0]);
        return;
    }
    int64_t shape[ALK_FVA_MAX_DIM];
    double total = 0.0;
    for (size_t d = 0; d < ndim; d++) {
        shape[d] = (int)d == axis ? -1 : 1;
    }
    for (size_t i = 0; i < alk_fva_size(w); i++) {
        total += alk_fva_num_at(w, i);
    }
    alk_fva *weighted = alk_fva_binary(t, ALK_MUL, x, alk_fva_reshape(t, w, ndim, shape));
    alk_op_out(op, alk_fva_div_scalar(
                       t, alk_fva_reduce(t, ALK_REDUCE_SUM, weighted, &axis, 1, false), total));
}

/* ---- Structure ---------------------------------------------------------------------------------
 */

enum { MAX_OPERANDS = 64 };

void keras_op_concatenate(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *xs[MAX_OPERANDS];
    size_t n = alk_op_in_list(op, 0, xs, MAX_OPERANDS);
    int64_t axis = alk_op_int(op, "axis", 0);
    if (n > MAX_OPERANDS) {
        alk_op_fail(op, ALK_ELIMIT, "%zu operands; at most %d", n, MAX_OPERANDS);
    }
    if (n > 0 && !alk_op_failed(op)) {
        alk_op_out(op, alk_fva_concatenate(alk_op_trace(op), xs, n, (int)axis));
    }
}

void keras_op_reshape(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t shape[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "newshape", shape, ALK_FVA_MAX_DIM);
    if (n == SIZE_MAX && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "newshape is missing");
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_fva_reshape(alk_op_trace(op), x, n, shape));
    }
}

void keras_op_ravel(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_out(op, alk_fva_ravel(alk_op_trace(op), alk_op_in(op, 0)));
}

/* x[key]: a list key is a tuple of index items, as Keras's GetItem passes it to the backend. */
void keras_op_getitem(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    const alk_arg *key = alk_op_arg(op, 1);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (key == NULL) {
        alk_op_fail(op, ALK_EINVAL, "the key is missing");
        return;
    }
    bool seq = key->kind == ALK_ARG_LIST || key->kind == ALK_ARG_TUPLE;
    alk_op_index(op, x, seq ? key->as.seq.items : &key, seq ? key->as.seq.len : 1);
}

void keras_op_repeat(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    int64_t repeats[1];
    size_t n = alk_op_int_list(op, "repeats", repeats, 1);
    if (alk_op_failed(op)) {
        return;
    }
    if (n != 1 || repeats[0] < 0) {
        alk_op_fail(op, ALK_EINVAL, "repeats must be one non-negative int");
        return;
    }
    /* axis None repeats the flattened array. */
    if (!alk_op_has(op, "axis")) {
        alk_op_out(op, alk_fva_repeat(t, alk_fva_ravel(t, x), (size_t)repeats[0], 0));
        return;
    }
    alk_op_out(op, alk_fva_repeat(t, x, (size_t)repeats[0], (int)alk_op_int(op, "axis", 0)));
}

void keras_op_transpose(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "axes", values, ALK_FVA_MAX_DIM);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    int axes[ALK_FVA_MAX_DIM];
    if (n != SIZE_MAX && n != alk_fva_ndim(x)) {
        alk_op_fail(op, ALK_EINVAL, "axes must permute the %zu axes", alk_fva_ndim(x));
        return;
    }
    for (size_t i = 0; n != SIZE_MAX && i < n; i++) {
        axes[i] = (int)values[i];
    }
    alk_op_out(op, alk_fva_transpose(alk_op_trace(op), x, n == SIZE_MAX ? NULL : axes));
}

/* expand_dims(x, axis): axis an int or a sequence of them, counted in the result. */
void keras_op_expand_dims(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "axis", values, ALK_FVA_MAX_DIM);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    size_t ndim = alk_fva_ndim(x) + (n == SIZE_MAX ? 0 : n);
    bool inserted[ALK_FVA_MAX_DIM] = {false};
    bool ok = n != SIZE_MAX && ndim <= ALK_FVA_MAX_DIM;
    for (size_t i = 0; ok && i < n; i++) {
        int64_t a = values[i] < 0 ? values[i] + (int64_t)ndim : values[i];
        ok = a >= 0 && a < (int64_t)ndim && !inserted[a];
        inserted[ok ? a : 0] |= ok;
    }
    if (!ok) {
        alk_op_fail(op, ALK_EINVAL, "axis is not a valid new axis of %zu", ndim);
        return;
    }
    int64_t shape[ALK_FVA_MAX_DIM];
    for (size_t d = 0, k = 0; d < ndim; d++) {
        shape[d] = inserted[d] ? 1 : (int64_t)alk_fva_shape(x)[k++];
    }
    alk_op_out(op, alk_fva_reshape(alk_op_trace(op), x, ndim, shape));
}

/* moveaxis(x, source, destination) with ints or sequences, as numpy orders them. */
void keras_op_moveaxis(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_moveaxis(op, alk_op_in(op, 0));
}

/* ---- Contractions
 * -------------------------------------------------------------------------------- */

void keras_op_einsum(alk_op *op, const void *arg) {
    (void)arg;
    const char *subscripts = alk_op_str(op, "subscripts", NULL);
    if (alk_op_n_args(op) != 2 && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "only einsums of two operands are supported, got %zu",
                    alk_op_n_args(op));
        return;
    }
    alk_fva *a = alk_op_array(op, "x1");
    alk_fva *b = alk_op_array(op, "x2");
    if (subscripts == NULL && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "subscripts is missing");
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_fva_einsum(alk_op_trace(op), subscripts, a, b));
    }
}

/* `a` with leading axes of 1 up to `ndim` axes (numpy's broadcasting of a lower rank). */
static alk_fva *with_rank(alk_op *op, alk_fva *a, size_t ndim) {
    if (a == NULL || alk_fva_ndim(a) >= ndim) {
        return a;
    }
    int64_t shape[ALK_FVA_MAX_DIM];
    size_t pad = ndim - alk_fva_ndim(a);
    for (size_t d = 0; d < ndim; d++) {
        shape[d] = d < pad ? 1 : (int64_t)alk_fva_shape(a)[d - pad];
    }
    return alk_fva_reshape(alk_op_trace(op), a, ndim, shape);
}

/* matmul and dot as the reference computes both: einsum('...ij,...jk->...ik'). numpy lets the
 * two "..." stand for different numbers of axes (x (1, 4, 3) @ w (3, 2)); the tracer's einsum,
 * like the reference's, wants as many on both sides, so the lower rank gets leading 1s. */
void keras_op_matmul(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *a = alk_op_array(op, "x1");
    alk_fva *b = alk_op_array(op, "x2");
    if (a == NULL || b == NULL) {
        return;
    }
    if (alk_fva_ndim(a) < 2 || alk_fva_ndim(b) < 2) {
        alk_op_fail(op, ALK_EINVAL, "operands of %zu and %zu axes: both need at least 2",
                    alk_fva_ndim(a), alk_fva_ndim(b));
        return;
    }
    size_t ndim = alk_fva_ndim(a) > alk_fva_ndim(b) ? alk_fva_ndim(a) : alk_fva_ndim(b);
    alk_op_out(op, alk_fva_einsum(alk_op_trace(op), "...ij,...jk->...ik", with_rank(op, a, ndim),
                                  with_rank(op, b, ndim)));
}

/* ---- Element-wise -------------------------------------------------------------------------------
 */

void keras_op_unary(alk_op *op, const void *unop) {
    alk_unop u = *(const alk_unop *)unop;
    if (u == ALK_ROUND && alk_op_int(op, "decimals", 0) != 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "decimals %lld is not supported: rounding to decimal digits has no exact "
                    "binary form",
                    (long long)alk_op_int(op, "decimals", 0));
        return;
    }
    alk_op_out(op, alk_fva_unary(alk_op_trace(op), u, alk_op_in(op, 0)));
}

/* clip(x, x_min, x_max) (older Keras: a_min, a_max); a None bound is no bound. */
void keras_op_clip(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    const char *lo_key = alk_op_has(op, "x_min") || !alk_op_has(op, "a_min") ? "x_min" : "a_min";
    const char *hi_key = alk_op_has(op, "x_max") || !alk_op_has(op, "a_max") ? "x_max" : "a_max";
    bool has_lo = alk_op_has(op, lo_key);
    bool has_hi = alk_op_has(op, hi_key);
    double lo = alk_op_float(op, lo_key, 0.0);
    double hi = alk_op_float(op, hi_key, 0.0);
    if (has_lo && has_hi) {
        /* np.clip, as the reference: maximum with lo, then minimum with hi. */
        x = alk_fva_clip(t, x, alk_fva_scalar(t, lo), alk_fva_scalar(t, hi));
    } else if (has_lo) {
        x = alk_fva_binary_scalar(t, ALK_MAXIMUM, x, lo);
    } else if (has_hi) {
        x = alk_fva_binary_scalar(t, ALK_MINIMUM, x, hi);
    }
    alk_op_out(op, x);
}

void keras_op_sort(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    if (!alk_op_has(op, "axis")) {
        x = alk_fva_ravel(t, x); /* axis None sorts the flattened array */
    }
    alk_op_out(op, alk_fva_sort(t, x, (int)alk_op_int(op, "axis", -1), ALK_SORT_BATCHER));
}

/* A table function of the reference's float64 formula (sin, exp, sigmoid, ...). */
void keras_op_table(alk_op *op, const void *fn) {
    alk_op_out(op, alk_fva_apply(alk_op_trace(op), alk_op_in(op, 0), *(const alk_unary_fn *)fn));
}

/* gelu: Keras's default is the tanh approximation (the reference always uses erf). */
void keras_op_gelu(alk_op *op, const void *arg) {
    (void)arg;
    alk_unary_fn fn = alk_op_bool(op, "approximate", true) ? ALK_FN_GELU_TANH : ALK_FN_GELU;
    alk_op_out(op, alk_fva_apply(alk_op_trace(op), alk_op_in(op, 0), fn));
}

/* elu with its alpha (the reference uses 1). */
void keras_op_elu(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_out(op, alk_fva_apply_with(alk_op_trace(op), alk_op_in(op, 0), ALK_FN_ELU,
                                      alk_op_float(op, "alpha", 1.0)));
}

/* One axis's (before, after) of a pad width: an int, [int] or [before, after]. */
static bool pad_pair(const alk_arg *v, int64_t out[2]) {
    bool seq = v->kind == ALK_ARG_LIST || v->kind == ALK_ARG_TUPLE;
    if (v->kind == ALK_ARG_INT) {
        out[0] = out[1] = v->as.integer;
    } else if (seq && v->as.seq.len == 1 && v->as.seq.items[0]->kind == ALK_ARG_INT) {
        out[0] = out[1] = v->as.seq.items[0]->as.integer;
    } else if (seq && v->as.seq.len == 2 && v->as.seq.items[0]->kind == ALK_ARG_INT &&
               v->as.seq.items[1]->kind == ALK_ARG_INT) {
        out[0] = v->as.seq.items[0]->as.integer;
        out[1] = v->as.seq.items[1]->as.integer;
    } else {
        return false;
    }
    return out[0] >= 0 && out[1] >= 0;
}

/* pad(x, pad_width, mode, constant_values): pad_width broadcast to one (before, after) pair
 * per axis as numpy does (an int, one pair for all axes, or a pair per axis). */
void keras_op_pad(alk_op *op, const void *arg) {
    (void)arg;
    static const char *const modes[] = {"constant", "edge", "reflect", "symmetric", "wrap", NULL};
    static const alk_pad_mode pad_modes[] = {ALK_PAD_CONSTANT, ALK_PAD_EDGE, ALK_PAD_REFLECT,
                                             ALK_PAD_SYMMETRIC, ALK_PAD_WRAP};
    alk_fva *x = alk_op_in(op, 0);
    int mode = alk_op_enum(op, "mode", modes, 0);
    const alk_arg *width = alk_op_get(op, "pad_width");
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    int64_t pads[ALK_FVA_MAX_DIM][2];
    bool ok = width != NULL;
    bool seq = ok && (width->kind == ALK_ARG_LIST || width->kind == ALK_ARG_TUPLE);
    /* A sequence of pairs as long as the rank is per axis; a one-item sequence of a pair, or a
     * bare pair or int, holds for every axis. */
    bool per_axis = seq && width->as.seq.len == ndim && width->as.seq.len > 0 &&
                    width->as.seq.items[0]->kind != ALK_ARG_INT;
    bool one_nested = seq && width->as.seq.len == 1 && width->as.seq.items[0]->kind != ALK_ARG_INT;
    for (size_t d = 0; ok && d < ndim; d++) {
        const alk_arg *row = per_axis     ? width->as.seq.items[d]
                             : one_nested ? width->as.seq.items[0]
                                          : width;
        ok = pad_pair(row, pads[d]);
    }
    if (!ok) {
        alk_op_fail(op, ALK_EINVAL,
                    "pad_width must be an int, a (before, after) pair or one pair per axis, "
                    "each non-negative");
        return;
    }
    alk_op_out(op, alk_fva_pad(alk_op_trace(op), x, (const int64_t(*)[2])pads, pad_modes[mode],
                               alk_op_float(op, "constant_values", 0.0)));
}

/* ---- Images
 * -------------------------------------------------------------------------------------- */

/* extract_patches(images, size, strides, dilation_rate, padding, data_format): strides None is
 * the size (Keras; the reference uses 1), data_format None channels_last. */
void keras_op_extract_patches(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    int64_t size[2], strides[2], dilation[2];
    alk_op_ints(op, "size", 2, -1, size);
    bool has_strides = alk_op_has(op, "strides");
    alk_op_ints(op, "strides", 2, 1, strides);
    alk_op_ints(op, "dilation_rate", 2, 1, dilation);
    static const char *const paddings[] = {"valid", "same", NULL};
    int padding = alk_op_enum(op, "padding", paddings, 0);
    bool channels_first = keras_channels_first(op);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (alk_fva_ndim(x) != 4) {
        alk_op_fail(op, ALK_EINVAL, "images need 4 axes (batch, height, width, channels)");
        return;
    }
    alk_patch_spec spec = {.rank = 2};
    for (int d = 0; d < 2; d++) {
        int64_t s = has_strides ? strides[d] : size[d];
        if (size[d] < 1 || s < 1 || dilation[d] < 1) {
            alk_op_fail(op, ALK_EINVAL, "size, strides and dilation_rate must be positive");
            return;
        }
        spec.size[d] = (size_t)size[d];
        spec.strides[d] = (size_t)s;
        spec.dilation[d] = (size_t)dilation[d];
    }
    alk_fva *images = channels_first ? alk_fva_moveaxis(t, x, 1, -1) : x;
    if (padding == 1 && images != NULL) {
        alk_patch_same_pads(&spec, alk_fva_shape(images) + 1);
    }
    alk_fva *patches = alk_fva_patches(t, images, &spec, 0.0);
    alk_op_out(op, channels_first ? alk_fva_moveaxis(t, patches, -1, 1) : patches);
}
