/*
 * The layer kernels of src/nn: window geometry against hand-worked sizes (Keras's and torch's
 * rules, quoted at each case), the HGQ2 quantizer's branches on hand-worked values, and the error
 * contract (EINVAL naming the culprit, sticky). The numerics of every kernel are checked against
 * numpy and torch by tests/python/test_nn.py.
 */
#include "nn/nn.h"
#include "alir/json.h"
#include "core/alloc.h"
#include "core/vec.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <string.h>

static alk_trace *t;

static void setup(void) {
    cr_assert_eq(alk_trace_new(NULL, &t), ALK_OK);
}

static void teardown(void) {
    alk_trace_free(t);
}

TestSuite(nn, .init = setup, .fini = teardown);

/* Resolves a 1-D window over n inputs. */
static alk_nn_geometry resolve1(const alk_nn_window *w, size_t n, bool transposed) {
    alk_nn_geometry g;
    cr_assert_eq(alk_nn_window_resolve(t, w, &n, transposed, &g), ALK_OK, "%s",
                 alk_trace_message(t));
    return g;
}

static alk_nn_window window1(size_t k, size_t s, size_t d, alk_nn_padding padding) {
    alk_nn_window w;
    alk_nn_window_init(&w, 1, &k);
    w.strides[0] = s;
    w.dilation[0] = d;
    w.padding = padding;
    return w;
}

static void expect_message(const char *part) {
    cr_expect_neq(alk_trace_error(t), ALK_OK);
    cr_expect(strstr(alk_trace_message(t), part) != NULL, "message '%s' lacks '%s'",
              alk_trace_message(t), part);
}

Test(nn, same_padding_follows_tf) {
    /* n = 5, k = 3, s = 2: out = ceil(5/2) = 3, total = (3-1)*2 + 3 - 5 = 2, before 1. */
    alk_nn_window w = window1(3, 2, 1, ALK_NN_PAD_SAME);
    alk_nn_geometry g = resolve1(&w, 5, false);
    cr_expect_eq(g.out[0], 3);
    cr_expect_eq(g.before[0], 1);
    cr_expect_eq(g.after[0], 1);
    /* n = 6, k = 3, d = 2 (k' = 5), s = 2: out 3, total = 4 + 5 - 6 = 3, before 1, after 2. */
    w = window1(3, 2, 2, ALK_NN_PAD_SAME);
    g = resolve1(&w, 6, false);
    cr_expect_eq(g.out[0], 3);
    cr_expect_eq(g.before[0], 1);
    cr_expect_eq(g.after[0], 2);
}

Test(nn, causal_and_explicit_padding) {
    /* Keras causal: before (k-1)*d = 4, out = n. */
    alk_nn_window w = window1(3, 1, 2, ALK_NN_PAD_CAUSAL);
    alk_nn_geometry g = resolve1(&w, 7, false);
    cr_expect_eq(g.before[0], 4);
    cr_expect_eq(g.out[0], 7);
    w = window1(3, 2, 1, ALK_NN_PAD_EXPLICIT);
    w.pads[0][0] = 2;
    w.pads[0][1] = 0;
    g = resolve1(&w, 6, false); /* (6 + 2 - 3)/2 + 1 = 3 */
    cr_expect_eq(g.out[0], 3);
    cr_expect_eq(g.before[0], 2);
}

Test(nn, torch_ceil_mode) {
    /* n = 6, k = 3, s = 2, p = 1: floor gives (6+2-3)/2+1 = 3, ceil ceil(5/2)+1 = 4; the last
     * window starts at 3*2 - 1 = 5 < 6, inside the input: kept. */
    alk_nn_window w = window1(3, 2, 1, ALK_NN_PAD_EXPLICIT);
    w.pads[0][0] = w.pads[0][1] = 1;
    w.ceil_mode = true;
    cr_expect_eq(resolve1(&w, 6, false).out[0], 4);
    /* n = 5, k = 2, s = 2, p = 1: ceil(5/2)+1 = 4, but (4-1)*2 = 6 >= 5 + 1: dropped, 3. */
    w = window1(2, 2, 1, ALK_NN_PAD_EXPLICIT);
    w.pads[0][0] = w.pads[0][1] = 1;
    w.ceil_mode = true;
    cr_expect_eq(resolve1(&w, 5, false).out[0], 3);
}

Test(nn, keras_transposed_sizes) {
    /* valid, output_padding None, k' = 1 < s = 3: Keras (n-1)*s + max(k', s) = 12 for n = 4;
     * the reference's (n-1)*s + k' = 10 is its quirk. */
    alk_nn_window w = window1(1, 3, 1, ALK_NN_PAD_VALID);
    alk_nn_geometry g = resolve1(&w, 4, true);
    cr_expect_eq(g.out[0], 12);
    cr_expect_eq(g.before[0], 0);
    /* same, None: n*s; k' = 5 (k 3, d 2), s = 2: before = (5-2)/2 = 1. */
    w = window1(3, 2, 2, ALK_NN_PAD_SAME);
    g = resolve1(&w, 4, true);
    cr_expect_eq(g.out[0], 8);
    cr_expect_eq(g.before[0], 1);
    /* same, output_padding 1, k = 3, s = 2: (n-1)*2 + 3%2 + 1 = 8 for n = 4; total padding
     * 3 + 1 - 2 + 1 = 3, left min(2, 2) = 2, before = 3 - 1 - 2 = 0. */
    w = window1(3, 2, 1, ALK_NN_PAD_SAME);
    w.has_output_padding = true;
    w.output_padding[0] = 1;
    g = resolve1(&w, 4, true);
    cr_expect_eq(g.out[0], 8);
    cr_expect_eq(g.before[0], 0);
    /* torch: (n-1)*s - 2p + k' + op = 3*2 - 2 + 3 + 1 = 8, before p = 1. */
    w = window1(3, 2, 1, ALK_NN_PAD_EXPLICIT);
    w.pads[0][0] = w.pads[0][1] = 1;
    w.output_padding[0] = 1;
    g = resolve1(&w, 4, true);
    cr_expect_eq(g.out[0], 8);
    cr_expect_eq(g.before[0], 1);
}

Test(nn, window_errors_name_the_axis) {
    alk_nn_window w = window1(5, 1, 1, ALK_NN_PAD_VALID);
    size_t n = 3;
    alk_nn_geometry g;
    cr_expect_neq(alk_nn_window_resolve(t, &w, &n, false, &g), ALK_OK);
    expect_message("spatial axis 0: the window (5 taps wide) is larger than the padded input");
    /* Sticky: a later, valid call fails too. */
    w = window1(1, 1, 1, ALK_NN_PAD_VALID);
    cr_expect_neq(alk_nn_window_resolve(t, &w, &n, false, &g), ALK_OK);
}

Test(nn, causal_transposed_is_refused) {
    alk_nn_window w = window1(2, 1, 1, ALK_NN_PAD_CAUSAL);
    size_t n = 3;
    alk_nn_geometry g;
    cr_expect_neq(alk_nn_window_resolve(t, &w, &n, true, &g), ALK_OK);
    expect_message("'causal'");
}

Test(nn, zero_stride_is_refused) {
    alk_nn_window w = window1(2, 0, 1, ALK_NN_PAD_VALID);
    size_t n = 3;
    alk_nn_geometry g;
    cr_expect_neq(alk_nn_window_resolve(t, &w, &n, false, &g), ALK_OK);
    expect_message("stride");
}

static alk_fva *input(size_t ndim, const size_t *shape) {
    size_t n = 1;
    for (size_t d = 0; d < ndim; d++) {
        n *= shape[d];
    }
    int k[64], i[64], f[64];
    for (size_t j = 0; j < n; j++) {
        k[j] = 1, i[j] = 3, f[j] = 2;
    }
    return alk_fva_from_kif(t, ndim, shape, k, i, f);
}

Test(nn, conv_checks_channels) {
    size_t xs[4] = {1, 3, 3, 2}, ks[4] = {2, 2, 3, 4};
    double w[48] = {0};
    alk_nn_window win = window1(2, 1, 1, ALK_NN_PAD_VALID);
    size_t kernel[2] = {2, 2};
    alk_nn_window_init(&win, 2, kernel);
    cr_expect_null(alk_nn_conv(t, input(4, xs), &win, alk_fva_numbers(t, 4, ks, w), NULL));
    expect_message("does not fit 2 input channels");
}

Test(nn, conv_refuses_traced_kernel) {
    size_t xs[3] = {1, 3, 1};
    size_t k = 2;
    alk_nn_window win;
    alk_nn_window_init(&win, 1, &k);
    cr_expect_null(alk_nn_conv(t, input(3, xs), &win, input(3, xs), NULL));
    expect_message("kernel must be a numeric array");
}

/* Each activation error in a fresh trace (errors are sticky). */
Test(nn, activation_errors_name_the_activation) {
    static const struct {
        const char *name;
        int map; /* 0 Keras strict, 1 Keras lenient, 2 torch */
        const char *message;
    } cases[] = {
        {"softmax", 0, "softmax is not supported as an activation"},
        {"softmax", 1, "softmax is not supported as an activation"},
        {"mish", 0, "unsupported activation 'mish'"},
        {"my_fn", 1, "activation 'my_fn' is not a known Keras activation"},
        {"erfinv", 2, "unsupported activation 'erfinv'"},
    };
    size_t xs[2] = {1, 3};
    for (size_t j = 0; j < sizeof(cases) / sizeof(cases[0]); j++) {
        alk_trace_free(t);
        cr_assert_eq(alk_trace_new(NULL, &t), ALK_OK);
        alk_fva *x = input(2, xs);
        alk_fva *y = cases[j].map == 2
                         ? alk_nn_torch_activate(t, cases[j].name, x)
                         : alk_nn_keras_activate(t, cases[j].name, cases[j].map == 0, x);
        cr_expect_null(y);
        expect_message(cases[j].message);
    }
}

Test(nn, activation_tables) {
    size_t n_keras, n_torch;
    const alk_nn_activation *keras = alk_nn_keras_activations(&n_keras);
    const alk_nn_activation *torch = alk_nn_torch_unary(&n_torch);
    /* frontends §2.3: 16 functions, two aliases; §4.5: the torch map. */
    cr_expect_eq(n_keras, 18);
    static const char *const keras_names[] = {
        "linear",   "relu",     "relu6",        "hard_tanh", "tanh",       "exponential",
        "sigmoid",  "silu",     "swish",        "gelu",      "elu",        "selu",
        "softplus", "softsign", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid"};
    for (size_t j = 0; j < sizeof(keras_names) / sizeof(keras_names[0]); j++) {
        cr_expect_not_null(alk_nn_find_activation(keras, n_keras, keras_names[j]), "%s",
                           keras_names[j]);
    }
    const alk_nn_activation *swish = alk_nn_find_activation(keras, n_keras, "swish");
    cr_expect_eq(swish->fn, ALK_FN_SILU);
    cr_expect_null(swish->exact);
    cr_expect_eq(alk_nn_find_activation(keras, n_keras, "hard_swish")->fn, ALK_FN_HARD_SILU);
    cr_expect_not_null(alk_nn_find_activation(keras, n_keras, "relu6")->exact);
    cr_expect_eq(alk_nn_find_activation(torch, n_torch, "hardsigmoid")->fn,
                 ALK_FN_HARDSIGMOID_TORCH);
    cr_expect_eq(alk_nn_find_activation(torch, n_torch, "atanh")->fn, ALK_FN_ARCTANH);
    cr_expect_not_null(alk_nn_find_activation(torch, n_torch, "square")->exact);
    cr_expect_null(alk_nn_find_activation(torch, n_torch, "softmax"));
}

/* ---- HGQ2 ------------------------------------------------------------------------------------ */

static alk_fva *scalar_array(double v) {
    size_t one = 1;
    return alk_fva_numbers(t, 1, &one, &v);
}

/* A KBI quantizer with k, b, i scalars (stored shape (1,)). */
static alk_hgq_quantizer kbi(const char *round, const char *overflow, double k, double b,
                             double i) {
    alk_hgq_quantizer q;
    cr_assert_eq(alk_hgq_init(t, &q, "kbi", round, overflow), ALK_OK, "%s", alk_trace_message(t));
    q.k = scalar_array(k);
    q.b = scalar_array(b);
    q.i = scalar_array(i);
    return q;
}

static double quantize1(const alk_hgq_quantizer *q, double x) {
    alk_fva *r = alk_hgq_quantize_weight(t, q, scalar_array(x));
    cr_assert_not_null(r, "%s", alk_trace_message(t));
    return alk_fva_num_at(r, 0);
}

Test(nn, hgq_wrap_weight_rounds_only) {
    /* k 1, b 3, i 1 (f 2), WRAP, RND. x = 5.3: rounded floor(5.3*4 + 0.5)/4 = 5.25. The full Q
     * wraps into [-2, 2): (5.25 + 2) mod 4 - 2 = 1.25. A trainable weight quantizer only rounds. */
    alk_hgq_quantizer q = kbi("RND", "WRAP", 1, 3, 1);
    q.is_weight = true;
    q.trainable = true;
    cr_expect_eq(quantize1(&q, 5.3f), 5.25);
    q.trainable = false;
    cr_expect_eq(quantize1(&q, 5.3f), 1.25);
    /* KBI rounds only with RND: TRN takes the full Q, floor(5.3*4)/4 = 5.25 -> 1.25. */
    q = kbi("TRN", "WRAP", 1, 3, 1);
    q.is_weight = true;
    q.trainable = true;
    cr_expect_eq(quantize1(&q, 5.3f), 1.25);
    /* S_RND is RND at inference (the quantizers package strips the prefix first). */
    q = kbi("S_RND", "WRAP", 1, 3, 1);
    q.is_weight = true;
    q.trainable = true;
    cr_expect_eq(quantize1(&q, 5.3f), 5.25);
}

Test(nn, hgq_sat_and_zeroing) {
    /* SAT, k 1, b 3, i 1, f 2: clip to [-2, 2 - 0.25]. */
    alk_hgq_quantizer q = kbi("RND", "SAT", 1, 3, 1);
    cr_expect_eq(quantize1(&q, 5.3f), 1.75);
    cr_expect_eq(quantize1(&q, -5.3f), -2.0);
    /* SAT_SYM: [-1.75, 1.75]. */
    q = kbi("RND", "SAT_SYM", 1, 3, 1);
    cr_expect_eq(quantize1(&q, -5.3f), -1.75);
    /* b 0.4 rounds to 0, i 0.5 to 0 (half to even): k + i + f = 1 + 0 + 0 > 0 keeps the value;
     * b -0.6 -> -1, i 0: f = -1, k + i + f = 0 -> zero. */
    q = kbi("TRN", "SAT", 1, -0.6f, 0.5);
    cr_expect_eq(quantize1(&q, 0.75), 0.0);
}

Test(nn, hgq_init_refuses) {
    alk_hgq_quantizer q;
    cr_expect_neq(alk_hgq_init(t, &q, "float", "RND", "WRAP"), ALK_OK);
    expect_message("quantizer type 'float' is not supported");
}

Test(nn, hgq_refuses_wrap_sm) {
    alk_hgq_quantizer q;
    cr_expect_neq(alk_hgq_init(t, &q, "kif", "RND", "WRAP_SM"), ALK_OK);
    expect_message("overflow_mode 'WRAP_SM' is not supported");
}

Test(nn, hgq_refuses_other_rounding) {
    alk_hgq_quantizer q;
    cr_expect_neq(alk_hgq_init(t, &q, "kbi", "RND_ZERO", "SAT"), ALK_OK);
    expect_message("round_mode 'RND_ZERO'");
}

Test(nn, float32_paths_refuse_double_weights) {
    size_t one = 1;
    double mean = 0.1, var = 1, gamma = 1, beta = 0;
    alk_fva *scale = NULL, *offset = NULL;
    cr_expect_neq(alk_nn_batchnorm_fold(t, alk_fva_numbers(t, 1, &one, &gamma),
                                        alk_fva_numbers(t, 1, &one, &beta),
                                        alk_fva_numbers(t, 1, &one, &mean),
                                        alk_fva_numbers(t, 1, &one, &var), 1e-3, &scale, &offset),
                  ALK_OK);
    expect_message("moving_mean element 0");
    cr_expect_null(scale);
}

Test(nn, on_axes_checks_the_size) {
    size_t shape[3] = {1, 4, 3};
    double v[3] = {1, 2, 3};
    size_t n = 3;
    int axis = 1;
    cr_expect_null(alk_nn_on_axes(t, alk_fva_numbers(t, 1, &n, v), 3, shape, &axis, 1));
    expect_message("a vector of 3 values does not match the 4 positions");
}

/* ---- One contraction for every convolution --------------------------------------------------- */

/* The ALIR JSON text of tracing `out` against `x` (owned by the caller, alk_free). */
static char *program_text(alk_trace *trace, alk_fva *x, alk_fva *out) {
    alk_program *program = NULL;
    cr_assert_eq(alk_fva_trace(trace, &x, 1, &out, 1, true, &program), ALK_OK, "%s",
                 alk_trace_message(trace));
    alk_buf buf = {0};
    cr_assert_eq(alk_alir_to_json(program, &buf), ALK_OK);
    alk_program_free(program);
    return buf.data;
}

static double weight_value(size_t j) {
    return (double)((int)((j * 37 + 11) % 23) - 11) / 8.0;
}

/* A Keras Conv2DTranspose with one group goes through the grouped contraction; the reference runs
 * einsum('...kc,kco->...o') on (K_vol, Cin, Cout). Both must trace the same program. */
Test(nn, grouped_transpose_traces_as_the_reference) {
    size_t xs[4] = {1, 3, 2, 2}, ks[4] = {2, 3, 3, 2}, kernel_size[2] = {2, 3};
    double w[36], b[3] = {0.5, -1.25, 2};
    for (size_t j = 0; j < 36; j++) {
        w[j] = weight_value(j);
    }
    size_t three = 3;
    int k[12], i[12], f[12];
    for (size_t j = 0; j < 12; j++) {
        k[j] = 1, i[j] = 2, f[j] = 2;
    }
    /* Ours: 'same' with strides (2, 1). */
    alk_nn_window win;
    alk_nn_window_init(&win, 2, kernel_size);
    win.strides[0] = 2;
    win.padding = ALK_NN_PAD_SAME;
    alk_fva *x = alk_fva_from_kif(t, 4, xs, k, i, f);
    char *ours = program_text(t, x,
                              alk_nn_conv_transpose(t, x, &win, alk_fva_numbers(t, 4, ks, w),
                                                    alk_fva_numbers(t, 1, &three, b)));
    /* The reference's: pads (max(0, k-s)//2, rest) = (0, 0) and (1, 1), no output padding. */
    alk_trace *r = NULL;
    cr_assert_eq(alk_trace_new(NULL, &r), ALK_OK);
    alk_patch_spec spec = {
        .rank = 2, .size = {2, 3}, .strides = {2, 1}, .dilation = {1, 1}, .pads = {{0, 0}, {1, 1}}};
    alk_fva *xr = alk_fva_from_kif(r, 4, xs, k, i, f);
    alk_fva *patches = alk_fva_patches_transposed(r, xr, &spec, 0.0);
    int64_t view[5] = {1, 6, 2, 6, 2}, kview[3] = {6, 3, 2};
    static const int to_kco[3] = {0, 2, 1};
    alk_fva *kernel =
        alk_fva_transpose(r, alk_fva_reshape(r, alk_fva_numbers(r, 4, ks, w), 3, kview), to_kco);
    alk_fva *out =
        alk_fva_einsum(r, "...kc,kco->...o", alk_fva_reshape(r, patches, 5, view), kernel);
    char *reference =
        program_text(r, xr, alk_fva_binary(r, ALK_ADD, out, alk_fva_numbers(r, 1, &three, b)));
    cr_expect_str_eq(ours, reference);
    alk_free(ours);
    alk_free(reference);
    alk_trace_free(r);
}

/* ---- Allocation failures -----------------------------------------------------------------------
 */

static alk_fva *numbers_of(alk_trace *trace, size_t ndim, const size_t *shape, size_t n,
                           double scale) {
    double v[64];
    for (size_t j = 0; j < n; j++) {
        v[j] = weight_value(j) * scale;
    }
    return alk_fva_numbers(trace, ndim, shape, v);
}

/* A small pipeline through most kernels, traced into a program; the trace's error. */
static int pipeline(void) {
    alk_trace *trace = NULL;
    int rv = alk_trace_new(NULL, &trace);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t xs[3] = {1, 6, 2}, ks[3] = {2, 2, 2}, two = 2, q_shape[3] = {1, 1, 2};
    int k[12], i[12], f[12];
    for (size_t j = 0; j < 12; j++) {
        k[j] = 1, i[j] = 2, f[j] = 2;
    }
    alk_fva *x = alk_fva_from_kif(trace, 3, xs, k, i, f);
    size_t kernel_size = 2;
    alk_nn_window w;
    alk_nn_window_init(&w, 1, &kernel_size);
    w.padding = ALK_NN_PAD_SAME;
    alk_fva *y = alk_nn_conv(trace, x, &w, numbers_of(trace, 3, ks, 8, 1), NULL);
    alk_nn_pool pool = {.window = w, .kind = ALK_NN_POOL_AVG};
    pool.window.strides[0] = 2;
    y = alk_nn_pool_apply(trace, y, &pool);
    /* eps 0 and square variances make the scales powers of two: a product by any other constant
     * runs the SCM search, tens of thousands of allocations, too many to fail one by one. */
    double gamma[2] = {1, 0.5}, var[2] = {0.25, 4}, mean[2] = {0.25, -1};
    alk_fva *scale = NULL, *offset = NULL;
    alk_nn_batchnorm_fold(trace, alk_fva_numbers(trace, 1, &two, gamma), NULL,
                          alk_fva_numbers(trace, 1, &two, mean),
                          alk_fva_numbers(trace, 1, &two, var), 0.0, &scale, &offset);
    int last = -1;
    y = alk_nn_scale_offset(trace, y, scale, offset, &last, 1);
    alk_nn_relu relu = {.threshold = 0.5, .negative_slope = 0.25};
    y = alk_nn_relu_apply(trace, y, &relu);
    alk_hgq_quantizer q;
    alk_hgq_init(trace, &q, "kif", "RND", "SAT");
    double qk[2] = {1, 1}, qi[2] = {2, 3}, qf[2] = {3, 2};
    q.k = alk_fva_numbers(trace, 3, q_shape, qk);
    q.i = alk_fva_numbers(trace, 3, q_shape, qi);
    q.f = alk_fva_numbers(trace, 3, q_shape, qf);
    alk_fva *yq = alk_hgq_mirror(trace, &q, y);
    alk_fva *z = alk_hgq_mirror(trace, &q, alk_nn_keras_activate(trace, "tanh", true, yq));
    alk_fva *c = alk_nn_category_encoding(trace, yq, 3, ALK_NN_COUNT);
    alk_fva *outputs[3] = {y, z, c};
    alk_program *program = NULL;
    rv = alk_fva_trace(trace, &x, 1, outputs, 3, true, &program);
    alk_program_free(program);
    alk_trace_free(trace);
    return rv;
}

Test(nn, allocation_failures_end_cleanly) {
    unsigned long n = test_each_allocation_failing(pipeline);
    cr_assert_gt(n, 20, "the pipeline made only %lu allocations", n);
}

Test(nn, hgq_refuses_corrupt_widths) {
    /* k 2 is no HGQ2 quantizer's, b 1e9 no width: refused before they are used as shifts. */
    alk_hgq_quantizer q = kbi("RND", "SAT", 2, 3, 1);
    cr_expect_null(alk_hgq_quantize_weight(t, &q, scalar_array(1)));
    expect_message("quantizer element 0: k 2, b 3, i 1 out of range");
}

Test(nn, hgq_refuses_huge_widths) {
    alk_hgq_quantizer q = kbi("RND", "SAT", 1, 1e9, 1);
    cr_expect_null(alk_hgq_mirror(t, &q, scalar_array(1)));
    expect_message("out of range");
}
