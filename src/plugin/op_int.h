/*
 * Private structures of the handler kit (alk_op.h), shared by op.c (the call object), op_params.c
 * (binding and readers), op_weights.c (weights by role), op_table.c (table and layout grammar)
 * and scope.c (scopes, dumps, alk_op_run).
 *
 * Everything an op or a scope holds lives in the trace's arena (alk__trace_alloc): a failed
 * allocation is the trace's sticky ENOMEM and the caller sees NULL, like every tracing call.
 */
#ifndef ALK_PLUGIN_OP_INT_H
#define ALK_PLUGIN_OP_INT_H

#include "plugin/alk_op.h"
#include "plugin/plugin_int.h"
#include "trace/trace_int.h" /* alk__trace_alloc, alk__trace_prefix_error */

/* A growable array in the trace arena (growth abandons the old block to the arena). */
typedef struct alk__list {
    void *items;
    size_t len;
    size_t cap;
} alk__list;

#define ALK__LIST_AT(list, type, index) (((type *)(list)->items)[index])

/* Appends a copy of `elem` (elem_size bytes); false on ENOMEM (recorded in the trace). */
bool alk__list_push(alk_trace *trace, alk__list *list, size_t elem_size, const void *elem);

typedef struct alk__kwarg {
    const char *key;
    const alk_arg *value;
} alk__kwarg;

/* A weight read or replaced during the call: `array` NULL means "the layer has none". */
typedef struct alk__weight {
    const char *role;
    alk_fva *array;
} alk__weight;

/* One `#N` rename counter of a scope (an open-addressing hash slot; name NULL = empty). */
typedef struct alk__rename {
    const char *name;
    uint64_t hash;
    size_t uses;
} alk__rename;

struct alk_scope {
    const alk_host *host;
    alk_trace *trace;
    alk_scope_style style;
    const char *prefix;
    bool nested; /* made by alk_scope_child */
    alk_activation_fn *activation;
    alk__rename *renames; /* capacity a power of two, at most 3/4 full */
    size_t n_renames;
    size_t renames_cap;
};

/* The plugin a row belongs to: its state and hooks (NULL desc: a row of no plugin's table). */
typedef struct alk__owner {
    const alk_plugin_descriptor *desc;
    void *state;
} alk__owner;

/* The parameter names of a row's `params`, split. */
typedef struct alk__params {
    const char **names;
    size_t n;
} alk__params;

struct alk_op {
    alk_trace *trace;
    alk_scope *scope;
    const char *name;
    const char *module;
    const char *class_name;
    const alk_value *config;
    alk__list args;   /* const alk_arg * */
    alk__list kwargs; /* alk__kwarg */
    /* The row alk_op_run runs (its weight layout and flags hold for the whole call) and the
     * row whose body runs now (a delegate's): parameters, arity and plugin state follow it. */
    const alk_op_def *row;
    const alk_op_def *body;
    alk__owner body_owner;
    alk__params params;
    unsigned delegate_depth;
    alk_op_weights weights;
    bool has_weights;
    alk__list weight_cache; /* alk__weight: overrides and decoded weights */
    alk__list results;      /* const alk_arg * */
    const char *dump_base;  /* "<prefix><renamed name>/", made on the first dump */
    bool error_prefixed;    /* the trace's error came from alk_op_fail, already prefixed */
};

/* Copies `s` into the arena (NULL on ENOMEM). */
char *alk__op_strdup(alk_op *op, const char *s);

/* Splits `params` of `def` into op->params and checks the call against it: no parameter given
 * twice, the arity within min_args..max_args. Fails the op on a mismatch (op_params.c). */
void alk__op_bind(alk_op *op, const alk_op_def *def);

/* One token of a `params` or `weights` string: `name`, optionally `name:key` / `name:!key`. */
typedef struct alk__token {
    const char *name;
    size_t name_len;
    const char *key; /* NULL: unconditional */
    size_t key_len;
    bool negated; /* `:!key` */
} alk__token;

/* Reads the next space-separated token at *cursor (op_table.c): 1 and the token, 0 at the end,
 * -1 for a malformed token (a character outside [A-Za-z0-9_], an empty part, or a condition
 * where `conditions` is false). */
int alk__next_token(const char **cursor, bool conditions, alk__token *ret_token);

/* Whether `token`'s name is `name`. */
bool alk__token_is(const alk__token *token, const char *name);

/* Nested lists of numbers (or one number) as a numeric array; `what` names the value in the
 * error when the lists are ragged or hold anything else (op_params.c). */
alk_fva *alk__op_numbers(alk_op *op, const char *what, const alk_arg *value);

/* The plugin whose table holds `def` (the running tracer's, or a loaded second-level plugin's
 * in the host's generation); {NULL, NULL} when none does (host.c). */
alk__owner alk__host_owner_of(const alk_host *host, const alk_op_def *def);

#endif
