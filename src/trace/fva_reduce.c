/*
 * Arrays of symbolic variables, part 3 of 7 (see fva_int.h): reductions (sum, prod, max, min,
 * all, any, count_nonzero, mean) and argmax/argmin (spec trace-alir.md §2.4).
 *
 * Design. The reference reduces variables through CPython's heapq, ordered by Packet comparison
 * (latency, then sign, then width); ties are resolved by heap positions, so the heap algorithm is
 * reproduced swap for swap (heap_reduce) rather than replaced by any other balanced tree: a
 * different pairing would give different adder nodes and a different program. Numeric arrays
 * reduce left to right, as numpy does for floats of an object array.
 *
 * Memory: arena only (see fva_int.h). Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Reductions (§2.4)                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* Packet.__gt__ between two variables: later (rounded latency) first, then a positive factor
 * before a negative one, then the wider integer part. The heap pops the least, so the earliest and
 * narrowest operands are added first: the reference's way of keeping the adders' latency low. */
static bool packet_gt(alk_fvar *a, alk_fvar *b) {
    double la = nearbyint(a->node->latency), lb = nearbyint(b->node->latency);
    if (la != lb) {
        return la > lb;
    }
    if (b->factor > 0 && a->factor < 0) {
        return false;
    }
    if (b->factor < 0 && a->factor > 0) {
        return true;
    }
    int ka, ia, fa, kb, ib, fb;
    alk__fv_kif(a, &ka, &ia, &fa);
    alk__fv_kif(b, &kb, &ib, &fb);
    return ka + ia > kb + ib;
}

/* Packet.__lt__ = not __gt__ (so "equal" packets compare as less: heapq sees that, too). */
static bool packet_lt(alk_fvar *a, alk_fvar *b) {
    return !packet_gt(a, b);
}

/* CPython's heapq (Modules/_heapqmodule.c): siftdown and siftup with swaps. */
static void heap_siftdown(alk_fvar **h, size_t start, size_t pos) {
    while (pos > start) {
        size_t parent = (pos - 1) >> 1;
        if (!packet_lt(h[pos], h[parent])) {
            break;
        }
        alk_fvar *tmp = h[parent];
        h[parent] = h[pos];
        h[pos] = tmp;
        pos = parent;
    }
}

static void heap_siftup(alk_fvar **h, size_t n, size_t pos) {
    size_t start = pos, limit = n >> 1;
    while (pos < limit) {
        size_t child = 2 * pos + 1;
        if (child + 1 < n && !packet_lt(h[child], h[child + 1])) {
            child++;
        }
        alk_fvar *tmp = h[child];
        h[child] = h[pos];
        h[pos] = tmp;
        pos = child;
    }
    heap_siftdown(h, start, pos);
}

typedef alk_fvar *(*reduce_fn)(alk_trace *t, alk_fvar *a, alk_fvar *b);

/* _reduce over variables: the heap order of the reference (spec §2.4). `items` is clobbered. */
static alk_fvar *heap_reduce(alk_trace *t, reduce_fn op, alk_fvar **h, size_t n) {
    /* After an error the items may be NULL (an operand that could not be made): the heap's
     * comparisons must not see them. */
    if (n == 0 || failed(t)) {
        return NULL;
    }
    if (n == 1) {
        return h[0];
    }
    /* heapify, then pop two, push their result, until one is left (the reference's loop). */
    for (size_t p = n >> 1; p-- > 0;) {
        heap_siftup(h, n, p);
    }
    while (n > 1 && !failed(t)) {
        alk_fvar *v[2];
        for (int k = 0; k < 2; k++) {
            alk_fvar *last = h[--n];
            if (n == 0) {
                v[k] = last;
            } else {
                v[k] = h[0];
                h[0] = last;
                heap_siftup(h, n, 0);
            }
        }
        alk_fvar *r = op(t, v[0], v[1]);
        if (r == NULL) {
            return NULL;
        }
        h[n++] = r;
        heap_siftdown(h, 0, n - 1);
    }
    return failed(t) ? NULL : h[0];
}

static alk_fvar *red_add(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_add(t, a, b);
}

static alk_fvar *red_mul(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_mul(t, a, b);
}
static alk_fvar *red_max(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_max(t, a, b);
}
static alk_fvar *red_min(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_min(t, a, b);
}
static alk_fvar *red_and(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_and(t, a, b);
}
static alk_fvar *red_or(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_or(t, a, b);
}

alk_fvar *alk__fva_heap_sum(alk_trace *t, alk_fvar **items, size_t n) {
    return heap_reduce(t, red_add, items, n);
}

/* _prepare_reduce: the rows (kept axes first, ascending) x reduced elements (C order). */
typedef struct reduce_plan {
    size_t rows;
    size_t cols;
    size_t out_ndim;
    size_t out_shape[ALK_FVA_MAX_DIM];
    alk_fva *flat; /* rows x cols view */
} reduce_plan;

static bool plan_reduce(alk_trace *t, const alk_fva *a, const int *axes, size_t n_axes,
                        bool keepdims, reduce_plan *plan) {
    bool reduced[ALK_FVA_MAX_DIM] = {false};
    if (axes == NULL || n_axes == 0) {
        for (size_t d = 0; d < a->ndim; d++) {
            reduced[d] = true;
        }
    } else {
        for (size_t j = 0; j < n_axes; j++) {
            size_t d;
            if (!alk__fva_norm_axis(t, axes[j], a->ndim, &d)) {
                return false;
            }
            reduced[d] = true;
        }
    }
    int order[ALK_FVA_MAX_DIM];
    size_t n = 0;
    plan->rows = 1;
    plan->cols = 1;
    plan->out_ndim = 0;
    for (size_t d = 0; d < a->ndim; d++) {
        if (!reduced[d]) {
            order[n++] = (int)d;
            plan->rows *= a->shape[d];
            plan->out_shape[plan->out_ndim++] = a->shape[d];
        } else if (keepdims) {
            plan->out_shape[plan->out_ndim++] = 1;
        }
    }
    for (size_t d = 0; d < a->ndim; d++) {
        if (reduced[d]) {
            order[n++] = (int)d;
            plan->cols *= a->shape[d];
        }
    }
    alk_fva *tr = alk_fva_transpose(t, a, order);
    int64_t shape2[2] = {(int64_t)plan->rows, (int64_t)plan->cols};
    plan->flat = alk_fva_reshape(t, tr, 2, shape2);
    return plan->flat != NULL;
}

/* The ops of the reduce itself and their numeric forms. */
static reduce_fn reducer(alk_reduce_op op) {
    switch (op) {
    case ALK_REDUCE_PROD:
        return red_mul;
    case ALK_REDUCE_MAX:
        return red_max;
    case ALK_REDUCE_MIN:
        return red_min;
    case ALK_REDUCE_ALL:
        return red_and;
    case ALK_REDUCE_ANY:
        return red_or;
    default:
        return red_add;
    }
}

static double numeric_reduce(alk_reduce_op op, double a, double b) {
    switch (op) {
    case ALK_REDUCE_PROD:
        return a * b;
    case ALK_REDUCE_MAX:
        return pymax(a, b);
    case ALK_REDUCE_MIN:
        return pymin(a, b);
    case ALK_REDUCE_ALL:
        return (double)((a != 0) && (b != 0));
    case ALK_REDUCE_ANY:
        return (double)((a != 0) || (b != 0));
    default:
        return a + b;
    }
}

static alk_fva *argreduce(alk_trace *t, const alk_fva *a, const reduce_plan *plan, bool minimize);

alk_fva *alk_fva_reduce(alk_trace *t, alk_reduce_op op, const alk_fva *a, const int *axes,
                        size_t n_axes, bool keepdims) {
    if (failed(t) || a == NULL || !alk__fva_plain(t, a, "a reduction")) {
        return NULL;
    }
    if (op == ALK_REDUCE_MEAN) {
        alk_fva *r = alk_fva_reduce(t, ALK_REDUCE_SUM, a, axes, n_axes, false);
        if (r == NULL) {
            return NULL;
        }
        if (a->size == 0) {
            alk__trace_set_error(t, ALK_EINVAL, "mean of an empty array");
            return NULL;
        }
        /* quirk: keepdims is ignored; the factor is a double ratio (SCM unless a power of 2), so
         * a mean over 3 elements multiplies by an inexact 1/3 (spec quirk 19). */
        return alk_fva_binary_scalar(t, ALK_MUL, r, (double)r->size / (double)a->size);
    }
    const alk_fva *src = a;
    alk_reduce_op base = op;
    /* Logical reductions work on truth values: variables are reduced to one bit first, and
     * count_nonzero is the sum of those bits. */
    if (op == ALK_REDUCE_ALL || op == ALK_REDUCE_ANY || op == ALK_REDUCE_COUNT_NONZERO) {
        if (!a->numeric) {
            src = alk_fva_unary(t, ALK_TO_BOOL_ANY, a);
            if (src == NULL) {
                return NULL;
            }
        }
        if (op == ALK_REDUCE_COUNT_NONZERO) {
            base = ALK_REDUCE_SUM;
        }
    }
    reduce_plan plan;
    if (!plan_reduce(t, src, axes, n_axes, keepdims, &plan)) {
        return NULL;
    }
    if (plan.cols == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "reduction over an empty axis");
        return NULL;
    }
    if (op == ALK_REDUCE_ARGMAX || op == ALK_REDUCE_ARGMIN) {
        alk_fva *r = argreduce(t, src, &plan, op == ALK_REDUCE_ARGMIN);
        return r;
    }
    alk_fva *r = alk__fva_new(t, plan.out_ndim, plan.out_shape, src->numeric, src->hw);
    alk_fvar **row = alk__trace_alloc(t, plan.cols * sizeof(alk_fvar *));
    if (r == NULL || row == NULL) {
        return NULL;
    }
    for (size_t q = 0; q < plan.rows && !failed(t); q++) {
        if (src->numeric) {
            double acc = get(plan.flat, q * plan.cols).n;
            for (size_t c = 1; c < plan.cols; c++) {
                acc = numeric_reduce(base, acc, get(plan.flat, q * plan.cols + c).n);
            }
            r->nums[q] = acc;
            continue;
        }
        for (size_t c = 0; c < plan.cols; c++) {
            row[c] = get(plan.flat, q * plan.cols + c).v;
        }
        r->vars[q] = heap_reduce(t, reducer(base), row, plan.cols);
    }
    return done(t, r);
}

static alk_fva *argreduce(alk_trace *t, const alk_fva *a, const reduce_plan *plan, bool minimize) {
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "argmax/argmin needs an array of variables");
        return NULL;
    }
    alk_fva *r = alk__fva_new(t, plan->out_ndim, plan->out_shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t q = 0; q < plan->rows && !failed(t); q++) {
        /* Pairs (value, index) folded left to right (the pair is not an FVariable). */
        alk_fvar *val = get(plan->flat, q * plan->cols).v;
        alk_fvar *idx = alk__fv_const_hw(t, 0.0, a->hw);
        for (size_t c = 1; c < plan->cols && !failed(t); c++) {
            alk_fvar *bv = get(plan->flat, q * plan->cols + c).v;
            alk_fvar *bi = alk__fv_const_hw(t, (double)c, a->hw);
            alk_fvar *cmp = minimize ? alk_fv_le(t, val, bv) : alk_fv_ge(t, val, bv);
            alk_fvar *nv = alk_fv_mux(t, cmp, val, bv, NULL);
            idx = alk_fv_mux(t, cmp, idx, bi, NULL);
            val = nv;
        }
        r->vars[q] = idx;
    }
    return done(t, r);
}
