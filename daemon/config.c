/*
 * alkaidd's flags and config file (see config.h).
 *
 * One table describes every key: its flag, the kind of value and where it is stored, so the
 * command line and the file can never disagree. The size limits come from the generated table
 * of schemas/limits.json (flag = the wire name with dashes).
 *
 * Thread rule: main thread, before the loop; alkd_config_reload_plugins on the loop thread.
 */
#include "config.h"

#include "core/alloc.h"
#include "core/io.h"
#include "core/vec.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int alkd_strings_push(alkd_strings *list, const char *s) {
    char *copy = alk_strdup(s);
    if (copy == NULL) {
        return ALK_ENOMEM;
    }
    char **items = alk_realloc(list->items, (list->len + 1) * sizeof(*items));
    if (items == NULL) {
        alk_free(copy);
        return ALK_ENOMEM;
    }
    items[list->len++] = copy;
    list->items = items;
    return ALK_OK;
}

size_t alkd_strings_remove(alkd_strings *list, const char *s) {
    size_t kept = 0;
    size_t removed = 0;
    for (size_t i = 0; i < list->len; i++) {
        if (strcmp(list->items[i], s) == 0) {
            alk_free(list->items[i]);
            removed++;
        } else {
            list->items[kept++] = list->items[i];
        }
    }
    list->len = kept;
    return removed;
}

bool alkd_strings_contains(const alkd_strings *list, const char *s) {
    for (size_t i = 0; i < list->len; i++) {
        if (strcmp(list->items[i], s) == 0) {
            return true;
        }
    }
    return false;
}

int alkd_strings_copy(const alkd_strings *from, alkd_strings *ret_copy) {
    alkd_strings copy = {0};
    for (size_t i = 0; i < from->len; i++) {
        int rv = alkd_strings_push(&copy, from->items[i]);
        if (rv != ALK_OK) {
            alkd_strings_fini(&copy);
            return rv;
        }
    }
    *ret_copy = copy;
    return ALK_OK;
}

void alkd_strings_fini(alkd_strings *list) {
    for (size_t i = 0; i < list->len; i++) {
        alk_free(list->items[i]);
    }
    alk_free(list->items);
    list->items = NULL;
    list->len = 0;
}

typedef enum kind {
    KIND_STR,     /* char * */
    KIND_LIST,    /* alkd_strings, repeatable */
    KIND_UINT,    /* uint64_t */
    KIND_OCTAL,   /* uint64_t, file mode */
    KIND_BOOL,    /* bool; a flag without value on the command line */
    KIND_LEVEL,   /* alkd_log_level */
    KIND_SECONDS, /* seconds into a uint64_t of milliseconds */
} kind;

typedef struct key {
    const char *name;
    kind kind;
    size_t offset;
    uint64_t min;
    uint64_t max; /* 0: unbounded */
    const char *help;
} key;

#define AT(field) offsetof(alkd_config, field)

static const key keys[] = {
    {"listen", KIND_LIST, AT(listen), 0, 0,
     "service socket URL, ipc:// or tcp:// (repeatable; default ipc://RUNTIME_DIR/alkaidd.sock)"},
    {"control", KIND_STR, AT(control), 0, 0,
     "control socket URL, ipc:// only (default ipc://RUNTIME_DIR/alkaidd.ctl)"},
    {"workers", KIND_UINT, AT(workers), 0, 1024, "worker processes (default: the number of cores)"},
    {"worker-memory-mb", KIND_UINT, AT(worker_memory_mb), 0, 0,
     "memory ceiling of each worker, MiB; a job past it fails ENOMEM (default: half the RAM)"},
    {"kill-grace-ms", KIND_UINT, AT(kill_grace_ms), 1, 600000,
     "time a job past its deadline has to stop before its worker is killed (default 1000)"},
    {"poison-ttl", KIND_SECONDS, AT(poison_ttl_ms), 0, 0,
     "seconds a request that killed a worker is answered at once (default 600; 0: never)"},
    {"queue", KIND_UINT, AT(queue), 0, 1000000, "jobs that may wait for a worker (default 64)"},
    {"timeout", KIND_SECONDS, AT(limits.default_timeout_ms), 1, 0,
     "default deadline of a job, seconds (= default-timeout-ms / 1000)"},
    {"plugin-dir", KIND_LIST, AT(plugin_dirs), 0, 0,
     "plugin directory searched before ALKAID_PLUGIN_PATH (repeatable)"},
    {"disable", KIND_LIST, AT(disabled), 0, 0, "plugin name not to load (repeatable)"},
    {"log-level", KIND_LEVEL, AT(log_level), 0, 0, "error, warn, info (default) or debug"},
    {"reply-cache-ttl", KIND_SECONDS, AT(reply_cache_ttl_ms), 0, 0,
     "seconds a reply is kept for resends (default 60; 0 keeps none)"},
    {"reply-cache-bytes", KIND_UINT, AT(reply_cache_bytes), 0, 0,
     "byte budget of the reply cache (default 64 MiB)"},
    {"socket-mode", KIND_OCTAL, AT(socket_mode), 0, 0777,
     "permissions of ipc service sockets, octal (default 0660)"},
    {"stop-timeout", KIND_SECONDS, AT(stop_timeout_ms), 1, 0,
     "seconds a stop waits for jobs in flight before cancelling them (default 60)"},
    {"shutdown-linger-ms", KIND_UINT, AT(shutdown_linger_ms), 0, 60000,
     "wait after the last reply before closing the sockets (default 200)"},
    {"broker", KIND_BOOL, AT(broker), 0, 0,
     "run as a REQ/REP proxy from --listen to every --upstream"},
    {"upstream", KIND_LIST, AT(upstream), 0, 0, "broker: a daemon's URL (repeatable)"},
    {"test-hooks", KIND_BOOL, AT(test_hooks), 0, 0, NULL /* hidden: tests only */},
};

/* Half the machine's memory, in MiB: one conversion may use much, but not all, of it. */
static uint64_t default_worker_memory_mb(void) {
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) {
        return 4096;
    }
    return (uint64_t)pages * (uint64_t)page_size / 2 >> 20;
}

void alkd_config_init(alkd_config *config) {
    *config = (alkd_config){
        .worker_memory_mb = default_worker_memory_mb(),
        .kill_grace_ms = 1000,
        .poison_ttl_ms = 600000,
        .queue = 64,
        .log_level = ALKD_LOG_INFO,
        .reply_cache_ttl_ms = 60000,
        .reply_cache_bytes = (uint64_t)64 << 20,
        .socket_mode = 0660,
        .shutdown_linger_ms = 200,
        .stop_timeout_ms = 60000,
    };
    alk_rpc_limits_default(&config->limits);
}

void alkd_config_fini(alkd_config *config) {
    alk_free(config->config_path);
    alk_free(config->control);
    alkd_strings_fini(&config->listen);
    alkd_strings_fini(&config->plugin_dirs);
    alkd_strings_fini(&config->disabled);
    alkd_strings_fini(&config->upstream);
}

void alkd_config_usage(void) {
    printf("usage: alkaidd [--config FILE] [OPTIONS]\n"
           "       alkaidd --broker --listen URL --upstream URL...\n\n"
           "The alkaid conversion daemon. Options (also config-file keys, without the dashes):\n"
           "  --config FILE            read KEY = VALUE lines first; flags override them\n");
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (keys[i].help != NULL) {
            printf("  --%-23s%s\n", keys[i].name, keys[i].help);
        }
    }
    for (size_t i = 0; i < alk_rpc_n_limit_fields; i++) {
        char flag[64];
        (void)snprintf(flag, sizeof(flag), "%s", alk_rpc_limit_fields[i].name);
        for (char *p = flag; *p != '\0'; p++) {
            *p = *p == '_' ? '-' : *p;
        }
        printf("  --%-23slimit (see docs/protocol.md)\n", flag);
    }
    printf("  --help, --version\n\n"
           "Signals: SIGHUP reloads the plugins, SIGTERM/SIGINT stop gracefully.\n");
}

/* A key of the table, or of the limits table (returned through *ret_limit). */
static const key *find_key(const char *name, size_t name_len,
                           const alk_rpc_limit_field **ret_limit) {
    *ret_limit = NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strlen(keys[i].name) == name_len && memcmp(keys[i].name, name, name_len) == 0) {
            return &keys[i];
        }
    }
    for (size_t i = 0; i < alk_rpc_n_limit_fields; i++) {
        const char *limit = alk_rpc_limit_fields[i].name;
        if (strlen(limit) != name_len) {
            continue;
        }
        bool same = true;
        for (size_t k = 0; k < name_len && same; k++) {
            same = name[k] == (limit[k] == '_' ? '-' : limit[k]);
        }
        if (same) {
            *ret_limit = &alk_rpc_limit_fields[i];
            return NULL;
        }
    }
    return NULL;
}

static int parse_uint(const char *text, int base, uint64_t min, uint64_t max, uint64_t *ret) {
    if (text[0] == '\0' || text[0] == '-' || isspace((unsigned char)text[0])) {
        return ALK_EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, base);
    if (errno != 0 || *end != '\0' || v < min || (max > 0 && v > max)) {
        return ALK_EINVAL;
    }
    *ret = v;
    return ALK_OK;
}

/* Which list keys the command line has already replaced (so the file's entries go away once). */
typedef struct replaced {
    bool lists[sizeof(keys) / sizeof(keys[0])];
} replaced;

/* Applies one key/value; `origin` ("--workers" or "FILE:12") names it in errors. */
static int apply(alkd_config *config, const char *name, size_t name_len, const char *value,
                 const char *origin, replaced *replace, alk_diag *diag) {
    const alk_rpc_limit_field *limit;
    const key *k = find_key(name, name_len, &limit);
    if (limit != NULL) {
        uint64_t *slot = (uint64_t *)((char *)&config->limits + limit->offset);
        if (value == NULL || parse_uint(value, 10, limit->min, limit->max, slot) != ALK_OK) {
            return alk_diag_set(diag, ALK_EINVAL, "%s: expected an integer in [%llu, %s]", origin,
                                (unsigned long long)limit->min,
                                limit->max > 0 ? "its maximum" : "2^64)");
        }
        return ALK_OK;
    }
    if (k == NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "%s: unknown option '%.*s'", origin, (int)name_len,
                            name);
    }
    void *slot = (char *)config + k->offset;
    if (value == NULL && k->kind != KIND_BOOL) {
        return alk_diag_set(diag, ALK_EINVAL, "%s: a value is required", origin);
    }
    uint64_t number;
    switch (k->kind) {
    case KIND_STR: {
        char *copy = alk_strdup(value);
        if (copy == NULL) {
            return ALK_ENOMEM;
        }
        alk_free(*(char **)slot);
        *(char **)slot = copy;
        return ALK_OK;
    }
    case KIND_LIST: {
        size_t index = (size_t)(k - keys);
        if (replace != NULL && !replace->lists[index]) {
            alkd_strings_fini(slot);
            replace->lists[index] = true;
        }
        return alkd_strings_push(slot, value);
    }
    case KIND_UINT:
    case KIND_OCTAL:
        if (parse_uint(value, k->kind == KIND_OCTAL ? 8 : 10, k->min, k->max, &number) != ALK_OK) {
            return alk_diag_set(diag, ALK_EINVAL, "%s: '%s' is not a valid %s", origin, value,
                                k->kind == KIND_OCTAL ? "octal mode" : "count");
        }
        *(uint64_t *)slot = number;
        return ALK_OK;
    case KIND_SECONDS: {
        char *end;
        errno = 0;
        double seconds = strtod(value, &end);
        if (errno != 0 || *end != '\0' || !(seconds >= 0.0) || seconds > 1e9 ||
            (k->min > 0 && seconds * 1000.0 < 1.0)) {
            return alk_diag_set(diag, ALK_EINVAL, "%s: '%s' is not a valid number of seconds",
                                origin, value);
        }
        *(uint64_t *)slot = (uint64_t)(seconds * 1000.0 + 0.5);
        return ALK_OK;
    }
    case KIND_BOOL:
        if (value == NULL || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "1") == 0) {
            *(bool *)slot = true;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                   strcmp(value, "0") == 0) {
            *(bool *)slot = false;
        } else {
            return alk_diag_set(diag, ALK_EINVAL, "%s: '%s' is not true or false", origin, value);
        }
        return ALK_OK;
    case KIND_LEVEL:
        if (!alkd_log_level_parse(value, slot)) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "%s: '%s' is not a log level (error, warn, info, debug)", origin,
                                value);
        }
        return ALK_OK;
    }
    return ALK_EINTERNAL;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) {
        s++;
    }
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

/*
 * Reads the config file. With `only`, applies only the keys named there (NULL-terminated list)
 * and ignores the others.
 */
static int read_file(alkd_config *config, const char *path, const char *const *only,
                     alk_diag *diag) {
    alk_buf text;
    alk_buf_init(&text);
    int rv = alk_read_file(path, (size_t)1 << 20, &text, diag);
    if (rv != ALK_OK) {
        alk_buf_fini(&text);
        return rv;
    }
    char *line = text.data;
    size_t line_no = 0;
    while (rv == ALK_OK && line != NULL && *line != '\0') {
        line_no++;
        char *next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        char *content = trim(line);
        if (*content != '\0') {
            char origin[600];
            (void)snprintf(origin, sizeof(origin), "%.500s:%zu", path, line_no);
            char *eq = strchr(content, '=');
            if (eq == NULL) {
                rv = alk_diag_set(diag, ALK_EINVAL, "%s: expected 'key = value'", origin);
                break;
            }
            *eq = '\0';
            char *name = trim(content);
            char *value = trim(eq + 1);
            bool wanted = only == NULL;
            for (const char *const *o = only; o != NULL && *o != NULL; o++) {
                wanted = wanted || strcmp(*o, name) == 0;
            }
            if (wanted) {
                rv = apply(config, name, strlen(name), value, origin, NULL, diag);
            }
        }
        line = next;
    }
    alk_buf_fini(&text);
    return rv;
}

int alkd_config_reload_plugins(alkd_config *config, const char *path, alk_diag *diag) {
    static const char *const plugin_keys[] = {"plugin-dir", "disable", NULL};
    alkd_config fresh = {0};
    int rv = read_file(&fresh, path, plugin_keys, diag);
    if (rv == ALK_OK) {
        alkd_strings_fini(&config->plugin_dirs);
        alkd_strings_fini(&config->disabled);
        config->plugin_dirs = fresh.plugin_dirs;
        config->disabled = fresh.disabled;
        fresh.plugin_dirs = (alkd_strings){0};
        fresh.disabled = (alkd_strings){0};
    }
    alkd_strings_fini(&fresh.plugin_dirs);
    alkd_strings_fini(&fresh.disabled);
    return rv;
}

int alkd_config_parse(alkd_config *config, int argc, char **argv, alk_diag *diag) {
    /* First pass: --help, --version and --config, so that the file comes before the flags. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            alkd_config_usage();
            return ALK_ECANCELED;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("alkaidd %s\n", ALKAID_VERSION);
            return ALK_ECANCELED;
        }
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
        if (path != NULL) {
            alk_free(config->config_path);
            config->config_path = alk_strdup(path);
            if (config->config_path == NULL) {
                return ALK_ENOMEM;
            }
        }
    }
    if (config->config_path != NULL) {
        int rv = read_file(config, config->config_path, NULL, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    replaced replace = {{false}};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            return alk_diag_set(diag, ALK_EINVAL, "unexpected argument '%s'", arg);
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (name_len == 6 && strncmp(name, "config", 6) == 0) {
            i += eq == NULL;
            continue;
        }
        const alk_rpc_limit_field *limit;
        const key *k = find_key(name, name_len, &limit);
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (value == NULL && (limit != NULL || (k != NULL && k->kind != KIND_BOOL))) {
            if (i + 1 >= argc) {
                return alk_diag_set(diag, ALK_EINVAL, "%s needs a value", arg);
            }
            value = argv[++i];
        }
        char origin[80];
        (void)snprintf(origin, sizeof(origin), "--%.*s", (int)(name_len > 60 ? 60 : name_len),
                       name);
        int rv = apply(config, name, name_len, value, origin, &replace, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    if (config->limits.default_timeout_ms > config->limits.max_timeout_ms) {
        config->limits.max_timeout_ms = config->limits.default_timeout_ms;
    }
    return ALK_OK;
}
