/*
 * Readers shared by the torch families (torch_int.h): axes by torch's wrap rule, tensor operands
 * that come as an argument or as a module parameter, Python numbers as operands, and shapes
 * given as varargs or as one tuple.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include <inttypes.h>

int64_t torch_required_int(alk_op *op, const char *key) {
    if (!alk_op_has(op, key) && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "%s: missing (expected an int)", key);
    }
    return alk_op_int(op, key, 0);
}

bool torch_axis(alk_op *op, const char *what, int64_t dim, size_t ndim, size_t *ret_axis) {
    /* torch lets a 0-d tensor be reduced along dim 0 or -1, as if it had one axis. */
    int64_t n = ndim > 0 ? (int64_t)ndim : 1;
    if (dim < -n || dim >= n) {
        alk_op_fail(op, ALK_EINVAL,
                    "%s %" PRId64 " is out of range for a %zu-D tensor (expected %" PRId64
                    " to %" PRId64 ")",
                    what, dim, ndim, -n, n - 1);
        return false;
    }
    *ret_axis = (size_t)(dim < 0 ? dim + n : dim);
    return true;
}

size_t torch_axes(alk_op *op, const char *key, size_t ndim, int *ret_axes, bool *ret_all) {
    *ret_all = false;
    int64_t dims[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, key, dims, ALK_FVA_MAX_DIM);
    if (alk_op_failed(op)) {
        return 0;
    }
    if (n == SIZE_MAX || n == 0) {
        *ret_all = true; /* None, absent or () */
        return 0;
    }
    bool seen[ALK_FVA_MAX_DIM] = {false};
    for (size_t j = 0; j < n; j++) {
        size_t axis;
        if (!torch_axis(op, key, dims[j], ndim, &axis)) {
            return 0;
        }
        if (seen[axis]) {
            alk_op_fail(op, ALK_EINVAL, "%s: axis %zu appears twice", key, axis);
            return 0;
        }
        seen[axis] = true;
        ret_axes[j] = (int)axis;
    }
    return n;
}

alk_fva *torch_tensor(alk_op *op, const char *key, bool required) {
    const alk_arg *arg = alk_op_get(op, key);
    if (alk_op_failed(op)) {
        return NULL;
    }
    if (arg == NULL) {
        /* Not an argument of the call: a parameter of the module. */
        return required ? alk_op_weight(op, key) : alk_op_weight_opt(op, key);
    }
    if (arg->kind == ALK_ARG_ARRAY) {
        return arg->as.array;
    }
    if (arg->kind != ALK_ARG_NONE) {
        alk_op_fail(op, ALK_EINVAL, "%s: expected a tensor, got %s", key,
                    alk_arg_kind_name(arg->kind));
    } else if (required) {
        alk_op_fail(op, ALK_EINVAL, "%s: expected a tensor, got None", key);
    }
    return NULL;
}

alk_fva *torch_plain(alk_op *op, alk_fva *x) {
    if (x == NULL || !alk_fva_is_pending(x)) {
        return x;
    }
    /* No format: the tables keep the function's float values (trace-alir.md §2.10). */
    return alk_fva_quantize_each(alk_op_trace(op), x, NULL, NULL, NULL, ALK_WRAP, ALK_TRN);
}

alk_fva *torch_in(alk_op *op, size_t i) {
    return torch_plain(op, alk_op_in(op, i));
}

bool torch_number_of(const alk_arg *arg, double *ret_value) {
    if (arg == NULL) {
        return false;
    }
    switch (arg->kind) {
    case ALK_ARG_INT:
        *ret_value = (double)arg->as.integer;
        return true;
    case ALK_ARG_FLOAT:
        *ret_value = arg->as.number;
        return true;
    case ALK_ARG_BOOL:
        *ret_value = arg->as.boolean ? 1 : 0;
        return true;
    default:
        return false;
    }
}

alk_fva *torch_operand(alk_op *op, const char *what, const alk_arg *arg) {
    double number;
    if (alk_op_failed(op)) {
        return NULL;
    }
    if (arg != NULL && arg->kind == ALK_ARG_ARRAY) {
        return arg->as.array;
    }
    if (torch_number_of(arg, &number)) {
        return alk_fva_scalar(alk_op_trace(op), number);
    }
    alk_op_fail(op, ALK_EINVAL, "%s: expected a tensor or a number, got %s", what,
                arg != NULL ? alk_arg_kind_name(arg->kind) : "nothing");
    return NULL;
}

/* The ints of sequence `seq`; SIZE_MAX after an error. */
static size_t ints_of(alk_op *op, const char *what, const alk_arg *seq, int64_t *ret) {
    if (seq->as.seq.len > ALK_FVA_MAX_DIM) {
        alk_op_fail(op, ALK_EINVAL, "%s: %zu sizes (at most %d)", what, seq->as.seq.len,
                    ALK_FVA_MAX_DIM);
        return SIZE_MAX;
    }
    for (size_t j = 0; j < seq->as.seq.len; j++) {
        const alk_arg *item = seq->as.seq.items[j];
        if (item->kind != ALK_ARG_INT) {
            alk_op_fail(op, ALK_EINVAL, "%s[%zu]: expected an int, got %s", what, j,
                        alk_arg_kind_name(item->kind));
            return SIZE_MAX;
        }
        ret[j] = item->as.integer;
    }
    return seq->as.seq.len;
}

size_t torch_sizes(alk_op *op, size_t first, const char *what, int64_t *ret) {
    if (alk_op_failed(op)) {
        return SIZE_MAX;
    }
    size_t n_args = alk_op_n_args(op);
    const alk_arg *one = alk_op_arg(op, first);
    if (one != NULL && (one->kind == ALK_ARG_TUPLE || one->kind == ALK_ARG_LIST)) {
        if (n_args > first + 1) {
            alk_op_fail(op, ALK_EINVAL, "%s: give the sizes as ints or as one sequence, not both",
                        what);
            return SIZE_MAX;
        }
        return ints_of(op, what, one, ret);
    }
    if (one == NULL) {
        alk_op_fail(op, ALK_EINVAL, "%s: missing", what);
        return SIZE_MAX;
    }
    size_t n = n_args > first ? n_args - first : 1;
    if (n > ALK_FVA_MAX_DIM) {
        alk_op_fail(op, ALK_EINVAL, "%s: %zu sizes (at most %d)", what, n, ALK_FVA_MAX_DIM);
        return SIZE_MAX;
    }
    for (size_t j = 0; j < n; j++) {
        const alk_arg *item = alk_op_arg(op, first + j);
        if (item->kind != ALK_ARG_INT) {
            alk_op_fail(op, ALK_EINVAL, "%s: size %zu is a %s, not an int", what, j,
                        alk_arg_kind_name(item->kind));
            return SIZE_MAX;
        }
        ret[j] = item->as.integer;
    }
    return n;
}

alk_fva *torch_reshape(alk_op *op, const alk_fva *x, size_t n, const int64_t *shape) {
    if (x == NULL || n == SIZE_MAX || alk_op_failed(op)) {
        return NULL;
    }
    return alk_fva_reshape(alk_op_trace(op), x, n, shape);
}

void torch_unsupported(alk_op *op, const void *arg) {
    alk_op_fail(op, ALK_ENOTSUP, "%s", (const char *)arg);
}
