/*
 * Arrays of symbolic variables, part 2 of 7 (see fva_int.h): element-wise operations (binary
 * operators with numpy broadcasting, unary operators, relu, power, quantize, floor/round/ceil,
 * where, clip) and the float quantizer that table functions end with (spec trace-alir.md §2.2,
 * §2.3, §2.10). On a pending array each operation either composes into the element functions
 * (fva_pending.c) or fails naming the function.
 *
 * Design. Element-wise operations visit output elements in C order, which is the order numpy's
 * object loops call the reference's operators in, so node creation order (and with it, affine
 * term order) matches the reference. Each element dispatches as Python would: to the variable's
 * operator, or to the reflected operator when the number comes first.
 *
 * Memory: arena only (see fva_int.h). Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Element-wise                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* One element of a binary operation, following the Python operator a variable or number
 * would dispatch to (reflected operators for number-first forms). */
elem alk__fva_binary_elem(alk_trace *t, alk_binop op, elem a, elem b) {
    alk_fvar *x = a.v, *y = b.v;
    /* Two numbers: numpy computes in float64, comparisons give 0/1 (numpy's bools). */
    if (x == NULL && y == NULL) {
        double r = 0;
        switch (op) {
        case ALK_ADD:
            r = a.n + b.n;
            break;
        case ALK_SUB:
            r = a.n - b.n;
            break;
        case ALK_MUL:
            r = a.n * b.n;
            break;
        case ALK_MAXIMUM:
            r = pymax(a.n, b.n);
            break;
        case ALK_MINIMUM:
            r = pymin(a.n, b.n);
            break;
        case ALK_GREATER:
            r = a.n > b.n;
            break;
        case ALK_LESS:
            r = a.n < b.n;
            break;
        case ALK_GREATER_EQUAL:
            r = a.n >= b.n;
            break;
        case ALK_LESS_EQUAL:
            r = a.n <= b.n;
            break;
        case ALK_EQUAL:
            r = a.n == b.n;
            break;
        case ALK_NOT_EQUAL:
            r = a.n != b.n;
            break;
        case ALK_DIVIDE:
            if (b.n == 0) {
                alk__trace_set_error(t, ALK_EINVAL, "division by zero");
                return (elem){NULL, 0, NULL};
            }
            r = a.n / b.n;
            break;
        default: {
            /* Python refuses bitwise operators on floats; integral values behave as ints. */
            if (a.n != floor(a.n) || b.n != floor(b.n)) {
                alk__trace_set_error(t, ALK_EINVAL, "bitwise operation on non-integer numbers");
                return (elem){NULL, 0, NULL};
            }
            int64_t p = (int64_t)a.n, q = (int64_t)b.n;
            r = (double)(op == ALK_BITWISE_AND  ? (p & q)
                         : op == ALK_BITWISE_OR ? (p | q)
                                                : (p ^ q));
        }
        }
        return (elem){NULL, r, NULL};
    }
    /* At least one variable. A number first dispatches to the variable's reflected operator:
     * c - x is x.__rsub__(c), c > x is x.__lt__(c), and so on, so the variable stays the node
     * the result is built from. */
    alk_fvar *r = NULL;
    switch (op) {
    case ALK_ADD:
        r = x && y ? alk_fv_add(t, x, y)
            : x    ? alk_fv_add_const(t, x, b.n)
                   : alk_fv_add_const(t, y, a.n);
        break;
    case ALK_SUB:
        r = x && y ? alk_fv_sub(t, x, y)
            : x    ? alk_fv_add_const(t, x, -b.n)
                   : alk_fv_rsub_const(t, y, a.n);
        break;
    case ALK_MUL:
        r = x && y ? alk_fv_mul(t, x, y)
            : x    ? alk_fv_mul_const(t, x, b.n)
                   : alk_fv_mul_const(t, y, a.n);
        break;
    case ALK_DIVIDE:
        /* x / c is x * (1 / c) (spec §2.3); c / x is a table, made by alk_fva_binary. */
        if (x == NULL || y != NULL) {
            alk__trace_set_error(t, ALK_EINVAL, "division by an array of variables");
            return (elem){NULL, 0, NULL};
        }
        if (b.n == 0) {
            alk__trace_set_error(t, ALK_EINVAL, "division by zero");
            return (elem){NULL, 0, NULL};
        }
        r = alk_fv_mul_const(t, x, 1.0 / b.n);
        break;
    case ALK_MAXIMUM:
        r = x && y ? alk_fv_max(t, x, y)
            : x    ? alk_fv_max_const(t, x, b.n)
                   : alk_fv_max_const(t, y, a.n);
        break;
    case ALK_MINIMUM:
        r = x && y ? alk_fv_min(t, x, y)
            : x    ? alk_fv_min_const(t, x, b.n)
                   : alk_fv_min_const(t, y, a.n);
        break;
    case ALK_GREATER:
        r = x && y ? alk_fv_gt(t, x, y)
            : x    ? alk_fv_gt_const(t, x, b.n)
                   : alk_fv_lt_const(t, y, a.n);
        break;
    case ALK_LESS:
        r = x && y ? alk_fv_lt(t, x, y)
            : x    ? alk_fv_lt_const(t, x, b.n)
                   : alk_fv_gt_const(t, y, a.n);
        break;
    case ALK_GREATER_EQUAL:
        r = x && y ? alk_fv_ge(t, x, y)
            : x    ? alk_fv_ge_const(t, x, b.n)
                   : alk_fv_le_const(t, y, a.n);
        break;
    case ALK_LESS_EQUAL:
        r = x && y ? alk_fv_le(t, x, y)
            : x    ? alk_fv_le_const(t, x, b.n)
                   : alk_fv_ge_const(t, y, a.n);
        break;
    case ALK_EQUAL:
    case ALK_NOT_EQUAL: {
        /* The scalar == and != compare two variables: a number on the right becomes a constant
         * of the variable's configuration; a number on the left is refused. */
        if (x == NULL) {
            alk__trace_set_error(t, ALK_EINVAL, "equality needs a variable as its first operand");
            return (elem){NULL, 0, NULL};
        }
        alk_fvar *o = y ? y : alk__fv_const_hw(t, b.n, x->node->hwconf);
        r = op == ALK_EQUAL ? alk_fv_eq(t, x, o) : alk_fv_ne(t, x, o);
        break;
    }
    case ALK_BITWISE_AND:
    case ALK_BITWISE_OR:
    case ALK_BITWISE_XOR: {
        /* Bit operations are symmetric: the variable goes first and a number becomes a
         * constant of its hardware configuration. */
        alk_fvar *p = x ? x : y;
        alk_fvar *q = x && y ? y : alk__fv_const_hw(t, x ? b.n : a.n, p->node->hwconf);
        r = op == ALK_BITWISE_AND  ? alk_fv_and(t, p, q)
            : op == ALK_BITWISE_OR ? alk_fv_or(t, p, q)
                                   : alk_fv_xor(t, p, q);
        break;
    }
    }
    return (elem){r, 0, NULL};
}

/* The result's hardware configuration: the first operand's, unless only the second has variables
 * (numbers carry none). */
static alk_hwconf hw_of2(const alk_fva *a, const alk_fva *b) {
    return a->numeric && !b->numeric ? b->hw : a->hw;
}

static const char *const binop_names[] = {
    [ALK_ADD] = "add",
    [ALK_SUB] = "subtract",
    [ALK_MUL] = "multiply",
    [ALK_MAXIMUM] = "maximum",
    [ALK_MINIMUM] = "minimum",
    [ALK_GREATER] = "greater",
    [ALK_LESS] = "less",
    [ALK_GREATER_EQUAL] = "greater_equal",
    [ALK_LESS_EQUAL] = "less_equal",
    [ALK_EQUAL] = "equal",
    [ALK_NOT_EQUAL] = "not_equal",
    [ALK_BITWISE_AND] = "bitwise_and",
    [ALK_BITWISE_OR] = "bitwise_or",
    [ALK_BITWISE_XOR] = "bitwise_xor",
    [ALK_DIVIDE] = "divide",
};

/* The binary operations a pending function absorbs, with the pending operand first (`flipped`:
 * it is the second), or false. Numbers only: a variable operand cannot enter a table. */
static bool pending_op(alk_binop op, bool flipped, alk__pop *ret) {
    switch (op) {
    case ALK_ADD:
        *ret = ALK__P_ADD;
        return true;
    case ALK_SUB:
        *ret = flipped ? ALK__P_RSUB : ALK__P_SUB;
        return true;
    case ALK_MUL:
        *ret = ALK__P_MUL;
        return true;
    case ALK_DIVIDE:
        *ret = flipped ? ALK__P_RDIV : ALK__P_DIV;
        return true;
    /* np.maximum/minimum differ from their flipped forms only in NaNs' and zeros' signs, which
     * no table entry keeps. */
    case ALK_MAXIMUM:
        *ret = ALK__P_MAX;
        return true;
    case ALK_MINIMUM:
        *ret = ALK__P_MIN;
        return true;
    default:
        return false;
    }
}

/* A pending operand, or a number divided by variables (c / x is a table function, as the
 * reference's __rtruediv__): the operation composes into the element functions. */
static alk_fva *binary_compose(alk_trace *t, alk_binop op, const alk_fva *a, const alk_fva *b) {
    bool flipped = a->numeric || (a->pend == NULL && b->pend != NULL);
    const alk_fva *p = flipped ? b : a, *n = flipped ? a : b;
    alk__pop pop;
    if (!n->numeric || !pending_op(op, flipped, &pop)) {
        alk__fva_plain(t, p, binop_names[op]);
        alk__fva_plain(t, n, binop_names[op]);
        return NULL;
    }
    return alk__pend_compose(t, p, pop, n);
}

/* numpy broadcasting through stride-0 views: the operands are never copied to the result's shape.
 * The result holds numbers only when both operands do. */
alk_fva *alk_fva_binary(alk_trace *t, alk_binop op, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
    }
    if ((unsigned)op >= sizeof(binop_names) / sizeof(binop_names[0])) {
        alk__trace_set_error(t, ALK_EINVAL, "unknown binary operation %d", (int)op);
        return NULL;
    }
    if (a->pend != NULL || b->pend != NULL || (op == ALK_DIVIDE && a->numeric && !b->numeric)) {
        return binary_compose(t, op, a, b);
    }
    const alk_fva *arrays[2] = {a, b};
    size_t ndim, shape[ALK_FVA_MAX_DIM];
    if (!alk__fva_broadcast_shape(t, arrays, 2, &ndim, shape)) {
        return NULL;
    }
    alk_fva *x = alk__fva_broadcast_view(t, a, ndim, shape);
    alk_fva *y = alk__fva_broadcast_view(t, b, ndim, shape);
    alk_fva *r = alk__fva_new(t, ndim, shape, a->numeric && b->numeric, hw_of2(a, b));
    if (r == NULL || x == NULL || y == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        put(t, r, j, alk__fva_binary_elem(t, op, get(x, j), get(y, j)));
    }
    return done(t, r);
}

alk_fva *alk_fva_binary_scalar(alk_trace *t, alk_binop op, const alk_fva *a, double c) {
    return alk_fva_binary(t, op, a, alk_fva_scalar(t, c));
}

alk_fva *alk_fva_rbinary_scalar(alk_trace *t, alk_binop op, double c, const alk_fva *a) {
    return alk_fva_binary(t, op, alk_fva_scalar(t, c), a);
}

/* x / c is x * (1 / c), as the reference computes it: 1 / c is rounded once, so a divisor that
 * is not a power of two multiplies by an inexact constant (spec §1.8). A pending function divides
 * (the reference's lambda x: x / c). */
alk_fva *alk_fva_div_scalar(alk_trace *t, const alk_fva *a, double c) {
    return alk_fva_binary_scalar(t, ALK_DIVIDE, a, c);
}

/* Applies fn to every element of a variable array, in C order (the node order of numpy's object
 * loops). The fn_* adapters below give the scalar operations this one signature. */
typedef alk_fvar *(*var_fn)(alk_trace *t, alk_fvar *v, const void *arg);

static alk_fva *map_vars(alk_trace *t, const alk_fva *a, var_fn fn, const void *arg) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "this operation needs an array of variables");
        return NULL;
    }
    if (!alk__fva_plain(t, a, "an element-wise operation")) {
        return NULL;
    }
    alk_fva *r = alk__fva_new(t, a->ndim, a->shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        r->vars[j] = fn(t, get(a, j).v, arg);
    }
    return done(t, r);
}

static alk_fvar *fn_neg(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_neg(t, v);
}
static alk_fvar *fn_abs(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_abs(t, v);
}
static alk_fvar *fn_not(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_not(t, v);
}
static alk_fvar *fn_signbit(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_is_negative(t, v);
}
static alk_fvar *fn_any(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_any(t, v);
}
static alk_fvar *fn_all(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_all(t, v);
}
static alk_fvar *fn_pow(alk_trace *t, alk_fvar *v, const void *arg) {
    return alk_fv_pow(t, v, *(const int *)arg);
}

typedef struct relu_arg {
    int i, f;
    alk_round round;
} relu_arg;

static alk_fvar *fn_relu(alk_trace *t, alk_fvar *v, const void *arg) {
    const relu_arg *r = arg;
    return alk_fv_relu(t, v, r->i, r->f, r->round);
}

/* A number as a 0-d array, for composing a scalar into a pending function. */
static alk_fva *compose_scalar(alk_trace *t, const alk_fva *a, alk__pop op, double c) {
    return alk__pend_compose(t, a, op, alk_fva_scalar(t, c));
}

alk_fva *alk_fva_relu(alk_trace *t, const alk_fva *a, int i, int f, alk_round round) {
    /* Keras's and torch's relu on a pending array is np.maximum(x, 0) on the float values; with
     * a format it would be a quantizer, which needs the table first. */
    if (a != NULL && a->pend != NULL && i == ALK_FV_NONE && f == ALK_FV_NONE) {
        return compose_scalar(t, a, ALK__P_MAX, 0.0);
    }
    relu_arg arg = {i, f, round};
    return map_vars(t, a, fn_relu, &arg);
}

alk_fva *alk_fva_power(alk_trace *t, const alk_fva *a, int p) {
    if (a != NULL && a->pend != NULL) {
        return compose_scalar(t, a, ALK__P_POW, p);
    }
    return map_vars(t, a, fn_pow, &p);
}

alk_fva *alk_fva_quantize_each(alk_trace *t, const alk_fva *a, const int *k, const int *i,
                               const int *f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "quantize needs an array of variables");
        return NULL;
    }
    /* A pending array is tabulated: with all three formats, or with none (the reference asserts
     * this; none keeps the float values). */
    if (a->pend != NULL) {
        if ((k == NULL) != (i == NULL) || (k == NULL) != (f == NULL)) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "quantizing a pending array needs all of k, i, f or none");
            return NULL;
        }
        return alk__pend_tabulate(t, a, k, i, f, overflow, round);
    }
    alk_fva *r = alk__fva_new(t, a->ndim, a->shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        alk_fvar *v = get(a, j).v;
        /* A NULL k, i or f keeps that part of the element's own format. */
        int kk, ii, ff;
        if (k == NULL || i == NULL || f == NULL) {
            alk_fv_kif(v, &kk, &ii, &ff);
        }
        if (k != NULL) {
            kk = k[j];
        }
        if (i != NULL) {
            ii = i[j];
        }
        if (f != NULL) {
            ff = f[j];
        }
        r->vars[j] = alk_fv_quantize(t, v, kk, ii, ff, overflow, round);
    }
    return done(t, r);
}

alk_fva *alk_fva_quantize(alk_trace *t, const alk_fva *a, int k, int i, int f,
                          alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    /* One format for all: spread it into per-element formats and share quantize_each's path. */
    int *kk = alk__trace_alloc(t, (a->size ? a->size : 1) * 3 * sizeof(int));
    if (kk == NULL) {
        return NULL;
    }
    int *ii = kk + a->size, *ff = ii + a->size;
    for (size_t j = 0; j < a->size; j++) {
        kk[j] = k;
        ii[j] = i;
        ff[j] = f;
    }
    return alk_fva_quantize_each(t, a, kk, ii, ff, overflow, round);
}

/* Formats given as numeric arrays (HGQ2's k, i, f with 1 on homogeneous axes) are broadcast to
 * a's shape, as the reference's np.broadcast_to, and read as integers. */
alk_fva *alk_fva_quantize_kif(alk_trace *t, const alk_fva *a, const alk_fva *k, const alk_fva *i,
                              const alk_fva *f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL || k == NULL || i == NULL || f == NULL) {
        return NULL;
    }
    const alk_fva *formats[3] = {k, i, f};
    static const char names[3] = {'k', 'i', 'f'};
    int *kif = alk__trace_alloc(t, (a->size ? a->size : 1) * 3 * sizeof(int));
    if (kif == NULL) {
        return NULL;
    }
    for (size_t q = 0; q < 3; q++) {
        if (!formats[q]->numeric || formats[q]->ndim > a->ndim) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "quantize: %c must be a numeric array broadcastable to the "
                                 "quantized array",
                                 names[q]);
            return NULL;
        }
        const alk_fva *v = alk__fva_broadcast_view(t, formats[q], a->ndim, a->shape);
        if (v == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < a->size; j++) {
            double x = get(v, j).n;
            /* Widths come from model weights: integral and bounded, so 2^i and 2^-f stay
             * finite. */
            bool ok = q == 0 ? (x == 0 || x == 1) : (x == floor(x) && fabs(x) <= 1000);
            if (!ok) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "quantize: %c = %g at element %zu is not a "
                                     "valid width",
                                     names[q], x, j);
                return NULL;
            }
            kif[q * a->size + j] = (int)x;
        }
    }
    return alk_fva_quantize_each(t, a, kif, kif + a->size, kif + 2 * a->size, overflow, round);
}

/* floor/round: quantize(k, max(i + 1, 1), 0) with the element's own format. One more integer bit
 * than the element has, because rounding up can carry into it (e.g. 3.5 to 4 in 2 integer bits);
 * WRAP is then safe, as no result leaves the widened range. */
static alk_fva *floor_round(alk_trace *t, const alk_fva *a, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    int *kk = alk__trace_alloc(t, (a->size ? a->size : 1) * 3 * sizeof(int));
    if (kk == NULL || a->numeric) {
        if (a->numeric) {
            alk__trace_set_error(t, ALK_EINVAL, "floor/round needs an array of variables");
        }
        return NULL;
    }
    int *ii = kk + a->size, *ff = ii + a->size;
    for (size_t j = 0; j < a->size; j++) {
        int k, i, f;
        alk_fv_kif(get(a, j).v, &k, &i, &f);
        kk[j] = k;
        ii[j] = i + 1 > 1 ? i + 1 : 1;
        ff[j] = 0;
    }
    return alk_fva_quantize_each(t, a, kk, ii, ff, ALK_WRAP, round);
}

alk_fva *alk_fva_where(alk_trace *t, const alk_fva *cond, const alk_fva *x, const alk_fva *y) {
    if (failed(t) || cond == NULL || x == NULL || y == NULL) {
        return NULL;
    }
    if (!alk__fva_plain(t, cond, "where") || !alk__fva_plain(t, x, "where") ||
        !alk__fva_plain(t, y, "where")) {
        return NULL;
    }
    const alk_fva *arrays[3] = {cond, x, y};
    size_t ndim, shape[ALK_FVA_MAX_DIM];
    alk_hwconf hw = !x->numeric ? x->hw : !y->numeric ? y->hw : cond->hw;
    /* A numeric condition selects elements while tracing: no multiplexer is made. */
    if (cond->numeric) {
        if (!alk__fva_broadcast_shape(t, arrays, 3, &ndim, shape)) {
            return NULL;
        }
        alk_fva *c = alk__fva_broadcast_view(t, cond, ndim, shape);
        alk_fva *a = alk__fva_broadcast_view(t, x, ndim, shape);
        alk_fva *b = alk__fva_broadcast_view(t, y, ndim, shape);
        if (x->numeric && y->numeric) {
            alk__trace_set_error(t, ALK_EINVAL, "where needs at least one array of variables");
            return NULL;
        }
        alk_fva *r = alk__fva_new(t, ndim, shape, false, hw);
        if (r == NULL || c == NULL || a == NULL || b == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < r->size; j++) {
            put(t, r, j, get(c, j).n != 0 ? get(a, j) : get(b, j));
        }
        return done(t, r);
    }
    /* A variable condition is reduced to one bit (any bit set) and drives a multiplexer per
     * element; number branches become constants of the condition's configuration. */
    const alk_fva *c0 = alk_fva_unary(t, ALK_TO_BOOL_ANY, cond);
    if (c0 == NULL) {
        return NULL;
    }
    arrays[0] = c0;
    if (!alk__fva_broadcast_shape(t, arrays, 3, &ndim, shape)) {
        return NULL;
    }
    alk_fva *c = alk__fva_broadcast_view(t, c0, ndim, shape);
    alk_fva *a = alk__fva_broadcast_view(t, x, ndim, shape);
    alk_fva *b = alk__fva_broadcast_view(t, y, ndim, shape);
    alk_fva *r = alk__fva_new(t, ndim, shape, false, cond->hw);
    if (r == NULL || c == NULL || a == NULL || b == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        alk_fvar *k = get(c, j).v;
        alk_hwconf khw = k->node->hwconf;
        elem ea = get(a, j), eb = get(b, j);
        alk_fvar *va = ea.v ? ea.v : alk__fv_const_hw(t, ea.n, khw);
        alk_fvar *vb = eb.v ? eb.v : alk__fv_const_hw(t, eb.n, khw);
        r->vars[j] = alk_fv_mux(t, k, va, vb, NULL);
    }
    return done(t, r);
}

alk_fva *alk_fva_clip(alk_trace *t, const alk_fva *a, const alk_fva *lo, const alk_fva *hi) {
    if (failed(t) || a == NULL || lo == NULL || hi == NULL) {
        return NULL;
    }
    /* np.clip on the float values: minimum(maximum(x, lo), hi). */
    if (a->pend != NULL && lo->numeric && hi->numeric) {
        return alk__pend_compose(t, alk__pend_compose(t, a, ALK__P_MAX, lo), ALK__P_MIN, hi);
    }
    if (!alk__fva_plain(t, a, "clip") || !alk__fva_plain(t, lo, "clip") ||
        !alk__fva_plain(t, hi, "clip")) {
        return NULL;
    }
    const alk_fva *arrays[3] = {a, lo, hi};
    size_t ndim, shape[ALK_FVA_MAX_DIM];
    if (!alk__fva_broadcast_shape(t, arrays, 3, &ndim, shape)) {
        return NULL;
    }
    alk_fva *x = alk__fva_broadcast_view(t, a, ndim, shape);
    alk_fva *l = alk__fva_broadcast_view(t, lo, ndim, shape);
    alk_fva *h = alk__fva_broadcast_view(t, hi, ndim, shape);
    alk_fva *r = alk__fva_new(t, ndim, shape, false, a->hw);
    if (r == NULL || x == NULL || l == NULL || h == NULL) {
        return NULL;
    }
    /* np.clip is minimum(maximum(a, lo), hi), element by element in that order. */
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        elem v = alk__fva_binary_elem(t, ALK_MAXIMUM, get(x, j), get(l, j));
        put(t, r, j, alk__fva_binary_elem(t, ALK_MINIMUM, v, get(h, j)));
    }
    return done(t, r);
}

/* Unary operations on a pending array: the float ones compose; floor, ceil and round compose and
 * tabulate at once without a format (the reference's apply(np.floor).quantize()). */
static alk_fva *pending_unary(alk_trace *t, alk_unop op, const alk_fva *a) {
    switch (op) {
    case ALK_NEGATIVE:
        return alk__pend_compose(t, a, ALK__P_NEG, NULL);
    case ALK_ABSOLUTE:
        return alk__pend_compose(t, a, ALK__P_ABS, NULL);
    case ALK_SQUARE:
        return compose_scalar(t, a, ALK__P_POW, 2.0);
    case ALK_FLOOR:
    case ALK_CEIL:
    case ALK_ROUND: {
        alk_unary_fn fn = op == ALK_FLOOR  ? ALK_FN_FLOOR
                          : op == ALK_CEIL ? ALK_FN_CEIL
                                           : ALK_FN_RINT;
        return alk__pend_tabulate(t, alk__pend_apply(t, a, fn, 0.0), NULL, NULL, NULL, ALK_WRAP,
                                  ALK_TRN);
    }
    default:
        alk__fva_plain(t, a, "a bit or sign operation");
        return NULL;
    }
}

alk_fva *alk_fva_unary(alk_trace *t, alk_unop op, const alk_fva *a) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->pend != NULL) {
        return pending_unary(t, op, a);
    }
    switch (op) {
    case ALK_NEGATIVE:
        if (a->numeric) {
            return alk_fva_rbinary_scalar(t, ALK_SUB, 0.0, a);
        }
        return map_vars(t, a, fn_neg, NULL);
    case ALK_ABSOLUTE:
        return map_vars(t, a, fn_abs, NULL);
    case ALK_INVERT:
        return map_vars(t, a, fn_not, NULL);
    case ALK_SIGNBIT:
        return map_vars(t, a, fn_signbit, NULL);
    case ALK_TO_BOOL_ANY:
        return map_vars(t, a, fn_any, NULL);
    case ALK_TO_BOOL_ALL:
        return map_vars(t, a, fn_all, NULL);
    case ALK_SQUARE: {
        /* x ** 2 is x * x with the same reference (a square). */
        int two = 2;
        return map_vars(t, a, fn_pow, &two);
    }
    case ALK_FLOOR:
        return floor_round(t, a, ALK_TRN);
    case ALK_ROUND:
        return floor_round(t, a, ALK_RND_CONV);
    case ALK_CEIL: {
        alk_fva *fl = floor_round(t, a, ALK_TRN);
        if (fl == NULL) {
            return NULL;
        }
        /* where(a.quantize(k=0, i=0), floor + 1, floor): the fraction bits as condition. */
        int *kk = alk__trace_alloc(t, (a->size ? a->size : 1) * 2 * sizeof(int));
        if (kk == NULL) {
            return NULL;
        }
        int *ii = kk + a->size;
        for (size_t j = 0; j < a->size; j++) {
            kk[j] = 0;
            ii[j] = 0;
        }
        alk_fva *frac = alk_fva_quantize_each(t, a, kk, ii, NULL, ALK_WRAP, ALK_TRN);
        return alk_fva_where(t, frac, alk_fva_binary_scalar(t, ALK_ADD, fl, 1), fl);
    }
    case ALK_SIGN: {
        /* The reference's sign: (1 - 2 * signbit) & (nz + 2 * nz), quantized to (1, 1, 0), so that
         * zero maps to 0 and the result is built from bit operations only. */
        alk_fva *nz = alk_fva_unary(t, ALK_TO_BOOL_ANY, a);
        alk_fva *mask = alk_fva_binary(t, ALK_ADD, nz, alk_fva_binary_scalar(t, ALK_MUL, nz, 2));
        alk_fva *sb = alk_fva_rbinary_scalar(t, ALK_MUL, 2, alk_fva_unary(t, ALK_SIGNBIT, a));
        alk_fva *pm = alk_fva_rbinary_scalar(t, ALK_SUB, 1, sb);
        return alk_fva_quantize(t, alk_fva_binary(t, ALK_BITWISE_AND, pm, mask), 1, 1, 0, ALK_WRAP,
                                ALK_TRN);
    }
    }
    alk__trace_set_error(t, ALK_EINVAL, "unknown unary operation %d", (int)op);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Unary functions as tables (§2.10)                                                        */
/* ---------------------------------------------------------------------------------------- */

/* The float quantizer of spec §2.10 (quantizers' get_fixed_quantizer_np): saturate, round to
 * 2^-f, then wrap, in that order, so a table built from it matches the reference entry by entry. */
double alk_quantize_float(double x, int k, int i, int f, alk_overflow overflow, alk_round round) {
    if (k + i + f <= 0) {
        return 0.0;
    }
    int ii = i > -f ? i : -f;
    double step = ldexp(1.0, -f);
    if (overflow == ALK_SAT || overflow == ALK_SAT_SYM) {
        double hi = ldexp(1.0, ii) - step;
        double lo = overflow == ALK_SAT ? -ldexp(1.0, ii) * k : -hi * k;
        x = x < lo ? lo : x > hi ? hi : x;
    }
    double sf = ldexp(1.0, f);
    if (round == ALK_TRN) {
        x = floor(x * sf) / sf;
    } else if (round == ALK_RND) {
        x = floor(x * sf + 0.5) / sf;
    } else {
        x = nearbyint(x * sf) / sf;
    }
    if (overflow == ALK_WRAP) {
        double half = ldexp(1.0, ii + k - 1) * k;
        x = py_fmod(x + half, ldexp(1.0, ii + k)) - half;
    }
    return x;
}
