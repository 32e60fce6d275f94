/* Plugin manifest parser (see manifest.h). */
#include "plugin/manifest.h"
#include "core/alloc.h"
#include "core/io.h"
#include "core/vec.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum { MANIFEST_MAX_BYTES = 64 * 1024 };

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    return s;
}

/* Stores a copy of `value` in *slot; refuses a key given twice. */
static int set_once(char **slot, const char *value, const char *path, size_t line, const char *key,
                    alk_diag *diag) {
    if (*slot != NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "%s:%zu: '%s' is given twice", path, line, key);
    }
    *slot = alk_strdup(value);
    return *slot == NULL ? alk_diag_set(diag, ALK_ENOMEM, "%s: out of memory", path) : ALK_OK;
}

/* The library path: absolute as given, else joined to the manifest's directory. */
static char *library_path(const char *manifest_path, const char *library) {
    if (library[0] == '/') {
        return alk_strdup(library);
    }
    const char *slash = strrchr(manifest_path, '/');
    alk_buf path;
    alk_buf_init(&path);
    if (slash != NULL) {
        alk_buf_append(&path, manifest_path, (size_t)(slash - manifest_path) + 1);
    }
    alk_buf_puts(&path, library);
    if (alk_buf_error(&path) != ALK_OK) {
        alk_buf_fini(&path);
        return NULL;
    }
    return path.data;
}

static int parse_line(char *text, size_t line, alk_manifest *m, char **library, char **abi,
                      alk_diag *diag) {
    char *content = trim(text);
    if (content[0] == '\0' || content[0] == '#') {
        return ALK_OK;
    }
    char *eq = strchr(content, '=');
    if (eq == NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "%s:%zu: expected 'key = value'", m->path, line);
    }
    *eq = '\0';
    char *key = trim(content);
    char *value = trim(eq + 1);
    if (value[0] == '\0') {
        return alk_diag_set(diag, ALK_EINVAL, "%s:%zu: '%s' has no value", m->path, line, key);
    }
    if (strcmp(key, "group") == 0) {
        return set_once(&m->group, value, m->path, line, key, diag);
    }
    if (strcmp(key, "name") == 0) {
        return set_once(&m->name, value, m->path, line, key, diag);
    }
    if (strcmp(key, "library") == 0) {
        return set_once(library, value, m->path, line, key, diag);
    }
    if (strcmp(key, "abi") == 0) {
        return set_once(abi, value, m->path, line, key, diag);
    }
    return alk_diag_set(diag, ALK_EINVAL,
                        "%s:%zu: unknown key '%s' (known: group, name, library, abi)", m->path,
                        line, key);
}

static int parse(char *text, alk_manifest *m, alk_diag *diag) {
    char *library = NULL;
    char *abi = NULL;
    int rv = ALK_OK;
    size_t line = 1;
    for (char *p = text; rv == ALK_OK && p != NULL; line++) {
        char *next = strchr(p, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        rv = parse_line(p, line, m, &library, &abi, diag);
        p = next;
    }
    if (rv == ALK_OK && (m->group == NULL || m->name == NULL || library == NULL || abi == NULL)) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s: needs group, name, library and abi", m->path);
    }
    if (rv == ALK_OK) {
        char *end;
        unsigned long value = strtoul(abi, &end, 10);
        if (*end != '\0' || end == abi || value > UINT32_MAX) {
            rv = alk_diag_set(diag, ALK_EINVAL, "%s: abi '%s' is not a number", m->path, abi);
        }
        m->abi = (uint32_t)value;
    }
    if (rv == ALK_OK) {
        m->library = library_path(m->path, library);
        if (m->library == NULL) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "%s: out of memory", m->path);
        }
    }
    alk_free(library);
    alk_free(abi);
    return rv;
}

int alk_manifest_read(const char *path, alk_manifest *ret_manifest, alk_diag *diag) {
    alk_manifest m = {0};
    alk_buf text;
    alk_buf_init(&text);
    int rv = alk_read_file(path, MANIFEST_MAX_BYTES, &text, diag);
    if (rv == ALK_OK) {
        m.path = alk_strdup(path);
        rv = m.path == NULL ? alk_diag_set(diag, ALK_ENOMEM, "%s: out of memory", path) : ALK_OK;
    }
    if (rv == ALK_OK && text.data == NULL) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s: empty manifest", path);
    }
    if (rv == ALK_OK) {
        rv = parse(text.data, &m, diag);
    }
    alk_buf_fini(&text);
    if (rv != ALK_OK) {
        alk_manifest_fini(&m);
        return rv;
    }
    *ret_manifest = m;
    return ALK_OK;
}

void alk_manifest_fini(alk_manifest *manifest) {
    alk_free(manifest->path);
    alk_free(manifest->group);
    alk_free(manifest->name);
    alk_free(manifest->library);
    *manifest = (alk_manifest){0};
}
