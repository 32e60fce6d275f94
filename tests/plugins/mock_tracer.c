/*
 * Mock top-level tracer for the plugin tests (group alir_tracer.plugins, name "mock").
 *
 * Its model is a map {"layers": [{"module": M, "class_name": C, "name": N}, ...]}. apply_model
 * looks every layer's handler up through the host (which loads second-level plugins on demand)
 * and calls it; it needs no symbolic arithmetic, so the loader is tested on its own. fini appends
 * "fini mock <state address>" to the file named by $ALK_MOCK_LOG, so a test can check when the
 * library was really unloaded.
 */
#include "plugin/alk_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int init(void **ret_state, alk_diag *diag) {
    (void)diag;
    *ret_state = malloc(1);
    return *ret_state == NULL ? ALK_ENOMEM : ALK_OK;
}

static void fini(void *state) {
    const char *log = getenv("ALK_MOCK_LOG");
    FILE *f = log != NULL ? fopen(log, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "fini %s %p\n", MOCK_VARIANT, state);
        fclose(f);
    }
    free(state);
}

static int get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state;
    const alk_value *shape = alk_value_get(model, "input_shape");
    if (shape == NULL || shape->kind != ALK_VALUE_ARRAY) {
        return alk_diag_set(diag, ALK_ENOENT, "the mock model has no input_shape");
    }
    if (cap < 1 || shape->as.array.len > ALK_PLUGIN_MAX_DIMS) {
        return alk_diag_set(diag, ALK_EINVAL, "input_shape too long");
    }
    ret_shapes[0].n_dims = (uint32_t)shape->as.array.len;
    for (size_t d = 0; d < shape->as.array.len; d++) {
        ret_shapes[0].dims[d] = shape->as.array.items[d]->as.integer;
    }
    *ret_n_shapes = 1;
    return ALK_OK;
}

static const char *str_of(const alk_value *layer, const char *key) {
    const alk_value *v = alk_value_get(layer, key);
    return v != NULL && v->kind == ALK_VALUE_STR ? v->as.str.bytes : "";
}

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    const alk_value *layers = alk_value_get(model, "layers");
    size_t n = layers != NULL && layers->kind == ALK_VALUE_ARRAY ? layers->as.array.len : 0;
    for (size_t i = 0; i < n; i++) {
        const alk_value *layer = layers->as.array.items[i];
        alk_op_handler handler;
        void *handler_state;
        int rv = alk_host_find_handler(host, ALK_GROUP_KERAS, str_of(layer, "module"),
                                       str_of(layer, "class_name"), &handler, &handler_state, diag);
        if (rv != ALK_OK) {
            return rv;
        }
        alk_op_call call = {
            .struct_size = sizeof(call),
            .trace = trace,
            .host = host,
            .name = str_of(layer, "name"),
            .config = layer,
            .inputs = inputs,
            .n_inputs = n_inputs,
        };
        rv = handler(handler_state, &call, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    int rv = alk_host_dump(host, "final", inputs, n_inputs);
    const char *outputs[] = {"final"};
    return rv != ALK_OK ? rv : alk_host_set_outputs(host, outputs, 1);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "mock",
    .version = MOCK_VARIANT,
    .init = init,
    .fini = fini,
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
