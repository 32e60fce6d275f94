/*
 * An out-of-tree tracer plugin: the "dense" framework, one quantized dense layer with ReLU.
 *
 * Model payload: {"input_shape": [N], "weights": [[w00, ..., w0M-1], ...N rows], "bias": [b0..]}
 * (dyadic numbers). The layer quantizes its input to 8-bit integers (k=1, i=7, f=0, wrap,
 * truncate), multiplies by the constant matrix (lowered to adders by the CMVM solver), adds the
 * bias and applies ReLU: y = relu(q(x) @ W + b).
 *
 * It is built against an installed alkaid with pkg-config alone (see Makefile and
 * docs/plugins.md).
 */
#include "plugin/alk_plugin.h"

#include <stdlib.h>

enum { MAX_SIZE = 1024 };

/* Reads a list of numbers of length `n` (0: any length up to MAX_SIZE) into `out`. */
static int numbers(const alk_value *list, size_t n, double *out, size_t *ret_n) {
    if (list == NULL || list->kind != ALK_VALUE_ARRAY || list->as.array.len > MAX_SIZE ||
        (n != 0 && list->as.array.len != n)) {
        return ALK_EINVAL;
    }
    for (size_t i = 0; i < list->as.array.len; i++) {
        const alk_value *v = list->as.array.items[i];
        if (v->kind == ALK_VALUE_INT) {
            out[i] = (double)v->as.integer;
        } else if (v->kind == ALK_VALUE_FLOAT) {
            out[i] = v->as.number;
        } else {
            return ALK_EINVAL;
        }
    }
    *ret_n = list->as.array.len;
    return ALK_OK;
}

static int get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state;
    const alk_value *shape = alk_value_get(model, "input_shape");
    if (shape == NULL || shape->kind == ALK_VALUE_NIL) {
        return ALK_ENOENT;
    }
    if (cap < 1 || shape->kind != ALK_VALUE_ARRAY || shape->as.array.len != 1 ||
        shape->as.array.items[0]->kind != ALK_VALUE_INT) {
        return alk_diag_set(diag, ALK_EINVAL, "model.input_shape must be [N]");
    }
    ret_shapes[0] = (alk_plugin_shape){.n_dims = 1, .dims = {shape->as.array.items[0]->as.integer}};
    *ret_n_shapes = 1;
    return ALK_OK;
}

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    if (n_inputs != 1 || alk_fva_ndim(inputs[0]) != 1) {
        return alk_diag_set(diag, ALK_EINVAL, "the dense model takes one 1-D input");
    }
    size_t n = alk_fva_shape(inputs[0])[0];
    const alk_value *rows = alk_value_get(model, "weights");
    if (rows == NULL || rows->kind != ALK_VALUE_ARRAY || rows->as.array.len != n || n == 0) {
        return alk_diag_set(diag, ALK_EINVAL, "model.weights must have %zu rows", n);
    }
    double bias[MAX_SIZE];
    size_t m = 0;
    if (numbers(alk_value_get(model, "bias"), 0, bias, &m) != ALK_OK || m == 0) {
        return alk_diag_set(diag, ALK_EINVAL, "model.bias must be a list of numbers");
    }
    double *weights = malloc(n * m * sizeof(double));
    if (weights == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    for (size_t r = 0; r < n; r++) {
        size_t got;
        if (numbers(rows->as.array.items[r], m, weights + r * m, &got) != ALK_OK) {
            free(weights);
            return alk_diag_set(diag, ALK_EINVAL, "model.weights[%zu] must hold %zu numbers", r, m);
        }
    }
    size_t w_shape[2] = {n, m};
    alk_fva *q = alk_fva_quantize(trace, inputs[0], 1, 7, 0, ALK_WRAP, ALK_TRN);
    alk_fva *w = alk_fva_numbers(trace, 2, w_shape, weights);
    alk_fva *b = alk_fva_numbers(trace, 1, &m, bias);
    alk_fva *y = alk_fva_relu(trace, alk_fva_binary(trace, ALK_ADD, alk_fva_matmul(trace, q, w), b),
                              ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
    free(weights);
    if (y == NULL) {
        return alk_diag_set(diag, alk_trace_error(trace), "%s", alk_trace_message(trace));
    }
    int rv = alk_host_dump(host, "/dense/final", &y, 1);
    const char *outputs[] = {"/dense/final"};
    return rv != ALK_OK ? rv : alk_host_set_outputs(host, outputs, 1);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "dense",
    .version = "1.0",
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
