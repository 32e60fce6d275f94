/*
 * Plugin generations: an immutable, reference-counted snapshot of every loaded plugin
 * (spec DESIGN.md §4).
 *
 * A generation is built from plugin directories (manifests `NAME.plugin` beside their `.so`).
 * Building never changes an existing generation: reload/load/unload build a new one and the
 * caller swaps its "current" pointer. A job takes a reference on the generation it starts with
 * and drops it when it ends; a plugin's code stays mapped until the last generation holding it
 * goes away.
 *
 * Thread rule: alk_generation_ref/unref are atomic and may be called from any thread; a
 * generation's contents never change after alk_generation_build returns, except the state of its
 * on-demand plugins (loaded here, or noted as loaded by a worker process), which changes under
 * the generation's lock.
 */
#ifndef ALK_PLUGIN_REGISTRY_H
#define ALK_PLUGIN_REGISTRY_H

#include "core/err.h"
#include "plugin/alk_plugin.h" /* group names */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum alk_plugin_state {
    ALK_PLUGIN_LOADED,    /* loaded and initialised */
    ALK_PLUGIN_ON_DEMAND, /* a second-level plugin, loaded the first time a layer needs it */
    ALK_PLUGIN_REFUSED,   /* found but refused; `error` says why */
} alk_plugin_state;

/* What the `plugins` listing shows of one plugin. Strings are owned by the generation. */
typedef struct alk_plugin_info {
    const char *group;
    const char *name;
    const char *library;  /* path of the shared object */
    const char *manifest; /* path of the manifest */
    uint32_t abi_version;
    alk_plugin_state state;
    const char *version; /* the plugin's own version string; NULL when unknown */
    const char *error;   /* why it was refused; NULL otherwise */
} alk_plugin_info;

/* Where plugins are found. Every pointer is borrowed for the duration of the build. */
typedef struct alk_plugin_config {
    const char *const *dirs; /* searched in order; a name found twice keeps the first */
    size_t n_dirs;
    const char *const *disabled; /* plugin names not to load (the `unload` control method) */
    size_t n_disabled;
    bool strict; /* refuse the whole generation when any plugin is refused (reloads) */
} alk_plugin_config;

typedef struct alk_generation alk_generation;

/*
 * Builds a generation from `config` (borrowed). A plugin that cannot be loaded is listed as
 * REFUSED with its reason and the others still load; with `config->strict` the build instead
 * fails with ALK_EPLUGIN naming every refused plugin (a reload that must change nothing when
 * something is wrong). `previous` (borrowed, may be NULL) lets unchanged plugins be shared
 * rather than loaded again. On success the caller owns one reference to *ret_generation.
 */
int alk_generation_build(const alk_plugin_config *config, const alk_generation *previous,
                         alk_generation **ret_generation, alk_diag *diag);

/* Takes one more reference; returns `generation`. */
alk_generation *alk_generation_ref(alk_generation *generation);

/* Drops one reference; the last one unloads the plugins no other generation holds. NULL: no-op. */
void alk_generation_unref(alk_generation *generation);

/* A sequence number: 1 for the first generation of a process, then increasing. */
uint64_t alk_generation_id(const alk_generation *generation);

/*
 * A snapshot of the plugins of `generation`, in discovery order: *ret_infos is an array of
 * *ret_n entries that the caller frees with alk_free; its strings belong to the generation and
 * stay valid while the caller holds a reference. (A snapshot, because second-level plugins change
 * from ON_DEMAND to LOADED when a job first needs them.)
 */
int alk_generation_plugins(const alk_generation *generation, alk_plugin_info **ret_infos,
                           size_t *ret_n);

/*
 * Notes that the on-demand plugin `name` of `group` was loaded elsewhere: in a worker process
 * whose own generation was built from the same manifests as `generation` (alkaidd runs its
 * conversions there). With `error` NULL it loaded, `version` (may be NULL) being its version
 * string; otherwise `error` says why it was refused. alk_generation_plugins then lists it LOADED,
 * or REFUSED with the error, as if it had been loaded here; nothing is loaded into this process.
 * The first outcome noted stays (a load is tried once per generation), and a plugin that is not
 * on demand in `generation` any more, or not in it at all, is left as it is. The strings are
 * borrowed (copied). Returns ALK_OK or ALK_ENOMEM.
 * Thread rule: any thread; takes the generation's lock.
 */
int alk_generation_note_loaded(alk_generation *generation, const char *group, const char *name,
                               const char *version, const char *error);

/* Whether `a` and `b` (borrowed) hold the same plugins from the same unchanged libraries, in
 * the same states: a reload that changed nothing (worker processes can be kept). */
bool alk_generation_same_plugins(const alk_generation *a, const alk_generation *b);

/* Whether `generation` has a loaded top-level tracer named `name`. */
bool alk_generation_has_tracer(const alk_generation *generation, const char *name);

/* Number of plugins that failed to load (state REFUSED). */
size_t alk_generation_n_refused(const alk_generation *generation);

/*
 * The plugin search path, in order: `config_dirs` (n_config borrowed strings, from a config file
 * or flags), the colon-separated $ALKAID_PLUGIN_PATH, then the built-in plugin directory (the
 * build tree's when this libalkaid runs from its build tree, else the installed one). On success
 * *ret_dirs is an alk_malloc'd array of *ret_n alk_malloc'd strings (alk_plugin_dirs_free).
 */
int alk_plugin_search_path(const char *const *config_dirs, size_t n_config, char ***ret_dirs,
                           size_t *ret_n);
void alk_plugin_dirs_free(char **dirs, size_t n);

#endif
