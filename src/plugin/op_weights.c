/*
 * Weights by role (alk_op.h): the row's layout evaluated against the layer config, resolution
 * through the tracer's weight source, decoding into numeric arrays, and overrides.
 *
 * A layout lists the roles in their saved order ("kernel bias:use_bias"); a role's index is its
 * position among the roles present for this config, which is what Keras's `vars/N` numbering
 * is. The layout always comes from the row alk_op_run runs, also inside a delegated body: HGQ2's
 * QDense stores QDense's layout even when Keras's Dense body reads "bias".
 *
 * Every weight read (and every override) is kept in the op, so a body reading "kernel" twice
 * gets one array and an override holds for the rest of the call.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "plugin/op_int.h"
#include "core/alloc.h"
#include "graph/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { ROLE_ABSENT = -1, ROLE_UNLISTED = -2 };

/* Whether the condition of `token` holds for the op's config (absent keys count as true). */
static bool condition_holds(alk_op *op, const alk__token *token) {
    if (token->key == NULL) {
        return true;
    }
    char key[128];
    (void)snprintf(key, sizeof(key), "%.*s", (int)token->key_len, token->key);
    const alk_value *value = alk_value_get(op->config, key);
    bool on = true;
    if (value != NULL && value->kind == ALK_VALUE_BOOL) {
        on = value->as.boolean;
    } else if (value != NULL && value->kind != ALK_VALUE_NIL) {
        alk_op_fail(op, ALK_EINVAL, "%s: expected a bool (it selects the weights), got %s", key,
                    alk_value_kind_name(value->kind));
    }
    return on != token->negated;
}

/* The index of `role` among the weights present, ROLE_ABSENT when the layout lists it only under
 * conditions that do not hold, ROLE_UNLISTED when it does not list it. */
static long layout_index(alk_op *op, const char *role) {
    const char *cursor = op->row != NULL && op->row->weights != NULL ? op->row->weights : "";
    long index = 0;
    long found = ROLE_UNLISTED;
    alk__token token;
    int got;
    while ((got = alk__next_token(&cursor, true, &token)) != 0 && !alk_op_failed(op)) {
        if (got < 0) {
            continue; /* the loader refused such rows; a row of no plugin may still have one */
        }
        bool holds = condition_holds(op, &token);
        if (alk__token_is(&token, role)) {
            if (holds) {
                return index;
            }
            found = ROLE_ABSENT;
        }
        index += holds;
    }
    return found;
}

static alk__weight *cached(alk_op *op, const char *role) {
    for (size_t i = 0; i < op->weight_cache.len; i++) {
        alk__weight *w = &ALK__LIST_AT(&op->weight_cache, alk__weight, i);
        if (strcmp(w->role, role) == 0) {
            return w;
        }
    }
    return NULL;
}

static void remember(alk_op *op, const char *role, alk_fva *array) {
    alk__weight *w = cached(op, role);
    if (w != NULL) {
        w->array = array;
        return;
    }
    alk__weight fresh = {alk__op_strdup(op, role), array};
    if (fresh.role != NULL) {
        (void)alk__list_push(op->trace, &op->weight_cache, sizeof(fresh), &fresh);
    }
}

/* A {dtype, shape, data} tensor as a numeric array; `what` names it in errors. */
static alk_fva *decode_tensor(alk_op *op, const char *what, const alk_value *value) {
    alk_tensor tensor;
    alk_diag diag = {{0}};
    int rv = alk_tensor_from_value(value, NULL, &tensor, &diag); /* the wire's limits */
    if (rv != ALK_OK) {
        alk_op_fail(op, rv, "%s: %s", what, diag.message);
        return NULL;
    }
    size_t size = alk_tensor_elements(&tensor);
    double *values = alk_malloc((size > 0 ? size : 1) * sizeof(double));
    if (values == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    rv = alk_tensor_to_f64(&tensor, values, &diag);
    size_t bad = SIZE_MAX;
    for (size_t i = 0; rv == ALK_OK && i < size && bad == SIZE_MAX; i++) {
        bad = isfinite(values[i]) ? SIZE_MAX : i;
    }
    alk_fva *array = NULL;
    if (rv != ALK_OK) {
        alk_op_fail(op, rv, "%s: %s", what, diag.message);
    } else if (bad != SIZE_MAX) {
        /* A NaN or infinite constant has no fixed-point meaning: refuse it here, by name. */
        alk_op_fail(op, ALK_EINVAL, "%s: element %zu is %g", what, bad, values[bad]);
    } else {
        array = alk_fva_numbers(op->trace, tensor.ndim, tensor.shape, values);
    }
    alk_free(values);
    return array;
}

/* A weight source's answer as a numeric array: a tensor map or nested lists of numbers. */
static alk_fva *decode(alk_op *op, const char *what, const alk_value *value) {
    if (value->kind == ALK_VALUE_MAP) {
        return decode_tensor(op, what, value);
    }
    if (value->kind != ALK_VALUE_ARRAY && value->kind != ALK_VALUE_INT &&
        value->kind != ALK_VALUE_FLOAT) {
        alk_op_fail(op, ALK_EINVAL, "%s: expected a tensor {dtype, shape, data} or numbers, got %s",
                    what, alk_value_kind_name(value->kind));
        return NULL;
    }
    return alk__op_numbers(op, what, alk_arg_of_value(op, value));
}

static alk_fva *weight(alk_op *op, const char *role, bool required) {
    if (alk_op_failed(op)) {
        return NULL;
    }
    const alk__weight *w = cached(op, role);
    alk_fva *array = w != NULL ? w->array : NULL;
    if (w == NULL) {
        long index = layout_index(op, role);
        const alk_value *value = NULL;
        if (index != ROLE_ABSENT && op->has_weights && op->weights.find != NULL) {
            value = op->weights.find(op->weights.ctx, role, index >= 0 ? (size_t)index : SIZE_MAX,
                                     NULL);
        }
        char what[160];
        (void)snprintf(what, sizeof(what), "weight '%s'", role);
        array = value != NULL ? decode(op, what, value) : NULL;
        remember(op, role, array);
    }
    if (array == NULL && required) {
        alk_op_fail(op, ALK_EINVAL, "weight '%s' is missing", role);
    }
    return array;
}

alk_fva *alk_op_weight(alk_op *op, const char *role) {
    return weight(op, role, true);
}

alk_fva *alk_op_weight_opt(alk_op *op, const char *role) {
    return weight(op, role, false);
}

alk_fva *alk_op_tensor_opt(alk_op *op, const char *path) {
    if (alk_op_failed(op) || !op->has_weights || op->weights.find == NULL) {
        return NULL;
    }
    const alk_value *value = op->weights.find(op->weights.ctx, NULL, SIZE_MAX, path);
    char what[160];
    (void)snprintf(what, sizeof(what), "tensor '%s'", path);
    return value != NULL ? decode(op, what, value) : NULL;
}

void alk_op_set_weight(alk_op *op, const char *role, alk_fva *value) {
    if (!alk_op_failed(op)) {
        remember(op, role, value);
    }
}
