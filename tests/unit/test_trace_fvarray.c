/*
 * Arrays of symbolic variables (src/trace/fvarray.h): views and structure, the gathers (np.pad,
 * np.take, np.tile, image patches) and pending arrays, checked element by element against index
 * maps worked by hand from numpy's documented semantics (trace-alir.md §2.10-§2.12, frontends
 * §2.2). Values of whole computations are checked against numpy in
 * tests/python/test_trace_ops.py; this suite pins what an oracle on outputs cannot see: which
 * reference each element is, that structure makes no nodes, how a pad value is represented, which
 * tables are shared, and the error contract.
 *
 * The source array throughout is a (2, 3) array of six distinct variables v0..v5 (C order).
 */
#include "core/alloc.h"
#include "core/fxp.h"
#include "trace/fvarray.h"
#include "trace/trace_int.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static alk_trace *t;
static alk_fva *a; /* (2, 3) */
static alk_fvar *v[6];

static void setup(void) {
    cr_assert_eq(alk_trace_new(NULL, &t), ALK_OK);
    double lo[6], hi[6], st[6];
    for (int j = 0; j < 6; j++) {
        lo[j] = -j - 1;
        hi[j] = j + 1;
        st[j] = 0.25;
    }
    size_t shape[2] = {2, 3};
    a = alk_fva_from_lhs(t, 2, shape, lo, hi, st, 0);
    cr_assert_not_null(a);
    for (int j = 0; j < 6; j++) {
        v[j] = alk_fva_at(a, (size_t)j);
    }
}

static void teardown(void) {
    alk_trace_free(t);
}

TestSuite(trace_fvarray, .init = setup, .fini = teardown);

/* `r` has `ndim` axes of `shape` and its elements are v[want[j]] (C order); -1 = not checked. */
static void expect_elems(const alk_fva *r, size_t ndim, const size_t *shape, const int *want,
                         size_t n) {
    cr_assert_not_null(r, "%s", alk_trace_message(t));
    cr_assert_eq(alk_fva_ndim(r), ndim);
    for (size_t d = 0; d < ndim; d++) {
        cr_assert_eq(alk_fva_shape(r)[d], shape[d], "axis %zu: %zu, want %zu", d,
                     alk_fva_shape(r)[d], shape[d]);
    }
    cr_assert_eq(alk_fva_size(r), n);
    for (size_t j = 0; j < n; j++) {
        if (want[j] >= 0) {
            cr_expect_eq(alk_fva_at(r, j), v[want[j]], "element %zu is not v%d", j, want[j]);
        }
    }
}

static void expect_error(const char *needle) {
    cr_assert_eq(alk_trace_error(t), ALK_EINVAL, "%s", alk_trace_message(t));
    cr_expect(strstr(alk_trace_message(t), needle) != NULL, "message '%s' lacks '%s'",
              alk_trace_message(t), needle);
}

/* ---- views and structure ---- */

Test(trace_fvarray, views_move_references_only) {
    size_t before = alk_trace_n_vars(t);
    /* a.T[::-1, 1:] -> rows of a.T reversed: a.T = [[0,3],[1,4],[2,5]] */
    alk_index ix[2] = {ALK_SLICE(ALK_FV_NONE, ALK_FV_NONE, -1), ALK_SLICE(1, ALK_FV_NONE, 1)};
    alk_fva *r = alk_fva_index(t, alk_fva_transpose(t, a, NULL), ix, 2);
    expect_elems(r, 2, (size_t[]){3, 1}, (int[]){5, 4, 3}, 3);
    /* a[None, ..., -1] and broadcast_to (4, 2) of a[:, 0] */
    alk_index last[3] = {ALK_NEWAXIS, ALK_ELLIPSIS, ALK_AT(-1)};
    expect_elems(alk_fva_index(t, a, last, 3), 2, (size_t[]){1, 2}, (int[]){2, 5}, 2);
    alk_index col0[2] = {ALK_ALL, ALK_AT(0)};
    alk_fva *b = alk_fva_broadcast_to(t, alk_fva_index(t, a, col0, 2), 2, (size_t[]){4, 2});
    expect_elems(b, 2, (size_t[]){4, 2}, (int[]){0, 3, 0, 3, 0, 3, 0, 3}, 8);
    /* reshape of a transposed view copies in the view's C order */
    int64_t s32[2] = {3, 2};
    expect_elems(alk_fva_reshape(t, alk_fva_transpose(t, a, NULL), 2, s32), 2, (size_t[]){3, 2},
                 (int[]){0, 3, 1, 4, 2, 5}, 6);
    /* moveaxis, concatenate of views, stack, repeat, copy */
    expect_elems(alk_fva_moveaxis(t, a, 0, -1), 2, (size_t[]){3, 2}, (int[]){0, 3, 1, 4, 2, 5}, 6);
    alk_index rev[2] = {ALK_ALL, ALK_SLICE(ALK_FV_NONE, ALK_FV_NONE, -2)};
    alk_fva *parts[2] = {a, alk_fva_index(t, a, rev, 2)};
    expect_elems(alk_fva_concatenate(t, parts, 2, 1), 2, (size_t[]){2, 5},
                 (int[]){0, 1, 2, 2, 0, 3, 4, 5, 5, 3}, 10);
    alk_fva *rows[2] = {alk_fva_index(t, a, (alk_index[]){ALK_AT(1)}, 1),
                        alk_fva_index(t, a, (alk_index[]){ALK_AT(0)}, 1)};
    expect_elems(alk_fva_stack(t, rows, 2, -1), 2, (size_t[]){3, 2}, (int[]){3, 0, 4, 1, 5, 2}, 6);
    expect_elems(alk_fva_repeat(t, a, 2, 1), 2, (size_t[]){2, 6},
                 (int[]){0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}, 12);
    expect_elems(alk_fva_copy(t, alk_fva_transpose(t, a, NULL)), 2, (size_t[]){3, 2},
                 (int[]){0, 3, 1, 4, 2, 5}, 6);
    cr_expect_eq(alk_trace_n_vars(t), before, "structure made %zu variables",
                 alk_trace_n_vars(t) - before);
}

/* ---- np.pad ---- */

/* np.pad([v0, v1, v2], (2, 3), mode) for the mirrored and edge modes (numpy's documentation:
 * reflect [3 2 | 1 2 3 | 2 1], symmetric [2 1 | 1 2 3 | 3 2], wrap [2 3 | 1 2 3 | 1 2]). */
Test(trace_fvarray, pad_modes_on_a_row) {
    alk_fva *row = alk_fva_index(t, a, (alk_index[]){ALK_AT(0)}, 1);
    const int64_t p[1][2] = {{2, 3}};
    size_t n8[1] = {8};
    expect_elems(alk_fva_pad(t, row, p, ALK_PAD_REFLECT, 0), 1, n8, (int[]){2, 1, 0, 1, 2, 1, 0, 1},
                 8);
    expect_elems(alk_fva_pad(t, row, p, ALK_PAD_SYMMETRIC, 0), 1, n8,
                 (int[]){1, 0, 0, 1, 2, 2, 1, 0}, 8);
    expect_elems(alk_fva_pad(t, row, p, ALK_PAD_WRAP, 0), 1, n8, (int[]){1, 2, 0, 1, 2, 0, 1, 2},
                 8);
    expect_elems(alk_fva_pad(t, row, p, ALK_PAD_EDGE, 0), 1, n8, (int[]){0, 0, 0, 1, 2, 2, 2, 2},
                 8);
    /* A wide wrap is periodic: np.pad([0, 1, 2], (7, 0), 'wrap') = [2 0 1 2 0 1 2 | 0 1 2]. */
    const int64_t wide[1][2] = {{7, 0}};
    expect_elems(alk_fva_pad(t, row, wide, ALK_PAD_WRAP, 0), 1, (size_t[]){10},
                 (int[]){2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, 10);
}

/* The bit-exact trap of trace-alir §1.6/§2.12: a pad value enters as the FVArray constructor
 * makes a number, FVariable(c, c, 2^lsb(c)) with factor 1, one per padded element. */
Test(trace_fvarray, pad_value_is_a_constant_variable_with_factor_1) {
    const int64_t p[2][2] = {{1, 0}, {0, 1}};
    alk_fva *r = alk_fva_pad(t, a, p, ALK_PAD_CONSTANT, 0.1);
    expect_elems(r, 2, (size_t[]){3, 4}, (int[]){-1, -1, -1, -1, 0, 1, 2, -1, 3, 4, 5, -1}, 12);
    alk_fvar *c0 = alk_fva_at(r, 0), *c3 = alk_fva_at(r, 7);
    cr_assert_not_null(c0);
    cr_expect(alk_fv_is_const(c0));
    cr_expect_eq(alk_fv_low(c0), 0.1);
    cr_expect_eq(alk_fv_high(c0), 0.1);
    cr_expect_eq(alk_fv_factor(c0), 1.0, "factor %g (alk_fv_const would give 2^-27)",
                 alk_fv_factor(c0));
    cr_expect_eq(alk_fv_step(c0), ldexp(1.0, -27));
    cr_expect_neq(c0, c3, "each padded element is its own constant");
    cr_expect_eq(alk_fv_factor(alk_fv_const(t, 0.1)), ldexp(1.0, -27));
    /* alk_fva_to_vars makes numbers into the same kind of constant. */
    double c[2] = {0.1, 12};
    alk_fva *cv = alk_fva_to_vars(t, alk_fva_numbers(t, 1, (size_t[]){2}, c));
    cr_assert_not_null(cv);
    cr_expect(!alk_fva_is_numeric(cv));
    cr_expect(alk_fv_factor(alk_fva_at(cv, 0)) == 1.0 && alk_fv_factor(alk_fva_at(cv, 1)) == 1.0);
    cr_expect(alk_fv_step(alk_fva_at(cv, 1)) == 4.0 && alk_fv_low(alk_fva_at(cv, 1)) == 12);
    /* Numbers stay numbers. */
    double w[2] = {1, 2};
    alk_fva *n = alk_fva_pad(t, alk_fva_numbers(t, 1, (size_t[]){2}, w),
                             (const int64_t[][2]){{1, 2}}, ALK_PAD_CONSTANT, -4);
    cr_assert(alk_fva_is_numeric(n));
    double want[5] = {-4, 1, 2, -4, -4};
    for (size_t j = 0; j < 5; j++) {
        cr_expect_eq(alk_fva_num_at(n, j), want[j]);
    }
}

Test(trace_fvarray, pad_errors) {
    const int64_t neg[2][2] = {{0, -1}, {0, 0}};
    cr_expect_null(alk_fva_pad(t, a, neg, ALK_PAD_CONSTANT, 0));
    expect_error("out of range");
    alk_trace_free(t);
    setup();
    alk_index none[2] = {ALK_SLICE(0, 0, 1), ALK_ALL};
    const int64_t p[2][2] = {{1, 0}, {0, 0}};
    cr_expect_null(alk_fva_pad(t, alk_fva_index(t, a, none, 2), p, ALK_PAD_REFLECT, 0));
    expect_error("empty axis");
    alk_trace_free(t);
    setup();
    cr_expect_null(alk_fva_pad(t, a, p, ALK_PAD_CONSTANT, INFINITY));
    expect_error("not finite");
}

/* ---- np.take, np.tile ---- */

Test(trace_fvarray, take_and_tile) {
    int64_t ix[4] = {-1, 0, 2, -3};
    expect_elems(alk_fva_take(t, a, ix, 4, 1), 2, (size_t[]){2, 4}, (int[]){2, 0, 2, 0, 5, 3, 5, 3},
                 8);
    int64_t rows[3] = {1, 1, -2};
    alk_fva *tr = alk_fva_transpose(t, a, NULL);
    expect_elems(alk_fva_take(t, tr, rows, 3, 0), 2, (size_t[]){3, 2}, (int[]){1, 4, 1, 4, 1, 4},
                 6);
    /* np.tile(a, 2) -> (2, 6); np.tile(a, (2, 1, 1)) -> (2, 2, 3); np.tile(a[0], (2, 2)) */
    expect_elems(alk_fva_tile(t, a, 1, (size_t[]){2}), 2, (size_t[]){2, 6},
                 (int[]){0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}, 12);
    expect_elems(alk_fva_tile(t, a, 3, (size_t[]){2, 1, 1}), 3, (size_t[]){2, 2, 3},
                 (int[]){0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5}, 12);
    alk_fva *row = alk_fva_index(t, a, (alk_index[]){ALK_AT(1)}, 1);
    expect_elems(alk_fva_tile(t, row, 2, (size_t[]){2, 2}), 2, (size_t[]){2, 6},
                 (int[]){3, 4, 5, 3, 4, 5, 3, 4, 5, 3, 4, 5}, 12);
    expect_elems(alk_fva_tile(t, a, 2, (size_t[]){0, 1}), 2, (size_t[]){0, 3}, NULL, 0);
    int64_t bad[1] = {3};
    cr_expect_null(alk_fva_take(t, a, bad, 1, 1));
    expect_error("index 3 is out of bounds for axis 1 with size 3");
}

/* ---- image patches ---- */

Test(trace_fvarray, same_pads) {
    alk_patch_spec s = {.rank = 3, .size = {3, 2, 3}, .strides = {2, 2, 1}, .dilation = {1, 1, 2}};
    alk_patch_same_pads(&s, (size_t[]){5, 4, 7});
    /* n=5 k=3 s=2: out 3, total 2; n=4 k=2 s=2: total 0; n=7 k=3 d=2: total 4 */
    cr_expect(s.pads[0][0] == 1 && s.pads[0][1] == 1);
    cr_expect(s.pads[1][0] == 0 && s.pads[1][1] == 0);
    cr_expect(s.pads[2][0] == 2 && s.pads[2][1] == 2);
    alk_patch_spec u = {.rank = 1, .size = {4}, .strides = {1}, .dilation = {1}};
    alk_patch_same_pads(&u, (size_t[]){6});
    cr_expect(u.pads[0][0] == 1 && u.pads[0][1] == 2, "(%lld, %lld)", (long long)u.pads[0][0],
              (long long)u.pads[0][1]);
}

/* a as a batch of 2 one-channel rows of 3: kernel 2, stride 1, pads (1, 0): out 3, taps
 * (o - 1, o). As channels instead (1 row of 2 positions, 3 channels): taps major. */
Test(trace_fvarray, patches_layout) {
    int64_t s[3] = {2, 3, 1};
    alk_fva *img = alk_fva_reshape(t, a, 3, s);
    alk_patch_spec sp = {.rank = 1, .size = {2}, .strides = {1}, .dilation = {1}, .pads = {{1, 0}}};
    alk_fva *r = alk_fva_patches(t, img, &sp, 0);
    expect_elems(r, 3, (size_t[]){2, 3, 2}, (int[]){-1, 0, 0, 1, 1, 2, -1, 3, 3, 4, 4, 5}, 12);
    cr_expect(alk_fv_is_const(alk_fva_at(r, 0)) && alk_fv_low(alk_fva_at(r, 0)) == 0);
    int64_t c[3] = {1, 2, 3};
    alk_patch_spec k2 = {.rank = 1, .size = {2}, .strides = {1}, .dilation = {1}};
    expect_elems(alk_fva_patches(t, alk_fva_reshape(t, a, 3, c), &k2, 0), 3, (size_t[]){1, 1, 6},
                 (int[]){0, 1, 2, 3, 4, 5}, 6);
    /* Transposed, stride 2 on the rows of 3: out (3-1)*2 + 1 + 1 = 6, o reads o/2 when even. */
    alk_patch_spec tp = {
        .rank = 1, .size = {1}, .strides = {2}, .dilation = {1}, .output_padding = {1}};
    expect_elems(alk_fva_patches_transposed(t, img, &tp, 0), 3, (size_t[]){2, 6, 1},
                 (int[]){0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1}, 12);
}

Test(trace_fvarray, patches_errors) {
    alk_patch_spec sp = {.rank = 2, .size = {2, 2}, .strides = {1, 1}, .dilation = {1, 1}};
    cr_expect_null(alk_fva_patches(t, a, &sp, 0));
    expect_error("spatial axes");
    alk_trace_free(t);
    setup();
    int64_t s[3] = {2, 3, 1};
    alk_patch_spec zero = {.rank = 1, .size = {2}, .strides = {0}, .dilation = {1}};
    cr_expect_null(alk_fva_patches(t, alk_fva_reshape(t, a, 3, s), &zero, 0));
    expect_error("out of range");
    alk_trace_free(t);
    setup();
    alk_patch_spec big = {.rank = 1, .size = {5}, .strides = {1}, .dilation = {1}};
    cr_expect_null(alk_fva_patches(t, alk_fva_reshape(t, a, 3, s), &big, 0));
    expect_error("gives no output");
}

/* ---- pending arrays ---- */

Test(trace_fvarray, pending_state_survives_structure) {
    alk_fva *p = alk_fva_apply(t, a, ALK_FN_TANH);
    cr_assert(alk_fva_is_pending(p));
    cr_expect(!alk_fva_is_pending(a));
    cr_expect_null(alk_fva_at(p, 0), "a pending element is not a plain variable");
    alk_fvar *out[6];
    cr_expect_eq(alk_fva_ravel_to(p, out), ALK_EINVAL);
    alk_index ix[2] = {ALK_SLICE(ALK_FV_NONE, ALK_FV_NONE, -1), ALK_NEWAXIS};
    int64_t s[1] = {-1};
    alk_fva *views[] = {
        alk_fva_transpose(t, p, NULL),
        alk_fva_index(t, p, ix, 2),
        alk_fva_reshape(t, p, 1, s),
        alk_fva_broadcast_to(t, p, 3, (size_t[]){2, 2, 3}),
        alk_fva_repeat(t, p, 2, 0),
        alk_fva_copy(t, p),
        alk_fva_tile(t, p, 1, (size_t[]){2}),
        alk_fva_pad(t, p, (const int64_t[][2]){{1, 1}, {0, 0}}, ALK_PAD_CONSTANT, 0),
        alk_fva_concatenate(t, (alk_fva *[]){p, p}, 2, 0),
        alk_fva_stack(t, (alk_fva *[]){p, p}, 2, 0),
    };
    for (size_t j = 0; j < sizeof(views) / sizeof(views[0]); j++) {
        cr_assert_not_null(views[j], "%zu: %s", j, alk_trace_message(t));
        cr_expect(alk_fva_is_pending(views[j]), "structure %zu dropped the pending function", j);
    }
    /* Stored and read back, it is still the same pending array. */
    cr_assert_eq(alk_trace_name(t, "act", p), ALK_OK);
    cr_expect(alk_fva_is_pending(alk_trace_named(t, "act")));
    /* Quantizing gives plain lookups. */
    alk_fva *q = alk_fva_quantize(t, views[0], 1, 2, 4, ALK_WRAP, ALK_RND);
    cr_assert_not_null(q, "%s", alk_trace_message(t));
    cr_expect(!alk_fva_is_pending(q));
    cr_expect_eq(alk_fva_at(q, 0)->node->opr, ALK_FOPR_LOOKUP);
}

/* Tables are shared within one quantize call by (interval, format, function): the same variable
 * broadcast four times with per-element scale [1, 2, 1, 2] makes two tables. */
Test(trace_fvarray, tables_shared_by_interval_format_and_function) {
    alk_index first[2] = {ALK_AT(0), ALK_SLICE(0, 1, 1)};
    alk_fva *b = alk_fva_broadcast_to(t, alk_fva_index(t, a, first, 2), 1, (size_t[]){4});
    double sc[4] = {1, 2, 1, 2};
    alk_fva *p = alk_fva_binary(t, ALK_MUL, alk_fva_apply(t, b, ALK_FN_SIGMOID),
                                alk_fva_numbers(t, 1, (size_t[]){4}, sc));
    alk_fva *q = alk_fva_quantize(t, p, 0, 2, 6, ALK_WRAP, ALK_TRN);
    cr_assert_not_null(q, "%s", alk_trace_message(t));
    alk_ftable *tb[4];
    for (size_t j = 0; j < 4; j++) {
        tb[j] = alk_fva_at(q, j)->node->table;
        cr_assert_not_null(tb[j]);
    }
    cr_expect(tb[0] == tb[2] && tb[1] == tb[3] && tb[0] != tb[1]);
    /* A scalar composition keeps one function for all: one table. */
    alk_fva *q1 = alk_fva_quantize(
        t, alk_fva_binary_scalar(t, ALK_ADD, alk_fva_apply(t, b, ALK_FN_SIGMOID), 1), 0, 2, 6,
        ALK_WRAP, ALK_TRN);
    cr_assert_not_null(q1);
    cr_expect(alk_fva_at(q1, 0)->node->table == alk_fva_at(q1, 3)->node->table);
}

/* Numbers take a table function at once, in float64. */
Test(trace_fvarray, apply_on_numbers) {
    double x[2] = {0, 1};
    alk_fva *n = alk_fva_apply(t, alk_fva_numbers(t, 1, (size_t[]){2}, x), ALK_FN_SIGMOID);
    cr_assert(alk_fva_is_numeric(n));
    cr_expect_eq(alk_fva_num_at(n, 0), 0.5);
    cr_expect_eq(alk_fva_num_at(n, 1), 1 / (1 + exp(-1.0)));
    alk_fva *e = alk_fva_apply_with(t, alk_fva_numbers(t, 1, (size_t[]){2}, (double[]){-1, 2}),
                                    ALK_FN_ELU, 0.5);
    cr_expect_eq(alk_fva_num_at(e, 0), 0.5 * (exp(-1.0) - 1));
    cr_expect_eq(alk_fva_num_at(e, 1), 2);
}

Test(trace_fvarray, function_names) {
    for (int fn = ALK_FN_SIN; fn <= ALK_FN_RSQRT; fn++) {
        cr_expect_not_null(alk_unary_fn_name((alk_unary_fn)fn), "function %d has no name", fn);
    }
    cr_expect_str_eq(alk_unary_fn_name(ALK_FN_HARD_SIGMOID), "hard_sigmoid");
    cr_expect_str_eq(alk_unary_fn_name(ALK_FN_HARDSIGMOID_TORCH), "hardsigmoid");
    cr_expect_null(alk_unary_fn_name((alk_unary_fn)(ALK_FN_RSQRT + 1)));
}

/* Every non-structural use of a pending array fails and names the pending function. */
typedef alk_fva *(*misuse_fn)(alk_fva *p);

static alk_fva *use_matmul(alk_fva *p) {
    double w[3] = {1, 2, 3};
    return alk_fva_matmul(t, p, alk_fva_numbers(t, 1, (size_t[]){3}, w));
}
static alk_fva *use_add_vars(alk_fva *p) {
    return alk_fva_binary(t, ALK_ADD, p, a);
}
static alk_fva *use_reduce(alk_fva *p) {
    return alk_fva_reduce(t, ALK_REDUCE_SUM, p, NULL, 0, false);
}
static alk_fva *use_compare(alk_fva *p) {
    return alk_fva_binary_scalar(t, ALK_GREATER, p, 0);
}
static alk_fva *use_concat_plain(alk_fva *p) {
    return alk_fva_concatenate(t, (alk_fva *[]){p, a}, 2, 0);
}
static alk_fva *use_where(alk_fva *p) {
    return alk_fva_where(t, a, p, a);
}
static alk_fva *use_einsum(alk_fva *p) {
    return alk_fva_einsum(t, "ij,ij->i", p, a);
}
static alk_fva *use_sign(alk_fva *p) {
    return alk_fva_unary(t, ALK_SIGN, p);
}
static alk_fva *use_relu_format(alk_fva *p) {
    return alk_fva_relu(t, p, 2, ALK_FV_NONE, ALK_TRN);
}
static alk_fva *use_sort(alk_fva *p) {
    return alk_fva_sort(t, p, -1, ALK_SORT_BATCHER);
}
static alk_fva *use_trace(alk_fva *p) {
    alk_program *prog = NULL;
    alk_fva_trace(t, &a, 1, &p, 1, false, &prog);
    cr_expect_null(prog);
    return NULL;
}

Test(trace_fvarray, pending_misuse_names_the_function) {
    static const struct {
        misuse_fn fn;
        const char *what;
    } cases[] = {
        {use_matmul, "tanh: a table function must be quantized before matmul"},
        {use_add_vars, "tanh: a table function must be quantized before add"},
        {use_reduce, "before a reduction"},
        {use_compare, "before greater"},
        {use_concat_plain, "concatenated with a plain array"},
        {use_where, "before where"},
        {use_einsum, "before einsum"},
        {use_sign, "tanh: a table function must be quantized before"},
        {use_relu_format, "before an element-wise operation"},
        {use_sort, "before sort"},
        {use_trace, "before it is traced as an output"},
    };
    for (size_t j = 0; j < sizeof(cases) / sizeof(cases[0]); j++) {
        alk_fva *p = alk_fva_apply(t, a, ALK_FN_TANH);
        cr_expect_null(cases[j].fn(p), "case %zu succeeded", j);
        expect_error(cases[j].what);
        /* Sticky: nothing works afterwards. */
        cr_expect_null(alk_fva_copy(t, a));
        alk_trace_free(t);
        setup();
    }
}

static double cube_root(double x, void *user) {
    (void)user;
    return cbrt(x);
}

Test(trace_fvarray, pending_names_of_other_functions) {
    alk_fva *p = alk_fva_rdiv_scalar(t, 3, a);
    cr_assert(alk_fva_is_pending(p), "%s", alk_trace_message(t));
    cr_expect_null(alk_fva_reduce(t, ALK_REDUCE_MAX, p, NULL, 0, false));
    expect_error("3 / x: a table function");
    alk_trace_free(t);
    setup();
    alk_fva *c = alk_fva_apply_custom(t, a, cube_root, NULL);
    cr_expect_null(alk_fva_dot(t, c, c));
    expect_error("a plugin's table function");
}

Test(trace_fvarray, argument_errors) {
    cr_expect_null(alk_fva_apply_with(t, a, ALK_FN_SIGMOID, 2));
    expect_error("sigmoid takes no parameter");
    alk_trace_free(t);
    setup();
    cr_expect_null(alk_fva_apply(t, a, (alk_unary_fn)1000));
    expect_error("unknown table function");
    alk_trace_free(t);
    setup();
    alk_fva *p = alk_fva_apply(t, a, ALK_FN_EXP);
    cr_expect_null(alk_fva_quantize_each(t, p, (int[6]){0}, NULL, (int[6]){0}, ALK_WRAP, ALK_TRN));
    expect_error("all of k, i, f or none");
    alk_trace_free(t);
    setup();
    cr_expect_null(alk_fva_div_scalar(t, a, 0));
    expect_error("division by zero");
    alk_trace_free(t);
    setup();
    cr_expect_null(alk_fva_binary(t, ALK_DIVIDE, a, a));
    expect_error("division by an array of variables");
}

Test(trace_fvarray, quantize_kif_errors) {
    alk_fva *one = alk_fva_scalar(t, 1);
    alk_fva *half = alk_fva_scalar(t, 0.5);
    cr_expect_null(alk_fva_quantize_kif(t, a, one, half, one, ALK_WRAP, ALK_TRN));
    expect_error("i = 0.5");
    alk_trace_free(t);
    setup();
    alk_fva *k3 = alk_fva_numbers(t, 1, (size_t[]){2}, (double[]){1, 1});
    alk_fva *s1 = alk_fva_scalar(t, 1);
    cr_expect_null(alk_fva_quantize_kif(t, a, k3, s1, s1, ALK_WRAP, ALK_TRN));
    expect_error("broadcast");
    alk_trace_free(t);
    setup();
    cr_expect_null(alk_fva_quantize_kif(t, a, a, alk_fva_scalar(t, 1), alk_fva_scalar(t, 1),
                                        ALK_WRAP, ALK_TRN));
    expect_error("k must be a numeric array");
    alk_trace_free(t);
    setup();
    /* k + i + f <= 0 gives the zero constant. */
    alk_fva *z = alk_fva_quantize_kif(t, a, alk_fva_scalar(t, 1), alk_fva_scalar(t, -3),
                                      alk_fva_scalar(t, 2), ALK_WRAP, ALK_TRN);
    cr_assert_not_null(z, "%s", alk_trace_message(t));
    cr_expect(alk_fv_is_const(alk_fva_at(z, 4)) && alk_fv_low(alk_fva_at(z, 4)) == 0);
}

/* Out of memory anywhere in a pending pipeline (apply, per-element composition, pad, patches,
 * tables): ENOMEM, never a crash, nothing leaked. Small arena blocks make every step allocate. */
static int pipeline(void) {
    alk_trace_config cfg;
    alk_trace_config_init(&cfg);
    cfg.arena_block = 512;
    alk_trace *tt = NULL;
    int rv = alk_trace_new(&cfg, &tt);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t shape[3] = {1, 6, 2};
    int k[12] = {1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1}, i[12] = {2, 1, 2, 3, 0, 1, 2, 1, 2, 3, 0, 1};
    int f[12] = {2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1};
    alk_fva *x = alk_fva_from_kif(tt, 3, shape, k, i, f);
    double sc[2] = {0.3, -1.7};
    alk_fva *p = alk_fva_binary(tt, ALK_MUL, alk_fva_apply(tt, x, ALK_FN_GELU),
                                alk_fva_numbers(tt, 1, (size_t[]){2}, sc));
    const int64_t pads[3][2] = {{0, 0}, {2, 3}, {0, 0}};
    alk_fva *q = alk_fva_pad(tt, p, pads, ALK_PAD_REFLECT, 0);
    alk_patch_spec sp = {.rank = 1, .size = {3}, .strides = {2}, .dilation = {1}};
    alk_patch_same_pads(&sp, (size_t[]){11});
    alk_fva *out =
        alk_fva_quantize(tt, alk_fva_patches(tt, q, &sp, 0.5), 1, 3, 5, ALK_SAT, ALK_RND);
    alk_program *prog = NULL;
    rv = alk_fva_trace(tt, &x, 1, &out, 1, true, &prog);
    alk_program_free(prog);
    alk_trace_free(tt);
    return rv;
}

Test(trace_fvarray, allocation_failures, .timeout = 280) {
    unsigned long n = test_each_allocation_failing(pipeline);
    cr_assert_gt(n, 50, "the pipeline made only %lu allocations", n);
}
