/*
 * HGQ2's Quantizer layer and its layers built on a Keras body (spec frontends.md §3.2-§3.4): the
 * dense, einsum-dense and convolution families, their batch-norm fused forms, QBatchNormalization,
 * the pools and the merges. Each handler computes the quantized weights HGQ2's Keras side uses
 * (qkernel, qbias, qscaler_and_qoffset: src/nn's float32 formulas), puts them in place of the
 * layer's weights (alk_op_set_weight) and runs the Keras body of the keras tracer
 * (alk_op_delegate), so shapes, windows and einsums are checked and lowered in one place. The
 * input and output quantizers are the plugin's hooks (hooks.c).
 *
 * Every layer also checks its own stored variables against its config (hgq_check_own_vars): the
 * Keras weights, then HGQ2's beta and ebops scalars when `enable_ebops`, in HGQ2's vars/N order.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include <string.h>

/* HGQ2's beta and ebops variables exist when enable_ebops, whose default follows enable_iq. */
static size_t ebops_vars(alk_op *op) {
    bool iq = alk_op_bool(op, "enable_iq", true);
    return alk_op_bool(op, "enable_ebops", iq) ? 2 : 0;
}

/* Where beta and ebops sit in a layer whose vars go on after them (the batch-norm fused dense
 * layers: moving_mean and moving_variance follow): `at`, or nowhere without enable_ebops. */
static size_t ebops_at(alk_op *op, size_t at) {
    return ebops_vars(op) != 0 ? at : HGQ_NO_EBOPS;
}

void hgq_quantizer_layer(alk_op *op, const void *arg) {
    (void)arg;
    hgq_check_own_vars(op, "", 0, 0);
    /* The Quantizer layer's own config holds its QuantizerConfig under `config`. */
    alk_op_out(op, hgq_apply(op, "config", HGQ_PLACE_DATALANE, "", alk_op_in(op, 0)));
}

void hgq_delegate(alk_op *op, const void *keras_class) {
    hgq_check_own_vars(op, "", ebops_vars(op), 0);
    alk_op_delegate(op, "keras.layers", (const char *)keras_class);
}

/* ---- Dense and convolutions: kq(kernel), bq(bias) ------------------------------------------- */

/* Puts kq(kernel) and, when `has_bias`, bq(bias) in place of the layer's weights. */
static void quantize_kernel_bias(alk_op *op, bool has_bias) {
    alk_op_set_weight(op, "kernel",
                      hgq_quantized_weight(op, "kernel", "kq_conf", HGQ_PLACE_WEIGHT, "kq", true));
    alk_op_set_weight(
        op, "bias",
        has_bias ? hgq_quantized_weight(op, "bias", "bq_conf", HGQ_PLACE_BIAS, "bq", true) : NULL);
    hgq_check_own_vars(op, "", 1 + has_bias + ebops_vars(op), 1 + has_bias);
}

void hgq_dense(alk_op *op, const void *arg) {
    (void)arg;
    quantize_kernel_bias(op, alk_op_bool(op, "use_bias", true));
    alk_op_delegate(op, "keras.layers", "Dense");
}

void hgq_einsum_dense(alk_op *op, const void *arg) {
    (void)arg;
    /* Keras (and HGQ2's bq) give an einsum-dense a bias exactly when bias_axes is set. */
    quantize_kernel_bias(op, alk_op_has(op, "bias_axes"));
    alk_op_delegate(op, "keras.layers", "EinsumDense");
}

void hgq_conv(alk_op *op, const void *keras_class) {
    quantize_kernel_bias(op, alk_op_bool(op, "use_bias", true));
    alk_op_delegate(op, "keras.layers", (const char *)keras_class);
}

/* ---- Batch-norm fused layers ------------------------------------------------------------------
 */

void hgq_batchnorm_dense(alk_op *op, const void *arg) {
    (void)arg;
    if (!alk_op_bool(op, "use_bias", true)) {
        alk_op_fail(op, ALK_EINVAL, "QBatchNormDense needs use_bias (HGQ2 asserts it)");
        return;
    }
    bool scale = alk_op_bool(op, "scale", true);
    alk_fva *kernel = alk_op_weight(op, "kernel");
    alk_fva *bias = alk_op_weight(op, "bias");
    alk_fva *gamma = scale ? alk_op_weight(op, "bn_gamma") : NULL;
    alk_fva *mean = alk_op_weight(op, "moving_mean");
    alk_fva *var = alk_op_weight(op, "moving_variance");
    alk_hgq_quantizer kq, bq;
    alk_fva *qkernel = NULL, *qbias = NULL;
    if (!hgq_quantizer_of(op, "kq_conf", HGQ_PLACE_WEIGHT, "kq", &kq) ||
        !hgq_quantizer_of(op, "bq_conf", HGQ_PLACE_BIAS, "bq", &bq)) {
        return;
    }
    hgq_check_own_vars(op, "", 4 + scale + ebops_vars(op), ebops_at(op, 2 + scale));
    if (alk_op_failed(op) ||
        alk_hgq_fold_dense_bn(alk_op_trace(op), &kq, &bq, kernel, bias, gamma, mean, var,
                              alk_op_float(op, "epsilon", 1e-3), &qkernel, &qbias) != ALK_OK) {
        return;
    }
    alk_op_set_weight(op, "kernel", qkernel);
    alk_op_set_weight(op, "bias", qbias);
    alk_op_delegate(op, "keras.layers", "Dense");
}

/* The letters of an einsum equation "in,kernel->out": kernel and output specs (no spaces). */
static bool split_equation(alk_op *op, const char *equation, char *kernel, char *output,
                           size_t cap) {
    const char *comma = strchr(equation, ',');
    const char *arrow = strstr(equation, "->");
    if (comma == NULL || arrow == NULL || arrow < comma || (size_t)(arrow - comma) > cap ||
        strlen(arrow + 2) >= cap) {
        alk_op_fail(op, ALK_EINVAL, "equation '%s' is not of the form 'in,kernel->out'", equation);
        return false;
    }
    size_t nk = (size_t)(arrow - comma - 1);
    memcpy(kernel, comma + 1, nk);
    kernel[nk] = '\0';
    strcpy(output, arrow + 2);
    return true;
}

/*
 * The shape Keras's einsum analysis gives a bias on `axes` (HGQ2 reshapes -mean*s to it): the
 * output spec from the first of `axes` on, the size of each letter in `axes` and 1 elsewhere.
 * Sizes come from the kernel's letters (HGQ2 requires the normalize axes to be kernel axes).
 */
static size_t bias_cast_shape(const char *kernel_spec, const char *output_spec, const char *axes,
                              const alk_fva *kernel, size_t *ret) {
    size_t first = strlen(output_spec);
    for (const char *c = axes; *c != '\0'; c++) {
        const char *at = strchr(output_spec, *c);
        first =
            at != NULL && (size_t)(at - output_spec) < first ? (size_t)(at - output_spec) : first;
    }
    size_t n = 0;
    for (const char *c = output_spec + first; *c != '\0' && n < ALK_FVA_MAX_DIM; c++) {
        const char *k = strchr(kernel_spec, *c);
        ret[n++] = strchr(axes, *c) != NULL && k != NULL
                       ? alk_fva_shape(kernel)[(size_t)(k - kernel_spec)]
                       : 1;
    }
    return n;
}

void hgq_einsum_dense_batchnorm(alk_op *op, const void *arg) {
    (void)arg;
    const char *equation = alk_op_str(op, "equation", NULL);
    const char *bias_axes = alk_op_str(op, "bias_axes", NULL);
    const char *normalize = alk_op_str(op, "normalize_axes", NULL);
    normalize = normalize != NULL ? normalize : bias_axes;
    bool scale = alk_op_bool(op, "scale", true);
    if (!alk_op_failed(op) && (equation == NULL || normalize == NULL || bias_axes == NULL)) {
        alk_op_fail(op, ALK_EINVAL,
                    "QEinsumDenseBatchnorm needs an equation and bias_axes (HGQ2 asserts them)");
    }
    alk_fva *kernel = alk_op_weight(op, "kernel");
    alk_fva *bias = alk_op_weight(op, "bias");
    alk_fva *gamma = scale ? alk_op_weight(op, "gamma") : NULL;
    alk_fva *mean = alk_op_weight(op, "moving_mean");
    alk_fva *var = alk_op_weight(op, "moving_variance");
    char kernel_spec[ALK_FVA_MAX_DIM + 1], output_spec[ALK_FVA_MAX_DIM + 8];
    alk_hgq_quantizer kq, bq;
    if (alk_op_failed(op) ||
        !split_equation(op, equation, kernel_spec, output_spec, ALK_FVA_MAX_DIM + 1) ||
        !hgq_quantizer_of(op, "kq_conf", HGQ_PLACE_WEIGHT, "kq", &kq) ||
        !hgq_quantizer_of(op, "bq_conf", HGQ_PLACE_BIAS, "bq", &bq)) {
        return;
    }
    hgq_check_own_vars(op, "", 4 + scale + ebops_vars(op), ebops_at(op, 2 + scale));
    /* The fused kernel equation takes the normalize axes in the kernel's order. */
    char norm_ordered[ALK_FVA_MAX_DIM + 1];
    size_t n_norm = 0;
    for (const char *c = kernel_spec; *c != '\0'; c++) {
        if (strchr(normalize, *c) != NULL) {
            norm_ordered[n_norm++] = *c;
        }
    }
    norm_ordered[n_norm] = '\0';
    if (n_norm != strlen(normalize)) {
        alk_op_fail(op, ALK_EINVAL, "normalize_axes '%s' are not all kernel axes of '%s'",
                    normalize, equation);
        return;
    }
    /* -mean*s is reshaped to the bias shape Keras derives for bias_axes = normalize_axes: the
     * stored bias's own shape when they are the same axes. */
    size_t cast[ALK_FVA_MAX_DIM];
    size_t n_cast = 0;
    bool same_axes = strcmp(normalize, bias_axes) == 0;
    if (!same_axes) {
        if (strstr(output_spec, "...") != NULL) {
            alk_op_fail(op, ALK_EINVAL,
                        "normalize_axes '%s' differing from bias_axes '%s' with an elided "
                        "output ('%s') is not supported",
                        normalize, bias_axes, equation);
            return;
        }
        n_cast = bias_cast_shape(kernel_spec, output_spec, normalize, kernel, cast);
    }
    alk_fva *qkernel = NULL, *qbias = NULL;
    if (alk_hgq_fold_einsum_bn(alk_op_trace(op), &kq, &bq, kernel_spec, norm_ordered, kernel, bias,
                               gamma, mean, var, n_cast, same_axes ? NULL : cast, &qkernel,
                               &qbias) != ALK_OK) {
        return;
    }
    alk_op_set_weight(op, "kernel", qkernel);
    alk_op_set_weight(op, "bias", qbias);
    alk_op_delegate(op, "keras.layers", "EinsumDense");
}

/* ---- QBatchNormalization -------------------------------------------------------------------- */

void hgq_batch_normalization(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    bool scale = alk_op_bool(op, "scale", true), center = alk_op_bool(op, "center", true);
    alk_fva *gamma = scale ? alk_op_weight(op, "bn_gamma") : NULL;
    alk_fva *beta = center ? alk_op_weight(op, "bn_beta") : NULL;
    alk_fva *mean = alk_op_weight(op, "moving_mean");
    alk_fva *var = alk_op_weight(op, "moving_variance");
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n_axes = alk_op_int_list(op, "axis", values, ALK_FVA_MAX_DIM);
    alk_hgq_quantizer kq, bq;
    if (x == NULL || alk_op_failed(op) ||
        !hgq_quantizer_of(op, "kq_conf", HGQ_PLACE_WEIGHT, "kq", &kq) ||
        !hgq_quantizer_of(op, "bq_conf", HGQ_PLACE_BIAS, "bq", &bq)) {
        return;
    }
    hgq_check_own_vars(op, "", 2 + scale + center + ebops_vars(op), 2 + scale + center);
    int axes[ALK_FVA_MAX_DIM] = {-1}; /* Keras's default axis */
    if (n_axes == SIZE_MAX) {
        n_axes = 1;
    } else {
        for (size_t a = 0; a < n_axes; a++) {
            axes[a] = (int)values[a];
        }
    }
    alk_fva *qscale = NULL, *qoffset = NULL;
    if (alk_hgq_fold_bn(alk_op_trace(op), &kq, &bq, gamma, beta, center, mean, var,
                        alk_op_float(op, "epsilon", 1e-3), &qscale, &qoffset) != ALK_OK) {
        return;
    }
    alk_op_out(op, alk_nn_scale_offset(alk_op_trace(op), x, qscale, qoffset, axes, n_axes));
}
