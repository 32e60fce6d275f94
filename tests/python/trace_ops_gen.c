/*
 * Test helper for test_trace_ops.py: traces one named function of the reference's operation
 * tests (tests/test_ops.py, tests/test_ops_extend.py) with the C tracing API and writes the ALIR
 * program. The Python side evaluates the same function with numpy and compares `alkaidc run`.
 *
 * As in the reference's tests, the input is FVArray.from_kif(k, i, f) with the 8 formats below
 * (test_trace_ops.py has the same list), and the output is quantize(fn(x), 1, 12, 12).
 *
 * Usage: trace_ops_gen --list | trace_ops_gen NAME OUT.json
 */
#include "trace_ops_gen.h"
#include "alir/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const int K[8] = {1, 0, 1, 1, 0, 1, 0, 1};
static const int I[8] = {3, 2, -1, 4, 0, 2, 5, 1};
static const int F[8] = {2, 3, 4, 0, 5, 1, -1, 3};

/* The 8x8 weights shared with the Python side: multiples of 1/32 in [-4, 4). */
static double weight(int r, int c) {
    return (double)(((r * 8 + c) * 37 + 11) % 256 - 128) / 32.0;
}

static alk_fva *cols(alk_trace *t, alk_fva *x, int64_t start, int64_t stop) {
    alk_index ix[1] = {ALK_SLICE(start, stop, ALK_FV_NONE)};
    return alk_fva_index(t, x, ix, 1);
}

static alk_fva *numbers8(alk_trace *t, const double *v) {
    size_t n = 8;
    return alk_fva_numbers(t, 1, &n, v);
}

static alk_fva *w8x8(alk_trace *t) {
    double w[64];
    for (int r = 0; r < 8; r++) {
        for (int c = 0; c < 8; c++) {
            w[r * 8 + c] = weight(r, c);
        }
    }
    size_t shape[2] = {8, 8};
    return alk_fva_numbers(t, 2, shape, w);
}

static alk_fva *shift_add(alk_trace *t, alk_fva *x, double s0, double s1) {
    return alk_fva_binary(t, ALK_ADD, alk_fva_binary_scalar(t, ALK_MUL, cols(t, x, 0, 4), s0),
                          alk_fva_binary_scalar(t, ALK_MUL, cols(t, x, 4, 8), s1));
}
static alk_fva *shift_add0(alk_trace *t, alk_fva *x) {
    return shift_add(t, x, 0.5, 0.5);
}
static alk_fva *shift_add1(alk_trace *t, alk_fva *x) {
    return shift_add(t, x, 1.0, -2.0);
}
static alk_fva *shift_add2(alk_trace *t, alk_fva *x) {
    return shift_add(t, x, -3.5, 0.125);
}
static alk_fva *shift_add3(alk_trace *t, alk_fva *x) {
    return shift_add(t, x, -2.0, -2.0);
}

static double fn_sin(double x, void *u) {
    (void)u;
    return sin(x);
}
static double fn_tanh(double x, void *u) {
    (void)u;
    return tanh(x);
}
static double fn_tanh_sin(double x, void *u) {
    (void)u;
    return tanh(sin(x));
}
static alk_fva *lut_sin(alk_trace *t, alk_fva *x) {
    return alk_fva_map_fn(t, x, fn_sin, NULL, true, 1, 3, 3, ALK_SAT, ALK_RND_CONV);
}
static alk_fva *lut_tanh(alk_trace *t, alk_fva *x) {
    return alk_fva_map_fn(t, x, fn_tanh, NULL, true, 1, 3, 3, ALK_SAT, ALK_RND_CONV);
}
static alk_fva *lut_tanh_sin(alk_trace *t, alk_fva *x) {
    return alk_fva_map_fn(t, x, fn_tanh_sin, NULL, true, 1, 3, 3, ALK_SAT, ALK_RND_CONV);
}

/* relu(x * 2 * (arange(8) % 2) - 1 + arange(-8, 8, 2)) */
static alk_fva *relu_mix(alk_trace *t, alk_fva *x) {
    double m[8], o[8];
    for (int j = 0; j < 8; j++) {
        m[j] = j % 2;
        o[j] = -8 + 2 * j;
    }
    alk_fva *y =
        alk_fva_binary(t, ALK_MUL, alk_fva_binary_scalar(t, ALK_MUL, x, 2), numbers8(t, m));
    y = alk_fva_binary(t, ALK_ADD, alk_fva_binary_scalar(t, ALK_SUB, y, 1), numbers8(t, o));
    return alk_fva_relu(t, y, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
}
static alk_fva *relu_i1(alk_trace *t, alk_fva *x) {
    return alk_fva_relu(t, x, 1, ALK_FV_NONE, ALK_TRN);
}
static alk_fva *relu_f1_rnd(alk_trace *t, alk_fva *x) {
    return alk_fva_relu(t, x, ALK_FV_NONE, 1, ALK_RND);
}

static alk_fva *op_abs(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_ABSOLUTE, x);
}
static alk_fva *op_max(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_MAX, x, &ax, 1, false);
}
static alk_fva *op_min(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_MIN, x, &ax, 1, false);
}
/* np.where(x[..., :1] < x[..., 1:], x[..., :7], x[..., 1:]) */
static alk_fva *op_mux(alk_trace *t, alk_fva *x) {
    alk_fva *c = alk_fva_binary(t, ALK_LESS, cols(t, x, 0, 1), cols(t, x, 1, 8));
    return alk_fva_where(t, c, cols(t, x, 0, 7), cols(t, x, 1, 8));
}
static alk_fva *op_cmp(alk_trace *t, alk_fva *x) {
    return alk_fva_binary(t, ALK_GREATER_EQUAL, cols(t, x, 0, 4), cols(t, x, 4, 8));
}
/* np.where(x[..., :4] <= x[..., 4:], x[..., 4:] * -2, x[..., :4] * 7) */
static alk_fva *op_mux2(alk_trace *t, alk_fva *x) {
    alk_fva *c = alk_fva_binary(t, ALK_LESS_EQUAL, cols(t, x, 0, 4), cols(t, x, 4, 8));
    return alk_fva_where(t, c, alk_fva_binary_scalar(t, ALK_MUL, cols(t, x, 4, 8), -2),
                         alk_fva_binary_scalar(t, ALK_MUL, cols(t, x, 0, 4), 7));
}
static alk_fva *op_mul(alk_trace *t, alk_fva *x) {
    return alk_fva_binary(t, ALK_MUL, cols(t, x, 0, 4), cols(t, x, 4, 8));
}
static alk_fva *op_square(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_SQUARE, x);
}
static alk_fva *op_power3(alk_trace *t, alk_fva *x) {
    return alk_fva_power(t, cols(t, x, 0, 3), 3);
}
/* einsum('...i,...i->...i', x[..., :4], x[..., 4:]) */
static alk_fva *op_einsum0(alk_trace *t, alk_fva *x) {
    return alk_fva_einsum(t, "...i,...i->...i", cols(t, x, 0, 4), cols(t, x, 4, 8));
}
/* einsum('...ij,...jk->...ik', x.reshape(4, 2), x.reshape(2, 4)) for one sample */
static alk_fva *op_einsum1(alk_trace *t, alk_fva *x) {
    int64_t s42[2] = {4, 2}, s24[2] = {2, 4};
    return alk_fva_einsum(t, "ij,jk->ik", alk_fva_reshape(t, x, 2, s42),
                          alk_fva_reshape(t, x, 2, s24));
}
static alk_fva *op_cmvm0(alk_trace *t, alk_fva *x) {
    return alk_fva_einsum(t, "...i,ij->...j", x, w8x8(t));
}
static alk_fva *op_cmvm1(alk_trace *t, alk_fva *x) {
    return alk_fva_einsum(t, "...i,ij->...", x, w8x8(t));
}
static alk_fva *op_cmvm2(alk_trace *t, alk_fva *x) {
    return alk_fva_matmul(t, x, w8x8(t));
}
static alk_fva *op_cmvm3(alk_trace *t, alk_fva *x) {
    return alk_fva_einsum(t, "ij,...j->...i", w8x8(t), x);
}
static alk_fva *op_dot0(alk_trace *t, alk_fva *x) {
    return alk_fva_dot(t, x, w8x8(t));
}
/* x @ x-dependent variable matrix: (x[:, None] * x[None, :]) row sums via matmul */
static alk_fva *op_mmm(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4}, s42[2] = {4, 2};
    return alk_fva_matmul(t, alk_fva_reshape(t, x, 2, s24), alk_fva_reshape(t, x, 2, s42));
}
static alk_fva *op_maximum_w(alk_trace *t, alk_fva *x) {
    alk_index ix[2] = {ALK_NEWAXIS, ALK_ALL};
    return alk_fva_binary(t, ALK_MAXIMUM, alk_fva_index(t, x, ix, 2), w8x8(t));
}
static alk_fva *op_minimum_w(alk_trace *t, alk_fva *x) {
    alk_index ix[2] = {ALK_NEWAXIS, ALK_ALL};
    return alk_fva_binary(t, ALK_MINIMUM, alk_fva_index(t, x, ix, 2), w8x8(t));
}
/* x * 2.0 ** arange(-8, 8, 2) + 2 + 3.75 */
static alk_fva *op_multi_cadd(alk_trace *t, alk_fva *x) {
    double p[8];
    for (int j = 0; j < 8; j++) {
        p[j] = ldexp(1.0, -8 + 2 * j);
    }
    alk_fva *y = alk_fva_binary(t, ALK_MUL, x, numbers8(t, p));
    return alk_fva_binary_scalar(t, ALK_ADD, alk_fva_binary_scalar(t, ALK_ADD, y, 2), 3.75);
}
static alk_fva *op_prod(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_PROD, cols(t, x, 0, 3), &ax, 1, true);
}
static alk_fva *op_mean(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_MEAN, x, &ax, 1, true);
}
static alk_fva *op_sum(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_SUM, x, &ax, 1, true);
}
static alk_fva *op_clip0(alk_trace *t, alk_fva *x) {
    return alk_fva_clip(t, x, alk_fva_scalar(t, -1.0), alk_fva_scalar(t, 2.0));
}
static alk_fva *op_clip1(alk_trace *t, alk_fva *x) {
    return alk_fva_clip(t, cols(t, x, 0, 4), cols(t, x, 4, 8), alk_fva_scalar(t, 1.5));
}
/* np.where(x - 3 == 0, x * 2, x / 2) */
static alk_fva *op_where1(alk_trace *t, alk_fva *x) {
    alk_fva *c = alk_fva_binary_scalar(t, ALK_EQUAL, alk_fva_binary_scalar(t, ALK_SUB, x, 3), 0);
    return alk_fva_where(t, c, alk_fva_binary_scalar(t, ALK_MUL, x, 2),
                         alk_fva_div_scalar(t, x, 2));
}
/* np.where(x != 0, x, -1) */
static alk_fva *op_where2(alk_trace *t, alk_fva *x) {
    return alk_fva_where(t, alk_fva_binary_scalar(t, ALK_NOT_EQUAL, x, 0), x,
                         alk_fva_scalar(t, -1));
}
/* np.where(x >= 1.375, -1, x) */
static alk_fva *op_where3(alk_trace *t, alk_fva *x) {
    return alk_fva_where(t, alk_fva_binary_scalar(t, ALK_GREATER_EQUAL, x, 1.375),
                         alk_fva_scalar(t, -1), x);
}
static alk_fva *op_any(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_ANY, x, &ax, 1, true);
}
static alk_fva *op_all(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_ALL, x, &ax, 1, true);
}
static alk_fva *op_floor(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_FLOOR, x);
}
static alk_fva *op_ceil(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_CEIL, x);
}
static alk_fva *op_round(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_ROUND, x);
}
static alk_fva *op_sign(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_SIGN, x);
}
static alk_fva *op_signbit(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_SIGNBIT, x);
}
/* x * 3 - 2 + 1.5 - 0.5 * x - 0.25 * x + 0.5 */
static alk_fva *op_const_prop(alk_trace *t, alk_fva *x) {
    alk_fva *y = alk_fva_binary_scalar(t, ALK_SUB, alk_fva_binary_scalar(t, ALK_MUL, x, 3), 2);
    y = alk_fva_binary_scalar(t, ALK_ADD, y, 1.5);
    y = alk_fva_binary(t, ALK_SUB, y, alk_fva_rbinary_scalar(t, ALK_MUL, 0.5, x));
    y = alk_fva_binary(t, ALK_SUB, y, alk_fva_rbinary_scalar(t, ALK_MUL, 0.25, x));
    return alk_fva_binary_scalar(t, ALK_ADD, y, 0.5);
}
static alk_fva *op_argmax(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_ARGMAX, x, &ax, 1, false);
}
static alk_fva *op_argmin4(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_ARGMIN, cols(t, x, 0, 4), &ax, 1, true);
}
static alk_fva *op_count_nonzero(alk_trace *t, alk_fva *x) {
    int ax = -1;
    return alk_fva_reduce(t, ALK_REDUCE_COUNT_NONZERO, x, &ax, 1, true);
}
static double fn_tanh32_floor(double x, void *u) {
    (void)u;
    return floor(tanh(x) * 32);
}
static double fn_tanh32_rint(double x, void *u) {
    (void)u;
    return nearbyint(tanh(x) * 32);
}
static double fn_exp_floor(double x, void *u) {
    (void)u;
    return floor(exp(x * 0.03125));
}
static alk_fva *op_tanh_floor(alk_trace *t, alk_fva *x) {
    return alk_fva_map_fn(t, x, fn_tanh32_floor, NULL, false, 0, 0, 0, ALK_WRAP, ALK_TRN);
}
static alk_fva *op_tanh_rnd(alk_trace *t, alk_fva *x) {
    return alk_fva_map_fn(t, x, fn_tanh32_rint, NULL, false, 0, 0, 0, ALK_WRAP, ALK_TRN);
}
static alk_fva *op_exp_floor(alk_trace *t, alk_fva *x) {
    return alk_fva_map_fn(t, x, fn_exp_floor, NULL, false, 0, 0, 0, ALK_WRAP, ALK_TRN);
}
static alk_fva *op_sort8(alk_trace *t, alk_fva *x) {
    return alk_fva_sort(t, x, -1, ALK_SORT_BATCHER);
}
static alk_fva *op_sort7(alk_trace *t, alk_fva *x) {
    return alk_fva_sort(t, cols(t, x, 0, 7), -1, ALK_SORT_BATCHER);
}
static alk_fva *op_bitonic8(alk_trace *t, alk_fva *x) {
    return alk_fva_sort(t, x, -1, ALK_SORT_BITONIC);
}
static alk_fva *op_bitonic5(alk_trace *t, alk_fva *x) {
    return alk_fva_sort(t, cols(t, x, 0, 5), -1, ALK_SORT_BITONIC);
}
/* x.reshape(4, 2) sorted along axis 0, first 3 rows */
static alk_fva *op_sort_axis0(alk_trace *t, alk_fva *x) {
    int64_t s42[2] = {4, 2};
    alk_fva *y = alk_fva_sort(t, alk_fva_reshape(t, x, 2, s42), -2, ALK_SORT_BATCHER);
    alk_index ix[1] = {ALK_SLICE(ALK_FV_NONE, 3, ALK_FV_NONE)};
    return alk_fva_index(t, y, ix, 1);
}
/* views: x[::-3], x.reshape(2, 4).T, x[-1:-6:-2], broadcasting */
static alk_fva *op_views(alk_trace *t, alk_fva *x) {
    alk_index rev[1] = {ALK_SLICE(ALK_FV_NONE, ALK_FV_NONE, -3)};
    alk_index odd[1] = {ALK_SLICE(-1, -6, -2)};
    int64_t s24[2] = {2, 4};
    alk_fva *a = alk_fva_index(t, x, rev, 1);                               /* (3,) */
    alk_fva *b = alk_fva_index(t, x, odd, 1);                               /* (3,) */
    alk_fva *m = alk_fva_transpose(t, alk_fva_reshape(t, x, 2, s24), NULL); /* (4, 2) */
    alk_index col[2] = {ALK_ALL, ALK_NEWAXIS};
    alk_fva *s = alk_fva_binary(t, ALK_SUB, alk_fva_index(t, a, col, 2), b); /* (3, 3) */
    alk_fva *parts[2] = {alk_fva_ravel(t, s), alk_fva_ravel(t, m)};
    return alk_fva_concatenate(t, parts, 2, 0);
}
static alk_fva *op_stack_repeat(alk_trace *t, alk_fva *x) {
    alk_fva *parts[2] = {cols(t, x, 0, 4), alk_fva_unary(t, ALK_NEGATIVE, cols(t, x, 4, 8))};
    alk_fva *s = alk_fva_stack(t, parts, 2, 1);
    return alk_fva_repeat(t, s, 2, 0);
}
static alk_fva *op_sort_by(alk_trace *t, alk_fva *x) {
    return alk_fva_sort_by(t, cols(t, x, 4, 8), cols(t, x, 0, 4), ALK_SORT_BATCHER);
}
static alk_fva *op_histogram(alk_trace *t, alk_fva *x) {
    double edges[5] = {-4, -1, 0, 1.5, 6};
    return alk_fva_histogram(t, x, edges, 5, NULL);
}
static alk_fva *op_bitand(alk_trace *t, alk_fva *x) {
    return alk_fva_binary(t, ALK_BITWISE_AND, cols(t, x, 0, 4), cols(t, x, 4, 8));
}
static alk_fva *op_bitxor(alk_trace *t, alk_fva *x) {
    return alk_fva_binary(t, ALK_BITWISE_XOR, cols(t, x, 0, 4), cols(t, x, 4, 8));
}
static alk_fva *op_bitor(alk_trace *t, alk_fva *x) {
    return alk_fva_binary(t, ALK_BITWISE_OR, cols(t, x, 0, 4), cols(t, x, 4, 8));
}

static const trace_op ops[] = {
    {"shift_add0", shift_add0},
    {"shift_add1", shift_add1},
    {"shift_add2", shift_add2},
    {"shift_add3", shift_add3},
    {"lut_sin", lut_sin},
    {"lut_tanh", lut_tanh},
    {"lut_tanh_sin", lut_tanh_sin},
    {"relu_mix", relu_mix},
    {"relu_i1", relu_i1},
    {"relu_f1_rnd", relu_f1_rnd},
    {"abs", op_abs},
    {"max", op_max},
    {"min", op_min},
    {"mux", op_mux},
    {"cmp", op_cmp},
    {"mux2", op_mux2},
    {"mul", op_mul},
    {"square", op_square},
    {"power3", op_power3},
    {"einsum0", op_einsum0},
    {"einsum1", op_einsum1},
    {"cmvm0", op_cmvm0},
    {"cmvm1", op_cmvm1},
    {"cmvm2", op_cmvm2},
    {"cmvm3", op_cmvm3},
    {"dot0", op_dot0},
    {"mmm", op_mmm},
    {"maximum_w", op_maximum_w},
    {"minimum_w", op_minimum_w},
    {"multi_cadd", op_multi_cadd},
    {"prod", op_prod},
    {"mean", op_mean},
    {"sum", op_sum},
    {"clip0", op_clip0},
    {"clip1", op_clip1},
    {"where1", op_where1},
    {"where2", op_where2},
    {"where3", op_where3},
    {"any", op_any},
    {"all", op_all},
    {"floor", op_floor},
    {"ceil", op_ceil},
    {"round", op_round},
    {"sign", op_sign},
    {"signbit", op_signbit},
    {"const_propagation", op_const_prop},
    {"argmax", op_argmax},
    {"argmin4", op_argmin4},
    {"count_nonzero", op_count_nonzero},
    {"tanh_floor", op_tanh_floor},
    {"tanh_rnd", op_tanh_rnd},
    {"exp_floor", op_exp_floor},
    {"sort8", op_sort8},
    {"sort7", op_sort7},
    {"bitonic8", op_bitonic8},
    {"bitonic5", op_bitonic5},
    {"sort_axis0", op_sort_axis0},
    {"views", op_views},
    {"stack_repeat", op_stack_repeat},
    {"sort_by", op_sort_by},
    {"histogram", op_histogram},
    {"bitand", op_bitand},
    {"bitxor", op_bitxor},
    {"bitor", op_bitor},
};

/*
 * quantize(x, k, i, f, overflow, round) for the formats of tests/test_ops.py ((1, 3, 3),
 * (0, 4, -2), (1, 0, 0)) plus (0, 4, 2) and (1, 2, -1), in every mode. (1, 0, 0) holds no value
 * but 0 under SAT_SYM, so those three cases would compare constants and are left out.
 */
#define N_Q_FORMATS 5
static const int q_formats[N_Q_FORMATS][3] = {
    {1, 3, 3}, {0, 4, -2}, {1, 0, 0}, {0, 4, 2}, {1, 2, -1}};
static const char *const q_overflow[3] = {"WRAP", "SAT", "SAT_SYM"};
static const char *const q_round[3] = {"TRN", "RND", "RND_CONV"};
static int q_case = -1;

static bool q_case_listed(int c) {
    const int *kif = q_formats[c / 9];
    return !(kif[0] == 1 && kif[1] == 0 && kif[2] == 0 && c / 3 % 3 == ALK_SAT_SYM);
}

static alk_fva *op_quantize(alk_trace *t, alk_fva *x) {
    const int *kif = q_formats[q_case / 9];
    return alk_fva_quantize(t, x, kif[0], kif[1], kif[2], (alk_overflow)(q_case / 3 % 3),
                            (alk_round)(q_case % 3));
}

static void quantize_name(int c, char *buf, size_t n) {
    const int *kif = q_formats[c / 9];
    snprintf(buf, n, "quantize_%d_%d_%d_%s_%s", kif[0], kif[1], kif[2], q_overflow[c / 3 % 3],
             q_round[c % 3]);
}

int main(int argc, char **argv) {
    size_t n_ops = sizeof(ops) / sizeof(ops[0]);
    char name[64];
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int c = 0; c < N_Q_FORMATS * 9; c++) {
            if (q_case_listed(c)) {
                quantize_name(c, name, sizeof(name));
                printf("%s\n", name);
            }
        }
        for (size_t j = 0; j < n_ops; j++) {
            printf("%s\n", ops[j].name);
        }
        for (size_t j = 0; j < n_array_ops; j++) {
            printf("%s\n", array_ops[j].name);
        }
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: trace_ops_gen --list | trace_ops_gen NAME OUT.json\n");
        return 2;
    }
    op_fn fn = NULL;
    for (int c = 0; c < N_Q_FORMATS * 9; c++) {
        quantize_name(c, name, sizeof(name));
        if (q_case_listed(c) && strcmp(name, argv[1]) == 0) {
            q_case = c;
            fn = op_quantize;
        }
    }
    for (size_t j = 0; j < n_ops; j++) {
        if (strcmp(ops[j].name, argv[1]) == 0) {
            fn = ops[j].fn;
        }
    }
    for (size_t j = 0; j < n_array_ops; j++) {
        if (strcmp(array_ops[j].name, argv[1]) == 0) {
            fn = array_ops[j].fn;
        }
    }
    if (fn == NULL) {
        fprintf(stderr, "unknown function %s\n", argv[1]);
        return 2;
    }
    alk_trace *t = NULL;
    if (alk_trace_new(NULL, &t) != ALK_OK) {
        return 1;
    }
    size_t shape[1] = {8};
    alk_fva *x = alk_fva_from_kif(t, 1, shape, K, I, F);
    alk_fva *out = alk_fva_quantize(t, fn(t, x), 1, 12, 12, ALK_WRAP, ALK_TRN);
    alk_program *program = NULL;
    int rv = alk_fva_trace(t, &x, 1, &out, 1, true, &program);
    alk_diag diag = {{0}};
    if (rv == ALK_OK) {
        rv = alk_alir_write_file(program, argv[2], &diag);
    }
    if (rv != ALK_OK) {
        fprintf(stderr, "%s: %s %s\n", argv[1], alk_trace_message(t), diag.message);
    }
    alk_program_free(program);
    alk_trace_free(t);
    return rv == ALK_OK ? 0 : 1;
}
