/*
 * The state of one replay of a torch graph, shared by the walk (tracer.c) and argument
 * resolution (args.c).
 *
 * Ownership: everything is borrowed from apply_model's call (the trace, the host, the graph);
 * `values` is owned by the walk, its entries live in the trace arena.
 */
#ifndef ALK_PLUGINS_TORCH_WALK_H
#define ALK_PLUGINS_TORCH_WALK_H

#include "graph.h"
#include "plugin/alk_plugin.h"

typedef struct torch_walk {
    alk_trace *trace;
    const alk_host *host;
    alk_scope *scope;
    const torch_graph *graph;
    const alk_arg **values; /* per node: its value once it has run, else NULL */
    size_t current;         /* the node being run: references must name nodes before it */
} torch_walk;

/*
 * The tagged msgpack value `v` (an argument, keyword argument or output entry of the current
 * node) as a kit value made in `op`'s arena: `$node` references become the referenced node's
 * value; lists, tuples, dicts and slices are resolved item by item; `$dtype` becomes the numpy
 * dtype of the same name (torch.int32 -> int32, §4.2 step 5). A reference to an unknown node, to
 * the node itself or to a later one (a forward reference, which every cycle contains) fails the
 * trace naming both nodes; NULL then.
 */
const alk_arg *torch_resolve(torch_walk *walk, alk_op *op, const alk_value *v);

/* Fails the trace with "node NAME (OP TARGET): " + the message, naming the current node. */
void torch_walk_fail(torch_walk *walk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
