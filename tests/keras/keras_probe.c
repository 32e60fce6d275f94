/*
 * Test plugin: a top-level tracer "keras_probe" that reads its request's `model` with
 * alk_keras_model_payload, exactly as the keras tracer will, writes the payload as JSON
 * (payload_json.h) to the file named by $ALK_KERAS_PROBE_OUT, and fails the conversion with a
 * message saying what it read. It lets the tests follow a model file's bytes from alkaidc or the
 * Python client through a daemon (or in process) to the payload a tracer sees.
 */
#include "payload_json.h"

#include "core/io.h"
#include "plugin/alk_plugin.h"
#include "plugins/keras/model_file.h"

#include <stdlib.h>

static int get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state, (void)ret_shapes, (void)cap, (void)ret_n_shapes;
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *payload;
    int rv = alk_keras_model_payload(model, NULL, &arena, &payload, diag);
    alk_buf json;
    alk_buf_init(&json);
    if (rv == ALK_OK) {
        rv = payload_to_json(payload, &json, diag);
    }
    const char *out = getenv("ALK_KERAS_PROBE_OUT");
    if (rv == ALK_OK && out != NULL) {
        rv = alk_write_file(out, json.data, json.len, diag);
    }
    if (rv == ALK_OK) {
        const alk_value *weights = alk_value_get(payload, "weights");
        rv = alk_diag_set(diag, ALK_EINVAL, "read a %s payload of %zu weights",
                          alk_value_get(payload, "format")->as.str.bytes, weights->as.map.len);
    }
    alk_buf_fini(&json);
    alk_arena_fini(&arena);
    return rv;
}

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state, (void)trace, (void)host, (void)model, (void)inputs, (void)n_inputs;
    return alk_diag_set(diag, ALK_EINVAL, "keras_probe does not trace");
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "keras_probe",
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
