/*
 * Mock second-level plugin (group alkaid_keras, name "fakepkg"), table-driven like HGQ2's:
 *   - FakeDense (fakepkg.layers): the tracer's Dense body, delegated to, with its kernel
 *     doubled (as QDense swaps in qkernel) and, when the layer has a bias, the bias halved;
 *     it also dumps "inits=<n>", n counting the plugin's init calls in this process, so a test
 *     sees the plugin loaded once;
 *   - Shift (fakepkg.layers): x + shift, owning nothing;
 *   - ShiftOwn (fakepkg.layers): the same, owning its input and output quantization (no hooks);
 *   - Shift under the prefix row "fakepkg": x + 100 * shift, for any other fakepkg module.
 * The plugin's hooks stand in for HGQ2's quantizers: before_op adds 1 to the first argument and
 * dumps it as "post_iq"; after_op subtracts 1 from the first result. Applied around a ReLU
 * activation, the order is visible in the numbers.
 */
#include "plugin/alk_plugin.h"

#include <stdio.h>

static int init_calls;

static int init(void **ret_state, alk_diag *diag) {
    (void)diag;
    init_calls++;
    *ret_state = &init_calls;
    return ALK_OK;
}

static void fake_dense(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    char key[32];
    (void)snprintf(key, sizeof(key), "inits=%d", *(const int *)alk_op_plugin_state(op));
    alk_op_dump(op, key, alk_op_in(op, 0));
    alk_op_set_weight(op, "kernel",
                      alk_fva_binary_scalar(t, ALK_MUL, alk_op_weight(op, "kernel"), 2));
    alk_fva *bias = alk_op_weight_opt(op, "bias");
    alk_op_set_weight(op, "bias", bias != NULL ? alk_fva_div_scalar(t, bias, 2) : NULL);
    alk_op_delegate(op, "mock.layers", "Dense");
}

static void shift(alk_op *op, const void *scale) {
    alk_op_out(op, alk_fva_binary_scalar(alk_op_trace(op), ALK_ADD, alk_op_in(op, 0),
                                         *(const double *)scale * alk_op_float(op, "shift", 0)));
}

static void before_op(alk_op *op) {
    alk_fva *x = alk_fva_binary_scalar(alk_op_trace(op), ALK_ADD, alk_op_in(op, 0), 1);
    alk_op_dump(op, "post_iq", x);
    alk_op_set_in(op, 0, x);
}

static void after_op(alk_op *op) {
    const alk_arg *y = alk_op_result(op, 0);
    alk_op_set_result(
        op, 0,
        alk_arg_of_array(op, alk_fva_binary_scalar(alk_op_trace(op), ALK_SUB, y->as.array, 1)));
}

static const double one = 1, hundred = 100;

static const alk_op_def ops[] = {
    {"fakepkg.layers", "FakeDense", fake_dense, NULL, 0, 1, 1, "inputs", "kernel bias:use_bias"},
    {"fakepkg.layers", "Shift", shift, &one, 0, 1, 1, "inputs", NULL},
    {"fakepkg.layers", "ShiftOwn", shift, &one, ALK_OP_OWN_IQ | ALK_OP_OWN_OQ, 1, 1, "inputs",
     NULL},
    {"fakepkg", "Shift", shift, &hundred, 0, 1, 1, "inputs", NULL},
};

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_KERAS,
    .name = "fakepkg",
    .init = init,
    .ops = ops,
    .n_ops = sizeof(ops) / sizeof(ops[0]),
    .before_op = before_op,
    .after_op = after_op,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
