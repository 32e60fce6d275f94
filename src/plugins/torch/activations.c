/*
 * torch activations and the unary map (spec frontends.md §4.3-§4.5): the exact maps (relu, abs,
 * sign, round, floor, ...) and the table functions (sigmoid, gelu, exp, log, ...) come from the
 * torch unary map of src/nn, which lowers each as the reference does; a table function gives a
 * pending array that later arithmetic with numbers composes into (round(sigmoid(x) * 16) is one
 * table), and that the first operation needing values tabulates (torch_plain).
 *
 * The activation modules' own parameters are honoured, as torch does and the reference does not
 * (it ignores every module parameter of the simple activations): ELU's alpha, GELU's tanh
 * approximation, Softplus's beta and threshold, Hardtanh's bounds.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "torch_int.h"

#include "nn/nn.h"

#include <math.h>
#include <string.h>

/* The unary map entry `arg` (a name of alk_nn_torch_unary) on the input. */
void torch_unary(alk_op *op, const void *arg) {
    const char *name = arg;
    alk_fva *x = alk_op_in(op, 0);
    if (strcmp(name, "round") == 0 && alk_op_int(op, "decimals", 0) != 0) {
        alk_op_fail(op, ALK_ENOTSUP, "round with decimals is not supported");
        return;
    }
    /* sign compares: it needs the values of a table function. */
    if (strcmp(name, "sign") == 0) {
        x = torch_plain(op, x);
    }
    alk_op_out(op, x != NULL ? alk_nn_torch_activate(alk_op_trace(op), name, x) : NULL);
}

/* torch's softplus with its parameters: x where beta * x > threshold, else
 * log1p(exp(beta * x)) / beta. `user` is a numeric array [beta, threshold] in the trace. */
static double softplus(double x, void *user) {
    double beta = alk_fva_num_at(user, 0), threshold = alk_fva_num_at(user, 1);
    return x * beta > threshold ? x : log1p(exp(x * beta)) / beta;
}

/* The activations with parameters, as modules (Sigmoid, GELU, ELU, ...: `arg` is the lowercased
 * class name) and functions (F.gelu, F.elu, F.softplus, ...). */
void torch_activation(alk_op *op, const void *arg) {
    const char *name = arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_trace *t = alk_op_trace(op);
    if (x == NULL) {
        return;
    }
    if (strcmp(name, "gelu") == 0) {
        static const char *const approximations[] = {"none", "tanh", NULL};
        if (alk_op_enum(op, "approximate", approximations, 0) == 1) {
            alk_op_out(op, alk_fva_apply(t, x, ALK_FN_GELU_TANH));
            return;
        }
    } else if (strcmp(name, "elu") == 0) {
        double alpha = alk_op_float(op, "alpha", 1.0);
        if (alpha != 1.0) {
            alk_op_out(op, alk_fva_apply_with(t, x, ALK_FN_ELU, alpha));
            return;
        }
    } else if (strcmp(name, "softplus") == 0) {
        /* Also at the default threshold (20): torch's x above it is exact, log1p(exp(x)) is
         * not, and a quantizer composed into the table rounds the two apart at ties
         * (round(softplus(20.3125) * 8) is 162 in torch, 163 from log1p(exp(x))). */
        double params[2] = {alk_op_float(op, "beta", 1.0), alk_op_float(op, "threshold", 20.0)};
        size_t shape = 2;
        alk_fva *user = alk_op_failed(op) ? NULL : alk_fva_numbers(t, 1, &shape, params);
        alk_op_out(op, user != NULL ? alk_fva_apply_custom(t, x, softplus, user) : NULL);
        return;
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, alk_nn_torch_activate(t, name, x));
    }
}

/* Hardtanh and ReLU6: x clipped to [min_val, max_val], exactly; `arg` holds the row's two
 * defaults. The module's own bounds are honoured (the reference ignores nn.Hardtanh's). */
void torch_hardtanh(alk_op *op, const void *arg) {
    const double *bounds = arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_trace *t = alk_op_trace(op);
    double lo = alk_op_float(op, "min_val", bounds[0]), hi = alk_op_float(op, "max_val", bounds[1]);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    alk_op_out(op, alk_fva_clip(t, x, alk_fva_scalar(t, lo), alk_fva_scalar(t, hi)));
}

/* nn.LeakyReLU, F.leaky_relu: where(x < 0, x * negative_slope, x). */
void torch_leaky_relu(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = torch_in(op, 0);
    alk_nn_relu spec = {.negative_slope = alk_op_float(op, "negative_slope", 0.01)};
    alk_op_out(op, alk_op_failed(op) ? NULL : alk_nn_relu_apply(alk_op_trace(op), x, &spec));
}

/* nn.PReLU, F.prelu: where(x < 0, x * a, x) with one slope or one per channel (axis 1). */
void torch_prelu(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = torch_in(op, 0), *weight = torch_tensor(op, "weight", true);
    if (x == NULL || weight == NULL) {
        return;
    }
    size_t n = alk_fva_size(weight), ndim = alk_fva_ndim(x);
    if (n != 1 && (ndim < 2 || alk_fva_shape(x)[1] != n)) {
        alk_op_fail(op, ALK_EINVAL, "%zu slopes for an input of %zu channels", n,
                    ndim >= 2 ? alk_fva_shape(x)[1] : 1);
        return;
    }
    /* Per-channel slopes broadcast along axis 1: (1, C, 1, ...). */
    int64_t shape[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < ndim; d++) {
        shape[d] = d == 1 ? (int64_t)n : 1;
    }
    alk_nn_relu spec = {.alpha = n == 1 ? weight : torch_reshape(op, weight, ndim, shape)};
    alk_op_out(op, alk_op_failed(op) ? NULL : alk_nn_relu_apply(alk_op_trace(op), x, &spec));
}
