/*
 * Scalar symbolic variables (src/trace/fvar.c) against the worked examples of
 * shared/spec/trace-alir.md §1 (each value below is quoted from the spec, which checked it on the
 * reference), plus the heap order of §2.4 and the error contract (EINVAL with a message, sticky).
 *
 * x = (-8, 7.5, 0.5) and y = (0, 3, 1) throughout, with the converters' hwconf (1, 1, -1).
 */
#include "trace/comb.h"
#include "alir/interp.h"
#include "alir/json.h"
#include "trace/passes.h"
#include "core/alloc.h"
#include "core/vec.h"
#include "trace/fvarray.h"
#include "trace/trace_int.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static alk_trace *t;
static alk_fvar *x, *y;

static void setup(void) {
    cr_assert_eq(alk_trace_new(NULL, &t), ALK_OK);
    x = alk_fv_new(t, -8, 7.5, 0.5, 0);
    y = alk_fv_new(t, 0, 3, 1, 0);
}

static void teardown(void) {
    alk_trace_free(t);
}

TestSuite(trace_fvar, .init = setup, .fini = teardown);

static void expect_interval(const alk_fvar *v, double lo, double hi, double step) {
    cr_assert_not_null(v, "%s", alk_trace_message(t));
    cr_expect_eq(alk_fv_low(v), lo, "low %.17g, want %.17g", alk_fv_low(v), lo);
    cr_expect_eq(alk_fv_high(v), hi, "high %.17g, want %.17g", alk_fv_high(v), hi);
    cr_expect_eq(alk_fv_step(v), step, "step %.17g, want %.17g", alk_fv_step(v), step);
}

/* Traces `out` against x, y without optimisation; the caller frees the program. */
static alk__comb *trace_raw(alk_fvar *out) {
    alk_fvar *in[2] = {x, y};
    alk__comb *c = NULL;
    cr_assert_eq(alk__trace_comb(t, in, 2, &out, 1, &c), ALK_OK, "%s", alk_trace_message(t));
    return c;
}

/* The first op with `opcode` in program order, or NULL. */
static const alk__cop *find_op(const alk__comb *c, int opcode) {
    for (size_t j = 0; j < c->n_ops; j++) {
        if (c->ops[j].opcode == opcode) {
            return &c->ops[j];
        }
    }
    return NULL;
}

static size_t count_ops(const alk__comb *c, int opcode) {
    size_t n = 0;
    for (size_t j = 0; j < c->n_ops; j++) {
        n += c->ops[j].opcode == opcode;
    }
    return n;
}

/* §1.2 */
Test(trace_fvar, affine_cancellation) {
    /* (3 (x + y)) - x is tracked as 2x + 3y. */
    alk_fvar *s = alk_fv_add(t, x, y);
    alk_fvar *three = alk_fv_mul_const(t, s, 3);
    alk_fvar *r = alk_fv_sub(t, three, x);
    expect_interval(r, -16, 24, 1);
    /* x - x is the exact constant 0. */
    cr_expect(alk_fv_is_const(alk_fv_sub(t, x, x)));
}

/* §1.4, §1.5 */
Test(trace_fvar, latency_and_kif) {
    alk_fvar *a = alk_fv_add(t, x, alk_fv_mul_const(t, y, 4));
    cr_expect_eq(alk_fv_latency(a), 1.119140625);
    alk_fvar *b = alk_fv_sub(t, x, y);
    cr_expect_eq(alk_fv_latency(b), 1.169921875);
    int k, i, f;
    alk_fv_kif(x, &k, &i, &f);
    cr_expect(k == 1 && i == 3 && f == 1);
    alk_fv_kif(y, &k, &i, &f);
    cr_expect(k == 0 && i == 2 && f == 0);
    alk_fv_kif(alk_fv_new(t, -3, 5, 1, 0), &k, &i, &f);
    cr_expect(k == 1 && i == 3 && f == 0);
    alk_fv_kif(alk_fv_const(t, 12), &k, &i, &f);
    cr_expect(k == 0 && i == 4 && f == -2);
    /* The zero constant: step 2^127, kif (0, 127, -127). */
    alk_fvar *zero = alk_fv_const(t, 0);
    cr_expect_eq(alk_fv_step(zero), ldexp(1.0, 127));
    alk_fv_kif(zero, &k, &i, &f);
    cr_expect(k == 0 && i == 127 && f == -127, "(%d, %d, %d)", k, i, f);
}

/* §1.6 */
Test(trace_fvar, constants) {
    alk_fvar *c = alk_fv_const(t, 0.1);
    cr_expect_eq(alk_fv_factor(c), ldexp(1.0, -27));
    cr_expect_eq(alk_fv_factor(alk_fv_const(t, 12)), 4.0);
}

/* §1.7 */
Test(trace_fvar, constant_addition) {
    alk_fvar *a = alk_fv_add_const(t, x, 1.25);
    expect_interval(a, -6.75, 8.75, 0.25);
    alk__comb *c = trace_raw(a);
    const alk__cop *op = find_op(c, 4);
    cr_assert_not_null(op);
    cr_expect(op->data[0] == 5 && op->data[1] == 2, "data (%lld, %lld)", (long long)op->data[0],
              (long long)op->data[1]);
    alk__comb_free(c);
    /* (x + 1.25) + 0.5 is one cadd of 1.75 on x. */
    c = trace_raw(alk_fv_add_const(t, a, 0.5));
    cr_expect_eq(count_ops(c, 4), 1);
    op = find_op(c, 4);
    cr_expect(op->data[0] == 7 && op->data[1] == 2);
    alk__comb_free(c);
    /* x > 2 builds x - 2 = cadd (-1, -1). */
    c = trace_raw(alk_fv_gt_const(t, x, 2));
    op = find_op(c, 4);
    cr_assert_not_null(op);
    cr_expect(op->data[0] == -1 && op->data[1] == -1);
    alk__comb_free(c);
}

/* A constant 2^140 times the value's scale cannot be encoded through float32: a limit, not a
 * garbage constant (nor an int64 overflow). */
Test(trace_fvar, constant_addition_beyond_float32) {
    alk_fvar *tiny = alk_fv_mul_const(t, x, 0x1p-140);
    cr_expect_null(alk_fv_add_const(t, tiny, 1.5));
    cr_expect_eq(alk_trace_error(t), ALK_ELIMIT);
    cr_expect(strstr(alk_trace_message(t), "beyond float32's range") != NULL, "%s",
              alk_trace_message(t));
}

/* §1.8 */
Test(trace_fvar, constant_multiplication) {
    alk_fvar *a = alk_fv_mul_const(t, x, 3);
    expect_interval(a, -24, 22.5, 0.5);
    cr_expect_eq(alk_fv_factor(a), 4.0);
    alk__comb *c = trace_raw(a);
    cr_expect_eq(count_ops(c, 0) + count_ops(c, 1), 1);
    const alk__cop *op = find_op(c, 1);
    cr_assert_not_null(op);
    cr_expect_eq(op->data[0], -2);
    alk__comb_free(c);
    /* x * -5.25: t = x + 2x, u = t - t/8, output shift 1, negated: factor -2. */
    alk_fvar *b = alk_fv_mul_const(t, x, -5.25);
    cr_expect_eq(alk_fv_factor(b), -2.0);
    expect_interval(b, -39.375, 42, 0.125);
    c = trace_raw(b);
    cr_expect_eq(count_ops(c, 0), 1);
    cr_expect_eq(count_ops(c, 1), 1);
    cr_expect_eq(find_op(c, 0)->data[0], 1);
    cr_expect_eq(find_op(c, 1)->data[0], -3);
    alk__comb_free(c);
    /* Powers of two are free: same node. */
    cr_expect(alk_fv_same_node(alk_fv_mul_const(t, x, -0.25), x));
    cr_expect(alk_fv_same_node(alk_fv_neg(t, x), x));
}

/* §1.9 */
Test(trace_fvar, products) {
    expect_interval(alk_fv_mul(t, x, x), 0, 64, 0.25);
    expect_interval(alk_fv_mul(t, x, y), -24, 22.5, 0.5);
    /* Only the very same reference squares (quirk 16). */
    alk_fvar *x2 = alk_fv_mul_const(t, x, 1);
    expect_interval(alk_fv_mul(t, x, x2), -60, 64, 0.25);
    expect_interval(alk_fv_pow(t, x, 2), 0, 64, 0.25);
}

/* §1.10 */
Test(trace_fvar, relu) {
    expect_interval(alk_fv_relu(t, x, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN), 0, 7.5, 0.5);
    expect_interval(alk_fv_relu(t, x, 2, ALK_FV_NONE, ALK_TRN), 0, 3.5, 0.5);
    expect_interval(alk_fv_relu(t, x, ALK_FV_NONE, 0, ALK_TRN), 0, 7, 1);
    expect_interval(alk_fv_relu(t, x, ALK_FV_NONE, 0, ALK_RND), 0, 8, 1);
}

typedef struct qcase {
    int k, i, f;
    alk_overflow ov;
    alk_round rd;
    double lo, hi, step; /* NAN lo: the input itself */
} qcase;

/* §1.11, the table of results on x (all checked on the reference). */
Test(trace_fvar, quantize_table) {
    static const qcase cases[] = {
        {1, 3, 1, ALK_WRAP, ALK_TRN, NAN, 0, 0},
        {1, 3, 1, ALK_WRAP, ALK_RND, NAN, 0, 0},
        {1, 3, 1, ALK_WRAP, ALK_RND_CONV, NAN, 0, 0},
        {1, 3, 1, ALK_SAT, ALK_TRN, NAN, 0, 0},
        {1, 3, 1, ALK_SAT_SYM, ALK_TRN, -7.5, 7.5, 0.5},
        {1, 2, 1, ALK_WRAP, ALK_TRN, -4, 3.5, 0.5},
        {1, 2, 1, ALK_WRAP, ALK_RND, -4, 3.5, 0.5},
        {1, 2, 1, ALK_WRAP, ALK_RND_CONV, -4, 3.5, 0.5},
        {1, 2, 1, ALK_SAT, ALK_TRN, -4, 3.5, 0.5},
        {1, 2, 1, ALK_SAT_SYM, ALK_TRN, -3.5, 3.5, 0.5},
        {0, 3, 0, ALK_WRAP, ALK_TRN, 0, 7, 1},
        {0, 3, 0, ALK_WRAP, ALK_RND, 0, 7, 1},
        {0, 3, 0, ALK_SAT, ALK_TRN, 0, 7, 1},
        {0, 3, 0, ALK_SAT_SYM, ALK_TRN, 0, 7, 1},
        {1, 4, -1, ALK_WRAP, ALK_TRN, -8, 6, 2},
        {1, 4, -1, ALK_WRAP, ALK_RND, -8, 8, 2},
        {1, 4, -1, ALK_WRAP, ALK_RND_CONV, -8, 10, 2},
        {1, 4, -1, ALK_SAT, ALK_TRN, -8, 6, 2},
        {1, 4, -1, ALK_SAT_SYM, ALK_TRN, -8, 6, 2},
        {1, 1, 2, ALK_WRAP, ALK_TRN, -2, 1.5, 0.5},
        {1, 1, 2, ALK_WRAP, ALK_RND, -2, 1.5, 0.5},
        {1, 1, 2, ALK_WRAP, ALK_RND_CONV, -2, 1.5, 0.5},
        {1, 1, 2, ALK_SAT, ALK_TRN, -2, 1.75, 0.25},
        {1, 1, 2, ALK_SAT_SYM, ALK_TRN, -1.75, 1.75, 0.25},
    };
    for (size_t j = 0; j < sizeof(cases) / sizeof(cases[0]); j++) {
        const qcase *c = &cases[j];
        alk_fvar *q = alk_fv_quantize(t, x, c->k, c->i, c->f, c->ov, c->rd);
        cr_assert_not_null(q, "case %zu: %s", j, alk_trace_message(t));
        if (isnan(c->lo)) {
            cr_expect_eq(q, x, "case %zu: expected x itself", j);
            continue;
        }
        cr_expect(alk_fv_low(q) == c->lo && alk_fv_high(q) == c->hi && alk_fv_step(q) == c->step,
                  "case %zu (%d, %d, %d): (%g, %g, %g)", j, c->k, c->i, c->f, alk_fv_low(q),
                  alk_fv_high(q), alk_fv_step(q));
    }
    /* (0, 3, 0) RND_CONV: the round-half-even network, factor 2. */
    alk_fvar *q = alk_fv_quantize(t, x, 0, 3, 0, ALK_WRAP, ALK_RND_CONV);
    cr_expect_eq(alk_fv_factor(q), 2.0);
    /* SAT TRN to (1, 2, 1): cadd, mux, cadd, mux. */
    alk__comb *c = trace_raw(alk_fv_quantize(t, x, 1, 2, 1, ALK_SAT, ALK_TRN));
    cr_expect_eq(count_ops(c, 4), 2);
    cr_expect_eq(count_ops(c, 6), 2);
    alk__comb_free(c);
    /* Constants are quantized as numbers, Q(c): an unsigned target wraps modulo 2^i (the
     * reference's step 6 wraps modulo 2^(i+1): 5 and -3 stayed 5), round-half-even and the
     * saturating modes give a constant (the reference's bit network gave 0 for the fourth). */
    struct {
        double c;
        int k, i, f;
        alk_overflow overflow;
        alk_round round;
        double want;
    } consts[] = {
        {5, 0, 2, 0, ALK_WRAP, ALK_TRN, 1},
        {-3, 0, 2, 0, ALK_WRAP, ALK_TRN, 1},
        {6.625, 0, 1, 5, ALK_WRAP, ALK_RND, 0.625},
        {-2.140625, 1, 1, 0, ALK_WRAP, ALK_RND_CONV, -2},
        {-1.4375, 1, 1, 2, ALK_SAT_SYM, ALK_RND_CONV, -1.5}, /* -5.75 steps: -6 */
        {-1.9921875, 1, 3, 0, ALK_SAT, ALK_RND_CONV, -2},    /* a pruned column's bias */
        {2.5, 1, 3, 0, ALK_WRAP, ALK_RND_CONV, 2},           /* tie to even */
        {1.28125, 0, 2, -1, ALK_SAT, ALK_RND_CONV, 2},       /* 0.640625 steps: 1 */
        {9.75, 1, 2, 1, ALK_SAT, ALK_TRN, 3.5},              /* saturates */
    };
    for (size_t j = 0; j < sizeof(consts) / sizeof(consts[0]); j++) {
        alk_fvar *cq = alk_fv_quantize(t, alk_fv_const(t, consts[j].c), consts[j].k, consts[j].i,
                                       consts[j].f, consts[j].overflow, consts[j].round);
        cr_expect(alk_fv_low(cq) == consts[j].want && alk_fv_high(cq) == consts[j].want,
                  "constant %g: (%g, %g), want %g", consts[j].c, alk_fv_low(cq), alk_fv_high(cq),
                  consts[j].want);
    }
}

/* §1.12 */
Test(trace_fvar, bit_views) {
    /* x: kif (1, 3, 1), 5 bits. bits[:-1] drops the LSB; bits[-1:] keeps it. */
    expect_interval(alk_fv_bits(t, x, ALK_FV_NONE, -1), -8, 7, 1);
    expect_interval(alk_fv_bits(t, x, -1, ALK_FV_NONE), 0, 0.5, 0.5);
    expect_interval(alk_fv_bits(t, x, -3, ALK_FV_NONE), 0, 3.5, 0.5);
}

/* §1.13 */
Test(trace_fvar, msb_and_comparisons) {
    alk_fvar *v = alk_fv_new(t, -7.5, 11, 0.5, 0);
    alk_fvar *m = alk_fv_msb(t, v);
    cr_expect_eq(alk_fv_factor(m), 1.0 / 16);
    expect_interval(m, 0, 1, 1);
    /* x > y: sub, negation, msb. */
    alk_fvar *g = alk_fv_gt(t, x, y);
    expect_interval(g, 0, 1, 1);
    alk__comb *c = trace_raw(g);
    cr_expect_eq(count_ops(c, 1), 1);
    cr_expect_eq(count_ops(c, -2), 1);
    cr_expect_eq(count_ops(c, 3), 1);
    alk__comb_free(c);
    /* x > -8 (= x.low): x ^ -8 (bit op, shift 3), then any. */
    c = trace_raw(alk_fv_gt_const(t, x, -8));
    const alk__cop *op = find_op(c, 10);
    cr_assert_not_null(op);
    cr_expect_eq(op->data[0], 3);
    cr_expect_eq(op->data[1], 2);
    cr_expect_eq(count_ops(c, 9), 1);
    alk__comb_free(c);
}

/* §1.14 */
Test(trace_fvar, mux_max_min_abs) {
    alk_fvar *m = alk_fv_max(t, x, y);
    expect_interval(m, 0, 7.5, 0.5);
    cr_expect_eq(alk_fv_factor(m), 1.0);
    expect_interval(alk_fv_abs(t, x), 0, 8, 0.5);
    alk_fvar *n = alk_fv_min_const(t, x, 0);
    expect_interval(n, -8, 0, 0.5);
    cr_expect(signbit(alk_fv_high(n)), "min(x, 0) keeps -0.0 (quirk 22)");
    /* max(x, y) traces to a subtraction and a mux reading (y, x, x - y). */
    alk__comb *c = trace_raw(m);
    const alk__cop *op = find_op(c, 6);
    cr_assert_not_null(op);
    cr_expect_eq(c->ops[op->addr[0]].opcode, -1);
    cr_expect_eq(c->ops[op->addr[0]].data[0], 1);
    cr_expect_eq(c->ops[op->addr[1]].data[0], 0);
    cr_expect_eq(c->ops[op->addr[2]].opcode, 1);
    alk__comb_free(c);
}

/* §1.15 */
Test(trace_fvar, lookup_tables) {
    /* y takes 4 values; equal entries fold to a constant, two entries become a mux. */
    double same[4] = {1.5, 1.5, 1.5, 1.5};
    cr_expect(alk_fv_is_const(alk_fv_lookup_values(t, y, same, 4)));
    alk_fvar *bit = alk_fv_new(t, 0, 1, 1, 0);
    double two[2] = {3, -1};
    alk_fvar *r = alk_fv_lookup_values(t, bit, two, 2);
    expect_interval(r, -1, 3, 1);
    double vals[4] = {0.5, -0.25, 1, NAN};
    alk_fvar *l = alk_fv_lookup_values(t, y, vals, 4);
    expect_interval(l, -0.25, 1, 0.25);
    /* A size mismatch is refused with a message. */
    cr_expect_null(alk_fv_lookup_values(t, y, vals, 3));
    cr_expect_eq(alk_trace_error(t), ALK_EINVAL);
    cr_expect(strstr(alk_trace_message(t), "3 entries") != NULL, "%s", alk_trace_message(t));
}

/* §1.16 */
Test(trace_fvar, bit_ops) {
    alk_fvar *n = alk_fv_not(t, x);
    expect_interval(n, -8, 7.5, 0.5);
    cr_expect_eq(alk_fv_not(t, n)->node, x->node, "~~x is x");
    expect_interval(alk_fv_and(t, x, y), 0, 7.5, 0.5);
    expect_interval(alk_fv_xor(t, x, y), -8, 7.5, 0.5);
    /* bug?: all() of a strictly positive variable is 0. */
    cr_expect(alk_fv_is_const(alk_fv_all(t, alk_fv_new(t, 1, 7, 1, 0))));
}

/* §1.17 */
Test(trace_fvar, unquantized_inputs) {
    alk_fvar *in = alk_fv_input(t);
    cr_expect_null(alk_fv_add(t, in, y));
    cr_expect_eq(alk_trace_error(t), ALK_EINVAL);
    cr_expect(strstr(alk_trace_message(t), "unquantized") != NULL);
}

Test(trace_fvar, input_bounds_accumulate) {
    alk_fvar *in = alk_fv_input(t);
    alk_fvar *a = alk_fv_quantize(t, in, 1, 3, 1, ALK_WRAP, ALK_TRN);
    alk_fvar *b = alk_fv_quantize(t, in, 0, 5, 0, ALK_WRAP, ALK_TRN);
    expect_interval(a, -8, 7.5, 0.5);
    expect_interval(b, 0, 31, 1);
    expect_interval(in, -8, 31, 0.5);
    cr_expect_null(alk_fv_quantize(t, in, 1, 3, 1, ALK_SAT, ALK_TRN));
    cr_expect_eq(alk_trace_error(t), ALK_EINVAL);
}

/* §1.18 */
Test(trace_fvar, worked_example_table) {
    expect_interval(alk_fv_add(t, x, alk_fv_mul_const(t, y, 4)), -8, 19.5, 0.5);
    expect_interval(alk_fv_sub(t, x, y), -11, 7.5, 0.5);
    alk_fvar *g = alk_fv_gt(t, x, y);
    cr_expect_eq(alk_fv_factor(g), 1.0 / 16);
    alk__comb *c = trace_raw(alk_fv_abs(t, x));
    const alk__cop *op = find_op(c, 6);
    cr_assert_not_null(op);
    /* mux(-x, x, x): the negation of x, x, and x as condition. */
    cr_expect_eq(c->ops[op->addr[0]].opcode, -2);
    cr_expect_eq(op->addr[1], op->addr[2]);
    alk__comb_free(c);
}

/* §2.4: latencies 0, 0, 1.0, 0.4, 0.6 and k+i = 3, 3, 2, 4, 3 give
 * ((a4 + (a0 + a1)) + (a3 + a2)). */
Test(trace_fvar, heap_reduce_order) {
    alk_fvar *a[5] = {
        alk_fv_new(t, -4, 3.5, 0.5, 0.0), alk_fv_new(t, -4, 3.5, 0.5, 0.0),
        alk_fv_new(t, -2, 1.5, 0.5, 1.0), alk_fv_new(t, -8, 7, 1, 0.4),
        alk_fv_new(t, -4, 3.5, 0.5, 0.6),
    };
    size_t n = 5;
    alk_fva *arr = alk_fva_from_vars(t, 1, &n, a);
    alk_fva *s = alk_fva_reduce(t, ALK_REDUCE_SUM, arr, NULL, 0, false);
    cr_assert_not_null(s, "%s", alk_trace_message(t));
    alk_fvar *r = alk_fva_at(s, 0);
    alk_fnode *top = r->node;
    cr_assert_eq(top->opr, ALK_FOPR_VADD);
    alk_fnode *left = top->from[0]->node, *right = top->from[1]->node;
    cr_assert_eq(left->n_from, 2);
    cr_expect_eq(left->from[0]->node, a[4]->node);
    alk_fnode *inner = left->from[1]->node;
    cr_expect(inner->from[0]->node == a[0]->node && inner->from[1]->node == a[1]->node);
    cr_expect(right->from[0]->node == a[3]->node && right->from[1]->node == a[2]->node);
}

Test(trace_fvar, errors_are_sticky) {
    cr_expect_null(alk_fv_quantize(t, x, 2, 3, 1, ALK_WRAP, ALK_TRN));
    cr_expect_eq(alk_trace_error(t), ALK_EINVAL);
    cr_expect(strstr(alk_trace_message(t), "k=2") != NULL, "%s", alk_trace_message(t));
    /* Later calls do nothing. */
    cr_expect_null(alk_fv_add(t, x, y));
    cr_expect_null(alk_fv_new(t, 0, 1, 1, 0));
}

Test(trace_fvar, bad_intervals) {
    cr_expect_null(alk_fv_new(t, 3, 1, 1, 0));
    cr_expect_eq(alk_trace_error(t), ALK_EINVAL);
}

Test(trace_fvar, impossible_widths) {
    cr_expect_null(alk_fv_quantize(t, x, 1, 5000, 0, ALK_WRAP, ALK_TRN));
    cr_expect_eq(alk_trace_error(t), ALK_EINVAL);
}

/* JSON text of `p` (borrowed), owned by the caller. */
static char *program_json(const alk_program *p) {
    alk_buf json;
    alk_buf_init(&json);
    cr_assert_eq(alk_alir_to_json(p, &json), ALK_OK);
    return json.data;
}

static char *scm_json(double c, int k) {
    alk_scm_options o;
    alk_scm_options_init(&o);
    o.k = k;
    o.mode = ALK_CMVM_COMPAT;
    alk_program *p = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_scm_solve(c, &o, &p, &diag), ALK_OK, "%s", diag.message);
    char *text = program_json(p);
    alk_program_free(p);
    return text;
}

/* Spec cmvm.md §8.3: a product by a non-dyadic constant is scm_solve(c, k = 2) with the default
 * interval. 1395 is solved differently with k = 1, so the digit budget is visible. */
Test(trace_fvar, scalar_product_uses_scm_with_k_2) {
    char *k1 = scm_json(1395.0, 1), *k2 = scm_json(1395.0, 2);
    cr_assert_str_neq(k1, k2, "1395 must tell k = 1 from k = 2");
    alk_trace *trace = NULL;
    cr_assert_eq(alk_trace_new(NULL, &trace), ALK_OK);
    alk_program *p = NULL;
    bool borrowed = false;
    cr_assert_eq(alk__scm_program(trace, 1395.0, &p, &borrowed), ALK_OK, "%s",
                 alk_trace_message(trace));
    char *got = program_json(p);
    cr_expect_str_eq(got, k2);
    if (!borrowed) {
        alk_program_free(p);
    }
    alk_trace_free(trace);
    alk_free(got);
    alk_free(k1);
    alk_free(k2);
}

/*
 * Beyond the reference (src/trace/affine.c): a sum's step is never finer than its operands'.
 * u = x / 9 has a 53-bit coefficient, so 5u - u - 4u cancels to a double rounding residue near
 * 4e-16 rather than 0; the reference's step from that residue would be some 2^-50, far finer
 * than any grid the adders produce (the ELIMIT of a Linear after a 3x3 average pool).
 */
Test(trace_fvar, sum_step_not_finer_than_operands) {
    alk_fvar *u = alk_fv_mul_const(t, x, 1.0 / 9);
    alk_fvar *ab = alk_fv_add(t, alk_fv_mul_const(t, u, 5), alk_fv_mul_const(t, u, -1));
    alk_fvar *c = alk_fv_mul_const(t, u, -4);
    alk_fvar *s = alk_fv_add(t, ab, c);
    cr_assert_not_null(s, "%s", alk_trace_message(t));
    cr_assert(!alk_fv_is_const(s));
    cr_expect_lt(fabs(alk_fv_low(s)), 1e-15);
    cr_expect_lt(fabs(alk_fv_high(s)), 1e-15);
    cr_expect_eq(alk_fv_step(s), fmin(alk_fv_step(ab), alk_fv_step(c)), "step %g", alk_fv_step(s));
    /* Negation and power-of-two scaling carry the grid along; a constant added keeps it unless
     * its own grid is finer. */
    cr_expect_eq(alk_fv_step(alk_fv_mul_const(t, s, -4)), 4 * alk_fv_step(s));
    cr_expect_eq(alk_fv_step(alk_fv_add_const(t, s, 0.5)), alk_fv_step(s));
    cr_expect_eq(alk_fv_step(alk_fv_add_const(t, s, 0x1p-40)), 0x1p-40);
}

/*
 * Beyond the reference (src/trace/affine.c): an adder keeps float32's precision of its value.
 * x / 0.3 multiplies by the double 1/0.3 through SCM adders; the first, x - 5x * 2^-53, has the
 * coefficient 1 - 5 * 2^-53, which float32 rounds to 1: the reference's step is x's own 0.5, and
 * the adder's floor made x - 0.5 of every positive x (the product off by whole steps).
 */
Test(trace_fvar, adders_keep_float32_precision) {
    alk_fvar *q = alk_fv_div_const(t, x, 0.3);
    cr_assert_not_null(q, "%s", alk_trace_message(t));
    alk__comb *c = trace_raw(q);
    const alk__cop *first = NULL;
    for (size_t j = 0; j < c->n_ops && first == NULL; j++) {
        if (c->ops[j].opcode == 1 && c->ops[j].data[0] == -53) {
            first = &c->ops[j];
        }
    }
    cr_assert_not_null(first, "no x - 5x * 2^-53 adder");
    /* |x - 5x * 2^-53| < 8: at least 23 fraction bits below 2^3. */
    cr_expect_leq(first->qint.step, 0x1p-20, "step %g", first->qint.step);
    alk__comb_free(c);
    expect_interval(alk_fv_div_const(t, x, 0.25), -32, 30, 2); /* dyadic: exact, as before */
}

/*
 * The retrace (§3.8.7) replays a mux by the meaning the program gives it: the MSB of its
 * condition in the condition op's own format. Here c = x + 0.5 is declared signed (-8, 7.5), so
 * "c < 0 ? 3 : x" is always x; replayed, c's interval is (0.5, 7.5), unsigned, whose MSB is the
 * 4 bit, and the reference's retrace then selected 3 for x >= 4.
 */
Test(trace_fvar, retrace_keeps_a_mux_condition) {
    alk__comb *c = NULL;
    cr_assert_eq(alk__comb_new(1, 1, &c), ALK_OK);
    alk__cop ops[4] = {
        {.opcode = -1, .n_data = 1, .data = {0}, .qint = {0, 7, 1}},
        {.opcode = 4,
         .n_addr = 1,
         .addr = {0},
         .n_data = 2,
         .data = {1, 1},
         .qint = {-8, 7.5, 0.5}},
        {.opcode = 5, .n_data = 1, .data = {3}, .qint = {3, 3, 1}},
        {.opcode = 6, .n_addr = 3, .addr = {2, 0, 1}, .n_data = 1, .data = {0}, .qint = {0, 7, 1}},
    };
    for (size_t j = 0; j < 4; j++) {
        cr_assert_eq(alk__comb_push(c, &ops[j]), ALK_OK);
    }
    c->out_idxs[0] = 3;
    cr_assert_eq(alk__pass_retrace(t, &c), ALK_OK, "%s", alk_trace_message(t));
    alk_program *p = NULL;
    cr_assert_eq(alk__comb_to_program(c, &p), ALK_OK);
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(p, &interp, &diag), ALK_OK, "%s", diag.message);
    for (double v = 0; v <= 7; v += 1) {
        double got;
        cr_assert_eq(alk_interp_run(interp, &v, 1, &got, &diag), ALK_OK, "%s", diag.message);
        cr_expect_eq(got, v, "x = %g gives %g", v, got);
    }
    alk_interp_free(interp);
    alk_program_free(p);
    alk__comb_free(c);
}
