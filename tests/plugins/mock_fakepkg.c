/*
 * Mock second-level plugin (group alkaid_keras, name "fakepkg"): handles class FakeDense of module
 * fakepkg.layers. Its handler records "<layer name>/inits=<n>" in the trace map, where n counts
 * the plugin's init calls in this process, so a test can see that it was loaded once.
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

static int fake_dense(void *state, alk_op_call *call, alk_diag *diag) {
    (void)diag;
    char name[256];
    (void)snprintf(name, sizeof(name), "%s/inits=%d", call->name, *(int *)state);
    return alk_host_dump(call->host, name, NULL, 0);
}

static int register_handlers(void *state, alk_handler_registry *registry, alk_diag *diag) {
    (void)state;
    (void)diag;
    return alk_handlers_add(registry, "fakepkg.layers", "FakeDense", fake_dense);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_KERAS,
    .name = "fakepkg",
    .init = init,
    .register_handlers = register_handlers,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
