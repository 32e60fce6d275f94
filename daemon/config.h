/*
 * alkaidd's configuration: command-line flags and the config file, with the same keys.
 *
 * The file (`--config FILE`) has one `key = value` per line (`#` starts a comment); its keys are
 * the long flags without the dashes: `listen = ipc:///run/alkaid/alkaidd.sock`, `workers = 4`.
 * Keys that take a list (listen, plugin-dir, disable, upstream) may repeat. Flags on the command
 * line override the file; a list flag given on the command line replaces the file's list.
 *
 * Thread rule: built on the main thread before the loop starts; read-only afterwards except for
 * the plugin lists, which the loop thread replaces on reload.
 */
#ifndef ALKD_CONFIG_H
#define ALKD_CONFIG_H

#include "core/err.h"
#include "log.h"
#include "rpc/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A list of owned strings. */
typedef struct alkd_strings {
    char **items;
    size_t len;
} alkd_strings;

int alkd_strings_push(alkd_strings *list, const char *s);
/* Removes every entry equal to `s`; returns how many. */
size_t alkd_strings_remove(alkd_strings *list, const char *s);
bool alkd_strings_contains(const alkd_strings *list, const char *s);
int alkd_strings_copy(const alkd_strings *from, alkd_strings *ret_copy);
void alkd_strings_fini(alkd_strings *list);

typedef struct alkd_config {
    char *config_path;         /* --config */
    alkd_strings listen;       /* --listen URL (ipc:// or tcp://) */
    char *control;             /* --control URL (ipc:// only) */
    uint64_t workers;          /* --workers (0: the number of cores) */
    uint64_t worker_memory_mb; /* --worker-memory-mb: each worker's ceiling (0: none) */
    uint64_t kill_grace_ms;    /* --kill-grace-ms: a cancelled job's time to stop */
    uint64_t poison_ttl_ms;    /* --poison-ttl: how long a crashing request is remembered */
    uint64_t queue;            /* --queue */
    alk_rpc_limits limits;     /* --max-message-bytes ... --max-timeout-ms, --timeout S */
    alkd_strings plugin_dirs;
    alkd_strings disabled;
    alkd_log_level log_level;
    uint64_t reply_cache_ttl_ms;
    uint64_t reply_cache_bytes;
    uint64_t socket_mode;        /* permissions of ipc service sockets */
    uint64_t shutdown_linger_ms; /* wait after the last reply before closing sockets */
    uint64_t stop_timeout_ms;    /* --stop-timeout: then jobs still running are cancelled */
    bool broker;
    alkd_strings upstream;
    bool test_hooks;
} alkd_config;

/* Fills `config` (owned by the caller) with the defaults. */
void alkd_config_init(alkd_config *config);
void alkd_config_fini(alkd_config *config);

/*
 * Parses the command line into `config` (initialised), reading the `--config` file first. Returns
 * ALK_OK, ALK_EINVAL with a message naming the flag/key (and the file's line), or ALK_ECANCELED
 * after printing --help or --version (the caller exits 0).
 */
int alkd_config_parse(alkd_config *config, int argc, char **argv, alk_diag *diag);

/*
 * Reads the plugin lists (plugin-dir, disable) of the config file `path` again, for a reload;
 * the other keys are left alone (they need a restart). On success replaces the lists in `config`.
 */
int alkd_config_reload_plugins(alkd_config *config, const char *path, alk_diag *diag);

/* The usage text. */
void alkd_config_usage(void);

#endif
