/*
 * Argument resolution: the graph's tagged msgpack values as the kit's tagged values (walk.h).
 *
 * The reference resolves fx Node objects found anywhere in an argument: inside lists, tuples
 * (keeping the container type, since numpy treats a tuple index and a list index differently),
 * dicts and slice bounds (spec frontends.md §4.2 step 3). The wire spells these with `$` maps
 * (docs/protocol.md, table "Values"); the walk runs nodes in order, so a reference is valid
 * exactly when it names a node before the current one, which also rules out cycles.
 *
 * Recursion depth is bounded by the depth limit the request's decoder enforced.
 *
 * Thread rule: a walk belongs to its job's thread.
 */
#include "walk.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void torch_walk_fail(torch_walk *walk, const char *fmt, ...) {
    if (alk_trace_error(walk->trace) != ALK_OK) {
        return;
    }
    const torch_node *node = &walk->graph->nodes[walk->current];
    char message[sizeof(((alk_diag *)0)->message)];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    (void)alk_trace_fail(walk->trace, ALK_EINVAL, "node %s (%s %s): %s", node->name,
                         torch_node_kind_name(node->kind), node->target, message);
}

/* The value of the node named `name`, which must come before the current one. */
static const alk_arg *node_value(torch_walk *walk, const char *name) {
    size_t j = torch_graph_find(walk->graph, name);
    if (j == SIZE_MAX) {
        torch_walk_fail(walk, "refers to node '%s', which is not in the graph", name);
        return NULL;
    }
    if (j >= walk->current) {
        torch_walk_fail(walk,
                        j == walk->current
                            ? "refers to itself (node '%s'): the graph has a cycle"
                            : "refers to node '%s', which comes after it (a forward reference "
                              "or a cycle)",
                        name);
        return NULL;
    }
    const alk_arg *value = walk->values[j];
    if (value == NULL) {
        torch_walk_fail(walk, "refers to node '%s', which has no value", name);
    }
    return value;
}

/* The items of array `v` resolved into a kit sequence of `kind` (which copies them). */
static const alk_arg *resolve_seq(torch_walk *walk, alk_op *op, alk_arg_kind kind,
                                  const alk_value *v) {
    size_t n = v->as.array.len;
    const alk_arg **items = alk_malloc((n > 0 ? n : 1) * sizeof(*items));
    if (items == NULL) {
        (void)alk_trace_fail(walk->trace, ALK_ENOMEM, "out of memory resolving a %s of %zu items",
                             alk_arg_kind_name(kind), n);
        return NULL;
    }
    const alk_arg *seq = NULL;
    size_t i = 0;
    for (; i < n; i++) {
        items[i] = torch_resolve(walk, op, v->as.array.items[i]);
        if (items[i] == NULL) {
            break;
        }
    }
    if (i == n) {
        seq = alk_arg_of_seq(op, kind, items, n);
    }
    alk_free(items);
    return seq;
}

/* A `{"$tag": value}` map. */
static const alk_arg *resolve_tagged(torch_walk *walk, alk_op *op, const char *tag,
                                     const alk_value *v) {
    if (strcmp(tag, "$node") == 0 && v->kind == ALK_VALUE_STR) {
        return node_value(walk, v->as.str.bytes);
    }
    if (strcmp(tag, "$tuple") == 0 && v->kind == ALK_VALUE_ARRAY) {
        return resolve_seq(walk, op, ALK_ARG_TUPLE, v);
    }
    if (strcmp(tag, "$slice") == 0 && v->kind == ALK_VALUE_ARRAY && v->as.array.len == 3) {
        const alk_arg *bounds[3];
        for (size_t i = 0; i < 3; i++) {
            bounds[i] = torch_resolve(walk, op, v->as.array.items[i]);
            if (bounds[i] == NULL) {
                return NULL;
            }
        }
        return alk_arg_of_slice(op, bounds[0], bounds[1], bounds[2]);
    }
    if (strcmp(tag, "$ellipsis") == 0) {
        return alk_arg_ellipsis(op);
    }
    if (strcmp(tag, "$dtype") == 0 && v->kind == ALK_VALUE_STR) {
        /* torch.int32 -> int32: handlers speak numpy's names, as the reference's hygiene. */
        const char *name = v->as.str.bytes;
        return alk_arg_of_str(op, ALK_ARG_DTYPE, strncmp(name, "torch.", 6) == 0 ? name + 6 : name);
    }
    if ((strcmp(tag, "$device") == 0 || strcmp(tag, "$memory_format") == 0 ||
         strcmp(tag, "$layout") == 0) &&
        v->kind == ALK_VALUE_STR) {
        /* Placement and layout never change a value: a plain string is enough to carry them. */
        return alk_arg_of_str(op, ALK_ARG_STR, v->as.str.bytes);
    }
    if (strcmp(tag, "$tensor") == 0) {
        torch_walk_fail(walk, "inline tensor constants ($tensor) are not part of payload "
                              "version 1");
        return NULL;
    }
    torch_walk_fail(walk, "malformed tagged value %.32s", tag);
    return NULL;
}

/* A map: a tagged value when its one key starts with '$', else a dict with str keys. */
static const alk_arg *resolve_map(torch_walk *walk, alk_op *op, const alk_value *v) {
    size_t n = v->as.map.len;
    for (size_t k = 0; k < n; k++) {
        const alk_value *key = v->as.map.pairs[k].key;
        if (key->kind != ALK_VALUE_STR) {
            torch_walk_fail(walk, "a dict key is a %s, not a str", alk_value_kind_name(key->kind));
            return NULL;
        }
        if (key->as.str.bytes[0] == '$') {
            if (n != 1) {
                torch_walk_fail(walk, "tagged value %.32s has %zu keys, expected 1",
                                key->as.str.bytes, n);
                return NULL;
            }
            return resolve_tagged(walk, op, key->as.str.bytes, v->as.map.pairs[k].value);
        }
    }
    enum { MAX_PAIRS = 32 };
    if (n > MAX_PAIRS) {
        torch_walk_fail(walk, "a dict of %zu entries (at most %d)", n, MAX_PAIRS);
        return NULL;
    }
    const alk_arg *items[2 * MAX_PAIRS];
    for (size_t k = 0; k < n; k++) {
        items[2 * k] = alk_arg_of_value(op, v->as.map.pairs[k].key);
        items[2 * k + 1] = torch_resolve(walk, op, v->as.map.pairs[k].value);
        if (items[2 * k] == NULL || items[2 * k + 1] == NULL) {
            return NULL;
        }
    }
    return alk_arg_of_seq(op, ALK_ARG_DICT, items, 2 * n);
}

const alk_arg *torch_resolve(torch_walk *walk, alk_op *op, const alk_value *v) {
    if (op == NULL || alk_trace_error(walk->trace) != ALK_OK) {
        return NULL;
    }
    switch (v->kind) {
    case ALK_VALUE_ARRAY:
        return resolve_seq(walk, op, ALK_ARG_LIST, v);
    case ALK_VALUE_MAP:
        return resolve_map(walk, op, v);
    case ALK_VALUE_BIN:
        torch_walk_fail(walk, "binary data cannot be an argument");
        return NULL;
    default:
        return alk_arg_of_value(op, v); /* nil, bool, int, float, str */
    }
}
