/*
 * trace_ops_gen's functions for issue 11 (test_trace_ops.py holds their numpy twins, written from
 * trace-alir.md §2.10-§2.12 and frontends §2.2-§2.3): pending lookup tables (activations,
 * composition with scalars and per-element numbers, max/min/clip/relu/abs on the float values,
 * floor/ceil/round, quantize_kif), quantize_kif with broadcast formats in every mode, np.pad in
 * every mode, np.take, np.tile and image patches (forward and transposed, 1-D to 3-D).
 *
 * Several functions return a pending array: trace_ops_gen's final quantize(..., 1, 12, 12) then
 * builds the tables, as the next layer's input quantizer would.
 */
#include "trace_ops_gen.h"

#include <string.h>

/* ---- helpers ---- */

static alk_fva *nums(alk_trace *t, size_t ndim, const size_t *shape, const double *v) {
    return alk_fva_numbers(t, ndim, shape, v);
}

static alk_fva *reshaped(alk_trace *t, alk_fva *x, size_t ndim, const int64_t *shape) {
    return alk_fva_reshape(t, x, ndim, shape);
}

static alk_fva *mul(alk_trace *t, alk_fva *a, double c) {
    return alk_fva_binary_scalar(t, ALK_MUL, a, c);
}

static alk_fva *add(alk_trace *t, alk_fva *a, double c) {
    return alk_fva_binary_scalar(t, ALK_ADD, a, c);
}

static alk_fva *quant(alk_trace *t, alk_fva *a, int k, int i, int f, alk_overflow o, alk_round r) {
    return alk_fva_quantize(t, a, k, i, f, o, r);
}

static const double SCALE8[8] = {0.37, -1.3, 2.5, 0.1, -0.75, 3.3, 1.0, -2.2};
static const double OFFSET8[8] = {0.5, -0.25, 0.1, 1.7, -3.0, 0.33, 0.0, 2.0};

static alk_fva *vec8(alk_trace *t, const double *v) {
    size_t n = 8;
    return nums(t, 1, &n, v);
}

/* ---- pending tables ---- */

/* np.round(np.tanh(x) * 16) */
static alk_fva *pend_round_tanh16(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_ROUND, mul(t, alk_fva_apply(t, x, ALK_FN_TANH), 16));
}
/* quantize(sigmoid(x) * 3 - 1, 1, 2, 6, WRAP, RND) */
static alk_fva *pend_sigmoid3m1(alk_trace *t, alk_fva *x) {
    alk_fva *s = alk_fva_apply(t, x, ALK_FN_SIGMOID);
    return quant(t, alk_fva_binary_scalar(t, ALK_SUB, mul(t, s, 3), 1), 1, 2, 6, ALK_WRAP, ALK_RND);
}
/* quantize(tanh(x) * SCALE8 + OFFSET8, 1, 4, 6, SAT, RND_CONV): BatchNorm after an activation */
static alk_fva *pend_bn(alk_trace *t, alk_fva *x) {
    alk_fva *s = alk_fva_binary(t, ALK_MUL, alk_fva_apply(t, x, ALK_FN_TANH), vec8(t, SCALE8));
    return quant(t, alk_fva_binary(t, ALK_ADD, s, vec8(t, OFFSET8)), 1, 4, 6, ALK_SAT,
                 ALK_RND_CONV);
}
/* OFFSET8[:4] * sigmoid(x.reshape(2, 4)) - [[0.25], [-1.5]], left to the final quantizer */
static alk_fva *pend_bn2d(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4};
    size_t s4 = 4, s21[2] = {2, 1};
    double off[2] = {0.25, -1.5};
    alk_fva *s = alk_fva_apply(t, reshaped(t, x, 2, s24), ALK_FN_SIGMOID);
    s = alk_fva_binary(t, ALK_MUL, nums(t, 1, &s4, OFFSET8), s);
    return alk_fva_binary(t, ALK_SUB, s, nums(t, 2, s21, off));
}
/* quantize(abs(sin(x) - 0.25), 0, 1, 7) */
static alk_fva *pend_abs(alk_trace *t, alk_fva *x) {
    alk_fva *s = alk_fva_binary_scalar(t, ALK_SUB, alk_fva_apply(t, x, ALK_FN_SIN), 0.25);
    return quant(t, alk_fva_unary(t, ALK_ABSOLUTE, s), 0, 1, 7, ALK_WRAP, ALK_TRN);
}
/* relu(tanh(x * 0.125) - 0.3), left to the final quantizer */
static alk_fva *pend_relu(alk_trace *t, alk_fva *x) {
    alk_fva *s =
        alk_fva_binary_scalar(t, ALK_SUB, alk_fva_apply(t, mul(t, x, 0.125), ALK_FN_TANH), 0.3);
    return alk_fva_relu(t, s, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
}
/* quantize(clip(tanh(x * 0.25) * 2, -0.5, OFFSET8), 1, 1, 6, SAT_SYM, RND) */
static alk_fva *pend_clip(alk_trace *t, alk_fva *x) {
    alk_fva *s = mul(t, alk_fva_apply(t, mul(t, x, 0.25), ALK_FN_TANH), 2);
    alk_fva *c = alk_fva_clip(t, s, alk_fva_scalar(t, -0.5), vec8(t, OFFSET8));
    return quant(t, c, 1, 1, 6, ALK_SAT_SYM, ALK_RND);
}
/* quantize(minimum(0.75, maximum(SCALE8 * 0.25, sigmoid(x))), 0, 0, 8, WRAP, RND_CONV) */
static alk_fva *pend_maxmin(alk_trace *t, alk_fva *x) {
    double w[8];
    for (int j = 0; j < 8; j++) {
        w[j] = SCALE8[j] * 0.25;
    }
    alk_fva *m = alk_fva_binary(t, ALK_MAXIMUM, vec8(t, w), alk_fva_apply(t, x, ALK_FN_SIGMOID));
    return quant(t, alk_fva_rbinary_scalar(t, ALK_MINIMUM, 0.75, m), 0, 0, 8, ALK_WRAP,
                 ALK_RND_CONV);
}
/* np.floor(sigmoid(x) * 10) */
static alk_fva *pend_floor(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_FLOOR, mul(t, alk_fva_apply(t, x, ALK_FN_SIGMOID), 10));
}
/* np.ceil(tanh(x) * 8 + 0.5) */
static alk_fva *pend_ceil(alk_trace *t, alk_fva *x) {
    return alk_fva_unary(t, ALK_CEIL, add(t, mul(t, alk_fva_apply(t, x, ALK_FN_TANH), 8), 0.5));
}
/* quantize(2 - (-exp(x * 0.0625)) / 4, 1, 4, 8, WRAP, RND) */
static alk_fva *pend_neg_sub(alk_trace *t, alk_fva *x) {
    alk_fva *e = alk_fva_unary(t, ALK_NEGATIVE, alk_fva_apply(t, mul(t, x, 0.0625), ALK_FN_EXP));
    return quant(t, alk_fva_rbinary_scalar(t, ALK_SUB, 2, alk_fva_div_scalar(t, e, 4)), 1, 4, 8,
                 ALK_WRAP, ALK_RND);
}
/* quantize((abs(x) * 0.25) ** 1.5, 0, 6, 4, SAT, RND) */
static alk_fva *pend_pow(alk_trace *t, alk_fva *x) {
    alk_fva *a = mul(t, alk_fva_unary(t, ALK_ABSOLUTE, x), 0.25);
    return quant(t, alk_fva_power_real(t, a, 1.5), 0, 6, 4, ALK_SAT, ALK_RND);
}
/* quantize(tanh(x) ** 3, 1, 0, 10), quantize(np.square(sin(x)), 0, 0, 10) */
static alk_fva *pend_pow3(alk_trace *t, alk_fva *x) {
    return quant(t, alk_fva_power(t, alk_fva_apply(t, x, ALK_FN_TANH), 3), 1, 0, 10, ALK_WRAP,
                 ALK_TRN);
}
static alk_fva *pend_square(alk_trace *t, alk_fva *x) {
    return quant(t, alk_fva_unary(t, ALK_SQUARE, alk_fva_apply(t, x, ALK_FN_SIN)), 0, 0, 10,
                 ALK_WRAP, ALK_RND_CONV);
}
/* quantize(3 / (abs(x) + 1), 0, 2, 8, WRAP, RND_CONV) */
static alk_fva *pend_rdiv(alk_trace *t, alk_fva *x) {
    alk_fva *d = add(t, alk_fva_unary(t, ALK_ABSOLUTE, x), 1);
    return quant(t, alk_fva_rdiv_scalar(t, 3, d), 0, 2, 8, ALK_WRAP, ALK_RND_CONV);
}
/* SCALE8 / (abs(x) + 0.5): a table per element, left to the final quantizer */
static alk_fva *pend_divide_arr(alk_trace *t, alk_fva *x) {
    alk_fva *d = add(t, alk_fva_unary(t, ALK_ABSOLUTE, x), 0.5);
    return alk_fva_binary(t, ALK_DIVIDE, vec8(t, SCALE8), d);
}
/* quantize(tanh(x) / 3, 1, 1, 10, WRAP, RND_CONV): a true division, not * (1 / 3) */
static alk_fva *pend_div(alk_trace *t, alk_fva *x) {
    return quant(t, alk_fva_div_scalar(t, alk_fva_apply(t, x, ALK_FN_TANH), 3), 1, 1, 10, ALK_WRAP,
                 ALK_RND_CONV);
}
/* A plugin's own table function: the identity. */
static double identity(double x, void *user) {
    (void)user;
    return x;
}
/* np.ceil(x / 0.35) and np.floor(x / 0.35) concatenated: 5.25 / 0.35 is 15.000000000000002,
 * 5.25 * (1 / 0.35) is 15.0, so only a true division passes. */
static alk_fva *pend_div_ceil(alk_trace *t, alk_fva *x) {
    alk_fva *q = alk_fva_div_scalar(t, alk_fva_apply_custom(t, x, identity, NULL), 0.35);
    alk_fva *parts[2] = {alk_fva_unary(t, ALK_CEIL, q), alk_fva_unary(t, ALK_FLOOR, q)};
    return alk_fva_concatenate(t, parts, 2, 0);
}
/* tanh(x[:1] broadcast to 8) * SCALE8 + OFFSET8, left to the final quantizer: equal intervals,
 * different constants, so the tables must differ */
static alk_fva *pend_bn_shared(alk_trace *t, alk_fva *x) {
    alk_index first[1] = {ALK_SLICE(ALK_FV_NONE, 1, ALK_FV_NONE)};
    size_t n = 8;
    alk_fva *b = alk_fva_broadcast_to(t, alk_fva_index(t, x, first, 1), 1, &n);
    alk_fva *s = alk_fva_binary(t, ALK_MUL, alk_fva_apply(t, b, ALK_FN_TANH), vec8(t, SCALE8));
    return alk_fva_binary(t, ALK_ADD, s, vec8(t, OFFSET8));
}
/* quantize(tanh(sin(x) * 2), 1, 1, 8, SAT, TRN) */
static alk_fva *pend_chain(alk_trace *t, alk_fva *x) {
    alk_fva *s = mul(t, alk_fva_apply(t, x, ALK_FN_SIN), 2);
    return quant(t, alk_fva_apply(t, s, ALK_FN_TANH), 1, 1, 8, ALK_SAT, ALK_TRN);
}
/* quantize(sigmoid(-x * 0.5), 0, 0, 9, WRAP, RND): tables of negated references (raw-node order) */
static alk_fva *pend_negfactor(alk_trace *t, alk_fva *x) {
    alk_fva *n = alk_fva_unary(t, ALK_NEGATIVE, mul(t, x, 0.5));
    return quant(t, alk_fva_apply(t, n, ALK_FN_SIGMOID), 0, 0, 9, ALK_WRAP, ALK_RND);
}
/* quantize_kif(tanh(x.reshape(2, 4) * 0.25) * 3, k (1, 4), i (2, 1), f (1, 4), SAT, RND) */
static alk_fva *pend_kif(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4};
    size_t s14[2] = {1, 4}, s21[2] = {2, 1};
    double k[4] = {1, 0, 1, 1}, i[2] = {2, -2}, f[4] = {1, 3, 2, 4};
    alk_fva *p = mul(t, alk_fva_apply(t, mul(t, reshaped(t, x, 2, s24), 0.25), ALK_FN_TANH), 3);
    return alk_fva_quantize_kif(t, p, nums(t, 2, s14, k), nums(t, 2, s21, i), nums(t, 2, s14, f),
                                ALK_SAT, ALK_RND);
}

/* A pending array stored under a name, read back and re-used through views and gathers before
 * it is quantized: np.tile(np.pad(softsign(x).reshape(4, 2).T, ((1, 0), (0, 2)), 'constant',
 * constant_values=0.75), (1, 2)) * 3 */
static alk_fva *pend_stored(alk_trace *t, alk_fva *x) {
    alk_trace_name(t, "activation", alk_fva_apply(t, x, ALK_FN_SOFTSIGN));
    const alk_fva *p = alk_trace_named(t, "activation");
    int64_t s42[2] = {4, 2};
    const int64_t pads[2][2] = {{1, 0}, {0, 2}};
    size_t reps[2] = {1, 2};
    alk_fva *v = alk_fva_transpose(t, alk_fva_reshape(t, p, 2, s42), NULL);
    alk_fva *q = alk_fva_tile(t, alk_fva_pad(t, v, pads, ALK_PAD_CONSTANT, 0.75), 2, reps);
    return mul(t, q, 3);
}
/* extract_patches(gelu(x).reshape(1, 8, 1), 3, strides 2, 'same', pad -0.5), left pending */
static alk_fva *pend_patches(alk_trace *t, alk_fva *x) {
    int64_t s[3] = {1, 8, 1};
    alk_patch_spec spec = {.rank = 1, .size = {3}, .strides = {2}, .dilation = {1}};
    size_t n = 8;
    alk_patch_same_pads(&spec, &n);
    return alk_fva_patches(t, reshaped(t, alk_fva_apply(t, x, ALK_FN_GELU), 3, s), &spec, -0.5);
}

/* Every activation of frontends §2.3/§4.5 on x / 16: quantize(fn(x / 16), 1, 7, 8, SAT,
 * RND_CONV). rsqrt reads abs(x) / 16 + 0.125 (its domain). */
static alk_fva *activation(alk_trace *t, alk_fva *x, alk_unary_fn fn) {
    alk_fva *in = mul(t, x, 0.0625);
    if (fn == ALK_FN_RSQRT) {
        in = add(t, mul(t, alk_fva_unary(t, ALK_ABSOLUTE, x), 0.0625), 0.125);
    }
    return quant(t, alk_fva_apply(t, in, fn), 1, 7, 8, ALK_SAT, ALK_RND_CONV);
}
#define ACTIVATION(name, fn)                                                                       \
    static alk_fva *act_##name(alk_trace *t, alk_fva *x) {                                         \
        return activation(t, x, fn);                                                               \
    }
ACTIVATION(sigmoid, ALK_FN_SIGMOID)
ACTIVATION(silu, ALK_FN_SILU)
ACTIVATION(gelu, ALK_FN_GELU)
ACTIVATION(gelu_tanh, ALK_FN_GELU_TANH)
ACTIVATION(elu, ALK_FN_ELU)
ACTIVATION(selu, ALK_FN_SELU)
ACTIVATION(softplus, ALK_FN_SOFTPLUS)
ACTIVATION(softsign, ALK_FN_SOFTSIGN)
ACTIVATION(hard_sigmoid, ALK_FN_HARD_SIGMOID)
ACTIVATION(hard_silu, ALK_FN_HARD_SILU)
ACTIVATION(hardsigmoid, ALK_FN_HARDSIGMOID_TORCH)
ACTIVATION(hardswish, ALK_FN_HARDSWISH_TORCH)
ACTIVATION(log_sigmoid, ALK_FN_LOG_SIGMOID)
ACTIVATION(rsqrt, ALK_FN_RSQRT)
ACTIVATION(exponential, ALK_FN_EXP)
ACTIVATION(reciprocal, ALK_FN_RECIPROCAL)
/* elu with alpha 0.5 */
static alk_fva *act_elu_alpha(alk_trace *t, alk_fva *x) {
    return quant(t, alk_fva_apply_with(t, mul(t, x, 0.0625), ALK_FN_ELU, 0.5), 1, 7, 8, ALK_SAT,
                 ALK_RND_CONV);
}

/* ---- quantize_kif with broadcast formats, every mode ---- */

static alk_overflow kif_overflow;
static alk_round kif_round;

/* quantize(x.reshape(2, 4), k (1, 4), i (2, 1), f (1, 4)): row 2 has k + i + f <= 0 at [0]. */
static alk_fva *kif_case(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4};
    size_t s14[2] = {1, 4}, s21[2] = {2, 1};
    double k[4] = {1, 0, 1, 1}, i[2] = {2, -2}, f[4] = {1, 3, 2, 4};
    return alk_fva_quantize_kif(t, reshaped(t, x, 2, s24), nums(t, 2, s14, k), nums(t, 2, s21, i),
                                nums(t, 2, s14, f), kif_overflow, kif_round);
}
#define KIF(ov, rd)                                                                                \
    static alk_fva *kif_##ov##_##rd(alk_trace *t, alk_fva *x) {                                    \
        kif_overflow = ALK_##ov;                                                                   \
        kif_round = ALK_##rd;                                                                      \
        return kif_case(t, x);                                                                     \
    }
KIF(WRAP, TRN)
KIF(WRAP, RND)
KIF(WRAP, RND_CONV)
KIF(SAT, TRN)
KIF(SAT, RND)
KIF(SAT, RND_CONV)
KIF(SAT_SYM, TRN)
KIF(SAT_SYM, RND)
KIF(SAT_SYM, RND_CONV)

/* ---- np.pad, np.take, np.tile ---- */

/* np.pad(x.reshape(2, 4), pads, mode) with pads wider than the axes ((3, 5), (6, 2)) or not */
static alk_fva *pad_case(alk_trace *t, alk_fva *x, alk_pad_mode mode, bool wide) {
    int64_t s24[2] = {2, 4};
    const int64_t big[2][2] = {{3, 5}, {6, 2}}, small[2][2] = {{1, 1}, {2, 3}};
    return alk_fva_pad(t, reshaped(t, x, 2, s24), wide ? big : small, mode, 1.5);
}
#define PAD(name, mode)                                                                            \
    static alk_fva *pad_##name(alk_trace *t, alk_fva *x) {                                         \
        return pad_case(t, x, mode, true);                                                         \
    }                                                                                              \
    static alk_fva *pad_##name##_small(alk_trace *t, alk_fva *x) {                                 \
        return pad_case(t, x, mode, false);                                                        \
    }
PAD(constant, ALK_PAD_CONSTANT)
PAD(edge, ALK_PAD_EDGE)
PAD(reflect, ALK_PAD_REFLECT)
PAD(symmetric, ALK_PAD_SYMMETRIC)
PAD(wrap, ALK_PAD_WRAP)
/* np.pad(x[::-2], (4, 3), 'reflect') on a strided view, with a non-dyadic constant elsewhere:
 * np.pad(x.reshape(2, 4).T, ((0, 1), (1, 0)), constant_values=0.1) */
static alk_fva *pad_view(alk_trace *t, alk_fva *x) {
    alk_index rev[1] = {ALK_SLICE(ALK_FV_NONE, ALK_FV_NONE, -2)};
    const int64_t p1[1][2] = {{4, 3}};
    alk_fva *a = alk_fva_pad(t, alk_fva_index(t, x, rev, 1), p1, ALK_PAD_REFLECT, 0);
    int64_t s24[2] = {2, 4};
    const int64_t p2[2][2] = {{0, 1}, {1, 0}};
    alk_fva *b = alk_fva_pad(t, alk_fva_transpose(t, reshaped(t, x, 2, s24), NULL), p2,
                             ALK_PAD_CONSTANT, 0.1);
    alk_fva *parts[2] = {a, alk_fva_ravel(t, b)};
    return alk_fva_concatenate(t, parts, 2, 0);
}

/* Pads that take numpy several rounds, where its result is not a plain periodic mirror:
 * np.pad(x[:n], (1, 9)) and np.pad(x[:n], (9, 1)), n = 3 (reflect) or 2 (symmetric). */
static alk_fva *pad_rounds(alk_trace *t, alk_fva *x, alk_pad_mode mode, int64_t n) {
    alk_index head[1] = {ALK_SLICE(ALK_FV_NONE, n, ALK_FV_NONE)};
    const int64_t p1[1][2] = {{1, 9}}, p2[1][2] = {{9, 1}};
    alk_fva *a = alk_fva_index(t, x, head, 1);
    alk_fva *parts[2] = {alk_fva_pad(t, a, p1, mode, 0), alk_fva_pad(t, a, p2, mode, 0)};
    return alk_fva_concatenate(t, parts, 2, 0);
}
/* numpy pads a length-1 axis with its edge in the mirrored modes: np.pad(x[:1], (2, 3),
 * 'reflect') and np.pad(x[1:2], (3, 1), 'symmetric') */
static alk_fva *pad_singleton(alk_trace *t, alk_fva *x) {
    alk_index i0[1] = {ALK_SLICE(0, 1, ALK_FV_NONE)}, i1[1] = {ALK_SLICE(1, 2, ALK_FV_NONE)};
    const int64_t p1[1][2] = {{2, 3}}, p2[1][2] = {{3, 1}};
    alk_fva *parts[2] = {alk_fva_pad(t, alk_fva_index(t, x, i0, 1), p1, ALK_PAD_REFLECT, 0),
                         alk_fva_pad(t, alk_fva_index(t, x, i1, 1), p2, ALK_PAD_SYMMETRIC, 0)};
    return alk_fva_concatenate(t, parts, 2, 0);
}
static alk_fva *pad_reflect_rounds(alk_trace *t, alk_fva *x) {
    return pad_rounds(t, x, ALK_PAD_REFLECT, 3);
}
static alk_fva *pad_symmetric_rounds(alk_trace *t, alk_fva *x) {
    return pad_rounds(t, x, ALK_PAD_SYMMETRIC, 2);
}

static alk_fva *take0(alk_trace *t, alk_fva *x) {
    int64_t ix[7] = {7, -1, 0, 3, -8, 2, 2};
    return alk_fva_take(t, x, ix, 7, 0);
}
static alk_fva *take1(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4};
    int64_t ix[5] = {-1, 0, -4, 2, 3};
    return alk_fva_take(t, reshaped(t, x, 2, s24), ix, 5, -1);
}
static alk_fva *tile0(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4};
    size_t reps[3] = {2, 1, 3};
    return alk_fva_tile(t, reshaped(t, x, 2, s24), 3, reps);
}
/* np.tile(x.reshape(2, 4).T, 2): fewer reps than axes */
static alk_fva *tile1(alk_trace *t, alk_fva *x) {
    int64_t s24[2] = {2, 4};
    size_t reps[1] = {2};
    return alk_fva_tile(t, alk_fva_transpose(t, reshaped(t, x, 2, s24), NULL), 1, reps);
}

/* ---- image patches ---- */

static alk_fva *patch(alk_trace *t, alk_fva *x, size_t ndim, const int64_t *shape,
                      alk_patch_spec spec, bool same, bool transposed, double pad) {
    alk_fva *img = reshaped(t, x, ndim, shape);
    if (same) {
        size_t in[ALK_PATCH_MAX_RANK];
        for (size_t d = 0; d < spec.rank; d++) {
            in[d] = (size_t)shape[1 + d];
        }
        alk_patch_same_pads(&spec, in);
    }
    return transposed ? alk_fva_patches_transposed(t, img, &spec, pad)
                      : alk_fva_patches(t, img, &spec, pad);
}
static alk_fva *p1_same(alk_trace *t, alk_fva *x) {
    int64_t s[3] = {1, 8, 1};
    alk_patch_spec sp = {.rank = 1, .size = {3}, .strides = {2}, .dilation = {1}};
    return patch(t, x, 3, s, sp, true, false, -1.25);
}
static alk_fva *p1_dilated(alk_trace *t, alk_fva *x) {
    int64_t s[3] = {2, 4, 1};
    alk_patch_spec sp = {.rank = 1, .size = {2}, .strides = {1}, .dilation = {2}};
    return patch(t, x, 3, s, sp, false, false, 0);
}
static alk_fva *p1_explicit(alk_trace *t, alk_fva *x) {
    int64_t s[3] = {1, 4, 2};
    alk_patch_spec sp = {.rank = 1, .size = {3}, .strides = {2}, .dilation = {1}, .pads = {{2, 1}}};
    return patch(t, x, 3, s, sp, false, false, 0.5);
}
static alk_fva *p2_same(alk_trace *t, alk_fva *x) {
    int64_t s[4] = {1, 4, 2, 1};
    alk_patch_spec sp = {.rank = 2, .size = {3, 2}, .strides = {2, 1}, .dilation = {1, 1}};
    return patch(t, x, 4, s, sp, true, false, 0);
}
static alk_fva *p2_dilated(alk_trace *t, alk_fva *x) {
    int64_t s[4] = {1, 2, 2, 2};
    alk_patch_spec sp = {
        .rank = 2, .size = {2, 2}, .strides = {1, 1}, .dilation = {2, 1}, .pads = {{1, 1}, {0, 1}}};
    return patch(t, x, 4, s, sp, false, false, -2);
}
static alk_fva *p3_same(alk_trace *t, alk_fva *x) {
    int64_t s[5] = {1, 2, 2, 2, 1};
    alk_patch_spec sp = {.rank = 3, .size = {2, 2, 2}, .strides = {1, 2, 1}, .dilation = {1, 1, 1}};
    return patch(t, x, 5, s, sp, true, false, 0);
}
static alk_fva *pt1(alk_trace *t, alk_fva *x) {
    int64_t s[3] = {1, 4, 2};
    alk_patch_spec sp = {.rank = 1,
                         .size = {3},
                         .strides = {2},
                         .dilation = {1},
                         .pads = {{1, 1}},
                         .output_padding = {1}};
    return patch(t, x, 3, s, sp, false, true, 0);
}
static alk_fva *pt2(alk_trace *t, alk_fva *x) {
    int64_t s[4] = {1, 2, 2, 2};
    alk_patch_spec sp = {.rank = 2,
                         .size = {3, 2},
                         .strides = {2, 2},
                         .dilation = {1, 2},
                         .pads = {{0, 1}, {1, 0}},
                         .output_padding = {1, 0}};
    return patch(t, x, 4, s, sp, false, true, 0.25);
}
static alk_fva *pt3(alk_trace *t, alk_fva *x) {
    int64_t s[5] = {1, 2, 2, 2, 1};
    alk_patch_spec sp = {.rank = 3, .size = {2, 2, 2}, .strides = {2, 2, 2}, .dilation = {1, 1, 1}};
    return patch(t, x, 5, s, sp, false, true, 0);
}

const trace_op array_ops[] = {
    {"pend_round_tanh16", pend_round_tanh16},
    {"pend_sigmoid3m1", pend_sigmoid3m1},
    {"pend_bn", pend_bn},
    {"pend_bn2d", pend_bn2d},
    {"pend_abs", pend_abs},
    {"pend_relu", pend_relu},
    {"pend_clip", pend_clip},
    {"pend_maxmin", pend_maxmin},
    {"pend_floor", pend_floor},
    {"pend_ceil", pend_ceil},
    {"pend_neg_sub", pend_neg_sub},
    {"pend_pow", pend_pow},
    {"pend_pow3", pend_pow3},
    {"pend_square", pend_square},
    {"pend_rdiv", pend_rdiv},
    {"pend_divide_arr", pend_divide_arr},
    {"pend_div", pend_div},
    {"pend_div_ceil", pend_div_ceil},
    {"pend_bn_shared", pend_bn_shared},
    {"pend_chain", pend_chain},
    {"pend_negfactor", pend_negfactor},
    {"pend_kif", pend_kif},
    {"pend_stored", pend_stored},
    {"pend_patches", pend_patches},
    {"act_sigmoid", act_sigmoid},
    {"act_silu", act_silu},
    {"act_gelu", act_gelu},
    {"act_gelu_tanh", act_gelu_tanh},
    {"act_elu", act_elu},
    {"act_elu_alpha", act_elu_alpha},
    {"act_selu", act_selu},
    {"act_softplus", act_softplus},
    {"act_softsign", act_softsign},
    {"act_hard_sigmoid", act_hard_sigmoid},
    {"act_hard_silu", act_hard_silu},
    {"act_hardsigmoid", act_hardsigmoid},
    {"act_hardswish", act_hardswish},
    {"act_log_sigmoid", act_log_sigmoid},
    {"act_rsqrt", act_rsqrt},
    {"act_exponential", act_exponential},
    {"act_reciprocal", act_reciprocal},
    {"kif_WRAP_TRN", kif_WRAP_TRN},
    {"kif_WRAP_RND", kif_WRAP_RND},
    {"kif_WRAP_RND_CONV", kif_WRAP_RND_CONV},
    {"kif_SAT_TRN", kif_SAT_TRN},
    {"kif_SAT_RND", kif_SAT_RND},
    {"kif_SAT_RND_CONV", kif_SAT_RND_CONV},
    {"kif_SAT_SYM_TRN", kif_SAT_SYM_TRN},
    {"kif_SAT_SYM_RND", kif_SAT_SYM_RND},
    {"kif_SAT_SYM_RND_CONV", kif_SAT_SYM_RND_CONV},
    {"pad_constant", pad_constant},
    {"pad_constant_small", pad_constant_small},
    {"pad_edge", pad_edge},
    {"pad_edge_small", pad_edge_small},
    {"pad_reflect", pad_reflect},
    {"pad_reflect_small", pad_reflect_small},
    {"pad_symmetric", pad_symmetric},
    {"pad_symmetric_small", pad_symmetric_small},
    {"pad_wrap", pad_wrap},
    {"pad_wrap_small", pad_wrap_small},
    {"pad_view", pad_view},
    {"pad_singleton", pad_singleton},
    {"pad_reflect_rounds", pad_reflect_rounds},
    {"pad_symmetric_rounds", pad_symmetric_rounds},
    {"take0", take0},
    {"take1", take1},
    {"tile0", tile0},
    {"tile1", tile1},
    {"p1_same", p1_same},
    {"p1_dilated", p1_dilated},
    {"p1_explicit", p1_explicit},
    {"p2_same", p2_same},
    {"p2_dilated", p2_dilated},
    {"p3_same", p3_same},
    {"pt1", pt1},
    {"pt2", pt2},
    {"pt3", pt3},
};

const size_t n_array_ops = sizeof(array_ops) / sizeof(array_ops[0]);
