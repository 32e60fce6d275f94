/*
 * Handlers of the Keras layers that compute (spec frontends.md §2.2): Dense, EinsumDense, the
 * convolutions, the pools, the normalizations, Rescaling, Embedding, CategoryEncoding and the
 * ReLU family. Each reads its config and weights through the kit and lowers through src/nn, which
 * holds every bit-exact trap; what is here is the reading and the checks that name a weight or
 * a config key when a file does not match its config.
 *
 * Weights are asked for by role; a weight the config says the layer has (`use_bias`) is
 * required, so a file missing it fails naming it rather than computing without it.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

/* ---- Shared readers ------------------------------------------------------------------------- */

/* "(8, 3)", "(8,)" (Python's tuples); `want` given: its entries, "?" for any size. */
static void shape_text(const size_t *shape, size_t ndim, const int64_t *want, char *out,
                       size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "(");
    for (size_t d = 0; d < ndim && n < cap; d++) {
        const char *sep = d + 1 < ndim ? ", " : ndim == 1 ? "," : "";
        if (want != NULL && want[d] < 0) {
            n += (size_t)snprintf(out + n, cap - n, "?%s", sep);
        } else {
            long long size = want != NULL ? (long long)want[d] : (long long)shape[d];
            n += (size_t)snprintf(out + n, cap - n, "%lld%s", size, sep);
        }
    }
    if (n < cap) {
        (void)snprintf(out + n, cap - n, ")");
    }
}

bool keras_check_shape(alk_op *op, const char *what, const alk_fva *a, size_t ndim,
                       const int64_t *dims) {
    if (a == NULL || alk_op_failed(op)) {
        return false;
    }
    bool ok = alk_fva_ndim(a) == ndim;
    for (size_t d = 0; ok && d < ndim; d++) {
        ok = dims[d] < 0 || alk_fva_shape(a)[d] == (size_t)dims[d];
    }
    if (!ok) {
        char got[160], want[160];
        shape_text(alk_fva_shape(a), alk_fva_ndim(a), NULL, got, sizeof(got));
        shape_text(NULL, ndim, dims, want, sizeof(want));
        alk_op_fail(op, ALK_EINVAL, "%s has shape %s; this config needs %s", what, got, want);
    }
    return ok;
}

bool keras_channels_first(alk_op *op) {
    static const char *const formats[] = {"channels_last", "channels_first", NULL};
    return alk_op_enum(op, "data_format", formats, 0) == 1;
}

/* The last axis of x, or its channel axis (1) when channels_first. */
static int64_t channels_of(const alk_fva *x, bool channels_first) {
    size_t ndim = alk_fva_ndim(x);
    return ndim < 2 ? -1 : (int64_t)alk_fva_shape(x)[channels_first ? 1 : ndim - 1];
}

/* The rank + 2 axes a spatial layer of `rank` needs. */
static bool check_rank(alk_op *op, const alk_fva *x, size_t rank) {
    if (x != NULL && alk_fva_ndim(x) != rank + 2) {
        alk_op_fail(op, ALK_EINVAL,
                    "its input has %zu axes; a %zu-D layer takes (batch, %zu spatial axes, "
                    "channels)",
                    alk_fva_ndim(x), rank, rank);
        return false;
    }
    return x != NULL;
}

/* A window's sizes and padding from `size_key` (kernel_size, pool_size), strides (a pool's None:
 * its size, as Keras resolves it), dilation_rate, padding and data_format. */
static bool read_window(alk_op *op, size_t rank, const char *size_key, bool pool, bool causal_ok,
                        alk_nn_window *w) {
    int64_t k[ALK_NN_MAX_RANK], s[ALK_NN_MAX_RANK], d[ALK_NN_MAX_RANK];
    size_t kernel[ALK_NN_MAX_RANK];
    alk_op_ints(op, size_key, rank, -1, k);
    for (size_t i = 0; i < rank; i++) {
        if (k[i] < 1 && !alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "%s must be positive sizes", size_key);
        }
        kernel[i] = k[i] > 0 ? (size_t)k[i] : 1;
    }
    alk_nn_window_init(w, rank, kernel);
    bool has_strides = alk_op_has(op, "strides");
    alk_op_ints(op, "strides", rank, 1, s);
    alk_op_ints(op, "dilation_rate", rank, 1, d);
    for (size_t i = 0; i < rank; i++) {
        if ((s[i] < 1 || d[i] < 1) && !alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "strides and dilation_rate must be positive");
        }
        w->strides[i] = pool && !has_strides ? kernel[i] : s[i] > 0 ? (size_t)s[i] : 1;
        w->dilation[i] = d[i] > 0 ? (size_t)d[i] : 1;
    }
    static const char *const paddings[] = {"valid", "same", "causal", NULL};
    int padding = alk_op_enum(op, "padding", paddings, 0);
    if (padding == 2 && !causal_ok && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "padding 'causal' is only defined for Conv1D");
    }
    w->padding = padding == 1   ? ALK_NN_PAD_SAME
                 : padding == 2 ? ALK_NN_PAD_CAUSAL
                                : ALK_NN_PAD_VALID;
    w->channels_first = keras_channels_first(op);
    return !alk_op_failed(op);
}

/* The bias when the config says the layer has one (use_bias true or absent): required then. */
static alk_fva *bias_of(alk_op *op, int64_t units) {
    if (!alk_op_bool(op, "use_bias", true)) {
        return NULL;
    }
    alk_fva *bias = alk_op_weight(op, "bias");
    int64_t dims[1] = {units};
    return keras_check_shape(op, "weight 'bias'", bias, 1, dims) ? bias : NULL;
}

/* ---- Dense, EinsumDense -----------------------------------------------------------------------
 */

void keras_dense(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_fva *kernel = alk_op_weight(op, "kernel");
    if (x == NULL || kernel == NULL) {
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    int64_t dims[2] = {ndim > 0 ? (int64_t)alk_fva_shape(x)[ndim - 1] : -1,
                       alk_op_int(op, "units", -1)};
    alk_fva *bias = keras_check_shape(op, "weight 'kernel'", kernel, 2, dims)
                        ? bias_of(op, (int64_t)alk_fva_shape(kernel)[1])
                        : NULL;
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_dense(alk_op_trace(op), x, kernel, bias));
    }
}

void keras_einsum_dense(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_fva *kernel = alk_op_weight(op, "kernel");
    const char *equation = alk_op_str(op, "equation", NULL);
    /* Keras adds a bias exactly when bias_axes is given. */
    alk_fva *bias = alk_op_has(op, "bias_axes") ? alk_op_weight(op, "bias") : NULL;
    if (equation == NULL && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "equation is missing");
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_einsum_dense(alk_op_trace(op), equation, x, kernel, bias));
    }
}

/* ---- Convolutions
 * -------------------------------------------------------------------------------- */

/* The weight `kernel` of a convolution: the window's sizes, then `in` and `out` (Keras's kernel
 * layout); NULL after a failure. `out` < 0 (a config without it) accepts any size. */
static alk_fva *window_kernel(alk_op *op, const alk_nn_window *w, int64_t in, int64_t out) {
    alk_fva *kernel = alk_op_weight(op, "kernel");
    int64_t dims[ALK_NN_MAX_RANK + 2];
    for (size_t i = 0; i < w->rank; i++) {
        dims[i] = (int64_t)w->kernel[i];
    }
    dims[w->rank] = in;
    dims[w->rank + 1] = out;
    return keras_check_shape(op, "weight 'kernel'", kernel, w->rank + 2, dims) ? kernel : NULL;
}

/* `groups` into w: it must divide the input channels and the filters. */
static bool read_groups(alk_op *op, int64_t channels, int64_t filters, alk_nn_window *w) {
    int64_t groups = alk_op_int(op, "groups", 1);
    if (groups < 1 || channels % groups != 0 || (filters > 0 && filters % groups != 0)) {
        alk_op_fail(op, ALK_EINVAL,
                    "groups %lld must divide the %lld input channels and the filters",
                    (long long)groups, (long long)channels);
        return false;
    }
    w->groups = (size_t)groups;
    return true;
}

/* Keras's output_padding (one size or one per axis) into w. */
static bool read_output_padding(alk_op *op, alk_nn_window *w) {
    int64_t pads[ALK_NN_MAX_RANK];
    size_t n = alk_op_int_list(op, "output_padding", pads, ALK_NN_MAX_RANK);
    if (n == SIZE_MAX) {
        return !alk_op_failed(op);
    }
    if (n != 1 && n != w->rank) {
        alk_op_fail(op, ALK_EINVAL, "output_padding needs %zu sizes, got %zu", w->rank, n);
        return false;
    }
    w->has_output_padding = true;
    for (size_t i = 0; i < w->rank; i++) {
        int64_t pad = pads[n == 1 ? 0 : i];
        w->output_padding[i] = pad > 0 ? (size_t)pad : 0;
    }
    return true;
}

void keras_conv(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_nn_window w;
    int64_t filters = alk_op_int(op, "filters", -1);
    if (!check_rank(op, x, rank) || !read_window(op, rank, "kernel_size", false, rank == 1, &w) ||
        !read_groups(op, channels_of(x, w.channels_first), filters, &w)) {
        return;
    }
    alk_fva *kernel =
        window_kernel(op, &w, channels_of(x, w.channels_first) / (int64_t)w.groups, filters);
    alk_fva *bias = kernel != NULL ? bias_of(op, (int64_t)alk_fva_shape(kernel)[rank + 1]) : NULL;
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_conv(alk_op_trace(op), x, &w, kernel, bias));
    }
}

void keras_depthwise_conv(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_nn_window w;
    if (!check_rank(op, x, rank) || !read_window(op, rank, "kernel_size", false, false, &w)) {
        return;
    }
    int64_t cin = channels_of(x, w.channels_first);
    int64_t dm = alk_op_int(op, "depth_multiplier", 1);
    alk_fva *kernel = window_kernel(op, &w, cin, dm);
    alk_fva *bias = kernel != NULL ? bias_of(op, cin * dm) : NULL;
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_depthwise_conv(alk_op_trace(op), x, &w, kernel, bias));
    }
}

void keras_conv_transpose(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_nn_window w;
    if (!check_rank(op, x, rank) || !read_window(op, rank, "kernel_size", false, false, &w) ||
        !read_output_padding(op, &w)) {
        return;
    }
    /* A transposed kernel is (window, filters, input channels). */
    alk_fva *kernel =
        window_kernel(op, &w, alk_op_int(op, "filters", -1), channels_of(x, w.channels_first));
    alk_fva *bias = kernel != NULL ? bias_of(op, (int64_t)alk_fva_shape(kernel)[rank]) : NULL;
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_conv_transpose(alk_op_trace(op), x, &w, kernel, bias));
    }
}

/* ---- Pools -------------------------------------------------------------------------------------
 */

void keras_pool(alk_op *op, const void *spec_arg) {
    const keras_pool_spec *spec = spec_arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_nn_pool pool = {.kind = spec->kind, .count_include_pad = false};
    if (!check_rank(op, x, spec->rank) ||
        !read_window(op, spec->rank, "pool_size", true, false, &pool.window)) {
        return;
    }
    for (size_t i = 0; i < spec->rank; i++) {
        pool.window.dilation[i] = 1;
    }
    alk_op_out(op, alk_nn_pool_apply(alk_op_trace(op), x, &pool));
}

void keras_global_pool(alk_op *op, const void *kind) {
    alk_fva *x = alk_op_in(op, 0);
    if (x != NULL && alk_fva_ndim(x) < 3) {
        alk_op_fail(op, ALK_EINVAL, "its input has %zu axes; a global pool needs spatial axes",
                    alk_fva_ndim(x));
        return;
    }
    alk_op_out(op,
               alk_nn_global_pool(alk_op_trace(op), x, *(const alk_nn_pool_kind *)kind,
                                  keras_channels_first(op), alk_op_bool(op, "keepdims", false)));
}

/* ---- Normalizations and scalings ------------------------------------------------------------ */

/* The `axis` parameter (an int or a list; Keras 2 writes a list of positive axes). */
static size_t read_axes(alk_op *op, int *axes, size_t cap, int dflt) {
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "axis", values, cap < ALK_FVA_MAX_DIM ? cap : ALK_FVA_MAX_DIM);
    if (n == SIZE_MAX) {
        axes[0] = dflt;
        return alk_op_failed(op) ? 0 : 1;
    }
    for (size_t i = 0; i < n; i++) {
        axes[i] = (int)values[i];
    }
    return n;
}

/* BatchNormalization: x * scale + offset with the float32 fold of gamma, beta and the moving
 * statistics. A second-level plugin that folds (and quantizes) on its own sets the roles
 * "folded_scale" and "folded_offset" (alk_op_set_weight) before delegating here. */
void keras_batch_norm(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int axes[ALK_FVA_MAX_DIM];
    size_t n_axes = read_axes(op, axes, ALK_FVA_MAX_DIM, -1);
    alk_fva *scale = alk_op_weight_opt(op, "folded_scale");
    alk_fva *offset = alk_op_weight_opt(op, "folded_offset");
    if (scale == NULL || offset == NULL) {
        alk_fva *gamma = alk_op_bool(op, "scale", true) ? alk_op_weight(op, "gamma") : NULL;
        alk_fva *beta = alk_op_bool(op, "center", true) ? alk_op_weight(op, "beta") : NULL;
        alk_fva *mean = alk_op_weight(op, "moving_mean");
        alk_fva *var = alk_op_weight(op, "moving_variance");
        if (alk_op_failed(op) ||
            alk_nn_batchnorm_fold(alk_op_trace(op), gamma, beta, mean, var,
                                  alk_op_float(op, "epsilon", 1e-3), &scale, &offset) != ALK_OK) {
            return;
        }
        /* The folded constants are the layer's float weights for --weight-kif. */
        scale = keras_derived_weight(op, scale);
        offset = keras_derived_weight(op, offset);
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_scale_offset(alk_op_trace(op), x, scale, offset, axes, n_axes));
    }
}

/* `v` (a config mean or variance) broadcast over the positions of `axes` of x: Keras broadcasts
 * a scalar to every channel. */
static alk_fva *on_positions(alk_op *op, alk_fva *v, const alk_fva *x, const int *axes,
                             size_t n_axes) {
    size_t positions = 1;
    size_t ndim = alk_fva_ndim(x);
    for (size_t a = 0; a < n_axes; a++) {
        int axis = axes[a] < 0 ? axes[a] + (int)ndim : axes[a];
        positions *= axis >= 0 && axis < (int)ndim ? alk_fva_shape(x)[axis] : 1;
    }
    if (v == NULL || alk_fva_size(v) != 1 || positions == 1) {
        return v;
    }
    size_t shape[1] = {positions};
    return alk_fva_broadcast_to(alk_op_trace(op), alk_fva_ravel(alk_op_trace(op), v), 1, shape);
}

void keras_normalization(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_fva *mean, *var;
    if (alk_op_has(op, "mean")) {
        mean = alk_op_array(op, "mean");
        var = alk_op_array(op, "variance");
    } else {
        /* Adapted: the statistics are weights (and the count, which only adapt() uses). */
        mean = alk_op_weight(op, "mean");
        var = alk_op_weight(op, "variance");
        (void)alk_op_weight_opt(op, "count");
    }
    int axes[ALK_FVA_MAX_DIM];
    size_t n_axes = read_axes(op, axes, ALK_FVA_MAX_DIM, -1);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    mean = on_positions(op, mean, x, axes, n_axes);
    var = on_positions(op, var, x, axes, n_axes);
    alk_fva *scale = NULL;
    alk_fva *offset = NULL;
    if (alk_nn_normalization_fold(alk_op_trace(op), mean, var, alk_op_bool(op, "invert", false),
                                  &scale, &offset) == ALK_OK) {
        alk_op_out(op, alk_nn_scale_offset(alk_op_trace(op), x, scale, offset, axes, n_axes));
    }
}

/* A number or a list of numbers rounded to float32, as Keras casts a layer's constants to its
 * float32 compute dtype (the reference keeps the float64 of the config). */
static alk_fva *float32_array(alk_op *op, const char *key) {
    alk_fva *a = alk_op_array(op, key);
    if (a == NULL) {
        return NULL;
    }
    size_t n = alk_fva_size(a);
    double *values = alk_malloc((n > 0 ? n : 1) * sizeof(double));
    if (values == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        values[i] = (double)(float)alk_fva_num_at(a, i);
    }
    alk_fva *rounded = alk_fva_numbers(alk_op_trace(op), alk_fva_ndim(a), alk_fva_shape(a), values);
    alk_free(values);
    return rounded;
}

void keras_rescaling(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    alk_fva *scale = float32_array(op, "scale");
    alk_fva *offset = float32_array(op, "offset");
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_fva_binary(t, ALK_ADD, alk_fva_binary(t, ALK_MUL, x, scale), offset));
    }
}

/* ---- Lookups ------------------------------------------------------------------------------------
 */

void keras_embedding(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_fva *table = alk_op_weight(op, "embeddings");
    int64_t dims[2] = {alk_op_int(op, "input_dim", -1), alk_op_int(op, "output_dim", -1)};
    if (keras_check_shape(op, "weight 'embeddings'", table, 2, dims)) {
        alk_op_out(op, alk_nn_embedding(alk_op_trace(op), x, table));
    }
}

void keras_category_encoding(alk_op *op, const void *arg) {
    (void)arg;
    static const char *const modes[] = {"one_hot", "multi_hot", "count", NULL};
    alk_fva *x = alk_op_in(op, 0);
    int mode = alk_op_enum(op, "output_mode", modes, 1);
    int64_t tokens = alk_op_int(op, "num_tokens", -1);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (tokens < 1) {
        alk_op_fail(op, ALK_EINVAL, "num_tokens must be positive");
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    if (mode == 0 && ndim > 1 && alk_fva_shape(x)[ndim - 1] == 1) {
        /* Keras squeezes a trailing axis of 1 before a one-hot encoding. */
        alk_index index[ALK_FVA_MAX_DIM];
        for (size_t d = 0; d + 1 < ndim; d++) {
            index[d] = ALK_ALL;
        }
        index[ndim - 1] = ALK_AT(0);
        x = alk_fva_index(alk_op_trace(op), x, index, ndim);
    }
    static const alk_nn_category_mode nn_modes[] = {ALK_NN_ONE_HOT, ALK_NN_MULTI_HOT, ALK_NN_COUNT};
    alk_op_out(op, alk_nn_category_encoding(alk_op_trace(op), x, (size_t)tokens, nn_modes[mode]));
}

/* ---- The ReLU family ------------------------------------------------------------------------- */

static void relu_with(alk_op *op, const alk_nn_relu *spec) {
    alk_op_out(op, alk_nn_relu_apply(alk_op_trace(op), alk_op_in(op, 0), spec));
}

/* ReLU(max_value, negative_slope, threshold), layer and op alike. */
void keras_relu_layer(alk_op *op, const void *arg) {
    (void)arg;
    alk_nn_relu spec = {
        .threshold = alk_op_float(op, "threshold", 0.0),
        .negative_slope = alk_op_float(op, "negative_slope", 0.0),
        .has_max = alk_op_has(op, "max_value"),
        .max_value = alk_op_float(op, "max_value", 0.0),
    };
    relu_with(op, &spec);
}

void keras_leaky_relu(alk_op *op, const void *arg) {
    (void)arg;
    /* Keras 2 calls the slope `alpha`. */
    double slope = alk_op_has(op, "negative_slope") ? alk_op_float(op, "negative_slope", 0.3)
                                                    : alk_op_float(op, "alpha", 0.3);
    alk_nn_relu spec = {.negative_slope = slope};
    relu_with(op, &spec);
}

void keras_prelu(alk_op *op, const void *arg) {
    (void)arg;
    alk_nn_relu spec = {.alpha = alk_op_weight(op, "alpha")};
    if (spec.alpha != NULL) {
        relu_with(op, &spec);
    }
}
