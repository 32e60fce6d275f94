/*
 * torch layers on the shared kernels of src/nn (spec frontends.md §4.3, §4.4): Linear and
 * F.linear, convolutions and transposed convolutions, batch norm, pools and adaptive pools,
 * padding, nearest upsampling, pixel shuffles and embeddings.
 *
 * One handler serves a module and its functional form: a tensor operand is the call's argument
 * (F.conv2d's weight, a get_attr tensor) or else the module's parameter of that role
 * (torch_tensor), and every other parameter is read by torch's name from the call or from the
 * module's attributes. Layouts are torch's: channels first, weights (out, in, *K), which
 * alk_nn_torch_kernel turns into the kernels' layout.
 *
 * What torch computes is what this computes, also where the reference does not (README,
 * "Differences from the reference"): a convolution's padding_mode, a pool's count_include_pad,
 * ceil_mode and divisor_override, adaptive pools to any output size that divides the input,
 * nearest upsampling by any scale, the kept axes of adaptive average pools, and an Embedding's
 * padding_idx row, which torch does not zero at inference. What has no fixed-point meaning is
 * refused by name: training mode, batch statistics, return_indices, max_norm, non-nearest modes.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include "core/alloc.h"
#include "nn/nn.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* The tensor input `i` with `rank` spatial axes: (batch, channels, *spatial). */
static alk_fva *spatial_input(alk_op *op, size_t i, size_t rank) {
    alk_fva *x = torch_in(op, i);
    if (x != NULL && alk_fva_ndim(x) != rank + 2) {
        alk_op_fail(op, ALK_EINVAL,
                    "expects a (batch, channels, %zu spatial axes) input, got %zu axes", rank,
                    alk_fva_ndim(x));
        return NULL;
    }
    return x;
}

/* Refuses a module in training mode (its attribute) or a call with training=True. */
static bool eval_mode(alk_op *op, const char *what) {
    if (alk_op_bool(op, "training", false)) {
        alk_op_fail(op, ALK_ENOTSUP,
                    "%s in training mode is not supported (call .eval() on the model)", what);
        return false;
    }
    return !alk_op_failed(op);
}

/* ---- Linear --------------------------------------------------------------------------------- */

/* nn.Linear, F.linear: x @ weight.T + bias. */
void torch_linear(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = torch_in(op, 0);
    alk_fva *weight = torch_tensor(op, "weight", true), *bias = torch_tensor(op, "bias", false);
    alk_op_out(op, alk_op_failed(op) ? NULL : alk_nn_linear(alk_op_trace(op), x, weight, bias));
}

/* ---- Windows ------------------------------------------------------------------------------- */

/* `key` as `rank` sizes >= `min` (an int or a sequence); false after an error. */
static bool sizes(alk_op *op, const char *key, size_t rank, int64_t dflt, int64_t min,
                  size_t *ret) {
    int64_t v[ALK_NN_MAX_RANK];
    alk_op_ints(op, key, rank, dflt, v);
    for (size_t d = 0; d < rank && !alk_op_failed(op); d++) {
        if (v[d] < min || v[d] > (1 << 24)) {
            alk_op_fail(op, ALK_EINVAL, "%s: %" PRId64 " is out of range", key, v[d]);
        }
        ret[d] = (size_t)v[d];
    }
    return !alk_op_failed(op);
}

/* The padding parameter: 'same', 'valid', or ints (explicit, the same before and after).
 * Explicit pads are written to `pads` (rank pairs). */
static alk_nn_padding padding(alk_op *op, size_t rank, size_t (*pads)[2]) {
    const alk_arg *p = alk_op_get(op, "padding");
    if (p != NULL && p->kind == ALK_ARG_STR) {
        static const char *const names[] = {"valid", "same", NULL};
        return alk_op_enum(op, "padding", names, 0) == 1 ? ALK_NN_PAD_SAME : ALK_NN_PAD_VALID;
    }
    size_t each[ALK_NN_MAX_RANK];
    if (!sizes(op, "padding", rank, 0, 0, each)) {
        return ALK_NN_PAD_VALID;
    }
    for (size_t d = 0; d < rank; d++) {
        pads[d][0] = pads[d][1] = each[d];
    }
    return ALK_NN_PAD_EXPLICIT;
}

/* Stride, dilation, padding of a convolution or pool over `rank` axes with `kernel`. */
static bool read_window(alk_op *op, size_t rank, const size_t *kernel, alk_nn_window *w) {
    alk_nn_window_init(w, rank, kernel);
    w->channels_first = true;
    w->padding = padding(op, rank, w->pads);
    return sizes(op, "stride", rank, 1, 1, w->strides) &&
           sizes(op, "dilation", rank, 1, 1, w->dilation);
}

/* ---- Convolutions --------------------------------------------------------------------------- */

/* The pads a non-zero padding_mode applies before a valid convolution (torch pads the input
 * with the mode, then convolves without padding; 'same' splits d*(k-1) as total//2 before). */
static void mode_pads(const alk_nn_window *w, size_t (*pads)[2]) {
    for (size_t d = 0; d < w->rank; d++) {
        if (w->padding == ALK_NN_PAD_SAME) {
            size_t total = w->dilation[d] * (w->kernel[d] - 1);
            pads[d][0] = total / 2;
            pads[d][1] = total - total / 2;
        } else {
            pads[d][0] = w->padding == ALK_NN_PAD_EXPLICIT ? w->pads[d][0] : 0;
            pads[d][1] = w->padding == ALK_NN_PAD_EXPLICIT ? w->pads[d][1] : 0;
        }
    }
}

/* The kernel sizes of a torch weight (A, B, *K) for `rank` spatial axes. */
static bool kernel_of(alk_op *op, const alk_fva *weight, size_t rank, size_t *ret) {
    if (weight == NULL) {
        return false;
    }
    if (alk_fva_ndim(weight) != rank + 2) {
        alk_op_fail(op, ALK_EINVAL, "weight has %zu axes, a %zu-D convolution needs %zu",
                    alk_fva_ndim(weight), rank, rank + 2);
        return false;
    }
    memcpy(ret, alk_fva_shape(weight) + 2, rank * sizeof(size_t));
    return true;
}

/* The parts of a convolution call, forward or transposed. */
typedef struct conv_call {
    alk_fva *x, *weight, *bias;
    alk_nn_window w;
} conv_call;

/* Input, weight, bias, stride, padding, dilation and groups of a convolution over `rank` axes;
 * false after an error. */
static bool read_conv(alk_op *op, size_t rank, conv_call *c) {
    size_t kernel[ALK_NN_MAX_RANK];
    c->x = spatial_input(op, 0, rank);
    c->weight = torch_tensor(op, "weight", true);
    c->bias = torch_tensor(op, "bias", false);
    if (c->x == NULL || !kernel_of(op, c->weight, rank, kernel) ||
        !read_window(op, rank, kernel, &c->w)) {
        return false;
    }
    int64_t groups = alk_op_int(op, "groups", 1);
    if (groups < 1 && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "groups must be at least 1");
    }
    c->w.groups = groups > 0 ? (size_t)groups : 1;
    return !alk_op_failed(op);
}

/* nn.Conv1d/2d/3d, F.conv1d/2d/3d (`arg`: the rank). torch's padding_mode (reflect, replicate,
 * circular) pads the input first; the reference pads with zeros whatever the mode. */
void torch_conv(alk_op *op, const void *arg) {
    static const char *const modes[] = {"zeros", "reflect", "replicate", "circular", NULL};
    static const alk_pad_mode pad_modes[] = {ALK_PAD_CONSTANT, ALK_PAD_REFLECT, ALK_PAD_EDGE,
                                             ALK_PAD_WRAP};
    alk_trace *t = alk_op_trace(op);
    conv_call c;
    int mode = alk_op_enum(op, "padding_mode", modes, 0);
    if (!read_conv(op, *(const size_t *)arg, &c)) {
        return;
    }
    if (mode != 0) {
        size_t pads[ALK_NN_MAX_RANK][2];
        mode_pads(&c.w, pads);
        c.x = alk_nn_pad_spatial(t, c.x, true, (const size_t(*)[2])pads, pad_modes[mode], 0);
        c.w.padding = ALK_NN_PAD_VALID;
    }
    alk_op_out(op, alk_nn_conv(t, c.x, &c.w, alk_nn_torch_kernel(t, c.weight), c.bias));
}

/* nn.ConvTranspose1d/2d/3d, F.conv_transpose1d/2d/3d (`arg`: the rank). */
void torch_conv_transpose(alk_op *op, const void *arg) {
    static const char *const modes[] = {"zeros", NULL}; /* torch itself accepts only zeros */
    size_t rank = *(const size_t *)arg;
    alk_trace *t = alk_op_trace(op);
    conv_call c;
    (void)alk_op_enum(op, "padding_mode", modes, 0);
    if (!read_conv(op, rank, &c) || !sizes(op, "output_padding", rank, 0, 0, c.w.output_padding)) {
        return;
    }
    if (c.w.padding != ALK_NN_PAD_EXPLICIT) {
        alk_op_fail(op, ALK_EINVAL, "padding must be ints for a transposed convolution");
        return;
    }
    c.w.has_output_padding = true;
    alk_op_out(op, alk_nn_conv_transpose(t, c.x, &c.w, alk_nn_torch_kernel(t, c.weight), c.bias));
}

/* ---- Batch norm ----------------------------------------------------------------------------- */

/* nn.BatchNorm1d/2d/3d, F.batch_norm: x * scale + offset on the channel axis, folded in
 * float32. Without running statistics (track_running_stats=False) torch normalises with the
 * batch's own statistics, which has no fixed-point form: refused (the reference uses 0). */
void torch_batch_norm(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = torch_in(op, 0);
    alk_fva *mean = torch_tensor(op, "running_mean", false);
    alk_fva *var = torch_tensor(op, "running_var", false);
    alk_fva *gamma = torch_tensor(op, "weight", false), *beta = torch_tensor(op, "bias", false);
    double eps = alk_op_float(op, "eps", 1e-5);
    if (x == NULL || !eval_mode(op, "batch norm")) {
        return;
    }
    if (mean == NULL || var == NULL) {
        alk_op_fail(op, ALK_ENOTSUP,
                    "batch norm without running statistics (track_running_stats=False) uses the "
                    "batch's statistics, which is not supported");
        return;
    }
    if (alk_fva_ndim(x) < 2) {
        alk_op_fail(op, ALK_EINVAL, "batch norm needs a (batch, channels, ...) input");
        return;
    }
    alk_fva *scale, *offset;
    if (alk_nn_batchnorm_fold(t, gamma, beta, mean, var, eps, &scale, &offset) != ALK_OK) {
        return;
    }
    static const int channel_axis = 1;
    alk_op_out(op, alk_nn_scale_offset(t, x, scale, offset, &channel_axis, 1));
}

/* ---- Pools ---------------------------------------------------------------------------------- */

/* Max and average pools, modules and functions (`arg`: a torch_pool_def). */
void torch_pool(alk_op *op, const void *arg) {
    const torch_pool_def *def = arg;
    alk_fva *x = spatial_input(op, 0, def->rank);
    alk_nn_pool pool = {.kind = def->kind};
    size_t kernel[ALK_NN_MAX_RANK];
    if (x == NULL || !sizes(op, "kernel_size", def->rank, 0, 1, kernel) ||
        !read_window(op, def->rank, kernel, &pool.window)) {
        return;
    }
    /* A stride of None (or []) is the kernel size. */
    int64_t strides[ALK_NN_MAX_RANK];
    size_t n_strides = alk_op_int_list(op, "stride", strides, ALK_NN_MAX_RANK);
    if (n_strides == SIZE_MAX || n_strides == 0) {
        memcpy(pool.window.strides, kernel, sizeof(kernel));
    }
    pool.window.ceil_mode = alk_op_bool(op, "ceil_mode", false);
    pool.count_include_pad = alk_op_bool(op, "count_include_pad", true);
    int64_t divisor = alk_op_int(op, "divisor_override", 0);
    if (alk_op_bool(op, "return_indices", false)) {
        alk_op_fail(op, ALK_ENOTSUP, "return_indices is not supported");
    }
    if (divisor < 0) {
        alk_op_fail(op, ALK_EINVAL, "divisor_override must be positive");
    }
    if (pool.window.padding == ALK_NN_PAD_SAME && !alk_op_failed(op)) {
        alk_op_fail(op, ALK_EINVAL, "padding must be ints for a pool");
    }
    pool.divisor_override = (size_t)divisor;
    alk_op_out(op, alk_op_failed(op) ? NULL : alk_nn_pool_apply(alk_op_trace(op), x, &pool));
}

/*
 * Adaptive pools (`arg`: a torch_pool_def): to output size 1 a global pool that keeps its axes
 * (the reference drops them for the average); to a size that divides the input the uniform
 * window torch's adaptive rule gives (kernel = stride = in / out). Other sizes make windows of
 * different lengths: refused.
 */
void torch_adaptive_pool(alk_op *op, const void *arg) {
    const torch_pool_def *def = arg;
    alk_fva *x = spatial_input(op, 0, def->rank);
    const alk_arg *size = alk_op_get(op, "output_size");
    if (alk_op_bool(op, "return_indices", false)) {
        alk_op_fail(op, ALK_ENOTSUP, "return_indices is not supported");
    }
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    bool seq = size != NULL && (size->kind == ALK_ARG_TUPLE || size->kind == ALK_ARG_LIST);
    if (size == NULL || (!seq && size->kind != ALK_ARG_INT) ||
        (seq && size->as.seq.len != def->rank)) {
        alk_op_fail(op, ALK_EINVAL, "output_size must be an int or %zu sizes", def->rank);
        return;
    }
    size_t kernel[ALK_NN_MAX_RANK];
    bool global = true;
    for (size_t d = 0; d < def->rank; d++) {
        const alk_arg *item = seq ? size->as.seq.items[d] : size;
        size_t in = alk_fva_shape(x)[2 + d];
        int64_t out = item->kind == ALK_ARG_NONE  ? (int64_t)in
                      : item->kind == ALK_ARG_INT ? item->as.integer
                                                  : -1;
        if (out < 1 || in % (size_t)out != 0) {
            alk_op_fail(op, ALK_ENOTSUP,
                        "adaptive pooling of %zu to %" PRId64
                        " is not supported (the output size must divide the input size)",
                        in, out);
            return;
        }
        kernel[d] = in / (size_t)out;
        global = global && out == 1;
    }
    alk_trace *t = alk_op_trace(op);
    if (global) {
        alk_op_out(op, alk_nn_global_pool(t, x, def->kind, true, true));
        return;
    }
    alk_nn_pool pool = {.kind = def->kind, .count_include_pad = true};
    alk_nn_window_init(&pool.window, def->rank, kernel);
    pool.window.channels_first = true;
    memcpy(pool.window.strides, kernel, sizeof(kernel));
    alk_op_out(op, alk_nn_pool_apply(t, x, &pool));
}

/* ---- Padding -------------------------------------------------------------------------------- */

/* x padded by torch pad pairs (last axis first; negative pads crop), `n` entries. */
static alk_fva *pad_last_axes(alk_op *op, alk_fva *x, const int64_t *pad, size_t n,
                              alk_pad_mode mode, double value) {
    size_t ndim = alk_fva_ndim(x);
    if (n % 2 != 0 || n / 2 > ndim) {
        alk_op_fail(op, ALK_EINVAL, "pad has %zu entries for a %zu-D tensor (pairs, at most %zu)",
                    n, ndim, 2 * ndim);
        return NULL;
    }
    int64_t pads[ALK_FVA_MAX_DIM][2] = {{0}};
    alk_index crop[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < ndim; d++) {
        crop[d] = ALK_ALL;
    }
    bool cropped = false;
    for (size_t j = 0; j < n / 2; j++) {
        size_t axis = ndim - 1 - j;
        int64_t before = pad[2 * j], after = pad[2 * j + 1];
        pads[axis][0] = before > 0 ? before : 0;
        pads[axis][1] = after > 0 ? after : 0;
        if (before < 0 || after < 0) {
            /* torch crops where a pad is negative. */
            int64_t len = (int64_t)alk_fva_shape(x)[axis];
            crop[axis] = ALK_SLICE(before < 0 ? -before : 0, after < 0 ? len + after : len, 1);
            cropped = true;
        }
    }
    alk_trace *t = alk_op_trace(op);
    if (cropped) {
        x = alk_fva_index(t, x, crop, ndim);
    }
    return x != NULL ? alk_fva_pad(t, x, (const int64_t(*)[2])pads, mode, value) : NULL;
}

static const alk_pad_mode PAD_MODES[] = {ALK_PAD_CONSTANT, ALK_PAD_REFLECT, ALK_PAD_EDGE,
                                         ALK_PAD_WRAP};

/* F.pad(x, pad, mode='constant', value=None): modes constant, reflect, replicate, circular. */
void torch_pad(alk_op *op, const void *arg) {
    (void)arg;
    static const char *const modes[] = {"constant", "reflect", "replicate", "circular", NULL};
    alk_fva *x = alk_op_in(op, 0);
    int64_t pad[2 * ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "pad", pad, 2 * ALK_FVA_MAX_DIM);
    int mode = alk_op_enum(op, "mode", modes, 0);
    double value = alk_op_float(op, "value", 0);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (n == SIZE_MAX) {
        alk_op_fail(op, ALK_EINVAL, "pad: missing");
        return;
    }
    alk_op_out(op, pad_last_axes(op, x, pad, n, PAD_MODES[mode], value));
}

/* The padding modules (`arg`: a torch_pad_def): `padding` is an int or 2*rank ints, last axis
 * first; ConstantPad's `value`. ZeroPad1d/3d and CircularPad* (torch 2.1) are handled by name
 * whatever the client's torch. */
void torch_pad_module(alk_op *op, const void *arg) {
    const torch_pad_def *def = arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t pad[2 * ALK_NN_MAX_RANK];
    alk_op_ints(op, "padding", 2 * def->rank, 0, pad);
    double value = alk_op_float(op, "value", 0);
    if (x != NULL && !alk_op_failed(op)) {
        alk_op_out(op, pad_last_axes(op, x, pad, 2 * def->rank, def->mode, value));
    }
}

/* ---- Upsampling ----------------------------------------------------------------------------- */

/* ATen's nearest source index: exact for equal sizes and doubling, else floor(o * scale) in
 * float32 with scale = 1/scale_factor (when given) or in/out, clamped to the input. */
static int64_t nearest_source(size_t o, size_t in, size_t out, double scale_factor) {
    if (out == in) {
        return (int64_t)o;
    }
    if (out == 2 * in) {
        return (int64_t)(o >> 1);
    }
    float scale = scale_factor > 0 ? (float)(1.0 / scale_factor) : (float)in / (float)out;
    int64_t src = (int64_t)floorf((float)o * scale);
    return src < (int64_t)in - 1 ? src : (int64_t)in - 1;
}

/* Every spatial axis of x (channels first) resized to `out` by nearest neighbours: a repeat for
 * integer ratios, else a gather (both free of hardware). */
static alk_fva *resize_nearest(alk_op *op, alk_fva *x, const size_t *out, const double *factors) {
    alk_trace *t = alk_op_trace(op);
    size_t rank = alk_fva_ndim(x) - 2;
    size_t repeat[ALK_NN_MAX_RANK];
    bool integer = true;
    for (size_t d = 0; d < rank; d++) {
        size_t in = alk_fva_shape(x)[2 + d];
        repeat[d] = out[d] / in;
        integer =
            integer && out[d] % in == 0 && (factors[d] <= 0 || factors[d] == (double)repeat[d]);
    }
    if (integer) {
        return alk_nn_upsample_nearest(t, x, true, repeat);
    }
    for (size_t d = 0; d < rank && x != NULL; d++) {
        size_t in = alk_fva_shape(x)[2 + d];
        int64_t *indices = alk_malloc((out[d] > 0 ? out[d] : 1) * sizeof(int64_t));
        if (indices == NULL) {
            alk_op_fail(op, ALK_ENOMEM, "out of memory for %zu indices", out[d]);
            return NULL;
        }
        for (size_t o = 0; o < out[d]; o++) {
            indices[o] = nearest_source(o, in, out[d], factors[d]);
        }
        x = alk_fva_take(t, x, indices, out[d], (int)(2 + d));
        alk_free(indices);
    }
    return x;
}

/*
 * nn.Upsample, nn.UpsamplingNearest2d, F.interpolate/upsample/upsample_nearest: nearest
 * neighbours only (other modes interpolate with non-dyadic weights). `size` (an int or one per
 * axis) or `scale_factor` (a number or one per axis, output floor(in * s)); any ratio, as
 * torch (the reference needs integer ratios and truncates a fractional scale factor).
 */
void torch_upsample(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    const char *mode = alk_op_str(op, "mode", "nearest");
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (strcmp(mode, "nearest") != 0 || alk_op_bool(op, "antialias", false)) {
        alk_op_fail(op, ALK_ENOTSUP,
                    "only mode='nearest' without antialias is supported (got mode '%s')", mode);
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    if (ndim < 3 || ndim > ALK_NN_MAX_RANK + 2) {
        alk_op_fail(op, ALK_EINVAL, "expects a (batch, channels, 1 to 3 spatial axes) input");
        return;
    }
    size_t rank = ndim - 2, out[ALK_NN_MAX_RANK];
    double factors[ALK_NN_MAX_RANK] = {0};
    int64_t size[ALK_NN_MAX_RANK];
    const alk_arg *scale = alk_op_get(op, "scale_factor");
    /* recompute_scale_factor=True: the index rule uses in/out, as for a given size. */
    bool keep_factor = !alk_op_bool(op, "recompute_scale_factor", false);
    if (alk_op_has(op, "size")) {
        alk_op_ints(op, "size", rank, 0, size);
        for (size_t d = 0; d < rank; d++) {
            out[d] = size[d] > 0 ? (size_t)size[d] : 0;
        }
    } else if (scale != NULL && scale->kind != ALK_ARG_NONE) {
        bool seq = scale->kind == ALK_ARG_TUPLE || scale->kind == ALK_ARG_LIST;
        for (size_t d = 0; d < rank; d++) {
            const alk_arg *item = seq && d < scale->as.seq.len ? scale->as.seq.items[d] : scale;
            double s = 0;
            if ((seq && scale->as.seq.len != rank) || !torch_number_of(item, &s) || !(s > 0)) {
                alk_op_fail(op, ALK_EINVAL, "scale_factor must be a positive number or %zu", rank);
                return;
            }
            out[d] = (size_t)floor((double)alk_fva_shape(x)[2 + d] * s);
            factors[d] = keep_factor ? s : 0;
        }
    } else {
        alk_op_fail(op, ALK_EINVAL, "needs a size or a scale_factor");
        return;
    }
    for (size_t d = 0; d < rank; d++) {
        if (out[d] == 0 || out[d] > (1 << 24)) {
            alk_op_fail(op, ALK_EINVAL, "output size %zu of spatial axis %zu", out[d], d);
            return;
        }
    }
    alk_op_out(op, alk_op_failed(op) ? NULL : resize_nearest(op, x, out, factors));
}

/* ---- Pixel shuffles and embeddings ---------------------------------------------------------- */

/* nn.PixelShuffle/F.pixel_shuffle (`arg` NULL) and PixelUnshuffle/F.pixel_unshuffle (non-NULL). */
void torch_pixel_shuffle(alk_op *op, const void *arg) {
    bool un = arg != NULL;
    alk_fva *x = alk_op_in(op, 0);
    int64_t r = alk_op_int(op, un ? "downscale_factor" : "upscale_factor", 0);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (r < 1) {
        alk_op_fail(op, ALK_EINVAL, "the factor must be at least 1");
        return;
    }
    alk_trace *t = alk_op_trace(op);
    alk_op_out(op, un ? alk_nn_pixel_unshuffle(t, x, (size_t)r)
                      : alk_nn_pixel_shuffle(t, x, (size_t)r));
}

/* nn.Embedding, F.embedding: a lookup per column of the weight. padding_idx only matters to
 * training in torch, so its row is used as it is (the reference zeroes it); max_norm renormalises
 * rows at each call: refused. */
void torch_embedding(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = torch_in(op, 0);
    alk_fva *weight = torch_tensor(op, "weight", true);
    if (alk_op_has(op, "max_norm")) {
        alk_op_fail(op, ALK_ENOTSUP, "max_norm is not supported");
    }
    alk_op_out(op, alk_op_failed(op) ? NULL : alk_nn_embedding(alk_op_trace(op), x, weight));
}
