/*
 * Mock top-level tracer for the plugin tests (group alir_tracer.plugins; name MOCK_NAME, "mock"
 * unless built as the "keras" stand-in that second-level alkaid_keras plugins serve).
 *
 * It feeds ops to the handler kit from a small JSON model:
 *
 *   {"input_shape": [2, 3], "style": "keras" | "torch",
 *    "layers": [{"name": N, "module": M, "class_name": C, "config": {...},
 *                "args": [...], "kwargs": {...}, "weights": {"kernel": [[1, 2]], ...},
 *                "layers": [...]}],     <- a nested model called as one layer
 *    "outputs": ["N", ...]}             <- default: the last layer's first result
 *
 * In args and kwargs, {"input": i} is model input i (or, in a nested model, its argument i),
 * {"ref": N} the first result of layer N (and {"ref": N, "index": k} its k-th), lists are lists
 * of such values, anything else a plain value. Its own table holds a few rows (Dense, binary
 * arithmetic, Scale under an exact and a prefix module, size, split2), and its activation step
 * knows "linear" and "relu". fini appends "fini <variant> <state address>" to $ALK_MOCK_LOG, so a
 * test can see when the library was really unloaded.
 */
#include "plugin/alk_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MOCK_NAME
#define MOCK_NAME "mock"
#endif

/* ---- The tracer's own rows ----------------------------------------------------------------- */

static void dense(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *y = alk_fva_matmul(t, alk_op_in(op, 0), alk_op_weight(op, "kernel"));
    alk_fva *bias = alk_op_weight_opt(op, "bias");
    alk_op_out(op, bias != NULL ? alk_fva_binary(t, ALK_ADD, y, bias) : y);
}

static void binary(alk_op *op, const void *binop) {
    alk_op_out(op, alk_fva_binary(alk_op_trace(op), *(const alk_binop *)binop, alk_op_in(op, 0),
                                  alk_op_array(op, "y")));
}

static void scale(alk_op *op, const void *factor) {
    alk_op_out(op, alk_fva_binary_scalar(alk_op_trace(op), ALK_MUL, alk_op_in(op, 0),
                                         *(const double *)factor * alk_op_float(op, "factor", 1)));
}

/* x.size(dim): an int result, which torch-style scopes do not dump. */
static void size(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    int64_t dim = alk_op_int(op, "dim", 0);
    if (x != NULL && (dim < 0 || (size_t)dim >= alk_fva_ndim(x))) {
        alk_op_fail(op, ALK_EINVAL, "dim %lld is out of range", (long long)dim);
        return;
    }
    alk_op_return(op, alk_arg_of_int(op, x != NULL ? (int64_t)alk_fva_shape(x)[dim] : 0));
}

/* Two results: the input and its negation. */
static void split2(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    alk_op_out(op, x);
    alk_op_out(op, alk_fva_unary(alk_op_trace(op), ALK_NEGATIVE, x));
}

static const alk_binop add_op = ALK_ADD, sub_op = ALK_SUB, mul_op = ALK_MUL;
static const double two = 2, three = 3;

static const alk_op_def mock_ops[] = {
    {"mock.layers", "Dense", dense, NULL, 0, 1, 1, "inputs", "kernel bias:use_bias"},
    {"mock.ops", "add", binary, &add_op, ALK_OP_OWN_ACTIVATION, 2, 2, "x y", NULL},
    {"mock.ops", "sub", binary, &sub_op, ALK_OP_OWN_ACTIVATION, 2, 2, "x y", NULL},
    {"mock.ops", "mul", binary, &mul_op, ALK_OP_OWN_ACTIVATION, 2, 2, "x y", NULL},
    {"mock.layers", "Scale", scale, &two, 0, 1, 1, "inputs", NULL},
    {"mock", "Scale", scale, &three, 0, 1, 1, "inputs", NULL},
    {"mock.ops", "size", size, NULL, 0, 1, 2, "x dim", NULL},
    {"mock.ops", "split2", split2, NULL, ALK_OP_OWN_ACTIVATION, 1, 1, "x", NULL},
};

static alk_fva *activation(alk_op *op, alk_fva *x) {
    const char *name = alk_op_str(op, "activation", "linear");
    if (strcmp(name, "relu") == 0) {
        return alk_fva_relu(alk_op_trace(op), x, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
    }
    if (strcmp(name, "linear") != 0) {
        alk_op_fail(op, ALK_EINVAL, "unsupported activation '%s'", name);
    }
    return x;
}

/* ---- Replaying the JSON model -------------------------------------------------------------- */

static const char *str_of(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    return v != NULL && v->kind == ALK_VALUE_STR ? v->as.str.bytes : "";
}

enum { MAX_LAYERS = 64, MAX_VALUES = 16 };

/* One layer of a model level: its op, or for a nested model the outputs of its final. */
typedef struct layer_state {
    const char *name;
    alk_op *op;
    alk_fva *outs[MAX_VALUES];
    size_t n_outs;
} layer_state;

typedef struct level {
    layer_state layers[MAX_LAYERS];
    size_t n_layers;
    alk_fva *const *inputs;
    size_t n_inputs;
} level;

/* The latest layer called `name` (a shared layer's last call). */
static const layer_state *layer_named(const level *lv, const char *name) {
    for (size_t i = lv->n_layers; i-- > 0;) {
        if (strcmp(lv->layers[i].name, name) == 0) {
            return &lv->layers[i];
        }
    }
    return NULL;
}

/* The first result of a layer as an array (NULL when it is something else). */
static alk_fva *first_array(const layer_state *layer) {
    if (layer == NULL || layer->op == NULL) {
        return layer != NULL && layer->n_outs > 0 ? layer->outs[0] : NULL;
    }
    const alk_arg *first = alk_op_result(layer->op, 0);
    return first != NULL && first->kind == ALK_ARG_ARRAY ? first->as.array : NULL;
}

/* {"input": i} or {"ref": N, "index": k} as an array; NULL when it is neither. */
static alk_fva *array_of(const level *lv, const alk_value *v) {
    const alk_value *input = alk_value_get(v, "input");
    if (input != NULL && input->kind == ALK_VALUE_INT && input->as.integer >= 0 &&
        (size_t)input->as.integer < lv->n_inputs) {
        return lv->inputs[input->as.integer];
    }
    const layer_state *ref = layer_named(lv, str_of(v, "ref"));
    const alk_value *index = alk_value_get(v, "index");
    size_t k = index != NULL ? (size_t)index->as.integer : 0;
    if (ref == NULL) {
        return NULL;
    }
    if (ref->op == NULL) {
        return k < ref->n_outs ? ref->outs[k] : NULL;
    }
    const alk_arg *result = alk_op_result(ref->op, k);
    return result != NULL && result->kind == ALK_ARG_ARRAY ? result->as.array : NULL;
}

static const alk_arg *arg_of(alk_op *op, const level *lv, const alk_value *v) {
    const layer_state *ref = layer_named(lv, str_of(v, "ref"));
    if (ref != NULL && ref->op != NULL) {
        /* Any result of an op, also an int or a tuple. */
        const alk_value *index = alk_value_get(v, "index");
        return alk_op_result(ref->op, index != NULL ? (size_t)index->as.integer : 0);
    }
    if (alk_value_get(v, "input") != NULL || ref != NULL) {
        return alk_arg_of_array(op, array_of(lv, v));
    }
    if (v->kind == ALK_VALUE_ARRAY) {
        const alk_arg *items[MAX_VALUES];
        size_t n = v->as.array.len < MAX_VALUES ? v->as.array.len : MAX_VALUES;
        for (size_t i = 0; i < n; i++) {
            items[i] = arg_of(op, lv, v->as.array.items[i]);
        }
        return alk_arg_of_seq(op, ALK_ARG_LIST, items, n);
    }
    return alk_arg_of_value(op, v);
}

/* The weight source: the layer's "weights" map, by role or by path. */
static const alk_value *find_weight(const void *ctx, const char *role, size_t index,
                                    const char *path) {
    (void)index;
    return alk_value_get(alk_value_get(ctx, "weights"), role != NULL ? role : path);
}

/* Builds and runs the op of `layer`. */
static alk_op *run_op(alk_scope *scope, const alk_host *host, const alk_value *layer,
                      const level *lv) {
    alk_op *op = alk_op_new(scope, str_of(layer, "name"), str_of(layer, "module"),
                            str_of(layer, "class_name"), alk_value_get(layer, "config"));
    const alk_value *args = alk_value_get(layer, "args");
    for (size_t k = 0; op != NULL && args != NULL && k < args->as.array.len; k++) {
        alk_op_add_arg(op, NULL, arg_of(op, lv, args->as.array.items[k]));
    }
    const alk_value *kwargs = alk_value_get(layer, "kwargs");
    for (size_t k = 0; op != NULL && kwargs != NULL && k < kwargs->as.map.len; k++) {
        const alk_value_pair *p = &kwargs->as.map.pairs[k];
        alk_op_add_arg(op, p->key->as.str.bytes, arg_of(op, lv, p->value));
    }
    alk_op_weights weights = {find_weight, layer};
    alk_op_set_weights(op, &weights);
    const alk_op_def *def = NULL;
    alk_diag diag = {{0}};
    int rv =
        alk_host_find_op(host, str_of(layer, "module"), str_of(layer, "class_name"), &def, &diag);
    if (rv != ALK_OK && op != NULL) {
        alk_op_fail(op, rv, "%s", diag.message);
    }
    (void)alk_op_run(op, def);
    return op;
}

/* Replays one model level in `scope`; its outputs go to `ret_outputs` (up to MAX_VALUES). */
static int run_level(alk_scope *scope, const alk_host *host, const alk_value *model,
                     alk_fva *const *inputs, size_t n_inputs, unsigned depth, alk_fva **ret_outputs,
                     size_t *ret_n, alk_diag *diag) {
    if (depth == 4) {
        return alk_diag_set(diag, ALK_ELIMIT, "models nested too deep");
    }
    level level_state = {.inputs = inputs, .n_inputs = n_inputs};
    level *lv = &level_state;
    const alk_value *layers = alk_value_get(model, "layers");
    for (size_t i = 0; layers != NULL && i < layers->as.array.len && i < MAX_LAYERS; i++) {
        const alk_value *layer = layers->as.array.items[i];
        /* The layer is named (for refs) only once it ran: its arguments see earlier calls. */
        layer_state *state = &lv->layers[lv->n_layers];
        state->name = str_of(layer, "name");
        if (alk_value_get(layer, "layers") == NULL) {
            state->op = run_op(scope, host, layer, lv);
            lv->n_layers++;
            continue;
        }
        /* A nested model: a child scope, its arguments as inputs, its final as the outputs. */
        alk_fva *args[MAX_VALUES];
        const alk_value *arg_list = alk_value_get(layer, "args");
        size_t n_args = arg_list != NULL ? arg_list->as.array.len : 0;
        for (size_t k = 0; k < n_args && k < MAX_VALUES; k++) {
            args[k] = array_of(lv, arg_list->as.array.items[k]);
        }
        (void)run_level(alk_scope_child(scope, state->name), host, layer, args, n_args, depth + 1,
                        state->outs, &state->n_outs, NULL);
        lv->n_layers++;
    }
    /* The outputs: the named layers' first results, by default the last layer's, or the
     * inputs of a model without layers. */
    alk_fva *outputs[MAX_VALUES];
    size_t n_out = 0;
    const alk_value *names = alk_value_get(model, "outputs");
    for (size_t i = 0; names != NULL && i < names->as.array.len && n_out < MAX_VALUES; i++) {
        outputs[n_out++] = first_array(layer_named(lv, names->as.array.items[i]->as.str.bytes));
    }
    if (names == NULL && lv->n_layers > 0) {
        outputs[n_out++] = first_array(&lv->layers[lv->n_layers - 1]);
    }
    for (size_t i = 0; names == NULL && lv->n_layers == 0 && i < n_inputs && i < MAX_VALUES; i++) {
        outputs[n_out++] = inputs[i];
    }
    for (size_t i = 0; i < n_out; i++) {
        ret_outputs[i] = outputs[i];
    }
    *ret_n = n_out;
    return alk_scope_finish(scope, "final", outputs, n_out, diag);
}

/* ---- The descriptor ------------------------------------------------------------------------ */

static int init(void **ret_state, alk_diag *diag) {
    (void)diag;
    *ret_state = malloc(1);
    return *ret_state == NULL ? ALK_ENOMEM : ALK_OK;
}

static void fini(void *state) {
    const char *log = getenv("ALK_MOCK_LOG");
    FILE *f = log != NULL ? fopen(log, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "fini %s %p\n", MOCK_VARIANT, state);
        fclose(f);
    }
    free(state);
}

static int get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state;
    const alk_value *shape = alk_value_get(model, "input_shape");
    if (shape == NULL || shape->kind != ALK_VALUE_ARRAY) {
        return alk_diag_set(diag, ALK_ENOENT, "the mock model has no input_shape");
    }
    if (cap < 1 || shape->as.array.len > ALK_PLUGIN_MAX_DIMS) {
        return alk_diag_set(diag, ALK_EINVAL, "input_shape too long");
    }
    ret_shapes[0].n_dims = (uint32_t)shape->as.array.len;
    for (size_t d = 0; d < shape->as.array.len; d++) {
        ret_shapes[0].dims[d] = shape->as.array.items[d]->as.integer;
    }
    *ret_n_shapes = 1;
    return ALK_OK;
}

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    bool torch = strcmp(str_of(model, "style"), "torch") == 0;
    alk_scope *scope =
        alk_scope_new(host, trace, torch ? ALK_SCOPE_TORCH : ALK_SCOPE_KERAS, torch ? "" : "/");
    /* The activation step is Keras's (frontends.md §2.1 step 7); torch calls have none. */
    alk_scope_set_activation(scope, torch ? NULL : activation);
    alk_fva *outputs[MAX_VALUES];
    size_t n = 0;
    return run_level(scope, host, model, inputs, n_inputs, 0, outputs, &n, diag);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = MOCK_NAME,
    .version = MOCK_VARIANT,
    .init = init,
    .fini = fini,
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
    .ops = mock_ops,
    .n_ops = sizeof(mock_ops) / sizeof(mock_ops[0]),
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
