/*
 * An out-of-tree tracer plugin written against the handler kit: the "dense" framework, one
 * quantized dense layer with an activation.
 *
 * Model payload: {"input_shape": [N], "weights": [[w00, ..., w0M-1], ...N rows],
 * "bias": [b0, ...], "activation": "relu"} (dyadic numbers). The tracer runs the model as one
 * op of its own handler table, so the host does the uniform work: the plugin's before_op hook
 * quantizes the input to 8-bit integers (k=1, i=7, f=0, wrap, truncate), as an input quantizer
 * would; the handler multiplies by the constant matrix (lowered to adders by the CMVM solver) and
 * adds the bias; the host applies the activation through the scope's map and records
 * "/dense/post_call", "/dense/final" and the output "final": y = relu(q(x) @ W + b).
 *
 * It is built against an installed alkaid with pkg-config alone (see Makefile and
 * docs/plugins.md).
 */
#include "plugin/alk_plugin.h"

#include <string.h>

/* The layer: every error (a missing weight, mismatched shapes) is recorded in the op and named
 * by the host, so the handler is a straight line. */
static void dense(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *y = alk_fva_matmul(t, alk_op_in(op, 0), alk_op_weight(op, "kernel"));
    alk_op_out(op, alk_fva_binary(t, ALK_ADD, y, alk_op_weight(op, "bias")));
}

static const alk_op_def ops[] = {
    /* module, name, handler, arg, flags, min_args, max_args, params, weights */
    {"dense", "Dense", dense, NULL, 0, 1, 1, "inputs", "kernel bias"},
};

/* before_op: the input quantizer of every row of this plugin. */
static void quantize_input(alk_op *op) {
    alk_op_set_in(op, 0,
                  alk_fva_quantize(alk_op_trace(op), alk_op_in(op, 0), 1, 7, 0, ALK_WRAP, ALK_TRN));
}

/* The activation step the host runs after each handler: config "activation". */
static alk_fva *activation(alk_op *op, alk_fva *x) {
    static const char *const names[] = {"linear", "relu", NULL};
    if (alk_op_enum(op, "activation", names, 0) == 1) {
        return alk_fva_relu(alk_op_trace(op), x, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
    }
    return x;
}

/* The weight source: roles to the model's fields (nested lists of numbers). */
static const alk_value *find_weight(const void *model, const char *role, size_t index,
                                    const char *path) {
    (void)index;
    (void)path;
    return role == NULL                  ? NULL
           : strcmp(role, "kernel") == 0 ? alk_value_get(model, "weights")
           : strcmp(role, "bias") == 0   ? alk_value_get(model, "bias")
                                         : NULL;
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
    if (n_inputs != 1) {
        return alk_diag_set(diag, ALK_EINVAL, "the dense model takes one input");
    }
    alk_scope *scope = alk_scope_new(host, trace, ALK_SCOPE_KERAS, "/");
    alk_scope_set_activation(scope, activation);
    const alk_op_def *def = NULL;
    int rv = alk_host_find_op(host, "dense", "Dense", &def, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_op *op = alk_op_new(scope, "dense", "dense", "Dense", model);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, inputs[0]));
    alk_op_weights weights = {find_weight, model};
    alk_op_set_weights(op, &weights);
    (void)alk_op_run(op, def);
    alk_fva *y = alk_op_result_array(op, 0);
    return alk_scope_finish(scope, "final", &y, 1, diag);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "dense",
    .version = "2.0",
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
    .ops = ops,
    .n_ops = sizeof(ops) / sizeof(ops[0]),
    .before_op = quantize_input,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
