/*
 * Loading one plugin: dlopen, entry symbol, descriptor and handler-table checks, init.
 *
 * glibc's dlopen returns the already-loaded object for a path it has open, even when the file
 * on disk was replaced, and replacing a mapped library in place would corrupt running code. So a
 * library whose path is already loaded (by an older generation still serving jobs) is copied to
 * a private temporary file, dlopen'ed from there and the copy unlinked at once: the old code
 * stays mapped for the old generation and the new code comes from the new file.
 *
 * Thread rule: loading and unloading may happen on any thread (on-demand loads run on workers);
 * the list of live libraries is guarded by one mutex.
 */
#include "plugin/plugin_int.h"
#include "core/alloc.h"
#include "core/vec.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static alk_vec live_paths = {.elem_size = sizeof(char *)}; /* library paths currently loaded */

bool alk__group_known(const char *group) {
    return strcmp(group, ALK_GROUP_TRACER) == 0 || alk__group_is_operation(group);
}

bool alk__group_is_operation(const char *group) {
    return strcmp(group, ALK_GROUP_KERAS) == 0 || strcmp(group, ALK_GROUP_TORCH) == 0;
}

bool alk__file_id_of(const char *path, alk__file_id *ret_id) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return false;
    }
    *ret_id = (alk__file_id){
        .dev = st.st_dev,
        .ino = st.st_ino,
        .size = st.st_size,
        .mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
    };
    return true;
}

/* Records `path` as loaded; says whether it already was. */
static int live_add(const char *path, bool *ret_was_live) {
    pthread_mutex_lock(&live_lock);
    bool was_live = false;
    for (size_t i = 0; i < live_paths.len; i++) {
        was_live = was_live || strcmp(ALK_VEC_AT(&live_paths, char *, i), path) == 0;
    }
    char *copy = alk_strdup(path);
    int rv = copy == NULL ? ALK_ENOMEM : alk_vec_push(&live_paths, &copy);
    if (rv != ALK_OK) {
        alk_free(copy);
    }
    pthread_mutex_unlock(&live_lock);
    *ret_was_live = was_live;
    return rv;
}

static void live_remove(const char *path) {
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < live_paths.len; i++) {
        char *p = ALK_VEC_AT(&live_paths, char *, i);
        if (strcmp(p, path) == 0) {
            alk_free(p);
            ALK_VEC_AT(&live_paths, char *, i) =
                ALK_VEC_AT(&live_paths, char *, live_paths.len - 1);
            live_paths.len--;
            break;
        }
    }
    if (live_paths.len == 0) {
        alk_vec_fini(&live_paths);
    }
    pthread_mutex_unlock(&live_lock);
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return -1;
    }
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (out < 0) {
        (void)close(in);
        return -1;
    }
    char chunk[65536];
    ssize_t n;
    int rv = 0;
    while ((n = read(in, chunk, sizeof(chunk))) > 0) {
        if (write(out, chunk, (size_t)n) != n) {
            rv = -1;
            break;
        }
    }
    if (n < 0) {
        rv = -1;
    }
    (void)close(in);
    if (close(out) != 0) {
        rv = -1;
    }
    return rv;
}

/* dlopen's `library` through a private copy (unlinked right after loading). */
static void *dlopen_private(const char *library, alk_diag *diag) {
    const char *base = getenv("XDG_RUNTIME_DIR");
    char dir[4096];
    (void)snprintf(dir, sizeof(dir), "%s/alkaid-plugin-XXXXXX",
                   base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        alk_diag_set(diag, ALK_EPLUGIN, "%s: cannot make a private copy: %s", library,
                     strerror(errno));
        return NULL;
    }
    char copy[4200];
    (void)snprintf(copy, sizeof(copy), "%s/plugin.so", dir);
    void *dl = NULL;
    if (copy_file(library, copy) != 0) {
        alk_diag_set(diag, ALK_EPLUGIN, "%s: cannot make a private copy: %s", library,
                     strerror(errno));
    } else {
        dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
        if (dl == NULL) {
            alk_diag_set(diag, ALK_EPLUGIN, "%s: %s", library, dlerror());
        }
    }
    (void)unlink(copy);
    (void)rmdir(dir);
    return dl;
}

/* Checks the descriptor against the manifest and the ABI. */
static int check_descriptor(const alk_plugin_descriptor *d, const alk_manifest *m, alk_diag *diag) {
    if (d == NULL) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: %s() returned no descriptor", m->library,
                            ALK_PLUGIN_ENTRY_SYMBOL);
    }
    if (d->abi_version != ALK_PLUGIN_ABI_VERSION) {
        return alk_diag_set(diag, ALK_EPLUGIN,
                            "%s: plugin ABI version %" PRIu32 ", this alkaid supports %u",
                            m->library, d->abi_version, ALK_PLUGIN_ABI_VERSION);
    }
    if (d->struct_size < sizeof(alk_plugin_descriptor)) {
        return alk_diag_set(
            diag, ALK_EPLUGIN, "%s: descriptor is %" PRIu32 " bytes, ABI %u needs at least %zu",
            m->library, d->struct_size, ALK_PLUGIN_ABI_VERSION, sizeof(alk_plugin_descriptor));
    }
    if (d->group == NULL || d->name == NULL || strcmp(d->group, m->group) != 0 ||
        strcmp(d->name, m->name) != 0) {
        return alk_diag_set(diag, ALK_EPLUGIN,
                            "%s: descriptor says group '%s' name '%s', the manifest '%s' / '%s'",
                            m->library, d->group ? d->group : "(none)",
                            d->name ? d->name : "(none)", m->group, m->name);
    }
    if (strcmp(d->group, ALK_GROUP_TRACER) == 0 && d->apply_model == NULL) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: a tracer plugin must set apply_model",
                            m->library);
    }
    return alk__op_table_check(d, m->library, diag);
}

/* Runs init. */
static int start(alk__loaded *loaded, const alk_manifest *m, alk_diag *diag) {
    const alk_plugin_descriptor *d = loaded->desc;
    alk_diag inner = {{0}};
    int rv = d->init != NULL ? d->init(&loaded->state, &inner) : ALK_OK;
    if (rv != ALK_OK) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: init failed (%s): %s", m->library,
                            alk_err_name(rv), inner.message);
    }
    return ALK_OK;
}

int alk__loaded_open(const alk_manifest *manifest, alk__loaded **ret_loaded, alk_diag *diag) {
    if (manifest->abi != ALK_PLUGIN_ABI_VERSION) {
        return alk_diag_set(diag, ALK_EPLUGIN,
                            "%s: manifest declares ABI %" PRIu32 ", this alkaid supports %u",
                            manifest->path, manifest->abi, ALK_PLUGIN_ABI_VERSION);
    }
    alk__loaded *loaded = alk_calloc(1, sizeof(*loaded));
    if (loaded == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    atomic_init(&loaded->refs, 1);
    int rv = ALK_OK;
    bool was_live = false;
    loaded->library = alk_strdup(manifest->library);
    if (loaded->library == NULL || live_add(manifest->library, &was_live) != ALK_OK) {
        alk_free(loaded->library);
        alk_free(loaded);
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    if (!alk__file_id_of(manifest->library, &loaded->file_id)) {
        rv = alk_diag_set(diag, ALK_EPLUGIN, "%s: %s", manifest->library, strerror(errno));
        goto fail;
    }
    loaded->dl = was_live ? dlopen_private(manifest->library, diag)
                          : dlopen(manifest->library, RTLD_NOW | RTLD_LOCAL);
    if (loaded->dl == NULL) {
        rv = was_live ? ALK_EPLUGIN
                      : alk_diag_set(diag, ALK_EPLUGIN, "%s: %s", manifest->library, dlerror());
        goto fail;
    }
    alk_plugin_entry_fn entry;
    *(void **)&entry = dlsym(loaded->dl, ALK_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        rv = alk_diag_set(diag, ALK_EPLUGIN, "%s: no %s symbol", manifest->library,
                          ALK_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    loaded->desc = entry();
    rv = check_descriptor(loaded->desc, manifest, diag);
    if (rv == ALK_OK) {
        rv = start(loaded, manifest, diag);
    }
    if (rv != ALK_OK) {
        goto fail;
    }
    *ret_loaded = loaded;
    return ALK_OK;
fail:
    if (loaded->dl != NULL) {
        (void)dlclose(loaded->dl);
    }
    live_remove(loaded->library);
    alk_free(loaded->library);
    alk_free(loaded);
    return rv;
}

alk__loaded *alk__loaded_ref(alk__loaded *loaded) {
    atomic_fetch_add(&loaded->refs, 1);
    return loaded;
}

void alk__loaded_unref(alk__loaded *loaded) {
    if (loaded == NULL || atomic_fetch_sub(&loaded->refs, 1) != 1) {
        return;
    }
    if (loaded->desc->fini != NULL) {
        loaded->desc->fini(loaded->state);
    }
    (void)dlclose(loaded->dl);
    live_remove(loaded->library);
    alk_free(loaded->library);
    alk_free(loaded);
}
