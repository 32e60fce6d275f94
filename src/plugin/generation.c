/*
 * Plugin generations (see registry.h).
 *
 * Building a generation scans the plugin directories for manifests (sorted by file name, so the
 * order is deterministic), loads every top-level tracer at once and records second-level
 * plugins as on-demand. A plugin whose library file is unchanged since the previous generation
 * is shared with it (one more reference) rather than loaded again; a changed one is loaded anew
 * (from a private copy, see loader.c) while the old code stays mapped for the old generation.
 *
 * A daemon converts in worker processes, which load on-demand plugins into their own generations;
 * what they report is noted on the daemon's generation (alk_generation_note_loaded) so that its
 * listing tells the truth, without loading anything into the daemon.
 *
 * Thread rule: everything but the on-demand state is immutable after the build; on-demand loads,
 * notes and the plugin snapshot take the generation's lock. Reference counts are atomic.
 */
#include "plugin/plugin_int.h"
#include "core/alloc.h"
#include "core/vec.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ullong next_generation_id = 1;

static int is_manifest(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return n > 7 && strcmp(d->d_name + n - 7, ".plugin") == 0 && d->d_name[0] != '.';
}

static bool disabled(const alk_plugin_config *config, const char *name) {
    for (size_t i = 0; i < config->n_disabled; i++) {
        if (strcmp(config->disabled[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* The entry of `previous` loaded from the same manifest and unchanged library, if any. */
static alk__loaded *reusable(const alk_generation *previous, const alk_manifest *m) {
    if (previous == NULL) {
        return NULL;
    }
    alk__file_id now;
    if (!alk__file_id_of(m->library, &now)) {
        return NULL;
    }
    alk__loaded *found = NULL;
    pthread_mutex_lock((pthread_mutex_t *)&previous->lock);
    for (size_t i = 0; i < previous->n_entries && found == NULL; i++) {
        const alk__entry *e = &previous->entries[i];
        const alk__file_id *then = e->loaded != NULL ? &e->loaded->file_id : NULL;
        if (then != NULL && strcmp(e->manifest.path, m->path) == 0 &&
            strcmp(e->loaded->library, m->library) == 0 && then->dev == now.dev &&
            then->ino == now.ino && then->size == now.size && then->mtime_ns == now.mtime_ns) {
            found = alk__loaded_ref(e->loaded);
        }
    }
    pthread_mutex_unlock((pthread_mutex_t *)&previous->lock);
    return found;
}

/* Fills the listing strings of `e` from its manifest and descriptor. */
static int describe(alk__entry *e, const char *error) {
    const alk_plugin_descriptor *d = e->loaded != NULL ? e->loaded->desc : NULL;
    e->info.group = e->manifest.group;
    e->info.name = e->manifest.name;
    e->info.library = e->manifest.library;
    e->info.manifest = e->manifest.path;
    e->info.abi_version = d != NULL ? d->abi_version : e->manifest.abi;
    e->info.version = d != NULL ? d->version : NULL;
    if (error != NULL) {
        e->info.error = alk_strdup(error);
        if (e->info.error == NULL) {
            return ALK_ENOMEM;
        }
    }
    return ALK_OK;
}

/* Loads or shares one manifest's plugin into a new entry appended to `entries`. */
static int add_entry(alk_vec *entries, alk_manifest *m, const alk_generation *previous) {
    alk__entry e = {.manifest = *m};
    *m = (alk_manifest){0};
    alk_diag diag = {{0}};
    const char *error = NULL;
    for (size_t i = 0; i < entries->len; i++) {
        const alk__entry *other = &ALK_VEC_AT(entries, alk__entry, i);
        if (strcmp(other->manifest.name, e.manifest.name) == 0 &&
            strcmp(other->manifest.group, e.manifest.group) == 0) {
            (void)snprintf(diag.message, sizeof(diag.message),
                           "duplicate: plugin '%s' of group %s is already provided by %s",
                           e.manifest.name, e.manifest.group, other->manifest.path);
            error = diag.message;
        }
    }
    int rv = ALK_OK;
    if (error == NULL && !alk__group_known(e.manifest.group)) {
        (void)snprintf(diag.message, sizeof(diag.message),
                       "%s: unknown group '%s' (known: %s, %s, %s)", e.manifest.path,
                       e.manifest.group, ALK_GROUP_TRACER, ALK_GROUP_KERAS, ALK_GROUP_TORCH);
        error = diag.message;
    } else if (error == NULL && alk__group_is_operation(e.manifest.group)) {
        e.info.state = ALK_PLUGIN_ON_DEMAND;
        e.loaded = reusable(previous, &e.manifest);
    } else if (error == NULL) {
        e.loaded = reusable(previous, &e.manifest);
        if (e.loaded == NULL) {
            rv = alk__loaded_open(&e.manifest, &e.loaded, &diag);
        }
        error = rv == ALK_EPLUGIN ? diag.message : NULL;
    }
    if (rv == ALK_ENOMEM) {
        alk_manifest_fini(&e.manifest);
        return rv;
    }
    e.info.state = error != NULL      ? ALK_PLUGIN_REFUSED
                   : e.loaded != NULL ? ALK_PLUGIN_LOADED
                                      : ALK_PLUGIN_ON_DEMAND;
    rv = describe(&e, error);
    if (rv == ALK_OK) {
        rv = alk_vec_push(entries, &e);
    }
    if (rv != ALK_OK) {
        alk__loaded_unref(e.loaded);
        alk_free((char *)e.info.error);
        alk_manifest_fini(&e.manifest);
    }
    return rv;
}

/* Adds an entry for a manifest that cannot even be read. */
static int add_unreadable(alk_vec *entries, const char *path, const char *error) {
    alk__entry e = {0};
    e.manifest.path = alk_strdup(path);
    e.manifest.group = alk_strdup("?");
    e.manifest.name = alk_strdup("?");
    e.manifest.library = alk_strdup("?");
    int rv = e.manifest.path && e.manifest.group && e.manifest.name && e.manifest.library
                 ? describe(&e, error)
                 : ALK_ENOMEM;
    e.info.state = ALK_PLUGIN_REFUSED;
    if (rv == ALK_OK) {
        rv = alk_vec_push(entries, &e);
    }
    if (rv != ALK_OK) {
        alk_free((char *)e.info.error);
        alk_manifest_fini(&e.manifest);
    }
    return rv;
}

static int scan_dir(const char *dir, const alk_plugin_config *config,
                    const alk_generation *previous, alk_vec *entries) {
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_manifest, alphasort);
    if (n < 0) {
        return ALK_OK; /* a missing directory is simply empty */
    }
    int rv = ALK_OK;
    for (int i = 0; i < n; i++) {
        char path[4096];
        (void)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        alk_manifest m;
        alk_diag diag = {{0}};
        int mrv = rv == ALK_OK ? alk_manifest_read(path, &m, &diag) : rv;
        if (rv != ALK_OK) {
            /* skip: an earlier manifest ran out of memory */
        } else if (mrv == ALK_ENOMEM) {
            rv = mrv;
        } else if (mrv != ALK_OK) {
            rv = add_unreadable(entries, path, diag.message);
        } else if (disabled(config, m.name)) {
            alk_manifest_fini(&m);
        } else {
            rv = add_entry(entries, &m, previous);
        }
        free(names[i]); /* scandir allocates with the C library */
    }
    free(names);
    return rv;
}

static void free_entries(alk__entry *entries, size_t n) {
    for (size_t i = 0; i < n; i++) {
        alk__loaded_unref(entries[i].loaded);
        alk_free((char *)entries[i].info.error);
        alk_free(entries[i].lazy_error);
        alk_free(entries[i].worker_version);
        alk_manifest_fini(&entries[i].manifest);
    }
    alk_free(entries);
}

/* For strict builds: ALK_EPLUGIN listing every refused plugin, or ALK_OK. */
static int refuse_if_any_refused(const alk_vec *entries, alk_diag *diag) {
    alk_buf reasons;
    alk_buf_init(&reasons);
    size_t refused = 0;
    for (size_t i = 0; i < entries->len; i++) {
        const alk__entry *e = &ALK_VEC_AT(entries, alk__entry, i);
        if (e->info.state == ALK_PLUGIN_REFUSED) {
            alk_buf_printf(&reasons, "%s%s", refused > 0 ? "; " : "", e->info.error);
            refused++;
        }
    }
    int rv = ALK_OK;
    if (refused > 0) {
        rv = alk_diag_set(diag, ALK_EPLUGIN, "%zu plugin(s) refused: %s", refused,
                          reasons.data != NULL ? reasons.data : "out of memory");
    }
    alk_buf_fini(&reasons);
    return rv;
}

int alk_generation_build(const alk_plugin_config *config, const alk_generation *previous,
                         alk_generation **ret_generation, alk_diag *diag) {
    alk_vec entries;
    alk_vec_init(&entries, sizeof(alk__entry));
    int rv = ALK_OK;
    for (size_t d = 0; rv == ALK_OK && d < config->n_dirs; d++) {
        rv = scan_dir(config->dirs[d], config, previous, &entries);
    }
    if (rv == ALK_OK && config->strict) {
        rv = refuse_if_any_refused(&entries, diag);
        if (rv != ALK_OK) {
            free_entries(entries.items, entries.len);
            return rv;
        }
    }
    alk_generation *generation = rv == ALK_OK ? alk_calloc(1, sizeof(*generation)) : NULL;
    if (generation == NULL) {
        free_entries(entries.items, entries.len);
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory while loading plugins");
    }
    atomic_init(&generation->refs, 1);
    generation->id = atomic_fetch_add(&next_generation_id, 1);
    generation->n_entries = entries.len;
    generation->entries = alk_vec_detach(&entries);
    pthread_mutex_init(&generation->lock, NULL);
    *ret_generation = generation;
    return ALK_OK;
}

alk_generation *alk_generation_ref(alk_generation *generation) {
    atomic_fetch_add(&generation->refs, 1);
    return generation;
}

void alk_generation_unref(alk_generation *generation) {
    if (generation == NULL || atomic_fetch_sub(&generation->refs, 1) != 1) {
        return;
    }
    free_entries(generation->entries, generation->n_entries);
    pthread_mutex_destroy(&generation->lock);
    alk_free(generation);
}

uint64_t alk_generation_id(const alk_generation *generation) {
    return generation->id;
}

int alk_generation_plugins(const alk_generation *generation, alk_plugin_info **ret_infos,
                           size_t *ret_n) {
    alk_plugin_info *infos = alk_calloc(generation->n_entries + 1, sizeof(*infos));
    if (infos == NULL) {
        return ALK_ENOMEM;
    }
    pthread_mutex_lock((pthread_mutex_t *)&generation->lock);
    for (size_t i = 0; i < generation->n_entries; i++) {
        const alk__entry *e = &generation->entries[i];
        infos[i] = e->info;
        if (e->lazy_error != NULL) {
            infos[i].state = ALK_PLUGIN_REFUSED;
            infos[i].error = e->lazy_error;
        } else if (e->loaded != NULL) {
            infos[i].state = ALK_PLUGIN_LOADED;
            infos[i].version = e->loaded->desc->version;
        } else if (e->worker_loaded) {
            infos[i].state = ALK_PLUGIN_LOADED;
            infos[i].version = e->worker_version;
        }
    }
    pthread_mutex_unlock((pthread_mutex_t *)&generation->lock);
    *ret_infos = infos;
    *ret_n = generation->n_entries;
    return ALK_OK;
}

int alk_generation_note_loaded(alk_generation *generation, const char *group, const char *name,
                               const char *version, const char *error) {
    int rv = ALK_OK;
    pthread_mutex_lock(&generation->lock);
    for (size_t i = 0; i < generation->n_entries; i++) {
        alk__entry *e = &generation->entries[i];
        bool undecided = e->info.state == ALK_PLUGIN_ON_DEMAND && e->loaded == NULL &&
                         e->lazy_error == NULL && !e->worker_loaded;
        if (!undecided || strcmp(e->manifest.group, group) != 0 ||
            strcmp(e->manifest.name, name) != 0) {
            continue;
        }
        if (error != NULL) {
            e->lazy_error = alk_strdup(error);
            rv = e->lazy_error != NULL ? ALK_OK : ALK_ENOMEM;
        } else {
            e->worker_version = version != NULL ? alk_strdup(version) : NULL;
            e->worker_loaded = version == NULL || e->worker_version != NULL;
            rv = e->worker_loaded ? ALK_OK : ALK_ENOMEM;
        }
        break;
    }
    pthread_mutex_unlock(&generation->lock);
    return rv;
}

bool alk_generation_same_plugins(const alk_generation *a, const alk_generation *b) {
    if (a->n_entries != b->n_entries) {
        return false;
    }
    for (size_t i = 0; i < a->n_entries; i++) {
        const alk__entry *x = &a->entries[i];
        const alk__entry *y = &b->entries[i];
        /* A library reused by the newer build is the same loaded object (generation.c's
         * `reusable`); a changed file would have been loaded anew. */
        if (strcmp(x->manifest.path, y->manifest.path) != 0 || x->info.state != y->info.state ||
            x->loaded != y->loaded) {
            return false;
        }
    }
    return true;
}

bool alk_generation_has_tracer(const alk_generation *generation, const char *name) {
    for (size_t i = 0; i < generation->n_entries; i++) {
        const alk__entry *e = &generation->entries[i];
        if (e->info.state == ALK_PLUGIN_LOADED && strcmp(e->info.group, ALK_GROUP_TRACER) == 0 &&
            strcmp(e->info.name, name) == 0) {
            return true;
        }
    }
    return false;
}

size_t alk_generation_n_refused(const alk_generation *generation) {
    size_t n = 0;
    for (size_t i = 0; i < generation->n_entries; i++) {
        n += generation->entries[i].info.state == ALK_PLUGIN_REFUSED;
    }
    return n;
}

int alk__generation_operation_plugin(const alk_generation *generation, const char *group,
                                     const char *name, alk__loaded **ret_loaded, alk_diag *diag) {
    alk_generation *g = (alk_generation *)generation; /* only the lock and lazy fields change */
    alk__entry *entry = NULL;
    for (size_t i = 0; i < g->n_entries && entry == NULL; i++) {
        alk__entry *e = &g->entries[i];
        if (e->info.state != ALK_PLUGIN_REFUSED && strcmp(e->manifest.group, group) == 0 &&
            strcmp(e->manifest.name, name) == 0) {
            entry = e;
        }
    }
    if (entry == NULL) {
        return ALK_ENOENT;
    }
    int rv = ALK_OK;
    pthread_mutex_lock(&g->lock);
    if (entry->loaded == NULL && entry->lazy_error == NULL) {
        alk_diag load_diag = {{0}};
        rv = alk__loaded_open(&entry->manifest, &entry->loaded, &load_diag);
        if (rv == ALK_EPLUGIN) {
            entry->lazy_error = alk_strdup(load_diag.message);
        }
        if (rv != ALK_OK) {
            alk_diag_set(diag, rv, "%s", load_diag.message);
        }
    } else if (entry->lazy_error != NULL) {
        rv = alk_diag_set(diag, ALK_EPLUGIN, "%s", entry->lazy_error);
    }
    alk__loaded *loaded = entry->loaded;
    pthread_mutex_unlock(&g->lock);
    if (rv == ALK_OK) {
        *ret_loaded = loaded;
    }
    return rv;
}
