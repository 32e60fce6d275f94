/*
 * Where plugins are looked for (see alk_plugin_search_path). The built-in directory depends on
 * where this libalkaid was loaded from: the build tree's copy serves the build tree's plugins, so
 * `build/client/alkaidc` works uninstalled and never picks up an older installed plugin. A
 * directory named twice (the daemon's `load` of the built-in manifest, a path given both ways)
 * is searched once, or its manifests would be refused as duplicates of themselves.
 */
#define _GNU_SOURCE /* dladdr */
#include "plugin/registry.h"
#include "core/alloc.h"
#include "core/vec.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Any object of libalkaid: dladdr tells which file it was loaded from. */
static const char library_anchor;

static const char *builtin_dir(void) {
    Dl_info info;
    size_t n = strlen(ALK_BUILD_ROOT);
    if (dladdr(&library_anchor, &info) != 0 && info.dli_fname != NULL &&
        strncmp(info.dli_fname, ALK_BUILD_ROOT, n) == 0 && info.dli_fname[n] == '/') {
        return ALK_PLUGIN_BUILD_DIR;
    }
    return ALK_PLUGIN_INSTALL_DIR;
}

/* Whether `dir` names the same directory as one in `dirs` (by real path when it exists). */
static bool listed(const alk_vec *dirs, const char *dir) {
    char *real = realpath(dir, NULL);
    bool found = false;
    for (size_t i = 0; i < dirs->len && !found; i++) {
        const char *other = ALK_VEC_AT(dirs, char *, i);
        char *other_real = real != NULL ? realpath(other, NULL) : NULL;
        found = strcmp(other, dir) == 0 || (other_real != NULL && strcmp(other_real, real) == 0);
        free(other_real); /* realpath allocates with the C library */
    }
    free(real);
    return found;
}

static int push_copy(alk_vec *dirs, const char *dir, size_t len) {
    char *copy = alk_malloc(len + 1);
    if (copy == NULL) {
        return ALK_ENOMEM;
    }
    memcpy(copy, dir, len);
    copy[len] = '\0';
    if (listed(dirs, copy)) {
        alk_free(copy);
        return ALK_OK;
    }
    int rv = alk_vec_push(dirs, &copy);
    if (rv != ALK_OK) {
        alk_free(copy);
    }
    return rv;
}

int alk_plugin_search_path(const char *const *config_dirs, size_t n_config, char ***ret_dirs,
                           size_t *ret_n) {
    alk_vec dirs;
    alk_vec_init(&dirs, sizeof(char *));
    int rv = ALK_OK;
    for (size_t i = 0; rv == ALK_OK && i < n_config; i++) {
        rv = push_copy(&dirs, config_dirs[i], strlen(config_dirs[i]));
    }
    const char *env = getenv("ALKAID_PLUGIN_PATH");
    while (rv == ALK_OK && env != NULL && *env != '\0') {
        size_t len = strcspn(env, ":");
        if (len > 0) {
            rv = push_copy(&dirs, env, len);
        }
        env += len + (env[len] == ':');
    }
    if (rv == ALK_OK) {
        const char *builtin = builtin_dir();
        rv = push_copy(&dirs, builtin, strlen(builtin));
    }
    if (rv != ALK_OK) {
        alk_plugin_dirs_free(dirs.items, dirs.len);
        return rv;
    }
    *ret_n = dirs.len;
    *ret_dirs = alk_vec_detach(&dirs);
    return ALK_OK;
}

void alk_plugin_dirs_free(char **dirs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        alk_free(dirs[i]);
    }
    alk_free(dirs);
}
