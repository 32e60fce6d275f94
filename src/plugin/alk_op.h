/*
 * alk_op.h — the handler kit: how a layer, op, function or method handler is written, registered
 * and called. Part of the plugin ABI (alk_plugin.h includes it).
 *
 * A handler is one function of the shape
 *
 *     static void dense(alk_op *op, const void *arg) {
 *         alk_op_out(op, alk_nn_dense(alk_op_trace(op), alk_op_in(op, 0),
 *                                     alk_op_weight(op, "kernel"), alk_op_weight_opt(op, "bias")));
 *     }
 *
 * plus one row of a `static const alk_op_def` table in its plugin's descriptor. The handler is a
 * straight sequence of calls: every reader and every tracing call records the first error in the
 * op's trace (sticky; the kit's own messages carry "layer NAME (Class): " at once, those of
 * tracing calls get it when the handler returns) and returns a neutral value (0, NULL, the
 * default) afterwards, and NULL arrays propagate through the tracing API. The host checks once,
 * after the handler returns. One error channel: there is no return code to bridge.
 *
 * The host does the uniform work of every call, once:
 *   - finds the row: by (module, name) in the running tracer's own table, then in the
 *     second-level plugin named after the module's first component (loaded on demand);
 *   - checks the arity (min_args/max_args of the row) and binds positional arguments to the
 *     row's parameter names (`params`), so readers find them by name whatever the call's form;
 *   - runs the plugin's `before_op` hook (HGQ2's input quantizers) unless the row has
 *     ALK_OP_OWN_IQ;
 *   - calls the handler (a handler that produces no result fails the op);
 *   - dumps `post_call`, applies the layer's activation with the scope's activation function
 *     (the Keras tracer's strict map of config.activation) unless the row has
 *     ALK_OP_OWN_ACTIVATION, runs the plugin's `after_op` hook (output quantizers) unless
 *     ALK_OP_OWN_OQ, and dumps `final` under the scope's `#N`-renamed layer name (spec
 *     frontends.md §1.3); extra entries (alk_op_dump, e.g. HGQ2's `post_iq`) come first, in
 *     call order.
 * The hooks and the plugin state are those of the plugin whose table holds the row.
 *
 * Values. Arguments and results are tagged values (`alk_arg`): arrays, Python scalars, strings,
 * None, slices (whose bounds are values), Ellipsis, tuples, lists, dicts and dtypes. Configs
 * (a Keras layer's config, a torch module's attributes) stay `alk_value` trees; the typed readers
 * look a key up in the bound call arguments first, then in the keyword arguments, then in the
 * config, so one reader serves `F.conv2d(x, w, stride=2)`, `nn.Conv2d(stride=2)` and Keras
 * `Conv2D(strides=2)` alike.
 *
 * Weights are asked for by role ("kernel", "bias", "gamma", ...). The row's `weights` layout
 * tells the host which position a role has (Keras's `vars/N` order, which depends on the config:
 * "kernel bias:use_bias"); the tracer's weight source resolves a role or a path to a tensor, and
 * the host decodes it (every dtype of frontends.md §7.2) into a numeric array. A second-level
 * plugin may replace a role for the rest of the call (alk_op_set_weight: HGQ2's qkernel), then
 * run a built-in body with alk_op_delegate.
 *
 * Ownership: an `alk_op` and everything the kit returns (arrays, values, strings) live in the
 * job's trace arena and die with it; handlers never free anything. Pointer arguments are
 * borrowed for the call. Thread rule: an op belongs to the job's thread.
 */
#ifndef ALK_PLUGIN_ALK_OP_H
#define ALK_PLUGIN_ALK_OP_H

#include "core/err.h"
#include "graph/value.h"
#include "trace/fvarray.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alk_op alk_op;
typedef struct alk_host alk_host;

/* ---- Tagged values ------------------------------------------------------------------------- */

typedef enum alk_arg_kind {
    ALK_ARG_NONE, /* Python None; also what a missing optional argument reads as */
    ALK_ARG_ARRAY,
    ALK_ARG_INT,
    ALK_ARG_FLOAT,
    ALK_ARG_BOOL,
    ALK_ARG_STR,
    ALK_ARG_SLICE, /* start/stop/step, each NONE or INT once resolved */
    ALK_ARG_ELLIPSIS,
    ALK_ARG_TUPLE,
    ALK_ARG_LIST,
    ALK_ARG_DICT,  /* items alternate key, value (keys are STR) */
    ALK_ARG_DTYPE, /* a dtype by its numpy name ("int32", "bool", "float32") */
} alk_arg_kind;

typedef struct alk_arg alk_arg;

struct alk_arg {
    alk_arg_kind kind;
    union {
        alk_fva *array;
        int64_t integer;
        double number;
        bool boolean;
        const char *str; /* STR and DTYPE */
        struct {
            const alk_arg *start, *stop, *step;
        } slice;
        struct {
            const alk_arg *const *items;
            size_t len; /* DICT: 2 x the number of pairs */
        } seq;
    } as;
};

/* Values made in the op's arena (NULL once the op has failed). */
const alk_arg *alk_arg_none(alk_op *op);
const alk_arg *alk_arg_ellipsis(alk_op *op);
const alk_arg *alk_arg_of_array(alk_op *op, alk_fva *array);
const alk_arg *alk_arg_of_int(alk_op *op, int64_t value);
const alk_arg *alk_arg_of_float(alk_op *op, double value);
const alk_arg *alk_arg_of_bool(alk_op *op, bool value);
/* A STR, or a DTYPE by its numpy name; `text` is copied. */
const alk_arg *alk_arg_of_str(alk_op *op, alk_arg_kind kind, const char *text);
/* A slice; each bound may be NULL (None). */
const alk_arg *alk_arg_of_slice(alk_op *op, const alk_arg *start, const alk_arg *stop,
                                const alk_arg *step);
/* `kind` is TUPLE, LIST or DICT (n even, keys STR); `items` (n entries) is copied. */
const alk_arg *alk_arg_of_seq(alk_op *op, alk_arg_kind kind, const alk_arg *const *items, size_t n);
/* A plain value tree (a JSON or msgpack config value) as a value: nil -> NONE, arrays -> LIST,
 * maps -> DICT; binary data fails the op. `value` is borrowed; strings are shared with it. */
const alk_arg *alk_arg_of_value(alk_op *op, const alk_value *value);

/* `size` zeroed bytes in the trace's arena, alive as long as the trace (the `user` data of a table
 * function that is tabulated later, alk_fva_apply_custom); NULL once the op has failed or the
 * arena is exhausted (the trace then holds the error). */
void *alk_op_alloc(alk_op *op, size_t size);

/* Python's name of a kind ("tuple"), for error messages. */
const char *alk_arg_kind_name(alk_arg_kind kind);

/* ---- The call: identity and context --------------------------------------------------------- */

alk_trace *alk_op_trace(const alk_op *op);
const char *alk_op_name(const alk_op *op);   /* layer / node name */
const char *alk_op_class(const alk_op *op);  /* class, function or method name */
const char *alk_op_module(const alk_op *op); /* module of the class ("keras.layers") */
/* The layer's config map (Keras) or the module's attributes (torch); an empty map if none. */
const alk_value *alk_op_config(const alk_op *op);
/* The `state` the row's plugin made in init (NULL if none). */
void *alk_op_plugin_state(const alk_op *op);

/* ---- Arguments --------------------------------------------------------------------------------
 */

/* The number of positional arguments of the call. */
size_t alk_op_n_args(const alk_op *op);
/* Argument i: positional argument i, else the keyword argument named by the i-th name of the
 * running row's `params` (`F.linear(input=x, weight=w)`); NULL if there is none. */
const alk_arg *alk_op_arg(const alk_op *op, size_t i);
/* Keyword argument `key` of the call (NULL if absent). */
const alk_arg *alk_op_kwarg(const alk_op *op, const char *key);
/* Argument i as an array; a missing or non-array argument fails the op. */
alk_fva *alk_op_in(alk_op *op, size_t i);
/* Argument i as a list of arrays: a LIST/TUPLE of arrays (Keras merge layers, torch.cat) or one
 * array. Writes up to `cap` arrays; returns how many there are (0 on error). */
size_t alk_op_in_list(alk_op *op, size_t i, alk_fva **ret, size_t cap);
/* Replaces argument i (HGQ2's before_op quantizing its inputs): with an array, or with any
 * value (a list of quantized arrays for a merge layer). */
void alk_op_set_in(alk_op *op, size_t i, alk_fva *array);
void alk_op_set_arg(alk_op *op, size_t i, const alk_arg *value);

/* ---- Parameters: bound arguments, keyword arguments, then the config ---------------------------
 */

/* The value of parameter `key`, or NULL when absent everywhere. Config values are converted
 * (alk_arg_of_value). The scalar readers below treat None like an absent key. */
const alk_arg *alk_op_get(alk_op *op, const char *key);
/* Present and not None. */
bool alk_op_has(alk_op *op, const char *key);
int64_t alk_op_int(alk_op *op, const char *key, int64_t dflt);
double alk_op_float(alk_op *op, const char *key, double dflt); /* ints accepted */
bool alk_op_bool(alk_op *op, const char *key, bool dflt);
const char *alk_op_str(alk_op *op, const char *key, const char *dflt);
/* An int (repeated n times) or a sequence of exactly n ints; absent or None: `dflt` repeated.
 * Writes n entries to `ret`. */
void alk_op_ints(alk_op *op, const char *key, size_t n, int64_t dflt, int64_t *ret);
/* A sequence of ints of any length up to `cap` (an int reads as one); returns the length, or
 * SIZE_MAX when absent or None (and after an error). */
size_t alk_op_int_list(alk_op *op, const char *key, int64_t *ret, size_t cap);
/* One of `names` (a NULL-terminated list): returns its index; absent: `dflt`. */
int alk_op_enum(alk_op *op, const char *key, const char *const *names, int dflt);
/* A parameter that must be an array: an array, a number (a 0-d numeric array) or nested
 * lists of numbers (a numeric array of their shape). */
alk_fva *alk_op_array(alk_op *op, const char *key);

/* ---- Bodies both frameworks share ------------------------------------------------------------
 */

/* The bounds of `slice` (a SLICE value) into ret[3] (start, stop, step): each an int within
 * int32 or None (ALK_FV_NONE); the step is not 0. Otherwise fails the op and returns false. */
bool alk_op_slice_bounds(alk_op *op, const alk_arg *slice, int64_t ret[3]);
/* Appends x[items] (numpy's basic indexing): `items` (n, borrowed) are ints, slices, None and
 * Ellipsis; any other kind (fancy indexing) fails the op with ALK_ENOTSUP. A framework unpacks
 * its key: a tuple is its items, anything else one item. A NULL x does nothing. */
void alk_op_index(alk_op *op, alk_fva *x, const alk_arg *const *items, size_t n);
/* Appends numpy's moveaxis(x, source, destination) read from parameters `source` and
 * `destination`: ints or sequences of as many distinct axes (negative ones count from the
 * end); the other axes keep their order. A NULL x does nothing. */
void alk_op_moveaxis(alk_op *op, alk_fva *x);

/* ---- Weights --------------------------------------------------------------------------------- */

/* The numeric array of `role`; a missing weight fails the op naming the role. */
alk_fva *alk_op_weight(alk_op *op, const char *role);
/* The same, NULL (and no error) when the layer has no such weight (a bias with use_bias false). */
alk_fva *alk_op_weight_opt(alk_op *op, const char *role);
/* A tensor at `path` relative to the layer ("kq/quantizer/vars/1"); NULL (no error) if absent. */
alk_fva *alk_op_tensor_opt(alk_op *op, const char *path);
/* What the weight source stores at `path`, undecoded and borrowed for the trace's life: a tensor
 * ({dtype, shape, data} map or nested lists of numbers), or for the path of a `vars` group the
 * `name` attribute the file gives it (a STR) when the source knows one; NULL (no error) if
 * absent. For checks before decoding (HGQ2's quantizer variables: k must be uint8). */
const alk_value *alk_op_stored_opt(alk_op *op, const char *path);
/* Replaces `role` for the rest of the call (also for a delegated body); NULL: the layer has no
 * such weight from now on (HGQ2's qbias of a layer without bias). */
void alk_op_set_weight(alk_op *op, const char *role, alk_fva *value);

/* ---- Results, errors, dumps -------------------------------------------------------------------
 */

/* Appends an array result (the layer's next output). */
void alk_op_out(alk_op *op, alk_fva *result);
/* Appends any value as a result (an int, a shape tuple, a tuple of arrays). */
void alk_op_return(alk_op *op, const alk_arg *result);
/* The results so far; a tracer reads them after alk_op_run (a NULL op has none). */
size_t alk_op_n_results(const alk_op *op);
const alk_arg *alk_op_result(const alk_op *op, size_t i);
/* Result i when it is an array, else NULL (a tracer binding a layer's output tensors). */
alk_fva *alk_op_result_array(const alk_op *op, size_t i);
/* Replaces result i (HGQ2's after_op quantizing the outputs). */
void alk_op_set_result(alk_op *op, size_t i, const alk_arg *result);

/* Fails the op: records `err` with "layer NAME (Class): " + the message, unless it failed
 * already. Later calls on the op do nothing. */
void alk_op_fail(alk_op *op, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whether the op (or its trace) has failed. */
bool alk_op_failed(const alk_op *op);

/* Records an extra trace-map entry `key` of this call (HGQ2's "post_iq"): a tuple of `n` arrays
 * (borrowed; one per input of a multi-input layer), dumped before `post_call` and `final`. */
void alk_op_dump(alk_op *op, const char *key, alk_fva *const *arrays, size_t n);

/* Runs the body of row (module, name) — found as the host finds any row — on this op, with its
 * own `arg`, without hooks, activation or dumps (those belong to the outer row). */
void alk_op_delegate(alk_op *op, const char *module, const char *name);

/* ---- Handler tables ----------------------------------------------------------------------------
 */

typedef void alk_op_fn(alk_op *op, const void *arg);

typedef enum alk_op_flags {
    ALK_OP_OWN_ACTIVATION = 1u << 0, /* the handler applies config.activation itself */
    ALK_OP_OWN_IQ = 1u << 1,         /* the plugin's before_op hook is not run */
    ALK_OP_OWN_OQ = 1u << 2,         /* the plugin's after_op hook is not run */
} alk_op_flags;

#define ALK_OP_ANY_ARGS 255u

/*
 * One row of a handler table. `module` matches a call's module exactly, or as a package prefix
 * ("hgq" matches "hgq.layers.core.dense"); exact rows win, then the longest prefix. `params`
 * names the positional parameters in order, space-separated ("input weight bias stride padding
 * dilation groups"), so readers find positional and keyword arguments by name; NULL: none.
 * min_args/max_args bound the arguments that fill parameters: the positional ones plus the
 * keyword ones naming a later parameter of `params` (ALK_OP_ANY_ARGS: no upper bound).
 * `weights` is the layer's weight layout in its saved order, space-separated roles, each
 * optionally `role:key` (present only when config boolean `key` is true or absent) or
 * `role:!key` (present only when it is false); a role may appear twice under opposite
 * conditions; NULL: none. Roles, keys and parameter names are [A-Za-z0-9_]+. The loader refuses
 * a table with a duplicate (module, name), a missing name or fn, min_args > max_args, unknown
 * flags or a malformed `params` / `weights` string, naming the row.
 */
typedef struct alk_op_def {
    const char *module;
    const char *name;
    alk_op_fn *fn;
    const void *arg; /* passed to fn: a family constant (&rank_2, an enum value...) */
    uint32_t flags;  /* alk_op_flags */
    uint8_t min_args, max_args;
    const char *params;
    const char *weights;
} alk_op_def;

/* ---- For tracers: building and running calls ------------------------------------------------- */

/*
 * Where a layer's weights come from. `find` returns the tensor ({dtype, shape, data} map, or
 * nested lists of numbers as JSON payloads carry them) of `role` — `index` is its position in
 * the row's layout, or SIZE_MAX when the layout does not list it — or, when `role` is NULL, the
 * tensor at `path` relative to the layer. NULL: absent. The result is borrowed from the
 * tracer's payload; `ctx` is borrowed for the trace's life.
 */
typedef struct alk_op_weights {
    const alk_value *(*find)(const void *ctx, const char *role, size_t index, const char *path);
    const void *ctx;
} alk_op_weights;

/* One model level of the trace map: the dump prefix and the `#N` rename counters of its names. */
typedef struct alk_scope alk_scope;

/*
 * The two trace-map styles, with the call hygiene of their frameworks (alk_op_add_arg):
 *  - KERAS: "<prefix><name>/post_call" and ".../final" for every layer; a `training` keyword
 *    argument is dropped when None or False and fails the op when true (spec frontends.md §2.1
 *    step 7; the reference also refuses None and array keywords, we accept both);
 *  - TORCH: "<prefix><name>/final" only, and only when every result is an array, with '.' of
 *    the name (a module's qualified target) written '/'; keyword arguments `inplace`, `out` and
 *    `memory_format` are dropped (§4.2 step 5).
 */
typedef enum alk_scope_style {
    ALK_SCOPE_KERAS,
    ALK_SCOPE_TORCH,
} alk_scope_style;

/* A scope in the trace arena; `prefix` ("/" at Keras's top level, "" for torch) is copied. */
alk_scope *alk_scope_new(const alk_host *host, alk_trace *trace, alk_scope_style style,
                         const char *prefix);
/* A scope for a nested model called as layer `name` of `parent` (its prefix is the parent's
 * prefix + the renamed name + "/"); inherits the style and the activation function. */
alk_scope *alk_scope_child(alk_scope *parent, const char *name);

/*
 * The activation step of every op run in `scope` (and its children) whose row does not own its
 * activation: `fn` returns the activated result of `x` for the op's config, or x itself when
 * there is none (NULL fn: no activation step). A framework's tracer installs its own map.
 */
typedef alk_fva *alk_activation_fn(alk_op *op, alk_fva *x);
void alk_scope_set_activation(alk_scope *scope, alk_activation_fn *fn);
/*
 * The tracer's own per-job data (its options, its model), set on its top-level scope and
 * inherited by child scopes; its rows' handlers and hooks read it with alk_op_scope_data (a
 * plugin's state is shared by concurrent jobs, this is not). Only the tracer that set it may
 * interpret it: second-level plugins must not. `data` is borrowed: it must outlive every op run in
 * the scope and its children.
 */
void alk_scope_set_data(alk_scope *scope, void *data);
void *alk_op_scope_data(const alk_op *op);
/* The scope's name for the next use of `name`: `name`, then `name#1`, `name#2`, ... (arena). */
const char *alk_scope_unique(alk_scope *scope, const char *name);
const char *alk_scope_prefix(const alk_scope *scope);

/* Records `arrays` (n, borrowed) under "<prefix><key>"; a failure is sticky in the trace. */
void alk_scope_dump(alk_scope *scope, const char *key, alk_fva *const *arrays, size_t n);

/*
 * A model level's last step. For a nested scope: records its outputs as "<prefix><key>" (a
 * nested Keras model's "/functional/final"). For a top-level scope: records them under `key`
 * itself ("final", "output_name") and names them the model's outputs. Either way it returns the
 * trace's error, copied into `diag` (ALK_OK when the trace is sound), so a tracer's apply_model
 * ends with `return alk_scope_finish(scope, "final", outputs, n, diag);`.
 */
int alk_scope_finish(alk_scope *scope, const char *key, alk_fva *const *outputs, size_t n,
                     alk_diag *diag);

/*
 * The row for (module, name): the running tracer's table first, then the second-level plugin of
 * the module's first component (loaded on demand, once per generation). ALK_ENOENT with a message
 * naming the class and module when nothing handles it; ALK_EPLUGIN when the plugin failed.
 */
int alk_host_find_op(const alk_host *host, const char *module, const char *name,
                     const alk_op_def **ret_def, alk_diag *diag);

/* A new call of `name` (the layer / node name, copied) to class `class_name` of `module`
 * (copied) with `config` (borrowed for the trace's life; NULL: none). NULL once the trace has
 * failed; the functions below accept that NULL and do nothing (alk_op_run returns the error). */
alk_op *alk_op_new(alk_scope *scope, const char *name, const char *module, const char *class_name,
                   const alk_value *config);
/* Adds a positional argument, or a keyword argument when `key` is not NULL (copied), after the
 * scope style's hygiene (see alk_scope_style). `value` must come from this op's constructors or
 * outlive the trace. */
void alk_op_add_arg(alk_op *op, const char *key, const alk_arg *value);
/* `weights` is copied. */
void alk_op_set_weights(alk_op *op, const alk_op_weights *weights);

/*
 * Runs `def` on `op` with the host's uniform steps (above). The trace's sticky error carries
 * the failure, prefixed with the layer; returns that error (ALK_OK on success).
 */
int alk_op_run(alk_op *op, const alk_op_def *def);

#endif
