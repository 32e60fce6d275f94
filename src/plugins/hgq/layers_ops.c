/*
 * HGQ2's operation layers of their own (spec frontends.md §3.4): QAveragePow2, QEinsum, QDot,
 * QSum and QMeanPow2. The merges QAdd ... QMinimum run the Keras merge bodies (hgq_delegate);
 * their per-input quantizers are the plugin's hooks.
 *
 * The power-of-two scales are HGQ2's build-time state: QAveragePow2's 2^round(log2(1/n)) for n
 * inputs and QMeanPow2's 2^round(log2(1/size)) for the size of the reduced axes, recomputed here
 * from the inputs (Python's round: half to even; log2 of 1/n is never a tie for n > 0 except at
 * powers of two, where it is exact).
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include <math.h>

enum { MAX_INPUTS = 64 };

/* 2^round_half_even(log2(1 / n)). */
static double pow2_scale(double n) {
    return ldexp(1.0, (int)nearbyint(log2(1.0 / n)));
}

void hgq_average_pow2(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *inputs[MAX_INPUTS];
    size_t n = alk_op_in_list(op, 0, inputs, MAX_INPUTS);
    if (n == 0 || alk_op_failed(op)) {
        return;
    }
    if (n > MAX_INPUTS) {
        alk_op_fail(op, ALK_EINVAL, "%zu inputs; at most %d are supported", n, MAX_INPUTS);
        return;
    }
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    /* The inputs broadcast to one shape (numpy rules), stacked and summed as the reference. */
    size_t ndim = 0;
    size_t shape[ALK_FVA_MAX_DIM];
    for (size_t j = 0; j < n; j++) {
        ndim = alk_fva_ndim(inputs[j]) > ndim ? alk_fva_ndim(inputs[j]) : ndim;
    }
    for (size_t d = 0; d < ndim; d++) {
        shape[d] = 1;
    }
    for (size_t j = 0; j < n; j++) {
        size_t nd = alk_fva_ndim(inputs[j]);
        for (size_t d = 0; d < nd; d++) {
            size_t size = alk_fva_shape(inputs[j])[d];
            size_t *out = &shape[ndim - nd + d];
            if (size != 1 && *out != 1 && size != *out) {
                alk_op_fail(op, ALK_EINVAL, "input %zu does not broadcast with the others", j);
                return;
            }
            *out = size != 1 ? size : *out;
        }
    }
    for (size_t j = 0; j < n; j++) {
        inputs[j] = alk_fva_broadcast_to(t, inputs[j], ndim, shape);
    }
    int axis0 = 0;
    alk_fva *sum =
        alk_fva_reduce(t, ALK_REDUCE_SUM, alk_fva_stack(t, inputs, n, 0), &axis0, 1, false);
    alk_op_out(op, alk_fva_binary_scalar(t, ALK_MUL, sum, pow2_scale((double)n)));
}

/* The two inputs of an einsum-like layer: a list of two, or two arguments. */
static bool two_inputs(alk_op *op, alk_fva **ret) {
    size_t n = alk_op_n_args(op) >= 2 ? 0 : alk_op_in_list(op, 0, ret, 2);
    if (alk_op_n_args(op) >= 2) {
        ret[0] = alk_op_in(op, 0);
        ret[1] = alk_op_in(op, 1);
        n = 2;
    }
    if (!alk_op_failed(op) && n != 2) {
        alk_op_fail(op, ALK_EINVAL, "needs exactly two inputs, got %zu", n);
    }
    return !alk_op_failed(op);
}

void hgq_einsum(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *in[2];
    const char *equation = alk_op_str(op, "equation", NULL);
    if (!alk_op_failed(op) && equation == NULL) {
        alk_op_fail(op, ALK_EINVAL, "equation is missing");
    }
    if (!two_inputs(op, in)) {
        return;
    }
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    alk_op_out(op, alk_fva_einsum(alk_op_trace(op), equation, in[0], in[1]));
}

/* QDot: Keras's Dot with the reference's einsum equation (alk_nn_dot), after the quantizers. */
void hgq_dot(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *in[2];
    int64_t axes[2];
    size_t n_axes = alk_op_int_list(op, "axes", axes, 2);
    if (n_axes == SIZE_MAX) {
        axes[0] = -1;
        n_axes = 1;
    }
    if (n_axes == 1) {
        axes[1] = axes[0];
    }
    if (!two_inputs(op, in) || n_axes == 0) {
        return;
    }
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    alk_op_out(op, alk_nn_dot(alk_op_trace(op), in[0], in[1], axes[0], axes[1]));
}

void hgq_sum(alk_op *op, const void *mean_pow2) {
    alk_fva *x = alk_op_in(op, 0);
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n_axes = alk_op_int_list(op, "axes", values, ALK_FVA_MAX_DIM);
    bool keepdims = alk_op_bool(op, "keepdims", false);
    double scale = mean_pow2 != NULL ? 1.0 : alk_op_float(op, "scale", 1.0);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    int axes[ALK_FVA_MAX_DIM];
    if (n_axes == SIZE_MAX) {
        values[0] = -1; /* HGQ2's default */
        n_axes = 1;
    }
    size_t ndim = alk_fva_ndim(x);
    double size = 1;
    for (size_t a = 0; a < n_axes; a++) {
        int64_t axis = values[a] < 0 ? values[a] + (int64_t)ndim : values[a];
        if (axis < 0 || axis >= (int64_t)ndim) {
            alk_op_fail(op, ALK_EINVAL, "axis %lld is out of range for %zu axes",
                        (long long)values[a], ndim);
            return;
        }
        axes[a] = (int)axis;
        size *= (double)alk_fva_shape(x)[axis];
    }
    if (mean_pow2 != NULL) {
        scale = pow2_scale(size);
    } else if (!(scale != 0 && frexp(scale, &(int){0}) == 0.5)) {
        alk_op_fail(op, ALK_EINVAL, "scale %g is not a power of 2 (HGQ2 asserts it)", scale);
        return;
    }
    alk_trace *t = alk_op_trace(op);
    alk_fva *sum = alk_fva_reduce(t, ALK_REDUCE_SUM, x, axes, n_axes, keepdims);
    alk_op_out(op, alk_fva_binary_scalar(t, ALK_MUL, sum, scale));
}
