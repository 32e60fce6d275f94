/*
 * The torch graph payload, checked and indexed (docs/protocol.md "Model payloads → torch").
 *
 * torch_graph_load reads `model` once, before anything is traced, and refuses a payload that a
 * replay could trip over later, naming the culprit: the version, the shape of every node, node
 * names (unique), the one `output` node (the last), the placeholders against the inputs given,
 * call_module targets against `modules`, module parameters and get_attr targets against
 * `tensors`, and every tensor's dtype, shape and byte count. Node references (`$node`) are
 * checked where they are resolved (args.c), against the order of the walk.
 *
 * Module attributes are handed to handlers as plain values: a tagged tuple (`{"$tuple": [2, 4]}`)
 * becomes a list, a dtype, device or memory format its name, so the kit's readers see
 * `kernel_size: [2, 2]` as they would in a Keras config.
 *
 * Ownership: a torch_graph borrows the value tree of the request (which outlives the trace) and
 * owns its node array, name index and attribute copies (torch_graph_free).
 */
#ifndef ALK_PLUGINS_TORCH_GRAPH_H
#define ALK_PLUGINS_TORCH_GRAPH_H

#include "core/arena.h"
#include "core/err.h"
#include "graph/value.h"

#include <stddef.h>

typedef enum torch_node_kind {
    TORCH_PLACEHOLDER,
    TORCH_GET_ATTR,
    TORCH_CALL_MODULE,
    TORCH_CALL_FUNCTION,
    TORCH_CALL_METHOD,
    TORCH_OUTPUT,
} torch_node_kind;

/* The fx spelling of a node kind ("call_module"). */
const char *torch_node_kind_name(torch_node_kind kind);

typedef struct torch_node {
    const char *name;
    torch_node_kind kind;
    const char *target;
    const alk_value *args;   /* an array */
    const alk_value *kwargs; /* a map with str keys */
    const alk_value *module; /* call_module: modules[target] ({type, attrs, params}) */
    const alk_value *attrs;  /* call_module: the module's attributes as plain values */
} torch_node;

typedef struct torch_graph {
    torch_node *nodes;
    size_t n_nodes;
    size_t n_placeholders;
    const alk_value *modules;
    const alk_value *tensors;
    size_t *slots; /* name index: open addressing over node indices (SIZE_MAX = empty) */
    size_t n_slots;
    alk_arena arena; /* the plain copies of tagged module attributes */
} torch_graph;

/* Checks and indexes `model` (borrowed) for a replay on `n_inputs` inputs. On success fills
 * *ret_graph (free with torch_graph_free); errors: ALK_EINVAL naming the culprit, ALK_ENOMEM. */
int torch_graph_load(const alk_value *model, size_t n_inputs, torch_graph *ret_graph,
                     alk_diag *diag);

void torch_graph_free(torch_graph *graph);

/* The index of the node called `name`, or SIZE_MAX. */
size_t torch_graph_find(const torch_graph *graph, const char *name);

#endif
