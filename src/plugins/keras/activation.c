/*
 * Keras activations (spec frontends.md §2.3): the activation step every layer of the tracer's
 * scopes gets (the strict map of config.activation) and the Activation layer (the lenient map).
 * Both maps live in src/nn (alk_nn_keras_activate); this file reads the serialized name.
 *
 * Keras 3 serializes a built-in activation as its name ("relu"; swish and hard_swish arrive as
 * silu and hard_silu, older files hold the aliases); any other function is serialized as
 * {"module", "class_name": "function", "config": NAME, "registered_name"}, which alkaid cannot
 * evaluate: the reference runs such a function through Keras on the table grid.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"
#include "nn/nn.h"

#include <string.h>

/* The str item `key` of a DICT argument, or NULL. */
static const char *dict_str(const alk_arg *dict, const char *key) {
    for (size_t i = 0; i + 1 < dict->as.seq.len; i += 2) {
        const alk_arg *k = dict->as.seq.items[i];
        const alk_arg *v = dict->as.seq.items[i + 1];
        if (k->kind == ALK_ARG_STR && strcmp(k->as.str, key) == 0) {
            return v->kind == ALK_ARG_STR ? v->as.str : NULL;
        }
    }
    return NULL;
}

const char *keras_activation_name(alk_op *op, const char *key) {
    const alk_arg *a = alk_op_get(op, key);
    if (a == NULL || a->kind == ALK_ARG_NONE) {
        return NULL;
    }
    if (a->kind == ALK_ARG_STR) {
        return a->as.str;
    }
    if (a->kind == ALK_ARG_DICT) {
        const char *module = dict_str(a, "module");
        const char *name = dict_str(a, "config");
        /* A Keras activation serialized in full is still the built-in one. */
        if (name != NULL && module != NULL &&
            (strcmp(module, "keras.activations") == 0 ||
             strncmp(module, "keras.src.activations", 21) == 0)) {
            return name;
        }
        alk_op_fail(op, ALK_EINVAL,
                    "%s: unsupported activation '%s' (a custom function of module %s): alkaid "
                    "cannot evaluate custom functions, only Keras's built-in activations",
                    key, name != NULL ? name : "?", module != NULL ? module : "?");
        return NULL;
    }
    alk_op_fail(op, ALK_EINVAL, "%s: expected an activation name, got %s", key,
                alk_arg_kind_name(a->kind));
    return NULL;
}

alk_fva *keras_activation_step(alk_op *op, alk_fva *x) {
    const char *name = keras_activation_name(op, "activation");
    return name != NULL ? alk_nn_keras_activate(alk_op_trace(op), name, true, x) : x;
}

/* Activation(a): the lenient map (the row owns its activation step). */
void keras_activation_layer(alk_op *op, const void *arg) {
    (void)arg;
    alk_fva *x = alk_op_in(op, 0);
    const char *name = keras_activation_name(op, "activation");
    alk_op_out(op, name != NULL ? alk_nn_keras_activate(alk_op_trace(op), name, false, x) : x);
}
