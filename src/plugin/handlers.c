/*
 * Host services for plugins: the handler registries of second-level plugins, handler lookup
 * with on-demand loading, and the trace map a tracer fills (alk_host_dump, alk_host_set_outputs).
 *
 * Lookup follows the reference's maybe_load_for (spec frontends.md §1.2): the key is the first
 * dotted component of the layer's module; the frameworks' own modules ("keras", "torch",
 * "builtins") never trigger a load; a second-level plugin is loaded at most once per generation.
 * Unlike the reference, a plugin that failed to load is not retried until the next reload, so a
 * broken plugin costs one dlopen, not one per request.
 *
 * Thread rule: a trace map belongs to one job; registries are filled once, before their plugin
 * is published to other threads, and only read afterwards.
 */
#include "plugin/plugin_int.h"
#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

int alk_handlers_add(alk_handler_registry *registry, const char *module, const char *class_name,
                     alk_op_handler handler) {
    if (module == NULL || class_name == NULL || handler == NULL) {
        return ALK_EINVAL;
    }
    for (size_t i = 0; i < registry->len; i++) {
        if (strcmp(registry->items[i].module, module) == 0 &&
            strcmp(registry->items[i].class_name, class_name) == 0) {
            return ALK_EINVAL;
        }
    }
    void *items = registry->items;
    int rv = alk_grow(&items, &registry->cap, sizeof(alk__handler), registry->len + 1);
    registry->items = items;
    if (rv != ALK_OK) {
        return rv;
    }
    alk__handler h = {alk_strdup(module), alk_strdup(class_name), handler};
    if (h.module == NULL || h.class_name == NULL) {
        alk_free(h.module);
        alk_free(h.class_name);
        return ALK_ENOMEM;
    }
    registry->items[registry->len++] = h;
    return ALK_OK;
}

void alk__handlers_fini(alk_handler_registry *registry) {
    for (size_t i = 0; i < registry->len; i++) {
        alk_free(registry->items[i].module);
        alk_free(registry->items[i].class_name);
    }
    alk_free(registry->items);
    *registry = (alk_handler_registry){0};
}

static bool is_framework_module(const char *base) {
    return strcmp(base, "keras") == 0 || strcmp(base, "torch") == 0 ||
           strcmp(base, "builtins") == 0;
}

int alk_host_find_handler(const alk_host *host, const char *group, const char *module,
                          const char *class_name, alk_op_handler *ret_handler, void **ret_state,
                          alk_diag *diag) {
    char base[128];
    size_t n = strcspn(module, ".");
    if (n == 0 || n >= sizeof(base)) {
        return alk_diag_set(diag, ALK_EINVAL, "layer class %s: bad module name '%s'", class_name,
                            module);
    }
    memcpy(base, module, n);
    base[n] = '\0';
    if (is_framework_module(base)) {
        return alk_diag_set(diag, ALK_ENOENT, "unsupported layer %s (module %s)", class_name,
                            module);
    }
    alk__loaded *loaded = NULL;
    alk_diag load_diag = {{0}};
    int rv = alk__generation_operation_plugin(host->generation, group, base, &loaded, &load_diag);
    if (rv == ALK_ENOENT) {
        return alk_diag_set(diag, ALK_ENOENT,
                            "unsupported layer %s (module %s): no %s plugin named '%s' is "
                            "installed",
                            class_name, module, group, base);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "layer %s needs plugin '%s', which failed to load: %s",
                            class_name, base, load_diag.message);
    }
    for (size_t i = 0; i < loaded->handlers.len; i++) {
        const alk__handler *h = &loaded->handlers.items[i];
        if (strcmp(h->module, module) == 0 && strcmp(h->class_name, class_name) == 0) {
            *ret_handler = h->fn;
            *ret_state = loaded->state;
            return ALK_OK;
        }
    }
    return alk_diag_set(diag, ALK_ENOENT,
                        "unsupported layer %s (module %s): plugin '%s' has no handler for it",
                        class_name, module, base);
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
    if (host->on_trace != NULL) {
        host->on_trace(host->on_trace_ctx, name);
    }
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

int alk_host_set_outputs(const alk_host *host, const char *const *names, size_t n) {
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
