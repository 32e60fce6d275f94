/*
 * The replay of a Keras model level (spec frontends.md §2.1 steps 3-8): the tensor map, the
 * call arguments with their tagged values, nested and shared sub-models, and one kit op per
 * layer call.
 *
 * Design. The graph (model_graph.h) gives the nodes in Keras's order; the tensor map is an
 * array of result lists indexed by node id, so a reference (layer, node, tensor) is two array
 * reads. A node's recorded arguments are rebuilt as kit values (alk_arg): tensors from the map,
 * `__numpy__`/`__tensor__` constants as numeric arrays, `__slice__`, `__ellipsis__`, `__bytes__`
 * and `__tuple__` as what Python would pass; any other tagged value fails naming it. A
 * sub-model runs recursively in a child scope (dumps `/<model>/<layer>/...`, `#N` for a shared
 * one), with its weights under its own slot.
 *
 * `training` keyword arguments are not passed on: a conversion replays the model at inference,
 * as Keras's predict() does, which overrides the recorded value (True for Random* layers) with
 * False on every layer (keras/src/models/functional.py operation_fn). The reference asserts it is
 * False or absent.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"

#include <stdio.h>
#include <string.h>

/* One model level being replayed. */
typedef struct level_run {
    keras_job *job;
    alk_scope *scope;
    const alk_keras_model *model;
    alk_fva ***results; /* per node id: its output arrays */
    size_t *n_results;
} level_run;

static int run_level(keras_job *job, alk_scope *scope, const alk_keras_model *model,
                     alk_fva *const *inputs, size_t n_inputs, alk_fva ***ret_outputs, size_t *ret_n,
                     alk_diag *diag);

/* ---- The tensor map ------------------------------------------------------------------------ */

/* The array of reference `ref`; NULL with the trace failed (naming `who`) when there is none. */
static alk_fva *tensor_of(level_run *r, const alk_keras_ref *ref, const char *who) {
    const alk_keras_node *node = alk_keras_layer_node(ref->layer, ref->node);
    if (node == NULL) {
        (void)alk_trace_fail(r->job->trace, ALK_EINVAL, "%s: no node %zu of layer %s", who,
                             ref->node, ref->layer->name);
        return NULL;
    }
    if (ref->tensor >= r->n_results[node->id]) {
        (void)alk_trace_fail(r->job->trace, ALK_EINVAL,
                             "%s: refers to output %zu of layer %s (node %zu), which has %zu", who,
                             ref->tensor, ref->layer->name, ref->node, r->n_results[node->id]);
        return NULL;
    }
    return r->results[node->id][ref->tensor];
}

/* The history [layer, node, tensor] of a `__keras_tensor__` value resolved in the level. */
static alk_fva *tensor_value(level_run *r, const alk_value *config, const char *who) {
    const alk_value *history = alk_value_get(config, "keras_history");
    if (history == NULL || history->kind != ALK_VALUE_ARRAY || history->as.array.len != 3 ||
        history->as.array.items[0]->kind != ALK_VALUE_STR) {
        (void)alk_trace_fail(r->job->trace, ALK_EINVAL, "%s: a tensor without keras_history", who);
        return NULL;
    }
    /* The graph checked every reference; this only looks it up again. */
    alk_keras_ref ref = {
        alk_keras_model_layer(r->model, history->as.array.items[0]->as.str.bytes),
        (size_t)history->as.array.items[1]->as.integer,
        (size_t)history->as.array.items[2]->as.integer,
    };
    return ref.layer != NULL ? tensor_of(r, &ref, who) : NULL;
}

/* ---- Arguments ----------------------------------------------------------------------------- */

/* Nested lists of numbers (a `__numpy__` value) as a numeric array of their shape. */
static alk_fva *numbers_of(alk_op *op, const alk_value *value, const char *tag) {
    size_t shape[ALK_FVA_MAX_DIM];
    size_t ndim = 0;
    const alk_value *v = value;
    while (v->kind == ALK_VALUE_ARRAY) {
        if (ndim == ALK_FVA_MAX_DIM) {
            alk_op_fail(op, ALK_EINVAL, "a %s constant has more than %d axes", tag,
                        ALK_FVA_MAX_DIM);
            return NULL;
        }
        shape[ndim++] = v->as.array.len;
        if (v->as.array.len == 0) {
            break;
        }
        v = v->as.array.items[0];
    }
    size_t size = 1;
    for (size_t d = 0; d < ndim; d++) {
        if (shape[d] != 0 && size > ALK_FVA_MAX_ELEMENTS / shape[d]) {
            alk_op_fail(op, ALK_ELIMIT, "a %s constant is too large", tag);
            return NULL;
        }
        size *= shape[d];
    }
    alk_arena scratch;
    alk_arena_init(&scratch, 0);
    double *values = alk_arena_calloc(&scratch, size + 1, sizeof(double));
    /* Walks the tree in C order with a stack of positions; every leaf must sit at depth ndim. */
    const alk_value *stack[ALK_FVA_MAX_DIM + 1];
    size_t pos[ALK_FVA_MAX_DIM + 1] = {0};
    size_t n = 0;
    bool ok = values != NULL;
    if (!ok) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory");
    }
    if (ndim == 0 && ok) {
        ok = value->kind == ALK_VALUE_INT || value->kind == ALK_VALUE_FLOAT ||
             value->kind == ALK_VALUE_BOOL;
        values[0] = value->kind == ALK_VALUE_INT     ? (double)value->as.integer
                    : value->kind == ALK_VALUE_FLOAT ? value->as.number
                                                     : (double)value->as.boolean;
        n = ok;
    } else if (ok && size > 0) {
        size_t depth = 0;
        stack[0] = value;
        while (ok) {
            const alk_value *at = stack[depth];
            if (depth < ndim) {
                if (at->kind != ALK_VALUE_ARRAY || at->as.array.len != shape[depth]) {
                    ok = false;
                    break;
                }
                if (pos[depth] == shape[depth]) {
                    if (depth == 0) {
                        break;
                    }
                    pos[depth] = 0;
                    depth--;
                    pos[depth]++;
                    continue;
                }
                stack[depth + 1] = at->as.array.items[pos[depth]];
                depth++;
                continue;
            }
            if (at->kind == ALK_VALUE_INT) {
                values[n++] = (double)at->as.integer;
            } else if (at->kind == ALK_VALUE_FLOAT) {
                values[n++] = at->as.number;
            } else if (at->kind == ALK_VALUE_BOOL) {
                values[n++] = at->as.boolean;
            } else {
                ok = false;
                break;
            }
            depth--;
            pos[depth]++;
        }
    }
    alk_fva *array = NULL;
    if (ok && n == size) {
        array = alk_fva_numbers(alk_op_trace(op), ndim, shape, values);
    } else if (values != NULL) {
        alk_op_fail(op, ALK_EINVAL, "a %s constant is not a rectangular array of numbers", tag);
    }
    alk_arena_fini(&scratch);
    return array;
}

static const alk_arg *to_arg(level_run *r, alk_op *op, const alk_value *v, unsigned depth);

/* A tagged value {"class_name": "__x__", "config": ...} as an argument. */
static const alk_arg *tagged_arg(level_run *r, alk_op *op, const char *tag, const alk_value *config,
                                 unsigned depth) {
    char who[320];
    (void)snprintf(who, sizeof(who), "layer %s (%s)", alk_op_name(op), alk_op_class(op));
    if (strcmp(tag, "__keras_tensor__") == 0) {
        return alk_arg_of_array(op, tensor_value(r, config, who));
    }
    if (strcmp(tag, "__numpy__") == 0 || strcmp(tag, "__tensor__") == 0) {
        const alk_value *value = alk_value_get(config, "value");
        if (value == NULL) {
            alk_op_fail(op, ALK_EINVAL, "a %s argument without a value", tag);
            return NULL;
        }
        return alk_arg_of_array(op, numbers_of(op, value, tag));
    }
    if (strcmp(tag, "__slice__") == 0) {
        const char *keys[3] = {"start", "stop", "step"};
        const alk_arg *bounds[3];
        for (int i = 0; i < 3; i++) {
            const alk_value *b = alk_value_get(config, keys[i]);
            bounds[i] = b != NULL && b->kind != ALK_VALUE_NIL ? to_arg(r, op, b, depth + 1) : NULL;
            if (bounds[i] != NULL && bounds[i]->kind != ALK_ARG_INT) {
                alk_op_fail(op, ALK_EINVAL, "a slice's %s is a %s, not an int or None", keys[i],
                            alk_arg_kind_name(bounds[i]->kind));
                return NULL;
            }
        }
        return alk_arg_of_slice(op, bounds[0], bounds[1], bounds[2]);
    }
    if (strcmp(tag, "__ellipsis__") == 0) {
        return alk_arg_ellipsis(op);
    }
    if (strcmp(tag, "__bytes__") == 0) {
        const alk_value *value = alk_value_get(config, "value");
        if (value == NULL || value->kind != ALK_VALUE_STR) {
            alk_op_fail(op, ALK_EINVAL, "a __bytes__ argument without a string value");
            return NULL;
        }
        return alk_arg_of_str(op, ALK_ARG_STR, value->as.str.bytes);
    }
    if (strcmp(tag, "__tuple__") == 0) {
        const alk_value *value = alk_value_get(config, "value");
        if (value == NULL || value->kind != ALK_VALUE_ARRAY) {
            alk_op_fail(op, ALK_EINVAL, "a __tuple__ argument without a list value");
            return NULL;
        }
        const alk_arg *list = to_arg(r, op, value, depth + 1);
        return list != NULL
                   ? alk_arg_of_seq(op, ALK_ARG_TUPLE, list->as.seq.items, list->as.seq.len)
                   : NULL;
    }
    alk_op_fail(op, ALK_EINVAL,
                "unknown tagged value %s in its arguments (known: __keras_tensor__, __numpy__, "
                "__tensor__, __slice__, __ellipsis__, __bytes__, __tuple__)",
                tag);
    return NULL;
}

/* Whether map `v` is a tagged value: {"class_name": "__x__", "config": ...}. */
static const char *tag_of(const alk_value *v) {
    const alk_value *cls = alk_value_get(v, "class_name");
    if (cls == NULL || cls->kind != ALK_VALUE_STR || alk_value_get(v, "config") == NULL) {
        return NULL;
    }
    size_t n = cls->as.str.len;
    const char *s = cls->as.str.bytes;
    return n > 4 && strncmp(s, "__", 2) == 0 && strcmp(s + n - 2, "__") == 0 ? s : NULL;
}

/* A recorded argument as a kit value; NULL after an error (recorded in the op). */
static const alk_arg *to_arg(level_run *r, alk_op *op, const alk_value *v, unsigned depth) {
    if (depth > 64) {
        alk_op_fail(op, ALK_EINVAL, "its arguments are nested too deep");
        return NULL;
    }
    switch (v->kind) {
    case ALK_VALUE_ARRAY: {
        const alk_arg **items =
            v->as.array.len > 0 ? alk_arena_calloc(&r->job->arena, v->as.array.len, sizeof(*items))
                                : NULL;
        if (v->as.array.len > 0 && items == NULL) {
            alk_op_fail(op, ALK_ENOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < v->as.array.len; i++) {
            items[i] = to_arg(r, op, v->as.array.items[i], depth + 1);
            if (items[i] == NULL) {
                return NULL;
            }
        }
        return alk_arg_of_seq(op, ALK_ARG_LIST, items, v->as.array.len);
    }
    case ALK_VALUE_MAP: {
        const char *tag = tag_of(v);
        if (tag != NULL) {
            return tagged_arg(r, op, tag, alk_value_get(v, "config"), depth);
        }
        size_t n = v->as.map.len;
        const alk_arg **items =
            n > 0 ? alk_arena_calloc(&r->job->arena, 2 * n, sizeof(*items)) : NULL;
        if (n > 0 && items == NULL) {
            alk_op_fail(op, ALK_ENOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            items[2 * i] = alk_arg_of_str(op, ALK_ARG_STR, v->as.map.pairs[i].key->as.str.bytes);
            items[2 * i + 1] = to_arg(r, op, v->as.map.pairs[i].value, depth + 1);
            if (items[2 * i] == NULL || items[2 * i + 1] == NULL) {
                return NULL;
            }
        }
        return alk_arg_of_seq(op, ALK_ARG_DICT, items, 2 * n);
    }
    default:
        return alk_arg_of_value(op, v);
    }
}

/* ---- One layer call ------------------------------------------------------------------------ */

/* Packages whose layers alkaid refuses with a reason of their own. */
static const char *package_hint(const char *package) {
    if (strcmp(package, "qkeras") == 0) {
        return ": QKeras layers are not supported (alkaid converts HGQ2 models)";
    }
    return "";
}

/* The row of `layer` (alk_keras_dispatch_module: by the config's module, else the registered
 * package). */
static const alk_op_def *find_row(level_run *r, alk_op *op, const alk_keras_layer *layer) {
    const alk_op_def *def = NULL;
    alk_diag diag = {{0}};
    int rv = alk_host_find_op(r->job->host, alk_keras_dispatch_module(layer), layer->class_name,
                              &def, &diag);
    if (rv != ALK_OK) {
        alk_op_fail(op, rv, "%s%s", diag.message, package_hint(layer->package));
        return NULL;
    }
    return def;
}

/* Runs one call of an ordinary layer or op; its results become the node's. */
static void run_layer(level_run *r, const alk_keras_node *node) {
    const alk_keras_layer *layer = node->layer;
    alk_op *op = alk_op_new(r->scope, layer->name, layer->module, layer->class_name, layer->config);
    for (size_t i = 0; op != NULL && i < node->args->as.array.len; i++) {
        alk_op_add_arg(op, NULL, to_arg(r, op, node->args->as.array.items[i], 0));
    }
    for (size_t i = 0; op != NULL && i < node->kwargs->as.map.len; i++) {
        const alk_value_pair *p = &node->kwargs->as.map.pairs[i];
        if (strcmp(p->key->as.str.bytes, "training") != 0) {
            alk_op_add_arg(op, p->key->as.str.bytes, to_arg(r, op, p->value, 0));
        }
    }
    keras_layer_weights *weights = keras_layer_weights_new(r->job, layer);
    if (weights == NULL && op != NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory");
    }
    alk_op_weights source = {keras_find_weight, weights};
    alk_op_set_weights(op, &source);
    const alk_op_def *def = op != NULL && !alk_op_failed(op) ? find_row(r, op, layer) : NULL;
    if (keras_own_row(def)) {
        keras_weights_check_before(op, weights);
    }
    if (alk_op_run(op, def) == ALK_OK && keras_own_row(def)) {
        keras_weights_check_after(op, weights);
    }
    if (alk_trace_error(r->job->trace) != ALK_OK) {
        return;
    }
    size_t n = alk_op_n_results(op);
    alk_fva **outs = alk_arena_calloc(&r->job->arena, n + 1, sizeof(*outs));
    if (outs == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        outs[i] = alk_op_result_array(op, i);
        if (outs[i] == NULL) {
            alk_op_fail(op, ALK_EINVAL, "result %zu is a %s, not an array (a Keras tensor)", i,
                        alk_arg_kind_name(alk_op_result(op, i)->kind));
            return;
        }
    }
    r->results[node->id] = outs;
    r->n_results[node->id] = n;
}

/* The arrays a sub-model is called with: its positional arguments, or the one list of them
 * (`model([a, b])`, which the reference refuses for several inputs). */
static size_t model_args(level_run *r, const alk_keras_node *node, alk_fva **ret, size_t cap,
                         const char *who) {
    const alk_value *args = node->args;
    if (args->as.array.len == 1 && args->as.array.items[0]->kind == ALK_VALUE_ARRAY) {
        args = args->as.array.items[0];
    }
    size_t n = 0;
    for (size_t i = 0; i < args->as.array.len; i++) {
        const alk_value *a = args->as.array.items[i];
        const char *tag = tag_of(a);
        if (tag == NULL || strcmp(tag, "__keras_tensor__") != 0 || n == cap) {
            (void)alk_trace_fail(r->job->trace, ALK_EINVAL,
                                 "%s: argument %zu of the call is not a tensor (a model takes "
                                 "at most %zu tensors)",
                                 who, i, cap);
            return 0;
        }
        ret[n++] = tensor_value(r, alk_value_get(a, "config"), who);
    }
    return n;
}

/* Runs a call of a nested model in a child scope; its outputs become the node's. */
static void run_model(level_run *r, const alk_keras_node *node) {
    const alk_keras_layer *layer = node->layer;
    char who[320];
    (void)snprintf(who, sizeof(who), "model %s (%s)", layer->name, layer->class_name);
    alk_fva *inputs[ALK_KERAS_MAX_INPUTS];
    size_t n = model_args(r, node, inputs, ALK_KERAS_MAX_INPUTS, who);
    if (alk_trace_error(r->job->trace) != ALK_OK) {
        return;
    }
    alk_scope *child = alk_scope_child(r->scope, layer->name);
    if (child == NULL) {
        (void)alk_trace_fail(r->job->trace, ALK_ENOMEM, "%s: out of memory", who);
        return;
    }
    alk_diag diag = {{0}};
    (void)run_level(r->job, child, layer->model, inputs, n, &r->results[node->id],
                    &r->n_results[node->id], &diag);
}

/* ---- A level --------------------------------------------------------------------------------- */

static int run_level(keras_job *job, alk_scope *scope, const alk_keras_model *model,
                     alk_fva *const *inputs, size_t n_inputs, alk_fva ***ret_outputs, size_t *ret_n,
                     alk_diag *diag) {
    alk_trace *t = job->trace;
    level_run r = {job, scope, model, NULL, NULL};
    r.results = alk_arena_calloc(&job->arena, model->n_nodes + 1, sizeof(*r.results));
    r.n_results = alk_arena_calloc(&job->arena, model->n_nodes + 1, sizeof(*r.n_results));
    alk_fva **outputs = alk_arena_calloc(&job->arena, model->n_outputs + 1, sizeof(*outputs));
    if (r.results == NULL || r.n_results == NULL || outputs == NULL) {
        (void)alk_trace_fail(t, ALK_ENOMEM, "out of memory");
    } else if (n_inputs != model->n_inputs) {
        (void)alk_trace_fail(t, ALK_EINVAL, "model %s has %zu input(s), called with %zu",
                             model->name, model->n_inputs, n_inputs);
    }
    /* The inputs are bound first, in input_layers order. */
    for (size_t i = 0; i < n_inputs && alk_trace_error(t) == ALK_OK; i++) {
        const alk_keras_node *node = alk_keras_layer_node(model->inputs[i].layer, 0);
        alk_fva **slot = alk_arena_calloc(&job->arena, 1, sizeof(*slot));
        if (slot == NULL) {
            (void)alk_trace_fail(t, ALK_ENOMEM, "out of memory");
            break;
        }
        slot[0] = inputs[i];
        r.results[node->id] = slot;
        r.n_results[node->id] = 1;
    }
    for (size_t k = 0; k < model->n_order && alk_trace_error(t) == ALK_OK; k++) {
        const alk_keras_node *node = model->order[k];
        switch (node->layer->kind) {
        case ALK_KERAS_INPUT:
            break; /* bound above; nothing is dumped */
        case ALK_KERAS_MODEL:
            run_model(&r, node);
            break;
        case ALK_KERAS_LAYER:
        case ALK_KERAS_OP:
            run_layer(&r, node);
            break;
        }
    }
    size_t n_out = 0;
    for (size_t i = 0; i < model->n_outputs && alk_trace_error(t) == ALK_OK; i++) {
        char who[200];
        (void)snprintf(who, sizeof(who), "model %s: output %zu", model->name, i);
        outputs[n_out++] = tensor_of(&r, &model->outputs[i], who);
    }
    if (ret_outputs != NULL && alk_trace_error(t) == ALK_OK) {
        *ret_outputs = outputs;
        *ret_n = n_out;
    }
    return alk_scope_finish(scope, "final", outputs, n_out, diag);
}

int keras_walk(keras_job *job, alk_scope *scope, alk_fva *const *inputs, size_t n_inputs,
               alk_diag *diag) {
    int rv = alk_host_dump(job->host, "inputs", inputs, n_inputs);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "recording the inputs: %s", alk_strerror(rv));
    }
    return run_level(job, scope, job->model, inputs, n_inputs, NULL, NULL, diag);
}
