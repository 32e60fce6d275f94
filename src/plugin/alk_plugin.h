/*
 * alk_plugin.h — the plugin ABI of alkaid. The one header a plugin includes.
 *
 * A plugin is a shared object plus a manifest `NAME.plugin` beside it:
 *
 *     group = alir_tracer.plugins      # or alkaid_keras / alkaid_torch
 *     name = mytracer                  # framework key, or the base module handled
 *     library = libmytracer.so         # relative to the manifest's directory
 *     abi = 2
 *
 * The shared object exports one function, ALK_PLUGIN_ENTRY_SYMBOL, returning a pointer to a
 * static descriptor. The loader checks `abi_version` (must equal ALK_PLUGIN_ABI_VERSION),
 * `struct_size` (at least the size this header gives for that ABI version), that `group` and
 * `name` equal the manifest's, and that the ops the group requires are set; a plugin failing any
 * check is refused with the reason and the other plugins keep working.
 *
 * Groups and their ops (the reference's entry-point groups, spec frontends.md §1):
 *  - "alir_tracer.plugins": a top-level tracer keyed by framework ("alkaid", "keras", "torch",
 *    or a third party's). Required: apply_model. Optional: get_input_shapes, init, fini, ops
 *    (its built-in handler table), before_op, after_op.
 *  - "alkaid_keras", "alkaid_torch": a second-level operation plugin whose `name` is the base
 *    module (first dotted component) of the layers or ops it handles, e.g. "hgq". Required:
 *    ops (a non-empty handler table). Optional: init, fini, before_op, after_op. It is loaded on
 *    demand, once per generation, the first time the tracer of its framework ("alkaid_keras"
 *    serves the "keras" tracer) meets a layer from that module that its own table lacks.
 *
 * Contracts common to every op: ops return 0 (ALK_OK) or a positive alk_err code and may then
 * fill `diag` with a sentence naming the culprit; they never exit or abort. Pointers given to an
 * op are borrowed for the duration of the call unless the op's comment says otherwise. init and
 * fini run on the thread that loads/unloads the plugin (the daemon's loop thread); every other
 * op may run on any worker thread, concurrently with itself, so per-job state belongs in the job
 * (the trace), not in the plugin.
 */
#ifndef ALK_PLUGIN_ALK_PLUGIN_H
#define ALK_PLUGIN_ALK_PLUGIN_H

#include "core/err.h"
#include "graph/value.h"
#include "plugin/alk_op.h" /* handlers, their tables, scopes */
#include "trace/fvarray.h" /* the tracing API: alk_trace, alk_fva, alk_fvar */

#include <stddef.h>
#include <stdint.h>

#define ALK_PLUGIN_ABI_VERSION 2u

/* Plugin groups, with the reference's entry-point names. */
#define ALK_GROUP_TRACER "alir_tracer.plugins"
#define ALK_GROUP_KERAS "alkaid_keras"
#define ALK_GROUP_TORCH "alkaid_torch"
#define ALK_PLUGIN_ENTRY_SYMBOL "alk_plugin_entry"

/* What the host lends a tracer during apply_model: row lookup (alk_host_find_op), the trace
 * map its scopes write (alk_op.h). */
typedef struct alk_host alk_host;

/* Shapes a tracer reports for its model's inputs. */
enum { ALK_PLUGIN_MAX_INPUTS = 64, ALK_PLUGIN_MAX_DIMS = 8 };

typedef struct alk_plugin_shape {
    uint32_t n_dims;
    int64_t dims[ALK_PLUGIN_MAX_DIMS];
} alk_plugin_shape;

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
     * Tracers, required: replays `model` on the symbolic `inputs` within `trace`, running its
     * layers as ops (alk_op.h) in scopes that name the trace-map entries ("/layer/final",
     * "post_call", "#N" renames), and ends with alk_scope_finish, which names the outputs and
     * returns the trace's error. Arrays belong to the trace.
     */
    int (*apply_model)(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag);

    /*
     * The handler table (alk_op.h): n_ops rows, static, validated by the loader. Tracers:
     * optional, their built-in handlers, searched first. Operation plugins: required.
     */
    const alk_op_def *ops;
    size_t n_ops;

    /*
     * Optional hooks alk_op_run calls around every row of this plugin's table: before_op before
     * the handler unless the row has ALK_OP_OWN_IQ (HGQ2's input quantizers, alk_op_set_in),
     * after_op after the activation unless ALK_OP_OWN_OQ (output quantizers, alk_op_set_result).
     */
    void (*before_op)(alk_op *op);
    void (*after_op)(alk_op *op);
} alk_plugin_descriptor;

/* The function a plugin exports under ALK_PLUGIN_ENTRY_SYMBOL. */
typedef const alk_plugin_descriptor *(*alk_plugin_entry_fn)(void);

/*
 * Records `arrays` (n of them; borrowed, owned by the trace) in the trace map under `name`
 * exactly (a tracer's "inputs" entry; layers are recorded by alk_op_run and scopes). A name
 * stored again replaces the old value in place, like a Python dict. ALK_OK or ALK_ENOMEM.
 */
int alk_host_dump(const alk_host *host, const char *name, alk_fva *const *arrays, size_t n);

#endif
