/*
 * Arrays of symbolic variables, part 2 of 5 (see fva_int.h): element-wise operations (binary
 * operators with numpy broadcasting, unary operators, relu, power, quantize, floor/round/ceil,
 * where, clip) and unary functions applied as lookup tables (spec trace-alir.md §2.2, §2.3,
 * §2.10).
 *
 * Design. Element-wise operations visit output elements in C order, which is the order numpy's
 * object loops call the reference's operators in, so node creation order (and with it, affine
 * term order) matches the reference. Each element dispatches as Python would: to the variable's
 * operator, or to the reflected operator when the number comes first.
 *
 * Unary functions are evaluated with libm. numpy's float64 sin/cos/exp/... may differ from glibc
 * in the last ulp; a table entry can only differ when a value lies within an ulp of a rounding
 * boundary of its quantization (spec §6.3.2). The example model's table reproduces the
 * reference's SHA-256 name, which pins its 8192 entries.
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
        default: {
            /* Python refuses bitwise operators on floats; integral values behave as ints. */
            if (a.n != floor(a.n) || b.n != floor(b.n)) {
                alk__trace_set_error(t, ALK_EINVAL, "bitwise operation on non-integer numbers");
                return (elem){NULL, 0};
            }
            int64_t p = (int64_t)a.n, q = (int64_t)b.n;
            r = (double)(op == ALK_BITWISE_AND  ? (p & q)
                         : op == ALK_BITWISE_OR ? (p | q)
                                                : (p ^ q));
        }
        }
        return (elem){NULL, r};
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
            return (elem){NULL, 0};
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
    return (elem){r, 0};
}

/* The result's hardware configuration: the first operand's, unless only the second has variables
 * (numbers carry none). */
static alk_hwconf hw_of2(const alk_fva *a, const alk_fva *b) {
    return a->numeric && !b->numeric ? b->hw : a->hw;
}

/* numpy broadcasting through stride-0 views: the operands are never copied to the result's shape.
 * The result holds numbers only when both operands do. */
alk_fva *alk_fva_binary(alk_trace *t, alk_binop op, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
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
 * is not a power of two multiplies by an inexact constant (spec §1.8). */
alk_fva *alk_fva_div_scalar(alk_trace *t, const alk_fva *a, double c) {
    if (!failed(t) && c == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "division by zero");
        return NULL;
    }
    return alk_fva_binary_scalar(t, ALK_MUL, a, 1.0 / c);
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

alk_fva *alk_fva_relu(alk_trace *t, const alk_fva *a, int i, int f, alk_round round) {
    relu_arg arg = {i, f, round};
    return map_vars(t, a, fn_relu, &arg);
}

alk_fva *alk_fva_power(alk_trace *t, const alk_fva *a, int p) {
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

alk_fva *alk_fva_unary(alk_trace *t, alk_unop op, const alk_fva *a) {
    if (failed(t) || a == NULL) {
        return NULL;
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

double alk_unary_fn_eval(alk_unary_fn fn, double x) {
    switch (fn) {
    case ALK_FN_SIN:
        return sin(x);
    case ALK_FN_COS:
        return cos(x);
    case ALK_FN_TAN:
        return tan(x);
    case ALK_FN_EXP:
        return exp(x);
    case ALK_FN_LOG:
        return log(x);
    case ALK_FN_SQRT:
        return sqrt(x);
    case ALK_FN_TANH:
        return tanh(x);
    case ALK_FN_SINH:
        return sinh(x);
    case ALK_FN_COSH:
        return cosh(x);
    case ALK_FN_ARCCOS:
        return acos(x);
    case ALK_FN_ARCSIN:
        return asin(x);
    case ALK_FN_ARCTAN:
        return atan(x);
    case ALK_FN_ARCSINH:
        return asinh(x);
    case ALK_FN_ARCCOSH:
        return acosh(x);
    case ALK_FN_ARCTANH:
        return atanh(x);
    case ALK_FN_EXP2:
        return exp2(x);
    case ALK_FN_EXPM1:
        return expm1(x);
    case ALK_FN_LOG2:
        return log2(x);
    case ALK_FN_LOG10:
        return log10(x);
    case ALK_FN_LOG1P:
        return log1p(x);
    case ALK_FN_CBRT:
        return cbrt(x);
    case ALK_FN_RECIPROCAL:
        return 1.0 / x;
    case ALK_FN_FLOOR:
        return floor(x);
    case ALK_FN_CEIL:
        return ceil(x);
    case ALK_FN_RINT:
        return nearbyint(x);
    }
    return NAN;
}

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

/* fn followed by the quantizer, as one function to tabulate: the table holds quantized values. */
typedef struct quantized_fn {
    alk_float_fn fn;
    void *user;
    int k, i, f;
    alk_overflow overflow;
    alk_round round;
} quantized_fn;

static double eval_quantized(double x, void *user) {
    const quantized_fn *q = user;
    return alk_quantize_float(q->fn(x, q->user), q->k, q->i, q->f, q->overflow, q->round);
}

alk_fva *alk_fva_map_fn(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user, bool quantized,
                        int k, int i, int f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "table functions need an array of variables");
        return NULL;
    }
    quantized_fn q = {fn, user, k, i, f, overflow, round};
    alk_float_fn eval = quantized ? eval_quantized : fn;
    void *eval_user = quantized ? (void *)&q : user;
    alk_fva *r = alk__fva_new(t, a->ndim, a->shape, false, a->hw);
    /* Tables made in this call, keyed by interval (one call uses one format). */
    alk_qint *keys = alk__trace_alloc(t, (a->size ? a->size : 1) * sizeof(alk_qint));
    alk_ftable **tables = alk__trace_alloc(t, (a->size ? a->size : 1) * sizeof(alk_ftable *));
    if (r == NULL || keys == NULL || tables == NULL) {
        return NULL;
    }
    /* Elements with equal intervals share one table, so a layer makes one table per distinct
     * input format rather than one per element. */
    size_t n_tables = 0;
    for (size_t j = 0; j < a->size && !failed(t); j++) {
        alk_fvar *v = get(a, j).v;
        alk_qint qv = alk__fv_qint(v);
        if (v->factor < 0) {
            qv = (alk_qint){qv.max, qv.min, qv.step};
        }
        alk_ftable *table = NULL;
        for (size_t q2 = 0; q2 < n_tables; q2++) {
            if (keys[q2].min == qv.min && keys[q2].max == qv.max && keys[q2].step == qv.step) {
                table = tables[q2];
                break;
            }
        }
        if (table == NULL) {
            table = alk_ftable_from_fn(t, eval, eval_user, qv);
            keys[n_tables] = qv;
            tables[n_tables++] = table;
        }
        r->vars[j] = alk_fv_lookup(t, v, table, NULL);
    }
    return done(t, r);
}
