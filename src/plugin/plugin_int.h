/*
 * Private structures shared by the plugin loader, the generations and the host services.
 */
#ifndef ALK_PLUGIN_PLUGIN_INT_H
#define ALK_PLUGIN_PLUGIN_INT_H

#include "plugin/alk_plugin.h"
#include "plugin/manifest.h"
#include "plugin/registry.h"
#include "core/vec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

/* The identity of a library file on disk: a changed file gets a new identity. */
typedef struct alk__file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    long long mtime_ns;
} alk__file_id;

/*
 * A loaded shared object with its descriptor and state. Shared by every generation that
 * contains the same unchanged library; unloaded (fini + dlclose) with its last reference.
 */
typedef struct alk__loaded {
    atomic_long refs;
    void *dl;
    const alk_plugin_descriptor *desc;
    void *state;
    char *library;        /* the path it was loaded for */
    alk__file_id file_id; /* of `library` when it was loaded */
} alk__loaded;

/*
 * Loads the plugin of `manifest` (borrowed): dlopen (from a private copy when another copy of
 * the same path is still loaded), the entry symbol, the descriptor and handler-table checks,
 * then init. On success the caller owns one reference. Errors are ALK_EPLUGIN with the reason,
 * or ALK_ENOMEM.
 */
int alk__loaded_open(const alk_manifest *manifest, alk__loaded **ret_loaded, alk_diag *diag);
alk__loaded *alk__loaded_ref(alk__loaded *loaded);
void alk__loaded_unref(alk__loaded *loaded);

/* Reads the identity of `path`; false when it cannot be stat'ed. */
bool alk__file_id_of(const char *path, alk__file_id *ret_id);

/* Whether `group` is a known group; whether it is an operation-plugin group. */
bool alk__group_known(const char *group);
bool alk__group_is_operation(const char *group);

/*
 * Checks the handler table of `desc` (op_table.c): ALK_EPLUGIN naming the first bad row
 * ("ops[3] (keras.layers Dense): ...") and why, prefixed with `library`.
 */
int alk__op_table_check(const alk_plugin_descriptor *desc, const char *library, alk_diag *diag);

/* One plugin of a generation. */
typedef struct alk__entry {
    alk_plugin_info info;  /* strings owned by the entry */
    alk_manifest manifest; /* owned */
    alk__loaded *loaded;   /* NULL while on demand or refused; guarded by the generation lock */
    char *lazy_error;      /* why an on-demand load failed (here or in a worker); guarded too */
    /* Loaded by a worker process (alk_generation_note_loaded), with its version string (owned,
     * may be NULL); guarded by the generation lock. */
    bool worker_loaded;
    char *worker_version;
} alk__entry;

struct alk_generation {
    atomic_long refs;
    uint64_t id;
    alk__entry *entries;
    size_t n_entries;
    pthread_mutex_t lock; /* guards the on-demand state: entries[i].loaded, lazy_error, worker_* */
};

/*
 * The loaded operation plugin named `name` of `group` in `generation`, loading it on demand
 * (once). Returns ALK_ENOENT when the generation has no such plugin, ALK_EPLUGIN when it failed
 * to load (the reason is kept and repeated to later callers).
 */
int alk__generation_operation_plugin(const alk_generation *generation, const char *group,
                                     const char *name, alk__loaded **ret_loaded, alk_diag *diag);

/* One entry of a job's trace map: a name and its arrays (owned by the trace). */
typedef struct alk__trace_entry {
    char *name;
    alk_fva **arrays;
    size_t n_arrays;
} alk__trace_entry;

/* The trace map and output names a tracer fills during apply_model. */
typedef struct alk__trace_map {
    alk_vec entries;      /* alk__trace_entry, in insertion order */
    alk_vec output_names; /* char * */
} alk__trace_map;

/* What a job lends its plugins (see alk_plugin.h). Lives on the job's stack. */
struct alk_host {
    const alk_generation *generation;
    const alk__loaded *tracer; /* the running tracer: its table is searched first */
    alk__trace_map *map;
    void (*on_trace)(void *ctx, const char *name); /* the request's progress hook, or NULL */
    void *on_trace_ctx;
};

void alk__trace_map_init(alk__trace_map *map);
void alk__trace_map_fini(alk__trace_map *map);
/* The entry named `name`, or NULL. */
const alk__trace_entry *alk__trace_map_get(const alk__trace_map *map, const char *name);
/* Names the model outputs: `names` (n strings, copied), each already in the map. ALK_EINVAL
 * for a name the map lacks, ALK_ENOMEM. */
int alk__host_set_outputs(const alk_host *host, const char *const *names, size_t n);

#endif
