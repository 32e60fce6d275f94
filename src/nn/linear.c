/*
 * Dense layers and convolutions (frontends §2.2 Dense/EinsumDense/Conv/DepthwiseConv/ConvTranspose,
 * §4.3 Linear/Conv/ConvTranspose).
 *
 * Design. Every convolution is one shape of computation, the reference's: gather the patches
 * (trace/fvarray.h, pad value 0 as a constant variable with factor 1), view them as
 * (..., K_vol, g, Cin/g), bring the kernel to (K_vol, g, Cin/g, Cout/g), and contract with
 * einsum('...kgc,kgco->...go'), which lowers to one CMVM per output position and group. Keras and
 * torch differ only in how their kernels are laid out and how they pad; both are normalised
 * before this point (alk_nn_torch_kernel, alk_nn_window_resolve), so the einsum, the bias and the
 * channel moves are written once.
 */
#include "nn/nn_int.h"

#include <stdio.h>
#include <string.h>

/* ---- Layout helpers (shared with pool.c and spatial.c) ----------------------------------- */

alk_fva *alk__nn_channels_last(alk_trace *t, const alk_fva *x, bool channels_first) {
    return channels_first ? alk_fva_moveaxis(t, x, 1, -1) : (alk_fva *)x;
}

alk_fva *alk__nn_restore_layout(alk_trace *t, const alk_fva *y, bool channels_first) {
    return channels_first ? alk_fva_moveaxis(t, y, -1, 1) : (alk_fva *)y;
}

alk_fva *alk_nn_to_channels_last(alk_trace *t, const alk_fva *x) {
    if (!alk__nn_ok(t) || x == NULL) {
        return NULL;
    }
    return alk_fva_moveaxis(t, x, 1, -1);
}

alk_fva *alk_nn_to_channels_first(alk_trace *t, const alk_fva *x) {
    if (!alk__nn_ok(t) || x == NULL) {
        return NULL;
    }
    return alk_fva_moveaxis(t, x, -1, 1);
}

alk_fva *alk_nn_torch_kernel(alk_trace *t, const alk_fva *weight) {
    if (!alk__nn_ok(t) || weight == NULL || !alk__nn_require_numeric(t, weight, "weight")) {
        return NULL;
    }
    size_t ndim = alk_fva_ndim(weight);
    if (ndim < 3 || ndim > 2 + ALK_NN_MAX_RANK) {
        alk_trace_fail(t, ALK_EINVAL, "weight of %zu axes: a convolution weight has 3 to 5", ndim);
        return NULL;
    }
    /* (A, B, *K) -> (*K, B, A) */
    int axes[2 + ALK_NN_MAX_RANK];
    for (size_t d = 0; d + 2 < ndim; d++) {
        axes[d] = (int)(d + 2);
    }
    axes[ndim - 2] = 1;
    axes[ndim - 1] = 0;
    return alk_fva_transpose(t, weight, axes);
}

/* ---- Dense --------------------------------------------------------------------------------- */

/* `+ bias` unless it is absent; adding a missing bias is the reference's `+ 0.0`, a no-op. */
static alk_fva *add_bias(alk_trace *t, alk_fva *y, const alk_fva *bias) {
    if (bias == NULL || y == NULL) {
        return y;
    }
    if (!alk__nn_require_numeric(t, bias, "bias")) {
        return NULL;
    }
    return alk_fva_binary(t, ALK_ADD, y, bias);
}

alk_fva *alk_nn_einsum_dense(alk_trace *t, const char *equation, const alk_fva *x,
                             const alk_fva *kernel, const alk_fva *bias) {
    if (!alk__nn_ok(t) || x == NULL || kernel == NULL) {
        return NULL;
    }
    if (!alk__nn_require_numeric(t, kernel, "kernel")) {
        return NULL;
    }
    return add_bias(t, alk_fva_einsum(t, equation, x, kernel), bias);
}

alk_fva *alk_nn_dense(alk_trace *t, const alk_fva *x, const alk_fva *kernel, const alk_fva *bias) {
    return alk_nn_einsum_dense(t, "...c,cC->...C", x, kernel, bias);
}

alk_fva *alk_nn_dot(alk_trace *t, const alk_fva *a, const alk_fva *b, int64_t axis0,
                    int64_t axis1) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if (!alk__nn_ok(t) || a == NULL || b == NULL) {
        return NULL;
    }
    size_t r0 = alk_fva_ndim(a), r1 = alk_fva_ndim(b);
    if (r0 < 1 || r1 < 1 || r0 + r1 - 1 > sizeof(letters) - 1) {
        alk_trace_fail(t, ALK_EINVAL, "Dot of inputs with %zu and %zu axes", r0, r1);
        return NULL;
    }
    /* Python's %: the axes count from the end when negative. */
    size_t i0 = (size_t)(((axis0 % (int64_t)r0) + (int64_t)r0) % (int64_t)r0);
    size_t i1 = (size_t)(((axis1 % (int64_t)r1) + (int64_t)r1) % (int64_t)r1);
    char sub0[64], sub1[64], out[128], equation[64 + 64 + 128 + 8];
    memcpy(sub0, letters, r0);
    sub0[r0] = '\0';
    sub1[0] = sub0[0];
    memcpy(sub1 + 1, letters + r0, r1 - 1);
    char contracted = sub0[i0];
    sub1[i1] = contracted;
    sub1[r1] = '\0';
    size_t n = 0;
    for (size_t j = 0; j < r0; j++) {
        if (sub0[j] != contracted) {
            out[n++] = sub0[j];
        }
    }
    for (size_t j = 1; j < r1; j++) {
        if (sub1[j] != contracted) {
            out[n++] = sub1[j];
        }
    }
    out[n] = '\0';
    snprintf(equation, sizeof(equation), "%s,%s->%s", sub0, sub1, out);
    return alk_fva_einsum(t, equation, a, b);
}

alk_fva *alk_nn_linear(alk_trace *t, const alk_fva *x, const alk_fva *weight, const alk_fva *bias) {
    if (!alk__nn_ok(t) || x == NULL || weight == NULL) {
        return NULL;
    }
    if (!alk__nn_require_numeric(t, weight, "weight")) {
        return NULL;
    }
    if (alk_fva_ndim(weight) != 2) {
        alk_trace_fail(t, ALK_EINVAL, "weight of %zu axes: a linear weight is (out, in)",
                       alk_fva_ndim(weight));
        return NULL;
    }
    return add_bias(t, alk_fva_matmul(t, x, alk_fva_transpose(t, weight, NULL)), bias);
}

/* ---- Convolutions --------------------------------------------------------------------------- */

/* The checks every convolution shares: input rank, channel count; returns the channels-last view
 * and its spatial sizes. */
static alk_fva *conv_input(alk_trace *t, const alk_fva *x, const alk_nn_window *w,
                           size_t *ret_channels, size_t *ret_in) {
    size_t ndim = alk_fva_ndim(x);
    if (ndim != w->rank + 2) {
        alk_trace_fail(t, ALK_EINVAL,
                       "input of %zu axes: a %zu-D window needs (batch, %zu spatial, channels)",
                       ndim, w->rank, w->rank);
        return NULL;
    }
    alk_fva *xl = alk__nn_channels_last(t, x, w->channels_first);
    if (xl == NULL) {
        return NULL;
    }
    const size_t *shape = alk_fva_shape(xl);
    for (size_t d = 0; d < w->rank; d++) {
        ret_in[d] = shape[1 + d];
    }
    *ret_channels = shape[ndim - 1];
    return xl;
}

/*
 * The grouped contraction: patches (B, *out, K_vol*Cin) viewed (B, *out, K_vol, g, Cin/g) against
 * `kernel4` (K_vol, g, Cin/g, Cout/g); flattened to (B, *out, Cout), + bias, back to the input's
 * layout.
 */
static alk_fva *contract(alk_trace *t, alk_fva *patches, const alk_nn_window *w, size_t groups,
                         size_t cin_per_g, const alk_fva *kernel4, const alk_fva *bias) {
    if (patches == NULL || kernel4 == NULL) {
        return NULL;
    }
    size_t ndim = alk_fva_ndim(patches);
    const size_t *shape = alk_fva_shape(patches);
    int64_t view[2 + ALK_NN_MAX_RANK + 3];
    for (size_t d = 0; d + 1 < ndim; d++) {
        view[d] = (int64_t)shape[d];
    }
    view[ndim - 1] = -1;
    view[ndim] = (int64_t)groups;
    view[ndim + 1] = (int64_t)cin_per_g;
    alk_fva *x = alk_fva_reshape(t, patches, ndim + 2, view);
    alk_fva *y = alk_fva_einsum(t, "...kgc,kgco->...go", x, kernel4);
    if (y == NULL) {
        return NULL;
    }
    /* (..., g, Cout/g) -> (..., Cout): output channel = group * Cout/g + o. */
    view[ndim - 1] = -1;
    y = alk_fva_reshape(t, y, ndim, view);
    return alk__nn_restore_layout(t, add_bias(t, y, bias), w->channels_first);
}

/* Checks the kernel against the window: numeric, rank + 2 axes, the window's kernel sizes. */
static bool check_kernel(alk_trace *t, const alk_fva *kernel, const alk_nn_window *w) {
    if (!alk__nn_require_numeric(t, kernel, "kernel")) {
        return false;
    }
    size_t ndim = alk_fva_ndim(kernel);
    if (ndim != w->rank + 2) {
        alk_trace_fail(t, ALK_EINVAL, "kernel of %zu axes: a %zu-D convolution needs %zu", ndim,
                       w->rank, w->rank + 2);
        return false;
    }
    const size_t *shape = alk_fva_shape(kernel);
    for (size_t d = 0; d < w->rank; d++) {
        if (shape[d] != w->kernel[d]) {
            alk_trace_fail(t, ALK_EINVAL, "kernel axis %zu has %zu taps, the window %zu", d,
                           shape[d], w->kernel[d]);
            return false;
        }
    }
    return true;
}

static size_t kernel_volume(const alk_nn_window *w) {
    size_t v = 1;
    for (size_t d = 0; d < w->rank; d++) {
        v *= w->kernel[d];
    }
    return v;
}

/*
 * Every convolution: the kernel (*K, A, B) is (*K, Cin/g, Cout) forward and (*K, Cout/g, Cin)
 * transposed; both views (K_vol, A, g, B/g) are permuted to (K_vol, g, Cin/g, Cout/g) and
 * contracted with the patches.
 */
static alk_fva *convolve(alk_trace *t, const alk_fva *x, const alk_nn_window *w, size_t groups,
                         const alk_fva *kernel, const alk_fva *bias, bool transposed) {
    if (!check_kernel(t, kernel, w)) {
        return NULL;
    }
    size_t cin, in[ALK_NN_MAX_RANK];
    alk_fva *xl = conv_input(t, x, w, &cin, in);
    if (xl == NULL) {
        return NULL;
    }
    const size_t *ks = alk_fva_shape(kernel);
    size_t a = ks[w->rank], b = ks[w->rank + 1];
    bool fits = groups >= 1 && b % groups == 0 && (transposed ? b == cin : a * groups == cin);
    if (!fits) {
        alk_trace_fail(t, ALK_EINVAL,
                       "kernel (..., %zu, %zu) with %zu groups does not fit %zu input channels", a,
                       b, groups, cin);
        return NULL;
    }
    alk_nn_geometry g;
    if (alk_nn_window_resolve(t, w, in, transposed, &g) != ALK_OK) {
        return NULL;
    }
    alk_patch_spec spec;
    alk__nn_patch_spec(w, &g, transposed, &spec);
    alk_fva *patches = transposed ? alk_fva_patches_transposed(t, xl, &spec, 0.0)
                                  : alk_fva_patches(t, xl, &spec, 0.0);
    int64_t k4[4] = {(int64_t)kernel_volume(w), (int64_t)a, (int64_t)groups, (int64_t)(b / groups)};
    /* (K_vol, Cin/g, g, Cout/g) forward, (K_vol, Cout/g, g, Cin/g) transposed. */
    static const int forward_order[4] = {0, 2, 1, 3}, transposed_order[4] = {0, 2, 3, 1};
    alk_fva *kernel4 = alk_fva_transpose(t, alk_fva_reshape(t, kernel, 4, k4),
                                         transposed ? transposed_order : forward_order);
    return contract(t, patches, w, groups, transposed ? b / groups : a, kernel4, bias);
}

alk_fva *alk_nn_conv(alk_trace *t, const alk_fva *x, const alk_nn_window *w, const alk_fva *kernel,
                     const alk_fva *bias) {
    if (!alk__nn_ok(t) || x == NULL || w == NULL || kernel == NULL) {
        return NULL;
    }
    return convolve(t, x, w, w->groups, kernel, bias, false);
}

alk_fva *alk_nn_depthwise_conv(alk_trace *t, const alk_fva *x, const alk_nn_window *w,
                               const alk_fva *kernel, const alk_fva *bias) {
    if (!alk__nn_ok(t) || x == NULL || w == NULL || kernel == NULL) {
        return NULL;
    }
    if (!check_kernel(t, kernel, w)) {
        return NULL;
    }
    /* (*K, Cin, dm) -> (*K, 1, Cin*dm): a convolution with one group per input channel. */
    const size_t *ks = alk_fva_shape(kernel);
    size_t cin = ks[w->rank], dm = ks[w->rank + 1];
    int64_t shape[2 + ALK_NN_MAX_RANK];
    for (size_t d = 0; d < w->rank; d++) {
        shape[d] = (int64_t)ks[d];
    }
    shape[w->rank] = 1;
    shape[w->rank + 1] = (int64_t)(cin * dm);
    alk_fva *grouped = alk_fva_reshape(t, kernel, w->rank + 2, shape);
    if (grouped == NULL) {
        return NULL;
    }
    return convolve(t, x, w, cin, grouped, bias, false);
}

alk_fva *alk_nn_conv_transpose(alk_trace *t, const alk_fva *x, const alk_nn_window *w,
                               const alk_fva *kernel, const alk_fva *bias) {
    if (!alk__nn_ok(t) || x == NULL || w == NULL || kernel == NULL) {
        return NULL;
    }
    return convolve(t, x, w, w->groups, kernel, bias, true);
}
