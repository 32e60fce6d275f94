/*
 * The `alkaid` tracer plugin: the reference's example model (spec frontends.md §5,
 * trace-alir.md §5). Its model payload is `{"input_shape": [R, C]}` or `{"input_shape": null}`
 * (then the request must give the input); apply_model replays `operation(x)` on the one input
 * and names the result "output_name", as the reference's ExampleALIRTracer does. The model is
 * one fixed function, so it needs no handler table: its scope only names the output.
 */
#include "plugin/alk_plugin.h"
#include "trace/example.h"

static int get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state;
    const alk_value *shape = alk_value_get(model, "input_shape");
    if (shape == NULL || shape->kind == ALK_VALUE_NIL) {
        return ALK_ENOENT;
    }
    if (shape->kind != ALK_VALUE_ARRAY || shape->as.array.len == 0 ||
        shape->as.array.len > ALK_PLUGIN_MAX_DIMS || cap < 1) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "model.input_shape must be a list of 1 to %d positive integers",
                            ALK_PLUGIN_MAX_DIMS);
    }
    alk_plugin_shape out = {.n_dims = (uint32_t)shape->as.array.len};
    for (size_t d = 0; d < shape->as.array.len; d++) {
        const alk_value *dim = shape->as.array.items[d];
        if (dim->kind != ALK_VALUE_INT || dim->as.integer <= 0) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "model.input_shape[%zu] must be a positive integer", d);
        }
        out.dims[d] = dim->as.integer;
    }
    ret_shapes[0] = out;
    *ret_n_shapes = 1;
    return ALK_OK;
}

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    (void)model;
    if (n_inputs != 1) {
        return alk_diag_set(diag, ALK_EINVAL, "the example model takes exactly one input, got %zu",
                            n_inputs);
    }
    if (alk_fva_ndim(inputs[0]) != 2) {
        return alk_diag_set(diag, ALK_EINVAL, "the example model needs a 2-D input, got %zu-D",
                            alk_fva_ndim(inputs[0]));
    }
    /* The reference's trace map holds the result alone, under "output_name". */
    alk_scope *scope = alk_scope_new(host, trace, ALK_SCOPE_TORCH, "");
    alk_fva *out = alk_example_operation(trace, inputs[0]);
    return alk_scope_finish(scope, "output_name", &out, 1, diag);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "alkaid",
    .version = ALKAID_VERSION,
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
