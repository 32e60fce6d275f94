/*
 * Host services for tracers: finding the row of a layer or op (the running tracer's own table,
 * then a second-level plugin loaded on demand), the plugin a row belongs to, and the trace map
 * (alk_host_dump; output names for alk_scope_finish).
 *
 * Lookup follows the reference's maybe_load_for (spec frontends.md §1.2): the key is the first
 * dotted component of the layer's module; the frameworks' own modules ("keras", "torch",
 * "builtins") never trigger a load; a second-level plugin of group "alkaid_<framework key>" is
 * loaded at most once per generation. Unlike the reference, a plugin that failed to load is not
 * retried until the next reload, so a broken plugin costs one dlopen, not one per request.
 *
 * Thread rule: a trace map belongs to one job; tables are static and immutable; a generation's
 * on-demand entries are read under its lock.
 */
#include "plugin/op_int.h"
#include "core/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The row of `table` for (module, name): the exact module, else the longest package prefix. */
static const alk_op_def *table_find(const alk_plugin_descriptor *desc, const char *module,
                                    const char *name) {
    const alk_op_def *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; desc != NULL && i < desc->n_ops; i++) {
        const alk_op_def *def = &desc->ops[i];
        if (strcmp(def->name, name) != 0) {
            continue;
        }
        size_t len = strlen(def->module);
        if (strcmp(def->module, module) == 0) {
            return def;
        }
        if (len > best_len && strncmp(module, def->module, len) == 0 && module[len] == '.') {
            best = def;
            best_len = len;
        }
    }
    return best;
}

static bool is_framework_module(const char *base) {
    return strcmp(base, "keras") == 0 || strcmp(base, "torch") == 0 ||
           strcmp(base, "builtins") == 0;
}

int alk_host_find_op(const alk_host *host, const char *module, const char *name,
                     const alk_op_def **ret_def, alk_diag *diag) {
    const alk__loaded *tracer = host != NULL ? host->tracer : NULL;
    const alk_op_def *def = tracer != NULL ? table_find(tracer->desc, module, name) : NULL;
    if (def != NULL) {
        *ret_def = def;
        return ALK_OK;
    }
    char base[128];
    size_t n = strcspn(module, ".");
    if (n == 0 || n >= sizeof(base)) {
        return alk_diag_set(diag, ALK_EINVAL, "layer class %s: bad module name '%s'", name, module);
    }
    memcpy(base, module, n);
    base[n] = '\0';
    if (is_framework_module(base) || tracer == NULL || host->generation == NULL) {
        return alk_diag_set(diag, ALK_ENOENT, "unsupported layer %s (module %s)", name, module);
    }
    char group[160];
    (void)snprintf(group, sizeof(group), "alkaid_%s", tracer->desc->name);
    alk__loaded *loaded = NULL;
    alk_diag load_diag = {{0}};
    int rv = alk__generation_operation_plugin(host->generation, group, base, &loaded, &load_diag);
    if (rv == ALK_ENOENT) {
        return alk_diag_set(diag, ALK_ENOENT,
                            "unsupported layer %s (module %s): no %s plugin named '%s' is "
                            "installed",
                            name, module, group, base);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "layer %s needs plugin '%s', which failed to load: %s", name,
                            base, load_diag.message);
    }
    def = table_find(loaded->desc, module, name);
    if (def == NULL) {
        return alk_diag_set(diag, ALK_ENOENT,
                            "unsupported layer %s (module %s): plugin '%s' has no handler for it",
                            name, module, base);
    }
    *ret_def = def;
    return ALK_OK;
}

static bool in_table(const alk_plugin_descriptor *desc, const alk_op_def *def) {
    /* Compared as integers: the row may belong to no table at all (a tracer's own row). */
    uintptr_t p = (uintptr_t)def, first = (uintptr_t)desc->ops;
    return desc->ops != NULL && p >= first && p < first + desc->n_ops * sizeof(*def);
}

alk__owner alk__host_owner_of(const alk_host *host, const alk_op_def *def) {
    alk__owner owner = {NULL, NULL};
    if (host == NULL) {
        return owner;
    }
    if (host->tracer != NULL && in_table(host->tracer->desc, def)) {
        return (alk__owner){host->tracer->desc, host->tracer->state};
    }
    alk_generation *g = (alk_generation *)host->generation; /* only the lock is touched */
    if (g == NULL) {
        return owner;
    }
    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < g->n_entries && owner.desc == NULL; i++) {
        const alk__loaded *loaded = g->entries[i].loaded;
        if (loaded != NULL && in_table(loaded->desc, def)) {
            owner = (alk__owner){loaded->desc, loaded->state};
        }
    }
    pthread_mutex_unlock(&g->lock);
    return owner;
}

void alk__trace_map_init(alk__trace_map *map) {
    alk_vec_init(&map->entries, sizeof(alk__trace_entry));
    alk_vec_init(&map->output_names, sizeof(char *));
}

void alk__trace_map_fini(alk__trace_map *map) {
    for (size_t i = 0; i < map->entries.len; i++) {
        alk__trace_entry *e = &ALK_VEC_AT(&map->entries, alk__trace_entry, i);
        alk_free(e->name);
        alk_free(e->arrays);
    }
    for (size_t i = 0; i < map->output_names.len; i++) {
        alk_free(ALK_VEC_AT(&map->output_names, char *, i));
    }
    alk_vec_fini(&map->entries);
    alk_vec_fini(&map->output_names);
}

const alk__trace_entry *alk__trace_map_get(const alk__trace_map *map, const char *name) {
    for (size_t i = 0; i < map->entries.len; i++) {
        const alk__trace_entry *e = &ALK_VEC_AT(&map->entries, alk__trace_entry, i);
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}

int alk_host_dump(const alk_host *host, const char *name, alk_fva *const *arrays, size_t n) {
    alk_fva **copy = alk_calloc(n == 0 ? 1 : n, sizeof(*copy));
    if (copy == NULL) {
        return ALK_ENOMEM;
    }
    if (n > 0) {
        memcpy(copy, arrays, n * sizeof(*copy));
    }
    /* Like a Python dict: a name stored again replaces the old value in place. */
    alk__trace_entry *existing = (alk__trace_entry *)alk__trace_map_get(host->map, name);
    if (existing != NULL) {
        alk_free(existing->arrays);
        existing->arrays = copy;
        existing->n_arrays = n;
        return ALK_OK;
    }
    alk__trace_entry e = {alk_strdup(name), copy, n};
    int rv = e.name == NULL ? ALK_ENOMEM : alk_vec_push(&host->map->entries, &e);
    if (rv != ALK_OK) {
        alk_free(e.name);
        alk_free(copy);
    }
    return rv;
}

int alk__host_set_outputs(const alk_host *host, const char *const *names, size_t n) {
    alk_vec *out = &host->map->output_names;
    for (size_t i = 0; i < out->len; i++) {
        alk_free(ALK_VEC_AT(out, char *, i));
    }
    out->len = 0;
    for (size_t i = 0; i < n; i++) {
        if (alk__trace_map_get(host->map, names[i]) == NULL) {
            return ALK_EINVAL;
        }
        char *copy = alk_strdup(names[i]);
        int rv = copy == NULL ? ALK_ENOMEM : alk_vec_push(out, &copy);
        if (rv != ALK_OK) {
            alk_free(copy);
            return rv;
        }
    }
    return ALK_OK;
}
