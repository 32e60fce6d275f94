/*
 * Broken plugins for the loader tests, one per BROKEN_KIND (a compile-time switch):
 *   1 wrong ABI version, 2 short descriptor, 3 tracer without apply_model, 4 init fails,
 *   5 no entry symbol at all; broken handler tables: 6 a duplicate (module, name) row, 7 a row
 *   without fn, 8 a malformed weights layout, 9 min_args > max_args, 10 an operation plugin
 *   (alkaid_keras) without a table.
 */
#include "plugin/alk_plugin.h"

#include <stddef.h>

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state, (void)trace, (void)host, (void)model, (void)inputs, (void)n_inputs;
    return alk_diag_set(diag, ALK_EINTERNAL, "a broken plugin must never run");
}

static int failing_init(void **ret_state, alk_diag *diag) {
    (void)ret_state;
    return alk_diag_set(diag, ALK_EINVAL, "missing configuration file /etc/broken.conf");
}

static void handler(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_fail(op, ALK_EINTERNAL, "a broken plugin must never run");
}

static const alk_op_def ops[] = {
    {"broken.layers", "Good", handler, NULL, 0, 1, 1, "inputs", "kernel bias:use_bias"},
    {"broken.layers", BROKEN_KIND == 6 ? "Good" : "Other", BROKEN_KIND == 7 ? NULL : handler, NULL,
     0, BROKEN_KIND == 9 ? 3 : 1, 2, "x y",
     BROKEN_KIND == 8 ? "kernel bias:" : "gamma:scale beta:!center"},
};

#if BROKEN_KIND != 5
static const alk_plugin_descriptor descriptor = {
    .abi_version = BROKEN_KIND == 1 ? 99 : ALK_PLUGIN_ABI_VERSION,
    .struct_size =
        BROKEN_KIND == 2 ? offsetof(alk_plugin_descriptor, init) : sizeof(alk_plugin_descriptor),
    .group = BROKEN_KIND == 10 ? ALK_GROUP_KERAS : ALK_GROUP_TRACER,
    .name = BROKEN_NAME,
    .init = BROKEN_KIND == 4 ? failing_init : NULL,
    .apply_model = BROKEN_KIND == 3 ? NULL : apply_model,
    .ops = BROKEN_KIND >= 6 && BROKEN_KIND <= 9 ? ops : NULL,
    .n_ops = BROKEN_KIND >= 6 && BROKEN_KIND <= 9 ? sizeof(ops) / sizeof(ops[0]) : 0,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
#else
int not_the_entry_point(void);
int not_the_entry_point(void) {
    return failing_init(NULL, NULL) + apply_model(NULL, NULL, NULL, NULL, NULL, 0, NULL) +
           (ops[0].fn == handler);
}
#endif
