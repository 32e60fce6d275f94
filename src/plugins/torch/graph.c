/*
 * Checking and indexing the torch graph payload (graph.h).
 *
 * Everything a client controls is checked here, before the first node runs, so that a replay
 * never meets a half-valid graph: a bad payload fails as a whole, with one message naming the
 * field, node or tensor key. The only checks left to the walk are those that depend on its
 * order (a `$node` must name an earlier node) and on what a handler expects of a tensor.
 *
 * Thread rule: reentrant; a graph belongs to one job.
 */
#include "graph.h"

#include "core/alloc.h"
#include "graph/tensor.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *torch_node_kind_name(torch_node_kind kind) {
    static const char *const names[] = {
        [TORCH_PLACEHOLDER] = "placeholder", [TORCH_GET_ATTR] = "get_attr",
        [TORCH_CALL_MODULE] = "call_module", [TORCH_CALL_FUNCTION] = "call_function",
        [TORCH_CALL_METHOD] = "call_method", [TORCH_OUTPUT] = "output",
    };
    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

static bool parse_kind(const char *text, torch_node_kind *ret_kind) {
    for (int k = TORCH_PLACEHOLDER; k <= TORCH_OUTPUT; k++) {
        if (strcmp(text, torch_node_kind_name((torch_node_kind)k)) == 0) {
            *ret_kind = (torch_node_kind)k;
            return true;
        }
    }
    return false;
}

/* A required field of a payload map; the error names `where`.`key`. */
static int require(const alk_value *map, const char *where, const char *key, alk_value_kind kind,
                   const alk_value **ret, alk_diag *diag) {
    const alk_value *v = alk_value_get(map, key);
    if (v == NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "%s.%s is missing", where, key);
    }
    if (v->kind != kind) {
        return alk_diag_set(diag, ALK_EINVAL, "%s.%s must be a %s, got %s", where, key,
                            alk_value_kind_name(kind), alk_value_kind_name(v->kind));
    }
    *ret = v;
    return ALK_OK;
}

/* ---- The name index ------------------------------------------------------------------------- */

/* FNV-1a: node names are short and few; any reasonable hash does. */
static uint64_t hash_name(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

size_t torch_graph_find(const torch_graph *graph, const char *name) {
    if (graph->n_slots == 0) {
        return SIZE_MAX;
    }
    size_t mask = graph->n_slots - 1;
    for (size_t s = hash_name(name) & mask;; s = (s + 1) & mask) {
        size_t i = graph->slots[s];
        if (i == SIZE_MAX || strcmp(graph->nodes[i].name, name) == 0) {
            return i;
        }
    }
}

/* Builds the index; a name seen twice is an error (fx names are unique). */
static int build_index(torch_graph *graph, alk_diag *diag) {
    size_t n_slots = 8;
    while (n_slots < 2 * graph->n_nodes) {
        n_slots *= 2;
    }
    graph->slots = alk_malloc(n_slots * sizeof(*graph->slots));
    if (graph->slots == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory indexing %zu nodes", graph->n_nodes);
    }
    memset(graph->slots, 0xff, n_slots * sizeof(*graph->slots)); /* every slot SIZE_MAX */
    graph->n_slots = n_slots;
    for (size_t i = 0; i < graph->n_nodes; i++) {
        const char *name = graph->nodes[i].name;
        size_t s = hash_name(name) & (n_slots - 1);
        while (graph->slots[s] != SIZE_MAX) {
            if (strcmp(graph->nodes[graph->slots[s]].name, name) == 0) {
                return alk_diag_set(diag, ALK_EINVAL,
                                    "model.graph.nodes[%zu]: node name '%s' is used twice", i,
                                    name);
            }
            s = (s + 1) & (n_slots - 1);
        }
        graph->slots[s] = i;
    }
    return ALK_OK;
}

/* ---- Nodes, modules, tensors ---------------------------------------------------------------- */

static int read_node(const alk_value *v, size_t i, torch_node *ret_node, alk_diag *diag) {
    char where[48];
    (void)snprintf(where, sizeof(where), "model.graph.nodes[%zu]", i);
    if (v->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "%s must be a map, got %s", where,
                            alk_value_kind_name(v->kind));
    }
    const alk_value *name, *op, *target, *args, *kwargs;
    int rv = require(v, where, "name", ALK_VALUE_STR, &name, diag);
    if (rv == ALK_OK) {
        rv = require(v, where, "op", ALK_VALUE_STR, &op, diag);
    }
    if (rv == ALK_OK) {
        rv = require(v, where, "target", ALK_VALUE_STR, &target, diag);
    }
    if (rv == ALK_OK) {
        rv = require(v, where, "args", ALK_VALUE_ARRAY, &args, diag);
    }
    if (rv == ALK_OK) {
        rv = require(v, where, "kwargs", ALK_VALUE_MAP, &kwargs, diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    torch_node node = {
        .name = name->as.str.bytes, .target = target->as.str.bytes, .args = args, .kwargs = kwargs};
    if (!parse_kind(op->as.str.bytes, &node.kind)) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "node %s: unknown op '%.64s' (placeholder, get_attr, call_module, "
                            "call_function, call_method or output)",
                            node.name, op->as.str.bytes);
    }
    for (size_t k = 0; k < kwargs->as.map.len; k++) {
        if (kwargs->as.map.pairs[k].key->kind != ALK_VALUE_STR) {
            return alk_diag_set(diag, ALK_EINVAL, "node %s: a keyword argument name is not a str",
                                node.name);
        }
    }
    *ret_node = node;
    return ALK_OK;
}

/* `v` with its tagged values made plain ($tuple -> array, $dtype & co. -> their names); `v`
 * itself when it holds none. Depth is bounded by the request decoder's limit. */
static int untag(alk_arena *arena, const alk_value *v, const char *where, const alk_value **ret,
                 alk_diag *diag) {
    *ret = v;
    if (v->kind == ALK_VALUE_MAP && v->as.map.len == 1 &&
        v->as.map.pairs[0].key->kind == ALK_VALUE_STR &&
        v->as.map.pairs[0].key->as.str.bytes[0] == '$') {
        const char *tag = v->as.map.pairs[0].key->as.str.bytes;
        const alk_value *inner = v->as.map.pairs[0].value;
        if (strcmp(tag, "$tuple") == 0 && inner->kind == ALK_VALUE_ARRAY) {
            return untag(arena, inner, where, ret, diag);
        }
        bool named = strcmp(tag, "$dtype") == 0 || strcmp(tag, "$device") == 0 ||
                     strcmp(tag, "$memory_format") == 0 || strcmp(tag, "$layout") == 0;
        if (named && inner->kind == ALK_VALUE_STR) {
            const char *name = inner->as.str.bytes;
            name += strcmp(tag, "$dtype") == 0 && strncmp(name, "torch.", 6) == 0 ? 6 : 0;
            *ret = alk_value_new_bytes(arena, ALK_VALUE_STR, name, strlen(name));
            return *ret != NULL ? ALK_OK : alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        }
        return alk_diag_set(diag, ALK_EINVAL, "%s: attribute value %.32s is not supported", where,
                            tag);
    }
    bool is_map = v->kind == ALK_VALUE_MAP;
    if (!is_map && v->kind != ALK_VALUE_ARRAY) {
        return ALK_OK;
    }
    size_t n = is_map ? v->as.map.len : v->as.array.len;
    const alk_value **items = alk_arena_calloc(arena, n > 0 ? n : 1, sizeof(*items));
    if (items == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    bool changed = false;
    for (size_t k = 0; k < n; k++) {
        const alk_value *item = is_map ? v->as.map.pairs[k].value : v->as.array.items[k];
        int rv = untag(arena, item, where, &items[k], diag);
        if (rv != ALK_OK) {
            return rv;
        }
        changed = changed || items[k] != item;
    }
    if (!changed) {
        return ALK_OK;
    }
    if (!is_map) {
        *ret = alk_value_new_array(arena, items, n);
    } else {
        alk_value_pair *pairs = alk_arena_calloc(arena, n, sizeof(*pairs));
        for (size_t k = 0; pairs != NULL && k < n; k++) {
            pairs[k] = (alk_value_pair){v->as.map.pairs[k].key, items[k]};
        }
        *ret = pairs != NULL ? alk_value_new_map(arena, pairs, n) : NULL;
    }
    return *ret != NULL ? ALK_OK : alk_diag_set(diag, ALK_ENOMEM, "out of memory");
}

/* modules[target] of a call_module node, checked: {type: str, attrs: map, params: map of
 * role -> tensor key or nil}, every key present in `tensors`. */
static int check_module(torch_graph *graph, torch_node *node, alk_diag *diag) {
    const alk_value *module = alk_value_get(graph->modules, node->target);
    if (module == NULL) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "node %s (call_module %s): module '%s' is not in model.modules",
                            node->name, node->target, node->target);
    }
    char where[192];
    (void)snprintf(where, sizeof(where), "model.modules.%.160s", node->target);
    if (module->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "%s must be a map, got %s", where,
                            alk_value_kind_name(module->kind));
    }
    const alk_value *type, *attrs, *params;
    int rv = require(module, where, "type", ALK_VALUE_STR, &type, diag);
    if (rv == ALK_OK) {
        rv = require(module, where, "attrs", ALK_VALUE_MAP, &attrs, diag);
    }
    if (rv == ALK_OK) {
        rv = require(module, where, "params", ALK_VALUE_MAP, &params, diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    const char *dot = strrchr(type->as.str.bytes, '.');
    if (dot == NULL || dot == type->as.str.bytes || dot[1] == '\0') {
        return alk_diag_set(diag, ALK_EINVAL, "%s.type '%.64s' is not <module>.<class>", where,
                            type->as.str.bytes);
    }
    for (size_t k = 0; k < params->as.map.len; k++) {
        const alk_value_pair *p = &params->as.map.pairs[k];
        if (p->value->kind == ALK_VALUE_NIL) {
            continue;
        }
        if (p->key->kind != ALK_VALUE_STR || p->value->kind != ALK_VALUE_STR) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "%s.params: every entry must map a role to a tensor key or nil",
                                where);
        }
        if (alk_value_get(graph->tensors, p->value->as.str.bytes) == NULL) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "%s.params.%s names tensor '%s', which is not in model.tensors",
                                where, p->key->as.str.bytes, p->value->as.str.bytes);
        }
    }
    node->module = module;
    return untag(&graph->arena, attrs, where, &node->attrs, diag);
}

/* Every tensor's header: dtype known, shape within the limits, data exactly elements x size
 * bytes. The values are decoded where a handler reads them. */
static int check_tensors(const alk_value *tensors, alk_diag *diag) {
    for (size_t k = 0; k < tensors->as.map.len; k++) {
        const alk_value_pair *p = &tensors->as.map.pairs[k];
        if (p->key->kind != ALK_VALUE_STR) {
            return alk_diag_set(diag, ALK_EINVAL, "model.tensors: a key is not a str");
        }
        alk_tensor tensor;
        alk_diag why = {{0}};
        int rv = alk_tensor_from_value(p->value, NULL, &tensor, &why);
        if (rv != ALK_OK) {
            return alk_diag_set(diag, rv, "model.tensors.%s: %s", p->key->as.str.bytes,
                                why.message);
        }
    }
    return ALK_OK;
}

/* The structural rules of the node list: one output, the last; placeholders = inputs; targets
 * of call_module and get_attr present. */
static int check_nodes(torch_graph *graph, size_t n_inputs, alk_diag *diag) {
    for (size_t i = 0; i < graph->n_nodes; i++) {
        torch_node *node = &graph->nodes[i];
        bool last = i + 1 == graph->n_nodes;
        if ((node->kind == TORCH_OUTPUT) != last) {
            return alk_diag_set(diag, ALK_EINVAL,
                                last ? "the last node (%s) must be the output node"
                                     : "node %s: the output node must be the last node",
                                node->name);
        }
        int rv = ALK_OK;
        switch (node->kind) {
        case TORCH_PLACEHOLDER:
            graph->n_placeholders++;
            break;
        case TORCH_CALL_MODULE:
            rv = check_module(graph, node, diag);
            break;
        case TORCH_GET_ATTR:
            if (alk_value_get(graph->tensors, node->target) == NULL) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "node %s (get_attr %s): tensor '%s' is not in model.tensors",
                                  node->name, node->target, node->target);
            }
            break;
        case TORCH_OUTPUT:
            if (node->args->as.array.len != 1) {
                rv =
                    alk_diag_set(diag, ALK_EINVAL, "node %s (output): expected 1 argument, got %zu",
                                 node->name, node->args->as.array.len);
            }
            break;
        case TORCH_CALL_FUNCTION:
        case TORCH_CALL_METHOD:
            break;
        }
        if (rv != ALK_OK) {
            return rv;
        }
    }
    if (graph->n_placeholders != n_inputs) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "the graph has %zu placeholder%s (model inputs) but %zu input%s %s "
                            "given",
                            graph->n_placeholders, graph->n_placeholders == 1 ? "" : "s", n_inputs,
                            n_inputs == 1 ? "" : "s", n_inputs == 1 ? "was" : "were");
    }
    return ALK_OK;
}

int torch_graph_load(const alk_value *model, size_t n_inputs, torch_graph *ret_graph,
                     alk_diag *diag) {
    if (model == NULL || model->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "model must be a map (the torch graph payload)");
    }
    const alk_value *version = alk_value_get(model, "version");
    if (version == NULL || version->kind != ALK_VALUE_INT) {
        return alk_diag_set(diag, ALK_EINVAL, "model.version must be 1, got %s",
                            version == NULL ? "nothing" : alk_value_kind_name(version->kind));
    }
    if (version->as.integer != 1) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "model.version is %" PRId64 ": this tracer reads torch payload "
                            "version 1",
                            version->as.integer);
    }
    const alk_value *graph_map, *nodes, *modules, *tensors;
    int rv = require(model, "model", "graph", ALK_VALUE_MAP, &graph_map, diag);
    if (rv == ALK_OK) {
        rv = require(graph_map, "model.graph", "nodes", ALK_VALUE_ARRAY, &nodes, diag);
    }
    if (rv == ALK_OK) {
        rv = require(model, "model", "modules", ALK_VALUE_MAP, &modules, diag);
    }
    if (rv == ALK_OK) {
        rv = require(model, "model", "tensors", ALK_VALUE_MAP, &tensors, diag);
    }
    if (rv == ALK_OK) {
        rv = check_tensors(tensors, diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    if (nodes->as.array.len == 0) {
        return alk_diag_set(diag, ALK_EINVAL, "model.graph.nodes is empty (no output node)");
    }
    torch_graph graph = {.n_nodes = nodes->as.array.len, .modules = modules, .tensors = tensors};
    alk_arena_init(&graph.arena, 0);
    graph.nodes = alk_calloc(graph.n_nodes, sizeof(*graph.nodes));
    if (graph.nodes == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory reading %zu nodes", graph.n_nodes);
    }
    for (size_t i = 0; i < graph.n_nodes && rv == ALK_OK; i++) {
        rv = read_node(nodes->as.array.items[i], i, &graph.nodes[i], diag);
    }
    if (rv == ALK_OK) {
        rv = build_index(&graph, diag);
    }
    if (rv == ALK_OK) {
        rv = check_nodes(&graph, n_inputs, diag);
    }
    if (rv != ALK_OK) {
        torch_graph_free(&graph);
        return rv;
    }
    *ret_graph = graph;
    return ALK_OK;
}

void torch_graph_free(torch_graph *graph) {
    if (graph != NULL) {
        alk_free(graph->nodes);
        alk_free(graph->slots);
        alk_arena_fini(&graph->arena);
        *graph = (torch_graph){0};
    }
}
