/*
 * Parameters of a call (alk_op.h): binding positional arguments to the row's parameter names,
 * and the typed readers over bound arguments, then keyword arguments, then the config.
 *
 * One lookup order serves every framework: torch passes `stride` positionally or by keyword and
 * a module keeps it as an attribute, Keras keeps it in the layer config. A reader's error names
 * the key, what it expected and what it got ("layer c1 (Conv2D): strides: expected an int or 2
 * ints, got list of 3"); afterwards every reader returns its neutral value.
 *
 * Thread rule: an op belongs to its job's thread.
 */
#include "plugin/op_int.h"
#include "core/alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- Binding ---------------------------------------------------------------------------------
 */

static size_t param_index(const alk_op *op, const char *key) {
    for (size_t j = 0; j < op->params.n; j++) {
        if (strcmp(op->params.names[j], key) == 0) {
            return j;
        }
    }
    return SIZE_MAX;
}

/* Splits `text` into op->params (arena strings). */
/* Split on every run rather than cached in the row: rows are const and shared between threads,
 * and a row has a handful of names. */
static void split_params(alk_op *op, const alk_op_def *def) {
    op->params = (alk__params){0};
    const char *cursor = def->params != NULL ? def->params : "";
    alk__token token;
    size_t n = 0;
    while (alk__next_token(&cursor, false, &token) > 0) {
        n++;
    }
    const char **names = alk__trace_alloc(op->trace, (n > 0 ? n : 1) * sizeof(*names));
    cursor = def->params != NULL ? def->params : "";
    for (size_t j = 0; names != NULL && j < n; j++) {
        (void)alk__next_token(&cursor, false, &token);
        char *name = alk__trace_alloc(op->trace, token.name_len + 1);
        if (name == NULL) {
            return;
        }
        memcpy(name, token.name, token.name_len);
        name[token.name_len] = '\0';
        names[j] = name;
    }
    op->params = (alk__params){names, names != NULL ? n : 0};
}

static void check_arity(alk_op *op, const alk_op_def *def, size_t filled) {
    bool unbounded = def->max_args == ALK_OP_ANY_ARGS;
    if (filled >= def->min_args && (unbounded || filled <= def->max_args)) {
        return;
    }
    if (unbounded) {
        alk_op_fail(op, ALK_EINVAL, "takes at least %u argument%s, got %zu", def->min_args,
                    def->min_args == 1 ? "" : "s", filled);
    } else if (def->min_args == def->max_args) {
        alk_op_fail(op, ALK_EINVAL, "takes %u argument%s, got %zu", def->min_args,
                    def->min_args == 1 ? "" : "s", filled);
    } else {
        alk_op_fail(op, ALK_EINVAL, "takes %u to %u arguments, got %zu", def->min_args,
                    def->max_args, filled);
    }
}

void alk__op_bind(alk_op *op, const alk_op_def *def) {
    split_params(op, def);
    size_t filled = op->args.len;
    for (size_t k = 0; k < op->kwargs.len && !alk_op_failed(op); k++) {
        const char *key = ALK__LIST_AT(&op->kwargs, alk__kwarg, k).key;
        size_t j = param_index(op, key);
        if (j < op->args.len) {
            /* Python's "got multiple values for argument". */
            alk_op_fail(op, ALK_EINVAL, "argument '%s' is given by position and by keyword", key);
        } else if (j != SIZE_MAX) {
            filled++;
        }
    }
    if (!alk_op_failed(op)) {
        check_arity(op, def, filled);
    }
}

/* ---- Lookup ----------------------------------------------------------------------------------
 */

const alk_arg *alk_op_get(alk_op *op, const char *key) {
    if (alk_op_failed(op)) {
        return NULL;
    }
    size_t j = param_index(op, key);
    if (j < op->args.len) {
        return ALK__LIST_AT(&op->args, const alk_arg *, j);
    }
    const alk_arg *kwarg = alk_op_kwarg(op, key);
    if (kwarg != NULL) {
        return kwarg;
    }
    const alk_value *value = alk_value_get(op->config, key);
    return value != NULL ? alk_arg_of_value(op, value) : NULL;
}

/* The value of `key` unless it is absent or None. */
/* Keras configs write null for "not set" (ReLU's max_value), torch passes None for defaults:
 * both mean the reader's default. */
static const alk_arg *present(alk_op *op, const char *key) {
    const alk_arg *arg = alk_op_get(op, key);
    return arg != NULL && arg->kind != ALK_ARG_NONE ? arg : NULL;
}

bool alk_op_has(alk_op *op, const char *key) {
    return present(op, key) != NULL;
}

/* What a value is, for messages: its kind, with the text of a str and the length of a
 * sequence. */
static const char *describe(const alk_arg *arg, char *buf, size_t cap) {
    if (arg->kind == ALK_ARG_STR) {
        (void)snprintf(buf, cap, "str '%s'", arg->as.str);
    } else if (arg->kind == ALK_ARG_LIST || arg->kind == ALK_ARG_TUPLE) {
        (void)snprintf(buf, cap, "%s of %zu", alk_arg_kind_name(arg->kind), arg->as.seq.len);
    } else {
        (void)snprintf(buf, cap, "%s", alk_arg_kind_name(arg->kind));
    }
    return buf;
}

static void expected(alk_op *op, const char *key, const char *what, const alk_arg *got) {
    char buf[96];
    alk_op_fail(op, ALK_EINVAL, "%s: expected %s, got %s", key, what,
                describe(got, buf, sizeof(buf)));
}

/* ---- Scalars ---------------------------------------------------------------------------------
 */

/* Strict kinds: a float where an int belongs (2.5 units) or an int where a bool belongs is a
 * broken config, not something to round or coerce silently. */
int64_t alk_op_int(alk_op *op, const char *key, int64_t dflt) {
    const alk_arg *arg = present(op, key);
    if (arg != NULL && arg->kind != ALK_ARG_INT) {
        expected(op, key, "an int", arg);
    }
    return arg != NULL && arg->kind == ALK_ARG_INT ? arg->as.integer : dflt;
}

double alk_op_float(alk_op *op, const char *key, double dflt) {
    const alk_arg *arg = present(op, key);
    if (arg == NULL) {
        return dflt;
    }
    if (arg->kind == ALK_ARG_INT) {
        return (double)arg->as.integer;
    }
    if (arg->kind != ALK_ARG_FLOAT) {
        expected(op, key, "a number", arg);
        return dflt;
    }
    return arg->as.number;
}

bool alk_op_bool(alk_op *op, const char *key, bool dflt) {
    const alk_arg *arg = present(op, key);
    if (arg != NULL && arg->kind != ALK_ARG_BOOL) {
        expected(op, key, "a bool", arg);
    }
    return arg != NULL && arg->kind == ALK_ARG_BOOL ? arg->as.boolean : dflt;
}

const char *alk_op_str(alk_op *op, const char *key, const char *dflt) {
    const alk_arg *arg = present(op, key);
    if (arg != NULL && arg->kind != ALK_ARG_STR) {
        expected(op, key, "a str", arg);
    }
    return arg != NULL && arg->kind == ALK_ARG_STR ? arg->as.str : dflt;
}

int alk_op_enum(alk_op *op, const char *key, const char *const *names, int dflt) {
    const alk_arg *arg = present(op, key);
    if (arg == NULL) {
        return dflt;
    }
    for (int i = 0; arg->kind == ALK_ARG_STR && names[i] != NULL; i++) {
        if (strcmp(names[i], arg->as.str) == 0) {
            return i;
        }
    }
    char choices[256] = "one of";
    size_t len = strlen(choices);
    for (size_t i = 0; names[i] != NULL && len < sizeof(choices); i++) {
        int n =
            snprintf(choices + len, sizeof(choices) - len, "%s '%s'", i > 0 ? "," : "", names[i]);
        len += n > 0 ? (size_t)n : 0;
    }
    expected(op, key, choices, arg);
    return dflt;
}

/* ---- Sequences of ints -----------------------------------------------------------------------
 */

/* Copies the ints of sequence `arg` (at most `cap`); false (op failed) on a non-int item. */
static bool copy_ints(alk_op *op, const char *key, const alk_arg *arg, int64_t *ret, size_t cap) {
    for (size_t i = 0; i < arg->as.seq.len && i < cap; i++) {
        const alk_arg *item = arg->as.seq.items[i];
        if (item->kind != ALK_ARG_INT) {
            char where[160];
            (void)snprintf(where, sizeof(where), "%s[%zu]", key, i);
            expected(op, where, "an int", item);
            return false;
        }
        ret[i] = item->as.integer;
    }
    return true;
}

static bool is_seq(const alk_arg *arg) {
    return arg->kind == ALK_ARG_LIST || arg->kind == ALK_ARG_TUPLE;
}

/* `ret` holds the defaults on every error path, so a handler using it after a failure reads
 * sane values (its op has failed anyway). */
void alk_op_ints(alk_op *op, const char *key, size_t n, int64_t dflt, int64_t *ret) {
    for (size_t i = 0; i < n; i++) {
        ret[i] = dflt;
    }
    const alk_arg *arg = present(op, key);
    if (arg == NULL) {
        return;
    }
    if (arg->kind == ALK_ARG_INT) {
        for (size_t i = 0; i < n; i++) {
            ret[i] = arg->as.integer;
        }
        return;
    }
    if (!is_seq(arg) || arg->as.seq.len != n) {
        char what[64];
        (void)snprintf(what, sizeof(what), "an int or %zu ints", n);
        expected(op, key, what, arg);
        return;
    }
    if (!copy_ints(op, key, arg, ret, n)) {
        for (size_t i = 0; i < n; i++) {
            ret[i] = dflt;
        }
    }
}

size_t alk_op_int_list(alk_op *op, const char *key, int64_t *ret, size_t cap) {
    const alk_arg *arg = present(op, key);
    if (arg == NULL) {
        return SIZE_MAX;
    }
    if (arg->kind == ALK_ARG_INT && cap >= 1) {
        ret[0] = arg->as.integer;
        return 1;
    }
    if (!is_seq(arg) || arg->as.seq.len > cap) {
        char what[64];
        (void)snprintf(what, sizeof(what), "an int or a sequence of at most %zu ints", cap);
        expected(op, key, what, arg);
        return SIZE_MAX;
    }
    return copy_ints(op, key, arg, ret, cap) ? arg->as.seq.len : SIZE_MAX;
}

/* ---- Arrays ----------------------------------------------------------------------------------
 */

/* Walks nested lists to the numbers, checking every level against `shape`; writes them in C
 * order at *cursor. Returns the first offending value, or NULL when all is well. */
static const alk_arg *fill_numbers(const alk_arg *arg, const size_t *shape, size_t ndim,
                                   double *values, size_t *cursor) {
    if (ndim == 0) {
        if (arg->kind != ALK_ARG_INT && arg->kind != ALK_ARG_FLOAT) {
            return arg;
        }
        values[(*cursor)++] = arg->kind == ALK_ARG_INT ? (double)arg->as.integer : arg->as.number;
        return NULL;
    }
    if (!is_seq(arg) || arg->as.seq.len != shape[0]) {
        return arg;
    }
    for (size_t i = 0; i < arg->as.seq.len; i++) {
        const alk_arg *bad =
            fill_numbers(arg->as.seq.items[i], shape + 1, ndim - 1, values, cursor);
        if (bad != NULL) {
            return bad;
        }
    }
    return NULL;
}

alk_fva *alk__op_numbers(alk_op *op, const char *what, const alk_arg *value) {
    if (alk_op_failed(op)) {
        return NULL;
    }
    /* The shape follows the first item of every level; fill_numbers checks the rest. */
    size_t shape[ALK_FVA_MAX_DIM];
    size_t ndim = 0;
    size_t size = 1;
    for (const alk_arg *a = value; is_seq(a); a = a->as.seq.items[0]) {
        if (ndim == ALK_FVA_MAX_DIM || !alk_mul_size(size, a->as.seq.len, &size) ||
            size > ALK_FVA_MAX_ELEMENTS) {
            alk_op_fail(op, ALK_ELIMIT, "%s: more than %d dimensions or %zu numbers", what,
                        ALK_FVA_MAX_DIM, (size_t)ALK_FVA_MAX_ELEMENTS);
            return NULL;
        }
        shape[ndim++] = a->as.seq.len;
        if (a->as.seq.len == 0) {
            break;
        }
    }
    double *values = alk_malloc((size > 0 ? size : 1) * sizeof(double));
    if (values == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    size_t cursor = 0;
    const alk_arg *bad = fill_numbers(value, shape, ndim, values, &cursor);
    alk_fva *array = NULL;
    if (bad != NULL) {
        expected(op, what, "a number or rectangular nested lists of numbers", bad);
    } else {
        array = alk_fva_numbers(op->trace, ndim, shape, values);
    }
    alk_free(values);
    return array;
}

alk_fva *alk_op_array(alk_op *op, const char *key) {
    const alk_arg *arg = alk_op_get(op, key);
    if (alk_op_failed(op)) {
        return NULL;
    }
    if (arg == NULL) {
        alk_op_fail(op, ALK_EINVAL, "%s: missing (expected an array)", key);
        return NULL;
    }
    if (arg->kind == ALK_ARG_ARRAY) {
        return arg->as.array;
    }
    return alk__op_numbers(op, key, arg);
}

/* ---- Index keys and axis moves ---------------------------------------------------------------
 */

bool alk_op_slice_bounds(alk_op *op, const alk_arg *slice, int64_t ret[3]) {
    const alk_arg *bounds[3] = {slice->as.slice.start, slice->as.slice.stop, slice->as.slice.step};
    int64_t values[3];
    for (int i = 0; i < 3; i++) {
        const alk_arg *b = bounds[i];
        /* INT32_MIN is ALK_FV_NONE, the tracing API's "omitted": a bound must not collide. */
        if (b->kind == ALK_ARG_INT && b->as.integer > INT32_MIN && b->as.integer <= INT32_MAX) {
            values[i] = b->as.integer;
        } else if (b->kind == ALK_ARG_NONE) {
            values[i] = ALK_FV_NONE;
        } else {
            alk_op_fail(op, ALK_EINVAL, "a slice bound must be an int or None, got %s",
                        alk_arg_kind_name(b->kind));
            return false;
        }
    }
    if (values[2] == 0) {
        alk_op_fail(op, ALK_EINVAL, "slice step cannot be zero");
        return false;
    }
    memcpy(ret, values, sizeof(values));
    return true;
}

static bool index_item(alk_op *op, const alk_arg *key, alk_index *ret) {
    int64_t bounds[3];
    switch (key->kind) {
    case ALK_ARG_INT:
        *ret = ALK_AT(key->as.integer);
        return true;
    case ALK_ARG_NONE:
        *ret = ALK_NEWAXIS;
        return true;
    case ALK_ARG_ELLIPSIS:
        *ret = ALK_ELLIPSIS;
        return true;
    case ALK_ARG_SLICE:
        if (!alk_op_slice_bounds(op, key, bounds)) {
            return false;
        }
        *ret = ALK_SLICE(bounds[0], bounds[1], bounds[2]);
        return true;
    default:
        alk_op_fail(op, ALK_ENOTSUP,
                    "indexing with a %s is not supported (ints, slices, None and ... are: no "
                    "fancy indexing)",
                    alk_arg_kind_name(key->kind));
        return false;
    }
}

void alk_op_index(alk_op *op, alk_fva *x, const alk_arg *const *items, size_t n) {
    /* Each axis takes at most one int or slice; None and ... add items but no axes. */
    enum { MAX_ITEMS = 2 * ALK_FVA_MAX_DIM };
    alk_index index[MAX_ITEMS];
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (n > MAX_ITEMS) {
        alk_op_fail(op, ALK_EINVAL, "an index of %zu items (at most %d)", n, MAX_ITEMS);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!index_item(op, items[i], &index[i])) {
            return;
        }
    }
    alk_op_out(op, alk_fva_index(op->trace, x, index, n));
}

/* Axis `key`[i] of `ndim`, counted from the end when negative; fails the op when out of range or
 * already in `taken`, which it then marks. */
static bool take_axis(alk_op *op, const char *key, int64_t axis, size_t ndim, bool *taken,
                      size_t *ret) {
    int64_t n = (int64_t)ndim;
    if (axis < -n || axis >= n) {
        alk_op_fail(op, ALK_EINVAL, "%s: axis %" PRId64 " is out of range for %zu axes", key, axis,
                    ndim);
        return false;
    }
    size_t a = (size_t)(axis < 0 ? axis + n : axis);
    if (taken[a]) {
        alk_op_fail(op, ALK_EINVAL, "%s: axis %zu appears twice", key, a);
        return false;
    }
    taken[a] = true;
    *ret = a;
    return true;
}

void alk_op_moveaxis(alk_op *op, alk_fva *x) {
    int64_t source[ALK_FVA_MAX_DIM], destination[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "source", source, ALK_FVA_MAX_DIM);
    size_t n_destination = alk_op_int_list(op, "destination", destination, ALK_FVA_MAX_DIM);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (n == SIZE_MAX || n != n_destination) {
        alk_op_fail(op, ALK_EINVAL, "source and destination must have the same number of axes");
        return;
    }
    size_t ndim = alk_fva_ndim(x);
    bool moved[ALK_FVA_MAX_DIM] = {false}, placed[ALK_FVA_MAX_DIM] = {false};
    int perm[ALK_FVA_MAX_DIM];
    for (size_t i = 0; i < n; i++) {
        size_t from, to;
        if (!take_axis(op, "source", source[i], ndim, moved, &from) ||
            !take_axis(op, "destination", destination[i], ndim, placed, &to)) {
            return;
        }
        perm[to] = (int)from;
    }
    /* numpy's order: the axes that stay keep their order in the places left free. */
    size_t next = 0;
    for (size_t d = 0; d < ndim; d++) {
        if (placed[d]) {
            continue;
        }
        while (moved[next]) {
            next++;
        }
        perm[d] = (int)next++;
    }
    alk_op_out(op, alk_fva_transpose(op->trace, x, perm));
}
