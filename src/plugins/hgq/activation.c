/*
 * HGQ2's function tables (spec frontends.md §3.4): QUnaryFunctionLUT, QAffinedUnaryFunctionLUT
 * and QSoftmax.
 *
 * A table layer's function is applied to its quantized input as a *pending* table function
 * (trace/fvarray.h): the output quantizer that follows tabulates it on each element's input grid,
 * so the table holds Q(f(v)) exactly as HGQ2's converter builds it. Keras activations come from
 * src/nn's map (float64 formulas); the parts of a function that the Keras model computes on its
 * float32 input before the activation (QAffinedUnaryFunctionLUT's v * scale + bias, QSoftmax's
 * -v * input_scaler and v + epsilon) are computed in float32 as Keras does, then the function in
 * float64. Where float32 and float64 would round to different table entries the model itself
 * depends on its backend's float32 library (spec §8.17); the tests avoid those inputs.
 *
 * QSoftmax (HGQ2's layer): with `stable`, x := max(x, axes) - x; e = exp table of x
 * (exp(-v * input_scaler), its own iq only when stable, its oq); s = sum of e over the axes;
 * d = 1 / (s + 1e-7) table (its iq and oq); the result is e * d (a product of two variables per
 * element). HGQ2 forces both tables' output quantizers to SAT and RND_CONV.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *hgq_activation_name(alk_op *op, const char *key) {
    const alk_arg *a = alk_op_get(op, key);
    if (a == NULL || a->kind == ALK_ARG_NONE) {
        return NULL;
    }
    if (a->kind == ALK_ARG_STR) {
        return a->as.str;
    }
    /* A serialized function: Keras's own ({"module": "keras.src.activations.activations",
     * "class_name": "function", "config": NAME}) names a built-in; anything else is the user's. */
    const alk_value *v = alk_value_get(alk_op_config(op), key);
    const alk_value *module = alk_value_get(v, "module");
    const alk_value *name = alk_value_get(v, "config");
    if (module != NULL && module->kind == ALK_VALUE_STR && name != NULL &&
        name->kind == ALK_VALUE_STR && strncmp(module->as.str.bytes, "keras", 5) == 0) {
        return name->as.str.bytes;
    }
    alk_op_fail(op, ALK_EINVAL,
                "%s is a custom function (%s): alkaid cannot evaluate it (the reference runs it "
                "through Keras on the table grid)",
                key, name != NULL && name->kind == ALK_VALUE_STR ? name->as.str.bytes : "unnamed");
    return NULL;
}

/* ---- Functions the Keras model computes in float32 before the activation ------------------- */

/* v * scale + offset in float32 (the affine LUT's input transform, softmax's -v * s). */
typedef struct affine32 {
    float scale, offset;
} affine32;

static double affine32_fn(double v, void *user) {
    const affine32 *a = user;
    float y = (float)v * a->scale;
    return (double)(y + a->offset);
}

/* exp(v) on a float32 argument. */
static double exp_fn(double v, void *user) {
    (void)user;
    return exp(v);
}

/* 1 / (v + 1e-7): Keras's epsilon added in float32. */
static double inverse_fn(double v, void *user) {
    (void)user;
    float shifted = (float)v + 1e-7f;
    return 1.0 / (double)shifted;
}

/* x transformed by v * scale + offset in float32, pending (composes into the next function). */
static alk_fva *affine_pending(alk_op *op, alk_fva *x, float scale, float offset) {
    affine32 *a = alk_op_alloc(op, sizeof(*a));
    if (a == NULL || x == NULL) {
        return NULL;
    }
    a->scale = scale;
    a->offset = offset;
    return alk_fva_apply_custom(alk_op_trace(op), x, affine32_fn, a);
}

/* ---- QUnaryFunctionLUT, QAffinedUnaryFunctionLUT ------------------------------------------- */

/* The one float of a (1,) weight. */
static bool scalar_weight(alk_op *op, const char *role, float *ret) {
    alk_fva *w = alk_op_weight(op, role);
    if (w != NULL && alk_fva_size(w) != 1) {
        alk_op_fail(op, ALK_EINVAL, "weight '%s' should hold one value, it holds %zu", role,
                    alk_fva_size(w));
    }
    if (w == NULL || alk_op_failed(op)) {
        return false;
    }
    *ret = (float)alk_fva_num_at(w, 0);
    return true;
}

void hgq_unary_lut(alk_op *op, const void *affined) {
    alk_fva *x = alk_op_in(op, 0);
    const char *name = hgq_activation_name(op, "activation");
    /* HGQ2 turns ebops off without an oq, but its base class sets the flag again from the
     * config: the saved enable_ebops is what counts. */
    size_t ebops = alk_op_bool(op, "enable_ebops", alk_op_bool(op, "enable_iq", true)) ? 2 : 0;
    if (affined != NULL) {
        float scale = 1, bias = 0;
        if (!scalar_weight(op, "scale", &scale) || !scalar_weight(op, "bias", &bias)) {
            return;
        }
        hgq_check_own_vars(op, "", 2 + ebops, 2);
        x = affine_pending(op, x, scale, bias);
    } else {
        hgq_check_own_vars(op, "", ebops, 0);
    }
    if (x != NULL && !alk_op_failed(op)) {
        alk_op_out(op, alk_nn_keras_activate(alk_op_trace(op), name, false, x));
    }
}

/* ---- QSoftmax -------------------------------------------------------------------------------- */

/* The softmax axes `values` (n of them) normalised for x and sorted, as HGQ2's build leaves them;
 * returns how many (0 after failing the op). */
static size_t softmax_axes(alk_op *op, const int64_t *values, size_t n, const alk_fva *x,
                           int *axes) {
    size_t ndim = alk_fva_ndim(x);
    for (size_t i = 0; i < n; i++) {
        int64_t a = values[i] < 0 ? values[i] + (int64_t)ndim : values[i];
        if (a < 0 || a >= (int64_t)ndim) {
            alk_op_fail(op, ALK_EINVAL, "softmax axis %lld is out of range for %zu axes",
                        (long long)values[i], ndim);
            return 0;
        }
        axes[i] = (int)a;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int tmp = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = tmp;
        }
    }
    return n;
}

alk_fva *hgq_softmax_body(alk_op *op, const hgq_softmax_spec *spec, const char *prefix,
                          alk_fva *x) {
    alk_trace *t = alk_op_trace(op);
    int axes[ALK_FVA_MAX_DIM];
    size_t n_axes = x != NULL ? softmax_axes(op, spec->axes, spec->n_axes, x, axes) : 0;
    char exp_prefix[HGQ_PATH_MAX], inv_prefix[HGQ_PATH_MAX];
    if (n_axes == 0 || !hgq_path(op, exp_prefix, prefix, "exp_table/") ||
        !hgq_path(op, inv_prefix, prefix, "inv_table/")) {
        return NULL;
    }
    hgq_check_own_vars(op, exp_prefix, spec->ebops && spec->stable ? 2 : 0, 0);
    hgq_check_own_vars(op, inv_prefix, spec->ebops ? 2 : 0, 0);
    alk_fva *e = x;
    if (spec->stable) {
        alk_fva *top = alk_fva_reduce(t, ALK_REDUCE_MAX, x, axes, n_axes, true);
        e = alk_fva_binary(t, ALK_SUB, top, x);
        e = hgq_apply_conf(op, spec->exp_iq, HGQ_PLACE_DATALANE, exp_prefix, "iq", e);
    }
    /* exp(-v * s) (stable) or exp(v * s), -v * s in float32 as Keras. */
    float scaler = (float)spec->input_scaler;
    e = alk_fva_apply_custom(t, affine_pending(op, e, spec->stable ? -scaler : scaler, 0), exp_fn,
                             NULL);
    e = hgq_apply_conf(op, spec->exp_oq, HGQ_PLACE_FORCED_TABLE, exp_prefix, "oq", e);
    alk_fva *s = alk_fva_reduce(t, ALK_REDUCE_SUM, e, axes, n_axes, true);
    s = hgq_apply_conf(op, spec->inv_iq, HGQ_PLACE_DATALANE, inv_prefix, "iq", s);
    alk_fva *d = s != NULL ? alk_fva_apply_custom(t, s, inverse_fn, NULL) : NULL;
    d = hgq_apply_conf(op, spec->inv_oq, HGQ_PLACE_FORCED_TABLE, inv_prefix, "oq", d);
    return alk_fva_binary(t, ALK_MUL, e, d);
}

void hgq_softmax(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    const alk_arg *mask = alk_op_kwarg(op, "mask");
    if (mask != NULL && mask->kind != ALK_ARG_NONE) {
        alk_op_fail(op, ALK_EINVAL, "a mask is not supported");
        return;
    }
    const alk_value *config = alk_op_config(op);
    hgq_softmax_spec spec = {
        .stable = alk_op_bool(op, "stable", true),
        .input_scaler = alk_op_float(op, "input_scaler", 1.0),
        .ebops = alk_op_bool(op, "enable_ebops", true),
        .exp_iq = alk_value_get(config, "exp_iq_conf"),
        .exp_oq = alk_value_get(config, "exp_oq_conf"),
        .inv_iq = alk_value_get(config, "inv_iq_conf"),
        .inv_oq = alk_value_get(config, "inv_oq_conf"),
    };
    /* `axes` as HGQ2 saves it, or Keras's `axis`; -1 by default. */
    spec.n_axes =
        alk_op_int_list(op, alk_op_has(op, "axes") ? "axes" : "axis", spec.axes, ALK_FVA_MAX_DIM);
    if (spec.n_axes == SIZE_MAX) {
        spec.axes[0] = -1;
        spec.n_axes = 1;
    }
    hgq_check_own_vars(op, "", spec.ebops ? 2 : 0, 0);
    if (!alk_op_failed(op)) {
        alk_op_out(op, hgq_softmax_body(op, &spec, "", x));
    }
}
