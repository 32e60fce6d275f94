/*
 * The handler call object (alk_op.h): tagged values, a call's arguments and results, its one
 * error channel.
 *
 * An op is a record in the trace arena that a tracer fills (alk_op_new, alk_op_add_arg) and
 * alk_op_run hands to a handler. Every mutator and reader checks the trace's sticky error first
 * and does nothing once it is set, so a handler never tests anything; alk_op_fail writes the
 * error with the "layer NAME (Class): " prefix at once, and alk_op_run prefixes the errors that
 * tracing calls recorded without it (scope.c).
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "plugin/op_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool alk__list_push(alk_trace *trace, alk__list *list, size_t elem_size, const void *elem) {
    if (list->len == list->cap) {
        /* An arena cannot realloc: the old block stays behind. Calls have a handful of
         * arguments and results, so doubling from 4 wastes a few dozen bytes per op. */
        size_t cap = list->cap == 0 ? 4 : 2 * list->cap;
        void *items = alk__trace_alloc(trace, cap * elem_size);
        if (items == NULL) {
            return false;
        }
        if (list->len > 0) {
            memcpy(items, list->items, list->len * elem_size);
        }
        list->items = items;
        list->cap = cap;
    }
    memcpy((char *)list->items + list->len * elem_size, elem, elem_size);
    list->len++;
    return true;
}

char *alk__op_strdup(alk_op *op, const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = alk__trace_alloc(op->trace, n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

/* ---- Errors ----------------------------------------------------------------------------------
 */

void alk_op_fail(alk_op *op, int err, const char *fmt, ...) {
    /* The first error is the one worth reading: later ones are usually its consequences. */
    if (alk_trace_error(op->trace) != ALK_OK) {
        return;
    }
    char message[sizeof(((alk_diag *)0)->message)];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    (void)alk_trace_fail(op->trace, err, "layer %s (%s): %s", op->name, op->class_name, message);
    /* alk_op_run must not prefix it a second time. */
    op->error_prefixed = true;
}

bool alk_op_failed(const alk_op *op) {
    return alk_trace_error(op->trace) != ALK_OK;
}

/* ---- Tagged values -------------------------------------------------------------------------- */

const char *alk_arg_kind_name(alk_arg_kind kind) {
    static const char *const names[] = {
        [ALK_ARG_NONE] = "None",   [ALK_ARG_ARRAY] = "array",       [ALK_ARG_INT] = "int",
        [ALK_ARG_FLOAT] = "float", [ALK_ARG_BOOL] = "bool",         [ALK_ARG_STR] = "str",
        [ALK_ARG_SLICE] = "slice", [ALK_ARG_ELLIPSIS] = "ellipsis", [ALK_ARG_TUPLE] = "tuple",
        [ALK_ARG_LIST] = "list",   [ALK_ARG_DICT] = "dict",         [ALK_ARG_DTYPE] = "dtype",
    };
    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

/* A copy of `value` in the op's arena (NULL without an op or once the trace has failed). */
static alk_arg *new_arg(alk_op *op, alk_arg value) {
    alk_arg *arg = op != NULL ? alk__trace_alloc(op->trace, sizeof(*arg)) : NULL;
    if (arg != NULL) {
        *arg = value;
    }
    return arg;
}

const alk_arg *alk_arg_none(alk_op *op) {
    return new_arg(op, (alk_arg){.kind = ALK_ARG_NONE});
}

const alk_arg *alk_arg_ellipsis(alk_op *op) {
    return new_arg(op, (alk_arg){.kind = ALK_ARG_ELLIPSIS});
}

const alk_arg *alk_arg_of_array(alk_op *op, alk_fva *array) {
    return array != NULL ? new_arg(op, (alk_arg){.kind = ALK_ARG_ARRAY, .as.array = array}) : NULL;
}

const alk_arg *alk_arg_of_int(alk_op *op, int64_t value) {
    return new_arg(op, (alk_arg){.kind = ALK_ARG_INT, .as.integer = value});
}

const alk_arg *alk_arg_of_float(alk_op *op, double value) {
    return new_arg(op, (alk_arg){.kind = ALK_ARG_FLOAT, .as.number = value});
}

const alk_arg *alk_arg_of_bool(alk_op *op, bool value) {
    return new_arg(op, (alk_arg){.kind = ALK_ARG_BOOL, .as.boolean = value});
}

const alk_arg *alk_arg_of_str(alk_op *op, alk_arg_kind kind, const char *text) {
    if (op != NULL && kind != ALK_ARG_STR && kind != ALK_ARG_DTYPE) {
        alk_op_fail(op, ALK_EINTERNAL, "alk_arg_of_str: kind %s is not str or dtype",
                    alk_arg_kind_name(kind));
        return NULL;
    }
    const char *copy = op != NULL ? alk__op_strdup(op, text) : NULL;
    return copy != NULL ? new_arg(op, (alk_arg){.kind = kind, .as.str = copy}) : NULL;
}

const alk_arg *alk_arg_of_slice(alk_op *op, const alk_arg *start, const alk_arg *stop,
                                const alk_arg *step) {
    alk_arg slice = {.kind = ALK_ARG_SLICE};
    slice.as.slice.start = start != NULL ? start : alk_arg_none(op);
    slice.as.slice.stop = stop != NULL ? stop : alk_arg_none(op);
    slice.as.slice.step = step != NULL ? step : alk_arg_none(op);
    bool made =
        slice.as.slice.start != NULL && slice.as.slice.stop != NULL && slice.as.slice.step != NULL;
    return made ? new_arg(op, slice) : NULL;
}

const alk_arg *alk_arg_of_seq(alk_op *op, alk_arg_kind kind, const alk_arg *const *items,
                              size_t n) {
    if (op == NULL || alk_op_failed(op)) {
        return NULL;
    }
    bool is_dict = kind == ALK_ARG_DICT;
    if ((kind != ALK_ARG_TUPLE && kind != ALK_ARG_LIST && !is_dict) || (is_dict && n % 2 != 0)) {
        alk_op_fail(op, ALK_EINTERNAL, "alk_arg_of_seq: a %s of %zu items", alk_arg_kind_name(kind),
                    n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL || (is_dict && i % 2 == 0 && items[i]->kind != ALK_ARG_STR)) {
            /* A NULL item is a value whose making failed (or a caller's slip): say which. */
            alk_op_fail(op, ALK_EINVAL, "%s item %zu is %s", alk_arg_kind_name(kind), i,
                        items[i] == NULL ? "missing" : "not a str key");
            return NULL;
        }
    }
    const alk_arg **copy = alk__trace_alloc(op->trace, (n > 0 ? n : 1) * sizeof(*copy));
    if (copy == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(copy, items, n * sizeof(*copy));
    }
    return new_arg(op, (alk_arg){.kind = kind, .as.seq = {copy, n}});
}

/* Recursion is bounded by the tree's depth, which its decoder limited (alk_value_limits). */
const alk_arg *alk_arg_of_value(alk_op *op, const alk_value *value) {
    if (op == NULL || value == NULL || alk_op_failed(op)) {
        return NULL;
    }
    switch (value->kind) {
    case ALK_VALUE_NIL:
        return alk_arg_none(op);
    case ALK_VALUE_BOOL:
        return alk_arg_of_bool(op, value->as.boolean);
    case ALK_VALUE_INT:
        return alk_arg_of_int(op, value->as.integer);
    case ALK_VALUE_FLOAT:
        return alk_arg_of_float(op, value->as.number);
    case ALK_VALUE_STR:
        /* Shared, not copied: the tree outlives the trace. */
        return new_arg(op, (alk_arg){.kind = ALK_ARG_STR, .as.str = value->as.str.bytes});
    case ALK_VALUE_ARRAY:
    case ALK_VALUE_MAP: {
        bool is_map = value->kind == ALK_VALUE_MAP;
        size_t n = is_map ? 2 * value->as.map.len : value->as.array.len;
        const alk_arg **items = alk__trace_alloc(op->trace, (n > 0 ? n : 1) * sizeof(*items));
        for (size_t i = 0; items != NULL && i < n; i++) {
            const alk_value *item = !is_map      ? value->as.array.items[i]
                                    : i % 2 == 0 ? value->as.map.pairs[i / 2].key
                                                 : value->as.map.pairs[i / 2].value;
            items[i] = alk_arg_of_value(op, item);
        }
        return items != NULL ? alk_arg_of_seq(op, is_map ? ALK_ARG_DICT : ALK_ARG_LIST, items, n)
                             : NULL;
    }
    case ALK_VALUE_BIN:
        break;
    }
    alk_op_fail(op, ALK_EINVAL, "binary data cannot be a parameter value");
    return NULL;
}

/* ---- Identity and context --------------------------------------------------------------------
 */

alk_trace *alk_op_trace(const alk_op *op) {
    return op->trace;
}

const char *alk_op_name(const alk_op *op) {
    return op->name;
}

const char *alk_op_class(const alk_op *op) {
    return op->class_name;
}

const char *alk_op_module(const alk_op *op) {
    return op->module;
}

const alk_value *alk_op_config(const alk_op *op) {
    static const alk_value empty = {.kind = ALK_VALUE_MAP};
    return op->config != NULL ? op->config : &empty;
}

void *alk_op_plugin_state(const alk_op *op) {
    return op->body_owner.state;
}

/* ---- Building a call ---------------------------------------------------------------------------
 */

/* Names are copied: a tracer may build them in a stack buffer (torch's "a.b" targets, Keras's
 * layer names from a config it frees first). */
alk_op *alk_op_new(alk_scope *scope, const char *name, const char *module, const char *class_name,
                   const alk_value *config) {
    if (scope == NULL) {
        return NULL;
    }
    alk_op *op = alk__trace_alloc(scope->trace, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    *op = (alk_op){.trace = scope->trace, .scope = scope, .config = config};
    op->name = alk__op_strdup(op, name);
    op->module = alk__op_strdup(op, module);
    op->class_name = alk__op_strdup(op, class_name);
    return alk_op_failed(op) ? NULL : op;
}

/* The frameworks' call hygiene (alk_scope_style): false when the keyword is dropped. */
static bool keep_kwarg(alk_op *op, const char *key, const alk_arg *value) {
    if (op->scope->style == ALK_SCOPE_TORCH) {
        return strcmp(key, "inplace") != 0 && strcmp(key, "out") != 0 &&
               strcmp(key, "memory_format") != 0;
    }
    if (strcmp(key, "training") != 0) {
        return true;
    }
    if (value->kind != ALK_ARG_NONE && (value->kind != ALK_ARG_BOOL || value->as.boolean)) {
        alk_op_fail(op, ALK_ENOTSUP, "training mode is not supported (training=%s)",
                    value->kind == ALK_ARG_BOOL ? "True" : alk_arg_kind_name(value->kind));
    }
    return false;
}

void alk_op_add_arg(alk_op *op, const char *key, const alk_arg *value) {
    if (op == NULL || alk_op_failed(op)) {
        return;
    }
    if (value == NULL && key != NULL) {
        alk_op_fail(op, ALK_EINVAL, "keyword argument '%s' has no value", key);
        return;
    }
    if (value == NULL) {
        alk_op_fail(op, ALK_EINVAL, "positional argument %zu has no value", op->args.len);
        return;
    }
    if (key == NULL) {
        (void)alk__list_push(op->trace, &op->args, sizeof(value), &value);
        return;
    }
    if (keep_kwarg(op, key, value)) {
        alk__kwarg kwarg = {alk__op_strdup(op, key), value};
        if (kwarg.key != NULL) {
            (void)alk__list_push(op->trace, &op->kwargs, sizeof(kwarg), &kwarg);
        }
    }
}

void alk_op_set_weights(alk_op *op, const alk_op_weights *weights) {
    if (op != NULL) {
        op->weights = *weights;
        op->has_weights = true;
    }
}

/* ---- Arguments -------------------------------------------------------------------------------
 */

size_t alk_op_n_args(const alk_op *op) {
    return op->args.len;
}

const alk_arg *alk_op_kwarg(const alk_op *op, const char *key) {
    for (size_t i = 0; i < op->kwargs.len; i++) {
        const alk__kwarg *kwarg = &ALK__LIST_AT(&op->kwargs, alk__kwarg, i);
        if (strcmp(kwarg->key, key) == 0) {
            return kwarg->value;
        }
    }
    return NULL;
}

const alk_arg *alk_op_arg(const alk_op *op, size_t i) {
    /* Before alk_op_run binds the row's params, only positional arguments have an index. */
    if (i < op->args.len) {
        return ALK__LIST_AT(&op->args, const alk_arg *, i);
    }
    return i < op->params.n ? alk_op_kwarg(op, op->params.names[i]) : NULL;
}

/* " (name)" of parameter i for messages, or "". */
static const char *param_label(const alk_op *op, size_t i, char *buf, size_t cap) {
    buf[0] = '\0';
    if (i < op->params.n) {
        (void)snprintf(buf, cap, " (%s)", op->params.names[i]);
    }
    return buf;
}

/* Argument i, failing the op when it is missing. */
static const alk_arg *required_arg(alk_op *op, size_t i) {
    const alk_arg *arg = alk_op_failed(op) ? NULL : alk_op_arg(op, i);
    if (arg == NULL && !alk_op_failed(op)) {
        char label[80];
        alk_op_fail(op, ALK_EINVAL, "argument %zu%s is missing", i,
                    param_label(op, i, label, sizeof(label)));
    }
    return arg;
}

alk_fva *alk_op_in(alk_op *op, size_t i) {
    const alk_arg *arg = required_arg(op, i);
    if (arg == NULL) {
        return NULL;
    }
    if (arg->kind != ALK_ARG_ARRAY) {
        char label[80];
        alk_op_fail(op, ALK_EINVAL, "argument %zu%s: expected an array, got %s", i,
                    param_label(op, i, label, sizeof(label)), alk_arg_kind_name(arg->kind));
        return NULL;
    }
    return arg->as.array;
}

/* Every item is checked, also beyond `cap`: the caller learns the true count and a bad item
 * fails the op whatever the caller's capacity. */
size_t alk_op_in_list(alk_op *op, size_t i, alk_fva **ret, size_t cap) {
    const alk_arg *arg = required_arg(op, i);
    if (arg == NULL) {
        return 0;
    }
    if (arg->kind == ALK_ARG_ARRAY) {
        if (cap > 0) {
            ret[0] = arg->as.array;
        }
        return 1;
    }
    char label[80];
    if (arg->kind != ALK_ARG_LIST && arg->kind != ALK_ARG_TUPLE) {
        alk_op_fail(op, ALK_EINVAL, "argument %zu%s: expected an array or a list of arrays, got %s",
                    i, param_label(op, i, label, sizeof(label)), alk_arg_kind_name(arg->kind));
        return 0;
    }
    for (size_t k = 0; k < arg->as.seq.len; k++) {
        const alk_arg *item = arg->as.seq.items[k];
        if (item->kind != ALK_ARG_ARRAY) {
            alk_op_fail(op, ALK_EINVAL, "argument %zu%s[%zu]: expected an array, got %s", i,
                        param_label(op, i, label, sizeof(label)), k, alk_arg_kind_name(item->kind));
            return 0;
        }
        if (k < cap) {
            ret[k] = item->as.array;
        }
    }
    return arg->as.seq.len;
}

void alk_op_set_arg(alk_op *op, size_t i, const alk_arg *value) {
    if (alk_op_failed(op)) {
        return;
    }
    if (value == NULL) {
        alk_op_fail(op, ALK_EINVAL, "argument %zu: replaced by nothing", i);
    } else if (i < op->args.len) {
        ALK__LIST_AT(&op->args, const alk_arg *, i) = value;
    } else {
        /* A parameter given by keyword is replaced where it is. */
        for (size_t k = 0; i < op->params.n && k < op->kwargs.len; k++) {
            alk__kwarg *kwarg = &ALK__LIST_AT(&op->kwargs, alk__kwarg, k);
            if (strcmp(kwarg->key, op->params.names[i]) == 0) {
                kwarg->value = value;
                return;
            }
        }
        (void)required_arg(op, i);
    }
}

void alk_op_set_in(alk_op *op, size_t i, alk_fva *array) {
    alk_op_set_arg(op, i, alk_arg_of_array(op, array));
}

/* ---- Results ---------------------------------------------------------------------------------
 */

void alk_op_return(alk_op *op, const alk_arg *result) {
    if (alk_op_failed(op)) {
        return;
    }
    /* NULL without a recorded error is a handler's slip (a weight_opt passed on unchecked):
     * say so here rather than fail later without a reason. */
    if (result == NULL) {
        alk_op_fail(op, ALK_EINVAL, "result %zu is missing (NULL without an error)",
                    op->results.len);
        return;
    }
    (void)alk__list_push(op->trace, &op->results, sizeof(result), &result);
}

void alk_op_out(alk_op *op, alk_fva *result) {
    alk_op_return(op, alk_arg_of_array(op, result));
}

size_t alk_op_n_results(const alk_op *op) {
    return op != NULL ? op->results.len : 0;
}

const alk_arg *alk_op_result(const alk_op *op, size_t i) {
    return i < alk_op_n_results(op) ? ALK__LIST_AT(&op->results, const alk_arg *, i) : NULL;
}

alk_fva *alk_op_result_array(const alk_op *op, size_t i) {
    const alk_arg *result = alk_op_result(op, i);
    return result != NULL && result->kind == ALK_ARG_ARRAY ? result->as.array : NULL;
}

void alk_op_set_result(alk_op *op, size_t i, const alk_arg *result) {
    if (alk_op_failed(op)) {
        return;
    }
    if (i >= op->results.len || result == NULL) {
        alk_op_fail(op, ALK_EINVAL, "result %zu cannot be replaced: %s", i,
                    result == NULL ? "the new value is missing" : "there is no such result");
        return;
    }
    ALK__LIST_AT(&op->results, const alk_arg *, i) = result;
}
