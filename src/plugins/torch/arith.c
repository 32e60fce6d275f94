/*
 * Element-wise torch arithmetic (spec frontends.md §4.4, §4.5): the Python operators, their
 * torch.* and Tensor spellings, comparisons, bitwise operations, division in its forms, the
 * exact maps of the unary map, where and clamp.
 *
 * An operand may be a tensor (a symbolic array, or a numeric one from a get_attr or a factory
 * function) or a Python number: fx records `x.size(-1) // 2` and `2 - x` as operator calls, and
 * `2 > x` as operator.lt(x, 2). Two numbers follow Python's rules (ints stay ints); a number and
 * an array go through the tracing API's scalar forms, which dispatch as the reference's
 * reflected Python operators do.
 *
 * Where the reference fails on what torch defines, this computes torch's value: unary plus,
 * torch.floor_divide and torch.remainder on tensors (exact for power-of-two divisors, else a
 * table of torch's own formula per grid value), torch.max(a, b) (reduce.c), `~` on integer
 * tensors (-x - 1), torch.equal (one bool for the whole tensors, not element-wise).
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- Python numbers ------------------------------------------------------------------------ */

static bool is_number(const alk_arg *a) {
    return a != NULL &&
           (a->kind == ALK_ARG_INT || a->kind == ALK_ARG_FLOAT || a->kind == ALK_ARG_BOOL);
}

static bool is_comparison(alk_binop op) {
    return op == ALK_GREATER || op == ALK_LESS || op == ALK_GREATER_EQUAL || op == ALK_LESS_EQUAL ||
           op == ALK_EQUAL || op == ALK_NOT_EQUAL;
}

static bool compare(alk_binop op, double a, double b) {
    switch (op) {
    case ALK_GREATER:
        return a > b;
    case ALK_LESS:
        return a < b;
    case ALK_GREATER_EQUAL:
        return a >= b;
    case ALK_LESS_EQUAL:
        return a <= b;
    case ALK_EQUAL:
        return a == b;
    default:
        return a != b;
    }
}

/* int OP int with Python's semantics and int64 overflow checks. */
static const alk_arg *int_binary(alk_op *op, alk_binop code, int64_t a, int64_t b, bool bools) {
    int64_t r = 0;
    bool overflow = false;
    switch (code) {
    case ALK_ADD:
        overflow = __builtin_add_overflow(a, b, &r);
        break;
    case ALK_SUB:
        overflow = __builtin_sub_overflow(a, b, &r);
        break;
    case ALK_MUL:
        overflow = __builtin_mul_overflow(a, b, &r);
        break;
    case ALK_MAXIMUM:
        r = b > a ? b : a;
        break;
    case ALK_MINIMUM:
        r = b < a ? b : a;
        break;
    case ALK_BITWISE_AND:
        r = a & b;
        break;
    case ALK_BITWISE_OR:
        r = a | b;
        break;
    default: /* ALK_BITWISE_XOR */
        r = a ^ b;
        break;
    }
    if (overflow) {
        alk_op_fail(op, ALK_EINVAL, "integer overflow in %" PRId64 " and %" PRId64, a, b);
        return NULL;
    }
    /* bool & bool stays a bool in Python. */
    bool logical = code == ALK_BITWISE_AND || code == ALK_BITWISE_OR || code == ALK_BITWISE_XOR;
    return bools && logical ? alk_arg_of_bool(op, r != 0) : alk_arg_of_int(op, r);
}

static const alk_arg *number_binary(alk_op *op, alk_binop code, const alk_arg *a,
                                    const alk_arg *b) {
    double x, y;
    (void)torch_number_of(a, &x);
    (void)torch_number_of(b, &y);
    if (is_comparison(code)) {
        return alk_arg_of_bool(op, compare(code, x, y));
    }
    if (a->kind != ALK_ARG_FLOAT && b->kind != ALK_ARG_FLOAT) {
        int64_t i = a->kind == ALK_ARG_INT ? a->as.integer : a->as.boolean;
        int64_t j = b->kind == ALK_ARG_INT ? b->as.integer : b->as.boolean;
        return int_binary(op, code, i, j, a->kind == ALK_ARG_BOOL && b->kind == ALK_ARG_BOOL);
    }
    switch (code) {
    case ALK_ADD:
        return alk_arg_of_float(op, x + y);
    case ALK_SUB:
        return alk_arg_of_float(op, x - y);
    case ALK_MUL:
        return alk_arg_of_float(op, x * y);
    case ALK_MAXIMUM:
        return alk_arg_of_float(op, y > x ? y : x);
    case ALK_MINIMUM:
        return alk_arg_of_float(op, y < x ? y : x);
    default:
        alk_op_fail(op, ALK_EINVAL, "bitwise operations need ints, got a float");
        return NULL;
    }
}

/* a OP b for any mix of arrays and numbers. */
static const alk_arg *apply_binary(alk_op *op, alk_binop code, const alk_arg *a, const alk_arg *b) {
    alk_trace *t = alk_op_trace(op);
    double c;
    if (alk_op_failed(op)) {
        return NULL;
    }
    if (is_number(a) && is_number(b)) {
        return number_binary(op, code, a, b);
    }
    if (a->kind == ALK_ARG_ARRAY && torch_number_of(b, &c)) {
        return alk_arg_of_array(op, alk_fva_binary_scalar(t, code, a->as.array, c));
    }
    if (b->kind == ALK_ARG_ARRAY && torch_number_of(a, &c)) {
        return alk_arg_of_array(op, alk_fva_rbinary_scalar(t, code, c, b->as.array));
    }
    if (a->kind == ALK_ARG_ARRAY && b->kind == ALK_ARG_ARRAY) {
        return alk_arg_of_array(op, alk_fva_binary(t, code, a->as.array, b->as.array));
    }
    alk_op_fail(op, ALK_EINVAL, "unsupported operands %s and %s", alk_arg_kind_name(a->kind),
                alk_arg_kind_name(b->kind));
    return NULL;
}

/* The two operands of a binary row (by position or by the row's parameter names). */
static bool operands(alk_op *op, const alk_arg **ret_a, const alk_arg **ret_b) {
    *ret_a = alk_op_arg(op, 0);
    *ret_b = alk_op_arg(op, 1);
    if (*ret_a == NULL || *ret_b == NULL) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "needs two operands");
        }
        return false;
    }
    return true;
}

/* a + b, a - b (torch.add/sub's alpha scales b), a * b, maximum, minimum, comparisons,
 * bitwise and/or/xor: `arg` is a torch_binary_def. */
void torch_binary(alk_op *op, const void *arg) {
    const torch_binary_def *def = arg;
    const alk_arg *a, *b;
    if (!operands(op, &a, &b)) {
        return;
    }
    if (def->with_alpha && alk_op_has(op, "alpha")) {
        const alk_arg *alpha = alk_op_get(op, "alpha");
        if (!is_number(alpha)) {
            alk_op_fail(op, ALK_EINVAL, "alpha must be a number");
            return;
        }
        b = apply_binary(op, ALK_MUL, b, alpha);
    }
    alk_op_return(op, apply_binary(op, def->op, a, b));
}

/* ---- Division ------------------------------------------------------------------------------- */

/* Whether c is ±2^n: then x / c is exact (a shift and maybe a negation). */
static bool is_power_of_two(double c) {
    int exponent;
    return c != 0 && isfinite(c) && fabs(frexp(c, &exponent)) == 0.5;
}

/* torch's floor division and remainder of doubles (ATen's div_floor / remainder kernels):
 * the result for a grid value, as torch computes it in float64. */
static double torch_floor_div(double a, double b) {
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0)) {
        div -= 1;
    }
    if (div == 0) {
        return copysign(0, a / b);
    }
    double floor_div = floor(div);
    return div - floor_div > 0.5 ? floor_div + 1 : floor_div;
}

static double torch_remainder_of(double a, double b) {
    double mod = fmod(a, b);
    return mod != 0 && (b < 0) != (mod < 0) ? mod + b : mod;
}

/* The tabulated forms: the constant and which side of the operator it is on. */
typedef enum div_kind { DIV_TRUE, DIV_FLOOR, DIV_REMAINDER, DIV_TRUNC } div_kind;

typedef struct div_table {
    div_kind kind;
    double constant;
    bool constant_first; /* c / x rather than x / c */
} div_table;

static double divide_fn(double x, void *user) {
    const div_table *d = user;
    double a = d->constant_first ? d->constant : x, b = d->constant_first ? x : d->constant;
    switch (d->kind) {
    case DIV_TRUE:
        return a / b;
    case DIV_FLOOR:
        return torch_floor_div(a, b);
    case DIV_REMAINDER:
        return torch_remainder_of(a, b);
    default:
        return trunc(a / b);
    }
}

/* x / c in exact operations when c is a power of two: true division scales, floor and trunc
 * divisions then drop the fraction, the remainder is x - floor(x / c) * c. NULL when the
 * divisor is not a power of two (then it is a table). */
static alk_fva *exact_division(alk_op *op, div_kind kind, alk_fva *x, double c) {
    alk_trace *t = alk_op_trace(op);
    if (kind == DIV_TRUE) {
        /* The reference multiplies by the float64 reciprocal for every divisor (quirk 6). */
        return alk_fva_div_scalar(t, x, c);
    }
    if (!is_power_of_two(c)) {
        return NULL;
    }
    alk_fva *quotient = alk_fva_div_scalar(t, x, c);
    if (kind == DIV_TRUNC) {
        return alk_fva_where(t, alk_fva_binary_scalar(t, ALK_LESS, quotient, 0),
                             alk_fva_unary(t, ALK_CEIL, quotient),
                             alk_fva_unary(t, ALK_FLOOR, quotient));
    }
    alk_fva *floored = alk_fva_unary(t, ALK_FLOOR, quotient);
    if (kind == DIV_FLOOR) {
        return floored;
    }
    return alk_fva_binary(t, ALK_SUB, x, alk_fva_binary_scalar(t, ALK_MUL, floored, c));
}

/* The numbers of a numeric array, through `fn` element by element. */
static alk_fva *numeric_map(alk_op *op, alk_fva *a, double (*fn)(double, void *), void *user) {
    size_t n = alk_fva_size(a);
    double *values = alk_op_failed(op) ? NULL : alk_malloc((n > 0 ? n : 1) * sizeof(double));
    if (values == NULL) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_ENOMEM, "out of memory for %zu numbers", n);
        }
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        values[i] = fn(alk_fva_num_at(a, i), user);
    }
    alk_fva *r = alk_fva_numbers(alk_op_trace(op), alk_fva_ndim(a), alk_fva_shape(a), values);
    alk_free(values);
    return r;
}

/* x / c, c / x, x // c, ... with one array operand and one number. */
static alk_fva *divide_array(alk_op *op, div_kind kind, alk_fva *x, double c, bool constant_first) {
    if (!constant_first && c == 0) {
        alk_op_fail(op, ALK_EINVAL, "division by zero");
        return NULL;
    }
    div_table table = {kind, c, constant_first};
    if (alk_fva_is_numeric(x)) {
        return numeric_map(op, x, divide_fn, &table);
    }
    if (kind == DIV_TRUE && constant_first) {
        /* c / x: a table function, which later arithmetic with numbers composes into. */
        return alk_fva_rdiv_scalar(alk_op_trace(op), c, x);
    }
    if (kind != DIV_TRUE) {
        x = torch_plain(op, x);
    }
    alk_fva *exact = constant_first ? NULL : exact_division(op, kind, x, c);
    if (exact != NULL || alk_op_failed(op)) {
        return exact;
    }
    /* A table of torch's own formula over each element's grid. */
    return alk_fva_map_fn(alk_op_trace(op), x, divide_fn, &table, false, 0, 0, 0, ALK_WRAP,
                          ALK_TRN);
}

/* Two numbers: Python's /, //, % (ints stay ints for // and %). */
static const alk_arg *divide_numbers(alk_op *op, div_kind kind, const alk_arg *a,
                                     const alk_arg *b) {
    double x, y;
    (void)torch_number_of(a, &x);
    (void)torch_number_of(b, &y);
    if (y == 0) {
        alk_op_fail(op, ALK_EINVAL, "division by zero");
        return NULL;
    }
    bool ints = a->kind != ALK_ARG_FLOAT && b->kind != ALK_ARG_FLOAT;
    if (ints && (kind == DIV_FLOOR || kind == DIV_REMAINDER)) {
        int64_t i = a->kind == ALK_ARG_INT ? a->as.integer : a->as.boolean;
        int64_t j = b->kind == ALK_ARG_INT ? b->as.integer : b->as.boolean;
        if (i == INT64_MIN && j == -1) {
            alk_op_fail(op, ALK_EINVAL, "integer overflow in %" PRId64 " // -1", i);
            return NULL;
        }
        int64_t q = i / j, r = i % j;
        if (r != 0 && (r < 0) != (j < 0)) {
            q -= 1;
            r += j;
        }
        return alk_arg_of_int(op, kind == DIV_FLOOR ? q : r);
    }
    div_table table = {kind, y, false};
    return alk_arg_of_float(op, divide_fn(x, &table));
}

static void division(alk_op *op, div_kind kind) {
    const alk_arg *a, *b;
    double c;
    if (!operands(op, &a, &b)) {
        return;
    }
    if (is_number(a) && is_number(b)) {
        alk_op_return(op, divide_numbers(op, kind, a, b));
    } else if (a->kind == ALK_ARG_ARRAY && torch_number_of(b, &c)) {
        alk_op_out(op, divide_array(op, kind, a->as.array, c, false));
    } else if (b->kind == ALK_ARG_ARRAY && torch_number_of(a, &c)) {
        alk_op_out(op, divide_array(op, kind, b->as.array, c, true));
    } else if (a->kind == ALK_ARG_ARRAY && b->kind == ALK_ARG_ARRAY &&
               alk_fva_is_numeric(b->as.array) && kind == DIV_TRUE) {
        /* A tensor constant divisor: the product by its reciprocal, element by element. */
        for (size_t j = 0; j < alk_fva_size(b->as.array); j++) {
            if (alk_fva_num_at(b->as.array, j) == 0) {
                alk_op_fail(op, ALK_EINVAL, "division by zero (element %zu of the divisor)", j);
                return;
            }
        }
        div_table reciprocal = {DIV_TRUE, 1, true};
        alk_fva *inverse = numeric_map(op, b->as.array, divide_fn, &reciprocal);
        alk_op_out(op, inverse != NULL
                           ? alk_fva_binary(alk_op_trace(op), ALK_MUL, a->as.array, inverse)
                           : NULL); /* a table function composes the product */
    } else {
        alk_op_fail(op, ALK_ENOTSUP,
                    "division of %s by %s is not supported (a tensor divided by a traced tensor "
                    "has no fixed-point form)",
                    alk_arg_kind_name(a->kind), alk_arg_kind_name(b->kind));
    }
}

/* a / b: operator.truediv, torch.div/divide (rounding_mode None, 'trunc' or 'floor'),
 * torch.true_divide. */
void torch_divide(alk_op *op, const void *arg) {
    (void)arg;
    static const char *const modes[] = {"true", "trunc", "floor", NULL};
    int mode = alk_op_enum(op, "rounding_mode", modes, 0);
    division(op, mode == 1 ? DIV_TRUNC : mode == 2 ? DIV_FLOOR : DIV_TRUE);
}

/* a // b: operator.floordiv, torch.floor_divide. */
void torch_floor_divide(alk_op *op, const void *arg) {
    (void)arg;
    division(op, DIV_FLOOR);
}

/* a % b: operator.mod, torch.remainder (the result has the divisor's sign). */
void torch_remainder(alk_op *op, const void *arg) {
    (void)arg;
    division(op, DIV_REMAINDER);
}

/* ---- Unary ---------------------------------------------------------------------------------- */

/* -x: operator.neg, torch.neg/negative, Tensor.neg/negative. */
void torch_negate(alk_op *op, const void *arg) {
    (void)arg;
    const alk_arg *a = alk_op_arg(op, 0);
    if (a != NULL && a->kind == ALK_ARG_INT && a->as.integer != INT64_MIN) {
        alk_op_return(op, alk_arg_of_int(op, -a->as.integer));
    } else if (a != NULL && a->kind == ALK_ARG_FLOAT) {
        alk_op_return(op, alk_arg_of_float(op, -a->as.number));
    } else {
        alk_fva *x = alk_op_in(op, 0);
        alk_op_out(op, x != NULL ? alk_fva_unary(alk_op_trace(op), ALK_NEGATIVE, x) : NULL);
    }
}

/* +x: operator.pos. torch defines it as the identity (the reference's arrays refuse it). */
void torch_positive(alk_op *op, const void *arg) {
    (void)arg;
    const alk_arg *a = alk_op_arg(op, 0);
    if (is_number(a) || (a != NULL && a->kind == ALK_ARG_ARRAY)) {
        alk_op_return(op, a);
    } else {
        (void)alk_op_in(op, 0); /* the kit's message for a missing or wrong argument */
    }
}

/* Whether every element has format `k, i, f` (or, with `integer`, f <= 0: whole numbers). */
static bool every_element(const alk_fva *x, int want_k, int want_i, int want_f, bool integer) {
    for (size_t j = 0; j < alk_fva_size(x); j++) {
        int k, i, f;
        alk_fv_kif(alk_fva_at(x, j), &k, &i, &f);
        bool ok = integer ? f <= 0 : k == want_k && i == want_i && f == want_f;
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ~x: operator.invert, torch.bitwise_not. A boolean tensor (every element 0 or 1, format
 * (0, 1, 0)) is negated logically, as the reference does; an integer tensor gets torch's
 * two's-complement not, -x - 1 (the reference refuses it). The value format is all there is
 * to tell them apart: an integer tensor holding only 0 and 1 is taken for a boolean one. */
void torch_invert(alk_op *op, const void *arg) {
    (void)arg;
    const alk_arg *a = alk_op_arg(op, 0);
    if (a != NULL && a->kind == ALK_ARG_BOOL) {
        alk_op_return(op, alk_arg_of_int(op, a->as.boolean ? -2 : -1)); /* Python's ~True */
        return;
    }
    if (a != NULL && a->kind == ALK_ARG_INT) {
        alk_op_return(op, alk_arg_of_int(op, ~a->as.integer));
        return;
    }
    alk_fva *x = torch_in(op, 0);
    alk_trace *t = alk_op_trace(op);
    if (x == NULL) {
        return;
    }
    if (alk_fva_is_numeric(x)) {
        alk_op_fail(op, ALK_ENOTSUP, "~ of a constant tensor is not supported");
    } else if (every_element(x, 0, 1, 0, false)) {
        alk_op_out(op, alk_fva_unary(t, ALK_INVERT, x));
    } else if (every_element(x, 0, 0, 0, true)) {
        alk_op_out(op, alk_fva_rbinary_scalar(t, ALK_SUB, -1, x));
    } else {
        alk_op_fail(op, ALK_ENOTSUP,
                    "bitwise not needs a boolean or integer tensor (it has fractional bits)");
    }
}

/* torch.equal(a, b): one bool, true when the shapes match and every element is equal (the
 * reference compares element-wise). */
void torch_equal_all(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *a = torch_in(op, 0), *b = torch_in(op, 1);
    alk_trace *t = alk_op_trace(op);
    if (a == NULL || b == NULL) {
        return;
    }
    bool same_shape =
        alk_fva_ndim(a) == alk_fva_ndim(b) &&
        memcmp(alk_fva_shape(a), alk_fva_shape(b), alk_fva_ndim(a) * sizeof(size_t)) == 0;
    if (!same_shape) {
        alk_op_out(op, alk_fva_scalar(t, 0));
        return;
    }
    alk_fva *equal = alk_fva_binary(t, ALK_EQUAL, a, b);
    alk_op_out(op, alk_fva_reduce(t, ALK_REDUCE_ALL, equal, NULL, 0, false));
}

/* ---- Selection ------------------------------------------------------------------------------ */

/* torch.where(condition, input, other): a multiplexer on condition != 0. */
void torch_where(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *cond = torch_in(op, 0);
    if (alk_op_get(op, "input") == NULL && alk_op_get(op, "other") == NULL) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_ENOTSUP,
                        "torch.where(condition) (the indices of non-zero "
                        "elements) is not supported");
        }
        return;
    }
    alk_fva *x = torch_plain(op, torch_operand(op, "input", alk_op_get(op, "input")));
    alk_fva *y = torch_plain(op, torch_operand(op, "other", alk_op_get(op, "other")));
    alk_op_out(op, alk_op_failed(op) ? NULL : alk_fva_where(alk_op_trace(op), cond, x, y));
}

/* x limited to [lo, hi], either bound may be None (missing); each a number or a tensor. */
static alk_fva *limit(alk_op *op, alk_fva *x, const alk_arg *lo, const alk_arg *hi) {
    alk_trace *t = alk_op_trace(op);
    bool has_lo = lo != NULL && lo->kind != ALK_ARG_NONE;
    bool has_hi = hi != NULL && hi->kind != ALK_ARG_NONE;
    if (!has_lo && !has_hi) {
        alk_op_fail(op, ALK_EINVAL, "needs at least one of min and max");
        return NULL;
    }
    alk_fva *low = has_lo ? torch_operand(op, "min", lo) : NULL;
    alk_fva *high = has_hi ? torch_operand(op, "max", hi) : NULL;
    if (x == NULL || alk_op_failed(op)) {
        return NULL;
    }
    /* A table function composes a clip by numbers, not one by traced values. */
    if ((low != NULL && !alk_fva_is_numeric(low)) || (high != NULL && !alk_fva_is_numeric(high))) {
        x = torch_plain(op, x);
    }
    if (has_lo && has_hi) {
        return alk_fva_clip(t, x, low, high);
    }
    return has_lo ? alk_fva_binary(t, ALK_MAXIMUM, x, low)
                  : alk_fva_binary(t, ALK_MINIMUM, x, high);
}

/* torch.clamp/clip(x, min=None, max=None), and the method forms. */
void torch_clamp(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_op_out(op, limit(op, x, alk_op_get(op, "min"), alk_op_get(op, "max")));
}
