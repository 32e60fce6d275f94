/*
 * Scopes and the running of ops (alk_op.h): trace-map naming with `#N` renames for both styles
 * (spec frontends.md §1.3), the uniform steps of alk_op_run, delegation, and a model level's
 * last step (alk_scope_finish).
 *
 * alk_op_run is the one place that knows the order of a call, like knot-resolver's
 * RESUME_LAYERS: bind and check the arguments, before_op, the handler, the `post_call` dump, the
 * activation, after_op, the `final` dump; then the error, if any, gets the layer's prefix.
 * Handlers and hooks only record errors; they never check them.
 *
 * Rename counters live in a small open-addressing table per scope (a model level can have
 * thousands of layers).
 *
 * Thread rule: a scope and its ops belong to their job's thread.
 */
#include "plugin/op_int.h"

#include <stdio.h>
#include <string.h>

/* ---- Scopes ----------------------------------------------------------------------------------
 */

static alk_scope *make_scope(const alk_host *host, alk_trace *trace, alk_scope_style style,
                             const char *prefix, size_t prefix_len) {
    alk_scope *scope = alk__trace_alloc(trace, sizeof(*scope));
    char *copy = alk__trace_alloc(trace, prefix_len + 1);
    if (scope == NULL || copy == NULL) {
        return NULL;
    }
    memcpy(copy, prefix, prefix_len);
    copy[prefix_len] = '\0';
    *scope = (alk_scope){.host = host, .trace = trace, .style = style, .prefix = copy};
    return scope;
}

alk_scope *alk_scope_new(const alk_host *host, alk_trace *trace, alk_scope_style style,
                         const char *prefix) {
    return make_scope(host, trace, style, prefix, strlen(prefix));
}

alk_scope *alk_scope_child(alk_scope *parent, const char *name) {
    const char *unique = parent != NULL ? alk_scope_unique(parent, name) : NULL;
    if (unique == NULL) {
        return NULL;
    }
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s%s/", parent->prefix, unique);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        (void)alk_trace_fail(parent->trace, ALK_ELIMIT, "model %s: the nested name is too long",
                             name);
        return NULL;
    }
    alk_scope *child = make_scope(parent->host, parent->trace, parent->style, buf, (size_t)n);
    if (child != NULL) {
        child->nested = true;
        child->activation = parent->activation;
    }
    return child;
}

void alk_scope_set_activation(alk_scope *scope, alk_activation_fn *fn) {
    if (scope != NULL) {
        scope->activation = fn;
    }
}

const char *alk_scope_prefix(const alk_scope *scope) {
    return scope->prefix;
}

static uint64_t hash_name(const char *name) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ull;
    }
    return h;
}

/* The counter slot of `name` (an empty slot when it has none). */
static alk__rename *rename_slot(alk__rename *slots, size_t cap, const char *name, uint64_t hash) {
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].name != NULL && (slots[i].hash != hash || strcmp(slots[i].name, name) != 0)) {
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

/* Keeps the table at most 3/4 full; false on ENOMEM. */
static bool rename_reserve(alk_scope *scope) {
    if (4 * (scope->n_renames + 1) <= 3 * scope->renames_cap) {
        return true;
    }
    size_t cap = scope->renames_cap == 0 ? 16 : 2 * scope->renames_cap;
    alk__rename *slots = alk__trace_alloc(scope->trace, cap * sizeof(*slots));
    if (slots == NULL) {
        return false;
    }
    memset(slots, 0, cap * sizeof(*slots));
    for (size_t i = 0; i < scope->renames_cap; i++) {
        const alk__rename *old = &scope->renames[i];
        if (old->name != NULL) {
            *rename_slot(slots, cap, old->name, old->hash) = *old;
        }
    }
    scope->renames = slots;
    scope->renames_cap = cap;
    return true;
}

const char *alk_scope_unique(alk_scope *scope, const char *name) {
    if (scope == NULL || !rename_reserve(scope)) {
        return NULL;
    }
    uint64_t hash = hash_name(name);
    alk__rename *slot = rename_slot(scope->renames, scope->renames_cap, name, hash);
    size_t len = strlen(name);
    if (slot->name == NULL) {
        /* First use: the plain name (the reference's MaybeRename). */
        char *copy = alk__trace_alloc(scope->trace, len + 1);
        if (copy == NULL) {
            return NULL;
        }
        memcpy(copy, name, len + 1);
        *slot = (alk__rename){copy, hash, 0};
        scope->n_renames++;
        return copy;
    }
    slot->uses++;
    char *renamed = alk__trace_alloc(scope->trace, len + 24);
    if (renamed != NULL) {
        (void)snprintf(renamed, len + 24, "%s#%zu", name, slot->uses);
    }
    return renamed;
}

/* Records `arrays` as the trace-map entry `name`; a failure is sticky in the trace. */
static void record(alk_scope *scope, const char *name, alk_fva *const *arrays, size_t n) {
    if (alk_trace_error(scope->trace) != ALK_OK || scope->host == NULL) {
        return;
    }
    int rv = alk_host_dump(scope->host, name, arrays, n);
    if (rv != ALK_OK) {
        (void)alk_trace_fail(scope->trace, rv, "recording %s in the trace map: %s", name,
                             alk_strerror(rv));
    }
}

/* Records `arrays` under prefix + key. */
static void record_prefixed(alk_scope *scope, const char *prefix, const char *key,
                            alk_fva *const *arrays, size_t n) {
    char name[1024];
    int len = snprintf(name, sizeof(name), "%s%s", prefix, key);
    if (len < 0 || (size_t)len >= sizeof(name)) {
        (void)alk_trace_fail(scope->trace, ALK_ELIMIT, "trace-map name %s%s is too long", prefix,
                             key);
        return;
    }
    record(scope, name, arrays, n);
}

void alk_scope_dump(alk_scope *scope, const char *key, alk_fva *const *arrays, size_t n) {
    if (scope != NULL) {
        record_prefixed(scope, scope->prefix, key, arrays, n);
    }
}

int alk_scope_finish(alk_scope *scope, const char *key, alk_fva *const *outputs, size_t n,
                     alk_diag *diag) {
    if (scope == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    alk_trace *t = scope->trace;
    for (size_t i = 0; i < n && alk_trace_error(t) == ALK_OK; i++) {
        if (outputs[i] == NULL) {
            (void)alk_trace_fail(t, ALK_EINVAL, "output %zu of the model is missing", i);
        }
    }
    record_prefixed(scope, scope->nested ? scope->prefix : "", key, outputs, n);
    if (!scope->nested && alk_trace_error(t) == ALK_OK && scope->host != NULL) {
        int rv = alk__host_set_outputs(scope->host, &key, 1);
        if (rv != ALK_OK) {
            (void)alk_trace_fail(t, rv, "naming the outputs %s: %s", key, alk_strerror(rv));
        }
    }
    int err = alk_trace_error(t);
    return err != ALK_OK ? alk_diag_set(diag, err, "%s", alk_trace_message(t)) : ALK_OK;
}

/* ---- Running ops -----------------------------------------------------------------------------
 */

/* The dump base of `op`: its scope prefix + its renamed name + "/", made once, in call order. */
static const char *dump_base(alk_op *op) {
    if (op->dump_base != NULL || alk_op_failed(op)) {
        return op->dump_base;
    }
    char *name = alk__op_strdup(op, op->name);
    if (name == NULL) {
        return NULL;
    }
    /* torch: a module's qualified target "block.conv" is dumped as "block/conv". */
    for (char *p = name; op->scope->style == ALK_SCOPE_TORCH && *p != '\0'; p++) {
        *p = *p == '.' ? '/' : *p;
    }
    const char *unique = alk_scope_unique(op->scope, name);
    if (unique == NULL) {
        return NULL;
    }
    size_t len = strlen(op->scope->prefix) + strlen(unique) + 2;
    char *base = alk__trace_alloc(op->trace, len);
    if (base != NULL) {
        (void)snprintf(base, len, "%s%s/", op->scope->prefix, unique);
    }
    op->dump_base = base;
    return base;
}

void alk_op_dump(alk_op *op, const char *key, alk_fva *array) {
    const char *base = dump_base(op);
    if (base != NULL && array == NULL) {
        alk_op_fail(op, ALK_EINVAL, "dump %s: the array is missing", key);
    } else if (base != NULL) {
        record_prefixed(op->scope, base, key, &array, 1);
    }
}

/* Dumps the op's array results as `key`; `all_or_nothing`: only when every result is one. */
static void dump_results(alk_op *op, const char *key, bool all_or_nothing) {
    const char *base = dump_base(op);
    size_t n_results = op->results.len;
    alk_fva **arrays =
        base != NULL ? alk__trace_alloc(op->trace, (n_results + 1) * sizeof(*arrays)) : NULL;
    size_t n = 0;
    for (size_t i = 0; arrays != NULL && i < n_results; i++) {
        const alk_arg *r = ALK__LIST_AT(&op->results, const alk_arg *, i);
        if (r->kind == ALK_ARG_ARRAY) {
            arrays[n++] = r->as.array;
        } else if (all_or_nothing) {
            return;
        }
    }
    if (n > 0) {
        record_prefixed(op->scope, base, key, arrays, n);
    }
}

/* Makes `def` the running body: its parameters bound, its plugin's state visible. */
static void enter_body(alk_op *op, const alk_op_def *def, alk__owner owner) {
    op->body = def;
    op->body_owner = owner;
    alk__op_bind(op, def);
}

static void call_body(alk_op *op) {
    if (!alk_op_failed(op)) {
        op->body->fn(op, op->body->arg);
    }
}

/* The activation step (frontends.md §2.1 step 7): one array result, mapped by the scope. */
static void activate(alk_op *op) {
    alk_activation_fn *fn = op->scope->activation;
    if (fn == NULL || (op->row->flags & ALK_OP_OWN_ACTIVATION) || alk_op_failed(op)) {
        return;
    }
    const alk_arg *x = alk_op_result(op, 0);
    if (op->results.len != 1 || x->kind != ALK_ARG_ARRAY) {
        alk_op_fail(op, ALK_EINVAL,
                    "the activation step needs one array result, got %zu result(s); a row "
                    "returning several must own its activation (ALK_OP_OWN_ACTIVATION)",
                    op->results.len);
        return;
    }
    alk_op_set_result(op, 0, alk_arg_of_array(op, fn(op, x->as.array)));
}

int alk_op_run(alk_op *op, const alk_op_def *def) {
    if (op == NULL) {
        return ALK_ENOMEM; /* alk_op_new failed: the trace holds the reason */
    }
    if (alk_op_failed(op)) {
        return alk_trace_error(op->trace);
    }
    if (def == NULL || def->fn == NULL) {
        alk_op_fail(op, ALK_EINTERNAL, "alk_op_run without a row to run");
        return alk_trace_error(op->trace);
    }
    op->row = def;
    op->error_prefixed = false;
    alk__owner owner = alk__host_owner_of(op->scope->host, def);
    const alk_plugin_descriptor *hooks = owner.desc;
    (void)dump_base(op); /* the rename happens in call order, before any dump */
    enter_body(op, def, owner);
    if (hooks != NULL && hooks->before_op != NULL && !(def->flags & ALK_OP_OWN_IQ) &&
        !alk_op_failed(op)) {
        hooks->before_op(op);
    }
    call_body(op);
    if (!alk_op_failed(op) && op->results.len == 0) {
        alk_op_fail(op, ALK_EINVAL, "the handler produced no result");
    }
    if (op->scope->style == ALK_SCOPE_KERAS) {
        dump_results(op, "post_call", false);
    }
    activate(op);
    if (hooks != NULL && hooks->after_op != NULL && !(def->flags & ALK_OP_OWN_OQ) &&
        !alk_op_failed(op)) {
        hooks->after_op(op);
    }
    dump_results(op, "final", op->scope->style == ALK_SCOPE_TORCH);
    int err = alk_trace_error(op->trace);
    if (err != ALK_OK && !op->error_prefixed) {
        alk__trace_prefix_error(op->trace, "layer %s (%s): ", op->name, op->class_name);
    }
    return err;
}

void alk_op_delegate(alk_op *op, const char *module, const char *name) {
    enum { MAX_DEPTH = 8 };
    if (alk_op_failed(op)) {
        return;
    }
    if (op->delegate_depth >= MAX_DEPTH) {
        alk_op_fail(op, ALK_EINVAL, "delegating to %s %s: more than %d nested delegations", module,
                    name, MAX_DEPTH);
        return;
    }
    const alk_op_def *def = NULL;
    alk_diag diag = {{0}};
    int rv = alk_host_find_op(op->scope->host, module, name, &def, &diag);
    if (rv != ALK_OK) {
        alk_op_fail(op, rv, "delegating: %s", diag.message);
        return;
    }
    /* The body runs with its own parameters and plugin state; the call's row (weights layout,
     * flags, dumps) stays the outer one. */
    const alk_op_def *body = op->body;
    alk__owner body_owner = op->body_owner;
    alk__params params = op->params;
    op->delegate_depth++;
    enter_body(op, def, alk__host_owner_of(op->scope->host, def));
    call_body(op);
    op->delegate_depth--;
    op->body = body;
    op->body_owner = body_owner;
    op->params = params;
}
