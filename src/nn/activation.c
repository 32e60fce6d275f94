/*
 * Activations: the Keras activation map (frontends §2.3), the torch unary map (§4.5) and the
 * general ReLU of Keras's ReLU/LeakyReLU/PReLU and torch's LeakyReLU/PReLU (§2.2, §4.3).
 *
 * Design. Each map is a static table of rows (name, exact lowering or table function), so a
 * frontend registers its names from the table and applies a row without knowing which kind it
 * is. Exact rows lower with the adders and muxes of the reference's numpy call (relu is max(0, x),
 * relu6 and hard_tanh are clips, ...). Table rows only mark the array pending (alk_fva_apply): the
 * table is built when the array is quantized, by this layer's output quantizer or by the next
 * layer's input quantizer (trace-alir §2.10).
 */
#include "nn/nn_int.h"

#include "core/alloc.h"

#include <math.h>
#include <string.h>

/* ---- Exact lowerings ---------------------------------------------------------------------- */

static alk_fva *identity(alk_trace *t, const alk_fva *x) {
    (void)t;
    return (alk_fva *)x;
}

/* np.maximum(0, x): the reference's relu, whose constant 0 makes it FVariable.relu(). */
static alk_fva *relu(alk_trace *t, const alk_fva *x) {
    return alk_fva_relu(t, x, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
}

static alk_fva *clip(alk_trace *t, const alk_fva *x, double lo, double hi) {
    return alk_fva_clip(t, x, alk_fva_scalar(t, lo), alk_fva_scalar(t, hi));
}
static alk_fva *relu6(alk_trace *t, const alk_fva *x) {
    return clip(t, x, 0, 6);
}
static alk_fva *hard_tanh(alk_trace *t, const alk_fva *x) {
    return clip(t, x, -1, 1);
}

/* The element-wise operations of the array API, one lowering function each. ALK_SQUARE is x * x
 * with the same object twice (a non-negative interval), as torch's map writes it. */
#define UNARY(name, op)                                                                            \
    static alk_fva *name(alk_trace *t, const alk_fva *x) {                                         \
        return alk_fva_unary(t, op, x);                                                            \
    }
UNARY(absolute, ALK_ABSOLUTE)
UNARY(sign, ALK_SIGN)
UNARY(round_even, ALK_ROUND)
UNARY(floor_, ALK_FLOOR)
UNARY(ceil_, ALK_CEIL)
UNARY(negative, ALK_NEGATIVE)
UNARY(square, ALK_SQUARE)
#undef UNARY
static alk_fva *flatten(alk_trace *t, const alk_fva *x) {
    return alk_fva_ravel(t, x);
}

#define EXACT(n, f)                                                                                \
    { .name = (n), .exact = (f) }
#define TABLE(n, f)                                                                                \
    { .name = (n), .fn = (f) }

static const alk_nn_activation keras_map[] = {
    EXACT("linear", identity),
    EXACT("relu", relu),
    EXACT("relu6", relu6),
    EXACT("hard_tanh", hard_tanh),
    TABLE("tanh", ALK_FN_TANH),
    TABLE("exponential", ALK_FN_EXP),
    TABLE("sigmoid", ALK_FN_SIGMOID),
    TABLE("silu", ALK_FN_SILU),
    TABLE("swish", ALK_FN_SILU),
    TABLE("gelu", ALK_FN_GELU),
    TABLE("elu", ALK_FN_ELU),
    TABLE("selu", ALK_FN_SELU),
    TABLE("softplus", ALK_FN_SOFTPLUS),
    TABLE("softsign", ALK_FN_SOFTSIGN),
    TABLE("hard_sigmoid", ALK_FN_HARD_SIGMOID),
    TABLE("hard_silu", ALK_FN_HARD_SILU),
    TABLE("hard_swish", ALK_FN_HARD_SILU),
    TABLE("log_sigmoid", ALK_FN_LOG_SIGMOID),
};

static const alk_nn_activation torch_map[] = {
    EXACT("linear", identity),
    EXACT("relu", relu),
    EXACT("relu6", relu6),
    EXACT("hardtanh", hard_tanh),
    EXACT("abs", absolute),
    EXACT("absolute", absolute),
    EXACT("sign", sign),
    EXACT("round", round_even),
    EXACT("floor", floor_),
    EXACT("ceil", ceil_),
    EXACT("neg", negative),
    EXACT("negative", negative),
    EXACT("square", square),
    EXACT("flatten", flatten),
    TABLE("sigmoid", ALK_FN_SIGMOID),
    TABLE("silu", ALK_FN_SILU),
    TABLE("gelu", ALK_FN_GELU),
    TABLE("elu", ALK_FN_ELU),
    TABLE("selu", ALK_FN_SELU),
    TABLE("softplus", ALK_FN_SOFTPLUS),
    TABLE("softsign", ALK_FN_SOFTSIGN),
    TABLE("hardsigmoid", ALK_FN_HARDSIGMOID_TORCH),
    TABLE("hardswish", ALK_FN_HARDSWISH_TORCH),
    TABLE("logsigmoid", ALK_FN_LOG_SIGMOID),
    TABLE("log_sigmoid", ALK_FN_LOG_SIGMOID),
    TABLE("tanh", ALK_FN_TANH),
    TABLE("sinh", ALK_FN_SINH),
    TABLE("cosh", ALK_FN_COSH),
    TABLE("exp", ALK_FN_EXP),
    TABLE("expm1", ALK_FN_EXPM1),
    TABLE("log", ALK_FN_LOG),
    TABLE("log1p", ALK_FN_LOG1P),
    TABLE("log2", ALK_FN_LOG2),
    TABLE("log10", ALK_FN_LOG10),
    TABLE("sin", ALK_FN_SIN),
    TABLE("cos", ALK_FN_COS),
    TABLE("tan", ALK_FN_TAN),
    TABLE("sqrt", ALK_FN_SQRT),
    TABLE("rsqrt", ALK_FN_RSQRT),
    TABLE("reciprocal", ALK_FN_RECIPROCAL),
    TABLE("arcsin", ALK_FN_ARCSIN),
    TABLE("asin", ALK_FN_ARCSIN),
    TABLE("arccos", ALK_FN_ARCCOS),
    TABLE("acos", ALK_FN_ARCCOS),
    TABLE("arctan", ALK_FN_ARCTAN),
    TABLE("atan", ALK_FN_ARCTAN),
    TABLE("arcsinh", ALK_FN_ARCSINH),
    TABLE("asinh", ALK_FN_ARCSINH),
    TABLE("arccosh", ALK_FN_ARCCOSH),
    TABLE("acosh", ALK_FN_ARCCOSH),
    TABLE("arctanh", ALK_FN_ARCTANH),
    TABLE("atanh", ALK_FN_ARCTANH),
};

const alk_nn_activation *alk_nn_keras_activations(size_t *ret_n) {
    *ret_n = sizeof(keras_map) / sizeof(keras_map[0]);
    return keras_map;
}

const alk_nn_activation *alk_nn_torch_unary(size_t *ret_n) {
    *ret_n = sizeof(torch_map) / sizeof(torch_map[0]);
    return torch_map;
}

const alk_nn_activation *alk_nn_find_activation(const alk_nn_activation *table, size_t n,
                                                const char *name) {
    for (size_t j = 0; name != NULL && j < n; j++) {
        if (strcmp(table[j].name, name) == 0) {
            return &table[j];
        }
    }
    return NULL;
}

alk_fva *alk_nn_activation_apply(alk_trace *t, const alk_nn_activation *act, const alk_fva *x) {
    if (!alk__nn_ok(t) || x == NULL || act == NULL) {
        return NULL;
    }
    return act->exact != NULL ? act->exact(t, x) : alk_fva_apply(t, x, act->fn);
}

alk_fva *alk_nn_keras_activate(alk_trace *t, const char *name, bool strict, const alk_fva *x) {
    if (!alk__nn_ok(t) || x == NULL) {
        return NULL;
    }
    if (name == NULL) {
        return (alk_fva *)x;
    }
    const alk_nn_activation *act =
        alk_nn_find_activation(keras_map, sizeof(keras_map) / sizeof(keras_map[0]), name);
    if (act != NULL) {
        return alk_nn_activation_apply(t, act, x);
    }
    if (strcmp(name, "softmax") == 0) {
        alk_trace_fail(t, ALK_EINVAL,
                       "softmax is not supported as an activation (of a layer or an Activation "
                       "layer): it is not an element-wise function; HGQ2's QSoftmax is");
    } else if (strict) {
        alk_trace_fail(t, ALK_EINVAL, "unsupported activation '%s'", name);
    } else {
        alk_trace_fail(t, ALK_EINVAL,
                       "activation '%s' is not a known Keras activation: alkaid cannot evaluate "
                       "custom functions (the reference runs them through Keras on the table "
                       "grid)",
                       name);
    }
    return NULL;
}

alk_fva *alk_nn_torch_activate(alk_trace *t, const char *name, const alk_fva *x) {
    if (!alk__nn_ok(t) || x == NULL) {
        return NULL;
    }
    const alk_nn_activation *act =
        alk_nn_find_activation(torch_map, sizeof(torch_map) / sizeof(torch_map[0]), name);
    if (act == NULL) {
        alk_trace_fail(t, ALK_EINVAL, "unsupported activation '%s'", name ? name : "(null)");
        return NULL;
    }
    return alk_nn_activation_apply(t, act, x);
}

/* ---- The general ReLU --------------------------------------------------------------------------
 */

/* Whether every slope is zero (the reference's np.all(neg == 0)). */
static bool slopes_all_zero(const alk_nn_relu *spec) {
    if (spec->alpha == NULL) {
        return spec->negative_slope == 0;
    }
    for (size_t j = 0; j < alk_fva_size(spec->alpha); j++) {
        if (alk_fva_num_at(spec->alpha, j) != 0) {
            return false;
        }
    }
    return true;
}

/* x <= th, as x - (th' + 2^(-f-1)) < 0 per element with th' = th rounded down to the element's
 * grid 2^-f: the reference's construction, which is x <= th whenever th is on the grid. A
 * constant element is compared outright: its format has no grid (the zero constant, a unit of a
 * layer whose weights are all zero, has step 2^127, and th' + 2^126 overflowed the encoding of
 * the constant addition). */
static alk_fva *at_or_below(alk_trace *t, const alk_fva *x, double th) {
    size_t n = alk_fva_size(x);
    double *c = alk__nn_alloc(t, n, sizeof(double));
    if (c == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        const alk_fvar *v = alk_fva_at(x, j);
        if (alk_fv_low(v) == alk_fv_high(v)) {
            c[j] = alk_fv_low(v) <= th ? alk_fv_low(v) + 1 : alk_fv_low(v) - 1;
            continue;
        }
        int k, i, f;
        alk_fv_kif(v, &k, &i, &f);
        double step = ldexp(1.0, -f);
        c[j] = floor(th / step) * step + ldexp(1.0, -f - 1);
    }
    alk_fva *offsets = alk_fva_numbers(t, alk_fva_ndim(x), alk_fva_shape(x), c);
    alk_free(c);
    return alk_fva_binary_scalar(t, ALK_LESS, alk_fva_binary(t, ALK_SUB, x, offsets), 0.0);
}

alk_fva *alk_nn_relu_apply(alk_trace *t, const alk_fva *x, const alk_nn_relu *spec) {
    if (!alk__nn_ok(t) || x == NULL || spec == NULL) {
        return NULL;
    }
    if (spec->alpha != NULL && !alk__nn_require_numeric(t, spec->alpha, "alpha")) {
        return NULL;
    }
    if (spec->threshold == 0 && !spec->has_max && slopes_all_zero(spec)) {
        return relu(t, x);
    }
    if (alk_fva_is_pending(x) || alk_fva_is_numeric(x)) {
        alk_trace_fail(t, ALK_EINVAL,
                       "a ReLU with threshold, slope or maximum needs quantized values (quantize "
                       "the table function before it)");
        return NULL;
    }
    /* Above a negative threshold Keras clips to [0, max]; elsewhere min(x, max) is the same value
     * and is the reference's hardware. */
    alk_fva *pos = (alk_fva *)x;
    if (spec->has_max && spec->threshold < 0) {
        pos = clip(t, x, 0, spec->max_value);
    } else if (spec->has_max) {
        pos = alk_fva_binary_scalar(t, ALK_MINIMUM, x, spec->max_value);
    }
    alk_fva *cond = spec->threshold != 0 ? at_or_below(t, x, spec->threshold)
                                         : alk_fva_binary_scalar(t, ALK_LESS, x, 0.0);
    alk_fva *shifted = alk_fva_binary_scalar(t, ALK_SUB, x, spec->threshold);
    alk_fva *neg = spec->alpha != NULL
                       ? alk_fva_binary(t, ALK_MUL, shifted, spec->alpha)
                       : alk_fva_binary_scalar(t, ALK_MUL, shifted, spec->negative_slope);
    return alk_fva_where(t, cond, neg, pos);
}
