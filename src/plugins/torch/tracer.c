/*
 * The `torch` tracer plugin: replays a torch.fx graph on symbolic inputs (spec frontends.md §4,
 * docs/protocol.md "Model payloads → torch").
 *
 * The walk follows the reference's GraphTracer.apply_model: nodes in graph order; placeholders
 * take the inputs in order; get_attr reads a tensor of the payload as a numeric array;
 * call_module, call_function and call_method run one op of the handler kit each, whose row is
 * found by (module, name) in this plugin's table (table.c) and then, for a module or function of
 * another package, in the second-level `alkaid_torch` plugin named after that package (the kit
 * loads it on demand); the output node names the results. The trace map starts with `inputs`;
 * module calls are dumped as `<target with / for .>/final`, function and method calls as
 * `<node>/final` when their value is an array, with one `#N` rename counter (§1.3): the kit's
 * torch scope style does exactly this.
 *
 * Differences from the reference, all deliberate: an unknown function or method is reported as
 * "unsupported function/method X at node N" (the reference's plugin lookup for them could never
 * succeed, §1.2 quirk); an output may nest tuples, lists and dicts (their arrays are the outputs,
 * in order); a graph is checked as a whole before anything runs (graph.c).
 *
 * There are no input shapes in an fx graph (placeholders carry none), so the plugin has no
 * get_input_shapes and a request without `inputs` fails with "inputs must be provided".
 *
 * Thread rule: apply_model is reentrant; all state lives in the job's trace and this call.
 */
#include "torch_int.h"
#include "walk.h"

#include "core/alloc.h"
#include "core/vec.h"

#include <stdio.h>
#include <string.h>

/* ---- Weights: a module's parameters by role, or a tensor of the payload by key -------------- */

typedef struct weight_source {
    const alk_value *params;  /* role -> tensor key or nil; NULL: no parameters */
    const alk_value *tensors; /* the payload's tensors */
} weight_source;

static const alk_value *find_weight(const void *ctx, const char *role, size_t index,
                                    const char *path) {
    (void)index; /* a torch module names its parameters; there is no saved order */
    const weight_source *source = ctx;
    if (role == NULL) {
        return alk_value_get(source->tensors, path);
    }
    const alk_value *key = alk_value_get(source->params, role);
    return key != NULL && key->kind == ALK_VALUE_STR
               ? alk_value_get(source->tensors, key->as.str.bytes)
               : NULL;
}

/* ---- Finding a node's row ---------------------------------------------------------------------
 */

/* Modules whose rows only this plugin can hold: torch itself and Python's builtins. */
static bool is_framework_package(const char *module) {
    static const char *const packages[] = {"torch", "operator", "_operator", "builtins"};
    size_t len = strcspn(module, ".");
    for (size_t i = 0; i < sizeof(packages) / sizeof(packages[0]); i++) {
        if (strlen(packages[i]) == len && strncmp(module, packages[i], len) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * The row of (module, name) for the current node, or NULL with the trace failed: an operation
 * of torch or of Python's operators that no row handles is "unsupported <what> <target> at
 * <where>"; for another package the kit's message says which second-level plugin was missing
 * or why it failed to load.
 */
static const alk_op_def *find_row(torch_walk *walk, const char *module, const char *name,
                                  const char *what, const char *target, const char *where) {
    const alk_op_def *def = NULL;
    alk_diag diag = {{0}};
    int rv = alk_host_find_op(walk->host, module, name, &def, &diag);
    if (rv == ALK_OK) {
        return def;
    }
    if (rv == ALK_ENOENT && is_framework_package(module)) {
        (void)alk_trace_fail(walk->trace, ALK_EINVAL, "unsupported %s %s at %s", what, target,
                             where);
    } else {
        (void)alk_trace_fail(walk->trace, rv == ALK_ENOENT ? ALK_EINVAL : rv,
                             "unsupported %s %s at %s: %s", what, target, where, diag.message);
    }
    return NULL;
}

/* ---- Running nodes ----------------------------------------------------------------------------
 */

/* Adds the node's arguments and keyword arguments to `op`, resolved. */
static void add_args(torch_walk *walk, alk_op *op, const torch_node *node, size_t first) {
    for (size_t k = first; k < node->args->as.array.len; k++) {
        alk_op_add_arg(op, NULL, torch_resolve(walk, op, node->args->as.array.items[k]));
    }
    for (size_t k = 0; k < node->kwargs->as.map.len; k++) {
        const alk_value_pair *p = &node->kwargs->as.map.pairs[k];
        alk_op_add_arg(op, p->key->as.str.bytes, torch_resolve(walk, op, p->value));
    }
}

/* The value of a call: its one result, or the tuple of several (a second-level plugin's
 * handler may return each item as a result). */
static const alk_arg *call_value(alk_op *op) {
    enum { MAX_RESULTS = 64 };
    size_t n = alk_op_n_results(op);
    if (n == 1) {
        return alk_op_result(op, 0);
    }
    if (n > MAX_RESULTS) {
        alk_op_fail(op, ALK_ELIMIT, "%zu results (at most %d)", n, MAX_RESULTS);
        return NULL;
    }
    const alk_arg *items[MAX_RESULTS];
    for (size_t i = 0; i < n; i++) {
        items[i] = alk_op_result(op, i);
    }
    return alk_arg_of_seq(op, ALK_ARG_TUPLE, items, n);
}

/* "a.b.Class" -> module "a.b" (into buf) and name "Class". */
static const char *split_target(const char *target, char *buf, size_t cap) {
    const char *dot = strrchr(target, '.');
    size_t len = dot != NULL ? (size_t)(dot - target) : 0;
    if (len == 0 || len >= cap || dot[1] == '\0') {
        return NULL;
    }
    memcpy(buf, target, len);
    buf[len] = '\0';
    return dot + 1;
}

/* call_module: the module at path `target`, its handler chosen by type; value = its first
 * result (the reference keeps final[0]). */
static void run_module(torch_walk *walk, const torch_node *node, weight_source *source) {
    const alk_value *type = alk_value_get(node->module, "type");
    char module[256];
    const char *class_name = split_target(type->as.str.bytes, module, sizeof(module));
    if (class_name == NULL) {
        torch_walk_fail(walk, "module type '%.64s' is not <module>.<class>", type->as.str.bytes);
        return;
    }
    source->params = alk_value_get(node->module, "params");
    alk_op *op = alk_op_new(walk->scope, node->target, module, class_name, node->attrs);
    alk_op_set_weights(op, &(alk_op_weights){find_weight, source});
    add_args(walk, op, node, 0);
    if (alk_trace_error(walk->trace) != ALK_OK) {
        return;
    }
    const alk_op_def *def =
        find_row(walk, module, class_name, "module", type->as.str.bytes, node->target);
    if (def != NULL && alk_op_run(op, def) == ALK_OK) {
        walk->values[walk->current] = alk_op_result(op, 0);
    }
}

/* call_function and call_method: value = the call's result (an array, a number, a tuple...). */
static void run_call(torch_walk *walk, const torch_node *node, weight_source *source) {
    bool method = node->kind == TORCH_CALL_METHOD;
    char module[256], label[160];
    const char *name;
    if (method) {
        (void)snprintf(module, sizeof(module), "%s", TORCH_METHOD_MODULE);
        (void)snprintf(label, sizeof(label), "Tensor.%s", node->target);
        name = node->target;
        if (node->args->as.array.len == 0) {
            torch_walk_fail(walk, "a method call needs its receiver as the first argument");
            return;
        }
    } else {
        (void)snprintf(label, sizeof(label), "%s", node->target);
        name = split_target(node->target, module, sizeof(module));
        if (name == NULL) {
            torch_walk_fail(walk, "function target '%.64s' is not <module>.<name>", node->target);
            return;
        }
    }
    alk_op *op = alk_op_new(walk->scope, node->name, module, label, NULL);
    alk_op_set_weights(op, &(alk_op_weights){find_weight, source});
    add_args(walk, op, node, 0);
    if (alk_trace_error(walk->trace) != ALK_OK) {
        return;
    }
    char where[160];
    (void)snprintf(where, sizeof(where), "node %s", node->name);
    const alk_op_def *def =
        find_row(walk, module, name, method ? "method" : "function", label, where);
    if (def != NULL && alk_op_run(op, def) == ALK_OK) {
        walk->values[walk->current] = call_value(op);
    }
}

/* placeholder and get_attr: a value made without a handler (an op is the arena's door). */
static void run_leaf(torch_walk *walk, const torch_node *node, weight_source *source,
                     alk_fva *const *inputs, size_t *next_input) {
    alk_op *op =
        alk_op_new(walk->scope, node->name, "torch.fx", torch_node_kind_name(node->kind), NULL);
    if (node->kind == TORCH_PLACEHOLDER) {
        walk->values[walk->current] = alk_arg_of_array(op, inputs[(*next_input)++]);
        return;
    }
    alk_op_set_weights(op, &(alk_op_weights){find_weight, source});
    walk->values[walk->current] = alk_arg_of_array(op, alk_op_tensor_opt(op, node->target));
}

/* ---- Outputs ----------------------------------------------------------------------------------
 */

/* Appends the arrays of an output value: an array, or tuples, lists and dicts of them. */
static void collect_outputs(torch_walk *walk, const alk_arg *value, alk_vec *outputs,
                            unsigned depth) {
    enum { MAX_DEPTH = 16 };
    if (value == NULL || alk_trace_error(walk->trace) != ALK_OK) {
        return;
    }
    if (value->kind == ALK_ARG_ARRAY) {
        /* A table function returned as is: tabulated with its float values. */
        alk_fva *array = alk_fva_is_pending(value->as.array)
                             ? alk_fva_quantize_each(walk->trace, value->as.array, NULL, NULL, NULL,
                                                     ALK_WRAP, ALK_TRN)
                             : value->as.array;
        if (alk_vec_push(outputs, &array) != ALK_OK) {
            (void)alk_trace_fail(walk->trace, ALK_ENOMEM, "out of memory collecting outputs");
        }
        return;
    }
    bool seq = value->kind == ALK_ARG_TUPLE || value->kind == ALK_ARG_LIST;
    if ((seq || value->kind == ALK_ARG_DICT) && depth < MAX_DEPTH) {
        /* A dict's outputs are its values, in order. */
        size_t step = seq ? 1 : 2;
        for (size_t i = seq ? 0 : 1; i < value->as.seq.len; i += step) {
            collect_outputs(walk, value->as.seq.items[i], outputs, depth + 1);
        }
        return;
    }
    torch_walk_fail(walk, "an output is a %s, not an array", alk_arg_kind_name(value->kind));
}

/* ---- The tracer -------------------------------------------------------------------------------
 */

int torch_apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                      alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    torch_graph graph;
    int rv = torch_graph_load(model, n_inputs, &graph, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    torch_walk walk = {.trace = trace, .host = host, .graph = &graph};
    walk.values = alk_calloc(graph.n_nodes, sizeof(*walk.values));
    weight_source *sources = alk_calloc(graph.n_nodes, sizeof(*sources));
    alk_vec outputs;
    alk_vec_init(&outputs, sizeof(alk_fva *));
    if (walk.values == NULL || sources == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory for %zu nodes", graph.n_nodes);
        goto done;
    }
    rv = alk_host_dump(host, "inputs", inputs, n_inputs);
    if (rv != ALK_OK) {
        rv = alk_diag_set(diag, rv, "out of memory recording the inputs");
        goto done;
    }
    walk.scope = alk_scope_new(host, trace, ALK_SCOPE_TORCH, "");
    size_t next_input = 0;
    for (size_t i = 0; i < graph.n_nodes && alk_trace_error(trace) == ALK_OK; i++) {
        const torch_node *node = &graph.nodes[i];
        walk.current = i;
        sources[i] = (weight_source){.tensors = graph.tensors};
        switch (node->kind) {
        case TORCH_PLACEHOLDER:
        case TORCH_GET_ATTR:
            run_leaf(&walk, node, &sources[i], inputs, &next_input);
            break;
        case TORCH_CALL_MODULE:
            run_module(&walk, node, &sources[i]);
            break;
        case TORCH_CALL_FUNCTION:
        case TORCH_CALL_METHOD:
            run_call(&walk, node, &sources[i]);
            break;
        case TORCH_OUTPUT: {
            alk_op *op = alk_op_new(walk.scope, node->name, "torch.fx", "output", NULL);
            collect_outputs(&walk, torch_resolve(&walk, op, node->args->as.array.items[0]),
                            &outputs, 0);
            break;
        }
        }
    }
    rv = alk_scope_finish(walk.scope, "final", outputs.items, outputs.len, diag);
done:
    alk_vec_fini(&outputs);
    alk_free(sources);
    alk_free(walk.values);
    torch_graph_free(&graph);
    return rv;
}
