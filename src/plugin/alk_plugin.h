/*
 * alk_plugin.h — the plugin ABI of alkaid. The one header a plugin includes.
 *
 * A plugin is a shared object plus a manifest `NAME.plugin` beside it:
 *
 *     group = alir_tracer.plugins      # or alkaid_keras / alkaid_torch
 *     name = mytracer                  # framework key, or the base module handled
 *     library = libmytracer.so         # relative to the manifest's directory
 *     abi = 1
 *
 * The shared object exports one function, ALK_PLUGIN_ENTRY_SYMBOL, returning a pointer to a
 * static descriptor. The loader checks `abi_version` (must equal ALK_PLUGIN_ABI_VERSION),
 * `struct_size` (at least the size this header gives for that ABI version), that `group` and
 * `name` equal the manifest's, and that the ops the group requires are set; a plugin failing any
 * check is refused with the reason and the other plugins keep working.
 *
 * Groups and their ops (the reference's entry-point groups, spec frontends.md §1):
 *  - "alir_tracer.plugins": a top-level tracer keyed by framework ("alkaid", "keras", "torch",
 *    or a third party's). Required: apply_model. Optional: get_input_shapes, init, fini.
 *  - "alkaid_keras", "alkaid_torch": a second-level operation plugin whose `name` is the base
 *    module (first dotted component) of the layers or ops it handles, e.g. "hgq". Required:
 *    register_handlers. It is loaded on demand, once, the first time a tracer asks for a handler
 *    of a layer from that module.
 *
 * Contracts common to every op: ops return 0 (ALK_OK) or a positive alk_err code and may then
 * fill `diag` with a sentence naming the culprit; they never exit or abort. Pointers given to an
 * op are borrowed for the duration of the call unless the op's comment says otherwise. init and
 * fini run on the thread that loads/unloads the plugin (the daemon's loop thread; alkaidd's
 * worker processes run init again, each, and exit without fini: docs/plugins.md); every other
 * op may run on any worker thread, concurrently with itself, so per-job state belongs in the job
 * (the trace), not in the plugin.
 */
#ifndef ALK_PLUGIN_ALK_PLUGIN_H
#define ALK_PLUGIN_ALK_PLUGIN_H

#include "core/err.h"
#include "graph/value.h"
#include "trace/fvarray.h" /* the tracing API: alk_trace, alk_fva, alk_fvar */

#include <stddef.h>
#include <stdint.h>

#define ALK_PLUGIN_ABI_VERSION 1u

/* Plugin groups, with the reference's entry-point names. */
#define ALK_GROUP_TRACER "alir_tracer.plugins"
#define ALK_GROUP_KERAS "alkaid_keras"
#define ALK_GROUP_TORCH "alkaid_torch"
#define ALK_PLUGIN_ENTRY_SYMBOL "alk_plugin_entry"

/* What the host lends a plugin during a call: handler lookup, the dump map (see below). */
typedef struct alk_host alk_host;

/* Shapes a tracer reports for its model's inputs. */
enum { ALK_PLUGIN_MAX_INPUTS = 64, ALK_PLUGIN_MAX_DIMS = 8 };

typedef struct alk_plugin_shape {
    uint32_t n_dims;
    int64_t dims[ALK_PLUGIN_MAX_DIMS];
} alk_plugin_shape;

/* One call of a second-level handler on one layer / op. */
typedef struct alk_op_call {
    size_t struct_size;       /* sizeof(alk_op_call) of the host; fields may be added */
    alk_trace *trace;         /* the job's tracing context */
    const alk_host *host;     /* for alk_host_dump and nested handler lookups */
    const char *name;         /* layer / node name (for errors and the dump) */
    const alk_value *config;  /* the layer's config map or the fx node */
    const alk_value *weights; /* the layer's weights (a map of tensors), or NULL */
    alk_fva *const *inputs;   /* n_inputs symbolic inputs */
    size_t n_inputs;
    alk_fva **outputs; /* the handler writes up to max_outputs results here */
    size_t max_outputs;
    size_t n_outputs; /* the handler sets how many it wrote */
} alk_op_call;

typedef int (*alk_op_handler)(void *plugin_state, alk_op_call *call, alk_diag *diag);

/* The registry a second-level plugin fills when it is loaded. */
typedef struct alk_handler_registry alk_handler_registry;

typedef struct alk_plugin_descriptor {
    uint32_t abi_version; /* ALK_PLUGIN_ABI_VERSION */
    uint32_t struct_size; /* sizeof(alk_plugin_descriptor) */
    const char *group;
    const char *name;
    const char *version; /* the plugin's own version string, for listings; may be NULL */

    /* Optional. Creates the plugin's state, handed to every other op; *ret_state may stay NULL. */
    int (*init)(void **ret_state, alk_diag *diag);
    /* Optional. Frees the state of init; runs once, when no job uses the plugin any more. */
    void (*fini)(void *state);

    /*
     * Tracers, optional: the input shapes the model declares. Writes up to `cap` shapes and their
     * number; returns ALK_ENOENT when the model does not say ("inputs must be provided").
     */
    int (*get_input_shapes)(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag);

    /*
     * Tracers, required: replays `model` on the symbolic `inputs` within `trace`. Stores named
     * results with alk_host_dump(host, name, arrays, n) — the reference's trace-map keys
     * ("/layer/final", "post_call", "#N" renames) — and names the model outputs, in order, with
     * alk_host_set_outputs. Arrays belong to the trace.
     */
    int (*apply_model)(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag);

    /* Operation plugins, required: registers handlers with alk_handlers_add. */
    int (*register_handlers)(void *state, alk_handler_registry *registry, alk_diag *diag);
} alk_plugin_descriptor;

/* The function a plugin exports under ALK_PLUGIN_ENTRY_SYMBOL. */
typedef const alk_plugin_descriptor *(*alk_plugin_entry_fn)(void);

/*
 * Registers `handler` for layers/ops whose class is `class_name` in module `module` (the full
 * dotted module; the registry is keyed by (module, class_name) as Keras layers and ops share
 * class names). Strings are copied. Returns ALK_EINVAL for a duplicate key.
 */
int alk_handlers_add(alk_handler_registry *registry, const char *module, const char *class_name,
                     alk_op_handler handler);

/*
 * For tracers: finds the handler of (module, class_name) in `group` ("alkaid_keras" /
 * "alkaid_torch"), loading the second-level plugin named after the module's first component on
 * demand (once per plugin generation). On success *ret_handler and *ret_state are what to call.
 * ALK_ENOENT (with a message naming the layer class and the module) when nothing handles it.
 */
int alk_host_find_handler(const alk_host *host, const char *group, const char *module,
                          const char *class_name, alk_op_handler *ret_handler, void **ret_state,
                          alk_diag *diag);

/* Records `arrays` (n of them; borrowed, owned by the trace) in the trace map under `name`. */
int alk_host_dump(const alk_host *host, const char *name, alk_fva *const *arrays, size_t n);

/* Names the model outputs: `names` (n strings, copied), each already recorded by alk_host_dump. */
int alk_host_set_outputs(const alk_host *host, const char *const *names, size_t n);

#endif
