/*
 * Mock second-level torch plugin (group alkaid_torch, name "torchpkg"): the handlers a
 * third-party package would add for its own modules and functions.
 *   - torchpkg.layers.Double (a module): 2x, then the torch tracer's own ReLU body, delegated to;
 *   - torchpkg.ops.add_n (a function): x + n, n a keyword argument (default 1).
 */
#include "plugin/alk_plugin.h"

static void double_relu(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_set_in(op, 0, alk_fva_binary_scalar(alk_op_trace(op), ALK_MUL, alk_op_in(op, 0), 2));
    alk_op_delegate(op, "torch.nn.modules.activation", "ReLU");
}

static void add_n(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_out(op, alk_fva_binary_scalar(alk_op_trace(op), ALK_ADD, alk_op_in(op, 0),
                                         alk_op_float(op, "n", 1)));
}

static const alk_op_def ops[] = {
    {"torchpkg.layers", "Double", double_relu, NULL, 0, 1, 1, "input", NULL},
    {"torchpkg.ops", "add_n", add_n, NULL, 0, 1, 2, "x n", NULL},
};

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TORCH,
    .name = "torchpkg",
    .ops = ops,
    .n_ops = sizeof(ops) / sizeof(ops[0]),
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
