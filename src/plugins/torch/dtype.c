/*
 * torch constants and dtype casts (spec frontends.md §4.4, §4.5): torch.zeros/ones/full and their
 * _like forms as plain numbers (the reference's numpy constants), Tensor.to and the integer casts.
 *
 * A cast to an integer type truncates toward zero and wraps into the type's format, as the
 * reference's Tensor.to does; `.int()` and `.long()` are such casts (the reference leaves their
 * values alone, torch does not).
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

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
