/*
 * The graph of a Keras model config (spec frontends.md §2.1, §7.2): the model levels, their
 * layers and call nodes, the tensors linking them, the order Keras runs the nodes in, and where
 * each layer's weights are stored. It reads the config JSON only: no weights, no tracing, so the
 * keras tracer and `alkaidc inspect` share it.
 *
 * Forms read:
 *   - Keras 3 Functional (`module` keras.src.models.functional): `config.layers` with
 *     `inbound_nodes` of {"args": [...], "kwargs": {...}} in which a tensor is the tagged value
 *     {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}};
 *   - Keras 2 Functional (`class_name` Model or Functional, no `module`): list nodes
 *     [[layer, node, tensor, kwargs], ...], rewritten here into the Keras 3 form (args = the one
 *     tensor, or the list of them; kwargs = the last entry's, as Keras's loader takes them);
 *   - Sequential (Keras 3 or 2): a chain, written here as a Functional whose nodes are built the
 *     same way (an InputLayer from the config's first entry, `build_input_shape` or the first
 *     layer's `batch_input_shape`).
 * A layer that is itself a model is parsed recursively (a sub-model level), at most
 * ALK_KERAS_MAX_NESTING deep.
 *
 * Node indices follow the saved config (frontends.md §2.1 step 3): a layer's n-th listed node is
 * index n, except for a nested Functional, whose index 0 is its own input -> output node, so that
 * its first listed node is index 1. A nested Sequential starts at 0 in Keras 3 and at 1 in Keras 2
 * files with an input layer (tf.keras skips its pre-existing node too); a reference that only
 * fits the other base is taken with that base.
 *
 * Order: each level's nodes in Keras's execution order, `_nodes_by_depth` from the deepest to
 * depth 0, as keras/src/ops/function.py map_graph computes it (a DFS from the outputs, then
 * depths). The replay does not depend on it for its values, but dump names, `#N` renames and the
 * ALIR's emission order do.
 *
 * Weight slots (keras_v3 files): `layers/<slot>` with slot = snake_case(class) and `_1`, `_2`
 * for repeats of a class, counted over the level's layers in config order (Functional: with its
 * InputLayers, without ops; Sequential: without its InputLayer).
 *
 * Errors (ALK_EINVAL, naming the layer, node or field): a malformed config, a reference to an
 * unknown layer or node, a cycle, duplicate layer names, nesting too deep. ALK_ENOMEM.
 *
 * Ownership: everything lives in the arena given to alk_keras_graph_parse and points into the
 * config tree, which must outlive it. Thread rule: a parsed graph is immutable.
 */
#ifndef ALK_PLUGINS_KERAS_MODEL_GRAPH_H
#define ALK_PLUGINS_KERAS_MODEL_GRAPH_H

#include "core/arena.h"
#include "core/err.h"
#include "graph/value.h"

#include <stdbool.h>
#include <stddef.h>

enum { ALK_KERAS_MAX_NESTING = 16, ALK_KERAS_MAX_INPUTS = 64 };

typedef struct alk_keras_model alk_keras_model;
typedef struct alk_keras_layer alk_keras_layer;
typedef struct alk_keras_node alk_keras_node;

typedef enum alk_keras_layer_kind {
    ALK_KERAS_INPUT, /* InputLayer: produces a model input, never called */
    ALK_KERAS_LAYER, /* a Layer: has a weight slot */
    ALK_KERAS_OP,    /* a Keras op (keras.src.ops.*, an activations op): no weights */
    ALK_KERAS_MODEL, /* a Functional or Sequential used as a layer */
} alk_keras_layer_kind;

/* A tensor: output `tensor` of node `node` (config index) of `layer`. */
typedef struct alk_keras_ref {
    alk_keras_layer *layer;
    size_t node;
    size_t tensor;
} alk_keras_ref;

struct alk_keras_node {
    alk_keras_layer *layer;
    size_t index; /* the node index references use */
    /* The call: positional arguments (an array) and keyword arguments (a map), tensors as
     * tagged values. */
    const alk_value *args;
    const alk_value *kwargs;
    /* Its tensor arguments in Keras's flatten order (args, then kwargs by sorted key). */
    alk_keras_ref *inputs;
    size_t n_inputs;
    size_t id;    /* 0 .. model->n_nodes - 1 within its level */
    size_t depth; /* map_graph's depth (0: an output node) */
};

struct alk_keras_layer {
    const char *name;
    const char *class_name;
    /* The module that dispatches the layer: config `module`, or "keras.layers" for a Keras 2
     * config without one. */
    const char *module;
    const char *registered_name; /* NULL when absent */
    /* The package a second-level plugin would be named after: the registered name's prefix
     * before '>' (`hgq>QDense`, `qkeras>QDense`), else the module's first component. */
    const char *package;
    const alk_value *entry;  /* the config.layers entry */
    const alk_value *config; /* entry.config (an empty map when absent) */
    alk_keras_layer_kind kind;
    alk_keras_node *nodes; /* in config order */
    size_t n_nodes;
    size_t first_node;      /* the index of nodes[0] */
    const char *slot;       /* LAYER, INPUT and MODEL: the weights slot; NULL for ops */
    alk_keras_model *model; /* MODEL: the nested level */
    /* Where its weights are stored: keras_v3, the group path ("layers/dense",
     * "layers/functional/layers/dense"; NULL for ops); legacy_h5, the group of the top-level
     * layer holding it (its own name at the top level), in which a nested layer's weight names
     * have its own name as a component (alk_keras_legacy_owns). */
    const char *weights_dir;
    const char *legacy_group;
    bool nested; /* a layer of a nested model */
};

struct alk_keras_model {
    const char *name;
    const char *class_name;
    bool sequential;
    bool keras2;             /* a Keras 2 config (no `module` keys) */
    const alk_value *config; /* the model's config map */
    alk_keras_layer *layers; /* config order; a Sequential's starts with its InputLayer */
    size_t n_layers;
    alk_keras_ref *inputs; /* input_layers, flattened */
    size_t n_inputs;
    alk_keras_ref *outputs; /* output_layers, flattened */
    size_t n_outputs;
    size_t n_nodes;         /* nodes of every layer of the level */
    alk_keras_node **order; /* the nodes to run, InputLayer nodes included, in Keras's order */
    size_t n_order;
};

/*
 * Parses the model config `root` ({"class_name", "config", "module"?, ...}: config.json, the
 * `model_config` attribute or a model JSON, decoded) into *ret_model, allocated in `arena`
 * (borrowed: it lives as long as the arena; `root` must outlive it too).
 */
int alk_keras_graph_parse(const alk_value *root, alk_arena *arena, alk_keras_model **ret_model,
                          alk_diag *diag);

/* The layer named `name` of `model`'s level, or NULL. */
alk_keras_layer *alk_keras_model_layer(const alk_keras_model *model, const char *name);

/* The node `index` (config numbering) of `layer`, or NULL. */
alk_keras_node *alk_keras_layer_node(const alk_keras_layer *layer, size_t index);

/*
 * The input shape `input` of `model` as Keras declares it, batch axis included (None or -1 for
 * an unknown size), written as int64 with -1 for unknown: `*ret_ndim` axes (at most `cap`) into
 * `ret_dims`. ALK_ENOENT when the config does not say (no batch_shape), ALK_EINVAL when it is
 * malformed or has more than `cap` axes.
 */
int alk_keras_model_input_shape(const alk_keras_model *model, size_t input, int64_t *ret_dims,
                                size_t cap, size_t *ret_ndim, alk_diag *diag);

/* The module `layer` is dispatched with: its config module (the reference's class __module__), or
 * when the config has none its registered package (`hgq>QDense` goes to plugin "hgq"). */
const char *alk_keras_dispatch_module(const alk_keras_layer *layer);

/* Whether the legacy-h5 weight name `name` ("dense_1/kernel:0", "sequential/q_dense/q_dense_iq/
 * fixed_point_quantizer_kif/i") belongs to layer `layer` of a nested model, whose weights sit in
 * the group of the top-level layer holding it: one of its components before the last is the
 * layer's name (an HGQ2 layer's quantizers add object components after it). */
bool alk_keras_legacy_owns(const char *name, const char *layer);

/* Keras's snake_case of a class name (`Conv2DTranspose` -> `conv2d_transpose`) into `out`
 * (cap bytes); false when it does not fit. */
bool alk_keras_snake_case(const char *name, char *out, size_t cap);

/* The name of a layer kind ("layer", "op", "model", "input layer"). */
const char *alk_keras_kind_name(alk_keras_layer_kind kind);

#endif
